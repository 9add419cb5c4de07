//! `[alerts]`: the detectors' thresholds, windows and responses (docs/alerts.md). The config file
//! parses straight into these, and the detectors read them; config.rs only re-exports them.

use std::time::Duration;

use serde::Deserialize;

/// What a detector does besides its audit event when it fires (docs/alerts.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The audit event only.
    #[default]
    Log,
    /// Also delay the source's attempts by `[alerts] throttle_delay` while its episode lasts.
    Throttle,
}

/// One detector: `threshold` distinct keys (accounts, sources) within `window` fire it; 0 turns
/// it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detector {
    pub threshold: u32,
    #[serde(with = "crate::system::time::serde_duration")]
    pub window: Duration,
    #[serde(default)]
    pub action: Action,
}

impl Detector {
    const fn new(threshold: u32, window_secs: u64) -> Detector {
        Detector {
            threshold,
            window: Duration::from_secs(window_secs),
            action: Action::Log,
        }
    }
}

/// Detectors of unusual patterns (docs/alerts.md); each fires once per episode.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Alerts {
    /// A firing waits until its episode has been quiet this long (at most 5 × `settle` after it
    /// opened), so that its event counts the whole burst, not the first `threshold` of it.
    #[serde(with = "crate::system::time::serde_duration")]
    pub settle: Duration,
    /// Names (accounts, sources) listed in a firing at most; the count is always complete.
    pub max_names: usize,
    /// The delay of an attempt from a source that a detector with `action = "throttle"` has
    /// fired on, while its episode lasts.
    #[serde(with = "crate::system::time::serde_duration")]
    pub throttle_delay: Duration,
    /// Distinct accounts failing from one source (rhost of root callers, else the local uid).
    pub spray: Detector,
    /// The same over hours.
    pub slow_spray: Detector,
    /// Distinct sources failing on one account.
    pub distributed: Detector,
    /// Distinct accounts reset by one administrator uid.
    pub reset_burst: Detector,
    /// Distinct accounts reset by all administrators together.
    pub reset_accounts: Detector,
    /// A right password after at least `threshold` failures of the account within `window`.
    pub success_after_failures: Detector,
    /// A reset code redeemed from a source no login of the account came from; `window`: how long
    /// a source of a successful login is remembered. `threshold`: 0 off, anything else on.
    pub unexpected_code: Detector,
}

impl Default for Alerts {
    fn default() -> Self {
        Alerts {
            settle: Duration::from_secs(20),
            max_names: 20,
            throttle_delay: Duration::from_secs(2),
            spray: Detector::new(10, 600),
            slow_spray: Detector::new(30, 6 * 3600),
            distributed: Detector::new(10, 3600),
            reset_burst: Detector::new(10, 3600),
            reset_accounts: Detector::new(20, 3600),
            success_after_failures: Detector::new(4, 900),
            unexpected_code: Detector::new(1, 90 * 24 * 3600),
        }
    }
}

impl Alerts {
    pub fn detectors(&self) -> [(&'static str, &Detector); 7] {
        [
            ("spray", &self.spray),
            ("slow_spray", &self.slow_spray),
            ("distributed", &self.distributed),
            ("reset_burst", &self.reset_burst),
            ("reset_accounts", &self.reset_accounts),
            ("success_after_failures", &self.success_after_failures),
            ("unexpected_code", &self.unexpected_code),
        ]
    }

    pub(crate) fn validate(&self) -> std::result::Result<(), String> {
        if self.settle.is_zero() || self.settle > Duration::from_secs(3600) {
            return Err("alerts.settle: must be between 1s and 1h".into());
        }
        if self.max_names > 100 {
            return Err("alerts.max_names: at most 100".into());
        }
        if self.throttle_delay > Duration::from_secs(10) {
            return Err("alerts.throttle_delay: at most 10s".into());
        }
        for (name, d) in self.detectors() {
            if d.threshold > super::MAX_THRESHOLD {
                return Err(format!(
                    "alerts.{name}.threshold: at most {} (0 turns the detector off)",
                    super::MAX_THRESHOLD
                ));
            }
            if d.threshold > 0 && d.window < Duration::from_secs(1) {
                return Err(format!("alerts.{name}.window: must be at least 1s"));
            }
            if d.window > Duration::from_secs(366 * 24 * 3600) {
                return Err(format!("alerts.{name}.window: at most a year"));
            }
        }
        for (name, d) in [
            ("success_after_failures", &self.success_after_failures),
            ("unexpected_code", &self.unexpected_code),
        ] {
            if d.action == Action::Throttle {
                return Err(format!(
                    "alerts.{name}.action: only \"log\" (the event it fires on is a single login)"
                ));
            }
        }
        Ok(())
    }
}
