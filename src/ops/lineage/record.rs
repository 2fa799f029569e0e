//! `lineage record`: records a step run elsewhere. `run` shares its two halves: what is
//! checked before the command runs ([`prepare`]) and what is recorded after ([`finish`]).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::gitutil::{stage, tracked_by_git};
use crate::history::{artifact_of, git_artifact, head_commit};
use crate::lineage::values::{metric_arg, metrics_file, param_arg, params_values};
use crate::lineage::{
    append, git_err, lineage_rel, time::rfc3339_millis, Artifact, Author, LineageError, ParamsFile, Record,
    LINEAGE_FILE, LINEAGE_VERSION,
};
use crate::ops::add::{add, Added};
use crate::ops::status::State;
use crate::pointer::{pointer_file_for, Pointer};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// What to record besides the command.
#[derive(Debug, Default, Clone)]
pub struct RecordOptions {
    /// Inputs: data tracked by mlv, or files tracked by git.
    pub inputs: Vec<RelPath>,
    /// Outputs: added to mlv as `mlv add` would.
    pub outputs: Vec<RelPath>,
    /// Metrics files (JSON, YAML or TOML).
    pub metrics_files: Vec<RelPath>,
    /// Params files (JSON, YAML or TOML), each with the keys chosen in it (`-p FILE:KEY,KEY`).
    pub params_files: Vec<ParamsSpec>,
    /// `NAME=NUMBER` metrics.
    pub metrics: Vec<String>,
    /// `NAME=VALUE` params.
    pub params: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The pipeline stage this run is (`mlv run --name`, `mlv repro`), recorded with it.
    pub stage: Option<String>,
    /// The stage's working directory, relative to the root, when it is not the root.
    pub wdir: Option<RelPath>,
    /// Sign the record (`--sign`); `[lineage] sign = true` signs without it.
    pub sign: bool,
}

/// A params file and the keys chosen in it: `-p FILE` (no keys: the whole file) or
/// `-p FILE:KEY,KEY`, where a key names a leaf (`train.lr`) or a whole section (`train`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamsSpec {
    /// The file.
    pub file: RelPath,
    /// The keys chosen; empty: the whole file.
    pub keys: Vec<String>,
}

impl ParamsSpec {
    /// The current values this spec selects, flattened to dotted names (what `mlv run -p`
    /// records). Refuses a key the file does not have, and a file that does not parse.
    pub fn values(&self, repo: &Repo) -> Result<BTreeMap<String, serde_json::Value>, LineageError> {
        params_values(
            &self.file.to_path(&repo.root),
            &repo.display(&self.file),
            &self.keys,
        )
    }
}

/// What `record` (or a successful `run`) did.
#[derive(Debug, Serialize)]
pub struct RecordReport {
    /// The record appended to the lineage file.
    pub record: Record,
    /// The outputs, as `mlv add` reports them.
    pub added: Vec<Added>,
    /// Files to commit with git, as displayed.
    pub git_paths: Vec<String>,
    /// Whether they were staged (`core.autostage`).
    pub staged: bool,
}

/// The state of the repository a record is made in.
pub(super) struct Context {
    pub(super) time: String,
    pub(super) author: Option<Author>,
    pub(super) commit: Option<String>,
    pub(super) dirty: bool,
}

/// What [`prepare`] found: the context, the inputs' versions, the `--param`/`--metric` values.
pub(super) struct Prepared {
    pub(super) ctx: Context,
    pub(super) inputs: Vec<Artifact>,
    pub(super) params: BTreeMap<String, serde_json::Value>,
    pub(super) metrics: BTreeMap<String, serde_json::Number>,
}

