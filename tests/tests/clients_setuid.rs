//! The real setuid clients of a Debian host against a real credd (root only): `sudo`, shadow's
//! `passwd` and util-linux `su -l`, each run by a real unprivileged system user created for the
//! test (useradd, removed on drop), with the credd blocks of docs/pam.md in their PAM services.
//!
//! - sudo reads its service from a sudoers drop-in (`Defaults:USER pam_service=…`), so it gets a
//!   private `/etc/pam.d` file; it is driven through `sudo -S` (every prompt read from stdin).
//! - passwd and `su -l` use fixed service names (`passwd`, `su-l`): those system files are
//!   replaced for the test by the credd block followed by the original file, and restored byte
//!   for byte on drop (also on panic; a run killed before it could restore is repaired by the next
//!   one from the backup in /var/tmp). One lock serialises that, in this process and across
//!   processes. Both run on a pseudo-terminal (credd_e2e::pty), answering each prompt when it
//!   appears.
//!
//! Failures print the client's transcript, credd's log and the account's audit trail. The system
//! users, the PAM file replacement, `run_piped` and `Findings` are in credd_e2e::system_users
//! (shared with clients_console.rs).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::pty::PtySession;
use credd_e2e::system_pam::{SystemService, all_output, have};
use credd_e2e::system_users::{Findings, Ran, ReplacedPamFile, TestUser, context, run_piped};

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";
const THIRD_PASSWORD: &str = "slowly typed passphrase 7";
/// Shorter than `[password] min_length` (12).
const WEAK_PASSWORD: &str = "short1";
const WRONG_PASSWORD: &str = "not the password at all";
/// A retype that does not match the new password.
const MISTYPED_PASSWORD: &str = "a fresh passphrase 43";
const MISMATCH: &str = "Sorry, passwords do not match.";

/// How long any one prompt or exit may take (a cold debug build on a busy machine).
const STEP: Duration = Duration::from_secs(20);

const BAD_PASSWORD: &str = "BAD PASSWORD: ";
const MUST_CHANGE_MESSAGE: &str = "You are required to change your password immediately";

// ---------------------------------------------------------------------------------------------
// sudoers drop-in

/// `/etc/sudoers.d/credd-test-PID-N` (0440 root), validated with `visudo -cf` before it is put in
/// place, removed on drop.
struct SudoersDropIn {
    path: PathBuf,
}

impl SudoersDropIn {
    fn install(user: &str, pam_service: &str) -> SudoersDropIn {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "credd-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let path = Path::new("/etc/sudoers.d").join(&name);
        // sudo skips names containing a dot, so the file is complete and checked before it is
        // renamed to a name sudo reads.
        let staging = Path::new("/etc/sudoers.d").join(format!(".{name}.tmp"));
        let text = format!(
            "# credd e2e test (tests/tests/clients_setuid.rs), removed when the test ends\n\
             Defaults:{user} pam_service={pam_service}\n\
             {user} ALL=(ALL) ALL\n"
        );
        std::fs::write(&staging, text).expect("write sudoers drop-in");
        std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o440)).unwrap();
        let check = Command::new("visudo")
            .arg("-cf")
            .arg(&staging)
            .output()
            .expect("run visudo");
        if !check.status.success() {
            let _ = std::fs::remove_file(&staging);
            panic!("visudo -cf refused the drop-in: {}", all_output(&check));
        }
        std::fs::rename(&staging, &path).expect("put the sudoers drop-in in place");
        SudoersDropIn { path }
    }
}

impl Drop for SudoersDropIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

// ---------------------------------------------------------------------------------------------
// credd and its stacks

fn daemon() -> TestDaemon {
    TestDaemon::start()
}

/// The module copied where every uid can load it (the clients run setuid or as the test user).
fn module(d: &TestDaemon) -> PathBuf {
    d.public_copy(&bins::pam_module())
}

/// docs/pam.md's credd line for `facility`: success ends the stack, only an unknown user goes on.
fn credd_line(d: &TestDaemon, module: &Path, facility: &str) -> String {
    d.module_line_for(
        module,
        facility,
        "[success=done user_unknown=ignore default=die]",
        "",
    )
}

