//! The daemon's figures of issue 9, each next to its baseline measured in the same run:
//! throughput against two threads of the raw hasher, cheap replies against a bare Unix-socket
//! echo, a locked account through pamtester against pam_faillock, memory, enumeration timing and
//! login latency next to pam_unix. Prints one table; asserts nothing.
//!
//! Run with `make bench` (which builds the release binaries first). Parts that need root
//! (pamtester services in /etc/pam.d, a throwaway pam_unix user) print why they are skipped.

use std::io::Write;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::bins;
use credd_e2e::system_pam::{SystemService, have};
use credd_proto::Client;
use credd_proto::{AuthRequest, Reply, Request, Secret};
use credd_proto::{decode_reply, encode_reply, encode_request, read_frame, write_frame};

const PASSWORD: &str = "benchmark passphrase 1";
const ITERATIONS: u32 = 600_000;

fn config() -> String {
    // Locks and rate limits off: the enumeration and throughput runs repeat wrong and right
    // passwords far past them. bob is locked by an administrator instead (no counting needed).
    format!(
        "[hashing]\niterations = {ITERATIONS}\n\
         [lockout]\ndeny = 0\n\
         [rate]\naccount = {{ burst = 0, per_minute = 0 }}\nhost = {{ burst = 0, per_minute = 0 }}\n\
         local_uid = {{ burst = 0, per_minute = 0 }}\n\
         [limits]\nmax_connections = 4096\nmax_connections_per_uid = 2048\nhash_queue = 512\n\
         idle_timeout = \"120s\"\n\
         [audit]\nsyslog = \"none\"\n"
    )
}

fn auth(user: &str, secret: &str) -> Request {
    Request::Authenticate(AuthRequest {
        user: user.into(),
        secret: Secret::new(secret.into()),
        service: "bench".into(),
        rhost: None,
        tty: None,
        ruser: None,
    })
}

/// One full round trip as a PAM module does it: connect, request, reply.
fn round_trip(socket: &Path, request: &[u8]) -> Reply {
    let mut stream = UnixStream::connect(socket).expect("connect");
    write_frame(&mut stream, request).expect("write");
    let body = read_frame(&mut stream).expect("read").expect("a reply");
    decode_reply(&body).expect("decode")
}

/// The floor for a round trip: a server that reads one frame and answers a fixed one.
fn echo_server(dir: &Path) -> PathBuf {
    let path = dir.join("echo.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let reply = encode_reply(&Reply::Locked {
        until: None,
        unknown: false,
    })
    .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                if let Ok(Some(_)) = read_frame(&mut stream) {
                    let _ = write_frame(&mut stream, &reply);
                }
            });
        }
    });
    path
}

struct Latency {
    p50: Duration,
    p99: Duration,
}

fn percentiles(mut samples: Vec<Duration>) -> Latency {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Latency {
        p50: at(0.50),
        p99: at(0.99),
    }
}

/// Round trips from `clients` threads at once, `per_client` each.
fn latencies(socket: &Path, request: &[u8], clients: usize, per_client: usize) -> Latency {
    let barrier = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let socket = socket.to_path_buf();
            let request = request.to_vec();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                (0..per_client)
                    .map(|_| {
                        let start = Instant::now();
                        std::hint::black_box(round_trip(&socket, &request));
                        start.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    percentiles(
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect(),
    )
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Two threads of the raw hasher: the ceiling for authentications per second on 2 cores.
fn raw_hasher_per_s(seconds: f64) -> f64 {
    let done = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                while start.elapsed().as_secs_f64() < seconds {
                    let mut out = [0u8; 32];
                    credd::crypto::kdf::pbkdf2_hmac_sha256(
                        b"x",
                        b"saltsaltsaltsalt",
                        ITERATIONS,
                        &mut out,
                    );
                    std::hint::black_box(out);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Authentications per second through the daemon with `clients` concurrent PAM-like clients.
fn daemon_auth_per_s(socket: &Path, clients: usize, seconds: f64) -> (f64, u64) {
    let request = encode_request(&auth("alice", PASSWORD)).unwrap().to_vec();
    let done = AtomicU64::new(0);
    let busy = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                while start.elapsed().as_secs_f64() < seconds {
                    match round_trip(socket, &request) {
                        Reply::Ok => done.fetch_add(1, Ordering::Relaxed),
                        Reply::Busy => busy.fetch_add(1, Ordering::Relaxed),
                        other => panic!("unexpected reply {other:?}"),
                    };
                }
            });
        }
    });
    (
        done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64(),
        busy.load(Ordering::Relaxed),
    )
}

