//! What the kernel says about a peer process (/proc), and ending the processes of a revoked login
//! session.
//!
//! A login session is identified by the kernel audit session id and loginuid that pam_loginuid
//! gives the session's first process and that every descendant inherits. Ending a session means
//! signalling exactly the processes carrying both values. A session opened by a process without an
//! audit session of its own (a display manager or any daemon calling PAM for many users) is never
//! acted on: its id would match the daemon, not the login.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use crate::store::{OpenedBy, RevokedSession};

/// The kernel's "not set" for sessionid and loginuid.
const UNSET: u32 = u32::MAX;

pub fn opened_by(pid: i32) -> OpenedBy {
    OpenedBy {
        pid,
        pid_start: start_time(pid),
        audit_session: read_id(pid, "sessionid"),
        loginuid: read_id(pid, "loginuid"),
    }
}

fn read_id(pid: i32, what: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{what}")).ok()?;
    text.trim().parse().ok().filter(|v| *v != UNSET)
}

/// Start time in clock ticks since boot: field 22 of /proc/PID/stat, counted after the command
/// name, which may itself contain spaces and parentheses.
fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start with field 3 (state); starttime is field 22.
    after_comm.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// Whether `pid` is still the process that was recorded (same start time).
pub fn alive(pid: i32, start: Option<u64>) -> bool {
    match (start_time(pid), start) {
        (Some(now), Some(then)) => now == then,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

/// The pids of every process in audit session `session` with loginuid `loginuid`.
fn session_members(session: u32, loginuid: u32) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me && *pid > 1)
        .filter(|pid| {
            read_id(*pid, "sessionid") == Some(session)
                && read_id(*pid, "loginuid") == Some(loginuid)
        })
        .collect()
}

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this fd to us alone.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_signal(fd: &OwnedFd, signal: i32) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid pidfd, a signal number, no siginfo, no flags.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0
}

/// Ends the processes of `sessions` in the background: SIGHUP (a shell's "terminal gone"), then
/// SIGKILL after `grace` for whatever is left. Each process is held by a pidfd taken before its
/// session membership is checked again, so a pid reused meanwhile is never signalled.
pub fn terminate(sessions: Vec<RevokedSession>, grace: Duration) {
    let targets: Vec<(i64, u32, u32)> = sessions
        .iter()
        // Only the account's own login: loginuid is the uid that logged in, and a session that
        // `su` registered for this account carries the audit session of someone else's login.
        .filter(|s| s.by.loginuid.is_some() && s.by.loginuid == s.account_uid)
        .filter_map(|s| Some((s.id, s.by.audit_session?, s.by.loginuid?)))
        .collect();
    if targets.is_empty() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("terminate".into())
        .spawn(move || {
            let mut held = Vec::new();
            for (id, session, loginuid) in targets {
                for pid in session_members(session, loginuid) {
                    let Some(fd) = pidfd_open(pid) else { continue };
                    if read_id(pid, "sessionid") != Some(session) {
                        continue;
                    }
                    if pidfd_signal(&fd, libc::SIGHUP) {
                        eprintln!(
                            "credd: session {id}: SIGHUP to pid {pid} (audit session {session})"
                        );
                        held.push((id, pid, fd));
                    }
                }
            }
            std::thread::sleep(grace);
            for (id, pid, fd) in held {
                if pidfd_signal(&fd, libc::SIGKILL) {
                    eprintln!("credd: session {id}: SIGKILL to pid {pid} after the grace period");
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("credd: cannot start session termination: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat =
            "1234 (a b) c) S 1 1234 1234 0 -1 4194304 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50";
        assert_eq!(parse_start_time(stat), Some(98765));
        assert_eq!(parse_start_time("garbage"), None);
    }

    #[test]
    fn our_own_process_has_a_start_time() {
        let me = opened_by(std::process::id() as i32);
        assert!(me.pid_start.is_some());
    }
}
