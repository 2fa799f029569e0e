//! Typed remote options: one struct per group of keys (generic, multipart, and one per backend),
//! parsed once from the strings a user writes with `mlv remote modify NAME KEY VALUE`.
//!
//! Each field is declared once, in the `options!` invocations below. Which keys a scheme
//! accepts, and which keys hold secrets, are derived from those declarations: a field whose
//! type is [`Secret`] is a secret, and a [`Secret`] never shows its value in `Debug`,
//! `Display` or `Serialize`.
//!
//! The config files still store strings; parse errors are the same `SpecError`s (same
//! messages) as before the options had types. Serde's own derive is not used for that step:
//! its `deny_unknown_fields` and type errors have fixed wording, and the values need mlv's
//! parsers (`8MiB`, `2.5s`, `yes`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use super::redact;
use super::scheme::{Scheme, SpecError};
use url::Url;

/// A credential (a secret key, a SAS token, a service-account key). `Debug`, `Display` and
/// `Serialize` show `<redacted>`; [`Secret::expose`] is the one way to read the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// What `Debug`, `Display` and `Serialize` show instead of the value.
    pub const SHOWN: &'static str = "<redacted>";

    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, to hand to a client. Never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::SHOWN)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(Self::SHOWN)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(Self::SHOWN)
    }
}

/// An `http://` or `https://` service URL. It may carry `user:password@`, so `Debug` and
/// `Serialize` hide credentials; [`Endpoint::as_str`] gives the URL as written.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint(String);

impl Endpoint {
    /// The URL as written, to hand to a client. Print it with `Debug` instead.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact::redact_url(&self.0), f)
    }
}

impl serde::Serialize for Endpoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&redact::redact_url(&self.0))
    }
}

/// The type of an option field: whether it is a secret, and the secret if so.
pub trait OptionValue {
    /// Whether values of this type are credentials.
    const SECRET: bool = false;

    /// The credential, for scrubbing error text.
    fn secret(&self) -> Option<&Secret> {
        None
    }
}

impl OptionValue for Duration {}
impl OptionValue for usize {}
impl OptionValue for u64 {}
impl OptionValue for u8 {}
impl OptionValue for bool {}
impl OptionValue for String {}
impl OptionValue for Endpoint {}
impl OptionValue for Secret {
    const SECRET: bool = true;

    fn secret(&self) -> Option<&Secret> {
        Some(self)
    }
}

/// One option key: its name, whether it holds a secret, and the check of its value.
#[derive(Clone, Copy)]
pub struct Field {
    /// The key as written in the config.
    pub key: &'static str,
    /// Whether the value is a credential (the field's type is [`Secret`]).
    pub secret: bool,
    check: fn(&str, &str) -> Result<(), SpecError>,
}

impl Field {
    /// Checks the shape of a value for this key.
    pub fn check(&self, value: &str) -> Result<(), SpecError> {
        (self.check)(self.key, value)
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Field")
            .field("key", &self.key)
            .field("secret", &self.secret)
            .finish()
    }
}

/// Declares an options struct: each field once, with its type and its parser
/// (`fn(key, value) -> Result<T, SpecError>`). Generates the struct (all fields optional),
/// its `FIELDS` table and `from_map`.
macro_rules! options {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$fmeta:meta])* $field:ident: $ty:ty = $parse:expr, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            $( $(#[$fmeta])* pub $field: Option<$ty>, )*
        }

        impl $name {
            /// The keys of this group, in declaration order.
            pub const FIELDS: &'static [Field] = &[$(
                Field {
                    key: stringify!($field),
                    secret: <$ty as OptionValue>::SECRET,
                    check: |key, value| ($parse)(key, value).map(|_: $ty| ()),
                },
            )*];

            /// The values of this group's keys present in `map` (other keys are ignored).
            fn from_map(map: &BTreeMap<String, String>) -> Result<Self, SpecError> {
                Ok($name {$(
                    $field: match map.get(stringify!($field)) {
                        Some(value) => Some(($parse)(stringify!($field), value.as_str())?),
                        None => None,
                    },
                )*})
            }

            /// The credentials set in this group.
            fn secrets(&self) -> Vec<&Secret> {
                let mut out = Vec::new();
                $( out.extend(self.$field.as_ref().and_then(OptionValue::secret)); )*
                out
            }
        }
    };
}

fn seconds(key: &str, value: &str) -> Result<Duration, SpecError> {
    parse_seconds(key, value)
}

fn count_from_0(key: &str, value: &str) -> Result<usize, SpecError> {
    parse_count(key, value, 0)
}

