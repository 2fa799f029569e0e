//! The stat cache: remembers the digest of each workspace file together with its size, mtime,
//! ctime and inode, so unchanged files are never hashed again.
//!
//! Racy files follow git's rule: a file whose mtime is not older than the moment the stat cache
//! is written could change again within the same timestamp tick unnoticed, so it is not recorded
//! and will be hashed next time.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::fs::{IoContext, IoError};
use crate::hash::Digest;

const HEADER: &str = "mlv-stat 1";

/// The stat fields that identify an unchanged file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
}

impl Stat {
    /// The stat fields of `meta`.
    pub fn of(meta: &Metadata) -> Stat {
        Stat {
            size: meta.len(),
            mtime_ns: meta
                .mtime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.mtime_nsec()),
            ctime_ns: meta
                .ctime()
                .saturating_mul(1_000_000_000)
                .saturating_add(meta.ctime_nsec()),
            ino: meta.ino(),
        }
    }
}

/// The stat cache of one repository.
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    entries: HashMap<String, (Stat, Digest)>,
    dirty: bool,
}

impl StatCache {
    /// Loads the stat cache; a missing or unreadable one is empty (it is only a cache).
    pub fn load(state_dir: &Path) -> StatCache {
        let path = state_dir.join("stat");
        let entries = std::fs::read_to_string(&path)
            .ok()
            .map(|t| parse(&t))
            .unwrap_or_default();
        StatCache {
            path,
            entries,
            dirty: false,
        }
    }

    /// The recorded digest of `rel`, if its stat fields still match.
    pub fn lookup(&self, rel: &str, meta: &Metadata) -> Option<Digest> {
        let (stat, digest) = self.entries.get(rel)?;
        (*stat == Stat::of(meta)).then_some(*digest)
    }

    /// Records the digest of `rel` as of `meta`.
    pub fn record(&mut self, rel: String, meta: &Metadata, digest: Digest) {
        let stat = Stat::of(meta);
        if self.entries.get(&rel) != Some(&(stat, digest)) {
            self.entries.insert(rel, (stat, digest));
            self.dirty = true;
        }
    }

    /// Forgets every entry under `prefix` (a file or a directory).
    pub fn forget_under(&mut self, prefix: &str) {
        let before = self.entries.len();
        self.entries.retain(|k, _| {
            !(k == prefix || (k.starts_with(prefix) && k.as_bytes().get(prefix.len()) == Some(&b'/')))
        });
        self.dirty |= self.entries.len() != before;
    }

    /// Writes the stat cache atomically if it changed, leaving out racy entries.
    pub fn save(&mut self) -> Result<(), IoError> {
        if !self.dirty {
            return Ok(());
        }
        crate::crash_point!("stat.before_save");
        let dir = self.path.parent().expect("state file has a parent");
        fs_err::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
        let mut tmp = tempfile::NamedTempFile::new_in(dir).at("cannot create a temporary file in", dir)?;
        // The temp file's own mtime is "now" at the file system's granularity.
        let now = Stat::of(&tmp.as_file().metadata().at("cannot stat", tmp.path())?).mtime_ns;
        let mut out = String::with_capacity(self.entries.len() * 120 + 16);
        out.push_str(HEADER);
        out.push('\n');
        for (rel, (s, d)) in &self.entries {
            if s.mtime_ns >= now || rel.contains('\n') {
                continue;
            }
            use std::fmt::Write as _;
            let _ = writeln!(
                out,
                "{d} {} {} {} {} {rel}",
                s.size, s.mtime_ns, s.ctime_ns, s.ino
            );
        }
        tmp.write_all(out.as_bytes()).at("cannot write", tmp.path())?;
        tmp.persist(&self.path)
            .map_err(|e| IoError::new("cannot replace", &self.path, e.error))?;
        self.dirty = false;
        crate::crash_point!("stat.after_save");
        Ok(())
    }
}

fn parse(text: &str) -> HashMap<String, (Stat, Digest)> {
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    lines.filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<(String, (Stat, Digest))> {
    let mut it = line.splitn(6, ' ');
    let digest = it.next()?.parse().ok()?;
    let stat = Stat {
        size: it.next()?.parse().ok()?,
        mtime_ns: it.next()?.parse().ok()?,
        ctime_ns: it.next()?.parse().ok()?,
        ino: it.next()?.parse().ok()?,
    };
    Some((it.next()?.to_string(), (stat, digest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_save_unless_racy() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("old");
        std::fs::write(&old, b"x").unwrap();
        let f = std::fs::File::options().write(true).open(&old).unwrap();
        f.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(10))
            .unwrap();
        let new = dir.path().join("new");
        let d = Digest::of_bytes(b"x");
        let mut sc = StatCache::load(dir.path());
        let old_meta = std::fs::metadata(&old).unwrap();
        sc.record("a/old file".into(), &old_meta, d);
        std::fs::write(&new, b"x").unwrap();
        // a file modified "in the future" relative to the save is racy
        let f = std::fs::File::options().write(true).open(&new).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        sc.record("new".into(), &std::fs::metadata(&new).unwrap(), d);
        sc.save().unwrap();
        let back = StatCache::load(dir.path());
        assert_eq!(back.lookup("a/old file", &old_meta), Some(d));
        assert_eq!(back.lookup("new", &std::fs::metadata(&new).unwrap()), None);
        sc.forget_under("a");
        assert!(sc.lookup("a/old file", &old_meta).is_none());
    }
}
