//! The library's top-level error: every module's error, plus the refusals of the verbs.

use std::path::PathBuf;

use crate::cache::CacheError;
use crate::config::ConfigError;
use crate::fs::IoError;
use crate::hash::Digest;
use crate::lineage::LineageError;
use crate::manifest::ManifestError;
use crate::pointer::PointerError;
use crate::repo::RepoError;
use crate::workspace::WorkspaceError;

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
    /// A verb refused to act; nothing was changed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// Lineage and history.
    #[error(transparent)]
    Lineage(#[from] LineageError),
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
    /// Not a regular file or directory.
    #[error("{path}: not a regular file or directory")]
    Special {
        /// The path as displayed.
        path: String,
    },
    /// No pointer tracks the path.
    #[error("{path}: not tracked by mlv")]
    NotTracked {
        /// The path as displayed.
        path: String,
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
    /// Some targets failed; each was reported.
    #[error("{failed} of {total} target(s) failed")]
    Partial {
        /// Failed count.
        failed: usize,
        /// Total count.
        total: usize,
    },
    /// A path that mlv cannot handle as given.
    #[error("{path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl Error {
    /// What the user can do about it, when there is something to do.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Repo(RepoError::NotGit { .. }) => Some("run `git init` first, or use -C DIR".into()),
            Error::Repo(RepoError::NotInitialized { .. }) => Some("run `mlv init` in the repository".into()),
            Error::Repo(RepoError::Pointer(_)) | Error::Pointer(PointerError::Malformed { .. }) => {
                Some("fix the pointer file, or restore it with `git checkout -- FILE`".into())
            }
            Error::Pointer(PointerError::UnsupportedVersion { .. })
            | Error::Repo(RepoError::Config(ConfigError::Invalid { .. }))
            | Error::Config(ConfigError::Invalid { .. }) => {
                Some("this file may come from a newer mlv, or have a typo; see docs/format.md".into())
            }
            Error::Cache(CacheError::Corrupt { .. }) | Error::Manifest(_) => Some(
                "delete the corrupt object and fetch it again with `mlv fetch`, or re-add the data".into(),
            ),
            Error::Cache(CacheError::Missing { .. }) => {
                Some("run `mlv fetch` or `mlv pull` to download it".into())
            }
            Error::Workspace(WorkspaceError::SymlinkEscapes { .. }) => {
                Some("replace the link with a copy of its target, or remove it".into())
            }
            Error::Refused(r) => r.hint(),
            Error::Lineage(l) => l.hint(),
            _ => None,
        }
    }

    /// Whether this error reports damaged data (a digest mismatch).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Error::Cache(CacheError::Corrupt { .. })
                | Error::Workspace(WorkspaceError::Cache(CacheError::Corrupt { .. }))
                | Error::Manifest(_)
        )
    }
}

impl Refusal {
    fn hint(&self) -> Option<String> {
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
            Refusal::SymlinkTarget { .. } => "add the link's target instead".into(),
            _ => return None,
        })
    }
}

/// Shorthand for results of the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
