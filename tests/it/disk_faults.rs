//! Disk full and permission denied, for real: caches and repositories on a size-limited tmpfs,
//! and the binary run as `nobody` (via `setpriv`) against directories it cannot write.
//!
//! Needs root (to mount and to drop privileges). When that is impossible the tests FAIL if
//! `CI` is set and skip with a printed reason otherwise. Mounts are undone by a guard, also
//! when a test fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{b3, noise, Env, Output, MLV};

const KIB: usize = 1024;
const MIB: usize = 1 << 20;
/// The user and group `nobody`.
const NOBODY: u32 = 65534;

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Fails under CI, skips loudly otherwise.
fn cannot(reason: &str) -> Option<std::convert::Infallible> {
    assert!(!in_ci(), "{reason}; CI must run the disk-fault tests (as root)");
    eprintln!("\n**********\n*** skipping: {reason}\n**********\n");
    None
}

/// A size-limited tmpfs mounted on a fresh directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts `size` bytes of tmpfs, or explains why it cannot (see [`cannot`]).
    fn mount(size: usize) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={}k,mode=0755", size / KIB),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(Tmpfs { dir }),
            Ok(o) => {
                let why = String::from_utf8_lossy(&o.stderr).trim().to_string();
                cannot(&format!("cannot mount a tmpfs ({why})")).map(|n| match n {})
            }
            Err(e) => cannot(&format!("cannot run mount ({e})")).map(|n| match n {}),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still inside): detach it so the directory can go.
            let _ = Command::new("umount").arg("-l").arg(self.dir.path()).status();
        }
    }
}

