//! The session registry: sessions opened through pam_credd, revoked by resets, administrative
//! locks and password changes.

use rusqlite::{Connection, OptionalExtension, params};

use super::audited::Outcome;
use super::{SqliteStore, exists};
use crate::audit::chain::Event;
use crate::store::{NewSession, OpenedBy, RevokedSession, SessionRecord, Sessions, WriteConflict};

/// Marks every open session of `user` revoked, except those of the audit session making the
/// change (a user changing their password from a shell keeps that shell).
pub(super) fn revoke(
    conn: &Connection,
    user: &str,
    except_audit_session: Option<u32>,
    reason: &str,
    now: i64,
) -> rusqlite::Result<Vec<RevokedSession>> {
    let account_uid: Option<u32> = conn
        .query_row(
            "SELECT uid FROM users WHERE name = ?1",
            params![user],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
    let mut stmt = conn.prepare(
        "UPDATE sessions SET revoked_at = ?3, revoked_reason = ?4
         WHERE user = ?1 AND revoked_at IS NULL
           AND (?2 IS NULL OR audit_session IS NULL OR audit_session != ?2)
         RETURNING id, pid, pid_start, audit_session, loginuid",
    )?;
    let rows = stmt.query_map(params![user, except_audit_session, now, reason], |r| {
        Ok(RevokedSession {
            id: r.get(0)?,
            user: user.to_string(),
            account_uid,
            by: OpenedBy {
                pid: r.get(1)?,
                pid_start: r.get::<_, Option<i64>>(2)?.map(|v| v as u64),
                audit_session: r.get(3)?,
                loginuid: r.get(4)?,
            },
        })
    })?;
    rows.collect()
}

fn record_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: r.get(0)?,
        user: r.get(1)?,
        service: r.get(2)?,
        tty: r.get(3)?,
        rhost: r.get(4)?,
        by: OpenedBy {
            pid: r.get(5)?,
            pid_start: r.get::<_, Option<i64>>(6)?.map(|v| v as u64),
            audit_session: r.get(7)?,
            loginuid: r.get(8)?,
        },
        opened_at: r.get(9)?,
        revoked_at: r.get(10)?,
        revoked_reason: r.get(11)?,
    })
}

