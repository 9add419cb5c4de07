//! `credd.toml`: parsed strictly (an unknown key is an error naming it), validated as a whole,
//! and refused when anyone but root could have written it.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{DaemonError, Result};

/// The iteration count the pbkdf2 crate accepts at least; real deployments use far more.
pub const MIN_ITERATIONS: u32 = 1_000;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub hashing: Hashing,
    pub password: Password,
    pub lockout: Lockout,
    pub rate: Rate,
    pub codes: Codes,
    pub sessions: Sessions,
    pub audit: Audit,
    pub limits: Limits,
    pub admin: Admin,
    pub alerts: Alerts,
}

pub use crate::alerts::settings::{Action, Alerts, Detector};

/// Who administers besides root (docs/architecture.md#callers).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Members of this group may use admin.sock, audited under their own uid, but cannot act on
    /// root or on other members. Unset: root only.
    pub group: Option<String>,
}

/// Where audit events go besides the local audit table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audit {
    /// `unix:PATH`, `udp:HOST:PORT`, `tcp:HOST:PORT` or `none`.
    pub syslog: String,
    /// `rfc3164` (key=value fields) or `rfc5424` (structured data, for remote collectors).
    pub format: String,
    /// How often the chain head is checkpointed to syslog (also at start and at shutdown).
    #[serde(with = "crate::system::time::serde_duration")]
    pub checkpoint_interval: Duration,
    /// Record the name typed for an unknown user. Off by default: a mistyped name is often a
    /// password.
    pub log_unknown_names: bool,
    /// MiB that must stay free on the state directory's volume: below it, events that only
    /// record a refusal are dropped and counted (never a change of state). 0 turns it off.
    pub disk_reserve_mib: u64,
}

impl Default for Audit {
    fn default() -> Self {
        Audit {
            syslog: "unix:/dev/log".into(),
            format: "rfc3164".into(),
            checkpoint_interval: Duration::from_secs(300),
            log_unknown_names: false,
            disk_reserve_mib: 64,
        }
    }
}

impl Audit {
    pub fn target(&self) -> std::result::Result<crate::audit::syslog::Target, String> {
        crate::audit::syslog::Target::parse(&self.syslog).map_err(|e| format!("audit.syslog: {e}"))
    }

    pub fn format(&self) -> std::result::Result<crate::audit::syslog::Format, String> {
        match self.format.as_str() {
            "rfc3164" => Ok(crate::audit::syslog::Format::Rfc3164),
            "rfc5424" => Ok(crate::audit::syslog::Format::Rfc5424),
            other => Err(format!(
                "audit.format: {other:?} is neither \"rfc3164\" nor \"rfc5424\""
            )),
        }
    }
}

/// Temporary access codes issued by `credctl reset`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Codes {
    /// Default lifetime; `credctl reset --ttl` may choose another within the same range.
    #[serde(with = "crate::system::time::serde_duration")]
    pub ttl: Duration,
    /// Wrong codes before the code is burned.
    pub max_attempts: u32,
    /// Resets of one account per rolling hour.
    pub per_account_per_hour: u32,
    /// Resets by one administrator (uid) per rolling hour.
    pub per_admin_per_hour: u32,
}

impl Default for Codes {
    fn default() -> Self {
        Codes {
            ttl: Duration::from_secs(15 * 60),
            max_attempts: 5,
            per_account_per_hour: 5,
            per_admin_per_hour: 100,
        }
    }
}

/// Code lifetimes accepted from the config and from `credctl reset --ttl`.
pub const MIN_CODE_TTL: Duration = Duration::from_secs(60);
pub const MAX_CODE_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sessions {
    /// Also end the processes of revoked login sessions (SIGHUP, then SIGKILL after the grace).
    pub terminate_on_revoke: bool,
    #[serde(with = "crate::system::time::serde_duration")]
    pub terminate_grace: Duration,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            terminate_on_revoke: false,
            terminate_grace: Duration::from_secs(5),
        }
    }
}

