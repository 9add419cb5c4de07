//! The syslog record of every administrative action credctl performs (DESIGN.md §7): facility
//! authpriv, ident `credctl`, RFC 3164 with `key=value` fields, carrying the request id that credd
//! also uses as the id of its audit row, so that the two can be matched.
//!
//! Each write request (`user add|remove|disable|enable`, `passwd`, `reset`, `lock`, `unlock`, and
//! the `--modify-user-state` form) is sent with a fresh [`request_id`]; once the reply is in, one
//! message is written:
//!
//! ```text
//! <85>Jan 02 03:04:05 credctl[4242]: administrative action; action=reset user=alice by_uid=0 outcome=ok id=0123…
//! ```
//!
//! An `import` is one action with one record (its commit carries the id), with counts instead of
//! an account ([`import_message`]):
//!
//! ```text
//! <85>… credctl[4242]: administrative action; action=import source=users.csv rows=3 add=1 remove=0 reset=2 lock=0 unlock=0 disable=0 enable=0 set_hash=0 codes=2 sessions_revoked=1 dry_run=no allow_bulk=no by_uid=0 outcome=ok id=0123…
//! ```
//!
//! Never a password, a code or a hash. The `syslog` crate only formats; credctl sends the bytes
//! itself to the destination in `CREDCTL_SYSLOG` (`unix:PATH`, `udp:HOST:PORT` or `none`), by
//! default the datagram socket `/dev/log` when it exists. Logging never changes what credctl
//! prints or its exit status, except for one warning line on standard error when it fails.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use credd_proto::Target;
use rand::TryRng;
use syslog::{Facility, Formatter3164, LogFormat, Severity};

use crate::error::{CtlError, os_message};
use crate::import::ACTIONS;
use crate::output::field;

/// Where the records go: `unix:PATH`, `udp:HOST:PORT` or `none`.
pub const SYSLOG_ENV: &str = "CREDCTL_SYSLOG";

/// The local syslog socket, used when [`SYSLOG_ENV`] is unset and it exists.
pub const DEFAULT_SOCKET: &str = "/dev/log";

/// A syslog daemon that does not take a message within this long does not get it.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);

/// Linux's errno for a datagram sent to a stream socket.
const EPROTOTYPE: i32 = 91;

/// A fresh request id: 32 lower-case hex digits from 16 bytes of the OS random generator. credd
/// uses it as the event id of the audit row the request writes.
pub fn request_id() -> Result<String, CtlError> {
    let mut raw = [0u8; 16];
    rand::rngs::SysRng
        .try_fill_bytes(&mut raw)
        .map_err(|e| CtlError::RequestId(format!("OS random generator failed: {e}")))?;
    Ok(raw.iter().map(|b| format!("{b:02x}")).collect())
}

/// What an administrator did, by its stable name in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    UserAdd,
    UserRemove,
    UserDisable,
    UserEnable,
    Passwd,
    Reset,
    Lock,
    Unlock,
    Import,
    Restore,
    /// `restore --force-foreign` of a copy that is not provably this host's.
    RestoreForced,
}

impl Verb {
    pub fn name(self) -> &'static str {
        match self {
            Verb::UserAdd => "user_add",
            Verb::UserRemove => "user_remove",
            Verb::UserDisable => "user_disable",
            Verb::UserEnable => "user_enable",
            Verb::Passwd => "passwd",
            Verb::Reset => "reset",
            Verb::Lock => "lock",
            Verb::Unlock => "unlock",
            Verb::Import => "import",
            Verb::Restore => "restore",
            Verb::RestoreForced => "restore_forced",
        }
    }

    /// Notice for what takes an account away from its owner (a reset, a lock, an import, which
    /// may do both to thousands), info otherwise.
    fn severity(self) -> Severity {
        match self {
            Verb::Reset | Verb::Lock | Verb::Import => Severity::LOG_NOTICE,
            Verb::RestoreForced => Severity::LOG_WARNING,
            _ => Severity::LOG_INFO,
        }
    }
}

/// One administrative action: what, and on which account (by name or by uid, as it was named).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    pub verb: Verb,
    pub target: Target,
}

