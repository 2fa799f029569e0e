//! The verbs. Each takes the repository, options and a progress handle, and returns a
//! serializable report; none of them prints.

pub mod add;
pub mod checkout;
pub mod fsck;
pub mod gc;
pub mod init;
pub mod lineage;
pub mod remotes;
pub mod sources;
pub mod transfer;
pub mod untrack;

use crate::error::{Error, Refusal};
use crate::pointer::Pointer;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// A target resolved against the pointers: the pointer, and the part of its data selected
/// (`None` for all of it, else a path inside a tracked directory).
pub struct Target {
    /// The pointer.
    pub pointer: Pointer,
    /// The selected sub-path inside a tracked directory.
    pub sub: Option<String>,
}

/// Resolves command-line paths to pointers; no paths means every pointer.
pub fn resolve_targets(repo: &Repo, paths: &[RelPath]) -> Result<Vec<Target>, Error> {
    let pointers = repo.pointers()?;
    if paths.is_empty() {
        return Ok(pointers
            .into_iter()
            .map(|pointer| Target { pointer, sub: None })
            .collect());
    }
    let mut out: Vec<Target> = Vec::new();
    for path in paths {
        let mut found = false;
        for p in &pointers {
            if path.is_within(&p.data) {
                let sub = path.strip_prefix(&p.data).map(str::to_string);
                out.push(Target {
                    pointer: p.clone(),
                    sub,
                });
                found = true;
            } else if p.data.is_within(path) {
                // a directory holding several tracked paths selects them all
                out.push(Target {
                    pointer: p.clone(),
                    sub: None,
                });
                found = true;
            }
        }
        if !found {
            return Err(Refusal::NotTracked {
                path: repo.display(path),
            }
            .into());
        }
    }
    out.sort_by(|a, b| (&a.pointer.data, &a.sub).cmp(&(&b.pointer.data, &b.sub)));
    out.dedup_by(|a, b| a.pointer.data == b.pointer.data && a.sub == b.sub);
    Ok(out)
}

/// The work-tree path of `tail` inside `base` (a manifest entry, or a part of tracked data);
/// refused when the two do not make a valid work-tree path (too long, say).
pub(crate) fn entry_path(repo: &Repo, base: &RelPath, tail: &str) -> Result<RelPath, Error> {
    base.join(tail).map_err(|reason| {
        Refusal::BadPath {
            path: repo.display_in(base, tail).into(),
            reason: reason.to_string(),
        }
        .into()
    })
}

/// Refuses `hardlink`/`symlink` link kinds as root (see [`crate::link::refused_as_root`]),
/// before a verb that links workspace files writes anything.
pub(crate) fn refuse_links_as_root(repo: &Repo) -> Result<(), Error> {
    match crate::link::refused_as_root(&repo.config.cache) {
        None => Ok(()),
        Some(kind) => Err(Refusal::LinksAsRoot {
            kind: format!("{kind:?}").to_lowercase(),
        }
        .into()),
    }
}

/// Reads and verifies a directory manifest from the cache.
pub fn load_manifest(repo: &Repo, pointer: &Pointer) -> Result<crate::manifest::Manifest, Error> {
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

/// The outermost parent directory of `rel` that is a symbolic link, if any: writing at `rel`
/// would write wherever that link leads.
pub(crate) fn link_above(repo: &Repo, rel: &RelPath) -> Option<RelPath> {
    let mut found = None;
    let mut parent = rel.parent();
    while let Some(dir) = parent {
        if std::fs::symlink_metadata(dir.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
            found = Some(dir.clone());
        }
        parent = dir.parent();
    }
    found
}
