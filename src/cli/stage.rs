//! `mlv stage`: define pipeline stages in mlv.toml without running them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use mlv::pipeline::{Pipeline, StageDef};
use mlv::repo::Repo;

use super::{CliError, Ctx};

/// Define and list pipeline stages (mlv.toml at the repository root).
///
/// A stage is a command with its inputs, outputs, params and metrics files; a stage whose
/// input is another stage's output runs after it. `mlv repro` runs the stages that changed.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv stage add prepare -i data/raw -o data/clean -- python prepare.py\n  mlv stage add train -i data/clean -p params.yaml -o model.pt -m metrics.json -- python train.py\n  mlv stage list"
)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    Add(AddArgs),
    List(ListArgs),
}

/// Save a stage in mlv.toml without running it (`mlv run --name` saves and runs).
///
/// Paths are resolved against the current directory and saved relative to the repository
/// root; the command runs in the working directory (-w, else the current directory).
///
/// Example: mlv stage add train -i data/clean -p params.yaml -o model.pt -m metrics.json -- python train.py
#[derive(clap::Args)]
struct AddArgs {
    /// The stage's name: letters, digits, `-` and `_`.
    name: String,
    /// An input: data tracked by mlv (maybe another stage's output) or a file tracked by git.
    #[arg(short = 'i', long = "input", value_name = "PATH")]
    inputs: Vec<PathBuf>,
    /// An output, added to mlv after the command succeeds.
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    outputs: Vec<PathBuf>,
    /// A params file (JSON, YAML or TOML): FILE for every value in it, or FILE:KEY,KEY for the
    /// chosen keys only (a dotted leaf like train.lr or a section like train). Repeatable.
    #[arg(short = 'p', long = "params", value_name = "FILE[:KEYS]")]
    params: Vec<String>,
    /// A metrics file (JSON, YAML or TOML).
    #[arg(short = 'm', long = "metrics", value_name = "FILE")]
    metrics: Vec<PathBuf>,
    /// The directory the command runs in (default: the current directory).
    #[arg(short = 'w', long = "wdir", value_name = "DIR")]
    wdir: Option<PathBuf>,
    /// Replace a stage of that name.
    #[arg(short = 'f', long)]
    force: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// List the stages in dependency order.
#[derive(clap::Args)]
struct ListArgs {}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Sub::Add(a) => add(ctx, a),
        Sub::List(_) => list(ctx),
    }
}

/// The `params` entries of a stage for `-p FILE[:KEYS]` arguments: the file relative to the
/// root, then the keys as given.
pub fn params_entries(ctx: &Ctx, repo: &Repo, args: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for arg in args {
        let (file, keys) = mlv::lineage::values::split_params_arg(arg, |f| ctx.cwd.join(f).exists());
        let file = ctx.rel_paths(repo, &[PathBuf::from(file)])?.remove(0);
        check_keys(repo, &file, &keys)?;
        out.push(entry(file.as_str(), &keys));
    }
    Ok(out)
}

/// Refuses, before anything is saved, a chosen key that an existing params file lacks.
pub fn check_keys(repo: &Repo, file: &mlv::relpath::RelPath, keys: &[String]) -> Result<(), CliError> {
    if !keys.is_empty() && file.to_path(&repo.root).is_file() {
        mlv::lineage::values::params_values(&file.to_path(&repo.root), &repo.display(file), keys)
            .map_err(mlv::Error::from)?;
    }
    Ok(())
}

/// A params entry: `FILE`, or `FILE:KEY,KEY`.
pub fn entry(file: &str, keys: &[String]) -> String {
    match keys.is_empty() {
        true => file.to_string(),
        false => format!("{file}:{}", keys.join(",")),
    }
}

/// The stage definition for paths given on the command line (root-relative strings); `params`
/// are entries already resolved ([`params_entries`]).
pub fn stage_def(
    ctx: &Ctx,
    repo: &Repo,
    cmd: Vec<String>,
    wdir: Option<&Path>,
    lists: [&[PathBuf]; 3],
    params: Vec<String>,
) -> Result<StageDef, CliError> {
    let strings = |paths: &[PathBuf]| -> Result<Vec<String>, CliError> {
        Ok(ctx
            .rel_paths(repo, paths)?
            .iter()
            .map(|p| p.as_str().to_string())
            .collect())
    };
    let wdir = match wdir {
        Some(w) => ctx
            .rel_paths(repo, &[w.to_path_buf()])?
            .remove(0)
            .as_str()
            .to_string(),
        None => repo
            .cwd
            .strip_prefix(&repo.root)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok(StageDef {
        cmd,
        wdir: if wdir.is_empty() { ".".into() } else { wdir },
        inputs: strings(lists[0])?,
        outputs: strings(lists[1])?,
        params,
        metrics: strings(lists[2])?,
    })
}

fn add(ctx: &Ctx, a: AddArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, mlv::lock::LockMode::Exclusive, "stage add")?;
    mlv::pipeline::check_name(&a.name).map_err(mlv::Error::from)?;
    let existing = Pipeline::load(&repo.root).map_err(mlv::Error::from)?;
    if !a.force && existing.get(&a.name).is_ok() {
        return Err(CliError::msg(
            format!("stage {} already exists in mlv.toml", a.name),
            Some("give -f/--force to replace it, or edit mlv.toml"),
        ));
    }
    let params = params_entries(ctx, &repo, &a.params)?;
    let def = stage_def(
        ctx,
        &repo,
        a.command,
        a.wdir.as_deref(),
        [&a.inputs, &a.outputs, &a.metrics],
        params,
    )?;
    let existed = mlv::pipeline::save_stage(&repo.root, &a.name, &def).map_err(mlv::Error::from)?;
    ctx.ui
        .json(&serde_json::json!({"stage": a.name, "replaced": existed, "definition": def}));
    ctx.ui.info(&format!(
        "{} stage {} in mlv.toml; `mlv repro {}` runs it",
        if existed { "replaced" } else { "added" },
        a.name,
        a.name
    ));
    Ok(ExitCode::SUCCESS)
}

fn list(ctx: &Ctx) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let pipeline = Pipeline::load(&repo.root).map_err(mlv::Error::from)?;
    ctx.ui.json(&pipeline);
    for s in &pipeline.stages {
        let after = match s.after.is_empty() {
            true => String::new(),
            false => format!("  (after {})", s.after.join(", ")),
        };
        ctx.ui.out(&format!("{}: {}{after}", s.name, s.cmd.join(" ")));
    }
    if pipeline.stages.is_empty() {
        ctx.ui
            .info("no stages; `mlv stage add NAME ... -- CMD` or `mlv run --name NAME ...` adds one");
    }
    Ok(ExitCode::SUCCESS)
}
