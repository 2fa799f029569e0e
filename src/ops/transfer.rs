//! `mlv push`, `mlv fetch` (and with checkout, `mlv pull`), `mlv status --remote`: which
//! objects the selected pointers need, and moving them between the cache and a remote.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::{Error, Refusal};
use crate::hash::Digest;
use crate::manifest::Manifest;
use crate::pointer::Kind;
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::remote::{DownloadReport, Remote, RemoteError, UploadReport};
use crate::repo::Repo;

use crate::revs::History;
use crate::targets::{select, Target};

/// The objects some targets need.
#[derive(Debug, Default)]
pub struct Needed {
    /// Directory manifests.
    pub manifests: Vec<Digest>,
    /// File contents.
    pub files: Vec<Digest>,
}

/// Works out what targets need, reading each directory manifest from the cache (and
/// verifying it) at most once.
struct Planner<'a> {
    repo: &'a Repo,
    loaded: HashMap<Digest, Manifest>,
    /// Manifests read from the cache (a unit test checks each is read once).
    #[cfg_attr(not(test), allow(dead_code))]
    reads: usize,
}

impl<'a> Planner<'a> {
    fn new(repo: &'a Repo) -> Self {
        Planner {
            repo,
            loaded: HashMap::new(),
            reads: 0,
        }
    }

    /// Each target's needs. Manifests that are not cached are listed in `manifests` but their
    /// files cannot be (the caller fetches them first).
    fn each(&mut self, targets: &[Target]) -> Result<Vec<Needed>, Error> {
        targets.iter().map(|t| self.one(t)).collect()
    }

    fn one(&mut self, t: &Target) -> Result<Needed, Error> {
        let p = &t.pointer;
        let mut n = Needed::default();
        if p.meta.kind == Kind::File {
            n.files.push(p.meta.digest);
            return Ok(n);
        }
        n.manifests.push(p.meta.digest);
        if let Some(manifest) = self.manifest(p)? {
            n.files
                .extend(selected(manifest, t.sub.as_deref()).filter_map(|e| e.digest()));
        }
        Ok(n)
    }

    /// A directory's manifest, if the cache has it.
    fn manifest(&mut self, p: &crate::pointer::Pointer) -> Result<Option<&Manifest>, Error> {
        if !self.repo.cache.contains(&p.meta.digest) {
            return Ok(None);
        }
        Ok(Some(match self.loaded.entry(p.meta.digest) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                self.reads += 1;
                v.insert(crate::targets::load_manifest(self.repo, p)?)
            }
        }))
    }

    /// The data paths (as displayed) of the targets that need any of `digests`: the pointer's
    /// path for its own object, the file's path inside a directory for a file's content.
    /// Sorted, without duplicates. Only for messages: the paths are never kept per object.
    fn paths_needing(&mut self, targets: &[Target], digests: &[Digest]) -> Vec<String> {
        let wanted: std::collections::HashSet<&Digest> = digests.iter().collect();
        let mut v = Vec::new();
        for t in targets {
            let p = &t.pointer;
            if wanted.contains(&p.meta.digest) {
                v.push(t.shown(self.repo));
            }
            if p.meta.kind != Kind::Dir {
                continue;
            }
            let repo = self.repo;
            if let Ok(Some(m)) = self.manifest(p) {
                v.extend(
                    selected(m, t.sub.as_deref())
                        .filter(|e| e.digest().is_some_and(|d| wanted.contains(&d)))
                        .map(|e| t.shown_in(repo, &e.path)),
                );
            }
        }
        v.sort();
        v.dedup();
        v
    }
}

/// Everything several parts need, each object once.
fn union<'n>(parts: impl IntoIterator<Item = &'n Needed>) -> Needed {
    let mut n = Needed::default();
    for part in parts {
        n.manifests.extend(&part.manifests);
        n.files.extend(&part.files);
    }
    n.manifests.sort();
    n.manifests.dedup();
    n.files.sort();
    n.files.dedup();
    n
}

