//! Two records side by side: their params and metrics, row by row.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::Value;

use super::Record;

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
        for mut row in side_by_side(&l, &r, prefix == "metrics") {
            row.name = format!("{prefix}.{}", row.name);
            rows.push(row);
        }
    }
    rows
}

/// Two flattened maps of values, row by row in name order; with `deltas`, rows whose two
/// values are numbers get right - left.
pub fn side_by_side(l: &BTreeMap<String, Value>, r: &BTreeMap<String, Value>, deltas: bool) -> Vec<Row> {
    let names: BTreeSet<&String> = l.keys().chain(r.keys()).collect();
    names
        .into_iter()
        .map(|name| {
            let (a, b) = (l.get(name).cloned(), r.get(name).cloned());
            let delta = match (&a, &b) {
                (Some(Value::Number(x)), Some(Value::Number(y))) if deltas => {
                    Some(y.as_f64().unwrap_or(0.0) - x.as_f64().unwrap_or(0.0))
                }
                _ => None,
            };
            Row {
                name: name.clone(),
                changed: a != b,
                left: a,
                right: b,
                delta,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::two_models;

    #[test]
    fn metrics_get_a_delta() {
        let l = two_models();
        let rows = compare(Some(&l.records[1]), Some(&l.records[2]));
        assert_eq!(rows[0].name, "metrics.auc");
        assert!((rows[0].delta.unwrap() - 0.2).abs() < 1e-9);
        assert!(rows[0].changed);
    }
}
