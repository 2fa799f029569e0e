//! `mlv import-dvc` on repositories made by the real DVC CLI (3.67.1, pinned in `.ci/dvc-venv`
//! by `.ci/install-dvc.sh`): files and nested directories become mlv pointers whose data a fresh
//! clone pulls byte for byte; bytes that do not match DVC's md5 and hostile `.dvc` files import
//! nothing; the DVC 2.x cache layout is read; a second run changes nothing.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Env, Output};
use crate::support;

/// A git repository driven by the real `dvc` CLI (shared with `cli_import_dvc_remote`).
pub(crate) struct Dvc {
    pub(crate) env: Env,
    pub(crate) dvc: PathBuf,
}

impl Dvc {
    /// A git repository with `dvc init` done and no `mlv init` (import-dvc does it).
    pub(crate) fn new() -> Option<Dvc> {
        let dvc = support::dvc()?;
        let env = Env::git_only();
        let d = Dvc { env, dvc };
        d.run(&["init", "-q"]);
        d.env.git(&["add", "-A"]);
        d.env.git(&["commit", "-qm", "dvc init"]);
        Some(d)
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.run_in(&self.env.root, args)
    }

    /// `dvc ARGS` in `dir` (DVC addresses a `dvc.yaml` by the directory it runs in).
    pub(crate) fn run_in(&self, dir: &Path, args: &[&str]) -> Output {
        self.env
            .command(self.dvc.to_str().unwrap(), args)
            .cwd(dir)
            .env("DVC_NO_ANALYTICS", "1")
            .env(
                "DVC_SITE_CACHE_DIR",
                self.env.base.join("dvc-site").to_str().unwrap(),
            )
            .run()
            .ok()
    }

    /// `dvc add` of `paths`, committed.
    pub(crate) fn add(&self, paths: &[&str]) {
        let mut args = vec!["add", "-q"];
        args.extend(paths);
        self.run(&args);
        self.env.git(&["add", "-A"]);
        self.env.git(&["commit", "-qm", "dvc add"]);
    }

    /// The md5 DVC recorded in `file` (its first output).
    pub(crate) fn md5(&self, file: &str) -> String {
        let text = self.env.read_str(file);
        let line = text.lines().find(|l| l.contains("md5: ")).unwrap();
        line.split("md5: ").nth(1).unwrap().trim().to_string()
    }

    /// DVC 3.x's cache object for `md5`.
    pub(crate) fn object(&self, md5: &str) -> PathBuf {
        self.env
            .path(&format!(".dvc/cache/files/md5/{}/{}", &md5[..2], &md5[2..]))
    }
}

/// Replaces the bytes of one of DVC's (read-only) cache objects.
pub(crate) fn overwrite(obj: &Path, bytes: &[u8]) {
    let mut perms = std::fs::metadata(obj).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(obj, perms).unwrap();
    std::fs::write(obj, bytes).unwrap();
}

pub(crate) fn tree() -> Vec<(&'static str, &'static [u8])> {
    vec![
        ("a.txt", b"alpha\n"),
        ("data/one.csv", b"x,y\n1,2\n"),
        ("data/sub/two.bin", b"\x00\x01\x02binary"),
        ("data/sub/deeper/three.txt", b"three\n"),
    ]
}

pub(crate) fn write_tree(env: &Env) {
    for (p, b) in tree() {
        env.write(p, b);
    }
}

pub(crate) fn import(env: &Env, args: &[&str]) -> Value {
    let mut a = vec!["import-dvc", "--json"];
    a.extend(args);
    env.mlv(&a).ok().json()
}

/// `mlv status` is clean; after a commit and `mlv push`, a fresh clone pulls the same bytes.
pub(crate) fn round_trip(env: &Env, files: &[(&str, &[u8])]) {
    let status = env.mlv(&["status", "--json"]).ok();
    assert_eq!(status.json()["clean"], true, "{status}");
    let store = env.base.join("store");
    env.mlv(&["remote", "add", "store", store.to_str().unwrap(), "--default"])
        .ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "mlv import-dvc"]);
    env.mlv(&["push"]).ok();
    let clone = Env::clone_of(env);
    assert!(!clone.path(".dvc/cache").exists());
    clone.mlv(&["pull"]).ok();
    for (p, b) in files {
        assert_eq!(clone.read(p), *b, "{p}");
    }
    let status = clone.mlv(&["status", "--json"]).ok();
    assert_eq!(status.json()["clean"], true, "{status}");
}

