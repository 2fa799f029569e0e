//! `mlv._mlv`: the native half of the Python package. Thin: it resolves the repository, calls
//! the library (`mlv::ops::data`, `mlv::ops::lineage`) and adapts the results — a reader
//! object for `mlv.open`, plain values and JSON documents for the rest — and turns
//! `mlv::Error`s into Python exceptions with the command line's message and hint. The
//! pure-Python wrappers in `python/mlv/` give the public API.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use mlv::error::{Error, ErrorKind};
use mlv::ops::data::{repo_path, DataView, Found, Urls};
use mlv::reader::VerifiedReader;
use mlv::repo::Repo;
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

create_exception!(
    mlv,
    MlvError,
    PyException,
    "Any error mlv reports; its message is the command line's (with the hint)."
);
create_exception!(
    mlv,
    RefusedError,
    MlvError,
    "mlv refused what it was given (a path, an option, a pointer it cannot trust); nothing was changed."
);
create_exception!(
    mlv,
    IntegrityError,
    MlvError,
    "Damaged data: content that does not hash to its name, or is not the recorded size."
);
create_exception!(
    mlv,
    BusyError,
    MlvError,
    "Another mlv process kept the repository lock too long."
);
create_exception!(mlv, EnvironmentError, MlvError, "The surroundings are not as mlv needs them: no repository, a bad config, no credentials, an unreachable remote.");
create_exception!(mlv, FailureError, MlvError, "Anything else that failed.");

/// The exception for an mlv error: its class by kind, its message as the CLI prints it
/// (message, one `caused by:` line per cause, the hint), without the `error: ` prefix. Library
/// messages never hold secrets (remote URLs are redacted where errors are made).
fn to_py(e: Error) -> PyErr {
    use std::error::Error as _;
    let top = e.to_string();
    let mut text = top.clone();
    let mut causes: Vec<String> = Vec::new();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if t != top && causes.last() != Some(&t) {
            text.push_str(&format!("\n  caused by: {t}"));
            causes.push(t);
        }
        src = s.source();
    }
    let hint = e.hint();
    if let Some(h) = &hint {
        text.push_str(&format!("\nhint: {h}"));
    }
    let err = match e.kind() {
        ErrorKind::Refused => RefusedError::new_err(text),
        ErrorKind::Integrity => IntegrityError::new_err(text),
        ErrorKind::Busy => BusyError::new_err(text),
        ErrorKind::Environment => EnvironmentError::new_err(text),
        ErrorKind::Failure => FailureError::new_err(text),
    };
    Python::attach(|py| {
        let v = err.value(py);
        let _ = v.setattr("message", top);
        let _ = v.setattr("hint", hint);
    });
    err
}

/// One runtime for every remote request of this process.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("mlv-remote")
            .build()
            .expect("a tokio runtime")
    })
}

/// Which repository an API call reads.
enum Which {
    /// An mlv work tree on this machine (the current directory's, or a path to one).
    Local(PathBuf),
    /// Another repository, through the source seam (a URL, a bare repository, ...).
    Source(String),
}

fn cwd() -> Result<PathBuf, Error> {
    Ok(
        std::env::current_dir()
            .map_err(|e| mlv::fs::IoError::new("cannot resolve", PathBuf::from("."), e))?,
    )
}

/// The current directory's repository (`None`) or `repo`: a directory holding an mlv work
/// tree is the local repository; anything else (a URL, a bare repository, a path to a
/// repository seen as a source) goes through the source seam.
fn which(repo: Option<&str>) -> Result<Which, Error> {
    let cwd = cwd()?;
    Ok(match repo {
        None => Which::Local(cwd),
        Some(r) => {
            let p = Path::new(r);
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                cwd.join(p)
            };
            if p.join(mlv::repo::MLV_DIR).is_dir() && p.join(".git").exists() {
                Which::Local(p)
            } else {
                Which::Source(r.to_string())
            }
        }
    })
}

/// The data view of `repo` at `rev`.
fn view(repo: Option<&str>, rev: Option<&str>, remote: Option<&str>) -> Result<DataView, Error> {
    let handle = runtime().handle().clone();
    match which(repo)? {
        Which::Local(dir) => {
            let mut repo = Repo::open(&dir)?;
            // paths are relative to the repository's root, as in dvc.api
            repo.cwd = repo.root.clone();
            DataView::local(repo, rev, remote, handle)
        }
        Which::Source(url) => {
            let here = mlv::ops::registry::Here::new(&cwd()?)?;
            DataView::source(&url, &here.sources_root(), rev, handle)
        }
    }
}

enum Body {
    Verified(Box<VerifiedReader>),
    Git(Cursor<Vec<u8>>),
}

impl Body {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        match self {
            Body::Verified(r) => r.read_verified(buf),
            Body::Git(c) => Ok(c.read(buf).expect("reading memory")),
        }
    }
}

