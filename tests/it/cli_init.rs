//! `mlv init`, global options (-C, running from a subdirectory), --version, --help and
//! completions.

use crate::common::Env;

#[test]
fn init_creates_the_mlv_directory() {
    let env = Env::git_only();
    let out = env.mlv(&["init"]).ok();
    assert!(
        out.stderr
            .contains(&format!("Initialized mlv in {}/.mlv", env.root.display())),
        "{out}"
    );
    out.stderr_has("\tgit add .mlv/config.toml .mlv/.gitignore");
    for d in ["cache", "tmp", "state"] {
        assert!(env.path(&format!(".mlv/{d}")).is_dir(), "{d}");
    }
    let config = env.read_str(".mlv/config.toml");
    assert!(
        config.contains("version = 1") && config.contains("autostage = false"),
        "{config}"
    );
    let ignore = env.read_str(".mlv/.gitignore");
    for line in ["/cache/", "/tmp/", "/state/", "/config.local.toml"] {
        assert!(ignore.lines().any(|l| l == line), "{ignore}");
    }
    // git sees only the config, its .gitignore and the union-merge rule for the lineage file
    let st = env.git(&["status", "--porcelain", "--untracked-files=all"]);
    assert_eq!(st, "?? .gitattributes\n?? .mlv/.gitignore\n?? .mlv/config.toml\n");
    assert_eq!(
        env.read_str(".gitattributes"),
        ".mlv/lineage.jsonl merge=union\nmlv.toml merge=union\n"
    );
}

#[test]
fn init_twice_is_fine_and_keeps_the_config() {
    let env = Env::new();
    env.set_autostage();
    let config = env.read(".mlv/config.toml");
    let json = env.mlv(&["init", "--json"]).ok().json();
    assert_eq!(json["already"], true);
    assert_eq!(json["created"], serde_json::json!([]));
    env.mlv(&["init"]).ok().stderr_has("mlv is already initialized");
    assert_eq!(env.read(".mlv/config.toml"), config);
    // a missing piece is filled in
    std::fs::remove_file(env.path(".mlv/.gitignore")).unwrap();
    let json = env.mlv(&["init", "--json"]).ok().json();
    assert_eq!(json["created"], serde_json::json!([".mlv/.gitignore"]));
}

#[test]
fn init_from_a_subdirectory_uses_the_work_tree_root() {
    let env = Env::git_only();
    env.mkdir("a/b");
    env.mlv_in("a/b", &["init"]).ok();
    assert!(env.path(".mlv/config.toml").is_file());
    assert!(!env.path("a/b/.mlv").exists());
}

#[test]
fn init_outside_a_git_work_tree_is_a_clear_error() {
    let env = Env::empty();
    std::fs::create_dir(&env.root).unwrap();
    let out = env
        .mlv(&["init"])
        .refused("is not inside a git work tree", Some("git init"));
    assert!(
        out.stderr_lines("error: ")[0].contains(&env.root.display().to_string()),
        "{out}"
    );
    assert!(!env.root.join(".mlv").exists());
}

#[test]
fn init_in_a_bare_repository_is_refused() {
    let env = Env::empty();
    std::fs::create_dir(&env.root).unwrap();
    env.git(&["init", "-q", "--bare"]);
    env.mlv(&["init"]).refused("bare git repository", None);
}

#[test]
fn dash_c_runs_in_another_directory() {
    let env = Env::new();
    env.write("sub/data/a", b"a");
    let out = env
        .command(crate::common::MLV, &["-C", "repo/sub", "add", "data"])
        .cwd(&env.base)
        .run();
    let out = out.ok();
    // paths print relative to the -C directory
    out.stderr_has("added data (1 file, 1 B)")
        .stderr_has("\tgit add .gitignore data.mlv");
    assert!(env.path("sub/data.mlv").is_file());
    let st = env
        .command(crate::common::MLV, &["-C", "repo", "status", "-v"])
        .cwd(&env.base)
        .run();
    st.ok().stdout_has("sub/data: up to date");
    env.mlv(&["-C", "nowhere", "status"])
        .refused("nowhere: not a directory", None);
}

