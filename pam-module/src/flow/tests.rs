//! The flow driven by a scripted conversation and a scripted transport. Both check on drop that
//! their script was used up, so a test also fails when an expected prompt or request never came.

use std::collections::VecDeque;
use std::io;

use credd_proto::{ErrorKind, ProtoError, Reply, Request};
use pam::constants::{
    PAM_CHANGE_EXPIRED_AUTHTOK, PAM_DISALLOW_NULL_AUTHTOK, PAM_SILENT, PamFlag, PamResultCode,
};

use super::*;
use crate::args;
use crate::log::{HookKind, Level, Logger};

const PASSWORD: &str = "correct horse battery";

// ---------------------------------------------------------------------------------------------
// Scripted conversation

enum Step {
    Prompt(&'static str, Result<Option<&'static str>, PamResultCode>),
    // No flow shows a PAM_TEXT_INFO message yet.
    #[allow(dead_code)]
    Info(&'static str),
    Error(&'static str),
}

/// What `PAM_AUTHTOK` holds before the hook runs.
enum Token {
    Unset,
    Set(&'static str),
    NotUtf8,
}

struct ScriptedConversation {
    script: VecDeque<Step>,
    token: Token,
    /// Error to return from `store_token`, once.
    store_error: Option<PamResultCode>,
    stored: Vec<String>,
    token_reads: usize,
    /// What `PAM_OLDAUTHTOK` holds before the hook runs.
    old_token: Token,
    store_old_error: Option<PamResultCode>,
    stored_old: Vec<String>,
    old_token_reads: usize,
    /// Module data a previous authenticate left in the handle: (user, secret).
    remembered: Option<(&'static str, &'static str)>,
    remembered_reads: usize,
    /// Error to return from `remember_for_change`, once.
    remember_error: Option<PamResultCode>,
    /// Every `remember_for_change` call: (user, secret).
    kept: Vec<(String, String)>,
}

impl ScriptedConversation {
    fn new(script: Vec<Step>) -> Self {
        ScriptedConversation {
            script: script.into(),
            token: Token::Unset,
            store_error: None,
            stored: Vec::new(),
            token_reads: 0,
            old_token: Token::Unset,
            store_old_error: None,
            stored_old: Vec::new(),
            old_token_reads: 0,
            remembered: None,
            remembered_reads: 0,
            remember_error: None,
            kept: Vec::new(),
        }
    }

    fn with_old_token(mut self, token: Token) -> Self {
        self.old_token = token;
        self
    }

    fn with_remembered(mut self, user: &'static str, secret: &'static str) -> Self {
        self.remembered = Some((user, secret));
        self
    }

    fn silent() -> Self {
        Self::new(Vec::new())
    }

    fn password(answer: &'static str) -> Self {
        Self::new(vec![Step::Prompt("Password: ", Ok(Some(answer)))])
    }

    fn with_token(mut self, token: Token) -> Self {
        self.token = token;
        self
    }

    fn next(&mut self, what: &str) -> Step {
        match self.script.pop_front() {
            Some(step) => step,
            None => panic!("unexpected {what}: the script is used up"),
        }
    }
}

impl Conversation for ScriptedConversation {
    fn prompt_secret(&mut self, prompt: &str) -> Result<Option<Secret>, PamResultCode> {
        match self.next(&format!("prompt {prompt:?}")) {
            Step::Prompt(expected, answer) => {
                assert_eq!(prompt, expected);
                answer.map(|a| a.map(|s| Secret::new(s.to_owned())))
            }
            _ => panic!("prompt {prompt:?} where the script expected a message"),
        }
    }

    fn info(&mut self, message: &str) {
        match self.next(&format!("info {message:?}")) {
            Step::Info(expected) => assert_eq!(message, expected),
            _ => panic!("info {message:?} out of script"),
        }
    }

    fn error(&mut self, message: &str) {
        match self.next(&format!("error {message:?}")) {
            Step::Error(expected) => assert_eq!(message, expected),
            _ => panic!("error message {message:?} out of script"),
        }
    }

    fn stored_token(&mut self) -> StoredToken {
        self.token_reads += 1;
        match self.token {
            Token::Unset => StoredToken::Unset,
            Token::Set(t) => StoredToken::Set(Secret::new(t.to_owned())),
            Token::NotUtf8 => StoredToken::NotUtf8,
        }
    }

    fn store_token(&mut self, token: &Secret) -> Result<(), PamResultCode> {
        if let Some(code) = self.store_error.take() {
            return Err(code);
        }
        self.stored.push(token.expose().to_owned());
        Ok(())
    }

    fn stored_old_token(&mut self) -> StoredToken {
        self.old_token_reads += 1;
        match self.old_token {
            Token::Unset => StoredToken::Unset,
            Token::Set(t) => StoredToken::Set(Secret::new(t.to_owned())),
            Token::NotUtf8 => StoredToken::NotUtf8,
        }
    }

    fn store_old_token(&mut self, token: &Secret) -> Result<(), PamResultCode> {
        if let Some(code) = self.store_old_error.take() {
            return Err(code);
        }
        self.stored_old.push(token.expose().to_owned());
        Ok(())
    }

    fn remembered_for_change(&mut self) -> Option<RememberedSecret> {
        self.remembered_reads += 1;
        self.remembered.map(|(user, secret)| RememberedSecret {
            user: user.to_owned(),
            secret: Secret::new(secret.to_owned()),
        })
    }

    fn remember_for_change(&mut self, remembered: RememberedSecret) -> Result<(), PamResultCode> {
        if let Some(code) = self.remember_error.take() {
            return Err(code);
        }
        self.kept
            .push((remembered.user, remembered.secret.expose().to_owned()));
        Ok(())
    }
}

impl Drop for ScriptedConversation {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.script.is_empty(),
                "{} conversation step(s) never happened",
                self.script.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Scripted transport

struct ScriptedTransport {
    replies: VecDeque<Result<Reply, ProtoError>>,
    sent: Vec<Request>,
}

impl ScriptedTransport {
    fn replying(reply: Reply) -> Self {
        Self::new(vec![Ok(reply)])
    }

    fn failing(err: ProtoError) -> Self {
        Self::new(vec![Err(err)])
    }

    /// For flows that must not contact the daemon at all.
    fn unused() -> Self {
        Self::new(Vec::new())
    }

    fn new(replies: Vec<Result<Reply, ProtoError>>) -> Self {
        ScriptedTransport {
            replies: replies.into(),
            sent: Vec::new(),
        }
    }

    fn only_auth(&self) -> &AuthRequest {
        match self.sent.as_slice() {
            [Request::Authenticate(auth)] => auth,
            other => panic!("expected one authenticate request, got {other:?}"),
        }
    }

    fn only_account(&self) -> &AccountRequest {
        match self.sent.as_slice() {
            [Request::AccountCheck(acct)] => acct,
            other => panic!("expected one account check, got {other:?}"),
        }
    }
}

impl Transport for ScriptedTransport {
    fn call(&mut self, request: &Request) -> Result<Reply, ProtoError> {
        self.sent.push(request.clone());
        match self.replies.pop_front() {
            Some(reply) => reply,
            None => panic!("unexpected request to credd: {request:?}"),
        }
    }
}

impl Drop for ScriptedTransport {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            assert!(
                self.replies.is_empty(),
                "{} scripted repl(y/ies) never requested",
                self.replies.len()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn ctx(words: &[&str], flags: PamFlag) -> HookContext {
    ctx_for(b"alice", words, flags, HookKind::Auth)
}

fn ctx_for(user: &[u8], words: &[&str], flags: PamFlag, kind: HookKind) -> HookContext {
    let owned: Vec<std::ffi::CString> = words
        .iter()
        .map(|w| std::ffi::CString::new(*w).unwrap())
        .collect();
    let refs: Vec<&std::ffi::CStr> = owned.iter().map(|c| c.as_c_str()).collect();
    let (args, problems) = args::parse(&refs);
    assert!(problems.is_empty(), "{problems:?}");
    HookContext {
        user: user.to_vec(),
        service: "sshd".into(),
        rhost: Some("192.0.2.7".into()),
        tty: Some("ssh".into()),
        ruser: None,
        // An ordinary user unless a test says otherwise (only chauthtok looks at it).
        real_uid: 1000,
        flags,
        args,
        // Debug on, so the no-secret-in-logs checks cover the debug lines as well.
        log: Logger::memory("sshd", kind, true),
    }
}

fn account_ctx(words: &[&str], flags: PamFlag) -> HookContext {
    ctx_for(b"alice", words, flags, HookKind::Account)
}

fn unavailable() -> ProtoError {
    ProtoError::Io(io::Error::from(io::ErrorKind::ConnectionRefused))
}

fn errors_logged(ctx: &HookContext) -> Vec<String> {
    ctx.log
        .lines()
        .into_iter()
        .filter(|(level, _)| *level == Level::Err)
        .map(|(_, line)| line)
        .collect()
}

fn assert_secret_never_logged(ctx: &HookContext, secret: &str) {
    for (_, line) in ctx.log.lines() {
        assert!(!line.contains(secret), "secret in log line {line:?}");
    }
}

/// Runs authenticate with the password prompted for and credd answering `reply`.
fn auth_with_reply(words: &[&str], reply: Reply) -> PamResultCode {
    let ctx = ctx(words, 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    let mut transport = ScriptedTransport::replying(reply);
    let code = authenticate(&ctx, &mut conv, &mut transport);
    assert_eq!(transport.only_auth().secret.expose(), PASSWORD);
    assert_secret_never_logged(&ctx, PASSWORD);
    code
}

/// Authenticate with a scripted conversation beyond the password prompt.
fn auth_with_conversation(words: &[&str], reply: Reply, after_prompt: Vec<Step>) -> PamResultCode {
    let ctx = ctx(words, 0);
    let mut script = vec![Step::Prompt("Password: ", Ok(Some(PASSWORD)))];
    script.extend(after_prompt);
    let mut conv = ScriptedConversation::new(script);
    let mut transport = ScriptedTransport::replying(reply);
    let code = authenticate(&ctx, &mut conv, &mut transport);
    assert_secret_never_logged(&ctx, PASSWORD);
    code
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

#[test]
fn auth_locked_tells_the_user_and_is_auth_err() {
    assert_eq!(
        auth_with_conversation(
            &[],
            Reply::Locked {
                until: None,
                unknown: false
            },
            vec![Step::Error(LOCKED_MESSAGE)]
        ),
        PamResultCode::PAM_AUTH_ERR
    );
    let until = "2030-01-01T00:00:00Z";
    assert_eq!(
        auth_with_conversation(
            &[],
            Reply::Locked {
                until: Some(until.into()),
                unknown: false
            },
            vec![Step::Error(leak(locked_message(Some(until))))]
        ),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(locked_message(Some(until)).contains(until));
}

#[test]
fn an_unknown_name_locks_with_the_same_message_but_stays_unknown() {
    let locked = Reply::Locked {
        until: None,
        unknown: true,
    };
    assert_eq!(
        auth_with_conversation(&[], locked.clone(), vec![Step::Error(LOCKED_MESSAGE)]),
        PamResultCode::PAM_USER_UNKNOWN
    );
    assert_eq!(
        auth_with_conversation(
            &["ignore_unknown_user"],
            locked,
            vec![Step::Error(LOCKED_MESSAGE)]
        ),
        PamResultCode::PAM_IGNORE
    );
    // A rate-limited name: the same message as for an account, only the code differs.
    assert_eq!(
        auth_with_conversation(
            &[],
            Reply::RateLimited {
                unknown: true,
                retry_after: Some(6)
            },
            vec![Step::Error("Too many attempts; try again in 6 s.")]
        ),
        PamResultCode::PAM_USER_UNKNOWN
    );
}

#[test]
fn the_lock_message_is_suppressed_by_no_lock_message_and_silent() {
    for words in [&["no_lock_message"][..], &["silent"][..]] {
        assert_eq!(
            auth_with_conversation(
                words,
                Reply::Locked {
                    until: None,
                    unknown: false
                },
                vec![]
            ),
            PamResultCode::PAM_AUTH_ERR
        );
    }
}

fn account_with_reply(
    words: &[&str],
    flags: PamFlag,
    reply: Reply,
    conv: Vec<Step>,
) -> PamResultCode {
    let ctx = account_ctx(words, flags);
    let mut conv = ScriptedConversation::new(conv);
    let mut transport = ScriptedTransport::replying(reply);
    let code = account(&ctx, &mut conv, &mut transport);
    let acct = transport.only_account();
    assert_eq!(
        (acct.user.as_str(), acct.service.as_str()),
        ("alice", "sshd")
    );
    code
}

// ---------------------------------------------------------------------------------------------
// authenticate: the reply mapping

#[test]
fn auth_ok_prompts_stores_the_token_and_sends_every_item() {
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    let auth = transport.only_auth();
    assert_eq!(auth.user, "alice");
    assert_eq!(auth.secret.expose(), PASSWORD);
    assert_eq!(auth.service, "sshd");
    assert_eq!(auth.rhost.as_deref(), Some("192.0.2.7"));
    assert_eq!(auth.tty.as_deref(), Some("ssh"));
    assert_eq!(auth.ruser, None);
    assert_eq!(conv.stored, [PASSWORD]);
    assert_eq!(
        conv.token_reads, 0,
        "no first_pass argument: PAM_AUTHTOK is not read"
    );
    assert_secret_never_logged(&ctx, PASSWORD);
    assert!(errors_logged(&ctx).is_empty());
}

#[test]
fn auth_must_change_succeeds_so_acct_mgmt_can_enforce_the_change() {
    assert_eq!(
        auth_with_reply(&[], Reply::MustChange),
        PamResultCode::PAM_SUCCESS
    );
}

#[test]
fn auth_denied_disabled_and_rate_limited_are_auth_err_and_busy_is_authinfo_unavail() {
    assert_eq!(
        auth_with_reply(&[], Reply::Denied),
        PamResultCode::PAM_AUTH_ERR
    );
    // Busy: no password was checked, so no verdict: the break-glass of an unreachable daemon
    // applies (R7), with a message unless silent, and the operator learns of it in the log.
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("Password: ", Ok(Some(PASSWORD))),
        Step::Error(BUSY_MESSAGE),
    ]);
    let mut transport = ScriptedTransport::replying(Reply::Busy);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHINFO_UNAVAIL
    );
    assert_eq!(errors_logged(&ctx).len(), 1);
    assert_eq!(
        auth_with_conversation(&["silent", "ignore_authinfo_unavail"], Reply::Busy, vec![]),
        PamResultCode::PAM_IGNORE
    );
    // These tell the user what happened; a guesser learns nothing from them (credd answers
    // Disabled only for a right password, and rate-limits unknown names alike).
    for (reply, message) in [
        (Reply::Disabled, DISABLED_MESSAGE),
        (
            Reply::RateLimited {
                unknown: false,
                retry_after: Some(12),
            },
            "Too many attempts; try again in 12 s.",
        ),
    ] {
        assert_eq!(
            auth_with_conversation(&[], reply.clone(), vec![Step::Error(message)]),
            PamResultCode::PAM_AUTH_ERR,
            "{reply:?}"
        );
        for words in [&["silent"][..], &["silent", "debug"][..]] {
            assert_eq!(
                auth_with_conversation(words, reply.clone(), vec![]),
                PamResultCode::PAM_AUTH_ERR,
                "{reply:?} is not shown with silent"
            );
        }
    }
}

#[test]
fn auth_unknown_user_is_user_unknown_or_ignored_on_request() {
    assert_eq!(
        auth_with_reply(&[], Reply::UnknownUser),
        PamResultCode::PAM_USER_UNKNOWN
    );
    assert_eq!(
        auth_with_reply(&["ignore_unknown_user"], Reply::UnknownUser),
        PamResultCode::PAM_IGNORE
    );
}

#[test]
fn auth_unexpected_replies_are_auth_err_and_logged() {
    for reply in [
        Reply::Error {
            kind: ErrorKind::Internal,
            message: "database is locked".into(),
        },
        Reply::Pong { version: 1 },
        Reply::End { count: 0 },
    ] {
        let ctx = ctx(&[], 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = ScriptedTransport::replying(reply.clone());
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTH_ERR,
            "{reply:?}"
        );
        let errors = errors_logged(&ctx);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("pam_credd(sshd:auth): unexpected answer"));
    }
}

// ---------------------------------------------------------------------------------------------
// authenticate: the daemon cannot be reached, or speaks nonsense

#[test]
fn auth_unreachable_daemon_is_authinfo_unavail_and_logged() {
    for err in [
        unavailable(),
        ProtoError::Timeout,
        ProtoError::Closed,
        ProtoError::Truncated,
    ] {
        let ctx = ctx(&[], 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = ScriptedTransport::failing(err);
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        );
        let errors = errors_logged(&ctx);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].contains("credd is unreachable at /run/credd/pam.sock"),
            "{errors:?}"
        );
        assert_secret_never_logged(&ctx, PASSWORD);
    }
}

#[test]
fn a_store_that_cannot_be_written_is_authinfo_unavail_in_every_hook() {
    // A full disk is no verdict on the password: the break-glass path of an unreachable daemon
    // must apply (R1), never PAM_AUTH_ERR for a right password.
    let full = || Reply::Error {
        kind: ErrorKind::Unavailable,
        message: "the credential store cannot be written; see credd's log".into(),
    };
    for (words, expected) in [
        (&[][..], PamResultCode::PAM_AUTHINFO_UNAVAIL),
        (&["ignore_authinfo_unavail"][..], PamResultCode::PAM_IGNORE),
    ] {
        let ctx = ctx(words, 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = ScriptedTransport::replying(full());
        assert_eq!(authenticate(&ctx, &mut conv, &mut transport), expected);
        assert_eq!(errors_logged(&ctx).len(), 1);
        assert_secret_never_logged(&ctx, PASSWORD);

        let ctx = account_ctx(words, 0);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::replying(full());
        assert_eq!(account(&ctx, &mut conv, &mut transport), expected);

        let ctx = change_ctx(words, PRELIM, 0);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::replying(full());
        assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
    }
}

#[test]
fn auth_unreachable_daemon_is_ignored_with_ignore_authinfo_unavail_but_still_logged() {
    let ctx = ctx(&["ignore_authinfo_unavail"], 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    let mut transport = ScriptedTransport::failing(unavailable());
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_IGNORE
    );
    assert_eq!(errors_logged(&ctx).len(), 1);
}

#[test]
fn auth_protocol_errors_are_auth_err_even_with_ignore_authinfo_unavail() {
    for err in [
        ProtoError::Malformed("invalid JSON at line 1 column 1".into()),
        ProtoError::VersionMismatch {
            got: 9,
            oldest: 1,
            newest: 1,
        },
        ProtoError::FrameTooLarge {
            len: 70_000,
            max: 65_536,
        },
        ProtoError::Unexpected("?".into()),
    ] {
        let ctx = ctx(&["ignore_authinfo_unavail"], 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = ScriptedTransport::failing(err);
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTH_ERR
        );
        let errors = errors_logged(&ctx);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].contains("protocol error"), "{errors:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// authenticate: getting the password

#[test]
fn use_first_pass_without_a_token_fails_without_prompting_or_asking_credd() {
    let ctx = ctx(&["use_first_pass"], 0);
    let mut conv = ScriptedConversation::silent();
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert_eq!(conv.token_reads, 1);
    assert!(conv.stored.is_empty());
}

#[test]
fn use_first_pass_sends_the_stored_token_without_prompting() {
    let ctx = ctx(&["use_first_pass"], 0);
    let mut conv = ScriptedConversation::silent().with_token(Token::Set("from pam_unix"));
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(transport.only_auth().secret.expose(), "from pam_unix");
    assert!(conv.stored.is_empty(), "the token is already stored");
    assert_secret_never_logged(&ctx, "from pam_unix");
}

#[test]
fn try_first_pass_uses_the_stored_token_when_there_is_one() {
    let ctx = ctx(&["try_first_pass"], 0);
    let mut conv = ScriptedConversation::silent().with_token(Token::Set("earlier"));
    let mut transport = ScriptedTransport::replying(Reply::Denied);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert_eq!(transport.only_auth().secret.expose(), "earlier");
}

#[test]
fn try_first_pass_prompts_and_stores_when_no_token_is_set() {
    let ctx = ctx(&["try_first_pass"], 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(conv.token_reads, 1);
    assert_eq!(conv.stored, [PASSWORD]);
}

#[test]
fn a_stored_token_that_is_not_utf8_fails_without_prompting() {
    for word in ["use_first_pass", "try_first_pass"] {
        let ctx = ctx(&[word], 0);
        let mut conv = ScriptedConversation::silent().with_token(Token::NotUtf8);
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTH_ERR,
            "{word}"
        );
    }
}

#[test]
fn empty_password_is_refused_locally_with_disallow_null_authtok() {
    let ctx = ctx(&[], PAM_DISALLOW_NULL_AUTHTOK);
    let mut conv = ScriptedConversation::password("");
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );

    // The same applies to an empty token from an earlier module.
    let ctx = self::ctx(&["use_first_pass"], PAM_DISALLOW_NULL_AUTHTOK);
    let mut conv = ScriptedConversation::silent().with_token(Token::Set(""));
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
}

#[test]
fn empty_password_goes_to_credd_without_disallow_null_authtok() {
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password("");
    let mut transport = ScriptedTransport::replying(Reply::Denied);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert_eq!(transport.only_auth().secret.expose(), "");
}

#[test]
fn oversized_password_is_refused_without_asking_credd() {
    let long: &'static str = Box::leak("x".repeat(MAX_SECRET_LEN + 1).into_boxed_str());
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password(long);
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
}

#[test]
fn conversation_failure_is_conv_err_and_credd_is_not_asked() {
    for (answer, expected) in [
        (
            Err(PamResultCode::PAM_CONV_ERR),
            PamResultCode::PAM_CONV_ERR,
        ),
        (Err(PamResultCode::PAM_BUF_ERR), PamResultCode::PAM_CONV_ERR),
        (Ok(None), PamResultCode::PAM_CONV_ERR),
        // An event-driven application asks to be called again, as with pam_unix.
        (
            Err(PamResultCode::PAM_CONV_AGAIN),
            PamResultCode::PAM_INCOMPLETE,
        ),
        // The answer was not UTF-8 (PamConversation reports that as AUTH_ERR).
        (
            Err(PamResultCode::PAM_AUTH_ERR),
            PamResultCode::PAM_AUTH_ERR,
        ),
    ] {
        let ctx = ctx(&[], 0);
        let mut conv = ScriptedConversation::new(vec![Step::Prompt("Password: ", answer)]);
        let mut transport = ScriptedTransport::unused();
        assert_eq!(authenticate(&ctx, &mut conv, &mut transport), expected);
        assert!(conv.stored.is_empty());
    }
}

#[test]
fn failing_to_store_the_token_is_an_error_not_a_login() {
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    conv.store_error = Some(PamResultCode::PAM_BUF_ERR);
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_BUF_ERR
    );

    let ctx = self::ctx(&[], 0);
    let mut conv = ScriptedConversation::password(PASSWORD);
    conv.store_error = Some(PamResultCode::PAM_SUCCESS);
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SYSTEM_ERR
    );
}

// ---------------------------------------------------------------------------------------------
// user names

#[test]
fn user_names_credd_cannot_hold_are_unknown_without_prompting_or_asking_credd() {
    for user in [
        &b"al\xffice"[..],
        b"",
        b"a b",
        b"-rf",
        b"evil\nname",
        b"a:b",
    ] {
        let ctx = ctx_for(user, &[], 0, HookKind::Auth);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_USER_UNKNOWN,
            "{user:?}"
        );
        for (_, line) in ctx.log.lines() {
            assert!(!line.contains('\n'), "{line:?}");
        }

        let ctx = ctx_for(user, &["ignore_unknown_user"], 0, HookKind::Account);
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            account(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_IGNORE,
            "{user:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// acct_mgmt

#[test]
fn account_ok_is_success() {
    assert_eq!(
        account_with_reply(&[], 0, Reply::Ok, vec![]),
        PamResultCode::PAM_SUCCESS
    );
}

#[test]
fn account_must_change_is_new_authtok_reqd_with_pam_unix_wording() {
    assert_eq!(
        account_with_reply(
            &[],
            0,
            Reply::MustChange,
            vec![Step::Error(
                "You are required to change your password immediately (administrator enforced)"
            )]
        ),
        PamResultCode::PAM_NEW_AUTHTOK_REQD
    );
}

#[test]
fn account_messages_are_suppressed_by_pam_silent_and_the_silent_argument() {
    for reply in [
        Reply::MustChange,
        Reply::Disabled,
        Reply::Locked {
            until: None,
            unknown: false,
        },
    ] {
        assert_ne!(
            account_with_reply(&[], PAM_SILENT, reply.clone(), vec![]),
            PamResultCode::PAM_SUCCESS
        );
        assert_ne!(
            account_with_reply(&["silent"], 0, reply, vec![]),
            PamResultCode::PAM_SUCCESS
        );
    }
}

#[test]
fn account_disabled_is_acct_expired() {
    assert_eq!(
        account_with_reply(&[], 0, Reply::Disabled, vec![Step::Error(DISABLED_MESSAGE)]),
        PamResultCode::PAM_ACCT_EXPIRED
    );
}

#[test]
fn account_locked_is_perm_denied() {
    assert_eq!(
        account_with_reply(
            &[],
            0,
            Reply::Locked {
                until: None,
                unknown: false
            },
            vec![Step::Error(LOCKED_MESSAGE)]
        ),
        PamResultCode::PAM_PERM_DENIED
    );
}

#[test]
fn account_unknown_user_is_user_unknown_or_ignored_on_request() {
    assert_eq!(
        account_with_reply(&[], 0, Reply::UnknownUser, vec![]),
        PamResultCode::PAM_USER_UNKNOWN
    );
    assert_eq!(
        account_with_reply(&["ignore_unknown_user"], 0, Reply::UnknownUser, vec![]),
        PamResultCode::PAM_IGNORE
    );
}

#[test]
fn account_unexpected_replies_are_perm_denied() {
    for reply in [
        Reply::Denied,
        Reply::Busy,
        Reply::Error {
            kind: ErrorKind::NotPermitted,
            message: "no".into(),
        },
        Reply::Pong { version: 1 },
    ] {
        assert_eq!(
            account_with_reply(&[], 0, reply.clone(), vec![]),
            PamResultCode::PAM_PERM_DENIED,
            "{reply:?}"
        );
    }
}

#[test]
fn account_unreachable_daemon_is_authinfo_unavail_or_ignored_on_request() {
    for (words, expected) in [
        (&[][..], PamResultCode::PAM_AUTHINFO_UNAVAIL),
        (&["ignore_authinfo_unavail"][..], PamResultCode::PAM_IGNORE),
    ] {
        let ctx = account_ctx(words, 0);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::failing(unavailable());
        assert_eq!(account(&ctx, &mut conv, &mut transport), expected);
        assert_eq!(errors_logged(&ctx).len(), 1);
    }
}

#[test]
fn account_protocol_error_is_perm_denied() {
    let ctx = account_ctx(&["ignore_authinfo_unavail"], 0);
    let mut conv = ScriptedConversation::silent();
    let mut transport =
        ScriptedTransport::failing(ProtoError::Malformed("invalid JSON at line 1".into()));
    assert_eq!(
        account(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_PERM_DENIED
    );
}

// ---------------------------------------------------------------------------------------------
// authenticate: remembering the secret for a forced change

#[test]
fn auth_must_change_remembers_the_secret_for_chauthtok() {
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password(CODE);
    let mut transport = ScriptedTransport::replying(Reply::MustChange);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(conv.kept, [("alice".to_owned(), CODE.to_owned())]);
    assert_secret_never_logged(&ctx, CODE);
}

#[test]
fn auth_ok_and_failures_remember_nothing() {
    for reply in [Reply::Ok, Reply::Denied, Reply::UnknownUser] {
        let ctx = ctx(&[], 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = ScriptedTransport::replying(reply.clone());
        authenticate(&ctx, &mut conv, &mut transport);
        assert!(conv.kept.is_empty(), "{reply:?}");
    }
}

#[test]
fn auth_must_change_that_cannot_be_remembered_is_an_error_not_a_login() {
    for (error, expected) in [
        (PamResultCode::PAM_BUF_ERR, PamResultCode::PAM_BUF_ERR),
        (PamResultCode::PAM_SUCCESS, PamResultCode::PAM_SYSTEM_ERR),
    ] {
        let ctx = ctx(&[], 0);
        let mut conv = ScriptedConversation::password(CODE);
        conv.remember_error = Some(error);
        let mut transport = ScriptedTransport::replying(Reply::MustChange);
        assert_eq!(authenticate(&ctx, &mut conv, &mut transport), expected);
        assert_eq!(errors_logged(&ctx).len(), 1);
    }
}

// ---------------------------------------------------------------------------------------------
// chauthtok

const CODE: &str = "7KQ4-M2XD-9RTV-H3PE";
const OLD: &str = "old horse battery";
const NEW: &str = "new staple correct";

const PRELIM: PamFlag = PAM_PRELIM_CHECK;
const UPDATE: PamFlag = PAM_UPDATE_AUTHTOK;

fn change_ctx(words: &[&str], flags: PamFlag, real_uid: libc::uid_t) -> HookContext {
    let mut ctx = ctx_for(b"alice", words, flags, HookKind::Chauthtok);
    ctx.real_uid = real_uid;
    ctx
}

fn assert_no_secret_logged(ctx: &HookContext) {
    for secret in [CODE, OLD, NEW] {
        assert_secret_never_logged(ctx, secret);
    }
}

impl ScriptedTransport {
    /// The change requests sent (ChangeCheck and ChangePassword), in order.
    fn changes(&self) -> Vec<(&'static str, &ChangeRequest)> {
        self.sent
            .iter()
            .filter_map(|r| match r {
                Request::ChangeCheck(c) => Some(("check", c)),
                Request::ChangePassword(c) => Some(("change", c)),
                _ => None,
            })
            .collect()
    }

    fn only_change(&self) -> (&'static str, &ChangeRequest) {
        match self.changes().as_slice() {
            [one] => *one,
            other => panic!("expected one change request, got {other:?}"),
        }
    }

    fn account_checks(&self) -> usize {
        self.sent
            .iter()
            .filter(|r| matches!(r, Request::AccountCheck(_)))
            .count()
    }
}

fn exposed(secret: &Option<Secret>) -> Option<&str> {
    secret.as_ref().map(Secret::expose)
}

/// The account check chauthtok sends before its first prompt, answered "a credd account".
fn known() -> Result<Reply, ProtoError> {
    Ok(Reply::Ok)
}

/// credd's answer to the quality check of a new password before its retype: it passes.
fn quality_ok() -> Result<Reply, ProtoError> {
    Ok(Reply::Ok)
}

fn quality_refused(reason: &str) -> Result<Reply, ProtoError> {
    Ok(Reply::Error {
        kind: ErrorKind::InvalidArgument,
        message: reason.into(),
    })
}

#[test]
fn prelim_as_a_user_prompts_for_the_current_password_and_sends_it() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv =
        ScriptedConversation::new(vec![Step::Prompt("Current password: ", Ok(Some(OLD)))]);
    let mut transport = ScriptedTransport::new(vec![known(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(transport.account_checks(), 1);
    let (kind, change) = transport.only_change();
    assert_eq!(kind, "check");
    assert_eq!(
        (change.user.as_str(), change.service.as_str()),
        ("alice", "sshd")
    );
    assert_eq!(exposed(&change.old), Some(OLD));
    assert_eq!(exposed(&change.new), None);
    assert_eq!(conv.stored_old, [OLD], "stored as PAM_OLDAUTHTOK");
    assert!(conv.stored.is_empty(), "PAM_AUTHTOK is not touched");
    assert_no_secret_logged(&ctx);
    assert!(errors_logged(&ctx).is_empty());
}

#[test]
fn prelim_uses_the_secret_authenticate_remembered_without_prompting() {
    let ctx = change_ctx(&[], PRELIM | PAM_CHANGE_EXPIRED_AUTHTOK, 0);
    let mut conv = ScriptedConversation::silent().with_remembered("alice", CODE);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), Some(CODE));
    assert_eq!(transport.account_checks(), 0, "no prompt, so no pre-check");
    assert_eq!(conv.old_token_reads, 0);
    assert_eq!(conv.stored_old, [CODE]);
    assert_no_secret_logged(&ctx);
}

#[test]
fn prelim_ignores_a_secret_remembered_for_another_user() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv =
        ScriptedConversation::new(vec![Step::Prompt("Current password: ", Ok(Some(OLD)))])
            .with_remembered("bob", CODE);
    let mut transport = ScriptedTransport::new(vec![known(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), Some(OLD));
}

#[test]
fn prelim_uses_pam_oldauthtok_from_an_earlier_module_without_storing_it_again() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::silent().with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), Some(OLD));
    assert!(conv.stored_old.is_empty());
}

#[test]
fn prelim_as_root_needs_no_current_password() {
    let ctx = change_ctx(&[], PRELIM, 0);
    let mut conv = ScriptedConversation::silent()
        .with_old_token(Token::Set(OLD))
        .with_remembered("alice", CODE);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), None);
    assert_eq!((conv.old_token_reads, conv.remembered_reads), (0, 0));
    assert!(conv.stored_old.is_empty());
}

#[test]
fn a_forced_change_needs_the_current_password_even_for_root() {
    let ctx = change_ctx(&[], PRELIM | PAM_CHANGE_EXPIRED_AUTHTOK, 0);
    let mut conv =
        ScriptedConversation::new(vec![Step::Prompt("Current password: ", Ok(Some(OLD)))]);
    let mut transport = ScriptedTransport::new(vec![known(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), Some(OLD));

    let ctx = change_ctx(&[], UPDATE | PAM_CHANGE_EXPIRED_AUTHTOK, 0);
    let mut conv = ScriptedConversation::silent()
        .with_old_token(Token::Set(OLD))
        .with_token(Token::Set(NEW));
    let ctx = HookContext {
        args: args::parse(&[c"use_authtok"]).0,
        ..ctx
    };
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), Some(OLD));
}

