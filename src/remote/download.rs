//! Downloads: each object is hashed while it streams into a cache temporary file (or memory,
//! for a pack) and published into the cache only if it hashes to its name; verified objects are
//! published in batches (one file-system sync each, or one pack).

use std::io::{self, Write};
use std::path::Path;

use futures::stream::StreamExt;
use object_store::path::Path as ObjectPath;

use crate::cache::Cache;
use crate::fs::IoContext;
use crate::hash::{Digest, Hasher};
use crate::pack::{PackWriter, MAX_PACKED_OBJECT};
use crate::progress::Progress;

use super::error::{kind_of, Kind, RemoteError};
use super::pool::{batch_full, dedup, each_until_error, join, lock, Body, PUBLISH_EVERY};
use super::store::Remote;

/// Downloads are written to disk in chunks of this size.
const WRITE_CHUNK: usize = 1 << 20;

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

enum Down {
    Received(u64),
    Missing(Digest),
    /// Not installed: the writer had stopped on an error, which another transfer reports.
    Dropped,
}

impl Remote {
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
        self.download_with(cache, digests, progress, false, &[]).await
    }

    /// Like [`Remote::download`]; from a format 2 remote, a chunked file `d` of `reuse` (pairs
    /// `(d, path)`) takes the chunks that the local file at `path` (typically the previous
    /// version of that data path in the workspace) already holds instead of downloading them.
    /// Each reused chunk is hashed as it is read (it must match its id) and the rebuilt file
    /// is verified whole, as downloaded ones are.
    pub async fn download_reusing(
        &self,
        cache: &Cache,
        digests: &[Digest],
        reuse: &[(Digest, std::path::PathBuf)],
        progress: &dyn Progress,
    ) -> Result<DownloadReport, RemoteError> {
        self.download_with(cache, digests, progress, false, reuse).await
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
        self.download_with(cache, digests, progress, true, &[]).await
    }

    async fn download_with(
        &self,
        cache: &Cache,
        digests: &[Digest],
        progress: &dyn Progress,
        replace: bool,
        reuse: &[(Digest, std::path::PathBuf)],
    ) -> Result<DownloadReport, RemoteError> {
        let wanted = dedup(digests);
        if !wanted.is_empty() {
            if let Some(config) = self.format2().await? {
                return self
                    .download_packed(cache, wanted, replace, &config, reuse, progress)
                    .await;
            }
        }
        self.download_v1(cache, &wanted, progress, replace).await
    }

    /// Downloads format 1 objects (one object per key).
    pub(super) async fn download_v1(
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
        let mut report = DownloadReport::default();
        // What the cache has is looked up once, on a blocking thread, before any transfer.
        let wanted = match replace {
            true => wanted,
            false => {
                let (c, all) = (cache.clone(), wanted.clone());
                let absent = join(tokio::task::spawn_blocking(move || c.missing(&all)).await);
                let present = (wanted.len() - absent.len()) as u64;
                report.already_present = present;
                progress.advance(present, 0);
                absent
            }
        };
        // Verified objects go to one writer on a blocking thread, through a bounded channel:
        // it stages files, appends small objects to the pack and publishes full batches, so
        // no file-system work runs on the async threads and no lock is shared. When it falls
        // behind, the transfers wait for room in the channel.
        let to_memory = pack.is_some();
        let (sender, rx) = tokio::sync::mpsc::channel(self.jobs().max(1) * 2);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let writer = {
            let (cache, failed) = (cache.clone(), failed.clone());
            let received = Received {
                pack,
                ..Received::default()
            };
            tokio::task::spawn_blocking(move || write_received(&cache, rx, received, replace, &failed))
        };
        let (tx, failed_ref) = (&sender, &*failed);
        let mut missing = Vec::new();
        let finished = tokio::sync::Notify::new();
        let transfers = async {
            let done = each_until_error(
                self.jobs(),
                wanted,
                |d| self.download_one(cache, d, to_memory, progress, tx, failed_ref),
                |down| match down {
                    Down::Received(bytes) => {
                        report.downloaded += 1;
                        report.downloaded_bytes += bytes;
                    }
                    Down::Missing(d) => missing.push(d),
                    Down::Dropped => {}
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
                    () = finished.notified() => return,
                }
                // A writer that stopped has left its error for the transfers to report.
                if tx.send(ToWriter::Publish).await.is_err() {
                    return;
                }
            }
        };
        let (done, ()) = tokio::join!(transfers, ticker);
        // The writer installs whatever was verified even if another object failed (a rerun
        // converges), then stops: the channel closes with `sender`.
        drop(sender);
        join(writer.await);
        progress.finish();
        // The first transfer error explains the failure; a writer error (often the same
        // cause, e.g. a full disk) comes second.
        let written = lock(&failed).take().map_or(Ok(()), Err);
        done.and(written)?;
        if missing.is_empty() {
            Ok(report)
        } else {
            missing.sort();
            Err(RemoteError::MissingObjects {
                remote: self.display_name().to_string(),
                digests: missing,
            })
        }
    }

    async fn download_one(
        &self,
        cache: &Cache,
        digest: Digest,
        to_memory: bool,
        progress: &dyn Progress,
        writer: &tokio::sync::mpsc::Sender<ToWriter>,
        failed: &std::sync::Mutex<Option<RemoteError>>,
    ) -> Result<Down, RemoteError> {
        let key = self.object_key(&digest);
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
                    remote: self.display_name().to_string(),
                    digest,
                    key: key.to_string(),
                    actual,
                    size,
                });
            }
            attempt += 1;
        };
        // Verified objects are made durable and visible in batches by the writer (one
        // file-system sync per batch of loose objects, one pack per batch of small ones).
        if writer
            .send(ToWriter::Object { body, digest, size })
            .await
            .is_err()
        {
            // The writer stopped on an error: the first transfer to notice returns it, which
            // stops the others.
            return lock(failed).take().map_or(Ok(Down::Dropped), Err);
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
        if let Some(dir) = self.backend().files() {
            let (dir, cache) = (dir.clone(), cache.clone());
            let got = join(tokio::task::spawn_blocking(move || dir.read(&cache, &digest, to_memory)).await)?;
            if let Some((_, _, size)) = &got {
                progress.advance(0, *size);
            }
            return Ok(got);
        }
        let got = match self.backend().get(key, None).await {
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

/// What the transfers send the writer.
enum ToWriter {
    /// A verified object to install.
    Object { body: Body, digest: Digest, size: u64 },
    /// Publish whatever is waiting (every [`PUBLISH_EVERY`]).
    Publish,
}

/// The one writer of a download, on a blocking thread: stages verified objects, appends small
/// ones to the pack, publishes full batches, and at the end whatever is left (after an error
/// too: a rerun converges). Its first error is left in `failed` before the channel closes.
fn write_received(
    cache: &Cache,
    mut rx: tokio::sync::mpsc::Receiver<ToWriter>,
    mut received: Received,
    replace: bool,
    failed: &std::sync::Mutex<Option<RemoteError>>,
) {
    let mut written = || -> Result<(), RemoteError> {
        while let Some(w) = rx.blocking_recv() {
            match w {
                ToWriter::Object { body, digest, size } => match received.add(cache, body, digest, size)? {
                    Some(Batch::Loose(batch)) => publish(cache, batch, replace)?,
                    Some(Batch::Pack(pack)) => publish_pack(cache, Some(pack))?,
                    None => {}
                },
                ToWriter::Publish => {
                    let due = received.take_due(cache)?;
                    publish(cache, due.loose, replace)?;
                    publish_pack(cache, due.pack)?;
                }
            }
        }
        Ok(())
    };
    let written = written();
    let rest = std::mem::take(&mut received);
    let published = publish(cache, rest.loose, replace).and_then(|()| publish_pack(cache, rest.pack));
    if let Err(e) = written.and(published) {
        *lock(failed) = Some(e);
    }
    // `rx` is dropped here, after the error is in place: a transfer whose send fails finds it.
}

/// Publishes verified downloads into the cache.
fn publish(cache: &Cache, batch: Vec<crate::cache::Staged>, replace: bool) -> Result<(), RemoteError> {
    if batch.is_empty() {
        return Ok(());
    }
    if replace {
        cache.publish_replacing(batch)?;
    } else {
        cache.publish_staged(batch)?;
    }
    Ok(())
}

/// Publishes a pack of verified downloads.
fn publish_pack(cache: &Cache, pack: Option<PackWriter>) -> Result<(), RemoteError> {
    if let Some(pack) = pack {
        cache.publish_pack(pack)?;
    }
    Ok(())
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

    /// The writer installs what it is sent: small objects through the pack, files loose, what
    /// waits when asked to publish, the rest when the channel closes.
    #[test]
    fn the_writer_installs_everything_it_is_sent() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path().join("cache"), d.path().join("tmp"));
        std::fs::create_dir_all(d.path().join("tmp")).unwrap();
        let received = Received {
            pack: Some(cache.pack_writer().unwrap()),
            ..Received::default()
        };
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let failed = std::sync::Arc::new(std::sync::Mutex::new(None));
        let writer = {
            let (cache, failed) = (cache.clone(), failed.clone());
            std::thread::spawn(move || write_received(&cache, rx, received, false, &failed))
        };
        let small: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 100]).collect();
        for (i, bytes) in small.iter().enumerate() {
            let body = Body::Memory(bytes.clone());
            let (digest, size) = (Digest::of_bytes(bytes), bytes.len() as u64);
            tx.blocking_send(ToWriter::Object { body, digest, size }).unwrap();
            if i == 2 {
                tx.blocking_send(ToWriter::Publish).unwrap();
            }
        }
        let big = vec![7u8; 4096];
        let mut tmp = cache.temp_file().unwrap();
        tmp.write_all(&big).unwrap();
        let (digest, size) = (Digest::of_bytes(&big), big.len() as u64);
        tx.blocking_send(ToWriter::Object {
            body: Body::File(tmp),
            digest,
            size,
        })
        .unwrap();
        drop(tx);
        writer.join().unwrap();
        assert!(failed.lock().unwrap().is_none());
        let cache = Cache::new(d.path().join("cache"), d.path().join("tmp"));
        for bytes in &small {
            assert_eq!(cache.read_verified(&Digest::of_bytes(bytes)).unwrap(), *bytes);
        }
        assert!(cache.is_loose(&digest));
        assert_eq!(cache.read_verified(&digest).unwrap(), big);
    }
}
