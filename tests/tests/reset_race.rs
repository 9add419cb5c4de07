//! Races between password changes and resets, spoken directly on pam.sock as root (as sshd's and
//! passwd's PAM module would): every write is conditional on the state its secret was proven
//! against, so one code redeems exactly one change however many race for it, and a reset issued
//! while changes are in flight is never undone by one of them.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use credd_e2e::TestDaemon;
use credd_proto::{AuthRequest, ChangeRequest, Client, Reply, Request, Secret};

const RACERS: usize = 20;
const PASSWORD: &str = "the first long passphrase";

/// Costly enough hashing that changes stay in flight for a while, and room for many resets.
const CONFIG: &str = "[hashing]\niterations = 20000\n\
                      [codes]\nper_account_per_hour = 1000\nper_admin_per_hour = 1000\n";

fn client(d: &TestDaemon) -> Client {
    Client::connect(&d.pam_socket(), Duration::from_secs(120)).unwrap()
}

fn change(d: &TestDaemon, user: &str, old: &str, new: &str) -> Reply {
    client(d)
        .call(&Request::ChangePassword(ChangeRequest {
            user: user.into(),
            service: "passwd".into(),
            old: Some(Secret::new(old.into())),
            new: Some(Secret::new(new.into())),
        }))
        .unwrap()
}

fn authenticate(d: &TestDaemon, user: &str, secret: &str) -> Reply {
    client(d)
        .call(&Request::Authenticate(AuthRequest {
            user: user.into(),
            secret: Secret::new(secret.into()),
            service: "sshd".into(),
            rhost: None,
            tty: None,
            ruser: None,
        }))
        .unwrap()
}

fn reset(d: &TestDaemon, user: &str) -> String {
    let out = d.ctl(&["reset", user]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn new_password(round: usize, racer: usize) -> String {
    format!("round {round} racer {racer} long passphrase")
}

/// `RACERS` changes of `user`'s password, all proven with `old`, started at once; `meanwhile`
/// runs after `delay` while they are in flight. The replies, by racer.
fn race(
    d: &TestDaemon,
    user: &str,
    old: &str,
    round: usize,
    delay: Duration,
    meanwhile: impl FnOnce() -> String,
) -> (Vec<Reply>, String) {
    let start = Arc::new(Barrier::new(RACERS + 1));
    std::thread::scope(|s| {
        let racers: Vec<_> = (0..RACERS)
            .map(|i| {
                let start = Arc::clone(&start);
                let new = new_password(round, i);
                s.spawn(move || {
                    start.wait();
                    change(d, user, old, &new)
                })
            })
            .collect();
        start.wait();
        std::thread::sleep(delay);
        let made = meanwhile();
        let replies: Vec<Reply> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        (replies, made)
    })
}

#[test]
fn one_code_redeems_exactly_one_of_many_parallel_changes() {
    let d = TestDaemon::start_with(CONFIG);
    d.add_user("alice", PASSWORD, &[]);
    for round in 0..5 {
        let code = reset(&d, "alice");
        let (replies, _) = race(&d, "alice", &code, round, Duration::ZERO, String::new);
        let winners: Vec<usize> = (0..RACERS).filter(|&i| replies[i] == Reply::Ok).collect();
        assert_eq!(
            winners.len(),
            1,
            "round {round}: {} changes redeemed one code: {replies:?}",
            winners.len()
        );
        for (i, reply) in replies.iter().enumerate() {
            if !winners.contains(&i) {
                assert_eq!(*reply, Reply::Denied, "round {round} racer {i}");
            }
        }
        // The winner's password is the account's, and the code is gone.
        let winner = new_password(round, winners[0]);
        assert_eq!(authenticate(&d, "alice", &winner), Reply::Ok);
        assert_eq!(authenticate(&d, "alice", &code), Reply::Denied);
    }
    let audit = String::from_utf8_lossy(&d.ctl(&["audit", "--user", "alice"]).stdout).into_owned();
    assert_eq!(audit.matches("code_redeemed").count(), 5, "{audit}");
}

#[test]
fn a_reset_issued_while_changes_are_in_flight_is_never_undone() {
    let d = TestDaemon::start_with(CONFIG);
    d.add_user("alice", PASSWORD, &[]);
    // Resets at several points of the race, so that some land between a change's proof and its
    // write whatever this machine's speed.
    for (round, delay_ms) in [0u64, 2, 5, 10, 20, 40, 80, 160].into_iter().enumerate() {
        let out = d.ctl_stdin(&["passwd", "alice", "--password-stdin"], PASSWORD);
        assert!(out.status.success());
        let (replies, code) = race(
            &d,
            "alice",
            PASSWORD,
            round,
            Duration::from_millis(delay_ms),
            || reset(&d, "alice"),
        );
        // After the reset: must-change, and its code lets alice in as far as the change.
        let show = d.ctl(&["user", "show", "alice", "--json"]);
        let shown: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
        assert_eq!(
            shown["must_change"], true,
            "round {round} (reset after {delay_ms} ms): the reset was undone: {replies:?}"
        );
        assert_eq!(
            authenticate(&d, "alice", &code),
            Reply::MustChange,
            "round {round} (reset after {delay_ms} ms): the reset's code no longer works: \
             {replies:?}"
        );
        // And of the changes proven with the old password, at most one was written (before the
        // reset): the others were proven against a state that one of them, or the reset, ended.
        let won = replies.iter().filter(|r| **r == Reply::Ok).count();
        assert!(
            won <= 1,
            "round {round}: {won} changes from one password: {replies:?}"
        );
    }
}
