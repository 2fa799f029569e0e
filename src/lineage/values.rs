//! Metrics and parameters: read from JSON, YAML or TOML files or `NAME=VALUE` arguments, and
//! flattened to dotted names (`{"train": {"lr": 0.1}}` becomes `train.lr = 0.1`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Number, Value};

use super::LineageError;
use crate::fs::IoContext;

/// Reads a metrics file: every leaf must be a number. Arrays are flattened by index
/// (`loss.0`, `loss.1`).
pub fn metrics_file(path: &Path, shown: &str) -> Result<BTreeMap<String, Number>, LineageError> {
    let text = std::fs::read_to_string(path).at("cannot read", path)?;
    metrics_text(&text, path, shown)
}

/// [`metrics_file`] on text already read (from git at a revision, say); `path` gives the
/// format by its extension.
pub fn metrics_text(text: &str, path: &Path, shown: &str) -> Result<BTreeMap<String, Number>, LineageError> {
    let value = parse_structured(text, path, shown)?;
    let mut flat = BTreeMap::new();
    flatten(String::new(), value, true, &mut flat);
    flat.into_iter()
        .map(|(k, v)| match v {
            Value::Number(n) => Ok((k, n)),
            other => Err(LineageError::NotANumber {
                source_name: shown.to_string(),
                key: k,
                value: short(&other.to_string()),
            }),
        })
        .collect()
}

/// Reads a params file: leaves are kept as they are; arrays are kept whole.
pub fn params_file(path: &Path, shown: &str) -> Result<BTreeMap<String, Value>, LineageError> {
    let text = std::fs::read_to_string(path).at("cannot read", path)?;
    params_text(&text, path, shown)
}

/// [`params_file`] on text already read; `path` gives the format by its extension.
pub fn params_text(text: &str, path: &Path, shown: &str) -> Result<BTreeMap<String, Value>, LineageError> {
    let value = parse_structured(text, path, shown)?;
    let mut flat = BTreeMap::new();
    flatten(String::new(), value, false, &mut flat);
    Ok(flat)
}

/// `-p FILE:KEY,KEY` split into the file and its keys (none: the whole file). The file is
/// what comes before the last `:`; a file name that itself holds a `:` is given whole when
/// the file exists as named (`exists`), as DVC users would expect of `-p FILE`.
pub fn split_params_arg(arg: &str, exists: impl Fn(&str) -> bool) -> (String, Vec<String>) {
    match arg.rsplit_once(':') {
        Some((file, keys)) if !file.is_empty() && !exists(arg) => (
            file.to_string(),
            keys.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(str::to_string)
                .collect(),
        ),
        _ => (arg.to_string(), Vec::new()),
    }
}

/// The values `keys` select in a flattened params file: a key names a leaf (`train.lr`) or a
/// whole section (`train`: every `train.*` leaf); no keys select the whole file. Returns the
/// first key that selects nothing as the error.
pub fn select_params(
    flat: &BTreeMap<String, Value>,
    keys: &[String],
) -> Result<BTreeMap<String, Value>, String> {
    if keys.is_empty() {
        return Ok(flat.clone());
    }
    let mut out = BTreeMap::new();
    for key in keys {
        let section = format!("{key}.");
        let mut found = false;
        for (k, v) in flat {
            if k == key || k.starts_with(&section) {
                found = true;
                out.insert(k.clone(), v.clone());
            }
        }
        if !found {
            return Err(key.clone());
        }
    }
    Ok(out)
}

/// The current values of a params spec: the file at `path` (shown as `shown`), flattened,
/// restricted to `keys` (see [`select_params`]). A key that selects nothing is refused,
/// naming the file and the key. Pure: reads the file, prints nothing. `mlv run -p` records
/// exactly these values, so a change to a key not chosen does not change them.
pub fn params_values(
    path: &Path,
    shown: &str,
    keys: &[String],
) -> Result<BTreeMap<String, Value>, LineageError> {
    let flat = params_file(path, shown)?;
    select_params(&flat, keys).map_err(|key| LineageError::MissingParam {
        path: shown.to_string(),
        key,
    })
}

