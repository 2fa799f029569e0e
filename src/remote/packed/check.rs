//! `fsck --remote` on a format 2 remote: the index segments (read from the remote, not the
//! local copy), the packs they name (one listing of `packs/`, no request per pack), every blob
//! location and recipe, and which of the objects asked about the index holds. With
//! `read_data`, every pack the index names is read whole and checked: its footer against the
//! index, every blob against its id, the pack against its name.
//!
//! Objects in no index are left to the caller, which checks them as format 1 objects (an
//! upgraded remote keeps its old ones where they were).

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::stream::{self, StreamExt};
use serde::Serialize;

use crate::hash::Digest;
use crate::progress::Progress;

use super::super::error::{kind_of, Kind, RemoteError};
use super::super::format2::{self, pack, Format2Error, IndexBuilder, IndexSegment, PackEntry};
use super::super::store::Remote;
use super::MAX_SEGMENT;

/// What a damage is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Item {
    /// A stored object (a file or a directory manifest).
    Object,
    /// A pack of blobs.
    Pack,
    /// An index segment.
    IndexSegment,
}

/// What is wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DamageKind {
    /// Not there (or, for an object, its recipe names a chunk the index lacks).
    Missing,
    /// A pack whose size is not the one the index records.
    WrongSize,
    /// Bytes that do not match what names or describes them.
    Corrupt,
}

/// One thing found damaged.
#[derive(Debug, Clone)]
pub struct Damage {
    /// Pack, segment or object.
    pub item: Item,
    /// Its name.
    pub id: Digest,
    /// What is wrong.
    pub kind: DamageKind,
    /// Details (sizes, what the bytes hash to, which chunk).
    pub detail: String,
    /// The objects asked about that need it (distinct, sorted).
    pub affects: Vec<Digest>,
}

/// What [`Remote::check_packed`] found.
#[derive(Debug, Default)]
pub struct PackedCheck {
    /// Index segments read.
    pub segments: u64,
    /// Packs the index names.
    pub packs: u64,
    /// Blobs the index holds.
    pub blobs: u64,
    /// Packs read whole (`read_data`).
    pub packs_read: u64,
    /// Packs on the remote that no index segment names (allowed: an interrupted push, or gc's
    /// work in progress).
    pub unreferenced_packs: Vec<Digest>,
    /// Everything found damaged.
    pub damage: Vec<Damage>,
    /// The objects asked about that no index holds: format 1 objects, or missing.
    pub not_indexed: Vec<Digest>,
    /// Whether the remote may hold format 1 objects (else `not_indexed` are all missing).
    pub may_have_v1: bool,
}

