//! `mlv import-dvc` with DVC remotes (the real DVC 3.67.1 CLI): bytes only in a DVC remote
//! (local directory, S3 on moto) are read from it, md5-checked; DVC's remotes become mlv remotes
//! at the sub-prefix `mlv/` with credentials only in the local config; mlv's push and gc never
//! touch DVC's objects, so DVC keeps working on the same location.

use std::path::Path;

use serde_json::Value;

use crate::cli_import_dvc::{tree, write_tree, Dvc};
use crate::common::Env;
use crate::support::Moto;

/// Every file under `dir` with its bytes (relative paths, sorted).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// `dvc add` of the tree, a DVC default remote at `url`, `dvc push`; then DVC's cache and the
/// data are removed, so the bytes are only in the remote.
fn pushed_to(d: &Dvc, url: &str) {
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    d.run(&["remote", "add", "-d", "store", url]);
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc remote"]);
    d.run(&["push", "-q"]);
    forget_local_copies(d);
}

fn forget_local_copies(d: &Dvc) {
    std::fs::remove_dir_all(d.env.path(".dvc/cache")).unwrap();
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    std::fs::remove_dir_all(d.env.path("data")).unwrap();
}

fn total_bytes() -> u64 {
    tree().iter().map(|(_, b)| b.len() as u64).sum()
}

#[test]
fn import_dvc_reads_a_local_dvc_remote_when_the_cache_is_empty_and_converts_it() {
    let Some(d) = Dvc::new() else { return };
    let store = d.env.base.join("store");
    pushed_to(&d, store.to_str().unwrap());
    let out = d.env.mlv(&["import-dvc", "--json"]).ok();
    let r = out.json();
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["pointers_written"], 2, "{r}");
    for c in r["converted"].as_array().unwrap() {
        assert_eq!(c["source"], "dvc-remote", "{r}");
        assert_eq!(c["dvc_remote"], "store", "{r}");
    }
    assert_eq!(r["bytes"]["dvc-remote"], total_bytes(), "{r}");
    assert_eq!(r["bytes"]["dvc-cache"], 0, "{r}");
    let remote = &r["remotes"][0];
    assert_eq!(remote["name"], "store", "{r}");
    assert_eq!(remote["outcome"], "added", "{r}");
    assert_eq!(remote["default"], true, "{r}");
    let mlv_url = format!("{}/mlv", store.display());
    assert_eq!(remote["mlv_url"], mlv_url.as_str(), "{r}");
    // the converted remote is in the committed config, listed to commit
    let git_paths = r["git_paths"].as_array().unwrap();
    assert!(git_paths.iter().any(|p| p == ".mlv/config.toml"), "{r}");
    for (p, b) in tree() {
        assert_eq!(d.env.read(p), b, "{p}");
    }
    let status = d.env.mlv(&["status", "--json"]).ok();
    assert_eq!(status.json()["clean"], true, "{status}");
    // the converted default remote takes mlv's push; a fresh clone pulls the same bytes
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "mlv import-dvc"]);
    d.env.mlv(&["push"]).ok();
    assert!(store.join("mlv").is_dir());
    let clone = Env::clone_of(&d.env);
    clone.mlv(&["pull"]).ok();
    for (p, b) in tree() {
        assert_eq!(clone.read(p), b, "{p}");
    }
    // a second run changes nothing and finds the remote already converted
    let again = d.env.mlv(&["import-dvc", "--json"]).ok().json();
    assert_eq!(again["pointers_written"], 0, "{again}");
}

