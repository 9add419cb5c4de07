//! The audit trail end to end: a real rsyslogd receives credd's events, fail2ban reads its failure
//! lines, and the local chain detects tampering.

use std::os::unix::fs::symlink;
use std::process::Command;
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes, flags};
use credd_e2e::rsyslog::{Rsyslog, sd_param};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";
const WAIT: Duration = Duration::from_secs(15);

fn daemon_logging_to(target: &str, extra: &str) -> TestDaemon {
    TestDaemon::start_with(&format!(
        "{}[audit]\nsyslog = \"{target}\"\n{extra}\n",
        credd_e2e::daemon::TEST_CONFIG
    ))
}

fn stack(d: &TestDaemon, args: &str) -> PamStack {
    PamStack::new(
        "sshd",
        &[
            d.module_line("auth", "required", args),
            d.module_line("account", "required", args),
            d.module_line("password", "required", args),
        ],
    )
}

fn login(stack: &PamStack, user: &str, secret: &str, rhost: &str) -> i32 {
    let conv = Conversation::new().answer(Some("Password: "), secret);
    let mut s = stack.start(user, conv).unwrap();
    s.set_item_str(credd_e2e::libpam::items::PAM_RHOST, rhost);
    s.authenticate(0)
}

fn ctl_ok(d: &TestDaemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every event of a full lifecycle, through libpam and credctl, with a code and a forced change.
/// Returns the code that was issued.
fn lifecycle(d: &mut TestDaemon) -> String {
    let s = stack(d, "");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    d.add_user("bob", PASSWORD, &["--uid", "5002"]);
    assert_eq!(
        login(&s, "alice", PASSWORD, "192.0.2.1"),
        codes::PAM_SUCCESS
    );
    assert_eq!(
        login(&s, "alice", "wrong horse battery", "192.0.2.66"),
        codes::PAM_AUTH_ERR
    );
    assert_eq!(
        login(&s, "nobody-knows-me", PASSWORD, "192.0.2.67"),
        codes::PAM_USER_UNKNOWN
    );
    // bob: deny = 2 locks him; an administrator unlocks, then locks him on purpose.
    for _ in 0..2 {
        login(&s, "bob", "wrong horse battery", "192.0.2.68");
    }
    ctl_ok(d, &["unlock", "bob"]);
    ctl_ok(d, &["lock", "bob", "--reason", "audit test"]);
    // A reset, a wrong code, the right code and the forced change.
    let code = ctl_ok(d, &["reset", "alice"]).trim().to_string();
    assert_eq!(
        login(&s, "alice", "0000-0000-0000-0000", "192.0.2.1"),
        codes::PAM_AUTH_ERR
    );
    let conv = Conversation::new()
        .answer(Some("Password: "), &code)
        .answer(Some("New password: "), NEW_PASSWORD)
        .answer(Some("Retype new password: "), NEW_PASSWORD);
    let mut session = s.start("alice", conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(session.acct_mgmt(0), codes::PAM_NEW_AUTHTOK_REQD);
    assert_eq!(
        session.chauthtok(flags::PAM_CHANGE_EXPIRED_AUTHTOK),
        codes::PAM_SUCCESS
    );
    drop(session);
    // A second reset whose code is burned by wrong guesses (max_attempts = 2).
    ctl_ok(d, &["reset", "bob"]);
    for _ in 0..2 {
        login(&s, "bob", "1111-1111-1111-1111", "192.0.2.69");
    }
    ctl_ok(d, &["user", "add", "carol"]);
    ctl_ok(d, &["user", "remove", "carol"]);
    // A refused caller: an administrative request on the PAM socket.
    let mut client = credd_proto::Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    let _ = client.call(&credd_proto::Request::UserList);
    // Rate limit: the account bucket (5) for alice from a fresh address. Right passwords give their
    // tokens back, so only these count: two failures lock her (deny = 2), three more are refused
    // as locked, the sixth is rate-limited. An administrator then unlocks her.
    for _ in 0..6 {
        login(&s, "alice", "wrong horse battery", "192.0.2.70");
    }
    ctl_ok(d, &["unlock", "alice"]);
    // A stronger iteration count rehashes at the next login; start and stop are events too.
    d.set_config(&d_config(d, "[hashing]\niterations = 2000\n"));
    d.restart();
    assert_eq!(
        login(&stack(d, ""), "alice", NEW_PASSWORD, "192.0.2.1"),
        codes::PAM_SUCCESS
    );
    code
}

/// The daemon's config with `hashing` replaced (the rest as the test started it).
fn d_config(d: &TestDaemon, hashing: &str) -> String {
    let current = std::fs::read_to_string(d.config_path()).unwrap();
    let rest: String = current
        .split_inclusive('\n')
        .skip_while(|l| !l.starts_with("[audit]"))
        .collect();
    format!("{hashing}{rest}")
}

const EXTRA: &str = "[lockout]\ndeny = 2\n[codes]\nmax_attempts = 2\n[rate]\naccount = { burst = 5, per_minute = 1 }\n";

#[test]
fn every_event_reaches_syslog_with_its_fields_and_no_secret_anywhere() {
    let rsyslog = Rsyslog::start();
    let target = format!("unix:{}", rsyslog.socket_path().display());
    let mut d = daemon_logging_to(&target, EXTRA);
    let code = lifecycle(&mut d);
    let out = d.ctl(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.stop();

    for event in [
        "daemon_started",
        "audit_checkpoint",
        "user_added",
        "login_success",
        "login_failure",
        "unknown_user",
        "account_locked",
        "account_unlocked",
        "admin_lock",
        "reset_issued",
        "code_rejected",
        "code_redeemed",
        "password_changed",
        "code_burned",
        "user_removed",
        "peer_refused",
        "rate_limited",
        "hash_upgraded",
        "daemon_stopped",
    ] {
        assert!(
            rsyslog.wait_for(&format!("event={event} "), WAIT),
            "no {event} in syslog:\n{}",
            rsyslog.lines().join("\n")
        );
    }
    let lines = rsyslog.lines();
    let failure = lines
        .iter()
        .find(|l| l.contains("event=login_failure") && l.contains("user=alice"))
        .expect("alice's failure");
    for field in [
        "credd[",
        "id=",
        "seq=",
        "actor_uid=0",
        "service=sshd",
        "rhost=192.0.2.66",
        "outcome=denied",
    ] {
        assert!(failure.contains(field), "{field} missing: {failure}");
    }
    let admin = lines
        .iter()
        .find(|l| l.contains("event=admin_lock"))
        .unwrap();
    assert!(
        admin.contains("user=bob") && admin.contains("actor_uid=0"),
        "{admin}"
    );
    let unknown = lines
        .iter()
        .find(|l| l.contains("event=unknown_user"))
        .unwrap();
    assert!(
        !unknown.contains("nobody-knows-me"),
        "typed unknown names are not logged: {unknown}"
    );

    // No password or code, in any spelling, in syslog or in the database files.
    let normalized = code.replace('-', "");
    let mut haystacks: Vec<(String, Vec<u8>)> = vec![
        (
            "messages.log".into(),
            std::fs::read(rsyslog.messages_path()).unwrap(),
        ),
        (
            "json.log".into(),
            std::fs::read(rsyslog.json_path()).unwrap(),
        ),
    ];
    for name in ["credd.db", "credd.db-wal"] {
        if let Ok(bytes) = std::fs::read(d.state_dir().join(name)) {
            haystacks.push((name.into(), bytes));
        }
    }
    for (what, bytes) in &haystacks {
        for secret in [PASSWORD, NEW_PASSWORD, code.as_str(), normalized.as_str()] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret:?} found in {what}"
            );
        }
    }
}

