//! The detectors: pure functions over (state, event, now) that say what fires.
//!
//! | detector | key | drops (distinct) | fed by |
//! |---|---|---|---|
//! | spray, slow_spray | source | accounts failing | failed logins |
//! | distributed | account | sources failing | failed logins |
//! | reset_burst | administrator uid | accounts reset | resets, refused ones too |
//! | reset_accounts | (all) | accounts reset | resets, refused ones too |
//! | success_after_failures | account | failures | failed and successful logins |
//! | unexpected_code | — | — | a redeemed code and the account's known sources |
//!
//! A right password takes the account's drop out of its source's spray buckets and the source's
//! drop out of the account's distributed bucket: a typo followed by the right password was the
//! account's owner, not a guesser.

use std::collections::HashMap;
use std::hash::Hash;

use super::bucket::{Params, Track};
use crate::alerts::settings as config;
use crate::crypto::namekey::NameKey;

/// Tracks per detector at most; when full, the eighth quiet longest goes, tracks without an
/// episode first.
pub const MAX_TRACKS: usize = 4096;

/// Where an attempt came from ([`crate::policy::source::Source`], from `handlers::alerts::source_of`), and `All`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    Remote(String),
    Local(u32),
    Service,
    /// Every administrator together (reset_accounts).
    All,
}

impl Source {
    /// The stable text of the `source` field: `rhost:HOST`, `uid:N`, `local`, `all`.
    pub fn label(&self) -> String {
        match self {
            Source::Remote(h) => format!("rhost:{}", one_token(h)),
            Source::Local(uid) => format!("uid:{uid}"),
            Source::Service => "local".into(),
            Source::All => "all".into(),
        }
    }

    pub fn rhost(&self) -> Option<&str> {
        match self {
            Source::Remote(h) => Some(h),
            _ => None,
        }
    }
}

/// A claimed value as one token of a `key=value` detail: spaces, `=` and `,` replaced.
pub fn one_token(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_whitespace() || matches!(c, '=' | ',' | '"' | '\\') {
                '_'
            } else {
                c
            }
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// A wrong secret (an unknown name, a locked account's attempt included).
    Failed,
    /// The account's password was right.
    Succeeded,
    /// The account's pending reset code was right.
    CodeRedeemed,
}

/// One observed decision. `account` is a keyed hash of the typed name; `shown` is the name when
/// it may appear in a firing (a stored account, or any name under `log_unknown_names`).
#[derive(Debug, Clone)]
pub enum Event<'a> {
    Login {
        account: NameKey,
        shown: Option<&'a str>,
        source: &'a Source,
        outcome: LoginOutcome,
        /// For a redeemed code: whether a successful login of the account came from this source
        /// within the window (`None`: the account has no known source at all).
        source_known: Option<bool>,
    },
    Reset {
        admin_uid: u32,
        account: &'a str,
    },
    /// An administrator unlocked or reset the account: its failures are forgiven.
    Cleared {
        account: NameKey,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Spray,
    SlowSpray,
    Distributed,
    ResetBurst,
    SuccessAfterFailures,
    UnexpectedCode,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Spray => "spray",
            Kind::SlowSpray => "slow_spray",
            Kind::Distributed => "distributed",
            Kind::ResetBurst => "reset_burst",
            Kind::SuccessAfterFailures => "success_after_failures",
            Kind::UnexpectedCode => "unexpected_code",
        }
    }

    /// The audit event's name.
    pub fn event(self) -> &'static str {
        match self {
            Kind::Spray => "alert_spray",
            Kind::SlowSpray => "alert_slow_spray",
            Kind::Distributed => "alert_distributed",
            Kind::ResetBurst => "alert_reset_burst",
            Kind::SuccessAfterFailures => "alert_success_after_failures",
            Kind::UnexpectedCode => "alert_unexpected_code",
        }
    }
}