/// With `--keep-dvc`, both tools share DVC's remote location: mlv's push (format 2 and
/// format 1) and `gc --remote` never write, move or delete DVC's objects, and a fresh
/// clone's `dvc pull` still gets every byte.
#[test]
fn import_dvc_keep_dvc_mlv_push_and_gc_never_touch_dvcs_objects() {
    for format in ["2", "1"] {
        let Some(d) = Dvc::new() else { return };
        let store = d.env.base.join("store");
        pushed_to(&d, store.to_str().unwrap());
        let dvc_objects = files_under(&store);
        assert!(dvc_objects.iter().any(|(p, _)| p.starts_with("files/md5/")));
        d.env.mlv(&["import-dvc", "--keep-dvc"]).ok();
        d.env.mlv(&["remote", "modify", "store", "format", format]).ok();
        d.env.git(&["add", "-A"]);
        d.env.git(&["commit", "-qm", "mlv import-dvc --keep-dvc"]);
        d.env.mlv(&["push"]).ok();
        // an object only an older commit needs, for gc to consider
        d.env.write("a.txt", b"changed\n");
        d.env.mlv(&["add", "a.txt"]).ok();
        d.env.git(&["add", "-A"]);
        d.env.git(&["commit", "-qm", "change"]);
        d.env.mlv(&["push"]).ok();
        d.env.git(&["reset", "-q", "--hard", "HEAD~1"]);
        d.env.mlv(&["gc", "--remote", "--json"]).ok();
        let after: Vec<_> = files_under(&store)
            .into_iter()
            .filter(|(p, _)| !p.starts_with("mlv/"))
            .collect();
        assert_eq!(after, dvc_objects, "format {format}: DVC's objects changed");
        let clone = Dvc {
            env: Env::clone_of(&d.env),
            dvc: d.dvc.clone(),
        };
        clone.run(&["pull", "-q"]);
        for (p, b) in tree() {
            assert_eq!(clone.env.read(p), b, "format {format}: {p}");
        }
        // and the other way round: DVC's `gc --cloud` leaves mlv's objects alone
        let mlv_objects = files_under(&store.join("mlv"));
        d.run(&["gc", "-w", "-c", "-f", "-q"]);
        assert_eq!(files_under(&store.join("mlv")), mlv_objects, "format {format}");
    }
}

