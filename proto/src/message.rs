use serde::{Deserialize, Serialize};

use crate::Secret;

/// The version this build speaks. The daemon also accepts [`OLDEST_SUPPORTED_VERSION`], so a
/// long-running screen locker keeps working across a package upgrade.
pub const PROTOCOL_VERSION: u32 = 1;
pub const OLDEST_SUPPORTED_VERSION: u32 = 1;

/// Everything a peer can ask of credd. Which socket may carry which request is the daemon's
/// decision (see `Request::is_admin`); the socket modes are only a second fence.
///
/// No `Debug` derive on purpose would be safer still, but every secret field is a [`Secret`]
/// whose `Debug` prints `***`, so deriving is harmless and keeps error messages useful.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Cheap liveness check; answered with [`Reply::Pong`].
    Ping,
    /// `pam_sm_authenticate`: verify a secret for a user.
    Authenticate(AuthRequest),
    /// `pam_sm_acct_mgmt`: may this account log in now?
    AccountCheck(AccountRequest),
    UserAdd {
        user: String,
        uid: Option<u32>,
        password: Option<Secret>,
        #[serde(default)]
        must_change: bool,
    },
    UserRemove {
        user: String,
    },
    /// Answered with a stream of [`Reply::Item`] frames and a final [`Reply::End`].
    UserList,
    UserShow {
        user: String,
    },
    UserSetDisabled {
        user: String,
        disabled: bool,
    },
    SetPassword {
        user: String,
        password: Secret,
        #[serde(default)]
        must_change: bool,
    },
    /// Lockout state. One account: [`Reply::Status`]; `None`: every account with failures in the
    /// window or a lock, as a stream of [`Reply::StatusItem`] and a final [`Reply::End`].
    Status {
        target: Option<Target>,
    },
    /// Administrative lock: never lifts by time, only by [`Request::Unlock`].
    Lock {
        target: Target,
        reason: Option<String>,
    },
    /// Lifts any lock and clears the failure count.
    Unlock {
        target: Target,
    },
    /// Daemon counters; answered with [`Reply::Daemon`].
    DaemonStatus,
    /// Administrator's reset: a temporary access code (and, unless `keep_password`, no password),
    /// must-change set, locks cleared, sessions revoked. Answered with [`Reply::ResetIssued`].
    Reset {
        target: Target,
        /// Code lifetime; `None`: `[codes] ttl`.
        ttl_seconds: Option<u64>,
        #[serde(default)]
        keep_password: bool,
    },
    /// `pam_sm_chauthtok` PAM_PRELIM_CHECK: is `old` (a password or a valid reset code) right, or
    /// may this caller change without it?
    ChangeCheck(ChangeRequest),
    /// `pam_sm_chauthtok` PAM_UPDATE_AUTHTOK: store `new` after checking `old` again and the
    /// quality rules; consumes a reset code, clears must-change, revokes other sessions.
    ChangePassword(ChangeRequest),
    /// `pam_sm_chauthtok` PAM_UPDATE_AUTHTOK, before the retype prompt: would `new` pass the
    /// quality rules for this account? Nothing is checked against the old secret, nothing is
    /// stored; `old` is ignored. `Ok`, or `Error` `invalid_argument` with the reason.
    ChangeQuality(ChangeRequest),
    /// `pam_sm_open_session`: register the calling process's session.
    SessionOpen(SessionRequest),
    /// `pam_sm_close_session`.
    SessionClose(SessionRequest),
    /// Registered sessions (all, or one user's), streamed as [`Reply::SessionItem`] and
    /// [`Reply::End`].
    Sessions {
        user: Option<String>,
    },
    /// Audit events (all, or about one user, since a time), streamed as [`Reply::AuditItem`] and
    /// [`Reply::End`], oldest first.
    Audit {
        user: Option<String>,
        /// RFC 3339.
        since: Option<String>,
    },
    /// Walks the audit chain; answered with [`Reply::AuditVerified`].
    AuditVerify,
    /// `credctl alerts ack ID`: records that an administrator has seen the alert whose audit
    /// event id is `id` (event `alert_acked`). `Ok`, or `not_found`.
    AlertAck {
        id: String,
    },
    /// Database integrity, schema, audit chain and file permissions; [`Reply::CheckReport`].
    Check,
    /// Starts a bulk import on this connection. Rows follow in [`Request::ImportRows`] frames and
    /// are staged in memory; nothing is written before [`Request::ImportCommit`], and a connection
    /// that closes before it leaves nothing behind.
    ImportBegin(ImportOptions),
    ImportRows {
        rows: Vec<ImportRow>,
    },
    /// The entries of a shadow file, for an import begun with [`ImportOptions::shadow`]; staged
    /// like [`Request::ImportRows`].
    ImportShadowRows {
        rows: Vec<ShadowRow>,
    },
    /// Validates every staged row against the store, then applies all of them in one transaction
    /// (or, for a dry run, reports what would happen). Answered with [`Reply::ImportProblems`], or
    /// with [`Reply::ImportSummary`] followed by one [`Reply::ImportCode`] per reset row and
    /// [`Reply::End`].
    ImportCommit,
    /// A consistent copy of the database, streamed as [`Reply::BackupChunk`]s and ended by
    /// [`Reply::BackupDone`]. Root only: the copy holds every password hash.
    Backup,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportOptions {
    pub dry_run: bool,
    /// Lets an import exceed the reset rate limits; audited as such.
    pub allow_bulk: bool,
    /// Code lifetime for reset rows without a `ttl`; `None`: `[codes] ttl`.
    pub ttl_seconds: Option<u64>,
    /// The file name, for the audit trail (`-` for stdin).
    pub source: String,
    /// Set for `credctl import --from-shadow`: the rows are [`ShadowRow`]s, sent with
    /// [`Request::ImportShadowRows`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowOptions>,
}

