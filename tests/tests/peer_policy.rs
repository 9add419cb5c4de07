//! What an unprivileged local user can do over the sockets, decided by SO_PEERCRED (root only:
//! the client runs as `nobody` through runuser).

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_e2e::bins::{self, skip_unless_root};
use credd_e2e::system_pam::{SystemService, all_output, have};

fn nobody_uid() -> u32 {
    let out = Command::new("id").args(["-u", "nobody"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

#[test]
fn unprivileged_peer_verifies_only_its_own_account() {
    if skip_unless_root("unprivileged_peer_verifies_only_its_own_account") {
        return;
    }
    assert!(
        have("pamtester") && have("runuser"),
        "pamtester and runuser are needed"
    );
    let d = TestDaemon::start();
    // `nobody` is known to NSS, so credd stores its real uid; `victim` has another uid.
    d.add_user("nobody", "my own long passphrase", &[]);
    d.add_user("victim", "a guarded passphrase!", &["--uid", "5201"]);
    let module = d.public_copy(&bins::pam_module());
    let svc = SystemService::install(&[d.module_line_for(&module, "auth", "required", "")]);

    let own = svc.pamtester(
        Some("nobody"),
        "nobody",
        &["authenticate"],
        "my own long passphrase\n",
    );
    assert!(own.status.success(), "{}", all_output(&own));

    // The right password for someone else's account is useless: the daemon answers as if the
    // account did not exist, so the peer learns neither the password nor that the account exists.
    let other = svc.pamtester(
        Some("nobody"),
        "victim",
        &["authenticate"],
        "a guarded passphrase!\n",
    );
    let text = all_output(&other);
    assert!(!other.status.success(), "{text}");
    assert!(text.contains("User not known"), "{text}");
    let ghost = svc.pamtester(Some("nobody"), "no-such-account", &["authenticate"], "x\n");
    let ghost_text = all_output(&ghost);
    assert!(ghost_text.contains("User not known"), "{ghost_text}");

    // Root may verify anyone.
    let root = svc.pamtester(None, "victim", &["authenticate"], "a guarded passphrase!\n");
    assert!(root.status.success(), "{}", all_output(&root));
    let log = d.log().join("\n");
    assert!(log.contains(&format!("peer_uid={}", nobody_uid())), "{log}");
}

#[test]
fn unprivileged_peer_cannot_use_the_admin_socket() {
    if skip_unless_root("unprivileged_peer_cannot_use_the_admin_socket") {
        return;
    }
    let d = TestDaemon::start();
    let credctl = d.public_copy(&bins::credctl());
    let run_as_nobody = || {
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(&credctl)
            .arg("--socket")
            .arg(d.admin_socket())
            .args(["user", "list"])
            .output()
            .unwrap()
    };
    // First fence: the socket mode.
    let out = run_as_nobody();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Permission denied"), "{err}");

    // Second fence: even with the mode opened up, the daemon checks the peer's uid.
    std::fs::set_permissions(d.admin_socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = run_as_nobody();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("root only"), "{err}");
    // credd's stderr is read by another thread: wait for the line rather than race it.
    assert!(
        d.wait_for_log("refused admin connection", Duration::from_secs(10)),
        "{:?}",
        d.log()
    );
}

#[test]
fn a_local_user_cannot_rate_limit_or_lock_someone_elses_account() {
    if skip_unless_root("a_local_user_cannot_rate_limit_or_lock_someone_elses_account") {
        return;
    }
    let d = TestDaemon::start_with(&format!(
        "{}[lockout]\ndeny = 2\n[rate]\naccount = {{ burst = 2, per_minute = 1 }}\n\
         local_uid = {{ burst = 100, per_minute = 100 }}\n",
        credd_e2e::daemon::TEST_CONFIG
    ));
    d.add_user("victim", "a guarded passphrase!", &["--uid", "5201"]);
    let module = d.public_copy(&bins::pam_module());
    let svc = SystemService::install(&[d.module_line_for(&module, "auth", "required", "")]);
    for _ in 0..5 {
        let out = svc.pamtester(Some("nobody"), "victim", &["authenticate"], "guess\n");
        assert!(!out.status.success());
    }
    // sshd (root) logs the victim in: neither the account bucket nor the lock was touched.
    let root = svc.pamtester(None, "victim", &["authenticate"], "a guarded passphrase!\n");
    assert!(root.status.success(), "{}", all_output(&root));
}

/// A group for one test, removed when dropped; `members` are existing system accounts.
struct TempGroup(String);

impl TempGroup {
    fn create(name: &str, members: &[&str]) -> TempGroup {
        let _ = Command::new("groupdel").arg(name).output();
        let out = Command::new("groupadd").arg(name).output().unwrap();
        assert!(out.status.success(), "groupadd: {}", all_output(&out));
        let group = TempGroup(name.to_string());
        for member in members {
            let out = Command::new("gpasswd")
                .args(["-a", member, name])
                .output()
                .unwrap();
            assert!(out.status.success(), "gpasswd: {}", all_output(&out));
        }
        group
    }
}

impl Drop for TempGroup {
    fn drop(&mut self) {
        let _ = Command::new("groupdel").arg(&self.0).output();
    }
}

#[test]
fn admin_group_members_administer_but_not_root_or_each_other() {
    if skip_unless_root("admin_group_members_administer_but_not_root_or_each_other") {
        return;
    }
    assert!(have("groupadd") && have("gpasswd") && have("runuser"));
    // `daemon` (uid 1 on Debian) stands for a second administrator: NSS puts it in the group.
    let group = TempGroup::create("credd-e2e-admins", &["daemon"]);
    let d = TestDaemon::start_with(&format!("[admin]\ngroup = \"{}\"\n", group.0));
    d.add_user("root", "the superuser passphrase", &[]);
    d.add_user("daemon", "a second admin passphrase", &[]);
    d.add_user("victim", "a guarded passphrase!", &["--uid", "5202"]);
    let credctl = d.public_copy(&bins::credctl());
    let as_nobody = |supplementary: Option<&str>, args: &[&str]| {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "nobody"]);
        if let Some(g) = supplementary {
            cmd.args(["-G", g]);
        }
        cmd.arg("--")
            .arg(&credctl)
            .arg("--socket")
            .arg(d.admin_socket())
            .args(args)
            .output()
            .unwrap()
    };

    // Without the group, nobody cannot even connect: the socket is root:group 0660.
    let out = as_nobody(None, &["user", "list"]);
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("Permission denied"),
        "{}",
        all_output(&out)
    );

    // With the group as a supplementary group, the kernel's record of it (SO_PEERGROUPS) is what
    // admits the caller; NSS does not list nobody as a member.
    let out = as_nobody(Some(&group.0), &["user", "list"]);
    assert!(out.status.success(), "{}", all_output(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("victim"));
    let out = as_nobody(Some(&group.0), &["lock", "victim"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = as_nobody(Some(&group.0), &["reset", "victim"]);
    assert!(out.status.success(), "{}", all_output(&out));

    // Root's account and another member's are out of reach, by name and by uid, for every write.
    for args in [
        &["reset", "root"][..],
        &["lock", "root"],
        &["unlock", "--uid", "0"],
        &["user", "disable", "daemon"],
        &["user", "remove", "daemon"],
        &["reset", "daemon"],
        &["user", "add", "daemon2", "--uid", "0"],
    ] {
        let out = as_nobody(Some(&group.0), args);
        let text = all_output(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {text}");
        assert!(text.contains("only root can"), "{args:?}: {text}");
    }
    // The same for a new password (read from standard input) and for import rows.
    let with_stdin = |args: &[&str], input: &str| {
        let mut child = Command::new("runuser")
            .args(["-u", "nobody", "-G", &group.0, "--"])
            .arg(&credctl)
            .arg("--socket")
            .arg(d.admin_socket())
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = with_stdin(
        &["passwd", "root", "--password-stdin"],
        "a takeover passphrase\n",
    );
    assert!(
        all_output(&out).contains("only root can"),
        "{}",
        all_output(&out)
    );
    let out = with_stdin(
        &["import", "-"],
        "user,action\nvictim,unlock\ndaemon,unlock\n",
    );
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("only root can"),
        "{}",
        all_output(&out)
    );

    // R10: a name the system does not know yet, with a password the member chose, would be
    // inherited by whoever gets that name later. Refused with a password (also in an import);
    // without one it is added. A name NSS knows (nobody) may get a password.
    let out = with_stdin(
        &["user", "add", "r10-future-user", "--password-stdin"],
        "a member's chosen passphrase\n",
    );
    let text = all_output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("does not know only without"), "{text}");
    let hash = credd_e2e::fixtures::phc_hash("a member's chosen passphrase", 1000);
    let out = with_stdin(
        &["import", "-"],
        &format!("user,action,password_hash\nr10-later,add,\"{hash}\"\n"),
    );
    assert!(!out.status.success(), "{}", all_output(&out));
    assert!(
        all_output(&out).contains("does not know only without"),
        "{}",
        all_output(&out)
    );
    let out = as_nobody(Some(&group.0), &["user", "add", "r10-future-user"]);
    assert!(out.status.success(), "{}", all_output(&out));
    let out = with_stdin(
        &["user", "add", "nobody", "--password-stdin"],
        "a member-set passphrase 11\n",
    );
    assert!(out.status.success(), "{}", all_output(&out));

    // Root still can.
    let out = d.ctl(&["lock", "daemon"]);
    assert!(out.status.success(), "{}", all_output(&out));

    // The member's actions are audited under its own uid.
    let audit = d.ctl(&["audit", "--json"]);
    let audit = String::from_utf8_lossy(&audit.stdout);
    let nobody = nobody_uid();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"reset_issued\"")
                && l.contains(&format!("\"actor_uid\":{nobody}"))),
        "{audit}"
    );
    assert!(
        audit.lines().any(|l| l.contains("protected_account")),
        "{audit}"
    );
    assert!(
        audit
            .lines()
            .filter(|l| l.contains("unknown_name_with_password"))
            .count()
            == 2,
        "{audit}"
    );
}
