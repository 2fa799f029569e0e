//! `mlv model register|promote|list|show|get`: the model registry in GTO-compatible git tags.
//! (`cli_registry` holds the tests of the data registry, `mlv ls` and `mlv get URL`.)

use crate::common::maint::local_remote;
use crate::common::{b3, Env, Output};

/// A repository with `models/churn.pkl` (content `v1`) tracked and committed.
fn repo() -> Env {
    let env = Env::new();
    commit_model(&env, "v1");
    env
}

/// `mlv model register churn models/churn.pkl --version VERSION`.
pub(crate) fn register_version(env: &Env, version: &str) -> Output {
    env.mlv(&[
        "model",
        "register",
        "churn",
        "models/churn.pkl",
        "--version",
        version,
    ])
}

/// `models/churn.pkl` with `content`, added and committed; the commit's id.
pub(crate) fn commit_model(env: &Env, content: &str) -> String {
    env.write("models/churn.pkl", content);
    env.mlv(&["add", "models/churn.pkl"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", content]);
    env.git(&["rev-parse", "HEAD"]).trim().to_string()
}

fn tags(env: &Env) -> String {
    env.git(&["tag", "-l"])
}

#[test]
fn register_promote_list_show_and_get() {
    let env = repo();
    let r = env
        .mlv(&["model", "register", "churn", "models/churn.pkl", "--json"])
        .ok()
        .json();
    assert_eq!(r["tag"], "churn@v0.0.1");
    assert_eq!(r["digest"], b3(b"v1"));
    commit_model(&env, "v2");
    env.mlv(&[
        "model",
        "register",
        "churn",
        "models/churn.pkl",
        "--bump",
        "minor",
    ])
    .ok()
    .stdout_has("churn@v0.1.0");
    env.mlv(&[
        "model",
        "register",
        "churn",
        "models/churn.pkl",
        "--version",
        "1.0.0",
        "-m",
        "the real one",
    ])
    .ok();
    // the annotated tag holds GTO's form plus mlv's trailers
    let msg = env.git(&["tag", "-l", "--format=%(contents)", "churn@v0.0.1"]);
    assert!(
        msg.starts_with("Registering artifact churn version v0.0.1\n"),
        "{msg}"
    );
    assert!(msg.contains(&format!("mlv-digest: {}", b3(b"v1"))), "{msg}");
    assert!(msg.contains("mlv-path: models/churn.pkl"), "{msg}");
    assert_eq!(env.git(&["cat-file", "-t", "churn@v1.0.0"]).trim(), "tag");

    env.mlv(&["model", "promote", "churn", "0.1.0", "production"])
        .ok()
        .stdout_has("churn#production#1");
    let p = env
        .mlv(&["model", "promote", "churn", "v1.0.0", "production", "--json"])
        .ok()
        .json();
    assert_eq!(
        (p["tag"].as_str(), p["previous"].as_str()),
        (Some("churn#production#2"), Some("v0.1.0"))
    );
    env.mlv(&["model", "promote", "churn", "1.0.0", "production"])
        .refused("is in stage `production` already", None);

    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    let m = &list["models"][0];
    assert_eq!(
        (m["name"].as_str(), m["latest"].as_str()),
        (Some("churn"), Some("v1.0.0"))
    );
    assert_eq!(m["stages"]["production"], "v1.0.0");
    assert_eq!(m["versions"].as_array().unwrap().len(), 3);
    let text = env.mlv(&["model", "list"]).ok();
    assert!(
        text.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["churn", "v1.0.0", "v1.0.0"]),
        "{text}"
    );

    let s = env
        .mlv(&["model", "show", "churn#production", "--json"])
        .ok()
        .json();
    assert_eq!(s["version"]["version"], "v1.0.0");
    assert_eq!(s["version"]["path"], "models/churn.pkl");
    assert_eq!(s["version"]["digest"], b3(b"v2"));
    assert_eq!(s["version"]["size"], 2);
    assert_eq!(s["version"]["registered_by"]["name"], "Test Committer");
    assert_eq!(s["version"]["message"], "the real one");
    assert_eq!(s["stages"][0], "production");
    assert_eq!(s["history"].as_array().unwrap().len(), 2);

    // both spellings of a version; OUT defaults to the file name here
    env.mlv(&["model", "get", "churn@0.0.1", "-o", "old.pkl"]).ok();
    assert_eq!(env.read_str("old.pkl"), "v1");
    env.mlv_in("models", &["model", "get", "churn@v0.0.1"])
        .refused("already exists", Some("--force"));
    env.mlv_in("models", &["model", "get", "churn@v0.0.1", "--force"])
        .ok();
    assert_eq!(env.read_str("models/churn.pkl"), "v1");
    let g = env
        .mlv(&["model", "get", "churn#production", "-o", "prod.pkl", "--json"])
        .ok()
        .json();
    assert_eq!(
        (g["version"].as_str(), g["downloaded"].as_bool()),
        (Some("v1.0.0"), Some(false))
    );
    assert_eq!(env.read_str("prod.pkl"), "v2");
    // into a directory, under the model's file name
    env.mkdir("deploy");
    env.mlv(&["model", "get", "churn", "-o", "deploy"])
        .ok()
        .stdout_has("deploy/churn.pkl");
    assert_eq!(env.read_str("deploy/churn.pkl"), "v2");
}

#[test]
fn registering_the_same_version_twice_is_refused() {
    let env = repo();
    register_version(&env, "1.0.0").ok();
    commit_model(&env, "v2");
    let before = tags(&env);
    register_version(&env, "v1.0.0").refused("churn@v1.0.0 is registered already", Some("--bump"));
    assert_eq!(tags(&env), before);
    // the default after 1.0.0 is 1.0.1
    env.mlv(&["model", "register", "churn", "models/churn.pkl"])
        .ok()
        .stdout_has("churn@v1.0.1");
}

#[test]
fn register_wants_a_pointer_committed_at_head_and_unchanged() {
    let env = repo();
    env.write("models/new.pkl", "n");
    env.mlv(&["model", "register", "new", "models/new.pkl"])
        .refused("not tracked by mlv at HEAD", Some("mlv add"));
    env.mlv(&["add", "models/new.pkl"]).ok();
    env.mlv(&["model", "register", "new", "models/new.pkl"])
        .refused("its pointer file is not committed", Some("commit"));
    env.write("models/churn.pkl", "changed");
    env.mlv(&["add", "models/churn.pkl"]).ok();
    env.mlv(&["model", "register", "churn", "models/churn.pkl"])
        .refused("changes that are not committed", Some("commit"));
    assert_eq!(tags(&env), "");
}

#[test]
fn promoting_a_version_that_does_not_exist_is_refused() {
    let env = repo();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"])
        .refused("no model named `churn` is registered", Some("git fetch --tags"));
    env.mlv(&["model", "register", "churn", "models/churn.pkl"]).ok();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"])
        .refused("churn@v1.0.0 is not registered", Some("mlv model show churn"));
    env.mlv(&["model", "promote", "churn", "one", "prod"])
        .refused("not a version", None);
    env.mlv(&["model", "show", "churn#prod"])
        .refused("no version of churn is in stage `prod`", Some("promote"));
    assert_eq!(tags(&env).trim(), "churn@v0.0.1");
}

#[test]
fn hostile_names_are_refused() {
    let env = repo();
    for name in [
        "Churn",
        "../x",
        "-rf",
        "a//b",
        "a b",
        "x@v1.0.0",
        "a#b",
        "a;rm -rf",
        "é",
        "a.lock",
        "a/",
        "",
        &"a".repeat(101),
    ] {
        env.mlv(&["model", "register", "--", name, "models/churn.pkl"])
            .refused("bad model name", Some("lowercase letters"));
    }
    env.mlv(&["model", "register", "churn", "models/churn.pkl"]).ok();
    for stage in ["Prod", "pr/od", "a b", "x#1", "-x"] {
        env.mlv(&["model", "promote", "--", "churn", "0.0.1", stage])
            .refused("bad stage name", None);
    }
    env.mlv(&["model", "show", "../../etc@1.0.0"])
        .refused("bad model name", None);
    env.mlv(&["model", "get", "churn@1.0.0;ls"])
        .refused("not a version", None);
    assert_eq!(tags(&env).trim(), "churn@v0.0.1");
}

#[test]
fn newest_assignment_wins_across_merged_branches() {
    let env = repo();
    register_version(&env, "1.0.0").ok();
    env.git(&["checkout", "-qb", "exp"]);
    commit_model(&env, "v2");
    register_version(&env, "2.0.0").ok();
    // on exp, 2.0.0 goes to production first; later, on main, 1.0.0 does
    env.mlv_env(
        &[("GIT_COMMITTER_DATE", "2024-02-01T00:00:00Z")],
        &["model", "promote", "churn", "2.0.0", "production"],
    )
    .ok();
    env.git(&["checkout", "-q", "main"]);
    env.mlv_env(
        &[("GIT_COMMITTER_DATE", "2024-03-01T00:00:00Z")],
        &["model", "promote", "churn", "1.0.0", "production"],
    )
    .ok();
    env.git(&["merge", "-q", "--no-edit", "exp"]);
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["stages"]["production"], "v1.0.0");
    // an assignment made by hand with an older date does not win over the newer one
    let c1 = env.git(&["rev-list", "-n1", "churn@v2.0.0"]);
    env.command(
        "git",
        &[
            "tag",
            "-a",
            "churn#production#9",
            "-m",
            "Assigning stage production to artifact churn version v2.0.0",
            c1.trim(),
        ],
    )
    .env("GIT_COMMITTER_DATE", "2024-01-15T00:00:00Z")
    .run()
    .ok();
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["stages"]["production"], "v1.0.0");
    let s = env.mlv(&["model", "show", "churn@2.0.0", "--json"]).ok().json();
    let stages: Vec<&str> = s["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["version"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["v2.0.0", "v2.0.0", "v1.0.0"]);
}

