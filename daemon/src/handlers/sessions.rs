//! `pam_sm_open_session` / `pam_sm_close_session` and `credctl sessions`.

use credd_proto::{
    ErrorKind, ProtoError, Reply, SessionInfo, SessionRequest, validate_field, validate_user_name,
};

use crate::handlers::context::Context;
use crate::handlers::reply::{LIST_PAGE, Respond, error, internal};
use crate::state::Daemon;
use crate::store::{NewSession, SessionRecord};
use crate::system::procinfo;
use crate::system::time::{now_unix, rfc3339};

impl Daemon {
    fn check_session_fields(req: &SessionRequest) -> Result<(), Reply> {
        validate_user_name(&req.user)
            .and_then(|()| validate_field("service", &req.service))
            .and_then(|()| {
                req.tty
                    .as_deref()
                    .map_or(Ok(()), |t| validate_field("tty", t))
            })
            .and_then(|()| {
                req.rhost
                    .as_deref()
                    .map_or(Ok(()), |r| validate_field("rhost", r))
            })
            .map_err(|message| error(ErrorKind::BadRequest, message))
    }

    pub(crate) fn session_open(&self, ctx: &Context<'_>, req: SessionRequest) -> Reply {
        let peer = ctx.peer;
        if let Err(reply) = Self::check_session_fields(&req) {
            return reply;
        }
        // Login services open sessions as root; a local user registering rows for its own account
        // would only grow the table.
        if !peer.is_root() {
            return Reply::UnknownUser;
        }
        let account = match self.target_account(ctx, &req.user) {
            Err(reply) => return reply,
            Ok(None) => return Reply::UnknownUser,
            Ok(Some(a)) => a,
        };
        // The calling process (e.g. sshd's session process after pam_loginuid) is the session.
        let by = procinfo::opened_by(peer.pid);
        let opened = self.store().open_session(&NewSession {
            user: &account.name,
            service: &req.service,
            tty: req.tty.as_deref(),
            rhost: req.rhost.as_deref(),
            by,
            now: now_unix(),
        });
        match opened {
            Err(e) => internal(e),
            Ok(Err(_)) => Reply::UnknownUser,
            Ok(Ok(_)) => Reply::Ok,
        }
    }

    pub(crate) fn session_close(&self, ctx: &Context<'_>, req: SessionRequest) -> Reply {
        let peer = ctx.peer;
        if let Err(reply) = Self::check_session_fields(&req) {
            return reply;
        }
        if !peer.is_root() {
            return Reply::UnknownUser;
        }
        let account = match self.target_account(ctx, &req.user) {
            Err(reply) => return reply,
            Ok(None) => return Reply::UnknownUser,
            Ok(Some(a)) => a,
        };
        let by = procinfo::opened_by(peer.pid);
        match self.store().close_session(&account.name, &by, now_unix()) {
            Err(e) => internal(e),
            // Closing a session credd never saw (opened before credd was in the stack) is fine.
            Ok(_) => Reply::Ok,
        }
    }

    pub(crate) fn sessions_list(
        &self,
        user: Option<&str>,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        let mut after = 0;
        let mut count = 0u64;
        loop {
            let page = match self.store().sessions_page(user, after, LIST_PAGE) {
                Ok(page) => page,
                Err(e) => return respond(&internal(e)),
            };
            let Some(last) = page.last() else { break };
            after = last.id;
            for record in page {
                respond(&Reply::SessionItem(Box::new(session_info(record))))?;
                count += 1;
            }
        }
        respond(&Reply::End { count })
    }
}

fn session_info(r: SessionRecord) -> SessionInfo {
    SessionInfo {
        id: r.id as u64,
        user: r.user,
        service: r.service,
        tty: r.tty,
        rhost: r.rhost,
        pid: r.by.pid,
        pid_start: r.by.pid_start,
        audit_session: r.by.audit_session,
        loginuid: r.by.loginuid,
        opened_at: rfc3339(r.opened_at),
        revoked_at: r.revoked_at.map(rfc3339),
        revoked_reason: r.revoked_reason,
    }
}
