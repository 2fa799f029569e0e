//! `gc --remote` on a format 2 remote, in two phases as rustic and kopia prune (see "Remote
//! format 2: gc" in docs/format.md and the guarantees in docs/reliability.md):
//!
//! 1. **mark**: packs holding no needed blob (a live blob no other pack holds), last written
//!    longer ago than the grace period, are listed in a new immutable marker document
//!    `gc/marks/<id>`; the marker's last-modified time, as the server records it, is when
//!    they were marked. With repack, a pack mostly unused has its needed blobs copied into
//!    new packs (and a segment naming them) first, then is marked. A push that starts after that
//!    treats the blobs of marked packs as absent and uploads them again (see [`Remote::marked_packs`]).
//! 2. **sweep** (a later run): the packs of a marker older than the grace period (measured
//!    against the server's clock: a probe object's last-modified time) are deleted unless
//!    they hold a needed blob again or were uploaded again after the mark. In this order, so
//!    that a kill at any step leaves a remote every reader handles:
//!    a replacement index segment (every segment read, without the deleted packs' entries)
//!    is written; then the segments it replaces are deleted; then the packs; then the
//!    markers. No segment ever names a deleted pack.
//!
//! Nothing is deleted that is not a pack, an index segment or a gc document of the format 2
//! layout (keys checked against their names).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use serde::Serialize;

use crate::hash::Digest;

use super::super::error::{kind_of, Kind, RemoteError};
use super::super::format2::{
    self, pack::PackEntry, BlobLocation, IndexSegment, MergedIndex, PackBuilder, Recipe,
};
use super::super::store::Remote;

/// The key prefix of markers.
pub const MARK_PREFIX: &str = "gc/marks";
/// The key prefix of clock probes.
pub const CLOCK_PREFIX: &str = "gc/clock";
/// The first line of every marker.
pub const MARK_MAGIC: &str = "mlv-gc-mark 1\n";
/// The largest marker read (a million packs: 65 MB).
const MAX_MARK: u64 = 128 << 20;

/// The key of a marker, relative to the remote's prefix.
pub fn mark_key(id: &Digest) -> String {
    format!("{MARK_PREFIX}/{id}")
}

/// A marker document: a line naming the gc run that wrote it (so that two runs marking the
/// same packs never write the same name, which a sweep could delete as the older marker's),
/// then its packs, sorted. Bytes: [`MARK_MAGIC`]; `run `, the run's 64 lowercase hex digits
/// and `\n`; per pack its id in lowercase hex and `\n`. Named by the blake3 of those bytes.
pub fn encode_mark(run: &Digest, packs: &BTreeSet<Digest>) -> (Digest, Vec<u8>) {
    let mut out = Vec::with_capacity(MARK_MAGIC.len() + 69 + packs.len() * 65);
    out.extend_from_slice(MARK_MAGIC.as_bytes());
    out.extend_from_slice(format!("run {run}\n").as_bytes());
    for p in packs {
        out.extend_from_slice(p.to_string().as_bytes());
        out.push(b'\n');
    }
    (Digest::of_bytes(&out), out)
}

/// Parses marker `id`: its packs, or `None` if the bytes are not a marker of that name (a
/// damaged marker marks nothing; gc leaves it alone).
pub fn decode_mark(id: &Digest, bytes: &[u8]) -> Option<Vec<Digest>> {
    if Digest::of_bytes(bytes) != *id {
        return None;
    }
    let text = std::str::from_utf8(bytes).ok()?.strip_prefix(MARK_MAGIC)?;
    let (run, rest) = text.split_once('\n')?;
    let run: Digest = run.strip_prefix("run ")?.parse().ok()?;
    let _ = run;
    if rest.is_empty() {
        return Some(Vec::new());
    }
    let body = rest.strip_suffix('\n')?;
    let mut packs = Vec::new();
    for line in body.split('\n') {
        let d: Digest = line.parse().ok()?;
        if line != d.to_string() || packs.last().is_some_and(|l| *l >= d) {
            return None;
        }
        packs.push(d);
    }
    Some(packs)
}

/// A marker on the remote.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    id: Digest,
    /// When the server wrote it.
    written: SystemTime,
    packs: Vec<Digest>,
}

