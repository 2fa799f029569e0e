//! Reading tracked data from code (the Python API, like `dvc.api`): one revision of a
//! repository's data ([`DataView`]) — the local repository at its work tree's pointers or at a
//! git revision, or another repository through [`crate::source`] — and, for a path in it, what
//! it is ([`Found`]), a verified streaming reader of a file, the objects' URLs on the remote,
//! and a listing.
//!
//! Decisions (where the issue is silent, as `dvc.api` does):
//! - paths are relative to the repository's root, whatever the current directory;
//! - an object comes from the local cache when it is there (the local repository's cache; a
//!   source's objects are never cached: they stream from the source's default remote), else it
//!   streams from the remote, verified on the way; nothing is written to the cache, so reading
//!   has no side effect on the repository (a directory's manifest is read the same way);
//! - a file git tracks (not mlv) is read from git at the revision (the work tree's file at
//!   `rev=None` in the local repository).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use tokio::runtime::Handle;

use crate::cache::Cache;
use crate::error::{Error, Refusal};
use crate::fs::IoContext;
use crate::hash::Digest;
use crate::manifest::{Manifest, Node, Part};
use crate::pointer::{Kind, Pointer};
use crate::reader::VerifiedReader;
use crate::relpath::RelPath;
use crate::remote::Remote;
use crate::repo::Repo;
use crate::source::{Located, Snapshot};

use super::registry::{EntryType, LsEntry, Tracker};

/// Whose data a view shows.
enum Origin {
    /// The local repository: the work tree (`commit` None) or a commit's tree.
    Local {
        repo: Box<Repo>,
        commit: Option<git2::Oid>,
    },
    /// Another repository at one commit.
    Source(Box<Snapshot>),
}

/// One revision of a repository's tracked data.
pub struct DataView {
    origin: Origin,
    pointers: Vec<Pointer>,
    remote_name: Option<String>,
    runtime: Handle,
    remote: OnceLock<Arc<Remote>>,
}

/// What a path is in a view.
#[derive(Debug, Clone)]
pub enum Found {
    /// A file tracked by mlv (a tracked file, or a file inside a tracked directory).
    File {
        /// The path.
        path: RelPath,
        /// Its content's digest.
        digest: Digest,
        /// Its size.
        size: u64,
    },
    /// A tracked directory, or a directory inside one: its files (paths below `path`).
    Dir {
        /// The path.
        path: RelPath,
        /// The files under it: path below `path`, digest, size.
        files: Vec<(String, Digest, u64)>,
    },
    /// A file tracked by git, not mlv.
    Git {
        /// The path.
        path: RelPath,
        /// Its size.
        size: u64,
    },
}

/// A path relative to a repository's root, as given by a caller.
pub fn repo_path(path: &str) -> Result<RelPath, Error> {
    let trimmed = path.trim_start_matches("./").trim_end_matches('/');
    let trimmed = trimmed
        .strip_suffix(crate::pointer::POINTER_SUFFIX)
        .unwrap_or(trimmed);
    RelPath::new(trimmed).map_err(|reason| {
        Refusal::BadPath {
            path: path.into(),
            reason: crate::error::BadPathReason::Invalid(reason),
        }
        .into()
    })
}

impl DataView {
    /// The local repository `repo` at `rev` (None: the work tree's pointers); objects the cache
    /// lacks come from remote `remote` (None: the default). `runtime` runs remote requests.
    pub fn local(
        repo: Repo,
        rev: Option<&str>,
        remote: Option<&str>,
        runtime: Handle,
    ) -> Result<Self, Error> {
        let (pointers, commit) = match rev {
            None => (repo.pointers()?, None),
            Some(rev) => {
                let commit = crate::history::resolve_commit(&repo.git, rev)?;
                let tree = commit.tree().map_err(crate::repo::git_err("reading a tree"))?;
                (
                    crate::history::pointers_in_tree(&repo.git, &tree)?,
                    Some(commit.id()),
                )
            }
        };
        Ok(DataView {
            origin: Origin::Local {
                repo: Box::new(repo),
                commit,
            },
            pointers,
            remote_name: remote.map(str::to_string),
            runtime,
            remote: OnceLock::new(),
        })
    }

