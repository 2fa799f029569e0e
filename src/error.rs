//! The library's top-level error: every module's error, plus the refusals of the verbs.

use std::path::PathBuf;

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::fs::IoError;
use crate::hash::Digest;
use crate::lineage::LineageError;
use crate::lock::LockError;
use crate::manifest::ManifestError;
use crate::pointer::PointerError;
use crate::remote::RemoteError;
use crate::repo::RepoError;
use crate::workspace::WorkspaceError;

pub(crate) use crate::kind::{io_kind_hint, is_read, CACHE_DIR_HINT};
pub use crate::kind::{ErrorKind, GitError};

/// Anything an mlv operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Finding or opening the repository.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Pointer files.
    #[error(transparent)]
    Pointer(#[from] PointerError),
    /// The object cache.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A directory manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Reading the workspace.
    #[error(transparent)]
    Workspace(#[from] WorkspaceError),
    /// A file-system operation.
    #[error(transparent)]
    Io(#[from] IoError),
    /// A remote.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// A verb refused to act; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Lineage and history.
    #[error(transparent)]
    Lineage(#[from] LineageError),
    /// The repository lock.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// Another repository (`mlv ls`, `get`, `import`).
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    /// The pipeline file (`mlv.toml`).
    #[error(transparent)]
    Pipeline(#[from] crate::pipeline::PipelineError),
    /// The model registry.
    #[error(transparent)]
    Model(#[from] crate::model::ModelError),
}

/// Why a verb refused to act. Nothing has been changed when one of these is returned.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path as displayed.
        path: String,
    },
    /// The path is tracked by git itself.
    #[error("{path}: already tracked by git")]
    TrackedByGit {
        /// The path as displayed.
        path: String,
    },
    /// The path overlaps data tracked by another pointer.
    #[error("{path}: overlaps {other}, which is tracked by {pointer}")]
    Overlaps {
        /// The path as displayed.
        path: String,
        /// The other tracked data.
        other: String,
        /// The other pointer file.
        pointer: String,
    },
    /// Two arguments of one command overlap.
    #[error("{path}: given twice (overlaps {other})")]
    Duplicate {
        /// One argument.
        path: String,
        /// The argument it overlaps.
        other: String,
    },
    /// A symbolic link given directly.
    #[error("{path}: is a symbolic link; mlv tracks files and directories")]
    SymlinkTarget {
        /// The path as displayed.
        path: String,
    },
    /// A symbolic link on the way to data mlv would write.
    #[error("{path}: {link} is a symbolic link; mlv does not write through links")]
    LinkInPath {
        /// The data path as displayed.
        path: String,
        /// The link (the data path itself or one of its parents), as displayed.
        link: String,
    },
    /// A manifest asks for a symbolic link that leads outside the repository.
    #[error(
        "{path}: the manifest asks for a symbolic link to {target:?}, which leads outside the repository"
    )]
    LinkEscapes {
        /// The link's path as displayed.
        path: String,
        /// Its target text.
        target: String,
    },
    /// Not a regular file or directory.
    #[error("{path}: not a regular file or directory")]
    Special {
        /// The path as displayed.
        path: String,
    },
    /// A file was asked for (to open or read it) and the path is a tracked directory.
    #[error("{path}: is a tracked directory, not a file")]
    IsADirectory {
        /// The path as displayed.
        path: String,
    },
    /// No pointer tracks the path.
    #[error("{path}: not tracked by mlv")]
    NotTracked {
        /// The path as displayed.
        path: String,
    },
    /// `mlv update` of data that was not imported.
    #[error("{path}: not imported (it was added here), so there is nothing to update it from")]
    NotImported {
        /// The path as displayed.
        path: String,
    },
    /// `mlv import` into a path that exists and is not that import.
    #[error("{path}: already exists")]
    ImportTargetExists {
        /// The path as displayed.
        path: String,
    },
    /// A path of another repository that `mlv import` cannot bring here.
    #[error("{path}: cannot be imported from {url}: {reason}")]
    NotImportable {
        /// The path in the source.
        path: String,
        /// The source, redacted.
        url: String,
        /// Why.
        reason: &'static str,
    },
    /// Checkout would destroy workspace content that exists nowhere else.
    #[error("{count} workspace file(s) hold data that is not in the cache and would be overwritten or deleted: {}", .examples.join(", "))]
    WouldLoseData {
        /// How many files.
        count: usize,
        /// The first few, as displayed.
        examples: Vec<String>,
    },
    /// An object needed is not in the cache.
    #[error("{path}: object {digest} is not in the cache")]
    NotInCache {
        /// The data path as displayed.
        path: String,
        /// The missing object.
        digest: Digest,
    },
    /// A pointer or a directory manifest records a size that is not its content's: it was
    /// edited, or written by an mlv that recorded a file growing while it was read.
    #[error("{path}: {what} records {recorded} bytes, but its content {digest} has {actual}")]
    WrongSize {
        /// The data path as displayed.
        path: String,
        /// `the pointer` or `the manifest`.
        what: &'static str,
        /// The size recorded.
        recorded: u64,
        /// The size of the content (the object's, or the workspace file's that hashes to it).
        actual: u64,
        /// The content's digest.
        digest: Digest,
    },
    /// Some targets failed; each was reported.
    #[error("{failed} of {total} target(s) failed")]
    Partial {
        /// Failed count.
        failed: usize,
        /// Total count.
        total: usize,
    },
    /// A remote name that is not configured.
    #[error("no remote named `{name}`")]
    UnknownRemote {
        /// The name.
        name: String,
    },
    /// DVC's `.dvc/config` (or `config.local`) cannot be read as DVC reads it.
    #[error("{at}: {reason}")]
    MalformedDvcConfig {
        /// `FILE:LINE`, as displayed.
        at: String,
        /// What is wrong with the line.
        reason: String,
    },
    /// A remote name that is taken.
    #[error("a remote named `{name}` already exists")]
    RemoteExists {
        /// The name.
        name: String,
    },
    /// No remote given and no default set.
    #[error("no remote given and no default remote is set")]
    NoDefaultRemote {
        /// The configured remotes (none, or some without a default).
        remotes: Vec<String>,
    },
    /// A secret bound for the committed config.
    #[error("refusing to write a secret to the committed .mlv/config.toml: {what}")]
    SecretInCommittedConfig {
        /// What the secret is.
        what: String,
    },
    /// A remote whose committed settings carry a credential.
    #[error("the committed .mlv/config.toml holds a secret in `remote.{remote}.{key}`; refusing to use remote `{remote}`")]
    SecretInCommittedFile {
        /// The remote.
        remote: String,
        /// The option (or `url`).
        key: String,
    },
    /// `mlv config` of a key that is not a setting.
    #[error("{key}: not a configuration key")]
    UnknownConfigKey {
        /// The key as given.
        key: String,
        /// The valid keys (`remote.NAME.KEY` for remotes).
        valid: String,
    },
    /// `mlv config KEY VALUE` with a value the config loader would reject; nothing is written.
    #[error("{key}: {reason}")]
    BadConfigValue {
        /// The key.
        key: String,
        /// What is wrong with the value.
        reason: String,
    },
    /// `mlv config --unset KEY` of a key the file does not set.
    #[error("{key}: not set in {file}")]
    ConfigKeyNotSet {
        /// The key.
        key: String,
        /// The config file, relative to the work tree.
        file: String,
    },
    /// `mlv install-hooks` would chain a foreign hook, but a saved hook is in the way.
    #[error("{hook}: not written by mlv, and {saved} exists; refusing to replace either")]
    HookInTheWay {
        /// The hook.
        hook: String,
        /// The saved hook mlv would chain.
        saved: String,
    },
    /// `mlv remote modify NAME url` without a value: a remote cannot lose its URL.
    #[error("url: a remote needs a URL")]
    UrlRequired,
    /// A configured remote without a `url`.
    #[error("remote.{remote}.url: missing")]
    MissingUrl {
        /// The remote.
        remote: String,
    },
    /// A remote name with characters other than letters, digits, `-`, `_` and `.`.
    #[error("name: {name:?} is not a valid remote name (letters, digits, `-`, `_`, `.`)")]
    BadRemoteName {
        /// The name as given.
        name: String,
    },
    /// `push` of data whose objects are not all in the cache.
    #[error("{count} path(s) have objects missing from the cache, so they cannot be pushed: {}", .examples.join(", "))]
    IncompleteCache {
        /// How many paths.
        count: usize,
        /// The first few.
        examples: Vec<String>,
    },
    /// Objects a remote lacks.
    #[error("remote {remote} lacks {objects} object(s) needed by: {}", .examples.join(", "))]
    MissingOnRemote {
        /// The remote, redacted.
        remote: String,
        /// How many objects.
        objects: usize,
        /// The first few paths that need them.
        examples: Vec<String>,
    },
    /// Damage on a format 2 remote (a truncated or missing pack, a blob that does not match
    /// its id, a recipe naming a chunk the index lacks) keeps objects from being fetched.
    #[error("{error} (needed by: {})", .examples.join(", "))]
    DamagedOnRemote {
        /// The damage.
        error: Box<crate::remote::RemoteError>,
        /// The first few paths that need the objects it affects.
        examples: Vec<String>,
    },
    /// `gc` could not read the manifest of a directory it keeps, so it cannot tell that
    /// directory's files from garbage.
    #[error("cannot read the manifest {digest} of {path} (kept by {kept_by}) {place}; gc would delete files it still needs, so it removes nothing")]
    UnreadableManifest {
        /// The directory's data path, as displayed.
        path: String,
        /// The manifest.
        digest: Digest,
        /// What keeps it (`the workspace`, `HEAD`, a ref name, ...).
        kept_by: String,
        /// Where it was looked for and why it could not be read.
        place: String,
    },
    /// `gc --remote` with a scope that leaves out refs whose data others may still need.
    #[error("gc --remote with this scope would delete data that {first}{} still refers to, and the remote is shared", if *.more > 0 { format!(" (and {} more)", .more) } else { String::new() })]
    ScopeIgnoresRefs {
        /// The first ref left out.
        first: String,
        /// How many more.
        more: usize,
    },
    /// A command that does not yet support remote format 2 was pointed at such a remote.
    #[error("`mlv {command}` does not work on format 2 remotes yet ({remote} uses format 2)")]
    NotYetFormat2 {
        /// The command, as typed (`fsck --remote`, `gc --remote`).
        command: &'static str,
        /// The remote, redacted.
        remote: String,
    },
    /// A cache directory that is not mlv's alone.
    #[error("{dir} cannot be the cache directory: {reason}")]
    NotCacheDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: NotCacheDirReason,
    },
    /// `hardlink`/`symlink` link kinds while running as root.
    #[error("cache.link includes {kind:?}, and mlv runs as root: read-only bits do not stop root, so writing a linked workspace file would change the cached object itself")]
    LinksAsRoot {
        /// The refused kind.
        kind: String,
    },
    /// A pointer claims data that git tracks: checking it out would overwrite files in git.
    #[error("{pointer}: claims {data}, which git tracks; mlv never overwrites files in git")]
    ClaimsGitFile {
        /// The pointer file, as displayed.
        pointer: String,
        /// Its data path, as displayed.
        data: String,
    },
    /// A path that mlv cannot handle as given.
    #[error("{}: {reason}", crate::relpath::printable_path(.path))]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: BadPathReason,
    },
}

