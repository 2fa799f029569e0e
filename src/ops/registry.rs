//! `mlv ls URL [PATH]` and `mlv get URL PATH`: another repository's data (a data registry).
//!
//! Where things go:
//! - The clone of the source: `.mlv/sources` of the mlv repository around the working directory,
//!   else the user's cache (`source::default_cache_root`).
//! - Downloaded objects, for `get`: inside an mlv repository, its cache (a later `import` or
//!   `pull` of the same data downloads nothing); elsewhere a temporary cache in a scratch
//!   directory beside OUT, removed afterwards, filled as `pull` fills a cache: small objects in
//!   packs, copied out; large ones loose, hard-linked out (made writable: the cache goes away).
//!   Loose small objects hard-linked out were tried first: 20,000 cache files created, linked
//!   and unlinked cost 1.6x of `pull` from S3, against 0.87x now (docs/benchmarks.md, issue
//!   14's targets). The directory manifests `ls` needs go to the
//!   repository's cache, or else a small cache beside the clone.
//! - OUT is written whole into that scratch directory first and renamed into place, so a failed
//!   `get` leaves nothing at OUT; `--force` moves the old OUT aside in the same way and removes
//!   it only once the new one is in place.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use tokio::runtime::Handle;

use crate::cache::Cache;
use crate::config::LinkKind;
use crate::error::{Error, Refusal};
use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::link::Linker;
use crate::manifest::{Entry, Manifest, Node, Part};
use crate::pointer::{Kind, Pointer};
use crate::progress::{NoProgress, Progress};
use crate::relpath::RelPath;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::source::{self, Located, Snapshot, SourceError, SourceRepo};

/// What the current directory offers a registry command: the mlv repository around it, if any.
pub struct Here {
    /// The working directory.
    pub cwd: PathBuf,
    /// The mlv repository around it, if there is one.
    pub repo: Option<Repo>,
}

impl Here {
    /// Looks for an mlv repository around `cwd`: none (no git work tree, or one without
    /// `.mlv/`) is fine; one that cannot be opened (a bad config, say) is an error, so that its
    /// cache is not silently bypassed.
    pub fn new(cwd: &Path) -> Result<Here, Error> {
        use crate::repo::RepoError;
        let repo = match Repo::open(cwd) {
            Ok(r) => Some(r),
            Err(RepoError::NotGit { .. } | RepoError::NotInitialized { .. } | RepoError::Bare { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Here {
            cwd: cwd.to_path_buf(),
            repo,
        })
    }

    /// A source URL as given, with a relative local path made relative to `cwd` (which `-C`
    /// may have moved away from the process's directory).
    pub fn source_url(&self, url: &str) -> String {
        if source::is_local_path(url) && Path::new(url).is_relative() {
            self.cwd.join(url).to_string_lossy().into_owned()
        } else {
            url.to_string()
        }
    }

    /// Where source clones go.
    pub fn sources_root(&self) -> PathBuf {
        match &self.repo {
            Some(r) => source::repo_cache_root(&r.mlv_dir()),
            None => source::default_cache_root(),
        }
    }
}

/// Tracked by mlv or by git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Tracker {
    /// Data mlv tracks (a pointer's, or inside a tracked directory).
    Mlv,
    /// A file or directory in git's tree.
    Git,
}

/// A file or a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryType {
    /// A file (or a symbolic link inside a tracked directory).
    File,
    /// A directory.
    Dir,
}

/// One listed path.
#[derive(Debug, Clone, Serialize)]
pub struct LsEntry {
    /// The path from the source repository's root.
    pub path: String,
    /// File or directory.
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Who tracks it.
    pub tracked: Tracker,
    /// Bytes (a directory's total for mlv data; none for a git directory).
    pub size: Option<u64>,
    /// A directory's file count (mlv data only).
    pub files: Option<u64>,
    /// The digest mlv records: a pointer's, or a file's inside a tracked directory.
    pub digest: Option<Digest>,
}

