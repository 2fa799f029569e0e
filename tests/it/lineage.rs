//! End to end: a small pipeline (raw data -> cleaned data -> two models on two data
//! versions, on two branches merged together) and every lineage and history query on it.

use crate::common::lineage::Repo;
use serde_json::{json, Value};

const CLEAN: &str =
    "mkdir -p data/clean && for f in data/raw/*.csv; do sort -u \"$f\" > data/clean/$(basename \"$f\"); done";

fn train(model_dir: &str, auc: &str) -> String {
    format!(
        "mkdir -p {model_dir} && cat data/clean/*.csv params.yaml > {model_dir}/model.pt && \
         printf '{{\"auc\": {auc}, \"eval\": {{\"loss\": 0.4}}}}' > {model_dir}/metrics.json"
    )
}

fn short(d: &str) -> &str {
    &d[..12]
}

struct Pipeline {
    repo: Repo,
    raw1: String,
    raw2: String,
    clean1: String,
    clean2: String,
    base: String,
    large: String,
}

/// main: raw v1, `lineage record` of the cleaning step, tag v1.0; branch exp: raw v2, `run`
/// cleaning, `run` training models/large; main: `run` training models/baseline on v1; merge.
fn pipeline() -> Pipeline {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1,x\n1,x\n2,y\n");
    repo.write("data/raw/b.csv", "3,z\n");
    repo.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n");
    repo.ok(&["add", "data/raw"]);
    repo.commit("raw data v1");
    let raw1 = repo.digest("data/raw");

    // a cleaning step run elsewhere, recorded after the fact
    repo.write("data/clean/a.csv", "1,x\n2,y\n");
    repo.write("data/clean/b.csv", "3,z\n");
    repo.ok(&[
        "lineage",
        "record",
        "-i",
        "data/raw",
        "-o",
        "data/clean",
        "--param",
        "dedup=true",
        "--tag",
        "clean",
    ]);
    repo.commit("clean data v1");
    let clean1 = repo.digest("data/clean");
    repo.git(&["tag", "v1.0"]);

    // branch exp: new raw data, cleaned and trained with `mlv run`
    repo.git(&["checkout", "-q", "-b", "exp"]);
    repo.write("data/raw/a.csv", "1,x\n2,y\n2,y\n4,w\n");
    repo.write("data/raw/c.csv", "5,v\n");
    repo.write("params.yaml", "train:\n  lr: 0.05\n  epochs: 3\n");
    repo.ok(&["add", "data/raw"]);
    repo.commit("raw data v2");
    let raw2 = repo.digest("data/raw");
    repo.ok(&[
        "run",
        "-i",
        "data/raw",
        "-o",
        "data/clean",
        "--param",
        "dedup=true",
        "--",
        "sh",
        "-c",
        CLEAN,
    ]);
    repo.commit("clean data v2");
    let clean2 = repo.digest("data/clean");
    let t = train("models/large", "0.86");
    repo.ok(&[
        "run",
        "-i",
        "data/clean",
        "-i",
        "params.yaml",
        "-o",
        "models/large/model.pt",
        "-m",
        "models/large/metrics.json",
        "-p",
        "params.yaml",
        "--tag",
        "large",
        "--",
        "sh",
        "-c",
        &t,
    ]);
    repo.commit("train large model on v2");
    let large = repo.digest("models/large/model.pt");

    // main: a baseline model on v1
    repo.git(&["checkout", "-q", "main"]);
    repo.ok(&["checkout"]);
    assert_eq!(repo.read("data/clean/a.csv"), "1,x\n2,y\n");
    let t = train("models/baseline", "0.81");
    repo.ok(&[
        "run",
        "-i",
        "data/clean",
        "-i",
        "params.yaml",
        "-o",
        "models/baseline/model.pt",
        "-m",
        "models/baseline/metrics.json",
        "-p",
        "params.yaml",
        "--tag",
        "baseline",
        "--",
        "sh",
        "-c",
        &t,
    ]);
    repo.commit("train baseline model on v1");
    let base = repo.digest("models/baseline/model.pt");

    repo.git(&["merge", "-q", "--no-edit", "exp"]);
    repo.ok(&["checkout"]);
    Pipeline {
        repo,
        raw1,
        raw2,
        clean1,
        clean2,
        base,
        large,
    }
}