    /// Another repository at `url` (cloned into `cache_root`, see [`crate::source::open`]) at
    /// `rev` (None: its HEAD). Objects come from its default remote (a named `remote` is not
    /// supported for a source: its own config decides).
    pub fn source(url: &str, cache_root: &Path, rev: Option<&str>, runtime: Handle) -> Result<Self, Error> {
        let snapshot = crate::source::open(url, cache_root)?.snapshot(rev)?;
        Ok(DataView {
            pointers: snapshot.pointers.clone(),
            origin: Origin::Source(Box::new(snapshot)),
            remote_name: None,
            runtime,
            remote: OnceLock::new(),
        })
    }

    fn cache(&self) -> Option<&Cache> {
        match &self.origin {
            Origin::Local { repo, .. } => Some(&repo.cache),
            Origin::Source(_) => None,
        }
    }

    /// The remote objects come from, opened once.
    pub fn remote(&self) -> Result<Arc<Remote>, Error> {
        if let Some(r) = self.remote.get() {
            return Ok(r.clone());
        }
        let remote = match &self.origin {
            Origin::Local { repo, .. } => super::remotes::open(repo, self.remote_name.as_deref(), None)?,
            Origin::Source(s) => s.remote(None)?,
        };
        Ok(self.remote.get_or_init(|| Arc::new(remote)).clone())
    }

    fn in_remote(&self, e: Error) -> Error {
        match &self.origin {
            Origin::Source(s) => s.in_remote(e),
            Origin::Local { .. } => e,
        }
    }

    /// A verified reader of an object: from the cache when it holds it, else streamed from
    /// the remote.
    pub fn reader(&self, digest: &Digest, size: u64) -> Result<VerifiedReader, Error> {
        if let Some(cache) = self.cache() {
            if cache.contains(digest) {
                return VerifiedReader::from_cache(cache, digest, Some(size));
            }
        }
        let remote = self.remote()?;
        VerifiedReader::from_remote(remote, self.runtime.clone(), digest, Some(size))
            .map_err(|e| self.in_remote(e))
    }

    fn not_tracked(&self, path: &RelPath) -> Error {
        match &self.origin {
            Origin::Source(s) => {
                // the seam's error names the repository and the revision
                s.locate(path).err().unwrap_or_else(|| {
                    Refusal::NotTracked {
                        path: path.to_string(),
                    }
                    .into()
                })
            }
            Origin::Local { commit, .. } => Refusal::NotTracked {
                path: match commit {
                    Some(c) => format!("{path} (at {c})"),
                    None => path.to_string(),
                },
            }
            .into(),
        }
    }

    /// What `path` is.
    pub fn locate(&self, path: &RelPath) -> Result<Found, Error> {
        let Some(pointer) = self.pointers.iter().find(|p| path.is_within(&p.data)) else {
            return self.locate_git(path);
        };
        let digest = pointer.meta.digest;
        let inner = path.strip_prefix(&pointer.data).filter(|s| !s.is_empty());
        match (pointer.meta.kind, inner) {
            (Kind::File, None) => Ok(Found::File {
                path: path.clone(),
                digest,
                size: pointer.meta.size,
            }),
            (Kind::File, Some(_)) => Err(self.not_tracked(path)),
            (Kind::Dir, inner) => {
                let manifest = self.dir_manifest(pointer)?;
                let files = match manifest.part(inner) {
                    Part::File { digest, size, .. } => {
                        return Ok(Found::File {
                            path: path.clone(),
                            digest,
                            size,
                        })
                    }
                    Part::Dir(below) => below
                        .into_iter()
                        .filter_map(|e| match e.node {
                            Node::File { digest, size, .. } => Some((e.path, digest, size)),
                            _ => None,
                        })
                        .collect(),
                    Part::Absent | Part::Symlink { .. } => return Err(self.not_tracked(path)),
                };
                Ok(Found::Dir {
                    path: path.clone(),
                    files,
                })
            }
        }
    }

