//! `mlv add`: cache objects, pointer files, .gitignore entries, staging, no re-hashing.

use std::os::unix::fs::PermissionsExt;

use crate::common::{b3, Env};

#[test]
fn file_object_is_named_by_its_blake3_digest_and_read_only() {
    let env = Env::new();
    env.write("model.pt", b"weights v1");
    env.mlv(&["add", "model.pt"])
        .ok()
        .stderr_has("added model.pt (10 B)");
    let object = env.object_path(b"weights v1");
    assert_eq!(std::fs::read(&object).unwrap(), b"weights v1");
    let mode = std::fs::metadata(&object).unwrap().permissions().mode();
    assert_eq!(mode & 0o222, 0, "object is writable: {mode:o}");
    // the workspace file stays as it was (default link kinds: reflink, copy)
    assert_eq!(env.read("model.pt"), b"weights v1");
}

#[test]
fn file_pointer_fields() {
    let env = Env::new();
    env.write("models/model.pt", b"0123456789");
    env.mlv(&["add", "models/model.pt"]).ok();
    let p = env.pointer("models/model.pt.mlv");
    assert_eq!(p["version"].as_integer(), Some(1));
    assert_eq!(p["path"].as_str(), Some("model.pt"));
    assert_eq!(p["type"].as_str(), Some("file"));
    assert_eq!(p["digest"].as_str(), Some(b3(b"0123456789").as_str()));
    assert_eq!(p["size"].as_integer(), Some(10));
    assert!(p.get("files").is_none());
    assert!(p.get("exec").is_none());
}

