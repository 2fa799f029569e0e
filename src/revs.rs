//! Which commits a scope names (HEAD, branch and tag tips, stash entries, other worktrees,
//! every commit reachable from them, given revisions), and the pointers committed in them:
//! what `gc` keeps and what `push`, `fetch` and `status --remote` cover beyond the workspace.

use std::collections::{HashMap, HashSet};

use crate::error::Error;
use crate::hash::Digest;
use crate::history::{head_commit, pointers_in_tree, resolve_commit};
use crate::pointer::{Pointer, POINTER_SUFFIX};
use crate::relpath::RelPath;
use crate::repo::{git_err, Repo};

/// Which commits count, besides the workspace (which always does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope {
    /// The commit HEAD points to, and the HEAD and workspace of every other worktree of the
    /// repository (`git worktree`).
    pub head: bool,
    /// The tip of every branch: local (`refs/heads`) and remote-tracking (`refs/remotes`).
    pub branches: bool,
    /// Every tag.
    pub tags: bool,
    /// Every stash entry (`stash@{N}`: its work tree, index and untracked files).
    pub stash: bool,
    /// The tip of every other ref (`refs/notes`, `refs/pull/...`, `refs/original`, ...).
    pub other_refs: bool,
    /// Every commit reachable from any ref, stash entry or worktree HEAD.
    pub all_commits: bool,
}

impl Scope {
    /// Only the workspace's pointers.
    pub const WORKSPACE: Scope = Scope {
        head: false,
        branches: false,
        tags: false,
        stash: false,
        other_refs: false,
        all_commits: false,
    };
    /// gc's default: the workspace, HEAD (of every worktree), every stash entry and the tip of
    /// every ref (local and remote-tracking branches, tags, any other).
    pub const REFS: Scope = Scope {
        head: true,
        branches: true,
        tags: true,
        stash: true,
        other_refs: true,
        all_commits: false,
    };
}

/// The history a transfer covers besides the workspace: a scope (`-a`, `-T`, `-A`) and
/// revisions given by name (`--rev`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// The refs (or every commit) in scope.
    pub scope: Scope,
    /// Git revisions (branch, tag, sha, `HEAD~3`, ...), each naming one commit.
    pub revs: Vec<String>,
}

impl History {
    /// The workspace only (what a transfer covers without history options).
    pub fn none() -> History {
        History::default()
    }

    /// Whether no commit is in scope.
    pub fn is_empty(&self) -> bool {
        self.scope == Scope::WORKSPACE && self.revs.is_empty()
    }
}

/// A source of pointers: the workspace, a commit's tree, a stash entry, another worktree.
pub struct Source {
    /// What it is, for messages (`HEAD`, a ref's name, `stash@{0}`, `history`, ...).
    pub name: String,
    /// The workspace or HEAD: what every scope but `--workspace` keeps.
    pub base: bool,
    /// Its pointers.
    pub pointers: Vec<Pointer>,
}

/// Named commits: a ref, a stash entry (with its index and untracked files), a revision.
struct Tip {
    name: String,
    base: bool,
    commits: Vec<git2::Oid>,
}

/// The sources in scope besides this workspace (gc's view: other worktrees' workspaces
/// included); notes in `ignored` the refs a shared remote needs that the scope leaves out.
/// The pointers of each distinct tree are read once.
pub fn git_sources(repo: &Repo, scope: Scope, ignored: &mut Vec<String>) -> Result<Vec<Source>, Error> {
    let git = &repo.git;
    let mut out = Vec::new();
    let tips = tips(repo, scope, &[], ignored, Some(&mut out))?;
    let mut by_tree: HashMap<git2::Oid, Vec<Pointer>> = HashMap::new();
    for Tip { name, base, commits } in tips {
        let mut pointers = Vec::new();
        let mut trees: Vec<git2::Oid> = commits
            .iter()
            .filter_map(|c| git.find_commit(*c).ok().map(|c| c.tree_id()))
            .collect();
        trees.sort();
        trees.dedup();
        for t in trees {
            let found = match by_tree.entry(t) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let tree = git.find_tree(t).map_err(git_err("reading a tree"))?;
                    e.insert(pointers_in_tree(git, &tree)?)
                }
            };
            pointers.extend(found.iter().cloned());
        }
        out.push(Source { name, base, pointers });
    }
    Ok(out)
}