/// A private service for sudo: credd for auth, account and password, nothing behind it.
fn sudo_service(d: &TestDaemon) -> SystemService {
    let module = module(d);
    SystemService::install(&[
        credd_line(d, &module, "auth"),
        "auth requisite pam_deny.so".into(),
        credd_line(d, &module, "account"),
        "account requisite pam_deny.so".into(),
        credd_line(d, &module, "password"),
        "password requisite pam_deny.so".into(),
        "session optional pam_permit.so".into(),
    ])
}

/// pamtester's view of whether `password` authenticates `user` (run as root, like sshd).
fn authenticates(d: &TestDaemon, user: &str, password: &str) -> (bool, String) {
    let module = module(d);
    let svc = SystemService::install(&[
        credd_line(d, &module, "auth"),
        "auth requisite pam_deny.so".into(),
        credd_line(d, &module, "account"),
        "account requisite pam_deny.so".into(),
    ]);
    let out = svc.pamtester(
        None,
        user,
        &["authenticate", "acct_mgmt"],
        &format!("{password}\n"),
    );
    (out.status.success(), all_output(&out))
}

fn ctl_json(d: &TestDaemon, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    let out = d.ctl(&args);
    assert!(
        out.status.success(),
        "credctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "credctl {args:?} --json: {e}: {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn reset_code(d: &TestDaemon, user: &str) -> String {
    let out = d.ctl(&["reset", user]);
    assert!(
        out.status.success(),
        "credctl reset {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let code = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(
        code.len(),
        19,
        "a code looks like XXXX-XXXX-XXXX-XXXX: {code:?}"
    );
    code
}

/// `runuser -u USER -- sudo -S -k -p 'PW:' true`, answering from `stdin`: -S reads every prompt
/// (the password and the new ones of a forced change) from standard input; -k ignores any cached
/// credentials, so every run authenticates.
fn sudo_as(user: &str, stdin: &str) -> Ran {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "sudo", "-S", "-k", "-p", "PW:", "true"]);
    run_piped(cmd, stdin, STEP)
}

/// The same without `-p`: with -p, sudo (1.9.13) replaces *every* hidden PAM prompt, including
/// the module's "New password: " and "Retype new password: " of a forced change, by its default
/// prompt, unexpanded ("[sudo] password for %p: "); without it the module's prompts show.
fn sudo_as_default_prompt(user: &str, stdin: &str) -> Ran {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "sudo", "-S", "-k", "true"]);
    run_piped(cmd, stdin, STEP)
}

fn sudo_prerequisites() {
    for tool in [
        "sudo",
        "visudo",
        "runuser",
        "useradd",
        "userdel",
        "pamtester",
    ] {
        assert!(have(tool), "{tool} is not installed");
    }
}

struct SudoSetup {
    d: TestDaemon,
    user: TestUser,
    svc: SystemService,
    _sudoers: SudoersDropIn,
}

fn sudo_setup(tag: &str) -> SudoSetup {
    sudo_prerequisites();
    let d = daemon();
    let user = TestUser::create(tag);
    d.add_user(&user.name, PASSWORD, &["--uid", &user.uid_arg()]);
    let svc = sudo_service(&d);
    let sudoers = SudoersDropIn::install(&user.name, &svc.name);
    SudoSetup {
        d,
        user,
        svc,
        _sudoers: sudoers,
    }
}

// ---------------------------------------------------------------------------------------------
// sudo

/// Twenty correct sudo runs back to back, as a script would do them: every one succeeds. A right
/// password gives back the rate tokens its attempt took, so correct logins never run dry
/// (`local_uid` is 5 at once for sudo's real uid; before that rule the sixth run was refused).
#[test]
fn sudo_a_burst_of_correct_passwords_all_succeed() {
    if skip_unless_root("sudo_a_burst_of_correct_passwords_all_succeed") {
        return;
    }
    let s = sudo_setup("sudo");
    let runs = 20;
    let mut failed = Vec::new();
    let started = Instant::now();
    for i in 1..=runs {
        let ran = sudo_as(&s.user.name, &format!("{PASSWORD}\n"));
        if !ran.ok() {
            failed.push(format!("run {i}: {}", ran.text()));
        }
    }
    eprintln!(
        "sudo burst: {}/{runs} runs succeeded in {:.1} s",
        runs - failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "{}/{runs} sudo runs with the right password failed; first failures:\n{}\n\n{}",
        failed.len(),
        failed
            .iter()
            .take(2)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        context(&s.d, &s.user.name)
    );
    // The drop-in's pam_service reached credd: the audit trail names our service.
    let audit = context(&s.d, &s.user.name);
    assert!(
        audit.contains(&format!("service={}", s.svc.name)),
        "credd never saw the service {}: {audit}",
        s.svc.name
    );
}

