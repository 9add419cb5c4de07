//! The credential store as an interface: the daemon's transactions, one method each.
//!
//! Each method is one transaction of the daemon, not a table access: `begin_attempt` reads the
//! lock, counts failures and reservations and reserves the attempt in one go, so a backend can
//! make it one round trip (a statement, a stored function) and a caller cannot split it. Policy is
//! decided outside: the handlers pass a [`Policy`] or a precomputed digest in and get records out
//! ([`records`]). A backend writes the audit row of every change in the change's own transaction
//! and publishes it to syslog only after that transaction commits; the SQLite backend does it in
//! one place (`sqlite/audited.rs`), and a second backend must keep the same rule.
//!
//! The families below are separate traits so each backend file implements one of them; [`Store`]
//! is all of them plus what the daemon needs to run a backend. Every method that reaches the
//! database takes `&mut self`: a remote backend's client needs it, and the daemon holds the store
//! behind one lock anyway. See docs/architecture.md#store for which methods a remote backend makes
//! expensive and why the boundary sits here.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::crypto::hashing::Hasher;
use crate::error::Result;
use crate::policy::lockout::{Lock, Policy};

pub mod records;
pub mod sqlite;

pub use records::*;

/// A write that the store refused without changing anything, or what it produced.
pub type Write<T> = std::result::Result<T, WriteConflict>;

/// Logins: an attempt is reserved before any hashing, then settled (success, failure, or never
/// verified); and the locks, set by failures or by an administrator.
pub trait Lockout {
    /// The check before hashing, and the reservation of this attempt, in one transaction: N
    /// parallel attempts see each other's reservations, so at most `deny` are ever verified.
    fn begin_attempt(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
        source: &AttemptSource<'_>,
    ) -> Result<Begin>;

    /// The password was right. Clears the failure count, unless a lock was set meanwhile by a
    /// parallel failing attempt: then the account is locked and the success must not count.
    ///
    /// The login's audit row and the upgrade of the stored hash (a crypt(3) hash taken over from
    /// a shadow file, or a weaker PBKDF2 one) go into the same transaction: the upgrade is never
    /// recorded without the login that made it, nor the login without its upgrade.
    fn attempt_succeeded(
        &mut self,
        user: &str,
        now: i64,
        success: &Success<'_>,
    ) -> Result<Succeeded>;

    /// The password was wrong: the reservation stands as the failure; lock when the window is
    /// full. Returns the lock this failure set, if any.
    fn attempt_failed(
        &mut self,
        user: &str,
        root_account: bool,
        policy: &Policy,
        now: i64,
    ) -> Result<Option<Lock>>;

    /// Verification never ran (hashing pool busy): the attempt must not count.
    fn cancel_attempt(&mut self, reservation: i64) -> Result<()>;

    /// The lock in force for `user` now, clearing an expired one (acct_mgmt's check).
    fn current_lock(&mut self, user: &str, now: i64) -> Result<Option<Option<i64>>>;

    /// Deletes the failure count and a failures lock (not an administrative one).
    fn clear_failures(&mut self, user: &str) -> Result<()>;

    /// Whether an administrative lock is in force (it blocks even a valid reset code).
    fn admin_locked(&mut self, user: &str) -> Result<bool>;

    /// An administrative lock: replaces any failures lock, never lifts by time, and revokes the
    /// account's sessions.
    fn lock_account(
        &mut self,
        user: &str,
        reason: Option<&str>,
        by_uid: u32,
        now: i64,
    ) -> Result<Write<Vec<RevokedSession>>>;

    /// Lifts any lock and clears the failure count. `false`: there was nothing to lift.
    fn unlock_account(&mut self, user: &str, by_uid: u32, now: i64) -> Result<Write<bool>>;

    /// Failures in the window, the lock (as stored, even if its time is up) and the last failure.
    fn lockout_state(&mut self, user: &str, policy: &Policy, now: i64) -> Result<LockoutState>;

    /// Accounts with a lock or with failures since `window_start`, by name, paged like
    /// [`Accounts::accounts_page`].
    fn troubled_accounts_page(
        &mut self,
        after: Option<&str>,
        window_start: i64,
        limit: usize,
    ) -> Result<Vec<Account>>;
}

/// Accounts: read, listed, added, removed, disabled, their password set by an administrator.
pub trait Accounts {
    fn account(&mut self, name: &str) -> Result<Option<Account>>;

    /// The account whose stored uid is `uid` (uids are unique in the store).
    fn account_by_uid(&mut self, uid: u32) -> Result<Option<Account>>;

