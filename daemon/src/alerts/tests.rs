//! The detectors over scripted events, with the defaults of `[alerts]` unless a test says
//! otherwise; and a replay of ordinary logins that must raise nothing.

use super::detect::{self, Event, Kind, LoginOutcome, Source, State};
use super::{Alerts, Firing};
use crate::alerts::settings as config;

fn defaults() -> config::Alerts {
    config::Alerts::default()
}

struct Run {
    alerts: Alerts,
    cfg: config::Alerts,
    fired: Vec<Firing>,
}

impl Run {
    fn new(cfg: config::Alerts) -> Run {
        Run {
            alerts: Alerts::new(),
            cfg,
            fired: Vec::new(),
        }
    }

    fn login(
        &mut self,
        account: &str,
        known: bool,
        source: &Source,
        outcome: LoginOutcome,
        now: i64,
    ) {
        let key = self.alerts.key(account);
        let f = self.alerts.feed(
            &Event::Login {
                account: key,
                shown: known.then_some(account),
                source,
                outcome,
                source_known: None,
            },
            &self.cfg,
            now,
        );
        self.fired.extend(f);
    }

    fn fail(&mut self, account: &str, source: &Source, now: i64) {
        self.login(account, true, source, LoginOutcome::Failed, now);
    }

    fn succeed(&mut self, account: &str, source: &Source, now: i64) {
        self.login(account, true, source, LoginOutcome::Succeeded, now);
    }

    fn reset(&mut self, admin_uid: u32, account: &str, now: i64) {
        let f = self
            .alerts
            .feed(&Event::Reset { admin_uid, account }, &self.cfg, now);
        self.fired.extend(f);
    }

    fn tick(&mut self, now: i64) {
        let f = self.alerts.tick(&self.cfg, now);
        self.fired.extend(f);
    }

    /// Ticks every second from `from` to `to`.
    fn ticks(&mut self, from: i64, to: i64) {
        for t in from..=to {
            self.tick(t);
        }
    }

    fn kinds(&self) -> Vec<Kind> {
        self.fired.iter().map(|f| f.kind).collect()
    }
}

fn rhost(h: &str) -> Source {
    Source::Remote(h.into())
}

#[test]
fn a_spray_of_twenty_accounts_fires_once_counting_twenty() {
    let mut r = Run::new(defaults());
    let attacker = rhost("203.0.113.5");
    for i in 0..20 {
        r.fail(&format!("user{i:02}"), &attacker, i);
        r.tick(i);
    }
    assert!(r.fired.is_empty(), "settling: {:?}", r.fired);
    r.ticks(20, 3600);
    assert_eq!(r.kinds(), vec![Kind::Spray], "{:?}", r.fired);
    let f = &r.fired[0];
    assert_eq!((f.accounts, f.events, f.unlisted), (20, 20, 0));
    assert_eq!(f.names.len(), 20);
    assert_eq!(f.source.label(), "rhost:203.0.113.5");
    assert_eq!((f.first, f.last, f.window), (0, 19, 600));
    let d = f.detail();
    for field in [
        "kind=spray",
        "source=rhost:203.0.113.5",
        "accounts=20",
        "names=user00,user01,",
        "window=600s",
        "first=1970-01-01T00:00:00Z",
        "last=1970-01-01T00:00:19Z",
    ] {
        assert!(d.contains(field), "{field}: {d}");
    }
}

#[test]
fn nine_accounts_do_not_fire_and_the_tenth_does() {
    let mut r = Run::new(defaults());
    let s = rhost("198.51.100.1");
    for i in 0..9 {
        r.fail(&format!("u{i}"), &s, i);
    }
    r.ticks(0, 700);
    assert!(r.fired.is_empty());
    for i in 0..10 {
        r.fail(&format!("u{i}"), &s, 1000 + i);
    }
    r.ticks(1000, 1100);
    assert_eq!(r.kinds(), vec![Kind::Spray]);
}

