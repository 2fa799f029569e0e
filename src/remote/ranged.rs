//! Large downloads as parallel ranged GETs.
//!
//! Every download from an object store starts as one plain GET. When its response shows an
//! object of at least `multipart_threshold` bytes (and more than one part), the object is
//! fetched in parts of `part_size` bytes instead: the first part is read from that response's
//! body (so learning the size costs no extra request), the others with ranged GETs, up to
//! [`PARTS_IN_FLIGHT`] parts of an object at once.
//!
//! Each part is written into the temporary file at its offset as it arrives (positional
//! writes, so nothing waits in memory for its predecessors); once a part and all those before it
//! are written, it is read back and hashed, so the object is hashed strictly in order from its
//! first byte to its last (blake3 is sequential). A part in flight holds at most one write
//! batch ([`BATCH`]) of the remote's memory budget, so memory stays bounded however many large
//! objects are downloading.
//!
//! Integrity is exactly the single GET's: the caller publishes the temporary file only if it
//! hashes to the object's name. A part that is shorter or longer than its range (nothing is ever
//! written outside a part's range), or whose response reports another object size, ends the
//! download at once: the digest returned is that of the parts before it, fewer bytes than the
//! object, so the caller sees a mismatch and treats it like any other (fetched once more, then
//! reported corrupt, nothing installed). Requests, retries and timeouts are the plain GET's:
//! object_store retries each request and resumes an interrupted body within the retry budget.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::GetResult;
use tokio::sync::OwnedSemaphorePermit;
use tokio::task::JoinHandle;

use crate::cache::Cache;
use crate::fs::{IoContext, IoError};
use crate::hash::{Digest, Hasher};
use crate::progress::Progress;

use super::backend::Backend;
use super::error::RemoteError;
use super::pool::{budget_units, join, PARTS_IN_FLIGHT};
use super::store::Remote;

/// A part's received bytes are written once this many are waiting (and at its end).
const BATCH: usize = 1 << 20;
/// Written parts are read back and hashed in blocks of this size (under the size from which
/// `Hasher` hashes on several threads: downloads already keep the cores busy).
const READ_BACK: usize = 512 << 10;
/// Parts are never smaller than this.
const MIN_PART: u64 = 1 << 20;

/// A downloaded object: its temporary file, what its bytes hash to, how many there were.
type Received = (tempfile::NamedTempFile, Digest, u64);

impl Remote {
    /// Whether the object a plain GET answered for is fetched in ranges (see the module
    /// documentation) rather than from that response's body alone.
    pub(super) fn wants_ranges(&self, got: &GetResult) -> bool {
        let size = got.meta.size;
        size >= self.settings().multipart_threshold && size > self.download_part_size()
    }

    fn download_part_size(&self) -> u64 {
        self.settings().part_size.max(MIN_PART)
    }

    /// Downloads the object `got` is the plain GET of, in parts, into a cache temporary file;
    /// returns the file, what its bytes hash to (those of the parts before a bad one) and how
    /// many bytes that is.
    pub(super) async fn receive_ranged(
        &self,
        cache: &Cache,
        got: GetResult,
        key: &ObjectPath,
        progress: &dyn Progress,
    ) -> Result<Received, RemoteError> {
        let size = got.meta.size;
        let plan = Plan {
            size,
            part: self.download_part_size(),
        };
        let tmp = cache.temp_file()?;
        let tmp_path: Arc<Path> = tmp.path().into();
        let file = Arc::new(tmp.as_file().try_clone().at("cannot write", &tmp_path)?);
        let units = budget_units(BATCH as u64).min(budget_units(self.settings().memory_budget));
        let mut first = Some(got.into_stream());
        let mut window: VecDeque<Task> = VecDeque::new();
        let mut hashed = Hashed::default();
        let mut next = 0;
        loop {
            while next < plan.parts() && window.len() < PARTS_IN_FLIGHT {
                // A part's budget is released when the part is written, whatever the other
                // parts do, so waiting for it cannot deadlock.
                let permit = self
                    .download_budget()
                    .clone()
                    .acquire_many_owned(units)
                    .await
                    .expect("the budget semaphore is never closed");
                let source = match first.take() {
                    Some(body) => Source::Prefix(body, size),
                    None => Source::Range(self.backend().clone(), key.clone()),
                };
                let to = Target {
                    file: file.clone(),
                    path: tmp_path.clone(),
                    range: plan.range(next),
                };
                window.push_back(Task(tokio::spawn(write_part(source, to, permit))));
                next += 1;
            }
            let Some(mut task) = window.pop_front() else {
                break;
            };
            let part = match join((&mut task.0).await) {
                Ok(part) => part,
                Err(PartError::Store(e)) => return Err(self.store_error(&e, "download", Some(key))),
                Err(PartError::Io(e)) => return Err(e.into()),
            };
            if !part.whole || part.object_size != size {
                // A short or long part, or another object. `window` is dropped on return,
                // cancelling the parts still in flight; whatever they still write lands in a
                // temporary file the caller discards.
                return Ok((tmp, hashed.hasher.finish(), hashed.len));
            }
            hashed = hashed.read_back(&file, &tmp_path, part.range.clone()).await?;
            progress.advance(0, part.range.end - part.range.start);
            if part.range.start == 0 {
                // Crash tests: a crash here leaves a partial temporary file.
                crate::crash_point!("fetch.mid_download");
            }
        }
        Ok((tmp, hashed.hasher.finish(), hashed.len))
    }
}

