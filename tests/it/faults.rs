//! Faults on the wire: the real binary talks to moto (S3) through `support::fault_proxy`, which
//! returns error statuses, resets connections, truncates or corrupts bodies, stalls, or drops
//! the reply to an upload. Transient faults must be retried; persistent ones must fail with
//! one clear line; a damaged body is never installed; a rerun without the fault converges.
//!
//! The remote is configured with a 2 s idle timeout and 3 retries within 8 s, so stalls take
//! seconds. Without moto these tests skip loudly, or fail when `CI` is set.

use std::time::{Duration, Instant};

use crate::common::{b3, noise, Env, Output, MLV};
use crate::support::fault_proxy::{read_body, read_head, Fault, FaultProxy, Rule};
use crate::support::{closed_port, Moto};

const BUCKET: &str = "mlv-faults";
const PREFIX: &str = "proj";
const KEY_ID: &str = "AKIDMLVFAULTS";
const SECRET: &str = "moto-secret-faults-31d7";
const REMOTE: &str = "s3://mlv-faults/proj";
/// The remote's idle timeout in seconds; stalls last longer.
const TIMEOUT: u64 = 2;

/// moto, the proxy in front of it, and a repository whose default remote goes through the proxy.
struct Rig {
    proxy: FaultProxy,
    moto: Moto,
    src: Env,
}

impl Rig {
    /// A repository tracking `model.bin` (64 KiB) and `data/` (three files), committed.
    fn new() -> Option<Rig> {
        let moto = Moto::start(BUCKET, false)?;
        let proxy = FaultProxy::start(moto.proc.port);
        let src = Env::new();
        src.write("model.bin", noise(64 * 1024, 1));
        for i in 0..3 {
            src.write(&format!("data/f{i}.bin"), noise(10_000 + i * 1000, 10 + i as u64));
        }
        src.mlv(&["add", "model.bin", "data"]).ok();
        let rig = Rig { proxy, moto, src };
        rig.configure(&rig.src);
        rig.src.git(&["add", "-A"]);
        rig.src.git(&["commit", "-qm", "data"]);
        Some(rig)
    }

    /// Adds `origin` (through the proxy) to `env` as its default remote.
    fn configure(&self, env: &Env) {
        env.mlv(&["remote", "add", "origin", REMOTE, "--default", "--format", "1"])
            .ok();
        let endpoint = self.proxy.url();
        let timeout = TIMEOUT.to_string();
        for (k, v) in [
            ("endpoint", endpoint.as_str()),
            ("region", "us-east-1"),
            ("timeout", &timeout),
            ("connect_timeout", "1"),
            ("retries", "3"),
            ("retry_timeout", "8"),
        ] {
            env.mlv(&["remote", "modify", "origin", k, v]).ok();
        }
    }

    /// A clone of the source repository (empty cache, remote settings committed).
    fn clone(&self) -> Env {
        Env::clone_of(&self.src)
    }

