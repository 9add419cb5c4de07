//! Password changes through PAM (`pam_sm_chauthtok`): the check of the old secret (PRELIM) and the
//! change itself (UPDATE).
//!
//! The old secret — the password, or a pending reset code — is required unless the caller's real
//! uid is 0 (docs/architecture.md#callers): `passwd` is setuid root, so its effective uid says
//! nothing about who runs it. A wrong old password counts toward the lock like a wrong login.

use credd_proto::{ChangeRequest, ErrorKind, Reply, Secret, validate_field, validate_user_name};

use crate::handlers::context::Context;
use crate::handlers::reply::{error, internal};
use crate::handlers::secret_check::Checked;
use crate::state::Daemon;
use crate::store::{Account, AttemptSource, PasswordChange, WriteConflict};
use crate::system::procinfo;
use crate::system::time::{now_unix, rfc3339};

/// How the old secret was proven.
enum Proof {
    Password,
    /// A reset code, by its digest: the change deletes exactly that code.
    Code(Vec<u8>),
    /// Real root: no old secret needed.
    Root,
}

impl Daemon {
    pub(crate) fn change_check(&self, ctx: &Context<'_>, mut req: ChangeRequest) -> Reply {
        let old = req.old.take();
        match self.prove_old(ctx, &req, old) {
            Ok((_, _)) => Reply::Ok,
            Err(reply) => reply,
        }
    }

    pub(crate) fn change_password(&self, ctx: &Context<'_>, mut req: ChangeRequest) -> Reply {
        let peer = ctx.peer;
        let Some(new) = req.new.take() else {
            return error(
                ErrorKind::BadRequest,
                "no new password in a password change",
            );
        };
        let old = req.old.take();
        let (account, proof) = match self.prove_old(ctx, &req, old) {
            Ok(proven) => proven,
            Err(reply) => return reply,
        };
        if let Err(why) = ctx.live.quality.check(&account.name, new.expose()) {
            return error(ErrorKind::InvalidArgument, why);
        }
        let hasher = ctx.live.hasher.clone();
        let hashed = self.pool.run(&peer.source(None), move || {
            hasher.hash(new.expose().as_bytes())
        });
        let hash = match hashed {
            Err(_busy) => return Reply::Busy,
            Ok(Err(e)) => return internal(e),
            Ok(Ok(hash)) => hash,
        };
        let now = now_unix();
        // Written only if the account is still as it was when the old secret was proven (its
        // generation, and for a code that very code): a reset issued while this change was
        // hashing is never undone, and a code redeems one change however many race for it.
        let changed = self.store().change_password(&PasswordChange {
            user: &account.name,
            new_hash: &hash,
            generation: account.generation,
            code_digest: match &proof {
                Proof::Code(digest) => Some(digest.as_slice()),
                _ => None,
            },
            by: if matches!(proof, Proof::Root) {
                "root"
            } else {
                "self"
            },
            service: &req.service,
            peer_uid: peer.uid,
            // The session making the change keeps going: a user running passwd keeps their shell.
            except_audit_session: procinfo::opened_by(peer.pid).audit_session,
            now,
        });
        match changed {
            Err(e) => internal(e),
            Ok(Err(WriteConflict::Changed)) => {
                self.record(&crate::audit::chain::Event {
                    name: "password_changed",
                    actor_uid: Some(peer.uid),
                    target: Some(&account.name),
                    service: Some(&req.service),
                    outcome: "refused",
                    detail: "the account was reset or its password changed while this change was \
                             in flight; nothing was changed"
                        .into(),
                    ..Default::default()
                });
                Reply::Denied
            }
            Ok(Err(_)) => Reply::UnknownUser,
            Ok(Ok(revoked)) => {
                self.end_sessions(ctx, revoked);
                Reply::Ok
            }
        }
    }

