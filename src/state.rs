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

    /// The file's size in bytes.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.size == 0
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
        let entries = std::fs::File::open(&path)
            .ok()
            .and_then(|f| parse(std::io::BufReader::new(f)).ok())
            .unwrap_or_default();
        StatCache {
            path,
            entries,
            dirty: false,
        }
    }

    /// The recorded digest of `rel`, if its stat fields still match.
    pub fn lookup(&self, rel: &str, now: &Stat) -> Option<Digest> {
        let (stat, digest) = self.entries.get(rel)?;
        (stat == now).then_some(*digest)
    }

    /// Records the digest of `rel` as of `stat`.
    pub fn record(&mut self, rel: String, stat: Stat, digest: Digest) {
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
        let tmp = tempfile::NamedTempFile::new_in(dir).at("cannot create a temporary file in", dir)?;
        // The temp file's own mtime is "now" at the file system's granularity.
        let now = Stat::of(&tmp.as_file().metadata().at("cannot stat", tmp.path())?).mtime_ns;
        // Errors name the state file: the temp file is gone by the time the user reads them.
        self.write_to(tmp.as_file(), now).at("cannot write", &self.path)?;
        tmp.persist(&self.path)
            .map_err(|e| IoError::new("cannot replace", &self.path, e.error))?;
        self.dirty = false;
        crate::crash_point!("stat.after_save");
        Ok(())
    }
}

impl StatCache {
    /// Writes the entries that are not racy (mtime before `now`), streaming: the file of a
    /// million entries is never held in memory.
    fn write_to(&self, file: &std::fs::File, now: i64) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        writeln!(out, "{HEADER}")?;
        for (rel, (s, d)) in &self.entries {
            if s.mtime_ns >= now || rel.contains('\n') {
                continue;
            }
            writeln!(
                out,
                "{d} {} {} {} {} {rel}",
                s.size, s.mtime_ns, s.ctime_ns, s.ino
            )?;
        }
        out.flush()
    }
}

/// Reads a stat cache line by line; a file with another header is an empty cache.
fn parse(mut input: impl std::io::BufRead) -> std::io::Result<HashMap<String, (Stat, Digest)>> {
    let mut line = String::new();
    let mut entries = HashMap::new();
    input.read_line(&mut line)?;
    if line.trim_end_matches('\n') != HEADER {
        return Ok(entries);
    }
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(entries);
        }
        if let Some((rel, v)) = parse_line(line.trim_end_matches('\n')) {
            entries.insert(rel, v);
        }
    }
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
        sc.record("a/old file".into(), Stat::of(&old_meta), d);
        std::fs::write(&new, b"x").unwrap();
        // a file modified "in the future" relative to the save is racy
        let f = std::fs::File::options().write(true).open(&new).unwrap();
        f.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        sc.record("new".into(), Stat::of(&std::fs::metadata(&new).unwrap()), d);
        sc.save().unwrap();
        let back = StatCache::load(dir.path());
        assert_eq!(back.lookup("a/old file", &Stat::of(&old_meta)), Some(d));
        assert_eq!(
            back.lookup("new", &Stat::of(&std::fs::metadata(&new).unwrap())),
            None
        );
        sc.forget_under("a");
        assert!(sc.lookup("a/old file", &Stat::of(&old_meta)).is_none());
    }
}
