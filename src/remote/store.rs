//! Opening a remote: a `RemoteSpec` plus settings becomes a backend (an object_store client or a
//! local directory) and a key prefix.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig, StaticCredentialProvider,
};

use crate::hash::Digest;

use super::aws_profile;
use super::backend::{Backend, Cloud};
use super::error::{Credentials, RemoteError};
use super::local::LocalDir;
use super::redact;
use super::spec::{Location, RemoteSpec, Scheme};

const MIB: u64 = 1 << 20;

/// Network and transfer settings. `Default` gives the CLI defaults; `apply_options` lays a
/// remote's generic options (`timeout`, `connect_timeout`, `retries`, `retry_timeout`, `jobs`,
/// and for object stores `multipart_threshold`, `part_size`) on top.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemoteSettings {
    /// Idle timeout of one request: sending a request (at most one part or one small object)
    /// and receiving its response headers must take less, and so must each wait for more
    /// response bytes. Large downloads are not cut off while data keeps coming.
    pub timeout: Duration,
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// How many times a failed request is retried (connection errors, 5xx, timeouts).
    pub retries: usize,
    /// No retry starts later than this after the first attempt of a request.
    pub retry_timeout: Duration,
    /// Concurrent object transfers; `None` means 8 for cloud remotes and 4 for local ones.
    pub jobs: Option<usize>,
    /// Objects at least this large are uploaded in parts, and downloaded in parallel ranges.
    pub multipart_threshold: u64,
    /// Size of each uploaded part (grown for objects that would need more than 10,000 parts)
    /// and of each downloaded range.
    pub part_size: u64,
    /// Upper bound on bytes buffered in memory at once by uploads, and separately by downloads.
    pub memory_budget: u64,
    /// The format a first upload gives a remote that holds nothing yet (no `mlv-remote.toml`,
    /// no format 1 object): 2, or 1 with the remote's `format` option. A format recorded on
    /// the remote always wins.
    pub new_format: u8,
}

impl Default for RemoteSettings {
    fn default() -> Self {
        RemoteSettings {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retries: 3,
            retry_timeout: Duration::from_secs(30),
            jobs: None,
            multipart_threshold: 16 * MIB,
            part_size: 8 * MIB,
            memory_budget: 32 * MIB,
            new_format: 2,
        }
    }
}

impl RemoteSettings {
    /// Defaults overridden by the remote's options.
    pub fn from_spec(spec: &RemoteSpec) -> Self {
        let mut s = RemoteSettings::default();
        s.apply_options(spec);
        s
    }

    /// Overrides fields with the remote's generic options, where set.
    pub fn apply_options(&mut self, spec: &RemoteSpec) {
        let options = spec.options();
        let (generic, part) = (&options.generic, &options.part);
        if let Some(t) = generic.timeout {
            self.timeout = t;
        }
        if let Some(t) = generic.connect_timeout {
            self.connect_timeout = t;
        }
        if let Some(t) = generic.retry_timeout {
            self.retry_timeout = t;
        }
        if let Some(n) = generic.retries {
            self.retries = n;
        }
        if let Some(n) = generic.jobs {
            self.jobs = Some(n.max(1));
        }
        if let Some(f) = generic.format {
            self.new_format = f;
        }
        if let Some(n) = part.multipart_threshold {
            self.multipart_threshold = n;
        }
        if let Some(n) = part.part_size {
            self.part_size = n;
        }
    }

    fn retry_config(&self) -> RetryConfig {
        RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5).min(self.retry_timeout),
                base: 2.0,
            },
            max_retries: self.retries,
            retry_timeout: self.retry_timeout,
        }
    }

    fn client_options(&self, allow_http: bool) -> ClientOptions {
        ClientOptions::new()
            .with_allow_http(allow_http)
            .with_connect_timeout(self.connect_timeout)
            .with_timeout_disabled()
            .with_read_timeout(self.timeout)
    }
}

