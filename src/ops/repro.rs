//! `repro`: runs, in dependency order, the pipeline stages (`mlv.toml`) whose inputs, params,
//! command or outputs changed since their last lineage record, through the same code as
//! `mlv run`. A stage is checked only when it is its turn, after its upstream stages ran, so a
//! re-run upstream stage whose outputs came out different makes its dependants run too.
//!
//! What "changed" means, against the stage's newest record (`stage` field) in the lineage file:
//! never run; the command differs; an input's digest (its pointer's, or a git file's content)
//! differs, or the inputs are not the same paths; the chosen params values differ (a whole
//! params file, or the keys of `FILE:KEY,KEY`); the working directory differs; an output is
//! missing or modified in the workspace, or its pointer names another version than the record.
//!
//! A changed stage is first looked up in the run cache (`ops::lineage::runcache`): an earlier
//! identical run whose outputs can be had is restored instead of running the command, unless
//! `--force` or `--no-run-cache`. A dry run looks only at local sources.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::Error;
use crate::history::{artifact_of, git_artifact};
use crate::lineage::values::params_values;
use crate::lineage::{Artifact, Lineage, LineageError, Record};
use crate::ops::lineage::runcache::{lookup_local, Lookup, Wanted};
use crate::ops::lineage::{restore, run_in, ParamsSpec, RecordOptions, RecordReport, Restored, RunOutcome};
use crate::ops::status::{PointerStatus, State};
use crate::pipeline::{Pipeline, PipelineError, Stage, StageParams};
use crate::pointer::Pointer;
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// What to reproduce.
#[derive(Debug, Default, Clone)]
pub struct ReproOptions {
    /// The stages asked for (empty: all).
    pub names: Vec<String>,
    /// Only list what would run.
    pub dry_run: bool,
    /// Run whether changed or not.
    pub force: bool,
    /// Only the named stages, not their upstream stages.
    pub single: bool,
    /// After a failure, go on with the stages that do not depend on it.
    pub keep_going: bool,
    /// Never restore outputs from the run cache (`--no-run-cache`); `force` implies it.
    pub no_run_cache: bool,
    /// Sign the records (`--sign`).
    pub sign: bool,
}

/// Why a stage runs.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Reason {
    /// No record of it.
    NeverRun,
    /// `--force`.
    Forced,
    /// The command differs from the record's.
    CommandChanged,
    /// An input's version differs.
    InputChanged {
        /// The input.
        path: String,
        /// The recorded digest (`None`: not an input then).
        old: Option<String>,
        /// The digest now (`None`: not there yet).
        new: Option<String>,
    },
    /// A recorded input is no longer one.
    InputRemoved {
        /// The input.
        path: String,
    },
    /// A param's value differs.
    ParamChanged {
        /// The flattened name.
        key: String,
        /// The recorded value.
        old: Option<serde_json::Value>,
        /// The value now.
        new: Option<serde_json::Value>,
    },
    /// An output is missing, modified, or not the recorded version.
    OutputChanged {
        /// The output.
        path: String,
        /// missing, modified, or differs from the record.
        state: String,
    },
    /// An upstream stage would run first (dry run: its outputs may change).
    Upstream {
        /// The upstream stage.
        stage: String,
    },
    /// An upstream stage is out of date (`mlv status`: its outputs may change).
    UpstreamOutOfDate {
        /// The upstream stage.
        stage: String,
    },
    /// The working directory differs from the record's.
    WdirChanged {
        /// The recorded one, relative to the root (`None`: the root).
        old: Option<String>,
        /// The stage's now.
        new: Option<String>,
    },
}

