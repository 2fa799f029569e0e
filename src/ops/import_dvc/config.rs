//! DVC's configuration (`.dvc/config`, overridden by `.dvc/config.local`) and its remotes
//! converted into mlv remotes.
//!
//! DVC writes configobj INI: `[core]`, `['remote "NAME"']`, `[cache]` sections of
//! `key = value` lines, `#` or `;` comments. This parser reads exactly that and refuses anything
//! else with `FILE:LINE`. A relative local remote URL is relative to `.dvc/` (where the config
//! lives), as DVC resolves it.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::remote::{RemoteSpec, Scheme};

/// Which DVC file a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `.dvc/config` (committed).
    Shared,
    /// `.dvc/config.local` (not committed).
    Local,
}

/// One DVC remote as configured.
#[derive(Debug, Clone)]
pub struct DvcRemote {
    /// Its URL as written.
    pub url: String,
    /// Its other settings, each with the file it came from.
    pub options: BTreeMap<String, (String, Origin)>,
}

/// What import-dvc needs of DVC's configuration.
#[derive(Debug, Default)]
pub struct DvcConfig {
    /// `core.remote`, with the file that set it.
    pub default_remote: Option<(String, Origin)>,
    /// Remotes by name.
    pub remotes: BTreeMap<String, DvcRemote>,
    /// `cache.dir`, resolved (relative to `.dvc/`).
    pub cache_dir: Option<PathBuf>,
}

/// Reads `.dvc/config` and `.dvc/config.local` under `root` (missing files are empty).
pub fn load(root: &Path) -> Result<DvcConfig, Error> {
    let dvc_dir = root.join(".dvc");
    let mut sections: BTreeMap<String, BTreeMap<String, (String, Origin)>> = BTreeMap::new();
    for (name, origin) in [("config", Origin::Shared), ("config.local", Origin::Local)] {
        let path = dvc_dir.join(name);
        let text = crate::fs::read_to_string_nofollow_or_empty(&path)?;
        let shown = format!(".dvc/{name}");
        for (section, entries) in parse(&text, &shown)? {
            let s = sections.entry(section).or_default();
            for (k, v) in entries {
                s.insert(k, (v, origin));
            }
        }
    }
    let mut config = DvcConfig::default();
    for (section, entries) in sections {
        if section == "core" {
            config.default_remote = entries.get("remote").cloned();
        } else if section == "cache" {
            if let Some((dir, _)) = entries.get("dir") {
                config.cache_dir = Some(normalize(&dvc_dir.join(dir)));
            }
        } else if let Some(name) = remote_section(&section) {
            let mut options = entries;
            let Some((url, _)) = options.remove("url") else {
                continue;
            };
            config
                .remotes
                .insert(name.to_string(), DvcRemote { url, options });
        }
    }
    Ok(config)
}

