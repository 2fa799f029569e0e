//! The model registry: named models, their versions and stages, kept as annotated git tags
//! named as GTO (DVC's registry) names them, so a registry made by either tool reads in the
//! other (docs/registry.md).
//!
//! - `NAME@vX.Y.Z`: registers version X.Y.Z of NAME on the tagged commit.
//! - `NAME#STAGE#N`: assigns the version registered on the tagged commit to STAGE; N counts
//!   the artifact's numbered tags (GTO's counter), and the newest assignment (by tagger date,
//!   then N) wins.
//! - `NAME@vX.Y.Z!`, `NAME#STAGE!#N`, `NAME@deprecated#N`: GTO's deregistration, unassignment
//!   and deprecation, read (mlv does not write them yet).
//!
//! mlv writes GTO's message first line and adds, in a last paragraph, what it needs to trust
//! a version: `mlv-path`, `mlv-digest`, `mlv-size` (and `mlv-version` on an assignment). A tag
//! whose message no longer matches its target is reported, never trusted silently.
//! This module parses and folds; it never prints and never writes (see `ops::model`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::hash::Digest;
use crate::kind::{ErrorKind, GitError};

/// Longest model or stage name accepted.
pub const MAX_NAME: usize = 100;
/// The trailer keys mlv writes in a tag message's last paragraph.
pub const KEY_PATH: &str = "mlv-path";
/// The digest trailer.
pub const KEY_DIGEST: &str = "mlv-digest";
/// The size trailer.
pub const KEY_SIZE: &str = "mlv-size";
/// The version trailer of an assignment.
pub const KEY_VERSION: &str = "mlv-version";

/// Errors of the model registry.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model or stage name GTO would not accept.
    #[error("`{name}`: bad {what} name: {reason}")]
    BadName {
        /// `model` or `stage`.
        what: &'static str,
        /// The name as given.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// Not a semantic version.
    #[error("`{version}`: not a version (X.Y.Z)")]
    BadVersion {
        /// As given.
        version: String,
    },
    /// The version is registered already.
    #[error("{name}@{version} is registered already (tag {name}@{version})")]
    VersionExists {
        /// The model.
        name: String,
        /// The version.
        version: String,
    },
    /// No tag registers this model.
    #[error("no model named `{name}` is registered")]
    NoSuchModel {
        /// The model.
        name: String,
    },
    /// No tag registers this version.
    #[error("{name}@{version} is not registered")]
    NoSuchVersion {
        /// The model.
        name: String,
        /// The version.
        version: String,
    },
    /// No version is in this stage.
    #[error("no version of {name} is in stage `{stage}`")]
    EmptyStage {
        /// The model.
        name: String,
        /// The stage.
        stage: String,
    },
    /// PATH is not tracked by an mlv pointer committed at HEAD.
    #[error("{path}: {reason}")]
    NotCommitted {
        /// The data path as displayed.
        path: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The version's tags contradict the commit they point at (rewritten by hand?).
    #[error("{tag}: {problem}")]
    Untrusted {
        /// The tag.
        tag: String,
        /// What does not match.
        problem: String,
    },
    /// The version records no path (a GTO tag without an artifacts.yaml entry).
    #[error("{name}@{version}: the tag records no path and artifacts.yaml names none")]
    NoPath {
        /// The model.
        name: String,
        /// The version.
        version: String,
    },
    /// The model is a directory; `model get` writes files.
    #[error("{name}@{version}: {path} is a tracked directory; `model get` fetches files")]
    IsDirectory {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// Its path.
        path: String,
    },
    /// The version is in that stage already.
    #[error("{name}@{version} is in stage `{stage}` already")]
    AlreadyInStage {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// The stage.
        stage: String,
    },
    /// The bytes are not in the cache and no default remote is configured.
    #[error("{name}@{version}: {path} ({digest}) is not in the cache and no default remote is configured")]
    NoRemote {
        /// The model.
        name: String,
        /// The version.
        version: String,
        /// Its path.
        path: String,
        /// Its digest.
        digest: Digest,
    },
    /// OUT exists.
    #[error("{path}: already exists")]
    OutExists {
        /// As displayed.
        path: String,
    },
    /// `git tag` failed.
    #[error("git tag {tag} failed: {stderr}")]
    TagFailed {
        /// The tag.
        tag: String,
        /// What git said.
        stderr: String,
    },
    /// Reading the repository failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

impl ModelError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ModelError::BadName { .. }
            | ModelError::BadVersion { .. }
            | ModelError::VersionExists { .. }
            | ModelError::NoSuchModel { .. }
            | ModelError::NoSuchVersion { .. }
            | ModelError::EmptyStage { .. }
            | ModelError::NotCommitted { .. }
            | ModelError::NoPath { .. }
            | ModelError::IsDirectory { .. }
            | ModelError::AlreadyInStage { .. }
            | ModelError::NoRemote { .. }
            | ModelError::OutExists { .. } => ErrorKind::Refused,
            ModelError::Untrusted { .. } => ErrorKind::Integrity,
            ModelError::TagFailed { .. } => ErrorKind::Failure,
            ModelError::Git(e) => e.kind(),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            ModelError::BadName { .. } => "use lowercase letters, digits, `-` and `/` (not first or last, no `//`), as GTO does: e.g. churn-classifier".into(),
            ModelError::BadVersion { .. } => "give a semantic version: 1.2.0 or v1.2.0".into(),
            ModelError::VersionExists { name, .. } => format!("register the next one with `--bump patch` (or minor, major); `mlv model show {name}` lists the versions"),
            ModelError::NoSuchModel { .. } => "`mlv model list` shows the registered models; in a clone, `git fetch --tags` brings the registry's tags".into(),
            ModelError::NoSuchVersion { name, .. } => format!("`mlv model show {name}` lists its versions; `git fetch --tags` brings new ones"),
            ModelError::EmptyStage { name, .. } => format!("promote a version first: mlv model promote {name} VERSION STAGE"),
            ModelError::NotCommitted { .. } => "track it with `mlv add`, then commit its pointer file (`git add PATH.mlv && git commit`) and register again".into(),
            ModelError::Untrusted { .. } => "the tag was moved or rewritten after it was made: inspect it with `git show TAG`, and re-register the version under a new number if it is wrong".into(),
            ModelError::NoPath { name, .. } => format!("add `{name}: {{path: PATH}}` to artifacts.yaml (as GTO reads it), or register the version with mlv"),
            ModelError::IsDirectory { .. } => "check it out instead: git checkout TAG && mlv checkout PATH".into(),
            ModelError::AlreadyInStage { name, .. } => format!("`mlv model show {name}` shows its stages; promote another version to replace it"),
            ModelError::NoRemote { .. } => "set the remote that holds it as the default (mlv remote add --default NAME URL) and run the command again".into(),
            ModelError::OutExists { .. } => "choose another path with -o, or pass --force to replace it".into(),
            ModelError::TagFailed { .. } | ModelError::Git(_) => return None,
        })
    }
}