impl Prepared {
    /// The params values a run of `opts` would record if the params files stay as they are
    /// now (`None` when one of them is not there yet).
    pub(super) fn params_now(
        &self,
        repo: &Repo,
        opts: &RecordOptions,
    ) -> Result<Option<BTreeMap<String, serde_json::Value>>, Error> {
        let mut params = BTreeMap::new();
        for spec in &opts.params_files {
            if !spec.file.to_path(&repo.root).is_file() {
                return Ok(None);
            }
            params.extend(spec.values(repo)?);
        }
        params.extend(self.params.clone());
        Ok(Some(params))
    }
}

/// Records a step run elsewhere: hashes the inputs, adds the outputs, appends the record.
pub fn record(repo: &Repo, opts: &RecordOptions, progress: &dyn Progress) -> Result<RecordReport, Error> {
    let prepared = prepare(repo, opts, progress)?;
    finish(repo, opts, prepared, None, progress)
}

/// Everything checked before a command runs: arguments, inputs, outputs, the git context.
pub(super) fn prepare(repo: &Repo, opts: &RecordOptions, progress: &dyn Progress) -> Result<Prepared, Error> {
    prepare_with(repo, opts, None, progress)
}

/// [`prepare`], with the inputs' versions given when the caller has just checked them against
/// the workspace (`repro`), so they are not checked twice.
pub(super) fn prepare_with(
    repo: &Repo,
    opts: &RecordOptions,
    checked_inputs: Option<Vec<Artifact>>,
    progress: &dyn Progress,
) -> Result<Prepared, Error> {
    if signs(repo, opts) {
        crate::lineage::sign::signing_key(&repo.git)?;
    }
    let mut params = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for p in &opts.params {
        let (k, v) = param_arg(p)?;
        params.insert(k, v);
    }
    for m in &opts.metrics {
        let (k, v) = metric_arg(m)?;
        metrics.insert(k, v);
    }
    // a chosen key missing from a params file that exists is refused before the command runs
    for spec in &opts.params_files {
        if !spec.keys.is_empty() && spec.file.to_path(&repo.root).is_file() {
            spec.values(repo)?;
        }
    }
    let pointers = repo.pointers()?;
    let inputs = match checked_inputs {
        Some(inputs) => inputs,
        None => {
            let mut inputs = Vec::new();
            for path in &opts.inputs {
                inputs.push(input_artifact(repo, &pointers, path, progress)?);
            }
            inputs
        }
    };
    for out in &opts.outputs {
        if let Some(i) = opts.inputs.iter().find(|i| out.is_within(i) || i.is_within(out)) {
            return Err(LineageError::InputIsOutput {
                path: repo.display(out),
                other: repo.display(i),
            }
            .into());
        }
        if tracked_by_git(&repo.git, out)? {
            return Err(Refusal::TrackedByGit {
                path: repo.display(out),
            }
            .into());
        }
        if let Some(p) = pointers
            .iter()
            .find(|p| p.data != *out && (out.is_within(&p.data) || p.data.is_within(out)))
        {
            return Err(Refusal::Overlaps {
                path: repo.display(out),
                other: repo.display(&p.data),
                pointer: repo.display(&p.file),
            }
            .into());
        }
    }
    Ok(Prepared {
        ctx: context(repo)?,
        inputs,
        params,
        metrics,
    })
}

