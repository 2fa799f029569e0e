//! DVC pipelines: `dvc.yaml` stages become stages of `mlv.toml`, and each stage of `dvc.lock`
//! becomes a lineage record (its outputs become pointers through the same planning as `.dvc`
//! outputs), so `mlv lineage show` and `mlv repro` work right after the import.
//!
//! Paths: DVC writes them relative to the stage's working directory (the `dvc.yaml`'s
//! directory joined with `wdir`); mlv writes every path relative to the work-tree root. A
//! `dvc.yaml` in a subdirectory gives stages named `DIR-NAME` (`/` in DIR becomes `-`) whose
//! working directory is that directory. Commands run through `sh -c`, as DVC runs them through
//! a shell; a list of commands is joined with `&&`. What mlv cannot express (foreach/matrix,
//! templating, frozen, always_changed, persist or `cache: false` outputs, plots, unknown keys,
//! names mlv refuses) is reported per stage and the stage is not converted; its `dvc.lock`
//! outputs are still imported and its record still written (without a stage name).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_norway::Value as Yaml;

use super::dvc_md5::{DvcMd5, Md5Kind};
use super::{md5_of, out_path, plan_out, skip, Plan, SkipKind, Skipped, Sources, Tree};
use crate::error::Error;
use crate::history::{artifact_of, git_artifact};
use crate::lineage::{Lineage, ParamsFile, Record};
use crate::pipeline::{check_name, save_stage, StageDef, PIPELINE_FILE};
use crate::relpath::RelPath;
use crate::repo::Repo;

/// The tag on every record `import-dvc` writes.
pub const RECORD_TAG: &str = "dvc-import";

/// What happened to one `dvc.yaml` stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageOutcome {
    /// Written to `mlv.toml` (or, in a dry run, would be).
    Added,
    /// `mlv.toml` already holds this very stage (a rerun).
    AlreadyThere,
}

/// One `dvc.yaml` stage converted.
#[derive(Debug, Serialize)]
pub struct StageConverted {
    /// The mlv stage name.
    pub name: String,
    /// The stage as DVC addresses it (`dvc.yaml:NAME`, `DIR/dvc.yaml:NAME`).
    pub dvc_stage: String,
    /// What happened.
    pub outcome: StageOutcome,
}

/// One `dvc.lock` stage turned into a lineage record.
#[derive(Debug, Serialize)]
pub struct RecordConverted {
    /// The stage as DVC addresses it.
    pub dvc_stage: String,
    /// The mlv stage the record belongs to (`null` when the stage was not converted).
    pub stage: Option<String>,
    /// The record's id (`null` in a dry run).
    pub id: Option<String>,
    /// Whether it was appended now (`false`: the same record was already there, or a dry run).
    pub written: bool,
    /// What the lock says that the workspace no longer holds (inputs, outputs, params): the
    /// record keeps the lock's view, so `mlv repro` runs the stage again, as `dvc repro` would.
    pub stale: Vec<String>,
}

/// A stage ready for `mlv.toml`.
struct StagePlan {
    name: String,
    dvc_stage: String,
    def: StageDef,
}

/// A `dvc.lock` stage ready to become a record.
struct LockPlan {
    dvc_stage: String,
    lock_file: RelPath,
    stage: Option<String>,
    cmd: Vec<String>,
    wdir: Option<RelPath>,
    deps: Vec<(RelPath, String)>,
    outs: Vec<(RelPath, String)>,
    /// Metrics files (git's, not pointers) with the md5 the lock recorded, and whether DVC
    /// cached (and git-ignored) them.
    metrics: Vec<(RelPath, String, bool)>,
    params: BTreeMap<String, serde_json::Value>,
    params_files: Vec<ParamsFile>,
    /// Problems found while reading the lock (kept with the record's `stale`).
    notes: Vec<String>,
    /// Which md5 the lock's entries hold (DVC 2.x wrote no `hash: md5`: CRLF hashed as LF).
    kind: Md5Kind,
}

/// The pipeline part of an import.
#[derive(Default)]
pub(super) struct PipelinePlan {
    stages: Vec<StagePlan>,
    records: Vec<LockPlan>,
    /// Every `dvc.lock` read.
    locks: Vec<RelPath>,
    /// Locks with a stage refused or left out by `PATH...`: kept, whatever else happens.
    partial_locks: BTreeSet<RelPath>,
    /// Inputs that are directories in git (not tracked by DVC), with the files git tracks in
    /// them: mlv's inputs are files, so a stage lists these files instead.
    git_dirs: BTreeMap<RelPath, Vec<RelPath>>,
}

/// The pipeline part of the report.
#[derive(Default)]
pub(super) struct PipelineDone {
    pub(super) stages: Vec<StageConverted>,
    pub(super) records: Vec<RecordConverted>,
    /// `dvc.lock` files fully converted (every output imported, every record there).
    pub(super) locks_done: Vec<RelPath>,
    pub(super) git_paths: Vec<String>,
}

