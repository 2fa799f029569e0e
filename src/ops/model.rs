//! `mlv model register|promote|list|show|get`: the model registry kept in annotated git tags
//! (see `crate::model` for the tag formats). Tags are made by `git tag -a`, so they carry the
//! tagger git would write (user.name, GIT_COMMITTER_*), and git's own tag settings apply.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

use crate::error::Error;
use crate::hash::Digest;
use crate::history::{head_commit, version_in_tree};
use crate::kind::GitError;
use crate::lineage::traverse::{upstream, Node};
use crate::lineage::{ArtifactKind, Lineage};
use crate::model::{
    artifacts_yaml_path, check_name, parse_tag_name, promote_message, recorded, register_message, stage_tag,
    trailers, version_tag, Action, Bump, ModelError, Selector, Version, KEY_VERSION,
};
use crate::ops::sources::CacheThenRemote;
use crate::pointer::{pointer_file_for, Pointer};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;

/// Who made a tag (its tagger).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

/// One registered version.
#[derive(Debug, Clone, Serialize)]
pub struct VersionInfo {
    /// `vX.Y.Z`.
    pub version: String,
    /// Its tag.
    pub tag: String,
    /// The commit it is registered on.
    pub commit: String,
    /// The tagger.
    pub registered_by: Option<Person>,
    /// When it was tagged, RFC 3339 UTC.
    pub registered_at: String,
    /// The tag message's first line.
    pub message: String,
    /// The data path (from the tag, else from artifacts.yaml at the commit).
    pub path: Option<String>,
    /// `file`, `dir` or `git` (a file git tracks itself), as found at the commit.
    pub kind: Option<String>,
    /// The digest at the commit.
    pub digest: Option<Digest>,
    /// The size at the commit.
    pub size: Option<u64>,
    /// Deregistered with a GTO `!` tag.
    pub deregistered: bool,
    /// What does not match (a tag moved or rewritten by hand): such a version is not trusted.
    pub problems: Vec<String>,
    #[serde(skip)]
    semver: Version,
}

/// One stage change.
#[derive(Debug, Clone, Serialize)]
pub struct StageEvent {
    /// The stage.
    pub stage: String,
    /// `assign` or `unassign`.
    pub action: &'static str,
    /// The version.
    pub version: String,
    /// The tag.
    pub tag: String,
    /// The tagger.
    pub by: Option<Person>,
    /// When, RFC 3339 UTC.
    pub at: String,
}

/// One model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Its name.
    pub name: String,
    /// The greatest registered version (deregistered ones aside).
    pub latest: Option<String>,
    /// Stage -> the version in it now.
    pub stages: BTreeMap<String, String>,
    /// Every version, oldest first.
    pub versions: Vec<VersionInfo>,
    /// Stage changes, oldest first.
    pub history: Vec<StageEvent>,
    /// Deprecated with a GTO `@deprecated` tag.
    pub deprecated: bool,
    /// Tags of this model that were not trusted, and why.
    pub problems: Vec<String>,
    #[serde(skip)]
    max_counter: u64,
}

/// The whole registry, read from the tags.
#[derive(Debug, Serialize)]
pub struct Registry {
    /// The models, by name.
    pub models: Vec<ModelInfo>,
}

struct Event {
    tag: String,
    model: String,
    action: Action,
    counter: Option<u64>,
    commit: git2::Oid,
    by: Option<Person>,
    time: i64,
    message: String,
}

fn gerr(action: &'static str) -> impl FnOnce(git2::Error) -> Error {
    move |e| Error::Model(GitError::while_doing(action)(e).into())
}

fn short(oid: &git2::Oid) -> String {
    oid.to_string()[..12].to_string()
}