#[test]
fn gto_made_tags_are_read() {
    let env = repo();
    // what GTO writes: artifacts.yaml, then `git tag -a` with its messages
    env.write(
        "artifacts.yaml",
        "churn:\n  type: model\n  path: models/churn.pkl\n",
    );
    env.git(&["add", "artifacts.yaml"]);
    env.git(&["commit", "-qm", "gto annotate"]);
    env.git(&[
        "tag",
        "-a",
        "churn@v1.2.0",
        "-m",
        "Registering artifact churn version v1.2.0",
    ]);
    env.git(&[
        "tag",
        "-a",
        "churn#prod#1",
        "-m",
        "Assigning stage prod to artifact churn version v1.2.0",
    ]);
    env.git(&[
        "tag",
        "-a",
        "other@v0.0.1",
        "-m",
        "Registering artifact other version v0.0.1",
    ]);
    env.git(&["tag", "-a", "release-1", "-m", "not the registry's"]);
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    let models = list["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["stages"]["prod"], "v1.2.0");
    let s = env.mlv(&["model", "show", "churn#prod", "--json"]).ok().json();
    assert_eq!(s["version"]["path"], "models/churn.pkl");
    assert_eq!(s["version"]["digest"], b3(b"v1"));
    env.mlv(&["model", "get", "churn#prod", "-o", "got.pkl"]).ok();
    assert_eq!(env.read_str("got.pkl"), "v1");
    // a GTO artifact that artifacts.yaml does not describe: known, but its path is not
    env.mlv(&["model", "get", "other", "-o", "x"])
        .refused("records no path", Some("artifacts.yaml"));
    // and mlv's tags follow GTO's grammar: the counter goes on per artifact
    env.mlv(&["model", "promote", "churn", "1.2.0", "staging"])
        .ok()
        .stdout_has("churn#staging#2");
}

#[test]
fn a_tag_rewritten_by_hand_is_reported_and_not_trusted() {
    let env = repo();
    let c1 = env.git(&["rev-parse", "HEAD"]).trim().to_string();
    register_version(&env, "1.0.0").ok();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"]).ok();
    let msg = env.git(&["tag", "-l", "--format=%(contents)", "churn@v1.0.0"]);
    commit_model(&env, "v2");
    // moved to the new commit with its old message: the digest no longer matches
    env.git(&["tag", "-f", "-a", "churn@v1.0.0", "-m", msg.trim_end()]);
    let list = env.mlv(&["model", "list"]).ok();
    assert!(
        list.stderr
            .contains("warning: churn@v1.0.0: its message records digest"),
        "{list}"
    );
    env.mlv(&["model", "show", "churn@1.0.0"])
        .fails(3)
        .stderr_has("the tag was moved or its message rewritten");
    env.mlv(&["model", "get", "churn@1.0.0", "-o", "x.pkl"])
        .fails(3)
        .stderr_has("hint: the tag was moved");
    assert!(!env.exists("x.pkl"));
    // put back, then the stage tag moved: it names v1.0.0 but points elsewhere
    env.git(&["tag", "-f", "-a", "churn@v1.0.0", "-m", msg.trim_end(), &c1]);
    env.mlv(&["model", "get", "churn#prod", "-o", "x.pkl"]).ok();
    let pmsg = env.git(&["tag", "-l", "--format=%(contents)", "churn#prod#1"]);
    env.git(&["tag", "-f", "-a", "churn#prod#1", "-m", pmsg.trim_end(), "HEAD"]);
    let list = env.mlv(&["model", "list", "--json"]).ok();
    assert!(
        list.stderr.contains("churn#prod#1: names version v1.0.0"),
        "{list}"
    );
    assert!(list.json()["models"][0]["stages"].as_object().unwrap().is_empty());
    // a lightweight copy under another version's name
    env.git(&["tag", "churn@v3.0.0", "churn@v1.0.0"]);
    env.mlv(&["model", "list"])
        .ok()
        .stderr_has("churn@v3.0.0: the tag object inside is named `churn@v1.0.0`");
    env.mlv(&["model", "show", "churn@3.0.0"])
        .refused("churn@v3.0.0 is not registered", None);
    // a second tag registering the same version (GTO's grammar allows a counter on it)
    env.git(&[
        "tag",
        "-a",
        "churn@v1.0.0#7",
        "-m",
        "Registering artifact churn version v1.0.0",
    ]);
    env.mlv(&["model", "list"])
        .ok()
        .stderr_has("churn@v1.0.0#7: registers v1.0.0 again, ignored");
    env.mlv(&["model", "show", "churn@1.0.0", "--json"]).ok();
}

#[test]
fn a_fresh_clone_reads_the_registry_and_gets_the_bytes_from_the_remote() {
    let env = repo();
    let remote = local_remote();
    remote.configure(&env, "origin");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "remote"]);
    register_version(&env, "1.0.0").ok();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"]).ok();
    env.mlv(&["push"]).ok();
    // without a default remote, the clone says what to do
    let bare = Env::clone_of(&env);
    bare.mlv(&["remote", "remove", "origin"]).ok();
    bare.mlv(&["model", "get", "churn#prod", "-o", "m.pkl"]).refused(
        "is not in the cache and no default remote is configured",
        Some("--default"),
    );
    assert!(!bare.exists("m.pkl"));
    let clone = Env::clone_of(&env);
    let list = clone.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["stages"]["prod"], "v1.0.0");
    let g = clone
        .mlv(&["model", "get", "churn#prod", "-o", "m.pkl", "--json"])
        .ok()
        .json();
    assert_eq!(g["downloaded"], true);
    assert_eq!(clone.read_str("m.pkl"), "v1");
}

