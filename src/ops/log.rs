//! `log`: the commits where the version of one path changed, with the lineage records that
//! mention each version.

use serde::Serialize;

use crate::error::Error;
use crate::hash::Digest;
use crate::history::{head_commit, oid_at, version_in_tree};
use crate::lineage::{git_err, time::rfc3339_secs, Artifact, Lineage, LineageError};
use crate::pointer::pointer_file_for;
use crate::relpath::RelPath;
use crate::repo::Repo;

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
