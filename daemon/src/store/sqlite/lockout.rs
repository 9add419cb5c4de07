//! Failures and locks: the lockout state of accounts (see `crate::policy::lockout` for the rules).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

use super::audited::{AuditedTx, Outcome};
use super::{
    ACCOUNT_COLUMNS, FAILURES_KEPT_PER_ACCOUNT, SqliteStore, account_from_row, exists, sessions,
    upgrade_hash,
};
use crate::audit::chain::Event;
use crate::policy::lockout::{self, Gate, Lock, LockKind, Policy};
use crate::store::{
    Account, AttemptSource, Begin, FailureRecord, LockedAttempt, Lockout, LockoutState,
    RevokedSession, Succeeded, Success, WriteConflict,
};

/// Writes the failure row of a refused attempt (never counted, see `failures_in_window`). The
/// account may have been removed since: then there is nothing to record it against.
pub(super) fn insert_locked_attempt(
    conn: &Connection,
    attempt: &LockedAttempt,
) -> rusqlite::Result<()> {
    if !super::exists(conn, &attempt.user)? {
        return Ok(());
    }
    let source = AttemptSource {
        service: &attempt.service,
        rhost: attempt.rhost.as_deref(),
        tty: attempt.tty.as_deref(),
        peer_uid: attempt.peer_uid,
    };
    insert_failure(conn, &attempt.user, attempt.at, &source, true).map(|_| ())
}

pub(super) fn lock_in(conn: &Connection, user: &str) -> rusqlite::Result<Option<Lock>> {
    lock_of(conn, user)
}

fn lock_of(conn: &Connection, user: &str) -> rusqlite::Result<Option<Lock>> {
    conn.prepare_cached("SELECT since, until, kind, reason FROM locks WHERE user = ?1")?
        .query_row(params![user], |r| {
            let kind: String = r.get(2)?;
            Ok(Lock {
                since: r.get(0)?,
                until: r.get(1)?,
                // The CHECK constraint admits only the two kinds; an unknown one stays locked.
                kind: LockKind::parse(&kind).unwrap_or(LockKind::Administrator),
                reason: r.get(3)?,
            })
        })
        .optional()
}

fn failures_in_window(conn: &Connection, user: &str, since: i64) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT count(*) FROM failures WHERE user = ?1 AND time >= ?2 AND while_locked = 0",
        params![user, since],
        |r| r.get(0),
    )
}

fn insert_failure(
    conn: &Connection,
    user: &str,
    now: i64,
    source: &AttemptSource<'_>,
    while_locked: bool,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO failures (user, time, service, rhost, tty, peer_uid, while_locked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            user,
            now,
            source.service,
            source.rhost,
            source.tty,
            source.peer_uid,
            while_locked
        ],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "DELETE FROM failures WHERE user = ?1 AND id NOT IN
           (SELECT id FROM failures WHERE user = ?1 ORDER BY id DESC LIMIT ?2)",
        params![user, FAILURES_KEPT_PER_ACCOUNT],
    )?;
    Ok(id)
}

fn insert_lock(
    conn: &Connection,
    user: &str,
    lock: &Lock,
    locked_by: Option<u32>,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO locks (user, since, until, kind, reason, locked_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            user,
            lock.since,
            lock.until,
            lock.kind.as_str(),
            lock.reason,
            locked_by
        ],
    )?;
    Ok(())
}

/// Clears an expired lock and the failures that set it, with its audit row.
fn clear_expired_lock(tx: &mut AuditedTx<'_>, user: &str) -> Result<()> {
    clear_lock_and_failures(tx, user)?;
    tx.record(&Event {
        name: "account_unlocked",
        target: Some(user),
        outcome: "timeout",
        detail: "unlock_time passed".into(),
        ..Default::default()
    })
}

/// Clears an expired lock and the failures that set it, so the account starts afresh.
pub(super) fn clear_lock_and_failures(conn: &Connection, user: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM locks WHERE user = ?1", params![user])?;
    conn.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
    Ok(())
}

