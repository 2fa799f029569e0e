//! `mlv import-dvc`: turn a DVC repository's `.dvc` files into mlv pointers.
//!
//! Every byte is checked against the md5 DVC recorded before it is trusted: the workspace copy
//! when it matches, else DVC's local cache (3.x `.dvc/cache/files/md5/ab/…` or 2.x
//! `.dvc/cache/ab/…`). Data restored from the cache goes to the workspace (as `dvc checkout`
//! would), then `mlv add` hashes it into mlv's cache and writes the pointer. A path that cannot
//! be imported is reported with its reason and nothing is written for it; the others still are.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::{Digest as _, Md5};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fs::IoError;
use crate::gitutil::{ignore_entry, remove_ignore, stage};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

mod dvc_md5;

/// What to import and how.
#[derive(Debug, Default)]
pub struct ImportDvcOptions {
    /// Only `.dvc` files that are, or whose outputs are, within these paths (all when empty).
    pub paths: Vec<RelPath>,
    /// List what would be converted; change nothing.
    pub dry_run: bool,
    /// Leave the `.dvc` files in place.
    pub keep_dvc: bool,
}

/// Where an output's bytes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    /// The workspace already holds them (matching DVC's md5).
    Workspace,
    /// DVC's local cache (some or all files of a directory).
    DvcCache,
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
    /// The bytes are only in a DVC remote (not in this slice).
    NotAvailableLocally,
    /// A kind of output this slice does not convert (imports, `cache: false`, links...).
    Unsupported,
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
    /// Outputs not imported, with reasons.
    pub skipped: Vec<Skipped>,
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
                SkipKind::Mismatch | SkipKind::Modified | SkipKind::Refused
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

/// A file to bring into the workspace from DVC's cache before `mlv add`.
struct Restore {
    from: PathBuf,
    to: RelPath,
    md5: String,
    exec: bool,
}

/// An output ready to import.
struct Plan {
    data: RelPath,
    dvc_file: RelPath,
    is_dir: bool,
    restores: Vec<Restore>,
    from_workspace: u64,
    from_cache: u64,
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
    let (mut report, plans) = plan(tree, options)?;
    report.dry_run = true;
    report.converted = plans.iter().map(|p| converted_of(tree, p)).collect();
    Ok(report)
}

fn converted_of(tree: &Tree, p: &Plan) -> Converted {
    Converted {
        path: tree.display(&p.data),
        dvc_file: tree.display(&p.dvc_file),
        kind: if p.is_dir { "directory" } else { "file" },
        source: if p.restores.is_empty() {
            Source::Workspace
        } else {
            Source::DvcCache
        },
        bytes_from_workspace: p.from_workspace,
        bytes_from_dvc_cache: p.from_cache,
        pointer: None,
        digest: None,
    }
}

