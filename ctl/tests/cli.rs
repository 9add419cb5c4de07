//! credctl as a process against a scripted stand-in for credd: exit statuses, the one-line error
//! contract and the exact output formats. Tests against the real daemon live in the workspace's
//! `tests/` crate.

use std::io::Write;
use std::net::UdpSocket;
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use credd_proto::{
    AccountStatus, AuditEntry, AuditReport, CheckReport, DaemonCounters, DecodedRequest, ErrorKind,
    FailureInfo, ImportAction, ImportOptions, ImportProblem, ImportRow, ImportSkip, ImportSummary,
    IssuedCode, MAX_FRAME, Reply, Request, ResetIssued, Secret, SessionInfo, ShadowOptions, Target,
    UserInfo, decode_request_full, encode_reply, read_frame, valid_request_id, write_frame,
};

/// A private directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "credctl-test-{}-{}",
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

/// Serves one connection: answers its first request with `replies`, and hands the request back.
fn fake_credd(socket: &Path, replies: Vec<Reply>) -> JoinHandle<Request> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || serve_one(&listener, &replies).request)
}

/// As [`fake_credd`], handing back the request id of the envelope too.
fn fake_credd_with_id(socket: &Path, replies: Vec<Reply>) -> JoinHandle<(Request, Option<String>)> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let decoded = serve_one(&listener, &replies);
        (decoded.request, decoded.id)
    })
}

fn serve_one(listener: &UnixListener, replies: &[Reply]) -> DecodedRequest {
    let (mut conn, _) = listener.accept().unwrap();
    let body = read_frame(&mut conn).unwrap().expect("a request");
    let decoded = decode_request_full(&body).unwrap();
    for reply in replies {
        write_frame(&mut conn, &encode_reply(reply).unwrap()).unwrap();
    }
    decoded
}

/// credctl with syslog off, so that no test writes to the machine's log.
fn credctl(socket: &Path, args: &[&str], stdin: &[u8]) -> Output {
    credctl_env(socket, args, stdin, &[("CREDCTL_SYSLOG", "none")])
}

fn credctl_env(socket: &Path, args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("CREDD_ADMIN_SOCKET")
        .env_remove("CREDCTL_SYSLOG")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // credctl may exit without reading (a usage error); a broken pipe here is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

fn info(user: &str, uid: Option<u32>) -> UserInfo {
    UserInfo {
        user: user.into(),
        uid,
        hash_scheme: Some("pbkdf2-sha256".into()),
        iterations: Some(600_000),
        disabled: false,
        must_change: false,
        created_at: "2025-01-02T03:04:05Z".into(),
        updated_at: "2025-01-02T03:04:05Z".into(),
    }
}

fn status_of(user: &str, locked: bool) -> AccountStatus {
    AccountStatus {
        user: user.into(),
        uid: Some(1001),
        locked,
        failures: if locked { 5 } else { 1 },
        unlock: locked.then(|| "time".into()),
        locked_until: locked.then(|| "2025-01-02T03:19:05Z".into()),
        locked_since: locked.then(|| "2025-01-02T03:04:05Z".into()),
        lock_kind: locked.then(|| "failures".into()),
        lock_reason: None,
        last_failure: Some(FailureInfo {
            time: "2025-01-02T03:04:05Z".into(),
            service: "sshd".into(),
            rhost: Some("203.0.113.9".into()),
            tty: None,
            peer_uid: 0,
        }),
    }
}

#[test]
fn unreachable_daemon_is_one_line_and_exit_1() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let out = credctl(&socket, &["user", "list"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "credctl: cannot reach credd at {}: No such file or directory (is credd running?)\n",
            socket.display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn socket_comes_from_the_environment() {
    let dir = TempDir::new();
    let socket = dir.0.join("from-env.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_credctl"))
        .args(["user", "show", "alice"])
        .env("CREDD_ADMIN_SOCKET", &socket)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&socket.display().to_string()),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors_exit_2_before_connecting() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    for (args, stdin) in [
        (&["user", "show", "a b"][..], &b""[..]),
        (&["user", "remove", "--", "-rf"], b""),
        (&["passwd", "alice", "--password-stdin"], b"\n"),
        (&["passwd", "alice", "--password-stdin"], b"one\ntwo\n"),
        (&["user", "add", "alice", "--password-stdin"], b""),
    ] {
        let out = credctl(&socket, args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = stderr(&out);
        assert!(
            err.starts_with("credctl: ") && err.lines().count() == 1,
            "{err}"
        );
    }
    // clap's own usage errors.
    for args in [
        &["passwd", "alice"][..],
        &["user", "frob"],
        &["user", "add"],
    ] {
        assert_eq!(
            credctl(&socket, args, b"").status.code(),
            Some(2),
            "{args:?}"
        );
    }
}

#[test]
fn user_add_sends_the_password_and_confirms() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(
        &socket,
        vec![Reply::User(Box::new(info("alice", Some(1001))))],
    );
    let out = credctl(
        &socket,
        &[
            "user",
            "add",
            "alice",
            "--uid",
            "1001",
            "--password-stdin",
            "--must-change",
        ],
        b"s3cret pass\r\n",
    );
    assert_eq!(stderr(&out), "");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "added alice (uid 1001)\n");
    match server.join().unwrap() {
        Request::UserAdd {
            user,
            uid,
            password,
            must_change,
        } => {
            assert_eq!(
                (user.as_str(), uid, must_change),
                ("alice", Some(1001), true)
            );
            assert_eq!(password.unwrap().expose(), "s3cret pass");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn user_add_without_password_sends_none() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![Reply::User(Box::new(info("bob", None)))]);
    let out = credctl(&socket, &["user", "add", "bob"], b"ignored\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "added bob (no uid)\n");
    assert!(matches!(
        server.join().unwrap(),
        Request::UserAdd {
            password: None,
            must_change: false,
            ..
        }
    ));
}

#[test]
fn confirmations() {
    let cases: [(&[&str], &[u8], &str); 5] = [
        (&["user", "remove", "alice"], b"", "removed alice\n"),
        (&["user", "disable", "alice"], b"", "disabled alice\n"),
        (&["user", "enable", "alice"], b"", "enabled alice\n"),
        (
            &["passwd", "alice", "--password-stdin"],
            b"pw\n",
            "password set for alice\n",
        ),
        (
            &["passwd", "alice", "--password-stdin", "--must-change"],
            b"pw\n",
            "password set for alice (must change at next login)\n",
        ),
    ];
    for (args, stdin, expected) in cases {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let server = fake_credd(&socket, vec![Reply::Ok]);
        let out = credctl(&socket, args, stdin);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected);
        let request = server.join().unwrap();
        match (args[0], args.get(1).copied(), request) {
            ("user", Some("remove"), Request::UserRemove { user }) => assert_eq!(user, "alice"),
            ("user", Some("disable"), Request::UserSetDisabled { disabled, .. }) => {
                assert!(disabled)
            }
            ("user", Some("enable"), Request::UserSetDisabled { disabled, .. }) => {
                assert!(!disabled)
            }
            ("passwd", _, Request::SetPassword { password, .. }) => {
                assert_eq!(password.expose(), "pw")
            }
            (_, _, other) => panic!("{args:?} sent {other:?}"),
        }
    }
}

#[test]
fn daemon_errors_print_their_message_and_exit_1() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::Error {
            kind: ErrorKind::NotFound,
            message: "no such user: bob".into(),
        }],
    );
    let out = credctl(&socket, &["user", "show", "bob"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: no such user: bob\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn user_show_human_and_json() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::User(Box::new(info("alice", Some(1001))))],
    );
    let out = credctl(&socket, &["user", "show", "alice"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout(&out),
        "user: alice\nuid: 1001\nhash_scheme: pbkdf2-sha256\niterations: 600000\ndisabled: no\n\
         must_change: no\ncreated_at: 2025-01-02T03:04:05Z\nupdated_at: 2025-01-02T03:04:05Z\n"
    );

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::User(Box::new(info("alice", None)))]);
    let out = credctl(&socket, &["user", "show", "alice", "--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let shown: UserInfo = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, info("alice", None));
}

#[test]
fn user_list_streams_a_table_and_a_json_array() {
    let rows = |n: u32| {
        let mut replies: Vec<Reply> = (0..n)
            .map(|i| Reply::Item(Box::new(info(&format!("user{i}"), Some(2000 + i)))))
            .collect();
        replies.push(Reply::End { count: n as u64 });
        replies
    };

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows(2));
    let out = credctl(&socket, &["user", "list"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "USER   UID   SCHEME         DISABLED  MUST_CHANGE\n\
         user0  2000  pbkdf2-sha256  no        no\n\
         user1  2001  pbkdf2-sha256  no        no\n"
    );
    assert!(matches!(server.join().unwrap(), Request::UserList));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, rows(3000));
    let out = credctl(&socket, &["user", "list", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: Vec<UserInfo> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 3000);
    assert_eq!(listed[2999].user, "user2999");

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, rows(0));
    let out = credctl(&socket, &["user", "list", "--json"], b"");
    assert_eq!(stdout(&out), "[]\n");
}

