//! Remote format 2 from the command line, on a local-directory remote: `mlv remote upgrade`,
//! push and pull through packs and an index, a small edit of a large file, a format 1 remote
//! upgraded, a damaged pack, the commands that refuse format 2 for now, a first push
//! initialising format 2 (or not, with `--format 1`), and one object streamed from the remote. The same transfers
//! on every backend are in `remote_backends.rs` (`format2_*`).

use std::path::{Path, PathBuf};

use mlv::hash::Digest;
use mlv::remote::format2::pack::MAX_PACK_SIZE;
use mlv::remote::format2::IndexSegment;

use crate::common::maint::tamper_file;
use crate::common::noise;
use crate::common::Env;

const MIB: usize = 1 << 20;

/// A repository with a directory of small files and a 20 MiB file, committed, and a local
/// remote `origin` (format 1 until upgraded) in `remote`.
fn origin(remote: &Path) -> Env {
    let env = Env::new();
    for i in 0..30 {
        env.write(&format!("data/f{i}.txt"), format!("small file {i}\n"));
    }
    env.write("big.bin", noise(20 * MIB, 1));
    env.mlv(&["add", "data", "big.bin"]).ok();
    env.mlv(&[
        "remote",
        "add",
        "origin",
        remote.to_str().unwrap(),
        "--default",
        "--format",
        "1",
    ])
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
fn format2_fsck_repair_and_gc_on_the_remote_refuse_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.mlv(&["push"]).ok();
    let before = files(&remote);
    src.mlv(&["fsck", "--remote", "--repair"])
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

// ---- fsck --remote on format 2, and pull on damaged format 2 remotes ----

/// The remote's index segments: their paths and, all in one, their contents.
fn segment(remote: &Path) -> (Vec<PathBuf>, IndexSegment) {
    let listed: Vec<String> = files(remote)
        .into_iter()
        .filter(|f| f.starts_with("index/"))
        .collect();
    assert!(!listed.is_empty());
    let mut all = IndexSegment::default();
    for f in &listed {
        let name: Digest = f["index/".len()..].parse().unwrap();
        let seg = IndexSegment::decode(name, &std::fs::read(remote.join(f)).unwrap()).unwrap();
        all.packs.extend(seg.packs);
        all.blobs.extend(seg.blobs);
        all.recipes.extend(seg.recipes);
    }
    (listed.iter().map(|f| remote.join(f)).collect(), all)
}

/// Replaces the remote's segments by `seg` (encoded under its name), which it returns.
fn replace_segment(remote: &Path, seg: &IndexSegment) -> Digest {
    let (old, _) = segment(remote);
    let (name, bytes) = seg.encode().unwrap();
    for p in old {
        tamper_file(&p, None);
    }
    std::fs::write(remote.join(format!("index/{name}")), bytes).unwrap();
    name
}

/// A local remote holding big.bin (chunked) and, in the same push, the small files.
fn pushed() -> (tempfile::TempDir, PathBuf, Env) {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.mlv(&["push"]).ok();
    (tmp, remote, src)
}

/// Pull of big.bin into a fresh clone fails with exit 3 and one error line naming `what`
/// and the path; nothing of big.bin reaches the cache or the workspace; then fsck --remote
/// (with `fsck_args`) in the origin (whose cache is whole) reports a problem of `item` on the
/// remote, needed by big.bin, exit 4.
fn refused_and_reported(src: &Env, what: &str, fsck_args: &[&str], item: &str) {
    let clone = Env::clone_of(src);
    let big = src.read("big.bin");
    let big_id = Digest::of_bytes(&big).to_string();
    let out = clone.mlv(&["pull", "big.bin"]).fails(3);
    let err = out.stderr_lines("error: ");
    assert_eq!(err.len(), 1, "{what}\n{out}");
    assert!(err[0].contains(what) && err[0].contains("big.bin"), "{out}");
    assert!(out.stderr.contains("hint: "), "{out}");
    assert!(!clone.exists("big.bin"), "{out}");
    assert!(!clone.objects().iter().any(|o| o.ends_with(&big_id)), "{out}");
    let mut args = vec!["fsck", "--remote", "--json"];
    args.extend_from_slice(fsck_args);
    let fsck = src.mlv(&args).fails(4);
    let j = fsck.json();
    assert_eq!(j["clean"], false, "{fsck}");
    let problems = j["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .all(|p| p["location"] != "cache" && p["paths"].as_array().unwrap().contains(&"big.bin".into())),
        "{fsck}"
    );
    assert!(problems.iter().any(|p| p["item"] == item), "{fsck}");
    // and in text, a line naming the path
    let mut args = vec!["fsck", "--remote"];
    args.extend_from_slice(fsck_args);
    let text = src.mlv(&args).fails(4);
    assert!(text.stdout.contains("needed by big.bin"), "{text}");
}

#[test]
fn format2_fsck_remote_checks_index_and_packs_and_allows_unreferenced_packs() {
    let (_tmp, remote, src) = pushed();
    let (segs, mut seg) = segment(&remote);
    seg.packs.sort();
    seg.packs.dedup();
    for args in [
        &["fsck", "--remote", "--json"][..],
        &["fsck", "--remote", "--read-data", "--json"],
    ] {
        let out = src.mlv(args).ok();
        let j = out.json();
        assert_eq!(j["clean"], true, "{out}");
        assert_eq!(j["remote_objects"], 32, "{out}");
        assert_eq!(j["format2"]["segments"], segs.len(), "{out}");
        assert_eq!(j["format2"]["packs"], seg.packs.len(), "{out}");
        assert_eq!(j["format2"]["blobs"], seg.blobs.len(), "{out}");
        let read = if args.contains(&"--read-data") {
            seg.packs.len()
        } else {
            0
        };
        assert_eq!(j["format2"]["packs_read"], read, "{out}");
        assert_eq!(j["format2"]["format1_objects"], 0, "{out}");
    }
    // a pack no index names (an interrupted push): reported, not a problem
    let stray = b"not even a pack";
    let id = Digest::of_bytes(stray);
    let at = remote.join(format!("packs/{}/{id}", id.fanout()));
    std::fs::create_dir_all(at.parent().unwrap()).unwrap();
    std::fs::write(&at, stray).unwrap();
    let out = src.mlv(&["fsck", "--remote", "--read-data", "--json"]).ok();
    assert_eq!(
        out.json()["format2"]["unreferenced_packs"],
        serde_json::json!([id.to_string()]),
        "{out}"
    );
    let text = src.mlv(&["fsck", "--remote"]).ok();
    assert!(text.stderr.contains("1 pack no index names"), "{text}");
    assert!(text.stderr.contains("no problems"), "{text}");

    // a damaged cache object is repaired from the format 2 remote (rebuilt from its chunks)
    let big = Digest::of_bytes(&src.read("big.bin")).to_string();
    let object = src.objects().into_iter().find(|o| o.ends_with(&big)).unwrap();
    crate::common::maint::flip_byte(&src.path(&format!(".mlv/cache/{object}")));
    let out = src.mlv(&["fsck", "--repair", "--json"]).ok();
    assert_eq!(out.json()["repaired"], 1, "{out}");
    src.mlv(&["fsck"]).ok();
}

#[test]
fn format2_fsck_remote_on_an_upgraded_remote_checks_format1_objects_too() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["push"]).ok();
    src.mlv(&["remote", "upgrade", "origin"]).ok();
    src.write("new.txt", "after the upgrade\n");
    src.mlv(&["add", "new.txt"]).ok();
    src.mlv(&["push"]).ok();
    let out = src.mlv(&["fsck", "--remote", "--json"]).ok();
    assert_eq!(out.json()["format2"]["format1_objects"], 32, "{out}");
    assert_eq!(out.json()["format2"]["blobs"], 1, "{out}");
    // a format 1 object missing is reported as format 1 fsck does, with its path
    let f0 = Digest::of_bytes(b"small file 0\n");
    tamper_file(&remote.join(format!("{}/{f0}", f0.fanout())), None);
    let out = src.mlv(&["fsck", "--remote", "--json"]).fails(4);
    let p = &out.json()["problems"][0];
    assert_eq!(
        (&p["item"], &p["kind"], &p["paths"]),
        (
            &serde_json::json!("object"),
            &serde_json::json!("missing"),
            &serde_json::json!(["data/f0.txt"])
        ),
        "{out}"
    );
}

