//! Reading the workspace: walking tracked directories without following links, and turning
//! files into digests (from the stat cache when unchanged, hashing otherwise).

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::cache::{Cache, CacheError, Staged};
use crate::fs::{is_executable, IoContext, IoError};
use crate::hash::{hash_reader, Digest};
use crate::manifest::Entry;
use crate::pack::{PackWriter, MAX_PACKED_OBJECT};
use crate::progress::Progress;
use crate::relpath::{RelPath, RelPathError};
use crate::repo::Repo;
use crate::state::{Stat, StatCache};

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
    /// A file that changed each time it was read (something is writing it).
    #[error("{path}: changed while mlv was reading it, twice")]
    Changed {
        /// The file (work-tree relative).
        path: PathBuf,
    },
    /// A socket, FIFO or device.
    #[error("{path}: not a regular file, directory or symbolic link")]
    Special {
        /// The offending path.
        path: PathBuf,
    },
}

impl WorkspaceError {
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind;
        match self {
            WorkspaceError::Io(e) => e.kind(),
            WorkspaceError::Cache(e) => e.kind(),
            WorkspaceError::SymlinkEscapes { .. }
            | WorkspaceError::NotUtf8 { .. }
            | WorkspaceError::Reserved { .. }
            | WorkspaceError::BadName { .. }
            | WorkspaceError::Special { .. } => ErrorKind::Refused,
            WorkspaceError::Changed { .. } => ErrorKind::Failure,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            WorkspaceError::Io(e) => e.hint(),
            WorkspaceError::Cache(e) => e.hint(),
            WorkspaceError::SymlinkEscapes { .. } => {
                Some("replace the link with a copy of its target, or remove it".into())
            }
            WorkspaceError::BadName { .. } | WorkspaceError::NotUtf8 { .. } => {
                Some("rename the file; see docs/format.md, \"File names\"".into())
            }
            WorkspaceError::Changed { .. } => {
                Some("something is writing it: run the command again once it is done".into())
            }
            WorkspaceError::Reserved { .. } => {
                Some("move it out of the tracked directory, or add the directory's other parts".into())
            }
            WorkspaceError::Special { .. } => None,
        }
    }
}

