//! credctl as a process against a scripted stand-in for credd: exit statuses, the one-line error
//! contract and the exact output formats. Tests against the real daemon live in the workspace's
//! `tests/` crate.

use std::io::Write;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use credd_proto::{
    AccountStatus, DaemonCounters, ErrorKind, FailureInfo, Reply, Request, ResetIssued, Secret,
    SessionInfo, Target, UserInfo, decode_request, encode_reply, read_frame, write_frame,
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
    std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let body = read_frame(&mut conn).unwrap().expect("a request");
        let request = decode_request(&body).unwrap();
        for reply in &replies {
            write_frame(&mut conn, &encode_reply(reply).unwrap()).unwrap();
        }
        request
    })
}

fn credctl(socket: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credctl"))
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("CREDD_ADMIN_SOCKET")
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
