//! Remote format 2: content-defined chunks in packs (issue 16). The layout only, as a library;
//! push, pull, fsck and gc use it from the next release.
//!
//! - [`chunker`]: FastCDC chunks of files above 8 MiB, each named by its blake3;
//! - [`pack`]: pack objects of many blobs with a footer, built in a temporary file and
//!   re-hashed; footer parsing from a fixed-size trailer, for ranged reads;
//! - [`index`]: immutable index segments (blob -> pack, offset, length; chunked file -> its
//!   chunks) and the merged in-memory index;
//! - [`config`]: the remote's `mlv-remote.toml`, recording the format and its parameters;
//! - [`error`]: `Format2Error`, with kinds and hints.
//!
//! Keys on the remote, under its prefix (see "Remote format 2" in docs/format.md):
//!
//! ```text
//! mlv-remote.toml
//! packs/<first two hex>/<64-hex pack id>
//! index/<64-hex segment id>
//! ```

pub mod chunker;
pub mod config;
pub mod error;
pub mod index;
pub mod pack;

pub use chunker::{Chunk, ChunkParams, Chunker, DEFAULT_PARAMS};
pub use config::{RemoteConfig, CONFIG_KEY};
pub use error::Format2Error;
pub use index::{BlobLocation, IndexBuilder, IndexSegment, MergedIndex, Recipe, RecipeChunk};
pub use pack::{PackBuilder, PackEntry, SealedPack};

use crate::hash::Digest;

/// The key prefix of packs.
pub const PACK_PREFIX: &str = "packs";
/// The key prefix of index segments.
pub const INDEX_PREFIX: &str = "index";

/// The key of a pack, relative to the remote's prefix.
pub fn pack_key(id: &Digest) -> String {
    format!("{PACK_PREFIX}/{}/{id}", id.fanout())
}

/// The key of an index segment, relative to the remote's prefix.
pub fn index_key(id: &Digest) -> String {
    format!("{INDEX_PREFIX}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces together, as push and pull will use them: a large file chunked, its chunks
    /// and a small file packed, a segment written and merged, the file rebuilt from its recipe
    /// out of the pack bytes, every blob verified.
    #[test]
    fn chunk_pack_index_and_rebuild() {
        let large = chunker::tests::pseudo_random(99, 40 << 20);
        let small = b"a small file".to_vec();
        let large_id = Digest::of_bytes(&large);
        assert!(DEFAULT_PARAMS.splits(large.len() as u64));
        assert!(!DEFAULT_PARAMS.splits(small.len() as u64));

        let dir = tempfile::tempdir().unwrap();
        let mut sealed = Vec::new();
        let mut builder = PackBuilder::new(dir.path()).unwrap();
        let mut chunks = Vec::new();
        let mut c = Chunker::new(&large[..], DEFAULT_PARAMS).unwrap();
        while let Some((chunk, bytes)) = c.next_chunk().unwrap() {
            if builder.should_seal_before(bytes.len() as u64) {
                sealed.extend(builder.seal().unwrap());
                builder = PackBuilder::new(dir.path()).unwrap();
            }
            builder.append(chunk.id, bytes).unwrap();
            chunks.push(RecipeChunk {
                id: chunk.id,
                length: chunk.length,
            });
        }
        builder.append(Digest::of_bytes(&small), &small).unwrap();
        sealed.extend(builder.seal().unwrap());
        assert_eq!(sealed.len(), 2, "40 MiB of chunks make two packs");

        let segment = IndexSegment {
            packs: sealed.iter().map(|p| (p.id, p.size)).collect(),
            blobs: sealed
                .iter()
                .flat_map(|p| {
                    p.entries.iter().map(|e| {
                        let loc = BlobLocation {
                            pack: p.id,
                            offset: e.offset as u32,
                            length: e.length as u32,
                        };
                        (e.id, loc)
                    })
                })
                .collect(),
            recipes: vec![Recipe::new(large_id, chunks)],
        };
        let (name, bytes) = segment.encode().unwrap();
        let index = MergedIndex::from_segments([&IndexSegment::decode(name, &bytes).unwrap()]);

        let packs: std::collections::HashMap<Digest, Vec<u8>> = sealed
            .iter()
            .map(|p| (p.id, std::fs::read(&p.file).unwrap()))
            .collect();
        for (id, bytes) in &packs {
            pack::verify_pack(*id, bytes).unwrap();
        }
        let read_blob = |id: &Digest| {
            let loc = index.blob(id).unwrap();
            let entry = PackEntry {
                id: *id,
                offset: u64::from(loc.offset),
                length: u64::from(loc.length),
            };
            let b = &packs[&loc.pack][entry.offset as usize..entry.range().end as usize];
            pack::verify_blob(loc.pack, &entry, b).unwrap();
            b.to_vec()
        };
        let recipe = index.recipe(&large_id).unwrap();
        assert_eq!(recipe.size, large.len() as u64);
        let rebuilt: Vec<u8> = recipe.chunks.iter().flat_map(|c| read_blob(&c.id)).collect();
        assert_eq!(Digest::of_bytes(&rebuilt), large_id);
        assert_eq!(read_blob(&Digest::of_bytes(&small)), small);
    }
}
