//! `mlv lineage record`, `mlv run` and the lineage queries that need the repository:
//! resolving PATH|DIGEST arguments, `show`, `uses`, `verify` and `lineage diff`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::gitutil::{stage, tracked_by_git};
use crate::hash::Digest;
use crate::history::{
    artifact_of, git_artifact, head_commit, pointers_in_tree, resolve_commit, version_in_tree,
    version_in_workspace,
};
use crate::lineage::query::{self, compare, Derived, Downstream, Node, Row};
use crate::lineage::values::{metric_arg, metrics_file, param_arg, params_file};
use crate::lineage::{
    append, git_err, lineage_rel, time::rfc3339_millis, Artifact, ArtifactKind, Author, LineProblem, Lineage,
    LineageError, Record, LINEAGE_FILE, LINEAGE_VERSION,
};
use crate::objects::ObjectSource;
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
    /// Metrics files (JSON, YAML or TOML), as given on the command line.
    pub metrics_files: Vec<PathBuf>,
    /// Params files (JSON, YAML or TOML), as given on the command line.
    pub params_files: Vec<PathBuf>,
    /// `NAME=NUMBER` metrics.
    pub metrics: Vec<String>,
    /// `NAME=VALUE` params.
    pub params: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
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

/// How `run` ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The command succeeded and its lineage was recorded.
    Recorded(Box<RecordReport>),
    /// The command failed, or mlv was asked to stop (SIGTERM, SIGINT, SIGHUP: passed on to
    /// the command) while it ran; nothing was recorded.
    Failed {
        /// The command's exit code, when it exited.
        code: Option<i32>,
        /// The signal that killed the command, when one did.
        signal: Option<i32>,
        /// The stop signal mlv received (and passed on) while the command ran.
        interrupted_by: Option<i32>,
    },
}

/// The state of the repository a record is made in.
struct Context {
    time: String,
    author: Option<Author>,
    commit: Option<String>,
    dirty: bool,
}

struct Prepared {
    ctx: Context,
    inputs: Vec<Artifact>,
    params: BTreeMap<String, serde_json::Value>,
    metrics: BTreeMap<String, serde_json::Number>,
}

/// Records a step run elsewhere: hashes the inputs, adds the outputs, appends the record.
pub fn record(repo: &Repo, opts: &RecordOptions, progress: &dyn Progress) -> Result<RecordReport, Error> {
    let prepared = prepare(repo, opts, progress)?;
    finish(repo, opts, prepared, None, progress)
}

/// Runs `command` (inheriting stdio and environment, in the current directory). Records its
/// lineage only if it succeeds; the inputs are resolved before it starts, the outputs hashed
/// after it ends, under the lock `lock` takes (not held while the command runs: it may run mlv).
pub fn run(
    repo: &Repo,
    opts: &RecordOptions,
    command: &[String],
    progress: &dyn Progress,
    lock: &mut dyn FnMut() -> Result<crate::lock::RepoLock, Error>,
) -> Result<RunOutcome, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(LineageError::NoCommand.into());
    };
    let prepared = prepare(repo, opts, progress)?;
    let mut command_line = std::process::Command::new(program);
    command_line.args(args).current_dir(&repo.cwd);
    let ended = crate::child::run_forwarding(&mut command_line).map_err(|source| LineageError::Spawn {
        program: program.clone(),
        source,
    })?;
    if !ended.status.success() || ended.interrupted_by.is_some() {
        use std::os::unix::process::ExitStatusExt;
        return Ok(RunOutcome::Failed {
            code: ended.status.code(),
            signal: ended.status.signal(),
            interrupted_by: ended.interrupted_by,
        });
    }
    let _lock = lock()?;
    Ok(RunOutcome::Recorded(Box::new(finish(
        repo,
        opts,
        prepared,
        Some(command.to_vec()),
        progress,
    )?)))
}

