//! Lockout and rate limits through the real module, real libpam and a real daemon.

use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const WRONG: &str = "wrong horse battery";
const NO_RATE_LIMITS: &str = "[rate]\naccount = { burst = 0, per_minute = 0 }\n\
                              host = { burst = 0, per_minute = 0 }\n\
                              local_uid = { burst = 0, per_minute = 0 }\n";

fn daemon(lockout: &str) -> TestDaemon {
    TestDaemon::start_with(&format!(
        "{}{NO_RATE_LIMITS}[lockout]\n{lockout}\n",
        credd_e2e::daemon::TEST_CONFIG
    ))
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "credd-test",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
        ],
    )
}

/// One authentication: the return code and every message the user saw (prompts included).
fn attempt(stack: &PamStack, user: &str, password: &str) -> (i32, Vec<String>) {
    let conv = Conversation::new().answer(Some("Password: "), password);
    let mut s = stack.start(user, conv).expect("pam_start_confdir");
    let rc = s.authenticate(0);
    (rc, s.messages().into_iter().map(|(_, m)| m).collect())
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

fn counter(d: &TestDaemon, name: &str) -> u64 {
    json(d, &["status", "--daemon", "--json"])[name]
        .as_u64()
        .unwrap_or_else(|| panic!("counter {name} missing"))
}

fn ctl_ok(d: &TestDaemon, args: &[&str]) {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn deny_failures_lock_the_account_until_an_administrator_unlocks_it() {
    let d = daemon("deny = 3");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    for _ in 0..3 {
        assert_eq!(attempt(&s, "alice", WRONG).0, codes::PAM_AUTH_ERR);
    }
    let (rc, messages) = attempt(&s, "alice", PASSWORD);
    assert_eq!(
        rc,
        codes::PAM_AUTH_ERR,
        "the right password must not open a locked account"
    );
    assert!(
        messages.iter().any(|m| m.contains("locked")),
        "{messages:?}"
    );

    let status = json(&d, &["status", "alice", "--json"]);
    assert_eq!(status["locked"], true);
    assert_eq!(status["failures"], 3);
    assert_eq!(status["unlock"], "administrator");
    assert_eq!(status["locked_until"], Value::Null);
    assert_eq!(status["last_failure"]["service"], "credd-test");

    ctl_ok(&d, &["unlock", "alice"]);
    assert_eq!(attempt(&s, "alice", PASSWORD).0, codes::PAM_SUCCESS);
    let status = json(&d, &["status", "alice", "--json"]);
    assert_eq!(status["locked"], false);
    assert_eq!(status["failures"], 0);
}

#[test]
fn a_lock_survives_a_daemon_restart() {
    let mut d = daemon("deny = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    for _ in 0..2 {
        attempt(&stack(&d), "alice", WRONG);
    }
    d.restart();
    assert_eq!(
        attempt(&stack(&d), "alice", PASSWORD).0,
        codes::PAM_AUTH_ERR
    );
    assert_eq!(json(&d, &["status", "alice", "--json"])["locked"], true);
}

#[test]
fn a_failures_lock_lifts_after_unlock_time() {
    let d = daemon("deny = 2\nunlock_time = \"2s\"");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    for _ in 0..2 {
        attempt(&s, "alice", WRONG);
    }
    let status = json(&d, &["status", "alice", "--json"]);
    assert_eq!(status["unlock"], "time");
    assert!(status["locked_until"].is_string(), "{status}");
    assert_eq!(attempt(&s, "alice", PASSWORD).0, codes::PAM_AUTH_ERR);
    // Letting the lock's time pass is the behaviour under test, not synchronisation.
    std::thread::sleep(Duration::from_millis(3100));
    assert_eq!(attempt(&s, "alice", PASSWORD).0, codes::PAM_SUCCESS);
}

#[test]
fn parallel_guesses_get_at_most_deny_verifications() {
    let d = daemon("deny = 5");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let before = counter(&d, "verifications");
    std::thread::scope(|scope| {
        for _ in 0..20 {
            scope.spawn(|| {
                let (rc, _) = attempt(&stack(&d), "alice", WRONG);
                assert_eq!(rc, codes::PAM_AUTH_ERR);
            });
        }
    });
    assert_eq!(counter(&d, "verifications") - before, 5);
    let status = json(&d, &["status", "alice", "--json"]);
    assert_eq!(status["locked"], true);
    assert_eq!(status["failures"], 5);
}

#[test]
fn a_locked_account_costs_no_hashing() {
    let d = daemon("deny = 5");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    ctl_ok(&d, &["lock", "alice", "--reason", "incident 42"]);
    let verifications = counter(&d, "verifications");
    let locked = counter(&d, "locked_replies");
    for _ in 0..5 {
        assert_eq!(
            attempt(&stack(&d), "alice", PASSWORD).0,
            codes::PAM_AUTH_ERR
        );
    }
    assert_eq!(counter(&d, "verifications"), verifications);
    assert_eq!(counter(&d, "locked_replies") - locked, 5);
    let status = json(&d, &["status", "alice", "--json"]);
    assert_eq!(status["lock_kind"], "administrator");
    assert_eq!(status["lock_reason"], "incident 42");
}

#[test]
fn unknown_and_known_names_look_the_same_apart_from_the_return_code() {
    let d = daemon("deny = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let run = |user: &str| -> (Vec<i32>, Vec<Vec<String>>, u64) {
        let before = counter(&d, "verifications");
        let (codes, messages): (Vec<i32>, Vec<Vec<String>>) =
            (0..4).map(|_| attempt(&s, user, WRONG)).unzip();
        (codes, messages, counter(&d, "verifications") - before)
    };
    let (known_codes, known_messages, known_work) = run("alice");
    let (ghost_codes, ghost_messages, ghost_work) = run("ghost");
    assert_eq!(
        known_messages, ghost_messages,
        "prompts and messages must match"
    );
    assert_eq!(known_work, 2, "two verifications, then locked");
    assert_eq!(ghost_work, known_work, "hashing work must match");
    assert!(
        known_messages[2].iter().any(|m| m.contains("locked")),
        "{known_messages:?}"
    );
    assert_eq!(known_codes, vec![codes::PAM_AUTH_ERR; 4]);
    assert_eq!(ghost_codes, vec![codes::PAM_USER_UNKNOWN; 4]);
}

#[test]
fn account_management_refuses_a_locked_account() {
    let d = daemon("deny = 5");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    ctl_ok(&d, &["lock", "--uid", "5001"]);
    let s = stack(&d);
    let mut session = s.start("alice", Conversation::new()).unwrap();
    assert_eq!(session.acct_mgmt(0), codes::PAM_PERM_DENIED);
    assert!(
        session.messages().iter().any(|(_, m)| m.contains("locked")),
        "{:?}",
        session.messages()
    );
    ctl_ok(&d, &["unlock", "--uid", "5001"]);
    let mut session = s.start("alice", Conversation::new()).unwrap();
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS);
}

#[test]
fn account_check_false_leaves_acct_mgmt_alone() {
    let d = daemon("deny = 5\naccount_check = false");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    ctl_ok(&d, &["lock", "alice"]);
    let mut session = stack(&d).start("alice", Conversation::new()).unwrap();
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS);
}

