//! Index segments: which pack holds each blob, and each chunked file's recipe.
//!
//! A push writes one immutable segment after the packs it describes, named by the blake3
//! digest of its bytes. Binary, fixed-width records (integers little-endian; see "Remote
//! format 2" in docs/format.md):
//!
//! ```text
//! "MLV2INDX"                                               8
//! version (u32) | pack count (u32) | blob count (u32)
//!   | recipe count (u32) | recipe chunk count (u64)       24
//! packs, sorted by id:     id (32) | size (u64)            40 each
//! blobs, sorted by id:     id (32) | pack number (u32)
//!                          | offset (u32) | length (u32)   44 each
//! recipes, sorted by file: file id (32) | size (u64)
//!                          | chunk count (u32)             44 each
//! recipe chunks, recipe after recipe, in file order:
//!                          chunk id (32) | length (u32)    36 each
//! blake3 of all the bytes above                            32
//! ```
//!
//! The header's counts fix the segment's exact size, which is checked before anything is
//! allocated. Binary rather than compressed JSON: the bulk is 32-byte digests, which no
//! compressor shrinks (hex JSON would be ~150 bytes a blob, ~75 after zstd, against 44 here),
//! and fixed-width records are parsed with bounds known in advance and no new dependency.

use std::collections::HashMap;

use crate::hash::Digest;

use super::error::Format2Error;
use super::pack::{HEADER_LEN, MAX_PACK_SIZE, TRAILER_LEN};

/// The first bytes of every index segment.
pub const INDEX_MAGIC: &[u8; 8] = b"MLV2INDX";
/// The version of the segment layout this mlv writes and reads.
pub const INDEX_VERSION: u32 = 1;
const HEAD: usize = 32;
const PACK_REC: usize = 40;
const BLOB_REC: usize = 44;
const RECIPE_REC: usize = 44;
const CHUNK_REC: usize = 36;
const SUM: usize = 32;

/// Where a blob lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobLocation {
    /// The pack holding it.
    pub pack: Digest,
    /// Where it starts in the pack.
    pub offset: u32,
    /// Its length.
    pub length: u32,
}

/// One chunk of a recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecipeChunk {
    /// The chunk's id (the blake3 of its bytes).
    pub id: Digest,
    /// Its length.
    pub length: u32,
}

/// How to rebuild a chunked file: its chunks in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    /// The whole file's blake3 digest (its cache object name).
    pub file: Digest,
    /// Its size: the sum of its chunks' lengths.
    pub size: u64,
    /// Its chunks, in file order.
    pub chunks: Vec<RecipeChunk>,
}

impl Recipe {
    /// The recipe of `file` from its chunks, in order (its size is their sum).
    pub fn new(file: Digest, chunks: Vec<RecipeChunk>) -> Recipe {
        let size = chunks.iter().map(|c| u64::from(c.length)).sum();
        Recipe { file, size, chunks }
    }
}

/// One index segment, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSegment {
    /// The packs it describes, with their sizes.
    pub packs: Vec<(Digest, u64)>,
    /// Its blobs: (id, location).
    pub blobs: Vec<(Digest, BlobLocation)>,
    /// Recipes of the chunked files it pushed.
    pub recipes: Vec<Recipe>,
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn digest_at(b: &[u8], at: usize) -> Digest {
    Digest::from_raw(b[at..at + 32].try_into().expect("32 bytes"))
}

fn too_many(what: &str, n: usize) -> Format2Error {
    Format2Error::BadIndexSegment {
        segment: Digest::from_raw([0; 32]),
        reason: format!("{n} {what} do not fit a segment's u32 count"),
    }
}

