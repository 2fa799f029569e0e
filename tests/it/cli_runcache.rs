//! The run cache: `mlv repro` and `mlv run` restore the outputs of an earlier identical run
//! instead of running the command. Every command appends a line to runs.log (git-ignored) and
//! writes its run number into its outputs and metrics, so the tests see both whether the
//! command ran and which run's bytes the work tree holds.

use serde_json::Value;

use crate::common::lineage::Repo;

/// The command: counts itself in runs.log, writes models/model.bin (the run number, the input
/// and the params) and, with `metrics`, metrics.json (`{"run": N}`).
fn command(metrics: bool) -> String {
    let mut c = String::from(
        "echo run >> runs.log && n=$(wc -l < runs.log) && rm -rf models && mkdir models && \
         { echo $n; cat in.txt params.yaml; } > models/model.bin",
    );
    if metrics {
        c.push_str(" && echo \"{\\\"run\\\": $n}\" > metrics.json");
    }
    c
}

/// A repository with stage `train`: in.txt (git) and params.yaml -> models/ (+ metrics.json).
fn pipeline(metrics: bool) -> Repo {
    let repo = Repo::new();
    repo.write(".gitignore", "runs.log\n");
    repo.write("in.txt", "data\n");
    repo.write("params.yaml", "lr: 1\n");
    let mut toml = format!(
        "[stage.train]\ncmd = [\"sh\", \"-c\", {:?}]\ninputs = [\"in.txt\"]\noutputs = [\"models\"]\nparams = [\"params.yaml\"]\n",
        command(metrics)
    );
    if metrics {
        toml.push_str("metrics = [\"metrics.json\"]\n");
    }
    repo.write("mlv.toml", &toml);
    repo.commit("pipeline");
    repo
}

/// How many times the command ran.
fn count(repo: &Repo) -> usize {
    std::fs::read_to_string(repo.path("runs.log"))
        .unwrap_or_default()
        .lines()
        .count()
}

fn last_record(repo: &Repo) -> Value {
    serde_json::from_str(repo.lineage_lines().last().unwrap()).unwrap()
}

fn remote_dir(repo: &Repo) -> String {
    let root = repo.path("x");
    let base = root.parent().unwrap().parent().unwrap();
    base.join("remote").to_str().unwrap().to_string()
}

#[test]
fn a_param_changed_back_restores_the_earlier_outputs_and_metrics_without_running() {
    let repo = pipeline(true);
    repo.ok(&["repro"]);
    let first = last_record(&repo);
    let (model1, metrics1) = (repo.read("models/model.bin"), repo.read("metrics.json"));
    assert_eq!(metrics1, "{\"run\": 1}\n");
    assert!(first["metrics_digests"]["metrics.json"].is_string(), "{first}");
    repo.commit("run 1");
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    assert_eq!(count(&repo), 2);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 2}\n");

    repo.write("params.yaml", "lr: 1\n");
    let dry = repo.ok(&["repro", "--dry-run"]);
    let short = &first["id"].as_str().unwrap()[..12];
    assert_eq!(
        dry.stdout,
        format!("would restore train from the run cache (run {short}): param lr changed: 2 -> 1\n")
    );
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 2, "the command must not run: {}", out.stderr);
    let said = format!("stage train: restored from the run cache (run {short}, ");
    assert!(
        out.stderr.contains(&said) && out.stderr.contains(" by Ada Lovelace); the command did not run"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.read("models/model.bin"), model1);
    assert_eq!(repo.read("metrics.json"), metrics1);
    let reuse = last_record(&repo);
    assert_eq!(reuse["reused"], first["id"]);
    assert_eq!(reuse["stage"], "train");
    assert_eq!(reuse["outputs"], first["outputs"]);
    assert_eq!(reuse["metrics"], first["metrics"]);
    assert_ne!(reuse["time"], first["time"]);
    assert_eq!(
        repo.digest("models"),
        first["outputs"][0]["digest"].as_str().unwrap()
    );

    // now up to date
    let out = repo.ok(&["repro"]);
    assert!(
        out.stderr.contains("stage train didn't change, skipping"),
        "{}",
        out.stderr
    );
    assert_eq!(count(&repo), 2);
    let show = repo.ok(&["lineage", "show", "models"]);
    assert!(
        show.stdout.contains(short) && show.stdout.contains(&reuse["id"].as_str().unwrap()[..12]),
        "{}",
        show.stdout
    );

    // --json: the outcome `restored`, with the reused run
    repo.write("params.yaml", "lr: 2\n");
    let json = repo.json(&["repro"]);
    assert_eq!(count(&repo), 2);
    assert_eq!(json["stages"][0]["status"], "restored");
    assert_eq!(json["stages"][0]["reasons"][0]["why"], "param_changed");
    let second = repo
        .lineage_lines()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["params"]["lr"] == 2 && r["reused"].is_null())
        .unwrap();
    assert_eq!(json["stages"][0]["reused"], second["id"]);
    assert_eq!(json["stages"][0]["record"], last_record(&repo)["id"]);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 2}\n");
}

