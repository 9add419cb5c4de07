//! Who is on the other end of a socket, as the kernel says (SO_PEERCRED), never as the peer claims.

use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

pub use crate::policy::source::Source;
use crate::system::groups::AdminGroup;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    /// Effective uid at connect time. setuid-root programs (`su`, `passwd`) appear as 0.
    pub uid: u32,
    pub gid: u32,
    /// Real uid of a peer whose effective uid is 0, read from `/proc/<pid>/status` right after
    /// accept; `None` when it could not be read (the process is gone, or another pid namespace).
    /// For any other peer, its effective uid: only root's real uid changes a decision, and a
    /// process that dropped only its effective uid is treated as the user it acts as.
    pub real_uid: Option<u32>,
    /// Held `[admin] group` at connect time (SO_PEERCRED gid or SO_PEERGROUPS); never set for
    /// root, whose authority needs no group.
    pub admin_member: bool,
}

impl Peer {
    pub fn of(stream: &UnixStream, admin_group: Option<&AdminGroup>) -> std::io::Result<Peer> {
        let cred = getsockopt(stream, PeerCredentials).map_err(std::io::Error::from)?;
        Ok(Peer {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
            // Only an effective root needs telling apart from a setuid program run by a user;
            // reading /proc costs the kernel a formatted page per connection.
            real_uid: if cred.uid() == 0 {
                real_uid_of(cred.pid())
            } else {
                Some(cred.uid())
            },
            admin_member: cred.uid() != 0
                && admin_group.is_some_and(|g| g.holds(stream, cred.gid())),
        })
    }

    /// May use admin.sock at all: root, or a member of `[admin] group`.
    pub fn may_administer(&self) -> bool {
        self.is_root() || self.admin_member
    }

    /// Authority over accounts (docs/architecture.md#callers): the effective uid, so that `su` run
    /// by a user may authenticate its target.
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    /// Root's reserved connection slots and hashing capacity go only to processes that are root
    /// through and through (sshd, login). A setuid-root program started by a user is that user's
    /// load: otherwise a user could run many `su` processes to take root's reserve.
    pub fn has_root_budget(&self) -> bool {
        self.uid == 0 && self.real_uid == Some(0)
    }

    /// This peer's [`Source`]: `rhost` is a claim, believed only from a caller that is root
    /// through and through; any other caller is its own (real) uid.
    pub fn source(&self, rhost: Option<&str>) -> Source {
        if !self.has_root_budget() {
            return Source::Local(self.budget_uid());
        }
        match rhost.filter(|h| !h.is_empty()) {
            Some(h) => Source::Remote(h.to_owned()),
            None => Source::Service,
        }
    }

    /// The uid a connection is counted against.
    pub fn budget_uid(&self) -> u32 {
        match self.real_uid {
            Some(real) if self.uid == 0 => real,
            _ => self.uid,
        }
    }
}

fn real_uid_of(pid: i32) -> Option<u32> {
    use std::io::Read;
    // Room for the whole file (about 1.5 KiB) up front: from an empty buffer the read would grow
    // from 32 bytes, a system call per doubling, on every connection of an effective root.
    let mut status = String::with_capacity(8192);
    std::fs::File::open(format!("/proc/{pid}/status"))
        .and_then(|mut file| file.read_to_string(&mut status))
        .ok()?;
    parse_real_uid(&status)
}

/// `Uid:\treal\teffective\tsaved\tfs` in proc(5)'s status file.
fn parse_real_uid(status: &str) -> Option<u32> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|real| real.parse().ok())
}

/// Which socket a request came in on; it decides which requests are served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Pam,
    Admin,
}

impl SocketKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SocketKind::Pam => "pam.sock",
            SocketKind::Admin => "admin.sock",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_uid_is_the_first_uid_field() {
        let status = "Name:\tsu\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n";
        assert_eq!(parse_real_uid(status), Some(1000));
        assert_eq!(parse_real_uid("Name:\tx\n"), None);
    }

    #[test]
    fn setuid_root_peers_count_as_their_user() {
        let su = Peer {
            pid: 1,
            uid: 0,
            gid: 0,
            real_uid: Some(1000),
            admin_member: false,
        };
        assert!(su.is_root());
        assert!(!su.has_root_budget());
        assert_eq!(su.budget_uid(), 1000);
        let sshd = Peer {
            real_uid: Some(0),
            ..su
        };
        assert!(sshd.has_root_budget());
        let unknown = Peer {
            real_uid: None,
            ..su
        };
        assert!(!unknown.has_root_budget());
    }

    #[test]
    fn our_own_real_uid_is_read_from_proc() {
        let me = std::process::id() as i32;
        assert_eq!(real_uid_of(me), Some(nix::unistd::getuid().as_raw()));
    }
}
