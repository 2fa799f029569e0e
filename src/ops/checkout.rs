//! `mlv checkout`: make the workspace match the pointers, from the cache, without ever
//! destroying content that exists nowhere else (unless forced).

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;
use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::link::Linker;
use crate::manifest::{Entry, Node};
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};
use crate::workspace::{data_meta, workspace_entries};

/// Options of `checkout`.
#[derive(Debug, Default, Clone)]
pub struct CheckoutOptions {
    /// Overwrite or delete workspace content even if it is not in the cache.
    pub force: bool,
}

/// What happened to one target.
#[derive(Debug, Serialize)]
pub struct CheckedOut {
    /// The data path (or the part of a tracked directory), as displayed.
    pub path: String,
    /// Files written from the cache.
    pub restored: u64,
    /// Files and links removed because the pointer does not list them.
    pub removed: u64,
    /// Files already right.
    pub unchanged: u64,
    /// Why this target failed, if it did.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "error_text")]
    pub error: Option<Error>,
}

fn error_text<S: serde::Serializer>(e: &Option<Error>, s: S) -> Result<S::Ok, S::Error> {
    match e {
        Some(e) => s.collect_str(e),
        None => s.serialize_none(),
    }
}

/// What `checkout` did.
#[derive(Debug, Serialize)]
pub struct CheckoutReport {
    /// One entry per target.
    pub targets: Vec<CheckedOut>,
}

impl CheckoutReport {
    /// Number of failed targets.
    pub fn failed(&self) -> usize {
        self.targets.iter().filter(|t| t.error.is_some()).count()
    }
}

/// A planned change to one workspace path.
enum Step {
    Place(String, Digest, bool),
    Link(String, String),
    MakeDir(String),
    Remove(String),
}

/// Restores the selected pointers (all when `paths` is empty). Targets whose objects are not in
/// the cache, or whose workspace holds unsaved content, fail; the others are still restored.
pub fn checkout(
    repo: &Repo,
    paths: &[RelPath],
    opts: &CheckoutOptions,
    progress: &dyn Progress,
) -> Result<CheckoutReport, Error> {
    super::refuse_links_as_root(repo)?;
    let targets = crate::targets::resolve_targets(repo, paths)?;
    let mut stat = StatCache::load(&repo.state_dir());
    let linker = Linker::new(&repo.cache, &repo.config.cache.link, repo.tmp_dir())?;
    let index = repo
        .git
        .index()
        .map_err(crate::repo::git_err("reading the index"))?;
    let mut out = Vec::new();
    for t in &targets {
        let shown = match &t.sub {
            Some(s) => repo.display_in(&t.pointer.data, s),
            None => repo.display(&t.pointer.data),
        };
        let res = checkout_one(repo, t, opts, &index, &mut stat, &linker, progress);
        out.push(match res {
            Ok((restored, removed, unchanged)) => CheckedOut {
                path: shown,
                restored,
                removed,
                unchanged,
                error: None,
            },
            // one target: its error is the whole story
            Err(e) if targets.len() == 1 => return Err(e),
            Err(e) => CheckedOut {
                path: shown,
                restored: 0,
                removed: 0,
                unchanged: 0,
                error: Some(e),
            },
        });
    }
    stat.save()?;
    Ok(CheckoutReport { targets: out })
}

