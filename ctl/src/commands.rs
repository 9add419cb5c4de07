//! One function per command: check the arguments, build the request, send it, print the outcome.
//!
//! Everything that can be refused locally (a bad name, a bad password on stdin) is refused before
//! connecting, with exit status 2.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use credd_proto::{Client, ProtoError, Reply, Request, Secret, UserInfo, validate_user_name};

use crate::cli::{Cli, Command, NameArg, PasswdArgs, UserAddArgs, UserCommand, UserShowArgs};
use crate::error::CtlError;
use crate::output::{self, UserList, one_line};
use crate::password;

/// Connect, read and write timeout: an admin request may hash a password (600 000 PBKDF2
/// iterations) and wait for a slot in the hashing pool.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(cli: &Cli) -> Result<(), CtlError> {
    let socket = cli.socket.as_path();
    let mut out = io::stdout().lock();
    match &cli.command {
        Command::User(UserCommand::Add(args)) => user_add(socket, args, &mut out),
        Command::User(UserCommand::Remove(NameArg { name })) => user_remove(socket, name, &mut out),
        Command::User(UserCommand::List(flags)) => user_list(socket, flags.json, &mut out),
        Command::User(UserCommand::Show(args)) => user_show(socket, args, &mut out),
        Command::User(UserCommand::Disable(NameArg { name })) => {
            user_set_disabled(socket, name, true, &mut out)
        }
        Command::User(UserCommand::Enable(NameArg { name })) => {
            user_set_disabled(socket, name, false, &mut out)
        }
        Command::Passwd(args) => passwd(socket, args, &mut out),
    }
}

/// `user add NAME [--uid N] [--password-stdin] [--must-change]`
fn user_add(socket: &Path, args: &UserAddArgs, out: &mut impl Write) -> Result<(), CtlError> {
    check_name(&args.name)?;
    let password: Option<Secret> = if args.password_stdin {
        Some(password::read_from_stdin()?)
    } else {
        None
    };
    let req = Request::UserAdd {
        user: args.name.clone(),
        uid: args.uid,
        password,
        must_change: args.must_change,
    };
    let info = expect_user(Conn::open(socket)?.call(&req)?, &args.name)?;
    let uid = info
        .uid
        .map_or_else(|| "no uid".to_string(), |u| format!("uid {u}"));
    say(out, format_args!("added {} ({uid})", one_line(&info.user)))
}

/// `user remove NAME`
fn user_remove(socket: &Path, name: &str, out: &mut impl Write) -> Result<(), CtlError> {
    check_name(name)?;
    let req = Request::UserRemove { user: name.into() };
    expect_done(Conn::open(socket)?.call(&req)?, name)?;
    say(out, format_args!("removed {name}"))
}

/// `user list [--json]`: rows are printed as they arrive.
fn user_list(socket: &Path, json: bool, out: &mut impl Write) -> Result<(), CtlError> {
    let mut conn = Conn::open(socket)?;
    let mut list = UserList::new(BufWriter::new(out), json);
    // The callback cannot fail, so the first write error is kept and later rows are dropped
    // (the rest of the listing is still read off the socket).
    let mut write_error: Option<io::Error> = None;
    let streamed = conn.client.call_stream(&Request::UserList, |row| {
        if write_error.is_none() {
            write_error = list.row(&row).err();
        }
    });
    match streamed {
        Ok(_) => {}
        Err(ProtoError::Unexpected(what)) => return Err(CtlError::Listing(what)),
        Err(e) => return Err(CtlError::call(conn.socket, TIMEOUT, e)),
    }
    if let Some(e) = write_error {
        return Err(CtlError::Output(e));
    }
    list.finish().map_err(CtlError::Output)?;
    Ok(())
}

/// `user show NAME [--json]`
fn user_show(socket: &Path, args: &UserShowArgs, out: &mut impl Write) -> Result<(), CtlError> {
    check_name(&args.name)?;
    let req = Request::UserShow {
        user: args.name.clone(),
    };
    let info = expect_user(Conn::open(socket)?.call(&req)?, &args.name)?;
    let written = if args.json {
        output::write_user_json(out, &info)
    } else {
        output::write_user(out, &info)
    };
    written.and_then(|()| out.flush()).map_err(CtlError::Output)
}

/// `user disable NAME` and `user enable NAME`
fn user_set_disabled(
    socket: &Path,
    name: &str,
    disabled: bool,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    check_name(name)?;
    let req = Request::UserSetDisabled {
        user: name.into(),
        disabled,
    };
    expect_done(Conn::open(socket)?.call(&req)?, name)?;
    let verb = if disabled { "disabled" } else { "enabled" };
    say(out, format_args!("{verb} {name}"))
}