#[test]
fn prelim_wrong_current_password_is_auth_err_as_with_pam_unix() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::silent().with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::replying(Reply::Denied);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(conv.stored_old.is_empty());

    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv =
        ScriptedConversation::new(vec![Step::Prompt("Current password: ", Ok(Some(OLD)))]);
    let mut transport = ScriptedTransport::new(vec![known(), Ok(Reply::Denied)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(conv.stored_old.is_empty(), "a refused password is not kept");
}

#[test]
fn prelim_for_a_name_credd_does_not_hold_asks_nothing() {
    for (words, expected) in [
        (&[][..], PamResultCode::PAM_USER_UNKNOWN),
        (&["ignore_unknown_user"][..], PamResultCode::PAM_IGNORE),
    ] {
        // Before a prompt: the account check answers, and the user is not asked anything.
        let ctx = change_ctx(words, PRELIM, 1000);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::replying(Reply::UnknownUser);
        assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
        assert!(transport.changes().is_empty());

        // Root, no prompt: the change check itself answers.
        let ctx = change_ctx(words, PRELIM, 0);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::replying(Reply::UnknownUser);
        assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
        assert!(transport.only_change().1.old.is_none());
    }
}

#[test]
fn chauthtok_replies_map_like_authenticate() {
    for (reply, expected, messages) in [
        (
            Reply::Locked {
                until: None,
                unknown: false,
            },
            PamResultCode::PAM_AUTH_ERR,
            vec![Step::Error(LOCKED_MESSAGE)],
        ),
        (
            Reply::Locked {
                until: None,
                unknown: true,
            },
            PamResultCode::PAM_USER_UNKNOWN,
            vec![Step::Error(LOCKED_MESSAGE)],
        ),
        (
            Reply::RateLimited {
                unknown: true,
                retry_after: Some(7),
            },
            PamResultCode::PAM_USER_UNKNOWN,
            vec![Step::Error("Too many attempts; try again in 7 s.")],
        ),
        (
            Reply::RateLimited {
                unknown: false,
                retry_after: None,
            },
            PamResultCode::PAM_AUTHTOK_ERR,
            vec![Step::Error("Too many attempts; try again later.")],
        ),
        (
            Reply::Busy,
            PamResultCode::PAM_AUTHTOK_ERR,
            vec![Step::Error(BUSY_MESSAGE)],
        ),
        (Reply::MustChange, PamResultCode::PAM_AUTHTOK_ERR, vec![]),
        (
            Reply::Disabled,
            PamResultCode::PAM_AUTH_ERR,
            vec![Step::Error(DISABLED_MESSAGE)],
        ),
        (
            Reply::Pong { version: 1 },
            PamResultCode::PAM_AUTHTOK_ERR,
            vec![],
        ),
    ] {
        for flags in [PRELIM, UPDATE] {
            let ctx = change_ctx(&["use_authtok"], flags, 1000);
            let mut conv = ScriptedConversation::new(messages.iter().map(clone_step).collect())
                .with_old_token(Token::Set(OLD))
                .with_token(Token::Set(NEW));
            let mut transport = ScriptedTransport::replying(reply.clone());
            assert_eq!(
                chauthtok(&ctx, &mut conv, &mut transport),
                expected,
                "{reply:?} {flags:#x}"
            );
            assert!(conv.stored.is_empty() && conv.stored_old.is_empty());
            assert_no_secret_logged(&ctx);
        }
    }
}

fn clone_step(step: &Step) -> Step {
    match step {
        Step::Error(m) => Step::Error(m),
        Step::Info(m) => Step::Info(m),
        Step::Prompt(..) => panic!("prompts are not cloned"),
    }
}

#[test]
fn chauthtok_lock_message_is_suppressed_like_authenticate() {
    for (words, flags) in [
        (&["no_lock_message"][..], PRELIM),
        (&["silent"][..], PRELIM),
        (&[][..], PRELIM | PAM_SILENT),
    ] {
        let ctx = change_ctx(words, flags, 1000);
        let mut conv = ScriptedConversation::silent().with_old_token(Token::Set(OLD));
        let mut transport = ScriptedTransport::replying(Reply::Locked {
            until: None,
            unknown: false,
        });
        assert_eq!(
            chauthtok(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTH_ERR
        );
    }
}

#[test]
fn prelim_error_reply_shows_the_message_and_is_authtok_err() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::new(vec![Step::Error(
        "a password change needs the current password",
    )])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::replying(Reply::Error {
        kind: ErrorKind::NotPermitted,
        message: "a password change needs the current password".into(),
    });
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
    assert_eq!(errors_logged(&ctx).len(), 1);
}

#[test]
fn internal_errors_are_logged_not_shown() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::silent().with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::replying(Reply::Error {
        kind: ErrorKind::Internal,
        message: "database is locked".into(),
    });
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
    let errors = errors_logged(&ctx);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("database is locked"), "{errors:?}");
}