#[test]
fn import_dvc_a_damaged_or_missing_object_in_the_dvc_remote_imports_nothing_for_its_path() {
    let Some(d) = Dvc::new() else { return };
    d.env.write("b.txt", b"bravo\n");
    d.env.write("c.txt", b"charlie\n");
    d.add(&["b.txt", "c.txt"]);
    let store = d.env.base.join("store");
    pushed_to(&d, store.to_str().unwrap());
    for f in ["b.txt", "c.txt"] {
        std::fs::remove_file(d.env.path(f)).unwrap();
    }
    let (b, c) = (d.md5("b.txt.dvc"), d.md5("c.txt.dvc"));
    std::fs::write(
        store.join(format!("files/md5/{}/{}", &b[..2], &b[2..])),
        b"bravO\n",
    )
    .unwrap();
    std::fs::remove_file(store.join(format!("files/md5/{}/{}", &c[..2], &c[2..]))).unwrap();
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(3);
    let r = out.json();
    let kinds: Vec<(&str, &str)> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["path"].as_str().unwrap(), s["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(kinds, [("b.txt", "mismatch"), ("c.txt", "not-available")], "{r}");
    assert!(r["skipped"][0]["reason"].as_str().unwrap().contains("md5"), "{r}");
    for f in ["b.txt", "c.txt", "b.txt.mlv", "c.txt.mlv"] {
        assert!(!d.env.exists(f), "{f}");
    }
    assert!(d.env.exists("b.txt.dvc") && d.env.exists("c.txt.dvc"));
    // the intact ones are imported
    assert_eq!(r["pointers_written"], 2, "{r}");
    assert_eq!(d.env.read("a.txt"), b"alpha\n");
}

#[test]
fn import_dvc_s3_remote_on_moto_keeps_credentials_out_of_committed_files_and_output() {
    const SECRET: &str = "dvc-s3-secret-0123456789";
    let Some(d) = Dvc::new() else { return };
    let Some(moto) = Moto::start("dvcbucket", false) else {
        return;
    };
    let endpoint = format!("http://127.0.0.1:{}", moto.proc.port);
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    d.run(&["remote", "add", "-d", "s3store", "s3://dvcbucket/dvcstore"]);
    d.run(&["remote", "modify", "s3store", "endpointurl", &endpoint]);
    d.run(&["remote", "modify", "s3store", "region", "us-east-1"]);
    d.run(&[
        "remote",
        "modify",
        "--local",
        "s3store",
        "access_key_id",
        "testing",
    ]);
    d.run(&[
        "remote",
        "modify",
        "--local",
        "s3store",
        "secret_access_key",
        SECRET,
    ]);
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc s3 remote"]);
    d.run(&["push", "-q"]);
    forget_local_copies(&d);
    let out = d.env.mlv(&["import-dvc", "--json"]).ok();
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(!text.contains(SECRET), "{text}");
    let r = out.json();
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["bytes"]["dvc-remote"], total_bytes(), "{r}");
    let remote = &r["remotes"][0];
    assert_eq!(remote["mlv_url"], "s3://dvcbucket/dvcstore/mlv", "{r}");
    assert_eq!(remote["options"]["endpoint"], endpoint.as_str(), "{r}");
    assert_eq!(
        remote["local_options"],
        serde_json::json!(["access_key_id", "secret_access_key"]),
        "{r}"
    );
    assert!(d.env.read_str(".mlv/config.local.toml").contains(SECRET));
    assert!(!d.env.read_str(".mlv/config.toml").contains(SECRET));
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "mlv import-dvc"]);
    // `git grep` exits 1 when nothing matches
    let committed = d.env.command("git", &["grep", "-l", SECRET, "HEAD"]).run();
    assert_eq!(committed.code, Some(1), "a secret was committed: {committed}");
    let list = d.env.mlv(&["remote", "list", "--json"]).ok();
    assert!(!format!("{}{}", list.stdout, list.stderr).contains(SECRET));
    // mlv pushes to its own prefix of DVC's bucket and a clone with the credentials pulls
    d.env.mlv(&["push"]).ok();
    let clone = Env::clone_of(&d.env);
    std::fs::copy(
        d.env.path(".mlv/config.local.toml"),
        clone.path(".mlv/config.local.toml"),
    )
    .unwrap();
    clone.mlv(&["pull"]).ok();
    for (p, b) in tree() {
        assert_eq!(clone.read(p), b, "{p}");
    }
    drop(moto);
}

#[test]
fn import_dvc_dry_run_shows_the_conversion_and_writes_nothing() {
    let Some(d) = Dvc::new() else { return };
    pushed_to(&d, "../store");
    std::fs::write(
        d.env.path(".dvc/config.local"),
        "['remote \"store\"']\n    jobs = 4\n    ssl_verify = false\n",
    )
    .unwrap();
    let before = d.env.snapshot();
    let store_before = files_under(&d.env.base.join("store"));
    let r: Value = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).ok().json();
    d.env.snapshot().assert_same(&before);
    assert_eq!(files_under(&d.env.base.join("store")), store_before);
    assert!(!d.env.exists(".mlv"));
    assert_eq!(r["dry_run"], true);
    assert_eq!(r["converted"][0]["source"], "dvc-remote", "{r}");
    let remote = &r["remotes"][0];
    // DVC resolves `../../store` against .dvc/; mlv against the work tree
    assert_eq!(remote["mlv_url"], "../store/mlv", "{r}");
    assert_eq!(remote["local_options"], serde_json::json!(["jobs"]), "{r}");
    assert_eq!(remote["not_converted"], serde_json::json!(["ssl_verify"]), "{r}");
}