impl Action {
    pub fn on_user(verb: Verb, name: &str) -> Action {
        Action {
            verb,
            target: Target::Name(name.into()),
        }
    }
}

/// How the action ended, as far as credctl can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// credd did it.
    Ok,
    /// credd answered with a refusal: not permitted, no such user, busy, rate limited, …
    Refused,
    /// The request was sent but the answer was lost or not understood: credd may have done it.
    Error,
    /// credd could not be reached; nothing was sent.
    Unreachable,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Error => "error",
            Outcome::Unreachable => "unreachable",
        }
    }

    /// The outcome of a reply credd sent, as the command understood it.
    pub fn of<T>(result: &Result<T, CtlError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(
                CtlError::Daemon { .. }
                | CtlError::UnknownUser(_)
                | CtlError::Busy
                | CtlError::RateLimited
                | CtlError::ResetRateLimited
                | CtlError::ImportRefused { .. }
                | CtlError::ImportRateLimited,
            ) => Outcome::Refused,
            Err(_) => Outcome::Error,
        }
    }
}

/// The message after the RFC 3164 header: `administrative action; action=A user=U by_uid=N
/// outcome=O id=ID` (`uid=N` instead of `user=U` for an account named by uid; `by_uid=-` when
/// credctl's own uid cannot be read).
pub fn message(action: &Action, by_uid: Option<u32>, outcome: Outcome, id: &str) -> String {
    let target = match &action.target {
        Target::Name(name) => format!("user={}", field(name)),
        Target::Uid(uid) => format!("uid={uid}"),
    };
    let by_uid = by_uid.map_or_else(|| "-".to_string(), |u| u.to_string());
    format!(
        "administrative action; action={} {target} by_uid={by_uid} outcome={} id={}",
        action.verb.name(),
        outcome.as_str(),
        field(id)
    )
}

/// An import, for its record: what the file asked for and, once credd committed it, what credd
/// reports it did. Counts only: never a row, a hash or a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRecord {
    /// The FILE argument, `-` for standard input.
    pub source: String,
    pub dry_run: bool,
    pub allow_bulk: bool,
    pub rows: u64,
    /// Rows per action, by the action's name in the file (`set-hash`).
    pub actions: BTreeMap<String, u64>,
    pub codes: u64,
    pub sessions_revoked: u64,
    /// Entries of a shadow file left out (`import --from-shadow` only): ` shadow=yes skipped=N`
    /// in the record.
    pub skipped: Option<u64>,
}

/// The message of an import's record: `administrative action; action=import source=S rows=N`,
/// then every action's count in a fixed order (`set-hash` as `set_hash`), `codes=N
/// sessions_revoked=N dry_run=yes|no allow_bulk=yes|no by_uid=N outcome=O id=ID`, with
/// `shadow=yes skipped=N` before `by_uid` for an import from a shadow file. Every action is always
/// present, so that a collector can alert on `reset=` alone.
pub fn import_message(
    import: &ImportRecord,
    by_uid: Option<u32>,
    outcome: Outcome,
    id: &str,
) -> String {
    let yes_no = |flag: bool| if flag { "yes" } else { "no" };
    let mut text = format!(
        "administrative action; action={} source={} rows={}",
        Verb::Import.name(),
        field(&import.source),
        import.rows
    );
    for action in ACTIONS {
        let name = action.as_str();
        let count = import.actions.get(name).copied().unwrap_or(0);
        text.push_str(&format!(" {}={count}", name.replace('-', "_")));
    }
    let by_uid = by_uid.map_or_else(|| "-".to_string(), |u| u.to_string());
    let shadow = import
        .skipped
        .map_or_else(String::new, |n| format!(" shadow=yes skipped={n}"));
    text.push_str(&format!(
        " codes={} sessions_revoked={} dry_run={} allow_bulk={}{shadow} by_uid={by_uid} \
         outcome={} id={}",
        import.codes,
        import.sessions_revoked,
        yes_no(import.dry_run),
        yes_no(import.allow_bulk),
        outcome.as_str(),
        field(id)
    ));
    text
}

