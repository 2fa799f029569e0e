//! Crash safety: `kill -9` at any moment of add, push, fetch, pull, checkout and gc leaves no
//! partial object under a final name (cache and remotes), no truncated workspace file, no corrupt
//! pointer, and rerunning the command converges.
//!
//! Two tests drive the real binary (built with the `failpoints` feature):
//! - `every_crash_point_is_safe`: each command runs once with `MLV_CRASH_LOG` to learn which
//!   named crash points it reaches, then is killed at each of them (first hit and one a quarter in); every
//!   point of `mlv::crash::POINTS` must be reached by some command.
//! - `random_kill_campaign`: `MLV_CRASH_RUNS` (default 200) runs, each a random command killed
//!   with SIGKILL after a random delay (seeded: `MLV_CRASH_SEED`, printed on failure).
//!
//! After every kill the invariants are checked, then the command is rerun and must converge.
//! `MLV_CRASH_VERBOSE=1` prints the time each campaign run spends in setup, checks and rerun.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{b3, Env, Output, MLV};

/// Small files per version (a few hundred), plus a few MiB in large files.
const SMALL: usize = 200;

/// A deterministic pseudo-random generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        out.extend_from_slice(&r.next().to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The two versions of the data: path -> content.
type Tree = BTreeMap<String, Vec<u8>>;

fn tree(version: usize) -> Tree {
    let mut t = Tree::new();
    for i in 0..SMALL {
        let changed = i % 3 == 0 && version == 1;
        if i % 7 == 0 && version == 1 {
            continue; // only in version 0
        }
        let len = 64 + (i * 37) % 4000;
        let seed = (i as u64) << 8 | u64::from(changed);
        t.insert(format!("data/s{i:03}"), bytes(seed, len));
        if i % 11 == 0 && version == 1 {
            t.insert(format!("data/new/n{i:03}"), bytes(seed ^ 0xABCD, len));
        }
    }
    for b in 0..3 {
        let seed = 1_000 + b + if b > 0 { version as u64 * 10 } else { 0 };
        t.insert(format!("big/b{b}"), bytes(seed, (1 << 20) + b as usize * 4096));
    }
    t.insert("model.bin".into(), bytes(2_000 + version as u64, 3 << 19));
    t
}

const TRACKED: [&str; 3] = ["data", "big", "model.bin"];
const POINTERS: [&str; 3] = ["data.mlv", "big.mlv", "model.bin.mlv"];

fn remove_tracked(env: &Env) {
    for t in TRACKED {
        let p = env.path(t);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).unwrap();
        } else if env.exists(t) {
            std::fs::remove_file(&p).unwrap();
        }
    }
}

fn write_tree(env: &Env, t: &Tree) {
    remove_tracked(env);
    for (path, content) in t {
        env.write(path, content);
    }
}

