//! The module's decisions, in safe Rust.
//!
//! `lib.rs` gathers PAM items into a [`HookContext`] and hands over two capabilities: a
//! [`Conversation`] (what the module may ask libpam and the user) and a [`Transport`] (how it
//! reaches credd). Everything that decides a PAM return code lives here and is tested with
//! scripted implementations of both, so no test needs libpam or a daemon.
//!
//! The rules (DESIGN.md §10) in one place:
//!
//! | hook | credd says | return code |
//! |---|---|---|
//! | authenticate | `Ok`, `MustChange` | `PAM_SUCCESS` (acct_mgmt enforces the change) |
//! | authenticate | `Denied`, `Locked`, `Busy`, `Disabled` | `PAM_AUTH_ERR` |
//! | both | `UnknownUser`, or a name credd cannot hold | `PAM_USER_UNKNOWN` (`PAM_IGNORE` with `ignore_unknown_user`) |
//! | both | daemon unreachable | `PAM_AUTHINFO_UNAVAIL` (`PAM_IGNORE` with `ignore_authinfo_unavail`) |
//! | authenticate | anything else | `PAM_AUTH_ERR`, logged |
//! | acct_mgmt | `Ok` | `PAM_SUCCESS` |
//! | acct_mgmt | `Disabled` | `PAM_ACCT_EXPIRED` |
//! | acct_mgmt | `Locked` | `PAM_PERM_DENIED` |
//! | acct_mgmt | `MustChange` | `PAM_NEW_AUTHTOK_REQD` |
//! | acct_mgmt | anything else | `PAM_PERM_DENIED`, logged |
//!
//! No path that saw an error returns `PAM_SUCCESS`: success is produced in exactly two match arms,
//! both on a reply credd actually sent.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use credd_proto::{
    AccountRequest, AuthRequest, Client, MAX_SECRET_LEN, ProtoError, Reply, Request, Secret,
    validate_user_name,
};
use pam::constants::{PAM_DISALLOW_NULL_AUTHTOK, PAM_SILENT, PamFlag, PamResultCode};

use crate::args::ModuleArgs;
use crate::log::Logger;

/// Prompt wording follows pam_unix, so screen lockers and expect scripts recognise it.
pub const PASSWORD_PROMPT: &str = "Password: ";

/// Shown by acct_mgmt when credd says the password must be changed (pam_unix's wording).
pub const MUST_CHANGE_MESSAGE: &str =
    "You are required to change your password immediately (administrator enforced)";
pub const DISABLED_MESSAGE: &str =
    "Your account has been disabled; please contact your system administrator.";
pub const LOCKED_MESSAGE: &str =
    "Your account is locked; please contact your system administrator.";

/// The lock message, with the time the lock lifts when it lifts by itself.
pub fn locked_message(until: Option<&str>) -> String {
    match until {
        Some(until) => format!("{LOCKED_MESSAGE} It unlocks at {until}."),
        None => LOCKED_MESSAGE.to_string(),
    }
}

/// What `PAM_AUTHTOK` currently holds.
#[derive(Debug)]
pub enum StoredToken {
    Unset,
    Set(Secret),
    /// Set by an earlier module, but not UTF-8: credd cannot carry it, so it cannot be right.
    NotUtf8,
}

/// Everything the flow may ask of libpam besides the items gathered up front: the user dialogue
/// and the `PAM_AUTHTOK` item shared with the other modules of the stack.
pub trait Conversation {
    /// Asks for a secret with echo off. `Ok(None)` means the application returned no answer;
    /// `Err(PAM_AUTH_ERR)` that the answer cannot be a credd password (not UTF-8); any other error
    /// is the conversation's own.
    fn prompt_secret(&mut self, prompt: &str) -> Result<Option<Secret>, PamResultCode>;
    /// A `PAM_TEXT_INFO` message. Failures are not errors: the message is a courtesy.
    fn info(&mut self, message: &str);
    /// A `PAM_ERROR_MSG` message. Same.
    fn error(&mut self, message: &str);
    /// The token an earlier module stored (`use_first_pass`, `try_first_pass`).
    fn stored_token(&mut self) -> StoredToken;
    /// Stores the token we prompted for, so later modules (pam_gnome_keyring, …) can use it.
    fn store_token(&mut self, token: &Secret) -> Result<(), PamResultCode>;
}

