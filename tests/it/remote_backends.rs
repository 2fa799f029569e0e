//! The remote library against every backend: a local directory, S3 (moto), Azure (Azurite)
//! and GCS (the XML-API fake in tests/it/support/gcs_fake.py). Each backend runs the same
//! scenarios, each under its own key prefix. Emulators come from `.ci/install-emulators.sh`;
//! without them these tests skip loudly, or fail when `CI` is set.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{Azurite, GcsFake, Moto, AZURITE_ACCOUNT, AZURITE_KEY};
use mlv::cache::{Cache, CacheError};
use mlv::hash::Digest;
use mlv::progress::NoProgress;
use mlv::remote::{Remote, RemoteError, RemoteSettings, RemoteSpec};
use object_store::{ObjectStoreExt, PutPayload};

const MIB: usize = 1 << 20;
const BUCKET: &str = "mlv-test";
const S3_SECRET: &str = "moto-secret-key-9f8e7d6c";

/// Short timeouts and small parts: a 12 MiB object goes up as three 5 MiB parts.
fn settings() -> RemoteSettings {
    RemoteSettings {
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
        retries: 1,
        retry_timeout: Duration::from_secs(3),
        jobs: Some(4),
        multipart_threshold: 8 * MIB as u64,
        part_size: 5 * MIB as u64,
        memory_budget: 32 * MIB as u64,
        new_format: 1,
    }
}

fn spec(url: &str, opts: &[(&str, &str)]) -> RemoteSpec {
    let options: BTreeMap<String, String> =
        opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    RemoteSpec::parse(url, options, Path::new("/")).expect("valid spec")
}

fn open(url: &str, opts: &[(&str, &str)]) -> Remote {
    Remote::open(&spec(url, opts), &settings()).expect("remote opens")
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

struct Fixture {
    _dir: tempfile::TempDir,
    cache: Cache,
    objects: Vec<(Digest, Vec<u8>)>,
}

impl Fixture {
    /// A cache holding: a small object, an empty one, 100 KiB, and 12 MiB (multipart).
    fn new(seed: u64) -> Fixture {
        let (dir, cache) = empty_cache();
        let blobs = vec![
            format!("hello {seed}").into_bytes(),
            Vec::new(),
            noise(100 * 1024, seed),
            noise(12 * MIB, seed + 1),
        ];
        let objects = blobs
            .into_iter()
            .map(|b| (cache.insert_bytes(&b).unwrap(), b))
            .collect();
        Fixture {
            _dir: dir,
            cache,
            objects,
        }
    }

    fn digests(&self) -> Vec<Digest> {
        self.objects.iter().map(|(d, _)| *d).collect()
    }

    fn small(&self) -> Digest {
        self.objects[0].0
    }

    fn big(&self) -> Digest {
        self.objects[3].0
    }
}

fn empty_cache() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::new(dir.path().join("cache"), dir.path().join("tmp"));
    (dir, cache)
}

