//! `push`, `fetch` and `status --remote` over history: `-a` (branch tips), `-T` (tags), `-A`
//! (every commit) and `--rev REV`, beside the workspace's pointers.

use std::time::{Duration, Instant};

use crate::common::maint::{local_remote, TestRemote};
use crate::common::{b3, Env};

/// A repository with a local remote (committed as the default) and `data.csv` committed at
/// each of `versions`, in order; returns the commits' full ids.
fn versions(versions: &[&str]) -> (Env, TestRemote, Vec<String>) {
    let env = Env::new();
    let remote = local_remote();
    remote.configure(&env, "origin");
    let mut commits = Vec::new();
    for v in versions {
        env.write("data.csv", v.as_bytes());
        env.mlv(&["add", "data.csv"]).ok();
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", v]);
        commits.push(env.git(&["rev-parse", "HEAD"]).trim().to_string());
    }
    (env, remote, commits)
}

/// Whether the remote holds the object whose content is `bytes`.
fn on_remote(remote: &TestRemote, bytes: &str) -> bool {
    remote.objects().contains(&b3(bytes.as_bytes()))
}

#[test]
fn push_alone_leaves_history_behind_and_push_all_commits_brings_it() {
    let (env, remote, commits) = versions(&["v1", "v2"]);
    env.mlv(&["push"]).ok();
    assert!(on_remote(&remote, "v2") && !on_remote(&remote, "v1"));
    // a teammate checking out the older commit cannot get its data
    let clone = Env::clone_of(&env);
    clone.git(&["checkout", "-q", &commits[0]]);
    clone
        .mlv(&["pull"])
        .refused("lacks 1 object(s) needed by: data.csv", None);
    let push = env.mlv(&["push", "-A", "--json"]).ok();
    let j = push.json();
    assert_eq!(
        (j["uploaded"].as_u64(), j["objects"].as_u64()),
        (Some(1), Some(2)),
        "{push}"
    );
    assert_eq!(j["commits"].as_array().unwrap().len(), 2, "{push}");
    assert!(on_remote(&remote, "v1"));
    clone.mlv(&["pull"]).ok();
    assert_eq!(clone.read_str("data.csv"), "v1");
    // a second push uploads nothing
    let again = env.mlv(&["push", "--all-commits", "--json"]).ok().json();
    assert_eq!(again["uploaded"], 0, "{again}");
    // without history options, the report is today's
    let plain = env.mlv(&["push", "--json"]).ok().json();
    assert!(plain.get("commits").is_none(), "{plain}");
}

#[test]
fn all_tags_pushes_a_tags_data_but_not_an_untagged_commits() {
    let (env, remote, _) = versions(&["v1", "v2", "v3"]);
    env.git(&["tag", "release", "HEAD~2"]);
    env.mlv(&["push", "-T"]).ok();
    assert!(on_remote(&remote, "v1"), "the tag's");
    assert!(!on_remote(&remote, "v2"), "an untagged commit's");
    assert!(on_remote(&remote, "v3"), "the workspace's");
}

#[test]
fn rev_pushes_the_commits_named() {
    let (env, remote, _) = versions(&["v1", "v2", "v3"]);
    env.mlv(&["push", "--rev", "HEAD~1"]).ok();
    assert!(!on_remote(&remote, "v1") && on_remote(&remote, "v2") && on_remote(&remote, "v3"));
    // repeatable, by sha too
    let first = env.git(&["rev-parse", "HEAD~2"]);
    env.mlv(&["push", "--rev", first.trim(), "--rev", "main"]).ok();
    assert!(on_remote(&remote, "v1"));
}

