//! What a verb's paths select: the pointers they name (a tracked path, a directory holding
//! tracked paths, or a path inside a tracked directory) and the manifests of tracked
//! directories, loaded from the cache.

use std::collections::HashSet;

use crate::error::{Error, Refusal};
use crate::hash::Digest;
use crate::manifest::Manifest;
use crate::pointer::Pointer;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::revs::History;

/// A target resolved against the pointers: the pointer, and the part of its data selected
/// (`None` for all of it, else a path inside a tracked directory).
pub struct Target {
    /// The pointer.
    pub pointer: Pointer,
    /// The selected sub-path inside a tracked directory.
    pub sub: Option<String>,
    /// For a pointer committed in history (not in the workspace): a commit holding it,
    /// abbreviated (`1a2b3c4`).
    pub at: Option<String>,
}

impl Target {
    /// The data path as displayed, naming the commit of a pointer from history:
    /// `data.csv (at 1a2b3c4)`.
    pub fn shown(&self, repo: &Repo) -> String {
        self.with_commit(repo.display(&self.pointer.data))
    }

    /// A path inside the pointer's directory as displayed, naming the commit likewise.
    pub fn shown_in(&self, repo: &Repo, inside: &str) -> String {
        self.with_commit(repo.display_in(&self.pointer.data, inside))
    }

    fn with_commit(&self, shown: String) -> String {
        match &self.at {
            Some(c) => format!("{shown} (at {c})"),
            None => shown,
        }
    }
}

/// Resolves command-line paths to pointers; no paths means every pointer.
pub fn resolve_targets(repo: &Repo, paths: &[RelPath]) -> Result<Vec<Target>, Error> {
    let pointers = repo.pointers()?;
    let mut found = vec![false; paths.len()];
    let mut out = matching(&pointers, paths, &mut found, None);
    refuse_unmatched(repo, paths, &found)?;
    out.sort_by(|a, b| (&a.pointer.data, &a.sub).cmp(&(&b.pointer.data, &b.sub)));
    out.dedup_by(|a, b| a.pointer.data == b.pointer.data && a.sub == b.sub);
    Ok(out)
}

/// The targets `paths` select among `pointers` (every pointer when there are none), marking in
/// `found` the paths that select something.
fn matching(pointers: &[Pointer], paths: &[RelPath], found: &mut [bool], at: Option<&str>) -> Vec<Target> {
    let target = |pointer: &Pointer, sub: Option<String>| Target {
        pointer: pointer.clone(),
        sub,
        at: at.map(str::to_string),
    };
    if paths.is_empty() {
        return pointers.iter().map(|p| target(p, None)).collect();
    }
    let mut out: Vec<Target> = Vec::new();
    for (path, found) in paths.iter().zip(found) {
        for p in pointers {
            if path.is_within(&p.data) {
                let sub = path.strip_prefix(&p.data).map(str::to_string);
                out.push(target(p, sub));
                *found = true;
            } else if p.data.is_within(path) {
                // a directory holding several tracked paths selects them all
                out.push(target(p, None));
                *found = true;
            }
        }
    }
    out
}

/// Refuses the first path that selects nothing.
fn refuse_unmatched(repo: &Repo, paths: &[RelPath], found: &[bool]) -> Result<(), Error> {
    match paths.iter().zip(found).find(|(_, f)| !**f) {
        Some((path, _)) => Err(Refusal::NotTracked {
            path: repo.display(path),
        }
        .into()),
        None => Ok(()),
    }
}

/// What a transfer covers: targets, and the commits whose pointers are among them.
pub struct Selection {
    /// The workspace's targets (as [`resolve_targets`] gives them), then those of history.
    pub targets: Vec<Target>,
    /// Every commit in the history scope, full hex ids (empty without one).
    pub commits: Vec<String>,
}

/// The targets `paths` select in the workspace and, with a history scope, in every commit in
/// it. Without a history scope this is [`resolve_targets`]. With one, a path is refused only
/// when it selects nothing in the workspace nor in any commit, and a pointer from history is
/// a target only when no target before it (the workspace's first) has its digest and
/// sub-path: each distinct object set is planned, and each manifest read, once.
pub fn select(repo: &Repo, paths: &[RelPath], history: &History) -> Result<Selection, Error> {
    if history.is_empty() {
        return Ok(Selection {
            targets: resolve_targets(repo, paths)?,
            commits: Vec::new(),
        });
    }
    let committed = crate::revs::committed(repo, history)?;
    let pointers = repo.pointers()?;
    let mut found = vec![false; paths.len()];
    let mut targets = matching(&pointers, paths, &mut found, None);
    targets.sort_by(|a, b| (&a.pointer.data, &a.sub).cmp(&(&b.pointer.data, &b.sub)));
    targets.dedup_by(|a, b| a.pointer.data == b.pointer.data && a.sub == b.sub);
    let mut seen: HashSet<(Digest, Option<String>)> = targets
        .iter()
        .map(|t| (t.pointer.meta.digest, t.sub.clone()))
        .collect();
    for c in &committed.pointers {
        let short = c.short();
        let one = std::slice::from_ref(&c.pointer);
        for t in matching(one, paths, &mut found, Some(&short)) {
            if seen.insert((t.pointer.meta.digest, t.sub.clone())) {
                targets.push(t);
            }
        }
    }
    refuse_unmatched(repo, paths, &found)?;
    Ok(Selection {
        targets,
        commits: committed.commits.iter().map(|c| c.to_string()).collect(),
    })
}

/// Reads and verifies a directory manifest from the cache.
pub fn load_manifest(repo: &Repo, pointer: &Pointer) -> Result<Manifest, Error> {
    let parsed = repo
        .cache
        .read_manifest(&pointer.meta.digest)
        .map_err(|e| match e {
            crate::cache::CacheError::Missing { digest } => Error::Refused(Refusal::NotInCache {
                path: repo.display(&pointer.data),
                digest,
            }),
            other => other.into(),
        })?;
    parsed.map_err(|mut e| {
        e.data = Some(repo.display(&pointer.data));
        e.into()
    })
}
