//! The `--filter` language of `lineage list` (`KEY OP VALUE`), and the sort keys and value
//! ordering it shares with `--sort`.

use serde_json::Value;

use super::{LineageError, Record};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::two_models;

    #[test]
    fn parses_and_matches() {
        let l = two_models();
        assert!(Filter::parse("bogus=1").is_err());
        assert!(Filter::parse("output=m").unwrap().matches(&l.records[1]));
        assert!(!Filter::parse("output=m").unwrap().matches(&l.records[0]));
        let auc = Filter::parse("metrics.auc>0.5").unwrap();
        assert!(!auc.matches(&l.records[0]) && auc.matches(&l.records[1]));
    }
}