    /// Up to `limit` accounts whose names sort after `after`: listings page through the table
    /// so the store lock is never held while a slow client reads.
    fn accounts_page(&mut self, after: Option<&str>, limit: usize) -> Result<Vec<Account>>;

    /// Adds an account; [`WriteConflict::NameTaken`] or [`WriteConflict::UidTaken`] changes
    /// nothing.
    fn insert_account(
        &mut self,
        name: &str,
        uid: Option<u32>,
        hash: Option<&str>,
        must_change: bool,
        actor_uid: u32,
    ) -> Result<Write<Account>>;

    /// Removes an account with everything that hangs off it (failures, locks, codes, sessions).
    fn remove_account(&mut self, name: &str, actor_uid: u32) -> Result<Write<()>>;

    fn set_disabled(&mut self, name: &str, disabled: bool, actor_uid: u32) -> Result<Write<()>>;

    /// An administrator sets the password: any pending reset code is void and the account's
    /// sessions are revoked, since the credential changed.
    fn set_hash(
        &mut self,
        name: &str,
        hash: &str,
        must_change: bool,
        actor_uid: u32,
    ) -> Result<Write<Vec<RevokedSession>>>;

    /// Accounts per hash scheme, named as `user show` names them (`none` for accounts without a
    /// password, `unknown` for a string credd cannot read). The hashes are read one by one, only
    /// their scheme is kept, and each copy is wiped.
    fn accounts_per_scheme(&mut self) -> Result<Vec<(String, u64)>>;

    /// Every account whose stored hash asks for more work than `hasher`'s cost caps, with why,
    /// and the number of accounts looked at: for `credctl check` and the report at start.
    fn accounts_over_cap(&mut self, hasher: &Hasher) -> Result<(u64, Vec<(String, String)>)>;
}

/// Temporary access codes (issued by a reset, rejected, expired) and password changes.
pub trait Codes {
    fn code_of(&mut self, user: &str) -> Result<Option<CodeRow>>;

    /// Resets issued for `user`, and by `admin_uid`, since `since` (rate limits; import rows
    /// count too, as they are audited the same way).
    fn resets_since(&mut self, user: &str, admin_uid: u32, since: i64) -> Result<(u32, u32)>;

    /// One transaction: the new code replaces any previous one, the password is invalidated
    /// (unless kept), must-change is set, locks and failures are cleared, sessions are revoked.
    fn issue_reset(&mut self, order: &ResetOrder<'_>) -> Result<Write<Vec<RevokedSession>>>;

    /// A wrong code: counts the attempt and burns the code at `max_attempts`. Returns whether
    /// it burned. `digest`: the code that was checked; a code that replaced it meanwhile is not
    /// charged.
    fn code_rejected(
        &mut self,
        user: &str,
        digest: &[u8],
        max_attempts: u32,
        peer_uid: u32,
        now: i64,
    ) -> Result<bool>;

    /// Deletes every expired code, with an audit row each. Returns how many.
    fn purge_expired_codes(&mut self, now: i64) -> Result<usize>;

    /// A verified password change: new hash, must-change cleared, the code consumed (if the
    /// change was made with one), failures and failures-locks cleared, other sessions revoked.
    ///
    /// Only if nothing changed the account's credentials since the old secret was proven: the
    /// account must still be at `change.generation`, and a change made with a code must delete
    /// exactly that code (by its digest). Otherwise [`WriteConflict::Changed`] and nothing is
    /// written: a reset issued meanwhile is never undone, and one code redeems one change.
    fn change_password(
        &mut self,
        change: &PasswordChange<'_>,
    ) -> Result<Write<Vec<RevokedSession>>>;
}

/// The session registry: what PAM opened, for revocation after a credential change.
pub trait Sessions {
    /// Registers a session; [`WriteConflict::NotFound`] for a user the store does not hold.
    fn open_session(&mut self, s: &NewSession<'_>) -> Result<Write<i64>>;

    /// Removes the session `by` opened for `user` (the same process closes it, as PAM requires;
    /// failing that, the same audit session). Returns whether one was found.
    fn close_session(&mut self, user: &str, by: &OpenedBy, now: i64) -> Result<bool>;

    /// Forgets sessions whose process is gone (or whose pid now belongs to another process):
    /// logins that ended without close_session, e.g. killed. Returns how many.
    fn prune_sessions(
        &mut self,
        alive: &dyn Fn(i32, Option<u64>) -> bool,
        now: i64,
    ) -> Result<usize>;

    /// Sessions (of `user`, or all) with ids above `after`, for streaming.
    fn sessions_page(
        &mut self,
        user: Option<&str>,
        after: i64,
        limit: usize,
    ) -> Result<Vec<SessionRecord>>;
}

/// Bulk imports: validated against a snapshot of the accounts, then applied in one transaction.
pub trait Imports {
    /// Every account's name and uid, for validating an import's rows before any write.
    fn directory(&mut self) -> Result<Directory>;

