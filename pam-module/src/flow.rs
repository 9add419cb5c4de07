//! The module's decisions, in safe Rust.
//!
//! `lib.rs` gathers PAM items into a [`HookContext`] and hands over two capabilities: a
//! [`Conversation`] (what the module may ask libpam and the user) and a [`Transport`] (how it
//! reaches credd). Everything that decides a PAM return code lives here and is tested with
//! scripted implementations of both, so no test needs libpam or a daemon.
//!
//! The rules (docs/pam.md) in one place:
//!
//! | hook | credd says | return code |
//! |---|---|---|
//! | authenticate | `Ok`, `MustChange` | `PAM_SUCCESS` (acct_mgmt enforces the change; on `MustChange` the secret is remembered for chauthtok) |
//! | authenticate | `Denied`, `Locked`, `Disabled`, `RateLimited` | `PAM_AUTH_ERR` (`Locked`, `Disabled` and `RateLimited` say so unless silent) |
//! | authenticate | `Busy` (no password checked) | `PAM_AUTHINFO_UNAVAIL` (`PAM_IGNORE` with `ignore_authinfo_unavail`), logged, so the break-glass applies |
//! | auth, account, chauthtok | `UnknownUser`, or a name credd cannot hold | `PAM_USER_UNKNOWN` (`PAM_IGNORE` with `ignore_unknown_user`) |
//! | auth, account, chauthtok | daemon unreachable | `PAM_AUTHINFO_UNAVAIL` (`PAM_IGNORE` with `ignore_authinfo_unavail`) |
//! | auth, account, chauthtok | `Error` `unavailable` (credd cannot write its store) | `PAM_AUTHINFO_UNAVAIL`, logged, as if unreachable |
//! | authenticate | anything else | `PAM_AUTH_ERR`, logged |
//! | acct_mgmt | `Ok` | `PAM_SUCCESS` |
//! | acct_mgmt | `Disabled` | `PAM_ACCT_EXPIRED` |
//! | acct_mgmt | `Locked` | `PAM_PERM_DENIED` |
//! | acct_mgmt | `MustChange` | `PAM_NEW_AUTHTOK_REQD` |
//! | acct_mgmt | anything else | `PAM_PERM_DENIED`, logged |
//! | chauthtok | `Ok` | `PAM_SUCCESS` |
//! | chauthtok | `Denied`, `Locked`, `Disabled` | `PAM_AUTH_ERR` (pam_unix's code for a wrong current password) |
//! | chauthtok | `Error` (quality rule), `Busy`, `RateLimited`, anything else | `PAM_AUTHTOK_ERR` |
//! | chauthtok | `retry=` new passwords refused (quality, mismatch, empty) | `PAM_MAXTRIES` (`PAM_AUTHTOK_ERR` with `retry=1`) |
//! | chauthtok | neither `PAM_PRELIM_CHECK` nor `PAM_UPDATE_AUTHTOK` | `PAM_SERVICE_ERR` |
//! | open/close_session | `Ok` | `PAM_SUCCESS` |
//! | open/close_session | `UnknownUser`, or a name credd cannot hold | `PAM_IGNORE` |
//! | open/close_session | daemon unreachable, anything else | `PAM_SESSION_ERR`, logged |
//!
//! No path that saw an error returns `PAM_SUCCESS`: success is produced only in match arms on an
//! `Ok` (or authenticate's `MustChange`) that credd actually sent. The one success that follows a
//! local failure is chauthtok's `PAM_UPDATE_AUTHTOK` when credd stored the new password but libpam
//! would not take `PAM_AUTHTOK`: the password *has* changed, and saying otherwise would send the
//! user back to a password that no longer works.

#![deny(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use credd_proto::{
    AccountRequest, AuthRequest, ChangeRequest, Client, ErrorKind, MAX_SECRET_LEN, ProtoError,
    Reply, Request, Secret, SessionRequest, validate_user_name,
};
use pam::constants::{
    PAM_CHANGE_EXPIRED_AUTHTOK, PAM_DISALLOW_NULL_AUTHTOK, PAM_SILENT, PamFlag, PamResultCode,
};

