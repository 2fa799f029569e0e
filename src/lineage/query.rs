//! Queries over the records: upstream (what produced a version), downstream (what was derived
//! from it), a filtered and sorted list, the whole graph, and two runs side by side.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use serde_json::Value;

use super::{Artifact, Lineage, LineageError, Record};
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

/// A comparison in a `--filter` expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
}

impl Op {
    /// Whether `a OP b` holds for an ordering comparison (`Contains` is textual: the caller's).
    fn holds<T: PartialOrd + ?Sized>(self, a: &T, b: &T) -> bool {
        match self {
            Op::Eq => a == b,
            Op::Ne => a != b,
            Op::Lt => a < b,
            Op::Le => a <= b,
            Op::Gt => a > b,
            Op::Ge => a >= b,
            Op::Contains => false,
        }
    }
}

/// A parsed `--filter` expression: `KEY OP VALUE`.
#[derive(Debug, Clone)]
pub struct Filter {
    key: String,
    op: Op,
    value: String,
}

impl Filter {
    /// Parses `metrics.auc>=0.8`, `params.lr=0.1`, `tag=baseline`, `output=models/`,
    /// `input=data/raw`, `author~alice`, `commit=1a2b`, `command~train`.
    pub fn parse(expr: &str) -> Result<Filter, LineageError> {
        let bad = |reason: &str| LineageError::BadFilter {
            expr: expr.to_string(),
            reason: reason.to_string(),
        };
        const OPS: [(&str, Op); 7] = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("!=", Op::Ne),
            ("=", Op::Eq),
            (">", Op::Gt),
            ("<", Op::Lt),
            ("~", Op::Contains),
        ];
        let (pos, text, op) = OPS
            .iter()
            .filter_map(|(t, op)| expr.find(t).map(|p| (p, *t, *op)))
            .min_by_key(|(p, t, _)| (*p, std::cmp::Reverse(t.len())))
            .ok_or_else(|| bad("expected KEY=VALUE, KEY>VALUE, KEY~TEXT, ..."))?;
        let key = expr[..pos].trim().to_string();
        let value = expr[pos + text.len()..].trim().to_string();
        let known = key.starts_with("metrics.")
            || key.starts_with("params.")
            || ["tag", "input", "output", "author", "commit", "command", "id"].contains(&key.as_str());
        if !known {
            return Err(bad(
                "the key must be metrics.NAME, params.NAME, tag, input, output, author, commit, command or id",
            ));
        }
        Ok(Filter { key, op, value })
    }

    /// Whether `r` passes.
    pub fn matches(&self, r: &Record) -> bool {
        let any = |vals: Vec<String>| vals.iter().any(|v| self.compare_text(v));
        if let Some(name) = self.key.strip_prefix("metrics.") {
            return r
                .metrics
                .get(name)
                .is_some_and(|n| self.compare_value(&Value::Number(n.clone())));
        }
        if let Some(name) = self.key.strip_prefix("params.") {
            return r.params.get(name).is_some_and(|v| self.compare_value(v));
        }
        match self.key.as_str() {
            "tag" => any(r.tags.clone()),
            "input" | "output" => {
                let list = if self.key == "input" {
                    &r.inputs
                } else {
                    &r.outputs
                };
                list.iter().any(|a| match self.op {
                    Op::Eq => {
                        let v = self.value.trim_end_matches('/');
                        a.path == v || a.path.starts_with(&format!("{v}/"))
                    }
                    _ => self.compare_text(&a.path),
                })
            }
            "author" => any(r
                .author
                .iter()
                .flat_map(|a| [a.name.clone(), a.email.clone()])
                .collect()),
            "commit" => match (self.op, &r.commit) {
                (Op::Eq, Some(c)) => !self.value.is_empty() && c.starts_with(&self.value),
                (_, c) => self.compare_text(c.as_deref().unwrap_or("")),
            },
            "id" => self.op == Op::Eq && r.id.starts_with(&self.value) || self.compare_text(&r.id),
            "command" => self.compare_text(&r.command.as_ref().map(|c| c.join(" ")).unwrap_or_default()),
            _ => false,
        }
    }

    fn compare_value(&self, v: &Value) -> bool {
        match (v.as_f64(), self.value.parse::<f64>().ok()) {
            (Some(a), Some(b)) if self.op != Op::Contains => self.op.holds(&a, &b),
            _ => self.compare_text(&value_text(v)),
        }
    }

    fn compare_text(&self, a: &str) -> bool {
        match self.op {
            Op::Contains => a.contains(self.value.as_str()),
            op => op.holds(a, self.value.as_str()),
        }
    }
}

/// A value as plain text: strings without quotes, the rest as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The value of a sort key (`metrics.NAME`, `params.NAME`, `time`; a bare NAME is a metric).
pub fn sort_value(r: &Record, key: &str) -> Option<Value> {
    if key == "time" {
        return Some(Value::String(r.time.clone()));
    }
    if let Some(p) = key.strip_prefix("params.") {
        return r.params.get(p).cloned();
    }
    let m = key.strip_prefix("metrics.").unwrap_or(key);
    r.metrics.get(m).map(|n| Value::Number(n.clone()))
}

