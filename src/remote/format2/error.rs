//! Errors of remote format 2: damaged packs, index segments and config documents, and a remote
//! written by a newer mlv.

use crate::fs::IoError;
use crate::hash::Digest;

/// Errors reading or building format 2 objects.
#[derive(Debug, thiserror::Error)]
pub enum Format2Error {
    /// A pack is shorter than its footer or the index says.
    #[error("pack {pack} is truncated: {actual} bytes where {expected} are needed")]
    TruncatedPack {
        /// The pack's name.
        pack: Digest,
        /// Bytes the pack should have at least.
        expected: u64,
        /// Bytes it has.
        actual: u64,
    },

    /// A blob read out of a pack does not hash to its id.
    #[error("blob {blob} in pack {pack} is corrupt: its {length} bytes hash to {actual}")]
    BlobMismatch {
        /// The pack's name.
        pack: Digest,
        /// The blob's id.
        blob: Digest,
        /// What the bytes hash to.
        actual: Digest,
        /// How many bytes were read.
        length: u64,
    },

    /// A whole pack does not hash to its name (downloaded, or re-read before upload).
    #[error("pack {pack} is corrupt: its {size} bytes hash to {actual}")]
    PackMismatch {
        /// The pack's name.
        pack: Digest,
        /// What the bytes hash to.
        actual: Digest,
        /// Its size.
        size: u64,
    },

    /// The index places a blob in a pack the remote lacks.
    #[error("the index places blob {blob} in pack {pack}, which the remote lacks")]
    MissingPack {
        /// The pack's name.
        pack: Digest,
        /// A blob the index places in it.
        blob: Digest,
    },

    /// A chunked file's recipe names a chunk the index lacks.
    #[error("the recipe of {file} names chunk {chunk}, which the index lacks")]
    MissingChunk {
        /// The file's digest.
        file: Digest,
        /// The chunk's id.
        chunk: Digest,
    },

    /// A pack's footer or trailer cannot be used.
    #[error("pack {pack} has a bad footer: {reason}")]
    BadFooter {
        /// The pack's name.
        pack: Digest,
        /// What is wrong with it.
        reason: String,
    },

    /// An index segment cannot be used.
    #[error("index segment {segment} is damaged: {reason}")]
    BadIndexSegment {
        /// The segment's name.
        segment: Digest,
        /// What is wrong with it.
        reason: String,
    },

    /// The remote's config document is not valid.
    #[error("the remote's {file} is invalid: {reason}")]
    BadConfig {
        /// The document's name on the remote.
        file: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// The remote uses a format this mlv does not know (written by a newer mlv).
    #[error("the remote uses format {found}, which this mlv does not know (it reads formats 1 and 2)")]
    UnknownFormat {
        /// The format the remote's config document names.
        found: String,
    },

    /// A blob would make a pack exceed its size cap (a caller bug: seal the pack first).
    #[error("a blob of {length} bytes does not fit into a pack of {used} bytes (cap {cap})")]
    PackFull {
        /// Bytes of the pack so far.
        used: u64,
        /// The blob's size.
        length: u64,
        /// The cap.
        cap: u64,
    },

    /// A local file operation failed (the pack's temporary file).
    #[error(transparent)]
    Io(#[from] IoError),
}

impl Format2Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        use crate::kind::ErrorKind;
        match self {
            Format2Error::TruncatedPack { .. }
            | Format2Error::BlobMismatch { .. }
            | Format2Error::PackMismatch { .. }
            | Format2Error::BadFooter { .. }
            | Format2Error::MissingPack { .. }
            | Format2Error::MissingChunk { .. }
            | Format2Error::BadIndexSegment { .. }
            | Format2Error::BadConfig { .. } => ErrorKind::Integrity,
            Format2Error::UnknownFormat { .. } => ErrorKind::Environment,
            Format2Error::PackFull { .. } => ErrorKind::Failure,
            Format2Error::Io(e) => e.kind(),
        }
    }

    /// A suggestion for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Format2Error::TruncatedPack { .. } | Format2Error::BadFooter { .. } => Some(
                "the pack on the remote is damaged (an interrupted upload or a storage fault): \
                 run `mlv fsck --remote` to see which files it affects, then push them again"
                    .into(),
            ),
            Format2Error::BlobMismatch { .. } | Format2Error::PackMismatch { .. } => Some(
                "the remote copy is damaged: run `mlv fsck --remote --read-data`, then push the \
                 affected files again from a cache that has them"
                    .into(),
            ),
            Format2Error::MissingPack { .. } | Format2Error::MissingChunk { .. } => Some(
                "the remote's index promises data it does not hold: run `mlv fsck --remote` to see \
                 which files it affects; restore the pack from a backup, or get them from another \
                 remote (a push does not resend what the index lists)"
                    .into(),
            ),
            Format2Error::BadIndexSegment { .. } => Some(
                "run `mlv fsck --remote`; a damaged segment is rebuilt by pushing again from a \
                 clone that has the data"
                    .into(),
            ),
            Format2Error::BadConfig { file, .. } => Some(format!(
                "fix or remove `{file}` at the remote's root (removing it makes mlv treat the \
                 remote as format 1)"
            )),
            Format2Error::UnknownFormat { .. } => {
                Some("upgrade mlv to the release that wrote this remote, or use another remote".into())
            }
            Format2Error::PackFull { .. } => None,
            Format2Error::Io(e) => e.hint(),
        }
    }
}