impl Remote {
    /// Checks the remote's format 2 structures and which of `wanted` its index holds (see the
    /// module documentation). Damage is reported, not returned as an error; errors are
    /// failures to talk to the remote.
    pub async fn check_packed(
        &self,
        wanted: &[Digest],
        read_data: bool,
        progress: &dyn Progress,
    ) -> Result<PackedCheck, RemoteError> {
        let mut out = PackedCheck::default();
        let names = self.list_segments().await?;
        out.segments = names.len() as u64;
        let mut loads = stream::iter(names)
            .map(|id| async move { (id, self.fetch_segment(id).await) })
            .buffer_unordered(self.jobs());
        let mut builder = IndexBuilder::default();
        while let Some((id, got)) = loads.next().await {
            match got? {
                Ok(segment) => builder.add(&segment),
                Err(reason) => out.damage.push(Damage {
                    item: Item::IndexSegment,
                    id,
                    kind: DamageKind::Corrupt,
                    detail: reason,
                    affects: Vec::new(),
                }),
            }
        }
        drop(loads);
        let index = builder.finish();
        out.packs = index.packs().len() as u64;
        out.blobs = index.len() as u64;

        // which blobs each wanted object needs
        let wanted_set: HashSet<Digest> = wanted.iter().copied().collect();
        let mut needs: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for d in wanted {
            if let Some(r) = index.recipe(d) {
                for c in &r.chunks {
                    needs.entry(c.id).or_default().push(*d);
                }
            } else if index.contains(d) {
                needs.entry(*d).or_default().push(*d);
            } else {
                out.not_indexed.push(*d);
            }
        }
        // every recipe: its chunks are blobs of the index, of the lengths it records
        for r in index.recipes() {
            for c in &r.chunks {
                let problem = match index.blob(&c.id) {
                    None => (
                        DamageKind::Missing,
                        format!("its recipe names chunk {}, which the index lacks", c.id),
                    ),
                    Some(l) if l.length != c.length => (
                        DamageKind::Corrupt,
                        format!(
                            "its recipe gives chunk {} {} bytes, the index {}",
                            c.id, c.length, l.length
                        ),
                    ),
                    Some(_) => continue,
                };
                out.damage.push(Damage {
                    item: Item::Object,
                    id: r.file,
                    kind: problem.0,
                    detail: problem.1,
                    affects: wanted_set.get(&r.file).copied().into_iter().collect(),
                });
                break;
            }
        }
        // the packs: one listing
        let listed = self.list_packs().await?;
        let mut by_pack: BTreeMap<Digest, Vec<PackEntry>> = BTreeMap::new();
        let mut affects: HashMap<Digest, Vec<Digest>> = HashMap::new();
        for (id, loc) in index.blobs() {
            if let Some(n) = needs.get(&id) {
                affects.entry(loc.pack).or_default().extend(n);
            }
            if read_data {
                by_pack.entry(loc.pack).or_default().push(PackEntry {
                    id,
                    offset: u64::from(loc.offset),
                    length: u64::from(loc.length),
                });
            }
        }
        let affected = |pack: &Digest| {
            let mut v = affects.get(pack).cloned().unwrap_or_default();
            v.sort();
            v.dedup();
            v
        };
        let mut readable = Vec::new();
        for &(id, size) in index.packs() {
            let (kind, detail) = match listed.get(&id) {
                None => (
                    DamageKind::Missing,
                    "the index places blobs in it, but the remote lacks it".to_string(),
                ),
                Some(&s) if s != size => (
                    DamageKind::WrongSize,
                    format!("{s} bytes where the index records {size}"),
                ),
                Some(_) => {
                    readable.push((id, size));
                    continue;
                }
            };
            out.damage.push(Damage {
                item: Item::Pack,
                id,
                kind,
                detail,
                affects: affected(&id),
            });
        }
        let named: HashSet<Digest> = index.packs().iter().map(|p| p.0).collect();
        out.unreferenced_packs = listed.keys().filter(|p| !named.contains(p)).copied().collect();
        out.unreferenced_packs.sort();

        if read_data {
            let bytes = readable.iter().map(|p| p.1).sum();
            progress.start("reading packs", readable.len() as u64, bytes);
            // whole packs of up to 64 MiB each: a few at a time bound the memory
            let mut reads = stream::iter(readable)
                .map(|(id, size)| async move { (id, size, self.read_pack(id).await) })
                .buffer_unordered(self.jobs().min(4));
            while let Some((id, size, got)) = reads.next().await {
                out.packs_read += 1;
                progress.advance(1, size);
                let problem = match got? {
                    None => Some((
                        DamageKind::Missing,
                        "listed a moment ago, but gone when read".to_string(),
                    )),
                    Some(bytes) => check_pack(id, &bytes, by_pack.get(&id).map_or(&[], Vec::as_slice))
                        .map(|d| (DamageKind::Corrupt, d)),
                };
                if let Some((kind, detail)) = problem {
                    out.damage.push(Damage {
                        item: Item::Pack,
                        id,
                        kind,
                        detail,
                        affects: affected(&id),
                    });
                }
            }
            progress.finish();
        }
        out.may_have_v1 = !out.not_indexed.is_empty() && self.has_v1_objects().await?;
        Ok(out)
    }

    /// A segment read from the remote (never the local copy): `Ok(Err(why))` if it is damaged;
    /// one deleted since it was listed reads as empty.
    async fn fetch_segment(&self, id: Digest) -> Result<Result<IndexSegment, String>, RemoteError> {
        let key = self.key(&format2::index_key(&id));
        let bytes = self
            .get_bytes(&key, MAX_SEGMENT, "read the index segment")
            .await?;
        Ok(match bytes {
            None => Ok(IndexSegment::default()),
            Some(b) => IndexSegment::decode(id, &b).map_err(|e| match e {
                Format2Error::BadIndexSegment { reason, .. } => reason,
                other => other.to_string(),
            }),
        })
    }

