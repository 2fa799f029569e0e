//! Pointers versus workspace versus cache: what is up to date, modified, missing or not
//! restorable, as a serializable report.

use std::collections::HashMap;

use serde::Serialize;

use crate::error::Error;
use crate::hash::Digest;
use crate::manifest::{Entry, Manifest};
use crate::pointer::{Kind, Pointer};
use crate::progress::Progress;
use crate::relpath::RelPath;
use crate::repo::Repo;
use crate::state::{Stat, StatCache};
use crate::workspace::{data_meta, file_digest, record_fresh, workspace_entries, HashMode};

/// How the workspace compares with a pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// The workspace holds exactly the pointer's data.
    UpToDate,
    /// The workspace differs from the pointer.
    Modified,
    /// The data is absent from the workspace (the cache holds what `checkout` needs).
    Missing,
    /// Data absent from the workspace is not in the cache either: all of it, or (for a
    /// directory, listed in `not_pulled`) some of its files, and nothing else differs. It was
    /// never fetched (a partial or no `mlv pull`): `mlv pull` brings it.
    NotPulled,
}

/// Paths inside a tracked directory that differ from its manifest.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct Changes {
    /// In the workspace, not in the manifest.
    pub added: Vec<String>,
    /// In both, with different content, type or executable bit.
    pub modified: Vec<String>,
    /// In the manifest, not in the workspace, with its content in the cache.
    pub deleted: Vec<String>,
    /// In the manifest, neither in the workspace nor in the cache: not pulled.
    pub not_pulled: Vec<String>,
}

impl Changes {
    /// Whether nothing changed (files not pulled aside).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }

    fn retain_under(&mut self, sub: &str) {
        let keep =
            |p: &String| p == sub || (p.starts_with(sub) && p.as_bytes().get(sub.len()) == Some(&b'/'));
        self.added.retain(keep);
        self.modified.retain(keep);
        self.deleted.retain(keep);
        self.not_pulled.retain(keep);
    }

    /// Moves deleted paths whose content the cache lacks to `not_pulled`.
    fn split_not_pulled(&mut self, expected: &[Entry], repo: &Repo) {
        let by_path: HashMap<&str, &Entry> = expected.iter().map(|e| (e.path.as_str(), e)).collect();
        let digests: Vec<Digest> = self
            .deleted
            .iter()
            .filter_map(|p| by_path.get(p.as_str()).and_then(|e| e.digest()))
            .collect();
        let absent: std::collections::HashSet<Digest> = repo.cache.missing(&digests).into_iter().collect();
        if absent.is_empty() {
            return;
        }
        let (gone, kept): (Vec<String>, Vec<String>) =
            std::mem::take(&mut self.deleted).into_iter().partition(|p| {
                by_path
                    .get(p.as_str())
                    .and_then(|e| e.digest())
                    .is_some_and(|d| absent.contains(&d))
            });
        self.deleted = kept;
        self.not_pulled = gone;
    }
}

/// The status of one pointer.
#[derive(Debug, Serialize)]
pub struct PointerStatus {
    /// The data path, as displayed.
    pub path: String,
    /// The data path, relative to the work-tree root (not serialized).
    #[serde(skip)]
    pub data: RelPath,
    /// The pointer file, as displayed.
    pub pointer: String,
    /// File or directory.
    pub kind: Kind,
    /// Workspace versus pointer.
    pub state: State,
    /// Whether the cache holds everything needed to restore the pointer's data.
    pub in_cache: bool,
    /// Objects needed for that and absent from the cache (when known).
    pub missing_objects: u64,
    /// Changes inside a directory (empty for files).
    #[serde(flatten)]
    pub changes: Changes,
    /// Sizes recorded (by the pointer, or by the manifest for a file in a directory) that are
    /// not their content's, each as `PATH: recorded N bytes, content has M`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub wrong_sizes: Vec<String>,
    /// Where imported data came from (`mlv import`), its URL redacted; absent (and not
    /// serialized) for data added here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<crate::pointer::Source>,
}

impl PointerStatus {
    /// Whether the data is in the workspace at least in part (a directory only partly
    /// pulled is; data not pulled at all or missing is not).
    pub fn present(&self) -> bool {
        match self.state {
            State::UpToDate | State::Modified => true,
            State::Missing => false,
            State::NotPulled => !self.changes.not_pulled.is_empty(),
        }
    }

    /// Objects absent from the cache besides those of files not pulled.
    pub fn missing_besides_not_pulled(&self) -> u64 {
        self.missing_objects
            .saturating_sub(self.changes.not_pulled.len() as u64)
    }
}

/// What `status` found.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    /// One entry per pointer.
    pub pointers: Vec<PointerStatus>,
    /// Whether every pointer is up to date and restorable.
    pub clean: bool,
}