/// Reads every `dvc.yaml`/`dvc.lock` in `files`: stages to convert, records to write, and
/// `dvc.lock` outputs to import (pushed to `plans`, planned exactly as `.dvc` outputs).
pub(super) fn plan(
    tree: &Tree,
    sources: &Sources,
    files: &[RelPath],
    only: &[RelPath],
    plans: &mut Vec<Plan>,
    skipped: &mut Vec<Skipped>,
) -> PipelinePlan {
    let mut out = PipelinePlan::default();
    let dirs: BTreeSet<Option<RelPath>> = files.iter().map(|f| f.parent()).collect();
    for dir in dirs {
        let file_in = |name: &str| match &dir {
            Some(d) => d.join(name).expect("a plain name"),
            None => RelPath::new(name).expect("a plain name"),
        };
        let yaml_file = file_in("dvc.yaml");
        let lock_file = file_in("dvc.lock");
        let yaml = files.contains(&yaml_file).then(|| read_yaml(tree, &yaml_file));
        let yaml = match yaml {
            Some(Ok(y)) => Some(y),
            Some(Err(reason)) => {
                skipped.push(skip(tree, &yaml_file, None, SkipKind::Refused, reason));
                None
            }
            None => None,
        };
        let mut stage_info = BTreeMap::new();
        if let Some(y) = &yaml {
            stage_info = plan_yaml(tree, dir.as_ref(), &yaml_file, y, only, &mut out, skipped);
        }
        if files.contains(&lock_file) {
            match read_yaml(tree, &lock_file) {
                Ok(l) => plan_lock(
                    tree,
                    sources,
                    dir.as_ref(),
                    &lock_file,
                    &l,
                    &stage_info,
                    only,
                    &mut out,
                    plans,
                    skipped,
                ),
                Err(reason) => skipped.push(skip(tree, &lock_file, None, SkipKind::Refused, reason)),
            }
        }
    }
    expand_git_dirs(tree, &mut out);
    out
}

/// A stage input that is a directory DVC does not track (source code in git, say) becomes the
/// files git tracks in it: mlv compares inputs file by file. A directory holding no file git
/// tracks stays as it is (mlv then reports it).
fn expand_git_dirs(tree: &Tree, pipe: &mut PipelinePlan) {
    let declared = declared_md5s(tree, pipe);
    let Ok(git) = git2::Repository::open(&tree.root) else {
        return;
    };
    let Ok(index) = git.index() else { return };
    let tracked: Vec<RelPath> = index
        .iter()
        .filter_map(|e| {
            std::str::from_utf8(&e.path)
                .ok()
                .and_then(|p| RelPath::new(p).ok())
        })
        .collect();
    for stage in &mut pipe.stages {
        let mut inputs = Vec::new();
        for i in std::mem::take(&mut stage.def.inputs) {
            let rel = RelPath::new(&i).expect("validated when converted");
            let by_dvc = declared.keys().any(|d| d.is_within(&rel) || rel.is_within(d));
            if by_dvc || !rel.to_path(&tree.root).is_dir() {
                inputs.push(i);
                continue;
            }
            let files: Vec<RelPath> = tracked.iter().filter(|t| t.is_within(&rel)).cloned().collect();
            if files.is_empty() {
                inputs.push(i);
                continue;
            }
            inputs.extend(files.iter().map(|f| f.to_string()));
            pipe.git_dirs.insert(rel, files);
        }
        stage.def.inputs = inputs;
    }
}

/// DVC's md5 of a directory (`….dir`), as DVC 3 computes it from the files in the workspace:
/// the md5 of `json.dumps(sorted [{"md5", "relpath"}], sort_keys=True)`. `None` when it cannot
/// be reproduced here (a link, a non-ASCII name, patterns in `.dvcignore`): the input then counts as
/// changed, so `mlv repro` reruns the stage rather than trusting a guess.
fn dvc_dir_md5(root: &std::path::Path, dir: &RelPath) -> Option<String> {
    // patterns in .dvcignore (`dvc init` writes one of comments only) would change the listing
    let ignore = std::fs::read_to_string(root.join(".dvcignore")).unwrap_or_default();
    if ignore
        .lines()
        .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        return None;
    }
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path(root)];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).ok()? {
            let e = e.ok()?;
            let t = e.file_type().ok()?;
            if t.is_dir() {
                todo.push(e.path());
            } else if t.is_file() {
                files.push(e.path());
            } else {
                return None;
            }
        }
    }
    let base = dir.to_path(root);
    let mut entries = Vec::new();
    for f in files {
        let rel = f.strip_prefix(&base).ok()?.to_str()?.to_string();
        if !rel.is_ascii() {
            return None;
        }
        let (md5, _) = md5_of(&f, Md5Kind::Plain)?;
        entries.push((rel, md5));
    }
    entries.sort();
    let items: Vec<String> = entries
        .iter()
        .map(|(rel, md5)| {
            format!(
                "{{\"md5\": \"{md5}\", \"relpath\": {}}}",
                serde_json::Value::from(rel.as_str())
            )
        })
        .collect();
    Some(format!(
        "{}.dir",
        DvcMd5::of(Md5Kind::Plain, format!("[{}]", items.join(", ")).as_bytes())
    ))
}

fn read_yaml(tree: &Tree, file: &RelPath) -> Result<Yaml, String> {
    let text =
        crate::fs::read_to_string_nofollow_or_empty(&file.to_path(&tree.root)).map_err(|e| e.to_string())?;
    serde_norway::from_str(&text).map_err(|e| format!("not valid YAML: {e}"))
}

/// What the lock step needs to know of a `dvc.yaml` stage.
#[derive(Default)]
struct StageInfo {
    /// The mlv stage, when converted.
    name: Option<String>,
    /// Outputs DVC does not cache (`cache: false`): not pointers.
    uncached: BTreeSet<RelPath>,
    /// Metrics files: tracked by git in mlv, never pointers.
    metrics: BTreeSet<RelPath>,
    /// Metrics files DVC caches (and git-ignores): they move to git.
    cached_metrics: BTreeSet<RelPath>,
    /// Outputs that name their own DVC remote (`remote: NAME`): read from it when needed.
    remotes: BTreeMap<RelPath, String>,
    wdir: Option<RelPath>,
    params_files: Vec<ParamsFile>,
}

