//! `mlv gc`: what is kept (workspace, branch and tag tips, all commits, recent objects) and
//! what is removed.

use std::collections::BTreeSet;

use crate::common::maint::{digest_of, local_remote, s3_remote, TestRemote};
use crate::common::{b3, Env};

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

/// `mlv gc --json ARGS`, with `--force` unless it is a dry run.
fn gc(env: &Env, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    if !args.contains(&"--dry-run") && !args.contains(&"-n") {
        all.push("--force");
    }
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

/// The objects a `gc --json` report lists for the cache (or the remote), as digests.
fn listed(json: &serde_json::Value, place: &str) -> BTreeSet<String> {
    json[place]["objects"]
        .as_array()
        .unwrap_or_else(|| panic!("no {place}.objects in {json}"))
        .iter()
        .map(|o| o["digest"].as_str().unwrap().to_string())
        .collect()
}

fn set(items: &[&[u8]]) -> BTreeSet<String> {
    items.iter().map(|c| b3(c)).collect()
}

#[test]
fn without_force_gc_only_lists_what_would_go_and_the_bytes_freed() {
    let env = two_versions();
    let before = env.objects();
    let out = env.mlv(&["gc", "--workspace", "--grace", "0"]).ok();
    assert_eq!(env.objects(), before, "nothing removed without --force");
    // v1's file and v1's manifest, one line each on stdout: digest, size, where
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&b3(b"version one")) && l.ends_with("cache")),
        "{out}"
    );
    assert!(out.stderr.contains("would remove 2 objects"), "{out}");
    assert!(out.stderr.contains("--force"), "{out}");
    let json = env
        .mlv(&["gc", "-n", "--workspace", "--grace", "0", "--json"])
        .ok()
        .json();
    let objects = json["cache"]["objects"].as_array().unwrap();
    assert_eq!(objects.len(), 2, "{json}");
    let size_of_v1 = objects
        .iter()
        .find(|o| o["digest"] == b3(b"version one"))
        .unwrap()["size"]
        .as_u64();
    assert_eq!(size_of_v1, Some(b"version one".len() as u64));
    let total: u64 = objects.iter().map(|o| o["size"].as_u64().unwrap()).sum();
    assert_eq!(json["removed_bytes"].as_u64(), Some(total));
    env.mlv(&["gc", "-n", "--force"]).fails(2);
}

/// History for the scope tests, one tracked file `m`:
/// `one` (tagged `t1`) -> `mid` -> `three` on main (HEAD, workspace), and branch `feature`
/// from `one` with `two`. So `one` is only tagged, `two` only a branch tip, `mid` only history.
fn history() -> Env {
    let env = Env::new();
    let commit = |content: &[u8], msg: &str| {
        env.write("m", content);
        env.mlv(&["add", "m"]).ok();
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", msg]);
    };
    commit(b"one", "one");
    env.git(&["tag", "t1"]);
    env.git(&["checkout", "-qb", "feature"]);
    commit(b"two", "two");
    env.git(&["checkout", "-q", "main"]);
    commit(b"mid", "mid");
    commit(b"three", "three");
    env.mlv(&["checkout", "--force"]).ok();
    env
}

