//! `mlv import` and `mlv update`: data from a registry repository made with the real binary
//! (init, add, a local-directory remote, push, git commit), tracked here with its `[source]`.

use crate::common::{b3, Env, Snapshot};

/// The work tree's snapshot without the clone cache `.mlv/sources` (git-ignored; fetching
/// refreshes it): moved aside while the snapshot is taken.
fn snapshot(env: &Env) -> Snapshot {
    let sources = env.path(".mlv/sources");
    let aside = env.base.join("sources-aside");
    let moved = std::fs::rename(&sources, &aside).is_ok();
    let snap = env.snapshot();
    if moved {
        std::fs::rename(&aside, &sources).unwrap();
    }
    snap
}

/// A registry: `images/` (two files, one in `sub/`) and `model.bin` tracked by mlv, `README.md`
/// by git, pushed to the local remote `../store`, committed and tagged `v1`.
fn registry() -> Env {
    let reg = Env::new();
    reg.write("images/a.txt", b"image a v1");
    reg.write("images/sub/b.txt", b"image b");
    reg.write("model.bin", b"model v1");
    reg.write("README.md", b"the registry\n");
    reg.mlv(&["add", "images", "model.bin"]).ok();
    reg.mlv(&["remote", "add", "store", "../store", "--default"]).ok();
    reg.mlv(&["push"]).ok();
    commit(&reg, "v1");
    reg.git(&["tag", "v1"]);
    reg
}

fn commit(env: &Env, message: &str) {
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", message]);
}

/// The registry with `images/a.txt` changed, pushed and committed.
fn change_images(reg: &Env) {
    reg.write("images/a.txt", b"image a v2");
    reg.mlv(&["add", "images"]).ok();
    reg.mlv(&["push"]).ok();
    commit(reg, "v2");
}

fn url(reg: &Env) -> String {
    reg.root.display().to_string()
}

fn head(reg: &Env) -> String {
    reg.git(&["rev-parse", "HEAD"]).trim().to_string()
}

fn source(env: &Env, pointer: &str) -> toml::Table {
    env.pointer(pointer)["source"].as_table().unwrap().clone()
}

#[test]
fn imports_a_dir_a_file_a_path_inside_a_dir_and_a_git_file() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    let json = env.mlv(&["--json", "import", &u, "images"]).ok().json();
    let i = &json["imports"][0];
    assert_eq!(i["outcome"], "imported", "{json}");
    assert_eq!(i["kind"], "dir");
    assert_eq!(i["files"], 2);
    assert_eq!(i["downloaded"], 3, "the manifest and two files: {json}");
    assert_eq!(env.read("images/a.txt"), b"image a v1");
    assert_eq!(env.read("images/sub/b.txt"), b"image b");
    // the digest is the source's: the same manifest object
    assert_eq!(
        env.pointer("images.mlv")["digest"],
        reg.pointer("images.mlv")["digest"]
    );
    let s = source(&env, "images.mlv");
    assert_eq!(s["url"].as_str(), Some(u.as_str()));
    assert_eq!(s["path"].as_str(), Some("images"));
    assert_eq!(s["commit"].as_str(), Some(head(&reg).as_str()));
    assert!(!s.contains_key("rev"), "no rev given: none recorded");
    // ignored and listed for git, like add
    assert!(env.read_str(".gitignore").lines().any(|l| l == "/images"));

    env.mlv(&["import", &u, "model.bin", "-o", "models/m.bin", "--rev", "v1"])
        .ok()
        .stderr_has("imported models/m.bin (8 B) from");
    assert_eq!(env.read("models/m.bin"), b"model v1");
    assert_eq!(source(&env, "models/m.bin.mlv")["rev"].as_str(), Some("v1"));
    assert_eq!(
        env.pointer("models/m.bin.mlv")["digest"].as_str(),
        Some(b3(b"model v1").as_str())
    );

    // a path inside a tracked directory becomes its own directory, with its own manifest
    env.mlv(&["import", &u, "images/sub", "-o", "sub"]).ok();
    assert_eq!(env.read("sub/b.txt"), b"image b");
    let p = env.pointer("sub.mlv");
    assert_eq!(p["type"].as_str(), Some("dir"));
    assert_eq!(p["files"].as_integer(), Some(1));
    let d = p["digest"].as_str().unwrap();
    assert!(
        env.exists(&format!(".mlv/cache/{}/{d}", &d[..2])),
        "the sub-manifest is cached"
    );
    // ... and a file inside one, a file
    env.mlv(&["import", &u, "images/a.txt"]).ok();
    assert_eq!(env.pointer("a.txt.mlv")["type"].as_str(), Some("file"));
    assert_eq!(env.read("a.txt"), b"image a v1");

    // with core.autostage, staged as by add
    env.set_autostage();
    let json = env
        .mlv(&["--json", "import", &u, "images/a.txt", "-o", "staged/a.txt"])
        .ok()
        .json();
    assert_eq!(json["staged"], true, "{json}");
    assert_eq!(env.staged(), ["staged/.gitignore", "staged/a.txt.mlv"]);

    // a file git tracks in the source is stored as an ordinary object
    env.mlv(&["import", &u, "README.md"]).ok();
    assert_eq!(env.read("README.md"), b"the registry\n");
    assert!(env.object_path(b"the registry\n").exists());

    env.mlv(&["status", "--exit-code"]).ok();
    env.mlv(&["fsck"]).ok();
}

