//! `mlv remote ...`: remotes in the configuration, and opening the one a command uses.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::config::{self, ConfigError};
use crate::error::{Error, Refusal};
use crate::remote::{committed_secret, configured, validate_option, Remote, RemoteSpec};
use crate::repo::Repo;

/// Which config file a change goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `.mlv/config.toml`, committed.
    Committed,
    /// `.mlv/config.local.toml`, git-ignored.
    Local,
}

impl Scope {
    pub(crate) fn path(self, repo: &Repo) -> PathBuf {
        match self {
            Scope::Committed => repo.mlv_dir().join("config.toml"),
            Scope::Local => repo.mlv_dir().join("config.local.toml"),
        }
    }
}

/// One configured remote, with secrets hidden.
#[derive(Debug, Serialize)]
pub struct RemoteInfo {
    /// Its name.
    pub name: String,
    /// Its URL, redacted.
    pub url: String,
    /// Whether it is the default.
    pub default: bool,
    /// Its options, secret values hidden.
    pub options: BTreeMap<String, String>,
}

/// Every configured remote.
pub fn list(repo: &Repo) -> Result<Vec<RemoteInfo>, Error> {
    let mut out = Vec::new();
    for name in repo.config.remote.keys() {
        let spec = spec_of(repo, name)?;
        out.push(RemoteInfo {
            name: name.clone(),
            url: spec.redacted_url(),
            default: repo.config.core.remote.as_deref() == Some(name),
            options: spec.redacted_options(),
        });
    }
    Ok(out)
}

/// Adds a remote; `format` (1 or 2), if given, is stored as its `format` option: the format a
/// first push gives the remote if it holds nothing yet.
pub fn add(
    repo: &Repo,
    name: &str,
    url: &str,
    default: bool,
    format: Option<u8>,
    scope: Scope,
) -> Result<(), Error> {
    check_name(name)?;
    if repo.config.remote.contains_key(name) {
        return Err(Refusal::RemoteExists { name: name.into() }.into());
    }
    let spec =
        RemoteSpec::parse(url, BTreeMap::new(), &repo.root).map_err(crate::remote::RemoteError::from)?;
    let format = format.map(|f| f.to_string());
    if let Some(f) = &format {
        validate_option(spec.scheme(), "format", f).map_err(crate::remote::RemoteError::from)?;
    }
    refuse_committed_secret(scope, "url", url)?;
    edit(repo, scope, |doc| {
        let r = table(doc, &["remote", name]);
        r.insert("url", toml_edit::value(url));
        if let Some(f) = &format {
            r.insert("format", toml_edit::value(f.as_str()));
        }
        if default {
            table(doc, &["core"]).insert("remote", toml_edit::value(name));
        }
    })
}

/// Sets (or, with `value` `None`, removes) one option of a remote.
pub fn modify(repo: &Repo, name: &str, key: &str, value: Option<&str>, scope: Scope) -> Result<(), Error> {
    let spec = spec_of(repo, name)?;
    if key == "url" {
        let url = value.ok_or(Refusal::UrlRequired)?;
        RemoteSpec::parse(url, BTreeMap::new(), &repo.root).map_err(crate::remote::RemoteError::from)?;
        refuse_committed_secret(scope, key, url)?;
    } else if let Some(v) = value {
        validate_option(spec.scheme(), key, v).map_err(crate::remote::RemoteError::from)?;
        refuse_committed_secret(scope, key, v)?;
    }
    edit(repo, scope, |doc| {
        let r = table(doc, &["remote", name]);
        match value {
            Some(v) => {
                r.insert(key, toml_edit::value(v));
            }
            None => {
                r.remove(key);
            }
        }
    })
}

/// Refuses a value that carries a credential on its way to the committed config.
fn refuse_committed_secret(scope: Scope, key: &str, value: &str) -> Result<(), Error> {
    match committed_secret(key, value) {
        Some(what) if scope == Scope::Committed => Err(Refusal::SecretInCommittedConfig { what }.into()),
        _ => Ok(()),
    }
}

/// Refuses to use a remote whose settings in the committed `.mlv/config.toml` carry a
/// credential (written by hand or by an older mlv): it is shared with everyone who can read the
/// repository, so it must be moved to the local config (and changed).
fn check_committed(repo: &Repo, name: &str) -> Result<(), Error> {
    configured::check_committed(&config::read_table(&Scope::Committed.path(repo))?, name)
}

