//! `mlv lineage verify` and `mlv lineage diff`.

use std::process::ExitCode;

use mlv::lineage::filter::value_text;
use mlv::lock::LockMode;

use super::super::error::code;
use super::super::{CliError, Ctx};

/// Check that every version in the lineage is still available, and compare each output's
/// latest record with the workspace.
///
/// Data tracked by mlv must be in the local cache (with directories, every file their
/// manifest lists); files tracked by git must be in git at the record's commit, at HEAD or in
/// the workspace. Exits 3 when lines of the lineage file are damaged or edited, 1 when
/// versions are unavailable, 0 otherwise; outputs that differ from their latest record are
/// reported, not failures.
///
/// With --history, check instead that the lineage file only ever grew: walking the history of
/// every local and remote-tracking branch (and HEAD when detached), every commit's file must
/// hold every record its parents' files held, with the same bytes (a union merge may
/// interleave them). Each commit that edited or removed a record is named; exits 3 if any.
///
/// With --signatures, check instead each record's SSH signature (made with --sign or
/// `[lineage] sign = true`) with `ssh-keygen -Y verify` against git's
/// gpg.ssh.allowedSignersFile; unsigned, badly signed and unknown-key records are named; exits 3
/// if any.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv lineage verify\n  mlv lineage verify --history\n  mlv lineage verify --signatures --allow-unsigned"
)]
pub struct VerifyArgs {
    /// Check that no committed record was ever edited or removed, on any branch.
    #[arg(long, conflicts_with = "signatures")]
    history: bool,
    /// Check every record's SSH signature against git's gpg.ssh.allowedSignersFile (the
    /// record's author e-mail as the principal); unsigned records fail too.
    #[arg(long)]
    signatures: bool,
    /// With --signatures: report unsigned records without failing.
    #[arg(long, requires = "signatures")]
    allow_unsigned: bool,
}

/// Compare the params and metrics of the runs behind two revisions (or two record ids).
///
/// A revision's runs are those that produced the outputs tracked at that revision; runs are
/// paired by output path.
///
/// Example: mlv lineage diff v1.0 HEAD
#[derive(clap::Args)]
pub struct DiffArgs {
    /// The left side: a git revision or a record id.
    #[arg(value_name = "REV1")]
    left: String,
    /// The right side: a git revision or a record id.
    #[arg(value_name = "REV2")]
    right: String,
}

pub fn verify(ctx: &Ctx, args: VerifyArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage verify")?;
    if args.history {
        return history(ctx, &repo);
    }
    if args.signatures {
        return signatures(ctx, &repo, args.allow_unsigned);
    }
    let lineage = super::load(&repo)?;
    let progress = ctx.progress();
    // The cache, and behind it the default remote when one is set.
    let backed = ctx.objects(&repo)?;
    let objects: &dyn mlv::objects::ObjectSource = match &backed {
        Some(b) => b,
        None => &repo.cache,
    };
    let report = mlv::ops::lineage::verify(&repo, &lineage, objects, progress.as_ref())?;
    ctx.ui.json(&report);
    let ui = &ctx.ui;
    for u in &report.unavailable {
        ui.out(&format!(
            "unavailable: {} {} ({} of run {}): {} object(s) missing",
            u.artifact.path,
            u.artifact.digest.short(12),
            u.role,
            &u.record[..12],
            u.missing
        ));
    }
    for o in &report.outputs {
        let line = match o.state {
            "differs" => format!(
                "{}: differs: the pointer holds {}, the latest record (run {}) produced {}",
                o.path,
                o.current.map(|d| d.short(12)).unwrap_or_default(),
                &o.record[..12],
                o.recorded.short(12)
            ),
            state => format!("{}: {state} (run {})", o.path, &o.record[..12]),
        };
        if ui.verbose || o.state != "matches" {
            ui.out(&line);
        }
    }
    super::report_problems(ui, &report.problems, "error");
    ui.info(&format!(
        "{} record(s), {} version(s) checked: {} unavailable, {} damaged line(s)",
        report.records,
        report.checked,
        report.unavailable.len(),
        report.problems.len()
    ));
    if !report.problems.is_empty() {
        return Ok(ExitCode::from(code::INTEGRITY));
    }
    if !report.unavailable.is_empty() {
        let err = CliError::msg(
            format!(
                "{} version(s) of the lineage are not available",
                report.unavailable.len()
            ),
            Some("fetch them with `mlv pull`, or re-create them with `mlv add`"),
        );
        // the report above is the JSON document; the error goes to stderr only
        let mut ui = ctx.ui;
        ui.json = false;
        return Ok(err.report(&ui));
    }
    Ok(ExitCode::SUCCESS)
}

