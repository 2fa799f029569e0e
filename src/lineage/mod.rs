//! The lineage file: which inputs, parameters and command produced which outputs, with their
//! metrics. One JSON record per line in `.mlv/lineage.jsonl`, committed to git and merged with
//! git's `union` driver, so branches that both record runs merge without a conflict.
//!
//! Records are only ever appended. Each carries an id, the blake3 digest of its own canonical
//! JSON without the id, so a hand-edited or damaged line is detected and reported by line
//! number while the other records stay readable. See `docs/format.md` (the lineage file).

pub mod compare;
pub mod filter;
pub mod graph;
pub mod growth;
#[cfg(test)]
pub(crate) mod samples;
pub mod sign;
pub mod time;
pub mod traverse;
pub mod values;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::kind::{ErrorKind, GitError};
use crate::relpath::RelPath;

/// The record format version this build writes and reads.
pub const LINEAGE_VERSION: u32 = 1;
/// The lineage file, relative to the work-tree root.
pub const LINEAGE_FILE: &str = ".mlv/lineage.jsonl";
/// The `.gitattributes` line that lets branches append records without merge conflicts.
pub const GITATTRIBUTES_LINE: &str = ".mlv/lineage.jsonl merge=union";

/// Errors of the lineage feature.
#[derive(Debug, thiserror::Error)]
pub enum LineageError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A metrics or params file does not parse.
    #[error("{path}: cannot parse {format}: {reason}")]
    Unparsable {
        /// The file.
        path: PathBuf,
        /// JSON, YAML or TOML.
        format: &'static str,
        /// The parser's message (with line and column).
        reason: String,
    },
    /// A metric that is not a number.
    #[error("{source_name}: metric `{key}` is not a number ({value})")]
    NotANumber {
        /// The file or `--metric` argument it came from.
        source_name: String,
        /// The flattened key.
        key: String,
        /// The value, shortened.
        value: String,
    },
    /// A key chosen with `-p FILE:KEY` that the params file does not have.
    #[error("{path}: no params key `{key}`")]
    MissingParam {
        /// The params file, as displayed.
        path: String,
        /// The key.
        key: String,
    },
    /// A `k=v` argument without `=` or with an empty key.
    #[error("`{arg}`: expected NAME=VALUE")]
    BadKeyValue {
        /// The argument.
        arg: String,
    },
    /// An input is neither tracked by mlv nor a file in git.
    #[error("{path}: input is neither tracked by mlv nor a file tracked by git")]
    InputNotTracked {
        /// The path as displayed.
        path: String,
    },
    /// An input tracked by mlv differs from its pointer.
    #[error("{path}: input is modified in the workspace; its pointer does not describe it")]
    InputModified {
        /// The path as displayed.
        path: String,
    },
    /// An input lies inside a tracked directory.
    #[error("{path}: input is inside {dir}, which mlv tracks as a whole")]
    InputInsideTracked {
        /// The path as displayed.
        path: String,
        /// The tracked directory.
        dir: String,
    },
    /// A path is given both as an input and as an output.
    #[error("{path}: both an input and an output (overlaps {other})")]
    InputIsOutput {
        /// The output.
        path: String,
        /// The input it overlaps.
        other: String,
    },
    /// `run` without a command.
    #[error("no command given after `--`")]
    NoCommand,
    /// The command could not be started.
    #[error("cannot run `{program}`")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A path that names no version: not tracked by mlv or git (at a revision).
    #[error("{path}: not tracked by mlv or git{}", at_rev(.rev))]
    UnknownPath {
        /// The path as displayed.
        path: String,
        /// The revision, if any.
        rev: Option<String>,
    },
    /// A digest (prefix) that no record mentions.
    #[error("no lineage record mentions a digest starting with {prefix}")]
    UnknownDigest {
        /// What was given.
        prefix: String,
    },
    /// A prefix matching several digests or record ids.
    #[error("{prefix} is ambiguous: it matches {}", .candidates.join(", "))]
    Ambiguous {
        /// What was given.
        prefix: String,
        /// The first few matches.
        candidates: Vec<String>,
    },
    /// No record produced this version.
    #[error("{what}: no lineage record produced this version")]
    NoProducer {
        /// Path and digest, as displayed.
        what: String,
    },
    /// A git revision that does not resolve.
    #[error("{rev}: unknown git revision")]
    UnknownRevision {
        /// The revision.
        rev: String,
    },
    /// A `--filter` expression that does not parse.
    #[error("`{expr}`: bad filter: {reason}")]
    BadFilter {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
    /// Signing or checking a signature failed.
    #[error("{what} a lineage record failed: {reason}")]
    Signature {
        /// `signing` or `verifying`.
        what: String,
        /// ssh-keygen's message.
        reason: String,
    },
    /// Signing asked for, but git does not sign with SSH.
    #[error("lineage records are signed with SSH keys, but git's gpg.format is {format}")]
    NotSshSigning {
        /// git's `gpg.format`.
        format: String,
    },
    /// Signing asked for without `user.signingkey`.
    #[error("signing asked for, but git's user.signingkey is not set")]
    NoSigningKey,
    /// Checking signatures without `gpg.ssh.allowedSignersFile`.
    #[error("git's gpg.ssh.allowedSignersFile is not set: no key is trusted")]
    NoAllowedSigners,
    /// `gpg.ssh.allowedSignersFile` names no file.
    #[error("{}: allowed signers file (gpg.ssh.allowedSignersFile) not found", .path.display())]
    AllowedSignersMissing {
        /// The path configured.
        path: PathBuf,
    },
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
}