/// The manifests the targets name (none is read).
fn manifests_of(targets: &[Target]) -> Vec<Digest> {
    let mut v: Vec<Digest> = targets
        .iter()
        .filter(|t| t.pointer.meta.kind == Kind::Dir)
        .map(|t| t.pointer.meta.digest)
        .collect();
    v.sort();
    v.dedup();
    v
}

pub(crate) fn selected<'a>(
    m: &'a Manifest,
    sub: Option<&'a str>,
) -> impl Iterator<Item = &'a crate::manifest::Entry> {
    m.entries.iter().filter(move |e| match sub {
        None => true,
        Some(s) => e.path == s || (e.path.starts_with(s) && e.path.as_bytes().get(s.len()) == Some(&b'/')),
    })
}

/// What `push` did.
#[derive(Debug, Serialize)]
pub struct PushReport {
    /// The remote, redacted.
    pub remote: String,
    /// Objects the targets need.
    pub objects: u64,
    /// Uploaded now, and bytes.
    pub uploaded: u64,
    /// Bytes uploaded.
    pub uploaded_bytes: u64,
    /// Already on the remote.
    pub already_present: u64,
    /// Directories pushed only in part: their manifest was not pushed, because the remote
    /// does not hold all their files yet.
    pub partial_manifests: u64,
    /// With a history scope: every commit whose pointers were included (full ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
}

/// Uploads what the remote lacks of the targets' objects (the workspace's, and with a history
/// scope those of every commit in it): file contents first, manifests last, so a manifest on
/// the remote implies its files are there.
pub async fn push(
    repo: &Repo,
    remote: &Remote,
    paths: &[RelPath],
    history: &History,
    progress: &dyn Progress,
) -> Result<PushReport, Error> {
    let selection = select(repo, paths, history)?;
    let targets = selection.targets;
    let mut planner = Planner::new(repo);
    let each = planner.each(&targets)?;
    let n = union(&each);
    let all: Vec<Digest> = n.manifests.iter().chain(&n.files).copied().collect();
    let mut absent = repo.cache.missing(&all);
    if !history.is_empty() && !absent.is_empty() {
        // history's old versions are often gone from a cache (a fresh clone, a gc) but
        // already on the remote: only what neither holds stops the push
        absent = remote.missing(&absent).await?;
    }
    if !absent.is_empty() {
        let p = planner.paths_needing(&targets, &absent);
        return Err(Refusal::IncompleteCache {
            count: p.len(),
            examples: p.into_iter().take(5).collect(),
        }
        .into());
    }
    let mut report = PushReport {
        remote: remote.display_name().to_string(),
        objects: (n.manifests.len() + n.files.len()) as u64,
        uploaded: 0,
        uploaded_bytes: 0,
        already_present: 0,
        partial_manifests: 0,
        commits: selection.commits,
    };
    // A manifest on the remote promises all its files (files go up first, and a partial push
    // holds the manifest back), so directories whose manifest is there are not checked file by
    // file: a second push of 20,000 files costs one request.
    let absent_manifests = remote.missing(&n.manifests).await?;
    let pending = targets.iter().zip(&each).filter(|(t, _)| {
        t.pointer.meta.kind == Kind::File || absent_manifests.contains(&t.pointer.meta.digest)
    });
    let files = union(pending.map(|(_, n)| n)).files;
    report.already_present += (n.files.len() - files.len()) as u64;
    upload_missing(remote, repo, &files, progress, &mut report).await?;
    // A manifest on the remote promises all its files: after a partial push (a path inside a
    // tracked directory), push the manifest only if the remote now has every file it lists.
    let mut manifests = Vec::new();
    for t in &targets {
        if t.pointer.meta.kind != Kind::Dir || manifests.contains(&t.pointer.meta.digest) {
            continue;
        }
        if t.sub.is_some() {
            let whole = planner.one(&Target {
                pointer: t.pointer.clone(),
                sub: None,
                at: None,
            })?;
            if !remote.missing(&whole.files).await?.is_empty() {
                report.partial_manifests += 1;
                continue;
            }
        }
        manifests.push(t.pointer.meta.digest);
    }
    crate::crash_point!("push.before_manifests");
    upload_missing(remote, repo, &manifests, progress, &mut report).await?;
    Ok(report)
}