#[test]
fn prelim_the_current_password_answer_cannot_be_used() {
    for (answer, expected) in [
        (
            Err(PamResultCode::PAM_AUTH_ERR),
            PamResultCode::PAM_AUTHTOK_RECOVERY_ERR,
        ),
        (Ok(None), PamResultCode::PAM_CONV_ERR),
        (
            Err(PamResultCode::PAM_CONV_ERR),
            PamResultCode::PAM_CONV_ERR,
        ),
        (
            Err(PamResultCode::PAM_CONV_AGAIN),
            PamResultCode::PAM_INCOMPLETE,
        ),
    ] {
        let ctx = change_ctx(&[], PRELIM, 1000);
        let mut conv = ScriptedConversation::new(vec![Step::Prompt("Current password: ", answer)]);
        let mut transport = ScriptedTransport::new(vec![known()]);
        assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
        assert!(transport.changes().is_empty());
    }

    // PAM_OLDAUTHTOK that is not UTF-8 cannot be a credd password.
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::silent().with_old_token(Token::NotUtf8);
    let mut transport = ScriptedTransport::unused();
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_RECOVERY_ERR
    );
}

#[test]
fn prelim_failing_to_store_pam_oldauthtok_is_an_error() {
    let ctx = change_ctx(&[], PRELIM, 1000);
    let mut conv = ScriptedConversation::silent().with_remembered("alice", CODE);
    conv.store_old_error = Some(PamResultCode::PAM_SUCCESS);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SYSTEM_ERR
    );
}

