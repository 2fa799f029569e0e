//! `gc --remote` on a format 2 remote (local directory): two phases (mark, then delete after
//! the grace period by the remote's clock), a push after a mark uploading again what it needs,
//! kill -9 at every step of push, pull and both gc phases, and seeded interleavings of two
//! pushers and gc. After each: every committed pointer in scope stays restorable.

use std::collections::BTreeMap;
use std::path::Path;

use crate::common::noise;
use crate::common::Env;

/// The files under `dir` that start with `prefix`, relative, sorted.
fn keys(dir: &Path, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if rel.starts_with(prefix) {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

/// Tracked contents of a repository: path -> bytes.
type Tree = BTreeMap<String, Vec<u8>>;

/// A version of the data: a file replaced each version, a directory with one file that
/// changes and some that do not.
fn tree(version: u64) -> Tree {
    let mut t = Tree::new();
    t.insert("model.bin".into(), noise(150_000, 1000 + version));
    for i in 0..4 {
        let seed = if i == 0 { 2000 + version } else { 3000 + i };
        t.insert(format!("data/f{i}"), noise(3000 + i as usize, seed));
    }
    t
}

/// Writes `t` (replacing the tracked data), adds, commits.
fn commit(env: &Env, t: &Tree, msg: &str) {
    let _ = std::fs::remove_dir_all(env.path("data"));
    for (p, c) in t {
        env.write(p, c);
    }
    env.mlv(&["add", "model.bin", "data"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-q", "--allow-empty", "-m", msg]);
}

/// A repository with a local format 2 remote `origin` in `remote`.
fn repo(remote: &Path) -> Env {
    let env = Env::new();
    env.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    env.mlv(&["remote", "upgrade", "origin"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "remote"]);
    env
}

fn gc(env: &Env, grace: &str) -> serde_json::Value {
    let out = env
        .mlv(&["gc", "--remote", "--force", "--grace", grace, "--json"])
        .ok();
    out.json()["remote"]["format2"].clone()
}

/// The one check every scenario ends with: a fresh clone of `env` at each of `commits` pulls
/// its data from the remote and gets exactly `expected` (whose trees they are). (When `fsck
/// --remote` handles format 2, it belongs here too.)
fn assert_restorable(env: &Env, commits: &[(String, Tree)], ctx: &str) {
    let clone = Env::clone_of(env);
    for (commit, want) in commits {
        clone.git(&["checkout", "-q", commit]);
        let out = clone.mlv(&["pull"]);
        assert_eq!(out.code, Some(0), "{ctx}: pull of {commit}\n{out}");
        for (p, c) in want {
            assert!(clone.read(p) == *c, "{ctx}: {p} at {commit} differs");
        }
    }
}

fn head(env: &Env) -> String {
    env.git(&["rev-parse", "HEAD"]).trim().to_string()
}

/// Commits `tree(0)` .. `tree(n - 1)` as `v0` .. and pushes each.
fn push_versions(src: &Env, n: u64) {
    for i in 0..n {
        commit(src, &tree(i), &format!("v{i}"));
        src.mlv(&["push"]).ok();
    }
}

fn pack_count(remote: &Path) -> usize {
    keys(remote, "packs/").len()
}

#[test]
fn format2_gc_marks_unused_packs_then_deletes_them_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = repo(&remote);
    push_versions(&src, 3);
    // each push: a pack of files, then one of the directory's manifest
    assert_eq!(pack_count(&remote), 6);
    assert_eq!(keys(&remote, "index/").len(), 6);

    // a dry run writes nothing
    let before = keys(&remote, "");
    let dry = src.mlv(&["gc", "--remote", "--grace", "0", "--json"]).ok();
    let f2 = &dry.json()["remote"]["format2"];
    assert_eq!(f2["marked"].as_array().unwrap().len(), 3, "{dry}");
    assert_eq!(keys(&remote, ""), before);

    // unused: v0's manifest, v1's files (model.bin and f0) and manifest; v0's files pack
    // holds f1..f3, still in use
    let first = gc(&src, "0");
    let marked: Vec<String> = first["marked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pack"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(marked.len(), 3, "{first}");
    assert_eq!(first["deleted"].as_array().unwrap().len(), 0, "{first}");
    assert_eq!(first["live_packs"], 3, "{first}");
    let marks = keys(&remote, "gc/marks/");
    assert_eq!(marks.len(), 1);
    let text = std::fs::read_to_string(remote.join(&marks[0])).unwrap();
    let lines: String = marked.iter().map(|p| format!("{p}\n")).collect();
    let (head_lines, packs) = text.split_at(14 + 69);
    assert!(head_lines.starts_with("mlv-gc-mark 1\nrun "), "{text}");
    assert_eq!(packs, lines);
    assert_eq!(
        marks[0],
        format!("gc/marks/{}", crate::common::b3(text.as_bytes()))
    );
    assert!(keys(&remote, "gc/clock").is_empty(), "the clock probe is removed");
    assert_eq!(pack_count(&remote), 6, "marked, not deleted");

    // within the grace period: waits
    let waiting = gc(&src, "1h");
    assert_eq!(waiting["waiting"], 3, "{waiting}");
    assert_eq!(waiting["deleted"].as_array().unwrap().len(), 0, "{waiting}");
    assert_eq!(pack_count(&remote), 6);

    let second = gc(&src, "0");
    assert_eq!(second["deleted"].as_array().unwrap().len(), 3, "{second}");
    assert_eq!(second["segments_merged"], 6, "{second}");
    assert_eq!(pack_count(&remote), 3);
    for p in &marked {
        assert!(!keys(&remote, "packs/").iter().any(|k| k.ends_with(p.as_str())));
    }
    assert_eq!(keys(&remote, "index/").len(), 1, "one merged segment");
    assert!(keys(&remote, "gc/").is_empty(), "the marker is removed");
    assert_restorable(&src, &[(head(&src), tree(2))], "after the sweep");

    // nothing left to do: a further run changes nothing
    let before = keys(&remote, "");
    let third = gc(&src, "0");
    assert_eq!(third["marked"].as_array().unwrap().len(), 0, "{third}");
    assert_eq!(keys(&remote, ""), before);
    // pushing again still works on top of the merged index
    commit(&src, &tree(3), "v3");
    src.mlv(&["push"]).ok();
    assert_restorable(&src, &[(head(&src), tree(3))], "after a push");
}

/// With --repack, a pack mostly unused (v0's files: the old model.bin and f0 beside the
/// small f1..f3 still in use) has its needed blobs copied into a new pack, then is marked and
/// deleted like an unused pack.
#[test]
fn format2_gc_repack_copies_the_blobs_in_use_out_of_a_mostly_unused_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = repo(&remote);
    for v in 0..3 {
        commit(&src, &tree(v), &format!("v{v}"));
        src.mlv(&["push"]).ok();
    }
    let bytes = |r: &Path| -> u64 {
        keys(r, "packs/")
            .iter()
            .map(|k| std::fs::metadata(r.join(k)).unwrap().len())
            .sum()
    };
    let before = bytes(&remote);
    let dry = src
        .mlv(&["gc", "--remote", "--repack", "--grace", "0", "--json"])
        .ok();
    assert_eq!(
        dry.json()["remote"]["format2"]["repacked"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "{dry}"
    );
    assert_eq!(keys(&remote, "packs/").len(), 6, "a dry run writes nothing");
    let first = src
        .mlv(&["gc", "--remote", "--force", "--repack", "--grace", "0", "--json"])
        .ok();
    let f2 = &first.json()["remote"]["format2"];
    assert_eq!(f2["repacked"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(f2["repacked"][0]["kept_blobs"], 3, "{first}");
    assert_eq!(f2["marked"].as_array().unwrap().len(), 4, "{first}");
    assert_eq!(
        keys(&remote, "packs/").len(),
        7,
        "the new pack, nothing deleted yet"
    );
    assert_restorable(&src, &[(head(&src), tree(2))], "repacked, not swept");
    let second = gc(&src, "0");
    assert_eq!(second["deleted"].as_array().unwrap().len(), 4, "{second}");
    assert_eq!(keys(&remote, "packs/").len(), 3);
    assert!(
        bytes(&remote) * 2 < before,
        "{} of {before} bytes left",
        bytes(&remote)
    );
    assert_restorable(&src, &[(head(&src), tree(2))], "repacked and swept");
    let third = gc(&src, "0");
    assert_eq!(third["marked"].as_array().unwrap().len(), 0, "{third}");
}

/// A clone that gc does not see (its commit is not in the collector's refs) pushes after a
/// mark: its push uploads again what the marked pack held, so the sweep that deletes that
/// pack loses nothing of it.
#[test]
fn format2_a_push_after_a_mark_does_not_depend_on_the_marked_pack() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = repo(&remote);
    commit(&src, &tree(0), "v0");
    src.mlv(&["push"]).ok();
    // another clone holds v1 in its cache, pushed before
    let other = Env::clone_of(&src);
    commit(&other, &tree(1), "v1 elsewhere");
    other.mlv(&["push"]).ok();
    // src never sees v1: its pack is unused from here
    commit(&src, &tree(2), "v2");
    src.mlv(&["push"]).ok();
    let first = gc(&src, "0");
    assert_eq!(first["marked"].as_array().unwrap().len(), 3, "{first}");

    // after the mark, the other clone pushes v1 (say, on a new branch): it must not count on
    // the marked pack
    let push = other.mlv(&["push", "--json"]).ok();
    assert!(push.json()["uploaded"].as_u64().unwrap() > 0, "{push}");
    let second = gc(&src, "0");
    assert!(second["markers_removed"] == 1, "{second}");
    assert_restorable(&other, &[(head(&other), tree(1))], "the other clone");
    assert_restorable(&src, &[(head(&src), tree(2))], "the collector");
}

/// A pack marked, then needed again by the collector's own refs, is kept and unmarked.
#[test]
fn format2_a_marked_pack_in_use_again_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = repo(&remote);
    push_versions(&src, 3);
    let first = gc(&src, "0");
    assert_eq!(first["marked"].as_array().unwrap().len(), 3, "{first}");
    // v1 is back (a tag on its commit)
    src.git(&["tag", "v1", "HEAD~1"]);
    let second = gc(&src, "0");
    // v1's packs (files, manifest) are in use again; v0's manifest pack is not
    assert_eq!(second["deleted"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["revived"], 2, "{second}");
    assert!(keys(&remote, "gc/").is_empty());
    assert_eq!(pack_count(&remote), 5);
    let v1 = src.git(&["rev-parse", "v1"]).trim().to_string();
    assert_restorable(&src, &[(v1, tree(1)), (head(&src), tree(2))], "revived");
}

/// An upgraded format 1 remote: its format 1 objects follow the format 1 rules, its packs the
/// format 2 ones, and nothing else on the remote is touched.
#[test]
fn format2_gc_on_an_upgraded_remote_keeps_foreign_keys_and_collects_format1_objects() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = Env::new();
    src.mlv(&[
        "remote",
        "add",
        "origin",
        remote.to_str().unwrap(),
        "--default",
        "--format",
        "1",
    ])
    .ok();
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "remote"]);
    commit(&src, &tree(0), "v0");
    src.mlv(&["push"]).ok(); // format 1
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    commit(&src, &tree(1), "v1");
    src.mlv(&["push"]).ok(); // format 2
    std::fs::create_dir_all(remote.join("gc/marks")).unwrap();
    std::fs::write(remote.join("gc/marks/notes.txt"), "mine").unwrap();
    std::fs::write(remote.join("packs/README"), "mine").unwrap();
    // a clock probe a killed gc left (removed), and a file that only looks like one (kept)
    std::fs::create_dir_all(remote.join("gc/clock")).unwrap();
    let probe = format!("gc/clock/{}", crate::common::b3(b"probe"));
    std::fs::write(remote.join(&probe), "mlv gc clock probe\n").unwrap();
    std::fs::write(remote.join("gc/clock/notes"), "mine").unwrap();
    let v1_files = keys(&remote, "").len();
    let out = src
        .mlv(&["gc", "--remote", "--force", "--grace", "0", "--json"])
        .ok();
    let j = out.json();
    // v0's model.bin and f0 (format 1 objects) and its manifest go
    assert_eq!(j["remote"]["removed"], 3, "{out}");
    assert!(keys(&remote, "").len() < v1_files);
    assert!(remote.join("gc/marks/notes.txt").exists());
    assert!(remote.join("packs/README").exists());
    assert!(!remote.join(&probe).exists());
    gc(&src, "0");
    assert!(remote.join("gc/marks/notes.txt").exists());
    assert!(remote.join("gc/clock/notes").exists());
    assert_restorable(&src, &[(head(&src), tree(1))], "upgraded");
}

/// Kill -9 at every step of both gc phases, and of a push and a pull around them: the data of
/// every commit in scope stays restorable, and running the commands again converges (no
/// marker left, the unused pack gone).
#[cfg(feature = "failpoints")]
#[test]
fn format2_gc_killed_at_every_step_converges() {
    let points = [
        "gc.after_repack:1",
        "gc.after_mark:1",
        "gc.after_merged_segment:1",
        "gc.after_segment_delete:1",
        "gc.after_segment_delete:2",
        "gc.after_pack_delete:1",
        "gc.before_marker_delete:1",
        "push.after_plan:1",
        "push.after_pack:1",
        "push.before_segment:1",
        "push.before_manifests:1",
        "fetch.before_files:1",
        "cache.mid_publish:1",
        "pull.before_checkout:1",
        "checkout.after_place:1",
    ];
    for point in points {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote");
        let src = repo(&remote);
        commit(&src, &tree(0), "v0");
        src.mlv(&["push"]).ok();
        commit(&src, &tree(1), "v1");
        src.mlv(&["push"]).ok();
        commit(&src, &tree(2), "v2");
        let v1 = (src.git(&["rev-parse", "HEAD~1"]).trim().to_string(), tree(1));
        let v2 = (head(&src), tree(2));
        let crash = [("MLV_CRASH_AT", point)];
        let mut killed = false;
        // push, mark, sweep: each may be killed at the point; checked, then run again
        // (v0's files pack is mostly unused: --repack copies f1..f3 out of it)
        let steps: [&[&str]; 3] = [
            &["push"],
            &["gc", "--remote", "--force", "--repack", "--grace", "0"],
            &["gc", "--remote", "--force", "--repack", "--grace", "0"],
        ];
        for (n, args) in steps.into_iter().enumerate() {
            let out = src.mlv_env(&crash, args);
            if out.code.is_none() {
                killed = true;
                let ctx = format!("{point}, killed in step {n}");
                let done: &[(String, Tree)] = if n == 0 {
                    std::slice::from_ref(&v1)
                } else {
                    std::slice::from_ref(&v2)
                };
                assert_restorable(&src, done, &ctx);
                src.mlv(args).ok();
            } else {
                assert_eq!(out.code, Some(0), "{point}: {out}");
            }
            assert_restorable(&src, std::slice::from_ref(&v2), point);
        }
        let clone = Env::clone_of(&src);
        let out = clone.mlv_env(&crash, &["pull"]);
        killed |= out.code.is_none();
        assert!(killed, "{point}: never reached");
        // converge: pull again, gc until nothing is marked or waiting
        clone.mlv(&["pull"]).ok();
        for (p, c) in tree(2) {
            assert!(clone.read(&p) == c, "{point}: {p}");
        }
        gc(&src, "0");
        gc(&src, "0");
        let last = gc(&src, "0");
        assert_eq!(last["marked"].as_array().unwrap().len(), 0, "{point}: {last}");
        assert!(keys(&remote, "gc/").is_empty(), "{point}");
        assert_eq!(keys(&remote, "index/").len(), 1, "{point}");
        assert_restorable(&src, &[(head(&src), tree(2))], point);
    }
}

/// A deterministic pseudo-random generator (splitmix64).
#[cfg(feature = "failpoints")]
struct Rng(u64);

#[cfg(feature = "failpoints")]
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n.max(1)
    }
}