/// Options of [`Remote::gc_packed`].
#[derive(Debug, Clone, Copy)]
pub struct PackedGcOptions {
    /// How long a pack stays marked before it is deleted (and how old an unreferenced pack
    /// must be to be marked).
    pub grace: Duration,
    /// Only report.
    pub dry_run: bool,
    /// Also repack packs mostly unused: copy their needed blobs into new packs, then mark
    /// them.
    pub repack: bool,
}

/// A pack repacked (or to be): its needed blobs copied into a new pack, the pack marked.
#[derive(Debug, Clone, Serialize)]
pub struct GcRepack {
    /// Its id.
    pub pack: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Blobs copied out.
    pub kept_blobs: u64,
    /// Their bytes.
    pub kept_bytes: u64,
}

/// One pack marked or deleted (or to be).
#[derive(Debug, Clone, Serialize)]
pub struct GcPack {
    /// Its id.
    pub pack: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// What gc did (or would do) to a format 2 remote's packs.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PackedGcReport {
    /// Packs this run marked (or would mark), repacked ones included.
    pub marked: Vec<GcPack>,
    /// With `--repack`: packs mostly unused whose needed blobs were copied into new packs
    /// before they were marked.
    pub repacked: Vec<GcRepack>,
    /// Packs deleted (or to delete): marked longer ago than the grace period, still unused.
    pub deleted: Vec<GcPack>,
    /// Their bytes.
    pub deleted_bytes: u64,
    /// Packs marked earlier, still within the grace period.
    pub waiting: u64,
    /// Packs marked earlier that are in use again (or were uploaded again): kept, unmarked.
    pub revived: u64,
    /// Packs holding a live blob.
    pub live_packs: u64,
    /// Unmarked packs without a live blob kept because they were written within the grace
    /// period (a push may be using them).
    pub recent_packs: u64,
    /// Index segments replaced by one merged segment (or to be).
    pub segments_merged: u64,
    /// Markers removed (their packs deleted or revived).
    pub markers_removed: u64,
    /// Markers that could not be read (left alone; their packs stay).
    pub bad_markers: u64,
}

/// A pack as listed.
#[derive(Debug, Clone, Copy)]
struct Listed {
    size: u64,
    modified: SystemTime,
}

impl Remote {
    /// The packs named by the remote's markers (one listing of `gc/marks/`, a GET of each;
    /// read once): a push treats their blobs as absent.
    pub(super) async fn marked_packs(&self) -> Result<Arc<HashSet<Digest>>, RemoteError> {
        self.packed
            .marked
            .get_or_try_init(|| async {
                let marks = self.marks().await?;
                Ok(Arc::new(marks.0.into_iter().flat_map(|m| m.packs).collect()))
            })
            .await
            .cloned()
    }

    /// The markers (and how many could not be read).
    async fn marks(&self) -> Result<(Vec<Mark>, u64), RemoteError> {
        let prefix = self.key(MARK_PREFIX);
        let listed = self.list_named(&prefix, |id| self.key(&mark_key(id))).await?;
        let mut out = Vec::new();
        let mut bad = 0;
        for (id, meta) in listed {
            let key = self.key(&mark_key(&id));
            let Some(bytes) = self.get_bytes(&key, MAX_MARK, "read the gc marker").await? else {
                continue; // deleted since it was listed: its packs are handled
            };
            match decode_mark(&id, &bytes) {
                Some(packs) => out.push(Mark {
                    id,
                    written: meta.modified,
                    packs,
                }),
                None => bad += 1,
            }
        }
        Ok((out, bad))
    }

