//! `mlv import-dvc`: turn a DVC repository's `.dvc` files into mlv pointers.
//!
//! Every byte is checked against the md5 DVC recorded before it is trusted: the workspace copy
//! when it matches, else DVC's local cache (3.x `.dvc/cache/files/md5/ab/…` or 2.x
//! `.dvc/cache/ab/…`). Each file is read once (see `copy`): md5-checked, blake3-hashed into
//! mlv's cache and, from DVC's cache, restored to the workspace (as `dvc checkout` would); then
//! `mlv add` writes the pointer, finding every digest in the stat cache. A path that cannot be
//! imported is reported with its reason and nothing is written for it; the others still are.

mod copy;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fs::IoError;
use crate::gitutil::{ignore_entry, remove_ignore, stage};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

mod pipeline;
pub use pipeline::{RecordConverted, StageConverted, StageOutcome, RECORD_TAG};
pub mod config;
pub(crate) mod dvc_md5;
pub mod remote;
use dvc_md5::{DvcMd5, Md5Kind};

/// What to import and how.
#[derive(Debug, Default)]
pub struct ImportDvcOptions {
    /// Only `.dvc` files that are, or whose outputs are, within these paths (all when empty).
    pub paths: Vec<RelPath>,
    /// List what would be converted; change nothing.
    pub dry_run: bool,
    /// Leave the `.dvc` files in place.
    pub keep_dvc: bool,
    /// The DVC remote to read outputs without a `remote:` of their own from (else DVC's
    /// default).
    pub remote: Option<String>,
    /// Runs the DVC remote's requests (`None`: DVC remotes are not read).
    pub runtime: Option<tokio::runtime::Handle>,
}

/// Where an output's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The workspace already holds them (matching DVC's md5).
    Workspace,
    /// DVC's local cache (some or all files of a directory).
    DvcCache,
    /// A DVC remote (some or all files of a directory).
    DvcRemote,
}

/// One output converted (or, with `--dry-run`, to convert).
#[derive(Debug, Serialize)]
pub struct Converted {
    /// The data path, as displayed.
    pub path: String,
    /// The `.dvc` file it came from, as displayed.
    pub dvc_file: String,
    /// `file` or `directory`.
    pub kind: &'static str,
    /// Where the bytes come from (`dvc-cache` when any file of a directory does).
    pub source: Source,
    /// Bytes read from the workspace.
    pub bytes_from_workspace: u64,
    /// Bytes read from DVC's cache.
    pub bytes_from_dvc_cache: u64,
    /// Bytes read from a DVC remote (0 in a dry run: not read yet).
    pub bytes_from_dvc_remote: u64,
    /// The DVC remote read from, when one is.
    pub dvc_remote: Option<String>,
    /// The mlv pointer file (`null` in a dry run).
    pub pointer: Option<String>,
    /// The blake3 digest mlv recorded (`null` in a dry run).
    pub digest: Option<String>,
}

/// Why something was not imported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SkipKind {
    /// DVC's cache holds bytes that do not match its md5 (damaged): exit 3.
    Mismatch,
    /// The workspace differs from DVC's record (changed since `dvc commit`): left alone.
    Modified,
    /// The `.dvc` file is malformed, has an unknown field or a hostile path: refused.
    Refused,
    /// The bytes are in neither the workspace nor DVC's cache, and no DVC remote mlv can read
    /// is configured for them.
    NotAvailableLocally,
    /// The bytes are in neither the workspace, DVC's cache nor the DVC remote.
    NotAvailable,
    /// The DVC remote could not be read (unreachable, refused credentials...).
    RemoteError,
    /// A kind of output this slice does not convert (imports, `cache: false`, links...).
    Unsupported,
    /// `mlv.toml` already has a different stage of the same name: left as it is.
    Conflict,
}

/// One path not imported.
#[derive(Debug, Serialize)]
pub struct Skipped {
    /// The `.dvc` file (or `dvc.yaml`/`dvc.lock`), as displayed.
    pub dvc_file: String,
    /// The data path, when known.
    pub path: Option<String>,
    /// The class of reason.
    pub kind: SkipKind,
    /// The reason, one line.
    pub reason: String,
}

