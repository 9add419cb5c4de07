//! The SQLite store. Only this module opens the database; only credd uses this module.
//!
//! WAL with `synchronous=FULL`, foreign keys on, the schema version in `user_version` and
//! forward-only migrations applied in one transaction at start. Every multi-row change is one
//! transaction, so a crash leaves the old state or the new one.

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, params};

use crate::audit::chain::{self, AuditKey, Event};
use crate::audit::syslog::Sink;
use crate::error::{DaemonError, Result};
use crate::store::{Account, Maintenance, Reader, Store};
use audited::AuditedTx;

mod accounts;
mod alerts;
mod audit;
mod audited;
pub mod backup;
mod codes;
mod import;
mod lockout;
mod maintenance;
mod pepper;
mod reader;
pub mod schema;
mod sessions;

pub use reader::SqliteReader;

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
    // 3: resets, sessions and the audit table (its integrity chain comes with the audit trail).
    "CREATE TABLE audit (
        seq       INTEGER PRIMARY KEY,
        time      INTEGER NOT NULL,
        event     TEXT NOT NULL,
        actor_uid INTEGER,
        target    TEXT,
        outcome   TEXT NOT NULL,
        detail    TEXT NOT NULL DEFAULT ''
    ) STRICT;
    CREATE INDEX audit_by_event_time ON audit(event, time);
    CREATE TABLE reset_codes (
        user       TEXT PRIMARY KEY NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        digest     BLOB NOT NULL,
        issued_at  INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        attempts   INTEGER NOT NULL DEFAULT 0,
        issued_by  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        id             INTEGER PRIMARY KEY,
        user           TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        service        TEXT NOT NULL,
        tty            TEXT,
        rhost          TEXT,
        pid            INTEGER NOT NULL,
        pid_start      INTEGER,
        audit_session  INTEGER,
        loginuid       INTEGER,
        opened_at      INTEGER NOT NULL,
        revoked_at     INTEGER,
        revoked_reason TEXT
    ) STRICT;
    CREATE INDEX sessions_by_user ON sessions(user);",
    // 4: the audit chain: a unique event id, the PAM fields, and the MAC links.
    "ALTER TABLE audit ADD COLUMN event_id TEXT;
    ALTER TABLE audit ADD COLUMN service TEXT;
    ALTER TABLE audit ADD COLUMN rhost TEXT;
    ALTER TABLE audit ADD COLUMN tty TEXT;
    ALTER TABLE audit ADD COLUMN prev_mac BLOB;
    ALTER TABLE audit ADD COLUMN mac BLOB;
    CREATE UNIQUE INDEX audit_by_event_id ON audit(event_id);
    CREATE INDEX audit_by_target ON audit(target, seq);",
    // 5: a generation per account, bumped by every change of its credentials (reset, password
    // set or changed, code redeemed): a write proven against one state is refused once it moved.
    "ALTER TABLE users ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;",
    // 6: the sources of successful logins, per account (alerts: a reset code redeemed from a
    // source no login came from). At most alerts::SOURCES_PER_ACCOUNT rows per account.
    "CREATE TABLE login_sources (
        user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
        source    TEXT NOT NULL,
        last_seen INTEGER NOT NULL,
        PRIMARY KEY (user, source)
    ) STRICT;",
];

/// Failure rows kept per account (newest first): enough for `status`, and far above
/// [`crate::policy::lockout::MAX_DENY`] so trimming never undercounts a window.
pub(super) const FAILURES_KEPT_PER_ACCOUNT: i64 = 200;

pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The schema version whose migration introduced the audit chain (MACs): the only step that may
/// seal rows, those written before it.
const CHAIN_VERSION: i64 = 4;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Keys the audit chain; kept outside the database.
    audit_key: AuditKey,
    /// Where committed audit rows go next (syslog).
    sink: Arc<Sink>,
    /// What `PRAGMA quick_check` found at start, if anything.
    damage: Option<String>,
}

pub(super) const ACCOUNT_COLUMNS: &str =
    "name, uid, hash, disabled, must_change, created_at, updated_at, generation";

pub(super) fn account_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        name: row.get(0)?,
        uid: row.get(1)?,
        hash: row.get(2)?,
        disabled: row.get(3)?,
        must_change: row.get(4)?,
        created_at: row.get(5)?,
        updated_at: row.get(6)?,
        generation: row.get(7)?,
    })
}

