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
    // no mlv.toml: nothing to do, and mlv says how to start
    repo.ok(&["repro"])
        .stderr_has("no pipeline stages in mlv.toml: define one with `mlv stage add` or `mlv run --name`");
    let cases: [(String, &str); 10] = [
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
            stage("x", &["data/raw"], "data/raw/*", "m", "wdir = \"../up\""),
            "error: stage x: \"../up\" is outside the repository",
        ),
        (
            stage(
                "x",
                &["data/raw"],
                "data/raw/*",
                "m",
                "params = [\"../p.yaml:a\"]",
            ),
            "error: stage x: \"../p.yaml\" is outside the repository",
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

#[test]
fn params_keys_rerun_a_stage_only_when_their_values_change() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 3\nother:\n  x: 1\n");
    repo.ok(&["add", "data/raw"]);
    repo.write(
        "mlv.toml",
        &stage(
            "train",
            &["data/raw"],
            "data/raw/*",
            "model.bin",
            "params = [\"params.yaml:train.lr\"]",
        ),
    );
    repo.commit("pipeline");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["train"]);
    let lines = repo.lineage_lines();
    assert!(lines[0].contains("\"params\":{\"train.lr\":0.1}"), "{}", lines[0]);
    // another key of the file, or an unchosen one of the same section: nothing runs
    repo.write("params.yaml", "train:\n  lr: 0.1\n  epochs: 9\nother:\n  x: 2\n");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
    // the chosen key
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 9\nother:\n  x: 2\n");
    let out = repo.ok(&["repro", "--dry-run"]);
    assert_eq!(
        out.stdout,
        "would run train: param train.lr changed: 0.1 -> 0.2\n"
    );
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["train"]);
    // a key the file lacks: refused naming stage, file and key, before anything runs
    let text = repo
        .read("mlv.toml")
        .replace("params.yaml:train.lr", "params.yaml:train.nope");
    repo.write("mlv.toml", &text);
    for args in [&["repro"][..], &["repro", "--force"][..]] {
        let out = repo.fails(args, 1);
        assert!(
            out.stderr
                .starts_with("error: stage train: params.yaml has no params key `train.nope`\n"),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    }
    assert_eq!(runs(&repo), Vec::<String>::new());
    let out = repo.ok(&["status"]);
    assert!(
        out.stdout
            .contains("  train: cannot tell: stage train: params.yaml has no params key `train.nope`"),
        "{}",
        out.stdout
    );

    // `run --name` and `stage add` take FILE:KEYS and save them as given
    let text = repo
        .read("mlv.toml")
        .replace("params.yaml:train.nope", "params.yaml:train.lr");
    repo.write("mlv.toml", &text);
    let prep = script("sect", "data/raw/*", "sect.bin");
    repo.ok(&[
        "run",
        "--name",
        "sect",
        "-i",
        "data/raw",
        "-p",
        "params.yaml:train",
        "-o",
        "sect.bin",
        "--",
        "sh",
        "-c",
        &prep,
    ]);
    assert_eq!(runs(&repo), ["sect"]);
    repo.ok(&[
        "stage",
        "add",
        "epochs",
        "-p",
        "params.yaml:train.epochs,other.x",
        "-o",
        "e.bin",
        "--",
        "sh",
        "-c",
        "echo epochs >> runs.log && echo e > e.bin",
    ]);
    // a key the file lacks is refused before anything is saved or run
    let before = repo.read("mlv.toml");
    repo.fails(
        &["stage", "add", "bad", "-p", "params.yaml:nope", "--", "true"],
        1,
    )
    .stderr_has("error: params.yaml: no params key `nope`");
    repo.fails(
        &[
            "run",
            "--name",
            "bad",
            "-p",
            "params.yaml:nope",
            "-o",
            "b.bin",
            "--",
            "sh",
            "-c",
            "echo bad >> runs.log",
        ],
        1,
    )
    .stderr_has("error: params.yaml: no params key `nope`");
    assert_eq!(repo.read("mlv.toml"), before);
    assert_eq!(runs(&repo), Vec::<String>::new());
    let text = repo.read("mlv.toml");
    assert!(text.contains("params = [\"params.yaml:train\"]"), "{text}");
    assert!(
        text.contains("params = [\"params.yaml:train.epochs,other.x\"]"),
        "{text}"
    );
    let json = repo.json(&["stage", "list"]);
    let epochs = &json["stages"][0];
    assert_eq!(epochs["name"], "epochs");
    assert_eq!(epochs["params"][0], "params.yaml:train.epochs,other.x");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["epochs"]);
    // sect chose the whole train section: epochs is in it
    repo.write("params.yaml", "train:\n  lr: 0.2\n  epochs: 10\nother:\n  x: 2\n");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["epochs", "sect"]);
}

