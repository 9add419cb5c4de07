//! The reset lifecycle through the real module, real libpam and a real daemon: a code, the forced
//! change at login, self-service changes, quality rules, rate limits and sessions.

use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes, flags};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";

fn daemon(extra: &str) -> TestDaemon {
    TestDaemon::start_with(&format!("{}{extra}\n", credd_e2e::daemon::TEST_CONFIG))
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "credd-test",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
            d.module_line("password", "required", ""),
            d.module_line("session", "required", ""),
        ],
    )
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

/// `credctl reset USER`: stdout is the code alone.
fn reset(d: &TestDaemon, user: &str) -> String {
    let code = ctl_ok(d, &["reset", user]);
    assert!(
        code.ends_with('\n') && code.lines().count() == 1,
        "{code:?}"
    );
    code.trim().to_string()
}

fn login(stack: &PamStack, user: &str, secret: &str) -> i32 {
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start(user, conv).unwrap().authenticate(0)
}

fn show(d: &TestDaemon, user: &str) -> Value {
    serde_json::from_str(&ctl_ok(d, &["user", "show", user, "--json"])).unwrap()
}

#[test]
fn the_full_reset_flow_through_libpam() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let code = reset(&d, "alice");
    assert_eq!(code.len(), 19, "{code}");
    assert_eq!(
        login(&s, "alice", PASSWORD),
        codes::PAM_AUTH_ERR,
        "old password invalidated"
    );

    // The user reads the code aloud: lower case, spaces instead of dashes.
    let typed = code.to_lowercase().replace('-', " ");
    let conv = Conversation::new()
        .answer(Some("Password: "), &typed)
        .answer(Some("New password: "), NEW_PASSWORD)
        .answer(Some("Retype new password: "), NEW_PASSWORD);
    let mut session = s.start("alice", conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(session.acct_mgmt(0), codes::PAM_NEW_AUTHTOK_REQD);
    let rc = session.chauthtok(flags::PAM_CHANGE_EXPIRED_AUTHTOK);
    assert_eq!(
        rc,
        codes::PAM_SUCCESS,
        "{} {:?}",
        codes::name(rc),
        session.messages()
    );
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS);
    assert_eq!(session.script_left(), 0);
    drop(session);

    assert_eq!(show(&d, "alice")["must_change"], false);
    assert_eq!(login(&s, "alice", NEW_PASSWORD), codes::PAM_SUCCESS);
    assert_eq!(
        login(&s, "alice", &code),
        codes::PAM_AUTH_ERR,
        "a code is single use"
    );
    assert_eq!(login(&s, "alice", PASSWORD), codes::PAM_AUTH_ERR);
    let log = d.log().join("\n");
    assert!(log.contains("event=reset_issued"), "{log}");
    assert!(log.contains("event=code_redeemed"), "{log}");
    assert!(!log.contains(&code), "the code must never be logged");
}

#[test]
fn without_the_change_the_code_does_not_get_in() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let code = reset(&d, "alice");
    for _ in 0..2 {
        let conv = Conversation::new().answer(Some("Password: "), &code);
        let mut session = s.start("alice", conv).unwrap();
        assert_eq!(session.authenticate(0), codes::PAM_SUCCESS);
        assert_eq!(session.acct_mgmt(0), codes::PAM_NEW_AUTHTOK_REQD);
    }
    // Not consumed by logins that stopped at the forced change.
    assert_eq!(show(&d, "alice")["must_change"], true);
}

