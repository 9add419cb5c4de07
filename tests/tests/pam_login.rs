//! Logins through the real pam_credd.so, loaded by real libpam from a private stack, against a real
//! credd.

use std::os::unix::net::UnixListener;
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes, system_module};

const PASSWORD: &str = "correct horse battery";

fn auth_stack(d: &TestDaemon, args: &str) -> PamStack {
    PamStack::new("credd-test", &[d.module_line("auth", "required", args)])
}

fn authenticate(stack: &PamStack, user: &str, password: &str) -> i32 {
    let conv = Conversation::new().answer(Some("Password: "), password);
    let mut session = stack.start(user, conv).expect("pam_start_confdir");
    let rc = session.authenticate(0);
    assert_eq!(
        session.script_left(),
        0,
        "the module never asked for the password"
    );
    rc
}

#[test]
fn correct_password_succeeds() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let rc = authenticate(&auth_stack(&d, ""), "alice", PASSWORD);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", codes::name(rc));
}

#[test]
fn wrong_password_is_auth_err() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let rc = authenticate(&auth_stack(&d, ""), "alice", "correct horse batterz");
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", codes::name(rc));
}

#[test]
fn unknown_user_is_user_unknown() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let rc = authenticate(&auth_stack(&d, ""), "mallory", PASSWORD);
    assert_eq!(rc, codes::PAM_USER_UNKNOWN, "{}", codes::name(rc));
}

#[test]
fn ignore_unknown_user_lets_the_next_module_decide() {
    // credd's PAM_IGNORE leaves the verdict to pam_permit; a PAM_USER_UNKNOWN would end the stack.
    let d = TestDaemon::start();
    let permit = system_module("pam_permit.so").expect("pam_permit.so");
    let stack = |arg: &str| {
        PamStack::new(
            "credd-test",
            &[
                d.module_line("auth", "[success=done ignore=ignore default=die]", arg),
                format!("auth required {}", permit.display()),
            ],
        )
    };
    let rc = authenticate(&stack(""), "mallory", PASSWORD);
    assert_eq!(rc, codes::PAM_USER_UNKNOWN, "{}", codes::name(rc));
    let rc = authenticate(&stack("ignore_unknown_user"), "mallory", PASSWORD);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", codes::name(rc));
}

#[test]
fn unknown_user_is_not_logged_by_name() {
    let d = TestDaemon::start();
    authenticate(&auth_stack(&d, ""), "hunter2-typed-as-name", PASSWORD);
    // The line is written once the reply is on its way: wait for it, do not race it.
    assert!(
        d.wait_for_log("result=unknown_user", std::time::Duration::from_secs(10)),
        "{}",
        d.log().join("\n")
    );
    let log = d.log().join("\n");
    assert!(!log.contains("hunter2-typed-as-name"), "{log}");
}

#[test]
fn stopped_daemon_is_authinfo_unavail() {
    let mut d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let stack = auth_stack(&d, "timeout=2");
    assert!(d.stop().success(), "credd did not exit cleanly on SIGTERM");
    let mut session = stack
        .start(
            "alice",
            Conversation::new().answer(Some("Password: "), PASSWORD),
        )
        .unwrap();
    let rc = session.authenticate(0);
    assert_eq!(rc, codes::PAM_AUTHINFO_UNAVAIL, "{}", codes::name(rc));
}

#[test]
fn silent_daemon_is_authinfo_unavail_within_the_timeout() {
    // A socket that accepts connections but never answers: a hung daemon.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pam.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().take(1) {
            held.push(conn);
        }
        // Keep the connection open and silent until the module gives up.
        std::thread::park_timeout(Duration::from_secs(10));
    });
    let line = format!(
        "auth required {} socket={} timeout=1 nodelay",
        credd_e2e::bins::pam_module().display(),
        path.display()
    );
    let stack = PamStack::new("credd-test", &[line]);
    let mut session = stack
        .start(
            "alice",
            Conversation::new().answer(Some("Password: "), PASSWORD),
        )
        .unwrap();
    let started = Instant::now();
    let rc = session.authenticate(0);
    let waited = started.elapsed();
    assert_eq!(rc, codes::PAM_AUTHINFO_UNAVAIL, "{}", codes::name(rc));
    assert!(
        waited < Duration::from_secs(8),
        "module hung for {waited:?}"
    );
    holder.thread().unpark();
    holder.join().unwrap();
}

#[test]
fn ignore_authinfo_unavail_returns_ignore() {
    let mut d = TestDaemon::start();
    let permit = system_module("pam_permit.so").expect("pam_permit.so");
    let stack = PamStack::new(
        "credd-test",
        &[
            d.module_line(
                "auth",
                "[success=done ignore=ignore default=die]",
                "ignore_authinfo_unavail",
            ),
            format!("auth required {}", permit.display()),
        ],
    );
    d.stop();
    let rc = authenticate(&stack, "alice", PASSWORD);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", codes::name(rc));
}

