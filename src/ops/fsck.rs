//! `mlv fsck`: every object the pointers need (directory manifests and the files they list) is
//! checked in the cache — present, and hashing to its name — and, with a remote, on the remote
//! (present with the right size, or re-read and re-hashed). Damaged or missing cache objects can
//! be replaced from a remote, and damaged or missing remote objects re-uploaded from the cache.
//!
//! Repairs reuse the transfer code: a download is verified before it is installed, and replaces
//! a damaged object in one atomic rename; an upload re-hashes the cache object as it reads it.

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::stream::{self, StreamExt};
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::CacheError;
use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::{Manifest, Node};
use crate::pointer::Kind;
use crate::progress::{NoProgress, Progress};
use crate::relpath::RelPath;
use crate::remote::packed::{DamageKind, Format, Item, PackedCheck};
use crate::remote::{Remote, RemoteError, Reread};
use crate::repo::Repo;

use crate::targets::{resolve_targets, Target};

/// Options of `fsck`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FsckOptions {
    /// Check the remote too.
    pub check_remote: bool,
    /// On the remote, download and re-hash every object instead of checking presence and size.
    pub read_data: bool,
    /// Replace damaged or missing objects: in the cache from the remote, and (with
    /// `check_remote`) on the remote from the cache.
    pub repair: bool,
}

/// What is wrong with an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Not there.
    Missing,
    /// Its bytes do not hash to its name.
    Corrupt,
    /// Its size is not the one the pointer or manifest records (truncated or grown).
    WrongSize,
    /// A directory manifest that hashes to its name but cannot be parsed.
    InvalidManifest,
    /// Present but cannot be read (permission denied, an I/O error): the detail has the path
    /// and the system's error.
    Unreadable,
    /// The object is intact (it hashes to its name) but the pointer or manifest records
    /// another size for it: the record is wrong, not the object (location `pointer` or
    /// `manifest`, or the remote whose intact copy showed it).
    WrongRecordedSize,
}

impl ProblemKind {
    /// The word used in messages.
    pub fn word(self) -> &'static str {
        match self {
            ProblemKind::Missing => "missing",
            ProblemKind::Corrupt => "corrupt",
            ProblemKind::WrongSize => "wrong size",
            ProblemKind::InvalidManifest => "invalid manifest",
            ProblemKind::Unreadable => "unreadable",
            ProblemKind::WrongRecordedSize => "wrong recorded size",
        }
    }
}

/// One damaged or missing object (or, on a format 2 remote, pack or index segment).
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What is damaged: `object`, or on a format 2 remote `pack` or `index_segment`.
    pub item: Item,
    /// The object, pack or segment.
    pub digest: Digest,
    /// What is wrong.
    pub kind: ProblemKind,
    /// `cache`, or the remote (redacted).
    pub location: String,
    /// Details (what the bytes hash to, the sizes).
    pub detail: String,
    /// The workspace paths whose data needs the object (for a pack: the data whose blobs it
    /// holds; for a damaged index segment none can be told).
    pub paths: Vec<String>,
    /// Whether `--repair` fixed it.
    pub repaired: bool,
    /// Why `--repair` could not fix it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair_error: Option<String>,
}

/// What `fsck` found and did.
#[derive(Debug, Serialize)]
pub struct FsckReport {
    /// Objects checked in the cache.
    pub objects: u64,
    /// Bytes re-hashed in the cache.
    pub bytes: u64,
    /// The remote checked (or repaired from), redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// Objects checked on the remote.
    pub remote_objects: u64,
    /// Whether remote objects were downloaded and re-hashed.
    pub read_data: bool,
    /// Every problem found, repaired or not.
    pub problems: Vec<Problem>,
    /// Tracked directories whose files could not be checked because their manifest could not
    /// be read from the cache or the remote.
    pub unlisted: Vec<String>,
    /// Pack files in the cache whose index is unusable (their objects count as missing),
    /// each with what is wrong.
    pub damaged_packs: Vec<String>,
    /// On a format 2 remote: what its index and packs hold (absent on format 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format2: Option<Format2Summary>,
    /// Problems repaired.
    pub repaired: u64,
    /// Whether nothing is left wrong.
    pub clean: bool,
}

