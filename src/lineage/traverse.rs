//! Walking the records: what produced a version (upstream) and what was derived from it
//! (downstream). Identical content at two paths is one object but two artifacts.

use std::collections::HashSet;

use serde::Serialize;

use super::{Artifact, Lineage, Record};
use crate::hash::Digest;

/// Whether `a` is the version `digest` (at `path`, when given). Identical content at two
/// paths is one object but two artifacts: `data/raw` is not produced by the run that wrote
/// the same bytes to `data/clean`.
pub fn is_version(a: &Artifact, digest: &Digest, path: Option<&str>) -> bool {
    a.digest == *digest && path.is_none_or(|p| a.path == p)
}

/// The records that output `digest` (at `path`, when given), oldest first.
pub fn producers<'l>(lineage: &'l Lineage, digest: &Digest, path: Option<&str>) -> Vec<&'l Record> {
    lineage
        .by_time()
        .into_iter()
        .filter(|r| r.outputs.iter().any(|a| is_version(a, digest, path)))
        .collect()
}

/// A record and, for each of its inputs, the record that produced that input.
#[derive(Debug, Serialize)]
pub struct Node {
    /// The record (the oldest that produced the version).
    pub record: Record,
    /// Later records that produced the same version again.
    pub also_produced_by: Vec<String>,
    /// Its inputs and where they came from.
    pub inputs: Vec<Upstream>,
}

/// One input of a record and its own producer, if any.
#[derive(Debug, Serialize)]
pub struct Upstream {
    /// The input.
    pub input: Artifact,
    /// The record that produced this input's version (`None`: source data, or shown above).
    pub produced_by: Option<Box<Node>>,
    /// The producer was already shown higher in the chain (a cycle).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cycle: bool,
}

/// The chain of records that produced `digest` (at `at`, when given), or `None` when no
/// record did.
pub fn upstream(lineage: &Lineage, digest: &Digest, at: Option<&str>) -> Option<Node> {
    let mut path = HashSet::new();
    upstream_of(lineage, digest, at, &mut path)
}

fn upstream_of(
    lineage: &Lineage,
    digest: &Digest,
    at: Option<&str>,
    path: &mut HashSet<String>,
) -> Option<Node> {
    let found = producers(lineage, digest, at);
    let record = *found.first()?;
    path.insert(record.id.clone());
    let inputs = record
        .inputs
        .iter()
        .map(|input| {
            let cycle = producers(lineage, &input.digest, Some(&input.path))
                .first()
                .is_some_and(|p| path.contains(&p.id));
            let produced_by = if cycle {
                None
            } else {
                upstream_of(lineage, &input.digest, Some(&input.path), path).map(Box::new)
            };
            Upstream {
                input: input.clone(),
                produced_by,
                cycle,
            }
        })
        .collect();
    path.remove(&record.id);
    Some(Node {
        record: record.clone(),
        also_produced_by: found[1..].iter().map(|r| r.id.clone()).collect(),
        inputs,
    })
}

/// A record downstream of a version.
#[derive(Debug, Serialize)]
pub struct Downstream {
    /// 1 for records that read the version itself, 2 for those reading their outputs, ...
    pub depth: usize,
    /// The input through which it depends on the version.
    pub via: Artifact,
    /// The record.
    pub record: Record,
}

/// Every record downstream of `digest` (at `at`, when given), depth first (a tree in
/// reading order).
pub fn downstream(lineage: &Lineage, digest: &Digest, at: Option<&str>) -> Vec<Downstream> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    downstream_of(lineage, digest, at, 1, &mut seen, &mut out);
    out
}

fn downstream_of(
    lineage: &Lineage,
    digest: &Digest,
    at: Option<&str>,
    depth: usize,
    seen: &mut HashSet<String>,
    out: &mut Vec<Downstream>,
) {
    for r in lineage.by_time() {
        let Some(via) = r.inputs.iter().find(|a| is_version(a, digest, at)) else {
            continue;
        };
        if !seen.insert(r.id.clone()) {
            continue;
        }
        out.push(Downstream {
            depth,
            via: via.clone(),
            record: r.clone(),
        });
        for o in &r.outputs {
            downstream_of(lineage, &o.digest, Some(&o.path), depth + 1, seen, out);
        }
    }
}

/// An output derived from a version, and the record that produced it.
#[derive(Debug, Serialize)]
pub struct Derived {
    /// The output.
    #[serde(flatten)]
    pub output: Artifact,
    /// The record that produced it.
    pub record: String,
}

/// The outputs of downstream records, deduplicated by (path, digest).
pub fn derived_outputs(records: &[Downstream]) -> Vec<Derived> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for d in records {
        for o in &d.record.outputs {
            if seen.insert((o.path.clone(), o.digest)) {
                out.push(Derived {
                    output: o.clone(),
                    record: d.record.id.clone(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::{art, rec, two_models};

    #[test]
    fn same_bytes_at_two_paths_are_two_artifacts() {
        let raw = art("raw", "same");
        let clean = art("clean", "same");
        let l = Lineage {
            records: vec![rec("1", vec![raw.clone()], vec![clean.clone()], 0.0)],
            problems: vec![],
        };
        let up = upstream(&l, &clean.digest, Some("clean")).unwrap();
        assert!(up.inputs[0].produced_by.is_none() && !up.inputs[0].cycle);
        assert!(upstream(&l, &raw.digest, Some("raw")).is_none());
        assert_eq!(downstream(&l, &clean.digest, Some("clean")).len(), 0);
        assert_eq!(downstream(&l, &raw.digest, Some("raw")).len(), 1);
    }

    #[test]
    fn walks_both_ways() {
        let l = two_models();
        let up = upstream(&l, &art("m", "m2").digest, None).unwrap();
        assert_eq!(up.inputs[0].input.path, "clean");
        let clean_node = up.inputs[0].produced_by.as_ref().unwrap();
        assert_eq!(clean_node.inputs[0].input.path, "raw");
        assert!(clean_node.inputs[0].produced_by.is_none());
        let down = downstream(&l, &art("raw", "raw").digest, Some("raw"));
        assert_eq!(down.iter().map(|d| d.depth).collect::<Vec<_>>(), [1, 2, 2]);
        assert_eq!(derived_outputs(&down).len(), 3);
    }
}
