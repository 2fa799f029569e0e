//! The command line: clap definitions and one module per command.

mod add;
mod checkout;
mod config;
mod diff;
mod doctor;
mod dvc;
mod error;
mod fsck;
mod gc;
mod history;
mod hooks;
mod import;
mod import_dvc;
mod init;
mod lineage;
mod log;
mod metrics;
mod model;
mod progress;
mod registry;
mod remote;
mod report;
mod repro;
mod run;
mod stage;
mod status;
mod transfer;
mod ui;
mod untrack;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

pub use error::CliError;
use ui::Ui;

/// Git-like versioning for datasets and models.
///
/// mlv hashes data with blake3 into a local content-addressed cache and writes small pointer
/// files (PATH.mlv) that you commit to git in place of the data.
#[derive(Parser)]
#[command(name = "mlv", version, about, long_about, propagate_version = true)]
#[command(
    after_help = "Examples:\n  mlv init\n  mlv add data/ models/model.pt\n  mlv status\n  mlv checkout"
)]
pub struct Cli {
    /// Run as if mlv was started in DIR.
    #[arg(short = 'C', global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print the result as one JSON document on stdout.
    #[arg(long, global = true)]
    json: bool,
    /// Print no messages, only results and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    /// Print more detail.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Init(init::Args),
    Add(add::Args),
    Status(status::Args),
    Checkout(checkout::Args),
    Untrack(untrack::Args),
    Unprotect(untrack::UnprotectArgs),
    Remote(remote::Args),
    Config(config::Args),
    Push(transfer::PushArgs),
    Fetch(transfer::FetchArgs),
    Pull(transfer::PullArgs),
    Import(import::ImportArgs),
    Update(import::UpdateArgs),
    ImportDvc(import_dvc::Args),
    Run(run::Args),
    Stage(stage::Args),
    Repro(repro::Args),
    Lineage(lineage::Args),
    Metrics(metrics::MetricsArgs),
    Params(metrics::ParamsArgs),
    Log(log::Args),
    Diff(diff::Args),
    Fsck(fsck::Args),
    Gc(gc::Args),
    InstallHooks(hooks::InstallArgs),
    UninstallHooks(hooks::UninstallArgs),
    Doctor(doctor::Args),
    Model(model::Args),
    Report(report::Args),
    Ls(registry::LsArgs),
    Get(registry::GetArgs),
    Completions(CompletionsArgs),
}

/// Print a shell completion script.
///
/// Example: mlv completions bash > ~/.local/share/bash-completion/completions/mlv
#[derive(clap::Args)]
struct CompletionsArgs {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Everything a command needs from the global flags.
pub struct Ctx {
    /// Output conventions.
    pub ui: Ui,
    /// The directory the command runs in.
    pub cwd: PathBuf,
    /// The process's one async runtime, built the first time a command needs it.
    runtime: std::sync::OnceLock<tokio::runtime::Runtime>,
}

impl Ctx {
    /// Opens the repository around the working directory.
    pub fn repo(&self) -> Result<mlv::repo::Repo, CliError> {
        Ok(mlv::repo::Repo::open(&self.cwd).map_err(mlv::Error::from)?)
    }

    /// Takes the repository lock for `command` (`add`), waiting as configured; says once on
    /// stderr who holds it when it has to wait.
    pub fn lock(
        &self,
        repo: &mlv::repo::Repo,
        mode: mlv::lock::LockMode,
        command: &str,
    ) -> Result<mlv::lock::RepoLock, CliError> {
        let lock = self.lock_only(repo, mode, command)?;
        // What an interrupted command left in `.mlv/tmp`: no other mlv process writes there now.
        if mode == mlv::lock::LockMode::Exclusive {
            repo.clean_scratch();
        }
        Ok(lock)
    }

    /// Takes the repository lock as [`Ctx::lock`] does, leaving `.mlv/tmp` as it is (`gc`
    /// removes and reports those files itself).
    pub fn lock_only(
        &self,
        repo: &mlv::repo::Repo,
        mode: mlv::lock::LockMode,
        command: &str,
    ) -> Result<mlv::lock::RepoLock, CliError> {
        let timeout = mlv::lock::timeout_of(&repo.config);
        Ok(self.lock_dir(&repo.mlv_dir(), timeout, mode, command)?)
    }

    /// Takes the lock of the repository whose `.mlv/` is `mlv_dir`.
    pub fn lock_dir(
        &self,
        mlv_dir: &std::path::Path,
        timeout: std::time::Duration,
        mode: mlv::lock::LockMode,
        command: &str,
    ) -> Result<mlv::lock::RepoLock, mlv::Error> {
        let req = mlv::lock::LockRequest {
            mode,
            command: format!("mlv {command}"),
            timeout,
        };
        let ui = self.ui;
        let mut on_wait = |h: Option<&mlv::lock::Holder>| {
            ui.info(&format!(
                "waiting for the repository lock, held by {} (giving up after {} s)",
                mlv::lock::holder_text(&h.cloned()),
                timeout.as_secs()
            ));
        };
        Ok(mlv::lock::acquire(mlv_dir, &req, &mut on_wait)?)
    }

    /// Resolves command-line paths against the repository.
    pub fn rel_paths(
        &self,
        repo: &mlv::repo::Repo,
        paths: &[PathBuf],
    ) -> Result<Vec<mlv::relpath::RelPath>, CliError> {
        paths
            .iter()
            .map(|p| repo.user_path(p).map_err(|e| CliError::from(mlv::Error::from(e))))
            .collect()
    }

