//! Pack files: many small cache objects in one file.
//!
//! Creating a file costs more than writing 16 KiB into one on most file systems (and making
//! 20,000 new files durable costs a file-system sync), so an `add` or `fetch` that stores
//! thousands of small objects writes them, one after the other, into a single pack file under
//! `<cache>/packs/`, with a sorted index at its end. A pack is immutable and published like a
//! loose object: written to a temporary file, synced, renamed into place; it is complete the
//! moment it is visible. Its name is the blake3 digest of its index, and every object read out
//! of it is verified against its own digest, as loose objects are.
//!
//! Layout (all integers little-endian):
//!
//! ```text
//! "MLVPACK1"                                    8 bytes
//! object bytes, concatenated                    (no per-object header)
//! index: per object, sorted by digest           48 bytes each:
//!     digest (32) | offset (u64) | length (u64)
//! footer                                        56 bytes:
//!     object count (u64) | index offset (u64) | blake3 of the index (32) | "MLVPEND1"
//! ```

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::fs::{DirectWriter, IoContext, IoError};
use crate::hash::Digest;

/// The directory under the cache root holding pack files.
pub const PACK_DIR: &str = "packs";
/// The file-name extension of pack files.
pub const PACK_EXT: &str = "pack";
/// Objects up to this size may go into a pack; larger ones are always loose files.
pub const MAX_PACKED_OBJECT: u64 = 1 << 20;

const HEAD_MAGIC: &[u8; 8] = b"MLVPACK1";
const FOOT_MAGIC: &[u8; 8] = b"MLVPEND1";
const ENTRY: usize = 48;
const FOOTER: usize = 56;

/// A pack file whose index is unusable (truncated, or not what its name says).
#[derive(Debug, thiserror::Error)]
#[error("pack file {path} is damaged: {reason}")]
pub struct DamagedPack {
    /// The pack file.
    pub path: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

/// The index of one published pack, held in memory (48 bytes per object).
#[derive(Debug)]
pub struct PackIndex {
    path: PathBuf,
    name: Digest,
    index: Vec<u8>,
    index_offset: u64,
}

impl PackIndex {
    /// Reads and checks the index of the pack at `path` (named `<digest>.pack`).
    pub fn load(path: &Path) -> Result<PackIndex, DamagedPack> {
        let damaged = |reason: String| DamagedPack {
            path: path.to_path_buf(),
            reason,
        };
        let name: Digest = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| damaged("its name is not a digest".into()))?;
        let file = File::open(path).map_err(|e| damaged(format!("cannot read it: {e}")))?;
        let len = file
            .metadata()
            .map_err(|e| damaged(format!("cannot stat it: {e}")))?
            .len();
        if len < (HEAD_MAGIC.len() + FOOTER) as u64 {
            return Err(damaged("too short".into()));
        }
        let mut foot = [0u8; FOOTER];
        file.read_exact_at(&mut foot, len - FOOTER as u64)
            .map_err(|e| damaged(format!("cannot read its footer: {e}")))?;
        if &foot[48..] != FOOT_MAGIC {
            return Err(damaged("no pack footer".into()));
        }
        let count = u64_at(&foot, 0);
        let index_offset = u64_at(&foot, 8);
        let index_len = count.checked_mul(ENTRY as u64);
        if index_len.and_then(|l| l.checked_add(index_offset)) != Some(len - FOOTER as u64)
            || index_offset < HEAD_MAGIC.len() as u64
        {
            return Err(damaged("its footer does not match its size".into()));
        }
        let mut index = vec![0u8; (len - FOOTER as u64 - index_offset) as usize];
        file.read_exact_at(&mut index, index_offset)
            .map_err(|e| damaged(format!("cannot read its index: {e}")))?;
        if Digest::of_bytes(&index) != name || foot[16..48] != name.as_bytes()[..] {
            return Err(damaged("its index does not hash to its name".into()));
        }
        let pack = PackIndex {
            path: path.to_path_buf(),
            name,
            index,
            index_offset,
        };
        pack.check_entries().map_err(damaged)?;
        Ok(pack)
    }

