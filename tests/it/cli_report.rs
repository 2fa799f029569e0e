//! `mlv report`: the self-contained audit page. The structure and the escaping are checked on
//! the HTML itself; `page_works_in_a_headless_browser` loads the pages in Debian's chromium.

use std::path::Path;

use crate::common::Env;

const BLOB_OPEN: &str = r#"<script type="application/json" id="mlv-data">"#;

/// What no page may contain outside its data: the pieces of the hostile strings that would
/// run script or close an element.
const HOSTILE: [&str; 4] = [
    "</script><script>window.__pwned=1;alert(1)</script>",
    "\"><img src=x onerror=\"window.__pwned=1\">",
    "it's \"quoted\"\nnew\tline \u{2028} ünïcødé 模型 🚀",
    "<!-- <script>window.__pwned=1</script>",
];

/// The page split into (the HTML around the data, the data as JSON).
fn split(page: &str) -> (String, serde_json::Value) {
    let start = page.find(BLOB_OPEN).expect("the data element") + BLOB_OPEN.len();
    let len = page[start..].find("</script>").expect("the data element ends");
    let blob = &page[start..start + len];
    assert!(!blob.contains('<'), "no `<` inside the data: {blob}");
    let data = serde_json::from_str(blob).expect("the data is JSON");
    let rest = format!("{}{}", &page[..start], &page[start + len..]);
    (rest, data)
}

/// Checks what every page must be: one document, no network, the data once.
fn check_page(page: &str) -> (String, serde_json::Value) {
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    let (rest, data) = split(page);
    assert_eq!(data["format"], 1);
    assert_eq!(
        rest.matches("<script").count(),
        2,
        "the data and the page's own code only"
    );
    for external in [
        "src=",
        "<link",
        "<img",
        "<iframe",
        "url(",
        "@import",
        "fetch(",
        "XMLHttpRequest",
        "innerHTML",
    ] {
        assert!(!rest.contains(external), "nothing external or unsafe: {external}");
    }
    for h in HOSTILE {
        assert!(!rest.contains(h), "no data outside the blob");
    }
    assert!(!rest.contains("__pwned"));
    (rest, data)
}

fn report(env: &Env, out: &str) -> String {
    env.mlv(&["report", "-o", out]).ok();
    env.read_str(out)
}

/// A model trained by two recorded runs (prepare, then train with metrics), registered twice
/// with different metrics, and promoted.
fn trained(env: &Env, names: &[&str; 3]) {
    let [metric, cmd_arg, message] = names;
    env.write("data/raw.csv", "1,2\n3,4\n");
    env.mlv(&["add", "data/raw.csv"]).ok();
    env.mlv(&[
        "run",
        "-i",
        "data/raw.csv",
        "-o",
        "data/clean.csv",
        "--",
        "sh",
        "-c",
        "cp data/raw.csv data/clean.csv # $0",
        cmd_arg,
    ])
    .ok();
    for (i, acc) in ["0.81", "0.86"].iter().enumerate() {
        env.write(
            "metrics.json",
            format!(
                "{{\"acc\": {acc}, {}: {i}}}",
                serde_json::to_string(metric).unwrap()
            ),
        );
        env.mlv(&[
            "run",
            "-i",
            "data/clean.csv",
            "-o",
            "models/churn.pkl",
            "-m",
            "metrics.json",
            "--",
            "sh",
            "-c",
            &format!("mkdir -p models && echo {acc} > models/churn.pkl"),
        ])
        .ok();
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", "train"]);
        env.mlv(&["model", "register", "churn", "models/churn.pkl", "-m", message])
            .ok();
    }
    env.mlv(&["model", "promote", "churn", "0.0.2", "production", "-m", message])
        .ok();
}

