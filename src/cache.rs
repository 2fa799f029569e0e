//! The local content-addressed store: `<root>/<fan-out>/<digest>`, each object written once,
//! read-only, published atomically, verified whenever it is read back.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rayon::prelude::*;
use tempfile::NamedTempFile;

use crate::fs::{persist_content_addressed, publish_batch, IoContext, IoError, Pending};
use crate::hash::{copy_file_hashing, hash_reader, Digest};
use crate::kind::ErrorKind;
use crate::manifest::{Manifest, ManifestError};
use crate::pack::{ObjectReader, PackIndex, PackSet, PackWriter, PACK_DIR};

/// Errors from the cache.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// An object is not in the cache.
    #[error("object {digest} is not in the cache")]
    Missing {
        /// The object that is missing.
        digest: Digest,
    },
    /// An object's bytes do not hash to its name.
    #[error(
        "cache object {} is corrupt: its content hashes to {actual}",
        place(digest, path)
    )]
    Corrupt {
        /// The object's name.
        digest: Digest,
        /// Where it is.
        path: PathBuf,
        /// What its bytes hash to.
        actual: Digest,
    },
}

impl CacheError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CacheError::Io(e) => e.kind(),
            CacheError::Missing { .. } => ErrorKind::Failure,
            CacheError::Corrupt { .. } => ErrorKind::Integrity,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            CacheError::Io(e) => e.hint(),
            CacheError::Missing { .. } => Some("run `mlv fetch` or `mlv pull` to download it".into()),
            CacheError::Corrupt { .. } => Some(crate::manifest::REPAIR_HINT.into()),
        }
    }
}

/// Names where an object lies: its own file, or a pack file holding it.
fn place(digest: &Digest, path: &Path) -> String {
    match path.file_name().and_then(|n| n.to_str()) == Some(digest.to_string().as_str()) {
        true => path.display().to_string(),
        false => format!("{digest} in pack {}", path.display()),
    }
}

/// The local object cache: loose objects, one file each, and packs of many small objects.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    tmp: PathBuf,
    packs: Arc<PackSet>,
    pack_min: usize,
}

/// An `add` or `fetch` storing at least this many new objects packs the small ones (the
/// `cache.pack_min_objects` setting).
pub const DEFAULT_PACK_MIN: usize = 512;

impl Cache {
    /// A cache with objects under `root` and temporary files in `tmp` (same file system).
    pub fn new(root: impl Into<PathBuf>, tmp: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Cache {
            packs: Arc::new(PackSet::new(root.join(PACK_DIR))),
            root,
            tmp: tmp.into(),
            pack_min: DEFAULT_PACK_MIN,
        }
    }

    /// Packs small objects when at least `n` new objects are stored at once (0: never).
    pub fn with_pack_min(mut self, n: usize) -> Self {
        self.pack_min = n;
        self
    }

    /// Whether storing `new_objects` objects at once should pack the small ones.
    pub fn packs_for(&self, new_objects: usize) -> bool {
        self.pack_min > 0 && new_objects >= self.pack_min
    }

    /// The cache's packs.
    pub fn packs(&self) -> &PackSet {
        &self.packs
    }

    /// A new pack, to append small objects to and publish with [`Cache::publish_pack`].
    pub fn pack_writer(&self) -> Result<PackWriter, CacheError> {
        Ok(PackWriter::new(&self.tmp)?)
    }

    /// Makes a pack durable and its objects visible; returns how many it holds.
    pub fn publish_pack(&self, pack: PackWriter) -> Result<usize, CacheError> {
        Ok(pack.finish(&self.packs)?)
    }

