//! `mlv install-hooks` / `mlv uninstall-hooks`, driven by real `git checkout`, `git merge` and
//! `git push` in temporary repositories.

use crate::common::Env;

fn hook(env: &Env, name: &str) -> String {
    env.read_str(&format!(".git/hooks/{name}"))
}

/// A repository with hooks and two branches whose `data` differs, `main` checked out.
fn two_branches(env: &Env) {
    env.mlv(&["install-hooks"]).ok();
    env.write("data", b"on main");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "main"]);
    env.git(&["checkout", "-q", "-b", "side"]);
    env.write("data", b"on side");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "side"]);
    env.git(&["checkout", "-q", "main"]);
}

#[test]
fn install_is_idempotent_and_uninstall_removes_only_mlv_hooks() {
    let env = Env::new();
    let out = env.mlv(&["install-hooks"]).ok();
    out.stderr_has(".git/hooks/post-checkout: installed")
        .stderr_has(".git/hooks/post-merge: installed")
        .stderr_has(".git/hooks/pre-push: installed");
    assert_eq!(env.mode(".git/hooks/pre-push") & 0o777, 0o755);
    let before = env.snapshot();
    let text = hook(&env, "post-checkout");
    let json = env.mlv(&["install-hooks", "--json"]).ok().json();
    assert_eq!(
        json["hooks"][0],
        serde_json::json!({"name": "post-checkout", "action": "unchanged"})
    );
    assert_eq!(hook(&env, "post-checkout"), text);
    env.snapshot().assert_same(&before);
    env.mlv(&["uninstall-hooks"])
        .ok()
        .stderr_has(".git/hooks/pre-push: removed");
    for name in ["post-checkout", "post-merge", "pre-push"] {
        assert!(!env.exists(&format!(".git/hooks/{name}")), "{name}");
    }
    env.mlv(&["uninstall-hooks"])
        .ok()
        .stderr_has(".git/hooks/pre-push: not installed");
}

#[test]
fn branch_checkout_and_merge_check_out_the_data() {
    let env = Env::new();
    two_branches(&env);
    assert_eq!(env.read("data"), b"on main");
    let out = env.command("git", &["checkout", "side"]).run().ok();
    assert_eq!(env.read("data"), b"on side", "{out}");
    // a file checkout ($3 = 0) leaves the data alone
    env.git(&["checkout", "main", "--", "data.mlv"]);
    assert_eq!(env.read("data"), b"on side");
    env.git(&["checkout", "-q", "side", "--", "data.mlv"]);
    env.git(&["checkout", "-q", "main"]);
    assert_eq!(env.read("data"), b"on main");
    env.git(&["merge", "-q", "--ff-only", "side"]);
    assert_eq!(env.read("data"), b"on side");
}

#[test]
fn a_failing_checkout_does_not_block_git() {
    let env = Env::new();
    two_branches(&env);
    // the side object is gone from the cache: mlv checkout fails, git goes on
    std::fs::remove_file(env.object_path(b"on side")).unwrap();
    let out = env.command("git", &["checkout", "side"]).run().ok();
    out.stderr_has("mlv hook: 'mlv checkout' failed; git went on");
    assert_eq!(env.git(&["branch", "--show-current"]), "side\n");
}

#[test]
fn pre_push_pushes_the_data_and_a_failure_stops_the_push() {
    let env = Env::new();
    env.mlv(&["install-hooks"]).ok();
    let bare = env.base.join("up.git");
    env.git(&["init", "-q", "--bare", bare.to_str().unwrap()]);
    env.git(&["remote", "add", "up", bare.to_str().unwrap()]);
    env.write("data", b"pushed by the hook");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    // no default mlv remote: mlv push fails, so git push stops
    let out = env.command("git", &["push", "-q", "up", "main"]).run();
    assert_ne!(out.code, Some(0), "{out}");
    out.stderr_has("mlv hook: 'mlv push' failed, so git push stopped");
    let refs = env.command("git", &["ls-remote", "up"]).run().ok();
    assert_eq!(refs.stdout, "", "{refs}");
    let store = env.base.join("store");
    env.mlv(&["remote", "add", "o", store.to_str().unwrap(), "--default"])
        .ok();
    env.command("git", &["push", "-q", "up", "main"]).run().ok();
    let fetched = Env::clone_of(&env);
    fetched
        .mlv(&[
            "remote",
            "add",
            "o",
            store.to_str().unwrap(),
            "--default",
            "--local",
        ])
        .ok();
    fetched.mlv(&["pull"]).ok();
    assert_eq!(fetched.read("data"), b"pushed by the hook");
}

#[test]
fn an_existing_hook_is_chained_and_put_back() {
    let env = Env::new();
    let mine = "#!/bin/sh\necho \"my hook $3\" >> my-hook.log\n";
    env.write(".git/hooks/post-checkout", mine);
    std::fs::set_permissions(
        env.path(".git/hooks/post-checkout"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    env.write(".gitignore", "my-hook.log\n");
    env.mlv(&["install-hooks"])
        .ok()
        .stderr_has("post-checkout: installed; runs the existing hook first, kept as post-checkout.pre-mlv");
    assert_eq!(env.read_str(".git/hooks/post-checkout.pre-mlv"), mine);
    env.write("data", b"on main");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "main"]);
    env.git(&["checkout", "-q", "-b", "side"]);
    env.write("data", b"on side");
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "side"]);
    env.git(&["checkout", "-q", "main"]);
    assert_eq!(env.read("data"), b"on main");
    assert_eq!(env.read_str("my-hook.log"), "my hook 1\nmy hook 1\n");
    // a second install keeps the saved hook
    env.mlv(&["install-hooks"])
        .ok()
        .stderr_has("post-checkout: already installed");
    assert_eq!(env.read_str(".git/hooks/post-checkout.pre-mlv"), mine);
    env.mlv(&["uninstall-hooks"])
        .ok()
        .stderr_has("post-checkout: removed; post-checkout.pre-mlv put back");
    assert_eq!(hook(&env, "post-checkout"), mine);
    assert!(!env.exists(".git/hooks/post-checkout.pre-mlv"));
    // a foreign hook with a saved one in the way is refused, nothing written
    env.write(".git/hooks/post-checkout.pre-mlv", "#!/bin/sh\n");
    let before = env.snapshot();
    env.mlv(&["install-hooks"])
        .refused("refusing to replace either", Some("merge"));
    env.snapshot().assert_same(&before);
    assert!(!env.exists(".git/hooks/pre-push"));
}

#[test]
fn hooks_go_to_core_hooks_path() {
    let env = Env::new();
    env.git(&["config", "core.hooksPath", "githooks"]);
    env.mlv(&["install-hooks"])
        .ok()
        .stderr_has("githooks/pre-push: installed");
    assert!(env.exists("githooks/post-checkout"));
    assert!(!env.exists(".git/hooks/post-checkout"));
    env.mlv(&["uninstall-hooks"]).ok();
    assert!(!env.exists("githooks/pre-push"));
}
