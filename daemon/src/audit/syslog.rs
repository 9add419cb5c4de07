//! Delivery of audit events to syslog (facility authpriv, ident `credd`).
//!
//! The local audit table is always written first; syslog gets each event after its transaction
//! commits. Delivery runs on its own thread behind a bounded queue, so a syslog outage never
//! blocks or fails an authentication: undeliverable events wait and are retried every second;
//! when the queue is full, new events are dropped and counted (`credctl status --daemon`), and the
//! count is audited once syslog is back.
//!
//! The `syslog` crate formats (RFC 3164 with `key=value` fields, or RFC 5424 with the fields as
//! structured data `[credd@32473 …]`); the transport is ours, because RFC 6587 framing on TCP and
//! reconnecting after an outage are needed and the crate does neither.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use syslog::{Facility, Formatter3164, Formatter5424, LogFormat, Severity};

use crate::audit::chain::Published;

/// Events waiting for syslog at most; past it new events are dropped and counted.
const QUEUE_CAPACITY: usize = 10_000;
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// The private enterprise number in our structured-data id, as in docs/audit.md.
pub const SD_ID: &str = "credd@32473";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Unix(PathBuf),
    Udp(String),
    Tcp(String),
    None,
}

impl Target {
    /// `unix:PATH`, `udp:HOST:PORT`, `tcp:HOST:PORT` or `none`.
    pub fn parse(s: &str) -> Result<Target, String> {
        match s.split_once(':') {
            _ if s == "none" => Ok(Target::None),
            Some(("unix", path)) if path.starts_with('/') => Ok(Target::Unix(PathBuf::from(path))),
            Some(("udp", addr)) if addr.contains(':') => Ok(Target::Udp(addr.to_string())),
            Some(("tcp", addr)) if addr.contains(':') => Ok(Target::Tcp(addr.to_string())),
            _ => Err(format!(
                "{s:?} is not unix:/ABSOLUTE/PATH, udp:HOST:PORT, tcp:HOST:PORT or none"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Rfc3164,
    Rfc5424,
}

/// Something to send: an audit event, or a checkpoint of the chain head.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Event(Box<Published>),
    Checkpoint {
        seq: u64,
        mac: String,
        reason: &'static str,
    },
    /// Not in the audit table (it could not be written there): integrity failures.
    Critical {
        event: &'static str,
        detail: String,
    },
}

pub struct Sink {
    queue: Mutex<VecDeque<Outgoing>>,
    ready: Condvar,
    dropped: AtomicU64,
    /// Drops not yet reported in the audit table; taken by the daemon's periodic task.
    unreported_drops: AtomicU64,
    enabled: bool,
    stopping: AtomicBool,
}

impl Sink {
    /// A sink that sends to `target` from a thread of its own.
    pub fn start(target: Target, format: Format) -> Arc<Sink> {
        let sink = Arc::new(Sink {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
            unreported_drops: AtomicU64::new(0),
            enabled: target != Target::None,
            stopping: AtomicBool::new(false),
        });
        if sink.enabled {
            let worker = Arc::clone(&sink);
            let spawned = std::thread::Builder::new()
                .name("syslog".into())
                .spawn(move || worker.run(target, format));
            if let Err(e) = spawned {
                eprintln!("credd: cannot start syslog delivery: {e}");
            }
        }
        sink
    }

    /// A sink that sends nothing (store unit tests).
    #[cfg(test)]
    pub fn disabled() -> Arc<Sink> {
        Sink::start(Target::None, Format::Rfc3164)
    }

    pub fn publish(&self, items: impl IntoIterator<Item = Outgoing>) {
        for item in items {
            if let Outgoing::Event(p) = &item {
                eprintln!("credd: audit {}", describe(p));
            }
            if !self.enabled {
                continue;
            }
            let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            if queue.len() >= QUEUE_CAPACITY {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.unreported_drops.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            queue.push_back(item);
            self.ready.notify_one();
        }
    }

    pub fn publish_events(&self, events: Vec<Published>) {
        self.publish(events.into_iter().map(|e| Outgoing::Event(Box::new(e))));
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Drops since the last call, once syslog takes events again (to be audited then).
    pub fn take_unreported_drops_if_delivering(&self) -> u64 {
        let waiting = self.queue.lock().unwrap_or_else(|p| p.into_inner()).len();
        if waiting > 0 {
            return 0;
        }
        self.unreported_drops.swap(0, Ordering::Relaxed)
    }

    /// Gives delivery up to `grace` to empty the queue (shutdown).
    pub fn drain(&self, grace: Duration) {
        let deadline = std::time::Instant::now() + grace;
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        while !queue.is_empty() && std::time::Instant::now() < deadline {
            let (q, _) = self
                .ready
                .wait_timeout(queue, Duration::from_millis(50))
                .unwrap_or_else(|p| p.into_inner());
            queue = q;
        }
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn run(&self, target: Target, format: Format) {
        let hostname = hostname();
        let mut transport: Option<Transport> = None;
        loop {
            let item = {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(item) = queue.front().cloned() {
                        break item;
                    }
                    queue = self.ready.wait(queue).unwrap_or_else(|p| p.into_inner());
                }
            };
            let messages = render(&item, format, hostname.as_deref());
            let sent = messages.iter().all(|m| {
                if transport.is_none() {
                    transport = Transport::connect(&target).ok();
                }
                match transport.as_mut().map(|t| t.send(m)) {
                    Some(Ok(())) => true,
                    _ => {
                        transport = None;
                        false
                    }
                }
            });
            if sent {
                let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
                queue.pop_front();
                self.ready.notify_all();
            } else {
                if self.stopping.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(RETRY_INTERVAL);
            }
        }
    }
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

enum Transport {
    Unix(UnixDatagram, PathBuf),
    Udp(UdpSocket, SocketAddr),
    Tcp(TcpStream),
}

impl Transport {
    fn connect(target: &Target) -> std::io::Result<Transport> {
        let resolve = |addr: &str| {
            addr.to_socket_addrs()?
                .next()
                .ok_or_else(|| std::io::Error::other("no address"))
        };
        match target {
            Target::Unix(path) => Ok(Transport::Unix(UnixDatagram::unbound()?, path.clone())),
            Target::Udp(addr) => {
                let addr = resolve(addr)?;
                let bind = if addr.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                Ok(Transport::Udp(UdpSocket::bind(bind)?, addr))
            }
            Target::Tcp(addr) => {
                let stream = TcpStream::connect_timeout(&resolve(addr)?, Duration::from_secs(5))?;
                stream.set_write_timeout(Some(Duration::from_secs(5)))?;
                Ok(Transport::Tcp(stream))
            }
            Target::None => Err(std::io::Error::other("no syslog target")),
        }
    }

    fn send(&mut self, message: &[u8]) -> std::io::Result<()> {
        match self {
            Transport::Unix(socket, path) => socket.send_to(message, &*path).map(|_| ()),
            Transport::Udp(socket, addr) => socket.send_to(message, *addr).map(|_| ()),
            // RFC 6587 octet counting: a message may never run into the next one.
            Transport::Tcp(stream) => {
                let mut framed = format!("{} ", message.len()).into_bytes();
                framed.extend_from_slice(message);
                stream.write_all(&framed)
            }
        }
    }
}

/// Stable numeric ids for RFC 5424's MSGID (the crate takes a number): the event's name is in the
/// structured data too.
pub fn event_code(name: &str) -> u32 {
    match name {
        "login_success" => 1,
        "login_failure" => 2,
        "unknown_user" => 3,
        "account_locked" => 4,
        "account_unlocked" => 5,
        "admin_lock" => 6,
        "reset_issued" => 7,
        "code_redeemed" => 8,
        "code_rejected" => 9,
        "code_burned" => 10,
        "code_expired" => 11,
        "password_changed" => 12,
        "user_added" => 13,
        "user_removed" => 14,
        "import_started" => 15,
        "import_finished" => 16,
        "rate_limited" => 17,
        "peer_refused" => 18,
        "daemon_started" => 19,
        "daemon_stopped" => 20,
        "integrity_failure" => 21,
        "hash_upgraded" => 22,
        "audit_checkpoint" => 23,
        "user_disabled" => 24,
        "user_enabled" => 25,
        "session_opened" => 26,
        "session_closed" => 27,
        "syslog_dropped" => 28,
        "pepper_applied" => 29,
        "backup_taken" => 30,
        "config_reloaded" => 31,
        "hash_over_cap" => 32,
        "backup_restored" => 33,
        "alert_spray" => 34,
        "alert_slow_spray" => 35,
        "alert_distributed" => 36,
        "alert_reset_burst" => 37,
        "alert_success_after_failures" => 38,
        "alert_unexpected_code" => 39,
        "alert_acked" => 40,
        _ => 99,
    }
}

fn severity(event: &str, outcome: &str) -> Severity {
    match event {
        "integrity_failure" => Severity::LOG_CRIT,
        // A right password right after a burst of failures: possibly a guessed one.
        "alert_success_after_failures" => Severity::LOG_ALERT,
        "alert_acked" => Severity::LOG_NOTICE,
        _ if event.starts_with("alert_") => Severity::LOG_WARNING,
        "backup_restored" if outcome == "forced" => Severity::LOG_WARNING,
        "login_failure" | "account_locked" | "code_rejected" | "code_burned" | "rate_limited"
        | "peer_refused" | "syslog_dropped" | "hash_over_cap" => Severity::LOG_WARNING,
        "reset_issued" | "admin_lock" | "password_changed" | "user_removed" | "pepper_applied"
        | "backup_taken" | "backup_restored" => Severity::LOG_NOTICE,
        _ if outcome == "ok" => Severity::LOG_INFO,
        _ => Severity::LOG_NOTICE,
    }
}

/// A short sentence a human reads before the fields.
fn sentence(event: &str) -> String {
    match event {
        "login_success" => "authentication success".into(),
        "login_failure" => "authentication failure".into(),
        other => other.replace('_', " "),
    }
}

/// `key=value`, quoted when the value holds a space, quote or backslash. Values hold no control,
/// format or separator characters: validated on the way in, and escaped by [`fields`].
fn kv(out: &mut String, key: &str, value: &str) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    if value.is_empty() || value.contains([' ', '"', '\\', '=']) {
        out.push('"');
        for c in value.chars() {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// Every value escaped ([`credd_proto::escape_unsafe`]): names and PAM fields refuse control,
/// format and separator characters on the way in, but a row of an older database, or a detail
/// credd composed from something else, must still not reorder, hide or break a syslog line.
fn fields(p: &Published) -> Vec<(&'static str, String)> {
    fields_raw(p)
        .into_iter()
        .map(|(k, v)| match credd_proto::escape_unsafe(&v) {
            std::borrow::Cow::Borrowed(_) => (k, v),
            std::borrow::Cow::Owned(escaped) => (k, escaped),
        })
        .collect()
}

fn fields_raw(p: &Published) -> Vec<(&'static str, String)> {
    let e = &p.entry;
    // The event's own time: a message delivered after an outage is stamped with its send time.
    let mut f = vec![
        ("event", e.event.clone()),
        ("id", e.id.clone()),
        ("seq", e.seq.to_string()),
        ("time", e.time.clone()),
        ("outcome", e.outcome.clone()),
    ];
    let optional = [
        ("user", e.user.clone()),
        ("actor_uid", e.actor_uid.map(|u| u.to_string())),
        ("service", e.service.clone()),
        ("rhost", e.rhost.clone()),
        ("tty", e.tty.clone()),
    ];
    f.extend(optional.into_iter().filter_map(|(k, v)| Some((k, v?))));
    if !e.detail.is_empty() {
        f.push(("detail", e.detail.clone()));
    }
    // An alert's stable fields (docs/alerts.md) also as fields of their own, for collectors.
    if e.event.starts_with("alert_") {
        for pair in e.detail.split(' ') {
            if let Some((k, v)) = pair.split_once('=')
                && let Some(key) = ALERT_FIELDS.iter().find(|f| **f == k)
            {
                f.push((key, v.to_string()));
            }
        }
    }
    f
}

/// The fields of an alert's detail that syslog carries as fields of their own. `source` and
/// `names` are claims or names, one token each; `account` is a stored account.
const ALERT_FIELDS: &[&str] = &[
    "kind", "source", "accounts", "account", "sources", "names", "unlisted", "events", "window",
    "first", "last", "detector", "action", "alert",
];

fn describe(p: &Published) -> String {
    let mut line = sentence(&p.entry.event);
    line.push(';');
    for (k, v) in fields(p) {
        kv(&mut line, k, &v);
    }
    line
}

fn render(item: &Outgoing, format: Format, hostname: Option<&str>) -> Vec<Vec<u8>> {
    let f3164 = Formatter3164 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: None, // the local syslog daemon adds its own
        process: "credd".into(),
        pid: std::process::id(),
    };
    let f5424 = Formatter5424 {
        facility: Facility::LOG_AUTHPRIV,
        hostname: hostname.map(str::to_owned),
        process: "credd".into(),
        pid: std::process::id(),
    };
    let (event, outcome, text, sd): (&str, &str, String, Vec<(&'static str, String)>) = match item {
        Outgoing::Event(p) => (&p.entry.event, &p.entry.outcome, describe(p), fields(p)),
        Outgoing::Checkpoint { seq, mac, reason } => {
            let mut text = String::from("audit checkpoint;");
            let sd = vec![
                ("event", "audit_checkpoint".to_string()),
                ("seq", seq.to_string()),
                ("mac", mac.clone()),
                ("reason", reason.to_string()),
            ];
            for (k, v) in &sd {
                kv(&mut text, k, v);
            }
            ("audit_checkpoint", "ok", text, sd)
        }
        Outgoing::Critical { event, detail } => {
            let mut text = format!("{};", sentence(event));
            let sd = vec![("event", event.to_string()), ("detail", detail.clone())];
            for (k, v) in &sd {
                kv(&mut text, k, v);
            }
            (event, "failed", text, sd)
        }
    };
    let severity = severity(event, outcome);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    let formatted = match format {
        Format::Rfc3164 => f3164.format(&mut buf, severity, &text),
        Format::Rfc5424 => {
            let params: BTreeMap<String, String> =
                sd.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
            let data = BTreeMap::from([(SD_ID.to_string(), params)]);
            f5424.format(
                &mut buf,
                severity,
                (event_code(event), data, sentence(event)),
            )
        }
    };
    if formatted.is_ok() {
        out.push(buf);
    }
    // The classic pam_unix-shaped failure line, for fail2ban's pam-generic filter and for SIEM
    // parsers written for pam_unix: always RFC 3164, whatever the format of the events.
    if let Outgoing::Event(p) = item
        && let Some(line) = &p.classic
    {
        let mut buf = Vec::new();
        if f3164.format(&mut buf, Severity::LOG_NOTICE, line).is_ok() {
            out.push(buf);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::AuditEntry;

    fn published(event: &str, user: Option<&str>) -> Published {
        Published {
            entry: AuditEntry {
                seq: 7,
                id: "0123456789abcdef0123456789abcdef".into(),
                time: "2026-01-01T00:00:00Z".into(),
                event: event.into(),
                actor_uid: Some(0),
                user: user.map(str::to_owned),
                service: Some("sshd".into()),
                rhost: Some("192.0.2.9".into()),
                tty: None,
                outcome: "denied".into(),
                detail: "a detail with spaces".into(),
            },
            classic: None,
        }
    }

    #[test]
    fn targets_parse_and_bad_ones_are_named() {
        assert_eq!(Target::parse("none"), Ok(Target::None));
        assert_eq!(
            Target::parse("unix:/dev/log"),
            Ok(Target::Unix("/dev/log".into()))
        );
        assert_eq!(
            Target::parse("udp:127.0.0.1:514"),
            Ok(Target::Udp("127.0.0.1:514".into()))
        );
        assert!(
            Target::parse("unix:relative")
                .unwrap_err()
                .contains("relative")
        );
        assert!(Target::parse("http://x").is_err());
    }

    #[test]
    fn rfc3164_carries_key_value_fields_on_authpriv() {
        let msgs = render(
            &Outgoing::Event(Box::new(published("login_failure", Some("bob")))),
            Format::Rfc3164,
            None,
        );
        let text = String::from_utf8(msgs[0].clone()).unwrap();
        // authpriv (10) * 8 + warning (4) = 84
        assert!(text.starts_with("<84>"), "{text}");
        assert!(text.contains("credd["), "{text}");
        assert!(
            text.contains(
                "authentication failure; event=login_failure id=0123456789abcdef0123456789abcdef"
            ),
            "{text}"
        );
        assert!(text.contains("user=bob"), "{text}");
        assert!(text.contains("detail=\"a detail with spaces\""), "{text}");
    }

    /// Issue 15 R11: whatever got into a row, a bidi override or a line separator reaches syslog
    /// (and credd's standard error) escaped, in both formats.
    #[test]
    fn format_and_separator_characters_reach_syslog_escaped() {
        let mut p = published("login_failure", Some("bob\u{202e}"));
        p.entry.detail = "x\u{2028}forged".into();
        for format in [Format::Rfc3164, Format::Rfc5424] {
            let msgs = render(&Outgoing::Event(Box::new(p.clone())), format, None);
            let text = String::from_utf8(msgs[0].clone()).unwrap();
            assert!(
                !text.contains('\u{202e}') && !text.contains('\u{2028}'),
                "{text:?}"
            );
            assert!(
                text.contains("u{202e}") && text.contains("u{2028}"),
                "{text}"
            );
        }
        let line = describe(&p);
        assert!(line.contains("user=\"bob\\\\u{202e}\""), "{line}");
    }

    #[test]
    fn rfc5424_carries_structured_data() {
        let msgs = render(
            &Outgoing::Event(Box::new(published("login_failure", Some("bob")))),
            Format::Rfc5424,
            Some("host1"),
        );
        let text = String::from_utf8(msgs[0].clone()).unwrap();
        assert!(text.starts_with("<84>1 "), "{text}");
        assert!(text.contains(" host1 credd "), "{text}");
        assert!(text.contains("[credd@32473 "), "{text}");
        assert!(text.contains("event=\"login_failure\""), "{text}");
        assert!(text.contains("user=\"bob\""), "{text}");
    }

    #[test]
    fn the_classic_line_follows_a_failure() {
        let mut p = published("login_failure", Some("bob"));
        p.classic = Some("pam_credd(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=192.0.2.9  user=bob".into());
        let msgs = render(&Outgoing::Event(Box::new(p)), Format::Rfc5424, None);
        assert_eq!(msgs.len(), 2);
        let classic = String::from_utf8(msgs[1].clone()).unwrap();
        assert!(classic.contains("credd["), "{classic}");
        assert!(classic.ends_with("rhost=192.0.2.9  user=bob"), "{classic}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let sink = Sink::start(
            Target::Unix("/nonexistent/credd-test.sock".into()),
            Format::Rfc3164,
        );
        let many = (0..QUEUE_CAPACITY + 5)
            .map(|_| Outgoing::Event(Box::new(published("login_success", None))));
        sink.publish(many);
        assert!(sink.dropped() >= 4, "{}", sink.dropped());
    }
}
