//! Reset codes: issuing, checking, burning, consuming and purging, each with its audit row in the
//! same transaction.

use rusqlite::{OptionalExtension, params};

use super::audited::Outcome;
use super::{SqliteStore, exists, lockout, sessions};
use crate::audit::chain::{self, Event};
use crate::store::{CodeRow, Codes, PasswordChange, ResetOrder, RevokedSession, WriteConflict};

pub(super) fn code_in(
    conn: &rusqlite::Connection,
    user: &str,
) -> crate::error::Result<Option<CodeRow>> {
    Ok(conn
        .prepare_cached("SELECT digest, expires_at FROM reset_codes WHERE user = ?1")?
        .query_row(params![user], |r| {
            Ok(CodeRow {
                digest: r.get(0)?,
                expires_at: r.get(1)?,
            })
        })
        .optional()?)
}

impl Codes for SqliteStore {
    fn code_of(&mut self, user: &str) -> crate::error::Result<Option<CodeRow>> {
        code_in(&self.conn, user)
    }

    fn resets_since(
        &mut self,
        user: &str,
        admin_uid: u32,
        since: i64,
    ) -> crate::error::Result<(u32, u32)> {
        Ok((
            chain::count_since(&self.conn, "reset_issued", Some(user), None, since)?,
            chain::count_since(&self.conn, "reset_issued", None, Some(admin_uid), since)?,
        ))
    }