/// An open tracked file: bytes in order, verified at the end (see `mlv.open`).
#[pyclass(module = "mlv._mlv")]
struct Reader {
    body: Mutex<Option<Body>>,
    #[pyo3(get)]
    size: Option<u64>,
    #[pyo3(get)]
    digest: Option<String>,
    #[pyo3(get)]
    path: String,
    #[pyo3(get)]
    from_remote: bool,
}

/// Reads from `body` until `buf` is full or the end; returns how many bytes.
fn fill(body: &mut Body, buf: &mut [u8]) -> Result<usize, Error> {
    let mut got = 0;
    while got < buf.len() {
        let n = body.read(&mut buf[got..])?;
        if n == 0 {
            break;
        }
        got += n;
    }
    Ok(got)
}

#[pymethods]
impl Reader {
    /// Up to `n` bytes (all that is left when `n` is negative); `b""` at the (verified) end.
    /// The GIL is released while reading; the reader's lock is taken without the GIL, so two
    /// threads sharing one file cannot deadlock.
    #[pyo3(signature = (n=-1))]
    fn read<'py>(&self, py: Python<'py>, n: i64) -> PyResult<Bound<'py, PyBytes>> {
        let out = py.detach(|| -> Result<Option<Vec<u8>>, Error> {
            let mut guard = self
                .body
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(body) = guard.as_mut() else {
                return Ok(None);
            };
            if n < 0 {
                let mut out = Vec::new();
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = body.read(&mut buf)?;
                    if k == 0 {
                        return Ok(Some(out));
                    }
                    out.extend_from_slice(&buf[..k]);
                }
            }
            let mut buf = vec![0u8; usize::try_from(n).unwrap_or(usize::MAX)];
            let k = fill(body, &mut buf)?;
            buf.truncate(k);
            Ok(Some(buf))
        });
        match out.map_err(to_py)? {
            Some(bytes) => Ok(PyBytes::new(py, &bytes)),
            None => Err(pyo3::exceptions::PyValueError::new_err(
                "I/O operation on closed file",
            )),
        }
    }

    /// The whole content, read into one bytes object of the recorded size (`mlv.read`).
    fn read_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let Some(size) = self.size.and_then(|s| usize::try_from(s).ok()) else {
            return self.read(py, -1);
        };
        let mut guard = self
            .body
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(body) = guard.as_mut() else {
            return Err(pyo3::exceptions::PyValueError::new_err(
                "I/O operation on closed file",
            ));
        };
        let mut result: Result<(), Error> = Ok(());
        let bytes = PyBytes::new_with(py, size, |buf| {
            // the bytes object is not visible to other code yet: fill it without the GIL
            result = py.detach(|| match body {
                Body::Verified(r) => r.read_exact_verified(buf),
                Body::Git(_) => fill(body, buf).map(|_| ()),
            });
            Ok(())
        })?;
        result.map_err(to_py)?;
        Ok(bytes)
    }

    /// Releases the file or connection.
    fn close(&self) {
        *self
            .body
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.body
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_none()
    }
}

/// Opens `path` (relative to the repository's root) for reading.
#[pyfunction]
#[pyo3(signature = (path, repo=None, rev=None, remote=None))]
fn open(
    py: Python<'_>,
    path: &str,
    repo: Option<&str>,
    rev: Option<&str>,
    remote: Option<&str>,
) -> PyResult<Reader> {
    py.detach(|| -> Result<Reader, Error> {
        let view = view(repo, rev, remote)?;
        let rel = repo_path(path)?;
        match view.locate(&rel)? {
            Found::File { path, digest, size } => {
                let r = view.reader(&digest, size)?;
                Ok(Reader {
                    from_remote: r.from_a_remote(),
                    body: Mutex::new(Some(Body::Verified(Box::new(r)))),
                    size: Some(size),
                    digest: Some(digest.to_string()),
                    path: path.to_string(),
                })
            }
            Found::Git { path, size } => Ok(Reader {
                body: Mutex::new(Some(Body::Git(Cursor::new(view.git_bytes(&path)?)))),
                size: Some(size),
                digest: None,
                path: path.to_string(),
                from_remote: false,
            }),
            Found::Dir { path, .. } => Err(mlv::Refusal::IsADirectory {
                path: path.to_string(),
            }
            .into()),
        }
    })
    .map_err(to_py)
}