fn count_from_1(key: &str, value: &str) -> Result<usize, SpecError> {
    parse_count(key, value, 1)
}

fn size(key: &str, value: &str) -> Result<u64, SpecError> {
    parse_size(key, value)
}

fn boolean(key: &str, value: &str) -> Result<bool, SpecError> {
    parse_bool(key, value)
}

/// A remote format number a new remote may be given: 1 or 2.
fn remote_format(key: &str, value: &str) -> Result<u8, SpecError> {
    match value.trim() {
        "1" => Ok(1),
        "2" => Ok(2),
        _ => Err(SpecError::InvalidValue {
            key: key.into(),
            reason: "expected 1 or 2 (the remote format a first push initialises)".into(),
        }),
    }
}

fn text(_key: &str, value: &str) -> Result<String, SpecError> {
    Ok(value.to_string())
}

fn secret(_key: &str, value: &str) -> Result<Secret, SpecError> {
    Ok(Secret::new(value))
}

fn endpoint(key: &str, value: &str) -> Result<Endpoint, SpecError> {
    check_endpoint(value).map_err(|reason| SpecError::InvalidValue {
        key: key.into(),
        reason: reason.into(),
    })?;
    Ok(Endpoint(value.to_string()))
}

options! {
    /// Options every remote accepts.
    GenericOptions {
        /// Time allowed to establish a connection.
        connect_timeout: Duration = seconds,
        /// The format a first push gives an empty remote (1 or 2); the format recorded on the
        /// remote always wins.
        format: u8 = remote_format,
        /// Concurrent object transfers.
        jobs: usize = count_from_1,
        /// How many times a failed request is retried.
        retries: usize = count_from_0,
        /// No retry starts later than this after the first attempt.
        retry_timeout: Duration = seconds,
        /// Idle timeout of one request.
        timeout: Duration = seconds,
    }
}

options! {
    /// Options of the object stores: how large objects are split for uploads and downloads.
    PartOptions {
        /// Objects at least this large are transferred in parts.
        multipart_threshold: u64 = size,
        /// Size of each part.
        part_size: u64 = size,
    }
}

options! {
    /// Options of an S3 (or S3-compatible) remote.
    S3Options {
        /// `AWS_ACCESS_KEY_ID`.
        access_key_id: String = text,
        /// Whether plain `http://` is allowed.
        allow_http: bool = boolean,
        /// The service URL (an S3-compatible store).
        endpoint: Endpoint = endpoint,
        /// Path-style requests (`endpoint/bucket/key`).
        path_style: bool = boolean,
        /// A profile of the AWS shared credentials and config files.
        profile: String = text,
        /// The region.
        region: String = text,
        /// `AWS_SECRET_ACCESS_KEY`.
        secret_access_key: Secret = secret,
        /// `AWS_SESSION_TOKEN`.
        session_token: Secret = secret,
        /// Virtual-hosted-style requests (`bucket.endpoint/key`).
        virtual_hosted_style: bool = boolean,
    }
}

options! {
    /// Options of a Google Cloud Storage remote.
    GcsOptions {
        /// Whether plain `http://` is allowed.
        allow_http: bool = boolean,
        /// The path of a service-account JSON file.
        service_account: String = text,
        /// A service-account JSON key itself.
        service_account_key: Secret = secret,
    }
}

options! {
    /// Options of an Azure Blob Storage remote.
    AzureOptions {
        /// The storage account key.
        access_key: Secret = secret,
        /// The storage account (when the URL does not name it).
        account: String = text,
        /// Whether plain `http://` is allowed.
        allow_http: bool = boolean,
        /// The service URL (an emulator or a sovereign cloud).
        endpoint: Endpoint = endpoint,
        /// A shared access signature.
        sas_token: Secret = secret,
        /// Use the Azurite emulator's well-known account.
        use_emulator: bool = boolean,
    }
}

/// The options specific to one backend.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendOptions {
    /// A local directory has no options of its own.
    Local,
    /// S3.
    S3(S3Options),
    /// GCS.
    Gcs(GcsOptions),
    /// Azure.
    Azure(AzureOptions),
}

/// All options of one remote, typed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RemoteOptions {
    /// Timeouts, retries, jobs.
    pub generic: GenericOptions,
    /// Part sizes (all default for a local remote, which has no such keys).
    pub part: PartOptions,
    /// The backend's own options.
    pub backend: BackendOptions,
}