impl Reason {
    /// One line, for messages.
    pub fn describe(&self) -> String {
        let short = |d: &Option<String>| {
            d.as_deref()
                .map(|d| d[..12.min(d.len())].to_string())
                .unwrap_or("none".into())
        };
        let val = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or("none".into());
        match self {
            Reason::NeverRun => "never run".into(),
            Reason::Forced => "forced".into(),
            Reason::CommandChanged => "command changed".into(),
            Reason::InputChanged { path, old, new } => {
                format!("input {path} changed: {} -> {}", short(old), short(new))
            }
            Reason::InputRemoved { path } => format!("input {path} removed"),
            Reason::ParamChanged { key, old, new } => {
                format!("param {key} changed: {} -> {}", val(old), val(new))
            }
            Reason::OutputChanged { path, state } => format!("output {path} {state}"),
            Reason::Upstream { stage } => format!("upstream stage {stage} runs first"),
            Reason::UpstreamOutOfDate { stage } => format!("upstream stage {stage} is out of date"),
            Reason::WdirChanged { old, new } => {
                let dir = |d: &Option<String>| d.clone().unwrap_or(".".into());
                format!("working directory changed: {} -> {}", dir(old), dir(new))
            }
        }
    }
}

/// What happened to one stage.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageOutcome {
    /// Nothing changed.
    UpToDate,
    /// Dry run: it would run.
    WouldRun {
        /// Why.
        reasons: Vec<Reason>,
        /// An earlier run that would be restored instead if the default remote has its
        /// outputs (a dry run does not ask it).
        #[serde(skip_serializing_if = "Option::is_none")]
        restore_if_remote: Option<String>,
    },
    /// Dry run: its outputs would be restored from the run cache.
    WouldRestore {
        /// Why it is out of date.
        reasons: Vec<Reason>,
        /// The earlier run whose outputs would be restored.
        reused: String,
    },
    /// It ran and was recorded.
    Ran {
        /// Why.
        reasons: Vec<Reason>,
        /// The record's id.
        record: String,
    },
    /// Its outputs were restored from the run cache instead of running it, and recorded.
    Restored {
        /// Why it was out of date.
        reasons: Vec<Reason>,
        /// The new record's id.
        record: String,
        /// The earlier run whose outputs were restored.
        reused: String,
    },
    /// It ran and failed; nothing recorded.
    Failed {
        /// Why it ran.
        reasons: Vec<Reason>,
        /// The command's exit code.
        code: Option<i32>,
        /// The signal that killed it.
        signal: Option<i32>,
        /// The stop signal mlv received.
        interrupted_by: Option<i32>,
    },
    /// Not run: an upstream stage failed, or an earlier failure stopped repro.
    Skipped {
        /// The failed stage.
        because: String,
    },
}

/// One stage's line of the report.
#[derive(Debug, Serialize)]
pub struct StageResult {
    /// The stage.
    pub stage: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: StageOutcome,
}

/// What `repro` did.
#[derive(Debug, Default, Serialize)]
pub struct ReproReport {
    /// The stages considered, in the order they were.
    pub stages: Vec<StageResult>,
    /// The first failed stage, if any.
    pub failed: Option<String>,
}

/// Progress reported while repro works (the library never prints).
pub enum ReproEvent<'a> {
    /// A stage is up to date.
    UpToDate(&'a str),
    /// A stage is about to run.
    Running(&'a str, &'a [Reason]),
    /// A stage ran and was recorded.
    Recorded(&'a str, &'a RecordReport),
    /// A stage's outputs were restored from the run cache, and recorded.
    Restored(&'a str, &'a Restored),
}

