//! The daemon's shared state: everything a request handler may touch.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use crate::admin::AdminGroup;
use crate::audit::Event;
use crate::auditlog::{Outgoing, Sink};
use crate::config::Config;
use crate::hashing::{Hasher, Pepper};
use crate::lockout::{Policy, UnknownNames};
use crate::pool::HashPool;
use crate::quality::Quality;
use crate::ratelimit::RateLimits;
use crate::store::Store;

pub struct Daemon {
    pub config: Config,
    pub sink: Arc<Sink>,
    pub audit_key_path: PathBuf,
    pub quality: Quality,
    pub hasher: Hasher,
    pub lockout: Policy,
    store: Mutex<Store>,
    pub pool: HashPool,
    pub unknown_names: UnknownNames,
    pub rate: RateLimits,
    pub counters: Counters,
    pub busy_log: BusyLog,
    /// `[admin] group`, resolved at start.
    pub admin_group: Option<AdminGroup>,
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
        Ok(Daemon {
            admin_group,
            hasher: Hasher::new(config.hashing.iterations, pepper),
            sink,
            audit_key_path,
            quality: Quality::from_config(&config.password)?,
            lockout: Policy::from_config(&config.lockout),
            pool: HashPool::new(config.hash_threads(), config.limits.hash_queue),
            rate: RateLimits::from_config(&config.rate),
            unknown_names: UnknownNames::new(),
            counters: Counters::new(),
            busy_log: BusyLog::default(),
            store: Mutex::new(store),
            config,
        })
    }

    /// Writes an event that changes nothing else. A failure to write is logged and counted as an
    /// integrity problem, never allowed to fail the request that caused the event.
    pub fn record(&self, event: &Event<'_>) {
        if let Err(e) = self.store().audit_event(event) {
            eprintln!("credd: cannot write audit event {}: {e}", event.name);
            self.sink.publish([Outgoing::Critical {
                event: "integrity_failure",
                detail: format!("audit event {} not written: {e}", event.name),
            }]);
        }
    }

    /// Sends the audit chain head to syslog, so that a truncated tail shows against the
    /// collector's copy.
    pub fn checkpoint(&self, reason: &'static str) {
        match self.store().audit_head() {
            Ok((seq, mac)) => self
                .sink
                .publish([Outgoing::Checkpoint { seq, mac, reason }]),
            Err(e) => eprintln!("credd: cannot read the audit chain head: {e}"),
        }
    }

    pub fn store(&self) -> MutexGuard<'_, Store> {
        // A panic while holding the lock cannot leave a half-written row (every write is a
        // transaction), so a poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
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

/// Events that can come in floods (a full hashing pool) are logged once per
/// [`BusyLog::INTERVAL`] with a count, not once each: a flood would otherwise drown the log, and
/// journald's rate limit would then drop real events.
#[derive(Default)]
pub struct BusyLog {
    last_report: AtomicI64,
    suppressed: AtomicU64,
}

impl BusyLog {
    const INTERVAL: i64 = 10;

    pub fn record(&self, now: i64) {
        let last = self.last_report.load(Ordering::Acquire);
        let due = now - last >= Self::INTERVAL
            && self
                .last_report
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if due {
            let earlier = self.suppressed.swap(0, Ordering::AcqRel);
            eprintln!(
                "credd: hashing pool full: authentication answered Busy ({earlier} more since the last report)"
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::AcqRel);
        }
    }
}