/// Parses `--metric NAME=NUMBER`.
pub fn metric_arg(arg: &str) -> Result<(String, Number), LineageError> {
    let (k, v) = split_kv(arg)?;
    match scalar(v) {
        Value::Number(n) => Ok((k.to_string(), n)),
        _ => Err(LineageError::NotANumber {
            source_name: "--metric".into(),
            key: k.to_string(),
            value: short(v),
        }),
    }
}

/// Parses `--param NAME=VALUE`: `true`/`false`, numbers and `null` are typed, the rest are
/// strings.
pub fn param_arg(arg: &str) -> Result<(String, Value), LineageError> {
    let (k, v) = split_kv(arg)?;
    Ok((k.to_string(), scalar(v)))
}

fn split_kv(arg: &str) -> Result<(&str, &str), LineageError> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim(), v)),
        _ => Err(LineageError::BadKeyValue { arg: arg.to_string() }),
    }
}

/// A command-line value typed like YAML would type a plain scalar (numbers, booleans, null).
pub fn scalar(v: &str) -> Value {
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        if let Some(n) = Number::from_f64(f) {
            if v.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
                return Value::Number(n);
            }
        }
    }
    Value::String(v.to_string())
}

fn short(s: &str) -> String {
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.to_string()
    }
}

/// Parses a file's text as JSON, YAML or TOML by the file's extension (JSON when unknown).
fn parse_structured(text: &str, path: &Path, shown: &str) -> Result<Value, LineageError> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |format: &'static str, reason: String| LineageError::Unparsable {
        path: shown.into(),
        format,
        reason: reason.split_whitespace().collect::<Vec<_>>().join(" "),
    };
    let value = match ext.as_str() {
        "yaml" | "yml" => serde_norway::from_str::<Value>(text).map_err(|e| bad("YAML", e.to_string()))?,
        "toml" => toml::from_str::<Value>(text).map_err(|e| bad("TOML", e.to_string()))?,
        _ => serde_json::from_str::<Value>(text).map_err(|e| bad("JSON", e.to_string()))?,
    };
    if !value.is_object() {
        return Err(bad(
            "a table of names",
            "the top level is not a map of names to values".into(),
        ));
    }
    Ok(value)
}

