//! `metrics show`, `metrics diff` and `params diff`: the values in the metrics and params files
//! that lineage records declare (`-m FILE`, `-p FILE[:KEYS]`), in the workspace and at git
//! revisions, flattened to dotted names as lineage records them.
//!
//! Which files: those declared by any record of the lineage file on any side compared (the
//! workspace's file, or the file committed at each revision), so a metrics file declared only
//! on one side still shows, empty on the other. At a revision the files are read from git;
//! in the workspace from disk. A file absent on a side has no values there; a file that does
//! not parse there is reported as a problem and the rest is shown (as `dvc metrics diff`
//! does). Params keep the keys each record chose; a file chosen whole by any record is shown
//! whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::error::Error;
use crate::history::{oid_at, resolve_commit};
use crate::lineage::compare::side_by_side;
use crate::lineage::values::{metrics_text, params_text, select_params};
use crate::lineage::{git_err, Lineage, LINEAGE_FILE};
use crate::repo::Repo;

/// The name a side of a comparison has when it is the workspace.
pub const WORKSPACE: &str = "workspace";

/// Metrics files or params files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Metrics (`-m FILE`): every value a number.
    Metrics,
    /// Params (`-p FILE[:KEYS]`): any value.
    Params,
}

/// One flattened key of one file, one value per revision.
#[derive(Debug, Serialize)]
pub struct ShowRow {
    /// The file (work-tree path).
    pub path: String,
    /// The dotted name.
    pub key: String,
    /// Its value at each revision of [`ShowReport::revs`], in order (`null`: absent there).
    pub values: Vec<Option<Value>>,
}

/// What `metrics show` found.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// The revisions shown, `workspace` first.
    pub revs: Vec<String>,
    /// One row per file and key.
    pub rows: Vec<ShowRow>,
    /// Files that could not be read or parsed at some revision (the rest is shown).
    pub problems: Vec<String>,
}

/// One flattened key of one file on the two sides of a diff.
#[derive(Debug, Serialize)]
pub struct DiffRow {
    /// The file (work-tree path).
    pub path: String,
    /// The dotted name.
    pub key: String,
    /// The old value (`null`: absent).
    pub old: Option<Value>,
    /// The new value (`null`: absent).
    pub new: Option<Value>,
    /// new - old, when both are numbers (to 12 significant digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<f64>,
    /// Whether the values differ.
    pub changed: bool,
}

/// What `metrics diff` or `params diff` found.
#[derive(Debug, Serialize)]
pub struct DiffReport {
    /// The old side: a revision, or `workspace`.
    pub old: String,
    /// The new side: a revision, or `workspace`.
    pub new: String,
    /// One row per file and key (only the changed ones unless `all`).
    pub rows: Vec<DiffRow>,
    /// Files that could not be read or parsed on a side (the rest is compared).
    pub problems: Vec<String>,
}

/// One side: the workspace (`None`) or a commit's tree.
struct Side<'r> {
    name: String,
    tree: Option<git2::Tree<'r>>,
}

impl<'r> Side<'r> {
    fn open(repo: &'r Repo, rev: Option<&str>) -> Result<Side<'r>, Error> {
        let Some(rev) = rev else {
            return Ok(Side {
                name: WORKSPACE.to_string(),
                tree: None,
            });
        };
        let commit = resolve_commit(&repo.git, rev)?;
        let tree = commit.tree().map_err(git_err("reading a tree"))?;
        Ok(Side {
            name: rev.to_string(),
            tree: Some(tree),
        })
    }

    /// The bytes of a work-tree file on this side; `None` when absent.
    fn read(&self, repo: &Repo, path: &str) -> Result<Option<Vec<u8>>, Error> {
        match &self.tree {
            None => {
                let abs = repo.root.join(path);
                match std::fs::read(&abs) {
                    Ok(b) => Ok(Some(b)),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::NotFound | std::io::ErrorKind::IsADirectory
                        ) =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(crate::fs::IoError::new("cannot read", abs, e).into()),
                }
            }
            Some(tree) => match oid_at(tree, path) {
                Some(oid) => {
                    let blob = repo.git.find_blob(oid).map_err(git_err("reading a blob"))?;
                    Ok(Some(blob.content().to_vec()))
                }
                None => Ok(None),
            },
        }
    }

    fn lineage(&self, repo: &Repo) -> Result<Lineage, Error> {
        Ok(match &self.tree {
            None => Lineage::load(&repo.root)?,
            Some(_) => self
                .read(repo, LINEAGE_FILE)?
                .map(|b| Lineage::parse(&b))
                .unwrap_or_default(),
        })
    }
}

/// The files declared on the sides: path -> chosen keys (`None`: the whole file).
type Declared = BTreeMap<String, Option<BTreeSet<String>>>;

