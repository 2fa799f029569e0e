//! `mlv gc`: remove cache (and, with a remote, remote) objects that nothing in scope refers to.
//!
//! Safe by default: objects referred to by the workspace's pointers, and by the pointers
//! committed at HEAD, at every stash entry, at the tip of every ref (local and remote-tracking
//! branches, tags, others) and in every other worktree, are kept; so is every object younger
//! than the grace period, which may belong to an `add` or `push` still running in another
//! process. Stale temporary files mlv created (by name) are removed too. A kept manifest that
//! cannot be read, or a cache directory that is not mlv's alone, stops gc before it deletes.
//!
//! On a remote, a directory manifest promises its files (push skips the files of a directory
//! whose manifest is there), so the files of every kept manifest are kept — manifests missing
//! from the cache are read from the remote — and unreferenced manifests are deleted before any
//! file: an interrupted gc never leaves a manifest whose files are gone.
//!
//! A format 2 remote's packs are collected in two phases, mark then delete after the grace
//! period by the remote's clock (`remote::packed` gc); the format 1 objects an upgraded remote
//! still holds follow the rules above.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::stream::{self, StreamExt, TryStreamExt};
use serde::Serialize;

use crate::error::Error;
use crate::error::{BadPathReason, NotCacheDirReason, Refusal};
use crate::fs::{IoContext, IoError};
use crate::hash::Digest;
use crate::manifest::Manifest;
use crate::pointer::Kind;
use crate::remote::packed::{PackedGcOptions, PackedGcReport};
use crate::remote::{Remote, RemoteError, RemoteObject};
use crate::repo::Repo;
use crate::revs::{git_sources, Source};

/// Which pointers keep their objects, besides the workspace's (always kept).
pub use crate::revs::Scope;

/// Options of `gc`.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// What to keep.
    pub scope: Scope,
    /// Objects (and temp files) younger than this are kept.
    pub grace: Duration,
    /// Only report.
    pub dry_run: bool,
    /// On a format 2 remote, also repack packs mostly unused.
    pub repack: bool,
}

/// One object removed (or to remove).
#[derive(Debug, Clone, Serialize)]
pub struct GcObject {
    /// Its name.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// A stale temporary file removed (or to remove).
#[derive(Debug, Clone, Serialize)]
pub struct GcTemp {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// What `gc` did (or would do) in one store.
#[derive(Debug, Serialize, Default)]
pub struct GcReport {
    /// Objects removed (or to remove).
    pub removed: u64,
    /// Their bytes.
    pub removed_bytes: u64,
    /// Objects kept because something refers to them.
    pub kept: u64,
    /// Unreferenced objects kept because they are recent.
    pub kept_recent: u64,
    /// Stale temporary files removed (cache only).
    pub temp_files: u64,
    /// Whether nothing was deleted.
    pub dry_run: bool,
    /// The grace period, in seconds.
    pub grace_seconds: u64,
    /// The objects removed (or to remove), by digest.
    pub objects: Vec<GcObject>,
    /// The stale temporary files removed (or to remove).
    pub temp: Vec<GcTemp>,
    /// What keeps objects beyond the workspace and HEAD: per source in scope, the objects of
    /// this store it keeps that neither refers to.
    pub kept_by: Vec<KeptBy>,
}

impl GcReport {
    fn new(opts: &GcOptions) -> GcReport {
        GcReport {
            dry_run: opts.dry_run,
            grace_seconds: opts.grace.as_secs(),
            ..GcReport::default()
        }
    }

