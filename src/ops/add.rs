//! `mlv add`: hash files and directories into the cache and write their pointer files.

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::gitutil::{add_ignore, ignore_entry, stage, tracked_by_git};
use crate::link::Linker;
use crate::manifest::{Manifest, Node};
use crate::pointer::{Kind, Pointer};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};
use crate::workspace::{
    entries_for, file_digest, new_small_files, record_fresh, scan_dir, take_staged, total_bytes, HashMode,
    Item,
};

/// One path that was added.
#[derive(Debug, Serialize)]
pub struct Added {
    /// The data path, as displayed.
    pub path: String,
    /// The pointer file, as displayed.
    pub pointer: String,
    /// File or directory.
    pub kind: Kind,
    /// The file's digest, or the directory manifest's.
    pub digest: String,
    /// Total bytes.
    pub size: u64,
    /// Files (directories only).
    pub files: Option<u64>,
    /// Files read and hashed now (the rest were known unchanged).
    pub hashed: u64,
    /// Whether the pointer changed.
    pub changed: bool,
}

/// What `add` did.
#[derive(Debug, Serialize)]
pub struct AddReport {
    /// Each path added.
    pub added: Vec<Added>,
    /// Files to stage with git (pointers and `.gitignore`s), as displayed.
    pub git_paths: Vec<String>,
    /// Whether they were staged (`core.autostage`).
    pub staged: bool,
}

/// Adds `paths` (work-tree relative). Every path is checked before anything is written.
pub fn add(repo: &Repo, paths: &[RelPath], progress: &dyn Progress) -> Result<AddReport, Error> {
    add_with_stat(repo, paths, StatCache::load(&repo.state_dir()), progress)
}

/// [`add`] with a stat cache the caller has already filled (`import-dvc` hashed the files as
/// it checked them: in memory, its records are trusted as add's own would be).
pub(crate) fn add_with_stat(
    repo: &Repo,
    paths: &[RelPath],
    mut stat: StatCache,
    progress: &dyn Progress,
) -> Result<AddReport, Error> {
    super::refuse_links_as_root(repo)?;
    let pointers = repo.pointers()?;
    let mut scanned = Vec::with_capacity(paths.len());
    for (i, path) in paths.iter().enumerate() {
        check_addable(repo, &pointers, path)?;
        if let Some(other) = paths[..i].iter().find(|o| path.is_within(o) || o.is_within(path)) {
            return Err(Refusal::Duplicate {
                path: repo.display(path),
                other: repo.display(other),
            }
            .into());
        }
        // walking a directory finds links that escape the repository: before any write
        scanned.push(scan(repo, path)?);
    }
    let linker = Linker::new(&repo.cache, &repo.config.cache.link, repo.tmp_dir())?;
    // Everything that can fail for want of space or permission outside the pointers comes
    // first: objects stored, workspace linked, stat cache saved. A failure up to here leaves
    // every pointer as it was (objects nothing refers to yet are gc's to collect).
    let mut done = Vec::with_capacity(paths.len());
    for (path, scanned) in paths.iter().zip(scanned) {
        done.push(add_one(repo, path, scanned, &mut stat, &linker, progress)?);
    }
    stat.save()?;
    let mut added = Vec::new();
    let mut git_paths = Vec::new();
    for (path, (pointer, hashed)) in paths.iter().zip(done) {
        let previous = pointers.iter().find(|p| &p.data == path);
        let changed = previous.is_none_or(|p| p.meta != pointer.meta);
        crate::crash_point!("add.before_pointer");
        if changed {
            pointer.save(&repo.root, &repo.tmp_dir())?;
        }
        crate::crash_point!("add.after_pointer");
        let (ignore_file, line) = ignore_entry(path).expect("checked by check_addable");
        add_ignore(&repo.root, &ignore_file, &line)?;
        crate::crash_point!("add.after_ignore");
        git_paths.push(pointer.file.clone());
        git_paths.push(ignore_file);
        added.push(report_of(repo, &pointer, hashed, changed));
    }
    git_paths.sort();
    git_paths.dedup();
    let staged = repo.config.core.autostage;
    if staged {
        stage(&repo.git, &repo.root, &git_paths)?;
    }
    Ok(AddReport {
        added,
        git_paths: git_paths.iter().map(|p| repo.display(p)).collect(),
        staged,
    })
}