#[test]
fn fail2ban_matches_every_failure_line_with_the_stock_filter() {
    let rsyslog = Rsyslog::start();
    let target = format!("unix:{}", rsyslog.socket_path().display());
    let d = daemon_logging_to(&target, "");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d, "");
    let hosts = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
    for host in hosts {
        assert_eq!(
            login(&s, "alice", "wrong horse battery", host),
            codes::PAM_AUTH_ERR
        );
    }
    assert_eq!(
        login(&s, "ghost", "whatever it is", "198.51.100.4"),
        codes::PAM_USER_UNKNOWN
    );
    assert_eq!(
        login(&s, "alice", PASSWORD, "198.51.100.5"),
        codes::PAM_SUCCESS
    );
    for host in ["198.51.100.3", "198.51.100.4"] {
        assert!(rsyslog.wait_for(&format!("rhost={host}"), WAIT));
    }
    let failures = rsyslog
        .lines()
        .iter()
        .filter(|l| l.contains("pam_credd(sshd:auth): authentication failure;"))
        .count();
    assert_eq!(failures, 4, "{}", rsyslog.lines().join("\n"));
    let out = Command::new("fail2ban-regex")
        .arg(rsyslog.messages_path())
        .arg("pam-generic[__pam_auth=pam_credd]")
        .output()
        .expect("fail2ban-regex (apt-get install fail2ban; make test does)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!("{failures} matched")),
        "fail2ban-regex must match every failure line:\n{report}"
    );
    for host in ["198.51.100.1", "198.51.100.4"] {
        assert!(
            report.contains(host) || report.contains("matched"),
            "{report}"
        );
    }
}

