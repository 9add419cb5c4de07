//! Console clients of a Debian host against a real credd (root only), each through its own PAM
//! service in `/etc/pam.d` with the credd block of docs/pam.md in front of the `@include` it
//! guards (the file is replaced for the test and restored byte for byte on drop, under the lock of
//! credd_e2e::system_users; accounts credd does not hold keep the original stack):
//!
//! - shadow's `login` (service `login`), run as root on a pseudo-terminal: the right password
//!   gives a shell, a wrong one "Login incorrect", a disabled account the module's message, a
//!   reset code the forced change (docs/pam.md's `/etc/pam.d/login` stack, break-glass included);
//! - shadow's `chsh` and `chfn` (services `chsh`, `chfn`, setuid root), run by the test user, who
//!   must authenticate through PAM before /etc/passwd changes;
//! - `vlock` (service `vlock`, setuid-root `vlock-main`), run by the test user: the terminal stays
//!   locked after a wrong password and unlocks with the right one, ten times in a row; then the
//!   same with a copy of vlock-main without its setuid bit, which reaches credd as the user, as
//!   screen lockers that run as the user do.
//!
//! Every client runs on a pseudo-terminal (credd_e2e::pty) and each prompt is answered once it
//! has appeared. Failures print the transcript, credd's log and the account's audit trail.

use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::pty::PtySession;
use credd_e2e::system_pam::have;
use credd_e2e::system_users::{Findings, ReplacedPamFile, TestUser, insert_before, remove_line};
use serde_json::Value;

const PASSWORD: &str = "correct horse battery";
const NEW_PASSWORD: &str = "a fresh passphrase 42";
const WRONG_PASSWORD: &str = "not the password at all";

/// How long any one prompt or exit may take (a cold debug build on a busy machine; login's own
/// failure delay is 3 s).
const STEP: Duration = Duration::from_secs(20);

const DISABLED_MESSAGE: &str =
    "Your account has been disabled; please contact your system administrator.";
const MUST_CHANGE_MESSAGE: &str =
    "You are required to change your password immediately (administrator enforced)";
const LOGIN_INCORRECT: &str = "Login incorrect";
const VLOCK_ENTER: &str = "Please press [ENTER] to unlock.";

/// docs/pam.md: success ends the stack, only an unknown user goes on to pam_unix.
const CREDD: &str = "[success=done user_unknown=ignore default=die]";
/// docs/pam.md's console auth line: credd unreachable goes on to the root check (break-glass).
const CREDD_BREAK_GLASS: &str = "[success=done user_unknown=1 authinfo_unavail=ignore default=die]";
const CREDD_ACCOUNT: &str =
    "[success=1 new_authtok_reqd=done user_unknown=1 authinfo_unavail=ignore default=die]";
const ROOT_CHECK_AUTH: &str = "auth [success=ignore default=die] pam_succeed_if.so quiet uid eq 0";
const ROOT_CHECK_ACCOUNT: &str =
    "account [success=ignore default=die] pam_succeed_if.so quiet uid eq 0";

// ---------------------------------------------------------------------------------------------
// Setup and credctl

/// A credd, a system user, and the same account in credd with the system user's uid (a screen
/// locker runs as the user, and credd answers a non-root caller only about its own uid).
struct Setup {
    d: TestDaemon,
    user: TestUser,
    /// The module, copied where every uid can load it (chsh, chfn and vlock run as the user).
    module: PathBuf,
}

impl Setup {
    fn new(tag: &str, tools: &[&str]) -> Setup {
        for tool in tools.iter().chain(&["runuser", "useradd", "userdel"]) {
            assert!(have(tool), "{tool} is not installed");
        }
        let d = TestDaemon::start();
        let user = TestUser::create(tag);
        d.add_user(&user.name, PASSWORD, &["--uid", &user.uid_arg()]);
        let module = d.public_copy(&bins::pam_module());
        Setup { d, user, module }
    }

    fn name(&self) -> &str {
        &self.user.name
    }

    /// A credd line for `facility` (the harness adds `socket=… nodelay`).
    fn line(&self, facility: &str, control: &str) -> String {
        self.d.module_line_for(&self.module, facility, control, "")
    }