/// Reads the registry from the repository's tags.
pub fn load(repo: &Repo) -> Result<Registry, Error> {
    let git = &repo.git;
    let mut models: BTreeMap<String, ModelInfo> = BTreeMap::new();
    let mut events = Vec::new();
    let refs = git.references_glob("refs/tags/*").map_err(gerr("listing tags"))?;
    for r in refs {
        let r = r.map_err(gerr("reading a tag"))?;
        let Some(tag) = r.name().ok().and_then(|n| n.strip_prefix("refs/tags/")) else {
            continue;
        };
        let Some(parsed) = parse_tag_name(tag) else {
            continue;
        };
        let model = models.entry(parsed.model.clone()).or_insert_with(|| ModelInfo {
            name: parsed.model.clone(),
            latest: None,
            stages: BTreeMap::new(),
            versions: Vec::new(),
            history: Vec::new(),
            deprecated: false,
            problems: Vec::new(),
            max_counter: 0,
        });
        model.max_counter = model.max_counter.max(parsed.counter.unwrap_or(0));
        let Some(target) = r.target() else { continue };
        let Ok(t) = git.find_tag(target) else {
            model.problems.push(format!(
                "{tag}: a lightweight tag, ignored (registry tags are annotated: GTO ignores it too)"
            ));
            continue;
        };
        if t.name().ok() != Some(tag) {
            model.problems.push(format!(
                "{tag}: the tag object inside is named `{}`: a copy made under another name, ignored",
                t.name().unwrap_or("?")
            ));
            continue;
        }
        let Ok(commit) = t.target().and_then(|o| o.peel_to_commit()) else {
            model
                .problems
                .push(format!("{tag}: does not point at a commit, ignored"));
            continue;
        };
        let (by, time) = match t.tagger() {
            Some(s) => (
                Some(Person {
                    name: s.name().unwrap_or("").to_string(),
                    email: s.email().unwrap_or("").to_string(),
                }),
                s.when().seconds(),
            ),
            None => (None, commit.time().seconds()),
        };
        events.push(Event {
            tag: tag.to_string(),
            model: parsed.model,
            action: parsed.action,
            counter: parsed.counter,
            commit: commit.id(),
            by,
            time,
            message: t.message().ok().flatten().unwrap_or("").to_string(),
        });
    }
    // GTO's order: by tagger date; tags made in the same second by their counter
    events.sort_by(|a, b| {
        (a.time, a.counter.unwrap_or(0), &a.tag).cmp(&(b.time, b.counter.unwrap_or(0), &b.tag))
    });
    // versions first, so that an assignment finds the version whatever the dates say
    for e in events
        .iter()
        .filter(|e| matches!(e.action, Action::Register(_) | Action::Deregister(_)))
    {
        let model = models.get_mut(&e.model).expect("entered above");
        match &e.action {
            Action::Register(v) if model.versions.iter().any(|x| &x.semver == v) => {
                model
                    .problems
                    .push(format!("{}: registers {v} again, ignored", e.tag));
            }
            Action::Register(v) => model.versions.push(verify_version(git, e, v)),
            Action::Deregister(v) => match model.versions.iter_mut().find(|x| &x.semver == v) {
                Some(x) => x.deregistered = true,
                None => model
                    .problems
                    .push(format!("{}: deregisters a version that is not registered", e.tag)),
            },
            _ => unreachable!("filtered"),
        }
    }
    // GTO's stage state: each (stage, version) pair is on while its newest tag is an
    // assignment; a stage holds the registered version whose pair was assigned last, so
    // unassigning (or deregistering) that version gives the stage back to the one before.
    let mut pairs: BTreeMap<(String, String, String), Option<usize>> = BTreeMap::new();
    for (order, e) in events
        .iter()
        .enumerate()
        .filter(|(_, e)| !matches!(e.action, Action::Register(_) | Action::Deregister(_)))
    {
        let model = models.get_mut(&e.model).expect("entered above");
        let stage = match &e.action {
            Action::Assign(s) | Action::Unassign(s) => s.clone(),
            _ => {
                model.deprecated = true;
                continue;
            }
        };
        let version = match assigned_version(model, e) {
            Ok(v) => v,
            Err(problem) => {
                model.problems.push(format!("{}: {problem}; ignored", e.tag));
                continue;
            }
        };
        let assign = matches!(e.action, Action::Assign(_));
        pairs.insert(
            (e.model.clone(), stage.clone(), version.clone()),
            assign.then_some(order),
        );
        model.history.push(StageEvent {
            stage,
            action: if assign { "assign" } else { "unassign" },
            version,
            tag: e.tag.clone(),
            by: e.by.clone(),
            at: crate::lineage::time::rfc3339_secs(e.time),
        });
    }
    let mut newest: BTreeMap<(String, String), (usize, String)> = BTreeMap::new();
    for ((name, stage, version), order) in pairs {
        let Some(order) = order else { continue };
        let registered = models[&name]
            .versions
            .iter()
            .any(|v| v.version == version && !v.deregistered);
        if !registered {
            continue;
        }
        let slot = newest.entry((name, stage)).or_insert((order, version.clone()));
        if order > slot.0 {
            *slot = (order, version);
        }
    }
    for ((name, stage), (_, version)) in newest {
        let model = models.get_mut(&name).expect("entered above");
        model.stages.insert(stage, version);
    }
    let mut out: Vec<ModelInfo> = models
        .into_values()
        .filter(|m| !m.versions.is_empty() || !m.problems.is_empty())
        .collect();
    for m in &mut out {
        m.latest = m
            .versions
            .iter()
            .filter(|v| !v.deregistered)
            .max_by(|a, b| a.semver.cmp(&b.semver))
            .map(|v| v.version.clone());
    }
    Ok(Registry { models: out })
}

