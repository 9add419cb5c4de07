//! The SQLite store. Only this module opens the database; only credd uses this module.
//!
//! WAL with `synchronous=FULL`, foreign keys on, the schema version in `user_version` and
//! forward-only migrations applied in one transaction at start. Every multi-row change is one
//! transaction, so a crash leaves the old state or the new one.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{DaemonError, Result};
use crate::lockout::{self, Gate, Lock, LockKind, Policy};
use crate::timefmt::now_unix;

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

/// Each entry moves the schema from version `index` to `index + 1`. Never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: accounts.
    "CREATE TABLE users (
        name        TEXT PRIMARY KEY NOT NULL,
        uid         INTEGER UNIQUE,
        hash        TEXT,
        disabled    INTEGER NOT NULL DEFAULT 0,
        must_change INTEGER NOT NULL DEFAULT 0,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    ) STRICT;",
    // 2: lockout. Failures are reserved before verification and deleted by a success; rows
    // written while locked are kept for the record but never counted.
    "CREATE TABLE failures (
        id           INTEGER PRIMARY KEY,
        user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        time         INTEGER NOT NULL,
        service      TEXT NOT NULL,
        rhost        TEXT,
        tty          TEXT,
        peer_uid     INTEGER NOT NULL,
        while_locked INTEGER NOT NULL DEFAULT 0
    ) STRICT;
    CREATE INDEX failures_by_user_time ON failures(user, time);
    CREATE TABLE locks (
        user      TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        since     INTEGER NOT NULL,
        until     INTEGER,
        kind      TEXT NOT NULL CHECK (kind IN ('failures', 'administrator')),
        reason    TEXT,
        locked_by INTEGER
    ) STRICT;",
];

/// Failure rows kept per account (newest first): enough for `status`, and far above
/// [`crate::lockout::MAX_DENY`] so trimming never undercounts a window.
const FAILURES_KEPT_PER_ACCOUNT: i64 = 200;

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// One account as stored. The hash never leaves the daemon.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    pub uid: Option<u32>,
    pub hash: Option<String>,
    pub disabled: bool,
    pub must_change: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("uid", &self.uid)
            .field("hash", &self.hash.as_ref().map(|_| "***"))
            .field("disabled", &self.disabled)
            .field("must_change", &self.must_change)
            .finish()
    }
}

/// Why a write was refused; the handlers turn these into typed replies.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteConflict {
    NameTaken,
    UidTaken(String),
    NotFound,
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

const ACCOUNT_COLUMNS: &str = "name, uid, hash, disabled, must_change, created_at, updated_at";

fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: row.get(0)?,
        uid: row.get(1)?,
        hash: row.get(2)?,
        disabled: row.get(3)?,
        must_change: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
    })
}