fn checkout_one(
    repo: &Repo,
    t: &crate::targets::Target,
    opts: &CheckoutOptions,
    index: &git2::Index,
    stat: &mut StatCache,
    linker: &Linker<'_>,
    progress: &dyn Progress,
) -> Result<(u64, u64, u64), Error> {
    let p = &t.pointer;
    let abs = p.data.to_path(&repo.root);
    refuse_links_in_path(repo, &p.data, p.meta.kind)?;
    let (expected, base) = match p.meta.kind {
        Kind::Dir => {
            let m = crate::targets::load_manifest(repo, p)?;
            refuse_wrong_total(repo, p, &m)?;
            (m.entries, p.data.clone())
        }
        Kind::File => (
            vec![Entry::file(
                String::new(),
                p.meta.digest,
                p.meta.size,
                p.meta.exec,
            )],
            p.data.clone(),
        ),
    };
    let actual = current_entries(repo, &base, stat, progress)?;
    let keep = |path: &str| match &t.sub {
        None => true,
        Some(s) => path == s || (path.starts_with(s.as_str()) && path.as_bytes().get(s.len()) == Some(&b'/')),
    };
    let expected: Vec<Entry> = expected.into_iter().filter(|e| keep(&e.path)).collect();
    let actual: Vec<Entry> = actual.into_iter().filter(|e| keep(&e.path)).collect();
    let (steps, unchanged) = plan(&expected, &actual);
    // a pointer (from a pull request, say) over a file git tracks: never write it, `--force`
    // included (one that already matches has nothing to write)
    if !steps.is_empty() && crate::gitutil::tracked_in(index, &p.data) {
        return Err(Refusal::ClaimsGitFile {
            pointer: repo.display(&p.file),
            data: repo.display(&p.data),
        }
        .into());
    }
    refuse_escaping_links(repo, &base, &steps)?;
    if !opts.force {
        refuse_data_loss(repo, &base, &actual, &steps)?;
    }
    refuse_wrong_sizes(repo, &base, &expected, &actual)?;
    for d in steps.iter().filter_map(|s| {
        if let Step::Place(_, d, _) = s {
            Some(d)
        } else {
            None
        }
    }) {
        if !repo.cache.contains(d) {
            return Err(Refusal::NotInCache {
                path: repo.display(&p.data),
                digest: *d,
            }
            .into());
        }
    }
    apply(repo, &base, &steps, stat, linker, progress)?;
    if p.meta.kind == Kind::Dir {
        std::fs::create_dir_all(&abs).map_err(|e| IoError::new("cannot create directory", &abs, e))?;
    }
    let restored = steps.iter().filter(|s| !matches!(s, Step::Remove(_))).count() as u64;
    let removed = steps.len() as u64 - restored;
    Ok((restored, removed, unchanged))
}

/// Refuses a directory pointer whose size or file count is not its manifest's.
fn refuse_wrong_total(
    repo: &Repo,
    p: &crate::pointer::Pointer,
    m: &crate::manifest::Manifest,
) -> Result<(), Error> {
    if p.meta.size == m.size() && p.meta.files.is_none_or(|f| f == m.file_count()) {
        return Ok(());
    }
    Err(Refusal::WrongSize {
        path: repo.display(&p.data),
        what: "the pointer",
        recorded: p.meta.size,
        actual: m.size(),
        digest: p.meta.digest,
    }
    .into())
}

/// Refuses when a size recorded for a file (by a file pointer, or a manifest entry) is not its
/// content's: that of the workspace file when it already holds the content, else that of the
/// (intact) cache object. A size believed would be wrong wherever it is used (a remote check, status).
fn refuse_wrong_sizes(
    repo: &Repo,
    base: &RelPath,
    expected: &[Entry],
    actual: &[Entry],
) -> Result<(), Error> {
    let have: HashMap<&str, &Entry> = actual.iter().map(|e| (e.path.as_str(), e)).collect();
    for e in expected {
        let Node::File {
            digest,
            size: recorded,
            ..
        } = e.node
        else {
            continue;
        };
        let size = match have.get(e.path.as_str()) {
            Some(a) if a.same_content(e) => Some(a.size()),
            // another length may as well be a damaged object: re-hashed to tell (a corrupt
            // one fails when it is copied out, as any corrupt object does)
            _ => match repo.cache.object_len(&digest) {
                Ok(len) if len != recorded => repo.cache.verify(&digest).ok(),
                _ => None,
            },
        };
        if let Some(size) = size.filter(|s| *s != recorded) {
            return Err(Refusal::WrongSize {
                path: repo.display(&entry_rel(repo, base, &e.path)?),
                what: if e.path.is_empty() {
                    "the pointer"
                } else {
                    "the manifest"
                },
                recorded,
                actual: size,
                digest,
            }
            .into());
        }
    }
    Ok(())
}

