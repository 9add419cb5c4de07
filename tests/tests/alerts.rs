//! The detectors of issue 21 end to end: a real credd, real libpam (tests/src/libpam.rs), the
//! alerts' audit events through a real rsyslogd, and `credctl alerts`.

use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes};
use credd_e2e::rsyslog::{Rsyslog, sd_param};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong horse battery";
const WAIT: Duration = Duration::from_secs(20);
/// A short settle, so that tests need not wait the default 20 s for an episode to go quiet.
const ALERTS: &str = "[alerts]\nsettle = \"2s\"\n";

fn daemon(syslog: Option<&Rsyslog>, extra: &str) -> TestDaemon {
    let audit = match syslog {
        Some(r) => format!(
            "[audit]\nsyslog = \"udp:{}\"\nformat = \"rfc5424\"\n",
            r.udp_addr()
        ),
        None => "[audit]\nsyslog = \"none\"\n".into(),
    };
    TestDaemon::start_with(&format!(
        "{}{audit}{ALERTS}{extra}",
        credd_e2e::daemon::TEST_CONFIG
    ))
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "sshd",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
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

fn alerts(d: &TestDaemon) -> Vec<Value> {
    let out = ctl_ok(d, &["alerts", "--json"]);
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn field<'a>(alert: &'a Value, key: &str) -> Option<&'a str> {
    alert["fields"]
        .as_array()?
        .iter()
        .find(|kv| kv[0] == key)
        .and_then(|kv| kv[1].as_str())
}

/// Waits until `credctl alerts` lists `n` alerts.
fn wait_for_alerts(d: &TestDaemon, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + WAIT;
    loop {
        let found = alerts(d);
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn users(d: &TestDaemon, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let name = format!("user{i:02}");
            d.add_user(&name, PASSWORD, &[]);
            name
        })
        .collect()
}

/// Issue 21 §5: one wrong password for each of 20 accounts from one rhost raises exactly one
/// alert_spray naming the rhost and counting 20 accounts; no account locks (deny = 5, one
/// failure each); a right password from another source works, during and after the spray; the
/// event reaches rsyslog with its fields, at severity warning.
#[test]
fn a_spray_across_twenty_accounts_raises_one_alert_and_locks_nothing() {
    let rsyslog = Rsyslog::start();
    let d = daemon(Some(&rsyslog), "");
    let names = users(&d, 20);
    let s = stack(&d);
    for name in &names {
        assert_eq!(login(&s, name, WRONG, "203.0.113.5"), codes::PAM_AUTH_ERR);
    }
    assert_eq!(
        login(&s, "user07", PASSWORD, "198.51.100.7"),
        codes::PAM_SUCCESS,
        "a right password from another source, right after the spray"
    );
    let found = wait_for_alerts(&d, 1);
    // Nothing more comes: once per episode.
    std::thread::sleep(Duration::from_secs(4));
    let found_later = alerts(&d);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found_later.len(), 1, "{found_later:#?}");
    let a = &found[0];
    assert_eq!(a["event"], "alert_spray");
    assert_eq!(a["rhost"], "203.0.113.5");
    assert_eq!(field(a, "source"), Some("rhost:203.0.113.5"));
    assert_eq!(field(a, "accounts"), Some("20"));
    assert_eq!(field(a, "window"), Some("600s"));
    assert_eq!(field(a, "names").unwrap().split(',').count(), 20);
    assert!(a["acked"].is_null());
    for name in &names {
        let status: Value = serde_json::from_str(&ctl_ok(&d, &["status", name, "--json"])).unwrap();
        assert_eq!(status["locked"], false, "{name}: {status}");
    }
    for name in ["user00", "user19"] {
        assert_eq!(
            login(&s, name, PASSWORD, "198.51.100.8"),
            codes::PAM_SUCCESS
        );
    }
    // Through rsyslog, with the fields as structured data.
    let record = rsyslog
        .wait_for_json(
            |r| sd_param(r, "credd@32473", "event") == Some("alert_spray"),
            WAIT,
        )
        .unwrap_or_else(|| panic!("no alert_spray in syslog: {}", rsyslog.diagnostics()));
    assert_eq!(record["severity"], "warning", "{record}");
    assert_eq!(record["facility"], "authpriv", "{record}");
    for (key, value) in [
        ("kind", "spray"),
        ("source", "rhost:203.0.113.5"),
        ("accounts", "20"),
        ("rhost", "203.0.113.5"),
        ("window", "600s"),
        ("outcome", "detected"),
    ] {
        assert_eq!(
            sd_param(&record, "credd@32473", key),
            Some(value),
            "{record}"
        );
    }
    for key in ["first", "last", "names", "id"] {
        assert!(
            sd_param(&record, "credd@32473", key).is_some(),
            "{key}: {record}"
        );
    }
}

