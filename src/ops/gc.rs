//! `mlv gc`: remove cache objects that nothing in scope refers to.
//!
//! Safe by default: objects referred to by the workspace's pointers, and by the pointers
//! committed at the tip of every local branch and tag (and HEAD), are kept; so is every object
//! younger than the grace period, which may belong to an `add` still running in another
//! process. Stale temporary files are removed too.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::error::Error;
use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::history::pointers_in_tree;
use crate::pointer::{Kind, Pointer};
use crate::repo::{git_err, Repo};

/// Which pointers keep their objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only the workspace's pointers.
    Workspace,
    /// The workspace, HEAD, and the tips of all local branches and tags.
    Refs,
    /// The workspace and every commit reachable from any ref.
    AllCommits,
}

/// Options of `gc`.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// What to keep.
    pub scope: Scope,
    /// Objects (and temp files) younger than this are kept.
    pub grace: Duration,
    /// Only report.
    pub dry_run: bool,
}

/// What `gc` did (or would do).
#[derive(Debug, Serialize, Default)]
pub struct GcReport {
    /// Objects removed (or to remove).
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Objects kept because something refers to them.
    pub kept: u64,
    /// Unreferenced objects kept because they are recent.
    pub kept_recent: u64,
    /// Stale temporary files removed.
    pub temp_files: u64,
    /// Whether nothing was deleted.
    pub dry_run: bool,
}

/// Collects garbage in the cache.
pub fn gc(repo: &Repo, opts: &GcOptions) -> Result<GcReport, Error> {
    let keep = referenced(repo, opts.scope)?;
    let cutoff = SystemTime::now()
        .checked_sub(opts.grace)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..GcReport::default()
    };
    let root = repo.cache.root();
    let Ok(fanouts) = std::fs::read_dir(root) else {
        return Ok(report);
    };
    for fan in fanouts {
        let fan = fan.at("cannot read directory", root)?;
        let name = fan.file_name();
        if name.len() != 2 || !fan.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = fan.path();
        for obj in std::fs::read_dir(&dir).at("cannot read directory", &dir)? {
            let obj = obj.at("cannot read directory", &dir)?;
            let Some(digest) = obj.file_name().to_str().and_then(|n| n.parse::<Digest>().ok()) else {
                continue;
            };
            if keep.contains(&digest) {
                report.kept += 1;
                continue;
            }
            let meta = obj.metadata().at("cannot stat", &obj.path())?;
            if meta.modified().is_ok_and(|m| m > cutoff) {
                report.kept_recent += 1;
                continue;
            }
            report.removed += 1;
            report.removed_bytes += meta.len();
            if !opts.dry_run {
                crate::fs::remove_file_if_exists(&obj.path())?;
                crate::crash_point!("gc.after_remove");
            }
        }
        if !opts.dry_run {
            let _ = std::fs::remove_dir(&dir); // only if now empty
        }
    }
    crate::crash_point!("gc.before_temp_clean");
    report.temp_files = clean_temp(repo, cutoff, opts.dry_run)?;
    Ok(report)
}

/// Every object the pointers in scope refer to (manifests and, for cached manifests, files).
fn referenced(repo: &Repo, scope: Scope) -> Result<HashSet<Digest>, Error> {
    let mut pointers = repo.pointers()?;
    if scope != Scope::Workspace {
        for tree_id in trees(repo, scope)? {
            let tree = repo.git.find_tree(tree_id).map_err(git_err("reading a tree"))?;
            pointers.extend(pointers_in_tree(&repo.git, &tree)?);
        }
    }
    let mut keep = HashSet::new();
    let mut seen_manifests = HashSet::new();
    for p in &pointers {
        keep.insert(p.meta.digest);
        if p.meta.kind == Kind::Dir && seen_manifests.insert(p.meta.digest) {
            keep_manifest_files(repo, p, &mut keep)?;
        }
    }
    Ok(keep)
}

fn keep_manifest_files(repo: &Repo, p: &Pointer, keep: &mut HashSet<Digest>) -> Result<(), Error> {
    match super::load_manifest(repo, p) {
        Ok(m) => keep.extend(m.entries.iter().filter_map(|e| e.digest)),
        // not cached: none of its files can be found through it
        Err(Error::Refused(crate::error::Refusal::NotInCache { .. })) => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The trees whose pointers are in scope.
fn trees(repo: &Repo, scope: Scope) -> Result<Vec<git2::Oid>, Error> {
    let git = &repo.git;
    let mut tips = Vec::new();
    if let Ok(head) = git.head() {
        tips.extend(head.peel_to_commit().ok().map(|c| c.id()));
    }
    for r in git.references().map_err(git_err("listing references"))?.flatten() {
        let is_ours = r.is_branch() || r.is_tag();
        if let (true, Ok(c)) = (is_ours || scope == Scope::AllCommits, r.peel_to_commit()) {
            tips.push(c.id());
        }
    }
    let commits: Vec<git2::Oid> = if scope == Scope::AllCommits {
        let mut walk = git.revwalk().map_err(git_err("walking history"))?;
        for t in &tips {
            walk.push(*t).map_err(git_err("walking history"))?;
        }
        walk.filter_map(Result::ok).collect()
    } else {
        tips
    };
    let mut trees: Vec<git2::Oid> = commits
        .iter()
        .filter_map(|c| git.find_commit(*c).ok().map(|c| c.tree_id()))
        .collect();
    trees.sort();
    trees.dedup();
    Ok(trees)
}

/// Removes temporary files older than the cutoff (left by interrupted commands).
fn clean_temp(repo: &Repo, cutoff: SystemTime, dry_run: bool) -> Result<u64, IoError> {
    let mut n = 0;
    let mut dirs = vec![repo.tmp_dir()];
    if repo.config.cache.dir.is_some() {
        dirs.push(repo.cache.root().join("tmp"));
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|m| m <= cutoff);
            if old && e.file_type().is_ok_and(|t| t.is_file()) {
                n += 1;
                if !dry_run {
                    crate::fs::remove_file_if_exists(&e.path())?;
                }
            }
        }
    }
    Ok(n)
}