fn outputs(v: &Value) -> Vec<(String, String)> {
    v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["path"].as_str().unwrap().to_string(),
                o["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_merge_keeps_every_record_of_both_branches() {
    let p = pipeline();
    let r = &p.repo;
    // the merge: no conflict, every record from both branches, all valid
    assert!(r.git(&["status", "--porcelain"]).is_empty());
    let lines = r.lineage_lines();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(lines.iter().all(|l| l.starts_with('{')));
    assert!(r
        .read(".gitattributes")
        .contains(".mlv/lineage.jsonl merge=union"));
}

#[test]
fn show_follows_a_model_back_to_the_raw_data() {
    let p = pipeline();
    let r = &p.repo;
    // show: the baseline model <- clean v1 <- raw v1, with params, metrics and commits
    let show = r.json(&["lineage", "show", "models/baseline/model.pt"]);
    assert_eq!(show["target"]["digest"], json!(p.base));
    let rec = &show["produced_by"]["record"];
    assert_eq!(rec["metrics"], json!({"auc": 0.81, "eval.loss": 0.4}));
    assert_eq!(rec["params"]["train.lr"], json!(0.1));
    assert_eq!(rec["tags"], json!(["baseline"]));
    assert_eq!(rec["dirty"], json!(false));
    assert_eq!(
        rec["author"],
        json!({"name": "Ada Lovelace", "email": "ada@example.com"})
    );
    assert_eq!(rec["command"][0], json!("sh"));
    assert_eq!(rec["commit"].as_str().unwrap().len(), 40);
    let inputs = show["produced_by"]["inputs"].as_array().unwrap();
    assert_eq!(inputs[0]["input"]["path"], json!("data/clean"));
    assert_eq!(inputs[0]["input"]["digest"], json!(p.clean1));
    assert_eq!(inputs[1]["input"]["path"], json!("params.yaml"));
    assert_eq!(inputs[1]["input"]["type"], json!("git"));
    assert!(inputs[1]["produced_by"].is_null());
    let clean_rec = &inputs[0]["produced_by"];
    assert_eq!(clean_rec["record"]["params"], json!({"dedup": true}));
    assert!(clean_rec["record"]["command"].is_null());
    assert_eq!(clean_rec["inputs"][0]["input"]["digest"], json!(p.raw1));
    assert!(clean_rec["inputs"][0]["produced_by"].is_null());

    // the same in text, for the large model: on raw v2
    let text = r.ok(&["lineage", "show", "models/large/model.pt"]).stdout;
    for needle in [
        format!("models/large/model.pt {}", short(&p.large)),
        format!("input data/clean {}", short(&p.clean2)),
        format!("input data/raw {}", short(&p.raw2)),
        "params:  dedup=true".to_string(),
        "metrics: auc=0.86, eval.loss=0.4".to_string(),
        "train.lr=0.05".to_string(),
        "Ada Lovelace <ada@example.com>".to_string(),
        "source: no record produced it".to_string(),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn show_names_versions_by_revision_and_by_digest() {
    let p = pipeline();
    let r = &p.repo;
    // --rev and digests name versions too
    let at_v1 = r.json(&["lineage", "show", "data/clean", "--rev", "v1.0"]);
    assert_eq!(at_v1["target"]["digest"], json!(p.clean1));
    let by_digest = r.json(&["lineage", "show", &p.large[..10]]);
    assert_eq!(by_digest["produced_by"]["record"]["tags"], json!(["large"]));
}

#[test]
fn uses_lists_what_each_version_led_to() {
    let p = pipeline();
    let r = &p.repo;
    // uses: raw v1 led to clean v1 and the baseline model only; raw v2 to the large model
    let uses = r.json(&["lineage", "uses", "data/raw", "--rev", "v1.0"]);
    assert_eq!(uses["target"]["digest"], json!(p.raw1));
    assert_eq!(
        outputs(&uses),
        [
            ("data/clean".into(), p.clean1.clone()),
            ("models/baseline/model.pt".into(), p.base.clone())
        ]
    );
    let depths: Vec<_> = uses["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["depth"].clone())
        .collect();
    assert_eq!(depths, [json!(1), json!(2)]);
    let uses2 = r.json(&["lineage", "uses", "data/raw"]);
    assert_eq!(
        outputs(&uses2),
        [
            ("data/clean".into(), p.clean2.clone()),
            ("models/large/model.pt".into(), p.large.clone())
        ]
    );
    let text = r.ok(&["lineage", "uses", &p.raw1]).stdout;
    assert!(
        text.contains(&format!("models/baseline/model.pt {}", short(&p.base))),
        "{text}"
    );
    assert!(!text.contains("models/large"), "{text}");
    let none = r.json(&["lineage", "uses", "models/large/model.pt"]);
    assert_eq!(none["records"], json!([]));
}

#[test]
fn list_sorts_and_filters_runs_as_json_and_as_a_table() {
    let p = pipeline();
    let r = &p.repo;
    // list: sorted by a metric, filtered, as a table
    let list = r.json(&["lineage", "list", "--sort", "metrics.auc", "--reverse"]);
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4);
    assert_eq!(runs[0]["tags"], json!(["large"]));
    assert_eq!(runs[1]["tags"], json!(["baseline"]));
    assert!(runs[2]["metrics"].as_object().unwrap().is_empty());
    let best = r.json(&["lineage", "list", "--filter", "metrics.auc>0.85"]);
    assert_eq!(best["runs"].as_array().unwrap().len(), 1);
    let on_v1 = r.json(&[
        "lineage",
        "list",
        "--filter",
        "input=data/clean",
        "--filter",
        "params.train.lr=0.1",
    ]);
    assert_eq!(on_v1["runs"][0]["tags"], json!(["baseline"]));
    assert_eq!(on_v1["runs"].as_array().unwrap().len(), 1);
    let table = r.ok(&["lineage", "list", "--sort", "auc"]).stdout;
    let rows: Vec<&str> = table.lines().collect();
    assert!(
        rows[0].starts_with("RUN") && rows[0].contains("auc") && rows[0].contains("eval.loss"),
        "{table}"
    );
    assert!(
        rows[1].contains("models/baseline/model.pt") && rows[1].contains("0.81"),
        "{table}"
    );
    assert!(
        rows[2].contains("models/large/model.pt") && rows[2].contains("0.86"),
        "{table}"
    );
    assert_eq!(rows.len(), 5);
}

#[test]
fn graph_holds_every_record_and_version_in_each_format() {
    let p = pipeline();
    let r = &p.repo;
    // graph: every record and version, in both formats
    let dot = r.ok(&["lineage", "graph", "--format", "dot"]).stdout;
    assert!(dot.starts_with("digraph lineage {"), "{dot}");
    assert_eq!(dot.matches("->").count(), 2 + 2 + 3 + 3);
    assert!(dot.contains(&format!("data/raw\\n{}", short(&p.raw1))));
    let mermaid = r.ok(&["lineage", "graph", "--format", "mermaid"]).stdout;
    assert!(
        mermaid.starts_with("flowchart LR") && mermaid.matches("-->").count() == 10,
        "{mermaid}"
    );
    let g = r.json(&["lineage", "graph"]);
    // 4 runs; raw, clean and params.yaml in two versions each, two models
    assert_eq!(g["nodes"].as_array().unwrap().len(), 4 + 8);
}

#[test]
fn verify_finds_every_output_matching_its_latest_record() {
    let p = pipeline();
    let r = &p.repo;
    // verify: everything available, every output matches its latest record
    let v = r.json(&["lineage", "verify"]);
    assert_eq!(v["ok"], json!(true));
    assert_eq!(v["records"], json!(4));
    let states: Vec<_> = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["state"].clone())
        .collect();
    assert_eq!(states, vec![json!("matches"); 3]);
}

#[test]
fn log_lists_the_commits_where_a_path_changed_with_their_records() {
    let p = pipeline();
    let r = &p.repo;
    // log: each commit where data/clean changed, with the records of that version
    let log = r.json(&["log", "data/clean"]);
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{log}");
    assert_eq!(entries[0]["message"], json!("clean data v2"));
    assert_eq!(entries[0]["change"], json!("modified"));
    assert_eq!(entries[0]["version"]["digest"], json!(p.clean2));
    assert_eq!(entries[0]["version"]["files"], json!(3));
    assert_eq!(entries[0]["author"], json!("Ada Lovelace"));
    let roles: Vec<_> = entries[0]["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].clone())
        .collect();
    assert_eq!(roles, [json!("output"), json!("input")]);
    assert_eq!(entries[1]["message"], json!("clean data v1"));
    assert_eq!(entries[1]["change"], json!("added"));
    assert_eq!(entries[1]["version"]["digest"], json!(p.clean1));
    let text = r.ok(&["log", "data/clean"]).stdout;
    assert!(
        text.contains("    clean data v2") && text.contains(&format!("modified {}", short(&p.clean2))),
        "{text}"
    );
    assert_eq!(
        r.json(&["log", "params.yaml"])["entries"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn diff_lists_files_added_modified_and_deleted_between_revisions() {
    let p = pipeline();
    let r = &p.repo;
    // diff: files added, modified, deleted between two revisions
    let d = r.json(&["diff", "v1.0", "HEAD", "data/clean"]);
    let paths = d["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0]["state"], json!("modified"));
    assert_eq!(paths[0]["added"], json!([{"path": "c.csv", "new_size": 4}]));
    assert_eq!(
        paths[0]["modified"],
        json!([{"path": "a.csv", "old_size": 8, "new_size": 12}])
    );
    assert_eq!(paths[0]["deleted"], json!([]));
    let all = r.json(&["diff", "v1.0", "HEAD"]);
    let states: Vec<_> = all["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["path"].clone(), p["state"].clone()))
        .collect();
    assert_eq!(
        states,
        [
            (json!("data/clean"), json!("modified")),
            (json!("data/raw"), json!("modified")),
            (json!("models/baseline/model.pt"), json!("added")),
            (json!("models/large/model.pt"), json!("added")),
        ]
    );
    let text = r.ok(&["diff", "v1.0", "HEAD", "data/clean"]).stdout;
    assert!(
        text.contains("data/clean: modified") && text.contains("added:    data/clean/c.csv (4 B)"),
        "{text}"
    );
}

#[test]
fn diff_and_verify_compare_a_revision_with_the_workspace() {
    let p = pipeline();
    let r = &p.repo;
    // a revision against the workspace
    std::fs::remove_file(r.path("data/clean/b.csv")).unwrap();
    let ws = r.json(&["diff", "data/clean"]);
    assert_eq!(ws["to"], json!("workspace"));
    assert_eq!(
        ws["paths"][0]["deleted"],
        json!([{"path": "b.csv", "old_size": 4}])
    );
    let ws1 = r.json(&["diff", "v1.0", "--", "data/clean"]);
    assert_eq!(ws1["paths"][0]["added"][0]["path"], json!("c.csv"));
    let v = r.json(&["lineage", "verify"]);
    let clean = v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["path"] == "data/clean")
        .unwrap()
        .clone();
    assert_eq!(clean["state"], json!("modified"));
    r.ok(&["checkout", "data/clean"]);
}

#[test]
fn lineage_diff_compares_two_records_and_two_revisions() {
    let p = pipeline();
    let r = &p.repo;
    let id_of = |target: &str| {
        r.json(&["lineage", "show", target])["produced_by"]["record"]["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    // two record ids, and two revisions paired by output
    let base_id = id_of("models/baseline/model.pt");
    let large_id = id_of("models/large/model.pt");
    let ld = r.json(&["lineage", "diff", &base_id[..8], &large_id[..8]]);
    let rows = ld["pairs"][0]["rows"].as_array().unwrap();
    let row = |name: &str| rows.iter().find(|r| r["name"] == name).unwrap().clone();
    assert_eq!(row("params.train.lr")["left"], json!(0.1));
    assert_eq!(row("params.train.lr")["right"], json!(0.05));
    assert_eq!(row("params.train.epochs")["changed"], json!(false));
    assert!((row("metrics.auc")["delta"].as_f64().unwrap() - 0.05).abs() < 1e-9);
    let by_rev = r.json(&["lineage", "diff", "v1.0", "exp"]);
    let pairs = by_rev["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 2, "{by_rev}");
    assert_eq!(pairs[0]["outputs"], json!(["data/clean"]));
    assert!(pairs[0]["left"]["id"].is_string() && pairs[0]["right"]["id"].is_string());
    assert_eq!(pairs[1]["outputs"], json!(["models/large/model.pt"]));
    assert!(pairs[1]["left"].is_null());
    let text = r.ok(&["lineage", "diff", &base_id[..8], &large_id[..8]]).stdout;
    assert!(
        text.lines().any(|l| l.contains("metrics.auc")
            && l.contains("0.81")
            && l.contains("0.86")
            && l.contains("+0.05")),
        "{text}"
    );
}

#[test]
fn missing_objects_and_changed_outputs_are_reported_by_verify() {
    let p = pipeline();
    let r = &p.repo;
    let obj = r.path(&format!(".mlv/cache/{}/{}", &p.base[..2], p.base));
    std::fs::remove_file(obj).unwrap();
    let out = r.fails(&["--json", "lineage", "verify"], 1);
    let v = out.json();
    let missing = v["unavailable"].as_array().unwrap();
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0]["artifact"]["path"], json!("models/baseline/model.pt"));
    assert!(out.stderr.contains("not available"), "{}", out.stderr);
    // a newer version added by hand: the pointer no longer matches the latest record
    r.write("data/clean/a.csv", "changed\n");
    r.ok(&["add", "data/clean"]);
    let text = r.fails(&["lineage", "verify"], 1).stdout;
    assert!(text.contains("data/clean: differs"), "{text}");
    assert!(text.contains("unavailable: models/baseline/model.pt"), "{text}");
}

#[test]
fn an_unreachable_remote_is_an_error_not_unavailable_data() {
    let p = pipeline();
    let r = &p.repo;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    r.ok(&["remote", "add", "origin", "s3://bucket/p", "--default"]);
    let endpoint = format!("http://127.0.0.1:{port}");
    for (k, v) in [
        ("endpoint", endpoint.as_str()),
        ("region", "us-east-1"),
        ("allow_http", "true"),
        ("retries", "0"),
        ("connect_timeout", "1"),
        ("timeout", "2"),
        ("access_key_id", "AKIDLINEAGETEST"),
    ] {
        r.ok(&["remote", "modify", "origin", k, v]);
    }
    r.ok(&[
        "remote",
        "modify",
        "origin",
        "secret_access_key",
        "not-a-secret-at-all",
        "--local",
    ]);
    let obj = r.path(&format!(".mlv/cache/{}/{}", &p.base[..2], p.base));
    std::fs::remove_file(obj).unwrap();
    // The cache lacks an object and the remote cannot be asked: that is an error, not a
    // version reported unavailable.
    let out = r.fails(&["--json", "lineage", "verify"], 1);
    let v = out.json();
    assert!(v.get("unavailable").is_none(), "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("unreachable"),
        "{v}\n{}",
        out.stderr
    );
    assert!(!out.stderr.contains("not available"), "{}", out.stderr);
}

fn small_repo() -> Repo {
    let r = Repo::new();
    r.write("in.txt", "input\n");
    r.git(&["add", "in.txt"]);
    r.commit("input");
    r
}

#[test]
fn corrupt_lines_are_named_and_other_records_stay_readable() {
    let r = small_repo();
    for (out, auc) in [("a.out", "0.5"), ("b.out", "0.7")] {
        r.ok(&[
            "run",
            "-i",
            "in.txt",
            "-o",
            out,
            "--metric",
            &format!("auc={auc}"),
            "--",
            "sh",
            "-c",
            &format!("echo {out} > {out}"),
        ]);
    }
    let mut lines = r.lineage_lines();
    lines[0] = lines[0].replace("0.5", "0.9");
    lines.push("{\"version\":1,\"broken".into());
    r.write(".mlv/lineage.jsonl", &format!("{}\n", lines.join("\n")));

    let out = r.fails(&["--json", "lineage", "list"], 1);
    let v = out.json();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert_eq!(v["runs"][0]["outputs"][0]["path"], json!("b.out"));
    assert_eq!(v["problems"][0]["line"], json!(1));
    assert_eq!(v["problems"][1]["line"], json!(3));
    assert!(
        out.stderr.contains(".mlv/lineage.jsonl line 1: record"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("does not match its content"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(".mlv/lineage.jsonl line 3: not valid JSON"),
        "{}",
        out.stderr
    );
    let text = r.fails(&["lineage", "list"], 1).stdout;
    assert!(text.contains("b.out") && !text.contains("a.out"), "{text}");
    let shown = r.fails(&["lineage", "show", "b.out"], 1);
    assert!(shown.stdout.contains("produced by run"), "{}", shown.stdout);
    let verify = r.fails(&["lineage", "verify"], 3);
    assert!(verify.stderr.contains("line 1"), "{}", verify.stderr);
    // recording still works (appending never rewrites lines), with a warning
    let rec = r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=1"]);
    assert!(
        rec.stderr.contains("warning: .mlv/lineage.jsonl line 1"),
        "{}",
        rec.stderr
    );
    assert_eq!(r.lineage_lines().len(), 4);
}

/// Whether process `pid` still exists (a zombie counts as gone).
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // the state is the field after the parenthesised command name
    stat.rsplit_once(") ")
        .is_some_and(|(_, rest)| !rest.starts_with('Z'))
}

fn wait_for_file(path: &std::path::Path) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            if s.ends_with('\n') {
                return s.trim().to_string();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn stopping_mlv_run_stops_the_command_and_records_nothing() {
    let r = small_repo();
    for sig in ["TERM", "INT", "HUP"] {
        let pid_file = r.path("child.pid");
        let _ = std::fs::remove_file(&pid_file);
        let child = r.spawn(&[
            "--json",
            "run",
            "-i",
            "in.txt",
            "-o",
            "out.txt",
            "--",
            "sh",
            "-c",
            "echo $$ > child.pid.tmp && mv child.pid.tmp child.pid && exec sleep 30",
        ]);
        let pid = wait_for_file(&pid_file);
        // sh has exec'd sleep once the file is there; wait until it is sleep
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
            assert!(
                std::time::Instant::now() < deadline,
                "the command never became sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let status = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let still_running = alive(&pid);
        if still_running {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
        }
        assert!(
            !still_running,
            "SIG{sig}: the command outlived mlv run; stderr:\n{stderr}"
        );
        assert_eq!(out.status.code(), Some(1), "SIG{sig}: {stderr}");
        assert!(
            stderr.contains(&format!("mlv run was stopped by SIG{sig}")),
            "SIG{sig}: {stderr}"
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["interrupted_by"], format!("SIG{sig}"), "{doc}");
        assert_eq!(doc["command_signal"], format!("SIG{sig}"), "{doc}");
        assert!(r.lineage_lines().is_empty());
        assert!(!r.exists("out.txt.mlv"));
    }
}

#[test]
fn stopping_mlv_run_on_a_terminal_stops_the_command() {
    // On a terminal the command shares mlv's process group (it keeps the terminal), so the
    // signal is passed on to it by pid. `script` gives mlv a terminal.
    let Ok(script) = which("script") else {
        eprintln!("skipped: no `script` command to run mlv on a terminal");
        return;
    };
    let r = small_repo();
    let line = format!(
        "{} run -o out.txt -- sh -c 'echo $$ > child.pid.tmp && mv child.pid.tmp child.pid && exec sleep 30'",
        env!("CARGO_BIN_EXE_mlv")
    );
    let term = r.spawn_program(&script, &["-qec", &line, "/dev/null"]);
    let pid = wait_for_file(&r.path("child.pid"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(
            std::time::Instant::now() < deadline,
            "the command never became sleep"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // mlv is sleep's parent; it shares its process group (the terminal's foreground)
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    let (mlv, group) = (fields[1].to_string(), fields[2].to_string());
    let mlv_stat = std::fs::read_to_string(format!("/proc/{mlv}/stat")).unwrap();
    let mlv_group = mlv_stat
        .rsplit_once(") ")
        .unwrap()
        .1
        .split(' ')
        .nth(2)
        .unwrap()
        .to_string();
    assert_eq!(
        group, mlv_group,
        "on a terminal the command stays in mlv's process group"
    );
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &mlv])
        .status()
        .unwrap()
        .success());
    let out = term.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let still_running = alive(&pid);
    if still_running {
        let _ = std::process::Command::new("kill").args(["-KILL", &pid]).status();
    }
    assert!(!still_running, "the command outlived mlv run:\n{text}");
    assert!(text.contains("mlv run was stopped by SIGTERM"), "{text}");
    assert!(r.lineage_lines().is_empty());
}

fn which(program: &str) -> Result<String, ()> {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .map(|d| format!("{d}/{program}"))
        .find(|p| std::path::Path::new(p).is_file())
        .ok_or(())
}

#[test]
fn a_failed_command_exits_1_naming_its_code_and_records_nothing() {
    let r = small_repo();
    let out = r.fails(
        &[
            "run",
            "-i",
            "in.txt",
            "-o",
            "out.txt",
            "--",
            "sh",
            "-c",
            "echo partial > out.txt; exit 7",
        ],
        1,
    );
    assert!(
        out.stderr
            .contains("the command exited with code 7; nothing was recorded"),
        "{}",
        out.stderr
    );
    // the command's codes never pose as mlv's own (3 integrity, 4 fsck problems, 5 busy)
    for code in ["3", "4", "5"] {
        let out = r.fails(
            &[
                "--json",
                "run",
                "-o",
                "out.txt",
                "--",
                "sh",
                "-c",
                &format!("exit {code}"),
            ],
            1,
        );
        let doc = out.json();
        assert_eq!(doc["exit_code"], 1, "{doc}");
        assert_eq!(doc["command_exit_code"], code.parse::<i64>().unwrap(), "{doc}");
        assert_eq!(doc["command_signal"], Value::Null, "{doc}");
    }
    // a command killed by a signal: named, still exit 1
    let out = r.fails(
        &[
            "--json",
            "run",
            "-o",
            "out.txt",
            "--",
            "sh",
            "-c",
            "kill -KILL $$",
        ],
        1,
    );
    assert_eq!(out.json()["command_signal"], "SIGKILL", "{}", out.stdout);
    assert!(out.stderr.contains("was killed by SIGKILL"), "{}", out.stderr);
    assert!(r.lineage_lines().is_empty());
    assert!(!r.exists("out.txt.mlv"));
    // a command that cannot start
    let out = r.fails(&["run", "-o", "out.txt", "--", "no-such-program-mlv"], 1);
    assert!(
        out.stderr.contains("cannot run `no-such-program-mlv`"),
        "{}",
        out.stderr
    );
    // succeeding without writing the declared output records nothing either
    let out = r.fails(&["run", "-o", "never.txt", "--", "true"], 1);
    assert!(out.stderr.contains("never.txt: no such file"), "{}", out.stderr);
    assert!(r.lineage_lines().is_empty());
    // the command's stdout is passed through, mlv's messages go to stderr
    let out = r.ok(&[
        "run",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "echo hello; echo x > out.txt",
    ]);
    assert_eq!(out.stdout, "hello\n");
    assert!(out.stderr.contains("recorded run"), "{}", out.stderr);
}

#[test]
fn bad_inputs_are_refused_with_the_path() {
    let r = small_repo();
    r.write("loose.txt", "not tracked\n");
    let cases: [(&[&str], &str); 6] = [
        (
            &["lineage", "record", "-i", "nope.txt", "-o", "x"],
            "nope.txt: no such file or directory",
        ),
        (
            &["lineage", "record", "-i", "loose.txt", "-o", "x"],
            "loose.txt: input is neither tracked by mlv nor a file tracked by git",
        ),
        (
            &["lineage", "record", "-i", "in.txt", "-o", "in.txt"],
            "in.txt: both an input and an output",
        ),
        (
            &["lineage", "show", "nope.txt"],
            "nope.txt: not tracked by mlv or git",
        ),
        (
            &["lineage", "uses", "0123456789abcdef"],
            "no lineage record mentions a digest starting with 0123456789abcdef",
        ),
        (
            &["lineage", "show", "in.txt", "--rev", "no-such-rev"],
            "no-such-rev: unknown git revision",
        ),
    ];
    for (args, message) in cases {
        let out = r.fails(args, 1);
        assert!(out.stderr.contains(message), "mlv {args:?}:\n{}", out.stderr);
        let hinted = message.contains("not tracked") || message.contains("neither");
        if hinted {
            assert!(out.stderr.contains("hint: "), "mlv {args:?}:\n{}", out.stderr);
        }
    }
    let out = r.fails(&["lineage", "show", "in.txt"], 1);
    assert!(out.stderr.contains("in.txt ("), "{}", out.stderr);
    assert!(
        out.stderr.contains("no lineage record produced this version"),
        "{}",
        out.stderr
    );
    // an mlv input modified in the workspace
    r.write("data/f.txt", "v1\n");
    r.ok(&["add", "data"]);
    r.write("data/f.txt", "v2\n");
    let out = r.fails(&["lineage", "record", "-i", "data", "-o", "x"], 1);
    assert!(
        out.stderr.contains("data: input is modified in the workspace"),
        "{}",
        out.stderr
    );
    let out = r.fails(&["lineage", "record", "-i", "data/f.txt", "-o", "x"], 1);
    assert!(
        out.stderr.contains("inside data, which mlv tracks as a whole"),
        "{}",
        out.stderr
    );
    let out = r.fails(&["lineage", "list", "--filter", "nonsense"], 1);
    assert!(out.stderr.contains("bad filter"), "{}", out.stderr);
    let out = r.fails(&["lineage", "record", "-i", "in.txt", "--metric", "auc=high"], 1);
    assert!(
        out.stderr.contains("--metric: metric `auc` is not a number"),
        "{}",
        out.stderr
    );
    assert!(r.lineage_lines().is_empty());
}

#[test]
fn metrics_files_must_parse_and_hold_numbers() {
    let r = small_repo();
    let out = r.fails(
        &[
            "run",
            "-i",
            "in.txt",
            "-o",
            "o.txt",
            "-m",
            "m.json",
            "--",
            "sh",
            "-c",
            "echo 1 > o.txt; printf '{\\n\"auc\": 0.9,\\n oops }' > m.json",
        ],
        1,
    );
    assert!(
        out.stderr.contains("m.json: cannot parse JSON") && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );
    assert!(r.lineage_lines().is_empty());
    r.write("m.json", "{\"auc\": 0.9, \"model\": \"xgb\"}");
    let out = r.fails(&["lineage", "record", "-i", "in.txt", "-m", "m.json"], 1);
    assert!(
        out.stderr.contains("m.json: metric `model` is not a number"),
        "{}",
        out.stderr
    );
    r.write("m.yaml", "auc: 0.9\nper_class:\n  cat: 0.8\n  dog: [0.7, 0.6]\n");
    r.write("p.toml", "[train]\nlr = 0.01\nlayers = [64, 32]\n");
    let v = r.json(&[
        "lineage",
        "record",
        "-i",
        "in.txt",
        "-m",
        "m.yaml",
        "-p",
        "p.toml",
        "--param",
        "train.lr=0.02",
        "--tag",
        "t",
    ]);
    assert_eq!(
        v["record"]["metrics"],
        json!({"auc": 0.9, "per_class.cat": 0.8, "per_class.dog.0": 0.7, "per_class.dog.1": 0.6})
    );
    assert_eq!(
        v["record"]["params"],
        json!({"train.layers": [64, 32], "train.lr": 0.02})
    );
    assert_eq!(v["record"]["outputs"], json!([]));
    assert_eq!(v["record"]["inputs"][0]["digest"].as_str().unwrap().len(), 64);
}

#[test]
fn records_note_a_dirty_work_tree_and_init_is_idempotent() {
    let r = small_repo();
    r.ok(&["init"]);
    assert_eq!(r.read(".gitattributes").matches("merge=union").count(), 2);
    // pointer files, .gitignore and the lineage file do not make the tree dirty
    let v = r.json(&[
        "run",
        "-i",
        "in.txt",
        "-o",
        "a.txt",
        "--",
        "sh",
        "-c",
        "echo a > a.txt",
    ]);
    assert_eq!(v["record"]["dirty"], json!(false));
    let head = r.git(&["rev-parse", "HEAD"]);
    assert_eq!(v["record"]["commit"], json!(head.trim()));
    assert_eq!(
        v["git_paths"],
        json!([".gitignore", "a.txt.mlv", ".mlv/lineage.jsonl"])
    );
    // a tracked file changed since the commit does
    r.write("in.txt", "changed\n");
    let v = r.json(&[
        "run",
        "-i",
        "in.txt",
        "-o",
        "b.txt",
        "--",
        "sh",
        "-c",
        "echo b > b.txt",
    ]);
    assert_eq!(v["record"]["dirty"], json!(true));
    let id = v["record"]["id"].as_str().unwrap();
    assert_eq!(id.len(), 64);
}