/// What `mlv ls` found.
#[derive(Debug, Serialize)]
pub struct LsReport {
    /// The source, redacted.
    pub url: String,
    /// The revision as requested.
    pub rev: Option<String>,
    /// The commit it resolved to.
    pub commit: String,
    /// The listed path (none: the root).
    pub path: Option<String>,
    /// The entries, sorted by path.
    pub entries: Vec<LsEntry>,
}

/// Options of `ls`.
#[derive(Debug, Clone, Default)]
pub struct LsOptions {
    /// The path to list (none: the root).
    pub path: Option<RelPath>,
    /// The revision (none: the source's HEAD).
    pub rev: Option<String>,
    /// List everything below, not only the entries directly under the path.
    pub recursive: bool,
    /// Leave out what only git tracks.
    pub mlv_only: bool,
    /// Concurrent transfers with the source's remote.
    pub jobs: Option<usize>,
}

/// Directory manifests of a source, from a cache and behind it the source's remote (opened on
/// first need).
struct Manifests<'a> {
    snap: &'a Snapshot,
    cache: &'a Cache,
    remote: Option<Remote>,
    jobs: Option<usize>,
    runtime: &'a Handle,
    loaded: HashMap<Digest, Manifest>,
}

impl<'a> Manifests<'a> {
    fn new(snap: &'a Snapshot, cache: &'a Cache, jobs: Option<usize>, runtime: &'a Handle) -> Self {
        Manifests {
            snap,
            cache,
            remote: None,
            jobs,
            runtime,
            loaded: HashMap::new(),
        }
    }

    fn remote(&mut self) -> Result<&Remote, Error> {
        if self.remote.is_none() {
            self.remote = Some(self.snap.remote(self.jobs)?);
        }
        Ok(self.remote.as_ref().expect("just opened"))
    }

    /// Downloads what the cache lacks of `digests`, verified; errors name the source.
    fn download(&mut self, digests: &[Digest], progress: &dyn Progress) -> Result<(u64, u64), Error> {
        let lacking = self.cache.missing(digests);
        if lacking.is_empty() {
            return Ok((0, 0));
        }
        let runtime = self.runtime;
        let cache = self.cache;
        let snap = self.snap;
        let remote = self.remote()?;
        let report = runtime
            .block_on(remote.download(cache, &lacking, progress))
            .map_err(|e| snap.in_remote(e.into()))?;
        Ok((report.downloaded, report.downloaded_bytes))
    }

    /// A directory pointer's manifest, verified, checked against the pointer's totals.
    fn get(&mut self, p: &Pointer) -> Result<&Manifest, Error> {
        let d = p.meta.digest;
        if !self.loaded.contains_key(&d) {
            self.download(&[d], &NoProgress)?;
            let m = self.cache.read_manifest(&d)?.map_err(|mut e| {
                e.data = Some(p.data.to_string());
                Error::from(e)
            })?;
            if m.size() != p.meta.size || p.meta.files.is_some_and(|f| f != m.file_count()) {
                return Err(Refusal::WrongSize {
                    path: p.data.to_string(),
                    what: "the pointer",
                    recorded: p.meta.size,
                    actual: m.size(),
                    digest: d,
                }
                .into());
            }
            self.loaded.insert(d, m);
        }
        Ok(&self.loaded[&d])
    }
}

