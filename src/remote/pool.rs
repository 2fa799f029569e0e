//! The job pool shared by transfers: `jobs` objects at a time until the first error, bounded
//! memory, batches, and unwrapping blocking tasks.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::stream::{self, StreamExt};

use crate::hash::Digest;

use super::error::RemoteError;

/// Parts of one object in flight at once.
pub(super) const PARTS_IN_FLIGHT: usize = 4;

/// Objects received are published (one file-system sync) once this many are waiting, or this
/// many bytes: a sync costs milliseconds, and a crash loses at most one batch of work.
pub(super) const PUBLISH_BATCH: (usize, u64) = (4096, 512 << 20);

pub(super) fn batch_full(objects: usize, bytes: u64) -> bool {
    objects >= PUBLISH_BATCH.0 || bytes >= PUBLISH_BATCH.1
}

/// Verified downloads waiting for a full batch are also published this often: a killed or
/// interrupted download loses at most this much of its work.
pub(super) const PUBLISH_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// A verified download: a cache temporary file, or the bytes of a small object for a pack.
pub(super) enum Body {
    File(tempfile::NamedTempFile),
    Memory(Vec<u8>),
}

/// Runs `f` on each digest, `jobs` at a time, handing each result to `each` as it comes
/// (nothing is kept per object); after the first error no new one starts, and that error
/// is returned once the running ones are done.
pub(super) async fn each_until_error<T, F, Fut>(
    jobs: usize,
    digests: Vec<Digest>,
    f: F,
    mut each: impl FnMut(T),
) -> Result<(), RemoteError>
where
    F: Fn(Digest) -> Fut,
    Fut: std::future::Future<Output = Result<T, RemoteError>>,
{
    let stop = AtomicBool::new(false);
    let (stop, f) = (&stop, &f);
    let mut results = stream::iter(digests)
        .map(|d| async move {
            if stop.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let r = f(d).await;
            if r.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            r.map(Some)
        })
        .buffer_unordered(jobs);
    let mut first = None;
    while let Some(r) = results.next().await {
        match r {
            Ok(Some(t)) => each(t),
            Ok(None) => {}
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Distinct digests in first-seen order.
pub(super) fn dedup(digests: &[Digest]) -> Vec<Digest> {
    let mut seen = HashSet::with_capacity(digests.len());
    digests.iter().filter(|d| seen.insert(**d)).copied().collect()
}

/// The memory budget counts KiB so that large budgets fit the semaphore's u32.
pub(super) fn budget_units(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX >> 4)
}

/// Unwraps a finished blocking task, resuming a panic if it panicked.
pub(super) fn join<T>(r: Result<T, tokio::task::JoinError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("a transfer task was cancelled: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_keeps_order() {
        let (a, b) = (Digest::of_bytes(b"a"), Digest::of_bytes(b"b"));
        assert_eq!(dedup(&[b, a, b, a]), vec![b, a]);
    }
}
