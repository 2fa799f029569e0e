//! Packs: an `add` or `fetch` of many new small objects stores them in one pack file. Every
//! command that reads objects reads them out of packs too, verified; a damaged pack is found,
//! reported and repaired from a remote; gc rewrites packs that hold garbage.

use std::collections::BTreeMap;

use crate::common::maint::{local_remote, s3_remote, tamper_file, TestRemote};
use crate::common::{b3, read_pack, Env};

/// Files in the test tree: more than the default `cache.pack_min_objects` (512).
const FILES: usize = 600;

fn content(i: usize, version: u8) -> Vec<u8> {
    let mut c = format!("file {i} version {version}\n").into_bytes();
    c.resize(40 + (i * 97) % 3000, b'a' + (i % 26) as u8);
    c
}

/// `data/` with `FILES` small files (in nested directories) and one 2 MiB file, which is too
/// large for a pack.
fn write_data(env: &Env, version: u8) {
    for i in 0..FILES {
        env.write(
            &format!("data/d{}/e{}/f{i}.txt", i % 10, i % 3),
            content(i, version),
        );
    }
    env.write("data/big.bin", crate::common::noise(2 << 20, 7));
}

/// Every file under `dir`: relative path -> digest.
fn tree(env: &Env, dir: &str) -> BTreeMap<String, String> {
    let root = env.path(dir);
    walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(&root)
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            (rel, b3(&std::fs::read(e.path()).unwrap()))
        })
        .collect()
}

/// Loose objects (not packs) in the cache.
fn loose(env: &Env) -> Vec<String> {
    env.objects()
        .into_iter()
        .filter(|o| !o.starts_with("packs/"))
        .collect()
}

/// Every object in every pack of the cache.
fn packed(env: &Env) -> BTreeMap<String, (u64, Vec<u8>)> {
    let mut all = BTreeMap::new();
    for p in env.packs() {
        all.extend(read_pack(&p).unwrap());
    }
    all
}

fn added() -> Env {
    let env = Env::new();
    write_data(&env, 0);
    env.mlv(&["add", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "v0"]);
    env
}

#[test]
fn many_small_files_go_into_one_pack() {
    let env = added();
    let packs = env.packs();
    assert_eq!(packs.len(), 1, "{packs:?}");
    assert!(std::fs::metadata(&packs[0]).unwrap().permissions().readonly());
    let objects = packed(&env);
    assert_eq!(objects.len(), FILES);
    for i in [0, 299, FILES - 1] {
        assert!(
            objects.contains_key(&b3(&content(i, 0))),
            "file {i} is not packed"
        );
    }
    // the large file and the manifest are loose; nothing is left in the scratch directory
    assert_eq!(loose(&env).len(), 2, "{:?}", loose(&env));
    assert!(env.object_path(&crate::common::noise(2 << 20, 7)).is_file());
    assert_eq!(std::fs::read_dir(env.path(".mlv/tmp")).unwrap().count(), 0);

    env.mlv(&["status", "--exit-code"]).ok();
    let before = tree(&env, "data");
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(tree(&env, "data"), before);
    env.mlv(&["fsck"]).ok().stderr_has("no problems");

    // adding the same files again stores nothing new
    env.write("data/d0/e0/f0.txt", content(0, 0));
    env.mlv(&["add", "data"]).ok();
    assert_eq!(env.packs(), packs);

    // unchanged files whose objects were lost are stored again, packed
    std::fs::remove_file(&packs[0]).unwrap();
    env.mlv(&["add", "data"]).ok();
    assert_eq!(packed(&env).len(), FILES);
    assert_eq!(loose(&env).len(), 2);
}

#[test]
fn packing_follows_the_setting() {
    // 0: never pack
    let env = Env::new();
    env.set_pack_min(0);
    write_data(&env, 0);
    env.mlv(&["add", "data"]).ok();
    assert!(env.packs().is_empty());
    assert_eq!(loose(&env).len(), FILES + 2);

    // a small threshold packs a small tree
    let env = Env::new();
    env.set_pack_min(3);
    for i in 0..5 {
        env.write(&format!("few/f{i}"), content(i, 0));
    }
    env.mlv(&["add", "few"]).ok();
    assert_eq!(packed(&env).len(), 5);

    // workspace files that are links to the cache need loose objects
    let env = Env::new();
    let cfg = env
        .read_str(".mlv/config.toml")
        .replace("\"reflink\", \"copy\"", "\"hardlink\", \"copy\"");
    env.write(".mlv/config.toml", cfg);
    write_data(&env, 0);
    env.mlv(&["add", "data"]).ok();
    assert!(env.packs().is_empty());
    assert_eq!(loose(&env).len(), FILES + 2);
}

fn damage_packed(env: &Env, i: usize) -> String {
    let digest = b3(&content(i, 0));
    let (offset, _) = packed(env)[&digest].clone();
    let pack = &env.packs()[0];
    let mut bytes = std::fs::read(pack).unwrap();
    bytes[offset as usize + 3] ^= 0x55;
    tamper_file(pack, Some(&bytes));
    digest
}

