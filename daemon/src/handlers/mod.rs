//! One function per request kind. Each reads as the policy it implements: check the caller,
//! decide, record, reply.

pub mod audit;
pub mod backup;
pub mod change;
pub mod guard;
pub mod import;
pub mod lockout;
pub mod login;
pub mod reset;
pub mod secret_check;
pub mod sessions;

use std::sync::Arc;

use credd_proto::{
    ErrorKind, PROTOCOL_VERSION, ProtoError, Reply, Request, Secret, UserInfo, validate_user_name,
};

use crate::crypto::hashing;
use crate::policy::ratelimit::Tripped;
use crate::state::Daemon;
use crate::store::{Account, WriteConflict};
use crate::system::peer::{Peer, SocketKind};
use crate::system::time::rfc3339;

/// Rows per store query while streaming a listing; the store lock is released between pages.
pub(crate) const LIST_PAGE: usize = 500;

/// Sends one reply frame to the peer.
pub type Respond<'a> = dyn FnMut(&Reply) -> Result<(), ProtoError> + 'a;

pub(crate) fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
    Reply::Error {
        kind,
        message: message.into(),
    }
}

pub(crate) fn internal(e: impl std::fmt::Display + 'static) -> Reply {
    if cannot_write(&e) {
        eprintln!("credd: the store cannot be written: {e}");
        return error(
            ErrorKind::Unavailable,
            "the credential store cannot be written; see credd's log",
        );
    }
    eprintln!("credd: internal error: {e}");
    error(ErrorKind::Internal, "internal error; see credd's log")
}

