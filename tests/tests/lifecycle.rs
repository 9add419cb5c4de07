//! The daemon as a process: its files, its lock, its restarts and its shutdown.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use credd_e2e::TestDaemon;

use credd_e2e::libpam::{Conversation, PamStack, codes};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn sockets_and_database_have_their_modes() {
    let d = TestDaemon::start();
    let pam = std::fs::metadata(d.pam_socket()).unwrap();
    assert!(pam.file_type().is_socket());
    assert_eq!(mode(&d.pam_socket()), 0o666);
    assert_eq!(mode(&d.admin_socket()), 0o600);
    assert_eq!(mode(&d.state_dir().join("credd.db")), 0o600);
    assert_eq!(mode(&d.state_dir()), 0o700);
    assert_eq!(mode(&d.runtime_dir()), 0o755);
}

#[test]
fn accounts_survive_a_restart() {
    let mut d = TestDaemon::start();
    d.add_user("alice", "correct horse battery", &["--uid", "5001"]);
    d.restart();
    let out = d.ctl(&["user", "show", "alice", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let conv = Conversation::new().answer(Some("Password: "), "correct horse battery");
    let mut s = stack.start("alice", conv).unwrap();
    assert_eq!(s.authenticate(0), codes::PAM_SUCCESS);
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start() {
    let d = TestDaemon::start();
    let out = d.command().output().expect("run a second credd");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another credd already serves"), "{err}");
    // The first daemon still owns its sockets.
    assert!(d.pam_socket().exists());
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_sockets() {
    let mut d = TestDaemon::start();
    let status = d.stop();
    assert!(status.success(), "exit status {status:?}");
    assert!(!d.pam_socket().exists());
    assert!(!d.admin_socket().exists());
    assert!(
        d.log().iter().any(|l| l == "credd: stopped"),
        "{:?}",
        d.log()
    );
}

#[test]
fn invalid_config_is_refused_with_the_key_named() {
    let d = TestDaemon::start();
    let bad = d.root().join("bad.toml");
    std::fs::write(&bad, "[hashing]\niterashuns = 5\n").unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = std::process::Command::new(credd_e2e::bins::credd())
        .arg("--config")
        .arg(&bad)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("iterashuns"), "{err}");
    let out = std::process::Command::new(credd_e2e::bins::credd())
        .arg("--config")
        .arg(d.config_path())
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_world_readable_database_is_refused() {
    let mut d = TestDaemon::start();
    d.stop();
    let db = d.state_dir().join("credd.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = d.command().output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn sighup_does_not_stop_the_daemon() {
    let mut d = TestDaemon::start();
    unsafe {
        libc::kill(d.pid() as i32, libc::SIGHUP);
    }
    assert!(
        d.wait_for_log("configuration reloaded", std::time::Duration::from_secs(10)),
        "{:?}",
        d.log()
    );
    let out = d.ctl(&["user", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.is_running());
}

#[test]
fn a_second_daemon_on_the_same_runtime_dir_refuses_to_start() {
    let d = TestDaemon::start();
    let other_state = d.root().join("other-state");
    let out = std::process::Command::new(credd_e2e::bins::credd())
        .arg("--config")
        .arg(d.config_path())
        .arg("--runtime-dir")
        .arg(d.runtime_dir())
        .arg("--state-dir")
        .arg(&other_state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another credd already serves"), "{err}");
    assert!(
        d.pam_socket().exists(),
        "the first daemon's socket must survive"
    );
}

#[test]
fn a_runtime_dir_others_can_write_is_refused() {
    let mut d = TestDaemon::start();
    d.stop();
    std::fs::set_permissions(d.runtime_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = d.command().output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by group or others"), "{err}");
}

#[test]
fn a_login_under_fewer_iterations_than_configured_rehashes() {
    let mut d = TestDaemon::start();
    d.add_user("alice", "correct horse battery", &["--uid", "5001"]);
    d.set_config("[hashing]\niterations = 2000\n");
    d.restart();
    let iterations = |d: &TestDaemon| -> u64 {
        let out = d.ctl(&["user", "show", "alice", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["iterations"].as_u64().unwrap()
    };
    assert_eq!(iterations(&d), 1000);
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let login = |password: &str| {
        let conv = Conversation::new().answer(Some("Password: "), password);
        stack.start("alice", conv).unwrap().authenticate(0)
    };
    assert_eq!(login("wrong horse battery"), codes::PAM_AUTH_ERR);
    assert_eq!(iterations(&d), 1000, "a failed login must not rehash");
    assert_eq!(login("correct horse battery"), codes::PAM_SUCCESS);
    assert_eq!(iterations(&d), 2000);
    assert_eq!(
        login("correct horse battery"),
        codes::PAM_SUCCESS,
        "the new hash verifies"
    );
}