/// One firing, with the stable fields of its audit event (docs/alerts.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firing {
    pub kind: Kind,
    /// The detector's config name (reset_burst and reset_accounts share a kind).
    pub detector: &'static str,
    pub source: Source,
    /// The one account concerned, for per-account detectors, when it may be shown.
    pub target: Option<String>,
    /// Distinct accounts touched.
    pub accounts: usize,
    /// Listed accounts (spray, resets) or sources (distributed, success_after_failures).
    pub names: Vec<String>,
    /// Drops that may not be listed (typed names that are no account).
    pub unlisted: usize,
    /// Distinct sources, for per-account detectors.
    pub sources: usize,
    pub events: u64,
    pub window: i64,
    pub first: i64,
    pub last: i64,
    pub action: config::Action,
    /// The count is a lower bound (a bucket reached its drop cap).
    pub at_least: bool,
}

impl Firing {
    /// `key=value` pairs, one token each, in a fixed order.
    pub fn detail(&self) -> String {
        let mut d = format!(
            "kind={} source={} accounts={}{}",
            self.kind.name(),
            self.source.label(),
            self.accounts,
            if self.at_least { "+" } else { "" }
        );
        if let Some(t) = &self.target {
            d.push_str(&format!(" account={t}"));
        }
        if self.sources > 0 {
            d.push_str(&format!(" sources={}", self.sources));
        }
        let names = if self.names.is_empty() {
            "-".to_string()
        } else {
            self.names.join(",")
        };
        d.push_str(&format!(
            " names={names} unlisted={} events={} window={}s first={} last={} detector={} action={}",
            self.unlisted,
            self.events,
            self.window,
            crate::system::time::rfc3339(self.first),
            crate::system::time::rfc3339(self.last),
            self.detector,
            match self.action {
                config::Action::Log => "log",
                config::Action::Throttle => "throttle",
            }
        ));
        d
    }
}

/// A bounded table of tracks.
pub struct Tracks<K, D> {
    map: HashMap<K, Track<D>>,
}

