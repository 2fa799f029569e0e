//! Moving objects between the local cache and a remote: presence checks, verified uploads
//! (single put or parallel multipart), verified downloads. Bounded concurrency (`jobs`
//! objects at a time) and bounded memory (`memory_budget` bytes buffered by uploads at once).
//!
//! Integrity rules:
//! - an upload re-hashes the cache object as it reads it; a corrupt object is refused and
//!   nothing of it stays on the remote (a single put is never sent; a multipart upload is
//!   aborted before completion);
//! - a download is hashed while it streams into a temporary file and is published into the
//!   cache only if it hashes to its name;
//! - objects become visible on the remote only when complete (single puts are atomic,
//!   multipart uploads appear on completion, local remotes use fsync + rename).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use object_store::{MultipartUpload, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cache::{Cache, CacheError};
use crate::fs::{IoContext, IoError};
use crate::hash::{Digest, Hasher};
use crate::pack::{ObjectReader, PackWriter, MAX_PACKED_OBJECT};
use crate::progress::Progress;

use super::error::{is_ambiguous, is_unsupported, kind_of, Kind, RemoteError};
use super::local;
use super::maintain::RemoteObject;
use super::store::Remote;

/// Below this many objects, `missing` sends one HEAD per object; from it on, it lists.
pub const HEAD_LIMIT: usize = 64;
/// S3's (and GCS XML's) limit on parts per multipart upload.
const MAX_PARTS: u64 = 10_000;
/// Parts of one object in flight at once.
pub(super) const PARTS_IN_FLIGHT: usize = 4;
/// Downloads are written to disk in chunks of this size.
const WRITE_CHUNK: usize = 1 << 20;

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

/// What `download` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DownloadReport {
    /// Objects received, verified and installed in the cache.
    pub downloaded: u64,
    /// Bytes received.
    pub downloaded_bytes: u64,
    /// Objects the cache already had (nothing fetched).
    pub already_present: u64,
}

enum Up {
    Sent { bytes: u64, multipart: bool },
    Present,
}

enum Down {
    Received(u64),
    Present,
    Missing(Digest),
}

impl Remote {
    /// Whether the remote has the object (one HEAD request).
    pub async fn contains(&self, digest: &Digest) -> Result<bool, RemoteError> {
        Ok(self.head(digest).await?.is_some())
    }

    /// The objects among `digests` that the remote lacks, in input order, without duplicates.
    /// Requests as [`Remote::stat`] makes them.
    pub async fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, RemoteError> {
        let wanted = dedup(digests);
        let present = self.stat(&wanted).await?;
        Ok(wanted.into_iter().filter(|d| !present.contains_key(d)).collect())
    }