    fn remove(&mut self, digest: Digest, size: u64) {
        self.removed += 1;
        self.removed_bytes += size;
        self.objects.push(GcObject { digest, size });
    }
}

/// What `gc --remote` did (or would do) on the remote.
#[derive(Debug, Serialize)]
pub struct RemoteGcReport {
    /// The remote, redacted.
    pub remote: String,
    /// What was (or would be) removed and kept.
    #[serde(flatten)]
    pub report: GcReport,
    /// Kept directories whose manifest could be read neither from the cache nor from the
    /// remote: files only they refer to cannot be told apart from garbage.
    pub unreadable_manifests: u64,
    /// On a format 2 remote, what happened to its packs (the fields above count format 1
    /// objects, which an upgraded remote may still hold); `None` on a format 1 remote.
    pub format2: Option<PackedGcReport>,
}

/// The objects in scope, and which source (the workspace, HEAD, a ref, a stash entry, another
/// worktree) keeps which.
pub struct Referenced {
    keep: HashSet<Digest>,
    /// What the workspace and HEAD refer to.
    base: HashSet<Digest>,
    /// Every other source in scope and the digests its pointers name.
    sources: Vec<(String, Vec<Digest>)>,
    /// The files of each kept manifest that could be read.
    manifests: HashMap<Digest, Vec<Digest>>,
    /// Kept manifests the cache cannot provide.
    unread: Vec<Unread>,
    /// Refs a shared remote must not be collected without (remote-tracking branches, stash
    /// entries, other worktrees' HEADs) that the scope leaves out.
    ignored: Vec<String>,
}

/// A kept directory whose manifest the cache lacks.
struct Unread {
    digest: Digest,
    path: String,
    kept_by: String,
}

/// How many objects of one store a source of the scope keeps that the workspace and HEAD do
/// not refer to (an object kept by several sources counts for each).
#[derive(Debug, Clone, Serialize)]
pub struct KeptBy {
    /// A ref (`refs/remotes/origin/feature`), `stash@{N}`, `HEAD of worktree PATH`,
    /// `workspace of worktree PATH`, or `history` (with --all-commits: commits below the tips).
    pub source: String,
    /// Objects present in the store that only a source other than the workspace and HEAD keeps.
    pub objects: u64,
}

impl Referenced {
    fn expand<'a>(&'a self, digests: &'a [Digest]) -> impl Iterator<Item = Digest> + 'a {
        digests.iter().flat_map(move |d| {
            std::iter::once(*d).chain(self.manifests.get(d).into_iter().flatten().copied())
        })
    }

    fn add_manifest(&mut self, digest: Digest, files: Vec<Digest>) {
        self.keep.extend(files.iter().copied());
        self.manifests.insert(digest, files);
    }

    /// Per source beyond the workspace and HEAD, the objects of a store it alone keeps.
    fn kept_by(&self, present: &dyn Fn(&Digest) -> bool) -> Vec<KeptBy> {
        let mut out = Vec::new();
        for (source, digests) in &self.sources {
            // a directory the base keeps has all its files kept by the base too
            let beyond: Vec<Digest> = digests
                .iter()
                .filter(|d| !self.base.contains(d))
                .copied()
                .collect();
            let mine: HashSet<Digest> = self
                .expand(&beyond)
                .filter(|d| !self.base.contains(d) && present(d))
                .collect();
            if !mine.is_empty() {
                out.push(KeptBy {
                    source: source.clone(),
                    objects: mine.len() as u64,
                });
            }
        }
        out
    }

