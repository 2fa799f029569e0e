//! AWS shared credentials and config files (`~/.aws/credentials`, `~/.aws/config`), which
//! object_store does not read. Only static keys, session tokens, `region` and `endpoint_url` are
//! supported; profiles that need SSO, role assumption or a credential process are reported as
//! such, with a way around.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What a profile provides.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct AwsProfile {
    /// `aws_access_key_id`.
    pub access_key_id: Option<String>,
    /// `aws_secret_access_key`.
    pub secret_access_key: Option<String>,
    /// `aws_session_token`.
    pub session_token: Option<String>,
    /// `region`.
    pub region: Option<String>,
    /// `endpoint_url` (per-profile endpoint, as the AWS CLI v2 reads it).
    pub endpoint_url: Option<String>,
}

impl std::fmt::Debug for AwsProfile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsProfile")
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| super::redact::MASK),
            )
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| super::redact::MASK),
            )
            .field("region", &self.region)
            .field("endpoint_url", &self.endpoint_url)
            .finish()
    }
}

/// Why a profile cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileProblem {
    /// Neither file has the profile.
    NotFound {
        /// The files looked in.
        files: Vec<PathBuf>,
    },
    /// The profile exists but needs a credential source mlv does not implement.
    Unsupported {
        /// The setting that needs it (`sso_session`, `role_arn`, `credential_process`, ...).
        setting: String,
    },
    /// A file could not be read.
    Unreadable {
        /// The file.
        file: PathBuf,
        /// The I/O error text.
        reason: String,
    },
}

/// Where to look: `AWS_SHARED_CREDENTIALS_FILE` / `AWS_CONFIG_FILE`, else `~/.aws/...`.
pub fn default_files() -> (Option<PathBuf>, Option<PathBuf>) {
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from);
    let pick = |var: &str, name: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(name)))
    };
    (
        pick("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        pick("AWS_CONFIG_FILE", "config"),
    )
}

/// Loads `profile` from the two files (either may be absent). Values in the credentials file
/// win over the config file, as in the AWS CLI.
pub fn load(
    profile: &str,
    credentials_file: Option<&Path>,
    config_file: Option<&Path>,
) -> Result<AwsProfile, ProfileProblem> {
    let creds = read_ini(credentials_file)?;
    let config = read_ini(config_file)?;
    let from_creds = creds.get(profile);
    // In the config file, profiles other than `default` are written `[profile NAME]`.
    let config_section = if profile == "default" {
        config.get("default").or_else(|| config.get("profile default"))
    } else {
        config.get(&format!("profile {profile}"))
    };
    if from_creds.is_none() && config_section.is_none() {
        return Err(ProfileProblem::NotFound {
            files: [credentials_file, config_file]
                .into_iter()
                .flatten()
                .map(Path::to_path_buf)
                .collect(),
        });
    }
    let get = |key: &str| {
        from_creds
            .and_then(|s| s.get(key))
            .or_else(|| config_section.and_then(|s| s.get(key)))
            .filter(|v| !v.is_empty())
            .cloned()
    };
    let p = AwsProfile {
        access_key_id: get("aws_access_key_id"),
        secret_access_key: get("aws_secret_access_key"),
        session_token: get("aws_session_token").or_else(|| get("aws_security_token")),
        region: get("region"),
        endpoint_url: get("endpoint_url"),
    };
    if p.access_key_id.is_none() || p.secret_access_key.is_none() {
        for setting in [
            "sso_session",
            "sso_start_url",
            "role_arn",
            "credential_process",
            "web_identity_token_file",
            "credential_source",
            "source_profile",
        ] {
            if get(setting).is_some() {
                return Err(ProfileProblem::Unsupported {
                    setting: setting.to_string(),
                });
            }
        }
    }
    Ok(p)
}

type Ini = BTreeMap<String, BTreeMap<String, String>>;

fn read_ini(file: Option<&Path>) -> Result<Ini, ProfileProblem> {
    let Some(file) = file else {
        return Ok(Ini::new());
    };
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(e) => Err(ProfileProblem::Unreadable {
            file: file.to_path_buf(),
            reason: e.to_string(),
        }),
    }
}

/// A minimal INI parser for the AWS files: `[section]`, `key = value`, `#`/`;` comments.
/// Indented lines (nested `s3 =` blocks) are ignored.
fn parse_ini(text: &str) -> Ini {
    let mut ini = Ini::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        if raw.starts_with([' ', '\t']) {
            continue;
        }
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            ini.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            ini.entry(section.clone())
                .or_default()
                .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    ini
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_secret_key_and_token() {
        let p = AwsProfile {
            access_key_id: Some("AKIDSHOWN".into()),
            secret_access_key: Some("SECRETKEY".into()),
            session_token: Some("SESSIONTOKEN".into()),
            region: Some("eu-west-1".into()),
            endpoint_url: None,
        };
        assert_eq!(
            format!("{p:?}"),
            "AwsProfile { access_key_id: Some(\"AKIDSHOWN\"), secret_access_key: Some(\"***\"), \
             session_token: Some(\"***\"), region: Some(\"eu-west-1\"), endpoint_url: None }"
        );
    }

    #[test]
    fn reads_credentials_and_config() {
        let d = tempfile::tempdir().unwrap();
        let creds = d.path().join("credentials");
        let config = d.path().join("config");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
             # comment\n[work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=s2\naws_session_token=tok\n",
        )
        .unwrap();
        std::fs::write(
            &config,
            "[default]\nregion = eu-west-1\n[profile work]\nregion=us-west-2\nendpoint_url = http://minio:9000\n\
             s3 =\n  addressing_style = path\n[profile sso]\nsso_session = corp\n",
        )
        .unwrap();
        let d1 = load("default", Some(&creds), Some(&config)).unwrap();
        assert_eq!(d1.access_key_id.as_deref(), Some("AKIDDEFAULT"));
        assert_eq!(d1.region.as_deref(), Some("eu-west-1"));
        let w = load("work", Some(&creds), Some(&config)).unwrap();
        assert_eq!(w.session_token.as_deref(), Some("tok"));
        assert_eq!(w.region.as_deref(), Some("us-west-2"));
        assert_eq!(w.endpoint_url.as_deref(), Some("http://minio:9000"));
        assert!(!format!("{w:?}").contains("s2"));
        assert_eq!(
            load("sso", Some(&creds), Some(&config)),
            Err(ProfileProblem::Unsupported {
                setting: "sso_session".into()
            })
        );
        assert!(matches!(
            load("nope", Some(&creds), Some(&config)),
            Err(ProfileProblem::NotFound { .. })
        ));
        assert!(matches!(
            load("default", Some(&d.path().join("absent")), None),
            Err(ProfileProblem::NotFound { .. })
        ));
    }
}
