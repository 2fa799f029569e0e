//! `mlv untrack`: the pointer and the .gitignore line go, the data stays.

use std::os::unix::fs::MetadataExt;

use crate::common::Env;

#[test]
fn untrack_removes_pointer_and_ignore_line_and_keeps_the_data() {
    let env = Env::new();
    env.write(".gitignore", "*.log\n");
    env.write("data/a", b"a");
    env.write("models/model.pt", b"m");
    env.mlv(&["add", "data", "models/model.pt"]).ok();
    env.mlv(&["untrack", "data"])
        .ok()
        .stderr_has("untracked data (removed data.mlv; the data stays in place)")
        .stderr_has("\tgit add -A data.mlv");
    assert!(!env.exists("data.mlv"));
    assert_eq!(env.read_str(".gitignore"), "*.log\n");
    assert_eq!(env.read("data/a"), b"a");
    // by its pointer file; an emptied .gitignore is removed
    env.mlv(&["untrack", "models/model.pt.mlv"]).ok();
    assert!(!env.exists("models/model.pt.mlv"));
    assert!(!env.exists("models/.gitignore"));
    assert_eq!(env.read("models/model.pt"), b"m");
    env.mlv(&["status"]).ok().stderr_has("No data is tracked yet");
    // git now sees the data itself
    let st = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        st.contains("?? data/a") && st.contains("?? models/model.pt"),
        "{st}"
    );
}

#[test]
fn untrack_turns_links_into_copies() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.mlv_env(&[("MLV_CACHE_LINK", "hardlink")], &["add", "data"])
        .ok();
    env.mlv(&["untrack", "data"]).ok();
    let meta = std::fs::metadata(env.path("data/a")).unwrap();
    assert_ne!(
        meta.ino(),
        std::fs::metadata(env.object_path(b"a")).unwrap().ino()
    );
    assert_ne!(meta.mode() & 0o200, 0, "still read-only");
    assert_eq!(env.read("data/a"), b"a");
}

#[test]
fn untrack_with_autostage_stages_the_removal() {
    let env = Env::new();
    env.set_autostage();
    env.write(".gitignore", "*.log\n");
    env.write("data/a", b"a");
    env.mlv(&["add", "data"]).ok();
    env.git(&["commit", "-qm", "track"]);
    let out = env.mlv(&["untrack", "--json", "data"]).ok();
    assert_eq!(out.json()["staged"], true);
    assert_eq!(env.staged(), [".gitignore", "data.mlv"]);
    let st = env.git(&["status", "--porcelain"]);
    assert!(st.contains("D  data.mlv") && st.contains("M  .gitignore"), "{st}");
}

#[test]
fn untrack_json_report() {
    let env = Env::new();
    env.write("sub/f", b"f");
    env.mlv(&["add", "sub/f"]).ok();
    let json = env.mlv(&["untrack", "--json", "sub/f"]).ok().json();
    assert_eq!(json["untracked"], serde_json::json!(["sub/f"]));
    assert_eq!(json["removed_pointers"], serde_json::json!(["sub/f.mlv"]));
    assert_eq!(json["staged"], false);
}

#[test]
fn untrack_of_a_path_inside_tracked_data_is_refused() {
    let env = Env::new();
    env.write("data/a", b"a");
    env.mlv(&["add", "data"]).ok();
    let before = env.snapshot();
    env.mlv(&["untrack", "data/a"])
        .refused("data/a: not tracked by mlv", None);
    env.snapshot().assert_same(&before);
}

#[test]
fn untrack_removes_a_gitignore_line_an_older_mlv_escaped_differently() {
    let env = Env::new();
    env.write(" lead", b"x");
    env.mlv(&["add", " lead"]).ok();
    // earlier builds wrote `/\ lead` (a needless escape)
    env.write(".gitignore", "keep\n/\\ lead\n");
    env.mlv(&["untrack", " lead"]).ok();
    assert_eq!(env.read_str(".gitignore"), "keep\n");
}
