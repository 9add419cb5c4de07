//! The few libpam calls pam-bindings does not wrap, and the real [`Conversation`].
//!
//! Every `unsafe` block of the crate (besides the one `syslog` call) is here, each small and
//! commented; the decisions stay in `flow.rs`.

use std::ffi::CStr;

use credd_proto::Secret;
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO, PamResultCode};
use pam::conv::Conv;
use pam::items::{AuthTok, OldAuthTok, RHost, RUser, Service, Tty, User};
use pam::module::PamHandle;
use zeroize::{Zeroize, Zeroizing};

use crate::flow::{Conversation, RememberedSecret, StoredToken};

/// `PAM_AUTHTOK` and `PAM_OLDAUTHTOK` from `<security/_pam_types.h>`.
const PAM_AUTHTOK: libc::c_int = 6;
const PAM_OLDAUTHTOK: libc::c_int = 7;

/// The PAM module data name under which authenticate keeps a [`RememberedSecret`] for the forced
/// password change. Module data is shared by every module of the handle, so the name carries the
/// module's own (Linux-PAM's convention); nothing else is ever stored under it.
const CHANGE_SECRET_DATA: &str = "pam_credd_authtok";

// libpam is already linked by pam-bindings; naming it again documents where these come from.
#[link(name = "pam")]
unsafe extern "C" {
    fn pam_set_item(
        pamh: *mut PamHandle,
        item_type: libc::c_int,
        item: *const libc::c_void,
    ) -> libc::c_int;
    fn pam_fail_delay(pamh: *mut PamHandle, usec: libc::c_uint) -> libc::c_int;
}

/// Asks libpam to delay the answer after a failed authentication (libpam applies the longest
/// delay any module asked for, randomised by ±25 %, and only when the stack fails).
pub fn set_fail_delay(pamh: &mut PamHandle, usec: u32) -> Result<(), PamResultCode> {
    // SAFETY: pamh is the live handle of the current hook call.
    let rc = unsafe { pam_fail_delay(pamh, usec) };
    result_of(rc)
}

/// The real uid of the process: what tells root running `passwd` apart from a user running the
/// setuid-root `passwd` (through SO_PEERCRED credd sees uid 0 for both).
pub fn real_uid() -> libc::uid_t {
    // SAFETY: getuid(2) takes no arguments, touches no memory of ours and always succeeds.
    unsafe { libc::getuid() }
}

/// `PAM_USER` as raw bytes, asking the application for it when no earlier module set it.
///
/// pam-bindings' `get_user` refuses a name that is not UTF-8 with `PAM_SYSTEM_ERR`; such a name
/// cannot be a credd account, so we fetch its bytes and let the flow answer "unknown user".
pub fn user_bytes(pamh: &mut PamHandle) -> Result<Vec<u8>, PamResultCode> {
    match pamh.get_user(None) {
        Ok(name) => Ok(name.into_bytes()),
        Err(PamResultCode::PAM_SYSTEM_ERR) => match pamh.get_item::<User>() {
            Ok(Some(user)) => Ok(user.to_bytes().to_vec()),
            _ => Err(PamResultCode::PAM_SYSTEM_ERR),
        },
        // An event-driven application asked us to come back later.
        Err(PamResultCode::PAM_CONV_AGAIN) => Err(PamResultCode::PAM_INCOMPLETE),
        Err(PamResultCode::PAM_SUCCESS) => Err(PamResultCode::PAM_SYSTEM_ERR),
        Err(code) => Err(code),
    }
}

/// A string item, `None` when unset or empty. The items are claims recorded by credd, not
/// decisions, so a stray non-UTF-8 byte becomes U+FFFD rather than failing the login.
pub fn service(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<Service>().ok().flatten().map(|s| s.0))
}

pub fn rhost(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<RHost>().ok().flatten().map(|s| s.0))
}

pub fn tty(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<Tty>().ok().flatten().map(|s| s.0))
}

pub fn ruser(pamh: &PamHandle) -> Option<String> {
    item_string(pamh.get_item::<RUser>().ok().flatten().map(|s| s.0))
}

fn item_string(item: Option<&CStr>) -> Option<String> {
    item.map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
}

fn result_of(rc: libc::c_int) -> Result<(), PamResultCode> {
    if rc == 0 {
        Ok(())
    } else {
        // The exact code matters little to our callers; never let it read as success.
        Err(PamResultCode::try_from(rc).unwrap_or(PamResultCode::PAM_SYSTEM_ERR))
    }
}

/// The real conversation: libpam's `pam_conv` for the user, `PAM_AUTHTOK` for the stack.
///
/// It holds the handle rather than a `Conv`, because `Conv` borrows the handle immutably while
/// storing `PAM_AUTHTOK` needs it mutably; the conversation item is looked up per message.
pub struct PamConversation<'a> {
    pamh: &'a mut PamHandle,
}

impl<'a> PamConversation<'a> {
    pub fn new(pamh: &'a mut PamHandle) -> Self {
        PamConversation { pamh }
    }