/// Uploads what the remote lacks of `digests`.
async fn upload_missing(
    remote: &Remote,
    repo: &Repo,
    digests: &[Digest],
    progress: &dyn Progress,
    report: &mut PushReport,
) -> Result<(), Error> {
    let missing = remote.missing(digests).await?;
    report.already_present += (digests.len() - missing.len()) as u64;
    let up: UploadReport = remote.upload(&repo.cache, &missing, progress).await?;
    report.uploaded += up.uploaded;
    report.uploaded_bytes += up.uploaded_bytes;
    report.already_present += up.already_present;
    Ok(())
}

/// What `fetch` did.
#[derive(Debug, Serialize, Default)]
pub struct FetchReport {
    /// The remote, redacted.
    pub remote: String,
    /// Objects the targets need.
    pub objects: u64,
    /// Downloaded now.
    pub downloaded: u64,
    /// Bytes downloaded.
    pub downloaded_bytes: u64,
    /// Already in the cache.
    pub already_present: u64,
    /// With a history scope: every commit whose pointers were included (full ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
}

/// Downloads into the cache what the targets need and the cache lacks (manifests first, then
/// the files they list — only those under a selected sub-path). Every object is verified
/// before it is installed. With a history scope, the objects of every commit in it too.
pub async fn fetch(
    repo: &Repo,
    remote: &Remote,
    paths: &[RelPath],
    history: &History,
    progress: &dyn Progress,
) -> Result<FetchReport, Error> {
    let selection = select(repo, paths, history)?;
    let targets = selection.targets;
    let mut report = FetchReport {
        remote: remote.display_name().to_string(),
        commits: selection.commits,
        ..FetchReport::default()
    };
    let manifests = repo.cache.missing(&manifests_of(&targets));
    add_down(
        &mut report,
        download(remote, repo, &manifests, &targets, progress).await?,
    );
    crate::crash_point!("fetch.before_files");
    // The manifests are not kept while the files download (a million entries take ~150 MB).
    let n = union(&Planner::new(repo).each(&targets)?);
    let files = repo.cache.missing(&n.files);
    // A large file's previous version in the workspace lends the chunks it shares with the
    // new one (format 2 remotes; each chunk is verified, and so is the rebuilt file).
    let reuse: Vec<(Digest, std::path::PathBuf)> = targets
        .iter()
        .filter(|t| t.at.is_none() && t.pointer.meta.kind == Kind::File)
        .map(|t| (t.pointer.meta.digest, t.pointer.data.to_path(&repo.root)))
        .filter(|(_, p)| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
        .collect();
    add_down(
        &mut report,
        download_reusing(remote, repo, &files, &reuse, &targets, progress).await?,
    );
    report.objects = (n.manifests.len() + n.files.len()) as u64;
    report.already_present = report.objects - report.downloaded;
    Ok(report)
}

fn add_down(report: &mut FetchReport, d: DownloadReport) {
    report.downloaded += d.downloaded;
    report.downloaded_bytes += d.downloaded_bytes;
}

async fn download(
    remote: &Remote,
    repo: &Repo,
    digests: &[Digest],
    targets: &[Target],
    progress: &dyn Progress,
) -> Result<DownloadReport, Error> {
    download_reusing(remote, repo, digests, &[], targets, progress).await
}

async fn download_reusing(
    remote: &Remote,
    repo: &Repo,
    digests: &[Digest],
    reuse: &[(Digest, std::path::PathBuf)],
    targets: &[Target],
    progress: &dyn Progress,
) -> Result<DownloadReport, Error> {
    if digests.is_empty() {
        return Ok(DownloadReport::default());
    }
    remote
        .download_reusing(&repo.cache, digests, reuse, progress)
        .await
        .map_err(|e| missing_as_paths(e, repo, targets))
}

/// Names the paths that need objects a remote lacks.
fn missing_as_paths(e: RemoteError, repo: &Repo, targets: &[Target]) -> Error {
    match e {
        RemoteError::MissingObjects { remote, digests } => {
            let p = Planner::new(repo).paths_needing(targets, &digests);
            Refusal::MissingOnRemote {
                remote,
                objects: digests.len(),
                examples: p.into_iter().take(5).collect(),
            }
            .into()
        }
        RemoteError::DamagedFor { objects, error } => {
            let p = Planner::new(repo).paths_needing(targets, &objects);
            Refusal::DamagedOnRemote {
                error,
                examples: p.into_iter().take(5).collect(),
            }
            .into()
        }
        other => other.into(),
    }
}

/// One pointer's objects that a remote lacks.
#[derive(Debug, Serialize)]
pub struct RemoteGap {
    /// The data path, as displayed.
    pub path: String,
    /// Objects needed and absent from the remote.
    pub missing: u64,
    /// Paths of files whose content the remote lacks (directories: inside them).
    pub missing_paths: Vec<String>,
}

/// What `status --remote` found.
#[derive(Debug, Serialize)]
pub struct RemoteStatus {
    /// The remote, redacted.
    pub remote: String,
    /// Pointers with something missing on the remote (from history: `PATH (at COMMIT)`).
    pub not_pushed: Vec<RemoteGap>,
    /// Whether the remote has everything the pointers need.
    pub in_sync: bool,
    /// With a history scope: every commit whose pointers were included (full ids).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub commits: Vec<String>,
}

/// Which of the targets' objects the remote lacks (the workspace's, and with a history scope
/// those of every commit in it).
pub async fn remote_status(
    repo: &Repo,
    remote: &Remote,
    paths: &[RelPath],
    history: &History,
) -> Result<RemoteStatus, Error> {
    let selection = select(repo, paths, history)?;
    let targets = selection.targets;
    // Manifests the cache lacks are read from the remote (verified), so the files they list
    // are checked too; a manifest the remote lacks is reported below.
    let absent = repo.cache.missing(&manifests_of(&targets));
    match remote
        .download(&repo.cache, &absent, &crate::progress::NoProgress)
        .await
    {
        Ok(_) | Err(RemoteError::MissingObjects { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let mut planner = Planner::new(repo);
    let each = planner.each(&targets)?;
    let n = union(&each);
    let all: Vec<Digest> = n.manifests.iter().chain(&n.files).copied().collect();
    let missing: std::collections::HashSet<Digest> = remote.missing(&all).await?.into_iter().collect();
    let mut not_pushed = Vec::new();
    for (t, own) in targets.iter().zip(&each) {
        let gone: Vec<Digest> = own
            .manifests
            .iter()
            .chain(&own.files)
            .filter(|d| missing.contains(d))
            .copied()
            .collect();
        if !gone.is_empty() {
            not_pushed.push(RemoteGap {
                path: t.shown(repo),
                missing: gone.len() as u64,
                missing_paths: planner.paths_needing(std::slice::from_ref(t), &gone),
            });
        }
    }
    Ok(RemoteStatus {
        remote: remote.display_name().to_string(),
        in_sync: not_pushed.is_empty(),
        not_pushed,
        commits: selection.commits,
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::Entry;
    use crate::pointer::Pointer;
    use crate::revs::Scope;

    /// A repository whose tracked directory `data` (one manifest, in the cache) is committed
    /// unchanged in `commits` commits that each change only a file git tracks; its pointer is
    /// then removed from the workspace, so only history refers to it. Returns the commits.
    fn one_manifest_in(commits: usize) -> (tempfile::TempDir, Repo, Pointer, Vec<git2::Oid>) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let git = git2::Repository::init(&root).unwrap();
        for d in [".mlv/cache", ".mlv/tmp"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        let repo = Repo::open(&root).unwrap();
        let m = Manifest::new(vec![Entry::file("a".into(), Digest::of_bytes(b"a"), 1, false)]);
        let digest = repo.cache.insert_bytes(&m.to_bytes()).unwrap();
        let data = RelPath::new("data").unwrap();
        let pointer = Pointer::new(data, Kind::Dir, digest, 1, Some(1), false);
        pointer.save(&root, &repo.tmp_dir()).unwrap();
        let sig = git2::Signature::new("t", "t@example.com", &git2::Time::new(0, 0)).unwrap();
        let mut made: Vec<git2::Oid> = Vec::new();
        for i in 0..commits {
            std::fs::write(root.join("notes.txt"), format!("{i}")).unwrap();
            let mut index = git.index().unwrap();
            index.add_path(Path::new("notes.txt")).unwrap();
            index.add_path(Path::new("data.mlv")).unwrap();
            let tree = git.find_tree(index.write_tree().unwrap()).unwrap();
            let parent = made.last().map(|p| git.find_commit(*p).unwrap());
            let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
            made.push(
                git.commit(Some("HEAD"), &sig, &sig, "c", &tree, &parents)
                    .unwrap(),
            );
        }
        std::fs::remove_file(root.join("data.mlv")).unwrap();
        (tmp, repo, pointer, made)
    }

    fn all_commits() -> History {
        History {
            scope: Scope {
                all_commits: true,
                ..Scope::WORKSPACE
            },
            revs: Vec::new(),
        }
    }

    #[test]
    fn a_pointer_committed_in_fifty_commits_is_one_target_named_by_the_newest() {
        let (_tmp, repo, pointer, commits) = one_manifest_in(50);
        let s = select(&repo, &[], &all_commits()).unwrap();
        assert_eq!(s.commits.len(), 50);
        assert_eq!(s.commits[0], commits[49].to_string(), "HEAD first");
        assert_eq!(s.targets.len(), 1);
        let short = &commits[49].to_string()[..7];
        assert_eq!(s.targets[0].at.as_deref(), Some(short));
        assert_eq!(s.targets[0].pointer.meta.digest, pointer.meta.digest);
        assert_eq!(s.targets[0].shown(&repo), format!("data (at {short})"));
        assert_eq!(s.targets[0].shown_in(&repo, "a"), format!("data/a (at {short})"));
        // without a history scope: the workspace only, which tracks nothing now
        let none = select(&repo, &[], &History::none()).unwrap();
        assert!(none.targets.is_empty() && none.commits.is_empty());
        // a given revision: that commit only
        let one = History {
            revs: vec!["HEAD~3".into()],
            ..History::none()
        };
        let s = select(&repo, &[], &one).unwrap();
        assert_eq!(s.commits, [commits[46].to_string()]);
        assert_eq!(s.targets[0].at.as_deref(), Some(&commits[46].to_string()[..7]));
    }

    #[test]
    fn the_planner_reads_a_manifest_once_however_many_targets_share_it() {
        let (_tmp, repo, pointer, _) = one_manifest_in(1);
        let targets: Vec<Target> = (0..50)
            .map(|i| Target {
                pointer: pointer.clone(),
                sub: (i % 2 == 0).then(|| "a".to_string()),
                at: Some(format!("{i:07}")),
            })
            .collect();
        let mut planner = Planner::new(&repo);
        let each = planner.each(&targets).unwrap();
        assert!(each.iter().all(|n| n.files == [Digest::of_bytes(b"a")]));
        let paths = planner.paths_needing(&targets, &[Digest::of_bytes(b"a")]);
        assert_eq!(paths.len(), 50);
        assert_eq!(planner.reads, 1);
    }

    #[test]
    fn a_revision_that_does_not_resolve_is_refused_naming_it() {
        let (_tmp, repo, _, _) = one_manifest_in(1);
        let bad = History {
            revs: vec!["HEAD".into(), "no-such-rev".into()],
            ..History::none()
        };
        match select(&repo, &[], &bad) {
            Err(Error::Lineage(crate::lineage::LineageError::UnknownRevision { rev })) => {
                assert_eq!(rev, "no-such-rev")
            }
            other => panic!("{:?}", other.map(|s| s.commits)),
        }
    }
}