#[test]
fn no_run_cache_and_force_run_the_command() {
    let repo = pipeline(true);
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 1\n");
    let dry = repo.ok(&["repro", "--dry-run", "--no-run-cache"]);
    assert_eq!(dry.stdout, "would run train: param lr changed: 2 -> 1\n");
    let out = repo.ok(&["repro", "--no-run-cache"]);
    assert_eq!(count(&repo), 3, "{}", out.stderr);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 3}\n");
    assert!(last_record(&repo)["reused"].is_null());
    repo.ok(&["repro", "--force"]);
    assert_eq!(count(&repo), 4);
}

#[test]
fn switching_branches_restores_outputs_without_running() {
    let repo = pipeline(true);
    repo.ok(&["repro"]);
    let main_model = repo.read("models/model.bin");
    repo.commit("main reproduced");
    repo.git(&["checkout", "-q", "-b", "exp"]);
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    let exp_model = repo.read("models/model.bin");
    repo.commit("exp reproduced");
    assert_eq!(count(&repo), 2);

    // back on main: its pointers, exp's data in the work tree
    repo.git(&["checkout", "-q", "main"]);
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("restored from the run cache"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.read("models/model.bin"), main_model);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 1}\n");
    repo.commit("main restored");

    // main's lineage file does not know lr: 2; exp's (at the branch tip) does
    repo.write("params.yaml", "lr: 2\n");
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 2, "{}", out.stderr);
    assert_eq!(repo.read("models/model.bin"), exp_model);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 2}\n");
    // main's lineage file has only the reuse of exp's run: shown with what it reused
    let reuse = last_record(&repo);
    let show = repo.ok(&["lineage", "show", "models"]);
    let reused = reuse["reused"].as_str().unwrap();
    assert!(
        show.stdout.contains(&format!(
            "reused:  run {} (outputs restored from the run cache)",
            &reused[..12]
        )),
        "{}",
        show.stdout
    );
    repo.ok(&["repro"])
        .stderr_has("stage train didn't change, skipping");
}

#[test]
fn outputs_only_on_the_default_remote_are_pulled_and_restored() {
    let repo = pipeline(false);
    let remote = remote_dir(&repo);
    repo.ok(&["remote", "add", "origin", &remote, "--default"]);
    repo.ok(&["repro"]);
    let model1 = repo.read("models/model.bin");
    repo.ok(&["push"]);
    repo.commit("run 1");
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 1\n");
    std::fs::remove_dir_all(repo.path("models")).unwrap();
    std::fs::remove_dir_all(repo.path(".mlv/cache")).unwrap();
    // a dry run does not ask the remote
    let dry = repo.ok(&["repro", "--dry-run"]);
    assert!(
        dry.stdout.contains("would run train (or restore run ")
            && dry.stdout.contains(" if the default remote has its outputs)"),
        "{}",
        dry.stdout
    );
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("; downloaded 2 objects;"),
        "the manifest and the file: {}",
        out.stderr
    );
    assert_eq!(repo.read("models/model.bin"), model1);
    repo.ok(&["repro"])
        .stderr_has("stage train didn't change, skipping");
}

