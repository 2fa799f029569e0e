//! The secrets canary: a recognisable secret is planted as an AWS secret key, an AWS session
//! token, an Azure account key, an Azure SAS token, a GCS service-account key, a password in an
//! endpoint URL, credentials and query strings in remote URLs, and in `.mlv/config.local.toml`;
//! every command that touches remotes runs against working, refusing, closed and damaged remotes,
//! with and without `--json` and `-v`. The canary must never appear in any stdout or stderr, in
//! any git-tracked file, or anywhere under `.mlv/` except `config.local.toml`.

use crate::common::maint::{digest_of, fast, local_remote, TestRemote, BUCKET, PREFIX, S3_KEY_ID};
use crate::common::{Env, Output};
use crate::support::{closed_port, Azurite, Moto, AZURITE_ACCOUNT};

/// The canary. Distinctive, and not valid base64 (so it reaches the code paths of a bad key).
const CANARY: &str = "MLV_CANARY_S3CR3T_c0ffee42";
/// The canary as valid base64, for the Azure account key (which must decode).
const CANARY_B64: &str = "TUxWX0NBTkFSWV9TM0NSM1RfYjY0X2MwZmZlZTQy";

/// Every run output and repository, checked at the end.
struct Watch {
    outputs: Vec<Output>,
}

impl Watch {
    fn new() -> Watch {
        Watch { outputs: Vec::new() }
    }

    fn run(&mut self, r: &TestRemote, env: &Env, extra: &[(&str, &str)], args: &[&str]) -> Option<i32> {
        let mut c = env.command(crate::common::MLV, args);
        for (k, v) in crate::common::maint::metadata_env().iter().chain(&r.env) {
            c = c.env(k, v);
        }
        for (k, v) in extra {
            c = c.env(k, v);
        }
        let out = c.run().no_panic();
        let code = out.code;
        self.outputs.push(out);
        code
    }

    /// Every command that touches the remote, in every output mode.
    fn all_commands(&mut self, r: &TestRemote, env: &Env, extra: &[(&str, &str)]) {
        let commands: &[&[&str]] = &[
            &["remote", "list"],
            &["push"],
            &["status", "-r"],
            &["fetch"],
            &["pull"],
            &["fsck", "--remote"],
            &["fsck", "--remote", "--read-data"],
            &["fsck", "--remote", "--repair"],
            &["gc", "--remote", "--grace", "0"],
        ];
        for cmd in commands {
            for mode in [&[][..], &["--json"], &["-v"], &["--json", "-v"]] {
                let mut args = cmd.to_vec();
                args.extend_from_slice(mode);
                self.run(r, env, extra, &args);
            }
        }
    }

    /// Asserts the canary is nowhere it must not be.
    #[track_caller]
    fn assert_clean(&self, envs: &[&Env]) {
        for out in &self.outputs {
            for canary in [CANARY, CANARY_B64] {
                assert!(
                    !out.stdout.contains(canary) && !out.stderr.contains(canary),
                    "the canary leaked\n{out}"
                );
            }
        }
        for env in envs {
            assert_files_clean(env);
        }
    }
}

/// No git-tracked file and no file under `.mlv/` (but `config.local.toml`) holds the canary.
#[track_caller]
fn assert_files_clean(env: &Env) {
    let mut files: Vec<std::path::PathBuf> = env.git(&["ls-files"]).lines().map(|l| env.path(l)).collect();
    files.extend(
        walkdir::WalkDir::new(env.path(".mlv"))
            .into_iter()
            .map(|e| e.unwrap())
            .filter(|e| e.file_type().is_file() && e.file_name() != "config.local.toml")
            .map(|e| e.path().to_path_buf()),
    );
    assert!(files.len() > 3, "{files:?}");
    for f in files {
        let Ok(bytes) = std::fs::read(&f) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for canary in [CANARY, CANARY_B64] {
            assert!(!text.contains(canary), "the canary is in {}", f.display());
        }
    }
}

/// A repository with data, `origin` = `r`, committed.
fn origin(r: &TestRemote) -> Env {
    let env = Env::new();
    env.write("data/a.txt", b"alpha\n");
    env.write("data/b.bin", vec![7u8; 70_000]);
    env.write("model.bin", b"weights");
    env.mlv(&["add", "data", "model.bin"]).ok();
    r.configure(&env, "origin");
    env.git(&["add", "-A"]);
    env.git(&["commit", "-qm", "data"]);
    env
}

fn s3_on(port: u16) -> TestRemote {
    let mut r = local_remote();
    r.url = format!("s3://{BUCKET}/{PREFIX}");
    r.dir = None;
    r.port = Some(port);
    r.options = vec![
        ("endpoint".into(), format!("http://127.0.0.1:{port}")),
        ("region".into(), "us-east-1".into()),
        ("allow_http".into(), "true".into()),
        ("access_key_id".into(), S3_KEY_ID.into()),
    ];
    r.options.extend(fast());
    r
}