/// Issue 15, R6: any local user can `logger` credd's classic failure line, and a filter on the
/// text alone (the stock one, and the "hardened" one docs/audit.md used to give) bans the host the
/// forger names. The file docs/audit.md now points fail2ban at holds only what the kernel says a
/// root process named credd sent (rsyslog's trusted properties): credd's failures are all there,
/// the forged line is not.
#[test]
fn fail2ban_reads_only_lines_no_local_user_can_forge() {
    if credd_e2e::bins::skip_unless_root("fail2ban_reads_only_lines_no_local_user_can_forge") {
        return;
    }
    let rsyslog = Rsyslog::start();
    let target = format!("unix:{}", rsyslog.socket_path().display());
    let d = daemon_logging_to(&target, "");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d, "");
    for host in ["198.51.100.21", "198.51.100.22"] {
        assert_eq!(
            login(&s, "alice", "wrong horse battery", host),
            codes::PAM_AUTH_ERR
        );
    }
    // A local user forges credd's line, tag and all, naming a host to get banned.
    let forged = "pam_credd(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh \
                  ruser= rhost=203.0.113.99  user=alice";
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "logger", "-u"])
        .arg(rsyslog.socket_path())
        .args(["-t", "credd", "-p", "authpriv.warning", "--", forged])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(rsyslog.wait_for("rhost=203.0.113.99", WAIT));
    assert!(rsyslog.wait_for("rhost=198.51.100.22", WAIT));
    let regex = |file: &std::path::Path| {
        let out = Command::new("fail2ban-regex")
            .arg(file)
            .arg("pam-generic[__pam_auth=pam_credd]")
            .arg("-v")
            .output()
            .expect("fail2ban-regex (apt-get install fail2ban; make test does)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The plain file: the forged line is matched, and its host would be banned.
    let plain = regex(&rsyslog.messages_path());
    assert!(plain.contains("3 matched"), "{plain}");
    assert!(plain.contains("203.0.113.99"), "{plain}");
    // The trusted file: credd's two failures, nothing else.
    let trusted = std::fs::read_to_string(rsyslog.trusted_path()).unwrap_or_default();
    assert!(
        !trusted.contains("203.0.113.99"),
        "a forged line reached the trusted file:\n{trusted}"
    );
    let report = regex(&rsyslog.trusted_path());
    assert!(report.contains("2 matched"), "{report}\n{trusted}");
    assert!(
        report.contains("198.51.100.21") && !report.contains("203.0.113.99"),
        "{report}"
    );
}

#[test]
fn rfc5424_over_udp_carries_parseable_structured_data() {
    let rsyslog = Rsyslog::start();
    let target = format!("udp:127.0.0.1:{}", rsyslog.udp_port());
    let d = daemon_logging_to(&target, "format = \"rfc5424\"");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    assert_eq!(
        login(
            &stack(&d, ""),
            "alice",
            "wrong horse battery",
            "203.0.113.5"
        ),
        codes::PAM_AUTH_ERR
    );
    let record = rsyslog
        .wait_for_json(
            |r| sd_param(r, "credd@32473", "event") == Some("login_failure"),
            WAIT,
        )
        .expect("a parsed login_failure record");
    assert_eq!(sd_param(&record, "credd@32473", "user"), Some("alice"));
    assert_eq!(
        sd_param(&record, "credd@32473", "rhost"),
        Some("203.0.113.5")
    );
    assert_eq!(sd_param(&record, "credd@32473", "outcome"), Some("denied"));
    assert_eq!(record["facility"], "authpriv");
    assert_eq!(record["appname"], "credd");
    let id = sd_param(&record, "credd@32473", "id").unwrap();
    assert_eq!(id.len(), 32);
    // The same event, with the same id, is in the local audit log.
    let rows: Value =
        serde_json::from_str(&ctl_ok(&d, &["audit", "--user", "alice", "--json"])).unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id && r["event"] == "login_failure")
    );
}

