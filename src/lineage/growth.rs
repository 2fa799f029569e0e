//! Whether one version of the lineage file keeps every record of another: the check behind
//! `mlv lineage verify --history`. A version is reduced to its lines' keys (the record id, or
//! for a line without one its own hash) and the blake3 of each line's exact bytes, so that two
//! versions compare without parsing records again.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::Serialize;

use crate::hash::Digest;

/// The lines of one version of the lineage file: key -> the hashes of the lines with that key.
#[derive(Debug, Default)]
pub struct Lines {
    by_key: HashMap<Rc<str>, HashSet<Digest>>,
}

/// The key of each line seen, by the line's hash.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: HashMap<Digest, Rc<str>>,
}

/// How a record of the older version fails to be in the newer one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// A line with the same id but other bytes replaces it.
    Edited,
    /// No line has its id.
    Removed,
}

/// A record of the older version missing from the newer one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lost {
    /// The record id (or `line:HASH` for a line without an id).
    pub record: String,
    /// The blake3 of the line's bytes in the older version.
    pub line: Digest,
    /// Edited or removed.
    pub change: Change,
}

impl Lines {
    /// The keys of a file's bytes; blank lines are skipped, a trailing `\r` is not part of a line.
    pub fn parse(bytes: &[u8]) -> Lines {
        Self::parse_with(bytes, &mut KeyCache::default())
    }

    /// [`Lines::parse`], parsing each distinct line once across versions: a line already seen
    /// (by its hash) takes its key from `cache`. Versions of an append-only file share most
    /// lines, so a long history costs a hash per line, not a JSON parse.
    pub fn parse_with(bytes: &[u8], cache: &mut KeyCache) -> Lines {
        let mut out = Lines::default();
        for raw in bytes.split(|b| *b == b'\n') {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let hash = Digest::of_bytes(raw);
            let key = cache
                .keys
                .entry(hash)
                .or_insert_with(|| {
                    serde_json::from_slice::<serde_json::Value>(raw)
                        .ok()
                        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(Rc::from))
                        .unwrap_or_else(|| Rc::from(format!("line:{hash}").as_str()))
                })
                .clone();
            out.by_key.entry(key).or_default().insert(hash);
        }
        out
    }

    /// The records of `self` that `newer` lacks (by id and exact bytes), sorted by id.
    pub fn lost_in(&self, newer: &Lines) -> Vec<Lost> {
        let mut out = Vec::new();
        for (key, hashes) in &self.by_key {
            let kept = newer.by_key.get(key);
            for h in hashes {
                if kept.is_some_and(|k| k.contains(h)) {
                    continue;
                }
                out.push(Lost {
                    record: key.to_string(),
                    line: *h,
                    change: if kept.is_some() {
                        Change::Edited
                    } else {
                        Change::Removed
                    },
                });
            }
        }
        out.sort_by(|a, b| a.record.cmp(&b.record).then(a.line.cmp(&b.line)));
        out
    }

    /// How many distinct lines.
    pub fn len(&self) -> usize {
        self.by_key.values().map(HashSet::len).sum()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// Whether `new` is `old` with whole lines appended: then `new` keeps every line of `old`
/// without parsing either (the common case: records are appended).
pub fn appended(old: &[u8], new: &[u8]) -> bool {
    if !new.starts_with(old) {
        return false;
    }
    // `old` must end on a line boundary, or `new` must start a line where `old` ends
    old.is_empty() || old.ends_with(b"\n") || matches!(new.get(old.len()), None | Some(b'\n' | b'\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_interleaving_editing_and_removing() {
        let old = Lines::parse(b"{\"id\":\"a\",\"x\":1}\n{\"id\":\"b\"}\n");
        // appended, reordered (a union merge), CRLF: still every line
        let grown = Lines::parse(b"{\"id\":\"b\"}\r\n{\"id\":\"c\"}\n{\"id\":\"a\",\"x\":1}\n");
        assert!(old.lost_in(&grown).is_empty());
        let edited = Lines::parse(b"{\"id\":\"a\",\"x\":2}\n{\"id\":\"b\"}\n");
        let lost = old.lost_in(&edited);
        assert_eq!(lost.len(), 1);
        assert_eq!((lost[0].record.as_str(), lost[0].change), ("a", Change::Edited));
        let removed = Lines::parse(b"{\"id\":\"a\",\"x\":1}\n");
        let lost = old.lost_in(&removed);
        assert_eq!((lost[0].record.as_str(), lost[0].change), ("b", Change::Removed));
        // a line that is not a record is keyed by its bytes
        let junk = Lines::parse(b"not json\n");
        assert_eq!(junk.lost_in(&Lines::default())[0].change, Change::Removed);
        assert_eq!(junk.len(), 1);
    }

    #[test]
    fn appended_means_whole_lines_added() {
        assert!(appended(b"", b"a\n"));
        assert!(appended(b"a\n", b"a\nb\n"));
        assert!(appended(b"a", b"a\nb\n"));
        assert!(appended(b"a\n", b"a\n"));
        assert!(!appended(b"ab", b"abc\n"));
        assert!(!appended(b"a\nb\n", b"b\na\n"));
    }
}
