//! Push to a format 2 remote: the blobs the index lacks go into packs built on a blocking
//! thread (each sealed pack re-read and checked), uploaded one at a time, and described by an
//! index segment uploaded after them.

use std::collections::HashSet;
use std::io::Read;

use bytes::Bytes;
use object_store::PutPayload;

use crate::cache::{Cache, CacheError};
use crate::fs::IoContext;
use crate::hash::{Digest, Hasher};
use crate::progress::Progress;

use super::super::error::RemoteError;
use super::super::format2::{
    pack_key, BlobLocation, Chunker, Format2Error, IndexSegment, MergedIndex, PackBuilder, Recipe,
    RecipeChunk, RemoteConfig, SealedPack,
};
use super::super::pool::{join, PARTS_IN_FLIGHT};
use super::super::store::Remote;
use super::super::upload::{cache_read_error, part_size_for, UploadReport};
use super::gc::{holds, usable};

/// An index segment is written after this many packs (and at the end of a push), so an
/// interrupted push resends at most this many packs.
pub(super) const SEGMENT_EVERY: usize = 2;

/// S3's smallest part (but the last) of a multipart upload.
const MIN_PART: u64 = 5 << 20;

/// The most parts a pack is uploaded in (fewer when `part_size` is larger): two in flight
/// keep two connections busy, as many bytes in memory as four parts of 8 MiB did.
const PARTS_PER_PACK: u64 = 2;

/// What the builder thread hands the uploader.
struct Built {
    /// A sealed pack (none at the end when the last pack is empty).
    pack: Option<SealedPack>,
    /// Recipes whose chunks are all in this pack, in packs sent before, or in the index.
    recipes: Vec<Recipe>,
    /// Objects whose every blob is in this pack or before.
    objects: u64,
}

impl Remote {
    /// Uploads the objects of `wanted` (distinct) that the index lacks into packs.
    pub(in crate::remote) async fn upload_packed(
        &self,
        cache: &Cache,
        wanted: Vec<Digest>,
        config: RemoteConfig,
        progress: &dyn Progress,
    ) -> Result<UploadReport, RemoteError> {
        let index = self.index().await?;
        // blobs whose copy is in a pack gc marked count as absent: that pack may go
        let marked = self.marked_packs().await?;
        let mut report = UploadReport::default();
        let todo: Vec<Digest> = wanted
            .into_iter()
            .filter(|d| {
                let present = holds(&index, &marked, d);
                report.already_present += u64::from(present);
                !present
            })
            .collect();
        if todo.is_empty() {
            return Ok(report);
        }
        // what to send is decided (the markers read): nothing is uploaded yet
        crate::crash_point!("push.after_plan");
        let total: u64 = todo.iter().map(|d| cache.object_len(d).unwrap_or(0)).sum();
        progress.start("uploading", todo.len() as u64, total);
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Built>(1);
        let builder = {
            let (cache, index, marked) = (cache.clone(), index.clone(), marked.clone());
            tokio::task::spawn_blocking(move || build_packs(&cache, &index, &marked, config, todo, &tx))
        };
        let uploading = async {
            let mut pending = IndexSegment::default();
            let (mut packs, mut objects) = (0, 0);
            while let Some(built) = rx.recv().await {
                if let Some(pack) = built.pack {
                    self.put_pack(&pack).await?;
                    crate::crash_point!("push.after_pack");
                    report.uploaded_bytes += pack.size;
                    progress.advance(0, pack.size);
                    pending.packs.push((pack.id, pack.size));
                    pending.blobs.extend(pack.entries.iter().map(|e| {
                        let loc = BlobLocation {
                            pack: pack.id,
                            offset: e.offset as u32,
                            length: e.length as u32,
                        };
                        (e.id, loc)
                    }));
                    packs += 1;
                }
                pending.recipes.extend(built.recipes);
                objects += built.objects;
                if packs >= SEGMENT_EVERY {
                    self.write_segment(std::mem::take(&mut pending)).await?;
                    report.uploaded += objects;
                    progress.advance(objects, 0);
                    (packs, objects) = (0, 0);
                }
            }
            if !(pending.packs.is_empty() && pending.recipes.is_empty()) {
                self.write_segment(pending).await?;
            }
            report.uploaded += objects;
            progress.advance(objects, 0);
            Ok::<(), RemoteError>(())
        };
        let uploaded = uploading.await;
        // a builder still sending finds the channel closed and stops
        drop(rx);
        let built = join(builder.await);
        progress.finish();
        // the upload's error explains a builder that stopped because of it
        uploaded.and(built)?;
        Ok(report)
    }

