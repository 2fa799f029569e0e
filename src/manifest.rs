//! Directory manifests: the sorted list of what a tracked directory holds, stored in the cache
//! as an object like any other. Its digest is what a directory pointer records.
//!
//! Canonical form (one entry per line, sorted by path bytes, UTF-8, `\n` line ends):
//! ```text
//! {"version":1,"entries":[
//! {"path":"a.csv","digest":"…","size":12},
//! {"path":"bin/run.sh","digest":"…","size":5,"exec":true},
//! {"path":"empty","type":"dir"},
//! {"path":"latest","type":"symlink","target":"a.csv"}
//! ]}
//! ```

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::hash::Digest;
use crate::relpath::RelPath;

/// The manifest format version this build writes and reads.
pub const MANIFEST_VERSION: u32 = 1;

/// What kind of thing an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// A regular file with content in the cache.
    #[default]
    File,
    /// An empty directory (directories with files are implied by their files' paths).
    Dir,
    /// A symbolic link, stored as its target text (never followed).
    Symlink,
}

impl EntryKind {
    fn is_file(&self) -> bool {
        *self == EntryKind::File
    }
}

/// One entry of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Path relative to the tracked directory, `/`-separated.
    pub path: String,
    /// Entry kind; absent means a file.
    #[serde(rename = "type", default, skip_serializing_if = "EntryKind::is_file")]
    pub kind: EntryKind,
    /// Content digest (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
    /// Size in bytes (files only).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Executable bit (files only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exec: bool,
    /// Link target (symlinks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Entry {
    /// A regular file.
    pub fn file(path: String, digest: Digest, size: u64, exec: bool) -> Entry {
        Entry {
            path,
            kind: EntryKind::File,
            digest: Some(digest),
            size,
            exec,
            target: None,
        }
    }

    /// An empty directory.
    pub fn dir(path: String) -> Entry {
        Entry {
            path,
            kind: EntryKind::Dir,
            digest: None,
            size: 0,
            exec: false,
            target: None,
        }
    }

    /// A symbolic link.
    pub fn symlink(path: String, target: String) -> Entry {
        Entry {
            path,
            kind: EntryKind::Symlink,
            digest: None,
            size: 0,
            exec: false,
            target: Some(target),
        }
    }

    /// Whether two entries describe the same content and mode.
    pub fn same_content(&self, other: &Entry) -> bool {
        self.kind == other.kind
            && self.digest == other.digest
            && self.exec == other.exec
            && self.target == other.target
    }
}

/// A directory's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Entries, sorted by path.
    pub entries: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    entries: Vec<Entry>,
}

/// A manifest that does not parse or violates its invariants.
#[derive(Debug, thiserror::Error)]
#[error("{}malformed manifest {digest}: {reason}", .data.as_ref().map(|d| format!("{d}: ")).unwrap_or_default())]
pub struct ManifestError {
    /// The manifest object.
    pub digest: Digest,
    /// What is wrong.
    pub reason: String,
    /// The tracked directory it describes, as displayed, when the caller knows it.
    pub data: Option<String>,
}

/// What to do about a damaged cache object or manifest.
pub(crate) const REPAIR_HINT: &str =
    "`mlv fsck --repair` replaces it with a verified copy from the remote; or re-add the data";

impl ManifestError {
    /// A manifest that does not parse is damaged data.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        crate::kind::ErrorKind::Integrity
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(REPAIR_HINT.into())
    }
}

impl Manifest {
    /// Builds a manifest, sorting entries.
    pub fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    /// Total bytes of the files.
    pub fn size(&self) -> u64 {
        self.entries.iter().fold(0, |t, e| t.saturating_add(e.size))
    }

    /// Number of regular files.
    pub fn file_count(&self) -> u64 {
        self.entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64
    }

    /// The canonical bytes: the same tree always gives the same bytes and digest.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.entries.len() * 120);
        self.write_to(&mut out).expect("writing to memory cannot fail");
        out
    }

    /// The digest of the canonical bytes, computed without holding them in memory.
    pub fn digest(&self) -> Digest {
        let mut hasher = blake3::Hasher::new();
        let mut buffered = std::io::BufWriter::with_capacity(1 << 16, &mut hasher);
        self.write_to(&mut buffered)
            .and_then(|()| std::io::Write::flush(&mut buffered))
            .expect("hashing cannot fail");
        drop(buffered);
        Digest::from(hasher.finalize())
    }

    /// Writes the canonical bytes.
    pub fn write_to(&self, mut out: impl std::io::Write) -> std::io::Result<()> {
        out.write_all(b"{\"version\":1,\"entries\":[")?;
        for (i, e) in self.entries.iter().enumerate() {
            out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
            serde_json::to_writer(&mut out, e).map_err(std::io::Error::other)?;
        }
        out.write_all(b"\n]}\n")
    }

    /// Parses and validates manifest bytes.
    pub fn parse(digest: &Digest, bytes: &[u8]) -> Result<Manifest, ManifestError> {
        Manifest::checked(digest, serde_json::from_slice(bytes))
    }

    /// Parses and validates a manifest as it is read (the caller checks what the bytes hash to).
    pub fn parse_reader(digest: &Digest, reader: impl std::io::Read) -> Result<Manifest, ManifestError> {
        Manifest::checked(digest, serde_json::from_reader(reader))
    }

    fn checked(digest: &Digest, wire: serde_json::Result<Wire>) -> Result<Manifest, ManifestError> {
        let err = |reason: String| ManifestError {
            digest: *digest,
            reason,
            data: None,
        };
        let wire = wire.map_err(|e| err(e.to_string()))?;
        if wire.version != MANIFEST_VERSION {
            return Err(err(format!("unsupported version {}", wire.version)));
        }
        check_entries(&wire.entries).map_err(err)?;
        Ok(Manifest {
            entries: wire.entries,
        })
    }
}