    /// The objects under `prefix` whose key is `key_of` their file name (a digest).
    async fn list_named(
        &self,
        prefix: &ObjectPath,
        key_of: impl Fn(&Digest) -> ObjectPath,
    ) -> Result<Vec<(Digest, Listed)>, RemoteError> {
        let mut listing = self.backend().list(Some(prefix));
        let mut out = Vec::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => {
                    let id = meta.location.filename().and_then(|n| n.parse::<Digest>().ok());
                    if let Some(id) = id.filter(|id| key_of(id) == meta.location) {
                        let listed = Listed {
                            size: meta.size,
                            modified: SystemTime::from(meta.last_modified),
                        };
                        out.push((id, listed));
                    }
                }
                Err(e) if kind_of(&e) == Kind::NotFound => break,
                Err(e) => return Err(self.store_error(&e, "list", Some(prefix))),
            }
        }
        out.sort_by_key(|(id, _)| *id);
        out.dedup_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// The server's clock: the last-modified time of a probe object written, read and
    /// deleted (`gc/clock/<run>`).
    async fn server_now(&self, nonce: &Digest) -> Result<SystemTime, RemoteError> {
        let rel = format!("{CLOCK_PREFIX}/{nonce}");
        self.put_small(&rel, b"mlv gc clock probe\n".to_vec()).await?;
        let key = self.key(&rel);
        let meta = self
            .backend()
            .head(&key)
            .await
            .map_err(|e| self.store_error(&e, "read the time of", Some(&key)))?;
        self.delete_key(&key).await?;
        Ok(SystemTime::from(meta.last_modified))
    }

    /// Deletes a key; one already gone is not an error.
    async fn delete_key(&self, key: &ObjectPath) -> Result<(), RemoteError> {
        match self.backend().delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if kind_of(&e) == Kind::NotFound => Ok(()),
            Err(e) => Err(self.store_error(&e, "delete", Some(key))),
        }
    }

    /// Collects a format 2 remote's packs in two phases (see the module documentation):
    /// `live` holds the digests of every object in scope (files, manifests and the files of
    /// kept directories).
    pub async fn gc_packed(
        &self,
        live: &HashSet<Digest>,
        opts: PackedGcOptions,
    ) -> Result<PackedGcReport, RemoteError> {
        let mut report = PackedGcReport::default();
        // Dry runs write nothing, not even the probe: their "now" is this machine's clock.
        // this run's name: random enough that no two runs share it
        let run = Digest::of_bytes(
            format!(
                "{} {:?} {:?}",
                std::process::id(),
                SystemTime::now(),
                std::time::Instant::now()
            )
            .as_bytes(),
        );
        let now = if opts.dry_run {
            SystemTime::now()
        } else {
            self.server_now(&run).await?
        };
        let older_than_grace = |t: SystemTime| now.duration_since(t).is_ok_and(|age| age >= opts.grace);
        let (marks, bad) = self.marks().await?;
        report.bad_markers = bad;
        let packs: HashMap<Digest, Listed> = self
            .list_named(&self.key(format2::PACK_PREFIX), |id| {
                self.key(&format2::pack_key(id))
            })
            .await?
            .into_iter()
            .collect();
        let segment_names = self.list_segments().await?;
        let mut segments = Vec::with_capacity(segment_names.len());
        for id in &segment_names {
            segments.push((*id, self.load_segment(*id).await?));
        }

        // what each indexed pack holds, where each blob is, and the blobs in use
        let mut in_pack: HashMap<Digest, Vec<(Digest, BlobLocation)>> = HashMap::new();
        let mut homes: HashMap<Digest, Vec<Digest>> = HashMap::new();
        let mut recipes: HashMap<Digest, &Recipe> = HashMap::new();
        for (_, s) in &segments {
            for (blob, loc) in &s.blobs {
                in_pack.entry(loc.pack).or_default().push((*blob, *loc));
                homes.entry(*blob).or_default().push(loc.pack);
            }
            for r in &s.recipes {
                recipes.entry(r.file).or_insert(r);
            }
        }
        let mut live_blobs: HashSet<Digest> = HashSet::new();
        for d in live {
            live_blobs.insert(*d);
            if let Some(r) = recipes.get(d) {
                live_blobs.extend(r.chunks.iter().map(|c| c.id));
            }
        }
        // The live blobs of pack `p` with no copy in another pack that is there and not in
        // `going` (marked, or about to be).
        let needed = |p: &Digest, going: &HashSet<Digest>| -> Vec<(Digest, BlobLocation)> {
            let Some(blobs) = in_pack.get(p) else {
                return Vec::new();
            };
            let mut out: Vec<(Digest, BlobLocation)> = blobs
                .iter()
                .filter(|(b, _)| live_blobs.contains(b))
                .filter(|(b, _)| {
                    !homes[b]
                        .iter()
                        .any(|q| q != p && packs.contains_key(q) && !going.contains(q))
                })
                .copied()
                .collect();
            out.sort_by_key(|(b, _)| *b);
            out.dedup_by_key(|(b, _)| *b);
            out
        };

        // sweep: markers older than the grace period
        let mut swept_marks = Vec::new();
        let mut still_marked: HashSet<Digest> = HashSet::new();
        let mut candidates: BTreeSet<Digest> = BTreeSet::new();
        let mut revived: HashSet<Digest> = HashSet::new();
        for m in &marks {
            if !older_than_grace(m.written) {
                still_marked.extend(m.packs.iter().copied());
            }
        }
        for m in marks.iter().filter(|m| older_than_grace(m.written)) {
            swept_marks.push(m.id);
            for p in &m.packs {
                let Some(listed) = packs.get(p) else { continue };
                // uploaded again since the mark (or in its second: S3 keeps whole seconds)
                if listed.modified >= m.written {
                    revived.insert(*p);
                } else if !still_marked.contains(p) {
                    candidates.insert(*p);
                }
            }
        }
        let mut going: HashSet<Digest> = candidates.iter().copied().collect();
        going.extend(still_marked.iter().copied());
        let mut doomed: BTreeSet<Digest> = BTreeSet::new();
        for p in &candidates {
            // in use again, with no copy elsewhere: kept, and no longer marked
            if needed(p, &going).is_empty() {
                doomed.insert(*p);
            } else {
                revived.insert(*p);
            }
        }
        // a pack both revived and doomed by two markers stays
        doomed.retain(|p| !revived.contains(p));
        report.revived = revived.len() as u64;
        report.waiting = still_marked.iter().filter(|p| packs.contains_key(p)).count() as u64;

        // mark: packs whose live blobs all have a copy elsewhere (most often none is live),
        // written before the grace period, not marked yet; oldest first, so that of two
        // copies the older goes. With repack, a pack mostly unused has its needed blobs
        // copied into a new pack first.
        let mut going: HashSet<Digest> = doomed.iter().copied().collect();
        going.extend(still_marked.iter().copied());
        let mut order: Vec<(&Digest, &Listed)> = packs.iter().collect();
        order.sort_by_key(|(id, l)| (l.modified, **id));
        let mut to_mark: BTreeSet<Digest> = BTreeSet::new();
        let mut to_repack: Vec<(Digest, Vec<(Digest, BlobLocation)>)> = Vec::new();
        for (id, listed) in order {
            if going.contains(id) {
                continue;
            }
            let keep = needed(id, &going);
            if !older_than_grace(listed.modified) {
                if keep.is_empty() {
                    report.recent_packs += 1;
                } else {
                    report.live_packs += 1;
                }
                continue;
            }
            let kept_bytes: u64 = keep.iter().map(|(_, l)| u64::from(l.length)).sum();
            if keep.is_empty() {
                to_mark.insert(*id);
                going.insert(*id);
            } else if opts.repack && kept_bytes * 2 < listed.size {
                to_repack.push((*id, keep));
                to_mark.insert(*id);
                going.insert(*id);
            } else {
                report.live_packs += 1;
            }
        }
        report.repacked = to_repack
            .iter()
            .map(|(p, keep)| GcRepack {
                pack: *p,
                size: packs[p].size,
                kept_blobs: keep.len() as u64,
                kept_bytes: keep.iter().map(|(_, l)| u64::from(l.length)).sum(),
            })
            .collect();
        report.marked = to_mark
            .iter()
            .map(|p| GcPack {
                pack: *p,
                size: packs[p].size,
            })
            .collect();
        report.deleted = doomed
            .iter()
            .map(|p| GcPack {
                pack: *p,
                size: packs[p].size,
            })
            .collect();
        report.deleted_bytes = report.deleted.iter().map(|p| p.size).sum();
        report.markers_removed = swept_marks.len() as u64;
        let superseded: Vec<Digest> = if doomed.is_empty() {
            Vec::new()
        } else {
            segment_names.clone()
        };
        report.segments_merged = superseded.len() as u64;
        if opts.dry_run {
            return Ok(report);
        }

        // clock probes a killed gc left behind
        let probes = self
            .list_named(&self.key(CLOCK_PREFIX), |id| {
                self.key(&format!("{CLOCK_PREFIX}/{id}"))
            })
            .await?;
        for (id, listed) in probes {
            if older_than_grace(listed.modified) {
                self.delete_key(&self.key(&format!("{CLOCK_PREFIX}/{id}")))
                    .await?;
            }
        }
        if !to_repack.is_empty() {
            self.repack(&to_repack).await?;
            crate::crash_point!("gc.after_repack");
        }
        if !to_mark.is_empty() {
            let (id, bytes) = encode_mark(&run, &to_mark);
            self.put_small(&mark_key(&id), bytes).await?;
            crate::crash_point!("gc.after_mark");
        }
        if !doomed.is_empty() {
            let merged = merge_without(&segments, &doomed);
            let (id, bytes) = merged.encode().map_err(|e| self.format2_error(e))?;
            self.put_small(&format2::index_key(&id), bytes).await?;
            crate::crash_point!("gc.after_merged_segment");
            for old in superseded.iter().filter(|s| **s != id) {
                self.delete_key(&self.key(&format2::index_key(old))).await?;
                crate::crash_point!("gc.after_segment_delete");
            }
            for p in &doomed {
                self.delete_key(&self.key(&format2::pack_key(p))).await?;
                crate::crash_point!("gc.after_pack_delete");
            }
        }
        for m in &swept_marks {
            crate::crash_point!("gc.before_marker_delete");
            self.delete_key(&self.key(&mark_key(m))).await?;
        }
        Ok(report)
    }
}

