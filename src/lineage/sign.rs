//! SSH signatures of lineage records, made and checked the way git signs commits with
//! `gpg.format = ssh`: `ssh-keygen -Y sign` with git's `user.signingkey`, `ssh-keygen -Y
//! verify` against git's `gpg.ssh.allowedSignersFile`, the record author's e-mail as the
//! principal. A record's signature covers its line without the `signature` field (the id
//! included), in the namespace [`NAMESPACE`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

use super::{LineageError, Record};

/// The `ssh-keygen -Y` namespace of lineage signatures.
pub const NAMESPACE: &str = "mlv-lineage";

/// A record's signature status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SigState {
    /// Signed by a key the allowed signers file lists for the author's e-mail.
    Good,
    /// No signature.
    Unsigned,
    /// The signature is not over this record (or is damaged).
    Bad,
    /// A valid signature by a key not allowed for the author's e-mail.
    UnknownKey,
}

/// The bytes a record's signature covers: its line without `signature`.
pub fn signed_bytes(record: &Record) -> Vec<u8> {
    let mut body = record.clone();
    body.signature = None;
    body.to_line().into_bytes()
}

fn git_config(git: &git2::Repository, key: &str) -> Option<String> {
    git.config()
        .ok()?
        .get_string(key)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

fn failed(what: &str, reason: impl Into<String>) -> LineageError {
    LineageError::Signature {
        what: what.to_string(),
        reason: reason.into(),
    }
}

/// git's SSH signing key (`user.signingkey` with `gpg.format = ssh`): checked before a run
/// starts, so that a long command is not run for a record that cannot be signed.
pub fn signing_key(git: &git2::Repository) -> Result<String, LineageError> {
    let format = git_config(git, "gpg.format").unwrap_or_else(|| "openpgp".into());
    if format != "ssh" {
        return Err(LineageError::NotSshSigning { format });
    }
    let key = git_config(git, "user.signingkey").ok_or(LineageError::NoSigningKey)?;
    if literal_key(&key).is_none() && !expand_home(&key).is_file() {
        return Err(failed(
            "signing",
            format!("{key}: no such key file (git's user.signingkey)"),
        ));
    }
    Ok(key)
}

/// The public key of a literal `user.signingkey` (`key::ssh-ed25519 ...` or `ssh-ed25519 ...`).
fn literal_key(key: &str) -> Option<String> {
    key.strip_prefix("key::").map(str::to_string).or_else(|| {
        (key.starts_with("ssh-") || key.starts_with("ecdsa-") || key.starts_with("sk-"))
            .then(|| key.to_string())
    })
}

/// Signs `record` (its id already set) with git's SSH signing key.
pub fn sign(git: &git2::Repository, record: &Record) -> Result<String, LineageError> {
    let key = signing_key(git)?;
    // a literal public key (`key::ssh-ed25519 ...` or `ssh-ed25519 ...`): the agent signs, as
    // with git
    let literal = literal_key(&key);
    let tmp;
    let key_path: PathBuf = match literal {
        Some(pubkey) => {
            let mut f = tempfile::NamedTempFile::new().map_err(|e| failed("signing", e.to_string()))?;
            writeln!(f, "{pubkey}").map_err(|e| failed("signing", e.to_string()))?;
            tmp = f;
            tmp.path().to_path_buf()
        }
        None => expand_home(&key),
    };
    let out = run_with_stdin(
        Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", NAMESPACE, "-q", "-f"])
            .arg(&key_path),
        &signed_bytes(record),
    )
    .map_err(|e| failed("signing", e))?;
    if !out.status.success() {
        return Err(failed("signing", stderr_of(&out)));
    }
    String::from_utf8(out.stdout).map_err(|_| failed("signing", "ssh-keygen printed no signature"))
}

/// git's `gpg.ssh.allowedSignersFile`, `~/` expanded.
pub fn allowed_signers(git: &git2::Repository) -> Result<PathBuf, LineageError> {
    let path = git_config(git, "gpg.ssh.allowedSignersFile").ok_or(LineageError::NoAllowedSigners)?;
    let path = expand_home(&path);
    if !path.is_file() {
        return Err(LineageError::AllowedSignersMissing { path });
    }
    Ok(path)
}

/// Checks `record`'s signature against `allowed` with the author's e-mail as the principal.
pub fn check(allowed: &Path, record: &Record) -> Result<SigState, LineageError> {
    let Some(sig) = &record.signature else {
        return Ok(SigState::Unsigned);
    };
    let mut sig_file = tempfile::NamedTempFile::new().map_err(|e| failed("verifying", e.to_string()))?;
    sig_file
        .write_all(sig.as_bytes())
        .map_err(|e| failed("verifying", e.to_string()))?;
    let data = signed_bytes(record);
    // is it a valid signature over these bytes at all?
    let valid = run_with_stdin(
        Command::new("ssh-keygen")
            .args(["-Y", "check-novalidate", "-n", NAMESPACE, "-s"])
            .arg(sig_file.path()),
        &data,
    )
    .map_err(|e| failed("verifying", e))?;
    if !valid.status.success() {
        return Ok(SigState::Bad);
    }
    let principal = record.author.as_ref().map(|a| a.email.as_str()).unwrap_or("");
    if principal.is_empty() {
        return Ok(SigState::UnknownKey);
    }
    let out = run_with_stdin(
        Command::new("ssh-keygen")
            .args(["-Y", "verify", "-n", NAMESPACE, "-f"])
            .arg(allowed)
            .args(["-I", principal, "-s"])
            .arg(sig_file.path()),
        &data,
    )
    .map_err(|e| failed("verifying", e))?;
    Ok(if out.status.success() {
        SigState::Good
    } else {
        SigState::UnknownKey
    })
}

fn run_with_stdin(cmd: &mut Command, data: &[u8]) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ssh-keygen: {e}"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let written = stdin.write_all(data);
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| format!("ssh-keygen: {e}"))?;
    written.map_err(|e| format!("writing to ssh-keygen: {e}"))?;
    Ok(out)
}

fn stderr_of(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("ssh-keygen failed");
    line.trim().to_string()
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}