/// `deny` (5) wrong sudo runs count one failure each and lock the account; the right password is
/// then refused (through pamtester as root: with the lock message); `credctl unlock` restores it
/// at once: the owner's very next sudo with the right password succeeds. (The five wrong runs
/// also empty the `local_uid` bucket of the user's uid, 5 at once, which every sudo by that user
/// draws on; unlock must not leave the owner shut out by it.)
#[test]
fn sudo_wrong_passwords_lock_and_unlock_restores() {
    if skip_unless_root("sudo_wrong_passwords_lock_and_unlock_restores") {
        return;
    }
    let s = sudo_setup("sudolk");
    let name = s.user.name.as_str();
    let mut f = Findings::default();
    for i in 1..=5 {
        // One line: sudo's second try (passwd_tries is 3) reads EOF and gives up.
        let ran = sudo_as(name, &format!("{WRONG_PASSWORD}\n"));
        f.check(!ran.ok() && ran.status.is_some(), || {
            format!("wrong run {i} must fail (and not hang): {}", ran.text())
        });
        let st = ctl_json(&s.d, &["status", name]);
        f.check(st["failures"] == i, || {
            format!("after wrong run {i} credctl status must count {i} failures: {st}")
        });
        f.check(st["locked"] == (i == 5), || {
            format!("after wrong run {i}: locked must be {}: {st}", i == 5)
        });
        if i == 1 {
            eprintln!("sudo, one wrong password:\n{}", ran.text());
        }
    }
    let st = ctl_json(&s.d, &["status", name]);
    f.check(st["lock_kind"] == "failures", || {
        format!("the lock must be a failures lock: {st}")
    });
    f.check(
        st["last_failure"]["service"] == serde_json::json!(s.svc.name),
        || {
            format!(
                "the failure must name sudo's pam_service {}: {st}",
                s.svc.name
            )
        },
    );
    // The lock itself refuses the right password: root callers (pamtester, like sshd) are not
    // subject to the user's local_uid bucket that the five sudo runs have emptied, so they reach
    // the lock check and see the lock message.
    let (ok, text) = authenticates(&s.d, name, PASSWORD);
    f.check(!ok && text.contains("Your account is locked"), || {
        format!("while locked the right password must be refused with the lock message: {text}")
    });
    let ran = sudo_as(name, &format!("{PASSWORD}\n"));
    f.check(!ran.ok(), || {
        format!(
            "the right password must be refused while locked: {}",
            ran.text()
        )
    });
    eprintln!("sudo, right password while locked:\n{}", ran.text());

    let out = s.d.ctl(&["unlock", name]);
    assert!(out.status.success(), "{}", all_output(&out));
    let st = ctl_json(&s.d, &["status", name]);
    f.check(st["locked"] == false && st["failures"] == 0, || {
        format!("after credctl unlock: {st}")
    });
    let log_before = s.d.log().len();
    let ran = sudo_as(name, &format!("{PASSWORD}\n"));
    // What credd said about that one attempt (a rate-limit refusal is logged once per burst).
    let credd_said: Vec<String> = s.d.log()[log_before..]
        .iter()
        .filter(|l| l.contains("rate limit") || l.contains("result="))
        .cloned()
        .collect();
    let mut back_after = None;
    if !ran.ok() {
        // How long the owner stays shut out after the unlock: a rate-limited attempt takes no
        // token, so asking once a second changes nothing. Bounded; only for the report.
        let unlocked_at = Instant::now();
        back_after = (0..15).find_map(|_| {
            std::thread::sleep(Duration::from_secs(1));
            sudo_as(name, &format!("{PASSWORD}\n"))
                .ok()
                .then(|| unlocked_at.elapsed())
        });
    }
    f.check(ran.ok(), || {
        format!(
            "right after credctl unlock the owner's right password must work through sudo \
             (unlock refills the account's buckets; but the five wrong sudo runs also emptied \
             the local_uid bucket of uid {}, which sudo's real uid draws on); credd about that \
             attempt: {credd_said:?}; it worked again {back_after:?} after the unlock; sudo: {}",
            s.user.uid,
            ran.text()
        )
    });
    f.finish(&s.d, name);
}

