//! Pointer files: `PATH.mlv` beside the data, committed to git in its place.
//!
//! ```toml
//! version = 1
//! path = "data"
//! type = "dir"
//! digest = "<64 hex>"
//! size = 173015040
//! files = 20000
//! ```
//!
//! An imported pointer (`mlv import`) also records where the data came from; a pointer without
//! the table is byte-identical to one written before imports existed:
//!
//! ```toml
//! [source]
//! url = "../registry"          # the source repository, as the user gave it
//! path = "data/images"         # the path in the source repository
//! rev = "v1"                   # the requested revision, absent when none was given
//! commit = "<40 hex>"          # the commit it resolved to
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::{write_atomic_in, IoContext, IoError};
use crate::hash::Digest;
use crate::relpath::RelPath;

/// The pointer format version this build writes and reads.
pub const POINTER_VERSION: u32 = 1;
/// The largest pointer file mlv reads (a real one is about 250 bytes).
pub const MAX_POINTER_BYTES: u64 = 64 * 1024;
/// The suffix of pointer files.
pub const POINTER_SUFFIX: &str = ".mlv";

/// Errors reading or writing pointer files.
#[derive(Debug, thiserror::Error)]
pub enum PointerError {
    /// The file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is not a valid pointer.
    #[error("{path}: malformed pointer file: {reason}")]
    Malformed {
        /// The pointer file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The pointer was written by a newer (or unknown) format.
    #[error(
        "{path}: unsupported pointer format version {version} (this mlv reads version {POINTER_VERSION})"
    )]
    UnsupportedVersion {
        /// The pointer file.
        path: PathBuf,
        /// The version it declares.
        version: i64,
    },
}

impl PointerError {
    /// What kind of failure this is: a pointer mlv cannot read is refused.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        match self {
            PointerError::Io(e) => e.kind(),
            PointerError::Malformed { .. } | PointerError::UnsupportedVersion { .. } => {
                crate::kind::ErrorKind::Refused
            }
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            PointerError::Io(e) => e.hint(),
            PointerError::Malformed { .. } => {
                Some("fix the pointer file, or restore it with `git checkout -- FILE`".into())
            }
            PointerError::UnsupportedVersion { .. } => Some(crate::config::NEWER_FORMAT_HINT.into()),
        }
    }
}

/// What a pointer tracks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// One file; the digest is its content's.
    File,
    /// A directory; the digest is its manifest's.
    Dir,
}

/// The content of a pointer file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointerData {
    /// Format version.
    pub version: u32,
    /// The data's path, relative to the pointer's directory.
    pub path: String,
    /// File or directory.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// The file's digest, or the directory manifest's.
    pub digest: Digest,
    /// Total bytes.
    pub size: u64,
    /// Number of files (directories only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Executable bit (files only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// Where imported data came from (`mlv import`); absent for data added here.
    /// (Boxed: most pointers have none, and a pointer stays small.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Box<Source>>,
}

/// The `[source]` table of an imported pointer: the repository, path and revision the data was
/// imported from. The version stays 1: an older mlv refuses the unknown table rather than
/// misreading the pointer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The source repository's URL or path, as the user gave it.
    pub url: String,
    /// The data's path in the source repository.
    pub path: String,
    /// The revision the user asked for (`--rev`); absent: the source's default branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<String>,
    /// The commit the revision resolved to (40 lowercase hex).
    pub commit: String,
}