#[test]
fn import_dvc_reports_a_remote_name_mlv_already_uses_and_a_malformed_dvc_config() {
    let Some(d) = Dvc::new() else { return };
    pushed_to(&d, "../store");
    d.env.mlv(&["init"]).ok();
    let elsewhere = d.env.base.join("elsewhere");
    d.env
        .mlv(&["remote", "add", "store", elsewhere.to_str().unwrap(), "--default"])
        .ok();
    let config = d.env.read_str(".mlv/config.toml");
    // the conflict is reported; data still comes from DVC's remote
    let r = d.env.mlv(&["import-dvc", "--json"]).ok().json();
    assert_eq!(r["remotes"][0]["outcome"], "conflict", "{r}");
    assert_eq!(r["bytes"]["dvc-remote"], total_bytes(), "{r}");
    assert_eq!(d.env.read_str(".mlv/config.toml"), config);

    let Some(bad) = Dvc::new() else { return };
    let cfg = bad.env.path(".dvc/config");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("['remote \"x\"'\n    url = /tmp/x\n");
    let line = text.lines().count() - 1;
    std::fs::write(&cfg, text).unwrap();
    let before = bad.env.snapshot();
    let out = bad.env.mlv(&["import-dvc"]).fails(1);
    bad.env.snapshot().assert_same(&before);
    let error = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_default();
    assert!(
        error.starts_with(&format!("error: .dvc/config:{line}: ")),
        "{}",
        out.stderr
    );
}

/// `cache.dir` in `.dvc/config` (relative to `.dvc/`) replaces `.dvc/cache` as the source.
#[test]
fn import_dvc_reads_dvcs_cache_where_cache_dir_puts_it() {
    let Some(d) = Dvc::new() else { return };
    d.run(&["cache", "dir", "../dvccache"]);
    assert!(d.env.read_str(".dvc/config").contains("dvccache"));
    write_tree(&d.env);
    d.add(&["a.txt", "data"]);
    assert!(!d.env.exists(".dvc/cache/files"));
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    std::fs::remove_dir_all(d.env.path("data")).unwrap();
    let r = d.env.mlv(&["import-dvc", "--json"]).ok().json();
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["bytes"]["dvc-cache"], total_bytes(), "{r}");
    for (p, b) in tree() {
        assert_eq!(d.env.read(p), b, "{p}");
    }
}

/// A DVC remote mlv cannot open (Azure without an account) is a `remote-error` for the outputs
/// that need it (exit 1, with the hint); its credentials are never printed, and an option mlv
/// cannot use (`connection_string`) is reported by name and written nowhere.
#[test]
fn import_dvc_an_unusable_dvc_remote_is_reported_without_its_secrets() {
    let Some(d) = Dvc::new() else { return };
    d.env.write("a.txt", b"alpha\n");
    d.add(&["a.txt"]);
    d.run(&["remote", "add", "-d", "az", "azure://container/path"]);
    d.run(&[
        "remote",
        "modify",
        "--local",
        "az",
        "account_key",
        "AZ-KEY-SECRET",
    ]);
    d.run(&[
        "remote",
        "modify",
        "az",
        "connection_string",
        "AccountKey=CONN-SECRET",
    ]);
    std::fs::remove_dir_all(d.env.path(".dvc/cache")).unwrap();
    std::fs::remove_file(d.env.path("a.txt")).unwrap();
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(1);
    let text = format!("{}{}", out.stdout, out.stderr);
    assert!(
        !text.contains("AZ-KEY-SECRET") && !text.contains("CONN-SECRET"),
        "{text}"
    );
    let r = out.json();
    assert_eq!(r["skipped"][0]["kind"], "remote-error", "{r}");
    assert!(
        r["skipped"][0]["reason"].as_str().unwrap().contains("hint:"),
        "{r}"
    );
    assert_eq!(
        r["remotes"][0]["local_options"],
        serde_json::json!(["access_key"]),
        "{r}"
    );
    assert_eq!(
        r["remotes"][0]["not_converted"],
        serde_json::json!(["connection_string"]),
        "{r}"
    );
    assert!(d.env.read_str(".mlv/config.local.toml").contains("AZ-KEY-SECRET"));
    for f in [".mlv/config.toml", ".mlv/config.local.toml"] {
        assert!(!d.env.read_str(f).contains("CONN-SECRET"), "{f}");
    }
    assert!(!d.env.read_str(".mlv/config.toml").contains("AZ-KEY-SECRET"));
}

