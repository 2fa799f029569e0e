//! A local-directory remote. Uploads bypass object_store's `LocalFileSystem` (which neither
//! fsyncs nor refuses symlinks): each object is copied from the cache into a temporary file in
//! `ROOT/.mlv-tmp/`, verified while copying and made read-only; batches of them are made
//! durable with one file-system sync and renamed into `ROOT/ab/<digest>` without replacing an
//! existing object. Downloads are one pipelined copy each, opened without following a symbolic
//! link. Reads, listings and HEADs otherwise go through `LocalFileSystem` (see `backend.rs`).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use object_store::local::LocalFileSystem;
use object_store::ObjectStore;

use crate::cache::Cache;
use crate::fs::{publish_batch, set_readonly, temp_file_in, IoContext, Pending};
use crate::hash::Digest;

use super::error::RemoteError;
use super::pool::Body;
use super::redact;
use crate::pack::MAX_PACKED_OBJECT;

/// Name of the staging directory inside a local remote.
pub(super) const STAGING_DIR: &str = ".mlv-tmp";

/// A directory holding a remote's objects.
#[derive(Clone)]
pub(super) struct LocalDir {
    root: PathBuf,
    store: Arc<dyn ObjectStore>,
}

impl LocalDir {
    /// Opens the directory, creating it if needed.
    pub(super) fn open(path: &Path) -> Result<LocalDir, RemoteError> {
        let local_err = |detail: String| RemoteError::LocalDir {
            path: path.to_path_buf(),
            detail,
        };
        std::fs::create_dir_all(path).map_err(|e| local_err(e.to_string()))?;
        if !path.is_dir() {
            return Err(local_err("not a directory".into()));
        }
        let store =
            LocalFileSystem::new_with_prefix(path).map_err(|e| local_err(redact::scrub_error(&e, &[])))?;
        Ok(LocalDir {
            root: path.to_path_buf(),
            store: Arc::new(store),
        })
    }

    /// `LocalFileSystem` rooted at the directory.
    pub(super) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// See [`stage_object`].
    pub(super) fn stage(
        &self,
        cache: &Cache,
        digest: &Digest,
    ) -> Result<Option<(Pending, u64)>, RemoteError> {
        stage_object(&self.root, cache, digest)
    }

    /// Writes `rel` (a `/`-separated key under the directory) from what `fill` writes into a
    /// temporary file in the staging directory: synced, then renamed into place without
    /// replacing an existing file (content-addressed names). Returns whether it was created.
    /// Blocking: run on a blocking thread.
    pub(super) fn put_with(
        &self,
        rel: &str,
        fill: impl FnOnce(&mut std::fs::File) -> io::Result<()>,
    ) -> Result<bool, RemoteError> {
        let staging = self.root.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).at("cannot create directory", &staging)?;
        let mut tmp = temp_file_in(&staging)?;
        let tmp_path = tmp.path().to_path_buf();
        fill(tmp.as_file_mut()).map_err(|e| crate::fs::temp_write_error(&tmp_path, e))?;
        set_readonly(tmp.as_file()).at("cannot set permissions on", &tmp_path)?;
        let dest = rel.split('/').fold(self.root.clone(), |p, s| p.join(s));
        let created = publish(vec![Pending {
            tmp: tmp.into_temp_path(),
            dest,
        }])?;
        Ok(created.first().copied().unwrap_or(false))
    }

    /// Sets the time of the existing object `rel` to now, as an object store's overwrite of
    /// an object with the same bytes does. Blocking: run on a blocking thread.
    pub(super) fn touch(&self, rel: &str) -> Result<(), RemoteError> {
        let dest = rel.split('/').fold(self.root.clone(), |p, s| p.join(s));
        let file = std::fs::File::open(&dest).at("cannot open", &dest)?;
        file.set_modified(std::time::SystemTime::now())
            .at("cannot set the time of", &dest)?;
        Ok(())
    }

    /// See [`get_object`].
    pub(super) fn read(
        &self,
        cache: &Cache,
        digest: &Digest,
        to_memory: bool,
    ) -> Result<Option<(Body, Digest, u64)>, RemoteError> {
        get_object(&self.root, cache, digest, to_memory)
    }
}

