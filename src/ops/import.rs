//! `mlv import` and `mlv update`: data from another repository (a data registry), checked out
//! here with a pointer that records where it came from (`[source]`), so it is versioned here
//! like data added here, and can later follow the source.
//!
//! Decisions (where the issue is silent, as a DVC user would expect):
//! - The objects go into the local cache, verified, through the same download path as `pull`;
//!   from then on push, pull, gc and checkout treat the pointer like any other.
//! - A path inside a tracked directory of the source becomes its own file or directory here:
//!   a directory gets its own manifest (the source's entries below the path), stored in the
//!   local cache. A file git tracks in the source is stored as an ordinary object.
//! - A relative local URL is recorded relative to the repository root (as given when mlv runs
//!   at the root), and resolved against the root by `update`, wherever it runs.
//! - `update` when the data did not change is a no-op (pointer bytes untouched, "up to date"),
//!   even if the source's commit moved: only `--rev` naming another revision than the recorded
//!   one rewrites the pointer without a data change, as that revision is what later updates
//!   follow.
//! - Importing again into the same place (same source URL and path) is an update to the
//!   revision given (none: the source's default branch); with `--force` the data is also
//!   checked out again, overwriting local changes. Another existing path is refused unless
//!   `--force`; a path git tracks is refused even then.
//! - Several updates run one after the other; the first failure stops there (the imports
//!   already updated stay updated, each complete).

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::gitutil::{add_ignore, ignore_entry, stage, tracked_by_git};
use crate::hash::Digest;
use crate::manifest::{Entry, Manifest, Part};
use crate::pointer::{Kind, Pointer, Source};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::remote::redact::redact_url;
use crate::repo::Repo;
use crate::source::{Located, Snapshot, SourceError};

/// Options of `import` and `update`.
#[derive(Debug, Default, Clone)]
pub struct ImportOptions {
    /// The source revision (a branch, tag or commit); `None`: the source's default branch for
    /// an import, the recorded revision for an update.
    pub rev: Option<String>,
    /// Replace an existing path (import only).
    pub force: bool,
    /// Objects downloaded at once.
    pub jobs: Option<usize>,
}

/// What happened to one import.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Imported now (no pointer was there).
    Imported,
    /// The pointer was rewritten: new data, or a new revision to follow.
    Updated,
    /// Nothing changed: the pointer is untouched.
    UpToDate,
}

/// One imported path.
#[derive(Debug, Serialize)]
pub struct ImportedData {
    /// The data path here, as displayed.
    pub path: String,
    /// The pointer file, as displayed.
    pub pointer: String,
    /// What happened.
    pub outcome: Outcome,
    /// File or directory.
    pub kind: Kind,
    /// The file's digest, or the directory manifest's.
    pub digest: Digest,
    /// Total bytes.
    pub size: u64,
    /// Files (directories only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
    /// Where it came from (the URL redacted).
    pub source: Source,
    /// Objects downloaded now.
    pub downloaded: u64,
    /// Bytes downloaded now.
    pub downloaded_bytes: u64,
}

/// What `import` or `update` did.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    /// Each import, in order.
    pub imports: Vec<ImportedData>,
    /// Files to stage with git (pointers and `.gitignore`s), as displayed.
    pub git_paths: Vec<String>,
    /// Whether they were staged (`core.autostage`).
    pub staged: bool,
}