impl LineageError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            LineageError::Unparsable { .. } => "fix the file, or pass values with --metric/--param".into(),
            LineageError::NotANumber { .. } => {
                "metrics must be numbers; record other values as params (-p FILE or --param NAME=VALUE)".into()
            }
            LineageError::InputNotTracked { path } => {
                format!("track it with `mlv add {path}`, or commit it to git if it is small")
            }
            LineageError::InputModified { path } => format!(
                "record the new version with `mlv add {path}`, or restore it with `mlv checkout {path}`"
            ),
            LineageError::InputInsideTracked { dir, .. } => format!("use {dir} as the input"),
            LineageError::UnknownPath { .. } => {
                "give a path tracked by mlv (PATH.mlv) or by git, or a digest; `mlv status` lists tracked data"
                    .into()
            }
            LineageError::UnknownDigest { .. } | LineageError::NoProducer { .. } => {
                "`mlv lineage list` shows the records; `mlv lineage uses PATH` what was derived from a version"
                    .into()
            }
            LineageError::Ambiguous { .. } => "give more characters".into(),
            LineageError::MissingParam { path, .. } => format!(
                "give a key of {path} (a dotted name like train.lr, or a section like train), or -p {path} for the whole file"
            ),
            LineageError::UnknownRevision { .. } => "give a commit, branch or tag that `git log` knows".into(),
            LineageError::NoCommand => "example: mlv run -i data -o model.pt -- python train.py".into(),
            LineageError::NotSshSigning { .. } | LineageError::NoSigningKey => {
                "git config gpg.format ssh && git config user.signingkey ~/.ssh/id_ed25519.pub (as for `git commit -S`)".into()
            }
            LineageError::NoAllowedSigners | LineageError::AllowedSignersMissing { .. } => {
                "list trusted keys as `EMAIL namespaces=\"git,mlv-lineage\" ssh-ed25519 AAAA...` in a file and `git config gpg.ssh.allowedSignersFile PATH`".into()
            }
            LineageError::Signature { .. } => "check the key with `ssh-keygen -y -f KEY`; is ssh-agent running for a key:: signing key?".into(),
            LineageError::Io(e) => return e.hint(),
            LineageError::BadKeyValue { .. }
            | LineageError::InputIsOutput { .. }
            | LineageError::Spawn { .. }
            | LineageError::BadFilter { .. }
            | LineageError::Git(_) => return None,
        })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LineageError::Io(e) => e.kind(),
            LineageError::Git(e) => e.kind(),
            LineageError::Spawn { .. } | LineageError::Signature { .. } => ErrorKind::Environment,
            LineageError::NotSshSigning { .. }
            | LineageError::NoSigningKey
            | LineageError::NoAllowedSigners
            | LineageError::AllowedSignersMissing { .. } => ErrorKind::Refused,
            LineageError::Unparsable { .. }
            | LineageError::NotANumber { .. }
            | LineageError::BadKeyValue { .. }
            | LineageError::MissingParam { .. }
            | LineageError::InputNotTracked { .. }
            | LineageError::InputModified { .. }
            | LineageError::InputInsideTracked { .. }
            | LineageError::InputIsOutput { .. }
            | LineageError::NoCommand
            | LineageError::UnknownPath { .. }
            | LineageError::UnknownDigest { .. }
            | LineageError::Ambiguous { .. }
            | LineageError::NoProducer { .. }
            | LineageError::UnknownRevision { .. }
            | LineageError::BadFilter { .. } => ErrorKind::Refused,
        }
    }
}

