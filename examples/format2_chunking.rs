//! Remote format 2's chunking figures (issue 16), run by `bench/chunking.sh`:
//!
//! - chunking + blake3 throughput on one core, over a 1 GiB pseudo-random file read from disk;
//! - bytes of new chunks after the edits to that file (what a push would upload,
//!   before pack and index overhead): 1 MiB overwritten in the middle, 1 MiB inserted, 10 MB
//!   appended, 100 scattered 4 KiB edits.
//!
//! `cargo run --release --example format2_chunking -- [SIZE_MIB] [DIR]` (default 1024 MiB, a
//! temporary directory). Prints a Markdown table on stdout; nothing is timed in a test.

use std::collections::HashSet;
use std::io::Write;
use std::time::Instant;

use mlv::hash::Digest;
use mlv::remote::format2::{Chunker, DEFAULT_PARAMS};

const MIB: usize = 1 << 20;

/// Deterministic pseudo-random bytes (splitmix64), the same on every machine.
fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CPU time of this thread, in seconds: unlike wall time, not inflated by other processes
/// sharing the cores.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn chunk_ids(data: &[u8]) -> Vec<(Digest, u64)> {
    Chunker::new(data, DEFAULT_PARAMS)
        .expect("default parameters are valid")
        .map(|c| c.map(|c| (c.id, u64::from(c.length))))
        .collect::<std::io::Result<_>>()
        .expect("reading memory")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let size_mib: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = args
        .get(2)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let size = size_mib * MIB;
    let base = pseudo_random(2026, size);
    let path = dir.join("format2-chunking.bin");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(&base))
        .expect("writing the input file");

    // throughput: best of three passes over the file (from the page cache), one thread
    let (mut best, mut best_cpu) = (f64::MAX, f64::MAX);
    let mut chunks = 0;
    for _ in 0..3 {
        let file = std::fs::File::open(&path).expect("opening the input file");
        let (start, cpu) = (Instant::now(), thread_cpu());
        chunks = 0;
        for c in Chunker::new(file, DEFAULT_PARAMS).expect("valid parameters") {
            c.expect("reading the input file");
            chunks += 1;
        }
        best = best.min(start.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu() - cpu);
    }
    std::fs::remove_file(&path).ok();
    let mb_s = size as f64 / 1e6 / best;
    let mb_cpu_s = size as f64 / 1e6 / best_cpu;
    // blake3 alone, one thread, for comparison
    let start = Instant::now();
    let mut h = blake3::Hasher::new();
    h.update(&base);
    let _ = h.finalize();
    let b3 = size as f64 / 1e6 / start.elapsed().as_secs_f64();

    let known: HashSet<Digest> = chunk_ids(&base).into_iter().map(|(id, _)| id).collect();
    let new_bytes = |edited: &[u8]| -> (u64, usize) {
        let mut seen = HashSet::new();
        let mut bytes = 0;
        for (id, len) in chunk_ids(edited) {
            if !known.contains(&id) && seen.insert(id) {
                bytes += len;
            }
        }
        (bytes, seen.len())
    };
    let mid = size / 2;
    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    let mut over = base.clone();
    over[mid..mid + MIB].copy_from_slice(&pseudo_random(1, MIB));
    cases.push(("1 MiB overwritten in the middle", over, "<= 2 MiB"));
    let mut ins = Vec::with_capacity(size + MIB);
    ins.extend_from_slice(&base[..mid]);
    ins.extend_from_slice(&pseudo_random(2, MIB));
    ins.extend_from_slice(&base[mid..]);
    cases.push(("1 MiB inserted in the middle", ins, "<= 2 MiB"));
    let mut app = base.clone();
    app.extend_from_slice(&pseudo_random(3, 10_000_000));
    cases.push(("10 MB appended", app, "<= 11 MiB"));
    let mut scat = base.clone();
    let spots = pseudo_random(4, 800);
    for i in 0..100 {
        let r = u64::from_le_bytes(spots[i * 8..i * 8 + 8].try_into().expect("8 bytes")) as usize;
        let at = r % (size - 4096);
        scat[at..at + 4096].copy_from_slice(&pseudo_random(100 + i as u64, 4096));
    }
    cases.push(("100 scattered 4 KiB edits", scat, "<= 48 MiB"));

    println!("# remote format 2 chunking: {size_mib} MiB pseudo-random file");
    println!();
    println!(
        "parameters: FastCDC v2020 (fastcdc =5.0.0) min/avg/max {}/{}/{} KiB, files above {} MiB",
        DEFAULT_PARAMS.min_size >> 10,
        DEFAULT_PARAMS.avg_size >> 10,
        DEFAULT_PARAMS.max_size >> 10,
        DEFAULT_PARAMS.threshold >> 20
    );
    println!();
    println!("| measure | value | target |");
    println!("| --- | --- | --- |");
    println!(
        "| chunking + blake3 (file read included), one thread, wall time | {mb_s:.0} MB/s | >= 500 MB/s |"
    );
    println!("| chunking + blake3 (file read included), per CPU second of that thread | {mb_cpu_s:.0} MB/s | >= 500 MB/s |");
    println!("| blake3 alone, one thread | {b3:.0} MB/s | |");
    println!(
        "| chunks | {chunks} (mean {:.0} KiB) | |",
        size as f64 / chunks as f64 / 1024.0
    );
    for (what, data, target) in &cases {
        let (bytes, n) = new_bytes(data);
        println!(
            "| new chunk bytes: {what} | {:.2} MiB in {n} chunks | {target} |",
            bytes as f64 / MIB as f64
        );
    }
}
