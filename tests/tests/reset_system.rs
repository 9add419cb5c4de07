//! The reset lifecycle with stock tools and real processes (root only): pamtester's forced-change
//! flow, `passwd`-style changes by an unprivileged user, and the termination of a revoked login
//! session's processes.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::system_pam::{SystemService, all_output, have};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";

fn daemon(extra: &str) -> TestDaemon {
    TestDaemon::start_with(&format!("{}{extra}\n", credd_e2e::daemon::TEST_CONFIG))
}

fn service(d: &TestDaemon) -> SystemService {
    let module = d.public_copy(&bins::pam_module());
    SystemService::install(&[
        d.module_line_for(&module, "auth", "required", ""),
        d.module_line_for(&module, "account", "required", ""),
        d.module_line_for(&module, "password", "required", ""),
    ])
}

fn reset(d: &TestDaemon, user: &str) -> String {
    let out = d.ctl(&["reset", user]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[test]
fn pamtester_stops_at_the_forced_change_and_performs_it_when_asked() {
    if skip_unless_root("pamtester_stops_at_the_forced_change_and_performs_it_when_asked") {
        return;
    }
    assert!(have("pamtester"));
    let d = daemon("");
    d.add_user("pt-alice", PASSWORD, &["--uid", "5301"]);
    let svc = service(&d);
    let code = reset(&d, "pt-alice");

    let out = svc.pamtester(
        None,
        "pt-alice",
        &["authenticate", "acct_mgmt"],
        &format!("{code}\n"),
    );
    let text = all_output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("new one required"), "{text}");

    let answers = format!("{code}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n");
    let out = svc.pamtester(
        None,
        "pt-alice",
        &[
            "authenticate",
            "chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK)",
            "acct_mgmt",
        ],
        &answers,
    );
    let text = all_output(&out);
    assert!(out.status.success(), "{text}");

    let out = svc.pamtester(
        None,
        "pt-alice",
        &["authenticate", "acct_mgmt"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", all_output(&out));
}

#[test]
fn an_unprivileged_user_changes_their_password_only_with_the_old_one() {
    if skip_unless_root("an_unprivileged_user_changes_their_password_only_with_the_old_one") {
        return;
    }
    assert!(have("pamtester") && have("runuser"));
    let d = daemon("");
    // `nobody` is known to NSS, so the account gets nobody's uid and nobody may change it.
    d.add_user("nobody", PASSWORD, &[]);
    let svc = service(&d);

    let wrong = format!("wrong horse battery\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n");
    let out = svc.pamtester(Some("nobody"), "nobody", &["chauthtok"], &wrong);
    assert!(!out.status.success(), "{}", all_output(&out));

    let right = format!("{PASSWORD}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n");
    let out = svc.pamtester(Some("nobody"), "nobody", &["chauthtok"], &right);
    assert!(out.status.success(), "{}", all_output(&out));

    let out = svc.pamtester(
        Some("nobody"),
        "nobody",
        &["authenticate"],
        &format!("{NEW_PASSWORD}\n"),
    );
    assert!(out.status.success(), "{}", all_output(&out));
}

/// Spawns `sh` that gives itself a fresh audit session (writing /proc/self/loginuid as root), opens
/// a credd session for `user` through pam-login, then becomes `sleep`: a login session's process.
fn login_session_process(d: &TestDaemon, user: &str, loginuid: u32) -> std::process::Child {
    let pam_login = bins::credd().with_file_name("pam-login");
    let script = format!(
        "echo {loginuid} > /proc/self/loginuid && \
         printf '%s\\n' '{PASSWORD}' | {pam_login} {module} {socket} {user} session >/dev/null && \
         exec sleep 300",
        pam_login = pam_login.display(),
        module = bins::pam_module().display(),
        socket = d.pam_socket().display(),
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn a login session")
}

#[test]
fn revoking_a_session_ends_its_processes_and_spares_others() {
    if skip_unless_root("revoking_a_session_ends_its_processes_and_spares_others") {
        return;
    }
    let d = daemon("[sessions]\nterminate_on_revoke = true\nterminate_grace = \"1s\"");
    d.add_user("alice", PASSWORD, &["--uid", "5001"]);
    let mut in_session = login_session_process(&d, "alice", 5001);
    assert!(
        d.wait_for_log("event=session_opened", Duration::from_secs(20)),
        "{:?}",
        d.log()
    );
    let mut outside = Command::new("sleep").arg("300").spawn().unwrap();

    reset(&d, "alice");

    let (tx, rx) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = in_session.wait();
        let _ = tx.send(status);
    });
    let status = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the revoked session's process was not ended")
        .unwrap();
    waiter.join().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGHUP), "{status:?}");
    assert!(
        outside.try_wait().unwrap().is_none(),
        "a process outside the session must be spared"
    );
    outside.kill().unwrap();
    outside.wait().unwrap();
}
