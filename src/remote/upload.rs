//! Uploads: verified single puts (retried when the answer was lost) and parallel multipart
//! uploads to object stores; staged copies published in batches to local directories.
//!
//! An upload re-hashes the cache object as it reads it; a corrupt object is refused and
//! nothing of it stays on the remote (a single put is never sent; a multipart upload is
//! aborted before completion). Objects become visible on the remote only when complete (single
//! puts are atomic, multipart uploads appear on completion, local remotes use fsync + rename).

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::{MultipartUpload, PutMode, PutPayload};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cache::{Cache, CacheError};
use crate::fs::IoError;
use crate::hash::{Digest, Hasher};
use crate::pack::ObjectReader;
use crate::progress::Progress;

use super::error::{is_ambiguous, is_unsupported, kind_of, Kind, RemoteError};
use super::local::{self, LocalDir};
use super::pool::{
    batch_full, budget_units, dedup, each_until_error, join, lock, PARTS_IN_FLIGHT, PUBLISH_EVERY,
};
use super::store::Remote;

/// S3's (and GCS XML's) limit on parts per multipart upload.
const MAX_PARTS: u64 = 10_000;

/// What `upload` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UploadReport {
    /// Objects sent.
    pub uploaded: u64,
    /// Bytes sent.
    pub uploaded_bytes: u64,
    /// Of the objects sent, how many went as multipart uploads.
    pub multipart: u64,
    /// Objects the remote already had (nothing sent).
    pub already_present: u64,
}

enum Up {
    Sent { bytes: u64, multipart: bool },
    Present,
}

impl Remote {
    /// Uploads cache objects (skipping those the remote has), `jobs` at a time. Stops starting
    /// new transfers after the first error and returns it.
    pub async fn upload(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
    ) -> Result<UploadReport, RemoteError> {
        let wanted = dedup(digests);
        if !wanted.is_empty() {
            self.initialise().await?;
            if let Some(config) = self.format2().await? {
                return self.upload_packed(cache, wanted, config, progress).await;
            }
        }
        let total: u64 = wanted.iter().map(|d| cache.object_len(d).unwrap_or(0)).sum();
        progress.start("uploading", wanted.len() as u64, total);
        if let Some(dir) = self.backend().files() {
            let report = self.upload_files(dir, cache, wanted, progress).await;
            progress.finish();
            return report;
        }
        let budget = Arc::new(Semaphore::new(
            budget_units(self.settings().memory_budget) as usize
        ));
        let budget_ref = &budget;
        let mut report = UploadReport::default();
        let done = each_until_error(
            self.jobs(),
            wanted,
            |d| async move {
                let r = self.upload_one(cache, d, progress, budget_ref).await;
                crate::crash_point!("push.after_object");
                r
            },
            |up| match up {
                Up::Sent { bytes, multipart } => {
                    report.uploaded += 1;
                    report.uploaded_bytes += bytes;
                    report.multipart += u64::from(multipart);
                }
                Up::Present => report.already_present += 1,
            },
        )
        .await;
        progress.finish();
        done.map(|()| report)
    }

    async fn upload_one(
        &self,
        cache: &Cache,
        digest: Digest,
        progress: &dyn Progress,
        budget: &Arc<Semaphore>,
    ) -> Result<Up, RemoteError> {
        let size = cache.object_len(&digest)?;
        let up = if size >= self.settings().multipart_threshold {
            self.upload_multipart(cache, digest, size, progress, budget)
                .await?
        } else {
            self.upload_single(cache, digest, size, progress, budget).await?
        };
        progress.advance(1, 0);
        Ok(up)
    }

    /// Uploads to a local directory: objects are copied into its staging directory, `jobs` at a
    /// time, and published in batches (one file-system sync each instead of one fsync per
    /// object). Whatever was staged is published even if another object failed.
    async fn upload_files(
        &self,
        dir: &LocalDir,
        cache: &Cache,
        wanted: Vec<Digest>,
        progress: &dyn Progress,
    ) -> Result<UploadReport, RemoteError> {
        let staged = std::sync::Mutex::new(LocalBatch::default());
        let staged = &staged;
        let mut present = 0;
        let done = each_until_error(
            self.jobs(),
            wanted,
            |digest| async move {
                let (dir, cache) = (dir.clone(), cache.clone());
                let got = join(tokio::task::spawn_blocking(move || dir.stage(&cache, &digest)).await)?;
                crate::crash_point!("push.after_object");
                let Some((pending, size)) = got else {
                    progress.advance(1, 0);
                    return Ok(true);
                };
                progress.advance(1, size);
                let full = {
                    let mut batch = lock(staged);
                    batch.push(pending, size);
                    batch.is_full().then(|| std::mem::take(&mut *batch))
                };
                if let Some(full) = full {
                    let published = full.publish().await?;
                    lock(staged).merge(published);
                }
                Ok(false)
            },
            |was_present| present += u64::from(was_present),
        )
        .await;
        let rest = std::mem::take(&mut *lock(staged));
        // The transfer's own error comes first; a publish error (often the same cause) second.
        let published = rest.publish().await;
        done?;
        let mut report = published?.report;
        report.already_present += present;
        Ok(report)
    }

