//! `lineage verify --history`: that the lineage file only ever grew, on every branch in scope
//! (local and remote-tracking branches, and HEAD when detached). Every commit's file must hold every line its
//! parents' files held, by record id and exact bytes; a merge may interleave them. Commits are
//! walked parents first; a file is read only when its blob differs from a parent's, each blob
//! once; a file that only appends lines to its parent's is compared as bytes, unparsed.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use serde::Serialize;

use crate::error::Error;
use crate::hash::Digest;
use crate::history::oid_at;
use crate::lineage::growth::{appended, KeyCache, Lines, Lost};
use crate::lineage::{git_err, LINEAGE_FILE};
use crate::repo::Repo;

/// A commit whose lineage file lacks records a parent's held.
#[derive(Debug, Serialize)]
pub struct HistoryBreak {
    /// The commit (full hex).
    pub commit: String,
    /// Its subject line.
    pub subject: String,
    /// The parent whose records it lacks.
    pub parent: String,
    /// The records lost (edited or removed), each reported at the first commit that lost it.
    pub records: Vec<Lost>,
}

/// What `lineage verify --history` found.
#[derive(Debug, Serialize)]
pub struct HistoryReport {
    /// The refs walked (`HEAD`, `refs/heads/...`, `refs/remotes/...`).
    pub scope: Vec<String>,
    /// Commits walked.
    pub commits: usize,
    /// Distinct versions of the lineage file parsed (one that only appends lines to its
    /// parent's is compared as bytes, not parsed).
    pub versions: usize,
    /// Commits that lost records, parents first.
    pub breaks: Vec<HistoryBreak>,
    /// No breaks.
    pub ok: bool,
}

/// Walks the history of every branch in scope and reports each commit whose lineage file
/// lacks a record (by id and exact bytes) that one of its parents' files held.
pub fn verify_history(repo: &Repo) -> Result<HistoryReport, Error> {
    let git = &repo.git;
    let mut walk = git.revwalk().map_err(git_err("walking history"))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::REVERSE)
        .map_err(git_err("walking history"))?;
    let mut scope = Vec::new();
    if git.head_detached().unwrap_or(false) {
        if let Some(head) = crate::history::head_commit(git) {
            walk.push(head.id()).map_err(git_err("walking history"))?;
            scope.push("HEAD".to_string());
        }
    }
    let refs = git.references().map_err(git_err("listing branches"))?;
    for r in refs.flatten() {
        let Ok(name) = r.name() else { continue };
        let branch = name.starts_with("refs/heads/") || name.starts_with("refs/remotes/");
        if !branch || r.kind() == Some(git2::ReferenceType::Symbolic) {
            continue;
        }
        let Ok(c) = r.peel_to_commit() else { continue };
        scope.push(name.to_string());
        walk.push(c.id()).map_err(git_err("walking history"))?;
    }
    // the lineage blob of each commit walked; the lines of each blob read
    let mut blob_of: HashMap<git2::Oid, Option<git2::Oid>> = HashMap::new();
    let mut lines: HashMap<Option<git2::Oid>, Rc<Lines>> = HashMap::new();
    lines.insert(None, Rc::new(Lines::default()));
    let mut keys = KeyCache::default();
    let mut compared: HashSet<(Option<git2::Oid>, Option<git2::Oid>)> = HashSet::new();
    let mut reported: HashSet<(String, Digest)> = HashSet::new();
    let mut breaks = Vec::new();
    let mut commits = 0;
    for oid in walk {
        let oid = oid.map_err(git_err("walking history"))?;
        let commit = git.find_commit(oid).map_err(git_err("reading a commit"))?;
        let tree = commit.tree().map_err(git_err("reading a tree"))?;
        let blob = oid_at(&tree, LINEAGE_FILE);
        blob_of.insert(oid, blob);
        commits += 1;
        for parent in commit.parent_ids() {
            // parents come first in the walk; one outside it (a shallow clone) is skipped
            let Some(&pblob) = blob_of.get(&parent) else {
                continue;
            };
            if pblob == blob || !compared.insert((pblob, blob)) {
                continue;
            }
            if let (Some(p), Some(c)) = (pblob, blob) {
                let p = git.find_blob(p).map_err(git_err("reading a blob"))?;
                let c = git.find_blob(c).map_err(git_err("reading a blob"))?;
                if appended(p.content(), c.content()) {
                    continue;
                }
            }
            let old = read_lines(git, &mut lines, &mut keys, pblob)?;
            let new = read_lines(git, &mut lines, &mut keys, blob)?;
            let lost: Vec<Lost> = old
                .lost_in(&new)
                .into_iter()
                .filter(|l| reported.insert((l.record.clone(), l.line)))
                .collect();
            if !lost.is_empty() {
                breaks.push(HistoryBreak {
                    commit: oid.to_string(),
                    subject: String::from_utf8_lossy(commit.summary_bytes().unwrap_or_default()).into_owned(),
                    parent: parent.to_string(),
                    records: lost,
                });
            }
        }
    }
    Ok(HistoryReport {
        scope,
        commits,
        versions: lines.len() - 1,
        ok: breaks.is_empty(),
        breaks,
    })
}

/// The lines of a lineage blob (none: no file), read once.
fn read_lines(
    git: &git2::Repository,
    cache: &mut HashMap<Option<git2::Oid>, Rc<Lines>>,
    keys: &mut KeyCache,
    blob: Option<git2::Oid>,
) -> Result<Rc<Lines>, Error> {
    if let Some(l) = cache.get(&blob) {
        return Ok(l.clone());
    }
    let oid = blob.expect("the absent file is cached from the start");
    let b = git.find_blob(oid).map_err(git_err("reading a blob"))?;
    let l = Rc::new(Lines::parse_with(b.content(), keys));
    cache.insert(blob, l.clone());
    Ok(l)
}
