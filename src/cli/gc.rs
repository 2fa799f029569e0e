//! `mlv gc`.

use std::process::ExitCode;

use mlv::config::{Grace, DEFAULT_GRACE};
use mlv::lock::LockMode;
use mlv::ops::gc::{GcObject, GcOptions, GcReport, Scope};
use mlv::ops::remotes;
use mlv::remote::packed::{GcPack, PackedGcReport};

use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Remove cache (and remote) objects that no pointer in scope refers to.
///
/// Without --force this is a dry run: it lists what would be removed and the bytes freed.
///
/// Keeps what the workspace's pointers refer to, and by default what the pointers committed at
/// HEAD (of every worktree), at every stash entry and at the tip of every ref (local and
/// remote-tracking branches, tags, any other) refer to. --all-branches, --all-tags and
/// --all-commits (combinable) replace that default: the workspace, HEAD and the stash plus the
/// chosen refs (or every commit reachable from any ref); --workspace keeps only the
/// workspace's. With --remote, a scope that leaves out remote-tracking branches, stash entries
/// or other worktrees is refused: teammates may still need their data. Objects
/// younger than the grace period (`[gc] grace` in .mlv/config.toml, 4h by default) are always
/// kept, since an `mlv add` or `mlv push` may be running. With --remote, the remote (the
/// default one, or NAME) is collected too, by the same rules and its objects' last-modified time.
///
/// On a format 2 remote, gc works in two phases: a run marks the packs that hold nothing in
/// scope (and were written before the grace period), and a later run, once the mark is older
/// than the grace period by the remote's clock, deletes them (with their index entries) unless
/// they are in use again. A push that starts after a mark uploads again what it needs from
/// marked packs; a push must not take longer than the grace period. --grace 0 deletes what an
/// earlier run marked at once: only when no push is running.
///
/// Example: mlv gc --all-tags --remote --force
#[derive(clap::Args)]
pub struct Args {
    /// Keep only what the workspace's pointers refer to.
    #[arg(short, long, conflicts_with_all = ["all_branches", "all_tags", "all_commits"])]
    workspace: bool,
    /// Keep what the tip of every local and remote-tracking branch refers to.
    #[arg(short = 'a', long)]
    all_branches: bool,
    /// Keep what every tag refers to.
    #[arg(short = 'T', long)]
    all_tags: bool,
    /// Keep what any commit reachable from any ref refers to.
    #[arg(short = 'A', long)]
    all_commits: bool,
    /// Collect the remote too (the default remote, or NAME).
    #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    /// Keep objects younger than this: 0, 90 (minutes), 30m, 2h, 1d. Overrides `[gc] grace`.
    #[arg(long, value_name = "DURATION")]
    grace: Option<Grace>,
    /// On a format 2 remote, also repack packs more than half unused: copy the blobs still in
    /// use into new packs, then mark the old ones (deleted by a later gc, as unused packs are).
    #[arg(long, requires = "remote")]
    repack: bool,
    /// Only list what would be removed (the default without --force).
    #[arg(short = 'n', long, conflicts_with = "force")]
    dry_run: bool,
    /// Remove the objects.
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let mode = if args.force {
        LockMode::Exclusive
    } else {
        LockMode::Shared
    };
    let _lock = ctx.lock_only(&repo, mode, "gc")?;
    let opts = GcOptions {
        scope: scope(&args),
        grace: args.grace.or(repo.config.gc.grace).map_or(DEFAULT_GRACE, |g| g.0),
        dry_run: !args.force,
        repack: args.repack,
    };
    let remote = match &args.remote {
        Some(name) => Some(remotes::open(
            &repo,
            Some(name).filter(|n| !n.is_empty()).map(String::as_str),
            None,
        )?),
        None => None,
    };
    let mut keep = mlv::ops::gc::referenced(&repo, opts.scope)?;
    // The remote first: if it fails, the cache still holds everything it had.
    let remote_report = match &remote {
        Some(r) => Some(
            ctx.runtime()?
                .block_on(mlv::ops::gc::gc_remote(r, &mut keep, &opts))?,
        ),
        None => None,
    };
    let report = mlv::ops::gc::gc(&repo, &keep, &opts)?;
    ctx.ui.json(&serde_json::json!({
        "cache": &report,
        "remote": &remote_report,
        "removed": report.removed,
        "removed_bytes": report.removed_bytes,
        "kept": report.kept,
        "kept_recent": report.kept_recent,
        "dry_run": report.dry_run,
    }));
    render(ctx, &report, "cache");
    if let Some(r) = &remote_report {
        render(ctx, &r.report, &r.remote);
        if let Some(p) = &r.format2 {
            render_packs(ctx, p, &r.remote, report.dry_run);
        }
    }
    if report.dry_run {
        ctx.ui
            .info("dry run: nothing was removed; run `mlv gc --force` (with the same options) to remove");
    }
    Ok(ExitCode::SUCCESS)
}

