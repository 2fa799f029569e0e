//! Where objects can be had: the local cache, or the cache backed by a remote
//! (`ops::sources`), behind one trait.

use crate::cache::{Cache, CacheError};
use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::Manifest;

/// Where objects can be had. The local cache implements it; the default remote can be added
/// behind the same trait without touching the callers.
pub trait ObjectSource {
    /// Those of `digests` that cannot be had (not verified), in input order; a digest given
    /// twice may be returned twice. Asked once for a whole set, so that a remote-backed source
    /// can answer with a few listings instead of one request per object. A source that cannot
    /// answer (an unreachable remote) returns an error, never "missing".
    fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, Error>;
    /// A directory manifest, verified; `None` when it cannot be had.
    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error>;
}

impl ObjectSource for Cache {
    fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, Error> {
        Ok(Cache::missing(self, digests))
    }

    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error> {
        match self.read_manifest(digest) {
            Ok(parsed) => Ok(Some(parsed?)),
            Err(CacheError::Missing { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_answers_a_batch_in_order_keeping_repeats() {
        let d = tempfile::tempdir().unwrap();
        let cache = Cache::new(d.path().join("cache"), d.path().join("tmp"));
        let here = cache.insert_bytes(b"here").unwrap();
        let (a, b) = (Digest::of_bytes(b"a"), Digest::of_bytes(b"b"));
        let source: &dyn ObjectSource = &cache;
        assert_eq!(source.missing(&[b, here, a, b]).unwrap(), vec![b, a, b]);
        assert_eq!(source.missing(&[]).unwrap(), Vec::<Digest>::new());
    }
}