#[test]
fn import_dvc_files_and_nested_directories_round_trip() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    // one file from the DVC cache, the rest from the workspace
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["pointers_written"], 2, "{r}");
    let conv = r["converted"].as_array().unwrap();
    assert_eq!(conv[0]["path"], "a.txt");
    assert_eq!(conv[0]["source"], "dvc-cache");
    assert_eq!(conv[1]["path"], "data");
    assert_eq!(conv[1]["kind"], "directory");
    assert_eq!(conv[1]["source"], "workspace");
    assert_eq!(r["bytes"]["dvc-cache"], 6);
    assert_eq!(
        r["removed_dvc_files"],
        serde_json::json!(["a.txt.dvc", "data.dvc"])
    );
    assert!(!d.env.path("a.txt.dvc").exists() && !d.env.path("data.dvc").exists());
    let index = d.env.git(&["ls-files"]);
    assert!(!index.contains(".dvc\n"), "{index}");
    assert!(d.env.path("a.txt.mlv").exists() && d.env.path("data.mlv").exists());
    assert_eq!(d.env.read("a.txt"), b"alpha\n");
    round_trip(&d.env, &tree());
}

#[test]
fn import_dvc_twice_changes_nothing() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    import(&d.env, &[]);
    let before = d.env.snapshot();
    let r = import(&d.env, &[]);
    assert_eq!(r["converted"], serde_json::json!([]), "{r}");
    assert_eq!(r["pointers_written"], 0);
    d.env.snapshot().assert_same(&before);
    round_trip(&d.env, &tree());
}

#[test]
fn import_dvc_keep_dvc_twice_keeps_both_tools_working() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    let r = import(&d.env, &["--keep-dvc"]);
    assert_eq!(r["pointers_written"], 2, "{r}");
    assert!(d.env.path("a.txt.dvc").exists() && d.env.path("data.dvc").exists());
    let before = d.env.snapshot();
    let r = import(&d.env, &["--keep-dvc"]);
    assert_eq!(r["pointers_written"], 0, "{r}");
    d.env.snapshot().assert_same(&before);
    // DVC still sees its data unchanged
    let out = d.run(&["status", "--json"]);
    assert_eq!(out.json(), serde_json::json!({}), "{out}");
    round_trip(&d.env, &tree());
}

#[test]
fn import_dvc_dry_run_changes_nothing_and_lists_sources() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    std::fs::remove_file(d.env.path("data/one.csv")).unwrap();
    let before = d.env.snapshot();
    let out = d.env.mlv(&["import-dvc", "--dry-run"]).ok();
    assert_eq!(
        out.stdout, "a.txt\tfile\tworkspace\ta.txt.dvc\ndata\tdirectory\tDVC cache\tdata.dvc\n",
        "{out}"
    );
    d.env.snapshot().assert_same(&before);
    assert!(!d.env.path(".mlv").exists());
}

#[test]
fn import_dvc_corrupt_cache_object_imports_nothing_for_it() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    // a.txt only in the cache, and the cache object damaged
    let obj = d.object(&d.md5("a.txt.dvc"));
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    overwrite(&obj, b"alphA\n");
    // the dry run checks the bytes too
    let dry = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).fails(3).json();
    assert_eq!(dry["skipped"][0]["kind"], "mismatch", "{dry}");
    assert_eq!(dry["converted"].as_array().unwrap().len(), 1, "{dry}");
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(3);
    let r = out.json();
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r}");
    assert_eq!(skipped[0]["path"], "a.txt");
    assert_eq!(skipped[0]["kind"], "mismatch");
    assert!(skipped[0]["reason"].as_str().unwrap().contains("expected"), "{r}");
    // nothing for a.txt; data imported
    assert!(
        !d.env.path("a.txt").exists()
            && !d.env.path("a.txt.mlv").exists()
            && d.env.path("a.txt.dvc").exists()
    );
    assert!(d.env.path("data.mlv").exists() && !d.env.path("data.dvc").exists());
    let files: Vec<_> = tree()
        .into_iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .collect();
    round_trip(&d.env, &files);
}

