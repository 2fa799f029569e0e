//! `lineage verify`: whether every version the lineage mentions can still be had, and each
//! output's latest record against the workspace.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use crate::error::Error;
use crate::hash::Digest;
use crate::history::{head_commit, resolve_commit, version_in_tree, version_in_workspace};
use crate::lineage::{Artifact, ArtifactKind, LineProblem, Lineage, Record};
use crate::objects::ObjectSource;
use crate::ops::status::State;
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// A digest of the lineage that cannot be had any more.
#[derive(Debug, Serialize)]
pub struct Unavailable {
    /// A record that mentions it.
    pub record: String,
    /// `input` or `output`.
    pub role: &'static str,
    /// The artifact.
    pub artifact: Artifact,
    /// Objects missing (for a directory: the manifest, or the files it lists).
    pub missing: u64,
}

/// The latest recorded version of an output against the workspace.
#[derive(Debug, Serialize)]
pub struct OutputCheck {
    /// The output path.
    pub path: String,
    /// The latest record that produced it.
    pub record: String,
    /// The version that record produced.
    pub recorded: Digest,
    /// The version the workspace pointer holds, if any.
    pub current: Option<Digest>,
    /// `matches`, `differs` (the pointer holds another version), `modified` (the pointer
    /// matches, the data in the workspace does not), `absent` (the data is not in the
    /// workspace) or `untracked` (no pointer).
    pub state: &'static str,
}

/// What `lineage verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Readable records.
    pub records: usize,
    /// Distinct versions checked.
    pub checked: usize,
    /// Lines that are not valid records.
    pub problems: Vec<LineProblem>,
    /// Versions that can no longer be had.
    pub unavailable: Vec<Unavailable>,
    /// Each output's latest record against the workspace.
    pub outputs: Vec<OutputCheck>,
    /// No problems and nothing unavailable.
    pub ok: bool,
}

/// Checks that every digest of the lineage can still be had from `objects` (data tracked by
/// mlv) or git (files tracked by git), and compares each output's latest record with the
/// workspace.
pub fn verify(
    repo: &Repo,
    lineage: &Lineage,
    objects: &dyn ObjectSource,
    progress: &dyn Progress,
) -> Result<VerifyReport, Error> {
    let mut seen = HashSet::new();
    let mut checks = Vec::new();
    for r in lineage.by_time() {
        for (role, list) in [("input", &r.inputs), ("output", &r.outputs)] {
            for a in list {
                if seen.insert((a.path.clone(), a.digest)) {
                    checks.push((r, role, a, needs(repo, r, a, objects)?));
                }
            }
        }
    }
    // One question for every object of every record: a remote-backed source answers it with
    // a few listings, not a request per file.
    let wanted: Vec<Digest> = checks
        .iter()
        .flat_map(|(.., n)| match n {
            Needs::Objects(d) => d.as_slice(),
            Needs::Missing(_) => &[],
        })
        .copied()
        .collect();
    let absent: HashSet<Digest> = objects.missing(&wanted)?.into_iter().collect();
    let mut unavailable = Vec::new();
    for (r, role, a, needs) in checks {
        let missing = match needs {
            Needs::Objects(d) => d.iter().filter(|d| absent.contains(d)).count() as u64,
            Needs::Missing(n) => n,
        };
        if missing > 0 {
            unavailable.push(Unavailable {
                record: r.id.clone(),
                role,
                artifact: a.clone(),
                missing,
            });
        }
    }
    let mut latest: BTreeMap<String, (&Record, Digest)> = BTreeMap::new();
    for r in lineage.by_time() {
        for o in &r.outputs {
            latest.insert(o.path.clone(), (r, o.digest));
        }
    }
    let mut outputs = Vec::new();
    for (path, (r, recorded)) in latest {
        let Ok(rel) = RelPath::new(&path) else { continue };
        let current = version_in_workspace(repo, &rel)?.map(|a| a.digest);
        let state = match current {
            None => "untracked",
            Some(d) if d != recorded => "differs",
            Some(_) => {
                let st = crate::ops::status::status(repo, std::slice::from_ref(&rel), progress)?;
                match st.pointers.first() {
                    Some(p) if p.state == State::Modified => "modified",
                    Some(p) if p.state == State::NotPulled && p.present() => "modified",
                    Some(p) if matches!(p.state, State::Missing | State::NotPulled) => "absent",
                    _ => "matches",
                }
            }
        };
        outputs.push(OutputCheck {
            path: repo.display(&rel),
            record: r.id.clone(),
            recorded,
            current,
            state,
        });
    }
    let ok = lineage.problems.is_empty() && unavailable.is_empty();
    Ok(VerifyReport {
        records: lineage.records.len(),
        checked: seen.len(),
        problems: lineage.problems.clone(),
        unavailable,
        outputs,
        ok,
    })
}

/// What an artifact needs to be available: objects (a file's, or those a directory's manifest
/// lists, once per entry), or nothing to ask (a missing manifest, a file tracked by git).
enum Needs {
    Objects(Vec<Digest>),
    Missing(u64),
}

fn needs(repo: &Repo, r: &Record, a: &Artifact, objects: &dyn ObjectSource) -> Result<Needs, Error> {
    Ok(match a.kind {
        ArtifactKind::File => Needs::Objects(vec![a.digest]),
        // A source that cannot answer (unreachable remote, damaged manifest) is an error, not
        // "unavailable".
        ArtifactKind::Dir => match objects.manifest(&a.digest)? {
            Some(m) => Needs::Objects(m.entries.iter().filter_map(|e| e.digest()).collect()),
            None => Needs::Missing(1),
        },
        ArtifactKind::Git => Needs::Missing(u64::from(!git_file_available(repo, r, a))),
    })
}

/// Whether git still has a file's recorded content: at the record's commit, at HEAD, or in
/// the workspace.
fn git_file_available(repo: &Repo, r: &Record, a: &Artifact) -> bool {
    let Ok(rel) = RelPath::new(&a.path) else {
        return false;
    };
    let git = &repo.git;
    let commits = [
        r.commit.as_deref().and_then(|c| resolve_commit(git, c).ok()),
        head_commit(git),
    ];
    for c in commits.into_iter().flatten() {
        if let Ok(tree) = c.tree() {
            if let Ok(Some(v)) = version_in_tree(git, &tree, &rel) {
                if v.digest == a.digest {
                    return true;
                }
            }
        }
    }
    std::fs::read(rel.to_path(&repo.root)).is_ok_and(|b| Digest::of_bytes(&b) == a.digest)
}