/// Checks a model or stage name as GTO does: `[a-z0-9]([a-z0-9-/]*[a-z0-9])?`, plus what git
/// refuses in a ref (`//`), at most [`MAX_NAME`] characters.
pub fn check_name(what: &'static str, name: &str) -> Result<(), ModelError> {
    let bad = |reason| ModelError::BadName {
        what,
        name: name.to_string(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() > MAX_NAME {
        return Err(bad("longer than 100 characters"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !name.chars().all(|c| ok_char(c) || c == '-' || c == '/') {
        return Err(bad("only lowercase letters, digits, `-` and `/` are allowed"));
    }
    let (first, last) = (name.chars().next(), name.chars().last());
    if !first.is_some_and(ok_char) || !last.is_some_and(ok_char) {
        return Err(bad("must start and end with a letter or a digit"));
    }
    if name.contains("//") {
        return Err(bad("`//` is not allowed"));
    }
    if what == "stage" && name.contains('/') {
        return Err(bad("`/` is not allowed in a stage"));
    }
    Ok(())
}

/// A semantic version; written with its `v` (`v1.2.3`), as GTO writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version {
    /// X.
    pub major: u64,
    /// Y.
    pub minor: u64,
    /// Z.
    pub patch: u64,
    /// The pre-release and build suffix after Z (`-rc.1+b7`), if any.
    pub suffix: String,
}

/// Which part `--bump` raises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bump {
    /// X.
    Major,
    /// Y.
    Minor,
    /// Z.
    Patch,
}

impl Version {
    /// The first version GTO registers: v0.0.1.
    pub const FIRST: Version = Version {
        major: 0,
        minor: 0,
        patch: 1,
        suffix: String::new(),
    };

    /// Parses `X.Y.Z` or `vX.Y.Z` (with an optional semver suffix).
    pub fn parse(s: &str) -> Result<Version, ModelError> {
        let bad = || ModelError::BadVersion {
            version: s.to_string(),
        };
        let body = s.strip_prefix('v').unwrap_or(s);
        let end = body.find(['-', '+']).unwrap_or(body.len());
        let (core, suffix) = body.split_at(end);
        let num = |p: &str| -> Result<u64, ModelError> {
            if p.is_empty() || (p.len() > 1 && p.starts_with('0')) || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse().map_err(|_| bad())
        };
        let parts: Vec<&str> = core.split('.').collect();
        let [x, y, z] = parts[..] else { return Err(bad()) };
        let ok_suffix = suffix.is_empty()
            || (suffix.len() > 1
                && suffix[1..]
                    .split(['.', '+'])
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')));
        if !ok_suffix {
            return Err(bad());
        }
        Ok(Version {
            major: num(x)?,
            minor: num(y)?,
            patch: num(z)?,
            suffix: suffix.to_string(),
        })
    }

    /// The next version after this one.
    pub fn bump(&self, part: Bump) -> Version {
        let (major, minor, patch) = match part {
            Bump::Major => (self.major + 1, 0, 0),
            Bump::Minor => (self.major, self.minor + 1, 0),
            Bump::Patch => (self.major, self.minor, self.patch + 1),
        };
        Version {
            major,
            minor,
            patch,
            suffix: String::new(),
        }
    }

    fn key(&self) -> (u64, u64, u64, bool, &str) {
        // a release sorts after its pre-releases
        (
            self.major,
            self.minor,
            self.patch,
            self.suffix.is_empty(),
            &self.suffix,
        )
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}{}", self.major, self.minor, self.patch, self.suffix)
    }
}

/// What a registry tag does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `NAME@vX.Y.Z`.
    Register(Version),
    /// `NAME@vX.Y.Z!`.
    Deregister(Version),
    /// `NAME#STAGE[#N]`.
    Assign(String),
    /// `NAME#STAGE![#N]`.
    Unassign(String),
    /// `NAME@deprecated[#N]`.
    Deprecate,
}

/// A registry tag's name, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagName {
    /// The model.
    pub model: String,
    /// What it does.
    pub action: Action,
    /// GTO's counter (`#N`), if any.
    pub counter: Option<u64>,
}

/// The tag that registers `version` of `name`.
pub fn version_tag(name: &str, version: &Version) -> String {
    format!("{name}@{version}")
}

/// The tag that assigns a version of `name` to `stage`, the `counter`th of the model.
pub fn stage_tag(name: &str, stage: &str, counter: u64) -> String {
    format!("{name}#{stage}#{counter}")
}

/// Parses a tag name as GTO does; `None` for tags that are not the registry's.
pub fn parse_tag_name(tag: &str) -> Option<TagName> {
    let at = tag.find(['@', '#'])?;
    let (model, rest) = tag.split_at(at);
    check_name("model", model).ok()?;
    let (body, counter) = match rest[1..].rfind('#') {
        Some(i) => {
            let (b, n) = rest.split_at(i + 1);
            let n = &n[1..];
            if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            (b, Some(n.parse().ok()?))
        }
        None => (rest, None),
    };
    let action = if let Some(v) = body.strip_prefix('@') {
        if v == "deprecated" {
            Action::Deprecate
        } else {
            let (v, cancel) = match v.strip_suffix('!') {
                Some(v) => (v, true),
                None => (v, false),
            };
            if !v.starts_with('v') {
                return None;
            }
            let version = Version::parse(v).ok()?;
            if cancel {
                Action::Deregister(version)
            } else {
                Action::Register(version)
            }
        }
    } else {
        let s = body.strip_prefix('#')?;
        let (s, cancel) = match s.strip_suffix('!') {
            Some(s) => (s, true),
            None => (s, false),
        };
        check_name("stage", s).ok()?;
        if cancel {
            Action::Unassign(s.to_string())
        } else {
            Action::Assign(s.to_string())
        }
    };
    Some(TagName {
        model: model.to_string(),
        action,
        counter,
    })
}

/// What `NAME[@VERSION|#STAGE]` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// The greatest registered version.
    Latest,
    /// One version.
    Version(Version),
    /// The version in a stage.
    Stage(String),
}

