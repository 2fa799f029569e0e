//! Presence checks: whether a remote has objects, and their sizes and ages, by HEAD requests
//! or by listing fan-out directories.

use std::collections::{BTreeSet, HashMap, HashSet};

use futures::stream::{self, StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;

use crate::hash::Digest;

use super::error::{kind_of, Kind, RemoteError};
use super::maintain::RemoteObject;
use super::pool::dedup;
use super::store::Remote;

/// Below this many objects, `missing` sends one HEAD per object; from it on, it lists.
pub const HEAD_LIMIT: usize = 64;

impl Remote {
    /// Whether the remote has the object (one HEAD request).
    pub async fn contains(&self, digest: &Digest) -> Result<bool, RemoteError> {
        Ok(self.head(digest).await?.is_some())
    }

    /// The objects among `digests` that the remote lacks, in input order, without duplicates.
    /// Requests as [`Remote::stat`] makes them.
    ///
    /// On a format 2 remote: from its index (read once), then format 1 keys for the rest if
    /// the remote may hold any (see `packed`). On a remote with neither a config document nor
    /// a format 1 fan-out directory (and no `format = 1` option): all of them, after one listing.
    pub async fn missing(&self, digests: &[Digest]) -> Result<Vec<Digest>, RemoteError> {
        let wanted = dedup(digests);
        if wanted.is_empty() {
            return Ok(wanted);
        }
        if self.format2().await?.is_some() {
            return self.missing_packed(wanted).await;
        }
        if self.settings().new_format >= 2 && !self.has_v1_objects().await? {
            // a location a first push will make format 2: it holds none of them (one listing
            // instead of a HEAD or a fan-out listing each)
            return Ok(wanted);
        }
        let present = self.stat(&wanted).await?;
        Ok(wanted.into_iter().filter(|d| !present.contains_key(d)).collect())
    }

    /// Size and age of those of `digests` the remote has (absent ones are not in the map), as
    /// format 1 objects (a format 2 remote's packed blobs are not objects of their own).
    ///
    /// Request rule: fewer than [`HEAD_LIMIT`] distinct objects are checked with one HEAD each
    /// (`jobs` at a time). From [`HEAD_LIMIT`] on, each fan-out directory `PREFIX/ab/` holding at
    /// least one of them is listed instead (at most 256 listings, each one request per 1,000
    /// keys); for remotes of up to ~256k objects that is one request per fan-out, never more
    /// requests than the HEADs would have taken.
    pub async fn stat(&self, digests: &[Digest]) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let wanted = dedup(digests);
        if wanted.len() < HEAD_LIMIT {
            let found: Vec<Option<(Digest, RemoteObject)>> = stream::iter(wanted)
                .map(|d| async move { Ok::<_, RemoteError>(self.head(&d).await?.map(|o| (d, o))) })
                .buffered(self.jobs())
                .try_collect()
                .await?;
            return Ok(found.into_iter().flatten().collect());
        }
        let fanouts: BTreeSet<String> = wanted.iter().map(Digest::fanout).collect();
        let mut listed = self.list_fanouts(fanouts).await?;
        let wanted: HashSet<Digest> = wanted.into_iter().collect();
        listed.retain(|d, _| wanted.contains(d));
        Ok(listed)
    }

    /// Size and age of one object (one HEAD request); `None` if absent.
    pub async fn head(&self, digest: &Digest) -> Result<Option<RemoteObject>, RemoteError> {
        let key = self.object_key(digest);
        match self.backend().head(&key).await {
            Ok(meta) => Ok(Some(RemoteObject::of(&meta))),
            Err(e) if kind_of(&e) == Kind::NotFound => {
                // A HEAD answer has no body: a missing bucket looks like a missing object.
                self.confirm_container().await?;
                Ok(None)
            }
            Err(e) => Err(self.explained_error(&e, "check", Some(&key)).await),
        }
    }

    /// The objects stored under each `PREFIX/<fanout>/`, `jobs` listings at a time.
    pub(super) async fn list_fanouts(
        &self,
        fanouts: BTreeSet<String>,
    ) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let listed: Vec<HashMap<Digest, RemoteObject>> = stream::iter(fanouts)
            .map(|f| self.list_under(Some(self.fanout_key(&f))))
            .buffer_unordered(self.jobs())
            .try_collect()
            .await?;
        Ok(listed.into_iter().flatten().collect())
    }

    /// The objects stored under `prefix` (all of them for `None`); keys that are not objects
    /// of this remote's layout are ignored.
    pub(super) async fn list_under(
        &self,
        prefix: Option<ObjectPath>,
    ) -> Result<HashMap<Digest, RemoteObject>, RemoteError> {
        let mut listing = self.backend().list(prefix.as_ref());
        let mut found = HashMap::new();
        while let Some(item) = listing.next().await {
            match item {
                Ok(meta) => {
                    let digest = meta.location.filename().and_then(|n| n.parse::<Digest>().ok());
                    if let Some(d) = digest.filter(|d| self.object_key(d) == meta.location) {
                        found.insert(d, RemoteObject::of(&meta));
                    }
                }
                // A fan-out directory that does not exist (local remotes) holds nothing.
                Err(e) if kind_of(&e) == Kind::NotFound => break,
                Err(e) => return Err(self.store_error(&e, "list", prefix.as_ref())),
            }
        }
        Ok(found)
    }
}
