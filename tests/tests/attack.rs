//! Issue 7, "Attack it": an unprivileged local user throws everything it can at credd's sockets
//! at once, while root keeps logging another user in through the real PAM module.
//!
//! Root only: the attacker runs as `nobody` (runuser), the connection flood as a second
//! unprivileged uid (setpriv), each through `attacker` (tests/src/bin/attacker.rs), which prints
//! one line per attempt. The assertions read those lines, the daemon's log, its counters and
//! `/proc/<pid>/status`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::bins::skip_unless_root;
use credd_e2e::libpam::{Conversation, PamStack, codes};
use credd_e2e::system_pam::have;
use credd_proto::{Client, PROTOCOL_VERSION, Reply, Request};
use serde_json::Value;

const VICTIM: &str = "victim";
const VICTIM_UID: &str = "5301";
const VICTIM_PASSWORD: &str = "a guarded passphrase 7301";
const ATTACKER_PASSWORD: &str = "an attacker's own passphrase";
const STOLEN_NEW_PASSWORD: &str = "the attacker's chosen passphrase";
/// A uid with no account anywhere, for the connection flood (see `flood_uid`).
const FLOOD_UID_CANDIDATES: [u32; 3] = [60999, 60998, 60997];
/// Connections the flood opens, one after the other: far more than the per-uid cap.
const FLOOD_CONNECTIONS: usize = 400;
/// `[limits] max_connections_per_uid`, the default, stated in the config below.
const PER_UID_CAP: usize = 16;
/// `[limits] idle_timeout` of this test, in seconds.
const IDLE_SECONDS: u64 = 2;
const RSS_BOUND_KIB: u64 = 256 * 1024;

fn config() -> String {
    // Lockout as shipped (deny = 5); the rate limits (the per-uid `requests` budget too: flood.rs
    // tests it) opened wide so that every attack attempt reaches the hashing pool (the harshest
    // case) and root's repeated logins of one account are
    // never rate-limited; a short idle timeout so that the trickle is cut off quickly.
    format!(
        "[hashing]\niterations = 2000\n\
         [audit]\nsyslog = \"none\"\n\
         [limits]\nmax_connections = 256\nmax_connections_per_uid = {PER_UID_CAP}\n\
         idle_timeout = \"{IDLE_SECONDS}s\"\n\
         [rate]\naccount = {{ burst = 100000, per_minute = 100000 }}\n\
         local_uid = {{ burst = 100000, per_minute = 100000 }}\n\
         requests = {{ burst = 100000, per_minute = 100000 }}\n"
    )
}

fn attacker_binary(d: &TestDaemon) -> PathBuf {
    d.public_copy(Path::new(env!("CARGO_BIN_EXE_attacker")))
}

/// A uid that neither NSS nor anything else knows: `getent passwd UID` finds nothing.
fn flood_uid() -> u32 {
    FLOOD_UID_CANDIDATES
        .into_iter()
        .find(|uid| {
            Command::new("getent")
                .args(["passwd", &uid.to_string()])
                .output()
                .is_ok_and(|o| o.stdout.is_empty())
        })
        .expect("a free uid for the flood")
}

/// `attacker ARGS...` as `nobody`.
fn as_nobody(attacker: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", "nobody", "--"]).arg(attacker).args(args);
    cmd
}

fn run(mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("run the attacker")
}

fn lines(out: &Output) -> Vec<String> {
    assert!(
        out.status.success(),
        "attacker failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `(VmRSS, VmHWM)` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn ctl_json(d: &TestDaemon, args: &[&str]) -> Value {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("credctl --json output")
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "sshd",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
            d.module_line("session", "required", ""),
        ],
    )
}

/// What root's repeated logins of the victim saw while the attacks ran.
struct Logins {
    failures: Vec<String>,
    succeeded: usize,
    slowest: Duration,
}

