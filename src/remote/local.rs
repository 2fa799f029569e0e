//! Uploads to a local-directory remote bypass object_store's `LocalFileSystem` (which neither
//! fsyncs nor refuses symlinks): each object is copied from the cache into a temporary file in
//! `ROOT/.mlv-tmp/`, verified while copying, made read-only, fsynced and renamed into
//! `ROOT/ab/<digest>` without replacing an existing object. Reads, listings and HEADs still go
//! through `LocalFileSystem`.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::cache::Cache;
use crate::fs::{persist_content_addressed, IoContext};
use crate::hash::Digest;

use super::error::RemoteError;

/// Name of the staging directory inside a local remote.
pub(crate) const STAGING_DIR: &str = ".mlv-tmp";

/// Where an object lives in a local remote.
pub(crate) fn object_path(root: &Path, digest: &Digest) -> PathBuf {
    root.join(digest.fanout()).join(digest.to_string())
}

/// Copies one cache object into the remote directory. Returns `Some(size)` if this call
/// created it, `None` if it was already there. Blocking: run on a blocking thread.
pub(crate) fn put_object(root: &Path, cache: &Cache, digest: &Digest) -> Result<Option<u64>, RemoteError> {
    let dest = object_path(root, digest);
    if dest.is_file() {
        return Ok(None);
    }
    let staging = root.join(STAGING_DIR);
    std::fs::create_dir_all(&staging).at("cannot create directory", &staging)?;
    let mut tmp = NamedTempFile::new_in(&staging).at("cannot create a temporary file in", &staging)?;
    let size = {
        let mut out = io::BufWriter::with_capacity(crate::hash::BUF_SIZE, tmp.as_file_mut());
        // Verifies the cache object while copying; on failure `tmp` is dropped (deleted).
        let size = cache.copy_out_verified(digest, &mut out)?;
        out.flush().at("cannot write", &staging)?;
        size
    };
    crate::crash_point!("push.local_before_rename");
    let created = persist_content_addressed(tmp, &dest)?;
    Ok(created.then_some(size))
}
