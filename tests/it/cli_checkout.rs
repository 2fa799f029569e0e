//! `mlv checkout`: restoring versions from the cache, never losing unsaved data.

use std::os::unix::fs::PermissionsExt;

use crate::common::Env;

/// v1 of `data/` and `model.pt` committed, then v2 committed (train.csv changed, old.csv
/// deleted, new.csv added, model.pt changed).
fn two_versions() -> Env {
    let env = Env::new();
    env.write("data/train.csv", "id,x\n1,2\n");
    env.write("data/old.csv", "old\n");
    env.write("data/deep/keep.csv", "keep\n");
    env.write("model.pt", b"\x00\x01weights-v1\xff");
    env.mlv(&["add", "data", "model.pt"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);
    env.write("data/train.csv", "id,x\n1,2\n3,4\n");
    std::fs::remove_file(env.path("data/old.csv")).unwrap();
    env.write("data/new.csv", "new\n");
    env.write("model.pt", b"\x00\x01weights-v2\xff");
    env.mlv(&["add", "data", "model.pt"]).ok();
    env.git(&["commit", "-qam", "v2"]);
    env
}

#[test]
fn restores_v1_byte_for_byte_and_removes_files_not_in_the_manifest() {
    let env = two_versions();
    env.git(&["checkout", "-q", "HEAD~1"]);
    env.mlv(&["status"])
        .ok()
        .stdout_has("data: modified (3 files changed)");
    env.mlv(&["checkout"])
        .ok()
        .stderr_has("data: restored 2 files, removed 1")
        .stderr_has("model.pt: restored 1 file, removed 0");
    assert_eq!(env.read_str("data/train.csv"), "id,x\n1,2\n");
    assert_eq!(env.read_str("data/old.csv"), "old\n");
    assert_eq!(env.read_str("data/deep/keep.csv"), "keep\n");
    assert!(!env.exists("data/new.csv"));
    assert_eq!(env.read("model.pt"), b"\x00\x01weights-v1\xff");
    env.mlv(&["status", "--exit-code"]).ok();
    // and forward again
    env.git(&["checkout", "-q", "main"]);
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read_str("data/train.csv"), "id,x\n1,2\n3,4\n");
    assert!(!env.exists("data/old.csv"));
    assert_eq!(env.read_str("data/new.csv"), "new\n");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn checkout_json_report() {
    let env = two_versions();
    env.git(&["checkout", "-q", "HEAD~1"]);
    let json = env.mlv(&["checkout", "--json"]).ok().json();
    let t = &json["targets"][0];
    assert_eq!(t["path"], "data");
    assert_eq!(
        (&t["restored"], &t["removed"], &t["unchanged"]),
        (&2.into(), &1.into(), &1.into())
    );
    assert!(t.get("error").is_none());
}

#[test]
fn up_to_date_checkout_does_nothing() {
    let env = two_versions();
    let before = env.snapshot();
    let out = env.mlv(&["checkout"]).ok();
    assert_eq!(out.stderr, "");
    env.mlv(&["checkout", "-v"]).ok().stderr_has("data: up to date");
    env.snapshot().assert_same(&before);
}

#[test]
fn restores_missing_data() {
    let env = two_versions();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    std::fs::remove_file(env.path("model.pt")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read_str("data/new.csv"), "new\n");
    assert_eq!(env.read("model.pt"), b"\x00\x01weights-v2\xff");
}

#[test]
fn refuses_to_overwrite_a_file_whose_content_is_not_in_the_cache() {
    let env = two_versions();
    env.write("model.pt", b"unsaved work");
    let before = env.snapshot();
    // one target
    env.mlv(&["checkout", "model.pt"]).refused(
        "1 workspace file(s) hold data that is not in the cache and would be overwritten or deleted: model.pt",
        Some("save them with `mlv add`, or discard them with `mlv checkout --force`"),
    );
    env.snapshot().assert_same(&before);
    // all targets: the failure, a summary and the hint
    let out = env.mlv(&["checkout"]).fails(1);
    assert_eq!(
        out.stderr_lines("error: "),
        [
            "error: 1 workspace file(s) hold data that is not in the cache and would be overwritten or deleted: model.pt",
            "error: 1 of 2 target(s) failed"
        ],
        "{out}"
    );
    assert_eq!(
        out.stderr_lines("hint: "),
        ["hint: save them with `mlv add`, or discard them with `mlv checkout --force`"]
    );
    env.snapshot().assert_same(&before);
    let json = env.mlv(&["checkout", "--json"]).fails(1).json();
    assert!(
        json["targets"][1]["error"].as_str().unwrap().contains("model.pt"),
        "{json}"
    );
    env.snapshot().assert_same(&before);
    env.mlv(&["checkout", "--force"]).ok();
    assert_eq!(env.read("model.pt"), b"\x00\x01weights-v2\xff");
}

#[test]
fn refuses_to_delete_an_added_file_whose_content_is_not_in_the_cache() {
    let env = two_versions();
    env.write("data/mine.csv", "unsaved\n");
    let before = env.snapshot();
    env.mlv(&["checkout", "data"])
        .refused("data/mine.csv", Some("--force"));
    env.snapshot().assert_same(&before);
    env.mlv(&["checkout", "--force", "data"])
        .ok()
        .stderr_has("removed 1");
    assert!(!env.exists("data/mine.csv"));
}

#[test]
fn overwrites_files_whose_content_is_in_the_cache() {
    let env = two_versions();
    // the v1 model is in the cache: replacing it loses nothing
    env.write("model.pt", b"\x00\x01weights-v1\xff");
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("model.pt"), b"\x00\x01weights-v2\xff");
}

