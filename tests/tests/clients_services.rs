//! Two real PAM clients in front of credd (root only): a Dovecot IMAP server
//! (tests/src/dovecot.rs) and a web-style Python caller through python3-pampy. Both authenticate
//! through a service file in `/etc/pam.d` with the stack shape of docs/pam.md's sshd example:
//!
//! ```text
//! auth     [success=done user_unknown=ignore default=die]  pam_credd.so socket=... nodelay
//! auth     requisite  pam_deny.so
//! account  [success=done user_unknown=ignore default=die]  pam_credd.so socket=... nodelay
//! account  requisite  pam_deny.so
//! ```
//!
//! What they pass to PAM (checked below through credd's audit lines and `credctl status`):
//! Dovecot calls from its root `auth -w` worker with `PAM_RHOST` = the client's address and
//! `PAM_TTY` = `dovecot`; pampy (running as root, as a web application authenticating arbitrary
//! users must) sets no `PAM_RHOST` at all and `PAM_TTY` only from `$DISPLAY` or a terminal on stdin
//! (neither here), so all its callers share one source.
//!
//! The contract under test: a right password gives back the rate-limit tokens its attempt took (any
//! number of correct logins succeed); wrong passwords still count and lock at `deny` (5); `credctl
//! unlock NAME` lifts the lock and refills that account's rate buckets.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::dovecot::{self, Dovecot, ImapLogin};
use credd_e2e::system_pam::SystemService;
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong horse battery";
/// `[lockout] deny`, the default.
const DENY: usize = 5;
/// pam_credd's lock message, shown through the PAM conversation (docs/pam.md).
const LOCK_MESSAGE: &str = "Your account is locked; please contact your system administrator.";
/// What Dovecot answers for every refused LOGIN.
const IMAP_REFUSAL: &str = "a NO [AUTHENTICATIONFAILED] Authentication failed.";
/// Debian's python3 with python3-pampy; the `python3` on PATH may be another one without it.
const PYTHON: &str = "/usr/bin/python3";
/// PAM_AUTH_ERR, as pampy reports it.
const PAM_AUTH_ERR: i64 = 7;

fn daemon(extra: &str) -> TestDaemon {
    TestDaemon::start_with(&format!("{}{extra}\n", credd_e2e::daemon::TEST_CONFIG))
}

/// The sshd-shaped stack: credd decides, and anything but success or an unknown user ends it.
fn credd_service(d: &TestDaemon) -> SystemService {
    // A copy any uid can load: the build tree may be private, and PAM clients may run as others.
    let module = d.public_copy(&bins::pam_module());
    let control = "[success=done user_unknown=ignore default=die]";
    SystemService::install(&[
        d.module_line_for(&module, "auth", control, ""),
        "auth requisite pam_deny.so".to_string(),
        d.module_line_for(&module, "account", control, ""),
        "account requisite pam_deny.so".to_string(),
    ])
}

fn json(d: &TestDaemon, args: &[&str]) -> Value {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("credctl --json prints JSON")
}

fn status(d: &TestDaemon, user: &str) -> Value {
    json(d, &["status", user, "--json"])
}

fn unlock(d: &TestDaemon, user: &str) {
    let out = d.ctl(&["unlock", user]);
    assert!(
        out.status.success(),
        "credctl unlock {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("unlocked {user}")
    );
}

/// credd's log lines that record a successful authentication of `user` (audit `login_success`).
fn successes<'a>(log: &'a [String], user: &str) -> Vec<&'a String> {
    let who = format!(" user={user} ");
    log.iter()
        .filter(|l| l.contains("event=login_success") && l.contains(&who))
        .collect()
}

