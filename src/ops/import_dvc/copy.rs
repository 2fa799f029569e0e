//! Bringing an import's bytes in: each file is read once, on add's thread pool (rayon), and in
//! that one read its md5 is checked against DVC's record, its blake3 digest is computed, its
//! object is stored in mlv's cache (a pack for many small files, as `mlv add` does) and, for a
//! file from DVC's cache, its workspace copy is written. The digests go to `mlv add` through the
//! stat cache, as its own hashing would record them, so add reads nothing again.
//!
//! Nothing is trusted before its md5 matched: an object is stored, and a restored file renamed
//! into the workspace, only after the bytes it holds were checked. Restored files wait in mlv's
//! temporary directory until every file of their output has been checked, so an output that
//! fails changes nothing in the workspace.

use std::cell::RefCell;
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;
use tempfile::TempPath;

use super::dvc_md5::{DvcMd5, Md5Kind};
use super::{SkipKind, Tree};
use crate::cache::{Cache, Staged};
use crate::error::Error;
use crate::hash::{Digest, Hasher, BUF_SIZE};
use crate::pack::{PackWriter, MAX_PACKED_OBJECT};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};

/// Where one file's bytes come from.
#[derive(Debug)]
pub(super) enum Origin {
    /// The workspace file itself.
    Workspace,
    /// This object of DVC's cache.
    DvcCache(PathBuf),
}

/// One file of an output to bring in.
#[derive(Debug)]
pub(super) struct FileTask {
    /// Its work-tree path.
    pub to: RelPath,
    /// Where its bytes are.
    pub origin: Origin,
    /// DVC's md5 of it (32 lowercase hex digits, checked).
    pub md5: String,
    /// Which md5 (DVC 2.x hashed text with CRLF as LF).
    pub kind: Md5Kind,
    /// Executable, as DVC recorded it (for a restored file).
    pub exec: bool,
    /// Its size when planned.
    pub len: u64,
}

/// Why a file was not brought in.
enum Fail {
    /// Skipped with a reason; its output imports nothing.
    Skip(SkipKind, String),
    /// mlv's own cache failed: the import stops.
    Fatal(Box<Error>),
}

type Outcome = Result<Option<Done>, Fail>;

impl From<(SkipKind, String)> for Fail {
    fn from((kind, reason): (SkipKind, String)) -> Fail {
        Fail::Skip(kind, reason)
    }
}

/// A file brought in, not yet published.
struct Done {
    digest: Digest,
    /// The stat fields its digest is recorded with (a workspace file).
    stat: Option<Stat>,
    /// Its restored copy, to rename into the workspace, and that copy's metadata.
    restored: Option<(TempPath, Metadata)>,
    /// Its new cache object (not packed), to publish.
    staged: Option<Staged>,
}

/// What the import of all outputs' files found: per output, the first failure (in file order).
pub(super) struct BroughtIn {
    /// `Some((kind, reason))` for each output that imports nothing.
    pub failures: Vec<Option<(SkipKind, String)>>,
    /// The stat cache, holding every imported workspace file's blake3 digest (for `mlv add`).
    pub stat: StatCache,
}

thread_local! {
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; BUF_SIZE]);
    static SMALL: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The one read loop: feeds every byte of `input` to md5 (and blake3 when asked) and `sink`.
pub(super) fn read_hashing(
    input: &mut impl Read,
    kind: Md5Kind,
    blake3: bool,
    mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
) -> Result<(String, Option<Digest>, u64), ReadError> {
    READ_BUF.with(|cell| {
        let mut buf = cell.borrow_mut();
        let mut md5 = DvcMd5::new(kind);
        let mut b3 = blake3.then(Hasher::new);
        let mut n = 0u64;
        loop {
            let k = input.read(&mut buf).map_err(|_| ReadError::Read)?;
            if k == 0 {
                break;
            }
            md5.update(&buf[..k]);
            if let Some(h) = b3.as_mut() {
                // already one file per thread: no help from the other cores
                h.update_here(&buf[..k]);
            }
            sink(&buf[..k]).map_err(ReadError::Write)?;
            n += k as u64;
        }
        Ok((md5.finish(), b3.map(|h| h.finish()), n))
    })
}