    /// Uploads an index segment (after the packs it names), and adds it to the index this
    /// process knows.
    pub(super) async fn write_segment(&self, segment: IndexSegment) -> Result<(), RemoteError> {
        let (id, bytes) = segment.encode().map_err(|e| self.format2_error(e))?;
        crate::crash_point!("push.before_segment");
        self.put_small(&super::super::format2::index_key(&id), bytes.clone())
            .await?;
        if let Some(dir) = &self.packed.index_cache {
            // a cache: failing to keep it costs a GET next time, nothing more
            let path = dir.join(id.to_string());
            let _ = std::fs::create_dir_all(dir)
                .map_err(drop)
                .and_then(|()| crate::fs::write_atomic(&path, &bytes).map_err(drop));
        }
        self.add_segment(id, segment).await;
        Ok(())
    }

    /// Uploads a sealed pack under its name: a local remote copies it (synced, renamed into
    /// place); object stores get one put, or a multipart upload for a pack at least
    /// `multipart_threshold` long (parts of at least 5 MiB, S3's minimum). The bytes sent are
    /// hashed again and must give the pack's name, else the upload is not completed.
    pub(super) async fn put_pack(&self, pack: &SealedPack) -> Result<(), RemoteError> {
        let rel = pack_key(&pack.id);
        let path = pack.file.to_path_buf();
        if let Some(dir) = self.backend().files() {
            let dir = dir.clone();
            let put = tokio::task::spawn_blocking(move || {
                let created = dir.put_with(&rel, |out| {
                    let mut src = std::fs::File::open(&path)?;
                    std::io::copy(&mut src, out).map(drop)
                })?;
                if !created {
                    // There already (same bytes): its time becomes now, as an object store's
                    // overwrite does, so that gc sees it uploaded again after a mark.
                    dir.touch(&rel)?;
                }
                Ok::<(), RemoteError>(())
            });
            join(put.await)?;
            return Ok(());
        }
        let key = self.key(&rel);
        let mismatch = |actual: Digest| {
            self.format2_error(Format2Error::PackMismatch {
                pack: pack.id,
                actual,
                size: pack.size,
            })
        };
        if pack.size < self.settings().multipart_threshold {
            let p = path.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read(&p));
            let bytes = join(read.await).at("cannot read", &path)?;
            let actual = Digest::of_bytes(&bytes);
            if actual != pack.id {
                return Err(mismatch(actual));
            }
            let payload = PutPayload::from(Bytes::from(bytes));
            self.put_retrying(&key, &payload, object_store::PutMode::Overwrite)
                .await
                .map_err(|e| self.store_error(&e, "upload", Some(&key)))?;
            return Ok(());
        }
        // A pack goes up in at most PARTS_PER_PACK parts (fewer if `part_size` is larger):
        // each part is a write request, and a push of many small files should cost a handful
        // of them (`many`, 20,000 files: 41 writes with 8 MiB parts, 26 with two per pack).
        let part_size = part_size_for(pack.size, self.settings().part_size)
            .max(pack.size.div_ceil(PARTS_PER_PACK).next_multiple_of(1 << 20))
            .max(MIN_PART);
        let mut upload = self
            .backend()
            .put_multipart(&key)
            .await
            .map_err(|e| self.store_error(&e, "start a multipart upload of", Some(&key)))?;
        let sent = async {
            let part_err = |e: object_store::Error| self.store_error(&e, "upload a part of", Some(&key));
            let file = std::fs::File::open(&path).at("cannot read", &path)?;
            let mut state = Some((file, Hasher::new()));
            let mut in_flight = tokio::task::JoinSet::new();
            loop {
                let (mut file, mut hasher) = state.take().expect("put back after each part");
                let read = tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::with_capacity(part_size as usize);
                    (&mut file).take(part_size).read_to_end(&mut buf)?;
                    hasher.update_here(&buf);
                    Ok::<_, std::io::Error>((file, hasher, buf))
                });
                let (file, hasher, buf) = join(read.await).at("cannot read", &path)?;
                state = Some((file, hasher));
                if buf.is_empty() {
                    break;
                }
                let short = (buf.len() as u64) < part_size;
                in_flight.spawn(upload.put_part(PutPayload::from(Bytes::from(buf))));
                while in_flight.len() >= PARTS_IN_FLIGHT {
                    let done = in_flight.join_next().await.expect("set is not empty");
                    join(done).map_err(part_err)?;
                }
                if short {
                    break;
                }
            }
            while let Some(done) = in_flight.join_next().await {
                join(done).map_err(part_err)?;
            }
            let (_, hasher) = state.expect("put back after each part");
            let actual = hasher.finish();
            if actual != pack.id {
                return Err(mismatch(actual));
            }
            Ok(())
        };
        let completed = match sent.await {
            Ok(()) => upload
                .complete()
                .await
                .map(drop)
                .map_err(|e| self.store_error(&e, "complete the multipart upload of", Some(&key))),
            Err(e) => Err(e),
        };
        if completed.is_err() {
            // best effort: the original error matters more than a failed abort
            let _ = upload.abort().await;
        }
        completed
    }
}