/// What `import-dvc` did.
#[derive(Debug, Serialize)]
pub struct ImportDvcReport {
    /// Whether this was a dry run (nothing changed).
    pub dry_run: bool,
    /// Outputs converted.
    pub converted: Vec<Converted>,
    /// Pointers written or rewritten (0 in a dry run).
    pub pointers_written: u64,
    /// Bytes read from each source.
    pub bytes: BTreeMap<&'static str, u64>,
    /// DVC's remotes converted into mlv remotes (or, in a dry run, to convert).
    pub remotes: Vec<config::RemoteConversion>,
    /// Outputs not imported, with reasons.
    pub skipped: Vec<Skipped>,
    /// `dvc.yaml` stages converted into `mlv.toml` stages.
    pub stages: Vec<StageConverted>,
    /// `dvc.lock` stages turned into lineage records.
    pub records: Vec<RecordConverted>,
    /// `.dvc` files removed (`git rm` semantics), as displayed.
    pub removed_dvc_files: Vec<String>,
    /// Files to commit with git, as displayed.
    pub git_paths: Vec<String>,
    /// Whether they were staged.
    pub staged: bool,
}

impl ImportDvcReport {
    /// Whether some output failed an integrity check or was refused (the command then exits
    /// non-zero); outputs only in a remote or of a kind not converted yet do not count.
    pub fn failed(&self) -> bool {
        self.skipped.iter().any(|s| {
            matches!(
                s.kind,
                SkipKind::Mismatch
                    | SkipKind::Modified
                    | SkipKind::Refused
                    | SkipKind::Conflict
                    | SkipKind::RemoteError
            )
        })
    }
}

/// A `.dvc` file, as DVC 2.x and 3.x write it. Unknown fields are refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DvcFile {
    #[serde(default)]
    outs: Vec<DvcOut>,
    #[serde(default)]
    deps: Vec<serde_norway::Value>,
    #[serde(default)]
    md5: Option<String>,
    #[serde(default)]
    frozen: Option<bool>,
    #[serde(default)]
    wdir: Option<String>,
    #[serde(default)]
    meta: Option<serde_norway::Value>,
    #[serde(default)]
    desc: Option<String>,
}

/// One output of a `.dvc` file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DvcOut {
    path: String,
    #[serde(default)]
    md5: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    nfiles: Option<u64>,
    #[serde(default)]
    isexec: Option<bool>,
    #[serde(default)]
    cache: Option<bool>,
    #[serde(default)]
    persist: Option<bool>,
    #[serde(default)]
    remote: Option<String>,
    #[serde(default)]
    push: Option<bool>,
    #[serde(default)]
    desc: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    labels: Option<Vec<String>>,
    #[serde(default)]
    meta: Option<serde_norway::Value>,
    #[serde(default)]
    cloud: Option<serde_norway::Value>,
}

/// One entry of a DVC `.dir` manifest.
#[derive(Debug, Deserialize)]
struct DirEntry {
    md5: String,
    relpath: String,
    #[serde(default)]
    isexec: bool,
}

/// An output ready to import.
struct Plan {
    data: RelPath,
    dvc_file: RelPath,
    is_dir: bool,
    /// Which md5 DVC recorded (2.x: CRLF hashed as LF in text files).
    kind: Md5Kind,
    /// Its files, each from the workspace or DVC's cache (read and checked by `copy`).
    files: Vec<copy::FileTask>,
    from_workspace: u64,
    from_cache: u64,
    /// Files to read from DVC remote `remote`.
    fetches: Vec<remote::Fetch>,
    remote: Option<String>,
    from_remote: u64,
}

/// Where bytes can come from besides the workspace: DVC's cache (`cache.dir`, else
/// `.dvc/cache`) and its remotes.
struct Sources {
    cache: PathBuf,
    remotes: Option<remote::DvcRemotes>,
}

/// The work tree being imported: enough to plan without `.mlv/` (a dry run changes nothing,
/// not even `mlv init`).
#[derive(Debug)]
pub struct Tree {
    /// The work-tree root (canonical).
    pub root: PathBuf,
    /// The current directory (canonical), for displayed paths.
    pub cwd: PathBuf,
}

impl Tree {
    /// The tree of an open repository.
    pub fn of(repo: &Repo) -> Tree {
        Tree {
            root: repo.root.clone(),
            cwd: repo.cwd.clone(),
        }
    }

    fn display(&self, rel: &RelPath) -> String {
        crate::repo::display_relative(&self.cwd, &self.root, rel)
    }
}