use crate::args::ModuleArgs;
use crate::log::Logger;

/// Prompt wording follows pam_unix, so screen lockers and expect scripts recognise it.
pub const PASSWORD_PROMPT: &str = "Password: ";
pub const CURRENT_PASSWORD_PROMPT: &str = "Current password: ";
pub const NEW_PASSWORD_PROMPT: &str = "New password: ";
pub const RETYPE_PASSWORD_PROMPT: &str = "Retype new password: ";

/// pam_unix's (libpam's) messages for a new password that cannot be used.
pub const MISMATCH_MESSAGE: &str = "Sorry, passwords do not match.";
pub const NO_PASSWORD_MESSAGE: &str = "No password has been supplied.";

/// `pam_sm_chauthtok`'s two passes (`<security/pam_modules.h>`; pam-bindings does not define
/// them). libpam sets exactly one of them on each call.
pub const PAM_PRELIM_CHECK: PamFlag = 0x4000;
pub const PAM_UPDATE_AUTHTOK: PamFlag = 0x2000;

/// Shown by acct_mgmt when credd says the password must be changed (pam_unix's wording).
pub const MUST_CHANGE_MESSAGE: &str =
    "You are required to change your password immediately (administrator enforced)";
pub const DISABLED_MESSAGE: &str =
    "Your account has been disabled; please contact your system administrator.";
/// credd's hashing capacity for this caller's source is taken (R7): no verdict on the password.
pub const BUSY_MESSAGE: &str = "The credential service is busy; try again in a moment.";
pub const LOCKED_MESSAGE: &str =
    "Your account is locked; please contact your system administrator.";

/// pam_pwquality's prefix for a new password that a rule refused.
pub const BAD_PASSWORD_PREFIX: &str = "BAD PASSWORD: ";

/// A rate-limited refusal, with the wait credd computed when it sent one.
pub fn rate_limited_message(retry_after: Option<u32>) -> String {
    match retry_after {
        Some(secs) => format!("Too many attempts; try again in {secs} s."),
        None => "Too many attempts; try again later.".to_string(),
    }
}

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

/// The secret a successful authentication used, kept (as PAM module data, in the same PAM handle)
/// when credd answered `MustChange`, so that the forced password change that follows does not ask
/// for a temporary reset code a second time. Dropping it wipes the secret.
#[derive(Debug, Clone)]
pub struct RememberedSecret {
    /// The account it was accepted for; a change for any other `PAM_USER` does not use it.
    pub user: String,
    pub secret: Secret,
}

/// Everything the flow may ask of libpam besides the items gathered up front: the user dialogue,
/// the `PAM_AUTHTOK` and `PAM_OLDAUTHTOK` items shared with the other modules of the stack, and
/// this module's own data in the PAM handle.
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
    /// `PAM_OLDAUTHTOK`: the current password, stored by an earlier module or by our own
    /// `PAM_PRELIM_CHECK` pass.
    fn stored_old_token(&mut self) -> StoredToken;
    /// Stores `PAM_OLDAUTHTOK` once credd accepted it, for our `PAM_UPDATE_AUTHTOK` pass and the
    /// modules after us.
    fn store_old_token(&mut self, token: &Secret) -> Result<(), PamResultCode>;
    /// What [`Conversation::remember_for_change`] kept earlier in this PAM handle, if anything.
    fn remembered_for_change(&mut self) -> Option<RememberedSecret>;
    /// Keeps the secret of an authentication that must be followed by a password change, until
    /// the application ends the PAM handle (which wipes it).
    fn remember_for_change(&mut self, remembered: RememberedSecret) -> Result<(), PamResultCode>;
}

/// One round trip to credd.
pub trait Transport {
    fn call(&mut self, request: &Request) -> Result<Reply, ProtoError>;
}

/// The real transport: one connection per request, closed as soon as the reply is read. No
/// connection is held across a prompt (a user may take minutes to answer, and credd closes idle
/// connections), none is kept after the hook (so none can leak across a `fork`).
pub struct SocketTransport {
    socket: PathBuf,
    timeout: Duration,
}

