//! Token buckets for authentication attempts: per account name, per remote host (as claimed by
//! root callers only) and per calling uid (non-root callers). Excess is refused before any lookup
//! or hashing, and reported once per burst, not once per request.
//!
//! Buckets live in memory: a restart refills them, which costs an attacker a daemon restart they
//! cannot trigger. Each table is bounded; when full, a bucket that has refilled completely (it
//! carries no information) is dropped first, else the least recently used one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::config;
use crate::namekey::{NameHasher, NameKey};

/// Buckets per table.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    burst: f64,
    per_ms: f64,
}

impl Rate {
    pub fn from_config(b: config::Bucket) -> Option<Rate> {
        (b.burst > 0).then(|| Rate {
            burst: f64::from(b.burst),
            per_ms: f64::from(b.per_minute) / 60_000.0,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last_ms: i64,
    /// Set by the first refusal of a burst, cleared by the next accepted attempt.
    tripped: bool,
}

impl Bucket {
    fn full(rate: Rate, now_ms: i64) -> Bucket {
        Bucket {
            tokens: rate.burst,
            last_ms: now_ms,
            tripped: false,
        }
    }

    fn refill(&mut self, rate: Rate, now_ms: i64) {
        let elapsed = (now_ms - self.last_ms).max(0) as f64;
        self.tokens = (self.tokens + elapsed * rate.per_ms).min(rate.burst);
        self.last_ms = now_ms;
    }
}

/// A refusal: which limit, and whether it is the first of its burst (worth one log line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tripped {
    pub limit: &'static str,
    pub first_of_burst: bool,
}

pub struct Buckets<K> {
    name: &'static str,
    table: Mutex<Table<K>>,
}

/// The rate and the buckets under one lock: a reload changes the rate, and the buckets keep
/// their tokens.
struct Table<K> {
    rate: Option<Rate>,
    map: HashMap<K, Bucket>,
}

impl<K: Hash + Eq + Clone> Buckets<K> {
    pub fn new(name: &'static str, rate: Option<Rate>) -> Buckets<K> {
        Buckets {
            name,
            table: Mutex::new(Table {
                rate,
                map: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table<K>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new rate from a reloaded config; a bucket's tokens stay, capped by the new burst.
    fn set_rate(&self, rate: Option<Rate>) {
        let mut table = self.lock();
        if let Some(r) = rate {
            for bucket in table.map.values_mut() {
                bucket.tokens = bucket.tokens.min(r.burst);
            }
        } else {
            table.map.clear();
        }
        table.rate = rate;
    }

    /// Has `key` a token left? Does not take it.
    fn check(&self, key: &K, now_ms: i64) -> Result<(), Tripped> {
        let mut table = self.lock();
        let Some(rate) = table.rate else {
            return Ok(());
        };
        let Some(bucket) = table.map.get_mut(key) else {
            return Ok(());
        };
        bucket.refill(rate, now_ms);
        if bucket.tokens >= 1.0 {
            return Ok(());
        }
        let first_of_burst = !bucket.tripped;
        bucket.tripped = true;
        Err(Tripped {
            limit: self.name,
            first_of_burst,
        })
    }

    fn take(&self, key: &K, now_ms: i64) {
        let mut table = self.lock();
        let Some(rate) = table.rate else { return };
        let map = &mut table.map;
        if !map.contains_key(key) && map.len() >= CAPACITY {
            evict(map, rate, now_ms);
        }
        let bucket = map
            .entry(key.clone())
            .or_insert_with(|| Bucket::full(rate, now_ms));
        bucket.refill(rate, now_ms);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        bucket.tripped = false;
    }
}

fn evict<K: Hash + Eq + Clone>(map: &mut HashMap<K, Bucket>, rate: Rate, now_ms: i64) {
    let refilled = map
        .iter()
        .find(|(_, b)| {
            let mut b = **b;
            b.refill(rate, now_ms);
            b.tokens >= rate.burst
        })
        .map(|(k, _)| k.clone());
    let victim = refilled.or_else(|| {
        map.iter()
            .min_by_key(|(_, b)| b.last_ms)
            .map(|(k, _)| k.clone())
    });
    if let Some(k) = victim {
        map.remove(&k);
    }
}

/// The three limits of an authentication attempt. Account buckets are keyed by [`NameKey`], so
/// the table never holds typed names.
pub struct RateLimits {
    names: NameHasher,
    account: Buckets<NameKey>,
    host: Buckets<String>,
    local_uid: Buckets<u32>,
}

impl RateLimits {
    pub fn from_config(c: &config::Rate) -> RateLimits {
        RateLimits {
            names: NameHasher::new(),
            account: Buckets::new("account", Rate::from_config(c.account)),
            host: Buckets::new("host", Rate::from_config(c.host)),
            local_uid: Buckets::new("local_uid", Rate::from_config(c.local_uid)),
        }
    }

    /// Applies a reloaded `[rate]`; the buckets keep their state.
    pub fn reconfigure(&self, c: &config::Rate) {
        self.account.set_rate(Rate::from_config(c.account));
        self.host.set_rate(Rate::from_config(c.host));
        self.local_uid.set_rate(Rate::from_config(c.local_uid));
    }

    /// Takes one token from every bucket that applies, or none when any of them is empty.
    ///
    /// `account` and `rhost` must be `None` unless the caller is root (§4): a local user's own
    /// attempts must not drain the bucket that sshd's logins for that account draw on, and its
    /// claims about remote hosts are not believed. `local_uid` is set for every caller that is
    /// not root through and through (including `su` run by a user).
    pub fn admit(
        &self,
        account: Option<&str>,
        rhost: Option<&str>,
        local_uid: Option<u32>,
        now_ms: i64,
    ) -> Result<(), Tripped> {
        let account = account.map(|name| self.names.key(name));
        let host = rhost.filter(|h| !h.is_empty()).map(str::to_owned);
        if let Some(account) = &account {
            self.account.check(account, now_ms)?;
        }
        if let Some(host) = &host {
            self.host.check(host, now_ms)?;
        }
        if let Some(uid) = &local_uid {
            self.local_uid.check(uid, now_ms)?;
        }
        if let Some(account) = &account {
            self.account.take(account, now_ms);
        }
        if let Some(host) = &host {
            self.host.take(host, now_ms);
        }
        if let Some(uid) = &local_uid {
            self.local_uid.take(uid, now_ms);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Bucket as B;

    fn limits(account: (u32, u32), host: (u32, u32), local: (u32, u32)) -> RateLimits {
        RateLimits::from_config(&config::Rate {
            account: B {
                burst: account.0,
                per_minute: account.1,
            },
            host: B {
                burst: host.0,
                per_minute: host.1,
            },
            local_uid: B {
                burst: local.0,
                per_minute: local.1,
            },
        })
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let l = limits((3, 60), (0, 0), (0, 0));
        for _ in 0..3 {
            assert!(l.admit(Some("alice"), None, None, 0).is_ok());
        }
        let trip = l.admit(Some("alice"), None, None, 0).unwrap_err();
        assert_eq!(trip.limit, "account");
        assert!(trip.first_of_burst);
        assert!(
            !l.admit(Some("alice"), None, None, 500)
                .unwrap_err()
                .first_of_burst
        );
        // 60 per minute: one token per second.
        assert!(l.admit(Some("alice"), None, None, 1_000).is_ok());
        assert!(l.admit(Some("alice"), None, None, 1_000).is_err());
        assert!(
            l.admit(Some("bob"), None, None, 1_000).is_ok(),
            "buckets are per account"
        );
    }

    #[test]
    fn a_reload_changes_the_rate_and_keeps_the_tokens() {
        let rate = |burst, per_minute| config::Rate {
            account: B { burst, per_minute },
            host: B {
                burst: 0,
                per_minute: 0,
            },
            local_uid: B {
                burst: 0,
                per_minute: 0,
            },
        };
        let l = RateLimits::from_config(&rate(3, 60));
        for _ in 0..3 {
            assert!(l.admit(Some("alice"), None, None, 0).is_ok());
        }
        // A larger burst does not hand out tokens an emptied bucket does not have.
        l.reconfigure(&rate(10, 60));
        assert!(l.admit(Some("alice"), None, None, 0).is_err());
        // A smaller burst caps what a full bucket holds.
        assert!(l.admit(Some("bob"), None, None, 0).is_ok());
        l.reconfigure(&rate(1, 60));
        assert!(l.admit(Some("bob"), None, None, 0).is_ok());
        assert!(l.admit(Some("bob"), None, None, 0).is_err());
        // Disabled: everything passes.
        l.reconfigure(&rate(0, 0));
        assert!(l.admit(Some("alice"), None, None, 0).is_ok());
    }

    #[test]
    fn a_refused_attempt_takes_no_token_from_the_other_buckets() {
        let l = limits((100, 60), (1, 60), (0, 0));
        assert!(l.admit(Some("a"), Some("10.0.0.1"), None, 0).is_ok());
        assert!(l.admit(Some("a"), Some("10.0.0.1"), None, 0).is_err());
        // The host refusal must not have spent account tokens: 98 more fit from another host.
        for i in 0..98 {
            assert!(
                l.admit(Some("a"), Some(&format!("10.0.1.{i}")), None, 0)
                    .is_ok(),
                "{i}"
            );
        }
    }

    #[test]
    fn local_uid_bucket_applies_only_when_given() {
        let l = limits((100, 60), (100, 60), (1, 60));
        assert!(l.admit(None, None, Some(1000), 0).is_ok());
        assert_eq!(
            l.admit(None, None, Some(1000), 0).unwrap_err().limit,
            "local_uid"
        );
        assert!(
            l.admit(Some("b"), None, None, 0).is_ok(),
            "root callers have no uid bucket"
        );
    }

    #[test]
    fn disabled_buckets_never_refuse() {
        let l = limits((0, 0), (0, 0), (0, 0));
        for _ in 0..1000 {
            assert!(l.admit(Some("a"), Some("h"), Some(5), 0).is_ok());
        }
    }

    #[test]
    fn tables_are_bounded() {
        let l = limits((1, 1), (0, 0), (0, 0));
        for i in 0..(CAPACITY + 50) {
            let _ = l.admit(Some(&format!("u{i}")), None, None, i as i64);
        }
        assert!(l.account.lock().map.len() <= CAPACITY);
    }
}
