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
/// with the command's exit code.
///
/// Example: mlv run -i data/clean -i params.yaml -o models/model.pt -m metrics.json -- python train.py
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    record: RecordArgs,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let lineage = super::lineage::load(&repo)?;
    super::lineage::report_problems(&ctx.ui, &lineage.problems, "warning");
    let opts = args.record.options(ctx, &repo)?;
    let progress = ctx.progress();
    let mut lock = || {
        let timeout = mlv::lock::timeout_of(&repo.config);
        ctx.lock_dir(&repo.mlv_dir(), timeout, mlv::lock::LockMode::Exclusive, "run")
    };
    match mlv::ops::lineage::run(&repo, &opts, &args.command, progress.as_ref(), &mut lock)? {
        RunOutcome::Recorded(report) => {
            super::lineage::render_record(&ctx.ui, &repo, &report);
            Ok(ExitCode::SUCCESS)
        }
        RunOutcome::Failed { code } => Err(CliError {
            message: format!("the command failed with exit code {code}; nothing was recorded"),
            causes: Vec::new(),
            hint: None,
            code: u8::try_from(code).ok().filter(|c| *c != 0).unwrap_or(1),
        }),
    }
}
