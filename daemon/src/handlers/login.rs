//! The login path: `authenticate` (pam_sm_authenticate) and `account_check` (pam_sm_acct_mgmt).
//!
//! authenticate: validate → rate limits (cheap, before any lookup work) → lock check and attempt
//! reservation (no hashing for a locked account) → verify on the hashing pool → record success or
//! failure → reply. Unknown names, and accounts a non-root peer may not use, take the same steps
//! against an in-memory table and a dummy hash, so replies, messages, locking and timing match.

use credd_proto::{
    AccountRequest, AuthRequest, ErrorKind, Reply, Secret, validate_field, validate_user_name,
};

use crate::audit::chain::{Event, QueuedEvent};
use crate::handlers::context::Context;
use crate::handlers::reply::{error, internal};
use crate::handlers::secret_check::Checked;
use crate::policy::ratelimit::{Attempt, Tripped};
use crate::state::Daemon;
use crate::store::{Account, AttemptSource, LockRead};
use crate::system::peer::Peer;
use crate::system::time::{now_unix, now_unix_ms, rfc3339};

impl Daemon {
    /// The account `user` names, if this peer may act on it. A non-root peer may reach only the
    /// account whose stored uid is its own; for any other name it gets `None`, exactly as if the
    /// account did not exist, so it learns nothing about other accounts.
    pub(crate) fn target_account(
        &self,
        ctx: &Context<'_>,
        user: &str,
    ) -> Result<Option<Account>, Reply> {
        let peer = ctx.peer;
        if peer.is_root() {
            return self.reader().account(user).map_err(internal);
        }
        // R8: the only account a non-root peer may reach is the one of its own uid, so that is the
        // one looked up, whatever name it typed: the work, and its time, are the same for a name
        // that does not exist and for someone else's account (a lookup by name took measurably
        // longer for a name that exists, which sorted names blind through account_check).
        let own = self.reader().account_of_uid(peer.uid).map_err(internal)?;
        Ok(own.filter(|a| a.name == user && owned_by(a, peer.uid)))
    }

    /// The reply, and what is left to do once it is on its way (see [`AfterReply`]).
    pub(crate) fn authenticate(
        &self,
        ctx: &Context<'_>,
        mut req: AuthRequest,
    ) -> (Reply, AfterReply) {
        let peer = ctx.peer;
        if let Err(reply) = check_pam_fields(&req) {
            return (reply, AfterReply::default());
        }
        self.alerts_throttle(ctx, &req);
        let ticket = self.rate.admit(&rate_attempt(peer, &req), now_unix_ms());
        // Root callers (sshd, login): the account, its code and its lock in one read
        // transaction. Others reach their own account only (target_account).
        let (target, prefetched) = if peer.is_root() {
            match self.reader().login_view(&req.user, now_unix()) {
                Ok(view) => (view.account, view.state),
                Err(e) => return (internal(e), AfterReply::default()),
            }
        } else {
            match self.target_account(ctx, &req.user) {
                Ok(t) => (t, None),
                Err(reply) => return (reply, AfterReply::default()),
            }
        };
        let shown = if target.is_some() {
            req.user.as_str()
        } else {
            "(unknown)"
        };
        let ticket = match ticket {
            Ok(ticket) => ticket,
            Err(tripped) => {
                let reply = self.rate_limited(ctx, shown, &req.service, tripped, target.is_none());
                return (reply, AfterReply::default());
            }
        };
        let now = now_unix();
        let secret = std::mem::take(&mut req.secret);
        let known = target.is_some();
        let (outcome, audited, via_code) = match target {
            Some(account) => {
                self.authenticate_account(ctx, &account, secret, &req, now, prefetched)
            }
            None => (
                self.authenticate_unknown(ctx, &req, secret, now),
                false,
                false,
            ),
        };
        match outcome {
            // The secret was right (a disabled account's too: no guess failed), or nothing was
            // checked: the attempt's tokens go back. Only wrong guesses drain a bucket.
            Reply::Ok | Reply::MustChange | Reply::Disabled | Reply::Busy => {
                self.rate.settle(ticket, now_unix_ms())
            }
            _ => drop(ticket),
        }
        match &outcome {
            Reply::Busy => {
                self.counters.bump(&self.counters.busy_replies);
                self.busy_log.record(now);
            }
            Reply::Locked { .. } => self.counters.bump(&self.counters.locked_replies),
            _ => {}
        }
        let mut after = AfterReply::default();
        if outcome != Reply::Busy {
            // The typed name of an unknown user is not logged: a mistyped name is often a password.
            // Formatted first, written once: eprintln! would make a system call per piece.
            after.line = Some(format!(
                "credd: authenticate user={shown} service={:?} peer_uid={} result={}\n",
                req.service,
                peer.uid,
                outcome.name()
            ));
            if !audited {
                after.event = self
                    .login_event(ctx, &req, &outcome)
                    .map(|event| QueuedEvent::capture(&event, now));
            }
        }
        after.alert =
            crate::handlers::alerts::PendingLogin::of(peer, &req, known, &outcome, via_code);
        (outcome, after)
    }