/// Median wall time of `runs` pamtester processes.
/// Whole pamtester processes of two services, alternated run by run so that a spike of load
/// (2 cores, other work) falls on both alike: the medians of each.
fn pamtester_pair_ms(
    a: (&SystemService, &str, &str),
    b: (&SystemService, &str, &str),
    runs: usize,
) -> (Duration, Duration) {
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    pamtester_ms(a.0, a.1, a.2, 0);
    pamtester_ms(b.0, b.1, b.2, 0);
    for i in 0..runs {
        // Which goes first alternates too.
        if i % 2 == 0 {
            ta.push(pamtester_ms(a.0, a.1, a.2, 1));
            tb.push(pamtester_ms(b.0, b.1, b.2, 1));
        } else {
            tb.push(pamtester_ms(b.0, b.1, b.2, 1));
            ta.push(pamtester_ms(a.0, a.1, a.2, 1));
        }
    }
    (median(ta), median(tb))
}

/// The median of `runs` whole pamtester processes after one warm-up run (`runs` 0: the warm-up
/// alone, timed).
fn pamtester_ms(service: &SystemService, user: &str, answer: &str, runs: usize) -> Duration {
    let once = || {
        let start = Instant::now();
        let mut child = Command::new("pamtester")
            .args([service.name.as_str(), user, "authenticate"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pamtester");
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{answer}\n").as_bytes());
        child.wait().unwrap();
        start.elapsed()
    };
    let warm = once();
    if runs == 0 {
        return warm;
    }
    median((0..runs).map(|_| once()).collect())
}

fn main() {
    let mut d = TestDaemon::start_with(&config());
    let work = tempfile::tempdir().unwrap();
    d.add_user("alice", PASSWORD, &[]);
    d.add_user("bob", PASSWORD, &[]);
    let out = d.ctl(&["lock", "bob"]);
    assert!(out.status.success(), "lock bob");
    let socket = d.pam_socket();
    let echo = echo_server(work.path());
    let locked = encode_request(&auth("bob", "whatever")).unwrap().to_vec();
    assert!(matches!(round_trip(&socket, &locked), Reply::Locked { .. }));

    println!(
        "credd daemon benchmarks: release build, {ITERATIONS} iterations, {} cores",
        num_cores()
    );
    println!();
    println!("| figure | credd | baseline (same run) | ratio |");
    println!("|---|---|---|---|");

    // 2. Throughput.
    let raw = raw_hasher_per_s(6.0);
    let (through, busy) = daemon_auth_per_s(&socket, 16, 6.0);
    println!(
        "| authentications/s, 16 concurrent clients | {through:.1} | two threads of the raw hasher: {raw:.1} | {:.3} |",
        through / raw
    );
    if busy > 0 {
        println!("|  (busy replies during the run) | {busy} | | |");
    }

    // 3. Cheap paths against the echo floor.
    for clients in [1usize, 64] {
        let per = if clients == 1 { 2000 } else { 50 };
        let floor = latencies(&echo, &locked, clients, per);
        let ours = latencies(&socket, &locked, clients, per);
        println!(
            "| locked-account round trip p50, {clients} client(s) | {:.0} µs | echo: {:.0} µs | {:.2} |",
            us(ours.p50),
            us(floor.p50),
            us(ours.p50) / us(floor.p50)
        );
        println!(
            "| locked-account round trip p99, {clients} client(s) | {:.0} µs | echo: {:.0} µs | {:.2} |",
            us(ours.p99),
            us(floor.p99),
            us(ours.p99) / us(floor.p99)
        );
    }
    // The same while the hashing pool is saturated by 16 authenticating clients.
    let stop = Arc::new(AtomicBool::new(false));
    let hashers: Vec<_> = (0..16)
        .map(|_| {
            let socket = socket.clone();
            let stop = Arc::clone(&stop);
            let request = encode_request(&auth("alice", PASSWORD)).unwrap().to_vec();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    round_trip(&socket, &request);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300)); // let the pool fill: a load, not a sync
    for clients in [1usize, 64] {
        let per = if clients == 1 { 1000 } else { 30 };
        let floor = latencies(&echo, &locked, clients, per);
        let ours = latencies(&socket, &locked, clients, per);
        println!(
            "| same, pool saturated, p50, {clients} client(s) | {:.0} µs | echo: {:.0} µs | {:.2} |",
            us(ours.p50),
            us(floor.p50),
            us(ours.p50) / us(floor.p50)
        );
        println!(
            "| same, pool saturated, p99, {clients} client(s) | {:.0} µs | echo: {:.0} µs | {:.2} |",
            us(ours.p99),
            us(floor.p99),
            us(ours.p99) / us(floor.p99)
        );
    }
    stop.store(true, Ordering::Relaxed);
    for h in hashers {
        let _ = h.join();
    }

    // 6. Enumeration: unknown name vs wrong password, interleaved.
    let unknown = encode_request(&auth("no-such-user", "wrong password"))
        .unwrap()
        .to_vec();
    let wrong = encode_request(&auth("alice", "wrong password"))
        .unwrap()
        .to_vec();
    let (mut tu, mut tw) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        for (req, into) in [(&unknown, &mut tu), (&wrong, &mut tw)] {
            let start = Instant::now();
            round_trip(&socket, req);
            into.push(start.elapsed());
        }
    }
    let (mu, mw) = (median(tu), median(tw));
    println!(
        "| unknown user reply, median of 30 | {:.1} ms | wrong password: {:.1} ms | {:.3} |",
        ms(mu),
        ms(mw),
        ms(mu) / ms(mw)
    );

    // 4. Memory, idle and with 1 000 idle connections.
    let pid = d.pid();
    let idle = rss_kib(pid);
    let held: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(&socket).unwrap())
        .collect();
    // Each connection has a thread once accepted; a ping on the last one proves the backlog is
    // through.
    let mut probe = Client::connect(&socket, Duration::from_secs(10)).unwrap();
    assert!(matches!(probe.call(&Request::Ping), Ok(Reply::Pong { .. })));
    let loaded = rss_kib(pid);
    drop(held);
    println!(
        "| daemon RSS idle | {:.1} MiB | goal 16 MiB | {:.2} |",
        idle as f64 / 1024.0,
        idle as f64 / 1024.0 / 16.0
    );
    println!(
        "| daemon RSS, 1 000 idle connections | {:.1} MiB | goal 64 MiB | {:.2} |",
        loaded as f64 / 1024.0,
        loaded as f64 / 1024.0 / 64.0
    );

    // 3 (end) and the login latency: whole pamtester processes, root only.
    if !bins::is_root() || !have("pamtester") {
        println!();
        println!(
            "pamtester figures skipped: they need root and pamtester (services in /etc/pam.d)"
        );
    } else {
        pam_process_figures(&d, work.path());
    }
    d.stop();
}

