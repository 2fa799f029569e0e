//! `mlv model`: the model registry (versions and stages as GTO-compatible git tags).

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::model::{parse_spec, Bump, Version};
use mlv::ops::model::{self, RegisterOptions};

use super::ui::{human_bytes, Ui};
use super::{CliError, Ctx};

/// Register models, promote versions to stages, and read the registry.
///
/// Versions are annotated git tags NAME@vX.Y.Z on the commit that holds the model's pointer;
/// stage assignments are tags NAME#STAGE#N, the newest winning (an unassigned or deregistered
/// version gives the stage back to the one assigned before it). These are GTO's (DVC's
/// registry) formats: a registry made by either tool reads in the other. Share them with
/// `git push --tags`; clones get them with `git fetch --tags`. See docs/registry.md.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv model register churn models/churn.pkl --bump minor\n  mlv model promote churn 0.1.0 production\n  mlv model list\n  mlv model show churn#production\n  mlv model get churn@1.0.0 -o churn.pkl"
)]
pub struct Args {
    #[command(subcommand)]
    command: Sub,
}

#[derive(clap::Subcommand)]
enum Sub {
    Register(RegisterArgs),
    Promote(PromoteArgs),
    List(ListArgs),
    Show(ShowArgs),
    Get(GetArgs),
}