/// Lists what a source repository tracks at a revision.
pub fn ls(here: &Here, url: &str, opts: &LsOptions, runtime: &Handle) -> Result<LsReport, Error> {
    let src = open_source(here, url)?;
    let snap = src.snapshot(opts.rev.as_deref())?;
    let fallback;
    let cache = match &here.repo {
        Some(r) => &r.cache,
        None => {
            fallback = src.manifest_cache();
            &fallback
        }
    };
    let mut manifests = Manifests::new(&snap, cache, opts.jobs, runtime);
    let mut entries = Vec::new();
    match opts.path.as_ref().map(|p| snap.locate(p)).transpose()? {
        None => list_git(&snap, &mut manifests, None, opts, &mut entries)?,
        Some(Located::GitDir { path }) => list_git(&snap, &mut manifests, Some(&path), opts, &mut entries)?,
        Some(Located::Git { path, size }) => {
            if !opts.mlv_only {
                entries.push(git_file(&path, size));
            }
        }
        Some(Located::Tracked { pointer, inner }) => list_tracked(
            &snap,
            &mut manifests,
            &pointer,
            inner.as_ref(),
            opts,
            &mut entries,
        )?,
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(LsReport {
        url: crate::remote::redact::redact_url(url),
        rev: opts.rev.clone(),
        commit: snap.commit.to_string(),
        path: opts.path.as_ref().map(|p| p.to_string()),
        entries,
    })
}

fn git_file(path: &RelPath, size: u64) -> LsEntry {
    LsEntry {
        path: path.to_string(),
        kind: EntryType::File,
        tracked: Tracker::Git,
        size: Some(size),
        files: None,
        digest: None,
    }
}

fn pointer_entry(p: &Pointer) -> LsEntry {
    LsEntry {
        path: p.data.to_string(),
        kind: match p.meta.kind {
            Kind::File => EntryType::File,
            Kind::Dir => EntryType::Dir,
        },
        tracked: Tracker::Mlv,
        size: Some(p.meta.size),
        files: p.meta.files,
        digest: Some(p.meta.digest),
    }
}

/// The git tree's entries under `dir`, with the data of the pointers there.
fn list_git(
    snap: &Snapshot,
    manifests: &mut Manifests<'_>,
    dir: Option<&RelPath>,
    opts: &LsOptions,
    out: &mut Vec<LsEntry>,
) -> Result<(), Error> {
    let parent_is = |p: &Pointer| p.data.parent().as_ref() == dir;
    let here: Vec<&Pointer> = snap.pointers.iter().filter(|p| parent_is(p)).collect();
    for e in snap.git_entries(dir)? {
        // data a pointer tracks is listed once, as mlv's (even if git holds something there)
        if here.iter().any(|p| p.data == e.path) {
            continue;
        }
        if !e.dir {
            if !opts.mlv_only {
                out.push(git_file(&e.path, e.size));
            }
            continue;
        }
        let holds_data = snap.pointers.iter().any(|p| p.data.is_within(&e.path));
        if opts.mlv_only && !holds_data {
            continue;
        }
        out.push(LsEntry {
            path: e.path.to_string(),
            kind: EntryType::Dir,
            tracked: Tracker::Git,
            size: None,
            files: None,
            digest: None,
        });
        if opts.recursive {
            list_git(snap, manifests, Some(&e.path), opts, out)?;
        }
    }
    for p in here {
        out.push(pointer_entry(p));
        if opts.recursive && p.meta.kind == Kind::Dir {
            list_tracked(snap, manifests, p, None, opts, out)?;
        }
    }
    Ok(())
}

/// Inside a pointer's data: the pointer itself for a file, else the manifest's entries under
/// `inner` (directly under it, or all with `recursive`).
fn list_tracked(
    snap: &Snapshot,
    manifests: &mut Manifests<'_>,
    p: &Pointer,
    inner: Option<&RelPath>,
    opts: &LsOptions,
    out: &mut Vec<LsEntry>,
) -> Result<(), Error> {
    if p.meta.kind == Kind::File {
        match inner {
            None => out.push(pointer_entry(p)),
            Some(_) => return Err(not_in_source(snap, p, inner)),
        }
        return Ok(());
    }
    let m = manifests.get(p)?;
    let prefix = inner.map(RelPath::as_str);
    if let Some(e) = prefix.and_then(|s| m.entries.iter().find(|e| e.path == s)) {
        if !matches!(e.node, Node::Dir) {
            out.push(manifest_entry(p, &e.path, e));
            return Ok(());
        }
    }
    let below: Vec<&Entry> = m
        .entries
        .iter()
        .filter(|e| prefix.is_none_or(|s| e.path.strip_prefix(s).is_some_and(|r| r.starts_with('/'))))
        .collect();
    if below.is_empty() && prefix.is_some() && !m.entries.iter().any(|e| Some(e.path.as_str()) == prefix) {
        return Err(not_in_source(snap, p, inner));
    }
    // directories below, with their totals
    let mut dirs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for e in &below {
        let rest = match prefix {
            Some(s) => &e.path[s.len() + 1..],
            None => e.path.as_str(),
        };
        let parts: Vec<&str> = rest.split('/').collect();
        let upto = if opts.recursive {
            parts.len() - 1
        } else {
            parts.len().min(2) - 1
        };
        for i in 0..upto {
            let d = parts[..=i].join("/");
            let t = dirs.entry(d).or_default();
            if let Node::File { size, .. } = e.node {
                t.0 += size;
                t.1 += 1;
            }
        }
        let direct = parts.len() == 1;
        if direct || opts.recursive {
            match e.node {
                Node::Dir => {
                    dirs.entry(rest.to_string()).or_default();
                }
                _ => out.push(manifest_entry(p, &e.path, e)),
            }
        }
    }
    for (d, (size, files)) in dirs {
        let path = match prefix {
            Some(s) => format!("{}/{s}/{d}", p.data),
            None => format!("{}/{d}", p.data),
        };
        out.push(LsEntry {
            path,
            kind: EntryType::Dir,
            tracked: Tracker::Mlv,
            size: Some(size),
            files: Some(files),
            digest: None,
        });
    }
    Ok(())
}

fn manifest_entry(p: &Pointer, path: &str, e: &Entry) -> LsEntry {
    LsEntry {
        path: format!("{}/{path}", p.data),
        kind: EntryType::File,
        tracked: Tracker::Mlv,
        size: Some(e.size()),
        files: None,
        digest: e.digest(),
    }
}

fn not_in_source(snap: &Snapshot, p: &Pointer, inner: Option<&RelPath>) -> Error {
    let path = match inner {
        Some(i) => format!("{}/{i}", p.data),
        None => p.data.to_string(),
    };
    SourceError::NotInSource {
        path,
        url: snap.shown_url.clone(),
        rev: snap.shown_rev().to_string(),
    }
    .into()
}

/// Options of `get`.
#[derive(Debug, Clone)]
pub struct GetOptions {
    /// The path in the source.
    pub path: RelPath,
    /// Where to write (none: the path's base name in the working directory).
    pub out: Option<PathBuf>,
    /// The revision (none: the source's HEAD).
    pub rev: Option<String>,
    /// Replace an OUT that holds other data.
    pub force: bool,
    /// Concurrent transfers with the source's remote.
    pub jobs: Option<usize>,
}

/// What `mlv get` did.
#[derive(Debug, Serialize)]
pub struct GetReport {
    /// The source, redacted.
    pub url: String,
    /// The revision as requested.
    pub rev: Option<String>,
    /// The commit it resolved to.
    pub commit: String,
    /// The path in the source.
    pub path: String,
    /// Where it was written.
    pub out: String,
    /// File or directory.
    #[serde(rename = "type")]
    pub kind: EntryType,
    /// Who tracks it in the source.
    pub tracked: Tracker,
    /// Files written.
    pub files: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects downloaded from the source's remote.
    pub downloaded: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// OUT already held exactly this data: nothing was written.
    pub unchanged: bool,
}

/// What to write at OUT: one file, or a directory's entries (paths relative to OUT).
enum Want {
    File { digest: Digest, size: u64, exec: bool },
    Dir(Vec<Entry>),
    Bytes(Vec<u8>),
}

/// Downloads a path of a source repository to OUT, every byte verified.
pub fn get(
    here: &Here,
    url: &str,
    opts: &GetOptions,
    runtime: &Handle,
    progress: &dyn Progress,
) -> Result<GetReport, Error> {
    let src = open_source(here, url)?;
    let snap = src.snapshot(opts.rev.as_deref())?;
    let name = opts.path.file_name();
    let mut given = opts.out.clone().unwrap_or_else(|| PathBuf::from(name));
    let mut out = here.cwd.join(&given);
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| here.cwd.clone(), Path::to_path_buf);
    std::fs::create_dir_all(&parent).at("cannot create directory", &parent)?;
    let scratch = tempfile::Builder::new()
        .prefix(".mlv-get-")
        .tempdir_in(&parent)
        .at("cannot create directory", &parent)?;
    // objects: the repository's cache, or a temporary one inside the scratch directory
    let temp_cache;
    let (cache, links): (&Cache, Vec<LinkKind>) = match &here.repo {
        Some(r) => (
            &r.cache,
            // OUT is not tracked here: never share a cache object with it (an edit would
            // damage the cache)
            r.config
                .cache
                .link
                .iter()
                .copied()
                .filter(|k| !k.shares_object())
                .collect(),
        ),
        None => {
            // as `pull` fills a cache: small objects in packs (one file per pack, not per
            // object), copied out; large ones loose, hard-linked out where the file system
            // allows (the cache goes away, so nothing large is written twice)
            temp_cache = Cache::new(scratch.path().join("cache"), scratch.path().join("tmp"));
            (
                &temp_cache,
                vec![LinkKind::Reflink, LinkKind::Hardlink, LinkKind::Copy],
            )
        }
    };
    let mut manifests = Manifests::new(&snap, cache, opts.jobs, runtime);
    let (want, tracked) = match snap.locate(&opts.path)? {
        Located::Git { path, .. } => (Want::Bytes(snap.git_blob(&path)?), Tracker::Git),
        Located::GitDir { path } => (git_dir(&snap, &mut manifests, &path)?, Tracker::Git),
        Located::Tracked { pointer, inner } => (
            wanted(&snap, &mut manifests, &pointer, inner.as_ref())?,
            Tracker::Mlv,
        ),
    };
    // `-o DIR` naming an existing directory, for a file: into it, as `cp` does (a file cannot
    // be that directory). For a directory OUT is the path itself, so a repeated get is a no-op
    // and `--force` replaces it.
    if opts.out.is_some() && !matches!(want, Want::Dir(_)) && out.is_dir() && !out.is_symlink() {
        out = out.join(name);
        given = given.join(name);
    }
    let shown_out = crate::relpath::printable_path(&given);
    let (kind, files, bytes) = match &want {
        Want::File { size, .. } => (EntryType::File, 1, *size),
        Want::Bytes(b) => (EntryType::File, 1, b.len() as u64),
        Want::Dir(entries) => (
            EntryType::Dir,
            entries
                .iter()
                .filter(|e| matches!(e.node, Node::File { .. }))
                .count() as u64,
            entries.iter().map(Entry::size).sum(),
        ),
    };
    let mut report = GetReport {
        url: crate::remote::redact::redact_url(url),
        rev: opts.rev.clone(),
        commit: snap.commit.to_string(),
        path: opts.path.to_string(),
        out: shown_out.clone(),
        kind,
        tracked,
        files,
        bytes,
        downloaded: 0,
        downloaded_bytes: 0,
        unchanged: false,
    };
    let exists = std::fs::symlink_metadata(&out).is_ok();
    if exists {
        if holds(&out, &want)? {
            report.unchanged = true;
            return Ok(report);
        }
        if !opts.force {
            return Err(SourceError::OutputExists { out: shown_out }.into());
        }
    }
    let digests: Vec<Digest> = match &want {
        Want::File { digest, .. } => vec![*digest],
        Want::Dir(entries) => entries.iter().filter_map(Entry::digest).collect(),
        Want::Bytes(_) => Vec::new(),
    };
    let (n, b) = manifests.download(&digests, progress)?;
    report.downloaded = n;
    report.downloaded_bytes = b;
    let staged = scratch.path().join("out");
    let linker = Linker::new(cache, &links, scratch.path().join("place"))?;
    match &want {
        Want::Bytes(bytes) => {
            std::fs::write(&staged, bytes).at("cannot write", &staged)?;
        }
        Want::File { digest, exec, .. } => place(&linker, digest, &staged, *exec)?,
        Want::Dir(entries) => write_dir(&linker, &staged, entries, &shown_out)?,
    }
    if exists {
        let old = scratch.path().join("old");
        std::fs::rename(&out, &old).at("cannot rename", &out)?;
        if let Err(e) = std::fs::rename(&staged, &out) {
            let _ = std::fs::rename(&old, &out);
            return Err(IoError::new("cannot write", &out, e).into());
        }
    } else {
        std::fs::rename(&staged, &out).at("cannot write", &out)?;
    }
    Ok(report)
}

