//! `mlv init`: set up `.mlv/` in a git work tree.

use std::path::Path;

use serde::Serialize;

use crate::config;
use crate::error::Error;
use crate::fs::write_atomic_in;
use crate::gitutil::ensure_dir;
use crate::repo::{discover_git, MLV_DIR};

/// What `init` did.
#[derive(Debug, Serialize)]
pub struct InitReport {
    /// The work-tree root.
    pub root: String,
    /// Whether `.mlv/` existed already.
    pub already: bool,
    /// Files created now (work-tree relative).
    pub created: Vec<String>,
}

/// The `.mlv/.gitignore`: everything but the committed config stays out of git.
pub const MLV_GITIGNORE: &str = "# mlv: local cache, scratch space, state and machine-specific config\n/cache/\n/tmp/\n/state/\n/config.local.toml\n/lock\n/lock.info\n/repro.lock\n/repro.lock.info\n";

/// Creates `.mlv/` (idempotent: fills in whatever is missing).
/// `lock` takes the repository lock once `.mlv/` exists; it is held while the rest is filled in.
pub fn init(
    cwd: &Path,
    lock: &mut dyn FnMut(&Path) -> Result<crate::lock::RepoLock, Error>,
) -> Result<InitReport, Error> {
    let cwd = cwd
        .canonicalize()
        .map_err(|e| crate::fs::IoError::new("cannot resolve", cwd, e))?;
    let (_git, root) = discover_git(&cwd)?;
    let mlv = root.join(MLV_DIR);
    let already = mlv.is_dir();
    let mut created = Vec::new();
    ensure_dir(&mlv)?;
    for sub in ["cache", "tmp", "state"] {
        ensure_dir(&mlv.join(sub))?;
    }
    let _lock = lock(&mlv)?;
    if config::write_if_missing(&mlv.join("config.toml"), &config::initial_text())? {
        created.push(format!("{MLV_DIR}/config.toml"));
    }
    let ignore = mlv.join(".gitignore");
    if !ignore.exists() {
        write_atomic_in(&ignore, MLV_GITIGNORE.as_bytes(), &mlv.join("tmp"))?;
        created.push(format!("{MLV_DIR}/.gitignore"));
    }
    // Branches that both record runs merge the lineage file without a conflict.
    let attributes = crate::relpath::RelPath::new(".gitattributes").expect("valid");
    let lineage = crate::gitutil::add_ignore(&root, &attributes, crate::lineage::GITATTRIBUTES_LINE)?;
    // ... and the pipeline file, when both add stages
    let pipeline = crate::gitutil::add_ignore(&root, &attributes, crate::pipeline::GITATTRIBUTES_LINE)?;
    if lineage || pipeline {
        created.push(".gitattributes".into());
    }
    Ok(InitReport {
        root: root.display().to_string(),
        already,
        created,
    })
}
