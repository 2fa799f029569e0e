//! `mlv run`.

use std::process::ExitCode;

use mlv::ops::lineage::RunOutcome;

use super::lineage::RecordArgs;
use super::{CliError, Ctx};

/// Run a command and record its lineage if it succeeds.
///
/// The inputs are checked and hashed before the command starts; the command inherits the
/// terminal and environment and runs in the current directory. When it succeeds, the
/// outputs are added to mlv as `mlv add` does, the metrics and params files are read, and a
/// record is appended to .mlv/lineage.jsonl. When it fails, nothing is recorded and mlv exits
/// with 1, naming the command's exit code or signal (mlv's own codes 3, 4 and 5 are never
/// passed through). SIGTERM, SIGINT and SIGHUP sent to mlv are passed on to the command, and
/// mlv waits for it to end, then records nothing.
///
/// Run cache: when an earlier record (in the lineage file here or at the tip of any branch)
/// has the same command, inputs (paths and digests), params values, outputs and metrics files,
/// and the cache or the default remote still has its outputs, they are restored (pointers
/// written, data checked out, metrics files written back) instead of running the command, and
/// a record naming the reused run is appended. --no-run-cache always runs the command.
///
/// Example: mlv run -i data/clean -i params.yaml -o models/model.pt -m metrics.json -- python train.py
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    record: RecordArgs,
    /// Save (or update) the step as stage NAME in mlv.toml, then run it; `mlv repro` re-runs
    /// it when its inputs, params or command change. Paths are saved relative to the root.
    #[arg(short = 'n', long = "name", value_name = "NAME")]
    name: Option<String>,
    /// Run the command even when an earlier identical run could be restored.
    #[arg(long)]
    no_run_cache: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let lineage = super::lineage::load(&repo)?;
    super::lineage::report_problems(&ctx.ui, &lineage.problems, "warning");
    let mut opts = args.record.options(ctx, &repo)?;
    if let Some(name) = &args.name {
        save_stage(ctx, &repo, name, &opts, &args.command)?;
        opts.stage = Some(name.clone());
        // recorded as repro records it (only when not the root)
        let pipeline = mlv::pipeline::Pipeline::load(&repo.root).map_err(mlv::Error::from)?;
        opts.wdir = pipeline.get(name).map_err(mlv::Error::from)?.wdir.clone();
    }
    let progress = ctx.progress();
    let mut lock = || {
        let timeout = mlv::lock::timeout_of(&repo.config);
        ctx.lock_dir(&repo.mlv_dir(), timeout, mlv::lock::LockMode::Exclusive, "run")
    };
    if !args.no_run_cache {
        let runtime = || ctx.runtime().ok().map(|r| r.handle().clone());
        let restored = mlv::ops::lineage::restore(
            &repo,
            &opts,
            &args.command,
            None,
            &runtime,
            progress.as_ref(),
            &mut lock,
        )?;
        if let Some(r) = restored {
            render_restored(&ctx.ui, "", &r);
            return Ok(ExitCode::SUCCESS);
        }
    }
    match mlv::ops::lineage::run(&repo, &opts, &args.command, progress.as_ref(), &mut lock)? {
        RunOutcome::Recorded(report) => {
            super::lineage::render_record(&ctx.ui, &repo, &report);
            Ok(ExitCode::SUCCESS)
        }
        RunOutcome::Failed {
            code,
            signal,
            interrupted_by,
        } => Err(failed(code, signal, interrupted_by)),
    }
}

/// Says that outputs were restored from the run cache (the document on stdout with --json).
pub(super) fn render_restored(ui: &super::ui::Ui, prefix: &str, r: &mlv::ops::lineage::Restored) {
    ui.json(r);
    let from = &r.restored_from;
    let by = from
        .author
        .as_ref()
        .map(|a| format!(" by {}", if a.name.is_empty() { &a.email } else { &a.name }))
        .unwrap_or_default();
    let fetched = match r.downloaded {
        0 => String::new(),
        n => format!("; downloaded {}", super::ui::plural(n, "object", "objects")),
    };
    ui.info(&format!(
        "{prefix}restored from the run cache (run {}, {}{by}){fetched}; the command did not run",
        from.short_id(),
        from.time.get(..10).unwrap_or(&from.time),
    ));
    let report = &r.report;
    ui.info(&format!(
        "recorded run {} (reusing run {})",
        report.record.short_id(),
        from.short_id()
    ));
    if report.staged {
        ui.info(&format!("staged {}", report.git_paths.join(" ")));
    } else {
        super::git_add_hint(ui, &report.git_paths);
    }
}

/// The error for a failed command: always exit code 1 (as `make` and `dvc repro` do), so the
/// command's own code can never be mistaken for one of mlv's (3 integrity, 4 fsck, 5 busy);
/// the command's code or signal is in the message and in the `--json` document.
pub(super) fn failed(code: Option<i32>, signal: Option<i32>, interrupted_by: Option<i32>) -> CliError {
    use mlv::child::signal_name;
    let ended = match (code, signal) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by {}", signal_name(s)),
        (None, None) => "ended".to_string(),
    };
    let message = match interrupted_by {
        Some(s) => format!(
            "mlv run was stopped by {} (the command received it too); the command {ended}; nothing was recorded",
            signal_name(s)
        ),
        None => format!("the command {ended}; nothing was recorded"),
    };
    let mut extra = serde_json::Map::new();
    extra.insert("command_exit_code".into(), code.into());
    extra.insert("command_signal".into(), signal.map(signal_name).into());
    extra.insert("interrupted_by".into(), interrupted_by.map(signal_name).into());
    CliError {
        message,
        causes: Vec::new(),
        hint: None,
        code: super::error::code::FAILURE,
        json_extra: Some(extra),
    }
}

/// `--name`: saves the step in mlv.toml (refused if the pipeline would be invalid).
fn save_stage(
    ctx: &Ctx,
    repo: &mlv::repo::Repo,
    name: &str,
    opts: &mlv::ops::lineage::RecordOptions,
    command: &[String],
) -> Result<(), CliError> {
    if !opts.params.is_empty() || !opts.metrics.is_empty() {
        return Err(CliError::msg(
            "--name saves a stage in mlv.toml, which takes params and metrics from files only",
            Some("put the values in a params file (-p FILE) or a metrics file (-m FILE)"),
        ));
    }
    let _lock = ctx.lock(repo, mlv::lock::LockMode::Exclusive, "run")?;
    for p in &opts.params_files {
        super::stage::check_keys(repo, &p.file, &p.keys)?;
    }
    let params: Vec<String> = opts
        .params_files
        .iter()
        .map(|p| super::stage::entry(p.file.as_str(), &p.keys))
        .collect();
    let metrics: Vec<std::path::PathBuf> = opts.metrics_files.iter().map(|p| p.to_path(&repo.root)).collect();
    let inputs: Vec<std::path::PathBuf> = opts.inputs.iter().map(|p| p.to_path(&repo.root)).collect();
    let outputs: Vec<std::path::PathBuf> = opts.outputs.iter().map(|p| p.to_path(&repo.root)).collect();
    let def = super::stage::stage_def(
        ctx,
        repo,
        command.to_vec(),
        None,
        [&inputs, &outputs, &metrics],
        params,
    )?;
    let existed = mlv::pipeline::save_stage(&repo.root, name, &def).map_err(mlv::Error::from)?;
    ctx.ui.info(&format!(
        "{} stage {name} in mlv.toml",
        if existed { "updated" } else { "saved" }
    ));
    Ok(())
}