/// How credd treats the entries of a shadow file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowOptions {
    /// An entry for an account credd already holds replaces its hash (a `set-hash`); without it
    /// the entry is skipped and reported.
    pub replace: bool,
}

/// One usable entry of a shadow file, as credctl read it. Entries credctl skipped (locked, no
/// password, unknown scheme) are not sent; credd may skip more (an account it already holds, a
/// legacy scheme it refuses), each reported in [`ImportSummary::skipped`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShadowRow {
    pub line: u64,
    pub user: String,
    /// A crypt(3) string. A hash, never a password.
    pub password_hash: String,
    /// `sp_lstchg` is 0: the administrator forced a change at the next login.
    #[serde(default)]
    pub must_change: bool,
    /// `sp_expire` has passed: the account is taken over disabled.
    #[serde(default)]
    pub expired: bool,
}

/// An entry an import did not apply, and why (a shadow import only; a CSV import applies every
/// row or none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSkip {
    pub line: u64,
    pub user: String,
    pub reason: String,
}

/// What an import row asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImportAction {
    Add,
    Remove,
    Reset,
    Lock,
    Unlock,
    Disable,
    Enable,
    SetHash,
}

impl ImportAction {
    pub fn parse(s: &str) -> Option<ImportAction> {
        Some(match s {
            "add" => ImportAction::Add,
            "remove" => ImportAction::Remove,
            "reset" => ImportAction::Reset,
            "lock" => ImportAction::Lock,
            "unlock" => ImportAction::Unlock,
            "disable" => ImportAction::Disable,
            "enable" => ImportAction::Enable,
            "set-hash" => ImportAction::SetHash,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ImportAction::Add => "add",
            ImportAction::Remove => "remove",
            ImportAction::Reset => "reset",
            ImportAction::Lock => "lock",
            ImportAction::Unlock => "unlock",
            ImportAction::Disable => "disable",
            ImportAction::Enable => "enable",
            ImportAction::SetHash => "set-hash",
        }
    }
}

/// One CSV row, checked for syntax by credctl; `line` is its line in the file, for messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportRow {
    pub line: u64,
    pub user: String,
    pub action: ImportAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// A PHC `$pbkdf2-sha256$…` string or a crypt(3) string (`add`, `set-hash`). A hash, never a
    /// password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub must_change: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A problem with one row (or the whole file, line 0), named by line and field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportProblem {
    pub line: u64,
    pub field: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub dry_run: bool,
    pub rows: u64,
    /// Rows per action.
    pub actions: std::collections::BTreeMap<String, u64>,
    pub codes: u64,
    pub sessions_revoked: u64,
    /// Time the daemon spent validating and applying.
    pub milliseconds: u64,
    /// Entries of a shadow import that credd left out, by line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<ImportSkip>,
}

