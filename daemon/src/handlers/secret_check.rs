//! Checking a secret for an account: the reset code if one is pending, else the password, with the
//! lockout rules around it. Shared by authentication and by password changes (the old secret), so
//! a wrong old password in `passwd` counts toward the lock exactly like a wrong login.

use credd_proto::Secret;

use crate::audit::chain::Event;
use crate::handlers::context::Context;
use crate::handlers::reply::internal;
use crate::policy::codes::{self, CodeState};
use crate::policy::source::Source;
use crate::state::Daemon;
use crate::store::{Account, AttemptSource, Begin, CodeRow, Succeeded, Success};
use credd_proto::Reply;

/// The dummy verification hashes at most this many bytes of an over-long secret: its cost does not
/// depend on the length beyond HMAC's first block anyway.
const DUMMY_SECRET_BYTES: usize = 1024;

/// The outcome of checking a secret.
pub enum Checked {
    /// The account's password. `audited`: the login event given to [`Daemon::check_secret`]
    /// was written with the success.
    Password {
        audited: bool,
    },
    /// The pending reset code, by its digest (not consumed: a password change consumes it,
    /// deleting exactly this code).
    Code(Vec<u8>),
    /// The secret was right for the account as it was read, but its credentials changed before
    /// the success could be recorded (a reset, a password change): refused, not counted.
    Changed,
    Wrong,
    /// No secret was checked; `until` as the lock says.
    Locked(Option<i64>),
    Busy,
    Failed(Reply),
}

/// The outcome of one verification on the pool.
struct Verified {
    ok: bool,
    /// (old hash, new hash) when a success under weaker parameters, or with a crypt(3) hash
    /// taken over from a shadow file, was rehashed.
    rehashed: Option<(String, String)>,
    /// The stored hash asks for more work than `[hashing]`'s caps allow: it was not run (a dummy
    /// of the configured cost was), and this says why, for the audit trail.
    over_cap: Option<String>,
}