/// `a/b/../c` resolved lexically below the root; `None` when it leaves it or is absolute.
fn rebase(base: &str, p: &str) -> Option<String> {
    if p.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in base.split('/').chain(p.split('/')) {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

fn yaml_str(v: &Yaml) -> Option<&str> {
    v.as_str()
}

/// A DVC command (a string, or a list run one after another) as mlv runs it.
fn command_of(v: Option<&Yaml>) -> Option<Vec<String>> {
    let line = match v? {
        Yaml::String(s) => s.clone(),
        Yaml::Sequence(items) => {
            let cmds: Option<Vec<&str>> = items.iter().map(yaml_str).collect();
            let cmds = cmds?;
            if cmds.is_empty() {
                return None;
            }
            cmds.join(" && ")
        }
        _ => return None,
    };
    (!line.trim().is_empty()).then(|| vec!["sh".to_string(), "-c".to_string(), line])
}

/// The mlv name of DVC stage `name` of the `dvc.yaml` in `dir`.
fn mlv_name(dir: Option<&RelPath>, name: &str) -> String {
    match dir {
        Some(d) => format!("{}-{name}", d.as_str().replace('/', "-")),
        None => name.to_string(),
    }
}

/// An entry of `outs`/`metrics`/`deps`: a path, or a one-key map of a path to its options.
fn entry(v: &Yaml) -> Option<(String, Option<&serde_norway::Mapping>)> {
    match v {
        Yaml::String(s) => Some((s.clone(), None)),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, opts) = m.iter().next()?;
            Some((k.as_str()?.to_string(), opts.as_mapping()))
        }
        _ => None,
    }
}

fn flag(opts: Option<&serde_norway::Mapping>, key: &str) -> Option<bool> {
    opts.and_then(|m| m.get(key)).and_then(Yaml::as_bool)
}

const STAGE_KEYS: &[&str] = &[
    "cmd",
    "wdir",
    "deps",
    "params",
    "outs",
    "metrics",
    "plots",
    "frozen",
    "always_changed",
    "desc",
    "meta",
    "vars",
    "foreach",
    "do",
    "matrix",
];

#[allow(clippy::too_many_arguments)]
fn plan_yaml(
    tree: &Tree,
    dir: Option<&RelPath>,
    file: &RelPath,
    yaml: &Yaml,
    only: &[RelPath],
    out: &mut PipelinePlan,
    skipped: &mut Vec<Skipped>,
) -> BTreeMap<String, StageInfo> {
    let mut info = BTreeMap::new();
    let shown = tree.display(file);
    let Some(top) = yaml.as_mapping() else {
        skipped.push(skip(
            tree,
            file,
            None,
            SkipKind::Refused,
            "not a DVC pipeline file (not a mapping)".into(),
        ));
        return info;
    };
    for (k, _) in top {
        let k = k.as_str().unwrap_or("?");
        if !matches!(k, "stages" | "vars") {
            skipped.push(skip(
                tree,
                file,
                None,
                SkipKind::Unsupported,
                format!("top-level `{k}` is not converted (mlv has no such section)"),
            ));
        }
    }
    let Some(stages) = top.get("stages").and_then(Yaml::as_mapping) else {
        return info;
    };
    let selected = only.is_empty() || only.iter().any(|p| file.is_within(p));
    for (name, body) in stages {
        let Some(name) = name.as_str() else { continue };
        let dvc_stage = format!("{shown}:{name}");
        let mlv = mlv_name(dir, name);
        let mut si = StageInfo::default();
        let result = convert_stage(tree, dir, &mlv, body, &mut si);
        let touches = |si: &StageInfo, def: Option<&StageDef>| {
            selected
                || def.is_some_and(|d| {
                    d.outputs
                        .iter()
                        .chain(&d.metrics)
                        .any(|o| RelPath::new(o).is_ok_and(|o| only.iter().any(|p| o.is_within(p))))
                })
                || si.uncached.iter().any(|o| only.iter().any(|p| o.is_within(p)))
        };
        match result {
            Ok(def) => {
                if touches(&si, Some(&def)) {
                    si.name = Some(mlv.clone());
                    out.stages.push(StagePlan {
                        name: mlv,
                        dvc_stage,
                        def,
                    });
                }
            }
            Err(reason) => {
                if touches(&si, None) {
                    skipped.push(skip(
                        tree,
                        file,
                        None,
                        SkipKind::Unsupported,
                        format!("stage {name}: {reason}; not converted (its dvc.lock outputs and record still are)"),
                    ));
                }
            }
        }
        info.insert(name.to_string(), si);
    }
    info
}

