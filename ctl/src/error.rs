//! Every way credctl can fail, and the exit status each one maps to (DESIGN.md §9):
//! 0 done, 1 refused or failed, 2 usage error, 3 an integrity finding (`check`, `audit verify`).

use std::io;
use std::path::PathBuf;
use std::time::Duration;

use credd_proto::{ErrorKind, ProtoError};

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// A command line clap accepted but that makes no sense, caught before connecting.
    #[error("{0}")]
    Usage(String),

    /// `--password-stdin` was given something that cannot be a password.
    #[error("{0}")]
    BadPassword(&'static str),

    #[error("cannot read the password from standard input: {}", os_message(.0))]
    Stdin(#[source] io::Error),

    /// Connecting failed: the daemon is down, the path is wrong, or we may not use the socket.
    #[error("cannot reach credd at {}: {}{}", .socket.display(), os_message(.source), unreachable_hint(.source))]
    Unreachable {
        socket: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("credd at {} did not answer within {} s (is credd running?)", .socket.display(), .timeout.as_secs())]
    Timeout { socket: PathBuf, timeout: Duration },

    /// The connection broke or carried something we cannot read, after connecting.
    #[error("talking to credd at {}: {source}", .socket.display())]
    Protocol {
        socket: PathBuf,
        #[source]
        source: ProtoError,
    },

    /// The daemon refused or failed the request; its message is meant for humans.
    #[error("{message}")]
    Daemon { kind: ErrorKind, message: String },

    #[error("no such user: {0}")]
    UnknownUser(String),

    #[error("credd is busy; try again later")]
    Busy,

    #[error("credd is refusing requests at this rate; try again later")]
    RateLimited,

    /// `reset` refused by `[codes] per_account_per_hour` or `per_admin_per_hour`.
    #[error("reset refused: too many resets (rate limit); see credd's log")]
    ResetRateLimited,

    /// A reply of the wrong type for the request: a daemon from another release or a bug.
    #[error("unexpected reply from credd: {0}")]
    Unexpected(String),

    /// A listing (`user list`, `status`, `sessions`, `audit`) that ended badly, as reported by
    /// `Client::call_stream`.
    #[error("{command} failed: {detail}")]
    Listing {
        command: &'static str,
        detail: String,
    },

    #[error("cannot write output: {}", os_message(.0))]
    Output(#[source] io::Error),

    /// The OS random generator failed, so no request id could be made for an administrative
    /// action; nothing was sent.
    #[error("cannot make a request id: {0}")]
    RequestId(String),

    /// `backup` or `restore`: a file could not be created, written or read.
    #[error("{}: {}", .path.display(), os_message(.source))]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `restore` refused: credd is running, or the copy is not a sound credd database.
    #[error("restore refused: {0}")]
    Restore(String),

    /// `check` or `audit verify` found a problem; the report is on standard output.
    #[error("{0}")]
    Integrity(String),

    /// `reset` succeeded but its code could not be written: nobody has it. Unlike [`Output`]
    /// this is a failure even when the reader went away.
    ///
    /// [`Output`]: CtlError::Output
    #[error("the reset was done but its code could not be written: {}; reset again", os_message(.0))]
    CodeLost(#[source] io::Error),

    /// `import`: the file could not be opened or read (not a problem with its content).
    #[error("cannot read {name}: {}", os_message(.source))]
    Input {
        name: String,
        #[source]
        source: io::Error,
    },

    /// `import`: problems with the file, found by credctl or by credd; each was printed on
    /// standard error as `FILE:LINE: field: message` before this line. Nothing was changed.
    #[error("import refused: {} in {file}; nothing was changed", problem_count(.problems, .at_least))]
    ImportRefused {
        file: String,
        problems: u64,
        /// credd found more than it sent.
        at_least: bool,
    },

    /// `import`: committing would exceed the reset rate limits (`[codes]`); nothing was changed.
    #[error(
        "import refused: the reset rows exceed the reset rate limits; add --allow-bulk to \
         override (audited)"
    )]
    ImportRateLimited,

    /// `import --codes-out`: the file cannot be created. It is never overwritten, so an existing
    /// one is refused too. Nothing was sent.
    #[error("cannot create the codes file {}: {}{}", .path.display(), os_message(.source), codes_file_hint(.source))]
    CodesFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// `import` was done, but not every code reached the codes file: those accounts have a
    /// code nobody knows. Like [`CodeLost`], a failure whoever closed what.
    ///
    /// [`CodeLost`]: CtlError::CodeLost
    #[error(
        "the import was done but only {written} of its {expected} codes were written to \
         {codes_out}: {detail}; reset the accounts missing from it again"
    )]
    ImportCodesLost {
        codes_out: String,
        written: u64,
        expected: u64,
        detail: String,
    },

    /// `import --lock-shadow`: refused before anything was sent (not root, not /etc/shadow), or
    /// entries of /etc/shadow that could not be locked after the import, which stands.
    #[error("{0}")]
    LockShadow(String),
}

