//! Tamper evidence: `mlv lineage verify --history` proves from git history that the lineage
//! file only ever grew.

use serde_json::{json, Value};

use crate::common::lineage::Repo;

/// A repository with `in.txt` committed and `n` records, each committed on its own.
fn with_records(n: usize) -> Repo {
    let r = Repo::new();
    r.write("in.txt", "input\n");
    r.commit("input");
    for i in 0..n {
        r.ok(&["lineage", "record", "-i", "in.txt", "--metric", &format!("x={i}")]);
        r.commit(&format!("record {i}"));
    }
    r
}

fn id_of(line: &str) -> String {
    serde_json::from_str::<Value>(line).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn head(r: &Repo) -> String {
    r.git(&["rev-parse", "HEAD"]).trim().to_string()
}

#[test]
fn history_names_the_commit_that_edited_a_past_line() {
    let r = with_records(2);
    let lines = r.lineage_lines();
    let edited_id = id_of(&lines[0]);
    r.write(
        ".mlv/lineage.jsonl",
        &format!("{}\n{}\n", lines[0].replace("{\"x\":0}", "{\"x\":5}"), lines[1]),
    );
    r.commit("tidy up");
    let bad = head(&r);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=9"]);
    r.commit("record 9");
    let out = r.fails(&["--json", "lineage", "verify", "--history"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["ok"], json!(false));
    let breaks = v["breaks"].as_array().unwrap();
    assert_eq!(breaks.len(), 1, "{v}");
    assert_eq!(breaks[0]["commit"], json!(bad));
    assert_eq!(breaks[0]["subject"], json!("tidy up"));
    assert_eq!(breaks[0]["records"][0]["record"], json!(edited_id));
    assert_eq!(breaks[0]["records"][0]["change"], json!("edited"));
    let text = r.fails(&["lineage", "verify", "--history"], 3);
    assert!(
        text.stdout.contains(&format!(
            "commit {} (tidy up): record {} edited",
            &bad[..12],
            &edited_id[..12]
        )),
        "{}",
        text.stdout
    );
    assert!(
        text.stderr.contains("lost committed records in 1 commit"),
        "{}",
        text.stderr
    );
}

#[test]
fn history_names_the_commit_that_removed_a_record() {
    let r = with_records(3);
    let lines = r.lineage_lines();
    r.write(".mlv/lineage.jsonl", &format!("{}\n{}\n", lines[0], lines[2]));
    r.commit("drop a run");
    let bad = head(&r);
    let out = r.fails(&["--json", "lineage", "verify", "--history"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["breaks"][0]["commit"], json!(bad));
    assert_eq!(v["breaks"][0]["records"][0]["record"], json!(id_of(&lines[1])));
    assert_eq!(v["breaks"][0]["records"][0]["change"], json!("removed"));
    assert_eq!(v["breaks"][0]["records"].as_array().unwrap().len(), 1);
    // putting the line back does not undo that the history lost it
    r.write(".mlv/lineage.jsonl", &format!("{}\n", lines.join("\n")));
    r.commit("restore");
    r.fails(&["lineage", "verify", "--history"], 3);
}

#[test]
fn history_of_branches_merged_with_the_union_driver_is_clean() {
    let r = with_records(1);
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "y=1"]);
    r.commit("feature run");
    r.git(&["checkout", "-q", "main"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "z=1"]);
    r.commit("main run");
    r.git(&["merge", "-q", "--no-edit", "feature"]);
    assert_eq!(r.lineage_lines().len(), 3);
    let v = r.json(&["lineage", "verify", "--history"]);
    assert_eq!(v["ok"], json!(true), "{v}");
    assert_eq!(v["breaks"], json!([]));
    assert_eq!(v["scope"], json!(["refs/heads/feature", "refs/heads/main"]));
    // input, mlv init, 3 runs, the merge
    assert_eq!(v["commits"], json!(6));
}

#[test]
fn history_of_a_rebased_branch() {
    let r = with_records(1);
    r.git(&["checkout", "-q", "-b", "feature"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "y=1"]);
    r.commit("feature run");
    r.git(&["checkout", "-q", "main"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "z=1"]);
    r.commit("main run");
    // a rebase replays the appends: every commit of the new history keeps its parent's records
    r.git(&["checkout", "-q", "feature"]);
    r.git(&["rebase", "-q", "main"]);
    assert_eq!(r.lineage_lines().len(), 3);
    r.ok(&["lineage", "verify", "--history"]);
    // rewriting a commit after the one that recorded a run: its parent still holds the
    // original line, so the rewritten commit is named
    let lines = r.lineage_lines();
    let edited = lines[0].replace("{\"x\":0}", "{\"x\":7}");
    r.write(
        ".mlv/lineage.jsonl",
        &format!("{edited}\n{}\n{}\n", lines[1], lines[2]),
    );
    r.git(&["commit", "-q", "-a", "--amend", "--no-edit"]);
    let out = r.fails(&["--json", "lineage", "verify", "--history"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["breaks"][0]["commit"], json!(head(&r)));
    assert_eq!(v["breaks"][0]["records"][0]["change"], json!("edited"));
    // rewriting the commit that recorded the run leaves no original in reachable history:
    // --history cannot see it, the record's id still gives it away
    r.git(&["checkout", "-q", "main"]);
    r.git(&["branch", "-q", "-D", "feature"]);
    let lines = r.lineage_lines();
    let edited = lines[1].replace("{\"z\":1}", "{\"z\":3}");
    r.write(".mlv/lineage.jsonl", &format!("{}\n{edited}\n", lines[0]));
    r.git(&["commit", "-q", "-a", "--amend", "--no-edit"]);
    r.ok(&["lineage", "verify", "--history"]);
    let plain = r.fails(&["lineage", "verify"], 3);
    assert!(
        plain.stderr.contains("does not match its content"),
        "{}",
        plain.stderr
    );
}
