//! `mlv fsck`: missing, corrupt and truncated cache objects, damaged manifests, remote checks
//! (presence and size, or re-reading), and repairs in both directions.

use crate::common::maint::{
    cache_object, digest_of, flip_byte, hex, local_remote, s3_remote, truncate, TestRemote,
};
use crate::common::Env;

const A: &[u8] = b"alpha content\n";
const B: &[u8] = b"bravo content, a little longer\n";
const MODEL: &[u8] = b"model weights \x00\x01\x02";

/// `data/` (two files) and `model.bin` added and committed.
fn repo() -> Env {
    let env = Env::new();
    env.write("data/a.txt", A);
    env.write("data/sub/b.txt", B);
    env.write("model.bin", MODEL);
    env.mlv(&["add", "data", "model.bin"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env
}

/// `repo()` with `r` as the default remote, everything pushed.
fn pushed(r: &TestRemote) -> Env {
    let env = repo();
    r.configure(&env, "origin");
    r.mlv(&env, &["push"]).ok();
    env
}

fn fsck(env: &Env, r: Option<&TestRemote>, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["fsck", "--json"];
    all.extend_from_slice(args);
    let out = match r {
        Some(r) => r.mlv(env, &all),
        None => env.mlv(&all),
    };
    out.fails(code).json()
}

/// The problems as (kind, location, paths) for easy comparison.
fn problems(json: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    let mut v: Vec<_> = json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let paths = p["paths"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect();
            (
                p["kind"].as_str().unwrap().to_string(),
                p["location"].as_str().unwrap().to_string(),
                paths,
            )
        })
        .collect();
    v.sort();
    v
}

fn one(kind: &str, location: &str, paths: &[&str]) -> (String, String, Vec<String>) {
    (
        kind.into(),
        location.into(),
        paths.iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn a_clean_cache_passes() {
    let env = repo();
    let json = fsck(&env, None, &[], 0);
    assert_eq!(json["clean"], true, "{json}");
    // two files, the manifest and the model
    assert_eq!(json["objects"], 4, "{json}");
    assert!(json["bytes"].as_u64().unwrap() as usize > A.len() + B.len() + MODEL.len());
    let out = env.mlv(&["fsck"]).ok();
    assert!(out.stdout.is_empty(), "{out}");
    assert!(out.stderr.contains("no problems"), "{out}");
}

#[test]
fn missing_corrupt_and_truncated_objects_are_reported_with_their_paths() {
    let env = repo();
    std::fs::remove_file(env.object_path(A)).unwrap();
    flip_byte(&env.object_path(B));
    truncate(&env.object_path(MODEL));
    let json = fsck(&env, None, &[], 4);
    assert_eq!(
        problems(&json),
        vec![
            one("corrupt", "cache", &["data/sub/b.txt"]),
            one("missing", "cache", &["data/a.txt"]),
            one("wrong_size", "cache", &["model.bin"]),
        ],
        "{json}"
    );
    assert_eq!(json["clean"], false);
    let p = &json["problems"].as_array().unwrap();
    assert!(p.iter().any(|p| p["digest"] == hex(B)), "{json}");
    // text: one line per problem on stdout, naming object and paths
    let out = env.mlv(&["fsck"]).fails(4);
    assert_eq!(out.stdout.lines().count(), 3, "{out}");
    assert!(
        out.stdout.contains(&format!("missing in cache: {}", hex(A))),
        "{out}"
    );
    assert!(out.stdout.contains("needed by model.bin"), "{out}");
    assert!(out.stderr.contains("3 problems left"), "{out}");
    assert!(out.stderr.contains("fsck --repair"), "{out}");
    // a path argument checks only that data
    let json = fsck(&env, None, &["model.bin"], 4);
    assert_eq!(problems(&json), vec![one("wrong_size", "cache", &["model.bin"])]);
    let json = fsck(&env, None, &["data/sub"], 4);
    assert_eq!(
        problems(&json),
        vec![one("corrupt", "cache", &["data/sub/b.txt"])]
    );
}

#[test]
fn a_corrupt_manifest_is_reported_and_its_files_are_unchecked() {
    let env = repo();
    let m = digest_of(&env, "data.mlv");
    flip_byte(&cache_object(&env, &m));
    let json = fsck(&env, None, &[], 4);
    assert_eq!(
        problems(&json),
        vec![one("corrupt", "cache", &["data"])],
        "{json}"
    );
    assert_eq!(json["unlisted"], serde_json::json!(["data"]));
    let out = env.mlv(&["fsck"]).fails(4);
    assert!(out.stdout.contains("unchecked: data"), "{out}");
}

#[test]
fn fsck_without_a_repository_or_remote_is_a_clear_error() {
    Env::git_only()
        .mlv(&["fsck"])
        .refused("not an mlv repository", Some("mlv init"));
    repo()
        .mlv(&["fsck", "--repair"])
        .refused("no default remote", Some("mlv remote add"));
    repo().mlv(&["fsck", "--read-data"]).fails(2);
}

/// Damages the cache (a missing file, a flipped byte, a truncated file, a corrupt manifest)
/// and repairs it from the remote.
fn repair_from(r: TestRemote) {
    let env = pushed(&r);
    let m = digest_of(&env, "data.mlv");
    std::fs::remove_file(env.object_path(A)).unwrap();
    flip_byte(&env.object_path(B));
    truncate(&env.object_path(MODEL));
    flip_byte(&cache_object(&env, &m));
    let json = fsck(&env, Some(&r), &["--repair"], 0);
    assert_eq!(json["repaired"], 4, "{json}");
    assert_eq!(json["clean"], true, "{json}");
    assert!(json["problems"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["repaired"] == true));
    assert_eq!(std::fs::read(env.object_path(B)).unwrap(), B);
    assert_eq!(std::fs::read(env.object_path(MODEL)).unwrap(), MODEL);
    assert_eq!(std::fs::read(env.object_path(A)).unwrap(), A);
    let mode = std::fs::metadata(env.object_path(B)).unwrap().permissions();
    assert!(
        mode.readonly(),
        "repaired objects are read-only like every cache object"
    );
    let out = r.mlv(&env, &["fsck"]).ok();
    assert!(out.stderr.contains("no problems"), "{out}");
    assert!(
        std::fs::read_dir(env.path(".mlv/tmp")).map_or(true, |d| d.count() == 0),
        "no temporary file left"
    );
}

#[test]
fn repair_replaces_damaged_cache_objects_from_a_local_remote() {
    repair_from(local_remote());
}

#[test]
fn repair_replaces_damaged_cache_objects_from_s3() {
    if let Some(r) = s3_remote() {
        repair_from(r);
    }
}

#[test]
fn repair_keeps_the_damaged_object_when_the_remote_copy_is_damaged_too() {
    let r = local_remote();
    let env = pushed(&r);
    flip_byte(&env.object_path(B));
    r.tamper(&hex(B), Some(b"garbage"));
    std::fs::remove_file(env.object_path(A)).unwrap();
    r.tamper(&hex(A), None);
    let json = fsck(&env, Some(&r), &["--repair"], 4);
    let p = json["problems"].as_array().unwrap();
    assert_eq!(p.len(), 2, "{json}");
    for prob in p {
        assert_eq!(prob["repaired"], false, "{json}");
        assert!(prob["repair_error"].is_string(), "{json}");
    }
    // the damaged cache copy is still there (nothing better replaced it)
    assert!(env.object_path(B).exists());
    let out = r.mlv(&env, &["fsck", "--repair"]).fails(4);
    assert!(out.stdout.contains("not repaired: the copy on remote"), "{out}");
    assert!(out.stdout.contains("lacks it too"), "{out}");
}

/// Damages remote objects: presence and size catch a truncated and a deleted object, only
/// `--read-data` catches a same-size corruption; `--remote --repair` re-uploads all three.
fn remote_checks(r: TestRemote) {
    let env = pushed(&r);
    let json = fsck(&env, Some(&r), &["--remote"], 0);
    assert_eq!(json["remote_objects"], 4, "{json}");
    let mut flipped = B.to_vec();
    flipped[0] ^= 0xff;
    r.tamper(&hex(B), Some(&flipped));
    r.tamper(&hex(MODEL), Some(&MODEL[..3]));
    r.tamper(&hex(A), None);
    let json = fsck(&env, Some(&r), &["--remote"], 4);
    let name = json["remote"].as_str().unwrap().to_string();
    assert_eq!(
        problems(&json),
        vec![
            one("missing", &name, &["data/a.txt"]),
            one("wrong_size", &name, &["model.bin"]),
        ],
        "{json}"
    );
    let json = fsck(&env, Some(&r), &["--remote", "--read-data"], 4);
    assert_eq!(
        problems(&json),
        vec![
            one("corrupt", &name, &["data/sub/b.txt"]),
            one("missing", &name, &["data/a.txt"]),
            one("wrong_size", &name, &["model.bin"]),
        ],
        "{json}"
    );
    assert_eq!(json["read_data"], true);
    let json = fsck(&env, Some(&r), &["--remote", "--read-data", "--repair"], 0);
    assert_eq!(json["repaired"], 3, "{json}");
    assert_eq!(r.read(&hex(B)).unwrap(), B);
    assert_eq!(r.read(&hex(MODEL)).unwrap(), MODEL);
    assert_eq!(r.read(&hex(A)).unwrap(), A);
    fsck(&env, Some(&r), &["--remote", "--read-data"], 0);
}

#[test]
fn remote_checks_and_reupload_on_a_local_remote() {
    remote_checks(local_remote());
}

#[test]
fn remote_checks_and_reupload_on_s3() {
    if let Some(r) = s3_remote() {
        remote_checks(r);
    }
}

#[test]
fn a_fresh_clone_repairs_into_an_empty_cache_and_reads_manifests_from_the_remote() {
    let r = local_remote();
    let src = pushed(&r);
    let dst = Env::clone_of(&src);
    r.configure(&dst, "origin");
    // no cache: every object is missing, but the remote's manifest lists the files
    let json = fsck(&dst, Some(&r), &[], 4);
    assert_eq!(json["problems"].as_array().unwrap().len(), 2, "{json}");
    let json = fsck(&dst, Some(&r), &["--remote"], 4);
    assert_eq!(json["unlisted"], serde_json::json!([]), "{json}");
    assert_eq!(json["remote_objects"], 4, "{json}");
    let json = fsck(&dst, Some(&r), &["--remote", "--repair"], 0);
    assert_eq!(json["repaired"], 4, "{json}");
    assert_eq!(std::fs::read(dst.object_path(A)).unwrap(), A);
}

// Issue 12: sizes recorded wrongly (items 6 and 7) and unreadable objects (item 11).

#[test]
fn a_size_recorded_wrongly_is_a_pointer_or_manifest_problem() {
    let env = repo();
    env.set_pointer_size("model.bin.mlv", MODEL.len() as u64 + 3);
    env.forge_entry_size("data.mlv", "a.txt", A.len() as u64 - 1);
    let json = fsck(&env, None, &[], 4);
    assert_eq!(
        problems(&json),
        vec![
            one("wrong_recorded_size", "manifest", &["data/a.txt"]),
            one("wrong_recorded_size", "pointer", &["model.bin"]),
        ],
        "{json}"
    );
    let text = env.mlv(&["fsck"]).fails(4);
    assert!(
        text.stdout.contains(&format!(
            "wrong recorded size in pointer: {} (records {} bytes; the object hashes right and has {})",
            hex(MODEL),
            MODEL.len() + 3,
            MODEL.len()
        )),
        "{text}"
    );
    // a directory pointer whose total is not its manifest's
    let env = repo();
    env.set_pointer_size("data.mlv", 1);
    let json = fsck(&env, None, &[], 4);
    assert_eq!(
        problems(&json),
        vec![one("wrong_recorded_size", "pointer", &["data"])],
        "{json}"
    );
}

#[test]
fn repair_never_replaces_a_remote_copy_that_hashes_right() {
    // A pointer recording the wrong size for an intact object: `fsck --remote --repair` used to
    // report the remote copy as wrong-size, delete it and upload it again, on every run.
    let r = local_remote();
    let env = pushed(&r);
    env.set_pointer_size("model.bin.mlv", MODEL.len() as u64 + 3);
    let remote_copy = r.dir.as_ref().unwrap().join(&hex(MODEL)[..2]).join(hex(MODEL));
    let ino = |p: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = ino(&remote_copy);
    for args in [
        &["--remote", "--repair"][..],
        &["--remote", "--read-data", "--repair"],
    ] {
        let json = fsck(&env, Some(&r), args, 4);
        assert_eq!(
            problems(&json),
            vec![one("wrong_recorded_size", "pointer", &["model.bin"])],
            "{args:?}: {json}"
        );
        assert_eq!(
            ino(&remote_copy),
            before,
            "{args:?}: the remote copy was replaced"
        );
    }
    // A fresh clone (nothing in the cache to tell the true size): the remote copy is re-read,
    // found intact, and left alone.
    let dst = Env::clone_of(&env);
    r.configure(&dst, "origin");
    dst.set_pointer_size("model.bin.mlv", MODEL.len() as u64 + 3);
    let json = fsck(&dst, Some(&r), &["--remote"], 4);
    let name = json["remote"].as_str().unwrap().to_string();
    let mut found = problems(&json);
    found.retain(|p| p.0 != "missing" || p.1 != "cache");
    assert_eq!(
        found,
        vec![one("wrong_recorded_size", &name, &["model.bin"])],
        "{json}"
    );
    fsck(&dst, Some(&r), &["--remote", "--repair"], 4);
    assert_eq!(ino(&remote_copy), before, "the remote copy was replaced");
    assert_eq!(r.read(&hex(MODEL)).unwrap(), MODEL);
}

#[test]
fn an_unreadable_object_is_reported_as_unreadable_not_missing() {
    // Tests run as root, which reads any file: a directory in the object's place makes the
    // read fail (EISDIR) as a permission or I/O error would.
    let env = repo();
    let object = cache_object(&env, &hex(MODEL));
    std::fs::remove_file(&object).unwrap();
    std::fs::create_dir(&object).unwrap();
    let json = fsck(&env, None, &[], 4);
    assert_eq!(
        problems(&json),
        vec![one("unreadable", "cache", &["model.bin"])],
        "{json}"
    );
    let detail = json["problems"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(object.to_str().unwrap()) && detail.contains("Is a directory"),
        "{detail}"
    );
    env.mlv(&["fsck"]).fails(4).stdout_has("unreadable in cache:");
    // --repair does not stop at it
    let r = local_remote();
    let env = pushed(&r);
    let object = cache_object(&env, &hex(MODEL));
    std::fs::remove_file(&object).unwrap();
    std::fs::create_dir(&object).unwrap();
    let json = r.mlv(&env, &["fsck", "--repair", "--json"]).fails(4).json();
    assert_eq!(
        problems(&json),
        vec![one("unreadable", "cache", &["model.bin"])],
        "{json}"
    );
}
