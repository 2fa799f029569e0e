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

/// One entry of a manifest: a path and what is there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to the tracked directory, `/`-separated.
    pub path: String,
    /// What the path holds.
    pub node: Node,
}

/// What a manifest entry holds: each kind carries exactly its own fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A regular file with content in the cache.
    File {
        /// Content digest.
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Executable bit.
        exec: bool,
    },
    /// An empty directory (directories with files are implied by their files' paths).
    Dir,
    /// A symbolic link, stored as its target text (never followed).
    Symlink {
        /// The link's target.
        target: String,
    },
}

impl Entry {
    /// A regular file.
    pub fn file(path: String, digest: Digest, size: u64, exec: bool) -> Entry {
        Entry {
            path,
            node: Node::File { digest, size, exec },
        }
    }

    /// An empty directory.
    pub fn dir(path: String) -> Entry {
        Entry {
            path,
            node: Node::Dir,
        }
    }

    /// A symbolic link.
    pub fn symlink(path: String, target: String) -> Entry {
        Entry {
            path,
            node: Node::Symlink { target },
        }
    }

    /// A file's content digest; `None` for the other kinds.
    pub fn digest(&self) -> Option<Digest> {
        match self.node {
            Node::File { digest, .. } => Some(digest),
            Node::Dir | Node::Symlink { .. } => None,
        }
    }

    /// Size in bytes: a file's, 0 for the other kinds.
    pub fn size(&self) -> u64 {
        match self.node {
            Node::File { size, .. } => size,
            Node::Dir | Node::Symlink { .. } => 0,
        }
    }

    /// Whether two entries describe the same content and mode (a file's size follows from its
    /// digest, so it is not compared).
    pub fn same_content(&self, other: &Entry) -> bool {
        match (&self.node, &other.node) {
            (
                Node::File { digest, exec, .. },
                Node::File {
                    digest: d, exec: x, ..
                },
            ) => digest == d && exec == x,
            (Node::Dir, Node::Dir) => true,
            (Node::Symlink { target }, Node::Symlink { target: t }) => target == t,
            _ => false,
        }
    }
}

impl Node {
    /// Whether both are files, both directories or both links.
    pub fn same_kind(&self, other: &Node) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
    }
}

/// The `type` field of an entry on disk; absent means a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
enum WireKind {
    #[default]
    File,
    Dir,
    Symlink,
}

/// An entry as it is written: the path, then the fields of its kind in canonical order (a
/// file's `size` left out when 0, `exec` when false).
struct WireEntryOut<'a>(&'a Entry);

impl Serialize for WireEntryOut<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let Entry { path, node } = self.0;
        let mut out = s.serialize_struct("Entry", 4)?;
        out.serialize_field("path", path)?;
        match node {
            Node::File { digest, size, exec } => {
                out.serialize_field("digest", digest)?;
                if *size != 0 {
                    out.serialize_field("size", size)?;
                }
                if *exec {
                    out.serialize_field("exec", exec)?;
                }
            }
            Node::Dir => out.serialize_field("type", &WireKind::Dir)?,
            Node::Symlink { target } => {
                out.serialize_field("type", &WireKind::Symlink)?;
                out.serialize_field("target", target)?;
            }
        }
        out.end()
    }
}

/// An entry as it is read: any field may be present, [`WireEntryIn::node`] checks they fit
/// the kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEntryIn {
    path: String,
    #[serde(rename = "type", default)]
    kind: WireKind,
    #[serde(default)]
    digest: Option<Digest>,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    exec: bool,
    #[serde(default)]
    target: Option<String>,
}

impl WireEntryIn {
    /// The node these fields describe, or `None` when they do not fit the kind (a file without
    /// a digest, a directory with a size, a link without a valid target, ...).
    fn node(&self) -> Option<Node> {
        let WireEntryIn {
            path: _,
            kind,
            digest,
            size,
            exec,
            target,
        } = self;
        match (kind, digest, target) {
            (WireKind::File, Some(digest), None) => Some(Node::File {
                digest: *digest,
                size: *size,
                exec: *exec,
            }),
            (WireKind::Dir, None, None) if *size == 0 && !exec => Some(Node::Dir),
            (WireKind::Symlink, None, Some(target)) if *size == 0 && !exec && valid_target(target) => {
                Some(Node::Symlink {
                    target: target.clone(),
                })
            }
            _ => None,
        }
    }
}

/// A directory's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// Entries, sorted by path.
    pub entries: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    version: u32,
    entries: Vec<WireEntryIn>,
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

/// What a path inside a tracked directory is, by its manifest ([`Manifest::part`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Nothing there.
    Absent,
    /// A symbolic link.
    Symlink {
        /// Its target text.
        target: String,
    },
    /// A file.
    File {
        /// Content digest.
        digest: Digest,
        /// Size in bytes.
        size: u64,
        /// Executable bit.
        exec: bool,
    },
    /// A directory: the entries below it, their paths relative to it (none for an empty one).
    Dir(Vec<Entry>),
}

