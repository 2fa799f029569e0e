//! Pipelines: stages in mlv.toml, `mlv stage add/list`, `mlv run --name` and `mlv repro`.
//! Each stage's command appends its name to runs.log (outside the outputs) so the tests count
//! exactly which stages ran.

use crate::common::lineage::Repo;

/// `sh -c` text of a stage that logs its name, then writes `out` from `inputs`.
fn script(name: &str, inputs: &str, out: &str) -> String {
    format!("echo {name} >> runs.log && rm -rf {out} && mkdir -p $(dirname {out}) && cat {inputs} > {out}")
}

fn stage(name: &str, inputs: &[&str], reads: &str, out: &str, extra: &str) -> String {
    let list = |v: &[&str]| v.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    format!(
        "[stage.{name}]\ncmd = [\"sh\", \"-c\", {:?}]\ninputs = [{}]\noutputs = [{out:?}]\n{extra}\n",
        script(name, reads, out),
        list(inputs)
    )
}

/// Takes (and clears) the names of the stages that ran.
fn runs(repo: &Repo) -> Vec<String> {
    let text = std::fs::read_to_string(repo.path("runs.log")).unwrap_or_default();
    let _ = std::fs::remove_file(repo.path("runs.log"));
    text.lines().map(str::to_string).collect()
}

/// raw -> prepare -> data/clean -> train (params.yaml) -> models/model.bin
fn two_stage() -> Repo {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.write("params.yaml", "train:\n  lr: 0.1\n");
    repo.ok(&["add", "data/raw"]);
    let toml = format!(
        "# the pipeline\n{}{}",
        stage("prepare", &["data/raw"], "data/raw/*", "data/clean/all.csv", "")
            .replace("outputs = [\"data/clean/all.csv\"]", "outputs = [\"data/clean\"]"),
        stage(
            "train",
            &["data/clean"],
            "data/clean/all.csv params.yaml",
            "models/model.bin",
            "params = [\"params.yaml\"]"
        )
    );
    repo.write("mlv.toml", &toml);
    repo.commit("pipeline");
    repo
}