    /// Refuses when a kept manifest could not be read, so its files would look like garbage.
    fn refuse_unread(&self, place: &str) -> Result<(), Error> {
        match self.unread.first() {
            Some(u) => Err(Refusal::UnreadableManifest {
                path: u.path.clone(),
                digest: u.digest,
                kept_by: u.kept_by.clone(),
                place: place.to_string(),
            }
            .into()),
            None => Ok(()),
        }
    }
}

/// Works out what the pointers in scope refer to (once, for the cache and a remote).
pub fn referenced(repo: &Repo, scope: Scope) -> Result<Referenced, Error> {
    // gc deletes in the cache: refuse one that is not mlv's before anything else
    check_cache_dir(repo)?;
    let mut r = Referenced {
        keep: HashSet::new(),
        base: HashSet::new(),
        sources: Vec::new(),
        manifests: HashMap::new(),
        unread: Vec::new(),
        ignored: Vec::new(),
    };
    let mut sources = vec![Source {
        name: "the workspace".into(),
        base: true,
        pointers: repo.pointers()?,
    }];
    // also for --workspace: it notes the refs a remote gc would ignore
    sources.extend(git_sources(repo, scope, &mut r.ignored)?);
    let mut unread_seen = HashSet::new();
    for source in sources {
        let mut digests = Vec::new();
        let mut seen = HashSet::new();
        for p in &source.pointers {
            let d = p.meta.digest;
            if !seen.insert(d) {
                continue;
            }
            digests.push(d);
            if p.meta.kind != Kind::Dir || r.manifests.contains_key(&d) || unread_seen.contains(&d) {
                continue;
            }
            match crate::targets::load_manifest(repo, p) {
                Ok(m) => r.add_manifest(d, m.entries.iter().filter_map(|e| e.digest()).collect()),
                // not cached: a remote may hold it (gc --remote reads it there)
                Err(Error::Refused(Refusal::NotInCache { .. })) => {
                    unread_seen.insert(d);
                    r.unread.push(Unread {
                        digest: d,
                        path: repo.display(&p.data),
                        kept_by: source.name.clone(),
                    });
                }
                Err(e) => return Err(e),
            }
        }
        // a directory's files went into `keep` when its manifest was loaded (once)
        r.keep.extend(digests.iter().copied());
        if source.base {
            let all: Vec<Digest> = r.expand(&digests).collect();
            r.base.extend(all);
        } else {
            r.sources.push((source.name, digests));
        }
    }
    Ok(r)
}

/// Collects garbage in the cache.
pub fn gc(repo: &Repo, keep: &Referenced, opts: &GcOptions) -> Result<GcReport, Error> {
    let referenced = keep;
    let keep = &keep.keep;
    let cutoff = cutoff(opts.grace);
    if !referenced.unread.is_empty() {
        // Only when something would go: an empty or partly fetched cache loses nothing.
        let mut trial = GcReport::new(opts);
        let loose = gc_loose(repo, keep, cutoff, true, &mut trial)?;
        gc_packs(repo, keep, &loose, cutoff, true, &mut trial)?;
        if trial.removed > 0 {
            referenced.refuse_unread("from the cache")?;
        }
    }
    let mut report = GcReport::new(opts);
    let loose = gc_loose(repo, keep, cutoff, opts.dry_run, &mut report)?;
    gc_packs(repo, keep, &loose, cutoff, opts.dry_run, &mut report)?;
    report.objects.sort_by_key(|o| o.digest);
    report.kept_by = referenced.kept_by(&|d| repo.cache.contains(d));
    crate::crash_point!("gc.before_temp_clean");
    report.temp = clean_temp(repo, cutoff, opts.dry_run)?;
    report.temp_files = report.temp.len() as u64;
    Ok(report)
}

/// Removes unreferenced loose objects older than the cutoff; returns the loose objects left.
fn gc_loose(
    repo: &Repo,
    keep: &HashSet<Digest>,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<HashSet<Digest>, Error> {
    let mut left = HashSet::new();
    let root = repo.cache.root();
    let Ok(fanouts) = std::fs::read_dir(root) else {
        return Ok(left);
    };
    for fan in fanouts {
        let fan = fan.at("cannot read directory", root)?;
        let name = fan.file_name();
        if name.len() != 2 || !fan.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = fan.path();
        for obj in std::fs::read_dir(&dir).at("cannot read directory", &dir)? {
            let obj = obj.at("cannot read directory", &dir)?;
            let Some(digest) = obj.file_name().to_str().and_then(|n| n.parse::<Digest>().ok()) else {
                continue;
            };
            if keep.contains(&digest) {
                report.kept += 1;
                left.insert(digest);
                continue;
            }
            let meta = obj.metadata().at("cannot stat", &obj.path())?;
            if meta.modified().is_ok_and(|m| m > cutoff) {
                report.kept_recent += 1;
                left.insert(digest);
                continue;
            }
            report.remove(digest, meta.len());
            if !dry_run {
                crate::fs::remove_file_if_exists(&obj.path())?;
                crate::crash_point!("gc.after_remove");
            }
        }
        if !dry_run {
            let _ = std::fs::remove_dir(&dir); // only if now empty
        }
    }
    Ok(left)
}

/// Packs older than the cutoff lose their unreferenced objects, and copies of objects kept
/// elsewhere (loose, or in a pack seen before) once that other copy is checked intact: a pack
/// with nothing left is deleted, one with some is rewritten with only those (each verified as
/// it is copied), published before the old one goes. A pack within the grace period is kept
/// whole.
fn gc_packs(
    repo: &Repo,
    keep: &HashSet<Digest>,
    loose: &HashSet<Digest>,
    cutoff: SystemTime,
    dry_run: bool,
    report: &mut GcReport,
) -> Result<(), Error> {
    let cache = &repo.cache;
    let mut stored: HashSet<Digest> = HashSet::new();
    for pack in cache.packs().packs() {
        let (mut needed, mut copies, mut dead) = (Vec::new(), Vec::new(), Vec::new());
        for (d, _, len) in pack.entries() {
            if !keep.contains(&d) {
                dead.push((d, len));
            } else if stored.contains(&d) || loose.contains(&d) {
                copies.push(d);
            } else {
                needed.push(d);
            }
        }
        let meta = std::fs::metadata(pack.path()).at("cannot stat", pack.path())?;
        let recent = meta.modified().is_ok_and(|m| m > cutoff);
        if (dead.is_empty() && copies.is_empty()) || recent {
            report.kept += needed.len() as u64;
            report.kept_recent += dead.len() as u64;
            stored.extend(needed);
            continue;
        }
        needed.extend(
            copies
                .into_iter()
                .filter(|d| !cache.intact_elsewhere(d, pack.path())),
        );
        report.kept += needed.len() as u64;
        if dead.is_empty() && needed.len() == pack.entries().count() {
            // Every object stays (its copies elsewhere are not intact, or are gone: a gc killed
            // between publishing a rewritten pack and removing its source leaves such twins).
            // A rewrite would be this very pack under this very name: publishing would find it
            // there, and removing "the old one" would remove the only copy.
            stored.extend(needed);
            continue;
        }
        for (d, len) in dead {
            report.remove(d, len);
        }
        if dry_run {
            stored.extend(needed);
            continue;
        }
        if !needed.is_empty() {
            let mut rewritten = cache.pack_writer()?;
            for d in &needed {
                rewritten.append(*d, &cache.read_packed(&pack, d)?)?;
            }
            cache.publish_pack(rewritten)?;
        }
        stored.extend(needed);
        // the rewritten pack published, its source not yet removed: both hold the kept objects
        crate::crash_point!("gc.before_remove");
        cache.packs().remove(pack.path())?;
        crate::crash_point!("gc.after_remove");
    }
    Ok(())
}

fn cutoff(grace: Duration) -> SystemTime {
    SystemTime::now()
        .checked_sub(grace)
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Collects garbage on a remote: lists it, keeps what is in scope (reading kept manifests the
/// cache lacks from the remote) and what is younger than the grace period by its last-modified
/// time, and deletes the rest, manifests first.
pub async fn gc_remote(
    remote: &Remote,
    keep: &mut Referenced,
    opts: &GcOptions,
) -> Result<RemoteGcReport, Error> {
    let format2 = matches!(remote.format().await?, crate::remote::packed::Format::V2(_));
    if let Some(first) = keep.ignored.first() {
        return Err(Refusal::ScopeIgnoresRefs {
            first: first.clone(),
            more: keep.ignored.len() - 1,
        }
        .into());
    }
    let mut still = Vec::new();
    for u in std::mem::take(&mut keep.unread) {
        let read = match format2 {
            true => match remote.read_packed_blob(&u.digest).await {
                Ok(None) => remote.read_verified(&u.digest).await,
                other => other,
            },
            false => remote.read_verified(&u.digest).await,
        };
        let why = match read {
            Ok(Some(bytes)) => match Manifest::parse(&u.digest, &bytes) {
                Ok(m) => {
                    keep.add_manifest(u.digest, m.entries.iter().filter_map(|e| e.digest()).collect());
                    continue;
                }
                Err(_) => "is not a valid manifest on",
            },
            Ok(None) => "is missing from",
            Err(RemoteError::Corrupt { .. } | RemoteError::Format2 { .. }) => "is corrupt on",
            Err(e) => return Err(e.into()),
        };
        still.push((u, why));
    }
    if let Some((u, why)) = still.into_iter().next() {
        keep.unread = vec![u];
        keep.refuse_unread(&format!(
            "(not in the cache, and it {why} {})",
            remote.display_name()
        ))?;
    }
    let unreadable = 0;
    // Format 2 first: packs in two phases (a format 1 remote has none); then the format 1
    // objects an upgraded remote may still hold, by the format 1 rules.
    let packed = match format2 {
        true => {
            let o = PackedGcOptions {
                grace: opts.grace,
                dry_run: opts.dry_run,
                repack: opts.repack,
            };
            Some(remote.gc_packed(&keep.keep, o).await?)
        }
        false => None,
    };
    let cutoff = cutoff(opts.grace);
    let mut report = GcReport::new(opts);
    let mut listed: Vec<(Digest, RemoteObject)> = remote.list_objects().await?.into_iter().collect();
    listed.sort_by_key(|(d, _)| *d);
    let listed_set: HashSet<Digest> = listed.iter().map(|(d, _)| *d).collect();
    let mut doomed = Vec::new();
    for (d, o) in listed {
        if keep.keep.contains(&d) {
            report.kept += 1;
        } else if o.modified > cutoff {
            report.kept_recent += 1;
        } else {
            report.remove(d, o.size);
            doomed.push((d, o.size));
        }
    }
    report.kept_by = keep.kept_by(&|d| listed_set.contains(d));
    if !opts.dry_run {
        delete_manifests_first(remote, doomed).await?;
    }
    Ok(RemoteGcReport {
        remote: remote.display_name().to_string(),
        report,
        unreadable_manifests: unreadable,
        format2: packed,
    })
}

/// The bytes every manifest starts with.
const MANIFEST_START: &[u8] = b"{\"version\":1,\"entries\":[";

/// Deletes objects, `jobs` at a time: first those that are directory manifests (told by their
/// first bytes), then the rest.
async fn delete_manifests_first(remote: &Remote, doomed: Vec<(Digest, u64)>) -> Result<(), Error> {
    let jobs = remote.jobs();
    let classified: Vec<(Digest, bool)> = stream::iter(doomed)
        .map(|(d, size)| async move {
            let start = remote.read_start(&d, size, MANIFEST_START.len() as u64).await?;
            Ok::<_, RemoteError>((d, start == MANIFEST_START))
        })
        .buffer_unordered(jobs)
        .try_collect()
        .await?;
    for manifests in [true, false] {
        let batch = classified
            .iter()
            .filter(|(_, m)| *m == manifests)
            .map(|(d, _)| *d);
        stream::iter(batch)
            .map(|d| async move { remote.delete(&d).await })
            .buffer_unordered(jobs)
            .try_collect::<Vec<()>>()
            .await?;
    }
    Ok(())
}

/// Removes mlv's temporary files (by name, see [`crate::fs::is_temp_name`]) older than the
/// cutoff, left by interrupted commands, from `.mlv/tmp` and the cache's `tmp/`; returns them.
fn clean_temp(repo: &Repo, cutoff: SystemTime, dry_run: bool) -> Result<Vec<GcTemp>, IoError> {
    let mut out = Vec::new();
    // `.mlv/tmp` is mlv's alone: files older versions named differently go too.
    let mut dirs = vec![(repo.tmp_dir(), true)];
    if repo.config.cache.dir.is_some() {
        dirs.push((repo.cache.root().join("tmp"), false));
    }
    for (dir, legacy) in dirs {
        let found = crate::fs::temp_files_in(&dir, legacy, cutoff);
        out.extend(found.into_iter().map(|(path, size)| GcTemp { path, size }));
    }
    if !dry_run {
        for t in &out {
            crate::fs::remove_file_if_exists(&t.path)?;
        }
    }
    Ok(out)
}

/// Refuses a cache directory that is not mlv's alone: gc deletes there what it does not need.
/// It must not be the work tree or a directory above it, and may hold at its top level only
/// object directories (two hex digits), `packs/`, `tmp/` (not a link) and `lost+found`. So
/// must `.mlv/tmp` be a directory, not a link.
pub fn check_cache_dir(repo: &Repo) -> Result<(), Error> {
    let refuse = |dir: &Path, reason: NotCacheDirReason| -> Result<(), Error> {
        Err(Refusal::NotCacheDir {
            dir: dir.to_path_buf(),
            reason,
        }
        .into())
    };
    let scratch = repo.tmp_dir();
    if std::fs::symlink_metadata(&scratch).is_ok_and(|m| !m.is_dir()) {
        return Err(Refusal::BadPath {
            path: scratch,
            reason: BadPathReason::ScratchNotDir,
        }
        .into());
    }
    let root = repo.cache.root();
    let Ok(canonical) = root.canonicalize() else {
        return Ok(()); // not created yet
    };
    if repo.root.starts_with(&canonical) {
        return refuse(root, NotCacheDirReason::HoldsWorkTree);
    }
    let entries = std::fs::read_dir(root).at("cannot read directory", root)?;
    for e in entries {
        let e = e.at("cannot read directory", root)?;
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        let object_dir = name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit());
        let known = object_dir || name == "tmp" || name == crate::pack::PACK_DIR || name == "lost+found";
        if !(known && is_dir) {
            return refuse(root, NotCacheDirReason::Foreign(name));
        }
    }
    Ok(())
}
