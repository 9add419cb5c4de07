//! The rsyslog harness itself, proven with util-linux `logger` only (no credd involved).

use std::process::Command;
use std::time::Duration;

use credd_e2e::rsyslog::{Rsyslog, sd_param};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

fn logger(args: &[&str]) {
    let out = Command::new("logger")
        .args(args)
        .output()
        .expect("run logger (util-linux)");
    assert!(
        out.status.success(),
        "logger {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `logger` sending RFC 3164 to the harness's unix socket, in its default local form
/// `<PRI>Mmm dd hh:mm:ss credd: message` (no hostname, like glibc's `syslog()`).
fn logger_3164(rsyslog: &Rsyslog, priority: &str, message: &str) {
    let socket = rsyslog.socket_path();
    let socket = socket.to_str().expect("UTF-8 socket path");
    logger(&[
        "--socket",
        socket,
        "--socket-errors=on",
        "-t",
        "credd",
        "-p",
        priority,
        message,
    ]);
}

fn str_field<'a>(record: &'a Value, key: &str) -> &'a str {
    record
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string {key:?} in {record}"))
}

#[test]
fn fresh_harness_shows_no_probes_and_no_internal_messages() {
    let rsyslog = Rsyslog::start();
    assert_ne!(rsyslog.udp_port(), 0);
    assert!(rsyslog.socket_path().exists());
    // The probes did reach both files (that is the readiness signal) but are filtered out;
    // rsyslogd's own start message went to rsyslogd.log.
    assert_eq!(rsyslog.lines(), Vec::<String>::new());
    assert_eq!(rsyslog.json(), Vec::<Value>::new());
    let raw = std::fs::read_to_string(rsyslog.messages_path()).expect("messages.log");
    assert!(raw.contains("credd-e2e-probe: ready-unix-"), "{raw}");
    assert!(raw.contains("credd-e2e-probe: ready-udp-"), "{raw}");
    let internal = std::fs::read_to_string(rsyslog.internal_log_path()).expect("rsyslogd.log");
    assert!(internal.contains("start"), "{internal}");
}

#[test]
fn rfc3164_over_the_unix_socket_lands_in_messages_log() {
    let rsyslog = Rsyslog::start();
    logger_3164(&rsyslog, "authpriv.notice", "hello key=value");

    let line = rsyslog
        .wait_for_line(|l| l.contains("hello key=value"), TIMEOUT)
        .unwrap_or_else(|| panic!("not in messages.log: {:?}", rsyslog.lines()));
    assert!(
        line.contains("credd[") || line.contains("credd:"),
        "no credd tag: {line}"
    );
    assert!(line.contains("credd: hello key=value"), "{line}");
    assert!(rsyslog.wait_for("hello key=value", Duration::ZERO));

    let record = rsyslog
        .wait_for_json(|r| r["programname"] == "credd", TIMEOUT)
        .unwrap_or_else(|| panic!("not in json.log: {:?}", rsyslog.json()));
    assert_eq!(str_field(&record, "facility"), "authpriv");
    assert_eq!(record["facility_num"], 10);
    assert_eq!(str_field(&record, "severity"), "notice");
    assert_eq!(record["severity_num"], 5);
    assert_eq!(str_field(&record, "input"), "imuxsock");
    assert_eq!(str_field(&record, "protocol"), "0");
    // rsyslog's $msg for 3164 keeps the space after the tag's colon.
    assert_eq!(str_field(&record, "msg").trim_start(), "hello key=value");
    assert!(record.get("rfc5424-sd").is_none(), "{record}");
}

#[test]
fn rfc5424_over_udp_has_its_structured_data_parsed() {
    let rsyslog = Rsyslog::start();
    let port = rsyslog.udp_port().to_string();
    logger(&[
        "-n",
        "127.0.0.1",
        "-P",
        &port,
        "-d",
        "--rfc5424",
        "-i",
        "-t",
        "credd",
        "--msgid",
        "AUTH",
        "--sd-id",
        "credd@32473",
        "--sd-param",
        "event=\"login_failure\"",
        "--sd-param",
        "user=\"bob\"",
        "-p",
        "authpriv.warning",
        "authentication failed",
    ]);

    let record = rsyslog
        .wait_for_json(|r| r["msg"] == "authentication failed", TIMEOUT)
        .unwrap_or_else(|| panic!("not in json.log: {:?}", rsyslog.json()));
    eprintln!("parsed RFC 5424 record: {record}");
    assert_eq!(
        sd_param(&record, "credd@32473", "event"),
        Some("login_failure")
    );
    assert_eq!(sd_param(&record, "credd@32473", "user"), Some("bob"));
    assert_eq!(
        record["rfc5424-sd"]["credd@32473"]["event"], "login_failure",
        "{record}"
    );
    assert_eq!(str_field(&record, "facility"), "authpriv");
    assert_eq!(record["facility_num"], 10);
    assert_eq!(str_field(&record, "severity"), "warning");
    assert_eq!(record["severity_num"], 4);
    assert_eq!(str_field(&record, "programname"), "credd");
    assert_eq!(str_field(&record, "appname"), "credd");
    assert_eq!(str_field(&record, "msgid"), "AUTH");
    assert!(
        str_field(&record, "procid").parse::<u32>().is_ok(),
        "{record}"
    );
    assert_eq!(str_field(&record, "input"), "imudp");
    assert_eq!(str_field(&record, "protocol"), "1");

    // The same message in the traditional file: a 5424 tag has no colon after it.
    let line = rsyslog
        .wait_for_line(|l| l.contains("authentication failed"), TIMEOUT)
        .unwrap_or_else(|| panic!("not in messages.log: {:?}", rsyslog.lines()));
    assert!(line.contains("credd["), "{line}");
}