impl Store {
    /// Opens or creates the database with mode 0600 and brings its schema up to date. A database
    /// that others can read is refused: it holds every password hash.
    pub fn open(path: &Path) -> Result<Store> {
        ensure_private_file(path)?;
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DaemonError::StoreSetup {
                path: path.to_path_buf(),
                message: format!("could not enable WAL (journal_mode is {mode})"),
            });
        }
        conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")?;
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(DaemonError::StoreSetup {
                path: path.to_path_buf(),
                message: format!("quick_check failed: {check}"),
            });
        }
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let current: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if current > SCHEMA_VERSION {
            return Err(DaemonError::StoreSetup {
                path: self.path.clone(),
                message: format!(
                    "schema version {current} is newer than this credd understands ({SCHEMA_VERSION}); \
                     refusing to run an older daemon on it"
                ),
            });
        }
        let tx = self.conn.transaction()?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        Ok(())
    }

    #[cfg(test)]
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn account(&self, name: &str) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE name = ?1");
        Ok(self
            .conn
            .query_row(&sql, params![name], account_from_row)
            .optional()?)
    }

    pub fn account_by_uid(&self, uid: u32) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE uid = ?1");
        Ok(self
            .conn
            .query_row(&sql, params![uid], account_from_row)
            .optional()?)
    }

    /// Up to `limit` accounts whose names sort after `after`: listings page through the table
    /// so the store lock is never held while a slow client reads.
    pub fn accounts_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit as i64], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn insert_account(
        &mut self,
        name: &str,
        uid: Option<u32>,
        hash: Option<&str>,
        must_change: bool,
    ) -> Result<std::result::Result<Account, WriteConflict>> {
        let tx = self.conn.transaction()?;
        let name_taken: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
            params![name],
            |r| r.get(0),
        )?;
        if name_taken {
            return Ok(Err(WriteConflict::NameTaken));
        }
        if let Some(uid) = uid {
            let holder: Option<String> = tx
                .query_row("SELECT name FROM users WHERE uid = ?1", params![uid], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(holder) = holder {
                return Ok(Err(WriteConflict::UidTaken(holder)));
            }
        }
        let now = now_unix();
        tx.execute(
            "INSERT INTO users (name, uid, hash, disabled, must_change, created_at, updated_at)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5)",
            params![name, uid, hash, must_change, now],
        )?;
        tx.commit()?;
        Ok(Ok(Account {
            name: name.to_string(),
            uid,
            hash: hash.map(str::to_string),
            disabled: false,
            must_change,
            created_at: now,
            updated_at: now,
        }))
    }

    pub fn remove_account(&mut self, name: &str) -> Result<std::result::Result<(), WriteConflict>> {
        let n = self
            .conn
            .execute("DELETE FROM users WHERE name = ?1", params![name])?;
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(WriteConflict::NotFound)
        })
    }

    pub fn set_disabled(
        &mut self,
        name: &str,
        disabled: bool,
    ) -> Result<std::result::Result<(), WriteConflict>> {
        let n = self.conn.execute(
            "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE name = ?1",
            params![name, disabled, now_unix()],
        )?;
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(WriteConflict::NotFound)
        })
    }

    /// Replaces `old` by `new` only if the account still has `old`: a transparent rehash must
    /// never overwrite a password an administrator set in the meantime.
    pub fn replace_hash(&mut self, name: &str, old: &str, new: &str) -> Result<bool> {
        let n = self.conn.execute(
            "UPDATE users SET hash = ?3 WHERE name = ?1 AND hash = ?2",
            params![name, old, new],
        )?;
        Ok(n == 1)
    }

    pub fn set_hash(
        &mut self,
        name: &str,
        hash: &str,
        must_change: bool,
    ) -> Result<std::result::Result<(), WriteConflict>> {
        let n = self.conn.execute(
            "UPDATE users SET hash = ?2, must_change = ?3, updated_at = ?4 WHERE name = ?1",
            params![name, hash, must_change, now_unix()],
        )?;
        Ok(if n == 1 {
            Ok(())
        } else {
            Err(WriteConflict::NotFound)
        })
    }
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