/// Every file under `dir` (relative paths).
fn files_under(dir: &Path) -> Vec<String> {
    if !dir.exists() {
        return Vec::new();
    }
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| !e.file_type().is_dir())
        .map(|e| e.path().strip_prefix(dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

/// Asserts every object under `cache` hashes to its name and no temporary file is left in
/// `tmp` dirs (`cache/tmp` or `.mlv/tmp`).
#[track_caller]
fn cache_is_clean(cache: &Path, extra_tmp: &[PathBuf]) {
    for rel in files_under(cache) {
        let p = cache.join(&rel);
        assert!(
            !rel.starts_with("tmp/"),
            "temporary file left behind: {}",
            p.display()
        );
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        assert_eq!(
            b3(&std::fs::read(&p).unwrap()),
            name,
            "partial object {}",
            p.display()
        );
    }
    for t in extra_tmp {
        assert!(
            files_under(t).is_empty(),
            "temporary files left in {}: {:?}",
            t.display(),
            files_under(t)
        );
    }
}

/// Asserts a clean failure: exit 1, one `error:` line that contains `what`, `cause` somewhere
/// in stderr (the `caused by:` line), a `hint:` line containing `hint`, no panic.
#[track_caller]
fn one_line(out: &Output, what: &str, cause: &str, hint: &str) {
    assert_eq!(out.code, Some(1), "expected exit code 1\n{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    let errors = out.stderr_lines("error: ");
    assert_eq!(errors.len(), 1, "expected one error line\n{out}");
    assert!(errors[0].contains(what), "error line lacks {what:?}\n{out}");
    assert!(out.stderr.contains(cause), "stderr lacks {cause:?}\n{out}");
    let hints = out.stderr_lines("hint: ");
    assert!(
        hints.len() == 1 && hints[0].contains(hint),
        "expected a hint with {hint:?}\n{out}"
    );
}

/// [`one_line`] for a full disk.
#[track_caller]
fn disk_full(out: &Output, what: &str) {
    one_line(out, what, "No space left on device", "free space");
}

/// [`one_line`] for a denied permission.
#[track_caller]
fn denied(out: &Output, what: &str) {
    one_line(out, what, "Permission denied", "writable");
}

// ---------------------------------------------------------------------------------------------
// Disk full.

#[test]
fn add_larger_than_the_free_space_of_the_cache_fails_cleanly() {
    let Some(fs) = Tmpfs::mount(MIB) else { return };
    let cache = fs.path().join("cache");
    let env = Env::new();
    env.write("small.txt", b"fits\n");
    env.write("big.bin", noise(3 * MIB, 1));
    env.write("dir/a.bin", noise(200 * KIB, 2));
    env.write("dir/b.bin", noise(3 * MIB, 3));
    let before = env.snapshot();
    let cache_env = [("MLV_CACHE_DIR", cache.to_str().unwrap())];
    for target in ["big.bin", "dir"] {
        let out = env.mlv_env(&cache_env, &["add", target]);
        disk_full(&out, cache.to_str().unwrap());
        env.snapshot().assert_same(&before);
        assert!(!env.exists(&format!("{target}.mlv")), "pointer written\n{out}");
        cache_is_clean(&cache, &[env.path(".mlv/tmp")]);
    }
    // What fits still works, and the space taken by failed attempts is free again.
    env.mlv_env(&cache_env, &["add", "small.txt"]).ok();
    cache_is_clean(&cache, &[env.path(".mlv/tmp")]);
    assert_eq!(files_under(&cache).len(), 1, "{:?}", files_under(&cache));
}

#[test]
fn add_in_a_repository_on_a_full_disk_fails_cleanly() {
    // The whole repository on a 4 MiB tmpfs: the 2.5 MiB file fits, its copy in the cache does not.
    let Some(fs) = Tmpfs::mount(4 * MIB) else { return };
    let env = Env::on(fs.path());
    env.write("big.bin", noise(5 * MIB / 2, 4));
    let before = env.snapshot();
    let out = env.mlv(&["add", "big.bin"]);
    disk_full(&out, ".mlv/tmp");
    env.snapshot().assert_same(&before);
    assert!(!env.exists("big.bin.mlv"));
    cache_is_clean(&env.path(".mlv/cache"), &[env.path(".mlv/tmp")]);
}

#[test]
fn add_with_a_full_workspace_writes_no_pointer() {
    // The repository on a full tmpfs, the cache elsewhere: the object is stored, but neither
    // the stat cache (saved first) nor the pointer nor the .gitignore entry can be written.
    let Some(fs) = Tmpfs::mount(2 * MIB) else { return };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("cache");
    let env = Env::on(fs.path());
    env.write("x.bin", noise(300 * KIB, 11));
    env.write("sub/y.bin", noise(300 * KIB, 12));
    fill(fs.path());
    let before = env.snapshot();
    let cache_env = [("MLV_CACHE_DIR", cache.to_str().unwrap())];
    for target in ["x.bin", "sub"] {
        let out = env.mlv_env(&cache_env, &["add", target]);
        disk_full(&out, ".mlv/state/stat");
        env.snapshot().assert_same(&before);
        cache_is_clean(&cache, &[env.path(".mlv/tmp")]);
    }
    // Room again: the add converges.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    env.mlv_env(&cache_env, &["add", "x.bin", "sub"]).ok();
    assert!(env.exists("x.bin.mlv") && env.exists("sub.mlv"));
}

#[test]
fn add_that_cannot_save_its_stat_cache_leaves_the_old_pointer() {
    // Issue 12, item 10. A repository on a tmpfs with room for a pointer but not for the
    // rewritten stat cache (some 60 KiB: 200 files with long names): the add of a changed
    // file fails, and its pointer must still be the old one (the stat cache is saved before
    // any pointer is written).
    let Some(fs) = Tmpfs::mount(4 * MIB) else { return };
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = cache_dir.path().join("cache");
    let cache_env = [("MLV_CACHE_DIR", cache.to_str().unwrap())];
    let env = Env::on(fs.path());
    env.write("x.bin", b"version 1\n");
    for i in 0..200 {
        env.write(&format!("many/{i:0>200}"), b"x");
    }
    env.mlv_env(&cache_env, &["add", "x.bin", "many"]).ok();
    let stat_len = std::fs::metadata(env.path(".mlv/state/stat")).unwrap().len();
    assert!(stat_len > 40 * KIB as u64, "stat cache of {stat_len} bytes");
    let old_pointer = env.read_str("x.bin.mlv");
    env.write("x.bin", b"version 2, longer\n");
    // full, but for 16 KiB: a pointer fits, the stat cache does not
    std::fs::write(fs.path().join("spare"), vec![0u8; 16 * KIB]).unwrap();
    fill(fs.path());
    std::fs::remove_file(fs.path().join("spare")).unwrap();
    let out = env.mlv_env(&cache_env, &["add", "x.bin"]);
    disk_full(&out, ".mlv/state/stat");
    assert_eq!(
        env.read_str("x.bin.mlv"),
        old_pointer,
        "pointer rewritten by a failed add\n{out}"
    );
    // Room again: the add converges.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    env.mlv_env(&cache_env, &["add", "x.bin"]).ok();
    assert_eq!(
        env.pointer("x.bin.mlv")["digest"].as_str().unwrap(),
        b3(b"version 2, longer\n")
    );
}

#[test]
fn untrack_that_cannot_save_its_stat_cache_keeps_the_pointer() {
    // The sibling of the test above: `untrack` forgets the file in the stat cache; when that
    // cannot be saved, the pointer must still be there.
    let Some(fs) = Tmpfs::mount(4 * MIB) else { return };
    let env = Env::on(fs.path());
    env.write("x.bin", b"tracked\n");
    for i in 0..200 {
        env.write(&format!("many/{i:0>200}"), b"x");
    }
    env.mlv(&["add", "x.bin", "many"]).ok();
    let pointer = env.read_str("x.bin.mlv");
    std::fs::write(fs.path().join("spare"), vec![0u8; 16 * KIB]).unwrap();
    fill(fs.path());
    std::fs::remove_file(fs.path().join("spare")).unwrap();
    let out = env.mlv(&["untrack", "x.bin"]);
    disk_full(&out, ".mlv/state/stat");
    assert_eq!(
        env.read_str("x.bin.mlv"),
        pointer,
        "pointer removed by a failed untrack\n{out}"
    );
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    env.mlv(&["untrack", "x.bin"]).ok();
    assert!(!env.exists("x.bin.mlv"));
}

/// Fills the file system holding `dir` with `dir/filler` until it is full.
fn fill(dir: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join("filler")).unwrap();
    let block = vec![0u8; 64 * KIB];
    while f.write_all(&block).is_ok() {}
    while f.write_all(&block[..512]).is_ok() {}
}

/// A source repository with `big.bin` (3 MiB) and `small.txt` pushed to a local remote; and a
/// clone configured with the same remote.
fn pushed(big: usize) -> (Env, PathBuf, tempfile::TempDir) {
    let store = tempfile::tempdir().unwrap();
    let remote = store.path().join("store");
    let src = Env::new();
    src.write("big.bin", noise(big, 5));
    src.write("small.txt", b"small\n");
    src.mlv(&["add", "big.bin", "small.txt"]).ok();
    src.mlv(&[
        "remote",
        "add",
        "origin",
        remote.to_str().unwrap(),
        "--default",
        "--format",
        "1",
    ])
    .ok();
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "data"]);
    src.mlv(&["push"]).ok();
    (src, remote, store)
}

