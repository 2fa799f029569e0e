//! `mlv config`: get, set, unset and list keys of `.mlv/config.toml` and, with `--local`,
//! `.mlv/config.local.toml`.

use crate::common::Env;

#[test]
fn set_get_unset_round_trip_in_the_committed_file() {
    let env = Env::new();
    env.mlv(&["config", "cache.link", "hardlink, copy"]).ok();
    let committed = env.read_str(".mlv/config.toml");
    assert!(
        committed.contains("link = [\"hardlink\", \"copy\"]"),
        "{committed}"
    );
    // comments of the initial file are kept
    assert!(committed.contains("# mlv configuration"), "{committed}");
    let out = env.mlv(&["config", "cache.link"]).ok();
    assert_eq!(out.stdout, "hardlink,copy\n");
    env.mlv(&["config", "gc.grace", "2h"]).ok();
    env.mlv(&["config", "core.lock_timeout", "7"]).ok();
    assert_eq!(env.mlv(&["config", "gc.grace"]).ok().stdout, "2h\n");
    assert_eq!(env.mlv(&["config", "core.lock_timeout"]).ok().stdout, "7\n");
    // the loader takes what was written
    env.mlv(&["status"]).ok();
    env.mlv(&["config", "--unset", "gc.grace"]).ok();
    let out = env.mlv(&["config", "gc.grace"]).fails(1);
    assert_eq!(out.stdout, "");
    env.mlv(&["config", "--unset", "gc.grace"])
        .refused("gc.grace: not set in .mlv/config.toml", Some("--list"));
    let json = env.mlv(&["config", "--json", "cache.link"]).ok().json();
    assert_eq!(
        json,
        serde_json::json!({"key": "cache.link", "value": "hardlink,copy"})
    );
}

#[test]
fn unknown_keys_and_bad_values_are_refused_and_nothing_is_written() {
    let env = Env::new();
    let before = env.snapshot();
    env.mlv(&["config", "cache.lnk", "copy"]).refused(
        "cache.lnk: not a configuration key",
        Some("valid keys: core.autostage, core.remote, core.lock_timeout, cache.dir, cache.link"),
    );
    env.mlv(&["config", "cache.link", "hardlink,bogus"])
        .refused("cache.link: \"hardlink,bogus\" is not a list of reflink", None);
    env.mlv(&["config", "gc.grace", "soon"])
        .refused("gc.grace: \"soon\" is not a duration", None);
    env.mlv(&["config", "core.autostage", "maybe"])
        .refused("core.autostage: \"maybe\" is not true or false", None);
    env.mlv(&["config", "core.lock_timeout", "-1"])
        .refused("core.lock_timeout: \"-1\" is not a whole number", None);
    env.mlv(&["config", "core.remote", "nowhere"])
        .refused("nowhere", None);
    env.mlv(&["config", "remote.nowhere.region", "x"])
        .refused("nowhere", None);
    env.snapshot().assert_same(&before);
}

#[test]
fn secrets_go_only_to_the_local_file_and_are_never_printed() {
    let env = Env::new();
    env.mlv(&["remote", "add", "origin", "s3://bucket/prefix", "--default"])
        .ok();
    let committed = env.read_str(".mlv/config.toml");
    let out = env
        .mlv(&["config", "remote.origin.secret_access_key", "TOPSECRET-abc123"])
        .refused(
            "refusing to write a secret to the committed .mlv/config.toml",
            Some("--local"),
        );
    assert!(!out.stderr.contains("TOPSECRET"), "{out}");
    assert_eq!(env.read_str(".mlv/config.toml"), committed);
    assert!(!env.exists(".mlv/config.local.toml"));

    env.mlv(&[
        "config",
        "--local",
        "remote.origin.secret_access_key",
        "TOPSECRET-abc123",
    ])
    .ok();
    env.mlv(&["config", "remote.origin.region", "eu-west-1"]).ok();
    assert_eq!(env.mode(".mlv/config.local.toml") & 0o777, 0o600);
    assert!(env
        .read_str(".mlv/config.local.toml")
        .contains("TOPSECRET-abc123"));

    let list = env.mlv(&["config", "--list"]).ok();
    assert!(!list.stdout.contains("TOPSECRET"), "{list}");
    for line in [
        "remote.origin.secret_access_key=<redacted>",
        "remote.origin.region=eu-west-1",
        "remote.origin.url=s3://bucket/prefix",
        "core.remote=origin",
        "cache.link=reflink,copy",
        "version=1",
    ] {
        assert!(list.stdout.lines().any(|l| l == line), "{line}\n{list}");
    }
    let local = env.mlv(&["config", "--list", "--local"]).ok();
    assert_eq!(local.stdout, "remote.origin.secret_access_key=<redacted>\n");
    let get = env.mlv(&["config", "remote.origin.secret_access_key"]).ok();
    assert_eq!(get.stdout, "<redacted>\n");
    let json = env.mlv(&["config", "--list", "--json"]).ok().json();
    assert_eq!(json["remote.origin.secret_access_key"], "<redacted>");
    assert_eq!(json["remote.origin.region"], "eu-west-1");

    env.mlv(&["config", "--local", "--unset", "remote.origin.secret_access_key"])
        .ok();
    assert!(!env.read_str(".mlv/config.local.toml").contains("TOPSECRET"));
}