#[test]
fn dir_pointer_names_a_manifest_object_listing_every_file() {
    let env = Env::new();
    env.write("data/a.csv", b"a");
    env.write("data/sub/b.csv", b"bb");
    env.mlv(&["add", "data/"])
        .ok()
        .stderr_has("added data (2 files, 3 B)");
    let p = env.pointer("data.mlv");
    assert_eq!(p["path"].as_str(), Some("data"));
    assert_eq!(p["type"].as_str(), Some("dir"));
    assert_eq!(p["size"].as_integer(), Some(3));
    assert_eq!(p["files"].as_integer(), Some(2));
    let digest = p["digest"].as_str().unwrap();
    let manifest = env.read(&format!(".mlv/cache/{}/{digest}", &digest[..2]));
    assert_eq!(b3(&manifest), digest);
    let text = String::from_utf8(manifest).unwrap();
    assert!(text.contains(&format!(r#"{{"path":"a.csv","digest":"{}","size":1}}"#, b3(b"a"))));
    assert!(text.contains(&format!(
        r#"{{"path":"sub/b.csv","digest":"{}","size":2}}"#,
        b3(b"bb")
    )));
    assert!(env.object_path(b"a").is_file());
    assert!(env.object_path(b"bb").is_file());
}

#[test]
fn gitignore_entries_beside_the_data_once() {
    let env = Env::new();
    env.write(".gitignore", "*.log");
    env.write("data/a", b"a");
    env.write("models/model.pt", b"m");
    env.mlv(&["add", "data", "models/model.pt"]).ok();
    assert_eq!(env.read_str(".gitignore"), "*.log\n/data\n");
    assert_eq!(env.read_str("models/.gitignore"), "/model.pt\n");
    env.write("data/b", b"b");
    env.mlv(&["add", "data"]).ok();
    assert_eq!(env.read_str(".gitignore"), "*.log\n/data\n");
    // git sees the pointers, not the data
    let untracked = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(untracked.contains("?? data.mlv"), "{untracked}");
    assert!(!untracked.contains("data/"), "{untracked}");
    assert!(!untracked.contains("models/model.pt\n"), "{untracked}");
}

/// Whether the real `git check-ignore` says `rel` is ignored.
fn git_ignores(env: &Env, rel: &str) -> bool {
    let out = env
        .command("git", &["check-ignore", "-q", "--no-index", "--", rel])
        .run();
    match out.code {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("git check-ignore failed\n{out}"),
    }
}

#[test]
fn gitignore_lines_escape_hostile_names_as_git_reads_them() {
    // (name, a sibling with a similar name that must stay visible to git)
    let names = [
        ("trail ", "trail"),
        ("two  ", "two "),
        (" lead", "lead"),
        ("#hash", "hash"),
        ("!bang", "bang"),
        ("star*", "starX"),
        ("q?mark", "qXmark"),
        ("br[ack]et", "braet"),
        ("mid dle", "mid"),
    ];
    let env = Env::new();
    for (name, sibling) in names {
        env.write(&format!("sub/{name}"), name);
        env.write(&format!("sub/{sibling}"), sibling);
    }
    let args: Vec<String> = names.iter().map(|(n, _)| format!("sub/{n}")).collect();
    let mut add = vec!["add"];
    add.extend(args.iter().map(String::as_str));
    env.mlv(&add).ok();
    let once = env.read_str("sub/.gitignore");
    for (name, sibling) in names {
        assert!(
            git_ignores(&env, &format!("sub/{name}")),
            "{name:?} not ignored:\n{once}"
        );
        assert!(
            !git_ignores(&env, &format!("sub/{sibling}")),
            "{sibling:?} ignored:\n{once}"
        );
    }
    assert_eq!(once.lines().count(), names.len(), "{once}");
    // adding again does not append the lines again
    env.mlv(&add).ok();
    assert_eq!(env.read_str("sub/.gitignore"), once);
    // untrack removes every line (and so the emptied file)
    add[0] = "untrack";
    env.mlv(&add).ok();
    assert!(
        !env.exists("sub/.gitignore"),
        "{}",
        env.read_str("sub/.gitignore")
    );
}

#[test]
fn pointer_and_gitignore_files_get_ordinary_permissions() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("reference", b"");
    env.mlv(&["add", "data"]).ok();
    let ordinary = env.mode("reference");
    assert_eq!(env.mode("data.mlv"), ordinary, "pointer mode");
    assert_eq!(env.mode(".gitignore"), ordinary, ".gitignore mode");
    assert_eq!(env.mode(".mlv/config.toml"), ordinary, "config mode");
}

#[test]
fn without_autostage_the_hint_says_what_to_git_add() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("models/model.pt", b"m");
    env.mlv(&["add", "data", "models/model.pt"])
        .ok()
        .stderr_has("\tgit add .gitignore data.mlv models/.gitignore models/model.pt.mlv\n");
    assert!(env.staged().is_empty());
}

#[test]
fn autostage_stages_pointers_and_gitignores() {
    let env = Env::new();
    env.set_autostage();
    env.write("data/a", b"a");
    env.write("models/model.pt", b"m");
    let out = env.mlv(&["add", "data", "models/model.pt"]).ok();
    assert!(!out.stderr.contains("git add"), "{out}");
    assert_eq!(
        env.staged(),
        [
            ".gitignore",
            "data.mlv",
            "models/.gitignore",
            "models/model.pt.mlv"
        ]
    );
}

#[test]
fn autostage_from_the_environment() {
    let env = Env::new();
    env.write("f", b"x");
    env.mlv_env(&[("MLV_AUTOSTAGE", "1")], &["add", "f"]).ok();
    assert_eq!(env.staged(), [".gitignore", "f.mlv"]);
}

#[test]
fn readding_unchanged_data_hashes_nothing() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("data/b", b"b");
    env.write("model.pt", b"m");
    env.backdate("data");
    env.backdate("model.pt");
    env.mlv(&["add", "-v", "data", "model.pt"])
        .ok()
        .stderr_has("added data (2 files, 2 B, 2 hashed)")
        .stderr_has("added model.pt (1 B, 1 hashed)");
    let pointer = env.read("data.mlv");
    env.mlv(&["add", "-v", "data", "model.pt"])
        .ok()
        .stderr_has("unchanged data (2 files, 2 B, 0 hashed)")
        .stderr_has("unchanged model.pt (1 B, 0 hashed)");
    let json = env.mlv(&["add", "--json", "data", "model.pt"]).ok().json();
    for a in json["added"].as_array().unwrap() {
        assert_eq!(a["hashed"], 0, "{json}");
        assert_eq!(a["changed"], false, "{json}");
    }
    assert_eq!(env.read("data.mlv"), pointer);
    // one changed file is the only one hashed
    env.write("data/b", b"b2");
    env.mlv(&["add", "-v", "data"])
        .ok()
        .stderr_has("added data (2 files, 3 B, 1 hashed)");
}