/// One seeded run: two clones commit versions drawn from a small pool (so content comes
/// back after it was marked, and both push the same blobs) and push; a third repository
/// fetches their branches and runs `gc --remote --grace 0`, with `--repack` half the time
/// (mark and sweep as soon as it can); the pushers pull now and then, and sometimes push across a gc run (held by
/// `MLV_PAUSE_AT` once they know what to send). After every gc, every branch tip is
/// restorable.
#[cfg(feature = "failpoints")]
fn interleave(seed: u64, steps: usize) {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let g = repo(&remote);
    let pushers = [Env::clone_of(&g), Env::clone_of(&g)];
    for (i, p) in pushers.iter().enumerate() {
        g.git(&["remote", "add", &format!("p{i}"), p.root.to_str().unwrap()]);
    }
    let mut current: [Option<u64>; 2] = [None, None];
    let mut rng = Rng(seed);
    let mut log = Vec::new();
    let check = |current: &[Option<u64>; 2], log: &[String]| {
        for (i, p) in pushers.iter().enumerate() {
            if let Some(v) = current[i] {
                let ctx = format!("seed {seed}, pusher {i} at v{v}, after {log:?}");
                assert_restorable(p, &[(head(p), tree(v))], &ctx);
            }
        }
    };
    for _ in 0..steps {
        match rng.below(11) {
            0..=4 => {
                let i = rng.below(2) as usize;
                let v = rng.below(5);
                let p = &pushers[i];
                commit(p, &tree(v), &format!("v{v}"));
                let out = p.mlv(&["push"]);
                assert_eq!(out.code, Some(0), "seed {seed}, after {log:?}\n{out}");
                current[i] = Some(v);
                log.push(format!("p{i} push v{v}"));
            }
            5..=7 => {
                g.git(&["fetch", "-q", "--all"]);
                let mut args = vec!["gc", "--remote", "--force", "--grace", "0", "--json"];
                if rng.below(2) == 0 {
                    args.push("--repack");
                }
                let out = g.mlv(&args);
                assert_eq!(out.code, Some(0), "seed {seed}, after {log:?}\n{out}");
                let f2 = &out.json()["remote"]["format2"];
                log.push(format!(
                    "gc: repacked {}, marked {}, deleted {}, revived {}",
                    f2["repacked"].as_array().map_or(0, Vec::len),
                    f2["marked"].as_array().map_or(0, Vec::len),
                    f2["deleted"].as_array().map_or(0, Vec::len),
                    f2["revived"]
                ));
                check(&current, &log);
            }
            8 | 9 => {
                // a push that starts after the last mark, held once it has planned what to
                // send, while one gc runs (it sweeps what was marked before the push began)
                let i = rng.below(2) as usize;
                let v = rng.below(5);
                let p = &pushers[i];
                // gc knows every tip but the commit being pushed (it would refuse that one:
                // its directory manifest is not on the remote yet)
                g.git(&["fetch", "-q", "--all"]);
                commit(p, &tree(v), &format!("v{v}"));
                let push = paused(p, "push.after_plan:1", &["push"]);
                let held = matches!(push, Held::Paused(_));
                let out = g.mlv(&["gc", "--remote", "--force", "--grace", "0", "--json"]);
                let pushed = resume(push);
                assert_eq!(out.code, Some(0), "seed {seed}, after {log:?}\n{out}");
                assert_eq!(pushed.code, Some(0), "seed {seed}, after {log:?}\n{pushed}");
                current[i] = Some(v);
                let f2 = &out.json()["remote"]["format2"];
                log.push(format!(
                    "p{i} push v{v} {} a gc (marked {}, deleted {}, revived {})",
                    if held {
                        "across"
                    } else {
                        "(nothing to send) before"
                    },
                    f2["marked"].as_array().map_or(0, Vec::len),
                    f2["deleted"].as_array().map_or(0, Vec::len),
                    f2["revived"]
                ));
                check(&current, &log);
            }
            _ => {
                let i = rng.below(2) as usize;
                if current[i].is_some() {
                    let out = pushers[i].mlv(&["pull"]);
                    assert_eq!(out.code, Some(0), "seed {seed}, after {log:?}\n{out}");
                    log.push(format!("p{i} pull"));
                }
            }
        }
    }
    g.git(&["fetch", "-q", "--all"]);
    for _ in 0..2 {
        g.mlv(&["gc", "--remote", "--force", "--grace", "0"]).ok();
    }
    check(&current, &log);
    eprintln!("seed {seed}: {log:?}");
}