pub(super) enum ReadError {
    Read,
    Write(std::io::Error),
}

/// The reason a file from `origin` does not match `md5`.
fn mismatch(tree: &Tree, task: &FileTask, got: &str) -> (SkipKind, String) {
    let shown = tree.display(&task.to);
    match &task.origin {
        Origin::Workspace => (
            SkipKind::Modified,
            format!("{shown}: the workspace copy differs from DVC's record (changed since `dvc commit`?); left alone"),
        ),
        Origin::DvcCache(obj) => (
            SkipKind::Mismatch,
            format!(
                "{shown}: DVC's cache object {} has md5 {got}, expected {}; imported nothing",
                crate::relpath::printable_path(obj),
                task.md5
            ),
        ),
    }
}

fn unreadable(tree: &Tree, task: &FileTask) -> (SkipKind, String) {
    let shown = tree.display(&task.to);
    match &task.origin {
        Origin::Workspace => (
            SkipKind::Modified,
            format!("{shown}: the workspace copy cannot be read"),
        ),
        Origin::DvcCache(obj) => (
            SkipKind::Mismatch,
            format!(
                "{shown}: DVC's cache object {} cannot be read",
                crate::relpath::printable_path(obj)
            ),
        ),
    }
}

fn source_path(root: &Path, task: &FileTask) -> PathBuf {
    match &task.origin {
        Origin::Workspace => task.to.to_path(root),
        Origin::DvcCache(obj) => obj.clone(),
    }
}

/// Checks every file's md5 (in parallel), changing nothing: the dry run. Returns per output the
/// first failure.
pub(super) fn check(tree: &Tree, outputs: &[&[FileTask]]) -> Vec<Option<(SkipKind, String)>> {
    let all: Vec<(usize, &FileTask)> = outputs
        .iter()
        .enumerate()
        .flat_map(|(i, files)| files.iter().map(move |f| (i, f)))
        .collect();
    let results: Vec<Option<(SkipKind, String)>> = all
        .par_iter()
        .map(|(_, task)| match File::open(source_path(&tree.root, task)) {
            Err(_) => Some(unreadable(tree, task)),
            Ok(mut f) => match read_hashing(&mut f, task.kind, false, |_| Ok(())) {
                Ok((got, _, _)) if got == task.md5 => None,
                Ok((got, _, _)) => Some(mismatch(tree, task, &got)),
                Err(_) => Some(unreadable(tree, task)),
            },
        })
        .collect();
    first_per_output(outputs.len(), &all, results)
}

fn first_per_output<T>(n: usize, all: &[(usize, &FileTask)], results: Vec<Option<T>>) -> Vec<Option<T>> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for ((i, _), r) in all.iter().zip(results) {
        if out[*i].is_none() {
            out[*i] = r;
        }
    }
    out
}

