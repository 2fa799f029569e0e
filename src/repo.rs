//! The repository: the git work tree, its `.mlv/` directory, configuration and cache.

use std::path::{Path, PathBuf};

use crate::cache::Cache;
use crate::config::{self, Config, ConfigError};
use crate::fs::{IoContext, IoError};
use crate::kind::{ErrorKind, GitError};
use crate::pointer::{Pointer, PointerError, POINTER_SUFFIX};
use crate::relpath::{RelPath, RelPathError};

/// The name of mlv's directory at the work-tree root.
pub const MLV_DIR: &str = ".mlv";

/// Errors finding or opening a repository.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// Not inside a git work tree.
    #[error("{path} is not inside a git work tree")]
    NotGit {
        /// Where the search started.
        path: PathBuf,
    },
    /// A bare repository has no work tree.
    #[error("{path} is a bare git repository; mlv needs a work tree")]
    Bare {
        /// The repository.
        path: PathBuf,
    },
    /// The work tree has no `.mlv/`.
    #[error("{root} is not an mlv repository (no .mlv directory)")]
    NotInitialized {
        /// The work-tree root.
        root: PathBuf,
    },
    /// A path given by the user is not acceptable.
    #[error("{}: {reason}", crate::relpath::printable_path(.path))]
    BadPath {
        /// The path as given.
        path: PathBuf,
        /// Why.
        reason: RelPathError,
    },
    /// A path inside a git submodule or nested repository: its pointer would be committed
    /// there, its object cached here, and nothing here would ever reference it.
    #[error("{path}: inside {nested}, a git submodule or nested repository")]
    InNestedRepo {
        /// The path as given, as displayed.
        path: String,
        /// The submodule's (or nested repository's) directory, as displayed.
        nested: String,
    },
    /// A git operation failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// `cache.dir` names the work tree or a directory above it: objects would land among the
    /// user's files, and gc would delete what it does not know.
    #[error("{dir} cannot be the cache directory: it is the work tree or a directory above it")]
    CacheDir {
        /// The configured cache directory.
        dir: PathBuf,
    },
    /// Configuration could not be loaded.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A pointer file is invalid.
    #[error(transparent)]
    Pointer(#[from] PointerError),
    /// A file-system operation failed.
    #[error(transparent)]
    Io(#[from] IoError),
}

impl RepoError {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RepoError::NotGit { .. }
            | RepoError::Bare { .. }
            | RepoError::NotInitialized { .. }
            | RepoError::CacheDir { .. } => ErrorKind::Environment,
            RepoError::BadPath { .. } | RepoError::InNestedRepo { .. } => ErrorKind::Refused,
            RepoError::Git(e) => e.kind(),
            RepoError::Config(e) => e.kind(),
            RepoError::Pointer(e) => e.kind(),
            RepoError::Io(e) => e.kind(),
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            RepoError::NotGit { .. } => Some("run `git init` first, or use -C DIR".into()),
            RepoError::NotInitialized { .. } => Some("run `mlv init` in the repository".into()),
            RepoError::CacheDir { .. } => Some(crate::kind::CACHE_DIR_HINT.into()),
            RepoError::InNestedRepo { nested, .. } => Some(format!(
                "run mlv inside that repository instead: cd {nested} && mlv init (once), then the command there"
            )),
            RepoError::Config(e) => e.hint(),
            RepoError::Pointer(e) => e.hint(),
            RepoError::Io(e) => e.hint(),
            RepoError::Bare { .. } | RepoError::BadPath { .. } | RepoError::Git(_) => None,
        }
    }
}

/// Wraps a git2 error with what was being done.
pub fn git_err(action: &'static str) -> impl FnOnce(git2::Error) -> RepoError {
    move |e| GitError::while_doing(action)(e).into()
}

/// An opened mlv repository.
pub struct Repo {
    /// The work-tree root (canonical).
    pub root: PathBuf,
    /// The current directory (canonical), for resolving and printing paths.
    pub cwd: PathBuf,
    /// The git repository.
    pub git: git2::Repository,
    /// Merged configuration.
    pub config: Config,
    /// The object cache.
    pub cache: Cache,
}