fn report_of(repo: &Repo, pointer: &Pointer, hashed: u64, changed: bool) -> Added {
    Added {
        path: repo.display(&pointer.data),
        pointer: repo.display(&pointer.file),
        kind: pointer.meta.kind,
        digest: pointer.meta.digest.to_string(),
        size: pointer.meta.size,
        files: pointer.meta.files,
        hashed,
        changed,
    }
}

/// Refuses paths that must not be added; nothing has been written yet.
fn check_addable(repo: &Repo, pointers: &[Pointer], path: &RelPath) -> Result<(), Error> {
    let shown = || repo.display(path);
    let abs = path.to_path(&repo.root);
    let meta = match crate::workspace::data_meta(&abs, repo.cache.root()) {
        Ok(m) => m,
        Err(_) => return Err(Refusal::NotFound { path: shown() }.into()),
    };
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(Refusal::SymlinkTarget { path: shown() }.into());
    }
    if !ft.is_file() && !ft.is_dir() {
        return Err(Refusal::Special { path: shown() }.into());
    }
    // no ancestor may be a symbolic link either (the data would live outside the repository)
    let mut parent = path.parent();
    while let Some(p) = parent {
        if std::fs::symlink_metadata(p.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Refusal::SymlinkTarget {
                path: repo.display(&p),
            }
            .into());
        }
        parent = p.parent();
    }
    // the .gitignore mlv will edit must not be a link either (its target's text would be
    // copied into the repository)
    let Some((ignore_file, _)) = ignore_entry(path) else {
        return Err(Refusal::BadPath {
            path: shown().into(),
            reason: crate::error::BadPathReason::NoRoomForGitignore,
        }
        .into());
    };
    if std::fs::symlink_metadata(ignore_file.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Refusal::LinkInPath {
            path: shown(),
            link: repo.display(&ignore_file),
        }
        .into());
    }
    if tracked_by_git(&repo.git, path)? {
        return Err(Refusal::TrackedByGit { path: shown() }.into());
    }
    for p in pointers {
        let overlaps = path.is_within(&p.data) || p.data.is_within(path) || p.file.is_within(path);
        if overlaps && p.data != *path {
            return Err(Refusal::Overlaps {
                path: shown(),
                other: repo.display(&p.data),
                pointer: repo.display(&p.file),
            }
            .into());
        }
    }
    Ok(())
}

/// What one path holds, read before anything is written.
enum Scanned {
    /// A file and its metadata.
    File(std::fs::Metadata),
    /// A directory and what it holds.
    Dir(Vec<Item>),
}

fn scan(repo: &Repo, path: &RelPath) -> Result<Scanned, Error> {
    let abs = path.to_path(&repo.root);
    let meta = crate::workspace::data_meta(&abs, repo.cache.root())
        .map_err(|e| crate::fs::IoError::new("cannot stat", &abs, e))?;
    if meta.is_file() {
        Ok(Scanned::File(meta))
    } else {
        Ok(Scanned::Dir(scan_dir(&abs, &repo.root, repo.cache.root())?))
    }
}