#[test]
fn update_prompts_for_the_new_password_twice_and_sends_it() {
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    let (kind, change) = transport.only_change();
    assert_eq!(kind, "change");
    assert_eq!(
        (change.user.as_str(), change.service.as_str()),
        ("alice", "sshd")
    );
    assert_eq!(exposed(&change.old), Some(OLD));
    assert_eq!(exposed(&change.new), Some(NEW));
    assert_eq!(conv.stored, [NEW], "the new password is PAM_AUTHTOK now");
    assert_eq!(conv.remembered_reads, 0);
    assert_no_secret_logged(&ctx);
    assert!(errors_logged(&ctx).is_empty());
}

#[test]
fn update_as_root_sends_no_current_password() {
    let ctx = change_ctx(&[], UPDATE, 0);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ]);
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.old), None);
    assert_eq!(conv.old_token_reads, 0);
}

#[test]
fn update_without_pam_oldauthtok_asks_for_the_current_password_again() {
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("Current password: ", Ok(Some(OLD))),
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ]);
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(transport.account_checks(), 1, "one pre-check per hook call");
    let change = transport.only_change().1;
    assert_eq!(
        (exposed(&change.old), exposed(&change.new)),
        (Some(OLD), Some(NEW))
    );
}

#[test]
fn update_mismatch_is_authtok_err_and_nothing_is_changed() {
    let ctx = change_ctx(&["retry=1"], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some("new staple correcT"))),
        Step::Error("Sorry, passwords do not match."),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok()]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
    assert!(transport.changes().is_empty());
    assert!(conv.stored.is_empty());
    assert_no_secret_logged(&ctx);
}

