//! `credctl user add|remove|disable|enable|show|list` and `credctl passwd`: the accounts
//! themselves, each write with its audit row in its transaction.

use credd_proto::{ErrorKind, ProtoError, Reply, Secret, validate_user_name};

use super::reply::{LIST_PAGE, Respond, error, internal, not_found, resolve_uid, user_info};
use crate::handlers::context::Context;
use crate::state::Daemon;
use crate::store::WriteConflict;

impl Daemon {
    /// Hashes on the pool as a privileged caller: only root reaches the admin requests.
    pub(crate) fn hash_new_password(
        &self,
        ctx: &Context<'_>,
        user: &str,
        password: Secret,
    ) -> Result<String, Reply> {
        // The same rules as a user's own change: an administrator's password is no exception.
        ctx.live
            .quality
            .check(user, password.expose())
            .map_err(|why| error(ErrorKind::InvalidArgument, why))?;
        let hasher = ctx.live.hasher.clone();
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

    pub(crate) fn user_add(
        &self,
        ctx: &Context<'_>,
        user: &str,
        uid: Option<u32>,
        password: Option<Secret>,
        must_change: bool,
    ) -> Reply {
        let peer = ctx.peer;
        if let Err(message) = validate_user_name(user) {
            return error(ErrorKind::InvalidArgument, message);
        }
        let uid = match resolve_uid(user, uid) {
            Ok(uid) => uid,
            Err(message) => return error(ErrorKind::InvalidArgument, message),
        };
        let hash = match password
            .map(|p| self.hash_new_password(ctx, user, p))
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

    pub(crate) fn user_remove(&self, ctx: &Context<'_>, user: &str) -> Reply {
        let peer = ctx.peer;
        let result = self.store().remove_account(user, peer.uid);
        write_outcome(user, result)
    }

    pub(crate) fn user_set_disabled(&self, ctx: &Context<'_>, user: &str, disabled: bool) -> Reply {
        let peer = ctx.peer;
        let result = self.store().set_disabled(user, disabled, peer.uid);
        write_outcome(user, result)
    }

    pub(crate) fn set_password(
        &self,
        ctx: &Context<'_>,
        user: &str,
        password: Secret,
        must_change: bool,
    ) -> Reply {
        let peer = ctx.peer;
        // Check the account first so a typo does not cost a full hash.
        match self.store().account(user) {
            Err(e) => return internal(e),
            Ok(None) => return not_found(user),
            Ok(Some(_)) => {}
        }
        let hash = match self.hash_new_password(ctx, user, password) {
            Ok(hash) => hash,
            Err(reply) => return reply,
        };
        let result = self.store().set_hash(user, &hash, must_change, peer.uid);
        match result {
            Err(e) => internal(e),
            Ok(Err(_)) => not_found(user),
            Ok(Ok(revoked)) => {
                self.end_sessions(ctx, revoked);
                Reply::Ok
            }
        }
    }

    pub(crate) fn user_show(&self, user: &str) -> Reply {
        match self.store().account(user) {
            Err(e) => internal(e),
            Ok(None) => not_found(user),
            Ok(Some(a)) => Reply::User(Box::new(user_info(&a))),
        }
    }

    pub(crate) fn user_list(&self, respond: &mut Respond<'_>) -> Result<(), ProtoError> {
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