impl Source {
    /// Checks every field: `url` and `rev` non-empty text without control characters, `path`
    /// a normalized relative path, `commit` 40 lowercase hex digits.
    pub fn validate(&self) -> Result<(), String> {
        let text = |name: &str, v: &str| -> Result<(), String> {
            if v.is_empty() {
                return Err(format!("`source.{name}` is empty"));
            }
            if v.chars().any(char::is_control) {
                return Err(format!("`source.{name}` holds a control character"));
            }
            Ok(())
        };
        text("url", &self.url)?;
        if let Some(rev) = &self.rev {
            text("rev", rev)?;
        }
        if let Err(e) = RelPath::new(&self.path) {
            return Err(format!("`source.path` = {:?}: {e}", self.path));
        }
        if self.commit.len() != 40
            || !self
                .commit
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(format!(
                "`source.commit` = {:?} is not a commit id (40 lowercase hex digits)",
                self.commit
            ));
        }
        Ok(())
    }

    /// The short form shown by `status`: `URL@REV, COMMIT7` (`URL, COMMIT7` without a rev).
    pub fn describe(&self) -> String {
        let short = &self.commit[..self.commit.len().min(7)];
        match &self.rev {
            Some(rev) => format!("{}@{rev}, {short}", self.url),
            None => format!("{}, {short}", self.url),
        }
    }
}

/// A pointer file loaded from the work tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pointer {
    /// The pointer file, relative to the work-tree root.
    pub file: RelPath,
    /// The data it tracks, relative to the work-tree root.
    pub data: RelPath,
    /// The parsed content.
    pub meta: PointerData,
}

impl Pointer {
    /// A pointer for `data` (work-tree relative).
    pub fn new(data: RelPath, kind: Kind, digest: Digest, size: u64, files: Option<u64>, exec: bool) -> Self {
        Pointer {
            file: pointer_file_for(&data),
            meta: PointerData {
                version: POINTER_VERSION,
                path: data.file_name().to_string(),
                kind,
                digest,
                size,
                files,
                exec,
                source: None,
            },
            data,
        }
    }

    /// Reads and validates the pointer file `file` under work-tree `root`.
    pub fn load(root: &Path, file: &RelPath) -> Result<Pointer, PointerError> {
        use std::io::Read;
        let abs = file.to_path(root);
        let f = std::fs::File::open(&abs).at("cannot read", &abs)?;
        let mut text = Vec::new();
        // read one byte past the limit to tell "at the limit" from "over it"
        f.take(MAX_POINTER_BYTES + 1)
            .read_to_end(&mut text)
            .at("cannot read", &abs)?;
        if text.len() as u64 > MAX_POINTER_BYTES {
            return Err(PointerError::Malformed {
                path: abs,
                reason: format!("larger than {MAX_POINTER_BYTES} bytes; a pointer file is a few lines"),
            });
        }
        Self::parse(file, &abs, &text)
    }