    fn ctl_ok(&self, args: &[&str]) -> String {
        let out = self.d.ctl(args);
        assert!(
            out.status.success(),
            "credctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn ctl_json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let text = self.ctl_ok(&args);
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("credctl {args:?}: {e}: {text}"))
    }

    fn reset_code(&self) -> String {
        let code = self.ctl_ok(&["reset", self.name()]).trim().to_string();
        assert_eq!(
            code.len(),
            19,
            "a code looks like XXXX-XXXX-XXXX-XXXX: {code:?}"
        );
        code
    }

    /// The account's audit rows (oldest first).
    fn audit(&self) -> Vec<Value> {
        match self.ctl_json(&["audit", "--user", self.name()]) {
            Value::Array(rows) => rows,
            other => panic!("credctl audit --json is not an array: {other}"),
        }
    }

    /// What credd recorded about the callers of `service` (events with their caller uid, tty and
    /// rhost), one line per distinct combination, for the report and failure messages.
    fn callers(&self, service: &str) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for row in self.audit() {
            if row["service"] != service {
                continue;
            }
            let line = format!(
                "{} actor_uid={} tty={} rhost={}",
                row["event"], row["actor_uid"], row["tty"], row["rhost"]
            );
            if !seen.contains(&line) {
                seen.push(line);
            }
        }
        seen
    }
}

