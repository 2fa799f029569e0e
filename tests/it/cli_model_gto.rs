//! The model registry against the real GTO (`gto` 1.10.1, the version DVC 3.67.1 uses,
//! installed with DVC 3.67.1 by `.ci/install-dvc.sh`): a registry made by either tool reads the same in the other.
//!
//! GTO dates its tags with the clock (it ignores `GIT_COMMITTER_DATE`), so the order of an mlv
//! tag against a GTO tag is set by dating mlv's tags in the past (the harness's 2024) or in the
//! future (2099); two GTO assignments of one stage are made in different seconds.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::cli_model::{commit_model, register_version};
use crate::common::{Env, Output};
use crate::support;

fn gto_env() -> Option<(Env, PathBuf)> {
    let gto = support::gto()?;
    let env = Env::new();
    // GTO's tagger comes from git's config (it does not read GIT_COMMITTER_NAME)
    env.git(&["config", "user.name", "Test Committer"]);
    env.git(&["config", "user.email", "committer@example.com"]);
    Some((env, gto))
}

/// `gto ARGS` in the work tree (without the harness's ISO `GIT_COMMITTER_DATE`, which GTO's
/// tag writer cannot parse).
fn gto(env: &Env, gto: &Path, args: &[&str]) -> Output {
    env.command(gto.to_str().unwrap(), args)
        .env_remove("GIT_COMMITTER_DATE")
        .env_remove("GIT_AUTHOR_DATE")
        .run()
}

/// Waits for the clock's next second, so that GTO's next tag is dated after its last one.
fn next_second() {
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let start = now();
    while now() == start {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Both tools' view of the registry: `{name: {"latest": v, "stages": {stage: v}}}` for each
/// model that is not deprecated.
fn views(env: &Env, gto_bin: &Path) -> (Value, Value) {
    let g = gto(env, gto_bin, &["show", "--json"]).ok().json();
    let mut from_gto = serde_json::Map::new();
    for (name, a) in g.as_object().unwrap() {
        let stages: serde_json::Map<String, Value> = a["stage"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        from_gto.insert(name.clone(), json!({"latest": a["version"], "stages": stages}));
    }
    let m = env.mlv(&["model", "list", "--json"]).ok().json();
    let mut from_mlv = serde_json::Map::new();
    for model in m["models"].as_array().unwrap() {
        if model["deprecated"] == true {
            continue;
        }
        from_mlv.insert(
            model["name"].as_str().unwrap().to_string(),
            json!({"latest": model["latest"], "stages": model["stages"]}),
        );
    }
    (Value::Object(from_gto), Value::Object(from_mlv))
}

/// Asserts that GTO and mlv agree, and that they agree on `expected`.
fn agree(env: &Env, gto_bin: &Path, expected: Value) {
    let (g, m) = views(env, gto_bin);
    assert_eq!(g, expected, "gto show --json");
    assert_eq!(m, expected, "mlv model list --json");
}

#[test]
fn gto_reads_what_mlv_registers_and_promotes() {
    let Some((env, gto_bin)) = gto_env() else { return };
    // the path GTO shows comes from artifacts.yaml at the tagged commit, written as GTO reads it
    env.write(
        "artifacts.yaml",
        "churn:\n  type: model\n  path: models/churn.pkl\n",
    );
    commit_model(&env, "v1");
    register_version(&env, "1.0.0").ok();
    commit_model(&env, "v2");
    register_version(&env, "2.0.0").ok();
    env.mlv(&["model", "promote", "churn", "1.0.0", "prod"]).ok();
    env.mlv(&["model", "promote", "churn", "2.0.0", "staging"]).ok();
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0", "stages": {"prod": "v1.0.0", "staging": "v2.0.0"}}}),
    );
    let versions = gto(&env, &gto_bin, &["show", "churn", "--json"]).ok().json();
    let seen: Vec<(&str, Vec<&str>)> = versions
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let stages = v["stages"].as_array().unwrap();
            (
                v["version"].as_str().unwrap(),
                stages.iter().map(|s| s["stage"].as_str().unwrap()).collect(),
            )
        })
        .collect();
    assert_eq!(seen, [("v2.0.0", vec!["staging"]), ("v1.0.0", vec!["prod"])]);
    let one = gto(&env, &gto_bin, &["show", "churn@v1.0.0", "--json"])
        .ok()
        .json();
    assert_eq!(
        one[0]["enrichments"][0]["enrichments"][0]["artifact"]["path"],
        "models/churn.pkl"
    );
    // GTO's own readers: which tag means what, and its check finds nothing wrong
    gto(&env, &gto_bin, &["check-ref", "churn#staging#2", "--json"])
        .ok()
        .stdout_has("v2.0.0");
    gto(&env, &gto_bin, &["doctor"]).ok();
}