/// The workspace entries of a target (a file target is one entry with an empty path).
fn current_entries(
    repo: &Repo,
    base: &RelPath,
    stat: &mut StatCache,
    progress: &dyn Progress,
) -> Result<Vec<Entry>, Error> {
    let abs = base.to_path(&repo.root);
    let Ok(meta) = data_meta(&abs, repo.cache.root()) else {
        return Ok(Vec::new());
    };
    if meta.is_dir() {
        // for a file pointer, a directory's entries are all in the way (none has an empty path)
        return Ok(workspace_entries(repo, base, stat, progress)?);
    }
    let (digest, size, fresh) = crate::workspace::file_digest(
        &abs,
        base.as_str(),
        Stat::of(&meta),
        stat,
        crate::workspace::HashMode::HashOnly,
        progress,
    )?;
    crate::workspace::record_fresh(stat, fresh.into_iter().collect());
    // for a directory pointer, a file at its path is in the way: no manifest entry has the
    // empty path
    Ok(vec![Entry::file(
        String::new(),
        digest,
        size,
        crate::fs::is_executable(&meta),
    )])
}

/// Steps that turn `actual` into `expected`, and the count already right.
fn plan(expected: &[Entry], actual: &[Entry]) -> (Vec<Step>, u64) {
    let have: HashMap<&str, &Entry> = actual.iter().map(|e| (e.path.as_str(), e)).collect();
    let want: HashMap<&str, &Entry> = expected.iter().map(|e| (e.path.as_str(), e)).collect();
    let mut steps: Vec<Step> = actual
        .iter()
        .filter(|a| {
            want.get(a.path.as_str())
                .is_none_or(|e| !e.node.same_kind(&a.node))
        })
        .map(|a| Step::Remove(a.path.clone()))
        .collect();
    let mut unchanged = 0;
    for e in expected {
        if have.get(e.path.as_str()).is_some_and(|a| a.same_content(e)) {
            unchanged += 1;
            continue;
        }
        steps.push(match &e.node {
            Node::File { digest, exec, .. } => Step::Place(e.path.clone(), *digest, *exec),
            Node::Dir => Step::MakeDir(e.path.clone()),
            Node::Symlink { target } => Step::Link(e.path.clone(), target.clone()),
        });
    }
    (steps, unchanged)
}

/// Refuses when a parent of `data` is a symbolic link, or `data` itself is one and tracks a
/// directory: writing there would write wherever the link leads, possibly outside the
/// repository. (A file pointer's data may be a link: placing the file replaces the link.)
fn refuse_links_in_path(repo: &Repo, data: &RelPath, kind: Kind) -> Result<(), Error> {
    let is_link =
        std::fs::symlink_metadata(data.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink());
    let link = super::link_above(repo, data).or_else(|| (kind == Kind::Dir && is_link).then(|| data.clone()));
    match link {
        None => Ok(()),
        Some(l) => Err(Refusal::LinkInPath {
            path: repo.display(data),
            link: repo.display(&l),
        }
        .into()),
    }
}

/// Refuses symbolic links in a manifest whose target leads outside the work tree, or into
/// `.git` or `.mlv`, and any step whose path is not a valid work-tree path (too long inside
/// its base): all before anything is written.
fn refuse_escaping_links(repo: &Repo, base: &RelPath, steps: &[Step]) -> Result<(), Error> {
    for s in steps {
        let (Step::Place(p, ..) | Step::Link(p, _) | Step::MakeDir(p) | Step::Remove(p)) = s;
        entry_rel(repo, base, p)?;
        if let Step::Link(p, target) = s {
            let rel = entry_rel(repo, base, p)?;
            if !crate::relpath::link_stays_inside(rel.as_str(), target) {
                return Err(Refusal::LinkEscapes {
                    path: repo.display(&rel),
                    target: target.clone(),
                }
                .into());
            }
        }
    }
    Ok(())
}