/// The invariants of a manifest's entries: valid work-tree paths, strictly sorted (so no
/// duplicates), fields that fit each kind, nothing below a file or link, and a total size
/// that fits in 64 bits.
fn check_entries(entries: &[Entry]) -> Result<(), String> {
    let mut prev: Option<&str> = None;
    let mut leaves: HashSet<&str> = HashSet::new();
    let mut total: u64 = 0;
    for e in entries {
        RelPath::new(&e.path).map_err(|x| format!("entry {:?}: {x}", e.path))?;
        if prev.is_some_and(|p| p >= e.path.as_str()) {
            return Err(format!("entries not sorted or duplicated at {:?}", e.path));
        }
        prev = Some(&e.path);
        let valid = match e.kind {
            EntryKind::File => e.digest.is_some() && e.target.is_none(),
            EntryKind::Dir => e.digest.is_none() && e.target.is_none() && e.size == 0 && !e.exec,
            EntryKind::Symlink => {
                e.digest.is_none() && e.size == 0 && !e.exec && e.target.as_deref().is_some_and(valid_target)
            }
        };
        if !valid {
            return Err(format!("entry {:?} has fields that do not fit its type", e.path));
        }
        // `a` a file or link and `a/b` an entry: checkout would write through the link
        let mut ancestors = e.path.match_indices('/').map(|(i, _)| &e.path[..i]);
        if let Some(a) = ancestors.find(|a| leaves.contains(a)) {
            return Err(format!(
                "entry {:?} lies below {a:?}, which is not a directory",
                e.path
            ));
        }
        if e.kind != EntryKind::Dir {
            leaves.insert(&e.path);
        }
        total = total
            .checked_add(e.size)
            .ok_or_else(|| format!("entry sizes add up past {} bytes", u64::MAX))?;
    }
    Ok(())
}

/// A link target a file system can hold: not empty, no NUL, at most `MAX_PATH` bytes.
fn valid_target(t: &str) -> bool {
    !t.is_empty() && !t.contains('\0') && t.len() <= crate::relpath::MAX_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let d = Digest::of_bytes(b"a");
        let m = Manifest::new(vec![
            Entry::file("z".into(), d, 1, true),
            Entry::dir("empty".into()),
            Entry::symlink("link".into(), "z".into()),
            Entry::file("a/b".into(), d, 1, false),
        ]);
        let bytes = m.to_bytes();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("{\"version\":1,\"entries\":[\n{\"path\":\"a/b\""),
            "{text}"
        );
        let back = Manifest::parse(&Digest::of_bytes(&bytes), &bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!(m.digest(), Digest::of_bytes(&bytes));
        assert_eq!((m.size(), m.file_count()), (2, 2));
        let empty = Manifest::new(vec![]);
        assert_eq!(Manifest::parse(&d, &empty.to_bytes()).unwrap(), empty);
    }

    #[test]
    fn rejects_hostile_manifests() {
        let d = Digest::of_bytes(b"a");
        let bad = [
            r#"{"version":1,"entries":[{"path":"../x","digest":"af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262","size":1}]}"#,
            r#"{"version":2,"entries":[]}"#,
            r#"{"version":1,"entries":[{"path":"a","type":"dir"},{"path":"a","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"a"}]}"#,
            r#"{"version":1,"entries":[{"path":"a","type":"symlink"}]}"#,
            r#"{"version":1,"entries":[{"path":".git/hooks/x","type":"dir"}]}"#,
            r#"{"version":1"#,
            r#"{"version":1,"entries":[{"path":"a\nb","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"a\\b","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"/abs","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"a//b","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"x/.MLV/y","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"l","type":"symlink","target":"/tmp"},{"path":"l/x","type":"dir"}]}"#,
            r#"{"version":1,"entries":[{"path":"l","type":"symlink","target":""}]}"#,
        ];
        for b in bad {
            assert!(Manifest::parse(&d, b.as_bytes()).is_err(), "{b}");
        }
    }
}