/// Reads the metrics and params files, adds the outputs and appends the record.
pub(super) fn finish(
    repo: &Repo,
    opts: &RecordOptions,
    prepared: Prepared,
    command: Option<Vec<String>>,
    progress: &dyn Progress,
) -> Result<RecordReport, Error> {
    let Prepared {
        ctx,
        inputs,
        params: arg_params,
        metrics: arg_metrics,
    } = prepared;
    let mut params = BTreeMap::new();
    for spec in &opts.params_files {
        params.extend(spec.values(repo)?);
    }
    params.extend(arg_params);
    let mut metrics = BTreeMap::new();
    let mut metrics_files: Vec<String> = Vec::new();
    let mut metrics_digests = BTreeMap::new();
    for f in &opts.metrics_files {
        let abs = f.to_path(&repo.root);
        metrics.extend(metrics_file(&abs, &repo.display(f))?);
        if !metrics_files.iter().any(|m| m == f.as_str()) {
            metrics_files.push(f.as_str().to_string());
            // git tracks the file; its bytes go to the cache too, for the run cache to restore
            let bytes = std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))?;
            metrics_digests.insert(f.as_str().to_string(), repo.cache.insert_bytes(&bytes)?);
        }
    }
    metrics.extend(arg_metrics);
    let (added, git_paths, staged) = if opts.outputs.is_empty() {
        (Vec::new(), Vec::new(), repo.config.core.autostage)
    } else {
        let report = add(repo, &opts.outputs, progress)?;
        (report.added, report.git_paths, report.staged)
    };
    let mut outputs = Vec::new();
    for out in &opts.outputs {
        outputs.push(artifact_of(&Pointer::load(&repo.root, &pointer_file_for(out))?));
    }
    let record = Record {
        version: LINEAGE_VERSION,
        id: String::new(),
        time: ctx.time,
        author: ctx.author,
        commit: ctx.commit,
        dirty: ctx.dirty,
        command,
        inputs,
        outputs,
        params,
        metrics,
        tags: unique_tags(opts),
        stage: opts.stage.clone(),
        metrics_files,
        params_files: params_files_of(opts),
        wdir: opts.wdir.as_ref().map(|w| w.as_str().to_string()),
        metrics_digests,
        reused: None,
        signature: None,
    };
    append_record(repo, opts, record, added, git_paths, staged)
}

/// Appends a record made from another tool's history (`mlv import-dvc`'s `dvc.lock`): the
/// caller gives what was run and on what; the time, author and git context are filled in here,
/// as for `record`. Signed when `[lineage] sign = true`.
pub(crate) fn append_imported(repo: &Repo, mut record: Record) -> Result<RecordReport, Error> {
    let ctx = context(repo)?;
    record.version = LINEAGE_VERSION;
    record.time = ctx.time;
    record.author = ctx.author;
    record.commit = ctx.commit;
    record.dirty = ctx.dirty;
    let staged = repo.config.core.autostage;
    append_record(
        repo,
        &RecordOptions::default(),
        record,
        Vec::new(),
        Vec::new(),
        staged,
    )
}

/// Whether records are signed: `--sign`, or `[lineage] sign = true`.
fn signs(repo: &Repo, opts: &RecordOptions) -> bool {
    opts.sign || repo.config.lineage.sign == Some(true)
}

/// Gives `record` its id (and its signature when asked for or configured), appends it, stages
/// the lineage file with the rest when `staged`.
pub(super) fn append_record(
    repo: &Repo,
    opts: &RecordOptions,
    mut record: Record,
    added: Vec<Added>,
    mut git_paths: Vec<String>,
    staged: bool,
) -> Result<RecordReport, Error> {
    record.id = record.compute_id();
    if signs(repo, opts) {
        record.signature = Some(crate::lineage::sign::sign(&repo.git, &record)?);
    }
    append(&repo.root, &record)?;
    if staged {
        stage(&repo.git, &repo.root, &[lineage_rel()])?;
    }
    git_paths.push(repo.display(&lineage_rel()));
    Ok(RecordReport {
        record,
        added,
        git_paths,
        staged,
    })
}

/// The params files of `opts` as a record names them: each file once, with the union of the
/// keys chosen (none: the whole file).
pub(super) fn params_files_of(opts: &RecordOptions) -> Vec<ParamsFile> {
    let mut params_files: Vec<ParamsFile> = Vec::new();
    for spec in &opts.params_files {
        let path = spec.file.as_str().to_string();
        match params_files.iter_mut().find(|p| p.path == path) {
            // the whole file, or both sets of keys
            Some(p) if p.keys.is_empty() || spec.keys.is_empty() => p.keys.clear(),
            Some(p) => {
                for k in &spec.keys {
                    if !p.keys.contains(k) {
                        p.keys.push(k.clone());
                    }
                }
            }
            None => params_files.push(ParamsFile {
                path,
                keys: spec.keys.clone(),
            }),
        }
    }
    params_files
}

