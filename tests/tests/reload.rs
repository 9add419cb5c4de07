//! SIGHUP: credd reads its config file again and applies it from the next request on; a file that
//! does not load changes nothing.

use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes};

const PASSWORD: &str = "the right long passphrase";

fn config(deny: u32, extra: &str) -> String {
    format!(
        "[hashing]\niterations = 1000\n[lockout]\ndeny = {deny}\nfail_interval = \"15m\"\n{extra}"
    )
}

fn login(d: &TestDaemon, secret: &str) -> i32 {
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start("alice", conv).unwrap().authenticate(0)
}

fn locked(d: &TestDaemon) -> bool {
    let out = d.ctl(&["status", "alice", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["locked"].as_bool().unwrap()
}

/// Sends SIGHUP and waits for the log line credd answers it with, which holds `needle`.
fn hup(d: &TestDaemon, needle: &str) -> String {
    unsafe {
        libc::kill(d.pid() as i32, libc::SIGHUP);
    }
    assert!(
        d.wait_for_log(needle, Duration::from_secs(10)),
        "no {needle:?} after SIGHUP: {:?}",
        d.log()
    );
    d.log()
        .into_iter()
        .rfind(|l| l.contains(needle))
        .expect("the line just seen")
}

#[test]
fn a_reload_applies_the_new_policy_and_a_bad_file_changes_nothing() {
    let d = TestDaemon::start_with(&config(2, ""));
    d.add_user("alice", PASSWORD, &[]);

    // deny 2 → 4: after three wrong passwords alice is not locked, after the fourth she is.
    d.set_config(&config(4, ""));
    let line = hup(&d, "configuration reloaded");
    assert!(line.contains("configuration reloaded"), "{line}");
    assert!(!line.contains("needs_restart"), "{line}");
    for _ in 0..3 {
        assert_eq!(login(&d, "a wrong passphrase"), codes::PAM_AUTH_ERR);
    }
    assert!(!locked(&d), "locked at the old deny = 2");
    assert!(d.ctl(&["unlock", "alice"]).status.success());

    // A file with an unknown key: refused, and the running policy (deny 4) stays.
    d.set_config(&config(1, "[lockout2]\nx = 1\n"));
    let line = hup(&d, "not reloaded");
    assert!(
        line.contains("not reloaded") && line.contains("lockout2"),
        "{line}"
    );
    assert_eq!(login(&d, "a wrong passphrase"), codes::PAM_AUTH_ERR);
    assert!(!locked(&d), "the refused file's deny = 1 was applied");
    assert_eq!(login(&d, PASSWORD), codes::PAM_SUCCESS);

    // A section that applies only at start is named, and the rest still applies.
    d.set_config(&config(1, "[limits]\nmax_connections = 100\n"));
    let line = hup(&d, "needs_restart");
    assert!(line.contains("needs_restart=limits"), "{line}");
    assert_eq!(login(&d, "a wrong passphrase"), codes::PAM_AUTH_ERR);
    assert!(locked(&d), "deny = 1 was not applied");

    let audit = d.ctl(&["audit", "--json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    let reloads: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("config_reloaded"))
        .collect();
    assert_eq!(reloads.len(), 3, "{audit}");
    assert!(reloads[1].contains("\"refused\""), "{}", reloads[1]);
}