/// Brings every file of every output in (see the module documentation): objects published in
/// mlv's cache, restored files renamed into the workspace, and each imported file's digest in
/// the returned stat cache, for `mlv add` of the outputs that did not fail.
pub(super) fn bring_in(
    repo: &Repo,
    tree: &Tree,
    outputs: &[&[FileTask]],
    progress: &dyn Progress,
) -> Result<BroughtIn, Error> {
    let all: Vec<(usize, &FileTask)> = outputs
        .iter()
        .enumerate()
        .flat_map(|(i, files)| files.iter().map(move |f| (i, f)))
        .collect();
    let cache = &repo.cache;
    let small = all.iter().filter(|(_, t)| t.len <= MAX_PACKED_OBJECT).count();
    let pack = match cache.packs_for(small) {
        true => Some(Mutex::new(cache.pack_writer()?)),
        false => None,
    };
    let tmp_dir = repo.tmp_dir();
    std::fs::create_dir_all(&tmp_dir)
        .map_err(|e| crate::fs::IoError::new("cannot create directory", &tmp_dir, e))?;
    progress.start(
        "importing",
        all.len() as u64,
        all.iter().map(|(_, t)| t.len).sum(),
    );
    let results: Vec<Outcome> = all
        .par_iter()
        .map(|(_, task)| {
            let r = bring_one(cache, tree, task, pack.as_ref(), &tmp_dir);
            progress.advance(1, task.len);
            r
        })
        .collect();
    progress.finish();
    // per output: its first failure; a failure of mlv's cache stops everything
    let mut failures: Vec<Option<(SkipKind, String)>> = (0..outputs.len()).map(|_| None).collect();
    let mut done: Vec<(usize, &FileTask, Done)> = Vec::with_capacity(all.len());
    for ((i, task), r) in all.iter().zip(results) {
        match r {
            Ok(Some(d)) => done.push((*i, task, d)),
            Ok(None) => {}
            Err(Fail::Fatal(e)) => return Err(*e),
            Err(Fail::Skip(kind, reason)) => {
                failures[*i].get_or_insert((kind, reason));
            }
        }
    }
    // objects first: durable before anything refers to them
    let staged: Vec<Staged> = done.iter_mut().filter_map(|(_, _, d)| d.staged.take()).collect();
    cache.publish_staged(staged)?;
    if let Some(p) = pack {
        cache.publish_pack(p.into_inner().unwrap_or_else(|e| e.into_inner()))?;
    }
    let mut stat = StatCache::load(&repo.state_dir());
    // restored files into the workspace, each with the stat fields it has there; their
    // directories first, each made once (a failure shows in `place`)
    let parents: std::collections::BTreeSet<&Path> = done
        .iter()
        .filter(|(i, _, d)| failures[*i].is_none() && d.restored.is_some())
        .filter_map(|(_, task, _)| Path::new(task.to.as_str()).parent())
        .collect();
    for p in parents {
        let _ = std::fs::create_dir_all(tree.root.join(p));
    }
    let placed: Vec<(usize, &FileTask, Digest, Result<Stat, Fail>)> = done
        .into_par_iter()
        .filter(|(i, _, _)| failures[*i].is_none())
        .map(|(i, task, d)| {
            let stat = match d.restored {
                None => Ok(d.stat.expect("a workspace file's stat")),
                Some((tmp, meta)) => place(tree, task, tmp, &meta),
            };
            (i, task, d.digest, stat)
        })
        .collect();
    for (i, task, digest, s) in placed {
        match s {
            Ok(s) => stat.record(task.to.as_str().to_string(), s, digest),
            Err(Fail::Fatal(e)) => return Err(*e),
            Err(Fail::Skip(kind, reason)) => {
                failures[i].get_or_insert((kind, reason));
            }
        }
    }
    // merges the new records so that lookups see them (racy ones stay in memory only)
    stat.save()?;
    Ok(BroughtIn { failures, stat })
}