fn put_local_secret(w: &mut Watch, r: &TestRemote, env: &Env, key: &str, value: &str) {
    let code = w.run(
        r,
        env,
        &[],
        &["remote", "modify", "origin", key, value, "--local"],
    );
    assert_eq!(code, Some(0), "{}", w.outputs.last().unwrap());
    let local = env.read_str(".mlv/config.local.toml");
    assert!(local.contains(value), "{local}");
}

/// Remote URLs with credentials or query strings, and secrets bound for the committed config,
/// are refused without echoing them.
fn refused_urls(w: &mut Watch, r: &TestRemote, env: &Env) {
    for url in [
        format!("s3://{BUCKET}/p?X-Amz-Signature={CANARY}"),
        format!("az://container/p?sv=2022&sig={CANARY}"),
        format!("https://user:{CANARY}@example.blob.core.windows.net/c"),
        format!("s3://AKID:{CANARY}@{BUCKET}/p"),
        format!("file:///tmp/x?token={CANARY}"),
    ] {
        for json in [false, true] {
            let mut args = vec!["remote", "add", "leak", url.as_str()];
            if json {
                args.push("--json");
            }
            assert_ne!(
                w.run(r, env, &[], &args),
                Some(0),
                "{}",
                w.outputs.last().unwrap()
            );
            args.push("--local");
            assert_ne!(
                w.run(r, env, &[], &args),
                Some(0),
                "{}",
                w.outputs.last().unwrap()
            );
            let modify = ["remote", "modify", "origin", "url", url.as_str()];
            assert_ne!(w.run(r, env, &[], &modify), Some(0));
        }
    }
    // A credential inside a value that is not itself a secret key: refused too.
    for endpoint in [
        format!("http://admin:{CANARY}@127.0.0.1:9000"),
        format!("https://s3.example.com/?X-Amz-Signature={CANARY}"),
    ] {
        let args = ["remote", "modify", "origin", "endpoint", endpoint.as_str()];
        assert_eq!(
            w.run(r, env, &[], &args),
            Some(1),
            "{}",
            w.outputs.last().unwrap()
        );
        assert!(w.outputs.last().unwrap().stderr.contains("--local"));
    }
    for key in ["secret_access_key", "session_token"] {
        let args = ["remote", "modify", "origin", key, CANARY];
        assert_eq!(
            w.run(r, env, &[], &args),
            Some(1),
            "{}",
            w.outputs.last().unwrap()
        );
    }
}

#[test]
fn the_canary_never_leaks_from_s3_remotes() {
    let Some(moto) = Moto::start(BUCKET, false) else {
        return;
    };
    let r = s3_on(moto.proc.port);
    let mut w = Watch::new();
    let env = origin(&r);
    refused_urls(&mut w, &r, &env);
    // Working remote: moto without auth accepts any secret.
    put_local_secret(&mut w, &r, &env, "secret_access_key", CANARY);
    put_local_secret(&mut w, &r, &env, "session_token", CANARY);
    w.all_commands(&r, &env, &[]);
    let pushed = w.outputs.iter().filter(|o| o.command.contains("\"push\""));
    assert!(pushed.clone().count() == 4 && pushed.clone().all(|o| o.code == Some(0)));
    let fsck_ok = w.outputs.iter().filter(|o| o.command.contains("\"--read-data\""));
    assert!(
        fsck_ok.clone().all(|o| o.code == Some(0)),
        "the working remote is clean"
    );
    let clone = Env::clone_of(&env);
    let from_env = [("AWS_SECRET_ACCESS_KEY", CANARY), ("AWS_SESSION_TOKEN", CANARY)];
    w.all_commands(&r, &clone, &from_env);
    // A damaged object on the remote: fetch fails (integrity), fsck reports, repair re-uploads.
    let hex = digest_of(&env, "model.bin.mlv");
    r.tamper(&hex, Some(b"garbage"));
    let fresh = Env::clone_of(&env);
    assert_eq!(w.run(&r, &fresh, &from_env, &["fetch", "-v"]), Some(3));
    assert_eq!(w.run(&r, &fresh, &from_env, &["pull", "--json"]), Some(3));
    w.all_commands(&r, &fresh, &from_env);
    r.tamper(&hex, Some(b"garbage"));
    w.all_commands(&r, &env, &[]);
    w.assert_clean(&[&env, &clone, &fresh]);
    drop(moto);
}