/// The tags of `opts` in order, without repeats.
pub(super) fn unique_tags(opts: &RecordOptions) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for t in &opts.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    tags
}

/// The version of one input: its pointer (the workspace must match it), or the content of a
/// file tracked by git.
fn input_artifact(
    repo: &Repo,
    pointers: &[Pointer],
    path: &RelPath,
    progress: &dyn Progress,
) -> Result<Artifact, Error> {
    if let Some(p) = pointers.iter().find(|p| p.data == *path) {
        let st = crate::ops::status::status(repo, std::slice::from_ref(path), progress)?;
        // a directory only partly pulled is as unusable as a modified one
        if st
            .pointers
            .iter()
            .any(|s| s.state == State::Modified || (s.state == State::NotPulled && s.present()))
        {
            return Err(LineageError::InputModified {
                path: repo.display(path),
            }
            .into());
        }
        return Ok(artifact_of(p));
    }
    if let Some(p) = Repo::pointer_covering(pointers, path) {
        return Err(LineageError::InputInsideTracked {
            path: repo.display(path),
            dir: repo.display(&p.data),
        }
        .into());
    }
    let abs = path.to_path(&repo.root);
    if abs.is_file() && tracked_by_git(&repo.git, path)? {
        let bytes = std::fs::read(&abs).map_err(|e| crate::fs::IoError::new("cannot read", &abs, e))?;
        return Ok(git_artifact(path, &bytes));
    }
    if std::fs::symlink_metadata(&abs).is_err() {
        return Err(Refusal::NotFound {
            path: repo.display(path),
        }
        .into());
    }
    Err(LineageError::InputNotTracked {
        path: repo.display(path),
    }
    .into())
}

fn context(repo: &Repo) -> Result<Context, Error> {
    let git = &repo.git;
    let commit = head_commit(git).map(|c| c.id().to_string());
    Ok(Context {
        time: rfc3339_millis(std::time::SystemTime::now()),
        author: author(git),
        commit,
        dirty: work_tree_dirty(git)?,
    })
}

/// `GIT_AUTHOR_NAME`/`GIT_AUTHOR_EMAIL` if set (as git does), else `user.name`/`user.email`.
fn author(git: &git2::Repository) -> Option<Author> {
    let cfg = git.config().ok();
    let get = |env: &str, key: &str| {
        std::env::var(env)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| cfg.as_ref().and_then(|c| c.get_string(key).ok()))
    };
    let name = get("GIT_AUTHOR_NAME", "user.name");
    let email = get("GIT_AUTHOR_EMAIL", "user.email");
    if name.is_none() && email.is_none() {
        return None;
    }
    Some(Author {
        name: name.unwrap_or_default(),
        email: email.unwrap_or_default(),
    })
}

/// Whether tracked files differ from HEAD (staged or not), not counting mlv's own files
/// (pointer files, `.gitignore`s, `.gitattributes`, the lineage file): the record names the
/// data by digest, so only code and configuration make a run irreproducible from its commit.
/// Untracked files are not counted.
fn work_tree_dirty(git: &git2::Repository) -> Result<bool, Error> {
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false)
        .include_ignored(false)
        .exclude_submodules(true);
    let statuses = git
        .statuses(Some(&mut opts))
        .map_err(git_err("reading the work-tree status"))?;
    Ok(statuses.iter().any(|e| {
        let path = e.path().unwrap_or("");
        let name = path.rsplit('/').next().unwrap_or(path);
        let own = path == LINEAGE_FILE
            || name.ends_with(crate::pointer::POINTER_SUFFIX)
            || name == ".gitignore"
            || name == ".gitattributes";
        e.status() != git2::Status::CURRENT && !own
    }))
}