/// The packs of a format 2 remote: marked now, deleted after their grace period.
fn render_packs(ctx: &Ctx, p: &PackedGcReport, place: &str, dry_run: bool) {
    if dry_run || ctx.ui.verbose {
        for GcPack { pack, size } in &p.marked {
            ctx.ui.out(&format!("{pack}  {size:>12}  {place} (pack to mark)"));
        }
        for r in &p.repacked {
            ctx.ui.out(&format!(
                "{}  {:>12}  {place} (pack to repack: {} in use)",
                r.pack,
                r.size,
                human_bytes(r.kept_bytes)
            ));
        }
        for GcPack { pack, size } in &p.deleted {
            ctx.ui
                .out(&format!("{pack}  {size:>12}  {place} (marked pack to delete)"));
        }
    }
    let (mark, delete) = match dry_run {
        true => ("would mark", "would delete"),
        false => ("marked", "deleted"),
    };
    ctx.ui.info(&format!(
        "{place}: {mark} {}; {delete} {} ({}) marked earlier; {} marked, waiting for \
         the grace period; {} in use",
        plural(p.marked.len() as u64, "unused pack", "unused packs"),
        plural(p.deleted.len() as u64, "pack", "packs"),
        human_bytes(p.deleted_bytes),
        p.waiting,
        p.live_packs
    ));
}

fn scope(args: &Args) -> Scope {
    if args.workspace {
        return Scope::WORKSPACE;
    }
    if !(args.all_branches || args.all_tags || args.all_commits) {
        return Scope::REFS;
    }
    Scope {
        head: true,
        branches: args.all_branches,
        tags: args.all_tags,
        stash: true,
        other_refs: false,
        all_commits: args.all_commits,
    }
}

fn render(ctx: &Ctx, report: &GcReport, place: &str) {
    if report.dry_run || ctx.ui.verbose {
        for GcObject { digest, size } in &report.objects {
            ctx.ui.out(&format!("{digest}  {size:>12}  {place}"));
        }
    }
    if report.dry_run || ctx.ui.verbose {
        const SHOWN: usize = 10;
        for k in report.kept_by.iter().take(SHOWN) {
            ctx.ui.info(&format!(
                "{place}: kept because of {}: {}",
                k.source,
                plural(k.objects, "object", "objects")
            ));
        }
        if report.kept_by.len() > SHOWN {
            ctx.ui.info(&format!(
                "{place}: kept because of {} more (see --json)",
                plural((report.kept_by.len() - SHOWN) as u64, "source", "sources")
            ));
        }
    }
    if report.dry_run || ctx.ui.verbose {
        for t in &report.temp {
            ctx.ui
                .out(&format!("{}  {:>12}  temporary file", t.path.display(), t.size));
        }
    }
    let verb = if report.dry_run { "would remove" } else { "removed" };
    let temp = match report.temp_files {
        0 => String::new(),
        n => format!(" and {}", plural(n, "temporary file", "temporary files")),
    };
    ctx.ui.info(&format!(
        "{place}: {verb} {} ({}){temp}; kept {} in use and {} recent",
        plural(report.removed, "object", "objects"),
        human_bytes(report.removed_bytes),
        report.kept,
        report.kept_recent
    ));
}
