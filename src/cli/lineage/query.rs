//! `mlv lineage show`, `uses`, `list` and `graph`.

use std::process::ExitCode;

use mlv::lineage::filter::{value_text, Filter};
use mlv::lineage::traverse::Node;
use mlv::lineage::{ArtifactKind, LineageError};
use mlv::lock::LockMode;

use super::super::ui::Ui;
use super::super::{CliError, Ctx};
use super::{describe, key_values, shell_join};

/// Show the record that produced a version, and its upstream chain.
///
/// PATH is the version in the workspace pointer (or at --rev); a digest or a unique prefix of
/// one names a version directly. For each input, the record that produced it is shown in
/// turn, down to source data that no record produced.
///
/// Example: mlv lineage show models/model.pt --rev v1.0
#[derive(clap::Args)]
pub struct ShowArgs {
    /// A tracked path, or a digest.
    #[arg(value_name = "PATH|DIGEST")]
    target: String,
    /// The version as of this git revision.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
}

/// List every record and output downstream of a version.
///
/// Example: mlv lineage uses data/raw
#[derive(clap::Args)]
pub struct UsesArgs {
    /// A tracked path, or a digest.
    #[arg(value_name = "PATH|DIGEST")]
    target: String,
    /// The version as of this git revision.
    #[arg(long, value_name = "REV")]
    rev: Option<String>,
}

/// List the runs as a table, one column per metric.
///
/// Filters: metrics.NAME, params.NAME, tag, input, output, author, commit, command or id,
/// then =, !=, <, <=, >, >= or ~ (contains), then a value. input=PATH and output=PATH also
/// match paths inside PATH.
///
/// Example: mlv lineage list --sort metrics.auc --reverse --filter 'params.lr<0.1'
#[derive(clap::Args)]
pub struct ListArgs {
    /// Sort by metrics.NAME (or NAME), params.NAME or time. Runs without it come last.
    #[arg(long, value_name = "KEY")]
    sort: Option<String>,
    /// Sort in descending order.
    #[arg(long, short = 'r')]
    reverse: bool,
    /// Keep runs matching KEY OP VALUE. Repeatable; all must match.
    #[arg(long, value_name = "EXPR")]
    filter: Vec<String>,
}

/// Print the whole lineage graph: versions of data and the runs between them.
///
/// Example: mlv lineage graph --format dot | dot -Tsvg > lineage.svg
#[derive(clap::Args)]
pub struct GraphArgs {
    /// Output format (--json prints nodes and edges).
    #[arg(long, value_enum, default_value = "dot")]
    format: GraphFormat,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GraphFormat {
    Dot,
    Mermaid,
}

fn short(d: &mlv::hash::Digest) -> String {
    d.short(12)
}

fn kind_note(k: ArtifactKind) -> &'static str {
    match k {
        ArtifactKind::Git => " (git)",
        _ => "",
    }
}

pub fn show(ctx: &Ctx, args: ShowArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage")?;
    let lineage = super::load(&repo)?;
    let report = mlv::ops::lineage::show(&repo, &lineage, &args.target, args.rev.as_deref())?;
    if !ctx.ui.json {
        let t = &report.target;
        ctx.ui.out(&format!(
            "{} {}",
            t.path.as_deref().unwrap_or("version"),
            short(&t.digest)
        ));
        render_node(&ctx.ui, &report.produced_by, 2);
    }
    Ok(super::finish(&ctx.ui, &report, &lineage))
}

fn render_node(ui: &Ui, node: &Node, indent: usize) {
    let pad = " ".repeat(indent);
    let r = &node.record;
    ui.out(&format!("{pad}produced by {}", describe(r)));
    if let Some(c) = &r.command {
        ui.out(&format!("{pad}  command: {}", shell_join(c)));
    }
    if !r.params.is_empty() {
        ui.out(&format!(
            "{pad}  params:  {}",
            key_values(r.params.iter().map(|(k, v)| (k, value_text(v))))
        ));
    }
    if !r.metrics.is_empty() {
        ui.out(&format!(
            "{pad}  metrics: {}",
            key_values(r.metrics.iter().map(|(k, v)| (k, v.to_string())))
        ));
    }
    if !r.tags.is_empty() {
        ui.out(&format!("{pad}  tags:    {}", r.tags.join(", ")));
    }
    if let Some(id) = &r.reused {
        ui.out(&format!(
            "{pad}  reused:  run {} (outputs restored from the run cache)",
            id.get(..12).unwrap_or(id)
        ));
    }
    for id in &node.also_produced_by {
        ui.out(&format!("{pad}  also produced by run {}", &id[..12]));
    }
    for up in &node.inputs {
        let a = &up.input;
        ui.out(&format!(
            "{pad}  input {} {}{}",
            a.path,
            short(&a.digest),
            kind_note(a.kind)
        ));
        match &up.produced_by {
            Some(n) => render_node(ui, n, indent + 4),
            None if up.cycle => ui.out(&format!("{pad}    (produced by a run shown above)")),
            None => ui.out(&format!("{pad}    source: no record produced it")),
        }
    }
}