/// Everything checked before a command runs: arguments, inputs, outputs, the git context.
fn prepare(repo: &Repo, opts: &RecordOptions, progress: &dyn Progress) -> Result<Prepared, Error> {
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
    let pointers = repo.pointers()?;
    let mut inputs = Vec::new();
    for path in &opts.inputs {
        inputs.push(input_artifact(repo, &pointers, path, progress)?);
    }
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
fn finish(
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
    for f in &opts.params_files {
        params.extend(params_file(&repo.cwd.join(f), &f.display().to_string())?);
    }
    params.extend(arg_params);
    let mut metrics = BTreeMap::new();
    for f in &opts.metrics_files {
        metrics.extend(metrics_file(&repo.cwd.join(f), &f.display().to_string())?);
    }
    metrics.extend(arg_metrics);
    let (added, mut git_paths, staged) = if opts.outputs.is_empty() {
        (Vec::new(), Vec::new(), repo.config.core.autostage)
    } else {
        let report = add(repo, &opts.outputs, progress)?;
        (report.added, report.git_paths, report.staged)
    };
    let mut outputs = Vec::new();
    for out in &opts.outputs {
        outputs.push(artifact_of(&Pointer::load(&repo.root, &pointer_file_for(out))?));
    }
    let mut tags: Vec<String> = Vec::new();
    for t in &opts.tags {
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let mut record = Record {
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
        tags,
    };
    record.id = record.compute_id();
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

/// A version named on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The path, as displayed (absent when a digest was given).
    pub path: Option<String>,
    /// The digest.
    pub digest: Digest,
    /// The size, when known.
    pub size: Option<u64>,
    /// The work-tree-relative path, for matching records.
    #[serde(skip)]
    pub rel: Option<String>,
}

impl Target {
    /// `path (digest)` or the digest, for messages.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{p} ({})", self.digest.short(12)),
            None => self.digest.to_string(),
        }
    }
}

/// Resolves PATH|DIGEST: a digest or a unique prefix of one (at least 6 hex characters) that
/// the lineage mentions, else a path: its pointer in the workspace, or at `rev`.
pub fn resolve_target(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<Target, Error> {
    let hex = arg.len() >= 6 && arg.chars().all(|c| c.is_ascii_hexdigit());
    if hex && !repo.cwd.join(arg).exists() {
        let lower = arg.to_ascii_lowercase();
        let found = match lower.parse::<Digest>() {
            Ok(d) => vec![d],
            Err(_) => lineage.digests_starting(&lower),
        };
        return match found.as_slice() {
            [] => Err(LineageError::UnknownDigest { prefix: arg.into() }.into()),
            [d] => Ok(Target {
                path: None,
                digest: *d,
                size: None,
                rel: None,
            }),
            many => Err(LineageError::Ambiguous {
                prefix: arg.into(),
                candidates: many.iter().take(5).map(|d| d.short(16)).collect(),
            }
            .into()),
        };
    }
    let rel = repo.user_path(Path::new(arg))?;
    let version = match rev {
        Some(r) => {
            let commit = resolve_commit(&repo.git, r)?;
            let tree = commit.tree().map_err(git_err("reading a tree"))?;
            version_in_tree(&repo.git, &tree, &rel)?
        }
        None => version_in_workspace(repo, &rel)?,
    };
    let v = version.ok_or_else(|| LineageError::UnknownPath {
        path: repo.display(&rel),
        rev: rev.map(str::to_string),
    })?;
    Ok(Target {
        path: Some(repo.display(&rel)),
        digest: v.digest,
        size: Some(v.size),
        rel: Some(rel.as_str().to_string()),
    })
}

/// What `lineage show` found.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// The version asked about.
    pub target: Target,
    /// The record that produced it, and its upstream chain.
    pub produced_by: Node,
}

