//! Account lockout: pam_faillock's semantics as pure decisions over (state, policy, now).
//!
//! ```text
//!            failure (count < deny)                    unlock_time passes (next check)
//!   Open ───────────────────────────► Open      Locked ─────────────────────────────► Open
//!     │  failure makes count == deny               ▲        (failures cleared)
//!     └────────────────────────────────────────────┘
//!   Locked ── credctl unlock ──► Open (failures cleared);  any state ── credctl lock ──► Locked (admin)
//! ```
//!
//! - The lock check runs before any hashing: a locked account costs no PBKDF2 work and never
//!   confirms that a guessed password was right.
//! - Counting is race-free because every attempt *reserves* its failure before it is verified (one
//!   transaction in the store, one mutex for unknown names); a success deletes the reservations. So
//!   N parallel guesses get at most `deny` verifications, and a crash mid-verification counts the
//!   attempt as failed rather than forgetting it.
//! - Attempts while locked are recorded but do not count and never extend the lock (faillock's rule).
//! - Unknown names lock exactly like accounts ([`UnknownNames`]), so locking reveals nothing.
//!
//! Times are Unix seconds, passed in by the caller: tests need no sleeping.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::crypto::namekey::{NameHasher, NameKey};

/// Largest `deny` the config accepts: failure rows are kept per account (and failure times per
/// unknown name) up to a bound that must stay above it, or locking would silently stop.
pub const MAX_DENY: u32 = 50;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub deny: u32,
    pub fail_interval: i64,
    /// Seconds until a failures lock lifts by itself; `None`: only an administrator unlocks.
    pub unlock_after: Option<i64>,
    pub root_unlock_after: Option<i64>,
    pub even_deny_root: bool,
}

impl Policy {
    /// Whether failures can lock this account at all. Root is exempt unless `even_deny_root`,
    /// as with faillock: a locked root is a locked-out administrator.
    pub fn applies(&self, root_account: bool) -> bool {
        self.deny > 0 && (!root_account || self.even_deny_root)
    }

    pub fn unlock_after(&self, root_account: bool) -> Option<i64> {
        if root_account {
            self.root_unlock_after
        } else {
            self.unlock_after
        }
    }

    /// Failures at or after this time count.
    pub fn window_start(&self, now: i64) -> i64 {
        now - self.fail_interval
    }

    /// May one more attempt be verified, given the failures (and reservations) in the window?
    pub fn attempt_allowed(&self, failures_in_window: u32, root_account: bool) -> bool {
        !self.applies(root_account) || failures_in_window < self.deny
    }

    /// The lock a failed verification leaves behind, if the window now holds `deny` failures.
    pub fn lock_after_failure(
        &self,
        failures_in_window: u32,
        root_account: bool,
        now: i64,
    ) -> Option<Lock> {
        (self.applies(root_account) && failures_in_window >= self.deny).then(|| Lock {
            since: now,
            until: self.unlock_after(root_account).map(|d| now + d),
            kind: LockKind::Failures,
            reason: None,
        })
    }

