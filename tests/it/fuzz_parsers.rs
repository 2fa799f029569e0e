//! Property tests ("fuzzing") of the parsers that read files a user, a merge or a remote can
//! hand mlv: pointer files, directory manifests, lineage records, config files, and remote
//! format 2's pack footers and index segments.
//!
//! Each parser gets arbitrary bytes, and structured inputs built from its own format with
//! hostile values mixed in (paths with `..`, `.git`, NUL, CR/LF, backslashes, huge numbers,
//! non-UTF-8, deep nesting). The property is the same everywhere: the parser returns `Ok` or
//! `Err` and never panics, and what it accepts round-trips through the writer.
//!
//! In CI each test runs a modest number of cases (`PROPTEST_CASES`, default 512 here). For a
//! long run set `MLV_FUZZ_SECS`: the test then draws fresh random cases until that many seconds
//! have passed and prints how many it ran, e.g.
//!
//! ```text
//! MLV_FUZZ_SECS=600 nice -n 19 cargo test --test it fuzz_parsers::pointer -- --nocapture
//! ```

use std::path::Path;
use std::time::{Duration, Instant};

use mlv::config::{self, Config};
use mlv::hash::Digest;
use mlv::lineage::{Lineage, Record};
use mlv::manifest::Manifest;
use mlv::pointer::Pointer;
use mlv::relpath::RelPath;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use serde_json::{json, Value};

/// Cases per test in an ordinary (CI) run, unless `PROPTEST_CASES` says otherwise.
const CI_CASES: u32 = 512;
/// Cases per batch in a long run; a fresh random seed is drawn for each batch.
const LONG_BATCH: u32 = 2_000;

thread_local! {
    /// Inputs the parser under test accepted, in this test's thread (reported by long runs).
    static ACCEPTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one accepted input.
fn accepted() {
    ACCEPTED.with(|a| a.set(a.get() + 1));
}

/// Runs `check` on inputs from `strategy`: `CI_CASES` of them, or for `MLV_FUZZ_SECS` seconds.
/// A failure (a panic inside `check` included) fails the test with the shrunk input.
fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
{
    let secs: Option<u64> = std::env::var("MLV_FUZZ_SECS").ok().and_then(|s| s.parse().ok());
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CI_CASES);
    let config = |cases| RunnerConfig {
        cases,
        failure_persistence: None,
        max_shrink_iters: 10_000,
        ..RunnerConfig::default()
    };
    let Some(secs) = secs else {
        let mut runner = TestRunner::new(config(cases));
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("{name}: {e}");
        }
        return;
    };
    let start = Instant::now();
    let mut total: u64 = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        let mut runner = TestRunner::new(config(LONG_BATCH));
        if let Err(e) = runner.run(&strategy, &check) {
            panic!("{name}: after {total} cases: {e}");
        }
        total += u64::from(LONG_BATCH);
    }
    eprintln!(
        "fuzz {name}: {total} cases in {:.0} s, {} accepted by the parser, no failure",
        start.elapsed().as_secs_f64(),
        ACCEPTED.with(|a| a.get())
    );
}

// ---------------------------------------------------------------------------------------------
// Shared generators

/// Path components a hostile file could hold, mixed with plain ones.
fn component() -> impl Strategy<Value = String> {
    prop_oneof![
        16 => "[a-zA-Z0-9_-]{1,8}",
        1 => Just("..".to_string()),
        1 => Just(".".to_string()),
        1 => Just(String::new()),
        1 => Just(".git".to_string()),
        1 => Just(".mlv".to_string()),
        1 => Just(".GIT".to_string()),
        1 => Just("a\\b".to_string()),
        1 => Just("nul\0x".to_string()),
        1 => Just("cr\rlf\n".to_string()),
        1 => Just("é".to_string()),
        1 => Just("x".repeat(300)),
        1 => any::<String>(),
    ]
}

/// A `/`-joined path of hostile components, sometimes absolute.
fn hostile_path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(component(), 1..5)).prop_map(|(abs, parts)| {
        let p = parts.join("/");
        if abs {
            format!("/{p}")
        } else {
            p
        }
    })
}