/// A reset code through sudo: sudo sees PAM_NEW_AUTHTOK_REQD from acct_mgmt and runs
/// pam_chauthtok(PAM_CHANGE_EXPIRED_AUTHTOK); the module reuses the code and asks for the new
/// password twice (all read by `sudo -S` from stdin). Afterwards the new password works with sudo
/// and the account no longer must change.
#[test]
fn sudo_forced_change_with_a_reset_code() {
    if skip_unless_root("sudo_forced_change_with_a_reset_code") {
        return;
    }
    let s = sudo_setup("sudorc");
    let name = s.user.name.as_str();
    let code = reset_code(&s.d, name);
    let mut f = Findings::default();
    f.check(
        ctl_json(&s.d, &["user", "show", name])["must_change"] == true,
        || "after credctl reset the account must change".into(),
    );

    let ran = sudo_as_default_prompt(name, &format!("{code}\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n"));
    eprintln!("sudo with a reset code:\n{}", ran.text());
    f.check(ran.ok(), || {
        format!(
            "sudo with the code and a new password must succeed: {}",
            ran.text()
        )
    });
    // sudo announces PAM_NEW_AUTHTOK_REQD itself (acct_mgmt runs with PAM_SILENT, so the
    // module's own must-change message is not shown) and then runs the change.
    f.check(
        ran.stderr
            .contains("Account or password is expired, reset your password and try again"),
        || format!("sudo must run the forced change: {}", ran.text()),
    );
    f.check(
        ran.stderr.contains("New password: ") && ran.stderr.contains("Retype new password: "),
        || format!("sudo must show the module's change prompts: {}", ran.text()),
    );
    let show = ctl_json(&s.d, &["user", "show", name]);
    f.check(show["must_change"] == false, || {
        format!("after the change credctl user show must not say must_change: {show}")
    });
    let st = ctl_json(&s.d, &["status", name]);
    f.check(st["locked"] == false, || {
        format!("status after the change: {st}")
    });

    let ran = sudo_as(name, &format!("{NEW_PASSWORD}\n"));
    f.check(ran.ok(), || {
        format!("the new password must work with sudo: {}", ran.text())
    });
    let ran = sudo_as(name, &format!("{code}\n"));
    f.check(!ran.ok(), || {
        format!("the used code must not work again: {}", ran.text())
    });
    f.finish(&s.d, name);
}

// ---------------------------------------------------------------------------------------------
// passwd

/// `runuser -u USER -- passwd` on a terminal.
fn passwd_on_pty(user: &str) -> PtySession {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", "passwd"]);
    cmd.env("LC_ALL", "C");
    PtySession::spawn(cmd).expect("start passwd on a pty")
}

