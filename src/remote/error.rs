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

    /// No credentials were configured and the cloud's metadata or identity service gave none.
    #[error("no credentials found for {scheme} remote {remote}")]
    NoCredentials {
        /// The remote, redacted.
        remote: String,
        /// Its scheme (for the message and the hint).
        scheme: Scheme,
        /// Why the implicit source failed, scrubbed.
        #[source]
        detail: Detail,
    },

    /// The remote refused our credentials or request (HTTP 401/403, or a refusal code).
    #[error("remote {remote} refused access{}: {}", key_suffix(.key), .problem.summary(.code.as_deref()))]
    Unauthorized {
        /// The remote, redacted.
        remote: String,
        /// Its scheme (for the hint).
        scheme: Scheme,
        /// The object key concerned, if any.
        key: Option<String>,
        /// What the refusal means.
        problem: AuthProblem,
        /// The server's error code (`SignatureDoesNotMatch`, ...) or HTTP status, if known.
        code: Option<String>,
        /// Scrubbed server answer.
        #[source]
        detail: Detail,
    },

    /// The bucket or container the remote names does not exist.
    #[error("the {} of remote {remote} does not exist ({code})", container_word(*.scheme))]
    NoContainer {
        /// The remote, redacted.
        remote: String,
        /// Its scheme (bucket or container).
        scheme: Scheme,
        /// The server's error code (`NoSuchBucket`, `ContainerNotFound`).
        code: String,
        /// Scrubbed server answer.
        #[source]
        detail: Detail,
    },

    /// The bucket lives in another region than the one requests are signed for.
    #[error("the bucket of remote {remote} is in {} ({code})", region_words(.region))]
    WrongRegion {
        /// The remote, redacted.
        remote: String,
        /// The bucket's region, when the server said.
        region: Option<String>,
        /// The server's error code (`AuthorizationHeaderMalformed`, `PermanentRedirect`, ...).
        code: String,
        /// Scrubbed server answer.
        #[source]
        detail: Detail,
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

    /// A format 2 remote's pack, index segment or config document cannot be used.
    #[error("remote {remote}: {error}")]
    Format2 {
        /// The remote, redacted.
        remote: String,
        /// What is wrong (boxed: it carries several digests).
        error: Box<super::format2::Format2Error>,
    },

    /// A format 2 remote's damage met while fetching objects, with the objects it keeps from
    /// being fetched (so that the caller can name the paths that need them).
    #[error("{error}")]
    DamagedFor {
        /// The objects asked for that the damage affects.
        objects: Vec<Digest>,
        /// The damage (a `Format2` error).
        error: Box<RemoteError>,
    },

    /// An object URL was asked of a format 2 remote: its objects are blobs inside packs (or
    /// chunks of several), with no URL of their own.
    #[error("remote {remote} uses format 2: its objects lie inside packs and have no URL of their own")]
    NoObjectUrl {
        /// The remote, redacted.
        remote: String,
    },

    /// Something only format 1 remotes support yet was asked of a format 2 remote.
    #[error("{what} does not work on format 2 remotes yet ({remote} uses format 2)")]
    NotYetFormat2 {
        /// The remote, redacted.
        remote: String,
        /// What was asked.
        what: &'static str,
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
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind;
        match self {
            RemoteError::Spec(_) | RemoteError::NotYetFormat2 { .. } | RemoteError::NoObjectUrl { .. } => {
                ErrorKind::Refused
            }
            RemoteError::Config { .. }
            | RemoteError::Profile { .. }
            | RemoteError::NoCredentials { .. }
            | RemoteError::Unauthorized { .. }
            | RemoteError::NoContainer { .. }
            | RemoteError::WrongRegion { .. }
            | RemoteError::Unreachable { .. }
            | RemoteError::NotFound { .. }
            | RemoteError::LocalDir { .. } => ErrorKind::Environment,
            RemoteError::Backend { .. } | RemoteError::MissingObjects { .. } => ErrorKind::Failure,
            RemoteError::Corrupt { .. } => ErrorKind::Integrity,
            RemoteError::Format2 { error, .. } => error.kind(),
            RemoteError::DamagedFor { error, .. } => error.kind(),
            RemoteError::Cache(e) => e.kind(),
            RemoteError::Io(e) => e.kind(),
        }
    }

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
            RemoteError::NoCredentials { scheme, .. } => Some(no_credentials_hint(*scheme)),
            RemoteError::Unauthorized { scheme, problem, .. } => Some(match problem {
                AuthProblem::BadCredentials | AuthProblem::Refused => credentials_hint(*scheme),
                AuthProblem::Denied => permission_hint(*scheme),
                AuthProblem::ClockSkew => "set this computer's clock right (enable NTP time sync), then retry".into(),
            }),
            RemoteError::NoContainer { scheme, .. } => Some(format!(
                "create the {}, or check the URL the remote names with `mlv remote list`",
                container_word(*scheme)
            )),
            RemoteError::WrongRegion { region, .. } => Some(match region {
                Some(r) => format!("run `mlv remote modify NAME region {r}`"),
                None => "set the bucket's region with `mlv remote modify NAME region REGION`".into(),
            }),
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
            RemoteError::Format2 { error, .. } => error.hint(),
            RemoteError::DamagedFor { error, .. } => error.hint(),
            RemoteError::NoObjectUrl { .. } => Some(
                "read the data with `mlv.open`/`mlv.read` (or `mlv pull`) instead; for URLs, push to a \
                 remote added with `mlv remote add NAME URL --format 1` (before its first push)"
                    .into(),
            ),
            RemoteError::NotYetFormat2 { .. } => Some(
                "fetch the data into a cache first (`mlv fetch`, or `mlv import`), or use a format 1 remote".into(),
            ),
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

fn no_credentials_hint(scheme: Scheme) -> String {
    match scheme {
        Scheme::S3 => "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in \
                       ~/.aws/credentials), or `mlv remote modify NAME profile P`"
            .into(),
        Scheme::Gcs => "set GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT) to a service-account \
                        key file, or `mlv remote modify NAME service_account PATH`"
            .into(),
        Scheme::Azure => "set AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_KEY), or a SAS token with \
                          `mlv remote modify NAME sas_token TOKEN --local`"
            .into(),
        Scheme::Local => credentials_hint(scheme),
    }
}

fn permission_hint(scheme: Scheme) -> String {
    match scheme {
        Scheme::S3 => "the credentials are valid but lack permission: ask for s3:GetObject, s3:PutObject, \
                       s3:ListBucket (and s3:DeleteObject for gc) on the bucket"
            .into(),
        Scheme::Gcs => "the credentials are valid but lack permission: grant the service account \
                        roles/storage.objectAdmin (or objectViewer to pull) on the bucket"
            .into(),
        Scheme::Azure => "the credentials are valid but lack permission: use a key or SAS token allowing \
                          read, write, list (and delete for gc), or grant Storage Blob Data Contributor"
            .into(),
        Scheme::Local => credentials_hint(scheme),
    }
}

fn container_word(scheme: Scheme) -> &'static str {
    match scheme {
        Scheme::Azure => "container",
        Scheme::Local => "directory",
        Scheme::S3 | Scheme::Gcs => "bucket",
    }
}