impl SqliteStore {
    /// Opens or creates the database with mode 0600 and brings its schema up to date. A database
    /// that others can read is refused: it holds every password hash.
    pub fn open(path: &Path, audit_key: AuditKey, sink: Arc<Sink>) -> Result<SqliteStore> {
        ensure_private_file(path)?;
        // NOFOLLOW closes the window between the check above and the open.
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_URI
                | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        // Before the first statement: nothing the file's schema names may run with our rights.
        schema::harden(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DaemonError::StoreSetup {
                path: path.to_path_buf(),
                message: format!("could not enable WAL (journal_mode is {mode})"),
            });
        }
        // secure_delete: a replaced hash or a consumed code digest is zeroed in the file rather
        // than left in free space, where a copy of the database would still hold it.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;",
        )?;
        let mut store = SqliteStore {
            conn,
            path: path.to_path_buf(),
            audit_key,
            sink,
            damage: None,
        };
        // A damaged file does not stop the daemon: logins keep being decided with the hashes that
        // can still be read (DESIGN §5), bulk changes are refused, and the damage is reported as
        // a critical event by the caller.
        store.damage = store.quick_check()?;
        store.migrate()?;
        Ok(store)
    }

    /// The audit chain's key (it also keys the MAC of backups).
    pub fn audit_key(&self) -> &AuditKey {
        &self.audit_key
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.path
    }
}

impl Store for SqliteStore {
    fn reader(&self) -> Result<Box<dyn Reader>> {
        Ok(Box::new(SqliteReader::open(&self.path)?))
    }

    fn embedded(&mut self) -> Option<&mut SqliteStore> {
        Some(self)
    }
}

impl SqliteStore {
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
        // Exactly the schema of its version before migrating it, and of ours after.
        self.verify_schema(current)?;
        let tx = self.conn.transaction()?;
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            // The rows written before the chain existed are sealed by the migration that
            // introduces it, once, in its transaction. Never afterwards: a NULL MAC on a chained
            // database is tampering (an edited row unsealed to be resealed), which `audit verify`
            // names; resealing it at start would launder the edit with the real key.
            if version as i64 + 1 == CHAIN_VERSION {
                let sealed = chain::seal_unsealed(&tx, &self.audit_key)?;
                if sealed > 0 {
                    eprintln!("credd: sealed {sealed} audit rows written before the chain existed");
                }
            }
            tx.pragma_update(None, "user_version", version as i64 + 1)?;
        }
        tx.commit()?;
        self.verify_schema(SCHEMA_VERSION)
    }

    /// Refuses a database whose schema is not exactly what the migrations up to `version`
    /// create, naming every unexpected, missing or altered object.
    fn verify_schema(&self, version: i64) -> Result<()> {
        schema::verify(&self.conn, version)?.map_err(|problems| DaemonError::StoreSetup {
            path: self.path.clone(),
            message: format!(
                "its schema is not the one credd creates: {}; refusing to open it \
                 (restore a backup taken by `credctl backup`)",
                problems.join("; ")
            ),
        })
    }
}

impl SqliteStore {
    #[cfg(test)]
    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }
}

fn admin_event<'a>(
    name: &'static str,
    actor_uid: u32,
    target: &'a str,
    detail: String,
) -> Event<'a> {
    Event {
        name,
        actor_uid: Some(actor_uid),
        target: Some(target),
        outcome: "ok",
        detail,
        ..Default::default()
    }
}

/// Replaces `old` by `new` only if the account still has `old` (a transparent rehash must never
/// overwrite a password an administrator set meanwhile), with its `hash_upgraded` audit row in
/// the caller's transaction. `false`: the account no longer has `old`.
fn upgrade_hash(tx: &mut AuditedTx<'_>, name: &str, old: &str, new: &str) -> Result<bool> {
    let n = tx.execute(
        "UPDATE users SET hash = ?3 WHERE name = ?1 AND hash = ?2",
        params![name, old, new],
    )?;
    if n != 1 {
        return Ok(false);
    }
    tx.record(&Event {
        name: "hash_upgraded",
        target: Some(name),
        outcome: "ok",
        detail: format!(
            "from={:?} to={:?}",
            crate::crypto::hashing::describe(old),
            crate::crypto::hashing::describe(new)
        ),
        ..Default::default()
    })?;
    Ok(true)
}

pub(crate) fn exists(conn: &Connection, user: &str) -> rusqlite::Result<bool> {
    conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
        params![user],
        |r| r.get(0),
    )
}

