//! Detectors of unusual patterns (docs/alerts.md): password sprays, slow sprays,
//! distributed guessing, reset bursts, a success right after a burst of failures, and a reset
//! code redeemed from a source no login of the account came from. docs/alerts.md.
//!
//! - [`bucket`]: leaky buckets over distinct keys and their episodes (pure).
//! - [`detect`]: the detectors, pure functions over (state, event, now).
//! - [`settings`]: `[alerts]`, as the config file gives it.
//!
//! The daemon's side (what the login and reset handlers observe, the audit events of the firings,
//! the throttle, the remembered sources of successful logins) is `handlers/alerts.rs`.
//!
//! State is in memory and bounded ([`detect::MAX_TRACKS`] tracks per detector,
//! [`bucket::MAX_DROPS`] drops per track), lost at a restart; only the sources of successful logins
//! are kept in the store (table `login_sources`, at most [`SOURCES_PER_ACCOUNT`] per account),
//! since "never logged in from there" must outlive a restart. Typed names are held as keyed
//! hashes ([`crate::crypto::namekey`]), and shown in a firing only for stored accounts (or with
//! `[audit] log_unknown_names`).

pub mod bucket;
pub mod detect;
pub mod settings;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::crypto::namekey::NameHasher;

pub use detect::{Firing, Kind, LoginOutcome, Source};

/// The largest `threshold` the config accepts: below [`bucket::MAX_DROPS`], so every bucket can
/// overflow.
pub const MAX_THRESHOLD: u32 = 200;

/// Sources of successful logins remembered per account in the store (newest first).
pub const SOURCES_PER_ACCOUNT: usize = 32;

/// (account, source) pairs remembered in memory as already written to the store this run, so a
/// success writes its source once per run, not once per login.
const NOTED_CAPACITY: usize = 10_000;

/// Delayed attempts at once, per source and in all: a throttled source cannot hold more
/// connection threads than this waiting (past it, an attempt goes on without its delay).
pub const MAX_DELAYED_PER_SOURCE: u32 = 4;
pub const MAX_DELAYED: u32 = 32;

pub struct Alerts {
    names: NameHasher,
    state: Mutex<detect::State>,
    noted: Mutex<Noted>,
    delayed: Mutex<Delayed>,
}

#[derive(Default)]
struct Noted {
    set: std::collections::HashSet<(crate::crypto::namekey::NameKey, String)>,
    order: VecDeque<(crate::crypto::namekey::NameKey, String)>,
}

#[derive(Default)]
struct Delayed {
    total: u32,
    per_source: HashMap<Source, u32>,
    /// Attempts that went on without their delay because the caps were full.
    skipped: u64,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts::new()
    }
}

impl Alerts {
    pub fn new() -> Alerts {
        Alerts {
            names: NameHasher::new(),
            state: Mutex::new(detect::State::default()),
            noted: Mutex::new(Noted::default()),
            delayed: Mutex::new(Delayed::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, detect::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn key(&self, name: &str) -> crate::crypto::namekey::NameKey {
        self.names.key(name)
    }

    /// Feeds one event to the detectors; what fires now.
    pub fn feed(
        &self,
        event: &detect::Event<'_>,
        alerts: &crate::alerts::settings::Alerts,
        now: i64,
    ) -> Vec<Firing> {
        detect::observe(&mut self.state(), event, now, &detect::Settings { alerts })
    }

    /// Episodes due by `now`.
    pub fn tick(&self, alerts: &crate::alerts::settings::Alerts, now: i64) -> Vec<Firing> {
        detect::tick(&mut self.state(), now, &detect::Settings { alerts })
    }

    pub fn is_throttled(
        &self,
        source: &Source,
        account: Option<&str>,
        alerts: &crate::alerts::settings::Alerts,
    ) -> bool {
        let state = self.state();
        detect::throttled(&state, source, alerts)
            || account.is_some_and(|a| detect::account_throttled(&state, &self.key(a), alerts))
    }

    pub fn is_admin_throttled(&self, uid: u32, alerts: &crate::alerts::settings::Alerts) -> bool {
        detect::admin_throttled(&self.state(), uid, alerts)
    }

    /// Sleeps `delay` on the calling thread if the caps allow another delayed attempt of
    /// `source`; `false` when they did not (the attempt goes on at once, counted).
    pub fn delay(&self, source: &Source, delay: std::time::Duration) -> bool {
        {
            let mut d = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
            let mine = d.per_source.get(source).copied().unwrap_or(0);
            if d.total >= MAX_DELAYED || mine >= MAX_DELAYED_PER_SOURCE {
                d.skipped += 1;
                return false;
            }
            d.total += 1;
            *d.per_source.entry(source.clone()).or_insert(0) += 1;
        }
        std::thread::sleep(delay);
        let mut d = self.delayed.lock().unwrap_or_else(|p| p.into_inner());
        d.total -= 1;
        if let Some(n) = d.per_source.get_mut(source) {
            *n -= 1;
            if *n == 0 {
                d.per_source.remove(source);
            }
        }
        true
    }

    /// Attempts that went on without their throttle delay (caps full).
    pub fn delays_skipped(&self) -> u64 {
        self.delayed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .skipped
    }

    /// Whether this (account, source) pair is new to this run: it then needs writing.
    pub fn note_source(&self, account: &str, source: &str) -> bool {
        let pair = (self.key(account), source.to_owned());
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        if noted.set.contains(&pair) {
            return false;
        }
        if noted.order.len() >= NOTED_CAPACITY
            && let Some(old) = noted.order.pop_front()
        {
            noted.set.remove(&old);
        }
        noted.set.insert(pair.clone());
        noted.order.push_back(pair);
        true
    }

    /// Tracks held, per detector table (spray, slow_spray, distributed, resets, failures).
    pub fn tracks(&self) -> usize {
        let s = self.state();
        s.spray.len()
            + s.slow_spray.len()
            + s.distributed.len()
            + s.reset_burst.len()
            + s.reset_accounts.len()
            + s.failures.len()
    }
}

#[cfg(test)]
mod tests;
