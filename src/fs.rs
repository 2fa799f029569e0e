//! File-system helpers: atomic writes, content-addressed publishing, permission bits.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// `O_NOFOLLOW`, for `OpenOptionsExt::custom_flags`: the open fails when the last component of
/// the path is a symbolic link.
pub const O_NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// An I/O error together with the path it concerns.
#[derive(Debug, thiserror::Error)]
#[error("{action} {}", crate::relpath::printable_path(.path))]
pub struct IoError {
    /// What was being done ("cannot read", "cannot write", ...).
    pub action: &'static str,
    /// The path that failed.
    pub path: PathBuf,
    /// The underlying error.
    #[source]
    pub source: io::Error,
}

impl IoError {
    /// A full disk or a denied permission is the environment's doing; anything else a failure.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use io::ErrorKind as K;
        match self.source.kind() {
            K::StorageFull | K::QuotaExceeded | K::PermissionDenied | K::ReadOnlyFilesystem => {
                crate::kind::ErrorKind::Environment
            }
            // `io::ErrorKind` is `#[non_exhaustive]`: every other kind is a plain failure
            _ => crate::kind::ErrorKind::Failure,
        }
    }

    /// What to do about a full disk or a denied permission (read or write access, by the
    /// action).
    pub fn hint(&self) -> Option<String> {
        crate::kind::io_kind_hint(self.source.kind(), crate::kind::is_read(self.action))
    }
}

impl IoError {
    /// Wraps `source` with the path it concerns.
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        IoError {
            action,
            path: path.into(),
            source,
        }
    }
}

/// A failed write to a temporary file, named by its directory: the file itself is gone by
/// the time the user reads the message.
pub fn temp_write_error(tmp: &Path, e: io::Error) -> IoError {
    IoError::new("cannot write a temporary file in", parent_dir(tmp), e)
}

/// Shorthand: attach a path and an action to an `io::Result`.
pub trait IoContext<T> {
    /// Names the path and what was being done when the error happened.
    fn at(self, action: &'static str, path: &Path) -> Result<T, IoError>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, action: &'static str, path: &Path) -> Result<T, IoError> {
        self.map_err(|e| IoError::new(action, path, e))
    }
}

/// Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename. The file keeps
/// the permissions it had; a new one gets the usual 0666 less the umask (not the temp file's
/// 0600: pointer files, `.gitignore` and config are ordinary, shared files).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_atomic_in(path, bytes, parent_dir(path))
}

/// Like [`write_atomic`], with the temporary file in `scratch` (mlv's `.mlv/tmp`) instead of
/// beside `path`, so that a crash between the write and the rename leaves no stray file in the
/// work tree. Falls back to beside `path` when `scratch` is missing or on another file system
/// (a rename cannot cross file systems).
pub fn write_atomic_in(path: &Path, bytes: &[u8], scratch: &Path) -> Result<(), IoError> {
    write_atomic_mode(path, bytes, scratch, false)
}

/// Like [`write_atomic_in`] for a file that may hold credentials (`.mlv/config.local.toml`):
/// it is written readable by its owner only (0600), whatever mode it had.
pub fn write_private_atomic_in(path: &Path, bytes: &[u8], scratch: &Path) -> Result<(), IoError> {
    write_atomic_mode(path, bytes, scratch, true)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], scratch: &Path, private: bool) -> Result<(), IoError> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;
    let beside = parent_dir(path);
    let same_fs = match (std::fs::metadata(scratch), std::fs::metadata(beside)) {
        (Ok(s), Ok(b)) => s.is_dir() && s.dev() == b.dev(),
        _ => false,
    };
    let dir = if same_fs { scratch } else { beside };
    // a private file is created 0600 whatever it was; any other keeps its permissions
    let (mode, existing) = match private {
        true => (0o600, None),
        false => (0o666, std::fs::metadata(path).ok().map(|m| m.permissions())),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .at("cannot create a temporary file in", dir)?;
    if let Some(perm) = existing {
        tmp.as_file()
            .set_permissions(perm)
            .at("cannot set permissions on", tmp.path())?;
    }
    // Errors name the destination: the temp file is gone by the time the user reads them.
    tmp.as_file_mut().write_all(bytes).at("cannot write", path)?;
    tmp.as_file().sync_all().at("cannot write", path)?;
    crate::crash_point!("fs.before_rename");
    tmp.persist(path)
        .map_err(|e| IoError::new("cannot replace", path, e.error))?;
    // the rename is durable only once the directory holding the new name is
    sync_dir(beside)
}