#[test]
fn refused_or_broken_listings_exit_1() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::Error {
            kind: ErrorKind::NotPermitted,
            message: "administrative requests are served to root on admin.sock only".into(),
        }],
    );
    let out = credctl(&socket, &["user", "list", "--json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("served to root") && err.lines().count() == 1,
        "{err}"
    );

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    // The connection closes after one row, without an end marker.
    let _server = fake_credd(&socket, vec![Reply::Item(Box::new(info("a", None)))]);
    let out = credctl(&socket, &["user", "list", "--json"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    // A cut listing never looks like a complete JSON document.
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_err());
}

#[test]
fn status_of_one_account_human_and_json() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(
        &socket,
        vec![Reply::Status(Box::new(status_of("alice", true)))],
    );
    let out = credctl(&socket, &["status", "alice"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "user: alice\nuid: 1001\nlocked: yes\nfailures: 5\nunlock: time\n\
         locked_since: 2025-01-02T03:04:05Z\nlocked_until: 2025-01-02T03:19:05Z\n\
         lock_kind: failures\nlock_reason: -\n\
         last_failure: 2025-01-02T03:04:05Z service=sshd rhost=203.0.113.9 peer_uid=0\n"
    );
    match server.join().unwrap() {
        Request::Status { target } => assert_eq!(target, Some(Target::Name("alice".into()))),
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(
        &socket,
        vec![Reply::Status(Box::new(status_of("alice", false)))],
    );
    let out = credctl(&socket, &["status", "--uid", "1001", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_object());
    assert_eq!(v["user"], "alice");
    assert_eq!(v["locked"], false);
    assert_eq!(v["failures"], 1);
    assert!(v["unlock"].is_null() && v["locked_until"].is_null());
    assert_eq!(v["last_failure"]["time"], "2025-01-02T03:04:05Z");
    let shown: AccountStatus = serde_json::from_value(v).unwrap();
    assert_eq!(shown, status_of("alice", false));
    match server.join().unwrap() {
        Request::Status { target } => assert_eq!(target, Some(Target::Uid(1001))),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn status_of_an_unknown_account_exits_1() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::UnknownUser]);
    let out = credctl(&socket, &["status", "--uid", "4242"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: no such user: uid 4242\n");
    assert!(out.stdout.is_empty());
}

#[test]
fn status_listing_streams_a_table_and_a_json_array() {
    let rows = || {
        vec![
            Reply::StatusItem(Box::new(status_of("alice", true))),
            Reply::StatusItem(Box::new(AccountStatus {
                uid: None,
                last_failure: None,
                ..status_of("bob", false)
            })),
            Reply::End { count: 2 },
        ]
    };

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows());
    let out = credctl(&socket, &["status"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "USER   UID   LOCKED  FAILURES  UNLOCK  LOCKED_UNTIL          LAST_FAILURE\n\
         alice  1001  yes     5         time    2025-01-02T03:19:05Z  2025-01-02T03:04:05Z\n\
         bob    -     no      1         -       -                     -\n"
    );
    assert!(matches!(
        server.join().unwrap(),
        Request::Status { target: None }
    ));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, rows());
    let out = credctl(&socket, &["status", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let listed: Vec<AccountStatus> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0], status_of("alice", true));
    assert_eq!(listed[1].user, "bob");

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::End { count: 0 }]);
    let out = credctl(&socket, &["status"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "USER  UID  LOCKED  FAILURES  UNLOCK  LOCKED_UNTIL  LAST_FAILURE\n"
    );

    // A user listing row in a status listing is a broken listing.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![
            Reply::Item(Box::new(info("a", None))),
            Reply::End { count: 1 },
        ],
    );
    let out = credctl(&socket, &["status", "--json"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("credctl: status failed: ") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn lock_and_unlock_confirm() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["lock", "alice", "--reason", "left the company"],
            "locked alice\n",
        ),
        (&["lock", "--uid", "1001"], "locked uid 1001\n"),
        (&["unlock", "alice"], "unlocked alice\n"),
        (&["unlock", "--uid", "1001"], "unlocked uid 1001\n"),
    ];
    for (args, expected) in cases {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let server = fake_credd(&socket, vec![Reply::Ok]);
        let out = credctl(&socket, args, b"");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected);
        let by_uid = args.contains(&"--uid");
        let expected_target = if by_uid {
            Target::Uid(1001)
        } else {
            Target::Name("alice".into())
        };
        match (args[0], server.join().unwrap()) {
            ("lock", Request::Lock { target, reason }) => {
                assert_eq!(target, expected_target);
                let expected_reason = (!by_uid).then(|| "left the company".to_string());
                assert_eq!(reason, expected_reason);
            }
            ("unlock", Request::Unlock { target }) => assert_eq!(target, expected_target),
            (_, other) => panic!("{args:?} sent {other:?}"),
        }
    }
}

#[test]
fn lock_refusals_exit_1_and_usage_errors_exit_2() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::Error {
            kind: ErrorKind::NotFound,
            message: "no account has uid 4242".into(),
        }],
    );
    let out = credctl(&socket, &["unlock", "--uid", "4242"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: no account has uid 4242\n");
    assert!(out.stdout.is_empty());

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::UnknownUser]);
    let out = credctl(&socket, &["lock", "bob"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: no such user: bob\n");

    // Nothing listens here: every case must be refused before connecting.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let long = "r".repeat(256);
    for args in [
        &["lock"][..],
        &["unlock"],
        &["lock", "alice", "--uid", "1001"],
        &["unlock", "alice", "--uid", "1001"],
        &["lock", "a b"],
        &["unlock", "--", "-rf"],
        &["lock", "alice", "--reason", "one\ntwo"],
        &["lock", "alice", "--reason", &long],
        &["status", "alice", "--uid", "1001"],
        &["status", "--daemon", "alice"],
        &["status", "a:b"],
    ] {
        let out = credctl(&socket, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).starts_with("error: ") || stderr(&out).starts_with("credctl: "));
    }
}

#[test]
fn daemon_status_human_and_json() {
    let counters = DaemonCounters {
        uptime_seconds: 86_400,
        verifications: 1234,
        busy_replies: 0,
        locked_replies: 7,
        rate_limited_replies: 2,
        refused_peers: 1,
        dropped_syslog_events: 0,
        dropped_audit_events: 3,
        accounts_per_scheme: [("pbkdf2-sha256".to_string(), 40), ("none".to_string(), 2)]
            .into_iter()
            .collect(),
    };

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![Reply::Daemon(Box::new(counters.clone()))]);
    let out = credctl(&socket, &["status", "--daemon", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_object());
    assert_eq!(v["verifications"], 1234);
    assert_eq!(v["refused_peers"], 1);
    assert_eq!(v["accounts_per_scheme"]["pbkdf2-sha256"], 40);
    let shown: DaemonCounters = serde_json::from_value(v).unwrap();
    assert_eq!(shown, counters);
    assert!(matches!(server.join().unwrap(), Request::DaemonStatus));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::Daemon(Box::new(counters))]);
    let out = credctl(&socket, &["status", "--daemon"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "uptime_seconds: 86400\nverifications: 1234\nbusy_replies: 0\nlocked_replies: 7\n\
         rate_limited_replies: 2\nrefused_peers: 1\ndropped_syslog_events: 0\n\
         dropped_audit_events: 3\naccounts[none]: 2\naccounts[pbkdf2-sha256]: 40\n"
    );
}

const CODE: &str = "7KQ4-M2XD-9RTV-H3PE";

fn issued(user: &str, sessions_revoked: u64) -> Reply {
    Reply::ResetIssued(Box::new(ResetIssued {
        user: user.into(),
        code: Secret::new(CODE.into()),
        expires_at: "2025-01-02T03:19:05Z".into(),
        sessions_revoked,
    }))
}