#[test]
fn the_canary_never_leaks_when_s3_refuses_the_credentials() {
    let Some(moto) = Moto::start(BUCKET, true) else {
        return;
    };
    let r = s3_on(moto.proc.port);
    let mut w = Watch::new();
    let env = origin(&r);
    put_local_secret(&mut w, &r, &env, "secret_access_key", CANARY);
    w.all_commands(&r, &env, &[]);
    assert!(
        w.outputs.iter().any(|o| o.stderr.contains("refused access")),
        "the remote refused the credentials"
    );
    let clone = Env::clone_of(&env);
    w.all_commands(&r, &clone, &[("AWS_SECRET_ACCESS_KEY", CANARY)]);
    w.assert_clean(&[&env, &clone]);
}

#[test]
fn the_canary_never_leaks_from_unreachable_or_misconfigured_remotes() {
    let mut w = Watch::new();
    // A closed port.
    let r = s3_on(closed_port());
    let env = origin(&r);
    put_local_secret(&mut w, &r, &env, "secret_access_key", CANARY);
    w.all_commands(&r, &env, &[("AWS_SESSION_TOKEN", CANARY)]);
    assert!(w.outputs.iter().any(|o| o.stderr.contains("unreachable")));
    // A password in the endpoint URL (object_store prints request URLs).
    let endpoint = format!("http://admin:{CANARY}@127.0.0.1:{}", closed_port());
    put_local_secret(&mut w, &r, &env, "endpoint", &endpoint);
    w.all_commands(&r, &env, &[]);
    // A malformed endpoint.
    let bad = format!("http://[{CANARY}");
    let code = w.run(
        &r,
        &env,
        &[],
        &["remote", "modify", "origin", "endpoint", &bad, "--local"],
    );
    assert_eq!(code, Some(1), "{}", w.outputs.last().unwrap());
    // ... and one from the environment (the option removed), which once made the client panic
    w.run(
        &r,
        &env,
        &[],
        &["remote", "modify", "origin", "endpoint", "--unset", "--local"],
    );
    w.run(
        &r,
        &env,
        &[],
        &["remote", "modify", "origin", "endpoint", "--unset"],
    );
    w.all_commands(&r, &env, &[("AWS_ENDPOINT", &bad)]);
    assert!(w
        .outputs
        .iter()
        .any(|o| o.stderr.contains("the endpoint is not a valid URL")));

    // GCS: a service-account key holding the canary, pointing at a closed port.
    let mut g = local_remote();
    g.url = format!("gs://{BUCKET}/{PREFIX}");
    g.dir = None;
    g.options = fast();
    g.options.push(("allow_http".into(), "true".into()));
    let genv = origin(&g);
    let key = format!(
        r#"{{"gcs_base_url": "http://127.0.0.1:{}", "disable_oauth": true, "client_email": "x@y", "private_key": "{CANARY}", "private_key_id": "{CANARY}"}}"#,
        closed_port()
    );
    put_local_secret(&mut w, &g, &genv, "service_account_key", &key);
    w.all_commands(&g, &genv, &[]);
    let bad_key = format!(r#"{{"private_key": "{CANARY}""#);
    put_local_secret(&mut w, &g, &genv, "service_account_key", &bad_key);
    w.all_commands(&g, &genv, &[]);
    w.assert_clean(&[&env, &genv]);
}

#[test]
fn the_canary_never_leaks_from_azure_remotes() {
    let Some(az) = Azurite::start("mlv-canary") else {
        return;
    };
    let mut r = local_remote();
    r.url = format!("az://mlv-canary/{PREFIX}");
    r.dir = None;
    r.options = vec![
        ("endpoint".into(), az.endpoint()),
        ("account".into(), AZURITE_ACCOUNT.into()),
        ("allow_http".into(), "true".into()),
    ];
    r.options.extend(fast());
    let mut w = Watch::new();
    let env = origin(&r);
    // A wrong (but well-formed) account key, then one that is not base64.
    put_local_secret(&mut w, &r, &env, "access_key", CANARY_B64);
    w.all_commands(&r, &env, &[]);
    assert!(w.outputs.iter().any(|o| o.stderr.contains("refused access")));
    put_local_secret(&mut w, &r, &env, "access_key", CANARY);
    w.all_commands(&r, &env, &[]);
    // A SAS token (wrong) in the local config and from the environment.
    w.run(
        &r,
        &env,
        &[],
        &["remote", "modify", "origin", "access_key", "--unset", "--local"],
    );
    put_local_secret(
        &mut w,
        &r,
        &env,
        "sas_token",
        &format!("sv=2022-11-02&sig={CANARY}"),
    );
    w.all_commands(&r, &env, &[]);
    let clone = Env::clone_of(&env);
    w.all_commands(&r, &clone, &[("AZURE_STORAGE_ACCOUNT_KEY", CANARY_B64)]);
    w.all_commands(
        &r,
        &clone,
        &[("AZURE_STORAGE_SAS_TOKEN", &format!("sig={CANARY}"))],
    );
    w.assert_clean(&[&env, &clone]);
}