/// Publishes a finished temp file under a content-addressed name.
///
/// The temp file is made read-only and synced, then renamed into place. If the destination
/// already exists (same name means same content) the temp file is dropped. Returns whether this
/// call created the object.
pub fn persist_content_addressed(tmp: NamedTempFile, dest: &Path) -> Result<bool, IoError> {
    if dest.exists() {
        return Ok(false);
    }
    let dir = parent_dir(dest);
    std::fs::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
    set_readonly(tmp.as_file()).at("cannot set permissions on", tmp.path())?;
    tmp.as_file().sync_all().at("cannot sync", tmp.path())?;
    // rename over an existing identical object is harmless, but keep the first writer's inode.
    match tmp.persist_noclobber(dest) {
        Ok(_) => sync_dir(dir).map(|()| true),
        Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(IoError::new("cannot publish", dest, e.error)),
    }
}

/// Makes the entries of `dir` durable (fsync of the directory): what a rename or a new file
/// in it needs to survive a crash. Many renames into one directory need one call.
pub fn sync_dir(dir: &Path) -> Result<(), IoError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .at("cannot sync", dir)
}

/// What the name of every temporary file mlv creates starts with, so that cleaning up (`gc`,
/// the start of a writing command) removes only mlv's own files from a directory it may share.
pub const TEMP_PREFIX: &str = ".mlv-tmp-";

/// Whether `name` is one of mlv's temporary files. With `legacy`, also the names older
/// versions used (`.tmpXXXXXX`, `place-PID-N`), for directories only mlv writes (`.mlv/tmp`).
pub fn is_temp_name(name: &str, legacy: bool) -> bool {
    if name.starts_with(TEMP_PREFIX) {
        return true;
    }
    if !legacy {
        return false;
    }
    let tempfile_style = name
        .strip_prefix(".tmp")
        .is_some_and(|r| r.len() == 6 && r.bytes().all(|b| b.is_ascii_alphanumeric()));
    let place_style = name.strip_prefix("place-").is_some_and(|r| {
        r.split_once('-').is_some_and(|(a, b)| {
            [a, b]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        })
    });
    tempfile_style || place_style
}

/// mlv's temporary files directly in `dir` (see [`is_temp_name`]) last modified at or before
/// `cutoff`, with their sizes, sorted; none if `dir` is missing or a link.
pub fn temp_files_in(dir: &Path, legacy: bool, cutoff: std::time::SystemTime) -> Vec<(PathBuf, u64)> {
    let mut out = Vec::new();
    if !std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir()) {
        return out;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let ours = e.file_name().to_str().is_some_and(|n| is_temp_name(n, legacy));
        let Ok(meta) = e.metadata() else { continue };
        if ours && meta.is_file() && meta.modified().is_ok_and(|m| m <= cutoff) {
            out.push((e.path(), meta.len()));
        }
    }
    out.sort();
    out
}

/// A new temporary file in `dir` named with [`TEMP_PREFIX`].
pub fn new_temp_in(dir: &Path) -> io::Result<NamedTempFile> {
    tempfile::Builder::new().prefix(TEMP_PREFIX).tempfile_in(dir)
}

/// A new temporary file in `dir`, creating the directory on first use only (not one `mkdir`
/// per object).
pub fn temp_file_in(dir: &Path) -> Result<NamedTempFile, IoError> {
    match new_temp_in(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
            new_temp_in(dir).at("cannot create a temporary file in", dir)
        }
        r => r.at("cannot create a temporary file in", dir),
    }
}

/// A finished temporary file and the content-addressed name it is to be published under.
#[derive(Debug)]
pub struct Pending {
    /// The temporary file, on the same file system as `dest`.
    pub tmp: tempfile::TempPath,
    /// Where it goes.
    pub dest: PathBuf,
}

/// Batches larger than this are synced with one `syncfs` instead of one `fsync` per file...
const SMALL_BATCH: usize = 16;
/// ... unless their files average at least this size: then the per-file cost of fsync is
/// small next to the data, and `syncfs` would also write back every other program's dirty
/// pages on the file system.
const LARGE_FILES: u64 = 1 << 20;

