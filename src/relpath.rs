//! Work-tree-relative paths: `/`-separated, normalized, never escaping the work tree and never
//! naming `.git` or `.mlv`.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;

/// A normalized path relative to the work-tree root.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct RelPath(String);

/// Why a path is not an acceptable work-tree path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelPathError {
    /// Empty, or the work-tree root itself.
    #[error("the path is the repository root")]
    Root,
    /// Leads outside the work tree.
    #[error("the path is outside the repository")]
    Outside,
    /// Inside `.git` or `.mlv`.
    #[error("the path is inside `{0}`, which mlv manages")]
    Reserved(&'static str),
    /// Not valid UTF-8.
    #[error("the path is not valid UTF-8")]
    NotUtf8,
    /// Holds `..`, `.` or empty components, or a backslash.
    #[error("the path is not normalized")]
    NotNormal,
}

impl RelPath {
    /// Validates a `/`-separated relative path.
    pub fn new(s: &str) -> Result<RelPath, RelPathError> {
        if s.is_empty() {
            return Err(RelPathError::Root);
        }
        if s.starts_with('/') {
            return Err(RelPathError::Outside);
        }
        for part in s.split('/') {
            match part {
                "" | "." => return Err(RelPathError::NotNormal),
                ".." => return Err(RelPathError::Outside),
                ".git" => return Err(RelPathError::Reserved(".git")),
                ".mlv" => return Err(RelPathError::Reserved(".mlv")),
                p if p.contains('\\') || p.contains('\0') => return Err(RelPathError::NotNormal),
                _ => {}
            }
        }
        Ok(RelPath(s.to_string()))
    }

    /// Wraps a string already known to be valid.
    pub(crate) fn new_unchecked(s: String) -> RelPath {
        RelPath(s)
    }

    /// Resolves a user-supplied path (absolute or relative to `cwd`) against work-tree `root`,
    /// lexically (the path need not exist). `cwd` and `root` must be absolute and canonical.
    pub fn from_user(path: &Path, cwd: &Path, root: &Path) -> Result<RelPath, RelPathError> {
        let joined = cwd.join(path);
        let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
        for c in joined.components() {
            match c {
                Component::RootDir | Component::Prefix(_) => parts.clear(),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop();
                }
                Component::Normal(p) => parts.push(p),
            }
        }
        let abs: PathBuf = std::iter::once(std::ffi::OsStr::new("/")).chain(parts).collect();
        let rel = abs.strip_prefix(root).map_err(|_| RelPathError::Outside)?;
        let s = rel.to_str().ok_or(RelPathError::NotUtf8)?;
        RelPath::new(s)
    }

    /// The string form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The absolute path under `root`.
    pub fn to_path(&self, root: &Path) -> PathBuf {
        root.join(&self.0)
    }

    /// The last component.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The parent, or `None` at the top level.
    pub fn parent(&self) -> Option<RelPath> {
        self.0.rsplit_once('/').map(|(p, _)| RelPath(p.to_string()))
    }

    /// Appends a relative `/`-separated tail (already validated parts).
    pub fn join(&self, tail: &str) -> RelPath {
        RelPath(format!("{}/{tail}", self.0))
    }

    /// Whether `self` is `other` or lies inside it.
    pub fn is_within(&self, other: &RelPath) -> bool {
        self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// The part of `self` below `base`, if `self` is strictly inside `base`.
    pub fn strip_prefix(&self, base: &RelPath) -> Option<&str> {
        self.0.strip_prefix(&base.0)?.strip_prefix('/')
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_user_normalizes_and_refuses() {
        let root = Path::new("/r");
        let cwd = Path::new("/r/sub");
        let ok = |p: &str| RelPath::from_user(Path::new(p), cwd, root).map(|r| r.0);
        assert_eq!(ok("data/").unwrap(), "sub/data");
        assert_eq!(ok("../x/./y").unwrap(), "x/y");
        assert_eq!(ok("/r/a").unwrap(), "a");
        assert_eq!(ok("../.."), Err(RelPathError::Outside));
        assert_eq!(ok("/etc/passwd"), Err(RelPathError::Outside));
        assert_eq!(ok(".."), Err(RelPathError::Root));
        assert_eq!(ok("../.git/config"), Err(RelPathError::Reserved(".git")));
        assert_eq!(ok("../.mlv"), Err(RelPathError::Reserved(".mlv")));
        assert_eq!(ok("/rx/a"), Err(RelPathError::Outside));
    }

    #[test]
    fn within() {
        let a = RelPath::new("data").unwrap();
        assert!(RelPath::new("data/x").unwrap().is_within(&a));
        assert!(a.is_within(&a));
        assert!(!RelPath::new("database").unwrap().is_within(&a));
        assert_eq!(RelPath::new("data/x/y").unwrap().strip_prefix(&a), Some("x/y"));
    }
}
