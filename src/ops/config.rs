//! `mlv config`: read and edit one key of the repository's config files, as `git config` does.
//!
//! Values are checked with the config loader's own parsers before anything is written, and the
//! whole file is validated again on write ([`crate::config::edit`]); remote settings go through
//! [`super::remotes::modify`], which refuses credentials bound for the committed file.

use std::collections::BTreeMap;

use serde::Serialize;

pub use super::remotes::Scope;
use crate::config::{self, Grace};
use crate::error::{Error, Refusal};
use crate::remote::committed_secret;
use crate::repo::Repo;

/// The keys of the fixed tables of `src/config.rs` (`remote.NAME.KEY` aside).
pub const PLAIN_KEYS: &[&str] = &[
    "core.autostage",
    "core.remote",
    "core.lock_timeout",
    "cache.dir",
    "cache.link",
    "cache.pack_min_objects",
    "cache.link_as_root",
    "gc.grace",
    "lineage.sign",
];

/// The keys `mlv config` knows, as shown when a key is refused.
pub fn valid_keys() -> String {
    format!("{}, remote.NAME.url, remote.NAME.OPTION", PLAIN_KEYS.join(", "))
}

/// What `--list` and a secret's value show instead of the secret.
pub const REDACTED: &str = "<redacted>";

/// A parsed key.
enum Key<'a> {
    /// `SECTION.NAME` of a fixed table.
    Plain(&'a str, &'a str),
    /// `remote.NAME.KEY`.
    Remote(&'a str, &'a str),
}

fn parse_key(key: &str) -> Result<Key<'_>, Error> {
    let unknown = || Refusal::UnknownConfigKey {
        key: key.chars().take(80).collect(),
        valid: valid_keys(),
    };
    if let Some(rest) = key.strip_prefix("remote.") {
        return match rest.rsplit_once('.') {
            Some((name, k)) if !name.is_empty() && !k.is_empty() => Ok(Key::Remote(name, k)),
            _ => Err(unknown().into()),
        };
    }
    if PLAIN_KEYS.contains(&key) {
        let (s, n) = key.split_once('.').expect("listed keys are dotted");
        return Ok(Key::Plain(s, n));
    }
    Err(unknown().into())
}

/// The TOML value of `value` for a plain key, parsed as the loader parses it.
fn plain_value(repo: &Repo, key: &str, value: &str) -> Result<toml_edit::Value, Error> {
    let bad = |reason: String| Refusal::BadConfigValue {
        key: key.into(),
        reason,
    };
    let v = value.trim();
    Ok(match key {
        "core.autostage" | "cache.link_as_root" | "lineage.sign" => v
            .parse::<bool>()
            .map_err(|_| bad(format!("{value:?} is not true or false")))?
            .into(),
        "core.lock_timeout" | "cache.pack_min_objects" => v
            .parse::<u32>()
            .map(i64::from)
            .map_err(|_| bad(format!("{value:?} is not a whole number")))?
            .into(),
        "core.remote" => {
            if !repo.config.remote.contains_key(v) {
                return Err(Refusal::UnknownRemote { name: v.into() }.into());
            }
            v.into()
        }
        "cache.link" => {
            let kinds = config::parse_link_list(v).map_err(bad)?;
            let names = kinds.iter().map(|k| format!("{k:?}").to_lowercase());
            toml_edit::Value::Array(names.collect())
        }
        "gc.grace" => {
            v.parse::<Grace>().map_err(bad)?;
            v.into()
        }
        _ => value.into(),
    })
}

/// Sets `key` to `value` in the file of `scope`.
pub fn set(repo: &Repo, key: &str, value: &str, scope: Scope) -> Result<(), Error> {
    match parse_key(key)? {
        Key::Remote(name, k) => super::remotes::modify(repo, name, k, Some(value), scope),
        Key::Plain(section, name) => {
            let v = plain_value(repo, key, value)?;
            super::remotes::edit(repo, scope, |doc| {
                super::remotes::table(doc, &[section]).insert(name, toml_edit::Item::Value(v));
            })
        }
    }
}

/// Removes `key` from the file of `scope`; refused when that file does not set it.
pub fn unset(repo: &Repo, key: &str, scope: Scope) -> Result<(), Error> {
    let parsed = parse_key(key)?;
    let file = config::read_table(&scope.path(repo))?;
    if lookup(&file, key).is_none() {
        let path = scope.path(repo);
        let rel = path.strip_prefix(&repo.root).unwrap_or(&path);
        return Err(Refusal::ConfigKeyNotSet {
            key: key.into(),
            file: rel.display().to_string(),
        }
        .into());
    }
    match parsed {
        Key::Remote(name, k) => super::remotes::modify(repo, name, k, None, scope),
        Key::Plain(section, name) => super::remotes::edit(repo, scope, |doc| {
            if let Some(t) = doc.get_mut(section).and_then(|t| t.as_table_like_mut()) {
                t.remove(name);
            }
        }),
    }
}

