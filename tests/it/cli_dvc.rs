//! Unknown subcommands that DVC users type name the mlv equivalent.

use crate::common::Env;

#[test]
fn dvc_commands_name_the_mlv_equivalent() {
    let env = Env::new();
    for (word, hint) in [
        ("rm", "hint: `dvc remove` is `mlv untrack` in mlv"),
        ("install", "hint: `dvc install` is `mlv install-hooks` in mlv"),
        ("commit", "hint: `dvc commit` is `mlv add` in mlv"),
        ("dag", "hint: `dvc dag` is `mlv lineage graph` in mlv"),
        ("exp", "mlv has no experiments yet"),
        (
            "import-url",
            "`mlv import URL PATH` fetch data tracked in another repository",
        ),
        // `metrics` became an mlv command (issue 15); `plots` keeps the hint
        ("plots", "hint: mlv has no plots yet"),
    ] {
        let out = env.mlv(&[word, "x"]).fails(2);
        assert_eq!(
            out.stderr_lines("error: "),
            [format!("error: unrecognized subcommand '{word}'").as_str()],
            "{out}"
        );
        assert_eq!(out.stderr_lines("hint: ").len(), 1, "{out}");
        out.stderr_has(hint);
    }
    // after global options too
    env.mlv(&["-C", ".", "--json", "rm", "data"])
        .fails(2)
        .stderr_has("`mlv untrack`");
}

#[test]
fn other_unknown_subcommands_keep_clap_error() {
    let env = Env::new();
    let out = env.mlv(&["frobnicate"]).fails(2);
    assert!(out.stderr_lines("hint: ").is_empty(), "{out}");
    out.stderr_has("unrecognized subcommand 'frobnicate'");
    // a nested unknown subcommand is not a DVC command
    let out = env.mlv(&["remote", "commit"]).fails(2);
    assert!(!out.stderr.contains("dvc"), "{out}");
}
