//! Argument parsing: defaults, every documented word, and what is ignored.

use super::*;
use std::ffi::CString;

fn parse_words(words: &[&str]) -> (ModuleArgs, Vec<String>) {
    let owned: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
    let refs: Vec<&CStr> = owned.iter().map(CString::as_c_str).collect();
    parse(&refs)
}

#[test]
fn no_arguments_give_the_documented_defaults() {
    let (args, problems) = parse_words(&[]);
    assert!(problems.is_empty());
    assert_eq!(args.socket, PathBuf::from("/run/credd/pam.sock"));
    assert_eq!(args.timeout, Duration::from_secs(5));
    assert_eq!(args.fail_delay_usec(), Some(2_000_000));
    assert!(!args.debug && !args.use_first_pass && !args.try_first_pass && !args.silent);
    assert!(!args.ignore_unknown_user && !args.ignore_authinfo_unavail && !args.use_authtok);
}

#[test]
fn every_documented_argument_is_understood() {
    let (args, problems) = parse_words(&[
        "socket=/tmp/x/pam.sock",
        "timeout=12",
        "debug",
        "use_first_pass",
        "try_first_pass",
        "use_authtok",
        "ignore_unknown_user",
        "ignore_authinfo_unavail",
        "fail_delay=500",
        "silent",
        "no_lock_message",
        "retry=5",
    ]);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(
        args,
        ModuleArgs {
            socket: PathBuf::from("/tmp/x/pam.sock"),
            timeout: Duration::from_secs(12),
            debug: true,
            use_first_pass: true,
            try_first_pass: true,
            use_authtok: true,
            ignore_unknown_user: true,
            ignore_authinfo_unavail: true,
            nodelay: false,
            fail_delay: Duration::from_millis(500),
            silent: true,
            no_lock_message: true,
            retry: 5,
        }
    );
    assert_eq!(args.fail_delay_usec(), Some(500_000));
}

#[test]
fn nodelay_wins_over_fail_delay_in_either_order() {
    for words in [["nodelay", "fail_delay=100"], ["fail_delay=100", "nodelay"]] {
        let (args, problems) = parse_words(&words);
        assert!(problems.is_empty());
        assert_eq!(args.fail_delay_usec(), None);
    }
    let (args, _) = parse_words(&["fail_delay=0"]);
    assert_eq!(args.fail_delay_usec(), Some(0));
}

#[test]
fn timeout_outside_one_to_sixty_seconds_keeps_the_default() {
    for bad in [
        "timeout=0",
        "timeout=61",
        "timeout=-1",
        "timeout=5s",
        "timeout=",
    ] {
        let (args, problems) = parse_words(&[bad]);
        assert_eq!(args.timeout, DEFAULT_TIMEOUT, "{bad}");
        assert_eq!(problems.len(), 1, "{bad}");
    }
    let (args, _) = parse_words(&["timeout=1"]);
    assert_eq!(args.timeout, Duration::from_secs(1));
    let (args, _) = parse_words(&["timeout=60"]);
    assert_eq!(args.timeout, Duration::from_secs(60));
}

#[test]
fn malformed_values_are_reported_and_ignored() {
    let (args, problems) = parse_words(&[
        "socket=relative/pam.sock",
        "socket",
        "fail_delay=60001",
        "fail_delay=abc",
        "debug=yes",
        "retry=0",
        "retry=11",
        "retry",
    ]);
    assert_eq!(args, ModuleArgs::default());
    assert_eq!(problems.len(), 8, "{problems:?}");
    assert!(problems[0].contains("absolute"));
}

#[test]
fn unknown_words_are_reported_and_the_rest_still_applies() {
    let (args, problems) = parse_words(&["debug", "likeauth", "nullok", "silent"]);
    assert!(args.debug && args.silent);
    assert_eq!(problems.len(), 2);
    assert!(problems[0].contains("likeauth"));
}

#[test]
fn later_words_win() {
    let (args, problems) = parse_words(&["socket=/a.sock", "timeout=3", "socket=/b.sock"]);
    assert!(problems.is_empty());
    assert_eq!(args.socket, PathBuf::from("/b.sock"));
    assert_eq!(args.timeout, Duration::from_secs(3));
}

#[test]
fn problems_quote_control_characters_escaped() {
    let (_, problems) = parse_words(&["bogus\nforged log line"]);
    assert_eq!(problems.len(), 1);
    assert!(!problems[0].contains('\n'), "{problems:?}");
}

#[test]
fn non_utf8_words_are_ignored() {
    let word = CString::new(vec![b'd', 0xff, b'g']).unwrap();
    let (args, problems) = parse(&[word.as_c_str()]);
    assert_eq!(args, ModuleArgs::default());
    assert_eq!(problems.len(), 1);
}
