//! The records the store interface takes and returns: plain data, the same for every backend.
//!
//! Nothing here knows SQL. A backend maps these to its rows; the handlers and the policy see only
//! these.

use std::collections::HashMap;

use crate::audit::chain::{Event, QueuedEvent};
use crate::policy::codes::CodeDigest;
use crate::policy::lockout::Lock;

// Accounts and refusals.

/// One account as stored. The hash never leaves the daemon.
#[derive(Clone)]
pub struct Account {
    pub name: String,
    pub uid: Option<u32>,
    pub hash: Option<String>,
    pub disabled: bool,
    pub must_change: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Bumped by every change of the account's credentials: a password change or login proven
    /// against one generation is written only while it is still the account's.
    pub generation: i64,
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Account")
            .field("name", &self.name)
            .field("uid", &self.uid)
            .field("hash", &self.hash.as_ref().map(|_| "***"))
            .field("disabled", &self.disabled)
            .field("must_change", &self.must_change)
            .field("generation", &self.generation)
            .finish()
    }
}

/// Why a write was refused; the handlers turn these into typed replies.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteConflict {
    NameTaken,
    UidTaken(String),
    NotFound,
    /// The account's credentials changed after the secret was proven (a reset, another change):
    /// the write was refused and nothing was changed.
    Changed,
}

/// A row written after the reply, by the daemon's audit writer (see `Daemon::record`).
#[derive(Debug, Clone)]
pub enum Deferred {
    Event(QueuedEvent),
    LockedAttempt(LockedAttempt),
    /// A successful login's source, new to this run (alerts).
    LoginSource(LoginSource),
}

impl Deferred {
    pub fn name(&self) -> &'static str {
        match self {
            Deferred::Event(e) => e.name(),
            Deferred::LockedAttempt(_) => "failure row of a locked attempt",
            Deferred::LoginSource(_) => "source of a successful login",
        }
    }

    /// Rows that only record a refusal (no change of state goes with them): the ones a full
    /// disk may go without.
    pub fn is_refusal(&self) -> bool {
        match self {
            Deferred::Event(e) => matches!(
                e.name(),
                "peer_refused" | "rate_limited" | "login_failure" | "unknown_user"
            ),
            Deferred::LockedAttempt(_) => true,
            Deferred::LoginSource(_) => false,
        }
    }
}

/// A successful login's source, remembered per account for the detectors (docs/alerts.md).
#[derive(Debug, Clone)]
pub struct LoginSource {
    pub user: String,
    pub source: String,
    pub at: i64,
}

// Logins: an attempt reserved, then settled.

/// Where a failed attempt came from, for `credctl status` and the audit trail.
#[derive(Debug, Clone)]
pub struct AttemptSource<'a> {
    pub service: &'a str,
    pub rhost: Option<&'a str>,
    pub tty: Option<&'a str>,
    pub peer_uid: u32,
}

/// An attempt refused on a locked account, owned so that it can be written after the reply.
#[derive(Debug, Clone)]
pub struct LockedAttempt {
    pub user: String,
    pub at: i64,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub peer_uid: u32,
}

impl LockedAttempt {
    pub fn new(user: &str, at: i64, source: &AttemptSource<'_>) -> LockedAttempt {
        LockedAttempt {
            user: user.to_owned(),
            at,
            service: source.service.to_owned(),
            rhost: source.rhost.map(str::to_owned),
            tty: source.tty.map(str::to_owned),
            peer_uid: source.peer_uid,
        }
    }
}

/// The outcome of reserving an attempt, before any hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Verify the password; `reservation` is the failure row to cancel if verification never runs.
    Proceed {
        reservation: i64,
    },
    Locked {
        until: Option<i64>,
    },
}

/// A recorded failure, as `status` reports it.
#[derive(Debug, Clone)]
pub struct FailureRecord {
    pub time: i64,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub peer_uid: u32,
}

/// What a right password leads to, written with the success in one transaction.
#[derive(Debug, Default)]
pub struct Success<'a> {
    /// (stored hash, its replacement): a hash taken over from a shadow file, or one under weaker
    /// parameters than the policy, rehashed while the password was at hand.
    pub rehash: Option<(&'a str, &'a str)>,
    /// The audit row of the login this success decides.
    pub event: Option<&'a Event<'a>>,
    /// The account's generation when its password was read: the success counts only while the
    /// account is still there (a reset or a password change meanwhile makes the password that
    /// was verified a stale one). `None`: not checked.
    pub generation: Option<i64>,
}

/// The outcome of recording a right password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Succeeded {
    /// Recorded, with the audit row if one was given; `upgraded` when the hash was replaced.
    Recorded { upgraded: bool },
    /// Locked meanwhile by a parallel failing attempt: nothing was recorded or replaced.
    LockedMeanwhile { until: Option<i64> },
    /// The account's credentials changed after its password was read (a reset, a password
    /// change): the password verified is no longer the account's; nothing was recorded.
    ChangedMeanwhile,
}