#[test]
fn update_empty_new_password_is_refused_before_the_second_prompt() {
    let ctx = change_ctx(&["retry=1"], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(""))),
        Step::Error("No password has been supplied."),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known()]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
    assert!(transport.changes().is_empty());
}

#[test]
fn update_local_refusals_are_silent_with_pam_silent() {
    let ctx = change_ctx(&["retry=1"], UPDATE | PAM_SILENT, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(OLD))),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok()]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
}

#[test]
fn update_with_use_authtok_takes_the_new_password_from_an_earlier_module() {
    let ctx = change_ctx(&["use_authtok"], UPDATE, 1000);
    let mut conv = ScriptedConversation::silent()
        .with_old_token(Token::Set(OLD))
        .with_token(Token::Set(NEW));
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.new), Some(NEW));
    assert_eq!(transport.account_checks(), 0, "nothing prompted");
    assert!(conv.stored.is_empty(), "PAM_AUTHTOK already holds it");
}

#[test]
fn update_with_use_authtok_and_no_stored_password_is_authtok_err() {
    for token in [Token::Unset, Token::NotUtf8] {
        let ctx = change_ctx(&["use_authtok"], UPDATE, 1000);
        let mut conv = ScriptedConversation::silent()
            .with_old_token(Token::Set(OLD))
            .with_token(token);
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            chauthtok(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTHTOK_ERR
        );
    }
}

