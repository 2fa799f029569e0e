//! `mlv doctor`: version, paths, link kinds and each remote, credentials named, never shown.

use crate::common::Env;

#[test]
fn doctor_reports_remotes_without_showing_credentials() {
    let env = Env::new();
    let out = env.mlv(&["doctor"]).ok();
    out.stdout_has(&format!("mlv version: {}\n", env!("CARGO_PKG_VERSION")))
        .stdout_has("link kinds: reflink, copy\n")
        .stdout_has("remotes: none\n");
    let store = env.base.join("store");
    std::fs::create_dir(&store).unwrap();
    env.mlv(&["remote", "add", "o", store.to_str().unwrap(), "--default"])
        .ok();
    env.mlv(&["remote", "add", "s3r", "s3://bucket/p"]).ok();
    env.mlv(&["remote", "modify", "s3r", "endpoint", "http://127.0.0.1:9"])
        .ok();
    env.mlv(&["config", "--local", "remote.s3r.secret_access_key", "TOPSECRET-1"])
        .ok();
    env.mlv(&["config", "--local", "remote.s3r.access_key_id", "AKIDPUBLIC"])
        .ok();
    let out = env.mlv(&["doctor"]).ok();
    assert!(
        !out.stdout.contains("TOPSECRET") && !out.stderr.contains("TOPSECRET"),
        "{out}"
    );
    out.stdout_has("remote o (default): ")
        .stdout_has("  kind: local\n  reachable: yes\n  credentials: none found\n")
        .stdout_has("remote s3r: s3://bucket/p\n  kind: s3\n  reachable: no\n  error: ")
        .stdout_has("  credentials: secret_access_key in config\n");
    let json = env.mlv(&["doctor", "--json"]).ok();
    assert!(!json.stdout.contains("TOPSECRET"), "{json}");
    let j = json.json();
    assert_eq!(j["default_remote"], "o");
    assert_eq!(j["remotes"][0]["reachable"], true);
    assert_eq!(j["remotes"][1]["scheme"], "s3");
    assert_eq!(j["remotes"][1]["reachable"], false);
    assert_eq!(
        j["remotes"][1]["credentials"],
        serde_json::json!(["secret_access_key in config"])
    );
    // a local remote whose directory is gone is not reachable
    std::fs::remove_dir(&store).unwrap();
    env.mlv(&["doctor"])
        .ok()
        .stdout_has("  kind: local\n  reachable: no\n  error: ")
        .stdout_has("no such directory\n");
}
