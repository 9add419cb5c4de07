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
    FailureInfo, Reply, Request, ResetIssued, Secret, SessionInfo, Target, UserInfo,
    decode_request_full, encode_reply, read_frame, valid_request_id, write_frame,
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
         accounts[none]: 2\naccounts[pbkdf2-sha256]: 40\n"
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
            Reply::RateLimited { unknown: false },
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_credctl"))
        .arg("--socket")
        .arg(&socket)
        .args(["reset", "alice"])
        .env_remove("CREDD_ADMIN_SOCKET")
        .env("CREDCTL_SYSLOG", "none")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads the code: unlike a listing cut short by `| head`, that is a failure.
    drop(child.stdout.take());
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
    let _server = fake_credd(&socket, vec![Reply::RateLimited { unknown: false }]);
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
