//! Content-defined chunking: FastCDC (v2020, normalization level 1, the `fastcdc` crate pinned
//! to an exact version) over a stream, each chunk named by its blake3 digest.
//!
//! Files up to [`ChunkParams::threshold`] bytes are not split: they travel as one blob named by
//! their own digest. Larger files are cut where the content says, so an edit moves only the
//! chunks around it. The chunker reads through one fixed buffer (never the whole file) and
//! finds each cut with `fastcdc::v2020::cut` on a window of at least `max_size` bytes (or the
//! rest of the file), which gives exactly the cut points of the crate's own iterators.

use std::io::{self, Read};

use serde::{Deserialize, Serialize};

use crate::hash::Digest;

/// The chunking parameters a remote records in its config document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkParams {
    /// The algorithm; only [`ALGORITHM`] exists.
    pub algorithm: Algorithm,
    /// No chunk is shorter (but the last of a file).
    pub min_size: u32,
    /// The size FastCDC aims at (its masks derive from it).
    pub avg_size: u32,
    /// No chunk is longer.
    pub max_size: u32,
    /// Files of at most this many bytes are one blob, not chunked.
    pub threshold: u64,
}

/// The chunking algorithms a remote may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    /// FastCDC 2020 with normalization level 1 and the crate's default gear table (seed 0).
    #[serde(rename = "fastcdc-v2020")]
    FastCdcV2020,
}

/// The name of the one algorithm in config documents.
pub const ALGORITHM: &str = "fastcdc-v2020";

/// The parameters of remotes mlv creates: 64 KiB / 256 KiB / 1 MiB chunks, files above 8 MiB.
pub const DEFAULT_PARAMS: ChunkParams = ChunkParams {
    algorithm: Algorithm::FastCdcV2020,
    min_size: 64 << 10,
    avg_size: 256 << 10,
    max_size: 1 << 20,
    threshold: 8 << 20,
};

/// How far ahead the chunker reads: several maximal chunks, so the window is moved rarely.
const BUFFER: usize = 8 << 20;

impl ChunkParams {
    /// Checks the sizes against what FastCDC accepts (even, ordered, within the crate's limits),
    /// so a hostile config document can never reach one of the crate's assertions.
    pub fn validate(&self) -> Result<(), String> {
        use fastcdc::v2020 as f;
        let (min, avg, max) = (
            self.min_size as usize,
            self.avg_size as usize,
            self.max_size as usize,
        );
        let within = |v: usize, lo: usize, hi: usize, what: &str| {
            if v < lo || v > hi {
                Err(format!("{what} {v} is outside {lo}..={hi}"))
            } else if v % 2 != 0 {
                Err(format!("{what} {v} is odd"))
            } else {
                Ok(())
            }
        };
        within(min, f::MINIMUM_MIN, f::MINIMUM_MAX, "min_size")?;
        within(avg, f::AVERAGE_MIN, f::AVERAGE_MAX, "avg_size")?;
        within(max, f::MAXIMUM_MIN, f::MAXIMUM_MAX, "max_size")?;
        if !(min <= avg && avg <= max) {
            return Err(format!(
                "sizes must grow: min_size {min}, avg_size {avg}, max_size {max}"
            ));
        }
        if self.threshold < u64::from(self.max_size) {
            return Err(format!("threshold {} is below max_size {max}", self.threshold));
        }
        Ok(())
    }

    /// Whether a file of `size` bytes is split into chunks (otherwise it is one blob).
    pub fn splits(&self, size: u64) -> bool {
        size > self.threshold
    }
}

/// One chunk of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Where it starts in the stream.
    pub offset: u64,
    /// Its length (at most `max_size`).
    pub length: u32,
    /// The blake3 digest of its bytes.
    pub id: Digest,
}