fn at_rev(rev: &Option<String>) -> String {
    rev.as_ref().map(|r| format!(" at {r}")).unwrap_or_default()
}

/// Wraps a git2 error with what was being done.
pub fn git_err(action: &'static str) -> impl FnOnce(git2::Error) -> LineageError {
    move |e| GitError::while_doing(action)(e).into()
}

/// What an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// A file tracked by mlv.
    File,
    /// A directory tracked by mlv (the digest is its manifest's).
    Dir,
    /// A file tracked by git; the digest is the blake3 of its content.
    Git,
}

/// One input or output of a record: a path at one exact version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    /// Work-tree-relative path, `/`-separated.
    pub path: String,
    /// Tracked by mlv as a file or directory, or a file in git.
    #[serde(rename = "type")]
    pub kind: ArtifactKind,
    /// The content digest (a directory's manifest digest).
    pub digest: Digest,
    /// Total bytes.
    pub size: u64,
    /// Number of files (directories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// Who made a record (git's `user.name` and `user.email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

/// One lineage record: a run, or a step recorded after the fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Format version.
    pub version: u32,
    /// blake3 of the canonical JSON of the record without this field (64 hex).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// When it was recorded, RFC 3339 UTC.
    pub time: String,
    /// Who recorded it.
    pub author: Option<Author>,
    /// The git commit checked out when it was recorded (`None` before the first commit).
    pub commit: Option<String>,
    /// Whether tracked files other than mlv's own differed from that commit.
    pub dirty: bool,
    /// The command that was run, if any.
    pub command: Option<Vec<String>>,
    /// What it read.
    pub inputs: Vec<Artifact>,
    /// What it produced.
    pub outputs: Vec<Artifact>,
    /// Parameters, flattened to dotted names.
    pub params: BTreeMap<String, serde_json::Value>,
    /// Metrics, flattened to dotted names.
    pub metrics: BTreeMap<String, serde_json::Number>,
    /// Free-form labels.
    pub tags: Vec<String>,
    /// The pipeline stage (`mlv.toml`) this run was, if any. Absent from older records and
    /// from runs without `--name`, so their ids are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The metrics files read (work-tree paths), for `mlv metrics show/diff`. Absent from
    /// older records (and when empty), so their ids are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics_files: Vec<String>,
    /// The params files read, with the keys chosen (`-p FILE:KEY,KEY`), for `mlv params
    /// diff`. Absent from older records (and when empty), so their ids are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params_files: Vec<ParamsFile>,
    /// The directory a stage's command ran in, relative to the work-tree root, when it is not
    /// the root. Absent otherwise (and from older records), so their ids are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wdir: Option<String>,
    /// The metrics files' bytes, stored in the local cache when the run was recorded (work-tree
    /// path -> digest), so that the run cache can write them back. Absent from older records
    /// (and when empty), so their ids are unchanged.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metrics_digests: BTreeMap<String, Digest>,
    /// The record whose outputs this run restored from the run cache instead of running the
    /// command (its id). Absent otherwise, so older records keep their ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
    /// An SSH signature (`ssh-keygen -Y sign`, namespace `mlv-lineage`) over the record's line
    /// without this field. Not part of the id. Absent from unsigned records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

/// A params file a record read, and the keys chosen in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamsFile {
    /// Work-tree path, `/`-separated.
    pub path: String,
    /// The keys (leaves or sections) chosen; empty: the whole file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
}