/// Finds the git work tree containing `start`; returns the repository and its canonical root.
pub fn discover_git(start: &Path) -> Result<(git2::Repository, PathBuf), RepoError> {
    let git = git2::Repository::discover(start).map_err(|_| RepoError::NotGit {
        path: start.to_path_buf(),
    })?;
    let workdir = git.workdir().ok_or_else(|| RepoError::Bare {
        path: git.path().to_path_buf(),
    })?;
    let root = workdir.canonicalize().at("cannot resolve", workdir)?;
    Ok((git, root))
}

impl Repo {
    /// Opens the mlv repository containing `cwd`.
    pub fn open(cwd: &Path) -> Result<Repo, RepoError> {
        let cwd = cwd.canonicalize().at("cannot resolve", cwd)?;
        let (git, root) = discover_git(&cwd)?;
        let mlv_dir = root.join(MLV_DIR);
        if !mlv_dir.is_dir() {
            return Err(RepoError::NotInitialized { root });
        }
        let config = config::load(&mlv_dir)?;
        let cache = cache_for(&root, &config);
        if config.cache.dir.is_some() {
            if let Ok(dir) = cache.root().canonicalize() {
                if root.starts_with(&dir) {
                    return Err(RepoError::CacheDir { dir });
                }
            }
        }
        Ok(Repo {
            root,
            cwd,
            git,
            config,
            cache,
        })
    }

    /// `.mlv/` in this work tree.
    pub fn mlv_dir(&self) -> PathBuf {
        self.root.join(MLV_DIR)
    }

    /// Scratch space for workspace files being written (`.mlv/tmp`).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(MLV_DIR).join("tmp")
    }

    /// Removes mlv's temporary files from `.mlv/tmp`, which commands interrupted by a signal
    /// (Ctrl-C) or a crash leave behind; returns how many. Only for a command holding the
    /// repository lock exclusive: then no other mlv process is writing there. The cache's
    /// `tmp/` elsewhere (`cache.dir`) may be shared with other repositories: `gc` cleans it after
    /// the grace period.
    pub fn clean_scratch(&self) -> usize {
        let found = crate::fs::temp_files_in(&self.tmp_dir(), true, std::time::SystemTime::now());
        found
            .iter()
            .filter(|(p, _)| crate::fs::remove_file_if_exists(p).is_ok())
            .count()
    }

    /// Local state such as the stat cache (`.mlv/state`).
    pub fn state_dir(&self) -> PathBuf {
        self.root.join(MLV_DIR).join("state")
    }

    /// Resolves a path given on the command line (relative to the current directory).
    pub fn user_path(&self, path: &Path) -> Result<RelPath, RepoError> {
        let rel = RelPath::from_user(path, &self.cwd, &self.root).map_err(|reason| RepoError::BadPath {
            path: path.to_path_buf(),
            reason,
        })?;
        // `data.mlv` names the data it tracks.
        let rel = match rel.as_str().strip_suffix(POINTER_SUFFIX) {
            Some(data) if !data.is_empty() && !data.ends_with('/') => {
                RelPath::new(data).expect("prefix of a valid path")
            }
            _ => rel,
        };
        self.refuse_nested(&rel)?;
        Ok(rel)
    }

    /// Refuses a path that is, or lies inside, a git submodule or nested repository (a
    /// directory with a `.git`, or one the index records as a submodule): mlv in this work tree
    /// can track nothing there, as pointer discovery skips such directories.
    pub fn refuse_nested(&self, rel: &RelPath) -> Result<(), RepoError> {
        let index = self.git.index().map_err(git_err("reading the index"))?;
        let mut dir = Some(rel.clone());
        let mut found = None;
        while let Some(d) = dir {
            let gitlink = index
                .get_path(Path::new(d.as_str()), 0)
                .is_some_and(|e| e.mode == 0o160000);
            if gitlink || std::fs::symlink_metadata(d.to_path(&self.root).join(".git")).is_ok() {
                found = Some(d.clone()); // the outermost wins
            }
            dir = d.parent();
        }
        match found {
            None => Ok(()),
            Some(nested) => Err(RepoError::InNestedRepo {
                path: self.display(rel),
                nested: self.display(&nested),
            }),
        }
    }

    /// A work-tree path as the user should see it: relative to the current directory.
    pub fn display(&self, rel: &RelPath) -> String {
        display_relative(&self.cwd, &self.root, rel)
    }

    /// `tail` (a path inside `base`) as the user should see it, even when the two do not make a
    /// valid work-tree path (too long, say).
    pub fn display_in(&self, base: &RelPath, tail: &str) -> String {
        match base.join(tail) {
            Ok(rel) => self.display(&rel),
            Err(_) => format!("{}/{}", self.display(base), tail.escape_debug()),
        }
    }

    /// Every pointer file in the work tree, sorted by data path.
    pub fn pointers(&self) -> Result<Vec<Pointer>, RepoError> {
        let mut out = Vec::new();
        self.find_pointers(None, &mut out)?;
        out.sort_by(|a, b| a.data.cmp(&b.data));
        Ok(out)
    }

    fn find_pointers(&self, dir: Option<&RelPath>, out: &mut Vec<Pointer>) -> Result<(), RepoError> {
        let abs = dir.map_or_else(|| self.root.clone(), |d| d.to_path(&self.root));
        let mut subdirs = Vec::new();
        let mut tracked = Vec::new();
        for entry in std::fs::read_dir(&abs).at("cannot read directory", &abs)? {
            let entry = entry.at("cannot read directory", &abs)?;
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            let Ok(ft) = entry.file_type() else { continue };
            // `.git`, `.mlv` and names no work-tree path can hold (control characters, say)
            let Ok(rel) = dir.map_or_else(|| RelPath::new(&name), |d| d.join(&name)) else {
                continue;
            };
            if name == ".git" || name == MLV_DIR {
                continue;
            }
            if ft.is_dir() {
                subdirs.push(rel);
            } else if ft.is_file() && name.ends_with(POINTER_SUFFIX) && name.len() > POINTER_SUFFIX.len() {
                let p = Pointer::load(&self.root, &rel)?;
                tracked.push(p.data.clone());
                out.push(p);
            }
        }
        for sub in subdirs {
            if tracked.iter().any(|t| sub.is_within(t)) || self.skip_dir(&sub) {
                continue;
            }
            self.find_pointers(Some(&sub), out)?;
        }
        Ok(())
    }

    fn skip_dir(&self, dir: &RelPath) -> bool {
        let abs = dir.to_path(&self.root);
        if abs.join(".git").exists() {
            return true; // a nested repository or submodule
        }
        let with_slash = format!("{}/", dir.as_str());
        self.git.is_path_ignored(Path::new(&with_slash)).unwrap_or(false)
    }

    /// The pointer that tracks `path` or a directory containing it, if any.
    pub fn pointer_covering<'a>(pointers: &'a [Pointer], path: &RelPath) -> Option<&'a Pointer> {
        pointers.iter().find(|p| path.is_within(&p.data))
    }
}

