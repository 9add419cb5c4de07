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

/// A bcrypt string of cost 31 (shape only: no password verifies it), and a sha512crypt one of the
/// largest rounds libxcrypt runs: about 31 hours and a minute of one hashing thread each.
const BCRYPT_31: &str = "$2b$31$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6";
const SHA512_ROUNDS_MAX: &str = "$6$rounds=999999999$BUoJ6R44k7teooiV$SbQqs/iR4z.DBPIPPm48sq7EXy.hDy.WzGqYLCxg1nlOEibKHgbUNJHABP4ZA7QF8vRlOIbzq871VDnUUVw1m/";

/// Issue 15 R3: an administrator (a member of the admin group, say) imported hashes of unbounded
/// cost, and every login of those accounts then held a hashing thread for minutes or hours. Each
/// such row is now refused, naming its line and field and the cap; nothing is stored.
#[test]
fn hashes_over_the_cost_caps_are_refused_at_import_by_line_and_field() {
    let d = TestDaemon::start();
    d.add_user("existing", "an older passphrase", &["--uid", "6001"]);
    let dir = tempfile::tempdir().unwrap();
    let fine = phc_hash(PASSWORD, 1000);
    let pbkdf2_max = fine.replace("i=1000,", "i=4294967295,");
    let file = write(
        dir.path(),
        "costly.csv",
        &format!(
            "user,action,password_hash\n\
             newbie,add,\"{fine}\"\n\
             existing,set-hash,\"{pbkdf2_max}\"\n\
             other,add,{BCRYPT_31}\n\
             third,add,{SHA512_ROUNDS_MAX}\n"
        ),
    );
    let before = dump(&d);
    let out = d.ctl(&["import", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for expected in [
        ":3: password_hash: pbkdf2-sha256 i=4294967295 is above [hashing] max_iterations = 2400000",
        ":4: password_hash: bcrypt cost 31 is above [hashing] max_bcrypt_cost = 13",
        ":5: password_hash: sha512crypt rounds=999999999 is above [hashing] max_crypt_rounds = 1000000",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
    assert!(
        !err.contains(BCRYPT_31) && !err.contains(&pbkdf2_max),
        "{err}"
    );
    assert_eq!(
        dump(&d),
        before,
        "nothing was stored, newbie's good row included"
    );
}

/// Issue 15 R3: a hash over the caps that is already in the database (written there by hand, or
/// imported before the caps existed) is never run at login: the attempt does a dummy of the
/// configured cost, fails like a wrong password and is audited as `hash_over_cap`; `credctl check`
/// and the start report name the account.
#[test]
fn a_hash_over_the_cost_caps_in_the_database_is_never_run_and_is_reported() {
    use credd_proto::{AuthRequest, Client, Reply, Request, Secret};
    let mut d = TestDaemon::start();
    d.add_user("alice", PASSWORD, &["--uid", "6001"]);
    d.add_user("bob", PASSWORD, &["--uid", "6002"]);
    d.stop();
    let conn = rusqlite::Connection::open(d.state_dir().join("credd.db")).unwrap();
    conn.execute(
        "UPDATE users SET hash = ?1 WHERE name = 'alice'",
        [BCRYPT_31],
    )
    .unwrap();
    drop(conn);
    d.restart();
    // Bounded: the old code ran bcrypt at cost 31 here (about 31 hours); the client gives up
    // after 10 s.
    let started = std::time::Instant::now();
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(10)).unwrap();
    let reply = c
        .call(&Request::Authenticate(AuthRequest {
            user: "alice".into(),
            secret: Secret::new(PASSWORD.into()),
            service: "sshd".into(),
            rhost: Some("192.0.2.7".into()),
            tty: None,
            ruser: None,
        }))
        .expect("an answer within the timeout");
    assert_eq!(reply, Reply::Denied, "{reply:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(
        d.log()
            .iter()
            .any(|l| l.contains("over the [hashing] cost caps") && l.contains("alice")),
        "reported at start: {:?}",
        d.log()
    );
    // Other logins are untouched.
    assert_eq!(login(&d, "bob", PASSWORD), codes::PAM_SUCCESS);
    let out = d.ctl(&["audit", "--user", "alice", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let over: Vec<_> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"] == "hash_over_cap")
        .collect();
    assert_eq!(over.len(), 1, "{rows:#}");
    assert_eq!(over[0]["outcome"], "refused");
    assert_eq!(over[0]["service"], "sshd");
    assert!(
        over[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("bcrypt cost 31 is above [hashing] max_bcrypt_cost = 13"),
        "{:#}",
        over[0]
    );
    let out = d.ctl(&["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    assert!(
        stdout.contains("ok: hash costs within the [hashing] caps: 2 accounts")
            && stdout.contains(
                "FINDING: account alice: its hash is over the cost cap (bcrypt cost 31 is above"
            )
            && !stdout.contains("account bob"),
        "{stdout}"
    );
}
