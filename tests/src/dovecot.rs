//! A real, private Dovecot IMAP server per test, authenticating through PAM: what credd looks like
//! to a mail client.
//!
//! Each [`Dovecot`] owns a temporary directory (mode 0755) and one `dovecot -c DIR/dovecot.conf -F`
//! in the foreground, started by the test (as root: Dovecot's master must start as root to drop to
//! its `dovecot`/`dovenull` users). Everything it creates is in that directory:
//!
//! | path            | what                                                                   |
//! |-----------------|------------------------------------------------------------------------|
//! | `dovecot.conf`  | the whole configuration (no `/etc/dovecot` include)                    |
//! | `base/`         | `base_dir`: the master's sockets, pid file and process titles          |
//! | `state/`        | `state_dir` (the `instances` list, not `/var/lib/dovecot`)             |
//! | `home/USER/`    | each user's home, with `Maildir/` (owned by `nobody`)                  |
//! | `dovecot.log`   | every process's log (`log_path`), with `auth_verbose` and `auth_debug` |
//! | `dovecot.stderr`| the master's stdout and stderr                                         |
//!
//! # The configuration, and why
//!
//! ```text
//! protocols = imap
//! listen = 127.0.0.1                       # imap-login on 127.0.0.1:PORT, no imaps (port = 0)
//! ssl = no                                 # no certificate needed
//! disable_plaintext_auth = no              # LOGIN over plain TCP
//! auth_mechanisms = plain login
//! auth_cache_size = 0                      # every login reaches PAM (also Dovecot's default)
//! auth_failure_delay = 0                   # a failure is answered at the next 0.5 s flush, not after 2 s
//! passdb { driver = pam; args = SERVICE }  # /etc/pam.d/SERVICE (libpam reads nothing else)
//! userdb { driver = static; args = uid=NOBODY gid=NOGROUP home=DIR/home/%u }
//! mail_location = maildir:~/Maildir
//! ```
//!
//! What Dovecot 2.3 (Debian 12: 2.3.19.1) does with PAM, checked with `auth_debug` and strace:
//!
//! - The PAM calls run in an `auth -w` worker process running as **root** (Dovecot's default, so
//!   that pam_unix can read `/etc/shadow`): credd sees `peer_uid=0`.
//! - It sets `PAM_RHOST` to the client's address (`127.0.0.1`) and `PAM_TTY` to `dovecot`;
//!   `PAM_SERVICE` is the `args` of the passdb.
//! - Every login is `pam_authenticate` then `pam_acct_mgmt`: two connections to `pam.sock`.
//! - A message the module sends through the conversation (credd's lock message, `PAM_ERROR_MSG`)
//!   shows up only in Dovecot's debug log (`#1/1 style=3 msg=...`); the IMAP client always gets
//!   `NO [AUTHENTICATIONFAILED] Authentication failed.`, for a wrong password and a locked account
//!   alike (even with the passdb's `failure_show_msg=yes`).
//! - The static userdb needs no `/etc/passwd` entry for the user: credd's accounts log in with only
//!   a credd record.
//!
//! # The auth penalty, and fresh source addresses
//!
//! Dovecot's `anvil` keeps an *auth penalty* per client IP: after a failed login from an address,
//! the next authentication from that address waits 4 s, then 8 s, then 15 s (the same wrong password
//! repeated does not raise it; a success resets it). 2.3 has no setting to turn it off. A test that
//! sends wrong passwords therefore sends each from a fresh loopback address
//! ([`Dovecot::fresh_source`]: 127.0.0.2, 127.0.0.3, ...; Linux routes all of 127.0.0.0/8 to `lo`),
//! and keeps 127.0.0.1 for logins that are meant to succeed, which stay fast (about 30 ms each)
//! as long as no failure came from 127.0.0.1.
//!
//! # Readiness
//!
//! [`Dovecot::start`] returns once a TCP connection to the port gets Dovecot's `* OK` greeting
//! (polled every 50 ms, bounded by 20 s). If the port picked was taken before Dovecot bound it, the
//! harness starts over on another port.

use std::ffi::CString;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where Debian's dovecot-core installs the master.
pub const DOVECOT: &str = "/usr/sbin/dovecot";

/// How long Dovecot may take to greet on its port.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between readiness probes.
const POLL: Duration = Duration::from_millis(50);
/// How often to try again when the port picked was taken before Dovecot could bind it.
const PORT_ATTEMPTS: usize = 5;
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Read and write timeout of one IMAP conversation.
const IMAP_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    service: String,
    /// The last octets handed out by [`Dovecot::fresh_source`] (127.0.0.1 is never one of them).
    next_source: AtomicU32,
}

/// What the IMAP client saw for one `LOGIN` (and, after a success, `LOGOUT`).
#[derive(Debug, Clone)]
pub struct ImapLogin {
    /// The tagged reply to LOGIN was `OK`.
    pub ok: bool,
    /// The tagged reply to LOGIN, e.g. `a NO [AUTHENTICATIONFAILED] Authentication failed.`
    pub reply: String,
    /// Untagged lines received after the greeting, before the tagged reply.
    pub untagged: Vec<String>,
    /// From connect to the tagged reply to LOGIN.
    pub elapsed: Duration,
}