#[test]
fn format2_a_truncated_pack_is_refused_by_pull_and_reported_by_fsck() {
    let (_tmp, remote, src) = pushed();
    let (_, seg) = segment(&remote);
    let recipe = &seg.recipes[0];
    let chunk = recipe.chunks[recipe.chunks.len() - 1].id;
    let pack = seg.blobs.iter().find(|b| b.0 == chunk).unwrap().1.pack;
    let path = remote.join(format!("packs/{}/{pack}", pack.fanout()));
    let bytes = std::fs::read(&path).unwrap();
    tamper_file(&path, Some(&bytes[..bytes.len() / 2]));
    refused_and_reported(&src, &pack.to_string(), &[], "pack");
}

#[test]
fn format2_a_blob_that_does_not_match_its_id_is_refused_by_pull_and_reported_by_fsck_read_data() {
    let (_tmp, remote, src) = pushed();
    let (_, seg) = segment(&remote);
    let chunk = seg.recipes[0].chunks[2];
    let loc = seg.blobs.iter().find(|b| b.0 == chunk.id).unwrap().1;
    let path = remote.join(format!("packs/{}/{}", loc.pack.fanout(), loc.pack));
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[loc.offset as usize + 10] ^= 0x40;
    tamper_file(&path, Some(&bytes));
    // the size is right: only reading the data tells
    src.mlv(&["fsck", "--remote"]).ok();
    refused_and_reported(&src, &chunk.id.to_string(), &["--read-data"], "pack");
}

