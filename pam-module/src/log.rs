//! Syslog lines in the Linux-PAM shape, `pam_credd(SERVICE:TYPE): message`.
//!
//! We never call `openlog`: the module runs inside sshd, login or a screen locker, and changing
//! the host program's ident or facility would outlive our hook. `syslog(3)` with an explicit
//! facility in the priority (`LOG_AUTHPRIV`) leaves the host's settings alone, as `pam_syslog` does.
//!
//! Nothing logged here may contain a password: callers pass user names, item values and error
//! descriptions only, and every line is stripped of control characters so a crafted user name or
//! host name cannot forge a second log line.

use std::ffi::CString;

#[cfg(test)]
use std::cell::RefCell;

/// Which PAM hook is logging; the second half of the `(SERVICE:TYPE)` tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    Auth,
    Setcred,
    Account,
    Session,
    Chauthtok,
}

impl HookKind {
    /// The names Linux-PAM itself uses in `pam_syslog` lines.
    pub fn as_str(self) -> &'static str {
        match self {
            HookKind::Auth => "auth",
            HookKind::Setcred => "setcred",
            HookKind::Account => "account",
            HookKind::Session => "session",
            HookKind::Chauthtok => "chauthtok",
        }
    }
}

/// Severity of a line. Errors are always written; debug lines only with the `debug` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Err,
    Debug,
}

impl Level {
    fn priority(self) -> libc::c_int {
        match self {
            Level::Err => libc::LOG_AUTHPRIV | libc::LOG_ERR,
            Level::Debug => libc::LOG_AUTHPRIV | libc::LOG_DEBUG,
        }
    }
}

enum Sink {
    Syslog,
    /// Unit tests read the lines back instead of writing to the host's syslog.
    #[cfg(test)]
    Memory(RefCell<Vec<(Level, String)>>),
}

pub struct Logger {
    tag: String,
    debug: bool,
    sink: Sink,
}

impl Logger {
    pub fn syslog(service: &str, kind: HookKind, debug: bool) -> Self {
        Logger {
            tag: tag(service, kind),
            debug,
            sink: Sink::Syslog,
        }
    }

    #[cfg(test)]
    pub fn memory(service: &str, kind: HookKind, debug: bool) -> Self {
        Logger {
            tag: tag(service, kind),
            debug,
            sink: Sink::Memory(RefCell::new(Vec::new())),
        }
    }

    /// Every line written so far (tests only).
    #[cfg(test)]
    pub fn lines(&self) -> Vec<(Level, String)> {
        match &self.sink {
            Sink::Memory(lines) => lines.borrow().clone(),
            Sink::Syslog => Vec::new(),
        }
    }

    pub fn debug_enabled(&self) -> bool {
        self.debug
    }

    /// Always written, at `LOG_ERR`: the daemon is unreachable, the protocol failed, the
    /// configuration in `/etc/pam.d` is wrong.
    pub fn error(&self, message: &str) {
        self.write(Level::Err, message);
    }

    /// Written only with the `debug` module argument.
    pub fn debug(&self, message: &str) {
        if self.debug {
            self.write(Level::Debug, message);
        }
    }

    fn write(&self, level: Level, message: &str) {
        let line = format!("{}: {}", self.tag, sanitize(message));
        match &self.sink {
            Sink::Syslog => {
                // sanitize() removed every NUL, so this cannot fail; if it somehow did, losing a
                // log line is better than panicking inside sshd.
                if let Ok(line) = CString::new(line) {
                    // SAFETY: the format is a constant "%s" and its one argument a valid C string,
                    // so syslog reads nothing beyond what we pass.
                    unsafe { libc::syslog(level.priority(), c"%s".as_ptr(), line.as_ptr()) };
                }
            }
            #[cfg(test)]
            Sink::Memory(lines) => lines.borrow_mut().push((level, line)),
        }
    }
}

fn tag(service: &str, kind: HookKind) -> String {
    let service = if service.is_empty() {
        "?".to_owned()
    } else {
        sanitize(service)
    };
    format!("pam_credd({service}:{})", kind.as_str())
}

/// Escapes control characters (newlines, NUL, escape sequences) and Unicode format and
/// separator characters (bidi overrides, zero-width characters, U+2028) so one call is one log
/// line that reads as it is.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if credd_proto::is_unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_the_linux_pam_tag() {
        let log = Logger::memory("sshd", HookKind::Auth, false);
        log.error("credd is unreachable");
        assert_eq!(
            log.lines(),
            [(
                Level::Err,
                "pam_credd(sshd:auth): credd is unreachable".to_owned()
            )]
        );
    }

    #[test]
    fn debug_lines_need_the_debug_argument() {
        let quiet = Logger::memory("login", HookKind::Account, false);
        quiet.debug("hidden");
        assert!(quiet.lines().is_empty());
        let loud = Logger::memory("login", HookKind::Account, true);
        loud.debug("shown");
        assert_eq!(
            loud.lines(),
            [(Level::Debug, "pam_credd(login:account): shown".to_owned())]
        );
    }

    #[test]
    fn control_characters_cannot_forge_a_line() {
        let log = Logger::memory("ss\nhd", HookKind::Auth, true);
        log.error("user a\nJan 1 00:00:00 host sshd: Accepted\0");
        let (_, line) = &log.lines()[0];
        assert!(!line.contains('\n') && !line.contains('\0'), "{line}");
        assert!(
            line.starts_with("pam_credd(ss\\nhd:auth): user a\\nJan"),
            "{line}"
        );
    }

    #[test]
    fn empty_service_is_shown_as_a_question_mark() {
        let log = Logger::memory("", HookKind::Session, false);
        log.error("x");
        assert_eq!(log.lines()[0].1, "pam_credd(?:session): x");
    }
}