#[test]
fn update_quality_failure_shows_credd_s_reason() {
    let reason = "password is shorter than 12 characters";
    let quality = Reply::Error {
        kind: ErrorKind::InvalidArgument,
        message: reason.into(),
    };
    for (words, flags, shown) in [
        (&["use_authtok"][..], UPDATE, true),
        (&["use_authtok", "silent"][..], UPDATE, false),
        (&["use_authtok"][..], UPDATE | PAM_SILENT, false),
    ] {
        let ctx = change_ctx(words, flags, 1000);
        let script = if shown {
            vec![Step::Error(
                "BAD PASSWORD: password is shorter than 12 characters",
            )]
        } else {
            vec![]
        };
        let mut conv = ScriptedConversation::new(script)
            .with_old_token(Token::Set(OLD))
            .with_token(Token::Set("tiny pw"));
        let mut transport = ScriptedTransport::replying(quality.clone());
        assert_eq!(
            chauthtok(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTHTOK_ERR
        );
        assert!(
            errors_logged(&ctx).is_empty(),
            "the user's mistake, not the system's"
        );
        assert_secret_never_logged(&ctx, "tiny pw");
    }
}

#[test]
fn update_checks_the_first_entry_and_asks_again_like_pam_pwquality() {
    // A weak choice, a mistyped retype, then a good one: one conversation, one change request.
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some("tiny pw"))),
        Step::Error("BAD PASSWORD: The password is shorter than 12 characters"),
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some("new staple correcT"))),
        Step::Error("Sorry, passwords do not match."),
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![
        known(),
        quality_refused("The password is shorter than 12 characters"),
        quality_ok(),
        quality_ok(),
        Ok(Reply::Ok),
    ]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    assert_eq!(exposed(&transport.only_change().1.new), Some(NEW));
    let checked: Vec<_> = transport
        .sent
        .iter()
        .filter_map(|r| match r {
            Request::ChangeQuality(q) => Some(exposed(&q.new).unwrap().to_owned()),
            _ => None,
        })
        .collect();
    assert_eq!(
        checked,
        ["tiny pw", NEW, NEW],
        "each first entry, before its retype"
    );
    assert_no_secret_logged(&ctx);
    assert_secret_never_logged(&ctx, "tiny pw");
}