/// One round trip to credd.
pub trait Transport {
    fn call(&mut self, request: &Request) -> Result<Reply, ProtoError>;
}

/// The real transport: one connection per hook call, opened on the first request and reused for
/// the rest of that call, never kept after it (so it cannot leak across a `fork`).
pub struct SocketTransport {
    socket: PathBuf,
    timeout: Duration,
    client: Option<Client>,
}

impl SocketTransport {
    pub fn new(socket: &Path, timeout: Duration) -> Self {
        SocketTransport {
            socket: socket.to_path_buf(),
            timeout,
            client: None,
        }
    }
}

impl Transport for SocketTransport {
    fn call(&mut self, request: &Request) -> Result<Reply, ProtoError> {
        let mut client = match self.client.take() {
            Some(client) => client,
            None => Client::connect(&self.socket, self.timeout)?,
        };
        let reply = client.call(request)?;
        // Only a connection that just completed a clean exchange is worth keeping: after an
        // error we cannot know where in a frame the stream stopped.
        self.client = Some(client);
        Ok(reply)
    }
}

/// The plain values a hook gathered from PAM before any decision is made.
pub struct HookContext {
    /// `PAM_USER` exactly as libpam holds it; checked here, not in the FFI layer, so the check is
    /// tested.
    pub user: Vec<u8>,
    pub service: String,
    pub rhost: Option<String>,
    pub tty: Option<String>,
    pub ruser: Option<String>,
    pub flags: PamFlag,
    pub args: ModuleArgs,
    pub log: Logger,
}

impl HookContext {
    /// `PAM_SILENT` from the application or `silent` from the service file.
    fn quiet(&self) -> bool {
        self.args.silent || self.flags & PAM_SILENT != 0
    }

    /// A user name credd can hold, or the return code for one it cannot. Such a name cannot be a
    /// credd account, so it is an unknown user, and the daemon is not bothered with it.
    fn user_name(&self) -> Result<&str, PamResultCode> {
        let name = match std::str::from_utf8(&self.user) {
            Ok(name) => name,
            Err(_) => {
                self.log
                    .debug("user name is not UTF-8; not a credd account");
                return Err(self.unknown_user());
            }
        };
        if let Err(why) = validate_user_name(name) {
            // The name itself is not logged: a mistyped name is often a password.
            self.log.debug(&format!(
                "user name is not acceptable ({why}); not a credd account"
            ));
            return Err(self.unknown_user());
        }
        Ok(name)
    }

    fn unknown_user(&self) -> PamResultCode {
        if self.args.ignore_unknown_user {
            PamResultCode::PAM_IGNORE
        } else {
            PamResultCode::PAM_USER_UNKNOWN
        }
    }

    /// Logs a transport failure (always: an operator must learn that credd is down) and maps it.
    /// `otherwise` is the hook's fail-closed code for errors that are not "unreachable".
    fn transport_failure(&self, err: &ProtoError, otherwise: PamResultCode) -> PamResultCode {
        if err.is_unavailable() {
            self.log.error(&format!(
                "credd is unreachable at {}: {err}",
                self.args.socket.display()
            ));
            if self.args.ignore_authinfo_unavail {
                PamResultCode::PAM_IGNORE
            } else {
                PamResultCode::PAM_AUTHINFO_UNAVAIL
            }
        } else {
            self.log
                .error(&format!("protocol error talking to credd: {err}"));
            otherwise
        }
    }
}

