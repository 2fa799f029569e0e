//! The pipeline part of `mlv status`: which stages of `mlv.toml` are out of date and why, as
//! `mlv repro --dry-run` would say, from the pointer states the status run already computed
//! (nothing is hashed again per stage).

use serde::Serialize;

use crate::error::Error;
use crate::lineage::Lineage;
use crate::ops::repro::{changes, Reason, Workspace};
use crate::ops::status::PointerStatus;
use crate::pipeline::{pipeline_path, Pipeline};
use crate::progress::Progress;
use crate::repo::Repo;

/// How one stage compares with its newest record.
#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum StageState {
    /// `mlv repro` would skip it.
    UpToDate,
    /// `mlv repro` would run it.
    OutOfDate {
        /// Why.
        reasons: Vec<Reason>,
    },
    /// It cannot be compared (an input modified in the workspace, an unreadable params file).
    Unknown {
        /// What stops the comparison.
        error: String,
    },
}

/// One stage's line.
#[derive(Debug, Serialize)]
pub struct StageStatus {
    /// The stage.
    pub stage: String,
    /// How it compares.
    #[serde(flatten)]
    pub state: StageState,
}

impl StageStatus {
    /// Whether `mlv repro` would skip it.
    pub fn up_to_date(&self) -> bool {
        matches!(self.state, StageState::UpToDate)
    }
}

/// Every stage in dependency order with its state, taking the states of tracked paths from
/// `known` (a status run over every pointer); `None` when there is no `mlv.toml`. A stage
/// downstream of one that is not up to date is out of date because of it.
pub fn stage_status(
    repo: &Repo,
    known: &[PointerStatus],
    progress: &dyn Progress,
) -> Result<Option<Vec<StageStatus>>, Error> {
    if !pipeline_path(&repo.root).exists() {
        return Ok(None);
    }
    let pipeline = Pipeline::load(&repo.root)?;
    let lineage = Lineage::load(&repo.root)?;
    let ws = Workspace::with_states(repo, known)?;
    let mut out: Vec<StageStatus> = Vec::new();
    for stage in &pipeline.stages {
        let stale_upstream = stage
            .after
            .iter()
            .find(|a| out.iter().any(|s| &s.stage == *a && !s.up_to_date()));
        let state = match stale_upstream {
            Some(up) => StageState::OutOfDate {
                reasons: vec![Reason::UpstreamOutOfDate { stage: up.clone() }],
            },
            None => match changes(repo, stage, &lineage, &ws, progress) {
                Ok(r) if r.is_empty() => StageState::UpToDate,
                Ok(reasons) => StageState::OutOfDate { reasons },
                Err(e) => StageState::Unknown { error: e.to_string() },
            },
        };
        out.push(StageStatus {
            stage: stage.name.clone(),
            state,
        });
    }
    Ok(Some(out))
}