/// pam_faillock's settings, with its semantics (see docs/lockout.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Lockout {
    /// Failures inside `fail_interval` that lock an account; 0 disables locking.
    pub deny: u32,
    #[serde(with = "crate::system::time::serde_duration")]
    pub fail_interval: Duration,
    /// `None` ("never"): only an administrator unlocks.
    #[serde(with = "unlock_str")]
    pub unlock_time: Option<Duration>,
    /// Used instead of `unlock_time` for uid 0 when `even_deny_root` is set.
    #[serde(with = "unlock_str")]
    pub root_unlock_time: Option<Duration>,
    pub even_deny_root: bool,
    /// acct_mgmt refuses locked accounts, so logins that skip our auth (ssh keys) are refused too.
    pub account_check: bool,
    /// `"lock"` (pam_faillock's model) or `"ramp"` (NIST 800-63B: an increasing delay per
    /// consecutive failure, a lock after at most 100; policy in `ramp.rs`, not yet enforced on
    /// the login path, so the config refuses it).
    pub mode: String,
}

/// Token buckets: `burst` attempts at once, refilled at `per_minute`. `burst = 0` disables one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bucket {
    pub burst: u32,
    pub per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Rate {
    /// Per account name, known or not, whoever asks.
    pub account: Bucket,
    /// Per remote host, as claimed by root callers only (sshd's PAM_RHOST).
    pub host: Bucket,
    /// Per calling uid, for non-root callers (screen lockers): stricter.
    pub local_uid: Bucket,
    /// Per calling uid, for password changes by the account's owner (passwd run by a user).
    pub change: Bucket,
    /// Per calling uid, every request of a caller that is not root through and through, before
    /// it can cause any work, write or log line. Far above ordinary use (a script running sudo
    /// twice a second makes 8 requests a second); it bounds what a flood can write.
    pub requests: Bucket,
}

impl Lockout {
    /// The rules in Unix seconds, as the pure policy takes them.
    pub fn policy(&self) -> crate::policy::lockout::Policy {
        let secs = |d: Duration| d.as_secs().max(1) as i64;
        crate::policy::lockout::Policy {
            deny: self.deny,
            fail_interval: self.fail_interval.as_secs() as i64,
            unlock_after: self.unlock_time.map(secs),
            root_unlock_after: self.root_unlock_time.map(secs),
            even_deny_root: self.even_deny_root,
        }
    }
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            deny: 5,
            fail_interval: Duration::from_secs(15 * 60),
            unlock_time: None,
            root_unlock_time: None,
            even_deny_root: false,
            account_check: true,
            mode: "lock".into(),
        }
    }
}

impl Rate {
    pub fn rates(&self) -> crate::policy::ratelimit::Rates {
        use crate::policy::ratelimit::Rate as R;
        let rate = |b: Bucket| R::new(b.burst, b.per_minute);
        crate::policy::ratelimit::Rates {
            account: rate(self.account),
            host: rate(self.host),
            local_uid: rate(self.local_uid),
            change: rate(self.change),
            requests: rate(self.requests),
        }
    }
}