fn pam_process_figures(d: &TestDaemon, work: &Path) {
    let module = d.public_copy(&bins::pam_module());
    let credd_svc = SystemService::install(&[d.module_line_for(&module, "auth", "required", "")]);
    // The module alone: loaded, asked, and failing at once on a socket that does not exist.
    let unreachable = SystemService::install(&[format!(
        "auth required {} socket={}/no-such.sock nodelay",
        module.display(),
        work.display()
    )]);

    // pam_faillock with its own tally directory: one failure locks `nobody` (deny=1).
    let tally = work.join("faillock");
    std::fs::create_dir(&tally).unwrap();
    let faillock = SystemService::install(&[
        format!(
            "auth requisite pam_faillock.so preauth nodelay deny=1 dir={}",
            tally.display()
        ),
        "auth [success=1 default=ignore] pam_unix.so nodelay".to_string(),
        format!(
            "auth [default=die] pam_faillock.so authfail deny=1 dir={}",
            tally.display()
        ),
        "auth required pam_deny.so".to_string(),
    ]);
    pamtester_ms(&faillock, "nobody", "wrong", 1); // records the failure that locks
    let (credd_locked, faillock_locked) = pamtester_pair_ms(
        (&credd_svc, "bob", "whatever"),
        (&faillock, "nobody", "wrong"),
        60,
    );
    let (module_alone, faillock_again) = pamtester_pair_ms(
        (&unreachable, "bob", "whatever"),
        (&faillock, "nobody", "wrong"),
        60,
    );
    println!(
        "| module loaded and failing without a daemon, through pamtester (process) | {:.1} ms | pam_faillock preauth nodelay: {:.1} ms | {:.2} |",
        ms(module_alone),
        ms(faillock_again),
        ms(module_alone) / ms(faillock_again)
    );
    println!(
        "| locked account through pamtester (process) | {:.1} ms | pam_faillock preauth nodelay: {:.1} ms | {:.2} |",
        ms(credd_locked),
        ms(faillock_locked),
        ms(credd_locked) / ms(faillock_locked)
    );

    // Login latency at the configured iterations next to pam_unix with the system's yescrypt.
    let credd_login = pamtester_ms(&credd_svc, "alice", PASSWORD, 15);
    let user = "credd-bench-unix";
    let _ = Command::new("userdel").arg(user).output();
    let made = Command::new("useradd")
        .args(["-M", "-s", "/usr/sbin/nologin", user])
        .status();
    if made.is_ok_and(|s| s.success()) {
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        chpasswd
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{user}:{PASSWORD}\n").as_bytes())
            .unwrap();
        chpasswd.wait().unwrap();
        let unix = SystemService::install(&["auth required pam_unix.so nodelay".to_string()]);
        let unix_login = pamtester_ms(&unix, user, PASSWORD, 15);
        let _ = Command::new("userdel").arg(user).output();
        println!(
            "| successful login through pamtester (process) | {:.1} ms | pam_unix, yescrypt: {:.1} ms | {:.2} |",
            ms(credd_login),
            ms(unix_login),
            ms(credd_login) / ms(unix_login)
        );
    } else {
        println!(
            "| successful login through pamtester (process) | {:.1} ms | pam_unix: useradd failed | |",
            ms(credd_login)
        );
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