/// A reset row's code, for the `--codes-out` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedCode {
    pub user: String,
    pub code: Secret,
    pub expires_at: String,
}

/// A password change through PAM. `old` is the current password or a reset code; it may be
/// absent only when the caller's real uid is 0 (DESIGN.md §4).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeRequest {
    pub user: String,
    #[serde(default)]
    pub service: String,
    pub old: Option<Secret>,
    /// Absent for [`Request::ChangeCheck`].
    #[serde(default)]
    pub new: Option<Secret>,
}

/// A session as PAM reports it. The pid, its start time, the audit session id and loginuid come
/// from the kernel (SO_PEERCRED and /proc), not from this request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub user: String,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub tty: Option<String>,
    #[serde(default)]
    pub rhost: Option<String>,
}

/// How an administrator names an account: by name, or by its uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Name(String),
    Uid(u32),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Name(name) => f.write_str(name),
            Target::Uid(uid) => write!(f, "uid {uid}"),
        }
    }
}

impl Request {
    /// Requests that only the admin socket serves.
    pub fn is_admin(&self) -> bool {
        !matches!(
            self,
            Request::Ping
                | Request::Authenticate(_)
                | Request::AccountCheck(_)
                | Request::ChangeCheck(_)
                | Request::ChangePassword(_)
                | Request::ChangeQuality(_)
                | Request::SessionOpen(_)
                | Request::SessionClose(_)
        )
    }

    /// Stable name for logs and counters; never includes a field value.
    pub fn name(&self) -> &'static str {
        match self {
            Request::Ping => "ping",
            Request::Authenticate(_) => "authenticate",
            Request::AccountCheck(_) => "account_check",
            Request::UserAdd { .. } => "user_add",
            Request::UserRemove { .. } => "user_remove",
            Request::UserList => "user_list",
            Request::UserShow { .. } => "user_show",
            Request::UserSetDisabled { .. } => "user_set_disabled",
            Request::SetPassword { .. } => "set_password",
            Request::Status { .. } => "status",
            Request::Lock { .. } => "lock",
            Request::Unlock { .. } => "unlock",
            Request::DaemonStatus => "daemon_status",
            Request::Reset { .. } => "reset",
            Request::ChangeCheck(_) => "change_check",
            Request::ChangePassword(_) => "change_password",
            Request::ChangeQuality(_) => "change_quality",
            Request::SessionOpen(_) => "session_open",
            Request::SessionClose(_) => "session_close",
            Request::Sessions { .. } => "sessions",
            Request::Audit { .. } => "audit",
            Request::AuditVerify => "audit_verify",
            Request::AlertAck { .. } => "alert_ack",
            Request::Check => "check",
            Request::ImportBegin(_) => "import_begin",
            Request::ImportRows { .. } => "import_rows",
            Request::ImportShadowRows { .. } => "import_shadow_rows",
            Request::ImportCommit => "import_commit",
            Request::Backup => "backup",
        }
    }
}

/// PAM items forwarded with an authentication. `rhost`, `tty` and `ruser` are claims: the daemon
/// trusts them only from root peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRequest {
    pub user: String,
    pub secret: Secret,
    #[serde(default)]
    pub service: String,
    #[serde(default)]
    pub rhost: Option<String>,
    #[serde(default)]
    pub tty: Option<String>,
    #[serde(default)]
    pub ruser: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    pub user: String,
    #[serde(default)]
    pub service: String,
}