/// Logs the victim in (authenticate + acct_mgmt, through libpam and pam_credd.so, as root) until
/// `stop` is set, and at least `min` times.
fn keep_logging_in(
    d: &TestDaemon,
    stop: Arc<AtomicBool>,
    min: usize,
) -> thread::JoinHandle<Logins> {
    let lines = [
        d.module_line("auth", "required", ""),
        d.module_line("account", "required", ""),
    ];
    thread::spawn(move || {
        let stack = PamStack::new("sshd", &lines);
        let mut logins = Logins {
            failures: Vec::new(),
            succeeded: 0,
            slowest: Duration::ZERO,
        };
        let mut n = 0;
        while n < min || !stop.load(Ordering::SeqCst) {
            n += 1;
            let start = Instant::now();
            let conv = Conversation::new().answer(Some("Password: "), VICTIM_PASSWORD);
            let mut s = stack.start(VICTIM, conv).expect("pam_start");
            let auth = s.authenticate(0);
            let acct = if auth == codes::PAM_SUCCESS {
                s.acct_mgmt(0)
            } else {
                auth
            };
            logins.slowest = logins.slowest.max(start.elapsed());
            if auth == codes::PAM_SUCCESS && acct == codes::PAM_SUCCESS {
                logins.succeeded += 1;
            } else {
                logins.failures.push(format!(
                    "login {n}: authenticate {} acct_mgmt {} after {:?}",
                    codes::name(auth),
                    codes::name(acct),
                    start.elapsed()
                ));
            }
        }
        logins
    })
}

/// The flood: a second unprivileged uid opens `FLOOD_CONNECTIONS` connections and holds the ones
/// admitted until its standard input closes.
struct Flood {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Flood {
    fn start(attacker: &Path, socket: &Path, uid: u32) -> Flood {
        let mut child = Command::new("setpriv")
            .arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .arg("--clear-groups")
            .arg("--")
            .arg(attacker)
            .arg("flood")
            .arg(socket)
            .arg(FLOOD_CONNECTIONS.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("setpriv (util-linux)");
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Flood {
            child,
            stdin,
            stdout,
        }
    }

    /// Its first line, printed once every connection was tried (the readiness signal).
    fn first_line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("flood output");
        line.trim_end().to_owned()
    }

