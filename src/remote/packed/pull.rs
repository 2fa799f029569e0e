//! Pull from a format 2 remote: each wanted object is looked up in the index (a blob, or a
//! chunked file's recipe), the blobs are grouped by pack and read with ranged GETs that
//! coalesce neighbours (at most a quarter more bytes than needed), and every blob is verified
//! against its id. Whole objects are published into the cache as they are verified; a chunked
//! file is rebuilt in a cache temporary file and published only once the whole file hashes
//! to its name. Objects in no index are fetched as format 1 objects (an upgraded remote).

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use futures::stream::{self, StreamExt};

use crate::cache::{Cache, Staged};
use crate::fs::IoContext;
use crate::hash::Digest;
use crate::pack::{PackWriter, MAX_PACKED_OBJECT};
use crate::progress::Progress;

use super::super::download::DownloadReport;
use super::super::error::{kind_of, Kind, RemoteError};
use super::super::format2::{pack, pack_key, ChunkParams, Chunker, Format2Error, PackEntry, RemoteConfig};
use super::super::pool::{batch_full, join};
use super::super::store::Remote;

/// No ranged GET is longer (unless one blob is): bounds the memory of `jobs` reads at once.
const MAX_RANGE: u64 = 8 << 20;

/// Where a blob's bytes go.
#[derive(Debug, Clone, Copy)]
enum Use {
    /// It is a wanted object itself.
    Whole,
    /// Into rebuilt file `file` at `offset`.
    At { file: usize, offset: u64 },
}

/// One ranged read of a pack and the blobs it covers.
#[derive(Debug)]
struct Read {
    pack: Digest,
    start: u64,
    end: u64,
    blobs: Vec<PackEntry>,
}

/// A chunked file being rebuilt.
struct Rebuilt {
    digest: Digest,
    size: u64,
    /// Closed between writes: a pull of thousands of large files holds no descriptor each.
    tmp: tempfile::TempPath,
}

/// The state the blocking steps work on (moved in and out of each).
struct Sink {
    cache: Cache,
    replace: bool,
    uses: HashMap<Digest, Vec<Use>>,
    files: Vec<Rebuilt>,
    loose: Vec<Staged>,
    loose_bytes: u64,
    pack: Option<PackWriter>,
    published: u64,
}

impl Sink {
    /// The wanted objects that need the blobs of `read`.
    fn needing(&self, read: &Read) -> Vec<Digest> {
        let mut v = Vec::new();
        for e in &read.blobs {
            for u in self.uses.get(&e.id).map(Vec::as_slice).unwrap_or_default() {
                v.push(match *u {
                    Use::Whole => e.id,
                    Use::At { file, .. } => self.files[file].digest,
                });
            }
        }
        v.sort();
        v.dedup();
        v
    }