    /// Entries must be sorted, distinct and inside the object area.
    fn check_entries(&self) -> Result<(), String> {
        let mut last: Option<Digest> = None;
        for (digest, offset, len) in self.entries() {
            if last.is_some_and(|l| l >= digest) {
                return Err("its index is not sorted".into());
            }
            let end = offset.checked_add(len);
            if offset < HEAD_MAGIC.len() as u64 || end.is_none_or(|e| e > self.index_offset) {
                return Err(format!("object {digest} lies outside the object area"));
            }
            last = Some(digest);
        }
        Ok(())
    }

    /// The pack file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The pack's name: the digest of its index.
    pub fn name(&self) -> Digest {
        self.name
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.index.len() / ENTRY
    }

    /// Whether the pack holds no object.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Where `digest` lies in the pack: (offset, length).
    pub fn find(&self, digest: &Digest) -> Option<(u64, u64)> {
        let key = digest.as_bytes();
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let e = &self.index[mid * ENTRY..(mid + 1) * ENTRY];
            match e[..32].cmp(&key[..]) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some((u64_at(e, 32), u64_at(e, 40))),
            }
        }
        None
    }

    /// Every object: (digest, offset, length), sorted by digest.
    pub fn entries(&self) -> impl Iterator<Item = (Digest, u64, u64)> + '_ {
        self.index.chunks_exact(ENTRY).map(|e| {
            let mut d = [0u8; 32];
            d.copy_from_slice(&e[..32]);
            (Digest::from_raw(d), u64_at(e, 32), u64_at(e, 40))
        })
    }
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The packs of one cache, loaded on first use.
#[derive(Debug)]
pub struct PackSet {
    dir: PathBuf,
    loaded: RwLock<Option<Loaded>>,
}

#[derive(Debug, Default, Clone)]
struct Loaded {
    packs: Vec<Arc<PackIndex>>,
    damaged: Vec<Arc<DamagedPack>>,
}

impl PackSet {
    /// The packs in `dir` (not read until needed).
    pub fn new(dir: PathBuf) -> Self {
        PackSet {
            dir,
            loaded: RwLock::new(None),
        }
    }

    /// The directory holding the packs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn with<T>(&self, f: impl FnOnce(&Loaded) -> T) -> T {
        if let Some(l) = self.loaded.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return f(l);
        }
        let mut w = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        f(w.get_or_insert_with(|| load_dir(&self.dir)))
    }

    /// Where `digest` is packed, if it is: the pack, offset and length.
    pub fn find(&self, digest: &Digest) -> Option<(Arc<PackIndex>, u64, u64)> {
        self.with(|l| {
            l.packs
                .iter()
                .find_map(|p| p.find(digest).map(|(o, n)| (p.clone(), o, n)))
        })
    }

    /// Whether any pack holds `digest`.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.with(|l| l.packs.iter().any(|p| p.find(digest).is_some()))
    }

    /// The usable packs.
    pub fn packs(&self) -> Vec<Arc<PackIndex>> {
        self.with(|l| l.packs.clone())
    }

    /// The pack files that could not be used.
    pub fn damaged(&self) -> Vec<Arc<DamagedPack>> {
        self.with(|l| l.damaged.clone())
    }

    fn insert(&self, pack: PackIndex) {
        let pack = Arc::new(pack);
        // not loaded yet: loading will find it on disk
        let mut w = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = w.as_mut() {
            l.packs.push(pack);
        }
    }

    /// Deletes a pack file (garbage collection: its live objects are elsewhere by now).
    pub fn remove(&self, path: &Path) -> Result<(), IoError> {
        crate::fs::remove_file_if_exists(path)?;
        let mut w = self.loaded.write().unwrap_or_else(|e| e.into_inner());
        if let Some(l) = w.as_mut() {
            l.packs.retain(|p| p.path != path);
            l.damaged.retain(|d| d.path != path);
        }
        Ok(())
    }
}