/// Reproduces the pipeline. `lock` is taken as `mlv run` takes it (for each record).
/// `runtime` is asked for when the run cache must ask the default remote.
pub fn repro(
    repo: &Repo,
    opts: &ReproOptions,
    progress: &dyn Progress,
    lock: &mut dyn FnMut() -> Result<crate::lock::RepoLock, Error>,
    on_event: &mut dyn FnMut(ReproEvent<'_>),
    runtime: &dyn Fn() -> Option<tokio::runtime::Handle>,
) -> Result<ReproReport, Error> {
    let pipeline = Pipeline::load(&repo.root)?;
    let selected: BTreeSet<String> = match (opts.names.is_empty(), opts.single) {
        (true, _) => pipeline.stages.iter().map(|s| s.name.clone()).collect(),
        (false, true) => {
            let mut s = BTreeSet::new();
            for n in &opts.names {
                s.insert(pipeline.get(n)?.name.clone());
            }
            s
        }
        (false, false) => pipeline.with_upstream(&opts.names)?,
    };
    // an input that no stage writes must be there before anything runs
    let produced: Vec<&RelPath> = pipeline.stages.iter().flat_map(|s| s.outputs.iter()).collect();
    for s in pipeline.stages.iter().filter(|s| selected.contains(&s.name)) {
        for i in &s.inputs {
            let made = produced.iter().any(|o| i.is_within(o) || o.is_within(i));
            if !made && std::fs::symlink_metadata(i.to_path(&repo.root)).is_err() {
                return Err(PipelineError::MissingInput {
                    stage: s.name.clone(),
                    path: repo.display(i),
                }
                .into());
            }
        }
        // a params key the file lacks: refused before anything runs
        for p in &s.params {
            if !p.keys.is_empty() && p.file.to_path(&repo.root).is_file() {
                stage_params(repo, s, p)?;
            }
        }
    }
    let mut report = ReproReport::default();
    // stages that would run (dry run) or failed / were skipped (real run)
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut broken: BTreeMap<String, String> = BTreeMap::new();
    let mut stop: Option<String> = None;
    // the lineage and the pointers, read once and again only after a stage changed them (a
    // no-op repro walks the work tree once, as `mlv status` does)
    let mut seen: Option<(Lineage, Workspace<'static>)> = None;
    for stage in pipeline.stages.iter().filter(|s| selected.contains(&s.name)) {
        let name = stage.name.clone();
        if let Some(f) = &stop {
            report.stages.push(StageResult {
                stage: name,
                outcome: StageOutcome::Skipped { because: f.clone() },
            });
            continue;
        }
        if let Some(up) = stage.after.iter().find_map(|a| broken.get(a)) {
            let up = up.clone();
            broken.insert(name.clone(), up.clone());
            report.stages.push(StageResult {
                stage: name,
                outcome: StageOutcome::Skipped { because: up },
            });
            continue;
        }
        let mut reasons = Vec::new();
        if opts.force {
            reasons.push(Reason::Forced);
        } else if let Some(up) = stage.after.iter().find(|a| pending.contains(*a)) {
            reasons.push(Reason::Upstream { stage: up.clone() });
        } else {
            if seen.is_none() {
                // the states of every tracked path a selected stage reads or writes, at once
                let paths: Vec<&RelPath> = pipeline
                    .stages
                    .iter()
                    .filter(|s| selected.contains(&s.name))
                    .flat_map(|s| s.inputs.iter().chain(s.outputs.iter()))
                    .collect();
                let ws = Workspace::with_states_of(repo, &paths, progress)?;
                seen = Some((Lineage::load(&repo.root)?, ws));
            }
            let (lineage, ws) = seen.as_ref().expect("just loaded");
            reasons = changes(repo, stage, lineage, ws, progress)?;
        }
        if reasons.is_empty() {
            on_event(ReproEvent::UpToDate(&name));
            report.stages.push(StageResult {
                stage: name,
                outcome: StageOutcome::UpToDate,
            });
            continue;
        }
        let use_cache = !opts.force && !opts.no_run_cache;
        if opts.dry_run {
            pending.insert(name.clone());
            let upstream = reasons.iter().any(|r| matches!(r, Reason::Upstream { .. }));
            let found = match use_cache && !upstream {
                true => lookup_now(repo, stage)?,
                false => Lookup::Miss,
            };
            let outcome = match found {
                Lookup::Local(r) => StageOutcome::WouldRestore {
                    reasons,
                    reused: r.id,
                },
                Lookup::Remote(r, _) => StageOutcome::WouldRun {
                    reasons,
                    restore_if_remote: Some(r.id),
                },
                Lookup::Miss => StageOutcome::WouldRun {
                    reasons,
                    restore_if_remote: None,
                },
            };
            report.stages.push(StageResult { stage: name, outcome });
            continue;
        }
        let record_opts = RecordOptions {
            inputs: stage.inputs.clone(),
            outputs: stage.outputs.clone(),
            metrics_files: stage.metrics.clone(),
            params_files: stage
                .params
                .iter()
                .map(|p| ParamsSpec {
                    file: p.file.clone(),
                    keys: p.keys.clone(),
                })
                .collect(),
            stage: Some(name.clone()),
            wdir: stage.wdir.clone(),
            sign: opts.sign,
            ..RecordOptions::default()
        };
        if use_cache {
            // `changes` has just checked the inputs against the workspace (unless the stage
            // never ran): not checked twice
            let checked = !reasons.contains(&Reason::NeverRun);
            let pointers = match &seen {
                Some((_, ws)) => std::borrow::Cow::Borrowed(&ws.pointers),
                None => std::borrow::Cow::Owned(repo.pointers()?),
            };
            let mut inputs = Vec::new();
            for i in stage.inputs.iter().filter(|_| checked) {
                inputs.extend(current_input(repo, &pointers, i)?);
            }
            drop(pointers);
            // a restore or a run changes pointers and the lineage
            seen = None;
            let inputs = (checked && inputs.len() == stage.inputs.len()).then_some(inputs);
            if let Some(r) = restore(repo, &record_opts, &stage.cmd, inputs, runtime, progress, lock)? {
                on_event(ReproEvent::Restored(&name, &r));
                report.stages.push(StageResult {
                    stage: name,
                    outcome: StageOutcome::Restored {
                        reasons,
                        record: r.report.record.id.clone(),
                        reused: r.restored_from.id.clone(),
                    },
                });
                continue;
            }
        }
        on_event(ReproEvent::Running(&name, &reasons));
        seen = None;
        let dir = match &stage.wdir {
            Some(w) => w.to_path(&repo.root),
            None => repo.root.clone(),
        };
        match run_in(repo, &record_opts, &stage.cmd, &dir, progress, lock)? {
            RunOutcome::Recorded(r) => {
                on_event(ReproEvent::Recorded(&name, &r));
                report.stages.push(StageResult {
                    stage: name,
                    outcome: StageOutcome::Ran {
                        reasons,
                        record: r.record.id.clone(),
                    },
                });
            }
            RunOutcome::Failed {
                code,
                signal,
                interrupted_by,
            } => {
                report.failed.get_or_insert(name.clone());
                broken.insert(name.clone(), name.clone());
                if !opts.keep_going || interrupted_by.is_some() {
                    stop = Some(name.clone());
                }
                report.stages.push(StageResult {
                    stage: name,
                    outcome: StageOutcome::Failed {
                        reasons,
                        code,
                        signal,
                        interrupted_by,
                    },
                });
            }
        }
    }
    Ok(report)
}

/// What [`changes`] compares a stage with besides its record: the pointers, and the states of
/// the tracked paths when a status run already computed them (`mlv status`), so that nothing
/// is hashed twice.
pub struct Workspace<'a> {
    /// Every pointer of the work tree.
    pub pointers: Vec<Pointer>,
    /// States already known; a path not among them is computed when needed.
    known: Known<'a>,
}

/// States computed by the caller's status run, or by [`Workspace::with_states_of`].
enum Known<'a> {
    Borrowed(&'a [PointerStatus]),
    Owned(Vec<PointerStatus>),
}

impl Known<'_> {
    fn get(&self) -> &[PointerStatus] {
        match self {
            Known::Borrowed(k) => k,
            Known::Owned(k) => k,
        }
    }
}

