//! `mlv import`, `mlv update`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::import::{ImportOptions, ImportReport, Outcome};
use mlv::relpath::RelPath;

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Download data tracked in another repository, and track it here with where it came from.
///
/// PATH (a file or directory tracked by mlv in the repository at URL, a path inside a tracked
/// directory, or a file git tracks there) is downloaded from that repository's default remote
/// into the cache (verified), checked out at OUT (default: PATH's name in the current
/// directory) and gets a pointer OUT.mlv recording the URL, PATH, the revision and its commit.
/// Commit the pointer; `mlv update` later moves it to the source's newest data. URL is a local
/// path (bare or not; a relative one is recorded relative to the repository root), `file://`,
/// or anything git clones (https, ssh). Clones are cached in .mlv/sources.
///
/// Example: mlv import ../registry data/images -o images --rev v1
#[derive(clap::Args)]
pub struct ImportArgs {
    /// The source repository.
    url: String,
    /// The path in the source repository.
    path: String,
    /// Where to put the data (default: PATH's name in the current directory).
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// The source revision: a branch, tag or commit (default: its default branch).
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Replace whatever is at OUT.
    #[arg(short, long)]
    force: bool,
    /// Objects downloaded at once.
    #[arg(short, long, value_name = "JOBS")]
    jobs: Option<usize>,
}

/// Move imported data to its source's newest commit (of the recorded revision, or --rev).
///
/// For each PATH (all imported data when none), the source is fetched again; unchanged data
/// leaves the pointer untouched ("up to date"), even if the source has new commits. Otherwise
/// the new data is downloaded (verified), checked out, and the pointer records the new commit.
/// --rev makes REV the revision the pointer follows from then on. Local changes to imported
/// data are never overwritten: the update of that path fails instead.
///
/// Example: mlv update images --rev v2
#[derive(clap::Args)]
pub struct UpdateArgs {
    /// Imported paths; all imports when omitted.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The source revision to follow from now on: a branch, tag or commit.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Objects downloaded at once.
    #[arg(short, long, value_name = "JOBS")]
    jobs: Option<usize>,
}

pub fn run_import(ctx: &Ctx, args: ImportArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "import")?;
    let trimmed = args.path.trim_start_matches("./").trim_end_matches('/');
    let path = RelPath::new(trimmed).map_err(|reason| {
        mlv::Error::from(mlv::error::Refusal::BadPath {
            path: args.path.clone().into(),
            reason: mlv::error::BadPathReason::Invalid(reason),
        })
    })?;
    let out = args.out.unwrap_or_else(|| PathBuf::from(path.file_name()));
    let out = ctx.rel_paths(&repo, &[out])?.remove(0);
    let url = mlv::ops::import::recorded_url(&repo, &args.url);
    let opts = ImportOptions {
        rev: args.rev,
        force: args.force,
        jobs: args.jobs,
    };
    let progress = ctx.progress();
    let report = ctx.runtime()?.block_on(mlv::ops::import::import(
        &repo,
        &url,
        &path,
        &out,
        &opts,
        progress.as_ref(),
    ))?;
    render(ctx, &report);
    Ok(ExitCode::SUCCESS)
}

pub fn run_update(ctx: &Ctx, args: UpdateArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "update")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let opts = ImportOptions {
        rev: args.rev,
        force: false,
        jobs: args.jobs,
    };
    let progress = ctx.progress();
    let report =
        ctx.runtime()?
            .block_on(mlv::ops::import::update(&repo, &paths, &opts, progress.as_ref()))?;
    if report.imports.is_empty() && !ctx.ui.json {
        ctx.ui.info("No imported data: use `mlv import URL PATH`.");
    }
    render(ctx, &report);
    Ok(ExitCode::SUCCESS)
}

fn render(ctx: &Ctx, report: &ImportReport) {
    ctx.ui.json(report);
    for i in &report.imports {
        let what = match i.files {
            Some(n) => format!("{}, {}", plural(n, "file", "files"), human_bytes(i.size)),
            None => human_bytes(i.size),
        };
        let verb = match i.outcome {
            Outcome::Imported => "imported",
            Outcome::Updated => "updated",
            Outcome::UpToDate => "up to date:",
        };
        ctx.ui.info(&format!(
            "{verb} {} ({what}) from {}",
            i.path,
            i.source.describe()
        ));
    }
    if report.git_paths.is_empty() {
        return;
    }
    if report.staged {
        ctx.ui.info(&format!("staged {}", report.git_paths.join(" ")));
    } else {
        super::git_add_hint(&ctx.ui, &report.git_paths);
    }
}