impl Record {
    /// The id this record's content gives: blake3 of its canonical JSON without `id`.
    pub fn compute_id(&self) -> String {
        let mut body = self.clone();
        body.id.clear();
        body.signature = None;
        let bytes = serde_json::to_vec(&body).expect("records always serialize");
        Digest::of_bytes(&bytes).to_string()
    }

    /// The id shortened for display.
    pub fn short_id(&self) -> &str {
        // a damaged record's id may hold any text: cut on a character boundary
        let end = (0..=self.id.len().min(12))
            .rev()
            .find(|i| self.id.is_char_boundary(*i))
            .unwrap_or(0);
        &self.id[..end]
    }

    /// The line written to the lineage file (without the newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).expect("records always serialize")
    }

    /// Parses and checks one line.
    pub fn parse_line(line: &str) -> Result<Record, String> {
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
        match value.get("version").and_then(|v| v.as_u64()) {
            Some(v) if v == u64::from(LINEAGE_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "unsupported record version {v} (this mlv reads version 1)"
                ))
            }
            None => return Err("missing or invalid `version`".into()),
        }
        let record: Record = serde_json::from_value(value).map_err(|e| format!("invalid record: {e}"))?;
        if record.id.is_empty() {
            return Err("missing `id`".into());
        }
        let expected = record.compute_id();
        if record.id != expected {
            return Err(format!(
                "record {} does not match its content (edited by hand or damaged)",
                record.short_id()
            ));
        }
        Ok(record)
    }

    /// Every artifact, inputs first.
    pub fn artifacts(&self) -> impl Iterator<Item = &Artifact> {
        self.inputs.iter().chain(&self.outputs)
    }
}

/// A line of the lineage file that could not be read.
#[derive(Debug, Clone, Serialize)]
pub struct LineProblem {
    /// The lineage file, work-tree relative.
    pub file: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} line {}: {}", self.file, self.line, self.reason)
    }
}

/// The records of a lineage file, and the lines that could not be read.
#[derive(Debug, Default)]
pub struct Lineage {
    /// Valid records in file order (duplicates from merges removed).
    pub records: Vec<Record>,
    /// Lines that are not valid records.
    pub problems: Vec<LineProblem>,
}

/// The lineage file under work-tree `root`.
pub fn lineage_path(root: &Path) -> PathBuf {
    root.join(LINEAGE_FILE)
}

/// The lineage file as a work-tree path (for staging).
pub fn lineage_rel() -> RelPath {
    RelPath::new_unchecked(LINEAGE_FILE.to_string())
}

