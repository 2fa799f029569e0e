//! `mlv ls` and `mlv get`: data from another repository (a registry) made by the real binary,
//! reached as a non-bare path, a bare clone and a `file://` URL, with a local or an S3 remote.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::common::{b3, Env};
use crate::support::{closed_port, Moto};

/// A registry: `data/` (three files) and `model.pt` tracked by mlv, `README.md` by git, pushed
/// to a local remote given relative to the work tree (`../store`, as DVC resolves it). Two
/// commits: the first tagged `v1` (a.txt = "a1", model = "m1"), the second with a.txt = "a2"
/// and model = "m2". Returns the first commit's id.
fn registry(env: &Env) -> String {
    env.write("data/a.txt", "a1");
    env.write("data/sub/b.txt", "bb");
    env.write("data/sub/c.txt", "ccc");
    env.write("model.pt", "m1");
    env.write("README.md", "hello\n");
    env.mlv(&["add", "data", "model.pt"]).ok();
    env.mlv(&["remote", "add", "store", "../store", "--default"]).ok();
    env.mlv(&["push"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "-m", "one"]);
    env.git(&["tag", "v1"]);
    let first = env.git(&["rev-parse", "HEAD"]).trim().to_string();
    env.write("data/a.txt", "a2");
    env.write("model.pt", "m2");
    env.mlv(&["add", "data", "model.pt"]).ok();
    env.mlv(&["push"]).ok();
    env.git(&["commit", "-q", "-am", "two"]);
    first
}

/// A directory with no repository in it, beside nothing: `root` exists, `base/home` is HOME.
fn consumer() -> Env {
    let env = Env::empty();
    std::fs::create_dir(&env.root).unwrap();
    env
}

fn url_of(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

#[test]
fn get_from_a_path_a_bare_clone_and_a_file_url() {
    let reg = Env::new();
    registry(&reg);
    reg.command("git", &["clone", "-q", "--bare", "repo", "reg.git"])
        .cwd(&reg.base)
        .run()
        .ok();
    for url in [
        url_of(&reg.root),
        url_of(&reg.base.join("reg.git")),
        format!("file://{}", reg.root.display()),
    ] {
        let here = consumer();
        here.mlv(&["get", &url, "data"]).ok();
        assert_eq!(here.read_str("data/a.txt"), "a2", "{url}");
        assert_eq!(here.read_str("data/sub/b.txt"), "bb");
        assert_eq!(here.read_str("data/sub/c.txt"), "ccc");
        let out = here.mlv(&["--json", "get", &url, "model.pt", "-o", "m.pt"]).ok();
        assert_eq!(here.read_str("m.pt"), "m2");
        let j = out.json();
        assert_eq!(j["type"], "file");
        assert_eq!(j["tracked"], "mlv");
        assert_eq!(j["downloaded"], 1);
        // files written are the user's: writable, not links into a cache
        assert_eq!(here.mode("m.pt") & 0o200, 0o200);
        // a git-tracked file comes from git
        here.mlv(&["get", &url, "README.md"]).ok();
        assert_eq!(here.read_str("README.md"), "hello\n");
        // nothing left beside the outputs (the temporary cache is gone)
        let mut names: Vec<String> = std::fs::read_dir(&here.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["README.md", "data", "m.pt"], "{url}");
    }
}

#[test]
fn ls_lists_git_and_mlv_entries_and_its_json_shape_is_pinned() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    let out = here.mlv(&["ls", &url]).ok();
    assert!(out.stdout.contains("mlv         7 B  data/  (3 files)"), "{out}");
    assert!(out.stdout.contains("git         6 B  README.md"), "{out}");
    let j = here.mlv(&["--json", "ls", &url, "--mlv-only"]).ok().json();
    let data_digest = reg.pointer("data.mlv")["digest"].as_str().unwrap().to_string();
    assert_eq!(
        j["entries"],
        serde_json::json!([
            {"path": "data", "type": "dir", "tracked": "mlv", "size": 7, "files": 3, "digest": data_digest},
            {"path": "model.pt", "type": "file", "tracked": "mlv", "size": 2, "files": null, "digest": b3(b"m2")},
        ])
    );
    assert_eq!(j["url"], url.as_str());
    assert_eq!(j["rev"], serde_json::Value::Null);
    assert_eq!(j["commit"], reg.git(&["rev-parse", "HEAD"]).trim());
    // inside a tracked directory: its manifest, from the source's remote
    let j = here.mlv(&["--json", "ls", &url, "data"]).ok().json();
    assert_eq!(j["path"], "data");
    assert_eq!(
        j["entries"],
        serde_json::json!([
            {"path": "data/a.txt", "type": "file", "tracked": "mlv", "size": 2, "files": null, "digest": b3(b"a2")},
            {"path": "data/sub", "type": "dir", "tracked": "mlv", "size": 5, "files": 2, "digest": null},
        ])
    );
    let j = here
        .mlv(&["--json", "ls", &url, "data/sub", "--rev", "v1"])
        .ok()
        .json();
    let paths: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["data/sub/b.txt", "data/sub/c.txt"]);
    let j = here.mlv(&["--json", "ls", &url, "-R", "--mlv-only"]).ok().json();
    let paths: Vec<&str> = j["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "data",
            "data/a.txt",
            "data/sub",
            "data/sub/b.txt",
            "data/sub/c.txt",
            "model.pt"
        ]
    );
}