impl Workspace<'_> {
    /// The pointers now; states are computed when needed.
    pub fn load(repo: &Repo) -> Result<Workspace<'static>, Error> {
        Ok(Workspace {
            pointers: repo.pointers()?,
            known: Known::Borrowed(&[]),
        })
    }

    /// The pointers now, with the states `known` (from a status run).
    pub fn with_states<'a>(repo: &Repo, known: &'a [PointerStatus]) -> Result<Workspace<'a>, Error> {
        Ok(Workspace {
            pointers: repo.pointers()?,
            known: Known::Borrowed(known),
        })
    }

    /// The pointers now, with the states of the tracked paths among `paths` computed in one
    /// status run (the stat cache read and saved once, not once per stage).
    pub fn with_states_of(
        repo: &Repo,
        paths: &[&RelPath],
        progress: &dyn Progress,
    ) -> Result<Workspace<'static>, Error> {
        let pointers = repo.pointers()?;
        let mut tracked: Vec<RelPath> = paths
            .iter()
            .filter(|p| pointers.iter().any(|q| q.data == ***p))
            .map(|p| (*p).clone())
            .collect();
        tracked.sort();
        tracked.dedup();
        let known = match tracked.is_empty() {
            true => Vec::new(),
            false => crate::ops::status::status(repo, &tracked, progress)?.pointers,
        };
        Ok(Workspace {
            pointers,
            known: Known::Owned(known),
        })
    }

    /// The state of each of `paths` (each a pointer's data path).
    fn states(
        &self,
        repo: &Repo,
        paths: &[RelPath],
        progress: &dyn Progress,
    ) -> Result<Vec<(RelPath, State)>, Error> {
        let mut out = Vec::new();
        let mut todo = Vec::new();
        for p in paths {
            match self.known.get().iter().find(|k| k.data == *p) {
                Some(k) => out.push((p.clone(), k.state)),
                None => todo.push(p.clone()),
            }
        }
        if !todo.is_empty() {
            let st = crate::ops::status::status(repo, &todo, progress)?;
            out.extend(st.pointers.into_iter().map(|s| (s.data, s.state)));
        }
        Ok(out)
    }
}

