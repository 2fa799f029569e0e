//! Configuration: TOML files merged in order of precedence (lowest first): defaults, the user's
//! `~/.config/mlv/config.toml`, the committed `.mlv/config.toml`, the git-ignored
//! `.mlv/config.local.toml`, then `MLV_*` environment variables.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fs::{write_atomic_in, IoError};

/// The config format version.
pub const CONFIG_VERSION: u32 = 1;

/// Errors loading or editing configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A config file is not valid.
    #[error("{path}: invalid configuration: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable holds an invalid value.
    #[error("environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// What to do about a file mlv cannot read: a newer format, or a typo.
pub(crate) const NEWER_FORMAT_HINT: &str =
    "this file may come from a newer mlv, or have a typo; see docs/format.md";

impl ConfigError {
    /// What kind of failure this is: configuration is the environment.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        match self {
            ConfigError::Io(e) => e.kind(),
            ConfigError::Invalid { .. } | ConfigError::Env { .. } => crate::kind::ErrorKind::Environment,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            ConfigError::Io(e) => e.hint(),
            ConfigError::Invalid { .. } => Some(NEWER_FORMAT_HINT.into()),
            ConfigError::Env { .. } => None,
        }
    }
}

/// How workspace files are made from cache objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    /// A copy-on-write clone (needs a file system with reflinks: btrfs, XFS, APFS).
    Reflink,
    /// A hard link to the read-only cache object.
    Hardlink,
    /// A symbolic link to the cache object.
    Symlink,
    /// A full copy.
    Copy,
}

impl LinkKind {
    /// Whether workspace files of this kind are the cache objects themselves (read-only).
    pub fn shares_object(self) -> bool {
        matches!(self, LinkKind::Hardlink | LinkKind::Symlink)
    }

    fn parse(s: &str) -> Option<LinkKind> {
        Some(match s.trim() {
            "reflink" => LinkKind::Reflink,
            "hardlink" => LinkKind::Hardlink,
            "symlink" => LinkKind::Symlink,
            "copy" => LinkKind::Copy,
            _ => return None,
        })
    }
}

/// The `[core]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// Stage pointer files and `.gitignore` changes with git automatically.
    #[serde(default)]
    pub autostage: bool,
    /// The default remote's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Seconds to wait for the repository lock before giving up (0: fail at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_timeout: Option<u64>,
}

/// The `[cache]` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Where objects live; relative paths are relative to the work-tree root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Link kinds to try in order when materializing workspace files.
    #[serde(default = "default_links")]
    pub link: Vec<LinkKind>,
    /// An `add` or `fetch` storing at least this many new objects writes the small ones into
    /// one pack file (0: never pack).
    #[serde(default = "default_pack_min", skip_serializing_if = "is_default_pack_min")]
    pub pack_min_objects: usize,
    /// Use `hardlink`/`symlink` even as root, whom read-only bits do not stop from writing
    /// through a workspace link into the cache object.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link_as_root: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            dir: None,
            link: default_links(),
            pack_min_objects: default_pack_min(),
            link_as_root: false,
        }
    }
}

fn default_pack_min() -> usize {
    crate::cache::DEFAULT_PACK_MIN
}

fn is_default_pack_min(n: &usize) -> bool {
    *n == default_pack_min()
}

fn default_links() -> Vec<LinkKind> {
    vec![LinkKind::Reflink, LinkKind::Copy]
}

/// One `[remote.NAME]` table: a URL and backend options (validated by the remote layer).
/// The URL may come from another layer than some options (e.g. credentials in
/// `config.local.toml`), so it is optional in each file.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct RemoteConfig {
    /// Where the remote is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Backend options (endpoint, region, profile, ...).
    #[serde(flatten)]
    pub options: BTreeMap<String, toml::Value>,
}

