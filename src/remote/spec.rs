//! Remote URLs and options: what a user writes in `mlv remote add NAME URL` and
//! `mlv remote modify NAME KEY VALUE`, parsed into a backend description.
//!
//! Nothing here talks to the network or reads credentials; `store.rs` does that.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use url::Url;

use super::options::RemoteOptions;
pub use super::options::{check_endpoint, is_secret, secret_keys, validate_key, validate_option};
use super::redact;
pub use super::scheme::{Scheme, SpecError};

/// Why the value of option `key` must not be stored in the committed config, if it must not:
/// a secret key, or any value that carries a credential (a URL's `user:password@`, a query
/// string such as a SAS token or a presigned signature, a `sig=`/`token=` parameter, a PEM key).
/// `key` `url` is the remote's URL. The reason never quotes the value.
pub fn committed_secret(key: &str, value: &str) -> Option<String> {
    if is_secret(key) {
        return Some(format!("`{key}` is a secret"));
    }
    let v = value.trim();
    // abfs[s]://CONTAINER@ACCOUNT...: the user-info part is the container (a password or a
    // query string is still refused below).
    let abfs_container = key == "url"
        && v.to_ascii_lowercase().starts_with("abfs")
        && Url::parse(v).is_ok_and(|u| u.password().is_none() && u.query().is_none());
    let lower = v.to_ascii_lowercase();
    let token_param = SECRET_PARAMS.iter().any(|p| {
        lower
            .match_indices(p)
            .any(|(i, _)| !lower[..i].ends_with(|c: char| c.is_ascii_alphanumeric()))
    });
    let leaky = !abfs_container && (redact::scrub(v, &[]) != v || token_param);
    leaky.then(|| match key {
        "url" => "the URL holds credentials or a query string".to_string(),
        _ => format!("the value of `{key}` holds credentials (a password, token or query string)"),
    })
}

/// `name=value` parameters that carry credentials in a value that is not a URL (in a URL, any
/// query string is refused).
const SECRET_PARAMS: &[&str] = &[
    "token=",
    "sig=",
    "signature=",
    "password=",
    "secret=",
    "key=",
    "credential=",
];

/// Where a remote's objects live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A directory (absolute).
    Local {
        /// The directory holding the fan-out directories.
        path: PathBuf,
    },
    /// An S3 bucket.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// A GCS bucket.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix without leading or trailing `/` (may be empty).
        prefix: String,
    },
    /// An Azure blob container.
    Azure {
        /// Storage account, when the URL names it (else the `account` option or the environment).
        account: Option<String>,
        /// Container name.
        container: String,
        /// Blob name prefix without leading or trailing `/` (may be empty).
        prefix: String,
    },
}

impl Location {
    /// The scheme of this location.
    pub fn scheme(&self) -> Scheme {
        match self {
            Location::Local { .. } => Scheme::Local,
            Location::S3 { .. } => Scheme::S3,
            Location::Gcs { .. } => Scheme::Gcs,
            Location::Azure { .. } => Scheme::Azure,
        }
    }

    /// The key prefix inside the bucket/container ("" for local: the directory is the root).
    pub fn prefix(&self) -> &str {
        match self {
            Location::Local { .. } => "",
            Location::S3 { prefix, .. } | Location::Gcs { prefix, .. } | Location::Azure { prefix, .. } => {
                prefix
            }
        }
    }
}

/// A parsed remote: URL plus options. `Display` and `Debug` never show secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteSpec {
    url: String,
    location: Location,
    /// The options as written, redacted (what `redacted_options` shows).
    written: BTreeMap<String, String>,
    /// The same options, parsed.
    options: RemoteOptions,
}

