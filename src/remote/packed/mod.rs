//! Transfers to and from remote format 2 (issue 16): which format a remote uses (read once from
//! its `mlv-remote.toml`), `mlv remote upgrade`, and the local copy of its index.
//!
//! - `push`: blobs the index lacks go into packs (files up to the chunking threshold whole,
//!   larger ones as content-defined chunks plus a recipe); a segment describing the packs is
//!   written after them, every [`push::SEGMENT_EVERY`] packs and at the end;
//! - `pull`: blobs looked up in the index, grouped by pack, read with coalesced ranged GETs,
//!   each verified; chunked files rebuilt in a cache temporary file and verified whole before
//!   they are published.
//!
//! A format 2 remote's reads look in its index first, then at format 1 keys (a remote
//! upgraded from format 1 keeps its old objects where they are). Whether there can be any is
//! answered by one listing of the remote's top level (its fan-out directories), so a remote
//! that never was format 1 costs no request per object.

mod check;
mod gc;
mod pull;
mod push;

pub use check::{Damage, DamageKind, Item, PackedCheck};
pub use gc::{GcPack, GcRepack, PackedGcOptions, PackedGcReport};

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::PutPayload;

use crate::hash::Digest;

use super::error::{kind_of, Kind, RemoteError};
use super::format2::{self, Format2Error, IndexBuilder, IndexSegment, MergedIndex, RemoteConfig, CONFIG_KEY};
use super::store::Remote;

/// Which format a remote uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    /// One object per file (no `mlv-remote.toml`).
    V1,
    /// Packs and an index, with these parameters.
    V2(RemoteConfig),
}

/// What `mlv remote upgrade` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Upgrade {
    /// The config document was written: the remote is format 2 from now on.
    Upgraded,
    /// The remote was format 2 already; nothing was written.
    AlreadyFormat2,
}

/// A remote's format 2 state, kept for the life of the opened remote.
#[derive(Default)]
pub(crate) struct PackedState {
    /// Where index segments are kept locally (see [`Remote::with_index_cache`]).
    pub(super) index_cache: Option<PathBuf>,
    format: tokio::sync::OnceCell<Format>,
    /// Set when this process made the remote format 2 (its first upload); wins over `format`.
    initialised: std::sync::OnceLock<Format>,
    has_v1: tokio::sync::OnceCell<bool>,
    index: tokio::sync::Mutex<Option<Loaded>>,
    /// The packs gc marked, read once (see `gc.rs`).
    marked: tokio::sync::OnceCell<Arc<HashSet<Digest>>>,
}

/// The index as this process knows it: the names of the segments it holds (read once, then
/// those this process wrote) and their merge. The segments themselves are not kept: the merge
/// is all lookups need, and keeping both would double the memory.
#[derive(Default)]
struct Loaded {
    names: HashSet<Digest>,
    merged: Arc<MergedIndex>,
}

/// The largest config document read.
const MAX_CONFIG: u64 = 64 << 10;
/// The largest index segment read (a segment of ten million blobs is ~600 MB).
const MAX_SEGMENT: u64 = 1 << 30;

impl Remote {
    /// The remote's format, read from its `mlv-remote.toml` on first use (one GET; on a format
    /// 1 remote that is the one request format 2 adds to a command).
    pub async fn format(&self) -> Result<&Format, RemoteError> {
        if let Some(format) = self.packed.initialised.get() {
            return Ok(format);
        }
        self.packed
            .format
            .get_or_try_init(|| async {
                let key = self.key(CONFIG_KEY);
                match self.get_bytes(&key, MAX_CONFIG, "read").await? {
                    // (a missing bucket looks like a missing document: the requests that
                    // follow find out, as they do on any format 1 remote)
                    None => Ok(Format::V1),
                    Some(bytes) => RemoteConfig::parse(&bytes)
                        .map(Format::V2)
                        .map_err(|e| self.format2_error(e)),
                }
            })
            .await
    }

    /// The format 2 parameters, if the remote uses format 2.
    pub(super) async fn format2(&self) -> Result<Option<RemoteConfig>, RemoteError> {
        Ok(match self.format().await? {
            Format::V1 => None,
            Format::V2(c) => Some(*c),
        })
    }

    /// Turns the remote into a format 2 remote by writing its config document (nothing else
    /// changes: format 1 objects stay where they are, readable by older clones). Idempotent on
    /// a format 2 remote; a remote of a newer format is refused (the error of [`Remote::format`]).
    pub async fn upgrade(&self) -> Result<Upgrade, RemoteError> {
        if let Format::V2(_) = self.format().await? {
            return Ok(Upgrade::AlreadyFormat2);
        }
        let bytes = RemoteConfig::default().to_bytes();
        self.put_small(CONFIG_KEY, bytes).await?;
        Ok(Upgrade::Upgraded)
    }