impl std::fmt::Debug for RemoteConfig {
    /// Secret options show `***` and credentials in URLs are hidden (the local config holds
    /// keys and tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::remote::redact;
        let options: BTreeMap<&str, String> = self
            .options
            .iter()
            .map(|(k, v)| {
                let shown = match v {
                    _ if crate::remote::is_secret(k) => redact::MASK.to_string(),
                    toml::Value::String(s) => redact::redact_url(s),
                    other => other.to_string(),
                };
                (k.as_str(), shown)
            })
            .collect();
        f.debug_struct("RemoteConfig")
            .field("url", &self.url.as_deref().map(redact::redact_url))
            .field("options", &options)
            .finish()
    }
}

/// The `[gc]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcConfig {
    /// Objects younger than this are never removed (default [`DEFAULT_GRACE`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Grace>,
}

/// The default grace period of `mlv gc`: 4 hours.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(4 * 3600);

/// A grace period: in the config and on the command line, a whole number with an optional unit
/// (`s`, `m`, `h`, `d`; no unit means minutes), e.g. `0`, `90`, `30m`, `2h`, `1d`. In TOML a
/// bare integer is minutes too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(pub Duration);

impl std::str::FromStr for Grace {
    type Err = String;

    fn from_str(text: &str) -> Result<Grace, String> {
        let t = text.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let bad = || format!("{text:?} is not a duration such as 0, 90 (minutes), 30m, 2h or 1d");
        let n: u64 = num.parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" => 1,
            "" | "m" | "min" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(bad()),
        };
        n.checked_mul(secs)
            .map(|s| Grace(Duration::from_secs(s)))
            .ok_or_else(bad)
    }
}

impl Serialize for Grace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}s", self.0.as_secs()))
    }
}

impl<'de> Deserialize<'de> for Grace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Grace, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Minutes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Minutes(m) => format!("{m}m").parse(),
            Raw::Text(t) => t.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Format version of the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// `[core]`.
    #[serde(default)]
    pub core: CoreConfig,
    /// `[cache]`.
    #[serde(default)]
    pub cache: CacheConfig,
    /// `[remote.NAME]` tables.
    #[serde(default)]
    pub remote: BTreeMap<String, RemoteConfig>,
    /// `[gc]`.
    #[serde(default)]
    pub gc: GcConfig,
    /// `[lineage]`.
    #[serde(default)]
    pub lineage: LineageConfig,
}

/// The `[lineage]` table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineageConfig {
    /// Sign every record with git's SSH signing key (and registry tags with `git tag -s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<bool>,
}

/// The config files that apply to a repository, lowest precedence first.
pub fn layer_paths(mlv_dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(user) = user_config_path() {
        v.push(user);
    }
    v.push(mlv_dir.join("config.toml"));
    v.push(mlv_dir.join("config.local.toml"));
    v
}

fn user_config_path() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(x).join("mlv/config.toml"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/mlv/config.toml"))
}

/// Reads one config file as a table (missing file: empty), checking it is valid on its own.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    parse_table(path, &crate::fs::read_to_string_or_empty(path)?)
}

/// Parses one config file's text, checking it is valid on its own; `path` names it in errors.
pub fn parse_table(path: &Path, text: &str) -> Result<toml::Table, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| invalid(path, e.to_string()))?;
    let parsed: Config = table
        .clone()
        .try_into()
        .map_err(|e: toml::de::Error| invalid(path, e.to_string()))?;
    if let Some(v) = parsed.version.filter(|v| *v != CONFIG_VERSION) {
        return Err(invalid(path, format!("unsupported config version {v}")));
    }
    Ok(table)
}

fn invalid(path: &Path, reason: String) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// Loads and merges every layer, then applies the environment.
pub fn load(mlv_dir: &Path) -> Result<Config, ConfigError> {
    let mut merged = toml::Table::new();
    for path in layer_paths(mlv_dir) {
        merge(&mut merged, read_table(&path)?);
    }
    let mut config: Config = merged
        .try_into()
        .map_err(|e: toml::de::Error| ConfigError::Invalid {
            path: mlv_dir.join("config.toml"),
            reason: e.to_string(),
        })?;
    apply_env(&mut config)?;
    Ok(config)
}