/// Removes a remote from every config file of the repository.
pub fn remove(repo: &Repo, name: &str) -> Result<(), Error> {
    if !repo.config.remote.contains_key(name) {
        return Err(Refusal::UnknownRemote { name: name.into() }.into());
    }
    for scope in [Scope::Committed, Scope::Local] {
        edit(repo, scope, |doc| {
            if let Some(r) = doc.get_mut("remote").and_then(|r| r.as_table_like_mut()) {
                r.remove(name);
            }
            if let Some(core) = doc.get_mut("core").and_then(|c| c.as_table_like_mut()) {
                if core.get("remote").and_then(|v| v.as_str()) == Some(name) {
                    core.remove("remote");
                }
            }
        })?;
    }
    Ok(())
}

/// Makes `name` the default remote.
pub fn set_default(repo: &Repo, name: &str, scope: Scope) -> Result<(), Error> {
    if !repo.config.remote.contains_key(name) {
        return Err(Refusal::UnknownRemote { name: name.into() }.into());
    }
    edit(repo, scope, |doc| {
        table(doc, &["core"]).insert("remote", toml_edit::value(name));
    })
}

/// The remote a command uses: `name`, else the default.
pub fn open(repo: &Repo, name: Option<&str>, jobs: Option<usize>) -> Result<Remote, Error> {
    let name = configured::name_of(&repo.config, name)?;
    let spec = spec_of(repo, &name)?;
    check_committed(repo, &name)?;
    Ok(configured::open_spec(&spec, jobs)?.with_index_cache(index_cache_dir(repo)))
}

/// Where the index segments of format 2 remotes are kept (named by their digest, shared by
/// every remote).
pub fn index_cache_dir(repo: &Repo) -> std::path::PathBuf {
    repo.state_dir().join("remote-index")
}

/// Refuses `command` on a format 2 remote (one GET of its config document, kept for the
/// rest of the command): `fsck --remote` and `gc --remote` do not know packs yet and must
/// never touch one.
pub async fn refuse_format2(remote: &Remote, command: &'static str) -> Result<(), Error> {
    match remote.format().await? {
        crate::remote::packed::Format::V1 => Ok(()),
        crate::remote::packed::Format::V2(_) => Err(Refusal::NotYetFormat2 {
            command,
            remote: remote.display_name().to_string(),
        }
        .into()),
    }
}

/// What `mlv remote upgrade` did.
#[derive(Debug, serde::Serialize)]
pub struct UpgradeReport {
    /// The remote's name.
    pub remote: String,
    /// The remote, redacted.
    pub url: String,
    /// What was done.
    pub outcome: crate::remote::packed::Upgrade,
}

/// Turns remote `name` into a format 2 remote (see [`Remote::upgrade`]).
pub async fn upgrade(remote: &Remote, name: &str) -> Result<UpgradeReport, Error> {
    let outcome = remote.upgrade().await?;
    Ok(UpgradeReport {
        remote: name.to_string(),
        url: remote.display_name().to_string(),
        outcome,
    })
}

/// The parsed spec of a configured remote.
pub fn spec_of(repo: &Repo, name: &str) -> Result<RemoteSpec, Error> {
    configured::spec_of(&repo.config, name, &repo.root)
}

fn check_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Refusal::BadRemoteName { name: name.into() }.into())
    }
}

pub(crate) fn edit(
    repo: &Repo,
    scope: Scope,
    f: impl FnOnce(&mut toml_edit::DocumentMut),
) -> Result<(), Error> {
    let path = scope.path(repo);
    match scope {
        Scope::Committed => config::edit(&path, f),
        Scope::Local => config::edit_private(&path, f),
    }
    .map_err(|e: ConfigError| e.into())
}

/// The table at `keys` (created if absent; intermediate tables implicit, so `[remote.NAME]`
/// is written without an empty `[remote]` header).
pub(crate) fn table<'a>(doc: &'a mut toml_edit::DocumentMut, keys: &[&str]) -> &'a mut toml_edit::Table {
    let mut t = doc.as_table_mut();
    for (i, k) in keys.iter().enumerate() {
        let item = t.entry(k).or_insert_with(|| {
            let mut new = toml_edit::Table::new();
            new.set_implicit(i + 1 < keys.len());
            toml_edit::Item::Table(new)
        });
        if !item.is_table() {
            *item = toml_edit::Item::Table(toml_edit::Table::new());
        }
        t = item.as_table_mut().expect("just made a table");
    }
    t
}
