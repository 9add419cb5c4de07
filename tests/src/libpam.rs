//! Drive a real libpam stack from a private configuration directory.
//!
//! # Why `pam_start_confdir`
//!
//! Linux-PAM (1.4 and later) exports `pam_start_confdir()`, which is `pam_start()` plus the
//! directory the service file is read from. Every [`PamStack`] owns a fresh temporary directory
//! holding exactly one service file, so:
//!
//! * tests never read or edit `/etc/pam.d` (nothing to restore, nothing to break on the host);
//! * tests running in parallel cannot see each other's stacks;
//! * no privilege is needed to create a stack (writing to `/etc/pam.d` would need root).
//!
//! When a confdir is given libpam reads `<confdir>/<service>` (and `<confdir>/other` if present)
//! and never falls back to `/etc/pam.d` or `/etc/pam.conf`. If the service file cannot be read,
//! `pam_start_confdir` fails (`PAM_ABORT`).
//!
//! # Rules for the lines of a stack
//!
//! * Name modules by **absolute path** (`/lib/x86_64-linux-gnu/security/pam_permit.so`,
//!   `/abs/target/debug/libpam_credd.so`). A bare name is looked up in the system module
//!   directory, which is never where a freshly built `pam_credd.so` lives.
//! * Do **not** use `include`/`substack` lines. In Linux-PAM 1.5.2 (Debian 12) the target of
//!   `auth include foo` is opened as `/etc/pam.d/foo`, not `<confdir>/foo` (checked: a `foo`
//!   placed in the private directory is ignored), so such a line silently pulls the host's
//!   configuration into a test, or fails it. Newer libpam resolves it under the confdir; do
//!   not depend on either. Write the lines out instead.
//! * Use [`system_module`] to find stock modules (`pam_permit.so`, `pam_deny.so`, ...).
//!
//! # Conversation and fail delay
//!
//! A session answers prompts from a [`Conversation`] script and records every message the
//! stack shows ([`PamSession::messages`]). It also installs a `PAM_FAIL_DELAY` function, so a
//! module's `pam_fail_delay()` (pam_unix asks for 2 s) is recorded
//! ([`PamSession::fail_delays`]) instead of slept: failure tests stay fast.

use std::collections::VecDeque;
use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::ptr;
use std::sync::{Mutex, MutexGuard};

/// PAM return codes, with their Linux-PAM values (`<security/_pam_types.h>`).
pub mod codes {
    pub const PAM_SUCCESS: i32 = 0;
    pub const PAM_OPEN_ERR: i32 = 1;
    pub const PAM_SYMBOL_ERR: i32 = 2;
    pub const PAM_SERVICE_ERR: i32 = 3;
    pub const PAM_SYSTEM_ERR: i32 = 4;
    pub const PAM_BUF_ERR: i32 = 5;
    pub const PAM_PERM_DENIED: i32 = 6;
    pub const PAM_AUTH_ERR: i32 = 7;
    pub const PAM_CRED_INSUFFICIENT: i32 = 8;
    pub const PAM_AUTHINFO_UNAVAIL: i32 = 9;
    pub const PAM_USER_UNKNOWN: i32 = 10;
    pub const PAM_MAXTRIES: i32 = 11;
    pub const PAM_NEW_AUTHTOK_REQD: i32 = 12;
    pub const PAM_ACCT_EXPIRED: i32 = 13;
    pub const PAM_SESSION_ERR: i32 = 14;
    pub const PAM_CRED_UNAVAIL: i32 = 15;
    pub const PAM_CRED_EXPIRED: i32 = 16;
    pub const PAM_CRED_ERR: i32 = 17;
    pub const PAM_NO_MODULE_DATA: i32 = 18;
    pub const PAM_CONV_ERR: i32 = 19;
    pub const PAM_AUTHTOK_ERR: i32 = 20;
    pub const PAM_AUTHTOK_RECOVERY_ERR: i32 = 21;
    pub const PAM_AUTHTOK_LOCK_BUSY: i32 = 22;
    pub const PAM_AUTHTOK_DISABLE_AGING: i32 = 23;
    pub const PAM_TRY_AGAIN: i32 = 24;
    pub const PAM_IGNORE: i32 = 25;
    pub const PAM_ABORT: i32 = 26;
    pub const PAM_AUTHTOK_EXPIRED: i32 = 27;
    pub const PAM_MODULE_UNKNOWN: i32 = 28;
    pub const PAM_BAD_ITEM: i32 = 29;
    pub const PAM_CONV_AGAIN: i32 = 30;
    pub const PAM_INCOMPLETE: i32 = 31;