/// Parses `NAME`, `NAME@1.0.0`, `NAME@v1.0.0`, `NAME@latest` or `NAME#STAGE`.
pub fn parse_spec(spec: &str) -> Result<(String, Selector), ModelError> {
    let Some(at) = spec.find(['@', '#']) else {
        check_name("model", spec)?;
        return Ok((spec.to_string(), Selector::Latest));
    };
    let (name, rest) = spec.split_at(at);
    check_name("model", name)?;
    let sel = if let Some(v) = rest.strip_prefix('@') {
        if v == "latest" || v == "greatest" {
            Selector::Latest
        } else {
            Selector::Version(Version::parse(v)?)
        }
    } else {
        let s = &rest[1..];
        check_name("stage", s)?;
        Selector::Stage(s.to_string())
    };
    Ok((name.to_string(), sel))
}

/// What mlv records about a version in its tag message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// The data path.
    pub path: Option<String>,
    /// Its digest.
    pub digest: Option<Digest>,
    /// Its size.
    pub size: Option<u64>,
}

/// The message of a version tag: GTO's line (or the user's), then mlv's trailers.
pub fn register_message(
    name: &str,
    version: &Version,
    user: Option<&str>,
    path: &str,
    digest: &Digest,
    size: u64,
) -> String {
    let head = match user {
        Some(m) if !m.trim().is_empty() => m.trim().to_string(),
        _ => format!("Registering artifact {name} version {version}"),
    };
    format!("{head}\n\n{KEY_PATH}: {path}\n{KEY_DIGEST}: {digest}\n{KEY_SIZE}: {size}\n")
}