/// The values a stage's params entry selects now; a key the file lacks names the stage.
fn stage_params(
    repo: &Repo,
    stage: &Stage,
    p: &StageParams,
) -> Result<BTreeMap<String, serde_json::Value>, Error> {
    params_values(&p.file.to_path(&repo.root), &repo.display(&p.file), &p.keys).map_err(|e| match e {
        LineageError::MissingParam { path, key } => PipelineError::MissingParam {
            stage: stage.name.clone(),
            file: path,
            key,
        }
        .into(),
        e => e.into(),
    })
}

/// Why `stage` must run, compared with its newest record (empty: it is up to date).
pub fn changes(
    repo: &Repo,
    stage: &Stage,
    lineage: &Lineage,
    ws: &Workspace<'_>,
    progress: &dyn Progress,
) -> Result<Vec<Reason>, Error> {
    let Some(rec) = last_record(lineage, &stage.name) else {
        return Ok(vec![Reason::NeverRun]);
    };
    let mut reasons = Vec::new();
    if rec.command.as_deref() != Some(stage.cmd.as_slice()) {
        reasons.push(Reason::CommandChanged);
    }
    let wdir = stage.wdir.as_ref().map(|w| w.as_str().to_string());
    if rec.wdir != wdir {
        reasons.push(Reason::WdirChanged {
            old: rec.wdir.clone(),
            new: wdir,
        });
    }
    let pointers = &ws.pointers;
    // as `mlv run` would: an input tracked by mlv must be what its pointer says
    let tracked: Vec<RelPath> = stage
        .inputs
        .iter()
        .filter(|i| pointers.iter().any(|p| p.data == **i))
        .cloned()
        .collect();
    if let Some((m, _)) = ws
        .states(repo, &tracked, progress)?
        .into_iter()
        .find(|(_, s)| *s == State::Modified)
    {
        return Err(LineageError::InputModified {
            path: repo.display(&m),
        }
        .into());
    }
    for i in &stage.inputs {
        let old = rec
            .inputs
            .iter()
            .find(|a| a.path == i.as_str())
            .map(|a| a.digest.to_string());
        let new = current_input(repo, pointers, i)?.map(|a| a.digest.to_string());
        if old != new || new.is_none() {
            reasons.push(Reason::InputChanged {
                path: repo.display(i),
                old,
                new,
            });
        }
    }
    for a in &rec.inputs {
        if !stage.inputs.iter().any(|i| i.as_str() == a.path) {
            reasons.push(Reason::InputRemoved { path: a.path.clone() });
        }
    }
    // only the values chosen: a change to another key of the file does not count
    let mut params = BTreeMap::new();
    for p in &stage.params {
        if p.file.to_path(&repo.root).exists() {
            params.extend(stage_params(repo, stage, p)?);
        }
    }
    let keys: BTreeSet<&String> = params.keys().chain(rec.params.keys()).collect();
    for k in keys {
        let (old, new) = (rec.params.get(k), params.get(k));
        if old != new {
            reasons.push(Reason::ParamChanged {
                key: k.clone(),
                old: old.cloned(),
                new: new.cloned(),
            });
        }
    }
    let owned: Vec<RelPath> = stage
        .outputs
        .iter()
        .filter(|o| pointers.iter().any(|p| p.data == **o))
        .cloned()
        .collect();
    let states = ws.states(repo, &owned, progress)?;
    for o in &stage.outputs {
        let shown = repo.display(o);
        let Some(p) = pointers.iter().find(|p| p.data == *o) else {
            reasons.push(Reason::OutputChanged {
                path: shown,
                state: "not tracked".into(),
            });
            continue;
        };
        let state = states.iter().find(|(d, _)| d == o).map(|(_, s)| *s);
        let recorded = rec.outputs.iter().find(|a| a.path == o.as_str());
        let why = match state {
            Some(State::Missing) | Some(State::NotPulled) => Some("missing"),
            Some(State::Modified) => Some("modified"),
            _ if recorded.map(|a| a.digest) != Some(artifact_of(p).digest) => {
                Some("differs from the recorded run")
            }
            _ => None,
        };
        if let Some(why) = why {
            reasons.push(Reason::OutputChanged {
                path: shown,
                state: why.into(),
            });
        }
    }
    Ok(reasons)
}