#[test]
fn format2_an_index_naming_a_missing_pack_is_refused_by_pull_and_reported_by_fsck() {
    let (_tmp, remote, src) = pushed();
    let (_, seg) = segment(&remote);
    let chunk = seg.recipes[0].chunks[0].id;
    let pack = seg.blobs.iter().find(|b| b.0 == chunk).unwrap().1.pack;
    tamper_file(&remote.join(format!("packs/{}/{pack}", pack.fanout())), None);
    refused_and_reported(&src, &pack.to_string(), &[], "pack");
}

#[test]
fn format2_a_recipe_naming_a_missing_chunk_is_refused_by_pull_and_reported_by_fsck() {
    let (_tmp, remote, src) = pushed();
    let (_, mut seg) = segment(&remote);
    let chunk = seg.recipes[0].chunks[1].id;
    seg.blobs.retain(|b| b.0 != chunk);
    replace_segment(&remote, &seg);
    refused_and_reported(&src, &chunk.to_string(), &[], "object");
}

#[test]
fn format2_an_offset_past_the_end_of_a_pack_is_refused_by_pull_and_reported_by_fsck() {
    let (_tmp, remote, src) = pushed();
    let (_, mut seg) = segment(&remote);
    let chunk = seg.recipes[0].chunks[1];
    let pack = seg.blobs.iter().find(|b| b.0 == chunk.id).unwrap().1.pack;
    // the index claims the pack is as large as a pack may be, and the chunk near its end
    for p in seg.packs.iter_mut().filter(|p| p.0 == pack) {
        p.1 = MAX_PACK_SIZE;
    }
    for b in seg.blobs.iter_mut().filter(|b| b.0 == chunk.id) {
        b.1.offset = (MAX_PACK_SIZE - (4 << 20)) as u32;
    }
    replace_segment(&remote, &seg);
    refused_and_reported(&src, &pack.to_string(), &[], "pack");

    // a hostile offset (past the size the segment itself records) makes the segment unusable
    let (_, mut seg) = segment(&remote);
    for b in seg.blobs.iter_mut().filter(|b| b.0 == chunk.id) {
        b.1.offset = u32::MAX - 10;
    }
    let name = replace_segment(&remote, &seg);
    let clone = Env::clone_of(&src);
    let out = clone.mlv(&["pull", "big.bin"]).fails(3);
    let err = out.stderr_lines("error: ");
    assert_eq!(err.len(), 1, "{out}");
    assert!(
        err[0].contains(&name.to_string()) && err[0].contains("outside pack"),
        "{out}"
    );
    assert!(clone.objects().is_empty(), "{out}");
    let fsck = src.mlv(&["fsck", "--remote", "--json"]).fails(4);
    let j = fsck.json();
    let p = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["item"] == "index_segment")
        .unwrap_or_else(|| panic!("{fsck}"));
    assert_eq!(p["digest"], name.to_string(), "{fsck}");
    // what only that segment listed is missing now, with its paths
    assert!(
        j["problems"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["kind"] == "missing" && p["paths"] == serde_json::json!(["big.bin"])),
        "{fsck}"
    );
}

