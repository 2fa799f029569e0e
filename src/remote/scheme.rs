//! The kinds of storage a remote can live on, and the error for a remote URL or option that
//! cannot be used. A leaf: `spec` (URLs) and `options` (option values) both build on it.

use std::fmt;
use std::str::FromStr;

/// The kind of storage a remote lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// A directory on a local or mounted file system.
    Local,
    /// Amazon S3 or an S3-compatible store (MinIO, Ceph, R2, OSS, ...).
    S3,
    /// Google Cloud Storage.
    Gcs,
    /// Azure Blob Storage (and ADLS Gen2 through its blob endpoint).
    Azure,
}

impl Scheme {
    /// The short name used in messages and `validate_key`.
    pub fn name(self) -> &'static str {
        match self {
            Scheme::Local => "local",
            Scheme::S3 => "s3",
            Scheme::Gcs => "gs",
            Scheme::Azure => "azure",
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scheme {
    type Err = SpecError;

    /// Accepts the URL schemes (`s3`, `gs`, `az`, `abfs`, `file`, ...) and the names above.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        match s.to_ascii_lowercase().as_str() {
            "local" | "file" => Ok(Scheme::Local),
            "s3" => Ok(Scheme::S3),
            "gs" | "gcs" => Ok(Scheme::Gcs),
            "az" | "azure" | "abfs" | "abfss" | "https" => Ok(Scheme::Azure),
            _ => Err(SpecError::UnsupportedScheme {
                scheme: s.chars().take(40).collect(),
            }),
        }
    }
}

/// A remote URL or option that cannot be used. Messages show URLs redacted.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The URL scheme is not one mlv knows.
    #[error("unsupported remote URL scheme `{scheme}` (expected a path, file://, s3://, gs://, az://, abfs:// or https://ACCOUNT.blob.core.windows.net/...)")]
    UnsupportedScheme {
        /// The scheme as written.
        scheme: String,
    },
    /// The URL does not have the expected shape.
    #[error("invalid remote URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL, redacted.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// An option key that the scheme does not know.
    #[error("unknown option `{key}` for a {scheme} remote (valid options: {valid})")]
    UnknownOption {
        /// The key as written.
        key: String,
        /// The remote's scheme.
        scheme: Scheme,
        /// Valid keys, comma-separated.
        valid: String,
    },
    /// An option value of the wrong shape.
    #[error("invalid value for option `{key}`: {reason}")]
    InvalidValue {
        /// The key.
        key: String,
        /// What is wrong (never echoes secret values).
        reason: String,
    },
    /// URL and options, or two options, disagree.
    #[error("conflicting remote settings: {what}")]
    Conflict {
        /// What disagrees.
        what: String,
    },
}