/// Refuses `chosen` (`--remote`) unless it is one of DVC's remotes.
pub fn check_remote(config: &DvcConfig, chosen: Option<&str>) -> Result<(), Error> {
    match chosen {
        Some(name) if !config.remotes.contains_key(name) => Err(Refusal::BadConfigValue {
            key: "--remote".into(),
            reason: format!(
                "DVC's config has no remote `{name}` (it has: {})",
                config.remotes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

/// What can be refused before anything changes (before `mlv init`): a malformed DVC config, an
/// unknown `--remote`. `root` is the work tree.
pub fn preflight(root: &Path, chosen: Option<&str>) -> Result<(), Error> {
    check_remote(&load(root)?, chosen)
}

/// `remote "NAME"` -> `NAME`.
fn remote_section(section: &str) -> Option<&str> {
    section
        .strip_prefix("remote \"")
        .and_then(|s| s.strip_suffix('"'))
        .filter(|s| !s.is_empty())
}

type Sections = Vec<(String, Vec<(String, String)>)>;

/// Parses configobj INI as DVC writes it; `shown` names the file in errors.
fn parse(text: &str, shown: &str) -> Result<Sections, Error> {
    let mut out: Sections = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let bad = |reason: &str| -> Error {
            Refusal::MalformedDvcConfig {
                at: format!("{shown}:{}", i + 1),
                reason: reason.into(),
            }
            .into()
        };
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(rest) = line.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| bad("a section header without its closing `]`"))?
                .trim();
            if name.starts_with('[') {
                return Err(bad("nested sections are not DVC's config"));
            }
            let name = unquote(name).ok_or_else(|| bad("an unterminated quote in a section name"))?;
            if name.is_empty() {
                return Err(bad("an empty section name"));
            }
            out.push((name, Vec::new()));
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| bad("expected `key = value`, a `[section]` or a comment"))?;
        let key = key.trim();
        if key.is_empty() {
            return Err(bad("a value without a key"));
        }
        let value = unquote(strip_comment(value.trim())).ok_or_else(|| bad("an unterminated quote"))?;
        let Some((_, entries)) = out.last_mut() else {
            return Err(bad("a setting before any `[section]`"));
        };
        entries.push((key.to_string(), value));
    }
    Ok(out)
}

/// A value without an inline ` # comment` (outside quotes).
fn strip_comment(v: &str) -> &str {
    if v.starts_with(['\'', '"']) {
        return v;
    }
    match v.find(" #") {
        Some(i) => v[..i].trim_end(),
        None => v,
    }
}

/// `'x'` or `"x"` -> `x`; unquoted text as is; `None` for an unterminated quote.
fn unquote(v: &str) -> Option<String> {
    for q in ['\'', '"'] {
        if let Some(rest) = v.strip_prefix(q) {
            let end = rest.rfind(q)?;
            let tail = rest[end + 1..].trim();
            if !(tail.is_empty() || tail.starts_with('#')) {
                return None;
            }
            return Some(rest[..end].to_string());
        }
    }
    Some(v.to_string())
}

/// `a/./b/../c` -> `a/c`, lexically (the path may not exist).
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The prefix, under a DVC remote's location, that its converted mlv remote uses: mlv's
/// objects never share keys (or a `gc --remote` listing) with DVC's.
pub const MLV_SUBDIR: &str = "mlv";

/// DVC option -> mlv option, per scheme (`None`: mlv has no such option).
fn mlv_key(scheme: Scheme, key: &str) -> Option<&'static str> {
    Some(match (scheme, key) {
        (_, "jobs") => "jobs",
        (_, "connect_timeout") => "connect_timeout",
        (_, "read_timeout") => "timeout",
        (Scheme::S3, "endpointurl") => "endpoint",
        (Scheme::S3, "region") => "region",
        (Scheme::S3, "profile") => "profile",
        (Scheme::S3, "access_key_id") => "access_key_id",
        (Scheme::S3, "secret_access_key") => "secret_access_key",
        (Scheme::S3, "session_token") => "session_token",
        (Scheme::Gcs, "credentialpath") => "service_account",
        (Scheme::Azure, "account_name") => "account",
        (Scheme::Azure, "account_key") => "access_key",
        (Scheme::Azure, "sas_token") => "sas_token",
        _ => return None,
    })
}

/// DVC options that hold credentials: whatever their mapping, they go only to mlv's local
/// config, and are never shown.
fn dvc_secret(key: &str) -> bool {
    matches!(
        key,
        "access_key_id"
            | "secret_access_key"
            | "session_token"
            | "account_key"
            | "connection_string"
            | "sas_token"
            | "client_secret"
            | "password"
            | "key"
            | "gdrive_client_secret"
            | "gdrive_service_account_json_file_path"
    ) || key.contains("secret")
        || key.contains("token")
        || key.contains("password")
}

/// A DVC remote converted (or not) into an mlv remote.
#[derive(Debug, Serialize)]
pub struct RemoteConversion {
    /// The name (the same in both tools).
    pub name: String,
    /// DVC's URL, redacted.
    pub dvc_url: String,
    /// The mlv remote's URL (`null` when not converted).
    pub mlv_url: Option<String>,
    /// What happened: `added`, `exists` (same location already configured), `conflict`
    /// (the name is another mlv remote's: not overwritten), `unsupported`.
    pub outcome: &'static str,
    /// Whether it became mlv's default remote.
    pub default: bool,
    /// mlv options written to the committed config (values, secrets never among them).
    pub options: BTreeMap<String, String>,
    /// mlv option keys written only to `.mlv/config.local.toml` (credentials; values hidden).
    pub local_options: Vec<String>,
    /// DVC options mlv has no equivalent for (not converted; values never shown).
    pub not_converted: Vec<String>,
    /// Why, when not converted.
    pub reason: Option<String>,
}

/// A DVC remote ready to be read and to be written as an mlv remote.
#[derive(Debug)]
pub struct Converted {
    /// The report line.
    pub report: RemoteConversion,
    /// DVC's location, with mlv's options (to read DVC's objects); `None` when unsupported.
    pub dvc_spec: Option<RemoteSpec>,
    /// The mlv remote to write.
    pub mlv: Option<MlvRemote>,
}

/// An mlv remote to add: its URL, the options for the committed config, and those only for
/// the local one.
#[derive(Debug)]
pub struct MlvRemote {
    /// The URL (DVC's location and `/mlv`).
    pub url: String,
    /// Options for `.mlv/config.toml`.
    pub committed: BTreeMap<String, String>,
    /// Options for `.mlv/config.local.toml` only (credentials).
    pub local: BTreeMap<String, String>,
}

/// Converts DVC remote `name`. `root` is the work tree (DVC's relative local paths are relative
/// to `.dvc/`; mlv's to the root).
pub fn convert(root: &Path, name: &str, remote: &DvcRemote) -> Converted {
    let dvc_url = crate::remote::redact::redact_url(&remote.url);
    let unsupported = |reason: String| Converted {
        report: RemoteConversion {
            name: name.to_string(),
            dvc_url: dvc_url.clone(),
            mlv_url: None,
            outcome: "unsupported",
            default: false,
            options: BTreeMap::new(),
            local_options: Vec::new(),
            not_converted: remote.options.keys().cloned().collect(),
            reason: Some(reason),
        },
        dvc_spec: None,
        mlv: None,
    };
    let url = remote.url.trim();
    let (dvc_loc, mlv_url) = match url.split_once("://") {
        None => {
            // a local path; relative ones are relative to `.dvc/`
            let p = Path::new(url);
            let abs = if p.is_absolute() {
                normalize(p)
            } else {
                normalize(&root.join(".dvc").join(p))
            };
            // keep a relative URL relative (to the root, as mlv reads it): clones elsewhere work
            let shown = if p.is_absolute() {
                abs.clone()
            } else {
                relative_to(&abs, root)
            };
            let mlv = shown.join(MLV_SUBDIR);
            (abs.display().to_string(), mlv.display().to_string())
        }
        Some((scheme, rest)) => {
            let scheme = scheme.to_ascii_lowercase();
            if !matches!(scheme.as_str(), "s3" | "gs" | "azure" | "az") {
                return unsupported(format!(
                    "mlv has no `{scheme}://` remotes (local, s3, gs, azure); add one with `mlv remote add`"
                ));
            }
            let base = format!("{scheme}://{}", rest.trim_end_matches('/'));
            (base.clone(), format!("{base}/{MLV_SUBDIR}"))
        }
    };
    let scheme = match dvc_loc.split_once("://") {
        None => Scheme::Local,
        Some(("s3", _)) => Scheme::S3,
        Some(("gs", _)) => Scheme::Gcs,
        _ => Scheme::Azure,
    };
    let mut committed = BTreeMap::new();
    let mut local = BTreeMap::new();
    let mut not_converted = Vec::new();
    for (key, (value, origin)) in &remote.options {
        // a secret key, or a value carrying a credential (`https://user:pass@…`, `?sig=…`)
        let secret = dvc_secret(key) || crate::remote::committed_secret(key, value).is_some();
        match mlv_key(scheme, key) {
            Some(k) if secret || *origin == Origin::Local => {
                local.insert(k.to_string(), value.clone());
            }
            Some(k) => {
                committed.insert(k.to_string(), value.clone());
            }
            None => not_converted.push(key.clone()),
        }
    }
    // an http:// endpoint (an emulator, MinIO) needs plain HTTP allowed, as DVC allows it
    if committed
        .get("endpoint")
        .or(local.get("endpoint"))
        .is_some_and(|e| e.starts_with("http://"))
    {
        committed.insert("allow_http".into(), "true".into());
    }
    let mut all = committed.clone();
    all.extend(local.clone());
    let spec = match RemoteSpec::parse(&dvc_loc, all.clone(), root) {
        Ok(s) => s,
        Err(e) => return unsupported(format!("not a remote mlv can open: {e}")),
    };
    if let Err(e) = RemoteSpec::parse(&mlv_url, all, root) {
        return unsupported(format!("not a remote mlv can open: {e}"));
    }
    Converted {
        report: RemoteConversion {
            name: name.to_string(),
            dvc_url,
            mlv_url: Some(mlv_url.clone()),
            outcome: "added",
            default: false,
            options: committed.clone(),
            local_options: local.keys().cloned().collect(),
            not_converted,
            reason: None,
        },
        dvc_spec: Some(spec),
        mlv: Some(MlvRemote {
            url: mlv_url,
            committed,
            local,
        }),
    }
}

/// `path` relative to `base` when it is under it or a sibling of it (`../x`), else absolute.
fn relative_to(path: &Path, base: &Path) -> PathBuf {
    if let Ok(r) = path.strip_prefix(base) {
        return r.to_path_buf();
    }
    let mut up = PathBuf::from("..");
    let mut b = base.parent();
    while let Some(parent) = b {
        if let Ok(r) = path.strip_prefix(parent) {
            return up.join(r);
        }
        up.push("..");
        b = parent.parent();
    }
    path.to_path_buf()
}

/// Converts every DVC remote (see [`convert`]) and, with `write`, adds each to mlv's config:
/// URL and plain options to `.mlv/config.toml`, credentials (and whatever DVC kept in
/// `config.local`) to `.mlv/config.local.toml`. DVC's default becomes mlv's when mlv has none.
/// A name already taken by an mlv remote elsewhere is reported, never overwritten.
pub fn apply(
    root: &Path,
    dvc: &DvcConfig,
    write: Option<&crate::repo::Repo>,
) -> Result<Vec<RemoteConversion>, Error> {
    use crate::ops::remotes::{edit, table, Scope};
    let mlv_dir = root.join(".mlv");
    let existing = match write {
        Some(repo) => repo.config.clone(),
        None if mlv_dir.is_dir() => crate::config::load(&mlv_dir)?,
        None => crate::config::Config::default(),
    };
    let mut has_default = existing.core.remote.is_some();
    let mut out = Vec::new();
    for (name, r) in &dvc.remotes {
        let mut c = convert(root, name, r);
        let Some(MlvRemote {
            url,
            committed,
            local,
        }) = &c.mlv
        else {
            out.push(c.report);
            continue;
        };
        let valid_name = name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch));
        if !valid_name {
            c.report.outcome = "unsupported";
            c.report.reason = Some(
                "not a valid mlv remote name (letters, digits, `-`, `_`, `.`); add it with `mlv remote add`"
                    .into(),
            );
            out.push(c.report);
            continue;
        }
        if let Some(rc) = existing.remote.get(name) {
            if rc.url.as_deref() == Some(url.as_str()) {
                c.report.outcome = "exists";
            } else {
                c.report.outcome = "conflict";
                c.report.reason = Some(format!(
                    "an mlv remote named `{name}` already exists at another location; not overwritten (add DVC's under another name with `mlv remote add NAME {url}`)"
                ));
                out.push(c.report);
                continue;
            }
        } else if let Some(repo) = write {
            edit(repo, Scope::Committed, |doc| {
                let t = table(doc, &["remote", name]);
                t.insert("url", toml_edit::value(url.as_str()));
                for (k, v) in committed {
                    t.insert(k, toml_edit::value(v.as_str()));
                }
            })?;
            if !local.is_empty() {
                edit(repo, Scope::Local, |doc| {
                    let t = table(doc, &["remote", name]);
                    for (k, v) in local {
                        t.insert(k, toml_edit::value(v.as_str()));
                    }
                })?;
            }
        }
        if let Some((default, origin)) = &dvc.default_remote {
            if default == name && !has_default {
                has_default = true;
                c.report.default = true;
                if let Some(repo) = write {
                    let scope = match origin {
                        Origin::Shared => Scope::Committed,
                        Origin::Local => Scope::Local,
                    };
                    edit(repo, scope, |doc| {
                        table(doc, &["core"]).insert("remote", toml_edit::value(name.as_str()));
                    })?;
                }
            }
        }
        out.push(c.report);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvc_config_ini_parses_and_malformed_lines_name_file_and_line() {
        let text = "[core]\n    remote = storage\n    autostage = true\n['remote \"storage\"']\n    url = ../storage # the NAS\n; comment\n[cache]\n    dir = '../my cache'\n";
        let s = parse(text, ".dvc/config").unwrap();
        assert_eq!(s[0].0, "core");
        assert_eq!(s[1].0, "remote \"storage\"");
        assert_eq!(s[1].1, vec![("url".to_string(), "../storage".to_string())]);
        assert_eq!(s[2].1[0].1, "../my cache");
        for (bad, line) in [
            ("[core\n", 1),
            ("[core]\nremote\n", 2),
            ("x = 1\n", 1),
            ("[core]\n a = 'open\n", 2),
            ("[core]\n = 1\n", 2),
        ] {
            let err = parse(bad, ".dvc/config").unwrap_err().to_string();
            assert!(
                err.starts_with(&format!(".dvc/config:{line}: ")),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn remotes_convert_to_a_subprefix_with_secrets_local_and_unknown_options_reported() {
        let root = Path::new("/w/repo");
        let mut options = BTreeMap::new();
        options.insert(
            "endpointurl".into(),
            ("http://127.0.0.1:9000".into(), Origin::Shared),
        );
        options.insert("secret_access_key".into(), ("S3CR3T".into(), Origin::Shared));
        options.insert("access_key_id".into(), ("AKIA".into(), Origin::Local));
        options.insert("ssl_verify".into(), ("false".into(), Origin::Shared));
        options.insert("profile".into(), ("https://u:pw@x".into(), Origin::Shared));
        let c = convert(
            root,
            "s",
            &DvcRemote {
                url: "s3://bucket/dvcstore/".into(),
                options,
            },
        );
        assert_eq!(c.report.outcome, "added");
        let MlvRemote {
            url,
            committed,
            local,
        } = c.mlv.unwrap();
        assert_eq!(url, "s3://bucket/dvcstore/mlv");
        assert_eq!(
            committed.get("endpoint").map(String::as_str),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(committed.get("allow_http").map(String::as_str), Some("true"));
        assert!(!committed.contains_key("secret_access_key"));
        assert_eq!(
            local.keys().collect::<Vec<_>>(),
            ["access_key_id", "profile", "secret_access_key"]
        );
        assert!(!format!("{:?}", c.report).contains("pw@"));
        assert_eq!(c.report.not_converted, ["ssl_verify"]);
        assert!(!format!("{:?}", c.report).contains("S3CR3T"));

        let local_remote = |url: &str| {
            convert(
                root,
                "l",
                &DvcRemote {
                    url: url.into(),
                    options: BTreeMap::new(),
                },
            )
            .mlv
            .unwrap()
            .url
        };
        assert_eq!(local_remote("../storage"), "storage/mlv");
        assert_eq!(local_remote("../../shared"), "../shared/mlv");
        assert_eq!(local_remote("/srv/dvc"), "/srv/dvc/mlv");
        let ssh = convert(
            root,
            "x",
            &DvcRemote {
                url: "ssh://host/path".into(),
                options: BTreeMap::new(),
            },
        );
        assert_eq!(ssh.report.outcome, "unsupported");
    }
}
