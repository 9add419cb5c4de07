//! `attacker`: a hostile local client of credd's sockets, run by the attack tests as an
//! unprivileged user (`runuser -u nobody -- attacker ...`).
//!
//! Usage: `attacker MODE SOCKET [ARGS...]`. Prints one line per attempt, `MODE: OUTCOME`, where
//! OUTCOME is one of
//!
//! - `reply NAME` — the daemon answered with that reply (`unknown_user`, `denied`, `busy`, ...);
//!   `reply locked unknown=BOOL`, `reply rate_limited unknown=BOOL`; `reply error KIND` for errors;
//! - `closed` — the daemon closed the connection without (further) answer;
//! - `connect-error KIND` — the connection itself was refused (e.g. `PermissionDenied`);
//! - `timeout` — nothing came back in time;
//!
//! and a few mode-specific summary lines documented with each mode. Exit status 0 unless the
//! arguments were wrong: the test decides from the lines what was refused.
//!
//! Modes:
//!
//! - `auth SOCKET USER SECRET COUNT`: COUNT authentications (a `{i}` in USER becomes the attempt
//!   number, so that every attempt can name a different account).
//! - `change-check SOCKET USER OLD`, `change SOCKET USER OLD NEW`: a password change's check and
//!   the change itself (`-` as OLD sends no old secret).
//! - `session-open SOCKET USER`, `session-close SOCKET USER`, `sessions SOCKET USER`.
//! - `connect SOCKET`: connect and ping (for admin.sock).
//! - `oversized SOCKET`, `truncated SOCKET`, `garbage SOCKET`, `nested SOCKET`: broken frames.
//! - `pipeline SOCKET`: 100 pings written at once; prints `pipeline: pongs=N then closed`.
//! - `trickle SOCKET`: announces a 1000-byte frame and sends one byte every 100 ms; prints
//!   `trickle: closed after_ms=N bytes=B` (or `trickle: still open after_ms=N`).
//! - `flood SOCKET N`: opens N connections one after the other, each with a ping; prints
//!   `flood: open=A busy=B closed=C other=D`; keeps the open ones alive (a ping every
//!   `KEEPALIVE`, from the first one on) until its standard input closes, then prints
//!   `flood: extra OUTCOME` for one more connection and `flood: held=H` (open connections still
//!   answering).
//! - `write-flood SOCKET SECONDS USER`: for SECONDS, as fast as it can, alternates an
//!   administrative request (a user listing, refused on pam.sock) followed by a ping on the same
//!   connection, and a wrong password for USER; prints `write-flood: requests=N OUTCOME=COUNT ...`
//!   with the outcome of every reply (`after-admin OUTCOME` for the ping after a refusal).
//! - `timing SOCKET N UNKNOWN KNOWN SECRET`: N authentications of each name, interleaved (the
//!   order alternates), each on a new connection; prints `timing unknown|known MICROS REPLY`.
//!   SECRET `-`: account checks (acct_mgmt) instead of authentications.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credd_proto::{
    AuthRequest, ChangeRequest, MAX_FRAME, Reply, Request, Secret, SessionRequest, decode_reply,
    encode_request, read_frame, write_frame,
};

const TIMEOUT: Duration = Duration::from_secs(20);
/// Below any idle timeout the tests configure (2 s and up); at 64 requests per connection, a
/// flood holds its connections for about 45 s.
const KEEPALIVE: Duration = Duration::from_millis(700);

fn connect(socket: &str) -> Result<UnixStream, String> {
    match UnixStream::connect(socket) {
        Ok(s) => {
            s.set_read_timeout(Some(TIMEOUT)).unwrap();
            s.set_write_timeout(Some(TIMEOUT)).unwrap();
            Ok(s)
        }
        Err(e) => Err(format!("connect-error {:?}", e.kind())),
    }
}

fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Error { kind, .. } => format!("reply error {}", kind.as_str()),
        Reply::Locked { unknown, .. } => format!("reply locked unknown={unknown}"),
        Reply::RateLimited { unknown, .. } => format!("reply rate_limited unknown={unknown}"),
        other => format!("reply {}", other.name()),
    }
}

/// Reads one reply frame and describes it.
fn read_outcome(s: &mut UnixStream) -> String {
    match read_frame(s) {
        Ok(Some(body)) => match decode_reply(&body) {
            Ok(reply) => describe(&reply),
            Err(e) => format!("undecodable reply: {e}"),
        },
        Ok(None) => "closed".into(),
        Err(credd_proto::ProtoError::Timeout) => "timeout".into(),
        // ECONNRESET: the daemon closed with our bytes unread.
        Err(_) => "closed".into(),
    }
}

