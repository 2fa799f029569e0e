//! Pack objects: many blobs (whole small files and chunks) in one remote object, named by the
//! blake3 digest of all its bytes, with a footer listing each blob as restic's packs do.
//!
//! Layout (integers little-endian; see "Remote format 2" in docs/format.md):
//!
//! ```text
//! "MLV2PACK"                                       8 bytes
//! blob bytes, in footer order, back to back         (no per-blob header)
//! footer: per blob, in file order                   48 bytes each:
//!     id (32) | offset (u64) | length (u64)
//! trailer                                           64 bytes:
//!     blob count (u64) | footer offset (u64) | blake3 of the footer (32)
//!     | version (u32) | reserved, 0 (u32) | "MLV2PEND"
//! ```
//!
//! The trailer has a fixed size, so a reader that knows the pack's size fetches the last 64
//! bytes, learns where the footer starts and fetches it (or fetches a generous tail at once).
//! Every number is checked against the pack's size before anything is allocated from it.

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

use crate::fs::{IoContext, IoError};
use crate::hash::{Digest, Hasher};

use super::error::Format2Error;

/// The first bytes of every pack.
pub const PACK_MAGIC: &[u8; 8] = b"MLV2PACK";
/// The last bytes of every pack.
pub const TRAILER_MAGIC: &[u8; 8] = b"MLV2PEND";
/// The version of the pack layout this mlv writes and reads.
pub const PACK_VERSION: u32 = 1;
/// Bytes before the first blob.
pub const HEADER_LEN: u64 = PACK_MAGIC.len() as u64;
/// Bytes per blob in the footer.
pub const ENTRY_LEN: u64 = 48;
/// Bytes of the fixed-size trailer.
pub const TRAILER_LEN: u64 = 64;
/// A pack is sealed once its blobs reach this size.
pub const TARGET_PACK_SIZE: u64 = 32 << 20;
/// No pack, footer and trailer included, is larger; readers refuse larger ones.
pub const MAX_PACK_SIZE: u64 = 64 << 20;

/// One blob of a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackEntry {
    /// The blake3 digest of its bytes.
    pub id: Digest,
    /// Where it starts in the pack.
    pub offset: u64,
    /// Its length.
    pub length: u64,
}

impl PackEntry {
    /// Its byte range in the pack.
    pub fn range(&self) -> Range<u64> {
        self.offset..self.offset + self.length
    }
}

/// A pack's parsed trailer: where its footer lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Number of blobs.
    pub count: u64,
    /// Where the footer starts (the end of the blob area).
    pub footer_offset: u64,
    checksum: [u8; 32],
}

