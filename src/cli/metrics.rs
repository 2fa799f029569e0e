//! `mlv metrics show`, `mlv metrics diff` and `mlv params diff`.

use std::process::ExitCode;

use serde_json::Value;

use mlv::ops::metrics::{DiffReport, Kind, ShowReport};
use mlv::relpath::RelPath;
use mlv::repo::Repo;

use super::ui::Ui;
use super::{CliError, Ctx};

/// Show and compare the metrics files that runs recorded (-m FILE), across git revisions.
///
/// The files are those named by the records of .mlv/lineage.jsonl on each side compared;
/// at a revision they are read from git, in the workspace from disk. Nested names are
/// flattened to dotted names as lineage records them.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv metrics show\n  mlv metrics show --rev HEAD~1 --rev v1.0\n  mlv metrics diff\n  mlv metrics diff main --md"
)]
pub struct MetricsArgs {
    #[command(subcommand)]
    command: MetricsSub,
}

#[derive(clap::Subcommand)]
enum MetricsSub {
    Show(ShowArgs),
    Diff(DiffArgs),
}

/// Compare the params files that runs recorded (-p FILE[:KEYS]) between two revisions.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  mlv params diff\n  mlv params diff v1.0 HEAD --all")]
pub struct ParamsArgs {
    #[command(subcommand)]
    command: ParamsSub,
}

#[derive(clap::Subcommand)]
enum ParamsSub {
    Diff(DiffArgs),
}

/// Print the metrics of the workspace (and of revisions) as a table: path, key, value per
/// revision.
///
/// Example: mlv metrics show --rev HEAD~1
#[derive(clap::Args)]
pub struct ShowArgs {
    /// Also show the metrics committed at this git revision. Repeatable.
    #[arg(long = "rev", value_name = "REV")]
    revs: Vec<String>,
    /// Print a Markdown table (to paste into a pull request).
    #[arg(long)]
    md: bool,
}

/// Compare two revisions key by key: old, new and the numeric change.
///
/// With no revision: HEAD against the workspace; with one: that revision against the
/// workspace (as `dvc metrics diff` and `dvc params diff` do).
///
/// Example: mlv metrics diff main --md
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The old side (default HEAD).
    #[arg(value_name = "REV1")]
    old: Option<String>,
    /// The new side (default: the workspace).
    #[arg(value_name = "REV2")]
    new: Option<String>,
    /// Also show the keys that did not change.
    #[arg(long)]
    all: bool,
    /// Print a Markdown table (to paste into a pull request).
    #[arg(long)]
    md: bool,
}

pub fn metrics(ctx: &Ctx, args: MetricsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        MetricsSub::Show(a) => show(ctx, a),
        MetricsSub::Diff(a) => diff(ctx, a, Kind::Metrics),
    }
}

pub fn params(ctx: &Ctx, args: ParamsArgs) -> Result<ExitCode, CliError> {
    match args.command {
        ParamsSub::Diff(a) => diff(ctx, a, Kind::Params),
    }
}

fn show(ctx: &Ctx, args: ShowArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, mlv::lock::LockMode::Shared, "metrics show")?;
    let report = mlv::ops::metrics::show(&repo, &args.revs)?;
    ctx.ui.json(&report);
    render_show(&ctx.ui, &repo, &report, args.md);
    Ok(ExitCode::SUCCESS)
}

fn diff(ctx: &Ctx, args: DiffArgs, kind: Kind) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, mlv::lock::LockMode::Shared, "metrics/params diff")?;
    let old = args.old.as_deref().unwrap_or("HEAD");
    let report = mlv::ops::metrics::diff(&repo, kind, Some(old), args.new.as_deref(), args.all)?;
    ctx.ui.json(&report);
    render_diff(&ctx.ui, &repo, &report, args.md, kind);
    Ok(ExitCode::SUCCESS)
}

fn warn_problems(ui: &Ui, problems: &[String]) {
    for p in problems {
        eprintln!("{}: {p}", ui.paint("warning", "33"));
    }
}

/// A work-tree path as the user sees it: relative to the current directory (JSON keeps the
/// work-tree path).
fn shown(repo: &Repo, path: &str) -> String {
    match RelPath::new(path) {
        Ok(rel) => repo.display(&rel),
        Err(_) => path.to_string(),
    }
}

fn render_show(ui: &Ui, repo: &Repo, report: &ShowReport, md: bool) {
    warn_problems(ui, &report.problems);
    if report.rows.is_empty() {
        ui.info("no metrics: record a metrics file with `mlv run -m FILE -- COMMAND` (or `mlv lineage record -m FILE`)");
        return;
    }
    let mut rows = vec![["Path", "Key"]
        .iter()
        .map(|s| s.to_string())
        .chain(report.revs.iter().cloned())
        .collect::<Vec<_>>()];
    for r in &report.rows {
        let mut row = vec![shown(repo, &r.path), r.key.clone()];
        row.extend(r.values.iter().map(cell));
        rows.push(row);
    }
    print_table(ui, &rows, md);
}

fn render_diff(ui: &Ui, repo: &Repo, report: &DiffReport, md: bool, kind: Kind) {
    warn_problems(ui, &report.problems);
    let what = match kind {
        Kind::Metrics => "metrics",
        Kind::Params => "params",
    };
    if report.rows.is_empty() {
        ui.info(&format!(
            "no {what} changed between {} and {}",
            report.old, report.new
        ));
        return;
    }
    // a change column only when some value on both sides is a number
    let numeric = report.rows.iter().any(|r| r.change.is_some());
    let mut header = vec![
        "Path".to_string(),
        "Key".to_string(),
        report.old.clone(),
        report.new.clone(),
    ];
    if numeric {
        header.push("Change".into());
    }
    let mut rows = vec![header];
    for r in &report.rows {
        let mut row = vec![shown(repo, &r.path), r.key.clone(), cell(&r.old), cell(&r.new)];
        if numeric {
            row.push(r.change.map(change).unwrap_or_else(|| "-".into()));
        }
        rows.push(row);
    }
    print_table(ui, &rows, md);
}

/// A value as shown in a table: strings bare, the rest as JSON, `-` when absent.
fn cell(v: &Option<Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A numeric change with its sign.
fn change(d: f64) -> String {
    if d > 0.0 {
        format!("+{d}")
    } else {
        format!("{d}")
    }
}

fn print_table(ui: &Ui, rows: &[Vec<String>], md: bool) {
    if !md {
        super::lineage::table(ui, rows);
        return;
    }
    let line = |r: &Vec<String>| {
        let cells: Vec<String> = r.iter().map(|c| c.replace('|', "\\|")).collect();
        format!("| {} |", cells.join(" | "))
    };
    ui.out(&line(&rows[0]));
    ui.out(&format!("|{}", "---|".repeat(rows[0].len())));
    for r in &rows[1..] {
        ui.out(&line(r));
    }
}
