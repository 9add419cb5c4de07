//! `pam_credd.so`: a PAM module that forwards every decision to credd.
//!
//! This file is the thin FFI layer: each hook gathers PAM items into plain Rust values
//! ([`flow::HookContext`]) and calls the flow, which decides in safe, unit-tested Rust. See
//! `docs/pam.md` for the module arguments, return codes and example stacks.
//!
//! The module never panics on purpose (no `unwrap`, `expect` or indexing outside tests; the lints
//! below enforce it); should it panic anyway, pam-bindings catches the panic at the hook boundary
//! and returns `PAM_ABORT`, and the release profile keeps `panic = "unwind"` so that it can.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

pub mod args;
pub mod ffi;
pub mod flow;
pub mod log;

use std::ffi::CStr;

use pam::constants::{PamFlag, PamResultCode};
use pam::module::{PamHandle, PamHooks};

use crate::args::ModuleArgs;
use crate::ffi::PamConversation;
use crate::flow::{HookContext, SocketTransport};
use crate::log::{HookKind, Logger};

struct PamCredd;
pam::pam_hooks!(PamCredd);

impl PamHooks for PamCredd {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let start = start(pamh, &args, HookKind::Auth);
        // First, before any early return: a failure for any reason is delayed alike, so the delay
        // says nothing about why the login failed.
        let delay = start
            .args
            .fail_delay_usec()
            .map(|usec| ffi::set_fail_delay(pamh, usec));
        if let Some(Err(code)) = delay {
            start
                .log
                .error(&format!("pam_fail_delay failed ({code:?})"));
        }
        let ctx = match context(pamh, flags, start) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        flow::authenticate(&ctx, &mut PamConversation::new(pamh), &mut transport)
    }

    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        // credd hands out no credentials (tickets, keys) to establish or delete.
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let start = start(pamh, &args, HookKind::Account);
        let ctx = match context(pamh, flags, start) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        flow::account(&ctx, &mut PamConversation::new(pamh), &mut transport)
    }

    fn sm_chauthtok(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let start = start(pamh, &args, HookKind::Chauthtok);
        let ctx = match context(pamh, flags, start) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        flow::chauthtok(&ctx, &mut PamConversation::new(pamh), &mut transport)
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let start = start(pamh, &args, HookKind::Session);
        let ctx = match context(pamh, flags, start) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        flow::open_session(&ctx, &mut transport)
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let start = start(pamh, &args, HookKind::Session);
        let ctx = match context(pamh, flags, start) {
            Ok(ctx) => ctx,
            Err(code) => return code,
        };
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        flow::close_session(&ctx, &mut transport)
    }
}

/// Parses the arguments and sets up logging; argument problems are logged on every call, as
/// pam_unix does, so a typo in `/etc/pam.d` shows up next to the login it affected.
fn start(pamh: &PamHandle, argv: &[&CStr], kind: HookKind) -> Start {
    let service = ffi::service(pamh).unwrap_or_default();
    let (args, problems) = args::parse(argv);
    let log = Logger::syslog(&service, kind, args.debug);
    for problem in &problems {
        log.error(problem);
    }
    Start { service, args, log }
}

/// What every hook knows before it looks at the user.
struct Start {
    service: String,
    args: ModuleArgs,
    log: Logger,
}

/// The items every talking hook needs. `PAM_USER` may be asked of the user here (libpam's
/// `pam_get_user`), so this runs after the failure delay is set.
fn context(
    pamh: &mut PamHandle,
    flags: PamFlag,
    start: Start,
) -> Result<HookContext, PamResultCode> {
    let Start { service, args, log } = start;
    let user = match ffi::user_bytes(pamh) {
        Ok(user) => user,
        Err(code) => {
            log.debug(&format!("could not get the user name ({code:?})"));
            return Err(code);
        }
    };
    Ok(HookContext {
        user,
        service,
        rhost: ffi::rhost(pamh),
        tty: ffi::tty(pamh),
        ruser: ffi::ruser(pamh),
        real_uid: ffi::real_uid(),
        flags,
        args,
        log,
    })
}
