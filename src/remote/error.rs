//! Remote errors. Every message names the remote with secrets hidden; object_store's own error
//! text is scrubbed (see `redact`) and kept as a string, never as a `source` that a renderer
//! could print unscrubbed.

use std::path::PathBuf;

use crate::cache::CacheError;
use crate::fs::IoError;
use crate::hash::Digest;

use super::aws_profile::ProfileProblem;
use super::redact;
use super::spec::{Scheme, SpecError};

/// Errors from remotes.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The URL or an option is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),

    /// object_store rejected the configuration (bad endpoint URL, unreadable key file, ...).
    #[error("cannot configure remote {remote}: {detail}")]
    Config {
        /// The remote, redacted.
        remote: String,
        /// Scrubbed reason.
        detail: String,
    },

    /// An AWS profile cannot be used.
    #[error("cannot use AWS profile `{profile}` for remote {remote}: {}", profile_reason(.problem))]
    Profile {
        /// The remote, redacted.
        remote: String,
        /// The profile name.
        profile: String,
        /// What is wrong.
        problem: ProfileProblem,
    },

    /// The remote refused our credentials (HTTP 401/403).
    #[error("remote {remote} refused access{}: {detail}", key_suffix(.key))]
    Unauthorized {
        /// The remote, redacted.
        remote: String,
        /// Its scheme (for the hint).
        scheme: Scheme,
        /// The object key concerned, if any.
        key: Option<String>,
        /// Scrubbed server answer.
        detail: String,
    },

    /// The remote could not be reached in time (connection refused, DNS, timeouts).
    #[error("remote {remote} is unreachable{}: {detail}", key_suffix(.key))]
    Unreachable {
        /// The remote, redacted.
        remote: String,
        /// The object key concerned, if any.
        key: Option<String>,
        /// Scrubbed transport error.
        detail: String,
    },

    /// A bucket, container or directory does not exist (not an object: see `MissingObjects`).
    #[error("remote {remote} not found{}: {detail}", key_suffix(.key))]
    NotFound {
        /// The remote, redacted.
        remote: String,
        /// The key concerned, if any.
        key: Option<String>,
        /// Scrubbed server answer.
        detail: String,
    },

    /// Any other failure the store reported (5xx after retries, unsupported operation, ...).
    #[error("remote {remote} failed to {op}{}: {detail}", key_suffix(.key))]
    Backend {
        /// The remote, redacted.
        remote: String,
        /// What was being done ("upload", "list", ...).
        op: &'static str,
        /// The key concerned, if any.
        key: Option<String>,
        /// Scrubbed error text.
        detail: String,
    },

    /// Objects asked for are not on the remote.
    #[error("remote {remote} lacks {} object(s): {}", .digests.len(), digest_list(.digests))]
    MissingObjects {
        /// The remote, redacted.
        remote: String,
        /// The missing objects.
        digests: Vec<Digest>,
    },

    /// A downloaded object's bytes do not hash to its name; nothing was installed.
    #[error("object {digest} on remote {remote} is corrupt (key {key}): its {size} bytes hash to {actual}")]
    Corrupt {
        /// The remote, redacted.
        remote: String,
        /// The object's name.
        digest: Digest,
        /// Its key on the remote.
        key: String,
        /// What the downloaded bytes hash to.
        actual: Digest,
        /// How many bytes were received.
        size: u64,
    },

    /// The local cache failed (an object to upload is missing or corrupt, or I/O).
    #[error(transparent)]
    Cache(#[from] CacheError),

    /// A local file operation failed (local remotes, temporary files).
    #[error(transparent)]
    Io(#[from] IoError),

    /// A local remote's directory cannot be used.
    #[error("cannot use local remote directory {path}: {detail}")]
    LocalDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        detail: String,
    },
}

impl RemoteError {
    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Spec(SpecError::UnknownOption { .. }) => {
                Some("run `mlv remote modify NAME KEY VALUE` with one of the listed keys".into())
            }
            RemoteError::Spec(_) => None,
            RemoteError::Config { .. } => Some("check the remote's URL and options with `mlv remote list`".into()),
            RemoteError::Profile { problem, profile, .. } => match problem {
                ProfileProblem::Unsupported { .. } => Some(format!(
                    "export temporary keys with `eval \"$(aws configure export-credentials --profile {profile} --format env)\"`"
                )),
                ProfileProblem::NotFound { .. } => {
                    Some("check the profile name, or set AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE".into())
                }
                ProfileProblem::Unreadable { .. } => None,
            },
            RemoteError::Unauthorized { scheme, .. } => Some(credentials_hint(*scheme)),
            RemoteError::Unreachable { .. } => Some(
                "check the endpoint and the network, or raise `timeout` / `retries` with \
                 `mlv remote modify NAME timeout 120`"
                    .into(),
            ),
            RemoteError::NotFound { .. } => Some("check that the bucket or container exists and the URL names it".into()),
            RemoteError::Backend { .. } => None,
            RemoteError::MissingObjects { .. } => {
                Some("push these objects from a clone whose cache has them (`mlv push`)".into())
            }
            RemoteError::Corrupt { key, .. } => Some(format!(
                "the remote copy is damaged: delete `{key}` on the remote and `mlv push` from a cache that has the object"
            )),
            RemoteError::Cache(CacheError::Corrupt { .. }) => {
                Some("the local cache object is damaged; re-add the file with `mlv add`, then push".into())
            }
            RemoteError::Cache(CacheError::Missing { .. }) => {
                Some("the object is not in the local cache; `mlv pull` it from another remote or re-add the file".into())
            }
            RemoteError::Cache(CacheError::Io(_)) | RemoteError::Io(_) | RemoteError::LocalDir { .. } => None,
        }
    }
}

