//! `run`: runs a command and records its lineage if it succeeds.

use super::record::{finish, prepare, RecordOptions, RecordReport};
use crate::error::Error;
use crate::lineage::LineageError;
use crate::progress::Progress;
use crate::repo::Repo;

/// How `run` ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// The command succeeded and its lineage was recorded.
    Recorded(Box<RecordReport>),
    /// The command failed, or mlv was asked to stop (SIGTERM, SIGINT, SIGHUP: passed on to
    /// the command) while it ran; nothing was recorded.
    Failed {
        /// The command's exit code, when it exited.
        code: Option<i32>,
        /// The signal that killed the command, when one did.
        signal: Option<i32>,
        /// The stop signal mlv received (and passed on) while the command ran.
        interrupted_by: Option<i32>,
    },
}

/// Runs `command` (inheriting stdio and environment, in the current directory). Records its
/// lineage only if it succeeds; the inputs are resolved before it starts, the outputs hashed
/// after it ends, under the lock `lock` takes (not held while the command runs: it may run mlv).
pub fn run(
    repo: &Repo,
    opts: &RecordOptions,
    command: &[String],
    progress: &dyn Progress,
    lock: &mut dyn FnMut() -> Result<crate::lock::RepoLock, Error>,
) -> Result<RunOutcome, Error> {
    run_in(repo, opts, command, &repo.cwd, progress, lock)
}

/// [`run`] with the command started in `dir` (a stage's working directory); the params and
/// metrics files of `opts` are resolved against the current directory as for [`run`].
pub fn run_in(
    repo: &Repo,
    opts: &RecordOptions,
    command: &[String],
    dir: &std::path::Path,
    progress: &dyn Progress,
    lock: &mut dyn FnMut() -> Result<crate::lock::RepoLock, Error>,
) -> Result<RunOutcome, Error> {
    let Some((program, args)) = command.split_first() else {
        return Err(LineageError::NoCommand.into());
    };
    let prepared = prepare(repo, opts, progress)?;
    let mut command_line = std::process::Command::new(program);
    command_line.args(args).current_dir(dir);
    let ended = crate::child::run_forwarding(&mut command_line).map_err(|source| LineageError::Spawn {
        program: program.clone(),
        source,
    })?;
    if !ended.status.success() || ended.interrupted_by.is_some() {
        use std::os::unix::process::ExitStatusExt;
        return Ok(RunOutcome::Failed {
            code: ended.status.code(),
            signal: ended.status.signal(),
            interrupted_by: ended.interrupted_by,
        });
    }
    let _lock = lock()?;
    Ok(RunOutcome::Recorded(Box::new(finish(
        repo,
        opts,
        prepared,
        Some(command.to_vec()),
        progress,
    )?)))
}
