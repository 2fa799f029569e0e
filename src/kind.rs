//! What kind of failure an error is, and the pieces every module's error shares (git errors,
//! hints for I/O failures). A leaf module: module errors import it, `error.rs` wraps them.

/// What kind of failure an error is. Every module error says its kind, wrappers ask the error
/// they wrap, and the CLI maps each kind to an exit code (docs/cli.md) in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A verb refused what it was given (a path, an option, a pointer it cannot trust);
    /// nothing was changed.
    Refused,
    /// Damaged data: content that does not hash to its name, or a recorded size that is not
    /// its content's.
    Integrity,
    /// Another process kept the repository lock too long.
    Busy,
    /// The surroundings are not as mlv needs them: no repository, a bad config file, no
    /// credentials, an unreachable remote, a full disk, a denied permission.
    Environment,
    /// Anything else that failed.
    Failure,
}

/// A git operation failed: what mlv was doing, and libgit2's error as the source.
#[derive(Debug, thiserror::Error)]
#[error("git: {action}")]
pub struct GitError {
    /// What was being done ("reading the index", ...).
    pub action: &'static str,
    /// libgit2's error.
    #[source]
    pub source: git2::Error,
}

impl GitError {
    /// Wraps a git2 error with what was being done: `.map_err(GitError::while_doing("..."))`.
    pub fn while_doing(action: &'static str) -> impl FnOnce(git2::Error) -> GitError {
        move |source| GitError { action, source }
    }

    /// A failed git operation is a plain failure.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Failure
    }
}

/// Whether an I/O error's action only reads (so a denied permission wants read access).
pub(crate) fn is_read(action: &str) -> bool {
    ["cannot read", "cannot stat", "cannot open", "cannot resolve"]
        .iter()
        .any(|a| action.starts_with(a))
}

/// What to do about an I/O failure the user's environment causes; `read` when what failed
/// only reads.
pub(crate) fn io_kind_hint(kind: std::io::ErrorKind, read: bool) -> Option<String> {
    use std::io::ErrorKind as K;
    match kind {
        K::StorageFull | K::QuotaExceeded => Some(
            "free space on that file system (or move the cache with `cache.dir` / MLV_CACHE_DIR), \
             then run the command again; nothing partial was kept"
                .into(),
        ),
        K::PermissionDenied if read => Some(
            "make that path readable for the user running mlv, or run mlv as the owner of the repository"
                .into(),
        ),
        K::PermissionDenied | K::ReadOnlyFilesystem => Some(
            "make that path writable for the user running mlv, or run mlv as the owner of the repository"
                .into(),
        ),
        _ => None,
    }
}

/// What to do about a cache directory that is not mlv's alone.
pub(crate) const CACHE_DIR_HINT: &str =
    "point `cache.dir` (or MLV_CACHE_DIR) at a directory of its own, e.g. an empty one: mlv deletes what it does not need there";
