//! The run cache: before `mlv run` (or `mlv repro`, for a stage) runs a command, look for an
//! earlier record of the same command on the same inputs (paths and digests), with the same
//! params values and the same output and metrics paths; if every object its outputs need can
//! be had (the local cache, else the default remote), restore those outputs instead of running
//! the command and record that run X was reused.
//!
//! Where it looks: the work tree's lineage file, then (only when that has nothing usable) the
//! lineage file at the tip of every local and remote-tracking branch, each distinct blob read
//! once. Newest matching record first. The command's working directory, the stage name and
//! the tags are not compared.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde::Serialize;
use tokio::runtime::Handle;

use super::record::{append_record, prepare_with, Prepared, RecordOptions, RecordReport};
use crate::error::Error;
use crate::gitutil::{add_ignore, ignore_entry, stage};
use crate::hash::Digest;
use crate::lineage::{
    git_err, lineage_path, Artifact, ArtifactKind, Lineage, Record, LINEAGE_FILE, LINEAGE_VERSION,
};
use crate::objects::ObjectSource;
use crate::ops::add::Added;
use crate::ops::checkout::{checkout, CheckoutOptions};
use crate::ops::sources::CacheThenRemote;
use crate::pointer::{Kind, Pointer};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// The run to look for: what a run about to start would record.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// The command.
    pub command: &'a [String],
    /// The inputs' versions now.
    pub inputs: &'a [Artifact],
    /// The params values, as this run selects them.
    pub params: &'a BTreeMap<String, serde_json::Value>,
    /// The outputs.
    pub outputs: &'a [RelPath],
    /// The metrics files.
    pub metrics_files: &'a [RelPath],
    /// The working directory a stage runs in, when not the root (as records carry it).
    pub wdir: Option<&'a str>,
}

/// What a lookup found.
#[derive(Debug)]
pub enum Lookup {
    /// No earlier run can be reused.
    Miss,
    /// This run's outputs and metrics files are all in the local cache (or the work tree).
    Local(Box<Record>),
    /// This run's outputs need objects from the default remote (`fetch`: what the cache
    /// lacks; empty when the remote was not asked, as in a dry run).
    Remote(Box<Record>, Vec<Digest>),
}

/// A run restored from the run cache.
#[derive(Debug, Serialize)]
pub struct Restored {
    /// The new record (its `reused` names the earlier one), the outputs' pointers written.
    #[serde(flatten)]
    pub report: RecordReport,
    /// The earlier record whose outputs were restored.
    pub restored_from: Record,
    /// Objects downloaded from the default remote.
    pub downloaded: u64,
}

/// Looks for a reusable earlier run and restores it: writes the outputs' pointers, checks the
/// data out, writes back the metrics files and appends a record naming the reused run. Returns
/// `None` (nothing changed) when no earlier run can be reused. `lock` is held from the lookup
/// to the record. `runtime` is asked for when the default remote must be asked (`None`: it is
/// not asked). `inputs`: the inputs' versions, when the caller has just checked them against
/// the workspace (else they are, as `mlv run` checks them).
pub fn restore(
    repo: &Repo,
    opts: &RecordOptions,
    command: &[String],
    inputs: Option<Vec<Artifact>>,
    runtime: &dyn Fn() -> Option<Handle>,
    progress: &dyn Progress,
    lock: &mut dyn FnMut() -> Result<crate::lock::RepoLock, Error>,
) -> Result<Option<Restored>, Error> {
    if opts.outputs.is_empty() || command.is_empty() {
        return Ok(None);
    }
    let prepared = prepare_with(repo, opts, inputs, progress)?;
    let Some(params) = prepared.params_now(repo, opts)? else {
        return Ok(None);
    };
    let _lock = lock()?;
    let wanted = Wanted {
        command,
        inputs: &prepared.inputs,
        params: &params,
        outputs: &opts.outputs,
        metrics_files: &opts.metrics_files,
        wdir: opts.wdir.as_ref().map(RelPath::as_str),
    };
    let mut remote = RemoteSlot {
        local_only: false,
        runtime,
        opened: None,
        manifests: 0,
    };
    let (from, fetch) = match find(repo, &wanted, &mut remote)? {
        Lookup::Miss => return Ok(None),
        Lookup::Local(r) => (r, Vec::new()),
        Lookup::Remote(r, fetch) => (r, fetch),
    };
    let downloaded = remote.manifests
        + match remote.get(repo)? {
            Some(src) if !fetch.is_empty() => src.fetch(&fetch, progress)?,
            _ => 0,
        };
    let report = write_back(repo, opts, prepared, params, command, &from, progress)?;
    Ok(Some(Restored {
        report,
        restored_from: *from,
        downloaded,
    }))
}