    /// Writes the log line and queues the audit row of an authentication whose reply was sent.
    /// Neither changes the outcome, and a refusal (a locked account's above all) is then answered
    /// in what the IPC costs: the write to stderr and the audit writer's wake-up come after.
    pub(crate) fn after_reply(&self, ctx: &Context<'_>, after: AfterReply) {
        if let Some(line) = after.line {
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
        if let Some(event) = after.event {
            self.record_captured(event);
        }
        if let Some(login) = after.alert {
            self.observe(ctx, &login.observation());
        }
    }

    /// The audit event of an authentication, with pam_unix's classic failure line for failures
    /// (fail2ban's pam-generic filter, SIEM parsers). rhost goes into that line only from callers
    /// that are root through and through (§4): a local user must not get a host banned. `None`
    /// for outcomes recorded elsewhere (rate-limit refusals, once per burst).
    fn login_event<'a>(
        &self,
        ctx: &Context<'_>,
        req: &'a AuthRequest,
        outcome: &Reply,
    ) -> Option<Event<'a>> {
        let peer = ctx.peer;
        let unknown = matches!(
            outcome,
            Reply::UnknownUser
                | Reply::Locked { unknown: true, .. }
                | Reply::RateLimited { unknown: true, .. }
        );
        let (name, result) = match outcome {
            Reply::Ok => ("login_success", "ok"),
            Reply::MustChange => ("login_success", "must_change"),
            Reply::Denied => ("login_failure", "denied"),
            Reply::Disabled => ("login_failure", "disabled"),
            Reply::Locked { .. } if unknown => ("unknown_user", "locked"),
            Reply::Locked { .. } => ("login_failure", "locked"),
            Reply::UnknownUser => ("unknown_user", "denied"),
            // Rate-limit refusals are recorded once per burst, where they trip.
            _ => return None,
        };
        let target = if unknown && !ctx.live.config.audit.log_unknown_names {
            None
        } else {
            Some(req.user.as_str())
        };
        // The classic line is read by fail2ban, which bans the rhost in it: it is written only for
        // callers that are root through and through (whose PAM items are the service's, not a
        // local user's claims), and its free-text items cannot carry a forged `rhost=`.
        let classic = (name != "login_success" && peer.has_root_budget()).then(|| {
            format!(
                "pam_credd({}:auth): authentication failure; logname= uid={} euid={} tty={} ruser={} rhost={}{}",
                one_word(&req.service),
                peer.real_uid.unwrap_or(peer.uid),
                peer.uid,
                one_word(req.tty.as_deref().unwrap_or("")),
                one_word(req.ruser.as_deref().unwrap_or("")),
                one_word(req.rhost.as_deref().unwrap_or("")),
                target.map(|u| format!("  user={u}")).unwrap_or_default()
            )
        });
        Some(Event {
            name,
            actor_uid: Some(peer.uid),
            target,
            service: Some(&req.service),
            rhost: req.rhost.as_deref(),
            tty: req.tty.as_deref(),
            outcome: result,
            detail: String::new(),
            classic,
        })
    }

    pub(crate) fn rate_limited(
        &self,
        ctx: &Context<'_>,
        shown: &str,
        service: &str,
        tripped: Tripped,
        unknown: bool,
    ) -> Reply {
        let peer = ctx.peer;
        self.counters.bump(&self.counters.rate_limited_replies);
        if tripped.first_of_burst {
            eprintln!(
                "credd: rate limit {} tripped: user={shown} service={service:?} peer_uid={} \
                 (further refusals of this burst are not logged)",
                tripped.limit, peer.uid
            );
            self.record(&Event {
                name: "rate_limited",
                actor_uid: Some(peer.uid),
                target: (!unknown || ctx.live.config.audit.log_unknown_names).then_some(shown),
                service: Some(service),
                outcome: "refused",
                detail: format!("limit={} (once per burst)", tripped.limit),
                ..Default::default()
            });
        }
        Reply::RateLimited {
            unknown,
            retry_after: Some(tripped.retry_after_secs),
        }
    }

    /// The reply, whether its audit event was already written (with the success of a right
    /// password, in one transaction with the upgrade of its hash), and whether a reset code was
    /// the secret.
    fn authenticate_account(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        secret: Secret,
        req: &AuthRequest,
        now: i64,
        prefetched: Option<crate::store::LoginState>,
    ) -> (Reply, bool, bool) {
        let peer = ctx.peer;
        let source = AttemptSource {
            service: &req.service,
            rhost: req.rhost.as_deref(),
            tty: req.tty.as_deref(),
            peer_uid: peer.uid,
        };
        // What a right password answers, decided before verifying so that its audit row can be
        // written with the success.
        let if_right = if account.disabled {
            Reply::Disabled
        } else if account.must_change {
            Reply::MustChange
        } else {
            Reply::Ok
        };
        let login = self.login_event(ctx, req, &if_right);
        let reply = match self.check_secret(
            ctx,
            account,
            secret,
            &source,
            now,
            login.as_ref(),
            prefetched,
        ) {
            Checked::Failed(reply) => reply,
            Checked::Busy => Reply::Busy,
            Checked::Locked(until) => Reply::Locked {
                until: until.map(rfc3339),
                unknown: false,
            },
            Checked::Wrong => Reply::Denied,
            // Reset (or changed) while this login was verified: the reset wins.
            Checked::Changed => Reply::Denied,
            Checked::Password { audited } => return (if_right, audited, false),
            _ if account.disabled => Reply::Disabled,
            // A valid reset code gets in only as far as the forced change: acct_mgmt answers
            // must-change, and chauthtok consumes the code when the new password is stored.
            Checked::Code(_) => return (Reply::MustChange, false, true),
        };
        (reply, false, false)
    }

    fn authenticate_unknown(
        &self,
        ctx: &Context<'_>,
        req: &AuthRequest,
        secret: Secret,
        now: i64,
    ) -> Reply {
        let peer = ctx.peer;
        let (name, rhost) = (req.user.as_str(), req.rhost.as_deref());
        if let Err(until) = self.unknown_names.begin(name, &ctx.live.lockout, now) {
            return Reply::Locked {
                until: until.map(rfc3339),
                unknown: true,
            };
        }
        if self.dummy_verify(ctx, &peer.source(rhost), secret) {
            self.unknown_names
                .failed(name, &ctx.live.lockout, now_unix());
            Reply::UnknownUser
        } else {
            self.unknown_names.cancel(name);
            Reply::Busy
        }
    }

    pub(crate) fn account_check(&self, ctx: &Context<'_>, req: AccountRequest) -> Reply {
        if let Err(message) =
            validate_user_name(&req.user).and_then(|()| validate_field("service", &req.service))
        {
            return error(ErrorKind::BadRequest, message);
        }
        let account = match self.target_account(ctx, &req.user) {
            Err(reply) => return reply,
            Ok(None) => return Reply::UnknownUser,
            Ok(Some(a)) => a,
        };
        if account.disabled {
            return Reply::Disabled;
        }
        if ctx.live.config.lockout.account_check {
            let now = now_unix();
            let read = self.reader().lock(&account.name, now);
            let lock = match read {
                Err(e) => Err(e),
                Ok(LockRead::Locked { until }) => Ok(Some(until)),
                Ok(LockRead::Open) => Ok(None),
                // Clearing an expired lock is a write.
                Ok(LockRead::Expired) => self.store().current_lock(&account.name, now),
            };
            match lock {
                Err(e) => return internal(e),
                Ok(Some(until)) => {
                    self.counters.bump(&self.counters.locked_replies);
                    return Reply::Locked {
                        until: until.map(rfc3339),
                        unknown: false,
                    };
                }
                Ok(None) => {}
            }
        }
        if account.must_change {
            Reply::MustChange
        } else {
            Reply::Ok
        }
    }
}

