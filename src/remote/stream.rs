//! One object streamed from a remote, chunk by chunk, for a reader that hands the bytes on
//! as they come (`mlv.open` in Python) instead of installing them in the cache. Not verified
//! here: the reader hashes what it reads ([`crate::reader::VerifiedReader`]).

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};

use crate::hash::Digest;

use super::error::{kind_of, Kind, RemoteError};
use super::store::Remote;

/// The body of one object's GET, as it arrives.
pub struct ObjectStream {
    body: BoxStream<'static, object_store::Result<Bytes>>,
    key: object_store::path::Path,
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
    /// The object's key on the remote.
    pub fn key(&self) -> String {
        self.key.to_string()
    }

    /// The next chunk of the body (`None` at its end). Errors name the remote and the key,
    /// secrets scrubbed.
    pub async fn next_chunk(&mut self, remote: &Remote) -> Result<Option<Bytes>, RemoteError> {
        match self.body.next().await {
            None => Ok(None),
            Some(Ok(chunk)) => Ok(Some(chunk)),
            Some(Err(e)) => Err(remote.store_error(&e, "download", Some(&self.key))),
        }
    }
}

impl Remote {
    /// Starts a GET of one object (the whole of it; the body streams). An object the remote
    /// does not hold is `RemoteError::MissingObjects`.
    pub async fn get_stream(&self, digest: &Digest) -> Result<ObjectStream, RemoteError> {
        let key = self.object_key(digest);
        let got = match self.backend().get(&key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => {
                if self.format2().await?.is_some() {
                    // its objects are in packs: not streamed one by one yet
                    return Err(RemoteError::NotYetFormat2 {
                        remote: self.display_name().to_string(),
                        what: "reading one object straight from the remote",
                    });
                }
                return Err(RemoteError::MissingObjects {
                    remote: self.display_name().to_string(),
                    digests: vec![*digest],
                });
            }
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let len = got.meta.size;
        Ok(ObjectStream {
            body: got.into_stream(),
            key,
            len,
        })
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