/// Imports `path` of the repository at `url` into `out` (work-tree relative). `url` is
/// recorded as given (a relative local path must already be relative to the work-tree root).
pub async fn import(
    repo: &Repo,
    url: &str,
    path: &RelPath,
    out: &RelPath,
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, Error> {
    super::refuse_links_as_root(repo)?;
    let pointers = repo.pointers()?;
    let previous = pointers.iter().find(|p| &p.data == out);
    let same_import = previous
        .and_then(|p| p.meta.source.as_ref())
        .is_some_and(|s| s.url == url && s.path == path.as_str());
    check_target(repo, &pointers, out, same_import || opts.force)?;
    let want = Source {
        url: url.to_string(),
        path: path.to_string(),
        rev: opts.rev.clone(),
        commit: String::new(),
    };
    let done = import_one(
        repo,
        out,
        &want,
        previous.filter(|_| same_import),
        opts.force,
        opts.jobs,
        progress,
    )
    .await?;
    finish(repo, vec![done])
}

/// Updates the imports among `paths` (all imports when empty) to their source's newest commit
/// of the recorded revision, or to `opts.rev` (which becomes the recorded revision).
pub async fn update(
    repo: &Repo,
    paths: &[RelPath],
    opts: &ImportOptions,
    progress: &dyn Progress,
) -> Result<ImportReport, Error> {
    super::refuse_links_as_root(repo)?;
    let pointers = repo.pointers()?;
    let mut chosen: Vec<&Pointer> = Vec::new();
    if paths.is_empty() {
        chosen.extend(pointers.iter().filter(|p| p.meta.source.is_some()));
    }
    for path in paths {
        let Some(p) = pointers.iter().find(|p| &p.data == path) else {
            return Err(Refusal::NotTracked {
                path: repo.display(path),
            }
            .into());
        };
        if p.meta.source.is_none() {
            return Err(Refusal::NotImported {
                path: repo.display(path),
            }
            .into());
        }
        if !chosen.iter().any(|c| c.data == p.data) {
            chosen.push(p);
        }
    }
    let mut done = Vec::with_capacity(chosen.len());
    for p in chosen {
        let mut want = *p.meta.source.clone().expect("chosen for its source");
        if opts.rev.is_some() {
            want.rev = opts.rev.clone();
        }
        done.push(import_one(repo, &p.data, &want, Some(p), false, opts.jobs, progress).await?);
    }
    finish(repo, done)
}

/// One import whose pointer was written (or left as it was).
struct Done {
    pointer: Pointer,
    outcome: Outcome,
    downloaded: u64,
    downloaded_bytes: u64,
}

/// Stages what changed and builds the report.
fn finish(repo: &Repo, done: Vec<Done>) -> Result<ImportReport, Error> {
    let mut git_paths = Vec::new();
    for d in done.iter().filter(|d| d.outcome != Outcome::UpToDate) {
        let (ignore_file, _) = ignore_entry(&d.pointer.data).expect("checked before writing");
        git_paths.push(d.pointer.file.clone());
        git_paths.push(ignore_file);
    }
    git_paths.sort();
    git_paths.dedup();
    let staged = repo.config.core.autostage && !git_paths.is_empty();
    if staged {
        stage(&repo.git, &repo.root, &git_paths)?;
    }
    let imports = done
        .into_iter()
        .map(|d| {
            let m = &d.pointer.meta;
            let source = *m.source.clone().expect("an import records its source");
            ImportedData {
                path: repo.display(&d.pointer.data),
                pointer: repo.display(&d.pointer.file),
                outcome: d.outcome,
                kind: m.kind,
                digest: m.digest,
                size: m.size,
                files: m.files,
                source: Source {
                    url: redact_url(&source.url),
                    ..source
                },
                downloaded: d.downloaded,
                downloaded_bytes: d.downloaded_bytes,
            }
        })
        .collect();
    Ok(ImportReport {
        imports,
        git_paths: git_paths.iter().map(|p| repo.display(p)).collect(),
        staged,
    })
}

/// Refuses an import target mlv must not write; `replace` allows an existing path (not one
/// git tracks, not one overlapping other tracked data).
fn check_target(repo: &Repo, pointers: &[Pointer], out: &RelPath, replace: bool) -> Result<(), Error> {
    let shown = || repo.display(out);
    repo.refuse_nested(out)?;
    let Some((ignore_file, _)) = ignore_entry(out) else {
        return Err(Refusal::BadPath {
            path: shown().into(),
            reason: crate::error::BadPathReason::NoRoomForGitignore,
        }
        .into());
    };
    let mut dir = out.parent();
    while let Some(d) = dir {
        if std::fs::symlink_metadata(d.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Refusal::LinkInPath {
                path: shown(),
                link: repo.display(&d),
            }
            .into());
        }
        dir = d.parent();
    }
    if std::fs::symlink_metadata(ignore_file.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Refusal::LinkInPath {
            path: shown(),
            link: repo.display(&ignore_file),
        }
        .into());
    }
    let pointer_file = crate::pointer::pointer_file_for(out);
    if tracked_by_git(&repo.git, out)? {
        return Err(Refusal::TrackedByGit { path: shown() }.into());
    }
    for p in pointers {
        let overlaps = out.is_within(&p.data) || p.data.is_within(out) || p.file.is_within(out);
        if overlaps && p.data != *out {
            return Err(Refusal::Overlaps {
                path: shown(),
                other: repo.display(&p.data),
                pointer: repo.display(&p.file),
            }
            .into());
        }
    }
    let exists = |r: &RelPath| std::fs::symlink_metadata(r.to_path(&repo.root)).is_ok();
    if !replace && (exists(out) || exists(&pointer_file)) {
        return Err(Refusal::ImportTargetExists { path: shown() }.into());
    }
    Ok(())
}

