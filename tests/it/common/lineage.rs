//! The lineage tests' repository: an [`Env`] with `mlv init` committed, whose commands carry
//! one author and a clock that advances a minute per command (so records and commits have
//! distinct, reproducible times).

use std::cell::Cell;
use std::path::PathBuf;

use serde_json::Value;

use super::{Cmd, Env, Output, MLV};

/// A test repository.
pub struct Repo {
    env: Env,
    clock: Cell<u64>,
}

impl Repo {
    /// A fresh git repository on branch `main` with `mlv init` run and committed.
    pub fn new() -> Repo {
        let env = Env::empty();
        std::fs::create_dir(&env.root).unwrap();
        let r = Repo {
            env,
            clock: Cell::new(0),
        };
        r.git(&["init", "-q", "-b", "main"]);
        r.ok(&["init"]);
        r.commit("mlv init");
        r
    }

    /// `PROGRAM ARGS` in the work tree, by Ada Lovelace, a minute after the previous command.
    fn command(&self, program: &str, args: &[&str]) -> Cmd {
        let t = 1_700_000_000 + self.clock.get() * 60;
        self.clock.set(self.clock.get() + 1);
        let date = format!("@{t} +0000");
        self.env
            .command(program, args)
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada Lovelace")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
    }

    /// Runs `mlv ARGS` in the work-tree root.
    pub fn mlv(&self, args: &[&str]) -> Output {
        self.command(MLV, args).run()
    }

    /// Starts `mlv ARGS` in the work-tree root, its output piped.
    pub fn spawn(&self, args: &[&str]) -> std::process::Child {
        self.spawn_program(MLV, args)
    }

    /// Starts `PROGRAM ARGS` in the work-tree root with mlv's environment, its output piped.
    pub fn spawn_program(&self, program: &str, args: &[&str]) -> std::process::Child {
        self.command(program, args).spawn()
    }

    /// Runs `mlv ARGS`, which must succeed.
    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> Output {
        self.mlv(args).ok()
    }

    /// Runs `mlv --json ARGS`, which must succeed, and parses its output.
    #[track_caller]
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.ok(&all).json()
    }

    /// Runs `mlv ARGS`, which must fail with `code`.
    #[track_caller]
    pub fn fails(&self, args: &[&str], code: i32) -> Output {
        self.mlv(args).fails(code)
    }

    /// Runs `git ARGS`, which must succeed; returns its standard output.
    #[track_caller]
    pub fn git(&self, args: &[&str]) -> String {
        self.command("git", args).run().ok().stdout
    }

    /// Stages everything and commits.
    pub fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    /// Writes a file, creating its directories.
    pub fn write(&self, path: &str, text: &str) {
        self.env.write(path, text);
    }

    /// Reads a file.
    pub fn read(&self, path: &str) -> String {
        self.env.read_str(path)
    }

    /// The absolute path of `path`.
    pub fn path(&self, path: &str) -> PathBuf {
        self.env.path(path)
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
        match std::fs::read_to_string(self.path(".mlv/lineage.jsonl")) {
            Ok(t) => t.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Whether `path` exists.
    pub fn exists(&self, path: &str) -> bool {
        self.path(path).exists()
    }
}
