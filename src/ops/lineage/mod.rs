//! The lineage verbs: `record` and `run` append records; `show`, `uses`, `list` and `graph`
//! query them; `verify` checks that what they name can still be had; `diff` compares runs.
//! One verb per module; the versions named on the command line are resolved here.

mod diff;
mod graph;
mod history;
mod list;
mod record;
mod run;
pub mod runcache;
mod show;
mod signatures;
mod uses;
mod verify;

use std::path::Path;

use serde::Serialize;

pub use diff::{diff, LineageDiffReport, RunPair, RunRef};
pub use graph::graph;
pub use history::{verify_history, HistoryBreak, HistoryReport};
pub use list::list;
pub(crate) use record::append_imported;
pub use record::{record, ParamsSpec, RecordOptions, RecordReport};
pub use run::{run, run_in, RunOutcome};
pub use runcache::{restore, Restored};
pub use show::{show, ShowReport};
pub use signatures::{verify_signatures, SignatureCheck, SignaturesReport};
pub use uses::{uses, UsesReport};
pub use verify::{verify, OutputCheck, Unavailable, VerifyReport};

use crate::error::Error;
use crate::hash::Digest;
use crate::history::{resolve_commit, version_in_tree, version_in_workspace};
use crate::lineage::{git_err, Lineage, LineageError};
use crate::repo::Repo;

/// A version named on the command line.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The path, as displayed (absent when a digest was given).
    pub path: Option<String>,
    /// The digest.
    pub digest: Digest,
    /// The size, when known.
    pub size: Option<u64>,
    /// The work-tree-relative path, for matching records.
    #[serde(skip)]
    pub rel: Option<String>,
}

impl Target {
    /// `path (digest)` or the digest, for messages.
    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("{p} ({})", self.digest.short(12)),
            None => self.digest.to_string(),
        }
    }
}

/// Resolves PATH|DIGEST: a digest or a unique prefix of one (at least 6 hex characters) that
/// the lineage mentions, else a path: its pointer in the workspace, or at `rev`.
pub fn resolve_target(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<Target, Error> {
    let hex = arg.len() >= 6 && arg.chars().all(|c| c.is_ascii_hexdigit());
    if hex && !repo.cwd.join(arg).exists() {
        let lower = arg.to_ascii_lowercase();
        let found = match lower.parse::<Digest>() {
            Ok(d) => vec![d],
            Err(_) => lineage.digests_starting(&lower),
        };
        return match found.as_slice() {
            [] => Err(LineageError::UnknownDigest { prefix: arg.into() }.into()),
            [d] => Ok(Target {
                path: None,
                digest: *d,
                size: None,
                rel: None,
            }),
            many => Err(LineageError::Ambiguous {
                prefix: arg.into(),
                candidates: many.iter().take(5).map(|d| d.short(16)).collect(),
            }
            .into()),
        };
    }
    let rel = repo.user_path(Path::new(arg))?;
    let version = match rev {
        Some(r) => {
            let commit = resolve_commit(&repo.git, r)?;
            let tree = commit.tree().map_err(git_err("reading a tree"))?;
            version_in_tree(&repo.git, &tree, &rel)?
        }
        None => version_in_workspace(repo, &rel)?,
    };
    let v = version.ok_or_else(|| LineageError::UnknownPath {
        path: repo.display(&rel),
        rev: rev.map(str::to_string),
    })?;
    Ok(Target {
        path: Some(repo.display(&rel)),
        digest: v.digest,
        size: Some(v.size),
        rel: Some(rel.as_str().to_string()),
    })
}
