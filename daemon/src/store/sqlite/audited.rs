//! The one place where a change and its audit rows are committed together and then published.
//!
//! Every write of the store that audits runs in [`SqliteStore::audited`]: its rows are appended to
//! the chain inside the change's transaction, and go to syslog only once that transaction has
//! committed. A closure that returns early (an error, a conflict, [`Outcome::Rollback`]) drops the
//! transaction, which rolls it back, and publishes nothing: syslog never carries a row the table
//! does not.

use rusqlite::{Connection, Transaction};

use super::SqliteStore;
use crate::audit::chain::{AuditKey, Chain, Event, Published, QueuedEvent};
use crate::error::Result;
use crate::store::WriteConflict;

/// What the closure of [`SqliteStore::audited`] decided about its transaction.
pub(super) enum Outcome<T> {
    /// Commit, then publish the rows recorded.
    Commit(T),
    /// Roll back whatever was written (the drop of the transaction does it) and publish nothing.
    Rollback(T),
}

impl<T> Outcome<T> {
    /// A refused write: nothing of it may stay.
    pub(super) fn refuse(
        conflict: WriteConflict,
    ) -> Result<Outcome<std::result::Result<T, WriteConflict>>> {
        Ok(Outcome::Rollback(Err(conflict)))
    }
}

/// A transaction of the store that records audit rows. Derefs to the connection, so the SQL of a
/// change reads as it would on a bare transaction.
pub(super) struct AuditedTx<'c> {
    tx: Transaction<'c>,
    key: &'c AuditKey,
    now: i64,
    /// The chain head after the last row this transaction appended: one read of the head per
    /// transaction, however many rows (an import appends one per account).
    chain: Option<Chain>,
    published: Vec<Published>,
}

impl AuditedTx<'_> {
    /// Appends `event` to the chain in this transaction, to be published after the commit.
    pub(super) fn record(&mut self, event: &Event<'_>) -> Result<()> {
        let row = self.append(event)?;
        self.published.push(row);
        Ok(())
    }

    /// Appends `event` to the chain in this transaction, never to be published: the rows of a
    /// bulk import, which syslog gets as its summary.
    pub(super) fn record_unpublished(&mut self, event: &Event<'_>) -> Result<()> {
        self.append(event).map(drop)
    }

    /// Appends a row queued by the audit writer, under the time and request id it was queued with.
    pub(super) fn record_queued(&mut self, event: &QueuedEvent) -> Result<()> {
        // Written by the chain's own path, which reads the head itself: the cached head is stale.
        self.chain = None;
        let row = event.record(&self.tx, self.key)?;
        self.published.push(row);
        Ok(())
    }

    fn append(&mut self, event: &Event<'_>) -> Result<Published> {
        let chain = match &mut self.chain {
            Some(chain) => chain,
            empty => empty.insert(Chain::start(&self.tx)?),
        };
        Ok(chain.append(&self.tx, self.key, self.now, event)?)
    }
}

impl std::ops::Deref for AuditedTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl SqliteStore {
    /// Runs `change` in one transaction whose audit rows carry the time `now`; commits and then
    /// publishes the rows it recorded, unless it returned an error or [`Outcome::Rollback`].
    pub(super) fn audited<T>(
        &mut self,
        now: i64,
        change: impl FnOnce(&mut AuditedTx<'_>) -> Result<Outcome<T>>,
    ) -> Result<T> {
        let mut tx = AuditedTx {
            tx: self.conn.transaction()?,
            key: &self.audit_key,
            now,
            chain: None,
            published: Vec::new(),
        };
        match change(&mut tx)? {
            Outcome::Rollback(value) => Ok(value),
            Outcome::Commit(value) => {
                let AuditedTx { tx, published, .. } = tx;
                tx.commit()?;
                self.sink.publish_events(published);
                Ok(value)
            }
        }
    }
}
