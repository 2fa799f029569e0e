//! Hostile input driven through the real binary: manifests and pointers that try to leave the
//! repository, symbolic links on the way to the data, oversized and deeply nested files, and
//! file names a manifest cannot hold. Each is refused with one error line, and a canary
//! directory outside the repository is never written to.

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::{b3, Env};

/// A directory outside the repository with one file in it; nothing may change there.
struct Canary {
    dir: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

impl Canary {
    fn new(env: &Env) -> Canary {
        let dir = env.base.join("outside");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("canary"), b"do not touch").unwrap();
        let before = Canary::list(&dir);
        Canary { dir, before }
    }

    fn list(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .map(|e| e.unwrap())
            .map(|e| {
                let bytes = if e.file_type().is_file() {
                    std::fs::read(e.path()).unwrap()
                } else {
                    Vec::new()
                };
                (e.path().to_path_buf(), bytes)
            })
            .collect()
    }

    #[track_caller]
    fn assert_untouched(&self) {
        assert_eq!(
            Canary::list(&self.dir),
            self.before,
            "something was written outside the repository"
        );
    }
}

/// Puts `bytes` into the cache under their real digest; returns the digest.
fn cache_object(env: &Env, bytes: &[u8]) -> String {
    let path = env.object_path(bytes);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    b3(bytes)
}

/// A manifest text with one line per entry, as mlv writes them.
fn manifest(entries: &[String]) -> Vec<u8> {
    format!("{{\"version\":1,\"entries\":[\n{}\n]}}\n", entries.join(",\n")).into_bytes()
}

/// A file entry holding `content`, whose object is put in the cache.
fn file_entry(env: &Env, path: &str, content: &[u8]) -> String {
    let d = cache_object(env, content);
    let path = serde_json::to_string(path).unwrap();
    format!(
        "{{\"path\":{path},\"digest\":\"{d}\",\"size\":{}}}",
        content.len()
    )
}

/// Writes `data.mlv` tracking directory `data` by the manifest with this digest.
fn dir_pointer(env: &Env, digest: &str) {
    env.write(
        "data.mlv",
        format!("version = 1\npath = \"data\"\ntype = \"dir\"\ndigest = \"{digest}\"\nsize = 1\nfiles = 1\n"),
    );
}

/// Entry paths a manifest must not hold, and what the refusal says.
fn hostile_entry_paths() -> Vec<(&'static str, &'static str)> {
    vec![
        ("../../outside/canary", "outside the repository"),
        ("/tmp/abs", "outside the repository"),
        (".git/hooks/pre-commit", "`.git`"),
        ("sub/.MLV/config.toml", "`.mlv`"),
        ("sub/.Git/x", "`.git`"),
        ("nul\u{0}byte", "control character"),
        ("carriage\rreturn", "control character"),
        ("line\nfeed", "control character"),
        ("back\\slash", "not normalized"),
        ("empty//component", "not normalized"),
        ("dot/./component", "not normalized"),
        ("trailing/", "not normalized"),
    ]
}

#[test]
fn checkout_refuses_hostile_manifest_entries_before_writing() {
    let env = Env::new();
    let canary = Canary::new(&env);
    for (path, what) in hostile_entry_paths() {
        let good = file_entry(&env, "a-good-file", b"good");
        let bad = file_entry(&env, path, b"bad");
        let mut entries = vec![good, bad];
        entries.sort();
        let digest = cache_object(&env, &manifest(&entries));
        dir_pointer(&env, &digest);
        let before = env.snapshot();
        for args in [&["checkout"][..], &["checkout", "data"], &["checkout", "--force"]] {
            let out = env.mlv(args).fails(3);
            let errors = out.stderr_lines("error: ");
            assert_eq!(errors.len(), 1, "{path:?}\n{out}");
            assert!(
                errors[0].starts_with("error: data: malformed manifest"),
                "{path:?}\n{out}"
            );
            assert!(errors[0].contains(what), "{path:?}: {what}\n{out}");
        }
        env.snapshot().assert_same(&before);
        assert!(!env.exists("data"));
    }
    canary.assert_untouched();
}