impl IndexSegment {
    /// Encodes the segment (sorting its tables) and returns its bytes and its name. Every blob
    /// must name one of `packs`.
    pub fn encode(&self) -> Result<(Digest, Vec<u8>), Format2Error> {
        let mut packs = self.packs.clone();
        packs.sort_unstable();
        packs.dedup();
        let mut blobs = self.blobs.clone();
        blobs.sort_unstable_by_key(|b| b.0);
        blobs.dedup_by_key(|b| b.0);
        let mut recipes: Vec<&Recipe> = self.recipes.iter().collect();
        recipes.sort_unstable_by_key(|r| r.file);
        recipes.dedup_by_key(|r| r.file);
        let chunks: usize = recipes.iter().map(|r| r.chunks.len()).sum();
        let count = |what, n: usize| u32::try_from(n).map_err(|_| too_many(what, n));
        let mut out = Vec::with_capacity(
            HEAD + packs.len() * PACK_REC
                + blobs.len() * BLOB_REC
                + recipes.len() * RECIPE_REC
                + chunks * CHUNK_REC
                + SUM,
        );
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&INDEX_VERSION.to_le_bytes());
        out.extend_from_slice(&count("packs", packs.len())?.to_le_bytes());
        out.extend_from_slice(&count("blobs", blobs.len())?.to_le_bytes());
        out.extend_from_slice(&count("recipes", recipes.len())?.to_le_bytes());
        out.extend_from_slice(&(chunks as u64).to_le_bytes());
        for (id, size) in &packs {
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&size.to_le_bytes());
        }
        for (id, loc) in &blobs {
            let n = packs.binary_search_by_key(&loc.pack, |p| p.0).map_err(|_| {
                Format2Error::BadIndexSegment {
                    segment: Digest::from_raw([0; 32]),
                    reason: format!(
                        "blob {id} names pack {}, which the segment does not list",
                        loc.pack
                    ),
                }
            })?;
            out.extend_from_slice(id.as_bytes());
            out.extend_from_slice(&(n as u32).to_le_bytes());
            out.extend_from_slice(&loc.offset.to_le_bytes());
            out.extend_from_slice(&loc.length.to_le_bytes());
        }
        for r in &recipes {
            out.extend_from_slice(r.file.as_bytes());
            out.extend_from_slice(&r.size.to_le_bytes());
            out.extend_from_slice(&count("chunks", r.chunks.len())?.to_le_bytes());
        }
        for r in &recipes {
            for c in &r.chunks {
                out.extend_from_slice(c.id.as_bytes());
                out.extend_from_slice(&c.length.to_le_bytes());
            }
        }
        let sum = blake3::hash(&out);
        out.extend_from_slice(sum.as_bytes());
        Ok((Digest::of_bytes(&out), out))
    }

    /// Decodes and checks the segment named `segment` (its name is checked too).
    pub fn decode(segment: Digest, bytes: &[u8]) -> Result<IndexSegment, Format2Error> {
        let bad = |reason: String| Format2Error::BadIndexSegment { segment, reason };
        if bytes.len() < HEAD + SUM || &bytes[..8] != INDEX_MAGIC {
            return Err(bad("not an index segment (no magic)".into()));
        }
        let version = u32_at(bytes, 8);
        if version != INDEX_VERSION {
            return Err(bad(format!(
                "segment version {version}, this mlv reads {INDEX_VERSION}"
            )));
        }
        let n_packs = u32_at(bytes, 12) as u64;
        let n_blobs = u32_at(bytes, 16) as u64;
        let n_recipes = u32_at(bytes, 20) as u64;
        let n_chunks = u64_at(bytes, 24);
        let expected = n_chunks.checked_mul(CHUNK_REC as u64).and_then(|c| {
            c.checked_add(
                (HEAD + SUM) as u64
                    + n_packs * PACK_REC as u64
                    + n_blobs * BLOB_REC as u64
                    + n_recipes * RECIPE_REC as u64,
            )
        });
        if expected != Some(bytes.len() as u64) {
            return Err(bad(format!(
                "{} bytes, but its counts ({n_packs} packs, {n_blobs} blobs, {n_recipes} recipes, \
                 {n_chunks} chunks) need {}",
                bytes.len(),
                expected.map_or("more than can exist".to_string(), |e| e.to_string())
            )));
        }
        let body = bytes.len() - SUM;
        if blake3::hash(&bytes[..body]).as_bytes()[..] != bytes[body..] {
            return Err(bad("its checksum does not match".into()));
        }
        if Digest::of_bytes(bytes) != segment {
            return Err(bad("it does not hash to its name".into()));
        }
        // every count is now bounded by the bytes at hand
        let mut at = HEAD;
        let mut packs = Vec::with_capacity(n_packs as usize);
        for _ in 0..n_packs {
            let id = digest_at(bytes, at);
            let size = u64_at(bytes, at + 32);
            if !(HEADER_LEN + TRAILER_LEN..=MAX_PACK_SIZE).contains(&size) {
                return Err(bad(format!("pack {id} has an impossible size {size}")));
            }
            if packs.last().is_some_and(|(p, _)| *p >= id) {
                return Err(bad("its packs are not sorted".into()));
            }
            packs.push((id, size));
            at += PACK_REC;
        }
        let mut blobs = Vec::with_capacity(n_blobs as usize);
        for _ in 0..n_blobs {
            let id = digest_at(bytes, at);
            let n = u32_at(bytes, at + 32) as usize;
            let offset = u32_at(bytes, at + 36);
            let length = u32_at(bytes, at + 40);
            let Some(&(pack, size)) = packs.get(n) else {
                return Err(bad(format!("blob {id} names pack number {n} of {n_packs}")));
            };
            if u64::from(offset) < HEADER_LEN || u64::from(offset) + u64::from(length) > size - TRAILER_LEN {
                return Err(bad(format!(
                    "blob {id} ({length} bytes at {offset}) lies outside pack {pack} of {size} bytes"
                )));
            }
            if blobs
                .last()
                .is_some_and(|(b, _): &(Digest, BlobLocation)| *b >= id)
            {
                return Err(bad("its blobs are not sorted".into()));
            }
            blobs.push((id, BlobLocation { pack, offset, length }));
            at += BLOB_REC;
        }
        let mut heads = Vec::with_capacity(n_recipes as usize);
        let mut total: u64 = 0;
        for _ in 0..n_recipes {
            let file = digest_at(bytes, at);
            let size = u64_at(bytes, at + 32);
            let count = u32_at(bytes, at + 40);
            if count == 0 {
                return Err(bad(format!("recipe of {file} has no chunk")));
            }
            if heads.last().is_some_and(|(f, _, _)| *f >= file) {
                return Err(bad("its recipes are not sorted".into()));
            }
            total += u64::from(count);
            heads.push((file, size, count));
            at += RECIPE_REC;
        }
        if total != n_chunks {
            return Err(bad(format!(
                "its recipes list {total} chunks, its header {n_chunks}"
            )));
        }
        let mut recipes = Vec::with_capacity(heads.len());
        for (file, size, count) in heads {
            let mut chunks = Vec::with_capacity(count as usize);
            let mut sum: u64 = 0;
            for _ in 0..count {
                let id = digest_at(bytes, at);
                let length = u32_at(bytes, at + 32);
                if length == 0 {
                    return Err(bad(format!("recipe of {file} has an empty chunk")));
                }
                sum += u64::from(length);
                chunks.push(RecipeChunk { id, length });
                at += CHUNK_REC;
            }
            if sum != size {
                return Err(bad(format!(
                    "recipe of {file} adds up to {sum} bytes, not {size}"
                )));
            }
            recipes.push(Recipe { file, size, chunks });
        }
        Ok(IndexSegment {
            packs,
            blobs,
            recipes,
        })
    }
}

