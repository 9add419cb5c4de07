//! What a member of `[admin] group` may not touch: root's account and the accounts of other
//! members (DESIGN.md §4). Otherwise one compromised administrator could reset another and take
//! over both, or reset root's credd password. Only root may act on those accounts.

use credd_proto::{ErrorKind, Reply, Request, Target};

use crate::audit::Event;
use crate::handlers::error;
use crate::import::Connection;
use crate::peer::Peer;
use crate::state::Daemon;

impl Daemon {
    /// `Some(refusal)` when `peer` is an admin-group member (not root) and `request` writes to a
    /// protected account. Reads (status, listings, audit) stay open to members.
    pub(crate) fn refuse_protected(
        &self,
        peer: Peer,
        request: &Request,
        conn: &Connection,
    ) -> Option<Reply> {
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
        if !protected {
            return None;
        }
        self.counters.bump(&self.counters.refused_peers);
        self.record(&Event {
            name: "peer_refused",
            actor_uid: Some(peer.uid),
            outcome: "refused",
            detail: format!(
                "request={} reason=protected_account pid={}",
                request.name(),
                peer.pid
            ),
            ..Default::default()
        });
        Some(error(
            ErrorKind::NotPermitted,
            "members of the admin group cannot act on root or on other members of the admin \
             group; only root can",
        ))
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
        let nss_uid = crate::nss::Accounts::PerName.uid_of(name);
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
        let system_name = crate::nss::Accounts::PerName.name_of(uid);
        if system_name.is_some_and(|n| group.is_some_and(|g| g.has_member(&n))) {
            return true;
        }
        let stored = self.store().account_by_uid(uid);
        match stored {
            Ok(Some(account)) => {
                crate::nss::Accounts::PerName.uid_of(&account.name) == Some(0)
                    || group.is_some_and(|g| g.has_member(&account.name))
            }
            Ok(None) => false,
            Err(_) => true,
        }
    }
}