/// An opened remote.
pub struct Remote {
    backend: Arc<dyn Backend>,
    prefix: Option<ObjectPath>,
    /// Where the objects live (no secrets: bucket, container, directory and prefix).
    location: super::spec::Location,
    display: String,
    scheme: Scheme,
    secrets: Vec<String>,
    settings: RemoteSettings,
    /// Cleared when the store rejects create-only puts (some S3-compatible stores).
    conditional_put: AtomicBool,
    /// `memory_budget` for ranged downloads, in KiB: each part in flight holds 1 MiB of it.
    download_budget: Arc<tokio::sync::Semaphore>,
    /// Whether mlv configured credentials or left them to a metadata/identity service.
    credentials: Credentials,
    /// Set once a listing showed that the bucket or container exists.
    container_seen: AtomicBool,
    /// Format 2 state: the format read from the remote once, the local copy of its index.
    pub(super) packed: super::packed::PackedState,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("remote", &self.display)
            .field("scheme", &self.scheme)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

impl Remote {
    /// Builds the store. Credentials come from the options first, then the cloud's usual
    /// environment variables and files. Does no network I/O.
    pub fn open(spec: &RemoteSpec, settings: &RemoteSettings) -> Result<Remote, RemoteError> {
        let display = spec.to_string();
        let mut secrets = spec.secret_values();
        let mut credentials = Credentials::Given;
        let config_err = |e: object_store::Error, secrets: &[String]| RemoteError::Config {
            remote: display.clone(),
            detail: redact::scrub_error(&e, secrets),
        };
        let (backend, prefix): (Arc<dyn Backend>, &str) = match spec.location() {
            Location::Local { path } => (Arc::new(LocalDir::open(path)?), ""),
            Location::S3 { bucket, prefix } => {
                let (b, found) = s3_builder(spec, bucket, settings, &display, &mut secrets)?;
                if !found && b.get_config_value(&AmazonS3ConfigKey::AccessKeyId).is_none() {
                    credentials = Credentials::Implicit;
                }
                let store = b.build().map_err(|e| config_err(e, &secrets))?;
                (Arc::new(Cloud(Arc::new(store))), prefix.as_str())
            }
            Location::Gcs { bucket, prefix } => {
                let options = spec.options().gcs().cloned().unwrap_or_default();
                let mut b = GoogleCloudStorageBuilder::from_env().with_bucket_name(bucket);
                if let Some(p) = &options.service_account {
                    b = b.with_service_account_path(p);
                }
                if let Some(k) = &options.service_account_key {
                    b = b.with_service_account_key(k.expose());
                }
                let env_http = truthy(std::env::var("GOOGLE_ALLOW_HTTP").ok().as_deref());
                if [
                    GoogleConfigKey::ServiceAccount,
                    GoogleConfigKey::ServiceAccountKey,
                    GoogleConfigKey::ApplicationCredentials,
                ]
                .iter()
                .all(|k| b.get_config_value(k).is_none())
                {
                    credentials = Credentials::Implicit;
                }
                secrets.extend(b.get_config_value(&GoogleConfigKey::ServiceAccountKey));
                let allow_http = options.allow_http.unwrap_or(env_http);
                let b = b
                    .with_client_options(settings.client_options(allow_http))
                    .with_retry(settings.retry_config());
                let store = b.build().map_err(|e| config_err(e, &secrets))?;
                (Arc::new(Cloud(Arc::new(store))), prefix.as_str())
            }
            Location::Azure {
                account,
                container,
                prefix,
            } => {
                let options = spec.options().azure().cloned().unwrap_or_default();
                let mut b = MicrosoftAzureBuilder::from_env().with_container_name(container);
                if let Some(a) = account.as_deref().or(options.account.as_deref()) {
                    b = b.with_account(a);
                } else if b.get_config_value(&AzureConfigKey::AccountName).is_none() {
                    // The Azure CLI's name for it, which object_store does not read.
                    if let Some(a) = env_nonempty("AZURE_STORAGE_ACCOUNT") {
                        b = b.with_account(a);
                    }
                }
                if let Some(k) = &options.access_key {
                    b = b.with_access_key(k.expose());
                } else if b.get_config_value(&AzureConfigKey::AccessKey).is_none() {
                    if let Some(k) = env_nonempty("AZURE_STORAGE_KEY") {
                        b = b.with_access_key(k);
                    }
                }
                if let Some(t) = &options.sas_token {
                    b = b.with_config(AzureConfigKey::SasKey, t.expose().trim_start_matches('?'));
                }
                if let Some(e) = &options.endpoint {
                    b = b.with_endpoint(e.as_str().to_string());
                }
                if let Some(u) = options.use_emulator {
                    b = b.with_use_emulator(u);
                }
                if let Some(e) = b.get_config_value(&AzureConfigKey::Endpoint) {
                    checked_endpoint(&e, &display)?;
                }
                let env_http = b
                    .get_config_value(&AzureConfigKey::Client(ClientConfigKey::AllowHttp))
                    .is_some_and(|v| truthy(Some(&v)));
                let endpoint_http = options
                    .endpoint
                    .as_ref()
                    .is_some_and(|e| e.as_str().starts_with("http://"))
                    || options.use_emulator == Some(true);
                let allow_http = options.allow_http.unwrap_or(env_http || endpoint_http);
                let configured = [
                    AzureConfigKey::AccessKey,
                    AzureConfigKey::SasKey,
                    AzureConfigKey::Token,
                    AzureConfigKey::ClientSecret,
                    AzureConfigKey::FederatedTokenFile,
                ]
                .iter()
                .any(|k| b.get_config_value(k).is_some())
                    || [AzureConfigKey::UseEmulator, AzureConfigKey::UseAzureCli]
                        .iter()
                        .any(|k| truthy(b.get_config_value(k).as_deref()));
                if !configured {
                    credentials = Credentials::Implicit;
                }
                for key in [
                    AzureConfigKey::AccessKey,
                    AzureConfigKey::SasKey,
                    AzureConfigKey::Token,
                ] {
                    secrets.extend(b.get_config_value(&key));
                }
                let b = b
                    .with_client_options(settings.client_options(allow_http))
                    .with_retry(settings.retry_config());
                let store = b.build().map_err(|e| config_err(e, &secrets))?;
                (Arc::new(Cloud(Arc::new(store))), prefix.as_str())
            }
        };
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(ObjectPath::from_iter(prefix.split('/')))
        };
        Ok(Remote {
            backend,
            prefix,
            location: spec.location().clone(),
            display,
            scheme: spec.scheme(),
            secrets,
            settings: settings.clone(),
            conditional_put: AtomicBool::new(true),
            credentials,
            container_seen: AtomicBool::new(false),
            packed: super::packed::PackedState::default(),
            download_budget: Arc::new(tokio::sync::Semaphore::new(super::pool::budget_units(
                settings.memory_budget,
            ) as usize)),
        })
    }

