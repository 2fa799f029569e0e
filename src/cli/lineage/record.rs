//! `mlv lineage record`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::lineage::{RecordOptions, RecordReport};
use mlv::repo::Repo;

use super::super::ui::{human_bytes, Ui};
use super::super::{CliError, Ctx};

/// Inputs, outputs, metrics, params and tags of a record (shared by `mlv run`).
#[derive(clap::Args)]
pub struct RecordArgs {
    /// An input: data tracked by mlv, or a small file tracked by git. Repeatable.
    #[arg(short = 'i', long = "input", value_name = "PATH")]
    inputs: Vec<PathBuf>,
    /// An output; added to mlv (hashed, cached, pointer written) as `mlv add` does. Repeatable.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    outputs: Vec<PathBuf>,
    /// A metrics file (JSON, YAML or TOML by extension); nested names are flattened to
    /// dotted names and every value must be a number. Repeatable.
    #[arg(short = 'm', long = "metrics", value_name = "FILE")]
    metrics_files: Vec<PathBuf>,
    /// A params file (JSON, YAML or TOML), flattened to dotted names; FILE:KEY,KEY records
    /// only the keys chosen (a key may name a section: params.yaml:train). Repeatable.
    #[arg(short = 'p', long = "params", value_name = "FILE[:KEYS]")]
    params_files: Vec<String>,
    /// A metric, NAME=NUMBER. Repeatable.
    #[arg(long = "metric", value_name = "NAME=NUMBER")]
    metrics: Vec<String>,
    /// A parameter, NAME=VALUE (true, false, null and numbers are typed). Repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// A tag. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// Sign the record with git's SSH signing key (user.signingkey, gpg.format ssh), as
    /// `git commit -S` signs; `[lineage] sign = true` in .mlv/config.toml signs every record.
    #[arg(long)]
    sign: bool,
}

impl RecordArgs {
    /// The library's options, with paths resolved against the repository.
    pub fn options(self, ctx: &Ctx, repo: &Repo) -> Result<RecordOptions, CliError> {
        if self.inputs.is_empty() && self.outputs.is_empty() {
            return Err(CliError::msg(
                "nothing to record: give inputs (-i) or outputs (-o)",
                Some("example: mlv lineage record -i data/raw -o data/clean"),
            ));
        }
        let mut params_files = Vec::new();
        for arg in &self.params_files {
            let (file, keys) = mlv::lineage::values::split_params_arg(arg, |f| ctx.cwd.join(f).exists());
            let file = ctx.rel_paths(repo, &[PathBuf::from(file)])?.remove(0);
            params_files.push(mlv::ops::lineage::ParamsSpec { file, keys });
        }
        Ok(RecordOptions {
            inputs: ctx.rel_paths(repo, &self.inputs)?,
            outputs: ctx.rel_paths(repo, &self.outputs)?,
            metrics_files: ctx.rel_paths(repo, &self.metrics_files)?,
            params_files,
            metrics: self.metrics,
            params: self.params,
            tags: self.tags,
            stage: None,
            wdir: None,
            sign: self.sign,
        })
    }
}

/// Record a step that ran elsewhere: its inputs, outputs, params and metrics.
///
/// Inputs must be tracked by mlv (the version in the pointer, which the workspace must
/// match) or be files tracked by git (the digest of their content). Outputs not tracked yet
/// are added as `mlv add` would. Commit the pointer files and .mlv/lineage.jsonl with git.
///
/// Example: mlv lineage record -i data/raw -o data/clean --param dedup=true
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    record: RecordArgs,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "lineage record")?;
    let lineage = super::load(&repo)?;
    super::report_problems(&ctx.ui, &lineage.problems, "warning");
    let opts = args.record.options(ctx, &repo)?;
    let progress = ctx.progress();
    let report = mlv::ops::lineage::record(&repo, &opts, progress.as_ref())?;
    render(&ctx.ui, &repo, &report);
    Ok(ExitCode::SUCCESS)
}

/// Prints what was recorded (JSON on stdout, messages on stderr).
pub fn render(ui: &Ui, repo: &Repo, report: &RecordReport) {
    let _ = repo;
    ui.json(report);
    for a in &report.added {
        if a.changed {
            ui.info(&format!("added {} ({})", a.path, human_bytes(a.size)));
        }
    }
    let r = &report.record;
    let names = |list: &[mlv::lineage::Artifact]| {
        list.iter()
            .map(|a| a.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    ui.info(&format!(
        "recorded run {}: {} -> {}",
        r.short_id(),
        if r.inputs.is_empty() {
            "(no inputs)".into()
        } else {
            names(&r.inputs)
        },
        if r.outputs.is_empty() {
            "(no outputs)".into()
        } else {
            names(&r.outputs)
        },
    ));
    if report.staged {
        ui.info(&format!("staged {}", report.git_paths.join(" ")));
    } else {
        super::super::git_add_hint(ui, &report.git_paths);
    }
}
