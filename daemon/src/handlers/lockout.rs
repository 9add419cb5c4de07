//! Lockout administration: `credctl status`, `lock`, `unlock` and `status --daemon`.

use std::collections::BTreeMap;

use credd_proto::{
    AccountStatus, DaemonCounters, ErrorKind, FailureInfo, ProtoError, Reply, Target,
    validate_field,
};

use crate::handlers::context::Context;
use crate::handlers::reply::{LIST_PAGE, Respond, error, internal, not_found};
use crate::policy::lockout::LockKind;
use crate::state::{Counters, Daemon};
use crate::store::{Account, LockoutState};
use crate::system::time::{now_unix, rfc3339};

impl Daemon {
    pub(crate) fn resolve(&self, target: &Target) -> Result<Account, Reply> {
        let found = match target {
            Target::Name(name) => self.store().account(name),
            Target::Uid(uid) => self.store().account_by_uid(*uid),
        };
        match found {
            Err(e) => Err(internal(e)),
            Ok(None) => Err(not_found(&target.to_string())),
            Ok(Some(account)) => Ok(account),
        }
    }

    fn account_status(
        &self,
        ctx: &Context<'_>,
        account: &Account,
        now: i64,
    ) -> Result<AccountStatus, Reply> {
        let state = self
            .store()
            .lockout_state(&account.name, &ctx.live.lockout, now)
            .map_err(internal)?;
        Ok(status_of(account, state))
    }

    pub(crate) fn status_of(&self, ctx: &Context<'_>, target: &Target) -> Reply {
        // Refused attempts' failure rows are written after their replies.
        self.flush_audit();
        match self
            .resolve(target)
            .and_then(|a| self.account_status(ctx, &a, now_unix()))
        {
            Ok(status) => Reply::Status(Box::new(status)),
            Err(reply) => reply,
        }
    }

    /// Every account with failures in the window or a lock, streamed page by page.
    pub(crate) fn status_list(
        &self,
        ctx: &Context<'_>,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        self.flush_audit();
        let now = now_unix();
        let window = ctx.live.lockout.window_start(now);
        let mut after: Option<String> = None;
        let mut count = 0u64;
        loop {
            let page = self
                .store()
                .troubled_accounts_page(after.as_deref(), window, LIST_PAGE);
            let page = match page {
                Ok(page) => page,
                Err(e) => return respond(&internal(e)),
            };
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for account in &page {
                match self.account_status(ctx, account, now) {
                    Ok(status) => respond(&Reply::StatusItem(Box::new(status)))?,
                    Err(reply) => return respond(&reply),
                }
                count += 1;
            }
        }
        respond(&Reply::End { count })
    }

    pub(crate) fn lock(&self, ctx: &Context<'_>, target: &Target, reason: Option<&str>) -> Reply {
        let peer = ctx.peer;
        if let Some(reason) = reason
            && let Err(message) = validate_field("reason", reason)
        {
            return error(ErrorKind::InvalidArgument, message);
        }
        let account = match self.resolve(target) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let result = self
            .store()
            .lock_account(&account.name, reason, peer.uid, now_unix());
        match result {
            Err(e) => internal(e),
            Ok(Err(_)) => not_found(&account.name),
            Ok(Ok(revoked)) => {
                self.end_sessions(ctx, revoked);
                Reply::Ok
            }
        }
    }

    pub(crate) fn unlock(&self, ctx: &Context<'_>, target: &Target) -> Reply {
        let peer = ctx.peer;
        let account = match self.resolve(target) {
            Ok(a) => a,
            Err(reply) => return reply,
        };
        let result = self
            .store()
            .unlock_account(&account.name, peer.uid, now_unix());
        match result {
            Err(e) => internal(e),
            Ok(Err(_)) => not_found(&account.name),
            Ok(Ok(_)) => {
                // Attempts refused while it was locked drained its buckets; the owner's right
                // password right after an unlock must get in.
                self.rate.forget_account(&account.name, account.uid);
                self.observe(
                    ctx,
                    &crate::handlers::alerts::Observation::Cleared {
                        account: &account.name,
                    },
                );
                Reply::Ok
            }
        }
    }

    pub(crate) fn daemon_status(&self) -> Reply {
        let schemes = match self.store().accounts_per_scheme() {
            Ok(schemes) => schemes,
            Err(e) => return internal(e),
        };
        let c = &self.counters;
        Reply::Daemon(Box::new(DaemonCounters {
            uptime_seconds: c.started.elapsed().as_secs(),
            verifications: Counters::get(&c.verifications),
            busy_replies: Counters::get(&c.busy_replies),
            locked_replies: Counters::get(&c.locked_replies),
            rate_limited_replies: Counters::get(&c.rate_limited_replies),
            refused_peers: Counters::get(&c.refused_peers),
            dropped_syslog_events: self.sink.dropped(),
            dropped_audit_events: self.disk.dropped_events(),
            accounts_per_scheme: schemes.into_iter().collect::<BTreeMap<_, _>>(),
        }))
    }
}

fn status_of(account: &Account, state: LockoutState) -> AccountStatus {
    let lock = state.lock.as_ref();
    AccountStatus {
        user: account.name.clone(),
        uid: account.uid,
        locked: lock.is_some(),
        failures: state.failures_in_window,
        unlock: lock.map(|l| match (l.kind, l.until) {
            (LockKind::Failures, Some(_)) => "time".to_string(),
            _ => "administrator".to_string(),
        }),
        locked_until: lock
            .filter(|l| l.kind == LockKind::Failures)
            .and_then(|l| l.until)
            .map(rfc3339),
        locked_since: lock.map(|l| rfc3339(l.since)),
        lock_kind: lock.map(|l| l.kind.as_str().to_string()),
        lock_reason: lock.and_then(|l| l.reason.clone()),
        last_failure: state.last_failure.map(|f| FailureInfo {
            time: rfc3339(f.time),
            service: f.service,
            rhost: f.rhost,
            tty: f.tty,
            peer_uid: f.peer_uid,
        }),
    }
}