/// Plans the import and reports it; changes nothing (`--dry-run`).
pub fn dry_run(tree: &Tree, options: &ImportDvcOptions) -> Result<ImportDvcReport, Error> {
    let Planned {
        mut report,
        plans,
        pipe,
        dvc_config,
        found,
        ..
    } = plan(tree, options)?;
    let outputs: Vec<&[copy::FileTask]> = plans.iter().map(|p| p.files.as_slice()).collect();
    let failures = copy::check(tree, &outputs);
    let plans = settle(tree, &mut report, (plans, found), failures);
    report.dry_run = true;
    report.converted = plans.iter().map(|p| converted_of(tree, p)).collect();
    let done = pipeline::dry_run(&pipe, &tree.root, &mut report.skipped);
    report.stages = done.stages;
    report.records = done.records;
    report.remotes = config::apply(&tree.root, &dvc_config, None)?;
    Ok(report)
}

/// Moves the outputs that failed a check into `report.skipped`, in the order of the `.dvc`
/// files; returns the others.
fn settle(
    tree: &Tree,
    report: &mut ImportDvcReport,
    (plans, found): (Vec<Plan>, Vec<String>),
    failures: Vec<Option<(SkipKind, String)>>,
) -> Vec<Plan> {
    let mut ok = Vec::with_capacity(plans.len());
    for (plan, failure) in plans.into_iter().zip(failures) {
        match failure {
            None => ok.push(plan),
            Some((kind, reason)) => {
                report
                    .skipped
                    .push(skip(tree, &plan.dvc_file, Some(&plan.data), kind, reason))
            }
        }
    }
    // in the order the files were found (pipeline files first; a stable sort)
    let order: BTreeMap<String, usize> = found.into_iter().enumerate().map(|(i, f)| (f, i + 1)).collect();
    report
        .skipped
        .sort_by_key(|s| order.get(&s.dvc_file).copied().unwrap_or(0));
    let mut bytes = BTreeMap::new();
    bytes.insert("workspace", ok.iter().map(|p| p.from_workspace).sum());
    bytes.insert("dvc-cache", ok.iter().map(|p| p.from_cache).sum());
    bytes.insert("dvc-remote", ok.iter().map(|p| p.from_remote).sum());
    report.bytes = bytes;
    ok
}

fn converted_of(tree: &Tree, p: &Plan) -> Converted {
    Converted {
        path: tree.display(&p.data),
        dvc_file: tree.display(&p.dvc_file),
        kind: if p.is_dir { "directory" } else { "file" },
        source: if !p.fetches.is_empty() {
            Source::DvcRemote
        } else if p
            .files
            .iter()
            .any(|f| matches!(f.origin, copy::Origin::DvcCache(_)))
        {
            Source::DvcCache
        } else {
            Source::Workspace
        },
        bytes_from_workspace: p.from_workspace,
        bytes_from_dvc_cache: p.from_cache,
        bytes_from_dvc_remote: p.from_remote,
        dvc_remote: p.remote.clone(),
        pointer: None,
        digest: None,
    }
}

/// What planning found (no data read yet: `copy` checks it).
struct Planned {
    report: ImportDvcReport,
    plans: Vec<Plan>,
    pipe: pipeline::PipelinePlan,
    dvc_config: config::DvcConfig,
    sources: Sources,
    /// The `.dvc` files found, as displayed, in order.
    found: Vec<String>,
}

