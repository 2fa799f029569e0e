//! `mlv init`.

use std::process::ExitCode;

use super::{CliError, Ctx};

/// Set up mlv in the current git work tree.
///
/// Creates .mlv/ with a committed config.toml and git-ignored cache, tmp and state
/// directories. Running it again fills in anything missing and is not an error.
///
/// Example: git init demo && cd demo && mlv init
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<ExitCode, CliError> {
    let mut lock = |mlv_dir: &std::path::Path| {
        // The configuration may not exist yet, or be broken: then the default timeout.
        let timeout = mlv::config::load(mlv_dir)
            .map(|c| mlv::lock::timeout_of(&c))
            .unwrap_or(mlv::lock::DEFAULT_TIMEOUT);
        ctx.lock_dir(mlv_dir, timeout, mlv::lock::LockMode::Exclusive, "init")
    };
    let report = mlv::ops::init::init(&ctx.cwd, &mut lock)?;
    ctx.ui.json(&report);
    if report.already {
        ctx.ui
            .info(&format!("mlv is already initialized in {}/.mlv", report.root));
    } else {
        ctx.ui.info(&format!("Initialized mlv in {}/.mlv", report.root));
    }
    if !report.created.is_empty() {
        super::git_add_hint(&ctx.ui, &report.created);
    }
    Ok(ExitCode::SUCCESS)
}