impl Trailer {
    /// The bytes to fetch for the footer and the trailer: from the footer to the pack's end.
    pub fn footer_range(&self, pack_size: u64) -> Range<u64> {
        self.footer_offset..pack_size
    }
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Parses the trailer from `tail`, the last bytes of a pack of `pack_size` bytes (at least
/// [`TRAILER_LEN`] of them, or the whole pack if it is shorter).
pub fn parse_trailer(pack: Digest, pack_size: u64, tail: &[u8]) -> Result<Trailer, Format2Error> {
    let bad = |reason: String| Format2Error::BadFooter { pack, reason };
    if tail.len() as u64 > pack_size {
        return Err(bad(format!(
            "{} tail bytes for a pack of {pack_size}",
            tail.len()
        )));
    }
    if pack_size > MAX_PACK_SIZE {
        return Err(bad(format!(
            "{pack_size} bytes is more than a pack may hold ({MAX_PACK_SIZE})"
        )));
    }
    if pack_size < HEADER_LEN + TRAILER_LEN {
        return Err(Format2Error::TruncatedPack {
            pack,
            expected: HEADER_LEN + TRAILER_LEN,
            actual: pack_size,
        });
    }
    if (tail.len() as u64) < TRAILER_LEN {
        return Err(bad(format!("{} tail bytes, {TRAILER_LEN} needed", tail.len())));
    }
    let t = &tail[tail.len() - TRAILER_LEN as usize..];
    if &t[56..64] != TRAILER_MAGIC {
        return Err(bad("no trailer (truncated, or not a pack)".into()));
    }
    let version = u32_at(t, 48);
    if version != PACK_VERSION {
        return Err(bad(format!(
            "pack version {version}, this mlv reads {PACK_VERSION}"
        )));
    }
    if u32_at(t, 52) != 0 {
        return Err(bad("reserved trailer bytes are not zero".into()));
    }
    let count = u64_at(t, 0);
    let footer_offset = u64_at(t, 8);
    let footer_len = count.checked_mul(ENTRY_LEN);
    let expected_end = footer_len
        .and_then(|l| l.checked_add(footer_offset))
        .and_then(|l| l.checked_add(TRAILER_LEN));
    if expected_end != Some(pack_size) || footer_offset < HEADER_LEN {
        return Err(bad(format!(
            "{count} blobs with a footer at {footer_offset} do not fit a pack of {pack_size} bytes"
        )));
    }
    Ok(Trailer {
        count,
        footer_offset,
        checksum: t[16..48].try_into().expect("32 bytes"),
    })
}

/// Parses and checks the footer of a pack of `pack_size` bytes from `tail`, any suffix of the
/// pack that covers the footer and the trailer. Blobs must tile the blob area exactly, in
/// order, with distinct ids.
pub fn parse_footer(pack: Digest, pack_size: u64, tail: &[u8]) -> Result<Vec<PackEntry>, Format2Error> {
    let trailer = parse_trailer(pack, pack_size, tail)?;
    let bad = |reason: String| Format2Error::BadFooter { pack, reason };
    let need = pack_size - trailer.footer_offset;
    if (tail.len() as u64) < need {
        return Err(bad(format!(
            "{} tail bytes do not cover the footer ({need} bytes)",
            tail.len()
        )));
    }
    let start = tail.len() - need as usize;
    let footer = &tail[start..tail.len() - TRAILER_LEN as usize];
    if *blake3::hash(footer).as_bytes() != trailer.checksum {
        return Err(bad("the footer does not match its checksum".into()));
    }
    // `count` is bounded by the bytes at hand: 48 of them per entry
    let mut entries = Vec::with_capacity(footer.len() / ENTRY_LEN as usize);
    let mut at = HEADER_LEN;
    for e in footer.chunks_exact(ENTRY_LEN as usize) {
        let id = Digest::from_raw(e[..32].try_into().expect("32 bytes"));
        let offset = u64_at(e, 32);
        let length = u64_at(e, 40);
        if offset != at {
            return Err(bad(format!(
                "blob {id} starts at {offset}, not at {at} where the previous ends"
            )));
        }
        at = match offset.checked_add(length) {
            Some(end) if end <= trailer.footer_offset => end,
            _ => {
                return Err(bad(format!(
                    "blob {id} ({length} bytes at {offset}) ends past the blob area"
                )))
            }
        };
        entries.push(PackEntry { id, offset, length });
    }
    if at != trailer.footer_offset {
        return Err(bad(format!(
            "the blobs end at {at}, the footer starts at {}",
            trailer.footer_offset
        )));
    }
    let mut ids: Vec<Digest> = entries.iter().map(|e| e.id).collect();
    ids.sort_unstable();
    if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(bad(format!("blob {} is listed twice", w[0])));
    }
    Ok(entries)
}

/// Checks bytes read for `entry` out of `pack`: their length, then their digest.
pub fn verify_blob(pack: Digest, entry: &PackEntry, bytes: &[u8]) -> Result<(), Format2Error> {
    if (bytes.len() as u64) < entry.length {
        return Err(Format2Error::TruncatedPack {
            pack,
            expected: entry.offset + entry.length,
            actual: entry.offset + bytes.len() as u64,
        });
    }
    let actual = Digest::of_bytes(bytes);
    if bytes.len() as u64 != entry.length || actual != entry.id {
        return Err(Format2Error::BlobMismatch {
            pack,
            blob: entry.id,
            actual,
            length: bytes.len() as u64,
        });
    }
    Ok(())
}

/// Checks a whole pack held in memory (a download, `fsck --read-data`): its name, its footer
/// and every blob. Returns the footer.
pub fn verify_pack(pack: Digest, bytes: &[u8]) -> Result<Vec<PackEntry>, Format2Error> {
    let size = bytes.len() as u64;
    let entries = parse_footer(pack, size, bytes)?;
    if !bytes.starts_with(PACK_MAGIC) {
        return Err(Format2Error::BadFooter {
            pack,
            reason: "it does not start with the pack magic".into(),
        });
    }
    for e in &entries {
        verify_blob(pack, e, &bytes[e.offset as usize..(e.offset + e.length) as usize])?;
    }
    let actual = Digest::of_bytes(bytes);
    if actual != pack {
        return Err(Format2Error::PackMismatch { pack, actual, size });
    }
    Ok(entries)
}

/// A pack being built in a temporary file.
pub struct PackBuilder {
    out: BufWriter<std::fs::File>,
    tmp: tempfile::TempPath,
    hasher: Hasher,
    offset: u64,
    entries: Vec<PackEntry>,
    ids: std::collections::HashSet<Digest>,
}

/// A finished pack, re-read and checked, ready to upload under [`SealedPack::id`].
#[derive(Debug)]
pub struct SealedPack {
    /// The pack's name: the blake3 digest of its bytes.
    pub id: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its blobs, in file order.
    pub entries: Vec<PackEntry>,
    /// The temporary file holding it (deleted when dropped).
    pub file: tempfile::TempPath,
}

impl PackBuilder {
    /// A new pack in a temporary file in `tmp_dir`.
    pub fn new(tmp_dir: &Path) -> Result<PackBuilder, Format2Error> {
        let (file, tmp) = crate::fs::temp_file_in(tmp_dir)?.into_parts();
        let mut b = PackBuilder {
            out: BufWriter::with_capacity(1 << 20, file),
            tmp,
            hasher: Hasher::new(),
            offset: 0,
            entries: Vec::new(),
            ids: Default::default(),
        };
        b.write(PACK_MAGIC)?;
        Ok(b)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), IoError> {
        self.out
            .write_all(bytes)
            .map_err(|e| crate::fs::temp_write_error(&self.tmp, e))?;
        self.hasher.update_here(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// The pack's size once sealed with one more blob of `length` bytes.
    fn size_with(&self, length: u64) -> u64 {
        self.offset + length + (self.entries.len() as u64 + 1) * ENTRY_LEN + TRAILER_LEN
    }

    /// Whether the pack should be sealed before a blob of `length` bytes is added: it holds
    /// blobs already, and the blob would take it past the target size.
    pub fn should_seal_before(&self, length: u64) -> bool {
        !self.entries.is_empty() && self.offset - HEADER_LEN + length > TARGET_PACK_SIZE
    }

    /// Whether `id` is in the pack already.
    pub fn contains(&self, id: &Digest) -> bool {
        self.ids.contains(id)
    }

    /// Appends a blob whose bytes the caller hashed to `id`; a second copy is skipped (returns
    /// false). Refuses a blob that would take the pack past [`MAX_PACK_SIZE`].
    pub fn append(&mut self, id: Digest, bytes: &[u8]) -> Result<bool, Format2Error> {
        if self.ids.contains(&id) {
            return Ok(false);
        }
        let length = bytes.len() as u64;
        if self.size_with(length) > MAX_PACK_SIZE {
            return Err(Format2Error::PackFull {
                used: self.offset,
                length,
                cap: MAX_PACK_SIZE,
            });
        }
        let offset = self.offset;
        self.write(bytes)?;
        self.entries.push(PackEntry { id, offset, length });
        self.ids.insert(id);
        Ok(true)
    }

    /// Blobs so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no blob was added.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Blob bytes so far.
    pub fn blob_bytes(&self) -> u64 {
        self.offset - HEADER_LEN
    }

    /// Writes the footer and trailer, then re-reads the file and checks every blob and the
    /// whole pack against the digests computed while writing (what is uploaded is what was
    /// meant). An empty builder gives `None`.
    pub fn seal(mut self) -> Result<Option<SealedPack>, Format2Error> {
        if self.entries.is_empty() {
            return Ok(None);
        }
        let footer_offset = self.offset;
        let mut footer = Vec::with_capacity(self.entries.len() * ENTRY_LEN as usize);
        for e in &self.entries {
            footer.extend_from_slice(e.id.as_bytes());
            footer.extend_from_slice(&e.offset.to_le_bytes());
            footer.extend_from_slice(&e.length.to_le_bytes());
        }
        let mut trailer = Vec::with_capacity(TRAILER_LEN as usize);
        trailer.extend_from_slice(&(self.entries.len() as u64).to_le_bytes());
        trailer.extend_from_slice(&footer_offset.to_le_bytes());
        trailer.extend_from_slice(blake3::hash(&footer).as_bytes());
        trailer.extend_from_slice(&PACK_VERSION.to_le_bytes());
        trailer.extend_from_slice(&0u32.to_le_bytes());
        trailer.extend_from_slice(TRAILER_MAGIC);
        self.write(&footer)?;
        self.write(&trailer)?;
        let id = self.hasher.finish();
        let size = self.offset;
        let tmp = self.tmp;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| crate::fs::temp_write_error(&tmp, e.into_error()))?;
        file.seek(SeekFrom::Start(0)).at("cannot read", &tmp)?;
        reread(&mut file, &tmp, id, size, &self.entries)?;
        Ok(Some(SealedPack {
            id,
            size,
            entries: self.entries,
            file: tmp,
        }))
    }
}

/// Re-reads a sealed pack from its start: each blob and the whole must hash as when written.
fn reread(
    file: &mut std::fs::File,
    path: &Path,
    id: Digest,
    size: u64,
    entries: &[PackEntry],
) -> Result<(), Format2Error> {
    let mut whole = Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut read = |n: u64, whole: &mut Hasher, blob: Option<&mut Hasher>| -> Result<(), Format2Error> {
        let mut left = n;
        let mut blob = blob;
        while left > 0 {
            let want = left.min(buf.len() as u64) as usize;
            file.read_exact(&mut buf[..want]).at("cannot read", path)?;
            whole.update_here(&buf[..want]);
            if let Some(b) = blob.as_deref_mut() {
                b.update_here(&buf[..want]);
            }
            left -= want as u64;
        }
        Ok(())
    };
    read(HEADER_LEN, &mut whole, None)?;
    for e in entries {
        let mut h = Hasher::new();
        read(e.length, &mut whole, Some(&mut h))?;
        let actual = h.finish();
        if actual != e.id {
            return Err(Format2Error::BlobMismatch {
                pack: id,
                blob: e.id,
                actual,
                length: e.length,
            });
        }
    }
    let blob_end = entries.last().map_or(HEADER_LEN, |e| e.offset + e.length);
    read(size - blob_end, &mut whole, None)?;
    let actual = whole.finish();
    if actual != id {
        return Err(Format2Error::PackMismatch {
            pack: id,
            actual,
            size,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(n: usize) -> Blobs {
        (0..n)
            .map(|i| {
                let b = format!("blob {i} ").repeat(i % 13 + 1).into_bytes();
                (Digest::of_bytes(&b), b)
            })
            .collect()
    }

    type Blobs = Vec<(Digest, Vec<u8>)>;

    fn sealed(n: usize) -> (SealedPack, Vec<u8>, Blobs) {
        let dir = tempfile::tempdir().unwrap();
        let mut b = PackBuilder::new(dir.path()).unwrap();
        let bl = blobs(n);
        for (id, bytes) in &bl {
            assert!(b.append(*id, bytes).unwrap());
            assert!(!b.append(*id, bytes).unwrap());
        }
        assert_eq!(b.len(), n);
        let p = b.seal().unwrap().unwrap();
        let bytes = std::fs::read(&p.file).unwrap();
        (p, bytes, bl)
    }

    #[test]
    fn round_trip_whole_and_by_tail() {
        let (p, bytes, bl) = sealed(50);
        assert_eq!(p.size, bytes.len() as u64);
        assert_eq!(p.id, Digest::of_bytes(&bytes));
        assert_eq!(verify_pack(p.id, &bytes).unwrap(), p.entries);
        // ranged reading: the fixed trailer, then the footer range it names
        let t = parse_trailer(p.id, p.size, &bytes[bytes.len() - TRAILER_LEN as usize..]).unwrap();
        assert_eq!(t.count, 50);
        let r = t.footer_range(p.size);
        let entries = parse_footer(p.id, p.size, &bytes[r.start as usize..]).unwrap();
        assert_eq!(entries, p.entries);
        for (e, (id, b)) in entries.iter().zip(&bl) {
            assert_eq!(e.id, *id);
            let got = &bytes[e.offset as usize..e.range().end as usize];
            assert_eq!(got, &b[..]);
            verify_blob(p.id, e, got).unwrap();
        }
    }

    #[test]
    fn empty_builder_seals_nothing_and_temp_files_go() {
        let dir = tempfile::tempdir().unwrap();
        assert!(PackBuilder::new(dir.path()).unwrap().seal().unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        let mut b = PackBuilder::new(dir.path()).unwrap();
        b.append(Digest::of_bytes(b"x"), b"x").unwrap();
        let p = b.seal().unwrap().unwrap();
        assert!(p.file.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn sealing_and_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = PackBuilder::new(dir.path()).unwrap();
        assert!(!b.should_seal_before(TARGET_PACK_SIZE * 3));
        let big = vec![7u8; (TARGET_PACK_SIZE - 10) as usize];
        b.append(Digest::of_bytes(&big), &big).unwrap();
        assert!(!b.should_seal_before(10));
        assert!(b.should_seal_before(11));
        let huge = vec![8u8; (MAX_PACK_SIZE - TARGET_PACK_SIZE) as usize];
        let e = b.append(Digest::of_bytes(&huge), &huge).unwrap_err();
        assert!(matches!(e, Format2Error::PackFull { .. }), "{e}");
    }

    #[test]
    fn truncated_packs() {
        let (p, bytes, _) = sealed(10);
        for cut in [1usize, 5, TRAILER_LEN as usize, bytes.len() - 9, bytes.len() - 1] {
            let short = &bytes[..bytes.len() - cut];
            let e = verify_pack(p.id, short).unwrap_err();
            assert!(
                matches!(
                    e,
                    Format2Error::BadFooter { .. } | Format2Error::TruncatedPack { .. }
                ),
                "{cut}: {e}"
            );
        }
        let e = parse_trailer(p.id, 20, &bytes[..20]).unwrap_err();
        assert!(matches!(e, Format2Error::TruncatedPack { actual: 20, .. }), "{e}");
        // a ranged read that came back short
        let e0 = p.entries[3];
        let got = &bytes[e0.offset as usize..e0.range().end as usize - 1];
        assert!(matches!(
            verify_blob(p.id, &e0, got),
            Err(Format2Error::TruncatedPack { .. })
        ));
    }

    #[test]
    fn flipped_blob_byte_is_an_id_mismatch() {
        let (p, mut bytes, _) = sealed(10);
        let e = p.entries[4];
        bytes[e.offset as usize + 2] ^= 0x20;
        match verify_pack(p.id, &bytes).unwrap_err() {
            Format2Error::BlobMismatch { blob, .. } => assert_eq!(blob, e.id),
            other => panic!("{other}"),
        }
        // the footer itself is intact
        assert_eq!(parse_footer(p.id, p.size, &bytes).unwrap(), p.entries);
        // a flipped byte in the magic is caught by the pack's name
        let (p, mut bytes, _) = sealed(2);
        bytes[0] ^= 1;
        assert!(verify_pack(p.id, &bytes).is_err());
    }

    /// Rewrites a footer entry or the trailer of a valid pack, fixing the checksum, so the
    /// structural checks (not the checksum) must catch it.
    fn forge(bytes: &[u8], edit: impl Fn(&mut Vec<u8>, usize)) -> Vec<u8> {
        let mut b = bytes.to_vec();
        let t = b.len() - TRAILER_LEN as usize;
        let footer_offset = u64_at(&b, t + 8) as usize;
        edit(&mut b, footer_offset);
        let t = b.len() - TRAILER_LEN as usize;
        let footer_offset = u64_at(&b, t + 8) as usize;
        if footer_offset <= t {
            let sum = *blake3::hash(&b[footer_offset..t]).as_bytes();
            b[t + 16..t + 48].copy_from_slice(&sum);
        }
        b
    }

    #[test]
    fn hostile_footers_are_refused_before_allocating() {
        let (p, bytes, _) = sealed(4);
        let size = bytes.len() as u64;
        let t = bytes.len() - TRAILER_LEN as usize;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "offset past the end",
                forge(&bytes, |b, f| {
                    b[f + 32..f + 40].copy_from_slice(&u64::MAX.to_le_bytes())
                }),
            ),
            (
                "length past the end",
                forge(&bytes, |b, f| {
                    b[f + 40..f + 48].copy_from_slice(&(1u64 << 40).to_le_bytes())
                }),
            ),
            (
                "huge count",
                forge(&bytes, |b, _| {
                    b[t..t + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes())
                }),
            ),
            (
                "count off by one",
                forge(&bytes, |b, _| b[t..t + 8].copy_from_slice(&5u64.to_le_bytes())),
            ),
            (
                "footer offset 0",
                forge(&bytes, |b, _| {
                    b[t + 8..t + 16].copy_from_slice(&0u64.to_le_bytes())
                }),
            ),
            (
                "overlap",
                forge(&bytes, |b, f| {
                    let e1 = f + 48;
                    let off = u64_at(b, e1 + 32) - 1;
                    b[e1 + 32..e1 + 40].copy_from_slice(&off.to_le_bytes());
                }),
            ),
            (
                "duplicate id",
                forge(&bytes, |b, f| {
                    let first: Vec<u8> = b[f..f + 32].to_vec();
                    b[f + 48..f + 80].copy_from_slice(&first);
                }),
            ),
            (
                "version",
                forge(&bytes, |b, _| {
                    b[t + 48..t + 52].copy_from_slice(&9u32.to_le_bytes())
                }),
            ),
            ("reserved", forge(&bytes, |b, _| b[t + 52] = 1)),
            ("magic", forge(&bytes, |b, _| b[t + 63] = b'X')),
            ("checksum", {
                let mut b = bytes.clone();
                b[t - 1] ^= 1;
                b
            }),
        ];
        for (what, b) in cases {
            let e = parse_footer(p.id, size, &b).unwrap_err();
            assert!(matches!(e, Format2Error::BadFooter { .. }), "{what}: {e}");
            assert!(e.hint().is_some());
            assert_eq!(e.kind(), crate::kind::ErrorKind::Integrity);
        }
        // a claimed size far beyond the cap, and a tail that does not cover the footer
        assert!(parse_footer(p.id, u64::MAX, &bytes).is_err());
        assert!(parse_footer(p.id, size, &bytes[bytes.len() - TRAILER_LEN as usize..]).is_err());
        assert!(parse_trailer(p.id, size, &bytes[..10]).is_err());
    }
}
