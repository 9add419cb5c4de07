//! The local audit log: one row per security event, written in the same transaction as the change
//! it records, chained by HMAC-SHA256 under a key kept outside the database.
//!
//! Each row's MAC covers its own fields, its sequence number and the previous row's MAC, so editing
//! a row, deleting one or reordering them breaks the chain at a row `credctl audit verify` names —
//! even for someone who can write the database file but cannot read the key. Truncating the tail
//! leaves an intact but shorter chain; the chain head is checkpointed to syslog (see `auditlog`), so
//! the collector's copy shows what was cut. After its commit, each row also goes to syslog.

use std::cell::RefCell;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use hmac::{Hmac, KeyInit, Mac};
use rand::TryRng;
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use credd_proto::{AuditEntry, AuditReport};

use crate::error::{DaemonError, Result};
use crate::system::time::rfc3339;

const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;

/// The chain key. Created once with mode 0600 next to (never inside) the database.
pub struct AuditKey([u8; KEY_LEN]);

impl AuditKey {
    /// Loads the key, or creates it when it does not exist yet (`true`). A key created while the
    /// table already holds chained rows means the old key was lost: the caller reports that, since
    /// those rows can no longer be verified.
    pub fn load_or_create_reporting(path: &Path) -> Result<(AuditKey, bool)> {
        // O_NOFOLLOW: a link planted in the state directory must not choose the key.
        let opened = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .and_then(|mut f| {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut std::io::Read::take(&mut f, 4096), &mut bytes)?;
                Ok((bytes, f.metadata()?))
            });
        match opened {
            Ok((bytes, meta)) => {
                if meta.mode() & 0o077 != 0 {
                    return Err(DaemonError::Startup(format!(
                        "{}: the audit key is readable by others (mode {:o}); run `chmod 600 {}`",
                        path.display(),
                        meta.mode() & 0o7777,
                        path.display()
                    )));
                }
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    DaemonError::Startup(format!(
                        "{}: the audit key must be {KEY_LEN} bytes, found {}",
                        path.display(),
                        bytes.len()
                    ))
                })?;
                Ok((AuditKey(key), false))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                rand::rngs::SysRng.try_fill_bytes(&mut key).map_err(|e| {
                    DaemonError::Startup(format!("OS random generator failed: {e}"))
                })?;
                use std::io::Write;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
                    .map_err(|e| DaemonError::io(path, e))?;
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| DaemonError::io(path, e))?;
                Ok((AuditKey(key), true))
            }
            Err(e) => Err(DaemonError::io(path, e)),
        }
    }

    /// Loads an existing key and never creates one (`credctl restore`, which must not invent this
    /// host's key). `None`: there is no key file.
    pub fn load_existing(path: &Path) -> Result<Option<AuditKey>> {
        if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Ok(None);
        }
        Self::load_or_create_reporting(path).map(|(key, _)| Some(key))
    }

    /// The keyed MAC of a backup file (`credctl backup`): HMAC-SHA256 under a key derived from
    /// the chain key for this one purpose, so a backup's MAC is never a valid row MAC.
    pub fn backup_mac(&self) -> Hmac<Sha256> {
        let mut derive =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("any key length");
        derive.update(b"credd backup file v1");
        let subkey = derive.finalize().into_bytes();
        <Hmac<Sha256> as KeyInit>::new_from_slice(&subkey).expect("any key length")
    }

    #[cfg(test)]
    pub fn for_tests() -> AuditKey {
        AuditKey([7u8; KEY_LEN])
    }

    #[cfg(test)]
    pub fn other_for_tests() -> AuditKey {
        AuditKey([9u8; KEY_LEN])
    }
}

/// One security event. Nothing in it is ever a secret, a code or a hash.
#[derive(Debug, Clone, Default)]
pub struct Event<'a> {
    /// Stable event name (docs/audit.md).
    pub name: &'static str,
    /// From SO_PEERCRED; `None` for the daemon's own actions.
    pub actor_uid: Option<u32>,
    pub target: Option<&'a str>,
    pub service: Option<&'a str>,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub outcome: &'static str,
    pub detail: String,
    /// For login failures: the line in pam_unix's shape that fail2ban and SIEM parsers read.
    pub classic: Option<String>,
}

