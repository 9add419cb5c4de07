//! The libpam harness itself, proven against stock Linux-PAM modules only (no credd involved).

use std::time::{Duration, Instant};

use credd_e2e::libpam::{
    Conversation, PamStack, codes, codes::name, flags, items, style, system_module,
};

/// `"<type> <control> /abs/path/<module> <args>"`; panics if the stock module is missing
/// (libpam0g is a test prerequisite).
fn line(kind: &str, control: &str, module: &str, args: &str) -> String {
    let path = system_module(module).unwrap_or_else(|| {
        panic!("{module} not found under /lib/*/security or /usr/lib/*/security")
    });
    format!("{kind} {control} {} {args}", path.display())
}

#[test]
fn system_modules_are_found_by_absolute_path() {
    let permit = system_module("pam_permit.so").expect("pam_permit.so installed");
    assert!(permit.is_absolute(), "{}", permit.display());
    assert!(permit.exists(), "{}", permit.display());
    assert_eq!(system_module("pam_no_such_module.so"), None);
}

#[test]
fn permit_stack_succeeds_for_every_call() {
    let stack = PamStack::new(
        "permit",
        &[
            line("auth", "required", "pam_permit.so", ""),
            line("account", "required", "pam_permit.so", ""),
            line("password", "required", "pam_permit.so", ""),
            line("session", "required", "pam_permit.so", ""),
        ],
    );
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    for (call, rc) in [
        ("authenticate", pam.authenticate(0)),
        ("setcred", pam.setcred(flags::PAM_ESTABLISH_CRED)),
        ("acct_mgmt", pam.acct_mgmt(0)),
        ("open_session", pam.open_session(0)),
        ("close_session", pam.close_session(0)),
        ("chauthtok", pam.chauthtok(0)),
    ] {
        assert_eq!(rc, codes::PAM_SUCCESS, "{call}: {}", name(rc));
    }
    assert_eq!(pam.last_status(), codes::PAM_SUCCESS);
    assert!(pam.messages().is_empty(), "{:?}", pam.messages());
}

#[test]
fn deny_stack_fails_authentication() {
    let stack = PamStack::new("deny", &[line("auth", "required", "pam_deny.so", "")]);
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", name(rc));
    assert_eq!(pam.last_status(), codes::PAM_AUTH_ERR);
}

#[test]
fn stack_is_read_from_the_private_directory_only() {
    // A service name that exists nowhere else: if libpam looked in /etc/pam.d it would fall
    // back to the host's "other" instead of running this permit stack.
    let stack = PamStack::new(
        "credd-harness-private-only",
        &[line("auth", "required", "pam_permit.so", "")],
    );
    assert!(stack.dir().join("credd-harness-private-only").is_file());
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", name(rc));

    std::fs::remove_file(stack.dir().join("credd-harness-private-only")).unwrap();
    let err = stack.start("alice", Conversation::new()).err();
    assert_eq!(
        err,
        Some(codes::PAM_ABORT),
        "a missing service file must not start"
    );
}

#[test]
fn unix_prompts_for_password_and_rejects_unknown_user() {
    let stack = PamStack::new("unix", &[line("auth", "required", "pam_unix.so", "")]);
    let script = Conversation::new().answer(Some("Password: "), "not-the-password");
    let mut pam = stack
        .start("credd-no-such-user-7f3a", script)
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert!(
        rc == codes::PAM_USER_UNKNOWN || rc == codes::PAM_AUTH_ERR,
        "expected an authentication failure, got {}",
        name(rc)
    );
    assert_eq!(
        pam.messages(),
        vec![(style::PAM_PROMPT_ECHO_OFF, "Password: ".to_owned())]
    );
    assert_eq!(pam.prompts(), vec!["Password: ".to_owned()]);
    assert_eq!(pam.script_left(), 0);
    assert_eq!(pam.unanswered_prompts(), 0);
    assert!(pam.prompt_mismatches().is_empty());
}

#[test]
fn prompt_with_empty_script_is_unanswered() {
    let stack = PamStack::new("unix", &[line("auth", "required", "pam_unix.so", "")]);
    let mut pam = stack
        .start("credd-no-such-user-7f3a", Conversation::new())
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert_ne!(rc, codes::PAM_SUCCESS, "{}", name(rc));
    assert_eq!(pam.unanswered_prompts(), 1);
    assert_eq!(pam.prompts(), vec!["Password: ".to_owned()]);
}

#[test]
fn unexpected_prompt_text_is_a_mismatch() {
    let stack = PamStack::new("unix", &[line("auth", "required", "pam_unix.so", "")]);
    let script = Conversation::new().answer(Some("Passcode: "), "123456");
    let mut pam = stack
        .start("credd-no-such-user-7f3a", script)
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert_ne!(rc, codes::PAM_SUCCESS, "{}", name(rc));
    assert_eq!(
        pam.prompt_mismatches(),
        vec![("Passcode: ".to_owned(), "Password: ".to_owned())]
    );
    assert_eq!(pam.script_left(), 0, "the mismatched answer is consumed");
    assert_eq!(pam.unanswered_prompts(), 0);
}

#[test]
fn answers_never_asked_for_are_left() {
    let stack = PamStack::new("permit", &[line("auth", "required", "pam_permit.so", "")]);
    let script = Conversation::new().answer(None, "one").answer(None, "two");
    let mut pam = stack.start("alice", script).expect("pam_start_confdir");
    assert_eq!(pam.authenticate(0), codes::PAM_SUCCESS);
    assert_eq!(pam.script_left(), 2);
    assert!(pam.prompts().is_empty());
}