/// The version a stage tag assigns: the one its message names (which must be on its commit),
/// else the greatest registered on its commit (as GTO finds it; a deregistered one last).
fn assigned_version(model: &ModelInfo, e: &Event) -> Result<String, String> {
    let commit = e.commit.to_string();
    if let Some(named) = trailers(&e.message).get(KEY_VERSION) {
        let v = model
            .versions
            .iter()
            .find(|v| &v.version == named)
            .ok_or_else(|| format!("names version {named}, which is not registered"))?;
        if v.commit != commit {
            return Err(format!(
                "names version {named}, registered on commit {}, but points at commit {} (moved or rewritten by hand?)",
                &v.commit[..12],
                short(&e.commit)
            ));
        }
        return Ok(v.version.clone());
    }
    model
        .versions
        .iter()
        .filter(|v| v.commit == commit)
        .max_by(|a, b| (!a.deregistered, &a.semver).cmp(&(!b.deregistered, &b.semver)))
        .map(|v| v.version.clone())
        .ok_or_else(|| {
            format!(
                "points at commit {}, where no version of {} is registered",
                short(&e.commit),
                e.model
            )
        })
}

/// A version tag checked against the commit it points at.
fn verify_version(git: &git2::Repository, e: &Event, v: &Version) -> VersionInfo {
    let mut problems = Vec::new();
    let first = e.message.lines().next().unwrap_or("").to_string();
    if first.starts_with("Registering artifact ")
        && first != format!("Registering artifact {} version {v}", e.model)
    {
        problems.push(format!(
            "its message says `{first}`: it was renamed or rewritten by hand"
        ));
    }
    let rec = recorded(&e.message).unwrap_or_else(|p| {
        problems.push(p);
        crate::model::Recorded {
            path: None,
            digest: None,
            size: None,
        }
    });
    let mut info = VersionInfo {
        version: v.to_string(),
        tag: e.tag.clone(),
        commit: e.commit.to_string(),
        registered_by: e.by.clone(),
        registered_at: crate::lineage::time::rfc3339_secs(e.time),
        message: first,
        path: None,
        kind: None,
        digest: None,
        size: None,
        deregistered: false,
        problems: Vec::new(),
        semver: v.clone(),
    };
    let tree = git.find_commit(e.commit).and_then(|c| c.tree());
    let Ok(tree) = tree else {
        problems.push("its commit cannot be read".into());
        info.problems = problems;
        return info;
    };
    let path = rec.path.clone().or_else(|| {
        ["artifacts.yaml", "dvc.yaml"].iter().find_map(|f| {
            let entry = tree.get_path(Path::new(f)).ok()?;
            let blob = git.find_blob(entry.id()).ok()?;
            artifacts_yaml_path(blob.content(), &e.model)
        })
    });
    if let Some(path) = &path {
        let found = RelPath::new(path)
            .map_err(|_| format!("its path `{path}` is not a work-tree path"))
            .and_then(|rel| {
                version_in_tree(git, &tree, &rel)
                    .map_err(|err| format!("{path} at commit {}: {err}", short(&e.commit)))
            });
        match found {
            Err(p) => problems.push(p),
            Ok(None) => problems.push(format!("{path} is not tracked at commit {}", short(&e.commit))),
            Ok(Some(a)) => {
                if let Some(d) = rec.digest.filter(|d| d != &a.digest) {
                    problems.push(format!(
                        "its message records digest {d}, but {path} at commit {} has {} (the tag was moved or its message rewritten)",
                        short(&e.commit),
                        a.digest
                    ));
                }
                if let Some(s) = rec.size.filter(|s| *s != a.size) {
                    problems.push(format!(
                        "its message records {s} bytes, but {path} at commit {} has {}",
                        short(&e.commit),
                        a.size
                    ));
                }
                info.kind = Some(
                    match a.kind {
                        ArtifactKind::File => "file",
                        ArtifactKind::Dir => "dir",
                        ArtifactKind::Git => "git",
                    }
                    .to_string(),
                );
                info.digest = Some(a.digest);
                info.size = Some(a.size);
            }
        }
    }
    info.path = path;
    info.problems = problems;
    info
}