/// Finds and reads every `.dvc` file selected by `options` and plans each output.
fn plan(repo: &Tree, options: &ImportDvcOptions) -> Result<(ImportDvcReport, Vec<Plan>), Error> {
    let mut dvc_files = Vec::new();
    let mut pipeline_files = Vec::new();
    find_dvc_files(&repo.root, &repo.root, &mut dvc_files, &mut pipeline_files)?;
    let mut skipped = Vec::new();
    for f in &pipeline_files {
        skipped.push(Skipped {
            dvc_file: repo.display(f),
            path: None,
            kind: SkipKind::Unsupported,
            reason: "dvc.yaml stages and dvc.lock records are not converted yet".into(),
        });
    }
    let mut plans = Vec::new();
    for file in &dvc_files {
        match plan_file(repo, file, &options.paths) {
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
    let mut bytes = BTreeMap::new();
    bytes.insert("workspace", plans.iter().map(|p| p.from_workspace).sum());
    bytes.insert("dvc-cache", plans.iter().map(|p| p.from_cache).sum());
    let report = ImportDvcReport {
        dry_run: false,
        converted: Vec::new(),
        pointers_written: 0,
        bytes,
        skipped,
        removed_dvc_files: Vec::new(),
        git_paths: Vec::new(),
        staged: false,
    };
    Ok((report, plans))
}

/// Imports the `.dvc` files of `repo` (see the module documentation).
pub fn import_dvc(
    repo: &Repo,
    options: &ImportDvcOptions,
    progress: &dyn Progress,
) -> Result<ImportDvcReport, Error> {
    let tree = Tree::of(repo);
    let (mut report, plans) = plan(&tree, options)?;
    if options.dry_run {
        report.dry_run = true;
        report.converted = plans.iter().map(|p| converted_of(&tree, p)).collect();
        return Ok(report);
    }
    if plans.is_empty() {
        return Ok(report);
    }
    // Bring the bytes into the workspace, each checked again while it is copied.
    let mut ready = Vec::new();
    let mut ready_converted = Vec::new();
    for plan in plans {
        let conv = converted_of(&tree, &plan);
        match restore_all(repo, &plan) {
            Ok(()) => {
                ready.push(plan);
                ready_converted.push(conv);
            }
            Err(reason) => report.skipped.push(Skipped {
                dvc_file: repo.display(&plan.dvc_file),
                path: Some(repo.display(&plan.data)),
                kind: SkipKind::Mismatch,
                reason,
            }),
        }
    }
    if ready.is_empty() {
        return Ok(report);
    }
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
    let added = super::add::add(repo, &paths, progress)?;
    for (conv, a) in ready_converted.iter_mut().zip(&added.added) {
        conv.pointer = Some(a.pointer.clone());
        conv.digest = Some(a.digest.clone());
        if a.changed {
            report.pointers_written += 1;
        }
    }
    report.converted = ready_converted;
    let mut removed = Vec::new();
    if !options.keep_dvc {
        let mut seen = std::collections::BTreeSet::new();
        for plan in &ready {
            if seen.insert(plan.dvc_file.clone()) {
                crate::fs::remove_file_if_exists(&plan.dvc_file.to_path(&repo.root))?;
                removed.push(plan.dvc_file.clone());
            }
        }
        // `git rm`: out of the index too (the user commits)
        stage(&repo.git, &repo.root, &removed)?;
    }
    report.removed_dvc_files = removed.iter().map(|p| repo.display(p)).collect();
    let mut all: Vec<String> = added.git_paths;
    all.extend(git_paths.iter().map(|p| repo.display(p)));
    all.extend(report.removed_dvc_files.iter().cloned());
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
        } else if ft.is_file() {
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
fn plan_file(repo: &Tree, file: &RelPath, only: &[RelPath]) -> Result<Vec<Result<Plan, Skipped>>, Skipped> {
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
            &o.size, &o.nfiles, &o.persist, &o.remote, &o.push, &o.desc, &o.kind, &o.labels, &o.meta,
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
                Some(md5) => out.push(plan_out(repo, file, data, md5, o.isexec == Some(true))),
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

fn valid_md5(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// DVC's cache object for `md5` (3.x layout first, then 2.x); `None` when neither holds it.
fn dvc_cache_object(repo: &Tree, md5: &str) -> Option<PathBuf> {
    let cache = repo.root.join(".dvc").join("cache");
    let (a, b) = md5.split_at(2);
    [
        cache.join("files").join("md5").join(a).join(b),
        cache.join(a).join(b),
    ]
    .into_iter()
    .find(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

/// The md5 of a file's bytes (and its length); `None` when it cannot be read.
fn md5_of(path: &Path) -> Option<(String, u64)> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).ok()?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Some((hex(&h.finalize()), n))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A regular workspace file matching `md5`: `Some(size)`; missing: `None`; anything else: why.
fn workspace_match(path: &Path, md5: &str) -> Result<Option<u64>, String> {
    match std::fs::symlink_metadata(path) {
        Err(_) => Ok(None),
        Ok(m) if m.is_file() => match md5_of(path) {
            Some((got, n)) if got == md5 => Ok(Some(n)),
            Some(_) => Err(
                "the workspace copy differs from DVC's record (changed since `dvc commit`?); left alone"
                    .into(),
            ),
            None => Err("the workspace copy cannot be read".into()),
        },
        Ok(_) => Err("not a regular file in the workspace (a DVC link?); not converted yet".into()),
    }
}

/// Bytes for one file output or one directory entry: the workspace, else DVC's cache.
fn locate(
    repo: &Tree,
    data: &RelPath,
    md5: &str,
    exec: bool,
    plan: &mut Plan,
) -> Result<(), (SkipKind, String)> {
    let shown = repo.display(data);
    match workspace_match(&data.to_path(&repo.root), md5)
        .map_err(|r| (SkipKind::Modified, format!("{shown}: {r}")))?
    {
        Some(n) => {
            plan.from_workspace += n;
            Ok(())
        }
        None => {
            let Some(obj) = dvc_cache_object(repo, md5) else {
                return Err((SkipKind::NotAvailableLocally, format!("{shown}: not available locally (only in a DVC remote: not imported yet; run `dvc pull` first)")));
            };
            match md5_of(&obj) {
                Some((got, n)) if got == md5 => {
                    plan.from_cache += n;
                    plan.restores.push(Restore {
                        from: obj,
                        to: data.clone(),
                        md5: md5.into(),
                        exec,
                    });
                    Ok(())
                }
                Some((got, _)) => Err((
                    SkipKind::Mismatch,
                    format!(
                        "{shown}: DVC's cache object {} has md5 {got}, expected {md5}; imported nothing",
                        crate::relpath::printable_path(&obj)
                    ),
                )),
                None => Err((
                    SkipKind::Mismatch,
                    format!(
                        "{shown}: DVC's cache object {} cannot be read",
                        crate::relpath::printable_path(&obj)
                    ),
                )),
            }
        }
    }
}

fn plan_out(repo: &Tree, file: &RelPath, data: RelPath, md5: &str, exec: bool) -> Result<Plan, Skipped> {
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
        restores: Vec::new(),
        from_workspace: 0,
        from_cache: 0,
    };
    let fail = |(kind, reason): (SkipKind, String)| skip(repo, file, Some(&data), kind, reason);
    if !is_dir {
        locate(repo, &data, hex_part, exec, &mut plan).map_err(fail)?;
        return Ok(plan);
    }
    // The `.dir` manifest lives only in DVC's cache; its own md5 is checked first.
    let Some(obj) = dvc_cache_object(repo, md5) else {
        return Err(fail((
            SkipKind::NotAvailableLocally,
            "DVC's `.dir` manifest is not available locally (only in a DVC remote: not imported yet)".into(),
        )));
    };
    let bytes = std::fs::read(&obj)
        .map_err(|e| fail((SkipKind::Mismatch, format!("cannot read DVC's manifest: {e}"))))?;
    let got = hex(&Md5::digest(&bytes));
    if got != hex_part {
        return Err(fail((
            SkipKind::Mismatch,
            format!(
                "DVC's `.dir` manifest {} has md5 {got}, expected {hex_part}; imported nothing",
                crate::relpath::printable_path(&obj)
            ),
        )));
    }
    let entries: Vec<DirEntry> = serde_json::from_slice(&bytes).map_err(|e| {
        fail((
            SkipKind::Refused,
            format!("DVC's `.dir` manifest is not valid: {e}"),
        ))
    })?;
    let mut listed = std::collections::BTreeSet::new();
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
        let mut at = repo.root.clone();
        for part in path.as_str().split('/') {
            at.push(part);
            if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(fail((
                    SkipKind::Refused,
                    format!(
                        "{} is a symbolic link; refused",
                        crate::relpath::printable_path(&at)
                    ),
                )));
            }
        }
        locate(repo, &path, &e.md5, e.isexec, &mut plan).map_err(fail)?;
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

/// Copies each file from DVC's cache into the workspace, checking its md5 again while it is
/// copied, through a temporary file renamed into place.
fn restore_all(repo: &Repo, plan: &Plan) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::PermissionsExt as _;
    for r in &plan.restores {
        let to = r.to.to_path(&repo.root);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        let mut from =
            std::fs::File::open(&r.from).map_err(|e| format!("cannot read {}: {e}", r.from.display()))?;
        let mut tmp = crate::fs::temp_file_in(&repo.tmp_dir()).map_err(|e| e.to_string())?;
        let mut h = Md5::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let k = from
                .read(&mut buf)
                .map_err(|e| format!("cannot read {}: {e}", r.from.display()))?;
            if k == 0 {
                break;
            }
            h.update(&buf[..k]);
            tmp.write_all(&buf[..k])
                .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
        }
        let got = hex(&h.finalize());
        if got != r.md5 {
            return Err(format!(
                "{}: DVC's cache object changed while importing (md5 {got}, expected {})",
                repo.display(&r.to),
                r.md5
            ));
        }
        // as DVC checks it out: a plain file, executable when DVC recorded `isexec`
        let mode = if r.exec { 0o755 } else { 0o644 };
        let file = tmp.as_file();
        file.set_permissions(std::fs::Permissions::from_mode(mode))
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("cannot write {}: {e}", tmp.path().display()))?;
        tmp.persist(&to)
            .map_err(|e| format!("cannot write {}: {}", to.display(), e.error))?;
    }
    Ok(())
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
