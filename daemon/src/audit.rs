//! The audit table: one row per security event, written in the same transaction as the change it
//! records, so the record and the change stand or fall together.
//!
//! This is the table's first form: the HMAC chain, the syslog delivery and `credctl audit` come
//! with their own issue. Until then each event is also written as a line on credd's standard error.

use rusqlite::{Connection, params};

/// One security event. `detail` is free text for humans and never holds a secret.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    /// Stable event name (`reset_issued`, `code_redeemed`, …).
    pub name: &'static str,
    /// From SO_PEERCRED; `None` for the daemon's own actions (expiry purge).
    pub actor_uid: Option<u32>,
    pub target: Option<&'a str>,
    pub outcome: &'static str,
    pub detail: String,
}

pub fn record(conn: &Connection, now: i64, event: &Event<'_>) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO audit (time, event, actor_uid, target, outcome, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            now,
            event.name,
            event.actor_uid,
            event.target,
            event.outcome,
            event.detail
        ],
    )?;
    eprintln!(
        "credd: audit event={} actor_uid={} user={} outcome={} {}",
        event.name,
        event
            .actor_uid
            .map_or_else(|| "-".to_string(), |u| u.to_string()),
        event.target.unwrap_or("-"),
        event.outcome,
        event.detail
    );
    Ok(())
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
