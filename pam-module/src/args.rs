//! Module arguments, the words after `pam_credd.so` in a PAM service file.
//!
//! Like pam_unix, a word we do not understand (or a value we cannot accept) is reported and then
//! ignored: the module keeps working with its defaults rather than locking everybody out because
//! of a typo in `/etc/pam.d`. Every such problem is returned as a message for the caller to log.

use std::ffi::CStr;
use std::path::PathBuf;
use std::time::Duration;

use credd_proto::DEFAULT_TIMEOUT;
use credd_proto::paths::DEFAULT_PAM_SOCKET;

/// `timeout=` is accepted only in this range (seconds): a longer wait would hold sshd's
/// `LoginGraceTime` hostage, zero would mean "wait forever" to the socket layer.
pub const TIMEOUT_RANGE_SECS: std::ops::RangeInclusive<u64> = 1..=60;

/// pam_unix asks libpam for a 2 s failure delay unless told `nodelay`; so do we.
pub const DEFAULT_FAIL_DELAY: Duration = Duration::from_secs(2);

/// Largest `fail_delay=` accepted, in milliseconds. libpam takes the delay as an unsigned int of
/// microseconds, and anything near a minute is a misconfiguration, not a policy.
pub const MAX_FAIL_DELAY_MS: u64 = 60_000;

/// `retry=N`: how many new passwords a change may try in one conversation (pam_pwquality's
/// default is 1, Debian's common-password passes `retry=3`).
pub const DEFAULT_RETRY: u32 = 3;
pub const RETRY_RANGE: std::ops::RangeInclusive<u32> = 1..=10;

/// The parsed arguments, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleArgs {
    /// `socket=PATH`: the daemon's PAM socket. Must be absolute.
    pub socket: PathBuf,
    /// `timeout=SECS`: connect, read and write timeout, 1..=60 s.
    pub timeout: Duration,
    /// `debug`: write debug lines to syslog (authpriv.debug).
    pub debug: bool,
    /// `use_first_pass`: only use the token an earlier module stored; never prompt.
    pub use_first_pass: bool,
    /// `try_first_pass`: use the stored token when there is one, else prompt.
    pub try_first_pass: bool,
    /// `use_authtok`: for password changes, take the new password from an earlier module.
    pub use_authtok: bool,
    /// `ignore_unknown_user`: answer `PAM_IGNORE` instead of `PAM_USER_UNKNOWN`.
    pub ignore_unknown_user: bool,
    /// `ignore_authinfo_unavail`: answer `PAM_IGNORE` instead of `PAM_AUTHINFO_UNAVAIL` when the
    /// daemon cannot be reached.
    pub ignore_authinfo_unavail: bool,
    /// `nodelay`: do not ask libpam for a delay after a failed authentication.
    pub nodelay: bool,
    /// `fail_delay=MS`: the delay to ask for instead of [`DEFAULT_FAIL_DELAY`].
    pub fail_delay: Duration,
    /// `silent`: never show informational messages, as if every call carried `PAM_SILENT`.
    pub silent: bool,
    /// `no_lock_message`: do not tell the user that the account is locked (on by default).
    pub no_lock_message: bool,
    /// `retry=N`: new passwords a change may try (a refused or mistyped one asks again).
    pub retry: u32,
}

impl Default for ModuleArgs {
    fn default() -> Self {
        ModuleArgs {
            socket: PathBuf::from(DEFAULT_PAM_SOCKET),
            timeout: DEFAULT_TIMEOUT,
            debug: false,
            use_first_pass: false,
            try_first_pass: false,
            use_authtok: false,
            ignore_unknown_user: false,
            ignore_authinfo_unavail: false,
            nodelay: false,
            fail_delay: DEFAULT_FAIL_DELAY,
            silent: false,
            no_lock_message: false,
            retry: DEFAULT_RETRY,
        }
    }
}

impl ModuleArgs {
    /// The failure delay to hand to `pam_fail_delay`, in microseconds, or `None` with `nodelay`
    /// (which wins over `fail_delay=`, whatever their order).
    pub fn fail_delay_usec(&self) -> Option<u32> {
        if self.nodelay {
            return None;
        }
        // MAX_FAIL_DELAY_MS bounds this far below u32::MAX; saturate rather than panic anyway.
        Some(u32::try_from(self.fail_delay.as_micros()).unwrap_or(u32::MAX))
    }
}