/// How an object divides into parts.
#[derive(Debug, Clone, Copy)]
struct Plan {
    size: u64,
    part: u64,
}

impl Plan {
    fn parts(&self) -> u64 {
        self.size.div_ceil(self.part)
    }

    fn range(&self, i: u64) -> Range<u64> {
        let start = i * self.part;
        start..(start + self.part).min(self.size)
    }
}

/// The object's first bytes, hashed in order.
#[derive(Default)]
struct Hashed {
    hasher: Hasher,
    len: u64,
    buf: Vec<u8>,
}

impl Hashed {
    /// Reads the written part `range` back from the file and hashes it, on a blocking thread.
    async fn read_back(
        self,
        file: &Arc<std::fs::File>,
        path: &Arc<Path>,
        range: Range<u64>,
    ) -> Result<Hashed, RemoteError> {
        debug_assert_eq!(range.start, self.len, "parts are hashed in order");
        let (file, path) = (file.clone(), path.clone());
        let r = tokio::task::spawn_blocking(move || -> Result<Hashed, IoError> {
            let mut h = self;
            h.buf.resize(READ_BACK, 0);
            let mut at = range.start;
            while at < range.end {
                let n = READ_BACK.min((range.end - at) as usize);
                file.read_exact_at(&mut h.buf[..n], at)
                    .at("cannot read a temporary file", &path)?;
                h.hasher.update(&h.buf[..n]);
                at += n as u64;
            }
            h.len = range.end;
            // hashed: start writing it to disk, so that the fsync publishing the object
            // finds little left to write
            crate::fs::start_writeback(&file, range.start, range.end - range.start);
            Ok(h)
        })
        .await;
        Ok(join(r)?)
    }
}

/// Where a part's bytes go.
struct Target {
    file: Arc<std::fs::File>,
    path: Arc<Path>,
    range: Range<u64>,
}

