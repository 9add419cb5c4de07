//! What the daemon counts and how often it says so: the disk reserve, the counters of
//! `credctl status --daemon`, and log lines held to one per interval.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Instant;

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

    pub(super) fn dropped(&self) {
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
    pub(super) fn new() -> Counters {
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