/// What `fsck --remote` saw of a format 2 remote.
#[derive(Debug, Serialize)]
pub struct Format2Summary {
    /// Index segments read (each parsed and checked against its name).
    pub segments: u64,
    /// Packs the index names (each found with the size the index records).
    pub packs: u64,
    /// Blobs the index holds.
    pub blobs: u64,
    /// Packs read whole and checked (`--read-data`).
    pub packs_read: u64,
    /// Objects checked as format 1 objects (in no index: a remote upgraded from format 1).
    pub format1_objects: u64,
    /// Packs no index segment names: not a problem (an interrupted push leaves them; gc
    /// collects them).
    pub unreferenced_packs: Vec<Digest>,
}

/// The objects to check: expected size (when known) and the paths that need each.
#[derive(Default)]
struct Inventory {
    manifests: BTreeMap<Digest, Option<u64>>,
    files: BTreeMap<Digest, Option<u64>>,
    paths: HashMap<Digest, Vec<String>>,
    /// Every size recorded for a file object: (object, size, `pointer` or `manifest`, path).
    recorded: Vec<(Digest, u64, &'static str, String)>,
    /// The sizes of the cache objects found intact: the true sizes.
    verified: HashMap<Digest, u64>,
}

impl Inventory {
    fn note(&mut self, d: Digest, path: String) {
        self.paths.entry(d).or_default().push(path);
    }

    fn paths_of(&self, d: &Digest) -> Vec<String> {
        let mut v = self.paths.get(d).cloned().unwrap_or_default();
        v.sort();
        v.dedup();
        v
    }

    /// The size an object must have: its intact cache copy's, else the one recorded.
    fn size_of(&self, d: &Digest) -> Option<u64> {
        if let Some(s) = self.verified.get(d) {
            return Some(*s);
        }
        self.files
            .get(d)
            .or_else(|| self.manifests.get(d))
            .copied()
            .flatten()
    }