/// `pam_sm_authenticate`: obtain the password, ask credd, map the answer.
pub fn authenticate(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    let user = match ctx.user_name() {
        Ok(user) => user,
        Err(code) => return code,
    };
    let secret = match obtain_password(ctx, conv) {
        Ok(secret) => secret,
        Err(code) => return code,
    };
    if secret.is_empty() && ctx.flags & PAM_DISALLOW_NULL_AUTHTOK != 0 {
        ctx.log.debug(&format!(
            "empty password for {user} refused: the application set PAM_DISALLOW_NULL_AUTHTOK"
        ));
        return PamResultCode::PAM_AUTH_ERR;
    }
    if secret.len() > MAX_SECRET_LEN {
        // No credd password can be this long (the frame would not even carry it).
        ctx.log.debug(&format!(
            "password for {user} refused: longer than {MAX_SECRET_LEN} bytes"
        ));
        return PamResultCode::PAM_AUTH_ERR;
    }

    let request = Request::Authenticate(AuthRequest {
        user: user.to_owned(),
        secret,
        service: ctx.service.clone(),
        rhost: ctx.rhost.clone(),
        tty: ctx.tty.clone(),
        ruser: ctx.ruser.clone(),
    });
    let reply = match transport.call(&request) {
        Ok(reply) => reply,
        Err(err) => return ctx.transport_failure(&err, PamResultCode::PAM_AUTH_ERR),
    };
    drop(request);

    ctx.log.debug(&format!(
        "credd answered {} for {}",
        describe(&reply),
        shown(&reply, user)
    ));
    match reply {
        // A valid reset code also lands here as MustChange: authentication succeeded, and
        // acct_mgmt answers NEW_AUTHTOK_REQD so the application runs chauthtok before a session.
        Reply::Ok | Reply::MustChange => PamResultCode::PAM_SUCCESS,
        Reply::Denied | Reply::Busy | Reply::Disabled => PamResultCode::PAM_AUTH_ERR,
        // An unknown name "locks" like an account and shows the same message; only the return
        // code differs, as it does for every unknown name (pam_unix's convention).
        Reply::Locked { until, unknown } => {
            if !ctx.quiet() && !ctx.args.no_lock_message {
                conv.error(&locked_message(until.as_deref()));
            }
            if unknown {
                ctx.unknown_user()
            } else {
                PamResultCode::PAM_AUTH_ERR
            }
        }
        Reply::RateLimited { unknown: true } => ctx.unknown_user(),
        Reply::RateLimited { unknown: false } => PamResultCode::PAM_AUTH_ERR,
        Reply::UnknownUser => ctx.unknown_user(),
        other => {
            ctx.log.error(&format!(
                "unexpected answer to authenticate: {}",
                describe(&other)
            ));
            PamResultCode::PAM_AUTH_ERR
        }
    }
}

/// `pam_sm_acct_mgmt`: may this account log in now?
pub fn account(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    let user = match ctx.user_name() {
        Ok(user) => user,
        Err(code) => return code,
    };
    let reply = match check_account(ctx, transport, user) {
        Ok(reply) => reply,
        Err(err) => return ctx.transport_failure(&err, PamResultCode::PAM_PERM_DENIED),
    };

    ctx.log.debug(&format!(
        "credd answered {} for {}",
        describe(&reply),
        shown(&reply, user)
    ));
    match reply {
        Reply::Ok => PamResultCode::PAM_SUCCESS,
        Reply::MustChange => {
            if !ctx.quiet() {
                conv.error(MUST_CHANGE_MESSAGE);
            }
            PamResultCode::PAM_NEW_AUTHTOK_REQD
        }
        Reply::Disabled => {
            if !ctx.quiet() {
                conv.error(DISABLED_MESSAGE);
            }
            PamResultCode::PAM_ACCT_EXPIRED
        }
        Reply::Locked { until, .. } => {
            if !ctx.quiet() && !ctx.args.no_lock_message {
                conv.error(&locked_message(until.as_deref()));
            }
            PamResultCode::PAM_PERM_DENIED
        }
        Reply::UnknownUser => ctx.unknown_user(),
        other => {
            ctx.log.error(&format!(
                "unexpected answer to account check: {}",
                describe(&other)
            ));
            PamResultCode::PAM_PERM_DENIED
        }
    }
}

/// The password to check: from `PAM_AUTHTOK` (`use_first_pass`, `try_first_pass`) or from the
/// user. A prompted password is stored as `PAM_AUTHTOK` for the modules after us, as pam_unix does.
/// Shown when a credd account's password change is refused.
pub const CHANGE_UNAVAILABLE_MESSAGE: &str = "Password changes for this account are not available yet; please contact your system administrator.";