/// The record that produced a version and its upstream chain.
pub fn show(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<ShowReport, Error> {
    let target = resolve_target(repo, lineage, arg, rev)?;
    let node = query::upstream(lineage, &target.digest, target.rel.as_deref()).ok_or_else(|| {
        LineageError::NoProducer {
            what: target.describe(),
        }
    })?;
    Ok(ShowReport {
        target,
        produced_by: node,
    })
}

/// What `lineage uses` found.
#[derive(Debug, Serialize)]
pub struct UsesReport {
    /// The version asked about.
    pub target: Target,
    /// Every record downstream, depth first.
    pub records: Vec<Downstream>,
    /// Every output derived from the version.
    pub outputs: Vec<Derived>,
}

/// Everything derived from a version.
pub fn uses(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<UsesReport, Error> {
    let target = resolve_target(repo, lineage, arg, rev)?;
    let records = query::downstream(lineage, &target.digest, target.rel.as_deref());
    let outputs = query::derived_outputs(&records);
    Ok(UsesReport {
        target,
        records,
        outputs,
    })
}

/// A digest of the lineage that cannot be had any more.
#[derive(Debug, Serialize)]
pub struct Unavailable {
    /// A record that mentions it.
    pub record: String,
    /// `input` or `output`.
    pub role: &'static str,
    /// The artifact.
    pub artifact: Artifact,
    /// Objects missing (for a directory: the manifest, or the files it lists).
    pub missing: u64,
}

/// The latest recorded version of an output against the workspace.
#[derive(Debug, Serialize)]
pub struct OutputCheck {
    /// The output path.
    pub path: String,
    /// The latest record that produced it.
    pub record: String,
    /// The version that record produced.
    pub recorded: Digest,
    /// The version the workspace pointer holds, if any.
    pub current: Option<Digest>,
    /// `matches`, `differs` (the pointer holds another version), `modified` (the pointer
    /// matches, the data in the workspace does not), `absent` (the data is not in the
    /// workspace) or `untracked` (no pointer).
    pub state: &'static str,
}

/// What `lineage verify` found.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// Readable records.
    pub records: usize,
    /// Distinct versions checked.
    pub checked: usize,
    /// Lines that are not valid records.
    pub problems: Vec<LineProblem>,
    /// Versions that can no longer be had.
    pub unavailable: Vec<Unavailable>,
    /// Each output's latest record against the workspace.
    pub outputs: Vec<OutputCheck>,
    /// No problems and nothing unavailable.
    pub ok: bool,
}

/// Checks that every digest of the lineage can still be had from `objects` (data tracked by
/// mlv) or git (files tracked by git), and compares each output's latest record with the
/// workspace.
pub fn verify(
    repo: &Repo,
    lineage: &Lineage,
    objects: &dyn ObjectSource,
    progress: &dyn Progress,
) -> Result<VerifyReport, Error> {
    let mut seen = HashSet::new();
    let mut unavailable = Vec::new();
    for r in lineage.by_time() {
        for (role, list) in [("input", &r.inputs), ("output", &r.outputs)] {
            for a in list {
                if !seen.insert((a.path.clone(), a.digest)) {
                    continue;
                }
                let missing = missing_objects(repo, r, a, objects)?;
                if missing > 0 {
                    unavailable.push(Unavailable {
                        record: r.id.clone(),
                        role,
                        artifact: a.clone(),
                        missing,
                    });
                }
            }
        }
    }
    let mut latest: BTreeMap<String, (&Record, Digest)> = BTreeMap::new();
    for r in lineage.by_time() {
        for o in &r.outputs {
            latest.insert(o.path.clone(), (r, o.digest));
        }
    }
    let mut outputs = Vec::new();
    for (path, (r, recorded)) in latest {
        let Ok(rel) = RelPath::new(&path) else { continue };
        let current = version_in_workspace(repo, &rel)?.map(|a| a.digest);
        let state = match current {
            None => "untracked",
            Some(d) if d != recorded => "differs",
            Some(_) => {
                let st = crate::ops::status::status(repo, std::slice::from_ref(&rel), progress)?;
                match st.pointers.first() {
                    Some(p) if p.state == State::Modified => "modified",
                    Some(p) if p.state == State::NotPulled && p.present() => "modified",
                    Some(p) if matches!(p.state, State::Missing | State::NotPulled) => "absent",
                    _ => "matches",
                }
            }
        };
        outputs.push(OutputCheck {
            path: repo.display(&rel),
            record: r.id.clone(),
            recorded,
            current,
            state,
        });
    }
    let ok = lineage.problems.is_empty() && unavailable.is_empty();
    Ok(VerifyReport {
        records: lineage.records.len(),
        checked: seen.len(),
        problems: lineage.problems.clone(),
        unavailable,
        outputs,
        ok,
    })
}

fn missing_objects(repo: &Repo, r: &Record, a: &Artifact, objects: &dyn ObjectSource) -> Result<u64, Error> {
    Ok(match a.kind {
        ArtifactKind::File => u64::from(!objects.has(&a.digest)?),
        // A source that cannot answer (unreachable remote, damaged manifest) is an error, not
        // "unavailable".
        ArtifactKind::Dir => match objects.manifest(&a.digest)? {
            Some(m) => {
                let mut missing = 0;
                for d in m.entries.iter().filter_map(|e| e.digest) {
                    missing += u64::from(!objects.has(&d)?);
                }
                missing
            }
            None => 1,
        },
        ArtifactKind::Git => u64::from(!git_file_available(repo, r, a)),
    })
}

/// Whether git still has a file's recorded content: at the record's commit, at HEAD, or in
/// the workspace.
fn git_file_available(repo: &Repo, r: &Record, a: &Artifact) -> bool {
    let Ok(rel) = RelPath::new(&a.path) else {
        return false;
    };
    let git = &repo.git;
    let commits = [
        r.commit.as_deref().and_then(|c| resolve_commit(git, c).ok()),
        head_commit(git),
    ];
    for c in commits.into_iter().flatten() {
        if let Ok(tree) = c.tree() {
            if let Ok(Some(v)) = version_in_tree(git, &tree, &rel) {
                if v.digest == a.digest {
                    return true;
                }
            }
        }
    }
    std::fs::read(rel.to_path(&repo.root)).is_ok_and(|b| Digest::of_bytes(&b) == a.digest)
}

/// A run on one side of `lineage diff`.
#[derive(Debug, Serialize)]
pub struct RunRef {
    /// The record id.
    pub id: String,
    /// When it was recorded.
    pub time: String,
    /// The commit it was made on.
    pub commit: Option<String>,
}

/// Two runs that produced the same outputs on the two sides.
#[derive(Debug, Serialize)]
pub struct RunPair {
    /// The output paths they produced.
    pub outputs: Vec<String>,
    /// The left run.
    pub left: Option<RunRef>,
    /// The right run.
    pub right: Option<RunRef>,
    /// Params and metrics side by side.
    pub rows: Vec<Row>,
}

/// What `lineage diff` found.
#[derive(Debug, Serialize)]
pub struct LineageDiffReport {
    /// The left side as given.
    pub left: String,
    /// The right side as given.
    pub right: String,
    /// One entry per pair of runs.
    pub pairs: Vec<RunPair>,
}

/// The runs of one side: a record id (prefix), or a git revision, whose runs are those that
/// produced the outputs tracked at that revision.
fn side<'l>(repo: &Repo, lineage: &'l Lineage, spec: &str) -> Result<Side<'l>, Error> {
    if spec.len() >= 6 && spec.chars().all(|c| c.is_ascii_hexdigit()) {
        if let Some(r) = lineage.find_id(&spec.to_ascii_lowercase())? {
            return Ok(Side::Record(r));
        }
    }
    let commit = resolve_commit(&repo.git, spec)?;
    let tree = commit.tree().map_err(git_err("reading a tree"))?;
    let mut out = BTreeMap::new();
    for p in pointers_in_tree(&repo.git, &tree)? {
        if let Some(r) = query::producers(lineage, &p.meta.digest, Some(p.data.as_str())).first() {
            out.insert(p.data.as_str().to_string(), *r);
        }
    }
    Ok(Side::Outputs(out))
}