    /// A tracked directory's manifest.
    fn dir_manifest(&self, pointer: &Pointer) -> Result<Manifest, Error> {
        let digest = pointer.meta.digest;
        if let Some(cache) = self.cache() {
            if cache.contains(&digest) {
                return Ok(cache.read_manifest(&digest)??);
            }
        }
        let remote = self.remote()?;
        // A manifest's size is not in its pointer: read it whole, its digest checked.
        let mut bytes = Vec::new();
        VerifiedReader::from_remote(remote, self.runtime.clone(), &digest, None)
            .and_then(|mut r| r.read_to_end(&mut bytes).map_err(|e| unwrap_io(e, "manifest")))
            .map_err(|e| self.in_remote(e))?;
        Ok(Manifest::parse(&digest, &bytes)?)
    }

    fn locate_git(&self, path: &RelPath) -> Result<Found, Error> {
        match &self.origin {
            Origin::Source(s) => match s.locate(path)? {
                Located::Git { path, size } => Ok(Found::Git { path, size }),
                _ => Err(self.not_tracked(path)),
            },
            Origin::Local { repo, commit: None } => {
                let abs = path.to_path(&repo.root);
                let tracked = repo
                    .git
                    .index()
                    .ok()
                    .is_some_and(|i| i.get_path(Path::new(path.as_str()), 0).is_some());
                match std::fs::symlink_metadata(&abs) {
                    Ok(m) if m.is_file() && tracked => Ok(Found::Git {
                        path: path.clone(),
                        size: m.len(),
                    }),
                    _ => Err(self.not_tracked(path)),
                }
            }
            Origin::Local {
                repo,
                commit: Some(c),
            } => {
                let size = repo
                    .git
                    .find_commit(*c)
                    .and_then(|c| c.tree())
                    .and_then(|t| t.get_path(Path::new(path.as_str())))
                    .and_then(|e| repo.git.find_blob(e.id()))
                    .map(|b| b.size() as u64)
                    .map_err(|_| self.not_tracked(path))?;
                Ok(Found::Git {
                    path: path.clone(),
                    size,
                })
            }
        }
    }

    /// A git-tracked file's bytes (see [`Found::Git`]).
    pub fn git_bytes(&self, path: &RelPath) -> Result<Vec<u8>, Error> {
        match &self.origin {
            Origin::Source(s) => s.git_blob(path),
            Origin::Local { repo, commit: None } => {
                let abs = path.to_path(&repo.root);
                Ok(std::fs::read(&abs).at("cannot read", &abs)?)
            }
            Origin::Local {
                repo,
                commit: Some(c),
            } => repo
                .git
                .find_commit(*c)
                .and_then(|c| c.tree())
                .and_then(|t| t.get_path(Path::new(path.as_str())))
                .and_then(|e| repo.git.find_blob(e.id()))
                .map(|b| b.content().to_vec())
                .map_err(|_| self.not_tracked(path)),
        }
    }

    /// The URL of a tracked file's object on the remote, or of each file of a tracked
    /// directory (keyed by their path below it). A git-tracked file has none: refused.
    pub fn urls(&self, path: &RelPath) -> Result<Urls, Error> {
        let found = self.locate(path)?;
        let remote = self.remote()?;
        // a format 2 remote keeps objects in packs: they have no URL of their own
        if self.runtime.block_on(remote.format())? != &crate::remote::packed::Format::V1 {
            return Err(self.in_remote(
                crate::remote::RemoteError::NoObjectUrl {
                    remote: remote.display_name().to_string(),
                }
                .into(),
            ));
        }
        match found {
            Found::File { digest, .. } => Ok(Urls::File(remote.object_url(&digest))),
            Found::Dir { files, .. } => Ok(Urls::Dir(
                files
                    .into_iter()
                    .map(|(p, d, _)| (p, remote.object_url(&d)))
                    .collect(),
            )),
            Found::Git { .. } => Err(self.not_tracked(path)),
        }
    }

