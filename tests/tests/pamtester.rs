//! The stock `pamtester` loading pam_credd.so from a service file in /etc/pam.d (root only).

use credd_e2e::TestDaemon;
use credd_e2e::bins::skip_unless_root;
use credd_e2e::system_pam::{SystemService, all_output, have};

fn skip(test: &str) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    assert!(
        have("pamtester"),
        "pamtester is missing: apt-get install pamtester (make test does)"
    );
    false
}

#[test]
fn pamtester_logs_in_with_the_right_password_only() {
    if skip("pamtester_logs_in_with_the_right_password_only") {
        return;
    }
    let d = TestDaemon::start();
    d.add_user("pt-alice", "correct horse battery", &["--uid", "5101"]);
    let svc = SystemService::install(&[
        d.module_line("auth", "required", ""),
        d.module_line("account", "required", ""),
    ]);
    let ok = svc.pamtester(
        None,
        "pt-alice",
        &["authenticate", "acct_mgmt"],
        "correct horse battery\n",
    );
    let text = all_output(&ok);
    assert!(ok.status.success(), "{text}");
    assert!(text.contains("successfully authenticated"), "{text}");

    let bad = svc.pamtester(None, "pt-alice", &["authenticate"], "wrong horse battery\n");
    let text = all_output(&bad);
    assert!(!bad.status.success());
    assert!(text.contains("Authentication failure"), "{text}");
}