    /// Size and age of those of `digests` the remote has (absent ones are not in the map).
    ///
    /// Request rule: fewer than [`HEAD_LIMIT`] distinct objects are checked with one HEAD each
    /// (`jobs` at a time). From [`HEAD_LIMIT`] on, each fan-out directory `PREFIX/ab/` holding at
    /// least one of them is listed instead (at most 256 listings, each one request per 1,000
    /// keys); for remotes of up to ~256k objects that is one request per fan-out, never more
    /// requests than the HEADs would have taken.
    pub async fn stat(&self, digests: &[Digest]) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let wanted = dedup(digests);
        if wanted.len() < HEAD_LIMIT {
            let found: Vec<Option<(Digest, RemoteObject)>> = stream::iter(wanted)
                .map(|d| async move { Ok::<_, RemoteError>(self.head(&d).await?.map(|o| (d, o))) })
                .buffered(self.jobs())
                .try_collect()
                .await?;
            return Ok(found.into_iter().flatten().collect());
        }
        let fanouts: BTreeSet<String> = wanted.iter().map(Digest::fanout).collect();
        let mut listed = self.list_fanouts(fanouts).await?;
        let wanted: HashSet<Digest> = wanted.into_iter().collect();
        listed.retain(|d, _| wanted.contains(d));
        Ok(listed)
    }

    /// Size and age of one object (one HEAD request); `None` if absent.
    pub async fn head(&self, digest: &Digest) -> Result<Option<RemoteObject>, RemoteError> {
        let key = self.object_key(digest);
        match self.store.head(&key).await {
            Ok(meta) => Ok(Some(RemoteObject::of(&meta))),
            Err(e) if kind_of(&e) == Kind::NotFound => {
                // A HEAD answer has no body: a missing bucket looks like a missing object.
                self.confirm_container().await?;
                Ok(None)
            }
            Err(e) => Err(self.explained_error(&e, "check", Some(&key)).await),
        }
    }

    /// The objects stored under each `PREFIX/<fanout>/`, `jobs` listings at a time.
    pub(crate) async fn list_fanouts(
        &self,
        fanouts: BTreeSet<String>,
    ) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let listed: Vec<HashMap<Digest, RemoteObject>> = stream::iter(fanouts)
            .map(|f| self.list_under(Some(self.fanout_key(&f))))
            .buffer_unordered(self.jobs())
            .try_collect()
            .await?;
        Ok(listed.into_iter().flatten().collect())
    }

    /// The objects stored under `prefix` (all of them for `None`); keys that are not objects
    /// of this remote's layout are ignored.
    pub(crate) async fn list_under(
        &self,
        prefix: Option<ObjectPath>,
    ) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let mut listing = self.store.list(prefix.as_ref());
        let mut found = HashMap::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => {
                    let digest = meta.location.filename().and_then(|n| n.parse::<Digest>().ok());
                    if let Some(d) = digest.filter(|d| self.object_key(d) == meta.location) {
                        found.insert(d, RemoteObject::of(&meta));
                    }
                }
                // A fan-out directory that does not exist (local remotes) holds nothing.
                Err(e) if kind_of(&e) == Kind::NotFound => break,
                Err(e) => return Err(self.store_error(&e, "list", prefix.as_ref())),
            }
        }
        Ok(found)
    }

    /// Uploads cache objects (skipping those the remote has), `jobs` at a time. Stops starting
    /// new transfers after the first error and returns it.
    pub async fn upload(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
    ) -> Result<UploadReport, RemoteError> {
        let wanted = dedup(digests);
        let total: u64 = wanted.iter().map(|d| cache.object_len(d).unwrap_or(0)).sum();
        progress.start("uploading", wanted.len() as u64, total);
        if let Some(root) = &self.local_root {
            let report = self.upload_local(root, cache, wanted, progress).await;
            progress.finish();
            return report;
        }
        let budget = Arc::new(Semaphore::new(budget_units(self.settings.memory_budget) as usize));
        let budget_ref = &budget;
        let mut report = UploadReport::default();
        let done = self
            .each_until_error(
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
        let up = if size >= self.settings.multipart_threshold {
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
    async fn upload_local(
        &self,
        root: &Path,
        cache: &Cache,
        wanted: Vec<Digest>,
        progress: &dyn Progress,
    ) -> Result<UploadReport, RemoteError> {
        let staged = std::sync::Mutex::new(LocalBatch::default());
        let staged = &staged;
        let mut present = 0;
        let done = self
            .each_until_error(
                wanted,
                |digest| async move {
                    let (root, cache) = (root.to_path_buf(), cache.clone());
                    let got = join(
                        tokio::task::spawn_blocking(move || local::stage_object(&root, &cache, &digest))
                            .await,
                    )?;
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
            .acquire_many(budget_units(size).min(budget_units(self.settings.memory_budget)))
            .await
            .expect("the budget semaphore is never closed");
        let cache = cache.clone();
        // verified as it is read: a corrupt cache object is never sent
        let data = join(tokio::task::spawn_blocking(move || cache.read_verified(&digest)).await)?;
        let bytes = data.len() as u64;
        let key = self.object_key(&digest);
        let payload = PutPayload::from(Bytes::from(data));
        let create = self.conditional_put.load(Ordering::Relaxed);
        let mode = if create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        let result = match self.put_retrying(&key, &payload, mode).await {
            Err(e) if create && is_unsupported(&e) => {
                // The store cannot do create-only puts; content-addressed keys make an
                // overwrite harmless, so stop asking.
                self.conditional_put.store(false, Ordering::Relaxed);
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
    async fn put_retrying(
        &self,
        key: &object_store::path::Path,
        payload: &PutPayload,
        mode: PutMode,
    ) -> object_store::Result<object_store::PutResult> {
        let start = std::time::Instant::now();
        let mut backoff = std::time::Duration::from_millis(100);
        let mut retried = 0;
        loop {
            let r = self
                .store
                .put_opts(key, payload.clone(), PutOptions::from(mode.clone()))
                .await;
            match r {
                Err(e)
                    if is_ambiguous(&e)
                        && retried < self.settings.retries
                        && start.elapsed() + backoff < self.settings.retry_timeout =>
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
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| self.store_error(&e, "start a multipart upload of", Some(&key)))?;
        let part_size = part_size_for(size, self.settings.part_size);
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
        let permits = budget_units(part_size).min(budget_units(self.settings.memory_budget));
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

    /// Downloads objects into the cache (skipping those it has), `jobs` at a time, verifying
    /// each. Objects the remote lacks are collected and reported together as
    /// `RemoteError::MissingObjects` once the others are done; any other error stops new
    /// transfers and is returned.
    pub async fn download(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
    ) -> Result<DownloadReport, RemoteError> {
        self.download_with(cache, digests, progress, false).await
    }

    /// Like [`Remote::download`], but downloads every object even if the cache has one by that
    /// name, and installs each verified copy over it in one atomic rename (`fsck --repair`
    /// replacing a damaged object).
    pub async fn download_replacing(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
    ) -> Result<DownloadReport, RemoteError> {
        self.download_with(cache, digests, progress, true).await
    }

    async fn download_with(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
        replace: bool,
    ) -> Result<DownloadReport, RemoteError> {
        let wanted = dedup(digests);
        progress.start("downloading", wanted.len() as u64, 0);
        // many objects: the small ones go into packs (a pack replaces nothing: not for repairs)
        let pack = match !replace && cache.packs_for(wanted.len()) {
            true => Some(cache.pack_writer()?),
            false => None,
        };
        let received = std::sync::Mutex::new(Received {
            pack,
            ..Received::default()
        });
        let received = &received;
        let mut report = DownloadReport::default();
        let mut missing = Vec::new();
        let finished = tokio::sync::Notify::new();
        let transfers = async {
            let done = self
                .each_until_error(
                    wanted,
                    |d| self.download_one(cache, d, progress, received, replace),
                    |down| match down {
                        Down::Received(bytes) => {
                            report.downloaded += 1;
                            report.downloaded_bytes += bytes;
                        }
                        Down::Present => report.already_present += 1,
                        Down::Missing(d) => missing.push(d),
                    },
                )
                .await;
            finished.notify_one();
            done
        };
        // What was verified is installed every PUBLISH_EVERY too, so a killed or interrupted
        // download keeps all but the last few seconds of its work.
        let ticker = async {
            let mut tick = tokio::time::interval(PUBLISH_EVERY);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = finished.notified() => return Ok(()),
                }
                let due = lock(received).take_due(cache)?;
                publish(cache, due.loose, replace).await?;
                publish_pack(cache, due.pack).await?;
            }
        };
        let (done, ticked): (Result<(), RemoteError>, Result<(), RemoteError>) =
            tokio::join!(transfers, ticker);
        // Whatever was verified is installed even if another object failed: a rerun converges.
        let rest = std::mem::take(&mut *lock(received));
        let published = async {
            publish(cache, rest.loose, replace).await?;
            publish_pack(cache, rest.pack).await
        }
        .await;
        progress.finish();
        // The first transfer error explains the failure; a publish error (often the same
        // cause, e.g. a full disk) comes second.
        done.and(ticked).and(published)?;
        if missing.is_empty() {
            Ok(report)
        } else {
            missing.sort();
            Err(RemoteError::MissingObjects {
                remote: self.display.clone(),
                digests: missing,
            })
        }
    }

    /// Runs `f` on each digest, `jobs` at a time, handing each result to `each` as it comes
    /// (nothing is kept per object); after the first error no new one starts, and that error
    /// is returned once the running ones are done.
    async fn each_until_error<T, F, Fut>(
        &self,
        digests: Vec<Digest>,
        f: F,
        mut each: impl FnMut(T),
    ) -> Result<(), RemoteError>
    where
        F: Fn(Digest) -> Fut,
        Fut: std::future::Future<Output = Result<T, RemoteError>>,
    {
        let stop = AtomicBool::new(false);
        let (stop, f) = (&stop, &f);
        let mut results = stream::iter(digests)
            .map(|d| async move {
                if stop.load(Ordering::Relaxed) {
                    return Ok(None);
                }
                let r = f(d).await;
                if r.is_err() {
                    stop.store(true, Ordering::Relaxed);
                }
                r.map(Some)
            })
            .buffer_unordered(self.jobs());
        let mut first = None;
        while let Some(r) = results.next().await {
            match r {
                Ok(Some(t)) => each(t),
                Ok(None) => {}
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }

    async fn download_one(
        &self,
        cache: &Cache,
        digest: Digest,
        progress: &dyn Progress,
        received: &std::sync::Mutex<Received>,
        replace: bool,
    ) -> Result<Down, RemoteError> {
        if !replace && cache.contains(&digest) {
            progress.advance(1, 0);
            return Ok(Down::Present);
        }
        let key = self.object_key(&digest);
        let to_memory = lock(received).pack.is_some();
        let mut attempt = 1;
        let (body, size) = loop {
            let fetched = self.fetch_body(cache, &key, digest, to_memory, progress).await?;
            let Some((body, actual, size)) = fetched else {
                progress.advance(1, 0);
                return Ok(Down::Missing(digest));
            };
            if actual == digest {
                break (body, size);
            }
            // `tmp` is dropped here: nothing is installed.
            if attempt >= CORRUPT_ATTEMPTS {
                return Err(RemoteError::Corrupt {
                    remote: self.display.clone(),
                    digest,
                    key: key.to_string(),
                    actual,
                    size,
                });
            }
            attempt += 1;
        };
        // Verified objects are made durable and visible in batches (one file-system sync per
        // batch of loose objects, one pack per batch of small ones).
        let batch = lock(received).add(cache, body, digest, size)?;
        match batch {
            Some(Batch::Loose(batch)) => publish(cache, batch, replace).await?,
            Some(Batch::Pack(pack)) => publish_pack(cache, Some(pack)).await?,
            None => {}
        }
        progress.advance(1, 0);
        Ok(Down::Received(size))
    }

    /// Streams a response body into a cache temporary file, hashing it; returns the file, what
    /// the bytes hash to, and how many there were.
    /// Downloads one object into a cache temporary file, hashing it; `None` if it is missing.
    /// Small objects come back in memory when `to_memory` (for a pack), others in a cache
    /// temporary file.
    async fn fetch_body(
        &self,
        cache: &Cache,
        key: &ObjectPath,
        digest: Digest,
        to_memory: bool,
        progress: &dyn Progress,
    ) -> Result<Option<(Body, Digest, u64)>, RemoteError> {
        if let Some(root) = &self.local_root {
            let (root, cache) = (root.clone(), cache.clone());
            let got = join(
                tokio::task::spawn_blocking(move || local::get_object(&root, &cache, &digest, to_memory))
                    .await,
            )?;
            if let Some((_, _, size)) = &got {
                progress.advance(0, *size);
            }
            return Ok(got);
        }
        let got = match self.store.get(key).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&e, "download", Some(key))),
        };
        if to_memory && got.meta.size <= MAX_PACKED_OBJECT {
            return Ok(Some(self.receive_small(got, key, progress).await?));
        }
        let (tmp, actual, size) = if self.wants_ranges(&got) {
            self.receive_ranged(cache, got, key, progress).await?
        } else {
            self.receive(cache, got, key, progress).await?
        };
        Ok(Some((Body::File(tmp), actual, size)))
    }

    /// Reads a small response body into memory, hashing it. A body longer than announced is
    /// cut there (its digest then fails to match).
    async fn receive_small(
        &self,
        got: object_store::GetResult,
        key: &object_store::path::Path,
        progress: &dyn Progress,
    ) -> Result<(Body, Digest, u64), RemoteError> {
        let announced = got.meta.size;
        let mut buf = Vec::with_capacity(usize::try_from(announced).unwrap_or(0));
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.store_error(&e, "download", Some(key)))?;
            progress.advance(0, chunk.len() as u64);
            buf.extend_from_slice(&chunk);
            if buf.len() as u64 > announced {
                break;
            }
        }
        let digest = Digest::of_bytes(&buf);
        let size = buf.len() as u64;
        Ok((Body::Memory(buf), digest, size))
    }

    async fn receive(
        &self,
        cache: &Cache,
        got: object_store::GetResult,
        key: &object_store::path::Path,
        progress: &dyn Progress,
    ) -> Result<(tempfile::NamedTempFile, Digest, u64), RemoteError> {
        let tmp = cache.temp_file()?;
        let tmp_path = tmp.path().to_path_buf();
        let file = tmp.as_file().try_clone().at("cannot write", &tmp_path)?;
        let mut sink = Some((file, Hasher::new(), Vec::with_capacity(WRITE_CHUNK)));
        let mut size = 0u64;
        let mut body = got.into_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.store_error(&e, "download", Some(key)))?;
            size += chunk.len() as u64;
            progress.advance(0, chunk.len() as u64);
            let (file, hasher, mut buf) = sink.take().expect("sink is put back");
            buf.extend_from_slice(&chunk);
            sink = Some(if buf.len() >= WRITE_CHUNK {
                write_hashing(file, hasher, buf, &tmp_path).await?
            } else {
                (file, hasher, buf)
            });
        }
        let (file, hasher, buf) = sink.take().expect("sink is put back");
        // Crash tests: half the last chunk is written, so a crash leaves a short temp file.
        #[cfg(feature = "failpoints")]
        let (file, hasher, buf) = {
            let rest = buf[buf.len() / 2..].to_vec();
            let head = buf[..buf.len() / 2].to_vec();
            let (file, hasher, _) = write_hashing(file, hasher, head, &tmp_path).await?;
            crate::crash_point!("fetch.mid_download");
            (file, hasher, rest)
        };
        let (_, hasher, _) = write_hashing(file, hasher, buf, &tmp_path).await?;
        Ok((tmp, hasher.finish(), size))
    }
}

/// A download whose bytes do not hash to the object's name is tried this many times in all
/// before the object is reported corrupt: damage in transit (a proxy, a flaky network card)
/// goes away on a second try, a damaged remote copy does not.
const CORRUPT_ATTEMPTS: u32 = 2;

/// Objects received are published (one file-system sync) once this many are waiting, or this
/// many bytes: a sync costs milliseconds, and a crash loses at most one batch of work.
const PUBLISH_BATCH: (usize, u64) = (4096, 512 << 20);

fn batch_full(objects: usize, bytes: u64) -> bool {
    objects >= PUBLISH_BATCH.0 || bytes >= PUBLISH_BATCH.1
}

/// Verified downloads waiting for a full batch are also published this often: a killed or
/// interrupted download loses at most this much of its work.
const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A verified download: a cache temporary file, or the bytes of a small object for a pack.
pub(crate) enum Body {
    File(tempfile::NamedTempFile),
    Memory(Vec<u8>),
}

/// Verified downloads not yet published: loose objects and the pack being written.
#[derive(Default)]
struct Received {
    loose: Vec<crate::cache::Staged>,
    loose_bytes: u64,
    pack: Option<PackWriter>,
}

/// A full batch of verified downloads, to publish.
enum Batch {
    Loose(Vec<crate::cache::Staged>),
    Pack(PackWriter),
}

/// Verified downloads taken out of [`Received`] to publish before their batch is full.
struct Due {
    loose: Vec<crate::cache::Staged>,
    pack: Option<PackWriter>,
}

impl Received {
    /// Takes whatever is waiting to be published (a pack being written is replaced by a new
    /// one, if it holds anything).
    fn take_due(&mut self, cache: &Cache) -> Result<Due, RemoteError> {
        self.loose_bytes = 0;
        let pack = match self.pack.as_mut() {
            Some(p) if p.objects() > 0 => Some(std::mem::replace(p, cache.pack_writer()?)),
            _ => None,
        };
        Ok(Due {
            loose: std::mem::take(&mut self.loose),
            pack,
        })
    }

    /// Adds a verified object; returns a batch to publish once one is full.
    fn add(
        &mut self,
        cache: &Cache,
        body: Body,
        digest: Digest,
        size: u64,
    ) -> Result<Option<Batch>, RemoteError> {
        let batch = match body {
            Body::File(tmp) => {
                self.loose.push(cache.stage_verified(tmp, digest)?);
                self.loose_bytes += size;
                batch_full(self.loose.len(), self.loose_bytes).then(|| {
                    self.loose_bytes = 0;
                    Batch::Loose(std::mem::take(&mut self.loose))
                })
            }
            Body::Memory(bytes) => {
                let pack = self
                    .pack
                    .as_mut()
                    .expect("objects come in memory only for a pack");
                pack.append(digest, &bytes)?;
                match batch_full(pack.objects(), pack.bytes()) {
                    true => Some(Batch::Pack(std::mem::replace(pack, cache.pack_writer()?))),
                    false => None,
                }
            }
        };
        crate::crash_point!("fetch.after_object");
        Ok(batch)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

/// Publishes verified downloads into the cache off the async threads.
async fn publish(cache: &Cache, batch: Vec<crate::cache::Staged>, replace: bool) -> Result<(), RemoteError> {
    if batch.is_empty() {
        return Ok(());
    }
    let cache = cache.clone();
    let done = tokio::task::spawn_blocking(move || {
        if replace {
            cache.publish_replacing(batch)
        } else {
            cache.publish_staged(batch)
        }
    });
    join(done.await)?;
    Ok(())
}

/// Publishes a pack of verified downloads off the async threads.
async fn publish_pack(cache: &Cache, pack: Option<PackWriter>) -> Result<(), RemoteError> {
    let Some(pack) = pack else {
        return Ok(());
    };
    let cache = cache.clone();
    join(tokio::task::spawn_blocking(move || cache.publish_pack(pack)).await)?;
    Ok(())
}

/// Distinct digests in first-seen order.
fn dedup(digests: &[Digest]) -> Vec<Digest> {
    let mut seen = HashSet::with_capacity(digests.len());
    digests.iter().filter(|d| seen.insert(**d)).copied().collect()
}

/// The memory budget counts KiB so that large budgets fit the semaphore's u32.
pub(super) fn budget_units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4)
}

/// The part size for an object: the configured one, grown so the object needs at most
/// 10,000 parts, rounded up to a whole MiB.
pub(crate) fn part_size_for(size: u64, configured: u64) -> u64 {
    const MIB: u64 = 1 << 20;
    let needed = size.div_ceil(MAX_PARTS);
    configured.max(needed).div_ceil(MIB) * MIB
}

/// Unwraps a finished blocking task, resuming a panic if it panicked.
pub(super) fn join<T>(r: Result<T, tokio::task::JoinError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a transfer task was cancelled: {e}"),
    }
}

fn cache_read_error(e: io::Error, path: &Path, digest: Digest) -> RemoteError {
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

/// Whether a create-only put failed because the store does not support it.
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

/// Hashes and appends `buf` to the file on a blocking thread; returns the emptied buffer.
async fn write_hashing(
    file: std::fs::File,
    hasher: Hasher,
    buf: Vec<u8>,
    path: &Path,
) -> Result<(std::fs::File, Hasher, Vec<u8>), RemoteError> {
    let r = tokio::task::spawn_blocking(move || -> io::Result<_> {
        let (mut file, mut hasher, mut buf) = (file, hasher, buf);
        // downloads run `jobs` at a time: one thread each
        hasher.update_here(&buf);
        file.write_all(&buf)?;
        buf.clear();
        Ok((file, hasher, buf))
    })
    .await;
    Ok(join(r).map_err(|e| crate::fs::temp_write_error(path, e))?)
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

    #[test]
    fn dedup_keeps_order() {
        let (a, b) = (Digest::of_bytes(b"a"), Digest::of_bytes(b"b"));
        assert_eq!(dedup(&[b, a, b, a]), vec![b, a]);
    }
}
