//! Inspecting and pruning a remote, for `mlv fsck --remote` and `mlv gc --remote`: the size and
//! age of objects, re-reading an object to hash it, deleting one.

use std::collections::HashMap;
use std::time::SystemTime;

use futures::stream::StreamExt;
use object_store::ObjectMeta;

use crate::hash::{Digest, Hasher};

use super::error::{kind_of, Kind, RemoteError};
use super::store::Remote;

/// What a remote says about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteObject {
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written.
    pub modified: SystemTime,
}

impl RemoteObject {
    pub(crate) fn of(meta: &ObjectMeta) -> RemoteObject {
        RemoteObject {
            size: meta.size,
            modified: SystemTime::from(meta.last_modified),
        }
    }
}

/// What re-reading an object found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reread {
    /// The remote has no such object.
    Missing,
    /// Its bytes hash to `actual` (equal to its name when intact); `size` bytes were read.
    Read {
        /// What the bytes hash to.
        actual: Digest,
        /// How many bytes.
        size: u64,
    },
}

impl Remote {
    /// Every object on the remote, with its size and age (one listing of the whole prefix).
    pub async fn list_objects(&self) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        self.list_under(self.prefix().cloned()).await
    }

    /// Downloads an object and hashes it, keeping nothing (`fsck --remote --read-data`).
    pub async fn reread(&self, digest: &Digest) -> Result<Reread, RemoteError> {
        let key = self.object_key(digest);
        let got = match self.backend().get(&key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(Reread::Missing),
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let mut body = got.into_stream();
        let mut hasher = Hasher::new();
        let mut size = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.store_error(&e, "download", Some(&key)))?;
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        Ok(Reread::Read {
            actual: hasher.finish(),
            size,
        })
    }

    /// A whole object, verified against its name (small objects: manifests). `None` if absent.
    pub async fn read_verified(&self, digest: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
        let key = self.object_key(digest);
        let got = match self.backend().get(&key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.store_error(&e, "download", Some(&key)))?;
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            return Err(RemoteError::Corrupt {
                remote: self.display_name().to_string(),
                digest: *digest,
                key: key.to_string(),
                actual,
                size: bytes.len() as u64,
            });
        }
        Ok(Some(bytes.to_vec()))
    }

    /// The first `len` bytes of an object of `size` bytes (fewer if it is shorter).
    pub async fn read_start(&self, digest: &Digest, size: u64, len: u64) -> Result<Vec<u8>, RemoteError> {
        let end = size.min(len);
        if end == 0 {
            return Ok(Vec::new());
        }
        let key = self.object_key(digest);
        let download_err = |e: object_store::Error| self.store_error(&e, "download", Some(&key));
        let got = self
            .backend()
            .get(&key, Some(0..end))
            .await
            .map_err(download_err)?;
        let bytes = got.bytes().await.map_err(download_err)?;
        Ok(bytes.to_vec())
    }

    /// Deletes an object; one already gone is not an error.
    pub async fn delete(&self, digest: &Digest) -> Result<(), RemoteError> {
        let key = self.object_key(digest);
        match self.backend().delete(&key).await {
            Ok(()) => Ok(()),
            Err(e) if kind_of(&e) == Kind::NotFound => Ok(()),
            Err(e) => Err(self.store_error(&e, "delete", Some(&key))),
        }
    }
}