/// Finds and reads every `.dvc` file selected by `options` and plans each output (reading no
/// data besides `.dir` manifests: `copy` checks it).
fn plan(repo: &Tree, options: &ImportDvcOptions) -> Result<Planned, Error> {
    let dvc_config = config::load(&repo.root)?;
    let sources = Sources {
        cache: dvc_config
            .cache_dir
            .clone()
            .unwrap_or_else(|| repo.root.join(".dvc").join("cache")),
        remotes: match &options.runtime {
            Some(rt) => Some(remote::DvcRemotes::open(
                &repo.root,
                &dvc_config,
                options.remote.as_deref(),
                rt.clone(),
            )?),
            None => None,
        },
    };
    let mut dvc_files = Vec::new();
    let mut pipeline_files = Vec::new();
    find_dvc_files(&repo.root, &repo.root, &mut dvc_files, &mut pipeline_files)?;
    let mut skipped = Vec::new();
    let mut plans = Vec::new();
    for file in &dvc_files {
        match plan_file(repo, &sources, file, &options.paths) {
            Ok(found) => {
                for r in found {
                    match r {
                        Ok(plan) => plans.push(plan),
                        Err(s) => skipped.push(s),
                    }
                }
            }
            Err(s) => skipped.push(s),
        }
    }
    // dvc.lock outputs are planned as .dvc outputs are
    let pipe = pipeline::plan(
        repo,
        &sources,
        &pipeline_files,
        &options.paths,
        &mut plans,
        &mut skipped,
    );
    let report = ImportDvcReport {
        dry_run: false,
        converted: Vec::new(),
        pointers_written: 0,
        // counted by `settle`, once the data was checked
        bytes: BTreeMap::new(),
        remotes: Vec::new(),
        skipped,
        stages: Vec::new(),
        records: Vec::new(),
        removed_dvc_files: Vec::new(),
        git_paths: Vec::new(),
        staged: false,
    };
    let found = dvc_files.iter().map(|f| repo.display(f)).collect();
    Ok(Planned {
        report,
        plans,
        pipe,
        dvc_config,
        sources,
        found,
    })
}

/// Imports the `.dvc` files of `repo` (see the module documentation).
pub fn import_dvc(
    repo: &Repo,
    options: &ImportDvcOptions,
    progress: &dyn Progress,
) -> Result<ImportDvcReport, Error> {
    let tree = Tree::of(repo);
    if options.dry_run {
        return dry_run(&tree, options);
    }
    let Planned {
        mut report,
        plans,
        pipe,
        dvc_config,
        sources,
        found,
    } = plan(&tree, options)?;
    report.remotes = config::apply(&tree.root, &dvc_config, Some(repo))?;
    // Bytes only in a DVC remote first: fetched concurrently, md5-checked, renamed into place
    // (nothing of an output whose fetch failed reaches the work tree).
    type Numbered = Vec<(usize, Plan)>;
    let (remote_plans, mut plans): (Numbered, Numbered) = plans
        .into_iter()
        .enumerate()
        .partition(|(_, p)| p.remote.is_some());
    if let (Some(remotes), false) = (sources.remotes.as_ref(), remote_plans.is_empty()) {
        let outputs: Vec<(&str, &[remote::Fetch])> = remote_plans
            .iter()
            .map(|(_, p)| (p.remote.as_deref().unwrap_or_default(), p.fetches.as_slice()))
            .collect();
        let got = remotes.fetch_all(&outputs, &repo.root, &repo.tmp_dir())?;
        for ((i, mut plan), got) in remote_plans.into_iter().zip(got) {
            match got {
                Ok(n) => {
                    plan.from_remote = n;
                    plans.push((i, plan));
                }
                Err((kind, reason)) => {
                    let s = skip(&tree, &plan.dvc_file, Some(&plan.data), kind, reason);
                    report.skipped.push(s)
                }
            }
        }
    }
    // the report keeps the order of the .dvc files
    plans.sort_by_key(|(i, _)| *i);
    let plans: Vec<Plan> = plans.into_iter().map(|(_, p)| p).collect();
    // Each file from the workspace or DVC's cache read once: md5-checked, stored in mlv's
    // cache, restored to the workspace when it came from DVC's cache; its digest handed to add
    // through the stat cache. (Files fetched from a DVC remote are in the workspace now: add
    // hashes them.)
    let outputs: Vec<&[copy::FileTask]> = plans.iter().map(|p| p.files.as_slice()).collect();
    let brought = copy::bring_in(repo, &tree, &outputs, progress)?;
    let ready = settle(&tree, &mut report, (plans, found), brought.failures);
    let mut ready_converted: Vec<Converted> = ready.iter().map(|p| converted_of(&tree, p)).collect();
    // DVC's .gitignore lines for the outputs give way to mlv's (written by add).
    let mut git_paths = Vec::new();
    for plan in &ready {
        let (ignore_file, line) = ignore_entry(&plan.data).expect("a valid work-tree path");
        let dvc_line = format!("/{}", plan.data.file_name());
        if dvc_line != line && remove_ignore(&repo.root, &ignore_file, &dvc_line)? {
            git_paths.push(ignore_file);
        }
    }
    let paths: Vec<RelPath> = ready.iter().map(|p| p.data.clone()).collect();
    let added = match paths.is_empty() {
        true => super::add::AddReport {
            added: Vec::new(),
            git_paths: Vec::new(),
            staged: repo.config.core.autostage,
        },
        false => super::add::add_with_stat(repo, &paths, brought.stat, progress)?,
    };
    for (conv, a) in ready_converted.iter_mut().zip(&added.added) {
        conv.pointer = Some(a.pointer.clone());
        conv.digest = Some(a.digest.clone());
        if a.changed {
            report.pointers_written += 1;
        }
    }
    report.converted = ready_converted;
    // the stages into mlv.toml, the dvc.lock stages into records (their outputs are pointers now)
    let done = pipeline::convert(repo, &pipe, options.keep_dvc, &mut report.skipped)?;
    report.stages = done.stages;
    report.records = done.records;
    let mut removed = Vec::new();
    if !options.keep_dvc {
        let mut seen = std::collections::BTreeSet::new();
        // a dvc.lock goes once all of it is converted; dvc.yaml stays (the user's pipeline file)
        let files = ready
            .iter()
            .map(|p| &p.dvc_file)
            .filter(|f| f.file_name() != "dvc.lock")
            .chain(&done.locks_done);
        for file in files {
            if seen.insert(file.clone()) {
                crate::fs::remove_file_if_exists(&file.to_path(&repo.root))?;
                removed.push(file.clone());
            }
        }
        // `git rm`: out of the index too (the user commits)
        stage(&repo.git, &repo.root, &removed)?;
    }
    report.removed_dvc_files = removed.iter().map(|p| repo.display(p)).collect();
    let mut all: Vec<String> = added.git_paths;
    all.extend(done.git_paths);
    all.extend(git_paths.iter().map(|p| repo.display(p)));
    all.extend(report.removed_dvc_files.iter().cloned());
    if report.remotes.iter().any(|r| r.outcome == "added") {
        // the converted remotes (their secrets went to the git-ignored local config)
        let config = RelPath::new_unchecked(".mlv/config.toml".to_string());
        all.push(repo.display(&config));
    }
    all.sort();
    all.dedup();
    report.git_paths = all;
    report.staged = added.staged;
    Ok(report)
}