/// Makes finished temporary files durable and visible: one file-system sync for a batch of
/// many small files, one fsync per file (two at a time) otherwise; then an atomic rename of
/// each (without replacing an existing file unless `replace`), then a sync of the directories.
/// A file is never visible before its bytes are durable. `after_each` runs after each rename
/// (crash points). Returns, in order, whether each file was created by this call.
pub fn publish_batch(
    pending: Vec<Pending>,
    replace: bool,
    mut after_each: impl FnMut(),
) -> Result<Vec<bool>, IoError> {
    let Some(first) = pending.first() else {
        return Ok(Vec::new());
    };
    let fs_dir = parent_dir(&first.tmp).to_path_buf();
    let batch = pending.len() > SMALL_BATCH && !large_files(&pending);
    if batch {
        sync_fs(&fs_dir)?;
    } else {
        use rayon::prelude::*;
        pending.par_iter().try_for_each(|p| {
            std::fs::File::open(&p.tmp)
                .and_then(|f| f.sync_all())
                .at("cannot sync", &p.tmp)
        })?;
    }
    let mut dirs = std::collections::BTreeSet::new();
    let mut created = Vec::with_capacity(pending.len());
    for Pending { tmp, dest } in pending {
        let dir = parent_dir(&dest);
        if dirs.insert(dir.to_path_buf()) {
            std::fs::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
        }
        let persisted = if replace {
            tmp.persist(&dest)
        } else {
            tmp.persist_noclobber(&dest)
        };
        match persisted {
            Ok(()) => {
                created.push(true);
                after_each();
            }
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => created.push(false),
            Err(e) => return Err(IoError::new("cannot publish", dest, e.error)),
        }
    }
    if batch {
        sync_fs(&fs_dir)?;
    } else {
        for d in &dirs {
            sync_dir(d)?;
        }
    }
    Ok(created)
}

/// Whether the files average at least [`LARGE_FILES`] bytes.
fn large_files(pending: &[Pending]) -> bool {
    let bytes: u64 = pending
        .iter()
        .map(|p| std::fs::metadata(&p.tmp).map_or(0, |m| m.len()))
        .sum();
    bytes / pending.len() as u64 >= LARGE_FILES
}

/// Flushes every dirty page of the file system holding `dir` (Linux `syncfs`).
fn sync_fs(dir: &Path) -> Result<(), IoError> {
    let f = std::fs::File::open(dir).at("cannot open", dir)?;
    rustix::fs::syncfs(&f)
        .map_err(io::Error::from)
        .at("cannot sync the file system of", dir)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes a new file front to back, past the page cache where the file system allows it
/// (`O_DIRECT`): for large files nobody reads soon, such as packs, whose pages would otherwise
/// all be fresh page-cache pages to fill and write back. Bytes go through one aligned buffer;
/// where direct writes are refused (tmpfs, say) it falls back to ordinary writes.
pub struct DirectWriter {
    file: std::fs::File,
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    offset: u64,
    direct: bool,
}

/// Direct writes must start, end and sit in memory on this boundary.
const DIRECT_ALIGN: usize = 4096;
/// Bytes written per system call.
const DIRECT_CHUNK: usize = 1 << 20;

impl DirectWriter {
    /// Writes `file` (new and empty) from its start.
    pub fn new(file: std::fs::File) -> DirectWriter {
        let direct = set_direct(&file, true);
        let buf = vec![0u8; DIRECT_CHUNK + DIRECT_ALIGN];
        let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
        DirectWriter {
            file,
            buf,
            start,
            filled: 0,
            offset: 0,
            direct,
        }
    }

    /// Appends `bytes`.
    pub fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = (DIRECT_CHUNK - self.filled).min(bytes.len());
            let at = self.start + self.filled;
            self.buf[at..at + n].copy_from_slice(&bytes[..n]);
            self.filled += n;
            bytes = &bytes[n..];
            if self.filled == DIRECT_CHUNK {
                self.write_buffer(DIRECT_CHUNK)?;
            }
        }
        Ok(())
    }

    fn write_buffer(&mut self, len: usize) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let data = &self.buf[self.start..self.start + len];
        match self.file.write_all_at(data, self.offset) {
            Err(e) if self.direct && e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {
                self.direct = false;
                set_direct(&self.file, false);
                self.file.write_all_at(data, self.offset)?;
            }
            r => r?,
        }
        self.offset += len as u64;
        self.filled = 0;
        Ok(())
    }

    /// Writes what is buffered and returns the file, of its exact length (not synced).
    pub fn finish(mut self) -> io::Result<std::fs::File> {
        let len = self.filled;
        if len > 0 {
            // a direct write covers whole blocks: pad the last one, then cut the file back
            let padded = if self.direct {
                len.next_multiple_of(DIRECT_ALIGN)
            } else {
                len
            };
            self.buf[self.start + len..self.start + padded].fill(0);
            self.write_buffer(padded)?;
            if padded > len {
                self.offset -= (padded - len) as u64;
                self.file.set_len(self.offset)?;
            }
        }
        Ok(self.file)
    }
}

