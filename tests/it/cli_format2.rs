//! Remote format 2 from the command line, on a local-directory remote: `mlv remote upgrade`,
//! push and pull through packs and an index, a small edit of a large file, a format 1 remote
//! upgraded, a damaged pack, and the commands that refuse format 2 for now. The same transfers
//! on every backend are in `remote_backends.rs` (`format2_*`).

use std::path::{Path, PathBuf};

use crate::common::maint::tamper_file;
use crate::common::Env;

/// Deterministic pseudo-random bytes (content-defined chunking needs varied data).
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

const MIB: usize = 1 << 20;

/// A repository with a directory of small files and a 20 MiB file, committed, and a local
/// remote `origin` (not yet upgraded) in `remote`.
fn origin(remote: &Path) -> Env {
    let env = Env::new();
    for i in 0..30 {
        env.write(&format!("data/f{i}.txt"), format!("small file {i}\n"));
    }
    env.write("big.bin", noise(20 * MIB, 1));
    env.mlv(&["add", "data", "big.bin"]).ok();
    env.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env
}

/// The files under `dir`, relative, sorted (the staging directory left out).
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, d: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                if !p.ends_with(".mlv-tmp") {
                    walk(base, &p, out);
                }
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

/// The packs of a local remote, and their total size.
fn packs(remote: &Path) -> (Vec<PathBuf>, u64) {
    let p: Vec<PathBuf> = files(remote)
        .into_iter()
        .filter(|f| f.starts_with("packs/"))
        .map(|f| remote.join(f))
        .collect();
    let size = p.iter().map(|f| std::fs::metadata(f).unwrap().len()).sum();
    (p, size)
}

fn same_tree(a: &Env, b: &Env) {
    assert_eq!(a.read("big.bin"), b.read("big.bin"), "big.bin differs");
    for i in 0..30 {
        let f = format!("data/f{i}.txt");
        assert_eq!(a.read(&f), b.read(&f), "{f} differs");
    }
}

#[test]
fn format2_push_then_pull_into_a_clone_is_byte_identical() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    let up = src.mlv(&["remote", "upgrade", "origin", "--json"]).ok();
    assert_eq!(up.json()["outcome"], "upgraded", "{up}");
    let again = src.mlv(&["remote", "upgrade", "origin", "--json"]).ok();
    assert_eq!(again.json()["outcome"], "already_format2", "{again}");

    let push = src.mlv(&["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 32, "{push}");
    // only packs, index segments and the config document: no object of format 1
    let listed = files(&remote);
    assert!(listed.contains(&"mlv-remote.toml".to_string()), "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|f| f == "mlv-remote.toml" || f.starts_with("packs/") || f.starts_with("index/")),
        "{listed:?}"
    );
    let status = src.mlv(&["status", "--remote", "--json"]).ok();
    assert_eq!(status.json()["in_sync"], true, "{status}");
    let noop = src.mlv(&["push", "--json"]).ok();
    assert_eq!(
        (
            noop.json()["uploaded"].as_u64(),
            noop.json()["already_present"].as_u64()
        ),
        (Some(0), Some(32)),
        "{noop}"
    );
    assert_eq!(files(&remote), listed, "a no-op push writes nothing");

    let clone = Env::clone_of(&src);
    let pull = clone.mlv(&["pull", "--json"]).ok();
    assert_eq!(pull.json()["fetch"]["downloaded"], 32, "{pull}");
    same_tree(&src, &clone);
    let status = clone.mlv(&["status", "--remote", "--json"]).ok();
    assert_eq!(status.json()["in_sync"], true, "{status}");
}

#[test]
fn format2_a_middle_edit_of_a_large_file_moves_few_bytes_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.mlv(&["push"]).ok();
    let (first, first_bytes) = packs(&remote);
    assert!(first_bytes > 20 * MIB as u64, "{first_bytes}");
    let clone = Env::clone_of(&src);
    clone.mlv(&["pull"]).ok();

    let mut big = src.read("big.bin");
    let mid = big.len() / 2;
    big[mid..mid + 4096].copy_from_slice(&noise(4096, 7));
    src.write("big.bin", &big);
    src.mlv(&["add", "big.bin"]).ok();
    src.git(&["commit", "-qam", "edit"]);
    let push = src.mlv(&["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 1, "{push}");
    let (after, after_bytes) = packs(&remote);
    let new_bytes = after_bytes - first_bytes;
    assert_eq!(after.len(), first.len() + 1, "one new pack");
    // a 4 KiB edit touches one or two chunks of at most 1 MiB each
    assert!(new_bytes <= 3 * MIB as u64, "{new_bytes} bytes of new packs");
    assert!(
        new_bytes as f64 == push.json()["uploaded_bytes"].as_f64().unwrap(),
        "{push}"
    );

    // the clone's workspace holds the previous version: only the changed chunks come down
    clone.git(&["pull", "-q"]);
    let pull = clone.mlv(&["pull", "--json"]).ok();
    assert_eq!(clone.read("big.bin"), big);
    let down = pull.json()["fetch"]["downloaded_bytes"].as_u64().unwrap();
    assert!(down <= 3 * MIB as u64, "{down} bytes downloaded\n{pull}");
    // a fresh clone has nothing to reuse and gets the whole file
    let fresh = Env::clone_of(&src);
    let pull = fresh.mlv(&["pull", "--json"]).ok();
    assert_eq!(fresh.read("big.bin"), big);
    assert!(pull.json()["fetch"]["downloaded_bytes"].as_u64().unwrap() > 20 * MIB as u64);
}

#[test]
fn format2_an_upgraded_format1_remote_serves_old_objects_and_packs_new_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["push"]).ok();
    let v1 = files(&remote);
    assert!(!v1.iter().any(|f| f.starts_with("packs/")), "{v1:?}");

    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.write("new.txt", "added after the upgrade\n");
    src.mlv(&["add", "new.txt"]).ok();
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "new"]);
    let push = src.mlv(&["push", "--json"]).ok();
    // the format 1 objects count as present: only the new file is sent, into a pack
    assert_eq!(
        (
            push.json()["uploaded"].as_u64(),
            push.json()["already_present"].as_u64()
        ),
        (Some(1), Some(32)),
        "{push}"
    );
    let now = files(&remote);
    let fresh: Vec<&String> = now.iter().filter(|f| !v1.contains(f)).collect();
    assert!(!fresh.is_empty());
    assert!(
        fresh
            .iter()
            .all(|f| *f == "mlv-remote.toml" || f.starts_with("packs/") || f.starts_with("index/")),
        "{fresh:?}"
    );
    assert!(
        v1.iter().all(|f| now.contains(f)),
        "old objects stay where they are"
    );

    let clone = Env::clone_of(&src);
    clone.mlv(&["pull"]).ok();
    same_tree(&src, &clone);
    assert_eq!(clone.read_str("new.txt"), "added after the upgrade\n");
}

