//! The daemon's shared state: everything a request handler may touch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use crate::audit::chain::{Event, QueuedEvent};
use crate::audit::syslog::{Outgoing, Sink};
use crate::config::Config;
use crate::crypto::hashing::{Hasher, Pepper};
use crate::crypto::pool::HashPool;
use crate::policy::lockout::{Policy, UnknownNames};
use crate::policy::quality::Quality;
use crate::policy::ratelimit::RateLimits;
use crate::store::Store;
use crate::store::{Deferred, LockedAttempt, Reader};
use crate::system::groups::AdminGroup;

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

/// What a configuration reload (SIGHUP) replaces as a whole: the policy of every request from
/// then on. A request in progress keeps the `Live` it started with.
pub struct Live {
    pub config: Config,
    pub quality: Quality,
    pub hasher: Hasher,
    pub lockout: Policy,
}

pub struct Daemon {
    pub audit_queue: AuditQueue,
    /// The configuration read at start. Sections a reload cannot apply ([limits], [admin],
    /// [audit] syslog and format, [hashing] pepper_file) are read from here; everything else from
    /// [`Daemon::live`].
    pub config: Config,
    pub sink: Arc<Sink>,
    pub audit_key_path: PathBuf,
    live: std::sync::RwLock<Arc<Live>>,
    store: Mutex<Store>,
    /// Read-only connection for the first reads of a login (store/reader.rs).
    reader: Mutex<Reader>,
    pub pool: HashPool,
    pub unknown_names: UnknownNames,
    pub rate: RateLimits,
    pub counters: Counters,
    pub busy_log: BusyLog,
    /// Detectors of unusual patterns (alerts/).
    pub alerts: crate::alerts::Alerts,
    /// `[admin] group`, resolved at start.
    pub admin_group: Option<AdminGroup>,
    pub disk: DiskReserve,
}

impl Daemon {
    pub fn new(
        config: Config,
        store: Store,
        sink: Arc<Sink>,
        audit_key_path: PathBuf,
        pepper: Option<Pepper>,
    ) -> crate::error::Result<Daemon> {
        let admin_group = config
            .admin
            .group
            .as_deref()
            .map(AdminGroup::resolve)
            .transpose()?;
        let live = Live {
            config: config.clone(),
            quality: config.password.quality()?,
            hasher: Hasher::new(config.hashing.iterations, pepper)
                .accepting_legacy(config.hashing.accept_legacy)
                .with_caps(config.hashing.cost_caps()),
            lockout: config.lockout.policy(),
        };
        Ok(Daemon {
            audit_queue: AuditQueue::default(),
            admin_group,
            live: std::sync::RwLock::new(Arc::new(live)),
            sink,
            audit_key_path,
            pool: HashPool::new(config.hash_threads(), config.limits.hash_queue),
            rate: RateLimits::new(&config.rate.rates()),
            unknown_names: UnknownNames::new(),
            counters: Counters::new(),
            busy_log: BusyLog::default(),
            alerts: crate::alerts::Alerts::new(),
            reader: Mutex::new(store.reader()?),
            disk: DiskReserve::new(
                store
                    .db_path()
                    .parent()
                    .unwrap_or(std::path::Path::new("/"))
                    .to_path_buf(),
                config.audit.disk_reserve_mib,
            ),
            store: Mutex::new(store),
            config,
        })
    }

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