/// The object an import resolves to, in the local cache once downloaded.
struct Resolved {
    kind: Kind,
    digest: Digest,
    size: u64,
    files: Option<u64>,
    exec: bool,
}

/// Resolves `want` (url, path, rev) in its source, downloads what the cache lacks, writes the
/// pointer at `out` and checks the data out. `previous` is the import's pointer there, if any
/// (an update): unchanged data (and revision) leaves it untouched, unless `force`, which
/// replaces whatever is at `out`.
async fn import_one(
    repo: &Repo,
    out: &RelPath,
    want: &Source,
    previous: Option<&Pointer>,
    force: bool,
    jobs: Option<usize>,
    progress: &dyn Progress,
) -> Result<Done, Error> {
    let clones = clone_cache(repo)?;
    let src = crate::source::open(&open_url(repo, &want.url), &clones)?;
    let snap = src.snapshot(want.rev.as_deref())?;
    let source_path = RelPath::new(&want.path).map_err(|e| Refusal::BadPath {
        path: want.path.clone().into(),
        reason: crate::error::BadPathReason::Invalid(e),
    })?;
    let located = snap.locate(&source_path)?;
    let mut fetch = Fetch::new(repo, &snap, jobs, progress);
    let resolved = resolve(repo, &snap, &source_path, located, &mut fetch).await?;
    let source = Source {
        url: want.url.clone(),
        path: want.path.clone(),
        rev: want.rev.clone(),
        commit: snap.commit.to_string(),
    };
    // (--force on the same import checks the data out again, whatever is there)
    if let Some(p) = previous.filter(|_| !force) {
        let same_data =
            p.meta.kind == resolved.kind && p.meta.digest == resolved.digest && p.meta.exec == resolved.exec;
        let same_rev = p.meta.source.as_ref().is_some_and(|s| s.rev == want.rev);
        if same_data && same_rev {
            return Ok(Done {
                pointer: p.clone(),
                outcome: Outcome::UpToDate,
                downloaded: fetch.downloaded,
                downloaded_bytes: fetch.downloaded_bytes,
            });
        }
    }
    let mut pointer = Pointer::new(
        out.clone(),
        resolved.kind,
        resolved.digest,
        resolved.size,
        resolved.files,
        resolved.exec,
    );
    pointer.meta.source = Some(Box::new(source));
    write_and_checkout(repo, &pointer, previous, force, progress)?;
    Ok(Done {
        pointer,
        outcome: if previous.is_some() {
            Outcome::Updated
        } else {
            Outcome::Imported
        },
        downloaded: fetch.downloaded,
        downloaded_bytes: fetch.downloaded_bytes,
    })
}

/// The clone cache, `.mlv/sources`, holding a `.gitignore` of `*` so git ignores it in
/// repositories whose `.mlv/.gitignore` predates it (that committed file is left alone).
fn clone_cache(repo: &Repo) -> Result<std::path::PathBuf, Error> {
    let root = crate::source::repo_cache_root(&repo.mlv_dir());
    crate::gitutil::ensure_dir(&root)?;
    let ignore = root.join(".gitignore");
    if std::fs::symlink_metadata(&ignore).is_err() {
        crate::fs::write_atomic_in(
            &ignore,
            b"# mlv: clones of source repositories\n*\n",
            &repo.tmp_dir(),
        )?;
    }
    Ok(root)
}

/// The URL to open: a relative local path is relative to the work-tree root.
fn open_url(repo: &Repo, url: &str) -> String {
    if is_relative_local(url) {
        repo.root.join(url).to_string_lossy().into_owned()
    } else {
        url.to_string()
    }
}

/// Whether `url` is a relative path on this machine (not `file://`, not a URL with a scheme,
/// not git's scp-like `host:path`).
pub fn is_relative_local(url: &str) -> bool {
    let scp_like = match (url.find(':'), url.find('/')) {
        (Some(c), Some(s)) => c < s && c > 1,
        (Some(c), None) => c > 1,
        _ => false,
    };
    !url.contains("://") && !scp_like && std::path::Path::new(url).is_relative()
}

