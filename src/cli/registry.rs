//! `mlv ls URL [PATH]`, `mlv get URL PATH`: another repository's data.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::registry::{self, EntryType, GetOptions, Here, LsOptions, Tracker};
use mlv::relpath::RelPath;

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// List what another repository tracks (with mlv and with git) at a revision.
///
/// URL is a local repository (a path, bare or not, or file://) or anything git clones (https,
/// ssh). The entries directly under PATH (the root by default), or everything below it with
/// -R, each with its size, file count and digest. A PATH inside a directory mlv tracks reads
/// its manifest from the repository's default remote. The clone is cached (in .mlv/sources
/// inside an mlv repository, else in ~/.cache/mlv/sources).
///
/// Example: mlv ls https://github.com/org/registry data --rev v2
#[derive(clap::Args)]
pub struct LsArgs {
    /// The repository.
    url: String,
    /// A path in it (the root when omitted).
    path: Option<String>,
    /// The branch, tag or commit (the repository's HEAD when omitted).
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// List everything below PATH, inside tracked directories too.
    #[arg(short = 'R', long)]
    recursive: bool,
    /// Only what mlv tracks.
    #[arg(long)]
    mlv_only: bool,
    /// Objects transferred at once with the repository's remote.
    #[arg(short, long, value_name = "JOBS")]
    jobs: Option<usize>,
}

/// Download a file or directory tracked in another repository.
///
/// PATH is data mlv tracks there (a file, a directory, or a path inside a tracked directory),
/// downloaded from that repository's default remote and verified, or a file git tracks there.
/// No repository is needed here. OUT (the path's base name by default) is written whole or not
/// at all; one that already holds other data is refused without --force, one that holds the
/// same data is left as it is. Inside an mlv repository the objects go to its cache, elsewhere
/// to a temporary cache that is removed.
///
/// Example: mlv get ../registry models/model.pt -o model.pt --rev v1
#[derive(clap::Args)]
pub struct GetArgs {
    /// The repository.
    url: String,
    /// The path in it.
    path: String,
    /// Where to write it.
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// The branch, tag or commit (the repository's HEAD when omitted).
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
    /// Replace an OUT that holds other data.
    #[arg(short, long)]
    force: bool,
    /// Objects transferred at once (default 8 for cloud remotes, 4 for local ones).
    #[arg(short, long, value_name = "JOBS")]
    jobs: Option<usize>,
}

/// A path in the source as given (`./data/` is `data`; empty or `.` is the root).
fn source_path(p: &str) -> Result<Option<RelPath>, CliError> {
    let trimmed: Vec<&str> = p.split('/').filter(|s| !s.is_empty() && *s != ".").collect();
    if trimmed.is_empty() {
        return Ok(None);
    }
    RelPath::new(&trimmed.join("/"))
        .map(Some)
        .map_err(|e| CliError::msg(format!("{p}: {e}"), None))
}

pub fn run_ls(ctx: &Ctx, args: LsArgs) -> Result<ExitCode, CliError> {
    let here = Here::new(&ctx.cwd);
    let opts = LsOptions {
        path: source_path(args.path.as_deref().unwrap_or(""))?,
        rev: args.rev,
        recursive: args.recursive,
        mlv_only: args.mlv_only,
        jobs: args.jobs,
    };
    // manifests may go to this repository's cache
    let _lock = match &here.repo {
        Some(r) => Some(ctx.lock(r, LockMode::Exclusive, "ls")?),
        None => None,
    };
    let report = registry::ls(&here, &args.url, &opts, ctx.runtime()?.handle())?;
    let base = opts.path.as_ref().map(|p| format!("{p}/"));
    for e in &report.entries {
        let shown = match &base {
            Some(b) => e.path.strip_prefix(b.as_str()).unwrap_or(&e.path),
            None => &e.path,
        };
        let slash = if e.kind == EntryType::Dir { "/" } else { "" };
        let who = match e.tracked {
            Tracker::Mlv => "mlv",
            Tracker::Git => "git",
        };
        let size = e.size.map_or_else(|| "-".to_string(), human_bytes);
        let files = e
            .files
            .map_or_else(String::new, |n| format!("  ({})", plural(n, "file", "files")));
        ctx.ui.out(&format!("{who}  {size:>10}  {shown}{slash}{files}"));
    }
    ctx.ui.json(&report);
    Ok(ExitCode::SUCCESS)
}

pub fn run_get(ctx: &Ctx, args: GetArgs) -> Result<ExitCode, CliError> {
    let here = Here::new(&ctx.cwd);
    let Some(path) = source_path(&args.path)? else {
        return Err(CliError::msg(
            format!("{}: give a path inside the repository", args.path),
            Some("`mlv ls URL` lists what it tracks"),
        ));
    };
    let opts = GetOptions {
        path,
        out: args.out,
        rev: args.rev,
        force: args.force,
        jobs: args.jobs,
    };
    let _lock = match &here.repo {
        Some(r) => Some(ctx.lock(r, LockMode::Exclusive, "get")?),
        None => None,
    };
    let progress = ctx.progress();
    let report = registry::get(
        &here,
        &args.url,
        &opts,
        ctx.runtime()?.handle(),
        progress.as_ref(),
    )?;
    if report.unchanged {
        ctx.ui.info(&format!("{}: already up to date", report.out));
    } else {
        let what = match report.kind {
            EntryType::File => human_bytes(report.bytes),
            EntryType::Dir => format!(
                "{}, {}",
                plural(report.files, "file", "files"),
                human_bytes(report.bytes)
            ),
        };
        ctx.ui.info(&format!(
            "{}: {what} from {} at {} (downloaded {})",
            report.out,
            report.url,
            &report.commit[..10],
            human_bytes(report.downloaded_bytes)
        ));
    }
    ctx.ui.json(&report);
    Ok(ExitCode::SUCCESS)
}