/// Finds `.dvc` files and DVC pipeline files below `dir`, not following links and skipping
/// `.git`, `.dvc` and `.mlv`.
fn find_dvc_files(
    root: &Path,
    dir: &Path,
    dvc: &mut Vec<RelPath>,
    pipelines: &mut Vec<RelPath>,
) -> Result<(), IoError> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| IoError::new("cannot read directory", dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| IoError::new("cannot read directory", dir, e))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let path = e.path();
        let ft = e
            .file_type()
            .map_err(|err| IoError::new("cannot inspect", &path, err))?;
        if ft.is_dir() {
            if matches!(name, ".git" | ".dvc" | ".mlv") {
                continue;
            }
            find_dvc_files(root, &path, dvc, pipelines)?;
        } else if ft.is_file()
            && ((name.ends_with(".dvc") && name != ".dvc") || matches!(name, "dvc.yaml" | "dvc.lock"))
        {
            let rel = path
                .strip_prefix(root)
                .ok()
                .and_then(|p| p.to_str())
                .and_then(|p| RelPath::new(p).ok());
            let Some(rel) = rel else { continue };
            if name.ends_with(".dvc") && name != ".dvc" {
                dvc.push(rel);
            } else if matches!(name, "dvc.yaml" | "dvc.lock") {
                pipelines.push(rel);
            }
        }
    }
    Ok(())
}

fn skip(repo: &Tree, file: &RelPath, path: Option<&RelPath>, kind: SkipKind, reason: String) -> Skipped {
    Skipped {
        dvc_file: repo.display(file),
        path: path.map(|p| repo.display(p)),
        kind,
        reason,
    }
}