impl SocketTransport {
    pub fn new(socket: &Path, timeout: Duration) -> Self {
        SocketTransport {
            socket: socket.to_path_buf(),
            timeout,
        }
    }
}

impl Transport for SocketTransport {
    fn call(&mut self, request: &Request) -> Result<Reply, ProtoError> {
        Client::connect(&self.socket, self.timeout)?.call(request)
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
    /// The process's real uid (`getuid()`), which tells whether root itself asks for a password
    /// change: `passwd` is setuid root, so credd's SO_PEERCRED sees uid 0 for everyone.
    pub real_uid: libc::uid_t,
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

    /// The lock message, unless the caller or the module arguments asked for silence.
    fn tell_locked(&self, conv: &mut impl Conversation, until: Option<&str>) {
        if !self.quiet() && !self.args.no_lock_message {
            conv.error(&locked_message(until));
        }
    }

    /// The rate-limit message, unless silent. Shown for unknown names too: the same words for
    /// every name, so it tells a guesser nothing the return code does not.
    fn tell_rate_limited(&self, conv: &mut impl Conversation, retry_after: Option<u32>) {
        if !self.quiet() {
            conv.error(&rate_limited_message(retry_after));
        }
    }

    /// The disabled message, unless silent. credd answers `Disabled` only once the secret was
    /// verified, so it reveals nothing to a guesser.
    fn tell_disabled(&self, conv: &mut impl Conversation) {
        if !self.quiet() {
            conv.error(DISABLED_MESSAGE);
        }
    }

    /// An unknown name's code, or `otherwise` for an account: a refusal that "locks" or
    /// rate-limits every name alike differs from an account's only there (pam_unix's convention).
    fn unknown_or(&self, unknown: bool, otherwise: PamResultCode) -> PamResultCode {
        if unknown {
            self.unknown_user()
        } else {
            otherwise
        }
    }

    /// credd could give no verdict (unreachable, its store unwritable, its capacity taken): the
    /// code the break-glass lines act on.
    fn authinfo_unavail(&self) -> PamResultCode {
        if self.args.ignore_authinfo_unavail {
            PamResultCode::PAM_IGNORE
        } else {
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        }
    }

    fn unknown_user(&self) -> PamResultCode {
        if self.args.ignore_unknown_user {
            PamResultCode::PAM_IGNORE
        } else {
            PamResultCode::PAM_USER_UNKNOWN
        }
    }

    /// Whether a password change must prove the current password: always, unless root itself
    /// asks (real uid 0) for a change that is not a forced one. pam_unix's rule; credd checks the
    /// same on its side (docs/architecture.md#callers).
    fn old_secret_required(&self) -> bool {
        self.real_uid != 0 || self.flags & PAM_CHANGE_EXPIRED_AUTHTOK != 0
    }

    /// Logs a transport failure (always: an operator must learn that credd is down) and maps it.
    /// `otherwise` is the hook's fail-closed code for errors that are not "unreachable".
    fn transport_failure(&self, err: &ProtoError, otherwise: PamResultCode) -> PamResultCode {
        if self.log_transport_failure(err) {
            self.authinfo_unavail()
        } else {
            otherwise
        }
    }

    /// credd answered, but cannot write its store (disk full, I/O error): as good as
    /// unreachable. `PAM_AUTHINFO_UNAVAIL`, so that the break-glass path applies, and logged.
    fn store_unavailable(&self, message: &str) -> PamResultCode {
        self.log
            .error(&format!("credd cannot write its store: {message}"));
        self.authinfo_unavail()
    }

    /// Logs a transport failure; true when credd could not be reached at all.
    fn log_transport_failure(&self, err: &ProtoError) -> bool {
        if err.is_unavailable() {
            self.log.error(&format!(
                "credd is unreachable at {}: {err}",
                self.args.socket.display()
            ));
            true
        } else {
            self.log
                .error(&format!("protocol error talking to credd: {err}"));
            false
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
        // A copy, wiped with the request; `secret` itself is kept for a forced change.
        secret: secret.clone(),
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
        Reply::Ok => PamResultCode::PAM_SUCCESS,
        // A valid reset code also lands here: authentication succeeded, and acct_mgmt answers
        // NEW_AUTHTOK_REQD so the application runs chauthtok before a session. chauthtok must
        // prove the current secret again (PAM_CHANGE_EXPIRED_AUTHTOK); remembering it here spares
        // the user typing a one-time code twice.
        Reply::MustChange => {
            let remembered = RememberedSecret {
                user: user.to_owned(),
                secret,
            };
            if let Err(code) = conv.remember_for_change(remembered) {
                ctx.log.error(&format!(
                    "could not keep the secret for the password change ({code:?})"
                ));
                return never_success(code, PamResultCode::PAM_SYSTEM_ERR);
            }
            PamResultCode::PAM_SUCCESS
        }
        Reply::Denied => PamResultCode::PAM_AUTH_ERR,
        // No password was checked: as good as unreachable for this login, so that the documented
        // break-glass (authinfo_unavail) applies while a flood holds the hashing capacity (R7).
        Reply::Busy => {
            if !ctx.quiet() {
                conv.error(BUSY_MESSAGE);
            }
            ctx.log.error(
                "credd is busy (its hashing capacity for this source is taken); no password was checked",
            );
            ctx.authinfo_unavail()
        }
        Reply::Disabled => {
            ctx.tell_disabled(conv);
            PamResultCode::PAM_AUTH_ERR
        }
        // An unknown name "locks" like an account and shows the same message; only the return
        // code differs, as it does for every unknown name (pam_unix's convention).
        Reply::Locked { until, unknown } => {
            ctx.tell_locked(conv, until.as_deref());
            ctx.unknown_or(unknown, PamResultCode::PAM_AUTH_ERR)
        }
        Reply::RateLimited {
            unknown,
            retry_after,
        } => {
            ctx.tell_rate_limited(conv, retry_after);
            ctx.unknown_or(unknown, PamResultCode::PAM_AUTH_ERR)
        }
        Reply::UnknownUser => ctx.unknown_user(),
        Reply::Error {
            kind: ErrorKind::Unavailable,
            message,
        } => ctx.store_unavailable(&message),
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
            ctx.tell_locked(conv, until.as_deref());
            PamResultCode::PAM_PERM_DENIED
        }
        Reply::UnknownUser => ctx.unknown_user(),
        Reply::Error {
            kind: ErrorKind::Unavailable,
            message,
        } => ctx.store_unavailable(&message),
        other => {
            ctx.log.error(&format!(
                "unexpected answer to account check: {}",
                describe(&other)
            ));
            PamResultCode::PAM_PERM_DENIED
        }
    }
}

/// `pam_sm_chauthtok`. libpam calls it twice: `PAM_PRELIM_CHECK` (may this change go ahead? the
/// current password is checked here) and, when every module agreed, `PAM_UPDATE_AUTHTOK` (the new
/// password is asked for and stored).
pub fn chauthtok(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    if ctx.flags & PAM_PRELIM_CHECK != 0 {
        change_check(ctx, conv, transport)
    } else if ctx.flags & PAM_UPDATE_AUTHTOK != 0 {
        change_password(ctx, conv, transport)
    } else {
        ctx.log.error(&format!(
            "chauthtok called with neither PAM_PRELIM_CHECK nor PAM_UPDATE_AUTHTOK (flags {:#x})",
            ctx.flags
        ));
        PamResultCode::PAM_SERVICE_ERR
    }
}

/// Where the current password came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OldSource {
    /// This module's authenticate kept it ([`RememberedSecret`]).
    Remembered,
    /// `PAM_OLDAUTHTOK`, already where the next pass and the other modules look for it.
    Item,
    Prompted,
}

