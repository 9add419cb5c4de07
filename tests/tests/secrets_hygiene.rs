//! No secret anywhere it should not be: a whole lifecycle with distinctive passwords and codes,
//! then every byte credd, credctl and a real rsyslogd wrote is searched for each of them, in every
//! spelling a careless log line could use.
//!
//! Root only: a user changes their own password with pamtester run as `nobody` (a service file in
//! /etc/pam.d), the only way to send an old password from a caller whose real uid is not 0.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::fixtures::phc_hash;
use credd_e2e::libpam::{Conversation, PamStack, codes, flags};
use credd_e2e::rsyslog::Rsyslog;
use credd_e2e::system_pam::{SystemService, all_output, have};

const WAIT: Duration = Duration::from_secs(15);

// Accounts (their names are the non-secret markers that must be found).
const ALICE: &str = "hyg-alice";
const BOB: &str = "hyg-bob";
const CAROL: &str = "hyg-carol";
const DAVE: &str = "hyg-dave";

// Every password used, each distinctive enough never to occur by chance.
const ALICE_1: &str = "Quartz-Lantern-51-Orbit";
const ALICE_2: &str = "Harbor-Saffron-27-Quill";
const BOB_1: &str = "Velvet-Harbor-88-Cinder";
const BOB_2: &str = "Tundra-Velvet-45-Prism";
const CAROL_1: &str = "Juniper-Anvil-12-Sonnet";
const DAVE_1: &str = "Meadow-Beacon-66-Thistle";
const DAVE_2: &str = "Lichen-Ferry-30-Marble";
const NOBODY_1: &str = "Maple-Tundra-36-Signal";
const NOBODY_2: &str = "Orbit-Cinder-93-Walnut";
const WRONG: &str = "Saffron-Glacier-74-Ember";
const UNKNOWN_USERS_SECRET: &str = "Cobalt-Meadow-19-Falcon";
/// A password typed at the login prompt instead of the name (an unknown "user").
const TYPED_AS_NAME: &str = "Ivory-Prairie-62-Comet";

/// credctl with its own syslog records going to the test's rsyslogd; every output is kept.
struct Ctl<'a> {
    d: &'a TestDaemon,
    syslog: String,
    outputs: Vec<(String, Vec<u8>)>,
}

impl Ctl<'_> {
    fn run(&mut self, args: &[&str], stdin: &str) -> Output {
        let out = self.run_keeping_stdout(args, stdin);
        self.outputs
            .push((format!("credctl {args:?} stdout"), out.stdout.clone()));
        out
    }

    /// As `run`, but standard output is the deliberate output of a code: not searched.
    fn run_keeping_stdout(&mut self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(bins::credctl())
            .arg("--socket")
            .arg(self.d.admin_socket())
            .args(args)
            .env_remove("CREDD_ADMIN_SOCKET")
            .env("CREDCTL_SYSLOG", &self.syslog)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn credctl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "credctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.outputs
            .push((format!("credctl {args:?} stderr"), out.stderr.clone()));
        out
    }
}

fn stack(d: &TestDaemon) -> PamStack {
    PamStack::new(
        "sshd",
        &[
            d.module_line("auth", "required", ""),
            d.module_line("account", "required", ""),
            d.module_line("password", "required", ""),
        ],
    )
}

fn login(s: &PamStack, user: &str, secret: &str) -> i32 {
    let conv = Conversation::new().answer(Some("Password: "), secret);
    s.start(user, conv).unwrap().authenticate(0)
}

/// A code at the password prompt, then the forced change to `new` (what sshd and login do).
fn redeem(s: &PamStack, user: &str, code: &str, new: &str) {
    let conv = Conversation::new()
        .answer(Some("Password: "), code)
        .answer(Some("New password: "), new)
        .answer(Some("Retype new password: "), new);
    let mut session = s.start(user, conv).unwrap();
    assert_eq!(session.authenticate(0), codes::PAM_SUCCESS, "{user}");
    assert_eq!(session.acct_mgmt(0), codes::PAM_NEW_AUTHTOK_REQD, "{user}");
    assert_eq!(
        session.chauthtok(flags::PAM_CHANGE_EXPIRED_AUTHTOK),
        codes::PAM_SUCCESS,
        "{user}"
    );
    assert_eq!(session.acct_mgmt(0), codes::PAM_SUCCESS, "{user}");
}

