//! `mlv status`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::stage_status::{StageState, StageStatus};
use mlv::ops::status::{PointerStatus, State, StatusReport};

use super::history::HistoryArgs;
use super::ui::{inside, plural, Ui};
use super::{CliError, Ctx};

/// Show how tracked data in the workspace compares with its pointer files and the cache.
///
/// Each pointer is up to date, modified (files added, modified or deleted inside a
/// directory; the list with -v), missing from the workspace, or not pulled (absent from the
/// workspace and the cache: `mlv pull` brings it); "not in cache" means `mlv checkout` could
/// not restore it. Only pointers that are not up to date are listed, all with -v; imported
/// data (`mlv import`) is always listed, with where it came from: `PATH: up to date
/// (imported from URL@REV, COMMIT)`.
///
/// When mlv.toml defines pipeline stages and no paths are given, the stages `mlv repro` would
/// run follow, each with why (as `mlv repro --dry-run` says it); an invalid mlv.toml only
/// gives a warning. Exits 0 unless an error occurs; with --exit-code, exits 1 when any data
/// or stage is not up to date.
///
/// With --remote, -a, -T, -A and --rev (combinable) also check what the pointers committed in
/// those commits need; a pointer from history is listed as `PATH (at COMMIT)`.
///
/// Example: mlv status -v data/
#[derive(clap::Args)]
#[command(group = clap::ArgGroup::new("history").multiple(true)
    .args(["all_branches", "all_tags", "all_commits", "revs"]).requires("remote"))]
pub struct Args {
    /// Limit to these tracked paths (or paths inside tracked directories).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Exit with 1 when anything is not up to date or not in the cache.
    #[arg(long)]
    exit_code: bool,
    /// Instead, list what a remote lacks (the default remote, or NAME).
    #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    #[command(flatten)]
    h: HistoryArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "status")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    if let Some(name) = &args.remote {
        return run_remote(ctx, &repo, &paths, name, &args.h, args.exit_code);
    }
    let progress = ctx.progress();
    let report = mlv::ops::status::status(&repo, &paths, progress.as_ref())?;
    let mut doc = StatusDoc {
        report: &report,
        stages: None,
        pipeline_error: None,
    };
    if paths.is_empty() {
        // the stages from the states just computed; a broken mlv.toml must not hide the data
        match mlv::ops::stage_status::stage_status(&repo, &report.pointers, progress.as_ref()) {
            Ok(stages) => doc.stages = stages,
            Err(e) => {
                eprintln!(
                    "{}: {e}; pipeline stages not checked",
                    ctx.ui.paint("warning", "33")
                );
                doc.pipeline_error = Some(e.to_string());
            }
        }
    }
    ctx.ui.json(&doc);
    if !ctx.ui.json {
        if report.pointers.is_empty() {
            ctx.ui.info("No data is tracked yet: use `mlv add PATH`.");
        } else if report.clean && !ctx.ui.verbose {
            ctx.ui.info("Data is up to date.");
        }
        // imported data is always listed, saying where it came from
        for p in report.pointers.iter().filter(|p| {
            ctx.ui.verbose
                || p.state != State::UpToDate
                || !p.in_cache
                || !p.wrong_sizes.is_empty()
                || p.source.is_some()
        }) {
            print_pointer(&ctx.ui, &repo, p);
        }
        if report
            .pointers
            .iter()
            .any(|p| p.state == State::NotPulled || !p.changes.not_pulled.is_empty())
        {
            ctx.ui
                .info("(use `mlv pull` to download and check out what is not pulled)");
        }
        if let Some(stages) = &doc.stages {
            print_stages(&ctx.ui, stages);
        }
    }
    let stale = doc
        .stages
        .as_ref()
        .is_some_and(|s| s.iter().any(|s| !s.up_to_date()));
    Ok(if args.exit_code && (!report.clean || stale) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `mlv status --json`: the data's status, then the pipeline's stages (`mlv.toml`) and whether
/// each is up to date; `stages` is absent without a pipeline file, when paths were given, or
/// when the file is invalid (then `pipeline_error` says why).
#[derive(serde::Serialize)]
struct StatusDoc<'a> {
    #[serde(flatten)]
    report: &'a StatusReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<Vec<StageStatus>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pipeline_error: Option<String>,
}