/// Creates the database file 0600 if it is missing (SQLite would honour the umask instead), and
/// refuses an existing one that group or others can read or write. Refuses symbolic links for the
/// database and for SQLite's -wal and -shm files beside it: a link planted in the state directory
/// would make credd write hashes wherever it points (or read a forged store from there).
fn ensure_private_file(path: &Path) -> Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        if std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(DaemonError::StoreSetup {
                path: file.to_path_buf(),
                message: "is a symbolic link; credd does not follow links in its state directory"
                    .into(),
            });
        }
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => return Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(DaemonError::io(path, e)),
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| DaemonError::io(path, e))?;
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
pub(crate) mod tests {
    use super::*;
    use crate::store::*;
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open(path, AuditKey::for_tests(), Sink::disabled())
    }

    pub(crate) fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = open(&dir.path().join("credd.db")).unwrap();
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
        drop(open(&path).unwrap());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = open(&path).err().unwrap().to_string();
        assert!(err.contains("chmod 600"), "{err}");
    }

    #[test]
    fn accounts_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        {
            let mut s = open(&path).unwrap();
            s.insert_account("alice", Some(1001), Some("$h"), false, 0)
                .unwrap()
                .unwrap();
        }
        let mut s = open(&path).unwrap();
        let a = s.account("alice").unwrap().unwrap();
        assert_eq!(a.uid, Some(1001));
    }

    #[test]
    fn duplicates_are_conflicts_not_errors() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", Some(5), None, false, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            s.insert_account("a", None, None, false, 0)
                .unwrap()
                .unwrap_err(),
            WriteConflict::NameTaken
        );
        assert_eq!(
            s.insert_account("b", Some(5), None, false, 0)
                .unwrap()
                .unwrap_err(),
            WriteConflict::UidTaken("a".into())
        );
        assert_eq!(
            s.remove_account("zz", 0).unwrap(),
            Err(WriteConflict::NotFound)
        );
    }

    #[test]
    fn pages_cover_every_account_once() {
        let (_d, mut s) = temp_store();
        for i in 0..25 {
            s.insert_account(&format!("u{i:02}"), None, None, false, 0)
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

    #[test]
    fn only_the_chain_migration_seals_rows_and_a_nulled_mac_stays_a_finding() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        {
            // A schema-3 database (before the chain) with two rows.
            let c = Connection::open(&path).unwrap();
            let tx = c.unchecked_transaction().unwrap();
            for sql in &MIGRATIONS[..3] {
                tx.execute_batch(sql).unwrap();
            }
            tx.pragma_update(None, "user_version", 3).unwrap();
            tx.execute_batch(
                "INSERT INTO audit (seq, time, event, outcome) VALUES (1, 10, 'user_added', 'ok');
                 INSERT INTO audit (seq, time, event, outcome) VALUES (2, 11, 'user_added', 'ok');",
            )
            .unwrap();
            tx.commit().unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let mut store = open(&path).unwrap();
        let report = store.audit_verify().unwrap();
        assert_eq!((report.rows_checked, report.first_bad_seq), (2, None));
        drop(store);
        // After the migration: an edited row whose MAC was NULLed is not resealed.
        let c = Connection::open(&path).unwrap();
        c.execute_batch("UPDATE audit SET detail = 'forged', mac = NULL WHERE seq = 2;")
            .unwrap();
        drop(c);
        let mut store = open(&path).unwrap();
        let report = store.audit_verify().unwrap();
        assert_eq!(report.first_bad_seq, Some(2), "{report:?}");
        assert!(report.problem.unwrap().contains("no MAC"));
    }

    #[test]
    fn a_trigger_or_a_view_in_the_file_is_refused_by_name() {
        for (planted, named) in [
            (
                "CREATE TRIGGER keep AFTER UPDATE OF hash ON users
                 BEGIN UPDATE users SET hash = '$attacker' WHERE name = NEW.name; END;",
                "unexpected trigger \"keep\" on \"users\"",
            ),
            (
                "DROP TABLE reset_codes;
                 CREATE VIEW reset_codes AS SELECT name AS user, x'00' AS digest, 0 AS issued_at,
                   9999999999 AS expires_at, 0 AS attempts, 0 AS issued_by FROM users;",
                "unexpected view \"reset_codes\"",
            ),
            ("CREATE TABLE extra (x);", "unexpected table \"extra\""),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("credd.db");
            drop(open(&path).unwrap());
            Connection::open(&path)
                .unwrap()
                .execute_batch(planted)
                .unwrap();
            let err = open(&path)
                .err()
                .expect("opened a doctored database")
                .to_string();
            assert!(err.contains(named), "{err}");
        }
    }

    #[test]
    fn removing_an_account_still_cascades_with_triggers_off() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&ResetOrder {
            user: "a",
            digest: &digest,
            expires_at: 900,
            keep_password: false,
            admin_uid: 0,
            now: 0,
        })
        .unwrap()
        .unwrap();
        s.remove_account("a", 0).unwrap().unwrap();
        let left: i64 = s
            .conn
            .query_row("SELECT count(*) FROM reset_codes", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn accounts_of_schema_version_4_get_generation_0() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        {
            let c = Connection::open(&path).unwrap();
            for sql in &MIGRATIONS[..4] {
                c.execute_batch(sql).unwrap();
            }
            c.pragma_update(None, "user_version", 4).unwrap();
            c.execute(
                "INSERT INTO users (name, hash, created_at, updated_at) VALUES ('a', '$h', 0, 0)",
                [],
            )
            .unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut s = open(&path).unwrap();
        assert_eq!(s.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(s.account("a").unwrap().unwrap().generation, 0);
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.db");
        drop(open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(c);
        let err = open(&path).err().unwrap().to_string();
        assert!(err.contains("newer"), "{err}");
    }
}