    async fn upload_single(
        &self,
        cache: &Cache,
        digest: Digest,
        size: u64,
        progress: &dyn Progress,
        budget: &Semaphore,
    ) -> Result<Up, RemoteError> {
        let _permit = budget
            .acquire_many(budget_units(size).min(budget_units(self.settings().memory_budget)))
            .await
            .expect("the budget semaphore is never closed");
        let cache = cache.clone();
        // verified as it is read: a corrupt cache object is never sent
        let data = join(tokio::task::spawn_blocking(move || cache.read_verified(&digest)).await)?;
        let bytes = data.len() as u64;
        let key = self.object_key(&digest);
        let payload = PutPayload::from(Bytes::from(data));
        let create = self.create_only_puts();
        let mode = if create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let result = match self.put_retrying(&key, &payload, mode).await {
            Err(e) if create && is_unsupported(&e) => {
                // The store cannot do create-only puts; content-addressed keys make an
                // overwrite harmless, so stop asking.
                self.stop_create_only_puts();
                self.put_retrying(&key, &payload, PutMode::Overwrite).await
            }
            r => r,
        };
        match result {
            Ok(_) => {
                progress.advance(0, size);
                Ok(Up::Sent {
                    bytes,
                    multipart: false,
                })
            }
            Err(e) if create && kind_of(&e) == Kind::AlreadyExists => Ok(Up::Present),
            Err(e) => Err(self.store_error(&e, "upload", Some(&key))),
        }
    }

    /// One put, repeated (up to `retries` times within `retry_timeout`) when the connection
    /// was reset or timed out after the request was sent, which object_store does not retry
    /// for a PUT. Content-addressed keys make the repeat safe: the bytes are the same, and a
    /// create-only put of an object that did arrive answers "already exists".
    pub(super) async fn put_retrying(
        &self,
        key: &object_store::path::Path,
        payload: &PutPayload,
        mode: PutMode,
    ) -> object_store::Result<object_store::PutResult> {
        let start = std::time::Instant::now();
        let mut backoff = std::time::Duration::from_millis(100);
        let mut retried = 0;
        loop {
            let r = self.backend().put(key, payload.clone(), mode.clone()).await;
            match r {
                Err(e)
                    if is_ambiguous(&e)
                        && retried < self.settings().retries
                        && start.elapsed() + backoff < self.settings().retry_timeout =>
                {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                    retried += 1;
                }
                r => return r,
            }
        }
    }

    async fn upload_multipart(
        &self,
        cache: &Cache,
        digest: Digest,
        size: u64,
        progress: &dyn Progress,
        budget: &Arc<Semaphore>,
    ) -> Result<Up, RemoteError> {
        // A multipart upload cannot be create-only: check first (cheap next to the upload).
        if self.contains(&digest).await? {
            return Ok(Up::Present);
        }
        let key = self.object_key(&digest);
        let mut upload = self
            .backend()
            .put_multipart(&key)
            .await
            .map_err(|e| self.store_error(&e, "start a multipart upload of", Some(&key)))?;
        let part_size = part_size_for(size, self.settings().part_size);
        let sent = self
            .send_parts(upload.as_mut(), cache, digest, part_size, progress, budget)
            .await;
        let completed = match sent {
            Ok(()) => upload
                .complete()
                .await
                .map_err(|e| self.store_error(&e, "complete the multipart upload of", Some(&key))),
            Err(e) => Err(e),
        };
        match completed {
            Ok(_) => Ok(Up::Sent {
                bytes: size,
                multipart: true,
            }),
            Err(e) => {
                // Best effort: the original error matters more than a failed abort.
                let _ = upload.abort().await;
                Err(e)
            }
        }
    }