    /// Parses pointer text; `abs` is used in messages.
    pub fn parse(file: &RelPath, abs: &Path, bytes: &[u8]) -> Result<Pointer, PointerError> {
        let malformed = |reason: String| PointerError::Malformed {
            path: abs.to_path_buf(),
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8 text".into()))?;
        let table: toml::Table = toml::from_str(text).map_err(|e| malformed(one_line(&e.to_string())))?;
        match table.get("version") {
            Some(toml::Value::Integer(v)) if *v == POINTER_VERSION as i64 => {}
            Some(toml::Value::Integer(v)) => {
                return Err(PointerError::UnsupportedVersion {
                    path: abs.to_path_buf(),
                    version: *v,
                })
            }
            Some(_) => return Err(malformed("`version` must be an integer".into())),
            None => return Err(malformed("missing `version`".into())),
        }
        let meta: PointerData = table
            .try_into()
            .map_err(|e: toml::de::Error| malformed(one_line(&e.to_string())))?;
        let data = data_path(file, &meta.path).map_err(malformed)?;
        match (meta.kind, meta.files) {
            (Kind::File, Some(_)) => {
                return Err(malformed("`files` is only valid for `type = \"dir\"`".into()))
            }
            (Kind::Dir, None) => return Err(malformed("missing `files` for `type = \"dir\"`".into())),
            (Kind::Dir, Some(_)) if meta.exec => {
                return Err(malformed("`exec` is only valid for files".into()))
            }
            _ => {}
        }
        if let Some(source) = &meta.source {
            source.validate().map_err(malformed)?;
        }
        Ok(Pointer {
            file: file.clone(),
            data,
            meta,
        })
    }

    /// Writes the pointer file atomically, through a temporary file in `scratch` (the
    /// repository's `tmp_dir`).
    pub fn save(&self, root: &Path, scratch: &Path) -> Result<(), PointerError> {
        let text = self.to_toml();
        Ok(write_atomic_in(
            &self.file.to_path(root),
            text.as_bytes(),
            scratch,
        )?)
    }

    /// The file's text.
    pub fn to_toml(&self) -> String {
        let body = toml::to_string(&self.meta).expect("pointer data always serializes");
        format!("# mlv pointer: commit this file; the data lives in the mlv cache and remotes\n{body}")
    }
}

/// The pointer file that tracks `data`: `data.mlv` beside it.
pub fn pointer_file_for(data: &RelPath) -> RelPath {
    RelPath::new_unchecked(format!("{}{POINTER_SUFFIX}", data.as_str()))
}

/// Resolves a pointer's `path` field against the pointer's directory, refusing escapes and
/// any name but the pointer's own: `NAME.mlv` tracks `NAME` beside it, so no pointer can claim
/// data another pointer (or git) owns under a different name, and two pointers never claim one
/// path.
fn data_path(file: &RelPath, path: &str) -> Result<RelPath, String> {
    let joined = data_path_of(file, path)?;
    match file.as_str().strip_suffix(POINTER_SUFFIX) {
        Some(own) if own == joined.as_str() => Ok(joined),
        Some(own) => Err(format!(
            "`path` = {:?} is not the pointer's own name: `{}` must track `{}`",
            path,
            file.file_name(),
            RelPath::new_unchecked(own.to_string()).file_name()
        )),
        None => Err(format!("a pointer file's name must end in `{POINTER_SUFFIX}`")),
    }
}

fn data_path_of(file: &RelPath, path: &str) -> Result<RelPath, String> {
    if path.is_empty() {
        return Err("`path` is empty".into());
    }
    if path.starts_with('/') || path.contains('\\') {
        return Err(format!("`path` = {path:?} must be relative and use `/`"));
    }
    for part in path.split('/') {
        match part {
            "" | "." => return Err(format!("`path` = {path:?} has an empty or `.` component")),
            ".." => return Err(format!("`path` = {path:?} must not contain `..`")),
            _ => {}
        }
    }
    let joined = match file.parent() {
        Some(dir) => format!("{}/{path}", dir.as_str()),
        None => path.to_string(),
    };
    RelPath::new(&joined).map_err(|e| format!("`path` = {path:?}: {e}"))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pointer, PointerError> {
        let file = RelPath::new("sub/data.mlv").unwrap();
        Pointer::parse(&file, Path::new("/r/sub/data.mlv"), text.as_bytes())
    }

    const D: &str = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";

    #[test]
    fn round_trip() {
        let p = Pointer::new(
            RelPath::new("sub/data").unwrap(),
            Kind::Dir,
            D.parse().unwrap(),
            10,
            Some(2),
            false,
        );
        assert_eq!(p.file.as_str(), "sub/data.mlv");
        let back = parse(&p.to_toml()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn refuses_bad_pointers() {
        let ok = format!("version = 1\npath = \"data\"\ntype = \"file\"\ndigest = \"{D}\"\nsize = 1\n");
        assert!(parse(&ok).is_ok());
        let cases = [
            ok.replace("version = 1", "version = 2"),
            ok.replace("version = 1\n", ""),
            ok.replace(D, "abc"),
            ok.replace("\"data\"", "\"../x\""),
            ok.replace("\"data\"", "\"/etc/passwd\""),
            ok.replace("\"data\"", "\".git\""),
            ok.replace("\"data\"", "\"a/.mlv/x\""),
            // not the pointer's own name: `data.mlv` tracks `data`
            ok.replace("\"data\"", "\"train.py\""),
            ok.replace("\"data\"", "\"x/data\""),
            ok.replace("\"data\"", "\"data.mlv\""),
            ok.replace("size = 1", "size = -1"),
            ok.replace("type = \"file\"", "type = \"dir\""),
            ok[..ok.len() / 2].to_string(),
            format!("{ok}extra = 1\n"),
            "\u{0}\u{1}garbage".to_string(),
        ];
        for c in cases {
            assert!(parse(&c).is_err(), "accepted: {c}");
        }
        assert!(matches!(
            parse(&ok.replace("version = 1", "version = 7")),
            Err(PointerError::UnsupportedVersion { version: 7, .. })
        ));
    }

    const C: &str = "0123456789abcdef0123456789abcdef01234567";

    fn with_source(table: &str) -> String {
        format!(
            "version = 1\npath = \"data\"\ntype = \"file\"\ndigest = \"{D}\"\nsize = 1\n\n[source]\n{table}"
        )
    }

    #[test]
    fn source_round_trip_and_absence() {
        let mut p = Pointer::new(
            RelPath::new("sub/data").unwrap(),
            Kind::File,
            D.parse().unwrap(),
            1,
            None,
            false,
        );
        let plain = p.to_toml();
        assert!(!plain.contains("source"), "{plain}");
        p.meta.source = Some(Box::new(Source {
            url: "../registry".into(),
            path: "data/images".into(),
            rev: Some("v1".into()),
            commit: C.into(),
        }));
        let text = p.to_toml();
        assert!(
            text.starts_with(&plain),
            "the plain keys come first, unchanged:\n{text}"
        );
        assert!(
            text.ends_with(&format!(
                "\n[source]\nurl = \"../registry\"\npath = \"data/images\"\nrev = \"v1\"\ncommit = \"{C}\"\n"
            )),
            "{text}"
        );
        assert_eq!(parse(&text).unwrap(), p);
        p.meta.source.as_mut().unwrap().rev = None;
        let back = parse(&p.to_toml()).unwrap();
        assert_eq!(back.meta.source.unwrap().rev, None);
        assert_eq!(
            Source {
                url: "u".into(),
                path: "p".into(),
                rev: Some("v1".into()),
                commit: C.into()
            }
            .describe(),
            "u@v1, 0123456"
        );
    }

    #[test]
    fn refuses_bad_sources() {
        let ok = format!("url = \"../registry\"\npath = \"data/images\"\nrev = \"v1\"\ncommit = \"{C}\"\n");
        assert!(parse(&with_source(&ok)).is_ok());
        let cases = [
            // path: escapes, absolute, reserved, not normalized, empty
            ok.replace("\"data/images\"", "\"../../etc\""),
            ok.replace("\"data/images\"", "\"/etc/passwd\""),
            ok.replace("\"data/images\"", "\".git/config\""),
            ok.replace("\"data/images\"", "\"a/./b\""),
            ok.replace("\"data/images\"", "\"a\\\\b\""),
            ok.replace("\"data/images\"", "\"\""),
            // commit: short, upper case, not hex, not a string
            ok.replace(C, "0123456"),
            ok.replace(C, &C.to_uppercase()),
            ok.replace(C, &"g".repeat(40)),
            ok.replace(&format!("\"{C}\""), "1"),
            // url and rev: empty or holding control characters
            ok.replace("\"../registry\"", "\"\""),
            ok.replace("\"../registry\"", "\"../reg\\u001b[2Jistry\""),
            ok.replace("\"v1\"", "\"\""),
            ok.replace("\"v1\"", "\"v1\\n\""),
            // missing fields, unknown fields
            ok.replace(&format!("commit = \"{C}\"\n"), ""),
            ok.replace("url = \"../registry\"\n", ""),
            format!("{ok}extra = 1\n"),
        ];
        for c in cases {
            let text = with_source(&c);
            assert!(
                matches!(parse(&text), Err(PointerError::Malformed { .. })),
                "accepted: {text}"
            );
        }
        // `source` must be a table
        let bad = format!(
            "version = 1\npath = \"data\"\ntype = \"file\"\ndigest = \"{D}\"\nsize = 1\nsource = \"x\"\n"
        );
        assert!(parse(&bad).is_err());
    }
}
