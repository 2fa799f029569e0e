//! Reading the workspace: walking tracked directories without following links, and turning
//! files into digests (from the stat cache when unchanged, hashing otherwise).

use std::fs::Metadata;
use std::path::{Component, Path, PathBuf};

use rayon::prelude::*;

use crate::cache::{Cache, CacheError};
use crate::fs::{is_executable, IoContext, IoError};
use crate::hash::{hash_reader, Digest};
use crate::manifest::Entry;
use crate::progress::Progress;
use crate::relpath::RelPath;
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

/// Walks directory `dir` (absolute) without following symbolic links. `repo_root` bounds where
/// symbolic links may point. Items come sorted by path.
/// Symbolic links into `cache_root` (made by the `symlink` link kind) count as the files they
/// point to.
pub fn scan_dir(dir: &Path, repo_root: &Path, cache_root: &Path) -> Result<Vec<Item>, WorkspaceError> {
    let mut items = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by(|a, b| a.file_name().cmp(b.file_name()))
        .min_depth(1);
    let mut last_dir: Option<(String, usize)> = None; // a directory and the item count when seen
    for entry in walker {
        let entry = entry.map_err(|e| walk_error(e, dir))?;
        let abs = entry.path();
        let rel = abs
            .strip_prefix(dir)
            .expect("walkdir yields paths under its root");
        let path = rel
            .to_str()
            .ok_or_else(|| WorkspaceError::NotUtf8 {
                path: abs.to_path_buf(),
            })?
            .to_string();
        if entry.file_name() == ".git" || entry.file_name() == ".mlv" {
            return Err(WorkspaceError::Reserved {
                path: abs.to_path_buf(),
            });
        }
        close_empty_dir(&mut last_dir, &path, &mut items);
        let ft = entry.file_type();
        if ft.is_dir() {
            last_dir = Some((path, items.len()));
        } else if ft.is_file() {
            let meta = entry.metadata().map_err(|e| walk_error(e, dir))?;
            items.push(Item::File { path, meta });
        } else if ft.is_symlink() {
            if let Some(meta) = cache_link_meta(abs, cache_root) {
                items.push(Item::File { path, meta });
                continue;
            }
            let target = checked_link_target(abs, repo_root)?;
            items.push(Item::Symlink { path, target });
        } else {
            return Err(WorkspaceError::Special {
                path: abs.to_path_buf(),
            });
        }
    }
    close_empty_dir(&mut last_dir, "", &mut items);
    items.sort_unstable_by(|a, b| a.path().cmp(b.path()));
    Ok(items)
}

/// Records the last directory as empty if nothing was found inside it before `next`.
fn close_empty_dir(last_dir: &mut Option<(String, usize)>, next: &str, items: &mut Vec<Item>) {
    if let Some((d, count)) = last_dir.take() {
        let inside = next.len() > d.len() && next.starts_with(&d) && next.as_bytes()[d.len()] == b'/';
        if inside {
            // the directory has content; forget it (its children will mark their own emptiness)
        } else if items.len() == count {
            items.push(Item::EmptyDir { path: d });
        }
    }
}

fn walk_error(e: walkdir::Error, dir: &Path) -> WorkspaceError {
    let path = e.path().unwrap_or(dir).to_path_buf();
    let io = e
        .into_io_error()
        .unwrap_or_else(|| std::io::Error::other("file system loop"));
    IoError::new("cannot read", path, io).into()
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
}

/// Turns scanned items into manifest entries. `base` is the tracked directory (work-tree
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
    let digest = match mode {
        HashMode::Insert(cache) => cache.insert_file(abs)?.0,
        HashMode::HashOnly => {
            let mut f = std::fs::File::open(abs).at("cannot read", abs)?;
            hash_reader(&mut f).at("cannot read", abs)?.0
        }
    };
    progress.advance(1, meta.len());
    let fresh = Fresh {
        rel: rel.to_string(),
        meta: meta.clone(),
        digest,
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