    /// The entries directly under `dir` (the root when None), or every file below it when
    /// `recursive`: the pointers' data and the files git tracks (pointer files too); inside a tracked
    /// directory, its manifest's entries. Sorted by path. The entries are `mlv ls --json`'s
    /// (a directory git tracks has no size), for the local repository's work tree or a rev.
    pub fn ls(&self, dir: Option<&RelPath>, recursive: bool) -> Result<Vec<LsEntry>, Error> {
        if let Some(d) = dir {
            match self.locate(d) {
                Ok(Found::File { path, digest, size }) => {
                    return Ok(vec![LsEntry {
                        path: path.to_string(),
                        kind: EntryType::File,
                        size: Some(size),
                        files: None,
                        digest: Some(digest),
                        tracked: Tracker::Mlv,
                    }])
                }
                Ok(Found::Git { path, size }) => {
                    return Ok(vec![LsEntry {
                        path: path.to_string(),
                        kind: EntryType::File,
                        size: Some(size),
                        files: None,
                        digest: None,
                        tracked: Tracker::Git,
                    }])
                }
                Ok(Found::Dir { path, files }) => return Ok(ls_manifest(&path, &files, recursive)),
                Err(_) => {} // a git directory, or nothing: listed below
            }
        }
        let mut out = Vec::new();
        let mut seen_dirs = std::collections::BTreeSet::new();
        let mut push_dirs = |rel: &str, out: &mut Vec<LsEntry>| {
            // the first path component below `dir` names a sub-directory to list (not recursive)
            if let Some((first, _)) = rel.split_once('/') {
                let full = join(dir, first);
                if seen_dirs.insert(full.clone()) {
                    out.push(LsEntry {
                        path: full,
                        kind: EntryType::Dir,
                        size: None,
                        files: None,
                        digest: None,
                        tracked: Tracker::Git,
                    });
                }
                return true;
            }
            false
        };
        for p in &self.pointers {
            let rel = match dir {
                None => p.data.as_str(),
                Some(d) => match p.data.strip_prefix(d) {
                    Some(r) if !r.is_empty() => r,
                    _ => continue,
                },
            };
            if !recursive && push_dirs(rel, &mut out) {
                continue;
            }
            let is_dir = p.meta.kind == Kind::Dir;
            if recursive && is_dir {
                let manifest = self.dir_manifest(p)?;
                let files: Vec<_> = manifest
                    .entries
                    .iter()
                    .filter_map(|e| match e.node {
                        Node::File { digest, size, .. } => Some((e.path.clone(), digest, size)),
                        _ => None,
                    })
                    .collect();
                out.extend(ls_manifest(&p.data, &files, true));
                continue;
            }
            out.push(LsEntry {
                path: p.data.to_string(),
                kind: if is_dir { EntryType::Dir } else { EntryType::File },
                size: Some(p.meta.size),
                files: p.meta.files,
                digest: Some(p.meta.digest),
                tracked: Tracker::Mlv,
            });
        }
        for (path, size) in self.git_files()? {
            let rel = match dir {
                None => path.as_str(),
                Some(d) => match path.strip_prefix(d) {
                    Some(r) if !r.is_empty() => r,
                    _ => continue,
                },
            };
            // pointer files are listed like any file git tracks (as `mlv ls URL` does); mlv's
            // own directory is not
            if path.as_str().starts_with(".mlv/") {
                continue;
            }
            if !recursive && push_dirs(rel, &mut out) {
                continue;
            }
            out.push(LsEntry {
                path: path.to_string(),
                kind: EntryType::File,
                size: Some(size),
                files: None,
                digest: None,
                tracked: Tracker::Git,
            });
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out.dedup_by(|b, a| a.path == b.path && a.kind == EntryType::Dir && b.kind == EntryType::Dir);
        if out.is_empty() {
            if let Some(d) = dir {
                return Err(self.not_tracked(d));
            }
        }
        Ok(out)
    }

    /// Every file git tracks at the view's revision (the index for the work tree), with sizes.
    fn git_files(&self) -> Result<Vec<(RelPath, u64)>, Error> {
        let git = match &self.origin {
            Origin::Local { repo, .. } => &repo.git,
            Origin::Source(s) => s.git(),
        };
        let tree = match &self.origin {
            Origin::Local { repo, commit: None } => {
                let index = repo
                    .git
                    .index()
                    .map_err(crate::repo::git_err("reading the index"))?;
                let mut out = Vec::new();
                for e in index.iter() {
                    let Ok(p) = std::str::from_utf8(&e.path) else {
                        continue;
                    };
                    let Ok(rel) = RelPath::new(p) else { continue };
                    out.push((rel, u64::from(e.file_size)));
                }
                return Ok(out);
            }
            Origin::Local { commit: Some(c), .. } => git
                .find_commit(*c)
                .and_then(|c| c.tree())
                .map_err(crate::repo::git_err("reading a tree"))?,
            Origin::Source(s) => git
                .find_tree(s.tree)
                .map_err(crate::repo::git_err("reading a tree"))?,
        };
        let mut found = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |base, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob)
                && entry.filemode() != i32::from(git2::FileMode::Link)
            {
                if let Ok(name) = entry.name() {
                    found.push((format!("{base}{name}"), entry.id()));
                }
            }
            git2::TreeWalkResult::Ok
        })
        .map_err(crate::repo::git_err("reading a tree"))?;
        let mut out = Vec::new();
        for (p, id) in found {
            let Ok(rel) = RelPath::new(&p) else { continue };
            let size = git
                .find_blob(id)
                .map_err(crate::repo::git_err("reading a blob"))?
                .size() as u64;
            out.push((rel, size));
        }
        Ok(out)
    }
}