/// A blob in the merged index: 44 bytes, the pack interned as a number.
#[derive(Debug, Clone, Copy)]
struct Entry {
    id: [u8; 32],
    pack: u32,
    offset: u32,
    length: u32,
}

/// The index of a whole remote, merged from its segments: a sorted table of blobs (44 bytes
/// each, packs interned) and the recipes, both looked up by binary search. No segment is kept:
/// a segment's tables are folded in and dropped (see [`IndexBuilder`], [`MergedIndex::add`]).
#[derive(Debug, Default, Clone)]
pub struct MergedIndex {
    packs: Vec<(Digest, u64)>,
    entries: Vec<Entry>,
    recipes: Vec<Recipe>,
}

/// Builds a [`MergedIndex`] from segments given one at a time (each can be dropped once
/// added): their blobs are appended, then sorted once in [`IndexBuilder::finish`].
#[derive(Debug, Default)]
pub struct IndexBuilder {
    pack_no: HashMap<Digest, u32>,
    index: MergedIndex,
}

impl IndexBuilder {
    /// Adds a segment's packs, blobs and recipes.
    pub fn add(&mut self, s: &IndexSegment) {
        let m = &mut self.index;
        for &(id, size) in &s.packs {
            self.pack_no.entry(id).or_insert_with(|| {
                m.packs.push((id, size));
                (m.packs.len() - 1) as u32
            });
        }
        for (id, loc) in &s.blobs {
            let Some(&pack) = self.pack_no.get(&loc.pack) else {
                // decode() guarantees it; a hand-built segment that lacks it is skipped
                continue;
            };
            m.entries.push(Entry {
                id: *id.as_bytes(),
                pack,
                offset: loc.offset,
                length: loc.length,
            });
        }
        m.recipes.extend(s.recipes.iter().cloned());
    }