/// A pointer committed in history, with the first commit in scope that holds it.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The pointer.
    pub pointer: Pointer,
    /// A commit whose tree holds it.
    pub commit: git2::Oid,
}

impl Committed {
    /// The commit, abbreviated as in messages (`1a2b3c4`).
    pub fn short(&self) -> String {
        short(self.commit)
    }
}

/// A commit id abbreviated to 7 hex digits.
pub fn short(commit: git2::Oid) -> String {
    commit.to_string()[..7].to_string()
}

/// What a history scope covers: its commits (full ids, in the order they were visited) and
/// the distinct pointers committed in them.
#[derive(Debug, Default)]
pub struct HistoryPointers {
    /// Every commit in scope.
    pub commits: Vec<git2::Oid>,
    /// Each distinct pointer (data path and digest) once, with the first commit holding it.
    pub pointers: Vec<Committed>,
}

/// The commits a history scope names (tips first, then the rest of history with
/// `all_commits`) and the pointers committed in them, each distinct tree read once and each
/// distinct pointer kept once. A revision that does not resolve is refused, naming it.
pub fn committed(repo: &Repo, history: &History) -> Result<HistoryPointers, Error> {
    let git = &repo.git;
    let mut revs = Vec::new();
    for rev in &history.revs {
        revs.push((rev.clone(), resolve_commit(git, rev)?.id()));
    }
    let mut out = HistoryPointers::default();
    if history.is_empty() {
        return Ok(out);
    }
    let tips = tips(repo, history.scope, &revs, &mut Vec::new(), None)?;
    let mut seen_commits = HashSet::new();
    let mut walked = Walked::default();
    for c in tips.iter().flat_map(|t| &t.commits) {
        if !seen_commits.insert(*c) {
            continue;
        }
        out.commits.push(*c);
        let commit = git.find_commit(*c).map_err(git_err("reading a commit"))?;
        let tree = commit.tree().map_err(git_err("reading a tree"))?;
        for pointer in walked.new_pointers(git, &tree)? {
            out.pointers.push(Committed { pointer, commit: *c });
        }
    }
    Ok(out)
}

/// What the trees walked so far held: a tree or pointer file seen at a path is not read again
/// (hundreds of commits that change one file share every other tree and pointer).
#[derive(Default)]
struct Walked {
    /// Trees by path (`""` for the root, else `dir/`) and id.
    trees: HashSet<(String, git2::Oid)>,
    /// Pointer files by path and blob id.
    files: HashSet<(String, git2::Oid)>,
    /// Pointers by data path and digest.
    pointers: HashSet<(RelPath, Digest)>,
}

impl Walked {
    /// The pointers in `tree` not seen before, sorted by data path.
    fn new_pointers(&mut self, git: &git2::Repository, tree: &git2::Tree<'_>) -> Result<Vec<Pointer>, Error> {
        if !self.trees.insert((String::new(), tree.id())) {
            return Ok(Vec::new());
        }
        let mut found = Vec::new();
        let (trees, files) = (&mut self.trees, &mut self.files);
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            let Ok(name) = entry.name() else {
                return git2::TreeWalkResult::Skip;
            };
            match entry.kind() {
                Some(git2::ObjectType::Tree) if !trees.insert((format!("{dir}{name}/"), entry.id())) => {
                    git2::TreeWalkResult::Skip
                }
                Some(git2::ObjectType::Blob)
                    if name.ends_with(POINTER_SUFFIX)
                        && name.len() > POINTER_SUFFIX.len()
                        && files.insert((format!("{dir}{name}"), entry.id())) =>
                {
                    found.push((format!("{dir}{name}"), entry.id()));
                    git2::TreeWalkResult::Ok
                }
                _ => git2::TreeWalkResult::Ok,
            }
        })
        .map_err(git_err("reading a tree"))?;
        let mut out = Vec::new();
        for (path, oid) in found {
            let Ok(file) = RelPath::new(&path) else { continue };
            let blob = git.find_blob(oid).map_err(git_err("reading a blob"))?;
            let p = Pointer::parse(&file, std::path::Path::new(&path), blob.content())?;
            if self.pointers.insert((p.data.clone(), p.meta.digest)) {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.data.cmp(&b.data));
        Ok(out)
    }
}