#[test]
fn revisions_tags_and_old_commits_and_a_missing_one() {
    let reg = Env::new();
    let first = registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    here.mlv(&["get", &url, "model.pt", "--rev", "v1", "-o", "tag.pt"])
        .ok();
    assert_eq!(here.read_str("tag.pt"), "m1");
    here.mlv(&["get", &url, "data/a.txt", "--rev", &first, "-o", "a.txt"])
        .ok();
    assert_eq!(here.read_str("a.txt"), "a1");
    here.mlv(&["get", &url, "model.pt", "--rev", "no-such-tag"])
        .refused("no revision `no-such-tag`", Some("branch, tag or commit"));
    let absent = "0123456789abcdef0123456789abcdef01234567";
    here.mlv(&["ls", &url, "--rev", absent])
        .refused(&format!("no revision `{absent}`"), None);
    assert!(!here.exists("model.pt"));
}

#[test]
fn a_path_the_source_does_not_track_is_refused_by_name() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    for path in ["nope.txt", "data/nope", "model.pt/inside"] {
        let out = here.mlv(&["get", &url, path]).refused(
            &format!("{path}: not tracked by mlv or git in {url} at HEAD"),
            Some("mlv ls URL"),
        );
        drop(out);
    }
    here.mlv(&["ls", &url, "nope.txt", "--rev", "v1"]).refused(
        &format!("nope.txt: not tracked by mlv or git in {url} at v1"),
        None,
    );
    assert_eq!(std::fs::read_dir(&here.root).unwrap().count(), 0);
}

#[test]
fn hostile_pointers_in_the_source_get_the_refusal_local_ones_get() {
    for (name, text) in [
        ("escape", "version = 1\npath = \"../../etc\"\ntype = \"file\"\ndigest = \"0000000000000000000000000000000000000000000000000000000000000000\"\nsize = 1\n"),
        ("digest", "version = 1\npath = \"x\"\ntype = \"file\"\ndigest = \"not-a-digest\"\nsize = 1\n"),
    ] {
        let reg = Env::new();
        registry(&reg);
        reg.write(&format!("{name}.mlv"), text);
        reg.git(&["add", "-A"]);
        reg.git(&["commit", "-q", "-m", "hostile"]);
        let local = reg.mlv(&["status"]).fails(1);
        let local_error = local.stderr_lines("error: ")[0].to_string();
        let here = consumer();
        let out = here.mlv(&["get", &url_of(&reg.root), "model.pt"]).fails(1);
        let error = out.stderr_lines("error: ");
        assert_eq!(error.len(), 1, "{out}");
        assert!(error[0].contains("malformed pointer file"), "{out}");
        // the same reason as the local refusal (the local one names the absolute path)
        let reason = local_error.split("malformed pointer file").nth(1).unwrap();
        assert!(error[0].ends_with(reason), "{out}\nlocal: {local_error}");
        assert!(!here.exists("model.pt"));
    }
}