    /// Resets per account since `since` (for the per-account limit of a bulk reset).
    fn resets_per_account_since(&mut self, since: i64) -> Result<HashMap<String, u32>>;

    /// Applies every row or none, with one audit row per account and one summary row (the only
    /// one published to syslog). Returns the sessions the rows revoked.
    fn apply_import(
        &mut self,
        run: &ImportRun<'_>,
        rows: &[(u64, Planned)],
    ) -> Result<Vec<RevokedSession>>;
}

/// The audit trail: the HMAC chain's rows, written and read.
pub trait AuditTrail {
    /// Rows queued by the audit writer, in one transaction: one fsync for a whole batch.
    fn write_deferred(&mut self, items: &[Deferred]) -> Result<()>;

    fn audit_verify(&mut self) -> Result<credd_proto::AuditReport>;

    /// The chain's head: its sequence number and MAC.
    fn audit_head(&mut self) -> Result<(u64, String)>;

    /// Up to `limit` rows after `after_seq`, of `user` or all, since `since` or ever.
    fn audit_page(
        &mut self,
        user: Option<&str>,
        since: Option<i64>,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<credd_proto::AuditEntry>>;
}

/// What the detectors keep in the store (docs/alerts.md).
pub trait Alerts {
    /// Whether a successful login of `user` came from `source` since `since`; `None` when none
    /// came from anywhere (nothing to compare a code's source with).
    fn login_source_known(&mut self, user: &str, source: &str, since: i64) -> Result<Option<bool>>;

    /// The event name of the alert whose audit event id is `id`.
    fn alert_event(&mut self, id: &str) -> Result<Option<String>>;
}

/// Hashes sealed under the pepper key (docs/pepper.md).
pub trait Pepper {
    /// How many stored hashes each pepper key id sealed.
    fn pepper_ids(&mut self) -> Result<BTreeMap<String, u64>>;

    /// Replaces every plain PBKDF2 hash by its peppered form, in one transaction with one audit
    /// row: a crash leaves all of them plain or all of them sealed. Returns how many changed.
    fn seal_hashes(&mut self, hasher: &Hasher) -> Result<u64>;
}

/// The store's own health.
pub trait Maintenance {
    /// A quick consistency check of the store: `None` when sound, else what it found.
    fn quick_check(&mut self) -> Result<Option<String>>;

    /// What the check at start found.
    fn damage(&self) -> Option<&str>;

    /// Drops what the backend keeps beside its tables that may still hold replaced hashes and
    /// consumed code digests (SQLite: the write-ahead log). At stop, and before a backup.
    fn checkpoint(&mut self) -> Result<()>;

    /// `credctl check`: a full integrity check, the schema, the audit chain and the modes of the
    /// files that hold secrets. Returns (checks run, findings).
    fn check(&mut self, audit_key_path: &Path) -> Result<(Vec<String>, Vec<String>)>;
}

/// A backend: every family, and what the daemon needs to run it.
pub trait Store:
    Lockout + Accounts + Codes + Sessions + Imports + AuditTrail + Alerts + Pepper + Maintenance + Send
{
    /// A read-only handle of its own, for the first reads of a login (off the writer's lock).
    fn reader(&self) -> Result<Box<dyn Reader>>;

    /// The embedded SQLite store, for what only a file can do (`credctl backup`); `None` for a
    /// backend that lives elsewhere.
    fn embedded(&mut self) -> Option<&mut sqlite::SqliteStore>;
}

/// The first reads of a login, each its own snapshot, without the writer's lock: a login that
/// will be refused (locked, no such account) never queues behind writes.
pub trait Reader: Send {
    /// The account, its pending code and its lock, in one read transaction.
    fn login_view(&mut self, name: &str, now: i64) -> Result<LoginView>;

    fn account(&mut self, name: &str) -> Result<Option<Account>>;

    /// The account whose stored uid is `uid`.
    fn account_of_uid(&mut self, uid: u32) -> Result<Option<Account>>;

    fn code_of(&mut self, user: &str) -> Result<Option<CodeRow>>;

    /// The account's lock as read; an expired lock is cleared only by the writer
    /// ([`Lockout::current_lock`]).
    fn lock(&mut self, user: &str, now: i64) -> Result<LockRead>;
}

#[cfg(test)]
pub(crate) mod tests {
    pub(crate) use super::sqlite::tests::temp_store;
}