#[test]
fn two_stages_run_once_then_only_what_changed() {
    let repo = two_stage();
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["prepare", "train"]);
    let lines = repo.lineage_lines();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("\"stage\":\"prepare\""), "{}", lines[0]);

    // nothing changed: nothing runs, nothing is recorded
    let out = repo.ok(&["repro"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
    assert!(
        out.stderr.contains("stage train didn't change, skipping"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.lineage_lines().len(), 2);

    // a param: train only
    repo.write("params.yaml", "train:\n  lr: 0.2\n");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["train"]);

    // new raw data: prepare, then train (its input changed)
    repo.write("data/raw/b.csv", "2\n");
    repo.ok(&["add", "data/raw"]);
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["prepare", "train"]);

    // an edited command re-runs that stage
    let text = repo.read("mlv.toml").replace("echo train", "echo  train");
    repo.write("mlv.toml", &text);
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["train"]);

    // an output deleted by hand: restored from the run cache (the same run), or with
    // --no-run-cache run again
    std::fs::remove_file(repo.path("models/model.bin")).unwrap();
    repo.ok(&["repro"])
        .stderr_has("stage train: restored from the run cache (run ");
    assert_eq!(runs(&repo), Vec::<String>::new());
    assert!(repo.exists("models/model.bin"));
    std::fs::remove_file(repo.path("models/model.bin")).unwrap();
    repo.ok(&["repro", "--no-run-cache"]);
    assert_eq!(runs(&repo), ["train"]);
    assert!(repo.exists("models/model.bin"));

    // --force runs everything; -s only the named stage
    repo.ok(&["repro", "--force"]);
    assert_eq!(runs(&repo), ["prepare", "train"]);
    repo.ok(&["repro", "--force", "-s", "train"]);
    assert_eq!(runs(&repo), ["train"]);
    repo.ok(&["repro", "--force", "train"]);
    assert_eq!(runs(&repo), ["prepare", "train"]);

    // raw data edited without `mlv add`: refused, as `mlv run` refuses it
    repo.write("data/raw/a.csv", "edited\n");
    repo.fails(&["repro"], 1)
        .stderr_has("error: data/raw: input is modified in the workspace");
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn dry_run_says_what_and_why() {
    let repo = two_stage();
    let out = repo.ok(&["repro", "--dry-run"]);
    assert_eq!(
        out.stdout,
        "would run prepare: never run\nwould run train: upstream stage prepare runs first\n"
    );
    assert_eq!(runs(&repo), Vec::<String>::new());
    repo.ok(&["repro"]);
    runs(&repo);
    repo.write("params.yaml", "train:\n  lr: 0.2\n");
    let out = repo.ok(&["repro", "--dry-run"]);
    assert_eq!(
        out.stdout,
        "up to date prepare\nwould run train: param train.lr changed: 0.1 -> 0.2\n"
    );
    let old = repo.digest("data/raw");
    repo.write("data/raw/b.csv", "2\n");
    repo.ok(&["add", "data/raw"]);
    let new = repo.digest("data/raw");
    let out = repo.ok(&["repro", "--dry-run", "prepare"]);
    assert_eq!(
        out.stdout,
        format!(
            "would run prepare: input data/raw changed: {} -> {}\n",
            &old[..12],
            &new[..12]
        )
    );
    let json = repo.json(&["repro", "--dry-run"]);
    assert_eq!(json["stages"][0]["status"], "would_run");
    assert_eq!(json["stages"][0]["reasons"][0]["why"], "input_changed");
    assert_eq!(json["stages"][0]["reasons"][0]["old"], old.as_str());
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn diamond_reruns_only_the_changed_branch_and_below() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.write("pb.yaml", "k: 1\n");
    repo.ok(&["add", "data/raw"]);
    let toml = [
        stage("a", &["data/raw"], "data/raw/*", "mid/a", ""),
        stage(
            "b",
            &["mid/a"],
            "mid/a pb.yaml",
            "mid/b",
            "params = [\"pb.yaml\"]",
        ),
        stage("c", &["mid/a"], "mid/a", "mid/c", ""),
        stage("d", &["mid/b", "mid/c"], "mid/b mid/c", "out/d", ""),
    ]
    .concat();
    repo.write("mlv.toml", &toml);
    repo.commit("diamond");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["a", "b", "c", "d"]);
    let list = repo.ok(&["stage", "list"]);
    assert_eq!(
        list.stdout
            .lines()
            .map(|l| l.split(':').next().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b", "c", "d"]
    );
    assert!(list.stdout.contains("(after b, c)"), "{}", list.stdout);
    repo.write("pb.yaml", "k: 2\n");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["b", "d"]);
    repo.ok(&["repro", "d"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn a_failing_stage_stops_its_dependants() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.ok(&["add", "data/raw"]);
    let toml = [
        stage("a", &["data/raw"], "data/raw/*", "mid/a", ""),
        "[stage.b]\ncmd = [\"sh\", \"-c\", \"echo b >> runs.log; exit 3\"]\ninputs = [\"mid/a\"]\noutputs = [\"mid/b\"]\n"
            .to_string(),
        stage("c", &["mid/b"], "mid/b", "mid/c", ""),
        stage("z", &["data/raw"], "data/raw/*", "mid/z", ""),
    ]
    .concat();
    repo.write("mlv.toml", &toml);
    repo.commit("failing");
    let out = repo.fails(&["repro"], 1);
    assert_eq!(runs(&repo), ["a", "b"]);
    assert!(
        out.stderr
            .contains("stage b: the command exited with code 3; nothing was recorded"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("stage c not run: stage b failed"),
        "{}",
        out.stderr
    );
    assert!(!repo.lineage_lines().iter().any(|l| l.contains("\"stage\":\"b\"")));

    let out = repo.mlv(&["--json", "repro", "--keep-going"]).fails(1);
    assert_eq!(runs(&repo), ["b", "z"]);
    let json = out.json();
    assert_eq!(json["command_exit_code"], 3);
    let statuses: Vec<_> = json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            format!(
                "{}={}",
                s["stage"].as_str().unwrap(),
                s["status"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(statuses, ["a=up_to_date", "b=failed", "c=skipped", "z=ran"]);
}

#[test]
fn bad_pipelines_are_refused_clearly() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.ok(&["add", "data/raw"]);
    let cases: [(String, &str); 8] = [
        (
            [
                stage("x", &["m1"], "m1", "m2", ""),
                stage("y", &["m2"], "m2", "m1", ""),
            ]
            .concat(),
            "error: the stages form a cycle: x -> y -> x",
        ),
        (
            [
                stage("x", &["data/raw"], "data/raw/*", "m", ""),
                stage("y", &["data/raw"], "data/raw/*", "m", ""),
            ]
            .concat(),
            "error: stages x and y both write m",
        ),
        (
            stage("x", &["data/raw"], "data/raw/*", "data/raw/out", ""),
            "error: stage x: output data/raw/out overlaps its input data/raw",
        ),
        (
            stage("x", &["data/raw"], "data/raw/*", "../escape", ""),
            "error: stage x: \"../escape\" is outside the repository",
        ),
        (
            stage("x", &["/etc/passwd"], "data/raw/*", "m", ""),
            "error: stage x: \"/etc/passwd\" is outside the repository",
        ),
        (
            stage("x", &["data/nothing"], "data/raw/*", "m", ""),
            "error: stage x: input data/nothing does not exist and no stage writes it",
        ),
        (
            "# a comment\n[stage.x]\ncmd = [\"true\"]\noutputs = [\"m\"\n".to_string(),
            "error: mlv.toml:4: ",
        ),
        (
            "[stage.x]\ncmd = [\"true\"]\n\noutput = [\"m\"]\n".to_string(),
            "error: mlv.toml:4: unknown field `output`",
        ),
    ];
    for (toml, message) in cases {
        repo.write("mlv.toml", &toml);
        let out = repo.fails(&["repro"], 1);
        assert!(out.stderr.starts_with(message), "{toml}\n{}", out.stderr);
        assert!(out.stderr.contains("hint: "), "{}", out.stderr);
        assert_eq!(runs(&repo), Vec::<String>::new());
    }
    repo.write("mlv.toml", "[stage.\"a b\"]\ncmd = [\"true\"]\n");
    repo.fails(&["stage", "list"], 1)
        .stderr_has("error: `a b`: bad stage name");
    repo.write("mlv.toml", "");
    repo.fails(&["repro", "nope"], 1)
        .stderr_has("error: no stage named nope in mlv.toml");
}

#[test]
fn stage_add_and_run_name_save_stages_keeping_comments() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.write("params.yaml", "lr: 1\n");
    repo.ok(&["add", "data/raw"]);
    repo.commit("data");
    repo.write(
        "mlv.toml",
        "# keep me\n[stage.other]\ncmd = [\"true\"] # and me\n",
    );
    let prep = script("prepare", "data/raw/*", "data/clean/all.csv");
    let out = repo.ok(&[
        "run",
        "--name",
        "prepare",
        "-i",
        "data/raw",
        "-o",
        "data/clean",
        "--",
        "sh",
        "-c",
        &prep,
    ]);
    assert!(
        out.stderr.contains("saved stage prepare in mlv.toml"),
        "{}",
        out.stderr
    );
    assert_eq!(runs(&repo), ["prepare"]);
    assert!(repo.lineage_lines()[0].contains("\"stage\":\"prepare\""));
    let train = script("train", "data/clean/all.csv", "model.bin");
    repo.ok(&[
        "stage",
        "add",
        "train",
        "-i",
        "data/clean",
        "-p",
        "params.yaml",
        "-o",
        "model.bin",
        "--",
        "sh",
        "-c",
        &train,
    ]);
    assert_eq!(runs(&repo), Vec::<String>::new());
    repo.fails(&["stage", "add", "train", "--", "true"], 1)
        .stderr_has("error: stage train already exists in mlv.toml");
    let text = repo.read("mlv.toml");
    assert!(
        text.starts_with("# keep me\n[stage.other]\ncmd = [\"true\"] # and me\n"),
        "{text}"
    );
    let json = repo.json(&["stage", "list"]);
    let names: Vec<_> = json["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other", "prepare", "train"]);
    assert_eq!(json["stages"][2]["after"][0], "prepare");
    // prepare ran with `run --name`: only train (and `other`, never run) run now
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["train"]);
    // a two-writers definition is refused before the command runs
    repo.fails(
        &[
            "run",
            "--name",
            "again",
            "-i",
            "data/raw",
            "-o",
            "data/clean",
            "--",
            "sh",
            "-c",
            &prep,
        ],
        1,
    )
    .stderr_has("both write data/clean");
    assert_eq!(runs(&repo), Vec::<String>::new());
}
