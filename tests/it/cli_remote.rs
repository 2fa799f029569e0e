//! Remotes end to end: the real `mlv` binary pushes to and pulls from a local directory, S3
//! (moto), Azure (Azurite) and GCS (tests/it/support/gcs_fake.py), from throwaway git repositories
//! and their clones. Emulators come from `.ci/install-emulators.sh`; without them the cloud
//! tests skip loudly, or fail when `CI` is set.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{b3, noise, Env, Output, MLV};
use crate::support::fault_proxy::FaultProxy;
use crate::support::{closed_port, Azurite, GcsFake, Moto, AZURITE_ACCOUNT, AZURITE_KEY};

const BUCKET: &str = "mlv-e2e";
const PREFIX: &str = "team/proj";
const S3_KEY_ID: &str = "AKIDMLVE2ETEST";
const S3_SECRET: &str = "moto-secret-4c1f2e9a77";

/// The contents of the tracked data: a directory with nested files, an empty file, an empty
/// directory and an executable, and a single file.
fn files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("data/a.txt", b"alpha\n".to_vec()),
        ("data/empty.txt", Vec::new()),
        ("data/run.sh", b"#!/bin/sh\necho hi\n".to_vec()),
        ("data/other/x.csv", b"x,y\n1,2\n".to_vec()),
        (
            "data/sub/b.bin",
            (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect(),
        ),
        ("data/sub/deep/c.txt", b"charlie\n".to_vec()),
        ("data/sub/deep/empty2", Vec::new()),
        ("model.bin", b"weights v1 \x00\x01\x02".to_vec()),
    ]
}