fn apply_env(config: &mut Config) -> Result<(), ConfigError> {
    if let Some(dir) = std::env::var_os("MLV_CACHE_DIR").filter(|s| !s.is_empty()) {
        config.cache.dir = Some(PathBuf::from(dir));
    }
    if let Ok(list) = std::env::var("MLV_CACHE_LINK") {
        config.cache.link = parse_link_list(&list).map_err(|reason| ConfigError::Env {
            var: "MLV_CACHE_LINK",
            reason,
        })?;
    }
    if let Ok(v) = std::env::var("MLV_LOCK_TIMEOUT") {
        let secs = v.trim().parse::<u64>().map_err(|_| ConfigError::Env {
            var: "MLV_LOCK_TIMEOUT",
            reason: format!("{v:?} is not a whole number of seconds"),
        })?;
        config.core.lock_timeout = Some(secs);
    }
    if let Ok(v) = std::env::var("MLV_AUTOSTAGE") {
        config.core.autostage = env_bool("MLV_AUTOSTAGE", &v)?;
    }
    if let Ok(v) = std::env::var("MLV_LINK_AS_ROOT") {
        config.cache.link_as_root = env_bool("MLV_LINK_AS_ROOT", &v)?;
    }
    Ok(())
}

fn env_bool(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        _ => Err(ConfigError::Env {
            var,
            reason: format!("{v:?} is not true or false"),
        }),
    }
}

/// The configuration of another repository at a commit: the user config, then that
/// repository's committed `.mlv/config.toml` (its text, `committed`; `shown` names it in
/// errors), then the environment. Its machine-specific `config.local.toml` is not part of a
/// commit, so it does not apply.
pub fn load_committed(shown: &Path, committed: &str) -> Result<Config, ConfigError> {
    let mut merged = toml::Table::new();
    if let Some(user) = user_config_path() {
        merge(&mut merged, read_table(&user)?);
    }
    merge(&mut merged, parse_table(shown, committed)?);
    let mut config: Config = merged
        .try_into()
        .map_err(|e: toml::de::Error| invalid(shown, e.to_string()))?;
    apply_env(&mut config)?;
    Ok(config)
}

/// Parses `reflink,copy`-style lists.
pub fn parse_link_list(list: &str) -> Result<Vec<LinkKind>, String> {
    let kinds: Option<Vec<LinkKind>> = list.split(',').map(LinkKind::parse).collect();
    match kinds {
        Some(k) if !k.is_empty() => Ok(k),
        _ => Err(format!(
            "{list:?} is not a list of reflink, hardlink, symlink, copy"
        )),
    }
}

/// Deep-merges `top` over `base`.
pub fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Edits one config file, keeping its comments and layout: reads it, applies `f`, checks the
/// result is a valid config and writes it back atomically.
pub fn edit<T>(path: &Path, f: impl FnOnce(&mut toml_edit::DocumentMut) -> T) -> Result<T, ConfigError> {
    edit_file(path, false, f)
}

/// Like [`edit`] for a file that may hold credentials: it is written readable by its owner only
/// (0600), and an existing one is tightened.
pub fn edit_private<T>(
    path: &Path,
    f: impl FnOnce(&mut toml_edit::DocumentMut) -> T,
) -> Result<T, ConfigError> {
    edit_file(path, true, f)
}

fn edit_file<T>(
    path: &Path,
    private: bool,
    f: impl FnOnce(&mut toml_edit::DocumentMut) -> T,
) -> Result<T, ConfigError> {
    let text = crate::fs::read_to_string_or_empty(path)?;
    parse_table(path, &text)?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| invalid(path, e.to_string()))?;
    let out = f(&mut doc);
    let new = doc.to_string();
    parse_table(path, &new)?;
    match private {
        true => crate::fs::write_private_atomic_in(path, new.as_bytes(), &scratch_beside(path))?,
        false => write_atomic_in(path, new.as_bytes(), &scratch_beside(path))?,
    }
    Ok(out)
}