impl Manifest {
    /// Builds a manifest, sorting entries.
    pub fn new(mut entries: Vec<Entry>) -> Manifest {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        Manifest { entries }
    }

    /// The part of the tree at `inner`, a path relative to the directory (`None` or empty:
    /// the whole tree). One lookup shared by `get`, `import` and the Python API.
    pub fn part(&self, inner: Option<&str>) -> Part {
        let Some(inner) = inner.filter(|s| !s.is_empty()) else {
            return Part::Dir(self.entries.clone());
        };
        let prefix = format!("{inner}/");
        let (mut below, mut empty_dir) = (Vec::new(), false);
        for e in &self.entries {
            if e.path == inner {
                match &e.node {
                    Node::File { digest, size, exec } => {
                        return Part::File {
                            digest: *digest,
                            size: *size,
                            exec: *exec,
                        }
                    }
                    Node::Symlink { target } => {
                        return Part::Symlink {
                            target: target.clone(),
                        }
                    }
                    Node::Dir => empty_dir = true,
                }
            } else if let Some(rest) = e.path.strip_prefix(&prefix) {
                below.push(Entry {
                    path: rest.to_string(),
                    node: e.node.clone(),
                });
            }
        }
        if below.is_empty() && !empty_dir {
            Part::Absent
        } else {
            Part::Dir(below)
        }
    }

    /// Total bytes of the files.
    pub fn size(&self) -> u64 {
        self.entries.iter().fold(0, |t, e| t.saturating_add(e.size()))
    }

    /// Number of regular files.
    pub fn file_count(&self) -> u64 {
        self.entries
            .iter()
            .filter(|e| matches!(e.node, Node::File { .. }))
            .count() as u64
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
            serde_json::to_writer(&mut out, &WireEntryOut(e)).map_err(std::io::Error::other)?;
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
        let nodes = check_entries(&wire.entries).map_err(err)?;
        let entries = (wire.entries.into_iter().zip(nodes))
            .map(|(w, node)| Entry { path: w.path, node })
            .collect();
        Ok(Manifest { entries })
    }
}

/// The invariants of a manifest's entries: valid work-tree paths, strictly sorted (so no
/// duplicates), fields that fit each kind, nothing below a file or link, and a total size
/// that fits in 64 bits. Gives each entry's node, in order.
fn check_entries(entries: &[WireEntryIn]) -> Result<Vec<Node>, String> {
    let mut nodes = Vec::with_capacity(entries.len());
    let mut prev: Option<&str> = None;
    let mut leaves: HashSet<&str> = HashSet::new();
    let mut total: u64 = 0;
    for e in entries {
        RelPath::new(&e.path).map_err(|x| format!("entry {:?}: {x}", e.path))?;
        if prev.is_some_and(|p| p >= e.path.as_str()) {
            return Err(format!("entries not sorted or duplicated at {:?}", e.path));
        }
        prev = Some(&e.path);
        let node = e
            .node()
            .ok_or_else(|| format!("entry {:?} has fields that do not fit its type", e.path))?;
        // `a` a file or link and `a/b` an entry: checkout would write through the link
        let mut ancestors = e.path.match_indices('/').map(|(i, _)| &e.path[..i]);
        if let Some(a) = ancestors.find(|a| leaves.contains(a)) {
            return Err(format!(
                "entry {:?} lies below {a:?}, which is not a directory",
                e.path
            ));
        }
        if !matches!(node, Node::Dir) {
            leaves.insert(&e.path);
        }
        total = total
            .checked_add(e.size)
            .ok_or_else(|| format!("entry sizes add up past {} bytes", u64::MAX))?;
        nodes.push(node);
    }
    Ok(nodes)
}

