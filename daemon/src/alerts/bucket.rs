//! Leaky buckets over distinct keys, and the episodes they open: pure functions of (state, event,
//! now), with times in Unix seconds passed in by the caller.
//!
//! A bucket holds one *drop* per distinct key (an account, a source) seen within the window; a
//! drop leaks out `window` seconds after its key was last seen. The bucket overflows when it holds
//! `threshold` drops: an *episode* opens. The episode fires once, when it has been quiet for
//! `settle` seconds or `5 × settle` after it opened, whichever comes first, so that its event counts
//! the whole burst; it ends when the bucket has leaked empty (the key has been quiet for a whole
//! window), and only then can the same key open another one.
//!
//! Memory: at most [`MAX_DROPS`] drops per bucket (the oldest is dropped first; the count then
//! says "at least").

/// Drops kept per bucket; above [`super::MAX_THRESHOLD`], so a bucket can always overflow.
pub const MAX_DROPS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drop<K> {
    pub key: K,
    /// What a firing may list for this key; `None` for a name it must not show (a typed name that
    /// is no account, unless `[audit] log_unknown_names`).
    pub shown: Option<String>,
    pub first: i64,
    pub last: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinctBucket<K> {
    drops: Vec<Drop<K>>,
    /// Events poured since the bucket was last empty.
    pub events: u64,
    /// Drops pushed out by [`MAX_DROPS`] while the bucket was not empty.
    pub overflowed: u64,
}

impl<K> Default for DistinctBucket<K> {
    fn default() -> Self {
        DistinctBucket {
            drops: Vec::new(),
            events: 0,
            overflowed: 0,
        }
    }
}

impl<K: PartialEq + Clone> DistinctBucket<K> {
    /// Lets out every drop last seen `window` or more seconds before `now`.
    pub fn leak(&mut self, now: i64, window: i64) {
        self.drops.retain(|d| d.last.saturating_add(window) > now);
        if self.drops.is_empty() {
            self.events = 0;
            self.overflowed = 0;
        }
    }

    /// One event for `key`; returns the number of distinct keys now in the bucket.
    pub fn pour(&mut self, key: &K, shown: Option<&str>, now: i64, window: i64) -> usize {
        self.leak(now, window);
        self.events += 1;
        if let Some(d) = self.drops.iter_mut().find(|d| d.key == *key) {
            d.last = d.last.max(now);
            if d.shown.is_none() {
                d.shown = shown.map(str::to_owned);
            }
        } else {
            if self.drops.len() >= MAX_DROPS
                && let Some(oldest) = (0..self.drops.len()).min_by_key(|&i| self.drops[i].last)
            {
                self.drops.swap_remove(oldest);
                self.overflowed += 1;
            }
            self.drops.push(Drop {
                key: key.clone(),
                shown: shown.map(str::to_owned),
                first: now,
                last: now,
            });
        }
        self.drops.len()
    }

    /// Takes `key`'s drop out (its failures were the key's owner: a right password followed).
    pub fn remove(&mut self, key: &K) {
        self.drops.retain(|d| d.key != *key);
        if self.drops.is_empty() {
            self.events = 0;
            self.overflowed = 0;
        }
    }

    pub fn len(&self) -> usize {
        self.drops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.drops.is_empty()
    }

    pub fn contains(&self, key: &K) -> bool {
        self.drops.iter().any(|d| d.key == *key)
    }

    pub fn first(&self) -> Option<i64> {
        self.drops.iter().map(|d| d.first).min()
    }

    pub fn last(&self) -> Option<i64> {
        self.drops.iter().map(|d| d.last).max()
    }

    /// Up to `max` names that may be shown, oldest first, and how many drops may not be shown.
    pub fn names(&self, max: usize) -> (Vec<String>, usize) {
        let mut drops: Vec<&Drop<K>> = self.drops.iter().collect();
        drops.sort_by_key(|d| d.first);
        let hidden = drops.iter().filter(|d| d.shown.is_none()).count();
        let shown = drops
            .iter()
            .filter_map(|d| d.shown.clone())
            .take(max)
            .collect();
        (shown, hidden)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub threshold: usize,
    pub window: i64,
    pub settle: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Episode {
    pub opened: i64,
    pub last_event: i64,
    pub fired: bool,
}

/// A bucket and its episode, for one key of one detector (one source, one account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track<K> {
    pub bucket: DistinctBucket<K>,
    pub episode: Option<Episode>,
}

impl<K> Default for Track<K> {
    fn default() -> Self {
        Track {
            bucket: DistinctBucket::default(),
            episode: None,
        }
    }
}

impl<K: PartialEq + Clone> Track<K> {
    /// Pours one event; opens an episode when the bucket overflows.
    pub fn pour(&mut self, key: &K, shown: Option<&str>, now: i64, p: Params) {
        self.end_if_empty(now, p);
        let count = self.bucket.pour(key, shown, now, p.window);
        match &mut self.episode {
            Some(e) => e.last_event = e.last_event.max(now),
            None if p.threshold > 0 && count >= p.threshold => {
                self.episode = Some(Episode {
                    opened: now,
                    last_event: now,
                    fired: false,
                })
            }
            None => {}
        }
    }

    /// Whether the episode's one firing is due now (and marks it fired).
    pub fn take_due(&mut self, now: i64, p: Params) -> bool {
        match &mut self.episode {
            Some(e)
                if !e.fired
                    && (now - e.last_event >= p.settle
                        || now - e.opened >= p.settle.saturating_mul(5)) =>
            {
                e.fired = true;
                true
            }
            _ => false,
        }
    }

    /// Fires now if an episode is open and has not fired (no settling: single-event detectors).
    pub fn take_open(&mut self) -> bool {
        match &mut self.episode {
            Some(e) if !e.fired => {
                e.fired = true;
                true
            }
            _ => false,
        }
    }

    /// Leaks the bucket; an empty bucket ends its episode. `true`: nothing is left to keep.
    pub fn end_if_empty(&mut self, now: i64, p: Params) -> bool {
        self.bucket.leak(now, p.window);
        if self.bucket.is_empty() {
            // An episode that never fired (settle longer than the window) fires at its end rather
            // than never: take_due runs before this in every tick.
            self.episode = None;
        }
        self.bucket.is_empty()
    }

    /// Whether the episode is under way (fired or not): a throttle applies.
    pub fn in_episode(&self) -> bool {
        self.episode.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const P: Params = Params {
        threshold: 10,
        window: 600,
        settle: 20,
    };

    #[test]
    fn distinct_keys_overflow_and_repeats_do_not() {
        let mut t = Track::<u32>::default();
        for _ in 0..50 {
            t.pour(&1, Some("alice"), 0, P);
        }
        assert!(t.episode.is_none(), "one account, many failures: no spray");
        for k in 2..=10 {
            t.pour(&k, None, k as i64, P);
        }
        assert!(t.episode.is_some());
        assert_eq!(t.bucket.len(), 10);
        assert_eq!(t.bucket.names(20), (vec!["alice".to_string()], 9));
    }

    #[test]
    fn an_episode_fires_once_after_settling_and_ends_when_the_bucket_is_empty() {
        let mut t = Track::<u32>::default();
        for k in 0..20 {
            t.pour(&k, None, k as i64, P);
        }
        assert!(!t.take_due(25, P), "still spraying 6 s ago");
        assert!(t.take_due(39, P), "quiet for settle");
        assert!(!t.take_due(40, P), "once");
        t.pour(&99, None, 100, P);
        assert!(!t.take_due(200, P), "the same episode");
        assert!(!t.end_if_empty(650, P));
        assert!(t.end_if_empty(700, P), "every drop leaked out");
        assert!(t.episode.is_none());
        for k in 0..10 {
            t.pour(&k, None, 800, P);
        }
        assert!(t.take_due(820, P), "a new episode fires again");
    }

    #[test]
    fn a_long_burst_fires_after_five_settles() {
        let mut t = Track::<u32>::default();
        for s in 0..200 {
            t.pour(&(s as u32), None, s, P);
            if t.take_due(s, P) {
                assert_eq!(s, 9 + 5 * P.settle, "opened at 9");
                return;
            }
        }
        panic!("never fired");
    }

    #[test]
    fn removed_keys_do_not_count() {
        let mut t = Track::<u32>::default();
        for k in 0..9 {
            t.pour(&k, None, 0, P);
            t.bucket.remove(&k);
        }
        t.pour(&100, None, 0, P);
        assert!(t.episode.is_none());
    }

    proptest! {
        /// Whatever the events, the bucket holds at most MAX_DROPS drops, no drop older than the
        /// window, no key twice; an episode exists only once `threshold` distinct keys were seen
        /// within a window; and a track fires at most once per episode.
        #[test]
        fn buckets_stay_bounded_and_fire_at_most_once_per_episode(
            events in prop::collection::vec((0u32..400, 0i64..30), 1..600),
            threshold in 1usize..50,
            window in 1i64..300,
            settle in 1i64..60,
        ) {
            let p = Params { threshold, window, settle };
            let mut t = Track::<u32>::default();
            let mut now = 0;
            let mut fired_in_episode = 0;
            let mut history: Vec<(u32, i64)> = Vec::new();
            for (key, step) in events {
                now += step;
                if t.end_if_empty(now, p) {
                    fired_in_episode = 0;
                }
                t.pour(&key, None, now, p);
                history.push((key, now));
                prop_assert!(t.bucket.len() <= MAX_DROPS);
                prop_assert!(t.bucket.drops.iter().all(|d| d.last + window > now));
                let mut keys: Vec<u32> = t.bucket.drops.iter().map(|d| d.key).collect();
                keys.sort();
                keys.dedup();
                prop_assert_eq!(keys.len(), t.bucket.len());
                if t.take_due(now, p) {
                    fired_in_episode += 1;
                }
                prop_assert!(fired_in_episode <= 1);
                if let Some(e) = t.episode {
                    // At its opening, `threshold` distinct keys had been seen within a window.
                    let mut seen: Vec<u32> = history
                        .iter()
                        .filter(|(_, at)| *at <= e.opened && at + window > e.opened)
                        .map(|(k, _)| *k)
                        .collect();
                    seen.sort();
                    seen.dedup();
                    prop_assert!(seen.len() >= threshold.min(MAX_DROPS));
                }
            }
        }

        /// Fewer distinct keys than the threshold within any window never open an episode,
        /// however many events they make.
        #[test]
        fn below_threshold_never_opens(
            keys in prop::collection::vec(0u32..9, 1..500),
            steps in prop::collection::vec(0i64..100, 500),
        ) {
            let mut t = Track::<u32>::default();
            let mut now = 0;
            for (key, step) in keys.iter().zip(steps) {
                now += step;
                t.pour(key, None, now, P);
                prop_assert!(t.episode.is_none());
            }
        }
    }
}