/// One `dvc.yaml` stage as an mlv stage, or why mlv cannot express it. Fills `si` as far as
/// it gets (which outputs are not cached, which are metrics).
fn convert_stage(
    tree: &Tree,
    dir: Option<&RelPath>,
    mlv: &str,
    body: &Yaml,
    si: &mut StageInfo,
) -> Result<StageDef, String> {
    let Some(m) = body.as_mapping() else {
        return Err("not a mapping".into());
    };
    for k in m.keys() {
        let k = k.as_str().unwrap_or("?");
        if !STAGE_KEYS.contains(&k) {
            return Err(format!("unknown key `{k}`"));
        }
    }
    let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
    if has("foreach") || has("matrix") {
        return Err("`foreach`/`matrix` stages are not supported by mlv (write one stage per item)".into());
    }
    let base = rebase(
        dir.map(RelPath::as_str).unwrap_or(""),
        m.get("wdir").and_then(Yaml::as_str).unwrap_or("."),
    )
    .ok_or("`wdir` leaves the repository")?;
    let wdir = (!base.is_empty())
        .then(|| RelPath::new(&base).map_err(|e| format!("`wdir`: {e}")))
        .transpose()?;
    si.wdir = wdir.clone();
    let path = |p: &str| -> Result<RelPath, String> {
        let r = rebase(&base, p)
            .ok_or_else(|| format!("`{}` leaves the repository", crate::relpath::printable(p)))?;
        out_path(tree, None, &r).map_err(|e| format!("`{}`: {e}", crate::relpath::printable(p)))
    };
    let list = |k: &str| m.get(k).and_then(Yaml::as_sequence).cloned().unwrap_or_default();
    let mut outputs = Vec::new();
    let mut problems = Vec::new();
    for o in list("outs") {
        let (p, opts) = entry(&o).ok_or("an output that is not a path")?;
        let rel = path(&p)?;
        if flag(opts, "cache") == Some(false) {
            problems.push(format!(
                "output {rel} has `cache: false` (mlv tracks every output)"
            ));
            si.uncached.insert(rel.clone());
        }
        if flag(opts, "persist") == Some(true) {
            problems.push(format!(
                "output {rel} is `persist` (mlv removes outputs before a run)"
            ));
        }
        if let Some(r) = opts.and_then(|m| m.get("remote")).and_then(Yaml::as_str) {
            si.remotes.insert(rel.clone(), r.to_string());
        }
        outputs.push(rel.to_string());
    }
    let mut metrics = Vec::new();
    for o in list("metrics") {
        let (p, opts) = entry(&o).ok_or("a metrics entry that is not a path")?;
        let rel = path(&p)?;
        if flag(opts, "cache") != Some(false) {
            si.cached_metrics.insert(rel.clone());
        }
        si.metrics.insert(rel.clone());
        metrics.push(rel.to_string());
    }
    let mut inputs = Vec::new();
    for d in list("deps") {
        let p = d.as_str().ok_or("a dependency that is not a path")?;
        inputs.push(path(p)?.to_string());
    }
    // params: bare keys are in params.yaml of the working directory; `FILE:` maps name a file
    let mut params = Vec::new();
    let default_file = path("params.yaml")?;
    let mut default_keys = Vec::new();
    for p in list("params") {
        match &p {
            Yaml::String(k) => default_keys.push(k.clone()),
            Yaml::Mapping(pm) => {
                for (f, keys) in pm {
                    let f = f.as_str().ok_or("a params file that is not a path")?;
                    let rel = path(f)?;
                    let keys: Vec<String> = match keys {
                        Yaml::Null => Vec::new(),
                        Yaml::Sequence(ks) => {
                            ks.iter().filter_map(|k| k.as_str().map(str::to_string)).collect()
                        }
                        _ => return Err(format!("params of {rel}: not a list of keys")),
                    };
                    si.params_files.push(ParamsFile {
                        path: rel.to_string(),
                        keys: keys.clone(),
                    });
                    params.push(match keys.is_empty() {
                        true => rel.to_string(),
                        false => format!("{rel}:{}", keys.join(",")),
                    });
                }
            }
            _ => return Err("a params entry that is neither a key nor a file".into()),
        }
    }
    if !default_keys.is_empty() {
        si.params_files.insert(
            0,
            ParamsFile {
                path: default_file.to_string(),
                keys: default_keys.clone(),
            },
        );
        params.insert(0, format!("{default_file}:{}", default_keys.join(",")));
    }
    if serde_norway::to_string(body).is_ok_and(|t| t.contains("${")) || has("vars") {
        problems.push("uses `vars`/`${...}` templating (mlv.toml has none)".into());
    }
    if m.get("frozen").and_then(Yaml::as_bool) == Some(true) {
        problems.push("is `frozen` (mlv repro has no frozen stages)".into());
    }
    if m.get("always_changed").and_then(Yaml::as_bool) == Some(true) {
        problems.push("is `always_changed` (mlv reruns a stage only when something changed)".into());
    }
    if !list("plots").is_empty() {
        problems.push("has `plots` (mlv has no plots)".into());
    }
    let cmd = command_of(m.get("cmd")).ok_or("no command")?;
    if check_name(mlv).is_err() {
        problems.push(format!(
            "the name `{mlv}` is not a valid mlv stage name (letters, digits, `-`, `_`)"
        ));
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    Ok(StageDef {
        cmd,
        wdir: wdir.map(|w| w.to_string()).unwrap_or_else(|| ".".into()),
        inputs,
        outputs,
        params,
        metrics,
    })
}

#[allow(clippy::too_many_arguments)]
fn plan_lock(
    tree: &Tree,
    sources: &Sources,
    dir: Option<&RelPath>,
    file: &RelPath,
    lock: &Yaml,
    info: &BTreeMap<String, StageInfo>,
    only: &[RelPath],
    out: &mut PipelinePlan,
    plans: &mut Vec<Plan>,
    skipped: &mut Vec<Skipped>,
) {
    let refuse = |reason: String| skip(tree, file, None, SkipKind::Refused, reason);
    let schema = lock.get("schema").and_then(Yaml::as_str);
    if schema != Some("2.0") {
        skipped.push(refuse(format!(
            "dvc.lock schema {} is not supported (DVC 2.x and 3.x write '2.0'; run `dvc repro` with a recent DVC)",
            schema.unwrap_or("(none)")
        )));
        return;
    }
    out.locks.push(file.clone());
    let Some(stages) = lock.get("stages").and_then(Yaml::as_mapping) else {
        return;
    };
    let yaml_shown = tree.display(&match dir {
        Some(d) => d.join("dvc.yaml").expect("a plain name"),
        None => RelPath::new("dvc.yaml").expect("a plain name"),
    });
    for (name, body) in stages {
        let Some(name) = name.as_str() else { continue };
        let dvc_stage = format!("{yaml_shown}:{name}");
        let si = info.get(name);
        let wdir_str = match si {
            Some(si) => si.wdir.as_ref().map(|w| w.to_string()).unwrap_or_default(),
            None => dir.map(|d| d.to_string()).unwrap_or_default(),
        };
        let mut lp = LockPlan {
            dvc_stage: dvc_stage.clone(),
            lock_file: file.clone(),
            stage: si.and_then(|s| s.name.clone()),
            cmd: command_of(body.get("cmd")).unwrap_or_default(),
            wdir: si.and_then(|s| s.wdir.clone()).or_else(|| dir.cloned()),
            deps: Vec::new(),
            outs: Vec::new(),
            metrics: Vec::new(),
            params: BTreeMap::new(),
            params_files: si.map(|s| s.params_files.clone()).unwrap_or_default(),
            notes: Vec::new(),
            kind: Md5Kind::of(
                ["outs", "deps"]
                    .iter()
                    .filter_map(|k| body.get(*k).and_then(Yaml::as_sequence))
                    .flatten()
                    .find_map(|e| e.get("hash").and_then(Yaml::as_str)),
            ),
        };
        let mut bad = None;
        let mut entries = |key: &str| -> Vec<(RelPath, Option<String>, bool)> {
            let mut v = Vec::new();
            for e in body
                .get(key)
                .and_then(Yaml::as_sequence)
                .cloned()
                .unwrap_or_default()
            {
                let Some(p) = e.get("path").and_then(Yaml::as_str) else {
                    bad = Some(format!("stage {name}: a {key} entry without a path"));
                    continue;
                };
                let rel = rebase(&wdir_str, p)
                    .ok_or_else(|| "leaves the repository; refused".to_string())
                    .and_then(|r| out_path(tree, None, &r));
                match rel {
                    Ok(rel) => v.push((
                        rel,
                        e.get("md5").and_then(Yaml::as_str).map(str::to_string),
                        e.get("isexec").and_then(Yaml::as_bool) == Some(true),
                    )),
                    Err(reason) => {
                        bad = Some(format!(
                            "stage {name}: {key} `{}`: {reason}",
                            crate::relpath::printable(p)
                        ))
                    }
                }
            }
            v
        };
        let deps = entries("deps");
        let outs = entries("outs");
        if let Some(reason) = bad {
            skipped.push(refuse(reason));
            out.partial_locks.insert(file.clone());
            continue;
        }
        if !only.is_empty()
            && !only.iter().any(|p| file.is_within(p))
            && !outs.iter().any(|(o, _, _)| only.iter().any(|p| o.is_within(p)))
        {
            out.partial_locks.insert(file.clone());
            continue;
        }
        for (d, md5) in deps.into_iter().map(|(d, m, _)| (d, m)) {
            match md5 {
                Some(m) => lp.deps.push((d, m)),
                None => lp.notes.push(format!("input {d}: no md5 in dvc.lock")),
            }
        }
        for (o, md5, exec) in outs {
            let Some(md5) = md5 else {
                lp.notes.push(format!("output {o}: no md5 in dvc.lock"));
                continue;
            };
            if si.is_some_and(|s| s.metrics.contains(&o)) {
                let cached = si.is_some_and(|s| s.cached_metrics.contains(&o));
                lp.metrics.push((o, md5, cached));
                continue;
            }
            if si.is_some_and(|s| s.uncached.contains(&o)) {
                skipped.push(skip(
                    tree,
                    file,
                    Some(&o),
                    SkipKind::Unsupported,
                    "`cache: false`: DVC does not keep these bytes; track it with git or `mlv add`".into(),
                ));
                continue;
            }
            // the output's own DVC remote, else DVC's default (or --remote), when the bytes
            // are only there
            let remote = si.and_then(|s| s.remotes.get(&o)).map(String::as_str);
            match plan_out(tree, (sources, remote), file, o.clone(), (&md5, lp.kind), exec) {
                Ok(p) => plans.push(p),
                Err(s) => skipped.push(s),
            }
            lp.outs.push((o, md5));
        }
        if let Some(params) = body.get("params").and_then(Yaml::as_mapping) {
            for (_, values) in params {
                for (k, v) in values.as_mapping().into_iter().flatten() {
                    let Some(k) = k.as_str() else { continue };
                    match serde_json::to_value(v) {
                        Ok(v) => flatten(k.to_string(), v, &mut lp.params),
                        Err(e) => lp.notes.push(format!("param {k}: {e}")),
                    }
                }
            }
        }
        out.records.push(lp);
    }
}

/// Dotted names for nested values, as mlv flattens a params file (lists stay values).
fn flatten(prefix: String, v: serde_json::Value, out: &mut BTreeMap<String, serde_json::Value>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(format!("{prefix}.{k}"), v, out);
            }
        }
        v => {
            out.insert(prefix, v);
        }
    }
}

