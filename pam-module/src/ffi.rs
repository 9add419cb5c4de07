//! The few libpam calls pam-bindings does not wrap, and the real [`Conversation`].
//!
//! Every `unsafe` block of the crate (besides the one `syslog` call) is here, each small and
//! commented; the decisions stay in `flow.rs`.

use std::ffi::CStr;

use credd_proto::Secret;
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_TEXT_INFO, PamResultCode};
use pam::conv::Conv;
use pam::items::{AuthTok, RHost, RUser, Service, Tty, User};
use pam::module::PamHandle;
use zeroize::{Zeroize, Zeroizing};

use crate::flow::{Conversation, StoredToken};

/// `PAM_AUTHTOK` from `<security/_pam_types.h>`.
const PAM_AUTHTOK: libc::c_int = 6;

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
            Ok(Some(token)) => match secret_from_bytes(token.as_bytes()) {
                Some(secret) => StoredToken::Set(secret),
                None => StoredToken::NotUtf8,
            },
            _ => StoredToken::Unset,
        }
    }

    fn store_token(&mut self, token: &Secret) -> Result<(), PamResultCode> {
        let bytes = token.expose().as_bytes();
        if bytes.contains(&0) {
            // Cannot be expressed as a C string; later modules will prompt for themselves.
            return Err(PamResultCode::PAM_BUF_ERR);
        }
        let mut buffer = Zeroizing::new(Vec::with_capacity(bytes.len() + 1));
        buffer.extend_from_slice(bytes);
        buffer.push(0);
        // SAFETY: buffer is NUL-terminated and outlives the call; libpam copies the string
        // (and wipes its previous copy) before returning, so nothing keeps our pointer.
        let rc = unsafe { pam_set_item(self.pamh, PAM_AUTHTOK, buffer.as_ptr().cast()) };
        result_of(rc)
    }
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