#[test]
fn wrong_codes_count_toward_max_attempts_and_burn_the_code() {
    let d = daemon("[codes]\nmax_attempts = 3\n[lockout]\ndeny = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let code = reset(&d, "alice");
    for wrong in [
        "0000-0000-0000-0000",
        "1111-1111-1111-1111",
        "2222-2222-2222-2222",
    ] {
        assert_eq!(login(&s, "alice", wrong), codes::PAM_AUTH_ERR);
    }
    let status: Value = serde_json::from_str(&ctl_ok(&d, &["status", "alice", "--json"])).unwrap();
    assert_eq!(
        status["locked"], false,
        "wrong codes must not lock the account (deny = 2)"
    );
    assert_eq!(
        login(&s, "alice", &code),
        codes::PAM_AUTH_ERR,
        "the code is burned"
    );
    assert!(d.wait_for_log("event=code_burned", Duration::from_secs(5)));
}

#[test]
fn a_failures_lock_does_not_block_a_code_but_an_administrative_lock_does() {
    let d = daemon("[lockout]\ndeny = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    for _ in 0..2 {
        login(&s, "alice", "wrong horse battery");
    }
    let code = reset(&d, "alice");
    assert_eq!(login(&s, "alice", &code), codes::PAM_SUCCESS);
    ctl_ok(&d, &["lock", "alice", "--reason", "after the reset"]);
    assert_eq!(login(&s, "alice", &code), codes::PAM_AUTH_ERR);
}

#[test]
fn an_expired_code_is_refused_and_purged_with_an_audit_row() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let out = d.ctl(&["reset", "alice", "--ttl", "1m"]);
    assert!(out.status.success());
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    // The shortest lifetime is a minute; waiting it out is the behaviour under test.
    std::thread::sleep(Duration::from_secs(61));
    assert_eq!(login(&stack(&d), "alice", &code), codes::PAM_AUTH_ERR);
    assert!(
        d.wait_for_log("event=code_expired", Duration::from_secs(20)),
        "{:?}",
        d.log()
    );
}

#[test]
fn root_changes_a_password_without_the_old_one_and_quality_rules_say_why() {
    let blocklist = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(blocklist.path(), "Forbidden Passphrase\n").unwrap();
    let d = daemon(&format!("[password]\nblocklist = {:?}", blocklist.path()));
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let change = |answers: &[(&str, &str)]| {
        let conv = answers
            .iter()
            .fold(Conversation::new(), |c, (prompt, answer)| {
                c.answer(Some(prompt), answer)
            });
        let mut session = s.start("alice", conv).unwrap();
        let rc = session.chauthtok(0);
        (
            rc,
            session
                .messages()
                .into_iter()
                .map(|(_, m)| m)
                .collect::<Vec<_>>(),
        )
    };
    // pam_pwquality's dialogue: each weak first entry is refused before any retype, with the
    // reason, and the module asks again; after retry=3 refusals the change gives up.
    let (rc, messages) = change(&[
        ("New password: ", "short"),
        ("New password: ", "my name is alice!"),
        ("New password: ", "forbidden passphrase"),
    ]);
    assert_eq!(rc, codes::PAM_MAXTRIES, "{messages:?}");
    // The whole transcript: no weak entry was ever asked for a second time.
    assert_eq!(
        messages,
        [
            "New password: ",
            "BAD PASSWORD: The password is shorter than 12 characters",
            "New password: ",
            "BAD PASSWORD: The password contains the user name in some form",
            "New password: ",
            "BAD PASSWORD: The password is on the list of forbidden passwords",
        ]
    );
    assert_eq!(
        login(&s, "alice", PASSWORD),
        codes::PAM_SUCCESS,
        "nothing was changed"
    );
    // A weak choice, then a good one, in the same conversation.
    let (rc, messages) = change(&[
        ("New password: ", "short"),
        ("New password: ", NEW_PASSWORD),
        ("Retype new password: ", NEW_PASSWORD),
    ]);
    assert_eq!(rc, codes::PAM_SUCCESS, "{messages:?}");
    assert_eq!(
        messages,
        [
            "New password: ",
            "BAD PASSWORD: The password is shorter than 12 characters",
            "New password: ",
            "Retype new password: ",
        ]
    );
    assert_eq!(login(&s, "alice", NEW_PASSWORD), codes::PAM_SUCCESS);
}

#[test]
fn mismatched_new_passwords_change_nothing() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    // Three mistyped retypes (retry=3): each says so and asks again, then the change gives up.
    let conv = (0..3).fold(Conversation::new(), |c, _| {
        c.answer(Some("New password: "), NEW_PASSWORD)
            .answer(Some("Retype new password: "), "something else entirely")
    });
    let mut session = s.start("alice", conv).unwrap();
    assert_eq!(session.chauthtok(0), codes::PAM_MAXTRIES);
    let messages: Vec<_> = session.messages().into_iter().map(|(_, m)| m).collect();
    let round = [
        "New password: ",
        "Retype new password: ",
        "Sorry, passwords do not match.",
    ];
    assert_eq!(messages, [round, round, round].concat());
    drop(session);
    assert_eq!(login(&s, "alice", PASSWORD), codes::PAM_SUCCESS);
}