/// A plain relative path, usually valid.
fn plain_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-zA-Z0-9_.-]{1,8}", 1..4).prop_map(|parts| parts.join("/"))
}

/// A path: plain most of the time, so that inputs get past path checks, else hostile.
fn some_path() -> impl Strategy<Value = String> {
    prop_oneof![3 => plain_path(), 1 => hostile_path()]
}

fn digest_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => any::<[u8; 8]>().prop_map(|b| Digest::of_bytes(&b).to_string()),
        1 => "[0-9a-fA-F]{0,70}",
        1 => any::<String>(),
    ]
}

fn big_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (0u64..1000).prop_map(Value::from),
        1 => Just(Value::from(u64::MAX)),
        1 => Just(Value::from(i64::MIN)),
        1 => Just(json!(1e308)),
        1 => Just(json!(-0.5)),
        1 => Just(Value::Null),
        1 => Just(json!("12")),
    ]
}

/// Text that is nested `depth` deep: `[[[…]]]` or `{"a":{"a":…}}`.
fn nested(open: &str, close: &str, depth: usize) -> String {
    format!("{}{}", open.repeat(depth), close.repeat(depth))
}

/// Bytes: random, or deep nesting, or a valid text with bytes flipped or cut.
fn mangled(valid: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => (1usize..5000, prop::bool::ANY).prop_map(|(d, json)| {
            if json {
                nested("{\"a\":", "}", d).into_bytes()
            } else {
                format!("a = {}", nested("[", "]", d)).into_bytes()
            }
        }),
        3 => (valid, prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4), any::<prop::sample::Index>(), any::<bool>())
            .prop_map(|(text, flips, cut, do_cut)| {
                let mut b = text.into_bytes();
                if b.is_empty() {
                    return b;
                }
                for (i, v) in flips {
                    let at = i.index(b.len());
                    b[at] = v;
                }
                if do_cut {
                    b.truncate(cut.index(b.len()));
                }
                b
            }),
    ]
}

// ---------------------------------------------------------------------------------------------
// Pointer files

/// A TOML value for a pointer field, of the right type or not.
fn toml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => hostile_path().prop_map(|s| toml_string(&s)),
        1 => digest_text().prop_map(|s| toml_string(&s)),
        1 => prop::sample::select(vec!["\"file\"", "\"dir\"", "\"symlink\"", "\"FILE\""]).prop_map(String::from),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => prop::sample::select(vec!["1", "2", "0", "-1", "true", "1.5", "nan", "inf", "[]", "{}", "1979-05-27T07:32:00Z", "18446744073709551615"]).prop_map(String::from),
    ]
}

/// A TOML basic string holding `s` exactly.
fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Pointer-like TOML: known and unknown keys with typed or mistyped values.
fn pointer_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "version", "path", "type", "digest", "size", "files", "exec", "remote", "version",
    ]);
    let good = (some_path(), digest_text(), any::<bool>(), 0u64..10, any::<bool>()).prop_map(
        |(path, digest, dir, size, exec)| {
            let kind = if dir { "dir" } else { "file" };
            let mut t = format!(
                "version = 1\npath = {}\ntype = \"{kind}\"\ndigest = {}\nsize = {size}\n",
                toml_string(&path),
                toml_string(&digest)
            );
            if dir {
                t.push_str("files = 3\n");
            }
            if exec {
                t.push_str("exec = true\n");
            }
            t
        },
    );
    let lines = prop::collection::vec((key, toml_scalar()), 0..9).prop_map(|kv| {
        let mut t = String::from("version = 1\n");
        for (k, v) in kv {
            t.push_str(&format!("{k} = {v}\n"));
        }
        t
    });
    prop_oneof![2 => good, 1 => lines]
}

fn pointer_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => pointer_text().prop_map(String::into_bytes),
        1 => mangled(pointer_text()),
    ]
}

