//! History through git: the version of a path at each commit (its pointer file, or the file
//! itself when git tracks it), `log` of one path and `diff` of tracked directories between two
//! revisions or a revision and the workspace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;

use crate::cache::{Cache, CacheError};
use crate::error::{Error, Refusal};
use crate::hash::Digest;
use crate::lineage::{git_err, time::rfc3339_secs, Artifact, ArtifactKind, Lineage, LineageError};
use crate::manifest::{Entry, EntryKind, Manifest};
use crate::pointer::{pointer_file_for, Kind, Pointer, POINTER_SUFFIX};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};
use crate::workspace::{data_meta, file_digest, record_fresh, HashMode};

/// Where objects can be had. The local cache implements it; the default remote can be added
/// behind the same trait without touching the callers.
pub trait ObjectSource {
    /// Whether the object can be had (not verified). A source that cannot answer (an
    /// unreachable remote) returns an error, never "no".
    fn has(&self, digest: &Digest) -> Result<bool, Error>;
    /// A directory manifest, verified; `None` when it cannot be had.
    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error>;
}

impl ObjectSource for Cache {
    fn has(&self, digest: &Digest) -> Result<bool, Error> {
        Ok(self.contains(digest))
    }

    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error> {
        match self.read_manifest(digest) {
            Ok(parsed) => Ok(Some(parsed?)),
            Err(CacheError::Missing { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

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

fn oid_at(tree: &git2::Tree<'_>, path: &str) -> Option<git2::Oid> {
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

/// How a path changed in a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// It appeared.
    Added,
    /// Its version changed.
    Modified,
    /// It disappeared.
    Deleted,
}

/// A lineage record that mentions a version.
#[derive(Debug, Clone, Serialize)]
pub struct Mention {
    /// The record id.
    pub id: String,
    /// `input` or `output`.
    pub role: &'static str,
    /// When it was recorded.
    pub time: String,
    /// Its command, if any.
    pub command: Option<Vec<String>>,
}

/// The records that mention `digest` at `path`, oldest first.
pub fn mentions(lineage: &Lineage, digest: &Digest, path: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    for r in lineage.by_time() {
        for (role, list) in [("output", &r.outputs), ("input", &r.inputs)] {
            if list.iter().any(|a| a.digest == *digest && a.path == path) {
                out.push(Mention {
                    id: r.id.clone(),
                    role,
                    time: r.time.clone(),
                    command: r.command.clone(),
                });
                break;
            }
        }
    }
    out
}

/// One commit where the path changed.
#[derive(Debug, Serialize)]
pub struct LogEntry {
    /// The commit id.
    pub commit: String,
    /// The author date, RFC 3339 UTC.
    pub date: String,
    /// The author's name.
    pub author: String,
    /// The author's e-mail address.
    pub email: String,
    /// The first line of the message.
    pub message: String,
    /// What happened.
    pub change: Change,
    /// The version after the commit (`None` when deleted).
    pub version: Option<Artifact>,
    /// Lineage records that mention that version.
    pub records: Vec<Mention>,
}

/// What `log` found.
#[derive(Debug, Serialize)]
pub struct LogReport {
    /// The path, as displayed.
    pub path: String,
    /// Newest first.
    pub entries: Vec<LogEntry>,
}

/// Each commit reachable from HEAD where the version of `path` changed, newest first. A merge
/// is listed only when its version differs from every parent's.
pub fn log(repo: &Repo, path: &RelPath, lineage: &Lineage, max: Option<usize>) -> Result<LogReport, Error> {
    let git = &repo.git;
    let pfile = pointer_file_for(path);
    let key = |tree: &git2::Tree<'_>| (oid_at(tree, pfile.as_str()), oid_at(tree, path.as_str()));
    let mut entries = Vec::new();
    let mut ever = false;
    if head_commit(git).is_some() {
        let mut walk = git.revwalk().map_err(git_err("walking history"))?;
        walk.push_head().map_err(git_err("walking history"))?;
        walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
            .map_err(git_err("walking history"))?;
        for oid in walk {
            let oid = oid.map_err(git_err("walking history"))?;
            let commit = git.find_commit(oid).map_err(git_err("reading a commit"))?;
            let tree = commit.tree().map_err(git_err("reading a tree"))?;
            let here = key(&tree);
            let parents: Vec<_> = commit
                .parents()
                .map(|p| p.tree().map(|t| key(&t)))
                .collect::<Result<_, _>>()
                .map_err(git_err("reading a tree"))?;
            ever |= here != (None, None);
            let changed = if parents.is_empty() {
                here != (None, None)
            } else {
                parents.iter().all(|p| *p != here)
            };
            if !changed {
                continue;
            }
            let version = version_in_tree(git, &tree, path)?;
            let change = match (&version, parents.iter().any(|p| *p != (None, None))) {
                (None, _) => Change::Deleted,
                (Some(_), true) => Change::Modified,
                (Some(_), false) => Change::Added,
            };
            let author = commit.author();
            entries.push(LogEntry {
                commit: oid.to_string(),
                date: rfc3339_secs(author.when().seconds()),
                author: author.name().unwrap_or("").to_string(),
                email: author.email().unwrap_or("").to_string(),
                message: commit.summary().ok().flatten().unwrap_or("").to_string(),
                change,
                records: version
                    .as_ref()
                    .map(|v| mentions(lineage, &v.digest, path.as_str()))
                    .unwrap_or_default(),
                version,
            });
            if max.is_some_and(|m| entries.len() >= m) {
                break;
            }
        }
    }
    if !ever {
        return Err(LineageError::UnknownPath {
            path: repo.display(path),
            rev: Some("any commit".into()),
        }
        .into());
    }
    Ok(LogReport {
        path: repo.display(path),
        entries,
    })
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

/// One file that differs inside a tracked directory.
#[derive(Debug, Serialize)]
pub struct FileChange {
    /// Path relative to the tracked directory.
    pub path: String,
    /// Size before (absent when added).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_size: Option<u64>,
    /// Size after (absent when deleted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_size: Option<u64>,
}

/// How one tracked path differs.
#[derive(Debug, Serialize)]
pub struct PathDiff {
    /// The data path, as displayed.
    pub path: String,
    /// The data path, relative to the work-tree root (not serialized).
    #[serde(skip)]
    pub data: RelPath,
    /// `added`, `deleted`, `modified` or `unchanged`.
    pub state: &'static str,
    /// The version on the old side.
    pub old: Option<Artifact>,
    /// The version on the new side.
    pub new: Option<Artifact>,
    /// Files added inside a directory.
    pub added: Vec<FileChange>,
    /// Files modified inside a directory.
    pub modified: Vec<FileChange>,
    /// Files deleted inside a directory.
    pub deleted: Vec<FileChange>,
    /// Manifests that could not be had, so the file lists are incomplete.
    pub unavailable: Vec<Digest>,
}

/// What `diff` found.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// The old side: a revision.
    pub from: String,
    /// The new side: a revision, or `workspace`.
    pub to: String,
    /// One entry per tracked path on either side.
    pub paths: Vec<PathDiff>,
}

/// Compares tracked data at revision `from` with revision `to` (or the workspace when `None`),
/// limited to `paths` when given. Directory manifests come from `objects`.
pub fn diff(
    repo: &Repo,
    from: &str,
    to: Option<&str>,
    paths: &[RelPath],
    objects: &dyn ObjectSource,
    progress: &dyn Progress,
) -> Result<DiffReport, Error> {
    let git = &repo.git;
    let old_commit = resolve_commit(git, from)?;
    let old = pointers_in_tree(git, &old_commit.tree().map_err(git_err("reading a tree"))?)?;
    let new = match to {
        Some(rev) => {
            let c = resolve_commit(git, rev)?;
            pointers_in_tree(git, &c.tree().map_err(git_err("reading a tree"))?)?
        }
        None => repo.pointers()?,
    };
    let mut by_path: BTreeMap<RelPath, (Option<&Pointer>, Option<&Pointer>)> = BTreeMap::new();
    for p in &old {
        by_path.entry(p.data.clone()).or_default().0 = Some(p);
    }
    for p in &new {
        by_path.entry(p.data.clone()).or_default().1 = Some(p);
    }
    // Select: a path names a tracked path, a directory holding some, or a part of one.
    let mut selected: Vec<(RelPath, Option<String>)> = Vec::new();
    if paths.is_empty() {
        selected = by_path.keys().map(|k| (k.clone(), None)).collect();
    }
    for p in paths {
        let hits: Vec<_> = by_path
            .keys()
            .filter_map(|d| {
                if p.is_within(d) {
                    Some((d.clone(), p.strip_prefix(d).map(str::to_string)))
                } else if d.is_within(p) {
                    Some((d.clone(), None))
                } else {
                    None
                }
            })
            .collect();
        if hits.is_empty() {
            return Err(Refusal::NotTracked {
                path: repo.display(p),
            }
            .into());
        }
        selected.extend(hits);
    }
    selected.sort();
    selected.dedup();
    let mut stat = StatCache::load(&repo.state_dir());
    let mut out = Vec::new();
    for (data, sub) in selected {
        let (o, n) = by_path[&data];
        let side_new = match (to, n) {
            (None, Some(p)) => workspace_side(repo, p, &mut stat, progress)?,
            (_, n) => n.map(|p| Side {
                artifact: artifact_of(p),
                entries: None,
            }),
        };
        let side_old = o.map(|p| Side {
            artifact: artifact_of(p),
            entries: None,
        });
        out.push(path_diff(
            repo,
            &data,
            sub.as_deref(),
            side_old,
            side_new,
            objects,
        )?);
    }
    let _ = stat.save();
    Ok(DiffReport {
        from: from.to_string(),
        to: to.unwrap_or("workspace").to_string(),
        paths: out,
    })
}

/// One side of a comparison: the version, and for the workspace the entries already read.
struct Side {
    artifact: Artifact,
    entries: Option<Vec<Entry>>,
}

/// The workspace version of a pointer's data; the pointer itself when the data is absent.
fn workspace_side(
    repo: &Repo,
    pointer: &Pointer,
    stat: &mut StatCache,
    progress: &dyn Progress,
) -> Result<Option<Side>, Error> {
    let abs = pointer.data.to_path(&repo.root);
    let mut artifact = artifact_of(pointer);
    let Ok(meta) = data_meta(&abs, repo.cache.root()) else {
        return Ok(Some(Side {
            artifact,
            entries: None,
        }));
    };
    if meta.is_dir() {
        let entries = crate::workspace::workspace_entries(repo, &pointer.data, stat, progress)?;
        let m = Manifest::new(entries);
        artifact.kind = ArtifactKind::Dir;
        artifact.digest = m.digest();
        artifact.size = m.size();
        artifact.files = Some(m.file_count());
        return Ok(Some(Side {
            artifact,
            entries: Some(m.entries),
        }));
    }
    let (d, size, fresh) = file_digest(
        &abs,
        pointer.data.as_str(),
        Stat::of(&meta),
        stat,
        HashMode::HashOnly,
        progress,
    )?;
    record_fresh(stat, fresh.into_iter().collect());
    artifact.kind = ArtifactKind::File;
    artifact.digest = d;
    artifact.size = size;
    artifact.files = None;
    Ok(Some(Side {
        artifact,
        entries: None,
    }))
}

fn entries_of(
    side: &Side,
    objects: &dyn ObjectSource,
    unavailable: &mut Vec<Digest>,
) -> Result<Vec<Entry>, Error> {
    if let Some(e) = &side.entries {
        return Ok(e.clone());
    }
    if side.artifact.kind != ArtifactKind::Dir {
        return Ok(Vec::new());
    }
    match objects.manifest(&side.artifact.digest)? {
        Some(m) => Ok(m.entries),
        None => {
            unavailable.push(side.artifact.digest);
            Ok(Vec::new())
        }
    }
}

fn path_diff(
    repo: &Repo,
    data: &RelPath,
    sub: Option<&str>,
    old: Option<Side>,
    new: Option<Side>,
    objects: &dyn ObjectSource,
) -> Result<PathDiff, Error> {
    let mut unavailable = Vec::new();
    let is_dir = |s: &Option<Side>| s.as_ref().is_some_and(|s| s.artifact.kind == ArtifactKind::Dir);
    let (mut added, mut modified, mut deleted) = (Vec::new(), Vec::new(), Vec::new());
    let same = match (&old, &new) {
        (Some(o), Some(n)) => o.artifact.digest == n.artifact.digest && o.artifact.kind == n.artifact.kind,
        _ => false,
    };
    if !same && (is_dir(&old) || is_dir(&new)) {
        let oe = match &old {
            Some(s) => entries_of(s, objects, &mut unavailable)?,
            None => Vec::new(),
        };
        let ne = match &new {
            Some(s) => entries_of(s, objects, &mut unavailable)?,
            None => Vec::new(),
        };
        let files = |v: &[Entry]| -> BTreeMap<String, Entry> {
            v.iter()
                .filter(|e| e.kind != EntryKind::Dir)
                .filter(|e| sub.is_none_or(|s| e.path == s || e.path.starts_with(&format!("{s}/"))))
                .map(|e| (e.path.clone(), e.clone()))
                .collect()
        };
        let (om, nm) = (files(&oe), files(&ne));
        let names: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
        for name in names {
            let change = |o: Option<&Entry>, n: Option<&Entry>| FileChange {
                path: name.clone(),
                old_size: o.map(|e| e.size),
                new_size: n.map(|e| e.size),
            };
            match (om.get(name), nm.get(name)) {
                (None, Some(n)) => added.push(change(None, Some(n))),
                (Some(o), None) => deleted.push(change(Some(o), None)),
                (Some(o), Some(n)) if !o.same_content(n) => modified.push(change(Some(o), Some(n))),
                _ => {}
            }
        }
    }
    let state = match (&old, &new) {
        (None, Some(_)) => "added",
        (Some(_), None) => "deleted",
        _ if same => "unchanged",
        _ if sub.is_some()
            && added.is_empty()
            && modified.is_empty()
            && deleted.is_empty()
            && unavailable.is_empty() =>
        {
            "unchanged"
        }
        _ => "modified",
    };
    Ok(PathDiff {
        path: repo.display(data),
        data: data.clone(),
        state,
        old: old.map(|s| s.artifact),
        new: new.map(|s| s.artifact),
        added,
        modified,
        deleted,
        unavailable,
    })
}