/// A directory git tracks, as `dvc get` gives it: its files from git (put in the cache, so a
/// directory is one list of objects) and the data of the pointers inside it (their pointer
/// files are left out: OUT is data, not a work tree). Git links are kept as links (refused, as
/// any link, if they lead outside OUT); submodules are left out.
fn git_dir(snap: &Snapshot, manifests: &mut Manifests<'_>, dir: &RelPath) -> Result<Want, Error> {
    let git = snap.git();
    let git_err = |source: git2::Error| SourceError::Git {
        url: snap.shown_url.clone(),
        action: "reading a directory",
        source,
    };
    let root = git.find_tree(snap.tree).map_err(git_err)?;
    let tree = root
        .get_path(Path::new(dir.as_str()))
        .and_then(|e| git.find_tree(e.id()))
        .map_err(git_err)?;
    let mut blobs = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |parent, e| {
        if e.kind() == Some(git2::ObjectType::Blob) {
            if let Ok(name) = e.name() {
                blobs.push((format!("{parent}{name}"), e.id(), e.filemode()));
            }
        }
        git2::TreeWalkResult::Ok
    })
    .map_err(git_err)?;
    let mut entries = Vec::new();
    for (rel, id, mode) in blobs {
        let Ok(full) = dir.join(&rel) else { continue };
        if snap.pointers.iter().any(|p| p.file == full) {
            continue;
        }
        let blob = git.find_blob(id).map_err(git_err)?;
        if mode == i32::from(git2::FileMode::Link) {
            let target = String::from_utf8_lossy(blob.content()).into_owned();
            entries.push(Entry::symlink(rel, target));
        } else {
            let digest = manifests.cache.insert_bytes(blob.content())?;
            let exec = mode == i32::from(git2::FileMode::BlobExecutable);
            entries.push(Entry::file(rel, digest, blob.size() as u64, exec));
        }
    }
    let inside: Vec<Pointer> = snap
        .pointers
        .iter()
        .filter(|p| p.data.strip_prefix(dir).is_some())
        .cloned()
        .collect();
    for p in inside {
        let rel = p.data.strip_prefix(dir).expect("filtered").to_string();
        match p.meta.kind {
            Kind::File => entries.push(Entry::file(rel, p.meta.digest, p.meta.size, p.meta.exec)),
            Kind::Dir => {
                let m = manifests.get(&p)?;
                if m.entries.is_empty() {
                    entries.push(Entry::dir(rel.clone()));
                }
                entries.extend(m.entries.iter().map(|e| Entry {
                    path: format!("{rel}/{}", e.path),
                    node: e.node.clone(),
                }));
            }
        }
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Want::Dir(entries))
}

