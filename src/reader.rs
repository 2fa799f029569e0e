//! A tracked object read as a stream, verified: [`VerifiedReader`] hashes every byte it hands
//! out and fails at the end unless the bytes hash to the object's name and are as many as
//! recorded. It reads the local cache (a loose object or a range of a pack) or, chunk by chunk,
//! a remote's GET body; nothing is buffered beyond one chunk, so memory stays flat whatever the
//! object's size. `mlv.open` in Python adapts it.

use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::cache::{Cache, CacheError};
use crate::error::Error;
use crate::fs::IoContext;
use crate::hash::{Digest, Hasher};
use crate::pack::ObjectReader;
use crate::remote::stream::ObjectStream;
use crate::remote::Remote;

/// Where the bytes come from.
enum Source {
    /// The local cache: the file holding the object (for messages) and its bytes.
    Cache { path: PathBuf, reader: ObjectReader },
    /// A remote's GET, driven on the caller's runtime; `chunk` is what is left of the last chunk.
    Remote {
        remote: Arc<Remote>,
        runtime: Handle,
        stream: ObjectStream,
        chunk: Bytes,
    },
}

/// An object's bytes, hashed as they are read; the end of the stream is reported only once the
/// content proved intact (else the read fails with the cache's or the remote's integrity
/// error, `ErrorKind::Integrity`).
pub struct VerifiedReader {
    source: Source,
    digest: Digest,
    /// The recorded size (None: unknown, e.g. a manifest's; only the digest is checked).
    size: Option<u64>,
    read: u64,
    hasher: Hasher,
    /// Set once the end was reached and verified.
    verified: bool,
}

impl VerifiedReader {
    /// Reads `digest` (of `size` bytes, when known) out of the cache. A missing object is
    /// `CacheError::Missing`.
    pub fn from_cache(cache: &Cache, digest: &Digest, size: Option<u64>) -> Result<Self, Error> {
        let object = cache.open(digest)?;
        Ok(Self::new(
            Source::Cache {
                path: object.path,
                reader: object.reader,
            },
            *digest,
            size,
        ))
    }

    /// Streams `digest` (of `size` bytes, when known) from `remote`; the request runs on `runtime` (call
    /// from outside it: this blocks on it). Starts the GET now, so a missing object or a
    /// refused request fails here.
    pub fn from_remote(
        remote: Arc<Remote>,
        runtime: Handle,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Self, Error> {
        let stream = runtime.block_on(remote.get_stream(digest))?;
        Ok(Self::new(
            Source::Remote {
                remote,
                runtime,
                stream,
                chunk: Bytes::new(),
            },
            *digest,
            size,
        ))
    }

    /// The cache when it holds the object, else the remote (when there is one; else the
    /// cache's `Missing` error).
    pub fn open(
        cache: &Cache,
        remote: Option<(Arc<Remote>, Handle)>,
        digest: &Digest,
        size: Option<u64>,
    ) -> Result<Self, Error> {
        match Self::from_cache(cache, digest, size) {
            Err(Error::Cache(CacheError::Missing { .. })) if remote.is_some() => {
                let (remote, runtime) = remote.expect("checked");
                Self::from_remote(remote, runtime, digest, size)
            }
            other => other,
        }
    }

    fn new(source: Source, digest: Digest, size: Option<u64>) -> Self {
        VerifiedReader {
            source,
            digest,
            size,
            read: 0,
            hasher: Hasher::new(),
            verified: false,
        }
    }

    /// The object's name.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Its recorded size, when known.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// Whether the object is read from a remote (not the local cache).
    pub fn from_a_remote(&self) -> bool {
        matches!(self.source, Source::Remote { .. })
    }

    /// Reads up to `buf.len()` bytes; `Ok(0)` only at the verified end. Past the end of a
    /// verified object, `Ok(0)` again.
    pub fn read_verified(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if self.verified || buf.is_empty() {
            return Ok(0);
        }
        // Never hand out more than the recorded size: longer content fails at the end.
        let left = self.size.unwrap_or(u64::MAX).saturating_sub(self.read);
        let want = if left == 0 {
            // one more byte would prove the content longer than recorded
            1.min(buf.len())
        } else {
            buf.len().min(usize::try_from(left).unwrap_or(usize::MAX))
        };
        let n = self.fill(&mut buf[..want])?;
        if n == 0 || self.size.is_some_and(|s| self.read + n as u64 > s) {
            let extra = n as u64;
            self.hasher.update(&buf[..n]);
            return self.finish(extra).map(|()| 0);
        }
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }

    /// Reads the whole object into `buf` (exactly its recorded size, from the start) and
    /// verifies it, as [`VerifiedReader::read_verified`] to the end would; reading and hashing
    /// overlap (a scoped thread hashes each chunk while the next one is read), which is what
    /// keeps `mlv.read` of a large cached object close to reading the file from disk.
    pub fn read_exact_verified(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        const CHUNK: usize = 8 << 20;
        if self.read != 0 || self.verified || self.size != Some(buf.len() as u64) {
            return self.read_exact_plain(buf);
        }
        let mut hasher = std::mem::take(&mut self.hasher);
        let (tx, rx) = std::sync::mpsc::sync_channel::<&[u8]>(2);
        let (result, hasher) = std::thread::scope(|s| {
            let hashing = s.spawn(move || {
                for chunk in rx {
                    hasher.update(chunk);
                }
                hasher
            });
            let mut result = Ok(());
            for chunk in buf.chunks_mut(CHUNK) {
                let mut got = 0;
                while got < chunk.len() {
                    match self.fill(&mut chunk[got..]) {
                        Ok(0) => break,
                        Ok(n) => got += n,
                        Err(e) => {
                            result = Err(e);
                            break;
                        }
                    }
                }
                self.read += got as u64;
                let filled: &[u8] = chunk;
                if result.is_err() || tx.send(&filled[..got]).is_err() || got < filled.len() {
                    break;
                }
            }
            drop(tx);
            (result, hashing.join().expect("the hashing thread does not panic"))
        });
        self.hasher = hasher;
        result?;
        // The end must come now: one more byte would make the content longer than recorded.
        let mut probe = [0u8; 1];
        if self.read < buf.len() as u64 {
            return self.finish(0);
        }
        match self.read_verified(&mut probe)? {
            0 => Ok(()),
            _ => unreachable!("read_verified returns 0 past the recorded size or fails"),
        }
    }

    /// `buf.len()` bytes through `read_verified`, then the verified end.
    fn read_exact_plain(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let mut got = 0;
        while got < buf.len() {
            match self.read_verified(&mut buf[got..])? {
                0 => break,
                n => got += n,
            }
        }
        let mut probe = [0u8; 1];
        match self.read_verified(&mut probe)? {
            0 if got == buf.len() => Ok(()),
            _ => Err(crate::fs::IoError::new(
                "cannot read",
                PathBuf::from(self.digest.to_string()),
                io::Error::new(io::ErrorKind::InvalidInput, "the buffer is not the object's size"),
            )
            .into()),
        }
    }

    /// Bytes from the source, unverified.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match &mut self.source {
            Source::Cache { path, reader } => Ok(reader.read(buf).at("cannot read", path)?),
            Source::Remote {
                remote,
                runtime,
                stream,
                chunk,
            } => {
                while chunk.is_empty() {
                    match runtime.block_on(stream.next_chunk(remote))? {
                        Some(c) => *chunk = c,
                        None => return Ok(0),
                    }
                }
                let n = buf.len().min(chunk.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                *chunk = chunk.split_off(n);
                Ok(n)
            }
        }
    }