/// Stages and records a dry run would write; a name conflict with `mlv.toml` goes to `skipped`.
pub(super) fn dry_run(
    pipe: &PipelinePlan,
    root: &std::path::Path,
    skipped: &mut Vec<Skipped>,
) -> PipelineDone {
    let existing = existing_defs(root);
    for s in &pipe.stages {
        if existing.get(&s.name).is_some_and(|d| *d != s.def) {
            skipped.push(conflict(s));
        }
    }
    let stages = pipe
        .stages
        .iter()
        .filter(|s| existing.get(&s.name).is_none_or(|d| *d == s.def))
        .map(|s| StageConverted {
            name: s.name.clone(),
            dvc_stage: s.dvc_stage.clone(),
            outcome: match existing.contains_key(&s.name) {
                true => StageOutcome::AlreadyThere,
                false => StageOutcome::Added,
            },
        })
        .collect();
    let records = pipe
        .records
        .iter()
        .map(|r| RecordConverted {
            dvc_stage: r.dvc_stage.clone(),
            stage: r.stage.clone(),
            id: None,
            written: false,
            stale: r.notes.clone(),
        })
        .collect();
    PipelineDone {
        stages,
        records,
        ..PipelineDone::default()
    }
}

/// The stages `mlv.toml` defines now (unreadable: none; `save_stage` reports the error).
fn existing_defs(root: &std::path::Path) -> BTreeMap<String, StageDef> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        stage: BTreeMap<String, StageDef>,
    }
    let text = std::fs::read_to_string(crate::pipeline::pipeline_path(root)).unwrap_or_default();
    toml::from_str::<Doc>(&text).map(|d| d.stage).unwrap_or_default()
}