    fn issue_reset(
        &mut self,
        order: &ResetOrder<'_>,
    ) -> crate::error::Result<Result<Vec<RevokedSession>, WriteConflict>> {
        self.audited(order.now, |tx| {
            if !exists(tx, order.user)? {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            tx.execute(
                "INSERT OR REPLACE INTO reset_codes (user, digest, issued_at, expires_at, attempts, issued_by)
                 VALUES (?1, ?2, ?3, ?4, 0, ?5)",
                params![
                    order.user,
                    &order.digest[..],
                    order.now,
                    order.expires_at,
                    order.admin_uid
                ],
            )?;
            if order.keep_password {
                tx.execute(
                    "UPDATE users SET must_change = 1, updated_at = ?2, generation = generation + 1
                     WHERE name = ?1",
                    params![order.user, order.now],
                )?;
            } else {
                tx.execute(
                    "UPDATE users SET hash = NULL, must_change = 1, updated_at = ?2,
                                      generation = generation + 1
                     WHERE name = ?1",
                    params![order.user, order.now],
                )?;
            }
            lockout::clear_lock_and_failures(tx, order.user)?;
            let revoked = sessions::revoke(tx, order.user, None, "reset", order.now)?;
            tx.record(&Event {
                name: "reset_issued",
                actor_uid: Some(order.admin_uid),
                target: Some(order.user),
                outcome: "ok",
                detail: format!(
                    "expires_at={} keep_password={} sessions_revoked={}",
                    crate::system::time::rfc3339(order.expires_at),
                    order.keep_password,
                    revoked.len()
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(revoked)))
        })
    }

    fn code_rejected(
        &mut self,
        user: &str,
        digest: &[u8],
        max_attempts: u32,
        peer_uid: u32,
        now: i64,
    ) -> crate::error::Result<bool> {
        self.audited(now, |tx| {
            let attempts: Option<u32> = tx
                .query_row(
                    "UPDATE reset_codes SET attempts = attempts + 1 WHERE user = ?1 AND digest = ?2
                     RETURNING attempts",
                    params![user, digest],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(attempts) = attempts else {
                return Ok(Outcome::Rollback(false)); // consumed, purged or replaced meanwhile
            };
            let burned = crate::policy::codes::burned(attempts, max_attempts);
            tx.record(&Event {
                name: "code_rejected",
                actor_uid: Some(peer_uid),
                target: Some(user),
                outcome: "denied",
                detail: format!("attempt={attempts} max_attempts={max_attempts}"),
                ..Default::default()
            })?;
            if burned {
                tx.execute(
                    "DELETE FROM reset_codes WHERE user = ?1 AND digest = ?2",
                    params![user, digest],
                )?;
                tx.record(&Event {
                    name: "code_burned",
                    actor_uid: Some(peer_uid),
                    target: Some(user),
                    outcome: "burned",
                    detail: format!("after {attempts} wrong codes"),
                    ..Default::default()
                })?;
            }
            Ok(Outcome::Commit(burned))
        })
    }

    fn purge_expired_codes(&mut self, now: i64) -> crate::error::Result<usize> {
        self.audited(now, |tx| {
            let expired: Vec<(String, i64)> = {
                let mut stmt =
                    tx.prepare("SELECT user, expires_at FROM reset_codes WHERE expires_at <= ?1")?;
                let rows = stmt.query_map(params![now], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            for (user, expires_at) in &expired {
                tx.execute("DELETE FROM reset_codes WHERE user = ?1", params![user])?;
                tx.record(&Event {
                    name: "code_expired",
                    actor_uid: None,
                    target: Some(user),
                    outcome: "purged",
                    detail: format!("expired_at={}", crate::system::time::rfc3339(*expires_at)),
                    ..Default::default()
                })?;
            }
            Ok(Outcome::Commit(expired.len()))
        })
    }

    fn change_password(
        &mut self,
        change: &PasswordChange<'_>,
    ) -> crate::error::Result<Result<Vec<RevokedSession>, WriteConflict>> {
        self.audited(change.now, |tx| {
            let n = tx.execute(
                "UPDATE users SET hash = ?2, must_change = 0, updated_at = ?3,
                                  generation = generation + 1
                 WHERE name = ?1 AND generation = ?4",
                params![change.user, change.new_hash, change.now, change.generation],
            )?;
            if n != 1 {
                return Outcome::refuse(if exists(tx, change.user)? {
                    WriteConflict::Changed
                } else {
                    WriteConflict::NotFound
                });
            }
            let consumed = match change.code_digest {
                Some(digest) => {
                    let n = tx.execute(
                        "DELETE FROM reset_codes WHERE user = ?1 AND digest = ?2",
                        params![change.user, digest],
                    )?;
                    if n != 1 {
                        // The refusal rolls the hash back.
                        return Outcome::refuse(WriteConflict::Changed);
                    }
                    n
                }
                // A change proven by the password (or by root) voids a pending code too.
                None => tx.execute(
                    "DELETE FROM reset_codes WHERE user = ?1",
                    params![change.user],
                )?,
            };
            if change.code_digest.is_some() && consumed == 1 {
                tx.record(&Event {
                    name: "code_redeemed",
                    actor_uid: Some(change.peer_uid),
                    target: Some(change.user),
                    outcome: "ok",
                    detail: format!("service={:?}", change.service),
                    ..Default::default()
                })?;
            }
            lockout::clear_failures_and_their_lock(tx, change.user)?;
            let revoked = sessions::revoke(
                tx,
                change.user,
                change.except_audit_session,
                "password changed",
                change.now,
            )?;
            tx.record(&Event {
                name: "password_changed",
                actor_uid: Some(change.peer_uid),
                target: Some(change.user),
                outcome: "ok",
                detail: format!(
                    "by={} service={:?} sessions_revoked={}",
                    change.by,
                    change.service,
                    revoked.len()
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(revoked)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::codes::CodeDigest;
    use crate::store::tests::temp_store;
    use crate::store::*;

    fn order<'a>(user: &'a str, digest: &'a CodeDigest, now: i64) -> ResetOrder<'a> {
        ResetOrder {
            user,
            digest,
            expires_at: now + 900,
            keep_password: false,
            admin_uid: 0,
            now,
        }
    }

    #[test]
    fn a_reset_invalidates_the_password_and_replaces_the_previous_code() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$h"), false, 0)
            .unwrap()
            .unwrap();
        let first = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &first, 10)).unwrap().unwrap();
        let account = s.account("a").unwrap().unwrap();
        assert!(account.hash.is_none());
        assert!(account.must_change);
        let second = crate::policy::codes::digest("BBBB");
        s.issue_reset(&order("a", &second, 20)).unwrap().unwrap();
        let row = s.code_of("a").unwrap().unwrap();
        assert_eq!(row.digest, second.to_vec());
        assert_eq!(s.resets_since("a", 0, 0).unwrap(), (2, 2));
        assert!(s.issue_reset(&order("zz", &second, 20)).unwrap().is_err());
    }

    #[test]
    fn wrong_codes_burn_at_max_attempts() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &digest, 0)).unwrap().unwrap();
        assert!(!s.code_rejected("a", &digest, 3, 0, 1).unwrap());
        assert!(!s.code_rejected("a", &digest, 3, 0, 2).unwrap());
        assert!(s.code_rejected("a", &digest, 3, 0, 3).unwrap());
        assert!(s.code_of("a").unwrap().is_none());
    }

    #[test]
    fn purge_deletes_only_expired_codes_and_audits_each() {
        let (_d, mut s) = temp_store();
        for user in ["a", "b"] {
            s.insert_account(user, None, None, false, 0)
                .unwrap()
                .unwrap();
        }
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &digest, 0)).unwrap().unwrap(); // expires at 900
        s.issue_reset(&order("b", &digest, 500)).unwrap().unwrap(); // expires at 1400
        assert_eq!(s.purge_expired_codes(1000).unwrap(), 1);
        assert!(s.code_of("a").unwrap().is_none());
        assert!(s.code_of("b").unwrap().is_some());
        assert_eq!(
            chain::count_since(&s.conn, "code_expired", Some("a"), None, 0).unwrap(),
            1
        );
    }

    #[test]
    fn a_change_consumes_the_code_and_clears_must_change() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &digest, 0)).unwrap().unwrap();
        let generation = s.account("a").unwrap().unwrap().generation;
        s.change_password(&PasswordChange {
            user: "a",
            new_hash: "$new",
            generation,
            code_digest: Some(&digest[..]),
            by: "self",
            service: "sshd",
            peer_uid: 0,
            except_audit_session: None,
            now: 5,
        })
        .unwrap()
        .unwrap();
        let account = s.account("a").unwrap().unwrap();
        assert_eq!(account.hash.as_deref(), Some("$new"));
        assert!(!account.must_change);
        assert!(s.code_of("a").unwrap().is_none());
        assert_eq!(
            chain::count_since(&s.conn, "code_redeemed", Some("a"), None, 0).unwrap(),
            1
        );
    }