impl Lineage {
    /// Reads the lineage file under `root`; an absent file has no records.
    pub fn load(root: &Path) -> Result<Lineage, LineageError> {
        let path = lineage_path(root);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Self::parse(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Lineage::default()),
            Err(e) => Err(IoError::new("cannot read", path, e).into()),
        }
    }

    /// Parses the file's bytes; bad lines become problems, the rest stay readable.
    pub fn parse(bytes: &[u8]) -> Lineage {
        let mut out = Lineage::default();
        let mut seen = HashSet::new();
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let problem = |reason: String| LineProblem {
                file: LINEAGE_FILE.to_string(),
                line: i + 1,
                reason,
            };
            let Ok(text) = std::str::from_utf8(raw) else {
                out.problems.push(problem("not UTF-8 text".into()));
                continue;
            };
            match Record::parse_line(text) {
                Ok(r) => {
                    // git's union merge keeps a line added on both sides twice
                    if seen.insert(r.id.clone()) {
                        out.records.push(r);
                    }
                }
                Err(reason) => out.problems.push(problem(reason)),
            }
        }
        out
    }

    /// Records ordered by time (file order among equal times).
    pub fn by_time(&self) -> Vec<&Record> {
        let mut v: Vec<&Record> = self.records.iter().collect();
        v.sort_by(|a, b| a.time.cmp(&b.time));
        v
    }

    /// The record whose id is `prefix` or starts with it.
    pub fn find_id(&self, prefix: &str) -> Result<Option<&Record>, LineageError> {
        let hits: Vec<&Record> = self.records.iter().filter(|r| r.id.starts_with(prefix)).collect();
        match hits.len() {
            0 => Ok(None),
            1 => Ok(Some(hits[0])),
            _ => Err(LineageError::Ambiguous {
                prefix: prefix.to_string(),
                candidates: hits.iter().take(5).map(|r| r.short_id().to_string()).collect(),
            }),
        }
    }

    /// Every digest mentioned starting with `prefix` (deduplicated).
    pub fn digests_starting(&self, prefix: &str) -> Vec<Digest> {
        let mut out: Vec<Digest> = self
            .records
            .iter()
            .flat_map(|r| r.artifacts())
            .map(|a| a.digest)
            .filter(|d| d.to_string().starts_with(prefix))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// Appends one record to the lineage file under `root` (creating it), as a single write.
pub fn append(root: &Path, record: &Record) -> Result<(), LineageError> {
    let path = lineage_path(root);
    let needs_newline = match crate::fs::read_nofollow_or_empty(&path) {
        Ok(b) => !b.is_empty() && !b.ends_with(b"\n"),
        Err(_) => false,
    };
    let mut line = String::new();
    if needs_newline {
        line.push('\n');
    }
    line.push_str(&record.to_line());
    line.push('\n');
    // never append through a link: the file is committed, and a link could lead anywhere
    let created = std::fs::symlink_metadata(&path).is_err();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .custom_flags(crate::fs::O_NOFOLLOW)
        .open(&path)
        .at("cannot open", &path)?;
    f.write_all(line.as_bytes()).at("cannot write", &path)?;
    f.sync_all().at("cannot sync", &path)?;
    if created {
        // a new file survives a crash only once its directory entry does
        if let Some(dir) = path.parent() {
            crate::fs::sync_dir(dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(n: u8) -> Record {
        let mut r = Record {
            version: 1,
            id: String::new(),
            time: format!("2024-01-0{n}T00:00:00.000Z"),
            author: Some(Author {
                name: "A".into(),
                email: "a@x".into(),
            }),
            commit: None,
            dirty: false,
            command: Some(vec!["sh".into(), "-c".into(), "true".into()]),
            inputs: vec![Artifact {
                path: "in".into(),
                kind: ArtifactKind::Git,
                digest: Digest::of_bytes(&[n]),
                size: 1,
                files: None,
            }],
            stage: None,
            outputs: vec![],
            params: [("lr".to_string(), serde_json::json!(0.1))].into(),
            metrics: [("auc".to_string(), serde_json::Number::from_f64(0.5).unwrap())].into(),
            tags: vec![],
            metrics_files: vec![],
            params_files: vec![],
            wdir: None,
            metrics_digests: BTreeMap::new(),
            reused: None,
            signature: None,
        };
        r.id = r.compute_id();
        r
    }

    #[test]
    fn a_damaged_id_with_multibyte_text_is_reported_not_a_panic() {
        // found by tests/it/fuzz_parsers.rs: short_id cut inside a character
        let mut r = sample(1);
        r.id = "}=\t7\u{feff}\u{feff}\u{feff}\u{feff}".into();
        let err = Record::parse_line(&r.to_line()).unwrap_err();
        assert!(err.contains("does not match its content"), "{err}");
        assert_eq!(r.short_id(), "}=\t7\u{feff}\u{feff}");
    }

    #[test]
    fn round_trip_and_tamper_detection() {
        let r = sample(1);
        assert_eq!(Record::parse_line(&r.to_line()).unwrap(), r);
        let edited = r.to_line().replace("0.5", "0.9");
        assert!(Record::parse_line(&edited)
            .unwrap_err()
            .contains("does not match"));
        let text = format!(
            "{}\n{{broken\n{}\n{}\n",
            r.to_line(),
            sample(2).to_line(),
            r.to_line()
        );
        let l = Lineage::parse(text.as_bytes());
        assert_eq!(l.records.len(), 2);
        assert_eq!(l.problems.len(), 1);
        assert_eq!(l.problems[0].line, 2);
    }

    #[test]
    fn append_repairs_a_missing_newline() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join(".mlv")).unwrap();
        std::fs::write(lineage_path(d.path()), sample(1).to_line()).unwrap();
        append(d.path(), &sample(2)).unwrap();
        let l = Lineage::load(d.path()).unwrap();
        assert_eq!((l.records.len(), l.problems.len()), (2, 0));
    }
}