/// Writes the stages to `mlv.toml` and the records to the lineage file, after the outputs
/// were imported (a record names an output only if its pointer holds the lock's bytes).
/// A stage `mlv.toml` already has with another definition, or that mlv refuses, is reported
/// in `skipped`.
pub(super) fn convert(
    repo: &Repo,
    pipe: &PipelinePlan,
    keep_dvc: bool,
    skipped: &mut Vec<Skipped>,
) -> Result<PipelineDone, Error> {
    let mut done = PipelineDone::default();
    let refused = save_stages(repo, pipe, skipped, &mut done)?;
    let incomplete = write_records(repo, pipe, keep_dvc, &refused, &mut done)?;
    done.locks_done = pipe
        .locks
        .iter()
        .filter(|l| !incomplete.contains(*l) && !pipe.partial_locks.contains(*l))
        .cloned()
        .collect();
    done.git_paths.sort();
    done.git_paths.dedup();
    Ok(done)
}

/// Saves each planned stage in `mlv.toml`; returns the names not saved (a conflict, or a
/// stage mlv refuses), reported in `skipped`.
fn save_stages(
    repo: &Repo,
    pipe: &PipelinePlan,
    skipped: &mut Vec<Skipped>,
    done: &mut PipelineDone,
) -> Result<BTreeSet<String>, Error> {
    let mut refused = BTreeSet::new();
    for s in &pipe.stages {
        let existing = existing_defs(&repo.root);
        let converted = |outcome| StageConverted {
            name: s.name.clone(),
            dvc_stage: s.dvc_stage.clone(),
            outcome,
        };
        match existing.get(&s.name) {
            Some(d) if *d == s.def => done.stages.push(converted(StageOutcome::AlreadyThere)),
            Some(_) => {
                refused.insert(s.name.clone());
                skipped.push(conflict(s));
            }
            None => match save_stage(&repo.root, &s.name, &s.def) {
                Ok(_) => done.stages.push(converted(StageOutcome::Added)),
                Err(e) => {
                    refused.insert(s.name.clone());
                    skipped.push(Skipped {
                        dvc_file: yaml_of(s),
                        path: None,
                        kind: SkipKind::Unsupported,
                        reason: format!("stage {}: mlv refuses it: {e}; not converted", s.name),
                    });
                }
            },
        }
    }
    if done.stages.iter().any(|s| s.outcome == StageOutcome::Added) {
        // save_stage wrote both (the union merge line for mlv.toml)
        let rels = [
            RelPath::new(PIPELINE_FILE).expect("valid"),
            RelPath::new(".gitattributes").expect("valid"),
        ];
        if repo.config.core.autostage {
            crate::gitutil::stage(&repo.git, &repo.root, &rels)?;
        }
        done.git_paths.extend(rels.iter().map(|r| repo.display(r)));
    }
    Ok(refused)
}

/// What the workspace holds now, to judge a lock entry by: the pointers and the md5 DVC
/// declares for each path it tracks.
struct Now {
    pointers: Vec<crate::pointer::Pointer>,
    declared: BTreeMap<RelPath, String>,
}

impl Now {
    /// The pointer of `path` when it holds the bytes DVC recorded as `md5`.
    fn pointer(&self, path: &RelPath, md5: &str) -> Option<&crate::pointer::Pointer> {
        self.pointers
            .iter()
            .find(|p| p.data == *path)
            .filter(|_| self.declared.get(path).map(String::as_str) == Some(md5))
    }
}

/// Appends one record per `dvc.lock` stage (none when the same one is there); returns the
/// locks with an output that was not imported.
fn write_records(
    repo: &Repo,
    pipe: &PipelinePlan,
    keep_dvc: bool,
    refused: &BTreeSet<String>,
    done: &mut PipelineDone,
) -> Result<BTreeSet<RelPath>, Error> {
    let now = Now {
        pointers: repo.pointers()?,
        declared: declared_md5s(&Tree::of(repo), pipe),
    };
    let lineage = Lineage::load(&repo.root)?;
    let mut incomplete = BTreeSet::new();
    for r in &pipe.records {
        let mut stale = r.notes.clone();
        let inputs = inputs_of(repo, pipe, &now, r, &mut stale)?;
        let mut outputs = Vec::new();
        for (o, md5) in &r.outs {
            match now.pointer(o, md5) {
                Some(p) => outputs.push(artifact_of(p)),
                None => {
                    stale.push(format!("output {} not imported", repo.display(o)));
                    incomplete.insert(r.lock_file.clone());
                }
            }
        }
        let mut record = Record {
            version: 0,
            id: String::new(),
            time: String::new(),
            author: None,
            commit: None,
            dirty: false,
            command: (!r.cmd.is_empty()).then(|| r.cmd.clone()),
            inputs,
            outputs,
            params: r.params.clone(),
            metrics: BTreeMap::new(),
            tags: vec![RECORD_TAG.to_string()],
            stage: r.stage.clone().filter(|s| !refused.contains(s)),
            metrics_files: Vec::new(),
            params_files: r.params_files.clone(),
            wdir: r.wdir.as_ref().map(|w| w.to_string()),
            metrics_digests: BTreeMap::new(),
            reused: None,
            signature: None,
        };
        add_metrics(repo, r, keep_dvc, &mut record, &mut stale, &mut done.git_paths)?;
        // a rerun appends nothing: the same run from the same lock is already recorded
        let same = lineage.records.iter().rev().find(|old| {
            old.tags.iter().any(|t| t == RECORD_TAG)
                && old.stage == record.stage
                && old.command == record.command
                && old.inputs == record.inputs
                && old.outputs == record.outputs
                && old.params == record.params
                && old.wdir == record.wdir
        });
        let stage = record.stage.clone();
        let (id, written) = match same {
            Some(old) => (old.id.clone(), false),
            None => {
                let rep = crate::ops::lineage::append_imported(repo, record)?;
                done.git_paths.extend(rep.git_paths);
                (rep.record.id, true)
            }
        };
        done.records.push(RecordConverted {
            dvc_stage: r.dvc_stage.clone(),
            stage,
            id: Some(id),
            written,
            stale,
        });
    }
    Ok(incomplete)
}