#[test]
fn reset_prints_only_the_code_on_stdout() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![issued("alice", 2)]);
    let out = credctl(
        &socket,
        &["reset", "alice", "--ttl", "1h30m", "--keep-password"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{CODE}\n"));
    assert_eq!(
        stderr(&out),
        "code for alice expires at 2025-01-02T03:19:05Z (2 sessions revoked)\n"
    );
    match server.join().unwrap() {
        Request::Reset {
            target,
            ttl_seconds,
            keep_password,
        } => {
            assert_eq!(target, Target::Name("alice".into()));
            assert_eq!((ttl_seconds, keep_password), (Some(5400), true));
        }
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![issued("bob", 0)]);
    let out = credctl(&socket, &["reset", "--uid", "1002"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{CODE}\n"));
    assert_eq!(
        stderr(&out),
        "code for bob expires at 2025-01-02T03:19:05Z (0 sessions revoked)\n"
    );
    match server.join().unwrap() {
        Request::Reset {
            target,
            ttl_seconds,
            keep_password,
        } => {
            assert_eq!(target, Target::Uid(1002));
            assert_eq!((ttl_seconds, keep_password), (None, false));
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn reset_json_is_one_object() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![issued("alice", 3)]);
    let out = credctl(&socket, &["reset", "alice", "--json", "--ttl", "15m"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let text = stdout(&out);
    assert!(text.starts_with("{\n  \"user\": \"alice\",\n"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v.is_object());
    assert_eq!(v["user"], "alice");
    assert_eq!(v["code"], CODE);
    assert_eq!(v["expires_at"], "2025-01-02T03:19:05Z");
    assert_eq!(v["sessions_revoked"], 3);
    assert!(matches!(
        server.join().unwrap(),
        Request::Reset {
            ttl_seconds: Some(900),
            ..
        }
    ));
}

#[test]
fn reset_refusals_exit_1_with_one_line() {
    let cases = [
        (
            Reply::RateLimited {
                unknown: false,
                retry_after: None,
            },
            "credctl: reset refused: too many resets (rate limit); see credd's log\n",
        ),
        (
            Reply::Error {
                kind: ErrorKind::NotPermitted,
                message: "only root may reset root".into(),
            },
            "credctl: only root may reset root\n",
        ),
        (Reply::UnknownUser, "credctl: no such user: alice\n"),
    ];
    for (reply, expected) in cases {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let _server = fake_credd(&socket, vec![reply]);
        let out = credctl(&socket, &["reset", "alice"], b"");
        assert_eq!(out.status.code(), Some(1), "{expected}");
        assert_eq!(stderr(&out), expected);
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn reset_whose_code_cannot_be_written_fails() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![issued("alice", 0)]);
    // Nobody reads the code: unlike a listing cut short by `| head`, that is a failure. The read
    // end is closed before credctl starts, so its write fails whatever the timing.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = Command::new(env!("CARGO_BIN_EXE_credctl"))
        .arg("--socket")
        .arg(&socket)
        .args(["reset", "alice"])
        .env_remove("CREDD_ADMIN_SOCKET")
        .env("CREDCTL_SYSLOG", "none")
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "credctl: the reset was done but its code could not be written: Broken pipe; \
         reset again\n"
    );
}

#[test]
fn reset_and_modify_user_state_usage_errors_exit_2() {
    // Nothing listens here: every case must be refused before connecting.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    for args in [
        &["reset"][..],
        &["reset", "alice", "--uid", "1001"],
        &["reset", "a b"],
        &["reset", "alice", "--ttl", "30s"],
        &["reset", "alice", "--ttl", "25h"],
        &["reset", "alice", "--ttl", "15"],
        &["sessions", "a:b"],
        &["sessions", "alice", "bob"],
        &["--modify-user-state"],
        &["--modify-user-state", "--uid=5"],
        &["--modify-user-state", "--action=reset"],
        &["--modify-user-state", "--uid=5", "--action=delete"],
        &["--modify-user-state", "--uid=5", "--action=lock", "--json"],
        &["--modify-user-state", "--uid=5", "--action=lock", "status"],
        &["--uid=5", "--action=lock"],
        &["lock", "--uid=5", "--modify-user-state", "--action=lock"],
    ] {
        let out = credctl(&socket, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            stderr(&out).starts_with("error: ") || stderr(&out).starts_with("credctl: "),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = credctl(&socket, &["reset", "alice", "--ttl", "2d"], b"");
    assert!(
        stderr(&out).contains("90s, 15m, 1h or 1h30m"),
        "{}",
        stderr(&out)
    );
    let out = credctl(&socket, &["reset", "alice", "--ttl", "59s"], b"");
    assert!(stderr(&out).contains("from 1m to 24h"), "{}", stderr(&out));
}

#[test]
fn modify_user_state_is_reset_lock_or_unlock() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![issued("alice", 1)]);
    let out = credctl(
        &socket,
        &["--modify-user-state", "--uid=5", "--action=reset"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("{CODE}\n"));
    assert_eq!(
        stderr(&out),
        "code for alice expires at 2025-01-02T03:19:05Z (1 sessions revoked)\n"
    );
    match server.join().unwrap() {
        Request::Reset {
            target,
            ttl_seconds,
            keep_password,
        } => {
            assert_eq!(target, Target::Uid(5));
            assert_eq!((ttl_seconds, keep_password), (None, false));
        }
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![issued("alice", 1)]);
    let out = credctl(
        &socket,
        &[
            "--modify-user-state",
            "--uid",
            "5",
            "--action",
            "reset",
            "--json",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (v["user"].as_str(), v["code"].as_str()),
        (Some("alice"), Some(CODE))
    );
    assert!(matches!(
        server.join().unwrap(),
        Request::Reset {
            target: Target::Uid(5),
            ..
        }
    ));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::RateLimited {
            unknown: false,
            retry_after: None,
        }],
    );
    let out = credctl(
        &socket,
        &["--modify-user-state", "--uid=5", "--action=reset"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "credctl: reset refused: too many resets (rate limit); see credd's log\n"
    );

    for (action, expected) in [("lock", "locked uid 5\n"), ("unlock", "unlocked uid 5\n")] {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let server = fake_credd(&socket, vec![Reply::Ok]);
        let out = credctl(
            &socket,
            &[
                "--modify-user-state",
                "--uid=5",
                &format!("--action={action}"),
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(0), "{action}: {}", stderr(&out));
        assert_eq!(stdout(&out), expected);
        match (action, server.join().unwrap()) {
            ("lock", Request::Lock { target, reason }) => {
                assert_eq!((target, reason), (Target::Uid(5), None))
            }
            ("unlock", Request::Unlock { target }) => assert_eq!(target, Target::Uid(5)),
            (_, other) => panic!("{action} sent {other:?}"),
        }
    }
}

fn session(id: u64, user: &str, revoked: bool) -> SessionInfo {
    SessionInfo {
        id,
        user: user.into(),
        service: "sshd".into(),
        tty: (!revoked).then(|| "ssh".into()),
        rhost: (!revoked).then(|| "203.0.113.9".into()),
        pid: 4242,
        pid_start: Some(123_456),
        audit_session: (!revoked).then_some(7),
        loginuid: Some(1001),
        opened_at: "2025-01-02T03:04:05Z".into(),
        revoked_at: revoked.then(|| "2025-01-02T04:00:00Z".into()),
        revoked_reason: revoked.then(|| "reset".into()),
    }
}

#[test]
fn sessions_stream_a_table_and_a_json_array() {
    let rows = || {
        vec![
            Reply::SessionItem(Box::new(session(1, "alice", false))),
            Reply::SessionItem(Box::new(session(12, "alice", true))),
            Reply::End { count: 2 },
        ]
    };

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows());
    let out = credctl(&socket, &["sessions", "alice"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ID  USER   SERVICE  TTY  RHOST        PID   AUDIT_SESSION  OPENED_AT             REVOKED_AT\n\
         1   alice  sshd     ssh  203.0.113.9  4242  7              2025-01-02T03:04:05Z  -\n\
         12  alice  sshd     -    -            4242  -              2025-01-02T03:04:05Z  2025-01-02T04:00:00Z\n"
    );
    match server.join().unwrap() {
        Request::Sessions { user } => assert_eq!(user.as_deref(), Some("alice")),
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows());
    let out = credctl(&socket, &["sessions", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("[\n{\"id\":1,"), "{text}");
    let listed: Vec<SessionInfo> = serde_json::from_str(&text).unwrap();
    assert_eq!(
        listed,
        vec![session(1, "alice", false), session(12, "alice", true)]
    );
    assert!(matches!(
        server.join().unwrap(),
        Request::Sessions { user: None }
    ));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::End { count: 0 }]);
    let out = credctl(&socket, &["sessions", "--json"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "[]\n");

    // A status row in a session listing is a broken listing.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![
            Reply::StatusItem(Box::new(status_of("alice", false))),
            Reply::End { count: 1 },
        ],
    );
    let out = credctl(&socket, &["sessions"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("credctl: sessions failed: ") && err.lines().count() == 1,
        "{err}"
    );
}

/// A syslog socket for credctl to write to, as `CREDCTL_SYSLOG=unix:PATH`.
struct Syslog {
    socket: UnixDatagram,
    setting: String,
}

impl Syslog {
    fn bind(dir: &Path) -> Syslog {
        let path = dir.join("log.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_nonblocking(true).unwrap();
        Syslog {
            socket,
            setting: format!("unix:{}", path.display()),
        }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("CREDCTL_SYSLOG", self.setting.as_str())]
    }

    /// Every message received so far; credctl has exited, so that is all it wrote.
    fn messages(&self) -> Vec<String> {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => all.push(String::from_utf8(buf[..n].to_vec()).unwrap()),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return all,
                Err(e) => panic!("{e}"),
            }
        }
    }

    /// The one message credctl wrote.
    fn only_message(&self) -> String {
        let mut all = self.messages();
        assert_eq!(all.len(), 1, "{all:?}");
        all.pop().unwrap()
    }
}

/// The request id a fake credd received: present and 32 lower-case hex digits.
fn sent_id(id: Option<String>) -> String {
    let id = id.expect("an administrative write carries a request id");
    assert!(valid_request_id(&id), "{id}");
    id
}

#[test]
fn user_remove_sends_an_id_and_logs_it_to_syslog() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let syslog = Syslog::bind(&dir.0);
    let server = fake_credd_with_id(&socket, vec![Reply::Ok]);
    let out = credctl_env(&socket, &["user", "remove", "alice"], b"", &syslog.env());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "removed alice\n");
    assert_eq!(stderr(&out), "");
    let (request, id) = server.join().unwrap();
    assert!(matches!(request, Request::UserRemove { user } if user == "alice"));
    let id = sent_id(id);

    let message = syslog.only_message();
    // authpriv (10) × 8 + info (6).
    assert!(message.starts_with("<86>"), "{message}");
    assert!(message.contains(" credctl["), "{message}");
    assert!(
        message.contains("]: administrative action; action=user_remove user=alice by_uid="),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" outcome=ok id={id}")),
        "{message}"
    );
}

