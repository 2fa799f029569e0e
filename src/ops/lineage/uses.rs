//! `lineage uses`: everything derived from a version.

use serde::Serialize;

use super::{resolve_target, Target};
use crate::error::Error;
use crate::lineage::traverse::{derived_outputs, downstream, Derived, Downstream};
use crate::lineage::Lineage;
use crate::repo::Repo;

/// What `lineage uses` found.
#[derive(Debug, Serialize)]
pub struct UsesReport {
    /// The version asked about.
    pub target: Target,
    /// Every record downstream, depth first.
    pub records: Vec<Downstream>,
    /// Every output derived from the version.
    pub outputs: Vec<Derived>,
}

/// Everything derived from a version.
pub fn uses(repo: &Repo, lineage: &Lineage, arg: &str, rev: Option<&str>) -> Result<UsesReport, Error> {
    let target = resolve_target(repo, lineage, arg, rev)?;
    let records = downstream(lineage, &target.digest, target.rel.as_deref());
    let outputs = derived_outputs(&records);
    Ok(UsesReport {
        target,
        records,
        outputs,
    })
}
