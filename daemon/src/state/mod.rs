//! The daemon's shared state: everything a request handler may touch.

mod audit_queue;
mod counters;

pub use audit_queue::AuditQueue;
pub use counters::{BusyLog, Counters, DiskReserve, LogEvery};

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::audit::syslog::Sink;
use crate::config::Config;
use crate::crypto::hashing::{Hasher, Pepper};
use crate::crypto::pool::HashPool;
use crate::policy::lockout::{Policy, UnknownNames};
use crate::policy::quality::Quality;
use crate::policy::ratelimit::RateLimits;
use crate::store::{Reader, Store};
use crate::system::groups::AdminGroup;

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
    store: Mutex<Box<dyn Store>>,
    /// The read-only handle for the first reads of a login ([`Reader`]).
    reader: Mutex<Box<dyn Reader>>,
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
        store: Box<dyn Store>,
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
        // The state directory: where the embedded store, the audit key and queued rows live.
        let disk = DiskReserve::new(
            audit_key_path
                .parent()
                .unwrap_or(std::path::Path::new("/"))
                .to_path_buf(),
            config.audit.disk_reserve_mib,
        );
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
            disk,
            store: Mutex::new(store),
            config,
        })
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

    pub fn reader(&self) -> MutexGuard<'_, Box<dyn Reader>> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn store(&self) -> MutexGuard<'_, Box<dyn Store>> {
        // A panic while holding the lock cannot leave a half-written row (every write is a
        // transaction), so a poisoned lock is safe to keep using.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}