#[test]
fn use_first_pass_takes_the_token_of_an_earlier_module() {
    // pam_unix prompts for and stores PAM_AUTHTOK even for a user it does not know; credd must
    // reuse that token without prompting a second time.
    let d = TestDaemon::start();
    d.add_user("credd-only-user", PASSWORD, &["--uid", "5002"]);
    let unix = system_module("pam_unix.so").expect("pam_unix.so");
    let stack = PamStack::new(
        "credd-test",
        &[
            format!("auth optional {}", unix.display()),
            d.module_line("auth", "required", "use_first_pass"),
        ],
    );
    let conv = Conversation::new().answer(Some("Password: "), PASSWORD);
    let mut session = stack.start("credd-only-user", conv).unwrap();
    let rc = session.authenticate(0);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", codes::name(rc));
    assert_eq!(
        session.prompts().len(),
        1,
        "prompts: {:?}",
        session.prompts()
    );
}

#[test]
fn use_first_pass_without_a_token_fails_without_prompting() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let stack = auth_stack(&d, "use_first_pass");
    let mut session = stack.start("alice", Conversation::new()).unwrap();
    let rc = session.authenticate(0);
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", codes::name(rc));
    assert!(
        session.prompts().is_empty(),
        "prompted: {:?}",
        session.prompts()
    );
}

#[test]
fn credd_stores_the_token_for_later_modules() {
    // A second credd line with use_first_pass succeeds only if the first one set PAM_AUTHTOK.
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let stack = PamStack::new(
        "credd-test",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("auth", "required", "use_first_pass"),
        ],
    );
    let conv = Conversation::new().answer(Some("Password: "), PASSWORD);
    let mut session = stack.start("alice", conv).unwrap();
    let rc = session.authenticate(0);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", codes::name(rc));
    assert_eq!(session.prompts().len(), 1);
}

#[test]
fn account_management_reports_disabled_and_must_change() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    d.add_user("bob", PASSWORD, &["--uid", "5002", "--must-change"]);
    let stack = PamStack::new(
        "credd-test",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
        ],
    );
    let login = |user: &str| {
        let conv = Conversation::new().answer(Some("Password: "), PASSWORD);
        let mut s = stack.start(user, conv).unwrap();
        let auth = s.authenticate(0);
        let acct = s.acct_mgmt(0);
        (auth, acct)
    };
    assert_eq!(login("alice"), (codes::PAM_SUCCESS, codes::PAM_SUCCESS));
    // Must change: the password is right, the change is enforced at account management.
    assert_eq!(
        login("bob"),
        (codes::PAM_SUCCESS, codes::PAM_NEW_AUTHTOK_REQD)
    );

    let out = d.ctl(&["user", "disable", "alice"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let conv = Conversation::new();
    let mut s = stack.start("alice", conv).unwrap();
    assert_eq!(s.acct_mgmt(0), codes::PAM_ACCT_EXPIRED);
    let (auth, _) = login("alice");
    assert_eq!(
        auth,
        codes::PAM_AUTH_ERR,
        "a disabled account must not authenticate"
    );

    let out = d.ctl(&["user", "enable", "alice"]);
    assert!(out.status.success());
    assert_eq!(login("alice"), (codes::PAM_SUCCESS, codes::PAM_SUCCESS));
}

#[test]
fn password_set_by_credctl_passwd_replaces_the_old_one() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let out = d.ctl_stdin(
        &["passwd", "alice", "--password-stdin"],
        "a brand new secret\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = auth_stack(&d, "");
    assert_eq!(authenticate(&stack, "alice", PASSWORD), codes::PAM_AUTH_ERR);
    assert_eq!(
        authenticate(&stack, "alice", "a brand new secret"),
        codes::PAM_SUCCESS
    );
}

#[test]
fn disallow_null_authtok_refuses_an_empty_password() {
    let d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let stack = auth_stack(&d, "");
    let conv = Conversation::new().answer(Some("Password: "), "");
    let mut s = stack.start("alice", conv).unwrap();
    let rc = s.authenticate(credd_e2e::libpam::flags::PAM_DISALLOW_NULL_AUTHTOK);
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", codes::name(rc));
}

/// Issue 14, item 7: loading the module is what a process pays on every login. libgcc_s.so.1's
/// constructor runs a dozen CPUID instructions, each a trap to the hypervisor in a virtual
/// machine: about 150 µs, most of what loading pam_credd.so cost over pam_faillock.so. The
/// unwinder is linked in statically (pam-module/build.rs), hidden: the module needs only libpam
/// and libc, and exports only the six hooks.
#[test]
fn the_module_needs_only_libpam_and_libc_and_exports_only_the_hooks() {
    let module = credd_e2e::bins::pam_module();
    let dynamic = std::process::Command::new("readelf")
        .args(["-d", "-W"])
        .arg(&module)
        .output()
        .expect("readelf (binutils)");
    let text = String::from_utf8_lossy(&dynamic.stdout);
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "{text}");
    for lib in &needed {
        assert!(
            lib.starts_with("libpam.so")
                || lib.starts_with("libc.so")
                || lib.starts_with("ld-linux"),
            "{} needs {lib}: {needed:?}",
            module.display()
        );
    }
    let symbols = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&module)
        .output()
        .expect("nm (binutils)");
    let exported: Vec<String> = String::from_utf8_lossy(&symbols.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2).map(str::to_owned))
        .collect();
    let mut hooks = exported.clone();
    hooks.sort();
    assert_eq!(
        hooks,
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred"
        ],
        "exported: {exported:?}"
    );
}