fn join(dir: Option<&RelPath>, tail: &str) -> String {
    match dir {
        None => tail.to_string(),
        Some(d) => format!("{d}/{tail}"),
    }
}

/// The listing of a tracked directory (or a part of one) at `base` from its files.
fn ls_manifest(base: &RelPath, files: &[(String, Digest, u64)], recursive: bool) -> Vec<LsEntry> {
    let mut dirs: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut out = Vec::new();
    for (p, digest, size) in files {
        match p.split_once('/') {
            Some((first, _)) if !recursive => {
                let d = dirs.entry(first.to_string()).or_default();
                d.0 += size;
                d.1 += 1;
            }
            _ => out.push(LsEntry {
                path: format!("{base}/{p}"),
                kind: EntryType::File,
                size: Some(*size),
                files: None,
                digest: Some(*digest),
                tracked: Tracker::Mlv,
            }),
        }
    }
    for (d, (size, count)) in dirs {
        out.push(LsEntry {
            path: format!("{base}/{d}"),
            kind: EntryType::Dir,
            size: Some(size),
            files: Some(count),
            digest: None,
            tracked: Tracker::Mlv,
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Object URLs: one for a file, one per file for a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Urls {
    /// A file's.
    File(String),
    /// A directory's files', by path below it.
    Dir(BTreeMap<String, String>),
}

/// The mlv error inside an `io::Error` from [`VerifiedReader`]'s `Read`, or an I/O error.
pub fn unwrap_io(e: std::io::Error, what: &str) -> Error {
    if e.get_ref().is_some_and(|i| i.is::<Error>()) {
        return *e
            .into_inner()
            .expect("checked")
            .downcast::<Error>()
            .expect("checked");
    }
    crate::fs::IoError::new("cannot read", std::path::PathBuf::from(what), e).into()
}
