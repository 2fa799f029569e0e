//! The git side of tracking data: `.gitignore` entries and staging pointer files.

use std::path::{Path, PathBuf};

use crate::fs::{write_atomic_in, IoError};

/// Where atomic writes of work-tree files put their temporary files.
fn scratch(root: &Path) -> PathBuf {
    root.join(crate::repo::MLV_DIR).join("tmp")
}
use crate::relpath::RelPath;
use crate::repo::{git_err, RepoError};

/// The `.gitignore` beside `data`, and the anchored line that ignores `data`; `None` when the
/// `.gitignore` path would be too long for a work-tree path.
pub fn ignore_entry(data: &RelPath) -> Option<(RelPath, String)> {
    let file = match data.parent() {
        Some(p) => p.join(".gitignore").ok()?,
        None => RelPath::new(".gitignore").expect("valid"),
    };
    Some((file, format!("/{}", escape_glob(data.file_name()))))
}

/// Escapes a name for a `.gitignore` line as gitignore(5) reads it: the glob characters
/// `*?[\` anywhere and trailing spaces (which git strips unless escaped). Nothing else: the line
/// starts with the anchoring `/`, so a leading `#` (a comment) or `!` (a negation) in the name
/// is literal there, as is a leading space.
fn escape_glob(name: &str) -> String {
    let trailing = name.len() - name.trim_end_matches(' ').len();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.char_indices() {
        let glob = matches!(c, '*' | '?' | '[' | '\\');
        if glob || (c == ' ' && i >= name.len() - trailing) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The line earlier builds of mlv wrote for `data` when it differs from today's (they also
/// escaped `]`, `!`, `#` and a leading space, and not trailing spaces), so `untrack` removes it
/// too.
pub fn legacy_ignore_line(data: &RelPath) -> Option<String> {
    let name = data.file_name();
    let mut out = String::from("/");
    for c in name.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '!' | '#') || (c == ' ' && out.len() == 1) {
            out.push('\\');
        }
        out.push(c);
    }
    let (_, now) = ignore_entry(data)?;
    (out != now).then_some(out)
}

/// Whether a `.gitignore` line is `line` (exactly: trailing spaces can be meaningful when
/// escaped, so they are not trimmed; a CR of a CRLF file is).
fn same_line(l: &str, line: &str) -> bool {
    l.strip_suffix('\r').unwrap_or(l) == line
}

/// Adds `line` to the `.gitignore` at `file`; returns whether it changed.
pub fn add_ignore(root: &Path, file: &RelPath, line: &str) -> Result<bool, IoError> {
    let path = file.to_path(root);
    let text = crate::fs::read_to_string_nofollow_or_empty(&path)?;
    if text.lines().any(|l| same_line(l, line)) {
        return Ok(false);
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(line);
    new.push('\n');
    write_atomic_in(&path, new.as_bytes(), &scratch(root))?;
    Ok(true)
}

/// Removes `line` from the `.gitignore` at `file`; returns whether it changed. An emptied file
/// is removed.
pub fn remove_ignore(root: &Path, file: &RelPath, line: &str) -> Result<bool, IoError> {
    let path = file.to_path(root);
    let text = crate::fs::read_to_string_nofollow_or_empty(&path)?;
    let kept: Vec<&str> = text.lines().filter(|l| !same_line(l, line)).collect();
    if kept.len() == text.lines().count() {
        return Ok(false);
    }
    if kept.iter().all(|l| l.trim().is_empty()) {
        crate::fs::remove_file_if_exists(&path)?;
    } else {
        write_atomic_in(&path, format!("{}\n", kept.join("\n")).as_bytes(), &scratch(root))?;
    }
    Ok(true)
}

/// Whether git tracks `path` or anything below it.
pub fn tracked_by_git(git: &git2::Repository, path: &RelPath) -> Result<bool, RepoError> {
    let index = git.index().map_err(git_err("reading the index"))?;
    Ok(tracked_in(&index, path))
}

/// Whether `index` holds `path` or anything below it (a lookup, not a scan).
pub fn tracked_in(index: &git2::Index, path: &RelPath) -> bool {
    index.get_path(Path::new(path.as_str()), 0).is_some()
        || index.find_prefix(format!("{}/", path.as_str())).is_ok()
}

/// Stages the given paths (added if present in the work tree, removed if not).
pub fn stage(git: &git2::Repository, root: &Path, paths: &[RelPath]) -> Result<(), RepoError> {
    let mut index = git.index().map_err(git_err("reading the index"))?;
    for p in paths {
        if p.to_path(root).exists() {
            index
                .add_path(Path::new(p.as_str()))
                .map_err(git_err("staging"))?;
        } else {
            let _ = index.remove_path(Path::new(p.as_str()));
        }
    }
    index.write().map_err(git_err("writing the index"))
}

/// Ensures `dir` exists.
pub fn ensure_dir(dir: &Path) -> Result<PathBuf, IoError> {
    std::fs::create_dir_all(dir).map_err(|e| IoError::new("cannot create directory", dir, e))?;
    Ok(dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ignore_lines_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let data = RelPath::new("sub/my data[1]").unwrap();
        let (file, line) = ignore_entry(&data).unwrap();
        assert_eq!(file.as_str(), "sub/.gitignore");
        assert_eq!(line, "/my data\\[1]");
        std::fs::create_dir(d.path().join("sub")).unwrap();
        std::fs::write(d.path().join("sub/.gitignore"), "keep").unwrap();
        assert!(add_ignore(d.path(), &file, &line).unwrap());
        assert!(!add_ignore(d.path(), &file, &line).unwrap());
        assert!(remove_ignore(d.path(), &file, &line).unwrap());
        assert_eq!(
            std::fs::read_to_string(d.path().join("sub/.gitignore")).unwrap(),
            "keep\n"
        );
    }

    #[test]
    fn legacy_lines_are_known() {
        let legacy = |n: &str| legacy_ignore_line(&RelPath::new(n).unwrap());
        assert_eq!(legacy("plain"), None);
        assert_eq!(legacy(" lead").as_deref(), Some("/\\ lead"));
        assert_eq!(legacy("trail ").as_deref(), Some("/trail "));
        assert_eq!(legacy("a[1]").as_deref(), Some("/a\\[1\\]"));
    }

    #[test]
    fn escapes_exactly_what_git_reads_specially() {
        for (name, want) in [
            (" lead", "/ lead"),
            ("trail  ", "/trail\\ \\ "),
            ("mid dle", "/mid dle"),
            ("#hash#", "/#hash#"),
            ("!bang!", "/!bang!"),
            ("a*b?c[d]e", "/a\\*b\\?c\\[d]e"),
        ] {
            let (_, line) = ignore_entry(&RelPath::new(name).unwrap()).unwrap();
            assert_eq!(line, want, "{name:?}");
        }
    }
}
