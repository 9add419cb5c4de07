//! Failures and locks: the lockout state of accounts (see `crate::lockout` for the rules).

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::Result;

use super::{
    ACCOUNT_COLUMNS, Account, FAILURES_KEPT_PER_ACCOUNT, RevokedSession, Store, WriteConflict,
    account_from_row, exists, sessions,
};
use crate::audit::{self, Event};
use crate::lockout::{self, Gate, Lock, LockKind, Policy};

/// Where a failed attempt came from, for `credctl status` and the audit trail.
#[derive(Debug, Clone)]
pub struct AttemptSource<'a> {
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub peer_uid: u32,
}

/// The outcome of reserving an attempt, before any hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Verify the password; `reservation` is the failure row to cancel if verification never runs.
    Proceed {
        reservation: i64,
    },
    Locked {
        until: Option<i64>,
    },
}

/// A recorded failure, as `status` reports it.
#[derive(Debug, Clone)]
pub struct FailureRecord {
    pub time: i64,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub peer_uid: u32,
}

/// Lockout state of one account.
#[derive(Debug, Clone)]
pub struct LockoutState {
    pub failures_in_window: u32,
    pub lock: Option<Lock>,
    pub last_failure: Option<FailureRecord>,
}

fn lock_of(conn: &Connection, user: &str) -> rusqlite::Result<Option<Lock>> {
    conn.query_row(
        "SELECT since, until, kind, reason FROM locks WHERE user = ?1",
        params![user],
        |r| {
            let kind: String = r.get(2)?;
            Ok(Lock {
                since: r.get(0)?,
                until: r.get(1)?,
                // The CHECK constraint admits only the two kinds; an unknown one stays locked.
                kind: LockKind::parse(&kind).unwrap_or(LockKind::Administrator),
                reason: r.get(3)?,
            })
        },
    )
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

fn unlocked_by_time(user: &str) -> Event<'_> {
    Event {
        name: "account_unlocked",
        target: Some(user),
        outcome: "timeout",
        detail: "unlock_time passed".into(),
        ..Default::default()
    }
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

impl Store {
    /// The check before hashing, and the reservation of this attempt, in one transaction: N
    /// parallel attempts see each other's reservations, so at most `deny` are ever verified.
    pub fn begin_attempt(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
        source: &AttemptSource<'_>,
    ) -> Result<Begin> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        match lockout::gate(lock_of(&tx, user)?.as_ref(), now) {
            Gate::Locked { until } => {
                insert_failure(&tx, user, now, source, true)?;
                tx.commit()?;
                self.sink.publish_events(std::mem::take(&mut out));
                return Ok(Begin::Locked { until });
            }
            Gate::Expired => {
                clear_lock_and_failures(&tx, user)?;
                out.push(audit::record(
                    &tx,
                    &self.audit_key,
                    now,
                    &unlocked_by_time(user),
                )?);
            }
            Gate::Open => {}
        }
        let counted = failures_in_window(&tx, user, policy.window_start(now))?;
        if !policy.attempt_allowed(counted, root_account) {
            // Attempts in flight already fill the window: refuse like a lock.
            insert_failure(&tx, user, now, source, true)?;
            tx.commit()?;
            self.sink.publish_events(std::mem::take(&mut out));
            return Ok(Begin::Locked {
                until: policy.prospective_until(root_account, now),
            });
        }
        let reservation = insert_failure(&tx, user, now, source, false)?;
        tx.commit()?;
        self.sink.publish_events(std::mem::take(&mut out));
        Ok(Begin::Proceed { reservation })
    }

    /// The password was right. Clears the failure count, unless a lock was set meanwhile by a
    /// parallel failing attempt: then the account is locked and the success must not count.
    pub fn attempt_succeeded(&mut self, user: &str, now: i64) -> Result<Option<Option<i64>>> {
        let tx = self.conn.transaction()?;
        if let Gate::Locked { until } = lockout::gate(lock_of(&tx, user)?.as_ref(), now) {
            tx.commit()?;
            return Ok(Some(until));
        }
        tx.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
        tx.execute("DELETE FROM locks WHERE user = ?1", params![user])?;
        tx.commit()?;
        Ok(None)
    }

    /// The password was wrong: the reservation stands as the failure; lock when the window is full.
    /// Returns the lock this failure set, if any.
    pub fn attempt_failed(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
    ) -> Result<Option<Lock>> {
        let tx = self.conn.transaction()?;
        let counted = failures_in_window(&tx, user, policy.window_start(now))?;
        let new_lock = match lock_of(&tx, user)? {
            Some(_) => None,
            None => policy.lock_after_failure(counted, root_account, now),
        };
        let mut out = Vec::new();
        if let Some(lock) = &new_lock {
            insert_lock(&tx, user, lock, None)?;
            out.push(audit::record(
                &tx,
                &self.audit_key,
                now,
                &Event {
                    name: "account_locked",
                    target: Some(user),
                    outcome: "locked",
                    detail: format!(
                        "{counted} failures in the window; unlock={}",
                        lock.until
                            .map_or("administrator".to_string(), crate::timefmt::rfc3339)
                    ),
                    ..Default::default()
                },
            )?);
        }
        tx.commit()?;
        self.sink.publish_events(out);
        Ok(new_lock)
    }

    /// Verification never ran (hashing pool busy): the attempt must not count.
    pub fn cancel_attempt(&mut self, reservation: i64) -> Result<()> {
        self.conn
            .execute("DELETE FROM failures WHERE id = ?1", params![reservation])?;
        Ok(())
    }

    /// The lock in force for `user` now, clearing an expired one (acct_mgmt's check).
    pub fn current_lock(&mut self, user: &str, now: i64) -> Result<Option<Option<i64>>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        let result = match lockout::gate(lock_of(&tx, user)?.as_ref(), now) {
            Gate::Locked { until } => Some(until),
            Gate::Expired => {
                clear_lock_and_failures(&tx, user)?;
                out.push(audit::record(
                    &tx,
                    &self.audit_key,
                    now,
                    &unlocked_by_time(user),
                )?);
                None
            }
            Gate::Open => None,
        };
        tx.commit()?;
        self.sink.publish_events(out);
        Ok(result)
    }

    /// An administrative lock: replaces any failures lock, never lifts by time, and revokes the
    /// account's sessions.
    pub fn lock_account(
        &mut self,
        user: &str,
        reason: Option<&str>,
        by_uid: u32,
        now: i64,
    ) -> Result<std::result::Result<Vec<RevokedSession>, WriteConflict>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        if !exists(&tx, user)? {
            return Ok(Err(WriteConflict::NotFound));
        }
        let lock = Lock {
            since: now,
            until: None,
            kind: LockKind::Administrator,
            reason: reason.map(str::to_owned),
        };
        insert_lock(&tx, user, &lock, Some(by_uid))?;
        let revoked = sessions::revoke(&tx, user, None, "administrative lock", now)?;
        out.push(audit::record(
            &tx,
            &self.audit_key,
            now,
            &Event {
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
            },
        )?);
        tx.commit()?;
        self.sink.publish_events(out);
        Ok(Ok(revoked))
    }

    /// Deletes the failure count and a failures lock (not an administrative one).
    pub fn clear_failures(&mut self, user: &str) -> Result<()> {
        let tx = self.conn.transaction()?;
        clear_failures_and_their_lock(&tx, user)?;
        tx.commit()?;
        Ok(())
    }

    /// Whether an administrative lock is in force (it blocks even a valid reset code).
    pub fn admin_locked(&self, user: &str) -> Result<bool> {
        Ok(lock_of(&self.conn, user)?.is_some_and(|l| l.kind == LockKind::Administrator))
    }

    /// Lifts any lock and clears the failure count.
    pub fn unlock_account(
        &mut self,
        user: &str,
        by_uid: u32,
        now: i64,
    ) -> Result<std::result::Result<bool, WriteConflict>> {
        let tx = self.conn.transaction()?;
        let mut out = Vec::new();
        if !exists(&tx, user)? {
            return Ok(Err(WriteConflict::NotFound));
        }
        let was_locked = lock_of(&tx, user)?.is_some();
        clear_lock_and_failures(&tx, user)?;
        out.push(audit::record(
            &tx,
            &self.audit_key,
            now,
            &Event {
                name: "account_unlocked",
                actor_uid: Some(by_uid),
                target: Some(user),
                outcome: "ok",
                detail: format!("was_locked={was_locked}"),
                ..Default::default()
            },
        )?);
        tx.commit()?;
        self.sink.publish_events(out);
        Ok(Ok(was_locked))
    }

    /// Failures in the window, the lock (as stored, even if its time is up) and the last failure.
    pub fn lockout_state(&self, user: &str, policy: &Policy, now: i64) -> Result<LockoutState> {
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

    /// Accounts with a lock or with failures since `window_start`, by name, paged like
    /// `accounts_page`.
    pub fn troubled_accounts_page(
        &self,
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

    /// Accounts per hash scheme (`none` for accounts without a password).
    pub fn accounts_per_scheme(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT CASE WHEN hash IS NULL THEN 'none'
                         ELSE substr(hash, 2, instr(substr(hash, 2), '$') - 1) END AS scheme,
                    count(*)
             FROM users GROUP BY scheme ORDER BY scheme",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;

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
        assert_eq!(s.attempt_succeeded("a", 0).unwrap(), None);
        assert_eq!(s.lockout_state("a", &p, 0).unwrap().failures_in_window, 0);
        // Two failures lock; a success verified in parallel must not override that.
        for _ in 0..2 {
            s.begin_attempt("a", false, &p, 10, &src()).unwrap();
            s.attempt_failed("a", false, &p, 10).unwrap();
        }
        assert_eq!(s.attempt_succeeded("a", 11).unwrap(), Some(Some(70)));
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

    #[test]
    fn schemes_are_counted() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$pbkdf2-sha256$i=1000,l=32$x$y"), false, 0)
            .unwrap()
            .unwrap();
        s.insert_account("b", None, None, false, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.accounts_per_scheme().unwrap(),
            vec![("none".to_string(), 1), ("pbkdf2-sha256".to_string(), 1)]
        );
    }
}
