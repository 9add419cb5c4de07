//! Command-line grammar (DESIGN.md §9). Names and flags here are a contract: tests, docs and
//! scripts rely on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use credd_proto::paths::{ADMIN_SOCKET_ENV, DEFAULT_ADMIN_SOCKET};

#[derive(Debug, Parser)]
#[command(
    name = "credctl",
    version,
    about = "Administer credd, the credential daemon",
    propagate_version = true
)]
pub struct Cli {
    /// credd's admin socket
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = ADMIN_SOCKET_ENV,
        default_value = DEFAULT_ADMIN_SOCKET
    )]
    pub socket: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Set an account's password, read from standard input
    Passwd(PasswdArgs),
    /// Show lockout state: of one account, of every account with failures or a lock, or the
    /// daemon's counters
    Status(StatusArgs),
    /// Lock an account until an administrator unlocks it
    Lock(LockArgs),
    /// Lift an account's lock and clear its failure count
    Unlock(TargetArgs),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account (without --password-stdin it has no password and cannot log in yet)
    Add(UserAddArgs),
    /// Delete an account
    Remove(NameArg),
    /// List every account
    List(JsonFlag),
    /// Show one account
    Show(UserShowArgs),
    /// Refuse logins to an account
    Disable(NameArg),
    /// Allow logins to a disabled account again
    Enable(NameArg),
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct JsonFlag {
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UserAddArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Numeric uid, when NSS does not know the name
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
    /// Read the initial password from standard input (one line)
    #[arg(long)]
    pub password_stdin: bool,
    /// Require a new password at the next login
    #[arg(long)]
    pub must_change: bool,
}

#[derive(Debug, Args)]
pub struct UserShowArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Print the account as a JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Read the new password from standard input (one line); required
    #[arg(long, required = true)]
    pub password_stdin: bool,
    /// Require a new password at the next login
    #[arg(long)]
    pub must_change: bool,
}

/// `status [NAME | --uid N] [--json]` and `status --daemon [--json]`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Account name; without NAME or --uid, every account with failures or a lock
    #[arg(value_name = "NAME", conflicts_with = "uid")]
    pub name: Option<String>,
    /// The account with this uid, instead of NAME
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
    /// Show the daemon's counters instead of accounts
    #[arg(long, conflicts_with_all = ["name", "uid"])]
    pub daemon: bool,
    /// Print JSON: an object for one account or the daemon, an array for the listing
    #[arg(long)]
    pub json: bool,
}