    /// Every object once: files first, then manifests (the order uploads follow).
    fn all(&self) -> Vec<Digest> {
        let mut v: Vec<Digest> = self.files.keys().copied().collect();
        v.extend(self.manifests.keys().filter(|d| !self.files.contains_key(d)));
        v
    }
}

/// A problem before the paths are attached.
struct Found {
    digest: Digest,
    kind: ProblemKind,
    detail: String,
}

/// Checks (and with `repair`, fixes) the objects the pointers under `paths` need.
/// `remote` is the one to check (`opts.check_remote`) or to repair from.
pub async fn fsck(
    repo: &Repo,
    remote: Option<&Remote>,
    paths: &[RelPath],
    opts: &FsckOptions,
    progress: &dyn Progress,
) -> Result<FsckReport, Error> {
    if let (true, true, Some(r)) = (opts.check_remote, opts.repair, remote) {
        super::remotes::refuse_format2(r, "fsck --remote --repair").await?;
    }
    let targets = resolve_targets(repo, paths)?;
    let mut inv = Inventory::default();
    note_pointers(repo, &targets, &mut inv);
    let mut report = FsckReport {
        objects: 0,
        bytes: 0,
        remote: remote.map(|r| r.display_name().to_string()),
        remote_objects: 0,
        read_data: opts.read_data && opts.check_remote,
        problems: Vec::new(),
        unlisted: Vec::new(),
        damaged_packs: repo
            .cache
            .packs()
            .damaged()
            .iter()
            .map(|d| d.to_string())
            .collect(),
        format2: None,
        repaired: 0,
        clean: true,
    };

    // Manifests first: their files are only known once they are read.
    let repair_from = remote.filter(|_| opts.repair);
    let manifests: Vec<(Digest, Option<u64>)> = inv.manifests.iter().map(|(d, s)| (*d, *s)).collect();
    let mut cache_problems = cache_pass(
        repo,
        repair_from,
        &manifests,
        &mut report,
        &mut inv.verified,
        progress,
    )
    .await?;
    let (loaded, invalid) = load_manifests(repo, remote, &inv, &cache_problems).await?;
    for (d, (_, size)) in &loaded {
        inv.manifests.insert(*d, Some(*size));
    }
    let mut records = note_files(repo, &targets, &loaded, &mut inv, &mut report);
    cache_problems.extend(invalid);
    let files: Vec<(Digest, Option<u64>)> = inv
        .files
        .iter()
        .filter(|(d, _)| !inv.manifests.contains_key(d))
        .map(|(d, s)| (*d, *s))
        .collect();
    cache_problems.extend(
        cache_pass(
            repo,
            repair_from,
            &files,
            &mut report,
            &mut inv.verified,
            progress,
        )
        .await?,
    );
    add_problems(&mut report, &inv, "cache", cache_problems);
    records.extend(wrong_records(&inv));
    report.problems.extend(records);

    if let (true, Some(r)) = (opts.check_remote, remote) {
        let mut bad = check_remote(r, &inv, opts.read_data, &mut report, progress).await?;
        if opts.repair {
            let damaged_here: HashSet<Digest> = report
                .problems
                .iter()
                .filter(|p| !p.repaired && p.kind != ProblemKind::WrongRecordedSize)
                .map(|p| p.digest)
                .collect();
            repair_remote(repo, r, &inv, &damaged_here, &mut bad).await?;
        }
        add_problems(&mut report, &inv, r.display_name(), bad);
    }
    report.repaired = report.problems.iter().filter(|p| p.repaired).count() as u64;
    report.clean = report.unlisted.is_empty()
        && report.damaged_packs.is_empty()
        && report.problems.iter().all(|p| p.repaired);
    Ok(report)
}

/// Checks cache objects and, given a remote, repairs the damaged or missing ones from it.
async fn cache_pass(
    repo: &Repo,
    repair_from: Option<&Remote>,
    objects: &[(Digest, Option<u64>)],
    report: &mut FsckReport,
    verified: &mut HashMap<Digest, u64>,
    progress: &dyn Progress,
) -> Result<Vec<Checked>, Error> {
    let mut bad = check_cache(repo, objects, report, verified, progress);
    if let Some(r) = repair_from {
        repair_cache(repo, r, &mut bad).await?;
    }
    Ok(bad)
}

/// A problem found, with the outcome of its repair (if one was tried).
struct Checked {
    found: Found,
    repaired: bool,
    repair_error: Option<String>,
}

impl From<Found> for Checked {
    fn from(found: Found) -> Self {
        Checked {
            found,
            repaired: false,
            repair_error: None,
        }
    }
}

fn add_problems(report: &mut FsckReport, inv: &Inventory, location: &str, found: Vec<Checked>) {
    for c in found {
        report.problems.push(Problem {
            item: Item::Object,
            digest: c.found.digest,
            kind: c.found.kind,
            location: location.to_string(),
            detail: c.found.detail,
            paths: inv.paths_of(&c.found.digest),
            repaired: c.repaired,
            repair_error: c.repair_error,
        });
    }
}

/// The pointers' own objects: file contents (with their sizes) and directory manifests.
fn note_pointers(repo: &Repo, targets: &[Target], inv: &mut Inventory) {
    for t in targets {
        let p = &t.pointer;
        let shown = repo.display(&p.data);
        match p.meta.kind {
            Kind::File => {
                inv.files.insert(p.meta.digest, Some(p.meta.size));
                inv.recorded
                    .push((p.meta.digest, p.meta.size, "pointer", shown.clone()));
            }
            Kind::Dir => {
                inv.manifests.insert(p.meta.digest, None);
            }
        }
        inv.note(p.meta.digest, shown);
    }
}

/// The files the targets' manifests list (only under a selected sub-path). Returns the
/// directory pointers whose size or file count is not their manifest's.
fn note_files(
    repo: &Repo,
    targets: &[Target],
    loaded: &HashMap<Digest, (Manifest, u64)>,
    inv: &mut Inventory,
    report: &mut FsckReport,
) -> Vec<Problem> {
    let mut wrong = Vec::new();
    for t in targets.iter().filter(|t| t.pointer.meta.kind == Kind::Dir) {
        let p = &t.pointer;
        let Some((m, _)) = loaded.get(&p.meta.digest) else {
            report.unlisted.push(repo.display(&p.data));
            continue;
        };
        let files = p.meta.files.unwrap_or(m.file_count());
        if t.sub.is_none() && (p.meta.size, files) != (m.size(), m.file_count()) {
            wrong.push(Problem {
                item: Item::Object,
                digest: p.meta.digest,
                kind: ProblemKind::WrongRecordedSize,
                location: "pointer".into(),
                detail: format!(
                    "records {} bytes in {files} files; its manifest lists {} bytes in {} files",
                    p.meta.size,
                    m.size(),
                    m.file_count()
                ),
                paths: vec![repo.display(&p.data)],
                repaired: false,
                repair_error: Some(RECORD_NOT_REPAIRED.into()),
            });
        }
        for e in super::transfer::selected(m, t.sub.as_deref()) {
            if let Node::File { digest: d, size, .. } = e.node {
                let shown = repo.display_in(&p.data, &e.path);
                inv.files.insert(d, Some(size));
                inv.recorded.push((d, size, "manifest", shown.clone()));
                inv.note(d, shown);
            }
        }
    }
    report.unlisted.sort();
    report.unlisted.dedup();
    wrong
}

/// Why a wrong recorded size is not repaired: the object is right, its record is not.
const RECORD_NOT_REPAIRED: &str =
    "the object is intact; restore the pointer from git or add the data again to record its size";

/// The sizes recorded by pointers and manifests that are not those of their intact objects.
fn wrong_records(inv: &Inventory) -> Vec<Problem> {
    let mut out: Vec<Problem> = Vec::new();
    for (d, size, location, path) in &inv.recorded {
        let Some(actual) = inv.verified.get(d).filter(|a| *a != size) else {
            continue;
        };
        match out.iter_mut().find(|p| {
            p.digest == *d && p.location == *location && p.detail.starts_with(&format!("records {size} "))
        }) {
            Some(p) => p.paths.push(path.clone()),
            None => out.push(Problem {
                item: Item::Object,
                digest: *d,
                kind: ProblemKind::WrongRecordedSize,
                location: location.to_string(),
                detail: format!("records {size} bytes; the object hashes right and has {actual}"),
                paths: vec![path.clone()],
                repaired: false,
                repair_error: Some(RECORD_NOT_REPAIRED.into()),
            }),
        }
    }
    out
}

/// Reads the manifests: from the cache when intact there, else (installing nothing) from the
/// remote, verified. Returns them with their sizes, and the ones that hash to their name but
/// cannot be parsed.
async fn load_manifests(
    repo: &Repo,
    remote: Option<&Remote>,
    inv: &Inventory,
    bad: &[Checked],
) -> Result<(HashMap<Digest, (Manifest, u64)>, Vec<Checked>), Error> {
    let unusable: HashSet<Digest> = bad
        .iter()
        .filter(|c| !c.repaired)
        .map(|c| c.found.digest)
        .collect();
    let mut out = HashMap::new();
    let mut invalid = Vec::new();
    for d in inv.manifests.keys() {
        let bytes = if !unusable.contains(d) {
            repo.cache.read_verified(d).ok()
        } else if let Some(r) = remote {
            match read_remote_manifest(r, d).await {
                Ok(b) => b,
                Err(RemoteError::Corrupt { .. } | RemoteError::Format2 { .. }) => None,
                Err(e) => return Err(e.into()),
            }
        } else {
            None
        };
        let Some(bytes) = bytes else { continue };
        match Manifest::parse(d, &bytes) {
            Ok(m) => {
                out.insert(*d, (m, bytes.len() as u64));
            }
            Err(e) => invalid.push(Checked::from(Found {
                digest: *d,
                kind: ProblemKind::InvalidManifest,
                detail: e.reason,
            })),
        }
    }
    Ok((out, invalid))
}

/// A manifest from the remote, verified: from its format 2 index if it has it there, else at
/// its format 1 key.
async fn read_remote_manifest(remote: &Remote, d: &Digest) -> Result<Option<Vec<u8>>, RemoteError> {
    if let Format::V2(_) = remote.format().await? {
        if let Some(b) = remote.read_packed_blob(d).await? {
            return Ok(Some(b));
        }
    }
    remote.read_verified(d).await
}

/// Re-hashes cache objects in parallel; returns the problems.
fn check_cache(
    repo: &Repo,
    objects: &[(Digest, Option<u64>)],
    report: &mut FsckReport,
    verified: &mut HashMap<Digest, u64>,
    progress: &dyn Progress,
) -> Vec<Checked> {
    progress.start("checking", objects.len() as u64, 0);
    let cache = &repo.cache;
    let results: Vec<(Digest, u64, Option<Found>)> = objects
        .par_iter()
        .map(|(d, size)| {
            let (bytes, f) = check_cache_object(cache, d, *size);
            progress.advance(1, bytes);
            (*d, bytes, f)
        })
        .collect();
    progress.finish();
    report.objects += objects.len() as u64;
    let mut found = Vec::new();
    for (d, bytes, f) in results {
        report.bytes += bytes;
        match f {
            Some(f) => found.push(Checked::from(f)),
            None => {
                verified.insert(d, bytes);
            }
        }
    }
    found
}

/// Checks one cache object: (bytes read, problem).
fn check_cache_object(
    cache: &crate::cache::Cache,
    d: &Digest,
    expected: Option<u64>,
) -> (u64, Option<Found>) {
    let found = |kind, detail| {
        Some(Found {
            digest: *d,
            kind,
            detail,
        })
    };
    match cache.verify(d) {
        Ok(size) => (size, None),
        Err(CacheError::Missing { .. }) => (0, found(ProblemKind::Missing, "not in the cache".into())),
        Err(CacheError::Corrupt { actual, path, .. }) => {
            let size = cache.object_len(d).unwrap_or(0);
            let packed = match path.starts_with(cache.packs().dir()) {
                true => format!(", in pack {}", path.display()),
                false => String::new(),
            };
            match expected.filter(|e| *e != size) {
                Some(e) => (
                    size,
                    found(
                        ProblemKind::WrongSize,
                        format!("{size} bytes instead of {e} (hashes to {actual}{packed})"),
                    ),
                ),
                None => (
                    size,
                    found(ProblemKind::Corrupt, format!("hashes to {actual}{packed}")),
                ),
            }
        }
        Err(CacheError::Io(e)) => {
            let why = std::error::Error::source(&e)
                .map(|s| format!(": {s}"))
                .unwrap_or_default();
            (0, found(ProblemKind::Unreadable, format!("{e}{why}")))
        }
    }
}

/// Replaces damaged or missing cache objects from the remote, `jobs` at a time; each download
/// is verified and installed over the damaged copy in one rename.
async fn repair_cache(repo: &Repo, remote: &Remote, bad: &mut [Checked]) -> Result<(), Error> {
    let todo: Vec<usize> = (0..bad.len())
        .filter(|i| {
            !matches!(
                bad[*i].found.kind,
                ProblemKind::InvalidManifest | ProblemKind::WrongRecordedSize
            )
        })
        .collect();
    let outcomes: Vec<(usize, Result<(), RemoteError>)> = stream::iter(todo)
        .map(|i| {
            let d = bad[i].found.digest;
            async move {
                let r = remote.download_replacing(&repo.cache, &[d], &NoProgress).await;
                (i, r.map(|_| ()))
            }
        })
        .buffer_unordered(remote.jobs())
        .collect()
        .await;
    for (i, r) in outcomes {
        bad[i].repair_error = object_failure(r)?;
        bad[i].repaired = bad[i].repair_error.is_none();
    }
    Ok(())
}

/// Splits a transfer's outcome: `Ok(None)` done, `Ok(Some(why))` this object cannot be repaired
/// (missing or damaged at the source), `Err` anything else (the remote is unreachable...).
fn object_failure(r: Result<(), RemoteError>) -> Result<Option<String>, Error> {
    match r {
        Ok(()) => Ok(None),
        Err(RemoteError::MissingObjects { remote, .. }) => Ok(Some(format!("remote {remote} lacks it too"))),
        Err(RemoteError::Corrupt { remote, actual, .. }) => Ok(Some(format!(
            "the copy on remote {remote} is damaged too (hashes to {actual})"
        ))),
        Err(RemoteError::Cache(e)) => Ok(Some(format!("the cache's copy cannot be used: {e}"))),
        Err(RemoteError::DamagedFor { error, .. }) => Ok(Some(format!("the remote is damaged too: {error}"))),
        Err(e) => Err(e.into()),
    }
}

/// Checks the remote's copies: presence and size, or (`read_data`) a full re-hash.
async fn check_remote(
    remote: &Remote,
    inv: &Inventory,
    read_data: bool,
    report: &mut FsckReport,
    progress: &dyn Progress,
) -> Result<Vec<Checked>, Error> {
    let all = inv.all();
    report.remote_objects = all.len() as u64;
    let found = match remote.format().await? {
        Format::V1 => check_v1(remote, inv, &all, read_data, progress).await?,
        Format::V2(_) => {
            let check = remote.check_packed(&all, read_data, progress).await?;
            let mut found = Vec::new();
            if check.may_have_v1 {
                found = check_v1(remote, inv, &check.not_indexed, read_data, progress).await?;
            } else {
                found.extend(check.not_indexed.iter().map(|d| Found {
                    digest: *d,
                    kind: ProblemKind::Missing,
                    detail: "not on the remote (in no index segment, and it holds no format 1 object)".into(),
                }));
            }
            add_packed(report, inv, remote.display_name(), check);
            found
        }
    };
    Ok(found.into_iter().map(Checked::from).collect())
}

/// Reports what the format 2 check found: damage with the paths that need it, and a summary.
fn add_packed(report: &mut FsckReport, inv: &Inventory, location: &str, check: PackedCheck) {
    for d in check.damage {
        let mut paths: Vec<String> = match d.item {
            Item::Object => inv.paths_of(&d.id),
            Item::Pack | Item::IndexSegment => d.affects.iter().flat_map(|a| inv.paths_of(a)).collect(),
        };
        paths.sort();
        paths.dedup();
        let kind = match d.kind {
            DamageKind::Missing => ProblemKind::Missing,
            DamageKind::WrongSize => ProblemKind::WrongSize,
            DamageKind::Corrupt => ProblemKind::Corrupt,
        };
        report.problems.push(Problem {
            item: d.item,
            digest: d.id,
            kind,
            location: location.to_string(),
            detail: d.detail,
            paths,
            repaired: false,
            repair_error: None,
        });
    }
    report.format2 = Some(Format2Summary {
        segments: check.segments,
        packs: check.packs,
        blobs: check.blobs,
        packs_read: check.packs_read,
        format1_objects: if check.may_have_v1 {
            check.not_indexed.len() as u64
        } else {
            0
        },
        unreferenced_packs: check.unreferenced_packs,
    });
}

/// Checks objects at their format 1 keys: presence and size, or (`read_data`) a full re-hash.
async fn check_v1(
    remote: &Remote,
    inv: &Inventory,
    all: &[Digest],
    read_data: bool,
    progress: &dyn Progress,
) -> Result<Vec<Found>, Error> {
    if all.is_empty() {
        return Ok(Vec::new());
    }
    Ok(if read_data {
        reread_all(remote, inv, all, progress).await?
    } else {
        let stats = remote.stat(all).await?;
        let mut found = Vec::new();
        let mut odd_sizes = Vec::new();
        for d in all {
            match (stats.get(d), inv.size_of(d)) {
                (None, _) => found.push(Found {
                    digest: *d,
                    kind: ProblemKind::Missing,
                    detail: "not on the remote".into(),
                }),
                (Some(o), Some(e)) if o.size != e => odd_sizes.push(*d),
                _ => {}
            }
        }
        // A size that is not the one expected is either a damaged copy or a wrong record
        // (nothing in the cache tells): the copy is re-read to tell, so that a copy that
        // hashes right is never called damaged, nor replaced by --repair.
        if !odd_sizes.is_empty() {
            found.extend(reread_all(remote, inv, &odd_sizes, progress).await?);
        }
        found.sort_by_key(|f| f.digest);
        found
    })
}

async fn reread_all(
    remote: &Remote,
    inv: &Inventory,
    all: &[Digest],
    progress: &dyn Progress,
) -> Result<Vec<Found>, Error> {
    progress.start("reading", all.len() as u64, 0);
    let results: Vec<(Digest, Result<Reread, RemoteError>)> = stream::iter(all.iter().copied())
        .map(|d| async move {
            let r = remote.reread(&d).await;
            if let Ok(Reread::Read { size, .. }) = &r {
                progress.advance(1, *size);
            }
            (d, r)
        })
        .buffer_unordered(remote.jobs())
        .collect()
        .await;
    progress.finish();
    let mut found = Vec::new();
    for (d, r) in results {
        let (kind, detail) = match r? {
            Reread::Missing => (ProblemKind::Missing, "not on the remote".to_string()),
            Reread::Read { actual, size } if actual == d => match inv.size_of(&d).filter(|e| *e != size) {
                Some(e) => (
                    ProblemKind::WrongRecordedSize,
                    format!(
                        "the copy hashes right and has {size} bytes; the pointer or manifest records {e}"
                    ),
                ),
                None => continue,
            },
            Reread::Read { actual, size } => match inv.size_of(&d).filter(|e| *e != size) {
                Some(e) => (
                    ProblemKind::WrongSize,
                    format!("{size} bytes instead of {e} (hashes to {actual})"),
                ),
                None => (ProblemKind::Corrupt, format!("hashes to {actual}")),
            },
        };
        found.push(Found {
            digest: d,
            kind,
            detail,
        });
    }
    found.sort_by_key(|f| f.digest);
    Ok(found)
}

/// Re-uploads good cache copies over damaged or missing remote objects: the damaged copy is
/// deleted, then the object is uploaded as `push` does (re-hashed on the way). Files go before
/// manifests, so a manifest on the remote still promises its files.
async fn repair_remote(
    repo: &Repo,
    remote: &Remote,
    inv: &Inventory,
    damaged_here: &HashSet<Digest>,
    bad: &mut [Checked],
) -> Result<(), Error> {
    let mut order: Vec<usize> = (0..bad.len()).collect();
    order.sort_by_key(|i| inv.manifests.contains_key(&bad[*i].found.digest));
    for i in order {
        let d = bad[i].found.digest;
        if bad[i].found.kind == ProblemKind::WrongRecordedSize {
            bad[i].repair_error = Some(RECORD_NOT_REPAIRED.into());
            continue;
        }
        if damaged_here.contains(&d) {
            bad[i].repair_error = Some("the cache has no good copy to upload".into());
            continue;
        }
        if bad[i].found.kind != ProblemKind::Missing {
            remote.delete(&d).await?;
        }
        let r = remote.upload(&repo.cache, &[d], &NoProgress).await.map(|_| ());
        bad[i].repair_error = object_failure(r)?;
        bad[i].repaired = bad[i].repair_error.is_none();
    }
    Ok(())
}