impl CtlError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CtlError::Usage(_) | CtlError::BadPassword(_) => 2,
            CtlError::Stdin(_)
            | CtlError::Unreachable { .. }
            | CtlError::Timeout { .. }
            | CtlError::Protocol { .. }
            | CtlError::Daemon { .. }
            | CtlError::UnknownUser(_)
            | CtlError::Busy
            | CtlError::RateLimited
            | CtlError::ResetRateLimited
            | CtlError::Unexpected(_)
            | CtlError::Listing { .. }
            | CtlError::Output(_)
            | CtlError::RequestId(_)
            | CtlError::CodeLost(_)
            | CtlError::Input { .. }
            | CtlError::ImportRefused { .. }
            | CtlError::ImportRateLimited
            | CtlError::CodesFile { .. }
            | CtlError::ImportCodesLost { .. }
            | CtlError::LockShadow(_)
            | CtlError::File { .. }
            | CtlError::Restore(_) => 1,
            CtlError::Integrity(_) => 3,
        }
    }

    /// Standard output was closed by its reader (`credctl user list | head`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, CtlError::Output(e) if e.kind() == io::ErrorKind::BrokenPipe)
    }

    /// Classifies a failure of `Client::connect`.
    pub fn connect(socket: PathBuf, timeout: Duration, err: ProtoError) -> Self {
        match err {
            ProtoError::Io(source) => CtlError::Unreachable { socket, source },
            ProtoError::Timeout => CtlError::Timeout { socket, timeout },
            source => CtlError::Protocol { socket, source },
        }
    }

    /// Classifies a failure of `Client::call` on an established connection.
    pub fn call(socket: PathBuf, timeout: Duration, err: ProtoError) -> Self {
        match err {
            ProtoError::Timeout => CtlError::Timeout { socket, timeout },
            source => CtlError::Protocol { socket, source },
        }
    }
}

/// "No such file or directory" rather than "No such file or directory (os error 2)".
pub fn os_message(err: &io::Error) -> String {
    let text = err.to_string();
    match (err.raw_os_error(), text.rfind(" (os error ")) {
        (Some(_), Some(at)) => text[..at].to_string(),
        _ => text,
    }
}

/// "1 problem", "3 problems", "at least 100 problems".
fn problem_count(count: &u64, at_least: &bool) -> String {
    let plural = if *count == 1 { "" } else { "s" };
    let at_least = if *at_least { "at least " } else { "" };
    format!("{at_least}{count} problem{plural}")
}

fn codes_file_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::AlreadyExists => " (codes never overwrite a file; name a new one)",
        _ => "",
    }
}

