//! Token buckets for authentication attempts and password changes. They bound guessing and work,
//! never ordinary use: an attempt takes a token before its secret is checked, and gets it back when
//! the secret turns out right (or nothing was checked at all), so any number of correct logins
//! pass and only wrong guesses drain a bucket.
//!
//! - `account`: per account name *and source* (the remote host for callers that are root through
//!   and through, the real uid for everyone else, or "local service"), so that nobody can drain the
//!   bucket another source's logins draw on: `su root` run by a user never touches root's console
//!   or sshd logins.
//! - `host`: per remote host, as claimed by callers that are root through and through.
//! - `local_uid`: per calling uid for callers that are not (screen lockers, `su` run by a user).
//! - `change`: per calling uid, for password changes by the account's owner (`passwd`).
//! - `requests`: per calling uid, every request of a caller that is not root through and through,
//!   right or wrong, before it can cause any work, write or log line (no refunds: it bounds what a
//!   flood can write, far above what ordinary use sends).
//!
//! Refusals worth a log line and an audit row (an administrative request on pam.sock, a
//! connection to admin.sock by a stranger) are written once per uid per minute, whatever the
//! number of attempts: the count is in the daemon's counters.
//!
//! Excess is refused before any lookup or hashing, and reported once per burst, not once per
//! request. Buckets live in memory: a restart refills them. Each table is bounded; when full, a
//! bucket that has refilled completely (it carries no information) is dropped first, else the
//! least recently used one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;

use crate::crypto::namekey::{NameHasher, NameKey};

/// Buckets per table.
const CAPACITY: usize = 10_000;

#[derive(Debug, Clone, Copy)]
pub struct Rate {
    burst: f64,
    per_ms: f64,
}

impl Rate {
    /// `burst` attempts at once, refilled at `per_minute`; `None` (no limit) for a burst of 0.
    pub fn new(burst: u32, per_minute: u32) -> Option<Rate> {
        (burst > 0).then(|| Rate {
            burst: f64::from(burst),
            per_ms: f64::from(per_minute) / 60_000.0,
        })
    }
}

/// The rate of each bucket family (`[rate]`); `None` turns one off.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    pub account: Option<Rate>,
    pub host: Option<Rate>,
    pub local_uid: Option<Rate>,
    pub change: Option<Rate>,
    pub requests: Option<Rate>,
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

    /// Whole seconds until the bucket holds a token again (at least 1).
    fn wait_secs(&self, rate: Rate) -> u32 {
        let ms = ((1.0 - self.tokens).max(0.0) / rate.per_ms).ceil();
        ((ms / 1000.0).ceil() as u32).max(1)
    }
}

/// A refusal: which limit, whether it is the first of its burst (worth one log line), and when
/// the bucket holds a token again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tripped {
    pub limit: &'static str,
    pub first_of_burst: bool,
    pub retry_after_secs: u32,
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
            retry_after_secs: bucket.wait_secs(rate),
        })
    }

    /// Takes a token; `false` when the bucket is off (nothing to give back later).
    fn take(&self, key: &K, now_ms: i64) -> bool {
        let mut table = self.lock();
        let Some(rate) = table.rate else { return false };
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
        true
    }

    /// Gives back a token taken by [`Buckets::take`], never above the burst; `refill` fills the
    /// bucket completely (a success on the account's own bucket for that source).
    fn give_back(&self, key: &K, refill: bool, now_ms: i64) {
        let mut table = self.lock();
        let Some(rate) = table.rate else { return };
        if let Some(bucket) = table.map.get_mut(key) {
            bucket.refill(rate, now_ms);
            bucket.tokens = if refill {
                rate.burst
            } else {
                (bucket.tokens + 1.0).min(rate.burst)
            };
            bucket.tripped = false;
        }
    }

    /// Drops every bucket whose key `matches` (they start full again).
    fn forget(&self, matches: impl Fn(&K) -> bool) {
        self.lock().map.retain(|k, _| !matches(k));
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

pub use crate::policy::source::Source;

/// One authentication attempt, as the rate limits see it: the `host` bucket applies to
/// [`Source::Remote`], `local_uid` to [`Source::Local`].
pub struct Attempt<'a> {
    pub account: &'a str,
    pub source: Source,
}

