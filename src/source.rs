//! Another repository's data: a cached clone of it, a commit of it (its pointers, its committed
//! configuration, its default remote), and what a path is at that commit. The verbs built on it
//! are `ops::registry` (`mlv ls`, `mlv get`) and `import`/`update`.
//!
//! The clone cache: `<cache_root>/<key>/` where `key` is a hash of the source (for a local
//! repository its absolute, canonical path, so `../reg` from two directories never share an
//! entry; otherwise the URL as given). It holds `url` (the URL, for `doctor` and debugging),
//! `lock` (taken exclusive while cloning or fetching, so concurrent mlv processes never fetch
//! into one clone at once; readers need no lock, git objects being immutable and refs replaced
//! atomically) and `repo.git`, a bare clone.
//!
//! Transports:
//! - A local repository (a path, bare or not, or `file://`): libgit2's local transport, which
//!   cannot fetch shallowly ("shallow fetch is not supported by the local transport"), so every
//!   branch and tag is fetched in full; locally that costs about a copy of the pack.
//! - Anything else (https, ssh, git): this build's libgit2 has no https or ssh support, so the
//!   `git` executable fetches, with `--depth 1` and the user's own credential helpers and ssh
//!   agent (`GIT_TERMINAL_PROMPT=0`: it never waits on a prompt). Only the requested revision is
//!   fetched, so a revision such as `HEAD~1` needs a local source.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::{self, Config};
use crate::error::{Error, ErrorKind};
use crate::fs::{IoContext, IoError};
use crate::lock::{LockError, LockMode, LockRequest};
use crate::pointer::Pointer;
use crate::relpath::RelPath;
use crate::remote::{configured, redact, Remote};

/// The file naming the source, in a clone's cache entry.
pub const URL_FILE: &str = "url";
/// The bare clone, in a clone's cache entry.
pub const CLONE_DIR: &str = "repo.git";
/// The ref the source's HEAD is fetched to.
const HEAD_REF: &str = "refs/mlv/HEAD";
/// The ref a shallow fetch of a named revision lands in.
const REV_REF: &str = "refs/mlv/rev";
/// The committed configuration inside a source.
const CONFIG_PATH: &str = ".mlv/config.toml";

