//! The pipeline file, `mlv.toml` at the work-tree root: one `[stage.NAME]` table per step
//! (command, working directory, inputs, outputs, params and metrics files), committed with
//! git and edited by hand or by `mlv run --name` / `mlv stage add`.
//!
//! Every path (the working directory too) is relative to the work-tree root, whatever the
//! stage's `wdir`: a stage reads the same in any directory, and `mlv.toml` never needs `..`.
//! A stage depends on another when one of its inputs is (inside, or contains) one of the
//! other's outputs; the stages must form a DAG. See `docs/pipelines.md`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fs::{write_atomic_in, IoError};
use crate::kind::ErrorKind;
use crate::relpath::RelPath;

/// The pipeline file, relative to the work-tree root.
pub const PIPELINE_FILE: &str = "mlv.toml";
/// The `.gitattributes` line that lets branches that both add stages merge without a
/// conflict (git's `union` driver keeps both sides' lines; a key both sides set twice is
/// then refused as a duplicate, naming its line).
pub const GITATTRIBUTES_LINE: &str = "mlv.toml merge=union";

/// Errors of the pipeline file.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The file could not be read or written.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The file is not valid TOML, or holds a key mlv does not know.
    #[error("{file}:{line}: {reason}")]
    Syntax {
        /// The file as displayed.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The parser's message.
        reason: String,
    },
    /// A stage name with characters other than letters, digits, `-` and `_`.
    #[error("`{name}`: bad stage name")]
    BadName {
        /// The name.
        name: String,
    },
    /// A stage without a command.
    #[error("stage {stage}: `cmd` is empty")]
    NoCommand {
        /// The stage.
        stage: String,
    },
    /// A path that is absolute, has `..`, or otherwise leaves the repository.
    #[error("stage {stage}: {path:?} is outside the repository")]
    Outside {
        /// The stage.
        stage: String,
        /// The path as written.
        path: String,
    },
    /// Two stages write one output (or one's output contains the other's).
    #[error("stages {first} and {second} both write {path}")]
    TwoWriters {
        /// One stage.
        first: String,
        /// The other.
        second: String,
        /// The output.
        path: String,
    },
    /// An output inside an input of the same stage (or the reverse).
    #[error("stage {stage}: output {output} overlaps its input {input}")]
    OutputInInput {
        /// The stage.
        stage: String,
        /// The output.
        output: String,
        /// The input.
        input: String,
    },
    /// The stages' inputs and outputs form a cycle.
    #[error("the stages form a cycle: {}", .stages.join(" -> "))]
    Cycle {
        /// The stages on the cycle, the first repeated at the end.
        stages: Vec<String>,
    },
    /// An input that is not there and that no stage writes.
    #[error("stage {stage}: input {path} does not exist and no stage writes it")]
    MissingInput {
        /// The stage.
        stage: String,
        /// The input as displayed.
        path: String,
    },
    /// A params key (`FILE:KEY`) that the params file does not have.
    #[error("stage {stage}: {file} has no params key `{key}`")]
    MissingParam {
        /// The stage.
        stage: String,
        /// The params file, as displayed.
        file: String,
        /// The key.
        key: String,
    },
    /// A stage named on the command line that the file does not define.
    #[error("no stage named {name} in {PIPELINE_FILE}")]
    UnknownStage {
        /// The name.
        name: String,
    },
}