/// One thing found in a tracked directory.
#[derive(Debug)]
pub enum Item {
    /// A regular file.
    File {
        /// Path relative to the tracked directory.
        path: String,
        /// Its stat fields (not following links, except links into the cache).
        stat: Stat,
        /// Whether it is executable.
        exec: bool,
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
    fn file(path: String, meta: &Metadata) -> Item {
        Item::File {
            path,
            stat: Stat::of(meta),
            exec: is_executable(meta),
        }
    }

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
                items.push(Item::file(path, &meta));
            } else if ft.is_symlink() {
                let abs = entry.path();
                if let Some(meta) = cache_link_meta(&abs, self.cache_root) {
                    items.push(Item::file(path, &meta));
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

/// Reads a link's target and checks that it stays inside the repository, and out of `.git`
/// and `.mlv` in any case: the same rule as checkout applies to the links it creates
/// ([`crate::relpath::link_stays_inside`]), so whatever `add` accepts checks out.
pub fn checked_link_target(link: &Path, repo_root: &Path) -> Result<String, WorkspaceError> {
    let target = std::fs::read_link(link).at("cannot read link", link)?;
    let escapes = || WorkspaceError::SymlinkEscapes {
        path: link.to_path_buf(),
        target: target.clone(),
    };
    let text = target.to_str().ok_or_else(|| WorkspaceError::NotUtf8 {
        path: link.to_path_buf(),
    })?;
    let rel = link
        .strip_prefix(repo_root)
        .ok()
        .and_then(Path::to_str)
        .ok_or_else(escapes)?;
    if !crate::relpath::link_stays_inside(rel, text) {
        return Err(escapes());
    }
    Ok(text.to_string())
}

/// Total bytes of the regular files among `items`.
pub fn total_bytes(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|i| {
            if let Item::File { stat, .. } = i {
                stat.len()
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
    /// Like `Insert`, but small files go into a pack (an `add` of many new files).
    Pack(&'a Cache, &'a Mutex<PackWriter>),
    /// Only hash them (`status`, `checkout`).
    HashOnly,
}

/// How many of `items` are small files whose object the cache may lack (the stat cache does
/// not know them, or knows an object the cache does not have): the objects an `add` of them
/// may have to store, to decide whether to pack them.
pub fn new_small_files(items: &[Item], base: &RelPath, stat: &StatCache, cache: &Cache) -> usize {
    items
        .iter()
        .filter(|i| match i {
            Item::File { path, stat: now, .. } => {
                now.len() <= MAX_PACKED_OBJECT
                    && stat
                        .lookup(&format!("{}/{path}", base.as_str()), now)
                        .is_none_or(|d| !cache.contains(&d))
            }
            _ => false,
        })
        .count()
}

/// A file whose digest was computed now, to record in the stat cache.
pub struct Fresh {
    /// Work-tree-relative path.
    pub rel: String,
    /// Stat fields at hashing time.
    pub stat: Stat,
    /// The digest.
    pub digest: Digest,
    /// Its new cache object, written but not yet published (`HashMode::Insert`).
    pub staged: Option<Box<Staged>>,
}

/// Takes the staged cache objects out of freshly hashed files, for publishing.
pub fn take_staged(fresh: &mut [Fresh]) -> Vec<Staged> {
    fresh
        .iter_mut()
        .filter_map(|f| f.staged.take())
        .map(|b| *b)
        .collect()
}

/// Turns scanned items into manifest entries (new cache objects are staged in the returned
/// `Fresh` records; publish them before relying on them). `base` is the tracked directory (work-tree
/// relative; absolute `base_abs`). Returns the entries and the freshly hashed files.
///
/// Memory matters here (a million files): the items are consumed so that their paths move into
/// the entries, and the (few, usually) fresh records are collected on the side.
pub fn entries_for(
    items: Vec<Item>,
    base: &RelPath,
    base_abs: &Path,
    stat: &StatCache,
    mode: HashMode<'_>,
    progress: &dyn Progress,
) -> Result<(Vec<Entry>, Vec<Fresh>), WorkspaceError> {
    let fresh = std::sync::Mutex::new(Vec::new());
    let failure = std::sync::Mutex::new(None);
    // An indexed collect writes straight into one vector of the final size (collecting into a
    // `Result` would gather chunks and copy them: twice the memory); the first error is kept on
    // the side and its entry is a placeholder that is never returned.
    let entries: Vec<Entry> = items
        .into_par_iter()
        .map(|item| match item {
            Item::File {
                path,
                stat: now,
                exec,
            } => {
                let rel = format!("{}/{path}", base.as_str());
                match file_digest(&base_abs.join(&path), &rel, now, stat, mode, progress) {
                    Ok((digest, size, f)) => {
                        if let Some(f) = f {
                            lock(&fresh).push(f);
                        }
                        // the size of what was hashed: the object's, whatever the scan saw
                        Entry::file(path, digest, size, exec)
                    }
                    Err(e) => {
                        lock(&failure).get_or_insert(e);
                        Entry::dir(path)
                    }
                }
            }
            Item::EmptyDir { path } => Entry::dir(path),
            Item::Symlink { path, target } => Entry::symlink(path, target),
        })
        .collect();
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    Ok((entries, fresh.into_inner().unwrap_or_else(|p| p.into_inner())))
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The digest and size of one workspace file: from the stat cache if unchanged (and, when
/// inserting, present in the cache), otherwise by reading it once.
///
/// A file that changes while it is read (its metadata after the read differs from `now`, or
/// the bytes read are not `now`'s size) would get a digest of bytes that may never have been
/// its content, or a size that is not its object's: it is read again, once, with the metadata
/// seen after the first read; if it changes again, the result is [`WorkspaceError::Changed`].
/// The size returned is that of the bytes hashed, and the `Fresh` record's stat is the one
/// they match.
pub fn file_digest(
    abs: &Path,
    rel: &str,
    now: Stat,
    stat: &StatCache,
    mode: HashMode<'_>,
    progress: &dyn Progress,
) -> Result<(Digest, u64, Option<Fresh>), WorkspaceError> {
    if let Some(d) = stat.lookup(rel, &now) {
        let usable = match mode {
            HashMode::Insert(cache) | HashMode::Pack(cache, _) => cache.contains(&d),
            HashMode::HashOnly => true,
        };
        if usable {
            progress.advance(1, now.len());
            return Ok((d, now.len(), None));
        }
    }
    let mut now = now;
    for _attempt in 0..2 {
        crate::crash_point!("workspace.before_read");
        let mut f = std::fs::File::open(abs).at("cannot read", abs)?;
        let (digest, size, staged) = match mode {
            HashMode::Pack(cache, pack) if now.len() <= MAX_PACKED_OBJECT => {
                (cache.pack_file(&mut f, abs, now.len(), pack)?, now.len(), None)
            }
            HashMode::Insert(cache) | HashMode::Pack(cache, _) => {
                let (d, size, staged) = cache.stage_open(&mut f, abs)?;
                // boxed: a million fresh records mostly hold none
                (d, size, staged.map(Box::new))
            }
            HashMode::HashOnly => {
                let (d, size) = hash_reader(&mut f).at("cannot read", abs)?;
                (d, size, None)
            }
        };
        let after = Stat::of(&f.metadata().at("cannot stat", abs)?);
        if after == now && size == now.len() {
            progress.advance(1, size);
            let fresh = Fresh {
                rel: rel.to_string(),
                stat: now,
                digest,
                staged,
            };
            return Ok((digest, size, Some(fresh)));
        }
        // changed while it was read: what was hashed is dropped (a staged object with it)
        drop(staged);
        now = after;
    }
    Err(WorkspaceError::Changed { path: rel.into() })
}

/// The workspace view of a tracked directory: its entries with digests.
pub fn workspace_entries(
    repo: &Repo,
    data: &RelPath,
    stat: &mut StatCache,
    progress: &dyn Progress,
) -> Result<Vec<Entry>, WorkspaceError> {
    let abs = data.to_path(&repo.root);
    let items = scan_dir(&abs, &repo.root, repo.cache.root())?;
    let total = total_bytes(&items);
    progress.start("checking", items.len() as u64, total);
    let (entries, fresh) = entries_for(items, data, &abs, stat, HashMode::HashOnly, progress)?;
    progress.finish();
    record_fresh(stat, fresh);
    Ok(entries)
}

/// Records freshly hashed files in the stat cache.
pub fn record_fresh(stat: &mut StatCache, fresh: Vec<Fresh>) {
    for f in fresh {
        stat.record(f.rel, f.stat, f.digest);
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
        for bad in ["../../../etc/passwd", "../../.GIT/x", "../.Mlv", "/etc/passwd"] {
            let _ = std::fs::remove_file(d.join("b/bad"));
            std::os::unix::fs::symlink(bad, d.join("b/bad")).unwrap();
            assert!(
                matches!(
                    scan_dir(&d, &root, &root.join("c")),
                    Err(WorkspaceError::SymlinkEscapes { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn empty_tracked_dir_has_no_items() {
        let root = tempfile::tempdir().unwrap();
        assert!(scan_dir(root.path(), root.path(), root.path())
            .unwrap()
            .is_empty());
    }
}