impl Sessions for SqliteStore {
    fn open_session(
        &mut self,
        s: &NewSession<'_>,
    ) -> crate::error::Result<Result<i64, WriteConflict>> {
        self.audited(s.now, |tx| {
            if !exists(tx, s.user)? {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            tx.execute(
                "INSERT INTO sessions (user, service, tty, rhost, pid, pid_start, audit_session,
                                       loginuid, opened_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    s.user,
                    s.service,
                    s.tty,
                    s.rhost,
                    s.by.pid,
                    s.by.pid_start.map(|v| v as i64),
                    s.by.audit_session,
                    s.by.loginuid,
                    s.now
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.record(&Event {
                name: "session_opened",
                actor_uid: None,
                target: Some(s.user),
                outcome: "ok",
                service: Some(s.service),
                tty: s.tty,
                rhost: s.rhost,
                detail: format!(
                    "session={id} pid={} audit_session={}",
                    s.by.pid,
                    s.by.audit_session
                        .map_or("-".to_string(), |v| v.to_string())
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(id)))
        })
    }

    fn close_session(&mut self, user: &str, by: &OpenedBy, now: i64) -> crate::error::Result<bool> {
        self.audited(now, |tx| {
            let mut closed = tx.execute(
                "DELETE FROM sessions WHERE user = ?1 AND pid = ?2 AND pid_start IS ?3",
                params![user, by.pid, by.pid_start.map(|v| v as i64)],
            )?;
            if closed == 0 && by.audit_session.is_some() {
                closed = tx.execute(
                    "DELETE FROM sessions WHERE user = ?1 AND audit_session = ?2",
                    params![user, by.audit_session],
                )?;
            }
            if closed > 0 {
                tx.record(&Event {
                    name: "session_closed",
                    actor_uid: None,
                    target: Some(user),
                    outcome: "ok",
                    detail: format!(
                        "pid={} audit_session={}",
                        by.pid,
                        by.audit_session.map_or("-".to_string(), |v| v.to_string())
                    ),
                    ..Default::default()
                })?;
            }
            Ok(Outcome::Commit(closed > 0))
        })
    }

    fn prune_sessions(
        &mut self,
        alive: &dyn Fn(i32, Option<u64>) -> bool,
        now: i64,
    ) -> crate::error::Result<usize> {
        self.audited(now, |tx| {
            let rows: Vec<(i64, String, i32, Option<i64>)> = {
                let mut stmt = tx.prepare("SELECT id, user, pid, pid_start FROM sessions")?;
                let rows =
                    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut pruned = 0;
            for (id, user, pid, pid_start) in rows {
                if alive(pid, pid_start.map(|v| v as u64)) {
                    continue;
                }
                tx.execute("DELETE FROM sessions WHERE id = ?1", params![id])?;
                tx.record(&Event {
                    name: "session_closed",
                    target: Some(&user),
                    outcome: "gone",
                    detail: format!("session={id} pid={pid}: the process ended without closing it"),
                    ..Default::default()
                })?;
                pruned += 1;
            }
            Ok(Outcome::Commit(pruned))
        })
    }

    fn sessions_page(
        &mut self,
        user: Option<&str>,
        after: i64,
        limit: usize,
    ) -> crate::error::Result<Vec<SessionRecord>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, user, service, tty, rhost, pid, pid_start, audit_session, loginuid,
                    opened_at, revoked_at, revoked_reason
             FROM sessions WHERE (?1 IS NULL OR user = ?1) AND id > ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![user, after, limit as i64], record_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::temp_store;
    use crate::store::*;

    fn by(pid: i32, audit_session: Option<u32>) -> OpenedBy {
        OpenedBy {
            pid,
            pid_start: Some(1000 + pid as u64),
            audit_session,
            loginuid: Some(1000),
        }
    }

    fn open(s: &mut SqliteStore, user: &str, by: OpenedBy) -> i64 {
        s.open_session(&NewSession {
            user,
            service: "sshd",
            tty: Some("pts/1"),
            rhost: None,
            by,
            now: 0,
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn sessions_open_list_and_close() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        open(&mut s, "a", by(10, Some(7)));
        open(&mut s, "a", by(11, Some(8)));
        assert_eq!(s.sessions_page(Some("a"), 0, 10).unwrap().len(), 2);
        assert!(s.close_session("a", &by(10, Some(7)), 1).unwrap());
        assert!(!s.close_session("a", &by(99, None), 1).unwrap());
        let left = s.sessions_page(None, 0, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].by.pid, 11);
    }

    #[test]
    fn revocation_spares_the_changing_session() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        open(&mut s, "a", by(10, Some(7)));
        open(&mut s, "a", by(11, Some(8)));
        let revoked = revoke(&s.conn, "a", Some(7), "password changed", 5).unwrap();
        assert_eq!(revoked.len(), 1);
        assert_eq!(revoked[0].by.audit_session, Some(8));
        let rows = s.sessions_page(Some("a"), 0, 10).unwrap();
        let open_one = rows.iter().find(|r| r.by.pid == 10).unwrap();
        assert!(open_one.revoked_at.is_none());
        let revoked_one = rows.iter().find(|r| r.by.pid == 11).unwrap();
        assert_eq!(
            revoked_one.revoked_reason.as_deref(),
            Some("password changed")
        );
    }

    #[test]
    fn unknown_users_get_no_session() {
        let (_d, mut s) = temp_store();
        let r = s
            .open_session(&NewSession {
                user: "ghost",
                service: "sshd",
                tty: None,
                rhost: None,
                by: by(1, None),
                now: 0,
            })
            .unwrap();
        assert!(r.is_err());
    }
}