impl RemoteSpec {
    /// Parses `url` with `options`. A relative local path is resolved against `base_dir`
    /// (the repository root). Unknown option keys and malformed values are errors.
    pub fn parse(url: &str, options: BTreeMap<String, String>, base_dir: &Path) -> Result<Self, SpecError> {
        let location = parse_location(url, base_dir)?;
        let typed = RemoteOptions::parse(location.scheme(), &options)?;
        if let Location::Azure { account: Some(a), .. } = &location {
            if let Some(opt) = typed.azure().and_then(|o| o.account.as_ref()) {
                if opt != a {
                    return Err(SpecError::Conflict {
                        what: format!("the URL names account `{a}` but option `account` is `{opt}`"),
                    });
                }
            }
        }
        if let Some((Some(ps), Some(vh))) = typed.s3().map(|o| (o.path_style, o.virtual_hosted_style)) {
            if ps == vh {
                return Err(SpecError::Conflict {
                    what: "options `path_style` and `virtual_hosted_style` contradict each other".into(),
                });
            }
        }
        Ok(RemoteSpec {
            url: url.to_string(),
            location,
            written: redacted(options),
            options: typed,
        })
    }

    /// The URL as given (may hold secrets; do not print it: use `Display` or `redacted_url`).
    pub fn raw_url(&self) -> &str {
        &self.url
    }

    /// The URL with user info and query string hidden.
    pub fn redacted_url(&self) -> String {
        // In abfs[s]://CONTAINER@ACCOUNT.dfs.core.windows.net the user-info part is the
        // container, not a credential (`parse` refuses passwords and query strings).
        if self.url.trim_start().to_ascii_lowercase().starts_with("abfs") {
            return self.url.clone();
        }
        redact::redact_url(&self.url)
    }

    /// Where the objects live.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.location.scheme()
    }

    /// The options, typed (secrets are `Secret`s).
    pub fn options(&self) -> &RemoteOptions {
        &self.options
    }

    /// The values of secret options, for scrubbing error text.
    pub(crate) fn secret_values(&self) -> Vec<String> {
        self.options
            .secrets()
            .into_iter()
            .map(|s| s.expose().to_string())
            .collect()
    }

    /// The options with secret values replaced by `***`, and credentials in URL-valued
    /// options (an endpoint's `user:password@`) hidden.
    pub fn redacted_options(&self) -> BTreeMap<String, String> {
        self.written.clone()
    }
}

/// The options with secret values replaced by `***` and credentials in URL-valued options
/// hidden: what `RemoteSpec` keeps as written (the secrets themselves live only in `Secret`s).
fn redacted(options: BTreeMap<String, String>) -> BTreeMap<String, String> {
    options
        .into_iter()
        .map(|(k, v)| {
            let shown = if is_secret(&k) {
                redact::MASK.to_string()
            } else {
                redact::redact_url(&v)
            };
            (k, shown)
        })
        .collect()
}

impl fmt::Display for RemoteSpec {
    /// The redacted URL only (options are shown with `redacted_options`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted_url())
    }
}

impl fmt::Debug for RemoteSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSpec")
            .field("url", &self.redacted_url())
            .field("location", &self.location)
            .field("options", &self.redacted_options())
            .finish()
    }
}

fn invalid(url: &str, reason: impl Into<String>) -> SpecError {
    SpecError::InvalidUrl {
        url: redact::redact_url(url),
        reason: reason.into(),
    }
}