fn run_remote(
    ctx: &Ctx,
    repo: &mlv::repo::Repo,
    paths: &[mlv::relpath::RelPath],
    name: &str,
    h: &HistoryArgs,
    exit_code: bool,
) -> Result<ExitCode, CliError> {
    let name = (!name.is_empty()).then_some(name);
    let remote = mlv::ops::remotes::open(repo, name, None)?;
    let report = ctx.runtime()?.block_on(mlv::ops::transfer::remote_status(
        repo,
        &remote,
        paths,
        &h.history(),
    ))?;
    ctx.ui.json(&report);
    if report.in_sync {
        ctx.ui
            .info(&format!("Everything is pushed to {}.", report.remote));
    }
    for g in &report.not_pushed {
        ctx.ui.out(&format!(
            "{}: {} not on {}",
            g.path,
            plural(g.missing, "object", "objects"),
            report.remote
        ));
        if ctx.ui.verbose {
            for p in &g.missing_paths {
                ctx.ui.out(&format!("\tnot pushed: {p}"));
            }
        }
    }
    Ok(if exit_code && !report.in_sync {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// The stages `mlv repro` would run, and why, after the data lines.
fn print_stages(ui: &Ui, stages: &[StageStatus]) {
    if stages.iter().all(StageStatus::up_to_date) {
        if !stages.is_empty() {
            ui.info("Pipeline stages are up to date.");
        }
        return;
    }
    ui.out("Pipeline stages out of date:");
    for s in stages {
        let why = match &s.state {
            StageState::UpToDate => continue,
            StageState::OutOfDate { reasons } => reasons
                .iter()
                .map(|r| r.describe())
                .collect::<Vec<_>>()
                .join("; "),
            StageState::Unknown { error } => format!("cannot tell: {error}"),
        };
        ui.out(&format!("  {}: {why}", s.stage));
    }
    ui.info("(use `mlv repro` to run them)");
}

fn print_pointer(ui: &Ui, repo: &mlv::repo::Repo, p: &PointerStatus) {
    let mut line = format!("{}: ", p.path);
    let c = &p.changes;
    let not_pulled = c.not_pulled.len() as u64;
    line.push_str(&match p.state {
        State::UpToDate => ui.paint("up to date", "32"),
        State::Missing => ui.paint("missing from the workspace", "31"),
        State::NotPulled if not_pulled == 0 => ui.paint("not pulled", "31"),
        State::NotPulled => format!(
            "{} ({})",
            ui.paint("not pulled", "31"),
            plural(not_pulled, "file", "files")
        ),
        State::Modified => {
            let n = (c.added.len() + c.modified.len() + c.deleted.len()) as u64;
            let mut s = if n == 0 {
                ui.paint("modified", "33")
            } else {
                format!(
                    "{} ({} changed)",
                    ui.paint("modified", "33"),
                    plural(n, "file", "files")
                )
            };
            if not_pulled > 0 {
                s.push_str(&format!(", {} not pulled", plural(not_pulled, "file", "files")));
            }
            s
        }
    });
    // "not pulled" already says the cache lacks those files
    let other_missing = match p.state {
        State::NotPulled if not_pulled == 0 => 0,
        _ => p.missing_besides_not_pulled(),
    };
    if other_missing > 0 {
        line.push_str(&format!(", {}", ui.paint("not in cache", "31")));
    }
    if let Some(s) = &p.source {
        line.push_str(&format!("  (imported from {})", s.describe()));
    }
    ui.out(&line);
    for w in &p.wrong_sizes {
        ui.out(&format!("\t{}: {w}", ui.paint("wrong size recorded", "31")));
    }
    if ui.verbose {
        for (label, list) in [
            ("added", &c.added),
            ("modified", &c.modified),
            ("deleted", &c.deleted),
            ("not pulled", &c.not_pulled),
        ] {
            for f in list {
                ui.out(&format!("\t{label}: {}", inside(repo, &p.data, f)));
            }
        }
    }
}