#[test]
fn wdir_is_recorded_when_not_the_root_and_a_change_reruns() {
    let repo = Repo::new();
    repo.write("data/raw/a.csv", "1\n");
    repo.write("sub/keep", "");
    repo.ok(&["add", "data/raw"]);
    // runs the same from either directory
    let root = repo.path("");
    let cmd = format!(
        "cd {} && echo w >> runs.log && cat data/raw/* > out.bin",
        root.display()
    );
    repo.write(
        "mlv.toml",
        &format!(
            "[stage.w]\ncmd = [\"sh\", \"-c\", {cmd:?}]\nwdir = \"sub\"\ninputs = [\"data/raw\"]\noutputs = [\"out.bin\"]\n"
        ),
    );
    repo.commit("pipeline");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["w"]);
    assert!(
        repo.lineage_lines()[0].contains("\"wdir\":\"sub\""),
        "{}",
        repo.lineage_lines()[0]
    );
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
    let text = repo.read("mlv.toml").replace("wdir = \"sub\"", "wdir = \".\"");
    repo.write("mlv.toml", &text);
    let out = repo.ok(&["repro", "--dry-run"]);
    assert_eq!(out.stdout, "would run w: working directory changed: sub -> .\n");
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), ["w"]);
    // at the root, no field: such records keep the ids they always had
    assert!(!repo.lineage_lines()[1].contains("wdir"));
    repo.ok(&["repro"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn status_says_which_stages_are_out_of_date_and_why() {
    let repo = two_stage();
    let out = repo.ok(&["status"]);
    assert_eq!(
        out.stdout,
        "Pipeline stages out of date:\n  prepare: never run\n  train: upstream stage prepare is out of date\n"
    );
    repo.fails(&["status", "--exit-code"], 1);
    repo.ok(&["repro"]);
    runs(&repo);
    let out = repo.ok(&["status", "--exit-code"]);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr.contains("Pipeline stages are up to date."),
        "{}",
        out.stderr
    );
    repo.write("params.yaml", "train:\n  lr: 0.2\n");
    let out = repo.fails(&["status", "--exit-code"], 1);
    assert_eq!(
        out.stdout,
        "Pipeline stages out of date:\n  train: param train.lr changed: 0.1 -> 0.2\n"
    );
    let json = repo.json(&["status"]);
    assert_eq!(json["clean"], true, "the data itself is clean");
    assert_eq!(json["stages"][0]["stage"], "prepare");
    assert_eq!(json["stages"][0]["status"], "up_to_date");
    assert_eq!(json["stages"][1]["status"], "out_of_date");
    assert_eq!(json["stages"][1]["reasons"][0]["why"], "param_changed");
    assert_eq!(json["stages"][1]["reasons"][0]["new"], 0.2);
    // an output deleted by hand: the data line, then the stage (and what is downstream)
    std::fs::remove_dir_all(repo.path("data/clean")).unwrap();
    let out = repo.ok(&["status"]);
    assert_eq!(
        out.stdout,
        "data/clean: missing from the workspace\nPipeline stages out of date:\n  prepare: output data/clean missing\n  train: upstream stage prepare is out of date\n"
    );
    // paths asked for: the data only
    let json = repo.json(&["status", "data/raw"]);
    assert!(json.get("stages").is_none(), "{json}");
    assert_eq!(repo.ok(&["status", "data/raw"]).stdout, "");
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn a_syntax_error_names_the_line_and_does_not_break_status() {
    let repo = two_stage();
    repo.ok(&["repro"]);
    runs(&repo);
    std::fs::remove_dir_all(repo.path("data/clean")).unwrap();
    // a hand edit that lost its brackets and a quote
    let text = repo
        .read("mlv.toml")
        .replace("outputs = [\"data/clean\"]", "outputs = \"data/clean");
    repo.write("mlv.toml", &text);
    let line = text.lines().position(|l| l == "outputs = \"data/clean").unwrap() + 1;
    let at = format!("mlv.toml:{line}: ");
    repo.fails(&["repro"], 1).stderr_has(&format!("error: {at}"));
    repo.fails(&["stage", "list"], 1)
        .stderr_has(&format!("error: {at}"));
    let out = repo.ok(&["status"]);
    assert_eq!(out.stdout, "data/clean: missing from the workspace\n");
    assert!(out.stderr.contains(&format!("warning: {at}")), "{}", out.stderr);
    assert!(
        out.stderr.contains("pipeline stages not checked"),
        "{}",
        out.stderr
    );
    let json = repo.json(&["status"]);
    assert!(
        json["pipeline_error"].as_str().unwrap().starts_with(&at),
        "{json}"
    );
    assert!(json.get("stages").is_none());
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn stages_added_on_two_branches_merge_and_stay_up_to_date() {
    let repo = Repo::new();
    repo.write("in.txt", "1\n");
    repo.write(".git/info/exclude", "runs.log\n");
    repo.commit("input");
    assert!(repo.read(".gitattributes").contains("mlv.toml merge=union"));
    for (branch, out) in [("a", "outa/x"), ("b", "outb/y")] {
        repo.git(&["checkout", "-q", "-b", branch, "main"]);
        let cmd = script(branch, "in.txt", out);
        repo.ok(&[
            "run", "--name", branch, "-i", "in.txt", "-o", out, "--", "sh", "-c", &cmd,
        ]);
        repo.commit(&format!("stage {branch}"));
    }
    assert_eq!(runs(&repo), ["a", "b"]);
    // on b: merge a; mlv.toml and the lineage file are union-merged without a conflict
    repo.git(&["merge", "-q", "a", "-m", "merge a"]);
    assert_eq!(repo.git(&["status", "--porcelain"]), "");
    let list = repo.ok(&["stage", "list"]);
    assert_eq!(
        list.stdout
            .lines()
            .map(|l| l.split(':').next().unwrap())
            .collect::<Vec<_>>(),
        ["a", "b"]
    );
    let out = repo.ok(&["repro"]);
    assert_eq!(runs(&repo), Vec::<String>::new());
    assert!(
        out.stderr.contains("stage a didn't change, skipping"),
        "{}",
        out.stderr
    );
    assert_eq!(repo.ok(&["status"]).stdout, "");

    // both branches edit one stage's command: union keeps both lines, a duplicate key
    repo.git(&["checkout", "-q", "-b", "c"]);
    repo.ok(&[
        "stage", "add", "-f", "a", "-i", "in.txt", "-o", "outa/x", "--", "echo", "c",
    ]);
    repo.commit("a on c");
    repo.git(&["checkout", "-q", "b"]);
    repo.ok(&[
        "stage", "add", "-f", "a", "-i", "in.txt", "-o", "outa/x", "--", "echo", "b",
    ]);
    repo.commit("a on b");
    repo.git(&["merge", "-q", "c", "-m", "merge c"]);
    let text = repo.read("mlv.toml");
    let line = text
        .lines()
        .position(|l| l == "cmd = [\"echo\", \"c\"]")
        .expect("both lines kept")
        + 1;
    let out = repo.fails(&["repro"], 1);
    assert!(
        out.stderr
            .starts_with(&format!("error: mlv.toml:{line}: duplicate key")),
        "{text}\n{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: a merge of two branches"),
        "{}",
        out.stderr
    );
    assert_eq!(runs(&repo), Vec::<String>::new());
}

#[test]
fn concurrent_repro_runs_a_stage_once() {
    use std::io::BufRead;
    let repo = Repo::new();
    repo.write("in.txt", "1\n");
    // the stage waits for the test's go-ahead, so the second repro surely starts meanwhile
    repo.write(
        "mlv.toml",
        "[stage.slow]\ncmd = [\"sh\", \"-c\", \"echo slow >> runs.log; while [ ! -e go ]; do sleep 0.05; done; cp in.txt out.txt\"]\ninputs = [\"in.txt\"]\noutputs = [\"out.txt\"]\n",
    );
    repo.commit("pipeline");
    let first = repo.spawn(&["repro"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !repo.exists("runs.log") {
        assert!(
            std::time::Instant::now() < deadline,
            "the first repro never ran its stage"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut second = repo.spawn(&["repro"]);
    let stderr = second.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let waiting = loop {
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(l) if l.contains("waiting for the pipeline lock") => break l,
            Ok(l) => lines.push(l),
            Err(_) => {
                repo.write("go", "");
                panic!("the second repro did not wait: {lines:?}");
            }
        }
    };
    assert!(
        waiting.contains(&format!("held by `mlv repro` (pid {}", first.id())),
        "{waiting}"
    );
    repo.write("go", "");
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status = second.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    assert!(status.success(), "{lines:?}");
    assert!(
        lines.iter().any(|l| l == "stage slow didn't change, skipping"),
        "{lines:?}"
    );
    assert_eq!(runs(&repo), ["slow"]);
    assert_eq!(repo.lineage_lines().len(), 1);
}