/// The text of a fresh committed config.
pub fn initial_text() -> String {
    "# mlv configuration, committed with the repository.\n\
     # Machine-specific settings and credentials belong in config.local.toml (git-ignored).\n\
     version = 1\n\n\
     [core]\n\
     # Stage pointer files and .gitignore changes with git after `mlv add`.\n\
     autostage = false\n\n\
     [cache]\n\
     # How workspace files are made from the cache, tried in order.\n\
     link = [\"reflink\", \"copy\"]\n"
        .to_string()
}

/// Writes `text` to `path` unless it exists.
pub fn write_if_missing(path: &Path, text: &str) -> Result<bool, ConfigError> {
    if path.exists() {
        return Ok(false);
    }
    write_atomic_in(path, text.as_bytes(), &scratch_beside(path))?;
    Ok(true)
}

/// `.mlv/tmp` for a file in `.mlv/`: temporary files of an interrupted write stay git-ignored.
fn scratch_beside(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new(".")).join("tmp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_config_debug_hides_secrets() {
        let r: RemoteConfig = toml::from_str(
            "url = \"s3://b/p\"\nsecret_access_key = \"SECRETKEY\"\nsas_token = \"sv=1&sig=SIG\"\n\
             endpoint = \"http://user:PASSWORD@127.0.0.1:9000\"\nregion = \"eu-west-1\"\njobs = 4\n",
        )
        .unwrap();
        let shown = format!("{r:?}");
        for secret in ["SECRETKEY", "SIG", "PASSWORD"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        for kept in ["s3://b/p", "eu-west-1", "\"jobs\": \"4\""] {
            assert!(shown.contains(kept), "{shown}");
        }
    }

    #[test]
    fn initial_config_is_valid_and_defaults_apply() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        write_if_missing(&p, &initial_text()).unwrap();
        let t = read_table(&p).unwrap();
        let c: Config = t.try_into().unwrap();
        assert_eq!(c.cache.link, vec![LinkKind::Reflink, LinkKind::Copy]);
        assert!(!c.core.autostage);
        assert!(std::fs::read_to_string(&p).unwrap().contains("version = 1"));
    }

    #[test]
    fn merge_precedence_and_unknown_keys() {
        let mut base: toml::Table = toml::from_str("[core]\nautostage = false\nremote = \"a\"\n").unwrap();
        merge(&mut base, toml::from_str("[core]\nautostage = true\n").unwrap());
        let c: Config = base.try_into().unwrap();
        assert!(c.core.autostage);
        assert_eq!(c.core.remote.as_deref(), Some("a"));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[core]\nautostag = true\n").unwrap();
        let err = read_table(&p).unwrap_err().to_string();
        assert!(err.contains("autostag"), "{err}");
        assert!(parse_link_list("hardlink,copy").is_ok());
        assert!(parse_link_list("hardlink,bogus").is_err());
    }

    #[test]
    fn grace_periods_parse_with_units_and_minutes_by_default() {
        let g = |s: &str| s.parse::<Grace>().map(|g| g.0.as_secs());
        assert_eq!(g("0"), Ok(0));
        assert_eq!(g("90"), Ok(5400));
        assert_eq!(g("30m"), Ok(1800));
        assert_eq!(g("2h"), Ok(7200));
        assert_eq!(g("1d"), Ok(86_400));
        assert_eq!(g("45s"), Ok(45));
        for bad in ["", "h", "2w", "-1", "1.5h", "99999999999999999999d"] {
            assert!(g(bad).is_err(), "{bad}");
        }
        let c: Config = toml::from_str("[gc]\ngrace = \"2h\"\n").unwrap();
        assert_eq!(c.gc.grace, Some(Grace(Duration::from_secs(7200))));
        let c: Config = toml::from_str("[gc]\ngrace = 15\n").unwrap();
        assert_eq!(c.gc.grace, Some(Grace(Duration::from_secs(900))));
        assert!(toml::from_str::<Config>("[gc]\ngrace = \"soon\"\n").is_err());
    }
}