/// `origin` with the remote added by `add_args` (after the URL) instead of `--format 1`.
fn origin_added(remote: &Path, add_args: &[&str]) -> Env {
    let env = origin(remote);
    env.mlv(&["remote", "remove", "origin"]).ok();
    let mut add = vec!["remote", "add", "origin", remote.to_str().unwrap(), "--default"];
    add.extend_from_slice(add_args);
    env.mlv(&add).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "remote", "--allow-empty"]);
    env
}

/// Whether a remote listing holds a format 1 object (`ab/<64 hex>`).
fn has_v1_object(listed: &[String]) -> bool {
    listed.iter().any(|f| {
        f.split_once('/')
            .is_some_and(|(fan, name)| fan.len() == 2 && name.len() == 64 && name.starts_with(fan))
    })
}

#[test]
fn format2_a_first_push_to_an_empty_local_dir_initialises_format2() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin_added(&remote, &[]);
    assert!(!remote.exists());
    let push = src.mlv(&["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 32, "{push}");
    let listed = files(&remote);
    let doc = std::fs::read_to_string(remote.join("mlv-remote.toml")).unwrap();
    assert!(doc.contains("format = 2"), "{doc}");
    assert!(listed.iter().any(|f| f.starts_with("packs/")), "{listed:?}");
    assert!(listed.iter().any(|f| f.starts_with("index/")), "{listed:?}");
    assert!(!has_v1_object(&listed), "{listed:?}");
    // the remote says format 2 from now on: upgrade has nothing to do
    let up = src.mlv(&["remote", "upgrade", "origin", "--json"]).ok();
    assert_eq!(up.json()["outcome"], "already_format2", "{up}");
    let clone = Env::clone_of(&src);
    clone.mlv(&["pull"]).ok();
    same_tree(&src, &clone);
}

#[test]
fn format2_the_format_option_1_keeps_a_new_remote_format1() {
    for how in ["add", "modify"] {
        let tmp = tempfile::tempdir().unwrap();
        let remote = tmp.path().join("remote");
        let src = if how == "add" {
            origin_added(&remote, &["--format", "1"])
        } else {
            let env = origin_added(&remote, &[]);
            env.mlv(&["remote", "modify", "origin", "format", "1"]).ok();
            env
        };
        let config = String::from_utf8(src.read(".mlv/config.toml")).unwrap();
        assert!(config.contains("format = \"1\""), "{how}: {config}");
        src.mlv(&["push"]).ok();
        let listed = files(&remote);
        assert!(
            !listed.contains(&"mlv-remote.toml".to_string()),
            "{how}: {listed:?}"
        );
        assert!(has_v1_object(&listed), "{how}: {listed:?}");
        assert!(
            !listed.iter().any(|f| f.starts_with("packs/")),
            "{how}: {listed:?}"
        );
        let clone = Env::clone_of(&src);
        clone.mlv(&["pull"]).ok();
        same_tree(&src, &clone);
    }
}

#[test]
fn format2_the_format_option_is_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let env = origin(&remote);
    env.mlv(&["remote", "add", "other", "../x", "--format", "3"])
        .fails(2);
    env.mlv(&["remote", "modify", "origin", "format", "3"])
        .refused("expected 1 or 2", None);
    env.mlv(&["remote", "modify", "origin", "format", "2"]).ok();
    let list = env.mlv(&["remote", "list", "-v"]).ok();
    assert!(list.stdout.contains("format = 2"), "{list}");
}