/// The run cache's answer for `stage` as the work tree is now, from local sources only (a dry
/// run): a miss when an input or params file is not there yet.
fn lookup_now(repo: &Repo, stage: &Stage) -> Result<Lookup, Error> {
    let pointers = repo.pointers()?;
    let mut inputs = Vec::new();
    for i in &stage.inputs {
        match current_input(repo, &pointers, i)? {
            Some(a) => inputs.push(a),
            None => return Ok(Lookup::Miss),
        }
    }
    let mut params = BTreeMap::new();
    for p in &stage.params {
        if !p.file.to_path(&repo.root).is_file() {
            return Ok(Lookup::Miss);
        }
        let spec = ParamsSpec {
            file: p.file.clone(),
            keys: p.keys.clone(),
        };
        params.extend(spec.values(repo)?);
    }
    lookup_local(
        repo,
        &Wanted {
            command: &stage.cmd,
            inputs: &inputs,
            params: &params,
            outputs: &stage.outputs,
            metrics_files: &stage.metrics,
            wdir: stage.wdir.as_ref().map(RelPath::as_str),
        },
    )
}

/// The newest record of stage `name`.
pub fn last_record<'l>(lineage: &'l Lineage, name: &str) -> Option<&'l Record> {
    lineage
        .records
        .iter()
        .rev()
        .find(|r| r.stage.as_deref() == Some(name))
}

/// An input's version now: its pointer's, or a git-tracked file's content (`None`: absent).
fn current_input(repo: &Repo, pointers: &[Pointer], path: &RelPath) -> Result<Option<Artifact>, Error> {
    if let Some(p) = pointers.iter().find(|p| p.data == *path) {
        return Ok(Some(artifact_of(p)));
    }
    let abs = path.to_path(&repo.root);
    if abs.is_file() {
        let bytes = std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))?;
        return Ok(Some(git_artifact(path, &bytes)));
    }
    Ok(None)
}