/// Where a part's bytes come from.
enum Source {
    /// The plain GET's body, of an object of this size: the part is its first bytes, the rest
    /// is not read.
    Prefix(BoxStream<'static, object_store::Result<Bytes>>, u64),
    /// A ranged GET of the part's range.
    Range(Arc<dyn Backend>, ObjectPath),
}

/// A part as written.
#[derive(Debug)]
struct Part {
    range: Range<u64>,
    /// Whether exactly the range's bytes came (not fewer, not more).
    whole: bool,
    /// The object size the response reported.
    object_size: u64,
}

#[derive(Debug)]
enum PartError {
    Store(object_store::Error),
    Io(IoError),
}

/// A part task; aborted when dropped, so an early return cancels the parts in flight.
struct Task(JoinHandle<Result<Part, PartError>>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Receives one part and writes it at its offset, never outside its range. object_store
/// checks that a ranged GET is answered with a partial response for exactly that range.
async fn write_part(source: Source, to: Target, _permit: OwnedSemaphorePermit) -> Result<Part, PartError> {
    let (mut body, object_size, prefix) = match source {
        Source::Prefix(body, size) => (body, size, true),
        Source::Range(backend, key) => {
            let got = backend
                .get(&key, Some(to.range.clone()))
                .await
                .map_err(PartError::Store)?;
            let size = got.meta.size;
            (got.into_stream(), size, false)
        }
    };
    let want = to.range.end - to.range.start;
    let (mut len, mut long) = (0, false);
    let mut batch = Vec::new();
    let mut batch_len = 0;
    loop {
        // A prefix stops at the part's end; a ranged body is read one chunk past it, so that a
        // long one is noticed.
        let done = if prefix { len == want } else { long };
        if done {
            break;
        }
        let Some(chunk) = body.next().await else {
            break;
        };
        let mut chunk = chunk.map_err(PartError::Store)?;
        if len + chunk.len() as u64 > want {
            long = !prefix;
            chunk.truncate((want - len) as usize);
        }
        len += chunk.len() as u64;
        batch_len += chunk.len();
        batch.push(chunk);
        if batch_len >= BATCH {
            let at = to.range.start + len - batch_len as u64;
            write_at(&to, std::mem::take(&mut batch), at).await?;
            batch_len = 0;
        }
    }
    write_at(&to, batch, to.range.start + len - batch_len as u64).await?;
    Ok(Part {
        range: to.range,
        whole: len == want && !long,
        object_size,
    })
}

/// Writes `chunks` one after the other from `offset`, on a blocking thread.
async fn write_at(to: &Target, chunks: Vec<Bytes>, offset: u64) -> Result<(), PartError> {
    if chunks.is_empty() {
        return Ok(());
    }
    let (file, path) = (to.file.clone(), to.path.clone());
    let r = tokio::task::spawn_blocking(move || -> io::Result<()> {
        let mut at = offset;
        for c in &chunks {
            file.write_all_at(c, at)?;
            at += c.len() as u64;
        }
        Ok(())
    })
    .await;
    join(r).map_err(|e| PartError::Io(crate::fs::temp_write_error(&path, e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_the_object_once() {
        for (size, part) in [
            (10, 3),
            (9, 3),
            (1, 5),
            (5 << 20, 1 << 20),
            ((5 << 20) + 1, 1 << 20),
        ] {
            let plan = Plan { size, part };
            let ranges: Vec<Range<u64>> = (0..plan.parts()).map(|i| plan.range(i)).collect();
            assert_eq!(ranges.first().unwrap().start, 0);
            assert_eq!(ranges.last().unwrap().end, size);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
            assert!(ranges.iter().all(|r| !r.is_empty() && r.end - r.start <= part));
        }
    }

    /// Writes a part from `source` into a file prefilled with dots; returns the part and the
    /// file's bytes.
    async fn write(source: Source, range: Range<u64>) -> (Part, Vec<u8>) {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), b"................").unwrap();
        let to = Target {
            file: Arc::new(tmp.reopen().unwrap()),
            path: tmp.path().into(),
            range,
        };
        let budget = Arc::new(tokio::sync::Semaphore::new(1));
        let permit = budget.clone().acquire_owned().await.unwrap();
        let part = write_part(source, to, permit).await.unwrap();
        assert_eq!(
            budget.available_permits(),
            1,
            "the budget is released once written"
        );
        (part, std::fs::read(tmp.path()).unwrap())
    }

    fn body(chunks: &[&'static [u8]]) -> BoxStream<'static, object_store::Result<Bytes>> {
        let chunks: Vec<_> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        futures::stream::iter(chunks).boxed()
    }

    #[tokio::test]
    async fn parts_are_written_at_their_offset_and_never_past_their_range() {
        let chunks: &[&[u8]] = &[b"abcd", b"efgh", b"ijkl"];
        // The start of a plain GET's body: read up to the part's end only.
        let (part, file) = write(Source::Prefix(body(chunks), 99), 2..8).await;
        assert!(part.whole && part.object_size == 99, "{part:?}");
        assert_eq!(&file, b"..abcdef........");
        // A body shorter than the part: what came, and the part is not whole.
        let (part, file) = write(Source::Prefix(body(chunks), 99), 2..16).await;
        assert!(!part.whole, "{part:?}");
        assert_eq!(&file, b"..abcdefghijkl..");
        // A ranged GET.
        use object_store::ObjectStoreExt;
        let store = Arc::new(object_store::memory::InMemory::new());
        let key = ObjectPath::from("ab/object");
        store
            .put(&key, b"0123456789ABCDEF".to_vec().into())
            .await
            .unwrap();
        let backend = Arc::new(super::super::backend::Cloud(store));
        let (part, file) = write(Source::Range(backend, key), 4..10).await;
        assert!(part.whole && part.object_size == 16, "{part:?}");
        assert_eq!(&file, b"....456789......");
    }
}