/// An [`Event`] that owns its fields, queued for the audit writer together with the request id
/// its row should carry.
#[derive(Debug, Clone)]
pub struct QueuedEvent {
    name: &'static str,
    actor_uid: Option<u32>,
    target: Option<String>,
    service: Option<String>,
    rhost: Option<String>,
    tty: Option<String>,
    outcome: &'static str,
    detail: String,
    classic: Option<String>,
    request_id: Option<String>,
    at: i64,
}

impl QueuedEvent {
    /// Takes the calling request's id now: the writer thread runs outside the request.
    pub fn capture(event: &Event<'_>, at: i64) -> QueuedEvent {
        QueuedEvent {
            name: event.name,
            actor_uid: event.actor_uid,
            target: event.target.map(str::to_owned),
            service: event.service.map(str::to_owned),
            rhost: event.rhost.map(str::to_owned),
            tty: event.tty.map(str::to_owned),
            outcome: event.outcome,
            detail: event.detail.clone(),
            classic: event.classic.clone(),
            request_id: REQUEST_ID.with(|cell| cell.borrow_mut().take()),
            at,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Writes the row in `tx`, under the request id captured with it.
    pub fn record(&self, tx: &Connection, key: &AuditKey) -> rusqlite::Result<Published> {
        let event = Event {
            name: self.name,
            actor_uid: self.actor_uid,
            target: self.target.as_deref(),
            service: self.service.as_deref(),
            rhost: self.rhost.as_deref(),
            tty: self.tty.as_deref(),
            outcome: self.outcome,
            detail: self.detail.clone(),
            classic: self.classic.clone(),
        };
        with_request_id(self.request_id.clone(), || record(tx, key, self.at, &event))
    }
}

/// A committed row, on its way to syslog.
#[derive(Debug, Clone)]
pub struct Published {
    pub entry: AuditEntry,
    pub classic: Option<String>,
}

thread_local! {
    /// The caller's request id, used as the event id of the first row a request writes.
    static REQUEST_ID: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f` with `id` as the event id of the first audit row it writes.
pub fn with_request_id<T>(id: Option<String>, f: impl FnOnce() -> T) -> T {
    REQUEST_ID.with(|cell| *cell.borrow_mut() = id);
    let result = f();
    REQUEST_ID.with(|cell| *cell.borrow_mut() = None);
    result
}

/// Runs `f` with no request id, and gives the caller's back afterwards: rows the daemon writes on
/// its own account in the middle of a request (an alert) must not take the request's id.
pub fn aside_request_id<T>(f: impl FnOnce() -> T) -> T {
    let saved = REQUEST_ID.with(|cell| cell.borrow_mut().take());
    let result = f();
    REQUEST_ID.with(|cell| *cell.borrow_mut() = saved);
    result
}

/// Event ids are random, not secret: drawn from the OS RNG 256 at a time, so that a bulk import
/// does not make one system call per row.
const IDS_PER_DRAW: usize = 256;

thread_local! {
    static ID_POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

fn random_event_id() -> String {
    ID_POOL.with(|cell| {
        let (pool, used) = &mut *cell.borrow_mut();
        if *used + 16 > pool.len() {
            pool.resize(16 * IDS_PER_DRAW, 0);
            let _ = rand::rngs::SysRng.try_fill_bytes(pool);
            *used = 0;
        }
        let id = hex(&pool[*used..*used + 16]);
        *used += 16;
        id
    })
}

/// The event id of the next row, and whether it is a caller's request id (which could be a
/// duplicate of an earlier one; random ids cannot collide in practice).
fn next_event_id() -> (String, bool) {
    match REQUEST_ID.with(|cell| cell.borrow_mut().take()) {
        Some(id) => (id, true),
        None => (random_event_id(), false),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct RowFields<'a> {
    seq: i64,
    event_id: &'a str,
    time: i64,
    event: &'a str,
    actor_uid: Option<u32>,
    target: Option<&'a str>,
    service: Option<&'a str>,
    rhost: Option<&'a str>,
    tty: Option<&'a str>,
    outcome: &'a str,
    detail: &'a str,
}

/// HMAC over the previous MAC and every field, each length-prefixed so that no two different
/// rows encode alike.
fn mac(key: &AuditKey, prev: &[u8], row: &RowFields<'_>) -> [u8; MAC_LEN] {
    let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&key.0).expect("any key length");
    let mut field = |bytes: &[u8]| {
        m.update(&(bytes.len() as u64).to_be_bytes());
        m.update(bytes);
    };
    field(prev);
    field(&row.seq.to_be_bytes());
    field(row.event_id.as_bytes());
    field(&row.time.to_be_bytes());
    field(row.event.as_bytes());
    let opt = |v: Option<&str>| v.map(|s| format!("1{s}")).unwrap_or_else(|| "0".into());
    field(opt(row.actor_uid.map(|u| u.to_string()).as_deref()).as_bytes());
    field(opt(row.target).as_bytes());
    field(opt(row.service).as_bytes());
    field(opt(row.rhost).as_bytes());
    field(opt(row.tty).as_bytes());
    field(row.outcome.as_bytes());
    field(row.detail.as_bytes());
    m.finalize().into_bytes().into()
}

fn head(conn: &Connection) -> rusqlite::Result<(i64, Vec<u8>)> {
    Ok(conn
        .query_row(
            "SELECT seq, mac FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)),
        )
        .optional()?
        .map(|(seq, mac)| (seq, mac.unwrap_or_default()))
        .unwrap_or((0, vec![0u8; MAC_LEN])))
}

/// Appends `event` to the chain. Call inside the transaction of the change it records; publish
/// the result to syslog only after that transaction commits.
pub fn record(
    conn: &Connection,
    key: &AuditKey,
    now: i64,
    event: &Event<'_>,
) -> rusqlite::Result<Published> {
    Chain::start(conn)?.append(conn, key, now, event)
}

/// The chain head held in memory across many appends in one transaction (a bulk import), so
/// that each append does not read it back.
pub struct Chain {
    seq: i64,
    prev: Vec<u8>,
}

impl Chain {
    pub fn start(conn: &Connection) -> rusqlite::Result<Chain> {
        let (seq, prev) = head(conn)?;
        Ok(Chain { seq, prev })
    }

    pub fn append(
        &mut self,
        conn: &Connection,
        key: &AuditKey,
        now: i64,
        event: &Event<'_>,
    ) -> rusqlite::Result<Published> {
        let (mut event_id, from_request) = next_event_id();
        // An administrator's request id that is already taken (a retried request): the event
        // still gets written, under an id of its own.
        if from_request {
            let taken: bool = conn
                .prepare_cached("SELECT EXISTS(SELECT 1 FROM audit WHERE event_id = ?1)")?
                .query_row(params![event_id], |r| r.get(0))?;
            if taken {
                event_id = random_event_id();
            }
        }
        let row = RowFields {
            seq: self.seq + 1,
            event_id: &event_id,
            time: now,
            event: event.name,
            actor_uid: event.actor_uid,
            target: event.target,
            service: event.service,
            rhost: event.rhost,
            tty: event.tty,
            outcome: event.outcome,
            detail: &event.detail,
        };
        let mac = mac(key, &self.prev, &row);
        let mut stmt = conn.prepare_cached(
            "INSERT INTO audit (seq, event_id, time, event, actor_uid, target, service, rhost, tty,
                                outcome, detail, prev_mac, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?;
        stmt.execute(params![
            row.seq,
            event_id,
            now,
            event.name,
            event.actor_uid,
            event.target,
            event.service,
            event.rhost,
            event.tty,
            event.outcome,
            event.detail,
            self.prev,
            &mac[..]
        ])?;
        self.seq = row.seq;
        self.prev = mac.to_vec();
        Ok(Published {
            entry: AuditEntry {
                seq: row.seq as u64,
                id: event_id,
                time: rfc3339(now),
                event: event.name.to_string(),
                actor_uid: event.actor_uid,
                user: event.target.map(str::to_owned),
                service: event.service.map(str::to_owned),
                rhost: event.rhost.map(str::to_owned),
                tty: event.tty.map(str::to_owned),
                outcome: event.outcome.to_string(),
                detail: event.detail.clone(),
            },
            classic: event.classic.clone(),
        })
    }
}

/// Rows written before the chain existed (schema 3) get their MACs, in order, once: called only by
/// the migration to the chain's schema, in its transaction. A NULL MAC found later is a finding
/// of [`verify`], never sealed.
pub fn seal_unsealed(conn: &Connection, key: &AuditKey) -> rusqlite::Result<usize> {
    let mut stmt = conn.prepare(
        "SELECT seq, event_id, time, event, actor_uid, target, service, rhost, tty, outcome, detail
         FROM audit WHERE mac IS NULL ORDER BY seq",
    )?;
    let rows: Vec<StoredRow> = stmt
        .query_map([], |r| {
            Ok(StoredRow {
                seq: r.get(0)?,
                event_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                time: r.get(2)?,
                event: r.get(3)?,
                actor_uid: r.get(4)?,
                target: r.get(5)?,
                service: r.get(6)?,
                rhost: r.get(7)?,
                tty: r.get(8)?,
                outcome: r.get(9)?,
                detail: r.get(10)?,
                prev_mac: None,
                mac: None,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    for mut row in rows.iter().cloned() {
        let prev: Vec<u8> = conn
            .query_row(
                "SELECT mac FROM audit WHERE seq < ?1 ORDER BY seq DESC LIMIT 1",
                params![row.seq],
                |r| r.get::<_, Option<Vec<u8>>>(0),
            )
            .optional()?
            .flatten()
            .unwrap_or_else(|| vec![0u8; MAC_LEN]);
        if row.event_id.is_empty() {
            row.event_id = random_event_id();
        }
        let mac = mac(key, &prev, &row.fields());
        conn.execute(
            "UPDATE audit SET event_id = ?2, prev_mac = ?3, mac = ?4 WHERE seq = ?1",
            params![row.seq, row.event_id, prev, &mac[..]],
        )?;
    }
    Ok(rows.len())
}

#[derive(Clone)]
struct StoredRow {
    seq: i64,
    event_id: String,
    time: i64,
    event: String,
    actor_uid: Option<u32>,
    target: Option<String>,
    service: Option<String>,
    rhost: Option<String>,
    tty: Option<String>,
    outcome: String,
    detail: String,
    prev_mac: Option<Vec<u8>>,
    mac: Option<Vec<u8>>,
}

impl StoredRow {
    fn fields(&self) -> RowFields<'_> {
        RowFields {
            seq: self.seq,
            event_id: &self.event_id,
            time: self.time,
            event: &self.event,
            actor_uid: self.actor_uid,
            target: self.target.as_deref(),
            service: self.service.as_deref(),
            rhost: self.rhost.as_deref(),
            tty: self.tty.as_deref(),
            outcome: &self.outcome,
            detail: &self.detail,
        }
    }

    fn entry(&self) -> AuditEntry {
        AuditEntry {
            seq: self.seq as u64,
            id: self.event_id.clone(),
            time: rfc3339(self.time),
            event: self.event.clone(),
            actor_uid: self.actor_uid,
            user: self.target.clone(),
            service: self.service.clone(),
            rhost: self.rhost.clone(),
            tty: self.tty.clone(),
            outcome: self.outcome.clone(),
            detail: self.detail.clone(),
        }
    }
}

const ROW_COLUMNS: &str = "seq, event_id, time, event, actor_uid, target, service, rhost, tty, outcome, detail, prev_mac, mac";

fn row_from(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredRow> {
    Ok(StoredRow {
        seq: r.get(0)?,
        event_id: r.get::<_, Option<String>>(1)?.unwrap_or_default(),
        time: r.get(2)?,
        event: r.get(3)?,
        actor_uid: r.get(4)?,
        target: r.get(5)?,
        service: r.get(6)?,
        rhost: r.get(7)?,
        tty: r.get(8)?,
        outcome: r.get(9)?,
        detail: r.get(10)?,
        prev_mac: r.get(11)?,
        mac: r.get(12)?,
    })
}

/// Walks the whole chain in sequence order and names the first row that does not fit: a gap in
/// the sequence (a deleted row), a previous-MAC link that does not match (deleted or reordered
/// rows), or a MAC that does not match the row's content (an edited row).
pub fn verify(conn: &Connection, key: &AuditKey) -> rusqlite::Result<AuditReport> {
    let mut stmt = conn.prepare(&format!("SELECT {ROW_COLUMNS} FROM audit ORDER BY seq"))?;
    let mut rows = stmt.query([])?;
    let mut expected_seq = 1i64;
    let mut prev = vec![0u8; MAC_LEN];
    let mut checked = 0u64;
    let report = |checked: u64, seq: i64, prev: &[u8], bad: Option<(i64, String)>| AuditReport {
        rows_checked: checked,
        head_seq: seq.max(0) as u64,
        head_mac: hex(prev),
        first_bad_seq: bad.as_ref().map(|(s, _)| *s as u64),
        problem: bad.map(|(_, p)| p),
    };
    while let Some(r) = rows.next()? {
        let row = row_from(r)?;
        let bad = if row.seq != expected_seq {
            Some((
                expected_seq,
                format!(
                    "row {expected_seq} is missing (the next row is {})",
                    row.seq
                ),
            ))
        } else if row.mac.is_none() || row.prev_mac.is_none() {
            // Only the migration that introduced the chain seals rows; an unsealed row since
            // then was edited or forged by someone without the key.
            Some((
                row.seq,
                "it has no MAC (unsealed: the row was edited or forged)".into(),
            ))
        } else if row
            .prev_mac
            .as_deref()
            .is_none_or(|p| !bool::from(p.ct_eq(&prev)))
        {
            Some((
                row.seq,
                "does not follow the previous row (rows deleted or reordered)".into(),
            ))
        } else if row
            .mac
            .as_deref()
            .is_none_or(|m| !bool::from(m.ct_eq(&mac(key, &prev, &row.fields()))))
        {
            Some((
                row.seq,
                "its content does not match its MAC (the row was edited)".into(),
            ))
        } else {
            None
        };
        if bad.is_some() {
            return Ok(report(checked, expected_seq - 1, &prev, bad));
        }
        checked += 1;
        prev = row.mac.unwrap_or_default();
        expected_seq += 1;
    }
    Ok(report(checked, expected_seq - 1, &prev, None))
}

/// The chain head: sequence number and MAC of the last row.
pub fn chain_head(conn: &Connection) -> rusqlite::Result<(u64, String)> {
    let (seq, mac) = head(conn)?;
    Ok((seq as u64, hex(&mac)))
}

/// Events (about `user`, since `since`) after `after_seq`, oldest first, for streaming.
pub fn page(
    conn: &Connection,
    user: Option<&str>,
    since: Option<i64>,
    after_seq: i64,
    limit: usize,
) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {ROW_COLUMNS} FROM audit
         WHERE seq > ?1 AND (?2 IS NULL OR target = ?2) AND (?3 IS NULL OR time >= ?3)
         ORDER BY seq LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![after_seq, user, since, limit as i64], row_from)?;
    rows.map(|r| r.map(|row| row.entry())).collect()
}

/// Events of `name` about `target` (or by `actor_uid`) since `since`: reset rate limits count these.
pub fn count_since(
    conn: &Connection,
    name: &str,
    target: Option<&str>,
    actor_uid: Option<u32>,
    since: i64,
) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT count(*) FROM audit WHERE event = ?1 AND time >= ?2
           AND (?3 IS NULL OR target = ?3) AND (?4 IS NULL OR actor_uid = ?4)",
        params![name, since, target, actor_uid],
        |r| r.get(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: usize) -> (tempfile::TempDir, Connection, AuditKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::sqlite::tests::open(&dir.path().join("credd.db")).unwrap();
        drop(store);
        let conn = Connection::open(dir.path().join("credd.db")).unwrap();
        let key = AuditKey::for_tests();
        for i in 0..n {
            record(
                &conn,
                &key,
                1000 + i as i64,
                &Event {
                    name: "login_failure",
                    target: Some("alice"),
                    outcome: "denied",
                    detail: format!("attempt {i}"),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        (dir, conn, key)
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let (_d, conn, key) = chain(5);
        let report = verify(&conn, &key).unwrap();
        assert_eq!(report.rows_checked, 5);
        assert_eq!(report.head_seq, 5);
        assert_eq!(report.first_bad_seq, None);
        assert_eq!(chain_head(&conn).unwrap().1, report.head_mac);
    }

    #[test]
    fn an_edited_row_is_named() {
        let (_d, conn, key) = chain(5);
        conn.execute("UPDATE audit SET outcome = 'ok' WHERE seq = 3", [])
            .unwrap();
        let report = verify(&conn, &key).unwrap();
        assert_eq!(report.first_bad_seq, Some(3));
        assert!(report.problem.unwrap().contains("edited"));
    }

    #[test]
    fn a_deleted_row_is_named() {
        let (_d, conn, key) = chain(5);
        conn.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        let report = verify(&conn, &key).unwrap();
        assert_eq!(report.first_bad_seq, Some(2));
        assert!(report.problem.unwrap().contains("missing"));
    }

    #[test]
    fn reordered_rows_are_named() {
        let (_d, conn, key) = chain(5);
        // Swap the contents of rows 2 and 4, MACs included: each is valid on its own.
        conn.execute_batch(
            "UPDATE audit SET seq = 100 WHERE seq = 2;
             UPDATE audit SET seq = 2 WHERE seq = 4;
             UPDATE audit SET seq = 4 WHERE seq = 100;",
        )
        .unwrap();
        let report = verify(&conn, &key).unwrap();
        assert_eq!(report.first_bad_seq, Some(2));
    }

    #[test]
    fn a_row_without_a_mac_is_named() {
        let (_d, conn, key) = chain(4);
        conn.execute(
            "UPDATE audit SET detail = 'forged', mac = NULL WHERE seq = 4",
            [],
        )
        .unwrap();
        let report = verify(&conn, &key).unwrap();
        assert_eq!(report.first_bad_seq, Some(4));
        assert!(report.problem.unwrap().contains("no MAC"));
    }

    #[test]
    fn a_row_forged_without_the_key_is_named() {
        let (_d, conn, key) = chain(3);
        let other = AuditKey([9u8; KEY_LEN]);
        record(
            &conn,
            &other,
            5000,
            &Event {
                name: "user_added",
                outcome: "ok",
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(verify(&conn, &key).unwrap().first_bad_seq, Some(4));
    }

    #[test]
    fn the_request_id_is_the_first_event_id() {
        let (_d, conn, key) = chain(0);
        let id = "0123456789abcdef0123456789abcdef".to_string();
        let (first, second) = with_request_id(Some(id.clone()), || {
            let e = Event {
                name: "reset_issued",
                outcome: "ok",
                ..Default::default()
            };
            (
                record(&conn, &key, 1, &e).unwrap(),
                record(&conn, &key, 1, &e).unwrap(),
            )
        });
        assert_eq!(first.entry.id, id);
        assert_ne!(second.entry.id, id);
        assert_eq!(second.entry.id.len(), 32);
    }

    #[test]
    fn a_request_id_already_taken_gets_a_fresh_event_id() {
        let (_d, conn, key) = chain(0);
        let id = "0123456789abcdef0123456789abcdef".to_string();
        let e = Event {
            name: "user_added",
            outcome: "ok",
            ..Default::default()
        };
        let first = with_request_id(Some(id.clone()), || record(&conn, &key, 1, &e).unwrap());
        let second = with_request_id(Some(id.clone()), || record(&conn, &key, 2, &e).unwrap());
        assert_eq!(first.entry.id, id);
        assert_ne!(
            second.entry.id, id,
            "a reused id must not make the event unwritable"
        );
        assert_eq!(verify(&conn, &key).unwrap().rows_checked, 2);
    }

    #[test]
    fn the_key_file_is_created_private_and_refused_when_readable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        let (a, created) = AuditKey::load_or_create_reporting(&path).unwrap();
        assert!(created);
        let (b, created) = AuditKey::load_or_create_reporting(&path).unwrap();
        assert!(!created);
        assert_eq!(a.0, b.0, "the key is stable across starts");
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(AuditKey::load_or_create_reporting(&path).is_err());
    }
}