    /// The constant's name (`"PAM_AUTH_ERR"`), for assertion messages.
    pub fn name(code: i32) -> &'static str {
        match code {
            PAM_SUCCESS => "PAM_SUCCESS",
            PAM_OPEN_ERR => "PAM_OPEN_ERR",
            PAM_SYMBOL_ERR => "PAM_SYMBOL_ERR",
            PAM_SERVICE_ERR => "PAM_SERVICE_ERR",
            PAM_SYSTEM_ERR => "PAM_SYSTEM_ERR",
            PAM_BUF_ERR => "PAM_BUF_ERR",
            PAM_PERM_DENIED => "PAM_PERM_DENIED",
            PAM_AUTH_ERR => "PAM_AUTH_ERR",
            PAM_CRED_INSUFFICIENT => "PAM_CRED_INSUFFICIENT",
            PAM_AUTHINFO_UNAVAIL => "PAM_AUTHINFO_UNAVAIL",
            PAM_USER_UNKNOWN => "PAM_USER_UNKNOWN",
            PAM_MAXTRIES => "PAM_MAXTRIES",
            PAM_NEW_AUTHTOK_REQD => "PAM_NEW_AUTHTOK_REQD",
            PAM_ACCT_EXPIRED => "PAM_ACCT_EXPIRED",
            PAM_SESSION_ERR => "PAM_SESSION_ERR",
            PAM_CRED_UNAVAIL => "PAM_CRED_UNAVAIL",
            PAM_CRED_EXPIRED => "PAM_CRED_EXPIRED",
            PAM_CRED_ERR => "PAM_CRED_ERR",
            PAM_NO_MODULE_DATA => "PAM_NO_MODULE_DATA",
            PAM_CONV_ERR => "PAM_CONV_ERR",
            PAM_AUTHTOK_ERR => "PAM_AUTHTOK_ERR",
            PAM_AUTHTOK_RECOVERY_ERR => "PAM_AUTHTOK_RECOVERY_ERR",
            PAM_AUTHTOK_LOCK_BUSY => "PAM_AUTHTOK_LOCK_BUSY",
            PAM_AUTHTOK_DISABLE_AGING => "PAM_AUTHTOK_DISABLE_AGING",
            PAM_TRY_AGAIN => "PAM_TRY_AGAIN",
            PAM_IGNORE => "PAM_IGNORE",
            PAM_ABORT => "PAM_ABORT",
            PAM_AUTHTOK_EXPIRED => "PAM_AUTHTOK_EXPIRED",
            PAM_MODULE_UNKNOWN => "PAM_MODULE_UNKNOWN",
            PAM_BAD_ITEM => "PAM_BAD_ITEM",
            PAM_CONV_AGAIN => "PAM_CONV_AGAIN",
            PAM_INCOMPLETE => "PAM_INCOMPLETE",
            _ => "PAM_<unknown code>",
        }
    }
}

/// Flags for the `pam_*` calls (Linux-PAM values).
pub mod flags {
    /// Any call: modules should not show messages.
    pub const PAM_SILENT: i32 = 0x8000;
    /// `pam_authenticate`, `pam_acct_mgmt`: an empty password is a failure.
    pub const PAM_DISALLOW_NULL_AUTHTOK: i32 = 0x0001;
    /// `pam_setcred`.
    pub const PAM_ESTABLISH_CRED: i32 = 0x0002;
    /// `pam_setcred`.
    pub const PAM_DELETE_CRED: i32 = 0x0004;
    /// `pam_setcred`.
    pub const PAM_REINITIALIZE_CRED: i32 = 0x0008;
    /// `pam_setcred`.
    pub const PAM_REFRESH_CRED: i32 = 0x0010;
    /// `pam_chauthtok`: change only expired tokens.
    pub const PAM_CHANGE_EXPIRED_AUTHTOK: i32 = 0x0020;
    /// Module-side flag (`pam_sm_chauthtok`); libpam sets it itself, an application passing it
    /// to `pam_chauthtok` gets an error.
    pub const PAM_PRELIM_CHECK: i32 = 0x4000;
    /// Module-side flag (`pam_sm_chauthtok`); see [`PAM_PRELIM_CHECK`].
    pub const PAM_UPDATE_AUTHTOK: i32 = 0x2000;
}