fn credentials_hint(scheme: Scheme) -> String {
    match scheme {
        Scheme::S3 => {
            "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or `mlv remote modify NAME profile P`".into()
        }
        Scheme::Gcs => "set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or \
                        `mlv remote modify NAME service_account PATH`"
            .into(),
        Scheme::Azure => "set AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY (or a SAS token with \
                          `mlv remote modify NAME sas_token TOKEN --local`)"
            .into(),
        Scheme::Local => "check the permissions of the remote directory".into(),
    }
}

fn key_suffix(key: &Option<String>) -> String {
    match key {
        Some(k) => format!(" (key {k})"),
        None => String::new(),
    }
}

fn digest_list(digests: &[Digest]) -> String {
    const SHOWN: usize = 10;
    let mut s: Vec<String> = digests.iter().take(SHOWN).map(|d| d.to_string()).collect();
    if digests.len() > SHOWN {
        s.push(format!("and {} more", digests.len() - SHOWN));
    }
    s.join(", ")
}

fn profile_reason(p: &ProfileProblem) -> String {
    match p {
        ProfileProblem::NotFound { files } => format!(
            "no such profile in {}",
            if files.is_empty() {
                "the AWS config files (HOME is not set)".to_string()
            } else {
                files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" or ")
            }
        ),
        ProfileProblem::Unsupported { setting } => {
            format!("it uses `{setting}`, which mlv cannot resolve (only static keys are read)")
        }
        ProfileProblem::Unreadable { file, reason } => format!("cannot read {}: {reason}", file.display()),
    }
}

/// How an object_store failure is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    NotFound,
    AlreadyExists,
    Unauthorized,
    Unreachable,
    Other,
}

/// Classifies an object_store error. No `_` arm: a new variant must be classified here.
pub(crate) fn kind_of(e: &object_store::Error) -> Kind {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => Kind::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => Kind::AlreadyExists,
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => Kind::Unauthorized,
        E::Generic { source, .. } => {
            if is_transport(source.as_ref()) {
                Kind::Unreachable
            } else {
                Kind::Other
            }
        }
        E::JoinError { .. } => Kind::Other,
        E::InvalidPath { .. }
        | E::NotSupported { .. }
        | E::NotModified { .. }
        | E::NotImplemented { .. }
        | E::UnknownConfigurationKey { .. } => Kind::Other,
        // object_store::Error is #[non_exhaustive]: a variant added by a later version is "other".
        _ => Kind::Other,
    }
}

/// Whether a request may have reached the server without its answer reaching us: the
/// connection was reset or timed out after the request was sent. object_store retries these
/// only for requests it knows to be idempotent, and a plain PUT is not one of them.
pub(crate) fn is_ambiguous(e: &object_store::Error) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let object_store::Error::Generic { source, .. } = e else {
        return false;
    };
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(source.as_ref());
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            return matches!(h.kind(), HttpErrorKind::Timeout | HttpErrorKind::Interrupted);
        }
        cur = err.source();
    }
    false
}

/// Whether the error chain holds a connection, timeout or interrupted-transfer error.
fn is_transport(e: &(dyn std::error::Error + 'static)) -> bool {
    use object_store::client::{HttpError, HttpErrorKind};
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<HttpError>() {
            if matches!(
                h.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
                    | HttpErrorKind::Request
            ) {
                return true;
            }
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            if matches!(
                io.kind(),
                K::ConnectionRefused
                    | K::ConnectionReset
                    | K::ConnectionAborted
                    | K::TimedOut
                    | K::NotConnected
            ) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// Builds the error for an object_store failure during `op` on `key`.
pub(crate) fn from_store(
    e: &object_store::Error,
    remote: &str,
    scheme: Scheme,
    op: &'static str,
    key: Option<&str>,
    secrets: &[String],
) -> RemoteError {
    let detail = redact::scrub_error(e, secrets);
    let remote = remote.to_string();
    let key = key.map(str::to_string);
    match kind_of(e) {
        Kind::NotFound => RemoteError::NotFound { remote, key, detail },
        Kind::Unauthorized => RemoteError::Unauthorized {
            remote,
            scheme,
            key,
            detail,
        },
        Kind::Unreachable => RemoteError::Unreachable { remote, key, detail },
        Kind::AlreadyExists | Kind::Other => RemoteError::Backend {
            remote,
            op,
            key,
            detail,
        },
    }
}
