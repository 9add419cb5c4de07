//! What a member of `[admin] group` may not touch: root's account and the accounts of other members
//! (docs/architecture.md#callers). Otherwise one compromised administrator could reset another and
//! take over both, or reset root's credd password. Only root may act on those accounts.

use credd_proto::{ErrorKind, Reply, Request, Target};

use crate::audit::chain::Event;
use crate::handlers::context::Context;
use crate::handlers::reply::error;
use crate::state::Daemon;

impl Daemon {
    /// `Some(refusal)` when `peer` is an admin-group member (not root) and `request` writes to a
    /// protected account. Reads (status, listings, audit) stay open to members.
    pub(crate) fn refuse_protected(&self, ctx: &Context<'_>, request: &Request) -> Option<Reply> {
        let peer = ctx.peer;
        let conn = &*ctx.conn;
        if peer.is_root() || !peer.admin_member {
            return None;
        }
        let protected = match request {
            Request::UserAdd { user, uid, .. } => {
                self.protected_name(user) || uid.is_some_and(|u| self.protected_uid(u))
            }
            Request::UserRemove { user }
            | Request::UserSetDisabled { user, .. }
            | Request::SetPassword { user, .. } => self.protected_name(user),
            Request::Lock { target, .. }
            | Request::Unlock { target }
            | Request::Reset { target, .. } => self.protected_target(target),
            Request::ImportCommit => conn.staged_targets().any(|(user, uid)| {
                self.protected_name(user) || uid.is_some_and(|u| self.protected_uid(u))
            }),
            _ => false,
        };
        if protected {
            return Some(self.refused(
                ctx,
                request,
                "protected_account",
                "members of the admin group cannot act on root or on other members of the admin \
                 group; only root can",
            ));
        }
        // R10: an account for a name the system does not know yet, with a password a member
        // chose, would be inherited by whoever gets that name later, password and all. Members
        // may add such names only without one (root, or a reset, gives it a credential later).
        let unknown_with_password = match request {
            Request::UserAdd {
                user,
                password: Some(_),
                ..
            } => !self.known_to_nss(user),
            Request::ImportCommit => conn.staged_credentials().any(|u| !self.known_to_nss(u)),
            _ => false,
        };
        if unknown_with_password {
            return Some(self.refused(
                ctx,
                request,
                "unknown_name_with_password",
                "members of the admin group may add a name the system does not know only without \
                 a password (its future owner would inherit it); add it without one, or ask root",
            ));
        }
        None
    }

    fn refused(&self, ctx: &Context<'_>, request: &Request, reason: &str, message: &str) -> Reply {
        let peer = ctx.peer;
        self.counters.bump(&self.counters.refused_peers);
        self.record(&Event {
            name: "peer_refused",
            actor_uid: Some(peer.uid),
            outcome: "refused",
            detail: format!(
                "request={} reason={reason} pid={}",
                request.name(),
                peer.pid
            ),
            ..Default::default()
        });
        error(ErrorKind::NotPermitted, message)
    }

    fn known_to_nss(&self, name: &str) -> bool {
        crate::system::nss::Accounts::PerName.uid_of(name).is_some()
    }

    fn protected_target(&self, target: &Target) -> bool {
        match target {
            Target::Name(name) => self.protected_name(name),
            Target::Uid(uid) => self.protected_uid(*uid),
        }
    }

    /// A name is protected when it is root's, when NSS puts it in the admin group, or when the
    /// account stored under it carries a protected uid.
    fn protected_name(&self, name: &str) -> bool {
        let group = self.admin_group.as_ref();
        let nss_uid = crate::system::nss::Accounts::PerName.uid_of(name);
        if nss_uid == Some(0) || group.is_some_and(|g| g.has_member(name)) {
            return true;
        }
        // The store's guard must be gone before protected_uid takes it again.
        let stored = self.store().account(name);
        match stored {
            Ok(Some(account)) => account.uid.is_some_and(|u| self.protected_uid(u)),
            Ok(None) => false,
            // The store cannot tell: refuse rather than guess.
            Err(_) => true,
        }
    }

    fn protected_uid(&self, uid: u32) -> bool {
        if uid == 0 {
            return true;
        }
        let group = self.admin_group.as_ref();
        let system_name = crate::system::nss::Accounts::PerName.name_of(uid);
        if system_name.is_some_and(|n| group.is_some_and(|g| g.has_member(&n))) {
            return true;
        }
        let stored = self.store().account_by_uid(uid);
        match stored {
            Ok(Some(account)) => {
                crate::system::nss::Accounts::PerName.uid_of(&account.name) == Some(0)
                    || group.is_some_and(|g| g.has_member(&account.name))
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}