fn parse_location(url: &str, base_dir: &Path) -> Result<Location, SpecError> {
    let url = url.trim();
    if url.is_empty() {
        return Err(invalid(url, "it is empty"));
    }
    if !url.contains("://") {
        // A plain path (absolute, or relative to the repository root).
        let p = Path::new(url);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            base_dir.join(p)
        };
        return Ok(Location::Local { path });
    }
    // The URL parser folds `.` and `..` away; refuse them rather than guess.
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path_part = after_scheme.split(['?', '#']).next().unwrap_or_default();
    if path_part.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(invalid(url, "the path has a `.` or `..` segment"));
    }
    let parsed = Url::parse(url).map_err(|e| invalid(url, e.to_string()))?;
    let abfs = matches!(parsed.scheme(), "abfs" | "abfss");
    if (!parsed.username().is_empty() && !abfs) || parsed.password().is_some() {
        return Err(invalid(
            url,
            "credentials in the URL are not allowed; set them with `mlv remote modify NAME KEY VALUE --local` or the environment",
        ));
    }
    if parsed.query().is_some() {
        return Err(invalid(
            url,
            "a query string is not allowed (a SAS token goes in the `sas_token` option, in the local config)",
        ));
    }
    if parsed.fragment().is_some() {
        return Err(invalid(url, "a `#fragment` is not allowed"));
    }
    let scheme = parsed.scheme().to_ascii_lowercase();
    match scheme.as_str() {
        "file" => {
            if parsed
                .host_str()
                .is_some_and(|h| !h.is_empty() && h != "localhost")
            {
                return Err(invalid(
                    url,
                    "file:// URLs must name a local path (file:///abs/path)",
                ));
            }
            let path = parsed
                .to_file_path()
                .map_err(|_| invalid(url, "not a local path"))?;
            Ok(Location::Local { path })
        }
        "s3" | "gs" => {
            let bucket = parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| invalid(url, "missing bucket name"))?
                .to_string();
            if parsed.port().is_some() {
                return Err(invalid(
                    url,
                    "a port is not allowed here (use the `endpoint` option)",
                ));
            }
            let prefix = clean_prefix(url, parsed.path())?;
            Ok(if scheme == "s3" {
                Location::S3 { bucket, prefix }
            } else {
                Location::Gcs { bucket, prefix }
            })
        }
        "az" | "azure" => {
            let container = parsed
                .host_str()
                .filter(|h| !h.is_empty())
                .ok_or_else(|| invalid(url, "missing container name"))?
                .to_string();
            let prefix = clean_prefix(url, parsed.path())?;
            Ok(Location::Azure {
                account: None,
                container,
                prefix,
            })
        }
        "abfs" | "abfss" => {
            let host = parsed.host_str().unwrap_or_default();
            let prefix = clean_prefix(url, parsed.path())?;
            if parsed.username().is_empty() {
                // abfs://container/prefix (fsspec style)
                if host.is_empty() {
                    return Err(invalid(url, "missing container name"));
                }
                return Ok(Location::Azure {
                    account: None,
                    container: host.to_string(),
                    prefix,
                });
            }
            let account = host
                .strip_suffix(".dfs.core.windows.net")
                .or_else(|| host.strip_suffix(".blob.core.windows.net"))
                .filter(|a| !a.is_empty() && !a.contains('.'))
                .ok_or_else(|| {
                    invalid(
                        url,
                        "expected abfs://CONTAINER@ACCOUNT.dfs.core.windows.net/PREFIX",
                    )
                })?;
            Ok(Location::Azure {
                account: Some(account.to_string()),
                container: parsed.username().to_string(),
                prefix,
            })
        }
        "https" | "http" => {
            let host = parsed.host_str().unwrap_or_default();
            let account = host
                .strip_suffix(".blob.core.windows.net")
                .or_else(|| host.strip_suffix(".dfs.core.windows.net"))
                .filter(|a| !a.is_empty() && !a.contains('.'))
                .ok_or_else(|| {
                    invalid(
                        url,
                        "only Azure blob URLs (https://ACCOUNT.blob.core.windows.net/CONTAINER/PREFIX) are \
                         supported over https; for an S3-compatible store use s3://BUCKET/PREFIX with the \
                         `endpoint` option",
                    )
                })?;
            let path = parsed.path().trim_start_matches('/');
            let (container, rest) = path.split_once('/').unwrap_or((path, ""));
            if container.is_empty() {
                return Err(invalid(url, "missing container name"));
            }
            let prefix = clean_prefix(url, rest)?;
            Ok(Location::Azure {
                account: Some(account.to_string()),
                container: container.to_string(),
                prefix,
            })
        }
        other => Err(SpecError::UnsupportedScheme {
            scheme: other.chars().take(40).collect(),
        }),
    }
}