    /// `mlv ARGS` in `env` with the S3 keys and no reachable metadata service.
    fn mlv(&self, env: &Env, args: &[&str]) -> Output {
        let p = closed_port();
        env.command(MLV, args)
            .env("AWS_ACCESS_KEY_ID", KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_METADATA_ENDPOINT", &format!("http://127.0.0.1:{p}"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .run()
    }

    /// Reads an object straight from moto (bypassing the proxy); `None` if absent.
    fn remote_object(&self, hex: &str) -> Option<Vec<u8>> {
        use object_store::ObjectStoreExt;
        let store = crate::support::s3_client(&self.moto.proc.url(), BUCKET, KEY_ID, SECRET);
        let key = object_store::path::Path::from(format!("{PREFIX}/{}/{hex}", &hex[..2]));
        crate::support::block_on(async {
            match store.get(&key).await {
                Ok(got) => Some(got.bytes().await.unwrap().to_vec()),
                Err(object_store::Error::NotFound { .. }) => None,
                Err(e) => panic!("cannot read {key} from moto: {e}"),
            }
        })
    }
}

fn digest_of(env: &Env, pointer: &str) -> String {
    env.pointer(pointer)["digest"].as_str().unwrap().to_string()
}

/// Asserts `out` failed with exactly one `error:` line naming `what` and the remote.
#[track_caller]
fn one_line_failure(out: &Output, code: i32, what: &str) {
    assert_eq!(out.code, Some(code), "expected exit code {code}\n{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    let errors = out.stderr_lines("error: ");
    assert_eq!(errors.len(), 1, "expected one error line\n{out}");
    assert!(errors[0].contains(what), "error line lacks {what:?}\n{out}");
    assert!(errors[0].contains(REMOTE), "error line lacks the remote\n{out}");
}

/// Asserts the cache holds no object named `hex` and no temporary file.
#[track_caller]
fn not_installed(env: &Env, hex: &str) {
    assert!(
        !env.objects().iter().any(|o| o.ends_with(hex)),
        "object {hex} was installed: {:?}",
        env.objects()
    );
    let tmp = env.path(".mlv/tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary files left in .mlv/tmp: {left:?}");
}

/// Every tracked file of the clone matches the source.
#[track_caller]
fn same_data(a: &Env, b: &Env) {
    assert_eq!(a.read("model.bin"), b.read("model.bin"));
    for i in 0..3 {
        let rel = format!("data/f{i}.bin");
        assert_eq!(a.read(&rel), b.read(&rel), "{rel}");
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy itself: keep-alive, Content-Length and chunked bodies both ways.

/// An upstream that answers every request with its body echoed in two chunks (chunked
/// encoding), one request per connection.
fn chunked_echo_server() -> u16 {
    use std::io::{BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let Ok(Some(head)) = read_head(&mut r) else {
                continue;
            };
            let body = read_body(&mut r, &head, false).unwrap();
            let (a, b) = body.split_at(body.len() / 2);
            let mut resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            for part in [a, b] {
                resp.extend(format!("{:x}\r\n", part.len()).as_bytes());
                resp.extend(part);
                resp.extend(b"\r\n");
            }
            resp.extend(b"0\r\n\r\n");
            let _ = conn.write_all(&resp);
        }
    });
    port
}

#[test]
fn the_proxy_keeps_connections_alive_and_reframes_bodies() {
    use std::io::{BufReader, Write};
    let proxy = FaultProxy::start(chunked_echo_server());
    proxy.add(Rule::new(Fault::FlipByte).path("/third"));
    let conn = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut out = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    let body = noise(70_000, 3);
    let requests: [(&str, Vec<u8>); 3] = [
        (
            "/first",
            format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
        ),
        ("/second", b"Transfer-Encoding: chunked\r\n\r\n".to_vec()),
        (
            "/third",
            format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes(),
        ),
    ];
    for (path, head) in requests {
        let mut req = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n").into_bytes();
        req.extend(head);
        if path == "/second" {
            for part in body.chunks(30_000) {
                req.extend(format!("{:x};ext=1\r\n", part.len()).as_bytes());
                req.extend(part);
                req.extend(b"\r\n");
            }
            req.extend(b"0\r\nX-Trailer: 1\r\n\r\n");
        } else {
            req.extend(&body);
        }
        out.write_all(&req).unwrap();
        let resp = read_head(&mut r)
            .unwrap()
            .expect("a response on the same connection");
        assert!(resp.line.contains(" 200 "), "{path}: {}", resp.line);
        assert_eq!(
            resp.get("content-length"),
            Some(body.len().to_string().as_str()),
            "{path}"
        );
        assert_eq!(resp.get("transfer-encoding"), None, "{path}");
        let got = read_body(&mut r, &resp, false).unwrap();
        let differing = got.iter().zip(&body).filter(|(a, b)| a != b).count();
        assert_eq!(got.len(), body.len(), "{path}");
        assert_eq!(differing, usize::from(path == "/third"), "{path}");
    }
    assert_eq!(proxy.seen().len(), 3);
}

// ---------------------------------------------------------------------------------------------
// Transient faults are retried.

#[test]
fn transient_upload_faults_are_retried() {
    let Some(rig) = Rig::new() else { return };
    let faults = [
        Fault::Status(503),
        Fault::Status(500),
        Fault::Status(429),
        Fault::Reset,
        Fault::Stall(Duration::from_secs(TIMEOUT + 2)),
    ];
    for (i, fault) in faults.iter().enumerate() {
        let rel = format!("more/m{i}.bin");
        rig.src.write(&rel, noise(30_000, 100 + i as u64));
        rig.src.mlv(&["add", &rel]).ok();
        let hex = digest_of(&rig.src, &format!("{rel}.mlv"));
        rig.proxy
            .add(Rule::new(fault.clone()).method("PUT").path(&hex).once());
        let out = rig.mlv(&rig.src, &["push", &rel, "--json"]).ok();
        assert_eq!(out.json()["uploaded"], 1, "{fault:?}\n{out}");
        assert_eq!(rig.proxy.fired(fault), 1, "{fault:?}");
        assert!(
            rig.proxy.count("PUT", &hex) >= 2,
            "{fault:?}: one failed try, then a retry"
        );
        assert_eq!(
            rig.remote_object(&hex).as_deref(),
            Some(&rig.src.read(&rel)[..]),
            "{fault:?}"
        );
    }
}

#[test]
fn every_put_failing_once_still_pushes_everything() {
    let Some(rig) = Rig::new() else { return };
    let objects = rig.src.objects();
    for o in &objects {
        let hex = o.rsplit('/').next().unwrap();
        rig.proxy
            .add(Rule::new(Fault::Status(503)).method("PUT").path(hex).once());
    }
    let out = rig.mlv(&rig.src, &["push", "--json"]).ok();
    // the objects of data/ plus its manifest, and model.bin
    assert_eq!(
        out.json()["uploaded"].as_u64(),
        Some(objects.len() as u64),
        "{out}"
    );
    assert_eq!(rig.proxy.fired(&Fault::Status(503)), objects.len());
    let st = rig.mlv(&rig.src, &["status", "--remote", "--json"]).ok();
    assert_eq!(st.json()["in_sync"], true, "{st}");
}

#[test]
fn transient_download_faults_are_retried() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let hex = digest_of(&rig.src, "model.bin.mlv");
    let faults = [
        Fault::Status(503),
        Fault::Status(500),
        Fault::Status(429),
        Fault::Reset,
        Fault::Truncate,
        Fault::Stall(Duration::from_secs(TIMEOUT + 2)),
        Fault::StallBody(Duration::from_secs(TIMEOUT + 2)),
    ];
    for fault in faults {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).once());
        let dst = pull_despite(&rig, &fault, &["pull"]);
        same_data(&rig.src, &dst);
    }
}

