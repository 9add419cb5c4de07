//! The replies every handler shares: errors in the protocol's kinds (store failures reported
//! without their details), an account as `credctl` shows it, and the uid rules of NSS.

use credd_proto::{ErrorKind, ProtoError, Reply, UserInfo};

use crate::crypto::hashing;
use crate::store::Account;
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
