//! A real, private `rsyslogd` per test: what credd's audit events look like once a stock syslog
//! daemon has received, parsed and written them.
//!
//! Each [`Rsyslog`] owns a temporary directory (mode 0755, so a test client running as another
//! uid can still reach the socket and read the files) and one `rsyslogd -n -f DIR/rsyslog.conf
//! -i DIR/rsyslogd.pid` in the foreground. Everything it creates is in that directory:
//!
//! | path            | what                                                                     |
//! |-----------------|--------------------------------------------------------------------------|
//! | `log.sock`      | imuxsock datagram socket, mode 0666 ([`Rsyslog::socket_path`])           |
//! | `messages.log`  | every received message, `RSYSLOG_TraditionalFileFormat`                  |
//! | `json.log`      | every received message, one JSON object a line ([`Rsyslog::json`])      |
//! | `rsyslogd.log`  | rsyslogd's own messages (start, stop, errors), kept out of the two above |
//! | `rsyslogd.stderr` | rsyslogd's stdout and stderr                                           |
//!
//! # The configuration, and why
//!
//! ```text
//! global(workDirectory="DIR"                 # queue/state files, if any, stay in DIR (not /var/spool/rsyslog)
//!        processInternalMessages="on"        # rsyslogd's own messages go through this instance, not to /dev/log
//!        net.enableDNS="off"                 # no reverse lookups of 127.0.0.1
//!        umask="0022"
//!        parser.escapeControlCharactersOnReceive="on")
//! module(load="imuxsock" SysSock.Use="off")  # no /dev/log: only the private socket below
//! module(load="imudp")
//! module(load="mmpstrucdata")
//! input(type="imuxsock" Socket="DIR/log.sock" ratelimit.interval="0" Annotate="on" ParseTrusted="on")
//! input(type="imudp" address="127.0.0.1" port="PORT")
//! template(name="credd_e2e_json" type="list") { property(name="$!") constant(value="\n") }
//! if $inputname == "rsyslogd" then { action(type="omfile" file="DIR/rsyslogd.log") stop }
//! action(type="mmpstrucdata" sd_name.lowercase="off")
//! set $!facility = $syslogfacility-text;  ... (one `set` per JSON field, see below)
//! action(type="omfile" file="DIR/messages.log" template="RSYSLOG_TraditionalFileFormat")
//! action(type="omfile" file="DIR/json.log" template="credd_e2e_json")
//! if $inputname == "imuxsock" and $!uid == "0" and $!appname == "credd" then {
//!   action(type="omfile" file="DIR/credd-trusted.log" template="RSYSLOG_TraditionalFileFormat") }
//! ```
//!
//! - `Annotate="on" ParseTrusted="on"`: imuxsock asks the kernel for each datagram's sender
//!   (SCM_CREDENTIALS) and puts its pid, uid, gid and process name into `$!pid`, `$!uid`, `$!gid`,
//!   `$!appname` (and `$!exe`, `$!cmd`); unlike the tag and pid in the message, a local user cannot
//!   forge them. `credd-trusted.log` keeps only what a root process named credd sent: the file
//!   docs/audit.md points fail2ban at.
//!
//! - No kernel log (imklog is simply not loaded), no system socket (`SysSock.Use="off"`), no
//!   `$PrivDropToUser`/`$PrivDropToGroup` (rsyslogd keeps running as whoever started it, root on
//!   the test machines), no includes of `/etc/rsyslog.d`. Checked with strace: the only paths
//!   rsyslogd opens for writing are in DIR. Without `processInternalMessages="on"` rsyslog 8.2302
//!   sends its own messages to `/dev/log`, i.e. into the machine's real syslog when there is one.
//! - `ratelimit.interval="0"`: imuxsock rate-limits per process by default; a test that logs a
//!   burst must see every message (imudp has no rate limit).
//! - **Control characters are escaped** (`parser.escapeControlCharactersOnReceive="on"`, rsyslog's
//!   default, stated explicitly): a newline in a message is written as `#012`, a tab as `#011`, in
//!   both files. That is what a stock Debian rsyslog does, so log-injection tests see exactly what
//!   an administrator (and fail2ban) would: one message is always one line.
//! - `sd_name.lowercase="off"`: mmpstrucdata lowercases SD-IDs and parameter names by default
//!   (`credd@32473`/`Event` would become `event`); here they keep the case credd sent.
//! - RFC 3164 is meant for the unix socket, RFC 5424 for UDP: imuxsock's special parser does not
//!   understand 5424 (the `1` version field becomes the program name and the rest lands in `msg`).
//! - `messages.log` is `RSYSLOG_TraditionalFileFormat`,
//!   `"%TIMESTAMP% %HOSTNAME% %syslogtag%%msg:::sp-if-no-1st-sp%%msg:::drop-last-lf%\n"`:
//!   `Nov 26 03:03:31 host credd[123]: hello` for a 3164 message. For a 5424 message the tag is
//!   APP-NAME`[`PROCID`]` *without* a colon (`Nov 26 03:03:56 host credd[16840] text`, or
//!   `... host credd text` when PROCID is `-`). (Debian 12's stock config writes
//!   `RSYSLOG_FileFormat`, RFC 3339 timestamps; fail2ban reads both.)
//!
//! # `json.log`
//!
//! One object per message, built with `set $!name = ...` and written as the whole `$!` tree:
//!
//! | key            | rsyslog property          | example                                   |
//! |----------------|---------------------------|-------------------------------------------|
//! | `rfc5424-sd`   | mmpstrucdata's parse      | `{"credd@32473": {"event": "login_failure"}}` (absent when the message has no SD) |
//! | `facility`     | `$syslogfacility-text`    | `"authpriv"`                              |
//! | `facility_num` | `$syslogfacility`         | `10` (a JSON number)                      |
//! | `severity`     | `$syslogseverity-text`    | `"warning"`                               |
//! | `severity_num` | `$syslogseverity`         | `4` (a JSON number)                       |
//! | `programname`  | `$programname`            | `"credd"` (APP-NAME for 5424)             |
//! | `appname`      | `$app-name`               | `"credd"`                                 |
//! | `tag`          | `$syslogtag`              | `"credd[42]:"` (3164), `"credd[42]"` (5424) |
//! | `procid`       | `$procid`                 | `"42"`, or `"-"`                          |
//! | `msgid`        | `$msgid`                  | `"AUTH"`, or `"-"` (always `-` for 3164)  |
//! | `msg`          | `$msg`                    | verbatim: a 3164 `msg` keeps the space after the colon (`" hello"`) |
//! | `hostname`     | `$hostname`               |                                           |
//! | `timereported` | `$timereported:::date-rfc3339` |                                      |
//! | `protocol`     | `$protocol-version`       | `"0"` for 3164, `"1"` for 5424            |
//! | `input`        | `$inputname`              | `"imuxsock"` or `"imudp"`                 |
//! | `sd_raw`       | `$structured-data`        | the SD text as received, or `"-"`         |
//! | `rawmsg`       | `$rawmsg`                 | the datagram as received                  |
//!
//! Every SD parameter value is a JSON string: `record["rfc5424-sd"]["credd@32473"]["event"]`, or
//! [`sd_param`]`(&record, "credd@32473", "event")`.
//!
//! # Readiness
//!
//! [`Rsyslog::start`] returns once a probe sent through the unix socket and one sent over UDP have
//! both come back out in `messages.log` (and a probe in `json.log`): that round trip is the
//! signal, re-sent every 50 ms, bounded by 20 s. Probes are RFC 3164 messages tagged
//! [`PROBE_TAG`]; [`Rsyslog::lines`] and [`Rsyslog::json`] leave them out. If the UDP port picked
//! turns out to be taken by the time rsyslogd binds it, the harness starts over on another port.