#[test]
fn get_over_different_data_needs_force_and_same_data_is_left_alone() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    here.write("model.pt", "mine");
    here.write("data/a.txt", "mine");
    here.write("data/extra.txt", "mine too");
    let mine = |env: &Env| ["model.pt", "data/a.txt", "data/extra.txt"].map(|p| env.read_str(p));
    for path in ["model.pt", "data"] {
        here.mlv(&["get", &url, path]).refused(
            &format!("{path}: already exists and holds other data"),
            Some("--force"),
        );
        assert_eq!(mine(&here), ["mine", "mine", "mine too"]);
        assert_eq!(std::fs::read_dir(here.path("data")).unwrap().count(), 2);
        assert_eq!(
            std::fs::read_dir(&here.root).unwrap().count(),
            2,
            "nothing left beside OUT"
        );
    }
    here.mlv(&["get", &url, "model.pt", "--force"]).ok();
    assert_eq!(here.read_str("model.pt"), "m2");
    here.mlv(&["get", &url, "data", "-f"]).ok();
    assert_eq!(here.read_str("data/a.txt"), "a2");
    assert!(!here.exists("data/extra.txt"));
    // the same data again: nothing to do, nothing downloaded
    let ino = here.ino("data/a.txt");
    let j = here.mlv(&["--json", "get", &url, "data"]).ok().json();
    assert_eq!(j["unchanged"], true);
    assert_eq!(j["downloaded"], 0);
    assert_eq!(here.ino("data/a.txt"), ino);
    // a file where a directory goes is other data too
    here.write("sub", "a file");
    here.mlv(&["get", &url, "data/sub"])
        .refused("sub: already exists", None);
}

#[test]
fn get_of_paths_inside_a_tracked_directory() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    let j = here.mlv(&["--json", "get", &url, "data/sub"]).ok().json();
    assert_eq!(j["type"], "dir");
    assert_eq!(j["files"], 2);
    assert_eq!(j["downloaded"], 2, "only the part's files");
    assert_eq!(here.read_str("sub/b.txt"), "bb");
    assert_eq!(here.read_str("sub/c.txt"), "ccc");
    here.mlv(&["get", &url, "data/sub/c.txt", "-o", "out/c"]).ok();
    assert_eq!(here.read_str("out/c"), "ccc");
    // -o naming an existing directory, for a file: into it, as cp does
    let j = here
        .mlv(&["--json", "get", &url, "data/a.txt", "-o", "out"])
        .ok()
        .json();
    assert_eq!(here.read_str("out/a.txt"), "a2");
    assert_eq!(j["out"], "out/a.txt");
    // a directory is OUT itself: the same data again is a no-op
    here.mlv(&["get", &url, "data/sub", "-o", "out/sub2"]).ok();
    let j = here
        .mlv(&["--json", "get", &url, "data/sub", "-o", "out/sub2"])
        .ok()
        .json();
    assert_eq!(j["unchanged"], true);
    assert!(!here.exists("out/sub2/sub"));
}

#[test]
fn a_relative_source_path_is_taken_from_the_directory_given_with_c() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    // run in root, `-C sub`: the relative path starts in root/sub (up to `/`, then down)
    here.mkdir("sub");
    let deep = format!("../{}", "../".repeat(here.root.components().count() - 1));
    let from_sub = format!("{deep}{}", reg.root.strip_prefix("/").unwrap().display());
    here.mlv(&["-C", "sub", "get", &from_sub, "model.pt"]).ok();
    assert_eq!(here.read_str("sub/model.pt"), "m2");
}

#[test]
fn an_unreachable_source_remote_names_the_repository_and_the_remote() {
    let reg = Env::new();
    reg.write("model.pt", "m");
    reg.mlv(&["add", "model.pt"]).ok();
    let port = closed_port();
    reg.mlv(&["remote", "add", "store", "s3://bucket/prefix", "--default"])
        .ok();
    for (k, v) in [
        ("endpoint", format!("http://127.0.0.1:{port}")),
        ("region", "us-east-1".into()),
        ("allow_http", "true".into()),
        ("timeout", "3".into()),
        ("connect_timeout", "1".into()),
        ("retries", "0".into()),
        ("retry_timeout", "1".into()),
    ] {
        reg.mlv(&["remote", "modify", "store", k, &v]).ok();
    }
    reg.git(&["add", "-A"]);
    reg.git(&["commit", "-q", "-m", "one"]);
    let here = consumer();
    let secret = "unreachable-secret-8Hq2";
    let url = url_of(&reg.root);
    let out = here
        .mlv_env(
            &[("AWS_ACCESS_KEY_ID", "AKIDX"), ("AWS_SECRET_ACCESS_KEY", secret)],
            &["get", &url, "model.pt"],
        )
        .no_panic();
    assert_ne!(out.code, Some(0), "{out}");
    let errors = out.stderr_lines("error: ");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains(&format!("{url}: its remote `store` (s3://bucket/prefix) failed")),
        "{out}"
    );
    assert!(
        !out.stderr.contains(secret) && !out.stdout.contains(secret),
        "{out}"
    );
    assert!(!here.exists("model.pt"));
    // a source without a default remote
    let bare = Env::new();
    bare.write("m", "m");
    bare.mlv(&["add", "m"]).ok();
    bare.git(&["add", "-A"]);
    bare.git(&["commit", "-q", "-m", "one"]);
    here.mlv(&["get", &url_of(&bare.root), "m"]).refused(
        "no default remote is configured at HEAD",
        Some("mlv remote default"),
    );
}