/// Item types for [`PamSession::set_item_str`] / [`PamSession::get_item_str`].
pub mod items {
    pub const PAM_SERVICE: i32 = 1;
    pub const PAM_USER: i32 = 2;
    pub const PAM_TTY: i32 = 3;
    pub const PAM_RHOST: i32 = 4;
    /// Not a string: refused by the string accessors.
    pub const PAM_CONV: i32 = 5;
    pub const PAM_AUTHTOK: i32 = 6;
    pub const PAM_OLDAUTHTOK: i32 = 7;
    pub const PAM_RUSER: i32 = 8;
    pub const PAM_USER_PROMPT: i32 = 9;
    /// Not a string: refused by the string accessors (the session sets it itself).
    pub const PAM_FAIL_DELAY: i32 = 10;
    pub const PAM_XDISPLAY: i32 = 11;
    /// Not a string: refused by the string accessors.
    pub const PAM_XAUTHDATA: i32 = 12;
    pub const PAM_AUTHTOK_TYPE: i32 = 13;

    /// Items whose value is a NUL-terminated string (the only ones the string accessors pass
    /// to libpam; handing a string to a struct-valued item would be memory-unsafe).
    pub fn is_string_item(item_type: i32) -> bool {
        matches!(
            item_type,
            PAM_SERVICE
                | PAM_USER
                | PAM_TTY
                | PAM_RHOST
                | PAM_AUTHTOK
                | PAM_OLDAUTHTOK
                | PAM_RUSER
                | PAM_USER_PROMPT
                | PAM_XDISPLAY
                | PAM_AUTHTOK_TYPE
        )
    }
}

/// Message styles (`struct pam_message.msg_style`).
pub mod style {
    pub const PAM_PROMPT_ECHO_OFF: i32 = 1;
    pub const PAM_PROMPT_ECHO_ON: i32 = 2;
    pub const PAM_ERROR_MSG: i32 = 3;
    pub const PAM_TEXT_INFO: i32 = 4;
    /// Linux-PAM extension; not answered by [`super::Conversation`] (`PAM_CONV_ERR`).
    pub const PAM_RADIO_TYPE: i32 = 5;
    /// Linux-PAM extension; not answered by [`super::Conversation`] (`PAM_CONV_ERR`).
    pub const PAM_BINARY_PROMPT: i32 = 7;
}

/// `PAM_MAX_NUM_MSG`: libpam never sends more messages in one call.
const PAM_MAX_NUM_MSG: c_int = 32;

// ---------------------------------------------------------------------------------------------
// FFI

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

type DelayFn = unsafe extern "C" fn(retval: c_int, usec_delay: c_uint, appdata_ptr: *mut c_void);

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