    /// The directory of the cache's temporary files (on the cache's file system).
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// The directory holding the fan-out directories.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where an object lives (whether or not it is there).
    pub fn object_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_string();
        self.root.join(&hex[..2]).join(hex)
    }

    /// Whether the object is present (not verified).
    pub fn contains(&self, digest: &Digest) -> bool {
        self.packs.contains(digest) || self.is_loose(digest)
    }

    /// Whether the object is present as a file of its own (which links can share).
    pub fn is_loose(&self, digest: &Digest) -> bool {
        self.object_path(digest).is_file()
    }

    /// The size of an object in the cache.
    pub fn object_len(&self, digest: &Digest) -> Result<u64, CacheError> {
        match std::fs::metadata(self.object_path(digest)) {
            Ok(m) => return Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(IoError::new("cannot stat", self.object_path(digest), e).into()),
        }
        match self.packs.find(digest) {
            Some((_, _, len)) => Ok(len),
            None => Err(CacheError::Missing { digest: *digest }),
        }
    }

    /// Those of `digests` that are not in the cache, in order. Past a few hundred digests the
    /// fan-out directories involved are listed (one `readdir` each, in parallel) instead of
    /// looking up every object's path: a fraction of the system calls on large trees.
    pub fn missing(&self, digests: &[Digest]) -> Vec<Digest> {
        const LIST_FROM: usize = 256;
        let digests: Vec<Digest> = digests
            .iter()
            .filter(|d| !self.packs.contains(d))
            .copied()
            .collect();
        if digests.len() < LIST_FROM {
            return digests.into_iter().filter(|d| !self.is_loose(d)).collect();
        }
        let fans: std::collections::BTreeSet<String> = digests.iter().map(Digest::fanout).collect();
        let present: std::collections::HashSet<Digest> = fans
            .par_iter()
            .flat_map_iter(|fan| self.objects_in(fan))
            .collect();
        digests.iter().filter(|d| !present.contains(d)).copied().collect()
    }

    /// The objects (regular files named by their digest) in one fan-out directory.
    fn objects_in(&self, fan: &str) -> Vec<Digest> {
        let Ok(dir) = std::fs::read_dir(self.root.join(fan)) else {
            return Vec::new();
        };
        dir.filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// A new temporary file on the cache's file system, for an object being written.
    pub fn temp_file(&self) -> Result<NamedTempFile, CacheError> {
        Ok(crate::fs::temp_file_in(&self.tmp)?)
    }

    /// Publishes a temp file whose content the caller has hashed to `digest`.
    /// Returns whether the object was new.
    pub fn publish(&self, tmp: NamedTempFile, digest: &Digest) -> Result<bool, CacheError> {
        Ok(persist_content_addressed(tmp, &self.object_path(digest))?)
    }

    /// Copies a workspace file into the cache, hashing while copying (each byte read once),
    /// and publishes it at once. Returns the digest, the size and whether the object was new.
    pub fn insert_file(&self, src: &Path) -> Result<(Digest, u64, bool), CacheError> {
        let (digest, size, staged) = self.stage_file(src)?;
        let created = self.publish_staged(staged.into_iter().collect())? > 0;
        Ok((digest, size, created))
    }

    /// Copies a workspace file into a temporary file of the cache, hashing while copying, without
    /// syncing or publishing it: many staged objects are made durable at once by
    /// [`Cache::publish_staged`]. Returns `None` for the staged part if the object exists.
    pub fn stage_file(&self, src: &Path) -> Result<(Digest, u64, Option<Staged>), CacheError> {
        let mut input = File::open(src).at("cannot read", src)?;
        self.stage_open(&mut input, src)
    }

    /// [`Cache::stage_file`] from a file the caller opened (`src` names it in errors), so that
    /// the caller can compare its metadata before and after the read.
    pub fn stage_open(
        &self,
        input: &mut File,
        src: &Path,
    ) -> Result<(Digest, u64, Option<Staged>), CacheError> {
        let mut tmp = self.temp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        let size_hint = input.metadata().map(|m| m.len()).unwrap_or(0);
        let (digest, size) = copy_file_hashing(input, tmp.as_file_mut(), size_hint)
            .map_err(|e| io_error_of_copy(e, src, &tmp_path))?;
        if self.contains(&digest) {
            return Ok((digest, size, None));
        }
        crate::fs::set_readonly(tmp.as_file()).at("cannot set permissions on", &tmp_path)?;
        Ok((
            digest,
            size,
            Some(Staged {
                digest,
                tmp: tmp.into_temp_path(),
            }),
        ))
    }

    /// Reads the `len` bytes of a small workspace file opened by the caller (its size when it
    /// was scanned: a file that shrank since is an error; the caller checks that it did not
    /// grow), hashes them and appends them to `pack` unless the cache has the object. Returns
    /// the digest. `src` names the file in errors.
    pub fn pack_file(
        &self,
        input: &mut File,
        src: &Path,
        len: u64,
        pack: &std::sync::Mutex<PackWriter>,
    ) -> Result<Digest, CacheError> {
        SMALL.with(|cell| {
            let mut buf = cell.borrow_mut();
            buf.resize(usize::try_from(len).unwrap_or(usize::MAX), 0);
            input
                .read_exact(&mut buf)
                .map_err(|e| match e.kind() {
                    io::ErrorKind::UnexpectedEof => {
                        io::Error::other("the file shrank while it was read; add it again")
                    }
                    _ => e,
                })
                .at("cannot read", src)?;
            let digest = Digest::of_bytes(&buf);
            if !self.contains(&digest) {
                pack.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(digest, &buf)?;
            }
            Ok(digest)
        })
    }

    /// Stages a temp file (from [`Cache::temp_file`]) whose content the caller has verified to
    /// hash to `digest`, for a later [`Cache::publish_staged`].
    pub fn stage_verified(&self, tmp: NamedTempFile, digest: Digest) -> Result<Staged, CacheError> {
        crate::fs::set_readonly(tmp.as_file()).at("cannot set permissions on", tmp.path())?;
        Ok(Staged {
            digest,
            tmp: tmp.into_temp_path(),
        })
    }

    /// Makes staged objects durable and visible: one file-system sync for the whole batch (or
    /// one fsync per object for small batches), then an atomic rename of each, then a sync of
    /// the directories. An object is never visible before its bytes are durable.
    pub fn publish_staged(&self, staged: Vec<Staged>) -> Result<usize, CacheError> {
        self.publish_with(staged, false)
    }

    /// Like [`Cache::publish_staged`], but each object replaces whatever is under its name (a
    /// damaged copy, for `fsck --repair`) in one atomic rename: the old file is gone only once
    /// the verified one is in place.
    pub fn publish_replacing(&self, staged: Vec<Staged>) -> Result<usize, CacheError> {
        self.publish_with(staged, true)
    }

    fn publish_with(&self, staged: Vec<Staged>, replace: bool) -> Result<usize, CacheError> {
        let pending = staged
            .into_iter()
            .map(|s| Pending {
                dest: self.object_path(&s.digest),
                tmp: s.tmp,
            })
            .collect();
        let created = publish_batch(pending, replace, || crate::crash_point!("cache.mid_publish"))?;
        Ok(created.into_iter().filter(|c| *c).count())
    }

    /// Stores the object that `write` writes, hashing it as it goes (a manifest of a million
    /// files is never held in memory as bytes). Returns its digest.
    pub fn insert_written(
        &self,
        write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<Digest, CacheError> {
        let tmp = self.temp_file()?;
        let mut out = HashingWriter {
            out: io::BufWriter::with_capacity(1 << 16, tmp.as_file()),
            hasher: crate::hash::Hasher::new(),
        };
        write(&mut out)
            .and_then(|()| out.out.flush())
            .map_err(|e| crate::fs::temp_write_error(tmp.path(), e))?;
        let digest = out.hasher.finish();
        drop(out);
        self.publish(tmp, &digest)?;
        Ok(digest)
    }

    /// Stores a small object held in memory (a manifest).
    pub fn insert_bytes(&self, bytes: &[u8]) -> Result<Digest, CacheError> {
        let digest = Digest::of_bytes(bytes);
        if self.contains(&digest) {
            return Ok(digest);
        }
        let mut tmp = self.temp_file()?;
        tmp.as_file_mut()
            .write_all(bytes)
            .map_err(|e| crate::fs::temp_write_error(tmp.path(), e))?;
        self.publish(tmp, &digest)?;
        Ok(digest)
    }

    /// Reads a whole object and checks its digest (manifests, small objects to upload).
    pub fn read_verified(&self, digest: &Digest) -> Result<Vec<u8>, CacheError> {
        read_all_verified(self.open(digest)?, digest)
    }

    /// Reads and parses a directory manifest, hashing its bytes as they are parsed (those of a
    /// manifest of a million files are never held whole). A corrupt object is refused as
    /// `CacheError::Corrupt` whatever it parses to; the inner result is the parse.
    pub fn read_manifest(&self, digest: &Digest) -> Result<Result<Manifest, ManifestError>, CacheError> {
        let object = self.open(digest)?;
        let path = object.path;
        // buffered outside the hashing: the parser reads a byte at a time
        let mut reader = io::BufReader::with_capacity(
            1 << 16,
            HashingReader {
                inner: object.reader,
                hasher: crate::hash::Hasher::new(),
            },
        );
        let parsed = Manifest::parse_reader(digest, &mut reader);
        // what the parser left (or could not parse) is hashed too
        io::copy(&mut reader, &mut io::sink()).at("cannot read", &path)?;
        check(digest, path, reader.into_inner().hasher.finish())?;
        Ok(parsed)
    }

    /// Re-hashes an object; returns its size if intact.
    pub fn verify(&self, digest: &Digest) -> Result<u64, CacheError> {
        let mut object = self.open(digest)?;
        let (actual, size) = hash_reader(&mut object.reader).at("cannot read", &object.path)?;
        check(digest, object.path, actual)?;
        Ok(size)
    }

    /// Copies an object into `out`, verifying it on the way (large objects through the
    /// pipelined copy: read, hash on every core, and write overlap). Returns its size.
    pub fn copy_out_to_file(&self, digest: &Digest, out: &mut File) -> Result<u64, CacheError> {
        let mut object = self.open(digest)?;
        let (actual, size) =
            copy_file_hashing(&mut object.reader, out, object.len).at("cannot copy", &object.path)?;
        check(digest, object.path, actual)?;
        Ok(size)
    }

    /// Opens an object for reading (not verified: the caller hashes what it reads); a loose
    /// copy is preferred to a packed one. A missing object is `CacheError::Missing`.
    pub fn open(&self, digest: &Digest) -> Result<Object, CacheError> {
        if let Some(object) = self.open_loose(digest)? {
            return Ok(object);
        }
        match self.packs.find(digest) {
            Some((pack, _, _)) => self.open_packed(&pack, digest),
            None => Err(CacheError::Missing { digest: *digest }),
        }
    }

    fn open_loose(&self, digest: &Digest) -> Result<Option<Object>, CacheError> {
        let path = self.object_path(digest);
        match File::open(&path) {
            Ok(f) => {
                let len = f.metadata().at("cannot stat", &path)?.len();
                Ok(Some(Object {
                    reader: ObjectReader::new(f, 0, len),
                    len,
                    path,
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(IoError::new("cannot read", path, e).into()),
        }
    }

    fn open_packed(&self, pack: &PackIndex, digest: &Digest) -> Result<Object, CacheError> {
        let (offset, len) = pack.find(digest).ok_or(CacheError::Missing { digest: *digest })?;
        let path = pack.path().to_path_buf();
        let f = File::open(&path).at("cannot read", &path)?;
        Ok(Object {
            reader: ObjectReader::new(f, offset, len),
            len,
            path,
        })
    }

    /// Reads an object out of one particular pack, verified.
    pub fn read_packed(&self, pack: &PackIndex, digest: &Digest) -> Result<Vec<u8>, CacheError> {
        read_all_verified(self.open_packed(pack, digest)?, digest)
    }

    /// Whether an intact copy of the object exists other than in pack `besides`: a loose one,
    /// or one in another pack (each candidate re-hashed).
    pub fn intact_elsewhere(&self, digest: &Digest, besides: &Path) -> bool {
        if let Ok(Some(loose)) = self.open_loose(digest) {
            if read_all_verified(loose, digest).is_ok() {
                return true;
            }
        }
        self.packs
            .packs()
            .iter()
            .any(|p| p.path() != besides && p.find(digest).is_some() && self.read_packed(p, digest).is_ok())
    }
}

fn read_all_verified(mut object: Object, digest: &Digest) -> Result<Vec<u8>, CacheError> {
    let mut bytes = Vec::with_capacity(usize::try_from(object.len).unwrap_or(0));
    object
        .reader
        .read_to_end(&mut bytes)
        .at("cannot read", &object.path)?;
    check(digest, object.path, Digest::of_bytes(&bytes))?;
    Ok(bytes)
}

/// Writes through, hashing what it writes.
struct HashingWriter<W: Write> {
    out: W,
    hasher: crate::hash::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Reads through, hashing what it reads.
struct HashingReader<R: Read> {
    inner: R,
    hasher: crate::hash::Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An object opened for reading.
pub struct Object {
    /// Its bytes.
    pub reader: ObjectReader,
    /// How many there are.
    pub len: u64,
    /// The file holding it (a loose object or a pack), for messages.
    pub path: PathBuf,
}

thread_local! {
    /// One reusable buffer per thread for reading small files whole.
    static SMALL: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Fails with `CacheError::Corrupt` unless the object at `path` hashed to its name.
fn check(digest: &Digest, path: PathBuf, actual: Digest) -> Result<(), CacheError> {
    if actual == *digest {
        Ok(())
    } else {
        Err(CacheError::Corrupt {
            digest: *digest,
            path,
            actual,
        })
    }
}

/// An object written to a temporary file: neither durable nor visible yet.
#[derive(Debug)]
pub struct Staged {
    digest: Digest,
    tmp: tempfile::TempPath,
}

fn io_error_of_copy(e: io::Error, origin: &Path, tmp: &Path) -> IoError {
    // We cannot tell from a plain io::Error which side failed; name the source, which is what
    // the user controls, unless the error is clearly about writing.
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::WriteZero | io::ErrorKind::QuotaExceeded => {
            crate::fs::temp_write_error(tmp, e)
        }
        _ => IoError::new("cannot read", origin, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> (tempfile::TempDir, Cache) {
        let d = tempfile::tempdir().unwrap();
        let c = Cache::new(d.path().join("cache"), d.path().join("tmp"));
        (d, c)
    }

    #[test]
    fn insert_and_verify() {
        let (d, c) = cache();
        let src = d.path().join("f");
        std::fs::write(&src, b"hello").unwrap();
        let (digest, size, new) = c.insert_file(&src).unwrap();
        assert_eq!(digest, Digest::of_bytes(b"hello"));
        assert_eq!((size, new), (5, true));
        assert!(!c.insert_file(&src).unwrap().2);
        assert_eq!(c.verify(&digest).unwrap(), 5);
        assert_eq!(c.read_verified(&digest).unwrap(), b"hello");
        assert!(c
            .object_path(&digest)
            .ends_with(format!("{}/{}", &digest.to_string()[..2], digest)));
    }

    #[test]
    fn staged_objects_publish_in_batches() {
        let (d, c) = cache();
        let mut staged = Vec::new();
        let mut digests = Vec::new();
        for i in 0..40 {
            let src = d.path().join(format!("f{i}"));
            std::fs::write(&src, format!("content {i}")).unwrap();
            let (digest, _, s) = c.stage_file(&src).unwrap();
            assert!(!c.contains(&digest), "not visible before publishing");
            staged.extend(s);
            digests.push(digest);
        }
        assert_eq!(c.publish_staged(staged).unwrap(), 40);
        for dg in &digests {
            assert_eq!(c.verify(dg).unwrap() as usize, c.read_verified(dg).unwrap().len());
        }
        let (_, _, again) = c.stage_file(&d.path().join("f0")).unwrap();
        assert!(again.is_none());
    }

    #[test]
    fn detects_corruption() {
        let (_d, c) = cache();
        let digest = c.insert_bytes(b"manifest").unwrap();
        let p = c.object_path(&digest);
        let mut perm = std::fs::metadata(&p).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perm.set_readonly(false);
        std::fs::set_permissions(&p, perm).unwrap();
        std::fs::write(&p, b"tampered").unwrap();
        assert!(matches!(
            c.read_verified(&digest),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(matches!(c.verify(&digest), Err(CacheError::Corrupt { .. })));
        let mut sink = tempfile::tempfile().unwrap();
        assert!(matches!(
            c.copy_out_to_file(&digest, &mut sink),
            Err(CacheError::Corrupt { .. })
        ));
        let missing = Digest::of_bytes(b"nope");
        assert!(matches!(c.verify(&missing), Err(CacheError::Missing { .. })));
    }
}