/// What a pointer (and a path inside its directory) asks for.
fn wanted(
    snap: &Snapshot,
    manifests: &mut Manifests<'_>,
    p: &Pointer,
    inner: Option<&RelPath>,
) -> Result<Want, Error> {
    if p.meta.kind == Kind::File {
        return match inner {
            None => Ok(Want::File {
                digest: p.meta.digest,
                size: p.meta.size,
                exec: p.meta.exec,
            }),
            Some(_) => Err(not_in_source(snap, p, inner)),
        };
    }
    let m = manifests.get(p)?;
    match m.part(inner.map(RelPath::as_str)) {
        Part::File { digest, size, exec } => Ok(Want::File { digest, size, exec }),
        Part::Dir(below) => Ok(Want::Dir(below)),
        Part::Absent | Part::Symlink { .. } => Err(not_in_source(snap, p, inner)),
    }
}

/// Puts one object at `dest`, writable (a hard link out of the temporary cache is made
/// writable: that cache goes away, the file is the user's).
fn place(linker: &Linker<'_>, digest: &Digest, dest: &Path, exec: bool) -> Result<(), Error> {
    let kind = linker.place(digest, dest, exec)?;
    if kind.shares_object() {
        crate::link::set_mode(dest, if exec { 0o755 } else { 0o644 })?;
    }
    Ok(())
}

