//! One function per request kind. Each reads as the policy it implements: check the caller,
//! decide, record, reply.

pub mod alerts;
pub mod audit;
pub mod backup;
pub mod change;
pub mod context;
pub mod guard;
pub mod import;
pub mod lockout;
pub mod login;
pub mod reply;
pub mod reset;
pub mod secret_check;
pub mod sessions;
pub mod users;

use std::sync::Arc;

use credd_proto::{ErrorKind, PROTOCOL_VERSION, ProtoError, Reply, Request};

use crate::policy::ratelimit::Tripped;
use crate::state::Daemon;
use crate::system::peer::SocketKind;

use crate::handlers::context::Context;
use reply::{Respond, error};

impl Daemon {
    /// Serves one request, writing its reply (or replies, for a listing) through `respond`,
    /// under the policy pinned in `ctx` from start to end.
    pub fn handle(
        self: &Arc<Self>,
        ctx: &mut Context<'_>,
        request: Request,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        let peer = ctx.peer;
        let socket = ctx.socket;
        // R1: every request of a caller that is not root through and through is charged before it
        // can cost any work, write a row or a log line, so that no local user can fill the disk,
        // the syslog pipe or credd's stderr. Far above ordinary use; refusals are counted, and
        // logged once per burst.
        if !peer.has_root_budget()
            && let Err(tripped) = self
                .rate
                .admit_request(peer.budget_uid(), crate::system::time::now_unix_ms())
        {
            return respond(&self.requests_limited(ctx, request.name(), tripped));
        }
        if request.is_admin() && !(socket == SocketKind::Admin && peer.may_administer()) {
            self.counters.bump(&self.counters.refused_peers);
            // Once per uid per minute, whatever the number of attempts (the counter has them all):
            // a refusal that wrote a row each time was a way to fill the disk.
            if self
                .rate
                .log_refusal(peer.budget_uid(), crate::system::time::now_unix_ms())
            {
                eprintln!(
                    "credd: refused {} from uid {} pid {} on the {:?} socket (further refusals \
                     of this uid in the next minute are counted, not logged)",
                    request.name(),
                    peer.uid,
                    peer.pid,
                    socket
                );
                self.record(&crate::audit::chain::Event {
                    name: "peer_refused",
                    actor_uid: Some(peer.uid),
                    outcome: "refused",
                    detail: format!(
                        "request={} socket={} pid={}",
                        request.name(),
                        socket.as_str(),
                        peer.pid
                    ),
                    ..Default::default()
                });
            }
            return respond(&error(
                ErrorKind::NotPermitted,
                "administrative requests are served to root and the admin group on admin.sock only",
            ));
        }
        if let Some(refusal) = self.refuse_protected(ctx, &request) {
            return respond(&refusal);
        }
        let reply = match request {
            Request::Ping => Reply::Pong {
                version: PROTOCOL_VERSION,
            },
            Request::Authenticate(req) => {
                let (reply, after) = self.authenticate(ctx, req);
                self.hold_audit();
                let sent = respond(&reply);
                self.after_reply(ctx, after);
                self.release_audit();
                return sent;
            }
            Request::AccountCheck(req) => self.account_check(ctx, req),
            Request::UserAdd {
                user,
                uid,
                password,
                must_change,
            } => self.user_add(ctx, &user, uid, password, must_change),
            Request::UserRemove { user } => self.user_remove(ctx, &user),
            Request::UserList => return self.user_list(respond),
            Request::UserShow { user } => self.user_show(&user),
            Request::UserSetDisabled { user, disabled } => {
                self.user_set_disabled(ctx, &user, disabled)
            }
            Request::SetPassword {
                user,
                password,
                must_change,
            } => self.set_password(ctx, &user, password, must_change),
            Request::Status { target: Some(t) } => self.status_of(ctx, &t),
            Request::Status { target: None } => return self.status_list(ctx, respond),
            Request::Lock { target, reason } => self.lock(ctx, &target, reason.as_deref()),
            Request::Unlock { target } => self.unlock(ctx, &target),
            Request::DaemonStatus => self.daemon_status(),
            Request::Reset {
                target,
                ttl_seconds,
                keep_password,
            } => self.reset(ctx, &target, ttl_seconds, keep_password),
            Request::ChangeCheck(req) => self.change_check(ctx, req),
            Request::ChangePassword(req) => self.change_password(ctx, req),
            Request::ChangeQuality(req) => self.change_quality(ctx, req),
            Request::SessionOpen(req) => self.session_open(ctx, req),
            Request::SessionClose(req) => self.session_close(ctx, req),
            Request::Sessions { user } => return self.sessions_list(user.as_deref(), respond),
            Request::Audit { user, since } => {
                return self.audit_list(user.as_deref(), since.as_deref(), respond);
            }
            Request::AuditVerify => self.audit_verify(),
            Request::AlertAck { id } => self.ack_alert(ctx, &id),
            Request::Check => self.check(ctx),
            Request::ImportBegin(options) => self.import_begin(ctx.conn, options),
            Request::ImportRows { rows } => self.import_rows(ctx.conn, rows),
            Request::ImportShadowRows { rows } => self.import_shadow_rows(ctx.conn, rows),
            Request::ImportCommit => return self.import_commit(ctx, respond),
            Request::Backup => return self.backup(ctx, respond),
        };
        respond(&reply)
    }

    /// A request refused by the `requests` bucket: counted always, logged and audited once per
    /// uid per minute. The same reply whatever the request names, so it tells nothing about accounts.
    fn requests_limited(&self, ctx: &Context<'_>, request: &str, tripped: Tripped) -> Reply {
        let peer = ctx.peer;
        self.counters.bump(&self.counters.rate_limited_replies);
        // Under a steady flood every refill admits one request and starts a new "burst": the
        // line is also held to one per uid per minute.
        if tripped.first_of_burst
            && self
                .rate
                .log_refusal(peer.budget_uid(), crate::system::time::now_unix_ms())
        {
            eprintln!(
                "credd: rate limit requests tripped: uid {} request={request} (further refusals \
                 of this uid in the next minute are not logged)",
                peer.budget_uid()
            );
            self.record(&crate::audit::chain::Event {
                name: "rate_limited",
                actor_uid: Some(peer.uid),
                outcome: "refused",
                detail: format!("limit=requests request={request} (once per burst)"),
                ..Default::default()
            });
        }
        Reply::RateLimited {
            unknown: false,
            retry_after: Some(tripped.retry_after_secs),
        }
    }
}
