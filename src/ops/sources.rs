//! Where objects can be had for the history and lineage queries: the local cache, and behind
//! it the default remote (asked only for what the cache lacks).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::Manifest;
use crate::objects::ObjectSource;
use crate::remote::Remote;
use crate::repo::Repo;

/// The cache, then a remote: `has` asks the remote about objects the cache lacks (once each),
/// and `manifest` downloads a missing manifest into the cache, verified.
pub struct CacheThenRemote<'a> {
    repo: &'a Repo,
    remote: Remote,
    runtime: tokio::runtime::Handle,
    known: Mutex<HashMap<Digest, bool>>,
}

impl<'a> CacheThenRemote<'a> {
    /// The cache backed by the default remote, or `None` when no default remote is set.
    /// `runtime` runs the remote's requests (the caller's: the library builds none); call
    /// from outside it, as this blocks on it.
    pub fn default_remote(repo: &'a Repo, runtime: tokio::runtime::Handle) -> Result<Option<Self>, Error> {
        if repo.config.core.remote.is_none() {
            return Ok(None);
        }
        let remote = super::remotes::open(repo, None, None)?;
        Ok(Some(CacheThenRemote {
            repo,
            remote,
            runtime,
            known: Mutex::new(HashMap::new()),
        }))
    }
}

impl ObjectSource for CacheThenRemote<'_> {
    fn has(&self, digest: &Digest) -> Result<bool, Error> {
        if self.repo.cache.contains(digest) {
            return Ok(true);
        }
        if let Some(k) = self.known.lock().ok().and_then(|m| m.get(digest).copied()) {
            return Ok(k);
        }
        // A remote that cannot answer is an error, not "the object is unavailable".
        let on_remote = self.runtime.block_on(self.remote.contains(digest))?;
        if let Ok(mut m) = self.known.lock() {
            m.insert(*digest, on_remote);
        }
        Ok(on_remote)
    }

    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error> {
        if !self.repo.cache.contains(digest) && self.has(digest)? {
            let progress = crate::progress::NoProgress;
            self.runtime.block_on(self.remote.download(
                &self.repo.cache,
                std::slice::from_ref(digest),
                &progress,
            ))?;
        }
        self.repo.cache.manifest(digest)
    }
}
