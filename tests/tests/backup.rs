//! `credctl backup` while credd serves logins, and `credctl restore` with credd stopped: the copy
//! is consistent and private, a restore brings the old state back whole, and a restore that
//! must not happen (credd running, a damaged copy) changes nothing. A copy whose schema is not
//! exactly credd's (a trigger, a view) is refused by restore and by credd's start; an edited copy
//! or another host's is refused unless `--force-foreign`, and then audited.

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
    restore_with(d, file, &[])
}

fn restore_with(d: &TestDaemon, file: &Path, extra: &[&str]) -> std::process::Output {
    let state_dir = d.state_dir();
    let mut args = vec![
        "restore",
        file.to_str().unwrap(),
        "--state-dir",
        state_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    d.ctl(&args)
}

/// The database of a backup file: its bytes without the HMAC trailer `credctl backup` appends
/// (`\ncredd-backup-hmac-sha256:` and 64 hex digits and a newline), if it has one.
fn database_part(file: &Path) -> Vec<u8> {
    const MAGIC: &[u8] = b"\ncredd-backup-hmac-sha256:";
    let mut bytes = std::fs::read(file).unwrap();
    let trailer = MAGIC.len() + 65;
    if bytes.len() > trailer && bytes[bytes.len() - trailer..].starts_with(MAGIC) {
        bytes.truncate(bytes.len() - trailer);
    }
    bytes
}

/// Puts `bytes` in place as credd's database (credd stopped), its old log and index removed.
fn plant_database(d: &TestDaemon, bytes: &[u8]) {
    let db = d.state_dir().join("credd.db");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::write(&db, bytes).unwrap();
}

fn refused_start(d: &TestDaemon) -> String {
    let out = d.command().output().unwrap();
    assert!(!out.status.success(), "credd started");
    String::from_utf8_lossy(&out.stderr).into_owned()
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
    // The restore itself is in the chain, not forced.
    assert!(audit.contains("backup_restored"), "{audit}");
    assert!(audit.contains("forced=false"), "{audit}");
}

#[test]
fn a_trigger_or_a_view_in_a_backup_is_refused_by_restore_and_by_credd() {
    let mut d = TestDaemon::start();
    d.add_user("alice", ALICE, &[]);
    let file = d.root().join("backup.db");
    assert!(d.ctl(&["backup", file.to_str().unwrap()]).status.success());
    d.stop();
    let db = d.state_dir().join("credd.db");
    let before = std::fs::read(&db).unwrap();

    for (planted, named) in [
        // Puts the old hash back after every `credctl passwd` or reset.
        (
            "CREATE TRIGGER keep AFTER UPDATE OF hash ON users
             BEGIN UPDATE users SET hash = OLD.hash WHERE name = OLD.name; END;",
            "unexpected trigger \"keep\" on \"users\"",
        ),
        // One code for every account, root's and future ones included.
        (
            "DROP TABLE reset_codes;
             CREATE VIEW reset_codes AS SELECT name AS user, zeroblob(32) AS digest,
               0 AS issued_at, 4102444800 AS expires_at, 0 AS attempts, 0 AS issued_by
             FROM users;",
            "unexpected view \"reset_codes\"",
        ),
    ] {
        let doctored = d.root().join("doctored.db");
        let _ = std::fs::remove_file(&doctored);
        std::fs::write(&doctored, database_part(&file)).unwrap();
        rusqlite::Connection::open(&doctored)
            .unwrap()
            .execute_batch(planted)
            .unwrap();
        // Refused, and whatever the flags: --force-foreign never admits another schema.
        for flags in [&[][..], &["--force-foreign"][..]] {
            let out = restore_with(&d, &doctored, flags);
            assert!(!out.status.success(), "restored: {}", text(&out));
            assert!(text(&out).contains(named), "{}", text(&out));
            assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
            assert_eq!(
                std::fs::read(&db).unwrap(),
                before,
                "the database was touched"
            );
        }

        // The same file put in place by hand: credd refuses to open it, naming the object.
        plant_database(&d, &std::fs::read(&doctored).unwrap());
        let err = refused_start(&d);
        assert!(err.contains(named), "{err}");
        plant_database(&d, &before);
    }
    d.restart();
    assert_eq!(login(&d, "alice", ALICE), codes::PAM_SUCCESS);
}

#[test]
fn a_backup_edited_by_one_byte_fails_its_hmac() {
    let mut d = TestDaemon::start();
    d.add_user("alice", ALICE, &[]);
    let file = d.root().join("backup.db");
    assert!(d.ctl(&["backup", file.to_str().unwrap()]).status.success());
    d.stop();
    let db = d.state_dir().join("credd.db");
    let before = std::fs::read(&db).unwrap();

    // One character of alice's stored salt (a row of users; no index covers it, so SQLite's
    // integrity check cannot see the change).
    let mut bytes = std::fs::read(&file).unwrap();
    let start = bytes
        .windows(15)
        .position(|w| w == b"$pbkdf2-sha256$")
        .expect("alice's hash in the backup");
    let salt = start
        + 1
        + bytes[start + 1..]
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'$')
            .nth(1)
            .unwrap()
            .0
        + 1;
    bytes[salt] = if bytes[salt] == b'A' { b'B' } else { b'A' };
    let edited = d.root().join("edited.db");
    std::fs::write(&edited, &bytes).unwrap();

    let out = restore(&d, &edited);
    assert!(!out.status.success(), "restored: {}", text(&out));
    assert!(text(&out).contains("HMAC does not match"), "{}", text(&out));
    assert!(text(&out).contains("--force-foreign"), "{}", text(&out));
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was touched"
    );
    // The untouched backup still restores.
    let out = restore(&d, &file);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn another_hosts_backup_is_refused_without_force_foreign_and_audited_with_it() {
    let mut here = TestDaemon::start();
    here.add_user("alice", ALICE, &[]);
    let there = TestDaemon::start();
    there.add_user("mallory", "a third long passphrase", &[]);
    let file = here.root().join("there.db");
    assert!(
        there
            .ctl(&["backup", file.to_str().unwrap()])
            .status
            .success()
    );
    here.stop();
    let db = here.state_dir().join("credd.db");
    let before = std::fs::read(&db).unwrap();

    let out = restore(&here, &file);
    assert!(!out.status.success(), "restored: {}", text(&out));
    assert!(text(&out).contains("HMAC does not match"), "{}", text(&out));
    assert!(
        text(&out).contains("audit chain does not verify"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database was touched"
    );

    let out = restore_with(&here, &file, &["--force-foreign"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--force-foreign"), "{}", text(&out));
    here.restart();
    assert!(users(&here).contains("mallory"));
    // Audited in this host's chain, as forced, with the reason.
    let audit = text(&here.ctl(&["audit"]));
    let line = audit
        .lines()
        .find(|l| l.contains("backup_restored"))
        .unwrap_or_else(|| panic!("no backup_restored row: {audit}"));
    assert!(line.contains("forced"), "{line}");
    assert!(line.contains("HMAC does not match"), "{line}");
    // The rows that came with the copy are another key's: the chain says so.
    assert!(!here.ctl(&["audit", "verify"]).status.success());
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