/// Looks for a reusable earlier run without asking any remote (for a dry run): a run whose
/// outputs need objects the cache lacks is [`Lookup::Remote`] (with nothing to fetch listed)
/// when a default remote is set.
pub fn lookup_local(repo: &Repo, wanted: &Wanted<'_>) -> Result<Lookup, Error> {
    let none = || None;
    let mut remote = RemoteSlot {
        local_only: true,
        runtime: &none,
        opened: None,
        manifests: 0,
    };
    find(repo, wanted, &mut remote)
}

/// The default remote, opened when first needed.
struct RemoteSlot<'a, 'r> {
    local_only: bool,
    runtime: &'a dyn Fn() -> Option<Handle>,
    opened: Option<Option<CacheThenRemote<'r>>>,
    /// Manifests downloaded while looking.
    manifests: u64,
}

impl<'r> RemoteSlot<'_, 'r> {
    fn configured(&self, repo: &Repo) -> bool {
        repo.config.core.remote.is_some()
    }

    fn get(&mut self, repo: &'r Repo) -> Result<Option<&CacheThenRemote<'r>>, Error> {
        if self.local_only || !self.configured(repo) {
            return Ok(None);
        }
        if self.opened.is_none() {
            let src = match (self.runtime)() {
                Some(h) => CacheThenRemote::default_remote(repo, h)?,
                None => None,
            };
            self.opened = Some(src);
        }
        Ok(self.opened.as_ref().and_then(Option::as_ref))
    }
}

/// The work tree's lineage file first; the branches' only when it has nothing usable.
fn find<'r>(repo: &'r Repo, wanted: &Wanted<'_>, remote: &mut RemoteSlot<'_, 'r>) -> Result<Lookup, Error> {
    let here = Lineage::load(&repo.root)?;
    let first = first_available(repo, candidates(here.records.iter(), wanted), remote)?;
    if matches!(first, Lookup::Local(_)) || (matches!(first, Lookup::Remote(..)) && !remote.local_only) {
        return Ok(first);
    }
    let branches = branch_lineages(repo)?;
    let found = first_available(
        repo,
        candidates(branches.iter().flat_map(|l| l.records.iter()), wanted),
        remote,
    )?;
    Ok(match (first, found) {
        (_, Lookup::Local(r)) => Lookup::Local(r),
        (Lookup::Miss, other) => other,
        (first, _) => first,
    })
}

/// The records matching `wanted`, newest first.
fn candidates<'l>(records: impl Iterator<Item = &'l Record>, wanted: &Wanted<'_>) -> Vec<&'l Record> {
    let inputs: BTreeSet<(&str, Digest)> = wanted
        .inputs
        .iter()
        .map(|a| (a.path.as_str(), a.digest))
        .collect();
    let outputs: BTreeSet<&str> = wanted.outputs.iter().map(RelPath::as_str).collect();
    let metrics: BTreeSet<&str> = wanted.metrics_files.iter().map(RelPath::as_str).collect();
    let mut v: Vec<&Record> = records
        .filter(|r| {
            r.command.as_deref() == Some(wanted.command)
                && r.wdir.as_deref() == wanted.wdir
                && r.params == *wanted.params
                && r.inputs.len() == wanted.inputs.len()
                && r.inputs
                    .iter()
                    .map(|a| (a.path.as_str(), a.digest))
                    .collect::<BTreeSet<_>>()
                    == inputs
                && r.outputs.len() == outputs.len()
                && r.outputs.iter().map(|a| a.path.as_str()).collect::<BTreeSet<_>>() == outputs
                && r.metrics_files
                    .iter()
                    .map(String::as_str)
                    .collect::<BTreeSet<_>>()
                    == metrics
        })
        .collect();
    v.sort_by(|a, b| b.time.cmp(&a.time));
    let mut seen = HashSet::new();
    v.retain(|r| seen.insert(r.id.clone()));
    v
}

