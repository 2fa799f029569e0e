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

/// Makes a throwaway ed25519 key `NAME` (private key at the returned path, public at `.pub`).
fn keygen(r: &Repo, name: &str) -> String {
    let path = r.path(&format!("../{name}"));
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    path.display().to_string()
}

/// A repository whose git signs with a fresh SSH key that the allowed signers file trusts for
/// ada@example.com (the tests' author); returns it with the key path.
fn signing_repo() -> (Repo, String) {
    let r = with_records(0);
    let key = keygen(&r, "ada_key");
    let public = std::fs::read_to_string(format!("{key}.pub")).unwrap();
    let allowed = r.path("../allowed_signers");
    std::fs::write(&allowed, format!("ada@example.com {public}")).unwrap();
    r.git(&["config", "gpg.format", "ssh"]);
    r.git(&["config", "user.signingkey", &key]);
    r.git(&[
        "config",
        "gpg.ssh.allowedSignersFile",
        &allowed.display().to_string(),
    ]);
    (r, key)
}

fn failed(v: &Value) -> Vec<(String, String)> {
    v["failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["record"].as_str().unwrap().to_string(),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn signed_records_verify_and_unsigned_ones_are_named() {
    let (r, _) = signing_repo();
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=1", "--sign"]);
    r.ok(&["config", "lineage.sign", "true"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=2"]);
    let lines = r.lineage_lines();
    assert!(
        lines.iter().all(|l| l.contains("BEGIN SSH SIGNATURE")),
        "{lines:?}"
    );
    let v = r.json(&["lineage", "verify", "--signatures"]);
    assert_eq!(
        (v["ok"].clone(), v["good"].clone(), v["records"].clone()),
        (json!(true), json!(2), json!(2))
    );
    // signed records still parse for every other command and keep their ids
    r.ok(&["lineage", "verify"]);
    // an unsigned record: named, and a failure unless allowed
    r.ok(&["config", "lineage.sign", "false"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=3"]);
    let unsigned = id_of(r.lineage_lines().last().unwrap());
    let out = r.fails(&["--json", "lineage", "verify", "--signatures"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(failed(&v), vec![(unsigned.clone(), "unsigned".to_string())]);
    let text = r.fails(&["lineage", "verify", "--signatures"], 3);
    assert!(
        text.stdout
            .contains(&format!("record {} (ada@example.com): unsigned", &unsigned[..12])),
        "{}",
        text.stdout
    );
    let v = r.json(&["lineage", "verify", "--signatures", "--allow-unsigned"]);
    assert_eq!(v["ok"], json!(true));
    assert_eq!(v["good"], json!(2));
}

#[test]
fn a_key_not_in_the_allowed_signers_and_a_copied_signature_are_named() {
    let (r, _) = signing_repo();
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=1", "--sign"]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=2", "--sign"]);
    // signed with a key nobody listed
    let stranger = keygen(&r, "stranger_key");
    r.git(&["config", "user.signingkey", &stranger]);
    r.ok(&["lineage", "record", "-i", "in.txt", "--metric", "x=3", "--sign"]);
    let lines = r.lineage_lines();
    let stranger_id = id_of(&lines[2]);
    // the first record's signature copied onto the second
    let mut second: Value = serde_json::from_str(&lines[1]).unwrap();
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    second["signature"] = first["signature"].clone();
    r.write(
        ".mlv/lineage.jsonl",
        &format!(
            "{}\n{}\n{}\n",
            lines[0],
            serde_json::to_string(&second).unwrap(),
            lines[2]
        ),
    );
    let out = r.fails(&["--json", "lineage", "verify", "--signatures"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        failed(&v),
        vec![
            (id_of(&lines[1]), "bad".to_string()),
            (stranger_id.clone(), "unknown_key".to_string())
        ]
    );
    assert_eq!(v["good"], json!(1));
    let text = r.fails(&["lineage", "verify", "--signatures"], 3);
    assert!(
        text.stdout.contains("bad signature (not over this record)"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains(&format!(
            "record {} (ada@example.com): signed by a key not allowed",
            &stranger_id[..12]
        )),
        "{}",
        text.stdout
    );
}

#[test]
fn signing_and_verifying_without_git_signing_config_say_what_to_set() {
    let r = with_records(1);
    let out = r.mlv(&["lineage", "verify", "--signatures"]);
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("gpg.ssh.allowedSignersFile is not set"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("hint: "), "{}", out.stderr);
    let out = r.mlv(&["lineage", "record", "-i", "in.txt", "--metric", "x=1", "--sign"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("gpg.format is openpgp"), "{}", out.stderr);
    assert!(
        out.stderr.contains("hint: git config gpg.format ssh"),
        "{}",
        out.stderr
    );
    // nothing was appended, and `run` refuses before running the command
    let out = r.mlv(&[
        "run",
        "--sign",
        "-i",
        "in.txt",
        "--",
        "sh",
        "-c",
        "echo ran > ran.txt",
    ]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("gpg.format is openpgp"), "{}", out.stderr);
    assert!(!r.exists("ran.txt"));
    assert_eq!(r.lineage_lines().len(), 1);
}

#[test]
fn registry_tags_are_signed_with_git_tag_s() {
    let (r, _) = signing_repo();
    r.write("models/m.bin", "weights");
    r.ok(&["add", "models/m.bin"]);
    r.commit("model");
    r.ok(&[
        "model",
        "register",
        "churn",
        "models/m.bin",
        "--version",
        "1.0.0",
        "--sign",
    ]);
    r.ok(&["model", "promote", "churn", "1.0.0", "production", "--sign"]);
    r.ok(&["model", "register", "plain", "models/m.bin", "--version", "1.0.0"]);
    let signed = r.git(&["cat-file", "tag", "churn@v1.0.0"]);
    assert!(signed.contains("BEGIN SSH SIGNATURE"), "{signed}");
    assert!(r
        .git(&["cat-file", "tag", "churn#production#1"])
        .contains("BEGIN SSH SIGNATURE"));
    assert!(!r.git(&["cat-file", "tag", "plain@v1.0.0"]).contains("SIGNATURE"));
    // git itself verifies them against the same allowed signers file
    r.git(&["tag", "-v", "churn@v1.0.0"]);
}

#[test]
fn run_and_repro_sign_their_records() {
    let (r, _) = signing_repo();
    r.ok(&[
        "run",
        "--sign",
        "-i",
        "in.txt",
        "-o",
        "out.txt",
        "--",
        "sh",
        "-c",
        "cat in.txt > out.txt",
    ]);
    r.write(
        "mlv.toml",
        "[stage.copy]\ncmd = [\"sh\", \"-c\", \"cat in.txt > copy.txt\"]\ninputs = [\"in.txt\"]\noutputs = [\"copy.txt\"]\n",
    );
    r.commit("pipeline");
    r.ok(&["repro", "--sign"]);
    let lines = r.lineage_lines();
    assert_eq!(lines.len(), 2);
    assert!(
        lines.iter().all(|l| l.contains("BEGIN SSH SIGNATURE")),
        "{lines:?}"
    );
    let v = r.json(&["lineage", "verify", "--signatures"]);
    assert_eq!((v["ok"].clone(), v["good"].clone()), (json!(true), json!(2)));
}

#[test]
fn history_walks_remote_tracking_branches() {
    let r = with_records(2);
    let lines = r.lineage_lines();
    // a remote-tracking branch holding a commit that removed a record; origin/HEAD is symbolic
    r.git(&["checkout", "-q", "-b", "tmp"]);
    r.write(".mlv/lineage.jsonl", &format!("{}\n", lines[1]));
    r.commit("drop the first run");
    let bad = head(&r);
    r.git(&["checkout", "-q", "main"]);
    r.git(&["update-ref", "refs/remotes/origin/feature", "tmp"]);
    r.git(&["branch", "-q", "-D", "tmp"]);
    r.git(&[
        "symbolic-ref",
        "refs/remotes/origin/HEAD",
        "refs/remotes/origin/feature",
    ]);
    let out = r.fails(&["--json", "lineage", "verify", "--history"], 3);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        v["scope"],
        json!(["refs/heads/main", "refs/remotes/origin/feature"])
    );
    assert_eq!(v["breaks"][0]["commit"], json!(bad));
    assert_eq!(v["breaks"][0]["records"][0]["record"], json!(id_of(&lines[0])));
}
