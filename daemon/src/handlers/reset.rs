//! `credctl reset`: a temporary access code for an account, within the reset rate limits.

use std::time::Duration;

use credd_proto::{ErrorKind, Reply, ResetIssued, Target};

use crate::config::{MAX_CODE_TTL, MIN_CODE_TTL};
use crate::handlers::context::Context;
use crate::handlers::reply::{error, internal, not_found};
use crate::policy::codes;
use crate::state::Daemon;
use crate::store::{ResetOrder, WriteConflict};
use crate::system::procinfo;
use crate::system::time::{now_unix, rfc3339};

const HOUR: i64 = 3600;

impl Daemon {
    pub(crate) fn reset(
        &self,
        ctx: &Context<'_>,
        target: &Target,
        ttl_seconds: Option<u64>,
        keep_password: bool,
    ) -> Reply {
        let peer = ctx.peer;
        let ttl = ttl_seconds
            .map(Duration::from_secs)
            .unwrap_or(ctx.live.config.codes.ttl);
        if !(MIN_CODE_TTL..=MAX_CODE_TTL).contains(&ttl) {
            return error(
                ErrorKind::InvalidArgument,
                "the code lifetime must be between 1m and 24h",
            );
        }
        let account = match self.resolve(target) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let now = now_unix();
        self.observe(
            ctx,
            &crate::handlers::alerts::Observation::Reset {
                admin_uid: peer.uid,
                account: &account.name,
            },
        );
        if let Some(reply) = self.reset_rate_limited(ctx, &account.name, peer.uid, now) {
            return reply;
        }
        let code = match codes::generate() {
            Ok(code) => code,
            Err(e) => return internal(e),
        };
        let Some(normalized) = codes::normalize(code.expose()) else {
            return internal("a generated code did not normalise");
        };
        let digest = codes::digest(&normalized);
        let expires_at = now + ttl.as_secs() as i64;
        let issued = self.store().issue_reset(&ResetOrder {
            user: &account.name,
            digest: &digest,
            expires_at,
            keep_password,
            admin_uid: peer.uid,
            now,
        });
        match issued {
            Err(e) => internal(e),
            Ok(Err(WriteConflict::NotFound)) | Ok(Err(_)) => not_found(&account.name),
            Ok(Ok(revoked)) => {
                // The code is the way back in: earlier wrong guesses must not refuse it.
                self.rate.forget_account(&account.name, account.uid);
                self.observe(
                    ctx,
                    &crate::handlers::alerts::Observation::Cleared {
                        account: &account.name,
                    },
                );
                let sessions_revoked = revoked.len() as u64;
                self.end_sessions(ctx, revoked);
                Reply::ResetIssued(Box::new(ResetIssued {
                    user: account.name,
                    code,
                    expires_at: rfc3339(expires_at),
                    sessions_revoked,
                }))
            }
        }
    }

    /// `[codes] per_account_per_hour` and `per_admin_per_hour`; a refusal is audited so that a
    /// collector can alert on it.
    fn reset_rate_limited(
        &self,
        ctx: &Context<'_>,
        user: &str,
        admin_uid: u32,
        now: i64,
    ) -> Option<Reply> {
        let limits = &ctx.live.config.codes;
        let counts = self.store().resets_since(user, admin_uid, now - HOUR);
        let (for_account, by_admin) = match counts {
            Ok(counts) => counts,
            Err(e) => return Some(internal(e)),
        };
        let why = if for_account >= limits.per_account_per_hour {
            format!(
                "{for_account} resets of this account in the last hour (limit {})",
                limits.per_account_per_hour
            )
        } else if by_admin >= limits.per_admin_per_hour {
            format!(
                "{by_admin} resets by uid {admin_uid} in the last hour (limit {})",
                limits.per_admin_per_hour
            )
        } else {
            return None;
        };
        // A refusal changes nothing else: the audit writer takes it, like every other refusal.
        self.record(&crate::audit::chain::Event {
            name: "rate_limited",
            actor_uid: Some(admin_uid),
            target: Some(user),
            outcome: "refused",
            detail: format!("limit=reset {why}"),
            ..Default::default()
        });
        Some(Reply::RateLimited {
            unknown: false,
            retry_after: None,
        })
    }

    /// Revoked sessions end with `[sessions] terminate_on_revoke`; otherwise they stay listed as
    /// revoked (and audited with the change).
    pub(crate) fn end_sessions(
        &self,
        ctx: &Context<'_>,
        revoked: Vec<crate::store::RevokedSession>,
    ) {
        if ctx.live.config.sessions.terminate_on_revoke {
            procinfo::terminate(revoked, ctx.live.config.sessions.terminate_grace);
        }
    }
}