#[test]
fn fetch_all_branches_brings_another_branchs_objects_into_the_cache() {
    let (env, remote, _) = versions(&["v1"]);
    env.git(&["checkout", "-qb", "feature"]);
    env.write("data.csv", b"feature data");
    env.write("model.bin", b"feature model");
    env.mlv(&["add", "data.csv", "model.bin"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "feature"]);
    env.git(&["checkout", "-q", "main"]);
    env.mlv(&["checkout"]).ok();
    env.mlv(&["push", "-a"]).ok();
    assert!(on_remote(&remote, "feature model"));

    let clone = Env::clone_of(&env);
    // without -a only main's data comes
    clone.mlv(&["fetch"]).ok();
    assert!(!clone.object_path(b"feature model").exists());
    let fetch = clone.mlv(&["fetch", "-a", "--json"]).ok();
    assert_eq!(fetch.json()["downloaded"], 2, "{fetch}");
    // the remote is gone: the branch's data comes from the cache
    std::fs::remove_dir_all(remote.dir.as_ref().unwrap()).unwrap();
    clone.git(&["checkout", "-q", "feature"]);
    clone.mlv(&["checkout"]).ok();
    assert_eq!(clone.read_str("model.bin"), "feature model");
    assert_eq!(clone.read_str("data.csv"), "feature data");
}

#[test]
fn fetch_of_history_names_the_commit_of_what_the_remote_lacks() {
    let (env, _remote, commits) = versions(&["v1", "v2"]);
    env.mlv(&["push"]).ok();
    let clone = Env::clone_of(&env);
    let short = &commits[0][..7];
    clone
        .mlv(&["fetch", "-A"])
        .refused(&format!("needed by: data.csv (at {short})"), None);
}

