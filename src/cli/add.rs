//! `mlv add`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Hash files or directories into the cache and write their pointer files.
///
/// Each PATH gets a pointer file PATH.mlv beside it, and PATH is added to the .gitignore
/// beside it. Commit the pointer files and .gitignore with git. Unchanged files are not
/// hashed again.
///
/// Example: mlv add data/ models/model.pt
#[derive(clap::Args)]
pub struct Args {
    /// Files or directories to track.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "add")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let progress = ctx.progress();
    let report = mlv::ops::add::add(&repo, &paths, progress.as_ref())?;
    ctx.ui.json(&report);
    for a in &report.added {
        let what = match a.files {
            Some(n) => format!("{}, {}", plural(n, "file", "files"), human_bytes(a.size)),
            None => human_bytes(a.size),
        };
        let verb = if a.changed { "added" } else { "unchanged" };
        let hashed = if ctx.ui.verbose {
            format!(", {} hashed", a.hashed)
        } else {
            String::new()
        };
        ctx.ui.info(&format!("{verb} {} ({what}{hashed})", a.path));
    }
    if report.staged {
        ctx.ui.info(&format!("staged {}", report.git_paths.join(" ")));
    } else {
        super::git_add_hint(&ctx.ui, &report.git_paths);
    }
    Ok(ExitCode::SUCCESS)
}