/// The tokens an admitted attempt took, to give back when its secret was right.
#[must_use = "a ticket not settled keeps its tokens taken, which is right only for a wrong secret"]
#[derive(Debug, Default)]
pub struct Ticket {
    account: Option<(NameKey, Source)>,
    host: Option<String>,
    local_uid: Option<u32>,
    change: Option<u32>,
}

/// The limits of authentication attempts and password changes. Account buckets are keyed by
/// [`NameKey`], so the table never holds typed names.
pub struct RateLimits {
    names: NameHasher,
    account: Buckets<(NameKey, Source)>,
    host: Buckets<String>,
    local_uid: Buckets<u32>,
    change: Buckets<u32>,
    requests: Buckets<u32>,
    /// One token a minute per uid: whether a refusal gets its log line and audit row.
    refusals: Buckets<u32>,
}

/// One logged refusal per uid per minute.
const REFUSALS_LOGGED: (u32, u32) = (1, 1);

impl RateLimits {
    pub fn new(c: &Rates) -> RateLimits {
        RateLimits {
            names: NameHasher::new(),
            account: Buckets::new("account", c.account),
            host: Buckets::new("host", c.host),
            local_uid: Buckets::new("local_uid", c.local_uid),
            change: Buckets::new("change", c.change),
            requests: Buckets::new("requests", c.requests),
            refusals: Buckets::new("refusals", Rate::new(REFUSALS_LOGGED.0, REFUSALS_LOGGED.1)),
        }
    }

    /// Applies a reloaded `[rate]`; the buckets keep their state.
    pub fn reconfigure(&self, c: &Rates) {
        self.account.set_rate(c.account);
        self.host.set_rate(c.host);
        self.local_uid.set_rate(c.local_uid);
        self.change.set_rate(c.change);
        self.requests.set_rate(c.requests);
    }

    /// Any request of a caller that is not root through and through, by its (real) uid.
    pub fn admit_request(&self, uid: u32, now_ms: i64) -> Result<(), Tripped> {
        self.requests.check(&uid, now_ms)?;
        self.requests.take(&uid, now_ms);
        Ok(())
    }

    /// Whether a refusal of this uid gets a log line and an audit row: the first of each minute.
    pub fn log_refusal(&self, uid: u32, now_ms: i64) -> bool {
        if self.refusals.check(&uid, now_ms).is_err() {
            return false;
        }
        self.refusals.take(&uid, now_ms);
        true
    }

    /// Takes one token from every bucket that applies, or none when any of them is empty.
    pub fn admit(&self, attempt: &Attempt<'_>, now_ms: i64) -> Result<Ticket, Tripped> {
        let account = (self.names.key(attempt.account), attempt.source.clone());
        let host = match &attempt.source {
            Source::Remote(h) => Some(h.clone()),
            _ => None,
        };
        let local_uid = match attempt.source {
            Source::Local(uid) => Some(uid),
            _ => None,
        };
        self.account.check(&account, now_ms)?;
        if let Some(host) = &host {
            self.host.check(host, now_ms)?;
        }
        if let Some(uid) = &local_uid {
            self.local_uid.check(uid, now_ms)?;
        }
        let mut ticket = Ticket::default();
        if self.account.take(&account, now_ms) {
            ticket.account = Some(account);
        }
        if let Some(host) = host
            && self.host.take(&host, now_ms)
        {
            ticket.host = Some(host);
        }
        if let Some(uid) = local_uid
            && self.local_uid.take(&uid, now_ms)
        {
            ticket.local_uid = Some(uid);
        }
        Ok(ticket)
    }

