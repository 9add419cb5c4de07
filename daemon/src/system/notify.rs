//! How credd tells its service manager where it stands: systemd's readiness protocol
//! (sd_notify(3)) and the reload acknowledgement that the unit's `ExecReload=` waits for.
//!
//! sd_notify is one datagram per message to the unix socket named by `$NOTIFY_SOCKET` (a path, or
//! an abstract name when it starts with `@`), newline-separated `KEY=VALUE` lines. credd sends
//! `READY=1` once both sockets exist with their final modes, `RELOADING=1` with `MONOTONIC_USEC=`
//! when a SIGHUP arrives and `READY=1` again once the file is applied or refused, and `STOPPING=1`
//! at SIGTERM. Without `$NOTIFY_SOCKET` (started by hand, by another supervisor) nothing is sent.
//! A send that fails is said on stderr once and never stops the daemon.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

/// The file in the runtime directory that records the outcome of the latest SIGHUP: one line,
/// `GENERATION ok` or `GENERATION refused REASON`. The unit's `ExecReload=` sends SIGHUP and
/// waits for the generation to change, so that `systemctl reload` returns once the file is
/// applied, and fails, with the reason, when it was refused.
pub const RELOAD_STATUS_NAME: &str = "reload-status";

/// A connection-less socket and the service manager's address.
pub struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
}

impl Notifier {
    /// The notifier for a `$NOTIFY_SOCKET` value: an absolute path, or `@name` for an abstract
    /// socket.
    pub fn new(target: &OsStr) -> io::Result<Notifier> {
        let bytes = target.as_bytes();
        let addr = match bytes.first() {
            Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..])?,
            Some(b'/') => SocketAddr::from_pathname(Path::new(target))?,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "neither an absolute path nor an abstract name (@…)",
                ));
            }
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
        })
    }

    /// Sends one message (newline-separated assignments) as one datagram.
    pub fn send(&self, message: &str) -> io::Result<()> {
        let sent = self.socket.send_to_addr(message.as_bytes(), &self.addr)?;
        if sent != message.len() {
            return Err(io::Error::other("short datagram"));
        }
        Ok(())
    }
}

/// The process's notifier, from `$NOTIFY_SOCKET` at first use; `None` without one.
fn notifier() -> Option<&'static Notifier> {
    static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();
    NOTIFIER
        .get_or_init(|| {
            let target = std::env::var_os("NOTIFY_SOCKET").filter(|t| !t.is_empty())?;
            match Notifier::new(&target) {
                Ok(notifier) => Some(notifier),
                Err(e) => {
                    eprintln!(
                        "credd: NOTIFY_SOCKET={}: {e}; the service manager is not told of readiness",
                        target.to_string_lossy()
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// Sends `message` to the service manager, if there is one.
pub fn notify(message: &str) {
    static FAILED: AtomicBool = AtomicBool::new(false);
    let Some(notifier) = notifier() else { return };
    if let Err(e) = notifier.send(message)
        && !FAILED.swap(true, Ordering::Relaxed)
    {
        eprintln!("credd: cannot notify the service manager: {e}");
    }
}

/// Set once `ready` was sent: a SIGHUP during start must not announce readiness early.
static SERVING: AtomicBool = AtomicBool::new(false);

/// Both sockets serve: `systemctl start` returns now.
pub fn ready(status: &str) {
    SERVING.store(true, Ordering::SeqCst);
    notify(&format!("READY=1\nSTATUS={status}"));
}

/// A SIGHUP arrived; `reloaded` follows once the file is applied or refused.
pub fn reloading() {
    if SERVING.load(Ordering::SeqCst) {
        notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the configuration",
            monotonic_usec()
        ));
    }
}

/// The reload that `reloading` announced is over (applied or refused): serving again.
pub fn reloaded(status: &str) {
    if SERVING.load(Ordering::SeqCst) {
        notify(&format!("READY=1\nSTATUS={status}"));
    }
}

/// SIGTERM or SIGINT: credd is shutting down.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=shutting down");
}

/// CLOCK_MONOTONIC in microseconds, as `MONOTONIC_USEC=` wants it.
pub fn monotonic_usec() -> u64 {
    // CLOCK_MONOTONIC always exists on Linux; 0 would only make systemd ignore the stamp.
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map(|ts| (ts.tv_sec() as u64) * 1_000_000 + (ts.tv_nsec() as u64) / 1_000)
        .unwrap_or(0)
}

/// Records the outcome of reload number `generation` in `RUNTIME_DIR/reload-status` (written
/// under a temporary name, then renamed: a reader never sees half a line). `refused`: the reason.
pub fn write_reload_status(runtime_dir: &Path, generation: u64, refused: Option<&str>) {
    let line = match refused {
        None => format!("{generation} ok\n"),
        // One line, whatever the error says.
        Some(reason) => format!("{generation} refused {}\n", reason.replace('\n', " ")),
    };
    let path = runtime_dir.join(RELOAD_STATUS_NAME);
    let tmp = runtime_dir.join(format!(".{RELOAD_STATUS_NAME}.tmp"));
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)
        .and_then(|mut f| io::Write::write_all(&mut f, line.as_bytes()))
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        eprintln!("credd: cannot write {}: {e}", path.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_socket_receives_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let receiver = UnixDatagram::bind(&path).unwrap();
        Notifier::new(path.as_os_str())
            .unwrap()
            .send("READY=1\nSTATUS=x")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=x");
    }

    #[test]
    fn an_abstract_socket_receives_the_message() {
        let name = format!("credd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        Notifier::new(OsStr::new(&format!("@{name}")))
            .unwrap()
            .send("STOPPING=1")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn a_relative_target_is_refused() {
        assert!(Notifier::new(OsStr::new("run/notify")).is_err());
        assert!(Notifier::new(OsStr::new("")).is_err());
    }

    #[test]
    fn the_reload_status_is_one_line_per_generation() {
        let dir = tempfile::tempdir().unwrap();
        write_reload_status(dir.path(), 1, None);
        let path = dir.path().join(RELOAD_STATUS_NAME);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "1 ok\n");
        write_reload_status(dir.path(), 2, Some("bad\nvalue"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "2 refused bad value\n"
        );
    }

    #[test]
    fn monotonic_time_advances() {
        let a = monotonic_usec();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(monotonic_usec() > a);
    }
}