/// With `action = "throttle"`, the spraying source's attempts are delayed, a right password from
/// it still gets in (later), and another source is not delayed at all.
#[test]
fn a_throttled_spray_delays_its_source_and_no_other() {
    let d = daemon(
        None,
        "spray = { threshold = 10, window = \"10m\", action = \"throttle\" }\nthrottle_delay = \"1500ms\"\n",
    );
    let names = users(&d, 12);
    let s = stack(&d);
    for name in &names[..10] {
        login(&s, name, WRONG, "203.0.113.6");
    }
    let t = Instant::now();
    assert_eq!(
        login(&s, "user10", PASSWORD, "203.0.113.6"),
        codes::PAM_SUCCESS
    );
    let throttled = t.elapsed();
    let t = Instant::now();
    assert_eq!(
        login(&s, "user11", PASSWORD, "198.51.100.9"),
        codes::PAM_SUCCESS
    );
    let other = t.elapsed();
    assert!(throttled >= Duration::from_millis(1500), "{throttled:?}");
    assert!(other < Duration::from_millis(1000), "{other:?}");
}

/// Ten resets by one administrator within the hour raise alert_reset_burst; `credctl alerts ack`
/// acknowledges it (audited as alert_acked), and the listing says so.
#[test]
fn a_reset_burst_raises_an_alert_that_can_be_acknowledged() {
    let d = daemon(None, "[codes]\nper_admin_per_hour = 100\n");
    let names = users(&d, 10);
    for name in &names {
        ctl_ok(&d, &["reset", name]);
    }
    let found = wait_for_alerts(&d, 1);
    assert_eq!(found.len(), 1, "{found:#?}");
    let a = &found[0];
    assert_eq!(a["event"], "alert_reset_burst");
    assert_eq!(field(a, "source"), Some("uid:0"));
    assert_eq!(field(a, "accounts"), Some("10"));
    let id = a["id"].as_str().unwrap();
    let out = ctl_ok(&d, &["alerts", "ack", id]);
    assert!(out.contains("acknowledged"), "{out}");
    let after = alerts(&d);
    assert_eq!(after[0]["acked"]["by_uid"], 0, "{after:#?}");
    let audit = ctl_ok(&d, &["audit"]);
    assert!(audit.contains("alert_acked"), "{audit}");
    let human = ctl_ok(&d, &["alerts"]);
    assert!(
        human.contains("alert_reset_burst") && human.contains("acked"),
        "{human}"
    );
    let bad = d.ctl(&["alerts", "ack", "0123456789abcdef0123456789abcdef"]);
    assert!(!bad.status.success());
}

/// A reset code redeemed from where the account logs in raises nothing; from a place it never
/// logged in from, alert_unexpected_code.
#[test]
fn a_code_from_a_source_that_never_logged_in_raises_an_alert() {
    let d = daemon(None, "");
    d.add_user("alice", PASSWORD, &[]);
    d.add_user("bob", PASSWORD, &[]);
    let s = stack(&d);
    for (user, home) in [("alice", "198.51.100.10"), ("bob", "198.51.100.11")] {
        assert_eq!(login(&s, user, PASSWORD, home), codes::PAM_SUCCESS);
    }
    let code = ctl_ok(&d, &["reset", "alice"]).trim().to_string();
    login(&s, "alice", &code, "198.51.100.10");
    let code = ctl_ok(&d, &["reset", "bob"]).trim().to_string();
    login(&s, "bob", &code, "203.0.113.77");
    let found = wait_for_alerts(&d, 1);
    std::thread::sleep(Duration::from_secs(3));
    let found = alerts(&d).into_iter().chain(found).collect::<Vec<_>>();
    let unexpected: Vec<&Value> = found
        .iter()
        .filter(|a| a["event"] == "alert_unexpected_code")
        .collect();
    assert!(!unexpected.is_empty(), "{found:#?}");
    assert!(unexpected.iter().all(|a| a["user"] == "bob"), "{found:#?}");
}

/// False positives: a replay of ordinary logins — 30 users logging in with right passwords from
/// an office NAT and from home, a few typos (each followed by the right password), two users
/// redeeming reset codes where they log in — raises no alert at all.
#[test]
fn ordinary_logins_raise_no_alert() {
    let d = daemon(None, "");
    let names = users(&d, 30);
    let s = stack(&d);
    let office = "192.0.2.1";
    let mut attempts = 0;
    for round in 0..3 {
        for (i, name) in names.iter().enumerate() {
            let home = format!("198.51.100.{}", 20 + i);
            let from = if (i + round) % 3 == 0 {
                home.as_str()
            } else {
                office
            };
            if (i * 7 + round) % 10 == 0 {
                assert_eq!(
                    login(&s, name, "corect horse battery", from),
                    codes::PAM_AUTH_ERR
                );
                attempts += 1;
            }
            assert_eq!(login(&s, name, PASSWORD, from), codes::PAM_SUCCESS);
            attempts += 1;
        }
    }
    for name in ["user03", "user04"] {
        let code = ctl_ok(&d, &["reset", name]).trim().to_string();
        login(&s, name, &code, office);
        attempts += 1;
    }
    std::thread::sleep(Duration::from_secs(5));
    let found = alerts(&d);
    eprintln!("replay: {attempts} attempts, {} alerts", found.len());
    assert!(found.is_empty(), "{found:#?}");
}