/// One request on a fresh connection; the outcome line's text.
fn one_request(socket: &str, req: &Request) -> String {
    let mut s = match connect(socket) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let body = encode_request(req).expect("encode request");
    if write_frame(&mut s, &body).is_err() {
        // Refused at admission: the answer may already wait in our receive buffer.
        return read_outcome(&mut s);
    }
    read_outcome(&mut s)
}

/// Writes raw bytes on a fresh connection and reports the reply, then whether it closed.
fn raw_attempt(socket: &str, bytes: &[u8], shutdown_write: bool) -> (String, String) {
    let mut s = match connect(socket) {
        Ok(s) => s,
        Err(e) => return (e, String::new()),
    };
    let _ = s.write_all(bytes);
    if shutdown_write {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let first = read_outcome(&mut s);
    let then = if first == "closed" {
        String::new()
    } else {
        read_outcome(&mut s)
    };
    (first, then)
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn auth(user: &str, secret: &str) -> Request {
    Request::Authenticate(AuthRequest {
        user: user.into(),
        secret: Secret::new(secret.into()),
        service: "attacker".into(),
        rhost: Some("198.51.100.66".into()),
        tty: None,
        ruser: None,
    })
}

fn change(user: &str, old: &str, new: Option<&str>) -> ChangeRequest {
    ChangeRequest {
        user: user.into(),
        service: "attacker".into(),
        old: (old != "-").then(|| Secret::new(old.into())),
        new: new.map(|n| Secret::new(n.into())),
    }
}

fn session(user: &str) -> SessionRequest {
    SessionRequest {
        user: user.into(),
        service: "attacker".into(),
        tty: Some("pts/66".into()),
        rhost: None,
    }
}

fn ping_frame() -> Vec<u8> {
    framed(&encode_request(&Request::Ping).unwrap())
}

/// A sequence of bytes that is not JSON and not UTF-8 (a fixed xorshift, so runs repeat).
fn noise(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x & 0xff) as u8
        })
        .collect()
}

fn mode_flood(socket: &str, n: usize) {
    // The admitted connections are kept busy from the start (a ping every KEEPALIVE, the attack
    // itself, not synchronisation) until told to stop: standard input closes.
    let stop = Arc::new(AtomicBool::new(false));
    let conns: Arc<Mutex<Vec<UnixStream>>> = Arc::new(Mutex::new(Vec::new()));
    let keeper = {
        let stop = Arc::clone(&stop);
        let conns = Arc::clone(&conns);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(KEEPALIVE);
                let mut conns = conns.lock().unwrap();
                conns.retain_mut(|s| {
                    s.write_all(&ping_frame()).is_ok() && read_outcome(s) == "reply pong"
                });
            }
        })
    };
    let (mut admitted, mut busy, mut closed, mut other) = (0, 0, 0, 0);
    for _ in 0..n {
        let mut s = match connect(socket) {
            Ok(s) => s,
            Err(_) => {
                other += 1;
                continue;
            }
        };
        let _ = s.write_all(&ping_frame());
        match read_outcome(&mut s).as_str() {
            "reply pong" => {
                admitted += 1;
                conns.lock().unwrap().push(s);
            }
            "reply busy" => busy += 1,
            "closed" => closed += 1,
            _ => other += 1,
        }
    }
    println!("flood: open={admitted} busy={busy} closed={closed} other={other}");
    std::io::stdout().flush().unwrap();

    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    stop.store(true, Ordering::SeqCst);
    keeper.join().unwrap();
    // The held connections still fill this uid's share: one more is refused.
    let extra = one_request(socket, &Request::Ping);
    println!("flood: extra {extra}");
    println!("flood: held={}", conns.lock().unwrap().len());
}

fn mode_trickle(socket: &str) {
    let mut s = match connect(socket) {
        Ok(s) => s,
        Err(e) => {
            println!("trickle: {e}");
            return;
        }
    };
    let start = Instant::now();
    let _ = s.write_all(&1000u32.to_be_bytes());
    let mut bytes = 0;
    while start.elapsed() < Duration::from_secs(30) {
        // One byte per 100 ms: the trickle is the attack.
        std::thread::sleep(Duration::from_millis(100));
        if s.write_all(b" ").is_err() {
            println!(
                "trickle: closed after_ms={} bytes={bytes}",
                start.elapsed().as_millis()
            );
            return;
        }
        bytes += 1;
    }
    println!(
        "trickle: still open after_ms={}",
        start.elapsed().as_millis()
    );
}