#[test]
fn format2_a_corrupted_pack_byte_makes_pull_refuse_and_publish_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.mlv(&["push", "big.bin"]).ok();
    let (p, _) = packs(&remote);
    assert_eq!(p.len(), 1, "{p:?}");
    let mut bytes = std::fs::read(&p[0]).unwrap();
    bytes[5 * MIB] ^= 0x40; // inside the blob area, far from header and footer
    tamper_file(&p[0], Some(&bytes));

    let clone = Env::clone_of(&src);
    clone.mlv(&["pull", "big.bin"]).fails(3).stderr_has("corrupt");
    assert!(!clone.exists("big.bin"));
    let cached = files(&clone.path(".mlv/cache"));
    assert!(cached.is_empty(), "nothing is published: {cached:?}");
}

#[test]
fn format2_fsck_and_gc_on_the_remote_refuse_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.mlv(&["push"]).ok();
    let before = files(&remote);
    src.mlv(&["fsck", "--remote"])
        .fails(1)
        .stderr_has("does not work on format 2 remotes yet")
        .stderr_has("hint:");
    assert_eq!(files(&remote), before);
}

#[test]
fn format2_a_remote_of_a_newer_format_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::write(remote.join("mlv-remote.toml"), "format = 3\n").unwrap();
    src.mlv(&["push"]).fails(1).stderr_has("format 3");
    src.mlv(&["remote", "upgrade", "origin"])
        .fails(1)
        .stderr_has("format 3");
    assert_eq!(files(&remote), ["mlv-remote.toml"]);
}

/// Killed right after its first pack reached the remote, or just before its first index
/// segment is written, a push run again completes, and a clone pulls everything back.
#[cfg(feature = "failpoints")]
#[test]
fn format2_an_interrupted_push_converges() {
    for point in ["push.after_pack", "push.before_segment"] {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote");
        let src = origin(&remote);
        src.mlv(&["remote", "upgrade", "origin"]).ok();
        let killed = src.mlv_env(&[("MLV_CRASH_AT", point)], &["push"]);
        assert_eq!(killed.code, None, "killed at {point}\n{killed}");
        let (p, _) = packs(&remote);
        assert_eq!(p.len(), 1, "{point}: the first pack is there: {p:?}");
        assert!(!files(&remote).iter().any(|f| f.starts_with("index/")), "{point}");
        let status = src.mlv(&["status", "--remote", "--json"]).ok();
        assert_eq!(status.json()["in_sync"], false, "{point}: {status}");

        src.mlv(&["push"]).ok();
        let status = src.mlv(&["status", "--remote", "--json"]).ok();
        assert_eq!(status.json()["in_sync"], true, "{point}: {status}");
        let clone = Env::clone_of(&src);
        clone.mlv(&["pull"]).ok();
        same_tree(&src, &clone);
    }
}
