//! A remote from a configuration: the spec of a configured remote and the remote a command
//! uses, given a [`Config`] and the directory relative local-remote URLs resolve against. The
//! current repository's remotes (`ops::remotes`) and another repository's (`source`) both go
//! through here.

use std::path::Path;

use crate::config::Config;
use crate::error::{Error, Refusal};
use crate::remote::{committed_secret, Remote, RemoteError, RemoteSettings, RemoteSpec};

/// The name of the remote a command uses: `name`, else the configuration's default.
pub fn name_of(config: &Config, name: Option<&str>) -> Result<String, Error> {
    match name.or(config.core.remote.as_deref()) {
        Some(n) => Ok(n.to_string()),
        None => Err(Refusal::NoDefaultRemote {
            remotes: config.remote.keys().cloned().collect(),
        }
        .into()),
    }
}

/// The parsed spec of remote `name` in `config`; a relative local URL resolves against `base`.
pub fn spec_of(config: &Config, name: &str, base: &Path) -> Result<RemoteSpec, Error> {
    let rc = config
        .remote
        .get(name)
        .ok_or_else(|| Refusal::UnknownRemote { name: name.into() })?;
    let url = rc
        .url
        .as_deref()
        .ok_or_else(|| Refusal::MissingUrl { remote: name.into() })?;
    let options = rc
        .options
        .iter()
        .map(|(k, v)| (k.clone(), value_text(v)))
        .collect();
    Ok(RemoteSpec::parse(url, options, base).map_err(RemoteError::from)?)
}

/// Opens a remote from its spec, `jobs` overriding its configured concurrency.
pub fn open_spec(spec: &RemoteSpec, jobs: Option<usize>) -> Result<Remote, Error> {
    let mut settings = RemoteSettings::from_spec(spec);
    if jobs.is_some() {
        settings.jobs = jobs;
    }
    Ok(Remote::open(spec, &settings)?)
}

/// Refuses remote `name` when its settings in a committed config file (`committed`, that file's
/// table) carry a credential: the file is shared with everyone who can read the repository.
pub fn check_committed(committed: &toml::Table, name: &str) -> Result<(), Error> {
    let Some(remote) = committed
        .get("remote")
        .and_then(|r| r.get(name))
        .and_then(|r| r.as_table())
    else {
        return Ok(());
    };
    for (key, value) in remote {
        if committed_secret(key, &value_text(value)).is_some() {
            return Err(Refusal::SecretInCommittedFile {
                remote: name.into(),
                key: key.clone(),
            }
            .into());
        }
    }
    Ok(())
}

/// A config value as the text a remote option parser reads.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}