/// `PAM_PRELIM_CHECK`: check the current password (when one is required), without changing
/// anything. Once credd accepted it, it is stored as `PAM_OLDAUTHTOK` for the update pass.
fn change_check(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    let user = match ctx.user_name() {
        Ok(user) => user,
        Err(code) => return code,
    };
    let mut asked = AskedCredd::default();
    let old = if ctx.old_secret_required() {
        match obtain_old(ctx, conv, transport, user, &mut asked, true) {
            Ok(old) => Some(old),
            Err(code) => return code,
        }
    } else {
        ctx.log
            .debug("real uid 0 and no forced change: the current password is not required");
        None
    };

    let request = Request::ChangeCheck(ChangeRequest {
        user: user.to_owned(),
        service: ctx.service.clone(),
        old: old.as_ref().map(|(secret, _)| secret.clone()),
        new: None,
    });
    let reply = match transport.call(&request) {
        Ok(reply) => reply,
        Err(err) => return ctx.transport_failure(&err, PamResultCode::PAM_AUTHTOK_ERR),
    };
    drop(request);

    ctx.log.debug(&format!(
        "credd answered {} to the change check for {}",
        describe(&reply),
        shown(&reply, user)
    ));
    match reply {
        Reply::Ok => {
            if let Some((secret, source)) = old
                && source != OldSource::Item
                && let Err(code) = conv.store_old_token(&secret)
            {
                ctx.log
                    .error(&format!("could not store PAM_OLDAUTHTOK ({code:?})"));
                return never_success(code, PamResultCode::PAM_SYSTEM_ERR);
            }
            PamResultCode::PAM_SUCCESS
        }
        other => change_refused(ctx, conv, other, "change check"),
    }
}