/// A link target a file system can hold: not empty, no NUL, at most `MAX_PATH` bytes.
fn valid_target(t: &str) -> bool {
    !t.is_empty() && !t.contains('\0') && t.len() <= crate::relpath::MAX_PATH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_tree() {
        let file = |p: &str, n: u8| Entry::file(p.into(), Digest::of_bytes(&[n]), 1, false);
        let m = Manifest::new(vec![
            file("a/x", 1),
            file("a/y/z", 2),
            file("ab", 3),
            Entry::dir("e".into()),
            Entry::symlink("l".into(), "ab".into()),
        ]);
        match m.part(Some("a")) {
            Part::Dir(below) => {
                let paths: Vec<&str> = below.iter().map(|e| e.path.as_str()).collect();
                assert_eq!(paths, ["x", "y/z"]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(m.part(None), Part::Dir(m.entries.clone()));
        assert_eq!(m.part(Some("")), Part::Dir(m.entries.clone()));
        assert!(matches!(m.part(Some("ab")), Part::File { .. }));
        assert!(matches!(m.part(Some("a/y/z")), Part::File { .. }));
        assert_eq!(m.part(Some("e")), Part::Dir(vec![]));
        assert_eq!(m.part(Some("l")), Part::Symlink { target: "ab".into() });
        assert_eq!(m.part(Some("b")), Part::Absent);
        assert_eq!(m.part(Some("a/y/z/w")), Part::Absent);
        assert_eq!(m.part(Some("a/")), Part::Absent);
    }

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

    /// The canonical bytes of every kind of entry, pinned: a change here changes every
    /// directory's digest.
    #[test]
    fn canonical_bytes_are_pinned() {
        let d = Digest::of_bytes(b"a");
        let m = Manifest::new(vec![
            Entry::file("z".into(), d, 1, true),
            Entry::file("a b/\u{e9}\"q\".csv".into(), Digest::of_bytes(b"b"), 12, false),
            Entry::file("zero".into(), d, 0, false),
            Entry::dir("empty".into()),
            Entry::symlink("link".into(), "../z".into()),
        ]);
        let expected = concat!(
            "{\"version\":1,\"entries\":[\n",
            "{\"path\":\"a b/\u{e9}\\\"q\\\".csv\",\"digest\":\"10e5cf3d3c8a4f9f3468c8cc58eea84892a22fdadbc1acb22410190044c1d553\",\"size\":12},\n",
            "{\"path\":\"empty\",\"type\":\"dir\"},\n",
            "{\"path\":\"link\",\"type\":\"symlink\",\"target\":\"../z\"},\n",
            "{\"path\":\"z\",\"digest\":\"17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f\",\"size\":1,\"exec\":true},\n",
            "{\"path\":\"zero\",\"digest\":\"17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f\"}\n",
            "]}\n",
        );
        assert_eq!(String::from_utf8(m.to_bytes()).unwrap(), expected);
        assert_eq!(
            m.digest().to_string(),
            "d1040c915e495993a21cfdc1e9bd187dc85fdb56214c70491a0fedc4cfc2b762"
        );
        let back = Manifest::parse(&m.digest(), expected.as_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.entries[1].node, Node::Dir);
        assert_eq!((m.size(), m.file_count()), (13, 3));
        assert_eq!(m.entries.iter().filter_map(Entry::digest).count(), 3);
        assert_eq!(
            Manifest::new(vec![]).to_bytes(),
            b"{\"version\":1,\"entries\":[\n]}\n"
        );
    }

    /// Every input the parser refuses, with its exact reason; `$D` stands for a digest and
    /// `$LONG` for a 4097-byte name.
    #[test]
    fn every_rejection_has_its_message() {
        let long = "x".repeat(crate::relpath::MAX_PATH + 1);
        let fill = |s: &str| {
            s.replace(
                "$D",
                "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262",
            )
            .replace("$LONG", &long)
        };
        let d = Digest::of_bytes(b"a");
        let cases = [
            (
                r#"{"version":1"#,
                r#"EOF while parsing an object at line 1 column 12"#,
            ),
            (r#"not json"#, r#"expected ident at line 1 column 2"#),
            (
                r#"{"version":1,"entries":[],"extra":1}"#,
                r#"unknown field `extra`, expected `version` or `entries` at line 1 column 33"#,
            ),
            (
                r#"{"entries":[]}"#,
                r#"missing field `version` at line 1 column 14"#,
            ),
            (
                r#"{"version":1}"#,
                r#"missing field `entries` at line 1 column 13"#,
            ),
            (
                r#"{"version":"1","entries":[]}"#,
                r#"invalid type: string "1", expected u32 at line 1 column 14"#,
            ),
            (r#"{"version":2,"entries":[]}"#, r#"unsupported version 2"#),
            (
                r#"{"version":0,"entries":[{"path":"../x"}]}"#,
                r#"unsupported version 0"#,
            ),
            (
                r#"{"version":1,"entries":[{"digest":"$D","size":1}]}"#,
                r#"missing field `path` at line 1 column 110"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","digest":"$D","mode":1}]}"#,
                r#"unknown field `mode`, expected one of `path`, `type`, `digest`, `size`, `exec`, `target` at line 1 column 118"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"fifo"}]}"#,
                r#"unknown variant `fifo`, expected one of `file`, `dir`, `symlink` at line 1 column 49"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","digest":"zz"}]}"#,
                r#"`zz` is not a digest: expected 64 hex characters at line 1 column 50"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","digest":"$D","size":-1}]}"#,
                r#"invalid value: integer `-1`, expected u64 at line 1 column 121"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","digest":"$D","exec":1}]}"#,
                r#"invalid type: integer `1`, expected a boolean at line 1 column 120"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":7}]}"#,
                r#"invalid type: integer `7`, expected a string at line 1 column 63"#,
            ),
            (
                r#"{"version":1,"entries":{}}"#,
                r#"invalid type: map, expected a sequence at line 1 column 23"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"","type":"dir"}]}"#,
                r#"entry "": the path is the repository root"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"../x","digest":"$D","size":1}]}"#,
                r#"entry "../x": the path is outside the repository"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":".git/hooks/x","type":"dir"}]}"#,
                r#"entry ".git/hooks/x": the path is inside `.git`, which mlv manages"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"x/.MLV/y","type":"dir"}]}"#,
                r#"entry "x/.MLV/y": the path is inside `.mlv`, which mlv manages"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a\nb","type":"dir"}]}"#,
                r#"entry "a\nb": the path holds a control character"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a\\b","type":"dir"}]}"#,
                r#"entry "a\\b": the path is not normalized"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"/abs","type":"dir"}]}"#,
                r#"entry "/abs": the path is outside the repository"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a//b","type":"dir"}]}"#,
                r#"entry "a//b": the path is not normalized"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a/./b","type":"dir"}]}"#,
                r#"entry "a/./b": the path is not normalized"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"$LONG","type":"dir"}]}"#,
                r#"entry "$LONG": the path or one of its names is too long"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"b","type":"dir"},{"path":"a","type":"dir"}]}"#,
                r#"entries not sorted or duplicated at "a""#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"dir"},{"path":"a","type":"dir"}]}"#,
                r#"entries not sorted or duplicated at "a""#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","size":3,"exec":true}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","digest":"$D","target":"b"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"dir","digest":"$D"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"dir","size":1}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"dir","exec":true}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"dir","target":"b"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":""}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":"b\u0000c"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":"$LONG"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":"b","digest":"$D"}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":"b","size":1}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"a","type":"symlink","target":"b","exec":true}]}"#,
                r#"entry "a" has fields that do not fit its type"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"l","type":"symlink","target":"/tmp"},{"path":"l/x","type":"dir"}]}"#,
                r#"entry "l/x" lies below "l", which is not a directory"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"f","digest":"$D","size":1},{"path":"f/g/h","digest":"$D","size":1}]}"#,
                r#"entry "f/g/h" lies below "f", which is not a directory"#,
            ),
            (
                r#"{"version":1,"entries":[{"path":"d","type":"dir"},{"path":"d/x","type":"dir"},{"path":"e","digest":"$D","size":18446744073709551615},{"path":"f","digest":"$D","size":1}]}"#,
                r#"entry sizes add up past 18446744073709551615 bytes"#,
            ),
        ];
        for (input, reason) in cases {
            let input = fill(input);
            let err = Manifest::parse(&d, input.as_bytes()).unwrap_err();
            assert_eq!(err.reason, fill(reason), "{input}");
            let read = Manifest::parse_reader(&d, input.as_bytes()).unwrap_err();
            if !reason.contains(" at line ") {
                assert_eq!(read.reason, fill(reason), "{input}");
            }
        }
        let err = Manifest::parse(&d, br#"{"version":2,"entries":[]}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed manifest 17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f: unsupported version 2"
        );
        let err = ManifestError {
            data: Some("data/images".into()),
            ..err
        };
        assert_eq!(
            err.to_string(),
            "data/images: malformed manifest 17762fddd969a453925d65717ac3eea21320b66b54342fde15128d6caf21215f: unsupported version 2"
        );
        // fields a kind does not use are accepted at their defaults
        let ok = Manifest::parse(
            &d,
            br#"{"version":1,"entries":[{"path":"a","type":"dir","size":0,"exec":false}]}"#,
        );
        assert_eq!(ok.unwrap(), Manifest::new(vec![Entry::dir("a".into())]));
    }

    #[test]
    fn same_content_compares_kind_digest_mode_and_target() {
        let (a, b) = (Digest::of_bytes(b"a"), Digest::of_bytes(b"b"));
        let f = |d, size, exec| Entry::file("p".into(), d, size, exec);
        assert!(f(a, 1, false).same_content(&f(a, 2, false)));
        assert!(!f(a, 1, false).same_content(&f(b, 1, false)));
        assert!(!f(a, 1, false).same_content(&f(a, 1, true)));
        assert!(Entry::dir("p".into()).same_content(&Entry::dir("q".into())));
        let l = |t: &str| Entry::symlink("p".into(), t.into());
        assert!(l("x").same_content(&l("x")));
        assert!(!l("x").same_content(&l("y")));
        assert!(!l("x").same_content(&Entry::dir("p".into())));
        assert!(!f(a, 0, false).same_content(&Entry::dir("p".into())));
        assert!(Node::Dir.same_kind(&Node::Dir));
        assert!(!f(a, 0, false).node.same_kind(&Node::Dir));
    }
}