/// Where an object lives in a local remote.
fn object_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join(digest.fanout()).join(digest.to_string())
}

/// Copies one cache object into a temporary file of the remote directory, verifying it while
/// copying, for [`publish`]. Returns `None` if the remote already has it. Blocking: run on a
/// blocking thread.
fn stage_object(root: &Path, cache: &Cache, digest: &Digest) -> Result<Option<(Pending, u64)>, RemoteError> {
    let dest = object_path(root, digest);
    if dest.is_file() {
        return Ok(None);
    }
    let mut tmp = temp_file_in(&root.join(STAGING_DIR))?;
    // Verifies the cache object while copying; on failure `tmp` is dropped (deleted).
    let size = cache.copy_out_to_file(digest, tmp.as_file_mut())?;
    set_readonly(tmp.as_file()).at("cannot set permissions on", tmp.path())?;
    if size >= SYNC_AT_ONCE {
        // A large object is made durable at once, overlapping the copies of the others, and its
        // pages leave the page cache: nobody reads a remote copy soon, and the next copies reuse
        // those pages instead of taking fresh ones (on a VM, fresh guest pages cost ~10x more to
        // fill). Publishing finds nothing left to write.
        tmp.as_file().sync_all().at("cannot sync", tmp.path())?;
        drop_cached_pages(tmp.as_file());
    }
    crate::crash_point!("push.local_before_rename");
    Ok(Some((
        Pending {
            tmp: tmp.into_temp_path(),
            dest,
        },
        size,
    )))
}

/// Objects at least this large are synced by the thread that copied them.
const SYNC_AT_ONCE: u64 = 1 << 20;

/// Tells the kernel that a synced file's cached pages will not be needed soon (a hint).
fn drop_cached_pages(file: &std::fs::File) {
    // offset 0 and no length: the whole file; errors are ignored (a hint)
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed);
}

/// Publishes staged objects: durable first (one file-system sync per batch), then renamed into
/// place without replacing an existing object. Returns, in order, whether each was created.
/// Blocking: run on a blocking thread.
pub(super) fn publish(staged: Vec<Pending>) -> Result<Vec<bool>, RemoteError> {
    Ok(publish_batch(staged, false, || ())?)
}

/// Copies one object out of the remote directory into a new cache temporary file, hashing it
/// on the way; the caller compares the digest with the name before installing anything.
/// `None` when the remote has no such object. The file is opened without following a
/// symbolic link. Blocking: run on a blocking thread.
///
/// This bypasses `LocalFileSystem::get`, whose stream hands out small chunks (one blocking task
/// each): a gigabyte object is one pipelined copy here instead of a hundred thousand tasks.
fn get_object(
    root: &Path,
    cache: &Cache,
    digest: &Digest,
    to_memory: bool,
) -> Result<Option<(Body, Digest, u64)>, RemoteError> {
    use std::os::unix::fs::OpenOptionsExt;
    let src_path = object_path(root, digest);
    let mut src = match std::fs::File::options()
        .read(true)
        .custom_flags(crate::fs::O_NOFOLLOW)
        .open(&src_path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::fs::IoError::new("cannot read", &src_path, e).into()),
    };
    let len = src.metadata().at("cannot stat", &src_path)?.len();
    if to_memory && len <= MAX_PACKED_OBJECT {
        let mut bytes = Vec::with_capacity(len as usize);
        src.read_to_end(&mut bytes).at("cannot read", &src_path)?;
        let (actual, size) = (Digest::of_bytes(&bytes), bytes.len() as u64);
        return Ok(Some((Body::Memory(bytes), actual, size)));
    }
    let mut tmp = cache.temp_file()?;
    let (actual, size) = crate::hash::copy_file_hashing(&mut src, tmp.as_file_mut(), len)
        .map_err(|e| crate::fs::temp_write_error(tmp.path(), e))?;
    crate::crash_point!("fetch.mid_download");
    Ok(Some((Body::File(tmp), actual, size)))
}