impl PipelineError {
    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            PipelineError::Io(e) => return e.hint(),
            // git merges mlv.toml with `union`: two branches that edited one key leave both lines
            PipelineError::Syntax { reason, .. } if reason.starts_with("duplicate key") => {
                "a merge of two branches that both changed this key keeps both lines (mlv.toml merges with union): keep the one you mean and commit".into()
            }
            PipelineError::Syntax { .. } => {
                "fix the file; a stage's keys are cmd, wdir, inputs, outputs, params and metrics".into()
            }
            PipelineError::BadName { .. } => "use letters, digits, `-` and `_` (at most 64)".into(),
            PipelineError::NoCommand { .. } => {
                "give the command as a list: cmd = [\"python\", \"train.py\"]".into()
            }
            PipelineError::Outside { .. } => {
                "give paths relative to the repository root, without `..`".into()
            }
            PipelineError::TwoWriters { .. } => "give each output to one stage only".into(),
            PipelineError::OutputInInput { .. } => "write the output somewhere else than the input".into(),
            PipelineError::Cycle { .. } => "a stage cannot read what it (or a stage after it) writes".into(),
            PipelineError::UnknownStage { .. } => "`mlv stage list` shows the stages".into(),
            PipelineError::MissingParam { file, .. } => format!(
                "fix the stage's params in {PIPELINE_FILE}: a dotted key like train.lr, a section like train, or {file} alone for the whole file"
            ),
            PipelineError::MissingInput { path, .. } => {
                format!("create {path} and track it (`mlv add {path}`, or commit it), or make it a stage's output")
            }
        })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PipelineError::Io(e) => e.kind(),
            PipelineError::Syntax { .. } => ErrorKind::Environment,
            _ => ErrorKind::Refused,
        }
    }
}

/// One stage as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDef {
    /// The command and its arguments.
    pub cmd: Vec<String>,
    /// The working directory, relative to the root.
    #[serde(default = "dot")]
    pub wdir: String,
    /// Inputs: data tracked by mlv (maybe another stage's output) or files tracked by git.
    #[serde(default)]
    pub inputs: Vec<String>,
    /// Outputs, added to mlv after the command succeeds.
    #[serde(default)]
    pub outputs: Vec<String>,
    /// Params entries: `FILE` (the whole file) or `FILE:KEY,KEY`.
    #[serde(default)]
    pub params: Vec<String>,
    /// Metrics files.
    #[serde(default)]
    pub metrics: Vec<String>,
}

fn dot() -> String {
    ".".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    stage: BTreeMap<String, StageDef>,
}

/// A validated stage.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Its name.
    pub name: String,
    /// The command.
    pub cmd: Vec<String>,
    /// The working directory (`None`: the root).
    pub wdir: Option<RelPath>,
    /// Inputs.
    pub inputs: Vec<RelPath>,
    /// Outputs.
    pub outputs: Vec<RelPath>,
    /// Params files, each with the keys chosen in it (none: the whole file).
    pub params: Vec<StageParams>,
    /// Metrics files.
    pub metrics: Vec<RelPath>,
    /// The stages it reads outputs of.
    pub after: Vec<String>,
}

/// A params entry of a stage: `FILE` (the whole file) or `FILE:KEY,KEY`, where a key names a
/// leaf (`train.lr`) or a section (`train`), as `mlv run -p` takes it. Serialized as written
/// in the file (`"params.yaml:train.lr"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageParams {
    /// The file.
    pub file: RelPath,
    /// The keys chosen; empty: the whole file.
    pub keys: Vec<String>,
}

impl std::fmt::Display for StageParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.keys.is_empty() {
            true => write!(f, "{}", self.file),
            false => write!(f, "{}:{}", self.file, self.keys.join(",")),
        }
    }
}

impl Serialize for StageParams {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The validated pipeline: stages in dependency order (ties by name).
#[derive(Debug, Default, Serialize)]
pub struct Pipeline {
    /// Every stage, each after the stages it depends on.
    pub stages: Vec<Stage>,
}

/// The pipeline file under work-tree `root`.
pub fn pipeline_path(root: &Path) -> PathBuf {
    root.join(PIPELINE_FILE)
}

/// Checks a stage name: letters, digits, `-`, `_`; 1 to 64 characters.
pub fn check_name(name: &str) -> Result<(), PipelineError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    match ok {
        true => Ok(()),
        false => Err(PipelineError::BadName { name: name.into() }),
    }
}