    /// Keeps the local copy of a format 2 remote's index segments in `dir` (they are
    /// immutable and named by their digest, so one directory serves every remote). Without
    /// it, the segments are read from the remote on each use.
    pub fn with_index_cache(mut self, dir: std::path::PathBuf) -> Remote {
        self.packed.index_cache = Some(dir);
        self
    }

    /// The remote's URL, redacted.
    pub fn display_name(&self) -> &str {
        &self.display
    }

    /// The kind of storage.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The settings in force.
    pub fn settings(&self) -> &RemoteSettings {
        &self.settings
    }

    /// The underlying store (keys are relative to the bucket/container, or the local directory).
    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.backend.object_store()
    }

    /// Where the objects are.
    pub(super) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The key prefix every object of this remote lives under (`None`: the root).
    pub(super) fn prefix(&self) -> Option<&ObjectPath> {
        self.prefix.as_ref()
    }

    /// Whether single puts are still sent create-only.
    pub(super) fn create_only_puts(&self) -> bool {
        self.conditional_put.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The store rejected a create-only put: send overwrites from now on (content-addressed
    /// keys make them harmless).
    pub(super) fn stop_create_only_puts(&self) {
        self.conditional_put
            .store(false, std::sync::atomic::Ordering::Relaxed);
    }

    /// The memory budget of ranged downloads (see [`Remote::open`]).
    pub(super) fn download_budget(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.download_budget
    }

    /// A key under the remote's prefix (`rel` is relative to it, `/`-separated).
    pub(super) fn key(&self, rel: &str) -> ObjectPath {
        match &self.prefix {
            Some(p) => ObjectPath::from(format!("{p}/{rel}")),
            None => ObjectPath::from(rel),
        }
    }

    /// The key of an object: `PREFIX/<first two hex>/<64 hex>`.
    pub fn object_key(&self, digest: &Digest) -> ObjectPath {
        let hex = digest.to_string();
        let fan = digest.fanout();
        match &self.prefix {
            Some(p) => p.clone().join(fan).join(hex),
            None => ObjectPath::from_iter([fan, hex]),
        }
    }

    /// The URL of an object, for other tools (`mlv.get_url` in Python, like `dvc.api.get_url`):
    /// `s3://BUCKET/KEY`, `gs://BUCKET/KEY`, `az://CONTAINER/KEY`, or the object file's path
    /// for a local remote. Never holds a secret (built from the location, not the URL given).
    pub fn object_url(&self, digest: &Digest) -> String {
        use super::spec::Location;
        let key = self.object_key(digest);
        match &self.location {
            Location::Local { path } => path
                .join(digest.fanout())
                .join(digest.to_string())
                .display()
                .to_string(),
            Location::S3 { bucket, .. } => format!("s3://{bucket}/{key}"),
            Location::Gcs { bucket, .. } => format!("gs://{bucket}/{key}"),
            Location::Azure { container, .. } => format!("az://{container}/{key}"),
        }
    }

    /// The key prefix of a fan-out directory (`PREFIX/ab`).
    pub(super) fn fanout_key(&self, fanout: &str) -> ObjectPath {
        match &self.prefix {
            Some(p) => p.clone().join(fanout),
            None => ObjectPath::from(fanout),
        }
    }

    /// Concurrent transfers to run.
    pub fn jobs(&self) -> usize {
        self.settings
            .jobs
            .unwrap_or(if self.scheme == Scheme::Local { 4 } else { 8 })
            .max(1)
    }

    pub(super) fn store_error(
        &self,
        e: &object_store::Error,
        op: &'static str,
        key: Option<&ObjectPath>,
    ) -> RemoteError {
        let key = key.map(|k| k.to_string());
        super::error::from_store(
            e,
            &self.display,
            self.scheme,
            self.credentials,
            op,
            key.as_deref(),
            &self.secrets,
        )
    }

    /// The error for a failed body-less request (HEAD): a refusal without a server code is
    /// explained by listing the prefix once, whose answer carries the code
    /// (`SignatureDoesNotMatch`, `AccessDenied`, ...).
    pub(super) async fn explained_error(
        &self,
        e: &object_store::Error,
        op: &'static str,
        key: Option<&ObjectPath>,
    ) -> RemoteError {
        use futures::StreamExt;
        let plain = self.store_error(e, op, key);
        if !matches!(plain, RemoteError::Unauthorized { .. }) || super::error::answer_of(e).code.is_some() {
            return plain;
        }
        match self.backend.list(self.prefix.as_ref()).next().await {
            Some(Err(probe)) if super::error::answer_of(&probe).code.is_some() => {
                self.store_error(&probe, op, key)
            }
            _ => plain,
        }
    }

    /// Makes sure the bucket or container exists before an object is called absent: a HEAD
    /// answer has no body, so a missing bucket looks like a missing object. Lists the prefix
    /// (one request, once per `Remote`, or once per concurrent HEAD the first time): a missing
    /// bucket, a wrong region or an unreachable store is an error; a refused listing (keys that
    /// may read and write but not list) leaves the HEAD's answer standing.
    pub(super) async fn confirm_container(&self) -> Result<(), RemoteError> {
        use futures::StreamExt;
        if self.scheme == Scheme::Local || self.container_seen.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let mut listing = self.backend.list(self.prefix.as_ref());
        if let Some(Err(e)) = listing.next().await {
            use super::error::Kind;
            match super::error::kind_of(&e) {
                Kind::NoContainer | Kind::WrongRegion | Kind::Unreachable => {
                    return Err(self.store_error(&e, "list", self.prefix.as_ref()))
                }
                // Credentials that may read and write but not list (a SAS token without `l`,
                // an IAM role without ListBucket): the HEAD's answer stands.
                Kind::Unauthorized | Kind::NotFound | Kind::AlreadyExists | Kind::Other => {}
            }
        }
        self.container_seen
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

fn missing_half(display: &str, given: &str, missing: &str) -> RemoteError {
    RemoteError::Config {
        remote: display.to_string(),
        detail: format!("option `{given}` is set but `{missing}` is not (set both, or neither)"),
    }
}

/// Refuses an endpoint (from an option or the environment) the HTTP client cannot use.
fn checked_endpoint(endpoint: &str, display: &str) -> Result<(), RemoteError> {
    super::spec::check_endpoint(endpoint).map_err(|reason| RemoteError::Config {
        remote: display.to_string(),
        detail: format!("the endpoint is {reason}"),
    })
}

fn truthy(v: Option<&str>) -> bool {
    matches!(
        v.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("true" | "1" | "yes" | "on")
    )
}

fn env_nonempty(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

/// The S3 builder: options, then an explicit `profile`, then `AWS_*` variables, then the
/// shared credentials/config files (`AWS_PROFILE` or `default`), then object_store's own
/// chain (web identity, container credentials, instance metadata). Also says whether mlv
/// resolved static credentials itself.
fn s3_builder(
    spec: &RemoteSpec,
    bucket: &str,
    settings: &RemoteSettings,
    display: &str,
    secrets: &mut Vec<String>,
) -> Result<(AmazonS3Builder, bool), RemoteError> {
    let options = spec.options().s3().cloned().unwrap_or_default();
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let explicit_keys = options.access_key_id.is_some() || options.secret_access_key.is_some();
    let env_keys = env_nonempty("AWS_ACCESS_KEY_ID").is_some();

    let (profile_name, profile_explicit) = match (&options.profile, env_nonempty("AWS_PROFILE")) {
        (Some(p), _) => (Some(p.clone()), true),
        (None, Some(p)) => (Some(p), true),
        (None, None) => (Some("default".to_string()), false),
    };
    let mut profile = None;
    let wants_profile = options.profile.is_some() || (!explicit_keys && !env_keys);
    if let (true, Some(name)) = (wants_profile, profile_name) {
        let (cred_file, config_file) = aws_profile::default_files();
        match aws_profile::load(&name, cred_file.as_deref(), config_file.as_deref()) {
            Ok(p) => profile = Some((p, profile_explicit)),
            Err(aws_profile::ProfileProblem::NotFound { .. }) if !profile_explicit => {}
            Err(problem) => {
                return Err(RemoteError::Profile {
                    remote: display.to_string(),
                    profile: name,
                    problem,
                })
            }
        }
    }

    // Credentials resolved here are passed as a static provider (so an environment session
    // token is never paired with other keys); otherwise object_store's chain applies.
    let credential = if explicit_keys {
        let key_id = options
            .access_key_id
            .clone()
            .or_else(|| env_nonempty("AWS_ACCESS_KEY_ID"));
        let secret_key = options
            .secret_access_key
            .as_ref()
            .map(|s| s.expose().to_string())
            .or_else(|| env_nonempty("AWS_SECRET_ACCESS_KEY"));
        match (key_id, secret_key) {
            (Some(key_id), Some(secret_key)) => Some(AwsCredential {
                key_id,
                secret_key,
                token: options.session_token.as_ref().map(|s| s.expose().to_string()),
            }),
            (None, _) => return Err(missing_half(display, "secret_access_key", "access_key_id")),
            (_, None) => return Err(missing_half(display, "access_key_id", "secret_access_key")),
        }
    } else {
        profile
            .as_ref()
            .and_then(|(p, _)| match (&p.access_key_id, &p.secret_access_key) {
                (Some(key_id), Some(secret_key)) => Some(AwsCredential {
                    key_id: key_id.clone(),
                    secret_key: secret_key.clone(),
                    token: p.session_token.clone(),
                }),
                _ => None,
            })
    };
    let found = credential.is_some();
    if let Some(c) = credential {
        secrets.push(c.secret_key.clone());
        secrets.extend(c.token.clone());
        b = b.with_credentials(Arc::new(StaticCredentialProvider::new(c)));
    }

    // Region: option > explicit profile > environment > implicit profile > us-east-1.
    let env_region = b.get_config_value(&AmazonS3ConfigKey::Region).is_some();
    let profile_region = profile
        .as_ref()
        .and_then(|(p, explicit)| p.region.clone().filter(|_| *explicit || !env_region));
    if let Some(r) = options.region.clone().or(profile_region) {
        b = b.with_region(r);
    }
    // Endpoint: option > environment > profile's endpoint_url.
    let mut endpoint = options.endpoint.as_ref().map(|e| e.as_str().to_string());
    if endpoint.is_none() && b.get_config_value(&AmazonS3ConfigKey::Endpoint).is_none() {
        endpoint = profile.as_ref().and_then(|(p, _)| p.endpoint_url.clone());
    }
    if let Some(e) = &endpoint {
        b = b.with_endpoint(e);
    }
    if let Some(v) = options.virtual_hosted_style {
        b = b.with_virtual_hosted_style_request(v);
    }
    if let Some(v) = options.path_style {
        b = b.with_virtual_hosted_style_request(!v);
    }
    if let Some(e) = b.get_config_value(&AmazonS3ConfigKey::Endpoint) {
        checked_endpoint(&e, display)?;
    }
    let env_http = b
        .get_config_value(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
        .is_some_and(|v| truthy(Some(&v)));
    let endpoint_http = b
        .get_config_value(&AmazonS3ConfigKey::Endpoint)
        .is_some_and(|e| e.starts_with("http://"));
    let allow_http = options.allow_http.unwrap_or(env_http || endpoint_http);
    for key in [AmazonS3ConfigKey::SecretAccessKey, AmazonS3ConfigKey::Token] {
        secrets.extend(b.get_config_value(&key));
    }
    Ok((
        b.with_client_options(settings.client_options(allow_http))
            .with_retry(settings.retry_config()),
        found,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn spec(url: &str, opts: &[(&str, &str)]) -> RemoteSpec {
        let options: BTreeMap<String, String> =
            opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        RemoteSpec::parse(url, options, std::path::Path::new("/")).unwrap()
    }

    #[test]
    fn options_override_default_settings() {
        let s = RemoteSettings::from_spec(&spec(
            "/x",
            &[
                ("timeout", "2.5"),
                ("connect_timeout", "1"),
                ("retries", "0"),
                ("retry_timeout", "9"),
                ("jobs", "2"),
            ],
        ));
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.connect_timeout, Duration::from_secs(1));
        assert_eq!((s.retries, s.jobs), (0, Some(2)));
        assert_eq!(s.retry_timeout, Duration::from_secs(9));
        let parts = RemoteSettings::from_spec(&spec(
            "s3://b",
            &[("multipart_threshold", "5MiB"), ("part_size", "6M")],
        ));
        assert_eq!((parts.multipart_threshold, parts.part_size), (5 * MIB, 6 * MIB));
        let d = RemoteSettings::default();
        assert_eq!(
            (d.retries, d.timeout, d.connect_timeout),
            (3, Duration::from_secs(30), Duration::from_secs(5))
        );
    }

    #[test]
    fn local_remote_creates_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b");
        let r = Remote::open(&spec(root.to_str().unwrap(), &[]), &RemoteSettings::default()).unwrap();
        assert!(root.is_dir());
        assert_eq!(r.jobs(), 4);
        let d = Digest::of_bytes(b"x");
        assert_eq!(r.object_key(&d).to_string(), format!("{}/{d}", d.fanout()));
    }

    #[test]
    fn cloud_keys_carry_the_prefix_and_debug_hides_secrets() {
        let s = spec(
            "s3://b/team/data",
            &[
                ("access_key_id", "AKID"),
                ("secret_access_key", "very-secret-value"),
                ("region", "eu-west-1"),
            ],
        );
        let r = Remote::open(&s, &RemoteSettings::default()).unwrap();
        let d = Digest::of_bytes(b"x");
        assert_eq!(
            r.object_key(&d).to_string(),
            format!("team/data/{}/{d}", d.fanout())
        );
        assert_eq!(r.jobs(), 8);
        let shown = format!("{r:?} {r}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
        if std::env::var_os("AWS_SECRET_ACCESS_KEY").is_none() {
            let e = Remote::open(
                &spec("s3://b", &[("access_key_id", "AKID")]),
                &RemoteSettings::default(),
            );
            let e = e.unwrap_err().to_string();
            assert!(e.contains("secret_access_key"), "{e}");
        }
    }
}
