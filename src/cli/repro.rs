//! `mlv repro`.

use std::process::ExitCode;

use mlv::ops::repro::{ReproEvent, ReproOptions, StageOutcome};

use super::{CliError, Ctx};

/// Run the pipeline stages (mlv.toml) whose inputs, params, command or outputs changed.
///
/// Stages run in dependency order, each as `mlv run` runs a command (lineage recorded); a
/// stage is checked when its turn comes, after its upstream stages ran. Unchanged stages are
/// skipped. A failed stage records nothing and stops repro (its dependants never run); with
/// --keep-going, stages that do not depend on it still run. Exits 1 if a stage failed.
///
/// One repro at a time: a second one waits for the pipeline lock (.mlv/repro.lock, up to
/// the lock timeout), then finds what the first ran up to date. `mlv status` lists the stages
/// that are out of date.
///
/// Run cache: when a changed stage's command, inputs and params match an earlier run (in the
/// lineage file here or at the tip of any branch) whose outputs the cache or the default
/// remote still has, those outputs are restored instead of running the command, and a record
/// naming the reused run is appended. --no-run-cache (or --force) always runs.
///
/// Example: mlv repro train --dry-run
#[derive(clap::Args)]
pub struct Args {
    /// Stages to reproduce, with their upstream stages (default: all).
    #[arg(value_name = "NAME")]
    names: Vec<String>,
    /// Only say what would run and why.
    #[arg(long)]
    dry_run: bool,
    /// Run the stages whether they changed or not.
    #[arg(short = 'f', long)]
    force: bool,
    /// Only the named stages, not their upstream stages.
    #[arg(short = 's', long = "single-item")]
    single: bool,
    /// After a failed stage, go on with the stages that do not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// Run the changed stages' commands even when an earlier identical run could be restored.
    #[arg(long)]
    no_run_cache: bool,
    /// Sign the records with git's SSH signing key (user.signingkey, gpg.format ssh);
    /// `[lineage] sign = true` in .mlv/config.toml signs every record.
    #[arg(long)]
    sign: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    if args.single && args.names.is_empty() {
        return Err(CliError::msg(
            "-s/--single-item needs stage names",
            Some("example: mlv repro -s train"),
        ));
    }
    let lineage = super::lineage::load(&repo)?;
    super::lineage::report_problems(&ctx.ui, &lineage.problems, "warning");
    let opts = ReproOptions {
        names: args.names,
        dry_run: args.dry_run,
        force: args.force,
        single: args.single,
        keep_going: args.keep_going,
        no_run_cache: args.no_run_cache,
        sign: args.sign,
    };
    let progress = ctx.progress();
    let mut lock = || {
        let timeout = mlv::lock::timeout_of(&repo.config);
        ctx.lock_dir(&repo.mlv_dir(), timeout, mlv::lock::LockMode::Exclusive, "repro")
    };
    let ui = &ctx.ui;
    let mut on_event = |e: ReproEvent<'_>| match e {
        ReproEvent::UpToDate(name) => ui.info(&format!("stage {name} didn't change, skipping")),
        ReproEvent::Running(name, reasons) => {
            let why: Vec<String> = reasons.iter().map(|r| r.describe()).collect();
            ui.info(&format!("running stage {name} ({})", why.join("; ")));
        }
        ReproEvent::Recorded(_, report) => super::lineage::render_record(&ui_no_json(ui), &repo, report),
        ReproEvent::Restored(name, restored) => {
            super::run::render_restored(&ui_no_json(ui), &format!("stage {name}: "), restored)
        }
    };
    // one repro at a time: a second one waits, then finds the stages the first ran up to date
    let _pipeline_lock = match opts.dry_run {
        true => None,
        false => Some(pipeline_lock(ctx, &repo)?),
    };
    let runtime = || ctx.runtime().ok().map(|r| r.handle().clone());
    let report = mlv::ops::repro::repro(
        &repo,
        &opts,
        progress.as_ref(),
        &mut lock,
        &mut on_event,
        &runtime,
    )?;
    if report.failed.is_none() {
        ctx.ui.json(&report);
    }
    if opts.dry_run {
        for s in &report.stages {
            match &s.outcome {
                StageOutcome::WouldRun {
                    reasons,
                    restore_if_remote,
                } => {
                    let why: Vec<String> = reasons.iter().map(|r| r.describe()).collect();
                    let or = match restore_if_remote {
                        Some(id) => format!(
                            " (or restore run {} if the default remote has its outputs)",
                            &id[..12.min(id.len())]
                        ),
                        None => String::new(),
                    };
                    ctx.ui
                        .out(&format!("would run {}{or}: {}", s.stage, why.join("; ")));
                }
                StageOutcome::WouldRestore { reasons, reused } => {
                    let why: Vec<String> = reasons.iter().map(|r| r.describe()).collect();
                    ctx.ui.out(&format!(
                        "would restore {} from the run cache (run {}): {}",
                        s.stage,
                        &reused[..12.min(reused.len())],
                        why.join("; ")
                    ));
                }
                StageOutcome::UpToDate => ctx.ui.out(&format!("up to date {}", s.stage)),
                _ => {}
            }
        }
    }
    if report.stages.is_empty() {
        ctx.ui.info(&format!(
            "no pipeline stages in {}: define one with `mlv stage add` or `mlv run --name`",
            mlv::pipeline::PIPELINE_FILE
        ));
    }
    for s in &report.stages {
        if let StageOutcome::Skipped { because } = &s.outcome {
            ctx.ui
                .info(&format!("stage {} not run: stage {because} failed", s.stage));
        }
    }
    let Some(failed) = &report.failed else {
        return Ok(ExitCode::SUCCESS);
    };
    let Some(StageOutcome::Failed {
        code,
        signal,
        interrupted_by,
        ..
    }) = report
        .stages
        .iter()
        .find(|s| &s.stage == failed)
        .map(|s| &s.outcome)
    else {
        return Ok(ExitCode::SUCCESS);
    };
    let mut err = super::run::failed(*code, *signal, *interrupted_by);
    err.message = format!("stage {failed}: {}", err.message);
    if let Some(extra) = err.json_extra.as_mut() {
        extra.insert(
            "stages".into(),
            serde_json::to_value(&report.stages).unwrap_or_default(),
        );
    }
    Err(err)
}

/// The pipeline lock (`.mlv/repro.lock`), held for the whole repro, apart from the repository
/// lock that recording takes and that a stage's command may take itself.
fn pipeline_lock(ctx: &Ctx, repo: &mlv::repo::Repo) -> Result<mlv::lock::RepoLock, CliError> {
    let timeout = mlv::lock::timeout_of(&repo.config);
    let req = mlv::lock::LockRequest {
        mode: mlv::lock::LockMode::Exclusive,
        command: "mlv repro".into(),
        timeout,
    };
    let ui = ctx.ui;
    let mut on_wait = |h: Option<&mlv::lock::Holder>| {
        ui.info(&format!(
            "waiting for the pipeline lock, held by {} (giving up after {} s)",
            mlv::lock::holder_text(&h.cloned()),
            timeout.as_secs()
        ));
    };
    let lock = mlv::lock::acquire_file(&repo.mlv_dir(), mlv::lock::PIPELINE_LOCK_FILE, &req, &mut on_wait)
        .map_err(mlv::Error::from)?;
    Ok(lock)
}

/// The same modes without JSON: per-stage records are part of the final report.
fn ui_no_json(ui: &super::ui::Ui) -> super::ui::Ui {
    let mut u = *ui;
    u.json = false;
    u
}