    /// Closes its standard input (the stop signal) and returns the rest of what it printed.
    fn finish(mut self) -> Vec<String> {
        drop(self.stdin.take());
        let rest: Vec<String> = (&mut self.stdout)
            .lines()
            .map(|l| l.expect("flood output"))
            .collect();
        assert!(self.child.wait().unwrap().success(), "{rest:?}");
        rest
    }
}

fn count(lines: &[String], wanted: &str) -> usize {
    lines.iter().filter(|l| *l == wanted).count()
}

#[test]
fn attacks_from_an_unprivileged_user_are_refused_while_root_logins_keep_working() {
    let test = "attacks_from_an_unprivileged_user_are_refused_while_root_logins_keep_working";
    if skip_unless_root(test) {
        return;
    }
    assert!(
        have("runuser") && have("setpriv") && have("getent"),
        "runuser, setpriv and getent (util-linux, libc-bin) are needed"
    );
    let mut d = TestDaemon::start_with(&config());
    d.add_user(VICTIM, VICTIM_PASSWORD, &["--uid", VICTIM_UID]);
    // The attacker's own account (nobody's uid, from NSS).
    d.add_user("nobody", ATTACKER_PASSWORD, &[]);
    let attacker = attacker_binary(&d);
    let pam = d.pam_socket();
    let pam = pam.to_str().unwrap();
    let admin = d.admin_socket();
    let admin = admin.to_str().unwrap();

    // The victim is logged in: a session the attacker will try to close.
    let victim_stack = stack(&d);
    let conv = Conversation::new().answer(Some("Password: "), VICTIM_PASSWORD);
    let mut victim_session = victim_stack.start(VICTIM, conv).unwrap();
    assert_eq!(victim_session.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(victim_session.open_session(0), codes::PAM_SUCCESS);
    let sessions = ctl_json(&d, &["sessions", VICTIM, "--json"]);
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");

    let pid = d.pid();
    let (rss_before, _) = memory_kib(pid);
    let verifications_before = ctl_json(&d, &["status", "--daemon", "--json"])["verifications"]
        .as_u64()
        .unwrap();

    // 1. A second unprivileged uid takes every connection its cap allows, and holds them.
    let mut flood = Flood::start(&attacker, &d.pam_socket(), flood_uid());
    let flood_first = flood.first_line();
    eprintln!("attack: {flood_first}");
    assert_eq!(
        flood_first,
        format!(
            "flood: open={PER_UID_CAP} busy={} closed=0 other=0",
            FLOOD_CONNECTIONS - PER_UID_CAP
        ),
        "the per-uid connection cap must admit exactly {PER_UID_CAP}"
    );

    // 2. Root logs the victim in, over and over, for as long as the attacks run.
    let stop = Arc::new(AtomicBool::new(false));
    let logins = keep_logging_in(&d, Arc::clone(&stop), 5);

    // 3. Everything else at once, as nobody: long loops in parallel, the one-shot attacks in a
    //    chain (a handful of nobody's connections at a time, well under its own cap).
    let attack_start = Instant::now();
    let mut parallel: Vec<(&str, Command)> = vec![
        (
            "right password of another account",
            as_nobody(&attacker, &["auth", pam, VICTIM, VICTIM_PASSWORD, "20"]),
        ),
        (
            "hashing load, distinct unknown names",
            as_nobody(&attacker, &["auth", pam, "ghost-a{i}", "some guess", "150"]),
        ),
        (
            "hashing load, more unknown names",
            as_nobody(
                &attacker,
                &["auth", pam, "ghost-b{i}", "other guess", "150"],
            ),
        ),
        ("trickle", as_nobody(&attacker, &["trickle", pam])),
    ];
    let chain: Vec<(&str, Vec<&str>)> = vec![
        (
            "change-check",
            vec!["change-check", pam, VICTIM, VICTIM_PASSWORD],
        ),
        (
            "change with the old password",
            vec!["change", pam, VICTIM, VICTIM_PASSWORD, STOLEN_NEW_PASSWORD],
        ),
        (
            "change without an old password",
            vec!["change", pam, VICTIM, "-", STOLEN_NEW_PASSWORD],
        ),
        (
            "own change without an old password",
            vec!["change", pam, "nobody", "-", STOLEN_NEW_PASSWORD],
        ),
        ("session-open", vec!["session-open", pam, VICTIM]),
        ("session-close", vec!["session-close", pam, VICTIM]),
        ("sessions", vec!["sessions", pam, VICTIM]),
        ("admin connect", vec!["connect", admin]),
        ("oversized", vec!["oversized", pam]),
        ("truncated", vec!["truncated", pam]),
        ("garbage", vec!["garbage", pam]),
        ("nested", vec!["nested", pam]),
        ("pipeline", vec!["pipeline", pam]),
    ];
    let chain_commands: Vec<(String, Command)> = chain
        .iter()
        .map(|(name, args)| (name.to_string(), as_nobody(&attacker, args)))
        .collect();
    let chain_thread = thread::spawn(move || {
        chain_commands
            .into_iter()
            .map(|(name, cmd)| (name, run(cmd)))
            .collect::<Vec<_>>()
    });
    let parallel_threads: Vec<_> = parallel
        .drain(..)
        .map(|(name, cmd)| (name, thread::spawn(move || run(cmd))))
        .collect();
    let mut results: Vec<(String, Output)> = parallel_threads
        .into_iter()
        .map(|(name, t)| (name.to_string(), t.join().unwrap()))
        .collect();
    results.extend(chain_thread.join().unwrap());
    let attack_time = attack_start.elapsed();
    let flood_rest = flood.finish();
    stop.store(true, Ordering::SeqCst);
    let logins = logins.join().unwrap();

    // The key property: every legitimate login during the attacks succeeded, and the daemon is
    // still there, in bounded memory.
    eprintln!(
        "attack: {} root logins of {VICTIM} during {:.1} s of attacks, slowest {:?}, failed {}",
        logins.succeeded,
        attack_time.as_secs_f64(),
        logins.slowest,
        logins.failures.len()
    );
    assert!(
        logins.failures.is_empty(),
        "legitimate logins failed during the attacks: {:?}",
        logins.failures
    );
    assert!(logins.succeeded >= 5, "only {} logins", logins.succeeded);
    assert!(d.is_running(), "credd died; log:\n{}", d.log().join("\n"));
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    assert_eq!(
        c.call(&Request::Ping).unwrap(),
        Reply::Pong {
            version: PROTOCOL_VERSION
        }
    );
    let (rss_after, hwm) = memory_kib(pid);
    let verifications = ctl_json(&d, &["status", "--daemon", "--json"])["verifications"]
        .as_u64()
        .unwrap()
        - verifications_before;
    eprintln!(
        "attack: credd VmRSS before {:.1} MiB, after {:.1} MiB, peak (VmHWM) {:.1} MiB; \
         {verifications} verifications during the attacks",
        mib(rss_before),
        mib(rss_after),
        mib(hwm)
    );
    assert!(
        rss_after < RSS_BOUND_KIB && hwm < RSS_BOUND_KIB,
        "credd's memory grew past {} MiB: VmRSS {rss_after} KiB, VmHWM {hwm} KiB",
        RSS_BOUND_KIB / 1024
    );

    // What the attacker got, attempt by attempt.
    let out = |name: &str| {
        let (_, output) = results
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no result for {name}"));
        lines(output)
    };
    let report = |name: &str| format!("{name}: {:?}", out(name));

    // Someone else's account, with its right password: answered as an unknown user (and after
    // `deny` attempts "locked" as an unknown name, as any unknown name is), never as a success.
    let stolen = out("right password of another account");
    assert_eq!(
        stolen.len(),
        20,
        "{}",
        report("right password of another account")
    );
    assert_eq!(stolen[0], "auth: reply unknown_user", "{stolen:?}");
    assert!(
        stolen
            .iter()
            .all(|l| l == "auth: reply unknown_user" || l == "auth: reply locked unknown=true"),
        "{stolen:?}"
    );
    for name in [
        "hashing load, distinct unknown names",
        "hashing load, more unknown names",
    ] {
        let got = out(name);
        assert_eq!(
            count(&got, "auth: reply unknown_user"),
            150,
            "the flood of another uid must not cost nobody its connections: {}",
            report(name)
        );
    }

    // Password changes and sessions of another account: "unknown user"; the session list is an
    // administrative request; the own account without its old password: denied.
    for (name, expected) in [
        ("change-check", "change-check: reply unknown_user"),
        ("change with the old password", "change: reply unknown_user"),
        (
            "change without an old password",
            "change: reply unknown_user",
        ),
        ("own change without an old password", "change: reply denied"),
        ("session-open", "session-open: reply unknown_user"),
        ("session-close", "session-close: reply unknown_user"),
        ("sessions", "sessions: reply error not_permitted"),
        ("admin connect", "connect: connect-error PermissionDenied"),
    ] {
        assert_eq!(out(name), [expected], "{name}");
    }

    // Broken frames: an error reply where the daemon can give one, then a closed connection.
    let oversized = out("oversized");
    assert_eq!(oversized.len(), 6, "{oversized:?}");
    for pair in oversized.chunks(2) {
        assert!(
            pair[0].ends_with(": reply error frame_too_large"),
            "{pair:?}"
        );
        assert!(pair[1].ends_with(": then closed"), "{pair:?}");
    }
    assert_eq!(
        out("truncated"),
        ["truncated body: closed", "truncated prefix: closed"]
    );
    let garbage = out("garbage");
    assert_eq!(garbage.len(), 14, "{garbage:?}");
    for pair in garbage.chunks(2) {
        let kind = if pair[0].starts_with("garbage raw-") {
            "frame_too_large"
        } else {
            "bad_request"
        };
        assert!(
            pair[0].ends_with(&format!(": reply error {kind}")),
            "{pair:?}"
        );
        assert!(pair[1].ends_with(": then closed"), "{pair:?}");
    }
    let nested = out("nested");
    assert_eq!(nested.len(), 10, "{nested:?}");
    for pair in nested.chunks(2) {
        assert!(pair[0].ends_with(": reply error bad_request"), "{pair:?}");
        assert!(pair[1].ends_with(": then closed"), "{pair:?}");
    }
    assert_eq!(out("pipeline"), ["pipeline: pongs=64 then closed"]);
    let trickle = out("trickle");
    let after_ms: u64 = trickle
        .first()
        .and_then(|l| l.strip_prefix("trickle: closed after_ms="))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("the trickle was not cut off: {trickle:?}"));
    assert!(
        after_ms < (IDLE_SECONDS + 3) * 1000,
        "the trickle held its connection {after_ms} ms (idle timeout {IDLE_SECONDS} s)"
    );

    // The flood's connections stayed admitted throughout, and its uid stayed capped.
    assert_eq!(
        flood_rest,
        [
            "flood: extra reply busy",
            &format!("flood: held={PER_UID_CAP}")
        ],
        "flood"
    );

    // Nothing the attacker did touched the victim's account: no failure counted, no lock, the
    // password unchanged (root's logins above), the session still open and not revoked.
    let status = ctl_json(&d, &["status", VICTIM, "--json"]);
    assert_eq!(status["failures"], 0, "{status}");
    assert_eq!(status["locked"], false, "{status}");
    let show = ctl_json(&d, &["user", "show", VICTIM, "--json"]);
    assert_eq!(show["must_change"], false, "{show}");
    let sessions = ctl_json(&d, &["sessions", VICTIM, "--json"]);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0]["revoked_at"], Value::Null, "{sessions:?}");
    assert_eq!(victim_session.close_session(0), codes::PAM_SUCCESS);
    drop(victim_session);

    // The daemon's log: the refusals are there, no crash, no internal error, no secret.
    let log = d.log();
    let joined = log.join("\n");
    assert!(
        joined.contains("user=(unknown) service=\"attacker\" peer_uid=65534 result=unknown_user"),
        "{joined}"
    );
    assert!(
        joined.contains("refused sessions from uid 65534"),
        "{joined}"
    );
    for bad in [
        "panicked",
        "internal error",
        "cannot start a connection thread",
    ] {
        assert!(
            !log.iter().any(|l| l.contains(bad)),
            "{bad:?} in credd's log:\n{joined}"
        );
    }
    for secret in [VICTIM_PASSWORD, ATTACKER_PASSWORD, STOLEN_NEW_PASSWORD] {
        assert!(!joined.contains(secret), "{secret:?} in credd's log");
    }
    let status = d.stop();
    assert!(status.success(), "credd exited with {status}");
}