fn mode_pipeline(socket: &str) {
    let mut s = match connect(socket) {
        Ok(s) => s,
        Err(e) => {
            println!("pipeline: {e}");
            return;
        }
    };
    let all: Vec<u8> = (0..100).flat_map(|_| ping_frame()).collect();
    let _ = s.write_all(&all);
    let mut pongs = 0;
    loop {
        match read_outcome(&mut s).as_str() {
            "reply pong" => pongs += 1,
            last => {
                println!("pipeline: pongs={pongs} then {last}");
                return;
            }
        }
    }
}

fn mode_timing(socket: &str, n: usize, unknown: &str, known: &str, secret: &str) {
    let request = |user: &str| {
        if secret == "-" {
            Request::AccountCheck(credd_proto::AccountRequest {
                user: user.to_owned(),
                service: "attacker".into(),
            })
        } else {
            auth(user, secret)
        }
    };
    for i in 0..n {
        let order = if i % 2 == 0 {
            [("unknown", unknown), ("known", known)]
        } else {
            [("known", known), ("unknown", unknown)]
        };
        for (label, user) in order {
            let start = Instant::now();
            let outcome = one_request(socket, &request(user));
            let micros = start.elapsed().as_micros();
            let reply = outcome.strip_prefix("reply ").unwrap_or(&outcome);
            println!("timing {label} {micros} {reply}");
        }
    }
}