/// Typed outcomes. `Denied` and `UnknownUser` are chosen by the daemon so that a non-root peer can
/// never tell them apart for an account other than its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Denied,
    /// The account is locked; no password was checked. `until` is RFC 3339, or null when only an
    /// administrator unlocks. `unknown` is set when the name is no account this peer may use: it
    /// "locks" exactly like a real account, so that locking reveals nothing, and the module still
    /// returns `PAM_USER_UNKNOWN` for it.
    Locked {
        until: Option<String>,
        #[serde(default)]
        unknown: bool,
    },
    /// Too many attempts for this account, calling uid or remote host; no password was checked.
    /// `retry_after`: whole seconds until the bucket that refused holds a token again (absent
    /// from daemons older than the field, and for administrative limits).
    RateLimited {
        #[serde(default)]
        unknown: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u32>,
    },
    MustChange,
    Disabled,
    UnknownUser,
    /// The hashing pool is full; try again later. Never queued without bound.
    Busy,
    Error {
        kind: ErrorKind,
        message: String,
    },
    Pong {
        version: u32,
    },
    /// One account, for `user show` and `user add`. Boxed to keep every reply small.
    User(Box<UserInfo>),
    /// One row of a streamed listing.
    Item(Box<UserInfo>),
    /// Lockout state of one account.
    Status(Box<AccountStatus>),
    /// One row of a streamed status listing.
    StatusItem(Box<AccountStatus>),
    Daemon(Box<DaemonCounters>),
    /// A reset's code, shown once to the administrator.
    ResetIssued(Box<ResetIssued>),
    /// One row of a streamed session listing.
    SessionItem(Box<SessionInfo>),
    /// One row of a streamed audit listing.
    AuditItem(Box<AuditEntry>),
    AuditVerified(Box<AuditReport>),
    CheckReport(Box<CheckReport>),
    /// The import was refused: every problem found (up to a cap); nothing was changed.
    ImportProblems {
        problems: Vec<ImportProblem>,
        /// More problems than were sent.
        truncated: bool,
    },
    ImportSummary(Box<ImportSummary>),
    ImportCode(Box<IssuedCode>),
    /// Part of a backup, in order: up to 32 KiB of the database file, base64 (RFC 4648, padded).
    BackupChunk {
        data: String,
    },
    /// The end of a backup: its size and SHA-256 (lower-case hex), for the client to check what
    /// it wrote.
    BackupDone {
        bytes: u64,
        sha256: String,
    },
    /// End of a streamed listing, with the number of rows sent.
    End {
        count: u64,
    },
}

impl Reply {
    /// Stable name of the outcome for logs and messages; never includes a field value.
    pub fn name(&self) -> &'static str {
        match self {
            Reply::Ok => "ok",
            Reply::Denied => "denied",
            Reply::Locked { .. } => "locked",
            Reply::RateLimited { .. } => "rate_limited",
            Reply::MustChange => "must_change",
            Reply::Disabled => "disabled",
            Reply::UnknownUser => "unknown_user",
            Reply::Busy => "busy",
            Reply::Error { .. } => "error",
            Reply::Pong { .. } => "pong",
            Reply::User(_) => "user",
            Reply::Item(_) => "item",
            Reply::Status(_) => "status",
            Reply::StatusItem(_) => "status_item",
            Reply::Daemon(_) => "daemon",
            Reply::ResetIssued(_) => "reset_issued",
            Reply::SessionItem(_) => "session_item",
            Reply::AuditItem(_) => "audit_item",
            Reply::AuditVerified(_) => "audit_verified",
            Reply::CheckReport(_) => "check_report",
            Reply::ImportProblems { .. } => "import_problems",
            Reply::ImportSummary(_) => "import_summary",
            Reply::ImportCode(_) => "import_code",
            Reply::BackupChunk { .. } => "backup_chunk",
            Reply::BackupDone { .. } => "backup_done",
            Reply::End { .. } => "end",
        }
    }
}

/// Stable error kinds; scripts and credctl's exit codes depend on them, the message is for humans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    BadRequest,
    VersionMismatch,
    FrameTooLarge,
    NotPermitted,
    NotFound,
    AlreadyExists,
    InvalidArgument,
    Internal,
    /// The store cannot be written (disk full, I/O error, read-only): not a verdict on the
    /// credentials. The module answers `PAM_AUTHINFO_UNAVAIL`, so that the break-glass path of
    /// an unreachable daemon applies.
    Unavailable,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::VersionMismatch => "version_mismatch",
            ErrorKind::FrameTooLarge => "frame_too_large",
            ErrorKind::NotPermitted => "not_permitted",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Internal => "internal",
            ErrorKind::Unavailable => "unavailable",
        }
    }
}