#[test]
fn fetch_and_pull_filling_the_cache_fail_cleanly() {
    let Some(fs) = Tmpfs::mount(MIB) else { return };
    let cache = fs.path().join("cache");
    let (src, _remote, _keep) = pushed(3 * MIB);
    let dst = Env::clone_of(&src);
    let cache_env = [("MLV_CACHE_DIR", cache.to_str().unwrap())];
    let big = b3(&src.read("big.bin"));
    for cmd in ["fetch", "pull"] {
        let before = dst.snapshot();
        let out = dst.mlv_env(&cache_env, &[cmd, "big.bin"]);
        disk_full(&out, cache.to_str().unwrap());
        dst.snapshot().assert_same(&before);
        assert!(!dst.exists("big.bin"), "{cmd}: checked out\n{out}");
        cache_is_clean(&cache, &[dst.path(".mlv/tmp")]);
        assert!(!files_under(&cache).iter().any(|f| f.ends_with(&big)), "{cmd}");
    }
    // What fits is pulled.
    dst.mlv_env(&cache_env, &["pull", "small.txt"]).ok();
    assert_eq!(dst.read("small.txt"), b"small\n");
}

#[test]
fn checkout_filling_the_workspace_leaves_no_partial_file() {
    // Repository on a 5 MiB tmpfs: the 2 MiB object fits in the cache, its copy in the
    // workspace does not (tmpfs has no reflinks, so checkout copies).
    let Some(fs) = Tmpfs::mount(5 * MIB) else { return };
    let (src, remote, _keep) = pushed(2 * MIB);
    let dst = Env::clone_on(&src, fs.path());
    // Fill the disk so that the cache copy fits but a second copy does not.
    dst.mlv(&["fetch", "big.bin"]).ok();
    let free = free_bytes(fs.path());
    let filler = free.saturating_sub(MIB as u64) as usize;
    std::fs::write(fs.path().join("filler"), vec![0u8; filler]).unwrap();
    let before = dst.snapshot();
    let out = dst.mlv(&["pull", "big.bin"]);
    disk_full(&out, "big.bin");
    dst.snapshot().assert_same(&before);
    assert!(!dst.exists("big.bin"), "{out}");
    let strays: Vec<String> = files_under(&dst.root)
        .into_iter()
        .filter(|f| !f.starts_with(".git/") && !f.starts_with(".mlv/"))
        .filter(|f| !before.has(f))
        .collect();
    assert!(strays.is_empty(), "temporary files in the workspace: {strays:?}");
    cache_is_clean(&dst.path(".mlv/cache"), &[dst.path(".mlv/tmp")]);
    // Room again: the pull converges.
    std::fs::remove_file(fs.path().join("filler")).unwrap();
    dst.mlv(&["pull"]).ok();
    assert_eq!(dst.read("big.bin"), src.read("big.bin"));
    let _ = remote;
}

