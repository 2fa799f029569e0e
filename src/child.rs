//! Running a child command to completion while forwarding the signals that ask mlv to stop
//! (SIGTERM, SIGINT, SIGHUP) to it, so that stopping `mlv run` stops the command it runs
//! instead of leaving it running without its parent.
//!
//! Where the child runs:
//! - When mlv is in the foreground of a terminal, the child stays in mlv's process group so it
//!   keeps the terminal (it can read from it; Ctrl-C and Ctrl-Z reach it directly). A signal the
//!   terminal sent already reached the child, so only signals sent to mlv by a process (`kill`)
//!   are passed on, to the child.
//! - Otherwise (no terminal: CI, cron, `nohup`, a background job) the child leads a process
//!   group of its own, and every such signal is passed on to that whole group, so the helpers a
//!   shell script started stop too.
//!
//! A signal received while the child runs is reported, so the caller treats the run as failed
//! even if the child exits 0 after handling it.

use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

/// The child to forward to: a pid, or minus a process group id; 0 when none.
static TARGET: AtomicI32 = AtomicI32::new(0);
/// Whether tty-generated signals are forwarded too (the child has its own group).
static FORWARD_ALL: AtomicI32 = AtomicI32::new(0);
/// The last signal received while the child ran, 0 when none.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// A signal received before the child was started, to pass on once it is; 0 when none.
static EARLY: AtomicI32 = AtomicI32::new(0);

const SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub struct Ended {
    /// Its exit status.
    pub status: ExitStatus,
    /// A stop signal (SIGTERM, SIGINT, SIGHUP) mlv received while it ran, if any.
    pub interrupted_by: Option<i32>,
}

extern "C" fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // Only async-signal-safe work here: atomics and kill(2).
    RECEIVED.store(sig, Ordering::SeqCst);
    let target = TARGET.load(Ordering::SeqCst);
    if target == 0 {
        EARLY.store(sig, Ordering::SeqCst);
        return;
    }
    // si_code <= 0: sent by a process (kill, sigqueue, tkill); SI_KERNEL: the terminal, which
    // signalled the child itself when it shares mlv's process group.
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    let from_process = info.is_null() || unsafe { (*info).si_code } <= 0;
    if from_process || FORWARD_ALL.load(Ordering::SeqCst) != 0 {
        // SAFETY: kill is async-signal-safe; target is our child or its process group.
        unsafe {
            libc::kill(target, sig);
        }
    }
}

/// Whether mlv runs in the foreground process group of a controlling terminal.
fn in_terminal_foreground() -> bool {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC;
    let Ok(tty) = open("/dev/tty", flags, Mode::empty()) else {
        return false;
    };
    rustix::termios::tcgetpgrp(&tty).is_ok_and(|fg| fg == rustix::process::getpgrp())
}

/// Runs `command` to its end, forwarding SIGTERM, SIGINT and SIGHUP to it (see the module
/// documentation). The previous signal dispositions are restored before returning.
pub fn run_forwarding(command: &mut Command) -> std::io::Result<Ended> {
    use std::os::unix::process::CommandExt;
    let own_group = !in_terminal_foreground();
    if own_group {
        command.process_group(0);
    }
    let mut old_actions: Vec<libc::sigaction> = Vec::with_capacity(SIGNALS.len());
    RECEIVED.store(0, Ordering::SeqCst);
    EARLY.store(0, Ordering::SeqCst);
    FORWARD_ALL.store(i32::from(own_group), Ordering::SeqCst);
    // SAFETY: installs a handler that only touches atomics and calls kill(2); the signal mask
    // is left alone, so the child inherits it unchanged (caught signals return to their
    // defaults across exec).
    unsafe {
        for s in SIGNALS {
            let mut act: libc::sigaction = std::mem::zeroed();
            act.sa_sigaction = forward as *const () as usize;
            act.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
            libc::sigemptyset(&mut act.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(s, &act, &mut old);
            old_actions.push(old);
        }
    }
    let spawned = command.spawn();
    if let Ok(child) = &spawned {
        let pid = i32::try_from(child.id()).unwrap_or(0);
        let target = if own_group { -pid } else { pid };
        TARGET.store(target, Ordering::SeqCst);
        // a signal that came before the child existed is passed on now
        let early = EARLY.swap(0, Ordering::SeqCst);
        if early != 0 {
            // SAFETY: target is our child or its process group.
            unsafe {
                libc::kill(target, early);
            }
        }
    }
    let waited = spawned.and_then(|mut child| child.wait());
    TARGET.store(0, Ordering::SeqCst);
    // SAFETY: puts back the dispositions saved above.
    unsafe {
        for (s, old) in SIGNALS.iter().zip(&old_actions) {
            libc::sigaction(*s, old, std::ptr::null_mut());
        }
    }
    let received = RECEIVED.swap(0, Ordering::SeqCst);
    Ok(Ended {
        status: waited?,
        interrupted_by: (received != 0).then_some(received),
    })
}

/// The conventional name of a signal number, such as `SIGTERM`.
pub fn signal_name(sig: i32) -> String {
    match sig {
        libc::SIGHUP => "SIGHUP".into(),
        libc::SIGINT => "SIGINT".into(),
        libc::SIGQUIT => "SIGQUIT".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGPIPE => "SIGPIPE".into(),
        libc::SIGALRM => "SIGALRM".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGUSR1 => "SIGUSR1".into(),
        libc::SIGUSR2 => "SIGUSR2".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGXCPU => "SIGXCPU".into(),
        _ => format!("signal {sig}"),
    }
}
