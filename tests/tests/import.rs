//! `credctl import` against a real daemon: applied whole or not at all, every problem named by
//! line and field, codes only in a new 0600 file.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::fixtures::{phc_hash, store_dump as dump};
use credd_e2e::libpam::{Conversation, PamStack, codes};

const PASSWORD: &str = "imported passphrase 1";

fn login(d: &TestDaemon, user: &str, secret: &str) -> i32 {
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start(user, conv).unwrap().authenticate(0)
}

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_valid_file_is_applied_and_its_codes_go_to_a_new_private_file() {
    let d = TestDaemon::start();
    d.add_user("olduser", "an older passphrase", &["--uid", "6001"]);
    d.add_user("leaving", "an older passphrase", &["--uid", "6002"]);
    d.add_user("rehash", "an older passphrase", &["--uid", "6003"]);
    let dir = tempfile::tempdir().unwrap();
    let hash = phc_hash(PASSWORD, 1000);
    // A BOM, CRLF line ends and a quoted hash (it contains a comma).
    let file = write(
        dir.path(),
        "users.csv",
        &format!(
            "\u{feff}user,action,uid,password_hash,must_change,ttl,reason\r\n\
             newbie,add,6010,\"{hash}\",false,,\r\n\
             olduser,reset,,,,30m,\r\n\
             leaving,remove,,,,,\r\n\
             rehash,set-hash,,\"{hash}\",true,,\r\n"
        ),
    );
    let codes_out = dir.path().join("codes.csv");
    let out = d.ctl(&[
        "import",
        file.to_str().unwrap(),
        "--codes-out",
        codes_out.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["rows"], 4);
    assert_eq!(summary["codes"], 1);

    assert_eq!(login(&d, "newbie", PASSWORD), codes::PAM_SUCCESS);
    assert_eq!(
        login(&d, "rehash", PASSWORD),
        codes::PAM_SUCCESS,
        "must-change still authenticates"
    );
    assert_eq!(
        login(&d, "leaving", "an older passphrase"),
        codes::PAM_USER_UNKNOWN
    );

    let mode = std::fs::metadata(&codes_out).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let codes_csv = std::fs::read_to_string(&codes_out).unwrap();
    let mut lines = codes_csv.lines();
    assert_eq!(lines.next(), Some("user,code,expires_at"));
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(row[0], "olduser");
    assert_eq!(
        login(&d, "olduser", row[1]),
        codes::PAM_SUCCESS,
        "the code from the file works"
    );
    assert_eq!(
        login(&d, "olduser", "an older passphrase"),
        codes::PAM_AUTH_ERR
    );
    assert!(d.wait_for_log("event=import_finished", Duration::from_secs(5)));
}

#[test]
fn every_malformed_case_is_named_by_line_and_field_and_nothing_changes() {
    let d = TestDaemon::start();
    d.add_user("existing", "an older passphrase", &["--uid", "6001"]);
    let dir = tempfile::tempdir().unwrap();
    let hash = phc_hash(PASSWORD, 1000);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown action",
            "user,action\nalice,fly\n".into(),
            ":2: action",
        ),
        ("missing field", "user,action\nalice\n".into(), ":2:"),
        (
            "extra field",
            "user,action\nalice,add,extra\n".into(),
            ":2:",
        ),
        (
            "unknown column",
            "user,action,colour\nalice,add,red\n".into(),
            "colour",
        ),
        (
            "named twice",
            "user,action\nalice,add\nalice,disable\n".into(),
            ":3: user",
        ),
        (
            "add of an existing account",
            "user,action\nexisting,add\n".into(),
            ":2: user",
        ),
        (
            "action on a missing account",
            "user,action\nghost,disable\n".into(),
            ":2: user",
        ),
        (
            "malformed hash",
            "user,action,password_hash\nalice,add,notahash\n".into(),
            ":2: password_hash",
        ),
        (
            "foreign hash scheme",
            format!(
                "user,action,password_hash\nalice,add,\"{}\"\n",
                hash.replace("pbkdf2-sha256", "pbkdf2-sha512")
            ),
            ":2: password_hash",
        ),
        (
            "invalid uid",
            "user,action,uid\nalice,add,-5\n".into(),
            ":2: uid",
        ),
        (
            "control character in a name",
            "user,action\n\"al\u{7}ice\",add\n".into(),
            ":2: user",
        ),
        (
            "over-long name",
            format!("user,action\n{},add\n", "a".repeat(300)),
            ":2: user",
        ),
        (
            "uid taken",
            "user,action,uid\nalice,add,6001\n".into(),
            ":2: uid",
        ),
    ];
    for (what, text, expected) in cases {
        let before = dump(&d);
        let file = write(dir.path(), "bad.csv", &text);
        let out = d.ctl(&["import", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{what}: accepted");
        assert!(
            err.contains(expected),
            "{what}: expected {expected:?} in:\n{err}"
        );
        assert!(err.contains("bad.csv"), "{what}: the file is named:\n{err}");
        assert_eq!(dump(&d), before, "{what}: the store changed");
    }
    // Several problems are all reported at once.
    let file = write(
        dir.path(),
        "many.csv",
        "user,action\nghost1,disable\nghost2,enable\nexisting,add\n",
    );
    let out = d.ctl(&["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [":2:", ":3:", ":4:"] {
        assert!(err.contains(line), "{line} missing:\n{err}");
    }
}

#[test]
fn a_dry_run_changes_nothing_and_says_what_would_happen() {
    let d = TestDaemon::start();
    d.add_user("existing", "an older passphrase", &["--uid", "6001"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "users.csv",
        "user,action\nfresh,add\nexisting,reset\n",
    );
    let before = dump(&d);
    let out = d.ctl(&["import", file.to_str().unwrap(), "--dry-run", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["actions"]["add"], 1);
    assert_eq!(summary["actions"]["reset"], 1);
    assert_eq!(summary["codes"], 1);
    assert_eq!(dump(&d), before);
}

#[test]
fn the_codes_file_is_never_overwritten_and_reset_rows_need_one() {
    let d = TestDaemon::start();
    d.add_user("existing", "an older passphrase", &["--uid", "6001"]);
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "users.csv", "user,action\nexisting,reset\n");
    let before = dump(&d);
    let out = d.ctl(&["import", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let taken = write(dir.path(), "codes.csv", "precious\n");
    let out = d.ctl(&[
        "import",
        file.to_str().unwrap(),
        "--codes-out",
        taken.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "precious\n");
    assert_eq!(dump(&d), before);
}

#[test]
fn rows_can_come_from_standard_input() {
    let d = TestDaemon::start();
    let out = d.ctl_stdin(&["import", "-"], "user,action,uid\nfromstdin,add,6020\n");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let show = d.ctl(&["user", "show", "fromstdin", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    assert_eq!(v["uid"], 6020);
}

#[test]
fn bulk_resets_past_the_rate_limits_need_allow_bulk() {
    let d = TestDaemon::start_with(&format!(
        "{}[codes]\nper_admin_per_hour = 3\n",
        credd_e2e::daemon::TEST_CONFIG
    ));
    let dir = tempfile::tempdir().unwrap();
    let mut adds = String::from("user,action\n");
    let mut resets = String::from("user,action\n");
    for i in 0..5 {
        adds.push_str(&format!("bulk{i},add\n"));
        resets.push_str(&format!("bulk{i},reset\n"));
    }
    let adds = write(dir.path(), "adds.csv", &adds);
    assert!(d.ctl(&["import", adds.to_str().unwrap()]).status.success());
    let resets = write(dir.path(), "resets.csv", &resets);
    let codes_out = dir.path().join("codes.csv");
    let before = dump(&d);
    let out = d.ctl(&[
        "import",
        resets.to_str().unwrap(),
        "--codes-out",
        codes_out.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-bulk"));
    assert_eq!(dump(&d), before);
    assert!(!codes_out.exists(), "a refused import leaves no codes file");
    let out = d.ctl(&[
        "import",
        resets.to_str().unwrap(),
        "--codes-out",
        codes_out.to_str().unwrap(),
        "--allow-bulk",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&codes_out).unwrap().lines().count(),
        6
    );
    assert!(d.wait_for_log("allow_bulk=true", Duration::from_secs(5)));
}

#[test]
fn sigkill_during_a_large_import_leaves_none_or_all_of_it() {
    const ROWS: usize = 30_000;
    let mut d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("user,action\n");
    for i in 0..ROWS {
        text.push_str(&format!("killed{i:05},add\n"));
    }
    let file = write(dir.path(), "big.csv", &text);
    // Kill while rows are being sent, as soon as the daemon starts its transaction, and after
    // it has committed.
    for (phase, wait_for) in [
        ("staging", None),
        ("transaction", Some("applying in one transaction")),
        ("committed", Some("event=import_finished")),
    ] {
        let logged_before = d.log().len();
        let mut import = Command::new(credd_e2e::bins::credctl())
            .arg("--socket")
            .arg(d.admin_socket())
            .args(["import", file.to_str().unwrap()])
            .env("CREDCTL_SYSLOG", "none")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        match wait_for {
            // While rows are still arriving: the crash comes before anything is written.
            None => std::thread::sleep(Duration::from_millis(100)),
            Some(needle) => assert!(
                d.wait_for_log(needle, Duration::from_secs(60)),
                "{phase}: no {needle:?} in {:?}",
                &d.log()[logged_before..]
            ),
        }
        unsafe {
            libc::kill(d.pid() as i32, libc::SIGKILL);
        }
        let _ = import.wait();
        d.restart();
        let conn = rusqlite::Connection::open_with_flags(
            d.state_dir().join("credd.db"),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM users WHERE name LIKE 'killed%'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        drop(conn);
        assert!(
            n == 0 || n == ROWS as i64,
            "{phase}: {n} of {ROWS} rows applied"
        );
        if phase == "committed" {
            assert_eq!(n, ROWS as i64, "a committed import survives the kill");
        }
        let check = d.ctl(&["check"]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{phase}: {}",
            String::from_utf8_lossy(&check.stdout)
        );
        if n == ROWS as i64 {
            let remove: String = std::iter::once("user,action\n".to_string())
                .chain((0..ROWS).map(|i| format!("killed{i:05},remove\n")))
                .collect();
            let undo = write(dir.path(), "undo.csv", &remove);
            assert!(d.ctl(&["import", undo.to_str().unwrap()]).status.success());
        }
        eprintln!("{phase}: {n} rows applied after the kill");
    }
}