/// Parses the argument vector PAM hands to a hook. Returns the arguments and one human-readable
/// problem per word that was ignored; the caller logs those (they never contain a secret, but they
/// are quoted with control characters escaped since they end up in syslog).
pub fn parse(args: &[&CStr]) -> (ModuleArgs, Vec<String>) {
    let mut parsed = ModuleArgs::default();
    let mut problems = Vec::new();
    for raw in args {
        let Ok(word) = raw.to_str() else {
            problems.push(format!(
                "ignoring argument that is not valid UTF-8: {:?}",
                raw.to_string_lossy()
            ));
            continue;
        };
        if let Err(problem) = apply(&mut parsed, word) {
            problems.push(problem);
        }
    }
    (parsed, problems)
}

/// Applies one word; later words win over earlier ones, as in every Linux-PAM module.
fn apply(args: &mut ModuleArgs, word: &str) -> Result<(), String> {
    let (key, value) = match word.split_once('=') {
        Some((key, value)) => (key, Some(value)),
        None => (word, None),
    };
    let flag = match (key, value) {
        ("debug", None) => &mut args.debug,
        ("use_first_pass", None) => &mut args.use_first_pass,
        ("try_first_pass", None) => &mut args.try_first_pass,
        ("use_authtok", None) => &mut args.use_authtok,
        ("ignore_unknown_user", None) => &mut args.ignore_unknown_user,
        ("ignore_authinfo_unavail", None) => &mut args.ignore_authinfo_unavail,
        ("nodelay", None) => &mut args.nodelay,
        ("silent", None) => &mut args.silent,
        ("no_lock_message", None) => &mut args.no_lock_message,
        ("socket", Some(path)) => {
            args.socket = parse_socket(path)?;
            return Ok(());
        }
        ("timeout", Some(secs)) => {
            args.timeout = parse_timeout(secs)?;
            return Ok(());
        }
        ("fail_delay", Some(ms)) => {
            args.fail_delay = parse_fail_delay(ms)?;
            return Ok(());
        }
        ("retry", Some(n)) => {
            args.retry = parse_retry(n)?;
            return Ok(());
        }
        (
            "debug"
            | "use_first_pass"
            | "try_first_pass"
            | "use_authtok"
            | "ignore_unknown_user"
            | "ignore_authinfo_unavail"
            | "nodelay"
            | "silent"
            | "no_lock_message",
            Some(_),
        ) => return Err(format!("ignoring {word:?}: {key} takes no value")),
        ("socket" | "timeout" | "fail_delay" | "retry", None) => {
            return Err(format!("ignoring {word:?}: expected {key}=VALUE"));
        }
        _ => return Err(format!("ignoring unknown argument {word:?}")),
    };
    *flag = true;
    Ok(())
}

fn parse_socket(path: &str) -> Result<PathBuf, String> {
    // A relative path would be resolved against whatever directory sshd or a screen locker
    // happens to run in: refuse it rather than talk to a socket someone else placed there.
    if path.starts_with('/') {
        Ok(PathBuf::from(path))
    } else {
        Err(format!(
            "ignoring socket={path:?}: the path must be absolute; using {DEFAULT_PAM_SOCKET}"
        ))
    }
}

fn parse_timeout(secs: &str) -> Result<Duration, String> {
    match secs.parse::<u64>() {
        Ok(n) if TIMEOUT_RANGE_SECS.contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(format!(
            "ignoring timeout={secs:?}: expected whole seconds from {} to {}; using {} s",
            TIMEOUT_RANGE_SECS.start(),
            TIMEOUT_RANGE_SECS.end(),
            DEFAULT_TIMEOUT.as_secs()
        )),
    }
}

fn parse_fail_delay(ms: &str) -> Result<Duration, String> {
    match ms.parse::<u64>() {
        Ok(n) if n <= MAX_FAIL_DELAY_MS => Ok(Duration::from_millis(n)),
        _ => Err(format!(
            "ignoring fail_delay={ms:?}: expected milliseconds from 0 to {MAX_FAIL_DELAY_MS}; \
             using {} ms",
            DEFAULT_FAIL_DELAY.as_millis()
        )),
    }
}

fn parse_retry(n: &str) -> Result<u32, String> {
    match n.parse::<u32>() {
        Ok(n) if RETRY_RANGE.contains(&n) => Ok(n),
        _ => Err(format!(
            "ignoring retry={n:?}: expected a count from {} to {}; using {DEFAULT_RETRY}",
            RETRY_RANGE.start(),
            RETRY_RANGE.end()
        )),
    }
}

#[cfg(test)]
mod tests;