/// Packs being built on the blocking thread.
struct Packer<'a> {
    cache: &'a Cache,
    index: &'a MergedIndex,
    /// Packs gc marked: their blobs count as absent.
    marked: &'a HashSet<Digest>,
    builder: Option<PackBuilder>,
    /// Blobs appended by this push.
    seen: HashSet<Digest>,
    waiting: Vec<Recipe>,
    objects: u64,
    tx: &'a tokio::sync::mpsc::Sender<Built>,
}

/// The uploader stopped (its error is reported instead).
fn stopped() -> RemoteError {
    RemoteError::Io(crate::fs::IoError::new(
        "cannot hand a pack to the uploader",
        std::path::PathBuf::new(),
        std::io::Error::other("the upload stopped"),
    ))
}

impl Packer<'_> {
    fn builder(&mut self) -> Result<&mut PackBuilder, RemoteError> {
        if self.builder.is_none() {
            self.builder = Some(PackBuilder::new(self.cache.tmp_dir()).map_err(f2)?);
        }
        Ok(self.builder.as_mut().expect("just made"))
    }

    /// Adds a blob unless the remote or this push has it.
    fn add(&mut self, id: Digest, bytes: &[u8]) -> Result<(), RemoteError> {
        if usable(self.index, self.marked, &id) || self.seen.contains(&id) {
            return Ok(());
        }
        if self.builder()?.should_seal_before(bytes.len() as u64) {
            self.seal()?;
        }
        self.builder()?.append(id, bytes).map_err(f2)?;
        self.seen.insert(id);
        Ok(())
    }

    /// Seals the pack being built and hands it over with what it completes.
    fn seal(&mut self) -> Result<(), RemoteError> {
        let pack = match self.builder.take() {
            Some(b) => b.seal().map_err(f2)?,
            None => None,
        };
        let built = Built {
            pack,
            recipes: std::mem::take(&mut self.waiting),
            objects: std::mem::take(&mut self.objects),
        };
        if built.pack.is_none() && built.recipes.is_empty() && built.objects == 0 {
            return Ok(());
        }
        self.tx.blocking_send(built).map_err(|_| stopped())
    }

    /// Adds a chunked file: its chunks, then (once they are packed) its recipe. The file's
    /// bytes are hashed as they are read: a damaged cache object is refused.
    fn add_chunked(&mut self, digest: Digest, config: &RemoteConfig) -> Result<(), RemoteError> {
        let object = self.cache.open(&digest)?;
        let path = object.path.clone();
        let mut chunker = Chunker::new(object.reader, config.chunking).map_err(|reason| {
            f2(Format2Error::BadConfig {
                file: super::super::format2::CONFIG_KEY,
                reason,
            })
        })?;
        let mut whole = Hasher::new();
        let mut chunks = Vec::new();
        loop {
            let next = chunker
                .next_chunk()
                .map_err(|e| cache_read_error(e, &path, digest))?;
            let Some((chunk, bytes)) = next else { break };
            whole.update_here(bytes);
            chunks.push(RecipeChunk {
                id: chunk.id,
                length: chunk.length,
            });
            self.add(chunk.id, bytes)?;
        }
        let actual = whole.finish();
        if actual != digest {
            return Err(CacheError::Corrupt { digest, path, actual }.into());
        }
        self.waiting.push(Recipe::new(digest, chunks));
        Ok(())
    }
}

fn f2(e: Format2Error) -> RemoteError {
    match e {
        Format2Error::Io(io) => RemoteError::Io(io),
        other => RemoteError::Format2 {
            remote: "(local pack)".into(),
            error: Box::new(other),
        },
    }
}

/// Packs the objects `todo` (blocking): files up to the chunking threshold (and manifests) as
/// one blob, larger files as chunks plus a recipe; blobs the index holds are skipped.
fn build_packs(
    cache: &Cache,
    index: &MergedIndex,
    marked: &HashSet<Digest>,
    config: RemoteConfig,
    todo: Vec<Digest>,
    tx: &tokio::sync::mpsc::Sender<Built>,
) -> Result<(), RemoteError> {
    let mut p = Packer {
        cache,
        index,
        marked,
        builder: None,
        seen: HashSet::new(),
        waiting: Vec::new(),
        objects: 0,
        tx,
    };
    for digest in todo {
        let len = cache.object_len(&digest)?;
        if config.chunking.splits(len) {
            p.add_chunked(digest, &config)?;
        } else {
            // verified as it is read: a damaged cache object is never sent
            let bytes = cache.read_verified(&digest)?;
            p.add(digest, &bytes)?;
        }
        p.objects += 1;
    }
    p.seal()
}