/// Asks the kernel to start writing a range of `file` to disk, without waiting (Linux
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`; a `len` of 0 means to the end of the file). Only a
/// hint: durability still comes from fsync.
pub fn start_writeback(file: &std::fs::File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the duration of the call; errors are ignored (hint).
    unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Turns `O_DIRECT` on or off for an open file; whether it is now on.
fn set_direct(file: &std::fs::File, on: bool) -> bool {
    use rustix::fs::{fcntl_getfl, fcntl_setfl, OFlags};
    let Ok(mut flags) = fcntl_getfl(file) else {
        return false;
    };
    flags.set(OFlags::DIRECT, on);
    fcntl_setfl(file, flags).is_ok() && on
}

/// Makes an open file read-only for everyone (keeping execute bits off: objects are data).
pub fn set_readonly(file: &std::fs::File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o444))
}

/// The mode a workspace file gets: writable by its owner unless `readonly`, executable if `exec`.
pub fn workspace_mode(exec: bool, readonly: bool) -> u32 {
    let base = if readonly { 0o444 } else { 0o644 };
    if exec {
        base | 0o111
    } else {
        base
    }
}

/// Whether the owner-execute bit is set.
pub fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o100 != 0
}

/// Reads a text file; a missing file reads as empty.
pub fn read_to_string_or_empty(path: &Path) -> Result<String, IoError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(IoError::new("cannot read", path, e)),
    }
}

/// Like [`read_to_string_or_empty`], but refuses to follow a symbolic link at `path` (the
/// error names it): for files in the work tree, such as `.gitignore`, that mlv rewrites and
/// whose content must not come from outside the repository.
pub fn read_to_string_nofollow_or_empty(path: &Path) -> Result<String, IoError> {
    String::from_utf8(read_nofollow_or_empty(path)?).map_err(|_| {
        IoError::new(
            "cannot read",
            path,
            io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
        )
    })
}

/// The bytes of `path` (empty when it does not exist), refusing to follow a symbolic link.
pub fn read_nofollow_or_empty(path: &Path) -> Result<Vec<u8>, IoError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NOFOLLOW)
        .open(path);
    let mut bytes = Vec::new();
    match file {
        Ok(mut f) => f
            .read_to_end(&mut bytes)
            .map(|_| bytes)
            .map_err(|e| IoError::new("cannot read", path, e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(IoError::new("cannot read", path, e)),
    }
}

/// Removes a file; a missing file is not an error.
pub fn remove_file_if_exists(path: &Path) -> Result<(), IoError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(IoError::new("cannot remove", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nofollow_refuses_a_link_and_reads_a_file() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"text").unwrap();
        std::os::unix::fs::symlink(&file, d.path().join("l")).unwrap();
        assert_eq!(read_nofollow_or_empty(&file).unwrap(), b"text");
        assert_eq!(read_nofollow_or_empty(&d.path().join("none")).unwrap(), b"");
        let err = read_nofollow_or_empty(&d.path().join("l")).unwrap_err();
        assert_eq!(err.source.raw_os_error(), Some(40), "ELOOP: {err}");
    }

    #[test]
    fn set_direct_toggles_only_o_direct() {
        use rustix::fs::{fcntl_getfl, OFlags};
        let d = tempfile::tempdir().unwrap();
        let file = std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(d.path().join("f"))
            .unwrap();
        let before = fcntl_getfl(&file).unwrap();
        let on = set_direct(&file, true);
        assert_eq!(fcntl_getfl(&file).unwrap().contains(OFlags::DIRECT), on);
        assert!(!set_direct(&file, false), "off reports off");
        assert_eq!(fcntl_getfl(&file).unwrap(), before);
    }

    #[test]
    fn sync_fs_syncs_a_directory_and_names_a_missing_one() {
        let d = tempfile::tempdir().unwrap();
        sync_fs(d.path()).unwrap();
        let err = sync_fs(&d.path().join("none")).unwrap_err();
        assert_eq!(err.action, "cannot open");
    }

    #[test]
    fn temp_names_are_recognized_and_nothing_else() {
        let t = new_temp_in(&std::env::temp_dir()).unwrap();
        let name = t.path().file_name().unwrap().to_str().unwrap().to_string();
        assert!(is_temp_name(&name, false), "{name}");
        for legacy in [".tmpAb12Cd", "place-12-0"] {
            assert!(is_temp_name(legacy, true) && !is_temp_name(legacy, false));
        }
        for other in [
            "notes.txt",
            ".tmp",
            ".tmpfile.bak",
            "place-1",
            "place-a-2",
            "tmp",
            ".mlv-tmp",
        ] {
            assert!(!is_temp_name(other, true), "{other}");
        }
    }

    /// Batches of many small files take the `syncfs` path, batches of large files the
    /// file-by-file one; both publish every file once, intact, and never replace one.
    #[test]
    fn publish_batch_small_and_large_files() {
        for (count, size) in [(40usize, 10usize), (20, (LARGE_FILES as usize) + 1)] {
            let dir = tempfile::tempdir().unwrap();
            let stage = |n: usize| -> Vec<Pending> {
                (0..n)
                    .map(|i| {
                        let mut t = NamedTempFile::new_in(dir.path()).unwrap();
                        t.write_all(&vec![i as u8; size]).unwrap();
                        Pending {
                            tmp: t.into_temp_path(),
                            dest: dir.path().join(format!("fan{}", i % 3)).join(format!("obj{i}")),
                        }
                    })
                    .collect()
            };
            let mut renamed = 0;
            let created = publish_batch(stage(count), false, || renamed += 1).unwrap();
            assert_eq!((created.iter().filter(|c| **c).count(), renamed), (count, count));
            for i in 0..count {
                let path = dir.path().join(format!("fan{}", i % 3)).join(format!("obj{i}"));
                assert_eq!(std::fs::read(path).unwrap(), vec![i as u8; size]);
            }
            let again = publish_batch(stage(count), false, || ()).unwrap();
            assert!(again.iter().all(|c| !c), "an existing file is never replaced");
        }
    }

    #[test]
    fn direct_writer_writes_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for len in [
            0usize,
            1,
            4095,
            4096,
            4097,
            DIRECT_CHUNK,
            DIRECT_CHUNK + 17,
            3 * DIRECT_CHUNK + 5000,
        ] {
            let path = dir.path().join(format!("f{len}"));
            let mut w = DirectWriter::new(std::fs::File::create(&path).unwrap());
            let data: Vec<u8> = (0..len).map(|i| (i * 13 % 251) as u8).collect();
            for piece in data.chunks(777) {
                w.write_all(piece).unwrap();
            }
            drop(w.finish().unwrap());
            assert_eq!(std::fs::read(&path).unwrap(), data, "{len} bytes");
        }
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "permissions kept");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn content_addressed_publish_is_once() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("ab").join("obj");
        let mut t = NamedTempFile::new_in(dir.path()).unwrap();
        t.write_all(b"x").unwrap();
        assert!(persist_content_addressed(t, &dest).unwrap());
        let t2 = NamedTempFile::new_in(dir.path()).unwrap();
        assert!(!persist_content_addressed(t2, &dest).unwrap());
        assert_eq!(std::fs::read(&dest).unwrap(), b"x");
        assert!(std::fs::metadata(&dest).unwrap().permissions().readonly());
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_named_once_and_the_cause_is_the_os_error() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"").unwrap();
        let tmp = new_temp_in(d.path()).unwrap();
        let err = persist_content_addressed(tmp, &file.join("ab").join("obj")).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("cannot create directory {}", file.join("ab").display())
        );
        let cause = std::error::Error::source(&err).unwrap();
        assert_eq!(cause.to_string(), "Not a directory (os error 20)");
        assert!(cause.source().is_none(), "no second line repeating the path");
    }
}
