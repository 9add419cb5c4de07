//! `pam-login`: one PAM transaction through real libpam with a private, throw-away stack that
//! loads pam_credd.so — what `make demo` (and a few tests) use to log in without touching
//! /etc/pam.d.
//!
//! Usage: `pam-login MODULE SOCKET USER [auth|account|both|change|session]`. Answers to the
//! prompts come from stdin, one line each, in order (the password or code first; for `change`,
//! then the new password twice). Prints each step's result (`authenticate: PAM_…`) and every
//! message shown, and exits 0 when every step succeeded.
//!
//! - `both`: authenticate, then acct_mgmt.
//! - `change`: authenticate, acct_mgmt, and when it answers PAM_NEW_AUTHTOK_REQD, chauthtok with
//!   PAM_CHANGE_EXPIRED_AUTHTOK and acct_mgmt again — what login and sshd do.
//! - `session`: authenticate and open a session (left open when the process exits).

use std::io::Read;
use std::process::ExitCode;

use credd_e2e::libpam::{Conversation, PamStack, codes, flags};

fn step(name: &str, rc: i32) -> bool {
    println!("{name}: {}", codes::name(rc));
    rc == codes::PAM_SUCCESS
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (module, socket, user) = match (args.first(), args.get(1), args.get(2)) {
        (Some(m), Some(s), Some(u)) => (m, s, u),
        _ => {
            eprintln!(
                "usage: pam-login MODULE SOCKET USER [auth|account|both|change|session] < answers"
            );
            return ExitCode::from(2);
        }
    };
    let steps = args.get(3).map_or("auth", String::as_str);
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("pam-login: cannot read the answers from stdin");
        return ExitCode::from(2);
    }
    let mut conv = Conversation::new();
    for answer in input.lines() {
        conv = conv.answer(None, answer);
    }
    let line = |facility: &str| format!("{facility} required {module} socket={socket} nodelay");
    let stack = PamStack::new(
        "credd-demo",
        &[
            line("auth"),
            line("account"),
            line("password"),
            line("session"),
        ],
    );
    let mut s = match stack.start(user, conv) {
        Ok(s) => s,
        Err(rc) => {
            eprintln!("pam-login: pam_start_confdir failed: {}", codes::name(rc));
            return ExitCode::FAILURE;
        }
    };
    let ok = match steps {
        "account" => {
            let rc = s.acct_mgmt(0);
            step("acct_mgmt", rc)
        }
        "both" => {
            let rc = s.authenticate(0);
            step("authenticate", rc) && {
                let rc = s.acct_mgmt(0);
                step("acct_mgmt", rc)
            }
        }
        "change" => {
            let rc = s.authenticate(0);
            step("authenticate", rc) && {
                let mut rc = s.acct_mgmt(0);
                let mut ok = step("acct_mgmt", rc);
                if rc == codes::PAM_NEW_AUTHTOK_REQD {
                    rc = s.chauthtok(flags::PAM_CHANGE_EXPIRED_AUTHTOK);
                    ok = step("chauthtok", rc) && {
                        let rc = s.acct_mgmt(0);
                        step("acct_mgmt", rc)
                    };
                }
                ok
            }
        }
        "session" => {
            let rc = s.authenticate(0);
            step("authenticate", rc) && {
                let rc = s.open_session(0);
                step("open_session", rc)
            }
        }
        _ => {
            let rc = s.authenticate(0);
            step("authenticate", rc)
        }
    };
    for (style, text) in s.messages() {
        if style >= 3 {
            println!("  message: {text}");
        }
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