/// Compares every selected pointer with the workspace and the cache.
pub fn status(repo: &Repo, paths: &[RelPath], progress: &dyn Progress) -> Result<StatusReport, Error> {
    let targets = crate::targets::resolve_targets(repo, paths)?;
    let mut stat = StatCache::load(&repo.state_dir());
    let mut pointers = Vec::with_capacity(targets.len());
    for t in &targets {
        let mut st = pointer_status(repo, &t.pointer, &mut stat, progress)?;
        if let Some(sub) = &t.sub {
            let present = st.present();
            let other_missing = st.missing_besides_not_pulled();
            st.changes.retain_under(sub);
            if present {
                // files not pulled outside the part asked about do not count against it
                st.missing_objects = other_missing + st.changes.not_pulled.len() as u64;
                st.in_cache = st.missing_objects == 0;
            }
            if matches!(st.state, State::Modified | State::NotPulled) && present {
                st.state = match (st.changes.is_empty(), st.changes.not_pulled.is_empty()) {
                    (true, true) => State::UpToDate,
                    (true, false) => State::NotPulled,
                    (false, _) => State::Modified,
                };
            }
        }
        pointers.push(st);
    }
    // Status refreshes the stat cache like `git status` refreshes the index; failing to save
    // it only costs time later.
    let _ = stat.save();
    let clean = pointers
        .iter()
        .all(|p| p.state == State::UpToDate && p.in_cache && p.wrong_sizes.is_empty());
    Ok(StatusReport { pointers, clean })
}

fn pointer_status(
    repo: &Repo,
    pointer: &Pointer,
    stat: &mut StatCache,
    progress: &dyn Progress,
) -> Result<PointerStatus, Error> {
    let abs = pointer.data.to_path(&repo.root);
    let meta = data_meta(&abs, repo.cache.root()).ok();
    let mut changes = Changes::default();
    let mut needed: Vec<Digest> = Vec::new();
    let mut sizes = WrongSizes::new(repo, pointer);
    let state = match (pointer.meta.kind, meta) {
        (_, None) => {
            needed = all_objects(repo, pointer, &mut sizes);
            State::Missing
        }
        (Kind::File, Some(m)) if m.is_file() => {
            let (d, size, fresh) = file_digest(
                &abs,
                pointer.data.as_str(),
                Stat::of(&m),
                stat,
                HashMode::HashOnly,
                progress,
            )?;
            record_fresh(stat, fresh.into_iter().collect());
            needed.push(pointer.meta.digest);
            match d == pointer.meta.digest {
                true => sizes.file(&pointer.data, pointer.meta.size, size),
                false => sizes.object(&pointer.data, pointer.meta.digest, pointer.meta.size),
            }
            if d == pointer.meta.digest && crate::fs::is_executable(&m) == pointer.meta.exec {
                State::UpToDate
            } else {
                State::Modified
            }
        }
        (Kind::Dir, Some(m)) if m.is_dir() => {
            let ws = Manifest::new(workspace_entries(repo, &pointer.data, stat, progress)?);
            needed.push(pointer.meta.digest);
            if ws.digest() == pointer.meta.digest {
                // the workspace's entries are the manifest's: no need to read it from the cache
                needed.extend(ws.entries.iter().filter_map(Entry::digest));
                sizes.total(&ws);
                State::UpToDate
            } else {
                if let Ok(manifest) = crate::targets::load_manifest(repo, pointer) {
                    changes = diff_entries(&manifest.entries, &ws.entries);
                    needed.extend(needed_for(&manifest.entries, &changes));
                    sizes.total(&manifest);
                    sizes.entries(&manifest.entries, &ws.entries);
                    changes.split_not_pulled(&manifest.entries, repo);
                }
                if changes.is_empty() && !changes.not_pulled.is_empty() {
                    State::NotPulled
                } else {
                    State::Modified
                }
            }
        }
        (_, Some(_)) => {
            needed = all_objects(repo, pointer, &mut sizes);
            State::Modified
        }
    };
    let missing_objects = repo.cache.missing(&needed).len() as u64;
    let state = if state == State::Missing && missing_objects > 0 {
        State::NotPulled
    } else {
        state
    };
    Ok(PointerStatus {
        path: repo.display(&pointer.data),
        data: pointer.data.clone(),
        pointer: repo.display(&pointer.file),
        kind: pointer.meta.kind,
        state,
        in_cache: missing_objects == 0,
        missing_objects,
        changes,
        wrong_sizes: sizes.found,
        source: pointer.meta.source.as_deref().map(|s| crate::pointer::Source {
            url: crate::remote::redact::redact_url(&s.url),
            ..s.clone()
        }),
    })
}

/// Sizes recorded for a pointer's data that are not its content's.
struct WrongSizes<'a> {
    repo: &'a Repo,
    pointer: &'a Pointer,
    found: Vec<String>,
}