    fn change<'a>(
        user: &'a str,
        hash: &'a str,
        generation: i64,
        code: Option<&'a [u8]>,
    ) -> PasswordChange<'a> {
        PasswordChange {
            user,
            new_hash: hash,
            generation,
            code_digest: code,
            by: "self",
            service: "passwd",
            peer_uid: 0,
            except_audit_session: None,
            now: 5,
        }
    }

    #[test]
    fn a_reset_after_the_proof_refuses_the_change_and_stays() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$old"), false, 0)
            .unwrap()
            .unwrap();
        // The old password is proven at this generation; the reset comes while the new one hashes.
        let proven = s.account("a").unwrap().unwrap().generation;
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &digest, 1)).unwrap().unwrap();
        assert_eq!(
            s.change_password(&change("a", "$new", proven, None))
                .unwrap()
                .unwrap_err(),
            WriteConflict::Changed
        );
        let account = s.account("a").unwrap().unwrap();
        assert!(account.hash.is_none() && account.must_change);
        assert_eq!(s.code_of("a").unwrap().unwrap().digest, digest.to_vec());
        // An administrator's password set moves the generation too.
        let proven = s.account("a").unwrap().unwrap().generation;
        s.set_hash("a", "$admin", false, 0).unwrap().unwrap();
        assert_eq!(
            s.change_password(&change("a", "$new", proven, None))
                .unwrap()
                .unwrap_err(),
            WriteConflict::Changed
        );
        assert_eq!(
            s.account("a").unwrap().unwrap().hash.as_deref(),
            Some("$admin")
        );
    }

    #[test]
    fn one_code_redeems_one_change_and_only_its_own() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, None, false, 0)
            .unwrap()
            .unwrap();
        let first = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &first, 0)).unwrap().unwrap();
        let proven = s.account("a").unwrap().unwrap().generation;
        // Two changes proven with the same code at the same generation: the first wins.
        s.change_password(&change("a", "$one", proven, Some(&first[..])))
            .unwrap()
            .unwrap();
        assert_eq!(
            s.change_password(&change("a", "$two", proven, Some(&first[..])))
                .unwrap()
                .unwrap_err(),
            WriteConflict::Changed
        );
        assert_eq!(
            s.account("a").unwrap().unwrap().hash.as_deref(),
            Some("$one")
        );
        // A code replaced by a new reset does not delete the new one, even at the new generation.
        let second = crate::policy::codes::digest("BBBB");
        s.issue_reset(&order("a", &second, 10)).unwrap().unwrap();
        let now_at = s.account("a").unwrap().unwrap().generation;
        assert_eq!(
            s.change_password(&change("a", "$stale", now_at, Some(&first[..])))
                .unwrap()
                .unwrap_err(),
            WriteConflict::Changed
        );
        let account = s.account("a").unwrap().unwrap();
        assert!(account.hash.is_none() && account.must_change);
        assert_eq!(s.code_of("a").unwrap().unwrap().digest, second.to_vec());
        // A wrong code charged against a replaced code is not counted on the new one.
        assert!(!s.code_rejected("a", &first, 1, 0, 11).unwrap());
        assert!(s.code_of("a").unwrap().is_some());
    }

    #[test]
    fn a_login_verified_before_a_reset_does_not_count_after_it() {
        let (_d, mut s) = temp_store();
        s.insert_account("a", None, Some("$old"), false, 0)
            .unwrap()
            .unwrap();
        let proven = s.account("a").unwrap().unwrap().generation;
        let digest = crate::policy::codes::digest("AAAA");
        s.issue_reset(&order("a", &digest, 1)).unwrap().unwrap();
        let success = crate::store::Success {
            generation: Some(proven),
            ..Default::default()
        };
        assert_eq!(
            s.attempt_succeeded("a", 2, &success).unwrap(),
            crate::store::Succeeded::ChangedMeanwhile
        );
    }
}
