//! `diff`: tracked data at one revision against another revision or the workspace, down to
//! the files inside tracked directories.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::hash::Digest;
use crate::history::{artifact_of, pointers_in_tree, resolve_commit};
use crate::lineage::{git_err, Artifact, ArtifactKind};
use crate::manifest::{Entry, Manifest, Node};
use crate::objects::ObjectSource;
use crate::pointer::Pointer;
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};
use crate::workspace::{data_meta, file_digest, record_fresh, workspace_entries, HashMode};

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
        let entries = workspace_entries(repo, &pointer.data, stat, progress)?;
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
                .filter(|e| !matches!(e.node, Node::Dir))
                .filter(|e| sub.is_none_or(|s| e.path == s || e.path.starts_with(&format!("{s}/"))))
                .map(|e| (e.path.clone(), e.clone()))
                .collect()
        };
        let (om, nm) = (files(&oe), files(&ne));
        let names: BTreeSet<&String> = om.keys().chain(nm.keys()).collect();
        for name in names {
            let change = |o: Option<&Entry>, n: Option<&Entry>| FileChange {
                path: name.clone(),
                old_size: o.map(Entry::size),
                new_size: n.map(Entry::size),
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