#[test]
fn add_json_report() {
    let env = Env::new();
    env.write("data/a", b"hello");
    let json = env.mlv(&["add", "--json", "data"]).ok().json();
    let a = &json["added"][0];
    assert_eq!(a["path"], "data");
    assert_eq!(a["pointer"], "data.mlv");
    assert_eq!(a["kind"], "dir");
    assert_eq!(a["size"], 5);
    assert_eq!(a["files"], 1);
    assert_eq!(a["hashed"], 1);
    assert_eq!(a["changed"], true);
    assert_eq!(a["digest"].as_str(), env.pointer("data.mlv")["digest"].as_str());
    assert_eq!(json["git_paths"], serde_json::json!([".gitignore", "data.mlv"]));
    assert_eq!(json["staged"], false);
}

#[test]
fn quiet_add_prints_nothing() {
    let env = Env::new();
    env.write("f", b"x");
    let out = env.mlv(&["add", "-q", "f"]).ok();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("", ""));
}

#[test]
fn executable_bit_is_recorded() {
    let env = Env::new();
    env.write("run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(env.path("run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.mlv(&["add", "run.sh"]).ok();
    assert_eq!(env.pointer("run.sh.mlv")["exec"].as_bool(), Some(true));
}

#[test]
fn pointer_file_name_selects_its_data() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.mlv(&["add", "data"]).ok();
    env.write("data/b", b"b");
    env.mlv(&["add", "data.mlv"])
        .ok()
        .stderr_has("added data (2 files");
}

#[test]
fn names_with_glob_characters_and_spaces_are_ignored_exactly() {
    let env = Env::new();
    for name in ["my data[1]", "#notes", "!bang", "star*", " lead"] {
        env.write(&format!("d/{name}/f"), b"x");
        env.mlv(&["add", &format!("d/{name}")]).ok();
        let ignored = env
            .command("git", &["check-ignore", "-q", &format!("d/{name}/f")])
            .run();
        assert_eq!(ignored.code, Some(0), "{name:?} not ignored\n{ignored}");
        assert!(env.path(&format!("d/{name}.mlv")).is_file());
    }
    env.write("d/star-other/f", b"x");
    let other = env
        .command("git", &["check-ignore", "-q", "d/star-other/f"])
        .run();
    assert_eq!(other.code, Some(1), "an escaped glob matches other names");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn paths_inside_a_git_submodule_are_refused_naming_it() {
    let env = Env::new();
    env.write("sub/code.py", "x = 1\n");
    env.command("git", &["-C", "sub", "init", "-q"]).run().ok();
    env.command("git", &["-C", "sub", "add", "code.py"]).run().ok();
    env.command("git", &["-C", "sub", "commit", "-qm", "sub"])
        .run()
        .ok();
    // the superproject records `sub` as a submodule (a gitlink)
    env.command("git", &["add", "sub"]).run().ok();
    env.write("sub/data.bin", "data");
    env.write("sub/deeper/more.bin", "more");
    let before = env.snapshot();
    for path in ["sub/data.bin", "sub/deeper", "sub"] {
        env.mlv(&["add", path])
            .refused(&format!("{path}: inside sub, a git submodule"), Some("cd sub"));
        for verb in ["checkout", "untrack", "status"] {
            env.mlv(&[verb, path])
                .refused(&format!("{path}: inside sub, a git submodule"), Some("cd sub"));
        }
    }
    env.snapshot().assert_same(&before);
    assert!(
        env.objects().is_empty(),
        "nothing was read into the superproject's cache"
    );
}