fn unreachable_hint(err: &io::Error) -> &'static str {
    match err.kind() {
        io::ErrorKind::PermissionDenied => {
            " (credctl needs root or membership of credd's admin group)"
        }
        io::ErrorKind::InvalidInput => "",
        _ => " (is credd running?)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock() -> PathBuf {
        PathBuf::from("/run/credd/admin.sock")
    }

    const T: Duration = Duration::from_secs(30);

    #[test]
    fn exit_codes() {
        let cases: Vec<(CtlError, u8)> = vec![
            (CtlError::Usage("invalid user name".into()), 2),
            (CtlError::BadPassword("the password is empty"), 2),
            (CtlError::Stdin(io::Error::other("x")), 1),
            (
                CtlError::connect(sock(), T, ProtoError::Io(io::Error::from_raw_os_error(2))),
                1,
            ),
            (CtlError::connect(sock(), T, ProtoError::Timeout), 1),
            (CtlError::call(sock(), T, ProtoError::Closed), 1),
            (
                CtlError::Daemon {
                    kind: ErrorKind::NotPermitted,
                    message: "not permitted".into(),
                },
                1,
            ),
            (
                CtlError::Daemon {
                    kind: ErrorKind::AlreadyExists,
                    message: "exists".into(),
                },
                1,
            ),
            (CtlError::UnknownUser("x".into()), 1),
            (CtlError::Busy, 1),
            (CtlError::RateLimited, 1),
            (CtlError::ResetRateLimited, 1),
            (CtlError::Unexpected("Pong".into()), 1),
            (
                CtlError::Listing {
                    command: "status",
                    detail: "cut short".into(),
                },
                1,
            ),
            (
                CtlError::Output(io::Error::from(io::ErrorKind::BrokenPipe)),
                1,
            ),
            (
                CtlError::CodeLost(io::Error::from(io::ErrorKind::BrokenPipe)),
                1,
            ),
            (CtlError::RequestId("no entropy".into()), 1),
            (
                CtlError::Input {
                    name: "users.csv".into(),
                    source: io::Error::from_raw_os_error(2),
                },
                1,
            ),
            (
                CtlError::ImportRefused {
                    file: "users.csv".into(),
                    problems: 3,
                    at_least: false,
                },
                1,
            ),
            (CtlError::ImportRateLimited, 1),
            (
                CtlError::CodesFile {
                    path: "codes.csv".into(),
                    source: io::Error::from_raw_os_error(17),
                },
                1,
            ),
            (
                CtlError::ImportCodesLost {
                    codes_out: "codes.csv".into(),
                    written: 1,
                    expected: 2,
                    detail: "No space left on device".into(),
                },
                1,
            ),
            (
                CtlError::Integrity("audit chain broken at row 7: mac mismatch".into()),
                3,
            ),
        ];
        for (err, code) in cases {
            assert_eq!(err.exit_code(), code, "{err:?}");
        }
    }

    #[test]
    fn unreachable_daemon_names_the_socket_and_suggests_a_cause() {
        let err = CtlError::connect(sock(), T, ProtoError::Io(io::Error::from_raw_os_error(2)));
        assert_eq!(
            err.to_string(),
            "cannot reach credd at /run/credd/admin.sock: No such file or directory (is credd running?)"
        );
        let err = CtlError::connect(sock(), T, ProtoError::Io(io::Error::from_raw_os_error(13)));
        assert_eq!(
            err.to_string(),
            "cannot reach credd at /run/credd/admin.sock: Permission denied \
             (credctl needs root or membership of credd's admin group)"
        );
        let err = CtlError::connect(sock(), T, ProtoError::Timeout);
        assert_eq!(
            err.to_string(),
            "credd at /run/credd/admin.sock did not answer within 30 s (is credd running?)"
        );
    }

    #[test]
    fn daemon_errors_print_only_their_message() {
        let err = CtlError::Daemon {
            kind: ErrorKind::NotFound,
            message: "no such user: alice".into(),
        };
        assert_eq!(err.to_string(), "no such user: alice");
    }

    #[test]
    fn reset_rate_limit_points_at_the_log() {
        assert_eq!(
            CtlError::ResetRateLimited.to_string(),
            "reset refused: too many resets (rate limit); see credd's log"
        );
    }

    #[test]
    fn listing_failures_name_the_command() {
        let err = CtlError::Listing {
            command: "status",
            detail: "listing announced 3 rows but carried 2".into(),
        };
        assert_eq!(
            err.to_string(),
            "status failed: listing announced 3 rows but carried 2"
        );
    }

    #[test]
    fn import_messages() {
        let refused = |problems, at_least| CtlError::ImportRefused {
            file: "users.csv".into(),
            problems,
            at_least,
        };
        assert_eq!(
            refused(1, false).to_string(),
            "import refused: 1 problem in users.csv; nothing was changed"
        );
        assert_eq!(
            refused(250, false).to_string(),
            "import refused: 250 problems in users.csv; nothing was changed"
        );
        assert_eq!(
            refused(100, true).to_string(),
            "import refused: at least 100 problems in users.csv; nothing was changed"
        );
        assert_eq!(
            CtlError::ImportRateLimited.to_string(),
            "import refused: the reset rows exceed the reset rate limits; add --allow-bulk to \
             override (audited)"
        );
        let exists = CtlError::CodesFile {
            path: "/root/codes.csv".into(),
            source: io::Error::from_raw_os_error(17),
        };
        assert_eq!(
            exists.to_string(),
            "cannot create the codes file /root/codes.csv: File exists (codes never overwrite a \
             file; name a new one)"
        );
        let input = CtlError::Input {
            name: "users.csv".into(),
            source: io::Error::from_raw_os_error(2),
        };
        assert_eq!(
            input.to_string(),
            "cannot read users.csv: No such file or directory"
        );
        let lost = CtlError::ImportCodesLost {
            codes_out: "codes.csv".into(),
            written: 1,
            expected: 2,
            detail: "No space left on device".into(),
        };
        assert_eq!(
            lost.to_string(),
            "the import was done but only 1 of its 2 codes were written to codes.csv: No space \
             left on device; reset the accounts missing from it again"
        );
    }

    #[test]
    fn messages_are_one_line() {
        let err = CtlError::call(sock(), T, ProtoError::Closed);
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn only_a_closed_stdout_counts_as_broken_pipe() {
        assert!(CtlError::Output(io::Error::from(io::ErrorKind::BrokenPipe)).is_broken_pipe());
        assert!(!CtlError::Output(io::Error::from_raw_os_error(28)).is_broken_pipe());
        assert!(!CtlError::Busy.is_broken_pipe());
        // A reset's code that never reached anyone is a failure, whoever closed the pipe.
        let lost = CtlError::CodeLost(io::Error::from_raw_os_error(32));
        assert!(!lost.is_broken_pipe());
        assert_eq!(
            lost.to_string(),
            "the reset was done but its code could not be written: Broken pipe; reset again"
        );
    }
}