#[test]
fn partial_checkout_of_a_path_inside_a_tracked_directory() {
    let env = two_versions();
    env.write("data/train.csv", "edited\n");
    env.write("data/deep/keep.csv", "edited\n");
    std::fs::remove_file(env.path("data/new.csv")).unwrap();
    env.mlv(&["checkout", "--force", "data/deep"])
        .ok()
        .stderr_has("data/deep: restored 1 file");
    assert_eq!(env.read_str("data/deep/keep.csv"), "keep\n");
    assert_eq!(env.read_str("data/train.csv"), "edited\n");
    assert!(!env.exists("data/new.csv"));
    env.mlv(&["checkout", "data/new.csv"]).ok();
    assert_eq!(env.read_str("data/new.csv"), "new\n");
    assert_eq!(env.read_str("data/train.csv"), "edited\n");
}

#[test]
fn empty_files_and_empty_directories_round_trip() {
    let env = Env::new();
    env.write("data/empty.txt", b"");
    env.mkdir("data/empty-dir/nested-empty");
    env.write("data/x", b"x");
    env.write("blank", b"");
    env.mlv(&["add", "data", "blank"]).ok();
    env.mlv(&["status", "--exit-code"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    std::fs::remove_file(env.path("blank")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/empty.txt"), b"");
    assert!(env.path("data/empty-dir/nested-empty").is_dir());
    assert_eq!(
        std::fs::read_dir(env.path("data/empty-dir/nested-empty"))
            .unwrap()
            .count(),
        0
    );
    assert_eq!(env.read("blank"), b"");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn an_entirely_empty_directory_round_trips() {
    let env = Env::new();
    env.mkdir("data");
    env.mlv(&["add", "data"])
        .ok()
        .stderr_has("added data (0 files, 0 B)");
    std::fs::remove_dir(env.path("data")).unwrap();
    env.mlv(&["status"]).ok().stdout_has("data: missing");
    env.mlv(&["checkout"]).ok();
    assert!(env.path("data").is_dir());
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn internal_relative_symlinks_round_trip_as_links() {
    let env = Env::new();
    env.write("data/v1/a.csv", b"a");
    env.symlink("v1/a.csv", "data/latest");
    env.symlink("../v1", "data/sub/up");
    env.mlv(&["add", "data"]).ok().stderr_has("added data (1 file");
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(
        std::fs::read_link(env.path("data/latest")).unwrap().to_str(),
        Some("v1/a.csv")
    );
    assert_eq!(
        std::fs::read_link(env.path("data/sub/up")).unwrap().to_str(),
        Some("../v1")
    );
    assert_eq!(env.read("data/latest"), b"a");
    env.mlv(&["status", "--exit-code"]).ok();
    // retargeting a link is a modification that checkout undoes
    std::fs::remove_file(env.path("data/latest")).unwrap();
    env.symlink("sub", "data/latest");
    env.mlv(&["status", "-v"])
        .ok()
        .stdout_has("\tmodified: data/latest");
    env.mlv(&["checkout"]).ok();
    assert_eq!(
        std::fs::read_link(env.path("data/latest")).unwrap().to_str(),
        Some("v1/a.csv")
    );
}

#[test]
fn executable_bit_round_trips() {
    let env = Env::new();
    env.write("bin/run.sh", b"#!/bin/sh\n");
    std::fs::set_permissions(env.path("bin/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.write("bin/plain", b"p");
    env.mlv(&["add", "bin"]).ok();
    std::fs::remove_dir_all(env.path("bin")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.mode("bin/run.sh") & 0o100, 0o100);
    assert_eq!(env.mode("bin/plain") & 0o111, 0);
    env.mlv(&["status", "--exit-code"]).ok();
}

/// Replaces the cache object holding `content` by other bytes.
fn corrupt(env: &Env, content: &[u8]) {
    let object = env.object_path(content);
    std::fs::set_permissions(&object, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&object, b"evil bytes").unwrap();
}

#[test]
fn a_corrupt_object_fails_with_exit_code_3_and_installs_nothing() {
    for link in ["copy", "hardlink", "symlink"] {
        let env = two_versions();
        corrupt(&env, b"\x00\x01weights-v2\xff");
        std::fs::remove_file(env.path("model.pt")).unwrap();
        let out = env
            .mlv_env(&[("MLV_CACHE_LINK", link)], &["checkout", "model.pt"])
            .fails(3);
        assert!(out.stderr.contains("corrupt"), "{link}: {out}");
        assert!(!env.exists("model.pt"), "{link}: wrong bytes installed");
        // the same through a checkout of everything
        env.mlv_env(&[("MLV_CACHE_LINK", link)], &["checkout"]).fails(3);
        assert!(!env.exists("model.pt"), "{link}: wrong bytes installed");
        assert_eq!(env.read_str("data/new.csv"), "new\n");
    }
}

#[test]
fn a_corrupt_file_in_a_directory_fails_with_exit_code_3() {
    let env = two_versions();
    corrupt(&env, b"new\n");
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout", "data"]).fails(3).stderr_has("corrupt");
    assert!(!env.exists("data/new.csv"));
    assert_eq!(env.read_str("data/train.csv"), "id,x\n1,2\n3,4\n");
}

#[test]
fn a_corrupt_manifest_fails_with_exit_code_3() {
    let env = two_versions();
    let digest = env.pointer("data.mlv")["digest"].as_str().unwrap().to_string();
    let manifest = env.path(&format!(".mlv/cache/{}/{digest}", &digest[..2]));
    let bytes = std::fs::read(&manifest).unwrap();
    corrupt(&env, &bytes);
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout", "data"]).fails(3);
    assert!(!env.exists("data"));
}

#[test]
fn not_in_cache_is_a_refusal() {
    let env = two_versions();
    std::fs::remove_dir_all(env.path(".mlv/cache")).unwrap();
    std::fs::remove_file(env.path("model.pt")).unwrap();
    env.mlv(&["checkout", "model.pt"])
        .refused("model.pt: object", Some("mlv pull"));
    assert!(!env.exists("model.pt"));
}

#[test]
fn a_file_that_became_a_directory_and_back() {
    let env = Env::new();
    env.write("data", b"a file");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "file"]);
    std::fs::remove_file(env.path("data")).unwrap();
    env.write("data/inner", b"now a dir");
    env.mlv(&["add", "data"]).ok();
    env.git(&["commit", "-qam", "dir"]);
    env.git(&["checkout", "-q", "HEAD~1"]);
    env.mlv(&["status"]).ok().stdout_has("data: modified");
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data"), b"a file");
    env.git(&["checkout", "-q", "main"]);
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/inner"), b"now a dir");
    env.mlv(&["status", "--exit-code"]).ok();
}

// Issue 12, item 7: a size recorded wrongly (by a hand edit, or by an mlv that recorded the
// size of a file growing while it was read) is an integrity error: nothing is written.

#[test]
fn a_pointer_whose_size_is_not_its_objects_is_refused() {
    let env = Env::new();
    env.write("model.pt", b"weights");
    env.mlv(&["add", "model.pt"]).ok();
    let digest = env.pointer("model.pt.mlv")["digest"]
        .as_str()
        .unwrap()
        .to_string();
    env.set_pointer_size("model.pt.mlv", 6);
    // the workspace holds the content: its size shows the record is wrong
    let out = env.mlv(&["checkout", "model.pt"]).fails(3);
    assert_eq!(
        out.stderr_lines("error:"),
        [format!("error: model.pt: the pointer records 6 bytes, but its content {digest} has 7").as_str()],
        "{out}"
    );
    assert!(
        out.stderr_lines("hint:")[0].contains("git checkout -- FILE.mlv"),
        "{out}"
    );
    // absent from the workspace: the cache object's size shows it, and nothing is written
    std::fs::remove_file(env.path("model.pt")).unwrap();
    env.mlv(&["checkout", "model.pt"]).fails(3);
    assert!(!env.exists("model.pt"));
    env.set_pointer_size("model.pt.mlv", 7);
    env.mlv(&["checkout", "model.pt"]).ok();
    assert_eq!(env.read("model.pt"), b"weights");
}

#[test]
fn a_manifest_entry_or_directory_total_that_is_wrong_is_refused() {
    let env = Env::new();
    env.write("data/a.csv", "a,b\n");
    env.write("data/b.csv", "c,d\n");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env.forge_entry_size("data.mlv", "a.csv", 3);
    std::fs::remove_dir_all(env.path("data")).unwrap();
    let out = env.mlv(&["checkout", "data"]).fails(3);
    assert_eq!(out.stderr_lines("error:").len(), 1, "{out}");
    assert!(
        out.stderr
            .contains("error: data/a.csv: the manifest records 3 bytes, but its content"),
        "{out}"
    );
    assert!(!env.exists("data"), "{out}");
    // the pointer's total
    env.git(&["checkout", "--", "data.mlv"]);
    env.set_pointer_size("data.mlv", 1);
    let out = env.mlv(&["checkout", "data"]).fails(3);
    assert!(
        out.stderr
            .contains("error: data: the pointer records 1 bytes, but its content"),
        "{out}"
    );
    assert!(!env.exists("data"), "{out}");
    env.git(&["checkout", "--", "data.mlv"]);
    env.mlv(&["checkout", "data"]).ok();
    assert_eq!(env.read("data/a.csv"), b"a,b\n");
}

/// A pointer (from a pull request, say) that claims `train.py`, which git tracks, with the
/// original content of `train.py` in the cache too (so no "unsaved data" check stops it).
fn pointer_over_a_git_file() -> Env {
    let env = Env::new();
    env.write("train.py", "print('mine')\n");
    env.git(&["add", "train.py"]);
    env.git(&["commit", "-qm", "source"]);
    env.write("copy.py", "print('mine')\n");
    env.write("evil", "print('theirs')\n");
    env.mlv(&["add", "copy.py", "evil"]).ok();
    let text = env
        .read_str("evil.mlv")
        .replace("path = \"evil\"", "path = \"train.py\"");
    env.write("train.py.mlv", text);
    env
}

#[test]
fn checkout_and_pull_never_overwrite_a_file_git_tracks() {
    let env = pointer_over_a_git_file();
    let remote = env.base.join("remote");
    env.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    env.mlv(&["push"]).ok();
    let what = "train.py.mlv: claims train.py, which git tracks; mlv never overwrites files in git";
    for args in [
        &["checkout", "train.py"][..],
        &["checkout", "--force", "train.py"],
    ] {
        env.mlv(args).refused(what, Some("git rm -- train.py.mlv"));
        assert_eq!(env.read_str("train.py"), "print('mine')\n", "{args:?}");
    }
    // with other targets, those are restored and this one fails
    for args in [
        &["checkout"][..],
        &["checkout", "--force"],
        &["pull"],
        &["pull", "--force"],
    ] {
        env.mlv(args)
            .fails(1)
            .stderr_has(&format!("error: {what}"))
            .stderr_has("1 of 3 target(s) failed");
        assert_eq!(env.read_str("train.py"), "print('mine')\n", "{args:?}");
    }
    // a directory pointer over a directory holding a git-tracked file is refused alike
    let env = Env::new();
    env.write("src/lib.py", "x = 1\n");
    env.git(&["add", "src"]);
    env.write("other/a", "a");
    env.mlv(&["add", "other"]).ok();
    let text = env
        .read_str("other.mlv")
        .replace("path = \"other\"", "path = \"src\"");
    env.write("src.mlv", text);
    env.mlv(&["checkout", "--force", "src"])
        .refused("src.mlv: claims src, which git tracks", None);
    assert_eq!(env.read_str("src/lib.py"), "x = 1\n");
}

#[test]
fn a_pointer_must_track_its_own_name() {
    let env = Env::new();
    env.write("model.pt", "weights");
    env.write("evil", "evil");
    env.mlv(&["add", "model.pt", "evil"]).ok();
    // `evil.mlv` claims `model.pt` (which `model.pt.mlv` tracks): two pointers, one path
    let text = env
        .read_str("evil.mlv")
        .replace("path = \"evil\"", "path = \"model.pt\"");
    env.write("evil.mlv", text);
    std::fs::remove_file(env.path("model.pt")).unwrap();
    for args in [&["checkout"][..], &["status"], &["fsck"], &["gc"]] {
        env.mlv(args).refused(
            "evil.mlv: malformed pointer file: `path` = \"model.pt\" is not the pointer's own name",
            Some("fix the pointer file"),
        );
        assert!(!env.exists("model.pt"), "{args:?}");
    }
}
