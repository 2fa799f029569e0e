//! Objects another tool keeps at a remote's location (DVC's `files/md5/ab/cdef…`), read by
//! their key under the remote's prefix and streamed to the caller. mlv only reads them: nothing
//! here writes or deletes.

use futures::StreamExt as _;

use super::error::{kind_of, Kind, RemoteError};
use super::store::Remote;

impl Remote {
    /// Streams the object at `rel` (relative to the remote's prefix, `/`-separated) into `sink`,
    /// chunk by chunk. `Ok(None)`: no such object. `Ok(Some(Err(e)))`: `sink` failed (the read
    /// stopped there); `Ok(Some(Ok(n)))`: `n` bytes read.
    pub async fn read_foreign<E>(
        &self,
        rel: &str,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<Option<Result<u64, E>>, RemoteError> {
        let key = self.key(rel);
        let got = match self.backend().get(&key, None).await {
            Ok(g) => g,
            Err(e) if kind_of(&e) == Kind::NotFound => return Ok(None),
            Err(e) => return Err(self.store_error(&e, "download", Some(&key))),
        };
        let mut stream = got.into_stream();
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.store_error(&e, "download", Some(&key)))?;
            n += chunk.len() as u64;
            if let Err(e) = sink(&chunk) {
                return Ok(Some(Err(e)));
            }
        }
        Ok(Some(Ok(n)))
    }
}