/// Clears an expired lock and the failures that set it, so the account starts afresh.
fn clear_lock_and_failures(conn: &Connection, user: &str) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM locks WHERE user = ?1", params![user])?;
    conn.execute("DELETE FROM failures WHERE user = ?1", params![user])?;
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
        match lockout::gate(lock_of(&tx, user)?.as_ref(), now) {
            Gate::Locked { until } => {
                insert_failure(&tx, user, now, source, true)?;
                tx.commit()?;
                return Ok(Begin::Locked { until });
            }
            Gate::Expired => clear_lock_and_failures(&tx, user)?,
            Gate::Open => {}
        }
        let counted = failures_in_window(&tx, user, policy.window_start(now))?;
        if !policy.attempt_allowed(counted, root_account) {
            // Attempts in flight already fill the window: refuse like a lock.
            insert_failure(&tx, user, now, source, true)?;
            tx.commit()?;
            return Ok(Begin::Locked {
                until: policy.prospective_until(root_account, now),
            });
        }
        let reservation = insert_failure(&tx, user, now, source, false)?;
        tx.commit()?;
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
        if let Some(lock) = &new_lock {
            insert_lock(&tx, user, lock, None)?;
        }
        tx.commit()?;
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
        let result = match lockout::gate(lock_of(&tx, user)?.as_ref(), now) {
            Gate::Locked { until } => Some(until),
            Gate::Expired => {
                clear_lock_and_failures(&tx, user)?;
                None
            }
            Gate::Open => None,
        };
        tx.commit()?;
        Ok(result)
    }

    /// An administrative lock: replaces any failures lock, never lifts by time.
    pub fn lock_account(
        &mut self,
        user: &str,
        reason: Option<&str>,
        by_uid: u32,
        now: i64,
    ) -> Result<std::result::Result<(), WriteConflict>> {
        let tx = self.conn.transaction()?;
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
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Lifts any lock and clears the failure count.
    pub fn unlock_account(
        &mut self,
        user: &str,
    ) -> Result<std::result::Result<bool, WriteConflict>> {
        let tx = self.conn.transaction()?;
        if !exists(&tx, user)? {
            return Ok(Err(WriteConflict::NotFound));
        }
        let was_locked = lock_of(&tx, user)?.is_some();
        clear_lock_and_failures(&tx, user)?;
        tx.commit()?;
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

fn exists(conn: &Connection, user: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
        params![user],
        |r| r.get(0),
    )
}

/// Creates the database file 0600 if it is missing (SQLite would honour the umask instead), and
/// refuses an existing one that group or others can read or write.
fn ensure_private_file(path: &Path) -> Result<()> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(DaemonError::io(path, e)),
    }
    let meta = std::fs::metadata(path).map_err(|e| DaemonError::io(path, e))?;
    if !meta.is_file() {
        return Err(DaemonError::StoreSetup {
            path: path.to_path_buf(),
            message: "not a regular file".into(),
        });
    }
    if meta.mode() & 0o077 != 0 {
        return Err(DaemonError::StoreSetup {
            path: path.to_path_buf(),
            message: format!(
                "mode {:o} lets others read password hashes; run `chmod 600 {}`",
                meta.mode() & 0o7777,
                path.display()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("credd.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn new_database_is_private_and_migrated() {
        let (dir, store) = temp_store();
        let mode = std::fs::metadata(dir.path().join("credd.db"))
            .unwrap()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
    }

    #[test]
    fn readable_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        drop(Store::open(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn accounts_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        {
            let mut s = Store::open(&path).unwrap();
            s.insert_account("alice", Some(1001), Some("$h"), false)
                .unwrap()
                .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let a = s.account("alice").unwrap().unwrap();
        assert_eq!(a.uid, Some(1001));
    }

    #[test]
    fn duplicates_are_conflicts_not_errors() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", Some(5), None, false)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.insert_account("a", None, None, false)
                .unwrap()
                .unwrap_err(),
            WriteConflict::NameTaken
        );
        assert_eq!(
            s.insert_account("b", Some(5), None, false)
                .unwrap()
                .unwrap_err(),
            WriteConflict::UidTaken("a".into())
        );
        assert_eq!(
            s.remove_account("zz").unwrap(),
            Err(WriteConflict::NotFound)
        );
    }

    #[test]
    fn pages_cover_every_account_once() {
        let (_d, mut s) = temp_store();
        for i in 0..25 {
            s.insert_account(&format!("u{i:02}"), None, None, false)
                .unwrap()
                .unwrap();
        }
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = s.accounts_page(after.as_deref(), 10).unwrap();
            if page.is_empty() {
                break;
            }
            after = page.last().map(|a| a.name.clone());
            seen.extend(page.into_iter().map(|a| a.name));
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen.first().unwrap(), "u00");
        assert_eq!(seen.last().unwrap(), "u24");
    }

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
        s.insert_account("a", None, Some("$h"), false)
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
        s.insert_account("a", None, Some("$h"), false)
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
        s.insert_account("a", None, Some("$h"), false)
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
        s.insert_account("a", None, Some("$h"), false)
            .unwrap()
            .unwrap();
        let p = policy(5, Some(1));
        s.lock_account("a", Some("incident 42"), 0, 0)
            .unwrap()
            .unwrap();
        assert_eq!(s.current_lock("a", 1_000_000).unwrap(), Some(None));
        let state = s.lockout_state("a", &p, 0).unwrap();
        assert_eq!(state.lock.unwrap().reason.as_deref(), Some("incident 42"));
        assert_eq!(s.unlock_account("a").unwrap(), Ok(true));
        assert_eq!(s.current_lock("a", 0).unwrap(), None);
        assert_eq!(
            s.unlock_account("nobody").unwrap(),
            Err(WriteConflict::NotFound)
        );
    }

    #[test]
    fn cancelled_reservations_do_not_count() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false)
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
        s.insert_account("a", None, Some("$h"), false)
            .unwrap()
            .unwrap();
        s.lock_account("a", None, 0, 0).unwrap().unwrap();
        s.remove_account("a").unwrap().unwrap();
        s.insert_account("a", None, Some("$h"), false)
            .unwrap()
            .unwrap();
        assert_eq!(s.current_lock("a", 0).unwrap(), None);
    }

    #[test]
    fn schemes_are_counted() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$pbkdf2-sha256$i=1000,l=32$x$y"), false)
            .unwrap()
            .unwrap();
        s.insert_account("b", None, None, false).unwrap().unwrap();
        assert_eq!(
            s.accounts_per_scheme().unwrap(),
            vec![("none".to_string(), 1), ("pbkdf2-sha256".to_string(), 1)]
        );
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        drop(Store::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let err = Store::open(&path).err().unwrap().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