/// Opaque `pam_handle_t`.
#[repr(C)]
struct PamHandle {
    _opaque: [u8; 0],
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service_name: *const c_char,
        user: *const c_char,
        pam_conversation: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, pam_status: c_int) -> c_int;
    fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_setcred(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_chauthtok(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_open_session(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_close_session(pamh: *mut PamHandle, flags: c_int) -> c_int;
    fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    fn pam_get_item(pamh: *const PamHandle, item_type: c_int, item: *mut *const c_void) -> c_int;
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// Absolute path of a stock Linux-PAM module (`"pam_permit.so"`), looked up in the usual
/// module directories; `None` if not installed.
pub fn system_module(name: &str) -> Option<PathBuf> {
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/lib/{multiarch}/security"),
        format!("/usr/lib/{multiarch}/security"),
        "/lib64/security".to_owned(),
        "/usr/lib64/security".to_owned(),
        "/lib/security".to_owned(),
        "/usr/lib/security".to_owned(),
    ]
    .into_iter()
    .map(|dir| Path::new(&dir).join(name))
    .find(|path| path.exists())
}

// ---------------------------------------------------------------------------------------------
// Stack

/// A private PAM configuration directory holding one service file.
pub struct PamStack {
    dir: tempfile::TempDir,
    service: String,
}

impl PamStack {
    /// Creates a private conf dir holding one file `<service>` with these lines, e.g.
    /// `"auth required /abs/libpam_credd.so socket=/x/pam.sock"`.
    ///
    /// Panics on an invalid service name (empty, `.`, `..`, containing `/` or NUL) or an I/O
    /// error: this is test code.
    pub fn new<S: AsRef<str>>(service: &str, lines: &[S]) -> PamStack {
        assert!(
            !service.is_empty()
                && service != "."
                && service != ".."
                && !service.contains('/')
                && !service.contains('\0'),
            "invalid PAM service name {service:?}"
        );
        let dir = tempfile::Builder::new()
            .prefix("credd-pam.")
            .tempdir()
            .expect("create a private PAM confdir");
        let mut text = String::new();
        for line in lines {
            text.push_str(line.as_ref());
            text.push('\n');
        }
        std::fs::write(dir.path().join(service), text).expect("write the PAM service file");
        PamStack {
            dir,
            service: service.to_owned(),
        }
    }

    /// The private configuration directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The service name (the file name inside [`PamStack::dir`]).
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Starts a transaction for `user` with a scripted conversation
    /// (`pam_start_confdir`). `Err` holds libpam's code (or `PAM_BUF_ERR` if `user` or the
    /// path contains a NUL byte).
    pub fn start(&self, user: &str, script: Conversation) -> Result<PamSession, i32> {
        let service = CString::new(self.service.as_str()).map_err(|_| codes::PAM_BUF_ERR)?;
        let user = CString::new(user).map_err(|_| codes::PAM_BUF_ERR)?;
        let confdir = CString::new(self.dir.path().as_os_str().as_encoded_bytes())
            .map_err(|_| codes::PAM_BUF_ERR)?;

        let state: *mut Mutex<ConvState> = Box::into_raw(Box::new(Mutex::new(ConvState {
            script: script.steps,
            ..ConvState::default()
        })));
        // libpam copies the struct itself; appdata_ptr must stay valid until pam_end.
        let conv = PamConv {
            conv: Some(converse),
            appdata_ptr: state.cast(),
        };
        let mut pamh: *mut PamHandle = ptr::null_mut();
        // SAFETY: all strings are NUL-terminated and outlive the call; `conv` is valid for the
        // call and libpam copies it; `pamh` is a valid out-pointer.
        let rc = unsafe {
            pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &conv,
                confdir.as_ptr(),
                &mut pamh,
            )
        };
        if rc != codes::PAM_SUCCESS || pamh.is_null() {
            // On failure libpam has already released the handle (there is nothing to pam_end).
            // SAFETY: `state` came from Box::into_raw above and libpam no longer refers to it.
            drop(unsafe { Box::from_raw(state) });
            return Err(if rc == codes::PAM_SUCCESS {
                codes::PAM_SYSTEM_ERR
            } else {
                rc
            });
        }
        let session = PamSession {
            pamh,
            state,
            last_status: codes::PAM_SUCCESS,
        };
        let delay: DelayFn = record_fail_delay;
        // SAFETY: PAM_FAIL_DELAY takes a `void (*)(int, unsigned, void *)`, which `delay` is;
        // libpam calls it with the conversation's appdata_ptr (our state).
        let rc =
            unsafe { pam_set_item(session.pamh, items::PAM_FAIL_DELAY, delay as *const c_void) };
        if rc != codes::PAM_SUCCESS {
            return Err(rc); // dropping `session` ends the transaction
        }
        Ok(session)
    }
}

// ---------------------------------------------------------------------------------------------
// Conversation

#[derive(Debug, Clone)]
struct Step {
    expect_prompt: Option<String>,
    answer: CString,
}

/// A queue of expected prompts and their answers, consumed in order by the prompts
/// (`PAM_PROMPT_ECHO_OFF` / `PAM_PROMPT_ECHO_ON`) the stack sends.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    steps: VecDeque<Step>,
}