fn flatten(prefix: String, value: Value, arrays: bool, out: &mut BTreeMap<String, Value>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(join(&k), v, arrays, out);
            }
        }
        Value::Array(items) if arrays => {
            for (i, v) in items.into_iter().enumerate() {
                flatten(join(&i.to_string()), v, arrays, out);
            }
        }
        other => {
            out.insert(prefix, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_each_format() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("m.json");
        std::fs::write(&j, r#"{"auc": 0.9, "eval": {"loss": [1, 2]}}"#).unwrap();
        let m = metrics_file(&j, "m.json").unwrap();
        let keys: Vec<_> = m.keys().cloned().collect();
        assert_eq!(keys, ["auc", "eval.loss.0", "eval.loss.1"]);
        let y = d.path().join("p.yaml");
        std::fs::write(&y, "train:\n  lr: 0.1\n  layers: [1, 2]\nname: x\n").unwrap();
        let p = params_file(&y, "p.yaml").unwrap();
        assert_eq!(p["train.lr"], serde_json::json!(0.1));
        assert_eq!(p["train.layers"], serde_json::json!([1, 2]));
        assert_eq!(p["name"], serde_json::json!("x"));
        let t = d.path().join("p.toml");
        std::fs::write(&t, "[a]\nb = 3\n").unwrap();
        assert_eq!(params_file(&t, "p.toml").unwrap()["a.b"], serde_json::json!(3));
    }

    #[test]
    fn refuses_bad_metrics() {
        let d = tempfile::tempdir().unwrap();
        let j = d.path().join("m.json");
        std::fs::write(&j, r#"{"auc": "high"}"#).unwrap();
        let e = metrics_file(&j, "m.json").unwrap_err().to_string();
        assert!(e.contains("m.json") && e.contains("auc"), "{e}");
        std::fs::write(&j, "{\"auc\": 0.9,\n oops}").unwrap();
        let e = metrics_file(&j, "m.json").unwrap_err().to_string();
        assert!(e.contains("m.json") && e.contains("line 2"), "{e}");
        assert!(metric_arg("auc=high").is_err());
        assert!(metric_arg("=1").is_err());
    }

    #[test]
    fn params_spec_selects_keys_and_sections() {
        let d = tempfile::tempdir().unwrap();
        let y = d.path().join("params.yaml");
        std::fs::write(&y, "train:\n  lr: 0.1\n  epochs: 3\nseed: 1\nname: x\n").unwrap();
        let keys = |k: &[&str]| k.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let chosen = params_values(&y, "params.yaml", &keys(&["train", "seed"])).unwrap();
        assert_eq!(
            chosen.keys().collect::<Vec<_>>(),
            ["seed", "train.epochs", "train.lr"]
        );
        // a change to a key not chosen leaves the values alone; a chosen one changes them
        std::fs::write(&y, "train:\n  lr: 0.1\n  epochs: 3\nseed: 1\nname: y\n").unwrap();
        assert_eq!(
            params_values(&y, "params.yaml", &keys(&["train", "seed"])).unwrap(),
            chosen
        );
        assert_ne!(
            params_values(&y, "params.yaml", &[]).unwrap()["name"],
            serde_json::json!("x")
        );
        std::fs::write(&y, "train:\n  lr: 0.2\n  epochs: 3\nseed: 1\nname: y\n").unwrap();
        assert_ne!(
            params_values(&y, "params.yaml", &keys(&["train", "seed"])).unwrap(),
            chosen
        );
        // `train.l` is not a prefix of a section: it selects nothing
        let e = params_values(&y, "params.yaml", &keys(&["train.l"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("params.yaml") && e.contains("`train.l`"), "{e}");
        let j = d.path().join("p.json");
        std::fs::write(&j, r#"{"a": {"b": 1, "c": 2}}"#).unwrap();
        assert_eq!(params_values(&j, "p.json", &keys(&["a.c"])).unwrap().len(), 1);
        let t = d.path().join("p.toml");
        std::fs::write(&t, "[a]\nb = 1\n[c]\nd = 2\n").unwrap();
        assert_eq!(
            params_values(&t, "p.toml", &keys(&["c"])).unwrap()["c.d"],
            serde_json::json!(2)
        );
    }

    #[test]
    fn splits_params_args() {
        let none = |_: &str| false;
        assert_eq!(split_params_arg("p.yaml", none), ("p.yaml".into(), vec![]));
        assert_eq!(
            split_params_arg("p.yaml:train,lr", none),
            ("p.yaml".into(), vec!["train".to_string(), "lr".to_string()])
        );
        assert_eq!(split_params_arg("p.yaml:", none), ("p.yaml".into(), vec![]));
        assert_eq!(
            split_params_arg("a:b.yaml", |f| f == "a:b.yaml"),
            ("a:b.yaml".into(), vec![])
        );
    }

    #[test]
    fn types_scalars() {
        assert_eq!(param_arg("dedup=true").unwrap().1, Value::Bool(true));
        assert_eq!(param_arg("n=3").unwrap().1, serde_json::json!(3));
        assert_eq!(param_arg("lr=1e-3").unwrap().1, serde_json::json!(0.001));
        assert_eq!(param_arg("x=inf").unwrap().1, serde_json::json!("inf"));
        assert_eq!(
            param_arg("s=a=b").unwrap(),
            ("s".into(), serde_json::json!("a=b"))
        );
    }
}
