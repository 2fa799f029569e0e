//! `mlv import-dvc` on DVC pipelines made by the real DVC CLI (3.67.1): `dvc.yaml` stages become
//! `mlv.toml` stages, `dvc.lock` outputs pointers and its stages lineage records, so that
//! `mlv lineage show` answers for every output and `mlv repro` has nothing to do when DVC had
//! nothing to do; what mlv cannot express is reported per stage; a rerun changes nothing.

use serde_json::Value;

use crate::cli_import_dvc::{import, round_trip, Dvc};

/// A three-stage DVC pipeline, reproduced and committed: `prepare` (data.csv + `seed` ->
/// prepared.csv), `train` (prepared.csv + the `train` section -> the directory `model`),
/// `evaluate` (model + `eval.threshold` -> the metrics file eval.json, which DVC caches and mlv
/// moves to git).
fn pipeline() -> Option<Dvc> {
    let d = Dvc::new()?;
    d.env.write("data.csv", b"x,y\n1,2\n3,4\n");
    d.add(&["data.csv"]);
    d.env.write(
        "params.yaml",
        b"seed: 7\ntrain:\n  lr: 0.1\n  epochs: 2\neval:\n  threshold: 0.5\n",
    );
    d.run(&[
        "stage",
        "add",
        "-q",
        "-n",
        "prepare",
        "-d",
        "data.csv",
        "-p",
        "seed",
        "-o",
        "prepared.csv",
        "cp data.csv prepared.csv",
    ]);
    d.run(&[
        "stage",
        "add",
        "-q",
        "-n",
        "train",
        "-d",
        "prepared.csv",
        "-p",
        "train",
        "-o",
        "model",
        "mkdir -p model && cp prepared.csv model/weights.txt && grep lr params.yaml > model/lr.txt",
    ]);
    d.run(&[
        "stage",
        "add",
        "-q",
        "-n",
        "evaluate",
        "-d",
        "model",
        "-p",
        "eval.threshold",
        "-m",
        "eval.json",
        "echo '{\"auc\": 0.75}' > eval.json",
    ]);
    d.run(&["repro", "-q"]);
    assert!(d.run(&["status"]).stdout.contains("up to date"));
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc repro"]);
    Some(d)
}

fn names(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s[key].as_str().unwrap_or("null").to_string())
        .collect()
}

