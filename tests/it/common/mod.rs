//! The end-to-end harness: every test gets a temporary directory holding a fresh git repository
//! and runs the real `mlv` binary in a clean environment.

#![allow(dead_code)] // without the failpoints feature the crash and lock tests are left out

pub mod lineage;
pub mod maint;

use std::collections::BTreeMap;
use std::fmt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The binary under test.
pub const MLV: &str = env!("CARGO_BIN_EXE_mlv");

/// The directory of the fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(rel)
}

/// A temporary directory with a git work tree in `root`.
pub struct Env {
    _tmp: tempfile::TempDir,
    /// The temporary directory (canonical); HOME lives here.
    pub base: PathBuf,
    /// The git work tree.
    pub root: PathBuf,
}

impl Env {
    /// A fresh git repository with `mlv init` done.
    pub fn new() -> Env {
        let env = Env::git_only();
        env.mlv(&["init"]).ok();
        env
    }

    /// A fresh git repository without `mlv init`.
    pub fn git_only() -> Env {
        let env = Env::empty();
        std::fs::create_dir(&env.root).unwrap();
        env.git(&["init", "-q", "-b", "main"]);
        env
    }

    /// A `git clone` of `src`'s work tree in a fresh temporary directory: committed files only,
    /// so an empty cache and no `.mlv/config.local.toml`.
    pub fn clone_of(src: &Env) -> Env {
        let env = Env::empty();
        let (from, to) = (src.root.to_str().unwrap(), env.root.to_str().unwrap());
        env.command("git", &["clone", "-q", from, to])
            .cwd(&env.base)
            .run()
            .ok();
        env
    }

    /// A fresh git repository with `mlv init` done, in a temporary directory inside `dir`
    /// (for tests that need it on a particular file system).
    pub fn on(dir: &Path) -> Env {
        let env = Env::empty_in(dir);
        std::fs::create_dir(&env.root).unwrap();
        env.git(&["init", "-q", "-b", "main"]);
        env.mlv(&["init"]).ok();
        env
    }

    /// A `git clone` of `src`'s work tree in a temporary directory inside `dir`.
    pub fn clone_on(src: &Env, dir: &Path) -> Env {
        let env = Env::empty_in(dir);
        let (from, to) = (src.root.to_str().unwrap(), env.root.to_str().unwrap());
        env.command("git", &["clone", "-q", from, to])
            .cwd(&env.base)
            .run()
            .ok();
        env
    }

    /// A temporary directory with no git repository in it (`root` does not exist yet).
    pub fn empty() -> Env {
        Env::empty_in(&std::env::temp_dir())
    }

    /// Like [`Env::empty`], inside `dir`.
    pub fn empty_in(dir: &Path) -> Env {
        let tmp = tempfile::tempdir_in(dir).unwrap();
        let base = tmp.path().canonicalize().unwrap();
        std::fs::create_dir_all(base.join("home/.config")).unwrap();
        Env {
            root: base.join("repo"),
            base,
            _tmp: tmp,
        }
    }