#[test]
fn typed_names_that_are_no_account_are_counted_not_listed() {
    let mut r = Run::new(defaults());
    let s = Source::Local(1000);
    for i in 0..12 {
        r.login(&format!("guess{i}"), i < 2, &s, LoginOutcome::Failed, i);
    }
    r.ticks(0, 100);
    let f = &r.fired[0];
    assert_eq!((f.accounts, f.unlisted), (12, 10));
    assert_eq!(f.names, vec!["guess0", "guess1"]);
    assert!(!f.detail().contains("guess5"));
    assert_eq!(f.source.label(), "uid:1000");
}

#[test]
fn a_slow_spray_below_the_fast_rate_fires_the_slow_detector_only() {
    let mut r = Run::new(defaults());
    let s = rhost("192.0.2.77");
    // One account every 10 minutes for 6 hours: never 10 within 10 minutes.
    for i in 0..36 {
        r.fail(&format!("acct{i}"), &s, i * 600);
        r.tick(i * 600 + 1);
        r.tick(i * 600 + 300);
    }
    r.ticks(36 * 600, 36 * 600 + 60);
    assert_eq!(r.kinds(), vec![Kind::SlowSpray]);
    assert_eq!(
        r.fired[0].accounts, 30,
        "fired when it settled after the 30th"
    );
}

#[test]
fn distributed_guessing_of_one_account_fires_once() {
    let mut r = Run::new(defaults());
    for i in 0..25 {
        r.fail("root", &rhost(&format!("10.0.{}.{}", i / 10, i)), i * 5);
        r.tick(i * 5);
    }
    r.ticks(25 * 5, 25 * 5 + 100);
    assert_eq!(r.kinds(), vec![Kind::Distributed]);
    let f = &r.fired[0];
    assert_eq!((f.accounts, f.sources), (1, 25));
    assert!(f.names[0].starts_with("rhost:10.0.0."), "{:?}", f.names);
}

#[test]
fn reset_bursts_by_one_administrator_and_by_all_of_them() {
    let mut r = Run::new(defaults());
    for i in 0..10 {
        r.reset(0, &format!("emp{i}"), i * 5);
    }
    r.ticks(0, 200);
    assert_eq!(r.kinds(), vec![Kind::ResetBurst]);
    assert_eq!(r.fired[0].source.label(), "uid:0");
    assert_eq!(r.fired[0].detector, "reset_burst");
    // Four administrators, 5 accounts each, within the hour: none is a burst alone.
    let mut r = Run::new(defaults());
    for i in 0..20i64 {
        r.reset(1000 + (i % 4) as u32, &format!("emp{i}"), i * 60);
        r.tick(i * 60);
    }
    r.ticks(20 * 60, 20 * 60 + 100);
    assert_eq!(r.kinds(), vec![Kind::ResetBurst]);
    assert_eq!(r.fired[0].detector, "reset_accounts");
    assert_eq!(
        (r.fired[0].source.label().as_str(), r.fired[0].accounts),
        ("all", 20)
    );
}

#[test]
fn a_success_after_a_burst_of_failures_fires_at_once_and_typos_do_not() {
    let mut r = Run::new(defaults());
    let s = rhost("203.0.113.9");
    for i in 0..3 {
        r.fail("alice", &s, i);
    }
    r.succeed("alice", &s, 4);
    assert!(r.fired.is_empty(), "three typos");
    for i in 10..14 {
        r.fail("alice", &rhost(&format!("198.51.100.{i}")), i);
    }
    r.succeed("alice", &s, 20);
    assert_eq!(r.kinds(), vec![Kind::SuccessAfterFailures]);
    let f = &r.fired[0];
    assert_eq!(
        (f.target.as_deref(), f.events, f.sources),
        (Some("alice"), 5, 4)
    );
    assert_eq!(f.source, s);
    r.succeed("alice", &s, 21);
    assert_eq!(r.fired.len(), 1, "the success cleared the count");
}

#[test]
fn an_unlock_forgives_the_failures_before_it() {
    let mut r = Run::new(defaults());
    let s = Source::Service;
    for i in 0..5 {
        r.fail("bob", &s, i);
    }
    let key = r.alerts.key("bob");
    let cfg = r.cfg.clone();
    r.alerts.feed(&Event::Cleared { account: key }, &cfg, 10);
    r.succeed("bob", &s, 11);
    assert!(r.fired.is_empty());
}