/// `mlv repro --dry-run --json`: the stages it would run.
fn would_run(d: &Dvc) -> Vec<String> {
    let r = d.env.mlv(&["repro", "--dry-run", "--json"]).ok().json();
    r["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "up_to_date")
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn import_dvc_pipeline_stages_records_repro_and_round_trip() {
    let Some(d) = pipeline() else { return };
    let r = import(&d.env, &[]);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(
        names(&r["stages"], "name"),
        ["prepare", "train", "evaluate"],
        "{r}"
    );
    assert_eq!(
        names(&r["records"], "stage"),
        ["prepare", "train", "evaluate"],
        "{r}"
    );
    assert!(
        r["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["written"] == true && x["stale"] == serde_json::json!([])),
        "{r}"
    );
    // every dvc.lock output is a pointer; the metrics file stays in git
    assert_eq!(
        names(&r["converted"], "path"),
        ["data.csv", "prepared.csv", "model"],
        "{r}"
    );
    assert_eq!(
        r["removed_dvc_files"],
        serde_json::json!(["data.csv.dvc", "dvc.lock"]),
        "{r}"
    );
    assert!(d.env.path("dvc.yaml").exists() && !d.env.path("dvc.lock").exists());
    let toml = d.env.read_str("mlv.toml");
    assert!(
        toml.contains(r#"params = ["params.yaml:eval.threshold"]"#),
        "{toml}"
    );
    assert!(toml.contains(r#"metrics = ["eval.json"]"#), "{toml}");
    assert!(!d.env.read_str(".gitignore").contains("eval.json"));
    assert!(
        r["git_paths"].as_array().unwrap().contains(&"eval.json".into()),
        "{r}"
    );
    let status = d.env.mlv(&["status", "--json"]).ok();
    assert_eq!(status.json()["clean"], true, "{status}");
    assert!(would_run(&d).is_empty());
    // lineage for every stage output, with the right inputs and params
    for (out, input, param, value) in [
        ("prepared.csv", "data.csv", "seed", serde_json::json!(7)),
        ("model", "prepared.csv", "train.lr", serde_json::json!(0.1)),
    ] {
        let show = d.env.mlv(&["lineage", "show", "--json", out]).ok().json();
        let rec = &show["produced_by"]["record"];
        assert_eq!(rec["inputs"][0]["path"], input, "{show}");
        assert_eq!(rec["params"][param], value, "{show}");
        assert_eq!(rec["tags"], serde_json::json!(["dvc-import"]), "{show}");
    }
    let show = d.env.mlv(&["lineage", "show", "--json", "model"]).ok().json();
    assert_eq!(
        show["produced_by"]["record"]["params"]["train.epochs"], 2,
        "{show}"
    );
    let lineage = d.env.read_str(".mlv/lineage.jsonl");
    assert!(lineage.contains(r#""metrics":{"auc":0.75}"#), "{lineage}");
    // a params edit reruns exactly the stages that read it, and the ones after them
    let params = d.env.read_str("params.yaml").replace("lr: 0.1", "lr: 0.2");
    d.env.write("params.yaml", params.as_bytes());
    assert_eq!(would_run(&d), ["train", "evaluate"]);
    let ran = d.env.mlv(&["repro", "--json"]).ok().json();
    let ran: Vec<_> = ran["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "ran")
        .map(|s| s["stage"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ran, ["train", "evaluate"]);
    assert_eq!(d.env.read_str("model/lr.txt"), "  lr: 0.2\n");
    assert!(would_run(&d).is_empty());
    round_trip(
        &d.env,
        &[
            ("data.csv", b"x,y\n1,2\n3,4\n"),
            ("prepared.csv", b"x,y\n1,2\n3,4\n"),
            ("model/weights.txt", b"x,y\n1,2\n3,4\n"),
            ("model/lr.txt", b"  lr: 0.2\n"),
            ("eval.json", b"{\"auc\": 0.75}\n"),
        ],
    );
}

#[test]
fn import_dvc_pipeline_keep_dvc_twice_keeps_dvc_working_and_adds_nothing() {
    let Some(d) = pipeline() else { return };
    let r = import(&d.env, &["--keep-dvc"]);
    assert_eq!(r["removed_dvc_files"], serde_json::json!([]), "{r}");
    let lineage = d.env.read_str(".mlv/lineage.jsonl");
    let toml = d.env.read_str("mlv.toml");
    let again = import(&d.env, &["--keep-dvc"]);
    assert!(
        again["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["outcome"] == "already-there"),
        "{again}"
    );
    assert!(
        again["records"]
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x["written"] == false),
        "{again}"
    );
    assert_eq!(names(&again["records"], "id"), names(&r["records"], "id"));
    assert_eq!(d.env.read_str(".mlv/lineage.jsonl"), lineage);
    assert_eq!(d.env.read_str("mlv.toml"), toml);
    assert!(d.env.path("dvc.yaml").exists() && d.env.path("dvc.lock").exists());
    assert!(d.run(&["status"]).stdout.contains("up to date"));
    assert!(would_run(&d).is_empty());
}

#[test]
fn import_dvc_pipeline_stale_lock_is_recorded_and_repro_reruns_it() {
    let Some(d) = pipeline() else { return };
    // DVC would rerun prepare (and everything after it)
    let params = d.env.read_str("params.yaml").replace("seed: 7", "seed: 8");
    d.env.write("params.yaml", params.as_bytes());
    assert!(d.run(&["status"]).stdout.contains("changed"));
    let r = import(&d.env, &[]);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    assert_eq!(names(&r["records"], "stage"), ["prepare", "train", "evaluate"]);
    let show = d
        .env
        .mlv(&["lineage", "show", "--json", "prepared.csv"])
        .ok()
        .json();
    assert_eq!(show["produced_by"]["record"]["params"]["seed"], 7, "{show}");
    assert_eq!(would_run(&d), ["prepare", "train", "evaluate"]);
}

#[test]
fn import_dvc_pipeline_reports_what_mlv_cannot_express() {
    let Some(d) = Dvc::new() else { return };
    d.env.write("in.txt", b"in\n");
    d.env.write(
        "dvc.yaml",
        "stages:\n\
         \x20 ok:\n    cmd: [cp in.txt a.txt, cp in.txt b.txt]\n    deps: [in.txt]\n    outs: [a.txt, b.txt]\n\
         \x20 loop:\n    foreach: [x, y]\n    do:\n      cmd: echo ${item} > ${item}.txt\n      outs: ['${item}.txt']\n\
         \x20 cold:\n    cmd: cp in.txt c.txt\n    frozen: true\n    outs: [c.txt]\n\
         \x20 keep:\n    cmd: cp in.txt k.txt\n    outs:\n    - k.txt:\n        persist: true\n\
         \x20 raw:\n    cmd: cp in.txt r.txt\n    outs:\n    - r.txt:\n        cache: false\n",
    );
    d.env.write(
        "sub/dvc.yaml",
        "stages:\n  step:\n    cmd: cp ../in.txt s.txt\n    deps: [../in.txt]\n    outs: [s.txt]\n",
    );
    let out = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).ok();
    let r = out.json();
    assert_eq!(names(&r["stages"], "name"), ["ok", "sub-step"], "{r}");
    let reasons: Vec<_> = r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["reason"].as_str().unwrap().to_string())
        .collect();
    for (stage, why) in [
        ("loop", "foreach"),
        ("cold", "frozen"),
        ("keep", "persist"),
        ("raw", "cache: false"),
    ] {
        assert!(
            reasons
                .iter()
                .any(|x| x.starts_with(&format!("stage {stage}:")) && x.contains(why)),
            "{stage}: {reasons:?}"
        );
    }
    assert!(!d.env.path("mlv.toml").exists());
    // converted: paths from the root, the subdirectory's stage runs there
    d.env.mlv(&["import-dvc"]).ok();
    let stages = d.env.mlv(&["stage", "list", "--json"]).ok().json();
    let step = stages["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "sub-step")
        .unwrap()
        .clone();
    assert_eq!(step["wdir"], "sub", "{stages}");
    assert_eq!(step["inputs"], serde_json::json!(["in.txt"]), "{stages}");
    assert_eq!(step["outputs"], serde_json::json!(["sub/s.txt"]), "{stages}");
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "import"]);
    d.env.mlv(&["repro", "sub-step"]).ok();
    assert_eq!(d.env.read_str("sub/s.txt"), "in\n");
    // a stage of the same name with another definition is left alone and reported
    d.env.write(
        "dvc.yaml",
        "stages:\n  ok:\n    cmd: cp in.txt a.txt\n    deps: [in.txt]\n    outs: [a.txt]\n",
    );
    let toml = d.env.read_str("mlv.toml");
    let dry = d.env.mlv(&["import-dvc", "--dry-run", "--json"]).fails(1).json();
    assert_eq!(dry["skipped"][0]["kind"], "conflict", "{dry}");
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(1);
    let r = out.json();
    assert_eq!(r["skipped"][0]["kind"], "conflict", "{r}");
    assert_eq!(d.env.read_str("mlv.toml"), toml);
}

#[test]
fn import_dvc_pipeline_in_a_subdirectory_with_wdir_and_a_source_directory_in_git() {
    let Some(d) = Dvc::new() else { return };
    d.env.write("in.txt", b"hi\n");
    d.env.write("src/a.py", b"code\n");
    d.env.write("src/lib/b.py", b"lib\n");
    d.env.write("sub/work/params.yaml", b"k: 1\n");
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "code"]);
    let sub = d.env.path("sub");
    let dvc = |args: &[&str]| d.run_in(&sub, args);
    dvc(&[
        "stage",
        "add",
        "-q",
        "-n",
        "s",
        "-w",
        "work",
        "-d",
        "../../in.txt",
        "-d",
        "../../src",
        "-p",
        "k",
        "-o",
        "out.txt",
        "cp ../../in.txt out.txt",
    ]);
    dvc(&["repro", "-q"]);
    d.env.git(&["add", "-A"]);
    d.env.git(&["commit", "-qm", "dvc repro"]);
    let r = import(&d.env, &[]);
    assert_eq!(names(&r["stages"], "name"), ["sub-s"], "{r}");
    assert_eq!(r["records"][0]["stale"], serde_json::json!([]), "{r}");
    let stages = d.env.mlv(&["stage", "list", "--json"]).ok().json();
    let s = &stages["stages"][0];
    assert_eq!(s["wdir"], "sub/work", "{stages}");
    // the directory in git becomes the files git tracks in it
    assert_eq!(
        s["inputs"],
        serde_json::json!(["in.txt", "src/a.py", "src/lib/b.py"]),
        "{stages}"
    );
    assert_eq!(s["outputs"], serde_json::json!(["sub/work/out.txt"]), "{stages}");
    assert_eq!(
        s["params"],
        serde_json::json!(["sub/work/params.yaml:k"]),
        "{stages}"
    );
    assert!(would_run(&d).is_empty());
    d.env.write("src/lib/b.py", b"lib 2\n");
    assert_eq!(would_run(&d), ["sub-s"]);
}

#[test]
fn import_dvc_pipeline_output_changed_since_repro_is_left_alone_and_the_lock_kept() {
    let Some(d) = pipeline() else { return };
    d.env.write("prepared.csv", b"edited\n");
    let out = d.env.mlv(&["import-dvc", "--json"]).fails(1);
    let r = out.json();
    let skipped = &r["skipped"][0];
    assert_eq!(
        (skipped["path"].as_str(), skipped["kind"].as_str()),
        (Some("prepared.csv"), Some("modified")),
        "{r}"
    );
    assert_eq!(d.env.read_str("prepared.csv"), "edited\n");
    // the record is still written from the lock, without the output it cannot vouch for
    let rec = r["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["stage"] == "prepare")
        .unwrap()
        .clone();
    assert_eq!(rec["written"], true, "{r}");
    assert!(
        rec["stale"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().contains("prepared.csv")),
        "{r}"
    );
    assert!(d.env.path("dvc.lock").exists());
    assert!(
        !r["removed_dvc_files"]
            .as_array()
            .unwrap()
            .contains(&"dvc.lock".into()),
        "{r}"
    );
    assert_eq!(would_run(&d), ["prepare", "train", "evaluate"]);
}