impl Registry {
    /// The model named `name`.
    pub fn model(&self, name: &str) -> Result<&ModelInfo, ModelError> {
        self.models
            .iter()
            .find(|m| m.name == name && !m.versions.is_empty())
            .ok_or_else(|| ModelError::NoSuchModel {
                name: name.to_string(),
            })
    }

    /// The version `sel` names.
    pub fn select(&self, name: &str, sel: &Selector) -> Result<(&ModelInfo, &VersionInfo), ModelError> {
        let model = self.model(name)?;
        let wanted = match sel {
            Selector::Latest => model.latest.clone().ok_or_else(|| ModelError::NoSuchModel {
                name: name.to_string(),
            })?,
            Selector::Version(v) => v.to_string(),
            Selector::Stage(s) => model
                .stages
                .get(s)
                .cloned()
                .ok_or_else(|| ModelError::EmptyStage {
                    name: name.to_string(),
                    stage: s.clone(),
                })?,
        };
        let v = model
            .versions
            .iter()
            .find(|v| v.version == wanted && !v.deregistered)
            .ok_or_else(|| ModelError::NoSuchVersion {
                name: name.to_string(),
                version: wanted,
            })?;
        Ok((model, v))
    }
}

fn untrusted(v: &VersionInfo) -> Result<(), ModelError> {
    match v.problems.first() {
        None => Ok(()),
        Some(p) => Err(ModelError::Untrusted {
            tag: v.tag.clone(),
            problem: p.clone(),
        }),
    }
}