#[test]
fn format2_a_remote_holding_format1_objects_stays_format1() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin(&remote);
    src.mlv(&["push"]).ok();
    // the option back to the default: the remote's own format wins
    src.mlv(&["remote", "modify", "origin", "format", "--unset"]).ok();
    src.write("new.txt", "pushed after the option changed\n");
    src.mlv(&["add", "new.txt"]).ok();
    src.mlv(&["push"]).ok();
    let listed = files(&remote);
    assert!(!listed.contains(&"mlv-remote.toml".to_string()), "{listed:?}");
    assert!(!listed.iter().any(|f| f.starts_with("packs/")), "{listed:?}");
    let new = crate::common::b3(b"pushed after the option changed\n");
    assert!(listed.contains(&format!("{}/{new}", &new[..2])), "{listed:?}");
}

#[test]
fn format2_a_format2_remote_stays_format2_whatever_the_option() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin_added(&remote, &[]);
    src.mlv(&["push"]).ok();
    src.mlv(&["remote", "modify", "origin", "format", "1"]).ok();
    src.write("new.txt", "pushed with the option at 1\n");
    src.mlv(&["add", "new.txt"]).ok();
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "new"]);
    let push = src.mlv(&["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 1, "{push}");
    let listed = files(&remote);
    assert!(!has_v1_object(&listed), "{listed:?}");
    let clone = Env::clone_of(&src);
    clone.mlv(&["pull"]).ok();
    assert_eq!(clone.read("new.txt"), b"pushed with the option at 1\n");
}

/// Two first pushes to one empty remote at once, from two repositories with different data:
/// both succeed, the remote is format 2 with one config document, and each one's data pulls.
#[test]
fn format2_two_first_pushes_at_once_converge() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let a = origin_added(&remote, &[]);
    let b = Env::new();
    for i in 0..40 {
        b.write(&format!("other/g{i}.txt"), format!("other file {i}\n"));
    }
    b.write("other/big.bin", noise(12 * MIB, 7));
    b.mlv(&["add", "other"]).ok();
    b.mlv(&["remote", "add", "origin", remote.to_str().unwrap(), "--default"])
        .ok();
    b.git(&["add", "-A"]);
    b.git(&["commit", "-qm", "other"]);
    let pa = a.command(crate::common::MLV, &["push"]).spawn();
    let pb = b.command(crate::common::MLV, &["push"]).spawn();
    let (oa, ob) = (
        crate::common::Output::of_child(pa),
        crate::common::Output::of_child(pb),
    );
    assert_eq!((oa.code, ob.code), (Some(0), Some(0)), "{oa}\n{ob}");
    let doc = std::fs::read_to_string(remote.join("mlv-remote.toml")).unwrap();
    assert!(doc.contains("format = 2"), "{doc}");
    assert!(!has_v1_object(&files(&remote)));
    for src in [&a, &b] {
        let status = src.mlv(&["status", "--remote", "--json"]).ok();
        assert_eq!(status.json()["in_sync"], true, "{status}");
        let clone = Env::clone_of(src);
        clone.mlv(&["pull"]).ok();
    }
    let clone = Env::clone_of(&b);
    clone.mlv(&["pull"]).ok();
    assert_eq!(clone.read("other/big.bin"), noise(12 * MIB, 7));
}