/// Errors reaching another repository.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Cloning or fetching failed.
    #[error("{url}: cannot fetch the repository: {reason}")]
    Fetch {
        /// The source, redacted.
        url: String,
        /// Why (libgit2's or git's message, scrubbed of credentials).
        reason: String,
    },
    /// A revision the source does not have.
    #[error("{url}: no revision `{rev}`")]
    UnknownRev {
        /// The source, redacted.
        url: String,
        /// The revision as given.
        rev: String,
    },
    /// A path neither mlv nor git tracks at that commit.
    #[error("{path}: not tracked by mlv or git in {url} at {rev}")]
    NotInSource {
        /// The path.
        path: String,
        /// The source, redacted.
        url: String,
        /// The revision as given (`HEAD` when none).
        rev: String,
    },
    /// The source configures no default remote.
    #[error("{url}: no default remote is configured at {rev}, so its data cannot be downloaded")]
    NoRemote {
        /// The source, redacted.
        url: String,
        /// The revision as given (`HEAD` when none).
        rev: String,
    },
    /// The source's remote cannot be opened or used.
    #[error("{url}: its remote `{remote}` ({remote_url}) failed")]
    Remote {
        /// The source, redacted.
        url: String,
        /// The remote's name.
        remote: String,
        /// The remote's URL, redacted.
        remote_url: String,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// `get` into a path that holds other content, without `--force`.
    #[error("{out}: already exists and holds other data")]
    OutputExists {
        /// The output path as displayed.
        out: String,
    },
    /// A source that is not on this machine names its remote by a relative local path, which
    /// only means something beside that repository.
    #[error(
        "{url}: its remote `{remote}` is the relative path {remote_url}, which cannot be reached from here"
    )]
    RelativeRemote {
        /// The source, redacted.
        url: String,
        /// The remote's name.
        remote: String,
        /// The remote's URL as configured, redacted.
        remote_url: String,
    },
    /// A git operation on the clone failed.
    #[error("{url}: git: {action}")]
    Git {
        /// The source, redacted.
        url: String,
        /// What was being done.
        action: &'static str,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// A file-system operation on the clone cache.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The clone's lock.
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl SourceError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SourceError::Fetch { .. } | SourceError::NoRemote { .. } | SourceError::RelativeRemote { .. } => {
                ErrorKind::Environment
            }
            SourceError::UnknownRev { .. }
            | SourceError::NotInSource { .. }
            | SourceError::OutputExists { .. } => ErrorKind::Refused,
            SourceError::Remote { source, .. } => source.kind(),
            SourceError::Git { .. } => ErrorKind::Failure,
            SourceError::Io(e) => e.kind(),
            SourceError::Lock(e) => e.kind(),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            SourceError::Fetch { .. } => {
                Some("check the URL and that you can `git clone` it from here".into())
            }
            SourceError::UnknownRev { .. } => {
                Some("give a branch, tag or commit the repository has (`git ls-remote URL` lists them)".into())
            }
            SourceError::NotInSource { .. } => Some("`mlv ls URL` lists what the repository tracks".into()),
            SourceError::NoRemote { .. } => Some(
                "the repository must set a default remote (`mlv remote default NAME`) and commit .mlv/config.toml"
                    .into(),
            ),
            SourceError::Remote { source, .. } => source.hint(),
            SourceError::OutputExists { .. } => {
                Some("pass --force to replace it, or -o OUT to write elsewhere".into())
            }
            SourceError::RelativeRemote { .. } => Some(
                "clone that repository next to its remote, or have it use a URL (s3://, gs://, az://) or an absolute path"
                    .into(),
            ),
            SourceError::Git { .. } => None,
            SourceError::Io(e) => e.hint(),
            SourceError::Lock(e) => e.hint(),
        }
    }
}

/// Where clones go outside an mlv repository: `$XDG_CACHE_HOME/mlv/sources`, else
/// `~/.cache/mlv/sources`, else (no home) `mlv-sources` in the system's temporary directory.
pub fn default_cache_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|s| !s.is_empty()) {
        let x = PathBuf::from(x);
        if x.is_absolute() {
            return x.join("mlv/sources");
        }
    }
    match std::env::var_os("HOME").filter(|s| !s.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache/mlv/sources"),
        None => std::env::temp_dir().join("mlv-sources"),
    }
}

/// Where clones go inside an mlv repository whose `.mlv/` is `mlv_dir`.
pub fn repo_cache_root(mlv_dir: &Path) -> PathBuf {
    mlv_dir.join("sources")
}

/// How a source is reached.
#[derive(Debug, Clone)]
enum Transport {
    /// A repository on this machine: its git directory's path (absolute, canonical).
    Local(PathBuf),
    /// Anything else, through the `git` executable.
    Network,
}

/// A cached clone of another repository (bare; shallow where the transport allows, see the
/// module documentation), under a cache root.
pub struct SourceRepo {
    url: String,
    shown: String,
    transport: Transport,
    entry: PathBuf,
    clone_dir: PathBuf,
    /// Where a relative local remote URL in the source's config resolves: the work tree of a
    /// local non-bare repository, the directory of a bare one, the clone for other sources.
    base: PathBuf,
    /// Fetched by this process already (a fresh clone): no second fetch for the source's HEAD.
    fetched: AtomicBool,
}

impl std::fmt::Debug for SourceRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRepo")
            .field("url", &self.shown)
            .field("clone_dir", &self.clone_dir)
            .finish()
    }
}