/// The whole RFC 3164 message: `<PRI>Mmm dd hh:mm:ss credctl[PID]: MESSAGE`, facility authpriv.
pub fn datagram(verb: Verb, message: &str) -> Vec<u8> {
    let formatter = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None,
        process: "credctl".into(),
        pid: std::process::id(),
    };
    let mut out = Vec::with_capacity(64 + message.len());
    // Writing into a Vec cannot fail.
    let _ = formatter.format(&mut out, verb.severity(), message);
    out
}

/// Where records go, from [`SYSLOG_ENV`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// `none`, or unset while the default socket does not exist: nothing is written, silently.
    None,
    /// A Unix datagram socket (a stream socket is accepted too, as glibc's syslog(3) does).
    Unix(PathBuf),
    /// `HOST:PORT`, by UDP.
    Udp(String),
    /// A value of [`SYSLOG_ENV`] that names no destination; every record is a warning.
    Invalid(String),
}

impl Destination {
    /// From the value of [`SYSLOG_ENV`]; unset or empty means `default` when it exists.
    pub fn from_setting(value: Option<&OsStr>, default: &Path) -> Destination {
        let value = value.map(OsStr::as_bytes).unwrap_or_default();
        if value.is_empty() {
            return if default.exists() {
                Destination::Unix(default.to_path_buf())
            } else {
                Destination::None
            };
        }
        match value {
            b"none" => Destination::None,
            _ => match (value.strip_prefix(b"unix:"), value.strip_prefix(b"udp:")) {
                (Some(path), _) if !path.is_empty() => {
                    Destination::Unix(PathBuf::from(OsStr::from_bytes(path)))
                }
                (_, Some(addr)) if addr.contains(&b':') => match std::str::from_utf8(addr) {
                    Ok(addr) => Destination::Udp(addr.to_string()),
                    Err(_) => Destination::Invalid(String::from_utf8_lossy(value).into_owned()),
                },
                _ => Destination::Invalid(String::from_utf8_lossy(value).into_owned()),
            },
        }
    }

    /// How the warning names it: the socket's path, `udp:HOST:PORT`, or the bad setting.
    fn describe(&self) -> String {
        match self {
            Destination::None => "none".into(),
            Destination::Unix(path) => path.display().to_string(),
            Destination::Udp(addr) => format!("udp:{addr}"),
            Destination::Invalid(value) => format!("{SYSLOG_ENV}={value}"),
        }
    }

    /// Sends one message.
    fn send(&self, bytes: &[u8]) -> Result<(), String> {
        match self {
            Destination::None => Ok(()),
            Destination::Unix(path) => send_unix(path, bytes).map_err(|e| os_message(&e)),
            Destination::Udp(addr) => send_udp(addr, bytes).map_err(|e| os_message(&e)),
            Destination::Invalid(_) => Err("not unix:PATH, udp:HOST:PORT or none".into()),
        }
    }
}

fn send_unix(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(SEND_TIMEOUT))?;
    match socket.send_to(bytes, path) {
        Ok(_) => Ok(()),
        // A stream socket (some syslog daemons listen so): one message ended by a NUL, as glibc's
        // syslog(3) sends it.
        Err(e) if e.raw_os_error() == Some(EPROTOTYPE) => {
            let mut stream = UnixStream::connect(path)?;
            stream.set_write_timeout(Some(SEND_TIMEOUT))?;
            stream.write_all(bytes)?;
            stream.write_all(b"\0")
        }
        Err(e) => Err(e),
    }
}

