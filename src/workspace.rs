//! Reading the workspace: walking tracked directories without following links, and turning
//! files into digests (from the stat cache when unchanged, hashing otherwise).

use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::cache::{Cache, CacheError, Staged};
use crate::fs::{is_executable, IoContext, IoError};
use crate::hash::{hash_reader, Digest};
use crate::manifest::Entry;
use crate::progress::Progress;
use crate::relpath::{RelPath, RelPathError};
use crate::state::StatCache;

/// Errors reading the workspace.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Writing into the cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A symbolic link points outside the repository or is absolute.
    #[error("{path}: symbolic link to {target:?} leads outside the repository")]
    SymlinkEscapes {
        /// The link.
        path: PathBuf,
        /// Its target text.
        target: PathBuf,
    },
    /// A name that is not UTF-8.
    #[error("{path}: file name is not valid UTF-8")]
    NotUtf8 {
        /// The offending path.
        path: PathBuf,
    },
    /// A `.git` or `.mlv` entry, which a manifest cannot hold (a nested repository, say).
    #[error("{path}: mlv cannot track `.git` or `.mlv` inside tracked data")]
    Reserved {
        /// The offending path.
        path: PathBuf,
    },
    /// A name a manifest cannot hold: a control character or backslash in it, or too long.
    #[error("{}: mlv cannot track this file name: {reason}", .path.to_string_lossy().escape_debug())]
    BadName {
        /// The offending path.
        path: PathBuf,
        /// What is wrong with it.
        reason: RelPathError,
    },
    /// A socket, FIFO or device.
    #[error("{path}: not a regular file, directory or symbolic link")]
    Special {
        /// The offending path.
        path: PathBuf,
    },
}

/// One thing found in a tracked directory.
#[derive(Debug)]
pub enum Item {
    /// A regular file.
    File {
        /// Path relative to the tracked directory.
        path: String,
        /// Its metadata (not following links).
        meta: Metadata,
    },
    /// A directory with nothing in it.
    EmptyDir {
        /// Path relative to the tracked directory.
        path: String,
    },
    /// A symbolic link, with its target text.
    Symlink {
        /// Path relative to the tracked directory.
        path: String,
        /// The link's target.
        target: String,
    },
}

impl Item {
    /// The item's path relative to the tracked directory.
    pub fn path(&self) -> &str {
        match self {
            Item::File { path, .. } | Item::EmptyDir { path } | Item::Symlink { path, .. } => path,
        }
    }
}

/// Walks directory `dir` (absolute) without following symbolic links, subdirectories in
/// parallel. `repo_root` bounds where symbolic links may point; symbolic links into
/// `cache_root` (made by the `symlink` link kind) count as the files they point to. Items come
/// sorted by path.
///
/// This uses `std::fs::read_dir`, whose `DirEntry::metadata` stats relative to the open
/// directory (`fstatat`) instead of resolving every full path again as walkdir does.
pub fn scan_dir(dir: &Path, repo_root: &Path, cache_root: &Path) -> Result<Vec<Item>, WorkspaceError> {
    let ctx = ScanCtx {
        repo_root,
        cache_root,
    };
    let mut items = ctx.scan(dir, "")?;
    items.sort_unstable_by(|a, b| a.path().cmp(b.path()));
    Ok(items)
}

struct ScanCtx<'a> {
    repo_root: &'a Path,
    cache_root: &'a Path,
}