/// The value of `key`: from the local file with [`Scope::Local`], else merged from every file
/// (environment variables are not applied). Secrets show as [`REDACTED`].
pub fn get(repo: &Repo, key: &str, scope: Option<Scope>) -> Result<Option<String>, Error> {
    parse_key(key)?;
    let table = read(repo, scope)?;
    Ok(lookup(&table, key).map(|v| shown(key, v)))
}

/// Every key set, as `key` → value (secrets redacted).
#[derive(Debug, Serialize)]
#[serde(transparent)]
pub struct Listing(pub BTreeMap<String, String>);

/// Every key set in the local file with [`Scope::Local`], else in the merged files.
pub fn list(repo: &Repo, scope: Option<Scope>) -> Result<Listing, Error> {
    let table = read(repo, scope)?;
    let mut out = BTreeMap::new();
    flatten("", &table, &mut out);
    Ok(Listing(out))
}

fn read(repo: &Repo, scope: Option<Scope>) -> Result<toml::Table, Error> {
    if let Some(s) = scope {
        return Ok(config::read_table(&s.path(repo))?);
    }
    let mut merged = toml::Table::new();
    for path in config::layer_paths(&repo.mlv_dir()) {
        config::merge(&mut merged, config::read_table(&path)?);
    }
    Ok(merged)
}

fn lookup<'t>(table: &'t toml::Table, key: &str) -> Option<&'t toml::Value> {
    // `remote.NAME.KEY`: NAME may hold dots
    let parts: Vec<&str> = match key.strip_prefix("remote.").and_then(|r| r.rsplit_once('.')) {
        Some((name, k)) => vec!["remote", name, k],
        None => key.split('.').collect(),
    };
    let (last, path) = parts.split_last()?;
    let mut t = table;
    for p in path {
        t = t.get(*p)?.as_table()?;
    }
    t.get(*last)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => {
                let text = shown(&key, other);
                out.insert(key, text);
            }
        }
    }
}

/// The text of a value: strings bare, lists comma-separated (as `cache.link` is given), and a
/// credential as [`REDACTED`].
fn shown(key: &str, v: &toml::Value) -> String {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    let option = key.rsplit('.').next().unwrap_or(key);
    if key.starts_with("remote.") && committed_secret(option, &text).is_some() {
        return REDACTED.into();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_unknown_ones_name_the_valid_ones() {
        assert!(matches!(parse_key("cache.link"), Ok(Key::Plain("cache", "link"))));
        assert!(matches!(
            parse_key("remote.my.store.endpoint"),
            Ok(Key::Remote("my.store", "endpoint"))
        ));
        let e = parse_key("cache.lnk").err().unwrap();
        assert_eq!(e.to_string(), "cache.lnk: not a configuration key");
        assert!(e
            .hint()
            .unwrap()
            .starts_with("valid keys: core.autostage, core.remote,"));
        assert!(parse_key("remote.x").is_err());
        assert!(parse_key("version").is_err());
        // every fixed key is one the loader knows: setting it in a table parses as a Config
        for key in PLAIN_KEYS {
            let (section, name) = key.split_once('.').unwrap();
            let value = match *key {
                "core.autostage" | "cache.link_as_root" | "lineage.sign" => "true",
                "core.lock_timeout" | "cache.pack_min_objects" | "gc.grace" => "1",
                "cache.link" => "[\"copy\"]",
                _ => "\"x\"",
            };
            let text = format!("[{section}]\n{name} = {value}\n");
            assert!(toml::from_str::<crate::config::Config>(&text).is_ok(), "{text}");
        }
    }

    #[test]
    fn values_show_bare_lists_joined_and_secrets_redacted() {
        let t: toml::Table = toml::from_str(
            "[cache]\nlink = [\"hardlink\", \"copy\"]\n[gc]\ngrace = 15\n\
             [remote.o]\nurl = \"s3://b/p\"\nsecret_access_key = \"SECRET\"\n\
             endpoint = \"http://u:PW@h:9000\"\n",
        )
        .unwrap();
        let mut out = BTreeMap::new();
        flatten("", &t, &mut out);
        assert_eq!(out["cache.link"], "hardlink,copy");
        assert_eq!(out["gc.grace"], "15");
        assert_eq!(out["remote.o.url"], "s3://b/p");
        assert_eq!(out["remote.o.secret_access_key"], REDACTED);
        assert_eq!(out["remote.o.endpoint"], REDACTED);
        assert_eq!(
            lookup(&t, "remote.o.url").and_then(|v| v.as_str()),
            Some("s3://b/p")
        );
    }
}
