//! The audit trail's rows as the store keeps them: deferred rows written in batches, the chain read.

use super::audited::Outcome;
use super::{SqliteStore, alerts, lockout};
use crate::audit::chain;
use crate::error::Result;
use crate::store::{AuditTrail, Deferred};
use crate::system::time::now_unix;

impl AuditTrail for SqliteStore {
    fn write_deferred(&mut self, items: &[Deferred]) -> Result<()> {
        // Each queued row carries its own time.
        self.audited(now_unix(), |tx| {
            for item in items {
                match item {
                    Deferred::Event(event) => tx.record_queued(event)?,
                    Deferred::LockedAttempt(attempt) => {
                        lockout::insert_locked_attempt(tx, attempt)?
                    }
                    Deferred::LoginSource(source) => alerts::insert_login_source(tx, source)?,
                }
            }
            Ok(Outcome::Commit(()))
        })
    }

    fn audit_verify(&mut self) -> Result<credd_proto::AuditReport> {
        Ok(chain::verify(&self.conn, &self.audit_key)?)
    }

    fn audit_head(&mut self) -> Result<(u64, String)> {
        Ok(chain::chain_head(&self.conn)?)
    }

    fn audit_page(
        &mut self,
        user: Option<&str>,
        since: Option<i64>,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<credd_proto::AuditEntry>> {
        Ok(chain::page(&self.conn, user, since, after_seq, limit)?)
    }
}