#[test]
fn report_for_no_models() {
    let env = Env::new();
    let page = report(&env, "mlv-report.html");
    let (_, data) = check_page(&page);
    assert_eq!(data["models"], serde_json::json!([]));
    assert_eq!(data["records"], serde_json::json!({}));
    // the default name, and stdout
    env.mlv(&["report"]).ok();
    assert!(env.exists("mlv-report.html"));
    let out = env.mlv(&["report", "-o", "-"]).ok();
    check_page(&out.stdout);
    env.mlv(&["report", "-o", "-", "--json"])
        .fails(1)
        .stderr_has("stdout");
    // a directory receives the default name; outside a repository: a clear refusal
    env.mkdir("audit");
    let j = env.mlv(&["report", "-o", "audit", "--json"]).ok().json();
    assert_eq!(j["out"], "audit/mlv-report.html");
    check_page(&env.read_str("audit/mlv-report.html"));
    let outside = Env::empty();
    std::fs::create_dir(&outside.root).unwrap();
    outside
        .mlv(&["report"])
        .fails(1)
        .stderr_has("not inside a git work tree");
    assert!(!outside.exists("mlv-report.html"));
}

#[test]
fn report_for_one_model_has_registry_lineage_and_metrics() {
    let env = Env::new();
    trained(&env, &["f1", "x", "first"]);
    let j = env.mlv(&["report", "-o", "out/audit.html", "--json"]).ok().json();
    assert_eq!(j["out"], "out/audit.html");
    assert_eq!(j["models"], 1);
    assert_eq!(j["versions"], 2);
    assert_eq!(j["records"], 3, "prepare and the two training runs");
    let page = env.read_str("out/audit.html");
    assert_eq!(j["bytes"], page.len());
    let (_, data) = check_page(&page);
    let m = &data["models"][0];
    assert_eq!(m["name"], "churn");
    assert_eq!(m["latest"], "v0.0.2");
    assert_eq!(m["stages"]["production"], "v0.0.2");
    assert_eq!(m["history"][0]["stage"], "production");
    let v = &m["versions"];
    assert_eq!(v[0]["version"], "v0.0.1");
    assert_eq!(v[1]["stages"], serde_json::json!(["production"]));
    assert_eq!(v[1]["registered_by"]["name"], "Test Committer");
    assert_eq!(v[0]["metrics"]["acc"].as_f64(), Some(0.81));
    assert_eq!(v[1]["metrics"]["acc"].as_f64(), Some(0.86));
    // the graph: model <- train <- clean.csv <- prepare <- raw.csv
    let records = &data["records"];
    let train = &records[v[1]["run"].as_str().unwrap()];
    assert_eq!(train["outputs"][0]["path"], "models/churn.pkl");
    assert_eq!(train["signature"], "unsigned");
    assert_eq!(train["author"]["name"], "Test Author");
    let input = &train["inputs"][0];
    assert_eq!(input["path"], "data/clean.csv");
    let prepare = &records[input["produced_by"].as_str().unwrap()];
    assert_eq!(prepare["inputs"][0]["path"], "data/raw.csv");
    assert_eq!(prepare["inputs"][0]["produced_by"], serde_json::Value::Null);
}

/// A repository with 200 models (one version each).
fn many_repo() -> Env {
    let env = Env::new();
    env.write("models/m.pkl", "m");
    env.mlv(&["add", "models/m.pkl"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "m"]);
    env.command(
        "sh",
        &[
            "-c",
            "for i in $(seq 1 200); do mlv model register m$i models/m.pkl >/dev/null || exit 1; done",
        ],
    )
    .run()
    .ok();
    env
}

#[test]
fn report_for_200_models_stays_one_small_page() {
    let env = many_repo();
    let page = report(&env, "r.html");
    let (_, data) = check_page(&page);
    let models = data["models"].as_array().unwrap();
    assert_eq!(models.len(), 200);
    assert!(models.iter().any(|m| m["name"] == "m200"));
    // per-model sections are built on demand, so the page is the data plus a fixed script
    assert!(page.len() < 200 * 1200, "{} bytes", page.len());
}

/// Paths that would inject markup (mlv accepts them: they are valid file names).
const HOSTILE_IN: &str =
    "p/</script><script>window.__pwned=1</script>\"><img src=x onerror=\"window.__pwned=1\">.txt";
const HOSTILE_OUT: &str = "q/\"><img src=x onerror=\"window.__pwned=1\">.csv";