/// Pulls `path` into `dst` while `fault` persists: one line of error, exit 1, within the
/// retry budget, and nothing of the object `hex` installed or checked out.
fn pull_fails(rig: &Rig, dst: &Env, fault: &Fault, path: &str, hex: &str) -> Output {
    let start = Instant::now();
    let out = rig.mlv(dst, &["pull", path]);
    one_line_failure(&out, 1, hex);
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{fault:?} took {:?}",
        start.elapsed()
    );
    not_installed(dst, hex);
    assert!(!dst.exists(path), "{fault:?}: checked out\n{out}");
    out
}

/// Pulls into a fresh clone while `fault` is set up to fire once: the pull succeeds, the fault
/// fired, and the retry did not wait out more than the timeouts.
fn pull_despite(rig: &Rig, fault: &Fault, args: &[&str]) -> Env {
    let dst = rig.clone();
    let start = Instant::now();
    let out = rig.mlv(&dst, args);
    assert_eq!(out.code, Some(0), "{fault:?}\n{out}");
    assert_eq!(rig.proxy.fired(fault), 1, "{fault:?}");
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{fault:?} took {:?}",
        start.elapsed()
    );
    dst
}

#[test]
fn the_third_get_failing_is_retried() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let dst = rig.clone();
    let object_gets = format!("/{BUCKET}/{PREFIX}/");
    rig.proxy.add(
        Rule::new(Fault::Status(503))
            .method("GET")
            .path(&object_gets)
            .nth(3)
            .once(),
    );
    rig.mlv(&dst, &["pull", "-j", "1"]).ok();
    same_data(&rig.src, &dst);
    assert_eq!(rig.proxy.fired(&Fault::Status(503)), 1);
}