/// A storage backend as the CLI sees it: a URL, committed options, options for the origin's
/// `.mlv/config.local.toml`, and environment variables for every mlv process.
struct Backend {
    name: &'static str,
    url: String,
    /// How the remote is displayed in messages.
    display: String,
    options: Vec<(String, String)>,
    local_options: Vec<(String, String)>,
    env: Vec<(String, String)>,
    /// Extra environment for clones (which have no config.local.toml).
    clone_env: Vec<(String, String)>,
    /// Local remotes: the directory.
    dir: Option<PathBuf>,
    /// Emulator port.
    port: Option<u16>,
    _keep: Box<dyn std::any::Any>,
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// Short network settings so a dead server fails fast.
fn fast() -> Vec<(String, String)> {
    pairs(&[
        ("timeout", "5"),
        ("connect_timeout", "2"),
        ("retries", "1"),
        ("retry_timeout", "3"),
    ])
}

fn local_backend() -> Backend {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap().join("store");
    Backend {
        name: "local",
        url: path.display().to_string(),
        display: path.display().to_string(),
        options: Vec::new(),
        local_options: Vec::new(),
        env: Vec::new(),
        clone_env: Vec::new(),
        dir: Some(path),
        port: None,
        _keep: Box::new(dir),
    }
}

fn s3_options(port: u16) -> Vec<(String, String)> {
    let mut o = pairs(&[
        ("endpoint", &format!("http://127.0.0.1:{port}")),
        ("region", "us-east-1"),
        ("allow_http", "true"),
    ]);
    o.extend(fast());
    o
}

fn s3_backend() -> Option<Backend> {
    let moto = Moto::start(BUCKET, false)?;
    let port = moto.proc.port;
    Some(Backend {
        name: "s3",
        url: format!("s3://{BUCKET}/{PREFIX}"),
        display: format!("s3://{BUCKET}/{PREFIX}"),
        options: s3_options(port),
        local_options: Vec::new(),
        env: pairs(&[
            ("AWS_ACCESS_KEY_ID", S3_KEY_ID),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
        ]),
        clone_env: Vec::new(),
        dir: None,
        port: Some(port),
        _keep: Box::new(moto),
    })
}

fn azure_options(endpoint: &str) -> Vec<(String, String)> {
    let mut o = pairs(&[("account", AZURITE_ACCOUNT), ("endpoint", endpoint)]);
    o.extend(fast());
    o
}

/// An Azure backend on `az` without credentials of its own: the test supplies them.
fn azure_without_key(az: &Azurite) -> Backend {
    let mut b = local_backend();
    b.url = format!("az://mlv-e2e/{PREFIX}");
    b.display = b.url.clone();
    b.dir = None;
    b.options = azure_options(&az.endpoint());
    b
}

fn azure_backend() -> Option<Backend> {
    let az = Azurite::start("mlv-e2e")?;
    Some(Backend {
        name: "azure",
        url: format!("az://mlv-e2e/{PREFIX}"),
        display: format!("az://mlv-e2e/{PREFIX}"),
        options: azure_options(&az.endpoint()),
        // The origin keeps the key in its local config; clones take it from the environment.
        local_options: pairs(&[("access_key", AZURITE_KEY)]),
        env: Vec::new(),
        clone_env: pairs(&[("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)]),
        dir: None,
        port: Some(az.proc.port),
        _keep: Box::new(az),
    })
}

/// A service-account key file pointing at `base_url` without OAuth.
fn gcs_key_file(dir: &Path, base_url: &str) -> PathBuf {
    let p = dir.join("gcs-key.json");
    std::fs::write(
        &p,
        format!(
            r#"{{"gcs_base_url": "{base_url}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#
        ),
    )
    .unwrap();
    p
}

fn gcs_backend() -> Option<Backend> {
    let gcs = GcsFake::start(BUCKET)?;
    let dir = tempfile::tempdir().unwrap();
    let key = gcs_key_file(dir.path(), &gcs.proc.url());
    let mut options = pairs(&[("service_account", key.to_str().unwrap()), ("allow_http", "true")]);
    options.extend(fast());
    Some(Backend {
        name: "gcs",
        url: format!("gs://{BUCKET}/{PREFIX}"),
        display: format!("gs://{BUCKET}/{PREFIX}"),
        options,
        local_options: Vec::new(),
        env: Vec::new(),
        clone_env: Vec::new(),
        dir: None,
        port: Some(gcs.proc.port),
        _keep: Box::new((gcs, dir)),
    })
}

/// Cloud metadata services point at a closed loopback port, so a missing credential fails
/// at once instead of probing 169.254.169.254.
fn metadata_env() -> Vec<(String, String)> {
    let p = closed_port();
    vec![
        ("AWS_METADATA_ENDPOINT".into(), format!("http://127.0.0.1:{p}")),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("GCE_METADATA_HOST".into(), format!("127.0.0.1:{p}")),
        ("GCE_METADATA_ROOT".into(), format!("127.0.0.1:{p}")),
        ("GCE_METADATA_IP".into(), format!("127.0.0.1:{p}")),
        ("AZURE_MSI_ENDPOINT".into(), format!("http://127.0.0.1:{p}")),
    ]
}

/// `mlv ARGS` in `env` with the backend's environment (and `extra`).
fn mlv(env: &Env, b: &Backend, clone: bool, extra: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = env.command(MLV, args);
    for (k, v) in metadata_env() {
        c = c.env(&k, &v);
    }
    for (k, v) in &b.env {
        c = c.env(k, v);
    }
    if clone {
        for (k, v) in &b.clone_env {
            c = c.env(k, v);
        }
    }
    for (k, v) in extra {
        c = c.env(k, v);
    }
    c.run()
}

/// A repository with the data added, `origin` configured (default) and everything committed.
fn origin(b: &Backend) -> Env {
    let env = Env::new();
    for (rel, bytes) in files() {
        env.write(rel, bytes);
    }
    env.mkdir("data/emptydir");
    std::fs::set_permissions(env.path("data/run.sh"), std::fs::Permissions::from_mode(0o755)).unwrap();
    env.mlv(&["add", "data", "model.bin"]).ok();
    configure(&env, b, "origin", true);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env
}

/// Adds the backend as remote `name`, in format 1 (these tests look at its objects' keys).
fn configure(env: &Env, b: &Backend, name: &str, default: bool) {
    let mut add = vec!["remote", "add", name, b.url.as_str(), "--format", "1"];
    if default {
        add.push("--default");
    }
    env.mlv(&add).ok();
    for (k, v) in &b.options {
        env.mlv(&["remote", "modify", name, k, v]).ok();
    }
    for (k, v) in &b.local_options {
        env.mlv(&["remote", "modify", name, k, v, "--local"]).ok();
    }
}

/// Every entry under `rel`: type, content digest and executable bit.
fn tree(env: &Env, rel: &str) -> BTreeMap<String, String> {
    let root = env.path(rel);
    let mut out = BTreeMap::new();
    for e in walkdir::WalkDir::new(&root) {
        let e = e.unwrap();
        let name = e.path().strip_prefix(&root).unwrap().display().to_string();
        let meta = e.path().symlink_metadata().unwrap();
        let what = if meta.is_dir() {
            "dir".to_string()
        } else if meta.is_file() {
            let exec = meta.permissions().mode() & 0o111 != 0;
            format!("file {} exec={exec}", b3(&std::fs::read(e.path()).unwrap()))
        } else {
            "other".to_string()
        };
        out.insert(name, what);
    }
    out
}

fn digest_of(env: &Env, pointer: &str) -> String {
    env.pointer(pointer)["digest"].as_str().unwrap().to_string()
}

fn object_name(hex: &str) -> String {
    format!("{}/{hex}", &hex[..2])
}

// ---------------------------------------------------------------------------------------------
// The round trip, on every backend.

fn roundtrip(b: Backend) {
    let src = origin(&b);

    // Nothing pushed yet.
    let st = mlv(&src, &b, false, &[], &["status", "--remote", "--json"]).ok();
    let j = st.json();
    assert_eq!(j["in_sync"], false, "{st}");
    assert_eq!(j["remote"], b.display.as_str(), "{st}");
    let gaps: Vec<&str> = j["not_pushed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["path"].as_str().unwrap())
        .collect();
    assert_eq!(gaps, ["data", "model.bin"], "{st}");
    mlv(&src, &b, false, &[], &["status", "--remote", "--exit-code"])
        .fails(1)
        .stdout_has("model.bin");
    mlv(&src, &b, false, &[], &["status", "-r", "origin", "--exit-code"]).fails(1);

    // Push: every distinct object once (the two empty files share one).
    let distinct: BTreeSet<String> = files().iter().map(|(_, c)| b3(c)).collect();
    let objects = distinct.len() as u64 + 1; // + the manifest
    let push = mlv(&src, &b, false, &[], &["push", "--json"]).ok();
    let j = push.json();
    assert_eq!(j["objects"], objects, "{push}");
    assert_eq!(j["uploaded"], objects, "{push}");
    assert_eq!(j["already_present"], 0, "{push}");
    assert!(
        !push.stderr.contains('\r'),
        "progress output without a TTY\n{push}"
    );

    let again = mlv(&src, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(
        again.json()["uploaded"],
        0,
        "a second push uploads nothing\n{again}"
    );
    assert_eq!(again.json()["already_present"], objects, "{again}");

    let st = mlv(&src, &b, false, &[], &["status", "--remote", "--json"]).ok();
    assert_eq!(st.json()["in_sync"], true, "{st}");
    assert_eq!(st.json()["not_pushed"], serde_json::json!([]), "{st}");
    mlv(&src, &b, false, &[], &["status", "--remote", "--exit-code"]).ok();

    // Local remotes: the layout is the cache's, readable with `cp` and `b3sum`.
    if let Some(dir) = &b.dir {
        let hex = digest_of(&src, "model.bin.mlv");
        let raw = std::fs::read(dir.join(object_name(&hex))).unwrap();
        assert_eq!(b3(&raw), hex);
    }

    // A fresh clone (empty cache) pulls identical bytes.
    let dst = Env::clone_of(&src);
    assert!(dst.objects().is_empty());
    let pull = mlv(&dst, &b, true, &[], &["pull", "--json"]).ok();
    let j = pull.json();
    assert_eq!(j["fetch"]["downloaded"], objects, "{pull}");
    assert!(!pull.stderr.contains('\r'), "{pull}");
    assert_eq!(
        tree(&dst, "data"),
        tree(&src, "data"),
        "{}: data differs after pull",
        b.name
    );
    assert!(dst.path("data/emptydir").is_dir());
    assert_eq!(dst.mode("data/run.sh") & 0o111, 0o111);
    assert_eq!(dst.read("model.bin"), src.read("model.bin"));
    mlv(&dst, &b, true, &[], &["status", "--exit-code"]).ok();
    mlv(&dst, &b, true, &[], &["status", "--remote", "--exit-code"]).ok();
    let again = mlv(&dst, &b, true, &[], &["pull", "--json"]).ok();
    assert_eq!(again.json()["fetch"]["downloaded"], 0, "{again}");

    // Partial pull: only the objects under data/sub, plus the manifest.
    let part = Env::clone_of(&src);
    let pull = mlv(&part, &b, true, &[], &["pull", "data/sub", "--json"]).ok();
    let mut expected: BTreeSet<String> = files()
        .iter()
        .filter(|(p, _)| p.starts_with("data/sub/"))
        .map(|(_, c)| object_name(&b3(c)))
        .collect();
    expected.insert(object_name(&digest_of(&src, "data.mlv")));
    let cached: BTreeSet<String> = part.objects().into_iter().collect();
    assert_eq!(
        cached, expected,
        "{}: partial pull fetched the wrong objects\n{pull}",
        b.name
    );
    assert_eq!(
        pull.json()["fetch"]["downloaded"],
        expected.len() as u64,
        "{pull}"
    );
    assert_eq!(tree(&part, "data/sub"), tree(&src, "data/sub"));
    for absent in ["data/a.txt", "data/run.sh", "data/other", "model.bin"] {
        assert!(!part.exists(absent), "{absent} was checked out by a partial pull");
    }
}

#[test]
fn local_roundtrip() {
    roundtrip(local_backend());
}

#[test]
fn s3_roundtrip() {
    if let Some(b) = s3_backend() {
        roundtrip(b);
    }
}

#[test]
fn azure_roundtrip() {
    if let Some(b) = azure_backend() {
        roundtrip(b);
    }
}

#[test]
fn gcs_roundtrip() {
    if let Some(b) = gcs_backend() {
        roundtrip(b);
    }
}

// ---------------------------------------------------------------------------------------------
// Large objects come down in parallel ranges, on every object store.

const MIB: usize = 1 << 20;

/// Sends the backend's requests through `proxy` (to see them): every option naming the
/// emulator's address, and the GCS key file, point at the proxy instead.
fn through(b: &mut Backend, proxy: &FaultProxy) {
    let (from, to) = (
        format!("127.0.0.1:{}", b.port.unwrap()),
        format!("127.0.0.1:{}", proxy.port),
    );
    for (k, v) in &mut b.options {
        if k == "service_account" {
            let key = std::fs::read_to_string(&*v).unwrap();
            std::fs::write(&*v, key.replace(&from, &to)).unwrap();
        }
        *v = v.replace(&from, &to);
    }
}

/// With `multipart_threshold` and `part_size` set to 5 MiB by `remote modify`, objects of more
/// than 5 MiB are pulled as one plain GET (the first part, and the size) plus one ranged GET per
/// further part, and arrive byte for byte; small objects keep their single GET.
fn ranged_roundtrip(mut b: Backend) {
    let proxy = FaultProxy::start(b.port.unwrap());
    through(&mut b, &proxy);
    b.options
        .extend(pairs(&[("multipart_threshold", "5MiB"), ("part_size", "5MiB")]));
    let src = origin(&b);
    // Three parts with a short last one, and three whole parts.
    let big = [
        ("big/a.bin", noise(12 * MIB + 12_345, 1)),
        ("big/b.bin", noise(15 * MIB, 2)),
    ];
    for (rel, bytes) in &big {
        src.write(rel, bytes);
    }
    src.mlv(&["add", "big"]).ok();
    src.git(&["add", "-A"]);
    src.git(&["commit", "-qm", "big"]);
    mlv(&src, &b, false, &[], &["push"]).ok();

    let dst = Env::clone_of(&src);
    let before = proxy.seen().len();
    let pull = mlv(&dst, &b, true, &[], &["pull", "--json"]).ok();
    for (rel, bytes) in &big {
        assert!(
            dst.read(rel) == *bytes,
            "{}: {rel} differs after pull\n{pull}",
            b.name
        );
        let hex = b3(bytes);
        let gets: Vec<_> = proxy.seen()[before..]
            .iter()
            .filter(|s| s.method == "GET" && s.path.contains(&hex))
            .map(|s| s.range.clone())
            .collect();
        assert_eq!(gets.len(), 3, "{}: {rel}: {gets:?}", b.name);
        assert_eq!(
            gets.iter().filter(|r| r.is_some()).count(),
            2,
            "{}: {rel}: one plain GET, then two ranges: {gets:?}",
            b.name
        );
    }
    assert_eq!(tree(&dst, "data"), tree(&src, "data"), "{}", b.name);
    let small = b3(&files()[4].1);
    assert_eq!(proxy.count("GET", &small), 1, "{}", b.name);
    assert_eq!(proxy.count_ranged("GET", &small), 0, "{}", b.name);
    mlv(&dst, &b, true, &[], &["status", "--exit-code"]).ok();
}

#[test]
fn s3_ranged_roundtrip() {
    if let Some(b) = s3_backend() {
        ranged_roundtrip(b);
    }
}

#[test]
fn azure_ranged_roundtrip() {
    if let Some(b) = azure_backend() {
        ranged_roundtrip(b);
    }
}

#[test]
fn gcs_ranged_roundtrip() {
    if let Some(b) = gcs_backend() {
        ranged_roundtrip(b);
    }
}

#[test]
fn part_options_are_checked() {
    let env = Env::new();
    env.mlv(&["remote", "add", "origin", "s3://bucket/prefix", "--default"])
        .ok();
    env.mlv(&["remote", "modify", "origin", "part_size", "16MiB"])
        .ok();
    env.mlv(&["remote", "modify", "origin", "multipart_threshold", "64M"])
        .ok();
    let list = env.mlv(&["remote", "list", "-v"]).ok();
    assert!(list.stdout.contains("part_size = 16MiB"), "{list}");
    env.mlv(&["remote", "modify", "origin", "part_size", "1MiB"])
        .refused("5MiB", None);
    env.mlv(&["remote", "add", "nas", "../nas-store"]).ok();
    env.mlv(&["remote", "modify", "nas", "part_size", "8MiB"])
        .refused("unknown option", None);
}

// ---------------------------------------------------------------------------------------------
// Damaged, truncated and missing objects on the remote.

/// Replaces (`Some`) or deletes (`None`) the object `hex` on the remote, behind mlv's back.
type Tamper = dyn Fn(&Backend, &str, Option<&[u8]>);

fn tamper_local(b: &Backend, hex: &str, bytes: Option<&[u8]>) {
    let p = b.dir.as_ref().unwrap().join(object_name(hex));
    match bytes {
        Some(bytes) => {
            if p.exists() {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
            }
            std::fs::write(&p, bytes).unwrap();
        }
        None => std::fs::remove_file(&p).unwrap(),
    }
}

/// Through the object_store crate with the test's (valid) keys, as another client would.
fn tamper_s3(b: &Backend, hex: &str, bytes: Option<&[u8]>) {
    use object_store::{ObjectStoreExt, PutPayload};
    let endpoint = format!("http://127.0.0.1:{}", b.port.unwrap());
    let store = crate::support::s3_client(&endpoint, BUCKET, S3_KEY_ID, S3_SECRET);
    let key = object_store::path::Path::from(format!("{PREFIX}/{}", object_name(hex)));
    crate::support::block_on(async {
        match bytes {
            Some(bytes) => {
                store.put(&key, PutPayload::from(bytes.to_vec())).await.unwrap();
            }
            None => store.delete(&key).await.unwrap(),
        }
    });
}

fn damaged(b: Backend, tamper: &Tamper) {
    let src = origin(&b);
    mlv(&src, &b, false, &[], &["push"]).ok();
    let good = src.read("model.bin");
    let hex = digest_of(&src, "model.bin.mlv");
    let dst = Env::clone_of(&src);

    let mut flipped = good.clone();
    flipped[0] ^= 0xff;
    let truncated = good[..good.len() / 2].to_vec();
    for (what, bytes) in [("corrupt", flipped), ("truncated", truncated)] {
        tamper(&b, &hex, Some(&bytes));
        for json in [false, true] {
            let mut args = vec!["pull", "model.bin"];
            if json {
                args.push("--json");
            }
            let out = mlv(&dst, &b, true, &[], &args).fails(3);
            let err = out.stderr_lines("error: ");
            assert_eq!(err.len(), 1, "{what}\n{out}");
            assert!(
                err[0].contains(&hex) && err[0].contains(&b.display),
                "{what}\n{out}"
            );
            assert!(err[0].contains("corrupt"), "{what}\n{out}");
            if json {
                assert_eq!(out.json()["exit_code"], 3, "{out}");
            }
            assert!(
                !dst.objects().iter().any(|o| o.ends_with(&hex)),
                "{what}: installed\n{out}"
            );
            assert!(!dst.exists("model.bin"), "{what}: checked out\n{out}");
            assert!(
                std::fs::read_dir(dst.path(".mlv/tmp")).map_or(true, |mut d| d.next().is_none()),
                "{what}: temporary file left behind"
            );
        }
    }
    // A damaged file inside a directory: nothing of the directory is checked out.
    let inner = b3(&files()[0].1);
    tamper(&b, &inner, Some(b"not alpha\n"));
    let out = mlv(&dst, &b, true, &[], &["pull", "data"]).fails(3);
    assert!(out.stderr.contains(&inner), "{out}");
    assert!(!dst.exists("data/a.txt"), "{out}");
    assert!(!dst.objects().iter().any(|o| o.ends_with(&inner)), "{out}");
    // A file inside a directory missing: its path inside the directory is named.
    tamper(&b, &inner, None);
    mlv(&dst, &b, true, &[], &["pull", "data"])
        .refused("data/a.txt", Some("push"))
        .stderr_has(&b.display);
    let st = mlv(&dst, &b, true, &[], &["status", "data", "--remote", "--json"]).ok();
    assert_eq!(
        st.json()["not_pushed"][0]["missing_paths"],
        serde_json::json!(["data/a.txt"]),
        "{st}"
    );
    tamper(&b, &inner, Some(&files()[0].1));

    // Missing: exit 1, naming the data paths that need it.
    tamper(&b, &hex, None);
    mlv(&dst, &b, true, &[], &["pull"])
        .refused("model.bin", Some("push"))
        .stderr_has(&b.display);
    assert!(!dst.exists("model.bin"));
    let st = mlv(&dst, &b, true, &[], &["status", "--remote", "--json"]).ok();
    assert_eq!(st.json()["in_sync"], false, "{st}");
    assert_eq!(st.json()["not_pushed"][0]["path"], "model.bin", "{st}");

    // Pushing again from the origin repairs the remote.
    let push = mlv(&src, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 1, "{push}");
    mlv(&dst, &b, true, &[], &["pull"]).ok();
    assert_eq!(dst.read("model.bin"), good);
    assert_eq!(tree(&dst, "data"), tree(&src, "data"));
}

#[test]
fn local_damaged_objects() {
    damaged(local_backend(), &tamper_local);
}

#[test]
fn s3_damaged_objects() {
    if let Some(b) = s3_backend() {
        damaged(b, &tamper_s3);
    }
}

// ---------------------------------------------------------------------------------------------
// Failures: dead servers, wrong credentials, configuration mistakes.

/// A backend whose server is not there.
fn dead(kind: &str, dir: &Path) -> Backend {
    let port = closed_port();
    let (url, mut options, env) = match kind {
        "s3" => (
            format!("s3://{BUCKET}/{PREFIX}"),
            s3_options(port),
            pairs(&[
                ("AWS_ACCESS_KEY_ID", S3_KEY_ID),
                ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
            ]),
        ),
        "azure" => (
            format!("az://mlv-e2e/{PREFIX}"),
            azure_options(&format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")),
            pairs(&[("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)]),
        ),
        "gcs" => {
            let key = gcs_key_file(dir, &format!("http://127.0.0.1:{port}"));
            let mut o = pairs(&[("service_account", key.to_str().unwrap()), ("allow_http", "true")]);
            o.extend(fast());
            (format!("gs://{BUCKET}/{PREFIX}"), o, Vec::new())
        }
        _ => unreachable!(),
    };
    options.retain(|(k, _)| k != "timeout");
    options.push(("timeout".into(), "2".into()));
    Backend {
        name: "dead",
        display: url.clone(),
        url,
        options,
        local_options: Vec::new(),
        env,
        clone_env: Vec::new(),
        dir: None,
        port: Some(port),
        _keep: Box::new(()),
    }
}

#[test]
fn unreachable_remotes_fail_fast() {
    let tmp = tempfile::tempdir().unwrap();
    for kind in ["s3", "azure", "gcs"] {
        let b = dead(kind, tmp.path());
        let src = origin(&b);
        let dst = Env::clone_of(&src);
        for (env, args) in [
            (&src, &["push"][..]),
            (&src, &["status", "--remote"][..]),
            (&dst, &["pull"][..]),
        ] {
            let t = Instant::now();
            let out = mlv(env, &b, false, &[], args).fails(1);
            let took = t.elapsed();
            assert!(
                took < Duration::from_secs(15),
                "{kind} {args:?} took {took:?}\n{out}"
            );
            let err = out.stderr_lines("error: ");
            assert_eq!(err.len(), 1, "{out}");
            assert!(
                err[0].contains("unreachable") && err[0].contains(&b.display),
                "{kind}\n{out}"
            );
            assert!(out.stderr.contains("hint: "), "{out}");
        }
        assert!(!dst.exists("model.bin"));
    }
}

/// Asserts the secret appears nowhere in what mlv printed.
#[track_caller]
fn no_secret(out: &Output, secret: &str) {
    assert!(
        !out.stderr.contains(secret) && !out.stdout.contains(secret),
        "the secret leaked\n{out}"
    );
}

#[test]
fn s3_wrong_credentials_are_reported_without_the_secret() {
    // With auth enforced, moto knows no keys: every signed request is refused.
    let Some(moto) = Moto::start(BUCKET, true) else {
        return;
    };
    let mut b = local_backend();
    b.url = format!("s3://{BUCKET}/{PREFIX}");
    b.display = b.url.clone();
    b.dir = None;
    b.options = s3_options(moto.proc.port);
    let src = origin(&b);
    let secret = "wrong-secret-Zq8Xv31";

    // From the environment.
    let env_creds = [
        ("AWS_ACCESS_KEY_ID", "AKIDWRONG"),
        ("AWS_SECRET_ACCESS_KEY", secret),
    ];
    let dst = Env::clone_of(&src);
    for (repo, args) in [
        (&src, &["push"][..]),
        (&src, &["push", "--json"]),
        (&src, &["status", "-r", "--json"]),
        (&dst, &["pull", "--json"]),
    ] {
        let out = mlv(repo, &b, false, &env_creds, args).fails(1);
        one_line_error(
            &out,
            &[
                "refused access",
                "the credentials are wrong",
                "(InvalidAccessKeyId)",
            ],
            "AWS_ACCESS_KEY_ID",
        );
        no_secret(&out, secret);
        if args.contains(&"--json") {
            assert_eq!(out.json()["exit_code"], 1, "{out}");
        }
    }

    // From the local config.
    mlv(
        &src,
        &b,
        false,
        &[],
        &["remote", "modify", "origin", "access_key_id", "AKIDWRONG"],
    )
    .ok();
    mlv(
        &src,
        &b,
        false,
        &[],
        &[
            "remote",
            "modify",
            "origin",
            "secret_access_key",
            secret,
            "--local",
        ],
    )
    .ok();
    for args in [
        &["push", "-v"][..],
        &["push", "--json"],
        &["remote", "list", "-v"],
        &["remote", "list", "--json"],
    ] {
        let out = mlv(&src, &b, false, &[], args);
        no_secret(&out, secret);
    }
    let out = mlv(&src, &b, false, &[], &["push", "--json"]).fails(1);
    assert!(out.stderr.contains("refused access"), "{out}");
    drop(moto);
}

#[test]
fn azure_wrong_key_is_reported_without_the_secret() {
    let Some(az) = Azurite::start("mlv-e2e") else {
        return;
    };
    let b = azure_without_key(&az);
    let src = origin(&b);
    // Base64 of a wrong key.
    let secret = "d3Jvbmcta2V5LWZvci1henVyaXRlLXRlc3Q=";
    let out = mlv(
        &src,
        &b,
        false,
        &[("AZURE_STORAGE_ACCOUNT_KEY", secret)],
        &["push", "--json"],
    )
    .fails(1);
    one_line_error(
        &out,
        &["refused access", "the credentials are wrong"],
        "AZURE_STORAGE_ACCOUNT_KEY",
    );
    no_secret(&out, secret);
    mlv(
        &src,
        &b,
        false,
        &[],
        &["remote", "modify", "origin", "access_key", secret, "--local"],
    )
    .ok();
    let out = mlv(&src, &b, false, &[], &["status", "--remote", "--json"]).fails(1);
    assert!(out.stderr.contains("refused access"), "{out}");
    no_secret(&out, secret);
}

/// The command fails with one `error:` line holding every `wanted` text, a hint holding
/// `hint`, and no server XML anywhere.
#[track_caller]
fn one_line_error(out: &Output, wanted: &[&str], hint: &str) {
    let err = out.stderr_lines("error: ");
    assert_eq!(err.len(), 1, "{out}");
    for w in wanted {
        assert!(err[0].contains(w), "`{w}` not in the error line\n{out}");
    }
    let hints = out.stderr_lines("hint: ");
    assert!(
        hints.len() == 1 && hints[0].contains(hint),
        "`{hint}` not in a hint\n{out}"
    );
    assert!(
        !out.stderr.contains("<Error") && !out.stderr.contains("<?xml") && !out.stdout.contains("<Error"),
        "raw XML printed\n{out}"
    );
}

/// A backend like `b` naming another bucket or container.
fn elsewhere(b: &Backend, url: &str) -> Backend {
    let mut o = local_backend();
    o.url = url.to_string();
    o.display = url.to_string();
    o.dir = None;
    o.options = b.options.clone();
    o.local_options = b.local_options.clone();
    o.env = b.env.clone();
    o.clone_env = b.clone_env.clone();
    o
}

#[test]
fn no_credentials_at_all_is_named_with_a_hint() {
    // No credentials at all: object_store falls back to a metadata service (a closed port).
    let tmp = tempfile::tempdir().unwrap();
    for (kind, url, scheme, hint) in [
        ("s3", format!("s3://{BUCKET}/{PREFIX}"), "s3", "AWS_ACCESS_KEY_ID"),
        (
            "gcs",
            format!("gs://{BUCKET}/{PREFIX}"),
            "gs",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ),
        (
            "azure",
            format!("az://mlv-e2e/{PREFIX}"),
            "azure",
            "AZURE_STORAGE_ACCOUNT_KEY",
        ),
    ] {
        let mut b = dead(kind, tmp.path());
        b.env.clear();
        b.options.retain(|(k, _)| k != "service_account");
        let src = origin(&b);
        let dst = Env::clone_of(&src);
        for (repo, args) in [
            (&src, &["push"][..]),
            (&src, &["status", "--remote"]),
            (&dst, &["pull"]),
        ] {
            let out = mlv(repo, &b, false, &[], args).fails(1);
            one_line_error(
                &out,
                &[&format!("no credentials found for {scheme} remote {url}")],
                hint,
            );
        }
    }
}

#[test]
fn a_missing_bucket_or_container_is_an_error_not_missing_objects() {
    // A HEAD answer has no body, so a missing bucket looked like missing objects: `status
    // --remote` listed them and exited 0.
    let s3 = s3_backend();
    let gcs = gcs_backend();
    let azure = azure_backend();
    for (b, url, code) in [
        (s3.as_ref(), "s3://no-such-bucket/p", "(NoSuchBucket)"),
        (gcs.as_ref(), "gs://no-such-bucket/p", "(NoSuchBucket)"),
        (azure.as_ref(), "az://no-such-container/p", "(ContainerNotFound)"),
    ] {
        let Some(b) = b else { continue };
        let b = elsewhere(b, url);
        let src = origin(&b);
        let dst = Env::clone_of(&src);
        for (repo, args) in [
            (&src, &["status", "--remote"][..]),
            (&src, &["push"]),
            (&dst, &["pull"]),
            (&src, &["fsck", "--remote"]),
        ] {
            let out = mlv(repo, &b, true, &[], args).fails(1);
            one_line_error(&out, &[url, "does not exist", code], "create the");
        }
    }
}

#[test]
fn azure_credentials_from_the_azure_cli_variables() {
    // `az` exports AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY; object_store alone reads
    // only the *_ACCOUNT_NAME / *_ACCOUNT_KEY spellings.
    let Some(az) = Azurite::start("mlv-e2e") else {
        return;
    };
    let mut b = azure_without_key(&az);
    b.options.retain(|(k, _)| k != "account");
    b.env = pairs(&[
        ("AZURE_STORAGE_ACCOUNT", AZURITE_ACCOUNT),
        ("AZURE_STORAGE_KEY", AZURITE_KEY),
    ]);
    let src = origin(&b);
    let push = mlv(&src, &b, false, &[], &["push", "--json"]).ok();
    assert!(push.json()["uploaded"].as_u64().unwrap() > 0, "{push}");
    let dst = Env::clone_of(&src);
    mlv(&dst, &b, true, &[], &["pull"]).ok();
    assert_eq!(dst.read("model.bin"), src.read("model.bin"));
}

#[test]
fn secrets_only_go_to_the_local_config() {
    let env = Env::new();
    env.mlv(&["remote", "add", "origin", "s3://bucket/prefix", "--default"])
        .ok();
    let before = env.snapshot();
    let committed = env.read_str(".mlv/config.toml");
    for (key, value) in [
        ("secret_access_key", "TOPSECRET-abc123"),
        ("session_token", "TOPSECRET-token"),
    ] {
        let out = env
            .mlv(&["remote", "modify", "origin", key, value])
            .refused("secret", Some("--local"));
        assert!(!out.stderr.contains(value), "{out}");
    }
    let out = env
        .mlv(&["remote", "add", "other", "s3://AKID:TOPSECRET@bucket/x"])
        .fails(1);
    assert!(!out.stderr.contains("TOPSECRET"), "{out}");
    assert_eq!(env.read_str(".mlv/config.toml"), committed);
    assert!(!env.exists(".mlv/config.local.toml"));
    env.snapshot().assert_same(&before);

    env.mlv(&[
        "remote",
        "modify",
        "origin",
        "secret_access_key",
        "TOPSECRET-abc123",
        "--local",
    ])
    .ok();
    env.mlv(&["remote", "modify", "origin", "access_key_id", "AKIDPUBLIC"])
        .ok();
    let local = env.read_str(".mlv/config.local.toml");
    assert!(local.contains("TOPSECRET-abc123"), "{local}");
    assert!(!env.read_str(".mlv/config.toml").contains("TOPSECRET"));
    let ignored = env.git(&["status", "--porcelain", "--ignored", ".mlv"]);
    assert!(ignored.contains("!! .mlv/config.local.toml"), "{ignored}");

    let list = env.mlv(&["remote", "list", "-v"]).ok();
    assert!(list.stdout.contains("secret_access_key = ***"), "{list}");
    assert!(list.stdout.contains("access_key_id = AKIDPUBLIC"), "{list}");
    assert!(!list.stdout.contains("TOPSECRET"), "{list}");
    let json = env.mlv(&["remote", "list", "--json"]).ok();
    assert_eq!(json.json()[0]["options"]["secret_access_key"], "***", "{json}");
    assert!(!json.stdout.contains("TOPSECRET"), "{json}");

    // --unset --local removes it again.
    env.mlv(&[
        "remote",
        "modify",
        "origin",
        "secret_access_key",
        "--unset",
        "--local",
    ])
    .ok();
    assert!(!env.read_str(".mlv/config.local.toml").contains("TOPSECRET"));
}

/// A credential inside any option value (a URL's password, a query token), not just in the
/// keys known to be secret, is refused for the committed config and accepted with --local, into a
/// config.local.toml readable by its owner only.
#[test]
fn credentials_in_any_value_only_go_to_the_local_config() {
    let env = Env::new();
    env.mlv(&["remote", "add", "origin", "s3://bucket/prefix", "--default"])
        .ok();
    env.mlv(&["remote", "add", "blob", "az://container/p"]).ok();
    let before = env.snapshot();
    for (name, key, value) in [
        ("origin", "endpoint", "http://minio:TOPSECRET-pw@127.0.0.1:9000"),
        (
            "origin",
            "endpoint",
            "https://s3.example.com/?X-Amz-Signature=TOPSECRET-sig",
        ),
        (
            "blob",
            "endpoint",
            "http://devstoreaccount1:TOPSECRET-pw@127.0.0.1:10000/devstoreaccount1",
        ),
        (
            "blob",
            "endpoint",
            "https://acct.blob.core.windows.net/?sv=2022&sig=TOPSECRET-sig",
        ),
        ("blob", "account", "acct?token=TOPSECRET-tok"),
    ] {
        let out = env
            .mlv(&["remote", "modify", name, key, value])
            .refused("secret", Some("--local"));
        assert!(!out.stderr.contains("TOPSECRET"), "{out}");
        let out = env
            .mlv(&["remote", "modify", name, key, value, "--json"])
            .fails(1);
        assert!(!out.stdout.contains("TOPSECRET"), "{out}");
    }
    env.snapshot().assert_same(&before);
    assert!(!env.exists(".mlv/config.local.toml"));

    // --local takes it, in a file only its owner can read.
    env.mlv(&[
        "remote",
        "modify",
        "origin",
        "endpoint",
        "http://minio:TOPSECRET-pw@127.0.0.1:9000",
        "--local",
    ])
    .ok();
    assert_eq!(env.mode(".mlv/config.local.toml") & 0o777, 0o600);
    assert!(!env.read_str(".mlv/config.toml").contains("TOPSECRET"));
    // An existing world-readable one is tightened when mlv rewrites it.
    std::fs::set_permissions(
        env.path(".mlv/config.local.toml"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    env.mlv(&["remote", "modify", "origin", "region", "eu-west-1", "--local"])
        .ok();
    assert_eq!(env.mode(".mlv/config.local.toml") & 0o777, 0o600);
    let list = env.mlv(&["remote", "list", "-v"]).ok();
    assert!(!list.stdout.contains("TOPSECRET"), "{list}");
}

/// A committed config that holds a credential (hand-edited, or from an older mlv) is refused
/// when the remote is used, naming the setting and never printing it; `remote list` still works.
#[test]
fn a_credential_in_the_committed_config_is_refused_when_used() {
    let b = local_backend();
    let env = origin(&b);
    mlv(&env, &b, false, &[], &["push"]).ok();
    let mut text = env.read_str(".mlv/config.toml");
    text.push_str(
        "\n[remote.minio]\nurl = \"s3://bucket/p\"\nendpoint = \"http://minio:TOPSECRET-pw@127.0.0.1:9\"\n",
    );
    env.write(".mlv/config.toml", &text);
    for args in [
        &["push", "-r", "minio"][..],
        &["fetch", "-r", "minio"],
        &["status", "-r", "minio"],
        &["fsck", "--remote", "minio"],
    ] {
        let out = env.mlv(args).refused("remote.minio.endpoint", Some("--local"));
        assert!(!out.stderr.contains("TOPSECRET"), "{out}");
    }
    let list = env.mlv(&["remote", "list", "-v"]).ok();
    assert!(!list.stdout.contains("TOPSECRET"), "{list}");
    // The other remote is unaffected, and the way out the hint gives works.
    mlv(&env, &b, false, &[], &["status", "-r", "origin"]).ok();
    env.mlv(&["remote", "modify", "minio", "endpoint", "--unset"])
        .ok();
    assert!(!env.read_str(".mlv/config.toml").contains("TOPSECRET"));
}

#[test]
fn unknown_remote_and_no_default() {
    let b = local_backend();
    let env = origin(&b);
    for args in [
        &["push", "-r", "nope"][..],
        &["pull", "--remote", "nope"],
        &["fetch", "-r", "nope"],
        &["status", "--remote", "nope"],
        &["remote", "modify", "nope", "timeout", "3"],
        &["remote", "remove", "nope"],
        &["remote", "default", "nope"],
    ] {
        let before = env.snapshot();
        env.mlv(args)
            .refused("no remote named `nope`", Some("remote list"));
        env.snapshot().assert_same(&before);
    }
    let out = env.mlv(&["push", "-r", "nope", "--json"]).fails(1);
    assert_eq!(out.json()["exit_code"], 1, "{out}");

    // No default remote: an error with a hint.
    env.mlv(&["remote", "remove", "origin"]).ok();
    for args in [&["push"][..], &["pull"], &["fetch"], &["status", "--remote"]] {
        env.mlv(args)
            .refused("no default remote", Some("mlv remote add NAME URL --default"));
    }
    // Remotes but no default: the hint names `mlv remote default` (`remote add` would fail).
    env.mlv(&["remote", "add", "origin", &b.url]).ok();
    for args in [&["push"][..], &["pull"], &["fetch"], &["status", "--remote"]] {
        env.mlv(args)
            .refused("no default remote", Some("mlv remote default origin"));
    }
    env.mlv(&["remote", "add", "backup", &b.url]).ok();
    env.mlv(&["push"])
        .refused("no default remote", Some("mlv remote default NAME"));
    // Adding it again with --default (the old hint) says how to make it the default.
    env.mlv(&["remote", "add", "origin", &b.url, "--default"])
        .refused("already exists", Some("mlv remote default origin"));
    // Usage errors are exit 2.
    env.mlv(&["remote", "add", "only-a-name"]).fails(2);
    env.mlv(&["remote", "modify", "origin", "timeout"]).fails(2);
}

#[test]
fn push_refuses_data_missing_from_the_cache() {
    let b = local_backend();
    let src = origin(&b);
    let dst = Env::clone_of(&src);
    let before = dst.snapshot();
    let out = mlv(&dst, &b, true, &[], &["push"]).refused("missing from the cache", Some("fetch"));
    assert!(
        out.stderr.contains("data.mlv") || out.stderr.contains("data"),
        "{out}"
    );
    assert!(out.stderr.contains("model.bin"), "{out}");
    dst.snapshot().assert_same(&before);
    assert!(
        std::fs::read_dir(b.dir.as_ref().unwrap()).map_or(true, |d| d
            .filter(|e| e.as_ref().unwrap().file_name() != ".mlv-tmp")
            .count()
            == 0),
        "push uploaded something"
    );

    // With the manifest but not all files: the paths inside the directory are named.
    mlv(&src, &b, false, &[], &["push", "data"]).ok();
    mlv(&dst, &b, true, &[], &["fetch", "data/sub"]).ok();
    std::fs::remove_dir_all(b.dir.as_ref().unwrap()).unwrap();
    let out = mlv(&dst, &b, true, &[], &["push", "data"]).refused("missing from the cache", None);
    assert!(out.stderr.contains("data/a.txt"), "{out}");
    assert!(!out.stderr.contains("data/sub/"), "{out}");
    // What the cache has can be pushed.
    let ok = mlv(&dst, &b, true, &[], &["push", "data/sub", "--json"]).ok();
    assert!(ok.json()["uploaded"].as_u64().unwrap() > 0, "{ok}");
}

#[test]
fn no_progress_output_without_a_tty() {
    let b = local_backend();
    let env = Env::new();
    // Enough data that a progress bar would show (it appears after 400 ms).
    let big: Vec<u8> = (0..48u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    env.write("big/a.bin", &big);
    env.write("big/b.bin", &big[1..]);
    env.mlv(&["add", "big"]).ok();
    configure(&env, &b, "origin", true);
    env.mlv(&["remote", "modify", "origin", "jobs", "1"]).ok();
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "big"]);
    let dst = Env::clone_of(&env);
    for (repo, args) in [
        (&env, &["push"][..]),
        (&env, &["status", "--remote"]),
        (&dst, &["pull"]),
    ] {
        let out = repo
            .command(MLV, args)
            .env_remove("MLV_NO_PROGRESS")
            .env_remove("NO_COLOR")
            .run()
            .ok();
        assert!(
            !out.stderr.contains('\r') && !out.stderr.contains('\x1b'),
            "{out}"
        );
    }
    assert_eq!(dst.read("big/a.bin"), big);
}

/// On a terminal (a pty from `script`), fetch shows a download bar for the files, after the
/// one for the directory's manifest; item rates are whole numbers (`1,234/s`).
#[test]
fn download_progress_on_a_terminal() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("\n*** skipping: `script` (util-linux) is not installed\n");
        return;
    }
    let b = local_backend();
    let env = Env::new();
    for i in 0..30 {
        env.write(&format!("data/f{i:02}.bin"), noise(3000, i));
    }
    env.mlv(&["add", "data"]).ok();
    configure(&env, &b, "origin", true);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env.mlv(&["push"]).ok();
    let dst = Env::clone_of(&env);
    let out = dst
        .command("script", &["-qec", &format!("{MLV} fetch"), "/dev/null"])
        .env_remove("MLV_NO_PROGRESS")
        .env("MLV_PROGRESS_DELAY_MS", "0")
        .env("TERM", "xterm")
        .run()
        .ok();
    let text = out.stdout.replace('\r', "\n");
    assert!(text.contains("downloading"), "{out}");
    assert!(text.contains("/30 "), "no bar for the files\n{out}");
    let rates = text
        .match_indices("/s")
        .filter(|(i, _)| !text[i + 2..].starts_with(|c: char| c.is_alphanumeric()));
    for (i, _) in rates {
        let before = text[..i].rsplit(' ').next().unwrap();
        let count = before.rsplit('/').next().unwrap();
        assert!(
            count.chars().all(|c| c.is_ascii_digit() || c == ','),
            "a rate with decimals: {before}\n{out}"
        );
    }
    assert!(text.contains("fetched 31 objects"), "{out}");
}

/// Every concrete example command of docs/remotes.md runs (the network-free ones succeed; the
/// transfer ones at least parse).
#[test]
fn documented_remote_commands_work() {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/remotes.md")).unwrap();
    let env = Env::new();
    let mut in_block = false;
    let mut ran = 0;
    for line in doc.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let cmd = line.split(" #").next().unwrap().trim();
        if !in_block || !cmd.starts_with("mlv ") {
            continue;
        }
        let words: Vec<&str> = cmd.split_whitespace().skip(1).collect();
        let placeholder = |w: &&str| {
            w.starts_with('[')
                || (!w.contains("://") && w.chars().all(|c| c.is_ascii_uppercase() || c == '.'))
        };
        if words.iter().any(placeholder) {
            // The synopsis: check the subcommand and its flags with --help.
            let mut help: Vec<&str> = words.iter().take_while(|w| !placeholder(w)).copied().collect();
            help.push("--help");
            let out = env.mlv(&help).ok();
            for flag in words
                .iter()
                .map(|w| w.trim_matches(['[', ']']))
                .filter(|w| w.starts_with('-'))
            {
                assert!(out.stdout.contains(flag), "{cmd}: no {flag} in\n{out}");
            }
            continue;
        }
        // commands that talk to the remote (a cloud one in this document): their --help
        let out = if ["push", "pull", "fetch", "status"].contains(&words[0]) || words.contains(&"--remote") {
            env.mlv(&[words[0], "--help"])
        } else if words[..2] == ["remote", "upgrade"] {
            // it talks to the remote (a cloud one in this document)
            env.mlv(&["remote", "upgrade", "--help"])
        } else {
            env.mlv(&words)
        };
        assert_eq!(out.code, Some(0), "{cmd}\n{out}");
        ran += 1;
    }
    assert!(ran >= 15, "only {ran} examples found");
    let list = env.mlv(&["remote", "list"]).ok();
    assert!(
        list.stdout.contains("abfss://my-container@mystorageacct"),
        "{list}"
    );
}

/// The MinIO example of docs/remotes.md, run as written against moto (only the host is
/// changed): the remote it adds is the default, so the `mlv push` that follows works.
#[test]
fn the_documented_s3_compatible_example_pushes() {
    let Some(moto) = Moto::start("ml-data", false) else {
        return;
    };
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/remotes.md")).unwrap();
    let block: Vec<&str> = doc
        .lines()
        .skip_while(|l| !l.starts_with("# MinIO"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("mlv "))
        .collect();
    assert!(block.len() >= 4 && block.last() == Some(&"mlv push"), "{block:?}");
    let env = Env::new();
    env.write("data/a.txt", b"alpha\n");
    env.mlv(&["add", "data"]).ok();
    let endpoint = format!("http://127.0.0.1:{}", moto.proc.port);
    let mut b = local_backend();
    b.env = pairs(&[
        ("AWS_ACCESS_KEY_ID", S3_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", S3_SECRET),
    ]);
    for line in block {
        let line = line.replace("http://minio.lan:9000", &endpoint);
        let words: Vec<&str> = line.split_whitespace().skip(1).collect();
        let out = mlv(&env, &b, false, &[], &words);
        assert_eq!(out.code, Some(0), "{line}\n{out}");
    }
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    let dst = Env::clone_of(&env);
    mlv(&dst, &b, true, &[], &["pull"]).ok();
    assert_eq!(dst.read("data/a.txt"), b"alpha\n");
}

/// Pushing a path inside a tracked directory does not push the directory's manifest until the
/// remote holds every file it lists: a manifest on the remote always means complete data.
#[test]
fn partial_push_keeps_the_manifest_back_until_the_directory_is_complete() {
    let b = local_backend();
    let src = origin(&b);
    let j = mlv(&src, &b, false, &[], &["push", "data/sub", "--json"])
        .ok()
        .json();
    assert_eq!(j["partial_manifests"], 1, "{j}");
    let clone = Env::clone_of(&src);
    let st = mlv(&clone, &b, true, &[], &["status", "--remote", "--json"])
        .ok()
        .json();
    assert_eq!(st["in_sync"], false, "{st}");
    mlv(&clone, &b, true, &[], &["pull", "data"]).fails(1);
    let j = mlv(&src, &b, false, &[], &["push", "--json"]).ok().json();
    assert_eq!(j["partial_manifests"], 0, "{j}");
    let st = mlv(&clone, &b, true, &[], &["status", "--remote", "--json"])
        .ok()
        .json();
    assert_eq!(st["in_sync"], true, "{st}");
    mlv(&clone, &b, true, &[], &["pull"]).ok();
    assert_eq!(tree(&clone, "data"), tree(&src, "data"));
}

/// When one object is missing on the remote, pull still checks out everything else it could
/// fetch, and exits 1 naming what is missing.
#[test]
fn pull_restores_what_it_can_when_an_object_is_missing() {
    let b = local_backend();
    let src = origin(&b);
    mlv(&src, &b, false, &[], &["push"]).ok();
    tamper_local(&b, &digest_of(&src, "model.bin.mlv"), None);
    let clone = Env::clone_of(&src);
    mlv(&clone, &b, true, &[], &["pull"])
        .fails(1)
        .stderr_has("model.bin");
    assert_eq!(tree(&clone, "data"), tree(&src, "data"));
    assert!(!clone.exists("model.bin"));
}

/// A local remote receives objects in batches (one file-system sync per batch): a push larger
/// than a few batches lands every object, read-only and intact, leaves nothing in the staging
/// directory, and a fresh clone pulls it back byte for byte.
#[test]
fn local_push_of_many_objects_in_batches() {
    let b = local_backend();
    let env = Env::new();
    // More than one batch of 4,096 objects.
    for i in 0..4500 {
        env.write(&format!("data/d{}/f{i}", i % 7), format!("object number {i}\n"));
    }
    env.mlv(&["add", "data"]).ok();
    configure(&env, &b, "origin", true);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);

    let push = mlv(&env, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 4501, "{push}");
    let dir = b.dir.as_ref().unwrap();
    let staging: Vec<_> = std::fs::read_dir(dir.join(".mlv-tmp")).unwrap().collect();
    assert!(staging.is_empty(), "staging directory not empty: {staging:?}");
    for i in [0, 4095, 4499] {
        let obj = dir.join(object_name(&b3(format!("object number {i}\n").as_bytes())));
        assert_eq!(
            std::fs::metadata(&obj).unwrap().permissions().mode() & 0o222,
            0,
            "{obj:?}"
        );
    }
    let again = mlv(&env, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(again.json()["uploaded"], 0, "{again}");

    let clone = Env::clone_of(&env);
    mlv(&clone, &b, true, &[], &["pull"]).ok();
    assert_eq!(tree(&clone, "data"), tree(&env, "data"));
}

/// A format 2 remote on S3 (moto, through a counting proxy): a push of 5,000 small files is a
/// handful of requests (the config document, one listing of the index and one of the top
/// level, one pack and one index segment for the files, one of each for the directory's
/// manifest); a no-op push reads the config document and lists the index (its segments are
/// kept locally); a pull into a clone reads them and a few ranges of two packs.
#[test]
fn format2_push_and_pull_of_many_small_files_take_a_few_requests() {
    let Some(mut b) = s3_backend() else { return };
    let proxy = FaultProxy::start(b.port.unwrap());
    through(&mut b, &proxy);
    let env = Env::new();
    for i in 0..5000 {
        env.write(&format!("data/d{}/f{i}", i % 7), format!("object number {i}\n"));
    }
    env.mlv(&["add", "data"]).ok();
    configure(&env, &b, "origin", true);
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    mlv(&env, &b, false, &[], &["remote", "upgrade", "origin"]).ok();

    let count = |from: usize, what: &str| {
        let seen = proxy.seen()[from..].to_vec();
        eprintln!("{what}: {} requests", seen.len());
        for s in &seen {
            eprintln!("  {} {} {:?}", s.method, s.path, s.range);
        }
        seen.len()
    };
    let before = proxy.seen().len();
    let push = mlv(&env, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(push.json()["uploaded"], 5001, "{push}");
    assert!(count(before, "push") <= 8, "{push}");

    let before = proxy.seen().len();
    let again = mlv(&env, &b, false, &[], &["push", "--json"]).ok();
    assert_eq!(again.json()["uploaded"], 0, "{again}");
    // the config document, the index listing and gc's marks listing (issue 16: <= 3)
    assert!(count(before, "no-op push") <= 3);

    let dst = Env::clone_of(&env);
    let before = proxy.seen().len();
    mlv(&dst, &b, true, &[], &["pull"]).ok();
    assert!(count(before, "pull") <= 8);
    assert_eq!(tree(&dst, "data"), tree(&env, "data"));
}

/// The keys under `rel` (relative to the remote's root), for a local or an S3 remote.
fn remote_keys(b: &Backend, rel: &str) -> Vec<String> {
    if let Some(dir) = &b.dir {
        return walkdir::WalkDir::new(dir.join(rel))
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned())
            .collect();
    }
    use futures::TryStreamExt;
    let endpoint = format!("http://127.0.0.1:{}", b.port.unwrap());
    let store = crate::support::s3_client(&endpoint, BUCKET, S3_KEY_ID, S3_SECRET);
    let prefix = object_store::path::Path::from(format!("{PREFIX}/{rel}"));
    let keys: Vec<String> = crate::support::block_on(async {
        object_store::ObjectStore::list(&store, Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap()
    });
    keys.into_iter()
        .map(|k| k[PREFIX.len() + 1..].to_string())
        .collect()
}

/// Deletes `rel` on a local or an S3 remote, behind mlv's back.
fn delete_key(b: &Backend, rel: &str) {
    if let Some(dir) = &b.dir {
        std::fs::remove_file(dir.join(rel)).unwrap();
        return;
    }
    use object_store::ObjectStoreExt;
    let endpoint = format!("http://127.0.0.1:{}", b.port.unwrap());
    let store = crate::support::s3_client(&endpoint, BUCKET, S3_KEY_ID, S3_SECRET);
    let key = object_store::path::Path::from(format!("{PREFIX}/{rel}"));
    crate::support::block_on(async { store.delete(&key).await.unwrap() });
}

/// `fsck --remote [--read-data]` on a format 2 remote: clean after a push; a pack deleted
/// behind mlv's back is reported with the paths whose data it held (exit 4); a pull of them
/// is refused as damage (exit 3) naming the pack.
fn format2_fsck(b: Backend) {
    let src = origin(&b);
    mlv(&src, &b, false, &[], &["remote", "upgrade", "origin"]).ok();
    mlv(&src, &b, false, &[], &["push"]).ok();
    for args in [
        &["fsck", "--remote", "--json"][..],
        &["fsck", "--remote", "--read-data", "--json"],
    ] {
        let out = mlv(&src, &b, false, &[], args).ok();
        assert_eq!(out.json()["clean"], true, "{out}");
        assert!(out.json()["format2"]["packs"].as_u64().unwrap() >= 1, "{out}");
    }
    let packs = remote_keys(&b, "packs");
    assert!(!packs.is_empty());
    delete_key(&b, &packs[0]);
    let id = packs[0].rsplit('/').next().unwrap().to_string();
    let out = mlv(&src, &b, false, &[], &["fsck", "--remote", "--json"]).fails(4);
    let j = out.json();
    let p = j["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["item"] == "pack")
        .unwrap_or_else(|| panic!("{out}"));
    assert_eq!(
        (&p["digest"], &p["kind"]),
        (&id.clone().into(), &"missing".into()),
        "{out}"
    );
    assert_eq!(p["location"], b.display, "{out}");
    let paths: Vec<String> = p["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    assert!(!paths.is_empty(), "{out}");
    let dst = Env::clone_of(&src);
    let pull = mlv(&dst, &b, true, &[], &["pull", &paths[0]]).fails(3);
    assert!(pull.stderr.contains(&id), "{pull}");
    assert_eq!(pull.stderr_lines("error: ").len(), 1, "{pull}");
}

#[test]
fn local_format2_fsck() {
    format2_fsck(local_backend());
}

#[test]
fn s3_format2_fsck() {
    if let Some(b) = s3_backend() {
        format2_fsck(b);
    }
}