/// The effective lines of a PAM file (no comments, no blank lines), for the report.
fn stack_of(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Field `index` (0-based) of the user's passwd entry.
fn passwd_field(name: &str, index: usize) -> String {
    let out = Command::new("getent")
        .args(["passwd", name])
        .output()
        .unwrap();
    let entry = String::from_utf8_lossy(&out.stdout).trim().to_string();
    entry.split(':').nth(index).unwrap_or_default().to_string()
}

/// Runs one pty conversation, prints its transcript, and records an Err as a finding.
fn converse<T: std::fmt::Debug>(
    what: &str,
    p: &mut PtySession,
    f: &mut Findings,
    run: impl FnOnce(&mut PtySession) -> Result<T, String>,
) -> Option<T> {
    let result = run(p);
    eprintln!("--- {what} ---\n{}\n({result:?})", p.transcript());
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            f.check(false, || format!("{what}: {e}"));
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// login

/// docs/pam.md's `/etc/pam.d/login`: pam_group moved above the credd block (success=done would
/// skip its setcred), credd with the root break-glass before `@include common-auth`, the account
/// block before `common-account`, the session line before `common-session` (after pam_loginuid),
/// and the password line (needed for the forced change) before `common-password`.
fn login_stack(s: &Setup) -> ReplacedPamFile {
    ReplacedPamFile::install_edited("login", |original| {
        let t = remove_line(original, "auth optional pam_group.so");
        let t = insert_before(
            &t,
            "@include common-auth",
            &[
                "auth optional pam_group.so".into(),
                s.line("auth", CREDD_BREAK_GLASS),
                ROOT_CHECK_AUTH.into(),
            ],
        );
        let t = insert_before(
            &t,
            "@include common-account",
            &[s.line("account", CREDD_ACCOUNT), ROOT_CHECK_ACCOUNT.into()],
        );
        let t = insert_before(
            &t,
            "@include common-session",
            &[s.line("session", "optional")],
        );
        insert_before(&t, "@include common-password", &[s.line("password", CREDD)])
    })
}

/// `login USER` on a new terminal, run as root (as getty would).
fn login_on_pty(user: &str) -> PtySession {
    let mut cmd = Command::new("login");
    cmd.arg(user);
    cmd.env("LC_ALL", "C").env("TERM", "dumb");
    PtySession::spawn(cmd).expect("start login on a pty")
}

/// In the user's shell (dash, prompt "$ "): a command whose output is not its echo, then exit;
/// `during` runs while the shell is up. Returns login's exit status.
fn use_the_shell(p: &mut PtySession, during: impl FnOnce()) -> Result<ExitStatus, String> {
    p.expect("$ ", STEP)?;
    during();
    p.send_line("echo ok-$((1+1)); exit")?;
    p.expect("ok-2", STEP)?;
    p.wait(STEP)
}

/// shadow's login on a pty, as root, through docs/pam.md's login stack:
/// 1. the right password: a shell (which runs a command), credd records the session while the
///    shell runs and closes it afterwards, login exits 0;
/// 2. a wrong password: "Login incorrect", login asks for the name again, and the right password
///    in the same login process then gives a shell;
/// 3. a disabled account with the right password: the module's "Your account has been disabled;
///    …" and "Login incorrect", no shell;
/// 4. a reset code: login runs the forced change (the module's must-change message, "New
///    password: ", "Retype new password: ") and gives a shell; the account no longer must change,
///    the new password logs in, the used code does not.
#[test]
fn login_on_a_terminal() {
    if skip_unless_root("login_on_a_terminal") {
        return;
    }
    let s = Setup::new("login", &["login"]);
    let name = s.name().to_string();
    let pam = login_stack(&s);
    eprintln!(
        "/etc/pam.d/login for the test:\n{}\n",
        stack_of(&pam.contents())
    );
    let mut f = Findings::default();

    // 1. The right password.
    let mut p = login_on_pty(&name);
    let mut sessions_open = Value::Null;
    let status = converse("login, right password", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(PASSWORD)?;
        use_the_shell(p, || {
            sessions_open = s.ctl_json(&["sessions", &name]);
        })
    });
    if let Some(status) = status {
        f.check(status.success(), || {
            format!("login must exit 0 after the shell: {status:?}")
        });
    }
    let open = sessions_open.as_array().cloned().unwrap_or_default();
    f.check(
        open.len() == 1 && open[0]["service"] == "login" && open[0]["revoked_at"].is_null(),
        || format!("while the shell runs credd must hold one open login session: {sessions_open}"),
    );
    let after = s.ctl_json(&["sessions", &name]);
    f.check(after.as_array().is_some_and(|a| a.is_empty()), || {
        format!("after logout the session must be closed: {after}")
    });

    // 2. A wrong password, then the right one in the same login process.
    let mut p = login_on_pty(&name);
    let mut delay = Duration::ZERO;
    let status = converse("login, wrong then right password", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(WRONG_PASSWORD)?;
        let sent = Instant::now();
        p.expect(LOGIN_INCORRECT, STEP)?;
        delay = sent.elapsed();
        // login asks for the name again ("HOST login: ").
        p.expect(" login: ", STEP)?;
        p.send_line(&name)?;
        p.expect("Password: ", STEP)?;
        p.send_secret(PASSWORD)?;
        use_the_shell(p, || {})
    });
    eprintln!("login: \"{LOGIN_INCORRECT}\" came {delay:?} after the wrong password");
    if let Some(status) = status {
        f.check(status.success(), || {
            format!("login must exit 0: {status:?}")
        });
    }

    // 3. A disabled account, the right password.
    s.ctl_ok(&["user", "disable", &name]);
    let mut p = login_on_pty(&name);
    let shown = converse("login, disabled account", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(PASSWORD)?;
        let (which, text) = p.expect_any(&[DISABLED_MESSAGE, LOGIN_INCORRECT, "$ "], STEP)?;
        if which != 0 {
            return Err(format!(
                "login passes no PAM_SILENT: the module's message must come first, got {text:?}"
            ));
        }
        p.expect(LOGIN_INCORRECT, STEP)?;
        p.expect(" login: ", STEP)
    });
    f.check(shown.is_some() && !p.transcript().contains("$ "), || {
        format!("a disabled account must get no shell: {}", p.transcript())
    });
    drop(p);
    s.ctl_ok(&["user", "enable", &name]);

    // 4. A reset code and the forced change.
    let code = s.reset_code();
    let mut p = login_on_pty(&name);
    let status = converse("login, reset code", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(&code)?;
        p.expect(MUST_CHANGE_MESSAGE, STEP)?;
        let (which, text) = p.expect_any(&["New password: ", "Current password: "], STEP)?;
        if which != 0 {
            return Err(format!(
                "the code typed at login must be reused, not asked again: {text:?}"
            ));
        }
        p.send_secret(NEW_PASSWORD)?;
        p.expect("Retype new password: ", STEP)?;
        p.send_secret(NEW_PASSWORD)?;
        use_the_shell(p, || {})
    });
    if let Some(status) = status {
        f.check(status.success(), || {
            format!("login must exit 0 after the change: {status:?}")
        });
    }
    let show = s.ctl_json(&["user", "show", &name]);
    f.check(show["must_change"] == false, || {
        format!("after the change the account must not need one: {show}")
    });
    let mut p = login_on_pty(&name);
    converse("login, the new password", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(NEW_PASSWORD)?;
        use_the_shell(p, || {})
    });
    f.check(!p.transcript().contains("New password: "), || {
        format!("no second change may be asked for: {}", p.transcript())
    });
    let mut p = login_on_pty(&name);
    converse("login, the used code", &mut p, &mut f, |p| {
        p.expect("Password: ", STEP)?;
        p.send_secret(&code)?;
        p.expect(LOGIN_INCORRECT, STEP)
    });
    drop(p);

    let callers = s.callers("login");
    eprintln!(
        "credd's audit rows for service login:\n{}",
        callers.join("\n")
    );
    // login runs as root, sets PAM_TTY to its terminal's path and no PAM_RHOST.
    let attempts: Vec<&String> = callers.iter().filter(|c| c.contains("\"login_")).collect();
    f.check(
        !attempts.is_empty()
            && attempts.iter().all(|c| {
                c.contains("actor_uid=0")
                    && c.contains("tty=\"/dev/pts/")
                    && c.contains("rhost=null")
            }),
        || format!("login's attempts must come from uid 0 with PAM_TTY=/dev/pts/N: {callers:?}"),
    );
    f.finish(&s.d, &name);
}