/// The inputs of a lock stage that the workspace still holds as the lock recorded them, by
/// their new digests; the others go to `stale` (the record then leaves them out, so `mlv
/// repro` runs the stage again, as `dvc repro` would).
fn inputs_of(
    repo: &Repo,
    pipe: &PipelinePlan,
    now: &Now,
    r: &LockPlan,
    stale: &mut Vec<String>,
) -> Result<Vec<crate::lineage::Artifact>, Error> {
    let read = |f: &RelPath| {
        let abs = f.to_path(&repo.root);
        std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))
    };
    let mut inputs = Vec::new();
    for (d, md5) in &r.deps {
        if let Some(p) = now.pointer(d, md5) {
            inputs.push(artifact_of(p));
            continue;
        }
        let abs = d.to_path(&repo.root);
        let shown = repo.display(d);
        let changed = format!("input {shown} changed since dvc.lock");
        if now.pointers.iter().any(|p| p.data == *d) || now.declared.contains_key(d) {
            stale.push(changed);
        } else if abs.is_file() {
            match md5_of(&abs, r.kind) {
                Some((got, _)) if got == *md5 => inputs.push(git_artifact(d, &read(d)?)),
                _ => stale.push(changed),
            }
        } else if let Some(files) = pipe.git_dirs.get(d) {
            match dvc_dir_md5(&repo.root, d) {
                Some(got) if got == *md5 => {
                    for f in files {
                        inputs.push(git_artifact(f, &read(f)?));
                    }
                }
                _ => stale.push(changed),
            }
        } else if abs.is_dir() {
            stale.push(format!(
                "input {shown} is a directory not tracked by DVC (mlv's inputs are files in git or data tracked by mlv)"
            ));
        } else {
            stale.push(format!("input {shown} is missing"));
        }
    }
    Ok(inputs)
}

/// The metrics of a lock stage into `record` (values, files, cached copies for the run cache)
/// when the workspace holds what the lock recorded. mlv reads metrics from files in git: a
/// file DVC cached loses DVC's ignore line (unless both tools stay) and is one to commit.
fn add_metrics(
    repo: &Repo,
    r: &LockPlan,
    keep_dvc: bool,
    record: &mut Record,
    stale: &mut Vec<String>,
    git_paths: &mut Vec<String>,
) -> Result<(), Error> {
    for (m, md5, cached) in &r.metrics {
        let abs = m.to_path(&repo.root);
        if *cached && !keep_dvc && abs.is_file() {
            let (ignore_file, _) = crate::gitutil::ignore_entry(m).expect("a valid work-tree path");
            if crate::gitutil::remove_ignore(&repo.root, &ignore_file, &format!("/{}", m.file_name()))? {
                git_paths.push(repo.display(&ignore_file));
            }
            git_paths.push(repo.display(m));
        }
        match md5_of(&abs, r.kind) {
            Some((got, _)) if got == *md5 => {
                if let Ok(values) = crate::lineage::values::metrics_file(&abs, &repo.display(m)) {
                    record.metrics.extend(values);
                }
                let bytes =
                    std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))?;
                record.metrics_files.push(m.to_string());
                record
                    .metrics_digests
                    .insert(m.to_string(), repo.cache.insert_bytes(&bytes)?);
            }
            _ => stale.push(format!("metrics {} changed since dvc.lock", repo.display(m))),
        }
    }
    Ok(())
}

/// The `dvc.yaml` a stage comes from, as displayed.
fn yaml_of(s: &StagePlan) -> String {
    s.dvc_stage
        .rsplit_once(':')
        .map(|(f, _)| f.to_string())
        .unwrap_or_default()
}

/// A stage `mlv.toml` already has under another definition.
fn conflict(s: &StagePlan) -> Skipped {
    Skipped {
        dvc_file: yaml_of(s),
        path: None,
        kind: SkipKind::Conflict,
        reason: format!(
            "stage {}: {PIPELINE_FILE} already has a different stage of that name; left as it is",
            s.name
        ),
    }
}