    /// The quality rules alone, for the module to check a new password before asking for it a
    /// second time (pam_pwquality's order). No hashing, no write, no log line: nothing here needs
    /// a rate limit, and a caller learns only what the rules say of a password it chose.
    pub(crate) fn change_quality(&self, ctx: &Context<'_>, mut req: ChangeRequest) -> Reply {
        if let Err(message) =
            validate_user_name(&req.user).and_then(|()| validate_field("service", &req.service))
        {
            return error(ErrorKind::BadRequest, message);
        }
        let Some(new) = req.new.take() else {
            return error(ErrorKind::BadRequest, "no new password in a quality check");
        };
        let account = match self.target_account(ctx, &req.user) {
            Err(reply) => return reply,
            Ok(None) => return Reply::UnknownUser,
            Ok(Some(account)) => account,
        };
        match ctx.live.quality.check(&account.name, new.expose()) {
            Ok(()) => Reply::Ok,
            Err(why) => error(ErrorKind::InvalidArgument, why),
        }
    }

    /// The account and how the caller proved it may change its password.
    fn prove_old(
        &self,
        ctx: &Context<'_>,
        req: &ChangeRequest,
        old: Option<Secret>,
    ) -> Result<(Account, Proof), Reply> {
        let peer = ctx.peer;
        if let Err(message) =
            validate_user_name(&req.user).and_then(|()| validate_field("service", &req.service))
        {
            return Err(error(ErrorKind::BadRequest, message));
        }
        // A change request from a user's own process (passwd, setuid or not) is a guess at the old
        // secret too: it draws on that user's `change` bucket, before the account is looked up,
        // so that naming accounts the caller cannot see (each costing a dummy hash) is limited as
        // well. A right old secret gives its token back, so one passwd run (two passes, each
        // proving the old secret) costs nothing. Login services (sshd's forced change) have just
        // passed the login's limits and are not charged twice.
        let ticket = if peer.has_root_budget() {
            crate::policy::ratelimit::Ticket::default()
        } else {
            match self
                .rate
                .admit_change(peer.budget_uid(), crate::system::time::now_unix_ms())
            {
                Ok(ticket) => ticket,
                Err(tripped) => {
                    let known = matches!(self.target_account(ctx, &req.user), Ok(Some(_)));
                    let shown = if known {
                        req.user.as_str()
                    } else {
                        "(unknown)"
                    };
                    return Err(self.rate_limited(ctx, shown, &req.service, tripped, !known));
                }
            }
        };
        let proven = self.prove_old_charged(ctx, req, old);
        match &proven {
            Ok(_) | Err(Reply::Busy) => {
                self.rate.settle(ticket, crate::system::time::now_unix_ms())
            }
            Err(_) => drop(ticket),
        }
        proven
    }

    fn prove_old_charged(
        &self,
        ctx: &Context<'_>,
        req: &ChangeRequest,
        old: Option<Secret>,
    ) -> Result<(Account, Proof), Reply> {
        let peer = ctx.peer;
        let Some(account) = self.target_account(ctx, &req.user)? else {
            // The same hashing work as for an account, so the reply time tells nothing.
            if let Some(old) = old {
                self.dummy_verify(ctx, &peer.source(None), old);
            }
            return Err(Reply::UnknownUser);
        };
        if account.disabled {
            return Err(Reply::Disabled);
        }
        let Some(old) = old else {
            return if peer.real_uid == Some(0) {
                Ok((account, Proof::Root))
            } else {
                Err(Reply::Denied)
            };
        };
        let source = AttemptSource {
            service: &req.service,
            rhost: None,
            tty: None,
            peer_uid: peer.uid,
        };
        match self.check_secret(ctx, &account, old, &source, now_unix(), None, None) {
            Checked::Password { .. } => Ok((account, Proof::Password)),
            Checked::Code(digest) => Ok((account, Proof::Code(digest))),
            Checked::Changed => Err(Reply::Denied),
            Checked::Wrong => {
                self.record(&crate::audit::chain::Event {
                    name: "login_failure",
                    actor_uid: Some(peer.uid),
                    target: Some(&account.name),
                    service: Some(&req.service),
                    outcome: "denied",
                    detail: "password change: the current password was wrong".into(),
                    ..Default::default()
                });
                Err(Reply::Denied)
            }
            Checked::Locked(until) => Err(Reply::Locked {
                until: until.map(rfc3339),
                unknown: false,
            }),
            Checked::Busy => Err(Reply::Busy),
            Checked::Failed(reply) => Err(reply),
        }
    }
}