impl Default for Rate {
    fn default() -> Self {
        Rate {
            account: Bucket {
                burst: 10,
                per_minute: 10,
            },
            host: Bucket {
                burst: 30,
                per_minute: 60,
            },
            local_uid: Bucket {
                burst: 5,
                per_minute: 10,
            },
            // A right current password costs nothing; this bounds guesses through passwd.
            change: Bucket {
                burst: 5,
                per_minute: 5,
            },
            requests: Bucket {
                burst: 200,
                per_minute: 1200,
            },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hashing {
    /// PBKDF2-HMAC-SHA256 iterations for new hashes (OWASP 2023: 600 000).
    pub iterations: u32,
    /// A secret of at least 32 bytes outside the database (mode 0600), applied with HMAC to
    /// every stored hash; see hashing.rs. Losing it makes every password unverifiable.
    pub pepper_file: Option<PathBuf>,
    /// Verify (and import) descrypt, bsdicrypt and md5crypt hashes taken over from a shadow file.
    /// Off by default: they fall to a GPU in hours (descrypt reads only 8 characters), so an
    /// account still holding one is better reset than logged into with it.
    pub accept_legacy: bool,
    /// Cost caps (issue 15 R3): a stored or imported hash that asks for more work than these is
    /// refused at import, reported by `credctl check` and at start, and never run at login (a
    /// dummy of the configured cost runs instead and the attempt fails). PBKDF2: unset means
    /// [`Hashing::max_iterations`]'s default.
    pub max_iterations: Option<u32>,
    /// sha512crypt and sha256crypt `rounds=`, bsdicrypt's count.
    pub max_crypt_rounds: u64,
    /// bcrypt's cost (each step doubles the work).
    pub max_bcrypt_cost: u32,
    /// yescrypt, gost-yescrypt and scrypt: 128 × N × r × p × (t + 1) bytes, in MiB.
    pub max_memory_mib: u64,
}

/// rounds=5000 is what sha512crypt and sha256crypt mean without `rounds=`.
pub const MIN_MAX_CRYPT_ROUNDS: u64 = 5_000;
/// Debian's default yescrypt (`$y$j9T$`, N = 4096, r = 32).
pub const MIN_MAX_MEMORY_MIB: u64 = 16;

impl Hashing {
    /// `max_iterations`, or 4 × `iterations` and at least 2 400 000.
    pub fn max_iterations(&self) -> u32 {
        self.max_iterations
            .unwrap_or_else(|| crate::crypto::hashing::default_max_iterations(self.iterations))
    }

    pub fn cost_caps(&self) -> crate::crypto::hashing::CostCaps {
        crate::crypto::hashing::CostCaps {
            max_iterations: self.max_iterations(),
            max_crypt_rounds: self.max_crypt_rounds,
            max_bcrypt_cost: self.max_bcrypt_cost,
            max_memory_mib: self.max_memory_mib,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Password {
    pub min_length: usize,
    pub max_length: usize,
    /// A file of forbidden passwords, one per line, compared case-insensitively; "" for none.
    pub blocklist: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open connections across both sockets; a quarter is kept for root peers.
    pub max_connections: usize,
    /// Open connections from one non-root uid.
    pub max_connections_per_uid: usize,
    /// A connection silent for this long is closed, so a slow peer cannot hold a worker.
    #[serde(with = "crate::system::time::serde_duration")]
    pub idle_timeout: Duration,
    /// Hashing jobs queued or running at once; past it the reply is `Busy`. A quarter is kept for
    /// root peers.
    pub hash_queue: usize,
    /// Hashing threads; 0 means one per core.
    pub hash_threads: usize,
}

impl Default for Hashing {
    fn default() -> Self {
        Hashing {
            iterations: 600_000,
            pepper_file: None,
            accept_legacy: false,
            max_iterations: None,
            max_crypt_rounds: crate::crypto::hashing::DEFAULT_MAX_CRYPT_ROUNDS,
            max_bcrypt_cost: crate::crypto::hashing::DEFAULT_MAX_BCRYPT_COST,
            max_memory_mib: crate::crypto::hashing::DEFAULT_MAX_MEMORY_MIB,
        }
    }
}

impl Password {
    /// The rules, with the blocklist file read now (a missing file is an error naming it).
    pub fn quality(&self) -> Result<crate::policy::quality::Quality> {
        let blocklist = if self.blocklist.as_os_str().is_empty() {
            Default::default()
        } else {
            let text =
                std::fs::read_to_string(&self.blocklist).map_err(|e| DaemonError::Config {
                    path: self.blocklist.clone(),
                    message: format!("password.blocklist: {e}"),
                })?;
            crate::policy::quality::parse_blocklist(&text)
        };
        Ok(crate::policy::quality::Quality::new(
            self.min_length,
            self.max_length,
            blocklist,
        ))
    }
}

impl Default for Password {
    fn default() -> Self {
        Password {
            min_length: 12,
            max_length: 1024,
            blocklist: PathBuf::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 256,
            max_connections_per_uid: 16,
            idle_timeout: Duration::from_secs(10),
            hash_queue: 64,
            hash_threads: 0,
        }
    }
}

/// `"never"` or a duration.
mod unlock_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let s = String::deserialize(d)?;
        if s == "never" {
            return Ok(None);
        }
        humantime::parse_duration(&s).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "invalid value {s:?}: {e} (use \"never\" or e.g. \"10m\")"
            ))
        })
    }
}