    fn send(
        &mut self,
        style: pam::constants::PamMessageStyle,
        message: &str,
    ) -> Result<Option<pam::secret::SecretBytes>, PamResultCode> {
        match self.pamh.get_item::<Conv>() {
            Ok(Some(conv)) => conv.send(style, message),
            Ok(None) => Err(PamResultCode::PAM_CONV_ERR),
            Err(code) => Err(code),
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt_secret(&mut self, prompt: &str) -> Result<Option<Secret>, PamResultCode> {
        match self.send(PAM_PROMPT_ECHO_OFF, prompt)? {
            None => Ok(None),
            // SecretBytes wipes its own copy when dropped at the end of this arm.
            Some(answer) => secret_from_bytes(answer.as_bytes())
                .map(Some)
                // A password credd cannot carry cannot be right; there is nothing to ask again.
                .ok_or(PamResultCode::PAM_AUTH_ERR),
        }
    }

    fn info(&mut self, message: &str) {
        let _ = self.send(PAM_TEXT_INFO, message);
    }

    fn error(&mut self, message: &str) {
        let _ = self.send(PAM_ERROR_MSG, message);
    }

    fn stored_token(&mut self) -> StoredToken {
        match self.pamh.get_item::<AuthTok>() {
            Ok(Some(token)) => stored(token.as_bytes()),
            _ => StoredToken::Unset,
        }
    }

    fn store_token(&mut self, token: &Secret) -> Result<(), PamResultCode> {
        set_secret_item(self.pamh, PAM_AUTHTOK, token)
    }

    fn stored_old_token(&mut self) -> StoredToken {
        match self.pamh.get_item::<OldAuthTok>() {
            Ok(Some(token)) => stored(token.as_bytes()),
            _ => StoredToken::Unset,
        }
    }

    fn store_old_token(&mut self, token: &Secret) -> Result<(), PamResultCode> {
        set_secret_item(self.pamh, PAM_OLDAUTHTOK, token)
    }

    fn remembered_for_change(&mut self) -> Option<RememberedSecret> {
        // SAFETY: get_data requires the data under this name to be a `RememberedSecret`. Only
        // `remember_for_change` below stores under CHANGE_SECRET_DATA, always a
        // `Box<RememberedSecret>`, and the name is ours by Linux-PAM's naming convention. The
        // reference lives only until it is cloned, while the handle is borrowed.
        let remembered = unsafe { self.pamh.get_data::<RememberedSecret>(CHANGE_SECRET_DATA) };
        // PAM_NO_MODULE_DATA (nothing remembered) and any failure alike: nothing to use.
        remembered.ok().cloned()
    }

    fn remember_for_change(&mut self, remembered: RememberedSecret) -> Result<(), PamResultCode> {
        // pam-bindings hands libpam a cleanup that drops the Box (so `Secret` wipes itself) when
        // the data is replaced or the application calls pam_end; on failure it drops it at once.
        self.pamh.set_data(CHANGE_SECRET_DATA, Box::new(remembered))
    }
}

/// A set secret item, from the bytes libpam holds.
fn stored(bytes: &[u8]) -> StoredToken {
    match secret_from_bytes(bytes) {
        Some(secret) => StoredToken::Set(secret),
        None => StoredToken::NotUtf8,
    }
}

/// Sets `PAM_AUTHTOK` or `PAM_OLDAUTHTOK` (pam-bindings can read them, not set them) through a
/// buffer that is wiped afterwards.
fn set_secret_item(
    pamh: &mut PamHandle,
    item: libc::c_int,
    token: &Secret,
) -> Result<(), PamResultCode> {
    let bytes = token.expose().as_bytes();
    if bytes.contains(&0) {
        // Cannot be expressed as a C string; later modules will prompt for themselves.
        return Err(PamResultCode::PAM_BUF_ERR);
    }
    let mut buffer = Zeroizing::new(Vec::with_capacity(bytes.len() + 1));
    buffer.extend_from_slice(bytes);
    buffer.push(0);
    // SAFETY: pamh is the live handle of the current hook call and item one of the two string
    // items above; buffer is NUL-terminated and outlives the call; libpam copies the string (and
    // wipes its previous copy) before returning, so nothing keeps our pointer.
    let rc = unsafe { pam_set_item(pamh, item, buffer.as_ptr().cast()) };
    result_of(rc)
}

/// A secret from bytes that libpam or the application own; the intermediate copy is wiped on
/// every path. `None` when the bytes are not UTF-8.
fn secret_from_bytes(bytes: &[u8]) -> Option<Secret> {
    match String::from_utf8(bytes.to_vec()) {
        Ok(text) => Some(Secret::new(text)),
        Err(err) => {
            err.into_bytes().zeroize();
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_utf8() {
        assert_eq!(
            secret_from_bytes(b"hunter2").map(|s| s.expose().to_owned()),
            Some("hunter2".into())
        );
        assert!(secret_from_bytes(&[0x66, 0xff, 0x66]).is_none());
    }

    #[test]
    fn empty_items_count_as_unset() {
        assert_eq!(item_string(Some(c"")), None);
        assert_eq!(item_string(None), None);
        assert_eq!(item_string(Some(c"pts/0")), Some("pts/0".into()));
    }

    #[test]
    fn libpam_failures_never_read_as_success() {
        assert_eq!(result_of(0), Ok(()));
        assert_eq!(result_of(7), Err(PamResultCode::PAM_AUTH_ERR));
        assert_eq!(result_of(9999), Err(PamResultCode::PAM_SYSTEM_ERR));
    }
}