/// The workspace's tracked files: path -> content digest.
fn workspace(env: &Env) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for t in TRACKED {
        if !env.exists(t) {
            continue;
        }
        for e in walkdir::WalkDir::new(env.path(t)) {
            let e = e.unwrap();
            if e.file_type().is_file() {
                let rel = e
                    .path()
                    .strip_prefix(&env.root)
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_string();
                out.insert(rel, b3(&std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

/// The commands under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    Add,
    Push,
    PushS3,
    Fetch,
    Pull,
    Checkout,
    Gc,
}

impl Kind {
    fn args(self) -> Vec<&'static str> {
        match self {
            Kind::Add => vec!["add", "data", "big", "model.bin"],
            Kind::Push => vec!["push", "-r", "pushdir"],
            Kind::PushS3 => vec!["push", "-r", "s3"],
            Kind::Fetch => vec!["fetch"],
            Kind::Pull => vec!["pull"],
            Kind::Checkout => vec!["checkout"],
            Kind::Gc => vec!["gc", "--workspace", "--grace", "0", "--force"],
        }
    }
}

/// Everything the runs share: one repository per command, the reference pointers and trees.
struct Lab {
    trees: [Tree; 2],
    /// Pointer file texts per version.
    refs: [BTreeMap<&'static str, String>; 2],
    /// Every content a workspace path may hold.
    known: HashMap<String, BTreeSet<String>>,
    /// Directory manifests of both versions.
    manifests: Vec<String>,
    /// Objects the cache holds after `gc --workspace` per version.
    kept: [BTreeSet<String>; 2],
    /// A copy of a full cache (both versions), to refill the gc repository.
    master: PathBuf,
    repos: BTreeMap<Kind, Env>,
    /// The version each repository's pointers are at.
    at: HashMap<Kind, usize>,
    s3: Option<S3>,
}

struct S3 {
    _moto: crate::support::Moto,
    store: object_store::aws::AmazonS3,
    rt: tokio::runtime::Runtime,
}

const BUCKET: &str = "crash";
const PREFIX: &str = "store";

impl S3 {
    fn start() -> Option<S3> {
        let moto = crate::support::Moto::start(BUCKET, false)?;
        let store = object_store::aws::AmazonS3Builder::new()
            .with_endpoint(moto.proc.url())
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        Some(S3 {
            _moto: moto,
            store,
            rt,
        })
    }

    /// Every object: key -> content.
    fn objects(&self) -> BTreeMap<String, Vec<u8>> {
        use futures::TryStreamExt;
        use object_store::{ObjectStore, ObjectStoreExt};
        self.rt.block_on(async {
            let prefix = object_store::path::Path::from(PREFIX);
            let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.unwrap();
            let mut out = BTreeMap::new();
            for m in metas {
                let got = self.store.get(&m.location).await.unwrap();
                out.insert(m.location.to_string(), got.bytes().await.unwrap().to_vec());
            }
            out
        })
    }

    /// Every key.
    fn keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        use object_store::ObjectStore;
        self.rt.block_on(async {
            let prefix = object_store::path::Path::from(PREFIX);
            let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await.unwrap();
            metas.into_iter().map(|m| m.location.to_string()).collect()
        })
    }

    fn delete(&self, key: &str) {
        use object_store::ObjectStoreExt;
        self.rt
            .block_on(self.store.delete(&object_store::path::Path::from(key)))
            .unwrap();
    }
}

/// A copy of `src`'s work tree (git, cache and all) in a fresh temporary directory.
fn copy_of(src: &Env) -> Env {
    let env = Env::empty();
    let out = std::process::Command::new("cp")
        .args(["-a"])
        .arg(&src.root)
        .arg(&env.root)
        .output()
        .unwrap();
    assert!(out.status.success(), "cp: {out:?}");
    env
}

fn digest_in(pointer_text: &str) -> String {
    let t: toml::Table = toml::from_str(pointer_text).unwrap();
    t["digest"].as_str().unwrap().to_string()
}

impl Lab {
    fn new() -> Lab {
        let trees = [tree(0), tree(1)];
        let fixture = Env::new();
        // the small files of each version go into a pack (add, fetch, gc's rewrites)
        fixture.set_pack_min(50);
        let remote = fixture.base.join("remote");
        fixture
            .mlv(&[
                "remote",
                "add",
                "origin",
                remote.to_str().unwrap(),
                "--default",
                "--format",
                "1",
            ])
            .ok();
        let mut refs = [BTreeMap::new(), BTreeMap::new()];
        for v in 0..2 {
            write_tree(&fixture, &trees[v]);
            fixture.mlv(&Kind::Add.args()).ok();
            for p in POINTERS {
                refs[v].insert(p, fixture.read_str(p));
            }
            fixture.git(&["add", "-A"]);
            fixture.git(&["commit", "-qm", &format!("v{v}")]);
            fixture.git(&["tag", &format!("v{v}")]);
            fixture.mlv(&["push"]).ok();
        }
        let mut known: HashMap<String, BTreeSet<String>> = HashMap::new();
        for t in &trees {
            for (p, c) in t {
                known.entry(p.clone()).or_default().insert(b3(c));
            }
        }
        let manifests = (0..2)
            .flat_map(|v| ["data.mlv", "big.mlv"].map(|p| digest_in(&refs[v][p])))
            .collect();
        let master = fixture.base.join("master");
        let out = std::process::Command::new("cp")
            .arg("-a")
            .arg(fixture.path(".mlv/cache"))
            .arg(&master)
            .output()
            .unwrap();
        assert!(out.status.success());
        let s3 = S3::start();
        let mut lab = Lab {
            trees,
            refs,
            known,
            manifests,
            kept: [BTreeSet::new(), BTreeSet::new()],
            master,
            repos: BTreeMap::new(),
            at: HashMap::new(),
            s3,
        };
        let kinds = [
            Kind::Push,
            Kind::PushS3,
            Kind::Fetch,
            Kind::Pull,
            Kind::Checkout,
            Kind::Gc,
        ];
        for k in kinds {
            if k == Kind::PushS3 && lab.s3.is_none() {
                continue;
            }
            let env = copy_of(&fixture);
            lab.configure(k, &env);
            lab.repos.insert(k, env);
        }
        lab.repos.insert(Kind::Add, fixture);
        for v in 0..2 {
            lab.kept[v] = lab.objects_for(v);
        }
        lab
    }

    fn configure(&self, k: Kind, env: &Env) {
        match k {
            Kind::Push => {
                let dir = env.base.join("pushremote");
                env.mlv(&["remote", "add", "pushdir", dir.to_str().unwrap(), "--format", "1"])
                    .ok();
            }
            Kind::PushS3 => {
                let s3 = self.s3.as_ref().unwrap();
                env.mlv(&[
                    "remote",
                    "add",
                    "s3",
                    &format!("s3://{BUCKET}/{PREFIX}"),
                    "--format",
                    "1",
                ])
                .ok();
                let url = s3._moto.proc.url();
                for (key, value) in [
                    ("endpoint", url.as_str()),
                    ("region", "us-east-1"),
                    ("allow_http", "true"),
                    ("timeout", "10"),
                    ("retries", "1"),
                ] {
                    env.mlv(&["remote", "modify", "s3", key, value]).ok();
                }
                for (key, value) in [("access_key_id", "testing"), ("secret_access_key", "testing")] {
                    env.mlv(&["remote", "modify", "s3", key, value, "--local"]).ok();
                }
            }
            Kind::Fetch | Kind::Gc => remove_tracked(env),
            _ => {}
        }
    }

    /// How many objects `gc --workspace` keeps at version `v` (counted from a clean gc).
    fn objects_for(&self, v: usize) -> BTreeSet<String> {
        let env = &self.repos[&Kind::Gc];
        env.git(&["checkout", "-q", "--detach", &format!("v{v}")]);
        self.refill_cache(env);
        env.mlv(&Kind::Gc.args()).ok();
        let kept = stored_objects(env);
        self.refill_cache(env);
        kept
    }

    /// Puts back every object of the master copy the cache lacks (hard links: objects are
    /// read-only and never modified).
    fn refill_cache(&self, env: &Env) {
        let cache = env.path(".mlv/cache");
        for e in walkdir::WalkDir::new(&self.master) {
            let e = e.unwrap();
            if !e.file_type().is_file() {
                continue;
            }
            let rel = e.path().strip_prefix(&self.master).unwrap();
            let dest = cache.join(rel);
            if !dest.exists() {
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::hard_link(e.path(), &dest).unwrap();
            }
        }
    }

    /// Sets up the work `k` has to do next; returns the version its result must reach.
    fn prepare(&mut self, k: Kind, rng: &mut Rng) -> usize {
        let v = 1 - self.at.get(&k).copied().unwrap_or(1);
        self.at.insert(k, v);
        let env = &self.repos[&k];
        if k != Kind::Add {
            env.git(&["checkout", "-q", "--detach", &format!("v{v}")]);
        }
        match k {
            Kind::Add => {
                write_tree(env, &self.trees[v]);
                // as after a gc: the add has to store the packed objects again
                for pack in env.packs() {
                    std::fs::remove_file(pack).unwrap();
                }
            }
            Kind::Push => {
                let dir = env.base.join("pushremote");
                for e in walkdir::WalkDir::new(&dir).into_iter().flatten() {
                    let name = e.file_name().to_str().unwrap_or("").to_string();
                    if e.file_type().is_file() && (self.manifests.contains(&name) || rng.chance(50)) {
                        std::fs::remove_file(e.path()).unwrap();
                    }
                }
            }
            Kind::PushS3 => {
                let s3 = self.s3.as_ref().unwrap();
                for key in s3.keys() {
                    let name = key.rsplit('/').next().unwrap().to_string();
                    if self.manifests.contains(&name) || rng.chance(50) {
                        s3.delete(&key);
                    }
                }
            }
            Kind::Fetch => drop_objects(env, rng, 60),
            Kind::Pull => {
                remove_tracked(env);
                drop_objects(env, rng, 50);
            }
            Kind::Checkout => {
                let files: Vec<String> = workspace(env).into_keys().collect();
                for f in files {
                    if rng.chance(10) {
                        std::fs::remove_file(env.path(&f)).unwrap();
                    }
                }
            }
            Kind::Gc => self.refill_cache(env),
        }
        v
    }

    /// Checks the invariants that must hold at any moment, even right after a kill.
    fn check_invariants(&self, k: Kind) -> Result<(), String> {
        let env = &self.repos[&k];
        check_store(&env.path(".mlv/cache"), &[]).map_err(|e| format!("cache: {e}"))?;
        for p in POINTERS {
            let text = std::fs::read_to_string(env.path(p)).map_err(|e| format!("{p}: {e}"))?;
            if !self.refs.iter().any(|r| r[p] == text) {
                return Err(format!("{p} is neither version's pointer:\n{text}"));
            }
        }
        // no stray temporary file in the work tree (git would offer to commit it)
        let untracked: Vec<String> = env
            .git(&["status", "--porcelain", "--untracked-files=all"])
            .lines()
            .filter(|l| l.starts_with("??"))
            .map(str::to_string)
            .collect();
        if !untracked.is_empty() {
            return Err(format!("stray files in the work tree: {untracked:?}"));
        }
        for (path, digest) in workspace(env) {
            let ok = self.known.get(&path).is_some_and(|s| s.contains(&digest));
            if !ok {
                return Err(format!("workspace file {path} holds unknown content {digest}"));
            }
        }
        match k {
            Kind::Push => {
                let dir = env.base.join("pushremote");
                check_store(&dir, &[".mlv-tmp"]).map_err(|e| format!("remote: {e}"))?;
                let present = names_in(&dir);
                self.check_manifest_promise(env, &present)?;
            }
            Kind::PushS3 => {
                let objects = self.s3.as_ref().unwrap().objects();
                let mut present = BTreeSet::new();
                for (key, content) in &objects {
                    let name = key.rsplit('/').next().unwrap();
                    if b3(content) != name {
                        return Err(format!("S3 object {key} holds other content ({})", b3(content)));
                    }
                    present.insert(name.to_string());
                }
                self.check_manifest_promise(env, &present)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// A manifest on a remote promises every file it lists.
    fn check_manifest_promise(&self, env: &Env, present: &BTreeSet<String>) -> Result<(), String> {
        for m in self.manifests.iter().filter(|m| present.contains(*m)) {
            let text = std::fs::read_to_string(env.path(&format!(".mlv/cache/{}/{m}", &m[..2])))
                .map_err(|e| format!("manifest {m}: {e}"))?;
            for part in text.split("\"digest\":\"").skip(1) {
                let d = &part[..64];
                if !present.contains(d) {
                    return Err(format!("the remote has manifest {m} but not its file {d}"));
                }
            }
        }
        Ok(())
    }

    /// Reruns the command and checks that the repository reached version `v`.
    fn converge(&self, k: Kind, v: usize) -> Result<(), String> {
        let env = &self.repos[&k];
        let out = env.mlv(&k.args());
        if out.code != Some(0) || out.stderr.contains("panicked") {
            return Err(format!("rerun failed:\n{out}"));
        }
        self.check_invariants(k)?;
        let want: BTreeMap<String, String> = self.trees[v].iter().map(|(p, c)| (p.clone(), b3(c))).collect();
        match k {
            Kind::Add | Kind::Checkout | Kind::Pull => {
                if workspace(env) != want {
                    return Err(format!("the workspace is not version {v}"));
                }
                for p in POINTERS {
                    if env.read_str(p) != self.refs[v][p] {
                        return Err(format!("{p} is not version {v}'s"));
                    }
                }
                expect_ok(env.mlv(&["status", "--exit-code"]))?;
            }
            Kind::Push => expect_ok(env.mlv(&["status", "-r", "pushdir", "--exit-code"]))?,
            Kind::PushS3 => expect_ok(env.mlv(&["status", "-r", "s3", "--exit-code"]))?,
            Kind::Fetch | Kind::Gc => {
                let st = env.mlv(&["--json", "status"]);
                let json: serde_json::Value = serde_json::from_str(&st.stdout).unwrap_or_default();
                expect_ok(st)?;
                let all = json["pointers"].as_array().unwrap();
                if all.len() != 3 || all.iter().any(|p| p["in_cache"] != true) {
                    return Err(format!("not everything is in the cache: {json}"));
                }
                let kept = stored_objects(env);
                if k == Kind::Gc && kept != self.kept[v] {
                    return Err(format!(
                        "gc kept {} objects, {} expected",
                        kept.len(),
                        self.kept[v].len()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn expect_ok(out: Output) -> Result<(), String> {
    if out.code == Some(0) && !out.stderr.contains("panicked") {
        Ok(())
    } else {
        Err(format!("expected success:\n{out}"))
    }
}

/// The objects in the cache, loose or packed, by name.
fn stored_objects(env: &Env) -> BTreeSet<String> {
    let mut all: BTreeSet<String> = env
        .objects()
        .into_iter()
        .filter(|o| !o.starts_with("packs/"))
        .map(|o| o.rsplit('/').next().unwrap().to_string())
        .collect();
    for pack in env.packs() {
        all.extend(crate::common::read_pack(&pack).unwrap().into_keys());
    }
    all
}

/// Removes every pack (the fetch must store its objects again, in a pack) and `percent` of the
/// loose objects.
fn drop_objects(env: &Env, rng: &mut Rng, percent: u64) {
    for o in env.objects() {
        if o.starts_with("packs/") || rng.chance(percent) {
            std::fs::remove_file(env.path(&format!(".mlv/cache/{o}"))).unwrap();
        }
    }
}

/// The object names in a store directory.
fn names_in(dir: &Path) -> BTreeSet<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect()
}

/// Every file under a content-addressed store (`ab/<digest>`) is a whole object under its
/// name, and every pack (`packs/<digest>.pack`) is complete with intact objects; directories
/// in `skip` (staging) are not looked at.
fn check_store(dir: &Path, skip: &[&str]) -> Result<(), String> {
    let Ok(fans) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for fan in fans {
        let fan = fan.unwrap();
        let fan_name = fan.file_name().to_str().unwrap().to_string();
        if skip.contains(&fan_name.as_str()) {
            continue;
        }
        if fan_name == "packs" {
            for pack in std::fs::read_dir(fan.path()).unwrap() {
                crate::common::read_pack(&pack.unwrap().path())?;
            }
            continue;
        }
        if !fan.file_type().unwrap().is_dir() {
            return Err(format!("stray file {}", fan.path().display()));
        }
        for obj in std::fs::read_dir(fan.path()).unwrap() {
            let obj = obj.unwrap();
            let name = obj.file_name().to_str().unwrap().to_string();
            let content = std::fs::read(obj.path()).map_err(|e| format!("{name}: {e}"))?;
            if name.len() != 64 || !name.starts_with(&fan_name) || b3(&content) != name {
                return Err(format!(
                    "{}/{name} does not hold the object its name promises ({} bytes)",
                    fan_name,
                    content.len()
                ));
            }
        }
    }
    Ok(())
}

/// Runs `mlv ARGS` in `env` with extra environment; returns it and how long it took.
fn run_with(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> (Output, Duration) {
    let mut cmd = env.command(MLV, args);
    for (k, v) in vars {
        cmd = cmd.env(k, v);
    }
    let start = Instant::now();
    let out = cmd.run();
    (out, start.elapsed())
}

fn killed(out: &Output) -> bool {
    out.code.is_none()
}

#[test]
fn every_crash_point_is_safe() {
    let mut lab = Lab::new();
    let mut rng = Rng(7);
    let mut reached = BTreeSet::new();
    let kinds: Vec<Kind> = lab.repos.keys().copied().collect();
    let mut runs = 0;
    for k in kinds {
        // learn which points the command reaches, and how often
        let v = lab.prepare(k, &mut rng);
        let log = lab.repos[&k].base.join("crash.log");
        let _ = std::fs::remove_file(&log);
        let (out, _) = run_with(
            &lab.repos[&k],
            &k.args(),
            &[("MLV_CRASH_LOG", log.to_str().unwrap())],
        );
        expect_ok(out).unwrap();
        lab.converge(k, v).unwrap();
        let mut hits: BTreeMap<String, u64> = BTreeMap::new();
        for line in std::fs::read_to_string(&log).unwrap_or_default().lines() {
            *hits.entry(line.to_string()).or_default() += 1;
        }
        eprintln!("{k:?} reaches {hits:?}");
        for (point, count) in &hits {
            reached.insert(point.clone());
            if point == "workspace.before_read" && k != Kind::Add {
                // checkout hashes only the files its stat cache does not know, which the
                // random preparation varies: the point may not be reached again. (Nothing is
                // written before a read; add, which always reads the files it is given after
                // `prepare` changed them, is killed there.)
                continue;
            }
            let mut targets = vec![format!("{point}:1")];
            if *count > 2 {
                // A hit inside the run; a quarter in, not the middle: `prepare` removes a random
                // half of a remote's objects, so a push may reach the point about half as often
                // as the learning run did.
                targets.push(format!("{point}:{}", count / 4 + 1));
            }
            for target in targets {
                // Whether a run reaches a point may depend on what earlier runs left: gc rewrites
                // a pack only when the packs present hold objects to drop or duplicates, which
                // the killed and converged runs before it vary (seen once in CI: gc not killed
                // at pack.before_publish:1). So a run that was not killed is checked like any
                // other, and the point is tried again after a fresh preparation, a few times.
                let mut attempts = 0;
                loop {
                    attempts += 1;
                    let v = lab.prepare(k, &mut rng);
                    let (out, _) = run_with(&lab.repos[&k], &k.args(), &[("MLV_CRASH_AT", &target)]);
                    runs += 1;
                    let ctx = format!("{k:?} killed at {target}");
                    let was_killed = killed(&out);
                    assert!(
                        was_killed || attempts < 4,
                        "{ctx}: not killed in {attempts} runs\n{out}"
                    );
                    if let Err(e) = lab.check_invariants(k) {
                        panic!("{ctx}: broken invariant: {e}");
                    }
                    if let Err(e) = lab.converge(k, v) {
                        panic!("{ctx}: no convergence: {e}");
                    }
                    if was_killed {
                        break;
                    }
                }
            }
        }
    }
    let all: BTreeSet<String> = mlv::crash::POINTS.iter().map(|s| s.to_string()).collect();
    // Pushes to a format 2 remote and gc of one are killed at their points by
    // `cli_format2::format2_an_interrupted_push_converges` and
    // `cli_format2_gc::format2_gc_killed_at_every_step_converges`; the lab's remotes are
    // format 1.
    let format2 = [
        "push.after_plan",
        "push.after_pack",
        "push.before_segment",
        "gc.after_repack",
        "gc.after_mark",
        "gc.after_merged_segment",
        "gc.after_segment_delete",
        "gc.after_pack_delete",
        "gc.before_marker_delete",
    ];
    let never: Vec<_> = all
        .difference(&reached)
        .filter(|p| !format2.contains(&p.as_str()))
        .collect();
    assert!(never.is_empty(), "crash points no command reaches: {never:?}");
    eprintln!("{runs} crash-point runs over {} points", all.len());
}

#[test]
fn random_kill_campaign() {
    let runs: usize = std::env::var("MLV_CRASH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("MLV_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("random kill campaign: {runs} runs, MLV_CRASH_SEED={seed}");
    let started = Instant::now();
    let mut lab = Lab::new();
    let mut rng = Rng(seed);
    let kinds: Vec<Kind> = lab.repos.keys().copied().collect();
    // how long each command takes uninterrupted (best of two): the kill comes at a random
    // moment within that window, which adapts as runs go
    let mut took: HashMap<Kind, Duration> = HashMap::new();
    for &k in kinds.iter().chain(&kinds) {
        let v = lab.prepare(k, &mut rng);
        let (out, t) = run_with(&lab.repos[&k], &k.args(), &[]);
        expect_ok(out).unwrap();
        lab.converge(k, v).unwrap();
        let best = took.entry(k).or_insert(t);
        *best = (*best).min(t);
    }
    // S3 runs cost several times a local one (moto is slow): a third as many
    let weighted: Vec<Kind> = kinds
        .iter()
        .flat_map(|&k| std::iter::repeat_n(k, if k == Kind::PushS3 { 1 } else { 3 }))
        .collect();
    let mut tally: BTreeMap<Kind, (u32, u32)> = BTreeMap::new();
    // `runs` kills; runs that end before their kill are checked too but not counted
    let (mut kills, mut run) = (0, 0);
    while kills < runs {
        run += 1;
        assert!(
            run <= 3 * runs,
            "too many runs ended before their kill: {tally:?}"
        );
        let k = weighted[rng.below(weighted.len() as u64) as usize];
        let t0 = Instant::now();
        let v = lab.prepare(k, &mut rng);
        let t_prep = t0.elapsed();
        let limit = took[&k].as_micros() as u64;
        let delay = Duration::from_micros(rng.below(limit.max(1)));
        let mut child = lab.repos[&k].command(MLV, &k.args()).spawn();
        std::thread::sleep(delay);
        let _ = child.kill(); // SIGKILL
        let out = Output::of_child(child);
        let entry = tally.entry(k).or_default();
        // the window shrinks when a run ends before its kill (the machine may be faster now)
        let window = took.get_mut(&k).unwrap();
        if killed(&out) {
            kills += 1;
            entry.0 += 1;
            *window = window.mul_f64(1.05);
        } else {
            entry.1 += 1;
            *window = window.mul_f64(0.8);
        }
        let ctx = format!("run {run} (MLV_CRASH_SEED={seed}): {k:?} killed after {delay:?}");
        assert!(!out.stderr.contains("panicked"), "{ctx}: panic\n{out}");
        let t1 = Instant::now();
        if let Err(e) = lab.check_invariants(k) {
            panic!("{ctx}: broken invariant: {e}");
        }
        let t_inv = t1.elapsed();
        if let Err(e) = lab.converge(k, v) {
            panic!("{ctx}: no convergence: {e}");
        }
        if std::env::var_os("MLV_CRASH_VERBOSE").is_some() {
            eprintln!(
                "{k:?}: prepare {t_prep:?}, invariants {t_inv:?}, converge {:?}",
                t1.elapsed() - t_inv
            );
        }
    }
    eprintln!(
        "{run} runs ({kills} killed) in {:?}; per command (killed, finished first): {tally:?}; kill windows at the end: {took:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Files that change while `add` reads them (issue 12, item 6): `MLV_PAUSE_AT` stops `mlv`
// just before it reads a file (`workspace.before_read`, after the scan took its size); the test
// appends to the file, then resumes it.

/// The process state letter from /proc (R, S, T, Z, ...).
fn proc_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Waits until `child` has stopped itself at a pause point.
fn wait_stopped(child: &std::process::Child, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while proc_state(child.id()) != Some('T') {
        assert!(Instant::now() < deadline, "mlv never paused at {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn resume(child: &std::process::Child) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
}

fn append(env: &Env, rel: &str, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(env.path(rel))
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// `mlv add TARGET`, appending `extra` to `file` at each of the first `times` reads.
fn add_while_growing(env: &Env, target: &str, file: &str, times: usize) -> Output {
    let points: Vec<String> = (1..=times)
        .map(|n| format!("workspace.before_read:{n}"))
        .collect();
    let child = env
        .command(MLV, &["add", target])
        .env("MLV_PAUSE_AT", &points.join(","))
        .spawn();
    for (n, point) in points.iter().enumerate() {
        wait_stopped(&child, point);
        append(env, file, &bytes(n as u64 + 99, 1000));
        resume(&child);
    }
    Output::of_child(child)
}

/// The size of the cache object `hex`, loose or packed.
fn object_size(env: &Env, hex: &str) -> u64 {
    let loose = env.path(&format!(".mlv/cache/{}/{hex}", &hex[..2]));
    if let Ok(m) = std::fs::metadata(&loose) {
        return m.len();
    }
    for p in env.packs() {
        if let Some((_, data)) = crate::common::read_pack(&p).unwrap().get(hex) {
            return data.len() as u64;
        }
    }
    panic!("object {hex} is not in the cache");
}

#[test]
fn a_file_that_grows_while_add_reads_it_is_read_again_and_recorded_as_hashed() {
    let env = Env::new();
    env.write("grow.bin", bytes(1, 100_000));
    add_while_growing(&env, "grow.bin", "grow.bin", 1).ok();
    let p = env.pointer("grow.bin.mlv");
    let digest = p["digest"].as_str().unwrap().to_string();
    let now = env.read("grow.bin");
    assert_eq!(digest, b3(&now), "the pointer names the file's content");
    assert_eq!(p["size"].as_integer().unwrap() as u64, now.len() as u64);
    assert_eq!(
        object_size(&env, &digest),
        now.len() as u64,
        "pointer size vs object"
    );
    env.mlv(&["status", "--exit-code"]).ok();
    env.mlv(&["fsck"]).ok();
}

#[test]
fn a_file_that_grows_while_add_reads_it_in_a_directory_gets_its_object_size() {
    for packed in [false, true] {
        let env = Env::new();
        env.set_pack_min(if packed { 1 } else { 0 });
        env.write("data/grow.csv", bytes(2, 5_000));
        add_while_growing(&env, "data", "data/grow.csv", 1).ok();
        let manifest_hex = env.pointer("data.mlv")["digest"].as_str().unwrap().to_string();
        let manifest = env.read(&format!(".mlv/cache/{}/{manifest_hex}", &manifest_hex[..2]));
        let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
        let entry = &manifest["entries"][0];
        let now = env.read("data/grow.csv");
        assert_eq!(entry["digest"].as_str().unwrap(), b3(&now), "packed: {packed}");
        assert_eq!(
            entry["size"].as_u64().unwrap(),
            now.len() as u64,
            "packed: {packed}"
        );
        assert_eq!(object_size(&env, &b3(&now)), now.len() as u64, "packed: {packed}");
        assert_eq!(
            env.pointer("data.mlv")["size"].as_integer().unwrap() as usize,
            now.len()
        );
        // not "modified" forever
        env.mlv(&["status", "--exit-code"]).ok();
        env.mlv(&["fsck"]).ok();
    }
}

#[test]
fn a_file_that_keeps_growing_while_add_reads_it_is_refused_by_name() {
    let env = Env::new();
    env.write("grow.bin", bytes(3, 100_000));
    let out = add_while_growing(&env, "grow.bin", "grow.bin", 2).fails(1);
    assert_eq!(
        out.stderr_lines("error:"),
        ["error: grow.bin: changed while mlv was reading it, twice"],
        "{out}"
    );
    let out = out.stderr_has("hint: something is writing it: run the command again once it is done");
    assert!(!env.exists("grow.bin.mlv"), "{out}");
    assert!(
        !env.exists(".gitignore") || !env.read_str(".gitignore").contains("grow.bin"),
        "{out}"
    );
}

/// A gc killed after publishing a rewritten pack and before removing its source leaves twins:
/// the source (kept objects and garbage) and the rewritten pack (the kept objects). The rerun
/// must keep the rewritten pack's objects whichever of the two it reads first; it used to
/// rewrite the twin into itself, find it "already published" and remove it (issue 12: found by
/// the random kill campaign). The order packs are read in follows the directory, so the
/// scenario runs on several data sets (other pack names) to meet both orders.
#[test]
fn a_gc_killed_between_publishing_a_pack_and_removing_its_source_converges() {
    for seed in 0..6u64 {
        let env = Env::new();
        for i in 0..600u64 {
            env.write(&format!("data/f{i:03}"), bytes(seed * 1000 + i, 64));
        }
        env.mlv(&["add", "data"]).ok();
        assert_eq!(env.packs().len(), 1, "seed {seed}: one pack");
        // half of the files go: the pack now holds garbage and is rewritten by gc
        for i in 0..300u64 {
            std::fs::remove_file(env.path(&format!("data/f{i:03}"))).unwrap();
        }
        env.mlv(&["add", "data"]).ok();
        let gc = ["gc", "--workspace", "--grace", "0", "--force"];
        let (out, _) = run_with(&env, &gc, &[("MLV_CRASH_AT", "gc.before_remove")]);
        assert!(killed(&out), "seed {seed}: not killed at gc.before_remove\n{out}");
        assert_eq!(env.packs().len(), 2, "seed {seed}: the source and its rewrite");
        env.mlv(&gc).ok();
        let out = env.mlv(&["fsck"]);
        assert_eq!(out.code, Some(0), "seed {seed}: objects lost\n{out}");
        std::fs::remove_dir_all(env.path("data")).unwrap();
        env.mlv(&["checkout", "data"]).ok();
        assert_eq!(std::fs::read_dir(env.path("data")).unwrap().count(), 300);
    }
}
