//! `credctl import --from-shadow` against a real daemon and the system's real libxcrypt and
//! libpam: hashes made by the system itself (`mkpasswd` from Debian's whois package, `chpasswd`)
//! in a private shadow-format file, taken over as they are, verified by libxcrypt, and replaced
//! by credd's PBKDF2 hash at the first successful login.
//!
//! Only `lock_shadow_locks_the_imported_entries_of_etc_shadow` touches the real /etc/shadow, for
//! a throwaway account it creates and removes (root only).

use std::io::Write;
use std::process::{Command, Stdio};

use credd_e2e::TestDaemon;
use credd_e2e::bins::skip_unless_root;
use credd_e2e::fixtures::{store_dump as dump, stored_hash};
use credd_e2e::libpam::{Conversation, PamStack, codes, flags};
use credd_e2e::system_pam::{SystemService, all_output, have};
use serde_json::Value;

const CONFIG: &str = credd_e2e::daemon::TEST_CONFIG;

/// Each account's own password, so that a mix-up between accounts cannot pass.
fn password(user: &str) -> String {
    format!("old shadow passphrase of {user}")
}

/// A hash made by the system's libxcrypt through mkpasswd; the password goes on standard input.
fn mkpasswd(method: &str, password: &str) -> String {
    assert!(
        have("mkpasswd"),
        "mkpasswd is missing: apt-get install whois (make test does)"
    );
    let mut child = Command::new("mkpasswd")
        .args(["-m", method, "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mkpasswd");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "mkpasswd -m {method}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Whether this mkpasswd offers `method` (bcrypt is not offered everywhere).
fn mkpasswd_offers(method: &str) -> bool {
    let out = Command::new("mkpasswd").args(["-m", "help"]).output();
    out.is_ok_and(|o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .chain(String::from_utf8_lossy(&o.stderr).lines())
            .any(|l| l.split_whitespace().next() == Some(method))
    })
}

/// A shadow(5) line: `name:hash:lastchg:min:max:warn:inactive:expire:`.
fn entry(user: &str, hash: &str, lastchg: &str, expire: &str) -> String {
    format!("{user}:{hash}:{lastchg}:0:99999:7::{expire}:\n")
}

fn write_shadow(dir: &std::path::Path, lines: &[String]) -> std::path::PathBuf {
    let path = dir.join("shadow");
    std::fs::write(&path, lines.concat()).unwrap();
    path
}

fn ctl_ok(d: &TestDaemon, args: &[&str]) -> String {
    let out = d.ctl(args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(d: &TestDaemon, args: &[&str]) -> Value {
    serde_json::from_str(&ctl_ok(d, args)).unwrap()
}

fn show(d: &TestDaemon, user: &str) -> Value {
    json(d, &["user", "show", user, "--json"])
}

fn schemes(d: &TestDaemon) -> Value {
    json(d, &["status", "--daemon", "--json"])["accounts_per_scheme"].clone()
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "credd-test",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
            d.module_line("password", "required", ""),
        ],
    )
}

fn login(stack: &PamStack, user: &str, secret: &str) -> i32 {
    let conv = Conversation::new().answer(Some("Password: "), secret);
    stack.start(user, conv).unwrap().authenticate(0)
}

/// The account's audit events, oldest first, as (event, detail).
fn events(d: &TestDaemon, user: &str) -> Vec<(String, String)> {
    json(d, &["audit", "--user", user, "--json"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["detail"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn skipped_reasons(summary: &Value) -> Vec<(String, String)> {
    summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn every_modern_scheme_logs_in_and_is_upgraded_at_the_first_login() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let mut accounts = vec![
        ("y-user", "yescrypt", "yescrypt", None),
        ("gy-user", "gost-yescrypt", "gost-yescrypt", None),
        ("sc-user", "scrypt", "scrypt", None),
        ("s512-user", "sha512crypt", "sha512crypt", Some(5000)),
        ("s256-user", "sha256crypt", "sha256crypt", Some(5000)),
    ];
    if mkpasswd_offers("bcrypt") {
        accounts.push(("bc-user", "bcrypt", "bcrypt", None));
    } else {
        eprintln!("SKIPPED bcrypt: this mkpasswd does not offer it");
    }
    let lines: Vec<String> = accounts
        .iter()
        .map(|(user, method, _, _)| entry(user, &mkpasswd(method, &password(user)), "19500", ""))
        .collect();
    let file = write_shadow(dir.path(), &lines);
    let summary = json(
        &d,
        &["import", "--from-shadow", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(summary["rows"], accounts.len(), "{summary}");
    assert_eq!(summary["actions"]["add"], accounts.len(), "{summary}");
    assert_eq!(summary["skipped"], serde_json::json!([]), "{summary}");

    let per_scheme = schemes(&d);
    for (user, _, scheme, rounds) in &accounts {
        let v = show(&d, user);
        assert_eq!(v["hash_scheme"], *scheme, "{v}");
        assert_eq!(v["iterations"], serde_json::json!(rounds), "{v}");
        assert_eq!(per_scheme[scheme], 1, "{per_scheme}");
    }
    assert!(per_scheme.get("pbkdf2-sha256").is_none(), "{per_scheme}");
    let text = ctl_ok(&d, &["status", "--daemon"]);
    assert!(text.contains("accounts[yescrypt]: 1\n"), "{text}");

    let s = stack(&d);
    for (user, _, scheme, _) in &accounts {
        let right = password(user);
        assert_eq!(login(&s, user, &right), codes::PAM_SUCCESS, "{user}");
        let v = show(&d, user);
        assert_eq!(v["hash_scheme"], "pbkdf2-sha256", "{user}: {v}");
        assert_eq!(v["iterations"], 1000, "{user}: {v}");
        assert!(
            stored_hash(&d, user)
                .unwrap()
                .starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{user}"
        );
        // The upgrade and the login it came with, in that order, naming the schemes only.
        let log = events(&d, user);
        let at = log
            .iter()
            .position(|(e, _)| e == "hash_upgraded")
            .unwrap_or_else(|| panic!("{user}: no hash_upgraded in {log:?}"));
        assert_eq!(
            log[at].1,
            format!("from=\"{scheme}\" to=\"pbkdf2-sha256 i=1000\""),
            "{user}"
        );
        assert_eq!(log[at + 1].0, "login_success", "{user}: {log:?}");
        // The old password keeps working with the new hash; a wrong one fails and is counted.
        assert_eq!(login(&s, user, &right), codes::PAM_SUCCESS, "{user}");
        assert_eq!(
            login(&s, user, &format!("{right}!")),
            codes::PAM_AUTH_ERR,
            "{user}"
        );
        assert_eq!(
            json(&d, &["status", user, "--json"])["failures"],
            1,
            "{user}"
        );
        // Upgraded once only.
        let upgrades = events(&d, user)
            .iter()
            .filter(|(e, _)| e == "hash_upgraded")
            .count();
        assert_eq!(upgrades, 1, "{user}");
    }
    let per_scheme = schemes(&d);
    assert_eq!(per_scheme["pbkdf2-sha256"], accounts.len(), "{per_scheme}");
    assert!(per_scheme.get("yescrypt").is_none(), "{per_scheme}");
}

#[test]
fn a_wrong_password_before_the_upgrade_counts_toward_the_lock() {
    let d = TestDaemon::start_with(&format!("{CONFIG}[lockout]\ndeny = 3\n"));
    let dir = tempfile::tempdir().unwrap();
    let user = "guessed";
    let right = password(user);
    let file = write_shadow(
        dir.path(),
        &[entry(user, &mkpasswd("yescrypt", &right), "19500", "")],
    );
    ctl_ok(&d, &["import", "--from-shadow", file.to_str().unwrap()]);
    let s = stack(&d);
    for n in 1..=3 {
        assert_eq!(login(&s, user, "not the password"), codes::PAM_AUTH_ERR);
        let status = json(&d, &["status", user, "--json"]);
        assert_eq!(status["failures"], n, "{status}");
    }
    assert_eq!(json(&d, &["status", user, "--json"])["locked"], true);
    // Locked: the right password does not get in, and the hash is not upgraded.
    assert_eq!(login(&s, user, &right), codes::PAM_AUTH_ERR);
    assert_eq!(show(&d, user)["hash_scheme"], "yescrypt");
    ctl_ok(&d, &["unlock", user]);
    assert_eq!(login(&s, user, &right), codes::PAM_SUCCESS);
    assert_eq!(show(&d, user)["hash_scheme"], "pbkdf2-sha256");
}

#[test]
fn locked_empty_unknown_and_legacy_entries_are_skipped_with_their_reason() {
    let mut d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let yescrypt = mkpasswd("yescrypt", &password("fine"));
    let lines = vec![
        "root:*:19000:0:99999:7:::\n".to_string(),
        entry("locked", &format!("!{yescrypt}"), "19500", ""),
        entry("never", "!!", "19500", ""),
        entry("empty", "", "19500", ""),
        entry("sun", &mkpasswd("sunmd5", &password("sun")), "19500", ""),
        entry("nt", &mkpasswd("nt", &password("nt")), "19500", ""),
        entry(
            "old-md5",
            &mkpasswd("md5crypt", &password("old-md5")),
            "19500",
            "",
        ),
        entry(
            "old-des",
            &mkpasswd("descrypt", &password("old-des")),
            "19500",
            "",
        ),
        entry(
            "old-bsdi",
            &mkpasswd("bsdicrypt", &password("old-bsdi")),
            "19500",
            "",
        ),
        entry("fine", &yescrypt, "19500", ""),
    ];
    let file = write_shadow(dir.path(), &lines);
    let summary = json(
        &d,
        &["import", "--from-shadow", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(summary["rows"], 1, "{summary}");
    let skipped = skipped_reasons(&summary);
    let lines_skipped: Vec<u64> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines_skipped, (1..=9).collect::<Vec<_>>(), "in line order");
    let reason = |user: &str| {
        skipped
            .iter()
            .find(|(u, _)| u == user)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| panic!("{user} was not skipped: {skipped:?}"))
    };
    assert!(reason("root").starts_with("locked: the password field starts with '*'"));
    assert!(reason("locked").starts_with("locked: the password field starts with '!'"));
    assert!(reason("never").starts_with("locked: the password field starts with '!!'"));
    assert!(reason("empty").starts_with("no password"));
    assert!(
        reason("sun").starts_with("unknown hash scheme"),
        "{}",
        reason("sun")
    );
    assert!(
        reason("nt").starts_with("unknown hash scheme ($3$)"),
        "{}",
        reason("nt")
    );
    for (user, scheme) in [
        ("old-md5", "md5crypt"),
        ("old-des", "descrypt"),
        ("old-bsdi", "bsdicrypt"),
    ] {
        assert_eq!(
            reason(user),
            format!(
                "{scheme} is a legacy scheme; credd verifies it only with [hashing] \
                 accept_legacy = true"
            )
        );
    }
    // The human summary says the same, by line.
    let text = ctl_ok(
        &d,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--dry-run",
        ],
    );
    let name = file.display();
    assert!(
        text.contains(&format!(
            "  {name}:7: old-md5: md5crypt is a legacy scheme; credd verifies it only with \
             [hashing] accept_legacy = true\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("  {name}:10: fine: already in credd; --replace")),
        "{text}"
    );
    for user in [
        "root", "locked", "never", "empty", "sun", "nt", "old-md5", "old-des",
    ] {
        let out = d.ctl(&["user", "show", user]);
        assert_eq!(out.status.code(), Some(1), "{user} was imported");
    }

    // With accept_legacy, credd takes the legacy hashes over too, and upgrades them just the same.
    d.set_config(&format!("{CONFIG}accept_legacy = true\n"));
    d.restart();
    let summary = json(
        &d,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--users",
            "old-md5,old-des,old-bsdi",
            "--json",
        ],
    );
    assert_eq!(summary["rows"], 3, "{summary}");
    assert_eq!(schemes(&d)["md5crypt"], 1);
    let s = stack(&d);
    for (user, scheme) in [
        ("old-md5", "md5crypt"),
        ("old-des", "descrypt"),
        ("old-bsdi", "bsdicrypt"),
    ] {
        assert_eq!(show(&d, user)["hash_scheme"], scheme);
        assert_eq!(
            login(&s, user, "wrong password"),
            codes::PAM_AUTH_ERR,
            "{user}"
        );
        assert_eq!(
            login(&s, user, &password(user)),
            codes::PAM_SUCCESS,
            "{user}"
        );
        assert_eq!(show(&d, user)["hash_scheme"], "pbkdf2-sha256", "{user}");
    }

    // A legacy hash left behind once accept_legacy is off again never verifies, and credd says
    // so at start.
    let csv = format!(
        "user,action,password_hash\nlater-md5,add,{}\n",
        mkpasswd("md5crypt", &password("later-md5"))
    );
    let out = d.ctl_stdin(&["import", "-"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    d.set_config(CONFIG);
    d.restart();
    assert!(
        d.log().iter().any(|l| l.contains(
            "accounts with legacy hashes that do not verify while [hashing] accept_legacy = \
             false: 1 md5crypt"
        )),
        "{:?}",
        d.log()
    );
    assert_eq!(
        login(&s, "later-md5", &password("later-md5")),
        codes::PAM_AUTH_ERR
    );
    assert_eq!(show(&d, "later-md5")["hash_scheme"], "md5crypt");
}

#[test]
fn csv_rows_take_crypt_hashes_too() {
    let d = TestDaemon::start();
    let sha512 = mkpasswd("sha512crypt", &password("csv-user"));
    let yescrypt = mkpasswd("yescrypt", &password("csv-other"));
    d.add_user("csv-other", "a passphrase to be replaced", &[]);
    let csv = format!(
        "user,action,password_hash,must_change\ncsv-user,add,{sha512},\ncsv-other,set-hash,{yescrypt},false\n"
    );
    let out = d.ctl_stdin(&["import", "-"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(show(&d, "csv-user")["hash_scheme"], "sha512crypt");
    assert_eq!(show(&d, "csv-other")["hash_scheme"], "yescrypt");
    let s = stack(&d);
    for user in ["csv-user", "csv-other"] {
        assert_eq!(
            login(&s, user, &password(user)),
            codes::PAM_SUCCESS,
            "{user}"
        );
        assert_eq!(show(&d, user)["hash_scheme"], "pbkdf2-sha256", "{user}");
    }
    assert_eq!(
        login(&s, "csv-other", "a passphrase to be replaced"),
        codes::PAM_AUTH_ERR
    );

    // A legacy hash in a CSV file refuses the whole file (a CSV import is all or nothing).
    let before = dump(&d);
    let csv = format!(
        "user,action,password_hash\nfresh,add,{yescrypt}\nold,add,{}\n",
        mkpasswd("md5crypt", "x")
    );
    let out = d.ctl_stdin(&["import", "-"], &csv);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("<stdin>:3: password_hash: md5crypt is a legacy scheme"),
        "{err}"
    );
    assert_eq!(dump(&d), before);
}

#[test]
fn an_account_credd_holds_is_left_alone_unless_replace() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    d.add_user("alice", "credd's own passphrase", &[]);
    let file = write_shadow(
        dir.path(),
        &[entry(
            "alice",
            &mkpasswd("yescrypt", &password("alice")),
            "19500",
            "",
        )],
    );
    let summary = json(
        &d,
        &["import", "--from-shadow", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(summary["rows"], 0);
    assert_eq!(
        skipped_reasons(&summary),
        [(
            "alice".to_string(),
            "already in credd; --replace gives it the shadow hash".to_string()
        )]
    );
    let s = stack(&d);
    assert_eq!(login(&s, "alice", &password("alice")), codes::PAM_AUTH_ERR);
    assert_eq!(
        login(&s, "alice", "credd's own passphrase"),
        codes::PAM_SUCCESS
    );

    let summary = json(
        &d,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--replace",
            "--json",
        ],
    );
    assert_eq!(summary["actions"]["set-hash"], 1, "{summary}");
    assert_eq!(show(&d, "alice")["hash_scheme"], "yescrypt");
    assert_eq!(
        login(&s, "alice", "credd's own passphrase"),
        codes::PAM_AUTH_ERR
    );
    assert_eq!(login(&s, "alice", &password("alice")), codes::PAM_SUCCESS);
    assert_eq!(show(&d, "alice")["hash_scheme"], "pbkdf2-sha256");
}

#[test]
fn a_forced_change_and_an_expiry_in_shadow_carry_over() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write_shadow(
        dir.path(),
        &[
            // sp_lstchg = 0: the administrator forced a change at the next login.
            entry(
                "changer",
                &mkpasswd("yescrypt", &password("changer")),
                "0",
                "",
            ),
            // sp_expire = day 1 (1970-01-02): long expired.
            entry(
                "expired",
                &mkpasswd("yescrypt", &password("expired")),
                "19500",
                "1",
            ),
        ],
    );
    let summary = json(
        &d,
        &["import", "--from-shadow", file.to_str().unwrap(), "--json"],
    );
    assert_eq!(
        (summary["must_change"].clone(), summary["disabled"].clone()),
        (1.into(), 1.into())
    );
    assert_eq!(show(&d, "changer")["must_change"], true);
    assert_eq!(show(&d, "expired")["disabled"], true);

    // The forced change through libpam, as after a reset (tests/reset.rs), with the old password.
    let new_password = "a brand new passphrase 7";
    let s = stack(&d);
    let conv = Conversation::new()
        .answer(Some("Password: "), &password("changer"))
        .answer(Some("New password: "), new_password)
        .answer(Some("Retype new password: "), new_password);
    let mut session = s.start("changer", conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(session.acct_mgmt(0), codes::PAM_NEW_AUTHTOK_REQD);
    let rc = session.chauthtok(flags::PAM_CHANGE_EXPIRED_AUTHTOK);
    assert_eq!(
        rc,
        codes::PAM_SUCCESS,
        "{} {:?}",
        codes::name(rc),
        session.messages()
    );
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS);
    assert_eq!(session.script_left(), 0);
    drop(session);
    let v = show(&d, "changer");
    assert_eq!(
        (v["must_change"].clone(), v["hash_scheme"].clone()),
        (false.into(), "pbkdf2-sha256".into())
    );
    assert_eq!(login(&s, "changer", new_password), codes::PAM_SUCCESS);
    assert_eq!(
        login(&s, "changer", &password("changer")),
        codes::PAM_AUTH_ERR
    );

    // Expired: refused at account management, and the right password is no successful login,
    // so the hash waits.
    let conv = Conversation::new().answer(Some("Password: "), &password("expired"));
    let mut session = s.start("expired", conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_AUTH_ERR);
    assert_eq!(session.acct_mgmt(0), codes::PAM_ACCT_EXPIRED);
    drop(session);
    assert_eq!(show(&d, "expired")["hash_scheme"], "yescrypt");
}

#[test]
fn a_dry_run_changes_nothing_and_says_what_would_happen() {
    let d = TestDaemon::start();
    d.add_user("existing", "an older passphrase", &[]);
    let dir = tempfile::tempdir().unwrap();
    let file = write_shadow(
        dir.path(),
        &[
            "root:*:19000:0:99999:7:::\n".to_string(),
            entry(
                "new-one",
                &mkpasswd("yescrypt", &password("new-one")),
                "0",
                "",
            ),
            entry(
                "existing",
                &mkpasswd("sha512crypt", &password("existing")),
                "19500",
                "",
            ),
        ],
    );
    let before = dump(&d);
    let summary = json(
        &d,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--replace",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["rows"], 2, "{summary}");
    assert_eq!(summary["actions"]["add"], 1, "{summary}");
    assert_eq!(summary["actions"]["set-hash"], 1, "{summary}");
    assert_eq!(summary["must_change"], 1, "{summary}");
    assert_eq!(skipped_reasons(&summary).len(), 1, "{summary}");
    assert_eq!(dump(&d), before);
    let text = ctl_ok(
        &d,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert!(
        text.starts_with("dry run: nothing was changed\nwould import 1 account from "),
        "{text}"
    );
    assert_eq!(dump(&d), before);
}

#[test]
fn a_damaged_shadow_file_is_refused_whole_and_names_each_line() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let good = mkpasswd("yescrypt", &password("good"));
    let truncated = mkpasswd("sha512crypt", &password("cut"));
    let truncated = &truncated[..truncated.len() - 10];
    let file = write_shadow(
        dir.path(),
        &[
            entry("good", &good, "19500", ""),
            "short:x:1\n".to_string(),
            entry("cut", truncated, "19500", ""),
            entry("good", &good, "soon", ""),
        ],
    );
    let before = dump(&d);
    let out = d.ctl(&["import", "--from-shadow", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let name = file.display();
    for expected in [
        format!("{name}:2: entry: 3 fields; a shadow entry has 9"),
        format!("{name}:3: sp_pwdp: a malformed sha512crypt hash"),
        format!("{name}:4: sp_namp: good has two entries (the first on line 1)"),
        format!("{name}:4: sp_lstchg: soon is not a number of days"),
        format!("credctl: import refused: 4 problems in {name}; nothing was changed"),
    ] {
        assert!(err.contains(&expected), "{expected:?} missing in:\n{err}");
    }
    assert!(
        !err.contains(truncated) && !err.contains(&good),
        "a hash was shown:\n{err}"
    );
    assert_eq!(dump(&d), before);
}

#[test]
fn getent_output_comes_on_standard_input() {
    let d = TestDaemon::start();
    let shadow = entry(
        "piped",
        &mkpasswd("yescrypt", &password("piped")),
        "19500",
        "",
    );
    let out = d.ctl_stdin(&["import", "--from-shadow", "-"], &shadow);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("imported 1 account from <stdin>\n"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        login(&stack(&d), "piped", &password("piped")),
        codes::PAM_SUCCESS
    );
    // The import is audited with its source.
    let log = events(&d, "piped");
    assert!(
        log.iter().any(|(e, detail)| e == "user_added"
            && detail.contains("import=\"-\"")
            && detail.contains("scheme=yescrypt")),
        "{log:?}"
    );
}

#[test]
fn a_pepper_seals_an_imported_hash_at_its_first_login() {
    use std::os::unix::fs::PermissionsExt;
    let mut d = TestDaemon::start();
    let pepper = d.root().join("pepper");
    std::fs::write(&pepper, [0x42u8; 32]).unwrap();
    std::fs::set_permissions(&pepper, std::fs::Permissions::from_mode(0o600)).unwrap();
    d.set_config(&format!("{CONFIG}pepper_file = \"{}\"\n", pepper.display()));
    d.restart();
    let user = "peppered";
    let hash = mkpasswd("yescrypt", &password(user));
    let out = d.ctl_stdin(
        &["import", "--from-shadow", "-"],
        &entry(user, &hash, "19500", ""),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Not sealed: the pepper seals PBKDF2's derived key, which this hash does not have.
    assert_eq!(stored_hash(&d, user).as_deref(), Some(hash.as_str()));
    d.restart();
    assert_eq!(stored_hash(&d, user).as_deref(), Some(hash.as_str()));
    assert_eq!(login(&stack(&d), user, &password(user)), codes::PAM_SUCCESS);
    let stored = stored_hash(&d, user).unwrap();
    assert!(
        stored.starts_with("$pbkdf2-sha256-peppered$i=1000,l=32,k="),
        "{stored}"
    );
    assert_eq!(show(&d, user)["hash_scheme"], "pbkdf2-sha256-peppered");
    assert_eq!(login(&stack(&d), user, &password(user)), codes::PAM_SUCCESS);
}

#[test]
fn pamtester_logs_in_with_an_imported_hash() {
    if skip_unless_root("pamtester_logs_in_with_an_imported_hash") {
        return;
    }
    assert!(
        have("pamtester"),
        "pamtester is missing: apt-get install pamtester (make test does)"
    );
    let d = TestDaemon::start();
    let user = "pt-shadow";
    let right = password(user);
    let out = d.ctl_stdin(
        &["import", "--from-shadow", "-"],
        &entry(user, &mkpasswd("yescrypt", &right), "19500", ""),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svc = SystemService::install(&[
        d.module_line("auth", "required", ""),
        d.module_line("account", "required", ""),
    ]);
    let bad = svc.pamtester(None, user, &["authenticate"], "wrong horse battery\n");
    assert!(!bad.status.success(), "{}", all_output(&bad));
    assert_eq!(show(&d, user)["hash_scheme"], "yescrypt");
    for _ in 0..2 {
        let ok = svc.pamtester(
            None,
            user,
            &["authenticate", "acct_mgmt"],
            &format!("{right}\n"),
        );
        let text = all_output(&ok);
        assert!(ok.status.success(), "{text}");
        assert!(text.contains("successfully authenticated"), "{text}");
        assert_eq!(show(&d, user)["hash_scheme"], "pbkdf2-sha256");
    }
}

/// A throwaway system account, removed (with its group) when dropped.
struct SystemAccount(String);

impl Drop for SystemAccount {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.0).output();
    }
}

#[test]
fn lock_shadow_locks_the_imported_entries_of_etc_shadow() {
    if skip_unless_root("lock_shadow_locks_the_imported_entries_of_etc_shadow") {
        return;
    }
    for tool in ["useradd", "userdel", "chpasswd", "usermod", "getent"] {
        assert!(have(tool), "{tool} is missing (passwd package)");
    }
    let name = format!("credd-sh{}", std::process::id() % 100_000);
    let right = password(&name);
    let created = Command::new("useradd")
        .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let account = SystemAccount(name.clone());
    // chpasswd hashes with the system's default method (yescrypt on Debian 12).
    let mut chpasswd = Command::new("chpasswd")
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    chpasswd
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}:{right}\n").as_bytes())
        .unwrap();
    assert!(chpasswd.wait().unwrap().success());
    let shadow_hash = || {
        let out = Command::new("getent")
            .args(["shadow", &name])
            .output()
            .unwrap();
        String::from_utf8(out.stdout)
            .unwrap()
            .split(':')
            .nth(1)
            .unwrap()
            .to_string()
    };
    let before = shadow_hash();
    assert!(before.starts_with('$'), "chpasswd set no hash");

    let d = TestDaemon::start();
    let summary = json(
        &d,
        &[
            "import",
            "--from-shadow",
            "--users",
            &name,
            "--lock-shadow",
            "--json",
        ],
    );
    assert_eq!(summary["rows"], 1, "{summary}");
    assert_eq!(
        summary["locked_in_shadow"],
        serde_json::json!([name]),
        "{summary}"
    );
    assert_eq!(
        shadow_hash(),
        format!("!{before}"),
        "usermod -L prefixes the hash with '!'"
    );
    // credd holds the hash as it was, with the uid NSS gives the account, and logs it in.
    let v = show(&d, &name);
    assert!(v["uid"].is_u64(), "{v}");
    assert_ne!(v["hash_scheme"], "pbkdf2-sha256");
    assert_eq!(login(&stack(&d), &name, &right), codes::PAM_SUCCESS);
    assert_eq!(show(&d, &name)["hash_scheme"], "pbkdf2-sha256");
    // Another import of the now locked entry skips it.
    let again = json(
        &d,
        &[
            "import",
            "--from-shadow",
            "--users",
            &name,
            "--replace",
            "--json",
        ],
    );
    assert_eq!(again["rows"], 0, "{again}");
    drop(account);
}