impl RemoteOptions {
    /// Parses the options of a `scheme` remote. Every key must be one of `scheme`'s and every
    /// value well formed; keys are checked in order, so the first bad one is reported.
    pub fn parse(scheme: Scheme, map: &BTreeMap<String, String>) -> Result<Self, SpecError> {
        for (key, value) in map {
            validate_option(scheme, key, value)?;
        }
        let backend = match scheme {
            Scheme::Local => BackendOptions::Local,
            Scheme::S3 => BackendOptions::S3(S3Options::from_map(map)?),
            Scheme::Gcs => BackendOptions::Gcs(GcsOptions::from_map(map)?),
            Scheme::Azure => BackendOptions::Azure(AzureOptions::from_map(map)?),
        };
        Ok(RemoteOptions {
            generic: GenericOptions::from_map(map)?,
            part: PartOptions::from_map(map)?,
            backend,
        })
    }

    /// The S3 options, if this is an S3 remote.
    pub fn s3(&self) -> Option<&S3Options> {
        match &self.backend {
            BackendOptions::S3(o) => Some(o),
            _ => None,
        }
    }

    /// The GCS options, if this is a GCS remote.
    pub fn gcs(&self) -> Option<&GcsOptions> {
        match &self.backend {
            BackendOptions::Gcs(o) => Some(o),
            _ => None,
        }
    }

    /// The Azure options, if this is an Azure remote.
    pub fn azure(&self) -> Option<&AzureOptions> {
        match &self.backend {
            BackendOptions::Azure(o) => Some(o),
            _ => None,
        }
    }

    /// The credentials set, for scrubbing error text.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out = self.generic.secrets();
        out.extend(self.part.secrets());
        match &self.backend {
            BackendOptions::Local => {}
            BackendOptions::S3(o) => out.extend(o.secrets()),
            BackendOptions::Gcs(o) => out.extend(o.secrets()),
            BackendOptions::Azure(o) => out.extend(o.secrets()),
        }
        out
    }
}

/// The option keys of `scheme`, by group.
fn groups(scheme: Scheme) -> [&'static [Field]; 3] {
    let (specific, parts): (&[Field], &[Field]) = match scheme {
        Scheme::Local => (&[], &[]),
        Scheme::S3 => (S3Options::FIELDS, PartOptions::FIELDS),
        Scheme::Gcs => (GcsOptions::FIELDS, PartOptions::FIELDS),
        Scheme::Azure => (AzureOptions::FIELDS, PartOptions::FIELDS),
    };
    [GenericOptions::FIELDS, specific, parts]
}

/// The option key `key` of `scheme`, if it has one.
pub fn field(scheme: Scheme, key: &str) -> Option<Field> {
    groups(scheme)
        .into_iter()
        .flatten()
        .find(|f| f.key == key)
        .copied()
}

/// The option keys valid for `scheme` (generic ones included), sorted.
pub fn valid_keys(scheme: Scheme) -> Vec<&'static str> {
    let mut keys: Vec<&str> = groups(scheme).into_iter().flatten().map(|f| f.key).collect();
    keys.sort_unstable();
    keys
}

/// The option keys that hold secrets (any scheme), sorted.
pub fn secret_keys() -> &'static [&'static str] {
    static KEYS: OnceLock<Vec<&'static str>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut keys: Vec<&str> = [Scheme::Local, Scheme::S3, Scheme::Gcs, Scheme::Azure]
            .into_iter()
            .flat_map(groups)
            .flatten()
            .filter(|f| f.secret)
            .map(|f| f.key)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    })
}

/// Whether an option key holds a secret.
pub fn is_secret(key: &str) -> bool {
    secret_keys().contains(&key)
}

/// Checks that `key` is an option of `scheme`; the error names the valid keys.
pub fn validate_key(scheme: Scheme, key: &str) -> Result<Field, SpecError> {
    field(scheme, key).ok_or_else(|| SpecError::UnknownOption {
        key: key.chars().take(60).collect(),
        scheme,
        valid: valid_keys(scheme).join(", "),
    })
}

/// Checks a key and the shape of its value (numbers, booleans), for `mlv remote modify`.
pub fn validate_option(scheme: Scheme, key: &str, value: &str) -> Result<(), SpecError> {
    validate_key(scheme, key)?.check(value)
}

impl Scheme {
    /// The option keys valid for this scheme (generic ones included), sorted.
    pub fn valid_keys(self) -> Vec<&'static str> {
        valid_keys(self)
    }
}