impl Remote {
    /// Copies the needed blobs of each pack of `packs` (each read whole and checked blob by
    /// blob) into new packs, uploaded, and describes them in a new index segment, written
    /// after them.
    async fn repack(&self, packs: &[(Digest, Vec<(Digest, BlobLocation)>)]) -> Result<(), RemoteError> {
        let dir = tempfile::tempdir().map_err(|e| {
            RemoteError::Io(crate::fs::IoError::new(
                "cannot create a temporary directory in",
                std::env::temp_dir(),
                e,
            ))
        })?;
        let f2 = |e| self.format2_error(e);
        let mut sealed = Vec::new();
        let mut builder = PackBuilder::new(dir.path()).map_err(f2)?;
        for (pack, blobs) in packs {
            let key = self.key(&format2::pack_key(pack));
            let Some(bytes) = self
                .get_bytes(&key, format2::pack::MAX_PACK_SIZE, "read the pack")
                .await?
            else {
                return Err(self.format2_error(format2::Format2Error::TruncatedPack {
                    pack: *pack,
                    expected: 1,
                    actual: 0,
                }));
            };
            for (blob, loc) in blobs {
                let entry = PackEntry {
                    id: *blob,
                    offset: u64::from(loc.offset),
                    length: u64::from(loc.length),
                };
                let end = (entry.range().end as usize).min(bytes.len());
                let start = (entry.offset as usize).min(end);
                let b = &bytes[start..end];
                format2::pack::verify_blob(*pack, &entry, b).map_err(f2)?;
                if builder.should_seal_before(entry.length) {
                    sealed.extend(builder.seal().map_err(f2)?);
                    builder = PackBuilder::new(dir.path()).map_err(f2)?;
                }
                builder.append(*blob, b).map_err(f2)?;
            }
        }
        sealed.extend(builder.seal().map_err(f2)?);
        let mut segment = IndexSegment::default();
        for pack in &sealed {
            self.put_pack(pack).await?;
            segment.packs.push((pack.id, pack.size));
            segment.blobs.extend(pack.entries.iter().map(|e| {
                let loc = BlobLocation {
                    pack: pack.id,
                    offset: e.offset as u32,
                    length: e.length as u32,
                };
                (e.id, loc)
            }));
        }
        if !segment.packs.is_empty() {
            self.write_segment(segment).await?;
        }
        Ok(())
    }
}