impl Pipeline {
    /// Loads `mlv.toml` (absent: no stages) and validates it.
    pub fn load(root: &Path) -> Result<Pipeline, PipelineError> {
        let path = pipeline_path(root);
        let text = crate::fs::read_to_string_or_empty(&path)?;
        Pipeline::parse_in(&text, PIPELINE_FILE, Some(root))
    }

    /// Parses and validates the text of a pipeline file (`file` names it in errors).
    pub fn parse(text: &str, file: &str) -> Result<Pipeline, PipelineError> {
        Pipeline::parse_in(text, file, None)
    }

    /// [`Pipeline::parse`] for the work tree at `root`, if known: a params entry holding a
    /// `:` is a whole file when a file of that whole name exists there.
    fn parse_in(text: &str, file: &str, root: Option<&Path>) -> Result<Pipeline, PipelineError> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(1);
            PipelineError::Syntax {
                file: file.into(),
                line,
                reason: e.message().split_whitespace().collect::<Vec<_>>().join(" "),
            }
        })?;
        Pipeline::from_defs_in(doc.stage, root)
    }

    /// Validates definitions and orders them.
    pub fn from_defs(defs: BTreeMap<String, StageDef>) -> Result<Pipeline, PipelineError> {
        Pipeline::from_defs_in(defs, None)
    }

    fn from_defs_in(
        defs: BTreeMap<String, StageDef>,
        root: Option<&Path>,
    ) -> Result<Pipeline, PipelineError> {
        let mut stages = BTreeMap::new();
        for (name, def) in defs {
            check_name(&name)?;
            if def.cmd.is_empty() || def.cmd[0].is_empty() {
                return Err(PipelineError::NoCommand { stage: name });
            }
            let paths = |list: &[String]| -> Result<Vec<RelPath>, PipelineError> {
                list.iter().map(|p| rel(&name, p)).collect()
            };
            let wdir = match def.wdir.trim_end_matches('/') {
                "" | "." => None,
                w => Some(rel(&name, w)?),
            };
            let stage = Stage {
                inputs: paths(&def.inputs)?,
                outputs: paths(&def.outputs)?,
                params: def
                    .params
                    .iter()
                    .map(|p| stage_params(&name, p, root))
                    .collect::<Result<_, _>>()?,
                metrics: paths(&def.metrics)?,
                cmd: def.cmd,
                wdir,
                after: Vec::new(),
                name: name.clone(),
            };
            for o in &stage.outputs {
                if let Some(i) = stage.inputs.iter().find(|i| o.is_within(i) || i.is_within(o)) {
                    return Err(PipelineError::OutputInInput {
                        stage: name,
                        output: o.to_string(),
                        input: i.to_string(),
                    });
                }
            }
            stages.insert(name, stage);
        }
        // who writes what
        let mut writers: Vec<(&RelPath, &str)> = Vec::new();
        for s in stages.values() {
            for o in &s.outputs {
                if let Some((_, other)) = writers.iter().find(|(p, _)| o.is_within(p) || p.is_within(o)) {
                    return Err(PipelineError::TwoWriters {
                        first: other.to_string(),
                        second: s.name.clone(),
                        path: o.to_string(),
                    });
                }
                writers.push((o, &s.name));
            }
        }
        let mut after: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in stages.values() {
            let mut deps = BTreeSet::new();
            for i in &s.inputs {
                for (o, w) in &writers {
                    if *w != s.name && (i.is_within(o) || o.is_within(i)) {
                        deps.insert(w.to_string());
                    }
                }
            }
            after.insert(s.name.clone(), deps.into_iter().collect());
        }
        for (name, deps) in &after {
            stages.get_mut(name).expect("same names").after = deps.clone();
        }
        let order = topo_order(&after)?;
        Ok(Pipeline {
            stages: order
                .into_iter()
                .map(|n| stages.remove(&n).expect("same names"))
                .collect(),
        })
    }

    /// The stage named `name`.
    pub fn get(&self, name: &str) -> Result<&Stage, PipelineError> {
        self.stages
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| PipelineError::UnknownStage { name: name.into() })
    }

    /// The named stages and every stage upstream of them, in dependency order.
    pub fn with_upstream(&self, names: &[String]) -> Result<BTreeSet<String>, PipelineError> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<String> = Vec::new();
        for n in names {
            todo.push(self.get(n)?.name.clone());
        }
        while let Some(n) = todo.pop() {
            if out.insert(n.clone()) {
                todo.extend(self.get(&n)?.after.iter().cloned());
            }
        }
        Ok(out)
    }
}

