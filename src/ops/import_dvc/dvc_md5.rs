//! DVC's md5, both kinds: DVC 3.x hashes the bytes; DVC 2.x (outputs without `hash: md5`)
//! hashed text files with CRLF turned into LF ("md5-dos2unix"), deciding per 1 MiB chunk from
//! its first 512 bytes, exactly as `dvc_data.hashfile.hash.Dos2UnixHashStreamFile` does. The
//! bytes themselves are never changed: DVC 2.x stored and restored them as they were.

use md5::{Digest as _, Md5};

/// DVC 2.x read and hashed a file in chunks of this size.
const CHUNK: usize = 1 << 20;
/// The part of a chunk its text/binary guess looks at.
const SNIFF: usize = 512;

/// Which md5 an output records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Md5Kind {
    /// `hash: md5` (DVC 3.x): the md5 of the bytes.
    Plain,
    /// No `hash` field (DVC 2.x): md5-dos2unix.
    Dos2Unix,
}

impl Md5Kind {
    /// The kind an output with this `hash` field records (`None`: no field).
    pub fn of(hash: Option<&str>) -> Md5Kind {
        match hash {
            Some(_) => Md5Kind::Plain,
            None => Md5Kind::Dos2Unix,
        }
    }
}

/// A streaming DVC md5: feed any slices, get DVC's digest.
pub struct DvcMd5 {
    kind: Md5Kind,
    md5: Md5,
    /// md5-dos2unix: the current (incomplete) 1 MiB chunk.
    chunk: Vec<u8>,
}

impl DvcMd5 {
    pub fn new(kind: Md5Kind) -> DvcMd5 {
        DvcMd5 {
            kind,
            md5: Md5::new(),
            chunk: Vec::new(),
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        if self.kind == Md5Kind::Plain {
            self.md5.update(data);
            return;
        }
        while !data.is_empty() {
            let take = (CHUNK - self.chunk.len()).min(data.len());
            if self.chunk.is_empty() && take == CHUNK {
                // a whole chunk straight from the caller's buffer
                hash_chunk(&mut self.md5, &data[..CHUNK]);
            } else {
                self.chunk.extend_from_slice(&data[..take]);
                if self.chunk.len() == CHUNK {
                    hash_chunk(&mut self.md5, &self.chunk);
                    self.chunk.clear();
                }
            }
            data = &data[take..];
        }
    }

    /// The lowercase hex digest.
    pub fn finish(mut self) -> String {
        if !self.chunk.is_empty() {
            hash_chunk(&mut self.md5, &self.chunk);
        }
        hex(&self.md5.finalize())
    }

    /// The digest of `bytes` held in memory (a `.dir` manifest).
    pub fn of(kind: Md5Kind, bytes: &[u8]) -> String {
        let mut h = DvcMd5::new(kind);
        h.update(bytes);
        h.finish()
    }
}

/// Lowercase hex, as DVC writes md5s.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where DVC keeps the object `md5` below a cache or remote root, in the order to try them:
/// 3.x's `files/md5/ab/cdef…`, then 2.x's `ab/cdef…`.
pub fn object_keys(md5: &str) -> [String; 2] {
    let (a, b) = md5.split_at(2);
    [format!("files/md5/{a}/{b}"), format!("{a}/{b}")]
}

/// One md5-dos2unix chunk: CRLF -> LF when its first 512 bytes look like text.
fn hash_chunk(md5: &mut Md5, chunk: &[u8]) {
    if !is_text(&chunk[..chunk.len().min(SNIFF)]) {
        md5.update(chunk);
        return;
    }
    let mut start = 0;
    for i in memchr_crlf(chunk) {
        md5.update(&chunk[start..i]);
        start = i + 1; // drop the CR, keep the LF
    }
    md5.update(&chunk[start..]);
}

/// Positions of the CR of every CRLF in `chunk`.
fn memchr_crlf(chunk: &[u8]) -> impl Iterator<Item = usize> + '_ {
    chunk
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w == b"\r\n")
        .map(|(i, _)| i)
}

/// DVC's `istextblock`: no NUL, and at most 30% of bytes outside printable ASCII and
/// `\n\r\t\f\b`. An empty block is text.
fn is_text(block: &[u8]) -> bool {
    if block.is_empty() {
        return true;
    }
    if block.contains(&0) {
        return false;
    }
    let nontext = block
        .iter()
        .filter(|&&b| !((32..127).contains(&b) || matches!(b, b'\n' | b'\r' | b'\t' | 0x0c | 0x08)))
        .count();
    nontext as f64 / block.len() as f64 <= 0.30
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(kind: Md5Kind, data: &[u8], step: usize) -> String {
        let mut h = DvcMd5::new(kind);
        for piece in data.chunks(step.max(1)) {
            h.update(piece);
        }
        h.finish()
    }

    /// Expected values computed by dvc_data 3.x (`fobj_md5(..., name="md5-dos2unix")`).
    #[test]
    fn dos2unix_md5_matches_dvc_data_for_any_feeding() {
        let split = [vec![b'x'; CHUNK - 1], b"\r\ny\r\n".to_vec()].concat();
        let high: Vec<u8> = (0..100).flat_map(|_| 200u8..=255).chain(*b"\r\n").collect();
        let cases: [(&[u8], &str); 6] = [
            (b"a\r\nb\r\nc", "c32b2057b9bd62caa835386346177935"),
            (b"\x00\r\n\x01", "6fb1bb143e07d52be6b9f2c90cd306c4"),
            (b"", "d41d8cd98f00b204e9800998ecf8427e"),
            (&b"line\r\n".repeat(400_000), "bbd24934b0b9481b0d24373afc7fe5f4"),
            // a CRLF cut by the 1 MiB chunk boundary stays as it is
            (&split, "e1825541a28894307881fc219afcc49f"),
            (&high, "6a4b5ad7b1373ca72837c0da61a24423"),
        ];
        for (data, want) in cases {
            for step in [1 << 16, 7, CHUNK, CHUNK + 3, data.len()] {
                assert_eq!(digest(Md5Kind::Dos2Unix, data, step), want, "step {step}");
            }
        }
        assert_eq!(
            digest(Md5Kind::Plain, b"a\r\nb\r\nc", 2),
            "17800212205a0baee12dcf34c0748370"
        );
    }
}