impl Conversation {
    /// An empty script: every prompt is unanswered (`PAM_CONV_ERR`).
    pub fn new() -> Self {
        Self::default()
    }

    /// The next `PAM_PROMPT_ECHO_OFF` or `PAM_PROMPT_ECHO_ON` message is answered with
    /// `answer`. `expect_prompt`, when `Some`, must equal the prompt text; otherwise the
    /// conversation returns `PAM_CONV_ERR` and records a [`PamSession::prompt_mismatches`]
    /// entry. Panics if `answer` contains a NUL byte.
    pub fn answer(mut self, expect_prompt: Option<&str>, answer: &str) -> Self {
        self.steps.push_back(Step {
            expect_prompt: expect_prompt.map(str::to_owned),
            answer: CString::new(answer).expect("a PAM answer cannot contain NUL"),
        });
        self
    }

    /// Number of answers in the script.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the script is empty.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[derive(Debug, Default)]
struct ConvState {
    script: VecDeque<Step>,
    messages: Vec<(i32, String)>,
    unanswered: usize,
    mismatches: Vec<(String, String)>,
    fail_delays: Vec<(i32, u32)>,
}

fn lock(state: &Mutex<ConvState>) -> MutexGuard<'_, ConvState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The `pam_conv.conv` callback. Never unwinds: a panic becomes `PAM_CONV_ERR`.
unsafe extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded unchanged from libpam, see `converse_inner`.
        unsafe { converse_inner(num_msg, msg, resp, appdata_ptr) }
    }))
    .unwrap_or(codes::PAM_CONV_ERR)
}

/// # Safety
/// Linux-PAM calling convention: `msg` points to `num_msg` pointers to messages, `resp` is a
/// valid out-pointer, `appdata_ptr` is the `Mutex<ConvState>` installed by [`PamStack::start`].
unsafe fn converse_inner(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if resp.is_null() {
        return codes::PAM_CONV_ERR;
    }
    // SAFETY: `resp` is a valid out-pointer (checked non-null).
    unsafe { *resp = ptr::null_mut() };
    if msg.is_null() || appdata_ptr.is_null() || !(1..=PAM_MAX_NUM_MSG).contains(&num_msg) {
        return codes::PAM_CONV_ERR;
    }
    // SAFETY: appdata_ptr is our state; only shared references to the Mutex are ever made.
    let state = unsafe { &*(appdata_ptr as *const Mutex<ConvState>) };
    let mut state = lock(state);

    let n = num_msg as usize;
    // One answer slot per message: Some(answer) for a prompt, None for everything else.
    let mut answers: Vec<Option<CString>> = Vec::with_capacity(n);
    let mut ok = true;
    for i in 0..n {
        // SAFETY: `msg` holds `n` pointers (Linux-PAM convention, not Solaris' array).
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            return codes::PAM_CONV_ERR;
        }
        // SAFETY: `m` points to a valid pam_message.
        let (msg_style, text_ptr) = unsafe { ((*m).msg_style, (*m).msg) };
        // Only the textual styles carry a C string; a binary prompt is length-prefixed data.
        let text = if (1..=5).contains(&msg_style) && !text_ptr.is_null() {
            // SAFETY: textual messages are NUL-terminated strings.
            unsafe { CStr::from_ptr(text_ptr) }
                .to_string_lossy()
                .into_owned()
        } else {
            String::new()
        };
        state.messages.push((msg_style, text.clone()));
        match msg_style {
            style::PAM_PROMPT_ECHO_OFF | style::PAM_PROMPT_ECHO_ON => {
                if !ok {
                    // An earlier message already failed this call: record, consume nothing.
                    answers.push(None);
                    continue;
                }
                match state.script.pop_front() {
                    None => {
                        state.unanswered += 1;
                        ok = false;
                        answers.push(None);
                    }
                    Some(step) => {
                        if let Some(expected) = step.expect_prompt
                            && expected != text
                        {
                            state.mismatches.push((expected, text));
                            ok = false;
                            answers.push(None);
                        } else {
                            answers.push(Some(step.answer));
                        }
                    }
                }
            }
            style::PAM_ERROR_MSG | style::PAM_TEXT_INFO => answers.push(None),
            _ => {
                ok = false;
                answers.push(None);
            }
        }
    }
    drop(state);
    if !ok {
        return codes::PAM_CONV_ERR;
    }

    // libpam (and the module) free the array and every resp with free(3): allocate with libc.
    // SAFETY: plain allocation; zeroed, so every resp starts NULL and resp_retcode 0.
    let array = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) } as *mut PamResponse;
    if array.is_null() {
        return codes::PAM_BUF_ERR;
    }
    for (i, answer) in answers.iter().enumerate() {
        let Some(answer) = answer else { continue };
        // SAFETY: `answer` is NUL-terminated.
        let copy = unsafe { libc::strdup(answer.as_ptr()) };
        if copy.is_null() {
            for j in 0..i {
                // SAFETY: slots 0..i are NULL or came from strdup.
                unsafe { libc::free((*array.add(j)).resp.cast()) };
            }
            // SAFETY: `array` came from calloc.
            unsafe { libc::free(array.cast()) };
            return codes::PAM_BUF_ERR;
        }
        // SAFETY: i < n, inside the calloc'd array.
        unsafe { (*array.add(i)).resp = copy };
    }
    // SAFETY: `resp` is a valid out-pointer; ownership of `array` passes to the caller.
    unsafe { *resp = array };
    codes::PAM_SUCCESS
}