#[test]
fn show_names_the_lineage_and_metrics_of_the_version() {
    let env = Env::new();
    env.write("data/train.csv", "rows");
    env.mlv(&["add", "data/train.csv"]).ok();
    env.write("models/churn.pkl", "weights");
    env.mlv(&[
        "lineage",
        "record",
        "-i",
        "data/train.csv",
        "-o",
        "models/churn.pkl",
        "--metric",
        "auc=0.91",
    ])
    .ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "train"]);
    env.mlv(&["model", "register", "churn", "models/churn.pkl"]).ok();
    let s = env.mlv(&["model", "show", "churn", "--json"]).ok().json();
    assert_eq!(s["metrics"]["auc"], 0.91);
    assert_eq!(s["lineage"]["inputs"][0]["input"]["path"], "data/train.csv");
    env.mlv(&["model", "show", "churn"])
        .ok()
        .stdout_has("metrics:    auc=0.91");
}

#[test]
fn unassigning_or_deregistering_the_newest_gives_the_stage_back_as_gto_does() {
    let env = repo();
    register_version(&env, "1.0.0").ok();
    let c2 = commit_model(&env, "v2");
    register_version(&env, "2.0.0").ok();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"]).ok();
    env.mlv(&["model", "promote", "churn", "2.0.0", "prod"]).ok();
    // GTO's unassignment tag (its message, no mlv trailer): v1.0.0's assignment is still on
    env.git(&[
        "tag",
        "-a",
        "churn#prod!#3",
        "-m",
        "Unassigning stage 'prod' to artifact 'churn' version 'v2.0.0'",
        &c2,
    ]);
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["stages"]["prod"], "v1.0.0");
    // a deregistered version holds no stage; a stage tag on its commit is not a problem
    let c1 = env.git(&["rev-list", "-n1", "churn@v1.0.0"]);
    env.git(&[
        "tag",
        "-a",
        "churn@v1.0.0!",
        "-m",
        "Deregistering artifact churn version v1.0.0",
        c1.trim(),
    ]);
    env.git(&[
        "tag",
        "-a",
        "churn#staging#4",
        "-m",
        "Assigning stage staging to artifact churn version v1.0.0",
        c1.trim(),
    ]);
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["stages"], serde_json::json!({}));
    assert_eq!(list["models"][0]["latest"], "v2.0.0");
    assert_eq!(list["models"][0]["problems"], serde_json::json!([]));
}