#[test]
fn branches_tags_and_commits_scopes_follow_git_history() {
    let env = history();
    let all: &[&[u8]] = &[b"one", b"two", b"mid", b"three"];
    assert_eq!(env.objects().len(), 4);
    let gone = |args: &[&str]| {
        let mut a = vec!["--dry-run", "--grace", "0"];
        a.extend_from_slice(args);
        listed(&gc(&env, &a), "cache")
    };
    assert_eq!(gone(&["--workspace"]), set(&[b"one", b"two", b"mid"]));
    // default: workspace, HEAD, branch tips, tags
    assert_eq!(gone(&[]), set(&[b"mid"]));
    assert_eq!(gone(&["-a", "-T"]), set(&[b"mid"]));
    assert_eq!(gone(&["--all-tags"]), set(&[b"two", b"mid"]));
    assert_eq!(gone(&["--all-branches"]), set(&[b"one", b"mid"]));
    assert_eq!(gone(&["-A"]), set(&[]));
    assert_eq!(gone(&["--all-branches", "--all-commits"]), set(&[]));
    // for real: --all-tags drops the branch-only and history-only versions
    let json = gc(&env, &["--all-tags", "--grace", "0"]);
    assert_eq!(listed(&json, "cache"), set(&[b"two", b"mid"]));
    let left: BTreeSet<String> = env.objects().iter().map(|o| o[3..].to_string()).collect();
    assert_eq!(left, set(&[b"one", b"three"]));
    assert_eq!(all.len(), 4);
    env.mlv(&["gc", "--workspace", "--all-tags"]).fails(2);
}

#[test]
fn the_grace_period_comes_from_the_config_and_the_flag_overrides_it() {
    let env = two_versions();
    let config = env.read_str(".mlv/config.toml");
    std::fs::write(
        env.path(".mlv/config.toml"),
        format!("{config}\n[gc]\ngrace = \"2h\"\n"),
    )
    .unwrap();
    let json = gc(&env, &["--workspace"]);
    assert_eq!(json["cache"]["grace_seconds"], 7200, "{json}");
    assert_eq!(
        (json["removed"].as_u64(), json["kept_recent"].as_u64()),
        (Some(0), Some(2))
    );
    let json = gc(&env, &["--workspace", "--grace", "0m"]);
    assert_eq!(json["removed"], 2, "{json}");
    std::fs::write(
        env.path(".mlv/config.toml"),
        format!("{config}\n[gc]\ngrace = 15\n"),
    )
    .unwrap();
    assert_eq!(gc(&env, &["--dry-run"])["cache"]["grace_seconds"], 900);
    std::fs::write(
        env.path(".mlv/config.toml"),
        format!("{config}\n[gc]\ngrace = \"soon\"\n"),
    )
    .unwrap();
    env.mlv(&["gc"]).refused("soon", None);
    env.mlv(&["gc", "--grace", "2w"]).fails(2);
}

#[test]
fn the_default_grace_period_is_four_hours() {
    let env = two_versions();
    let json = gc(&env, &["--dry-run", "--workspace"]);
    assert_eq!(json["cache"]["grace_seconds"], 4 * 3600, "{json}");
}