// ---------------------------------------------------------------------------------------------
// chsh and chfn

/// The credd block before `@include common-auth` (after chsh's pam_shells and both tools'
/// pam_rootok, which stay first: root changes anyone's entry without a password), and the
/// account block before `@include common-account`.
fn shadow_tool_stack(s: &Setup, service: &str) -> ReplacedPamFile {
    ReplacedPamFile::install_edited(service, |original| {
        let t = insert_before(original, "@include common-auth", &[s.line("auth", CREDD)]);
        insert_before(
            &t,
            "@include common-account",
            &[s.line("account", CREDD_ACCOUNT), ROOT_CHECK_ACCOUNT.into()],
        )
    })
}

/// `runuser -u USER -- TOOL ARGS…` on a terminal, answering "Password: " with `password`.
fn run_tool(user: &str, tool: &str, args: &[&str], password: &str) -> (Option<ExitStatus>, String) {
    let mut cmd = Command::new("runuser");
    cmd.args(["-u", user, "--", tool]).args(args);
    cmd.env("LC_ALL", "C");
    let mut p = PtySession::spawn(cmd).expect("start the tool on a pty");
    let result = (|| {
        p.expect("Password: ", STEP)?;
        p.send_secret(password)?;
        p.wait(STEP)
    })();
    let t = p.transcript();
    eprintln!("--- {tool} {args:?} as {user} ---\n{t}\n({result:?})");
    match result {
        Ok(status) => (Some(status), t),
        Err(e) => (None, format!("{e}\n{t}")),
    }
}

