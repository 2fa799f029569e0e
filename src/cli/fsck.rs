//! `mlv fsck`.

use std::path::PathBuf;
use std::process::ExitCode;

use mlv::ops::fsck::{FsckOptions, FsckReport, Problem};
use mlv::ops::remotes;
use mlv::remote::packed::Item;

use super::error::code;
use super::ui::{human_bytes, plural};
use super::{CliError, Ctx};

/// Check that the objects the pointers need are intact.
///
/// Re-hashes every object the pointers (and the directory manifests) refer to in the cache;
/// with --remote, checks that the remote has each one with the right size, or with --read-data
/// downloads and re-hashes it. Each problem is listed with the paths that need the object.
/// --repair replaces damaged or missing cache objects from the remote (the default one, or
/// NAME) and, with --remote, uploads good cache copies over damaged or missing remote objects.
///
/// On a format 2 remote, --remote also reads every index segment (each must parse and hash to
/// its name), lists the packs once (each pack the index names must exist with the size it
/// records), and checks every recipe's chunks; --read-data reads every pack whole and checks
/// its footer against the index and every blob against its id. A damaged pack is listed with
/// the paths whose data it holds. Packs no index names are reported, not counted as problems.
/// --repair with --remote is not available on format 2 remotes yet.
///
/// Exit status: 0 when everything is intact (or was repaired), 4 when problems remain.
///
/// Example: mlv fsck --remote --read-data
#[derive(clap::Args)]
pub struct Args {
    /// Tracked paths (or paths inside tracked directories); all when omitted.
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Check the remote's copies too (the default remote, or NAME).
    #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, default_missing_value = "")]
    remote: Option<String>,
    /// With --remote, download and re-hash every object instead of checking presence and size.
    #[arg(long, requires = "remote")]
    read_data: bool,
    /// Replace damaged or missing objects from the remote (and, with --remote, re-upload good
    /// cache copies to it).
    #[arg(long)]
    repair: bool,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let mode = if args.repair {
        mlv::lock::LockMode::Exclusive
    } else {
        mlv::lock::LockMode::Shared
    };
    let _lock = ctx.lock(&repo, mode, "fsck")?;
    let paths = ctx.rel_paths(&repo, &args.paths)?;
    let opts = FsckOptions {
        check_remote: args.remote.is_some(),
        read_data: args.read_data,
        repair: args.repair,
    };
    let remote = if opts.check_remote || opts.repair {
        let name = args.remote.as_deref().filter(|n| !n.is_empty());
        Some(remotes::open(&repo, name, None)?)
    } else {
        None
    };
    let progress = ctx.progress();
    let report = ctx.runtime()?.block_on(mlv::ops::fsck::fsck(
        &repo,
        remote.as_ref(),
        &paths,
        &opts,
        progress.as_ref(),
    ))?;
    ctx.ui.json(&report);
    render(ctx, &report);
    Ok(ExitCode::from(if report.clean {
        code::OK
    } else {
        code::PROBLEMS
    }))
}

fn render(ctx: &Ctx, report: &FsckReport) {
    for p in &report.problems {
        ctx.ui.out(&problem_line(ctx, p));
    }
    for dir in &report.unlisted {
        ctx.ui.out(&format!(
            "unchecked: {dir}: its manifest cannot be read, so its files were not checked"
        ));
    }
    for pack in &report.damaged_packs {
        ctx.ui.out(&format!("damaged: {pack}"));
    }
    if let Some(f2) = &report.format2 {
        let mut line = format!(
            "format 2: {}, {}, {}",
            plural(f2.segments, "index segment", "index segments"),
            plural(f2.packs, "pack", "packs"),
            plural(f2.blobs, "blob", "blobs")
        );
        if report.read_data {
            line.push_str(&format!("; read {}", plural(f2.packs_read, "pack", "packs")));
        }
        if f2.format1_objects > 0 {
            line.push_str(&format!(
                "; {} of format 1",
                plural(f2.format1_objects, "object", "objects")
            ));
        }
        ctx.ui.info(&line);
        if !f2.unreferenced_packs.is_empty() {
            ctx.ui.info(&format!(
                "{} no index names (left by an interrupted push or a gc in progress; not a problem)",
                plural(f2.unreferenced_packs.len() as u64, "pack", "packs")
            ));
        }
    }
    let mut summary = format!(
        "checked {} ({}) in the cache",
        plural(report.objects, "object", "objects"),
        human_bytes(report.bytes)
    );
    if let (Some(r), true) = (&report.remote, report.remote_objects > 0) {
        let how = if report.read_data { "re-read" } else { "checked" };
        summary.push_str(&format!("; {how} {} on {r}", report.remote_objects));
    }
    let left = report.problems.iter().filter(|p| !p.repaired).count() as u64;
    if report.repaired > 0 {
        summary.push_str(&format!(
            "; repaired {}",
            plural(report.repaired, "object", "objects")
        ));
    }
    if left > 0 || !report.unlisted.is_empty() || !report.damaged_packs.is_empty() {
        summary.push_str(&format!("; {} left", plural(left, "problem", "problems")));
    } else if report.repaired == 0 {
        summary.push_str("; no problems");
    }
    ctx.ui.info(&summary);
    // --repair cannot fix a format 2 remote yet: the hint is only for what it can fix
    let repairable = report.format2.is_none() || report.problems.iter().any(|p| p.location == "cache");
    if left > 0 && repairable && !report.problems.iter().any(|p| p.repair_error.is_some()) {
        ctx.ui
            .info("hint: `mlv fsck --repair` replaces damaged or missing objects from a remote");
    }
}

fn problem_line(ctx: &Ctx, p: &Problem) -> String {
    const SHOWN: usize = 5;
    let mut paths = if ctx.ui.verbose || p.paths.len() <= SHOWN {
        p.paths.join(", ")
    } else {
        format!(
            "{} and {} more",
            p.paths[..SHOWN].join(", "),
            p.paths.len() - SHOWN
        )
    };
    if paths.is_empty() {
        paths = "-".into();
    }
    let outcome = match (&p.repair_error, p.repaired) {
        (_, true) => " [repaired]".to_string(),
        (Some(why), false) => format!(" [not repaired: {why}]"),
        (None, false) => String::new(),
    };
    let item = match p.item {
        Item::Object => "",
        Item::Pack => "pack ",
        Item::IndexSegment => "index segment ",
    };
    format!(
        "{} in {}: {item}{} ({}); needed by {paths}{outcome}",
        p.kind.word(),
        p.location,
        p.digest,
        p.detail
    )
}
