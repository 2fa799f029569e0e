//! Digests: the blake3 hash of an object's bytes, as 64 lowercase hex characters (what `b3sum` prints).

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Buffer size for streaming hashes and copies.
pub const BUF_SIZE: usize = 1 << 20;
/// From this many bytes per buffer on, hashing uses several threads (blake3's rayon mode).
const PARALLEL_HASH_MIN: usize = 1 << 20;

/// The blake3 digest of an object.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// A string that is not 64 hex characters.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{text}` is not a digest: expected 64 hex characters")]
pub struct DigestParseError {
    /// The text that failed to parse (shortened if long).
    pub text: String,
}

impl Digest {
    /// The digest of a byte slice.
    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// The digest with these raw 32 bytes.
    pub fn from_raw(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The fan-out directory name: the first two hex characters.
    pub fn fanout(&self) -> String {
        format!("{:02x}", self.0[0])
    }

    /// The first `n` hex characters, for messages.
    pub fn short(&self, n: usize) -> String {
        let mut s = self.to_string();
        s.truncate(n.min(64));
        s
    }
}

impl From<blake3::Hash> for Digest {
    fn from(h: blake3::Hash) -> Self {
        Digest(*h.as_bytes())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 0xf)];
        }
        f.write_str(std::str::from_utf8(&out).expect("hex is ASCII"))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DigestParseError {
            text: s.chars().take(80).collect(),
        };
        let bytes = s.as_bytes();
        if bytes.len() != 64 {
            return Err(err());
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or_else(err)?;
            let lo = hex_value(pair[1]).ok_or_else(err)?;
            out[i] = hi << 4 | lo;
        }
        Ok(Digest(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A blake3 hasher that uses several threads for large buffers.
#[derive(Default)]
pub struct Hasher(blake3::Hasher);

impl Hasher {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes.
    pub fn update(&mut self, buf: &[u8]) {
        if buf.len() >= PARALLEL_HASH_MIN {
            self.0.update_rayon(buf);
        } else {
            self.0.update(buf);
        }
    }

    /// Feeds bytes on this thread only, whatever their size: for transfers that already run
    /// many at once, where waking the other cores for each buffer costs more than it saves.
    pub fn update_here(&mut self, buf: &[u8]) {
        self.0.update(buf);
    }

    /// The digest of everything fed so far.
    pub fn finish(&self) -> Digest {
        self.0.finalize().into()
    }
}

thread_local! {
    /// One reusable buffer per thread: allocating (and zeroing) a fresh one per file costs more
    /// than hashing a small file.
    static BUF: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; BUF_SIZE]);
}

/// Streams `reader` into `writer` (if any), hashing every byte once; returns the digest and size.
pub fn copy_hashing(reader: &mut impl Read, writer: Option<&mut dyn Write>) -> io::Result<(Digest, u64)> {
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => copy_with(reader, writer, &mut buf),
        Err(_) => copy_with(reader, writer, &mut vec![0u8; BUF_SIZE]),
    })
}

fn copy_with(
    reader: &mut impl Read,
    mut writer: Option<&mut dyn Write>,
    buf: &mut [u8],
) -> io::Result<(Digest, u64)> {
    let mut hasher = Hasher::new();
    let mut size = 0u64;
    loop {
        let n = read_full(reader, buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if let Some(w) = writer.as_mut() {
            w.write_all(&buf[..n])?;
        }
        size += n as u64;
    }
    Ok((hasher.finish(), size))
}

/// Files at least this large are copied by [`copy_file_hashing`]'s pipeline.
const PIPELINE_MIN: u64 = 16 << 20;
/// Smaller copies are handed to the disk when complete (larger ones buffer by buffer).
const WRITEBACK_MIN: u64 = 1 << 20;
/// The pipeline's buffer size (two are in use per file).
const PIPELINE_BUF: usize = 4 << 20;

/// Copies `src` to `dst`, hashing every byte once. Large files go through a pipeline: while
/// one buffer is hashed (on several threads) and written, the next is read; each buffer
/// written is handed to the disk at once (writeback starts without waiting for it), so that
/// the fsync which publishes a large object finds little left to write.
pub fn copy_file_hashing(
    src: &mut (impl Read + Send),
    dst: &mut std::fs::File,
    size_hint: u64,
) -> io::Result<(Digest, u64)> {
    if size_hint < PIPELINE_MIN {
        let copied = copy_hashing(src, Some(&mut *dst))?;
        if copied.1 >= WRITEBACK_MIN {
            crate::fs::start_writeback(dst, 0, 0);
        }
        return Ok(copied);
    }
    let mut hasher = Hasher::new();
    let mut cur = vec![0u8; PIPELINE_BUF];
    let mut next = vec![0u8; PIPELINE_BUF];
    let mut n = read_full(src, &mut cur)?;
    let mut size = 0u64;
    while n > 0 {
        let chunk = &cur[..n];
        let (read, wrote) = rayon::join(
            || read_full(src, &mut next),
            || {
                let (_, w) = rayon::join(|| hasher.0.update_rayon(chunk), || dst.write_all(chunk));
                w
            },
        );
        wrote?;
        crate::fs::start_writeback(dst, size, n as u64);
        size += n as u64;
        n = read?;
        std::mem::swap(&mut cur, &mut next);
    }
    Ok((hasher.finish(), size))
}

/// Hashes everything `reader` yields.
pub fn hash_reader(reader: &mut impl Read) -> io::Result<(Digest, u64)> {
    copy_hashing(reader, None)
}

/// Reads until `buf` is full or the reader ends; returns the count read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_b3sum_and_round_trips() {
        // b3sum of the empty input
        let empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assert_eq!(Digest::of_bytes(b"").to_string(), empty);
        let d: Digest = empty.parse().unwrap();
        assert_eq!(d.to_string(), empty);
        assert_eq!(d.fanout(), "af");
        assert_eq!(empty.to_uppercase().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn rejects_bad_digests() {
        for bad in [
            "",
            "abc",
            &"g".repeat(64),
            &"a".repeat(63),
            &"a".repeat(65),
            &"é".repeat(32),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad}");
        }
    }

    #[test]
    fn streaming_hash_equals_one_shot() {
        let data: Vec<u8> = (0..3 * BUF_SIZE + 17).map(|i| (i * 31 % 251) as u8).collect();
        let mut out = Vec::new();
        let (d, n) = copy_hashing(&mut &data[..], Some(&mut out)).unwrap();
        assert_eq!(d, Digest::of_bytes(&data));
        assert_eq!(n as usize, data.len());
        assert_eq!(out, data);
    }

    #[test]
    fn pipelined_file_copy_matches() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(PIPELINE_MIN as usize + 3 * PIPELINE_BUF + 5))
            .map(|i| (i * 7 % 253) as u8)
            .collect();
        let src_path = dir.path().join("src");
        std::fs::write(&src_path, &data).unwrap();
        let mut src = std::fs::File::open(&src_path).unwrap();
        let mut dst = std::fs::File::create(dir.path().join("dst")).unwrap();
        let (d, n) = copy_file_hashing(&mut src, &mut dst, data.len() as u64).unwrap();
        assert_eq!((d, n as usize), (Digest::of_bytes(&data), data.len()));
        assert_eq!(std::fs::read(dir.path().join("dst")).unwrap(), data);
    }

    #[test]
    fn serde_as_string() {
        let d = Digest::of_bytes(b"x");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{d}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
    }
}
