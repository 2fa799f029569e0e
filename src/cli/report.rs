//! `mlv report`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use mlv::lock::LockMode;
use mlv::ops::report;
use serde::Serialize;

use super::{CliError, Ctx};

/// Write the audit page: one self-contained HTML file with the model registry (models,
/// versions, stages, who and when), each version's lineage graph (inputs -> runs -> outputs,
/// with digests, commits, authors and signature status) and each model's metric history as
/// charts.
///
/// The page needs no network (inline CSS and JavaScript, no fonts or images): copy it to a USB
/// stick or attach it to a ticket and open it in any browser. Signatures are checked against
/// git's gpg.ssh.allowedSignersFile when it is set (as `mlv lineage verify --signatures` does),
/// else shown as present or absent.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  mlv report\n  mlv report -o audit/2026-q4.html\n  mlv report -o - > page.html\n  mlv report --json"
)]
pub struct Args {
    /// Where to write the page (`-` for stdout; an existing directory receives
    /// mlv-report.html). Relative to the current directory.
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_OUT)]
    out: PathBuf,
}

const DEFAULT_OUT: &str = "mlv-report.html";

/// What `--json` prints.
#[derive(Serialize)]
struct Written<'a> {
    out: &'a str,
    models: usize,
    versions: usize,
    records: usize,
    bytes: usize,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<ExitCode, CliError> {
    let to_stdout = args.out.as_os_str() == "-";
    if to_stdout && ctx.ui.json {
        return Err(CliError::msg(
            "--json and -o - both want stdout",
            Some("write the page to a file: mlv report -o FILE --json"),
        ));
    }
    let repo = ctx.repo()?;
    let data = {
        let _lock = ctx.lock(&repo, LockMode::Shared, "report")?;
        report::collect(&repo)?
    };
    let page = report::render(&data);
    if to_stdout {
        let mut o = std::io::stdout().lock();
        return match o.write_all(page.as_bytes()).and_then(|()| o.flush()) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::msg(
                format!("cannot write the page to stdout: {e}"),
                None,
            )),
            _ => Ok(ExitCode::SUCCESS),
        };
    }
    let mut path = ctx.cwd.join(&args.out);
    let mut out = args.out.display().to_string();
    // an existing directory receives the page under the default name (as `model get -o DIR`)
    if path.is_dir() {
        path.push(DEFAULT_OUT);
        out = args.out.join(DEFAULT_OUT).display().to_string();
    }
    // like `git archive -o` users expect `-o out/audit.html` to work in a fresh checkout
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| mlv::Error::from(mlv::fs::IoError::new("cannot create directory", dir, e)))?;
    }
    mlv::fs::write_atomic(&path, page.as_bytes()).map_err(mlv::Error::from)?;
    ctx.ui.json(&Written {
        out: &out,
        models: data.models.len(),
        versions: data.models.iter().map(|m| m.versions.len()).sum(),
        records: data.records.len(),
        bytes: page.len(),
    });
    let n = data.models.len();
    ctx.ui.info(&format!(
        "Wrote {out}: {n} {}, {} lineage {}.",
        if n == 1 { "model" } else { "models" },
        data.records.len(),
        if data.records.len() == 1 {
            "record"
        } else {
            "records"
        },
    ));
    Ok(ExitCode::SUCCESS)
}