/// A setuid shadow tool that authenticates its non-root caller through PAM before it changes
/// field `field` of /etc/passwd to `want` (`args`): a wrong password fails and changes nothing;
/// a disabled account's right password shows the module's message, fails and changes nothing;
/// the right password exits 0 and the entry shows the change.
fn shadow_tool(tool: &str, args: &[&str], field: usize, want: &str) {
    let s = Setup::new(tool, &[tool]);
    let name = s.name().to_string();
    let pam = shadow_tool_stack(&s, tool);
    eprintln!(
        "/etc/pam.d/{tool} for the test:\n{}\n",
        stack_of(&pam.contents())
    );
    let before = passwd_field(&name, field);
    assert_ne!(
        before, want,
        "the test user must not start with the value under test"
    );
    let mut f = Findings::default();

    let (status, t) = run_tool(&name, tool, args, WRONG_PASSWORD);
    f.check(status.is_some_and(|s| !s.success()), || {
        format!("{tool} with a wrong password must fail: {status:?}\n{t}")
    });
    f.check(
        t.contains(&format!("{tool}: PAM: Authentication failure")),
        || format!("{tool} must report PAM_AUTH_ERR: {t}"),
    );
    f.check(passwd_field(&name, field) == before, || {
        format!(
            "a wrong password must change nothing: {}",
            passwd_field(&name, field)
        )
    });

    s.ctl_ok(&["user", "disable", &name]);
    let (status, t) = run_tool(&name, tool, args, PASSWORD);
    f.check(status.is_some_and(|s| !s.success()), || {
        format!("{tool} for a disabled account must fail: {status:?}\n{t}")
    });
    f.check(t.contains(DISABLED_MESSAGE), || {
        format!("{tool} passes no PAM_SILENT: the module's message must show: {t}")
    });
    f.check(passwd_field(&name, field) == before, || {
        format!(
            "a disabled account must change nothing: {}",
            passwd_field(&name, field)
        )
    });
    s.ctl_ok(&["user", "enable", &name]);

    let (status, t) = run_tool(&name, tool, args, PASSWORD);
    f.check(status.is_some_and(|s| s.success()), || {
        format!("{tool} with the right password must exit 0: {status:?}\n{t}")
    });
    let now = passwd_field(&name, field);
    f.check(now == want, || {
        format!("after {tool} {args:?} field {field} must be {want:?}: {now:?}")
    });
    let callers = s.callers(tool);
    eprintln!(
        "credd's audit rows for service {tool}:\n{}",
        callers.join("\n")
    );
    f.check(callers.iter().any(|c| c.contains("actor_uid=0")), || {
        format!("{tool} is setuid root: credd must see uid 0: {callers:?}")
    });
    f.finish(&s.d, &name);
}

/// `chsh -s /bin/bash` by the user (see [`shadow_tool`]): the login shell (field 6).
#[test]
fn chsh_authenticates_the_user() {
    if skip_unless_root("chsh_authenticates_the_user") {
        return;
    }
    shadow_tool("chsh", &["-s", "/bin/bash"], 6, "/bin/bash");
}

/// `chfn -r 42` by the user (see [`shadow_tool`]): the room number, the second part of the
/// GECOS field (field 4).
#[test]
fn chfn_authenticates_the_user() {
    if skip_unless_root("chfn_authenticates_the_user") {
        return;
    }
    shadow_tool("chfn", &["-r", "42"], 4, "credd e2e test user,42,,");
}

// ---------------------------------------------------------------------------------------------
// vlock

/// `/etc/pam.d/vlock` does not exist on Debian (libpam would use `other`): the test creates it as
/// `other` is plus the credd line before `@include common-auth`. If the file exists, the credd line
/// is put in front of it instead.
fn vlock_stack(s: &Setup) -> ReplacedPamFile {
    if Path::new("/etc/pam.d/vlock").exists() {
        return ReplacedPamFile::install("vlock", &[s.line("auth", CREDD)]);
    }
    ReplacedPamFile::create(
        "vlock",
        &[
            s.line("auth", CREDD),
            "@include common-auth".into(),
            "@include common-account".into(),
            "@include common-password".into(),
            "@include common-session".into(),
        ],
    )
}

/// `runuser -u USER -- vlock` on a terminal (locks only that terminal); with `unprivileged`, a
/// copy of vlock-main without its setuid bit run directly, with the message the vlock script
/// would pass.
fn vlock_on_pty(user: &str, unprivileged: Option<&Path>) -> PtySession {
    let mut cmd = Command::new("runuser");
    match unprivileged {
        None => cmd.args(["-u", user, "--", "vlock"]),
        Some(copy) => cmd.args(["-u", user, "--"]).arg(copy).env(
            "VLOCK_CURRENT_MESSAGE",
            format!("This TTY is now locked.\n\n{VLOCK_ENTER}"),
        ),
    };
    cmd.env("LC_ALL", "C");
    PtySession::spawn(cmd).expect("start vlock on a pty")
}