/// Polls credd's log until `count(log) >= n` or 5 s passed (a reply can reach the client a moment
/// before its log line reaches the harness); returns the last count.
fn wait_count(d: &TestDaemon, n: usize, count: impl Fn(&[String]) -> usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = count(&d.log());
        if c >= n || Instant::now() >= deadline {
            return c;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Dovecot IMAP
// ---------------------------------------------------------------------------------------------

/// credd, its PAM service and a Dovecot using it; dropped in this order (Dovecot first).
struct Imap {
    dv: Dovecot,
    svc: SystemService,
    d: TestDaemon,
}

impl Imap {
    fn start(extra: &str) -> Imap {
        let d = daemon(extra);
        let svc = credd_service(&d);
        let dv = Dovecot::start(&svc.name);
        Imap { dv, svc, d }
    }

    /// credd's log and Dovecot's log, for assertion messages.
    fn diag(&self) -> String {
        format!(
            "--- credd log ---\n{}\n{}",
            self.d.log().join("\n"),
            self.dv.diagnostics()
        )
    }

    /// `DENY` wrong passwords, each from a fresh loopback address (Dovecot's auth penalty would
    /// otherwise hold back the next attempt from the same address by 4 s, 8 s, 15 s): refused,
    /// counted, and the last one locks. Returns the addresses used.
    fn lock_with_wrong_passwords(&self, user: &str) -> Vec<std::net::Ipv4Addr> {
        let mut sources = Vec::new();
        for i in 1..=DENY {
            let src = self.dv.fresh_source();
            sources.push(src);
            let r = self.dv.login_from(src, user, WRONG);
            assert!(
                !r.ok,
                "wrong password #{i} accepted: {r:?}\n{}",
                self.diag()
            );
            assert_eq!(r.reply, IMAP_REFUSAL, "{}", self.diag());
            let st = status(&self.d, user);
            assert_eq!(st["failures"], i, "after wrong password #{i}: {st}");
            assert_eq!(
                st["locked"],
                i == DENY,
                "after wrong password #{i}: {st}\n{}",
                self.diag()
            );
        }
        sources
    }
}

/// Prints a skip reason and returns true unless root with Dovecot installed.
fn skip_dovecot(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    if !dovecot::available() {
        eprintln!(
            "SKIPPED {test}: needs dovecot ({} missing; apt-get install dovecot-imapd, \
             scripts/ensure-deps.sh does)",
            dovecot::DOVECOT
        );
        return true;
    }
    false
}

/// `n` logins of `user` with the right password from 127.0.0.1, one after the other, stopping at
/// the first refusal (each refusal from 127.0.0.1 would slow every later attempt by Dovecot's auth
/// penalty). Returns the results and the time taken.
fn imap_logins(dv: &Dovecot, user: &str, n: usize, stop: &AtomicBool) -> Vec<ImapLogin> {
    let mut results = Vec::new();
    for _ in 0..n {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let r = dv.login(user, PASSWORD);
        let ok = r.ok;
        results.push(r);
        if !ok {
            stop.store(true, Ordering::SeqCst);
            break;
        }
    }
    results
}

#[test]
fn dovecot_thirty_correct_logins_in_a_row_all_succeed_and_wrong_passwords_still_lock() {
    if skip_dovecot(
        "dovecot_thirty_correct_logins_in_a_row_all_succeed_and_wrong_passwords_still_lock",
    ) {
        return;
    }
    let env = Imap::start("");
    env.d.add_user("dv-alice", PASSWORD, &["--uid", "5401"]);

    let started = Instant::now();
    let results = imap_logins(&env.dv, "dv-alice", 30, &AtomicBool::new(false));
    let elapsed = started.elapsed();
    let ok = results.iter().filter(|r| r.ok).count();
    eprintln!(
        "dovecot: {ok}/30 correct logins succeeded in {:.2} s",
        elapsed.as_secs_f64()
    );
    assert_eq!(
        ok,
        30,
        "correct login #{} refused: {:?}\n{}",
        results.len(),
        results.last(),
        env.diag()
    );

    // Every LOGIN reached PAM (no auth cache), from 127.0.0.1 through Dovecot's worker.
    let reached = wait_count(&env.d, 30, |log| successes(log, "dv-alice").len());
    assert_eq!(reached, 30, "{}", env.diag());
    for line in successes(&env.d.log(), "dv-alice") {
        assert!(
            line.contains(&format!("service={} ", env.svc.name))
                && line.contains("rhost=127.0.0.1 tty=dovecot")
                && line.contains("actor_uid=0 "),
            "{line}"
        );
    }

    // Giving back the tokens of right passwords does not forgive wrong ones.
    env.lock_with_wrong_passwords("dv-alice");
    let r = env
        .dv
        .login_from(env.dv.fresh_source(), "dv-alice", PASSWORD);
    assert!(!r.ok, "locked account logged in: {r:?}\n{}", env.diag());
}

#[test]
fn dovecot_wrong_passwords_lock_the_account_and_unlock_lets_the_right_password_in_at_once() {
    if skip_dovecot(
        "dovecot_wrong_passwords_lock_the_account_and_unlock_lets_the_right_password_in_at_once",
    ) {
        return;
    }
    let env = Imap::start("");
    env.d.add_user("dv-bob", PASSWORD, &["--uid", "5402"]);

    let first = env.dv.login("dv-bob", PASSWORD);
    assert!(first.ok, "{first:?}\n{}", env.diag());
    eprintln!("dovecot: one login in {:?}", first.elapsed);
    let expected = format!(
        "credd: authenticate user=dv-bob service=\"{}\" peer_uid=0 result=ok",
        env.svc.name
    );
    assert!(
        env.d.wait_for_log(&expected, Duration::from_secs(5)),
        "{}",
        env.diag()
    );

    let started = Instant::now();
    let sources = env.lock_with_wrong_passwords("dv-bob");
    eprintln!(
        "dovecot: {DENY} wrong passwords locked dv-bob in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let st = status(&env.d, "dv-bob");
    assert_eq!(st["lock_kind"], "failures", "{st}");
    assert_eq!(st["unlock"], "administrator", "{st}");
    let last = &st["last_failure"];
    assert_eq!(last["service"], env.svc.name.as_str(), "{st}");
    assert_eq!(
        last["rhost"],
        sources.last().unwrap().to_string().as_str(),
        "Dovecot passes the client address as PAM_RHOST: {st}"
    );
    assert_eq!(last["tty"], "dovecot", "{st}");
    assert_eq!(
        last["peer_uid"], 0,
        "Dovecot's PAM worker runs as root: {st}"
    );

    // Locked: the right password is refused, and the IMAP client cannot tell it from a wrong one.
    let refused = env.dv.login_from(env.dv.fresh_source(), "dv-bob", PASSWORD);
    assert!(
        !refused.ok,
        "locked account logged in: {refused:?}\n{}",
        env.diag()
    );
    assert_eq!(refused.reply, IMAP_REFUSAL, "{}", env.diag());
    assert!(refused.untagged.is_empty(), "{refused:?}");
    let locked_lines = wait_count(&env.d, 1, |log| {
        log.iter()
            .filter(|l| {
                l.starts_with("credd: authenticate user=dv-bob ") && l.ends_with(" result=locked")
            })
            .count()
    });
    assert_eq!(locked_lines, 1, "{}", env.diag());
    // The module's lock message reached Dovecot's conversation function (auth_debug shows it).
    assert!(
        env.dv.wait_for_log(
            &format!("style=3 msg={LOCK_MESSAGE}"),
            Duration::from_secs(5)
        ),
        "{}",
        env.diag()
    );
    assert_eq!(status(&env.d, "dv-bob")["locked"], true);

    unlock(&env.d, "dv-bob");
    let back = env.dv.login("dv-bob", PASSWORD);
    eprintln!("dovecot: first login after unlock in {:?}", back.elapsed);
    assert!(
        back.ok,
        "right password refused after unlock: {back:?}\n{}",
        env.diag()
    );
    let st = status(&env.d, "dv-bob");
    assert_eq!(st["locked"], false, "{st}");
    assert_eq!(st["failures"], 0, "{st}");
}

#[test]
fn dovecot_four_users_log_in_twelve_times_each_from_one_address() {
    if skip_dovecot("dovecot_four_users_log_in_twelve_times_each_from_one_address") {
        return;
    }
    let env = Imap::start("");
    let users = ["dv-u1", "dv-u2", "dv-u3", "dv-u4"];
    for (i, user) in users.iter().enumerate() {
        env.d
            .add_user(user, PASSWORD, &["--uid", &(5411 + i).to_string()]);
    }

    // Four clients at once, each logging in twelve times in a row, all from 127.0.0.1: 48 logins,
    // more than the host bucket's burst (30) and each account's (10).
    let stop = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for user in users {
            let (dv, stop, results) = (&env.dv, &stop, &results);
            s.spawn(move || {
                let mine = imap_logins(dv, user, 12, stop);
                results.lock().unwrap().push((user, mine));
            });
        }
    });
    let elapsed = started.elapsed();
    let results = results.into_inner().unwrap();
    let ok: usize = results
        .iter()
        .map(|(_, r)| r.iter().filter(|l| l.ok).count())
        .sum();
    eprintln!(
        "dovecot: {ok}/48 logins of 4 users from 127.0.0.1 succeeded in {:.2} s",
        elapsed.as_secs_f64()
    );
    let refusals: Vec<String> = results
        .iter()
        .flat_map(|(user, r)| {
            r.iter()
                .enumerate()
                .filter(|(_, l)| !l.ok)
                .map(move |(i, l)| format!("{user} login #{}: {}", i + 1, l.reply))
        })
        .collect();
    assert_eq!(
        ok,
        48,
        "refused: {refusals:?} (the others stopped there)\n{}",
        env.diag()
    );
    for user in users {
        let reached = wait_count(&env.d, 12, |log| successes(log, user).len());
        assert_eq!(reached, 12, "{user}\n{}", env.diag());
        for line in successes(&env.d.log(), user) {
            assert!(line.contains("rhost=127.0.0.1 tty=dovecot"), "{line}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// A web-style client: python3-pampy
// ---------------------------------------------------------------------------------------------

/// Reads `[[user, password], ...]` as JSON on stdin and calls pampy's `authenticate` once for
/// each, printing one JSON object per line: `ok`, `code` and `reason` (pampy's `pam_strerror`),
/// `messages` (every text PAM sent through the conversation, the password prompt included) and
/// `ms`. pampy runs `pam_authenticate`, then `pam_acct_mgmt`, then `pam_setcred` on success.
const PAMPY_SCRIPT: &str = r#"
import json, sys, time
import pam

service = sys.argv[1]
attempts = json.load(sys.stdin)
p = pam.pam()
for user, password in attempts:
    p.messages = []
    started = time.monotonic()
    ok = p.authenticate(user, password, service=service)
    print(json.dumps({
        "ok": bool(ok),
        "code": p.code,
        "reason": p.reason,
        "messages": p.messages,
        "ms": round((time.monotonic() - started) * 1000, 1),
    }), flush=True)
"#;

struct Web {
    svc: SystemService,
    d: TestDaemon,
}

impl Web {
    fn start(extra: &str) -> Web {
        let d = daemon(extra);
        let svc = credd_service(&d);
        Web { svc, d }
    }

    fn diag(&self) -> String {
        format!("--- credd log ---\n{}", self.d.log().join("\n"))
    }

    /// Runs the script as root (a web application authenticating arbitrary users must be) with
    /// no terminal and no `$DISPLAY`, so pampy sets no PAM_TTY; one result per attempt.
    fn authenticate(&self, attempts: &[(&str, &str)]) -> Vec<Value> {
        let mut child = Command::new(PYTHON)
            .arg("-I") // Debian's own modules only: no PYTHONPATH, no user site
            .arg("-c")
            .arg(PAMPY_SCRIPT)
            .arg(&self.svc.name)
            .env_remove("DISPLAY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run /usr/bin/python3");
        let input = serde_json::to_string(attempts).unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "pampy script failed: {}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr),
            self.diag()
        );
        let results: Vec<Value> = stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(results.len(), attempts.len(), "{stdout}");
        results
    }
}

fn has_message(result: &Value, text: &str) -> bool {
    result["messages"].as_array().is_some_and(|m| {
        m.iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains(text)))
    })
}

fn total_ms(results: &[Value]) -> f64 {
    results.iter().filter_map(|r| r["ms"].as_f64()).sum()
}

/// Prints a skip reason and returns true unless root with Debian's python3-pampy.
fn skip_pampy(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    let have = Command::new(PYTHON)
        .args(["-I", "-c", "import pam"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !have {
        eprintln!(
            "SKIPPED {test}: needs {PYTHON} with python3-pampy (apt-get install python3-pampy, \
             scripts/ensure-deps.sh does)"
        );
        return true;
    }
    false
}

#[test]
fn pampy_thirty_correct_logins_all_succeed() {
    if skip_pampy("pampy_thirty_correct_logins_all_succeed") {
        return;
    }
    let web = Web::start("");
    web.d.add_user("web-alice", PASSWORD, &["--uid", "5501"]);

    let results = web.authenticate(&[("web-alice", PASSWORD); 30]);
    let ok = results.iter().filter(|r| r["ok"] == true).count();
    eprintln!(
        "pampy: {ok}/30 correct logins succeeded in {:.2} s",
        total_ms(&results) / 1000.0
    );
    let refused: Vec<String> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| r["ok"] != true)
        .map(|(i, r)| format!("#{}: {r}", i + 1))
        .collect();
    assert_eq!(ok, 30, "refused: {refused:?}\n{}", web.diag());
    for r in &results {
        assert_eq!(r["code"], 0, "{r}");
        assert_eq!(r["reason"], "Success", "{r}");
    }

    // Each reached credd, with pampy's (empty) PAM items: no rhost, no tty.
    let reached = wait_count(&web.d, 30, |log| successes(log, "web-alice").len());
    assert_eq!(reached, 30, "{}", web.diag());
    for line in successes(&web.d.log(), "web-alice") {
        assert!(
            line.contains(&format!("service={}", web.svc.name))
                && line.contains("actor_uid=0")
                && !line.contains("rhost=")
                && !line.contains("tty="),
            "{line}"
        );
    }
}

#[test]
fn pampy_wrong_passwords_count_and_lock_and_unlock_restores_the_right_one() {
    if skip_pampy("pampy_wrong_passwords_count_and_lock_and_unlock_restores_the_right_one") {
        return;
    }
    let web = Web::start("");
    web.d.add_user("web-bob", PASSWORD, &["--uid", "5502"]);

    let first = web.authenticate(&[("web-bob", PASSWORD)]);
    assert_eq!(first[0]["code"], 0, "{first:?}\n{}", web.diag());

    for i in 1..=DENY {
        let r = &web.authenticate(&[("web-bob", WRONG)])[0];
        assert_eq!(r["ok"], false, "wrong password #{i}: {r}");
        assert_eq!(r["code"], PAM_AUTH_ERR, "wrong password #{i}: {r}");
        assert_eq!(r["reason"], "Authentication failure", "{r}");
        assert!(
            !has_message(r, LOCK_MESSAGE),
            "wrong password #{i} (the lock comes with #{DENY} but is shown from the next): {r}"
        );
        let st = status(&web.d, "web-bob");
        assert_eq!(st["failures"], i, "after wrong password #{i}: {st}");
        assert_eq!(st["locked"], i == DENY, "after wrong password #{i}: {st}");
    }
    let st = status(&web.d, "web-bob");
    assert_eq!(st["lock_kind"], "failures", "{st}");
    let last = &st["last_failure"];
    assert_eq!(last["service"], web.svc.name.as_str(), "{st}");
    assert_eq!(last["rhost"], Value::Null, "pampy sets no PAM_RHOST: {st}");
    assert_eq!(last["tty"], Value::Null, "no terminal, no $DISPLAY: {st}");
    assert_eq!(last["peer_uid"], 0, "{st}");

    let locked = &web.authenticate(&[("web-bob", PASSWORD)])[0];
    assert_eq!(
        locked["code"], PAM_AUTH_ERR,
        "locked account logged in: {locked}"
    );
    assert!(has_message(locked, LOCK_MESSAGE), "{locked}");

    unlock(&web.d, "web-bob");
    let back = &web.authenticate(&[("web-bob", PASSWORD)])[0];
    assert_eq!(
        back["code"],
        0,
        "right password refused after unlock: {back}\n{}",
        web.diag()
    );
    assert!(!has_message(back, LOCK_MESSAGE), "{back}");
    assert_eq!(status(&web.d, "web-bob")["failures"], 0);
}

#[test]
fn pampy_unlock_refills_the_account_bucket_that_attempts_on_the_locked_account_drained() {
    if skip_pampy(
        "pampy_unlock_refills_the_account_bucket_that_attempts_on_the_locked_account_drained",
    ) {
        return;
    }
    // One token a minute: nothing refills by itself while the test runs.
    let web = Web::start("[rate]\naccount = { burst = 10, per_minute = 1 }");
    web.d.add_user("web-carol", PASSWORD, &["--uid", "5503"]);

    // Wrong passwords until one is refused without the lock message: DENY lock the account, the
    // next ones are refused as locked (each still takes a token), then the bucket is empty.
    let results = web.authenticate(&[("web-carol", WRONG); 15]);
    for r in &results {
        assert_eq!(r["code"], PAM_AUTH_ERR, "{r}");
    }
    assert!(
        results[DENY..]
            .iter()
            .take_while(|r| has_message(r, LOCK_MESSAGE))
            .count()
            > 0,
        "no attempt was refused as locked: {results:?}"
    );
    let drained = results
        .iter()
        .enumerate()
        .skip(DENY)
        .find(|(_, r)| !has_message(r, LOCK_MESSAGE))
        .map(|(i, _)| i + 1);
    eprintln!(
        "pampy: attempt #{drained:?} was the first rate-limited one; its messages: {:?}",
        drained.map(|i| &results[i - 1]["messages"])
    );
    assert!(
        drained.is_some(),
        "15 attempts never emptied the account bucket (burst 10): {results:?}\n{}",
        web.diag()
    );
    assert_eq!(status(&web.d, "web-carol")["locked"], true);

    unlock(&web.d, "web-carol");
    let back = &web.authenticate(&[("web-carol", PASSWORD)])[0];
    assert_eq!(
        back["code"],
        0,
        "right password refused right after unlock (the unlock must refill the account's \
         buckets): {back}\n{}",
        web.diag()
    );
}