#[test]
fn every_administrative_write_sends_an_id_and_logs_it_without_secrets() {
    /// Arguments, standard input, credd's reply, the syslog priority and the fields expected.
    type Case = (
        &'static [&'static str],
        &'static [u8],
        Reply,
        &'static str,
        &'static str,
    );
    let cases: [Case; 9] = [
        (
            &["user", "add", "alice", "--password-stdin"],
            b"s3cret pass\n",
            Reply::User(Box::new(info("alice", Some(1001)))),
            "<86>",
            "action=user_add user=alice ",
        ),
        (
            &["user", "remove", "alice"],
            b"",
            Reply::Ok,
            "<86>",
            "action=user_remove user=alice ",
        ),
        (
            &["user", "disable", "alice"],
            b"",
            Reply::Ok,
            "<86>",
            "action=user_disable user=alice ",
        ),
        (
            &["user", "enable", "alice"],
            b"",
            Reply::Ok,
            "<86>",
            "action=user_enable user=alice ",
        ),
        (
            &["passwd", "alice", "--password-stdin"],
            b"s3cret pass\n",
            Reply::Ok,
            "<86>",
            "action=passwd user=alice ",
        ),
        // authpriv × 8 + notice (5) for what takes an account away from its owner.
        (
            &["lock", "alice"],
            b"",
            Reply::Ok,
            "<85>",
            "action=lock user=alice ",
        ),
        (
            &["unlock", "--uid", "1001"],
            b"",
            Reply::Ok,
            "<86>",
            "action=unlock uid=1001 ",
        ),
        (
            &["reset", "alice"],
            b"",
            issued("alice", 0),
            "<85>",
            "action=reset user=alice ",
        ),
        (
            &["--modify-user-state", "--uid=5", "--action=reset"],
            b"",
            issued("alice", 0),
            "<85>",
            "action=reset uid=5 ",
        ),
    ];
    for (args, stdin, reply, priority, fields) in cases {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let syslog = Syslog::bind(&dir.0);
        let server = fake_credd_with_id(&socket, vec![reply]);
        let out = credctl_env(&socket, args, stdin, &syslog.env());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert!(
            !stderr(&out).contains("warning"),
            "{args:?}: {}",
            stderr(&out)
        );
        let (_, id) = server.join().unwrap();
        let id = sent_id(id);
        let message = syslog.only_message();
        assert!(message.starts_with(priority), "{args:?}: {message}");
        assert!(message.contains(" credctl["), "{message}");
        assert!(message.contains(fields), "{args:?}: {message}");
        assert!(
            message.ends_with(&format!(" outcome=ok id={id}")),
            "{args:?}: {message}"
        );
        for secret in ["s3cret", CODE, "pbkdf2"] {
            assert!(!message.contains(secret), "{args:?}: {message}");
        }
    }
}

#[test]
fn refused_and_unreachable_actions_are_logged_with_their_outcome() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let syslog = Syslog::bind(&dir.0);
    let server = fake_credd_with_id(
        &socket,
        vec![Reply::Error {
            kind: ErrorKind::NotPermitted,
            message: "only root may lock root".into(),
        }],
    );
    let out = credctl_env(&socket, &["lock", "root"], b"", &syslog.env());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: only root may lock root\n");
    let id = sent_id(server.join().unwrap().1);
    let message = syslog.only_message();
    assert!(message.starts_with("<85>"), "{message}");
    assert!(
        message.contains("action=lock user=root by_uid="),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" outcome=refused id={id}")),
        "{message}"
    );

    // Nobody listens: logged as unreachable, still under a fresh id.
    let socket = dir.0.join("nobody.sock");
    let out = credctl_env(&socket, &["user", "disable", "bob"], b"", &syslog.env());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    let message = syslog.only_message();
    assert!(
        message.contains("action=user_disable user=bob "),
        "{message}"
    );
    let (_, id) = message.split_once(" outcome=unreachable id=").unwrap();
    assert!(valid_request_id(id), "{message}");

    // Refused before sending: no action, no record.
    let out = credctl_env(&socket, &["user", "remove", "a b"], b"", &syslog.env());
    assert_eq!(out.status.code(), Some(2));
    assert!(syslog.messages().is_empty());
}