/// Makes an annotated tag with `git tag -a`, or a signed one with `git tag -s` (`--sign` or
/// `[lineage] sign = true`; git's own signing config applies).
fn git_tag(repo: &Repo, tag: &str, commit: &str, message: &str, sign: bool) -> Result<(), Error> {
    let sign = sign || repo.config.lineage.sign == Some(true);
    let out = Command::new("git")
        .arg("-C")
        .arg(&repo.root)
        .args(["tag", if sign { "-s" } else { "-a" }, "-m", message, tag, commit])
        .output()
        .map_err(|e| ModelError::TagFailed {
            tag: tag.to_string(),
            stderr: format!("cannot run git: {e}"),
        })?;
    if !out.status.success() {
        return Err(ModelError::TagFailed {
            tag: tag.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
        .into());
    }
    Ok(())
}

fn tag_exists(repo: &Repo, tag: &str) -> bool {
    repo.git.find_reference(&format!("refs/tags/{tag}")).is_ok()
}

/// What `model register` is asked.
pub struct RegisterOptions {
    /// The model.
    pub name: String,
    /// The data (tracked by a pointer committed at HEAD).
    pub path: RelPath,
    /// The version, when given.
    pub version: Option<Version>,
    /// Which part to raise from the greatest version, when no version is given.
    pub bump: Option<Bump>,
    /// The tag message's first paragraph, instead of GTO's line.
    pub message: Option<String>,
    /// Sign the tag (`git tag -s`).
    pub sign: bool,
}

/// What `model register` did.
#[derive(Debug, Serialize)]
pub struct RegisterReport {
    /// The model.
    pub name: String,
    /// The version.
    pub version: String,
    /// The tag made.
    pub tag: String,
    /// The commit tagged (HEAD).
    pub commit: String,
    /// The data path.
    pub path: String,
    /// Its digest.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
}

/// Registers the data at `path`, as committed at HEAD, as a new version of a model.
pub fn register(repo: &Repo, opts: &RegisterOptions) -> Result<RegisterReport, Error> {
    check_name("model", &opts.name)?;
    let shown = repo.display(&opts.path);
    let not = |reason| ModelError::NotCommitted {
        path: shown.clone(),
        reason,
    };
    let head = head_commit(&repo.git).ok_or_else(|| not("nothing is committed yet"))?;
    let file = pointer_file_for(&opts.path);
    let tree = head.tree().map_err(gerr("reading HEAD"))?;
    let in_ws = std::fs::read(file.to_path(&repo.root)).ok();
    let blob = tree
        .get_path(Path::new(file.as_str()))
        .ok()
        .and_then(|e| repo.git.find_blob(e.id()).ok());
    let Some(blob) = blob else {
        return Err(not(if in_ws.is_some() {
            "its pointer file is not committed"
        } else {
            "not tracked by mlv at HEAD"
        })
        .into());
    };
    if in_ws.as_deref() != Some(blob.content()) {
        return Err(not("its pointer file has changes that are not committed").into());
    }
    let pointer = Pointer::parse(&file, &file.to_path(&repo.root), blob.content())?;
    let reg = load(repo)?;
    let existing: Vec<&VersionInfo> = reg
        .models
        .iter()
        .filter(|m| m.name == opts.name)
        .flat_map(|m| m.versions.iter())
        .collect();
    let greatest = existing.iter().map(|v| &v.semver).max();
    let version = match (&opts.version, greatest) {
        (Some(v), _) => v.clone(),
        (None, None) => Version::FIRST,
        (None, Some(g)) => g.bump(opts.bump.unwrap_or(Bump::Patch)),
    };
    let tag = version_tag(&opts.name, &version);
    if tag_exists(repo, &tag) || existing.iter().any(|v| v.semver == version) {
        return Err(ModelError::VersionExists {
            name: opts.name.clone(),
            version: version.to_string(),
        }
        .into());
    }
    let path = opts.path.as_str().to_string();
    let message = register_message(
        &opts.name,
        &version,
        opts.message.as_deref(),
        &path,
        &pointer.meta.digest,
        pointer.meta.size,
    );
    git_tag(repo, &tag, &head.id().to_string(), &message, opts.sign)?;
    Ok(RegisterReport {
        name: opts.name.clone(),
        version: version.to_string(),
        tag,
        commit: head.id().to_string(),
        path,
        digest: pointer.meta.digest,
        size: pointer.meta.size,
    })
}

/// What `model promote` did.
#[derive(Debug, Serialize)]
pub struct PromoteReport {
    /// The model.
    pub name: String,
    /// The version promoted.
    pub version: String,
    /// The stage.
    pub stage: String,
    /// The tag made.
    pub tag: String,
    /// The commit tagged (the version's).
    pub commit: String,
    /// The version the stage held before, if any.
    pub previous: Option<String>,
}

/// Assigns a registered version to a stage.
pub fn promote(
    repo: &Repo,
    name: &str,
    version: &Version,
    stage: &str,
    message: Option<&str>,
    sign: bool,
) -> Result<PromoteReport, Error> {
    check_name("model", name)?;
    check_name("stage", stage)?;
    let reg = load(repo)?;
    let (model, v) = reg.select(name, &Selector::Version(version.clone()))?;
    untrusted(v)?;
    let previous = model.stages.get(stage).cloned();
    if previous.as_deref() == Some(v.version.as_str()) {
        return Err(ModelError::AlreadyInStage {
            name: name.to_string(),
            version: v.version.clone(),
            stage: stage.to_string(),
        }
        .into());
    }
    let tag = stage_tag(name, stage, model.max_counter + 1);
    git_tag(
        repo,
        &tag,
        &v.commit,
        &promote_message(name, &v.semver, stage, message),
        sign,
    )?;
    Ok(PromoteReport {
        name: name.to_string(),
        version: v.version.clone(),
        stage: stage.to_string(),
        tag,
        commit: v.commit.clone(),
        previous,
    })
}

/// What `model show` found.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// The model.
    pub name: String,
    /// The version shown.
    pub version: VersionInfo,
    /// The stages this version is in now.
    pub stages: Vec<String>,
    /// The model's stage history, oldest first.
    pub history: Vec<StageEvent>,
    /// The latest version.
    pub latest: Option<String>,
    /// The lineage record that produced this version's digest, and its upstream chain.
    pub lineage: Option<Node>,
    /// That record's metrics.
    pub metrics: BTreeMap<String, serde_json::Number>,
}

/// One version of a model, with its stages, history, lineage and metrics.
pub fn show(repo: &Repo, spec: &str) -> Result<ShowReport, Error> {
    let (name, sel) = crate::model::parse_spec(spec)?;
    let reg = load(repo)?;
    let (model, v) = reg.select(&name, &sel)?;
    let lineage = match (&v.digest, v.problems.is_empty()) {
        (Some(d), true) => {
            let l = Lineage::load(&repo.root)?;
            upstream(&l, d, v.path.as_deref())
        }
        _ => None,
    };
    let metrics = lineage
        .as_ref()
        .map(|n| n.record.metrics.clone())
        .unwrap_or_default();
    Ok(ShowReport {
        name: name.clone(),
        version: v.clone(),
        stages: model
            .stages
            .iter()
            .filter(|(_, x)| **x == v.version)
            .map(|(s, _)| s.clone())
            .collect(),
        history: model.history.clone(),
        latest: model.latest.clone(),
        lineage,
        metrics,
    })
}