/// Lockout state of one account.
#[derive(Debug, Clone)]
pub struct LockoutState {
    pub failures_in_window: u32,
    pub lock: Option<Lock>,
    pub last_failure: Option<FailureRecord>,
}

/// What a read of the lock says; an expired lock is cleared only by the writer's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRead {
    Locked { until: Option<i64> },
    Open,
    Expired,
}

/// An account's pending code and lock, as a login's first read saw them.
pub type LoginState = (Option<CodeRow>, LockRead);

/// The first reads of a root caller's login, taken in one read transaction: one snapshot, one
/// lock of the WAL index instead of three.
#[derive(Debug)]
pub struct LoginView {
    pub account: Option<Account>,
    /// The pending code and the lock of the account; `None` when there is no account.
    pub state: Option<LoginState>,
}

// Codes and password changes.

/// A stored code: never the code itself, only its digest.
#[derive(Debug, Clone)]
pub struct CodeRow {
    pub digest: Vec<u8>,
    pub expires_at: i64,
}

/// What `issue_reset` changes besides the code.
pub struct ResetOrder<'a> {
    pub user: &'a str,
    pub digest: &'a CodeDigest,
    pub expires_at: i64,
    pub keep_password: bool,
    pub admin_uid: u32,
    pub now: i64,
}

/// A password change through PAM (`by = "self"`, or `"root"` for a change without the old secret).
pub struct PasswordChange<'a> {
    pub user: &'a str,
    pub new_hash: &'a str,
    /// The account's generation when the old secret was proven.
    pub generation: i64,
    /// The digest of the code that proved it, for a change made with a reset code.
    pub code_digest: Option<&'a [u8]>,
    pub by: &'static str,
    pub service: &'a str,
    pub peer_uid: u32,
    pub except_audit_session: Option<u32>,
    pub now: i64,
}

// Sessions.

/// The process that opened a session, as the kernel describes it (SO_PEERCRED and /proc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenedBy {
    pub pid: i32,
    pub pid_start: Option<u64>,
    pub audit_session: Option<u32>,
    pub loginuid: Option<u32>,
}

/// A session that a change has just revoked; what termination needs to find its processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedSession {
    pub id: i64,
    pub user: String,
    /// The account's uid: only a login session of this uid may be ended (a session that
    /// `su USER` registered belongs to the login of whoever ran su).
    pub account_uid: Option<u32>,
    pub by: OpenedBy,
}

/// One row of the registry.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub id: i64,
    pub user: String,
    pub service: String,
    pub tty: Option<String>,
    pub rhost: Option<String>,
    pub by: OpenedBy,
    pub opened_at: i64,
    pub revoked_at: Option<i64>,
    pub revoked_reason: Option<String>,
}

/// What `open_session` records besides the process.
pub struct NewSession<'a> {
    pub user: &'a str,
    pub service: &'a str,
    pub tty: Option<&'a str>,
    pub rhost: Option<&'a str>,
    pub by: OpenedBy,
    pub now: i64,
}

// Imports.

/// One validated row, ready to apply.
pub enum Planned {
    Add {
        name: String,
        uid: Option<u32>,
        hash: Option<String>,
        must_change: bool,
        /// Taken over disabled (a shadow entry whose `sp_expire` has passed).
        disabled: bool,
    },
    Remove {
        name: String,
    },
    Reset {
        name: String,
        digest: CodeDigest,
        expires_at: i64,
    },
    Lock {
        name: String,
        reason: Option<String>,
    },
    Unlock {
        name: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    SetHash {
        name: String,
        hash: String,
        must_change: bool,
        /// Also disable the account (a shadow entry whose `sp_expire` has passed); `false`
        /// leaves the flag as it is.
        disable: bool,
    },
}

impl Planned {
    /// The action the row takes, for the summary's counts.
    pub fn action(&self) -> credd_proto::ImportAction {
        use credd_proto::ImportAction;
        match self {
            Planned::Add { .. } => ImportAction::Add,
            Planned::Remove { .. } => ImportAction::Remove,
            Planned::Reset { .. } => ImportAction::Reset,
            Planned::Lock { .. } => ImportAction::Lock,
            Planned::Unlock { .. } => ImportAction::Unlock,
            Planned::Disable { .. } => ImportAction::Disable,
            Planned::Enable { .. } => ImportAction::Enable,
            Planned::SetHash { .. } => ImportAction::SetHash,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Planned::Add { name, .. }
            | Planned::Remove { name }
            | Planned::Reset { name, .. }
            | Planned::Lock { name, .. }
            | Planned::Unlock { name }
            | Planned::Disable { name }
            | Planned::Enable { name }
            | Planned::SetHash { name, .. } => name,
        }
    }
}

/// What the whole import is, for its audit rows.
pub struct ImportRun<'a> {
    pub source: &'a str,
    pub admin_uid: u32,
    pub allow_bulk: bool,
    pub now: i64,
    /// Summary counts, already computed by the caller.
    pub summary: String,
}

/// Accounts as an import needs them: name → uid, and uid → name.
pub struct Directory {
    pub by_name: HashMap<String, Option<u32>>,
    pub by_uid: HashMap<u32, String>,
}