    /// A command in the hermetic environment, running in the work tree.
    pub fn command(&self, program: &str, args: &[&str]) -> Cmd {
        let mut c = Command::new(program);
        c.args(args).current_dir(&self.root).env_clear();
        let bin_dir = Path::new(MLV).parent().unwrap();
        let path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
        let home = self.base.join("home");
        c.env("PATH", format!("{}:{path}", bin_dir.display()))
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "Test Author")
            .env("GIT_AUTHOR_EMAIL", "author@example.com")
            .env("GIT_COMMITTER_NAME", "Test Committer")
            .env("GIT_COMMITTER_EMAIL", "committer@example.com")
            .env("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z")
            .env("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z")
            .env("NO_COLOR", "1")
            .env("MLV_NO_PROGRESS", "1")
            // tests of link kinds run as root here; cli_links tests the refusal without it
            .env("MLV_LINK_AS_ROOT", "1");
        Cmd(c)
    }

    /// `mlv ARGS` in the work tree.
    pub fn mlv(&self, args: &[&str]) -> Output {
        self.command(MLV, args).run()
    }

    /// `mlv ARGS` with extra environment variables.
    pub fn mlv_env(&self, vars: &[(&str, &str)], args: &[&str]) -> Output {
        let mut c = self.command(MLV, args);
        for (k, v) in vars {
            c = c.env(k, v);
        }
        c.run()
    }

    /// `mlv ARGS` in `dir` (relative to the work tree).
    pub fn mlv_in(&self, dir: &str, args: &[&str]) -> Output {
        self.command(MLV, args).cwd(self.root.join(dir)).run()
    }

    /// `git ARGS` in the work tree; must succeed. Returns stdout.
    pub fn git(&self, args: &[&str]) -> String {
        self.command("git", args).run().ok().stdout
    }

    /// `sh -c LINE` in `dir` (relative to the base directory).
    pub fn sh(&self, dir: &str, line: &str) -> Output {
        self.command("sh", &["-c", line]).cwd(self.base.join(dir)).run()
    }

    /// The absolute path of `rel` in the work tree.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// Writes a file (creating parent directories), replacing whatever is there.
    pub fn write(&self, rel: &str, contents: impl AsRef<[u8]>) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        if std::fs::symlink_metadata(&p).is_ok() {
            std::fs::remove_file(&p).unwrap();
        }
        std::fs::write(&p, contents).unwrap();
    }

    /// Reads a file of the work tree.
    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.path(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
    }

    /// Reads a text file of the work tree.
    pub fn read_str(&self, rel: &str) -> String {
        String::from_utf8(self.read(rel)).unwrap()
    }

    /// Whether `rel` exists (not following a final symbolic link).
    pub fn exists(&self, rel: &str) -> bool {
        std::fs::symlink_metadata(self.path(rel)).is_ok()
    }

    /// Creates a directory (and parents).
    pub fn mkdir(&self, rel: &str) {
        std::fs::create_dir_all(self.path(rel)).unwrap();
    }

    /// Creates a symbolic link `rel` pointing to `target`.
    pub fn symlink(&self, target: &str, rel: &str) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    }

    /// The permission bits of `rel` (not following links).
    pub fn mode(&self, rel: &str) -> u32 {
        std::fs::symlink_metadata(self.path(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// The inode of `rel` (following links).
    pub fn ino(&self, rel: &str) -> u64 {
        std::fs::metadata(self.path(rel)).unwrap().ino()
    }

    /// Sets the modification time of every file under `rel` a minute into the past, so the
    /// stat cache may trust it (files as new as the stat cache are hashed again, as in git).
    pub fn backdate(&self, rel: &str) {
        let when = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for e in walkdir::WalkDir::new(self.path(rel)).follow_links(false) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let f = std::fs::File::options().write(true).open(e.path()).unwrap();
                f.set_modified(when).unwrap();
            }
        }
    }

    /// Where the cache keeps the object with this content.
    pub fn object_path(&self, content: &[u8]) -> PathBuf {
        let hex = b3(content);
        self.path(&format!(".mlv/cache/{}/{hex}", &hex[..2]))
    }

    /// Every object in the cache, by name.
    pub fn objects(&self) -> Vec<String> {
        let dir = self.path(".mlv/cache");
        if !dir.exists() {
            return Vec::new();
        }
        let mut out: Vec<String> = walkdir::WalkDir::new(&dir)
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(&dir).unwrap().to_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }

    /// The pack files in the cache.
    pub fn packs(&self) -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir(self.path(".mlv/cache/packs")) else {
            return Vec::new();
        };
        let mut out: Vec<PathBuf> = dir.map(|e| e.unwrap().path()).collect();
        out.sort();
        out
    }

    /// Sets `cache.pack_min_objects` in the committed configuration.
    pub fn set_pack_min(&self, n: usize) {
        let path = self.path(".mlv/config.toml");
        let mut text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\n[cache]\n"),
            "set_pack_min expects a [cache] table"
        );
        text = text.replace("\n[cache]\n", &format!("\n[cache]\npack_min_objects = {n}\n"));
        std::fs::write(&path, text).unwrap();
    }

    /// Parses a pointer file as TOML.
    pub fn pointer(&self, rel: &str) -> toml::Table {
        toml::from_str(&self.read_str(rel)).unwrap()
    }

    /// Rewrites the `size` a pointer file records (a hand edit).
    pub fn set_pointer_size(&self, rel: &str, size: u64) {
        let text = self.read_str(rel);
        let text: Vec<String> = text
            .lines()
            .map(|l| match l.starts_with("size = ") {
                true => format!("size = {size}"),
                false => l.to_string(),
            })
            .collect();
        std::fs::write(self.path(rel), text.join("\n") + "\n").unwrap();
    }

    /// Makes the directory pointer `rel` name a manifest whose entry `entry` records `size`
    /// bytes (as an mlv that recorded the scan's size of a growing file wrote it): the manifest
    /// is stored in the cache under its digest, the pointer's digest and total follow.
    pub fn forge_entry_size(&self, rel: &str, entry: &str, size: u64) {
        let hex = self.pointer(rel)["digest"].as_str().unwrap().to_string();
        let text = String::from_utf8(self.read(&format!(".mlv/cache/{}/{hex}", &hex[..2]))).unwrap();
        let mut total = 0u64;
        let lines: Vec<String> = text
            .lines()
            .map(|l| {
                let Ok(mut v) = serde_json::from_str::<serde_json::Value>(l.trim_end_matches(',')) else {
                    return l.to_string();
                };
                if v["path"] == entry {
                    v["size"] = size.into();
                }
                total += v["size"].as_u64().unwrap_or(0);
                let comma = if l.ends_with(',') { "," } else { "" };
                format!("{}{comma}", serde_json::to_string(&v).unwrap())
            })
            .collect();
        let forged = lines.join("\n") + "\n";
        let new = b3(forged.as_bytes());
        self.write(&format!(".mlv/cache/{}/{new}", &new[..2]), &forged);
        let pointer = self.read_str(rel).replace(&hex, &new);
        std::fs::write(self.path(rel), pointer).unwrap();
        self.set_pointer_size(rel, total);
    }

    /// Files staged in git.
    pub fn staged(&self) -> Vec<String> {
        let out = self.git(&["diff", "--cached", "--name-only"]);
        out.lines().map(str::to_string).collect()
    }

    /// Sets `core.autostage` in `.mlv/config.toml`.
    pub fn set_autostage(&self) {
        let text = self.read_str(".mlv/config.toml");
        let text = text.replace("autostage = false", "autostage = true");
        assert!(text.contains("autostage = true"));
        std::fs::write(self.path(".mlv/config.toml"), text).unwrap();
    }

    /// Everything in the work tree (except `.git`, `.mlv/tmp`, the stat cache in `.mlv/state`
    /// and the git-ignored lock files `.mlv/lock*`, which any command may create) plus the git
    /// index, to check that a refused command changed nothing.
    pub fn snapshot(&self) -> Snapshot {
        let mut files = BTreeMap::new();
        let walker = walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .into_iter()
            .filter_entry(|e| {
                let rel = e.path().strip_prefix(&self.root).unwrap();
                ![".git", ".mlv/tmp", ".mlv/state", ".mlv/lock", ".mlv/lock.info"]
                    .iter()
                    .any(|x| rel == Path::new(x))
            });
        for e in walker {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(&self.root).unwrap().display().to_string();
            let meta = e.path().symlink_metadata().unwrap();
            let what = if e.file_type().is_symlink() {
                format!("link -> {}", std::fs::read_link(e.path()).unwrap().display())
            } else if e.file_type().is_dir() {
                "dir".to_string()
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                format!("file {} {:o}", b3(&bytes), meta.permissions().mode() & 0o777)
            };
            files.insert(rel, what);
        }
        let index = self.git(&["ls-files", "--stage"]);
        Snapshot { files, index }
    }
}

