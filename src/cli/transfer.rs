//! `mlv push`, `mlv fetch`, `mlv pull`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::checkout::CheckoutOptions;
use mlv::ops::remotes;
use mlv::ops::transfer;

use super::history::HistoryArgs;
use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Options shared by push, fetch and pull.
#[derive(clap::Args)]
pub struct TransferArgs {
    /// Tracked paths (or paths inside tracked directories); all when omitted.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The remote to use instead of the default one.
    #[arg(short, long, value_name = "NAME")]
    remote: Option<String>,
    /// Objects transferred at once (default 8 for cloud remotes, 4 for local ones).
    #[arg(short, long, value_name = "JOBS")]
    jobs: Option<usize>,
}

/// Upload the objects the remote lacks.
///
/// Decides what the remote has with as few requests as possible, re-hashes every object
/// before it leaves the cache, uploads large objects in parallel parts, and makes each object
/// visible only when complete. A second push uploads nothing.
///
/// With -a, -T, -A or --rev (combinable), also what the pointers committed in those commits
/// need (only under the PATHs given), each object once, so a checkout of an older commit can
/// be pulled; history objects the cache lacks are fine if the remote already has them.
///
/// Example: mlv push -r origin data/
#[derive(clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    t: TransferArgs,
    #[command(flatten)]
    h: HistoryArgs,
}

/// Download into the cache the objects the pointers need.
///
/// Every download is hashed while it streams and installed only if it matches its digest.
/// A path inside a tracked directory fetches only that part. With -a, -T, -A or --rev
/// (combinable), also what the pointers committed in those commits need (only under the
/// PATHs given), so they can be checked out without the remote.
///
/// Example: mlv fetch data/images/cats
#[derive(clap::Args)]
pub struct FetchArgs {
    #[command(flatten)]
    t: TransferArgs,
    #[command(flatten)]
    h: HistoryArgs,
}

/// Fetch, then check out: the workspace gets the pointers' data, verified.
///
/// Example: git clone URL repo && cd repo && mlv pull
#[derive(clap::Args)]
pub struct PullArgs {
    #[command(flatten)]
    t: TransferArgs,
    /// Overwrite or delete workspace files even if their content is not in the cache.
    #[arg(short, long)]
    force: bool,
}

pub fn run_push(ctx: &Ctx, args: PushArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    // Push only reads the cache; the shared lock keeps gc (exclusive) from removing objects
    // it is uploading.
    let _lock = ctx.lock(&repo, LockMode::Shared, "push")?;
    let paths = ctx.rel_paths(&repo, &args.t.paths)?;
    let remote = remotes::open(&repo, args.t.remote.as_deref(), args.t.jobs)?;
    let progress = ctx.progress();
    let report = ctx.runtime()?.block_on(transfer::push(
        &repo,
        &remote,
        &paths,
        &args.h.history(),
        progress.as_ref(),
    ))?;
    ctx.ui.json(&report);
    ctx.ui.info(&format!(
        "pushed {} ({}) to {}; {} already there",
        plural(report.uploaded, "object", "objects"),
        human_bytes(report.uploaded_bytes),
        report.remote,
        report.already_present
    ));
    if report.partial_manifests > 0 {
        ctx.ui.info(
            "note: only part of a tracked directory was pushed, so its manifest was not: \
             others cannot pull it until the whole directory is pushed",
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A fetch's outcome, with the repository and paths it ran on: pull checks out what the cache
/// holds even when the fetch failed.
struct Fetched {
    repo: mlv::repo::Repo,
    /// Held until the command ends (pull checks out under it).
    _lock: mlv::lock::RepoLock,
    paths: Vec<mlv::relpath::RelPath>,
    result: Result<transfer::FetchReport, CliError>,
}

fn fetch_inner(ctx: &Ctx, t: &TransferArgs, h: &HistoryArgs, command: &str) -> Result<Fetched, CliError> {
    let repo = ctx.repo()?;
    let lock = ctx.lock(&repo, LockMode::Exclusive, command)?;
    let paths = ctx.rel_paths(&repo, &t.paths)?;
    let remote = remotes::open(&repo, t.remote.as_deref(), t.jobs)?;
    let progress = ctx.progress();
    let result = ctx.runtime()?.block_on(transfer::fetch(
        &repo,
        &remote,
        &paths,
        &h.history(),
        progress.as_ref(),
    ));
    if let Ok(report) = &result {
        ctx.ui.info(&format!(
            "fetched {} ({}) from {}; {} already in the cache",
            plural(report.downloaded, "object", "objects"),
            human_bytes(report.downloaded_bytes),
            report.remote,
            report.already_present
        ));
    }
    Ok(Fetched {
        repo,
        _lock: lock,
        paths,
        result: result.map_err(CliError::from),
    })
}

pub fn run_fetch(ctx: &Ctx, args: FetchArgs) -> Result<ExitCode, CliError> {
    let report = fetch_inner(ctx, &args.t, &args.h, "fetch")?.result?;
    ctx.ui.json(&report);
    Ok(ExitCode::SUCCESS)
}

/// Fetch, then check out. When the fetch fails part-way (an object missing or damaged on the
/// remote, the remote unreachable), whatever the cache holds is still checked out, and the
/// fetch's error is what the command exits with.
pub fn run_pull(ctx: &Ctx, args: PullArgs) -> Result<ExitCode, CliError> {
    let Fetched {
        repo,
        paths,
        result: fetched,
        _lock: _held,
    } = fetch_inner(ctx, &args.t, &HistoryArgs::default(), "pull")?;
    mlv::crash_point!("pull.before_checkout");
    let progress = ctx.progress();
    let opts = CheckoutOptions { force: args.force };
    let checkout = mlv::ops::checkout::checkout(&repo, &paths, &opts, progress.as_ref());
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => {
            // the fetch's error is the one that explains a failed checkout
            let restored = checkout
                .iter()
                .flat_map(|c| &c.targets)
                .filter(|t| t.error.is_none());
            for t in restored {
                super::checkout::print_done(ctx, t);
            }
            return Err(e);
        }
    };
    let checkout = checkout?;
    ctx.ui
        .json(&serde_json::json!({ "fetch": fetched, "checkout": &checkout }));
    super::checkout::render(ctx, checkout)
}
