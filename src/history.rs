//! History through git: commits, the version of a path at a commit (its pointer file, or the
//! file itself when git tracks it) or in the workspace, and the pointers in a tree. The verbs
//! built on it are `ops::log` and `ops::diff`.

use std::path::Path;

use crate::error::Error;
use crate::hash::Digest;
use crate::lineage::{git_err, Artifact, ArtifactKind, LineageError};
use crate::pointer::{pointer_file_for, Kind, Pointer, POINTER_SUFFIX};
use crate::relpath::RelPath;
use crate::repo::Repo;

/// The artifact a pointer describes.
pub fn artifact_of(pointer: &Pointer) -> Artifact {
    Artifact {
        path: pointer.data.as_str().to_string(),
        kind: match pointer.meta.kind {
            Kind::File => ArtifactKind::File,
            Kind::Dir => ArtifactKind::Dir,
        },
        digest: pointer.meta.digest,
        size: pointer.meta.size,
        files: pointer.meta.files,
    }
}

/// The artifact of a small file tracked by git: the blake3 of its bytes.
pub fn git_artifact(path: &RelPath, bytes: &[u8]) -> Artifact {
    Artifact {
        path: path.as_str().to_string(),
        kind: ArtifactKind::Git,
        digest: Digest::of_bytes(bytes),
        size: bytes.len() as u64,
        files: None,
    }
}

/// Resolves a git revision to a commit.
pub fn resolve_commit<'r>(git: &'r git2::Repository, rev: &str) -> Result<git2::Commit<'r>, LineageError> {
    git.revparse_single(rev)
        .and_then(|o| o.peel_to_commit())
        .map_err(|_| LineageError::UnknownRevision { rev: rev.to_string() })
}

/// The checked-out commit, or `None` before the first commit.
pub fn head_commit(git: &git2::Repository) -> Option<git2::Commit<'_>> {
    git.head().ok().and_then(|h| h.peel_to_commit().ok())
}

fn blob_at<'r>(git: &'r git2::Repository, tree: &git2::Tree<'_>, path: &str) -> Option<git2::Blob<'r>> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    if entry.kind() != Some(git2::ObjectType::Blob) {
        return None;
    }
    git.find_blob(entry.id()).ok()
}

pub(crate) fn oid_at(tree: &git2::Tree<'_>, path: &str) -> Option<git2::Oid> {
    let entry = tree.get_path(Path::new(path)).ok()?;
    (entry.kind() == Some(git2::ObjectType::Blob)).then(|| entry.id())
}

/// The version of `path` in a git tree: its pointer file if it has one, else the file itself.
pub fn version_in_tree(
    git: &git2::Repository,
    tree: &git2::Tree<'_>,
    path: &RelPath,
) -> Result<Option<Artifact>, Error> {
    let file = pointer_file_for(path);
    if let Some(blob) = blob_at(git, tree, file.as_str()) {
        let shown = Path::new(file.as_str());
        let p = Pointer::parse(&file, shown, blob.content())?;
        return Ok(Some(artifact_of(&p)));
    }
    Ok(blob_at(git, tree, path.as_str()).map(|b| git_artifact(path, b.content())))
}

/// The version of `path` in the workspace: its pointer if it has one, else the file's content
/// if git tracks it.
pub fn version_in_workspace(repo: &Repo, path: &RelPath) -> Result<Option<Artifact>, Error> {
    let file = pointer_file_for(path);
    if file.to_path(&repo.root).is_file() {
        return Ok(Some(artifact_of(&Pointer::load(&repo.root, &file)?)));
    }
    let abs = path.to_path(&repo.root);
    if abs.is_file() && crate::gitutil::tracked_by_git(&repo.git, path)? {
        let bytes = std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))?;
        return Ok(Some(git_artifact(path, &bytes)));
    }
    Ok(None)
}

/// Every pointer file in a git tree.
pub fn pointers_in_tree(git: &git2::Repository, tree: &git2::Tree<'_>) -> Result<Vec<Pointer>, Error> {
    let mut found = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            if let Ok(name) = entry.name() {
                if name.ends_with(POINTER_SUFFIX) && name.len() > POINTER_SUFFIX.len() {
                    found.push((format!("{dir}{name}"), entry.id()));
                }
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(git_err("reading a tree"))
    .map_err(Error::from)?;
    let mut out = Vec::new();
    for (path, oid) in found {
        let Ok(file) = RelPath::new(&path) else { continue };
        let blob = git.find_blob(oid).map_err(git_err("reading a blob"))?;
        out.push(Pointer::parse(&file, Path::new(&path), blob.content())?);
    }
    out.sort_by(|a, b| a.data.cmp(&b.data));
    Ok(out)
}