/// Why one launch attempt failed.
enum LaunchError {
    PortTaken,
    Fatal(String),
}

/// True when Dovecot's master binary is installed.
pub fn available() -> bool {
    Path::new(DOVECOT).exists()
}

impl Dovecot {
    /// Starts a private Dovecot whose passdb is the PAM service `service` (a file in `/etc/pam.d`,
    /// see [`crate::system_pam::SystemService`]) and returns once it greets on its port.
    /// Root only. Panics, with Dovecot's own messages, if it does not become ready within 20 s.
    pub fn start(service: &str) -> Dovecot {
        assert!(
            !service.is_empty() && service.bytes().all(|b| b.is_ascii_graphic() && b != b'"'),
            "PAM service name unusable in dovecot.conf: {service:?}"
        );
        let dir = tempfile::Builder::new()
            .prefix("credd-dovecot-")
            .tempdir()
            .expect("temporary directory");
        // The imap process runs as nobody and must reach its home below.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod dovecot test dir");
        let root = dir.path().to_str().expect("UTF-8 temporary directory path");
        assert!(
            root.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'%'),
            "temporary directory path unusable in dovecot.conf: {root:?}"
        );
        let (uid, gid) = nobody();
        for sub in ["base", "state", "home"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create dovecot directory");
        }
        chown(&dir.path().join("home"), uid, gid);
        let mut dovecot = Dovecot {
            dir,
            child: None,
            port: 0,
            service: service.to_string(),
            next_source: AtomicU32::new(1),
        };
        for attempt in 1..=PORT_ATTEMPTS {
            dovecot.port = free_tcp_port();
            match dovecot.launch(uid, gid) {
                Ok(()) => return dovecot,
                Err(LaunchError::PortTaken) if attempt < PORT_ATTEMPTS => {
                    dovecot.stop();
                    let _ = std::fs::remove_file(dovecot.log_path());
                }
                Err(LaunchError::PortTaken) => {
                    dovecot.stop();
                    panic!(
                        "dovecot could not bind a free port in {PORT_ATTEMPTS} attempts\n{}",
                        dovecot.diagnostics()
                    );
                }
                Err(LaunchError::Fatal(why)) => {
                    dovecot.stop();
                    panic!(
                        "dovecot did not become ready: {why}\n{}",
                        dovecot.diagnostics()
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port)
    }

    /// The PAM service Dovecot's passdb uses.
    pub fn service(&self) -> &str {
        &self.service
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("dovecot.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.root().join("dovecot.log")
    }

    fn stderr_path(&self) -> PathBuf {
        self.root().join("dovecot.stderr")
    }

    /// Everything Dovecot logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Polls Dovecot's log until it contains `needle`; false after `timeout`. Dovecot's `log`
    /// process writes the file asynchronously, so a line can arrive after the reply it belongs to.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().contains(needle) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    /// Dovecot's log, its stderr and its configuration, for failure messages.
    pub fn diagnostics(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- {} ---\n{}--- {} ---\n{}--- {} ---\n{}",
            self.stderr_path().display(),
            read(self.stderr_path()),
            self.log_path().display(),
            self.log(),
            self.config_path().display(),
            read(self.config_path()),
        )
    }

    /// A loopback address no earlier call returned: 127.0.0.2, 127.0.0.3, ... (never 127.0.0.1),
    /// for attempts that will fail (see the module documentation on the auth penalty).
    pub fn fresh_source(&self) -> Ipv4Addr {
        let n = self.next_source.fetch_add(1, Ordering::SeqCst) + 1;
        assert!(n < 1 << 16, "out of fresh loopback addresses");
        Ipv4Addr::new(127, 0, (n >> 8) as u8, (n & 0xff) as u8)
    }

    /// `LOGIN user password` from 127.0.0.1, then `LOGOUT` if it succeeded.
    pub fn login(&self, user: &str, password: &str) -> ImapLogin {
        self.login_from(Ipv4Addr::LOCALHOST, user, password)
    }

    /// `LOGIN user password` from the loopback address `source`, then `LOGOUT` if it succeeded.
    /// Panics on a connection or protocol error (a refusal is an [`ImapLogin`] with `ok: false`).
    pub fn login_from(&self, source: Ipv4Addr, user: &str, password: &str) -> ImapLogin {
        let started = Instant::now();
        let stream = connect_from(source, self.addr())
            .unwrap_or_else(|e| panic!("connect from {source} to {}: {e}", self.addr()));
        stream.set_read_timeout(Some(IMAP_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(IMAP_TIMEOUT)).unwrap();
        let mut writer = stream.try_clone().expect("clone IMAP stream");
        let mut reader = BufReader::new(stream);
        let greeting = read_line(&mut reader);
        assert!(
            greeting.starts_with("* OK"),
            "unexpected IMAP greeting: {greeting:?}"
        );
        write!(
            writer,
            "a LOGIN {} {}\r\n",
            imap_quote(user),
            imap_quote(password)
        )
        .expect("send LOGIN");
        let mut untagged = Vec::new();
        let reply = loop {
            let line = read_line(&mut reader);
            if line.starts_with("a ") {
                break line;
            }
            assert!(
                !line.is_empty(),
                "connection closed before the reply to LOGIN; untagged lines: {untagged:?}"
            );
            untagged.push(line);
        };
        let elapsed = started.elapsed();
        let ok = reply.starts_with("a OK");
        if ok {
            writer.write_all(b"b LOGOUT\r\n").expect("send LOGOUT");
            loop {
                let line = read_line(&mut reader);
                if line.is_empty() || line.starts_with("b ") {
                    break;
                }
            }
        }
        ImapLogin {
            ok,
            reply,
            untagged,
            elapsed,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits for the master to exit (it stops its children first; SIGKILL after
    /// 10 s). The files stay readable until the `Dovecot` is dropped. `Drop` calls it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    }

    fn config(&self, uid: u32, gid: u32) -> String {
        let dir = self.root().display();
        let port = self.port;
        let service = &self.service;
        let instance = self
            .root()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("credd-dovecot");
        format!(
            r#"# Generated by credd-e2e (tests/src/dovecot.rs); see that file for the reasons.
instance_name = {instance}
protocols = imap
listen = 127.0.0.1
base_dir = {dir}/base
state_dir = {dir}/state
log_path = {dir}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_cache_size = 0
auth_failure_delay = 0
auth_verbose = yes
auth_debug = yes
passdb {{
  driver = pam
  args = {service}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={dir}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
"#
        )
    }

    /// Writes the config, starts the master and waits for the greeting.
    fn launch(&mut self, uid: u32, gid: u32) -> Result<(), LaunchError> {
        std::fs::write(self.config_path(), self.config(uid, gid)).expect("write dovecot.conf");
        let out = File::create(self.stderr_path()).expect("create dovecot.stderr");
        let err = out.try_clone().expect("clone dovecot.stderr");
        let child = Command::new(DOVECOT)
            .arg("-c")
            .arg(self.config_path())
            .arg("-F")
            .current_dir(self.root())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LaunchError::Fatal(format!("spawn {DOVECOT}: {e}")))?;
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let text = format!(
                    "{}{}",
                    std::fs::read_to_string(self.stderr_path()).unwrap_or_default(),
                    self.log()
                );
                return Err(if text.contains("Address already in use") {
                    LaunchError::PortTaken
                } else {
                    LaunchError::Fatal(format!("dovecot exited with {status}"))
                });
            }
            if self.greets() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::Fatal(format!(
                    "no `* OK` greeting on {} within {READY_TIMEOUT:?}",
                    self.addr()
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// One readiness probe: connect and read the greeting.
    fn greets(&self) -> bool {
        let Ok(stream) = TcpStream::connect_timeout(&self.addr().into(), Duration::from_secs(1))
        else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).is_ok() && line.starts_with("* OK")
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One line without its CRLF; empty at EOF. Panics on a read error (a timeout included).
fn read_line(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("read from dovecot: {e}"));
    line.trim_end_matches(['\r', '\n']).to_string()
}

/// An IMAP quoted string (RFC 3501): `"` and `\` escaped. No CR, LF or NUL allowed.
fn imap_quote(s: &str) -> String {
    assert!(
        !s.contains(['\r', '\n', '\0']),
        "cannot send {s:?} as an IMAP quoted string"
    );
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A TCP connection to `dest` from the loopback address `source` (bind before connect, which
/// `std` does not offer).
fn connect_from(source: Ipv4Addr, dest: SocketAddrV4) -> std::io::Result<TcpStream> {
    fn sockaddr(addr: SocketAddrV4) -> libc::sockaddr_in {
        libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: addr.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*addr.ip()).to_be(),
            },
            sin_zero: [0; 8],
        }
    }
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: plain socket calls on a descriptor owned by `fd` from its creation on.
    unsafe {
        let raw = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let local = sockaddr(SocketAddrV4::new(source, 0));
        if libc::bind(raw, (&raw const local).cast::<libc::sockaddr>(), len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sockaddr(dest);
        if libc::connect(raw, (&raw const remote).cast::<libc::sockaddr>(), len) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(TcpStream::from(fd))
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
fn free_tcp_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .expect("pick a free TCP port")
        .port()
}

/// The uid and gid of `nobody`, the owner of the mail homes.
fn nobody() -> (u32, u32) {
    let name = CString::new("nobody").unwrap();
    // SAFETY: getpwnam's result is read at once, before any other passwd call on this thread.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        assert!(!pw.is_null(), "no `nobody` user in the passwd database");
        ((*pw).pw_uid, (*pw).pw_gid)
    }
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
}
