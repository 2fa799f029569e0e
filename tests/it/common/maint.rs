//! Shared by the fsck, gc and secrets tests: damaging cache and remote objects, and remotes
//! (a local directory, or S3 on moto) configured for the real binary.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::common::{b3, Env, Output, MLV};
use crate::support::{closed_port, Moto};

pub const BUCKET: &str = "mlv-maint";
pub const PREFIX: &str = "team";
pub const S3_KEY_ID: &str = "AKIDMLVMAINT";
pub const S3_SECRET: &str = "moto-maint-secret-77f1";

/// A remote as the tests configure it.
pub struct TestRemote {
    /// The URL given to `mlv remote add`.
    pub url: String,
    /// Committed options.
    pub options: Vec<(String, String)>,
    /// Environment for every mlv process.
    pub env: Vec<(String, String)>,
    /// Local remotes: the directory.
    pub dir: Option<PathBuf>,
    /// Emulator port.
    pub port: Option<u16>,
    _keep: Box<dyn std::any::Any>,
}

/// Short network settings so a dead server fails fast.
pub fn fast() -> Vec<(String, String)> {
    [
        ("timeout", "5"),
        ("connect_timeout", "2"),
        ("retries", "1"),
        ("retry_timeout", "3"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// A local-directory remote in a fresh temporary directory.
pub fn local_remote() -> TestRemote {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().canonicalize().unwrap().join("store");
    TestRemote {
        url: path.display().to_string(),
        options: Vec::new(),
        env: Vec::new(),
        dir: Some(path),
        port: None,
        _keep: Box::new(dir),
    }
}

/// S3 on a fresh moto server (`None`: moto is not installed and CI is not set).
pub fn s3_remote() -> Option<TestRemote> {
    let moto = Moto::start(BUCKET, false)?;
    let port = moto.proc.port;
    let mut options: Vec<(String, String)> = vec![
        ("endpoint".into(), format!("http://127.0.0.1:{port}")),
        ("region".into(), "us-east-1".into()),
        ("allow_http".into(), "true".into()),
    ];
    options.extend(fast());
    Some(TestRemote {
        url: format!("s3://{BUCKET}/{PREFIX}"),
        options,
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET.into()),
        ],
        dir: None,
        port: Some(port),
        _keep: Box::new(moto),
    })
}

/// Environment that keeps cloud SDKs away from real metadata services.
pub fn metadata_env() -> Vec<(String, String)> {
    let p = closed_port();
    vec![
        ("AWS_METADATA_ENDPOINT".into(), format!("http://127.0.0.1:{p}")),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        ("GCE_METADATA_HOST".into(), format!("127.0.0.1:{p}")),
        ("AZURE_MSI_ENDPOINT".into(), format!("http://127.0.0.1:{p}")),
    ]
}

impl TestRemote {
    /// `mlv ARGS` with the remote's environment.
    pub fn mlv(&self, env: &Env, args: &[&str]) -> Output {
        let mut c = env.command(MLV, args);
        for (k, v) in metadata_env().iter().chain(&self.env) {
            c = c.env(k, v);
        }
        c.run()
    }

    /// Adds the remote as `name` (the default), in format 1: these tests inspect and damage
    /// its objects by their format 1 keys.
    pub fn configure(&self, env: &Env, name: &str) {
        self.configure_format(env, name, "1");
    }

    /// Adds the remote as `name` (the default) with `--format FORMAT`.
    pub fn configure_format(&self, env: &Env, name: &str, format: &str) {
        self.mlv(
            env,
            &["remote", "add", name, &self.url, "--default", "--format", format],
        )
        .ok();
        for (k, v) in &self.options {
            self.mlv(env, &["remote", "modify", name, k, v]).ok();
        }
    }

    /// Replaces (or with `None` deletes) the remote's copy of object `hex`, as another client
    /// would.
    pub fn tamper(&self, hex: &str, bytes: Option<&[u8]>) {
        match &self.dir {
            Some(dir) => tamper_file(&dir.join(&hex[..2]).join(hex), bytes),
            None => self.s3(
                |store, key| async move {
                    use object_store::{ObjectStoreExt, PutPayload};
                    match bytes {
                        Some(b) => {
                            store.put(&key, PutPayload::from(b.to_vec())).await.unwrap();
                        }
                        None => store.delete(&key).await.unwrap(),
                    }
                },
                hex,
            ),
        }
    }

    /// The remote's copy of object `hex` (`None` if absent).
    pub fn read(&self, hex: &str) -> Option<Vec<u8>> {
        match &self.dir {
            Some(dir) => std::fs::read(dir.join(&hex[..2]).join(hex)).ok(),
            None => {
                let out = std::sync::Mutex::new(None);
                let out_ref = &out;
                self.s3(
                    |store, key| async move {
                        use object_store::ObjectStoreExt;
                        if let Ok(g) = store.get(&key).await {
                            *out_ref.lock().unwrap() = Some(g.bytes().await.unwrap().to_vec());
                        }
                    },
                    hex,
                );
                out.into_inner().unwrap()
            }
        }
    }

    /// The names of every object on the remote.
    pub fn objects(&self) -> Vec<String> {
        match &self.dir {
            Some(dir) => {
                let mut v: Vec<String> = walkdir::WalkDir::new(dir)
                    .into_iter()
                    .map(|e| e.unwrap())
                    .filter(|e| e.file_type().is_file())
                    .filter(|e| !e.path().to_string_lossy().contains(".mlv-tmp"))
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            None => {
                let out = std::sync::Mutex::new(Vec::new());
                let out_ref = &out;
                self.s3(
                    |store, _| async move {
                        use futures::TryStreamExt;
                        let prefix = object_store::path::Path::from(PREFIX);
                        let all: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
                        let mut names: Vec<String> = all
                            .iter()
                            .filter_map(|m| m.location.filename().map(str::to_string))
                            .collect();
                        names.sort();
                        *out_ref.lock().unwrap() = names;
                    },
                    "00",
                );
                out.into_inner().unwrap()
            }
        }
    }

    /// The keys of every object on the remote, relative to it (`ab/<hex>`, `packs/…`).
    pub fn keys(&self) -> Vec<String> {
        match &self.dir {
            Some(dir) => {
                let mut v: Vec<String> = walkdir::WalkDir::new(dir)
                    .into_iter()
                    .map(|e| e.unwrap())
                    .filter(|e| e.file_type().is_file())
                    .filter(|e| !e.path().to_string_lossy().contains(".mlv-tmp"))
                    .map(|e| e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned())
                    .collect();
                v.sort();
                v
            }
            None => {
                let out = std::sync::Mutex::new(Vec::new());
                let out_ref = &out;
                self.s3(
                    |store, _| async move {
                        use futures::TryStreamExt;
                        let prefix = object_store::path::Path::from(PREFIX);
                        let all: Vec<_> = store.list(Some(&prefix)).try_collect().await.unwrap();
                        let mut keys: Vec<String> = all
                            .iter()
                            .map(|m| {
                                m.location
                                    .as_ref()
                                    .trim_start_matches(&format!("{PREFIX}/"))
                                    .to_string()
                            })
                            .collect();
                        keys.sort();
                        *out_ref.lock().unwrap() = keys;
                    },
                    "00",
                );
                out.into_inner().unwrap()
            }
        }
    }

    fn s3<'a, F, Fut>(&self, f: F, hex: &str)
    where
        F: FnOnce(std::sync::Arc<dyn object_store::ObjectStore>, object_store::path::Path) -> Fut,
        Fut: std::future::Future<Output = ()> + 'a,
    {
        let endpoint = format!("http://127.0.0.1:{}", self.port.unwrap());
        let store = crate::support::s3_client(&endpoint, BUCKET, S3_KEY_ID, S3_SECRET);
        let key = object_store::path::Path::from(format!("{PREFIX}/{}/{hex}", &hex[..2]));
        crate::support::block_on(f(std::sync::Arc::new(store), key));
    }
}

/// Replaces (or deletes) a read-only object file.
pub fn tamper_file(p: &Path, bytes: Option<&[u8]>) {
    match bytes {
        Some(bytes) => {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        None => std::fs::remove_file(p).unwrap(),
    }
}

/// Flips one byte of a cache object in place (same size), after making it writable.
pub fn flip_byte(p: &Path) {
    let mut bytes = std::fs::read(p).unwrap();
    bytes[0] ^= 0xff;
    tamper_file(p, Some(&bytes));
}

/// Cuts a cache object to half its size.
pub fn truncate(p: &Path) {
    let bytes = std::fs::read(p).unwrap();
    tamper_file(p, Some(&bytes[..bytes.len() / 2]));
}

/// The cache path of object `hex`.
pub fn cache_object(env: &Env, hex: &str) -> PathBuf {
    env.path(&format!(".mlv/cache/{}/{hex}", &hex[..2]))
}

/// The digest a pointer file records.
pub fn digest_of(env: &Env, pointer: &str) -> String {
    env.pointer(pointer)["digest"].as_str().unwrap().to_string()
}

/// The digest of `bytes`, in hex.
pub fn hex(bytes: &[u8]) -> String {
    b3(bytes)
}