fn signatures(ctx: &Ctx, repo: &mlv::repo::Repo, allow_unsigned: bool) -> Result<ExitCode, CliError> {
    use mlv::lineage::sign::SigState;
    let lineage = super::load(repo)?;
    let report = mlv::ops::lineage::verify_signatures(repo, &lineage, allow_unsigned)?;
    ctx.ui.json(&report);
    let ui = &ctx.ui;
    for f in &report.failed {
        let who = f.author.as_deref().unwrap_or("no author");
        let what = match f.state {
            SigState::Unsigned => "unsigned".to_string(),
            SigState::Bad => "bad signature (not over this record)".to_string(),
            SigState::UnknownKey => format!("signed by a key not allowed for {who}"),
            SigState::Good => continue,
        };
        let id = f.record.get(..12).unwrap_or(&f.record);
        ui.out(&format!("record {id} ({who}): {what}"));
    }
    super::report_problems(ui, &report.problems, "error");
    ui.info(&format!(
        "{} record(s): {} signed by an allowed key, {} not ({})",
        report.records,
        report.good,
        report.failed.len(),
        report.allowed_signers
    ));
    if report.ok {
        return Ok(ExitCode::SUCCESS);
    }
    let err = CliError::msg(
        format!("{} record(s) are not signed by an allowed key", report.failed.len()),
        Some("add the signer's key to the allowed signers file if you trust it; --allow-unsigned lets unsigned records pass"),
    );
    let mut ui = ctx.ui;
    ui.json = false;
    if !report.failed.is_empty() {
        err.report(&ui);
    }
    Ok(ExitCode::from(code::INTEGRITY))
}

fn history(ctx: &Ctx, repo: &mlv::repo::Repo) -> Result<ExitCode, CliError> {
    let report = mlv::ops::lineage::verify_history(repo)?;
    ctx.ui.json(&report);
    let ui = &ctx.ui;
    for b in &report.breaks {
        for l in &b.records {
            let what = match l.change {
                mlv::lineage::growth::Change::Edited => "edited",
                mlv::lineage::growth::Change::Removed => "removed",
            };
            let id = l.record.get(..12).unwrap_or(&l.record);
            ui.out(&format!(
                "commit {} ({}): record {id} {what} (it was in {})",
                &b.commit[..12],
                b.subject,
                &b.parent[..12]
            ));
        }
    }
    ui.info(&format!(
        "{} commit(s) on {} ref(s), {} version(s) of {} parsed: {} commit(s) edited or removed records",
        report.commits,
        report.scope.len(),
        report.versions,
        mlv::lineage::LINEAGE_FILE,
        report.breaks.len()
    ));
    if report.ok {
        return Ok(ExitCode::SUCCESS);
    }
    let err = CliError::msg(
        format!(
            "the lineage file lost committed records in {} commit(s)",
            report.breaks.len()
        ),
        Some("restore the lines from the parent commit named (`git show PARENT:.mlv/lineage.jsonl`) and commit them; records are only ever appended"),
    );
    let mut ui = ctx.ui;
    ui.json = false;
    err.report(&ui);
    Ok(ExitCode::from(code::INTEGRITY))
}

pub fn diff(ctx: &Ctx, args: DiffArgs) -> Result<ExitCode, CliError> {
    let repo = ctx.repo()?;
    let _lock = ctx.lock(&repo, LockMode::Shared, "lineage verify")?;
    let lineage = super::load(&repo)?;
    let report = mlv::ops::lineage::diff(&repo, &lineage, &args.left, &args.right)?;
    if !ctx.ui.json {
        if report.pairs.is_empty() {
            ctx.ui.info("No recorded runs on either side.");
        }
        for p in &report.pairs {
            ctx.ui.out(&p.outputs.join(", "));
            let id = |r: &Option<mlv::ops::lineage::RunRef>| {
                r.as_ref().map(|r| r.id[..12].to_string()).unwrap_or("-".into())
            };
            let mut rows = vec![
                vec![
                    String::new(),
                    report.left.clone(),
                    report.right.clone(),
                    String::new(),
                ],
                vec!["run".into(), id(&p.left), id(&p.right), String::new()],
            ];
            let show = |v: &Option<serde_json::Value>| v.as_ref().map(value_text).unwrap_or("-".into());
            for row in &p.rows {
                let delta = match row.delta {
                    Some(d) if d != 0.0 => signed(d),
                    _ if row.changed => "changed".into(),
                    _ => String::new(),
                };
                rows.push(vec![row.name.clone(), show(&row.left), show(&row.right), delta]);
            }
            let rows: Vec<Vec<String>> = rows
                .into_iter()
                .map(|mut r| {
                    r[0] = format!("  {}", r[0]);
                    r
                })
                .collect();
            super::table(&ctx.ui, &rows);
        }
    }
    Ok(super::finish(&ctx.ui, &report, &lineage))
}

/// A difference with a sign, rounded to what the eye needs (`+0.05`, not `+0.04999999999999993`).
fn signed(d: f64) -> String {
    let s = format!("{d:+.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