#[test]
fn a_syslog_failure_is_one_warning_and_changes_nothing_else() {
    let dir = TempDir::new();
    let missing = dir.0.join("missing.sock");
    for (setting, shown) in [
        (
            format!("unix:{}", missing.display()),
            format!("{}): No such file or directory", missing.display()),
        ),
        (
            "tcp:localhost:514".to_string(),
            "CREDCTL_SYSLOG=tcp:localhost:514): not unix:PATH, udp:HOST:PORT or none".to_string(),
        ),
    ] {
        let socket = dir.0.join("admin.sock");
        let _ = std::fs::remove_file(&socket);
        let server = fake_credd_with_id(&socket, vec![Reply::Ok]);
        let out = credctl_env(
            &socket,
            &["user", "remove", "alice"],
            b"",
            &[("CREDCTL_SYSLOG", &setting)],
        );
        assert_eq!(out.status.code(), Some(0), "{setting}");
        assert_eq!(stdout(&out), "removed alice\n");
        assert_eq!(
            stderr(&out),
            format!("credctl: warning: could not write to syslog ({shown}\n")
        );
        sent_id(server.join().unwrap().1);
    }

    // A refusal keeps its exit status and its own line.
    let socket = dir.0.join("admin.sock");
    let _ = std::fs::remove_file(&socket);
    let _server = fake_credd_with_id(&socket, vec![Reply::UnknownUser]);
    let setting = format!("unix:{}", missing.display());
    let out = credctl_env(
        &socket,
        &["unlock", "bob"],
        b"",
        &[("CREDCTL_SYSLOG", &setting)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<_> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(lines[0].starts_with("credctl: warning: could not write to syslog ("));
    assert_eq!(lines[1], "credctl: no such user: bob");
}

#[test]
fn without_dev_log_and_without_a_setting_nothing_is_said() {
    if Path::new("/dev/log").exists() {
        eprintln!("skipped: this machine has /dev/log");
        return;
    }
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd_with_id(&socket, vec![Reply::Ok]);
    let out = credctl_env(&socket, &["user", "enable", "alice"], b"", &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "enabled alice\n");
    assert_eq!(stderr(&out), "");
    sent_id(server.join().unwrap().1);
}

#[test]
fn syslog_over_udp() {
    let receiver = UdpSocket::bind("127.0.0.1:0").unwrap();
    receiver
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let setting = format!("udp:{}", receiver.local_addr().unwrap());
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd_with_id(&socket, vec![issued("alice", 0)]);
    let out = credctl_env(
        &socket,
        &["reset", "alice"],
        b"",
        &[("CREDCTL_SYSLOG", &setting)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let id = sent_id(server.join().unwrap().1);
    let mut buf = [0u8; 4096];
    let n = receiver.recv(&mut buf).unwrap();
    let message = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(message.starts_with("<85>"), "{message}");
    assert!(message.contains(" credctl["), "{message}");
    assert!(
        message.ends_with(&format!(" outcome=ok id={id}")),
        "{message}"
    );
    assert!(!message.contains(CODE), "{message}");
}

fn event(seq: u64, user: Option<&str>) -> AuditEntry {
    AuditEntry {
        seq,
        id: format!("{seq:032x}"),
        time: "2026-01-02T03:04:05Z".into(),
        event: if user.is_some() {
            "reset_issued".into()
        } else {
            "daemon_started".into()
        },
        actor_uid: user.map(|_| 0),
        user: user.map(Into::into),
        service: None,
        rhost: None,
        tty: None,
        outcome: "ok".into(),
        detail: if user.is_some() {
            "ttl=900s sessions_revoked=1".into()
        } else {
            String::new()
        },
    }
}

#[test]
fn read_only_commands_send_no_id_and_log_nothing() {
    let cases: [(&[&str], Vec<Reply>); 8] = [
        (&["user", "list"], vec![Reply::End { count: 0 }]),
        (
            &["user", "show", "alice"],
            vec![Reply::User(Box::new(info("alice", None)))],
        ),
        (&["status"], vec![Reply::End { count: 0 }]),
        (
            &["status", "alice"],
            vec![Reply::Status(Box::new(status_of("alice", false)))],
        ),
        (&["sessions"], vec![Reply::End { count: 0 }]),
        (&["audit"], vec![Reply::End { count: 0 }]),
        (
            &["audit", "verify"],
            vec![Reply::AuditVerified(Box::new(intact()))],
        ),
        (&["check"], vec![Reply::CheckReport(Box::new(all_well()))]),
    ];
    for (args, replies) in cases {
        let dir = TempDir::new();
        let socket = dir.0.join("admin.sock");
        let syslog = Syslog::bind(&dir.0);
        let server = fake_credd_with_id(&socket, replies);
        let out = credctl_env(&socket, args, b"", &syslog.env());
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?}");
        assert_eq!(server.join().unwrap().1, None, "{args:?}");
        assert!(syslog.messages().is_empty(), "{args:?}");
    }
}

#[test]
fn audit_streams_lines_and_a_json_array() {
    let rows = || {
        vec![
            Reply::AuditItem(Box::new(event(1, None))),
            Reply::AuditItem(Box::new(event(2, Some("alice")))),
            Reply::End { count: 2 },
        ]
    };
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows());
    let out = credctl(
        &socket,
        &[
            "audit",
            "--user",
            "alice",
            "--since",
            "2026-01-02T05:04:05+02:00",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "1 2026-01-02T03:04:05Z daemon_started outcome=ok id={:032x}\n\
             2 2026-01-02T03:04:05Z reset_issued outcome=ok user=alice actor_uid=0 id={:032x} \
             ttl=900s sessions_revoked=1\n",
            1, 2
        )
    );
    match server.join().unwrap() {
        Request::Audit { user, since } => {
            assert_eq!(user.as_deref(), Some("alice"));
            assert_eq!(since.as_deref(), Some("2026-01-02T03:04:05Z"));
        }
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, rows());
    let out = credctl(&socket, &["audit", "--json", "--since", "2d"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("[\n{\"seq\":1,"), "{text}");
    let listed: Vec<AuditEntry> = serde_json::from_str(&text).unwrap();
    assert_eq!(listed, vec![event(1, None), event(2, Some("alice"))]);
    match server.join().unwrap() {
        Request::Audit { user, since } => {
            assert_eq!(user, None);
            // Two days ago, sent as RFC 3339 UTC.
            let since = since.unwrap();
            assert_eq!(since.len(), 20, "{since}");
            assert!(
                since.ends_with('Z') && since.as_bytes()[10] == b'T',
                "{since}"
            );
        }
        other => panic!("unexpected {other:?}"),
    }

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![Reply::End { count: 0 }]);
    let out = credctl(&socket, &["audit", "--json"], b"");
    assert_eq!(stdout(&out), "[]\n");
    assert!(matches!(
        server.join().unwrap(),
        Request::Audit {
            user: None,
            since: None
        }
    ));

    // A session row in an audit listing is a broken listing.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![
            Reply::SessionItem(Box::new(session(1, "alice", false))),
            Reply::End { count: 1 },
        ],
    );
    let out = credctl(&socket, &["audit"], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("credctl: audit failed: ") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn audit_usage_errors_exit_2_before_connecting() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    for args in [
        &["audit", "--user", "a b"][..],
        &["audit", "--user", "-rf"],
        &["audit", "--since", "yesterday"],
        &["audit", "--since", "1w"],
        &["audit", "--since", "2026-02-30T00:00:00Z"],
        &["audit", "--since", "2026-01-02 03:04:05"],
        &["audit", "--user", "alice", "verify"],
        &["audit", "verify", "--since", "1h"],
        &["check", "--user", "alice"],
    ] {
        let out = credctl(&socket, args, b"");
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

fn intact() -> AuditReport {
    AuditReport {
        rows_checked: 120,
        head_seq: 120,
        head_mac: "5e884898da28047151d0e56f8dc62927".into(),
        first_bad_seq: None,
        problem: None,
    }
}

fn broken() -> AuditReport {
    AuditReport {
        first_bad_seq: Some(57),
        problem: Some("row does not match its MAC (edited)".into()),
        ..intact()
    }
}

#[test]
fn audit_verify_exits_0_when_intact_and_3_when_broken() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![Reply::AuditVerified(Box::new(intact()))]);
    let out = credctl(&socket, &["audit", "verify"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "audit chain intact: 120 rows, head seq 120 mac 5e884898da28047151d0e56f8dc62927\n"
    );
    assert_eq!(stderr(&out), "");
    assert!(matches!(server.join().unwrap(), Request::AuditVerify));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::AuditVerified(Box::new(broken()))]);
    let out = credctl(&socket, &["audit", "verify"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stdout(&out),
        "audit chain broken at row 57: row does not match its MAC (edited) (120 rows checked)\n"
    );
    assert_eq!(
        stderr(&out),
        "credctl: audit chain broken at row 57: row does not match its MAC (edited)\n"
    );

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::AuditVerified(Box::new(broken()))]);
    let out = credctl(&socket, &["audit", "verify", "--json"], b"");
    assert_eq!(out.status.code(), Some(3));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v.is_object());
    assert_eq!(v["first_bad_seq"], 57);
    assert_eq!(v["rows_checked"], 120);
    let shown: AuditReport = serde_json::from_value(v).unwrap();
    assert_eq!(shown, broken());
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::AuditVerified(Box::new(intact()))]);
    let out = credctl(&socket, &["audit", "verify", "--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let shown: AuditReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, intact());

    // A refusal is a failure, not a finding.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(
        &socket,
        vec![Reply::Error {
            kind: ErrorKind::Internal,
            message: "audit key unreadable".into(),
        }],
    );
    let out = credctl(&socket, &["audit", "verify"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: audit key unreadable\n");
    assert!(out.stdout.is_empty());
}

fn all_well() -> CheckReport {
    CheckReport {
        checks: vec![
            "integrity_check".into(),
            "schema version 3".into(),
            "audit chain (120 rows)".into(),
        ],
        findings: vec![],
    }
}

#[test]
fn check_exits_0_when_all_is_well_and_3_on_a_finding() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_credd(&socket, vec![Reply::CheckReport(Box::new(all_well()))]);
    let out = credctl(&socket, &["check"], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "ok: integrity_check\nok: schema version 3\nok: audit chain (120 rows)\n"
    );
    assert_eq!(stderr(&out), "");
    assert!(matches!(server.join().unwrap(), Request::Check));

    let finding = CheckReport {
        findings: vec!["/var/lib/credd/credd.db is writable by group".into()],
        ..all_well()
    };
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::CheckReport(Box::new(finding.clone()))]);
    let out = credctl(&socket, &["check"], b"");
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(
        stdout(&out),
        "ok: integrity_check\nok: schema version 3\nok: audit chain (120 rows)\n\
         FINDING: /var/lib/credd/credd.db is writable by group\n"
    );
    assert_eq!(
        stderr(&out),
        "credctl: check found 1 finding: /var/lib/credd/credd.db is writable by group\n"
    );

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::CheckReport(Box::new(finding.clone()))]);
    let out = credctl(&socket, &["check", "--json"], b"");
    assert_eq!(out.status.code(), Some(3));
    let shown: CheckReport = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown, finding);

    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::CheckReport(Box::new(all_well()))]);
    let out = credctl(&socket, &["check", "--json"], b"");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"], serde_json::json!([]));
    assert_eq!(v["checks"].as_array().unwrap().len(), 3);

    // The wrong reply is a failure, not a finding.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let _server = fake_credd(&socket, vec![Reply::AuditVerified(Box::new(broken()))]);
    let out = credctl(&socket, &["check"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "credctl: unexpected reply from credd: audit_verified\n"
    );
}

