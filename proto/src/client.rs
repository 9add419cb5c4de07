//! A small blocking client. One connection per PAM hook call: it is never kept across a `fork`, and
//! the socket is close-on-exec so a child running as someone else cannot inherit it.

use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::{
    AccountStatus, AuditEntry, ProtoError, Reply, Request, SessionInfo, UserInfo, decode_reply,
    encode_request_with_id, read_frame, write_frame,
};

/// Connect, read and write timeout unless the caller says otherwise (module argument `timeout=`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Client {
    stream: UnixStream,
}

impl Client {
    /// Connects with a bounded wait. `UnixStream::connect` can block indefinitely when the
    /// daemon's accept backlog is full; on Linux a blocking AF_UNIX connect honours `SO_SNDTIMEO`,
    /// so the socket is created by hand and the timeout set before connecting.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ProtoError> {
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(ProtoError::Io(std::io::Error::last_os_error()));
        }
        // SAFETY: fd was just returned by socket() and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let stream = UnixStream::from(owned);
        stream.set_write_timeout(Some(timeout))?;
        stream.set_read_timeout(Some(timeout))?;

        let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = path.as_os_str().as_bytes();
        if bytes.len() >= addr.sun_path.len() {
            return Err(ProtoError::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("socket path {} is too long", path.display()),
            )));
        }
        for (dst, src) in addr.sun_path.iter_mut().zip(bytes) {
            *dst = *src as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
        use std::os::fd::AsRawFd;
        let rc = unsafe {
            libc::connect(
                stream.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len as libc::socklen_t,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINPROGRESS) => ProtoError::Timeout,
                _ => ProtoError::Io(err),
            });
        }
        Ok(Client { stream })
    }

    /// Changes the read and write timeout, e.g. for a long import commit.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<(), ProtoError> {
        self.stream.set_read_timeout(Some(timeout))?;
        self.stream.set_write_timeout(Some(timeout))?;
        Ok(())
    }

    /// Sends one request and reads its single reply.
    pub fn call(&mut self, req: &Request) -> Result<Reply, ProtoError> {
        self.send(req, None)?;
        self.recv()
    }

    /// As [`Client::call`], with a request id that credd uses as the audit event id.
    pub fn call_with_id(&mut self, req: &Request, id: &str) -> Result<Reply, ProtoError> {
        self.send(req, Some(id))?;
        self.recv()
    }

    /// Sends a request without waiting for its reply (import rows are answered one by one with
    /// `Ok`, read later with [`Client::receive`], so that frames can be pipelined).
    pub fn send_request(&mut self, req: &Request) -> Result<(), ProtoError> {
        self.send(req, None)
    }

    /// Reads one reply.
    pub fn receive(&mut self) -> Result<Reply, ProtoError> {
        self.recv()
    }

    /// Streams an audit listing (`Request::Audit`).
    pub fn call_stream_audit(
        &mut self,
        req: &Request,
        mut on_row: impl FnMut(AuditEntry),
    ) -> Result<u64, ProtoError> {
        self.call_stream_replies(req, |reply| match reply {
            Reply::AuditItem(row) => {
                on_row(*row);
                true
            }
            _ => false,
        })
    }

    /// Sends a listing request and hands each row to `on_row`; returns the count the server
    /// reports, checked against the rows actually received.
    pub fn call_stream(
        &mut self,
        req: &Request,
        mut on_row: impl FnMut(UserInfo),
    ) -> Result<u64, ProtoError> {
        self.call_stream_replies(req, |reply| match reply {
            Reply::Item(row) => {
                on_row(*row);
                true
            }
            _ => false,
        })
    }

    /// Streams a status listing (`Request::Status` without a target).
    pub fn call_stream_status(
        &mut self,
        req: &Request,
        mut on_row: impl FnMut(AccountStatus),
    ) -> Result<u64, ProtoError> {
        self.call_stream_replies(req, |reply| match reply {
            Reply::StatusItem(row) => {
                on_row(*row);
                true
            }
            _ => false,
        })
    }

    /// Streams a session listing (`Request::Sessions`).
    pub fn call_stream_sessions(
        &mut self,
        req: &Request,
        mut on_row: impl FnMut(SessionInfo),
    ) -> Result<u64, ProtoError> {
        self.call_stream_replies(req, |reply| match reply {
            Reply::SessionItem(row) => {
                on_row(*row);
                true
            }
            _ => false,
        })
    }

    /// The listing loop: `on_row` takes a row reply and returns false for anything that is not
    /// a row of this listing.
    fn call_stream_replies(
        &mut self,
        req: &Request,
        mut on_row: impl FnMut(Reply) -> bool,
    ) -> Result<u64, ProtoError> {
        self.send(req, None)?;
        let mut seen = 0u64;
        loop {
            match self.recv()? {
                row @ (Reply::Item(_)
                | Reply::StatusItem(_)
                | Reply::SessionItem(_)
                | Reply::AuditItem(_)) => {
                    let name = row.name();
                    if !on_row(row) {
                        return Err(ProtoError::Unexpected(format!(
                            "a {name} row in this listing"
                        )));
                    }
                    seen += 1;
                }
                Reply::End { count } if count == seen => return Ok(count),
                Reply::End { count } => {
                    return Err(ProtoError::Unexpected(format!(
                        "listing announced {count} rows but carried {seen}"
                    )));
                }
                // An error before the first row (e.g. not permitted) is a reply, not a failure.
                other if seen == 0 => {
                    return Err(ProtoError::Unexpected(describe(&other)));
                }
                other => {
                    return Err(ProtoError::Unexpected(format!(
                        "listing interrupted after {seen} rows: {}",
                        describe(&other)
                    )));
                }
            }
        }
    }

    /// Sends one request. When the daemon refused the connection outright (an admin socket peer
    /// that is not root, a connection limit), it answered and closed before reading, so the write
    /// fails with EPIPE while the answer waits in our receive buffer: surface that answer instead.
    fn send(&mut self, req: &Request, id: Option<&str>) -> Result<(), ProtoError> {
        let body = encode_request_with_id(req, id)?;
        match write_frame(&mut self.stream, &body) {
            Err(ProtoError::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                match self.recv() {
                    Ok(reply) => Err(ProtoError::Refused(reply)),
                    Err(_) => Err(ProtoError::Io(e)),
                }
            }
            other => other,
        }
    }

    fn recv(&mut self) -> Result<Reply, ProtoError> {
        match read_frame(&mut self.stream)? {
            Some(body) => decode_reply(&body),
            None => Err(ProtoError::Closed),
        }
    }
}

fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Error { kind, message } => format!("{}: {message}", kind.as_str()),
        other => format!("{other:?}"),
    }
}
