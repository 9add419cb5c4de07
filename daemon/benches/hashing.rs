//! PBKDF2-HMAC-SHA256 against its floor, side by side in one run (issue 9).
//!
//! - floor: 2 SHA-256 block compressions per iteration, as a bare loop of `compress256`;
//! - credd: `credd::crypto::kdf` (the daemon's hasher);
//! - the `pbkdf2` crate over `sha2` (the reference in the tests);
//! - OpenSSL, through Python's `hashlib.pbkdf2_hmac`;
//! - two threads of credd's hasher (the daemon's throughput ceiling on 2 cores).
//!
//! Run with `make bench` (or `cargo bench -p credd --bench hashing`). Prints ratios; asserts
//! nothing. `CREDD_BENCH_ITERATIONS` (default 600000) and `CREDD_BENCH_RUNS` (default 7) change
//! the workload.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::Sha256;

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn time_runs(runs: u32, mut f: impl FnMut()) -> Duration {
    f(); // warm-up: page in code, settle the clock
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// OpenSSL's PBKDF2 through Python, timed inside Python so the interpreter's start is excluded.
fn openssl_ms(iterations: u32, runs: u32) -> Option<f64> {
    let script = format!(
        "import hashlib,time,statistics\n\
         hashlib.pbkdf2_hmac('sha256', b'warm', b'saltsaltsaltsalt', 1000, 32)\n\
         t=[]\n\
         for _ in range({runs}):\n\
         \x20   s=time.perf_counter(); hashlib.pbkdf2_hmac('sha256', b'correct horse battery', b'saltsaltsaltsalt', {iterations}, 32); t.append(time.perf_counter()-s)\n\
         print(statistics.median(t)*1000)\n"
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let iterations = env_or("CREDD_BENCH_ITERATIONS", 600_000);
    let runs = env_or("CREDD_BENCH_RUNS", 7);
    let password = b"correct horse battery";
    let salt = b"saltsaltsaltsalt";

    let floor = time_runs(runs, || {
        let mut state = [0x6a09e667u32; 8];
        let mut block = [0u8; 64];
        for i in 0..iterations {
            block[0] = i as u8;
            credd::crypto::kdf::compress_once(&mut state, &block);
            block[1] = state[0] as u8;
            credd::crypto::kdf::compress_once(&mut state, &block);
        }
        black_box(state);
    });
    // The same count of compressions kept in registers (the SHA-extension code path only).
    #[cfg(target_arch = "x86_64")]
    let register_floor = credd::crypto::kdf::accelerated().then(|| {
        time_runs(runs, || {
            // SAFETY: accelerated() checked the CPU features.
            black_box(unsafe { credd::crypto::kdf_shani::compressions_floor(iterations) });
        })
    });
    #[cfg(not(target_arch = "x86_64"))]
    let register_floor: Option<Duration> = None;
    let ours = time_runs(runs, || {
        let mut out = [0u8; 32];
        credd::crypto::kdf::pbkdf2_hmac_sha256(password, salt, iterations, &mut out);
        black_box(out);
    });
    let crate_ref = time_runs(runs, || {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
        black_box(out);
    });
    let openssl = openssl_ms(iterations, runs);
    // Two threads, each hashing `runs` times: hashes per second with both cores busy.
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..runs {
                    let mut out = [0u8; 32];
                    credd::crypto::kdf::pbkdf2_hmac_sha256(password, salt, iterations, &mut out);
                    black_box(out);
                }
            });
        }
    });
    let two_threads_per_s = f64::from(2 * runs) / start.elapsed().as_secs_f64();

    let sha_ni = std::arch::is_x86_feature_detected!("sha");
    println!(
        "PBKDF2-HMAC-SHA256, {iterations} iterations, median of {runs} runs, one core \
         (CPU SHA extensions: {})",
        if sha_ni { "yes" } else { "no" }
    );
    println!("| what | ms per hash | vs floor |");
    println!("|---|---|---|");
    let row = |name: &str, v: f64| println!("| {name} | {v:.1} | {:.2} |", v / ms(floor));
    row(
        "floor: 2 compressions per iteration (sha2 compress256 calls)",
        ms(floor),
    );
    if let Some(rf) = register_floor {
        println!(
            "| floor: 2 compressions per iteration, state in registers (SHA-NI) | {:.1} | {:.2} |",
            ms(rf),
            ms(rf) / ms(floor)
        );
    }
    row("credd (credd::crypto::kdf)", ms(ours));
    row("pbkdf2 crate + sha2", ms(crate_ref));
    match openssl {
        Some(v) => row("OpenSSL (python3 hashlib.pbkdf2_hmac)", v),
        None => println!("| OpenSSL (python3 hashlib.pbkdf2_hmac) | not run: python3 missing | |"),
    }
    println!();
    if let Some(rf) = register_floor {
        println!(
            "credd / register floor: {:.3} (goal: within 1.15)",
            ms(ours) / ms(rf)
        );
    }
    if let Some(v) = openssl {
        println!(
            "credd is {:.2}x faster than OpenSSL (goal: at least 2.5x)",
            v / ms(ours)
        );
    }
    println!(
        "two threads of credd's hasher: {two_threads_per_s:.1} hashes/s \
         ({:.2}x one thread)",
        two_threads_per_s * ms(ours) / 1e3
    );
    println!(
        "comparison command: python3 -c \"import hashlib; \
         hashlib.pbkdf2_hmac('sha256', b'correct horse battery', b'saltsaltsaltsalt', {iterations}, 32)\""
    );
}