/// Reads one `.dvc` file and plans each of its outputs. `Err` refuses the whole file.
#[allow(clippy::type_complexity)]
fn plan_file(
    repo: &Tree,
    sources: &Sources,
    file: &RelPath,
    only: &[RelPath],
) -> Result<Vec<Result<Plan, Skipped>>, Skipped> {
    let refuse = |reason: String| skip(repo, file, None, SkipKind::Refused, reason);
    let text = crate::fs::read_to_string_nofollow_or_empty(&file.to_path(&repo.root))
        .map_err(|e| refuse(e.to_string()))?;
    let parsed: DvcFile =
        serde_norway::from_str(&text).map_err(|e| refuse(format!("not a valid .dvc file: {e}")))?;
    let _ = (&parsed.md5, &parsed.meta, &parsed.desc);
    if parsed.wdir.as_deref().is_some_and(|w| w != ".") {
        return Err(skip(
            repo,
            file,
            None,
            SkipKind::Unsupported,
            "`wdir` is not converted yet".into(),
        ));
    }
    let base = file.parent();
    let mut out = Vec::new();
    for o in &parsed.outs {
        let data = match out_path(repo, base.as_ref(), &o.path) {
            Ok(d) => d,
            Err(reason) => {
                out.push(Err(refuse(format!(
                    "output `{}`: {reason}",
                    crate::relpath::printable(&o.path)
                ))));
                continue;
            }
        };
        if !only.is_empty() && !only.iter().any(|p| data.is_within(p) || file.is_within(p)) {
            continue;
        }
        let _ = (
            &o.size, &o.nfiles, &o.persist, &o.push, &o.desc, &o.kind, &o.labels, &o.meta,
        );
        let unsupported = |reason: &str| {
            Err(skip(
                repo,
                file,
                Some(&data),
                SkipKind::Unsupported,
                reason.into(),
            ))
        };
        if !parsed.deps.is_empty() {
            out.push(unsupported(
                "`dvc import`/`import-url` outputs are not converted yet",
            ));
        } else if parsed.frozen == Some(true) {
            out.push(unsupported("frozen: not converted yet"));
        } else if o.cache == Some(false) {
            out.push(unsupported(
                "`cache: false`: DVC does not keep these bytes; track it with git or `mlv add`",
            ));
        } else if o.cloud.is_some() {
            out.push(unsupported("cloud versioning is not converted yet"));
        } else if o.hash.as_deref().is_some_and(|h| h != "md5") {
            out.push(Err(refuse(format!(
                "unknown hash `{}`",
                o.hash.as_deref().unwrap_or_default()
            ))));
        } else {
            match o.md5.as_deref() {
                None => out.push(unsupported("no md5 recorded (run `dvc commit` first)")),
                Some(md5) => {
                    let at = (sources, o.remote.as_deref());
                    let md5 = (md5, Md5Kind::of(o.hash.as_deref()));
                    out.push(plan_out(repo, at, file, data, md5, o.isexec == Some(true)))
                }
            }
        }
    }
    Ok(out)
}

/// Validates an output path: relative, no `..`, inside the work tree, not through a link.
fn out_path(repo: &Tree, base: Option<&RelPath>, path: &str) -> Result<RelPath, String> {
    if path.starts_with('/') || path.contains('\\') {
        return Err("an absolute path; refused".into());
    }
    let trimmed = path.trim_end_matches('/');
    let data = match base {
        Some(b) => b.join(trimmed),
        None => RelPath::new(trimmed),
    }
    .map_err(|e| format!("not a valid work-tree path ({e}); refused"))?;
    if data
        .as_str()
        .split('/')
        .any(|p| matches!(p, ".git" | ".dvc" | ".mlv"))
    {
        return Err("inside .git, .dvc or .mlv; refused".into());
    }
    let mut at = repo.root.clone();
    for part in data.as_str().split('/') {
        at.push(part);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "goes through the symbolic link {}; refused",
                crate::relpath::printable_path(&at)
            ));
        }
    }
    Ok(data)
}

/// The md5 of a file's bytes (and its length); `None` when it cannot be read.
fn md5_of(path: &Path, kind: Md5Kind) -> Option<(String, u64)> {
    let mut f = std::fs::File::open(path).ok()?;
    copy::read_hashing(&mut f, kind, false, |_| Ok(()))
        .ok()
        .map(|(md5, _, n)| (md5, n))
}

fn valid_md5(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// DVC's cache object for `md5` (3.x layout first, then 2.x); `None` when neither holds it.
fn dvc_cache_object(cache: &Path, md5: &str) -> Option<(PathBuf, u64)> {
    dvc_md5::object_keys(md5).into_iter().find_map(|key| {
        let p = cache.join(key);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_file() => Some((p, m.len())),
            _ => None,
        }
    })
}