/// `pam_sm_chauthtok` until credd implements password changes: fail closed for credd accounts.
///
/// Returning `PAM_IGNORE` would let the rest of the password stack (pam_unix) "succeed" for a
/// credd account, so a login told `PAM_NEW_AUTHTOK_REQD` would go ahead with the change never
/// made. Accounts credd does not hold get `PAM_USER_UNKNOWN` (or `PAM_IGNORE` with
/// `ignore_unknown_user`), so stacks can still fall through to pam_unix for them.
pub fn chauthtok(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    let user = match ctx.user_name() {
        Ok(user) => user,
        Err(code) => return code,
    };
    match check_account(ctx, transport, user) {
        Err(err) => ctx.transport_failure(&err, PamResultCode::PAM_AUTHTOK_ERR),
        Ok(Reply::UnknownUser) => ctx.unknown_user(),
        Ok(reply) => {
            ctx.log.debug(&format!(
                "password change for {user} refused: not implemented yet (credd answered {})",
                describe(&reply)
            ));
            if !ctx.quiet() {
                conv.error(CHANGE_UNAVAILABLE_MESSAGE);
            }
            PamResultCode::PAM_AUTHTOK_ERR
        }
    }
}

fn check_account(
    ctx: &HookContext,
    transport: &mut impl Transport,
    user: &str,
) -> Result<Reply, ProtoError> {
    transport.call(&Request::AccountCheck(AccountRequest {
        user: user.to_owned(),
        service: ctx.service.clone(),
    }))
}

fn obtain_password(
    ctx: &HookContext,
    conv: &mut impl Conversation,
) -> Result<Secret, PamResultCode> {
    let args = &ctx.args;
    if args.use_first_pass || args.try_first_pass {
        match conv.stored_token() {
            StoredToken::Set(token) => {
                ctx.log
                    .debug("using the password stored by an earlier module");
                return Ok(token);
            }
            StoredToken::NotUtf8 => {
                // The user typed this once already; prompting again would only confuse them.
                ctx.log
                    .debug("the stored password is not UTF-8 and cannot be a credd password");
                return Err(PamResultCode::PAM_AUTH_ERR);
            }
            StoredToken::Unset if args.use_first_pass => {
                ctx.log
                    .debug("use_first_pass: no password stored by an earlier module");
                return Err(PamResultCode::PAM_AUTH_ERR);
            }
            StoredToken::Unset => {}
        }
    }

    let secret = match conv.prompt_secret(PASSWORD_PROMPT) {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            ctx.log.debug("the application returned no password");
            return Err(PamResultCode::PAM_CONV_ERR);
        }
        Err(code) => {
            ctx.log
                .debug(&format!("the conversation failed ({code:?})"));
            return Err(conversation_failure(code));
        }
    };
    if let Err(code) = conv.store_token(&secret) {
        ctx.log
            .error(&format!("could not store PAM_AUTHTOK ({code:?})"));
        return Err(never_success(code, PamResultCode::PAM_SYSTEM_ERR));
    }
    Ok(secret)
}

/// A failed conversation is `PAM_CONV_ERR`, except when an event-driven application said "ask
/// again later" (`PAM_CONV_AGAIN`, reported to the stack as `PAM_INCOMPLETE` as pam_unix does) and
/// when the answer itself was unusable.
fn conversation_failure(code: PamResultCode) -> PamResultCode {
    match code {
        PamResultCode::PAM_CONV_AGAIN => PamResultCode::PAM_INCOMPLETE,
        PamResultCode::PAM_INCOMPLETE => PamResultCode::PAM_INCOMPLETE,
        // The user answered, but with something that cannot be a credd password.
        PamResultCode::PAM_AUTH_ERR => PamResultCode::PAM_AUTH_ERR,
        _ => PamResultCode::PAM_CONV_ERR,
    }
}

/// Guards error paths against a library that reports failure with a success code.
fn never_success(code: PamResultCode, instead: PamResultCode) -> PamResultCode {
    match code {
        PamResultCode::PAM_SUCCESS | PamResultCode::PAM_IGNORE => instead,
        other => other,
    }
}

/// A reply for a log line. `Error` carries the daemon's message, which never holds a secret;
/// control characters are escaped by the logger. No reply variant carries a secret.
/// The user name as debug lines may show it: not when credd does not know it, because a name
/// typed at the login prompt is often a password typed into the wrong field.
fn shown<'a>(reply: &Reply, user: &'a str) -> &'a str {
    match reply {
        Reply::UnknownUser
        | Reply::Locked { unknown: true, .. }
        | Reply::RateLimited { unknown: true } => "(unknown name)",
        _ => user,
    }
}

fn describe(reply: &Reply) -> String {
    match reply {
        Reply::Locked {
            until: Some(until), ..
        } => format!("Locked until {until}"),
        Reply::Error { kind, message } => format!("Error {}: {message}", kind.as_str()),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
