//! Memory stays bounded while a large object goes up in parts and comes back: the upload
//! never buffers the whole file. The test runs in a process of its own (`common::isolated`), so the
//! peak RSS is this test's.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use mlv::cache::Cache;
use mlv::progress::NoProgress;
use mlv::remote::{Remote, RemoteSettings, RemoteSpec};

const MIB: usize = 1 << 20;

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_object_round_trip_in_bounded_memory() {
    if !crate::common::isolated("remote_memory::large_object_round_trip_in_bounded_memory", &[]) {
        return;
    }
    let Some(gcs) = crate::support::GcsFake::start("mem") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("c"), dir.path().join("t"));
    // 160 MiB written in 1 MiB blocks (never held whole in memory).
    let src = dir.path().join("big");
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let mut block = vec![0u8; MIB];
        for i in 0..160u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u32).wrapping_mul(2654435761).wrapping_add(i).to_le_bytes()[1];
            }
            f.write_all(&block).unwrap();
        }
    }
    let (digest, size, _) = cache.insert_file(&src).unwrap();
    std::fs::remove_file(&src).unwrap();
    assert_eq!(size, 160 * MIB as u64);

    let key = gcs.service_account_key();
    let options: BTreeMap<String, String> = [("service_account_key", key.as_str()), ("allow_http", "true")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let spec = RemoteSpec::parse("gs://mem/p", options, Path::new("/")).unwrap();
    let settings = RemoteSettings {
        timeout: Duration::from_secs(30),
        retries: 1,
        new_format: 1,
        ..RemoteSettings::default()
    };
    let remote = Remote::open(&spec, &settings).unwrap();
    let up = remote.upload(&cache, &[digest], &NoProgress).await.unwrap();
    assert_eq!((up.uploaded, up.multipart), (1, 1));

    let fresh = Cache::new(dir.path().join("c2"), dir.path().join("t2"));
    let down = remote.download(&fresh, &[digest], &NoProgress).await.unwrap();
    assert_eq!(down.downloaded_bytes, 160 * MIB as u64);
    assert_eq!(fresh.verify(&digest).unwrap(), 160 * MIB as u64);

    if let Some(peak) = peak_rss_mib() {
        eprintln!("peak RSS: {peak} MiB for a 160 MiB object");
        assert!(peak < 100, "peak RSS {peak} MiB");
    }
}