#[test]
fn info_messages_are_recorded_without_answers() {
    let stack = PamStack::new(
        "echo",
        &[
            line("auth", "optional", "pam_echo.so", "hello %u"),
            line("auth", "required", "pam_permit.so", ""),
        ],
    );
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    let rc = pam.authenticate(0);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", name(rc));
    assert_eq!(
        pam.messages(),
        vec![(style::PAM_TEXT_INFO, "hello alice".to_owned())]
    );
    assert_eq!(
        pam.unanswered_prompts(),
        0,
        "an info message is not a prompt"
    );
}

#[test]
fn silent_flag_suppresses_info_messages() {
    let stack = PamStack::new(
        "echo",
        &[
            line("auth", "optional", "pam_echo.so", "hello %u"),
            line("auth", "required", "pam_permit.so", ""),
        ],
    );
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    assert_eq!(pam.authenticate(flags::PAM_SILENT), codes::PAM_SUCCESS);
    assert!(pam.messages().is_empty(), "{:?}", pam.messages());
}

#[test]
fn string_items_reach_the_modules() {
    let stack = PamStack::new(
        "rhost",
        &[line(
            "auth",
            "required",
            "pam_succeed_if.so",
            "quiet rhost = client.example",
        )],
    );

    let mut pam = stack
        .start("root", Conversation::new())
        .expect("pam_start_confdir");
    assert_eq!(
        pam.set_item_str(items::PAM_RHOST, "client.example"),
        codes::PAM_SUCCESS
    );
    assert_eq!(
        pam.set_item_str(items::PAM_TTY, "pts/7"),
        codes::PAM_SUCCESS
    );
    assert_eq!(
        pam.get_item_str(items::PAM_RHOST).as_deref(),
        Some("client.example")
    );
    assert_eq!(pam.get_item_str(items::PAM_TTY).as_deref(), Some("pts/7"));
    assert_eq!(pam.get_item_str(items::PAM_USER).as_deref(), Some("root"));
    let rc = pam.authenticate(0);
    assert_eq!(rc, codes::PAM_SUCCESS, "{}", name(rc));
    drop(pam);

    let mut pam = stack
        .start("root", Conversation::new())
        .expect("pam_start_confdir");
    assert_eq!(
        pam.set_item_str(items::PAM_RHOST, "other.example"),
        codes::PAM_SUCCESS
    );
    let rc = pam.authenticate(0);
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", name(rc));
}

#[test]
fn authtok_cannot_be_set_by_the_application() {
    // libpam lets only modules set PAM_AUTHTOK / PAM_OLDAUTHTOK: a password must come through
    // the conversation.
    let stack = PamStack::new("permit", &[line("auth", "required", "pam_permit.so", "")]);
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    let rc = pam.set_item_str(items::PAM_AUTHTOK, "secret");
    assert_eq!(rc, codes::PAM_BAD_ITEM, "{}", name(rc));
    assert_eq!(pam.get_item_str(items::PAM_AUTHTOK), None);
}

#[test]
fn non_string_items_are_refused_without_calling_libpam() {
    let stack = PamStack::new("permit", &[line("auth", "required", "pam_permit.so", "")]);
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    for item in [items::PAM_CONV, items::PAM_FAIL_DELAY, items::PAM_XAUTHDATA] {
        assert_eq!(
            pam.set_item_str(item, "x"),
            codes::PAM_BAD_ITEM,
            "item {item}"
        );
        assert_eq!(pam.get_item_str(item), None, "item {item}");
    }
    assert_eq!(
        pam.set_item_str(items::PAM_RUSER, "a\0b"),
        codes::PAM_BAD_ITEM
    );
    // The conversation still works afterwards.
    assert_eq!(pam.authenticate(0), codes::PAM_SUCCESS);
}

#[test]
fn fail_delay_is_recorded_not_slept() {
    let stack = PamStack::new(
        "delay",
        &[
            line("auth", "optional", "pam_faildelay.so", "delay=3000000"),
            line("auth", "required", "pam_deny.so", ""),
        ],
    );
    let mut pam = stack
        .start("alice", Conversation::new())
        .expect("pam_start_confdir");
    let started = Instant::now();
    let rc = pam.authenticate(0);
    let elapsed = started.elapsed();
    assert_eq!(rc, codes::PAM_AUTH_ERR, "{}", name(rc));
    assert!(elapsed < Duration::from_secs(1), "slept {elapsed:?}");
    let delays = pam.fail_delays();
    assert_eq!(delays.len(), 1, "{delays:?}");
    assert_eq!(delays[0].0, codes::PAM_AUTH_ERR);
    assert!(delays[0].1 > 0, "{delays:?}");
}

#[test]
fn code_names_match_linux_pam_values() {
    assert_eq!(name(0), "PAM_SUCCESS");
    assert_eq!(name(7), "PAM_AUTH_ERR");
    assert_eq!(name(19), "PAM_CONV_ERR");
    assert_eq!(name(31), "PAM_INCOMPLETE");
    assert_eq!(name(999), "PAM_<unknown code>");
    for code in 0..=31 {
        assert!(
            name(code).starts_with("PAM_") && !name(code).contains('<'),
            "{code}"
        );
    }
}