fn tmp_is_empty(cache_dir: &tempfile::TempDir) -> bool {
    std::fs::read_dir(cache_dir.path().join("tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Overwrites a cache object in place (objects are read-only).
fn corrupt_cache_object(cache: &Cache, d: &Digest, bytes: &[u8]) {
    use std::os::unix::fs::PermissionsExt;
    let p = cache.object_path(d);
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&p, bytes).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Scenarios, each given a way to open the backend under a fresh prefix.

async fn roundtrip(make: &dyn Fn(&str) -> Remote) {
    let remote = make("roundtrip");
    let f = Fixture::new(1);
    let all = f.digests();
    assert_eq!(
        remote.missing(&all).await.unwrap(),
        all,
        "a fresh remote lacks everything"
    );

    let up = remote.upload(&f.cache, &all, &NoProgress).await.unwrap();
    let total: u64 = f.objects.iter().map(|(_, b)| b.len() as u64).sum();
    assert_eq!(
        (up.uploaded, up.uploaded_bytes, up.already_present),
        (4, total, 0),
        "{up:?}"
    );
    if remote.scheme() != mlv::remote::Scheme::Local {
        assert_eq!(up.multipart, 1, "the 12 MiB object goes up in parts: {up:?}");
    }
    assert!(remote.missing(&all).await.unwrap().is_empty());

    let again = remote.upload(&f.cache, &all, &NoProgress).await.unwrap();
    assert_eq!(
        (again.uploaded, again.already_present),
        (0, 4),
        "second upload sends nothing: {again:?}"
    );

    // Layout: PREFIX/<fan-out>/<digest>, raw bytes, readable with any client.
    let key = remote.object_key(&f.small());
    let hex = f.small().to_string();
    let expected_tail = if remote.scheme() == mlv::remote::Scheme::Local {
        format!("{}/{hex}", &hex[..2]) // the directory is the root
    } else {
        format!("roundtrip/{}/{hex}", &hex[..2])
    };
    assert!(key.as_ref().ends_with(&expected_tail), "{key}");
    let raw = remote
        .object_store()
        .get(&key)
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&raw[..], &f.objects[0].1[..]);

    let (dir, fresh) = empty_cache();
    let down = remote.download(&fresh, &all, &NoProgress).await.unwrap();
    assert_eq!((down.downloaded, down.downloaded_bytes), (4, total), "{down:?}");
    for (d, bytes) in &f.objects {
        assert_eq!(&fresh.read_verified(d).unwrap(), bytes);
    }
    assert!(tmp_is_empty(&dir));
    let down2 = remote.download(&fresh, &all, &NoProgress).await.unwrap();
    assert_eq!((down2.downloaded, down2.already_present), (0, 4));
}

async fn listing(make: &dyn Fn(&str) -> Remote) {
    // Enough objects that `missing` lists fan-out prefixes instead of sending HEADs.
    let remote = make("listing");
    let (_dir, cache) = empty_cache();
    let digests: Vec<Digest> = (0..(mlv::remote::HEAD_LIMIT as u64 + 6))
        .map(|i| cache.insert_bytes(format!("object {i}").as_bytes()).unwrap())
        .collect();
    assert_eq!(remote.missing(&digests).await.unwrap(), digests);
    remote.upload(&cache, &digests, &NoProgress).await.unwrap();
    let store = remote.object_store();
    let gone = [digests[3], digests[40], digests[69]];
    for d in &gone {
        store.delete(&remote.object_key(d)).await.unwrap();
    }
    // A stray key in a fan-out directory is not taken for an object.
    let stray = object_store::path::Path::from(format!(
        "{}/notes.txt",
        remote.object_key(&digests[0]).prefix_of()
    ));
    store.put(&stray, PutPayload::from_static(b"x")).await.unwrap();
    assert_eq!(remote.missing(&digests).await.unwrap(), gone.to_vec());
    // Duplicates are checked once, order kept.
    let mut dup = digests.clone();
    dup.extend_from_slice(&digests);
    assert_eq!(remote.missing(&dup).await.unwrap(), gone.to_vec());
}

/// The parent "directory" of a key, as text.
trait PrefixOf {
    fn prefix_of(&self) -> String;
}

impl PrefixOf for object_store::path::Path {
    fn prefix_of(&self) -> String {
        let s = self.to_string();
        s.rsplit_once('/').map(|(p, _)| p.to_string()).unwrap_or_default()
    }
}

async fn remote_corruption(make: &dyn Fn(&str) -> Remote) {
    let remote = make("corruption");
    let f = Fixture::new(2);
    remote.upload(&f.cache, &f.digests(), &NoProgress).await.unwrap();
    let store = remote.object_store();

    // Other bytes under the small object's key.
    store
        .put(
            &remote.object_key(&f.small()),
            PutPayload::from_static(b"tampered bytes"),
        )
        .await
        .unwrap();
    let (dir, fresh) = empty_cache();
    let err = remote
        .download(&fresh, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    match &err {
        RemoteError::Corrupt { digest, key, .. } => {
            assert_eq!(*digest, f.small());
            assert!(key.ends_with(&f.small().to_string()));
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let msg = err.to_string();
    eprintln!("corrupt remote object: {msg}");
    assert!(
        msg.contains(&f.small().to_string()) && msg.contains("corrupt"),
        "{msg}"
    );
    assert!(err.hint().is_some());
    assert!(
        !fresh.contains(&f.small()),
        "a corrupt object must not be installed"
    );
    assert!(tmp_is_empty(&dir), "the temporary file is removed");

    // The big object truncated to its first MiB.
    let big = &f.objects[3].1;
    store
        .put(
            &remote.object_key(&f.big()),
            PutPayload::from(big[..MIB].to_vec()),
        )
        .await
        .unwrap();
    let err = remote
        .download(&fresh, &[f.big()], &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RemoteError::Corrupt { digest, size, .. } if *digest == f.big() && *size == MIB as u64),
        "{err}"
    );
    assert!(!fresh.contains(&f.big()));

    // The intact ones still download.
    let ok = [f.objects[1].0, f.objects[2].0];
    let r = remote.download(&fresh, &ok, &NoProgress).await.unwrap();
    assert_eq!(r.downloaded, 2);
}

async fn missing_objects(make: &dyn Fn(&str) -> Remote) {
    let remote = make("missing");
    let f = Fixture::new(3);
    let all = f.digests();
    remote.upload(&f.cache, &all[..2], &NoProgress).await.unwrap();
    let (_dir, fresh) = empty_cache();
    let err = remote.download(&fresh, &all, &NoProgress).await.unwrap_err();
    let RemoteError::MissingObjects { digests, .. } = &err else {
        panic!("expected MissingObjects, got {err}");
    };
    let mut expected = all[2..].to_vec();
    expected.sort();
    assert_eq!(digests, &expected);
    assert!(err.to_string().contains(&expected[0].to_string()));
    // What exists was still fetched.
    assert!(fresh.contains(&all[0]) && fresh.contains(&all[1]));
}

async fn corrupt_cache_refused(make: &dyn Fn(&str) -> Remote) {
    let remote = make("badcache");
    let f = Fixture::new(4);
    corrupt_cache_object(&f.cache, &f.small(), b"not what was hashed");
    let mut big = f.objects[3].1.clone();
    big[7 * MIB] ^= 0xff; // a flipped byte in the second part
    corrupt_cache_object(&f.cache, &f.big(), &big);
    for d in [f.small(), f.big()] {
        let err = remote.upload(&f.cache, &[d], &NoProgress).await.unwrap_err();
        match &err {
            RemoteError::Cache(CacheError::Corrupt { digest, path, .. }) => {
                assert_eq!(*digest, d);
                assert_eq!(path, &f.cache.object_path(&d));
            }
            other => panic!("expected a corrupt cache object, got {other}"),
        }
        assert!(err
            .to_string()
            .contains(&f.cache.object_path(&d).display().to_string()));
        assert_eq!(
            remote.missing(&[d]).await.unwrap(),
            vec![d],
            "nothing of it is on the remote"
        );
    }
    // Missing from the cache.
    let (_d, empty) = empty_cache();
    let err = remote
        .upload(&empty, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::Cache(CacheError::Missing { .. })),
        "{err}"
    );
}

/// Remote format 2: upgrade, upload into packs (the 12 MiB object as chunks, its pack sent
/// in parts), presence from the index, download into a fresh cache through a freshly opened
/// remote (the index read back from the remote), then a damaged pack refused.
async fn format2_roundtrip(make: &dyn Fn(&str) -> Remote) {
    use futures::TryStreamExt;
    use mlv::remote::packed::Upgrade;
    let remote = make("format2");
    assert_eq!(remote.upgrade().await.unwrap(), Upgrade::Upgraded);
    let remote = make("format2");
    assert_eq!(remote.upgrade().await.unwrap(), Upgrade::AlreadyFormat2);
    let f = Fixture::new(21);
    let all = f.digests();
    assert_eq!(remote.missing(&all).await.unwrap(), all);
    let up = remote.upload(&f.cache, &all, &NoProgress).await.unwrap();
    assert_eq!((up.uploaded, up.already_present), (4, 0), "{up:?}");
    assert!(remote.missing(&all).await.unwrap().is_empty());

    let remote = make("format2");
    assert!(
        remote.missing(&all).await.unwrap().is_empty(),
        "the index is read back"
    );
    let again = remote.upload(&f.cache, &all, &NoProgress).await.unwrap();
    assert_eq!((again.uploaded, again.already_present), (0, 4), "{again:?}");
    let (dir, fresh) = empty_cache();
    let down = remote.download(&fresh, &all, &NoProgress).await.unwrap();
    assert_eq!(down.downloaded, 4, "{down:?}");
    for (d, bytes) in &f.objects {
        assert_eq!(&fresh.read_verified(d).unwrap(), bytes);
    }
    assert!(tmp_is_empty(&dir));

    // only the config document, packs and index segments: no format 1 object
    let store = remote.object_store();
    let keys: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let local = remote.scheme() == mlv::remote::Scheme::Local;
    let keys: Vec<&String> = keys
        .iter()
        .filter(|k| local || k.starts_with("format2/"))
        .collect();
    let rel = |k: &str| k.strip_prefix("format2/").unwrap_or(k).to_string();
    assert!(
        keys.iter().all(|k| {
            let k = rel(k);
            k == "mlv-remote.toml" || k.starts_with("packs/") || k.starts_with("index/")
        }),
        "{keys:?}"
    );
    // one byte of the 100 KiB blob flipped: refused as an integrity error, nothing installed
    let pack = keys.iter().find(|k| rel(k).starts_with("packs/")).unwrap();
    let path = object_store::path::Path::from(pack.as_str());
    let mut bytes = store.get(&path).await.unwrap().bytes().await.unwrap().to_vec();
    bytes[1000] ^= 0x40;
    store.put(&path, PutPayload::from(bytes)).await.unwrap();
    let hundred = f.objects[2].0;
    let (_dir, fresh) = empty_cache();
    let err = make("format2")
        .download(&fresh, &[hundred], &NoProgress)
        .await
        .unwrap_err();
    match &err {
        RemoteError::DamagedFor { objects, error } => {
            assert_eq!(objects, &[hundred], "{err}");
            assert!(matches!(**error, RemoteError::Format2 { .. }), "{err}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(err.kind(), mlv::kind::ErrorKind::Integrity, "{err}");
    assert!(!fresh.contains(&hundred));
}

/// A format 1 remote upgraded to format 2: its old objects stay at their format 1 keys (an
/// older mlv reads them there) and still download into a fresh cache; new uploads go into
/// packs; the check behind `fsck --remote [--read-data]` finds it whole, tells its format 1
/// objects apart, and reports a truncated pack (which a download refuses as damage: on object
/// stores a range past the end is refused, and a HEAD tells why).
async fn format2_upgraded(make: &dyn Fn(&str) -> Remote) {
    use futures::TryStreamExt;
    use mlv::remote::packed::{DamageKind, Item};
    let old = Fixture::new(31);
    let v1 = make("upgraded");
    v1.upload(&old.cache, &old.digests(), &NoProgress).await.unwrap();
    v1.upgrade().await.unwrap();

    let remote = make("upgraded");
    let new = Fixture::new(32); // its empty object is also one of the old ones
                                // the format 1 objects count as present (as `mlv push` asks before uploading)
    let todo = remote.missing(&new.digests()).await.unwrap();
    assert_eq!(todo.len(), 3, "{todo:?}");
    let up = remote.upload(&new.cache, &todo, &NoProgress).await.unwrap();
    assert_eq!(up.uploaded, 3, "{up:?}");
    let store = remote.object_store();
    for (d, bytes) in &old.objects {
        // what an older mlv reads: the object at its format 1 key, unchanged
        let raw = store
            .get(&remote.object_key(d))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&raw[..], &bytes[..]);
    }
    for (d, _) in &new.objects[2..] {
        assert!(
            store.head(&remote.object_key(d)).await.is_err(),
            "new objects go to packs"
        );
    }
    let mut all = old.digests();
    all.extend(new.digests());
    all.sort();
    all.dedup();
    let remote = make("upgraded");
    assert!(remote.missing(&all).await.unwrap().is_empty());
    let (dir, fresh) = empty_cache();
    let down = remote.download(&fresh, &all, &NoProgress).await.unwrap();
    assert_eq!(down.downloaded, all.len() as u64, "{down:?}");
    for (d, bytes) in old.objects.iter().chain(&new.objects) {
        assert_eq!(&fresh.read_verified(d).unwrap(), bytes);
    }
    assert!(tmp_is_empty(&dir));

    for read_data in [false, true] {
        let check = make("upgraded")
            .check_packed(&all, read_data, &NoProgress)
            .await
            .unwrap();
        assert!(check.damage.is_empty(), "{:?}", check.damage);
        assert!(check.may_have_v1);
        let mut not_indexed = check.not_indexed.clone();
        not_indexed.sort();
        // the old objects (the empty one among them: present at its format 1 key, not packed)
        let mut expected = old.digests();
        expected.sort();
        assert_eq!(not_indexed, expected);
        assert!(check.packs >= 1 && check.segments >= 1);
        assert_eq!(check.packs_read, if read_data { check.packs } else { 0 });
        assert!(check.unreferenced_packs.is_empty());
    }

    // a pack cut short: reported by the check, refused by a download as damage
    let keys: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let big = new.big();
    let local = remote.scheme() == mlv::remote::Scheme::Local;
    let packs: Vec<&String> = keys
        .iter()
        .filter(|k| k.contains("packs/") && (local || k.starts_with("upgraded/")))
        .collect();
    let path = object_store::path::Path::from(packs[0].as_str());
    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap().to_vec();
    store
        .put(&path, PutPayload::from(bytes[..bytes.len() / 2].to_vec()))
        .await
        .unwrap();
    let check = make("upgraded")
        .check_packed(&all, false, &NoProgress)
        .await
        .unwrap();
    assert_eq!(check.damage.len(), 1, "{:?}", check.damage);
    let d = &check.damage[0];
    assert_eq!((d.item, d.kind), (Item::Pack, DamageKind::WrongSize), "{d:?}");
    assert!(path.as_ref().ends_with(&d.id.to_string()), "{d:?}");
    assert!(!d.affects.is_empty(), "{d:?}");
    let (_dir, fresh) = empty_cache();
    let err = make("upgraded")
        .download(&fresh, &d.affects, &NoProgress)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), mlv::kind::ErrorKind::Integrity, "{err}");
    assert!(matches!(err, RemoteError::DamagedFor { .. }), "{err}");
    assert!(!fresh.contains(&big) || !d.affects.contains(&big), "{err}");
}

/// Format 2 gc on every backend, with server timestamps: packs only an unused upload holds
/// are marked (then count as absent), deleted by the next run, and what is live downloads.
async fn format2_gc(make: &dyn Fn(&str) -> Remote) {
    use futures::TryStreamExt;
    use mlv::remote::packed::PackedGcOptions;
    make("format2gc").upgrade().await.unwrap();
    let remote = make("format2gc");
    let (old, new) = (Fixture::new(31), Fixture::new(32));
    // the empty object goes with the new upload only: the old packs hold nothing live
    let old_ids: Vec<Digest> = old
        .digests()
        .into_iter()
        .filter(|d| *d != old.objects[1].0)
        .collect();
    remote.upload(&old.cache, &old_ids, &NoProgress).await.unwrap();
    remote
        .upload(&new.cache, &new.digests(), &NoProgress)
        .await
        .unwrap();
    let live: std::collections::HashSet<Digest> = new.digests().into_iter().collect();
    // stores that keep whole seconds: the mark must come in a later second than the packs
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let opts = PackedGcOptions {
        grace: Duration::ZERO,
        dry_run: false,
        repack: false,
    };
    let first = make("format2gc").gc_packed(&live, opts).await.unwrap();
    assert!(!first.marked.is_empty(), "{first:?}");
    assert!(first.deleted.is_empty(), "{first:?}");
    let fresh = make("format2gc");
    assert_eq!(
        fresh.missing(&old_ids).await.unwrap().len(),
        3,
        "marked: absent for a push"
    );
    assert!(fresh.missing(&new.digests()).await.unwrap().is_empty());
    let second = make("format2gc").gc_packed(&live, opts).await.unwrap();
    assert_eq!(second.deleted.len(), first.marked.len(), "{second:?}");
    let store = remote.object_store();
    let keys: Vec<String> = store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let local = remote.scheme() == mlv::remote::Scheme::Local;
    let rel = |k: &String| k.strip_prefix("format2gc/").map(str::to_string);
    let keys: Vec<String> = keys
        .iter()
        .filter_map(|k| if local { Some(k.clone()) } else { rel(k) })
        .collect();
    assert!(!keys.iter().any(|k| k.starts_with("gc/")), "{keys:?}");
    assert_eq!(
        keys.iter().filter(|k| k.starts_with("index/")).count(),
        1,
        "{keys:?}"
    );
    let (_dir, cache) = empty_cache();
    let down = make("format2gc")
        .download(&cache, &new.digests(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(down.downloaded, 4, "{down:?}");
    let gone = make("format2gc").missing(&old_ids).await.unwrap();
    assert_eq!(gone.len(), 3);
}

async fn all_scenarios(make: &dyn Fn(&str) -> Remote) {
    format2_roundtrip(make).await;
    format2_upgraded(make).await;
    format2_gc(make).await;
    roundtrip(make).await;
    listing(make).await;
    remote_corruption(make).await;
    missing_objects(make).await;
    corrupt_cache_refused(make).await;
}

// ---------------------------------------------------------------------------------------------
// Backends.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().to_path_buf();
    let make = move |prefix: &str| open(base.join(prefix).join("store").to_str().unwrap(), &[]);
    all_scenarios(&make).await;
    // Uploads leave no staging files behind and objects are read-only.
    let staging = root.path().join("roundtrip/store/.mlv-tmp");
    assert!(std::fs::read_dir(&staging)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true));
}

fn s3_opts(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("endpoint", format!("http://127.0.0.1:{port}")),
        ("region", "us-east-1".into()),
        ("access_key_id", "testing".into()),
        ("secret_access_key", S3_SECRET.into()),
        ("path_style", "true".into()),
    ]
}

fn as_refs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_moto() {
    let Some(moto) = Moto::start(BUCKET, false) else {
        return;
    };
    let opts = s3_opts(moto.proc.port);
    let make = |prefix: &str| open(&format!("s3://{BUCKET}/{prefix}"), &as_refs(&opts));
    all_scenarios(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_wrong_credentials_are_reported_without_the_secret() {
    let Some(moto) = Moto::start(BUCKET, true) else {
        return;
    };
    let remote = open(&format!("s3://{BUCKET}/auth"), &as_refs(&s3_opts(moto.proc.port)));
    let f = Fixture::new(5);
    let err = remote
        .upload(&f.cache, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Unauthorized { .. }), "{err}");
    eprintln!("s3 wrong credentials: {err}");
    let text = format!("{err} {err:?} {}", err.hint().unwrap_or_default());
    assert!(!text.contains(S3_SECRET), "{text}");
    assert!(text.contains("AWS_ACCESS_KEY_ID"), "{text}");
}

fn azure_opts(endpoint: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("account", AZURITE_ACCOUNT.into()),
        ("access_key", key.into()),
        ("endpoint", endpoint.into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_azurite() {
    let Some(az) = Azurite::start(BUCKET) else { return };
    let opts = azure_opts(&az.endpoint(), AZURITE_KEY);
    let make = |prefix: &str| open(&format!("az://{BUCKET}/{prefix}"), &as_refs(&opts));
    all_scenarios(&make).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_wrong_credentials_are_reported_without_the_secret() {
    let Some(az) = Azurite::start(BUCKET) else { return };
    let f = Fixture::new(6);
    // A wrong account key.
    let wrong_key = "V3JvbmdLZXlXcm9uZ0tleVdyb25nS2V5V3JvbmdLZXk=";
    let remote = open(
        &format!("az://{BUCKET}/auth"),
        &as_refs(&azure_opts(&az.endpoint(), wrong_key)),
    );
    let err = remote
        .upload(&f.cache, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Unauthorized { .. }), "{err}");
    let text = format!("{err} {err:?}");
    assert!(
        !text.contains(wrong_key) && !text.contains("V3JvbmdLZXlX"),
        "{text}"
    );
    assert!(err.hint().unwrap().contains("AZURE_STORAGE_ACCOUNT_KEY"));

    // A forged SAS token: object_store puts it in every request URL.
    let sig = "Rm9yZ2VkU2lnbmF0dXJlVmFsdWUxMjM0NTY3ODk";
    let sas = format!("sv=2021-08-06&ss=b&srt=sco&sp=rwdlac&se=2030-01-01T00:00:00Z&sig={sig}%3D");
    let opts = [
        ("account", AZURITE_ACCOUNT.to_string()),
        ("sas_token", sas.clone()),
        ("endpoint", az.endpoint()),
    ];
    let remote = open(&format!("az://{BUCKET}/sas"), &as_refs(&opts));
    let err = remote.missing(&[f.small()]).await.unwrap_err();
    assert!(matches!(err, RemoteError::Unauthorized { .. }), "{err}");
    let text = format!("{err} {err:?}");
    eprintln!("azure forged SAS: {err}");
    assert!(!text.contains(sig), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gcs_fake() {
    let Some(gcs) = GcsFake::start(BUCKET) else { return };
    let key = gcs.service_account_key();
    let opts = [("service_account_key", key.as_str()), ("allow_http", "true")];
    let make = |prefix: &str| open(&format!("gs://{BUCKET}/{prefix}"), &opts);
    all_scenarios(&make).await;
}

/// Large objects downloading at once share the download memory budget (1 MiB per part in
/// flight). With room for one or two parts only, four objects of three ranges each all arrive
/// intact: waiting for the budget never deadlocks, however the parts of different objects
/// interleave.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_downloads_share_a_small_budget() {
    let Some(gcs) = GcsFake::start(BUCKET) else { return };
    let key = gcs.service_account_key();
    let opts = [("service_account_key", key.as_str()), ("allow_http", "true")];
    let (_src, cache) = empty_cache();
    let blobs: Vec<Vec<u8>> = (0..4)
        .map(|i| noise(11 * MIB + i * 1000, 40 + i as u64))
        .collect();
    let digests: Vec<Digest> = blobs.iter().map(|b| cache.insert_bytes(b).unwrap()).collect();
    for budget in [1, 2] {
        let settings = RemoteSettings {
            multipart_threshold: 5 * MIB as u64,
            part_size: 5 * MIB as u64,
            memory_budget: budget * MIB as u64,
            ..settings()
        };
        let remote = Remote::open(&spec(&format!("gs://{BUCKET}/budget{budget}"), &opts), &settings).unwrap();
        remote.upload(&cache, &digests, &NoProgress).await.unwrap();
        let (dir, fresh) = empty_cache();
        let down = tokio::time::timeout(
            Duration::from_secs(120),
            remote.download(&fresh, &digests, &NoProgress),
        )
        .await
        .expect("the downloads finish")
        .unwrap();
        assert_eq!(down.downloaded, 4, "{down:?}");
        assert_eq!(
            down.downloaded_bytes,
            blobs.iter().map(|b| b.len() as u64).sum::<u64>()
        );
        for (d, b) in digests.iter().zip(&blobs) {
            assert_eq!(&fresh.read_verified(d).unwrap(), b);
        }
        assert!(tmp_is_empty(&dir));
    }
}

// ---------------------------------------------------------------------------------------------
// A dead remote fails fast, whatever the backend.

async fn assert_unreachable_fast(remote: Remote) {
    let f = Fixture::new(7);
    let started = Instant::now();
    let err = remote.missing(&[f.small()]).await.unwrap_err();
    eprintln!("unreachable: {err}");
    assert!(matches!(err, RemoteError::Unreachable { .. }), "{err}");
    assert!(err.hint().unwrap().contains("timeout"));
    let err = remote
        .upload(&f.cache, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Unreachable { .. }), "{err}");
    let (_d, fresh) = empty_cache();
    let err = remote
        .download(&fresh, &[f.small()], &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(err, RemoteError::Unreachable { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_remotes_fail_within_seconds() {
    let port = crate::support::closed_port();
    let s3 = s3_opts(port);
    assert_unreachable_fast(open(&format!("s3://{BUCKET}/x"), &as_refs(&s3))).await;

    let az = azure_opts(&format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"), AZURITE_KEY);
    assert_unreachable_fast(open(&format!("az://{BUCKET}/x"), &as_refs(&az))).await;

    let key = format!(
        r#"{{"gcs_base_url": "http://127.0.0.1:{port}", "disable_oauth": true, "client_email": "", "private_key": "", "private_key_id": ""}}"#
    );
    let gcs = [("service_account_key", key.as_str()), ("allow_http", "true")];
    assert_unreachable_fast(open(&format!("gs://{BUCKET}/x"), &gcs)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_credentials_never_show_in_errors() {
    // User info in an endpoint URL: object_store prints request URLs in full.
    let port = crate::support::closed_port();
    let opts = [
        (
            "endpoint",
            format!("http://admin:hunter2-endpoint-pw@127.0.0.1:{port}"),
        ),
        ("region", "us-east-1".to_string()),
        ("access_key_id", "testing".to_string()),
        ("secret_access_key", S3_SECRET.to_string()),
    ];
    let remote = open(&format!("s3://{BUCKET}/x"), &as_refs(&opts));
    let err = remote.missing(&[Digest::of_bytes(b"x")]).await.unwrap_err();
    let text = format!("{err} {err:?}");
    eprintln!("endpoint with user info: {err}");
    assert!(
        !text.contains("hunter2-endpoint-pw") && !text.contains(S3_SECRET),
        "{text}"
    );
}