/// Opens the source at `url`, cloning it into `cache_root` unless a clone is there already.
pub fn open(url: &str, cache_root: &Path) -> Result<SourceRepo, Error> {
    let shown = redact::redact_url(url);
    let transport = transport_of(url).map_err(|reason| SourceError::Fetch {
        url: shown.clone(),
        reason,
    })?;
    let (key_text, base) = match &transport {
        Transport::Local(git_dir) => {
            let base = match git2::Repository::open(git_dir) {
                Ok(r) => r
                    .workdir()
                    .map_or_else(|| r.path().to_path_buf(), Path::to_path_buf),
                Err(e) => {
                    return Err(SourceError::Fetch {
                        url: shown,
                        reason: one_line(e.message()),
                    }
                    .into())
                }
            };
            (git_dir.to_string_lossy().into_owned(), base)
        }
        Transport::Network => (url.to_string(), PathBuf::new()),
    };
    let key = crate::hash::Digest::of_bytes(key_text.as_bytes()).to_string();
    let entry = cache_root.join(&key[..32]);
    let clone_dir = entry.join(CLONE_DIR);
    let base = if base.as_os_str().is_empty() {
        clone_dir.clone()
    } else {
        base
    };
    let src = SourceRepo {
        url: url.to_string(),
        shown,
        transport,
        entry,
        clone_dir,
        base,
        fetched: AtomicBool::new(false),
    };
    if !src.clone_dir.join("HEAD").is_file() {
        src.clone_fresh(cache_root)?;
    }
    Ok(src)
}