    /// The packs on the remote with their sizes: one listing of `packs/`.
    async fn list_packs(&self) -> Result<HashMap<Digest, u64>, RemoteError> {
        let prefix = self.key(format2::PACK_PREFIX);
        let mut listing = self.backend().list(Some(&prefix));
        let mut packs = HashMap::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => {
                    let id = meta.location.filename().and_then(|n| n.parse::<Digest>().ok());
                    if let Some(id) = id.filter(|id| self.key(&format2::pack_key(id)) == meta.location) {
                        packs.insert(id, meta.size);
                    }
                }
                Err(e) if kind_of(&e) == Kind::NotFound => break,
                Err(e) => return Err(self.store_error(&e, "list", Some(&prefix))),
            }
        }
        Ok(packs)
    }

    /// A whole pack; `None` if absent.
    async fn read_pack(&self, id: Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.key(&format2::pack_key(&id));
        self.get_bytes(&key, format2::pack::MAX_PACK_SIZE, "download")
            .await
    }

    /// One blob of the index, read with a ranged GET and verified; `None` if the remote is
    /// not format 2, the index lacks the blob (or holds it larger than a pack may be) or its
    /// pack is absent (`fsck` and `gc` reading a directory manifest the cache lacks).
    pub async fn read_packed_blob(&self, id: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        if self.format2().await?.is_none() {
            return Ok(None);
        }
        let index = self.index().await?;
        let Some(loc) = index
            .blob(id)
            .filter(|l| u64::from(l.length) <= format2::pack::MAX_PACK_SIZE)
        else {
            return Ok(None);
        };
        let key = self.key(&format2::pack_key(&loc.pack));
        let entry = PackEntry {
            id: *id,
            offset: u64::from(loc.offset),
            length: u64::from(loc.length),
        };
        if entry.length == 0 {
            return Ok(Some(Vec::new()));
        }
        let got = match self.backend().get(&key, Some(entry.range())).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.store_error(&e, "download", Some(&key)))?;
        pack::verify_blob(loc.pack, &entry, &bytes).map_err(|e| self.format2_error(e))?;
        Ok(Some(bytes.to_vec()))
    }
}

/// Checks a whole pack against its name and footer, and the index's blobs in it against the
/// footer. `None` if all is well, else what is wrong.
fn check_pack(id: Digest, bytes: &[u8], indexed: &[PackEntry]) -> Option<String> {
    let footer = match pack::verify_pack(id, bytes) {
        Ok(f) => f,
        Err(e) => return Some(e.to_string()),
    };
    let by_id: HashMap<Digest, &PackEntry> = footer.iter().map(|e| (e.id, e)).collect();
    for e in indexed {
        match by_id.get(&e.id) {
            Some(f) if f.offset == e.offset && f.length == e.length => {}
            Some(f) => {
                return Some(format!(
                    "the index places blob {} at {}+{}, its footer at {}+{}",
                    e.id, e.offset, e.length, f.offset, f.length
                ))
            }
            None => {
                return Some(format!(
                    "the index places blob {} in it, its footer does not list it",
                    e.id
                ))
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::format2::PackBuilder;

    #[test]
    fn a_pack_is_checked_against_its_footer_and_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = PackBuilder::new(dir.path()).unwrap();
        b.append(Digest::of_bytes(b"one"), b"one").unwrap();
        b.append(Digest::of_bytes(b"two"), b"two").unwrap();
        let sealed = b.seal().unwrap().unwrap();
        let bytes = std::fs::read(&sealed.file).unwrap();
        let footer = pack::verify_pack(sealed.id, &bytes).unwrap();
        assert_eq!(check_pack(sealed.id, &bytes, &footer), None);
        let mut moved = footer[1];
        moved.offset += 1;
        let why = check_pack(sealed.id, &bytes, &[moved]).unwrap();
        assert!(why.contains("its footer at"), "{why}");
        let stranger = PackEntry {
            id: Digest::of_bytes(b"three"),
            offset: 8,
            length: 5,
        };
        assert!(check_pack(sealed.id, &bytes, &[stranger])
            .unwrap()
            .contains("does not list"));
        let mut flipped = bytes.clone();
        flipped[9] ^= 1;
        assert!(check_pack(sealed.id, &flipped, &footer)
            .unwrap()
            .contains("corrupt"));
        assert!(check_pack(sealed.id, &bytes[..bytes.len() - 1], &footer).is_some());
    }
}