/// Why a directory cannot be the cache directory ([`Refusal::NotCacheDir`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCacheDirReason {
    /// It is the work tree or holds it: gc would delete the user's files.
    #[error("it is the work tree or a directory above it")]
    HoldsWorkTree,
    /// It holds an entry at its top level that is not one of mlv's.
    #[error("it holds {0:?}, which is not mlv's (a cache holds only object directories, packs/ and tmp/)")]
    Foreign(String),
}

/// Why mlv cannot handle a path as given ([`Refusal::BadPath`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPathReason {
    /// Not a valid work-tree path (a manifest entry too long inside its directory, say).
    #[error("{0}")]
    Invalid(crate::relpath::RelPathError),
    /// No `.gitignore` path fits beside the data.
    #[error("the path is too long for a .gitignore beside it")]
    NoRoomForGitignore,
    /// `.mlv/tmp` is something other than a directory.
    #[error("mlv's scratch directory is not a directory (a link?); remove it, mlv recreates it")]
    ScratchNotDir,
}

impl Error {
    /// What kind of failure this is (the CLI's exit code follows from it).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Repo(e) => e.kind(),
            Error::Config(e) => e.kind(),
            Error::Pointer(e) => e.kind(),
            Error::Cache(e) => e.kind(),
            Error::Manifest(e) => e.kind(),
            Error::Workspace(e) => e.kind(),
            Error::Io(e) => e.kind(),
            Error::Remote(e) => e.kind(),
            Error::Refused(e) => e.kind(),
            Error::Lineage(e) => e.kind(),
            Error::Lock(e) => e.kind(),
            Error::Source(e) => e.kind(),
            Error::Pipeline(e) => e.kind(),
            Error::Model(e) => e.kind(),
        }
    }

    /// What the user can do about it, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        let specific = match self {
            Error::Repo(e) => e.hint(),
            Error::Config(e) => e.hint(),
            Error::Pointer(e) => e.hint(),
            Error::Cache(e) => e.hint(),
            Error::Manifest(e) => e.hint(),
            Error::Workspace(e) => e.hint(),
            Error::Io(e) => e.hint(),
            Error::Remote(e) => e.hint(),
            Error::Refused(e) => e.hint(),
            Error::Lineage(e) => e.hint(),
            Error::Lock(e) => e.hint(),
            Error::Source(e) => e.hint(),
            Error::Pipeline(e) => e.hint(),
            Error::Model(e) => e.hint(),
        };
        specific.or_else(|| self.io_hint())
    }

    /// A hint for a full disk or a denied permission anywhere in the cause chain.
    fn io_hint(&self) -> Option<String> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(self);
        // `IoError`s are mostly wrapped transparently (so absent from the chain) and say what
        // failed first: "cannot read PATH"; the innermost such text is the failed action
        let mut read = false;
        while let Some(e) = cur {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                return io_kind_hint(io.kind(), read);
            }
            let text = e.to_string();
            if text.starts_with("cannot ") {
                read = is_read(&text);
            }
            cur = e.source();
        }
        None
    }
}