fn load_dir(dir: &Path) -> Loaded {
    let mut out = Loaded::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == PACK_EXT))
        .collect();
    paths.sort();
    for path in paths {
        match PackIndex::load(&path) {
            Ok(p) => out.packs.push(Arc::new(p)),
            Err(d) => out.damaged.push(Arc::new(d)),
        }
    }
    out
}

/// Reads one object: a whole loose file, or a range of a pack file.
pub struct ObjectReader {
    file: File,
    pos: u64,
    end: u64,
}

impl ObjectReader {
    /// Reads `len` bytes of `file` from `offset` on.
    pub fn new(file: File, offset: u64, len: u64) -> Self {
        ObjectReader {
            file,
            pos: offset,
            end: offset + len,
        }
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.pos);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the pack file ends inside an object",
            ));
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// A pack being written: objects are appended to a temporary file, and [`PackWriter::finish`]
/// adds the index and publishes it.
pub struct PackWriter {
    out: DirectWriter,
    tmp: tempfile::TempPath,
    offset: u64,
    entries: Vec<(Digest, u64, u64)>,
    seen: HashSet<Digest>,
}

impl PackWriter {
    /// A new pack in a temporary file of `tmp_dir` (on the file system of the packs).
    pub fn new(tmp_dir: &Path) -> Result<PackWriter, IoError> {
        let tmp = crate::fs::temp_file_in(tmp_dir)?;
        let (file, tmp) = tmp.into_parts();
        let mut out = DirectWriter::new(file);
        out.write_all(HEAD_MAGIC)
            .map_err(|e| crate::fs::temp_write_error(&tmp, e))?;
        Ok(PackWriter {
            out,
            tmp,
            offset: HEAD_MAGIC.len() as u64,
            entries: Vec::new(),
            seen: HashSet::new(),
        })
    }