#[test]
fn pointer_parser_never_panics_and_round_trips() {
    let file = RelPath::new("sub/data.mlv").unwrap();
    let abs = Path::new("/r/sub/data.mlv");
    fuzz("pointer", pointer_input(), |bytes| {
        let Ok(p) = Pointer::parse(&file, abs, &bytes) else {
            return Ok(());
        };
        accepted();
        // What is accepted is a valid work-tree path inside the pointer's directory.
        prop_assert!(RelPath::new(p.data.as_str()).is_ok());
        prop_assert!(p.data.as_str().starts_with("sub/"), "{}", p.data);
        let again = Pointer::parse(&file, abs, p.to_toml().as_bytes()).unwrap();
        prop_assert_eq!(again, p);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Manifests

/// A manifest entry whose fields fit its kind (the path may still be hostile).
fn coherent_entry() -> impl Strategy<Value = Value> {
    let file =
        (some_path(), any::<[u8; 4]>(), big_number(), any::<bool>()).prop_map(|(path, seed, size, exec)| {
            let size = if size.is_u64() { size } else { json!(7) };
            json!({"path": path, "digest": Digest::of_bytes(&seed).to_string(), "size": size, "exec": exec})
        });
    let dir = some_path().prop_map(|path| json!({"path": path, "type": "dir"}));
    let link = (some_path(), some_path())
        .prop_map(|(path, target)| json!({"path": path, "type": "symlink", "target": target}));
    prop_oneof![3 => file, 1 => dir, 1 => link]
}

/// Any entry: coherent most of the time, else with random fields.
fn manifest_entry() -> impl Strategy<Value = Value> {
    prop_oneof![4 => coherent_entry(), 1 => loose_entry()]
}

/// An entry with each field present or not, of the right type or not.
fn loose_entry() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        None,
        Some("file"),
        Some("dir"),
        Some("symlink"),
        Some("fifo"),
    ]);
    (
        hostile_path(),
        kind,
        prop::option::weighted(0.8, digest_text()),
        big_number(),
        prop::option::of(any::<bool>()),
        prop::option::of(hostile_path()),
    )
        .prop_map(|(path, kind, digest, size, exec, target)| {
            let mut e = serde_json::Map::new();
            e.insert("path".into(), path.into());
            if let Some(k) = kind {
                e.insert("type".into(), k.into());
            }
            if let Some(d) = digest {
                e.insert("digest".into(), d.into());
            }
            if !size.is_null() {
                e.insert("size".into(), size);
            }
            if let Some(x) = exec {
                e.insert("exec".into(), x.into());
            }
            if let Some(t) = target {
                e.insert("target".into(), t.into());
            }
            Value::Object(e)
        })
}

/// Manifest JSON: entries sorted (so the invariants are reached) or as generated.
fn manifest_text() -> impl Strategy<Value = String> {
    let version = prop_oneof![9 => Just(json!(1)), 1 => big_number()];
    (
        prop::collection::vec(manifest_entry(), 0..8),
        prop::bool::weighted(0.9),
        version,
    )
        .prop_map(|(mut entries, sort, version)| {
            if sort {
                entries.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
            }
            json!({"version": version, "entries": entries}).to_string()
        })
}

fn manifest_input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => manifest_text().prop_map(String::into_bytes),
        1 => mangled(manifest_text()),
    ]
}

#[test]
fn manifest_parser_never_panics_and_round_trips() {
    fuzz("manifest", manifest_input(), |bytes| {
        let digest = Digest::of_bytes(&bytes);
        let Ok(m) = Manifest::parse(&digest, &bytes) else {
            return Ok(());
        };
        accepted();
        for e in &m.entries {
            prop_assert!(RelPath::new(&e.path).is_ok(), "{:?}", e.path);
        }
        let _ = (m.size(), m.file_count());
        let canonical = m.to_bytes();
        let again = Manifest::parse(&Digest::of_bytes(&canonical), &canonical).unwrap();
        prop_assert_eq!(again, m);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Lineage records

fn artifact() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec!["file", "dir", "git", "other"]);
    (
        hostile_path(),
        kind,
        digest_text(),
        big_number(),
        prop::option::of(big_number()),
    )
        .prop_map(|(path, kind, digest, size, files)| {
            let mut a = json!({"path": path, "type": kind, "digest": digest, "size": size});
            if let Some(f) = files {
                a["files"] = f;
            }
            a
        })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        big_number(),
        any::<String>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
    ]
}