/// The failure count and a failures lock, but never an administrative lock.
pub(super) fn clear_failures_and_their_lock(conn: &Connection, user: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
    conn.execute(
        "DELETE FROM locks WHERE user = ?1 AND kind = 'failures'",
        params![user],
    )?;
    Ok(())
}

impl Lockout for SqliteStore {
    fn begin_attempt(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
        source: &AttemptSource<'_>,
    ) -> Result<Begin> {
        self.audited(now, |tx| {
            match lockout::gate(lock_of(tx, user)?.as_ref(), now) {
                Gate::Locked { until } => {
                    insert_failure(tx, user, now, source, true)?;
                    return Ok(Outcome::Commit(Begin::Locked { until }));
                }
                Gate::Expired => clear_expired_lock(tx, user)?,
                Gate::Open => {}
            }
            let counted = failures_in_window(tx, user, policy.window_start(now))?;
            if !policy.attempt_allowed(counted, root_account) {
                // Attempts in flight already fill the window: refuse like a lock.
                insert_failure(tx, user, now, source, true)?;
                return Ok(Outcome::Commit(Begin::Locked {
                    until: policy.prospective_until(root_account, now),
                }));
            }
            let reservation = insert_failure(tx, user, now, source, false)?;
            Ok(Outcome::Commit(Begin::Proceed { reservation }))
        })
    }

    fn attempt_succeeded(
        &mut self,
        user: &str,
        now: i64,
        success: &Success<'_>,
    ) -> Result<Succeeded> {
        self.audited(now, |tx| {
            if let Some(proven) = success.generation {
                let current: Option<i64> = tx
                    .query_row(
                        "SELECT generation FROM users WHERE name = ?1",
                        params![user],
                        |r| r.get(0),
                    )
                    .optional()?;
                if current != Some(proven) {
                    return Ok(Outcome::Rollback(Succeeded::ChangedMeanwhile));
                }
            }
            if let Gate::Locked { until } = lockout::gate(lock_of(tx, user)?.as_ref(), now) {
                return Ok(Outcome::Commit(Succeeded::LockedMeanwhile { until }));
            }
            tx.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
            tx.execute("DELETE FROM locks WHERE user = ?1", params![user])?;
            // docs/audit.md: a rehash writes hash_upgraded and then the login's event.
            let upgraded = match success.rehash {
                Some((old, new)) => upgrade_hash(tx, user, old, new)?,
                None => false,
            };
            if let Some(event) = success.event {
                tx.record(event)?;
            }
            Ok(Outcome::Commit(Succeeded::Recorded { upgraded }))
        })
    }

    fn attempt_failed(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
    ) -> Result<Option<Lock>> {
        self.audited(now, |tx| {
            let counted = failures_in_window(tx, user, policy.window_start(now))?;
            let new_lock = match lock_of(tx, user)? {
                Some(_) => None,
                None => policy.lock_after_failure(counted, root_account, now),
            };
            if let Some(lock) = &new_lock {
                insert_lock(tx, user, lock, None)?;
                tx.record(&Event {
                    name: "account_locked",
                    target: Some(user),
                    outcome: "locked",
                    detail: format!(
                        "{counted} failures in the window; unlock={}",
                        lock.until
                            .map_or("administrator".to_string(), crate::system::time::rfc3339)
                    ),
                    ..Default::default()
                })?;
            }
            Ok(Outcome::Commit(new_lock))
        })
    }

    fn cancel_attempt(&mut self, reservation: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM failures WHERE id = ?1", params![reservation])?;
        Ok(())
    }

    fn current_lock(&mut self, user: &str, now: i64) -> Result<Option<Option<i64>>> {
        self.audited(now, |tx| {
            let result = match lockout::gate(lock_of(tx, user)?.as_ref(), now) {
                Gate::Locked { until } => Some(until),
                Gate::Expired => {
                    clear_expired_lock(tx, user)?;
                    None
                }
                Gate::Open => None,
            };
            Ok(Outcome::Commit(result))
        })
    }

