//! `-p FILE:KEY,KEY`, `mlv metrics show/diff` and `mlv params diff`: the metrics and params
//! files that runs recorded, read from git at revisions and from the workspace.

use crate::common::lineage::Repo;
use serde_json::{json, Value};

/// A run writing metrics.json (auc, eval.loss) from params.yaml, choosing the `train` section
/// and `seed` (not `name`).
fn train(r: &Repo, auc: &str) {
    let cmd = format!(
        "cp params.yaml model.txt && printf '{{\"auc\": {auc}, \"eval\": {{\"loss\": 1.5}}}}' > metrics.json"
    );
    r.ok(&[
        "run",
        "-p",
        "params.yaml:train,seed",
        "-o",
        "model.txt",
        "-m",
        "metrics.json",
        "--",
        "sh",
        "-c",
        &cmd,
    ]);
}

fn last_record(r: &Repo) -> Value {
    serde_json::from_str(r.lineage_lines().last().expect("a record")).unwrap()
}

/// v1 committed (lr 0.5, auc 0.5), then v2 run in the workspace (lr 0.75, auc 0.75, and an
/// unrelated `name` changed too).
fn two_runs() -> Repo {
    let r = Repo::new();
    r.write(
        "params.yaml",
        "train:\n  lr: 0.5\n  epochs: 3\nseed: 1\nname: first\n",
    );
    train(&r, "0.5");
    r.commit("v1");
    r.write(
        "params.yaml",
        "train:\n  lr: 0.75\n  epochs: 3\nseed: 1\nname: second\n",
    );
    train(&r, "0.75");
    r
}

#[test]
fn params_keys_chosen_are_recorded() {
    let r = two_runs();
    let rec = last_record(&r);
    assert_eq!(
        rec["params"],
        json!({"seed": 1, "train.epochs": 3, "train.lr": 0.75})
    );
    assert_eq!(
        rec["params_files"],
        json!([{"path": "params.yaml", "keys": ["train", "seed"]}])
    );
    assert_eq!(rec["metrics_files"], json!(["metrics.json"]));
    // `-p FILE` alone still records the whole file, and records without files keep their shape
    r.ok(&[
        "lineage",
        "record",
        "-o",
        "model.txt",
        "-p",
        "params.yaml",
        "--param",
        "x=1",
    ]);
    let rec = last_record(&r);
    assert_eq!(rec["params"]["name"], json!("second"));
    assert_eq!(rec["params_files"], json!([{"path": "params.yaml"}]));
    assert!(rec.get("metrics_files").is_none());
    r.ok(&["lineage", "record", "-o", "model.txt"]);
    let rec = last_record(&r);
    assert!(rec.get("params_files").is_none() && rec.get("metrics_files").is_none());
}

#[test]
fn a_missing_key_or_bad_file_is_refused_before_the_command_runs() {
    let r = Repo::new();
    r.write("params.yaml", "train:\n  lr: 0.5\n");
    let out = r.fails(
        &[
            "run",
            "-p",
            "params.yaml:train.epochs",
            "-o",
            "o.txt",
            "--",
            "sh",
            "-c",
            "echo 1 > o.txt",
        ],
        1,
    );
    assert!(
        out.stderr.contains("params.yaml: no params key `train.epochs`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint:"), "{}", out.stderr);
    assert!(!r.exists("o.txt"), "the command must not run");
    assert!(r.lineage_lines().is_empty());
    r.write("p.toml", "[train\nlr = 1\n");
    let out = r.fails(
        &["lineage", "record", "-o", "params.yaml", "-p", "p.toml:train"],
        1,
    );
    assert!(out.stderr.contains("p.toml: cannot parse TOML"), "{}", out.stderr);
}