    /// Appends an object whose bytes the caller has hashed to `digest` (a second copy of the
    /// same object is skipped).
    pub fn append(&mut self, digest: Digest, bytes: &[u8]) -> Result<(), IoError> {
        if !self.seen.insert(digest) {
            return Ok(());
        }
        self.out
            .write_all(bytes)
            .map_err(|e| crate::fs::temp_write_error(&self.tmp, e))?;
        self.entries.push((digest, self.offset, bytes.len() as u64));
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Objects appended so far.
    pub fn objects(&self) -> usize {
        self.entries.len()
    }

    /// Object bytes appended so far.
    pub fn bytes(&self) -> u64 {
        self.offset - HEAD_MAGIC.len() as u64
    }

    /// Writes the index, makes the pack durable and publishes it into `set`'s directory (a pack
    /// is never visible before all its bytes are on disk). An empty pack is dropped. Returns the
    /// number of objects published.
    pub fn finish(mut self, set: &PackSet) -> Result<usize, IoError> {
        if self.entries.is_empty() {
            return Ok(0);
        }
        self.entries.sort_unstable_by_key(|e| e.0);
        let mut index = Vec::with_capacity(self.entries.len() * ENTRY);
        for (d, off, len) in &self.entries {
            index.extend_from_slice(d.as_bytes());
            index.extend_from_slice(&off.to_le_bytes());
            index.extend_from_slice(&len.to_le_bytes());
        }
        let name = Digest::of_bytes(&index);
        let mut foot = Vec::with_capacity(FOOTER);
        foot.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        foot.extend_from_slice(&self.offset.to_le_bytes());
        foot.extend_from_slice(name.as_bytes());
        foot.extend_from_slice(FOOT_MAGIC);
        let tmp = self.tmp;
        let write_err = |e| crate::fs::temp_write_error(&tmp, e);
        self.out.write_all(&index).map_err(write_err)?;
        self.out.write_all(&foot).map_err(write_err)?;
        let file = self.out.finish().map_err(write_err)?;
        crate::fs::set_readonly(&file).at("cannot set permissions on", &tmp)?;
        file.sync_all().at("cannot sync", &tmp)?;
        drop(file);
        crate::crash_point!("pack.before_publish");
        let dest = set.dir.join(format!("{name}.{PACK_EXT}"));
        std::fs::create_dir_all(&set.dir)
            .map_err(|e| IoError::new("cannot create directory", &set.dir, e))?;
        match tmp.persist_noclobber(&dest) {
            Ok(()) => {}
            // the same objects, already published under the same name
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => return Ok(self.entries.len()),
            Err(e) => return Err(IoError::new("cannot publish", &dest, e.error)),
        }
        crate::fs::sync_dir(&set.dir)?;
        let count = self.entries.len();
        let index_offset = self.offset;
        set.insert(PackIndex {
            path: dest,
            name,
            index,
            index_offset,
        });
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(n: usize) -> Vec<(Digest, Vec<u8>)> {
        (0..n)
            .map(|i| {
                let b = format!("object number {i}").repeat(i % 7 + 1).into_bytes();
                (Digest::of_bytes(&b), b)
            })
            .collect()
    }

    fn read(set: &PackSet, d: &Digest) -> Vec<u8> {
        let (pack, off, len) = set.find(d).unwrap();
        let mut out = Vec::new();
        ObjectReader::new(File::open(pack.path()).unwrap(), off, len)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn write_publish_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let set = PackSet::new(dir.path().join("packs"));
        let mut w = PackWriter::new(&dir.path().join("tmp")).unwrap();
        let objs = objects(100);
        for (d, b) in &objs {
            w.append(*d, b).unwrap();
            w.append(*d, b).unwrap(); // duplicates are skipped
        }
        assert_eq!(w.objects(), 100);
        assert_eq!(w.finish(&set).unwrap(), 100);
        for (d, b) in &objs {
            assert_eq!(&read(&set, d), b);
        }
        assert!(!set.contains(&Digest::of_bytes(b"absent")));
        // a fresh set finds the same objects on disk
        let again = PackSet::new(dir.path().join("packs"));
        assert_eq!(again.packs().len(), 1);
        assert_eq!(again.packs()[0].len(), 100);
        for (d, b) in &objs {
            assert_eq!(&read(&again, d), b);
        }
        assert!(again.damaged().is_empty());
        // nothing left behind in the temporary directory
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn damaged_packs_are_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let set = PackSet::new(dir.path().join("packs"));
        let mut w = PackWriter::new(dir.path()).unwrap();
        for (d, b) in objects(10) {
            w.append(d, &b).unwrap();
        }
        w.finish(&set).unwrap();
        let path = set.packs()[0].path().to_path_buf();
        let good = std::fs::read(&path).unwrap();
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("truncated", good[..good.len() - 3].to_vec()),
            ("index flipped", {
                let mut b = good.clone();
                let at = b.len() - FOOTER - 5;
                b[at] ^= 1;
                b
            }),
            ("empty", Vec::new()),
        ];
        for (what, bytes) in cases {
            let p = dir
                .path()
                .join("packs")
                .join(format!("{}.pack", set.packs()[0].name()));
            crate::fs::remove_file_if_exists(&p).unwrap();
            std::fs::write(&p, &bytes).unwrap();
            let fresh = PackSet::new(dir.path().join("packs"));
            assert!(fresh.packs().is_empty(), "{what}");
            assert_eq!(fresh.damaged().len(), 1, "{what}");
        }
        // a pack renamed to another digest does not pass either
        let other = dir
            .path()
            .join("packs")
            .join(format!("{}.pack", Digest::of_bytes(b"x")));
        std::fs::write(&other, &good).unwrap();
        assert!(PackIndex::load(&other).is_err());
    }

    #[test]
    fn empty_writer_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let set = PackSet::new(dir.path().join("packs"));
        assert_eq!(PackWriter::new(dir.path()).unwrap().finish(&set).unwrap(), 0);
        assert!(!dir.path().join("packs").exists());
    }
}