    /// The merged index. A blob or recipe listed by several segments keeps the first listing
    /// in the order added.
    pub fn finish(self) -> MergedIndex {
        let mut m = self.index;
        // stable: the first listing of a blob stays first, and dedup keeps it
        m.entries.sort_by_key(|e| e.id);
        m.entries.dedup_by(|a, b| a.id == b.id);
        m.entries.shrink_to_fit();
        m.recipes.sort_by_key(|r| r.file);
        m.recipes.dedup_by_key(|r| r.file);
        m.recipes.shrink_to_fit();
        m.packs.shrink_to_fit();
        m
    }
}

/// Merges two sorted tables into one of exactly the needed capacity; on equal keys the
/// element of `a` is kept.
fn merge_sorted<T, K: Ord>(a: Vec<T>, b: Vec<T>, key: impl Fn(&T) -> K) -> Vec<T> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let take_a = match (a.peek(), b.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => match key(x).cmp(&key(y)) {
                std::cmp::Ordering::Less => true,
                std::cmp::Ordering::Greater => false,
                std::cmp::Ordering::Equal => {
                    b.next();
                    true
                }
            },
        };
        out.extend(if take_a { a.next() } else { b.next() });
    }
    out.shrink_to_fit();
    out
}

impl MergedIndex {
    /// Merges segments. A blob or recipe listed by several segments keeps the first listing
    /// in the order given.
    pub fn from_segments<'a>(segments: impl IntoIterator<Item = &'a IndexSegment>) -> MergedIndex {
        let mut b = IndexBuilder::default();
        for s in segments {
            b.add(s);
        }
        b.finish()
    }

    /// Folds one more segment in (a segment this process wrote): its blobs and recipes are
    /// merged into the sorted tables, which keep exactly the capacity they need. Those the
    /// index already lists keep their listing.
    pub fn add(&mut self, s: &IndexSegment) {
        let mut b = IndexBuilder::default();
        b.add(s);
        let new = b.finish();
        let mut pack_no: HashMap<Digest, u32> = self
            .packs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.0, i as u32))
            .collect();
        let renumber: Vec<u32> = new
            .packs
            .iter()
            .map(|&(id, size)| {
                *pack_no.entry(id).or_insert_with(|| {
                    self.packs.push((id, size));
                    (self.packs.len() - 1) as u32
                })
            })
            .collect();
        self.packs.shrink_to_fit();
        let entries: Vec<Entry> = new
            .entries
            .into_iter()
            .map(|e| Entry {
                pack: renumber[e.pack as usize],
                ..e
            })
            .collect();
        self.entries = merge_sorted(std::mem::take(&mut self.entries), entries, |e| e.id);
        self.recipes = merge_sorted(std::mem::take(&mut self.recipes), new.recipes, |r| r.file);
    }

    /// Where blob `id` lies, if the remote has it.
    pub fn blob(&self, id: &Digest) -> Option<BlobLocation> {
        let key = id.as_bytes();
        let i = self.entries.binary_search_by(|e| e.id.cmp(key)).ok()?;
        let e = self.entries[i];
        Some(BlobLocation {
            pack: self.packs[e.pack as usize].0,
            offset: e.offset,
            length: e.length,
        })
    }

    /// Whether the remote has blob `id`.
    pub fn contains(&self, id: &Digest) -> bool {
        self.entries.binary_search_by(|e| e.id.cmp(id.as_bytes())).is_ok()
    }

    /// The recipe of the chunked file whose whole-file digest is `file`.
    pub fn recipe(&self, file: &Digest) -> Option<&Recipe> {
        self.recipes
            .binary_search_by_key(file, |r| r.file)
            .ok()
            .map(|i| &self.recipes[i])
    }

    /// The packs the index names, with their sizes.
    pub fn packs(&self) -> &[(Digest, u64)] {
        &self.packs
    }

    /// Every blob with its location, in id order.
    pub fn blobs(&self) -> impl Iterator<Item = (Digest, BlobLocation)> + '_ {
        self.entries.iter().map(|e| {
            (
                Digest::from_raw(e.id),
                BlobLocation {
                    pack: self.packs[e.pack as usize].0,
                    offset: e.offset,
                    length: e.length,
                },
            )
        })
    }

    /// Every recipe, in file order.
    pub fn recipes(&self) -> &[Recipe] {
        &self.recipes
    }

    /// Number of blobs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index holds no blob.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of heap the index holds (its tables' capacities).
    pub fn heap_bytes(&self) -> usize {
        self.packs.capacity() * std::mem::size_of::<(Digest, u64)>()
            + self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.recipes.capacity() * std::mem::size_of::<Recipe>()
            + self
                .recipes
                .iter()
                .map(|r| r.chunks.capacity() * std::mem::size_of::<RecipeChunk>())
                .sum::<usize>()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn d(i: u64) -> Digest {
        Digest::of_bytes(&i.to_le_bytes())
    }

    pub(crate) fn sample() -> IndexSegment {
        let packs = vec![(d(1000), 4000), (d(1001), 90_000)];
        let blobs = (0..20u64)
            .map(|i| {
                (
                    d(i),
                    BlobLocation {
                        pack: packs[(i % 2) as usize].0,
                        offset: 8 + 100 * i as u32,
                        length: 100,
                    },
                )
            })
            .collect();
        let recipes = vec![
            Recipe {
                file: d(500),
                size: 300,
                chunks: (0..3)
                    .map(|i| RecipeChunk {
                        id: d(i),
                        length: 100,
                    })
                    .collect(),
            },
            Recipe {
                file: d(501),
                size: 250,
                chunks: vec![
                    RecipeChunk {
                        id: d(7),
                        length: 200,
                    },
                    RecipeChunk {
                        id: d(99),
                        length: 50,
                    },
                ],
            },
        ];
        IndexSegment {
            packs,
            blobs,
            recipes,
        }
    }

    fn sorted(mut s: IndexSegment) -> IndexSegment {
        s.packs.sort();
        s.blobs.sort_by_key(|b| b.0);
        s.recipes.sort_by_key(|r| r.file);
        s
    }

    #[test]
    fn segment_round_trip() {
        let s = sample();
        let (name, bytes) = s.encode().unwrap();
        assert_eq!(name, Digest::of_bytes(&bytes));
        assert_eq!(
            bytes.len(),
            HEAD + 2 * PACK_REC + 20 * BLOB_REC + 2 * RECIPE_REC + 5 * CHUNK_REC + SUM
        );
        assert_eq!(IndexSegment::decode(name, &bytes).unwrap(), sorted(s));
        let empty = IndexSegment::default();
        let (n, b) = empty.encode().unwrap();
        assert_eq!(IndexSegment::decode(n, &b).unwrap(), empty);
    }

    /// Re-signs a segment after an edit: fixes the checksum and returns its new name.
    fn resign(mut b: Vec<u8>) -> (Digest, Vec<u8>) {
        let body = b.len() - SUM;
        let sum = *blake3::hash(&b[..body]).as_bytes();
        b[body..].copy_from_slice(&sum);
        (Digest::of_bytes(&b), b)
    }

    #[test]
    fn damaged_segments_are_refused() {
        let (name, bytes) = sample().encode().unwrap();
        let blobs_at = HEAD + 2 * PACK_REC;
        let recipes_at = blobs_at + 20 * BLOB_REC;
        let chunks_at = recipes_at + 2 * RECIPE_REC;
        let edit = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut b = bytes.clone();
            f(&mut b);
            resign(b)
        };
        let cases: Vec<(&str, (Digest, Vec<u8>))> = vec![
            ("truncated", (name, bytes[..bytes.len() - 1].to_vec())),
            ("renamed", (d(5), bytes.clone())),
            ("checksum", {
                let mut b = bytes.clone();
                b[40] ^= 1;
                (Digest::of_bytes(&b), b)
            }),
            ("magic", edit(&|b| b[0] = b'X')),
            ("version", edit(&|b| b[8] = 2)),
            (
                "huge blob count",
                edit(&|b| b[16..20].copy_from_slice(&u32::MAX.to_le_bytes())),
            ),
            (
                "huge chunk count",
                edit(&|b| b[24..32].copy_from_slice(&u64::MAX.to_le_bytes())),
            ),
            (
                "pack number",
                edit(&|b| b[blobs_at + 32..blobs_at + 36].copy_from_slice(&7u32.to_le_bytes())),
            ),
            (
                "offset past the pack",
                edit(&|b| b[blobs_at + 36..blobs_at + 40].copy_from_slice(&u32::MAX.to_le_bytes())),
            ),
            (
                "impossible pack size",
                edit(&|b| b[HEAD + 32..HEAD + 40].copy_from_slice(&(1u64 << 40).to_le_bytes())),
            ),
            (
                "unsorted blobs",
                edit(&|b| {
                    let first: Vec<u8> = b[blobs_at..blobs_at + 32].to_vec();
                    b[blobs_at + BLOB_REC..blobs_at + BLOB_REC + 32].copy_from_slice(&first);
                }),
            ),
            (
                "empty recipe",
                edit(&|b| b[recipes_at + 40..recipes_at + 44].copy_from_slice(&0u32.to_le_bytes())),
            ),
            ("recipe size", edit(&|b| b[recipes_at + 32] ^= 1)),
            (
                "zero-length chunk",
                edit(&|b| b[chunks_at + 32..chunks_at + 36].copy_from_slice(&0u32.to_le_bytes())),
            ),
        ];
        for (what, (n, b)) in cases {
            let e = IndexSegment::decode(n, &b).unwrap_err();
            assert!(matches!(e, Format2Error::BadIndexSegment { .. }), "{what}: {e}");
            assert_eq!(e.kind(), crate::kind::ErrorKind::Integrity);
        }
    }

    #[test]
    fn merged_lookups() {
        let a = sample();
        let mut b = IndexSegment {
            packs: vec![(d(2000), 5000)],
            blobs: vec![
                (
                    d(3),
                    BlobLocation {
                        pack: d(2000),
                        offset: 8,
                        length: 1,
                    },
                ), // also in `a`
                (
                    d(300),
                    BlobLocation {
                        pack: d(2000),
                        offset: 9,
                        length: 1,
                    },
                ),
            ],
            recipes: vec![],
        };
        b.recipes.push(a.recipes[0].clone());
        let m = MergedIndex::from_segments([&a, &b]);
        assert_eq!(m.len(), 21);
        assert_eq!(m.packs().len(), 3);
        assert_eq!(m.blob(&d(3)).unwrap().pack, d(1001), "the first listing wins");
        assert_eq!(
            m.blob(&d(300)).unwrap(),
            BlobLocation {
                pack: d(2000),
                offset: 9,
                length: 1
            }
        );
        assert!(m.contains(&d(19)) && !m.contains(&d(20)));
        assert_eq!(m.recipe(&d(501)).unwrap().chunks.len(), 2);
        assert!(m.recipe(&d(3)).is_none());
    }

    /// `n` blobs in `k` segments, as `k` pushes would write them (2,000 blobs a pack).
    pub(crate) fn pushes(n: u64, k: u64) -> Vec<IndexSegment> {
        (0..k)
            .map(|s| {
                let blobs: Vec<(Digest, BlobLocation)> = (s * n / k..(s + 1) * n / k)
                    .map(|i| {
                        (
                            d(i),
                            BlobLocation {
                                pack: d(u64::MAX - i / 2_000),
                                offset: 8 + (i % 2_000) as u32 * 16_000,
                                length: 16_000,
                            },
                        )
                    })
                    .collect();
                let mut packs: Vec<(Digest, u64)> = blobs.iter().map(|b| (b.1.pack, MAX_PACK_SIZE)).collect();
                packs.sort();
                packs.dedup();
                IndexSegment {
                    packs,
                    blobs,
                    recipes: Vec::new(),
                }
            })
            .collect()
    }

    /// The issue's target: the merged index holds at most 64 bytes per blob, whether it was
    /// loaded at once or grew by one segment per push. Computed from the tables' capacities.
    #[test]
    fn a_million_blobs_cost_at_most_64_bytes_each() {
        const N: u64 = 1_000_000;
        let segments = pushes(N, 4);
        let loaded = MergedIndex::from_segments(&segments);
        let mut grown = MergedIndex::from_segments(&segments[..1]);
        for s in &segments[1..] {
            grown.add(s);
        }
        drop(segments);
        assert_eq!(std::mem::size_of::<Entry>(), 44);
        for m in [&loaded, &grown] {
            assert_eq!(m.len(), N as usize);
            let per_blob = m.heap_bytes() as f64 / N as f64;
            assert!(per_blob <= 64.0, "{per_blob} bytes per blob");
            assert_eq!(m.blob(&d(777_777)).unwrap().offset, 8 + 1_777 * 16_000);
            assert_eq!(m.blob(&d(12)).unwrap().pack, d(u64::MAX));
        }
    }

    #[test]
    fn adding_a_segment_keeps_first_listings_and_sorted_tables() {
        let a = sample();
        let b = IndexSegment {
            packs: vec![(d(2000), 5000)],
            blobs: vec![
                (
                    d(3),
                    BlobLocation {
                        pack: d(2000),
                        offset: 8,
                        length: 1,
                    },
                ),
                (
                    d(300),
                    BlobLocation {
                        pack: d(2000),
                        offset: 9,
                        length: 1,
                    },
                ),
            ],
            recipes: vec![Recipe::new(
                d(502),
                vec![RecipeChunk {
                    id: d(300),
                    length: 1,
                }],
            )],
        };
        let mut m = MergedIndex::from_segments([&a]);
        m.add(&b);
        let all = MergedIndex::from_segments([&a, &b]);
        let blobs: Vec<_> = m.blobs().collect();
        assert_eq!(blobs, all.blobs().collect::<Vec<_>>());
        assert_eq!(m.recipes(), all.recipes());
        assert_eq!(m.blob(&d(3)).unwrap().pack, d(1001), "the first listing wins");
        assert_eq!(m.blob(&d(300)).unwrap().pack, d(2000));
        assert!(blobs.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(m.recipe(&d(502)).unwrap().size, 1);
    }
}
