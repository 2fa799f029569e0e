//! `mlv checkout`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::checkout::CheckoutOptions;

use super::ui::plural;
use super::{CliError, Ctx};

/// Make the workspace match the pointer files, from the cache.
///
/// Restores missing or changed files and removes files inside tracked directories that the
/// pointer does not list. Workspace files whose content is not in the cache are never
/// overwritten or deleted unless --force is given. A PATH inside a tracked directory
/// restores just that part.
///
/// Example: git checkout HEAD~1 && mlv checkout
#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (or paths inside tracked directories); all when omitted.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Overwrite or delete workspace files even if their content is not in the cache.
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "checkout")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let progress = ctx.progress();
    let opts = CheckoutOptions { force: args.force };
    let report = mlv::ops::checkout::checkout(&repo, &paths, &opts, progress.as_ref())?;
    ctx.ui.json(&report);
    render(ctx, report)
}

/// One line for a target that was restored (or, with -v, already up to date).
pub fn print_done(ctx: &Ctx, t: &mlv::ops::checkout::CheckedOut) {
    if t.restored + t.removed > 0 {
        ctx.ui.info(&format!(
            "{}: restored {}, removed {}",
            t.path,
            plural(t.restored, "file", "files"),
            t.removed
        ));
    } else if ctx.ui.verbose {
        ctx.ui.info(&format!("{}: up to date", t.path));
    }
}

/// Prints what checkout did (the JSON document is the caller's) and turns failed targets into
/// one error carrying their hints and the gravest exit code (a single target's error as it is).
pub fn render(ctx: &Ctx, report: mlv::ops::checkout::CheckoutReport) -> Result<ExitCode, CliError> {
    let total = report.targets.len();
    let mut failures = Vec::new();
    for t in report.targets {
        match t.error {
            Some(e) => failures.push(CliError::from(e)),
            None => print_done(ctx, &t),
        }
    }
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    if total == 1 {
        // The one target's error is the whole story: no summary line.
        let err = failures.remove(0);
        if ctx.ui.json {
            err.print(&ctx.ui);
            return Ok(ExitCode::from(err.code));
        }
        return Err(err);
    }
    // Each failure on its own line; the summary carries their hints and the gravest exit code.
    let mut hints: Vec<String> = Vec::new();
    for f in &failures {
        eprintln!("{}: {}", ctx.ui.paint("error", "1;31"), f.message);
        for c in &f.causes {
            eprintln!("  caused by: {c}");
        }
        if let Some(h) = f.hint.as_ref().filter(|h| !hints.contains(h)) {
            hints.push(h.clone());
        }
    }
    let failed = failures.len();
    let mut err = CliError::from(mlv::Error::from(mlv::Refusal::Partial { failed, total }));
    err.code = failures.iter().map(|f| f.code).max().unwrap_or(err.code);
    err.hint = (!hints.is_empty()).then(|| hints.join("; "));
    if ctx.ui.json {
        // the report above is the one JSON document
        err.print(&ctx.ui);
        return Ok(ExitCode::from(err.code));
    }
    Err(err)
}