/// Register the data at PATH, as committed at HEAD, as a new version of model NAME.
///
/// PATH must be tracked by an mlv pointer committed at HEAD, unchanged since. Makes the
/// annotated tag NAME@vX.Y.Z on HEAD; its message records the path, digest and size. The
/// version is 0.0.1 for a new model, else the greatest one with its patch raised (or --bump's
/// part). An existing version is refused. GTO learns the path from artifacts.yaml at the tagged
/// commit, which this does not write: add `NAME: {type: model, path: PATH}` to it and commit it
/// before registering if you use GTO too.
///
/// Example: mlv model register churn models/churn.pkl --version 1.0.0
#[derive(clap::Args)]
#[command(disable_version_flag = true)]
pub struct RegisterArgs {
    /// The model name: lowercase letters, digits, `-` and `/` (GTO's rule).
    name: String,
    /// The tracked file or directory.
    path: PathBuf,
    /// The version (X.Y.Z or vX.Y.Z).
    #[arg(long, value_name = "X.Y.Z", conflicts_with = "bump")]
    version: Option<String>,
    /// Raise this part of the greatest version.
    #[arg(long, value_enum)]
    bump: Option<BumpArg>,
    /// The tag message (instead of GTO's "Registering artifact NAME version vX.Y.Z").
    #[arg(short, long, value_name = "MSG")]
    message: Option<String>,
    /// Sign the tag (`git tag -s`, with git's signing config); `[lineage] sign = true` signs
    /// every tag.
    #[arg(long)]
    sign: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum BumpArg {
    Major,
    Minor,
    Patch,
}

/// Promote VERSION of NAME to STAGE (e.g. staging, production).
///
/// Makes the annotated tag NAME#STAGE#N on the version's commit. A stage holds one version:
/// the newest assignment wins.
///
/// Example: mlv model promote churn 1.0.0 production
#[derive(clap::Args)]
#[command(disable_version_flag = true)]
pub struct PromoteArgs {
    /// The model.
    name: String,
    /// A registered version (X.Y.Z or vX.Y.Z).
    version: String,
    /// The stage: lowercase letters, digits and `-`.
    stage: String,
    /// The tag message (instead of GTO's "Assigning stage ...").
    #[arg(short, long, value_name = "MSG")]
    message: Option<String>,
    /// Sign the tag (`git tag -s`, with git's signing config); `[lineage] sign = true` signs
    /// every tag.
    #[arg(long)]
    sign: bool,
}

/// List the models: the latest version and the version in each stage.
///
/// Example: mlv model list --json
#[derive(clap::Args)]
pub struct ListArgs {}

/// Show one version: path, digest, size, who registered it and when, its stages, the model's
/// stage history, and the lineage record that produced it with its metrics.
///
/// NAME alone is the latest version; NAME@1.0.0 (or NAME@v1.0.0) one version; NAME#STAGE the
/// version in a stage. Exits 3 when the version's tag does not match its commit.
///
/// Example: mlv model show churn#production
#[derive(clap::Args)]
pub struct ShowArgs {
    /// NAME, NAME@VERSION or NAME#STAGE.
    #[arg(value_name = "NAME[@VERSION|#STAGE]")]
    spec: String,
}

/// Write a version's bytes to OUT, from the cache or else the default remote, verified.
///
/// OUT defaults to the model's file name in the current directory; an existing directory
/// receives the file under that name. It is written whole, then renamed into place.
///
/// Example: mlv model get churn#production -o /srv/churn.pkl
#[derive(clap::Args)]
pub struct GetArgs {
    /// NAME, NAME@VERSION or NAME#STAGE.
    #[arg(value_name = "NAME[@VERSION|#STAGE]")]
    spec: String,
    /// Where to write it.
    #[arg(short, long, value_name = "OUT")]
    out: Option<PathBuf>,
    /// Replace an existing OUT.
    #[arg(short, long)]
    force: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    match args.command {
        Sub::Register(a) => register(ctx, a),
        Sub::Promote(a) => promote(ctx, a),
        Sub::List(_) => list(ctx),
        Sub::Show(a) => show(ctx, a),
        Sub::Get(a) => get(ctx, a),
    }
}

fn version_arg(v: &str) -> Result<Version, CliError> {
    Ok(Version::parse(v).map_err(mlv::Error::from)?)
}

fn register(ctx: &Ctx, a: RegisterArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let path = ctx.rel_paths(&repo, std::slice::from_ref(&a.path))?.remove(0);
    let opts = RegisterOptions {
        name: a.name,
        path,
        version: a.version.as_deref().map(version_arg).transpose()?,
        bump: a.bump.map(|b| match b {
            BumpArg::Major => Bump::Major,
            BumpArg::Minor => Bump::Minor,
            BumpArg::Patch => Bump::Patch,
        }),
        message: a.message,
        sign: a.sign,
    };
    let r = model::register(&repo, &opts)?;
    ctx.ui
        .out(&format!("{}  {}  {}", r.tag, &r.commit[..12], r.digest));
    ctx.ui.info(&format!(
        "registered {} {} ({}, {}); share it with: git push origin {}",
        r.name,
        r.version,
        r.path,
        human_bytes(r.size),
        r.tag
    ));
    ctx.ui.json(&r);
    Ok(ExitCode::SUCCESS)
}

fn promote(ctx: &Ctx, a: PromoteArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let version = version_arg(&a.version)?;
    let r = model::promote(&repo, &a.name, &version, &a.stage, a.message.as_deref(), a.sign)?;
    ctx.ui.out(&format!("{}  {}", r.tag, r.version));
    let was = r
        .previous
        .as_deref()
        .map(|p| format!(" (was {p})"))
        .unwrap_or_default();
    ctx.ui.info(&format!(
        "{} {} is in stage {}{was}; share it with: git push origin {}",
        r.name, r.version, r.stage, r.tag
    ));
    ctx.ui.json(&r);
    Ok(ExitCode::SUCCESS)
}

fn warn(ui: &Ui, problems: &[String]) {
    for p in problems {
        ui.info(&format!("warning: {p}"));
    }
}

fn list(ctx: &Ctx) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let reg = model::load(&repo)?;
    let stages: std::collections::BTreeSet<&String> =
        reg.models.iter().flat_map(|m| m.stages.keys()).collect();
    if !reg.models.is_empty() {
        let mut head = format!("{:<24} {:<12}", "MODEL", "LATEST");
        for s in &stages {
            head.push_str(&format!(" {s:<12}"));
        }
        ctx.ui.out(head.trim_end());
    }
    for m in &reg.models {
        let name = if m.deprecated {
            format!("{} (deprecated)", m.name)
        } else {
            m.name.clone()
        };
        let mut line = format!("{name:<24} {:<12}", m.latest.as_deref().unwrap_or("-"));
        for s in &stages {
            line.push_str(&format!(" {:<12}", m.stages.get(*s).map_or("-", String::as_str)));
        }
        ctx.ui.out(line.trim_end());
    }
    for m in &reg.models {
        warn(&ctx.ui, &m.problems);
        for v in &m.versions {
            warn(
                &ctx.ui,
                &v.problems
                    .iter()
                    .map(|p| format!("{}: {p}", v.tag))
                    .collect::<Vec<_>>(),
            );
        }
    }
    if reg.models.is_empty() {
        ctx.ui.info("no models registered (mlv model register NAME PATH)");
    }
    ctx.ui.json(&reg);
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, a: ShowArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "model show")?;
    let r = model::show(&repo, &a.spec)?;
    let v = &r.version;
    let ui = &ctx.ui;
    ui.out(&format!("{} {}", r.name, v.version));
    ui.out(&format!("  tag:        {}", v.tag));
    ui.out(&format!("  commit:     {}", v.commit));
    ui.out(&format!(
        "  path:       {}",
        v.path.as_deref().unwrap_or("(unknown)")
    ));
    if let (Some(d), Some(s)) = (&v.digest, v.size) {
        ui.out(&format!("  digest:     {d}"));
        ui.out(&format!("  size:       {} ({s} bytes)", human_bytes(s)));
    }
    let by = v
        .registered_by
        .as_ref()
        .map(|p| format!("{} <{}>", p.name, p.email))
        .unwrap_or_else(|| "(unknown)".into());
    ui.out(&format!("  registered: {} by {by}", v.registered_at));
    let stages = if r.stages.is_empty() {
        "-".to_string()
    } else {
        r.stages.join(", ")
    };
    ui.out(&format!("  stages:     {stages}"));
    if !r.metrics.is_empty() {
        let m: Vec<String> = r.metrics.iter().map(|(k, v)| format!("{k}={v}")).collect();
        ui.out(&format!("  metrics:    {}", m.join(" ")));
    }
    if let Some(node) = &r.lineage {
        ui.out(&format!("  produced by: record {}", node.record.short_id()));
        for i in &node.inputs {
            let from = i
                .produced_by
                .as_ref()
                .map(|n| format!(" (from record {})", n.record.short_id()))
                .unwrap_or_default();
            ui.out(&format!("    input {} {}{from}", i.input.path, i.input.digest));
        }
    }
    if !r.history.is_empty() {
        ui.out("  stage history:");
        for h in &r.history {
            let by = h.by.as_ref().map(|p| p.name.as_str()).unwrap_or("?");
            ui.out(&format!(
                "    {}  {} {} {} by {by}",
                h.at, h.action, h.stage, h.version
            ));
        }
    }
    ui.json(&r);
    if v.problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    warn(
        ui,
        &v.problems
            .iter()
            .map(|p| format!("{}: {p}", v.tag))
            .collect::<Vec<_>>(),
    );
    Ok(ExitCode::from(super::error::code::INTEGRITY))
}

fn get(ctx: &Ctx, a: GetArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    parse_spec(&a.spec).map_err(mlv::Error::from)?;
    let _lock = ctx.lock(&repo, LockMode::Exclusive, "model get")?;
    let out = match a.out {
        Some(o) => o,
        None => PathBuf::from(model::default_out(&repo, &a.spec)?),
    };
    let abs = ctx.cwd.join(&out);
    let objects = ctx.objects(&repo)?;
    let progress = ctx.progress();
    let shown = out.display().to_string();
    let r = model::get(
        &repo,
        &a.spec,
        &abs,
        &shown,
        a.force,
        objects.as_ref(),
        progress.as_ref(),
    )?;
    ctx.ui.out(&r.out);
    let from = if r.downloaded { "the remote" } else { "the cache" };
    ctx.ui.info(&format!(
        "{} {} ({}, {}) written to {} from {from}, verified",
        r.name,
        r.version,
        r.path,
        human_bytes(r.size),
        r.out
    ));
    ctx.ui.json(&r);
    Ok(ExitCode::SUCCESS)
}