    /// The policy in force now. A request reads the one pinned in its context instead
    /// (`handlers::context`), so that a reload in the middle of it cannot mix two policies.
    pub fn current_policy(&self) -> Arc<Live> {
        Arc::clone(&self.live.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Applies `new` (already parsed and validated) from the next request on. Sections that only
    /// take effect at start keep their running values; their names are returned so that the
    /// caller can say a restart is needed for them.
    pub fn reload(&self, new: Config) -> crate::error::Result<Vec<&'static str>> {
        let old = &self.config;
        let mut needs_restart = Vec::new();
        if new.hashing.pepper_file != old.hashing.pepper_file {
            needs_restart.push("hashing.pepper_file");
        }
        if format!("{:?}", new.limits) != format!("{:?}", old.limits) {
            needs_restart.push("limits");
        }
        if new.admin.group != old.admin.group {
            needs_restart.push("admin.group");
        }
        if new.audit.syslog != old.audit.syslog || new.audit.format != old.audit.format {
            needs_restart.push("audit.syslog/format");
        }
        let current = self.current_policy();
        let live = Live {
            quality: new.password.quality()?,
            hasher: current
                .hasher
                .with_iterations(new.hashing.iterations)
                .accepting_legacy(new.hashing.accept_legacy)
                .with_caps(new.hashing.cost_caps()),
            lockout: new.lockout.policy(),
            config: new,
        };
        self.rate.reconfigure(&live.config.rate.rates());
        *self.live.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(live);
        Ok(needs_restart)
    }

    pub fn reader(&self) -> MutexGuard<'_, Reader> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-written row (every write is a
        // transaction), so a poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Free space on the state directory's volume, read at most once a second.
pub struct DiskReserve {
    dir: PathBuf,
    reserve_bytes: u64,
    checked_ms: AtomicI64,
    low: std::sync::atomic::AtomicBool,
    dropped: AtomicU64,
    /// The "dropping" line, once a minute.
    reported: LogEvery,
}

impl DiskReserve {
    const RECHECK_MS: i64 = 1000;

    pub fn new(dir: PathBuf, reserve_mib: u64) -> DiskReserve {
        DiskReserve {
            dir,
            reserve_bytes: reserve_mib.saturating_mul(1024 * 1024),
            checked_ms: AtomicI64::new(i64::MIN),
            low: std::sync::atomic::AtomicBool::new(false),
            dropped: AtomicU64::new(0),
            reported: LogEvery::default(),
        }
    }

    /// Below the reserve? A volume that cannot be asked counts as not low: the write itself
    /// then reports what is wrong.
    pub fn is_low(&self, now_ms: i64) -> bool {
        if self.reserve_bytes == 0 {
            return false;
        }
        let checked = self.checked_ms.load(Ordering::Relaxed);
        if now_ms.saturating_sub(checked) >= Self::RECHECK_MS
            && self
                .checked_ms
                .compare_exchange(checked, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            let low = nix::sys::statvfs::statvfs(&self.dir).is_ok_and(|v| {
                v.blocks_available().saturating_mul(v.fragment_size()) < self.reserve_bytes
            });
            self.low.store(low, Ordering::Relaxed);
        }
        self.low.load(Ordering::Relaxed)
    }

    fn dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        if self
            .reported
            .due(crate::system::time::now_unix(), 60)
            .is_some()
        {
            eprintln!(
                "credd: less than the [audit] disk_reserve_mib free under {}: refusal events are \
                 dropped and counted (dropped_audit_events), changes of state are still written",
                self.dir.display()
            );
        }
    }

    pub fn dropped_events(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What `credctl status --daemon` reports. Relaxed ordering: these are statistics, not locks.
pub struct Counters {
    pub started: Instant,
    pub verifications: AtomicU64,
    pub busy_replies: AtomicU64,
    pub locked_replies: AtomicU64,
    pub rate_limited_replies: AtomicU64,
    pub refused_peers: AtomicU64,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            started: Instant::now(),
            verifications: AtomicU64::new(0),
            busy_replies: AtomicU64::new(0),
            locked_replies: AtomicU64::new(0),
            rate_limited_replies: AtomicU64::new(0),
            refused_peers: AtomicU64::new(0),
        }
    }

    pub fn bump(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Events that can come in floods are logged once per interval with a count, not once each: a
/// flood would otherwise drown the log, and journald's rate limit would then drop real events.
#[derive(Default)]
pub struct LogEvery {
    last_report: AtomicI64,
    suppressed: AtomicU64,
}

impl LogEvery {
    /// `Some(earlier)` when this event is due for a line (`earlier`: the ones not logged since
    /// the last line), `None` when it is only counted.
    pub fn due(&self, now: i64, interval: i64) -> Option<u64> {
        let last = self.last_report.load(Ordering::Acquire);
        let due = now - last >= interval
            && self
                .last_report
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if due {
            Some(self.suppressed.swap(0, Ordering::AcqRel))
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
            None
        }
    }
}

/// A full hashing pool's `Busy` replies, one line per 10 s.
#[derive(Default)]
pub struct BusyLog(LogEvery);

impl BusyLog {
    pub fn record(&self, now: i64) {
        if let Some(earlier) = self.0.due(now, 10) {
            eprintln!(
                "credd: hashing pool full: authentication answered Busy ({earlier} more since the last report)"
            );
        }
    }
}