/// `PAM_UPDATE_AUTHTOK`: ask for the new password (twice) and have credd store it.
fn change_password(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
) -> PamResultCode {
    let user = match ctx.user_name() {
        Ok(user) => user,
        Err(code) => return code,
    };
    let mut asked = AskedCredd::default();
    let old = if ctx.old_secret_required() {
        // The check pass stored it as PAM_OLDAUTHTOK; the remembered secret is not looked at
        // again, so that this pass sends exactly what the check pass had accepted.
        match obtain_old(ctx, conv, transport, user, &mut asked, false) {
            Ok((secret, _)) => Some(secret),
            Err(code) => return code,
        }
    } else {
        None
    };
    let (new, from_item) = match obtain_new(ctx, conv, transport, user, &mut asked) {
        Ok(new) => new,
        Err(code) => return code,
    };

    let request = Request::ChangePassword(ChangeRequest {
        user: user.to_owned(),
        service: ctx.service.clone(),
        old,
        new: Some(new.clone()),
    });
    let reply = match transport.call(&request) {
        Ok(reply) => reply,
        Err(err) => return ctx.transport_failure(&err, PamResultCode::PAM_AUTHTOK_ERR),
    };
    drop(request);

    ctx.log.debug(&format!(
        "credd answered {} to the password change for {}",
        describe(&reply),
        shown(&reply, user)
    ));
    match reply {
        Reply::Ok => {
            // credd has stored the new password: this is a success whatever happens next. Failing
            // to hand it on only means later modules (pam_gnome_keyring, …) prompt themselves.
            if !from_item && let Err(code) = conv.store_token(&new) {
                ctx.log.error(&format!(
                    "password changed, but could not store PAM_AUTHTOK for later modules ({code:?})"
                ));
            }
            PamResultCode::PAM_SUCCESS
        }
        other => change_refused(ctx, conv, other, "password change"),
    }
}

/// Whether this hook call already asked credd if the user is one of its accounts.
#[derive(Default)]
struct AskedCredd(bool);

/// Before the first prompt of a password change: is this a credd account at all? If not, the hook
/// steps aside before asking anything, so that the modules after us (pam_unix) are the only ones to
/// prompt for a local account. A cheap account check, never a password verification; a non-root
/// caller learns nothing it could not learn with its own `passwd`, because credd answers
/// `UnknownUser` for every account but its own (docs/architecture.md#callers). Any other answer
/// goes on to the change request, which decides.
fn ensure_credd_account(
    ctx: &HookContext,
    transport: &mut impl Transport,
    user: &str,
    asked: &mut AskedCredd,
) -> Result<(), PamResultCode> {
    if asked.0 {
        return Ok(());
    }
    let reply = check_account(ctx, transport, user)
        .map_err(|err| ctx.transport_failure(&err, PamResultCode::PAM_AUTHTOK_ERR))?;
    asked.0 = true;
    match reply {
        Reply::UnknownUser
        | Reply::Locked { unknown: true, .. }
        | Reply::RateLimited { unknown: true, .. } => {
            ctx.log
                .debug("not a credd account; leaving the password change to other modules");
            Err(ctx.unknown_user())
        }
        _ => Ok(()),
    }
}

