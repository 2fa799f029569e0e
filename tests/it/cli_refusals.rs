//! Hostile pointer files and the refusals of `mlv add`: one clear error, a hint, nothing written.

use crate::common::{fixture, Env};

/// Installs `fixtures/pointers/NAME` as `data.mlv`.
fn with_pointer(name: &str) -> Env {
    let env = Env::new();
    std::fs::copy(fixture(&format!("pointers/{name}")), env.path("data.mlv")).unwrap();
    env
}

#[test]
fn the_valid_fixture_is_accepted() {
    let env = with_pointer("valid.mlv");
    env.mlv(&["status"]).ok().stdout_has("data: not pulled\n");
    env.write("data", b"");
    env.mlv(&["status"])
        .ok()
        .stdout_has("data: up to date, not in cache\n");
    env.mlv(&["add", "data"]).ok().stderr_has("unchanged data (0 B)");
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn malformed_pointers_fail_with_one_error_naming_the_file_and_a_hint() {
    let cases = [
        ("truncated.mlv", "malformed pointer file"),
        ("dotdot.mlv", "must not contain `..`"),
        ("absolute.mlv", "must be relative"),
        ("dotgit.mlv", "`.git`"),
        ("bad-digest.mlv", "is not a digest"),
        ("bad-type.mlv", "malformed pointer file"),
        ("binary.mlv", "not UTF-8"),
        ("unknown-field.mlv", "remote"),
        ("version2.mlv", "unsupported pointer format version 2"),
        ("backslash.mlv", "must be relative and use `/`"),
        ("newline.mlv", "control character"),
        ("carriage-return.mlv", "control character"),
        ("nul.mlv", "control character"),
        ("empty-component.mlv", "empty or `.` component"),
        ("dotgit-case.mlv", "`.git`"),
        ("dotmlv.mlv", "`.mlv`"),
    ];
    for (name, what) in cases {
        let env = with_pointer(name);
        for args in [&["status"][..], &["checkout"], &["status", "--json"]] {
            let out = env.mlv(args).refused(what, Some(""));
            let error = out.stderr_lines("error: ")[0];
            assert!(
                error.contains("data.mlv: "),
                "{name}: error does not name the file\n{out}"
            );
            assert_eq!(
                out.stderr.lines().count(),
                2,
                "{name}: expected error + hint\n{out}"
            );
        }
        let hint = env.mlv(&["status"]).stderr_lines("hint: ").join("");
        let expected = if name == "version2.mlv" {
            "newer mlv"
        } else {
            "git checkout -- FILE"
        };
        assert!(hint.contains(expected), "{name}: {hint}");
    }
}

#[test]
fn a_malformed_pointer_in_a_subdirectory_is_named_too() {
    let env = Env::new();
    env.mkdir("sub");
    std::fs::copy(fixture("pointers/truncated.mlv"), env.path("sub/x.mlv")).unwrap();
    env.mlv(&["status"])
        .refused("sub/x.mlv: malformed pointer file", Some("fix the pointer file"));
}

/// Data for the add refusals: `data/` (tracked), `free/`, and `committed` (in git).
fn add_setup() -> Env {
    let env = Env::new();
    env.write("data/a", b"a");
    env.write("data/sub/b", b"b");
    env.write("free/x", b"x");
    env.write("committed", b"c");
    env.git(&["add", "committed"]);
    env.git(&["commit", "-qm", "c"]);
    env.mlv(&["add", "data"]).ok();
    env
}

#[track_caller]
fn add_refused(env: &Env, args: &[&str], what: &str, hint: Option<&str>) {
    let before = env.snapshot();
    let mut full = vec!["add"];
    full.extend(args);
    env.mlv(&full).refused(what, hint);
    env.snapshot().assert_same(&before);
}

#[test]
fn add_refuses_a_path_outside_the_work_tree() {
    let env = add_setup();
    std::fs::write(env.base.join("elsewhere"), b"e").unwrap();
    add_refused(
        &env,
        &["../elsewhere"],
        "the path is outside the repository",
        None,
    );
    let abs = env.base.join("elsewhere").display().to_string();
    add_refused(&env, &[&abs], "the path is outside the repository", None);
    add_refused(&env, &["."], "the path is the repository root", None);
}

#[test]
fn add_refuses_paths_inside_git_and_mlv() {
    let env = add_setup();
    add_refused(&env, &[".git/config"], "inside `.git`", None);
    add_refused(&env, &[".git"], "inside `.git`", None);
    add_refused(&env, &[".mlv/config.toml"], "inside `.mlv`", None);
    add_refused(&env, &["free/../.mlv"], "inside `.mlv`", None);
}

#[test]
fn add_refuses_a_path_tracked_by_git() {
    let env = add_setup();
    add_refused(
        &env,
        &["committed"],
        "committed: already tracked by git",
        Some("git rm -r --cached committed"),
    );
    env.write("dir/in-git", b"g");
    env.write("dir/other", b"o");
    env.git(&["add", "dir/in-git"]);
    add_refused(
        &env,
        &["dir"],
        "dir: already tracked by git",
        Some("git rm -r --cached dir"),
    );
}

#[test]
fn add_refuses_overlapping_another_pointer() {
    let env = add_setup();
    add_refused(
        &env,
        &["data/sub"],
        "data/sub: overlaps data, which is tracked by data.mlv",
        Some("data.mlv"),
    );
    add_refused(&env, &["data/a"], "overlaps data", Some("data.mlv"));
    // and the other way round: a parent of tracked data
    env.write("outer/inner/f", b"f");
    env.mlv(&["add", "outer/inner"]).ok();
    add_refused(
        &env,
        &["outer"],
        "outer: overlaps outer/inner, which is tracked by outer/inner.mlv",
        Some("outer/inner.mlv"),
    );
}

#[test]
fn add_refuses_overlapping_arguments() {
    let env = add_setup();
    add_refused(&env, &["free", "free/x"], "given twice", None);
}

#[test]
fn add_refuses_a_nonexistent_path() {
    let env = add_setup();
    add_refused(&env, &["nope"], "nope: no such file or directory", None);
    // nothing is written for the valid paths before it either
    add_refused(&env, &["free", "nope"], "nope: no such file or directory", None);
}

#[test]
fn add_refuses_a_symlink_escaping_the_repository() {
    let env = add_setup();
    env.symlink("../../../etc/passwd", "free/escape");
    add_refused(
        &env,
        &["free"],
        "leads outside the repository",
        Some("replace the link"),
    );
    std::fs::remove_file(env.path("free/escape")).unwrap();
    env.symlink("/etc/passwd", "free/absolute");
    add_refused(
        &env,
        &["free"],
        "leads outside the repository",
        Some("replace the link"),
    );
    std::fs::remove_file(env.path("free/absolute")).unwrap();
    env.symlink("../.git/config", "free/into-git");
    add_refused(&env, &["free"], "leads outside the repository", None);
}

#[test]
fn add_checks_every_path_before_writing_anything() {
    let env = add_setup();
    env.write("bad/f", b"f");
    env.symlink("../../outside", "bad/escape");
    // `free` is fine, `bad` is not: neither may be added
    add_refused(&env, &["free", "bad"], "leads outside the repository", None);
}

#[test]
fn add_refuses_a_symlink_given_directly() {
    let env = add_setup();
    env.symlink("free/x", "link");
    add_refused(
        &env,
        &["link"],
        "link: is a symbolic link",
        Some("add the link's target instead"),
    );
}

#[test]
fn commands_outside_an_mlv_repository() {
    let env = Env::git_only();
    env.write("f", b"f");
    env.mlv(&["status"])
        .refused("is not an mlv repository", Some("mlv init"));
    env.mlv(&["add", "f"])
        .refused("is not an mlv repository", Some("mlv init"));
    let env = Env::empty();
    std::fs::create_dir(&env.root).unwrap();
    env.mlv(&["status"])
        .refused("is not inside a git work tree", Some("git init"));
}

#[test]
fn untracked_paths_are_refused_by_untrack_and_checkout() {
    let env = add_setup();
    add_refused(&env, &["nope"], "no such file", None);
    let before = env.snapshot();
    env.mlv(&["untrack", "free"])
        .refused("free: not tracked by mlv", Some("mlv status"));
    env.mlv(&["checkout", "free"])
        .refused("free: not tracked by mlv", Some("mlv status"));
    env.snapshot().assert_same(&before);
}

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.mlv(&["add"]).fails(2);
    env.mlv(&["frobnicate"]).fails(2);
    env.mlv(&["status", "--no-such-flag"]).fails(2);
}

#[test]
fn an_invalid_config_is_named() {
    let env = Env::new();
    std::fs::write(env.path(".mlv/config.toml"), "[core]\nautostag = true\n").unwrap();
    env.mlv(&["status"])
        .refused("config.toml: invalid configuration", Some("typo"));
}

#[test]
fn add_refuses_a_directory_holding_git_or_mlv_entries() {
    let env = add_setup();
    env.write("free/nested/.git/HEAD", b"ref: refs/heads/main\n");
    add_refused(
        &env,
        &["free"],
        "mlv cannot track `.git` or `.mlv` inside tracked data",
        Some("move it out"),
    );
    std::fs::remove_dir_all(env.path("free/nested")).unwrap();
    env.write("free/.mlv", b"x");
    add_refused(&env, &["free"], "free/.mlv: mlv cannot track", None);
}