/// What credd tells an administrator about an account. Never carries the hash itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    pub user: String,
    pub uid: Option<u32>,
    /// `pbkdf2-sha256`, `pbkdf2-sha256-peppered`, a crypt(3) scheme taken over from a shadow
    /// file (`yescrypt`, `sha512crypt`, …), `unknown` for a string credd cannot read, or null
    /// when no password is set.
    pub hash_scheme: Option<String>,
    /// PBKDF2's iteration count, or the `rounds` of sha512crypt and sha256crypt; null for schemes
    /// without one.
    pub iterations: Option<u32>,
    pub disabled: bool,
    pub must_change: bool,
    /// RFC 3339 UTC.
    pub created_at: String,
    pub updated_at: String,
}

/// Lockout state of one account, as `credctl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountStatus {
    pub user: String,
    pub uid: Option<u32>,
    pub locked: bool,
    /// Failed attempts inside `[lockout] fail_interval`.
    pub failures: u32,
    /// How the lock ends: `"time"`, `"administrator"`, or null when not locked.
    pub unlock: Option<String>,
    /// RFC 3339; null when not locked or when only an administrator unlocks.
    pub locked_until: Option<String>,
    pub locked_since: Option<String>,
    /// `"failures"` or `"administrator"`.
    pub lock_kind: Option<String>,
    pub lock_reason: Option<String>,
    pub last_failure: Option<FailureInfo>,
}

/// Where and when a failed attempt came from. `rhost`, `tty` and `service` are as the calling
/// program claimed them; `peer_uid` is from SO_PEERCRED.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureInfo {
    pub time: String,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub peer_uid: u32,
}

/// Daemon counters for `credctl status --daemon`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonCounters {
    pub uptime_seconds: u64,
    /// PBKDF2 verifications run, real and dummy (for unknown names) alike.
    pub verifications: u64,
    pub busy_replies: u64,
    pub locked_replies: u64,
    pub rate_limited_replies: u64,
    pub refused_peers: u64,
    pub dropped_syslog_events: u64,
    /// Refusal events not written because the state directory's volume was below
    /// `[audit] disk_reserve_mib` (absent from older daemons).
    #[serde(default)]
    pub dropped_audit_events: u64,
    /// Accounts per hash scheme (`pbkdf2-sha256`, `yescrypt`, …, `none` without a password):
    /// the progress of a migration from a shadow file.
    pub accounts_per_scheme: std::collections::BTreeMap<String, u64>,
}

/// The outcome of `credctl reset`. The code is shown once and stored only as a digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResetIssued {
    pub user: String,
    /// Grouped Crockford base32, e.g. `7KQ4-M2XD-9RTV-H3PE`.
    pub code: Secret,
    /// RFC 3339.
    pub expires_at: String,
    pub sessions_revoked: u64,
}

/// A registered login session, as `credctl sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    pub id: u64,
    pub user: String,
    pub service: String,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    /// The process that opened the session (SO_PEERCRED), and its start time in clock ticks since
    /// boot (/proc/PID/stat), which tells it apart from a later process with the same pid.
    pub pid: i32,
    pub pid_start: Option<u64>,
    /// Kernel audit session id and loginuid of that process; null when the kernel has none.
    pub audit_session: Option<u32>,
    pub loginuid: Option<u32>,
    pub opened_at: String,
    pub revoked_at: Option<String>,
    pub revoked_reason: Option<String>,
}

/// One audit event as stored. Never holds a secret, a code or a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub seq: u64,
    /// Unique event id; for an administrator's request, the id credctl sent and logged.
    pub id: String,
    /// RFC 3339.
    pub time: String,
    /// Stable event name (docs/audit.md).
    pub event: String,
    /// SO_PEERCRED uid of the caller; null for the daemon's own events.
    pub actor_uid: Option<u32>,
    pub user: Option<String>,
    pub service: Option<String>,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub outcome: String,
    pub detail: String,
}

/// The result of walking the audit chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    pub rows_checked: u64,
    /// Sequence number and MAC (hex) of the last row: compare with the collector's checkpoints.
    pub head_seq: u64,
    pub head_mac: String,
    /// The first row that does not match (edited, deleted or reordered), if any.
    pub first_bad_seq: Option<u64>,
    pub problem: Option<String>,
}

/// `credctl check`: each check run, and every finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub checks: Vec<String>,
    pub findings: Vec<String>,
}