#[test]
fn status_shows_where_imported_data_came_from() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    env.write("local.csv", b"mine");
    env.mlv(&["add", "local.csv"]).ok();
    env.mlv(&["import", &u, "model.bin", "--rev", "v1"]).ok();
    let short = &head(&reg)[..7];
    let out = env.mlv(&["status"]).ok();
    assert_eq!(
        out.stdout,
        format!("model.bin: up to date  (imported from {u}@v1, {short})\n"),
        "{out}"
    );
    let json = env.mlv(&["status", "--json"]).ok().json();
    let pointers = json["pointers"].as_array().unwrap();
    assert!(
        pointers[0].get("source").is_none(),
        "data added here has none: {json}"
    );
    assert_eq!(pointers[1]["source"]["url"].as_str(), Some(u.as_str()));
    assert_eq!(pointers[1]["source"]["path"], "model.bin");
    assert_eq!(pointers[1]["source"]["rev"], "v1");
    assert_eq!(
        pointers[1]["source"]["commit"].as_str(),
        Some(head(&reg).as_str())
    );
    // -v lists everything, the import with its origin
    env.mlv(&["status", "-v"])
        .ok()
        .stdout_has("local.csv: up to date\n")
        .stdout_has("model.bin: up to date  (imported from");
}

#[test]
fn update_is_a_no_op_when_the_data_did_not_change() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    env.mlv(&["import", &u, "images"]).ok();
    let before = snapshot(&env);
    // the source moves on, but not its images
    reg.write("NOTES.md", b"unrelated");
    commit(&reg, "notes");
    let json = env.mlv(&["--json", "update"]).ok().json();
    assert_eq!(json["imports"][0]["outcome"], "up-to-date", "{json}");
    assert_eq!(json["git_paths"].as_array().unwrap().len(), 0);
    snapshot(&env).assert_same(&before);
    env.mlv(&["update", "images"])
        .ok()
        .stderr_has("up to date: images (2 files, 17 B) from");
    snapshot(&env).assert_same(&before);
    // importing the same again is the same no-op
    env.mlv(&["import", &u, "images"]).ok();
    snapshot(&env).assert_same(&before);
    // ... but with --force it checks the data out again, over local changes
    std::fs::remove_dir_all(env.path("images")).unwrap();
    env.write("images/a.txt", b"edited here");
    env.mlv(&["import", &u, "images", "--force"]).ok();
    assert_eq!(env.read("images/a.txt"), b"image a v1");
    assert_eq!(env.read("images/sub/b.txt"), b"image b");
}

#[test]
fn update_follows_the_source_and_rev_moves_it() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    env.mlv(&["import", &u, "images"]).ok();
    let v1 = head(&reg);
    change_images(&reg);
    let v2 = head(&reg);
    let json = env.mlv(&["--json", "update", "images"]).ok().json();
    assert_eq!(json["imports"][0]["outcome"], "updated", "{json}");
    assert_eq!(
        json["imports"][0]["downloaded"], 2,
        "new manifest and file: {json}"
    );
    assert_eq!(env.read("images/a.txt"), b"image a v2");
    assert_eq!(source(&env, "images.mlv")["commit"].as_str(), Some(v2.as_str()));
    env.mlv(&["status", "--exit-code"]).ok();

    // --rev to a tag: back to v1, and v1 is what later updates follow
    env.mlv(&["update", "--rev", "v1"]).ok();
    assert_eq!(env.read("images/a.txt"), b"image a v1");
    let s = source(&env, "images.mlv");
    assert_eq!(s["rev"].as_str(), Some("v1"));
    assert_eq!(s["commit"].as_str(), Some(v1.as_str()));
    let before = snapshot(&env);
    env.mlv(&["update"]).ok().stderr_has("up to date: images");
    snapshot(&env).assert_same(&before);

    // local changes to imported data are never overwritten
    std::fs::remove_file(env.path("images/a.txt")).unwrap();
    env.write("images/a.txt", b"edited here");
    let before = snapshot(&env);
    env.mlv(&["update", "--rev", "main"])
        .refused("not in the cache", None);
    snapshot(&env).assert_same(&before);
}

