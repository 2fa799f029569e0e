//! A fault-injecting HTTP/1.1 proxy for tests: it sits between mlv and an emulator on
//! 127.0.0.1 and, for the requests a test selects, answers with an error status, resets the
//! connection, truncates or corrupts the response body, stalls, or forwards the request and
//! drops the reply.
//!
//! One thread per client connection; client connections are kept alive (Content-Length and
//! chunked request bodies are read whole), and each request goes upstream on a fresh
//! connection with `Connection: close`, so the upstream response is always complete before a
//! fault is applied. Response bodies reach the client with a Content-Length (chunked upstream
//! bodies are decoded first).
//!
//! Rules are matched in order; the first rule whose method and path (and, with `.ranged()` or
//! `.range(..)`, Range header) match and whose turn has come fires. A rule counts the requests it matches:
//! `.nth(3)` fires from the 3rd on, `.times(1)` fires once (the default is every time).

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (503, 500, 429, ...) without forwarding.
    Status(u16),
    /// Reset the connection (TCP RST) without forwarding.
    Reset,
    /// Forward; send the headers with the full Content-Length, half the body, then close.
    Truncate,
    /// Forward; send half the body with a Content-Length that matches it (a short but
    /// well-formed response).
    ShortBody,
    /// Forward; send the body with bytes appended and a Content-Length that matches (a long
    /// but well-formed response).
    LongBody,
    /// Forward; flip one bit in the middle of the response body.
    FlipByte,
    /// Forward; report an object size one byte larger in the Content-Range header of a
    /// partial response (as if the object changed between two ranged requests).
    OtherSize,
    /// Do not answer for this long, then close without a response.
    Stall(Duration),
    /// Forward; send the headers and half the body, stall this long, then close.
    StallBody(Duration),
    /// Forward (the upstream acts on the request), then reset instead of replying.
    DropReply,
}

/// When a fault applies.
#[derive(Debug, Clone)]
pub struct Rule {
    method: Option<String>,
    path: Option<String>,
    range: Option<String>,
    from: usize,
    times: usize,
    fault: Fault,
    seen: usize,
    fired: usize,
}

impl Rule {
    /// Every request gets `fault` (narrow it with the builder methods).
    pub fn new(fault: Fault) -> Rule {
        Rule {
            method: None,
            path: None,
            range: None,
            from: 1,
            times: usize::MAX,
            fault,
            seen: 0,
            fired: 0,
        }
    }

    /// Only requests with this method (`GET`, `PUT`, `HEAD`, ...).
    pub fn method(mut self, m: &str) -> Rule {
        self.method = Some(m.to_string());
        self
    }

    /// Only requests whose path (with query) contains `s`, e.g. an object's digest.
    pub fn path(mut self, s: &str) -> Rule {
        self.path = Some(s.to_string());
        self
    }

    /// Only requests with a Range header (ranged GETs).
    pub fn ranged(self) -> Rule {
        self.range("")
    }

    /// Only requests whose Range header contains `s`, e.g. `bytes=16777216-`.
    pub fn range(mut self, s: &str) -> Rule {
        self.range = Some(s.to_string());
        self
    }

    /// Fire from the `n`th matching request on (1-based).
    pub fn nth(mut self, n: usize) -> Rule {
        self.from = n.max(1);
        self
    }

    /// Fire at most `n` times.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }

    /// Fire once.
    pub fn once(self) -> Rule {
        self.times(1)
    }

    fn matches(&self, method: &str, path: &str, range: Option<&str>) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.path.as_deref().is_none_or(|p| path.contains(p))
            && self
                .range
                .as_deref()
                .is_none_or(|want| range.is_some_and(|r| r.contains(want)))
    }
}

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path with query.
    pub path: String,
    /// The Range header, if any.
    pub range: Option<String>,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    log: Vec<Seen>,
}

impl State {
    /// Counts the request against every matching rule; returns the fault of the first that fires.
    fn decide(&mut self, method: &str, path: &str, range: Option<&str>) -> Option<Fault> {
        let mut chosen = None;
        for r in self.rules.iter_mut().filter(|r| r.matches(method, path, range)) {
            r.seen += 1;
            if chosen.is_none() && r.seen >= r.from && r.fired < r.times {
                r.fired += 1;
                chosen = Some(r.fault.clone());
            }
        }
        self.log.push(Seen {
            method: method.to_string(),
            path: path.to_string(),
            range: range.map(str::to_string),
            fault: chosen.clone(),
        });
        chosen
    }
}