#[test]
fn json_and_toml_params_files() {
    let r = Repo::new();
    r.write("p.json", r#"{"a": {"b": 1, "c": 2}, "d": 3}"#);
    r.write("p.toml", "[model]\ndepth = 4\n[other]\nx = 1\n");
    r.write("out.txt", "x\n");
    r.ok(&[
        "lineage",
        "record",
        "-o",
        "out.txt",
        "-p",
        "p.json:a.c,d",
        "-p",
        "p.toml:model",
    ]);
    assert_eq!(
        last_record(&r)["params"],
        json!({"a.c": 2, "d": 3, "model.depth": 4})
    );
    r.commit("one");
    r.write("p.json", r#"{"a": {"b": 9, "c": 5}, "d": 3}"#);
    r.write("p.toml", "[model]\ndepth = 4\n[other]\nx = 2\n");
    // a.b and other.x changed too, but were not chosen
    let v = r.json(&["params", "diff"]);
    assert_eq!(
        v["rows"],
        json!([{"path": "p.json", "key": "a.c", "old": 2, "new": 5, "change": 3.0, "changed": true}])
    );
}

#[test]
fn metrics_show_over_revisions() {
    let r = two_runs();
    r.commit("v2");
    r.write("metrics.json", r#"{"auc": 0.875, "eval": {"loss": 1.5}}"#);
    let out = r.ok(&["metrics", "show", "--rev", "HEAD", "--rev", "HEAD~1"]);
    insta::assert_snapshot!(out.stdout, @r#"
    Path          Key        workspace  HEAD  HEAD~1
    metrics.json  auc        0.875      0.75  0.5
    metrics.json  eval.loss  1.5        1.5   1.5
    "#);
    let v = r.json(&["metrics", "show", "--rev", "HEAD~1"]);
    insta::assert_snapshot!(serde_json::to_string_pretty(&v).unwrap(), @r#"
    {
      "problems": [],
      "revs": [
        "workspace",
        "HEAD~1"
      ],
      "rows": [
        {
          "key": "auc",
          "path": "metrics.json",
          "values": [
            0.875,
            0.5
          ]
        },
        {
          "key": "eval.loss",
          "path": "metrics.json",
          "values": [
            1.5,
            1.5
          ]
        }
      ]
    }
    "#);
    // paths relative to the current directory; JSON keeps work-tree paths
    std::fs::create_dir(r.path("sub")).unwrap();
    let out = r.ok(&["-C", "sub", "metrics", "show"]);
    assert!(out.stdout.contains("../metrics.json  auc"), "{}", out.stdout);
    let v = r.json(&["-C", "sub", "metrics", "show"]);
    assert_eq!(v["rows"][0]["path"], json!("metrics.json"));
    let out = r.ok(&["metrics", "show", "--md"]);
    insta::assert_snapshot!(out.stdout, @r#"
    | Path | Key | workspace |
    |---|---|---|
    | metrics.json | auc | 0.875 |
    | metrics.json | eval.loss | 1.5 |
    "#);
}

#[test]
fn metrics_diff_head_against_the_workspace() {
    let r = two_runs();
    let out = r.ok(&["metrics", "diff"]);
    insta::assert_snapshot!(out.stdout, @r#"
    Path          Key  HEAD  workspace  Change
    metrics.json  auc  0.5   0.75       +0.25
    "#);
    let out = r.ok(&["metrics", "diff", "--all"]);
    insta::assert_snapshot!(out.stdout, @r#"
    Path          Key        HEAD  workspace  Change
    metrics.json  auc        0.5   0.75       +0.25
    metrics.json  eval.loss  1.5   1.5        0
    "#);
    let v = r.json(&["metrics", "diff", "--all"]);
    insta::assert_snapshot!(serde_json::to_string_pretty(&v).unwrap(), @r#"
    {
      "new": "workspace",
      "old": "HEAD",
      "problems": [],
      "rows": [
        {
          "change": 0.25,
          "changed": true,
          "key": "auc",
          "new": 0.75,
          "old": 0.5,
          "path": "metrics.json"
        },
        {
          "change": 0.0,
          "changed": false,
          "key": "eval.loss",
          "new": 1.5,
          "old": 1.5,
          "path": "metrics.json"
        }
      ]
    }
    "#);
    let out = r.ok(&["metrics", "diff", "--md"]);
    insta::assert_snapshot!(out.stdout, @r#"
    | Path | Key | HEAD | workspace | Change |
    |---|---|---|---|---|
    | metrics.json | auc | 0.5 | 0.75 | +0.25 |
    "#);
    r.commit("v2");
    // two revisions; nothing changed between HEAD and the workspace now
    let out = r.ok(&["metrics", "diff", "HEAD~1", "HEAD"]);
    assert!(
        out.stdout.contains("auc") && out.stdout.contains("+0.25"),
        "{}",
        out.stdout
    );
    let out = r.ok(&["metrics", "diff"]);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("no metrics changed between HEAD and workspace"),
        "{}",
        out.stderr
    );
    let out = r.fails(&["metrics", "diff", "nope"], 1);
    assert!(
        out.stderr.contains("nope: unknown git revision"),
        "{}",
        out.stderr
    );
}

#[test]
fn params_diff_shows_chosen_keys_only() {
    let r = two_runs();
    let out = r.ok(&["params", "diff"]);
    insta::assert_snapshot!(out.stdout, @r#"
    Path         Key       HEAD  workspace  Change
    params.yaml  train.lr  0.5   0.75       +0.25
    "#);
    let out = r.ok(&["params", "diff", "--all", "--md"]);
    insta::assert_snapshot!(out.stdout, @r#"
    | Path | Key | HEAD | workspace | Change |
    |---|---|---|---|---|
    | params.yaml | seed | 1 | 1 | 0 |
    | params.yaml | train.epochs | 3 | 3 | 0 |
    | params.yaml | train.lr | 0.5 | 0.75 | +0.25 |
    "#);
}

#[test]
fn a_file_new_or_broken_on_one_side_is_shown_with_the_rest() {
    let r = two_runs();
    // m.yaml declared only in the workspace: absent at HEAD
    r.write("m.yaml", "f1: 0.5\n");
    r.ok(&["lineage", "record", "-o", "model.txt", "-m", "m.yaml"]);
    r.write("metrics.json", "{\"auc\": oops");
    let out = r.ok(&["metrics", "show", "--rev", "HEAD"]);
    insta::assert_snapshot!(out.stdout, @r#"
    Path          Key        workspace  HEAD
    m.yaml        f1         0.5        -
    metrics.json  auc        -          0.5
    metrics.json  eval.loss  -          1.5
    "#);
    assert!(
        out.stderr
            .contains("warning: metrics.json (workspace): cannot parse JSON"),
        "{}",
        out.stderr
    );
    let v = r.json(&["metrics", "diff"]);
    assert_eq!(v["rows"][0]["key"], json!("f1"));
    assert_eq!(v["rows"][0]["old"], Value::Null);
    assert!(v["rows"][0].get("change").is_none());
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
}