// ---- import ----

/// A request an import's stand-in for credd received, with its envelope's id and its size.
struct Received {
    request: Request,
    id: Option<String>,
    bytes: usize,
}

/// A stand-in for credd's import: `Ok` to `ImportBegin` and to each `ImportRows`, `commit` to
/// `ImportCommit`, then it hangs up; hands back every request it received, in order.
fn fake_import(socket: &Path, commit: Vec<Reply>) -> JoinHandle<Vec<Received>> {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut received = Vec::new();
        while let Ok(Some(body)) = read_frame(&mut conn) {
            let decoded = decode_request_full(&body).unwrap();
            let replies = match decoded.request {
                Request::ImportCommit => commit.clone(),
                _ => vec![Reply::Ok],
            };
            received.push(Received {
                request: decoded.request,
                id: decoded.id,
                bytes: body.len(),
            });
            for reply in &replies {
                write_frame(&mut conn, &encode_reply(reply).unwrap()).unwrap();
            }
            if matches!(received.last().unwrap().request, Request::ImportCommit) {
                break;
            }
        }
        received
    })
}

const PHC: &str = "$pbkdf2-sha256$i=600000,l=32$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaA";

/// Every action once, and a second reset.
fn every_action_csv() -> String {
    format!(
        "user,action,uid,password_hash,must_change,ttl,reason\r\n\
         alice,add,1001,\"{PHC}\",true,,\r\n\
         bob,remove,,,,,\r\n\
         carol,reset,,,,30m,\r\n\
         dave,lock,,,,,left the company\r\n\
         erin,unlock,,,,,\r\n\
         frank,disable,,,,,\r\n\
         grace,enable,,,,,\r\n\
         heidi,set-hash,,$6$salt$hash,no,,\r\n\
         ivan,reset,,,,,\r\n"
    )
}

fn import_summary(dry_run: bool, actions: &[(&str, u64)], codes: u64) -> Reply {
    Reply::ImportSummary(Box::new(ImportSummary {
        dry_run,
        rows: actions.iter().map(|(_, n)| n).sum(),
        actions: actions.iter().map(|(a, n)| (a.to_string(), *n)).collect(),
        codes,
        sessions_revoked: 1,
        milliseconds: 12,
        skipped: Vec::new(),
    }))
}

fn import_code(user: &str, code: &str) -> Reply {
    Reply::ImportCode(Box::new(IssuedCode {
        user: user.into(),
        code: Secret::new(code.into()),
        expires_at: "2026-01-02T03:34:05Z".into(),
    }))
}

const EVERY_ACTION: [(&str, u64); 8] = [
    ("add", 1),
    ("remove", 1),
    ("reset", 2),
    ("lock", 1),
    ("unlock", 1),
    ("disable", 1),
    ("enable", 1),
    ("set-hash", 1),
];

/// The summary's lines but the last, and the last (the time, which varies).
fn summary_lines(out: &Output) -> (String, String) {
    let text = stdout(out);
    let (head, last) = text.trim_end().rsplit_once('\n').unwrap();
    (format!("{head}\n"), last.to_string())
}

#[test]
fn import_sends_begin_rows_commit_and_writes_the_codes_file_0600() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, every_action_csv()).unwrap();
    let codes_out = dir.0.join("codes.csv");
    let syslog = Syslog::bind(&dir.0);
    let server = fake_import(
        &socket,
        vec![
            import_summary(false, &EVERY_ACTION, 2),
            import_code("carol", "7KQ4-M2XD-9RTV-H3PE"),
            import_code("ivan", "AB12-CD34-EF56-GH78"),
            Reply::End { count: 2 },
        ],
    );
    let out = credctl_env(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
            "--ttl",
            "1h",
            "--allow-bulk",
        ],
        b"",
        &syslog.env(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let (head, time) = summary_lines(&out);
    assert_eq!(
        head,
        format!(
            "imported 9 rows from {}\n  add: 1\n  remove: 1\n  reset: 2\n  lock: 1\n  unlock: 1\n  \
             disable: 1\n  enable: 1\n  set-hash: 1\ncodes: 2 written to {}\n\
             sessions revoked: 1\n",
            file.display(),
            codes_out.display()
        )
    );
    assert!(
        time.starts_with("time: ") && time.ends_with(" s (credd: 0.01 s)"),
        "{time}"
    );
    // Codes never reach standard output or error.
    for code in ["7KQ4-M2XD-9RTV-H3PE", "AB12-CD34-EF56-GH78"] {
        assert!(!stdout(&out).contains(code) && !stderr(&out).contains(code));
    }

    let received = server.join().unwrap();
    assert_eq!(received.len(), 3, "begin, one frame of rows, commit");
    match &received[0].request {
        Request::ImportBegin(options) => assert_eq!(
            options,
            &ImportOptions {
                dry_run: false,
                allow_bulk: true,
                ttl_seconds: Some(3600),
                source: file.to_str().unwrap().into(),
                shadow: None,
            }
        ),
        other => panic!("unexpected {other:?}"),
    }
    let Request::ImportRows { rows } = &received[1].request else {
        panic!("unexpected {:?}", received[1].request)
    };
    assert_eq!(
        rows.iter()
            .map(|r| (r.line, r.user.as_str(), r.action))
            .collect::<Vec<_>>(),
        [
            (2, "alice", ImportAction::Add),
            (3, "bob", ImportAction::Remove),
            (4, "carol", ImportAction::Reset),
            (5, "dave", ImportAction::Lock),
            (6, "erin", ImportAction::Unlock),
            (7, "frank", ImportAction::Disable),
            (8, "grace", ImportAction::Enable),
            (9, "heidi", ImportAction::SetHash),
            (10, "ivan", ImportAction::Reset),
        ]
    );
    assert_eq!(
        rows[0],
        ImportRow {
            line: 2,
            user: "alice".into(),
            action: ImportAction::Add,
            uid: Some(1001),
            password_hash: Some(PHC.into()),
            must_change: Some(true),
            ttl_seconds: None,
            reason: None,
        }
    );
    assert_eq!(rows[2].ttl_seconds, Some(1800));
    assert_eq!(rows[3].reason.as_deref(), Some("left the company"));
    assert_eq!(
        (rows[7].password_hash.as_deref(), rows[7].must_change),
        (Some("$6$salt$hash"), Some(false))
    );
    assert!(matches!(received[2].request, Request::ImportCommit));
    assert!(received[0].id.is_none() && received[1].id.is_none());
    let id = sent_id(received[2].id.clone());

    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&codes_out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    assert_eq!(
        std::fs::read_to_string(&codes_out).unwrap(),
        "user,code,expires_at\n\
         carol,7KQ4-M2XD-9RTV-H3PE,2026-01-02T03:34:05Z\n\
         ivan,AB12-CD34-EF56-GH78,2026-01-02T03:34:05Z\n"
    );

    // One record for the whole import, with its counts and the commit's id; never a code.
    let message = syslog.only_message();
    assert!(message.starts_with("<85>"), "{message}");
    assert!(
        message.contains(&format!(
            "administrative action; action=import source={} rows=9 add=1 remove=1 reset=2 \
             lock=1 unlock=1 disable=1 enable=1 set_hash=1 codes=2 sessions_revoked=1 \
             dry_run=no allow_bulk=yes by_uid=",
            file.display()
        )),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" outcome=ok id={id}")),
        "{message}"
    );
    assert!(
        !message.contains("7KQ4") && !message.contains("pbkdf2"),
        "{message}"
    );
}