/// Free bytes on the file system holding `p`.
fn free_bytes(p: &Path) -> u64 {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().nth(1).unwrap().trim().parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Permission denied.

/// `mlv ARGS` in `env` as `nobody`, or `None` (with the reason handled) when not possible.
fn as_nobody(env: &Env, args: &[&str]) -> Output {
    let mut full = vec![
        "--reuid=65534".to_string(),
        "--regid=65534".to_string(),
        "--clear-groups".to_string(),
        MLV.to_string(),
    ];
    full.extend(args.iter().map(|a| a.to_string()));
    let full: Vec<&str> = full.iter().map(String::as_str).collect();
    env.command("setpriv", &full).run()
}

/// Whether `setpriv` can drop to nobody here (needs root and setpriv).
fn can_drop_root() -> bool {
    let ok = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let _ = cannot("cannot drop root with setpriv (not root, or setpriv missing)");
    }
    ok
}

/// Runs `mlv ARGS` as nobody with `rel` locked: the temporary directory (and `also`) is handed
/// to nobody so git and mlv can use the repository, `rel` stays root's and read-only for
/// others. Afterwards everything is root's again, so the harness's git can inspect it.
fn locked_run(env: &Env, rel: &str, also: &[&Path], args: &[&str]) -> Output {
    chown_r(&env.base, NOBODY);
    for p in also {
        chown_r(p, NOBODY);
    }
    let p = env.path(rel);
    chown_r(&p, 0);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_nobody(env, args);
    chown_r(&env.base, 0);
    for p in also {
        chown_r(p, 0);
    }
    out
}

