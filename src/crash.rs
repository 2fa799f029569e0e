//! Named crash points, for the crash-safety tests.
//!
//! `crash_point!("add.after_stage")` marks a step where a crash is interesting. Without the
//! `failpoints` cargo feature it compiles to nothing. With it (test builds only):
//!
//! - `MLV_CRASH_AT=NAME` or `NAME:N` kills the process with SIGKILL at the first (or N-th)
//!   hit of the point, exactly like `kill -9`;
//! - `MLV_PAUSE_AT=NAME[:N]` stops the process with SIGSTOP there (a test resumes it with
//!   SIGCONT), e.g. to hold the repository lock while another command runs; several points
//!   separated by commas (`NAME:1,NAME:2`) pause at each;
//! - `MLV_CRASH_LOG=FILE` appends the name of every point hit to FILE, so tests can check that
//!   each point in [`POINTS`] is reached by some scenario.

/// Every crash point, so tests can enumerate them. A unit test checks this list against the
/// `crash_point!` calls in `src/`.
pub const POINTS: &[&str] = &[
    // add
    "add.after_stage",
    "add.before_manifest",
    "add.before_pointer",
    "add.after_pointer",
    "add.after_ignore",
    // reading a workspace file to hash it (add, status, checkout, diff)
    "workspace.before_read",
    // the cache: some objects of a batch published, the rest not
    "cache.mid_publish",
    // a pack written and synced, not yet renamed into place
    "pack.before_publish",
    // the stat cache
    "stat.before_save",
    "stat.after_save",
    // every atomic file write (pointers, .gitignore, config): temp file written, not renamed
    "fs.before_rename",
    // push
    "push.after_object",
    "push.before_manifests",
    "push.local_before_rename",
    // push to a format 2 remote: what to upload decided, nothing sent; a pack uploaded,
    // its index segment not yet
    "push.after_plan",
    "push.after_pack",
    "push.before_segment",
    // fetch, pull
    "fetch.mid_download",
    "fetch.after_object",
    "fetch.before_files",
    "pull.before_checkout",
    // checkout
    "checkout.after_remove",
    "checkout.after_place",
    "checkout.before_rename",
    // gc
    "gc.before_remove",
    "gc.after_remove",
    "gc.before_temp_clean",
    // gc of a format 2 remote: packs mostly unused repacked (new packs and their segment
    // written, the old ones not marked yet); a marker written; a merged index segment written, each
    // superseded segment deleted, each pack deleted, before each marker is deleted
    "gc.after_repack",
    "gc.after_mark",
    "gc.after_merged_segment",
    "gc.after_segment_delete",
    "gc.after_pack_delete",
    "gc.before_marker_delete",
];

/// Marks a crash point (see the module documentation).
#[macro_export]
macro_rules! crash_point {
    ($name:literal) => {
        $crate::crash::hit($name)
    };
}

/// Does nothing: built without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &'static str) {}

/// Counts a hit of `name` and crashes, pauses or logs as the environment asks.
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) {
    imp::hit(name);
}

#[cfg(feature = "failpoints")]
mod imp {
    use std::collections::HashMap;
    use std::io::Write;
    use std::sync::{Mutex, OnceLock};

    use rustix::process::{getpid, kill_process, Signal};

    struct Setup {
        crash: Option<(String, u64)>,
        pause: Vec<(String, u64)>,
        log: Option<Mutex<std::fs::File>>,
        counts: Mutex<HashMap<&'static str, u64>>,
    }

    fn target(var: &str) -> Option<(String, u64)> {
        targets(var).into_iter().next()
    }

    fn targets(var: &str) -> Vec<(String, u64)> {
        let v = std::env::var(var).unwrap_or_default();
        v.split(',')
            .filter(|t| !t.is_empty())
            .map(|t| match t.rsplit_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
                None => (t.to_string(), 1),
            })
            .collect()
    }

    fn setup() -> &'static Setup {
        static SETUP: OnceLock<Setup> = OnceLock::new();
        SETUP.get_or_init(|| Setup {
            crash: target("MLV_CRASH_AT"),
            pause: targets("MLV_PAUSE_AT"),
            log: std::env::var_os("MLV_CRASH_LOG").and_then(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .ok()
                    .map(Mutex::new)
            }),
            counts: Mutex::new(HashMap::new()),
        })
    }

    pub fn hit(name: &'static str) {
        assert!(
            super::POINTS.contains(&name),
            "crash point {name} is missing from crash::POINTS"
        );
        let s = setup();
        let n = {
            let mut c = s.counts.lock().unwrap_or_else(|e| e.into_inner());
            let n = c.entry(name).or_insert(0);
            *n += 1;
            *n
        };
        if let Some(log) = &s.log {
            let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(format!("{name}\n").as_bytes());
        }
        let matches = |t: Option<&(String, u64)>| t.is_some_and(|(p, k)| p == name && *k == n);
        if matches(s.crash.as_ref()) {
            let _ = kill_process(getpid(), Signal::KILL);
        }
        if s.pause.iter().any(|t| matches(Some(t))) {
            // the test resumes us with SIGCONT
            let _ = kill_process(getpid(), Signal::STOP);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The registry and the `crash_point!` calls in `src/` name the same points.
    #[test]
    fn registry_matches_the_source() {
        let mut used = BTreeSet::new();
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut dirs = vec![src];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") && !p.ends_with("crash.rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for part in text.split("crash_point!(\"").skip(1) {
                        used.insert(part.split('"').next().unwrap().to_string());
                    }
                }
            }
        }
        let listed: BTreeSet<String> = super::POINTS.iter().map(|s| s.to_string()).collect();
        assert_eq!(used, listed, "crash_point! calls vs crash::POINTS");
    }
}
