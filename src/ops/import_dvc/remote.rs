//! The DVC remote as a third source of bytes: an output in neither the workspace nor DVC's
//! cache is read from the DVC remote its `.dvc` file names (`remote:`), else the one the user
//! chose (`--remote`), else DVC's default. DVC 3.x keys (`files/md5/ab/cdef…`) are tried
//! first, then 2.x (`ab/cdef…`). Objects are read `jobs` at a time through mlv's own remote
//! construction (the converted spec), md5-checked while streamed into a temporary file, and
//! renamed into the workspace only when every file of the output arrived intact.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use futures::stream::{self, StreamExt as _};
use tempfile::TempPath;
use tokio::runtime::Handle;

use super::config::DvcConfig;
use super::dvc_md5::{DvcMd5, Md5Kind};
use super::SkipKind;
use crate::error::Error;
use crate::fs::IoError;
use crate::relpath::RelPath;
use crate::remote::{Remote, RemoteError};

/// A file to bring from a DVC remote.
#[derive(Debug)]
pub(super) struct Fetch {
    pub md5: String,
    /// Which md5 (DVC 2.x hashed text with CRLF as LF).
    pub kind: Md5Kind,
    pub to: RelPath,
    pub exec: bool,
}

/// The DVC remotes mlv can read, opened (no network I/O until used).
pub struct DvcRemotes {
    runtime: Handle,
    /// Each remote mlv can describe: opened, or why it cannot be (reported when used).
    remotes: BTreeMap<String, Result<Remote, String>>,
    /// `--remote NAME`, else DVC's default.
    fallback: Option<String>,
}

impl std::fmt::Debug for DvcRemotes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DvcRemotes")
            .field("remotes", &self.remotes.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

/// Why an object could not be had from a remote.
pub(super) type Failure = (SkipKind, String);

/// One file fetched (in a temporary file, with its length), or why not.
type Fetched = Result<(TempPath, u64), Failure>;

impl DvcRemotes {
    /// Opens every DVC remote mlv can read. `chosen` (`--remote`) must be one of DVC's remotes.
    pub fn open(
        root: &Path,
        config: &DvcConfig,
        chosen: Option<&str>,
        runtime: Handle,
    ) -> Result<DvcRemotes, Error> {
        super::config::check_remote(config, chosen)?;
        let mut remotes = BTreeMap::new();
        for (name, r) in &config.remotes {
            if let Some(spec) = super::config::convert(root, name, r).dvc_spec {
                let remote = crate::remote::configured::open_spec(&spec, None).map_err(|e| {
                    let hint = e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
                    format!("DVC remote `{name}` cannot be opened: {e}{hint}")
                });
                remotes.insert(name.clone(), remote);
            }
        }
        Ok(DvcRemotes {
            runtime,
            remotes,
            fallback: chosen
                .map(str::to_string)
                .or_else(|| config.default_remote.as_ref().map(|(n, _)| n.clone())),
        })
    }

    /// The remote an output reads from: its own `remote:`, else the fallback; `None` when
    /// there is none or mlv cannot read it.
    pub(super) fn name_for(&self, out_remote: Option<&str>) -> Option<&str> {
        let name = out_remote.or(self.fallback.as_deref())?;
        self.remotes.get_key_value(name).map(|(k, _)| k.as_str())
    }

    fn get(&self, name: &str) -> Result<&Remote, Failure> {
        match &self.remotes[name] {
            Ok(r) => Ok(r),
            Err(reason) => Err((SkipKind::RemoteError, reason.clone())),
        }
    }

    /// A small object (a `.dir` manifest), in memory, md5-checked.
    pub(super) fn read(&self, name: &str, md5: &str, kind: Md5Kind) -> Result<Vec<u8>, Failure> {
        let remote = self.get(name)?;
        let hex = md5.strip_suffix(".dir").unwrap_or(md5);
        let mut bytes = Vec::new();
        let got = self.runtime.block_on(read_either(remote, md5, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok::<(), std::convert::Infallible>(())
        }));
        match got {
            Ok(Some(_)) => {}
            Ok(None) => return Err(absent(name, remote, md5)),
            Err(e) => return Err(remote_failure(name, &e)),
        }
        let actual = DvcMd5::of(kind, &bytes);
        if actual != hex {
            return Err((
                SkipKind::Mismatch,
                format!("DVC remote `{name}`: object {md5} has md5 {actual}; imported nothing"),
            ));
        }
        Ok(bytes)
    }

    /// Fetches the files of several outputs (each `(remote name, files)`), `jobs` objects at a
    /// time across all of them, each md5-checked while streamed into a temporary file under
    /// `tmp`; then renames the files of each output whose every file arrived intact into the
    /// work tree at `root`. Per output: the bytes fetched, or why nothing of it was written.
    /// A local file-system error stops the whole import.
    pub(super) fn fetch_all(
        &self,
        outputs: &[(&str, &[Fetch])],
        root: &Path,
        tmp: &Path,
    ) -> Result<Vec<Result<u64, Failure>>, Error> {
        let mut results: Vec<Result<Vec<(TempPath, u64)>, Failure>> = Vec::new();
        let mut work = Vec::new();
        let mut jobs = usize::MAX;
        for (i, (name, fetches)) in outputs.iter().enumerate() {
            match self.get(name) {
                Ok(remote) => {
                    // DVC's default is 4 per CPU; mlv's `jobs` option wins when set
                    jobs = jobs.min(remote.settings().jobs.unwrap_or(16).max(1));
                    results.push(Ok(Vec::with_capacity(fetches.len())));
                    work.extend(fetches.iter().map(|f| (i, *name, remote, f)));
                }
                Err(failure) => results.push(Err(failure)),
            }
        }
        let fetched: Vec<(usize, Result<Fetched, IoError>)> = self.runtime.block_on(
            stream::iter(
                work.into_iter()
                    .map(|(i, name, remote, f)| async move { (i, fetch_one(name, remote, f, tmp).await) }),
            )
            .buffered(jobs.min(256))
            .collect(),
        );
        for (i, got) in fetched {
            let got = got?;
            if let Ok(done) = &mut results[i] {
                match got {
                    Ok(file) => done.push(file),
                    Err(failure) => results[i] = Err(failure),
                }
            }
        }
        let mut out = Vec::with_capacity(results.len());
        for (r, (_, fetches)) in results.into_iter().zip(outputs) {
            let files = match r {
                Ok(files) => files,
                Err(failure) => {
                    out.push(Err(failure));
                    continue;
                }
            };
            let mut total = 0;
            for ((path, n), f) in files.into_iter().zip(fetches.iter()) {
                let to = f.to.to_path(root);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| IoError::new("cannot create directory", parent, e))?;
                }
                // never over a file (absent when planned: one there now is someone's)
                path.persist_noclobber(&to)
                    .map_err(|e| IoError::new("cannot write (appeared while importing?)", &to, e.error))?;
                total += n;
            }
            out.push(Ok(total));
        }
        Ok(out)
    }
}

