//! The lineage graph (artifact versions and runs) and its export as Graphviz `dot` or
//! Mermaid text.

use serde::Serialize;

/// A node of the lineage graph: an artifact version or a record.
#[derive(Debug, Serialize)]
pub struct GraphNode {
    /// Identifier in the graph (`a0`, `r0`, ...).
    pub id: String,
    /// `artifact` or `run`.
    pub kind: &'static str,
    /// The artifact's path, or the record's short id.
    pub label: String,
    /// The artifact's digest, or the record's id.
    pub key: String,
}

/// The whole lineage graph: artifacts point to the runs that read them, runs to what they made.
#[derive(Debug, Serialize)]
pub struct Graph {
    /// Artifact versions and runs.
    pub nodes: Vec<GraphNode>,
    /// `(from, to)` node ids.
    pub edges: Vec<(String, String)>,
}

impl Graph {
    /// Graphviz `dot` text.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph lineage {\n  rankdir=LR;\n  node [fontname=\"monospace\"];\n");
        for n in &self.nodes {
            let (shape, label) = match n.kind {
                "artifact" => ("box", format!("{}\\n{}", n.label, &n.key[..12])),
                _ => ("ellipse", format!("run {}", n.label)),
            };
            s.push_str(&format!(
                "  {} [shape={shape}, label=\"{}\"];\n",
                n.id,
                label.replace('"', "\\\"")
            ));
        }
        for (a, b) in &self.edges {
            s.push_str(&format!("  {a} -> {b};\n"));
        }
        s.push_str("}\n");
        s
    }

    /// Mermaid flowchart text.
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("flowchart LR\n");
        for n in &self.nodes {
            let esc = |t: &str| t.replace('"', "#quot;");
            match n.kind {
                "artifact" => s.push_str(&format!(
                    "  {}[\"{}<br/>{}\"]\n",
                    n.id,
                    esc(&n.label),
                    &n.key[..12]
                )),
                _ => s.push_str(&format!("  {}([\"run {}\"])\n", n.id, esc(&n.label))),
            }
        }
        for (a, b) in &self.edges {
            s.push_str(&format!("  {a} --> {b}\n"));
        }
        s
    }
}