/// What `model get` did.
#[derive(Debug, Serialize)]
pub struct GetReport {
    /// The model.
    pub name: String,
    /// The version.
    pub version: String,
    /// Its path in the repository.
    pub path: String,
    /// Its digest (verified).
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Where it was written, as given.
    pub out: String,
    /// Whether it came from the remote (else it was in the cache).
    pub downloaded: bool,
}

/// Resolves `spec` and says where `get` would write by default: the file name of its path.
pub fn default_out(repo: &Repo, spec: &str) -> Result<String, Error> {
    let (name, sel) = crate::model::parse_spec(spec)?;
    let reg = load(repo)?;
    let (_, v) = reg.select(&name, &sel)?;
    let path = v.path.clone().ok_or_else(|| ModelError::NoPath {
        name: name.clone(),
        version: v.version.clone(),
    })?;
    Ok(path.rsplit('/').next().unwrap_or(&path).to_string())
}

/// Writes a version's bytes to `out` (atomically), from the cache or else the default remote
/// (`objects`), verified.
pub fn get(
    repo: &Repo,
    spec: &str,
    out: &Path,
    shown_out: &str,
    force: bool,
    objects: Option<&CacheThenRemote<'_>>,
    progress: &dyn Progress,
) -> Result<GetReport, Error> {
    let (name, sel) = crate::model::parse_spec(spec)?;
    let reg = load(repo)?;
    let (_, v) = reg.select(&name, &sel)?;
    untrusted(v)?;
    let (Some(path), Some(digest), Some(size)) = (v.path.clone(), v.digest, v.size) else {
        return Err(ModelError::NoPath {
            name,
            version: v.version.clone(),
        }
        .into());
    };
    if v.kind.as_deref() == Some("dir") {
        return Err(ModelError::IsDirectory {
            name,
            version: v.version.clone(),
            path,
        }
        .into());
    }
    // an existing directory (not a link to one) receives the file under its own name
    let file_name = path.rsplit('/').next().unwrap_or(&path).to_string();
    let (out, shown_out) = match out.symlink_metadata() {
        Ok(m) if m.is_dir() => (
            out.join(&file_name),
            format!("{}/{file_name}", shown_out.trim_end_matches('/')),
        ),
        _ => (out.to_path_buf(), shown_out.to_string()),
    };
    let (out, shown_out) = (out.as_path(), shown_out.as_str());
    if out.symlink_metadata().is_ok() && !force {
        return Err(ModelError::OutExists {
            path: shown_out.to_string(),
        }
        .into());
    }
    let mut downloaded = false;
    if v.kind.as_deref() == Some("git") {
        // a small file git tracks itself: its bytes are in the tagged commit
        let commit = repo
            .git
            .find_commit(git2::Oid::from_str(&v.commit).map_err(gerr("reading a commit"))?);
        let tree = commit.and_then(|c| c.tree()).map_err(gerr("reading a commit"))?;
        let entry = tree.get_path(Path::new(&path)).map_err(gerr("reading a tree"))?;
        let blob = repo.git.find_blob(entry.id()).map_err(gerr("reading a blob"))?;
        crate::fs::write_atomic(out, blob.content())?;
    } else {
        if !repo.cache.contains(&digest) {
            match objects {
                Some(o) => {
                    o.fetch(&[digest], progress)?;
                    downloaded = true;
                }
                None => {
                    return Err(ModelError::NoRemote {
                        name,
                        version: v.version.clone(),
                        path,
                        digest,
                    }
                    .into())
                }
            }
        }
        let dir = out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::Builder::new()
            .prefix(".mlv-get-")
            .tempfile_in(dir)
            .map_err(|e| crate::fs::IoError::new("cannot create a file in", dir, e))?;
        repo.cache.copy_out_to_file(&digest, tmp.as_file_mut())?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| crate::fs::IoError::new("cannot write", tmp.path(), e))?;
        let persisted = if force {
            tmp.persist(out)
        } else {
            tmp.persist_noclobber(out)
        };
        persisted.map_err(|e| crate::fs::IoError::new("cannot write", out, e.error))?;
    }
    Ok(GetReport {
        name,
        version: v.version.clone(),
        path,
        digest,
        size,
        out: shown_out.to_string(),
        downloaded,
    })
}