impl<'a> WrongSizes<'a> {
    fn new(repo: &'a Repo, pointer: &'a Pointer) -> Self {
        WrongSizes {
            repo,
            pointer,
            found: Vec::new(),
        }
    }

    /// A file whose content is known to have `actual` bytes, recorded with `recorded`.
    fn file(&mut self, path: &RelPath, recorded: u64, actual: u64) {
        if recorded != actual {
            let shown = self.repo.display(path);
            self.found.push(format!(
                "{shown}: recorded {recorded} bytes, content has {actual}"
            ));
        }
    }

    /// A file whose object may be in the cache. An object of another length is re-hashed: a
    /// damaged one says nothing about the record (fsck reports it).
    fn object(&mut self, path: &RelPath, digest: Digest, recorded: u64) {
        if self
            .repo
            .cache
            .object_len(&digest)
            .is_ok_and(|len| len != recorded)
        {
            if let Ok(actual) = self.repo.cache.verify(&digest) {
                self.file(path, recorded, actual);
            }
        }
    }

    /// A directory pointer's size and file count against its manifest's.
    fn total(&mut self, m: &Manifest) {
        let meta = &self.pointer.meta;
        if meta.files.is_some_and(|f| f != m.file_count()) {
            let shown = self.repo.display(&self.pointer.data);
            let (recorded, actual) = (meta.files.unwrap_or(0), m.file_count());
            self.found.push(format!(
                "{shown}: recorded {recorded} files, content has {actual}"
            ));
        }
        self.file(&self.pointer.data, meta.size, m.size());
    }

    /// Manifest entries whose content the workspace holds, but with another size.
    fn entries(&mut self, expected: &[Entry], actual: &[Entry]) {
        let by_path: HashMap<&str, &Entry> = actual.iter().map(|e| (e.path.as_str(), e)).collect();
        for e in expected {
            if let Some(a) = by_path.get(e.path.as_str()).filter(|a| a.same_content(e)) {
                // a manifest's paths are valid below its directory (checked when parsed)
                if let Ok(path) = self.pointer.data.join(&e.path) {
                    self.file(&path, e.size(), a.size());
                }
            }
        }
    }
}

/// Every object a pointer needs (for a directory: the manifest and, if it is cached, its
/// files), noting the sizes recorded wrongly that the cache shows.
fn all_objects(repo: &Repo, pointer: &Pointer, sizes: &mut WrongSizes<'_>) -> Vec<Digest> {
    let mut out = vec![pointer.meta.digest];
    match pointer.meta.kind {
        Kind::Dir => {
            if let Ok(m) = crate::targets::load_manifest(repo, pointer) {
                sizes.total(&m);
                out.extend(m.entries.iter().filter_map(Entry::digest));
            }
        }
        Kind::File => sizes.object(&pointer.data, pointer.meta.digest, pointer.meta.size),
    }
    out
}

fn needed_for(expected: &[Entry], changes: &Changes) -> Vec<Digest> {
    let by_path: HashMap<&str, &Entry> = expected.iter().map(|e| (e.path.as_str(), e)).collect();
    changes
        .modified
        .iter()
        .chain(&changes.deleted)
        .chain(&changes.not_pulled)
        .filter_map(|p| by_path.get(p.as_str()).and_then(|e| e.digest()))
        .collect()
}

/// Compares sorted manifest entries (`expected`) with sorted workspace entries (`actual`).
pub fn diff_entries(expected: &[Entry], actual: &[Entry]) -> Changes {
    let mut c = Changes::default();
    let (mut i, mut j) = (0, 0);
    while i < expected.len() || j < actual.len() {
        match (expected.get(i), actual.get(j)) {
            (Some(e), Some(a)) if e.path == a.path => {
                if !e.same_content(a) {
                    c.modified.push(e.path.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(e), Some(a)) if e.path < a.path => {
                c.deleted.push(e.path.clone());
                i += 1;
            }
            (Some(_), Some(a)) | (None, Some(a)) => {
                c.added.push(a.path.clone());
                j += 1;
            }
            (Some(e), None) => {
                c.deleted.push(e.path.clone());
                i += 1;
            }
            (None, None) => break,
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_of_sorted_entries() {
        let d1 = Digest::of_bytes(b"1");
        let d2 = Digest::of_bytes(b"2");
        let exp = vec![
            Entry::file("a".into(), d1, 1, false),
            Entry::file("b".into(), d1, 1, false),
            Entry::file("c".into(), d1, 1, false),
        ];
        let act = vec![
            Entry::file("b".into(), d2, 1, false),
            Entry::file("c".into(), d1, 1, true),
            Entry::file("d".into(), d1, 1, false),
        ];
        let c = diff_entries(&exp, &act);
        assert_eq!(c.added, ["d"]);
        assert_eq!(c.modified, ["b", "c"]);
        assert_eq!(c.deleted, ["a"]);
        assert!(diff_entries(&exp, &exp).is_empty());
    }
}
