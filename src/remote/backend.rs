//! Where a remote keeps its objects, behind one narrow interface: HEAD, list, (ranged) GET, put
//! with a mode, multipart put, delete. Two implementations: [`Cloud`], an object_store client
//! (S3, GCS, Azure), and [`LocalDir`], a directory on this machine.
//!
//! A directory's objects are files, and transfers copy them as files ([`Backend::files`]):
//! uploads are staged and published in batches (one file-system sync per batch, no-clobber
//! renames), downloads are one pipelined copy opened without following a symbolic link. Its
//! other operations (HEADs, listings, reads for `fsck`, deletes for `gc`) go through
//! object_store's `LocalFileSystem`, as requests to a cloud store do.
//!
//! Keys are relative to the bucket or container, or to the directory. Errors are object_store's:
//! the caller turns them into `RemoteError`s naming the remote and the key.

use std::ops::Range;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::FutureExt;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, GetRange, GetResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload, PutResult,
};

use super::local::LocalDir;

type StoreResult<T> = object_store::Result<T>;

/// The operations transfers, `fsck` and `gc` make on a remote's objects. Both kinds of backend
/// answer them through an object_store client ([`Backend::store`]); a directory also lets
/// transfers copy its objects as files ([`Backend::files`]).
pub(super) trait Backend: Send + Sync {
    /// The object_store client underneath.
    fn store(&self) -> &Arc<dyn ObjectStore>;

    /// A directory whose objects transfers copy as files rather than with requests.
    fn files(&self) -> Option<&LocalDir> {
        None
    }

    /// Size and age of an object (`NotFound` if absent).
    fn head<'a>(&'a self, key: &'a ObjectPath) -> BoxFuture<'a, StoreResult<ObjectMeta>> {
        self.store().head(key).boxed()
    }

    /// The objects under `prefix` (all of them for `None`).
    fn list<'a>(&'a self, prefix: Option<&'a ObjectPath>) -> BoxStream<'a, StoreResult<ObjectMeta>> {
        self.store().list(prefix)
    }

    /// A GET of the whole object, or of the bytes in `range`.
    fn get<'a>(
        &'a self,
        key: &'a ObjectPath,
        range: Option<Range<u64>>,
    ) -> BoxFuture<'a, StoreResult<GetResult>> {
        get(self.store().as_ref(), key, range)
    }

    /// Writes a whole object; `PutMode::Create` fails with `AlreadyExists` rather than replace one.
    fn put<'a>(
        &'a self,
        key: &'a ObjectPath,
        payload: PutPayload,
        mode: PutMode,
    ) -> BoxFuture<'a, StoreResult<PutResult>> {
        self.store()
            .put_opts(key, payload, PutOptions::from(mode))
            .boxed()
    }

    /// Starts an upload in parts; the object appears when it completes.
    fn put_multipart<'a>(
        &'a self,
        key: &'a ObjectPath,
    ) -> BoxFuture<'a, StoreResult<Box<dyn MultipartUpload>>> {
        self.store().put_multipart(key).boxed()
    }

    /// Deletes an object (`NotFound` if absent).
    fn delete<'a>(&'a self, key: &'a ObjectPath) -> BoxFuture<'a, StoreResult<()>> {
        self.store().delete(key).boxed()
    }

    /// The object_store client underneath, shared (to read keys directly, as tests do).
    fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store().clone()
    }
}

/// A cloud object store, reached with requests (with object_store's timeouts and retries).
pub(super) struct Cloud(pub(super) Arc<dyn ObjectStore>);

impl Backend for Cloud {
    fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.0
    }
}

impl Backend for LocalDir {
    fn store(&self) -> &Arc<dyn ObjectStore> {
        LocalDir::store(self)
    }

    fn files(&self) -> Option<&LocalDir> {
        Some(self)
    }
}

fn get<'a>(
    store: &'a dyn ObjectStore,
    key: &'a ObjectPath,
    range: Option<Range<u64>>,
) -> BoxFuture<'a, StoreResult<GetResult>> {
    match range {
        None => store.get(key).boxed(),
        Some(range) => store
            .get_opts(
                key,
                GetOptions {
                    range: Some(GetRange::Bounded(range)),
                    ..GetOptions::default()
                },
            )
            .boxed(),
    }
}