impl Refusal {
    /// What the user can do about it, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Refusal::TrackedByGit { path } => {
                format!("stop tracking it in git first: git rm -r --cached {path}")
            }
            Refusal::Overlaps { pointer, .. } => format!("add or untrack the data of {pointer} as a whole"),
            Refusal::WouldLoseData { .. } => {
                "save them with `mlv add`, or discard them with `mlv checkout --force`".into()
            }
            Refusal::NotInCache { .. } => "run `mlv pull` to download it from a remote".into(),
            Refusal::NotTracked { .. } => "`mlv status` lists what is tracked".into(),
            Refusal::NotImported { .. } => {
                "`mlv status` shows imported data with where it came from; data added here changes with `mlv add`".into()
            }
            Refusal::ImportTargetExists { .. } => {
                "import to another path with -o OUT, or replace what is there with --force".into()
            }
            Refusal::NotImportable { .. } => "`mlv ls URL PATH` shows what the repository tracks there".into(),
            Refusal::IsADirectory { .. } => {
                "open one of its files: `mlv ls` (or mlv.ls in Python) lists them".into()
            }
            Refusal::WrongSize { .. } => {
                "restore the pointer file from git (`git checkout -- FILE.mlv`), or add the data again; `mlv fsck` lists every such size"
                    .into()
            }
            Refusal::SymlinkTarget { .. } => "add the link's target instead".into(),
            Refusal::LinkInPath { link, .. } => {
                format!("remove the link {link} (or replace it with a real file or directory), then run the command again")
            }
            Refusal::LinkEscapes { .. } => {
                "the directory's manifest is not safe to check out; restore its pointer from git history".into()
            }
            Refusal::UnknownRemote { .. } => "`mlv remote list` shows the configured remotes".into(),
            Refusal::MalformedDvcConfig { .. } => {
                "fix the line (DVC's config is INI: `[section]`, `['remote \"NAME\"']`, `key = value`); `dvc config --list` shows what DVC reads".into()
            }
            Refusal::RemoteExists { name } => format!(
                "make it the default with `mlv remote default {name}`, change it with `mlv remote modify {name} url URL`, or pick another name"
            ),
            Refusal::NoDefaultRemote { remotes } => match remotes.as_slice() {
                [] => "add one with `mlv remote add NAME URL --default`, or pass `-r NAME`".into(),
                [one] => format!("make it the default with `mlv remote default {one}`, or pass `-r {one}`"),
                many => format!(
                    "make one the default with `mlv remote default NAME` (configured: {}), or pass `-r NAME`",
                    many.join(", ")
                ),
            },
            Refusal::SecretInCommittedFile { remote, key } if key == "url" => format!(
                "change it with `mlv remote modify {remote} url URL` (credentials go in options with --local, \
                 or the environment); it is in git history, so change the credential too"
            ),
            Refusal::SecretInCommittedFile { remote, key } => format!(
                "move it to the git-ignored local config: `mlv remote modify {remote} {key} --unset`, then \
                 `mlv remote modify {remote} {key} VALUE --local` (or use the environment); it is in git \
                 history, so change the credential too"
            ),
            Refusal::SecretInCommittedConfig { .. } => {
                "use --local (writes the git-ignored .mlv/config.local.toml) or the cloud's environment variables".into()
            }
            Refusal::ClaimsGitFile { pointer, data } => format!(
                "if the pointer is not yours, remove it (`git rm -- {pointer}`); to move the data \
                 from git to mlv, run `git rm -r --cached -- {data}` first"
            ),
            Refusal::LinksAsRoot { .. } => "run mlv as an ordinary user, or use copies: MLV_CACHE_LINK=reflink,copy (or `link` in [cache] of .mlv/config.local.toml); to accept the risk, set MLV_LINK_AS_ROOT=1 (`link_as_root = true` in [cache])".into(),
            Refusal::IncompleteCache { .. } => {
                "fetch them first (`mlv fetch`), or push only the paths whose data you have".into()
            }
            Refusal::DamagedOnRemote { error, .. } => {
                return error.hint();
            }
            Refusal::MissingOnRemote { .. } => {
                "push them from a clone whose cache has them (`mlv push`), or try another remote with -r".into()
            }
            Refusal::UnreadableManifest { path, .. } => format!(
                "get it with `mlv fetch {path}` (or `mlv fsck --remote` to see what is missing), then run gc again"
            ),
            Refusal::ScopeIgnoresRefs { .. } => {
                "use the default scope (no -w/-T), or add --all-branches (-a) or --all-commits (-A); or leave out --remote to collect only the cache".into()
            }
            Refusal::NotYetFormat2 { .. } => "push, pull, fetch, `status --remote` and `fsck --remote` (without \
                 --repair) work on it; \
                 check or collect the remote with a later mlv, or run the command on a format 1 remote"
                .into(),
            Refusal::NotCacheDir { .. } => CACHE_DIR_HINT.into(),
            Refusal::HookInTheWay { saved, .. } => format!(
                "merge {saved} into the hook (or remove it), then run `mlv install-hooks` again"
            ),
            Refusal::UnknownConfigKey { valid, .. } => format!("valid keys: {valid}"),
            Refusal::ConfigKeyNotSet { .. } => {
                "`mlv config --list` shows what is set; --local edits .mlv/config.local.toml".into()
            }
            Refusal::BadConfigValue { .. } | Refusal::NotFound { .. }
            | Refusal::Duplicate { .. }
            | Refusal::Special { .. }
            | Refusal::Partial { .. }
            | Refusal::UrlRequired
            | Refusal::MissingUrl { .. }
            | Refusal::BadRemoteName { .. }
            | Refusal::BadPath { .. } => return None,
        })
    }

    /// What kind of failure this is: a refusal, but for a size that is not its content's
    /// (damaged data) and a partial failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Refusal::WrongSize { .. } => ErrorKind::Integrity,
            Refusal::DamagedOnRemote { error, .. } => error.kind(),
            Refusal::Partial { .. } => ErrorKind::Failure,
            Refusal::NotFound { .. }
            | Refusal::TrackedByGit { .. }
            | Refusal::Overlaps { .. }
            | Refusal::Duplicate { .. }
            | Refusal::SymlinkTarget { .. }
            | Refusal::LinkInPath { .. }
            | Refusal::LinkEscapes { .. }
            | Refusal::Special { .. }
            | Refusal::NotTracked { .. }
            | Refusal::NotImported { .. }
            | Refusal::ImportTargetExists { .. }
            | Refusal::NotImportable { .. }
            | Refusal::IsADirectory { .. }
            | Refusal::WouldLoseData { .. }
            | Refusal::NotInCache { .. }
            | Refusal::UnknownRemote { .. }
            | Refusal::RemoteExists { .. }
            | Refusal::MalformedDvcConfig { .. }
            | Refusal::NoDefaultRemote { .. }
            | Refusal::SecretInCommittedConfig { .. }
            | Refusal::SecretInCommittedFile { .. }
            | Refusal::UnknownConfigKey { .. }
            | Refusal::HookInTheWay { .. }
            | Refusal::BadConfigValue { .. }
            | Refusal::ConfigKeyNotSet { .. }
            | Refusal::UrlRequired
            | Refusal::MissingUrl { .. }
            | Refusal::BadRemoteName { .. }
            | Refusal::IncompleteCache { .. }
            | Refusal::MissingOnRemote { .. }
            | Refusal::UnreadableManifest { .. }
            | Refusal::ScopeIgnoresRefs { .. }
            | Refusal::NotCacheDir { .. }
            | Refusal::NotYetFormat2 { .. }
            | Refusal::LinksAsRoot { .. }
            | Refusal::ClaimsGitFile { .. }
            | Refusal::BadPath { .. } => ErrorKind::Refused,
        }
    }
}

