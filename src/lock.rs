//! The repository lock: a kernel file lock (`flock(2)`) on `.mlv/lock`.
//!
//! Commands that change the cache, the workspace or mlv's state take it exclusive; commands
//! that only read take it shared, so readers run side by side and never beside a writer. The
//! kernel releases the lock when the process exits, however it exits (`kill -9` included), so a
//! crashed command never leaves the repository locked.
//!
//! An exclusive holder also writes who it is (pid, command, start time) to `.mlv/lock.info`,
//! for the message a waiting process prints. That file is informational only: the kernel lock
//! is the truth, and a stale file (its process gone) is ignored.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::fs::{IoContext, IoError};

/// The lock file, in `.mlv/`.
pub const LOCK_FILE: &str = "lock";
/// Who holds the lock exclusive, in `.mlv/`.
pub const INFO_FILE: &str = "lock.info";
/// The pipeline lock, in `.mlv/`: held by `mlv repro` for its whole run, apart from the
/// repository lock (which a stage's own command may need), so two `mlv repro` never run a
/// stage twice. Its holder records itself in `repro.lock.info`.
pub const PIPELINE_LOCK_FILE: &str = "repro.lock";
/// How long a command waits for the lock unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a command holds the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Readers: any number at once, never beside a writer.
    Shared,
    /// A writer: alone.
    Exclusive,
}

/// The process holding the lock exclusive, as it recorded itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// Its process id.
    pub pid: u32,
    /// Its command (`mlv add`; arguments are left out, they may hold secrets).
    pub command: String,
    /// When it took the lock, in seconds since the Unix epoch.
    pub since: i64,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (pid {}, since {})",
            self.command,
            self.pid,
            crate::lineage::time::rfc3339_secs(self.since)
        )
    }
}

/// Errors taking the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// The lock file could not be opened or locked.
    #[error(transparent)]
    Io(#[from] IoError),
    /// Another process kept the lock longer than the timeout.
    #[error("the repository is busy: {} holds its lock; gave up after {waited} s", holder_text(.holder))]
    Busy {
        /// Who holds it, if it recorded itself (exclusive holders do; readers do not).
        holder: Option<Holder>,
        /// How long this process waited, in seconds.
        waited: u64,
    },
}

impl LockError {
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::kind::ErrorKind {
        match self {
            LockError::Io(e) => e.kind(),
            LockError::Busy { .. } => crate::kind::ErrorKind::Busy,
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            LockError::Io(e) => e.hint(),
            LockError::Busy { .. } => Some(
                "wait for it to finish and retry, or wait longer: MLV_LOCK_TIMEOUT=SECONDS or `lock_timeout` in [core] of .mlv/config.toml".into(),
            ),
        }
    }
}

/// Describes the holder for messages.
pub fn holder_text(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another mlv process".to_string(),
    }
}

/// What to ask for.
#[derive(Debug, Clone)]
pub struct LockRequest {
    /// Shared or exclusive.
    pub mode: LockMode,
    /// The command, recorded for other processes' messages (`mlv add`).
    pub command: String,
    /// How long to wait; zero fails at once.
    pub timeout: Duration,
}

/// A held lock; dropping it releases it.
#[derive(Debug)]
pub struct RepoLock {
    file: Option<File>,
    info: Option<PathBuf>,
}

impl RepoLock {
    /// A lock that holds nothing (for a read-only repository a reader cannot lock).
    fn none() -> RepoLock {
        RepoLock {
            file: None,
            info: None,
        }
    }
}

impl Drop for RepoLock {
    fn drop(&mut self) {
        // Remove our record before the kernel lock goes, so the next holder's record is never
        // removed by us.
        if let Some(info) = &self.info {
            let _ = std::fs::remove_file(info);
        }
        self.file.take();
    }
}

/// Takes the lock of the repository whose `.mlv/` is `mlv_dir`. If another process holds it,
/// calls `on_wait` once with the holder (when known), then waits up to the request's timeout.
pub fn acquire(
    mlv_dir: &Path,
    req: &LockRequest,
    on_wait: &mut dyn FnMut(Option<&Holder>),
) -> Result<RepoLock, LockError> {
    acquire_file(mlv_dir, LOCK_FILE, req, on_wait)
}