/// The first candidate whose outputs can be had: from the cache, else from the remote. In a
/// dry run, the first that would need the remote when none is fully local.
fn first_available<'r>(
    repo: &'r Repo,
    candidates: Vec<&Record>,
    remote: &mut RemoteSlot<'_, 'r>,
) -> Result<Lookup, Error> {
    let mut maybe = Lookup::Miss;
    for r in candidates {
        match availability(repo, r, remote)? {
            Lookup::Miss => {}
            Lookup::Remote(_, fetch) if remote.local_only => {
                if matches!(maybe, Lookup::Miss) {
                    maybe = Lookup::Remote(Box::new(r.clone()), fetch);
                }
            }
            found => return Ok(found),
        }
    }
    Ok(maybe)
}

/// Whether the objects `r`'s outputs need can be had, and whether its metrics files can be
/// written back (their bytes in the work tree already, or in the local cache).
fn availability<'r>(repo: &'r Repo, r: &Record, remote: &mut RemoteSlot<'_, 'r>) -> Result<Lookup, Error> {
    for f in &r.metrics_files {
        let Some(d) = r.metrics_digests.get(f) else {
            return Ok(Lookup::Miss);
        };
        if !same_bytes(repo, f, d) && !repo.cache.contains(d) {
            return Ok(Lookup::Miss);
        }
    }
    let mut lacking: Vec<Digest> = Vec::new();
    let mut unknown = false;
    for a in &r.outputs {
        match (a.kind, a.files) {
            (ArtifactKind::File, None) => {
                if !repo.cache.contains(&a.digest) {
                    lacking.push(a.digest);
                }
            }
            (ArtifactKind::Dir, Some(_)) => {
                let manifest = if repo.cache.contains(&a.digest) {
                    ObjectSource::manifest(&repo.cache, &a.digest)?
                } else if remote.local_only && remote.configured(repo) {
                    // the manifest is on the remote, if anywhere: its files are unknown
                    unknown = true;
                    continue;
                } else {
                    let found = match remote.get(repo)? {
                        Some(src) if src.missing(&[a.digest])?.is_empty() => src.manifest(&a.digest)?,
                        _ => None,
                    };
                    remote.manifests += u64::from(found.is_some());
                    found
                };
                let Some(m) = manifest else {
                    return Ok(Lookup::Miss);
                };
                let files: Vec<Digest> = m.entries.iter().filter_map(|e| e.digest()).collect();
                lacking.extend(repo.cache.missing(&files));
            }
            _ => return Ok(Lookup::Miss),
        }
    }
    lacking.sort();
    lacking.dedup();
    if lacking.is_empty() && !unknown {
        return Ok(Lookup::Local(Box::new(r.clone())));
    }
    if remote.local_only {
        return Ok(match remote.configured(repo) {
            true => Lookup::Remote(Box::new(r.clone()), Vec::new()),
            false => Lookup::Miss,
        });
    }
    match remote.get(repo)? {
        Some(src) if src.missing(&lacking)?.is_empty() => Ok(Lookup::Remote(Box::new(r.clone()), lacking)),
        _ => Ok(Lookup::Miss),
    }
}

/// Whether the work-tree file `path` holds the bytes of digest `d`.
fn same_bytes(repo: &Repo, path: &str, d: &Digest) -> bool {
    let Ok(rel) = RelPath::new(path) else {
        return false;
    };
    std::fs::read(rel.to_path(&repo.root)).is_ok_and(|b| Digest::of_bytes(&b) == *d)
}

