//! `pam-login`: one login through real libpam with a private, throw-away stack that loads
//! pam_credd.so — what `make demo` uses to show logins without touching /etc/pam.d.
//!
//! Usage: `pam-login MODULE SOCKET USER [auth|account|both]`, the password on stdin's first line.
//! Prints `authenticate: PAM_…` and/or `acct_mgmt: PAM_…`, exits 0 when every step succeeded.

use std::io::BufRead;
use std::process::ExitCode;

use credd_e2e::libpam::{Conversation, PamStack, codes};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (module, socket, user) = match (args.first(), args.get(1), args.get(2)) {
        (Some(m), Some(s), Some(u)) => (m, s, u),
        _ => {
            eprintln!("usage: pam-login MODULE SOCKET USER [auth|account|both] < password");
            return ExitCode::from(2);
        }
    };
    let steps = args.get(3).map_or("auth", String::as_str);
    let mut password = String::new();
    if std::io::stdin().lock().read_line(&mut password).is_err() {
        eprintln!("pam-login: cannot read the password from stdin");
        return ExitCode::from(2);
    }
    let password = password.trim_end_matches(['\n', '\r']);
    let line = |facility: &str| format!("{facility} required {module} socket={socket} nodelay");
    let stack = PamStack::new("credd-demo", &[line("auth"), line("account")]);
    let conv = Conversation::new().answer(Some("Password: "), password);
    let mut session = match stack.start(user, conv) {
        Ok(s) => s,
        Err(rc) => {
            eprintln!("pam-login: pam_start_confdir failed: {}", codes::name(rc));
            return ExitCode::FAILURE;
        }
    };
    let mut all_ok = true;
    if steps == "auth" || steps == "both" {
        let rc = session.authenticate(0);
        println!("authenticate: {}", codes::name(rc));
        all_ok &= rc == codes::PAM_SUCCESS;
    }
    if steps == "account" || steps == "both" {
        let rc = session.acct_mgmt(0);
        println!("acct_mgmt: {}", codes::name(rc));
        all_ok &= rc == codes::PAM_SUCCESS;
    }
    for (_, text) in session.messages().iter().filter(|(style, _)| *style >= 3) {
        println!("  message: {text}");
    }
    if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