/// [`acquire`] for the lock file `name` in `mlv_dir` (its holder recorded in `NAME.info`):
/// [`LOCK_FILE`] or [`PIPELINE_LOCK_FILE`].
pub fn acquire_file(
    mlv_dir: &Path,
    name: &str,
    req: &LockRequest,
    on_wait: &mut dyn FnMut(Option<&Holder>),
) -> Result<RepoLock, LockError> {
    let info_name = format!("{name}.info");
    ensure_ignored(mlv_dir, name, &info_name);
    let path = mlv_dir.join(name);
    let file = match File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
    {
        Ok(f) => f,
        // A reader of a repository it cannot write needs no lock: it changes nothing.
        Err(e) if req.mode == LockMode::Shared && cannot_write(&e) => return Ok(RepoLock::none()),
        Err(e) => return Err(IoError::new("cannot open the lock file", path, e).into()),
    };
    let start = Instant::now();
    let mut delay = Duration::from_millis(10);
    let mut told = false;
    while !try_lock(&file, req.mode).at("cannot lock", &path)? {
        let waited = start.elapsed();
        if waited >= req.timeout {
            return Err(LockError::Busy {
                holder: holder_in(mlv_dir, &info_name),
                waited: waited.as_secs(),
            });
        }
        if !told {
            on_wait(holder_in(mlv_dir, &info_name).as_ref());
            told = true;
        }
        std::thread::sleep(delay.min(req.timeout - waited));
        delay = (delay * 2).min(Duration::from_millis(200));
    }
    let info = (req.mode == LockMode::Exclusive).then(|| mlv_dir.join(&info_name));
    if let Some(p) = &info {
        // Informational: a failure to write it must not fail the command. Written to a temp
        // name and renamed, so a reader never sees half a record.
        let scratch = mlv_dir.join("tmp");
        let tmp = scratch.join(format!("{info_name}.{}", std::process::id()));
        let written = std::fs::create_dir_all(&scratch).is_ok()
            && std::fs::write(&tmp, holder_record(&req.command)).is_ok()
            && std::fs::rename(&tmp, p).is_ok();
        if !written {
            // A full disk can fail the write after the file was created.
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok(RepoLock {
        file: Some(file),
        info,
    })
}

/// One non-blocking `flock`; `Ok(false)` when another process holds a conflicting lock.
fn try_lock(file: &File, mode: LockMode) -> io::Result<bool> {
    use rustix::fs::FlockOperation as Op;
    let op = match mode {
        LockMode::Shared => Op::NonBlockingLockShared,
        LockMode::Exclusive => Op::NonBlockingLockExclusive,
    };
    loop {
        match rustix::fs::flock(file, op) {
            Ok(()) => return Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => return Ok(false),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn cannot_write(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
    )
}

fn holder_record(command: &str) -> String {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let command = command.replace('\n', " ");
    format!("pid={}\ncommand={command}\nsince={since}\n", std::process::id())
}

/// The recorded exclusive holder, if the record is there and its process is alive.
pub fn read_holder(mlv_dir: &Path) -> Option<Holder> {
    holder_in(mlv_dir, INFO_FILE)
}

fn holder_in(mlv_dir: &Path, info_name: &str) -> Option<Holder> {
    let text = std::fs::read_to_string(mlv_dir.join(info_name)).ok()?;
    let field = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
    };
    let holder = Holder {
        pid: field("pid")?.parse().ok()?,
        command: field("command")?.to_string(),
        since: field("since")?.parse().ok()?,
    };
    (holder.pid != std::process::id() && alive(holder.pid)).then_some(holder)
}

/// Whether process `pid` exists (`kill(pid, 0)`; one we may not signal exists too). Pid 0 is
/// nobody's: `kill(0, 0)` would test mlv's own process group instead.
fn alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e == rustix::io::Errno::PERM,
    }
}

/// Adds the lock files to `.mlv/.gitignore` in repositories initialized before they existed.
/// Best effort: a repository whose `.mlv/.gitignore` is gone or unwritable is left as it is.
fn ensure_ignored(mlv_dir: &Path, name: &str, info_name: &str) {
    let ignore = mlv_dir.join(".gitignore");
    let Ok(text) = std::fs::read_to_string(&ignore) else {
        return;
    };
    let mut new = text.clone();
    for line in [format!("/{name}"), format!("/{info_name}")] {
        if !new.lines().any(|l| l.trim_end() == line) {
            if !new.is_empty() && !new.ends_with('\n') {
                new.push('\n');
            }
            new.push_str(&line);
            new.push('\n');
        }
    }
    if new != text {
        let _ = crate::fs::write_atomic_in(&ignore, new.as_bytes(), &mlv_dir.join("tmp"));
    }
}

/// The timeout the configuration and environment select (`MLV_LOCK_TIMEOUT` is applied by
/// [`crate::config::load`]).
pub fn timeout_of(config: &crate::config::Config) -> Duration {
    config
        .core
        .lock_timeout
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(mode: LockMode, secs: u64) -> LockRequest {
        LockRequest {
            mode,
            command: "mlv test".into(),
            timeout: Duration::from_secs(secs),
        }
    }

    #[test]
    fn shared_locks_coexist_and_exclude_a_writer() {
        let d = tempfile::tempdir().unwrap();
        let mut never = |_: Option<&Holder>| {};
        let a = acquire(d.path(), &req(LockMode::Shared, 0), &mut never).unwrap();
        let b = acquire(d.path(), &req(LockMode::Shared, 0), &mut never).unwrap();
        let err = acquire(d.path(), &req(LockMode::Exclusive, 0), &mut never).unwrap_err();
        assert!(matches!(err, LockError::Busy { holder: None, .. }), "{err}");
        drop((a, b));
        let w = acquire(d.path(), &req(LockMode::Exclusive, 0), &mut never).unwrap();
        assert!(d.path().join(INFO_FILE).exists());
        drop(w);
        assert!(
            !d.path().join(INFO_FILE).exists(),
            "the record goes with the lock"
        );
    }

    #[test]
    fn alive_asks_the_kernel_about_real_pids_only() {
        assert!(alive(std::process::id()));
        assert!(!alive(0), "pid 0 would be mlv's own process group");
        assert!(!alive(999_999_999));
        assert!(!alive(u32::MAX), "does not fit a pid_t");
    }

    #[test]
    fn holder_record_round_trips_and_stale_records_are_ignored() {
        let d = tempfile::tempdir().unwrap();
        // pid 1 (init) is alive everywhere; a huge pid is not.
        std::fs::write(d.path().join(INFO_FILE), "pid=1\ncommand=mlv add\nsince=0\n").unwrap();
        let h = read_holder(d.path()).unwrap();
        assert_eq!(h.to_string(), "`mlv add` (pid 1, since 1970-01-01T00:00:00Z)");
        std::fs::write(
            d.path().join(INFO_FILE),
            "pid=999999999\ncommand=mlv add\nsince=0\n",
        )
        .unwrap();
        assert_eq!(read_holder(d.path()), None);
        std::fs::write(d.path().join(INFO_FILE), "garbage").unwrap();
        assert_eq!(read_holder(d.path()), None);
        // pid 0 names no process (kill(0, 0) would find mlv's own process group)
        std::fs::write(d.path().join(INFO_FILE), "pid=0\ncommand=mlv add\nsince=0\n").unwrap();
        assert_eq!(read_holder(d.path()), None);
    }

    #[test]
    fn the_pipeline_lock_is_apart_from_the_repository_lock() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".gitignore"), "/cache/\n").unwrap();
        let mut never = |_: Option<&Holder>| {};
        let p = acquire_file(
            d.path(),
            PIPELINE_LOCK_FILE,
            &req(LockMode::Exclusive, 0),
            &mut never,
        )
        .unwrap();
        assert!(d.path().join("repro.lock.info").exists());
        // the repository lock is free: a stage's command may take it
        drop(acquire(d.path(), &req(LockMode::Exclusive, 0), &mut never).unwrap());
        let err = acquire_file(
            d.path(),
            PIPELINE_LOCK_FILE,
            &req(LockMode::Exclusive, 0),
            &mut never,
        )
        .unwrap_err();
        assert!(matches!(err, LockError::Busy { .. }), "{err}");
        drop(p);
        assert!(!d.path().join("repro.lock.info").exists());
        let ignore = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
        assert!(ignore.contains("/repro.lock\n/repro.lock.info\n"), "{ignore}");
    }

    #[test]
    fn gitignore_gains_the_lock_files_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(".gitignore"), "/cache/\n").unwrap();
        let mut never = |_: Option<&Holder>| {};
        drop(acquire(d.path(), &req(LockMode::Shared, 0), &mut never).unwrap());
        drop(acquire(d.path(), &req(LockMode::Shared, 0), &mut never).unwrap());
        assert_eq!(
            std::fs::read_to_string(d.path().join(".gitignore")).unwrap(),
            "/cache/\n/lock\n/lock.info\n"
        );
    }
}