    /// A password change requested by the account's owner (a process that is not root through
    /// and through), counted per calling uid.
    pub fn admit_change(&self, uid: u32, now_ms: i64) -> Result<Ticket, Tripped> {
        self.change.check(&uid, now_ms)?;
        let mut ticket = Ticket::default();
        if self.change.take(&uid, now_ms) {
            ticket.change = Some(uid);
        }
        Ok(ticket)
    }

    /// The secret was right, or nothing was checked (`Busy`): every token goes back, and the
    /// account's bucket for this source is full again. A wrong secret drops its ticket instead.
    pub fn settle(&self, ticket: Ticket, now_ms: i64) {
        if let Some(account) = &ticket.account {
            self.account.give_back(account, true, now_ms);
        }
        if let Some(host) = &ticket.host {
            self.host.give_back(host, false, now_ms);
        }
        if let Some(uid) = &ticket.local_uid {
            self.local_uid.give_back(uid, false, now_ms);
        }
        if let Some(uid) = &ticket.change {
            self.change.give_back(uid, false, now_ms);
        }
    }

    /// An administrator unlocked or reset the account: its buckets, for every source, start full,
    /// and so do its owner's own `local_uid` and `change` buckets (`owner`: the account's uid),
    /// which the owner's wrong `sudo` or `passwd` runs emptied: its right password right after
    /// `credctl unlock` must get in.
    pub fn forget_account(&self, account: &str, owner: Option<u32>) {
        let key = self.names.key(account);
        self.account.forget(|(k, _)| *k == key);
        if let Some(uid) = owner {
            self.local_uid.forget(|u| *u == uid);
            self.change.forget(|u| *u == uid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = Option<Rate>;

    fn off() -> B {
        None
    }

    fn b(burst: u32, per_minute: u32) -> B {
        Rate::new(burst, per_minute)
    }

    fn limits(account: B, host: B, local: B) -> RateLimits {
        RateLimits::new(&Rates {
            account,
            host,
            local_uid: local,
            change: off(),
            requests: off(),
        })
    }

    fn remote<'a>(account: &'a str, host: &str) -> Attempt<'a> {
        Attempt {
            account,
            source: Source::Remote(host.to_owned()),
        }
    }

    fn console(account: &str) -> Attempt<'_> {
        Attempt {
            account,
            source: Source::Service,
        }
    }