#[test]
fn status_remote_retries_and_reports_persistent_faults() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    rig.proxy.add(Rule::new(Fault::Status(503)).method("HEAD").once());
    let out = rig.mlv(&rig.src, &["status", "--remote", "--json"]).ok();
    assert_eq!(out.json()["in_sync"], true, "{out}");

    rig.proxy.clear();
    rig.proxy.add(Rule::new(Fault::Status(503)).method("HEAD"));
    let start = Instant::now();
    let out = rig.mlv(&rig.src, &["status", "--remote"]);
    one_line_failure(&out, 1, PREFIX);
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "took {:?}",
        start.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Persistent faults fail with one clear line.

#[test]
fn persistent_upload_faults_fail_with_one_line() {
    let Some(rig) = Rig::new() else { return };
    let hex = digest_of(&rig.src, "model.bin.mlv");
    for fault in [
        Fault::Status(503),
        Fault::Reset,
        Fault::Stall(Duration::from_secs(TIMEOUT + 1)),
    ] {
        rig.proxy.clear();
        rig.proxy.add(Rule::new(fault.clone()).method("PUT").path(&hex));
        let start = Instant::now();
        let out = rig.mlv(&rig.src, &["push", "model.bin"]);
        one_line_failure(&out, 1, &hex);
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{fault:?} took {:?}",
            start.elapsed()
        );
        assert_eq!(rig.remote_object(&hex), None, "{fault:?}");
    }
    rig.proxy.clear();
    rig.mlv(&rig.src, &["push"]).ok();
    assert_eq!(rig.remote_object(&hex).unwrap(), rig.src.read("model.bin"));
}

#[test]
fn persistent_download_faults_fail_and_install_nothing() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let hex = digest_of(&rig.src, "model.bin.mlv");
    let dst = rig.clone();
    for fault in [
        Fault::Status(503),
        Fault::Status(500),
        Fault::Reset,
        Fault::Truncate,
        Fault::Stall(Duration::from_secs(TIMEOUT + 1)),
    ] {
        rig.proxy.clear();
        rig.proxy.add(Rule::new(fault.clone()).method("GET").path(&hex));
        pull_fails(&rig, &dst, &fault, "model.bin", &hex);
    }
    rig.proxy.clear();
    rig.mlv(&dst, &["pull"]).ok();
    same_data(&rig.src, &dst);
}

/// A fetch killed while one object hangs keeps the objects it already verified (they are
/// installed every couple of seconds, not only in batches of thousands or at the end), and the
/// next fetch downloads only the missing one.
#[test]
fn a_killed_fetch_keeps_what_it_downloaded() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let hex = digest_of(&rig.src, "model.bin.mlv");
    let dst = rig.clone();
    // The hanging request must outlast the wait below without timing out.
    dst.mlv(&["remote", "modify", "origin", "timeout", "60"]).ok();
    rig.proxy.add(
        Rule::new(Fault::Stall(Duration::from_secs(30)))
            .method("GET")
            .path(&hex),
    );
    let p = closed_port();
    let mut child = dst
        .command(MLV, &["fetch"])
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_METADATA_ENDPOINT", &format!("http://127.0.0.1:{p}"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .spawn();
    // The manifest and the three files of data/ (model.bin hangs).
    let start = Instant::now();
    while dst.objects().len() < 4 && start.elapsed() < Duration::from_secs(8) {
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let kept = dst.objects();
    assert_eq!(kept.len(), 4, "{kept:?}");
    assert!(!kept.iter().any(|o| o.ends_with(&hex)), "{kept:?}");
    rig.proxy.clear();
    let out = rig.mlv(&dst, &["fetch", "--json"]).ok();
    assert_eq!(out.json()["downloaded"], 1, "{out}");
    rig.mlv(&dst, &["pull"]).ok();
    same_data(&rig.src, &dst);
}

// ---------------------------------------------------------------------------------------------
// A damaged body is never installed.

