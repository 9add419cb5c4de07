//! `credctl backup` while credd serves logins, and `credctl restore` with credd stopped: the copy
//! is consistent and private, a restore brings the old state back whole, and a restore that
//! must not happen (credd running, a damaged copy) changes nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use credd_e2e::TestDaemon;
use credd_e2e::libpam::{Conversation, PamStack, codes};

const ALICE: &str = "the first long passphrase";

fn login(d: &TestDaemon, user: &str, secret: &str) -> i32 {
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start(user, conv).unwrap().authenticate(0)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn users(d: &TestDaemon) -> String {
    String::from_utf8_lossy(&d.ctl(&["user", "list"]).stdout).into_owned()
}

fn restore(d: &TestDaemon, file: &Path) -> std::process::Output {
    d.ctl(&[
        "restore",
        file.to_str().unwrap(),
        "--state-dir",
        d.state_dir().to_str().unwrap(),
    ])
}

#[test]
fn a_backup_restores_the_state_it_was_taken_in() {
    let mut d = TestDaemon::start();
    d.add_user("alice", ALICE, &[]);
    assert_eq!(login(&d, "alice", ALICE), codes::PAM_SUCCESS);
    assert_eq!(
        login(&d, "alice", "not the passphrase"),
        codes::PAM_AUTH_ERR
    );

    let file = d.root().join("credd-backup.db");
    let out = d.ctl(&["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("sha256"), "{}", text(&out));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // The snapshot credd made in its state directory is gone.
    let leftovers: Vec<_> = std::fs::read_dir(d.state_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("backup"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // An existing file is never replaced.
    let again = d.ctl(&["backup", file.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(text(&again).contains("exists"), "{}", text(&again));

    // Changes after the backup: a new account, alice locked.
    d.add_user("bob", "a second long passphrase", &[]);
    assert!(d.ctl(&["lock", "alice"]).status.success());

    // Refused while credd runs.
    let running = restore(&d, &file);
    assert!(!running.status.success());
    assert!(
        text(&running).contains("credd is running"),
        "{}",
        text(&running)
    );
    assert!(users(&d).contains("bob"));

    d.stop();
    let out = restore(&d, &file);
    assert!(out.status.success(), "{}", text(&out));
    d.restart();
    let listed = users(&d);
    assert!(
        listed.contains("alice") && !listed.contains("bob"),
        "{listed}"
    );
    assert_eq!(
        login(&d, "alice", ALICE),
        codes::PAM_SUCCESS,
        "alice is not locked in the copy"
    );
    // The chain of the copy verifies under the same key, and records the backup itself.
    let verify = d.ctl(&["audit", "verify"]);
    assert!(verify.status.success(), "{}", text(&verify));
    let audit = text(&d.ctl(&["audit"]));
    assert!(audit.contains("login_failure"), "{audit}");
}

#[test]
fn a_damaged_or_foreign_copy_is_refused_and_changes_nothing() {
    let mut d = TestDaemon::start();
    d.add_user("alice", ALICE, &[]);
    let file = d.root().join("backup.db");
    assert!(d.ctl(&["backup", file.to_str().unwrap()]).status.success());
    d.stop();
    let db = d.state_dir().join("credd.db");
    let before = std::fs::read(&db).unwrap();

    // Pages of the copy overwritten (its b-tree pages 2 to 4: headers and cells).
    let mut bytes = std::fs::read(&file).unwrap();
    assert!(bytes.len() >= 4 * 4096);
    for b in &mut bytes[4096..4 * 4096] {
        *b = 0x5a;
    }
    let damaged = d.root().join("damaged.db");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = restore(&d, &damaged);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("nothing was changed"), "{}", text(&out));

    // Not a database at all, and a database that is not credd's.
    let junk = d.root().join("junk.db");
    std::fs::write(&junk, b"this is not a database").unwrap();
    assert!(!restore(&d, &junk).status.success());
    let foreign = d.root().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    let out = restore(&d, &foreign);
    assert!(
        text(&out).contains("not a credd database"),
        "{}",
        text(&out)
    );

    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was touched"
    );
    d.restart();
    assert!(users(&d).contains("alice"));
}