fn damaged_pack_is_found_and_repaired(r: &TestRemote) {
    let env = added();
    r.configure(&env, "origin");
    r.mlv(&env, &["push"]).ok();
    let digest = damage_packed(&env, 42);

    let json = env.mlv(&["fsck", "--json"]).fails(4).json();
    let problems = json["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1, "{json}");
    assert_eq!(problems[0]["digest"], digest.as_str());
    assert_eq!(problems[0]["kind"], "corrupt");
    assert!(
        problems[0]["detail"].as_str().unwrap().contains("in pack"),
        "{json}"
    );
    assert_eq!(problems[0]["paths"][0], "data/d2/e0/f42.txt");

    // checkout refuses to write the damaged file and says so
    std::fs::remove_file(env.path("data/d2/e0/f42.txt")).unwrap();
    env.mlv(&["checkout"]).fails(3).stderr_has("corrupt");
    assert!(!env.exists("data/d2/e0/f42.txt"));
    // push refuses to send it
    let other = local_remote();
    env.mlv(&["remote", "add", "other", &other.url]).ok();
    r.mlv(&env, &["push", "-r", "other"]).fails(3).stderr_has(&digest);

    r.mlv(&env, &["fsck", "--repair"])
        .ok()
        .stderr_has("repaired 1 object");
    env.mlv(&["checkout"]).ok();
    assert_eq!(env.read("data/d2/e0/f42.txt"), content(42, 0));
    env.mlv(&["fsck"]).ok();

    // a pack whose index is damaged is reported, and its objects are missing
    let env = added();
    r.configure(&env, "origin");
    r.mlv(&env, &["push"]).ok();
    let pack = env.packs()[0].clone();
    let bytes = std::fs::read(&pack).unwrap();
    tamper_file(&pack, Some(&bytes[..bytes.len() - 10]));
    let out = env.mlv(&["fsck"]).fails(4);
    assert!(out.stdout.contains("damaged: pack file"), "{out}");
    env.mlv(&["status", "--exit-code"])
        .fails(1)
        .stdout_has("not in cache");
    r.mlv(&env, &["fsck", "--repair"]).fails(4); // the damaged pack is left for the user
    env.mlv(&["status", "--exit-code"]).ok();
}

#[test]
fn damaged_pack_local() {
    damaged_pack_is_found_and_repaired(&local_remote());
}

#[test]
fn damaged_pack_s3() {
    if let Some(r) = s3_remote() {
        damaged_pack_is_found_and_repaired(&r);
    }
}

/// Packed objects are pushed as ordinary remote objects; a fresh clone pulls them into a pack.
fn round_trip(r: &TestRemote) {
    let env = added();
    r.configure(&env, "origin");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "remote"]);
    let push = r.mlv(&env, &["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], FILES + 2, "{push}");
    assert_eq!(r.objects().len(), FILES + 2);

    let clone = Env::clone_of(&env);
    r.mlv(&clone, &["pull"]).ok();
    assert_eq!(tree(&clone, "data"), tree(&env, "data"));
    assert_eq!(packed(&clone).len(), FILES);
    assert_eq!(loose(&clone).len(), 2);
    clone.mlv(&["status", "--exit-code"]).ok();
    let again = r.mlv(&clone, &["push", "--json"]).ok();
    assert_eq!(again.json()["uploaded"], 0, "{again}");
}

#[test]
fn round_trip_local() {
    round_trip(&local_remote());
}

#[test]
fn round_trip_s3() {
    if let Some(r) = s3_remote() {
        round_trip(&r);
    }
}

#[test]
fn gc_rewrites_packs_that_hold_garbage() {
    let env = added();
    env.set_pack_min(100);
    // version 1: a third of the files change, in a pack of their own
    for i in (0..FILES).step_by(3) {
        env.write(&format!("data/d{}/e{}/f{i}.txt", i % 10, i % 3), content(i, 1));
    }
    env.mlv(&["add", "data"]).ok();
    assert_eq!(env.packs().len(), 2);
    let v1 = tree(&env, "data");

    // a dry run changes nothing; within the grace period nothing goes
    let before = env.objects();
    let dry = env
        .mlv(&["gc", "--workspace", "--grace", "0", "--json"])
        .ok()
        .json();
    assert_eq!(dry["cache"]["removed"], FILES / 3 + 1, "{dry}");
    assert_eq!(env.objects(), before);
    env.mlv(&["gc", "--workspace", "--force"]).ok();
    assert_eq!(env.objects(), before);

    env.mlv(&["gc", "--workspace", "--grace", "0", "--force"]).ok();
    let objects = packed(&env);
    assert_eq!(objects.len(), FILES, "only the live objects are left in packs");
    assert!(!objects.contains_key(&b3(&content(0, 0))));
    assert!(objects.contains_key(&b3(&content(1, 0))));
    assert!(objects.contains_key(&b3(&content(0, 1))));
    assert_eq!(env.packs().len(), 2);
    std::fs::remove_dir_all(env.path("data")).unwrap();
    env.mlv(&["checkout"]).ok();
    assert_eq!(tree(&env, "data"), v1);
    env.mlv(&["fsck"]).ok();
}