/// Checks that an endpoint is an `http://` or `https://` URL with a host. The HTTP client
/// panics on some malformed endpoints, and error messages must not echo one (it may hold a
/// password), so the reason never quotes it.
pub fn check_endpoint(value: &str) -> Result<(), &'static str> {
    match Url::parse(value.trim()) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(())
        }
        Ok(_) => Err("not an http:// or https:// URL with a host"),
        Err(_) => Err("not a valid URL (expected e.g. https://s3.example.com or http://127.0.0.1:9000)"),
    }
}

pub(crate) fn parse_bool(key: &str, value: &str) -> Result<bool, SpecError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(SpecError::InvalidValue {
            key: key.into(),
            reason: format!("expected true or false, got `{}`", shown_value(key, value)),
        }),
    }
}

pub(crate) fn parse_seconds(key: &str, value: &str) -> Result<Duration, SpecError> {
    let v = value.trim();
    let v = v.strip_suffix('s').unwrap_or(v);
    match v.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 86_400.0 => Ok(Duration::from_secs_f64(s)),
        _ => Err(SpecError::InvalidValue {
            key: key.into(),
            reason: format!(
                "expected a number of seconds between 0 and 86400, got `{}`",
                shown_value(key, value)
            ),
        }),
    }
}

pub(crate) fn parse_count(key: &str, value: &str, min: usize) -> Result<usize, SpecError> {
    match value.trim().parse::<usize>() {
        Ok(n) if n >= min && n <= 10_000 => Ok(n),
        _ => Err(SpecError::InvalidValue {
            key: key.into(),
            reason: format!(
                "expected a whole number from {min} to 10000, got `{}`",
                shown_value(key, value)
            ),
        }),
    }
}

/// The smallest and largest part sizes and multipart thresholds: S3 (and GCS's XML API) refuse
/// parts under 5 MiB, except the last, and over 5 GiB.
const SIZE_LIMITS: (u64, u64) = (5 << 20, 5 << 30);

/// A size in bytes: a whole number with an optional binary unit (`K`/`KiB`, `M`/`MiB`,
/// `G`/`GiB`), e.g. `8MiB` or `16777216`, from 5 MiB to 5 GiB.
pub(crate) fn parse_size(key: &str, value: &str) -> Result<u64, SpecError> {
    let v = value.trim();
    let digits = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (number, unit) = v.split_at(digits);
    let scale: Option<u64> = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => Some(1),
        "k" | "kib" => Some(1 << 10),
        "m" | "mib" => Some(1 << 20),
        "g" | "gib" => Some(1 << 30),
        _ => None,
    };
    let bytes = number
        .parse::<u64>()
        .ok()
        .zip(scale)
        .and_then(|(n, s)| n.checked_mul(s));
    match bytes {
        Some(b) if (SIZE_LIMITS.0..=SIZE_LIMITS.1).contains(&b) => Ok(b),
        _ => Err(SpecError::InvalidValue {
            key: key.into(),
            reason: format!(
                "expected a size from 5MiB to 5GiB (bytes, or with a unit K, M, G, KiB, MiB, GiB), got `{}`",
                shown_value(key, value)
            ),
        }),
    }
}