/// `url` as recorded in a pointer: a relative local path given in `repo.cwd` becomes relative
/// to the work-tree root (unchanged when mlv runs at the root); anything else is kept as given.
pub fn recorded_url(repo: &Repo, url: &str) -> String {
    match repo.cwd.strip_prefix(&repo.root) {
        Ok(prefix) if is_relative_local(url) && !prefix.as_os_str().is_empty() => rebase(prefix, url),
        _ => url.to_string(),
    }
}

/// `url` (relative to `prefix`) relative to `prefix`'s base, normalized lexically.
fn rebase(prefix: &std::path::Path, url: &str) -> String {
    let mut out: Vec<String> = Vec::new();
    let parts = prefix
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .chain(url.split('/').map(str::to_string));
    for part in parts {
        match part.as_str() {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| l != "..") => {
                out.pop();
            }
            _ => out.push(part),
        }
    }
    if out.is_empty() {
        ".".into()
    } else {
        out.join("/")
    }
}

/// Downloads from the source's default remote into the local cache, opening the remote only
/// when the cache lacks something.
struct Fetch<'a> {
    repo: &'a Repo,
    snap: &'a Snapshot,
    jobs: Option<usize>,
    progress: &'a dyn Progress,
    remote: Option<crate::remote::Remote>,
    downloaded: u64,
    downloaded_bytes: u64,
}

impl<'a> Fetch<'a> {
    fn new(repo: &'a Repo, snap: &'a Snapshot, jobs: Option<usize>, progress: &'a dyn Progress) -> Self {
        Fetch {
            repo,
            snap,
            jobs,
            progress,
            remote: None,
            downloaded: 0,
            downloaded_bytes: 0,
        }
    }

    /// Makes the cache hold `digests` (verified on the way in).
    async fn get(&mut self, digests: &[Digest]) -> Result<(), Error> {
        let mut missing = self.repo.cache.missing(digests);
        missing.sort();
        missing.dedup();
        if missing.is_empty() {
            return Ok(());
        }
        if self.remote.is_none() {
            self.remote = Some(self.snap.remote(self.jobs)?);
        }
        let remote = self.remote.as_ref().expect("opened above");
        let report = remote
            .download(&self.repo.cache, &missing, self.progress)
            .await
            .map_err(|e| self.snap.in_remote(e.into()))?;
        self.downloaded += report.downloaded;
        self.downloaded_bytes += report.downloaded_bytes;
        Ok(())
    }
}

/// What `path` is in the source, with its objects in the local cache.
async fn resolve(
    repo: &Repo,
    snap: &Snapshot,
    path: &RelPath,
    located: Located,
    fetch: &mut Fetch<'_>,
) -> Result<Resolved, Error> {
    let not_importable = |reason: &'static str| -> Error {
        Refusal::NotImportable {
            path: path.to_string(),
            url: snap.shown_url.clone(),
            reason,
        }
        .into()
    };
    match located {
        Located::Git { path: p, .. } => {
            let bytes = snap.git_blob(&p)?;
            let size = bytes.len() as u64;
            let digest = repo.cache.insert_bytes(&bytes)?;
            Ok(Resolved {
                kind: Kind::File,
                digest,
                size,
                files: None,
                exec: false,
            })
        }
        Located::GitDir { .. } => Err(not_importable(
            "a directory git tracks, not data mlv tracks; import the files in it one by one",
        )),
        Located::Tracked { pointer, inner: None } => {
            let m = &pointer.meta;
            fetch.get(&[m.digest]).await?;
            if m.kind == Kind::Dir {
                let manifest = read_manifest(repo, &m.digest, path)?;
                let files: Vec<Digest> = manifest.entries.iter().filter_map(Entry::digest).collect();
                fetch.get(&files).await?;
            }
            Ok(Resolved {
                kind: m.kind,
                digest: m.digest,
                size: m.size,
                files: m.files,
                exec: m.exec,
            })
        }
        Located::Tracked {
            pointer,
            inner: Some(inner),
        } => {
            if pointer.meta.kind != Kind::Dir {
                return Err(SourceError::NotInSource {
                    path: path.to_string(),
                    url: snap.shown_url.clone(),
                    rev: snap.shown_rev().to_string(),
                }
                .into());
            }
            fetch.get(&[pointer.meta.digest]).await?;
            let manifest = read_manifest(repo, &pointer.meta.digest, path)?;
            match manifest.part(Some(inner.as_str())) {
                Part::Absent => Err(SourceError::NotInSource {
                    path: path.to_string(),
                    url: snap.shown_url.clone(),
                    rev: snap.shown_rev().to_string(),
                }
                .into()),
                Part::Symlink { .. } => Err(not_importable("a symbolic link inside a tracked directory")),
                Part::File { digest, size, exec } => {
                    fetch.get(&[digest]).await?;
                    Ok(Resolved {
                        kind: Kind::File,
                        digest,
                        size,
                        files: None,
                        exec,
                    })
                }
                Part::Dir(below) => {
                    let sub = Manifest::new(below);
                    let files: Vec<Digest> = sub.entries.iter().filter_map(Entry::digest).collect();
                    fetch.get(&files).await?;
                    // the files first, then the manifest that promises them
                    let digest = repo.cache.insert_written(|out| sub.write_to(out))?;
                    Ok(Resolved {
                        kind: Kind::Dir,
                        digest,
                        size: sub.size(),
                        files: Some(sub.file_count()),
                        exec: false,
                    })
                }
            }
        }
    }
}