/// Shorthand for results of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The remote-setting refusals say exactly what the old `BadOption { key, reason }` said.
    #[test]
    fn remote_setting_refusals_keep_their_words() {
        let cases = [
            (Refusal::UrlRequired, "url: a remote needs a URL"),
            (
                Refusal::MissingUrl {
                    remote: "origin".into(),
                },
                "remote.origin.url: missing",
            ),
            (
                Refusal::BadRemoteName {
                    name: "my remote\"".into(),
                },
                "name: \"my remote\\\"\" is not a valid remote name (letters, digits, `-`, `_`, `.`)",
            ),
        ];
        for (refusal, message) in cases {
            assert_eq!(refusal.to_string(), message);
            assert_eq!(refusal.kind(), ErrorKind::Refused);
            assert_eq!(refusal.hint(), None);
        }
    }

    fn corrupt() -> CacheError {
        CacheError::Corrupt {
            digest: Digest::of_bytes(b"named"),
            path: "/cache/ab/cdef".into(),
            actual: Digest::of_bytes(b"held"),
        }
    }

    fn io(kind: std::io::ErrorKind) -> IoError {
        IoError::new("cannot write", "/r/data", std::io::Error::from(kind))
    }

    #[test]
    fn damaged_data_is_an_integrity_error_through_every_wrapper() {
        let errors: Vec<Error> = vec![
            corrupt().into(),
            WorkspaceError::Cache(corrupt()).into(),
            RemoteError::Cache(corrupt()).into(),
            RemoteError::Corrupt {
                remote: "s3://b".into(),
                digest: Digest::of_bytes(b"named"),
                key: "ab/cdef".into(),
                actual: Digest::of_bytes(b"held"),
                size: 4,
            }
            .into(),
            Refusal::DamagedOnRemote {
                error: Box::new(RemoteError::DamagedFor {
                    objects: vec![Digest::of_bytes(b"f")],
                    error: Box::new(RemoteError::Format2 {
                        remote: "s3://b".into(),
                        error: Box::new(crate::remote::format2::Format2Error::MissingChunk {
                            file: Digest::of_bytes(b"f"),
                            chunk: Digest::of_bytes(b"c"),
                        }),
                    }),
                }),
                examples: vec!["big.bin".into()],
            }
            .into(),
            ManifestError {
                digest: Digest::of_bytes(b"m"),
                reason: "bad".into(),
                data: None,
            }
            .into(),
            Refusal::WrongSize {
                path: "d".into(),
                what: "the pointer",
                recorded: 1,
                actual: 2,
                digest: Digest::of_bytes(b"d"),
            }
            .into(),
        ];
        for e in errors {
            assert_eq!(e.kind(), ErrorKind::Integrity, "{e:?}");
            assert!(e.hint().is_some(), "{e:?}");
        }
    }

    #[test]
    fn a_held_lock_is_busy_and_other_errors_are_not_integrity() {
        let busy: Error = LockError::Busy {
            holder: None,
            waited: 1,
        }
        .into();
        assert_eq!(busy.kind(), ErrorKind::Busy);
        let others: Vec<Error> = vec![
            CacheError::Missing {
                digest: Digest::of_bytes(b"x"),
            }
            .into(),
            Refusal::NotFound { path: "x".into() }.into(),
            Refusal::Partial { failed: 1, total: 2 }.into(),
            RepoError::NotGit { path: "/r".into() }.into(),
        ];
        for e in others {
            assert!(
                !matches!(e.kind(), ErrorKind::Integrity | ErrorKind::Busy),
                "{e:?}"
            );
        }
    }

    #[test]
    fn a_full_disk_is_the_environment_and_hinted_through_every_wrapper() {
        let full = || io(std::io::ErrorKind::StorageFull);
        let errors: Vec<Error> = vec![
            full().into(),
            CacheError::Io(full()).into(),
            WorkspaceError::Io(full()).into(),
            WorkspaceError::Cache(CacheError::Io(full())).into(),
            RemoteError::Io(full()).into(),
            RemoteError::Cache(CacheError::Io(full())).into(),
            RepoError::Io(full()).into(),
            RepoError::Config(ConfigError::Io(full())).into(),
            RepoError::Pointer(PointerError::Io(full())).into(),
            ConfigError::Io(full()).into(),
            PointerError::Io(full()).into(),
            LockError::Io(full()).into(),
            LineageError::Io(full()).into(),
        ];
        for e in errors {
            assert_eq!(e.kind(), ErrorKind::Environment, "{e:?}");
            assert!(e.hint().unwrap().contains("free space"), "{e:?}");
        }
        let other: Error = io(std::io::ErrorKind::InvalidData).into();
        assert_eq!(other.kind(), ErrorKind::Failure);
    }

    #[test]
    fn a_git_error_keeps_libgit2s_error_as_its_source() {
        use std::error::Error as _;
        let e: Error = RepoError::from(GitError::while_doing("reading the index")(git2::Error::from_str(
            "index is locked",
        )))
        .into();
        assert_eq!(e.to_string(), "git: reading the index");
        assert_eq!(e.source().unwrap().to_string(), "index is locked");
        assert_eq!(e.kind(), ErrorKind::Failure);
    }

    #[test]
    fn a_denied_read_asks_for_read_access_and_a_denied_write_for_write_access() {
        let denied = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let read: Error = IoError::new("cannot read", "/r/data", denied()).into();
        assert!(read.hint().unwrap().contains("readable"), "{:?}", read.hint());
        let write: Error = IoError::new("cannot write", "/r/data", denied()).into();
        assert!(write.hint().unwrap().contains("writable"), "{:?}", write.hint());
    }

    #[test]
    fn typed_refusal_reasons_read_as_before() {
        use crate::relpath::RelPathError;
        use std::error::Error as _;
        let bad_path = |reason| {
            Error::from(Refusal::BadPath {
                path: "data/x".into(),
                reason,
            })
        };
        let cases = [
            (
                bad_path(BadPathReason::Invalid(RelPathError::TooLong)),
                "data/x: the path or one of its names is too long",
            ),
            (
                bad_path(BadPathReason::Invalid(RelPathError::Reserved(".git"))),
                "data/x: the path is inside `.git`, which mlv manages",
            ),
            (
                bad_path(BadPathReason::NoRoomForGitignore),
                "data/x: the path is too long for a .gitignore beside it",
            ),
            (
                bad_path(BadPathReason::ScratchNotDir),
                "data/x: mlv's scratch directory is not a directory (a link?); remove it, mlv recreates it",
            ),
            (
                Refusal::NotCacheDir {
                    dir: "/r".into(),
                    reason: NotCacheDirReason::HoldsWorkTree,
                }
                .into(),
                "/r cannot be the cache directory: it is the work tree or a directory above it",
            ),
            (
                Refusal::NotCacheDir {
                    dir: "/c".into(),
                    reason: NotCacheDirReason::Foreign("my \"notes\"".into()),
                }
                .into(),
                "/c cannot be the cache directory: it holds \"my \\\"notes\\\"\", which is not mlv's (a cache holds only object directories, packs/ and tmp/)",
            ),
        ];
        for (e, text) in cases {
            assert_eq!(e.to_string(), text);
            assert!(
                e.source().is_none(),
                "{e}: a reason is part of the message, not a cause"
            );
            assert_eq!(e.kind(), ErrorKind::Refused);
        }
    }
}