/// The lineage file at the tip of every local and remote-tracking branch, each distinct blob
/// once (the work tree's own content skipped: it was searched first).
fn branch_lineages(repo: &Repo) -> Result<Vec<Lineage>, Error> {
    let git = &repo.git;
    let mut seen = HashSet::new();
    if let Ok(bytes) = std::fs::read(lineage_path(&repo.root)) {
        if let Ok(oid) = git2::Oid::hash_object(git2::ObjectType::Blob, &bytes) {
            seen.insert(oid);
        }
    }
    let mut out = Vec::new();
    let refs = git.references().map_err(git_err("listing branches"))?;
    for r in refs.flatten() {
        let branch = r
            .name()
            .is_ok_and(|n| n.starts_with("refs/heads/") || n.starts_with("refs/remotes/"));
        if !branch {
            continue;
        }
        let Ok(tree) = r.peel_to_commit().and_then(|c| c.tree()) else {
            continue;
        };
        let Some(oid) = crate::history::oid_at(&tree, LINEAGE_FILE) else {
            continue;
        };
        if !seen.insert(oid) {
            continue;
        }
        let blob = git.find_blob(oid).map_err(git_err("reading a blob"))?;
        out.push(Lineage::parse(blob.content()));
    }
    Ok(out)
}

/// Writes the outputs' pointers as `from` names them, checks the data out, writes back the
/// metrics files, and appends the record of this run.
fn write_back(
    repo: &Repo,
    opts: &RecordOptions,
    prepared: Prepared,
    params: BTreeMap<String, serde_json::Value>,
    command: &[String],
    from: &Record,
    progress: &dyn Progress,
) -> Result<RecordReport, Error> {
    let pointers = repo.pointers()?;
    let mut git_paths: Vec<RelPath> = Vec::new();
    let mut added = Vec::new();
    for data in &opts.outputs {
        let a = from
            .outputs
            .iter()
            .find(|a| a.path == data.as_str())
            .expect("the record names the same outputs");
        let kind = match a.kind {
            ArtifactKind::Dir => Kind::Dir,
            _ => Kind::File,
        };
        let previous = pointers.iter().find(|p| p.data == *data);
        // the record does not say whether a file was executable: kept from a pointer to the
        // same version
        let exec = previous.is_some_and(|p| p.meta.digest == a.digest && p.meta.exec);
        let pointer = Pointer::new(data.clone(), kind, a.digest, a.size, a.files, exec);
        let changed = previous.is_none_or(|p| p.meta != pointer.meta);
        if changed {
            pointer.save(&repo.root, &repo.tmp_dir())?;
        }
        if let Some((ignore_file, line)) = ignore_entry(data) {
            add_ignore(&repo.root, &ignore_file, &line)?;
            git_paths.push(ignore_file);
        }
        git_paths.push(pointer.file.clone());
        added.push(Added {
            path: repo.display(data),
            pointer: repo.display(&pointer.file),
            kind,
            digest: a.digest.to_string(),
            size: a.size,
            files: a.files,
            hashed: 0,
            changed,
        });
    }
    // the command would have replaced the outputs: so does the restore
    let report = checkout(repo, &opts.outputs, &CheckoutOptions { force: true }, progress)?;
    if let Some(e) = report.targets.into_iter().find_map(|t| t.error) {
        return Err(e);
    }
    for f in &opts.metrics_files {
        let Some(d) = from.metrics_digests.get(f.as_str()).copied() else {
            continue;
        };
        if same_bytes(repo, f.as_str(), &d) {
            continue;
        }
        let bytes = repo.cache.read_verified(&d)?;
        let abs = f.to_path(&repo.root);
        if let Some(parent) = abs.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| crate::fs::IoError::new("cannot create directory", parent, e))?;
        }
        crate::fs::write_atomic_in(&abs, &bytes, &repo.tmp_dir())?;
    }
    git_paths.sort();
    git_paths.dedup();
    let staged = repo.config.core.autostage;
    if staged {
        stage(&repo.git, &repo.root, &git_paths)?;
    }
    let Prepared {
        ctx,
        inputs,
        metrics: arg_metrics,
        ..
    } = prepared;
    let mut metrics = from.metrics.clone();
    metrics.extend(arg_metrics);
    let record = Record {
        version: LINEAGE_VERSION,
        id: String::new(),
        time: ctx.time,
        author: ctx.author,
        commit: ctx.commit,
        dirty: ctx.dirty,
        command: Some(command.to_vec()),
        inputs,
        outputs: opts
            .outputs
            .iter()
            .filter_map(|o| from.outputs.iter().find(|a| a.path == o.as_str()).cloned())
            .collect(),
        params,
        metrics,
        tags: super::record::unique_tags(opts),
        stage: opts.stage.clone(),
        metrics_files: {
            let mut v: Vec<String> = Vec::new();
            for f in &opts.metrics_files {
                if !v.iter().any(|m| m == f.as_str()) {
                    v.push(f.as_str().to_string());
                }
            }
            v
        },
        params_files: super::record::params_files_of(opts),
        wdir: opts.wdir.as_ref().map(|w| w.as_str().to_string()),
        metrics_digests: from.metrics_digests.clone(),
        reused: Some(from.id.clone()),
        signature: None,
    };
    let shown = git_paths.iter().map(|p| repo.display(p)).collect();
    append_record(repo, opts, record, added, shown, staged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lineage::samples::{art, rec};

    fn run(time: &str, inputs: Vec<Artifact>, lr: f64, outputs: &[&str]) -> Record {
        let mut r = rec(time, inputs, outputs.iter().map(|o| art(o, time)).collect(), 0.5);
        r.command = Some(vec!["train".into()]);
        r.params = [("lr".to_string(), serde_json::json!(lr))].into();
        r.id = r.compute_id();
        r
    }

    #[test]
    fn matches_command_input_digests_params_and_paths_newest_first() {
        let (a, b) = (art("a", "1"), art("b", "1"));
        let records = [
            run("2024-01-01", vec![a.clone(), b.clone()], 0.1, &["m"]),
            // the same inputs in another order, later: first
            run("2024-01-03", vec![b.clone(), a.clone()], 0.1, &["m"]),
            run("2024-01-02", vec![a.clone(), art("b", "2")], 0.1, &["m"]),
            run("2024-01-04", vec![a.clone()], 0.1, &["m"]),
            run("2024-01-05", vec![a.clone(), b.clone()], 0.2, &["m"]),
            run("2024-01-06", vec![a.clone(), b.clone()], 0.1, &["m", "n"]),
        ];
        let mut other_command = run("2024-01-07", vec![a.clone(), b.clone()], 0.1, &["m"]);
        other_command.command = Some(vec!["train".into(), "--fast".into()]);
        let mut with_metrics = run("2024-01-08", vec![a.clone(), b.clone()], 0.1, &["m"]);
        with_metrics.metrics_files = vec!["metrics.json".into()];
        let all: Vec<Record> = records.into_iter().chain([other_command, with_metrics]).collect();
        let inputs = [a, b];
        let params = [("lr".to_string(), serde_json::json!(0.1))].into();
        let outputs = [RelPath::new("m").unwrap()];
        let wanted = Wanted {
            command: &["train".to_string()],
            inputs: &inputs,
            params: &params,
            outputs: &outputs,
            metrics_files: &[],
            wdir: None,
        };
        let found: Vec<&str> = candidates(all.iter(), &wanted)
            .iter()
            .map(|r| r.time.as_str())
            .collect();
        assert_eq!(found, ["2024-01-03", "2024-01-01"]);
        let metrics = [RelPath::new("metrics.json").unwrap()];
        let wanted = Wanted {
            metrics_files: &metrics,
            ..wanted
        };
        let found: Vec<&str> = candidates(all.iter(), &wanted)
            .iter()
            .map(|r| r.time.as_str())
            .collect();
        assert_eq!(found, ["2024-01-08"]);
        // a stage that ran in another working directory is another run
        let mut elsewhere = run(
            "2024-01-09",
            vec![inputs[0].clone(), inputs[1].clone()],
            0.1,
            &["m"],
        );
        elsewhere.wdir = Some("sub".into());
        let only = [elsewhere];
        let wanted = Wanted {
            metrics_files: &[],
            ..wanted
        };
        assert!(candidates(only.iter(), &wanted).is_empty());
        let sub = Wanted {
            wdir: Some("sub"),
            ..wanted
        };
        assert_eq!(candidates(only.iter(), &sub).len(), 1);
    }
}