#[test]
fn corrupted_bodies_are_never_installed() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let hex = digest_of(&rig.src, "model.bin.mlv");
    let dst = rig.clone();
    for fault in [Fault::FlipByte, Fault::ShortBody] {
        rig.proxy.clear();
        rig.proxy.add(Rule::new(fault.clone()).method("GET").path(&hex));
        for cmd in ["fetch", "pull"] {
            let out = rig.mlv(&dst, &[cmd, "model.bin"]);
            one_line_failure(&out, 3, &hex);
            assert!(out.stderr.contains("corrupt"), "{fault:?}\n{out}");
            not_installed(&dst, &hex);
            assert!(!dst.exists("model.bin"), "{fault:?}: checked out\n{out}");
        }
        // status after the failure: the cache still lacks the object
        let st = rig.mlv(&dst, &["status", "--json"]).ok();
        assert!(st.stdout.contains("model.bin"), "{st}");
    }
    rig.proxy.clear();
    rig.mlv(&dst, &["pull"]).ok();
    same_data(&rig.src, &dst);
}

#[test]
fn a_body_corrupted_once_is_downloaded_again() {
    let Some(rig) = Rig::new() else { return };
    rig.mlv(&rig.src, &["push"]).ok();
    let hex = digest_of(&rig.src, "model.bin.mlv");
    for fault in [Fault::FlipByte, Fault::ShortBody] {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).once());
        let dst = rig.clone();
        let before = rig.proxy.count("GET", &hex);
        rig.mlv(&dst, &["pull"]).ok();
        same_data(&rig.src, &dst);
        assert_eq!(b3(&dst.read("model.bin")), hex);
        assert_eq!(
            rig.proxy.count("GET", &hex) - before,
            2,
            "{fault:?}: one damaged, one good"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A reply lost after the upload succeeded.

#[test]
fn a_dropped_upload_reply_converges() {
    let Some(rig) = Rig::new() else { return };
    let hex = digest_of(&rig.src, "model.bin.mlv");
    // Every reply lost: the object is stored, mlv cannot know, and says so.
    rig.proxy
        .add(Rule::new(Fault::DropReply).method("PUT").path(&hex));
    let out = rig.mlv(&rig.src, &["push", "model.bin"]);
    one_line_failure(&out, 1, &hex);
    assert_eq!(rig.remote_object(&hex).unwrap(), rig.src.read("model.bin"));
    // Rerun without the fault: recognised as present.
    rig.proxy.clear();
    let out = rig.mlv(&rig.src, &["push", "--json"]).ok();
    assert!(out.json()["already_present"].as_u64().unwrap() >= 1, "{out}");
    let st = rig.mlv(&rig.src, &["status", "--remote", "--json"]).ok();
    assert_eq!(st.json()["in_sync"], true, "{st}");

    // One reply lost: the retry finds the object there and the push succeeds.
    rig.src.write("late.bin", noise(20_000, 77));
    rig.src.mlv(&["add", "late.bin"]).ok();
    let late = digest_of(&rig.src, "late.bin.mlv");
    rig.proxy
        .add(Rule::new(Fault::DropReply).method("PUT").path(&late).once());
    rig.mlv(&rig.src, &["push", "late.bin"]).ok();
    assert_eq!(rig.remote_object(&late).unwrap(), rig.src.read("late.bin"));
}

// ---------------------------------------------------------------------------------------------
// Multipart uploads (objects of 16 MiB and more go up in 8 MiB parts).

/// Adds a 17 MiB file (three parts) and returns its digest.
fn add_big(rig: &Rig) -> String {
    rig.src.write("big.bin", noise(17 << 20, 5));
    rig.src.mlv(&["add", "big.bin"]).ok();
    digest_of(&rig.src, "big.bin.mlv")
}

#[test]
fn multipart_part_faults_are_retried_or_abort_the_upload() {
    let Some(rig) = Rig::new() else { return };
    let hex = add_big(&rig);
    // A part failing once: retried.
    rig.proxy.add(
        Rule::new(Fault::Status(503))
            .method("PUT")
            .path("partNumber=2")
            .once(),
    );
    rig.mlv(&rig.src, &["push", "big.bin"]).ok();
    assert_eq!(rig.proxy.fired(&Fault::Status(503)), 1);
    assert_eq!(rig.remote_object(&hex).unwrap(), rig.src.read("big.bin"));

    // A part failing every time: the upload is aborted and the object never appears.
    rig.src.write("big2.bin", noise(17 << 20, 6));
    rig.src.mlv(&["add", "big2.bin"]).ok();
    let hex2 = digest_of(&rig.src, "big2.bin.mlv");
    rig.proxy.clear();
    rig.proxy
        .add(Rule::new(Fault::Reset).method("PUT").path("partNumber=2"));
    let out = rig.mlv(&rig.src, &["push", "big2.bin"]);
    one_line_failure(&out, 1, &hex2);
    assert_eq!(rig.remote_object(&hex2), None);
    assert!(
        rig.proxy.count("DELETE", &hex2) >= 1,
        "the upload was not aborted"
    );
    rig.proxy.clear();
    rig.mlv(&rig.src, &["push", "big2.bin"]).ok();
    assert_eq!(rig.remote_object(&hex2).unwrap(), rig.src.read("big2.bin"));
}

#[test]
fn a_dropped_multipart_completion_reply_converges() {
    let Some(rig) = Rig::new() else { return };
    let hex = add_big(&rig);
    rig.proxy
        .add(Rule::new(Fault::DropReply).method("POST").path("uploadId").once());
    let first = rig.mlv(&rig.src, &["push", "big.bin"]);
    assert!(
        first.code == Some(0) || first.stderr_lines("error: ").len() == 1,
        "{first}"
    );
    assert_eq!(rig.proxy.fired(&Fault::DropReply), 1);
    assert_eq!(rig.remote_object(&hex).unwrap(), rig.src.read("big.bin"));
    let again = rig.mlv(&rig.src, &["push", "big.bin", "--json"]).ok();
    assert_eq!(again.json()["already_present"], 1, "{again}");
}

// ---------------------------------------------------------------------------------------------
// Ranged downloads (objects of 16 MiB and more come down as one GET for the first 8 MiB and
// ranged GETs for the rest, several at once).

/// Adds and commits the 17 MiB `big.bin` (a plain GET, then two ranges), pushes it, and returns
/// its digest.
fn pushed_big(rig: &Rig) -> String {
    let hex = add_big(rig);
    rig.src.git(&["add", "-A"]);
    rig.src.git(&["commit", "-qm", "big"]);
    rig.mlv(&rig.src, &["push", "big.bin"]).ok();
    hex
}

#[test]
fn damaged_ranges_are_never_installed() {
    let Some(rig) = Rig::new() else { return };
    let hex = pushed_big(&rig);
    let dst = rig.clone();
    for fault in [
        Fault::FlipByte,
        Fault::ShortBody,
        Fault::LongBody,
        Fault::OtherSize,
    ] {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).ranged());
        let out = rig.mlv(&dst, &["pull", "big.bin"]);
        one_line_failure(&out, 3, &hex);
        assert!(out.stderr.contains("corrupt"), "{fault:?}\n{out}");
        not_installed(&dst, &hex);
        assert!(!dst.exists("big.bin"), "{fault:?}: checked out\n{out}");
        // Downloaded twice before it is reported, each time with damaged ranges.
        assert!(rig.proxy.fired(&fault) >= 2, "{fault:?}: {:?}", rig.proxy.seen());
    }
    // Damage in the last range only (16 MiB to the end): the earlier ones arrived whole.
    for fault in [Fault::ShortBody, Fault::OtherSize] {
        rig.proxy.clear();
        rig.proxy.add(
            Rule::new(fault.clone())
                .method("GET")
                .path(&hex)
                .range(&format!("bytes={}-", 16 << 20)),
        );
        let before = rig.proxy.fired(&fault);
        let out = rig.mlv(&dst, &["pull", "big.bin"]);
        one_line_failure(&out, 3, &hex);
        not_installed(&dst, &hex);
        assert_eq!(rig.proxy.fired(&fault) - before, 2, "{fault:?}: tried twice");
    }
    rig.proxy.clear();
    rig.mlv(&dst, &["pull", "big.bin"]).ok();
    assert_eq!(b3(&dst.read("big.bin")), hex);
}