#[test]
fn refusals_leave_everything_as_it_was() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    env.write("mine.csv", b"mine");
    env.mlv(&["add", "mine.csv"]).ok();
    // the first refusal clones the registry into .mlv/sources (git-ignored): from then on,
    // nothing changes
    env.mlv(&["import", &u, "nothing/here"])
        .refused("nothing/here: not tracked by mlv or git in", None);
    assert!(env.exists(".mlv/sources"));
    env.git(&["check-ignore", "-q", ".mlv/sources/x/repo.git/HEAD"]);
    let before = snapshot(&env);
    env.mlv(&["import", &u, "nothing/here"])
        .refused("nothing/here: not tracked by mlv or git in", None);
    env.mlv(&["import", &u, "images", "--rev", "no-such-rev"])
        .refused("no revision `no-such-rev`", None);
    env.mlv(&["update", "mine.csv"])
        .refused("mine.csv: not imported", Some("`mlv status` shows imported data"));
    env.mlv(&["update", "absent"])
        .refused("absent: not tracked by mlv", None);
    snapshot(&env).assert_same(&before);

    // an existing path with other data: refused without --force, replaced with it
    env.write("images/other.txt", b"other data");
    let before = snapshot(&env);
    env.mlv(&["import", &u, "images"])
        .refused("images: already exists", Some("--force"));
    env.mlv(&["import", &u, "model.bin", "-o", "mine.csv"])
        .refused("mine.csv: already exists", Some("--force"));
    snapshot(&env).assert_same(&before);
    env.mlv(&["import", &u, "images", "--force"]).ok();
    assert!(!env.exists("images/other.txt"));
    assert_eq!(env.read("images/a.txt"), b"image a v1");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn a_hostile_source_table_is_refused_like_any_hostile_pointer() {
    let reg = registry();
    let env = Env::new();
    env.mlv(&["import", &url(&reg), "model.bin"]).ok();
    commit(&env, "import");
    let good = env.read_str("model.bin.mlv");
    let commit_id = head(&reg);
    for (from, to, what) in [
        (
            "path = \"model.bin\"\ncommit",
            "path = \"../../etc\"\ncommit",
            "`source.path`",
        ),
        (commit_id.as_str(), "0123", "`source.commit`"),
        (
            "[source]\nurl = \"",
            "[source]\nurl = \"\\u001b[2J",
            "`source.url` holds a control character",
        ),
    ] {
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "{from}");
        env.write("model.bin.mlv", &text);
        commit(&env, "hostile");
        for args in [&["status"][..], &["update"], &["checkout"], &["fsck"]] {
            env.mlv(args).refused(
                &format!("model.bin.mlv: malformed pointer file: {what}"),
                Some("fix the pointer file"),
            );
        }
    }
}

#[test]
fn push_pull_and_gc_treat_imported_data_like_any_other() {
    let reg = registry();
    let env = Env::new();
    let u = url(&reg);
    env.mlv(&["import", &u, "images/sub", "-o", "sub"]).ok();
    env.mlv(&["import", &u, "model.bin"]).ok();
    let own = env.base.join("own-store");
    env.mlv(&["remote", "add", "own", own.to_str().unwrap(), "--default"])
        .ok();
    env.mlv(&["push"]).ok();
    commit(&env, "imports");

    // gc keeps what the imports need (the sub-manifest built here included), and drops the
    // source's whole manifest, which nothing here refers to
    env.mlv(&["gc", "--force", "--grace", "0"]).ok();
    env.mlv(&["status", "--exit-code"]).ok();
    std::fs::remove_dir_all(env.path("sub")).unwrap();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("sub/b.txt"), b"image b");

    // a fresh clone pulls them from this repository's own remote, the registry gone
    std::fs::remove_dir_all(reg.base.join("store")).unwrap();
    let clone = Env::clone_of(&env);
    clone.mlv(&["pull"]).ok();
    assert_eq!(clone.read("sub/b.txt"), b"image b");
    assert_eq!(clone.read("model.bin"), b"model v1");
    clone
        .mlv(&["status"])
        .ok()
        .stdout_has("model.bin: up to date  (imported from");
}

#[test]
fn a_relative_url_is_recorded_relative_to_the_repository_root() {
    let reg = registry();
    // the importing repository next to the registry: `../repo` from its root
    let env = Env::empty_in(&reg.base);
    std::fs::create_dir(&env.root).unwrap();
    env.git(&["init", "-q", "-b", "main"]);
    env.mlv(&["init"]).ok();
    std::fs::create_dir(env.path("deep")).unwrap();
    env.mlv_in("deep", &["import", "../../../repo", "model.bin"]).ok();
    assert_eq!(env.read("deep/model.bin"), b"model v1");
    assert_eq!(
        source(&env, "deep/model.bin.mlv")["url"].as_str(),
        Some("../../repo")
    );
    // update resolves it against the root, wherever it runs
    change_images(&reg);
    reg.write("model.bin", b"model v2");
    reg.mlv(&["add", "model.bin"]).ok();
    reg.mlv(&["push"]).ok();
    commit(&reg, "model v2");
    env.mlv_in("deep", &["update", "model.bin"]).ok();
    assert_eq!(env.read("deep/model.bin"), b"model v2");
    // the clone is cached under .mlv/sources
    assert!(std::fs::read_dir(env.path(".mlv/sources")).unwrap().count() > 0);
}