/// `passwd NAME --password-stdin [--must-change]`
fn passwd(socket: &Path, args: &PasswdArgs, out: &mut impl Write) -> Result<(), CtlError> {
    check_name(&args.name)?;
    // clap makes --password-stdin mandatory; there is no other source of the password yet.
    debug_assert!(args.password_stdin);
    let req = Request::SetPassword {
        user: args.name.clone(),
        password: password::read_from_stdin()?,
        must_change: args.must_change,
    };
    expect_done(Conn::open(socket)?.call(&req)?, &args.name)?;
    let name = &args.name;
    if args.must_change {
        say(
            out,
            format_args!("password set for {name} (must change at next login)"),
        )
    } else {
        say(out, format_args!("password set for {name}"))
    }
}

/// An open connection to the admin socket, remembering its path for error messages.
struct Conn {
    client: Client,
    socket: PathBuf,
}

impl Conn {
    fn open(socket: &Path) -> Result<Conn, CtlError> {
        let client = Client::connect(socket, TIMEOUT)
            .map_err(|e| CtlError::connect(socket.to_path_buf(), TIMEOUT, e))?;
        Ok(Conn {
            client,
            socket: socket.to_path_buf(),
        })
    }

    fn call(&mut self, req: &Request) -> Result<Reply, CtlError> {
        match self.client.call(req) {
            // Refused before reading the request: the refusal is the answer to show.
            Err(ProtoError::Refused(reply)) => Ok(reply),
            other => other.map_err(|e| CtlError::call(self.socket.clone(), TIMEOUT, e)),
        }
    }
}

fn check_name(name: &str) -> Result<(), CtlError> {
    validate_user_name(name)
        .map_err(|why| CtlError::Usage(format!("invalid user name {name:?}: {why}")))
}

fn say(out: &mut impl Write, line: std::fmt::Arguments<'_>) -> Result<(), CtlError> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CtlError::Output)
}

/// The reply to a request that answers with the account.
fn expect_user(reply: Reply, user: &str) -> Result<UserInfo, CtlError> {
    match reply {
        Reply::User(info) => Ok(*info),
        other => Err(refusal(other, user)),
    }
}

/// The reply to a request that changes something; the daemon may answer with the changed account.
fn expect_done(reply: Reply, user: &str) -> Result<(), CtlError> {
    match reply {
        Reply::Ok | Reply::User(_) => Ok(()),
        other => Err(refusal(other, user)),
    }
}

fn refusal(reply: Reply, user: &str) -> CtlError {
    match reply {
        Reply::Error { kind, message } => CtlError::Daemon { kind, message },
        Reply::UnknownUser => CtlError::UnknownUser(user.into()),
        Reply::Busy => CtlError::Busy,
        other => CtlError::Unexpected(other.name().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::ErrorKind;

    fn alice() -> UserInfo {
        UserInfo {
            user: "alice".into(),
            uid: Some(1001),
            hash_scheme: None,
            iterations: None,
            disabled: false,
            must_change: false,
            created_at: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn bad_names_are_usage_errors() {
        for name in ["", "a b", "-rf", "a:b", "x/y", "a\nb"] {
            let err = check_name(name).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{name:?}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        assert!(check_name("alice").is_ok());
    }

    #[test]
    fn bad_names_never_reach_the_socket() {
        let nowhere = Path::new("/nonexistent/credd/admin.sock");
        let err = user_remove(nowhere, "a b", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = user_remove(nowhere, "alice", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .starts_with("cannot reach credd at /nonexistent/credd/admin.sock: "),
            "{err}"
        );
    }

    #[test]
    fn replies_map_to_outcomes() {
        assert_eq!(
            expect_user(Reply::User(Box::new(alice())), "alice").unwrap(),
            alice()
        );
        assert!(expect_done(Reply::Ok, "alice").is_ok());
        assert!(expect_done(Reply::User(Box::new(alice())), "alice").is_ok());

        let err = expect_done(
            Reply::Error {
                kind: ErrorKind::NotPermitted,
                message: "only root may change root".into(),
            },
            "root",
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(err.to_string(), "only root may change root");

        let err = expect_user(Reply::UnknownUser, "bob").unwrap_err();
        assert_eq!(
            (err.exit_code(), err.to_string()),
            (1, "no such user: bob".into())
        );

        let err = expect_done(Reply::Busy, "bob").unwrap_err();
        assert_eq!(err.exit_code(), 1);

        let err = expect_user(Reply::Ok, "bob").unwrap_err();
        assert_eq!(err.to_string(), "unexpected reply from credd: ok");
        let err = expect_done(Reply::Pong { version: 1 }, "bob").unwrap_err();
        assert_eq!(err.to_string(), "unexpected reply from credd: pong");
    }
}
