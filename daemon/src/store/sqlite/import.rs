//! A bulk import applied in one transaction: every row or none, whatever happens to the daemon or
//! the client meanwhile. Each changed account gets its audit row in the same transaction; only the
//! start and the summary go to syslog (a 100 000-row import must not flood the collector).

use std::collections::{HashMap, HashSet};

use rusqlite::params;

use super::audited::Outcome;
use super::{SqliteStore, sessions};
use crate::audit::chain::Event;
use crate::store::{Directory, ImportRun, Imports, Planned, RevokedSession};

/// Accounts that have something a reset or a lock must clear. Few accounts do, so a bulk reset
/// skips those statements for all the others (a third of its time otherwise).
#[derive(Default)]
struct Pending {
    locks: HashSet<String>,
    failures: HashSet<String>,
    sessions: HashSet<String>,
}

impl Pending {
    fn load(conn: &rusqlite::Connection) -> rusqlite::Result<Pending> {
        let names = |sql: &str| -> rusqlite::Result<HashSet<String>> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        };
        Ok(Pending {
            locks: names("SELECT user FROM locks")?,
            failures: names("SELECT DISTINCT user FROM failures")?,
            sessions: names("SELECT DISTINCT user FROM sessions WHERE revoked_at IS NULL")?,
        })
    }
}

