//! Link kinds (hardlink, symlink, copy), `mlv unprotect`, and the cache staying intact.

use std::os::unix::fs::MetadataExt;

use crate::common::Env;

fn readonly(env: &Env, rel: &str) -> bool {
    let meta = std::fs::metadata(env.path(rel)).unwrap();
    meta.mode() & 0o222 == 0
}

/// Adds `data/a`, `data/b` and `model.pt` with `MLV_CACHE_LINK=link`.
fn added_with(link: &str) -> Env {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("data/b", b"b");
    env.write("model.pt", b"m");
    env.mlv_env(&[("MLV_CACHE_LINK", link)], &["add", "data", "model.pt"])
        .ok();
    env
}

#[test]
fn hardlink_workspace_files_are_the_read_only_objects() {
    let env = added_with("hardlink");
    for (rel, content) in [("data/a", b"a"), ("model.pt", b"m")] {
        let object = std::fs::metadata(env.object_path(content)).unwrap();
        assert_eq!(env.ino(rel), object.ino(), "{rel}");
        assert!(readonly(&env, rel), "{rel}");
    }
    env.mlv_env(&[("MLV_CACHE_LINK", "hardlink")], &["status", "--exit-code"])
        .ok();
    // checkout restores links too
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv_env(&[("MLV_CACHE_LINK", "hardlink")], &["checkout"]).ok();
    assert_eq!(
        env.ino("data/b"),
        std::fs::metadata(env.object_path(b"b")).unwrap().ino()
    );
}

#[test]
fn symlink_workspace_files_point_at_the_objects() {
    let env = added_with("symlink");
    for (rel, content) in [("data/a", b"a"), ("model.pt", b"m")] {
        let target = std::fs::read_link(env.path(rel)).unwrap();
        assert_eq!(target, env.object_path(content), "{rel}");
        assert!(readonly(&env, rel), "{rel}");
    }
    env.mlv(&["status", "--exit-code"]).ok();
    std::fs::remove_file(env.path("model.pt")).unwrap();
    env.mlv_env(&[("MLV_CACHE_LINK", "symlink")], &["checkout"]).ok();
    assert_eq!(
        std::fs::read_link(env.path("model.pt")).unwrap(),
        env.object_path(b"m")
    );
}

#[test]
fn copy_workspace_files_are_independent_and_writable() {
    let env = added_with("copy");
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv_env(&[("MLV_CACHE_LINK", "copy")], &["checkout"]).ok();
    assert_ne!(
        env.ino("data/a"),
        std::fs::metadata(env.object_path(b"a")).unwrap().ino()
    );
    assert!(!readonly(&env, "data/a"));
    // editing the workspace never changes the cache
    std::fs::write(env.path("data/a"), b"edited").unwrap();
    assert_eq!(std::fs::read(env.object_path(b"a")).unwrap(), b"a");
}

