//! The verbs. Each takes the repository, options and a progress handle, and returns a
//! serializable report; none of them prints.

pub mod add;
pub mod checkout;
pub mod config;
pub mod data;
pub mod diff;
pub mod doctor;
pub mod fsck;
pub mod gc;
pub mod hooks;
pub mod import;
pub mod import_dvc;
pub mod init;
pub mod lineage;
pub mod log;
pub mod metrics;
pub mod model;
pub mod registry;
pub mod remotes;
pub mod report;
pub mod repro;
pub mod sources;
pub mod stage_status;
pub mod status;
pub mod transfer;
pub mod untrack;

use crate::error::{Error, Refusal};
use crate::relpath::RelPath;
use crate::repo::Repo;

/// The work-tree path of `tail` inside `base` (a manifest entry, or a part of tracked data);
/// refused when the two do not make a valid work-tree path (too long, say).
pub(crate) fn entry_path(repo: &Repo, base: &RelPath, tail: &str) -> Result<RelPath, Error> {
    base.join(tail).map_err(|reason| {
        Refusal::BadPath {
            path: repo.display_in(base, tail).into(),
            reason: crate::error::BadPathReason::Invalid(reason),
        }
        .into()
    })
}

/// Refuses `hardlink`/`symlink` link kinds as root (see [`crate::link::refused_as_root`]),
/// before a verb that links workspace files writes anything.
pub(crate) fn refuse_links_as_root(repo: &Repo) -> Result<(), Error> {
    match crate::link::refused_as_root(&repo.config.cache) {
        None => Ok(()),
        Some(kind) => Err(Refusal::LinksAsRoot {
            kind: format!("{kind:?}").to_lowercase(),
        }
        .into()),
    }
}

/// The outermost parent directory of `rel` that is a symbolic link, if any: writing at `rel`
/// would write wherever that link leads.
pub(crate) fn link_above(repo: &Repo, rel: &RelPath) -> Option<RelPath> {
    let mut found = None;
    let mut parent = rel.parent();
    while let Some(dir) = parent {
        if std::fs::symlink_metadata(dir.to_path(&repo.root)).is_ok_and(|m| m.file_type().is_symlink()) {
            found = Some(dir.clone());
        }
        parent = dir.parent();
    }
    found
}