/// Bytes for one file output or one directory entry (`meta`: its lstat in the workspace): the
/// workspace when it holds a regular file, else DVC's cache, else the DVC remote `remote`.
/// Reads no data: `copy` checks the md5 (a workspace file that differs is "modified", left
/// alone; a cache object that differs is a "mismatch"), `remote` checks fetched bytes.
#[allow(clippy::too_many_arguments)]
fn locate(
    repo: &Tree,
    sources: &Sources,
    remote: Option<&str>,
    data: &RelPath,
    meta: std::io::Result<std::fs::Metadata>,
    md5: &str,
    exec: bool,
    plan: &mut Plan,
) -> Result<(), (SkipKind, String)> {
    let shown = repo.display(data);
    let (origin, len) = match meta {
        Ok(m) if m.is_file() => {
            plan.from_workspace += m.len();
            (copy::Origin::Workspace, m.len())
        }
        Ok(_) => {
            return Err((
                SkipKind::Modified,
                format!("{shown}: not a regular file in the workspace (a DVC link?); not converted yet"),
            ))
        }
        Err(_) => {
            let Some((obj, len)) = dvc_cache_object(&sources.cache, md5) else {
                if let Some(name) = remote {
                    plan.remote = Some(name.to_string());
                    plan.fetches.push(remote::Fetch {
                        md5: md5.into(),
                        kind: plan.kind,
                        to: data.clone(),
                        exec,
                    });
                    return Ok(());
                }
                return Err((SkipKind::NotAvailableLocally, format!("{shown}: not available locally, and no DVC remote is configured (see `dvc remote list`)")));
            };
            plan.from_cache += len;
            (copy::Origin::DvcCache(obj), len)
        }
    };
    plan.files.push(copy::FileTask {
        to: data.clone(),
        origin,
        md5: md5.into(),
        kind: plan.kind,
        exec,
        len,
    });
    Ok(())
}

