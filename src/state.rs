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
///
/// Memory matters (a million files): entries are kept in one vector sorted by path, 80 bytes
/// each plus the path, instead of a hash map of twice that. Paths recorded that were not known
/// yet wait in `pending` until the next save; a lookup does not see them (it only costs a
/// hash).
#[derive(Debug)]
pub struct StatCache {
    path: PathBuf,
    entries: Vec<Rec>,
    /// Where each path's record is, by a 64-bit hash of the path: one probe instead of a
    /// binary search's twenty cache misses. A path whose hash another path took is found by
    /// binary search.
    index: HashMap<u64, u32>,
    pending: Vec<Rec>,
    dirty: bool,
}

/// One remembered file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    path: Box<str>,
    stat: Stat,
    digest: Digest,
}

impl StatCache {
    /// Loads the stat cache; a missing or unreadable one is empty (it is only a cache).
    pub fn load(state_dir: &Path) -> StatCache {
        let path = state_dir.join("stat");
        let mut entries = std::fs::File::open(&path)
            .ok()
            .and_then(|f| parse(std::io::BufReader::new(f)).ok())
            .unwrap_or_default();
        // written sorted; an older or edited file is sorted once and saved again
        let unsorted = !entries.is_sorted_by(|a, b| a.path < b.path);
        if unsorted {
            sort_dedup(&mut entries);
        }
        let index = index_of(&entries);
        StatCache {
            path,
            entries,
            index,
            pending: Vec::new(),
            dirty: unsorted,
        }
    }

    fn find(&self, rel: &str) -> Result<usize, usize> {
        if let Some(&i) = self.index.get(&path_hash(rel)) {
            if *self.entries[i as usize].path == *rel {
                return Ok(i as usize);
            }
        }
        self.entries.binary_search_by(|r| (*r.path).cmp(rel))
    }

    /// The recorded digest of `rel`, if its stat fields still match.
    pub fn lookup(&self, rel: &str, now: &Stat) -> Option<Digest> {
        let r = &self.entries[self.find(rel).ok()?];
        (r.stat == *now).then_some(r.digest)
    }

    /// Records the digest of `rel` as of `stat`.
    pub fn record(&mut self, rel: String, stat: Stat, digest: Digest) {
        match self.find(&rel) {
            Ok(i) => {
                let r = &mut self.entries[i];
                if (r.stat, r.digest) != (stat, digest) {
                    (r.stat, r.digest) = (stat, digest);
                    self.dirty = true;
                }
            }
            Err(_) => {
                self.pending.push(Rec {
                    path: rel.into_boxed_str(),
                    stat,
                    digest,
                });
                self.dirty = true;
            }
        }
    }

    /// Forgets every entry under `prefix` (a file or a directory).
    pub fn forget_under(&mut self, prefix: &str) {
        let under = |r: &Rec| {
            let k = &*r.path;
            k == prefix || (k.starts_with(prefix) && k.as_bytes().get(prefix.len()) == Some(&b'/'))
        };
        let before = self.entries.len() + self.pending.len();
        self.entries.retain(|r| !under(r));
        self.pending.retain(|r| !under(r));
        if self.entries.len() + self.pending.len() != before {
            self.index = index_of(&self.entries);
            self.dirty = true;
        }
    }

    /// Writes the stat cache atomically if it changed, leaving out racy entries.
    pub fn save(&mut self) -> Result<(), IoError> {
        if !self.dirty {
            return Ok(());
        }
        if !self.pending.is_empty() {
            self.entries.append(&mut self.pending);
            sort_dedup(&mut self.entries);
            self.index = index_of(&self.entries);
        }
        crate::crash_point!("stat.before_save");
        let dir = self.path.parent().expect("state file has a parent");
        std::fs::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
        let tmp = crate::fs::new_temp_in(dir).at("cannot create a temporary file in", dir)?;
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

fn path_hash(path: &str) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault};
    BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(path)
}

fn index_of(entries: &[Rec]) -> HashMap<u64, u32> {
    let mut index = HashMap::with_capacity(entries.len());
    for (i, r) in entries.iter().enumerate() {
        // a cache of more than 4 billion files is searched, not indexed
        if let Ok(i) = u32::try_from(i) {
            index.entry(path_hash(&r.path)).or_insert(i);
        }
    }
    index
}

/// Sorts records by path; of several for one path, the last one stays.
fn sort_dedup(entries: &mut Vec<Rec>) {
    // stable: records for one path keep their order, the latest last
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out: Vec<Rec> = Vec::with_capacity(entries.len());
    for r in entries.drain(..) {
        match out.last_mut() {
            Some(last) if last.path == r.path => *last = r,
            _ => out.push(r),
        }
    }
    *entries = out;
}

impl StatCache {
    /// Writes the entries that are not racy (mtime before `now`), streaming: the file of a
    /// million entries is never held in memory.
    fn write_to(&self, file: &std::fs::File, now: i64) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
        writeln!(out, "{HEADER}")?;
        for Rec {
            path,
            stat: s,
            digest: d,
        } in &self.entries
        {
            if s.mtime_ns >= now || path.contains('\n') {
                continue;
            }
            writeln!(
                out,
                "{d} {} {} {} {} {path}",
                s.size, s.mtime_ns, s.ctime_ns, s.ino
            )?;
        }
        out.flush()
    }
}

/// Reads a stat cache line by line; a file with another header is an empty cache.
fn parse(mut input: impl std::io::BufRead) -> std::io::Result<Vec<Rec>> {
    let mut line = String::new();
    let mut entries = Vec::new();
    input.read_line(&mut line)?;
    if line.trim_end_matches('\n') != HEADER {
        return Ok(entries);
    }
    loop {
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(entries);
        }
        if let Some(rec) = parse_line(line.trim_end_matches('\n')) {
            entries.push(rec);
        }
    }
}

fn parse_line(line: &str) -> Option<Rec> {
    let mut it = line.splitn(6, ' ');
    let digest = it.next()?.parse().ok()?;
    let stat = Stat {
        size: it.next()?.parse().ok()?,
        mtime_ns: it.next()?.parse().ok()?,
        ctime_ns: it.next()?.parse().ok()?,
        ino: it.next()?.parse().ok()?,
    };
    Some(Rec {
        path: it.next()?.into(),
        stat,
        digest,
    })
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