/// One passwd conversation: the current password; optionally (`refusals_first`) a weak new one
/// (refused at once with "BAD PASSWORD: …" and asked again) and then a mismatched retype ("Sorry,
/// passwords do not match." and asked again); then `new` twice after a deliberate `pause`.
/// Returns the exit status when the conversation went as expected; every deviation is a finding.
fn passwd_change(
    user: &str,
    current: &str,
    refusals_first: bool,
    pause: Duration,
    new: &str,
    f: &mut Findings,
) -> Option<ExitStatus> {
    let mut p = passwd_on_pty(user);
    let result = (|| -> Result<ExitStatus, String> {
        p.expect("Current password: ", STEP)?;
        p.send_secret(current)?;
        p.expect("New password: ", STEP)?;
        if refusals_first {
            p.send_secret(WEAK_PASSWORD)?;
            // The module checks the first entry with credd before asking to retype it.
            let (which, _) = p.expect_any(&[BAD_PASSWORD, "Retype new password: "], STEP)?;
            if which != 0 {
                return Err(format!(
                    "a weak new password must be refused at once with \"{BAD_PASSWORD}…\", \
                     before the retype prompt; transcript:\n{}",
                    p.transcript()
                ));
            }
            let reason = p.expect("\n", STEP)?;
            f.check(reason.contains("shorter than 12 characters"), || {
                format!("the refusal must give credd's reason: {reason:?}")
            });
            // ... and asks again in the same run.
            p.expect("New password: ", STEP)?;
            // A retype that differs: "Sorry, passwords do not match." and ask again (the third
            // entry of the default retry=3 budget is the good one below).
            p.send_secret(new)?;
            p.expect("Retype new password: ", STEP)?;
            p.send_secret(MISTYPED_PASSWORD)?;
            let (which, _) = p.expect_any(&[MISMATCH, "passwd: "], STEP)?;
            if which != 0 {
                return Err(format!(
                    "a mismatched retype must say \"{MISMATCH}\" and ask again; transcript:\n{}",
                    p.transcript()
                ));
            }
            p.expect("New password: ", STEP)?;
        }
        if !pause.is_zero() {
            eprintln!("passwd: waiting {pause:?} at the \"New password: \" prompt");
            std::thread::sleep(pause); // the user's delay under test, not synchronisation
        }
        p.send_secret(new)?;
        p.expect("Retype new password: ", STEP)?;
        p.send_secret(new)?;
        p.wait(STEP)
    })();
    let transcript = p.transcript();
    eprintln!("passwd transcript:\n{transcript}\n({result:?})");
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            f.check(false, || e);
            return None;
        }
    };
    let ok = f.check(status.success(), || {
        format!("passwd must exit 0: {status:?}; transcript:\n{transcript}")
    });
    f.check(
        transcript.contains("passwd: password updated successfully"),
        || format!("passwd must report the update; transcript:\n{transcript}"),
    );
    ok.then_some(status)
}

