//! The audit writer's queue: rows that record a refusal or an outcome (no change of state goes
//! with them) wait here and are committed in batches, so that a refusal costs what the IPC costs.
//! Rows that go with a change are written in that change's transaction instead (store/).

use std::sync::{Condvar, Mutex, MutexGuard};

use super::Daemon;
use crate::audit::chain::{Event, QueuedEvent};
use crate::audit::syslog::Outgoing;
use crate::store::{Deferred, LockedAttempt};

/// How long the audit writer lets events gather after the first, unless [`AUDIT_BATCH`] are
/// waiting: the bound on how late a refusal's row is committed.
const AUDIT_COALESCE: std::time::Duration = std::time::Duration::from_millis(5);
const AUDIT_BATCH: usize = 256;

/// Past this many queued audit events, callers write their own rows (backpressure).
const AUDIT_QUEUE_MAX: usize = 10_000;

#[derive(Default)]
pub struct AuditQueue {
    state: Mutex<QueueState>,
    wake: Condvar,
}

impl AuditQueue {
    /// A panic while holding the lock leaves plain counters and a vector: safe to keep using.
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct QueueState {
    pending: Vec<Deferred>,
    enqueued: u64,
    committed: u64,
    writer_running: bool,
    stopping: bool,
    /// Replies sent whose audit rows are not queued yet ([`Daemon::hold_audit`]).
    held: usize,
}

impl Daemon {
    /// Records an event that changes nothing else (a refusal, a login's outcome, a daemon
    /// notice). It is queued for the audit writer, which commits whatever has queued up in one
    /// transaction: the request does not wait for an fsync, so a refusal costs what the IPC
    /// costs, and a burst of them costs one fsync per batch, not one each. A crash can lose the
    /// rows of the last batch in flight; events that go with a change of state are written in the
    /// transaction of that change instead, never through here. Readers of the audit table call
    /// [`Daemon::flush_audit`] first. With the queue full, the caller writes its own row.
    pub fn record(&self, event: &Event<'_>) {
        self.record_captured(QueuedEvent::capture(event, crate::system::time::now_unix()));
    }

    /// [`Daemon::record`] for an event captured earlier (one recorded after its reply was sent).
    pub fn record_captured(&self, queued: QueuedEvent) {
        self.defer(Deferred::Event(queued));
    }

    /// The source of a successful login, new to this run, for the alerts' record (written with
    /// the next batch of audit rows).
    pub fn record_login_source(&self, user: &str, source: &str, at: i64) {
        self.defer(Deferred::LoginSource(crate::store::LoginSource {
            user: user.to_owned(),
            source: source.to_owned(),
            at,
        }));
    }

    /// An attempt refused because the account is locked: its failure row (for `last_failure`)
    /// goes through the same writer, so the refusal is answered from a read alone.
    pub fn record_locked_attempt(&self, attempt: LockedAttempt) {
        self.defer(Deferred::LockedAttempt(attempt));
    }

    fn defer(&self, queued: Deferred) {
        // R1: with the volume nearly full, rows that only record a refusal are dropped (and
        // counted), so that what is left goes to changes of state: a flood of refusals must not
        // be what makes the next password change fail.
        if queued.is_refusal() && self.disk.is_low(crate::system::time::now_unix_ms()) {
            self.disk.dropped();
            return;
        }
        let mut queue = self.audit_queue.lock();
        if queue.pending.len() < AUDIT_QUEUE_MAX && queue.writer_running {
            // The writer needs waking for the first row of a batch and when the batch is full;
            // in between it is waiting out AUDIT_COALESCE anyway, and waking it for each row
            // would cost a context switch per refusal.
            let wake = queue.pending.is_empty() || queue.pending.len() + 1 >= AUDIT_BATCH;
            queue.pending.push(queued);
            queue.enqueued += 1;
            if wake {
                self.audit_queue.wake.notify_all();
            }
            return;
        }
        drop(queue);
        self.write_audit(&[queued]);
    }

    fn write_audit(&self, events: &[Deferred]) {
        if let Err(e) = self.store().write_deferred(events) {
            let names: Vec<&str> = events.iter().map(Deferred::name).collect();
            eprintln!("credd: cannot write audit events {names:?}: {e}");
            self.sink.publish([Outgoing::Critical {
                event: "integrity_failure",
                detail: format!("audit events {names:?} not written: {e}"),
            }]);
        }
    }

    /// A reply is about to be sent before its audit row is queued: [`Daemon::flush_audit`] waits
    /// for that row too, so that whoever saw the reply and then reads the audit table finds it.
    pub fn hold_audit(&self) {
        self.audit_queue.lock().held += 1;
    }

    pub fn release_audit(&self) {
        let mut queue = self.audit_queue.lock();
        queue.held -= 1;
        if queue.held == 0 {
            self.audit_queue.wake.notify_all();
        }
    }

    /// Waits until every event recorded before the call is in the audit table, including those
    /// of replies already sent whose rows were still on their way.
    pub fn flush_audit(&self) {
        let queue = self.audit_queue.lock();
        let queue = self
            .audit_queue
            .wake
            .wait_while(queue, |q| q.held > 0)
            .unwrap_or_else(|p| p.into_inner());
        let target = queue.enqueued;
        let _done = self
            .audit_queue
            .wake
            .wait_while(queue, |q| q.writer_running && q.committed < target)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// The audit writer's loop (one thread, started by main); returns after [`Daemon::stop_audit`]
    /// once the queue is empty.
    pub fn run_audit_writer(&self) {
        loop {
            let batch = {
                let mut queue = self.audit_queue.lock();
                queue.writer_running = true;
                queue = self
                    .audit_queue
                    .wake
                    .wait_while(queue, |q| q.pending.is_empty() && !q.stopping)
                    .unwrap_or_else(|p| p.into_inner());
                // Let a burst gather: one commit (and its fsync) for all of it, and the CPU of
                // a commit not spent between every two refusals.
                queue = self
                    .audit_queue
                    .wake
                    .wait_timeout_while(queue, AUDIT_COALESCE, |q| {
                        q.pending.len() < AUDIT_BATCH && !q.stopping
                    })
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                if queue.pending.is_empty() {
                    queue.writer_running = false;
                    self.audit_queue.wake.notify_all();
                    return;
                }
                std::mem::take(&mut queue.pending)
            };
            self.write_audit(&batch);
            let mut queue = self.audit_queue.lock();
            queue.committed += batch.len() as u64;
            self.audit_queue.wake.notify_all();
        }
    }

    /// Marks the writer as starting, so that events recorded before its thread runs are queued.
    pub fn start_audit_writer(&self) {
        let mut queue = self.audit_queue.lock();
        queue.writer_running = true;
    }

    /// Lets the writer finish what is queued and end; later events are written directly.
    pub fn stop_audit(&self) {
        let mut queue = self.audit_queue.lock();
        queue.stopping = true;
        self.audit_queue.wake.notify_all();
        let _stopped = self
            .audit_queue
            .wake
            .wait_while(queue, |q| q.writer_running)
            .unwrap_or_else(|p| p.into_inner());
    }

    /// Sends the audit chain head to syslog, so that a truncated tail shows against the
    /// collector's copy.
    pub fn checkpoint(&self, reason: &'static str) {
        self.flush_audit();
        match self.store().audit_head() {
            Ok((seq, mac)) => self
                .sink
                .publish([Outgoing::Checkpoint { seq, mac, reason }]),
            Err(e) => eprintln!("credd: cannot read the audit chain head: {e}"),
        }
    }
}
