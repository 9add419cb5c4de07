//! credctl against a real daemon: exit codes, one-line errors and the `--json` shapes.

use credd_e2e::TestDaemon;

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn adding_an_existing_user_is_a_clear_error() {
    let d = TestDaemon::start();
    d.add_user("alice", "correct horse battery", &["--uid", "5001"]);
    let out = d.ctl_stdin(
        &["user", "add", "alice", "--password-stdin"],
        "another password\n",
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn a_taken_uid_is_refused() {
    let d = TestDaemon::start();
    d.add_user("alice", "correct horse battery", &["--uid", "5001"]);
    let out = d.ctl(&["user", "add", "bob", "--uid", "5001"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("uid 5001 already belongs to user alice"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn nss_uid_wins_and_a_contradicting_uid_is_refused() {
    // `root` is known to NSS everywhere, with uid 0.
    let d = TestDaemon::start();
    let out = d.ctl(&["user", "add", "root", "--uid", "12345"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("disagrees"), "{}", stderr(&out));
    let out = d.ctl(&["user", "add", "root"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = d.ctl(&["user", "show", "root", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["uid"], 0);
}

#[test]
fn a_uid_nss_gives_to_another_name_cannot_be_borrowed() {
    // Otherwise that system user could verify this account's password through pam.sock.
    let d = TestDaemon::start();
    let out = d.ctl(&["user", "add", "not-root", "--uid", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("uid 0 belongs to root"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn show_json_has_the_documented_shape() {
    let d = TestDaemon::start();
    d.add_user(
        "alice",
        "correct horse battery",
        &["--uid", "5001", "--must-change"],
    );
    let out = d.ctl(&["user", "show", "alice", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["user"], "alice");
    assert_eq!(v["uid"], 5001);
    assert_eq!(v["hash_scheme"], "pbkdf2-sha256");
    assert_eq!(v["iterations"], 1000);
    assert_eq!(v["must_change"], true);
    assert_eq!(v["disabled"], false);
    assert!(v["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(
        v.get("hash").is_none(),
        "the hash must never leave the daemon"
    );
}

#[test]
fn list_streams_every_account() {
    let d = TestDaemon::start();
    // More than one store page (500) to exercise the paging.
    let n = 520;
    let mut csv_like = String::new();
    for i in 0..n {
        let out = d.ctl(&["user", "add", &format!("user{i:04}")]);
        assert!(out.status.success(), "{}", stderr(&out));
        csv_like.push_str(&format!("user{i:04}\n"));
    }
    let out = d.ctl(&["user", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), n);
    let names: Vec<&str> = rows.iter().map(|r| r["user"].as_str().unwrap()).collect();
    let expected: Vec<&str> = csv_like.lines().collect();
    assert_eq!(names, expected);

    let out = d.ctl(&["user", "list"]);
    assert_eq!(
        stdout(&out).lines().count(),
        n + 1,
        "a header and one line per account"
    );
}

#[test]
fn missing_user_is_exit_1_and_bad_name_is_exit_2() {
    let d = TestDaemon::start();
    let out = d.ctl(&["user", "show", "nobody-here"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no such user"), "{}", stderr(&out));
    let out = d.ctl(&["user", "remove", "bad:name"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = d.ctl(&["user", "frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn short_password_is_refused_and_nothing_is_stored() {
    let d = TestDaemon::start();
    let out = d.ctl_stdin(&["user", "add", "alice", "--password-stdin"], "short\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("shorter than 12"), "{}", stderr(&out));
    let out = d.ctl(&["user", "show", "alice"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the refused add must not create the account"
    );
}

#[test]
fn remove_then_show_is_not_found() {
    let d = TestDaemon::start();
    d.add_user("alice", "correct horse battery", &[]);
    assert!(d.ctl(&["user", "remove", "alice"]).status.success());
    assert_eq!(d.ctl(&["user", "show", "alice"]).status.code(), Some(1));
}

#[test]
fn unreachable_daemon_names_the_socket() {
    let mut d = TestDaemon::start();
    d.stop();
    let out = d.ctl(&["user", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&d.admin_socket().display().to_string()),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Issue 15 R11: a name holding a bidi override (shown as `alicenimda` reversed, i.e. another
/// name) or a zero-width space is refused with a message naming the field and the character,
/// escaped; nothing is stored and no raw character reaches credctl's output or credd's log.
#[test]
fn a_user_name_with_a_bidi_override_or_a_zero_width_space_is_refused() {
    let d = TestDaemon::start();
    for (name, shown) in [
        ("alice\u{202e}nimda", "'\\u{202e}'"),
        ("al\u{200b}ice", "'\\u{200b}'"),
        ("bob\u{2028}", "'\\u{2028}'"),
    ] {
        let out = d.ctl(&["user", "add", name]);
        let err = stderr(&out);
        assert_ne!(out.status.code(), Some(0), "{name:?} was accepted");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("user name contains the character {shown}")),
            "{name:?}: {err}"
        );
        let bad = name.chars().find(|c| !c.is_ascii()).unwrap();
        assert!(!err.contains(bad), "{err:?}");
        let out = d.ctl(&["user", "list"]);
        assert!(!stdout(&out).contains(bad), "{}", stdout(&out));
    }
    assert!(
        !d.log()
            .join("\n")
            .contains(['\u{202e}', '\u{200b}', '\u{2028}']),
        "{:?}",
        d.log()
    );
}
