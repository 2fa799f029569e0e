//! A temporary git repository with mlv initialized, and the real `mlv` binary run in it with
//! a hermetic environment.

#![allow(dead_code)]

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A test repository.
pub struct Repo {
    _dir: tempfile::TempDir,
    /// The work-tree root.
    pub root: PathBuf,
    home: PathBuf,
    clock: Cell<u64>,
}

/// What a command printed and how it ended.
pub struct Run {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code.
    pub code: i32,
}

impl Run {
    fn of(out: Output) -> Run {
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            code: out.status.code().unwrap_or(-1),
        }
    }

    /// Standard output parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
}

impl Repo {
    /// A fresh git repository on branch `main` with `mlv init` run and committed.
    pub fn new() -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repo");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let root = root.canonicalize().unwrap();
        let r = Repo {
            _dir: dir,
            root,
            home,
            clock: Cell::new(0),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.ok(&["init"]);
        r.commit("mlv init");
        r
    }

    fn env(&self, cmd: &mut Command) {
        let t = 1_700_000_000 + self.clock.get() * 60;
        self.clock.set(self.clock.get() + 1);
        let date = format!("@{t} +0000");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Lovelace")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("NO_COLOR", "1")
            .env("MLV_NO_PROGRESS", "1")
            .current_dir(&self.root);
    }

    /// Runs `mlv ARGS` in the work-tree root.
    pub fn mlv(&self, args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mlv"));
        cmd.args(args);
        self.env(&mut cmd);
        Run::of(cmd.output().unwrap())
    }

    /// Starts `mlv ARGS` in the work-tree root, its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.spawn_program(env!("CARGO_BIN_EXE_mlv"), args)
    }

    /// Starts `PROGRAM ARGS` in the work-tree root with mlv's environment, its output piped.
    pub fn spawn_program(&self, program: &str, args: &[&str]) -> std::process::Child {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        self.env(&mut cmd);
        cmd.spawn().unwrap()
    }

    /// Runs `mlv ARGS`, which must succeed.
    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.mlv(args);
        assert_eq!(
            r.code, 0,
            "mlv {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs `mlv --json ARGS`, which must succeed, and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// Runs `mlv ARGS`, which must fail with `code`.
    pub fn fails(&self, args: &[&str], code: i32) -> Run {
        let r = self.mlv(args);
        assert_eq!(
            r.code, code,
            "mlv {args:?}:\nstdout:\n{}\nstderr:\n{}",
            r.stdout, r.stderr
        );
        r
    }

    /// Runs `git ARGS`, which must succeed; returns its standard output.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        cmd.args(args);
        self.env(&mut cmd);
        let r = Run::of(cmd.output().unwrap());
        assert_eq!(r.code, 0, "git {args:?} failed:\n{}\n{}", r.stdout, r.stderr);
        r.stdout
    }

    /// Stages everything and commits.
    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    /// Writes a file, creating its directories.
    pub fn write(&self, path: &str, text: &str) {
        let p = self.root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    /// Reads a file.
    pub fn read(&self, path: &str) -> String {
        std::fs::read_to_string(self.root.join(path)).unwrap()
    }

    /// The absolute path of `path`.
    pub fn path(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    /// The digest in the pointer file of `data`.
    pub fn digest(&self, data: &str) -> String {
        let text = self.read(&format!("{data}.mlv"));
        let line = text
            .lines()
            .find(|l| l.starts_with("digest"))
            .expect("a digest line");
        line.split('"').nth(1).unwrap().to_string()
    }

    /// The lines of the lineage file.
    pub fn lineage_lines(&self) -> Vec<String> {
        match std::fs::read_to_string(self.root.join(".mlv/lineage.jsonl")) {
            Ok(t) => t.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        Path::new(&self.root.join(path)).exists()
    }
}
