//! A second, read-only connection for the reads every login starts with (the account, its
//! pending code, its lock). In WAL mode a reader never waits for a writer: a refusal of a locked
//! account is answered while another request's transaction, or the audit writer's batch, is in
//! its fsync under the store lock.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::{ACCOUNT_COLUMNS, account_from_row, lockout};
use crate::error::Result;
use crate::policy::lockout::Gate;
use crate::store::{Account, CodeRow, LockRead, LoginView, Reader};

pub struct SqliteReader {
    conn: Connection,
}

impl SqliteReader {
    pub(super) fn open(path: &Path) -> Result<SqliteReader> {
        let conn = Connection::open_with_flags(
            path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )?;
        super::schema::harden(&conn)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(SqliteReader { conn })
    }
}

impl Reader for SqliteReader {
    fn login_view(&mut self, name: &str, now: i64) -> Result<LoginView> {
        self.conn.execute_batch("BEGIN")?;
        let view = (|| {
            let Some(account) = account_in(&self.conn, name)? else {
                return Ok(LoginView {
                    account: None,
                    state: None,
                });
            };
            let code = super::codes::code_in(&self.conn, name)?;
            let lock = self.lock(name, now)?;
            Ok(LoginView {
                account: Some(account),
                state: Some((code, lock)),
            })
        })();
        // A read transaction has nothing to keep: end it whatever happened.
        let _ = self.conn.execute_batch("COMMIT");
        view
    }

    fn account(&mut self, name: &str) -> Result<Option<Account>> {
        account_in(&self.conn, name)
    }

    /// The account whose stored uid is `uid` (uids are unique in the store).
    fn account_of_uid(&mut self, uid: u32) -> Result<Option<Account>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE uid = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![uid], super::account_from_row)
            .optional()?)
    }

    fn code_of(&mut self, user: &str) -> Result<Option<CodeRow>> {
        super::codes::code_in(&self.conn, user)
    }

    fn lock(&mut self, user: &str, now: i64) -> Result<LockRead> {
        Ok(
            match crate::policy::lockout::gate(lockout::lock_in(&self.conn, user)?.as_ref(), now) {
                Gate::Locked { until } => LockRead::Locked { until },
                Gate::Open => LockRead::Open,
                Gate::Expired => LockRead::Expired,
            },
        )
    }
}

pub(super) fn account_in(conn: &Connection, name: &str) -> Result<Option<Account>> {
    let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM users WHERE name = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![name], account_from_row)
        .optional()?)
}