#[test]
fn import_dvc_refuses_unknown_fields_and_hostile_paths() {
    let Some(d) = Dvc::new() else { return };
    d.env.write("real.txt", b"real\n");
    d.add(&["real.txt"]);
    let md5 = d.md5("real.txt.dvc");
    let outside = d.env.base.join("outside.txt");
    std::fs::write(&outside, b"outside\n").unwrap();
    std::fs::create_dir(d.env.base.join("elsewhere")).unwrap();
    std::fs::write(d.env.base.join("elsewhere/x.txt"), b"real\n").unwrap();
    d.env
        .symlink(d.env.base.join("elsewhere").to_str().unwrap(), "link");
    for (name, path, extra) in [
        ("unknown", "real.txt", "  frobnicate: 1\n"),
        ("parent", "../outside.txt", ""),
        ("absolute", outside.to_str().unwrap(), ""),
        ("through-link", "link/x.txt", ""),
    ] {
        d.env.write(
            &format!("{name}.dvc"),
            format!("outs:\n- md5: {md5}\n  size: 5\n  hash: md5\n  path: {path}\n{extra}"),
        );
    }
    std::fs::remove_file(d.env.path("real.txt.dvc")).unwrap();
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "hostile"]);
    d.env.mlv(&["init"]).ok();
    let before = d.env.snapshot();
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(1);
    let r = out.json();
    let skipped = r["skipped"].as_array().unwrap();
    let files: Vec<_> = skipped.iter().map(|s| s["dvc_file"].as_str().unwrap()).collect();
    assert_eq!(
        files,
        ["absolute.dvc", "parent.dvc", "through-link.dvc", "unknown.dvc"],
        "{r}"
    );
    assert!(skipped.iter().all(|s| s["kind"] == "refused"), "{r}");
    assert!(
        skipped[3]["reason"].as_str().unwrap().contains("frobnicate"),
        "{r}"
    );
    assert_eq!(r["converted"], serde_json::json!([]));
    d.env.snapshot().assert_same(&before);
    assert_eq!(std::fs::read(&outside).unwrap(), b"outside\n");
    assert!(!Path::new(&format!("{}.mlv", outside.display())).exists());
    assert!(!d.env.base.join("elsewhere/x.txt.mlv").exists());
}

#[test]
fn import_dvc_reads_the_dvc2_cache_layout() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    // DVC 2.x kept objects at .dvc/cache/ab/cdef... (no files/md5/)
    let files = d.env.path(".dvc/cache/files/md5");
    for prefix in std::fs::read_dir(&files).unwrap() {
        let prefix = prefix.unwrap();
        let to = d.env.path(".dvc/cache").join(prefix.file_name());
        std::fs::create_dir_all(&to).unwrap();
        for obj in std::fs::read_dir(prefix.path()).unwrap() {
            let obj = obj.unwrap();
            std::fs::rename(obj.path(), to.join(obj.file_name())).unwrap();
        }
    }
    std::fs::remove_dir_all(d.env.path(".dvc/cache/files")).unwrap();
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    std::fs::remove_dir_all(d.env.path("data")).unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["bytes"]["workspace"], 0, "{r}");
    assert_eq!(r["pointers_written"], 2, "{r}");
    round_trip(&d.env, &tree());
}

#[test]
fn import_dvc_reports_remote_only_data_and_pipelines() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt"]);
    d.env.write("dvc.yaml", "stages:\n  s:\n    cmd: echo\n");
    std::fs::remove_dir_all(d.env.path(".dvc/cache")).unwrap();
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    let out = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).ok();
    let r = out.json();
    let kinds: Vec<_> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["dvc_file"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("a.txt.dvc", "not-available-locally")], "{r}");
    // the stage itself is converted (tests/it/cli_import_dvc_pipeline.rs)
    assert_eq!(r["stages"][0]["name"], "s", "{r}");
}

#[test]
fn import_dvc_restores_executables_from_the_cache_as_dvc_recorded() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(d) = Dvc::new() else { return };
    d.env.write("tool.sh", b"#!/bin/sh\necho hi\n");
    d.env.write("plain.txt", b"plain\n");
    std::fs::set_permissions(d.env.path("tool.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    d.add(&["tool.sh", "plain.txt"]);
    assert!(d.env.read_str("tool.sh.dvc").contains("isexec: true"));
    std::fs::remove_file(d.env.path("tool.sh")).unwrap();
    std::fs::remove_file(d.env.path("plain.txt")).unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["bytes"]["dvc-cache"], 24, "{r}");
    assert_eq!(d.env.mode("tool.sh") & 0o777, 0o755);
    assert_eq!(d.env.mode("plain.txt") & 0o777, 0o644);
    round_trip(
        &d.env,
        &[("tool.sh", b"#!/bin/sh\necho hi\n"), ("plain.txt", b"plain\n")],
    );
}