/// Hashes one path into the cache and links the workspace; returns its pointer and the count
/// of files hashed now.
fn add_one(
    repo: &Repo,
    path: &RelPath,
    scanned: Scanned,
    stat: &mut StatCache,
    linker: &Linker<'_>,
    progress: &dyn Progress,
) -> Result<(Pointer, u64), Error> {
    let abs = path.to_path(&repo.root);
    let items = match scanned {
        Scanned::Dir(items) => items,
        Scanned::File(meta) => {
            progress.start("hashing", 1, meta.len());
            let mode = HashMode::Insert(&repo.cache);
            // the size recorded is that of the bytes hashed (the object's), not the scan's
            let (digest, size, mut fresh) =
                file_digest(&abs, path.as_str(), Stat::of(&meta), stat, mode, progress)?;
            progress.finish();
            crate::crash_point!("add.after_stage");
            repo.cache.publish_staged(
                fresh
                    .as_mut()
                    .and_then(|f| f.staged.take())
                    .map(|b| vec![*b])
                    .unwrap_or_default(),
            )?;
            let exec = crate::fs::is_executable(&meta);
            let hashed = u64::from(fresh.is_some());
            record_fresh(stat, fresh.into_iter().collect());
            link_workspace(repo, linker, stat, &[(path.clone(), digest, exec)])?;
            return Ok((
                Pointer::new(path.clone(), Kind::File, digest, size, None, exec),
                hashed,
            ));
        }
    };
    let bytes = total_bytes(&items);
    // many new small files go into one pack: one file to create and sync instead of thousands
    let pack = match repo
        .cache
        .packs_for(new_small_files(&items, path, stat, &repo.cache))
    {
        true => Some(std::sync::Mutex::new(repo.cache.pack_writer()?)),
        false => None,
    };
    let mode = match &pack {
        Some(p) => HashMode::Pack(&repo.cache, p),
        None => HashMode::Insert(&repo.cache),
    };
    progress.start("hashing", items.len() as u64, bytes);
    let (entries, mut fresh) = entries_for(items, path, &abs, stat, mode, progress)?;
    progress.finish();
    crate::crash_point!("add.after_stage");
    repo.cache.publish_staged(take_staged(&mut fresh))?;
    if let Some(p) = pack {
        repo.cache
            .publish_pack(p.into_inner().unwrap_or_else(|e| e.into_inner()))?;
    }
    let hashed = fresh.len() as u64;
    record_fresh(stat, fresh);
    let manifest = Manifest::new(entries);
    crate::crash_point!("add.before_manifest");
    let digest = repo.cache.insert_written(|out| manifest.write_to(out))?;
    if linker.primary().shares_object() {
        let files: Vec<_> = manifest
            .entries
            .iter()
            .filter_map(|e| match e.node {
                Node::File { digest, exec, .. } => Some((e, digest, exec)),
                Node::Dir | Node::Symlink { .. } => None,
            })
            .map(|(e, d, exec)| Ok((super::entry_path(repo, path, &e.path)?, d, exec)))
            .collect::<Result<_, Error>>()?;
        link_workspace(repo, linker, stat, &files)?;
    }
    let pointer = Pointer::new(
        path.clone(),
        Kind::Dir,
        digest,
        manifest.size(),
        Some(manifest.file_count()),
        false,
    );
    Ok((pointer, hashed))
}

/// With hardlink or symlink as the first link kind, replaces workspace files by links to their
/// (read-only) cache objects. With reflink or copy the workspace files are left as they are:
/// they already hold exactly the cached bytes.
fn link_workspace(
    repo: &Repo,
    linker: &Linker<'_>,
    stat: &mut StatCache,
    files: &[(RelPath, crate::hash::Digest, bool)],
) -> Result<(), Error> {
    if !linker.primary().shares_object() {
        return Ok(());
    }
    for (rel, digest, exec) in files {
        let abs = rel.to_path(&repo.root);
        let meta =
            std::fs::symlink_metadata(&abs).map_err(|e| crate::fs::IoError::new("cannot stat", &abs, e))?;
        if crate::link::is_linked_to_cache(&abs, &meta, &repo.cache, digest) {
            continue;
        }
        linker.place(digest, &abs, *exec)?;
        if let Ok(m) = std::fs::metadata(&abs) {
            stat.record(rel.as_str().to_string(), Stat::of(&m), *digest);
        }
    }
    Ok(())
}