impl ScanCtx<'_> {
    fn scan(&self, dir: &Path, prefix: &str) -> Result<Vec<Item>, WorkspaceError> {
        let mut items = Vec::new();
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(dir).at("cannot read directory", dir)? {
            let entry = entry.at("cannot read directory", dir)?;
            let name = entry.file_name();
            let name = name
                .to_str()
                .ok_or_else(|| WorkspaceError::NotUtf8 { path: entry.path() })?;
            match crate::relpath::check_name(name) {
                Ok(()) => {}
                Err(RelPathError::Reserved(_)) => {
                    return Err(WorkspaceError::Reserved { path: entry.path() })
                }
                Err(reason) => {
                    return Err(WorkspaceError::BadName {
                        path: entry.path(),
                        reason,
                    })
                }
            }
            let path = if prefix.is_empty() {
                name.to_string()
            } else {
                format!("{prefix}/{name}")
            };
            let ft = entry.file_type().at("cannot stat", &entry.path())?;
            if ft.is_dir() {
                subdirs.push((entry.path(), path));
            } else if ft.is_file() {
                let meta = entry.metadata().at("cannot stat", &entry.path())?;
                items.push(Item::File { path, meta });
            } else if ft.is_symlink() {
                let abs = entry.path();
                if let Some(meta) = cache_link_meta(&abs, self.cache_root) {
                    items.push(Item::File { path, meta });
                } else {
                    let target = checked_link_target(&abs, self.repo_root)?;
                    items.push(Item::Symlink { path, target });
                }
            } else {
                return Err(WorkspaceError::Special { path: entry.path() });
            }
        }
        let nested: Vec<Result<Vec<Item>, WorkspaceError>> = subdirs
            .par_iter()
            .map(|(abs, path)| {
                let inner = self.scan(abs, path)?;
                Ok(if inner.is_empty() {
                    vec![Item::EmptyDir { path: path.clone() }]
                } else {
                    inner
                })
            })
            .collect();
        for n in nested {
            items.extend(n?);
        }
        Ok(items)
    }
}

/// The metadata of what `link` points to, if it is a symbolic link to a cache object.
pub fn cache_link_meta(link: &Path, cache_root: &Path) -> Option<Metadata> {
    let target = std::fs::read_link(link).ok()?;
    if target.is_absolute() && target.starts_with(cache_root) {
        std::fs::metadata(link).ok()
    } else {
        None
    }
}

/// The metadata of a data path, not following symbolic links except those into the cache.
pub fn data_meta(abs: &Path, cache_root: &Path) -> std::io::Result<Metadata> {
    let meta = std::fs::symlink_metadata(abs)?;
    if meta.file_type().is_symlink() {
        if let Some(m) = cache_link_meta(abs, cache_root) {
            return Ok(m);
        }
    }
    Ok(meta)
}

/// Reads a link's target and checks that it stays inside the repository.
pub fn checked_link_target(link: &Path, repo_root: &Path) -> Result<String, WorkspaceError> {
    let target = std::fs::read_link(link).at("cannot read link", link)?;
    let escapes = || WorkspaceError::SymlinkEscapes {
        path: link.to_path_buf(),
        target: target.clone(),
    };
    if target.is_absolute() {
        return Err(escapes());
    }
    let mut depth: Vec<&std::ffi::OsStr> = link
        .parent()
        .and_then(|p| p.strip_prefix(repo_root).ok())
        .map(|p| p.iter().collect())
        .ok_or_else(escapes)?;
    for c in target.components() {
        match c {
            Component::ParentDir => {
                depth.pop().ok_or_else(escapes)?;
            }
            Component::Normal(p) => {
                if p == ".git" || p == ".mlv" {
                    return Err(escapes());
                }
                depth.push(p);
            }
            Component::CurDir => {}
            _ => return Err(escapes()),
        }
    }
    target
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| WorkspaceError::NotUtf8 {
            path: link.to_path_buf(),
        })
}

/// Total bytes of the regular files among `items`.
pub fn total_bytes(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| {
            if let Item::File { meta, .. } = i {
                meta.len()
            } else {
                0
            }
        })
        .sum()
}

/// What to do with files whose digest is not known from the stat cache.
#[derive(Clone, Copy)]
pub enum HashMode<'a> {
    /// Copy them into the cache while hashing (`add`).
    Insert(&'a Cache),
    /// Only hash them (`status`, `checkout`).
    HashOnly,
}

/// A file whose digest was computed now, to record in the stat cache.
pub struct Fresh {
    /// Work-tree-relative path.
    pub rel: String,
    /// Metadata at hashing time.
    pub meta: Metadata,
    /// The digest.
    pub digest: Digest,
    /// Its new cache object, written but not yet published (`HashMode::Insert`).
    pub staged: Option<Staged>,
}

/// Takes the staged cache objects out of freshly hashed files, for publishing.
pub fn take_staged(fresh: &mut [Fresh]) -> Vec<Staged> {
    fresh.iter_mut().filter_map(|f| f.staged.take()).collect()
}