fn declared(repo: &Repo, sides: &[Side<'_>], kind: Kind) -> Result<Declared, Error> {
    let mut out: Declared = BTreeMap::new();
    for side in sides {
        for r in side.lineage(repo)?.records {
            match kind {
                Kind::Metrics => {
                    for f in r.metrics_files {
                        out.insert(f, None);
                    }
                }
                Kind::Params => {
                    for f in r.params_files {
                        let whole = f.keys.is_empty();
                        let entry = out.entry(f.path).or_insert_with(|| Some(BTreeSet::new()));
                        match entry {
                            Some(keys) if !whole => keys.extend(f.keys),
                            _ => *entry = None,
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The flattened values of the declared files on one side: (path, key) -> value.
fn values(
    repo: &Repo,
    side: &Side<'_>,
    files: &Declared,
    kind: Kind,
    problems: &mut Vec<String>,
) -> Result<BTreeMap<(String, String), Value>, Error> {
    let mut out = BTreeMap::new();
    for (path, keys) in files {
        let Some(bytes) = side.read(repo, path)? else {
            continue;
        };
        let shown = format!("{path} ({})", side.name);
        let text = String::from_utf8_lossy(&bytes);
        let flat: Result<BTreeMap<String, Value>, _> = match kind {
            Kind::Metrics => metrics_text(&text, Path::new(path), &shown)
                .map(|m| m.into_iter().map(|(k, v)| (k, Value::Number(v))).collect()),
            Kind::Params => params_text(&text, Path::new(path), &shown),
        };
        let flat = match flat {
            Ok(f) => f,
            Err(e) => {
                problems.push(e.to_string());
                continue;
            }
        };
        let mut chosen = BTreeMap::new();
        match keys {
            None => chosen = flat,
            // a key absent on this side selects nothing here
            Some(keys) => {
                for k in keys {
                    chosen.extend(select_params(&flat, std::slice::from_ref(k)).unwrap_or_default());
                }
            }
        }
        for (k, v) in chosen {
            out.insert((path.clone(), k), v);
        }
    }
    Ok(out)
}

/// `d` to 12 significant digits, so that 0.3 - 0.1 is 0.2 rather than 0.19999999999999998.
fn round(d: f64) -> f64 {
    format!("{d:.11e}").parse().unwrap_or(d)
}

/// The metrics of the workspace and of each revision in `revs`, one row per file and key.
pub fn show(repo: &Repo, revs: &[String]) -> Result<ShowReport, Error> {
    let mut sides = vec![Side::open(repo, None)?];
    for r in revs {
        sides.push(Side::open(repo, Some(r))?);
    }
    let files = declared(repo, &sides, Kind::Metrics)?;
    let mut problems = Vec::new();
    let mut per_side = Vec::new();
    for side in &sides {
        per_side.push(values(repo, side, &files, Kind::Metrics, &mut problems)?);
    }
    let keys: BTreeSet<&(String, String)> = per_side.iter().flat_map(|m| m.keys()).collect();
    let rows = keys
        .into_iter()
        .map(|k| ShowRow {
            path: k.0.clone(),
            key: k.1.clone(),
            values: per_side.iter().map(|m| m.get(k).cloned()).collect(),
        })
        .collect();
    Ok(ShowReport {
        revs: sides.into_iter().map(|s| s.name).collect(),
        rows,
        problems,
    })
}

/// The metrics or params of `old` and `new` (a revision, or `None`: the workspace), key by
/// key, with the numeric change; only the changed keys unless `all`.
pub fn diff(
    repo: &Repo,
    kind: Kind,
    old: Option<&str>,
    new: Option<&str>,
    all: bool,
) -> Result<DiffReport, Error> {
    let sides = [Side::open(repo, old)?, Side::open(repo, new)?];
    let files = declared(repo, &sides, kind)?;
    let mut problems = Vec::new();
    let l = values(repo, &sides[0], &files, kind, &mut problems)?;
    let r = values(repo, &sides[1], &files, kind, &mut problems)?;
    let by_path = |m: &BTreeMap<(String, String), Value>, path: &str| -> BTreeMap<String, Value> {
        m.iter()
            .filter(|((p, _), _)| p == path)
            .map(|((_, k), v)| (k.clone(), v.clone()))
            .collect()
    };
    let mut rows = Vec::new();
    for path in files.keys() {
        for row in side_by_side(&by_path(&l, path), &by_path(&r, path), true) {
            if all || row.changed {
                rows.push(DiffRow {
                    path: path.clone(),
                    key: row.name,
                    old: row.left,
                    new: row.right,
                    change: row.delta.map(round),
                    changed: row.changed,
                });
            }
        }
    }
    let [a, b] = sides;
    Ok(DiffReport {
        old: a.name,
        new: b.name,
        rows,
        problems,
    })
}