#[test]
fn root_locks_only_with_even_deny_root() {
    // `root` is known to NSS with uid 0, so credd treats this account as root's.
    let d = daemon("deny = 2");
    d.add_user("root", PASSWORD, &[]);
    let s = stack(&d);
    for _ in 0..4 {
        assert_eq!(attempt(&s, "root", WRONG).0, codes::PAM_AUTH_ERR);
    }
    assert_eq!(attempt(&s, "root", PASSWORD).0, codes::PAM_SUCCESS);

    let d = daemon("deny = 2\neven_deny_root = true");
    d.add_user("root", PASSWORD, &[]);
    let s = stack(&d);
    for _ in 0..2 {
        attempt(&s, "root", WRONG);
    }
    assert_eq!(attempt(&s, "root", PASSWORD).0, codes::PAM_AUTH_ERR);
}

#[test]
fn status_lists_accounts_with_failures_or_locks_only() {
    let d = daemon("deny = 3");
    for (name, uid) in [("alice", "5001"), ("bob", "5002"), ("carol", "5003")] {
        d.add_user(name, PASSWORD, &["--uid", uid]);
    }
    let s = stack(&d);
    for _ in 0..3 {
        attempt(&s, "alice", WRONG);
    }
    attempt(&s, "bob", WRONG);
    let rows = json(&d, &["status", "--json"]);
    let rows = rows.as_array().unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r["user"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);
    assert_eq!(rows[0]["locked"], true);
    assert_eq!(rows[1]["locked"], false);
    assert_eq!(rows[1]["failures"], 1);
    let table = d.ctl(&["status"]);
    assert_eq!(String::from_utf8_lossy(&table.stdout).lines().count(), 3);
}

#[test]
fn a_success_clears_the_failure_count() {
    let d = daemon("deny = 3");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    for _ in 0..2 {
        attempt(&s, "alice", WRONG);
    }
    assert_eq!(attempt(&s, "alice", PASSWORD).0, codes::PAM_SUCCESS);
    for _ in 0..2 {
        attempt(&s, "alice", WRONG);
    }
    assert_eq!(
        attempt(&s, "alice", PASSWORD).0,
        codes::PAM_SUCCESS,
        "two failures after a success must not lock with deny = 3"
    );
}

#[test]
fn the_account_rate_limit_trips_and_recovers() {
    let d = TestDaemon::start_with(&format!(
        "{}[lockout]\ndeny = 0\n[rate]\naccount = {{ burst = 2, per_minute = 60 }}\n",
        credd_e2e::daemon::TEST_CONFIG
    ));
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let verifications = counter(&d, "verifications");
    for _ in 0..2 {
        assert_eq!(attempt(&s, "alice", WRONG).0, codes::PAM_AUTH_ERR);
    }
    assert_eq!(
        attempt(&s, "alice", PASSWORD).0,
        codes::PAM_AUTH_ERR,
        "over the limit"
    );
    assert_eq!(
        counter(&d, "verifications") - verifications,
        2,
        "refused before hashing"
    );
    assert_eq!(counter(&d, "rate_limited_replies"), 1);
    let trips = d
        .log()
        .iter()
        .filter(|l| l.contains("rate limit account tripped"))
        .count();
    assert_eq!(trips, 1, "one log line per burst");
    // One token per second refills the bucket: waiting is the behaviour under test.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(attempt(&s, "alice", PASSWORD).0, codes::PAM_SUCCESS);
}