/// shadow's passwd (setuid root), run by the user on a terminal, through /etc/pam.d/passwd with
/// the credd block in front of `@include common-password`:
/// 1. current password, a weak new one refused with "BAD PASSWORD: …" and asked again in the same
///    run, a mismatched retype refused and asked again, a good one twice: exit 0, and the new
///    password authenticates (pamtester);
/// 2. a 20 s pause at "New password: " (longer than credd's 10 s idle timeout): still succeeds,
///    because the module holds no daemon connection across a prompt;
/// 3. a wrong current password: passwd prints "passwd: Authentication failure" (PAM_AUTH_ERR);
/// 4. three weak new passwords in one run: PAM_MAXTRIES (retry=3), the password unchanged.
#[test]
fn passwd_changes_through_the_real_setuid_passwd() {
    if skip_unless_root("passwd_changes_through_the_real_setuid_passwd") {
        return;
    }
    for tool in ["passwd", "runuser", "useradd", "userdel", "pamtester"] {
        assert!(have(tool), "{tool} is not installed");
    }
    let d = daemon();
    let user = TestUser::create("passwd");
    let name = user.name.clone();
    d.add_user(&name, PASSWORD, &["--uid", &user.uid_arg()]);
    let module = module(&d);
    let _pam = ReplacedPamFile::install("passwd", &[credd_line(&d, &module, "password")]);
    let mut f = Findings::default();

    // 1. weak, then good.
    let mut current = PASSWORD;
    if passwd_change(&name, current, true, Duration::ZERO, NEW_PASSWORD, &mut f).is_some() {
        let (ok, text) = authenticates(&d, &name, NEW_PASSWORD);
        f.check(ok, || format!("the new password must authenticate: {text}"));
        let (old_ok, text) = authenticates(&d, &name, PASSWORD);
        f.check(!old_ok, || format!("the old password must not: {text}"));
        if ok {
            current = NEW_PASSWORD;
        }
    }

    // 2. a slow user: 20 s at the prompt.
    let started = Instant::now();
    if passwd_change(
        &name,
        current,
        false,
        Duration::from_secs(20),
        THIRD_PASSWORD,
        &mut f,
    )
    .is_some()
    {
        eprintln!(
            "slow passwd run took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let (ok, text) = authenticates(&d, &name, THIRD_PASSWORD);
        f.check(ok, || {
            format!("the password set after a 20 s pause must authenticate: {text}")
        });
        if ok {
            current = THIRD_PASSWORD;
        }
    }

    // 3. wrong current password.
    let mut p = passwd_on_pty(&name);
    match p.expect("Current password: ", STEP) {
        Ok(_) => {
            let _ = p.send_secret(WRONG_PASSWORD);
            match p.wait(STEP) {
                Ok(status) => {
                    let t = p.transcript();
                    eprintln!("passwd, wrong current password:\n{t}\n(exit {status:?})");
                    f.check(!status.success(), || format!("must fail: {t}"));
                    f.check(t.contains("passwd: Authentication failure"), || {
                        format!(
                            "a wrong current password must be PAM_AUTH_ERR, shown by passwd as \
                             \"passwd: Authentication failure\"; transcript:\n{t}"
                        )
                    });
                    f.check(!t.contains("New password: "), || {
                        format!("no new password may be asked for: {t}")
                    });
                }
                Err(e) => {
                    f.check(false, || e);
                }
            }
        }
        Err(e) => {
            f.check(false, || e);
        }
    }

    // 4. three weak entries use up the default retry=3 budget: PAM_MAXTRIES, nothing changes.
    let mut p = passwd_on_pty(&name);
    let result = (|| -> Result<ExitStatus, String> {
        p.expect("Current password: ", STEP)?;
        p.send_secret(current)?;
        for _ in 0..3 {
            p.expect("New password: ", STEP)?;
            p.send_secret(WEAK_PASSWORD)?;
            p.expect(BAD_PASSWORD, STEP)?;
        }
        p.wait(STEP)
    })();
    let t = p.transcript();
    eprintln!("passwd, three weak passwords:\n{t}\n({result:?})");
    f.check(result.as_ref().is_ok_and(|s| !s.success()), || {
        format!("three refusals must end passwd with a failure: {result:?}; transcript:\n{t}")
    });
    f.check(
        t.contains("passwd: Have exhausted maximum number of retries for service"),
        || format!("after retry=3 refusals the module must return PAM_MAXTRIES; transcript:\n{t}"),
    );
    f.check(t.matches("New password: ").count() == 3, || {
        format!("exactly three new passwords may be asked for; transcript:\n{t}")
    });

    let (ok, text) = authenticates(&d, &name, current);
    f.check(ok, || {
        format!("the failed attempts must leave the password alone: {text}")
    });
    f.finish(&d, &name);
}

// ---------------------------------------------------------------------------------------------
// su -l

/// `runuser -u OTHER -- su -l TARGET -c 'id -un'` on a terminal.
fn su_l_on_pty(other: &str, target: &str) -> PtySession {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", other, "--", "su", "-l", target, "-c", "id -un"]);
    cmd.env("LC_ALL", "C");
    PtySession::spawn(cmd).expect("start su on a pty")
}

/// util-linux `su -l` (service `su-l`) run by another unprivileged user: a reset code, then the
/// forced change su runs after PAM_NEW_AUTHTOK_REQD (New password / Retype); the account no
/// longer must change, and the new password then works with `su -l`.
#[test]
fn su_l_forced_change_with_a_reset_code() {
    if skip_unless_root("su_l_forced_change_with_a_reset_code") {
        return;
    }
    for tool in ["su", "runuser", "useradd", "userdel"] {
        assert!(have(tool), "{tool} is not installed");
    }
    let d = daemon();
    let target = TestUser::create("su");
    let other = TestUser::create("suby");
    d.add_user(&target.name, PASSWORD, &["--uid", &target.uid_arg()]);
    let module = module(&d);
    // Root keeps su without a password (pam_rootok, as in docs/pam.md); then the credd block;
    // then the original file for everyone credd does not hold.
    let _pam = ReplacedPamFile::install(
        "su-l",
        &[
            "auth sufficient pam_rootok.so".into(),
            credd_line(&d, &module, "auth"),
            credd_line(&d, &module, "account"),
            credd_line(&d, &module, "password"),
        ],
    );
    let code = reset_code(&d, &target.name);
    let mut f = Findings::default();

    let mut p = su_l_on_pty(&other.name, &target.name);
    let mut changed = false;
    let result = (|| -> Result<ExitStatus, String> {
        p.expect("Password: ", STEP)?;
        // The code typed as a user would: lower case with spaces.
        p.send_secret(&code.to_lowercase().replace('-', " "))?;
        p.expect("New password: ", STEP)?;
        p.send_secret(NEW_PASSWORD)?;
        p.expect("Retype new password: ", STEP)?;
        p.send_secret(NEW_PASSWORD)?;
        p.expect(&target.name, STEP)?;
        p.wait(STEP)
    })();
    let t = p.transcript();
    eprintln!("su -l with a reset code:\n{t}\n({result:?})");
    match result {
        Ok(status) => {
            changed = f.check(status.success(), || {
                format!("su -l must succeed after the change: {status:?}; transcript:\n{t}")
            });
            f.check(t.contains(MUST_CHANGE_MESSAGE), || {
                format!("su passes no PAM_SILENT: acct_mgmt's message must show:\n{t}")
            });
        }
        Err(e) => {
            f.check(false, || e);
        }
    }
    let show = ctl_json(&d, &["user", "show", &target.name]);
    f.check(show["must_change"] == false, || {
        format!("after the change the account must not need one: {show}")
    });

    if changed {
        let mut p = su_l_on_pty(&other.name, &target.name);
        let result = (|| -> Result<ExitStatus, String> {
            p.expect("Password: ", STEP)?;
            p.send_secret(NEW_PASSWORD)?;
            p.expect(&target.name, STEP)?;
            p.wait(STEP)
        })();
        let t = p.transcript();
        eprintln!("su -l with the new password:\n{t}\n({result:?})");
        f.check(result.as_ref().is_ok_and(|s| s.success()), || {
            format!("the new password must work with su -l: {result:?}; transcript:\n{t}")
        });
        f.check(!t.contains("New password: "), || {
            format!("no second change may be asked for: {t}")
        });
    }
    f.finish(&d, &target.name);
}

/// Issue 15 R9: two local users running `su -l root` with wrong passwords cannot drain the
/// account bucket that root's own logins draw on. su is setuid root, so credd counts its
/// attempts against the account, but in the bucket of (root, the user's real uid): root's
/// console logins (and sshd's, from any address) keep theirs. On e7e369d the two users emptied
/// root's one shared bucket (5 wrong su runs each, until their own `local_uid` bucket stopped
/// them) and root's next logins were refused as rate-limited.
#[test]
fn local_users_running_su_root_cannot_rate_limit_roots_own_logins() {
    if skip_unless_root("local_users_running_su_root_cannot_rate_limit_roots_own_logins") {
        return;
    }
    for tool in ["su", "runuser", "useradd", "userdel", "pamtester"] {
        assert!(have(tool), "{tool} is not installed");
    }
    const ROOT_PASSWORD: &str = "the superuser passphrase 9";
    let d = daemon();
    d.add_user("root", ROOT_PASSWORD, &[]);
    let users = [TestUser::create("r9a"), TestUser::create("r9b")];
    let module = module(&d);
    let line = |facility: &str| {
        d.module_line_for(
            &module,
            facility,
            "[success=done user_unknown=ignore default=die]",
            "nodelay",
        )
    };
    let _pam = ReplacedPamFile::install(
        "su-l",
        &[
            "auth sufficient pam_rootok.so".into(),
            line("auth"),
            line("account"),
        ],
    );
    let mut f = Findings::default();
    for user in &users {
        for i in 0..8 {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", &user.name, "--", "su", "-l", "root", "-c", "true"]);
            let ran = run_piped(cmd, &format!("{WRONG_PASSWORD}\n"), STEP);
            f.check(ran.status.is_some() && !ran.ok(), || {
                format!(
                    "su root #{i} by {} with a wrong password: {}",
                    user.name,
                    ran.text()
                )
            });
        }
    }
    let counters = ctl_json(&d, &["status", "--daemon"]);
    // Between them the two users' attempts took at least the account burst (10): one shared
    // bucket for root would now be empty. Their own local_uid buckets refused the rest.
    f.check(counters["verifications"].as_u64() >= Some(10), || {
        format!("the su runs must have been verified at least the account burst: {counters}")
    });
    f.check(counters["rate_limited_replies"].as_u64() >= Some(1), || {
        format!("each user's own local_uid bucket must have stopped some su runs: {counters}")
    });
    // Root logs in on the console (pamtester as root, no rhost), five times in a row.
    let mut refused = Vec::new();
    for i in 0..5 {
        let (ok, out) = authenticates(&d, "root", ROOT_PASSWORD);
        if !ok {
            refused.push(format!("root's login #{i}: {out}"));
        }
    }
    eprintln!(
        "R9: root's own logins after 16 wrong `su -l root` by two users: {} of 5 succeeded",
        5 - refused.len()
    );
    f.check(refused.is_empty(), || refused.join("\n"));
    f.finish(&d, "root");
}