/// Exactly one of NAME and `--uid`: the account `lock` and `unlock` act on.
#[derive(Debug, Args)]
#[group(id = "target", required = true, multiple = false)]
pub struct TargetArgs {
    /// Account name
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// The account with this uid, instead of NAME
    #[arg(long, value_name = "N", value_parser = uid_parser())]
    pub uid: Option<u32>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Why, kept with the lock and shown by `status` (at most 255 bytes, no control characters)
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// A uid as given on the command line. u32::MAX is (uid_t)-1, the "no uid" sentinel of chown(2)
/// and setresuid(2), so it is refused.
fn uid_parser() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(..i64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("credctl").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn user_add_with_every_flag() {
        let cli = parse(&[
            "user",
            "add",
            "alice",
            "--uid",
            "1001",
            "--password-stdin",
            "--must-change",
        ])
        .unwrap();
        match cli.command {
            Command::User(UserCommand::Add(a)) => {
                assert_eq!(a.name, "alice");
                assert_eq!(a.uid, Some(1001));
                assert!(a.password_stdin && a.must_change);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn user_add_defaults() {
        let cli = parse(&["user", "add", "bob"]).unwrap();
        match cli.command {
            Command::User(UserCommand::Add(a)) => {
                assert_eq!(a.uid, None);
                assert!(!a.password_stdin && !a.must_change);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn uid_must_be_a_real_uid() {
        for bad in ["-1", "4294967295", "4294967296", "abc"] {
            let err = parse(&["user", "add", "bob", "--uid", bad]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
        }
        assert!(parse(&["user", "add", "bob", "--uid", "0"]).is_ok());
        assert!(parse(&["user", "add", "bob", "--uid", "4294967294"]).is_ok());
    }

    #[test]
    fn listing_and_show_take_json() {
        match parse(&["user", "list", "--json"]).unwrap().command {
            Command::User(UserCommand::List(f)) => assert!(f.json),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["user", "show", "carol"]).unwrap().command {
            Command::User(UserCommand::Show(s)) => {
                assert_eq!(s.name, "carol");
                assert!(!s.json);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn enable_disable_remove_take_a_name() {
        for (verb, name) in [("enable", "a"), ("disable", "b"), ("remove", "c")] {
            let cli = parse(&["user", verb, name]).unwrap();
            let got = match cli.command {
                Command::User(UserCommand::Enable(n))
                | Command::User(UserCommand::Disable(n))
                | Command::User(UserCommand::Remove(n)) => n.name,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(got, name);
            assert_eq!(parse(&["user", verb]).unwrap_err().exit_code(), 2);
        }
    }

    #[test]
    fn passwd_requires_password_stdin() {
        let err = parse(&["passwd", "alice"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(err.exit_code(), 2);
        match parse(&["passwd", "alice", "--password-stdin", "--must-change"])
            .unwrap()
            .command
        {
            Command::Passwd(p) => assert!(p.password_stdin && p.must_change),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn status(args: &[&str]) -> StatusArgs {
        let mut all = vec!["status"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Status(s) => s,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn status_takes_a_name_a_uid_or_nothing() {
        let s = status(&[]);
        assert_eq!(
            (s.name, s.uid, s.daemon, s.json),
            (None, None, false, false)
        );
        let s = status(&["alice", "--json"]);
        assert_eq!(
            (s.name.as_deref(), s.uid, s.json),
            (Some("alice"), None, true)
        );
        let s = status(&["--uid", "1001"]);
        assert_eq!((s.name, s.uid), (None, Some(1001)));
        let s = status(&["--daemon", "--json"]);
        assert!(s.daemon && s.json);
    }

    #[test]
    fn status_refuses_conflicting_selections() {
        for args in [
            &["status", "alice", "--uid", "1001"][..],
            &["status", "--daemon", "alice"],
            &["status", "--uid", "1001", "--daemon"],
            &["status", "alice", "bob"],
            &["status", "--uid", "4294967295"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = parse(&["status", "alice", "--uid", "1"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ArgumentConflict);
    }

    #[test]
    fn lock_and_unlock_take_exactly_one_target() {
        match parse(&["lock", "alice", "--reason", "left the company"])
            .unwrap()
            .command
        {
            Command::Lock(l) => {
                assert_eq!(l.target.name.as_deref(), Some("alice"));
                assert_eq!(l.target.uid, None);
                assert_eq!(l.reason.as_deref(), Some("left the company"));
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["lock", "--uid", "1001"]).unwrap().command {
            Command::Lock(l) => {
                assert_eq!(
                    (l.target.name, l.target.uid, l.reason),
                    (None, Some(1001), None)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["unlock", "--uid", "0"]).unwrap().command {
            Command::Unlock(t) => assert_eq!((t.name, t.uid), (None, Some(0))),
            other => panic!("unexpected {other:?}"),
        }
        match parse(&["unlock", "bob"]).unwrap().command {
            Command::Unlock(t) => assert_eq!((t.name.as_deref(), t.uid), (Some("bob"), None)),
            other => panic!("unexpected {other:?}"),
        }

        for verb in ["lock", "unlock"] {
            let err = parse(&[verb]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument, "{verb}");
            assert_eq!(err.exit_code(), 2);
            let err = parse(&[verb, "alice", "--uid", "1001"]).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ArgumentConflict, "{verb}");
            assert_eq!(err.exit_code(), 2);
            assert_eq!(
                parse(&[verb, "--json", "alice"]).unwrap_err().exit_code(),
                2
            );
            assert_eq!(parse(&[verb, "--daemon"]).unwrap_err().exit_code(), 2);
        }
        // A reason alone names no account.
        let err = parse(&["lock", "--reason", "x"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            parse(&["unlock", "bob", "--reason", "x"])
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn unknown_subcommands_and_flags_are_usage_errors() {
        for args in [
            &["frobnicate"][..],
            &["user"],
            &["user", "list", "--csv"],
            &[],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn socket_flag_works_before_and_after_the_subcommand() {
        let cli = parse(&["--socket", "/tmp/a.sock", "user", "list"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/a.sock"));
        let cli = parse(&["user", "list", "--socket", "/tmp/b.sock"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from("/tmp/b.sock"));
    }

    #[test]
    fn socket_comes_from_the_environment_when_not_given() {
        // The only test in this crate that touches the environment, so no other test races it;
        // std serialises its own environment accesses, and nothing here calls C's getenv.
        let arg = Cli::command()
            .get_arguments()
            .find(|a| a.get_id() == "socket")
            .cloned()
            .unwrap();
        assert_eq!(arg.get_env(), Some(std::ffi::OsStr::new(ADMIN_SOCKET_ENV)));
        // SAFETY: see above; no other thread of this test binary reads or writes this variable.
        unsafe { std::env::remove_var(ADMIN_SOCKET_ENV) };
        let cli = parse(&["user", "list"]).unwrap();
        assert_eq!(cli.socket, PathBuf::from(DEFAULT_ADMIN_SOCKET));
        // SAFETY: as above.
        unsafe { std::env::set_var(ADMIN_SOCKET_ENV, "/tmp/from-env.sock") };
        let from_env = parse(&["user", "list"]).map(|c| c.socket);
        let flag_wins = parse(&["--socket", "/tmp/flag.sock", "user", "list"]).map(|c| c.socket);
        // SAFETY: as above.
        unsafe { std::env::remove_var(ADMIN_SOCKET_ENV) };
        assert_eq!(from_env.unwrap(), PathBuf::from("/tmp/from-env.sock"));
        assert_eq!(flag_wins.unwrap(), PathBuf::from("/tmp/flag.sock"));
    }
}
