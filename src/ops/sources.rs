//! Where objects can be had for the history and lineage queries: the local cache, and behind
//! it the default remote (asked only for what the cache lacks, in batches).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use tokio::runtime::Handle;

use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::Manifest;
use crate::objects::ObjectSource;
use crate::remote::Remote;
use crate::repo::Repo;

/// The cache, then a remote: `missing` asks the remote, in one batch, about the objects the
/// cache lacks (each object once per source), and `manifest` downloads a missing manifest into
/// the cache, verified. The remote is asked on the caller's runtime (`handle`): the library
/// builds none of its own.
pub struct CacheThenRemote<'a> {
    repo: &'a Repo,
    remote: Remote,
    runtime: Handle,
    /// What the remote answered so far: whether it has each object asked about.
    known: Mutex<HashMap<Digest, bool>>,
}

impl<'a> CacheThenRemote<'a> {
    /// The cache backed by the default remote, or `None` when no default remote is set.
    /// `runtime` runs the remote's requests; call from outside it (this blocks on it).
    pub fn default_remote(repo: &'a Repo, runtime: Handle) -> Result<Option<Self>, Error> {
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

    /// Downloads `digests` into the cache, each verified before it is installed; returns how
    /// many were downloaded (the others were there already).
    pub fn fetch(&self, digests: &[Digest], progress: &dyn crate::progress::Progress) -> Result<u64, Error> {
        let report = self
            .runtime
            .block_on(self.remote.download(&self.repo.cache, digests, progress))?;
        Ok(report.downloaded)
    }

    fn known(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, bool>> {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl ObjectSource for CacheThenRemote<'_> {
    fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, Error> {
        let lacking = self.repo.cache.missing(digests);
        let unknown: Vec<Digest> = {
            let known = self.known();
            lacking
                .iter()
                .filter(|d| !known.contains_key(d))
                .copied()
                .collect()
        };
        if !unknown.is_empty() {
            // A remote that cannot answer is an error, not "the objects are unavailable".
            let absent: HashSet<Digest> = self
                .runtime
                .block_on(self.remote.missing(&unknown))?
                .into_iter()
                .collect();
            let mut known = self.known();
            for d in unknown {
                known.insert(d, !absent.contains(&d));
            }
        }
        let known = self.known();
        Ok(lacking
            .into_iter()
            .filter(|d| !known.get(d).copied().unwrap_or(false))
            .collect())
    }

    fn manifest(&self, digest: &Digest) -> Result<Option<Manifest>, Error> {
        if !self.repo.cache.contains(digest) && self.missing(std::slice::from_ref(digest))?.is_empty() {
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