#[test]
fn update_gives_up_after_retry_new_passwords_with_maxtries() {
    let ctx = change_ctx(&["retry=2"], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some("tiny pw"))),
        Step::Error("BAD PASSWORD: too short"),
        Step::Prompt("New password: ", Ok(Some(""))),
        Step::Error("No password has been supplied."),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known(), quality_refused("too short")]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_MAXTRIES
    );
    assert!(transport.changes().is_empty(), "nothing was changed");
}

#[test]
fn update_with_a_daemon_that_cannot_check_quality_goes_on_to_the_change() {
    // A daemon older than the quality request answers bad_request; the change request enforces
    // the rules anyway.
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![
        known(),
        Ok(Reply::Error {
            kind: ErrorKind::BadRequest,
            message: "unknown variant `change_quality`".into(),
        }),
        Ok(Reply::Ok),
    ]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
}

#[test]
fn update_wrong_current_password_is_auth_err() {
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Denied)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTH_ERR
    );
    assert!(
        conv.stored.is_empty(),
        "a refused password is not handed on"
    );
}

#[test]
fn update_for_a_name_credd_does_not_hold_prompts_nothing() {
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::silent().with_old_token(Token::Set(OLD));
    let mut transport = ScriptedTransport::replying(Reply::UnknownUser);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_USER_UNKNOWN
    );
    assert!(transport.changes().is_empty());
}

#[test]
fn update_failing_to_hand_on_the_new_password_still_reports_the_change() {
    let ctx = change_ctx(&[], UPDATE, 1000);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(OLD));
    conv.store_error = Some(PamResultCode::PAM_BUF_ERR);
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS,
        "credd changed the password; saying otherwise would be false"
    );
    assert_eq!(errors_logged(&ctx).len(), 1);
}

#[test]
fn chauthtok_with_the_daemon_down_is_authinfo_unavail_before_any_prompt() {
    for (words, expected) in [
        (&[][..], PamResultCode::PAM_AUTHINFO_UNAVAIL),
        (&["ignore_authinfo_unavail"][..], PamResultCode::PAM_IGNORE),
    ] {
        for flags in [PRELIM, UPDATE] {
            // The pre-check finds the daemon down: nothing is asked.
            let ctx = change_ctx(words, flags, 1000);
            let mut conv = ScriptedConversation::silent();
            let mut transport = ScriptedTransport::failing(unavailable());
            assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
            assert_eq!(errors_logged(&ctx).len(), 1);

            // The change request itself fails.
            let mut words = words.to_vec();
            words.push("use_authtok");
            let ctx = change_ctx(&words, flags, 1000);
            let mut conv = ScriptedConversation::silent()
                .with_old_token(Token::Set(OLD))
                .with_token(Token::Set(NEW));
            let mut transport = ScriptedTransport::failing(unavailable());
            assert_eq!(chauthtok(&ctx, &mut conv, &mut transport), expected);
            assert!(conv.stored.is_empty() && conv.stored_old.is_empty());
        }
    }
}

#[test]
fn chauthtok_protocol_error_is_authtok_err() {
    let ctx = change_ctx(&["ignore_authinfo_unavail"], PRELIM, 0);
    let mut conv = ScriptedConversation::silent();
    let mut transport = ScriptedTransport::failing(ProtoError::Malformed("invalid JSON".into()));
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_AUTHTOK_ERR
    );
}

#[test]
fn chauthtok_without_a_pass_flag_is_service_err() {
    for flags in [0, PAM_CHANGE_EXPIRED_AUTHTOK, PAM_SILENT] {
        let ctx = change_ctx(&[], flags, 1000);
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            chauthtok(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_SERVICE_ERR
        );
        assert_eq!(errors_logged(&ctx).len(), 1);
    }
}