/// v1 and v2 of `data/` pushed, only v2 committed: `gc --remote` removes v1's manifest and
/// changed file from the remote, keeps v2's (even with an empty cache, reading v2's manifest
/// from the remote) and keeps everything within the grace period.
fn remote_gc(r: TestRemote) {
    let env = Env::new();
    r.configure(&env, "origin");
    env.write("data/keep", b"same in both");
    env.write("data/v", b"version one");
    env.mlv(&["add", "data"]).ok();
    r.mlv(&env, &["push"]).ok();
    env.write("data/v", b"version two");
    env.mlv(&["add", "data"]).ok();
    r.mlv(&env, &["push"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v2"]);
    let v2_manifest = digest_of(&env, "data.mlv");
    assert_eq!(r.objects().len(), 5);

    // everything is recent: nothing goes
    let json = r.mlv(&env, &["gc", "--json", "--remote", "--force"]).ok().json();
    assert_eq!(json["remote"]["removed"], 0, "{json}");
    assert_eq!(json["remote"]["kept_recent"], 2, "{json}");
    assert_eq!(r.objects().len(), 5);

    // dry run lists v1's two objects on the remote
    let json = r.mlv(&env, &["gc", "--json", "-r", "--grace", "0"]).ok().json();
    assert_eq!(json["remote"]["removed"], 2, "{json}");
    assert!(listed(&json, "remote").contains(&b3(b"version one")), "{json}");
    assert_eq!(r.objects().len(), 5, "a dry run deletes nothing");

    // with an empty cache, v2's manifest is read from the remote and its files are kept
    std::fs::remove_dir_all(env.path(".mlv/cache")).unwrap();
    let json = r
        .mlv(
            &env,
            &["gc", "--json", "--remote", "origin", "--grace", "0", "-f"],
        )
        .ok()
        .json();
    assert_eq!(json["remote"]["removed"], 2, "{json}");
    assert_eq!(json["remote"]["unreadable_manifests"], 0, "{json}");
    let left: BTreeSet<String> = r.objects().into_iter().collect();
    let mut want = set(&[b"same in both", b"version two"]);
    want.insert(v2_manifest);
    assert_eq!(left, want);

    // a clone still pulls v2 completely
    let dst = Env::clone_of(&env);
    r.mlv(&dst, &["pull"]).ok();
    assert_eq!(dst.read("data/v"), b"version two");
    assert_eq!(dst.read("data/keep"), b"same in both");
}

#[test]
fn remote_gc_on_a_local_remote() {
    remote_gc(local_remote());
}

#[test]
fn remote_gc_on_s3() {
    if let Some(r) = s3_remote() {
        remote_gc(r);
    }
}

#[test]
fn remote_gc_respects_the_grace_period_by_last_modified_time() {
    let r = local_remote();
    let env = two_versions();
    r.configure(&env, "origin");
    r.mlv(&env, &["push"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v2"]);
    // v1's objects on the remote: push v1's content, then make one of them old
    env.write("data/v", b"version one");
    env.mlv(&["add", "data"]).ok();
    r.mlv(&env, &["push"]).ok();
    env.git(&["checkout", "--", "data.mlv"]);
    env.mlv(&["checkout", "--force"]).ok();
    let old = r
        .dir
        .as_ref()
        .unwrap()
        .join(&b3(b"version one")[..2])
        .join(b3(b"version one"));
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 3600);
    std::fs::File::open(&old).unwrap().set_modified(when).unwrap();
    let json = r
        .mlv(&env, &["gc", "--json", "--remote", "--grace", "2h", "-f"])
        .ok()
        .json();
    // only the backdated object is older than two hours
    assert_eq!(listed(&json, "remote"), set(&[b"version one"]), "{json}");
    assert_eq!(json["remote"]["kept_recent"], 1, "{json}");
    assert!(!old.exists());
}

/// Issue 12: a branch that exists in a fresh clone only as `origin/feature` keeps its data on
/// the shared remote (default scope and -a); a scope that would ignore it is refused for a
/// remote, and the dry run says what keeps it.
#[test]
fn remote_tracking_branches_keep_their_data() {
    let r = local_remote();
    let env = Env::new();
    r.configure(&env, "origin");
    env.write("m", b"on main");
    env.mlv(&["add", "m"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "main"]);
    env.git(&["checkout", "-qb", "feature"]);
    env.write("m", b"on feature");
    env.mlv(&["add", "m"]).ok();
    env.git(&["commit", "-qam", "feature"]);
    r.mlv(&env, &["push"]).ok();
    env.git(&["checkout", "-q", "main"]);
    env.mlv(&["checkout", "--force"]).ok();
    r.mlv(&env, &["push"]).ok();
    assert_eq!(r.objects().len(), 2);

    let clone = Env::clone_of(&env);
    assert!(clone.git(&["branch", "-a"]).contains("remotes/origin/feature"));
    r.mlv(&clone, &["pull"]).ok();
    let feature = b3(b"on feature");
    for args in [&["--dry-run"][..], &["-a", "--dry-run"], &["-A", "--dry-run"]] {
        let mut all = vec!["gc", "--json", "--remote", "--grace", "0"];
        all.extend_from_slice(args);
        let json = r.mlv(&clone, &all).ok().json();
        assert_eq!(json["remote"]["removed"], 0, "{args:?} {json}");
    }
    // the dry run names what keeps it
    let out = r.mlv(&clone, &["gc", "--remote", "--grace", "0"]).ok();
    assert!(
        out.stderr
            .contains("kept because of refs/remotes/origin/feature: 1 object"),
        "{out}"
    );
    let json = r.mlv(&clone, &["gc", "--json", "-r", "--grace", "0"]).ok().json();
    let kept_by = json["remote"]["kept_by"].as_array().unwrap();
    assert!(
        kept_by
            .iter()
            .any(|k| k["source"] == "refs/remotes/origin/feature" && k["objects"] == 1),
        "{json}"
    );
    // scopes that leave remote-tracking branches out are refused on a remote, nothing deleted
    for scope in ["-w", "-T"] {
        r.mlv(&clone, &["gc", scope, "--remote", "--grace", "0", "-f"])
            .refused("refs/remotes/origin/feature", Some("--all-branches"));
    }
    r.mlv(&clone, &["gc", "--remote", "--grace", "0", "-f"]).ok();
    r.mlv(&clone, &["gc", "-a", "--remote", "--grace", "0", "-f"])
        .ok();
    assert!(r.objects().contains(&feature), "the teammate's data is kept");
    // the cache too: -a keeps origin/feature's object once fetched
    clone.git(&["checkout", "-q", "feature"]);
    r.mlv(&clone, &["pull"]).ok();
    clone.git(&["checkout", "-q", "main"]);
    clone.git(&["branch", "-qD", "feature"]);
    clone.mlv(&["checkout", "--force"]).ok();
    let json = gc(&clone, &["-a", "--grace", "0"]);
    assert_eq!(json["removed"], 0, "{json}");
    assert!(clone.object_path(b"on feature").exists());
}

/// Issue 12: every stash entry (not only the top) keeps its data in the default scope and with
/// -a/-T/-A; only --workspace ignores it (and is refused on a remote).
#[test]
fn stash_entries_keep_their_data() {
    let r = local_remote();
    let env = Env::new();
    r.configure(&env, "origin");
    env.write("m", b"committed");
    env.mlv(&["add", "m"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "one"]);
    for content in [&b"stashed first"[..], b"stashed second"] {
        env.write("m", content);
        env.mlv(&["add", "m"]).ok();
        r.mlv(&env, &["push"]).ok();
        env.git(&["stash", "-q"]);
    }
    env.mlv(&["checkout", "--force"]).ok();
    assert_eq!(env.git(&["stash", "list"]).lines().count(), 2);
    let stashed = set(&[b"stashed first", b"stashed second"]);
    for scope in [&[][..], &["-a"], &["-T"], &["-A"]] {
        let mut args = vec!["--grace", "0", "--dry-run"];
        args.extend_from_slice(scope);
        let json = gc(&env, &args);
        assert_eq!(json["removed"], 0, "{scope:?} {json}");
    }
    let json = gc(&env, &["--grace", "0", "--dry-run"]);
    let by: Vec<String> = json["cache"]["kept_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["source"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(by, ["stash@{0}", "stash@{1}"], "{json}");
    let out = env.mlv(&["gc", "--grace", "0"]).ok();
    assert!(
        out.stderr.contains("kept because of stash@{1}: 1 object"),
        "{out}"
    );
    r.mlv(&env, &["gc", "-w", "-r", "--grace", "0", "-f"])
        .refused("stash@{0} (and 1 more)", None);
    gc(&env, &["--grace", "0"]);
    r.mlv(&env, &["gc", "-r", "--grace", "0", "-f"]).ok();
    for d in &stashed {
        assert!(r.objects().contains(d));
        assert!(env.path(&format!(".mlv/cache/{}/{d}", &d[..2])).exists());
    }
    // --workspace on the cache alone is the user's explicit choice
    assert_eq!(listed(&gc(&env, &["-w", "--grace", "0"]), "cache"), stashed);
}

/// Issue 12: another worktree's HEAD (a detached commit only it has) and its uncommitted
/// pointers keep their data on the shared remote.
#[test]
fn other_worktrees_keep_their_data() {
    let r = local_remote();
    let env = Env::new();
    r.configure(&env, "origin");
    env.write("m", b"main");
    env.mlv(&["add", "m"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "one"]);
    let wt_dir = env.base.join("wt");
    env.git(&["worktree", "add", "-q", "--detach", wt_dir.to_str().unwrap()]);
    let run = |args: &[&str]| r.mlv(&env, args);
    let in_wt = |args: &[&str]| {
        let mut c = env.command(crate::common::MLV, args).cwd(&wt_dir);
        for (k, v) in crate::common::maint::metadata_env() {
            c = c.env(&k, &v);
        }
        c.run()
    };
    std::fs::write(wt_dir.join("m"), b"detached").unwrap();
    in_wt(&["add", "m"]).ok();
    in_wt(&["push"]).ok();
    env.command("git", &["commit", "-qam", "detached"])
        .cwd(&wt_dir)
        .run()
        .ok();
    std::fs::write(wt_dir.join("n"), b"uncommitted").unwrap();
    in_wt(&["add", "n"]).ok();
    in_wt(&["push"]).ok();
    run(&["gc", "-r", "--grace", "0", "-f"]).ok();
    let left = r.objects();
    assert!(left.contains(&b3(b"detached")), "{left:?}");
    assert!(left.contains(&b3(b"uncommitted")), "{left:?}");
    let json = run(&["gc", "--json", "-r", "--grace", "0"]).ok().json();
    let by: BTreeSet<String> = json["remote"]["kept_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["source"].as_str().unwrap().to_string())
        .collect();
    let shown = wt_dir.display();
    assert_eq!(
        by,
        [
            format!("HEAD of worktree {shown}"),
            format!("workspace of worktree {shown}")
        ]
        .into_iter()
        .collect(),
        "{json}"
    );
    run(&["gc", "-w", "-r", "--grace", "0", "-f"]).refused("the worktree", None);
}

/// Issue 12: a kept directory whose manifest is missing from the cache makes gc refuse
/// (naming the manifest and the directory) instead of collecting its files; with --remote, a
/// manifest missing from both the cache and the remote does too, and nothing is deleted.
#[test]
fn an_unreadable_kept_manifest_is_refused_not_collected() {
    let r = local_remote();
    let env = two_versions();
    r.configure(&env, "origin");
    r.mlv(&env, &["push"]).ok();
    let manifest = digest_of(&env, "data.mlv");
    std::fs::remove_file(env.path(&format!(".mlv/cache/{}/{manifest}", &manifest[..2]))).unwrap();
    let before = env.objects();
    for args in [&["-f"][..], &[]] {
        let mut all = vec!["gc", "--grace", "0"];
        all.extend_from_slice(args);
        let out = env.mlv(&all).refused(&manifest, Some("mlv fetch data"));
        assert!(out.stderr.contains("data (kept by the workspace)"), "{out}");
    }
    assert_eq!(env.objects(), before, "nothing removed");
    // the remote has it: gc --remote reads it there and keeps the files in both stores
    r.mlv(&env, &["gc", "-r", "--grace", "0", "-f"]).ok();
    assert!(env.object_path(b"version two").exists());
    assert!(r.objects().contains(&b3(b"version two")));
    // gone from the remote too: refused before anything is deleted there
    r.tamper(&manifest, None);
    let remote_before = r.objects();
    let out = r
        .mlv(&env, &["gc", "-r", "--grace", "0", "-f"])
        .refused(&manifest, Some("mlv fetch data"));
    assert!(out.stderr.contains("is missing from"), "{out}");
    assert_eq!(r.objects(), remote_before);
    assert!(env.object_path(b"version two").exists());
}

/// Makes a file look `hours` old.
fn age(path: &std::path::Path, hours: u64) {
    let when = std::time::SystemTime::now() - std::time::Duration::from_secs(hours * 3600);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

/// Issue 12: with `cache.dir` elsewhere, gc removes from `<cache dir>/tmp` only the temporary
/// files mlv created (listed by the dry run), never other files there; a cache directory that
/// is the work tree or holds other files is refused, deleting nothing.
#[test]
fn gc_removes_only_its_own_temporary_files_and_refuses_a_foreign_cache_dir() {
    let env = two_versions();
    let cache = env.base.join("shared-cache");
    let cache_str = cache.to_str().unwrap();
    let with_cache = |args: &[&str]| env.mlv_env(&[("MLV_CACHE_DIR", cache_str)], args);
    with_cache(&["add", "data"]).ok();
    let tmp = cache.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let foreign = tmp.join("report.txt");
    std::fs::write(&foreign, b"not mlv's").unwrap();
    let ours = tmp.join(".mlv-tmp-Ab12Cd");
    std::fs::write(&ours, b"left by a crash").unwrap();
    let scratch = env.path(".mlv/tmp/.mlv-tmp-Xy98Zw");
    std::fs::write(&scratch, b"").unwrap();
    for f in [&foreign, &ours, &scratch] {
        age(f, 10);
    }
    let out = with_cache(&["gc"]).ok();
    let listed_temp: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.ends_with("temporary file"))
        .collect();
    assert_eq!(listed_temp.len(), 2, "{out}");
    assert!(out.stdout.contains(ours.to_str().unwrap()), "{out}");
    assert!(!out.stdout.contains("report.txt"), "{out}");
    assert!(out.stderr.contains("and 2 temporary files"), "{out}");
    let json = with_cache(&["gc", "--json", "-f"]).ok().json();
    assert_eq!(json["cache"]["temp_files"], 2, "{json}");
    assert!(!ours.exists() && !scratch.exists());
    assert!(foreign.exists(), "a file mlv did not create is kept");

    // `.mlv/tmp` replaced by a link to another directory: refused, nothing there removed
    let elsewhere = env.base.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::write(elsewhere.join(".mlv-tmp-Qq11Ww"), b"someone's").unwrap();
    age(&elsewhere.join(".mlv-tmp-Qq11Ww"), 10);
    std::fs::remove_dir_all(env.path(".mlv/tmp")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, env.path(".mlv/tmp")).unwrap();
    with_cache(&["gc", "-f", "--grace", "0"]).refused(".mlv/tmp", None);
    env.mlv(&["add", "data"]).ok();
    assert!(elsewhere.join(".mlv-tmp-Qq11Ww").exists());
    std::fs::remove_file(env.path(".mlv/tmp")).unwrap();

    // a cache directory holding other files, or the work tree itself, is refused
    std::fs::write(cache.join("notes.txt"), b"mine").unwrap();
    age(&cache.join("notes.txt"), 10);
    with_cache(&["gc", "-f", "--grace", "0"]).refused("notes.txt", Some("cache.dir"));
    env.write("tmp/tracked.txt", b"source");
    env.git(&["add", "tmp/tracked.txt"]);
    age(&env.path("tmp/tracked.txt"), 10);
    std::fs::write(
        env.path(".mlv/config.toml"),
        env.read_str(".mlv/config.toml")
            .replace("[cache]", "[cache]\ndir = \".\""),
    )
    .unwrap();
    for args in [
        &["gc"][..],
        &["gc", "-f", "--grace", "0"],
        &["add", "data"],
        &["status"],
    ] {
        env.mlv(args).refused("is the work tree", Some("cache.dir"));
    }
    assert_eq!(env.read("tmp/tracked.txt"), b"source");
    assert!(cache.join("notes.txt").exists());
}