    fn lock_account(
        &mut self,
        user: &str,
        reason: Option<&str>,
        by_uid: u32,
        now: i64,
    ) -> Result<std::result::Result<Vec<RevokedSession>, WriteConflict>> {
        self.audited(now, |tx| {
            if !exists(tx, user)? {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            let lock = Lock {
                since: now,
                until: None,
                kind: LockKind::Administrator,
                reason: reason.map(str::to_owned),
            };
            insert_lock(tx, user, &lock, Some(by_uid))?;
            let revoked = sessions::revoke(tx, user, None, "administrative lock", now)?;
            tx.record(&Event {
                name: "admin_lock",
                actor_uid: Some(by_uid),
                target: Some(user),
                outcome: "ok",
                detail: format!(
                    "reason={:?} sessions_revoked={}",
                    reason.unwrap_or(""),
                    revoked.len()
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(revoked)))
        })
    }

    fn clear_failures(&mut self, user: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        clear_failures_and_their_lock(&tx, user)?;
        tx.commit()?;
        Ok(())
    }

    fn admin_locked(&mut self, user: &str) -> Result<bool> {
        Ok(lock_of(&self.conn, user)?.is_some_and(|l| l.kind == LockKind::Administrator))
    }

    fn unlock_account(
        &mut self,
        user: &str,
        by_uid: u32,
        now: i64,
    ) -> Result<std::result::Result<bool, WriteConflict>> {
        self.audited(now, |tx| {
            if !exists(tx, user)? {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            let was_locked = lock_of(tx, user)?.is_some();
            clear_lock_and_failures(tx, user)?;
            tx.record(&Event {
                name: "account_unlocked",
                actor_uid: Some(by_uid),
                target: Some(user),
                outcome: "ok",
                detail: format!("was_locked={was_locked}"),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(was_locked)))
        })
    }

    fn lockout_state(&mut self, user: &str, policy: &Policy, now: i64) -> Result<LockoutState> {
        let last_failure = self
            .conn
            .query_row(
                "SELECT time, service, rhost, tty, peer_uid FROM failures
                 WHERE user = ?1 ORDER BY id DESC LIMIT 1",
                params![user],
                |r| {
                    Ok(FailureRecord {
                        time: r.get(0)?,
                        service: r.get(1)?,
                        rhost: r.get(2)?,
                        tty: r.get(3)?,
                        peer_uid: r.get(4)?,
                    })
                },
            )
            .optional()?;
        let lock =
            lock_of(&self.conn, user)?.filter(|l| lockout::gate(Some(l), now) != Gate::Expired);
        Ok(LockoutState {
            failures_in_window: failures_in_window(&self.conn, user, policy.window_start(now))?,
            lock,
            last_failure,
        })
    }

    fn troubled_accounts_page(
        &mut self,
        after: Option<&str>,
        window_start: i64,
        limit: usize,
    ) -> Result<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users u
             WHERE (?1 IS NULL OR name > ?1)
               AND (EXISTS (SELECT 1 FROM locks l WHERE l.user = u.name)
                    OR EXISTS (SELECT 1 FROM failures f WHERE f.user = u.name AND f.time >= ?2))
             ORDER BY name LIMIT ?3"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, window_start, limit as i64], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;
    use crate::store::*;

    fn policy(deny: u32, unlock_after: Option<i64>) -> Policy {
        Policy {
            deny,
            fail_interval: 900,
            unlock_after,
            root_unlock_after: None,
            even_deny_root: false,
        }
    }

    fn src() -> AttemptSource<'static> {
        AttemptSource {
            service: "sshd",
            rhost: Some("192.0.2.7"),
            tty: None,
            peer_uid: 0,
        }
    }

    #[test]
    fn reservations_bound_parallel_attempts_to_deny() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(3, None);
        let begun: Vec<Begin> = (0..10)
            .map(|_| s.begin_attempt("a", false, &p, 100, &src()).unwrap())
            .collect();
        let proceeding = begun
            .iter()
            .filter(|b| matches!(b, Begin::Proceed { .. }))
            .count();
        assert_eq!(proceeding, 3);
        for _ in 0..3 {
            s.attempt_failed("a", false, &p, 100).unwrap();
        }
        assert!(matches!(
            s.begin_attempt("a", false, &p, 101, &src()).unwrap(),
            Begin::Locked { until: None }
        ));
    }

    #[test]
    fn success_clears_and_a_lock_set_meanwhile_wins() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(2, Some(60));
        s.begin_attempt("a", false, &p, 0, &src()).unwrap();
        assert_eq!(
            s.attempt_succeeded("a", 0, &Success::default()).unwrap(),
            Succeeded::Recorded { upgraded: false }
        );
        assert_eq!(s.lockout_state("a", &p, 0).unwrap().failures_in_window, 0);
        // Two failures lock; a success verified in parallel must not override that.
        for _ in 0..2 {
            s.begin_attempt("a", false, &p, 10, &src()).unwrap();
            s.attempt_failed("a", false, &p, 10).unwrap();
        }
        assert_eq!(
            s.attempt_succeeded("a", 11, &Success::default()).unwrap(),
            Succeeded::LockedMeanwhile { until: Some(70) }
        );
    }