/// Whether `url` names a repository on this machine, and where its git directory is.
fn transport_of(url: &str) -> Result<Transport, String> {
    let path = if let Some(rest) = url.strip_prefix("file://") {
        let u = url::Url::parse(url).map_err(|e| format!("not a valid file:// URL: {e}"))?;
        let p = u
            .to_file_path()
            .map_err(|()| format!("not a local path: {rest}"))?;
        Some(p)
    } else if url.contains("://") || scp_like(url) {
        None
    } else {
        Some(PathBuf::from(url))
    };
    match path {
        Some(p) => {
            let abs = std::fs::canonicalize(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok(Transport::Local(abs))
        }
        None => Ok(Transport::Network),
    }
}

/// Whether `url` is a path on this machine (not `file://`, which is a URL, nor `host:path`).
pub fn is_local_path(url: &str) -> bool {
    !url.contains("://") && !scp_like(url)
}

/// `user@host:path` or `host:path` (git's scp-like ssh syntax): a `:` before any `/`.
fn scp_like(url: &str) -> bool {
    match (url.find(':'), url.find('/')) {
        (Some(c), Some(s)) => c < s && c > 1,
        (Some(c), None) => c > 1,
        _ => false,
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl SourceRepo {
    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL with credentials hidden, for messages.
    pub fn shown_url(&self) -> &str {
        &self.shown
    }

    /// The bare clone's directory.
    pub fn clone_dir(&self) -> &Path {
        &self.clone_dir
    }

    /// A cache beside the clone, for the directory manifests `ls` reads outside an mlv
    /// repository (kept: manifests are small, and verified whenever read).
    pub fn manifest_cache(&self) -> crate::cache::Cache {
        crate::cache::Cache::new(self.entry.join("cache"), self.entry.join("tmp"))
    }

    /// Whether the source is a repository on this machine.
    pub fn is_local(&self) -> bool {
        matches!(self.transport, Transport::Local(_))
    }

    fn lock(&self) -> Result<crate::lock::RepoLock, SourceError> {
        let req = LockRequest {
            mode: LockMode::Exclusive,
            command: "mlv (fetching a source repository)".into(),
            timeout: crate::lock::DEFAULT_TIMEOUT,
        };
        Ok(crate::lock::acquire(&self.entry, &req, &mut |_| {})?)
    }

    fn git_err(&self, action: &'static str) -> impl FnOnce(git2::Error) -> SourceError + '_ {
        move |source| SourceError::Git {
            url: self.shown.clone(),
            action,
            source,
        }
    }

    fn fetch_err(&self, reason: &str) -> SourceError {
        SourceError::Fetch {
            url: self.shown.clone(),
            reason: one_line(&redact::scrub(reason, &[])),
        }
    }

    /// Makes the clone: into a scratch directory, fetched, then renamed into place under the
    /// lock, so a failed clone leaves nothing a later run would take for a clone.
    fn clone_fresh(&self, cache_root: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(&self.entry).at("cannot create directory", &self.entry)?;
        // the cache root may be inside a work tree (`.mlv/sources`): keep it out of git
        let ignore = cache_root.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n").at("cannot write", &ignore)?;
        }
        let _lock = self.lock()?;
        if self.clone_dir.join("HEAD").is_file() {
            return Ok(()); // another process cloned it while we waited
        }
        let url_file = self.entry.join(URL_FILE);
        std::fs::write(&url_file, format!("{}\n", self.shown)).at("cannot write", &url_file)?;
        let scratch = self.entry.join("tmp");
        // what a clone killed midway left (no other process clones here: we hold the lock)
        if let Ok(rd) = std::fs::read_dir(&scratch) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("clone-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        std::fs::create_dir_all(&scratch).at("cannot create directory", &scratch)?;
        let tmp = tempfile::Builder::new()
            .prefix("clone-")
            .tempdir_in(&scratch)
            .at("cannot create directory", &scratch)?;
        let git = git2::Repository::init_bare(tmp.path()).map_err(self.git_err("creating the clone"))?;
        self.fetch_into(&git, tmp.path(), None)?;
        drop(git);
        let kept = tmp.keep();
        std::fs::rename(&kept, &self.clone_dir).at("cannot rename", &kept)?;
        self.fetched.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Fetches: a local source in full (every branch, every tag, its HEAD); another, `rev` (or
    /// its HEAD) at depth 1. Returns the commit a shallow fetch of `rev` brought, if any.
    fn fetch_into(
        &self,
        git: &git2::Repository,
        dir: &Path,
        rev: Option<&str>,
    ) -> Result<Option<git2::Oid>, Error> {
        match &self.transport {
            Transport::Local(path) => {
                let mut remote = git
                    .remote_anonymous(&path.to_string_lossy())
                    .map_err(self.git_err("reading the source"))?;
                let mut fo = git2::FetchOptions::new();
                fo.download_tags(git2::AutotagOption::None);
                let specs = [
                    "+refs/heads/*:refs/heads/*",
                    "+refs/tags/*:refs/tags/*",
                    &format!("+HEAD:{HEAD_REF}"),
                ];
                remote
                    .fetch(&specs, Some(&mut fo), None)
                    .map_err(|e| self.fetch_err(e.message()))?;
                if let Ok(head) = git.refname_to_id(HEAD_REF) {
                    git.set_head_detached(head)
                        .map_err(self.git_err("setting the clone's HEAD"))?;
                }
                Ok(None)
            }
            Transport::Network => {
                let (src, dst) = match rev {
                    None => ("HEAD".to_string(), HEAD_REF),
                    Some(r) => (r.to_string(), REV_REF),
                };
                let out = Command::new("git")
                    .arg("-C")
                    .arg(dir)
                    .args(["fetch", "--quiet", "--depth", "1", "--no-tags", "--"])
                    .arg(&self.url)
                    .arg(format!("+{src}:{dst}"))
                    .env("GIT_TERMINAL_PROMPT", "0")
                    // a URL may come from a committed pointer (`update`): only the network
                    // transports, never `ext::` (runs a command) or another helper
                    .env("GIT_ALLOW_PROTOCOL", "https:http:ssh:git")
                    .output()
                    .map_err(|e| self.fetch_err(&format!("cannot run git: {e}")))?;
                if !out.status.success() {
                    let text = String::from_utf8_lossy(&out.stderr);
                    if rev.is_some() && text.contains("couldn't find remote ref") {
                        return Err(SourceError::UnknownRev {
                            url: self.shown.clone(),
                            rev: src,
                        }
                        .into());
                    }
                    return Err(self.fetch_err(text.trim()).into());
                }
                let oid = git
                    .refname_to_id(dst)
                    .map_err(self.git_err("reading a fetched ref"))?;
                if rev.is_none() {
                    git.set_head_detached(oid)
                        .map_err(self.git_err("setting the clone's HEAD"))?;
                }
                Ok(Some(oid))
            }
        }
    }

    fn open_clone(&self) -> Result<git2::Repository, SourceError> {
        git2::Repository::open_bare(&self.clone_dir).map_err(self.git_err("opening the clone"))
    }

    /// The commit for `rev` (None: the source's HEAD), fetching only when the clone may lack
    /// it: a full 40-hex commit already in the clone needs no network; a branch, a tag or the
    /// HEAD are fetched again (once per process) so they are the source's current ones.
    pub fn snapshot(&self, rev: Option<&str>) -> Result<Snapshot, Error> {
        let git = self.open_clone()?;
        let shown_rev = rev.unwrap_or("HEAD").to_string();
        let unknown = || SourceError::UnknownRev {
            url: self.shown.clone(),
            rev: shown_rev.clone(),
        };
        let full_hex = rev
            .filter(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|r| git2::Oid::from_str(r).ok());
        let have = |oid: git2::Oid| git.find_commit(oid).is_ok();
        let commit = match full_hex {
            Some(oid) if have(oid) => oid,
            _ => {
                let fetched = if self.fetched.load(Ordering::Relaxed) && (rev.is_none() || self.is_local()) {
                    None
                } else {
                    let _lock = self.lock()?;
                    let got = self.fetch_into(&git, &self.clone_dir, rev)?;
                    if self.is_local() {
                        self.fetched.store(true, Ordering::Relaxed);
                    }
                    got
                };
                match (fetched, rev) {
                    (Some(oid), _) => oid,
                    (None, None) => git.refname_to_id(HEAD_REF).map_err(|_| unknown())?,
                    (None, Some(r)) => git
                        .revparse_single(r)
                        .and_then(|o| o.peel_to_commit())
                        .map(|c| c.id())
                        .map_err(|_| unknown())?,
                }
            }
        };
        let c = git.find_commit(commit).map_err(|_| unknown())?;
        let tree = c.tree().map_err(self.git_err("reading a tree"))?;
        let tree_id = tree.id();
        let committed = match tree.get_path(Path::new(CONFIG_PATH)) {
            Ok(e) if e.kind() == Some(git2::ObjectType::Blob) => {
                let blob = git.find_blob(e.id()).map_err(self.git_err("reading a blob"))?;
                String::from_utf8_lossy(blob.content()).into_owned()
            }
            _ => String::new(),
        };
        let shown_cfg = PathBuf::from(format!("{}@{}:{CONFIG_PATH}", self.shown, shown_rev));
        let config = config::load_committed(&shown_cfg, &committed)?;
        let committed_table = config::parse_table(&shown_cfg, &committed)?;
        let pointers = crate::history::pointers_in_tree(&git, &tree)?;
        drop(tree);
        drop(c);
        Ok(Snapshot {
            url: self.url.clone(),
            rev: rev.map(str::to_string),
            commit,
            config,
            pointers,
            tree: tree_id,
            shown_url: self.shown.clone(),
            base: self.base.clone(),
            local: self.is_local(),
            committed: committed_table,
            git,
        })
    }
}

/// One commit of a source repository.
pub struct Snapshot {
    /// The source's URL as given.
    pub url: String,
    /// The revision as requested (`None`: the source's HEAD).
    pub rev: Option<String>,
    /// The commit it resolved to.
    pub commit: git2::Oid,
    /// The source's committed `.mlv/config.toml` at that commit, with the user config below it
    /// and the environment above it (see [`config::load_committed`]).
    pub config: Config,
    /// Every pointer at that commit, sorted by data path, validated like local ones.
    pub pointers: Vec<Pointer>,
    /// The commit's tree.
    pub tree: git2::Oid,
    /// The URL with credentials hidden, for messages.
    pub shown_url: String,
    base: PathBuf,
    local: bool,
    committed: toml::Table,
    git: git2::Repository,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("url", &self.shown_url)
            .field("rev", &self.rev)
            .field("commit", &self.commit)
            .field("pointers", &self.pointers.len())
            .finish()
    }
}

/// What a path is at a source's commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Tracked by mlv: the pointer, and the part below its data path when the path lies inside
    /// a tracked directory.
    Tracked {
        /// The pointer tracking the path or a directory holding it.
        pointer: Pointer,
        /// The path below the pointer's data path, if inside it.
        inner: Option<RelPath>,
    },
    /// A file git tracks.
    Git {
        /// The path.
        path: RelPath,
        /// Its size in bytes.
        size: u64,
    },
    /// A directory in git's tree (it may hold files and pointers).
    GitDir {
        /// The path.
        path: RelPath,
    },
}

/// An entry of a directory in a source's git tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitEntry {
    /// Its path from the repository root.
    pub path: RelPath,
    /// A directory (a git tree) rather than a file.
    pub dir: bool,
    /// A file's size (0 for directories).
    pub size: u64,
}

impl Snapshot {
    /// The revision as shown in messages: as requested, or `HEAD`.
    pub fn shown_rev(&self) -> &str {
        self.rev.as_deref().unwrap_or("HEAD")
    }

    /// The git repository (the bare clone).
    pub fn git(&self) -> &git2::Repository {
        &self.git
    }

    fn git_err(&self, action: &'static str) -> impl FnOnce(git2::Error) -> SourceError + '_ {
        move |source| SourceError::Git {
            url: self.shown_url.clone(),
            action,
            source,
        }
    }

    fn tree(&self) -> Result<git2::Tree<'_>, SourceError> {
        self.git
            .find_tree(self.tree)
            .map_err(self.git_err("reading a tree"))
    }

    /// What `path` is at that commit: mlv-tracked (the pointer, and the part inside a tracked
    /// directory, if any), a git-tracked file or directory; anything else is an error naming
    /// the path, the repository and the revision.
    pub fn locate(&self, path: &RelPath) -> Result<Located, Error> {
        if let Some(p) = self.pointers.iter().find(|p| path.is_within(&p.data)) {
            let inner = path
                .strip_prefix(&p.data)
                .map(|s| RelPath::new(s).expect("a part of a valid path"));
            return Ok(Located::Tracked {
                pointer: p.clone(),
                inner,
            });
        }
        let tree = self.tree()?;
        if let Ok(entry) = tree.get_path(Path::new(path.as_str())) {
            match entry.kind() {
                Some(git2::ObjectType::Blob) if entry.filemode() != i32::from(git2::FileMode::Link) => {
                    let blob = self
                        .git
                        .find_blob(entry.id())
                        .map_err(self.git_err("reading a blob"))?;
                    return Ok(Located::Git {
                        path: path.clone(),
                        size: blob.size() as u64,
                    });
                }
                Some(git2::ObjectType::Tree) => return Ok(Located::GitDir { path: path.clone() }),
                _ => {}
            }
        }
        Err(SourceError::NotInSource {
            path: path.to_string(),
            url: self.shown_url.clone(),
            rev: self.shown_rev().to_string(),
        }
        .into())
    }

    /// The entries of git's tree directly under `dir` (the root when `None`), sorted by path;
    /// `.mlv` pointer files are listed like any file. Links, submodules and the `.mlv` directory
    /// (mlv's own) are left out.
    pub fn git_entries(&self, dir: Option<&RelPath>) -> Result<Vec<GitEntry>, Error> {
        let root = self.tree()?;
        let sub;
        let tree = match dir {
            None => &root,
            Some(d) => {
                let entry = root
                    .get_path(Path::new(d.as_str()))
                    .map_err(|_| self.not_in_source(d))?;
                sub = self
                    .git
                    .find_tree(entry.id())
                    .map_err(|_| self.not_in_source(d))?;
                &sub
            }
        };
        let mut out = Vec::new();
        for e in tree.iter() {
            let Ok(name) = e.name() else { continue };
            if dir.is_none() && name == crate::repo::MLV_DIR {
                continue;
            }
            let Ok(path) = dir.map_or_else(|| RelPath::new(name), |d| d.join(name)) else {
                continue;
            };
            match e.kind() {
                Some(git2::ObjectType::Tree) => out.push(GitEntry {
                    path,
                    dir: true,
                    size: 0,
                }),
                Some(git2::ObjectType::Blob) if e.filemode() != i32::from(git2::FileMode::Link) => {
                    let size = self
                        .git
                        .find_blob(e.id())
                        .map_err(self.git_err("reading a blob"))?
                        .size() as u64;
                    out.push(GitEntry {
                        path,
                        dir: false,
                        size,
                    });
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    fn not_in_source(&self, path: &RelPath) -> SourceError {
        SourceError::NotInSource {
            path: path.to_string(),
            url: self.shown_url.clone(),
            rev: self.shown_rev().to_string(),
        }
    }

    /// The name of the source's default remote, if it sets one.
    pub fn remote_name(&self) -> Option<&str> {
        self.config.core.remote.as_deref()
    }

    /// The source's default remote, opened (credentials from the environment as for any
    /// remote; a relative local URL resolves against the source's work tree, or a bare
    /// source's directory, as DVC does). No default remote, or one that cannot be opened: an
    /// error naming the repository and the remote (redacted).
    pub fn remote(&self, jobs: Option<usize>) -> Result<Remote, Error> {
        let Some(name) = self.remote_name() else {
            return Err(SourceError::NoRemote {
                url: self.shown_url.clone(),
                rev: self.shown_rev().to_string(),
            }
            .into());
        };
        let raw = self.config.remote.get(name).and_then(|r| r.url.as_deref());
        if let Some(raw) = raw.filter(|u| !self.local && is_local_path(u) && Path::new(u).is_relative()) {
            return Err(SourceError::RelativeRemote {
                url: self.shown_url.clone(),
                remote: name.to_string(),
                remote_url: redact::redact_url(raw),
            }
            .into());
        }
        let spec = configured::spec_of(&self.config, name, &self.base).map_err(|e| self.in_remote(e))?;
        configured::check_committed(&self.committed, name).map_err(|e| self.in_remote(e))?;
        configured::open_spec(&spec, jobs).map_err(|e| self.in_remote(e))
    }

    /// Wraps an error that came from using the source's remote so it names the repository and
    /// the remote (redacted); other errors pass through.
    pub fn in_remote(&self, e: Error) -> Error {
        let remote_error = matches!(e, Error::Remote(_) | Error::Refused(_));
        let Some(name) = self.remote_name().filter(|_| remote_error) else {
            return e;
        };
        let remote_url = configured::spec_of(&self.config, name, &self.base)
            .map(|s| s.redacted_url())
            .unwrap_or_else(|_| {
                self.config
                    .remote
                    .get(name)
                    .and_then(|r| r.url.as_deref())
                    .map_or_else(|| "no URL".into(), redact::redact_url)
            });
        SourceError::Remote {
            url: self.shown_url.clone(),
            remote: name.to_string(),
            remote_url,
            source: Box::new(e),
        }
        .into()
    }

    /// A git-tracked file's bytes at that commit.
    pub fn git_blob(&self, path: &RelPath) -> Result<Vec<u8>, Error> {
        let tree = self.tree()?;
        let entry = tree
            .get_path(Path::new(path.as_str()))
            .map_err(|_| self.not_in_source(path))?;
        if entry.kind() != Some(git2::ObjectType::Blob) {
            return Err(self.not_in_source(path).into());
        }
        let blob = self
            .git
            .find_blob(entry.id())
            .map_err(self.git_err("reading a blob"))?;
        Ok(blob.content().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .current_dir(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    /// A source with a committed config, a pointer to a directory and a git file; two commits
    /// (the first tagged `v1`).
    fn registry(dir: &Path) -> PathBuf {
        let src = dir.join("reg");
        std::fs::create_dir_all(src.join(".mlv")).unwrap();
        run(&src, &["init", "-q", "-b", "main"]);
        std::fs::write(
            src.join(".mlv/config.toml"),
            "[core]\nremote = \"store\"\n[remote.store]\nurl = \"../store\"\n",
        )
        .unwrap();
        std::fs::write(src.join("readme.txt"), "hello\n").unwrap();
        let digest = crate::hash::Digest::of_bytes(b"x");
        std::fs::write(
            src.join("data.mlv"),
            format!(
                "version = 1\npath = \"data\"\ntype = \"dir\"\ndigest = \"{digest}\"\nsize = 3\nfiles = 2\n"
            ),
        )
        .unwrap();
        run(&src, &["add", "-A"]);
        run(&src, &["commit", "-q", "-m", "one"]);
        run(&src, &["tag", "v1"]);
        std::fs::write(src.join("readme.txt"), "hello again\n").unwrap();
        run(&src, &["commit", "-q", "-am", "two"]);
        src
    }

    #[test]
    fn clones_once_resolves_revs_and_locates() {
        let tmp = tempfile::tempdir().unwrap();
        let src = registry(tmp.path());
        let cache = tmp.path().join("cache");
        let repo = open(src.to_str().unwrap(), &cache).unwrap();
        assert!(repo.clone_dir().join("HEAD").is_file());
        assert!(cache.join(".gitignore").is_file());
        let head = repo.snapshot(None).unwrap();
        assert_eq!(head.pointers.len(), 1);
        assert_eq!(head.remote_name(), Some("store"));
        let readme = RelPath::new("readme.txt").unwrap();
        assert_eq!(head.git_blob(&readme).unwrap(), b"hello again\n");
        let v1 = repo.snapshot(Some("v1")).unwrap();
        assert_eq!(v1.git_blob(&readme).unwrap(), b"hello\n");
        // a full commit id already cloned: found without fetching
        let again = open(src.to_str().unwrap(), &cache).unwrap();
        let by_id = again.snapshot(Some(&v1.commit.to_string())).unwrap();
        assert_eq!(by_id.commit, v1.commit);
        match head.locate(&RelPath::new("data/a/b").unwrap()).unwrap() {
            Located::Tracked { pointer, inner } => {
                assert_eq!(pointer.data.as_str(), "data");
                assert_eq!(inner.unwrap().as_str(), "a/b");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            head.locate(&readme).unwrap(),
            Located::Git {
                path: readme.clone(),
                size: 12
            }
        );
        let err = head.locate(&RelPath::new("nope").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("nope: not tracked by mlv or git in"),
            "{err}"
        );
        assert!(err.to_string().contains("at HEAD"), "{err}");
        let err = repo.snapshot(Some("no-such-rev")).unwrap_err();
        assert!(err.to_string().contains("no revision `no-such-rev`"), "{err}");
        let entries = head.git_entries(None).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, ["data.mlv", "readme.txt"]);
        // a relative local remote resolves against the source's work tree
        let remote = head.remote(None).unwrap();
        assert!(
            remote.display_name().contains("store"),
            "{}",
            remote.display_name()
        );
    }

    #[test]
    fn bare_and_file_url_sources() {
        let tmp = tempfile::tempdir().unwrap();
        let src = registry(tmp.path());
        run(tmp.path(), &["clone", "-q", "--bare", "reg", "reg.git"]);
        let cache = tmp.path().join("cache");
        let bare = open(tmp.path().join("reg.git").to_str().unwrap(), &cache).unwrap();
        assert_eq!(bare.snapshot(None).unwrap().pointers.len(), 1);
        let url = format!("file://{}", src.display());
        let by_url = open(&url, &cache).unwrap();
        // the same repository by path and by file:// URL shares one clone
        let by_path = open(src.to_str().unwrap(), &cache).unwrap();
        assert_eq!(by_url.clone_dir(), by_path.clone_dir());
        assert_ne!(bare.clone_dir(), by_path.clone_dir());
        assert!(std::fs::read_to_string(by_url.clone_dir().parent().unwrap().join(URL_FILE)).is_ok());
    }

    #[test]
    fn a_missing_source_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = open(
            tmp.path().join("nothing").to_str().unwrap(),
            &tmp.path().join("c"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("cannot fetch the repository"), "{err}");
        assert!(matches!(err.kind(), ErrorKind::Environment));
    }

    #[test]
    fn scp_like_urls() {
        assert!(scp_like("git@github.com:org/repo.git"));
        assert!(scp_like("host:repo"));
        assert!(!scp_like("./a:b"));
        assert!(!scp_like("/abs/path"));
        assert!(!scp_like("C:"));
    }
}