#[test]
fn repeated_calls_reuse_the_clone() {
    let reg = Env::new();
    registry(&reg);
    let here = consumer();
    let url = url_of(&reg.root);
    here.mlv(&["get", &url, "model.pt"]).ok();
    let sources = here.base.join("home/.cache/mlv/sources");
    let entries: Vec<_> = std::fs::read_dir(&sources)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let clone = entries[0].join("repo.git");
    assert_eq!(
        std::fs::read_to_string(entries[0].join("url")).unwrap().trim(),
        url
    );
    let ino = std::fs::metadata(&clone).unwrap().ino();
    here.mlv(&["get", &url, "data"]).ok();
    here.mlv(&["ls", &format!("file://{url}")]).ok();
    // a new commit in the source is seen (fetched into the same clone)
    reg.write("model.pt", "m3");
    reg.mlv(&["add", "model.pt"]).ok();
    reg.mlv(&["push"]).ok();
    reg.git(&["commit", "-q", "-am", "three"]);
    here.mlv(&["get", &url, "model.pt", "-f"]).ok();
    assert_eq!(here.read_str("model.pt"), "m3");
    assert_eq!(std::fs::metadata(&clone).unwrap().ino(), ino, "re-cloned");
    assert_eq!(
        std::fs::read_dir(&sources)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count(),
        1
    );
}

#[test]
fn inside_an_mlv_repository_the_clone_and_objects_stay_in_it() {
    let reg = Env::new();
    registry(&reg);
    let here = Env::new();
    here.mlv(&["get", &url_of(&reg.root), "data"]).ok();
    assert_eq!(here.read_str("data/a.txt"), "a2");
    assert!(here.path(".mlv/sources").is_dir());
    let a2 = b3(b"a2");
    assert!(
        here.objects().iter().any(|o| o.ends_with(&a2)),
        "{:?}",
        here.objects()
    );
    // the clone is not for git
    let status = here.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(!status.contains(".mlv/sources"), "{status}");
    assert!(!here.base.join("home/.cache/mlv").exists());
}

#[test]
fn a_source_whose_remote_is_s3() {
    let Some(moto) = Moto::start("registry", false) else {
        return;
    };
    let creds = [
        ("AWS_ACCESS_KEY_ID", "AKIDREG"),
        ("AWS_SECRET_ACCESS_KEY", "reg-secret-31x"),
    ];
    let reg = Env::new();
    reg.write("data/a.txt", "a");
    reg.write("data/b.txt", "b");
    reg.mlv(&["add", "data"]).ok();
    reg.mlv(&["remote", "add", "s3", "s3://registry/objects", "--default"])
        .ok();
    for (k, v) in [
        ("endpoint", format!("http://127.0.0.1:{}", moto.proc.port)),
        ("region", "us-east-1".into()),
        ("allow_http", "true".into()),
        ("retries", "1".into()),
    ] {
        reg.mlv(&["remote", "modify", "s3", k, &v]).ok();
    }
    reg.mlv_env(&creds, &["push"]).ok();
    reg.git(&["add", "-A"]);
    reg.git(&["commit", "-q", "-m", "one"]);
    let here = consumer();
    let url = url_of(&reg.root);
    let j = here.mlv_env(&creds, &["--json", "ls", &url, "data"]).ok().json();
    assert_eq!(j["entries"].as_array().unwrap().len(), 2);
    here.mlv_env(&creds, &["get", &url, "data"]).ok();
    assert_eq!(here.read_str("data/a.txt"), "a");
    assert_eq!(here.read_str("data/b.txt"), "b");
}

/// `git daemon` serving `dir` on a free port, stopped on drop; `None` when it cannot start.
struct GitDaemon {
    child: std::process::Child,
    port: u16,
}

