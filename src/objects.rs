//! Where objects can be had: the local cache, or the cache backed by a remote
//! (`ops::sources`), behind one trait.

use crate::cache::{Cache, CacheError};
use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::Manifest;

/// Where objects can be had. The local cache implements it; the default remote can be added
/// behind the same trait without touching the callers.
pub trait ObjectSource {
    /// Whether the object can be had (not verified). A source that cannot answer (an
    /// unreachable remote) returns an error, never "no".
    fn has(&self, digest: &Digest) -> Result<bool, Error>;
    /// A directory manifest, verified; `None` when it cannot be had.
    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error>;
}

impl ObjectSource for Cache {
    fn has(&self, digest: &Digest) -> Result<bool, Error> {
        Ok(self.contains(digest))
    }

    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error> {
        match self.read_manifest(digest) {
            Ok(parsed) => Ok(Some(parsed?)),
            Err(CacheError::Missing { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