/// A first push initialises format 2 on S3 (moto) and on a local directory alike; with
/// `--format 1` it leaves format 1 objects and no config document.
#[test]
fn format2_a_first_push_initialises_format2_on_every_backend_unless_format_1() {
    use crate::common::maint::{local_remote, s3_remote};
    for format in ["2", "1"] {
        let mut remotes = vec![("local", local_remote())];
        remotes.extend(s3_remote().map(|r| ("s3", r)));
        for (kind, r) in remotes {
            let env = Env::new();
            env.write("small.txt", "a small file\n");
            env.write("big.bin", noise(9 * MIB, 3));
            env.mlv(&["add", "small.txt", "big.bin"]).ok();
            r.configure_format(&env, "origin", format);
            env.git(&["add", "-A"]);
            env.git(&["commit", "-qm", "data"]);
            r.mlv(&env, &["push"]).ok();
            let keys = r.keys();
            let small = crate::common::b3(b"a small file\n");
            let v1 = keys.contains(&format!("{}/{small}", &small[..2]));
            let doc = keys.contains(&"mlv-remote.toml".to_string());
            let packs = keys.iter().any(|k| k.starts_with("packs/"));
            let index = keys.iter().any(|k| k.starts_with("index/"));
            let expect = format == "2";
            assert_eq!(
                (doc, packs, index, v1),
                (expect, expect, expect, !expect),
                "{kind} --format {format}: {keys:?}"
            );
            let clone = Env::clone_of(&env);
            r.mlv(&clone, &["pull"]).ok();
            assert_eq!(
                clone.read("big.bin"),
                noise(9 * MIB, 3),
                "{kind} --format {format}"
            );
        }
    }
}

/// Reads one object straight from a format 2 remote, as `mlv.open` does without a cache.
fn stream(remote: &Path, digest: &str, size: u64) -> Result<Vec<u8>, mlv::Error> {
    use std::io::Read;
    let spec =
        mlv::remote::RemoteSpec::parse(remote.to_str().unwrap(), Default::default(), Path::new("/")).unwrap();
    let r = mlv::remote::Remote::open(&spec, &mlv::remote::RemoteSettings::default()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let digest: mlv::hash::Digest = digest.parse().unwrap();
    let mut reader = mlv::reader::VerifiedReader::from_remote(
        std::sync::Arc::new(r),
        rt.handle().clone(),
        &digest,
        Some(size),
    )?;
    let mut out = Vec::new();
    match reader.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) => Err(*e.into_inner().unwrap().downcast::<mlv::Error>().unwrap()),
    }
}

/// A packed file is one ranged read, a chunked one its chunks in order; a damaged chunk
/// fails the read as an integrity error.
#[test]
fn format2_one_object_streams_straight_from_the_remote_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let remote = tmp.path().join("remote");
    let src = origin_added(&remote, &[]);
    src.mlv(&["push"]).ok();
    let small = crate::common::b3(b"small file 7\n");
    assert_eq!(stream(&remote, &small, 13).unwrap(), b"small file 7\n");
    let big = noise(20 * MIB, 1);
    let big_hex = crate::common::b3(&big);
    assert_eq!(stream(&remote, &big_hex, big.len() as u64).unwrap(), big);
    let absent = crate::common::b3(b"never pushed");
    let e = stream(&remote, &absent, 12).unwrap_err();
    assert!(e.to_string().contains("lacks 1 object"), "{e}");

    // damage the big file's pack: a chunk no longer matches its id
    let (p, _) = packs(&remote);
    let largest = p
        .iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(largest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    tamper_file(largest, Some(&bytes));
    let e = stream(&remote, &big_hex, big.len() as u64).unwrap_err();
    assert_eq!(e.kind(), mlv::error::ErrorKind::Integrity, "{e}");
}