/// Seeded interleavings (`MLV_INTERLEAVE_SEED` runs one seed; its log is in any failure).
#[cfg(feature = "failpoints")]
#[test]
fn format2_random_interleavings_of_two_pushers_and_gc_keep_every_tip_restorable() {
    let seeds: Vec<u64> = match std::env::var("MLV_INTERLEAVE_SEED") {
        Ok(s) => vec![s.parse().expect("MLV_INTERLEAVE_SEED is a number")],
        Err(_) => vec![1, 2, 3],
    };
    for seed in seeds {
        interleave(seed, 24);
    }
}

/// The process state letter from /proc (R, S, T, Z, ...).
#[cfg(feature = "failpoints")]
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// A command started paused at a point, or that ended without reaching it.
#[cfg(feature = "failpoints")]
enum Held {
    Paused(std::process::Child),
    Ended(crate::common::Output),
}

/// Starts `mlv ARGS` in `env`, paused at `point`, and waits until it stopped there (or ended:
/// a push with nothing to send never reaches `push.after_plan`).
#[cfg(feature = "failpoints")]
fn paused(env: &Env, point: &str, args: &[&str]) -> Held {
    let mut child = env
        .command(crate::common::MLV, args)
        .env("MLV_PAUSE_AT", point)
        .spawn();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while proc_state(child.id()) != Some('T') {
        if child.try_wait().unwrap().is_some() {
            return Held::Ended(crate::common::Output::of_child(child));
        }
        assert!(
            std::time::Instant::now() < deadline,
            "mlv {args:?} never reached {point}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Held::Paused(child)
}

/// Resumes a held command and waits for it to end.
#[cfg(feature = "failpoints")]
fn resume(held: Held) -> crate::common::Output {
    match held {
        Held::Paused(child) => {
            let pid = i32::try_from(child.id()).unwrap();
            // SAFETY: signalling our own child.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
            crate::common::Output::of_child(child)
        }
        Held::Ended(out) => out,
    }
}

/// The documented limit: a push must not take longer than the grace period. A push held
/// after its files' pack is indexed and before its directory manifest goes up, while gc runs
/// twice with `--grace 0` (mark, then sweep): the push's fresh pack is unused in gc's view,
/// is marked and deleted, and the push, resumed, completes with data that is gone. With a
/// grace period longer than the push, the fresh pack is kept and everything is restorable.
#[cfg(feature = "failpoints")]
#[test]
fn format2_a_push_slower_than_the_grace_period_is_the_documented_limit() {
    for (grace, safe) in [("0", false), ("1h", true)] {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote");
        let g = repo(&remote);
        commit(&g, &tree(0), "v0");
        g.mlv(&["push"]).ok();
        let a = Env::clone_of(&g);
        commit(&a, &tree(1), "v1");
        let push = paused(&a, "push.before_manifests:1", &["push"]);
        assert!(matches!(push, Held::Paused(_)), "grace {grace}: the push is held");
        let first = gc(&g, grace);
        gc(&g, grace);
        resume(push).ok();
        let clone = Env::clone_of(&a);
        let pull = clone.mlv(&["pull"]);
        if safe {
            assert!(first["recent_packs"].as_u64().unwrap() >= 1, "{first}");
            assert_eq!(pull.code, Some(0), "grace {grace}\n{pull}");
            assert_restorable(&a, &[(head(&a), tree(1))], "a push within the grace period");
        } else {
            assert_eq!(first["marked"].as_array().unwrap().len(), 1, "{first}");
            assert_ne!(
                pull.code,
                Some(0),
                "grace {grace}: the push lost its pack\n{pull}"
            );
        }
    }
}