    /// The `until` a refusal reports when attempts in flight already fill the window.
    pub fn prospective_until(&self, root_account: bool, now: i64) -> Option<i64> {
        self.unlock_after(root_account).map(|d| now + d)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Set by `deny` failures; lifts after `unlock_time` unless that is "never".
    Failures,
    /// Set by `credctl lock`; only `credctl unlock` lifts it.
    Administrator,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Failures => "failures",
            LockKind::Administrator => "administrator",
        }
    }

    pub fn parse(s: &str) -> Option<LockKind> {
        match s {
            "failures" => Some(LockKind::Failures),
            "administrator" => Some(LockKind::Administrator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lock {
    pub since: i64,
    pub until: Option<i64>,
    pub kind: LockKind,
    pub reason: Option<String>,
}

/// What the check before hashing finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Open,
    Locked {
        until: Option<i64>,
    },
    /// The lock's time is up: clear it (and the failures that set it), then proceed.
    Expired,
}

pub fn gate(lock: Option<&Lock>, now: i64) -> Gate {
    match lock {
        None => Gate::Open,
        Some(Lock {
            kind: LockKind::Administrator,
            ..
        }) => Gate::Locked { until: None },
        Some(Lock {
            until: Some(until), ..
        }) if *until <= now => Gate::Expired,
        Some(lock) => Gate::Locked { until: lock.until },
    }
}

/// How many unknown names are tracked at once. When full, an unlocked name is forgotten first
/// (least recently seen); a locked one only when every tracked name is locked, which takes
/// `deny` dummy verifications per name through the rate limits.
const UNKNOWN_CAPACITY: usize = 100_000;
/// Failure times kept per unknown name; above [`MAX_DENY`].
const UNKNOWN_MAX_FAILURES: usize = MAX_DENY as usize + 14;

#[derive(Default)]
struct UnknownEntry {
    failures: VecDeque<i64>,
    pending: u32,
    lock: Option<Lock>,
    last_seen: i64,
}

/// Lockout state for names that are no account (or no account the calling peer may use), kept in
/// memory under [`NameKey`]s: the table never holds the typed names.
pub struct UnknownNames {
    names: NameHasher,
    entries: Mutex<HashMap<NameKey, UnknownEntry>>,
}

impl Default for UnknownNames {
    fn default() -> UnknownNames {
        UnknownNames::new()
    }
}

impl UnknownNames {
    pub fn new() -> UnknownNames {
        UnknownNames {
            names: NameHasher::new(),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn id(&self, name: &str) -> NameKey {
        self.names.key(name)
    }

    /// Reserves an attempt like the store does for an account; `Err(until)` means "locked".
    pub fn begin(&self, name: &str, policy: &Policy, now: i64) -> Result<(), Option<i64>> {
        let id = self.id(name);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if !entries.contains_key(&id) && entries.len() >= UNKNOWN_CAPACITY {
            evict_oldest(&mut entries);
        }
        let entry = entries.entry(id).or_default();
        entry.last_seen = now;
        match gate(entry.lock.as_ref(), now) {
            Gate::Locked { until } => return Err(until),
            Gate::Expired => {
                entry.lock = None;
                entry.failures.clear();
            }
            Gate::Open => {}
        }
        let window = policy.window_start(now);
        entry.failures.retain(|t| *t >= window);
        let counted = entry.failures.len() as u32 + entry.pending;
        if !policy.attempt_allowed(counted, false) {
            return Err(policy.prospective_until(false, now));
        }
        entry.pending += 1;
        Ok(())
    }

    /// The reserved attempt failed (as every attempt on an unknown name does).
    pub fn failed(&self, name: &str, policy: &Policy, now: i64) {
        let id = self.id(name);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(entry) = entries.get_mut(&id) else {
            return; // evicted meanwhile
        };
        entry.pending = entry.pending.saturating_sub(1);
        entry.failures.push_back(now);
        while entry.failures.len() > UNKNOWN_MAX_FAILURES {
            entry.failures.pop_front();
        }
        let window = policy.window_start(now);
        let counted = entry.failures.iter().filter(|t| **t >= window).count() as u32;
        if entry.lock.is_none() {
            entry.lock = policy.lock_after_failure(counted, false, now);
        }
    }

    /// The reserved attempt never ran (pool busy).
    pub fn cancel(&self, name: &str) {
        let id = self.id(name);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get_mut(&id) {
            entry.pending = entry.pending.saturating_sub(1);
        }
    }
}

fn evict_oldest(entries: &mut HashMap<NameKey, UnknownEntry>) {
    // Unlocked names first: evicting a locked one would let an attacker who floods the table
    // watch a "lock" vanish, which a real account's never does.
    let oldest = entries
        .iter()
        .filter(|(_, e)| e.pending == 0)
        .min_by_key(|(_, e)| (e.lock.is_some(), e.last_seen))
        .map(|(id, _)| *id);
    if let Some(id) = oldest {
        entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(deny: u32, unlock_after: Option<i64>) -> Policy {
        Policy {
            deny,
            fail_interval: 900,
            unlock_after,
            root_unlock_after: None,
            even_deny_root: false,
        }
    }

    #[test]
    fn deny_failures_lock_and_fewer_do_not() {
        let p = policy(3, Some(600));
        assert!(p.attempt_allowed(2, false));
        assert!(!p.attempt_allowed(3, false));
        assert_eq!(p.lock_after_failure(2, false, 1000), None);
        let lock = p.lock_after_failure(3, false, 1000).unwrap();
        assert_eq!(lock.until, Some(1600));
        assert_eq!(lock.kind, LockKind::Failures);
    }

    #[test]
    fn deny_zero_disables_locking() {
        let p = policy(0, None);
        assert!(p.attempt_allowed(1_000_000, false));
        assert_eq!(p.lock_after_failure(1_000_000, false, 0), None);
    }

    #[test]
    fn root_is_exempt_unless_even_deny_root() {
        let mut p = policy(3, Some(600));
        assert!(p.attempt_allowed(50, true));
        assert_eq!(p.lock_after_failure(50, true, 0), None);
        p.even_deny_root = true;
        p.root_unlock_after = Some(60);
        assert!(!p.attempt_allowed(3, true));
        assert_eq!(p.lock_after_failure(3, true, 0).unwrap().until, Some(60));
    }

    #[test]
    fn gate_expires_failure_locks_but_never_admin_locks() {
        let failures = Lock {
            since: 0,
            until: Some(100),
            kind: LockKind::Failures,
            reason: None,
        };
        assert_eq!(gate(Some(&failures), 99), Gate::Locked { until: Some(100) });
        assert_eq!(gate(Some(&failures), 100), Gate::Expired);
        let forever = Lock {
            until: None,
            ..failures.clone()
        };
        assert_eq!(gate(Some(&forever), i64::MAX), Gate::Locked { until: None });
        let admin = Lock {
            kind: LockKind::Administrator,
            until: Some(5),
            ..failures
        };
        assert_eq!(gate(Some(&admin), 1_000), Gate::Locked { until: None });
        assert_eq!(gate(None, 0), Gate::Open);
    }

    #[test]
    fn window_forgets_old_failures() {
        let p = policy(3, None);
        assert_eq!(p.window_start(1000), 100);
    }

    #[test]
    fn unknown_names_lock_like_accounts_and_expire() {
        let names = UnknownNames::new();
        let p = policy(3, Some(60));
        for t in 0..3 {
            names.begin("ghost", &p, t).unwrap();
            names.failed("ghost", &p, t);
        }
        assert_eq!(names.begin("ghost", &p, 10), Err(Some(62)));
        // Locked attempts do not extend the lock.
        assert_eq!(names.begin("ghost", &p, 61), Err(Some(62)));
        assert_eq!(names.begin("ghost", &p, 62), Ok(()));
        assert!(names.begin("other", &p, 10).is_ok());
    }

    #[test]
    fn unknown_names_count_attempts_in_flight() {
        let names = UnknownNames::new();
        let p = policy(2, None);
        assert!(names.begin("ghost", &p, 0).is_ok());
        assert!(names.begin("ghost", &p, 0).is_ok());
        assert_eq!(
            names.begin("ghost", &p, 0),
            Err(None),
            "two already in flight"
        );
        names.cancel("ghost");
        assert!(names.begin("ghost", &p, 0).is_ok());
    }

    #[test]
    fn unknown_table_is_bounded_and_evicts_unlocked_names_first() {
        let names = UnknownNames::new();
        let p = policy(1, None);
        // The oldest name is locked; a flood of newer, unlocked names must not evict it.
        names.begin("locked-first", &p, 0).unwrap();
        names.failed("locked-first", &p, 0);
        let lenient = policy(10, None);
        for i in 0..(UNKNOWN_CAPACITY + 10) {
            let name = format!("n{i}");
            names.begin(&name, &lenient, 1 + i as i64).unwrap();
            names.failed(&name, &lenient, 1 + i as i64);
        }
        assert!(names.entries.lock().unwrap().len() <= UNKNOWN_CAPACITY);
        assert_eq!(names.begin("locked-first", &p, i64::MAX / 2), Err(None));
    }
}