/// Renames a restored file into the workspace and returns the stat fields it has there.
fn place(tree: &Tree, task: &FileTask, tmp: TempPath, meta: &Metadata) -> Result<Stat, Fail> {
    let to = task.to.to_path(&tree.root);
    let cannot = |e: std::io::Error| {
        Fail::Skip(
            SkipKind::Mismatch,
            format!("{}: cannot write {}: {e}", tree.display(&task.to), to.display()),
        )
    };
    // never over a file: one that appeared since planning (absent then) is someone's
    let appeared = || {
        Fail::Skip(
            SkipKind::Modified,
            format!(
                "{}: appeared in the workspace while it was imported; left alone",
                tree.display(&task.to)
            ),
        )
    };
    // the parents were made beforehand, once each; one that went away is made again
    if let Err(e) = tmp.persist_noclobber(&to) {
        if e.error.kind() == std::io::ErrorKind::AlreadyExists {
            return Err(appeared());
        }
        let parent = to.parent().unwrap_or(&tree.root);
        std::fs::create_dir_all(parent).map_err(cannot)?;
        e.path.persist_noclobber(&to).map_err(|e| match e.error.kind() {
            std::io::ErrorKind::AlreadyExists => appeared(),
            _ => cannot(e.error),
        })?;
    }
    // the renamed file is the one written (same inode, size and mtime; the rename changed its
    // ctime): recorded as the workspace has it
    let now = std::fs::symlink_metadata(&to).map_err(cannot)?;
    let same = now.ino() == meta.ino()
        && now.len() == meta.len()
        && (now.mtime(), now.mtime_nsec()) == (meta.mtime(), meta.mtime_nsec());
    if !same {
        return Err(Fail::Skip(
            SkipKind::Modified,
            format!("{}: changed while it was imported", tree.display(&task.to)),
        ));
    }
    Ok(Stat::of(&now))
}

/// Reads one file once: md5 checked, blake3 computed, object stored, restored copy written.
fn bring_one(
    cache: &Cache,
    tree: &Tree,
    task: &FileTask,
    pack: Option<&Mutex<PackWriter>>,
    tmp_dir: &Path,
) -> Outcome {
    let src = source_path(&tree.root, task);
    match &task.origin {
        Origin::Workspace => {
            // as `mlv add` hashes: the stat fields before and after the read must agree
            for _attempt in 0..2 {
                let mut f = File::open(&src).map_err(|_| unreadable(tree, task))?;
                let before = f.metadata().map_err(|_| unreadable(tree, task))?;
                let (digest, len, staged) = store(cache, tree, task, &mut f, before.len(), pack, None)?;
                let after = f.metadata().map_err(|_| unreadable(tree, task))?;
                if Stat::of(&after) == Stat::of(&before) && len == before.len() {
                    return Ok(Some(Done {
                        digest,
                        stat: Some(Stat::of(&before)),
                        restored: None,
                        staged,
                    }));
                }
            }
            Err(Fail::Skip(
                SkipKind::Modified,
                format!("{}: changed while it was imported", tree.display(&task.to)),
            ))
        }
        Origin::DvcCache(_) => {
            use std::os::unix::fs::PermissionsExt as _;
            let mut f = File::open(&src).map_err(|_| unreadable(tree, task))?;
            let len = f.metadata().map(|m| m.len()).unwrap_or(task.len);
            // as DVC checks it out: a plain file, executable when DVC recorded `isexec` (the
            // mode given at creation, under the umask as DVC's files are: no chmod per file)
            let mode = if task.exec { 0o755 } else { 0o644 };
            let mut tmp = tempfile::Builder::new()
                .prefix(crate::fs::TEMP_PREFIX)
                .permissions(std::fs::Permissions::from_mode(mode))
                .tempfile_in(tmp_dir)
                .map_err(|e| {
                    let e = crate::fs::IoError::new("cannot create a temporary file in", tmp_dir, e);
                    Fail::Fatal(Box::new(e.into()))
                })?;
            let (digest, _, staged) = store(cache, tree, task, &mut f, len, pack, Some(tmp.as_file_mut()))?;
            let meta = tmp.as_file().metadata().map_err(|e| {
                Fail::Fatal(Box::new(
                    crate::fs::IoError::new("cannot write", tmp.path(), e).into(),
                ))
            })?;
            Ok(Some(Done {
                digest,
                stat: None,
                restored: Some((tmp.into_temp_path(), meta)),
                staged,
            }))
        }
    }
}