#[test]
fn a_range_damaged_once_is_downloaded_again() {
    let Some(rig) = Rig::new() else { return };
    let hex = pushed_big(&rig);
    for fault in [Fault::FlipByte, Fault::ShortBody, Fault::OtherSize] {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).ranged().once());
        let dst = rig.clone();
        let before = rig.proxy.count("GET", &hex);
        let out = rig.mlv(&dst, &["pull", "big.bin"]);
        assert_eq!(out.code, Some(0), "{fault:?}\n{out}");
        assert_eq!(b3(&dst.read("big.bin")), hex, "{fault:?}");
        assert_eq!(rig.proxy.fired(&fault), 1, "{fault:?}");
        let gets = rig.proxy.count("GET", &hex) - before;
        assert!(
            (4..=6).contains(&gets),
            "{fault:?}: {gets} GETs: a damaged try, then 3"
        );
    }
}

#[test]
fn transient_range_faults_are_retried() {
    let Some(rig) = Rig::new() else { return };
    let hex = pushed_big(&rig);
    for fault in [
        Fault::Status(503),
        Fault::Reset,
        Fault::Truncate,
        Fault::StallBody(Duration::from_secs(TIMEOUT + 2)),
    ] {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).ranged().once());
        let dst = pull_despite(&rig, &fault, &["pull", "big.bin"]);
        assert_eq!(b3(&dst.read("big.bin")), hex, "{fault:?}");
    }
}