#[test]
fn status_remote_all_commits_counts_historys_objects() {
    let (env, _remote, commits) = versions(&["v1", "v2"]);
    env.mlv(&["push"]).ok();
    let now = env.mlv(&["status", "--remote", "--json"]).ok().json();
    assert_eq!(now["in_sync"], true, "{now}");
    assert!(now.get("commits").is_none(), "{now}");
    let st = env.mlv(&["status", "--remote", "-A", "--json"]).ok();
    let j = st.json();
    assert_eq!(j["in_sync"], false, "{st}");
    let short = &commits[0][..7];
    assert_eq!(
        j["not_pushed"][0]["path"],
        format!("data.csv (at {short})"),
        "{st}"
    );
    assert_eq!(j["not_pushed"][0]["missing"], 1, "{st}");
    assert_eq!(j["not_pushed"].as_array().unwrap().len(), 1, "{st}");
    let included: Vec<&str> = j["commits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(included, [commits[1].as_str(), commits[0].as_str()], "{st}");
    let text = env
        .mlv(&["status", "-r", "--all-commits", "--exit-code"])
        .fails(1);
    assert!(
        text.stdout
            .contains(&format!("data.csv (at {short}): 1 object not on")),
        "{text}"
    );
    env.mlv(&["push", "-A"]).ok();
    env.mlv(&["status", "-r", "-A", "--exit-code"]).ok();
}

#[test]
fn paths_restrict_history_to_them() {
    let (env, remote, _) = versions(&["v1"]);
    env.write("other.bin", b"other one");
    env.mlv(&["add", "other.bin"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "other"]);
    env.write("data.csv", b"v2");
    env.write("other.bin", b"other two");
    env.mlv(&["add", "data.csv", "other.bin"]).ok();
    env.git(&["commit", "-qam", "both"]);
    env.mlv(&["push", "-A", "data.csv"]).ok();
    assert!(on_remote(&remote, "v1") && on_remote(&remote, "v2"));
    assert!(!on_remote(&remote, "other one") && !on_remote(&remote, "other two"));
    // a path tracked only in history is accepted; one tracked nowhere is refused
    std::fs::remove_file(env.path("other.bin.mlv")).unwrap();
    env.mlv(&["push", "-A", "other.bin"]).ok();
    assert!(on_remote(&remote, "other one") && on_remote(&remote, "other two"));
    env.mlv(&["push", "-A", "nowhere.txt"])
        .refused("nowhere.txt", None);
}

#[test]
fn a_bad_rev_is_refused_naming_it() {
    let (env, remote, _) = versions(&["v1", "v2"]);
    env.mlv(&["push"]).ok();
    let before = remote.objects();
    for cmd in [&["push"][..], &["fetch"], &["status", "--remote"]] {
        let mut args = cmd.to_vec();
        args.extend(["--rev", "no-such-rev"]);
        env.mlv(&args).refused(
            "no-such-rev: unknown git revision",
            Some("give a commit, branch or tag that `git log` knows"),
        );
    }
    assert_eq!(remote.objects(), before, "nothing was pushed");
    // history options of status need --remote; pull takes none
    env.mlv(&["status", "-A"]).fails(2);
    env.mlv(&["pull", "-A"]).fails(2);
}

#[test]
fn a_history_push_accepts_old_versions_the_cache_lacks_but_the_remote_has() {
    let (env, _remote, _) = versions(&["v1", "v2"]);
    env.mlv(&["push", "-A"]).ok();
    // a fresh clone has only the workspace's version in its cache
    let clone = Env::clone_of(&env);
    clone.mlv(&["pull"]).ok();
    clone.write("data.csv", b"v3");
    clone.mlv(&["add", "data.csv"]).ok();
    clone.git(&["commit", "-qam", "v3"]);
    let push = clone.mlv(&["push", "-A", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 1, "{push}");
    // what neither holds stops the push, naming the commit
    let lost = Env::clone_of(&env);
    lost.write("data.csv", b"v4");
    lost.mlv(&["add", "data.csv"]).ok();
    lost.git(&["commit", "-qam", "v4"]);
    lost.write("data.csv", b"v5");
    lost.mlv(&["add", "data.csv"]).ok();
    std::fs::remove_dir_all(lost.path(".mlv/cache")).unwrap();
    let short = &lost.git(&["rev-parse", "HEAD"])[..7];
    lost.mlv(&["push", "-A"]).refused(
        &format!("2 path(s) have objects missing from the cache, so they cannot be pushed: data.csv, data.csv (at {short})"),
        Some("mlv fetch"),
    );
}

#[test]
fn a_manifest_shared_by_a_hundred_commits_is_planned_once() {
    let (env, remote, _) = versions(&["v1"]);
    for i in 0..200 {
        env.write(&format!("data/f{i:03}"), format!("file {i}"));
    }
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    // 100 commits that change only a small file git tracks: 100 trees, one manifest
    for i in 0..100 {
        env.write("notes.txt", format!("note {i}"));
        env.git(&["add", "notes.txt"]);
        env.git(&["commit", "-qm", &format!("note {i}")]);
    }
    let start = Instant::now();
    let push = env.mlv(&["push", "-A", "--json"]).ok();
    let j = push.json();
    // v1, the manifest and its 200 files: each once
    assert_eq!(j["objects"], 202, "{push}");
    assert_eq!(j["uploaded"], 202, "{push}");
    assert_eq!(j["commits"].as_array().unwrap().len(), 102, "{push}");
    let st = env.mlv(&["status", "--remote", "-A", "--json"]).ok().json();
    assert_eq!(st["in_sync"], true, "{st}");
    assert!(start.elapsed() < Duration::from_secs(60), "{:?}", start.elapsed());
    assert_eq!(remote.objects().len(), 202);
}

#[test]
fn nested_pointers_are_found_in_every_commit_that_changes_them() {
    let env = Env::new();
    let remote = local_remote();
    remote.configure(&env, "origin");
    let commit = |files: &[(&str, &str)]| {
        for (path, text) in files {
            env.write(path, text.as_bytes());
            env.mlv(&["add", path]).ok();
        }
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", "c"]);
    };
    commit(&[("a/deep/x.bin", "x1"), ("b/y.bin", "y1")]);
    commit(&[("a/deep/x.bin", "x2")]); // b/ unchanged: its tree is not walked again
    commit(&[("b/y.bin", "y2")]); // a/ unchanged
    commit(&[("a/deep/x.bin", "x1")]); // back to a version seen before
    let push = env.mlv(&["push", "-A", "--json"]).ok();
    assert_eq!(push.json()["objects"], 4, "{push}");
    for v in ["x1", "x2", "y1", "y2"] {
        assert!(on_remote(&remote, v), "{v}\n{push}");
    }
}