/// Reads `input` once: md5 checked against the task's, blake3 computed, the bytes written to
/// `copy` (if any) and, once checked, stored in mlv's cache (in `pack` when small). Returns the
/// digest, the length read and a staged object (when not packed and new).
fn store(
    cache: &Cache,
    tree: &Tree,
    task: &FileTask,
    input: &mut File,
    len: u64,
    pack: Option<&Mutex<PackWriter>>,
    mut copy: Option<&mut File>,
) -> Result<(Digest, u64, Option<Staged>), Fail> {
    let fatal = |e: crate::fs::IoError| Fail::Fatal(Box::new(e.into()));
    let read_fail = |e: ReadError| match e {
        ReadError::Read => unreadable(tree, task).into(),
        ReadError::Write(e) => Fail::Fatal(Box::new(
            crate::fs::IoError::new("cannot write", &tree.root, e).into(),
        )),
    };
    if let (Some(pack), true) = (pack, len <= MAX_PACKED_OBJECT) {
        return SMALL.with(|cell| {
            let mut bytes = cell.borrow_mut();
            bytes.clear();
            let (md5, digest, n) = read_hashing(input, task.kind, true, |b| {
                bytes.extend_from_slice(b);
                match copy.as_mut() {
                    Some(c) => c.write_all(b),
                    None => Ok(()),
                }
            })
            .map_err(read_fail)?;
            if md5 != task.md5 {
                return Err(mismatch(tree, task, &md5).into());
            }
            let digest = digest.expect("blake3 asked for");
            if !cache.contains(&digest) {
                pack.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .append(digest, &bytes)
                    .map_err(fatal)?;
            }
            Ok((digest, n, None))
        });
    }
    let mut obj = cache.temp_file().map_err(|e| Fail::Fatal(Box::new(e.into())))?;
    let (md5, digest, n) = read_hashing(input, task.kind, true, |b| {
        obj.as_file_mut().write_all(b)?;
        match copy.as_mut() {
            Some(c) => c.write_all(b),
            None => Ok(()),
        }
    })
    .map_err(read_fail)?;
    if md5 != task.md5 {
        return Err(mismatch(tree, task, &md5).into());
    }
    let digest = digest.expect("blake3 asked for");
    if cache.contains(&digest) {
        return Ok((digest, n, None));
    }
    let staged = cache
        .stage_verified(obj, digest)
        .map_err(|e| Fail::Fatal(Box::new(e.into())))?;
    Ok((digest, n, Some(staged)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_read_gives_md5_blake3_length_and_every_byte_to_the_sink() {
        let data: Vec<u8> = (0..(3 * BUF_SIZE + 17)).map(|i| (i % 251) as u8).collect();
        let mut seen = Vec::new();
        let (md5, b3, n) = match read_hashing(&mut data.as_slice(), Md5Kind::Plain, true, |b| {
            seen.extend_from_slice(b);
            Ok(())
        }) {
            Ok(r) => r,
            Err(_) => panic!("reading a slice fails"),
        };
        assert_eq!(seen, data);
        assert_eq!(n, data.len() as u64);
        use md5::{Digest as _, Md5};
        assert_eq!(md5, super::super::dvc_md5::hex(&Md5::digest(&data)));
        assert_eq!(b3, Some(Digest::of_bytes(&data)));
        let Ok((small, none, _)) = read_hashing(&mut &b"hello\n"[..], Md5Kind::Plain, false, |_| Ok(()))
        else {
            panic!("reading a slice fails")
        };
        assert_eq!(small, "b1946ac92492d2347c6235b4d2611184");
        assert_eq!(none, None);
    }

    #[test]
    fn each_output_keeps_its_first_failure_in_file_order() {
        let task = |p: &str| FileTask {
            to: RelPath::new(p).unwrap(),
            origin: Origin::Workspace,
            md5: String::new(),
            kind: Md5Kind::Plain,
            exec: false,
            len: 0,
        };
        let (a, b, c) = (task("a"), task("b"), task("c"));
        let all = [(0, &a), (1, &b), (1, &c)];
        let got = first_per_output(3, &all, vec![None, Some("b"), Some("c")]);
        assert_eq!(got, [None, Some("b"), None]);
    }
}