    fn local(account: &str, uid: u32) -> Attempt<'_> {
        Attempt {
            account,
            source: Source::Local(uid),
        }
    }

    #[test]
    fn burst_then_refusal_then_refill() {
        let l = limits(b(3, 60), off(), off());
        for _ in 0..3 {
            drop(l.admit(&console("alice"), 0).unwrap());
        }
        let trip = l.admit(&console("alice"), 0).unwrap_err();
        assert_eq!(trip.limit, "account");
        assert!(trip.first_of_burst);
        assert_eq!(trip.retry_after_secs, 1, "60 a minute: one token a second");
        let again = l.admit(&console("alice"), 500).unwrap_err();
        assert!(!again.first_of_burst);
        assert_eq!(again.retry_after_secs, 1);
        // 60 per minute: one token per second.
        drop(l.admit(&console("alice"), 1_000).unwrap());
        assert!(l.admit(&console("alice"), 1_000).is_err());
        assert!(
            l.admit(&console("bob"), 1_000).is_ok(),
            "buckets are per account"
        );
    }

    #[test]
    fn retry_after_counts_whole_seconds_until_the_next_token() {
        let l = limits(b(1, 6), off(), off());
        drop(l.admit(&console("alice"), 0).unwrap());
        assert_eq!(
            l.admit(&console("alice"), 0).unwrap_err().retry_after_secs,
            10
        );
        assert_eq!(
            l.admit(&console("alice"), 4_500)
                .unwrap_err()
                .retry_after_secs,
            6
        );
    }

    #[test]
    fn right_secrets_give_their_tokens_back() {
        // The pam_tally2 failure class: a mail client logging in 30 times a minute with the right
        // password must never be refused, and wrong guesses after it must still be counted.
        let l = limits(b(10, 10), b(30, 60), b(5, 10));
        for i in 0..100 {
            let ticket = l.admit(&remote("alice", "192.0.2.1"), i).unwrap();
            l.settle(ticket, i);
            let ticket = l.admit(&local("alice", 1000), i).unwrap();
            l.settle(ticket, i);
        }
        // Wrong guesses keep their tokens: 10 from one source, then refused.
        for _ in 0..10 {
            drop(l.admit(&remote("alice", "192.0.2.1"), 100).unwrap());
        }
        assert_eq!(
            l.admit(&remote("alice", "192.0.2.1"), 100)
                .unwrap_err()
                .limit,
            "account"
        );
    }

    #[test]
    fn a_success_refills_the_accounts_bucket_for_its_source_only() {
        let l = limits(b(3, 1), off(), off());
        for _ in 0..3 {
            drop(l.admit(&remote("alice", "192.0.2.1"), 0).unwrap());
            drop(l.admit(&remote("alice", "192.0.2.2"), 0).unwrap());
        }
        // Typos, then the right password from .1: .1 is full again, .2 still empty.
        l.settle(
            Ticket {
                account: Some((l.names.key("alice"), Source::Remote("192.0.2.1".into()))),
                ..Ticket::default()
            },
            0,
        );
        for _ in 0..3 {
            drop(l.admit(&remote("alice", "192.0.2.1"), 0).unwrap());
        }
        assert!(l.admit(&remote("alice", "192.0.2.2"), 0).is_err());
    }

    #[test]
    fn other_sources_cannot_drain_an_accounts_bucket() {
        // Two local users running `su root` with wrong passwords, each from its own uid, while
        // root logs in on the console and over ssh (R9).
        let l = limits(b(10, 10), b(30, 60), b(5, 10));
        for uid in [1000, 1001] {
            for _ in 0..20 {
                let _ = l.admit(&local("root", uid), 0);
            }
        }
        for _ in 0..5 {
            let t = l.admit(&console("root"), 0).expect("console login of root");
            l.settle(t, 0);
            let t = l.admit(&remote("root", "198.51.100.7"), 0).expect("ssh");
            l.settle(t, 0);
        }
    }

    #[test]
    fn unlock_refills_every_source_of_the_account() {
        let l = limits(b(2, 1), off(), off());
        for _ in 0..2 {
            drop(l.admit(&console("alice"), 0).unwrap());
            drop(l.admit(&remote("alice", "h"), 0).unwrap());
            drop(l.admit(&console("bob"), 0).unwrap());
        }
        l.forget_account("alice", None);
        assert!(l.admit(&console("alice"), 0).is_ok());
        assert!(l.admit(&remote("alice", "h"), 0).is_ok());
        assert!(l.admit(&console("bob"), 0).is_err(), "only alice's buckets");
    }

    #[test]
    fn unlock_refills_the_owners_own_buckets_too() {
        // sudo run by alice (uid 1000) with wrong passwords empties her local_uid bucket; once
        // an administrator unlocks her, her right password must get in at once.
        let l = RateLimits::new(&Rates {
            account: b(10, 10),
            host: off(),
            local_uid: b(5, 10),
            change: b(5, 5),
            requests: off(),
        });
        for _ in 0..5 {
            drop(l.admit(&local("alice", 1000), 0).unwrap());
            drop(l.admit_change(1000, 0).unwrap());
            drop(l.admit(&local("bob", 1001), 0).unwrap());
        }
        assert_eq!(
            l.admit(&local("alice", 1000), 0).unwrap_err().limit,
            "local_uid"
        );
        l.forget_account("alice", Some(1000));
        assert!(l.admit(&local("alice", 1000), 0).is_ok());
        assert!(l.admit_change(1000, 0).is_ok());
        assert!(l.admit(&local("bob", 1001), 0).is_err(), "only the owner's");
    }

    #[test]
    fn changes_have_their_own_bucket_and_right_ones_cost_nothing() {
        let l = RateLimits::new(&Rates {
            account: b(10, 10),
            host: off(),
            local_uid: b(1, 1),
            change: b(2, 2),
            requests: off(),
        });
        // A passwd run proves the old password twice (check pass and update pass).
        for _ in 0..10 {
            let t = l.admit_change(1000, 0).unwrap();
            l.settle(t, 0);
        }
        drop(l.admit_change(1000, 0).unwrap());
        drop(l.admit_change(1000, 0).unwrap());
        assert_eq!(l.admit_change(1000, 0).unwrap_err().limit, "change");
        assert!(
            l.admit(&local("alice", 1000), 0).is_ok(),
            "logins do not share the change bucket"
        );
    }

    #[test]
    fn a_reload_changes_the_rate_and_keeps_the_tokens() {
        let rate = |burst, per_minute| Rates {
            account: b(burst, per_minute),
            host: off(),
            local_uid: off(),
            change: off(),
            requests: off(),
        };
        let l = RateLimits::new(&rate(3, 60));
        for _ in 0..3 {
            drop(l.admit(&console("alice"), 0).unwrap());
        }
        // A larger burst does not hand out tokens an emptied bucket does not have.
        l.reconfigure(&rate(10, 60));
        assert!(l.admit(&console("alice"), 0).is_err());
        // A smaller burst caps what a full bucket holds.
        drop(l.admit(&console("bob"), 0).unwrap());
        l.reconfigure(&rate(1, 60));
        drop(l.admit(&console("bob"), 0).unwrap());
        assert!(l.admit(&console("bob"), 0).is_err());
        // Disabled: everything passes.
        l.reconfigure(&rate(0, 0));
        assert!(l.admit(&console("alice"), 0).is_ok());
    }

    #[test]
    fn a_refused_attempt_takes_no_token_from_the_other_buckets() {
        let l = limits(b(2, 1), b(1, 60), off());
        drop(l.admit(&remote("a", "10.0.0.1"), 0).unwrap());
        assert_eq!(
            l.admit(&remote("a", "10.0.0.1"), 0).unwrap_err().limit,
            "host"
        );
        // Had the host refusal spent the account's second token, this would be refused.
        drop(l.admit(&remote("a", "10.0.0.1"), 1_000).unwrap());
    }

    #[test]
    fn local_uid_bucket_applies_only_when_given() {
        let l = limits(b(100, 60), b(100, 60), b(1, 60));
        drop(l.admit(&local("a", 1000), 0).unwrap());
        assert_eq!(
            l.admit(&local("b", 1000), 0).unwrap_err().limit,
            "local_uid"
        );
        assert!(
            l.admit(&console("b"), 0).is_ok(),
            "root callers have no uid bucket"
        );
    }

    #[test]
    fn disabled_buckets_never_refuse() {
        let l = limits(off(), off(), off());
        for _ in 0..1000 {
            drop(l.admit(&local("a", 5), 0).unwrap());
        }
    }

    #[test]
    fn every_request_of_a_uid_counts_and_refusals_are_logged_once_a_minute() {
        let l = RateLimits::new(&Rates {
            account: off(),
            host: off(),
            local_uid: off(),
            change: off(),
            requests: b(3, 60),
        });
        for _ in 0..3 {
            l.admit_request(65534, 0).unwrap();
        }
        let trip = l.admit_request(65534, 0).unwrap_err();
        assert_eq!((trip.limit, trip.first_of_burst), ("requests", true));
        assert!(l.admit_request(1000, 0).is_ok(), "per uid");
        assert!(l.log_refusal(65534, 0));
        assert!(!l.log_refusal(65534, 59_000));
        assert!(l.log_refusal(1000, 59_000), "per uid");
        assert!(l.log_refusal(65534, 60_000));
    }

    #[test]
    fn tables_are_bounded() {
        let l = limits(b(1, 1), off(), off());
        for i in 0..(CAPACITY + 50) {
            let _ = l.admit(&console(&format!("u{i}")), i as i64);
        }
        assert!(l.account.lock().map.len() <= CAPACITY);
    }
}
