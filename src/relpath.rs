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
    /// Holds a control character (NUL, CR, LF, ESC, ...).
    #[error("the path holds a control character")]
    Control,
    /// A name longer than 255 bytes or a path longer than 4096 bytes.
    #[error("the path or one of its names is too long")]
    TooLong,
}

/// The longest name (path component) accepted, in bytes, as Linux's `NAME_MAX`.
pub const MAX_NAME: usize = 255;
/// The longest work-tree path accepted, in bytes, as Linux's `PATH_MAX`.
pub const MAX_PATH: usize = 4096;

/// Checks one name (a path component other than `.` and `..`): no `/`, backslash or control
/// character, not `.git` or `.mlv` in any case (as git, since a case-insensitive file system
/// would take `.GIT` for `.git`), not empty, at most [`MAX_NAME`] bytes.
pub fn check_name(part: &str) -> Result<(), RelPathError> {
    match part {
        "" | "." => Err(RelPathError::NotNormal),
        ".." => Err(RelPathError::Outside),
        p if p.eq_ignore_ascii_case(".git") => Err(RelPathError::Reserved(".git")),
        p if p.eq_ignore_ascii_case(".mlv") => Err(RelPathError::Reserved(".mlv")),
        p if p.contains(['\\', '/']) => Err(RelPathError::NotNormal),
        p if p.chars().any(|c| c.is_ascii_control()) => Err(RelPathError::Control),
        p if p.len() > MAX_NAME => Err(RelPathError::TooLong),
        _ => Ok(()),
    }
}

/// Whether a symbolic link at work-tree path `link` whose target text is `target` resolves,
/// lexically, to a place inside the work tree and outside `.git` and `.mlv`.
pub fn link_stays_inside(link: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth: Vec<&str> = link.split('/').collect();
    depth.pop();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if depth.pop().is_none() {
                    return false;
                }
            }
            p if p.eq_ignore_ascii_case(".git") || p.eq_ignore_ascii_case(".mlv") => return false,
            p => depth.push(p),
        }
    }
    true
}

/// `s` safe to print on a terminal: control characters (ESC, CR, LF, ...) are written as
/// escapes (`\u{1b}`), so a hostile name cannot move the cursor, recolour or hide text.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// A path given by the user or found on disk, [`printable`].
pub fn printable_path(p: &Path) -> String {
    printable(&p.to_string_lossy()).into_owned()
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
            check_name(part)?;
        }
        if s.len() > MAX_PATH {
            return Err(RelPathError::TooLong);
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

    /// Appends a relative `/`-separated tail, validated as [`RelPath::new`] validates (each
    /// name, and the whole length): a raw directory name or a manifest entry may not be valid
    /// here.
    pub fn join(&self, tail: &str) -> Result<RelPath, RelPathError> {
        if tail.is_empty() {
            return Err(RelPathError::NotNormal);
        }
        for part in tail.split('/') {
            check_name(part)?;
        }
        let joined = format!("{}/{tail}", self.0);
        if joined.len() > MAX_PATH {
            return Err(RelPathError::TooLong);
        }
        Ok(RelPath(joined))
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
    fn hostile_names_are_refused() {
        for (p, e) in [
            ("a\nb", RelPathError::Control),
            ("a/b\rc", RelPathError::Control),
            ("nul\0", RelPathError::Control),
            ("esc\u{1b}[31m", RelPathError::Control),
            ("a\\b", RelPathError::NotNormal),
            ("a//b", RelPathError::NotNormal),
            ("a/", RelPathError::NotNormal),
            ("a/../b", RelPathError::Outside),
            ("x/.GIT", RelPathError::Reserved(".git")),
        ] {
            assert_eq!(RelPath::new(p), Err(e), "{p:?}");
        }
        assert_eq!(RelPath::new(&"n".repeat(256)), Err(RelPathError::TooLong));
        assert!(RelPath::new(&"n".repeat(255)).is_ok());
        assert_eq!(RelPath::new(&["d"; 2100].join("/")), Err(RelPathError::TooLong));
    }

    #[test]
    fn links_that_leave_the_work_tree() {
        assert!(link_stays_inside("data/l", "a/b"));
        assert!(link_stays_inside("data/sub/l", "../../other"));
        assert!(!link_stays_inside("data/sub/l", "../../../etc"));
        assert!(!link_stays_inside("data/l", "/etc/passwd"));
        assert!(!link_stays_inside("data/l", "../.git/config"));
        assert!(!link_stays_inside("data/l", ""));
    }

    #[test]
    fn printable_escapes_control_characters_only() {
        assert_eq!(printable("my data's ü"), "my data's ü");
        assert_eq!(
            printable("a\u{1b}[31mb\nc\r\u{7f}"),
            "a\\u{1b}[31mb\\nc\\r\\u{7f}"
        );
    }

    #[test]
    fn within() {
        let a = RelPath::new("data").unwrap();
        assert!(RelPath::new("data/x").unwrap().is_within(&a));
        assert!(a.is_within(&a));
        assert!(!RelPath::new("database").unwrap().is_within(&a));
        assert_eq!(RelPath::new("data/x/y").unwrap().strip_prefix(&a), Some("x/y"));
    }

    #[test]
    fn join_validates_the_tail() {
        let a = RelPath::new("data").unwrap();
        assert_eq!(a.join("x/y").unwrap().as_str(), "data/x/y");
        for (tail, e) in [
            ("", RelPathError::NotNormal),
            ("x//y", RelPathError::NotNormal),
            ("../x", RelPathError::Outside),
            (".GIT", RelPathError::Reserved(".git")),
            ("a/.mlv/b", RelPathError::Reserved(".mlv")),
            ("esc\u{1b}[31m", RelPathError::Control),
            ("back\\slash", RelPathError::NotNormal),
        ] {
            assert_eq!(a.join(tail), Err(e), "{tail:?}");
        }
        let long = RelPath::new(&["d"; 2000].join("/")).unwrap();
        assert_eq!(long.join(&["e"; 100].join("/")), Err(RelPathError::TooLong));
    }
}