#[test]
fn chauthtok_names_credd_cannot_hold_are_unknown_without_asking() {
    for flags in [PRELIM, UPDATE] {
        let mut ctx = ctx_for(b"a b", &[], flags, HookKind::Chauthtok);
        ctx.real_uid = 1000;
        let mut conv = ScriptedConversation::silent();
        let mut transport = ScriptedTransport::unused();
        assert_eq!(
            chauthtok(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_USER_UNKNOWN
        );
    }
}

#[test]
fn a_forced_change_after_a_reset_code_login_asks_for_the_code_once() {
    // authenticate (code) → MustChange, then PRELIM and UPDATE as sshd runs them: the code is
    // typed once, at the password prompt.
    let ctx = ctx(&[], 0);
    let mut conv = ScriptedConversation::password(CODE);
    let mut transport = ScriptedTransport::replying(Reply::MustChange);
    assert_eq!(
        authenticate(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    let (user, code) = conv.kept.pop().unwrap();
    let code: &'static str = leak(code);
    assert_eq!(user, "alice");

    let ctx = change_ctx(&[], PRELIM | PAM_CHANGE_EXPIRED_AUTHTOK, 0);
    let mut conv = ScriptedConversation::silent().with_remembered("alice", code);
    let mut transport = ScriptedTransport::replying(Reply::Ok);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    let old: &'static str = leak(conv.stored_old.pop().unwrap());

    let ctx = change_ctx(&[], UPDATE | PAM_CHANGE_EXPIRED_AUTHTOK, 0);
    let mut conv = ScriptedConversation::new(vec![
        Step::Prompt("New password: ", Ok(Some(NEW))),
        Step::Prompt("Retype new password: ", Ok(Some(NEW))),
    ])
    .with_old_token(Token::Set(old));
    let mut transport = ScriptedTransport::new(vec![known(), quality_ok(), Ok(Reply::Ok)]);
    assert_eq!(
        chauthtok(&ctx, &mut conv, &mut transport),
        PamResultCode::PAM_SUCCESS
    );
    let change = transport.only_change().1;
    assert_eq!(
        (exposed(&change.old), exposed(&change.new)),
        (Some(CODE), Some(NEW))
    );
}

// ---------------------------------------------------------------------------------------------
// sessions

fn session_ctx(user: &[u8], words: &[&str]) -> HookContext {
    ctx_for(user, words, 0, HookKind::Session)
}

impl ScriptedTransport {
    fn only_session(&self) -> (&'static str, &SessionRequest) {
        match self.sent.as_slice() {
            [Request::SessionOpen(s)] => ("open", s),
            [Request::SessionClose(s)] => ("close", s),
            other => panic!("expected one session request, got {other:?}"),
        }
    }
}

type SessionHook = fn(&HookContext, &mut ScriptedTransport) -> PamResultCode;

const SESSION_HOOKS: [(&str, SessionHook); 2] = [
    ("open", |ctx, transport| open_session(ctx, transport)),
    ("close", |ctx, transport| close_session(ctx, transport)),
];

#[test]
fn sessions_are_sent_to_credd_with_their_items() {
    for (name, hook) in SESSION_HOOKS {
        let ctx = session_ctx(b"alice", &[]);
        let mut transport = ScriptedTransport::replying(Reply::Ok);
        assert_eq!(hook(&ctx, &mut transport), PamResultCode::PAM_SUCCESS);
        let (kind, session) = transport.only_session();
        assert_eq!(kind, name);
        assert_eq!(session.user, "alice");
        assert_eq!(session.service, "sshd");
        assert_eq!(session.tty.as_deref(), Some("ssh"));
        assert_eq!(session.rhost.as_deref(), Some("192.0.2.7"));
    }
}

#[test]
fn sessions_of_unknown_users_are_ignored_whatever_the_arguments() {
    for (_, hook) in SESSION_HOOKS {
        for reply in [
            Reply::UnknownUser,
            Reply::Locked {
                until: None,
                unknown: true,
            },
        ] {
            let ctx = session_ctx(b"alice", &[]);
            let mut transport = ScriptedTransport::replying(reply);
            assert_eq!(hook(&ctx, &mut transport), PamResultCode::PAM_IGNORE);
            assert!(errors_logged(&ctx).is_empty());
        }
        // A name credd cannot hold: not even asked.
        let ctx = session_ctx(b"a b", &[]);
        let mut transport = ScriptedTransport::unused();
        assert_eq!(hook(&ctx, &mut transport), PamResultCode::PAM_IGNORE);
    }
}

#[test]
fn session_failures_are_session_err_and_logged() {
    for (_, hook) in SESSION_HOOKS {
        for reply in [
            Reply::Denied,
            Reply::Busy,
            Reply::Disabled,
            Reply::Locked {
                until: None,
                unknown: false,
            },
            Reply::Error {
                kind: ErrorKind::Internal,
                message: "database is locked".into(),
            },
        ] {
            let ctx = session_ctx(b"alice", &[]);
            let mut transport = ScriptedTransport::replying(reply.clone());
            assert_eq!(
                hook(&ctx, &mut transport),
                PamResultCode::PAM_SESSION_ERR,
                "{reply:?}"
            );
            assert_eq!(errors_logged(&ctx).len(), 1);
        }
        // Unreachable: SESSION_ERR, even with ignore_authinfo_unavail (which is about
        // AUTHINFO_UNAVAIL; the session lines are `optional` instead).
        for words in [&[][..], &["ignore_authinfo_unavail"][..]] {
            let ctx = session_ctx(b"alice", words);
            let mut transport = ScriptedTransport::failing(unavailable());
            assert_eq!(hook(&ctx, &mut transport), PamResultCode::PAM_SESSION_ERR);
            let errors = errors_logged(&ctx);
            assert_eq!(errors.len(), 1);
            assert!(errors[0].contains("credd is unreachable"), "{errors:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SocketTransport against a real socket

mod socket {
    use super::*;
    use credd_proto::{decode_request, encode_reply, read_frame, write_frame};
    use std::os::unix::net::UnixListener;
    use std::path::PathBuf;
    use std::time::Duration;

    fn scratch_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pam_credd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn every_request_has_its_own_connection_and_none_is_held_across_a_prompt() {
        // A user may take minutes at a prompt; credd closes idle connections after 10 s. So the
        // module opens a connection per request and closes it once the reply is read: the server
        // sees each connection end (EOF) before the next one starts.
        let dir = scratch_dir("per-request");
        let path = dir.join("pam.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = std::thread::spawn(move || {
            let mut per_connection = Vec::new();
            for _ in 0..2 {
                let (mut stream, _) = listener.accept().unwrap();
                let mut served = 0;
                while let Some(body) = read_frame(&mut stream).unwrap() {
                    let reply = match decode_request(&body).unwrap() {
                        Request::Ping => Reply::Pong { version: 1 },
                        Request::AccountCheck(_) => Reply::Ok,
                        other => panic!("unexpected {other:?}"),
                    };
                    write_frame(&mut stream, &encode_reply(&reply).unwrap()).unwrap();
                    served += 1;
                }
                per_connection.push(served);
            }
            per_connection
        });

        let mut transport = SocketTransport::new(&path, Duration::from_secs(5));
        assert_eq!(
            transport.call(&Request::Ping).unwrap(),
            Reply::Pong { version: 1 }
        );
        let ctx = account_ctx(&[], 0);
        let mut conv = ScriptedConversation::silent();
        assert_eq!(
            account(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_SUCCESS
        );
        assert_eq!(server.join().unwrap(), [1, 1]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_missing_socket_is_authinfo_unavail() {
        let dir = scratch_dir("missing");
        let path = dir.join("pam.sock");
        let words = [format!("socket={}", path.display())];
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let ctx = ctx(&words, 0);
        let mut conv = ScriptedConversation::password(PASSWORD);
        let mut transport = SocketTransport::new(&ctx.args.socket, ctx.args.timeout);
        assert_eq!(
            authenticate(&ctx, &mut conv, &mut transport),
            PamResultCode::PAM_AUTHINFO_UNAVAIL
        );
        assert!(errors_logged(&ctx)[0].contains(&path.display().to_string()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
