//! S3 credentials from AWS shared files (`profile` option, `AWS_PROFILE`, `endpoint_url`,
//! `region`). The test sets process environment variables, so it runs in a process of its own
//! (`common::isolated`).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mlv::cache::Cache;
use mlv::progress::NoProgress;
use mlv::remote::aws_profile::ProfileProblem;
use mlv::remote::{Remote, RemoteError, RemoteSettings, RemoteSpec};

fn spec(url: &str, opts: &[(&str, &str)]) -> RemoteSpec {
    let options: BTreeMap<String, String> =
        opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    RemoteSpec::parse(url, options, Path::new("/")).unwrap()
}

fn settings() -> RemoteSettings {
    RemoteSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        retries: 1,
        retry_timeout: Duration::from_secs(3),
        new_format: 1,
        ..RemoteSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_profile_from_shared_files() {
    if !crate::common::isolated("remote_profile::s3_profile_from_shared_files", &[]) {
        return;
    }
    let Some(moto) = crate::support::Moto::start("profiles", false) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("credentials");
    let config = dir.path().join("config");
    std::fs::write(
        &creds,
        "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = profile-secret-123456\n",
    )
    .unwrap();
    std::fs::write(
        &config,
        format!(
            "[profile work]\nregion = eu-west-1\nendpoint_url = {}\n[profile corp]\nsso_session = corp\n",
            moto.proc.url()
        ),
    )
    .unwrap();
    // Safety: this process runs this test alone; nothing else reads the environment concurrently.
    std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &creds);
    std::env::set_var("AWS_CONFIG_FILE", &config);
    for v in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ] {
        std::env::remove_var(v);
    }

    // The profile supplies keys, region and endpoint (http: allowed because the endpoint says so).
    let remote = Remote::open(&spec("s3://profiles/p", &[("profile", "work")]), &settings()).unwrap();
    let cdir = tempfile::tempdir().unwrap();
    let cache = Cache::new(cdir.path().join("c"), cdir.path().join("t"));
    let d = cache.insert_bytes(b"from a profile").unwrap();
    let up = remote.upload(&cache, &[d], &NoProgress).await.unwrap();
    assert_eq!(up.uploaded, 1);

    // AWS_PROFILE picks it too.
    std::env::set_var("AWS_PROFILE", "work");
    let remote = Remote::open(&spec("s3://profiles/p", &[]), &settings()).unwrap();
    assert!(remote.missing(&[d]).await.unwrap().is_empty());
    std::env::remove_var("AWS_PROFILE");

    // SSO profiles are refused with a way out; unknown profiles name the files.
    let err = Remote::open(&spec("s3://profiles/p", &[("profile", "corp")]), &settings()).unwrap_err();
    assert!(
        matches!(
            &err,
            RemoteError::Profile {
                problem: ProfileProblem::Unsupported { .. },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.hint().unwrap().contains("export-credentials"));
    let err = Remote::open(&spec("s3://profiles/p", &[("profile", "nope")]), &settings()).unwrap_err();
    assert!(err.to_string().contains("credentials"), "{err}");
    assert!(!format!("{err:?}").contains("profile-secret-123456"));
}