/// The message of a stage tag: GTO's line (or the user's), then the version.
pub fn promote_message(name: &str, version: &Version, stage: &str, user: Option<&str>) -> String {
    let head = match user {
        Some(m) if !m.trim().is_empty() => m.trim().to_string(),
        _ => format!("Assigning stage {stage} to artifact {name} version {version}"),
    };
    format!("{head}\n\n{KEY_VERSION}: {version}\n")
}

/// The `mlv-*` trailers of a message's last paragraph (only there: a user's message above
/// cannot pose as them).
pub fn trailers(message: &str) -> BTreeMap<String, String> {
    let trimmed = message.trim_end();
    let last = trimmed.rsplit("\n\n").next().unwrap_or("");
    let mut out = BTreeMap::new();
    if !trimmed.contains("\n\n") {
        return out;
    }
    for line in last.lines() {
        if let Some((k, v)) = line.split_once(": ") {
            if k.starts_with("mlv-") {
                out.insert(k.to_string(), v.trim().to_string());
            }
        }
    }
    out
}

/// What a version tag's message records.
pub fn recorded(message: &str) -> Result<Recorded, String> {
    let t = trailers(message);
    let digest = match t.get(KEY_DIGEST) {
        Some(d) => Some(
            d.parse::<Digest>()
                .map_err(|_| format!("its {KEY_DIGEST} `{d}` is not a digest"))?,
        ),
        None => None,
    };
    let size = match t.get(KEY_SIZE) {
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("its {KEY_SIZE} `{s}` is not a size"))?,
        ),
        None => None,
    };
    Ok(Recorded {
        path: t.get(KEY_PATH).cloned(),
        digest,
        size,
    })
}

