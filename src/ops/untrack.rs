//! `mlv untrack` (stop tracking; the data stays) and `mlv unprotect` (turn links to the cache
//! into editable copies).

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::gitutil::{ignore_entry, remove_ignore, stage};
use crate::link::{is_linked_to_cache, Linker};
use crate::manifest::Node;
use crate::pointer::Kind;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};

/// What `untrack` did.
#[derive(Debug, Serialize)]
pub struct UntrackReport {
    /// Data paths no longer tracked, as displayed.
    pub untracked: Vec<String>,
    /// Pointer files removed, as displayed.
    pub removed_pointers: Vec<String>,
    /// Whether the changes were staged with git.
    pub staged: bool,
}

/// Stops tracking each path (the data path itself or its pointer file).
pub fn untrack(repo: &Repo, paths: &[RelPath]) -> Result<UntrackReport, Error> {
    let pointers = repo.pointers()?;
    let mut chosen = Vec::new();
    for path in paths {
        let p = pointers
            .iter()
            .find(|p| &p.data == path)
            .ok_or_else(|| Refusal::NotTracked {
                path: repo.display(path),
            })?;
        chosen.push(p.clone());
    }
    let mut stat = StatCache::load(&repo.state_dir());
    let mut report = UntrackReport {
        untracked: Vec::new(),
        removed_pointers: Vec::new(),
        staged: repo.config.core.autostage,
    };
    let mut git_paths = Vec::new();
    // The workspace and the stat cache first: a failure to save the stat cache (a full disk)
    // leaves every pointer in place.
    for p in &chosen {
        unprotect_pointer(repo, p, None, &mut stat)?;
        stat.forget_under(p.data.as_str());
    }
    stat.save()?;
    for p in chosen {
        crate::fs::remove_file_if_exists(&p.file.to_path(&repo.root))?;
        let ignore = ignore_entry(&p.data);
        if let Some((ignore_file, line)) = &ignore {
            remove_ignore(&repo.root, ignore_file, line)?;
            // and the line an older mlv wrote, if it escaped the name differently
            if let Some(old) = crate::gitutil::legacy_ignore_line(&p.data) {
                remove_ignore(&repo.root, ignore_file, &old)?;
            }
        }
        report.untracked.push(repo.display(&p.data));
        report.removed_pointers.push(repo.display(&p.file));
        git_paths.push(p.file.clone());
        git_paths.extend(ignore.map(|(f, _)| f));
    }
    if report.staged {
        stage(&repo.git, &repo.root, &git_paths)?;
    }
    Ok(report)
}

/// What `unprotect` did.
#[derive(Debug, Serialize)]
pub struct UnprotectReport {
    /// Files turned from links into editable copies.
    pub copied: u64,
}

/// Replaces workspace files that are links to cache objects by editable copies.
pub fn unprotect(repo: &Repo, paths: &[RelPath]) -> Result<UnprotectReport, Error> {
    let targets = crate::targets::resolve_targets(repo, paths)?;
    let mut stat = StatCache::load(&repo.state_dir());
    let mut copied = 0;
    for t in &targets {
        copied += unprotect_pointer(repo, &t.pointer, t.sub.as_deref(), &mut stat)?;
    }
    stat.save()?;
    Ok(UnprotectReport { copied })
}

fn unprotect_pointer(
    repo: &Repo,
    pointer: &crate::pointer::Pointer,
    sub: Option<&str>,
    stat: &mut StatCache,
) -> Result<u64, Error> {
    let files: Vec<(RelPath, crate::hash::Digest, bool)> = match pointer.meta.kind {
        Kind::File => vec![(pointer.data.clone(), pointer.meta.digest, pointer.meta.exec)],
        Kind::Dir => match crate::targets::load_manifest(repo, pointer) {
            Ok(m) => m
                .entries
                .iter()
                .filter(|e| sub.is_none_or(|s| e.path == s || e.path.starts_with(&format!("{s}/"))))
                .filter_map(|e| match e.node {
                    Node::File { digest, exec, .. } => Some((e, digest, exec)),
                    Node::Dir | Node::Symlink { .. } => None,
                })
                .map(|(e, digest, exec)| {
                    let rel = super::entry_path(repo, &pointer.data, &e.path)?;
                    Ok((rel, digest, exec))
                })
                .collect::<Result<_, Error>>()?,
            Err(_) => return Ok(0), // nothing can be linked to objects that are not cached
        },
    };
    let copier = Linker::new(&repo.cache, &[crate::config::LinkKind::Copy], repo.tmp_dir())?;
    let mut n = 0;
    for (rel, digest, exec) in files {
        let abs = rel.to_path(&repo.root);
        if super::link_above(repo, &rel).is_some() {
            continue; // what lies past a symbolic link is not ours to rewrite
        }
        let Ok(meta) = std::fs::symlink_metadata(&abs) else {
            continue;
        };
        if is_linked_to_cache(&abs, &meta, &repo.cache, &digest) {
            copier.place(&digest, &abs, exec)?;
            if let Ok(m) = std::fs::metadata(&abs) {
                stat.record(rel.as_str().to_string(), Stat::of(&m), digest);
            }
            n += 1;
        }
    }
    Ok(n)
}
