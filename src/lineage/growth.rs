//! Whether one version of the lineage file keeps every record of another: the check behind
//! `mlv lineage verify --history`. A version is reduced to its lines' keys (the record id, or
//! for a line without one its own hash) and the blake3 of each line's exact bytes, so that two
//! versions compare without parsing records again.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::hash::Digest;

/// The lines of one version of the lineage file: key -> the hashes of the lines with that key.
#[derive(Debug, Default)]
pub struct Lines {
    by_key: HashMap<String, HashSet<Digest>>,
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
        let mut out = Lines::default();
        for raw in bytes.split(|b| *b == b'\n') {
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let hash = Digest::of_bytes(raw);
            let key = serde_json::from_slice::<serde_json::Value>(raw)
                .ok()
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_string))
                .unwrap_or_else(|| format!("line:{hash}"));
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
                    record: key.clone(),
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
}