/// A failure of the volume or the file rather than of the request (R1): a full disk must not
/// answer a right password with "wrong password". Every handler reports store errors through
/// [`internal`], whatever their type, hence the look at the concrete type here.
fn cannot_write(e: &(dyn std::any::Any + 'static)) -> bool {
    use rusqlite::ErrorCode::{
        CannotOpen, DatabaseBusy, DatabaseLocked, DiskFull, ReadOnly, SystemIoFailure,
    };
    let sqlite = e.downcast_ref::<rusqlite::Error>().or_else(|| {
        match e.downcast_ref::<crate::error::DaemonError>() {
            Some(crate::error::DaemonError::Store(inner)) => Some(inner),
            _ => None,
        }
    });
    matches!(
        sqlite.and_then(rusqlite::Error::sqlite_error_code),
        Some(DiskFull | SystemIoFailure | ReadOnly | CannotOpen | DatabaseBusy | DatabaseLocked)
    ) || matches!(
        e.downcast_ref::<crate::error::DaemonError>(),
        Some(crate::error::DaemonError::Io { .. })
    )
}

impl Daemon {
    /// Serves one request, writing its reply (or replies, for a listing) through `respond`,
    /// under one policy from start to end (see [`Daemon::serving`]).
    pub fn handle(
        self: &Arc<Self>,
        peer: Peer,
        socket: SocketKind,
        request: Request,
        conn: &mut crate::handlers::import::Connection,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        self.serving(|| self.serve(peer, socket, request, conn, respond))
    }

    fn serve(
        self: &Arc<Self>,
        peer: Peer,
        socket: SocketKind,
        request: Request,
        conn: &mut crate::handlers::import::Connection,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        // R1: every request of a caller that is not root through and through is charged before it
        // can cost any work, write a row or a log line, so that no local user can fill the disk,
        // the syslog pipe or credd's stderr. Far above ordinary use; refusals are counted, and
        // logged once per burst.
        if !peer.has_root_budget()
            && let Err(tripped) = self
                .rate
                .admit_request(peer.budget_uid(), crate::system::time::now_unix_ms())
        {
            return respond(&self.requests_limited(peer, request.name(), tripped));
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
        if let Some(refusal) = self.refuse_protected(peer, &request, conn) {
            return respond(&refusal);
        }
        let reply = match request {
            Request::Ping => Reply::Pong {
                version: PROTOCOL_VERSION,
            },
            Request::Authenticate(req) => {
                let (reply, after) = self.authenticate(peer, req);
                self.hold_audit();
                let sent = respond(&reply);
                self.after_reply(after);
                self.release_audit();
                return sent;
            }
            Request::AccountCheck(req) => self.account_check(peer, req),
            Request::UserAdd {
                user,
                uid,
                password,
                must_change,
            } => self.user_add(peer, &user, uid, password, must_change),
            Request::UserRemove { user } => self.user_remove(peer, &user),
            Request::UserList => return self.user_list(respond),
            Request::UserShow { user } => self.user_show(&user),
            Request::UserSetDisabled { user, disabled } => {
                self.user_set_disabled(peer, &user, disabled)
            }
            Request::SetPassword {
                user,
                password,
                must_change,
            } => self.set_password(peer, &user, password, must_change),
            Request::Status { target: Some(t) } => self.status_of(&t),
            Request::Status { target: None } => return self.status_list(respond),
            Request::Lock { target, reason } => self.lock(peer, &target, reason.as_deref()),
            Request::Unlock { target } => self.unlock(peer, &target),
            Request::DaemonStatus => self.daemon_status(),
            Request::Reset {
                target,
                ttl_seconds,
                keep_password,
            } => self.reset(peer, &target, ttl_seconds, keep_password),
            Request::ChangeCheck(req) => self.change_check(peer, req),
            Request::ChangePassword(req) => self.change_password(peer, req),
            Request::ChangeQuality(req) => self.change_quality(peer, req),
            Request::SessionOpen(req) => self.session_open(peer, req),
            Request::SessionClose(req) => self.session_close(peer, req),
            Request::Sessions { user } => return self.sessions_list(user.as_deref(), respond),
            Request::Audit { user, since } => {
                return self.audit_list(user.as_deref(), since.as_deref(), respond);
            }
            Request::AuditVerify => self.audit_verify(),
            Request::AlertAck { id } => self.ack_alert(peer, &id),
            Request::Check => self.check(),
            Request::ImportBegin(options) => self.import_begin(conn, options),
            Request::ImportRows { rows } => self.import_rows(conn, rows),
            Request::ImportShadowRows { rows } => self.import_shadow_rows(conn, rows),
            Request::ImportCommit => return self.import_commit(peer, conn, respond),
            Request::Backup => return self.backup(peer, respond),
        };
        respond(&reply)
    }

    /// A request refused by the `requests` bucket: counted always, logged and audited once per
    /// uid per minute. The same reply whatever the request names, so it tells nothing about accounts.
    fn requests_limited(&self, peer: Peer, request: &str, tripped: Tripped) -> Reply {
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

    /// Hashes on the pool as a privileged caller: only root reaches the admin requests.
    fn hash_new_password(&self, user: &str, password: Secret) -> Result<String, Reply> {
        // The same rules as a user's own change: an administrator's password is no exception.
        self.live()
            .quality
            .check(user, password.expose())
            .map_err(|why| error(ErrorKind::InvalidArgument, why))?;
        let hasher = self.live().hasher.clone();
        match self
            .pool
            .run(&crate::policy::source::Source::Service, move || {
                hasher.hash(password.expose().as_bytes())
            }) {
            Err(_busy) => Err(Reply::Busy),
            Ok(Err(e)) => Err(internal(e)),
            Ok(Ok(hash)) => Ok(hash),
        }
    }

    fn user_add(
        &self,
        peer: Peer,
        user: &str,
        uid: Option<u32>,
        password: Option<Secret>,
        must_change: bool,
    ) -> Reply {
        if let Err(message) = validate_user_name(user) {
            return error(ErrorKind::InvalidArgument, message);
        }
        let uid = match resolve_uid(user, uid) {
            Ok(uid) => uid,
            Err(message) => return error(ErrorKind::InvalidArgument, message),
        };
        let hash = match password
            .map(|p| self.hash_new_password(user, p))
            .transpose()
        {
            Ok(hash) => hash,
            Err(reply) => return reply,
        };
        let result = self
            .store()
            .insert_account(user, uid, hash.as_deref(), must_change, peer.uid);
        match result {
            Err(e) => internal(e),
            Ok(Err(WriteConflict::NameTaken)) => error(
                ErrorKind::AlreadyExists,
                format!("user {user} already exists"),
            ),
            Ok(Err(WriteConflict::UidTaken(holder))) => error(
                ErrorKind::AlreadyExists,
                format!(
                    "uid {} already belongs to user {holder}",
                    uid.map_or(String::new(), |u| u.to_string())
                ),
            ),
            Ok(Err(WriteConflict::NotFound | WriteConflict::Changed)) => {
                internal("insert reported a missing or changed row")
            }
            Ok(Ok(account)) => Reply::User(Box::new(user_info(&account))),
        }
    }

    fn user_remove(&self, peer: Peer, user: &str) -> Reply {
        let result = self.store().remove_account(user, peer.uid);
        write_outcome(user, result)
    }

    fn user_set_disabled(&self, peer: Peer, user: &str, disabled: bool) -> Reply {
        let result = self.store().set_disabled(user, disabled, peer.uid);
        write_outcome(user, result)
    }

    fn set_password(&self, peer: Peer, user: &str, password: Secret, must_change: bool) -> Reply {
        // Check the account first so a typo does not cost a full hash.
        match self.store().account(user) {
            Err(e) => return internal(e),
            Ok(None) => return not_found(user),
            Ok(Some(_)) => {}
        }
        let hash = match self.hash_new_password(user, password) {
            Ok(hash) => hash,
            Err(reply) => return reply,
        };
        let result = self.store().set_hash(user, &hash, must_change, peer.uid);
        match result {
            Err(e) => internal(e),
            Ok(Err(_)) => not_found(user),
            Ok(Ok(revoked)) => {
                self.end_sessions(revoked);
                Reply::Ok
            }
        }
    }

    fn user_show(&self, user: &str) -> Reply {
        match self.store().account(user) {
            Err(e) => internal(e),
            Ok(None) => not_found(user),
            Ok(Some(a)) => Reply::User(Box::new(user_info(&a))),
        }
    }

    fn user_list(&self, respond: &mut Respond<'_>) -> Result<(), ProtoError> {
        let mut after: Option<String> = None;
        let mut count = 0u64;
        loop {
            let page = match self.store().accounts_page(after.as_deref(), LIST_PAGE) {
                Ok(page) => page,
                Err(e) => return respond(&internal(e)),
            };
            let Some(last) = page.last() else { break };
            after = Some(last.name.clone());
            for account in &page {
                respond(&Reply::Item(Box::new(user_info(account))))?;
                count += 1;
            }
        }
        respond(&Reply::End { count })
    }
}

/// The reply to an administrative write; its audit row was written with it.
fn write_outcome(user: &str, result: crate::error::Result<Result<(), WriteConflict>>) -> Reply {
    match result {
        Err(e) => internal(e),
        Ok(Err(_)) => not_found(user),
        Ok(Ok(())) => Reply::Ok,
    }
}

pub(crate) fn not_found(user: &str) -> Reply {
    error(ErrorKind::NotFound, format!("no such user: {user}"))
}

/// NSS is the authority on uids, in both directions: a name it knows keeps its uid (`--uid` may
/// only agree), and a uid it gives to another name cannot be borrowed — that user could otherwise
/// verify this account's password through pam.sock.
pub(crate) fn resolve_uid(user: &str, requested: Option<u32>) -> Result<Option<u32>, String> {
    resolve_uid_in(&crate::system::nss::Accounts::PerName, user, requested)
}

pub(crate) fn resolve_uid_in(
    accounts: &crate::system::nss::Accounts,
    user: &str,
    requested: Option<u32>,
) -> Result<Option<u32>, String> {
    match (accounts.uid_of(user), requested) {
        (Some(k), Some(r)) if k != r => Err(format!(
            "uid {r} disagrees with the system's account database, which gives {user} uid {k}"
        )),
        (Some(k), _) => Ok(Some(k)),
        (None, Some(r)) => match accounts.name_of(r) {
            Some(owner) => Err(format!(
                "uid {r} belongs to {owner} in the system's account database"
            )),
            None => Ok(Some(r)),
        },
        (None, None) => Ok(None),
    }
}

pub fn user_info(a: &Account) -> UserInfo {
    let hash = a.hash.as_deref();
    UserInfo {
        user: a.name.clone(),
        uid: a.uid,
        hash_scheme: hash.map(hashing::scheme_name),
        iterations: hash.and_then(hashing::inspect).and_then(|i| i.iterations),
        disabled: a.disabled,
        must_change: a.must_change,
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}