/// Normalizes a key prefix: no leading/trailing `/`, no empty, `.` or `..` segments, decoded.
fn clean_prefix(url: &str, path: &str) -> Result<String, SpecError> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| invalid(url, "the path is not UTF-8"))?;
    let trimmed = decoded.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for seg in trimmed.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return Err(invalid(url, "the path has an empty, `.` or `..` segment"));
        }
    }
    Ok(trimmed.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::options::parse_size;
    use std::time::Duration;

    fn parse(url: &str) -> Result<RemoteSpec, SpecError> {
        RemoteSpec::parse(url, BTreeMap::new(), Path::new("/repo"))
    }

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn local_paths() {
        assert_eq!(
            parse("../store").unwrap().location(),
            &Location::Local {
                path: PathBuf::from("/repo/../store")
            }
        );
        assert_eq!(
            parse("/mnt/nas/mlv").unwrap().location(),
            &Location::Local {
                path: PathBuf::from("/mnt/nas/mlv")
            }
        );
        assert_eq!(
            parse("file:///mnt/nas/my%20store").unwrap().location(),
            &Location::Local {
                path: PathBuf::from("/mnt/nas/my store")
            }
        );
        assert!(parse("file://otherhost/x").is_err());
    }

    #[test]
    fn cloud_urls() {
        assert_eq!(
            parse("s3://bucket/team/data/").unwrap().location(),
            &Location::S3 {
                bucket: "bucket".into(),
                prefix: "team/data".into()
            }
        );
        assert_eq!(
            parse("gs://b").unwrap().location(),
            &Location::Gcs {
                bucket: "b".into(),
                prefix: "".into()
            }
        );
        let az = |account: Option<&str>, container: &str, prefix: &str| Location::Azure {
            account: account.map(String::from),
            container: container.into(),
            prefix: prefix.into(),
        };
        assert_eq!(parse("az://c/p/q").unwrap().location(), &az(None, "c", "p/q"));
        assert_eq!(parse("abfs://c/p").unwrap().location(), &az(None, "c", "p"));
        assert_eq!(
            parse("abfss://c@acct.dfs.core.windows.net/p").unwrap().location(),
            &az(Some("acct"), "c", "p")
        );
        assert_eq!(
            parse("https://acct.blob.core.windows.net/c/deep/p")
                .unwrap()
                .location(),
            &az(Some("acct"), "c", "deep/p")
        );
    }

    #[test]
    fn rejects_bad_urls_without_leaking() {
        let e = parse("s3://AKIDEXAMPLE:wJalrXUtnFEMI@bucket/x")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("wJalrXUtnFEMI") && !e.contains("AKIDEXAMPLE"), "{e}");
        let e = parse("https://acct.blob.core.windows.net/c/p?sv=2022&sig=SECRETSIG")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRETSIG"), "{e}");
        assert!(e.contains("sas_token"), "{e}");
        assert!(matches!(
            parse("ftp://x/y"),
            Err(SpecError::UnsupportedScheme { .. })
        ));
        assert!(parse("https://example.com/bucket").is_err());
        assert!(parse("s3:///nobucket").is_err());
        assert!(parse("s3://b/a/../c").is_err());
        assert!(parse("s3://b/a//c").is_err());
    }

    #[test]
    fn options_are_checked_per_scheme() {
        let base = Path::new("/repo");
        let ok = RemoteSpec::parse(
            "s3://b/p",
            opts(&[
                ("endpoint", "http://127.0.0.1:9000"),
                ("path_style", "true"),
                ("timeout", "10"),
            ]),
            base,
        )
        .unwrap();
        assert_eq!(ok.options().generic.timeout, Some(Duration::from_secs(10)));
        let e = RemoteSpec::parse("gs://b/p", opts(&[("region", "eu")]), base)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`region`") && e.contains("service_account"), "{e}");
        let e = RemoteSpec::parse("/x", opts(&[("retries", "many")]), base).unwrap_err();
        assert!(matches!(e, SpecError::InvalidValue { .. }));
        assert!(RemoteSpec::parse("/x", opts(&[("jobs", "0")]), base).is_err());
        assert!(RemoteSpec::parse(
            "s3://b",
            opts(&[("path_style", "true"), ("virtual_hosted_style", "true")]),
            base
        )
        .is_err());
        assert!(validate_key(Scheme::Azure, "sas_token").is_ok());
        assert!(validate_key(Scheme::Local, "endpoint").is_err());
        for bad in ["http://[secret", "ftp://host", "not a url", "http://"] {
            let e = validate_option(Scheme::S3, "endpoint", bad)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("secret") && e.contains("endpoint"), "{e}");
        }
        assert!(validate_option(Scheme::S3, "endpoint", "http://u:p@127.0.0.1:9000").is_ok());
        assert!(is_secret("secret_access_key") && !is_secret("region"));
    }

    #[test]
    fn committed_secrets_are_found_in_any_value() {
        for (key, value) in [
            ("secret_access_key", "x"),
            ("endpoint", "http://user:pw@127.0.0.1:9000"),
            ("endpoint", "http://user@127.0.0.1:9000"),
            ("endpoint", "https://h/?X-Amz-Signature=abc"),
            ("endpoint", "https://acct.blob.core.windows.net/?sv=1&sig=abc"),
            ("account", "acct?token=abc"),
            ("profile", "sig=abc"),
            ("url", "abfss://c:pw@acct.dfs.core.windows.net/p"),
            ("url", "s3://b/p?x=1"),
        ] {
            let why = committed_secret(key, value).unwrap_or_else(|| panic!("{key} = {value}"));
            assert!(!why.contains("abc") && !why.contains("pw"), "{why}");
        }
        for (key, value) in [
            ("endpoint", "http://127.0.0.1:9000"),
            ("endpoint", "https://ACCOUNT_ID.r2.cloudflarestorage.com"),
            ("region", "eu-west-1"),
            ("account", "mystorageacct"),
            ("access_key_id", "AKIDEXAMPLE"),
            ("service_account", "/home/me/keys/monkey=1.json"),
            ("url", "abfss://c@acct.dfs.core.windows.net/p"),
            ("url", "/mnt/user@nas/store"),
            ("url", "https://acct.blob.core.windows.net/c/p"),
        ] {
            assert_eq!(committed_secret(key, value), None, "{key} = {value}");
        }
    }

    #[test]
    fn sizes() {
        const MIB: u64 = 1 << 20;
        assert_eq!(parse_size("part_size", "8MiB").unwrap(), 8 * MIB);
        assert_eq!(parse_size("part_size", " 5 M ").unwrap(), 5 * MIB);
        assert_eq!(parse_size("part_size", "6144k").unwrap(), 6 * MIB);
        assert_eq!(parse_size("part_size", "1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("part_size", "16777216").unwrap(), 16 * MIB);
        for bad in [
            "4MiB",
            "6GiB",
            "8MB",
            "8.5MiB",
            "-8M",
            "MiB",
            "",
            "99999999999999999999G",
        ] {
            let e = parse_size("part_size", bad).unwrap_err().to_string();
            assert!(e.contains("part_size") && e.contains("5MiB"), "{bad}: {e}");
        }
        assert!(validate_option(Scheme::S3, "multipart_threshold", "64M").is_ok());
        assert!(validate_option(Scheme::Gcs, "part_size", "1k").is_err());
        assert!(validate_key(Scheme::Azure, "part_size").is_ok());
        assert!(validate_key(Scheme::Local, "part_size").is_err());
    }

    #[test]
    fn abfs_container_is_shown() {
        let url = "abfss://c@acct.dfs.core.windows.net/p";
        assert_eq!(parse(url).unwrap().redacted_url(), url);
        let e = parse("abfss://c:SECRETPW@acct.dfs.core.windows.net/p")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("SECRETPW"), "{e}");
    }

    #[test]
    fn display_and_debug_hide_secrets() {
        let spec = RemoteSpec::parse(
            "s3://b/p",
            opts(&[("secret_access_key", "TOPSECRET"), ("region", "eu-west-1")]),
            Path::new("/"),
        )
        .unwrap();
        let shown = format!("{spec} {spec:?} {:?}", spec.redacted_options());
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("eu-west-1"));
    }
}