    /// The progress reporter.
    pub fn progress(&self) -> Box<dyn mlv::progress::Progress> {
        progress::reporter(self.ui.progress)
    }

    /// The async runtime for the commands that talk to remotes: one per process, built on
    /// first use (commands that never talk to a remote start no threads).
    pub fn runtime(&self) -> Result<&tokio::runtime::Runtime, CliError> {
        if let Some(rt) = self.runtime.get() {
            return Ok(rt);
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::msg(format!("cannot start the async runtime: {e}"), None))?;
        Ok(self.runtime.get_or_init(|| rt))
    }

    /// Where the history and lineage queries find objects: the cache, and behind it the default
    /// remote when one is set (asked through this process's runtime).
    pub fn objects<'r>(
        &self,
        repo: &'r mlv::repo::Repo,
    ) -> Result<Option<mlv::ops::sources::CacheThenRemote<'r>>, CliError> {
        if repo.config.core.remote.is_none() {
            return Ok(None);
        }
        let handle = self.runtime()?.handle().clone();
        Ok(mlv::ops::sources::CacheThenRemote::default_remote(repo, handle)?)
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let args: Vec<String> = std::env::args_os()
                .skip(1)
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            if let Some((word, hint)) = dvc::hint_for(&e, &args) {
                eprintln!("error: unrecognized subcommand '{word}'\nhint: {hint}");
                return ExitCode::from(error::code::USAGE);
            }
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                error::code::USAGE
            } else {
                error::code::OK
            });
        }
    };
    let ui = Ui::new(cli.json, cli.quiet, cli.verbose);
    match run(cli, ui) {
        Ok(code) => code,
        Err(e) => e.report(&ui),
    }
}

fn run(cli: Cli, ui: Ui) -> Result<ExitCode, CliError> {
    let base = std::env::current_dir()
        .map_err(|e| CliError::msg(format!("cannot read the current directory: {e}"), None))?;
    let cwd = match &cli.dir {
        Some(d) => base.join(d),
        None => base,
    };
    if !cwd.is_dir() {
        return Err(CliError::msg(format!("{}: not a directory", cwd.display()), None));
    }
    let ctx = Ctx {
        ui,
        cwd,
        runtime: std::sync::OnceLock::new(),
    };
    match cli.command {
        Command::Init(a) => init::run(&ctx, a),
        Command::Add(a) => add::run(&ctx, a),
        Command::Status(a) => status::run(&ctx, a),
        Command::Checkout(a) => checkout::run(&ctx, a),
        Command::ImportDvc(a) => import_dvc::run(&ctx, a),
        Command::Untrack(a) => untrack::run(&ctx, a),
        Command::Unprotect(a) => untrack::run_unprotect(&ctx, a),
        Command::Remote(a) => remote::run(&ctx, a),
        Command::Config(a) => config::run(&ctx, a),
        Command::Push(a) => transfer::run_push(&ctx, a),
        Command::Fetch(a) => transfer::run_fetch(&ctx, a),
        Command::Pull(a) => transfer::run_pull(&ctx, a),
        Command::Run(a) => run::run(&ctx, a),
        Command::Stage(a) => stage::run(&ctx, a),
        Command::Repro(a) => repro::run(&ctx, a),
        Command::Lineage(a) => lineage::run(&ctx, a),
        Command::Metrics(a) => metrics::metrics(&ctx, a),
        Command::Params(a) => metrics::params(&ctx, a),
        Command::Log(a) => log::run(&ctx, a),
        Command::Diff(a) => diff::run(&ctx, a),
        Command::Fsck(a) => fsck::run(&ctx, a),
        Command::Gc(a) => gc::run(&ctx, a),
        Command::InstallHooks(a) => hooks::run_install(&ctx, a),
        Command::UninstallHooks(a) => hooks::run_uninstall(&ctx, a),
        Command::Doctor(a) => doctor::run(&ctx, a),
        Command::Import(a) => import::run_import(&ctx, a),
        Command::Update(a) => import::run_update(&ctx, a),
        Command::Model(a) => model::run(&ctx, a),
        Command::Report(a) => report::run(&ctx, a),
        Command::Ls(a) => registry::run_ls(&ctx, a),
        Command::Get(a) => registry::run_get(&ctx, a),
        Command::Completions(a) => {
            // generated into memory: clap_complete panics when a write fails (`| head -1`)
            let mut script = Vec::new();
            clap_complete::generate(a.shell, &mut Cli::command(), "mlv", &mut script);
            use std::io::Write;
            match std::io::stdout().lock().write_all(&script) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::msg(
                    format!("cannot write the completion script: {e}"),
                    None,
                )),
                _ => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// The git command that stages `paths`, for the hint after a change.
pub fn git_add_hint(ui: &Ui, paths: &[String]) {
    if paths.is_empty() {
        return;
    }
    ui.info("\nTo track the changes with git, run:\n");
    ui.info(&format!("\tgit add {}", shell_args(paths)));
}

/// `paths` as shell arguments after `--` when one could pass for an option (`-x`).
pub fn shell_args(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| shell_quote(p)).collect();
    if paths.iter().any(|p| p.starts_with('-')) {
        format!("-- {}", quoted.join(" "))
    } else {
        quoted.join(" ")
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
