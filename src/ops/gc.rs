//! `mlv gc`: remove cache (and, with a remote, remote) objects that nothing in scope refers to.
//!
//! Safe by default: objects referred to by the workspace's pointers, and by the pointers
//! committed at the tip of every local branch and tag (and HEAD), are kept; so is every object
//! younger than the grace period, which may belong to an `add` or `push` still running in
//! another process. Stale temporary files are removed too.
//!
//! On a remote, a directory manifest promises its files (push skips the files of a directory
//! whose manifest is there), so the files of every kept manifest are kept — manifests missing
//! from the cache are read from the remote — and unreferenced manifests are deleted before any
//! file: an interrupted gc never leaves a manifest whose files are gone.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::Error;
use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::history::pointers_in_tree;
use crate::manifest::Manifest;
use crate::pointer::{Kind, Pointer};
use crate::remote::{Remote, RemoteError, RemoteObject};
use crate::repo::{git_err, Repo};

/// Which pointers keep their objects, besides the workspace's (always kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope {
    /// The commit HEAD points to.
    pub head: bool,
    /// The tip of every local branch.
    pub branches: bool,
    /// Every tag.
    pub tags: bool,
    /// Every commit reachable from any ref (and HEAD).
    pub all_commits: bool,
}

impl Scope {
    /// Only the workspace's pointers.
    pub const WORKSPACE: Scope = Scope {
        head: false,
        branches: false,
        tags: false,
        all_commits: false,
    };
    /// The default: the workspace, HEAD, and the tips of all local branches and tags.
    pub const REFS: Scope = Scope {
        head: true,
        branches: true,
        tags: true,
        all_commits: false,
    };

    fn needs_git(self) -> bool {
        self != Scope::WORKSPACE
    }
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

/// One object removed (or to remove).
#[derive(Debug, Clone, Serialize)]
pub struct GcObject {
    /// Its name.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What `gc` did (or would do) in one store.
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
    /// Stale temporary files removed (cache only).
    pub temp_files: u64,
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// The grace period, in seconds.
    pub grace_seconds: u64,
    /// The objects removed (or to remove), by digest.
    pub objects: Vec<GcObject>,
}

impl GcReport {
    fn new(opts: &GcOptions) -> GcReport {
        GcReport {
            dry_run: opts.dry_run,
            grace_seconds: opts.grace.as_secs(),
            ..GcReport::default()
        }
    }

    fn remove(&mut self, digest: Digest, size: u64) {
        self.removed += 1;
        self.removed_bytes += size;
        self.objects.push(GcObject { digest, size });
    }
}

/// What `gc --remote` did (or would do) on the remote.
#[derive(Debug, Serialize)]
pub struct RemoteGcReport {
    /// The remote, redacted.
    pub remote: String,
    /// What was (or would be) removed and kept.
    #[serde(flatten)]
    pub report: GcReport,
    /// Kept directories whose manifest could be read neither from the cache nor from the
    /// remote: files only they refer to cannot be told apart from garbage.
    pub unreadable_manifests: u64,
}

/// The objects in scope.
pub struct Referenced {
    keep: HashSet<Digest>,
    /// Kept manifests the cache cannot provide.
    unread: Vec<Digest>,
}

/// Works out what the pointers in scope refer to (once, for the cache and a remote).
pub fn referenced(repo: &Repo, scope: Scope) -> Result<Referenced, Error> {
    let mut pointers = repo.pointers()?;
    if scope.needs_git() {
        for tree_id in trees(repo, scope)? {
            let tree = repo.git.find_tree(tree_id).map_err(git_err("reading a tree"))?;
            pointers.extend(pointers_in_tree(&repo.git, &tree)?);
        }
    }
    let mut r = Referenced {
        keep: HashSet::new(),
        unread: Vec::new(),
    };
    let mut seen_manifests = HashSet::new();
    for p in &pointers {
        r.keep.insert(p.meta.digest);
        if p.meta.kind == Kind::Dir && seen_manifests.insert(p.meta.digest) {
            keep_manifest_files(repo, p, &mut r)?;
        }
    }
    Ok(r)
}

/// Collects garbage in the cache.
pub fn gc(repo: &Repo, keep: &Referenced, opts: &GcOptions) -> Result<GcReport, Error> {
    let keep = &keep.keep;
    let cutoff = cutoff(opts.grace);
    let mut report = GcReport::new(opts);
    let loose = gc_loose(repo, keep, cutoff, opts.dry_run, &mut report)?;
    gc_packs(repo, keep, &loose, cutoff, opts.dry_run, &mut report)?;
    report.objects.sort_by_key(|o| o.digest);
    crate::crash_point!("gc.before_temp_clean");
    report.temp_files = clean_temp(repo, cutoff, opts.dry_run)?;
    Ok(report)
}

/// Removes unreferenced loose objects older than the cutoff; returns the loose objects left.
fn gc_loose(
    repo: &Repo,
    keep: &HashSet<Digest>,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<HashSet<Digest>, Error> {
    let mut left = HashSet::new();
    let root = repo.cache.root();
    let Ok(fanouts) = std::fs::read_dir(root) else {
        return Ok(left);
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
                left.insert(digest);
                continue;
            }
            let meta = obj.metadata().at("cannot stat", &obj.path())?;
            if meta.modified().is_ok_and(|m| m > cutoff) {
                report.kept_recent += 1;
                left.insert(digest);
                continue;
            }
            report.remove(digest, meta.len());
            if !dry_run {
                crate::fs::remove_file_if_exists(&obj.path())?;
                crate::crash_point!("gc.after_remove");
            }
        }
        if !dry_run {
            let _ = std::fs::remove_dir(&dir); // only if now empty
        }
    }
    Ok(left)
}