fn plan_out(
    repo: &Tree,
    (sources, out_remote): (&Sources, Option<&str>),
    file: &RelPath,
    data: RelPath,
    (md5, md5_kind): (&str, Md5Kind),
    exec: bool,
) -> Result<Plan, Skipped> {
    let remote = sources.remotes.as_ref().and_then(|r| r.name_for(out_remote));
    let is_dir = md5.ends_with(".dir");
    let hex_part = md5.strip_suffix(".dir").unwrap_or(md5);
    if !valid_md5(hex_part) {
        return Err(skip(
            repo,
            file,
            Some(&data),
            SkipKind::Refused,
            format!("`{}` is not an md5; refused", crate::relpath::printable(md5)),
        ));
    }
    let mut plan = Plan {
        data: data.clone(),
        dvc_file: file.clone(),
        is_dir,
        kind: md5_kind,
        files: Vec::new(),
        from_workspace: 0,
        from_cache: 0,
        fetches: Vec::new(),
        remote: None,
        from_remote: 0,
    };
    let fail = |(kind, reason): (SkipKind, String)| skip(repo, file, Some(&data), kind, reason);
    if !is_dir {
        let meta = std::fs::symlink_metadata(data.to_path(&repo.root));
        locate(repo, sources, remote, &data, meta, hex_part, exec, &mut plan).map_err(fail)?;
        return Ok(plan);
    }
    // The `.dir` manifest lives only in DVC's cache (else its remote); its own md5 is checked
    // first.
    let bytes = match (dvc_cache_object(&sources.cache, md5), remote) {
        (Some((obj, _)), _) => {
            let bytes = std::fs::read(&obj).map_err(|e| {
                fail((SkipKind::Mismatch, format!("cannot read DVC's manifest: {e}")))
            })?;
            let got = DvcMd5::of(md5_kind, &bytes);
            if got != hex_part {
                return Err(fail((
                    SkipKind::Mismatch,
                    format!(
                        "DVC's `.dir` manifest {} has md5 {got}, expected {hex_part}; imported nothing",
                        crate::relpath::printable_path(&obj)
                    ),
                )));
            }
            bytes
        }
        (None, Some(name)) => sources
            .remotes
            .as_ref()
            .expect("a remote name comes from the remotes")
            .read(name, md5, md5_kind)
            .map_err(fail)?,
        (None, None) => {
            return Err(fail((
                SkipKind::NotAvailableLocally,
                "DVC's `.dir` manifest is not available locally and no DVC remote is configured (see `dvc remote list`)".into(),
            )))
        }
    };
    let entries: Vec<DirEntry> = serde_json::from_slice(&bytes).map_err(|e| {
        fail((
            SkipKind::Refused,
            format!("DVC's `.dir` manifest is not valid: {e}"),
        ))
    })?;
    let mut listed = std::collections::HashSet::new();
    let mut safe_dirs = std::collections::HashSet::new();
    let mut files = Vec::with_capacity(entries.len());
    for e in &entries {
        let path = data.join(&e.relpath).map_err(|err| {
            fail((
                SkipKind::Refused,
                format!(
                    "manifest entry `{}`: {err}; refused",
                    crate::relpath::printable(&e.relpath)
                ),
            ))
        })?;
        if !valid_md5(&e.md5) {
            return Err(fail((
                SkipKind::Refused,
                format!(
                    "manifest entry `{}`: not an md5; refused",
                    crate::relpath::printable(&e.relpath)
                ),
            )));
        }
        // no component may be a link: each directory is looked at once here, the files below
        let mut at = repo.root.clone();
        let mut parts = path.as_str().split('/').peekable();
        while let Some(part) = parts.next() {
            at.push(part);
            if parts.peek().is_none() || safe_dirs.contains(&at) {
                continue;
            }
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(fail((
                    SkipKind::Refused,
                    format!(
                        "{} is a symbolic link; refused",
                        crate::relpath::printable_path(&at)
                    ),
                )));
            }
            safe_dirs.insert(at.clone());
        }
        files.push((path, at, e));
    }
    // the files' lstats in parallel (the one `locate` uses), then each file in manifest order
    let metas: Vec<_> = {
        use rayon::prelude::*;
        files
            .par_iter()
            .map(|(_, at, _)| std::fs::symlink_metadata(at))
            .collect()
    };
    for ((path, at, e), meta) in files.into_iter().zip(metas) {
        if meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(fail((
                SkipKind::Refused,
                format!(
                    "{} is a symbolic link; refused",
                    crate::relpath::printable_path(&at)
                ),
            )));
        }
        locate(repo, sources, remote, &path, meta, &e.md5, e.isexec, &mut plan).map_err(fail)?;
        listed.insert(path);
    }
    // Files DVC does not list: the directory changed since `dvc commit`; importing would record
    // something DVC never did.
    let mut extra = Vec::new();
    let dir = data.to_path(&repo.root);
    if dir.is_dir() {
        collect_files(&repo.root, &dir, &mut extra);
    }
    if let Some(x) = extra.iter().find(|x| !listed.contains(*x)) {
        return Err(fail((
            SkipKind::Modified,
            format!(
                "{} is not in DVC's record of the directory (changed since `dvc commit`?); left alone",
                repo.display(x)
            ),
        )));
    }
    Ok(plan)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<RelPath>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(root, &p, out),
            Ok(_) => {
                if let Some(rel) = p
                    .strip_prefix(root)
                    .ok()
                    .and_then(|r| r.to_str())
                    .and_then(|r| RelPath::new(r).ok())
                {
                    out.push(rel);
                }
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dvc_files_of_both_versions_parse_and_unknown_fields_are_refused() {
        let v3 = "outs:\n- md5: b1946ac92492d2347c6235b4d2611184\n  size: 6\n  hash: md5\n  path: a.txt\n";
        let f: DvcFile = serde_norway::from_str(v3).unwrap();
        assert_eq!(f.outs[0].hash.as_deref(), Some("md5"));
        let v2 = "md5: 0123\nouts:\n- md5: 3b0e8a3ab3c4bb7ce0b4d3a8f5e4a7b1.dir\n  size: 8\n  nfiles: 2\n  path: data\n";
        let f: DvcFile = serde_norway::from_str(v2).unwrap();
        assert_eq!(f.outs[0].nfiles, Some(2));
        for bad in [
            "outs:\n- md5: x\n  path: a\n  frobnicate: 1\n",
            "outs:\n- md5: x\n  path: a\nextra: 1\n",
        ] {
            assert!(serde_norway::from_str::<DvcFile>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn md5s_are_32_lowercase_hex_digits() {
        assert!(valid_md5("b1946ac92492d2347c6235b4d2611184"));
        for bad in [
            "",
            "B1946AC92492D2347C6235B4D2611184",
            "../../../../etc/passwd0000000000",
            "b1946ac9",
        ] {
            assert!(!valid_md5(bad), "{bad}");
        }
    }
}