/// The md5 DVC declares for each path it tracks (`.dvc` files and `dvc.lock` outputs): the
/// import wrote a pointer with exactly these bytes, or none.
fn declared_md5s(tree: &Tree, pipe: &PipelinePlan) -> BTreeMap<RelPath, String> {
    let mut out = BTreeMap::new();
    let mut dvc_files = Vec::new();
    let mut pipeline_files = Vec::new();
    if super::find_dvc_files(&tree.root, &tree.root, &mut dvc_files, &mut pipeline_files).is_ok() {
        for f in &dvc_files {
            let Ok(text) = crate::fs::read_to_string_nofollow_or_empty(&f.to_path(&tree.root)) else {
                continue;
            };
            let Ok(parsed) = serde_norway::from_str::<super::DvcFile>(&text) else {
                continue;
            };
            for o in &parsed.outs {
                if let (Ok(data), Some(md5)) = (out_path(tree, f.parent().as_ref(), &o.path), &o.md5) {
                    out.insert(data, md5.clone());
                }
            }
        }
    }
    for r in &pipe.records {
        for (o, md5) in &r.outs {
            out.insert(o.clone(), md5.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_rebase_below_the_root_only() {
        assert_eq!(rebase("sub", "../data.csv").as_deref(), Some("data.csv"));
        assert_eq!(rebase("a/b", "./c/d").as_deref(), Some("a/b/c/d"));
        assert_eq!(rebase("", "x").as_deref(), Some("x"));
        assert_eq!(rebase("a", "../../x"), None);
        assert_eq!(rebase("", "/etc/passwd"), None);
    }

    #[test]
    fn commands_run_through_a_shell() {
        let one: Yaml = serde_norway::from_str("python train.py > out").unwrap();
        assert_eq!(
            command_of(Some(&one)).unwrap(),
            ["sh", "-c", "python train.py > out"]
        );
        let two: Yaml = serde_norway::from_str("[make a, make b]").unwrap();
        assert_eq!(command_of(Some(&two)).unwrap(), ["sh", "-c", "make a && make b"]);
        assert!(command_of(Some(&Yaml::String(" ".into()))).is_none());
        assert!(command_of(None).is_none());
    }

    fn stage(dir: Option<&str>, yaml: &str) -> (Result<StageDef, String>, StageInfo) {
        let tmp = tempfile::tempdir().unwrap();
        let tree = Tree {
            root: tmp.path().to_path_buf(),
            cwd: tmp.path().to_path_buf(),
        };
        let dir = dir.map(|d| RelPath::new(d).unwrap());
        let body: Yaml = serde_norway::from_str(yaml).unwrap();
        let mut si = StageInfo::default();
        let def = convert_stage(&tree, dir.as_ref(), &mlv_name(dir.as_ref(), "s"), &body, &mut si);
        (def, si)
    }

    #[test]
    fn a_stage_in_a_subdirectory_is_rebased_to_the_root() {
        let (def, si) = stage(
            Some("a/b"),
            "cmd: python t.py\nwdir: ..\ndeps: [../in.csv, t.py]\nouts: [m]\n\
             params: [lr, {cfg.json: [x, y]}, {all.toml: null}]\nmetrics: [{m.json: {cache: false}}]\n",
        );
        let def = def.unwrap();
        assert_eq!(def.wdir, "a");
        assert_eq!(def.inputs, ["in.csv", "a/t.py"]);
        assert_eq!(def.outputs, ["a/m"]);
        assert_eq!(def.params, ["a/params.yaml:lr", "a/cfg.json:x,y", "a/all.toml"]);
        assert_eq!(def.metrics, ["a/m.json"]);
        assert!(si.cached_metrics.is_empty() && si.metrics.len() == 1);
        assert_eq!(mlv_name(Some(&RelPath::new("a/b").unwrap()), "s"), "a-b-s");
    }

    #[test]
    fn what_mlv_cannot_express_is_named() {
        for (yaml, why) in [
            ("foreach: [1, 2]\ndo: {cmd: echo}\n", "foreach"),
            ("cmd: echo ${x}\n", "templating"),
            ("cmd: echo\nfrozen: true\n", "frozen"),
            ("cmd: echo\nalways_changed: true\n", "always_changed"),
            ("cmd: echo\nouts: [{o: {persist: true}}]\n", "persist"),
            ("cmd: echo\nouts: [{o: {cache: false}}]\n", "cache: false"),
            ("cmd: echo\nplots: [p.csv]\n", "plots"),
            ("cmd: echo\nfrobnicate: 1\n", "unknown key"),
            ("cmd: echo\nouts: [../../x]\n", "leaves the repository"),
            ("outs: [o]\n", "no command"),
        ] {
            let err = stage(None, yaml).0.unwrap_err();
            assert!(err.contains(why), "{yaml}: {err}");
        }
    }

    #[test]
    fn a_directory_md5_is_dvcs() {
        // DVC 3.67.1 recorded c281643e….dir for this tree (a.py "code\n", d/b.txt "x\n")
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("src/d")).unwrap();
        std::fs::write(tmp.path().join("src/a.py"), "code\n").unwrap();
        std::fs::write(tmp.path().join("src/d/b.txt"), "x\n").unwrap();
        std::fs::write(tmp.path().join(".dvcignore"), "# comments only\n").unwrap();
        let src = RelPath::new("src").unwrap();
        assert_eq!(
            dvc_dir_md5(tmp.path(), &src).as_deref(),
            Some("c281643e3df775d55ec742c58e2f9977.dir")
        );
        std::fs::write(tmp.path().join(".dvcignore"), "*.pyc\n").unwrap();
        assert_eq!(dvc_dir_md5(tmp.path(), &src), None);
    }

    #[test]
    fn lock_params_flatten_as_mlv_flattens_a_params_file() {
        let mut out = BTreeMap::new();
        flatten(
            "train".into(),
            serde_json::json!({"lr": 0.1, "layers": [1, 2]}),
            &mut out,
        );
        flatten("seed".into(), serde_json::json!(1), &mut out);
        let keys: Vec<_> = out.keys().cloned().collect();
        assert_eq!(keys, ["seed", "train.layers", "train.lr"]);
    }
}