impl<K, D> Default for Tracks<K, D> {
    fn default() -> Self {
        Tracks {
            map: HashMap::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, D: PartialEq + Clone> Tracks<K, D> {
    fn entry(&mut self, key: &K) -> &mut Track<D> {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKS {
            // An eighth at once, so that a flood of new keys costs a scan per 512 of them, not
            // one each.
            let mut order: Vec<(bool, i64, K)> = self
                .map
                .iter()
                .map(|(k, t)| {
                    (
                        t.in_episode(),
                        t.bucket.last().unwrap_or(i64::MIN),
                        k.clone(),
                    )
                })
                .collect();
            let n = (MAX_TRACKS / 8).min(order.len() - 1);
            order.select_nth_unstable_by_key(n, |(e, last, _)| (*e, *last));
            for (_, _, k) in order.into_iter().take(n) {
                self.map.remove(&k);
            }
        }
        self.map.entry(key.clone()).or_default()
    }

    pub fn get(&self, key: &K) -> Option<&Track<D>> {
        self.map.get(key)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Firings now due, and tracks that have leaked empty dropped.
    fn tick(&mut self, now: i64, p: Params, mut fire: impl FnMut(&K, &Track<D>)) {
        for (k, t) in self.map.iter_mut() {
            if t.take_due(now, p) {
                fire(k, t);
            }
        }
        self.map.retain(|_, t| !t.end_if_empty(now, p));
    }
}

/// Every detector's tracks.
#[derive(Default)]
pub struct State {
    pub spray: Tracks<Source, NameKey>,
    pub slow_spray: Tracks<Source, NameKey>,
    pub distributed: Tracks<NameKey, Source>,
    pub reset_burst: Tracks<u32, String>,
    pub reset_accounts: Tracks<(), String>,
    /// Failures per account: each failure is its own drop (keyed by a counter), listed by source.
    pub failures: Tracks<NameKey, (u64, Source)>,
    serial: u64,
}

/// The settings the pure functions need, from `[alerts]` and `[audit] log_unknown_names`.
pub struct Settings<'a> {
    pub alerts: &'a config::Alerts,
}

fn params(d: &config::Detector, settle: i64) -> Params {
    Params {
        threshold: d.threshold as usize,
        window: d.window.as_secs() as i64,
        settle,
    }
}

impl Settings<'_> {
    fn settle(&self) -> i64 {
        self.alerts.settle.as_secs().max(1) as i64
    }
}

/// Feeds one event to every detector it concerns; returns what fires at once (the single-event
/// detectors, and episodes due by now).
pub fn observe(state: &mut State, event: &Event<'_>, now: i64, s: &Settings<'_>) -> Vec<Firing> {
    let a = s.alerts;
    let settle = s.settle();
    let mut fired = Vec::new();
    match *event {
        Event::Login {
            account,
            shown,
            source,
            outcome: LoginOutcome::Failed,
            ..
        } => {
            for (d, tracks) in [
                (&a.spray, &mut state.spray),
                (&a.slow_spray, &mut state.slow_spray),
            ] {
                if d.threshold > 0 {
                    tracks
                        .entry(source)
                        .pour(&account, shown, now, params(d, settle));
                }
            }
            if a.distributed.threshold > 0 {
                let label = source.label();
                state.distributed.entry(&account).pour(
                    source,
                    Some(&label),
                    now,
                    params(&a.distributed, settle),
                );
            }
            if a.success_after_failures.threshold > 0 {
                state.serial += 1;
                let label = source.label();
                let track = state.failures.entry(&account);
                let p = params(&a.success_after_failures, settle);
                track.pour(&(state.serial, source.clone()), Some(&label), now, p);
            }
        }
        Event::Login {
            account,
            shown,
            source,
            outcome: LoginOutcome::Succeeded,
            ..
        } => {
            for tracks in [&mut state.spray, &mut state.slow_spray] {
                if let Some(t) = tracks.map.get_mut(source) {
                    t.bucket.remove(&account);
                }
            }
            if let Some(t) = state.distributed.map.get_mut(&account) {
                t.bucket.remove(source);
            }
            let d = &a.success_after_failures;
            if let Some(mut t) = state.failures.map.remove(&account)
                && d.threshold > 0
            {
                let window = d.window.as_secs() as i64;
                t.bucket.leak(now, window);
                if t.bucket.len() >= d.threshold as usize {
                    let (names, _) = t.bucket.names(usize::MAX);
                    let mut sources: Vec<String> = names;
                    sources.sort();
                    sources.dedup();
                    let distinct = sources.len();
                    sources.truncate(a.max_names);
                    fired.push(Firing {
                        kind: Kind::SuccessAfterFailures,
                        detector: "success_after_failures",
                        source: source.clone(),
                        target: shown.map(str::to_owned),
                        accounts: 1,
                        names: sources,
                        unlisted: 0,
                        sources: distinct,
                        events: t.bucket.len() as u64 + 1,
                        window,
                        first: t.bucket.first().unwrap_or(now),
                        last: now,
                        action: config::Action::Log,
                        at_least: t.bucket.overflowed > 0,
                    });
                }
            }
        }
        Event::Login {
            shown,
            source,
            outcome: LoginOutcome::CodeRedeemed,
            source_known,
            ..
        } => {
            let d = &a.unexpected_code;
            if d.threshold > 0 && source_known == Some(false) {
                fired.push(Firing {
                    kind: Kind::UnexpectedCode,
                    detector: "unexpected_code",
                    source: source.clone(),
                    target: shown.map(str::to_owned),
                    accounts: 1,
                    names: Vec::new(),
                    unlisted: 0,
                    sources: 0,
                    events: 1,
                    window: d.window.as_secs() as i64,
                    first: now,
                    last: now,
                    action: config::Action::Log,
                    at_least: false,
                });
            }
        }
        Event::Reset { admin_uid, account } => {
            if a.reset_burst.threshold > 0 {
                state.reset_burst.entry(&admin_uid).pour(
                    &account.to_owned(),
                    Some(account),
                    now,
                    params(&a.reset_burst, settle),
                );
            }
            if a.reset_accounts.threshold > 0 {
                state.reset_accounts.entry(&()).pour(
                    &account.to_owned(),
                    Some(account),
                    now,
                    params(&a.reset_accounts, settle),
                );
            }
        }
        Event::Cleared { account } => {
            state.failures.map.remove(&account);
            state.distributed.map.remove(&account);
        }
    }
    fired.extend(tick(state, now, s));
    fired
}

/// Episodes due by `now`; tracks that leaked empty are dropped. Run by the daemon every second.
pub fn tick(state: &mut State, now: i64, s: &Settings<'_>) -> Vec<Firing> {
    let a = s.alerts;
    let settle = s.settle();
    let max = a.max_names;
    let mut fired = Vec::new();
    for (kind, detector, d, tracks) in [
        (Kind::Spray, "spray", &a.spray, &mut state.spray),
        (
            Kind::SlowSpray,
            "slow_spray",
            &a.slow_spray,
            &mut state.slow_spray,
        ),
    ] {
        tracks.tick(now, params(d, settle), |src, t| {
            fired.push(episode_firing(kind, detector, d, src.clone(), t, max, now))
        });
    }
    let d = &a.distributed;
    state
        .distributed
        .tick(now, params(d, settle), |_account, t| {
            let mut f = episode_firing(
                Kind::Distributed,
                "distributed",
                d,
                Source::All,
                t,
                max,
                now,
            );
            // The drops are sources: one account, `sources` distinct sources.
            f.sources = f.accounts;
            f.accounts = 1;
            fired.push(f);
        });
    let d = &a.reset_burst;
    state.reset_burst.tick(now, params(d, settle), |uid, t| {
        fired.push(episode_firing(
            Kind::ResetBurst,
            "reset_burst",
            d,
            Source::Local(*uid),
            t,
            max,
            now,
        ))
    });
    let d = &a.reset_accounts;
    state.reset_accounts.tick(now, params(d, settle), |_, t| {
        fired.push(episode_firing(
            Kind::ResetBurst,
            "reset_accounts",
            d,
            Source::All,
            t,
            max,
            now,
        ))
    });
    let d = &a.success_after_failures;
    state.failures.tick(now, params(d, settle), |_, _| ());
    fired
}

/// The firing of an episode: what its bucket holds now.
fn episode_firing<D: PartialEq + Clone>(
    kind: Kind,
    detector: &'static str,
    d: &config::Detector,
    source: Source,
    t: &Track<D>,
    max: usize,
    now: i64,
) -> Firing {
    let (names, unlisted) = t.bucket.names(max);
    Firing {
        kind,
        detector,
        source,
        target: None,
        accounts: t.bucket.len(),
        names,
        unlisted,
        sources: 0,
        events: t.bucket.events,
        window: d.window.as_secs() as i64,
        first: t.bucket.first().unwrap_or(now),
        last: t.bucket.last().unwrap_or(now),
        action: d.action,
        at_least: t.bucket.overflowed > 0,
    }
}

/// Whether `source` is in an episode of a detector whose action is `throttle`.
pub fn throttled(state: &State, source: &Source, a: &config::Alerts) -> bool {
    let throttles = |d: &config::Detector| d.action == config::Action::Throttle;
    (throttles(&a.spray) && state.spray.get(source).is_some_and(Track::in_episode))
        || (throttles(&a.slow_spray) && state.slow_spray.get(source).is_some_and(Track::in_episode))
}

/// Whether attempts on `account` are throttled (a distributed episode with `throttle`).
pub fn account_throttled(state: &State, account: &NameKey, a: &config::Alerts) -> bool {
    a.distributed.action == config::Action::Throttle
        && state
            .distributed
            .get(account)
            .is_some_and(Track::in_episode)
}

/// Whether resets by `uid` are throttled (a reset_burst episode with `throttle`).
pub fn admin_throttled(state: &State, uid: u32, a: &config::Alerts) -> bool {
    (a.reset_burst.action == config::Action::Throttle
        && state.reset_burst.get(&uid).is_some_and(Track::in_episode))
        || (a.reset_accounts.action == config::Action::Throttle
            && state.reset_accounts.get(&()).is_some_and(Track::in_episode))
}