/// The pid of `vlock-main` in the session `p` leads.
fn vlock_main_pid(p: &PtySession) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp session …"
        let Some((head, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let session = rest.split_whitespace().nth(3);
        if head.ends_with("(vlock-main") && session == Some(&p.pid().to_string()) {
            return Some(pid);
        }
    }
    None
}

/// Waits (bounded) until vlock-main reads a password: its prompt routine switches the terminal
/// to canonical mode with TCSAFLUSH and flushes pending input *after* printing the prompt (and
/// echo is off the whole time vlock runs, so `send_secret`'s wait for echo-off proves nothing).
/// It is ready once the terminal is canonical and vlock-main is blocked in select: waiting for
/// Enter is non-canonical, and nothing between the flush and the select touches the terminal.
fn wait_until_vlock_reads(p: &PtySession) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(pid) = vlock_main_pid(p) {
            let syscall =
                std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
            // x86_64: select 23, pselect6 270.
            let in_select = matches!(syscall.split_whitespace().next(), Some("23" | "270"));
            let canonical = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOCTTY)
                .open(format!("/proc/{pid}/fd/0"))
                .ok()
                .is_some_and(|tty| {
                    // SAFETY: a zeroed termios is a valid out-parameter for tcgetattr.
                    let mut t: libc::termios = unsafe { std::mem::zeroed() };
                    let got = unsafe { libc::tcgetattr(tty.as_raw_fd(), &mut t) };
                    got == 0 && t.c_lflag & libc::ICANON != 0
                });
            if in_select && canonical {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "vlock-main did not start reading a password within 10 s; transcript:\n{}",
                p.transcript()
            ));
        }
        // Polling another process's state; nothing here waits for a fixed time.
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Locked → Enter → "USER's Password: " → `password`.
fn vlock_attempt(p: &mut PtySession, user: &str, password: &str) -> Result<(), String> {
    p.expect(VLOCK_ENTER, STEP)?;
    p.send_line("")?;
    p.expect(&format!("{user}'s Password: "), STEP)?;
    wait_until_vlock_reads(p)?;
    p.send_line(password)
}

/// A wrong password, then the right one, in one vlock: still locked after the wrong one (vlock
/// then offers root's password, answered wrongly too, and waits for Enter again), unlocked by
/// the right one (exit 0). Returns how many prompts the root round showed.
fn vlock_wrong_then_right(
    what: &str,
    name: &str,
    mut p: PtySession,
    f: &mut Findings,
) -> Option<usize> {
    let result = converse(what, &mut p, f, |p| {
        p.expect("This TTY is now locked.", STEP)?;
        vlock_attempt(p, name, WRONG_PASSWORD)?;
        p.expect("vlock: Authentication failure", STEP)?;
        // vlock then asks for root's password (unless built with NO_ROOT_PASS); a wrong answer
        // to whatever asks, until it waits for Enter again: still locked.
        let mut root_prompts = 0;
        loop {
            let (which, _) = p.expect_any(&["Password: ", VLOCK_ENTER], STEP)?;
            if which == 1 {
                break;
            }
            root_prompts += 1;
            if root_prompts > 3 {
                return Err("more than three prompts for root".into());
            }
            wait_until_vlock_reads(p)?;
            p.send_line(WRONG_PASSWORD)?;
        }
        // VLOCK_ENTER was matched above; the next attempt starts at Enter.
        p.send_line("")?;
        p.expect(&format!("{name}'s Password: "), STEP)?;
        wait_until_vlock_reads(p)?;
        p.send_line(PASSWORD)?;
        Ok((root_prompts, p.wait(STEP)?))
    })?;
    let (root_prompts, status) = result;
    eprintln!("{what}: vlock asked {root_prompts} time(s) for root's password");
    f.check(status.success(), || {
        format!("{what}: vlock must exit 0 after the right password: {status:?}")
    })
    .then_some(root_prompts)
}

