//! `mlv install-hooks` and `mlv uninstall-hooks`.

use std::process::ExitCode;

use mlv::ops::hooks::{self, HookAction, HooksReport};

use super::{CliError, Ctx};

/// Install git hooks: `mlv checkout` after a branch checkout or a merge, `mlv push` before
/// `git push`.
///
/// The hooks go to core.hooksPath when set, else .git/hooks. Running it again changes nothing.
/// A hook already there that mlv did not write is kept as HOOK.pre-mlv and run first by mlv's
/// hook. A failing `mlv checkout` only prints; a failing `mlv push` stops the push
/// (`git push --no-verify` skips it).
///
/// Example: mlv install-hooks
#[derive(clap::Args)]
pub struct InstallArgs {}

/// Remove the git hooks `mlv install-hooks` wrote, putting back the hooks they chained.
///
/// Example: mlv uninstall-hooks
#[derive(clap::Args)]
pub struct UninstallArgs {}

pub fn run_install(ctx: &Ctx, _args: InstallArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let report = hooks::install(&repo)?;
    render(ctx, &repo, &report);
    Ok(ExitCode::SUCCESS)
}

pub fn run_uninstall(ctx: &Ctx, _args: UninstallArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let report = hooks::uninstall(&repo)?;
    render(ctx, &repo, &report);
    Ok(ExitCode::SUCCESS)
}

fn render(ctx: &Ctx, repo: &mlv::repo::Repo, report: &HooksReport) {
    ctx.ui.json(report);
    let dir = report
        .hooks_dir
        .strip_prefix(&repo.cwd)
        .unwrap_or(&report.hooks_dir);
    for h in &report.hooks {
        let what = match h.action {
            HookAction::Installed => "installed".to_string(),
            HookAction::Chained => format!(
                "installed; runs the existing hook first, kept as {}.pre-mlv",
                h.name
            ),
            HookAction::Unchanged => "already installed".into(),
            HookAction::Updated => "updated".into(),
            HookAction::Removed => "removed".into(),
            HookAction::Restored => format!("removed; {}.pre-mlv put back", h.name),
            HookAction::Absent => "not installed".into(),
        };
        ctx.ui.info(&format!("{}: {what}", dir.join(h.name).display()));
    }
}