/// Turns scanned items into manifest entries (new cache objects are staged in the returned
/// `Fresh` records; publish them before relying on them). `base` is the tracked directory (work-tree
/// relative; absolute `base_abs`). Returns the entries and the freshly hashed files.
pub fn entries_for(
    items: &[Item],
    base: &RelPath,
    base_abs: &Path,
    stat: &StatCache,
    mode: HashMode<'_>,
    progress: &dyn Progress,
) -> Result<(Vec<Entry>, Vec<Fresh>), WorkspaceError> {
    let results: Vec<Result<(Entry, Option<Fresh>), WorkspaceError>> = items
        .par_iter()
        .map(|item| match item {
            Item::File { path, meta } => {
                let rel = format!("{}/{path}", base.as_str());
                let (digest, fresh) = file_digest(&base_abs.join(path), &rel, meta, stat, mode, progress)?;
                let entry = Entry::file(path.clone(), digest, meta.len(), is_executable(meta));
                Ok((entry, fresh))
            }
            Item::EmptyDir { path } => Ok((Entry::dir(path.clone()), None)),
            Item::Symlink { path, target } => Ok((Entry::symlink(path.clone(), target.clone()), None)),
        })
        .collect();
    let mut entries = Vec::with_capacity(results.len());
    let mut fresh = Vec::new();
    for r in results {
        let (e, f) = r?;
        entries.push(e);
        fresh.extend(f);
    }
    Ok((entries, fresh))
}

/// The digest of one workspace file: from the stat cache if unchanged (and, when inserting,
/// present in the cache), otherwise by reading it once.
pub fn file_digest(
    abs: &Path,
    rel: &str,
    meta: &Metadata,
    stat: &StatCache,
    mode: HashMode<'_>,
    progress: &dyn Progress,
) -> Result<(Digest, Option<Fresh>), WorkspaceError> {
    if let Some(d) = stat.lookup(rel, meta) {
        let usable = match mode {
            HashMode::Insert(cache) => cache.contains(&d),
            HashMode::HashOnly => true,
        };
        if usable {
            progress.advance(1, meta.len());
            return Ok((d, None));
        }
    }
    let (digest, staged) = match mode {
        HashMode::Insert(cache) => {
            let (d, _, staged) = cache.stage_file(abs)?;
            (d, staged)
        }
        HashMode::HashOnly => {
            let mut f = std::fs::File::open(abs).at("cannot read", abs)?;
            (hash_reader(&mut f).at("cannot read", abs)?.0, None)
        }
    };
    progress.advance(1, meta.len());
    let fresh = Fresh {
        rel: rel.to_string(),
        meta: meta.clone(),
        digest,
        staged,
    };
    Ok((digest, Some(fresh)))
}

/// Records freshly hashed files in the stat cache.
pub fn record_fresh(stat: &mut StatCache, fresh: Vec<Fresh>) {
    for f in fresh {
        stat.record(f.rel, &f.meta, f.digest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_finds_files_empty_dirs_and_safe_links() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().canonicalize().unwrap();
        let d = root.join("data");
        std::fs::create_dir_all(d.join("a/empty")).unwrap();
        std::fs::create_dir_all(d.join("b")).unwrap();
        std::fs::write(d.join("a/x"), b"1").unwrap();
        std::os::unix::fs::symlink("../a/x", d.join("b/link")).unwrap();
        let items = scan_dir(&d, &root, &root.join("cache")).unwrap();
        let names: Vec<_> = items.iter().map(|i| i.path().to_string()).collect();
        assert_eq!(names, ["a/empty", "a/x", "b/link"]);
        std::os::unix::fs::symlink("../../../etc/passwd", d.join("b/bad")).unwrap();
        assert!(matches!(
            scan_dir(&d, &root, &root.join("c")),
            Err(WorkspaceError::SymlinkEscapes { .. })
        ));
    }

    #[test]
    fn empty_tracked_dir_has_no_items() {
        let root = tempfile::tempdir().unwrap();
        assert!(scan_dir(root.path(), root.path(), root.path())
            .unwrap()
            .is_empty());
    }
}
