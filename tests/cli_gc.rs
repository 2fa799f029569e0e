//! `mlv gc`: what is kept (workspace, branch and tag tips, all commits, recent objects) and
//! what is removed.

mod common;

use common::Env;

/// `data/` at v1 committed on the current branch, then v2 added in the workspace only.
fn two_versions() -> Env {
    let env = Env::new();
    env.write("data/keep", b"same in both");
    env.write("data/v", b"version one");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v1"]);
    env.write("data/v", b"version two");
    env.mlv(&["add", "data"]).ok();
    env
}

fn gc(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    env.mlv(&all).ok().json()
}

#[test]
fn workspace_scope_removes_the_committed_version_only() {
    let env = two_versions();
    let v1 = env.object_path(b"version one");
    let v2 = env.object_path(b"version two");
    let shared = env.object_path(b"same in both");
    let json = gc(&env, &["--workspace", "--grace", "0"]);
    // v1's content and v1's manifest
    assert_eq!(json["removed"], 2, "{json}");
    assert!(!v1.exists());
    assert!(v2.exists() && shared.exists());
    env.mlv(&["status", "--exit-code"]).ok();
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/v"), b"version two");
}

#[test]
fn default_scope_keeps_what_branch_tips_and_tags_refer_to() {
    let env = two_versions();
    let json = gc(&env, &["--grace", "0"]);
    assert_eq!(json["removed"], 0, "{json}");
    assert!(env.object_path(b"version one").exists());
    // once v2 is committed, v1 is only in history: the default scope drops it, --all-commits keeps it
    env.git(&["commit", "-qam", "v2"]);
    env.git(&["tag", "v2"]);
    assert_eq!(
        gc(&env, &["--all-commits", "--grace", "0", "--dry-run"])["removed"],
        0
    );
    let json = gc(&env, &["--grace", "0", "--dry-run"]);
    assert_eq!(
        (json["removed"].as_u64(), json["dry_run"].as_bool()),
        (Some(2), Some(true))
    );
    assert!(
        env.object_path(b"version one").exists(),
        "dry run removes nothing"
    );
    gc(&env, &["--grace", "0"]);
    assert!(!env.object_path(b"version one").exists());
    assert!(env.object_path(b"version two").exists());
}

#[test]
fn recent_objects_are_kept_within_the_grace_period() {
    let env = two_versions();
    let json = gc(&env, &["--workspace"]);
    assert_eq!(
        (json["removed"].as_u64(), json["kept_recent"].as_u64()),
        (Some(0), Some(2)),
        "{json}"
    );
    assert!(env.object_path(b"version one").exists());
}

#[test]
fn gc_outside_a_repository_is_a_clear_error() {
    let env = Env::git_only();
    env.mlv(&["gc"])
        .refused("not an mlv repository", Some("mlv init"));
}
