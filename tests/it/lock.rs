//! The repository lock: writers wait for each other, readers share, a waiting command names
//! the holder and gives up with exit code 5, a killed holder releases the lock.
//!
//! A real `mlv` holds the lock: it is started with `MLV_PAUSE_AT=<crash point>` and stops
//! itself (SIGSTOP) there, lock held, until the test resumes it (SIGCONT). Needs the
//! `failpoints` feature.

use std::process::Child;
use std::time::{Duration, Instant};

use crate::common::{Env, Output, MLV};

/// Starts `mlv ARGS` paused at `point` and waits until it has stopped there.
fn paused(env: &Env, point: &str, args: &[&str]) -> Child {
    let child = env.command(MLV, args).env("MLV_PAUSE_AT", point).spawn();
    let deadline = Instant::now() + Duration::from_secs(60);
    while state(child.id()) != Some('T') {
        assert!(Instant::now() < deadline, "mlv {args:?} never reached {point}");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// The process state letter from /proc (R, S, T, Z, ...).
fn state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

fn signal(child: &Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

fn resume(child: Child) -> Output {
    signal(&child, libc::SIGCONT);
    Output::of_child(child)
}

fn env_with(dirs: &[&str]) -> Env {
    let env = Env::new();
    for d in dirs {
        for i in 0..20 {
            env.write(&format!("{d}/f{i}"), format!("{d} {i}"));
        }
    }
    env
}

#[test]
fn a_second_writer_waits_for_the_first_and_both_succeed() {
    let env = env_with(&["a", "b"]);
    let first = paused(&env, "add.before_pointer", &["add", "a"]);
    let second = env
        .command(MLV, &["add", "b"])
        .env("MLV_LOCK_TIMEOUT", "60")
        .spawn();
    std::thread::sleep(Duration::from_millis(800));
    let mut second = second;
    assert!(
        second.try_wait().unwrap().is_none(),
        "the second add did not wait"
    );
    assert!(
        !env.exists("b.mlv"),
        "the second add wrote while the first held the lock"
    );
    let pid = first.id();
    resume(first).ok();
    let out = Output::of_child(second).ok();
    let waiting = out.stderr_lines("waiting for the repository lock");
    assert_eq!(waiting.len(), 1, "says once that it waits\n{out}");
    assert!(
        waiting[0].contains(&format!("`mlv add` (pid {pid}, since ")),
        "names the holder\n{out}"
    );
    env.mlv(&["status", "--exit-code"]).ok();
    assert!(env.exists("a.mlv") && env.exists("b.mlv"));
}

#[test]
fn a_timeout_names_the_holder_and_exits_5() {
    let env = env_with(&["a", "b"]);
    let first = paused(&env, "add.before_pointer", &["add", "a"]);
    let pid = first.id();
    let out = env.mlv_env(&[("MLV_LOCK_TIMEOUT", "1")], &["add", "b"]).fails(5);
    let errors = out.stderr_lines("error: ");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains(&format!("the repository is busy: `mlv add` (pid {pid}, since "))
            && errors[0].contains("gave up after 1 s"),
        "{out}"
    );
    assert_eq!(out.stderr_lines("hint: ").len(), 1, "{out}");
    assert!(
        out.stderr_lines("hint: ")[0].contains("MLV_LOCK_TIMEOUT"),
        "{out}"
    );
    // 0 fails at once, from the environment or from the configuration
    let t = Instant::now();
    let out = env
        .mlv_env(&[("MLV_LOCK_TIMEOUT", "0")], &["--json", "checkout"])
        .fails(5);
    assert_eq!(out.json()["exit_code"], 5);
    let mut config = env.read_str(".mlv/config.toml");
    config = config.replace("[core]\n", "[core]\nlock_timeout = 0\n");
    std::fs::write(env.path(".mlv/config.toml"), config).unwrap();
    env.mlv(&["gc", "--force"]).fails(5);
    assert!(t.elapsed() < Duration::from_secs(5), "timeout 0 waited");
    env.mlv_env(&[("MLV_LOCK_TIMEOUT", "soon")], &["status"])
        .refused("MLV_LOCK_TIMEOUT", None);
    resume(first).ok();
    assert!(!env.exists("b.mlv"));
    env.mlv(&["add", "b"]).ok();
}

#[test]
fn readers_share_the_lock_and_keep_writers_out() {
    let env = env_with(&["a"]);
    env.mlv(&["add", "a"]).ok();
    let remote = env.base.join("remote");
    // format 1: the push pauses after its (one) object, a format 1 crash point
    env.mlv(&[
        "remote",
        "add",
        "origin",
        remote.to_str().unwrap(),
        "--default",
        "--format",
        "1",
    ])
    .ok();
    // push takes the lock shared: it only reads the cache
    let push = paused(&env, "push.after_object", &["push"]);
    let zero = [("MLV_LOCK_TIMEOUT", "0")];
    env.mlv_env(&zero, &["status", "--exit-code"]).ok();
    env.mlv_env(&zero, &["remote", "list"]).ok();
    // a second reader, also paused, alongside the first
    let second = paused(&env, "push.after_object", &["push"]);
    env.mlv_env(&zero, &["gc", "--dry-run"]).ok();
    let out = env.mlv_env(&zero, &["gc", "--force"]).fails(5);
    // readers do not record themselves
    assert!(out.stderr.contains("another mlv process holds its lock"), "{out}");
    env.mlv_env(&zero, &["add", "a"]).fails(5);
    env.mlv_env(&zero, &["fetch"]).fails(5);
    resume(push).ok();
    resume(second).ok();
    env.mlv_env(&zero, &["gc", "--force"]).ok();
}

#[test]
fn a_killed_holder_releases_the_lock() {
    let env = env_with(&["a"]);
    let first = paused(&env, "add.after_stage", &["add", "a"]);
    assert!(env.exists(".mlv/lock.info"));
    signal(&first, libc::SIGKILL);
    let out = Output::of_child(first);
    assert_eq!(out.code, None, "killed");
    // the stale record stays, the kernel lock does not
    assert!(env.exists(".mlv/lock.info"));
    env.mlv_env(&[("MLV_LOCK_TIMEOUT", "0")], &["add", "a"]).ok();
    assert!(!env.exists(".mlv/lock.info"), "removed on release");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn concurrent_writers_on_different_data_all_succeed() {
    let names = ["d0", "d1", "d2", "d3"];
    let env = env_with(&names);
    let adds: Vec<Child> = names
        .iter()
        .map(|n| env.command(MLV, &["add", n]).spawn())
        .collect();
    for c in adds {
        Output::of_child(c).ok();
    }
    let st = env.mlv(&["--json", "status", "--exit-code"]).ok().json();
    assert_eq!(st["pointers"].as_array().unwrap().len(), 4);
    let gitignore = env.read_str(".gitignore");
    for n in names {
        assert!(gitignore.contains(&format!("/{n}\n")), "{gitignore}");
        std::fs::remove_dir_all(env.path(n)).unwrap();
    }
    let checkouts: Vec<Child> = names
        .iter()
        .map(|n| env.command(MLV, &["checkout", n]).spawn())
        .collect();
    for c in checkouts {
        Output::of_child(c).ok();
    }
    for n in names {
        for i in 0..20 {
            assert_eq!(env.read_str(&format!("{n}/f{i}")), format!("{n} {i}"));
        }
    }
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn lock_files_are_ignored_by_git_even_in_older_repositories() {
    let env = Env::new();
    let ignore = env.read_str(".mlv/.gitignore");
    assert!(ignore.contains("\n/lock\n/lock.info\n"), "{ignore}");
    // a repository initialized before locking existed
    std::fs::write(
        env.path(".mlv/.gitignore"),
        "/cache/\n/tmp/\n/state/\n/config.local.toml\n",
    )
    .unwrap();
    std::fs::remove_file(env.path(".mlv/lock")).unwrap();
    env.mlv(&["status"]).ok();
    assert!(env.exists(".mlv/lock"));
    let st = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!st.contains("lock"), "{st}");
    assert_eq!(
        env.read_str(".mlv/.gitignore"),
        "/cache/\n/tmp/\n/state/\n/config.local.toml\n/lock\n/lock.info\n"
    );
}

/// Issue 12: Ctrl-C (SIGINT) kills a command without running its destructors, leaving its
/// temporary files in `.mlv/tmp`; the next command that takes the lock exclusive removes them
/// (a reader leaves them: a writer may be running).
#[test]
fn temporary_files_left_by_ctrl_c_are_removed_by_the_next_writer() {
    let env = Env::new();
    env.write("big.bin", vec![7u8; 1 << 20]);
    env.write("other.bin", b"other");
    let scratch = env.path(".mlv/tmp");
    let left = || -> Vec<String> {
        std::fs::read_dir(&scratch)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let child = paused(&env, "add.after_stage", &["add", "big.bin"]);
    assert!(!left().is_empty(), "the staged object is a temporary file");
    signal(&child, libc::SIGINT);
    let out = resume(child);
    assert_eq!(out.code, None, "killed by SIGINT\n{out}");
    assert!(!left().is_empty(), "SIGINT left them");
    env.mlv(&["status"]).ok();
    assert!(!left().is_empty(), "a reader does not touch them");
    env.mlv(&["add", "other.bin"]).ok();
    assert_eq!(left(), Vec::<String>::new());
    env.mlv(&["add", "big.bin"]).ok();
    assert_eq!(left(), Vec::<String>::new());
}
