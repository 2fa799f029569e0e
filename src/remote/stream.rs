//! One object streamed from a remote, chunk by chunk, for a reader that hands the bytes on
//! as they come (`mlv.open` in Python) instead of installing them in the cache. The whole
//! object is not verified here: the reader hashes what it reads
//! ([`crate::reader::VerifiedReader`]).
//!
//! On a format 2 remote the object is looked up in the index first: a blob is one ranged GET
//! of its bytes in its pack; a chunked file is its chunks' ranged GETs, in order (a few ahead),
//! each chunk verified against its id before it is handed on. An object in no index is read at
//! its format 1 key (a remote upgraded from format 1).

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use object_store::path::Path as ObjectPath;

use crate::hash::Digest;

use super::backend::Backend;
use super::error::{kind_of, Kind, RemoteError};
use super::format2::{pack, pack_key, PackEntry};
use super::store::Remote;

/// Why the body stopped.
enum Failure {
    /// A request failed (mapped to the remote's error, naming the key, when it surfaces).
    Store(object_store::Error, ObjectPath),
    /// Anything else (a chunk that does not match its id, a pack gone).
    Remote(RemoteError),
}

/// The body of one object's GET (or of its chunks' ranged GETs), as it arrives.
pub struct ObjectStream {
    body: BoxStream<'static, Result<Bytes, Failure>>,
    /// What is read: the object's key, or its pack's (format 2).
    key: String,
    /// The size the store announced.
    pub len: u64,
}

impl std::fmt::Debug for ObjectStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStream")
            .field("key", &self.key)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl ObjectStream {
    /// The object's key on the remote (format 2: the pack holding it, or a description of the
    /// packs holding its chunks).
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// The next chunk of the body (`None` at its end). Errors name the remote and the key,
    /// secrets scrubbed.
    pub async fn next_chunk(&mut self, remote: &Remote) -> Result<Option<Bytes>, RemoteError> {
        match self.body.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(Failure::Store(e, key))) => Err(remote.store_error(&e, "download", Some(&key))),
            Some(Err(Failure::Remote(e))) => Err(e),
        }
    }
}

impl Remote {
    /// Starts a GET of one object (the whole of it; the body streams). An object the remote
    /// does not hold is `RemoteError::MissingObjects`.
    pub async fn get_stream(&self, digest: &Digest) -> Result<ObjectStream, RemoteError> {
        if self.format2().await?.is_some() {
            if let Some(s) = self.get_packed_stream(digest).await? {
                return Ok(s);
            }
        }
        let key = self.object_key(digest);
        let got = match self.backend().get(&key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => {
                return Err(RemoteError::MissingObjects {
                    remote: self.display_name().to_string(),
                    digests: vec![*digest],
                });
            }
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let len = got.meta.size;
        let failed = key.clone();
        Ok(ObjectStream {
            body: got
                .into_stream()
                .map(move |r| r.map_err(|e| Failure::Store(e, failed.clone())))
                .boxed(),
            key: key.to_string(),
            len,
        })
    }

    /// A format 2 object's stream: a blob's one ranged GET, or a chunked file's chunks in
    /// order; `None` if the index knows neither.
    async fn get_packed_stream(&self, digest: &Digest) -> Result<Option<ObjectStream>, RemoteError> {
        let index = self.index().await?;
        let missing = || RemoteError::MissingObjects {
            remote: self.display_name().to_string(),
            digests: vec![*digest],
        };
        let reads: Vec<(ObjectPath, PackEntry, Digest)> = if let Some(at) = index.blob(digest) {
            vec![self.packed_read(*digest, at.pack, at.offset, at.length)]
        } else if let Some(recipe) = index.recipe(digest) {
            recipe
                .chunks
                .iter()
                .map(|c| {
                    let at = index.blob(&c.id).ok_or_else(missing)?;
                    Ok(self.packed_read(c.id, at.pack, at.offset, at.length))
                })
                .collect::<Result<_, RemoteError>>()?
        } else {
            return Ok(None);
        };
        let len = reads.iter().map(|(_, e, _)| e.length).sum();
        let key = match reads.as_slice() {
            [(key, _, _)] => key.to_string(),
            _ => format!(
                "{} chunks in {}",
                reads.len(),
                self.key(super::format2::PACK_PREFIX)
            ),
        };
        let backend = self.backend().clone();
        let remote = self.display_name().to_string();
        let body = stream::iter(reads)
            .map(move |(key, entry, pack)| read_blob(backend.clone(), remote.clone(), key, entry, pack))
            .buffered(self.jobs().min(4))
            .boxed();
        Ok(Some(ObjectStream { body, key, len }))
    }

    /// The key, the entry and the pack of a blob read.
    fn packed_read(
        &self,
        id: Digest,
        pack: Digest,
        offset: u32,
        length: u32,
    ) -> (ObjectPath, PackEntry, Digest) {
        let entry = PackEntry {
            id,
            offset: offset.into(),
            length: length.into(),
        };
        (self.key(&pack_key(&pack)), entry, pack)
    }

    /// A corrupt download's error: `bytes` received from `key` hash to `actual`.
    pub fn corrupt(&self, digest: Digest, key: String, actual: Digest, size: u64) -> RemoteError {
        RemoteError::Corrupt {
            remote: self.display_name().to_string(),
            digest,
            key,
            actual,
            size,
        }
    }
}

/// One blob's ranged GET, verified against its id.
async fn read_blob(
    backend: Arc<dyn Backend>,
    remote: String,
    key: ObjectPath,
    entry: PackEntry,
    pack: Digest,
) -> Result<Bytes, Failure> {
    if entry.length == 0 {
        // an empty range is not a valid request
        return Ok(Bytes::new());
    }
    let fail = |error| {
        Failure::Remote(RemoteError::Format2 {
            remote: remote.clone(),
            error: Box::new(error),
        })
    };
    let got = match backend.get(&key, Some(entry.range())).await {
        Ok(g) => g,
        Err(e) if kind_of(&e) == Kind::NotFound => {
            return Err(Failure::Remote(RemoteError::MissingObjects {
                remote: remote.clone(),
                digests: vec![entry.id],
            }))
        }
        Err(e) => return Err(Failure::Store(e, key)),
    };
    let bytes = got.bytes().await.map_err(|e| Failure::Store(e, key.clone()))?;
    pack::verify_blob(pack, &entry, &bytes).map_err(fail)?;
    Ok(bytes)
}