#[test]
fn a_syslog_outage_never_blocks_logins_and_the_events_arrive_later() {
    let first = Rsyslog::start();
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("log.sock");
    symlink(first.socket_path(), &link).unwrap();
    let d = daemon_logging_to(&format!("unix:{}", link.display()), "");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    assert!(first.wait_for("event=user_added", WAIT));
    drop(first); // syslog goes away

    let s = stack(&d, "");
    for _ in 0..3 {
        assert_eq!(
            login(&s, "alice", PASSWORD, "192.0.2.1"),
            codes::PAM_SUCCESS
        );
    }
    assert_eq!(
        login(&s, "alice", "wrong horse battery", "192.0.2.99"),
        codes::PAM_AUTH_ERR
    );

    let second = Rsyslog::start();
    std::fs::remove_file(&link).unwrap();
    symlink(second.socket_path(), &link).unwrap();
    assert!(
        second.wait_for("rhost=192.0.2.99", WAIT),
        "queued events must be delivered once syslog is back:\n{}",
        second.lines().join("\n")
    );
    let counters: Value =
        serde_json::from_str(&ctl_ok(&d, &["status", "--daemon", "--json"])).unwrap();
    assert_eq!(
        counters["dropped_syslog_events"], 0,
        "the queue held them all"
    );
}

fn tamper(d: &mut TestDaemon, sql: &str) {
    d.stop();
    let conn = rusqlite::Connection::open(d.state_dir().join("credd.db")).unwrap();
    conn.execute_batch(sql).unwrap();
    drop(conn);
    d.restart();
}

