//! `mlv doctor`.

use std::process::ExitCode;

use mlv::ops::doctor;

use super::{CliError, Ctx};

/// Print what a bug report needs: version, repository, cache and link kinds, and each remote
/// (reachable? credentials found?). Credentials are named, never shown.
///
/// Each remote gets one HEAD request, with a 5 s timeout.
///
/// Example: mlv doctor
#[derive(clap::Args)]
pub struct Args {}

pub fn run(ctx: &Ctx, _args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let report = doctor::run(&repo, ctx.runtime()?.handle());
    ctx.ui.json(&report);
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    ctx.ui.out(&format!("mlv version: {}", report.version));
    ctx.ui.out(&format!("repository: {}", report.root.display()));
    ctx.ui.out(&format!(
        "cache: {}{}",
        report.cache_dir.display(),
        if report.cache_exists {
            ""
        } else {
            " (not created yet)"
        }
    ));
    ctx.ui.out(&format!("link kinds: {}", report.link.join(", ")));
    if let Some(same) = report.same_filesystem {
        ctx.ui
            .out(&format!("cache on the work tree's file system: {}", yes_no(same)));
    }
    if report.remotes.is_empty() {
        ctx.ui.out("remotes: none");
    }
    for r in &report.remotes {
        let mark = if report.default_remote.as_deref() == Some(&r.name) {
            " (default)"
        } else {
            ""
        };
        ctx.ui.out(&format!("remote {}{mark}: {}", r.name, r.url));
        if let Some(s) = r.scheme {
            ctx.ui.out(&format!("  kind: {}", s.name()));
        }
        match r.reachable {
            Some(ok) => ctx.ui.out(&format!("  reachable: {}", yes_no(ok))),
            None => ctx.ui.out("  reachable: not tried"),
        }
        if let Some(e) = &r.error {
            ctx.ui.out(&format!("  error: {e}"));
        }
        let creds = if r.credentials.is_empty() {
            "none found".to_string()
        } else {
            r.credentials.join(", ")
        };
        ctx.ui.out(&format!("  credentials: {creds}"));
    }
    Ok(ExitCode::SUCCESS)
}
