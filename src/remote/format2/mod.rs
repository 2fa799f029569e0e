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
pub use index::{BlobLocation, IndexSegment, MergedIndex, Recipe, RecipeChunk};
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