use std::fs::File;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The tag of readiness probes; lines and records carrying it are filtered out.
pub const PROBE_TAG: &str = "credd-e2e-probe";

/// How long rsyslogd may take to pass its readiness round trip.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Interval between probe rounds and between polls of the output files.
const POLL: Duration = Duration::from_millis(50);
/// How often to try again when the UDP port picked was taken before rsyslogd could bind it.
const PORT_ATTEMPTS: usize = 5;
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Rsyslog {
    dir: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    /// Probes sent so far, numbering them `ready-unix-<n>` / `ready-udp-<n>`.
    probes: u64,
}

/// Why one launch attempt failed.
enum LaunchError {
    /// The UDP port was taken before rsyslogd bound it: try another.
    PortTaken,
    Fatal(String),
}

impl Rsyslog {
    /// Starts a private rsyslogd and returns once it is ready (see the module documentation).
    /// Panics, with rsyslogd's own messages, if it does not become ready within 20 s.
    pub fn start() -> Rsyslog {
        let dir = tempfile::Builder::new()
            .prefix("credd-rsyslog-")
            .tempdir()
            .expect("temporary directory");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod rsyslog test dir");
        let root = dir.path().to_str().expect("UTF-8 temporary directory path");
        assert!(
            !root.contains(['"', '\\', '\n']),
            "temporary directory path unusable in rsyslog.conf: {root:?}"
        );
        // sun_path holds 108 bytes including the terminating NUL.
        let socket_len = dir.path().join("log.sock").as_os_str().len();
        assert!(
            socket_len < 108,
            "socket path too long ({socket_len} bytes); set TMPDIR to a shorter directory"
        );
        let mut rsyslog = Rsyslog {
            dir,
            child: None,
            port: 0,
            probes: 0,
        };
        for attempt in 1..=PORT_ATTEMPTS {
            rsyslog.port = free_udp_port();
            match rsyslog.launch() {
                Ok(()) => return rsyslog,
                Err(LaunchError::PortTaken) if attempt < PORT_ATTEMPTS => {
                    rsyslog.stop();
                    rsyslog.clear_outputs();
                }
                Err(LaunchError::PortTaken) => {
                    rsyslog.stop();
                    panic!(
                        "rsyslogd could not bind a free UDP port in {PORT_ATTEMPTS} attempts\n{}",
                        rsyslog.diagnostics()
                    );
                }
                Err(LaunchError::Fatal(why)) => {
                    rsyslog.stop();
                    panic!(
                        "rsyslogd did not become ready: {why}\n{}",
                        rsyslog.diagnostics()
                    );
                }
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// The private directory holding the config, socket and output files.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// imuxsock's datagram socket (RFC 3164), what credd's `syslog()`-style sender writes to.
    pub fn socket_path(&self) -> PathBuf {
        self.root().join("log.sock")
    }

    /// imudp listens on 127.0.0.1 at this port (RFC 5424, or 3164).
    pub fn udp_port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<udp_port>`.
    pub fn udp_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("rsyslog.conf")
    }

    /// Every message in `RSYSLOG_TraditionalFileFormat` (what fail2ban-regex reads).
    pub fn messages_path(&self) -> PathBuf {
        self.root().join("messages.log")
    }

    /// Only what a root process named credd sent to the unix socket (the kernel's credentials,
    /// not the message's claims): the file docs/audit.md points fail2ban at.
    pub fn trusted_path(&self) -> PathBuf {
        self.root().join("credd-trusted.log")
    }

    /// Every message as one JSON object a line.
    pub fn json_path(&self) -> PathBuf {
        self.root().join("json.log")
    }

    /// rsyslogd's own messages (start, stop, errors), kept out of the other two files.
    pub fn internal_log_path(&self) -> PathBuf {
        self.root().join("rsyslogd.log")
    }

    fn pid_path(&self) -> PathBuf {
        self.root().join("rsyslogd.pid")
    }

    fn stderr_path(&self) -> PathBuf {
        self.root().join("rsyslogd.stderr")
    }

    /// The complete lines of `messages.log` so far, probes left out.
    pub fn lines(&self) -> Vec<String> {
        complete_lines(&self.messages_path())
            .into_iter()
            .filter(|line| !is_probe_line(line))
            .collect()
    }

    /// The records of `json.log` so far, probes left out. Panics on a line that is not JSON.
    pub fn json(&self) -> Vec<Value> {
        complete_lines(&self.json_path())
            .into_iter()
            .map(|line| {
                serde_json::from_str::<Value>(&line)
                    .unwrap_or_else(|e| panic!("json.log line is not JSON ({e}): {line}"))
            })
            .filter(|record| !is_probe_record(record))
            .collect()
    }

    /// Polls `messages.log` until a line (probes excluded) contains `needle`.
    /// rsyslog offers no signal when it has written a message, so this sleeps in short steps.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_line(|line| line.contains(needle), timeout)
            .is_some()
    }

    /// Polls `messages.log` until a line (probes excluded) satisfies `matches`; returns it.
    pub fn wait_for_line(
        &self,
        mut matches: impl FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        poll(timeout, || self.lines().into_iter().find(|l| matches(l)))
    }

    /// Polls `json.log` until a record (probes excluded) satisfies `matches`; returns it.
    pub fn wait_for_json(
        &self,
        mut matches: impl FnMut(&Value) -> bool,
        timeout: Duration,
    ) -> Option<Value> {
        poll(timeout, || self.json().into_iter().find(|r| matches(r)))
    }

    /// Sends one datagram to the unix socket, as is (no framing is added).
    pub fn send_unix(&self, datagram: &str) -> std::io::Result<()> {
        UnixDatagram::unbound()?
            .send_to(datagram.as_bytes(), self.socket_path())
            .map(drop)
    }

    /// Sends one datagram to the UDP input, as is (no framing is added).
    pub fn send_udp(&self, datagram: &str) -> std::io::Result<()> {
        UdpSocket::bind("127.0.0.1:0")?
            .send_to(datagram.as_bytes(), self.udp_addr())
            .map(drop)
    }

    /// rsyslogd's own messages and its stderr, for failure messages.
    pub fn diagnostics(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- {} ---\n{}--- {} ---\n{}--- {} ---\n{}",
            self.stderr_path().display(),
            read(self.stderr_path()),
            self.internal_log_path().display(),
            read(self.internal_log_path()),
            self.config_path().display(),
            read(self.config_path()),
        )
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGTERM, then waits for rsyslogd to exit (SIGKILL after 10 s). The files stay readable
    /// until the `Rsyslog` is dropped. Does nothing if already stopped; `Drop` calls it.
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

    fn config(&self) -> String {
        let dir = self.root().display();
        let port = self.port;
        format!(
            r#"# Generated by credd-e2e (tests/src/rsyslog.rs); see that file for the reasons.
global(
  workDirectory="{dir}"
  processInternalMessages="on"
  net.enableDNS="off"
  umask="0022"
  parser.escapeControlCharactersOnReceive="on"
)
module(load="imuxsock" SysSock.Use="off")
module(load="imudp")
module(load="mmpstrucdata")
input(type="imuxsock" Socket="{dir}/log.sock" ratelimit.interval="0" Annotate="on" ParseTrusted="on")
input(type="imudp" address="127.0.0.1" port="{port}")

template(name="credd_e2e_json" type="list") {{
  property(name="$!")
  constant(value="\n")
}}
template(name="credd_e2e_time" type="string" string="%timereported:::date-rfc3339%")

if $inputname == "rsyslogd" then {{
  action(type="omfile" file="{dir}/rsyslogd.log")
  stop
}}

action(type="mmpstrucdata" sd_name.lowercase="off")
set $!facility = $syslogfacility-text;
set $!facility_num = $syslogfacility + 0;
set $!severity = $syslogseverity-text;
set $!severity_num = $syslogseverity + 0;
set $!programname = $programname;
set $!appname = $app-name;
set $!tag = $syslogtag;
set $!procid = $procid;
set $!msgid = $msgid;
set $!msg = $msg;
set $!hostname = $hostname;
set $!timereported = exec_template("credd_e2e_time");
set $!protocol = $protocol-version;
set $!input = $inputname;
set $!sd_raw = $structured-data;
set $!rawmsg = $rawmsg;

action(type="omfile" file="{dir}/messages.log" template="RSYSLOG_TraditionalFileFormat")
action(type="omfile" file="{dir}/json.log" template="credd_e2e_json")
# docs/audit.md#7-fail2ban: only lines the kernel says a root process named credd sent (imuxsock's
# trusted properties, from SCM_CREDENTIALS), which no local user can forge.
if $inputname == "imuxsock" and $!uid == "0" and $!appname == "credd" then {{
  action(type="omfile" file="{dir}/credd-trusted.log" template="RSYSLOG_TraditionalFileFormat")
}}
"#
        )
    }

    /// Writes the config, starts rsyslogd and waits for the probe round trip.
    fn launch(&mut self) -> Result<(), LaunchError> {
        std::fs::write(self.config_path(), self.config()).expect("write rsyslog.conf");
        let out = File::create(self.stderr_path()).expect("create rsyslogd.stderr");
        let err = out.try_clone().expect("clone rsyslogd.stderr");
        let child = Command::new(rsyslogd())
            .arg("-n")
            .arg("-f")
            .arg(self.config_path())
            .arg("-i")
            .arg(self.pid_path())
            .current_dir(self.root())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| LaunchError::Fatal(format!("spawn {}: {e}", rsyslogd().display())))?;
        self.child = Some(child);

        let deadline = Instant::now() + READY_TIMEOUT;
        let (mut unix_seen, mut udp_seen, mut json_seen) = (false, false, false);
        loop {
            self.probes += 1;
            let n = self.probes;
            // Either send may fail before rsyslogd has bound its inputs; the next round retries.
            if !unix_seen {
                let _ = self.send_unix(&format!("<14>Jan  1 00:00:00 {PROBE_TAG}: ready-unix-{n}"));
            }
            if !udp_seen {
                let _ = self.send_udp(&format!("<14>Jan  1 00:00:00 {PROBE_TAG}: ready-udp-{n}"));
            }
            std::thread::sleep(POLL);

            let lines = complete_lines(&self.messages_path());
            let probe = |kind: &str| format!("{PROBE_TAG}: ready-{kind}-");
            unix_seen |= lines.iter().any(|l| l.contains(&probe("unix")));
            udp_seen |= lines.iter().any(|l| l.contains(&probe("udp")));
            json_seen |= complete_lines(&self.json_path())
                .iter()
                .any(|l| l.contains(PROBE_TAG));
            if unix_seen && udp_seen && json_seen {
                return Ok(());
            }

            let child = self.child.as_mut().expect("rsyslogd started");
            if let Ok(Some(status)) = child.try_wait() {
                return Err(LaunchError::Fatal(format!("rsyslogd exited: {status}")));
            }
            let stderr = std::fs::read_to_string(self.stderr_path()).unwrap_or_default();
            if stderr.contains("imudp: Could not create udp listener") {
                return Err(LaunchError::PortTaken);
            }
            if stderr.contains("error during parsing") {
                return Err(LaunchError::Fatal("rsyslog.conf has errors".into()));
            }
            if Instant::now() >= deadline {
                return Err(LaunchError::Fatal(format!(
                    "no probe round trip within {READY_TIMEOUT:?} \
                     (unix socket: {unix_seen}, UDP: {udp_seen}, json.log: {json_seen})"
                )));
            }
        }
    }

    /// Removes what a failed attempt wrote, so the next one starts from empty files.
    fn clear_outputs(&self) {
        for path in [
            self.messages_path(),
            self.json_path(),
            self.internal_log_path(),
            self.stderr_path(),
            self.socket_path(),
            self.pid_path(),
        ] {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `record["rfc5424-sd"][sd_id][param]` as a string: one parsed RFC 5424 SD parameter.
pub fn sd_param<'a>(record: &'a Value, sd_id: &str, param: &str) -> Option<&'a str> {
    record.get("rfc5424-sd")?.get(sd_id)?.get(param)?.as_str()
}

/// The rsyslogd binary: /usr/sbin is not always on a test's PATH.
fn rsyslogd() -> PathBuf {
    ["/usr/sbin/rsyslogd", "/sbin/rsyslogd"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("rsyslogd"))
}

/// A port that was free a moment ago; `start` retries if rsyslogd then finds it taken.
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("bind an ephemeral UDP port")
        .port()
}

/// The newline-terminated lines of `path` (a line rsyslogd is still writing is left out);
/// nothing if the file does not exist yet.
fn complete_lines(path: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(path) else {
        return Vec::new();
    };
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(last) => &bytes[..=last],
        None => return Vec::new(),
    };
    String::from_utf8_lossy(complete)
        .lines()
        .map(str::to_owned)
        .collect()
}

fn is_probe_line(line: &str) -> bool {
    line.contains(&format!(" {PROBE_TAG}: ready-"))
}

fn is_probe_record(record: &Value) -> bool {
    record.get("programname").and_then(Value::as_str) == Some(PROBE_TAG)
}

fn poll<T>(timeout: Duration, mut attempt: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(found) = attempt() {
            return Some(found);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