fn rel(stage: &str, p: &str) -> Result<RelPath, PipelineError> {
    let outside = || PipelineError::Outside {
        stage: stage.into(),
        path: p.into(),
    };
    let trimmed = p.trim_end_matches('/');
    let trimmed = trimmed.strip_prefix("./").unwrap_or(trimmed);
    if trimmed.starts_with('/') || trimmed.split('/').any(|c| c == "..") {
        return Err(outside());
    }
    RelPath::new(trimmed).map_err(|_| outside())
}

/// A params entry: `FILE` or `FILE:KEY,KEY` (split as `mlv run -p` splits it).
fn stage_params(stage: &str, p: &str, root: Option<&Path>) -> Result<StageParams, PipelineError> {
    let exists = |f: &str| root.is_some_and(|r| r.join(f).exists());
    let (file, keys) = crate::lineage::values::split_params_arg(p, exists);
    Ok(StageParams {
        file: rel(stage, &file)?,
        keys,
    })
}

/// Kahn's algorithm, smallest name first; on a cycle, names one.
fn topo_order(after: &BTreeMap<String, Vec<String>>) -> Result<Vec<String>, PipelineError> {
    let mut pending: BTreeMap<&str, usize> = after.iter().map(|(n, d)| (n.as_str(), d.len())).collect();
    let mut ready: BTreeSet<&str> = pending
        .iter()
        .filter(|(_, c)| **c == 0)
        .map(|(n, _)| *n)
        .collect();
    let mut order = Vec::new();
    while let Some(n) = ready.pop_first() {
        pending.remove(n);
        order.push(n.to_string());
        for (m, deps) in after {
            if deps.iter().any(|d| d == n) {
                if let Some(c) = pending.get_mut(m.as_str()) {
                    *c -= 1;
                    if *c == 0 {
                        ready.insert(m);
                    }
                }
            }
        }
    }
    if pending.is_empty() {
        return Ok(order);
    }
    // walk back along dependencies from a stuck stage until a stage repeats
    let mut path: Vec<String> = vec![pending.keys().next().expect("not empty").to_string()];
    loop {
        let cur = path.last().expect("not empty");
        let next = after[cur]
            .iter()
            .find(|d| pending.contains_key(d.as_str()))
            .expect("a stuck stage waits on a stuck stage")
            .clone();
        if let Some(pos) = path.iter().position(|p| *p == next) {
            let mut cycle: Vec<String> = path[pos..].to_vec();
            cycle.reverse();
            cycle.insert(0, next);
            return Err(PipelineError::Cycle { stages: cycle });
        }
        path.push(next);
    }
}

