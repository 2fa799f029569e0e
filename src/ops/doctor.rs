//! `mlv doctor`: what a bug report needs to know about this installation and repository:
//! paths, the cache and its link kinds, and each remote (reachable? credentials found?), with
//! every credential's value left out.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::hash::Digest;
use crate::remote::{Remote, RemoteSettings, Scheme};
use crate::repo::Repo;

/// How long a remote gets to answer one HEAD request.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// What `mlv doctor` found.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// mlv's version.
    pub version: &'static str,
    /// The work-tree root.
    pub root: PathBuf,
    /// The object cache.
    pub cache_dir: PathBuf,
    /// Whether the cache directory exists yet.
    pub cache_exists: bool,
    /// The configured link kinds, tried in order.
    pub link: Vec<String>,
    /// Whether the cache and the work tree are on one file system (hard links and reflinks
    /// need that); `None` when the cache does not exist yet.
    pub same_filesystem: Option<bool>,
    /// The default remote's name.
    pub default_remote: Option<String>,
    /// Each remote.
    pub remotes: Vec<RemoteCheck>,
}

/// One remote.
#[derive(Debug, Serialize)]
pub struct RemoteCheck {
    /// Its name.
    pub name: String,
    /// Its kind (`s3`, `gs`, `azure`, `local`), when its settings parse.
    pub scheme: Option<Scheme>,
    /// Its URL, credentials hidden.
    pub url: String,
    /// Whether one HEAD request was answered within [`PROBE_TIMEOUT`] (`None`: not tried,
    /// because the settings are wrong).
    pub reachable: Option<bool>,
    /// Why it is not usable or not reachable (credentials hidden).
    pub error: Option<String>,
    /// Where credentials were found, by name only (`secret_access_key in config`,
    /// `AWS_ACCESS_KEY_ID`, ...); empty when none were.
    pub credentials: Vec<String>,
}

/// Checks the repository and its remotes; each remote gets one HEAD request on `runtime`.
pub fn run(repo: &Repo, runtime: &tokio::runtime::Handle) -> DoctorReport {
    let cache_dir = repo.cache.root().to_path_buf();
    let cache_meta = cache_dir.metadata().ok();
    let root_dev = repo.root.metadata().ok().map(|m| m.dev());
    let remotes = repo
        .config
        .remote
        .keys()
        .map(|name| check_remote(repo, name, runtime))
        .collect();
    DoctorReport {
        version: env!("CARGO_PKG_VERSION"),
        root: repo.root.clone(),
        cache_exists: cache_meta.is_some(),
        same_filesystem: cache_meta.map(|m| Some(m.dev()) == root_dev),
        cache_dir,
        link: repo
            .config
            .cache
            .link
            .iter()
            .map(|k| format!("{k:?}").to_lowercase())
            .collect(),
        default_remote: repo.config.core.remote.clone(),
        remotes,
    }
}

fn check_remote(repo: &Repo, name: &str, runtime: &tokio::runtime::Handle) -> RemoteCheck {
    let url = repo
        .config
        .remote
        .get(name)
        .and_then(|r| r.url.as_deref())
        .map(crate::remote::redact::redact_url)
        .unwrap_or_default();
    let mut check = RemoteCheck {
        name: name.into(),
        scheme: None,
        url,
        reachable: None,
        error: None,
        credentials: Vec::new(),
    };
    let spec = match super::remotes::spec_of(repo, name) {
        Ok(s) => s,
        Err(e) => {
            check.error = Some(e.to_string());
            return check;
        }
    };
    check.scheme = Some(spec.scheme());
    check.url = spec.redacted_url();
    check.credentials = credentials(&spec);
    // a missing directory answers a HEAD as "no such object": look at the directory instead
    if let crate::remote::Location::Local { path } = spec.location() {
        let is_dir = path.is_dir();
        check.reachable = Some(is_dir);
        if !is_dir {
            check.error = Some(format!("{}: no such directory", path.display()));
        }
        return check;
    }
    let mut settings = RemoteSettings::from_spec(&spec);
    settings.retries = 0;
    settings.connect_timeout = settings.connect_timeout.min(PROBE_TIMEOUT);
    settings.timeout = settings.timeout.min(PROBE_TIMEOUT);
    let remote = match Remote::open(&spec, &settings) {
        Ok(r) => r,
        Err(e) => {
            check.error = Some(e.to_string());
            return check;
        }
    };
    // any object's key will do: a missing object answers as well as a present one
    let probe = Digest::of_bytes(b"mlv doctor");
    let answer =
        runtime.block_on(async { tokio::time::timeout(PROBE_TIMEOUT, remote.contains(&probe)).await });
    match answer {
        Ok(Ok(_)) => check.reachable = Some(true),
        Ok(Err(e)) => {
            check.reachable = Some(false);
            check.error = Some(e.to_string());
        }
        Err(_) => {
            check.reachable = Some(false);
            check.error = Some(format!("no answer within {} s", PROBE_TIMEOUT.as_secs()));
        }
    }
    check
}

/// The environment variables each cloud's SDK reads credentials from.
fn credential_vars(scheme: Scheme) -> &'static [&'static str] {
    match scheme {
        Scheme::Local => &[],
        Scheme::S3 => &[
            "AWS_ACCESS_KEY_ID",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ],
        Scheme::Gcs => &[
            "GOOGLE_APPLICATION_CREDENTIALS",
            "GOOGLE_SERVICE_ACCOUNT",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
        ],
        Scheme::Azure => &[
            "AZURE_STORAGE_ACCOUNT_KEY",
            "AZURE_STORAGE_ACCESS_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "AZURE_CLIENT_SECRET",
            "AZURE_FEDERATED_TOKEN_FILE",
            "AZURE_STORAGE_USE_EMULATOR",
        ],
    }
}

/// Where credentials for `spec` were found, by name: secret options in the config, and the
/// cloud's environment variables. Never a value.
fn credentials(spec: &crate::remote::RemoteSpec) -> Vec<String> {
    let mut out: Vec<String> = spec
        .redacted_options()
        .keys()
        .filter(|k| crate::remote::is_secret(k))
        .map(|k| format!("{k} in config"))
        .collect();
    if spec.redacted_url() != spec.raw_url() {
        out.push("credentials in the URL".into());
    }
    if spec.scheme() == Scheme::S3 {
        if spec.redacted_options().contains_key("profile") {
            out.push("profile in config".into());
        }
        let home = std::env::var_os("HOME").map(PathBuf::from);
        if home.is_some_and(|h| h.join(".aws/credentials").is_file()) {
            out.push("~/.aws/credentials".into());
        }
    }
    for var in credential_vars(spec.scheme()) {
        if std::env::var_os(var).is_some_and(|v| !v.is_empty()) {
            out.push((*var).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_named_never_shown() {
        let options = [
            ("secret_access_key".to_string(), "TOPSECRET".to_string()),
            ("region".to_string(), "eu-west-1".to_string()),
        ]
        .into_iter()
        .collect();
        let spec = crate::remote::RemoteSpec::parse("s3://b/p", options, std::path::Path::new("/")).unwrap();
        let found = credentials(&spec);
        assert_eq!(found[0], "secret_access_key in config");
        assert!(found.iter().all(|f| !f.contains("TOPSECRET")), "{found:?}");
        assert!(credential_vars(Scheme::Local).is_empty());
    }
}