/// A record as JSON; when `sign` is set its id is the correct one, so parsing gets past the
/// id check and the content is exercised.
fn record_json() -> impl Strategy<Value = (Value, bool)> {
    (
        prop::sample::select(vec![
            "2026-01-01T00:00:00Z",
            "",
            "not a time",
            "9999-99-99T99:99:99Z",
        ]),
        prop::option::of(("[a-z ]{0,8}", ".{0,8}")),
        prop::option::of("[0-9a-f]{40}"),
        any::<bool>(),
        prop::option::of(prop::collection::vec(any::<String>(), 0..3)),
        prop::collection::vec(artifact(), 0..3),
        prop::collection::vec(artifact(), 0..3),
        prop::collection::btree_map("[a-z.]{0,6}", json_leaf(), 0..3),
        prop::collection::btree_map(".{0,6}", big_number(), 0..3),
        prop::collection::vec(any::<String>(), 0..2),
        (
            any::<bool>(),
            prop_oneof![Just(String::new()), ".{0,20}", "[0-9a-f]{64}"],
        ),
    )
        .prop_map(
            |(time, author, commit, dirty, command, inputs, outputs, params, metrics, tags, (sign, id))| {
                let author = author.map(|(name, email)| json!({"name": name, "email": email}));
                let rec = json!({
                    "version": 1, "id": id, "time": time, "author": author, "commit": commit,
                    "dirty": dirty, "command": command, "inputs": inputs, "outputs": outputs,
                    "params": params, "metrics": metrics, "tags": tags,
                });
                (rec, sign)
            },
        )
}

/// A record line, signed with its real id when the content allows it.
fn record_line() -> impl Strategy<Value = String> {
    record_json().prop_map(|(mut rec, sign)| {
        if sign {
            rec["id"] = json!("");
            if let Ok(mut r) = serde_json::from_value::<Record>(rec.clone()) {
                r.id = r.compute_id();
                return r.to_line();
            }
        }
        rec.to_string()
    })
}

fn lineage_input() -> impl Strategy<Value = Vec<u8>> {
    let lines = prop::collection::vec(
        prop_oneof![4 => record_line(), 1 => mangled(record_line()).prop_map(|b| String::from_utf8_lossy(&b).into_owned())],
        0..6,
    )
    .prop_map(|l| l.join("\n").into_bytes());
    prop_oneof![3 => lines, 1 => mangled(record_line())]
}

