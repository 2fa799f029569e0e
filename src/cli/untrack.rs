//! `mlv untrack` and `mlv unprotect`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;

use super::{CliError, Ctx};

/// Stop tracking data with mlv; the data stays in the workspace.
///
/// Removes the pointer file and the .gitignore entry. Files linked to the cache become
/// ordinary copies first.
///
/// Example: mlv untrack data
#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (or their pointer files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "untrack")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let report = mlv::ops::untrack::untrack(&repo, &paths)?;
    ctx.ui.json(&report);
    for (d, p) in report.untracked.iter().zip(&report.removed_pointers) {
        ctx.ui
            .info(&format!("untracked {d} (removed {p}; the data stays in place)"));
    }
    if !report.staged {
        ctx.ui.info("\nTo record the change with git, run:\n");
        ctx.ui.info(&format!(
            "\tgit add -A {}",
            super::shell_args(&report.removed_pointers)
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// Turn workspace files linked to the cache into editable copies.
///
/// With cache.link set to hardlink or symlink, workspace files are read-only links to cache
/// objects; unprotect replaces them with writable copies so they can be edited safely.
///
/// Example: mlv unprotect models/model.pt
#[derive(clap::Args)]
pub struct UnprotectArgs {
    /// Tracked paths (or paths inside tracked directories).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run_unprotect(ctx: &Ctx, args: UnprotectArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "unprotect")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let report = mlv::ops::untrack::unprotect(&repo, &paths)?;
    ctx.ui.json(&report);
    ctx.ui.info(&format!("unprotected {} file(s)", report.copied));
    Ok(ExitCode::SUCCESS)
}
