//! The administrators' group (`[admin] group`, docs/architecture.md#callers): who besides root may
//! use admin.sock, and which accounts such a member may not touch.
//!
//! Membership of a caller comes from the kernel: the gid and supplementary groups the connecting
//! process held at connect time (SO_PEERCRED and SO_PEERGROUPS), never from what it claims nor
//! from the group database, which the caller might have left since. Membership of a *target*
//! account comes from NSS (its primary group and getgrouplist), because the target is not
//! connected.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use nix::unistd::{Gid, Group, User};

use crate::error::{DaemonError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminGroup {
    pub name: String,
    pub gid: u32,
}

impl AdminGroup {
    /// Resolves the configured name. An unknown group is an error rather than "no
    /// administrators": a typo must not start a daemon whose operators find out at 3 a.m.
    pub fn resolve(name: &str) -> Result<AdminGroup> {
        let group = Group::from_name(name)
            .map_err(|e| DaemonError::Startup(format!("admin.group {name}: lookup failed: {e}")))?
            .ok_or_else(|| {
                DaemonError::Startup(format!(
                    "admin.group {name}: no such group in the system's group database"
                ))
            })?;
        if group.gid.as_raw() == 0 {
            return Err(DaemonError::Startup(format!(
                "admin.group {name}: gid 0 is root's group; name a dedicated group"
            )));
        }
        Ok(AdminGroup {
            name: name.to_string(),
            gid: group.gid.as_raw(),
        })
    }

    /// Whether the process behind `stream` held the group when it connected.
    pub fn holds(&self, stream: &UnixStream, primary_gid: u32) -> bool {
        primary_gid == self.gid || peer_groups(stream).is_some_and(|g| g.contains(&self.gid))
    }

    /// Whether the system account `name` belongs to the group (primary or supplementary).
    /// A name NSS does not know is not a member.
    pub fn has_member(&self, name: &str) -> bool {
        let Ok(Some(user)) = User::from_name(name) else {
            return false;
        };
        if user.gid.as_raw() == self.gid {
            return true;
        }
        let Ok(cname) = CString::new(name) else {
            return false;
        };
        nix::unistd::getgrouplist(&cname, user.gid)
            .map(|groups| groups.contains(&Gid::from_raw(self.gid)))
            // If the groups cannot be listed, treat the account as protected: refusing a
            // member's request is recoverable, letting one administrator reset another is not.
            .unwrap_or(true)
    }
}

/// The supplementary groups of a Unix-socket peer, as the kernel recorded them at connect.
fn peer_groups(stream: &UnixStream) -> Option<Vec<u32>> {
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is `len` bytes of gid_t, and the kernel writes at most `len`.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let count = len as usize / std::mem::size_of::<libc::gid_t>();
        if rc == 0 {
            groups.truncate(count);
            return Some(groups);
        }
        // ERANGE: the buffer was too small and `len` now holds the size needed.
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ERANGE)
            && count > groups.len()
            && count <= 65_536
        {
            groups.resize(count, 0);
            continue;
        }
        return None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_groups_and_root_group_are_refused() {
        let e = AdminGroup::resolve("no-such-group-credd-test").unwrap_err();
        assert!(e.to_string().contains("no such group"), "{e}");
        let e = AdminGroup::resolve("root").unwrap_err();
        assert!(e.to_string().contains("gid 0"), "{e}");
    }

    #[test]
    fn a_socket_peer_reports_our_own_groups() {
        let (a, _b) = UnixStream::pair().unwrap();
        let ours: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        let mut reported = peer_groups(&a).expect("SO_PEERGROUPS");
        reported.sort_unstable();
        let mut expected = ours;
        expected.sort_unstable();
        expected.dedup();
        reported.dedup();
        assert_eq!(reported, expected);
    }

    #[test]
    fn root_is_not_a_member_of_a_group_it_is_not_in() {
        // nogroup exists on every Debian system and root is not in it.
        let g = AdminGroup::resolve("nogroup").unwrap();
        assert!(!g.has_member("root"));
        assert!(!g.has_member("no-such-user-credd-test"));
    }
}
