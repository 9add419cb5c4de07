//! What the detectors keep in the store: the sources of successful logins, per account, bounded.

use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::alerts::SOURCES_PER_ACCOUNT;
use crate::error::Result;
use crate::store::{Alerts, LoginSource};

/// Upserts the row (only for an account that still exists: the batch it rides in must not fail
/// for an account removed meanwhile) and keeps the newest [`SOURCES_PER_ACCOUNT`].
pub(super) fn insert_login_source(tx: &Connection, s: &LoginSource) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO login_sources (user, source, last_seen)
         SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM users WHERE name = ?1)
         ON CONFLICT (user, source) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)",
    )?
    .execute(params![s.user, s.source, s.at])?;
    tx.prepare_cached(
        "DELETE FROM login_sources WHERE user = ?1 AND source NOT IN
           (SELECT source FROM login_sources WHERE user = ?1 ORDER BY last_seen DESC LIMIT ?2)",
    )?
    .execute(params![s.user, SOURCES_PER_ACCOUNT as i64])?;
    Ok(())
}

impl Alerts for SqliteStore {
    fn login_source_known(&mut self, user: &str, source: &str, since: i64) -> Result<Option<bool>> {
        let (any, this): (i64, i64) = self.conn.query_row(
            "SELECT count(*), coalesce(sum(source = ?2), 0) FROM login_sources
             WHERE user = ?1 AND last_seen >= ?3",
            params![user, source, since],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok((any > 0).then_some(this > 0))
    }

    fn alert_event(&mut self, id: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT event FROM audit WHERE event_id = ?1 AND event LIKE 'alert\\_%' ESCAPE '\\'
                   AND event != 'alert_acked'",
                params![id],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::*;

    #[test]
    fn sources_are_kept_per_account_bounded_and_go_with_the_account() {
        let (_dir, mut store) = crate::store::tests::temp_store();
        store
            .insert_account("alice", Some(1001), Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        assert_eq!(
            store.login_source_known("alice", "rhost:a", 0).unwrap(),
            None
        );
        let rows: Vec<Deferred> = (0..40)
            .map(|i| {
                Deferred::LoginSource(LoginSource {
                    user: "alice".into(),
                    source: format!("rhost:h{i}"),
                    at: 1000 + i,
                })
            })
            .chain(std::iter::once(Deferred::LoginSource(LoginSource {
                user: "nobody-here".into(),
                source: "rhost:x".into(),
                at: 5,
            })))
            .collect();
        store.write_deferred(&rows).unwrap();
        let n: i64 = store
            .conn
            .query_row("SELECT count(*) FROM login_sources", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            n, SOURCES_PER_ACCOUNT as i64,
            "bounded, and no row for a removed account"
        );
        assert_eq!(
            store.login_source_known("alice", "rhost:h39", 0).unwrap(),
            Some(true)
        );
        assert_eq!(
            store.login_source_known("alice", "rhost:h0", 0).unwrap(),
            Some(false),
            "oldest trimmed"
        );
        assert_eq!(
            store
                .login_source_known("alice", "rhost:h39", 2000)
                .unwrap(),
            None,
            "too old"
        );
    }
}