/// The running proxy; stops accepting when dropped.
pub struct FaultProxy {
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    /// Starts a proxy in front of `127.0.0.1:upstream`.
    pub fn start(upstream: u16) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                std::thread::spawn(move || {
                    let _ = serve(conn, upstream, &st);
                });
            }
        });
        FaultProxy { port, state, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Adds a rule (after those already there).
    pub fn add(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Removes every rule: requests pass untouched.
    pub fn clear(&self) {
        self.lock().rules.clear();
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.lock().log.clone()
    }

    /// How many requests got `fault`.
    pub fn fired(&self, fault: &Fault) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|s| s.fault.as_ref() == Some(fault))
            .count()
    }

    /// How many requests with a Range header matched `method` and contained `path`.
    pub fn count_ranged(&self, method: &str, path: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|s| s.method == method && s.path.contains(path) && s.range.is_some())
            .count()
    }

    /// How many requests matched `method` and contained `path`.
    pub fn count(&self, method: &str, path: &str) -> usize {
        self.lock()
            .log
            .iter()
            .filter(|s| s.method == method && s.path.contains(path))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

/// A parsed message head: the first line and the headers.
pub struct Head {
    /// The request or status line.
    pub line: String,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }

    fn is_chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> Option<usize> {
        self.get("content-length").and_then(|v| v.parse().ok())
    }

    /// The head as text, without the headers named in `drop`, plus `extra`.
    fn render(&self, drop: &[&str], extra: &[(&str, String)]) -> Vec<u8> {
        let mut s = format!("{}\r\n", self.line);
        for (k, v) in &self.headers {
            if !drop.iter().any(|d| k.eq_ignore_ascii_case(d)) {
                s.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        for (k, v) in extra {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// Reads a message head; `None` at a clean end of stream.
pub fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let first = line.trim_end().to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "eof in headers"));
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some(Head { line: first, headers }))
}

/// Reads a chunked body, decoded (trailers are skipped).
fn read_chunked(r: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("bad chunk size {line:?}")))?;
        if size == 0 {
            loop {
                line.clear();
                if r.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        line.clear();
        r.read_line(&mut line)?; // CRLF after the chunk
    }
}