fn shown_value(key: &str, value: &str) -> String {
    if is_secret(key) {
        redact::MASK.to_string()
    } else {
        value.chars().take(60).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The key lists as they were written out by hand before the options had types: users
    /// see them in "unknown option" messages, so they must not change by accident.
    #[test]
    fn derived_keys_are_the_documented_ones() {
        let generic = [
            "connect_timeout",
            "format",
            "jobs",
            "retries",
            "retry_timeout",
            "timeout",
        ];
        let parts = ["multipart_threshold", "part_size"];
        let s3 = [
            "access_key_id",
            "allow_http",
            "endpoint",
            "path_style",
            "profile",
            "region",
            "secret_access_key",
            "session_token",
            "virtual_hosted_style",
        ];
        let gcs = ["allow_http", "service_account", "service_account_key"];
        let azure = [
            "access_key",
            "account",
            "allow_http",
            "endpoint",
            "sas_token",
            "use_emulator",
        ];
        let sorted = |lists: &[&[&'static str]]| {
            let mut v: Vec<&str> = lists.concat();
            v.sort_unstable();
            v
        };
        assert_eq!(valid_keys(Scheme::Local), sorted(&[&generic]));
        assert_eq!(valid_keys(Scheme::S3), sorted(&[&generic, &s3, &parts]));
        assert_eq!(valid_keys(Scheme::Gcs), sorted(&[&generic, &gcs, &parts]));
        assert_eq!(valid_keys(Scheme::Azure), sorted(&[&generic, &azure, &parts]));
        assert_eq!(
            secret_keys(),
            [
                "access_key",
                "sas_token",
                "secret_access_key",
                "service_account_key",
                "session_token"
            ]
        );
        assert_eq!(
            valid_keys(Scheme::Gcs).join(", "),
            "allow_http, connect_timeout, format, jobs, multipart_threshold, part_size, retries, \
             retry_timeout, service_account, service_account_key, timeout"
        );
    }

    #[test]
    fn secrets_never_show() {
        let s = Secret::new("TOPSECRET");
        assert_eq!(format!("{s} {s:?}"), "<redacted> <redacted>");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        assert_eq!(s.expose(), "TOPSECRET");
        let o = RemoteOptions::parse(
            Scheme::Azure,
            &map(&[
                ("sas_token", "sv=1&sig=TOPSECRET"),
                ("access_key", "KEYSECRET"),
                ("account", "acct"),
            ]),
        )
        .unwrap();
        let shown = format!("{o:?} {}", serde_json::to_string(&o).unwrap());
        assert!(
            !shown.contains("TOPSECRET") && !shown.contains("KEYSECRET"),
            "{shown}"
        );
        assert!(shown.contains("acct"), "{shown}");
        let mut exposed: Vec<&str> = o.secrets().into_iter().map(Secret::expose).collect();
        exposed.sort_unstable();
        assert_eq!(exposed, ["KEYSECRET", "sv=1&sig=TOPSECRET"]);
        let o = RemoteOptions::parse(
            Scheme::S3,
            &map(&[("endpoint", "http://user:PASSWORD@127.0.0.1:9000")]),
        )
        .unwrap();
        let shown = format!("{o:?} {}", serde_json::to_string(&o).unwrap());
        assert!(
            !shown.contains("PASSWORD") && shown.contains("127.0.0.1:9000"),
            "{shown}"
        );
        let e = o.s3().and_then(|o| o.endpoint.as_ref()).unwrap();
        assert_eq!(e.as_str(), "http://user:PASSWORD@127.0.0.1:9000");
    }

    #[test]
    fn values_are_typed() {
        let o = RemoteOptions::parse(
            Scheme::S3,
            &map(&[
                ("timeout", "2.5"),
                ("jobs", "3"),
                ("retries", "0"),
                ("part_size", "8MiB"),
                ("path_style", "yes"),
                ("endpoint", "http://127.0.0.1:9000"),
                ("secret_access_key", "S"),
            ]),
        )
        .unwrap();
        assert_eq!(o.generic.timeout, Some(Duration::from_millis(2500)));
        assert_eq!((o.generic.jobs, o.generic.retries), (Some(3), Some(0)));
        assert_eq!(o.part.part_size, Some(8 << 20));
        let s3 = o.s3().unwrap();
        assert_eq!(s3.path_style, Some(true));
        assert_eq!(
            s3.endpoint.as_ref().map(Endpoint::as_str),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(s3.secret_access_key.as_ref().map(Secret::expose), Some("S"));
        assert_eq!(s3.region, None);
    }

    #[test]
    fn errors_are_the_same_sentences() {
        let e = |scheme, pairs: &[(&str, &str)]| {
            RemoteOptions::parse(scheme, &map(pairs)).unwrap_err().to_string()
        };
        assert_eq!(
            e(Scheme::Local, &[("endpoint", "x")]),
            "unknown option `endpoint` for a local remote (valid options: connect_timeout, format, \
             jobs, retries, retry_timeout, timeout)"
        );
        assert_eq!(
            e(Scheme::S3, &[("jobs", "0")]),
            "invalid value for option `jobs`: expected a whole number from 1 to 10000, got `0`"
        );
        assert_eq!(
            e(Scheme::S3, &[("allow_http", "maybe")]),
            "invalid value for option `allow_http`: expected true or false, got `maybe`"
        );
        assert_eq!(
            e(Scheme::Azure, &[("endpoint", "ftp://h")]),
            "invalid value for option `endpoint`: not an http:// or https:// URL with a host"
        );
        // Keys are checked in sorted order: the first bad one is reported.
        assert_eq!(
            e(Scheme::Gcs, &[("timeout", "x"), ("region", "eu")]),
            "unknown option `region` for a gs remote (valid options: allow_http, connect_timeout, \
             format, jobs, multipart_threshold, part_size, retries, retry_timeout, service_account, \
             service_account_key, timeout)"
        );
    }
}