    /// Verifies the blobs of one read and puts their bytes where they go.
    fn take(&mut self, read: &Read, bytes: &[u8]) -> Result<(), RemoteError> {
        let got = bytes.len() as u64;
        if got != read.end - read.start {
            return Err(Format2Error::TruncatedPack {
                pack: read.pack,
                expected: read.end,
                actual: read.start + got,
            }
            .into_remote());
        }
        for e in &read.blobs {
            let at = (e.offset - read.start) as usize;
            let b = &bytes[at..at + e.length as usize];
            pack::verify_blob(read.pack, e, b).map_err(Format2Error::into_remote)?;
            let uses = self.uses.get(&e.id).cloned().unwrap_or_default();
            for u in uses {
                match u {
                    Use::Whole => self.whole(e.id, b)?,
                    Use::At { file, offset } => {
                        let path: &std::path::Path = &self.files[file].tmp;
                        std::fs::OpenOptions::new()
                            .write(true)
                            .open(path)
                            .and_then(|f| f.write_all_at(b, offset))
                            .map_err(|err| crate::fs::temp_write_error(path, err))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// A verified whole object: into the cache's pack, or a staged file.
    fn whole(&mut self, digest: Digest, bytes: &[u8]) -> Result<(), RemoteError> {
        if let Some(p) = self
            .pack
            .as_mut()
            .filter(|_| bytes.len() as u64 <= MAX_PACKED_OBJECT)
        {
            p.append(digest, bytes)?;
            if batch_full(p.objects(), p.bytes()) {
                let full = std::mem::replace(p, self.cache.pack_writer()?);
                self.published += self.cache.publish_pack(full)? as u64;
            }
            return Ok(());
        }
        let mut tmp = self.cache.temp_file()?;
        std::io::Write::write_all(tmp.as_file_mut(), bytes)
            .map_err(|e| crate::fs::temp_write_error(tmp.path(), e))?;
        self.loose.push(self.cache.stage_verified(tmp, digest)?);
        self.loose_bytes += bytes.len() as u64;
        if batch_full(self.loose.len(), self.loose_bytes) {
            self.publish_loose()?;
        }
        Ok(())
    }

    fn publish_loose(&mut self) -> Result<(), RemoteError> {
        let batch = std::mem::take(&mut self.loose);
        self.loose_bytes = 0;
        if batch.is_empty() {
            return Ok(());
        }
        let n = batch.len() as u64;
        if self.replace {
            self.cache.publish_replacing(batch)?;
        } else {
            self.cache.publish_staged(batch)?;
        }
        self.published += n;
        Ok(())
    }

    /// Publishes what is verified: whole objects, then each rebuilt file that hashes to its
    /// name (one that does not is an error, and is not published).
    fn finish(&mut self, remote: &str) -> Result<(), RemoteError> {
        let mut first_err = None;
        for f in std::mem::take(&mut self.files) {
            let mut file = std::fs::File::open(&f.tmp).at("cannot read", &f.tmp)?;
            let (actual, size) =
                crate::hash::hash_reader(&mut file).map_err(|e| crate::fs::temp_write_error(&f.tmp, e))?;
            if actual != f.digest || size != f.size {
                first_err.get_or_insert(RemoteError::DamagedFor {
                    objects: vec![f.digest],
                    error: Box::new(RemoteError::Corrupt {
                        remote: remote.to_string(),
                        digest: f.digest,
                        key: "(rebuilt from its recipe in the index)".into(),
                        actual,
                        size,
                    }),
                });
                continue;
            }
            let tmp = tempfile::NamedTempFile::from_parts(file, f.tmp);
            self.loose.push(self.cache.stage_verified(tmp, f.digest)?);
        }
        self.publish_loose()?;
        if let Some(p) = self.pack.take() {
            self.published += self.cache.publish_pack(p)? as u64;
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl Format2Error {
    fn into_remote(self) -> RemoteError {
        RemoteError::Format2 {
            remote: String::new(),
            error: Box::new(self),
        }
    }
}

/// Writes the chunks that local files hold (cut with the remote's parameters, so the same
/// bytes give the same chunks) into the files being rebuilt, and drops those chunks from what
/// is to be downloaded. A chunk's id is the hash of the bytes read, so what is written is what
/// the recipe names; a local file that cannot be read is simply not reused.
fn reuse_local(
    uses: &mut HashMap<Digest, Vec<Use>>,
    files: &[Rebuilt],
    local: &[PathBuf],
    params: ChunkParams,
) -> Result<u64, RemoteError> {
    let mut reused = 0;
    for path in local {
        let Ok(file) = std::fs::File::open(path) else {
            continue;
        };
        let Ok(mut chunker) = Chunker::new(std::io::BufReader::new(file), params) else {
            continue;
        };
        while let Ok(Some((chunk, bytes))) = chunker.next_chunk() {
            let Some(all) = uses.get_mut(&chunk.id) else {
                continue;
            };
            for u in all.iter() {
                if let Use::At { file, offset } = *u {
                    let tmp: &std::path::Path = &files[file].tmp;
                    std::fs::OpenOptions::new()
                        .write(true)
                        .open(tmp)
                        .and_then(|f| f.write_all_at(bytes, offset))
                        .map_err(|err| crate::fs::temp_write_error(tmp, err))?;
                    reused += bytes.len() as u64;
                }
            }
            all.retain(|u| matches!(u, Use::Whole));
            if all.is_empty() {
                uses.remove(&chunk.id);
            }
        }
    }
    Ok(reused)
}

/// Groups the blobs of each pack into reads: sorted by offset, a blob joins the read before
/// it when the gap between them is at most a quarter of the blob (so at most a quarter more
/// bytes are read than needed) and the read stays within [`MAX_RANGE`].
fn plan_reads(mut blobs: BTreeMap<Digest, Vec<PackEntry>>) -> Vec<Read> {
    let mut reads = Vec::new();
    for (pack, entries) in blobs.iter_mut() {
        entries.sort_by_key(|e| e.offset);
        let mut cur: Option<Read> = None;
        for e in entries.iter() {
            if let Some(r) = cur.as_mut() {
                let gap = e.offset.saturating_sub(r.end);
                let end = e.offset + e.length;
                if e.offset >= r.end && gap <= e.length / 4 && end - r.start <= MAX_RANGE {
                    r.end = end;
                    r.blobs.push(*e);
                    continue;
                }
                reads.push(cur.take().expect("some"));
            }
            cur = Some(Read {
                pack: *pack,
                start: e.offset,
                end: e.offset + e.length,
                blobs: vec![*e],
            });
        }
        reads.extend(cur);
    }
    reads
}

impl Remote {
    /// Downloads `wanted` (distinct) from a format 2 remote into the cache (see the module
    /// documentation); `replace` installs each verified copy over the cache's (`fsck --repair`).
    pub(in crate::remote) async fn download_packed(
        &self,
        cache: &Cache,
        wanted: Vec<Digest>,
        replace: bool,
        config: &RemoteConfig,
        reuse: &[(Digest, PathBuf)],
        progress: &dyn Progress,
    ) -> Result<DownloadReport, RemoteError> {
        let mut report = DownloadReport::default();
        let wanted = match replace {
            true => wanted,
            false => {
                let (c, all) = (cache.clone(), wanted.clone());
                let absent = join(tokio::task::spawn_blocking(move || c.missing(&all)).await);
                report.already_present = (wanted.len() - absent.len()) as u64;
                absent
            }
        };
        if wanted.is_empty() {
            return Ok(report);
        }
        let index = self.index().await?;
        let mut v1 = Vec::new();
        let mut missing = Vec::new();
        let mut uses: HashMap<Digest, Vec<Use>> = HashMap::new();
        let mut files = Vec::new();
        for d in &wanted {
            if let Some(recipe) = index.recipe(d) {
                if let Some(c) = recipe.chunks.iter().find(|c| !index.contains(&c.id)) {
                    // the index promises the file and lacks a piece of it: damage, not absence
                    return Err(RemoteError::DamagedFor {
                        objects: vec![*d],
                        error: Box::new(self.format2_error(Format2Error::MissingChunk {
                            file: *d,
                            chunk: c.id,
                        })),
                    });
                }
                let tmp = cache.temp_file()?;
                tmp.as_file()
                    .set_len(recipe.size)
                    .map_err(|e| crate::fs::temp_write_error(tmp.path(), e))?;
                let mut offset = 0;
                for c in &recipe.chunks {
                    uses.entry(c.id).or_default().push(Use::At {
                        file: files.len(),
                        offset,
                    });
                    offset += u64::from(c.length);
                }
                files.push(Rebuilt {
                    digest: *d,
                    size: recipe.size,
                    tmp: tmp.into_temp_path(),
                });
            } else if index.contains(d) {
                uses.entry(*d).or_default().push(Use::Whole);
            } else {
                v1.push(*d);
            }
        }
        let local: Vec<PathBuf> = reuse
            .iter()
            .filter(|(d, _)| files.iter().any(|f| f.digest == *d))
            .map(|(_, p)| p.clone())
            .collect();
        if !local.is_empty() {
            let params = config.chunking;
            let (u, f, reused) = join(
                tokio::task::spawn_blocking(move || {
                    let reused = reuse_local(&mut uses, &files, &local, params);
                    (uses, files, reused)
                })
                .await,
            );
            (uses, files) = (u, f);
            reused?;
        }
        let mut by_pack: BTreeMap<Digest, Vec<PackEntry>> = BTreeMap::new();
        for id in uses.keys() {
            let loc = index.blob(id).expect("only blobs in the index are used");
            by_pack.entry(loc.pack).or_default().push(PackEntry {
                id: *id,
                offset: u64::from(loc.offset),
                length: u64::from(loc.length),
            });
        }
        let reads = plan_reads(by_pack);
        let bytes: u64 = reads.iter().map(|r| r.end - r.start).sum();
        let objects = (uses
            .values()
            .flatten()
            .filter(|u| matches!(u, Use::Whole))
            .count()
            + files.len()) as u64;
        progress.start("downloading", objects, bytes);
        let pack = match !replace && cache.packs_for(objects as usize) {
            true => Some(cache.pack_writer()?),
            false => None,
        };
        let mut sink = Some(Sink {
            cache: cache.clone(),
            replace,
            uses,
            files,
            loose: Vec::new(),
            loose_bytes: 0,
            pack,
            published: 0,
        });
        let mut fetched = stream::iter(reads)
            .map(|r| async move {
                let got = self.read_range(&r).await;
                (r, got)
            })
            .buffer_unordered(self.jobs());
        let mut failed = None;
        while let Some((read, got)) = fetched.next().await {
            let bytes = match got {
                Ok(Some(b)) => b,
                Ok(None) => {
                    // the index names a pack the remote lacks: damage, not absence
                    let s = sink.as_ref().expect("put back");
                    failed = Some(RemoteError::DamagedFor {
                        objects: s.needing(&read),
                        error: Box::new(self.format2_error(Format2Error::MissingPack {
                            pack: read.pack,
                            blob: read.blobs[0].id,
                        })),
                    });
                    break;
                }
                Err(e) => {
                    let s = sink.as_ref().expect("put back");
                    failed = Some(match e {
                        e @ RemoteError::Format2 { .. } => RemoteError::DamagedFor {
                            objects: s.needing(&read),
                            error: Box::new(e),
                        },
                        other => other,
                    });
                    break;
                }
            };
            report.downloaded_bytes += bytes.len() as u64;
            progress.advance(0, bytes.len() as u64);
            let mut s = sink.take().expect("put back");
            let (s, took) = join(
                tokio::task::spawn_blocking(move || {
                    let took = s.take(&read, &bytes).map_err(|e| match e {
                        e @ RemoteError::Format2 { .. } => RemoteError::DamagedFor {
                            objects: s.needing(&read),
                            error: Box::new(e),
                        },
                        other => other,
                    });
                    (s, took)
                })
                .await,
            );
            sink = Some(s);
            if let Err(e) = took {
                failed = Some(e);
                break;
            }
        }
        drop(fetched);
        let mut s = sink.take().expect("put back");
        if failed.is_some() {
            // nothing half-rebuilt is published; whole objects verified so far are
            s.files.clear();
        }
        let remote = self.display_name().to_string();
        let (s, finished) = join(
            tokio::task::spawn_blocking(move || {
                let r = s.finish(&remote);
                (s, r)
            })
            .await,
        );
        report.downloaded += s.published;
        progress.advance(s.published, 0);
        progress.finish();
        if let Some(e) = failed {
            return Err(self.named(e));
        }
        finished.map_err(|e| self.named(e))?;
        if !v1.is_empty() {
            match self.download_v1(cache, &v1, progress, replace).await {
                Ok(r) => {
                    report.downloaded += r.downloaded;
                    report.downloaded_bytes += r.downloaded_bytes;
                    report.already_present += r.already_present;
                }
                Err(RemoteError::MissingObjects { digests, .. }) => missing.extend(digests),
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            return Ok(report);
        }
        missing.sort();
        missing.dedup();
        Err(RemoteError::MissingObjects {
            remote: self.display_name().to_string(),
            digests: missing,
        })
    }

    /// Names this remote in a format 2 error made without it.
    fn named(&self, e: RemoteError) -> RemoteError {
        match e {
            RemoteError::Format2 { error, .. } => self.format2_error(*error),
            RemoteError::DamagedFor { objects, error } => RemoteError::DamagedFor {
                objects,
                error: Box::new(self.named(*error)),
            },
            other => other,
        }
    }

    /// The bytes of one read; `None` if the pack is absent.
    async fn read_range(&self, r: &Read) -> Result<Option<bytes::Bytes>, RemoteError> {
        if r.start == r.end {
            // empty blobs only: nothing to read (an empty range is not a valid request)
            return Ok(Some(bytes::Bytes::new()));
        }
        let key = self.key(&pack_key(&r.pack));
        let got = match self.backend().get(&key, Some(r.start..r.end)).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => {
                // a range past the end is refused (each store in its own words): a pack
                // shorter than the index says is damage, told apart by its size
                if let Ok(meta) = self.backend().head(&key).await {
                    if meta.size < r.end {
                        return Err(Format2Error::TruncatedPack {
                            pack: r.pack,
                            expected: r.end,
                            actual: meta.size,
                        }
                        .into_remote());
                    }
                }
                return Err(self.store_error(&e, "download", Some(&key)));
            }
        };
        match got.bytes().await {
            Ok(b) => Ok(Some(b)),
            Err(e) => Err(self.store_error(&e, "download", Some(&key))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(n: u8, offset: u64, length: u64) -> PackEntry {
        PackEntry {
            id: Digest::of_bytes(&[n]),
            offset,
            length,
        }
    }

    #[test]
    fn reads_coalesce_close_neighbours_only_and_amplify_at_most_a_quarter() {
        let p = Digest::of_bytes(b"p");
        let blobs = BTreeMap::from([(
            p,
            vec![
                e(3, 5000, 100),
                e(1, 8, 1000),
                e(2, 1200, 1000),
                e(4, 5100, 8 << 20),
            ],
        )]);
        let reads = plan_reads(blobs);
        let spans: Vec<(u64, u64, usize)> = reads.iter().map(|r| (r.start, r.end, r.blobs.len())).collect();
        // 8..1008 and 1200..2200 (gap 192 <= 250) join; 5000 is too far; the 8 MiB blob would
        // make the read longer than MAX_RANGE
        assert_eq!(
            spans,
            [(8, 2200, 2), (5000, 5100, 1), (5100, 5100 + (8 << 20), 1)]
        );
        let needed: u64 = reads.iter().flat_map(|r| &r.blobs).map(|b| b.length).sum();
        let read: u64 = reads.iter().map(|r| r.end - r.start).sum();
        assert!(read * 4 <= needed * 5);
    }
}
