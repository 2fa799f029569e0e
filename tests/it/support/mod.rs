//! Storage emulators for integration tests: each starts on 127.0.0.1 on a free port, is ready
//! when its constructor returns, and is killed when dropped.
//!
//! Missing emulator: with `CI` set the test panics (CI must run these tests); otherwise a loud
//! "skipping" line is printed and the constructor returns `None`.
//!
//! - `Moto` (S3): `MLV_TEST_MOTO`, else `moto_server` on PATH, else `.ci/venv/bin/moto_server`.
//! - `Azurite` (Azure Blob): `node` on PATH and `MLV_TEST_AZURITE_DIR` (default `.ci/node`)
//!   holding `node_modules/azurite`.
//! - `GcsFake` (GCS XML API): `python3` (or `MLV_TEST_PYTHON`) running `tests/it/support/gcs_fake.py`.
//!
//! Install the pinned emulators with `.ci/install-emulators.sh`.

#![allow(dead_code)]

pub mod fault_proxy;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The development account every Azurite accepts.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
/// Its well-known key (public, documented by Microsoft).
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const START_TIMEOUT: Duration = Duration::from_secs(60);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "0" && v != "false")
}

/// Reports a missing emulator: fails under CI, skips loudly otherwise.
fn unavailable<T>(what: &str, how: &str) -> Option<T> {
    if in_ci() {
        panic!(
            "{what} not found ({how}); CI must run the remote backend tests: run .ci/install-emulators.sh"
        );
    }
    eprintln!(
        "\n**********\n*** skipping: {what} not found ({how}); run .ci/install-emulators.sh\n**********\n"
    );
    None
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A running emulator process.
pub struct Process {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    name: &'static str,
    _dir: tempfile::TempDir,
}

impl Process {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `cmd`, reads its stdout and stderr until `find_port` recognises a line, and keeps
/// draining both so the child never blocks on a full pipe.
fn start(name: &'static str, mut cmd: Command, find_port: fn(&str) -> Option<u16>) -> Process {
    let dir = tempfile::tempdir().expect("temp dir");
    cmd.current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
    let (tx, rx) = mpsc::channel::<String>();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let deadline = Instant::now() + START_TIMEOUT;
    let mut seen = Vec::new();
    let port = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(p) = find_port(&line) {
                    break p;
                }
                seen.push(line);
            }
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "{name} did not report a port within {START_TIMEOUT:?}; output:\n{}",
                    seen.join("\n")
                );
            }
        }
    };
    let proc = Process {
        child,
        port,
        name,
        _dir: dir,
    };
    wait_listening(&proc);
    proc
}

fn wait_listening(p: &Process) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", p.port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{} is not listening on {}",
            p.name,
            p.port
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn port_after_url(line: &str) -> Option<u16> {
    let rest = &line[line.find("http://127.0.0.1:")? + "http://127.0.0.1:".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|p| *p != 0)
}

/// A minimal HTTP/1.1 request over a fresh connection; returns the status code and body.
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

// ---------------------------------------------------------------------------------------------

/// moto's S3 server.
pub struct Moto {
    pub proc: Process,
}

impl Moto {
    /// Starts moto with `bucket` created. With `enforce_auth`, every request after the bucket
    /// creation must be signed with keys moto's IAM knows (so any key is wrong).
    pub fn start(bucket: &str, enforce_auth: bool) -> Option<Moto> {
        let bin = match std::env::var_os("MLV_TEST_MOTO").filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => on_path("moto_server").or_else(|| {
                let p = repo_root().join(".ci/venv/bin/moto_server");
                p.is_file().then_some(p)
            }),
        };
        let Some(bin) = bin.filter(|b| b.is_file()) else {
            return unavailable("moto_server", "MLV_TEST_MOTO, PATH, .ci/venv/bin/moto_server");
        };
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", "0"]);
        if enforce_auth {
            cmd.env("INITIAL_NO_AUTH_ACTION_COUNT", "1");
        }
        let proc = start("moto_server", cmd, |l| {
            if l.contains("Running on") {
                port_after_url(l)
            } else {
                None
            }
        });
        let (status, text) = http_request(proc.port, "PUT", &format!("/{bucket}"), &[], b"");
        assert_eq!(status, 200, "moto bucket creation failed: {text}");
        Some(Moto { proc })
    }
}

/// Azurite's blob service.
pub struct Azurite {
    pub proc: Process,
}