/// A repository with hostile strings everywhere a user can put them: paths, a prepare run's
/// command, then one model per hostile string, trained from the prepared data by a run with
/// that string as metric name, param value, command argument, author, tagger and tag message.
fn hostile_repo() -> Env {
    let env = Env::new();
    env.write(HOSTILE_IN, HOSTILE[1]);
    env.mlv(&["add", HOSTILE_IN]).ok();
    env.mlv(&[
        "run",
        "-i",
        HOSTILE_IN,
        "-o",
        HOSTILE_OUT,
        "--",
        "sh",
        "-c",
        "mkdir -p q && cp \"$1\" \"$2\" # $0",
        HOSTILE[0],
        HOSTILE_IN,
        HOSTILE_OUT,
    ])
    .ok();
    for (i, h) in HOSTILE.iter().enumerate() {
        let who = [("GIT_AUTHOR_NAME", *h), ("GIT_COMMITTER_NAME", *h)];
        env.write(
            "metrics.json",
            format!("{{{}: 1, \"acc\": 0.{i}}}", serde_json::to_string(h).unwrap()),
        );
        let model = format!("models/m{i}.pkl");
        env.mlv_env(
            &who,
            &[
                "run",
                "-i",
                HOSTILE_OUT,
                "-o",
                &model,
                "-m",
                "metrics.json",
                "--param",
                &format!("p={h}"),
                "--",
                "sh",
                "-c",
                &format!("mkdir -p models && echo {i} > {model} # $0"),
                h,
            ],
        )
        .ok();
        env.git(&["add", "-A"]);
        env.git(&["commit", "-qm", "m"]);
        let name = format!("m{i}");
        env.mlv_env(&who, &["model", "register", &name, &model, "-m", h])
            .ok();
        env.mlv_env(&who, &["model", "promote", &name, "0.0.1", "prod", "-m", h])
            .ok();
    }
    env
}

#[test]
fn hostile_strings_stay_inside_the_data() {
    let env = hostile_repo();
    let page = report(&env, "hostile.html");
    let (rest, data) = check_page(&page);
    for p in [HOSTILE_IN, HOSTILE_OUT] {
        assert!(!rest.contains(p));
    }
    let text = data.to_string();
    for h in HOSTILE.iter().chain(&[HOSTILE_IN, HOSTILE_OUT]) {
        // every hostile string made it into the data, intact
        let as_json = serde_json::to_string(h).unwrap();
        assert!(text.contains(as_json.trim_matches('"')), "{h:?} is in the data");
    }
    let models = data["models"].as_array().unwrap();
    assert_eq!(models.len(), HOSTILE.len());
    let v = &models[0]["versions"][0];
    assert_eq!(v["message"], HOSTILE[0]);
    // git drops `<` and `>` from a tagger's name; the rest arrives
    assert!(v["registered_by"]["name"]
        .as_str()
        .unwrap()
        .contains("window.__pwned=1;alert(1)"));
    let run = &data["records"][v["run"].as_str().unwrap()];
    assert_eq!(run["author"]["name"], HOSTILE[0]);
    assert_eq!(run["command"][3], HOSTILE[0]);
    assert_eq!(run["inputs"][0]["path"], HOSTILE_OUT);
    assert!(run["metrics"].get(HOSTILE[0]).is_some());
    let prepare = &data["records"][run["inputs"][0]["produced_by"].as_str().unwrap()];
    assert_eq!(prepare["inputs"][0]["path"], HOSTILE_IN);
}

/// The pages the browser test loads: (file name, what it checks).
fn browser_pages(env: &Env) -> Vec<(String, &'static str)> {
    trained(env, &["f1", "x", "first"]);
    let good = env.path("good.html");
    env.mlv(&["report", "-o", "good.html"]).ok();
    let empty = Env::new();
    empty.mlv(&["report", "-o", "empty.html"]).ok();
    vec![
        (good.display().to_string(), "full"),
        (empty.path("empty.html").display().to_string(), "empty"),
    ]
}