pub fn uses(ctx: &Ctx, args: UsesArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage")?;
    let lineage = super::load(&repo)?;
    let report = mlv::ops::lineage::uses(&repo, &lineage, &args.target, args.rev.as_deref())?;
    if !ctx.ui.json {
        let t = &report.target;
        if report.records.is_empty() {
            ctx.ui.info(&format!("No record used {}.", t.describe()));
        } else {
            ctx.ui.out(&format!("{} is used by:", t.describe()));
        }
        for d in &report.records {
            let pad = " ".repeat(2 * d.depth);
            let outs: Vec<String> = d
                .record
                .outputs
                .iter()
                .map(|o| format!("{} {}", o.path, short(&o.digest)))
                .collect();
            ctx.ui
                .out(&format!("{pad}{} -> {}", describe(&d.record), outs.join(", ")));
        }
        if !report.outputs.is_empty() {
            ctx.ui.out("derived outputs:");
            for o in &report.outputs {
                ctx.ui.out(&format!(
                    "  {} {}  (run {})",
                    o.output.path,
                    short(&o.output.digest),
                    &o.record[..12]
                ));
            }
        }
    }
    Ok(super::finish(&ctx.ui, &report, &lineage))
}

#[derive(serde::Serialize)]
struct ListReport<'a> {
    runs: Vec<&'a mlv::lineage::Record>,
}

pub fn list(ctx: &Ctx, args: ListArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage")?;
    let lineage = super::load(&repo)?;
    let filters: Vec<Filter> = args
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<_, LineageError>>()
        .map_err(mlv::Error::from)?;
    let runs = mlv::ops::lineage::list(&lineage, &filters, args.sort.as_deref(), args.reverse);
    if !ctx.ui.json {
        if runs.is_empty() {
            ctx.ui.info("No runs recorded (or none match).");
        } else {
            let mut metrics: Vec<String> = Vec::new();
            if let Some(s) = &args.sort {
                let m = s.strip_prefix("metrics.").unwrap_or(s);
                if !s.starts_with("params.") && s != "time" && runs.iter().any(|r| r.metrics.contains_key(m))
                {
                    metrics.push(m.to_string());
                }
            }
            for r in &runs {
                for k in r.metrics.keys() {
                    if !metrics.contains(k) {
                        metrics.push(k.clone());
                    }
                }
            }
            let mut rows = vec![["RUN", "TIME", "COMMIT", "OUTPUTS"]
                .iter()
                .map(|s| s.to_string())
                .chain(metrics.iter().cloned())
                .collect::<Vec<_>>()];
            for r in &runs {
                let mut row = vec![
                    r.short_id().to_string(),
                    r.time.clone(),
                    r.commit
                        .as_deref()
                        .map(|c| c[..c.len().min(10)].to_string())
                        .unwrap_or("-".into())
                        + if r.dirty { "+" } else { "" },
                    r.outputs
                        .iter()
                        .map(|o| o.path.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                ];
                row.extend(
                    metrics
                        .iter()
                        .map(|m| r.metrics.get(m).map(|n| n.to_string()).unwrap_or("-".into())),
                );
                rows.push(row);
            }
            super::table(&ctx.ui, &rows);
        }
    }
    Ok(super::finish(&ctx.ui, &ListReport { runs }, &lineage))
}

pub fn graph(ctx: &Ctx, args: GraphArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage")?;
    let lineage = super::load(&repo)?;
    let g = mlv::ops::lineage::graph(&lineage);
    if !ctx.ui.json {
        let text = match args.format {
            GraphFormat::Dot => g.to_dot(),
            GraphFormat::Mermaid => g.to_mermaid(),
        };
        ctx.ui.out(text.trim_end());
    }
    Ok(super::finish(&ctx.ui, &g, &lineage))
}