#[test]
fn import_dvc_leaves_data_changed_since_dvc_commit_alone_and_takes_only_the_paths_given() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    // edited after `dvc add`, and a file DVC does not list
    d.env.write("a.txt", b"edited\n");
    d.env.write("data/sub/new.txt", b"new\n");
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(1);
    let r = out.json();
    let skipped: Vec<_> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [("a.txt", "modified"), ("data", "modified")], "{r}");
    assert_eq!(d.env.read("a.txt"), b"edited\n");
    assert!(!d.env.path("a.txt.mlv").exists() && !d.env.path("data.mlv").exists());
    assert!(d.env.path("a.txt.dvc").exists() && d.env.path("data.dvc").exists());
    // put back as DVC recorded; only data.dvc is asked for
    std::fs::remove_file(d.env.path("data/sub/new.txt")).unwrap();
    let r = import(&d.env, &["data.dvc"]);
    assert_eq!(r["removed_dvc_files"], serde_json::json!(["data.dvc"]), "{r}");
    assert!(d.env.path("a.txt.dvc").exists() && !d.env.path("a.txt.mlv").exists());
    assert!(d.env.path("data.mlv").exists());
}

/// Files restored from DVC's cache reach the workspace only once every file of their output
/// matched its md5: a directory with one damaged object leaves no file of it behind (and no
/// temporary file in `.mlv/tmp`); once the object is repaired, the whole directory comes in.
#[test]
fn import_dvc_restores_no_file_of_a_directory_whose_cache_holds_a_damaged_object() {
    let Some(d) = Dvc::new() else { return };
    write_tree(&d.env);
    d.add(&["data"]);
    std::fs::remove_dir_all(d.env.path("data")).unwrap();
    let obj = d.object("febe6995bad457991331348f7b9c85fa"); // md5 of "three\n"
    overwrite(&obj, b"threE\n");
    let r = d.env.mlv(&["import-dvc", "--json"]).fails(3).json();
    let skipped = r["skipped"].as_array().unwrap();
    assert_eq!(skipped.len(), 1, "{r}");
    assert_eq!(
        (&skipped[0]["path"], &skipped[0]["kind"]),
        (&"data".into(), &"mismatch".into())
    );
    assert!(
        skipped[0]["reason"].as_str().unwrap().contains("three.txt"),
        "{r}"
    );
    assert!(!d.env.path("data").exists() && !d.env.path("data.mlv").exists());
    let tmp = d.env.path(".mlv/tmp");
    let left = std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0);
    assert_eq!(left, 0, "temporary files left in {}", tmp.display());
    std::fs::write(&obj, b"three\n").unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["bytes"]["dvc-cache"], 23, "{r}");
    let files: Vec<_> = tree()
        .into_iter()
        .filter(|(p, _)| p.starts_with("data/"))
        .collect();
    for (p, b) in &files {
        assert_eq!(d.env.read(p), *b, "{p}");
    }
    round_trip(&d.env, &files);
}

/// DVC 2.x's md5 of `path` ("md5-dos2unix": CRLF read as LF in text files), computed by the
/// pinned DVC's own `dvc_data`.
fn dvc2_md5(d: &Dvc, path: &str) -> String {
    let python = d.dvc.with_file_name("python");
    let out = d
        .env
        .command(
            python.to_str().unwrap(),
            &[
                "-c",
                "import sys; from dvc_data.hashfile.hash import file_md5; \
                 print(file_md5(sys.argv[1], name='md5-dos2unix'))",
                d.env.path(path).to_str().unwrap(),
            ],
        )
        .run()
        .ok();
    out.stdout.trim().to_string()
}

/// A DVC 2.x output: its `.dvc` file without `hash: md5` and its object in the 2.x layout.
fn dvc2_output(d: &Dvc, path: &str, md5: &str, size: usize) {
    d.env.write(
        &format!("{path}.dvc"),
        format!("outs:\n- md5: {md5}\n  size: {size}\n  path: {path}\n"),
    );
    let obj = d.env.path(&format!(".dvc/cache/{}/{}", &md5[..2], &md5[2..]));
    std::fs::create_dir_all(obj.parent().unwrap()).unwrap();
    std::fs::copy(d.env.path(path), obj).unwrap();
}