/// Writes a directory's entries under `root` (which does not exist yet).
fn write_dir(linker: &Linker<'_>, root: &Path, entries: &[Entry], shown: &str) -> Result<(), Error> {
    std::fs::create_dir_all(root).at("cannot create directory", root)?;
    for e in entries {
        match &e.node {
            Node::Dir => {
                let d = root.join(&e.path);
                std::fs::create_dir_all(&d).at("cannot create directory", &d)?;
            }
            Node::Symlink { target } => {
                if !crate::relpath::link_stays_inside(&e.path, target) {
                    return Err(Refusal::LinkEscapes {
                        path: format!("{shown}/{}", e.path),
                        target: target.clone(),
                    }
                    .into());
                }
            }
            Node::File { .. } => {}
        }
    }
    entries.par_iter().try_for_each(|e| -> Result<(), Error> {
        match &e.node {
            Node::File { digest, exec, .. } => place(linker, digest, &root.join(&e.path), *exec),
            Node::Symlink { target } => {
                let at = root.join(&e.path);
                if let Some(parent) = at.parent() {
                    std::fs::create_dir_all(parent).at("cannot create directory", parent)?;
                }
                std::os::unix::fs::symlink(target, &at).at("cannot create link", &at)?;
                Ok(())
            }
            Node::Dir => Ok(()),
        }
    })
}