/// The state of a work tree, for comparison.
#[derive(PartialEq, Eq, Debug)]
pub struct Snapshot {
    files: BTreeMap<String, String>,
    index: String,
}

impl Snapshot {
    /// Whether the work tree held `rel`.
    pub fn has(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }

    /// Asserts nothing changed since `before`, listing what did.
    #[track_caller]
    pub fn assert_same(&self, before: &Snapshot) {
        let mut diff = Vec::new();
        for (k, v) in &before.files {
            match self.files.get(k) {
                None => diff.push(format!("removed {k}")),
                Some(n) if n != v => diff.push(format!("changed {k}: {v} -> {n}")),
                _ => {}
            }
        }
        for k in self.files.keys().filter(|k| !before.files.contains_key(*k)) {
            diff.push(format!("created {k}"));
        }
        if self.index != before.index {
            diff.push(format!("git index: {} -> {}", before.index, self.index));
        }
        assert!(diff.is_empty(), "the work tree changed:\n{}", diff.join("\n"));
    }
}

/// The blake3 digest of `bytes` in hex, as `b3sum` prints it.
pub fn b3(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// The md5 of `bytes` in hex, as DVC 3.x records it.
pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest as _;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A command being prepared.
pub struct Cmd(Command);

impl Cmd {
    /// Sets an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Cmd {
        self.0.env(k, v);
        self
    }

    /// Removes an environment variable the harness sets.
    pub fn env_remove(mut self, k: &str) -> Cmd {
        self.0.env_remove(k);
        self
    }

    /// Runs in `dir`.
    pub fn cwd(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.0.current_dir(dir);
        self
    }

    /// Starts the command in the background, its output captured.
    pub fn spawn(mut self) -> std::process::Child {
        self.0
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("cannot start command")
    }

    /// Runs to completion.
    pub fn run(mut self) -> Output {
        let out = self.0.output().expect("cannot run command");
        Output {
            command: format!("{:?}", self.0),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// What a command did.
pub struct Output {
    /// The command line, for messages.
    pub command: String,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// The output of a spawned child, once it ends.
    pub fn of_child(child: std::process::Child) -> Output {
        let out = child.wait_with_output().expect("cannot wait for command");
        Output {
            command: "(spawned)".into(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "command: {}\nexit code: {:?}\n--- stdout ---\n{}--- stderr ---\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

impl Output {
    /// Asserts exit code 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        assert_eq!(self.code, Some(0), "expected success\n{self}");
        self.no_panic()
    }

    /// Asserts the exit code `code`.
    #[track_caller]
    pub fn fails(self, code: i32) -> Output {
        assert_eq!(self.code, Some(code), "expected exit code {code}\n{self}");
        self.no_panic()
    }

    /// Asserts the command did not panic.
    #[track_caller]
    pub fn no_panic(self) -> Output {
        assert!(!self.stderr.contains("panicked"), "panic\n{self}");
        self
    }

    /// Asserts stderr contains `s`.
    #[track_caller]
    pub fn stderr_has(self, s: &str) -> Output {
        assert!(self.stderr.contains(s), "stderr lacks {s:?}\n{self}");
        self
    }

    /// Asserts stdout contains `s`.
    #[track_caller]
    pub fn stdout_has(self, s: &str) -> Output {
        assert!(self.stdout.contains(s), "stdout lacks {s:?}\n{self}");
        self
    }

    /// The lines of stderr starting with `prefix`.
    pub fn stderr_lines(&self, prefix: &str) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    /// Asserts a refusal: exit code 1, exactly one `error:` line containing `what`, and (when
    /// given) a `hint:` line containing `hint`.
    #[track_caller]
    pub fn refused(self, what: &str, hint: Option<&str>) -> Output {
        let out = self.fails(1);
        let errors = out.stderr_lines("error: ");
        assert_eq!(errors.len(), 1, "expected one error line\n{out}");
        assert!(errors[0].contains(what), "error line lacks {what:?}\n{out}");
        if let Some(h) = hint {
            let hints = out.stderr_lines("hint: ");
            assert!(
                hints.len() == 1 && hints[0].contains(h),
                "expected one hint line with {h:?}\n{out}"
            );
        }
        out
    }

    /// Parses stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{self}"))
    }
}

/// The objects of a pack file, read by the layout in docs/format.md (independently of mlv's
/// own reader): digest -> (offset, bytes). Fails unless the file is a complete pack named by
/// the digest of its index whose every object hashes to its name.
pub fn read_pack(path: &Path) -> Result<BTreeMap<String, (u64, Vec<u8>)>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let fail = |why: &str| format!("{}: {why}", path.display());
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    if bytes.len() < 64 || &bytes[..8] != b"MLVPACK1" || &bytes[bytes.len() - 8..] != b"MLVPEND1" {
        return Err(fail("not a complete pack"));
    }
    let foot = bytes.len() - 56;
    let (count, index_at) = (u64_at(foot) as usize, u64_at(foot + 8) as usize);
    if index_at + count * 48 != foot {
        return Err(fail("footer does not match the size"));
    }
    let index = &bytes[index_at..foot];
    let name = path.file_stem().unwrap().to_str().unwrap();
    if b3(index) != name || hex_of(&bytes[foot + 16..foot + 48]) != name {
        return Err(fail("index does not hash to the pack's name"));
    }
    let mut out = BTreeMap::new();
    for e in index.chunks(48) {
        let digest = hex_of(&e[..32]);
        let off = u64::from_le_bytes(e[32..40].try_into().unwrap());
        let len = u64::from_le_bytes(e[40..48].try_into().unwrap());
        let body = bytes
            .get(off as usize..(off + len) as usize)
            .filter(|_| off >= 8 && (off + len) as usize <= index_at)
            .ok_or_else(|| fail("an object lies outside the object area"))?;
        if b3(body) != digest {
            return Err(fail(&format!("object {digest} holds other content")));
        }
        out.insert(digest, (off, body.to_vec()));
    }
    Ok(out)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic incompressible bytes (xorshift), for data that must not dedupe or compress.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// For a test that needs the process to itself (it sets environment variables, or measures
/// the peak memory): runs the test `name` (its path in this binary, e.g.
/// `remote_memory::large_object_round_trip_in_bounded_memory`) alone in a fresh process of
/// this test binary, with `vars` set, and asserts it passed. Returns `true` in that child,
/// where the caller then runs the test's body, and `false` in the parent, which returns.
#[track_caller]
pub fn isolated(name: &str, vars: &[(&str, &str)]) -> bool {
    const CHILD: &str = "MLV_TEST_ISOLATED";
    if std::env::var(CHILD).is_ok_and(|v| v == name) {
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let mut c = Command::new(exe);
    c.args([name, "--exact", "--test-threads=1", "--nocapture"])
        .env(CHILD, name);
    for (k, v) in vars {
        c.env(k, v);
    }
    let out = c.output().expect("cannot run the test binary");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    eprint!("{stderr}");
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{name} failed in its own process ({:?})\n--- stdout ---\n{stdout}--- stderr ---\n{stderr}",
        out.status
    );
    false
}