#[test]
fn a_run_whose_outputs_are_gone_runs_the_command() {
    let repo = pipeline(true);
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 1\n");
    std::fs::remove_dir_all(repo.path(".mlv/cache")).unwrap();
    assert_eq!(
        repo.ok(&["repro", "--dry-run"]).stdout,
        "would run train: param lr changed: 2 -> 1\n"
    );
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 3, "{}", out.stderr);
    assert!(!out.stderr.contains("run cache"), "{}", out.stderr);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 3}\n");
}

#[test]
fn mlv_run_twice_restores_the_second_time() {
    let repo = Repo::new();
    repo.write(".gitignore", "runs.log\n");
    repo.write("in.txt", "data\n");
    repo.write("params.yaml", "lr: 1\nother: 1\n");
    repo.commit("inputs");
    let cmd = "echo run >> runs.log && n=$(wc -l < runs.log) && { echo $n; cat in.txt; } > out.bin";
    let args = [
        "run",
        "-i",
        "in.txt",
        "-p",
        "params.yaml:lr",
        "-o",
        "out.bin",
        "--",
        "sh",
        "-c",
        cmd,
    ];
    repo.ok(&args);
    let first = last_record(&repo);
    // an unrelated params key changes: the selected values are the same
    repo.write("params.yaml", "lr: 1\nother: 2\n");
    std::fs::remove_file(repo.path("out.bin")).unwrap();
    let mut json_args = vec!["--json"];
    json_args.extend_from_slice(&args);
    let out = repo.mlv(&json_args).ok();
    assert_eq!(count(&repo), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("restored from the run cache") && out.stderr.contains("the command did not run"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.read("out.bin"), "1\ndata\n");
    let json = out.json();
    assert_eq!(json["restored_from"]["id"], first["id"]);
    assert_eq!(json["record"]["reused"], first["id"]);
    assert_eq!(json["downloaded"], 0);
    assert_eq!(last_record(&repo)["reused"], first["id"]);

    // another input: it runs; --no-run-cache: it runs
    repo.write("in.txt", "more\n");
    repo.ok(&args);
    assert_eq!(count(&repo), 2);
    repo.write("in.txt", "data\n");
    let mut no_cache = args.to_vec();
    no_cache.insert(1, "--no-run-cache");
    repo.ok(&no_cache);
    assert_eq!(count(&repo), 3);
    assert_eq!(repo.read("out.bin"), "3\ndata\n");
}

#[test]
fn a_record_without_the_metrics_files_bytes_is_not_reused() {
    let repo = pipeline(true);
    repo.ok(&["repro"]);
    // as an older mlv wrote it: no metrics_digests (the id recomputed over the rest)
    let line = repo.lineage_lines().remove(0);
    let record: Value = serde_json::from_str(&line).unwrap();
    let digests = format!(
        ",\"metrics_digests\":{{\"metrics.json\":\"{}\"}}",
        record["metrics_digests"]["metrics.json"].as_str().unwrap()
    );
    let id = record["id"].as_str().unwrap();
    let body = line
        .replace(&digests, "")
        .replace(&format!("\"id\":\"{id}\","), "");
    let old = body.replacen(
        "\"version\":1,",
        &format!("\"version\":1,\"id\":\"{}\",", crate::common::b3(body.as_bytes())),
        1,
    );
    repo.write(".mlv/lineage.jsonl", &format!("{old}\n"));
    assert!(
        repo.ok(&["lineage", "list"]).stderr.is_empty(),
        "the edited record is valid"
    );
    repo.write("params.yaml", "lr: 2\n");
    repo.ok(&["repro"]);
    repo.write("params.yaml", "lr: 1\n");
    let out = repo.ok(&["repro"]);
    assert_eq!(count(&repo), 3, "{}", out.stderr);
    assert_eq!(repo.read("metrics.json"), "{\"run\": 3}\n");
}