#[test]
fn resets_are_rate_limited_per_account() {
    let d = daemon("[codes]\nper_account_per_hour = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    reset(&d, "alice");
    reset(&d, "alice");
    let out = d.ctl(&["reset", "alice"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate limit"));
    assert!(d.wait_for_log("limit=reset", Duration::from_secs(5)));
    // A new reset replaces the previous code: the latest one works.
    let d = daemon("");
    d.add_user("bob", PASSWORD, &["--uid", "5002"]);
    let first = reset(&d, "bob");
    let second = reset(&d, "bob");
    assert_eq!(login(&stack(&d), "bob", &first), codes::PAM_AUTH_ERR);
    assert_eq!(login(&stack(&d), "bob", &second), codes::PAM_SUCCESS);
}

#[test]
fn sessions_are_registered_and_revoked_by_a_reset() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let conv = Conversation::new().answer(Some("Password: "), PASSWORD);
    let mut session = s.start("alice", conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(session.open_session(0), codes::PAM_SUCCESS);
    let rows: Value = serde_json::from_str(&ctl_ok(&d, &["sessions", "alice", "--json"])).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["service"], "credd-test");
    assert_eq!(rows[0]["pid"], std::process::id());
    assert_eq!(rows[0]["revoked_at"], Value::Null);

    let out = d.ctl(&["reset", "alice", "--json"]);
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["sessions_revoked"], 1);
    let rows: Value = serde_json::from_str(&ctl_ok(&d, &["sessions", "--json"])).unwrap();
    assert_eq!(rows[0]["revoked_reason"], "reset");
    assert!(rows[0]["revoked_at"].is_string());

    assert_eq!(session.close_session(0), codes::PAM_SUCCESS);
    let rows: Value = serde_json::from_str(&ctl_ok(&d, &["sessions", "--json"])).unwrap();
    assert!(rows.as_array().unwrap().is_empty());
}

#[test]
fn the_operator_guide_form_resets_locks_and_unlocks() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    ctl_ok(&d, &["--modify-user-state", "--uid=5001", "--action=lock"]);
    assert_eq!(login(&s, "alice", PASSWORD), codes::PAM_AUTH_ERR);
    ctl_ok(
        &d,
        &["--modify-user-state", "--uid=5001", "--action=unlock"],
    );
    assert_eq!(login(&s, "alice", PASSWORD), codes::PAM_SUCCESS);
    let code = ctl_ok(&d, &["--modify-user-state", "--uid=5001", "--action=reset"]);
    assert_eq!(login(&s, "alice", code.trim()), codes::PAM_SUCCESS);
}

#[test]
fn a_password_set_by_an_administrator_voids_a_pending_code() {
    let d = daemon("");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let code = reset(&d, "alice");
    let out = d.ctl_stdin(
        &["passwd", "alice", "--password-stdin"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = stack(&d);
    assert_eq!(login(&s, "alice", &code), codes::PAM_AUTH_ERR);
    assert_eq!(login(&s, "alice", NEW_PASSWORD), codes::PAM_SUCCESS);
    assert!(d.wait_for_log("by=administrator", Duration::from_secs(5)));
}

#[test]
fn a_failures_lock_after_the_reset_does_not_stop_the_code_at_account_management() {
    let d = daemon("[lockout]\ndeny = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let code = reset(&d, "alice");
    // Someone types the old password twice after the reset: a failures lock.
    for _ in 0..2 {
        assert_eq!(login(&s, "alice", PASSWORD), codes::PAM_AUTH_ERR);
    }
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
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS);
}

#[test]
fn with_keep_password_the_password_works_and_wrong_codes_still_burn_the_code() {
    let d = daemon("[codes]\nmax_attempts = 2");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let s = stack(&d);
    let code = ctl_ok(&d, &["reset", "alice", "--keep-password"])
        .trim()
        .to_string();
    assert_eq!(
        login(&s, "alice", PASSWORD),
        codes::PAM_SUCCESS,
        "the password was kept"
    );
    for wrong in ["0000-0000-0000-0000", "1111-1111-1111-1111"] {
        assert_eq!(login(&s, "alice", wrong), codes::PAM_AUTH_ERR);
    }
    assert_eq!(
        login(&s, "alice", &code),
        codes::PAM_AUTH_ERR,
        "burned after max_attempts"
    );
}