/// The remote URL of a tracked file's object (a str), or of each file of a tracked directory
/// (a dict: path below the directory -> URL).
#[pyfunction]
#[pyo3(signature = (path, repo=None, rev=None, remote=None))]
fn get_url(
    py: Python<'_>,
    path: &str,
    repo: Option<&str>,
    rev: Option<&str>,
    remote: Option<&str>,
) -> PyResult<Py<PyAny>> {
    let urls = py
        .detach(|| -> Result<Urls, Error> { view(repo, rev, remote)?.urls(&repo_path(path)?) })
        .map_err(to_py)?;
    Ok(match urls {
        Urls::File(u) => u.into_pyobject(py)?.into_any().unbind(),
        Urls::Dir(map) => {
            let d = PyDict::new(py);
            for (k, v) in map {
                d.set_item(k, v)?;
            }
            d.into_any().unbind()
        }
    })
}

/// The listing as a JSON document: the entries of `mlv ls --json` (for another repository,
/// `mlv ls URL` itself; for the local repository the same entries from its work tree or rev).
#[pyfunction]
#[pyo3(signature = (repo=None, path=None, rev=None, recursive=false))]
fn ls_json(
    py: Python<'_>,
    repo: Option<&str>,
    path: Option<&str>,
    rev: Option<&str>,
    recursive: bool,
) -> PyResult<String> {
    py.detach(|| -> Result<String, Error> {
        let dir = path
            .filter(|p| !p.is_empty() && *p != "." && *p != "/")
            .map(repo_path)
            .transpose()?;
        let entries = match which(repo)? {
            Which::Local(_) => view(repo, rev, None)?.ls(dir.as_ref(), recursive)?,
            Which::Source(url) => {
                let here = mlv::ops::registry::Here::new(&cwd()?)?;
                let opts = mlv::ops::registry::LsOptions {
                    path: dir,
                    rev: rev.map(str::to_string),
                    recursive,
                    ..Default::default()
                };
                mlv::ops::registry::ls(&here, &url, &opts, runtime().handle())?.entries
            }
        };
        Ok(serde_json::to_string(&entries).expect("a listing serializes"))
    })
    .map_err(to_py)
}

/// The lineage repository: the current directory's, or `repo`'s (a local path).
fn lineage_repo(repo: Option<&str>) -> Result<Repo, Error> {
    let cwd = std::env::current_dir()
        .map_err(|e| mlv::fs::IoError::new("cannot resolve", PathBuf::from("."), e))?;
    Ok(Repo::open(&repo.map_or(cwd.clone(), |r| cwd.join(r)))?)
}

/// `mlv lineage show --json` as a JSON document.
#[pyfunction]
#[pyo3(signature = (target, repo=None, rev=None))]
fn lineage_show_json(
    py: Python<'_>,
    target: &str,
    repo: Option<&str>,
    rev: Option<&str>,
) -> PyResult<String> {
    py.detach(|| -> Result<String, Error> {
        let repo = lineage_repo(repo)?;
        let lineage = mlv::lineage::Lineage::load(&repo.root)?;
        let report = mlv::ops::lineage::show(&repo, &lineage, target, rev)?;
        Ok(with_problems(&report, &lineage))
    })
    .map_err(to_py)
}

/// `mlv lineage uses --json` as a JSON document.
#[pyfunction]
#[pyo3(signature = (target, repo=None, rev=None))]
fn lineage_uses_json(
    py: Python<'_>,
    target: &str,
    repo: Option<&str>,
    rev: Option<&str>,
) -> PyResult<String> {
    py.detach(|| -> Result<String, Error> {
        let repo = lineage_repo(repo)?;
        let lineage = mlv::lineage::Lineage::load(&repo.root)?;
        let report = mlv::ops::lineage::uses(&repo, &lineage, target, rev)?;
        Ok(with_problems(&report, &lineage))
    })
    .map_err(to_py)
}

/// The report with the lineage file's unreadable lines, as the CLI's `--json` prints it.
fn with_problems<T: serde::Serialize>(report: &T, lineage: &mlv::lineage::Lineage) -> String {
    let mut doc = serde_json::to_value(report).expect("a report serializes");
    if let serde_json::Value::Object(m) = &mut doc {
        m.insert(
            "problems".into(),
            serde_json::to_value(&lineage.problems).expect("problems serialize"),
        );
    }
    doc.to_string()
}

#[pymodule]
fn _mlv(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("MlvError", py.get_type::<MlvError>())?;
    m.add("RefusedError", py.get_type::<RefusedError>())?;
    m.add("IntegrityError", py.get_type::<IntegrityError>())?;
    m.add("BusyError", py.get_type::<BusyError>())?;
    m.add("EnvironmentError", py.get_type::<EnvironmentError>())?;
    m.add("FailureError", py.get_type::<FailureError>())?;
    m.add_class::<Reader>()?;
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(get_url, m)?)?;
    m.add_function(wrap_pyfunction!(ls_json, m)?)?;
    m.add_function(wrap_pyfunction!(lineage_show_json, m)?)?;
    m.add_function(wrap_pyfunction!(lineage_uses_json, m)?)?;
    Ok(())
}
