//! `mlv lineage`: record steps and query which data, parameters and commands produced what.

mod query;
mod record;
mod verify;

use std::process::ExitCode;

use serde::Serialize;

use mlv::lineage::{LineProblem, Lineage, Record};
use mlv::repo::Repo;

use super::ui::Ui;
use super::{CliError, Ctx};

pub use record::{render as render_record, RecordArgs};

/// Record and query lineage: which inputs, parameters and command produced which outputs.
///
/// Records live in .mlv/lineage.jsonl, committed with git and merged with git's union driver.
/// Every input and output is named by its digest.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv lineage record -i data/raw -o data/clean --param dedup=true\n  mlv lineage show models/model.pt\n  mlv lineage uses data/raw\n  mlv lineage list --sort metrics.auc --reverse"
)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    Record(record::Args),
    Show(query::ShowArgs),
    Uses(query::UsesArgs),
    List(query::ListArgs),
    Graph(query::GraphArgs),
    Verify(verify::VerifyArgs),
    Diff(verify::DiffArgs),
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Sub::Record(a) => record::run(ctx, a),
        Sub::Show(a) => query::show(ctx, a),
        Sub::Uses(a) => query::uses(ctx, a),
        Sub::List(a) => query::list(ctx, a),
        Sub::Graph(a) => query::graph(ctx, a),
        Sub::Verify(a) => verify::verify(ctx, a),
        Sub::Diff(a) => verify::diff(ctx, a),
    }
}

/// Loads the lineage file of `repo`.
pub fn load(repo: &Repo) -> Result<Lineage, CliError> {
    Ok(Lineage::load(&repo.root).map_err(mlv::Error::from)?)
}

/// A report together with the lines of the lineage file that could not be read.
#[derive(Serialize)]
pub struct WithProblems<'a, T: Serialize> {
    #[serde(flatten)]
    report: &'a T,
    problems: &'a [LineProblem],
}

/// Prints `report` as JSON (with the unreadable lines) and reports those lines on stderr.
/// Returns the exit code: failure when some lines could not be read.
pub fn finish<T: Serialize>(ui: &Ui, report: &T, lineage: &Lineage) -> ExitCode {
    ui.json(&WithProblems {
        report,
        problems: &lineage.problems,
    });
    if report_problems(ui, &lineage.problems, "error") {
        ExitCode::from(super::error::code::FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints one message per unreadable line; returns whether there were any.
pub fn report_problems(ui: &Ui, problems: &[LineProblem], level: &str) -> bool {
    for p in problems {
        eprintln!(
            "{}: {p}",
            ui.paint(level, if level == "error" { "1;31" } else { "33" })
        );
    }
    if !problems.is_empty() {
        eprintln!(
            "{}: the other records were read; restore the file with `git checkout -- {}` or delete the bad line(s)",
            ui.paint("hint", "36"),
            mlv::lineage::LINEAGE_FILE
        );
    }
    !problems.is_empty()
}

/// `id  time  author  commit` for a record header.
pub fn describe(r: &Record) -> String {
    let mut s = format!("run {}  {}", r.short_id(), r.time);
    if let Some(a) = &r.author {
        s.push_str(&format!("  {} <{}>", a.name, a.email));
    }
    match &r.commit {
        Some(c) => s.push_str(&format!("  commit {}", &c[..c.len().min(12)])),
        None => s.push_str("  no commit"),
    }
    if r.dirty {
        s.push_str(" (dirty)");
    }
    s
}

/// `a=1, b=x`.
pub fn key_values<'a>(items: impl Iterator<Item = (&'a String, String)>) -> String {
    items
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A command line as one shell-quoted string.
pub fn shell_join(argv: &[String]) -> String {
    argv.iter()
        .map(|a| super::shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Left-aligned columns separated by two spaces.
pub fn table(ui: &Ui, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, cell)| format!("{cell:<w$}", w = widths[i]))
            .collect();
        ui.out(line.join("  ").trim_end());
    }
}