/// Packs older than the cutoff lose their unreferenced objects, and copies of objects kept
/// elsewhere (loose, or in a pack seen before) once that other copy is checked intact: a pack
/// with nothing left is deleted, one with some is rewritten with only those (each verified as
/// it is copied), published before the old one goes. A pack within the grace period is kept
/// whole.
fn gc_packs(
    repo: &Repo,
    keep: &HashSet<Digest>,
    loose: &HashSet<Digest>,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), Error> {
    let cache = &repo.cache;
    let mut stored: HashSet<Digest> = HashSet::new();
    for pack in cache.packs().packs() {
        let (mut needed, mut copies, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for (d, _, len) in pack.entries() {
            if !keep.contains(&d) {
                dead.push((d, len));
            } else if stored.contains(&d) || loose.contains(&d) {
                copies.push(d);
            } else {
                needed.push(d);
            }
        }
        let meta = std::fs::metadata(pack.path()).at("cannot stat", pack.path())?;
        let recent = meta.modified().is_ok_and(|m| m > cutoff);
        if (dead.is_empty() && copies.is_empty()) || recent {
            report.kept += needed.len() as u64;
            report.kept_recent += dead.len() as u64;
            stored.extend(needed);
            continue;
        }
        needed.extend(
            copies
                .into_iter()
                .filter(|d| !cache.intact_elsewhere(d, pack.path())),
        );
        report.kept += needed.len() as u64;
        for (d, len) in dead {
            report.remove(d, len);
        }
        if dry_run {
            stored.extend(needed);
            continue;
        }
        if !needed.is_empty() {
            let mut rewritten = cache.pack_writer()?;
            for d in &needed {
                rewritten.append(*d, &cache.read_packed(&pack, d)?)?;
            }
            cache.publish_pack(rewritten)?;
        }
        stored.extend(needed);
        cache.packs().remove(pack.path())?;
        crate::crash_point!("gc.after_remove");
    }
    Ok(())
}

fn cutoff(grace: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Collects garbage on a remote: lists it, keeps what is in scope (reading kept manifests the
/// cache lacks from the remote) and what is younger than the grace period by its last-modified
/// time, and deletes the rest, manifests first.
pub async fn gc_remote(
    remote: &Remote,
    keep: &Referenced,
    opts: &GcOptions,
) -> Result<RemoteGcReport, Error> {
    let mut keep_all = keep.keep.clone();
    let mut unreadable = 0;
    for d in &keep.unread {
        match remote.read_verified(d).await {
            Ok(Some(bytes)) => match Manifest::parse(d, &bytes) {
                Ok(m) => keep_all.extend(m.entries.iter().filter_map(|e| e.digest)),
                Err(_) => unreadable += 1,
            },
            Ok(None) | Err(RemoteError::Corrupt { .. }) => unreadable += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let cutoff = cutoff(opts.grace);
    let mut report = GcReport::new(opts);
    let mut listed: Vec<(Digest, RemoteObject)> = remote.list_objects().await?.into_iter().collect();
    listed.sort_by_key(|(d, _)| *d);
    let mut doomed = Vec::new();
    for (d, o) in listed {
        if keep_all.contains(&d) {
            report.kept += 1;
        } else if o.modified > cutoff {
            report.kept_recent += 1;
        } else {
            report.remove(d, o.size);
            doomed.push((d, o.size));
        }
    }
    if !opts.dry_run {
        delete_manifests_first(remote, doomed).await?;
    }
    Ok(RemoteGcReport {
        remote: remote.display_name().to_string(),
        report,
        unreadable_manifests: unreadable,
    })
}

/// The bytes every manifest starts with.
const MANIFEST_START: &[u8] = b"{\"version\":1,\"entries\":[";

/// Deletes objects, `jobs` at a time: first those that are directory manifests (told by their
/// first bytes), then the rest.
async fn delete_manifests_first(remote: &Remote, doomed: Vec<(Digest, u64)>) -> Result<(), Error> {
    let jobs = remote.jobs();
    let classified: Vec<(Digest, bool)> = stream::iter(doomed)
        .map(|(d, size)| async move {
            let start = remote.read_start(&d, size, MANIFEST_START.len() as u64).await?;
            Ok::<_, RemoteError>((d, start == MANIFEST_START))
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    for manifests in [true, false] {
        let batch = classified
            .iter()
            .filter(|(_, m)| *m == manifests)
            .map(|(d, _)| *d);
        stream::iter(batch)
            .map(|d| async move { remote.delete(&d).await })
            .buffer_unordered(jobs)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(())
}

fn keep_manifest_files(repo: &Repo, p: &Pointer, r: &mut Referenced) -> Result<(), Error> {
    match super::load_manifest(repo, p) {
        Ok(m) => r.keep.extend(m.entries.iter().filter_map(|e| e.digest)),
        // not cached: a remote may hold it (gc --remote reads it there)
        Err(Error::Refused(crate::error::Refusal::NotInCache { .. })) => r.unread.push(p.meta.digest),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// The trees whose pointers are in scope.
fn trees(repo: &Repo, scope: Scope) -> Result<Vec<git2::Oid>, Error> {
    let git = &repo.git;
    let mut tips = Vec::new();
    if let (true, Ok(head)) = (scope.head || scope.all_commits, git.head()) {
        tips.extend(head.peel_to_commit().ok().map(|c| c.id()));
    }
    for r in git.references().map_err(git_err("listing references"))?.flatten() {
        let wanted = (scope.branches && r.is_branch()) || (scope.tags && r.is_tag()) || scope.all_commits;
        if let (true, Ok(c)) = (wanted, r.peel_to_commit()) {
            tips.push(c.id());
        }
    }
    let commits: Vec<git2::Oid> = if scope.all_commits {
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