#[test]
fn import_json_is_the_summary_with_codes_out() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\nbob,remove\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    let _server = fake_import(
        &socket,
        vec![
            import_summary(false, &[("reset", 1), ("remove", 1)], 1),
            import_code("alice", "7KQ4-M2XD-9RTV-H3PE"),
            Reply::End { count: 1 },
        ],
    );
    let out = credctl(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
            "--json",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["codes_out"], codes_out.to_str().unwrap());
    assert_eq!(
        (v["rows"].as_u64(), v["codes"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(v["actions"]["reset"], 1);
    assert_eq!(v["dry_run"], false);
    assert!(!stdout(&out).contains("7KQ4"));
}

#[test]
fn import_from_stdin() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let server = fake_import(
        &socket,
        vec![
            import_summary(false, &[("lock", 1), ("disable", 1)], 0),
            Reply::End { count: 0 },
        ],
    );
    let out = credctl(
        &socket,
        &["import", "-"],
        b"\xef\xbb\xbfuser,action,reason\nalice,lock,\"gone, for now\"\nbob,disable,\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, _) = summary_lines(&out);
    assert_eq!(
        head,
        "imported 2 rows from <stdin>\n  lock: 1\n  disable: 1\ncodes: 0\nsessions revoked: 1\n"
    );
    let received = server.join().unwrap();
    match &received[0].request {
        Request::ImportBegin(options) => assert_eq!(options.source, "-"),
        other => panic!("unexpected {other:?}"),
    }
    let Request::ImportRows { rows } = &received[1].request else {
        panic!("unexpected {:?}", received[1].request)
    };
    assert_eq!(rows[0].reason.as_deref(), Some("gone, for now"));
    assert_eq!((rows[1].line, rows[1].user.as_str()), (3, "bob"));

    // Problems in standard input are named <stdin>.
    let out = credctl(&socket, &["import", "-"], b"user,action\nalice,frob\n");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "<stdin>:2: action: unknown action frob; one of add, remove, reset, lock, unlock, \
         disable, enable, set-hash\n\
         credctl: import refused: 1 problem in <stdin>; nothing was changed\n"
    );
}

#[test]
fn import_problems_in_the_file_are_all_shown_and_nothing_is_sent() {
    let dir = TempDir::new();
    // No daemon: had credctl tried to connect, it would say it cannot reach it.
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(
        &file,
        "user,action,uid,ttl\nalice,add,abc,\nbob,lock,,15m\n\"a b\",reset,,\nalice,remove,,\n",
    )
    .unwrap();
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let f = file.display();
    assert_eq!(
        stderr(&out),
        format!(
            "{f}:2: uid: abc is not a uid (a number from 0 to 4294967294)\n\
             {f}:3: ttl: not allowed with lock: only with reset\n\
             {f}:4: user: user name contains the character ' '\n\
             {f}:5: user: account alice is already named on line 2; give each account one row\n\
             credctl: import refused: 4 problems in {f}; nothing was changed\n"
        )
    );
    assert!(out.stdout.is_empty());

    // An account named twice, on valid rows: the second line names the first.
    std::fs::write(&file, "user,action\nalice,add\nbob,add\nalice,remove\n").unwrap();
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "{f}:4: user: account alice is already named on line 2; give each account one row\n\
             credctl: import refused: 1 problem in {f}; nothing was changed\n"
        )
    );

    // Past 100 problems, the rest are counted.
    let mut text = String::from("user,action\n");
    for i in 0..150 {
        text.push_str(&format!("user{i},frob\n"));
    }
    std::fs::write(&file, text).unwrap();
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 102, "{err}");
    assert!(lines[99].starts_with(&format!("{f}:101: action: unknown action frob")));
    assert_eq!(lines[100], "\u{2026} and 50 more problems");
    assert_eq!(
        lines[101],
        format!("credctl: import refused: 150 problems in {f}; nothing was changed")
    );

    for (text, expected) in [
        ("", format!("{f}: no rows")),
        ("user,action\n", format!("{f}: no rows")),
        (
            "user,action,colour\nalice,add,red\n",
            format!(
                "{f}:1: colour: unknown column; the columns are user, action, uid, \
                 password_hash, must_change, ttl, reason"
            ),
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
        assert_eq!(out.status.code(), Some(1), "{text:?}");
        assert_eq!(stderr(&out).lines().next(), Some(expected.as_str()));
    }

    // A file that cannot be read.
    let missing = dir.0.join("missing.csv");
    let out = credctl(&socket, &["import", missing.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "credctl: cannot read {}: No such file or directory\n",
            missing.display()
        )
    );
}

#[test]
fn import_reset_rows_need_codes_out_before_connecting() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\nbob,reset\ncarol,add\n").unwrap();
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "credctl: 2 reset rows need --codes-out FILE for the codes (a new file, mode 0600); \
         nothing was sent\n"
    );
    // Codes are never printed, so standard output is no codes file.
    let out = credctl(
        &socket,
        &["import", file.to_str().unwrap(), "--codes-out", "-"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "credctl: --codes-out needs a file name: codes are never printed\n"
    );
}

#[test]
fn import_never_overwrites_a_codes_file_and_sends_nothing() {
    let dir = TempDir::new();
    // No daemon: had credctl tried to connect, it would say it cannot reach it.
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    std::fs::write(&codes_out, "precious\n").unwrap();
    let out = credctl(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "credctl: cannot create the codes file {}: File exists (codes never overwrite a \
             file; name a new one)\n",
            codes_out.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&codes_out).unwrap(), "precious\n");
}

#[test]
fn import_problems_from_credd_are_shown_by_line_and_the_codes_file_removed() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action,uid\nalice,add,1001\nbob,reset,\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    let syslog = Syslog::bind(&dir.0);
    let server = fake_import(
        &socket,
        vec![Reply::ImportProblems {
            problems: vec![
                ImportProblem {
                    line: 2,
                    field: "uid".into(),
                    message: "uid 1001 belongs to carol".into(),
                },
                ImportProblem {
                    line: 3,
                    field: "user".into(),
                    message: "no such account".into(),
                },
                ImportProblem {
                    line: 0,
                    field: String::new(),
                    message: "the database failed its quick check".into(),
                },
            ],
            truncated: false,
        }],
    );
    let out = credctl_env(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
        &syslog.env(),
    );
    assert_eq!(out.status.code(), Some(1));
    let f = file.display();
    assert_eq!(
        stderr(&out),
        format!(
            "{f}:2: uid: uid 1001 belongs to carol\n\
             {f}:3: user: no such account\n\
             {f}: the database failed its quick check\n\
             credctl: import refused: 3 problems in {f}; nothing was changed\n"
        )
    );
    assert!(out.stdout.is_empty());
    assert!(!codes_out.exists(), "a refused import leaves no codes file");
    let received = server.join().unwrap();
    let id = sent_id(received.last().unwrap().id.clone());
    let message = syslog.only_message();
    assert!(
        message.contains(" rows=2 add=1 remove=0 reset=1 ") && message.contains(" codes=0 "),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(" outcome=refused id={id}")),
        "{message}"
    );

    // credd's cap: it says there are more without counting them.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,remove\n").unwrap();
    let _server = fake_import(
        &socket,
        vec![Reply::ImportProblems {
            problems: vec![ImportProblem {
                line: 2,
                field: "user".into(),
                message: "no such account".into(),
            }],
            truncated: true,
        }],
    );
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    let f = file.display();
    assert_eq!(
        stderr(&out),
        format!(
            "{f}:2: user: no such account\n\u{2026} and more problems\n\
             credctl: import refused: at least 1 problem in {f}; nothing was changed\n"
        )
    );
}

#[test]
fn import_over_the_reset_rate_limits_is_refused_and_names_allow_bulk() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    let server = fake_import(
        &socket,
        vec![Reply::RateLimited {
            unknown: false,
            retry_after: None,
        }],
    );
    let out = credctl(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "credctl: import refused: the reset rows exceed the reset rate limits; add --allow-bulk \
         to override (audited)\n"
    );
    assert!(!codes_out.exists());
    match &server.join().unwrap()[0].request {
        Request::ImportBegin(options) => assert!(!options.allow_bulk),
        other => panic!("unexpected {other:?}"),
    }

    // Any refusal of a step ends the import with that refusal.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    let server = std::thread::spawn(move || {
        serve_one(
            &listener,
            &[Reply::Error {
                kind: ErrorKind::NotPermitted,
                message: "only root may import".into(),
            }],
        )
        .request
    });
    let out = credctl(
        &socket,
        &["import", file.to_str().unwrap(), "--dry-run"],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out), "credctl: only root may import\n");
    assert!(matches!(server.join().unwrap(), Request::ImportBegin(_)));
}

#[test]
fn import_dry_run_sends_dry_run_and_creates_no_file() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, every_action_csv()).unwrap();
    let codes_out = dir.0.join("codes.csv");
    let server = fake_import(
        &socket,
        vec![
            import_summary(true, &EVERY_ACTION, 2),
            Reply::End { count: 0 },
        ],
    );
    let out = credctl(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--dry-run",
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (head, _) = summary_lines(&out);
    assert_eq!(
        head,
        format!(
            "dry run: nothing was changed\nwould import 9 rows from {}\n  add: 1\n  remove: 1\n  \
             reset: 2\n  lock: 1\n  unlock: 1\n  disable: 1\n  enable: 1\n  set-hash: 1\n\
             codes that would be issued: 2\nsessions that would be revoked: 1\n",
            file.display()
        )
    );
    assert!(!codes_out.exists());
    let received = server.join().unwrap();
    match &received[0].request {
        Request::ImportBegin(options) => assert!(options.dry_run),
        other => panic!("unexpected {other:?}"),
    }

    // Without --codes-out too: a dry run of resets needs no file.
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\n").unwrap();
    let _server = fake_import(
        &socket,
        vec![
            import_summary(true, &[("reset", 1)], 1),
            Reply::End { count: 0 },
        ],
    );
    let out = credctl(
        &socket,
        &["import", file.to_str().unwrap(), "--dry-run", "--json"],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["dry_run"], true);
    assert!(v["codes_out"].is_null());
}

