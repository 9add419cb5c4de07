//! `[hashing] pepper_file`: every stored hash sealed with a secret outside the database the moment
//! it is enabled, logins unchanged, a copy of the database alone useless for offline guessing,
//! and a missing, different or exposed pepper refused at start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use credd_e2e::TestDaemon;
use credd_e2e::fixtures::phc_hash;

fn stored_hash(d: &TestDaemon, user: &str) -> String {
    credd_e2e::fixtures::stored_hash(d, user).expect("a stored hash")
}
use credd_e2e::libpam::{Conversation, PamStack, codes};
use pbkdf2::password_hash::PasswordVerifier;

const ALICE: &str = "the first long passphrase";
const BOB: &str = "bob imported this one";

fn login(d: &TestDaemon, user: &str, secret: &str) -> i32 {
    let stack = PamStack::new("credd-test", &[d.module_line("auth", "required", "")]);
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start(user, conv).unwrap().authenticate(0)
}

fn write_pepper(dir: &Path, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn config_with(pepper: Option<&Path>) -> String {
    let mut config = String::from("[hashing]\niterations = 1000\n");
    if let Some(p) = pepper {
        config.push_str(&format!("pepper_file = \"{}\"\n", p.display()));
    }
    config
}

/// Runs credd once on the test's directories and returns what it printed; it must fail to start.
fn refused_start(d: &TestDaemon) -> String {
    let out = d.command().output().unwrap();
    assert!(!out.status.success(), "credd started");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn enabling_a_pepper_seals_every_stored_hash_at_once() {
    let mut d = TestDaemon::start();
    d.add_user("alice", ALICE, &[]);
    let csv = format!(
        "user,action,password_hash\nbob,add,\"{}\"\n",
        phc_hash(BOB, 1000)
    );
    let out = d.ctl_stdin(&["import", "-"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plain_alice = stored_hash(&d, "alice");
    assert!(plain_alice.starts_with("$pbkdf2-sha256$"), "{plain_alice}");

    let pepper = write_pepper(d.root(), "pepper", &[0x5a; 48], 0o600);
    d.set_config(&config_with(Some(&pepper)));
    d.restart();
    assert!(
        d.log().iter().any(|l| l.contains("sealed 2 stored hashes")),
        "{:?}",
        d.log()
    );

    // Both hashes changed form without their users logging in.
    let sealed_alice = stored_hash(&d, "alice");
    let sealed_bob = stored_hash(&d, "bob");
    for sealed in [&sealed_alice, &sealed_bob] {
        assert!(
            sealed.starts_with("$pbkdf2-sha256-peppered$i=1000,l=32,k="),
            "{sealed}"
        );
    }
    // The salt stays; the derived key is gone from the database file.
    assert_eq!(
        sealed_alice.split('$').nth(3),
        plain_alice.split('$').nth(3)
    );
    let dk = plain_alice.split('$').nth(4).unwrap();
    let db = std::fs::read(d.state_dir().join("credd.db")).unwrap();
    let wal = std::fs::read(d.state_dir().join("credd.db-wal")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&db).contains(dk));
    assert!(!String::from_utf8_lossy(&wal).contains(dk));

    // An attacker with the database only: the stored value under the plain scheme is not what
    // PBKDF2 of the right password gives, so guessing against it fails even for the right one.
    let as_plain = sealed_alice.replacen("-peppered", "", 1).replacen(
        &format!(
            ",k={}",
            sealed_alice
                .split("k=")
                .nth(1)
                .unwrap()
                .split('$')
                .next()
                .unwrap()
        ),
        "",
        1,
    );
    let parsed = pbkdf2::phc::PasswordHash::new(&as_plain).unwrap();
    assert!(
        pbkdf2::Pbkdf2::default()
            .verify_password(ALICE.as_bytes(), &parsed)
            .is_err()
    );

    // The owners log in as before; a wrong password still fails.
    assert_eq!(login(&d, "alice", ALICE), codes::PAM_SUCCESS);
    assert_eq!(login(&d, "bob", BOB), codes::PAM_SUCCESS);
    assert_eq!(
        login(&d, "alice", "not the right passphrase"),
        codes::PAM_AUTH_ERR
    );

    // New hashes are peppered from the start, and so are imported plain ones.
    d.add_user("carol", "a third new passphrase", &[]);
    assert!(stored_hash(&d, "carol").starts_with("$pbkdf2-sha256-peppered$"));
    let csv = format!(
        "user,action,password_hash\ndave,add,\"{}\"\n",
        phc_hash("dave's imported one", 1000)
    );
    let out = d.ctl_stdin(&["import", "-"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stored_hash(&d, "dave").starts_with("$pbkdf2-sha256-peppered$"));
    assert_eq!(login(&d, "dave", "dave's imported one"), codes::PAM_SUCCESS);

    // `user show` names the scheme; the audit trail has the sealing.
    let show = d.ctl(&["user", "show", "alice", "--json"]);
    assert!(String::from_utf8_lossy(&show.stdout).contains("pbkdf2-sha256-peppered"));
    let audit = d.ctl(&["audit", "--json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    assert!(
        audit
            .lines()
            .any(|l| l.contains("pepper_applied") && l.contains("hashes=2")),
        "{audit}"
    );
    let verify = d.ctl(&["audit", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
}

#[test]
fn a_missing_different_or_exposed_pepper_is_refused_at_start() {
    let mut d = TestDaemon::start();
    let pepper = write_pepper(d.root(), "pepper", &[0x11; 32], 0o600);
    d.set_config(&config_with(Some(&pepper)));
    d.restart();
    d.add_user("alice", ALICE, &[]);
    d.stop();
    let before = stored_hash(&d, "alice");

    // Forgetting the pepper would fail every login silently; credd refuses to start instead.
    d.set_config(&config_with(None));
    let err = refused_start(&d);
    assert!(
        err.contains("1 with key id") && err.contains("is not set"),
        "{err}"
    );

    // Another pepper: the same.
    let other = write_pepper(d.root(), "other", &[0x22; 32], 0o600);
    d.set_config(&config_with(Some(&other)));
    let err = refused_start(&d);
    assert!(err.contains("restore the pepper file"), "{err}");

    // The right pepper, readable by others: refused before it is used.
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o644)).unwrap();
    d.set_config(&config_with(Some(&pepper)));
    let err = refused_start(&d);
    assert!(err.contains("group or others have access"), "{err}");

    // Too short, and a symlink: refused too.
    let short = write_pepper(d.root(), "short", &[0x33; 16], 0o600);
    d.set_config(&config_with(Some(&short)));
    assert!(refused_start(&d).contains("16 bytes"));
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = d.root().join("link");
    std::os::unix::fs::symlink(&pepper, &link).unwrap();
    d.set_config(&config_with(Some(&link)));
    refused_start(&d);

    // Nothing was changed by the refusals, and the right pepper still works.
    assert_eq!(stored_hash(&d, "alice"), before);
    d.set_config(&config_with(Some(&pepper)));
    d.restart();
    assert_eq!(login(&d, "alice", ALICE), codes::PAM_SUCCESS);
}