/// Refuses when a file about to be overwritten or removed holds content not in the cache.
fn refuse_data_loss(repo: &Repo, base: &RelPath, actual: &[Entry], steps: &[Step]) -> Result<(), Error> {
    let touched: std::collections::HashSet<&str> = steps
        .iter()
        .map(|s| match s {
            Step::Place(p, ..) | Step::Link(p, _) | Step::MakeDir(p) | Step::Remove(p) => p.as_str(),
        })
        .collect();
    let at_risk: Vec<String> = actual
        .iter()
        .filter(|a| touched.contains(a.path.as_str()))
        .filter(|a| a.digest().is_some_and(|d| !repo.cache.contains(&d)))
        .map(|a| match a.path.as_str() {
            "" => repo.display(base),
            p => repo.display_in(base, p),
        })
        .collect();
    if at_risk.is_empty() {
        return Ok(());
    }
    Err(Refusal::WouldLoseData {
        count: at_risk.len(),
        examples: at_risk.into_iter().take(5).collect(),
    }
    .into())
}

fn entry_rel(repo: &Repo, base: &RelPath, path: &str) -> Result<RelPath, Error> {
    if path.is_empty() {
        Ok(base.clone())
    } else {
        super::entry_path(repo, base, path)
    }
}

fn apply(
    repo: &Repo,
    base: &RelPath,
    steps: &[Step],
    stat: &mut StatCache,
    linker: &Linker<'_>,
    progress: &dyn Progress,
) -> Result<(), Error> {
    for s in steps {
        if let Step::Remove(p) = s {
            let rel = entry_rel(repo, base, p)?;
            let abs = rel.to_path(&repo.root);
            remove_any(&abs)?;
            stat.forget_under(rel.as_str());
            prune_empty_parents(&abs, &base.to_path(&repo.root));
        }
    }
    crate::crash_point!("checkout.after_remove");
    let places: Vec<(RelPath, &Digest, bool)> = steps
        .iter()
        .filter_map(|s| {
            if let Step::Place(p, d, x) = s {
                Some(entry_rel(repo, base, p).map(|rel| (rel, d, *x)))
            } else {
                None
            }
        })
        .collect::<Result<_, Error>>()?;
    let bytes = places.len() as u64;
    progress.start("checking out", bytes, 0);
    let root = repo.root.as_path();
    let placed: Vec<Result<(String, Digest), Error>> = places
        .par_iter()
        .map(|(rel, d, exec)| {
            let abs = rel.to_path(root);
            clear_dir_in_way(&abs)?;
            linker.place(d, &abs, *exec)?;
            crate::crash_point!("checkout.after_place");
            progress.advance(1, 0);
            Ok((rel.as_str().to_string(), **d))
        })
        .collect();
    progress.finish();
    for r in placed {
        let (rel, d) = r?;
        if let Ok(m) = std::fs::metadata(repo.root.join(&rel)) {
            stat.record(rel, Stat::of(&m), d);
        }
    }
    for s in steps {
        match s {
            Step::MakeDir(p) => {
                let abs = entry_rel(repo, base, p)?.to_path(&repo.root);
                clear_file_in_way(&abs)?;
                std::fs::create_dir_all(&abs)
                    .map_err(|e| IoError::new("cannot create directory", &abs, e))?;
            }
            Step::Link(p, target) => {
                let abs = entry_rel(repo, base, p)?.to_path(&repo.root);
                if let Some(parent) = abs.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| IoError::new("cannot create directory", parent, e))?;
                }
                remove_any(&abs)?;
                std::os::unix::fs::symlink(target, &abs).at("cannot create link", &abs)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Removes a file, link or (already emptied) directory tree; absent is fine.
fn remove_any(abs: &Path) -> Result<(), IoError> {
    match std::fs::symlink_metadata(abs) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(abs).at("cannot remove", abs),
        Ok(_) => crate::fs::remove_file_if_exists(abs),
    }
}

fn clear_dir_in_way(abs: &Path) -> Result<(), IoError> {
    match std::fs::symlink_metadata(abs) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(abs).at("cannot remove", abs),
        _ => Ok(()),
    }
}

fn clear_file_in_way(abs: &Path) -> Result<(), IoError> {
    match std::fs::symlink_metadata(abs) {
        Ok(m) if !m.is_dir() => crate::fs::remove_file_if_exists(abs),
        _ => Ok(()),
    }
}

/// Removes directories left empty by deletions, up to (not including) `stop`.
fn prune_empty_parents(abs: &Path, stop: &Path) {
    let mut dir = abs.parent();
    while let Some(d) = dir {
        if d == stop || !d.starts_with(stop) || std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}
