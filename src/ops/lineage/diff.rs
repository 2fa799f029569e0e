//! `lineage diff`: the params and metrics of the runs behind two revisions (or two record
//! ids), side by side.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Error;
use crate::history::{pointers_in_tree, resolve_commit};
use crate::lineage::compare::{compare, Row};
use crate::lineage::traverse::producers;
use crate::lineage::{git_err, Lineage, Record};
use crate::repo::Repo;

/// A run on one side of `lineage diff`.
#[derive(Debug, Serialize)]
pub struct RunRef {
    /// The record id.
    pub id: String,
    /// When it was recorded.
    pub time: String,
    /// The commit it was made on.
    pub commit: Option<String>,
}

/// Two runs that produced the same outputs on the two sides.
#[derive(Debug, Serialize)]
pub struct RunPair {
    /// The output paths they produced.
    pub outputs: Vec<String>,
    /// The left run.
    pub left: Option<RunRef>,
    /// The right run.
    pub right: Option<RunRef>,
    /// Params and metrics side by side.
    pub rows: Vec<Row>,
}

/// What `lineage diff` found.
#[derive(Debug, Serialize)]
pub struct LineageDiffReport {
    /// The left side as given.
    pub left: String,
    /// The right side as given.
    pub right: String,
    /// One entry per pair of runs.
    pub pairs: Vec<RunPair>,
}

/// The runs of one side: a record id (prefix), or a git revision, whose runs are those that
/// produced the outputs tracked at that revision.
fn side<'l>(repo: &Repo, lineage: &'l Lineage, spec: &str) -> Result<Side<'l>, Error> {
    if spec.len() >= 6 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
        if let Some(r) = lineage.find_id(&spec.to_ascii_lowercase())? {
            return Ok(Side::Record(r));
        }
    }
    let commit = resolve_commit(&repo.git, spec)?;
    let tree = commit.tree().map_err(git_err("reading a tree"))?;
    let mut out = BTreeMap::new();
    for p in pointers_in_tree(&repo.git, &tree)? {
        if let Some(r) = producers(lineage, &p.meta.digest, Some(p.data.as_str())).first() {
            out.insert(p.data.as_str().to_string(), *r);
        }
    }
    Ok(Side::Outputs(out))
}

enum Side<'l> {
    Record(&'l Record),
    Outputs(BTreeMap<String, &'l Record>),
}

/// Params and metrics of the runs behind two revisions (or two record ids), side by side.
pub fn diff(repo: &Repo, lineage: &Lineage, left: &str, right: &str) -> Result<LineageDiffReport, Error> {
    let as_map = |s: Side<'_>| -> BTreeMap<String, Record> {
        match s {
            Side::Record(r) => r.outputs.iter().map(|o| (o.path.clone(), r.clone())).collect(),
            Side::Outputs(m) => m.into_iter().map(|(k, v)| (k, v.clone())).collect(),
        }
    };
    let (l, r) = (side(repo, lineage, left)?, side(repo, lineage, right)?);
    let mut pairs: Vec<RunPair> = Vec::new();
    let run_ref = |r: &Record| RunRef {
        id: r.id.clone(),
        time: r.time.clone(),
        commit: r.commit.clone(),
    };
    if let (Side::Record(a), Side::Record(b)) = (&l, &r) {
        pairs.push(RunPair {
            outputs: b.outputs.iter().map(|o| o.path.clone()).collect(),
            left: Some(run_ref(a)),
            right: Some(run_ref(b)),
            rows: compare(Some(a), Some(b)),
        });
    } else {
        let (lm, rm) = (as_map(l), as_map(r));
        let paths: std::collections::BTreeSet<&String> = lm.keys().chain(rm.keys()).collect();
        for path in paths {
            let (a, b) = (lm.get(path), rm.get(path));
            let key = (a.map(|x| x.id.clone()), b.map(|x| x.id.clone()));
            if let Some(p) = pairs.iter_mut().find(|p| {
                (
                    p.left.as_ref().map(|x| x.id.clone()),
                    p.right.as_ref().map(|x| x.id.clone()),
                ) == key
            }) {
                p.outputs.push(path.clone());
                continue;
            }
            pairs.push(RunPair {
                outputs: vec![path.clone()],
                left: a.map(run_ref),
                right: b.map(run_ref),
                rows: compare(a, b),
            });
        }
    }
    Ok(LineageDiffReport {
        left: left.to_string(),
        right: right.to_string(),
        pairs,
    })
}