    /// Before an upload: a remote that holds nothing yet (no config document, no format 1
    /// object) is made format 2 by writing its config document, unless the remote's `format`
    /// option asks for format 1. The document is the same bytes for every client of this
    /// release (the default parameters, serialized deterministically), so two first pushes at
    /// once write the same document and agree; a remote holding format 1 objects, or already
    /// format 2, is left as it is.
    pub(crate) async fn initialise(&self) -> Result<(), RemoteError> {
        if self.settings().new_format < 2
            || self.format().await? != &Format::V1
            || self.has_v1_objects().await?
        {
            return Ok(());
        }
        let config = RemoteConfig::default();
        self.put_small(CONFIG_KEY, config.to_bytes()).await?;
        let _ = self.packed.initialised.set(Format::V2(config));
        Ok(())
    }

    pub(super) fn format2_error(&self, error: Format2Error) -> RemoteError {
        RemoteError::Format2 {
            remote: self.display_name().to_string(),
            error: Box::new(error),
        }
    }

    /// A whole object read into memory, `None` if absent; larger than `limit`: an error.
    async fn get_bytes(
        &self,
        key: &ObjectPath,
        limit: u64,
        op: &'static str,
    ) -> Result<Option<Vec<u8>>, RemoteError> {
        let got = match self.backend().get(key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&e, op, Some(key))),
        };
        if got.meta.size > limit {
            return Err(RemoteError::Backend {
                remote: self.display_name().to_string(),
                op,
                key: Some(key.to_string()),
                detail: format!("{} bytes is more than the {limit} expected", got.meta.size),
            });
        }
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.store_error(&e, op, Some(key)))?;
        Ok(Some(bytes.to_vec()))
    }

    /// Writes a small object at `rel` (under the prefix) from memory: a local remote syncs and
    /// renames it into place without replacing an existing one; object stores get one put.
    async fn put_small(&self, rel: &str, bytes: Vec<u8>) -> Result<(), RemoteError> {
        if let Some(dir) = self.backend().files() {
            let (dir, rel) = (dir.clone(), rel.to_string());
            let put = tokio::task::spawn_blocking(move || {
                dir.put_with(&rel, |f| std::io::Write::write_all(f, &bytes))
            });
            super::pool::join(put.await)?;
            return Ok(());
        }
        let key = self.key(rel);
        let payload = PutPayload::from(bytes::Bytes::from(bytes));
        self.put_retrying(&key, &payload, object_store::PutMode::Overwrite)
            .await
            .map_err(|e| self.store_error(&e, "upload", Some(&key)))?;
        Ok(())
    }

    /// Whether the remote may hold format 1 objects: one listing of its top level, looking for
    /// fan-out directories (`ab/`). Asked once.
    pub(super) async fn has_v1_objects(&self) -> Result<bool, RemoteError> {
        self.packed
            .has_v1
            .get_or_try_init(|| async {
                let store = self.backend().object_store();
                match store.list_with_delimiter(self.prefix()).await {
                    Ok(listed) => Ok(listed.common_prefixes.iter().any(|p| {
                        p.filename()
                            .is_some_and(|n| n.len() == 2 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                    })),
                    Err(e) if kind_of(&e) == Kind::NotFound => Ok(false),
                    Err(e) => Err(self.store_error(&e, "list", self.prefix())),
                }
            })
            .await
            .copied()
    }

    /// The remote's index: on first use, one listing of `index/` and a GET of each segment
    /// not kept locally (each checked against its name before use, and kept); afterwards what
    /// this process knows (segments it wrote included).
    pub(super) async fn index(&self) -> Result<Arc<MergedIndex>, RemoteError> {
        let mut guard = self.packed.index.lock().await;
        if let Some(loaded) = guard.as_ref() {
            return Ok(loaded.merged.clone());
        }
        let names = self.list_segments().await?;
        // each segment is folded in as it arrives and dropped
        let mut builder = IndexBuilder::default();
        let mut loads = futures::stream::iter(names.iter().copied())
            .map(|id| self.load_segment(id))
            .buffer_unordered(self.jobs());
        while let Some(segment) = loads.next().await {
            builder.add(&segment?);
        }
        drop(loads);
        let merged = Arc::new(builder.finish());
        *guard = Some(Loaded {
            names: names.into_iter().collect(),
            merged: merged.clone(),
        });
        Ok(merged)
    }

    /// Adds a segment this process wrote to the index it knows (merged in; not kept).
    async fn add_segment(&self, id: Digest, segment: IndexSegment) {
        let mut guard = self.packed.index.lock().await;
        let loaded = guard.get_or_insert_with(Loaded::default);
        if loaded.names.insert(id) {
            Arc::make_mut(&mut loaded.merged).add(&segment);
        }
    }

    /// The names of the index segments on the remote (one listing of `index/`).
    async fn list_segments(&self) -> Result<Vec<Digest>, RemoteError> {
        let prefix = self.key(format2::INDEX_PREFIX);
        let mut listing = self.backend().list(Some(&prefix));
        let mut names = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => {
                    let id = meta.location.filename().and_then(|n| n.parse::<Digest>().ok());
                    if let Some(id) = id.filter(|id| self.key(&format2::index_key(id)) == meta.location) {
                        names.push(id);
                    }
                }
                Err(e) if kind_of(&e) == Kind::NotFound => break,
                Err(e) => return Err(self.store_error(&e, "list", Some(&prefix))),
            }
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// One segment: the local copy if it decodes (its name is checked), else from the remote
    /// (then kept locally).
    async fn load_segment(&self, id: Digest) -> Result<IndexSegment, RemoteError> {
        let local = self.packed.index_cache.as_ref().map(|d| d.join(id.to_string()));
        if let Some(path) = &local {
            if let Ok(bytes) = std::fs::read(path) {
                if let Ok(segment) = IndexSegment::decode(id, &bytes) {
                    return Ok(segment);
                }
            }
        }
        let key = self.key(&format2::index_key(&id));
        let Some(bytes) = self
            .get_bytes(&key, MAX_SEGMENT, "read the index segment")
            .await?
        else {
            // listed a moment ago: deleted since (a concurrent maintenance); nothing to add
            return Ok(IndexSegment::default());
        };
        let segment = IndexSegment::decode(id, &bytes).map_err(|e| self.format2_error(e))?;
        if let Some(path) = local {
            // a cache: failing to keep it costs a GET next time, nothing more
            let _ = std::fs::create_dir_all(path.parent().expect("a file in a directory"))
                .map_err(drop)
                .and_then(|()| crate::fs::write_atomic(&path, &bytes).map_err(drop));
        }
        Ok(segment)
    }

    /// Format 2 presence: those of `wanted` (distinct) that neither the index (a blob, or a
    /// chunked file's recipe, in packs gc has not marked) nor, on a remote that may hold them, format 1 keys hold.
    pub(super) async fn missing_packed(&self, wanted: Vec<Digest>) -> Result<Vec<Digest>, RemoteError> {
        let index = self.index().await?;
        // a blob whose only copy is in a pack gc marked counts as absent (see `gc.rs`)
        let marked = self.marked_packs().await?;
        let absent: Vec<Digest> = wanted
            .into_iter()
            .filter(|d| !gc::holds(&index, &marked, d))
            .collect();
        if absent.is_empty() || !self.has_v1_objects().await? {
            return Ok(absent);
        }
        let present = self.stat(&absent).await?;
        Ok(absent.into_iter().filter(|d| !present.contains_key(d)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Loaded {
        /// Bytes of heap held: the merge and the segment names.
        fn heap_bytes(&self) -> usize {
            self.merged.heap_bytes() + self.names.capacity() * (std::mem::size_of::<Digest>() + 1)
        }
    }

    /// What a remote's index costs this process, per blob, after a load and after each of
    /// several pushes added its segment: at most 64 bytes (the target; restic is at
    /// ~62). Computed from capacities; the segments themselves are not kept.
    #[test]
    fn the_loaded_index_holds_at_most_64_bytes_per_blob() {
        const N: u64 = 400_000;
        let segments = format2::index::tests::pushes(N, 8);
        let mut builder = IndexBuilder::default();
        for s in &segments[..4] {
            builder.add(s);
        }
        let mut loaded = Loaded {
            names: (0..4u8).map(|i| Digest::of_bytes(&[i])).collect(),
            merged: Arc::new(builder.finish()),
        };
        for (i, s) in segments[4..].iter().enumerate() {
            let held = loaded.merged.clone(); // a pull still holding the index it read
            loaded.names.insert(Digest::of_bytes(&[10 + i as u8]));
            Arc::make_mut(&mut loaded.merged).add(s);
            drop(held);
            let n = loaded.merged.len() as f64;
            let per_blob = loaded.heap_bytes() as f64 / n;
            assert!(per_blob <= 64.0, "after push {i}: {per_blob} bytes per blob");
        }
        assert_eq!(loaded.merged.len(), N as usize);
    }
}