/// `runs` right unlocks in a row, each a new vlock; returns how many exited 0.
fn vlock_unlocks(
    what: &str,
    name: &str,
    runs: usize,
    spawn: impl Fn() -> PtySession,
    f: &mut Findings,
) -> usize {
    let mut unlocked = 0;
    let started = Instant::now();
    for i in 1..=runs {
        let mut p = spawn();
        let result = vlock_attempt(&mut p, name, PASSWORD).and_then(|()| p.wait(STEP));
        match result {
            Ok(status) if status.success() => unlocked += 1,
            other => {
                f.check(false, || {
                    format!(
                        "{what}: unlock #{i} with the right password: {other:?}; transcript:\n{}",
                        p.transcript()
                    )
                });
            }
        }
    }
    eprintln!(
        "{what}: {unlocked}/{runs} right unlocks in a row succeeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    unlocked
}

/// vlock run by the user on a terminal, through /etc/pam.d/vlock with the credd line:
/// 1. Debian's vlock (the script, setuid-root vlock-main, which authenticates as root: credd sees
///    uid 0): it says the TTY is locked and asks for Enter, then "USER's Password: "; a wrong
///    password leaves it locked, the right one unlocks it; then ten right unlocks in a row;
/// 2. the same vlock-main without its setuid bit, as screen lockers that run as the user do:
///    credd sees the user's own uid (the account has the system user's uid, or credd would
///    answer "unknown user") and counts it against that uid's `local_uid` bucket (5 at once), so
///    ten right unlocks in a row show that right passwords do not use it up.
#[test]
fn vlock_locks_until_the_right_password() {
    if skip_unless_root("vlock_locks_until_the_right_password") {
        return;
    }
    let s = Setup::new("vlock", &["vlock", "/usr/sbin/vlock-main"]);
    let name = s.name().to_string();
    let pam = vlock_stack(&s);
    eprintln!(
        "/etc/pam.d/vlock for the test:\n{}\n",
        stack_of(&pam.contents())
    );
    let mut f = Findings::default();
    let runs = 10;

    // 1. As installed: setuid root.
    vlock_wrong_then_right("vlock", &name, vlock_on_pty(&name, None), &mut f);
    let unlocked = vlock_unlocks("vlock", &name, runs, || vlock_on_pty(&name, None), &mut f);
    f.check(unlocked == runs, || {
        format!("vlock: {unlocked}/{runs} unlocks")
    });
    let callers = s.callers("vlock");
    eprintln!(
        "credd's audit rows for service vlock (setuid):\n{}",
        callers.join("\n")
    );
    f.check(
        !callers.is_empty()
            && callers
                .iter()
                .all(|c| c.contains("actor_uid=0") && c.contains("tty=\"/dev/pts/")),
        || {
            format!(
                "Debian's vlock-main is setuid root and authenticates without dropping it, with \
                 PAM_TTY set to its terminal: {callers:?}"
            )
        },
    );

    // 2. Without the setuid bit: as the user.
    let copy = s.d.public_copy(Path::new("/usr/sbin/vlock-main"));
    let before = s.audit().len();
    vlock_wrong_then_right(
        "unprivileged vlock-main",
        &name,
        vlock_on_pty(&name, Some(&copy)),
        &mut f,
    );
    let unlocked = vlock_unlocks(
        "unprivileged vlock-main",
        &name,
        runs,
        || vlock_on_pty(&name, Some(&copy)),
        &mut f,
    );
    f.check(unlocked == runs, || {
        format!("unprivileged vlock-main: {unlocked}/{runs} unlocks")
    });
    let uid = s.user.uid;
    let rows = s.audit();
    let as_user: Vec<&Value> = rows[before..]
        .iter()
        .filter(|r| r["service"] == "vlock")
        .collect();
    f.check(
        as_user.len() == runs + 2 && as_user.iter().all(|r| r["actor_uid"] == s.user.uid),
        || {
            format!(
                "the unprivileged vlock-main must reach credd as uid {uid}, once per attempt \
                 ({} expected): {as_user:?}",
                runs + 2
            )
        },
    );
    f.finish(&s.d, &name);
}