/// Whether the index holds blob `id` in a pack gc has not marked.
pub(super) fn usable(index: &MergedIndex, marked: &HashSet<Digest>, id: &Digest) -> bool {
    index.blob(id).is_some_and(|l| !marked.contains(&l.pack))
}

/// Whether the remote holds object `d` for a push: a blob in an unmarked pack, or a chunked
/// file whose every chunk is.
pub(super) fn holds(index: &MergedIndex, marked: &HashSet<Digest>, d: &Digest) -> bool {
    usable(index, marked, d)
        || index
            .recipe(d)
            .is_some_and(|r| r.chunks.iter().all(|c| usable(index, marked, &c.id)))
}

/// One segment holding every entry of `segments` but those in `doomed` packs: a blob listed
/// in several packs keeps its first listing in a surviving pack; a recipe is kept only if
/// every chunk of it is still located.
fn merge_without(segments: &[(Digest, IndexSegment)], doomed: &BTreeSet<Digest>) -> IndexSegment {
    let mut out = IndexSegment::default();
    let mut packs: HashMap<Digest, u64> = HashMap::new();
    let mut seen: HashSet<Digest> = HashSet::new();
    for (_, s) in segments {
        let sizes: HashMap<Digest, u64> = s.packs.iter().copied().collect();
        for (blob, loc) in &s.blobs {
            if doomed.contains(&loc.pack) || !seen.insert(*blob) {
                continue;
            }
            packs.insert(loc.pack, sizes[&loc.pack]);
            out.blobs.push((*blob, *loc));
        }
    }
    out.packs = packs.into_iter().collect();
    let index = MergedIndex::from_segments([&out]);
    let mut files = HashSet::new();
    for (_, s) in segments {
        for r in &s.recipes {
            if r.chunks.iter().all(|c| index.contains(&c.id)) && files.insert(r.file) {
                out.recipes.push(r.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::format2::{BlobLocation, RecipeChunk};

    fn d(n: u8) -> Digest {
        Digest::of_bytes(&[n])
    }

    #[test]
    fn a_marker_round_trips_and_a_damaged_one_marks_nothing() {
        let packs: BTreeSet<Digest> = [d(1), d(2), d(3)].into_iter().collect();
        let (id, bytes) = encode_mark(&d(9), &packs);
        assert!(bytes.starts_with(format!("mlv-gc-mark 1\nrun {}\n", d(9)).as_bytes()));
        assert_eq!(bytes.len(), 14 + 69 + 3 * 65);
        assert_ne!(encode_mark(&d(8), &packs).0, id, "two runs, two names");
        let back = decode_mark(&id, &bytes).unwrap();
        assert_eq!(back, packs.iter().copied().collect::<Vec<_>>());
        let mut bad = bytes.clone();
        bad[90] = b'g';
        assert_eq!(decode_mark(&id, &bad), None, "not its name");
        let bad_id = Digest::of_bytes(&bad);
        assert_eq!(decode_mark(&bad_id, &bad), None, "not a digest");
        let unsorted = format!(
            "{MARK_MAGIC}run {}\n{}\n{}\n",
            d(9),
            d(1).max(d(2)),
            d(1).min(d(2))
        );
        let uid = Digest::of_bytes(unsorted.as_bytes());
        assert_eq!(decode_mark(&uid, unsorted.as_bytes()), None);
        let (eid, empty) = encode_mark(&d(9), &BTreeSet::new());
        assert_eq!(decode_mark(&eid, &empty), Some(Vec::new()));
    }

    #[test]
    fn the_merged_segment_drops_doomed_packs_and_recipes_they_break() {
        let (p1, p2) = (d(10), d(11));
        let loc = |pack, offset| BlobLocation {
            pack,
            offset,
            length: 1,
        };
        let s1 = IndexSegment {
            packs: vec![(p1, 200)],
            blobs: vec![(d(1), loc(p1, 8)), (d(2), loc(p1, 9))],
            recipes: vec![Recipe::new(d(50), vec![RecipeChunk { id: d(1), length: 1 }])],
        };
        let s2 = IndexSegment {
            packs: vec![(p2, 200)],
            blobs: vec![(d(2), loc(p2, 8)), (d(3), loc(p2, 9))],
            recipes: vec![Recipe::new(d(51), vec![RecipeChunk { id: d(3), length: 1 }])],
        };
        let doomed: BTreeSet<Digest> = [p1].into_iter().collect();
        let m = merge_without(&[(d(90), s1), (d(91), s2)], &doomed);
        let idx = MergedIndex::from_segments([&m]);
        assert!(!idx.contains(&d(1)));
        assert_eq!(idx.blob(&d(2)).unwrap().pack, p2, "the surviving copy");
        assert!(idx.contains(&d(3)));
        assert!(idx.recipe(&d(50)).is_none(), "its chunk is gone");
        assert!(idx.recipe(&d(51)).is_some());
        assert_eq!(m.packs, vec![(p2, 200)]);
        m.encode().unwrap();
    }
}