impl Config {
    /// Loads `path`; a missing file means the defaults (a fresh install works before anyone
    /// writes a config), any other problem is an error.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(DaemonError::io(path, e)),
        };
        check_ownership(path)?;
        Config::parse(&text).map_err(|message| DaemonError::Config {
            path: path.to_path_buf(),
            message,
        })
    }

    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        // toml's message already names the key and shows the line; keep it on one line.
        let config: Config = toml::from_str(text).map_err(|e| one_line(&e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if self.hashing.iterations < MIN_ITERATIONS {
            return Err(format!(
                "hashing.iterations: {} is below the minimum of {MIN_ITERATIONS}",
                self.hashing.iterations
            ));
        }
        let h = &self.hashing;
        if h.max_iterations() < h.iterations {
            return Err(format!(
                "hashing.max_iterations: {} is below hashing.iterations ({}): credd would refuse \
                 the hashes it writes",
                h.max_iterations(),
                h.iterations
            ));
        }
        if h.max_crypt_rounds < MIN_MAX_CRYPT_ROUNDS {
            return Err(format!(
                "hashing.max_crypt_rounds: {} is below {MIN_MAX_CRYPT_ROUNDS}, the rounds of a \
                 sha512crypt hash without rounds=",
                h.max_crypt_rounds
            ));
        }
        if !(4..=31).contains(&h.max_bcrypt_cost) {
            return Err(format!(
                "hashing.max_bcrypt_cost: {} is outside bcrypt's costs 4 to 31",
                h.max_bcrypt_cost
            ));
        }
        if h.max_memory_mib < MIN_MAX_MEMORY_MIB {
            return Err(format!(
                "hashing.max_memory_mib: {} is below {MIN_MAX_MEMORY_MIB}, Debian's default \
                 yescrypt",
                h.max_memory_mib
            ));
        }
        let p = &self.password;
        if p.min_length == 0 || p.min_length > p.max_length {
            return Err(format!(
                "password.min_length: {} must be at least 1 and at most password.max_length ({})",
                p.min_length, p.max_length
            ));
        }
        if p.max_length > credd_proto::MAX_SECRET_LEN {
            return Err(format!(
                "password.max_length: {} exceeds {}",
                p.max_length,
                credd_proto::MAX_SECRET_LEN
            ));
        }
        self.audit.target()?;
        self.audit.format()?;
        if self.audit.checkpoint_interval.is_zero() {
            return Err("audit.checkpoint_interval: must be longer than 0s".into());
        }
        let c = &self.codes;
        if c.ttl < MIN_CODE_TTL || c.ttl > MAX_CODE_TTL {
            return Err(format!(
                "codes.ttl: {} is outside the accepted range of 1m to 24h",
                humantime::format_duration(c.ttl)
            ));
        }
        for (name, value) in [
            ("codes.max_attempts", c.max_attempts),
            ("codes.per_account_per_hour", c.per_account_per_hour),
            ("codes.per_admin_per_hour", c.per_admin_per_hour),
        ] {
            if value == 0 {
                return Err(format!("{name}: must be at least 1"));
            }
        }
        let lo = &self.lockout;
        match lo.mode.as_str() {
            "lock" => {}
            "ramp" => {
                return Err(
                    "lockout.mode: \"ramp\" is not enforced by this credd yet (its policy \
                            is in ramp.rs and docs/lockout.md); use \"lock\""
                        .into(),
                );
            }
            other => {
                return Err(format!(
                    "lockout.mode: {other:?} is neither \"lock\" nor \"ramp\""
                ));
            }
        }
        if lo.deny > crate::policy::lockout::MAX_DENY {
            return Err(format!(
                "lockout.deny: {} is above the maximum of {} (0 disables locking)",
                lo.deny,
                crate::policy::lockout::MAX_DENY
            ));
        }
        if lo.deny > 0 && lo.fail_interval.is_zero() {
            return Err("lockout.fail_interval: must be longer than 0s".into());
        }
        for (name, value) in [
            ("lockout.unlock_time", lo.unlock_time),
            ("lockout.root_unlock_time", lo.root_unlock_time),
        ] {
            if value.is_some_and(|d| d.is_zero()) {
                return Err(format!("{name}: must be \"never\" or longer than 0s"));
            }
        }
        for (name, bucket) in [
            ("rate.account", self.rate.account),
            ("rate.host", self.rate.host),
            ("rate.local_uid", self.rate.local_uid),
            ("rate.change", self.rate.change),
            ("rate.requests", self.rate.requests),
        ] {
            if bucket.burst > 0 && bucket.per_minute == 0 {
                return Err(format!(
                    "{name}: per_minute must be at least 1 (or burst 0 to disable the bucket)"
                ));
            }
        }
        let l = &self.limits;
        for (name, value) in [
            ("limits.max_connections", l.max_connections),
            ("limits.max_connections_per_uid", l.max_connections_per_uid),
            ("limits.hash_queue", l.hash_queue),
        ] {
            if value == 0 {
                return Err(format!("{name}: must be at least 1"));
            }
        }
        if let Some(group) = &self.admin.group
            && (group.is_empty() || group.chars().any(|c| c.is_control() || c == ':'))
        {
            return Err("admin.group: must be a group name".into());
        }
        if l.idle_timeout.is_zero() {
            return Err("limits.idle_timeout: must be longer than 0s".into());
        }
        self.alerts.validate()?;
        Ok(())
    }

    pub fn hash_threads(&self) -> usize {
        match self.limits.hash_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }
}

