//! Who is on the other end of a socket, as the kernel says (SO_PEERCRED), never as the peer claims.

use std::os::unix::net::UnixStream;

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    /// Effective uid at connect time. setuid-root programs (`su`, `passwd`) appear as 0.
    pub uid: u32,
    pub gid: u32,
}

impl Peer {
    pub fn of(stream: &UnixStream) -> std::io::Result<Peer> {
        let cred = getsockopt(stream, PeerCredentials).map_err(std::io::Error::from)?;
        Ok(Peer {
            pid: cred.pid(),
            uid: cred.uid(),
            gid: cred.gid(),
        })
    }

    pub fn is_root(&self) -> bool {
        self.uid == 0
    }
}

/// Which socket a request came in on; it decides which requests are served at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketKind {
    Pam,
    Admin,
}