impl Imports for SqliteStore {
    fn directory(&mut self) -> crate::error::Result<Directory> {
        let mut stmt = self.conn.prepare("SELECT name, uid FROM users")?;
        let mut by_name = HashMap::new();
        let mut by_uid = HashMap::new();
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<u32>>(1)?))
        })?;
        for row in rows {
            let (name, uid) = row?;
            if let Some(uid) = uid {
                by_uid.insert(uid, name.clone());
            }
            by_name.insert(name, uid);
        }
        Ok(Directory { by_name, by_uid })
    }

    fn resets_per_account_since(
        &mut self,
        since: i64,
    ) -> crate::error::Result<HashMap<String, u32>> {
        let mut stmt = self.conn.prepare(
            "SELECT target, count(*) FROM audit
             WHERE event = 'reset_issued' AND time >= ?1 AND target IS NOT NULL GROUP BY target",
        )?;
        let rows = stmt.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn apply_import(
        &mut self,
        run: &ImportRun<'_>,
        rows: &[(u64, Planned)],
    ) -> crate::error::Result<Vec<RevokedSession>> {
        let actor = Some(run.admin_uid);
        self.audited(run.now, |tx| {
            tx.record(&Event {
                name: "import_started",
                actor_uid: actor,
                outcome: "ok",
                detail: format!(
                    "source={:?} rows={} allow_bulk={}",
                    run.source,
                    rows.len(),
                    run.allow_bulk
                ),
                ..Default::default()
            })?;
            let pending = Pending::load(tx)?;
            let mut revoked = Vec::new();
            for (line, row) in rows {
                let (event, detail) = apply_row(tx, row, run.now, &pending, &mut revoked)?;
                tx.record_unpublished(&Event {
                    name: event,
                    actor_uid: actor,
                    target: Some(row.name()),
                    outcome: "ok",
                    detail: format!("import={:?} line={line}{detail}", run.source),
                    ..Default::default()
                })?;
            }
            tx.record(&Event {
                name: "import_finished",
                actor_uid: actor,
                outcome: "ok",
                detail: format!("source={:?} {}", run.source, run.summary),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(revoked))
        })
    }
}

/// Applies one row; returns its audit event name and extra detail.
fn apply_row(
    tx: &rusqlite::Connection,
    row: &Planned,
    now: i64,
    pending: &Pending,
    revoked: &mut Vec<RevokedSession>,
) -> rusqlite::Result<(&'static str, String)> {
    let revoke = |name: &str, reason: &str| -> rusqlite::Result<Vec<RevokedSession>> {
        if pending.sessions.contains(name) {
            sessions::revoke(tx, name, None, reason, now)
        } else {
            Ok(Vec::new())
        }
    };
    let clear = |table: &str, set: &HashSet<String>, name: &str| -> rusqlite::Result<()> {
        if set.contains(name) {
            tx.prepare_cached(&format!("DELETE FROM {table} WHERE user = ?1"))?
                .execute(params![name])?;
        }
        Ok(())
    };
    Ok(match row {
        Planned::Add {
            name,
            uid,
            hash,
            must_change,
            disabled,
        } => {
            tx.prepare_cached(
                "INSERT INTO users (name, uid, hash, disabled, must_change, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
            )?
            .execute(params![name, uid, hash, disabled, must_change, now])?;
            let mut detail = format!(" password={}", hash.is_some());
            if let Some(hash) = hash {
                // The scheme, never the hash: what a migration from a shadow file took over.
                detail.push_str(&format!(
                    " scheme={}",
                    crate::crypto::hashing::scheme_name(hash)
                ));
            }
            if *must_change {
                detail.push_str(" must_change=true");
            }
            if *disabled {
                detail.push_str(" disabled=true");
            }
            ("user_added", detail)
        }
        Planned::Remove { name } => {
            tx.prepare_cached("DELETE FROM users WHERE name = ?1")?
                .execute(params![name])?;
            ("user_removed", String::new())
        }
        Planned::Reset {
            name,
            digest,
            expires_at,
        } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO reset_codes (user, digest, issued_at, expires_at, attempts, issued_by)
                 VALUES (?1, ?2, ?3, ?4, 0, 0)",
            )?
            .execute(params![name, &digest[..], now, expires_at])?;
            tx.prepare_cached(
                "UPDATE users SET hash = NULL, must_change = 1, updated_at = ?2,
                                  generation = generation + 1
                 WHERE name = ?1",
            )?
            .execute(params![name, now])?;
            clear("locks", &pending.locks, name)?;
            clear("failures", &pending.failures, name)?;
            let ended = revoke(name, "reset")?;
            let detail = format!(
                " expires_at={} sessions_revoked={}",
                crate::system::time::rfc3339(*expires_at),
                ended.len()
            );
            revoked.extend(ended);
            ("reset_issued", detail)
        }
        Planned::Lock { name, reason } => {
            tx.prepare_cached(
                "INSERT OR REPLACE INTO locks (user, since, until, kind, reason, locked_by)
                 VALUES (?1, ?2, NULL, 'administrator', ?3, 0)",
            )?
            .execute(params![name, now, reason])?;
            let ended = revoke(name, "administrative lock")?;
            let detail = format!(" reason={:?}", reason.as_deref().unwrap_or(""));
            revoked.extend(ended);
            ("admin_lock", detail)
        }
        Planned::Unlock { name } => {
            clear("locks", &pending.locks, name)?;
            clear("failures", &pending.failures, name)?;
            ("account_unlocked", String::new())
        }
        Planned::Disable { name } | Planned::Enable { name } => {
            let disabled = matches!(row, Planned::Disable { .. });
            tx.prepare_cached("UPDATE users SET disabled = ?2, updated_at = ?3 WHERE name = ?1")?
                .execute(params![name, disabled, now])?;
            (
                if disabled {
                    "user_disabled"
                } else {
                    "user_enabled"
                },
                String::new(),
            )
        }
        Planned::SetHash {
            name,
            hash,
            must_change,
            disable,
        } => {
            tx.prepare_cached(
                "UPDATE users SET hash = ?2, must_change = ?3, updated_at = ?4,
                                  disabled = disabled OR ?5, generation = generation + 1
                 WHERE name = ?1",
            )?
            .execute(params![name, hash, must_change, now, disable])?;
            tx.prepare_cached("DELETE FROM reset_codes WHERE user = ?1")?
                .execute(params![name])?;
            let ended = revoke(name, "password set by an import")?;
            let mut detail = format!(
                " by=import scheme={} sessions_revoked={}",
                crate::crypto::hashing::scheme_name(hash),
                ended.len()
            );
            if *disable {
                detail.push_str(" disabled=true");
            }
            revoked.extend(ended);
            ("password_changed", detail)
        }
    })
}
