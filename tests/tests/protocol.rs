//! Hostile and broken frames against a real daemon: each gets a clear error reply or a closed
//! connection, and the daemon keeps serving everybody else.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_proto::{
    Client, ErrorKind, MAX_FRAME, PROTOCOL_VERSION, ProtoError, Reply, Request, decode_reply,
    read_frame,
};

fn connect(d: &TestDaemon) -> UnixStream {
    let s = UnixStream::connect(d.pam_socket()).expect("connect pam.sock");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn raw_frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn read_reply(s: &mut UnixStream) -> Option<Reply> {
    match read_frame(s) {
        Ok(Some(body)) => Some(decode_reply(&body).expect("daemon replies are valid")),
        Ok(None) => None,
        Err(e) => panic!("reading reply: {e}"),
    }
}

fn assert_still_serving(d: &TestDaemon) {
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    assert_eq!(
        c.call(&Request::Ping).unwrap(),
        Reply::Pong {
            version: PROTOCOL_VERSION
        }
    );
}

fn expect_error(reply: Option<Reply>, kind: ErrorKind) -> String {
    match reply {
        Some(Reply::Error { kind: k, message }) if k == kind => message,
        other => panic!("expected {kind:?} error, got {other:?}"),
    }
}

#[test]
fn oversized_frame_is_refused_and_connection_closed() {
    let d = TestDaemon::start();
    let mut s = connect(&d);
    // Announce 1 MiB but send only the prefix: the daemon must refuse on the length alone.
    s.write_all(&(1024 * 1024u32).to_be_bytes()).unwrap();
    let message = expect_error(read_reply(&mut s), ErrorKind::FrameTooLarge);
    assert!(message.contains(&MAX_FRAME.to_string()), "{message}");
    assert_eq!(read_reply(&mut s), None, "connection should be closed");
    assert_still_serving(&d);
}

#[test]
fn truncated_frame_closes_the_connection() {
    let d = TestDaemon::start();
    let mut s = connect(&d);
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.write_all(br#"{"v":1,"req":"#).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "no reply expected to a truncated frame");
    assert_still_serving(&d);
}

#[test]
fn invalid_json_gets_bad_request() {
    let d = TestDaemon::start();
    let mut s = connect(&d);
    s.write_all(&raw_frame(b"{not json")).unwrap();
    let message = expect_error(read_reply(&mut s), ErrorKind::BadRequest);
    assert!(message.contains("invalid JSON"), "{message}");
    assert_still_serving(&d);
}

#[test]
fn wrong_version_gets_version_mismatch() {
    let d = TestDaemon::start();
    let mut s = connect(&d);
    s.write_all(&raw_frame(br#"{"v":99,"req":"ping"}"#))
        .unwrap();
    let message = expect_error(read_reply(&mut s), ErrorKind::VersionMismatch);
    assert!(message.contains("99"), "{message}");
    assert_still_serving(&d);
}

#[test]
fn unknown_request_gets_bad_request_without_echoing_values() {
    let d = TestDaemon::start();
    let mut s = connect(&d);
    let body = br#"{"v":1,"req":{"authenticate":{"user":"a","secret":"s3cr3t-value","bogus":"s3cr3t-value"}}}"#;
    s.write_all(&raw_frame(body)).unwrap();
    let message = expect_error(read_reply(&mut s), ErrorKind::BadRequest);
    assert!(!message.contains("s3cr3t-value"), "{message}");
    assert_still_serving(&d);
}

#[test]
fn admin_requests_are_refused_on_the_pam_socket() {
    let d = TestDaemon::start();
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    let reply = c
        .call(&Request::UserRemove {
            user: "alice".into(),
        })
        .unwrap();
    assert!(
        matches!(
            reply,
            Reply::Error {
                kind: ErrorKind::NotPermitted,
                ..
            }
        ),
        "{reply:?}"
    );
}

#[test]
fn control_characters_in_names_are_refused() {
    let d = TestDaemon::start();
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    let reply = c
        .call(&Request::AccountCheck(credd_proto::AccountRequest {
            user: "alice\nforged log line".into(),
            service: "sshd".into(),
        }))
        .unwrap();
    assert!(
        matches!(
            reply,
            Reply::Error {
                kind: ErrorKind::BadRequest,
                ..
            }
        ),
        "{reply:?}"
    );
    assert!(!d.log().join("\n").contains("forged log line"));
}

/// Issue 15 R11: format and separator characters in the user name or a claimed PAM item (a bidi
/// override in rhost, a line separator in tty) are refused like control characters, before
/// anything is logged.
#[test]
fn format_and_separator_characters_in_names_and_pam_items_are_refused() {
    let d = TestDaemon::start();
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    let base = credd_proto::AuthRequest {
        user: "alice".into(),
        secret: credd_proto::Secret::new("x".into()),
        service: "sshd".into(),
        rhost: None,
        tty: None,
        ruser: None,
    };
    for (what, req) in [
        (
            "user name",
            credd_proto::AuthRequest {
                user: "alice\u{202e}nimda".into(),
                ..base.clone()
            },
        ),
        (
            "rhost",
            credd_proto::AuthRequest {
                rhost: Some("192.0.2.1\u{202e}9.2.0.291".into()),
                ..base.clone()
            },
        ),
        (
            "tty",
            credd_proto::AuthRequest {
                tty: Some("ssh\u{2028}forged".into()),
                ..base.clone()
            },
        ),
        (
            "ruser",
            credd_proto::AuthRequest {
                ruser: Some("root\u{200b}".into()),
                ..base.clone()
            },
        ),
    ] {
        let reply = c.call(&Request::Authenticate(req)).unwrap();
        match &reply {
            Reply::Error {
                kind: ErrorKind::BadRequest,
                message,
            } => assert!(
                message.starts_with(&format!("{what} contains the character '\\u{{")),
                "{what}: {message}"
            ),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert!(
        !d.log()
            .join("\n")
            .contains(['\u{202e}', '\u{200b}', '\u{2028}']),
        "{:?}",
        d.log()
    );
}

#[test]
fn one_connection_carries_several_requests() {
    let d = TestDaemon::start();
    let mut c = Client::connect(&d.pam_socket(), Duration::from_secs(5)).unwrap();
    for _ in 0..3 {
        assert!(matches!(
            c.call(&Request::Ping).unwrap(),
            Reply::Pong { .. }
        ));
    }
}

#[test]
fn client_reports_an_absent_daemon_as_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let err = Client::connect(&dir.path().join("none.sock"), Duration::from_secs(1))
        .err()
        .expect("connect must fail");
    assert!(err.is_unavailable(), "{err}");
    assert!(matches!(err, ProtoError::Io(_)));
}

#[test]
fn a_peer_trickling_bytes_is_cut_off_at_the_idle_timeout() {
    // One deadline per frame: a byte every 300 ms never trips a 1 s per-read timeout, but the
    // whole 1000-byte frame would take five minutes. The daemon must close the connection.
    let d =
        TestDaemon::start_with("[hashing]\niterations = 1000\n[limits]\nidle_timeout = \"1s\"\n");
    let mut s = connect(&d);
    s.write_all(&1000u32.to_be_bytes()).unwrap();
    let mut closed = false;
    for _ in 0..40 {
        // The trickle is the attack itself, not synchronisation.
        std::thread::sleep(Duration::from_millis(300));
        if s.write_all(b" ").is_err() {
            closed = true;
            break;
        }
    }
    assert!(
        closed,
        "the daemon kept a trickling connection open for 12 s"
    );
    assert_still_serving(&d);
}