impl Daemon {
    /// `login`: the audit event of the login a right password makes, written in the transaction
    /// that records the success (and upgrades the hash); `None` outside a login (a password
    /// change checking the old password records its own events).
    // The attempt's parts are what the store calls need one by one; a struct would only rename them.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn check_secret(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        secret: Secret,
        source: &AttemptSource<'_>,
        now: i64,
        login: Option<&Event<'_>>,
        prefetched: Option<crate::store::LoginState>,
    ) -> Checked {
        let (code, lock) = match prefetched {
            Some((code, lock)) => (code, Some(lock)),
            None => match self.reader().code_of(&account.name) {
                Ok(code) => (code, None),
                Err(e) => return Checked::Failed(internal(e)),
            },
        };
        let secret = match (code, codes::normalize(secret.expose())) {
            (Some(code), Some(typed)) => {
                match self.check_code(ctx, account, &code, &typed, source, now) {
                    Some(outcome) => return outcome,
                    None => secret,
                }
            }
            _ => secret,
        };
        self.check_password(ctx, account, secret, source, now, login, lock)
    }

    /// A code-shaped secret while a reset code is pending. `None`: not a code after all — the
    /// account kept its password (`reset --keep-password`) and this may be it.
    ///
    /// Wrong codes count toward `[codes] max_attempts`, not toward the account lock; a failures
    /// lock does not block a valid code (the reset cleared it, and the code is the way back in),
    /// but an administrative lock set after the reset does.
    fn check_code(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        code: &CodeRow,
        typed: &str,
        source: &AttemptSource<'_>,
        now: i64,
    ) -> Option<Checked> {
        let peer = ctx.peer;
        let peer_uid = source.peer_uid;
        match self.store().admin_locked(&account.name) {
            Err(e) => return Some(Checked::Failed(internal(e))),
            Ok(true) => return Some(Checked::Locked(None)),
            Ok(false) => {}
        }
        // The same PBKDF2 work as a password check, so timing does not tell that a code is pending.
        if !self.dummy_verify(
            ctx,
            &peer.source(source.rhost),
            Secret::new(typed.to_owned()),
        ) {
            return Some(Checked::Busy);
        }
        let active = codes::state(code.expires_at, now) == CodeState::Active;
        // Codes are for login services, which run as root. A caller running as the user (a screen
        // locker) only ever authenticates, so a code would unlock it again and again without the
        // forced change that consumes it.
        if active && peer.is_root() && codes::matches(typed, &code.digest) {
            // A failures lock set after the reset must not stop the way back in (acct_mgmt would
            // refuse the locked account before the change); administrative locks stay.
            if let Err(e) = self.store().clear_failures(&account.name) {
                return Some(Checked::Failed(internal(e)));
            }
            return Some(Checked::Code(code.digest.clone()));
        }
        if active {
            // Counted even when the account kept its password (`reset --keep-password`), so that a
            // pending code burns after max_attempts whatever else the user types.
            let max = ctx.live.config.codes.max_attempts;
            if let Err(e) =
                self.store()
                    .code_rejected(&account.name, &code.digest, max, peer_uid, now)
            {
                return Some(Checked::Failed(internal(e)));
            }
        }
        // An account that kept its password may have typed it (code-shaped passwords exist).
        if account.hash.is_some() {
            return None;
        }
        Some(Checked::Wrong)
    }

    /// The password, with the lockout reservation around the verification (see `lockout`).
    #[allow(clippy::too_many_arguments)]
    fn check_password(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        secret: Secret,
        source: &AttemptSource<'_>,
        now: i64,
        login: Option<&Event<'_>>,
        lock: Option<crate::store::LockRead>,
    ) -> Checked {
        let peer = ctx.peer;
        // A locked account is answered from a read: no hashing and no fsync'ed write before the
        // reply (a guesser hammering a lock costs what the IPC costs). The refusal's failure row
        // follows through the deferred writer. A lock set after this read is still caught by
        // begin_attempt.
        let read = match lock {
            Some(lock) => Ok(lock),
            None => self.reader().lock(&account.name, now),
        };
        match read {
            Err(e) => return Checked::Failed(internal(e)),
            Ok(crate::store::LockRead::Locked { until }) => {
                self.record_locked_attempt(crate::store::LockedAttempt::new(
                    &account.name,
                    now,
                    source,
                ));
                return Checked::Locked(until);
            }
            // An expired lock is cleared by begin_attempt, in its transaction.
            Ok(_) => {}
        }
        let root_account = account.uid == Some(0);
        let begun =
            self.store()
                .begin_attempt(&account.name, root_account, &ctx.live.lockout, now, source);
        let reservation = match begun {
            Err(e) => return Checked::Failed(internal(e)),
            Ok(Begin::Locked { until }) => return Checked::Locked(until),
            Ok(Begin::Proceed { reservation }) => reservation,
        };
        let too_long = secret.len() > ctx.live.config.password.max_length;
        let stored = account.hash.clone().filter(|_| !too_long);
        let verified = self.verify(ctx, &peer.source(source.rhost), secret, stored);
        let now = crate::system::time::now_unix();
        let mut store = self.store();
        match verified {
            None => match store.cancel_attempt(reservation) {
                Err(e) => Checked::Failed(internal(e)),
                Ok(()) => Checked::Busy,
            },
            Some(Verified {
                ok: true, rehashed, ..
            }) => {
                // A disabled account's right password is no successful login: its hash is
                // upgraded at the first login that succeeds.
                let rehash = rehashed
                    .as_ref()
                    .filter(|_| !account.disabled)
                    .map(|(old, new)| (old.as_str(), new.as_str()));
                let success = Success {
                    rehash,
                    event: login,
                    generation: Some(account.generation),
                };
                match store.attempt_succeeded(&account.name, now, &success) {
                    Err(e) => Checked::Failed(internal(e)),
                    // Locked meanwhile by a parallel failing attempt: the success does not count,
                    // and the answer is the one a wrong guess got, so it confirms nothing to a
                    // guesser who sent several passwords at once.
                    Ok(Succeeded::LockedMeanwhile { .. }) => Checked::Wrong,
                    // Reset or changed meanwhile: the password verified is a stale one. Not a
                    // wrong guess, so the reservation does not count as a failure.
                    Ok(Succeeded::ChangedMeanwhile) => match store.cancel_attempt(reservation) {
                        Err(e) => Checked::Failed(internal(e)),
                        Ok(()) => Checked::Changed,
                    },
                    Ok(Succeeded::Recorded { .. }) => Checked::Password {
                        audited: login.is_some(),
                    },
                }
            }
            Some(Verified {
                ok: false,
                over_cap,
                ..
            }) => {
                // A hash over the cost caps fails like a wrong password (same answer, same dummy
                // work, counted toward the lock) and is audited, so an administrator learns
                // which account needs a new password.
                if let Some(why) = over_cap {
                    self.record(&Event {
                        name: "hash_over_cap",
                        actor_uid: Some(peer.uid),
                        target: Some(&account.name),
                        service: Some(source.service),
                        outcome: "refused",
                        detail: format!("{why}; not verified"),
                        ..Default::default()
                    });
                }
                // A lock this failure sets is audited (account_locked) in the same transaction.
                if let Err(e) =
                    store.attempt_failed(&account.name, root_account, &ctx.live.lockout, now)
                {
                    return Checked::Failed(internal(e));
                }
                Checked::Wrong
            }
        }
    }

    /// A dummy verification of the configured cost; `false` when the pool was full.
    pub(crate) fn dummy_verify(&self, ctx: &Context<'_>, lane: &Source, secret: Secret) -> bool {
        self.verify(ctx, lane, secret, None).is_some()
    }

    /// One PBKDF2 on the pool at the configured strength, whatever `stored` holds: without a
    /// hash (unknown name, account without password, over-long secret), or with one over the
    /// cost caps, a dummy of the same cost runs and fails. `None`: the pool was full and nothing ran.
    fn verify(
        &self,
        ctx: &Context<'_>,
        lane: &Source,
        secret: Secret,
        stored: Option<String>,
    ) -> Option<Verified> {
        let hasher = ctx.live.hasher.clone();
        let result = self.pool.run(lane, move || {
            let over_cap = stored.as_deref().and_then(|hash| hasher.over_cap(hash));
            match stored {
                // Over the caps: the dummy below runs instead of the stored hash's work.
                Some(hash) if over_cap.is_none() => {
                    let ok = hasher.verify(secret.expose().as_bytes(), &hash);
                    // docs/architecture.md#store: a login under weaker parameters than the policy,
                    // or with a crypt(3) hash taken over from a shadow file, rehashes in the same
                    // job while the password is at hand. Only after a success: a failure's timing
                    // stays that of one verification.
                    let rehashed = (ok && hasher.needs_rehash(&hash))
                        .then(|| hasher.hash(secret.expose().as_bytes()).ok())
                        .flatten()
                        .map(|new| (hash, new));
                    Verified {
                        ok,
                        rehashed,
                        over_cap: None,
                    }
                }
                _ => {
                    let bytes = secret.expose().as_bytes();
                    hasher.dummy(&bytes[..bytes.len().min(DUMMY_SECRET_BYTES)]);
                    Verified {
                        ok: false,
                        rehashed: None,
                        over_cap,
                    }
                }
            }
        });
        if result.is_ok() {
            self.counters.bump(&self.counters.verifications);
        }
        result.ok()
    }
}