/// The commits in scope, by name, with `revs` (already resolved) after the refs and before
/// the rest of history. With `workspaces`, other worktrees' workspaces are added to it.
fn tips(
    repo: &Repo,
    scope: Scope,
    revs: &[(String, git2::Oid)],
    ignored: &mut Vec<String>,
    mut workspaces: Option<&mut Vec<Source>>,
) -> Result<Vec<Tip>, Error> {
    let git = &repo.git;
    let take = |wanted: bool| wanted || scope.all_commits;
    let mut tips: Vec<Tip> = Vec::new();
    let tip = |name: String, base: bool, commits: Vec<git2::Oid>| Tip { name, base, commits };
    if let Some(c) = head_commit(git) {
        if take(scope.head) {
            tips.push(tip("HEAD".into(), true, vec![c.id()]));
        }
    }
    for (dir, head) in other_worktrees(repo) {
        let shown = dir.display().to_string();
        if !take(scope.head) {
            ignored.push(format!("the worktree {shown}"));
            continue;
        }
        if let Some(c) = head {
            tips.push(tip(format!("HEAD of worktree {shown}"), false, vec![c]));
        }
        let Some(out) = workspaces.as_deref_mut() else {
            continue;
        };
        if let Ok(other) = Repo::open(&dir) {
            out.push(Source {
                name: format!("workspace of worktree {shown}"),
                base: false,
                pointers: other.pointers()?,
            });
        }
    }
    for r in git.references().map_err(git_err("listing references"))?.flatten() {
        if r.kind() == Some(git2::ReferenceType::Symbolic) {
            continue; // its target is listed too
        }
        let name = String::from_utf8_lossy(r.name_bytes()).into_owned();
        if name == STASH_REF {
            continue; // every entry below, not only the top
        }
        let (wanted, shared) = if r.is_branch() {
            (scope.branches, false)
        } else if r.is_remote() {
            (scope.branches, true)
        } else if r.is_tag() {
            (scope.tags, false)
        } else {
            (scope.other_refs, false)
        };
        let Ok(c) = r.peel_to_commit() else { continue };
        if take(wanted) {
            tips.push(tip(name, false, vec![c.id()]));
        } else if shared {
            ignored.push(name);
        }
    }
    if let Ok(log) = git.reflog(STASH_REF) {
        for (i, e) in log.iter().enumerate() {
            let name = format!("stash@{{{i}}}");
            if !take(scope.stash) {
                ignored.push(name);
                continue;
            }
            // the work tree, and the index and untracked files (its other parents)
            let Ok(c) = git.find_commit(e.id_new()) else {
                continue;
            };
            let mut commits = vec![c.id()];
            commits.extend(c.parent_ids().skip(1));
            tips.push(tip(name, false, commits));
        }
    }
    for (rev, c) in revs {
        tips.push(tip(rev.clone(), false, vec![*c]));
    }
    let mut history = Vec::new();
    if scope.all_commits {
        let mut walk = git.revwalk().map_err(git_err("walking history"))?;
        let mut tip_set = HashSet::new();
        for t in &tips {
            for c in &t.commits {
                walk.push(*c).map_err(git_err("walking history"))?;
                tip_set.insert(*c);
            }
        }
        history = walk
            .filter_map(Result::ok)
            .filter(|c| !tip_set.contains(c))
            .collect();
    }
    if !history.is_empty() {
        tips.push(tip("history".into(), false, history));
    }
    Ok(tips)
}

/// The ref whose reflog holds the stash entries.
pub const STASH_REF: &str = "refs/stash";

/// Every other worktree of the repository (the main one when this is a linked one, and every
/// linked one whose directory still exists): its directory and the commit its HEAD points to.
pub fn other_worktrees(repo: &Repo) -> Vec<(std::path::PathBuf, Option<git2::Oid>)> {
    let git = &repo.git;
    let mut out = Vec::new();
    let mut add = |r: &git2::Repository| {
        let Some(dir) = r.workdir().and_then(|d| d.canonicalize().ok()) else {
            return;
        };
        if dir != repo.root {
            out.push((dir, head_commit(r).map(|c| c.id())));
        }
    };
    if git.is_worktree() {
        if let Ok(main) = git2::Repository::open(git.commondir()) {
            add(&main);
        }
    }
    let Ok(names) = git.worktrees() else { return out };
    for name in names.iter().flatten().flatten() {
        let Ok(wt) = git.find_worktree(name) else { continue };
        if wt.validate().is_err() {
            continue; // its directory is gone (`git worktree prune` material)
        }
        if let Ok(r) = git2::Repository::open_from_worktree(&wt) {
            add(&r);
        }
    }
    out
}