#[test]
fn lineage_parser_never_panics_and_queries_hold() {
    fuzz(
        "lineage",
        (lineage_input(), "[0-9a-fé]{0,14}"),
        |(bytes, prefix)| {
            let lineage = Lineage::parse(&bytes);
            if !lineage.records.is_empty() {
                accepted();
            }
            for r in &lineage.records {
                prop_assert_eq!(&r.id, &r.compute_id());
                prop_assert_eq!(Record::parse_line(&r.to_line()).unwrap(), r.clone());
            }
            // The read-only queries over what was parsed must not panic either.
            let _ = lineage.find_id(&prefix);
            let _ = lineage.digests_starting(&prefix);
            let graph = mlv::ops::lineage::graph(&lineage);
            let _ = (graph.to_dot(), graph.to_mermaid());
            for d in lineage.digests_starting("") {
                let _ = mlv::lineage::traverse::upstream(&lineage, &d, None);
                let _ = mlv::lineage::traverse::downstream(&lineage, &d, None);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------------
// Config files

fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        toml_scalar(),
        Just("[\"reflink\", \"copy\"]".to_string()),
        Just("[\"hardlink\", \"bogus\"]".to_string()),
        Just("{ url = \"s3://b/p\", region = \"x\" }".to_string()),
        any::<String>().prop_map(|s| toml_string(&s)),
    ]
}

/// A config in the documented shape (values still drawn from hostile text), so that the
/// merge and the conversion to `Config` are reached.
fn coherent_config_text() -> impl Strategy<Value = String> {
    let link = prop::collection::vec(
        prop::sample::select(vec!["reflink", "hardlink", "symlink", "copy"]),
        1..4,
    );
    let remote = (
        "[a-z0-9_-]{1,6}",
        any::<String>(),
        prop::collection::btree_map("[a-z_]{1,10}", config_value(), 0..3),
    );
    (
        prop::option::of(any::<bool>()),
        prop::option::of("[a-z0-9]{0,6}"),
        prop::option::of(some_path()),
        prop::option::of(link),
        prop::collection::vec(remote, 0..3),
    )
        .prop_map(|(autostage, default, dir, link, remotes)| {
            let mut t = String::from("version = 1\n[core]\n");
            if let Some(a) = autostage {
                t.push_str(&format!("autostage = {a}\n"));
            }
            if let Some(d) = default {
                t.push_str(&format!("remote = {}\n", toml_string(&d)));
            }
            t.push_str("[cache]\n");
            if let Some(d) = dir {
                t.push_str(&format!("dir = {}\n", toml_string(&d)));
            }
            if let Some(l) = link {
                t.push_str(&format!("link = {l:?}\n"));
            }
            for (name, url, options) in remotes {
                t.push_str(&format!("[remote.{name}]\nurl = {}\n", toml_string(&url)));
                for (k, v) in options {
                    t.push_str(&format!("{k} = {v}\n"));
                }
            }
            t
        })
}

/// Config-like TOML: known tables and keys with typed or mistyped values.
fn config_text() -> impl Strategy<Value = String> {
    let table = prop::sample::select(vec![
        "",
        "[core]",
        "[cache]",
        "[remote.origin]",
        "[remote.\"a b\"]",
        "[remote]",
        "[[core]]",
        "[other]",
    ]);
    let key = prop::sample::select(vec![
        "version",
        "autostage",
        "remote",
        "dir",
        "link",
        "url",
        "endpoint",
        "region",
        "profile",
        "bogus",
    ]);
    prop::collection::vec((table, prop::collection::vec((key, config_value()), 0..4)), 0..5).prop_map(
        |tables| {
            let mut t = String::new();
            for (name, kv) in tables {
                t.push_str(name);
                t.push('\n');
                for (k, v) in kv {
                    t.push_str(&format!("{k} = {v}\n"));
                }
            }
            t
        },
    )
}

fn config_input() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let text = prop_oneof![2 => coherent_config_text(), 1 => config_text()];
    let one = prop_oneof![3 => text.clone().prop_map(String::into_bytes), 1 => mangled(text)];
    (one.clone(), one)
}

#[test]
fn config_parser_never_panics_and_layers_merge() {
    let path = Path::new("/r/.mlv/config.toml");
    fuzz("config", config_input(), |(low, high)| {
        let parse = |b: &[u8]| config::parse_table(path, &String::from_utf8_lossy(b));
        let (Ok(mut base), Ok(top)) = (parse(&low), parse(&high)) else {
            return Ok(());
        };
        accepted();
        // Each layer valid on its own; the merge of two valid layers must load or fail cleanly.
        let single: Result<Config, _> = top.clone().try_into();
        prop_assert!(single.is_ok(), "{:?}", single);
        config::merge(&mut base, top);
        let _: Result<Config, _> = base.try_into();
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// Fixed hostile inputs every run checks

/// 100 000 levels of nesting: an error from each parser, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    let toml_deep = format!("version = 1\npath = {}\n", nested("[", "]", depth));
    let toml_tables = format!("version = 1\npath = {}\n", nested("{a=", "}", depth));
    let json_deep = format!("{{\"version\":1,\"entries\":{}}}", nested("[", "]", depth));
    let file = RelPath::new("data.mlv").unwrap();
    for text in [&toml_deep, &toml_tables] {
        assert!(Pointer::parse(&file, Path::new("/r/data.mlv"), text.as_bytes()).is_err());
        assert!(config::parse_table(Path::new("/r/c.toml"), text).is_err());
    }
    assert!(Manifest::parse(&Digest::of_bytes(b""), json_deep.as_bytes()).is_err());
    let lineage = Lineage::parse(json_deep.as_bytes());
    assert_eq!((lineage.records.len(), lineage.problems.len()), (0, 1));
}

/// Sizes that add up past `u64::MAX`: refused, not an overflow.
#[test]
fn manifest_sizes_that_overflow_are_refused() {
    let d = Digest::of_bytes(b"a");
    let text = format!(
        "{{\"version\":1,\"entries\":[{{\"path\":\"a\",\"digest\":\"{d}\",\"size\":{m}}},{{\"path\":\"b\",\"digest\":\"{d}\",\"size\":{m}}}]}}",
        m = u64::MAX
    );
    let err = Manifest::parse(&d, text.as_bytes()).unwrap_err().to_string();
    assert!(err.contains("sizes add up"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Remote format 2: pack footers and index segments

/// A pack laid out byte by byte as docs/format.md describes it ("Remote format 2").
fn pack_bytes(blobs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"MLV2PACK".to_vec();
    let mut footer = Vec::new();
    for b in blobs {
        footer.extend_from_slice(Digest::of_bytes(b).as_bytes());
        footer.extend_from_slice(&(out.len() as u64).to_le_bytes());
        footer.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    }
    let footer_offset = out.len() as u64;
    out.extend_from_slice(&footer);
    out.extend_from_slice(&(blobs.len() as u64).to_le_bytes());
    out.extend_from_slice(&footer_offset.to_le_bytes());
    out.extend_from_slice(Digest::of_bytes(&footer).as_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(b"MLV2PEND");
    out
}

/// Distinct blobs (a pack lists each id once).
fn pack_blobs() -> impl Strategy<Value = Vec<Vec<u8>>> {
    prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|b| seen.insert(b.clone()));
        v
    })
}

/// A value that is hostile as a count, offset or length.
fn hostile_u64() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        Just(u64::MAX / 48 + 1),
        Just(u32::MAX as u64),
        Just(1u64 << 40),
        0u64..100_000,
        any::<u64>(),
    ]
}

/// Overwrites 8 (or 4) bytes at a chosen place with a hostile number; with `resum`, fixes the
/// pack footer's checksum or the segment's trailing checksum so structural checks are reached.
#[derive(Debug, Clone)]
struct Poke {
    at: prop::sample::Index,
    value: u64,
    wide: bool,
}

fn pokes() -> impl Strategy<Value = Vec<Poke>> {
    prop::collection::vec(
        (any::<prop::sample::Index>(), hostile_u64(), any::<bool>()).prop_map(|(at, value, wide)| Poke {
            at,
            value,
            wide,
        }),
        0..3,
    )
}

fn apply(b: &mut [u8], pokes: &[Poke], aligned_from: usize, stride: usize) {
    for p in pokes {
        let w = if p.wide { 8 } else { 4 };
        if b.len() < aligned_from + w {
            continue;
        }
        // land on a field boundary most of the time: fields are 4-byte aligned in both layouts
        let slots = (b.len() - aligned_from - w) / stride + 1;
        let at = aligned_from + p.at.index(slots) * stride;
        b[at..at + w].copy_from_slice(&p.value.to_le_bytes()[..w]);
    }
}

fn resum_pack(b: &mut [u8]) {
    if b.len() < 64 {
        return;
    }
    let t = b.len() - 64;
    let off = u64::from_le_bytes(b[t + 8..t + 16].try_into().unwrap());
    if let Ok(off) = usize::try_from(off) {
        if off <= t {
            let sum = *Digest::of_bytes(&b[off..t]).as_bytes();
            b[t + 16..t + 48].copy_from_slice(&sum);
        }
    }
}

#[derive(Debug, Clone)]
enum PackInput {
    /// Valid bytes: must be accepted, whole and from any tail that covers the footer.
    Valid(Vec<Vec<u8>>, prop::sample::Index),
    /// Hostile numbers in the footer or trailer, checksum fixed; or a flipped or cut pack; or a
    /// claimed size that is not the real one.
    Hostile(Vec<u8>, u64),
}

fn pack_input() -> impl Strategy<Value = PackInput> {
    prop_oneof![
        1 => (pack_blobs(), any::<prop::sample::Index>()).prop_map(|(b, i)| PackInput::Valid(b, i)),
        2 => (pack_blobs(), pokes(), any::<bool>()).prop_map(|(blobs, pokes, in_trailer)| {
            let mut b = pack_bytes(&blobs);
            let from = if in_trailer { b.len() - 64 } else { 8 };
            apply(&mut b, &pokes, from, 4);
            resum_pack(&mut b);
            let size = b.len() as u64;
            PackInput::Hostile(b, size)
        }),
        1 => (mangled(pack_blobs().prop_map(|b| String::from_utf8_lossy(&pack_bytes(&b)).into_owned())))
            .prop_map(|b| { let n = b.len() as u64; PackInput::Hostile(b, n) }),
        1 => (pack_blobs(), hostile_u64()).prop_map(|(blobs, size)| PackInput::Hostile(pack_bytes(&blobs), size)),
    ]
}

#[test]
fn pack_footer_parser_never_panics_and_accepts_what_it_should() {
    use mlv::remote::format2::pack;
    fuzz("pack footer", pack_input(), |input| {
        match input {
            PackInput::Valid(blobs, cut) => {
                let b = pack_bytes(&blobs);
                let id = Digest::of_bytes(&b);
                let size = b.len() as u64;
                if blobs.is_empty() {
                    // an empty pack is never written, but parses
                    prop_assert!(pack::parse_footer(id, size, &b).is_ok());
                    return Ok(());
                }
                let entries = pack::verify_pack(id, &b).map_err(|e| TestCaseError::fail(e.to_string()))?;
                accepted();
                prop_assert_eq!(entries.len(), blobs.len());
                let trailer = pack::parse_trailer(id, size, &b[b.len() - 64..]).unwrap();
                let start = trailer.footer_range(size).start as usize;
                let from = cut.index(start + 1);
                prop_assert_eq!(pack::parse_footer(id, size, &b[from..]).unwrap(), entries.clone());
                for (e, blob) in entries.iter().zip(&blobs) {
                    prop_assert_eq!(&b[e.offset as usize..(e.offset + e.length) as usize], &blob[..]);
                }
            }
            PackInput::Hostile(b, size) => {
                let id = Digest::of_bytes(&b);
                let tail = &b[b
                    .len()
                    .saturating_sub(usize::try_from(size).unwrap_or(usize::MAX))..];
                if let Ok(entries) = pack::parse_footer(id, size, tail) {
                    accepted();
                    for e in &entries {
                        prop_assert!(e.offset >= 8 && e.offset + e.length <= size, "{:?}", e);
                    }
                    if size == b.len() as u64 {
                        let _ = pack::verify_pack(id, &b);
                    }
                }
            }
        }
        Ok(())
    });
}

fn segment() -> impl Strategy<Value = mlv::remote::format2::IndexSegment> {
    use mlv::remote::format2::{BlobLocation, IndexSegment, Recipe, RecipeChunk};
    let d = |i: u64| Digest::of_bytes(&i.to_le_bytes());
    (
        prop::collection::vec((any::<u64>(), 72u64..=(64 << 20)), 1..4),
        prop::collection::vec(
            (any::<u64>(), any::<prop::sample::Index>(), 8u32..1000, 0u32..1000),
            0..12,
        ),
        prop::collection::vec(
            (
                any::<u64>(),
                prop::collection::vec((any::<u64>(), 1u32..u32::MAX), 1..5),
            ),
            0..4,
        ),
    )
        .prop_map(move |(packs, blobs, recipes)| {
            let packs: Vec<(Digest, u64)> = packs.into_iter().map(|(p, s)| (d(p), s.max(2072))).collect();
            IndexSegment {
                blobs: blobs
                    .into_iter()
                    .map(|(b, p, offset, length)| {
                        (
                            d(b),
                            BlobLocation {
                                pack: packs[p.index(packs.len())].0,
                                offset,
                                length,
                            },
                        )
                    })
                    .collect(),
                recipes: recipes
                    .into_iter()
                    .map(|(f, chunks)| {
                        let chunks: Vec<RecipeChunk> = chunks
                            .into_iter()
                            .map(|(c, length)| RecipeChunk { id: d(c), length })
                            .collect();
                        Recipe {
                            file: d(f),
                            size: chunks.iter().map(|c| u64::from(c.length)).sum(),
                            chunks,
                        }
                    })
                    .collect(),
                packs,
            }
        })
}

fn resum_segment(b: &mut [u8]) {
    if b.len() >= 32 {
        let body = b.len() - 32;
        let sum = *Digest::of_bytes(&b[..body]).as_bytes();
        b[body..].copy_from_slice(&sum);
    }
}

fn segment_input() -> impl Strategy<Value = (Vec<u8>, bool)> {
    prop_oneof![
        1 => segment().prop_map(|s| (s.encode().unwrap().1, true)),
        3 => (segment(), pokes(), any::<bool>()).prop_map(|(s, pokes, in_header)| {
            let mut b = s.encode().unwrap().1;
            let from = if in_header { 8 } else { 32 };
            apply(&mut b, &pokes, from, 4);
            resum_segment(&mut b);
            (b, false)
        }),
        1 => mangled(segment().prop_map(|s| String::from_utf8_lossy(&s.encode().unwrap().1).into_owned()))
            .prop_map(|b| (b, false)),
    ]
}

#[test]
fn index_segment_parser_never_panics_and_round_trips() {
    use mlv::remote::format2::{IndexSegment, MergedIndex};
    fuzz("index segment", segment_input(), |(bytes, valid)| {
        let name = Digest::of_bytes(&bytes);
        let parsed = IndexSegment::decode(name, &bytes);
        if valid {
            prop_assert!(parsed.is_ok(), "{:?}", parsed.err().map(|e| e.to_string()));
        }
        let Ok(s) = parsed else {
            return Ok(());
        };
        accepted();
        let (again, re) = s.encode().unwrap();
        prop_assert_eq!(again, name);
        prop_assert_eq!(re, bytes);
        let m = MergedIndex::from_segments([&s]);
        for (id, loc) in &s.blobs {
            prop_assert_eq!(m.blob(id), Some(*loc));
        }
        for r in &s.recipes {
            prop_assert_eq!(m.recipe(&r.file), Some(r));
        }
        Ok(())
    });
}

/// Counts at their maximum in a pack trailer and an index header: refused from the sizes alone.
#[test]
fn format2_huge_counts_are_refused() {
    use mlv::remote::format2::{pack, Format2Error, IndexSegment};
    let mut b = pack_bytes(&[b"a".to_vec(), b"b".to_vec()]);
    let t = b.len() - 64;
    b[t..t + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    resum_pack(&mut b);
    let e = pack::parse_footer(Digest::of_bytes(&b), b.len() as u64, &b).unwrap_err();
    assert!(matches!(e, Format2Error::BadFooter { .. }), "{e}");
    let mut s = IndexSegment::default().encode().unwrap().1;
    for at in [12, 16, 20] {
        s[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    }
    s[24..32].copy_from_slice(&u64::MAX.to_le_bytes());
    resum_segment(&mut s);
    let e = IndexSegment::decode(Digest::of_bytes(&s), &s).unwrap_err();
    assert!(e.to_string().contains("counts"), "{e}");
}