/// The path GTO's `artifacts.yaml` (or `dvc.yaml`'s `artifacts:`) gives `name`, from the
/// file's bytes.
pub fn artifacts_yaml_path(bytes: &[u8], name: &str) -> Option<String> {
    let doc: serde_norway::Value = serde_norway::from_slice(bytes).ok()?;
    let entry = doc.get(name).or_else(|| doc.get("artifacts")?.get(name))?;
    let path = entry.get("path")?.as_str()?;
    let path = path.trim_start_matches("./");
    (!path.is_empty() && !Path::new(path).is_absolute() && !path.split('/').any(|c| c == ".."))
        .then(|| path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_gto() {
        for ok in ["churn", "a", "churn-classifier", "team/churn", "m2"] {
            check_name("model", ok).unwrap();
        }
        for bad in [
            "", "Churn", "-a", "a-", "a//b", "a b", "a@b", "a#b", "a.b", "a_b", "../x", "é",
        ] {
            assert!(check_name("model", bad).is_err(), "{bad:?}");
        }
        assert!(check_name("stage", "a/b").is_err());
        assert!(check_name("model", &"a".repeat(101)).is_err());
    }

    #[test]
    fn versions_parse_order_and_bump() {
        let v = Version::parse("1.2.3").unwrap();
        assert_eq!(v, Version::parse("v1.2.3").unwrap());
        assert_eq!(v.to_string(), "v1.2.3");
        assert_eq!(v.bump(Bump::Minor).to_string(), "v1.3.0");
        assert_eq!(v.bump(Bump::Major).to_string(), "v2.0.0");
        assert!(Version::parse("1.2.3-rc.1").unwrap() < v);
        assert!(Version::parse("1.10.0").unwrap() > Version::parse("1.9.9").unwrap());
        for bad in [
            "1.2",
            "01.2.3",
            "1.2.3.4",
            "a.b.c",
            "1.2.3-",
            "1.2.3-a..b",
            "vv1.2.3",
            "",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_names_parse_as_gto_reads_them() {
        let p = parse_tag_name("churn@v1.0.0").unwrap();
        assert_eq!((p.model.as_str(), p.counter), ("churn", None));
        assert_eq!(p.action, Action::Register(Version::parse("1.0.0").unwrap()));
        let p = parse_tag_name("team/churn#prod#12").unwrap();
        assert_eq!(p.action, Action::Assign("prod".into()));
        assert_eq!(p.counter, Some(12));
        assert_eq!(parse_tag_name("churn#prod").unwrap().counter, None);
        assert_eq!(
            parse_tag_name("churn#prod!#3").unwrap().action,
            Action::Unassign("prod".into())
        );
        assert!(matches!(
            parse_tag_name("churn@v1.0.0!#2").unwrap().action,
            Action::Deregister(_)
        ));
        assert_eq!(
            parse_tag_name("churn@deprecated#4").unwrap().action,
            Action::Deprecate
        );
        // GTO's grammar allows a counter on any tag
        assert_eq!(parse_tag_name("churn@v1.0.0#3").unwrap().counter, Some(3));
        for other in [
            "v1.0.0",
            "churn@1.0.0",
            "Churn@v1.0.0",
            "churn#prod#x",
            "churn#",
            "churn@v1.0.0#",
            "release-1",
        ] {
            assert_eq!(parse_tag_name(other), None, "{other:?}");
        }
    }

    #[test]
    fn specs_accept_both_version_spellings() {
        let v = Version::parse("1.0.0").unwrap();
        assert_eq!(parse_spec("churn@1.0.0").unwrap().1, Selector::Version(v.clone()));
        assert_eq!(parse_spec("churn@v1.0.0").unwrap().1, Selector::Version(v));
        assert_eq!(
            parse_spec("churn#prod").unwrap().1,
            Selector::Stage("prod".into())
        );
        assert_eq!(parse_spec("churn").unwrap().1, Selector::Latest);
        assert!(parse_spec("churn@x").is_err());
        assert!(parse_spec("../x").is_err());
    }

    #[test]
    fn trailers_only_from_the_last_paragraph() {
        let d = Digest::of_bytes(b"x");
        let m = register_message("m", &Version::FIRST, Some("mlv-path: evil\n\nnote"), "a/b", &d, 3);
        let r = recorded(&m).unwrap();
        assert_eq!(r.path.as_deref(), Some("a/b"));
        assert_eq!(r.digest, Some(d));
        assert_eq!(r.size, Some(3));
        assert_eq!(
            recorded("Registering artifact m version v0.0.1").unwrap().path,
            None
        );
        assert!(recorded("x\n\nmlv-digest: nope").is_err());
    }

    #[test]
    fn artifacts_yaml_paths() {
        assert_eq!(
            artifacts_yaml_path(b"churn:\n  path: models/c.pkl\n  type: model\n", "churn").as_deref(),
            Some("models/c.pkl")
        );
        assert_eq!(
            artifacts_yaml_path(b"artifacts:\n  churn:\n    path: ./m.pt\n", "churn").as_deref(),
            Some("m.pt")
        );
        assert_eq!(artifacts_yaml_path(b"churn:\n  path: ../x\n", "churn"), None);
        assert_eq!(artifacts_yaml_path(b"[", "churn"), None);
    }
}