/// To the first address of `HOST:PORT` that takes the datagram.
fn send_udp(addr: &str, bytes: &[u8]) -> io::Result<()> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the host has no address");
    for target in addr.to_socket_addrs()? {
        let local: SocketAddr = if target.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        let sent = UdpSocket::bind(local).and_then(|socket| {
            socket.set_write_timeout(Some(SEND_TIMEOUT))?;
            socket.send_to(bytes, target)
        });
        match sent {
            Ok(_) => return Ok(()),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// The effective uid credd sees through SO_PEERCRED, from `/proc/self/status`.
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Writes the records of administrative actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLog {
    destination: Destination,
}

impl AdminLog {
    /// As [`SYSLOG_ENV`] says, or `/dev/log`.
    pub fn from_env() -> AdminLog {
        let value = std::env::var_os(SYSLOG_ENV);
        AdminLog::to(Destination::from_setting(
            value.as_deref(),
            Path::new(DEFAULT_SOCKET),
        ))
    }

    pub const fn to(destination: Destination) -> AdminLog {
        AdminLog { destination }
    }

    /// Writes the record of `action`; a failure is one warning line on standard error.
    pub fn record(&self, action: &Action, outcome: Outcome, id: &str) {
        self.record_to(action, outcome, id, &mut io::stderr());
    }

    fn record_to(&self, action: &Action, outcome: Outcome, id: &str, warn: &mut impl Write) {
        self.send(
            action.verb,
            || message(action, effective_uid(), outcome, id),
            warn,
        );
    }

    /// Writes the record of an import; a failure is one warning line on standard error.
    pub fn record_import(&self, import: &ImportRecord, outcome: Outcome, id: &str) {
        self.record_import_to(import, outcome, id, &mut io::stderr());
    }

    fn record_import_to(
        &self,
        import: &ImportRecord,
        outcome: Outcome,
        id: &str,
        warn: &mut impl Write,
    ) {
        self.send(
            Verb::Import,
            || import_message(import, effective_uid(), outcome, id),
            warn,
        );
    }

    fn send(&self, verb: Verb, message: impl FnOnce() -> String, warn: &mut impl Write) {
        if self.destination == Destination::None {
            return;
        }
        let bytes = datagram(verb, &message());
        if let Err(why) = self.destination.send(&bytes) {
            // Nothing more to do about it: the action itself is done and credd has audited it.
            let _ = writeln!(
                warn,
                "credctl: warning: could not write to syslog ({}): {why}",
                self.destination.describe()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::{ErrorKind, ProtoError, valid_request_id};
    use std::sync::atomic::{AtomicU32, Ordering};

    const ID: &str = "0123456789abcdef0123456789abcdef";

    /// A private directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            static NEXT: AtomicU32 = AtomicU32::new(0);
            let path = std::env::temp_dir().join(format!(
                "credctl-adminlog-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn request_ids_are_32_lower_case_hex_digits_and_fresh() {
        let a = request_id().unwrap();
        let b = request_id().unwrap();
        for id in [&a, &b] {
            assert_eq!(id.len(), 32, "{id}");
            assert!(
                id.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
                "{id}"
            );
            assert!(valid_request_id(id), "{id}");
        }
        assert_ne!(a, b);
    }

    #[test]
    fn the_message_names_the_action_and_never_a_secret() {
        let reset = Action::on_user(Verb::Reset, "alice");
        assert_eq!(
            message(&reset, Some(0), Outcome::Ok, ID),
            format!("administrative action; action=reset user=alice by_uid=0 outcome=ok id={ID}")
        );
        let lock = Action {
            verb: Verb::Lock,
            target: Target::Uid(1001),
        };
        assert_eq!(
            message(&lock, None, Outcome::Refused, ID),
            format!("administrative action; action=lock uid=1001 by_uid=- outcome=refused id={ID}")
        );
        let odd = Action::on_user(Verb::UserRemove, "a b\nc");
        assert_eq!(
            message(&odd, Some(1000), Outcome::Unreachable, ID),
            format!(
                "administrative action; action=user_remove user=\"a b\\nc\" by_uid=1000 \
                 outcome=unreachable id={ID}"
            )
        );
    }

    #[test]
    fn the_import_message_has_every_count_and_never_a_row() {
        let mut import = ImportRecord {
            source: "users.csv".into(),
            dry_run: false,
            allow_bulk: true,
            rows: 4,
            actions: [("add", 1), ("reset", 2), ("set-hash", 1)]
                .into_iter()
                .map(|(a, n)| (a.to_string(), n))
                .collect(),
            codes: 2,
            sessions_revoked: 3,
            skipped: None,
        };
        assert_eq!(
            import_message(&import, Some(0), Outcome::Ok, ID),
            format!(
                "administrative action; action=import source=users.csv rows=4 add=1 remove=0 \
                 reset=2 lock=0 unlock=0 disable=0 enable=0 set_hash=1 codes=2 \
                 sessions_revoked=3 dry_run=no allow_bulk=yes by_uid=0 outcome=ok id={ID}"
            )
        );
        import.source = "my users.csv\nforged=1".into();
        import.dry_run = true;
        let text = import_message(&import, None, Outcome::Refused, ID);
        assert!(
            text.contains(" source=\"my users.csv\\nforged=1\" rows=4 "),
            "{text}"
        );
        assert!(
            text.contains(" dry_run=yes allow_bulk=yes by_uid=- outcome=refused "),
            "{text}"
        );
        import.skipped = Some(7);
        let text = import_message(&import, Some(0), Outcome::Ok, ID);
        assert!(
            text.contains(" allow_bulk=yes shadow=yes skipped=7 by_uid=0 outcome=ok "),
            "{text}"
        );
    }

    #[test]
    fn the_datagram_is_rfc3164_authpriv_with_ident_credctl() {
        let reset = Action::on_user(Verb::Reset, "alice");
        let body = message(&reset, Some(0), Outcome::Ok, ID);
        let text = String::from_utf8(datagram(Verb::Reset, &body)).unwrap();
        // authpriv (10) × 8 + notice (5).
        assert!(text.starts_with("<85>"), "{text}");
        // `<85>Jan 02 03:04:05 credctl[PID]: …`
        let header = &text[4..];
        let (stamp, rest) = header.split_at(15);
        let stamp = stamp.as_bytes();
        assert!(stamp[..3].iter().all(u8::is_ascii_alphabetic), "{text}");
        assert_eq!(
            (stamp[3], stamp[6], stamp[9], stamp[12]),
            (b' ', b' ', b':', b':')
        );
        assert_eq!(
            rest,
            format!(
                " credctl[{}]: administrative action; action=reset user=alice by_uid=0 \
                 outcome=ok id={ID}",
                std::process::id()
            )
        );
        assert!(!text.contains('\n'));

        // A lock and an import are notices too.
        assert!(datagram(Verb::Lock, "x").starts_with(b"<85>"));
        assert!(datagram(Verb::Import, "x").starts_with(b"<85>"));
        for verb in [
            Verb::UserAdd,
            Verb::UserRemove,
            Verb::UserDisable,
            Verb::UserEnable,
            Verb::Passwd,
            Verb::Unlock,
        ] {
            // authpriv × 8 + info (6).
            assert!(datagram(verb, "x").starts_with(b"<86>"), "{verb:?}");
        }
    }

    #[test]
    fn outcomes_follow_the_reply() {
        assert_eq!(Outcome::of(&Ok::<(), CtlError>(())), Outcome::Ok);
        for refused in [
            CtlError::Daemon {
                kind: ErrorKind::NotPermitted,
                message: "no".into(),
            },
            CtlError::UnknownUser("bob".into()),
            CtlError::Busy,
            CtlError::RateLimited,
            CtlError::ResetRateLimited,
            CtlError::ImportRefused {
                file: "users.csv".into(),
                problems: 2,
                at_least: false,
            },
            CtlError::ImportRateLimited,
        ] {
            assert_eq!(Outcome::of::<()>(&Err(refused)), Outcome::Refused);
        }
        assert_eq!(
            Outcome::of::<()>(&Err(CtlError::Unexpected("pong".into()))),
            Outcome::Error
        );
        assert_eq!(
            Outcome::of::<()>(&Err(CtlError::call(
                "/run/credd/admin.sock".into(),
                Duration::from_secs(1),
                ProtoError::Closed
            ))),
            Outcome::Error
        );
        let names: Vec<_> = [
            Outcome::Ok,
            Outcome::Refused,
            Outcome::Error,
            Outcome::Unreachable,
        ]
        .map(Outcome::as_str)
        .into();
        assert_eq!(names, ["ok", "refused", "error", "unreachable"]);
    }

    #[test]
    fn destinations_come_from_the_setting() {
        let dir = TempDir::new();
        let missing = dir.0.join("no-log");
        let present = dir.0.join("log");
        std::fs::write(&present, b"").unwrap();
        let from =
            |v: Option<&str>, default: &Path| Destination::from_setting(v.map(OsStr::new), default);
        assert_eq!(from(None, &missing), Destination::None);
        assert_eq!(from(Some(""), &missing), Destination::None);
        assert_eq!(from(None, &present), Destination::Unix(present.clone()));
        assert_eq!(from(Some("none"), &present), Destination::None);
        assert_eq!(
            from(Some("unix:/tmp/x.sock"), &present),
            Destination::Unix("/tmp/x.sock".into())
        );
        assert_eq!(
            from(Some("udp:127.0.0.1:514"), &present),
            Destination::Udp("127.0.0.1:514".into())
        );
        assert_eq!(
            from(Some("udp:[::1]:514"), &present),
            Destination::Udp("[::1]:514".into())
        );
        for bad in ["unix:", "udp:host", "tcp:h:1", "/dev/log", "NONE", "syslog"] {
            assert_eq!(
                from(Some(bad), &present),
                Destination::Invalid(bad.into()),
                "{bad}"
            );
        }
    }

    fn record(log: &AdminLog, action: &Action) -> String {
        let mut warn = Vec::new();
        log.record_to(action, Outcome::Ok, ID, &mut warn);
        String::from_utf8(warn).unwrap()
    }

    #[test]
    fn records_reach_a_unix_datagram_socket() {
        let dir = TempDir::new();
        let path = dir.0.join("log.sock");
        let receiver = UnixDatagram::bind(&path).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let log = AdminLog::to(Destination::Unix(path));
        let action = Action::on_user(Verb::Passwd, "alice");
        assert_eq!(record(&log, &action), "");
        let mut buf = [0u8; 2048];
        let n = receiver.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("<86>"), "{text}");
        assert!(
            text.ends_with(&format!(
                "action=passwd user=alice by_uid={} outcome=ok id={ID}",
                { effective_uid().map_or("-".to_string(), |u| u.to_string()) }
            )),
            "{text}"
        );
        // One action, one message.
        assert_eq!(
            receiver.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }

    #[test]
    fn records_reach_a_unix_stream_socket_nul_terminated() {
        let dir = TempDir::new();
        let path = dir.0.join("log.sock");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let log = AdminLog::to(Destination::Unix(path));
        let server = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut all = Vec::new();
            io::Read::read_to_end(&mut conn, &mut all).unwrap();
            all
        });
        assert_eq!(record(&log, &Action::on_user(Verb::Lock, "bob")), "");
        let all = server.join().unwrap();
        assert!(all.starts_with(b"<85>"));
        assert!(all.ends_with(format!("id={ID}\0").as_bytes()));
    }

    #[test]
    fn records_reach_udp() {
        let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let addr = receiver.local_addr().unwrap();
        let log = AdminLog::to(Destination::Udp(addr.to_string()));
        assert_eq!(record(&log, &Action::on_user(Verb::UserAdd, "carol")), "");
        let mut buf = [0u8; 2048];
        let n = receiver.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(text.starts_with("<86>"), "{text}");
        assert!(text.contains(" credctl["), "{text}");
        assert!(text.contains("action=user_add user=carol "), "{text}");
    }

    #[test]
    fn failures_are_one_warning_line_and_none_is_silent() {
        let dir = TempDir::new();
        let action = Action::on_user(Verb::Unlock, "alice");
        let missing = dir.0.join("missing.sock");
        let warning = record(&AdminLog::to(Destination::Unix(missing.clone())), &action);
        assert_eq!(
            warning,
            format!(
                "credctl: warning: could not write to syslog ({}): No such file or directory\n",
                missing.display()
            )
        );
        let warning = record(
            &AdminLog::to(Destination::Invalid("tcp:h:1".into())),
            &action,
        );
        assert_eq!(
            warning,
            "credctl: warning: could not write to syslog (CREDCTL_SYSLOG=tcp:h:1): not \
             unix:PATH, udp:HOST:PORT or none\n"
        );
        assert_eq!(record(&AdminLog::to(Destination::None), &action), "");
    }

    #[test]
    fn the_effective_uid_is_read() {
        assert!(effective_uid().is_some());
    }
}