/// A non-root caller's password-change requests naming someone else's account each cost one
/// dummy PBKDF2, so they draw on the caller's `[rate] change` bucket (5 at once), as its logins
/// draw on `local_uid` (found by this suite: `Daemon::prove_old` used to consult a bucket only for
/// accounts the caller could see).
#[test]
fn password_change_requests_for_other_accounts_are_rate_limited_like_logins() {
    if skip_unless_root("password_change_requests_for_other_accounts_are_rate_limited_like_logins")
    {
        return;
    }
    // The shipped rate limits: local_uid = { burst = 5, per_minute = 10 },
    // change = { burst = 5, per_minute = 5 }.
    let d = TestDaemon::start_with("[hashing]\niterations = 1000\n[audit]\nsyslog = \"none\"\n");
    d.add_user(VICTIM, VICTIM_PASSWORD, &["--uid", VICTIM_UID]);
    let attacker = attacker_binary(&d);
    let pam = d.pam_socket();
    let pam = pam.to_str().unwrap();
    let verifications = || {
        ctl_json(&d, &["status", "--daemon", "--json"])["verifications"]
            .as_u64()
            .unwrap()
    };

    // Logins: the bucket holds the caller to its burst.
    let before = verifications();
    let got = lines(&run(as_nobody(
        &attacker,
        &["auth", pam, VICTIM, "a guess at it", "20"],
    )));
    let by_auth = verifications() - before;
    assert!(
        by_auth <= 5,
        "{by_auth} verifications through auth: {got:?}"
    );

    // Password-change checks naming the same account: the same bucket should apply.
    let before = verifications();
    let mut replies = Vec::new();
    for _ in 0..20 {
        replies.extend(lines(&run(as_nobody(
            &attacker,
            &["change-check", pam, VICTIM, "a guess at it"],
        ))));
    }
    let by_change = verifications() - before;
    eprintln!(
        "rate: nobody got {by_auth} verifications from 20 logins and {by_change} from 20 change checks"
    );
    assert!(
        replies.iter().all(|r| r != "change-check: reply ok"),
        "{replies:?}"
    );
    assert!(
        by_change <= 5,
        "{by_change} PBKDF2 runs for 20 change checks of another account, past the change \
         burst of 5: {replies:?}"
    );
}