#[test]
fn paths_are_relative_to_the_current_directory() {
    let env = Env::new();
    env.write("sub/data/a", b"a");
    env.write("top/f", b"f");
    env.mlv_in("sub", &["add", "data", "../top/f"])
        .ok()
        .stderr_has("added data (1 file")
        .stderr_has("added ../top/f (1 B)")
        .stderr_has("\tgit add .gitignore data.mlv ../top/.gitignore ../top/f.mlv");
    assert!(env.path("sub/data.mlv").is_file());
    assert_eq!(env.read_str("sub/.gitignore"), "/data\n");
    env.write("sub/data/a", b"changed");
    let out = env.mlv_in("sub", &["status", "-v"]).ok();
    assert_eq!(
        out.stdout, "data: modified (1 file changed)\n\tmodified: data/a\n../top/f: up to date\n",
        "{out}"
    );
    let json = env.mlv_in("sub", &["status", "--json", "data"]).ok().json();
    assert_eq!(json["pointers"][0]["path"], "data");
    assert_eq!(json["pointers"][0]["pointer"], "data.mlv");
    env.mlv_in("sub/data", &["checkout", "--force", "a"])
        .ok()
        .stderr_has("a: restored 1 file");
    assert_eq!(env.read("sub/data/a"), b"a");
    env.mlv_in("sub/data", &["status", "-v"])
        .ok()
        .stdout_has(".: up to date");
}

#[test]
fn version() {
    let env = Env::new();
    let out = env.mlv(&["--version"]).ok();
    assert_eq!(out.stdout, format!("mlv {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn help_of_every_verb_has_an_example() {
    let env = Env::new();
    env.mlv(&["--help"]).ok().stdout_has("Example");
    for verb in [
        "init",
        "add",
        "status",
        "checkout",
        "untrack",
        "unprotect",
        "completions",
    ] {
        let out = env.mlv(&[verb, "--help"]).ok();
        assert!(out.stdout.contains("Example"), "{verb}\n{out}");
        let out = env.mlv(&["help", verb]).ok();
        assert!(out.stdout.contains("Example"), "{verb}\n{out}");
    }
}

#[test]
fn completions_bash_prints_a_script() {
    let env = Env::new();
    let out = env.mlv(&["completions", "bash"]).ok();
    assert!(out.stdout.contains("_mlv()"), "{out}");
    assert!(out.stdout.contains("complete -F _mlv"), "{out}");
    for verb in ["add", "status", "checkout", "untrack", "unprotect"] {
        assert!(out.stdout.contains(verb), "{verb}");
    }
    env.mlv(&["completions", "tcsh"]).fails(2);
}

#[test]
fn completions_into_a_closed_pipe_exit_quietly() {
    // `mlv completions bash | head -1`, deterministically: the reader is gone before mlv writes
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(crate::common::MLV)
        .args(["completions", "bash"])
        .stdout(writer)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}

#[test]
fn names_given_by_the_user_never_reach_the_terminal_raw() {
    let env = Env::new();
    // a control character in a name: refused, the name shown with the escape spelled out
    let out = env.mlv(&["add", "evil\u{1b}]0;owned\u{7}\u{1b}[2Jname"]).fails(1);
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr.escape_debug());
    assert!(out.stderr.contains("evil\\u{1b}]0;owned"), "{out}");
    // and in a directory given with -C
    let out = env.mlv(&["-C", "no\u{1b}[31mdir", "status"]).fails(1);
    assert!(!out.stderr.contains('\u{1b}'), "{}", out.stderr.escape_debug());
    assert!(out.stderr.contains("no\\u{1b}[31mdir"), "{out}");
}

#[test]
fn the_git_add_hint_works_for_names_that_look_like_options() {
    let env = Env::new();
    env.write("-rf", b"data");
    let out = env.mlv(&["add", "--", "-rf"]).ok();
    assert!(out.stderr.contains("\tgit add -- -rf.mlv .gitignore\n"), "{out}");
    // the hint, run as printed, stages the pointer
    env.sh("repo", "git add -- -rf.mlv .gitignore").ok();
    assert!(
        env.staged().contains(&"-rf.mlv".to_string()),
        "{:?}",
        env.staged()
    );
    let out = env.mlv(&["untrack", "--", "-rf"]).ok();
    assert!(out.stderr.contains("\tgit add -A -- -rf.mlv\n"), "{out}");
}

#[test]
fn output_has_no_colour_with_no_color() {
    let env = Env::new();
    env.write("f", b"f");
    let out = env.mlv(&["add", "f"]).ok();
    assert!(!out.stderr.contains('\x1b'));
    let out = env.mlv(&["status", "nope"]).fails(1);
    assert!(!out.stderr.contains('\x1b'));
}

#[test]
fn json_errors_are_one_document() {
    let env = Env::new();
    let out = env.mlv(&["status", "--json", "nope"]).fails(1);
    let json = out.json();
    assert_eq!(json["exit_code"], 1);
    assert!(json["error"]
        .as_str()
        .unwrap()
        .contains("nope: not tracked by mlv"));
    assert_eq!(json["hint"], "`mlv status` lists what is tracked");
}
