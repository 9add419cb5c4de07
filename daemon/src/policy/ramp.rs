//! `[lockout] mode = "ramp"`: NIST SP 800-63B §5.2.2's alternative to a lock after a few failures —
//! an increasing delay per consecutive failure, and a lock only after at most 100 consecutive
//! failures — as a pure policy over (consecutive failures, time of the last one, now).
//!
//! The delay before attempt n + 1, after n consecutive failures: nothing for the first `free`
//! failures, then `base` doubled for each failure past them, capped at `max`:
//!
//! ```text
//! n ≤ free:   0
//! n > free:   min(base · 2^(n − free − 1), max)
//! n ≥ lock_after: locked (as mode = "lock" with deny = lock_after)
//! ```
//!
//! With the defaults (free 3, base 1 s, max 15 min, lock_after 100) a guesser gets about 100
//! guesses in 24 hours, the 800-63B bound, while a user who mistypes 5 times waits 1 + 2 s.
//! An attempt made during its delay is refused (`RateLimited` with the time left), not checked and
//! not counted; a success ends the run (consecutive failures start at 0 again).

/// 800-63B: "no more than 100 consecutive failed authentication attempts".
pub const MAX_LOCK_AFTER: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ramp {
    /// Consecutive failures allowed without any delay.
    pub free: u32,
    /// The first delay, in seconds.
    pub base: i64,
    /// The longest delay, in seconds.
    pub max: i64,
    /// Consecutive failures that lock the account (at most [`MAX_LOCK_AFTER`]).
    pub lock_after: u32,
}

impl Default for Ramp {
    fn default() -> Self {
        Ramp {
            free: 3,
            base: 1,
            max: 15 * 60,
            lock_after: MAX_LOCK_AFTER,
        }
    }
}

/// What the ramp says of the next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Proceed,
    /// Too early: refuse for this many more seconds (not checked, not counted).
    Wait(i64),
    Locked,
}

impl Ramp {
    /// Seconds an attempt must wait after `failures` consecutive failures.
    pub fn delay(&self, failures: u32) -> i64 {
        if failures <= self.free {
            return 0;
        }
        let doublings = (failures - self.free - 1).min(62);
        self.base
            .saturating_mul(1i64.checked_shl(doublings).unwrap_or(i64::MAX))
            .min(self.max)
    }

    /// The next attempt after `failures` consecutive failures, the last at `last_failure`.
    pub fn next(&self, failures: u32, last_failure: i64, now: i64) -> Next {
        if failures >= self.lock_after.min(MAX_LOCK_AFTER) {
            return Next::Locked;
        }
        let ready = last_failure.saturating_add(self.delay(failures));
        if now < ready {
            Next::Wait(ready - now)
        } else {
            Next::Proceed
        }
    }

    /// Guesses a patient guesser gets in `secs` seconds from a clean start (each attempt made the
    /// moment its delay ends, every one wrong), lock included.
    pub fn guesses_within(&self, secs: i64) -> u32 {
        let (mut n, mut t) = (0u32, 0i64);
        loop {
            match self.next(n, t, t + self.delay(n)) {
                Next::Locked => return n,
                _ => {
                    let at = t + self.delay(n);
                    if at > secs {
                        return n;
                    }
                    t = at;
                    n += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_first_failures_are_free_then_the_delay_doubles_up_to_its_cap() {
        let r = Ramp::default();
        let delays: Vec<i64> = (0..8).map(|n| r.delay(n)).collect();
        assert_eq!(delays, vec![0, 0, 0, 0, 1, 2, 4, 8]);
        assert_eq!(r.delay(14), 900, "capped at 15 min");
        assert_eq!(r.delay(99), 900);
    }

    #[test]
    fn attempts_wait_out_their_delay_and_the_hundredth_failure_locks() {
        let r = Ramp::default();
        assert_eq!(r.next(3, 100, 100), Next::Proceed);
        assert_eq!(r.next(5, 100, 101), Next::Wait(1));
        assert_eq!(r.next(5, 100, 102), Next::Proceed);
        assert_eq!(r.next(99, 0, 1_000_000), Next::Proceed);
        assert_eq!(r.next(100, 0, 1_000_000), Next::Locked);
        let over = Ramp {
            lock_after: 500,
            ..Ramp::default()
        };
        assert_eq!(
            over.next(100, 0, 1_000_000),
            Next::Locked,
            "never above 100"
        );
    }

    #[test]
    fn a_day_of_patient_guessing_stays_near_the_800_63b_bound() {
        let r = Ramp::default();
        let day = r.guesses_within(24 * 3600);
        assert!((90..=100).contains(&day), "{day}");
        assert_eq!(r.guesses_within(i64::MAX / 4), 100);
        // A user's five typos cost 3 s of waiting.
        assert_eq!((0..5).map(|n| r.delay(n)).sum::<i64>(), 1);
        assert_eq!((0..6).map(|n| r.delay(n)).sum::<i64>(), 3);
    }

    proptest! {
        /// The delay never decreases with more failures and never exceeds `max`; `next` never
        /// lets an attempt through before its delay, and never past 100 failures.
        #[test]
        fn the_ramp_is_monotone_bounded_and_locks_by_100(
            free in 0u32..20, base in 1i64..120, max in 1i64..100_000,
            lock_after in 1u32..1000, n in 0u32..200, last in 0i64..1_000_000, dt in 0i64..200_000,
        ) {
            let r = Ramp { free, base, max: max.max(base), lock_after };
            prop_assert!(r.delay(n) <= r.delay(n + 1));
            prop_assert!(r.delay(n) <= r.max);
            match r.next(n, last, last + dt) {
                Next::Proceed => prop_assert!(dt >= r.delay(n) && n < lock_after.min(100)),
                Next::Wait(w) => prop_assert_eq!(w, r.delay(n) - dt),
                Next::Locked => prop_assert!(n >= lock_after.min(100)),
            }
        }
    }
}