impl Azurite {
    /// Starts Azurite (in memory, no telemetry) with `container` created.
    pub fn start(container: &str) -> Option<Azurite> {
        let Some(node) = on_path("node") else {
            return unavailable("node (for Azurite)", "PATH");
        };
        let dir = std::env::var_os("MLV_TEST_AZURITE_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| repo_root().join(".ci/node"));
        let main = dir.join("node_modules/azurite/dist/src/blob/main.js");
        if !main.is_file() {
            return unavailable("Azurite", &format!("{} (MLV_TEST_AZURITE_DIR)", main.display()));
        }
        let mut cmd = Command::new(&node);
        cmd.arg(&main).args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            "0",
            "--inMemoryPersistence",
            "--disableTelemetry",
            "--skipApiVersionCheck",
        ]);
        let proc = start("azurite", cmd, |l| {
            if l.contains("listens on") {
                port_after_url(l)
            } else {
                None
            }
        });
        let helper = repo_root().join("tests/it/support/azurite_container.js");
        let out = Command::new(&node)
            .arg(helper)
            .arg(proc.port.to_string())
            .arg(container)
            .output()
            .expect("run azurite_container.js");
        assert!(
            out.status.success(),
            "container creation failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(Azurite { proc })
    }

    /// The blob endpoint for object_store (`http://127.0.0.1:P/devstoreaccount1`).
    pub fn endpoint(&self) -> String {
        format!("{}/{AZURITE_ACCOUNT}", self.proc.url())
    }
}

/// The stdlib-Python fake of the GCS XML API.
pub struct GcsFake {
    pub proc: Process,
}

impl GcsFake {
    /// Starts the fake with `bucket`.
    pub fn start(bucket: &str) -> Option<GcsFake> {
        let python = match std::env::var_os("MLV_TEST_PYTHON").filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => on_path("python3"),
        };
        let Some(python) = python.filter(|p| p.is_file()) else {
            return unavailable("python3 (for the GCS fake)", "MLV_TEST_PYTHON, PATH");
        };
        let mut cmd = Command::new(python);
        cmd.arg(repo_root().join("tests/it/support/gcs_fake.py")).args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--bucket",
            bucket,
        ]);
        let proc = start("gcs_fake.py", cmd, |l| l.trim().parse().ok());
        Some(GcsFake { proc })
    }

    /// A service-account key that points object_store at the fake without OAuth.
    pub fn service_account_key(&self) -> String {
        format!(
            r#"{{"gcs_base_url": "{}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#,
            self.proc.url()
        )
    }
}

/// An object_store client of `bucket` on a local S3 emulator, as another client would use it
/// (to read, plant or damage objects behind mlv's back).
pub fn s3_client(endpoint: &str, bucket: &str, key_id: &str, secret: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(endpoint)
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_access_key_id(key_id)
        .with_secret_access_key(secret)
        .with_client_options(object_store::ClientOptions::new().with_allow_http(true))
        .build()
        .unwrap()
}

/// Runs `f` to completion on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Debian's `chromium` for the audit page's browser test: `MLV_TEST_CHROMIUM`, else `chromium`
/// on PATH. Missing: fails under CI, skips loudly otherwise (`.ci/install-browser.sh`).
pub fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MLV_TEST_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    if let Some(p) = on_path("chromium") {
        return Some(p);
    }
    if in_ci() {
        panic!("chromium not found (MLV_TEST_CHROMIUM or PATH); CI must run the browser test: run .ci/install-browser.sh");
    }
    eprintln!(
        "\n**********\n*** skipping: chromium not found (MLV_TEST_CHROMIUM or PATH); run .ci/install-browser.sh\n**********\n"
    );
    None
}

/// A tool from the pinned DVC venv (`.ci/install-dvc.sh`): `$var`, else `.ci/dvc-venv/bin/NAME`.
/// Missing: fails under CI, skips loudly otherwise.
fn dvc_venv_tool(name: &str, var: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(var) {
        return Some(PathBuf::from(p));
    }
    let p = repo_root().join(".ci/dvc-venv/bin").join(name);
    if p.is_file() {
        return Some(p);
    }
    if in_ci() {
        panic!("{name} not found ({var} or .ci/dvc-venv); CI must run these tests: run .ci/install-dvc.sh");
    }
    eprintln!(
        "\n**********\n*** skipping: {name} not found ({var} or .ci/dvc-venv); run .ci/install-dvc.sh\n**********\n"
    );
    None
}

/// GTO's `gto` CLI (1.10.1, brought by DVC 3.67.1 into `.ci/dvc-venv`): `MLV_TEST_GTO`, else
/// `.ci/dvc-venv/bin/gto`. Missing: fails under CI, skips loudly otherwise.
pub fn gto() -> Option<PathBuf> {
    dvc_venv_tool("gto", "MLV_TEST_GTO")
}

/// DVC's `dvc` CLI (3.67.1, pinned in `.ci/dvc-venv`): `MLV_TEST_DVC`, else
/// `.ci/dvc-venv/bin/dvc`. Missing: fails under CI, skips loudly otherwise.
pub fn dvc() -> Option<PathBuf> {
    dvc_venv_tool("dvc", "MLV_TEST_DVC")
}