    #[test]
    fn expired_lock_clears_itself_and_locked_attempts_do_not_extend_it() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(1, Some(60));
        s.begin_attempt("a", false, &p, 0, &src()).unwrap();
        assert!(s.attempt_failed("a", false, &p, 0).unwrap().is_some());
        assert_eq!(
            s.begin_attempt("a", false, &p, 59, &src()).unwrap(),
            Begin::Locked { until: Some(60) }
        );
        assert!(matches!(
            s.begin_attempt("a", false, &p, 60, &src()).unwrap(),
            Begin::Proceed { .. }
        ));
    }

    #[test]
    fn admin_lock_survives_time_and_unlock_clears_everything() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(5, Some(1));
        s.lock_account("a", Some("incident 42"), 0, 0)
            .unwrap()
            .unwrap();
        assert_eq!(s.current_lock("a", 1_000_000).unwrap(), Some(None));
        let state = s.lockout_state("a", &p, 0).unwrap();
        assert_eq!(state.lock.unwrap().reason.as_deref(), Some("incident 42"));
        assert_eq!(s.unlock_account("a", 0, 0).unwrap(), Ok(true));
        assert_eq!(s.current_lock("a", 0).unwrap(), None);
        assert_eq!(
            s.unlock_account("nobody", 0, 0).unwrap(),
            Err(WriteConflict::NotFound)
        );
    }

    #[test]
    fn cancelled_reservations_do_not_count() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(1, None);
        let Begin::Proceed { reservation } = s.begin_attempt("a", false, &p, 0, &src()).unwrap()
        else {
            panic!("first attempt must proceed")
        };
        s.cancel_attempt(reservation).unwrap();
        assert!(matches!(
            s.begin_attempt("a", false, &p, 0, &src()).unwrap(),
            Begin::Proceed { .. }
        ));
    }

    #[test]
    fn removing_an_account_removes_its_failures_and_lock() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        s.lock_account("a", None, 0, 0).unwrap().unwrap();
        s.remove_account("a", 0).unwrap().unwrap();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        assert_eq!(s.current_lock("a", 0).unwrap(), None);
    }

    const YESCRYPT: &str =
        "$y$j9T$VbkXPm5C2wjBrvZ/6JpTu0$EYsos16gxNjxFH.c.NDlqDcYmS/wEthFBQCv4wQMMC/";

    #[test]
    fn schemes_are_counted() {
        let (_d, mut s) = temp_store();
        let pbkdf2 = crate::crypto::hashing::Hasher::new(1000, None)
            .hash(b"x")
            .unwrap();
        for (name, hash) in [
            ("a", Some(pbkdf2.as_str())),
            ("b", None),
            ("c", Some(YESCRYPT)),
            ("d", Some(YESCRYPT)),
            ("e", Some("$6$salt$truncated")),
            ("f", Some("F58dCJ6K8yNBk")),
        ] {
            s.insert_account(name, None, hash, false, 0)
                .unwrap()
                .unwrap();
        }
        assert_eq!(
            s.accounts_per_scheme().unwrap(),
            [
                ("descrypt", 1),
                ("none", 1),
                ("pbkdf2-sha256", 1),
                ("unknown", 1),
                ("yescrypt", 2)
            ]
            .map(|(n, c)| (n.to_string(), c))
        );
    }

    fn events(s: &SqliteStore) -> Vec<(String, String)> {
        let mut stmt = s
            .conn
            .prepare("SELECT event, detail FROM audit ORDER BY seq")
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn a_success_upgrades_the_hash_with_the_login_in_one_transaction() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some(YESCRYPT), false, 0)
            .unwrap()
            .unwrap();
        let p = policy(3, None);
        s.begin_attempt("a", false, &p, 0, &src()).unwrap();
        let new = crate::crypto::hashing::Hasher::new(1000, None)
            .hash(b"x")
            .unwrap();
        let login = Event {
            name: "login_success",
            target: Some("a"),
            outcome: "ok",
            ..Default::default()
        };
        let success = Success {
            rehash: Some((YESCRYPT, &new)),
            event: Some(&login),
            generation: None,
        };
        let before = events(&s).len();
        assert_eq!(
            s.attempt_succeeded("a", 1, &success).unwrap(),
            Succeeded::Recorded { upgraded: true }
        );
        assert_eq!(
            s.account("a").unwrap().unwrap().hash.as_deref(),
            Some(&*new)
        );
        assert_eq!(
            events(&s)[before..],
            [
                (
                    "hash_upgraded".to_string(),
                    "from=\"yescrypt\" to=\"pbkdf2-sha256 i=1000\"".to_string()
                ),
                ("login_success".to_string(), String::new()),
            ]
        );
        // A second success with the old hash in hand finds it gone (an administrator's hash, or
        // a parallel login's upgrade, stands) and records the login alone.
        let other = crate::crypto::hashing::Hasher::new(1000, None)
            .hash(b"x")
            .unwrap();
        let success = Success {
            rehash: Some((YESCRYPT, &other)),
            event: Some(&login),
            generation: None,
        };
        assert_eq!(
            s.attempt_succeeded("a", 2, &success).unwrap(),
            Succeeded::Recorded { upgraded: false }
        );
        assert_eq!(
            s.account("a").unwrap().unwrap().hash.as_deref(),
            Some(&*new)
        );
        assert_eq!(events(&s).last().unwrap().0, "login_success");
    }

    #[test]
    fn a_success_locked_out_meanwhile_neither_upgrades_nor_records_the_login() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some(YESCRYPT), false, 0)
            .unwrap()
            .unwrap();
        s.lock_account("a", None, 0, 0).unwrap().unwrap();
        let new = crate::crypto::hashing::Hasher::new(1000, None)
            .hash(b"x")
            .unwrap();
        let login = Event {
            name: "login_success",
            target: Some("a"),
            outcome: "ok",
            ..Default::default()
        };
        let before = events(&s).len();
        let success = Success {
            rehash: Some((YESCRYPT, &new)),
            event: Some(&login),
            generation: None,
        };
        assert_eq!(
            s.attempt_succeeded("a", 1, &success).unwrap(),
            Succeeded::LockedMeanwhile { until: None }
        );
        assert_eq!(
            s.account("a").unwrap().unwrap().hash.as_deref(),
            Some(YESCRYPT)
        );
        assert_eq!(events(&s).len(), before);
    }
}