/// Reads the body a head announces; without framing, none (or, with `until_eof`, all that
/// comes before the connection closes).
pub fn read_body(r: &mut impl BufRead, head: &Head, until_eof: bool) -> io::Result<Vec<u8>> {
    if head.is_chunked() {
        return read_chunked(r);
    }
    if let Some(n) = head.content_length() {
        let mut body = vec![0; n];
        r.read_exact(&mut body)?;
        return Ok(body);
    }
    let mut body = Vec::new();
    if until_eof {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

/// Serves one client connection until it closes or a fault ends it.
fn serve(client: TcpStream, upstream: u16, state: &Mutex<State>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut out = client;
    while let Some(head) = read_head(&mut reader)? {
        if head
            .get("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
        {
            out.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")?;
        }
        let body = read_body(&mut reader, &head, false)?;
        let mut parts = head.line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("").to_string();
        let client_closes = head
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let fault = state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .decide(&method, &path, head.get("range"));
        let keep = match fault {
            Some(Fault::Status(code)) => {
                send_status(&mut out, code, method == "HEAD")?;
                true
            }
            Some(Fault::Reset) => {
                set_reset(&out);
                false
            }
            Some(Fault::Stall(d)) => {
                std::thread::sleep(d);
                false
            }
            other => {
                let (resp, resp_body) = forward(upstream, &head, &body, &method)?;
                deliver(&mut out, &resp, resp_body, &method, other)?
            }
        };
        if !keep || client_closes {
            break;
        }
    }
    // With SO_LINGER 0 set, closing (dropping both handles) sends a RST instead of a FIN.
    if !resets(&out) {
        let _ = out.shutdown(Shutdown::Both);
    }
    Ok(())
}

/// Sends the request upstream on a fresh connection and reads the whole response.
fn forward(upstream: u16, head: &Head, body: &[u8], method: &str) -> io::Result<(Head, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let drop = [
        "connection",
        "content-length",
        "transfer-encoding",
        "expect",
        "keep-alive",
    ];
    let mut extra = vec![("Connection", "close".to_string())];
    if !body.is_empty() || head.content_length().is_some() || head.is_chunked() {
        extra.push(("Content-Length", body.len().to_string()));
    }
    up.write_all(&head.render(&drop, &extra))?;
    up.write_all(body)?;
    let mut r = BufReader::new(up);
    let mut resp =
        read_head(&mut r)?.ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))?;
    // Interim 1xx responses are skipped.
    while status_of(&resp) / 100 == 1 {
        resp = read_head(&mut r)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed"))?;
    }
    let status = status_of(&resp);
    let body = if method == "HEAD" || status == 204 || status == 304 {
        Vec::new()
    } else {
        read_body(&mut r, &resp, true)?
    };
    Ok((resp, body))
}

fn status_of(head: &Head) -> u16 {
    head.line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Sends the upstream response to the client, damaged as `fault` says. Returns whether the
/// connection stays open.
fn deliver(
    out: &mut TcpStream,
    resp: &Head,
    mut body: Vec<u8>,
    method: &str,
    fault: Option<Fault>,
) -> io::Result<bool> {
    let framing = ["connection", "content-length", "transfer-encoding", "keep-alive"];
    if method == "HEAD" {
        // A HEAD answer keeps the object's Content-Length and has no body.
        if fault == Some(Fault::DropReply) {
            set_reset(out);
            return Ok(false);
        }
        out.write_all(&resp.render(&["connection", "transfer-encoding", "keep-alive"], &[]))?;
        return Ok(true);
    }
    let full = body.len();
    let half = full / 2;
    match fault {
        Some(Fault::DropReply) => {
            set_reset(out);
            Ok(false)
        }
        Some(Fault::Truncate) => {
            out.write_all(&resp.render(&framing, &[("Content-Length", full.to_string())]))?;
            out.write_all(&body[..half])?;
            out.flush()?;
            Ok(false)
        }
        Some(Fault::StallBody(d)) => {
            out.write_all(&resp.render(&framing, &[("Content-Length", full.to_string())]))?;
            out.write_all(&body[..half])?;
            out.flush()?;
            std::thread::sleep(d);
            Ok(false)
        }
        Some(Fault::ShortBody) => {
            out.write_all(&resp.render(&framing, &[("Content-Length", half.to_string())]))?;
            out.write_all(&body[..half])?;
            Ok(true)
        }
        Some(Fault::LongBody) => {
            body.extend_from_slice(b"and some more bytes");
            out.write_all(&resp.render(&framing, &[("Content-Length", body.len().to_string())]))?;
            out.write_all(&body)?;
            Ok(true)
        }
        Some(Fault::OtherSize) => {
            let mut resized = Head {
                line: resp.line.clone(),
                headers: resp.headers.clone(),
            };
            for (k, v) in &mut resized.headers {
                if k.eq_ignore_ascii_case("content-range") {
                    if let Some((range, total)) = v.rsplit_once('/') {
                        let total: u64 = total.trim().parse().unwrap_or(0);
                        *v = format!("{range}/{}", total + 1);
                    }
                }
            }
            out.write_all(&resized.render(&framing, &[("Content-Length", full.to_string())]))?;
            out.write_all(&body)?;
            Ok(true)
        }
        other => {
            if other == Some(Fault::FlipByte) && !body.is_empty() {
                body[half] ^= 0x01;
            }
            out.write_all(&resp.render(&framing, &[("Content-Length", full.to_string())]))?;
            out.write_all(&body)?;
            Ok(true)
        }
    }
}

/// An error answer in S3's XML shape.
fn send_status(out: &mut TcpStream, code: u16, head_only: bool) -> io::Result<()> {
    let (reason, name) = match code {
        429 => ("Too Many Requests", "SlowDown"),
        500 => ("Internal Server Error", "InternalError"),
        503 => ("Service Unavailable", "ServiceUnavailable"),
        _ => ("Injected Fault", "InjectedFault"),
    };
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{name}</Code><Message>injected by the test proxy</Message></Error>"
    );
    let len = if head_only { 0 } else { body.len() };
    let head =
        format!("HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\nContent-Length: {len}\r\n\r\n");
    out.write_all(head.as_bytes())?;
    if !head_only {
        out.write_all(body.as_bytes())?;
    }
    Ok(())
}

/// Makes closing the socket send a TCP RST (SO_LINGER 0).
fn set_reset(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket descriptor and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// Whether `set_reset` was applied.
fn resets(s: &TcpStream) -> bool {
    let mut linger = libc::linger {
        l_onoff: 0,
        l_linger: 0,
    };
    let mut len = std::mem::size_of::<libc::linger>() as libc::socklen_t;
    // SAFETY: a valid socket descriptor and a correctly sized out-parameter.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&mut linger as *mut libc::linger).cast(),
            &mut len,
        )
    };
    r == 0 && linger.l_onoff == 1
}