/// The `PAM_FAIL_DELAY` callback: records the delay a module asked for instead of sleeping.
unsafe extern "C" fn record_fail_delay(
    retval: c_int,
    usec_delay: c_uint,
    appdata_ptr: *mut c_void,
) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        if appdata_ptr.is_null() || usec_delay == 0 {
            return;
        }
        // SAFETY: libpam passes the conversation's appdata_ptr, our live state.
        let state = unsafe { &*(appdata_ptr as *const Mutex<ConvState>) };
        lock(state).fail_delays.push((retval, usec_delay));
    }));
}

// ---------------------------------------------------------------------------------------------
// Session

/// One PAM transaction (`pam_handle_t`); `pam_end` runs on drop with the last status.
pub struct PamSession {
    pamh: *mut PamHandle,
    /// `Box<Mutex<ConvState>>` turned raw: libpam holds it as appdata_ptr until pam_end.
    state: *mut Mutex<ConvState>,
    last_status: c_int,
}

impl PamSession {
    fn record(&mut self, rc: c_int) -> i32 {
        self.last_status = rc;
        rc
    }

    fn state(&self) -> MutexGuard<'_, ConvState> {
        // SAFETY: `state` stays valid until Drop; only shared references are made.
        lock(unsafe { &*self.state })
    }

    /// `pam_authenticate`.
    pub fn authenticate(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_authenticate(self.pamh, flags) };
        self.record(rc)
    }

    /// `pam_acct_mgmt`.
    pub fn acct_mgmt(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_acct_mgmt(self.pamh, flags) };
        self.record(rc)
    }

    /// `pam_chauthtok` (libpam itself runs the PRELIM_CHECK and UPDATE_AUTHTOK passes).
    pub fn chauthtok(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_chauthtok(self.pamh, flags) };
        self.record(rc)
    }

    /// `pam_open_session`.
    pub fn open_session(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_open_session(self.pamh, flags) };
        self.record(rc)
    }

    /// `pam_close_session`.
    pub fn close_session(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_close_session(self.pamh, flags) };
        self.record(rc)
    }

    /// `pam_setcred`.
    pub fn setcred(&mut self, flags: i32) -> i32 {
        // SAFETY: `pamh` is a live handle until Drop.
        let rc = unsafe { pam_setcred(self.pamh, flags) };
        self.record(rc)
    }

    /// The status of the last stack call (what `pam_end` will receive).
    pub fn last_status(&self) -> i32 {
        self.last_status
    }

    /// `pam_set_item` for a string item (`items::PAM_RHOST`, `PAM_TTY`, `PAM_RUSER`, ...).
    /// Returns `PAM_BAD_ITEM` without calling libpam for a non-string item or a value with a
    /// NUL byte. Note that libpam only lets modules set `PAM_AUTHTOK` / `PAM_OLDAUTHTOK`.
    pub fn set_item_str(&mut self, item_type: i32, value: &str) -> i32 {
        if !items::is_string_item(item_type) {
            return codes::PAM_BAD_ITEM;
        }
        let Ok(value) = CString::new(value) else {
            return codes::PAM_BAD_ITEM;
        };
        // SAFETY: a string item; libpam copies the string.
        unsafe { pam_set_item(self.pamh, item_type, value.as_ptr().cast()) }
    }

    /// `pam_get_item` for a string item: `None` if unset, refused, or not a string item.
    pub fn get_item_str(&self, item_type: i32) -> Option<String> {
        if !items::is_string_item(item_type) {
            return None;
        }
        let mut item: *const c_void = ptr::null();
        // SAFETY: live handle, valid out-pointer.
        let rc = unsafe { pam_get_item(self.pamh, item_type, &mut item) };
        if rc != codes::PAM_SUCCESS || item.is_null() {
            return None;
        }
        // SAFETY: string items are NUL-terminated strings owned by libpam.
        let s = unsafe { CStr::from_ptr(item.cast::<c_char>()) };
        Some(s.to_string_lossy().into_owned())
    }

    /// `pam_getenv`: a variable a module put in the PAM environment.
    pub fn getenv(&self, name: &str) -> Option<String> {
        let name = CString::new(name).ok()?;
        // SAFETY: live handle, NUL-terminated name; the result is owned by libpam.
        let value = unsafe { pam_getenv(self.pamh, name.as_ptr()) };
        if value.is_null() {
            return None;
        }
        // SAFETY: non-null result of pam_getenv is a NUL-terminated string.
        let s = unsafe { CStr::from_ptr(value) };
        Some(s.to_string_lossy().into_owned())
    }

    /// Every message the stack showed, in order: `(style, text)`, including prompts,
    /// `PAM_TEXT_INFO` and `PAM_ERROR_MSG` (see [`style`]).
    pub fn messages(&self) -> Vec<(i32, String)> {
        self.state().messages.clone()
    }

    /// The texts of the prompts (`PAM_PROMPT_ECHO_OFF` / `ECHO_ON`) shown, in order.
    pub fn prompts(&self) -> Vec<String> {
        self.state()
            .messages
            .iter()
            .filter(|(s, _)| *s == style::PAM_PROMPT_ECHO_OFF || *s == style::PAM_PROMPT_ECHO_ON)
            .map(|(_, text)| text.clone())
            .collect()
    }

    /// Prompts that came when the script was empty (each made the conversation return
    /// `PAM_CONV_ERR`).
    pub fn unanswered_prompts(&self) -> usize {
        self.state().unanswered
    }

    /// Answers never asked for.
    pub fn script_left(&self) -> usize {
        self.state().script.len()
    }

    /// `(expected, actual)` prompt texts where a scripted `expect_prompt` did not match (each
    /// made the conversation return `PAM_CONV_ERR`).
    pub fn prompt_mismatches(&self) -> Vec<(String, String)> {
        self.state().mismatches.clone()
    }

    /// `(status, microseconds)` each time libpam applied a non-zero fail delay that a module
    /// asked for with `pam_fail_delay()`. Without this harness libpam would have slept that
    /// long when `status` is not `PAM_SUCCESS`.
    pub fn fail_delays(&self) -> Vec<(i32, u32)> {
        self.state().fail_delays.clone()
    }
}

impl Drop for PamSession {
    fn drop(&mut self) {
        // SAFETY: `pamh` is live and ended exactly once; module cleanups may still call the
        // conversation, so `state` is freed only afterwards.
        unsafe {
            pam_end(self.pamh, self.last_status);
            drop(Box::from_raw(self.state));
        }
    }
}

impl std::fmt::Debug for PamSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PamSession")
            .field("last_status", &codes::name(self.last_status))
            .field("messages", &self.messages())
            .finish()
    }
}