/// R1's flood: everything a local user can send that used to write a row, a syslog message or
/// a log line per request.
fn mode_write_flood(socket: &str, length: Duration, user: &str) {
    let mut outcomes: std::collections::BTreeMap<String, u64> = Default::default();
    let mut requests = 0u64;
    let end = Instant::now() + length;
    while Instant::now() < end {
        let mut s = match connect(socket) {
            Ok(s) => s,
            Err(e) => {
                *outcomes.entry(e).or_default() += 1;
                continue;
            }
        };
        let admin = encode_request(&Request::UserList).expect("encode");
        requests += 1;
        // A failed write may still have its answer waiting in the receive buffer: read either way.
        let _ = write_frame(&mut s, &admin);
        let first = read_outcome(&mut s);
        *outcomes.entry(first).or_default() += 1;
        // Is the connection still served after an administrative request on pam.sock?
        let ping = encode_request(&Request::Ping).expect("encode");
        let after = if write_frame(&mut s, &ping).is_ok() {
            read_outcome(&mut s)
        } else {
            "closed".into()
        };
        *outcomes.entry(format!("after-admin {after}")).or_default() += 1;
        requests += 1;
        let guess = one_request(socket, &auth(user, "a wrong guess"));
        *outcomes.entry(guess).or_default() += 1;
    }
    let summary: Vec<String> = outcomes
        .iter()
        .map(|(k, v)| format!("{}={v}", k.replace(' ', "_")))
        .collect();
    println!("write-flood: requests={requests} {}", summary.join(" "));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let (Some(mode), Some(socket)) = (arg(0), arg(1)) else {
        eprintln!("usage: attacker MODE SOCKET [ARGS...]");
        return ExitCode::from(2);
    };
    let usage = || {
        eprintln!("attacker {mode}: wrong arguments {args:?}");
        ExitCode::from(2)
    };
    match mode {
        "auth" => {
            let (Some(user), Some(secret), Some(count)) =
                (arg(2), arg(3), arg(4).and_then(|c| c.parse::<usize>().ok()))
            else {
                return usage();
            };
            for i in 0..count {
                let name = user.replace("{i}", &i.to_string());
                println!("auth: {}", one_request(socket, &auth(&name, secret)));
            }
        }
        "change-check" => {
            let (Some(user), Some(old)) = (arg(2), arg(3)) else {
                return usage();
            };
            let req = Request::ChangeCheck(change(user, old, None));
            println!("change-check: {}", one_request(socket, &req));
        }
        "change" => {
            let (Some(user), Some(old), Some(new)) = (arg(2), arg(3), arg(4)) else {
                return usage();
            };
            let req = Request::ChangePassword(change(user, old, Some(new)));
            println!("change: {}", one_request(socket, &req));
        }
        "session-open" | "session-close" | "sessions" => {
            let Some(user) = arg(2) else { return usage() };
            let req = match mode {
                "session-open" => Request::SessionOpen(session(user)),
                "session-close" => Request::SessionClose(session(user)),
                _ => Request::Sessions {
                    user: Some(user.into()),
                },
            };
            println!("{mode}: {}", one_request(socket, &req));
        }
        "connect" => println!("connect: {}", one_request(socket, &Request::Ping)),
        "oversized" => {
            for len in [u32::MAX, (MAX_FRAME + 1) as u32, 100_000] {
                // Only the prefix (and a little of the announced body) is ever sent.
                let mut bytes = len.to_be_bytes().to_vec();
                bytes.extend_from_slice(&[b'['; 1024]);
                let (first, then) = raw_attempt(socket, &bytes, false);
                println!("oversized {len}: {first}");
                println!("oversized {len}: then {then}");
            }
        }
        "truncated" => {
            // A prefix promising 100 bytes, 13 of them sent, then our side shuts.
            let mut bytes = 100u32.to_be_bytes().to_vec();
            bytes.extend_from_slice(br#"{"v":1,"req":"#);
            let (first, _) = raw_attempt(socket, &bytes, true);
            println!("truncated body: {first}");
            // Half a length prefix.
            let (first, _) = raw_attempt(socket, &[0, 0], true);
            println!("truncated prefix: {first}");
        }
        "garbage" => {
            let cases: Vec<(&str, Vec<u8>)> = vec![
                ("framed-noise", framed(&noise(4000))),
                ("framed-empty", framed(b"")),
                ("framed-not-json", framed(b"GET / HTTP/1.0")),
                (
                    "framed-json-not-request",
                    framed(br#"{"v":1,"req":{"hack":true}}"#),
                ),
                ("framed-nul", framed(&[0u8; 64])),
                // Unframed text: its first four bytes read as a length of about 1.2 GB.
                (
                    "raw-http",
                    b"GET / HTTP/1.0\r\nHost: credd\r\n\r\n".to_vec(),
                ),
                // Unframed noise (its first four bytes: some length, whatever they say).
                ("raw-noise", noise(300)),
            ];
            for (name, bytes) in cases {
                let (first, then) = raw_attempt(socket, &bytes, false);
                println!("garbage {name}: {first}");
                if !then.is_empty() {
                    println!("garbage {name}: then {then}");
                }
            }
        }
        "nested" => {
            // Each body is filled with opening brackets up to the largest frame (65 536 bytes).
            let cases: Vec<(&str, Vec<u8>)> = [
                ("top-level", &b""[..], &b"["[..]),
                ("in-req", &br#"{"v":1,"req":"#[..], &b"["[..]),
                ("in-ignored-field", &br#"{"x":"#[..], &b"["[..]),
                ("in-ignored-objects", &br#"{"x":"#[..], &br#"{"a":"#[..]),
                (
                    "in-rows",
                    &br#"{"v":1,"req":{"import_rows":{"rows":"#[..],
                    &b"["[..],
                ),
            ]
            .into_iter()
            .map(|(name, prefix, open)| {
                let mut body = prefix.to_vec();
                while body.len() + open.len() <= MAX_FRAME {
                    body.extend_from_slice(open);
                }
                (name, framed(&body))
            })
            .collect();
            for (name, bytes) in cases {
                let (first, then) = raw_attempt(socket, &bytes, false);
                println!("nested {name}: {first}");
                if !then.is_empty() {
                    println!("nested {name}: then {then}");
                }
            }
        }
        "pipeline" => mode_pipeline(socket),
        "trickle" => mode_trickle(socket),
        "flood" => {
            let Some(n) = arg(2).and_then(|n| n.parse().ok()) else {
                return usage();
            };
            mode_flood(socket, n);
        }
        "write-flood" => {
            let (Some(secs), Some(user)) = (arg(2).and_then(|n| n.parse().ok()), arg(3)) else {
                return usage();
            };
            mode_write_flood(socket, Duration::from_secs(secs), user);
        }
        "timing" => {
            let (Some(n), Some(unknown), Some(known), Some(secret)) =
                (arg(2).and_then(|n| n.parse().ok()), arg(3), arg(4), arg(5))
            else {
                return usage();
            };
            mode_timing(socket, n, unknown, known, secret);
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}