/// Orders two optional values: numbers numerically, otherwise as text; absent values last.
pub fn cmp_values(a: &Option<Value>, b: &Option<Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a, b) {
        (None, None) => Equal,
        (None, Some(_)) => Greater,
        (Some(_), None) => Less,
        (Some(x), Some(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p.partial_cmp(&q).unwrap_or(Equal),
            _ => value_text(x).cmp(&value_text(y)),
        },
    }
}

/// The records passing every filter, sorted by `sort` (ascending unless `reverse`), else by
/// time. Records without the sort key come last.
pub fn list<'l>(
    lineage: &'l Lineage,
    filters: &[Filter],
    sort: Option<&str>,
    reverse: bool,
) -> Vec<&'l Record> {
    let mut v: Vec<&Record> = lineage
        .by_time()
        .into_iter()
        .filter(|r| filters.iter().all(|f| f.matches(r)))
        .collect();
    if let Some(key) = sort {
        v.sort_by(|a, b| {
            let (x, y) = (sort_value(a, key), sort_value(b, key));
            match (&x, &y, reverse) {
                (Some(_), Some(_), true) => cmp_values(&y, &x),
                _ => cmp_values(&x, &y),
            }
        });
    } else if reverse {
        v.reverse();
    }
    v
}

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

/// One parameter or metric on both sides.
#[derive(Debug, Serialize)]
pub struct Row {
    /// `params.NAME` or `metrics.NAME`.
    pub name: String,
    /// The left value.
    pub left: Option<Value>,
    /// The right value.
    pub right: Option<Value>,
    /// right - left, for metrics present on both sides.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Whether the values differ.
    pub changed: bool,
}

/// The params and metrics of two records, row by row.
pub fn compare(left: Option<&Record>, right: Option<&Record>) -> Vec<Row> {
    let mut rows = Vec::new();
    let params = |r: Option<&Record>| r.map(|r| r.params.clone()).unwrap_or_default();
    let metrics = |r: Option<&Record>| -> BTreeMap<String, Value> {
        r.map(|r| {
            r.metrics
                .iter()
                .map(|(k, v)| (k.clone(), Value::Number(v.clone())))
                .collect()
        })
        .unwrap_or_default()
    };
    for (prefix, l, r) in [
        ("params", params(left), params(right)),
        ("metrics", metrics(left), metrics(right)),
    ] {
        let names: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
        for name in names {
            let (a, b) = (l.get(name).cloned(), r.get(name).cloned());
            let delta = match (prefix, &a, &b) {
                ("metrics", Some(x), Some(y)) => Some(y.as_f64().unwrap_or(0.0) - x.as_f64().unwrap_or(0.0)),
                _ => None,
            };
            rows.push(Row {
                name: format!("{prefix}.{name}"),
                changed: a != b,
                left: a,
                right: b,
                delta,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::{Artifact, ArtifactKind};

    fn art(path: &str, tag: &str) -> Artifact {
        Artifact {
            path: path.into(),
            kind: ArtifactKind::File,
            digest: Digest::of_bytes(tag.as_bytes()),
            size: 1,
            files: None,
        }
    }

    fn rec(time: &str, inputs: Vec<Artifact>, outputs: Vec<Artifact>, auc: f64) -> Record {
        let mut r = Record {
            version: 1,
            id: String::new(),
            time: time.into(),
            author: None,
            commit: None,
            dirty: false,
            command: None,
            inputs,
            outputs,
            params: BTreeMap::new(),
            metrics: [("auc".to_string(), serde_json::Number::from_f64(auc).unwrap())].into(),
            tags: vec![],
        };
        r.id = r.compute_id();
        r
    }

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
        let raw = art("raw", "raw");
        let clean = art("clean", "clean");
        let m1 = art("m", "m1");
        let m2 = art("m", "m2");
        let l = Lineage {
            records: vec![
                rec("1", vec![raw.clone()], vec![clean.clone()], 0.0),
                rec("2", vec![clean.clone()], vec![m1.clone()], 0.7),
                rec("3", vec![clean.clone()], vec![m2.clone()], 0.9),
            ],
            problems: vec![],
        };
        let up = upstream(&l, &m2.digest, None).unwrap();
        assert_eq!(up.inputs[0].input.path, "clean");
        let clean_node = up.inputs[0].produced_by.as_ref().unwrap();
        assert_eq!(clean_node.inputs[0].input.path, "raw");
        assert!(clean_node.inputs[0].produced_by.is_none());
        let down = downstream(&l, &raw.digest, Some("raw"));
        assert_eq!(down.iter().map(|d| d.depth).collect::<Vec<_>>(), [1, 2, 2]);
        assert_eq!(derived_outputs(&down).len(), 3);
        let f = Filter::parse("metrics.auc>0.5").unwrap();
        let sorted = list(&l, &[f], Some("auc"), true);
        assert_eq!(sorted[0].outputs[0].digest, m2.digest);
        assert_eq!(sorted.len(), 2);
        assert!(Filter::parse("bogus=1").is_err());
        assert!(Filter::parse("output=m").unwrap().matches(&l.records[1]));
        let g = graph(&l);
        assert_eq!(g.nodes.len(), 3 + 4);
        assert!(g.to_dot().contains("a0 -> r0"));
        let rows = compare(Some(&l.records[1]), Some(&l.records[2]));
        assert!((rows[0].delta.unwrap() - 0.2).abs() < 1e-9);
    }
}