fn verify(d: &TestDaemon) -> (Option<i32>, String) {
    let out = d.ctl(&["audit", "verify"]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn editing_deleting_or_reordering_audit_rows_is_detected_and_named() {
    for (what, sql, row) in [
        (
            "edit",
            "UPDATE audit SET target = 'mallory' WHERE seq = 3;",
            3,
        ),
        ("delete", "DELETE FROM audit WHERE seq = 4;", 4),
        (
            "reorder",
            "UPDATE audit SET seq = 1000 WHERE seq = 2;
             UPDATE audit SET seq = 2 WHERE seq = 5;
             UPDATE audit SET seq = 5 WHERE seq = 1000;",
            2,
        ),
    ] {
        let mut d = TestDaemon::start();
        for name in ["u1", "u2", "u3", "u4", "u5", "u6"] {
            ctl_ok(&d, &["user", "add", name]);
        }
        assert_eq!(verify(&d).0, Some(0), "{what}: intact before");
        tamper(&mut d, sql);
        let (code, message) = verify(&d);
        assert_eq!(code, Some(3), "{what}: {message}");
        assert!(message.contains(&format!("row {row}")), "{what}: {message}");
    }
}

/// A NULL MAC is no licence to reseal (R4): credd used to compute a fresh MAC, with the real key,
/// for every row whose MAC was NULL at each start, so a row edited and then unsealed verified as
/// intact. Only the migration that introduced the chain seals rows; afterwards a NULL MAC is a
/// finding of `audit verify` and `check`, named by its row.
#[test]
fn a_row_whose_mac_was_nulled_is_a_finding_not_resealed_at_start() {
    let mut d = TestDaemon::start();
    for name in ["u1", "u2", "u3", "u4"] {
        ctl_ok(&d, &["user", "add", name]);
    }
    assert_eq!(verify(&d).0, Some(0), "intact before");
    // Row 3 edited, then it and every later row unsealed (so that a reseal in order would
    // rebuild a chain that fits).
    tamper(
        &mut d,
        "UPDATE audit SET detail = 'forged', target = 'mallory' WHERE seq = 3;
         UPDATE audit SET mac = NULL WHERE seq >= 3;",
    );
    let (code, message) = verify(&d);
    assert_eq!(code, Some(3), "{message}");
    assert!(
        // The start's "credd: sealed N audit rows" line; an integrity finding that says
        // "unsealed" may be in the log too, depending on when its line arrived.
        !d.log().iter().any(|l| l.starts_with("credd: sealed")),
        "nothing was resealed at start: {:?}",
        d.log()
    );
    assert!(
        message.contains("row 3") && message.contains("no MAC"),
        "{message}"
    );
    let out = d.ctl(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("FINDING: audit chain broken at row 3") && stdout.contains("no MAC"),
        "{stdout}"
    );
    // And it stays a finding across another restart.
    d.restart();
    assert_eq!(verify(&d).0, Some(3));
}

#[test]
fn a_corrupted_database_is_reported_by_check_while_logins_go_on() {
    let mut d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    for i in 0..400 {
        ctl_ok(
            &d,
            &["user", "add", &format!("filler-{i:03}-{}", "x".repeat(40))],
        );
    }
    assert_eq!(d.ctl(&["check"]).status.code(), Some(0));
    d.stop();
    let db = d.state_dir().join("credd.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let pages: i64 = conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    drop(conn);
    // Scribble over a page in the middle of the file (the filler rows), keeping the header.
    let mut bytes = std::fs::read(&db).unwrap();
    let (pages, page_size) = (pages as u64, page_size as u64);
    let page = pages / 2;
    let start = (page * page_size) as usize;
    for (i, b) in bytes[start + 8..start + page_size as usize]
        .iter_mut()
        .enumerate()
    {
        *b = (i * 131 % 251) as u8;
    }
    std::fs::write(&db, bytes).unwrap();

    d.restart();
    assert!(d.wait_for_log("integrity_failure", WAIT), "{:?}", d.log());
    let out = d.ctl(&["check"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("FINDING"));
    let s = stack(&d, "");
    assert_eq!(
        login(&s, "alice", PASSWORD, "192.0.2.1"),
        codes::PAM_SUCCESS,
        "logins go on"
    );
}

#[test]
fn a_claimed_pam_item_cannot_forge_an_rhost_for_fail2ban() {
    let rsyslog = Rsyslog::start();
    let target = format!("unix:{}", rsyslog.socket_path().display());
    let d = daemon_logging_to(&target, "");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let conv = Conversation::new().answer(Some("Password: "), "wrong horse battery");
    let mut s = stack(&d, "").start("alice", conv).unwrap();
    let forged = "x rhost=203.0.113.9 user=y";
    assert_eq!(
        s.set_item_str(credd_e2e::libpam::items::PAM_RUSER, forged),
        codes::PAM_SUCCESS
    );
    assert_eq!(
        s.set_item_str(credd_e2e::libpam::items::PAM_TTY, forged),
        codes::PAM_SUCCESS
    );
    assert_eq!(s.authenticate(0), codes::PAM_AUTH_ERR);
    drop(s);
    let line = rsyslog
        .wait_for_line(
            |l| l.contains("pam_credd(sshd:auth): authentication failure;"),
            WAIT,
        )
        .expect("the classic failure line");
    assert!(line.contains("ruser=x_rhost_203.0.113.9_user_y"), "{line}");
    let out = Command::new("fail2ban-regex")
        .arg(rsyslog.messages_path())
        .arg("pam-generic[__pam_auth=pam_credd]")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(" 0 matched"),
        "nothing to ban without a real rhost:\n{report}"
    );
}

#[test]
fn a_lost_audit_key_is_reported_at_start() {
    let mut d = TestDaemon::start();
    ctl_ok(&d, &["user", "add", "u1"]);
    d.stop();
    std::fs::remove_file(d.state_dir().join("audit.key")).unwrap();
    d.restart();
    assert!(
        d.wait_for_log("can no longer be verified", WAIT),
        "{:?}",
        d.log()
    );
    assert_eq!(
        verify(&d).0,
        Some(3),
        "the old rows fail verification under the new key"
    );
}