/// An authentication's log line and (unless written with its change of state) audit row, kept
/// until its reply is sent.
#[derive(Default)]
pub(crate) struct AfterReply {
    line: Option<String>,
    event: Option<QueuedEvent>,
    /// What the alerts' detectors are fed (handlers/alerts.rs).
    alert: Option<crate::handlers::alerts::PendingLogin>,
}

/// How the rate limits see an authentication: by [`Peer::source`], so that a caller that is not
/// root through and through draws on an account's bucket *for its uid* only, and cannot drain
/// the bucket that root's console logins, or sshd's logins for someone else, draw on.
fn rate_attempt<'a>(peer: Peer, req: &'a AuthRequest) -> Attempt<'a> {
    Attempt {
        account: &req.user,
        source: peer.source(req.rhost.as_deref()),
    }
}

/// A claimed PAM item as one token of a `key=value` line: whitespace and `=` replaced, so that a
/// value cannot start another field.
fn one_word(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_whitespace() || c == '=' {
                '_'
            } else {
                c
            }
        })
        .collect()
}

fn check_pam_fields(req: &AuthRequest) -> Result<(), Reply> {
    validate_user_name(&req.user)
        .and_then(|()| validate_field("service", &req.service))
        .and_then(|()| {
            for (what, value) in [
                ("rhost", &req.rhost),
                ("tty", &req.tty),
                ("ruser", &req.ruser),
            ] {
                if let Some(v) = value {
                    validate_field(what, v)?;
                }
            }
            Ok(())
        })
        .map_err(|message| error(ErrorKind::BadRequest, message))
}

/// A non-root peer's own account: the stored uid is its uid, and NSS, where it knows that uid,
/// names the same account (it may have changed since the account was added).
fn owned_by(account: &Account, uid: u32) -> bool {
    use nix::unistd::{Uid, User};
    account.uid == Some(uid)
        && match User::from_uid(Uid::from_raw(uid)) {
            Ok(Some(u)) => u.name == account.name,
            Ok(None) => true,
            Err(_) => false,
        }
}