enum Side<'l> {
    Record(&'l Record),
    Outputs(BTreeMap<String, &'l Record>),
}

/// Params and metrics of the runs behind two revisions (or two record ids), side by side.
pub fn diff(repo: &Repo, lineage: &Lineage, left: &str, right: &str) -> Result<LineageDiffReport, Error> {
    let as_map = |s: Side<'_>| -> BTreeMap<String, Record> {
        match s {
            Side::Record(r) => r.outputs.iter().map(|o| (o.path.clone(), r.clone())).collect(),
            Side::Outputs(m) => m.into_iter().map(|(k, v)| (k, v.clone())).collect(),
        }
    };
    let (l, r) = (side(repo, lineage, left)?, side(repo, lineage, right)?);
    let mut pairs: Vec<RunPair> = Vec::new();
    let run_ref = |r: &Record| RunRef {
        id: r.id.clone(),
        time: r.time.clone(),
        commit: r.commit.clone(),
    };
    if let (Side::Record(a), Side::Record(b)) = (&l, &r) {
        pairs.push(RunPair {
            outputs: b.outputs.iter().map(|o| o.path.clone()).collect(),
            left: Some(run_ref(a)),
            right: Some(run_ref(b)),
            rows: compare(Some(a), Some(b)),
        });
    } else {
        let (lm, rm) = (as_map(l), as_map(r));
        let paths: std::collections::BTreeSet<&String> = lm.keys().chain(rm.keys()).collect();
        for path in paths {
            let (a, b) = (lm.get(path), rm.get(path));
            let key = (a.map(|x| x.id.clone()), b.map(|x| x.id.clone()));
            if let Some(p) = pairs.iter_mut().find(|p| {
                (
                    p.left.as_ref().map(|x| x.id.clone()),
                    p.right.as_ref().map(|x| x.id.clone()),
                ) == key
            }) {
                p.outputs.push(path.clone());
                continue;
            }
            pairs.push(RunPair {
                outputs: vec![path.clone()],
                left: a.map(run_ref),
                right: b.map(run_ref),
                rows: compare(a, b),
            });
        }
    }
    Ok(LineageDiffReport {
        left: left.to_string(),
        right: right.to_string(),
        pairs,
    })
}