#[test]
fn import_rows_are_split_so_every_frame_stays_under_64_kib() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    let hash = format!("$pbkdf2-sha256$i=600000,l=32${}$hash", "s".repeat(400));
    let mut text = String::from("user,action,password_hash\n");
    for i in 0..1200 {
        text.push_str(&format!("user{i:04}{},add,\"{hash}\"\n", "x".repeat(100)));
    }
    std::fs::write(&file, text).unwrap();
    let server = fake_import(
        &socket,
        vec![
            import_summary(false, &[("add", 1200)], 0),
            Reply::End { count: 0 },
        ],
    );
    let out = credctl(&socket, &["import", file.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let received = server.join().unwrap();
    let frames: Vec<&Received> = received
        .iter()
        .filter(|r| matches!(r.request, Request::ImportRows { .. }))
        .collect();
    assert!(frames.len() >= 10, "{} frames", frames.len());
    let mut lines = Vec::new();
    for frame in &frames {
        assert!(frame.bytes < MAX_FRAME * 3 / 4 + 1, "{} bytes", frame.bytes);
        let Request::ImportRows { rows } = &frame.request else {
            unreachable!()
        };
        assert!(rows.len() <= 500);
        lines.extend(rows.iter().map(|r| r.line));
    }
    assert_eq!(lines, (2..1202).collect::<Vec<u64>>());
    assert!(matches!(
        received.last().unwrap().request,
        Request::ImportCommit
    ));
}

#[test]
fn import_codes_that_do_not_all_arrive_are_reported_and_the_file_kept() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\nbob,reset\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    // credd committed two resets, then the connection broke after one code.
    let _server = fake_import(
        &socket,
        vec![
            import_summary(false, &[("reset", 2)], 2),
            import_code("alice", "7KQ4-M2XD-9RTV-H3PE"),
        ],
    );
    let out = credctl(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).starts_with("imported 2 rows from "),
        "{}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.starts_with(&format!(
            "credctl: the import was done but only 1 of its 2 codes were written to {}: ",
            codes_out.display()
        )) && err.ends_with("; reset the accounts missing from it again\n"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(&codes_out).unwrap(),
        "user,code,expires_at\nalice,7KQ4-M2XD-9RTV-H3PE,2026-01-02T03:34:05Z\n"
    );
}

#[test]
fn import_to_an_unreachable_daemon_is_logged_and_leaves_no_codes_file() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("users.csv");
    std::fs::write(&file, "user,action\nalice,reset\nbob,add\n").unwrap();
    let codes_out = dir.0.join("codes.csv");
    let syslog = Syslog::bind(&dir.0);
    let out = credctl_env(
        &socket,
        &[
            "import",
            file.to_str().unwrap(),
            "--codes-out",
            codes_out.to_str().unwrap(),
        ],
        b"",
        &syslog.env(),
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "credctl: cannot reach credd at {}: No such file or directory (is credd running?)\n",
            socket.display()
        )
    );
    assert!(!codes_out.exists());
    let message = syslog.only_message();
    assert!(
        message.contains(" rows=2 add=1 remove=0 reset=1 ") && message.contains(" codes=0 "),
        "{message}"
    );
    assert!(message.contains(" outcome=unreachable id="), "{message}");
}

const YESCRYPT: &str = "$y$j9T$VbkXPm5C2wjBrvZ/6JpTu0$EYsos16gxNjxFH.c.NDlqDcYmS/wEthFBQCv4wQMMC/";
const MD5CRYPT: &str = "$1$hiSDN4d0$gMyTRicrObrIbgZwriCHv.";

#[test]
fn import_from_shadow_sends_the_usable_entries_and_merges_what_was_skipped() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("shadow");
    std::fs::write(
        &file,
        format!(
            "root:*:19000:0:99999:7:::\n\
             alice:{YESCRYPT}:0:0:99999:7:::\n\
             old:{MD5CRYPT}:19000:0:99999:7::1:\n\
             bob:{YESCRYPT}:19000:0:99999:7:::\n"
        ),
    )
    .unwrap();
    let syslog = Syslog::bind(&dir.0);
    let summary = ImportSummary {
        dry_run: false,
        rows: 2,
        actions: [("add".to_string(), 1), ("set-hash".to_string(), 1)].into(),
        codes: 0,
        sessions_revoked: 0,
        milliseconds: 3,
        skipped: vec![ImportSkip {
            line: 3,
            user: "old".into(),
            reason: "md5crypt is a legacy scheme; credd verifies it only with [hashing] \
                     accept_legacy = true"
                .into(),
        }],
    };
    let server = fake_import(
        &socket,
        vec![
            Reply::ImportSummary(Box::new(summary)),
            Reply::End { count: 0 },
        ],
    );
    let out = credctl_env(
        &socket,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--replace",
            "--json",
        ],
        b"",
        &syslog.env(),
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["rows"], 2);
    assert_eq!(v["must_change"], 1, "alice's sp_lstchg is 0");
    assert_eq!(v["disabled"], 0, "old's expired entry was not taken");
    let skipped: Vec<(u64, &str)> = v["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["line"].as_u64().unwrap(), s["user"].as_str().unwrap()))
        .collect();
    assert_eq!(skipped, [(1, "root"), (3, "old")], "in line order");
    assert!(v["locked_in_shadow"].is_null());

    let received = server.join().unwrap();
    assert_eq!(received.len(), 3, "begin, one frame of entries, commit");
    match &received[0].request {
        Request::ImportBegin(options) => {
            assert_eq!(options.shadow, Some(ShadowOptions { replace: true }));
            assert!(!options.dry_run && !options.allow_bulk);
            assert_eq!(options.source, file.to_str().unwrap());
        }
        other => panic!("unexpected {other:?}"),
    }
    let Request::ImportShadowRows { rows } = &received[1].request else {
        panic!("unexpected {:?}", received[1].request)
    };
    assert_eq!(
        rows.iter()
            .map(|r| (r.line, r.user.as_str(), r.must_change, r.expired))
            .collect::<Vec<_>>(),
        [
            (2, "alice", true, false),
            (3, "old", false, true),
            (4, "bob", false, false)
        ]
    );
    assert_eq!(rows[0].password_hash, YESCRYPT);
    let id = sent_id(received[2].id.clone());
    let message = syslog.only_message();
    assert!(
        message.contains(" rows=2 add=1 remove=0 ") && message.contains(" set_hash=1 "),
        "{message}"
    );
    assert!(
        message.contains(" shadow=yes skipped=2 by_uid="),
        "{message}"
    );
    assert!(
        message.ends_with(&format!("outcome=ok id={id}")),
        "{message}"
    );
    assert!(
        !message.contains("$y$") && !message.contains("$1$"),
        "{message}"
    );
}

#[test]
fn import_from_shadow_refuses_a_damaged_file_and_lock_shadow_elsewhere_before_connecting() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let file = dir.0.join("shadow");
    std::fs::write(
        &file,
        format!("alice:{YESCRYPT}:19000:0\nbob:$6$salt$cut:1::::::\n"),
    )
    .unwrap();
    let out = credctl(
        &socket,
        &["import", "--from-shadow", file.to_str().unwrap()],
        b"",
    );
    assert_eq!(out.status.code(), Some(1));
    let name = file.display();
    assert_eq!(
        stderr(&out),
        format!(
            "{name}:1: entry: 4 fields; a shadow entry has 9 \
             (sp_namp:sp_pwdp:sp_lstchg:sp_min:sp_max:sp_warn:sp_inact:sp_expire:sp_flag)\n\
             {name}:2: sp_pwdp: a malformed sha512crypt hash (the hash part must be 86 \
             characters of ./0-9A-Za-z)\n\
             credctl: import refused: 2 problems in {name}; nothing was changed\n"
        )
    );
    std::fs::write(&file, format!("alice:{YESCRYPT}:19000::::::\n")).unwrap();
    let out = credctl(
        &socket,
        &[
            "import",
            "--from-shadow",
            file.to_str().unwrap(),
            "--lock-shadow",
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--lock-shadow locks entries of /etc/shadow only"));
    let out = credctl(
        &socket,
        &["import", "--from-shadow", "-", "--users", "alice,-x"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // Nothing was listening: every refusal came before connecting.
    assert!(!socket.exists());
}

#[test]
fn import_from_shadow_with_nothing_to_take_over_sends_nothing() {
    let dir = TempDir::new();
    let socket = dir.0.join("admin.sock");
    let out = credctl(
        &socket,
        &["import", "--from-shadow", "-"],
        b"root:*:19000:0:99999:7:::\ndaemon:!:19000::::::\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(
            "imported 0 accounts from <stdin>\nskipped 2 entries:\n  <stdin>:1: root: locked"
        ),
        "{text}"
    );
}