fn read_manifest(repo: &Repo, digest: &Digest, path: &RelPath) -> Result<Manifest, Error> {
    repo.cache.read_manifest(digest)?.map_err(|mut e| {
        e.data = Some(path.to_string());
        e.into()
    })
}

/// Writes `pointer`, ignores its data in git and checks it out; when the checkout fails, the
/// previous pointer (or none) is put back, so the pointer never names data that is not there.
fn write_and_checkout(
    repo: &Repo,
    pointer: &Pointer,
    previous: Option<&Pointer>,
    force: bool,
    progress: &dyn Progress,
) -> Result<(), Error> {
    let abs_pointer = pointer.file.to_path(&repo.root);
    let old_bytes = std::fs::read(&abs_pointer).ok();
    if force && previous.is_none() {
        // --force: whatever is at the path goes (the data is in the cache, verified)
        remove_path(&pointer.data.to_path(&repo.root))?;
    }
    if let Some(parent) = pointer.data.parent() {
        crate::gitutil::ensure_dir(&parent.to_path(&repo.root))?;
    }
    pointer.save(&repo.root, &repo.tmp_dir())?;
    let (ignore_file, line) = ignore_entry(&pointer.data).expect("checked by check_target");
    add_ignore(&repo.root, &ignore_file, &line)?;
    let opts = super::checkout::CheckoutOptions { force };
    let res = super::checkout::checkout(repo, std::slice::from_ref(&pointer.data), &opts, progress);
    let err = match res {
        Ok(r) => match r.targets.into_iter().find_map(|t| t.error) {
            None => return Ok(()),
            Some(e) => e,
        },
        Err(e) => e,
    };
    match old_bytes {
        Some(bytes) => crate::fs::write_atomic_in(&abs_pointer, &bytes, &repo.tmp_dir())?,
        None => {
            let _ = std::fs::remove_file(&abs_pointer);
        }
    }
    Err(err)
}

fn remove_path(abs: &std::path::Path) -> Result<(), Error> {
    let meta = match std::fs::symlink_metadata(abs) {
        Ok(m) => m,
        Err(_) => return Ok(()),
    };
    let res = if meta.is_dir() {
        std::fs::remove_dir_all(abs)
    } else {
        std::fs::remove_file(abs)
    };
    res.map_err(|e| crate::fs::IoError::new("cannot remove", abs, e).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebased_urls() {
        let p = std::path::Path::new;
        assert_eq!(rebase(p("sub"), "../registry"), "registry");
        assert_eq!(rebase(p("a/b"), "../../../registry"), "../registry");
        assert_eq!(rebase(p("a"), "./reg/x"), "a/reg/x");
        assert_eq!(rebase(p("a"), ".."), ".");
    }

    #[test]
    fn relative_local_urls() {
        for u in ["../registry", "reg", "./a/b"] {
            assert!(is_relative_local(u), "{u}");
        }
        for u in [
            "/abs/reg",
            "file:///r",
            "https://h/r.git",
            "git@github.com:o/r.git",
            "host:r",
        ] {
            assert!(!is_relative_local(u), "{u}");
        }
    }
}