    /// At the end (`extra` bytes beyond the recorded size were seen): intact, or the integrity
    /// error of the source.
    fn finish(&mut self, extra: u64) -> Result<(), Error> {
        let actual = self.hasher.finish();
        let total = self.read + extra;
        if actual == self.digest && self.size.is_none_or(|s| s == total) {
            self.verified = true;
            return Ok(());
        }
        Err(match &self.source {
            Source::Cache { path, .. } => CacheError::Corrupt {
                digest: self.digest,
                path: path.clone(),
                actual,
            }
            .into(),
            Source::Remote { remote, stream, .. } => {
                remote.corrupt(self.digest, stream.key(), actual, total).into()
            }
        })
    }
}

impl Read for VerifiedReader {
    /// As [`VerifiedReader::read_verified`]; an mlv error travels inside the `io::Error`
    /// (`get_ref()` downcasts to [`Error`]).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_verified(buf).map_err(io::Error::other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_with(bytes: &[u8]) -> (tempfile::TempDir, Cache, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("cache"), dir.path().join("tmp"));
        std::fs::create_dir_all(dir.path().join("tmp")).unwrap();
        let digest = cache.insert_bytes(bytes).unwrap();
        (dir, cache, digest)
    }

    #[test]
    fn reads_an_intact_object_in_small_pieces() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (_d, cache, digest) = cache_with(&data);
        let mut r = VerifiedReader::from_cache(&cache, &digest, Some(data.len() as u64)).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 777];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(r.read(&mut buf).unwrap(), 0);
    }

    #[test]
    fn reads_a_whole_object_at_once_with_overlapped_hashing() {
        let data: Vec<u8> = (0..20_000_000u32).map(|i| (i % 253) as u8).collect();
        let (_d, cache, digest) = cache_with(&data);
        let mut r = VerifiedReader::from_cache(&cache, &digest, Some(data.len() as u64)).unwrap();
        let mut out = vec![0u8; data.len()];
        r.read_exact_verified(&mut out).unwrap();
        assert!(out == data);
        // damaged, short and long copies fail
        for bad in [data[..data.len() - 1].to_vec(), [&data[..], b"x"].concat(), {
            let mut d = data.clone();
            d[12_345_678] ^= 1;
            d
        }] {
            std::fs::write(cache.object_path(&digest), &bad).unwrap();
            let mut r = VerifiedReader::from_cache(&cache, &digest, Some(data.len() as u64)).unwrap();
            let err = r.read_exact_verified(&mut out).unwrap_err();
            assert_eq!(err.kind(), crate::kind::ErrorKind::Integrity, "{err}");
        }
    }

    #[test]
    fn a_damaged_object_fails_at_the_end() {
        let (_d, cache, digest) = cache_with(b"hello world");
        std::fs::write(cache.object_path(&digest), b"hello there").unwrap();
        let mut r = VerifiedReader::from_cache(&cache, &digest, Some(11)).unwrap();
        let err = r.read_to_end(&mut Vec::new()).unwrap_err();
        let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>()).unwrap();
        assert_eq!(inner.kind(), crate::kind::ErrorKind::Integrity);
    }

    #[test]
    fn a_short_or_long_object_fails() {
        for bad in [&b"hello"[..], &b"hello world!!"[..]] {
            let (_d, cache, digest) = cache_with(b"hello world");
            std::fs::write(cache.object_path(&digest), bad).unwrap();
            let mut r = VerifiedReader::from_cache(&cache, &digest, Some(11)).unwrap();
            let mut out = Vec::new();
            let err = r.read_to_end(&mut out).unwrap_err();
            assert!(out.len() <= 11);
            let inner = err.get_ref().and_then(|e| e.downcast_ref::<Error>()).unwrap();
            assert_eq!(inner.kind(), crate::kind::ErrorKind::Integrity, "{inner}");
        }
    }
}
