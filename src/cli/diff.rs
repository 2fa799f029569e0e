//! `mlv diff`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;

use super::ui::{human_bytes, inside, size_change};
use super::{CliError, Ctx};

/// Show files added, modified and deleted inside tracked data between two revisions.
///
/// With no revision, compares HEAD with the workspace; with one, that revision with the
/// workspace; with two, the first with the second. Leading arguments that git resolves as
/// revisions are revisions, the rest are paths (or put paths after `--`). Directory manifests
/// are read from the local cache.
///
/// Example: mlv diff v1.0 HEAD data/clean
#[derive(clap::Args)]
pub struct Args {
    /// [REV1 [REV2]] [PATH...]
    #[arg(value_name = "ARG")]
    args: Vec<String>,
    /// Paths, after `--`.
    #[arg(last = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "diff")?;
    let mut revs: Vec<String> = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for a in args.args {
        let is_rev = paths.is_empty()
            && revs.len() < 2
            && !ctx.cwd.join(&a).exists()
            && mlv::history::resolve_commit(&repo.git, &a).is_ok();
        if is_rev {
            revs.push(a);
        } else {
            paths.push(PathBuf::from(a));
        }
    }
    paths.extend(args.paths);
    let paths = ctx.rel_paths(&repo, &paths)?;
    let from = revs.first().map(String::as_str).unwrap_or("HEAD");
    let to = revs.get(1).map(String::as_str);
    let progress = ctx.progress();
    // The cache, and behind it the default remote when one is set.
    let backed = ctx.objects(&repo)?;
    let objects: &dyn mlv::objects::ObjectSource = match &backed {
        Some(b) => b,
        None => &repo.cache,
    };
    let report = mlv::ops::diff::diff(&repo, from, to, &paths, objects, progress.as_ref())?;
    ctx.ui.json(&report);
    if ctx.ui.json {
        return Ok(ExitCode::SUCCESS);
    }
    let changed: Vec<_> = report
        .paths
        .iter()
        .filter(|p| ctx.ui.verbose || p.state != "unchanged")
        .collect();
    if changed.is_empty() {
        ctx.ui
            .info(&format!("No changes between {} and {}.", report.from, report.to));
    }
    for p in changed {
        ctx.ui.out(&format!("{}: {}", p.path, p.state));
        for f in &p.added {
            ctx.ui.out(&format!(
                "\tadded:    {} ({})",
                inside(&repo, &p.data, &f.path),
                human_bytes(f.new_size.unwrap_or(0))
            ));
        }
        for f in &p.modified {
            ctx.ui.out(&format!(
                "\tmodified: {} ({})",
                inside(&repo, &p.data, &f.path),
                size_change(f.old_size.unwrap_or(0), f.new_size.unwrap_or(0))
            ));
        }
        for f in &p.deleted {
            ctx.ui.out(&format!(
                "\tdeleted:  {} ({})",
                inside(&repo, &p.data, &f.path),
                human_bytes(f.old_size.unwrap_or(0))
            ));
        }
        for d in &p.unavailable {
            eprintln!(
                "warning: {}: manifest {} is not in the cache; the file list is incomplete (run `mlv pull`)",
                p.path,
                d.short(12)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