/// Reads DVC's object `md5` from `remote`: the 3.x key, else the 2.x key.
async fn read_either<E>(
    remote: &Remote,
    md5: &str,
    mut sink: impl FnMut(&[u8]) -> Result<(), E>,
) -> Result<Option<Result<u64, E>>, RemoteError> {
    for key in super::dvc_md5::object_keys(md5) {
        if let Some(r) = remote.read_foreign(&key, &mut sink).await? {
            return Ok(Some(r));
        }
    }
    Ok(None)
}

/// One file: `Ok(Err(_))` when the remote lacks it or holds other bytes.
async fn fetch_one(name: &str, remote: &Remote, f: &Fetch, tmp: &Path) -> Result<Fetched, IoError> {
    use std::os::unix::fs::PermissionsExt as _;
    let shown = f.to.as_str();
    let mut file = crate::fs::temp_file_in(tmp)?;
    let mut h = DvcMd5::new(f.kind);
    let got = read_either(remote, &f.md5, |chunk| {
        h.update(chunk);
        file.write_all(chunk)
    })
    .await;
    let n = match got {
        Ok(Some(Ok(n))) => n,
        Ok(Some(Err(e))) => return Err(IoError::new("cannot write", file.path(), e)),
        Ok(None) => {
            let (kind, reason) = absent(name, remote, &f.md5);
            return Ok(Err((kind, format!("{shown}: {reason}"))));
        }
        Err(e) => {
            let (kind, reason) = remote_failure(name, &e);
            return Ok(Err((kind, format!("{shown}: {reason}"))));
        }
    };
    let actual = h.finish();
    if actual != f.md5 {
        return Ok(Err((
            SkipKind::Mismatch,
            format!(
                "{shown}: DVC remote `{name}` holds bytes with md5 {actual} for {}; imported nothing",
                f.md5
            ),
        )));
    }
    let mode = if f.exec { 0o755 } else { 0o644 };
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| IoError::new("cannot write", file.path(), e))?;
    Ok(Ok((file.into_temp_path(), n)))
}

fn absent(name: &str, remote: &Remote, md5: &str) -> Failure {
    (
        SkipKind::NotAvailable,
        format!("object {md5} is in neither the workspace, DVC's cache nor DVC remote `{name}` ({remote})"),
    )
}

/// A remote error as a skip reason: its message (secrets already redacted) and its hint.
fn remote_failure(name: &str, e: &RemoteError) -> Failure {
    let hint = e.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default();
    (SkipKind::RemoteError, format!("DVC remote `{name}`: {e}{hint}"))
}