#[test]
fn checkout_refuses_duplicate_entries_and_entries_below_a_link() {
    let env = Env::new();
    let canary = Canary::new(&env);
    let dup = file_entry(&env, "x", b"one");
    let cases = [
        (vec![dup.clone(), dup], "duplicated at \"x\""),
        (
            vec![
                r#"{"path":"l","type":"symlink","target":"../../outside"}"#.to_string(),
                file_entry(&env, "l/canary", b"overwritten"),
            ],
            "lies below \"l\", which is not a directory",
        ),
        (
            vec![file_entry(&env, "f", b"f"), file_entry(&env, "f/g", b"g")],
            "lies below \"f\"",
        ),
    ];
    for (entries, what) in cases {
        let digest = cache_object(&env, &manifest(&entries));
        dir_pointer(&env, &digest);
        let before = env.snapshot();
        env.mlv(&["checkout"]).fails(3).stderr_has(what);
        env.snapshot().assert_same(&before);
    }
    canary.assert_untouched();
}

#[test]
fn checkout_refuses_a_manifest_link_that_leads_outside() {
    let env = Env::new();
    let canary = Canary::new(&env);
    for target in [
        "../../outside",
        "/etc/passwd",
        "../.git/config",
        "sub/../../.mlv/config.toml",
    ] {
        let link = format!(
            "{{\"path\":\"l\",\"type\":\"symlink\",\"target\":{}}}",
            serde_json::to_string(target).unwrap()
        );
        let entries = vec![file_entry(&env, "a", b"a"), link];
        let digest = cache_object(&env, &manifest(&entries));
        dir_pointer(&env, &digest);
        let before = env.snapshot();
        env.mlv(&["checkout"])
            .refused("leads outside the repository", Some("restore its pointer"));
        env.snapshot().assert_same(&before);
    }
    canary.assert_untouched();
}

#[test]
fn pull_refuses_a_hostile_manifest_from_the_remote_before_writing_the_workspace() {
    let env = Env::new();
    let canary = Canary::new(&env);
    let remote = env.base.join("remote");
    let entries = vec![
        file_entry(&env, "../../outside/canary", b"overwritten"),
        file_entry(&env, "ok", b"ok"),
    ];
    let digest = cache_object(&env, &manifest(&entries));
    dir_pointer(&env, &digest);
    // move every object to the remote, so that pull downloads the manifest
    let cache = env.path(".mlv/cache");
    std::fs::rename(&cache, &remote).unwrap();
    env.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    let out = env.mlv(&["pull"]).fails(3);
    assert!(out.stderr.contains("malformed manifest"), "{out}");
    assert!(out.stderr.contains("outside the repository"), "{out}");
    assert!(!env.exists("data"));
    canary.assert_untouched();
}