/// Whether `out` already holds exactly what is wanted (files by content; a directory with the
/// same files, links and empty directories and nothing else).
fn holds(out: &Path, want: &Want) -> Result<bool, Error> {
    let meta = std::fs::symlink_metadata(out).at("cannot stat", out)?;
    match want {
        Want::File { digest, .. } => Ok(meta.is_file() && file_digest(out)? == *digest),
        Want::Bytes(b) => Ok(meta.is_file() && file_digest(out)? == Digest::of_bytes(b)),
        Want::Dir(entries) => {
            if !meta.is_dir() {
                return Ok(false);
            }
            let mut have = Vec::new();
            scan(out, "", &mut have)?;
            let expected: BTreeMap<&str, &Node> =
                entries.iter().map(|e| (e.path.as_str(), &e.node)).collect();
            // directories that hold something are implied by their contents
            let have: Vec<(String, Found)> = have
                .into_iter()
                .filter(|(p, f)| {
                    !matches!(f, Found::Dir)
                        || expected.contains_key(p.as_str())
                        || is_empty_dir(&out.join(p))
                })
                .collect();
            if have.len() != expected.len() {
                return Ok(false);
            }
            let checks: Result<Vec<bool>, Error> = have
                .par_iter()
                .map(|(p, f)| {
                    Ok(match (expected.get(p.as_str()), f) {
                        (Some(Node::Dir), Found::Dir) => true,
                        (Some(Node::Symlink { target }), Found::Link(t)) => target == t,
                        (Some(Node::File { digest, .. }), Found::File) => {
                            file_digest(&out.join(p))? == *digest
                        }
                        _ => false,
                    })
                })
                .collect();
            Ok(checks?.into_iter().all(|ok| ok))
        }
    }
}

enum Found {
    File,
    Dir,
    Link(String),
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p).is_ok_and(|mut d| d.next().is_none())
}

fn scan(root: &Path, rel: &str, out: &mut Vec<(String, Found)>) -> Result<(), Error> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    for entry in std::fs::read_dir(&dir).at("cannot read directory", &dir)? {
        let entry = entry.at("cannot read directory", &dir)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        let ft = entry.file_type().at("cannot stat", &entry.path())?;
        if ft.is_symlink() {
            let t = std::fs::read_link(entry.path()).at("cannot read", &entry.path())?;
            out.push((path, Found::Link(t.to_string_lossy().into_owned())));
        } else if ft.is_dir() {
            scan(root, &path, out)?;
            out.push((path, Found::Dir));
        } else {
            out.push((path, Found::File));
        }
    }
    Ok(())
}

fn file_digest(path: &Path) -> Result<Digest, Error> {
    let mut f = std::fs::File::open(path).at("cannot read", path)?;
    Ok(crate::hash::hash_reader(&mut f).at("cannot read", path)?.0)
}

/// The source repository a URL names (a relative path taken from `here`), cloned into the
/// sources cache of `here`.
pub fn open_source(here: &Here, url: &str) -> Result<SourceRepo, Error> {
    source::open(&here.source_url(url), &here.sources_root())
}