impl GitDaemon {
    fn start(env: &Env, dir: &Path) -> Option<GitDaemon> {
        let port = closed_port();
        let child = env
            .command(
                "git",
                &[
                    "daemon",
                    "--reuseaddr",
                    "--export-all",
                    "--listen=127.0.0.1",
                    &format!("--port={port}"),
                    &format!("--base-path={}", dir.display()),
                    &dir.display().to_string(),
                ],
            )
            .cwd(dir)
            .spawn();
        let d = GitDaemon { child, port };
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(d);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        eprintln!("skipped: git daemon did not start");
        None
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_network_source_is_fetched_shallowly_by_git() {
    let reg = Env::new();
    registry(&reg);
    let store = reg.base.join("store");
    reg.mlv(&["remote", "modify", "store", "url", store.to_str().unwrap()])
        .ok();
    reg.git(&["commit", "-q", "-am", "absolute remote"]);
    reg.git(&["tag", "abs"]);
    reg.write("data/a.txt", "a3");
    reg.mlv(&["add", "data"]).ok();
    reg.mlv(&["push"]).ok();
    reg.git(&["commit", "-q", "-am", "a3"]);
    reg.command("git", &["clone", "-q", "--bare", "repo", "reg.git"])
        .cwd(&reg.base)
        .run()
        .ok();
    let Some(daemon) = GitDaemon::start(&reg, &reg.base) else {
        return;
    };
    let url = format!("git://127.0.0.1:{}/reg.git", daemon.port);
    let here = consumer();
    here.mlv(&["get", &url, "data"]).ok();
    assert_eq!(here.read_str("data/a.txt"), "a3");
    here.mlv(&["get", &url, "data/a.txt", "--rev", "abs", "-o", "old.txt"])
        .ok();
    assert_eq!(here.read_str("old.txt"), "a2");
    here.mlv(&["ls", &url, "--rev", "no-such"])
        .refused("no revision `no-such`", None);
    let sources = here.base.join("home/.cache/mlv/sources");
    let entry = std::fs::read_dir(&sources)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(entry.join("repo.git/shallow").is_file(), "not shallow");
    // its remote named relative to it cannot be reached from here: said so, nothing created
    reg.mlv(&["remote", "modify", "store", "url", "../store"]).ok();
    reg.git(&["commit", "-q", "-am", "relative remote"]);
    reg.command("git", &["push", "-q", "../reg.git", "main"])
        .cwd(&reg.root)
        .run()
        .ok();
    here.mlv(&["get", &url, "model.pt"]).refused(
        &format!(
            "{url}: its remote `store` is the relative path ../store, which cannot be reached from here"
        ),
        Some("absolute path"),
    );
    assert!(!entry.join("store").exists());
}

#[test]
fn get_of_a_directory_git_tracks_brings_its_files_and_the_data_inside() {
    let reg = Env::new();
    registry(&reg);
    reg.write("docs/guide.txt", "guide");
    reg.write("docs/sub/x.txt", "x");
    reg.write("docs/fig.bin", "figure");
    reg.mlv(&["add", "docs/fig.bin"]).ok();
    reg.mlv(&["push"]).ok();
    reg.git(&["add", "-A"]);
    reg.git(&["commit", "-q", "-m", "docs"]);
    let here = consumer();
    let url = url_of(&reg.root);
    let j = here.mlv(&["--json", "get", &url, "docs"]).ok().json();
    assert_eq!(j["tracked"], "git");
    assert_eq!(j["type"], "dir");
    assert_eq!(here.read_str("docs/guide.txt"), "guide");
    assert_eq!(here.read_str("docs/sub/x.txt"), "x");
    assert_eq!(here.read_str("docs/fig.bin"), "figure");
    assert!(!here.exists("docs/fig.bin.mlv"));
    // the same again: nothing to do
    let j = here.mlv(&["--json", "get", &url, "docs"]).ok().json();
    assert_eq!(j["unchanged"], true);
}

#[test]
fn a_url_that_would_run_a_command_is_not_fetched() {
    // git's `ext::` transport runs a command; a URL may come from a committed pointer
    let here = consumer();
    let marker = here.base.join("ran");
    let url = format!("ext::sh -c touch% {}", marker.display());
    let out = here.mlv(&["get", &url, "data"]).no_panic();
    assert_ne!(out.code, Some(0), "{out}");
    assert!(!marker.exists(), "the ext:: command ran");
    assert_eq!(std::fs::read_dir(&here.root).unwrap().count(), 0);
}