fn region_words(region: &Option<String>) -> String {
    match region {
        Some(r) => format!("region {r}, not the one configured"),
        None => "another region than the one configured".into(),
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

/// Scrubbed text shown as the "caused by" line under a summary (never raw XML, never secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detail(pub String);

impl std::fmt::Display for Detail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Detail {}

/// What a 401/403 (or an authentication code) means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AuthProblem {
    /// The key id or secret is wrong, unknown or expired.
    BadCredentials,
    /// The credentials are valid but not allowed to do this.
    Denied,
    /// The request's time is too far from the server's.
    ClockSkew,
    /// A refusal the server did not explain further.
    Refused,
}

impl AuthProblem {
    fn summary(self, code: Option<&str>) -> String {
        let what = match self {
            AuthProblem::BadCredentials => "the credentials are wrong or expired",
            AuthProblem::Denied => "the credentials lack permission",
            AuthProblem::ClockSkew => "this computer's clock is too far from the server's",
            AuthProblem::Refused => "the server refused the request",
        };
        match code {
            Some(c) => format!("{what} ({c})"),
            None => what.to_string(),
        }
    }
}

/// What the server answered, read from object_store's error chain: the HTTP status and, when
/// the response had an error document, its `Code`, `Message` and region hints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Answer {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: Option<String>,
    pub region: Option<String>,
    /// Azure's `AuthenticationErrorDetail` (says when the clock is off).
    pub auth_detail: Option<String>,
}

