//! Snapshot tests (insta, inline) where an exact message or JSON document is the contract:
//! scripts parse `--json` and users read the one-line errors and hints. A change to any of these
//! must be deliberate: update the snapshot in the same commit and say so in docs/json.md or
//! docs/cli.md.

use crate::common::Env;

/// A repository tracking a file and a two-file directory, then changed: the file deleted, one
/// directory file modified and one added.
fn changed_repo() -> Env {
    let env = Env::new();
    env.write("a.txt", "hello\n");
    env.write("d/1", "one\n");
    env.write("d/2", "two\n");
    env.mlv(&["add", "a.txt", "d"]).ok();
    env.write("d/1", "uno\n");
    env.write("d/3", "three\n");
    std::fs::remove_file(env.path("a.txt")).unwrap();
    env
}

#[test]
fn status_json_document() {
    let env = changed_repo();
    let out = env.mlv(&["status", "--json"]).ok();
    insta::assert_snapshot!(out.stdout, @r#"
    {
      "pointers": [
        {
          "path": "a.txt",
          "pointer": "a.txt.mlv",
          "kind": "file",
          "state": "missing",
          "in_cache": true,
          "missing_objects": 0,
          "added": [],
          "modified": [],
          "deleted": [],
          "not_pulled": []
        },
        {
          "path": "d",
          "pointer": "d.mlv",
          "kind": "dir",
          "state": "modified",
          "in_cache": true,
          "missing_objects": 0,
          "added": [
            "3"
          ],
          "modified": [
            "1"
          ],
          "deleted": [],
          "not_pulled": []
        }
      ],
      "clean": false
    }
    "#);
    let out = env.mlv(&["status"]).ok();
    insta::assert_snapshot!(out.stdout, @r"
    a.txt: missing from the workspace
    d: modified (2 files changed)
    ");
}

#[test]
fn gc_dry_run_json_document() {
    let env = changed_repo();
    let out = env.mlv(&["gc", "--json"]).ok();
    insta::assert_snapshot!(out.stdout, @r#"
    {
      "cache": {
        "dry_run": true,
        "grace_seconds": 14400,
        "kept": 4,
        "kept_by": [],
        "kept_recent": 0,
        "objects": [],
        "removed": 0,
        "removed_bytes": 0,
        "temp": [],
        "temp_files": 0
      },
      "dry_run": true,
      "kept": 4,
      "kept_recent": 0,
      "remote": null,
      "removed": 0,
      "removed_bytes": 0
    }
    "#);
}

#[test]
fn an_error_as_a_json_document_and_as_lines() {
    let env = changed_repo();
    let out = env.mlv(&["--json", "push"]).fails(1);
    insta::assert_snapshot!(out.stdout, @r#"
    {
      "error": "no remote given and no default remote is set",
      "causes": [],
      "hint": "add one with `mlv remote add NAME URL --default`, or pass `-r NAME`",
      "exit_code": 1
    }
    "#);
    let out = env.mlv(&["push"]).fails(1);
    insta::assert_snapshot!(out.stderr, @r"
    error: no remote given and no default remote is set
    hint: add one with `mlv remote add NAME URL --default`, or pass `-r NAME`
    ");
}

#[test]
fn refusals_say_what_is_wrong_and_what_to_do() {
    let env = changed_repo();
    let out = env.mlv(&["checkout", "nothere"]).fails(1);
    insta::assert_snapshot!(out.stderr, @r"
    error: nothere: not tracked by mlv
    hint: `mlv status` lists what is tracked
    ");
    let out = env.mlv(&["remote", "add", "origin", "s3://b/p?sig=X"]).fails(1);
    insta::assert_snapshot!(out.stderr, @"error: invalid remote URL `s3://b/p?***`: a query string is not allowed (a SAS token goes in the `sas_token` option, in the local config)");
    let out = env.mlv(&["config", "nosuch.key"]).fails(1);
    insta::assert_snapshot!(out.stderr, @r"
    error: nosuch.key: not a configuration key
    hint: valid keys: core.autostage, core.remote, core.lock_timeout, cache.dir, cache.link, cache.pack_min_objects, cache.link_as_root, gc.grace, lineage.sign, remote.NAME.url, remote.NAME.OPTION
    ");
}