#[test]
fn persistent_range_faults_fail_with_one_line() {
    let Some(rig) = Rig::new() else { return };
    let hex = pushed_big(&rig);
    let dst = rig.clone();
    for fault in [Fault::Status(503), Fault::Reset] {
        rig.proxy.clear();
        rig.proxy
            .add(Rule::new(fault.clone()).method("GET").path(&hex).ranged());
        let out = pull_fails(&rig, &dst, &fault, "big.bin", &hex);
        assert!(!out.stderr.contains(SECRET), "{out}");
    }
}

// ---------------------------------------------------------------------------------------------
// Batched presence checks.

/// `lineage verify` in a clone whose cache lacks a recorded 300-file directory asks the remote
/// in one batch: a HEAD and a GET for the manifest, then one listing per fan-out directory the
/// files fall in, never a HEAD per file.
#[test]
fn lineage_verify_asks_the_remote_in_one_batch() {
    let Some(rig) = Rig::new() else { return };
    let mut fanouts = std::collections::BTreeSet::new();
    for i in 0..300 {
        let body = format!("file {i}\n");
        fanouts.insert(b3(body.as_bytes())[..2].to_string());
        rig.src.write(&format!("big/f{i:03}.txt"), body);
    }
    rig.src.mlv(&["lineage", "record", "-o", "big"]).ok();
    rig.src.git(&["add", "-A"]);
    rig.src.git(&["commit", "-qm", "big"]);
    rig.mlv(&rig.src, &["push"]).ok();
    let dst = rig.clone();
    let before = rig.proxy.seen().len();
    let out = rig.mlv(&dst, &["--json", "lineage", "verify"]).ok();
    let v = out.json();
    assert_eq!(v["ok"], serde_json::json!(true), "{v}");
    assert_eq!(v["unavailable"], serde_json::json!([]), "{v}");
    let asked: Vec<_> = rig.proxy.seen().split_off(before);
    let heads = asked.iter().filter(|s| s.method == "HEAD").count();
    let lists = asked
        .iter()
        .filter(|s| s.method == "GET" && s.path.contains("list-type"))
        .count();
    eprintln!(
        "{} requests: {heads} HEAD, {lists} listings ({} fan-outs)",
        asked.len(),
        fanouts.len()
    );
    assert!(heads <= 2, "a HEAD per file?\n{asked:#?}");
    assert!(
        lists <= fanouts.len(),
        "{lists} listings for {} fan-outs",
        fanouts.len()
    );
    assert!(
        asked.len() <= fanouts.len() + 4,
        "{} requests\n{asked:#?}",
        asked.len()
    );
}