#[test]
fn page_works_in_a_headless_browser() {
    let Some(chromium) = crate::support::chromium() else {
        return;
    };
    let env = Env::new();
    let mut pages = browser_pages(&env);
    // hostile strings everywhere they can go
    let hostile = hostile_repo();
    hostile.mlv(&["report", "-o", "hostile.html"]).ok();
    pages.push((hostile.path("hostile.html").display().to_string(), "full"));
    let many = many_repo();
    many.mlv(&["report", "-o", "many.html"]).ok();
    pages.push((many.path("many.html").display().to_string(), "many"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/support/cdp_check.py");
    let mut args = vec![script.display().to_string(), chromium.display().to_string()];
    for (p, kind) in &pages {
        args.push(format!("{kind}:{p}"));
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.command("python3", &args).run();
    assert_eq!(out.code, Some(0), "{out}");
    let results: serde_json::Value = serde_json::from_str(&out.stdout).expect("the checker's JSON");
    for (r, (page, kind)) in results.as_array().unwrap().iter().zip(&pages) {
        let ctx = format!("{page}: {r}");
        assert_eq!(
            r["errors"],
            serde_json::json!([]),
            "no console errors or exceptions: {ctx}"
        );
        assert_eq!(r["dialogs"], serde_json::json!([]), "no dialogs: {ctx}");
        assert_eq!(r["pwned"], "undefined", "no injected script ran: {ctx}");
        if *kind == "full" {
            assert!(
                r["graph_area"].as_f64().unwrap() > 0.0,
                "the graph is visible: {ctx}"
            );
            assert!(
                r["chart_area"].as_f64().unwrap() > 0.0,
                "a chart is visible: {ctx}"
            );
            assert_eq!(
                r["link_hash_changed"], true,
                "clicking a node link moves the hash: {ctx}"
            );
            assert_eq!(
                r["target_is_run"], true,
                "to the run that produced the input: {ctx}"
            );
        } else if *kind == "many" {
            assert_eq!(r["models"], 200, "{ctx}");
            assert_eq!(r["filter_m19x"], 11, "m19 and m190..m199 match the filter: {ctx}");
        } else {
            assert_eq!(r["models"], 0, "{ctx}");
        }
    }
    assert_eq!(results.as_array().unwrap().len(), pages.len());
}

#[test]
fn signature_status_is_checked_when_git_names_the_allowed_signers() {
    let env = Env::new();
    let key = env.path("../key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "k", "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen (openssh-client)");
    assert!(out.status.success());
    env.git(&["config", "gpg.format", "ssh"]);
    env.git(&["config", "user.signingkey", &key.display().to_string()]);
    env.write("in.txt", "x");
    env.mlv(&["add", "in.txt"]).ok();
    let run = |out: &str, sign: bool| {
        let mut args = vec!["run", "-i", "in.txt", "-o", out];
        if sign {
            args.push("--sign");
        }
        args.extend(["--", "sh", "-c", "mkdir -p models && cp in.txt \"$0\"", out]);
        env.mlv(&args).ok();
    };
    run("models/signed.pkl", true);
    run("models/plain.pkl", false);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "m"]);
    env.mlv(&["model", "register", "signed", "models/signed.pkl"])
        .ok();
    env.mlv(&["model", "register", "plain", "models/plain.pkl"]).ok();
    let states = |page: &str| -> Vec<(String, String)> {
        let (_, data) = check_page(page);
        data["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let run = m["versions"][0]["run"].as_str().unwrap();
                let state = data["records"][run]["signature"].as_str().unwrap();
                (m["name"].as_str().unwrap().to_string(), state.to_string())
            })
            .collect()
    };
    // no allowed signers file: a signature is shown, not judged
    let page = report(&env, "a.html");
    assert_eq!(
        states(&page),
        [
            ("plain".into(), "unsigned".into()),
            ("signed".into(), "signed".into())
        ]
    );
    assert_eq!(split(&page).1["allowed_signers"], serde_json::Value::Null);
    // an allowed signers file without this key, then with it
    let public = std::fs::read_to_string(env.path("../key.pub")).unwrap();
    let allowed = env.path("../allowed");
    std::fs::write(&allowed, "someone@example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDdF8dzmUXnX5ZbYb0PLm1PaQ7cBfbWZcQ0ZMuQqNoOe\n").unwrap();
    env.git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        &allowed.display().to_string(),
    ]);
    let page = report(&env, "b.html");
    assert_eq!(states(&page)[1], ("signed".into(), "unknown_key".into()));
    assert_eq!(split(&page).1["allowed_signers"], allowed.display().to_string());
    std::fs::write(&allowed, format!("author@example.com {public}")).unwrap();
    assert_eq!(
        states(&report(&env, "c.html"))[1],
        ("signed".into(), "good".into())
    );
}