#[test]
fn link_kinds_from_the_config_file() {
    let env = Env::new();
    let config = env.read_str(".mlv/config.toml");
    let config = config.replace(r#"link = ["reflink", "copy"]"#, r#"link = ["hardlink", "copy"]"#);
    std::fs::write(env.path(".mlv/config.toml"), config).unwrap();
    env.write("model.pt", b"m");
    env.mlv(&["add", "model.pt"]).ok();
    assert_eq!(
        env.ino("model.pt"),
        std::fs::metadata(env.object_path(b"m")).unwrap().ino()
    );
    // the environment overrides the file
    std::fs::remove_file(env.path("model.pt")).unwrap();
    env.mlv_env(&[("MLV_CACHE_LINK", "copy")], &["checkout"]).ok();
    assert!(!readonly(&env, "model.pt"));
}

#[test]
fn a_bad_link_kind_is_an_error() {
    let env = Env::new();
    env.mlv_env(&[("MLV_CACHE_LINK", "teleport")], &["status"])
        .refused("environment variable MLV_CACHE_LINK", None);
}

#[test]
fn unprotect_makes_writable_copies_and_edits_leave_the_cache_alone() {
    for link in ["hardlink", "symlink"] {
        let env = added_with(link);
        let out = env.mlv(&["unprotect", "--json", "data", "model.pt"]).ok();
        assert_eq!(out.json()["copied"], 3, "{link}");
        for (rel, content) in [("data/a", b"a"), ("data/b", b"b"), ("model.pt", b"m")] {
            let meta = std::fs::symlink_metadata(env.path(rel)).unwrap();
            assert!(meta.is_file(), "{link} {rel}");
            assert!(!readonly(&env, rel), "{link} {rel}");
            let object = std::fs::metadata(env.object_path(content)).unwrap();
            assert_ne!(meta.ino(), object.ino(), "{link} {rel}");
            assert_eq!(env.read(rel), content);
        }
        env.mlv(&["status", "--exit-code"]).ok();
        std::fs::write(env.path("data/a"), b"edited").unwrap();
        std::fs::write(env.path("model.pt"), b"edited").unwrap();
        assert_eq!(std::fs::read(env.object_path(b"a")).unwrap(), b"a", "{link}");
        assert_eq!(std::fs::read(env.object_path(b"m")).unwrap(), b"m", "{link}");
        env.mlv(&["status"])
            .ok()
            .stdout_has("data: modified (1 file changed)");
        // a second unprotect has nothing left to do
        env.mlv(&["unprotect", "data"])
            .ok()
            .stderr_has("unprotected 0 file(s)");
    }
}

#[test]
fn unprotect_a_path_inside_a_tracked_directory() {
    let env = added_with("hardlink");
    env.mlv(&["unprotect", "data/a"])
        .ok()
        .stderr_has("unprotected 1 file(s)");
    assert!(!readonly(&env, "data/a"));
    assert!(readonly(&env, "data/b"));
}

#[test]
fn unprotect_of_untracked_data_is_refused() {
    let env = added_with("hardlink");
    env.write("other", b"o");
    env.mlv(&["unprotect", "other"])
        .refused("other: not tracked by mlv", Some("mlv status"));
}

#[test]
fn readding_linked_data_keeps_it_linked_and_unchanged() {
    let env = added_with("hardlink");
    let pointer = env.read("data.mlv");
    env.mlv_env(&[("MLV_CACHE_LINK", "hardlink")], &["add", "data"])
        .ok()
        .stderr_has("unchanged data");
    assert_eq!(env.read("data.mlv"), pointer);
    assert_eq!(std::fs::read(env.object_path(b"a")).unwrap(), b"a");
}

#[test]
fn linking_workspace_files_to_the_cache_is_refused_as_root() {
    let env = Env::new();
    let uid = env.command("id", &["-u"]).run().ok().stdout;
    env.write("data/a", b"a");
    let run = |link: &str, args: &[&str]| {
        env.command(crate::common::MLV, args)
            .env("MLV_CACHE_LINK", link)
            .env_remove("MLV_LINK_AS_ROOT")
            .run()
    };
    if uid.trim() != "0" {
        run("hardlink", &["add", "data"]).ok();
        return; // the refusal is for root only
    }
    let before = env.snapshot();
    for link in ["hardlink", "symlink,copy", "reflink,hardlink,copy"] {
        run(link, &["add", "data"]).refused("mlv runs as root", Some("MLV_LINK_AS_ROOT=1"));
    }
    env.snapshot().assert_same(&before);
    assert!(env.objects().is_empty());
    // copies are fine as root; checkout with links is refused before writing
    run("reflink,copy", &["add", "data"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    run("hardlink", &["checkout"]).refused("mlv runs as root", None);
    assert!(!env.exists("data"));
    // root who accepts the risk gets links
    env.mlv_env(&[("MLV_CACHE_LINK", "hardlink")], &["checkout"]).ok();
    assert_eq!(
        env.ino("data/a"),
        std::fs::metadata(env.object_path(b"a")).unwrap().ino()
    );
}