/// Adds or replaces stage `name` in `mlv.toml`, keeping comments and the other stages, and
/// checks the pipeline is still valid before writing. Returns whether the stage existed.
pub fn save_stage(root: &Path, name: &str, def: &StageDef) -> Result<bool, PipelineError> {
    check_name(name)?;
    let path = pipeline_path(root);
    let text = crate::fs::read_to_string_or_empty(&path)?;
    Pipeline::parse_in(&text, PIPELINE_FILE, Some(root))?;
    let mut doc: toml_edit::DocumentMut =
        text.parse()
            .map_err(|e: toml_edit::TomlError| PipelineError::Syntax {
                file: PIPELINE_FILE.into(),
                line: 1,
                reason: e.to_string(),
            })?;
    if !doc.contains_key("stage") {
        let mut t = toml_edit::Table::new();
        t.set_implicit(true);
        doc.insert("stage", toml_edit::Item::Table(t));
    }
    let stages = doc["stage"].as_table_mut().ok_or_else(|| PipelineError::Syntax {
        file: PIPELINE_FILE.into(),
        line: 1,
        reason: "`stage` must be a table".into(),
    })?;
    let existed = stages.contains_key(name);
    let table = stages
        .entry(name)
        .or_insert(toml_edit::Item::Table(toml_edit::Table::new()));
    let table = table.as_table_mut().ok_or_else(|| PipelineError::Syntax {
        file: PIPELINE_FILE.into(),
        line: 1,
        reason: format!("`stage.{name}` must be a table"),
    })?;
    let list = |v: &[String]| {
        let mut a = toml_edit::Array::new();
        for s in v {
            a.push(s.as_str());
        }
        toml_edit::value(a)
    };
    table["cmd"] = list(&def.cmd);
    table["wdir"] = toml_edit::value(def.wdir.as_str());
    for (key, v) in [
        ("inputs", &def.inputs),
        ("outputs", &def.outputs),
        ("params", &def.params),
        ("metrics", &def.metrics),
    ] {
        match v.is_empty() {
            true => {
                table.remove(key);
            }
            false => table[key] = list(v),
        }
    }
    let new = doc.to_string();
    Pipeline::parse_in(&new, PIPELINE_FILE, Some(root))?;
    write_atomic_in(&path, new.as_bytes(), &root.join(".mlv").join("tmp"))?;
    ensure_union_merge(root)?;
    Ok(existed)
}

/// Adds [`GITATTRIBUTES_LINE`] to the root `.gitattributes` if it is not there; returns
/// whether it was added.
pub fn ensure_union_merge(root: &Path) -> Result<bool, PipelineError> {
    let attributes = RelPath::new(".gitattributes").expect("valid");
    Ok(crate::gitutil::add_ignore(root, &attributes, GITATTRIBUTES_LINE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_refuses() {
        let p = Pipeline::parse(
            "[stage.b]\ncmd=['x']\ninputs=['mid']\noutputs=['out']\n[stage.a]\ncmd=['x']\noutputs=['mid']\n",
            "mlv.toml",
        )
        .unwrap();
        let names: Vec<_> = p.stages.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let e = Pipeline::parse(
            "[stage.b]\ncmd=['x']\ninputs=['m1']\noutputs=['m2']\n[stage.a]\ncmd=['x']\ninputs=['m2']\noutputs=['m1']\n",
            "mlv.toml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("cycle"), "{e}");
        let e = Pipeline::parse("[stage.a]\ncmd=['x']\n\nbogus=1\n", "mlv.toml").unwrap_err();
        assert!(e.to_string().starts_with("mlv.toml:4:"), "{e}");
        let e = Pipeline::parse("[stage.a]\ncmd=['x']\noutputs=['../x']\n", "mlv.toml").unwrap_err();
        assert!(e.to_string().contains("outside"), "{e}");
    }

    #[test]
    fn params_entries_take_keys() {
        let text = "[stage.a]\ncmd=['x']\nparams=['p.yaml', 'q.yaml:train.lr, train.epochs', 'a:b.yaml']\n";
        let p = Pipeline::parse(text, "mlv.toml").unwrap();
        let got: Vec<(&str, Vec<&str>)> = p.stages[0]
            .params
            .iter()
            .map(|p| (p.file.as_str(), p.keys.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            got,
            [
                ("p.yaml", vec![]),
                ("q.yaml", vec!["train.lr", "train.epochs"]),
                ("a", vec!["b.yaml"]),
            ]
        );
        // a file whose name holds a `:` is whole when it exists
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a:b.yaml"), "k: 1\n").unwrap();
        std::fs::write(d.path().join("mlv.toml"), text).unwrap();
        let p = Pipeline::load(d.path()).unwrap();
        assert_eq!(p.stages[0].params[2].file.as_str(), "a:b.yaml");
        assert!(p.stages[0].params[2].keys.is_empty());
    }
}
