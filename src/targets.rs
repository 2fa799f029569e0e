//! What a verb's paths select: the pointers they name (a tracked path, a directory holding
//! tracked paths, or a path inside a tracked directory) and the manifests of tracked
//! directories, loaded from the cache.

use crate::error::{Error, Refusal};
use crate::manifest::Manifest;
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
