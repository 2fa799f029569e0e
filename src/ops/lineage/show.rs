//! `lineage show`: the record that produced a version, and its upstream chain.

use serde::Serialize;

use super::{resolve_target, Target};
use crate::error::Error;
use crate::lineage::traverse::{upstream, Node};
use crate::lineage::{Lineage, LineageError};
use crate::repo::Repo;

/// What `lineage show` found.
#[derive(Debug, Serialize)]
pub struct ShowReport {
    /// The version asked about.
    pub target: Target,
    /// The record that produced it, and its upstream chain.
    pub produced_by: Node,
}

/// The record that produced a version and its upstream chain.
pub fn show(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<ShowReport, Error> {
    let target = resolve_target(repo, lineage, arg, rev)?;
    let node =
        upstream(lineage, &target.digest, target.rel.as_deref()).ok_or_else(|| LineageError::NoProducer {
            what: target.describe(),
        })?;
    Ok(ShowReport {
        target,
        produced_by: node,
    })
}
