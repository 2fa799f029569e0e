//! mlv: git-like versioning for datasets and models.
//!
//! The library never prints: every operation returns a report or a typed error, and the
//! `mlv` binary (`src/cli/`) renders them.

pub mod cache;
pub mod child;
pub mod config;
pub mod crash;
pub mod error;
pub mod fs;
pub mod gitutil;
pub mod hash;
pub mod history;
pub mod kind;
pub mod lineage;
pub mod link;
pub mod lock;
pub mod manifest;
pub mod model;
pub mod objects;
pub mod ops;
pub mod pack;
pub mod pipeline;
pub mod pointer;
pub mod progress;
pub mod reader;
pub mod relpath;
pub mod remote;
pub mod repo;
pub mod revs;
pub mod source;
pub mod state;
pub mod targets;
pub mod workspace;

pub use error::{Error, Refusal, Result};

/// The module layering, checked on the source: `ops` (the verbs) uses the library and never
/// the reverse.
#[cfg(test)]
mod layers {
    use std::path::{Path, PathBuf};

    /// The `ops` imports in one file's text, given its module path (`["lineage", "query"]`
    /// for `src/lineage/query.rs`): `crate::ops`, `crate::{.., ops, ..}` and `super::` chains
    /// that reach the crate root and name `ops`. Comments are ignored.
    fn ops_imports(module: &[String], text: &str) -> Vec<String> {
        // one space between words, none around punctuation: `crate :: { ops }` reads
        // `crate::{ops}`, `crate::ops as verbs` keeps its spaces
        let words: Vec<&str> = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .flat_map(str::split_whitespace)
            .collect();
        let is_word = |c: char| c.is_alphanumeric() || c == '_';
        let mut code = String::new();
        for w in words {
            if code.ends_with(is_word) && w.starts_with(is_word) {
                code.push(' ');
            }
            code.push_str(w);
        }
        let names_ops = |rest: &str| {
            rest.strip_prefix("ops")
                .is_some_and(|r| !r.starts_with(|c: char| c.is_alphanumeric() || c == '_'))
        };
        let grouped_ops = |rest: &str| {
            // `{a,ops::b,c}`: the top-level items of the group
            let Some(body) = rest.strip_prefix('{') else {
                return false;
            };
            let (mut depth, mut item) = (0, String::new());
            for c in body.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => return names_ops(&item),
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if names_ops(&item) {
                            return true;
                        }
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            false
        };
        let mut found = Vec::new();
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            if names_ops(rest) || grouped_ops(rest) {
                found.push(code[i..].chars().take(40).collect());
            }
        }
        for (i, _) in code.match_indices("super::") {
            if code[..i].ends_with("super::") {
                continue; // counted from the first `super` of the chain
            }
            let mut rest = &code[i..];
            let mut up = 0;
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
                up += 1;
            }
            if up >= module.len() && (names_ops(rest) || grouped_ops(rest)) {
                found.push(code[i..].chars().take(40).collect());
            }
        }
        found
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// `ops` (the verbs) uses the library and never the reverse: no file outside `src/ops/`
    /// and `src/cli/` (the binary's) imports `crate::ops`.
    #[test]
    fn nothing_below_ops_imports_ops() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        assert!(
            files.len() > 20,
            "the source tree was not found at {}",
            src.display()
        );
        let mut offenders = Vec::new();
        for file in files {
            let rel = file.strip_prefix(&src).unwrap();
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect();
            // the verbs, the binary, and the crate root (which declares the modules and holds
            // these tests, with their samples)
            if matches!(
                module.first().map(String::as_str),
                Some("ops" | "cli" | "main" | "lib")
            ) {
                continue;
            }
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            let text = std::fs::read_to_string(&file).unwrap();
            for hit in ops_imports(&module, &text) {
                offenders.push(format!("{}: {hit}", rel.display()));
            }
        }
        assert!(
            offenders.is_empty(),
            "library files import ops:\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn the_ops_import_check_finds_every_spelling() {
        let m = |s: &str| {
            s.split('/')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        };
        for (module, text) in [
            ("status", "use crate::ops::resolve_targets;"),
            ("status", "let t = crate::ops::load_manifest(repo, p)?;"),
            ("status", "use crate::{error::Error, ops};"),
            (
                "status",
                "use crate::{\n    ops::{self, Target},\n    repo::Repo,\n};",
            ),
            ("status", "use crate::ops as verbs;"),
            ("status", "use super::ops::add;"),
            ("lineage/query", "use super::super::ops::lineage;"),
            ("lineage", "use super::{ops, Repo};"),
        ] {
            assert!(!ops_imports(&m(module), text).is_empty(), "{module}: {text}");
        }
        for (module, text) in [
            ("status", "use std::ops::Not;"),
            ("status", "#[serde(skip_serializing_if = \"std::ops::Not::not\")]"),
            (
                "status",
                "use crate::opsy::Thing; use crate::{pointer::Pointer, state::ops};",
            ),
            ("status", "// see crate::ops::status"),
            ("lineage/query", "use super::ops::Filter;"),
            ("lineage/query", "use super::{graph, ops};"),
        ] {
            assert!(ops_imports(&m(module), text).is_empty(), "{module}: {text}");
        }
    }
}
