//! `mlv log`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::log::Change;

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Show each commit where the version of a tracked path changed.
///
/// For each commit reachable from HEAD where PATH's pointer (or, for a file tracked by git,
/// its content) changed: the commit, date, author and message, the digest, size and file
/// count, and the lineage records that mention that version.
///
/// Example: mlv log data/clean
#[derive(clap::Args)]
pub struct Args {
    /// A path tracked by mlv (or a file tracked by git).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Show at most N commits.
    #[arg(short = 'n', long, value_name = "N")]
    max_count: Option<usize>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "log")?;
    let lineage = super::lineage::load(&repo)?;
    let path = repo.user_path(&args.path).map_err(mlv::Error::from)?;
    let report = mlv::ops::log::log(&repo, &path, &lineage, args.max_count)?;
    if !ctx.ui.json {
        for (i, e) in report.entries.iter().enumerate() {
            if i > 0 {
                ctx.ui.out("");
            }
            ctx.ui.out(&ctx.ui.paint(&format!("commit {}", e.commit), "33"));
            ctx.ui.out(&format!("Author: {} <{}>", e.author, e.email));
            ctx.ui.out(&format!("Date:   {}", e.date));
            ctx.ui.out(&format!("    {}", e.message));
            let what = match (&e.version, e.change) {
                (None, _) => "deleted".to_string(),
                (Some(v), c) => {
                    let mut s = format!(
                        "{} {} {}",
                        if c == Change::Added { "added" } else { "modified" },
                        v.digest.short(12),
                        human_bytes(v.size)
                    );
                    if let Some(n) = v.files {
                        s.push_str(&format!(", {}", plural(n, "file", "files")));
                    }
                    s
                }
            };
            ctx.ui.out(&format!("    {}: {what}", report.path));
            for m in &e.records {
                ctx.ui
                    .out(&format!("    {} of run {}  {}", m.role, &m.id[..12], m.time));
            }
        }
    }
    Ok(super::lineage::finish(&ctx.ui, &report, &lineage))
}
