//! `mlv import-dvc`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::import_dvc::{ImportDvcOptions, SkipKind, Source, StageOutcome, Tree};
use mlv::relpath::RelPath;

use super::ui::human_bytes;
use super::{CliError, Ctx};

/// Convert a DVC repository (.dvc files, dvc.yaml stages, dvc.lock records) to mlv.
///
/// Every .dvc file (a file, or a directory with its .dir manifest) becomes an mlv pointer beside
/// the data, with blake3 digests. The bytes come from the workspace when they match the md5 DVC
/// recorded, else from DVC's local cache (`cache.dir`, else .dvc/cache; the 3.x and the 2.x
/// layouts), else from the DVC remote (the output's own `remote:`, else --remote, else DVC's
/// default), each checked against DVC's md5 first. A path whose bytes do not match (a damaged DVC cache, or data changed since
/// `dvc commit`), or whose .dvc file has an unknown field or a hostile path, is reported and
/// nothing is imported for it; the others still are, and the command exits non-zero at the end
/// (3 when DVC's cache or remote held damaged bytes). Data in none of these is reported as not
/// available.
///
/// DVC's remotes (.dvc/config and .dvc/config.local) become mlv remotes of the same name at
/// the sub-prefix `mlv/` of the same location (so mlv never writes, and `mlv gc --remote` never
/// lists, DVC's objects), with DVC's options mapped to mlv's (options mlv lacks are reported);
/// credentials go only to .mlv/config.local.toml and are never printed. DVC's default becomes
/// mlv's if mlv has none; a name another mlv remote already has is reported, not overwritten. DVC's .gitignore entries give way
/// to mlv's; the .dvc files are removed from the index and work tree (git rm) unless --keep-dvc;
/// the user commits.
///
/// Every output in dvc.lock becomes a pointer the same way. The stages of every dvc.yaml become
/// stages of mlv.toml (commands run through `sh -c`; paths rebased to the repository root; a
/// dvc.yaml in a subdirectory gives stages named DIR-NAME); each stage of dvc.lock becomes a
/// lineage record (tagged dvc-import) with the new digests, params values and command, so `mlv
/// lineage show` and `mlv repro` work at once. Stages mlv cannot express (foreach/matrix,
/// templating, frozen, always_changed, persist or `cache: false` outputs, plots) are reported
/// and not converted. A stage name mlv.toml already has with another definition is reported
/// and left alone. dvc.lock is removed (git rm) unless --keep-dvc; dvc.yaml is kept. Runs `mlv
/// init` when needed. Running it again changes nothing.
///
/// Example: mlv import-dvc --dry-run && mlv import-dvc && git commit -m "Move from DVC to mlv"
#[derive(clap::Args)]
pub struct Args {
    /// Only these .dvc files, or the .dvc files and dvc.lock stages whose outputs are within
    /// these paths, and the dvc.yaml files within them (default: the whole work tree).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// List what would be converted and from where; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Leave the .dvc files and dvc.lock in place (both tools work during a transition).
    #[arg(long)]
    keep_dvc: bool,
    /// The DVC remote (a name in .dvc/config) to read outputs that name none from, instead of
    /// DVC's default.
    #[arg(short = 'r', long, value_name = "NAME")]
    remote: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    if !args.dry_run {
        // refusals first: nothing changes, not even `mlv init`
        if let Ok((_git, root)) = ctx
            .cwd
            .canonicalize()
            .map_err(drop)
            .and_then(|cwd| mlv::repo::discover_git(&cwd).map_err(drop))
        {
            mlv::ops::import_dvc::config::preflight(&root, args.remote.as_deref())?;
        }
        // `mlv init` first when needed (idempotent)
        let mut lock = |mlv_dir: &std::path::Path| {
            let timeout = mlv::config::load(mlv_dir)
                .map(|c| mlv::lock::timeout_of(&c))
                .unwrap_or(mlv::lock::DEFAULT_TIMEOUT);
            ctx.lock_dir(mlv_dir, timeout, LockMode::Exclusive, "import-dvc")
        };
        let init = mlv::ops::init::init(&ctx.cwd, &mut lock)?;
        if !init.already {
            ctx.ui.info(&format!("Initialized mlv in {}/.mlv", init.root));
        }
    }
    let report = if args.dry_run {
        // Changes nothing, not even `mlv init`: plans from the git work tree alone.
        let (tree, paths) = dry_run_tree(ctx, &args.paths)?;
        let options = ImportDvcOptions {
            paths,
            dry_run: true,
            keep_dvc: args.keep_dvc,
            remote: args.remote.clone(),
            runtime: Some(ctx.runtime()?.handle().clone()),
        };
        mlv::ops::import_dvc::dry_run(&tree, &options)?
    } else {
        let repo = ctx.repo()?;
        let _lock = ctx.lock(&repo, LockMode::Exclusive, "import-dvc")?;
        let options = ImportDvcOptions {
            paths: ctx.rel_paths(&repo, &args.paths)?,
            dry_run: false,
            keep_dvc: args.keep_dvc,
            remote: args.remote.clone(),
            runtime: Some(ctx.runtime()?.handle().clone()),
        };
        let progress = ctx.progress();
        mlv::ops::import_dvc::import_dvc(&repo, &options, progress.as_ref())?
    };
    ctx.ui.json(&report);
    let verb = if report.dry_run {
        "would import"
    } else {
        "imported"
    };
    for c in &report.converted {
        let from = match c.source {
            Source::Workspace => "workspace",
            Source::DvcCache => "DVC cache",
            Source::DvcRemote => "DVC remote",
        };
        let line = format!(
            "{verb} {} ({}, {} from the workspace, {} from the DVC cache, {} from the DVC remote; from {})",
            c.path,
            c.kind,
            human_bytes(c.bytes_from_workspace),
            human_bytes(c.bytes_from_dvc_cache),
            human_bytes(c.bytes_from_dvc_remote),
            c.dvc_file
        );
        if report.dry_run {
            ctx.ui
                .out(&format!("{}\t{}\t{from}\t{}", c.path, c.kind, c.dvc_file));
        } else {
            ctx.ui.info(&line);
            let _ = from;
        }
    }
    for s in &report.stages {
        let what = match (report.dry_run, s.outcome) {
            (_, StageOutcome::AlreadyThere) => "stage already in mlv.toml",
            (true, StageOutcome::Added) => "would add stage",
            (false, StageOutcome::Added) => "added stage",
        };
        if report.dry_run {
            ctx.ui.out(&format!("stage {}\t{}", s.name, s.dvc_stage));
        } else {
            ctx.ui.info(&format!("{what} {} (from {})", s.name, s.dvc_stage));
        }
    }
    for r in &report.records {
        let stage = r.stage.as_deref().unwrap_or("-");
        if report.dry_run {
            ctx.ui.out(&format!("record {stage}\t{}", r.dvc_stage));
        } else if r.written {
            ctx.ui.info(&format!(
                "recorded {} (stage {stage}, from {})",
                r.id.as_deref().unwrap_or(""),
                r.dvc_stage
            ));
        }
        for why in &r.stale {
            ctx.ui
                .info(&format!("note: {}: {why} (mlv repro will run it)", r.dvc_stage));
        }
    }
    for r in &report.remotes {
        let mut line = match r.outcome {
            "added" | "exists" => format!(
                "{} DVC remote `{}` ({}) as mlv remote `{}` at {}{}",
                match (report.dry_run, r.outcome) {
                    (true, _) => "would convert",
                    (false, "added") => "converted",
                    _ => "already converted",
                },
                r.name,
                r.dvc_url,
                r.name,
                r.mlv_url.as_deref().unwrap_or_default(),
                if r.default { " (default)" } else { "" }
            ),
            _ => format!(
                "DVC remote `{}` ({}) not converted: {}",
                r.name,
                r.dvc_url,
                r.reason.as_deref().unwrap_or_default()
            ),
        };
        if !r.local_options.is_empty() {
            line += &format!("; in .mlv/config.local.toml only: {}", r.local_options.join(", "));
        }
        if !r.not_converted.is_empty() {
            line += &format!(
                "; DVC options mlv has no equivalent for: {}",
                r.not_converted.join(", ")
            );
        }
        ctx.ui.info(&line);
    }
    for s in &report.skipped {
        let what = s.path.as_deref().unwrap_or(&s.dvc_file);
        ctx.ui
            .info(&format!("skipped {what} ({}): {}", s.dvc_file, s.reason));
    }
    for f in &report.removed_dvc_files {
        ctx.ui.info(&format!("removed {f} (git rm)"));
    }
    if !report.dry_run && !report.stages.is_empty() {
        ctx.ui
            .info("kept dvc.yaml (the pipeline's source for DVC; remove it once you stop using DVC)");
    }
    ctx.ui.info(&format!(
        "{} output(s) {}, {} pointer(s) written, {} stage(s), {} record(s) ({} new), {} from the workspace, {} from the DVC cache, {} from the DVC remote, {} skipped",
        report.converted.len(),
        if report.dry_run { "to import" } else { "imported" },
        report.pointers_written,
        report.stages.len(),
        report.records.len(),
        report.records.iter().filter(|r| r.written).count(),
        human_bytes(report.bytes.get("workspace").copied().unwrap_or(0)),
        human_bytes(report.bytes.get("dvc-cache").copied().unwrap_or(0)),
        human_bytes(report.bytes.get("dvc-remote").copied().unwrap_or(0)),
        report.skipped.len()
    ));
    if !report.dry_run && !report.git_paths.is_empty() {
        if report.staged {
            ctx.ui.info(&format!("staged {}", report.git_paths.join(" ")));
        } else {
            super::git_add_hint(&ctx.ui, &report.git_paths);
        }
    }
    if report.skipped.iter().any(|s| s.kind == SkipKind::Mismatch) {
        Ok(ExitCode::from(super::error::code::INTEGRITY))
    } else if report.failed() {
        Ok(ExitCode::FAILURE)
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

fn dry_run_tree(ctx: &Ctx, paths: &[PathBuf]) -> Result<(Tree, Vec<RelPath>), CliError> {
    if let Ok(repo) = ctx.repo() {
        return Ok((Tree::of(&repo), ctx.rel_paths(&repo, paths)?));
    }
    let cwd = ctx.cwd.canonicalize().map_err(|e| {
        CliError::from(mlv::Error::from(mlv::fs::IoError::new(
            "cannot resolve",
            &ctx.cwd,
            e,
        )))
    })?;
    let (_git, root) = mlv::repo::discover_git(&cwd).map_err(mlv::Error::from)?;
    let rel = paths
        .iter()
        .map(|p| {
            RelPath::from_user(p, &cwd, &root)
                .map_err(|e| CliError::msg(format!("{}: {e}", p.display()), None))
        })
        .collect::<Result<_, _>>()?;
    Ok((Tree { root, cwd }, rel))
}