/// object_store's `RequestError` messages (the type is private; its message is the interface).
const STATUS_PREFIXES: &[&str] = &[
    "Server returned non-2xx status code: ",
    "Server returned error response: ",
];

/// Reads the server's answer out of an object_store error.
pub(crate) fn answer_of(e: &object_store::Error) -> Answer {
    use object_store::Error as E;
    let mut a = Answer::default();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if let Some(rest) = STATUS_PREFIXES.iter().find_map(|p| text.strip_prefix(p)) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if digits.len() == 3 {
                a.status = digits.parse().ok();
            }
            read_body(rest, &mut a);
            break;
        }
        if text.starts_with("Received redirect without LOCATION") {
            a.status = Some(301);
            break;
        }
        cur = err.source();
    }
    if a.status.is_none() {
        a.status = match e {
            E::NotFound { .. } => Some(404),
            E::PermissionDenied { .. } => Some(403),
            E::Unauthenticated { .. } => Some(401),
            E::Precondition { .. } => Some(412),
            E::AlreadyExists { .. } => Some(409),
            E::NotImplemented { .. } => Some(501),
            _ => None,
        };
    }
    a
}

/// Fills code, message and region from an XML error document (S3, GCS, Azure) or an OAuth
/// JSON error (`{"error": "invalid_grant", ...}`) in `body`.
fn read_body(body: &str, a: &mut Answer) {
    a.code = xml_tag(body, "Code").or_else(|| json_string(body, "error"));
    a.message = xml_tag(body, "Message")
        .or_else(|| json_string(body, "error_description"))
        .map(|m| m.lines().next().unwrap_or("").trim().to_string())
        .filter(|m| !m.is_empty());
    a.auth_detail = xml_tag(body, "AuthenticationErrorDetail");
    a.region = xml_tag(body, "Region")
        .or_else(|| {
            // "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
            let m = xml_tag(body, "Message")?;
            let rest = &m[m.find("expecting '")? + "expecting '".len()..];
            Some(rest[..rest.find('\'')?].to_string())
        })
        .or_else(|| xml_tag(body, "Endpoint").and_then(|e| region_of_endpoint(&e)))
        .filter(|r| !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
}

/// `bucket.s3.eu-west-1.amazonaws.com` or `s3-eu-west-1.amazonaws.com` -> `eu-west-1`.
fn region_of_endpoint(endpoint: &str) -> Option<String> {
    let host = endpoint.strip_suffix(".amazonaws.com")?;
    let at = host
        .rfind("s3.")
        .map(|i| i + 3)
        .or_else(|| host.rfind("s3-").map(|i| i + 3))?;
    Some(host[at..].to_string())
}

fn xml_tag(body: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = body.find(&open)? + open.len();
    let end = body[start..].find(&format!("</{tag}>"))? + start;
    let v = body[start..end]
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&");
    Some(v.trim().to_string())
}

fn json_string(body: &str, key: &str) -> Option<String> {
    let start = body.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = body[start..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}

/// Server codes meaning the bucket or container is missing.
const NO_CONTAINER: &[&str] = &["NoSuchBucket", "ContainerNotFound", "ContainerBeingDeleted"];
/// Codes meaning the credentials themselves are wrong.
const BAD_CREDENTIALS: &[&str] = &[
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "InvalidToken",
    "ExpiredToken",
    "TokenRefreshRequired",
    "InvalidSecurity",
    "AuthenticationFailed",
    "InvalidAuthenticationInfo",
    "NoAuthenticationInformation",
    "AuthenticationRequired",
    "MissingSecurityHeader",
    "invalid_grant",
    "invalid_client",
    "unauthorized_client",
];
/// Codes meaning valid credentials lack permission.
const DENIED: &[&str] = &[
    "AccessDenied",
    "AllAccessDisabled",
    "AuthorizationPermissionMismatch",
    "AuthorizationFailure",
    "AuthorizationResourceTypeMismatch",
    "AuthorizationServiceMismatch",
    "AuthorizationSourceIPMismatch",
    "AuthorizationProtocolMismatch",
    "InsufficientAccountPermissions",
    "AccountIsDisabled",
];
/// Codes meaning the request was sent to or signed for the wrong region.
const WRONG_REGION: &[&str] = &[
    "AuthorizationHeaderMalformed",
    "PermanentRedirect",
    "TemporaryRedirect",
    "IllegalLocationConstraintException",
    "AuthorizationQueryParametersError",
];

/// How an object_store failure is classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The object is not there (the bucket or container is).
    NotFound,
    /// The bucket or container itself is missing: an error, never "object absent".
    NoContainer,
    AlreadyExists,
    Unauthorized,
    WrongRegion,
    Unreachable,
    Other,
}

/// Classifies an object_store error. No `_` arm: a new variant must be classified here.
pub(crate) fn kind_of(e: &object_store::Error) -> Kind {
    use object_store::Error as E;
    let by_answer = || {
        let a = answer_of(e);
        match a.code.as_deref() {
            Some(c) if NO_CONTAINER.contains(&c) => Some(Kind::NoContainer),
            Some(c) if WRONG_REGION.contains(&c) => Some(Kind::WrongRegion),
            Some(c) if BAD_CREDENTIALS.contains(&c) || DENIED.contains(&c) || c == "RequestTimeTooSkewed" => {
                Some(Kind::Unauthorized)
            }
            _ if matches!(a.status, Some(301 | 307)) => Some(Kind::WrongRegion),
            _ => None,
        }
    };
    match e {
        E::NotFound { .. } => by_answer().unwrap_or(Kind::NotFound),
        E::AlreadyExists { .. } | E::Precondition { .. } => Kind::AlreadyExists,
        E::Unauthenticated { .. } | E::PermissionDenied { .. } => by_answer()
            .filter(|k| *k != Kind::Unauthorized)
            .unwrap_or(Kind::Unauthorized),
        E::Generic { source, .. } => {
            if is_transport(source.as_ref()) {
                Kind::Unreachable
            } else {
                by_answer().unwrap_or(Kind::Other)
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

/// Whether the store says the operation is not implemented or supported (by the error's
/// variant, or an HTTP 501 answer), as some S3-compatible stores do for create-only puts.
pub(crate) fn is_unsupported(e: &object_store::Error) -> bool {
    match e {
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. } => true,
        other => {
            let a = answer_of(other);
            a.status == Some(501) || a.code.as_deref() == Some("NotImplemented")
        }
    }
}

fn auth_problem(a: &Answer) -> AuthProblem {
    let code = a.code.as_deref().unwrap_or("");
    let message = a.message.as_deref().unwrap_or("").to_ascii_lowercase();
    let detail = a.auth_detail.as_deref().unwrap_or("").to_ascii_lowercase();
    if code == "RequestTimeTooSkewed" || detail.contains("request date header too old") {
        AuthProblem::ClockSkew
    } else if BAD_CREDENTIALS.contains(&code) || message.contains("failed to authenticate") {
        AuthProblem::BadCredentials
    } else if DENIED.contains(&code) {
        AuthProblem::Denied
    } else {
        AuthProblem::Refused
    }
}

/// Whether the failure happened while fetching credentials from a token, metadata or identity
/// service (object_store's credential providers), rather than talking to the store itself.
fn is_credential_fetch(e: &object_store::Error) -> bool {
    const MARKS: &[&str] = &[
        "Error performing token request",
        "Error getting token response",
        "/latest/api/token",
        "/latest/meta-data/iam/security-credentials",
        "computeMetadata/v1/",
    ];
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if MARKS.iter().any(|m| text.contains(m)) {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Scrubbed error text with any server error document replaced by its code and message.
fn readable(e: &object_store::Error, secrets: &[String], a: &Answer) -> String {
    let text = redact::scrub_error(e, secrets);
    let cut = ["<?xml", "<Error", "<error"]
        .iter()
        .filter_map(|m| text.find(m))
        .min();
    match cut {
        Some(at) => {
            let mut head = text[..at].trim_end().trim_end_matches(':').to_string();
            match (&a.code, &a.message) {
                (Some(c), Some(m)) => head.push_str(&format!(": {c}: {}", redact::scrub(m, secrets))),
                (Some(c), None) => head.push_str(&format!(": {c}")),
                _ => {}
            }
            head
        }
        None => text,
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

/// Where a remote's credentials came from, for telling "none found" from "refused".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Credentials {
    /// mlv configured credentials (options, environment, profile, key file).
    Given,
    /// None were configured: object_store asks a metadata or identity service.
    Implicit,
}

/// Builds the error for an object_store failure during `op` on `key`.
pub(crate) fn from_store(
    e: &object_store::Error,
    remote: &str,
    scheme: Scheme,
    credentials: Credentials,
    op: &'static str,
    key: Option<&str>,
    secrets: &[String],
) -> RemoteError {
    let a = answer_of(e);
    let detail = readable(e, secrets, &a);
    let remote = remote.to_string();
    let key = key.map(str::to_string);
    let code_or_status = || {
        a.code
            .clone()
            .map(|c| redact::scrub(&c, secrets))
            .or_else(|| a.status.map(|s| format!("HTTP {s}")))
    };
    if is_credential_fetch(e) {
        return match credentials {
            Credentials::Implicit => RemoteError::NoCredentials {
                remote,
                scheme,
                detail: Detail(detail),
            },
            Credentials::Given => RemoteError::Unauthorized {
                remote,
                scheme,
                key,
                problem: AuthProblem::BadCredentials,
                code: code_or_status(),
                detail: Detail(detail),
            },
        };
    }
    match kind_of(e) {
        Kind::NotFound => RemoteError::NotFound { remote, key, detail },
        Kind::NoContainer => RemoteError::NoContainer {
            remote,
            scheme,
            code: code_or_status().unwrap_or_default(),
            detail: Detail(detail),
        },
        Kind::WrongRegion => RemoteError::WrongRegion {
            remote,
            region: a.region.clone(),
            code: code_or_status().unwrap_or_default(),
            detail: Detail(detail),
        },
        Kind::Unauthorized => RemoteError::Unauthorized {
            remote,
            scheme,
            key,
            problem: auth_problem(&a),
            code: code_or_status(),
            detail: Detail(detail),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// object_store's retry error (private): its message, then the request error as source.
    #[derive(Debug)]
    struct Retry(String, Request);
    #[derive(Debug)]
    struct Request(String);
    impl std::fmt::Display for Retry {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{} - {}", self.0, self.1)
        }
    }
    impl std::fmt::Display for Request {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for Retry {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.1)
        }
    }
    impl std::error::Error for Request {}

    /// The error object_store 0.14 builds for a response `status` (e.g. "403 Forbidden") with
    /// `body`, as its `RetryError::error` maps statuses to variants.
    fn answered(status: &str, body: &str) -> object_store::Error {
        let source = Box::new(Retry(
            "Error performing GET https://b.s3.amazonaws.com/p/ab/abcd?X-Amz-Signature=deadbeef in 12ms"
                .into(),
            Request(format!("Server returned non-2xx status code: {status}: {body}")),
        ));
        let path = "p/ab/abcd".to_string();
        match &status[..3] {
            "404" => object_store::Error::NotFound { path, source },
            "403" => object_store::Error::PermissionDenied { path, source },
            "401" => object_store::Error::Unauthenticated { path, source },
            _ => object_store::Error::Generic { store: "S3", source },
        }
    }

    fn classify(scheme: Scheme, e: &object_store::Error) -> (RemoteError, String) {
        let r = from_store(
            e,
            "s3://b/p",
            scheme,
            Credentials::Given,
            "download",
            Some("p/ab/abcd"),
            &[],
        );
        let shown = format!(
            "{r} | {} | {}",
            std::error::Error::source(&r)
                .map(|s| s.to_string())
                .unwrap_or_default(),
            r.hint().unwrap_or_default()
        );
        assert!(!shown.contains('<') && !shown.contains("deadbeef"), "{shown}");
        (r, shown)
    }

    // Bodies below are the documented formats of each service's error responses (AWS S3
    // "Error responses", Azure Storage "Status and error codes", GCS XML API "HTTP status and
    // error codes"); the emulators cannot produce all of them.

    #[test]
    fn s3_wrong_secret_and_unknown_key() {
        let body = r#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match the signature you provided. Check your key and signing method.</Message><AWSAccessKeyId>AKIAIOSFODNN7EXAMPLE</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256
20261205T080000Z</StringToSign><SignatureProvided>deadbeef</SignatureProvided><RequestId>4442587FB7D0A2F9</RequestId></Error>"#;
        let (r, shown) = classify(Scheme::S3, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::BadCredentials,
                    ..
                }
            ),
            "{shown}"
        );
        assert!(r.to_string().ends_with("(SignatureDoesNotMatch)"), "{shown}");
        assert!(
            shown.contains("AWS_ACCESS_KEY_ID") && !shown.contains("AKIAIOSFODNN7EXAMPLE"),
            "{shown}"
        );
        let body = "<Error><Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id you provided does not exist in our records.</Message></Error>";
        let (r, _) = classify(Scheme::S3, &answered("403 Forbidden", body));
        assert!(matches!(
            r,
            RemoteError::Unauthorized {
                problem: AuthProblem::BadCredentials,
                ..
            }
        ));
    }

    #[test]
    fn s3_no_permission() {
        let body = "<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>656c76696e6727732072657175657374</RequestId><HostId>Uuag1LuByRx9e6j5Onimru9pO4ZVKnJ2Qz7/C1NPcfTWAtRPfTaOFg==</HostId></Error>";
        let (r, shown) = classify(Scheme::S3, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::Denied,
                    ..
                }
            ),
            "{shown}"
        );
        assert!(
            shown.contains("lack permission (AccessDenied)") && shown.contains("s3:GetObject"),
            "{shown}"
        );
    }

    #[test]
    fn s3_wrong_region() {
        let body = "<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>ABC</RequestId></Error>";
        let (r, shown) = classify(Scheme::S3, &answered("400 Bad Request", body));
        assert_eq!(
            r.to_string(),
            "the bucket of remote s3://b/p is in region eu-west-1, not the one configured (AuthorizationHeaderMalformed)"
        );
        assert!(
            shown.contains("mlv remote modify NAME region eu-west-1"),
            "{shown}"
        );
        let body = "<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>b.s3.ap-south-1.amazonaws.com</Endpoint><Bucket>b</Bucket></Error>";
        let (r, _) = classify(Scheme::S3, &answered("301 Moved Permanently", body));
        assert!(
            matches!(&r, RemoteError::WrongRegion { region: Some(x), .. } if x == "ap-south-1"),
            "{r}"
        );
        // A HEAD redirect has no body: object_store reports a bare redirect.
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(Retry(
                "Error performing HEAD https://b.s3.amazonaws.com/k in 3ms".into(),
                Request("Received redirect without LOCATION, this normally indicates an incorrectly configured region".into()),
            )),
        };
        let (r, shown) = classify(Scheme::S3, &e);
        assert!(
            matches!(r, RemoteError::WrongRegion { region: None, .. }),
            "{shown}"
        );
    }

    #[test]
    fn clock_skew() {
        let body = "<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request time and the current time is too large.</Message><RequestTime>20261205T080000Z</RequestTime><ServerTime>2026-12-05T09:00:00Z</ServerTime><MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds></Error>";
        let (r, shown) = classify(Scheme::S3, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::ClockSkew,
                    ..
                }
            ),
            "{shown}"
        );
        assert!(
            shown.contains("(RequestTimeTooSkewed)") && shown.contains("clock"),
            "{shown}"
        );
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.\nRequestId:1\nTime:2026-12-05T09:00:00Z</Message><AuthenticationErrorDetail>Request date header too old: 'Sat, 05 Dec 2026 08:00:00 GMT'</AuthenticationErrorDetail></Error>";
        let (r, shown) = classify(Scheme::Azure, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::ClockSkew,
                    ..
                }
            ),
            "{shown}"
        );
    }

    #[test]
    fn azure_codes() {
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code><Message>This request is not authorized to perform this operation using this permission.\nRequestId:2\nTime:2026-12-05T09:00:00Z</Message></Error>";
        let (r, shown) = classify(Scheme::Azure, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::Denied,
                    ..
                }
            ),
            "{shown}"
        );
        assert!(!shown.contains("RequestId"), "{shown}");
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthenticationFailed</Code><Message>Server failed to authenticate the request.\nRequestId:3</Message><AuthenticationErrorDetail>The MAC signature found in the HTTP request 'abc' is not the same as any computed signature.</AuthenticationErrorDetail></Error>";
        let (r, _) = classify(Scheme::Azure, &answered("403 Forbidden", body));
        assert!(matches!(
            r,
            RemoteError::Unauthorized {
                problem: AuthProblem::BadCredentials,
                ..
            }
        ));
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ContainerNotFound</Code><Message>The specified container does not exist.\nRequestId:4</Message></Error>";
        let e = answered("404 The specified container does not exist.", body);
        assert_eq!(kind_of(&e), Kind::NoContainer);
        let (r, _) = classify(Scheme::Azure, &e);
        assert!(r.to_string().starts_with("the container of remote"), "{r}");
        // A missing blob stays "absent".
        let body =
            "<Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.</Message></Error>";
        assert_eq!(kind_of(&answered("404 Not Found", body)), Kind::NotFound);
    }

    #[test]
    fn gcs_codes() {
        let body = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AccessDenied</Code><Message>Access denied.</Message><Details>sa@p.iam.gserviceaccount.com does not have storage.objects.create access to the Google Cloud Storage object.</Details></Error>";
        let (r, shown) = classify(Scheme::Gcs, &answered("403 Forbidden", body));
        assert!(
            matches!(
                r,
                RemoteError::Unauthorized {
                    problem: AuthProblem::Denied,
                    ..
                }
            ),
            "{shown}"
        );
        let body = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>AuthenticationRequired</Code><Message>Authentication required.</Message></Error>";
        let (r, _) = classify(Scheme::Gcs, &answered("401 Unauthorized", body));
        assert!(matches!(
            r,
            RemoteError::Unauthorized {
                problem: AuthProblem::BadCredentials,
                ..
            }
        ));
        // A service-account key the token endpoint rejects.
        let e = object_store::Error::Generic {
            store: "GCS",
            source: Box::new(Retry(
                "Error performing token request: Error performing POST https://accounts.google.com/o/oauth2/token in 80ms".into(),
                Request(r#"Server returned non-2xx status code: 400 Bad Request: {"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#.into()),
            )),
        };
        let (r, shown) = classify(Scheme::Gcs, &e);
        assert!(
            matches!(&r, RemoteError::Unauthorized { problem: AuthProblem::BadCredentials, code: Some(c), .. } if c == "invalid_grant"),
            "{shown}"
        );
        // The same failure with nothing configured: no credentials.
        let r = from_store(
            &e,
            "gs://b",
            Scheme::Gcs,
            Credentials::Implicit,
            "check",
            None,
            &[],
        );
        assert_eq!(r.to_string(), "no credentials found for gs remote gs://b");
    }

    #[test]
    fn unsupported_is_read_from_the_status_not_the_text() {
        assert!(is_unsupported(&answered(
            "501 Not Implemented",
            "<Error><Code>NotImplemented</Code></Error>"
        )));
        assert!(is_unsupported(&object_store::Error::NotImplemented {
            operation: "put_opts".into(),
            implementer: "x".into()
        }));
        // A message that merely mentions the words is not a 501.
        let e = answered(
            "400 Bad Request",
            "<Error><Code>InvalidRequest</Code><Message>proxy said 501 Not Implemented</Message></Error>",
        );
        assert!(!is_unsupported(&e));
    }
}