/// Cuts a stream into chunks. [`Chunker::next_chunk`] lends each chunk's bytes (for packing);
/// the `Iterator` gives the chunks alone.
pub struct Chunker<R> {
    source: R,
    params: ChunkParams,
    masks: (u64, u64),
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    offset: u64,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `source`; `params` must be valid ([`ChunkParams::validate`]).
    pub fn new(source: R, params: ChunkParams) -> Result<Self, String> {
        params.validate()?;
        let masks =
            fastcdc::v2020::select_masks(params.avg_size as usize, fastcdc::v2020::Normalization::Level1);
        Ok(Chunker {
            source,
            params,
            masks,
            buf: vec![0u8; BUFFER.max(2 * params.max_size as usize)],
            start: 0,
            end: 0,
            eof: false,
            offset: 0,
        })
    }

    /// The next chunk and its bytes, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> io::Result<Option<(Chunk, &[u8])>> {
        let max = self.params.max_size as usize;
        if self.end - self.start < max && !self.eof {
            self.refill()?;
        }
        if self.start == self.end {
            return Ok(None);
        }
        let (mask_s, mask_l) = self.masks;
        let window = &self.buf[self.start..self.end];
        let (_, n) = fastcdc::v2020::cut(
            window,
            self.params.min_size as usize,
            self.params.avg_size as usize,
            max,
            mask_s,
            mask_l,
            mask_s << 1,
            mask_l << 1,
        );
        // `cut` returns the whole window when it is shorter than `min_size`; never 0 here
        let n = n.clamp(1, window.len());
        let bytes = &window[..n];
        let chunk = Chunk {
            offset: self.offset,
            length: n as u32,
            id: Digest::from(blake3::hash(bytes)),
        };
        self.start += n;
        self.offset += n as u64;
        Ok(Some((chunk, &self.buf[self.start - n..self.start])))
    }

    /// Moves what is left to the buffer's start and reads until it is full or the stream ends.
    fn refill(&mut self) -> io::Result<()> {
        self.buf.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while self.end < self.buf.len() {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> u64 {
        self.offset
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = io::Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_chunk().map(|c| c.map(|(c, _)| c)).transpose()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A deterministic pseudo-random stream (splitmix64): the same bytes on every machine.
    pub(crate) fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
        let mut state = seed;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            out.extend_from_slice(&z.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    fn chunks(data: &[u8], params: ChunkParams) -> Vec<Chunk> {
        Chunker::new(data, params)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap()
    }

    /// A reader that hands out at most 7,777 bytes per call.
    struct Dribble<'a>(&'a [u8]);

    impl Read for Dribble<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(7_777);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn golden_cut_points_and_ids() {
        // 24 MiB from a fixed seed. If this test fails after a dependency update, the chunker
        // moved its cut points: every remote's deduplication would silently stop. Do not update
        // the numbers; pin the old crate version instead.
        let data = pseudo_random(16, 24 << 20);
        let got = chunks(&data, DEFAULT_PARAMS);
        let lengths: Vec<u32> = got.iter().map(|c| c.length).collect();
        let mut all = blake3::Hasher::new();
        for c in &got {
            all.update(&c.offset.to_le_bytes());
            all.update(&c.length.to_le_bytes());
            all.update(c.id.as_bytes());
        }
        assert_eq!(lengths, GOLDEN_LENGTHS, "cut points moved");
        assert_eq!(got[0].id.to_string(), GOLDEN_FIRST_ID);
        assert_eq!(Digest::from(all.finalize()).to_string(), GOLDEN_ALL);
        // and the crate's own in-memory iterator agrees (it is what the numbers pin)
        let theirs: Vec<u32> = fastcdc::v2020::FastCDC::new(&data, 64 << 10, 256 << 10, 1 << 20)
            .map(|c| c.length as u32)
            .collect();
        assert_eq!(theirs, GOLDEN_LENGTHS);
    }

    /// Chunk lengths of `pseudo_random(16, 24 MiB)` with the default parameters (fastcdc 5.0.0).
    #[rustfmt::skip]
    const GOLDEN_LENGTHS: &[u32] = &[
        264835, 340511, 386836, 308759, 294970, 112277, 549261, 167853, 289981, 339937, 376091,
        288705, 567852, 356083, 286341, 272331, 386108, 439039, 471798, 414504, 150863, 255586,
        413338, 197862, 278636, 348746, 162108, 454451, 383587, 68198, 305897, 308759, 429367,
        271348, 376306, 92870, 585153, 190575, 283565, 76462, 465852, 103854, 519926, 483008,
        588195, 576496, 287790, 277286, 389412, 281633, 282905, 602733, 179958, 661136, 298067,
        475037, 370563, 271849, 384084, 203365, 264845, 263551, 298730, 721568, 273667, 439976,
        268250, 327489, 433951, 296130, 222900, 302358, 499393, 89778, 154764, 57576,
    ];
    /// The id of the first chunk.
    const GOLDEN_FIRST_ID: &str = "2484e23ef0bf79e38a4547b9f7c430d102172bbc4b1f4137c77cd02bf76a5954";
    /// blake3 over every chunk's (offset u64 LE, length u32 LE, id).
    const GOLDEN_ALL: &str = "2a71e00d350c9ab90f3f42b08002c5e571b58889235685569894fe5cceb6c499";

    #[test]
    fn chunks_tile_the_stream_and_match_the_crate() {
        let data = pseudo_random(7, 5 << 20);
        let params = ChunkParams {
            min_size: 4096,
            avg_size: 16384,
            max_size: 65536,
            ..DEFAULT_PARAMS
        };
        let ours = chunks(&data, params);
        // the crate's own in-memory iterator agrees cut for cut
        let theirs: Vec<(u64, u32)> = fastcdc::v2020::FastCDC::new(&data, 4096, 16384, 65536)
            .map(|c| (c.offset as u64, c.length as u32))
            .collect();
        assert_eq!(
            ours.iter().map(|c| (c.offset, c.length)).collect::<Vec<_>>(),
            theirs
        );
        let mut at = 0u64;
        for c in &ours {
            assert_eq!(c.offset, at);
            assert!(c.length <= 65536);
            let bytes = &data[c.offset as usize..(c.offset + u64::from(c.length)) as usize];
            assert_eq!(c.id, Digest::of_bytes(bytes));
            at += u64::from(c.length);
        }
        assert_eq!(at, data.len() as u64);
        // short reads give the same chunks
        let dribbled: Vec<Chunk> = Chunker::new(Dribble(&data), params)
            .unwrap()
            .collect::<io::Result<_>>()
            .unwrap();
        assert_eq!(dribbled, ours);
    }

    /// A reader that fails after handing out some bytes.
    struct Failing(usize);

    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0);
            buf[..n].fill(1);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn read_errors_reach_the_caller() {
        let mut c = Chunker::new(Failing(3 << 20), DEFAULT_PARAMS).unwrap();
        let e = c.next().unwrap().unwrap_err();
        assert_eq!(e.to_string(), "disk on fire");
    }

    #[test]
    fn small_and_empty_streams() {
        assert!(chunks(&[], DEFAULT_PARAMS).is_empty());
        let one = chunks(b"hello", DEFAULT_PARAMS);
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].id, Digest::of_bytes(b"hello"));
        assert!(!DEFAULT_PARAMS.splits(8 << 20));
        assert!(DEFAULT_PARAMS.splits((8 << 20) + 1));
    }

    #[test]
    fn invalid_params_are_refused_not_asserted() {
        for bad in [
            ChunkParams {
                min_size: 63,
                ..DEFAULT_PARAMS
            },
            ChunkParams {
                min_size: 65537,
                ..DEFAULT_PARAMS
            },
            ChunkParams {
                avg_size: 1 << 30,
                ..DEFAULT_PARAMS
            },
            ChunkParams {
                max_size: 0,
                ..DEFAULT_PARAMS
            },
            ChunkParams {
                min_size: 1 << 20,
                avg_size: 4096,
                ..DEFAULT_PARAMS
            },
            ChunkParams {
                threshold: 10,
                ..DEFAULT_PARAMS
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
            assert!(Chunker::new(&b""[..], bad).is_err());
        }
        DEFAULT_PARAMS.validate().unwrap();
    }
}