#[test]
fn a_code_from_a_source_never_seen_fires() {
    let r = Run::new(defaults());
    let key = r.alerts.key("carol");
    let s = rhost("203.0.113.50");
    for (known, fires) in [(Some(true), false), (None, false), (Some(false), true)] {
        let f = r.alerts.feed(
            &Event::Login {
                account: key,
                shown: Some("carol"),
                source: &s,
                outcome: LoginOutcome::CodeRedeemed,
                source_known: known,
            },
            &r.cfg,
            100,
        );
        assert_eq!(!f.is_empty(), fires, "{known:?}");
        if fires {
            assert_eq!(f[0].kind, Kind::UnexpectedCode);
            assert!(f[0].detail().contains("account=carol"));
        }
    }
}

#[test]
fn a_typo_followed_by_the_right_password_is_not_a_spray() {
    // Fifty people behind one NAT, each mistyping once before the right password.
    let mut r = Run::new(defaults());
    let nat = rhost("192.0.2.1");
    for i in 0..50 {
        r.fail(&format!("staff{i}"), &nat, i * 3);
        r.succeed(&format!("staff{i}"), &nat, i * 3 + 2);
        r.tick(i * 3 + 2);
    }
    r.ticks(150, 1000);
    assert!(r.fired.is_empty(), "{:?}", r.fired);
}

#[test]
fn throttle_applies_to_the_source_in_an_episode_only() {
    let mut cfg = defaults();
    cfg.spray.action = config::Action::Throttle;
    let mut r = Run::new(cfg);
    let bad = rhost("203.0.113.5");
    let good = rhost("198.51.100.2");
    for i in 0..9 {
        r.fail(&format!("u{i}"), &bad, i);
    }
    assert!(!r.alerts.is_throttled(&bad, None, &r.cfg), "no episode yet");
    r.fail("u9", &bad, 9);
    assert!(r.alerts.is_throttled(&bad, Some("anyone"), &r.cfg));
    assert!(!r.alerts.is_throttled(&good, Some("u1"), &r.cfg));
    r.ticks(10, 700);
    assert!(!r.alerts.is_throttled(&bad, None, &r.cfg), "episode over");
    // The delay itself is bounded per source.
    let a = std::sync::Arc::new(Alerts::new());
    let waiting: Vec<_> = (0..super::MAX_DELAYED_PER_SOURCE + 2)
        .map(|_| {
            let a = std::sync::Arc::clone(&a);
            std::thread::spawn(move || a.delay(&rhost("x"), std::time::Duration::from_millis(300)))
        })
        .collect();
    let delayed = waiting
        .into_iter()
        .filter(|_| true)
        .map(|t| t.join().unwrap())
        .filter(|d| *d)
        .count();
    assert!(
        delayed <= super::MAX_DELAYED_PER_SOURCE as usize + 1,
        "{delayed}"
    );
    assert!(a.delays_skipped() >= 1);
}

#[test]
fn memory_stays_bounded_under_a_flood_of_sources_and_names() {
    let mut r = Run::new(defaults());
    for i in 0..30_000i64 {
        let s = rhost(&format!("h{i}"));
        r.login(&format!("n{i}"), false, &s, LoginOutcome::Failed, i / 100);
    }
    assert!(
        r.alerts.tracks() <= 4 * detect::MAX_TRACKS,
        "{}",
        r.alerts.tracks()
    );
    let mut state = State::default();
    let cfg = defaults();
    let s = detect::Settings { alerts: &cfg };
    let src = rhost("one");
    let hasher = crate::crypto::namekey::NameHasher::new();
    for i in 0..5_000 {
        let key = hasher.key(&format!("x{i}"));
        detect::observe(
            &mut state,
            &Event::Login {
                account: key,
                shown: None,
                source: &src,
                outcome: LoginOutcome::Failed,
                source_known: None,
            },
            0,
            &s,
        );
    }
    let t = state.spray.get(&src).unwrap();
    assert_eq!(t.bucket.len(), super::bucket::MAX_DROPS);
}

