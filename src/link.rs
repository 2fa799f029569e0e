//! Materializing workspace files from cache objects by the configured link kinds.
//!
//! Every object is verified against its digest on the way out. Files are placed atomically:
//! written or linked under `.mlv/tmp`, then renamed over the destination.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::cache::{Cache, CacheError};
use crate::config::LinkKind;
use crate::fs::{workspace_mode, IoContext, IoError};
use crate::hash::Digest;

/// Refuses link kinds that make workspace files *be* cache objects (`hardlink`, `symlink`)
/// when running as root, unless `cache.link_as_root` says so: read-only bits do not stop root,
/// so appending to a linked workspace file would change the cached object, the only copy of
/// data not yet pushed. Returns the refused kind.
pub fn refused_as_root(config: &crate::config::CacheConfig) -> Option<LinkKind> {
    let root = rustix::process::geteuid().is_root();
    if !root || config.link_as_root {
        return None;
    }
    config.link.iter().copied().find(|k| k.shares_object())
}

/// Places cache objects into the workspace.
pub struct Linker<'a> {
    cache: &'a Cache,
    kinds: Vec<LinkKind>,
    tmp_dir: PathBuf,
    reflink_works: AtomicBool,
    counter: AtomicU64,
}

impl<'a> Linker<'a> {
    /// A linker trying `kinds` in order, with scratch files in `tmp_dir`.
    pub fn new(cache: &'a Cache, kinds: &[LinkKind], tmp_dir: PathBuf) -> Result<Self, IoError> {
        std::fs::create_dir_all(&tmp_dir)
            .map_err(|e| IoError::new("cannot create directory", &tmp_dir, e))?;
        Ok(Linker {
            cache,
            kinds: kinds.to_vec(),
            tmp_dir,
            reflink_works: AtomicBool::new(true),
            counter: AtomicU64::new(0),
        })
    }

    /// The first configured kind that shares the object itself (hardlink or symlink), if that
    /// is what workspace files will usually be.
    pub fn primary(&self) -> LinkKind {
        self.kinds.first().copied().unwrap_or(LinkKind::Copy)
    }

    /// Puts object `digest` at `dest`, replacing a file there. Returns the kind used.
    pub fn place(&self, digest: &Digest, dest: &Path, exec: bool) -> Result<LinkKind, CacheError> {
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| IoError::new("cannot create directory", parent, e))?;
        }
        let tmp = self.tmp_name();
        let kind = self
            .link_to(digest, &tmp, exec)
            .map_err(|e| name_full_dest(e, dest))?;
        crate::crash_point!("checkout.before_rename");
        if let Err(e) = std::fs::rename(&tmp, dest) {
            let _ = std::fs::remove_file(&tmp);
            return Err(IoError::new("cannot write", dest, e).into());
        }
        Ok(kind)
    }

    /// Whether `kind` can serve this file; shared objects are read-only and never executable.
    fn applicable(&self, kind: LinkKind, exec: bool) -> bool {
        match kind {
            LinkKind::Reflink => self.reflink_works.load(Ordering::Relaxed),
            LinkKind::Hardlink | LinkKind::Symlink => !exec,
            LinkKind::Copy => true,
        }
    }

    fn link_to(&self, digest: &Digest, tmp: &Path, exec: bool) -> Result<LinkKind, CacheError> {
        let object = self.cache.object_path(digest);
        for &kind in self.kinds.iter().filter(|k| self.applicable(**k, exec)) {
            // a packed object has no file of its own to share: it is copied out
            if kind != LinkKind::Copy && !self.cache.is_loose(digest) {
                continue;
            }
            match kind {
                LinkKind::Reflink => {
                    if reflink_copy::reflink(&object, tmp).is_err() {
                        self.reflink_works.store(false, Ordering::Relaxed);
                        continue;
                    }
                    if let Err(e) = self.verify_file(digest, tmp) {
                        let _ = std::fs::remove_file(tmp);
                        return Err(e);
                    }
                    set_mode(tmp, workspace_mode(exec, false))?;
                }
                LinkKind::Hardlink => {
                    self.cache.verify(digest)?;
                    if std::fs::hard_link(&object, tmp).is_err() {
                        continue; // e.g. the cache is on another file system
                    }
                }
                LinkKind::Symlink => {
                    self.cache.verify(digest)?;
                    std::os::unix::fs::symlink(&object, tmp).at("cannot create link", tmp)?;
                }
                LinkKind::Copy => self.copy_to(digest, tmp, exec)?,
            }
            return Ok(kind);
        }
        self.copy_to(digest, tmp, exec)?;
        Ok(LinkKind::Copy)
    }

    fn copy_to(&self, digest: &Digest, tmp: &Path, exec: bool) -> Result<(), CacheError> {
        let mut file = std::fs::File::create(tmp).at("cannot create", tmp)?;
        if let Err(e) = self.cache.copy_out_to_file(digest, &mut file) {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
        set_mode(tmp, workspace_mode(exec, false))?;
        Ok(())
    }

    fn verify_file(&self, digest: &Digest, path: &Path) -> Result<(), CacheError> {
        let mut f = std::fs::File::open(path).at("cannot read", path)?;
        let (actual, _) = crate::hash::hash_reader(&mut f).at("cannot read", path)?;
        if actual != *digest {
            return Err(CacheError::Corrupt {
                digest: *digest,
                path: self.cache.object_path(digest),
                actual,
            });
        }
        Ok(())
    }

    fn tmp_name(&self) -> PathBuf {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        self.tmp_dir.join(format!(
            "{}place-{}-{n}",
            crate::fs::TEMP_PREFIX,
            std::process::id()
        ))
    }
}

/// A full disk while making `dest` is reported on `dest` (not on the cache object read or the
/// scratch file written).
fn name_full_dest(e: CacheError, dest: &Path) -> CacheError {
    match e {
        CacheError::Io(io)
            if matches!(
                io.source.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            ) =>
        {
            IoError::new("cannot write", dest, io.source).into()
        }
        other => other,
    }
}

/// Sets a file's permission bits.
pub fn set_mode(path: &Path, mode: u32) -> Result<(), IoError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .at("cannot set permissions on", path)
}

/// Whether a workspace file is the cache object itself (a hard link or a symbolic link to it).
pub fn is_linked_to_cache(path: &Path, meta: &std::fs::Metadata, cache: &Cache, digest: &Digest) -> bool {
    use std::os::unix::fs::MetadataExt;
    if meta.file_type().is_symlink() {
        return std::fs::read_link(path).is_ok_and(|t| t == cache.object_path(digest));
    }
    meta.nlink() > 1
        && std::fs::metadata(cache.object_path(digest))
            .is_ok_and(|o| o.ino() == meta.ino() && o.dev() == meta.dev())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_by_each_kind_and_verifies() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path().join("c"), d.path().join("t"));
        let digest = cache.insert_bytes(b"payload").unwrap();
        for kind in [
            LinkKind::Reflink,
            LinkKind::Hardlink,
            LinkKind::Symlink,
            LinkKind::Copy,
        ] {
            let linker = Linker::new(&cache, &[kind, LinkKind::Copy], d.path().join("t")).unwrap();
            let dest = d.path().join(format!("ws/{kind:?}"));
            let used = linker.place(&digest, &dest, false).unwrap();
            assert_eq!(std::fs::read(&dest).unwrap(), b"payload");
            assert!(used == kind || (kind == LinkKind::Reflink && used == LinkKind::Copy));
            let exec = linker.place(&digest, &dest, true).unwrap();
            assert!(!matches!(exec, LinkKind::Hardlink | LinkKind::Symlink));
        }
    }
}