/// The current password: the secret this module's authenticate remembered (check pass only, and
/// only for the same user), else `PAM_OLDAUTHTOK`, else the user's answer to pam_unix's prompt.
fn obtain_old(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
    user: &str,
    asked: &mut AskedCredd,
    use_remembered: bool,
) -> Result<(Secret, OldSource), PamResultCode> {
    let old = obtain_old_from(ctx, conv, transport, user, asked, use_remembered)?;
    if old.0.len() > MAX_SECRET_LEN {
        ctx.log.debug(&format!(
            "current password refused: longer than {MAX_SECRET_LEN} bytes"
        ));
        return Err(PamResultCode::PAM_AUTHTOK_RECOVERY_ERR);
    }
    Ok(old)
}

fn obtain_old_from(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
    user: &str,
    asked: &mut AskedCredd,
    use_remembered: bool,
) -> Result<(Secret, OldSource), PamResultCode> {
    if use_remembered && let Some(remembered) = conv.remembered_for_change() {
        if remembered.user == user {
            ctx.log
                .debug("using the secret accepted at authentication as the current password");
            return Ok((remembered.secret, OldSource::Remembered));
        }
        ctx.log
            .debug("the secret kept at authentication is for another user; not used");
    }
    match conv.stored_old_token() {
        StoredToken::Set(token) => {
            ctx.log
                .debug("using the current password stored in PAM_OLDAUTHTOK");
            return Ok((token, OldSource::Item));
        }
        StoredToken::NotUtf8 => {
            ctx.log
                .debug("PAM_OLDAUTHTOK is not UTF-8 and cannot be a credd password");
            return Err(PamResultCode::PAM_AUTHTOK_RECOVERY_ERR);
        }
        StoredToken::Unset => {}
    }
    ensure_credd_account(ctx, transport, user, asked)?;
    let secret = prompt_for_change(
        ctx,
        conv,
        CURRENT_PASSWORD_PROMPT,
        PamResultCode::PAM_AUTHTOK_RECOVERY_ERR,
    )?;
    Ok((secret, OldSource::Prompted))
}

/// The new password, and whether it came from `PAM_AUTHTOK` (`use_authtok`: an earlier module
/// such as pam_pwquality asked for it) rather than from our own prompts.
fn obtain_new(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    transport: &mut impl Transport,
    user: &str,
    asked: &mut AskedCredd,
) -> Result<(Secret, bool), PamResultCode> {
    if ctx.args.use_authtok {
        let new = match conv.stored_token() {
            StoredToken::Set(token) => token,
            StoredToken::Unset => {
                ctx.log
                    .debug("use_authtok: no new password stored by an earlier module");
                return Err(PamResultCode::PAM_AUTHTOK_ERR);
            }
            StoredToken::NotUtf8 => {
                ctx.log
                    .debug("use_authtok: the stored new password is not UTF-8");
                return Err(PamResultCode::PAM_AUTHTOK_ERR);
            }
        };
        check_new(ctx, conv, &new)?;
        return Ok((new, true));
    }

    ensure_credd_account(ctx, transport, user, asked)?;
    // pam_pwquality's dialogue: each new password is checked before it is asked for a second
    // time, and a refused or mistyped one asks again, up to `retry=` times, so that one weak
    // choice does not end a forced change (and with it the reset code's login).
    for _ in 0..ctx.args.retry {
        let new = prompt_for_change(
            ctx,
            conv,
            NEW_PASSWORD_PROMPT,
            PamResultCode::PAM_AUTHTOK_ERR,
        )?;
        if check_new(ctx, conv, &new).is_err() {
            continue;
        }
        if let Some(reason) = quality_problem(ctx, transport, user, &new)? {
            ctx.log
                .debug(&format!("credd refused the new password: {reason}"));
            if !ctx.quiet() {
                conv.error(&format!("{BAD_PASSWORD_PREFIX}{reason}"));
            }
            continue;
        }
        let again = prompt_for_change(
            ctx,
            conv,
            RETYPE_PASSWORD_PROMPT,
            PamResultCode::PAM_AUTHTOK_ERR,
        )?;
        // Secret compares in constant time.
        if again != new {
            ctx.log.debug("the new passwords do not match");
            if !ctx.quiet() {
                conv.error(MISMATCH_MESSAGE);
            }
            continue;
        }
        return Ok((new, false));
    }
    ctx.log.debug(&format!(
        "no usable new password in {} tries",
        ctx.args.retry
    ));
    // pam_pwquality's codes: the real reason for a single try, else "too many tries".
    Err(if ctx.args.retry > 1 {
        PamResultCode::PAM_MAXTRIES
    } else {
        PamResultCode::PAM_AUTHTOK_ERR
    })
}