/// A day of ordinary use: 300 users, each logging in 2 to 12 times from home, the office NAT
/// (shared by 200 of them) or a phone; 5 % of logins start with one or two typos before the right
/// password; three administrators issue twelve resets over the day, and the users redeem the codes from a
/// place they logged in from before. Nothing may fire.
#[test]
fn a_replay_of_ordinary_logins_raises_no_alert() {
    let mut r = Run::new(defaults());
    // A small deterministic generator (xorshift): no dependency, same day every run.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let office = rhost("192.0.2.1");
    let mut logins = Vec::new();
    for u in 0..300u64 {
        let home = rhost(&format!("198.51.{}.{}", u / 250, u % 250));
        let phone = rhost(&format!("2001:db8::{u:x}"));
        for _ in 0..(2 + rand(11)) {
            let at = (8 * 3600 + rand(10 * 3600)) as i64;
            let source = match rand(10) {
                0..=5 if u < 200 => office.clone(),
                0..=7 => home.clone(),
                _ => phone.clone(),
            };
            let typos = if rand(100) < 5 { 1 + rand(2) } else { 0 };
            logins.push((at, format!("user{u}"), source, typos));
        }
    }
    logins.sort_by_key(|l| l.0);
    let mut attempts = 0;
    let mut typos_total = 0;
    let mut next_tick = 0;
    for (at, user, source, typos) in &logins {
        while next_tick <= *at {
            r.tick(next_tick);
            next_tick += 1;
        }
        for t in 0..*typos {
            r.fail(user, source, at + t as i64 * 4);
            attempts += 1;
            typos_total += 1;
        }
        r.succeed(user, source, at + *typos as i64 * 4 + 3);
        attempts += 1;
    }
    for i in 0..12 {
        r.reset(
            1000 + i % 3,
            &format!("user{}", i * 7),
            9 * 3600 + i as i64 * 1800,
        );
    }
    r.ticks(next_tick, 24 * 3600);
    eprintln!(
        "replay: {} logins, {attempts} attempts, {typos_total} typos, 12 resets: {} alerts",
        logins.len(),
        r.fired.len()
    );
    assert!(r.fired.is_empty(), "{:#?}", r.fired);
}

/// The detection figures of docs/alerts.md: how many events each detector needs, with the
/// defaults, to fire.
#[test]
fn events_to_fire_with_the_defaults() {
    let cfg = defaults();
    let s = rhost("203.0.113.1");
    let mut counts = Vec::new();
    let mut r = Run::new(cfg.clone());
    let mut n = 0;
    while r.fired.is_empty() {
        r.fail(&format!("a{n}"), &s, n);
        r.ticks(n, n + 30);
        n += 1;
    }
    counts.push(("spray", n));
    assert_eq!(n, 10);
    let mut r = Run::new(cfg.clone());
    let mut n = 0;
    while r.fired.is_empty() {
        r.fail("root", &rhost(&format!("h{n}")), n);
        r.ticks(n, n + 30);
        n += 1;
    }
    counts.push(("distributed", n));
    assert_eq!(n, 10);
    let mut r = Run::new(cfg.clone());
    let mut n = 0;
    while r.fired.is_empty() {
        r.reset(0, &format!("a{n}"), n);
        r.ticks(n, n + 30);
        n += 1;
    }
    counts.push(("reset_burst", n));
    assert_eq!(n, 10);
    let mut r = Run::new(cfg);
    let mut n = 0;
    while r.fired.is_empty() {
        r.fail("alice", &s, n);
        r.succeed("bob", &s, n);
        n += 1;
        let mut probe = Run::new(defaults());
        for i in 0..n {
            probe.fail("alice", &s, i);
        }
        probe.succeed("alice", &s, n);
        if !probe.fired.is_empty() {
            break;
        }
    }
    counts.push(("success_after_failures", n + 1));
    assert_eq!(n, 4);
    eprintln!("events to fire: {counts:?}");
}