/// The remote an output reads from: its own `remote:` field, else `--remote NAME`, else DVC's
/// default; DVC 2.x's layout (`ab/cdef…`) is read as well as 3.x's; an unknown `--remote` is
/// refused before anything changes.
#[test]
fn import_dvc_picks_the_outs_remote_then_the_flag_then_the_default_and_reads_the_2x_layout() {
    let Some(d) = Dvc::new() else { return };
    let store = d.env.base.join("store");
    pushed_to(&d, store.to_str().unwrap());
    // DVC 2.x's layout: the objects at the remote's root
    for e in std::fs::read_dir(store.join("files/md5")).unwrap() {
        let e = e.unwrap();
        std::fs::rename(e.path(), store.join(e.file_name())).unwrap();
    }
    std::fs::remove_dir_all(store.join("files")).unwrap();
    let empty = d.env.base.join("empty");
    std::fs::create_dir(&empty).unwrap();
    d.run(&["remote", "add", "empty", empty.to_str().unwrap()]);
    d.run(&["remote", "default", "empty"]);
    // a.txt names its remote; data follows the default (empty), unless --remote says otherwise
    let dvc_file = d.env.read_str("a.txt.dvc");
    d.env.write(
        "a.txt.dvc",
        dvc_file.replace("  path: a.txt", "  path: a.txt\n  remote: store"),
    );
    let before = d.env.snapshot();
    d.env
        .mlv(&["import-dvc", "--remote", "nope"])
        .fails(1)
        .stderr_has("DVC's config has no remote `nope`");
    let r = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).ok().json();
    d.env.snapshot().assert_same(&before);
    assert_eq!(r["converted"][0]["dvc_remote"], "store", "{r}");
    assert_eq!(r["skipped"][0]["path"], "data", "{r}");
    assert_eq!(r["skipped"][0]["kind"], "not-available", "{r}");
    let r = d
        .env
        .mlv(&["import-dvc", "--remote", "store", "--json"])
        .ok()
        .json();
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(r["bytes"]["dvc-remote"], total_bytes(), "{r}");
    for (p, b) in tree() {
        assert_eq!(d.env.read(p), b, "{p}");
    }
}

/// A `dvc.yaml` output that names its own DVC remote (`remote: side`) is read from that remote,
/// not DVC's default, when only the remote has it; its stage's record answers for it.
#[test]
fn import_dvc_reads_a_pipeline_output_from_the_remote_its_dvc_yaml_names() {
    let Some(d) = Dvc::new() else { return };
    let (main, side) = (d.env.base.join("main"), d.env.base.join("side"));
    d.run(&["remote", "add", "-d", "main", main.to_str().unwrap()]);
    d.run(&["remote", "add", "side", side.to_str().unwrap()]);
    d.env.write(
        "dvc.yaml",
        "stages:\n  make:\n    cmd: echo made > out.txt\n    outs:\n    - out.txt:\n        remote: side\n",
    );
    d.run(&["repro", "-q"]);
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc repro"]);
    d.run(&["push", "-q"]);
    assert!(side.join("files/md5").is_dir() && !main.join("files").exists());
    std::fs::remove_dir_all(d.env.path(".dvc/cache")).unwrap();
    std::fs::remove_file(d.env.path("out.txt")).unwrap();
    let out = d.env.mlv(&["import-dvc", "--json"]).ok();
    let r = out.json();
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    let conv = &r["converted"][0];
    assert_eq!(
        (
            conv["path"].as_str(),
            conv["source"].as_str(),
            conv["dvc_remote"].as_str()
        ),
        (Some("out.txt"), Some("dvc-remote"), Some("side")),
        "{r}"
    );
    assert_eq!(d.env.read("out.txt"), b"made\n");
    let show = d.env.mlv(&["lineage", "show", "out.txt", "--json"]).ok().json();
    assert_eq!(show["produced_by"]["record"]["stage"], "make", "{show}");
}