/// Stock imuxsock (its special parser) expects no HOSTNAME field on the local socket: a datagram
/// with one, as `logger --rfc3164 --socket` sends, gets the hostname as its program name.
#[test]
fn a_hostname_on_the_unix_socket_becomes_the_tag() {
    let rsyslog = Rsyslog::start();
    rsyslog
        .send_unix("<85>Jan  1 00:00:00 somehost credd: with-hostname")
        .expect("send to the unix socket");
    let record = rsyslog
        .wait_for_json(
            |r| {
                r["msg"]
                    .as_str()
                    .is_some_and(|m| m.contains("with-hostname"))
            },
            TIMEOUT,
        )
        .unwrap_or_else(|| panic!("not in json.log: {:?}", rsyslog.json()));
    assert_eq!(str_field(&record, "programname"), "somehost", "{record}");
    assert_eq!(str_field(&record, "msg"), " credd: with-hostname");
}

#[test]
fn control_characters_are_escaped() {
    let rsyslog = Rsyslog::start();
    rsyslog
        .send_unix("<85>Jan  1 00:00:00 credd: first\nforged: line\tend")
        .expect("send to the unix socket");
    let line = rsyslog
        .wait_for_line(|l| l.contains("first"), TIMEOUT)
        .unwrap_or_else(|| panic!("not in messages.log: {:?}", rsyslog.lines()));
    assert!(
        line.ends_with("credd: first#012forged: line#011end"),
        "{line}"
    );
    assert_eq!(rsyslog.lines().len(), 1, "{:?}", rsyslog.lines());
    let record = rsyslog
        .wait_for_json(|r| r["programname"] == "credd", TIMEOUT)
        .expect("in json.log");
    assert_eq!(str_field(&record, "msg"), " first#012forged: line#011end");
    assert_eq!(str_field(&record, "facility"), "authpriv");
}

#[test]
fn two_harnesses_run_side_by_side() {
    let mut a = Rsyslog::start();
    let b = Rsyslog::start();
    assert_ne!(a.udp_port(), b.udp_port());
    assert_ne!(a.socket_path(), b.socket_path());
    assert_ne!(a.messages_path(), b.messages_path());

    for (name, rsyslog) in [("alpha", &a), ("beta", &b)] {
        logger_3164(rsyslog, "authpriv.notice", &format!("unix-{name}"));
        let port = rsyslog.udp_port().to_string();
        logger(&[
            "-n",
            "127.0.0.1",
            "-P",
            &port,
            "-d",
            "--rfc5424",
            "-t",
            "credd",
            "--sd-id",
            "credd@32473",
            "--sd-param",
            &format!("instance=\"{name}\""),
            "-p",
            "authpriv.warning",
            &format!("udp-{name}"),
        ]);
    }
    for (mine, theirs, rsyslog) in [("alpha", "beta", &a), ("beta", "alpha", &b)] {
        assert!(rsyslog.wait_for(&format!("unix-{mine}"), TIMEOUT));
        assert!(rsyslog.wait_for(&format!("udp-{mine}"), TIMEOUT));
        let record = rsyslog
            .wait_for_json(|r| r["msg"] == format!("udp-{mine}"), TIMEOUT)
            .expect("own 5424 record");
        assert_eq!(sd_param(&record, "credd@32473", "instance"), Some(mine));
        let lines = rsyslog.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines.iter().any(|l| l.contains(theirs)), "{lines:?}");
    }

    // Stopping one leaves the other working; the stopped one's files stay readable.
    a.stop();
    a.stop();
    assert_eq!(a.pid(), None);
    assert_eq!(a.lines().len(), 2);
    logger_3164(&b, "authpriv.notice", "after-alpha-stopped");
    assert!(b.wait_for("after-alpha-stopped", TIMEOUT));
}

#[test]
fn drop_stops_rsyslogd() {
    let rsyslog = Rsyslog::start();
    let pid = rsyslog.pid().expect("running") as libc::pid_t;
    let root = rsyslog.root().to_path_buf();
    drop(rsyslog);
    // Reaped by stop(): the pid no longer exists (or was reused by an unrelated process, which
    // a just-reaped pid practically never is this quickly).
    assert_eq!(unsafe { libc::kill(pid, 0) }, -1);
    assert!(!root.exists());
}