/// toml's message on one line: its own line breaks become spaces, and the control characters of
/// the file that it quotes (a CR, a NUL, an escape sequence) are escaped, so that the message
/// cannot break or rewrite a line of the terminal or the journal it is shown in.
fn one_line(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for c in message.trim().chars() {
        match c {
            '\n' => out.push(' '),
            c if credd_proto::is_unsafe_char(c) => {
                out.extend(c.escape_default());
            }
            c => out.push(c),
        }
    }
    out
}

/// A config that a non-root user can write would let that user lower the iteration count or
/// raise the limits, so it is refused. The daemon's own uid is accepted too, so tests and
/// unprivileged deployments work.
fn check_ownership(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| DaemonError::io(path, e))?;
    let me = nix::unistd::geteuid().as_raw();
    let problem = if meta.uid() != 0 && meta.uid() != me {
        Some(format!("owned by uid {}, not root", meta.uid()))
    } else if meta.mode() & 0o022 != 0 {
        Some(format!(
            "writable by group or others (mode {:o})",
            meta.mode() & 0o7777
        ))
    } else {
        None
    };
    match problem {
        Some(message) => Err(DaemonError::Config {
            path: PathBuf::from(path),
            message: format!("refused: {message}"),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.hashing.iterations, 600_000);
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(10));
        assert!(!c.hashing.accept_legacy);
    }

    #[test]
    fn cost_caps_default_to_about_four_times_the_policy_and_are_checked() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.hashing.max_iterations(), 2_400_000);
        assert_eq!(
            (
                c.hashing.max_crypt_rounds,
                c.hashing.max_bcrypt_cost,
                c.hashing.max_memory_mib
            ),
            (1_000_000, 13, 128)
        );
        let c = Config::parse("[hashing]\niterations = 1000000\n").unwrap();
        assert_eq!(c.hashing.max_iterations(), 4_000_000);
        let c = Config::parse("[hashing]\niterations = 1000\n").unwrap();
        assert_eq!(
            c.hashing.max_iterations(),
            2_400_000,
            "never below the floor"
        );
        let c = Config::parse("[hashing]\nmax_iterations = 700000\n").unwrap();
        assert_eq!(c.hashing.cost_caps().max_iterations, 700_000);
        for (text, key) in [
            ("max_iterations = 1000", "hashing.max_iterations"),
            ("max_crypt_rounds = 4999", "hashing.max_crypt_rounds"),
            ("max_bcrypt_cost = 32", "hashing.max_bcrypt_cost"),
            ("max_bcrypt_cost = 3", "hashing.max_bcrypt_cost"),
            ("max_memory_mib = 8", "hashing.max_memory_mib"),
        ] {
            let err = Config::parse(&format!("[hashing]\n{text}\n")).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn accept_legacy_is_a_boolean() {
        let c = Config::parse("[hashing]\naccept_legacy = true\n").unwrap();
        assert!(c.hashing.accept_legacy);
        let err = Config::parse("[hashing]\naccept_legacy = \"yes\"\n").unwrap_err();
        assert!(err.contains("accept_legacy"), "{err}");
    }

    #[test]
    fn unknown_key_is_named() {
        let err = Config::parse("[hashing]\niterationz = 5000\n").unwrap_err();
        assert!(err.contains("iterationz"), "{err}");
        let err = Config::parse("[bogus]\n").unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::parse("[hashing]\niterations = 10\n").unwrap_err();
        assert!(err.contains("hashing.iterations"), "{err}");
        let err = Config::parse("[limits]\nidle_timeout = \"soon\"\n").unwrap_err();
        assert!(
            err.contains("idle_timeout") || err.contains("soon"),
            "{err}"
        );
        let err = Config::parse("[password]\nmin_length = 20\nmax_length = 10\n").unwrap_err();
        assert!(err.contains("password.min_length"), "{err}");
    }

    #[test]
    fn lockout_and_rate_parse_with_never_and_durations() {
        let c = Config::parse(
            "[lockout]\ndeny = 3\nunlock_time = \"10m\"\nroot_unlock_time = \"never\"\n\
             [rate]\naccount = { burst = 2, per_minute = 6 }\n",
        )
        .unwrap();
        assert_eq!(c.lockout.deny, 3);
        assert_eq!(c.lockout.unlock_time, Some(Duration::from_secs(600)));
        assert_eq!(c.lockout.root_unlock_time, None);
        assert_eq!(
            c.rate.account,
            Bucket {
                burst: 2,
                per_minute: 6
            }
        );
        assert_eq!(c.rate.host, Rate::default().host);
        let err = Config::parse("[lockout]\nunlock_time = \"later\"\n").unwrap_err();
        assert!(err.contains("never"), "{err}");
        let err = Config::parse("[rate]\nhost = { burst = 3, per_minute = 0 }\n").unwrap_err();
        assert!(err.contains("rate.host"), "{err}");
        let err = Config::parse("[rate]\nhost = { burst = 3 }\n").unwrap_err();
        assert!(err.contains("per_minute"), "{err}");
    }

    #[test]
    fn audit_targets_and_formats_are_checked() {
        let c = Config::parse("[audit]\nsyslog = \"udp:127.0.0.1:514\"\nformat = \"rfc5424\"\n")
            .unwrap();
        assert_eq!(c.audit.format(), Ok(crate::audit::syslog::Format::Rfc5424));
        let err = Config::parse("[audit]\nsyslog = \"smoke-signals\"\n").unwrap_err();
        assert!(err.contains("audit.syslog"), "{err}");
        let err = Config::parse("[audit]\nformat = \"json\"\n").unwrap_err();
        assert!(err.contains("audit.format"), "{err}");
    }

    #[test]
    fn errors_stay_on_one_line_whatever_the_file_holds() {
        // Found by the config fuzz target: toml quotes the bad line, its CR and NULs included.
        let err = Config::parse("[limitslef\r\0\0\0\"1h30m\"\"soon\"\n").unwrap_err();
        assert!(!err.chars().any(char::is_control), "{err:?}");
        assert!(err.contains("line 1") && err.contains("\\r\\u{0}"), "{err}");
        let err = Config::parse("[audit]\nformat = \"x\"\u{1b}[2J\n").unwrap_err();
        assert!(!err.chars().any(char::is_control), "{err:?}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn alerts_parse_with_defaults_and_bad_values_are_named() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.alerts.spray.threshold, 10);
        assert_eq!(c.alerts.spray.window, Duration::from_secs(600));
        assert_eq!(c.alerts.spray.action, Action::Log);
        let c = Config::parse(
            "[alerts]\nsettle = \"2s\"\nspray = { threshold = 5, window = \"1m\", action = \"throttle\" }\n",
        )
        .unwrap();
        assert_eq!(c.alerts.spray.action, Action::Throttle);
        assert_eq!(c.alerts.settle, Duration::from_secs(2));
        assert_eq!(
            c.alerts.distributed.threshold, 10,
            "others keep their defaults"
        );
        for (text, key) in [
            ("spray = { threshold = 5 }", "window"),
            (
                "spray = { threshold = 5, window = \"1m\", actoin = \"log\" }",
                "actoin",
            ),
            (
                "spray = { threshold = 5, window = \"1m\", action = \"ban\" }",
                "ban",
            ),
            (
                "spray = { threshold = 999, window = \"1m\" }",
                "alerts.spray.threshold",
            ),
            (
                "unexpected_code = { threshold = 1, window = \"1d\", action = \"throttle\" }",
                "alerts.unexpected_code.action",
            ),
            ("settle = \"0s\"", "alerts.settle"),
            ("bogus = 1", "bogus"),
        ] {
            let err = Config::parse(&format!("[alerts]\n{text}\n")).unwrap_err();
            assert!(err.contains(key), "{text}: {err}");
        }
    }

    #[test]
    fn durations_parse() {
        let c = Config::parse("[limits]\nidle_timeout = \"90s\"\n").unwrap();
        assert_eq!(c.limits.idle_timeout, Duration::from_secs(90));
    }

    #[test]
    fn group_writable_config_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credd.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let err = Config::load(&path).unwrap_err().to_string();
        assert!(err.contains("writable"), "{err}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(&path).is_ok());
    }

    #[test]
    fn blocklist_file_is_read_case_insensitively() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("block.txt");
        std::fs::write(&path, "Password123456\n\n  letmein-please  \n").unwrap();
        let q = (Password {
            min_length: 12,
            max_length: 100,
            blocklist: path,
        })
        .quality()
        .unwrap();
        assert!(q.check("bob", "PASSWORD123456").is_err());
        assert!(q.check("bob", "LetMeIn-Please").is_err());
        assert!(q.check("bob", "something else entirely").is_ok());
    }

    #[test]
    fn a_missing_blocklist_is_a_config_error() {
        let err = (Password {
            min_length: 12,
            max_length: 100,
            blocklist: "/nonexistent/blocklist".into(),
        })
        .quality()
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("password.blocklist"), "{err}");
    }
}
