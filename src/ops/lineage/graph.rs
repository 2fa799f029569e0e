//! `lineage graph`: the graph of every record, for export (see [`Graph`]).

use std::collections::BTreeMap;

use crate::hash::Digest;
use crate::lineage::graph::{Graph, GraphNode};
use crate::lineage::{Artifact, Lineage};

/// Builds the graph of every record.
pub fn graph(lineage: &Lineage) -> Graph {
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    let mut artifacts: BTreeMap<(String, Digest), String> = BTreeMap::new();
    let mut artifact_id = |a: &Artifact, nodes: &mut Vec<GraphNode>| -> String {
        let key = (a.path.clone(), a.digest);
        if let Some(id) = artifacts.get(&key) {
            return id.clone();
        }
        let id = format!("a{}", artifacts.len());
        artifacts.insert(key, id.clone());
        nodes.push(GraphNode {
            id: id.clone(),
            kind: "artifact",
            label: a.path.clone(),
            key: a.digest.to_string(),
        });
        id
    };
    for (i, r) in lineage.by_time().into_iter().enumerate() {
        let rid = format!("r{i}");
        nodes.push(GraphNode {
            id: rid.clone(),
            kind: "run",
            label: r.short_id().to_string(),
            key: r.id.clone(),
        });
        for a in &r.inputs {
            edges.push((artifact_id(a, &mut nodes), rid.clone()));
        }
        for a in &r.outputs {
            edges.push((rid.clone(), artifact_id(a, &mut nodes)));
        }
    }
    Graph { nodes, edges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::two_models;

    #[test]
    fn artifacts_lead_to_runs_and_runs_to_outputs() {
        let g = graph(&two_models());
        assert_eq!(g.nodes.len(), 3 + 4);
        assert!(g.to_dot().contains("a0 -> r0"));
        assert!(g.to_mermaid().contains("r0 --> a1"));
    }
}