/// The cache a configuration selects.
pub fn cache_for(root: &Path, config: &Config) -> Cache {
    let cache = match &config.cache.dir {
        Some(dir) => {
            let dir = root.join(dir);
            let tmp = dir.join("tmp");
            Cache::new(dir, tmp)
        }
        None => Cache::new(root.join(MLV_DIR).join("cache"), root.join(MLV_DIR).join("tmp")),
    };
    // Workspace files that are links share a loose object: never pack for them.
    let links = config.cache.link.first().is_some_and(|k| k.shares_object());
    cache.with_pack_min(if links { 0 } else { config.cache.pack_min_objects })
}

/// `rel` (under `root`) as seen from `cwd`.
pub fn display_relative(cwd: &Path, root: &Path, rel: &RelPath) -> String {
    let Ok(cwd_rel) = cwd.strip_prefix(root) else {
        return rel.to_path(root).display().to_string();
    };
    let cwd_parts: Vec<&str> = cwd_rel
        .to_str()
        .unwrap_or("")
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let parts: Vec<&str> = rel.as_str().split('/').collect();
    let common = cwd_parts.iter().zip(&parts).take_while(|(a, b)| a == b).count();
    let mut out: Vec<&str> = vec![".."; cwd_parts.len() - common];
    out.extend(&parts[common..]);
    if out.is_empty() {
        ".".to_string()
    } else {
        out.join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_relative_paths() {
        let root = Path::new("/r");
        let rel = RelPath::new("a/b/c").unwrap();
        assert_eq!(display_relative(Path::new("/r"), root, &rel), "a/b/c");
        assert_eq!(display_relative(Path::new("/r/a"), root, &rel), "b/c");
        assert_eq!(display_relative(Path::new("/r/x/y"), root, &rel), "../../a/b/c");
        assert_eq!(display_relative(Path::new("/r/a/b/c"), root, &rel), ".");
    }
}