/// What credd's quality rules say of a new password, before the user types it again: `None`
/// when it passes (or when the daemon is too old to be asked: the change request enforces the
/// same rules anyway).
fn quality_problem(
    ctx: &HookContext,
    transport: &mut impl Transport,
    user: &str,
    new: &Secret,
) -> Result<Option<String>, PamResultCode> {
    let request = Request::ChangeQuality(ChangeRequest {
        user: user.to_owned(),
        service: ctx.service.clone(),
        old: None,
        new: Some(new.clone()),
    });
    let reply = transport
        .call(&request)
        .map_err(|err| ctx.transport_failure(&err, PamResultCode::PAM_AUTHTOK_ERR))?;
    drop(request);
    match reply {
        Reply::Ok => Ok(None),
        Reply::Error {
            kind: ErrorKind::InvalidArgument,
            message,
        } => Ok(Some(message)),
        Reply::UnknownUser => Err(ctx.unknown_user()),
        other => {
            ctx.log.debug(&format!(
                "no quality check before the retype ({}); the change request checks",
                describe(&other)
            ));
            Ok(None)
        }
    }
}

/// What the module itself refuses in a new password; every other rule is credd's.
fn check_new(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    new: &Secret,
) -> Result<(), PamResultCode> {
    let problem = if new.is_empty() {
        NO_PASSWORD_MESSAGE.to_owned()
    } else if new.len() > MAX_SECRET_LEN {
        format!("The password must not be longer than {MAX_SECRET_LEN} bytes.")
    } else {
        return Ok(());
    };
    ctx.log
        .debug(&format!("new password refused locally: {problem}"));
    if !ctx.quiet() {
        conv.error(&problem);
    }
    Err(PamResultCode::PAM_AUTHTOK_ERR)
}

/// One echo-off prompt of a password change. `unusable` is the code for an answer that cannot be
/// a credd password (not UTF-8).
fn prompt_for_change(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    prompt: &str,
    unusable: PamResultCode,
) -> Result<Secret, PamResultCode> {
    match conv.prompt_secret(prompt) {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => {
            ctx.log.debug("the application returned no password");
            Err(PamResultCode::PAM_CONV_ERR)
        }
        Err(PamResultCode::PAM_AUTH_ERR) => {
            ctx.log
                .debug("the answer is not UTF-8 and cannot be a credd password");
            Err(unusable)
        }
        Err(code) => {
            ctx.log
                .debug(&format!("the conversation failed ({code:?})"));
            Err(conversation_failure(code))
        }
    }
}