/// Every spelling of a secret worth looking for: as typed, upper and lower case, and for codes
/// the normalised forms without dashes.
fn spellings(secret: &str) -> Vec<String> {
    let mut all = vec![
        secret.to_string(),
        secret.to_uppercase(),
        secret.to_lowercase(),
    ];
    let bare = secret.replace('-', "");
    all.extend([bare.clone(), bare.to_uppercase(), bare.to_lowercase()]);
    all.sort();
    all.dedup();
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// Every regular file under `dir`, read as raw bytes, named by path.
fn files_under(dir: &Path, label: &str) -> Vec<(String, Vec<u8>)> {
    let mut found = Vec::new();
    let mut pending: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                found.push((format!("{label} {}", path.display()), bytes));
            }
        }
    }
    found
}

#[test]
fn no_password_or_code_reaches_a_log_a_database_file_or_credctls_output() {
    if skip_unless_root("no_password_or_code_reaches_a_log_a_database_file_or_credctls_output") {
        return;
    }
    assert!(have("pamtester") && have("runuser"));
    let rsyslog = Rsyslog::start();
    let syslog = format!("unix:{}", rsyslog.socket_path().display());
    let mut d = TestDaemon::start_with(&format!(
        "{}[audit]\nsyslog = \"{syslog}\"\n",
        credd_e2e::daemon::TEST_CONFIG
    ));
    let mut ctl = Ctl {
        d: &d,
        syslog: syslog.clone(),
        outputs: Vec::new(),
    };
    let s = stack(&d);

    // Accounts with passwords set by `user add`.
    for (name, uid, password) in [
        (ALICE, "5401", ALICE_1),
        (BOB, "5402", BOB_1),
        (DAVE, "5404", DAVE_1),
    ] {
        ctl.run(
            &["user", "add", name, "--uid", uid, "--password-stdin"],
            &format!("{password}\n"),
        );
    }
    ctl.run(
        &["user", "add", "nobody", "--password-stdin"],
        &format!("{NOBODY_1}\n"),
    );

    // Right and wrong logins; a wrong password that is another user's; an unknown user; a
    // password typed where the name goes.
    assert_eq!(login(&s, ALICE, ALICE_1), codes::PAM_SUCCESS);
    assert_eq!(login(&s, ALICE, WRONG), codes::PAM_AUTH_ERR);
    assert_eq!(login(&s, ALICE, BOB_1), codes::PAM_AUTH_ERR);
    assert_eq!(login(&s, BOB, BOB_1), codes::PAM_SUCCESS);
    assert_eq!(
        login(&s, "hyg-ghost", UNKNOWN_USERS_SECRET),
        codes::PAM_USER_UNKNOWN
    );
    assert_eq!(login(&s, TYPED_AS_NAME, ALICE_1), codes::PAM_USER_UNKNOWN);

    // A reset: the code from credctl's standard output, redeemed through PAM with the change.
    let out = ctl.run_keeping_stdout(&["reset", ALICE], "");
    let code_1 = String::from_utf8(out.stdout.clone())
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(code_1.len(), 19, "{code_1:?}");
    // The search finds the code where it deliberately is.
    assert!(contains(&out.stdout, &code_1));
    assert_eq!(login(&s, ALICE, ALICE_1), codes::PAM_AUTH_ERR);
    redeem(&s, ALICE, &code_1, ALICE_2);
    assert_eq!(login(&s, ALICE, ALICE_2), codes::PAM_SUCCESS);

    // An administrator sets a password; a user changes their own with the old one (pamtester as
    // nobody, like passwd).
    ctl.run(&["passwd", BOB, "--password-stdin"], &format!("{BOB_2}\n"));
    assert_eq!(login(&s, BOB, BOB_2), codes::PAM_SUCCESS);
    let module = d.public_copy(&bins::pam_module());
    let svc = SystemService::install(&[
        d.module_line_for(&module, "auth", "required", ""),
        d.module_line_for(&module, "account", "required", ""),
        d.module_line_for(&module, "password", "required", ""),
    ]);
    let passwd = svc.pamtester(
        Some("nobody"),
        "nobody",
        &["chauthtok"],
        &format!("{NOBODY_1}\n{NOBODY_2}\n{NOBODY_2}\n"),
    );
    assert!(passwd.status.success(), "{}", all_output(&passwd));
    let after = svc.pamtester(
        Some("nobody"),
        "nobody",
        &["authenticate"],
        &format!("{NOBODY_2}\n"),
    );
    assert!(after.status.success(), "{}", all_output(&after));
    let pamtester_output = format!("{}{}", all_output(&passwd), all_output(&after));

    // An import: an account added with a hash (its password never passes through credctl) and a
    // reset whose code goes to the codes file, redeemed through PAM.
    let work = tempfile::tempdir().unwrap();
    let csv = work.path().join("users.csv");
    std::fs::write(
        &csv,
        format!(
            "user,action,uid,password_hash,must_change,ttl,reason\n\
             {CAROL},add,5403,\"{}\",false,,\n\
             {DAVE},reset,,,,30m,\n",
            phc_hash(CAROL_1, 1000)
        ),
    )
    .unwrap();
    let codes_out = work.path().join("codes.csv");
    ctl.run(
        &[
            "import",
            csv.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        "",
    );
    let codes_file = std::fs::read_to_string(&codes_out).unwrap();
    let code_2 = codes_file
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{DAVE},")))
        .and_then(|rest| rest.split(',').next())
        .unwrap_or_else(|| panic!("no code for {DAVE} in {codes_file}"))
        .to_string();
    assert_eq!(login(&s, CAROL, CAROL_1), codes::PAM_SUCCESS);
    redeem(&s, DAVE, &code_2, DAVE_2);
    assert_eq!(login(&s, DAVE, DAVE_2), codes::PAM_SUCCESS);
    assert_eq!(login(&s, DAVE, DAVE_1), codes::PAM_AUTH_ERR);

    // The database files while credd runs (recent pages in the WAL), then after it stopped.
    let mut haystacks = files_under(&d.state_dir(), "running: state dir");
    let outputs = std::mem::take(&mut ctl.outputs);
    drop(ctl);
    let status = d.stop();
    assert!(status.success(), "{status}");
    assert!(
        rsyslog.wait_for("event=daemon_stopped", WAIT),
        "{}",
        rsyslog.lines().join("\n")
    );
    assert!(
        rsyslog.wait_for("action=import", WAIT),
        "credctl's own records: {}",
        rsyslog.lines().join("\n")
    );
    haystacks.extend(files_under(&d.state_dir(), "stopped: state dir"));
    haystacks.extend(files_under(rsyslog.root(), "syslog"));
    haystacks.push(("credd's stderr".into(), d.log().join("\n").into_bytes()));
    haystacks.push(("pamtester".into(), pamtester_output.into_bytes()));
    haystacks.extend(outputs);

    // The search works: the account names are in every kind of place searched.
    let kinds = [
        "running: state dir",
        "stopped: state dir",
        "syslog",
        "credd's stderr",
        "credctl",
    ];
    for kind in kinds {
        let all: Vec<u8> = haystacks
            .iter()
            .filter(|(what, _)| what.starts_with(kind))
            .flat_map(|(_, bytes)| bytes.iter().copied())
            .collect();
        for name in [ALICE, DAVE] {
            assert!(
                contains(&all, name),
                "sanity: {name} not found in {kind} (searched {} files)",
                haystacks
                    .iter()
                    .filter(|(w, _)| w.starts_with(kind))
                    .count()
            );
        }
    }
    assert!(contains(codes_file.as_bytes(), &code_2));

    // No secret, in any spelling, anywhere.
    let secrets = [
        ALICE_1,
        ALICE_2,
        BOB_1,
        BOB_2,
        CAROL_1,
        DAVE_1,
        DAVE_2,
        NOBODY_1,
        NOBODY_2,
        WRONG,
        UNKNOWN_USERS_SECRET,
        TYPED_AS_NAME,
        &code_1,
        &code_2,
    ];
    let mut leaks = Vec::new();
    for secret in secrets {
        for spelling in spellings(secret) {
            for (what, bytes) in &haystacks {
                if contains(bytes, &spelling) {
                    leaks.push(format!("{spelling:?} (from {secret:?}) in {what}"));
                }
            }
        }
    }
    eprintln!(
        "secrets: searched {} files and outputs for {} secrets in {} spellings",
        haystacks.len(),
        secrets.len(),
        secrets.iter().map(|s| spellings(s).len()).sum::<usize>()
    );
    assert!(leaks.is_empty(), "secrets found:\n{}", leaks.join("\n"));
}
