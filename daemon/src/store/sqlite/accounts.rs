//! Accounts: read, added, removed, disabled, their password set by an administrator.

use rusqlite::{OptionalExtension, params};

use super::audited::Outcome;
use super::{ACCOUNT_COLUMNS, SqliteStore, account_from_row, admin_event, reader, sessions};
use crate::audit::chain::Event;
use crate::error::Result;
use crate::store::{Account, Accounts, RevokedSession, WriteConflict};
use crate::system::time::now_unix;

impl Accounts for SqliteStore {
    fn account(&mut self, name: &str) -> Result<Option<Account>> {
        reader::account_in(&self.conn, name)
    }

    fn account_by_uid(&mut self, uid: u32) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE uid = ?1");
        Ok(self
            .conn
            .query_row(&sql, params![uid], account_from_row)
            .optional()?)
    }

    fn accounts_page(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<Account>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM users WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![after, limit as i64], account_from_row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    fn accounts_over_cap(
        &mut self,
        hasher: &crate::crypto::hashing::Hasher,
    ) -> Result<(u64, Vec<(String, String)>)> {
        let mut over = Vec::new();
        let mut seen = 0u64;
        let mut after: Option<String> = None;
        loop {
            let page = self.accounts_page(after.as_deref(), 1000)?;
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for account in &page {
                seen += 1;
                if let Some(why) = account.hash.as_deref().and_then(|h| hasher.over_cap(h)) {
                    over.push((account.name.clone(), why));
                }
            }
        }
        Ok((seen, over))
    }

    fn insert_account(
        &mut self,
        name: &str,
        uid: Option<u32>,
        hash: Option<&str>,
        must_change: bool,
        actor_uid: u32,
    ) -> Result<std::result::Result<Account, WriteConflict>> {
        let now = now_unix();
        self.audited(now, |tx| {
            let name_taken: bool = tx.query_row(
                "SELECT EXISTS(SELECT 1 FROM users WHERE name = ?1)",
                params![name],
                |r| r.get(0),
            )?;
            if name_taken {
                return Outcome::refuse(WriteConflict::NameTaken);
            }
            if let Some(uid) = uid {
                let holder: Option<String> = tx
                    .query_row("SELECT name FROM users WHERE uid = ?1", params![uid], |r| {
                        r.get(0)
                    })
                    .optional()?;
                if let Some(holder) = holder {
                    return Outcome::refuse(WriteConflict::UidTaken(holder));
                }
            }
            tx.execute(
                "INSERT INTO users (name, uid, hash, disabled, must_change, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 0, ?4, ?5, ?5)",
                params![name, uid, hash, must_change, now],
            )?;
            tx.record(&Event {
                name: "user_added",
                actor_uid: Some(actor_uid),
                target: Some(name),
                outcome: "ok",
                detail: format!(
                    "uid={} password={} must_change={must_change}",
                    uid.map_or("-".to_string(), |u| u.to_string()),
                    hash.is_some()
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(Ok(Account {
                name: name.to_string(),
                uid,
                hash: hash.map(str::to_string),
                disabled: false,
                must_change,
                created_at: now,
                updated_at: now,
                generation: 0,
            })))
        })
    }

    fn remove_account(
        &mut self,
        name: &str,
        actor_uid: u32,
    ) -> Result<std::result::Result<(), WriteConflict>> {
        self.audited(now_unix(), |tx| {
            let n = tx.execute("DELETE FROM users WHERE name = ?1", params![name])?;
            if n != 1 {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            tx.record(&admin_event("user_removed", actor_uid, name, String::new()))?;
            Ok(Outcome::Commit(Ok(())))
        })
    }

    fn set_disabled(
        &mut self,
        name: &str,
        disabled: bool,
        actor_uid: u32,
    ) -> Result<std::result::Result<(), WriteConflict>> {
        let now = now_unix();
        self.audited(now, |tx| {
            let n = tx.execute(
                "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE name = ?1",
                params![name, disabled, now],
            )?;
            if n != 1 {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            let event = if disabled {
                "user_disabled"
            } else {
                "user_enabled"
            };
            tx.record(&admin_event(event, actor_uid, name, String::new()))?;
            Ok(Outcome::Commit(Ok(())))
        })
    }

    fn set_hash(
        &mut self,
        name: &str,
        hash: &str,
        must_change: bool,
        actor_uid: u32,
    ) -> Result<std::result::Result<Vec<RevokedSession>, WriteConflict>> {
        let now = now_unix();
        self.audited(now, |tx| {
            let n = tx.execute(
                "UPDATE users SET hash = ?2, must_change = ?3, updated_at = ?4,
                                  generation = generation + 1
                 WHERE name = ?1",
                params![name, hash, must_change, now],
            )?;
            if n != 1 {
                return Outcome::refuse(WriteConflict::NotFound);
            }
            tx.execute("DELETE FROM reset_codes WHERE user = ?1", params![name])?;
            let revoked =
                sessions::revoke(tx, name, None, "password set by an administrator", now)?;
            tx.record(&admin_event(
                "password_changed",
                actor_uid,
                name,
                format!(
                    "by=administrator must_change={must_change} sessions_revoked={}",
                    revoked.len()
                ),
            ))?;
            Ok(Outcome::Commit(Ok(revoked)))
        })
    }

    fn accounts_per_scheme(&mut self) -> Result<Vec<(String, u64)>> {
        let mut counts: std::collections::BTreeMap<String, u64> = Default::default();
        let mut stmt = self.conn.prepare_cached("SELECT hash FROM users")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let hash: Option<zeroize::Zeroizing<String>> =
                row.get::<_, Option<String>>(0)?.map(Into::into);
            let scheme = match hash.as_deref() {
                None => "none".to_string(),
                Some(hash) => crate::crypto::hashing::scheme_name(hash),
            };
            *counts.entry(scheme).or_default() += 1;
        }
        Ok(counts.into_iter().collect())
    }
}