/// Every answer to a change request but `Ok`, for both passes.
fn change_refused(
    ctx: &HookContext,
    conv: &mut impl Conversation,
    reply: Reply,
    what: &str,
) -> PamResultCode {
    match reply {
        // pam_unix's answer to a wrong current password ("Authentication failure").
        Reply::Denied => PamResultCode::PAM_AUTH_ERR,
        // An unknown name "locks" with the same message as an account, as in authenticate.
        Reply::Locked { until, unknown } => {
            ctx.tell_locked(conv, until.as_deref());
            ctx.unknown_or(unknown, PamResultCode::PAM_AUTH_ERR)
        }
        Reply::Disabled => {
            ctx.tell_disabled(conv);
            PamResultCode::PAM_AUTH_ERR
        }
        Reply::UnknownUser => ctx.unknown_user(),
        Reply::RateLimited {
            unknown,
            retry_after,
        } => {
            ctx.tell_rate_limited(conv, retry_after);
            ctx.unknown_or(unknown, PamResultCode::PAM_AUTHTOK_ERR)
        }
        Reply::Busy => {
            if !ctx.quiet() {
                conv.error(BUSY_MESSAGE);
            }
            PamResultCode::PAM_AUTHTOK_ERR
        }
        Reply::Error {
            kind: ErrorKind::Unavailable,
            message,
        } => ctx.store_unavailable(&message),
        Reply::Error { kind, message } => {
            if kind == ErrorKind::InvalidArgument {
                // A quality rule ("password is shorter than 12 characters"): the user's to fix.
                ctx.log
                    .debug(&format!("credd refused the {what}: {message}"));
            } else {
                ctx.log.error(&format!(
                    "credd refused the {what}: {} {message}",
                    kind.as_str()
                ));
            }
            // An internal error's text describes the daemon, not anything the user can change.
            if !ctx.quiet() && kind == ErrorKind::InvalidArgument {
                conv.error(&format!("{BAD_PASSWORD_PREFIX}{message}"));
            } else if !ctx.quiet() && kind != ErrorKind::Internal {
                conv.error(&message);
            }
            PamResultCode::PAM_AUTHTOK_ERR
        }
        other => {
            ctx.log.error(&format!(
                "unexpected answer to the {what}: {}",
                describe(&other)
            ));
            PamResultCode::PAM_AUTHTOK_ERR
        }
    }
}

/// `pam_sm_open_session`: credd records the session of the calling process (it identifies the
/// process itself, by SO_PEERCRED).
pub fn open_session(ctx: &HookContext, transport: &mut impl Transport) -> PamResultCode {
    session(ctx, transport, true)
}

/// `pam_sm_close_session`.
pub fn close_session(ctx: &HookContext, transport: &mut impl Transport) -> PamResultCode {
    session(ctx, transport, false)
}

/// Sessions of accounts credd does not hold are none of its business: `PAM_IGNORE`, whatever
/// `ignore_unknown_user` says (docs/pam.md). Any failure is `PAM_SESSION_ERR`; the documented
/// stacks use `session optional`, so a daemon that is down does not block logins here.
fn session(ctx: &HookContext, transport: &mut impl Transport, open: bool) -> PamResultCode {
    let Ok(user) = ctx.user_name() else {
        return PamResultCode::PAM_IGNORE;
    };
    let body = SessionRequest {
        user: user.to_owned(),
        service: ctx.service.clone(),
        tty: ctx.tty.clone(),
        rhost: ctx.rhost.clone(),
    };
    let (request, what) = if open {
        (Request::SessionOpen(body), "session open")
    } else {
        (Request::SessionClose(body), "session close")
    };
    let reply = match transport.call(&request) {
        Ok(reply) => reply,
        Err(err) => {
            ctx.log_transport_failure(&err);
            return PamResultCode::PAM_SESSION_ERR;
        }
    };

    ctx.log.debug(&format!(
        "credd answered {} to the {what} for {}",
        describe(&reply),
        shown(&reply, user)
    ));
    match reply {
        Reply::Ok => PamResultCode::PAM_SUCCESS,
        Reply::UnknownUser
        | Reply::Locked { unknown: true, .. }
        | Reply::RateLimited { unknown: true, .. } => PamResultCode::PAM_IGNORE,
        other => {
            ctx.log
                .error(&format!("credd refused the {what}: {}", describe(&other)));
            PamResultCode::PAM_SESSION_ERR
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

/// The password to check: from `PAM_AUTHTOK` (`use_first_pass`, `try_first_pass`) or from the
/// user. A prompted password is stored as `PAM_AUTHTOK` for the modules after us, as pam_unix does.
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
        | Reply::RateLimited { unknown: true, .. } => "(unknown name)",
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
