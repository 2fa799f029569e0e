//! `mlv gc`.

use std::process::ExitCode;
use std::time::Duration;

use mlv::lock::LockMode;
use mlv::ops::gc::{GcOptions, Scope};

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Remove cache objects that no pointer in scope refers to.
///
/// Keeps what the workspace's pointers and the pointers committed on every local branch and
/// tag (and HEAD) refer to; --workspace keeps only the workspace's, --all-commits everything
/// reachable in history. Objects younger than the grace period are always kept, since an
/// `mlv add` may be running. Remotes are never touched.
///
/// Example: mlv gc --dry-run
#[derive(clap::Args)]
pub struct Args {
    /// Keep only what the workspace's pointers refer to.
    #[arg(short, long, conflicts_with = "all_commits")]
    workspace: bool,
    /// Keep what any commit reachable from any ref refers to.
    #[arg(short, long)]
    all_commits: bool,
    /// Keep objects younger than this many minutes.
    #[arg(long, value_name = "MINUTES", default_value_t = 60)]
    grace: u64,
    /// Report what would be removed without removing it.
    #[arg(short = 'n', long)]
    dry_run: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let mode = if args.dry_run {
        LockMode::Shared
    } else {
        LockMode::Exclusive
    };
    let _lock = ctx.lock(&repo, mode, "gc")?;
    let scope = match (args.workspace, args.all_commits) {
        (true, _) => Scope::Workspace,
        (_, true) => Scope::AllCommits,
        _ => Scope::Refs,
    };
    let opts = GcOptions {
        scope,
        grace: Duration::from_secs(args.grace * 60),
        dry_run: args.dry_run,
    };
    let report = mlv::ops::gc::gc(&repo, &opts)?;
    ctx.ui.json(&report);
    let verb = if report.dry_run { "would remove" } else { "removed" };
    ctx.ui.info(&format!(
        "{verb} {} ({}); kept {} in use and {} recent",
        plural(report.removed, "object", "objects"),
        human_bytes(report.removed_bytes),
        report.kept,
        report.kept_recent
    ));
    Ok(ExitCode::SUCCESS)
}