#[test]
fn import_dvc_checks_dvc2_outputs_with_dvc2s_crlf_md5() {
    let Some(d) = Dvc::new() else { return };
    // DVC 2.x hashed text with CRLF as if it were LF; the bytes stay as they were
    let text: &[u8] = b"one\r\ntwo\r\n";
    let binary: &[u8] = b"\x00\x01\r\n\x02";
    d.env.write("crlf.txt", text);
    d.env.write("blob.bin", binary);
    d.env.write("data/inner.txt", b"in\r\nside\r\n");
    let (t, b) = (dvc2_md5(&d, "crlf.txt"), dvc2_md5(&d, "blob.bin"));
    assert_ne!(t, crate::common::md5_hex(text));
    assert_eq!(b, crate::common::md5_hex(binary));
    dvc2_output(&d, "crlf.txt", &t, text.len());
    dvc2_output(&d, "blob.bin", &b, binary.len());
    // a 2.x directory: its manifest and entries use the same md5
    let inner = dvc2_md5(&d, "data/inner.txt");
    d.env.write(
        "manifest.json",
        format!(r#"[{{"md5": "{inner}", "relpath": "inner.txt"}}]"#),
    );
    let m = dvc2_md5(&d, "manifest.json");
    let obj = d.env.path(&format!(".dvc/cache/{}/{}.dir", &m[..2], &m[2..]));
    std::fs::create_dir_all(obj.parent().unwrap()).unwrap();
    std::fs::rename(d.env.path("manifest.json"), obj).unwrap();
    let inner_obj = d.env.path(&format!(".dvc/cache/{}/{}", &inner[..2], &inner[2..]));
    std::fs::create_dir_all(inner_obj.parent().unwrap()).unwrap();
    std::fs::copy(d.env.path("data/inner.txt"), inner_obj).unwrap();
    d.env.write(
        "data.dvc",
        format!("outs:\n- md5: {m}.dir\n  size: 10\n  nfiles: 1\n  path: data\n"),
    );
    d.env.write(".gitignore", "/crlf.txt\n/blob.bin\n/data\n");
    // the real DVC agrees these are its 2.x records of these bytes
    let status = d.run(&["status"]);
    assert!(status.stdout.contains("up to date"), "{status}");
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc 2.x outputs"]);
    // one from the workspace, the others from the 2.x cache
    std::fs::remove_file(d.env.path("crlf.txt")).unwrap();
    std::fs::remove_dir_all(d.env.path("data")).unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["pointers_written"], 3, "{r}");
    assert_eq!(d.env.read("crlf.txt"), text);
    round_trip(
        &d.env,
        &[
            ("crlf.txt", text),
            ("blob.bin", binary),
            ("data/inner.txt", b"in\r\nside\r\n"),
        ],
    );
}

/// Both ways a file reaches mlv's cache in the one-read import: small files into a pack (with
/// `cache.pack_min_objects` low enough) and files over 1 MiB as objects of their own, each from
/// the workspace and from DVC's cache; a damaged large object imports nothing for its output
/// and, once repaired, comes in; `mlv fsck` finds every object sound.
#[test]
fn import_dvc_packs_small_files_and_stores_large_ones_from_both_sources() {
    let Some(d) = Dvc::new() else { return };
    let big1 = crate::common::noise(3 << 20, 1);
    let big2 = crate::common::noise((3 << 20) + 7, 2);
    let small: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("small/f{i}.txt"), format!("small {i}\n").into_bytes()))
        .collect();
    for (p, b) in &small {
        d.env.write(p, b);
    }
    d.env.write("big1.bin", &big1);
    d.env.write("big2.bin", &big2);
    d.add(&["small", "big1.bin", "big2.bin"]);
    // one small file and one large file only in DVC's cache
    std::fs::remove_file(d.env.path("small/f1.txt")).unwrap();
    std::fs::remove_file(d.env.path("big2.bin")).unwrap();
    d.env.mlv(&["init"]).ok();
    d.env.mlv(&["config", "cache.pack_min_objects", "2"]).ok();
    let obj = d.object(&d.md5("big2.bin.dvc"));
    let mut damaged = big2.clone();
    damaged[(2 << 20) + 5] ^= 1;
    overwrite(&obj, &damaged);
    let r = d.env.mlv(&["import-dvc", "--json"]).fails(3).json();
    let skipped: Vec<_> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [("big2.bin", "mismatch")], "{r}");
    assert!(!d.env.path("big2.bin").exists() && !d.env.path("big2.bin.mlv").exists());
    assert_eq!(d.env.read("small/f1.txt"), b"small 1\n");
    assert!(d
        .env
        .path(".mlv/cache/packs")
        .read_dir()
        .unwrap()
        .next()
        .is_some());
    std::fs::write(&obj, &big2).unwrap();
    let r = import(&d.env, &[]);
    assert_eq!(r["bytes"]["dvc-cache"], big2.len(), "{r}");
    assert_eq!(d.env.read("big2.bin"), big2);
    d.env.mlv(&["fsck"]).ok();
    let mut files: Vec<(&str, &[u8])> = small.iter().map(|(p, b)| (p.as_str(), b.as_slice())).collect();
    files.push(("big1.bin", &big1));
    files.push(("big2.bin", &big2));
    round_trip(&d.env, &files);
}