    /// Reads, hashes and sends the parts; returns once all are acknowledged and the content
    /// hashed to `digest`. Part requests run as tasks so they progress while the next part is
    /// read; dropping the `JoinSet` on error cancels the rest.
    async fn send_parts(
        &self,
        upload: &mut dyn MultipartUpload,
        cache: &Cache,
        digest: Digest,
        part_size: u64,
        progress: &dyn Progress,
        budget: &Arc<Semaphore>,
    ) -> Result<(), RemoteError> {
        let key = self.object_key(&digest);
        let part_err = |e: object_store::Error| self.store_error(&e, "upload a part of", Some(&key));
        let object = cache.open(&digest)?;
        let path = object.path.as_path();
        let mut state = Some((object.reader, Hasher::new()));
        let mut in_flight: JoinSet<Result<u64, object_store::Error>> = JoinSet::new();
        let permits = budget_units(part_size).min(budget_units(self.settings().memory_budget));
        loop {
            let permit = budget
                .clone()
                .acquire_many_owned(permits)
                .await
                .expect("the budget semaphore is never closed");
            let (file, hasher) = state.take().expect("state is put back after each part");
            let read = tokio::task::spawn_blocking(move || read_part(file, hasher, part_size as usize)).await;
            let (file, hasher, buf) = join(read).map_err(|e| cache_read_error(e, path, digest))?;
            let n = buf.len() as u64;
            state = Some((file, hasher));
            if n == 0 {
                break;
            }
            let part = upload.put_part(PutPayload::from(Bytes::from(buf)));
            in_flight.spawn(async move {
                let r = part.await;
                drop(permit);
                r.map(|()| n)
            });
            while in_flight.len() >= PARTS_IN_FLIGHT {
                let done = in_flight.join_next().await.expect("set is not empty");
                progress.advance(0, join(done).map_err(part_err)?);
            }
            if n < part_size {
                break;
            }
        }
        while let Some(done) = in_flight.join_next().await {
            progress.advance(0, join(done).map_err(part_err)?);
        }
        let (_, hasher) = state.expect("state is put back after each part");
        check_cache_digest(digest, hasher.finish(), path)
    }
}

/// Objects staged in a local remote, waiting for one file-system sync, and what was published.
#[derive(Default)]
struct LocalBatch {
    pending: Vec<crate::fs::Pending>,
    sizes: Vec<u64>,
    bytes: u64,
    /// When the first object of this batch was staged.
    since: Option<std::time::Instant>,
    report: UploadReport,
}

impl LocalBatch {
    fn push(&mut self, pending: crate::fs::Pending, size: u64) {
        self.pending.push(pending);
        self.sizes.push(size);
        self.bytes += size;
        self.since.get_or_insert_with(std::time::Instant::now);
    }

    /// Full by count or size, or waiting for PUBLISH_EVERY (a kill loses little work).
    fn is_full(&self) -> bool {
        batch_full(self.pending.len(), self.bytes) || self.since.is_some_and(|t| t.elapsed() >= PUBLISH_EVERY)
    }

    fn merge(&mut self, published: LocalBatch) {
        let (mine, theirs) = (&mut self.report, published.report);
        mine.uploaded += theirs.uploaded;
        mine.uploaded_bytes += theirs.uploaded_bytes;
        mine.already_present += theirs.already_present;
    }

    /// Publishes the staged objects off the async threads; returns an empty batch holding the
    /// report of what was created.
    async fn publish(self) -> Result<LocalBatch, RemoteError> {
        let LocalBatch {
            pending,
            sizes,
            mut report,
            ..
        } = self;
        let created = join(tokio::task::spawn_blocking(move || local::publish(pending)).await)?;
        for (new, size) in created.into_iter().zip(sizes) {
            if new {
                report.uploaded += 1;
                report.uploaded_bytes += size;
            } else {
                report.already_present += 1;
            }
        }
        Ok(LocalBatch {
            report,
            ..LocalBatch::default()
        })
    }
}

/// The part size for an object: the configured one, grown so the object needs at most
/// 10,000 parts, rounded up to a whole MiB.
pub(super) fn part_size_for(size: u64, configured: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS);
    configured.max(needed).div_ceil(MIB) * MIB
}

pub(super) fn cache_read_error(e: io::Error, path: &Path, digest: Digest) -> RemoteError {
    if e.kind() == io::ErrorKind::NotFound {
        CacheError::Missing { digest }.into()
    } else {
        CacheError::Io(IoError::new("cannot read", path, e)).into()
    }
}

fn check_cache_digest(digest: Digest, actual: Digest, path: &Path) -> Result<(), RemoteError> {
    if actual == digest {
        Ok(())
    } else {
        Err(CacheError::Corrupt {
            digest,
            path: PathBuf::from(path),
            actual,
        }
        .into())
    }
}

/// Reads up to `len` bytes, feeding them to the hasher. Blocking.
fn read_part(
    mut file: ObjectReader,
    mut hasher: Hasher,
    len: usize,
) -> io::Result<(ObjectReader, Hasher, Vec<u8>)> {
    let mut buf = Vec::with_capacity(len);
    (&mut file).take(len as u64).read_to_end(&mut buf)?;
    hasher.update(&buf);
    Ok((file, hasher, buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes() {
        const MIB: u64 = 1 << 20;
        assert_eq!(part_size_for(12 * MIB, 5 * MIB), 5 * MIB);
        assert_eq!(part_size_for(1 << 40, 8 * MIB), 105 * MIB);
        assert!(part_size_for(1 << 40, 8 * MIB) * MAX_PARTS >= 1 << 40);
    }
}