fn chown_r(p: &Path, id: u32) {
    for e in walkdir::WalkDir::new(p) {
        let e = e.unwrap();
        std::os::unix::fs::lchown(e.path(), Some(id), Some(id)).unwrap();
    }
}

/// A fetch where one object is damaged on the remote and the cache cannot take the others
/// reports the transfer's error (the damaged object), not the failed publish that follows it.
#[test]
fn fetch_reports_the_transfer_error_before_a_publish_error() {
    if !can_drop_root() {
        return;
    }
    let (src, remote, _keep) = pushed(64 * KIB);
    let hex = b3(&src.read("big.bin"));
    let damaged = remote.join(&hex[..2]).join(&hex);
    std::fs::set_permissions(&damaged, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&damaged, b"not the object").unwrap();
    let dst = Env::clone_of(&src);
    dst.mlv(&["remote", "modify", "origin", "jobs", "1"]).ok();
    dst.mkdir(".mlv/cache");
    let out = locked_run(&dst, ".mlv/cache", &[&remote], &["fetch"]);
    // 3: an integrity problem (the damaged object), not 1 (the unwritable cache).
    assert_eq!(out.code, Some(3), "{out}");
    let errors = out.stderr_lines("error: ");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(errors[0].contains("is corrupt"), "{out}");
    assert!(!out.stderr.contains("Permission denied"), "{out}");
}

#[test]
fn add_with_an_unwritable_cache_names_the_path() {
    if !can_drop_root() {
        return;
    }
    let env = Env::new();
    env.write("x.bin", noise(100 * KIB, 7));
    env.mkdir(".mlv/cache");
    let before = env.snapshot();
    let out = locked_run(&env, ".mlv/cache", &[], &["add", "x.bin"]);
    denied(&out, ".mlv/cache");
    env.snapshot().assert_same(&before);
    assert!(files_under(&env.path(".mlv/tmp")).is_empty());
}

#[test]
fn add_in_an_unwritable_directory_names_the_path() {
    if !can_drop_root() {
        return;
    }
    let env = Env::new();
    env.write("ro/x.bin", noise(100 * KIB, 8));
    let before = env.snapshot();
    let out = locked_run(&env, "ro", &[], &["add", "ro/x.bin"]);
    denied(&out, "ro");
    // Like git's loose objects, a complete verified object may stay in the cache (gc removes
    // it); nothing else changes.
    let cache = env.path(".mlv/cache");
    cache_is_clean(&cache, &[env.path(".mlv/tmp")]);
    for e in std::fs::read_dir(&cache).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::remove_dir_all(&p).unwrap();
    }
    env.snapshot().assert_same(&before);
}

#[test]
fn checkout_into_an_unwritable_directory_names_the_path() {
    if !can_drop_root() {
        return;
    }
    let env = Env::new();
    env.write("data/x.bin", noise(100 * KIB, 9));
    env.mlv(&["add", "data/x.bin"]).ok();
    std::fs::remove_file(env.path("data/x.bin")).unwrap();
    let before = env.snapshot();
    for cmd in [vec!["checkout", "data/x.bin"], vec!["checkout"]] {
        let out = locked_run(&env, "data", &[], &cmd);
        denied(&out, "data");
        env.snapshot().assert_same(&before);
    }
}

#[test]
fn pull_with_an_unwritable_cache_names_the_path() {
    if !can_drop_root() {
        return;
    }
    let (src, _remote, store) = pushed(100 * KIB);
    let dst = Env::clone_of(&src);
    dst.mkdir(".mlv/cache");
    let before = dst.snapshot();
    let out = locked_run(&dst, ".mlv/cache", &[store.path()], &["pull"]);
    denied(&out, ".mlv/cache");
    dst.snapshot().assert_same(&before);
}