#[test]
fn mlv_reads_what_gto_registers_assigns_and_deprecates() {
    let Some((env, gto_bin)) = gto_env() else { return };
    env.write(
        "artifacts.yaml",
        "churn:\n  type: model\n  path: models/churn.pkl\n",
    );
    commit_model(&env, "v1");
    // GTO's own message (`-m`) in place of its generated line is read as the version's message
    gto(
        &env,
        &gto_bin,
        &["register", "churn", "--version", "v1.0.0", "-m", "first cut"],
    )
    .ok();
    gto(
        &env,
        &gto_bin,
        &["assign", "churn", "--version", "v1.0.0", "--stage", "prod"],
    )
    .ok();
    let show = env.mlv(&["model", "show", "churn@1.0.0", "--json"]).ok().json();
    assert_eq!(show["version"]["message"], "first cut");
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v1.0.0", "stages": {"prod": "v1.0.0"}}}),
    );
    env.mlv(&["model", "get", "churn#prod", "-o", "got.pkl"]).ok();
    assert_eq!(env.read_str("got.pkl"), "v1");
    let tag = env.git(&["cat-file", "-t", "churn#prod#1"]);
    assert_eq!(tag.trim(), "tag", "GTO's tags are annotated");

    commit_model(&env, "v2");
    gto(&env, &gto_bin, &["register", "churn", "--version", "v2.0.0"]).ok();
    next_second();
    gto(
        &env,
        &gto_bin,
        &["assign", "churn", "--version", "v2.0.0", "--stage", "prod"],
    )
    .ok();
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0", "stages": {"prod": "v2.0.0"}}}),
    );
    env.mlv(&["model", "get", "churn#prod", "-o", "got2.pkl"]).ok();
    assert_eq!(env.read_str("got2.pkl"), "v2");
    let show = env.mlv(&["model", "show", "churn#prod", "--json"]).ok().json();
    assert_eq!(show["version"]["path"], "models/churn.pkl");

    // unassigning the newest gives the stage back to the version assigned before (GTO's rule)
    next_second();
    gto(&env, &gto_bin, &["deprecate", "churn", "v2.0.0", "prod"]).ok();
    assert!(env.git(&["tag", "-l"]).contains("churn#prod!#3"));
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0", "stages": {"prod": "v1.0.0"}}}),
    );
    // a deregistered version holds no stage and is not the latest
    gto(&env, &gto_bin, &["deprecate", "churn", "v2.0.0"]).ok();
    gto(&env, &gto_bin, &["deprecate", "churn", "v1.0.0"]).ok();
    agree(&env, &gto_bin, json!({"churn": {"latest": null, "stages": {}}}));
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["problems"], json!([]));
    // a deprecated model: GTO hides it, mlv marks it
    gto(&env, &gto_bin, &["deprecate", "churn"]).ok();
    assert!(env.git(&["tag", "-l"]).contains("churn@deprecated"));
    agree(&env, &gto_bin, json!({}));
    let list = env.mlv(&["model", "list", "--json"]).ok().json();
    assert_eq!(list["models"][0]["deprecated"], true);
}

#[test]
fn mixed_registries_agree_on_the_newest_assignment_and_the_counter() {
    let Some((env, gto_bin)) = gto_env() else { return };
    env.write(
        "artifacts.yaml",
        "churn:\n  type: model\n  path: models/churn.pkl\n",
    );
    commit_model(&env, "v1");
    register_version(&env, "1.0.0").ok();
    commit_model(&env, "v2");
    // GTO registers on a registry mlv started; mlv promotes it (its tag dated 2024: older)
    gto(&env, &gto_bin, &["register", "churn", "--version", "v2.0.0"]).ok();
    env.mlv(&["model", "promote", "churn", "2.0.0", "prod"])
        .ok()
        .stdout_has("churn#prod#1");
    // GTO assigns a version mlv registered: newer, so it wins, and its counter goes on
    gto(
        &env,
        &gto_bin,
        &["assign", "churn", "--version", "v1.0.0", "--stage", "prod"],
    )
    .ok();
    assert!(env.git(&["tag", "-l"]).contains("churn#prod#2"));
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0", "stages": {"prod": "v1.0.0"}}}),
    );
    // and the reverse: mlv's newer assignment (2099) wins in GTO too
    env.mlv_env(
        &[("GIT_COMMITTER_DATE", "2099-01-01T00:00:00Z")],
        &["model", "promote", "churn", "2.0.0", "prod"],
    )
    .ok()
    .stdout_has("churn#prod#3");
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0", "stages": {"prod": "v2.0.0"}}}),
    );
    // the counter is one per model, whatever the stage, in both tools
    gto(
        &env,
        &gto_bin,
        &["assign", "churn", "--version", "v1.0.0", "--stage", "staging"],
    )
    .ok();
    assert!(env.git(&["tag", "-l"]).contains("churn#staging#4"));
    env.mlv(&["model", "promote", "churn", "1.0.0", "dev"])
        .ok()
        .stdout_has("churn#dev#5");
    agree(
        &env,
        &gto_bin,
        json!({"churn": {"latest": "v2.0.0",
            "stages": {"prod": "v2.0.0", "staging": "v1.0.0", "dev": "v1.0.0"}}}),
    );
    // both histories list the same assignments
    let h = env.mlv(&["model", "show", "churn", "--json"]).ok().json();
    let mut tags: Vec<&str> = h["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["tag"].as_str().unwrap())
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            "churn#dev#5",
            "churn#prod#1",
            "churn#prod#2",
            "churn#prod#3",
            "churn#staging#4"
        ]
    );
}