/// A repository tracking `data/{a,sub/b}` with the data removed from the workspace.
fn tracked_and_removed() -> Env {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("data/sub/b", b"b");
    env.mlv(&["add", "data"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env
}

#[test]
fn checkout_never_writes_through_a_symlinked_data_directory() {
    let env = tracked_and_removed();
    let canary = Canary::new(&env);
    let remote = env.base.join("remote");
    env.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    env.mlv(&["push"]).ok();
    env.symlink(canary.dir.to_str().unwrap(), "data");
    let before = env.snapshot();
    for args in [
        &["checkout"][..],
        &["checkout", "data"],
        &["checkout", "--force"],
        &["pull"],
    ] {
        env.mlv(args).refused(
            "data: data is a symbolic link; mlv does not write through links",
            Some("remove the link data"),
        );
    }
    env.snapshot().assert_same(&before);
    canary.assert_untouched();
    // once the link is gone, checkout restores the data
    std::fs::remove_file(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/sub/b"), b"b");
}

#[test]
fn checkout_never_writes_through_a_symlinked_parent_of_the_data() {
    let env = Env::new();
    let canary = Canary::new(&env);
    env.write("real/file", b"payload");
    env.mlv(&["add", "real/file"]).ok();
    // a pointer at the top whose data lies below a link to the outside directory
    let text = env
        .read_str("real/file.mlv")
        .replace("path = \"file\"", "path = \"link/canary\"");
    std::fs::write(env.path("data.mlv"), text).unwrap();
    env.symlink(canary.dir.to_str().unwrap(), "link");
    let before = env.snapshot();
    // a pointer tracks only its own name (`data.mlv` tracks `data`), so one whose data lies
    // below a link is invalid, and refused before anything is written (checkout still refuses
    // a link on the way to the data, for links that appear after the pointers were read)
    let what = "data.mlv: malformed pointer file: `path` = \"link/canary\" is not the pointer's own name";
    for args in [
        &["checkout", "link/canary"][..],
        &["checkout"],
        &["checkout", "--force"],
    ] {
        env.mlv(args).refused(what, Some("fix the pointer file"));
    }
    env.snapshot().assert_same(&before);
    canary.assert_untouched();
}

#[test]
fn checkout_never_writes_through_a_link_inside_a_tracked_directory() {
    let env = tracked_and_removed();
    let canary = Canary::new(&env);
    // data/sub is a link out of the repository where the manifest has data/sub/b
    env.mkdir("data");
    env.symlink(canary.dir.to_str().unwrap(), "data/sub");
    let before = env.snapshot();
    env.mlv(&["checkout", "--force"])
        .refused("leads outside the repository", Some("replace the link"));
    env.snapshot().assert_same(&before);
    canary.assert_untouched();
    // a link that stays inside the repository is replaced by the real directory, and the
    // directory it pointed to is left alone
    std::fs::remove_file(env.path("data/sub")).unwrap();
    env.write("elsewhere/keep", b"keep");
    env.symlink("../elsewhere", "data/sub");
    env.mlv(&["checkout", "--force"]).ok();
    assert!(!std::fs::symlink_metadata(env.path("data/sub"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(env.read("data/sub/b"), b"b");
    assert_eq!(env.read("elsewhere/keep"), b"keep");
    assert!(!env.exists("elsewhere/b"));
}

#[test]
fn an_oversized_pointer_is_refused_without_reading_it_all() {
    let env = Env::new();
    let mut text = b"version = 1\n".to_vec();
    text.extend(std::iter::repeat_n(b'#', 2 << 20));
    env.write("data.mlv", &text);
    for args in [&["status"][..], &["checkout"], &["add", "other"]] {
        env.mlv(args)
            .refused("data.mlv: malformed pointer file: larger than 65536 bytes", None);
    }
}

#[test]
fn deeply_nested_pointer_config_manifest_and_lineage_are_errors_not_crashes() {
    let depth = 100_000;
    let deep_toml = format!("version = 1\npath = {}{}\n", "[".repeat(depth), "]".repeat(depth));
    let deep_json = format!("{}{}", "[".repeat(depth), "]".repeat(depth));

    let env = Env::new();
    env.write("data.mlv", &deep_toml);
    env.mlv(&["status"])
        .no_panic()
        .refused("data.mlv: malformed pointer file", None);
    std::fs::remove_file(env.path("data.mlv")).unwrap();

    let digest = cache_object(&env, deep_json.as_bytes());
    dir_pointer(&env, &digest);
    env.mlv(&["checkout"])
        .no_panic()
        .fails(3)
        .stderr_has("malformed manifest");
    std::fs::remove_file(env.path("data.mlv")).unwrap();

    env.write(".mlv/lineage.jsonl", &deep_json);
    let out = env.mlv(&["lineage", "list"]).no_panic();
    assert!(out.stderr.contains("lineage.jsonl line 1"), "{out}");

    env.write(".mlv/config.local.toml", &deep_toml);
    env.mlv(&["status"])
        .no_panic()
        .refused("config.local.toml: invalid configuration", None);
}

#[test]
fn a_manifest_with_a_huge_entry_name_is_refused() {
    let env = Env::new();
    let long = "n".repeat(1 << 20);
    let entries = vec![file_entry(&env, &long, b"x")];
    let digest = cache_object(&env, &manifest(&entries));
    dir_pointer(&env, &digest);
    let out = env.mlv(&["checkout"]).fails(3);
    assert!(out.stderr.contains("too long"), "{out}");
    assert!(
        out.stderr.len() < (1 << 20) + 1000,
        "the error is about one name, once"
    );
    assert!(!env.exists("data"));
}

#[test]
fn add_refuses_file_names_a_manifest_cannot_hold() {
    let env = Env::new();
    let cases: [(&[u8], &str); 4] = [
        (
            b"line\nfeed",
            "data/line\\nfeed: mlv cannot track this file name: the path holds a control character",
        ),
        (
            b"esc\x1b[31m",
            "data/esc\\u{1b}[31m: mlv cannot track this file name",
        ),
        (
            b"back\\slash",
            "data/back\\\\slash: mlv cannot track this file name: the path is not normalized",
        ),
        (
            b"not-utf8-\xff",
            "data/not-utf8-\u{fffd}: file name is not valid UTF-8",
        ),
    ];
    for (name, what) in cases {
        env.write("data/ok", b"ok");
        let bad = env.path("data").join(std::ffi::OsStr::from_bytes(name));
        std::fs::write(&bad, b"x").unwrap();
        let before = env.snapshot();
        env.mlv(&["add", "data"]).refused(what, Some(""));
        assert_eq!(env.snapshot(), before, "{what}");
        assert!(env.objects().is_empty());
        std::fs::remove_file(&bad).unwrap();
    }
}

#[test]
fn a_non_utf8_name_inside_tracked_data_is_named_by_status_and_checkout() {
    let env = Env::new();
    env.write("data/ok", b"ok");
    env.mlv(&["add", "data"]).ok();
    let bad = env.path("data").join(std::ffi::OsStr::from_bytes(b"bad-\xff"));
    std::fs::write(&bad, b"x").unwrap();
    for args in [&["status"][..], &["checkout"], &["add", "data"]] {
        env.mlv(args)
            .refused("data/bad-\u{fffd}: file name is not valid UTF-8", Some(""));
    }
    assert_eq!(std::fs::read(&bad).unwrap(), b"x", "left as it was");
}

#[test]
fn names_differing_only_in_case_are_kept_apart() {
    let env = Env::new();
    env.write("data/README", b"upper");
    env.write("data/readme", b"lower");
    env.mlv(&["add", "data"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/README"), b"upper");
    assert_eq!(env.read("data/readme"), b"lower");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn add_refuses_a_link_into_git_or_mlv_in_any_case_as_checkout_would() {
    for target in ["../.GIT/x", "../.Git", "sub/../../.MLV/cache", "../.git/config"] {
        let env = Env::new();
        env.write("data/a", b"a");
        env.symlink(target, "data/l");
        let before = env.snapshot();
        env.mlv(&["add", "data"])
            .refused("leads outside the repository", Some("replace the link"));
        env.snapshot().assert_same(&before);
    }
}

#[test]
fn add_never_ingests_data_through_a_link_to_the_outside() {
    let env = Env::new();
    let canary = Canary::new(&env);
    env.symlink(canary.dir.to_str().unwrap(), "data");
    env.symlink(canary.dir.to_str().unwrap(), "parent");
    let before = env.snapshot();
    env.mlv(&["add", "data"])
        .refused("data: is a symbolic link", Some("add the link's target instead"));
    env.mlv(&["add", "parent/canary"]).refused(
        "parent: is a symbolic link",
        Some("add the link's target instead"),
    );
    env.snapshot().assert_same(&before);
    assert!(env.objects().is_empty(), "nothing was read into the cache");
    canary.assert_untouched();
}

#[test]
fn unprotect_never_rewrites_files_past_a_link() {
    let env = Env::new();
    let canary = Canary::new(&env);
    let hardlink = [("MLV_CACHE_LINK", "hardlink,copy")];
    env.write("data/a", b"a");
    env.write("data/sub/b", b"b");
    env.mlv_env(&hardlink, &["add", "data"]).ok();
    // data/sub moves outside (its file still a hard link to the cache object) behind a link
    std::fs::rename(env.path("data/sub"), canary.dir.join("sub")).unwrap();
    env.symlink(canary.dir.join("sub").to_str().unwrap(), "data/sub");
    let outside = Canary {
        dir: canary.dir.clone(),
        before: Canary::list(&canary.dir),
    };
    let ino = std::fs::metadata(canary.dir.join("sub/b")).unwrap().ino();
    let out = env.mlv(&["unprotect", "data", "--json"]).ok();
    assert_eq!(out.json()["copied"], 1, "only data/a\n{out}");
    outside.assert_untouched();
    assert_eq!(std::fs::metadata(canary.dir.join("sub/b")).unwrap().ino(), ino);
    env.mlv(&["untrack", "data"]).ok();
    outside.assert_untouched();
    assert!(!env.exists("data.mlv"));
}

#[test]
fn checkout_replaces_a_link_at_a_tracked_file_path_instead_of_writing_through_it() {
    let env = Env::new();
    let canary = Canary::new(&env);
    env.write("model.bin", b"weights");
    env.mlv(&["add", "model.bin"]).ok();
    std::fs::remove_file(env.path("model.bin")).unwrap();
    env.symlink(canary.dir.join("canary").to_str().unwrap(), "model.bin");
    // the link's target is not in the cache: replacing the link needs --force, like a file
    env.mlv(&["checkout"])
        .refused("hold data that is not in the cache", Some("--force"));
    canary.assert_untouched();
    env.mlv(&["checkout", "--force"])
        .ok()
        .stderr_has("model.bin: restored 1 file");
    canary.assert_untouched();
    assert!(!std::fs::symlink_metadata(env.path("model.bin"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(env.read("model.bin"), b"weights");
}

#[test]
fn a_gitignore_that_is_a_link_to_the_outside_is_never_read_or_written() {
    let env = Env::new();
    let canary = Canary::new(&env);
    env.write("data/a", b"a");
    env.symlink(canary.dir.join("canary").to_str().unwrap(), ".gitignore");
    let before = env.snapshot();
    env.mlv(&["add", "data"]).refused(
        "data: .gitignore is a symbolic link; mlv does not write through links",
        Some("remove the link .gitignore"),
    );
    env.snapshot().assert_same(&before);
    canary.assert_untouched();
    // untrack, which edits the same file, fails on the link instead of copying what it points to
    std::fs::remove_file(env.path(".gitignore")).unwrap();
    env.mlv(&["add", "data"]).ok();
    std::fs::remove_file(env.path(".gitignore")).unwrap();
    env.symlink(canary.dir.join("canary").to_str().unwrap(), ".gitignore");
    let out = env.mlv(&["untrack", "data"]).fails(1);
    assert!(out.stderr.contains("cannot read"), "{out}");
    canary.assert_untouched();
    let link = std::fs::symlink_metadata(env.path(".gitignore")).unwrap();
    assert!(link.file_type().is_symlink(), "the link is left as it was");
}

#[test]
fn a_lineage_file_that_is_a_link_to_the_outside_is_never_appended_to() {
    let env = Env::new();
    let canary = Canary::new(&env);
    env.write("data/a", b"a");
    env.mlv(&["add", "data"]).ok();
    env.symlink(canary.dir.join("canary").to_str().unwrap(), ".mlv/lineage.jsonl");
    let out = env.mlv(&["lineage", "record", "-o", "data"]).fails(1);
    assert!(out.stderr.contains("lineage.jsonl"), "{out}");
    canary.assert_untouched();
}
