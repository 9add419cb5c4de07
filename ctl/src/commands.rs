//! One function per command: check the arguments, build the request, send it, print the outcome.
//!
//! Everything that can be refused locally (a bad name, a bad password on stdin) is refused before
//! connecting, with exit status 2. Every administrative write is sent with a fresh request id and
//! recorded in syslog under that id once answered ([`admin_call`], [`adminlog`]); an import is one
//! write, whose commit carries the id ([`import`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use credd_proto::{
    AccountStatus, AuditReport, CheckReport, Client, DaemonCounters, ImportAction, ImportOptions,
    ImportSkip, ImportSummary, ProtoError, Reply, Request, ResetIssued, Secret, ShadowOptions,
    ShadowRow, Target, UserInfo, validate_field, validate_user_name,
};
use indicatif::ProgressBar;

use crate::adminlog::{self, Action, AdminLog, ImportRecord, Outcome, Verb};
use crate::cli::{
    AlertsArgs, AlertsCommand, AuditArgs, AuditCommand, AuditListArgs, CheckArgs, Command,
    ImportArgs, Invocation, LockArgs, NameArg, PasswdArgs, ReportArgs, ResetArgs, SessionsArgs,
    StatusArgs, TargetArgs, UserAddArgs, UserCommand, UserShowArgs,
};
use crate::codesfile::CodesFile;
use crate::error::{CtlError, os_message};
use crate::import::{self, Checked, Frames, Staged};
use crate::output::{
    self, AuditListing, Listing, MoreProblems, Row, RowSink, ShadowOutcome, one_line,
};
use crate::password;
use crate::shadow::{self, SYSTEM_SHADOW};

/// Connect, read and write timeout: an admin request may hash a password (600 000 PBKDF2
/// iterations) and wait for a slot in the hashing pool.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The same for an import's connection. Committing 100 000 rows takes credd seconds (checks
/// against the store, one transaction, codes issued, sessions revoked), and the client's timeout
/// is set once, when it connects, for the whole connection.
pub const IMPORT_TIMEOUT: Duration = Duration::from_secs(300);

pub fn run(cli: &Invocation) -> Result<(), CtlError> {
    let socket = cli.socket.as_path();
    let log = &AdminLog::from_env();
    let mut out = io::stdout().lock();
    match &cli.command {
        Command::User(UserCommand::Add(args)) => user_add(socket, log, args, &mut out),
        Command::User(UserCommand::Remove(NameArg { name })) => {
            user_remove(socket, log, name, &mut out)
        }
        Command::User(UserCommand::List(flags)) => user_list(socket, flags.json, &mut out),
        Command::User(UserCommand::Show(args)) => user_show(socket, args, &mut out),
        Command::User(UserCommand::Disable(NameArg { name })) => {
            user_set_disabled(socket, log, name, true, &mut out)
        }
        Command::User(UserCommand::Enable(NameArg { name })) => {
            user_set_disabled(socket, log, name, false, &mut out)
        }
        Command::Passwd(args) => passwd(socket, log, args, &mut out),
        Command::Backup(args) => crate::backup::backup(socket, &args.file, &mut out),
        Command::Restore(args) => {
            let restored =
                crate::backup::restore(&args.file, &args.state_dir, args.force_foreign, &mut out);
            let forced = matches!(&restored, Ok(r) if r.forced);
            log.record(
                &Action {
                    verb: if forced {
                        Verb::RestoreForced
                    } else {
                        Verb::Restore
                    },
                    target: Target::Name("(database)".into()),
                },
                Outcome::of(&restored),
                &crate::adminlog::request_id().unwrap_or_default(),
            );
            restored.map(|_| ())
        }
        Command::Status(args) => status(socket, args, &mut out),
        Command::Lock(args) => lock(socket, log, args, &mut out),
        Command::Unlock(args) => unlock(socket, log, args, &mut out),
        Command::Reset(args) => reset(socket, log, args, &mut raw_stdout()?, &mut io::stderr()),
        Command::Sessions(args) => sessions(socket, args, &mut out),
        Command::Audit(AuditArgs {
            command: Some(AuditCommand::Verify(args)),
            ..
        }) => audit_verify(socket, args, &mut out),
        Command::Audit(AuditArgs {
            command: None,
            list,
        }) => audit(socket, list, &mut out),
        Command::Alerts(AlertsArgs {
            command: Some(AlertsCommand::Ack { id }),
            ..
        }) => alert_ack(socket, id, &mut out),
        Command::Alerts(args) => alerts(socket, args, &mut out),
        Command::Check(args) => check(socket, args, &mut out),
        Command::Import(args) if args.from_shadow => {
            import_shadow(socket, log, args, &mut out, &mut io::stderr())
        }
        Command::Import(args) => import(socket, log, args, &mut out, &mut io::stderr()),
    }
}

/// Sends an administrative write under a fresh request id, then records the action in syslog with
/// that id and its outcome: once the reply is in, or once credd proved unreachable. `expect` turns
/// the reply into the command's result.
fn admin_call<T>(
    socket: &Path,
    log: &AdminLog,
    action: &Action,
    req: &Request,
    expect: impl FnOnce(Reply) -> Result<T, CtlError>,
) -> Result<T, CtlError> {
    let id = adminlog::request_id()?;
    let (result, outcome) = match Conn::open(socket) {
        Err(e) => (Err(e), Outcome::Unreachable),
        Ok(mut conn) => match conn.call_with_id(req, &id) {
            Err(e) => (Err(e), Outcome::Error),
            Ok(reply) => {
                let result = expect(reply);
                let outcome = Outcome::of(&result);
                (result, outcome)
            }
        },
    };
    log.record(action, outcome, &id);
    result
}

/// `user add NAME [--uid N] [--password-stdin] [--must-change]`
fn user_add(
    socket: &Path,
    log: &AdminLog,
    args: &UserAddArgs,
    out: &mut impl Write,
) -> Result<(), CtlError> {
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
    let action = Action::on_user(Verb::UserAdd, &args.name);
    let info = admin_call(socket, log, &action, &req, |reply| {
        expect_user(reply, &args.name)
    })?;
    let uid = info
        .uid
        .map_or_else(|| "no uid".to_string(), |u| format!("uid {u}"));
    say(out, format_args!("added {} ({uid})", one_line(&info.user)))
}

/// `user remove NAME`
fn user_remove(
    socket: &Path,
    log: &AdminLog,
    name: &str,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    check_name(name)?;
    let req = Request::UserRemove { user: name.into() };
    let action = Action::on_user(Verb::UserRemove, name);
    admin_call(socket, log, &action, &req, |reply| expect_done(reply, name))?;
    say(out, format_args!("removed {name}"))
}

/// `user list [--json]`: rows are printed as they arrive.
fn user_list(socket: &Path, json: bool, out: &mut impl Write) -> Result<(), CtlError> {
    listing(socket, "user list", json, out, |client, on_row| {
        client.call_stream(&Request::UserList, on_row)
    })
}

/// A streamed listing, printed as rows arrive. `call` sends the request and hands each row on.
fn listing<T: Row>(
    socket: &Path,
    command: &'static str,
    json: bool,
    out: &mut impl Write,
    call: impl FnOnce(&mut Client, &mut dyn FnMut(T)) -> Result<u64, ProtoError>,
) -> Result<(), CtlError> {
    let list = Listing::<_, T>::new(BufWriter::new(out), json);
    stream(socket, command, list, call)
}

/// A streamed listing, each row handed to `list` as it arrives.
fn stream<T>(
    socket: &Path,
    command: &'static str,
    mut list: impl RowSink<T>,
    call: impl FnOnce(&mut Client, &mut dyn FnMut(T)) -> Result<u64, ProtoError>,
) -> Result<(), CtlError> {
    let mut conn = Conn::open(socket)?;
    // The callback cannot fail, so the first write error is kept and later rows are dropped
    // (the rest of the listing is still read off the socket).
    let mut write_error: Option<io::Error> = None;
    let streamed = call(&mut conn.client, &mut |row| {
        if write_error.is_none() {
            write_error = list.row(&row).err();
        }
    });
    match streamed {
        Ok(_) => {}
        Err(ProtoError::Unexpected(detail)) => {
            return Err(CtlError::Listing { command, detail });
        }
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
        output::write_json(out, &info)
    } else {
        output::write_user(out, &info)
    };
    written.and_then(|()| out.flush()).map_err(CtlError::Output)
}

/// `user disable NAME` and `user enable NAME`
fn user_set_disabled(
    socket: &Path,
    log: &AdminLog,
    name: &str,
    disabled: bool,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    check_name(name)?;
    let req = Request::UserSetDisabled {
        user: name.into(),
        disabled,
    };
    let verb = if disabled {
        Verb::UserDisable
    } else {
        Verb::UserEnable
    };
    let action = Action::on_user(verb, name);
    admin_call(socket, log, &action, &req, |reply| expect_done(reply, name))?;
    let verb = if disabled { "disabled" } else { "enabled" };
    say(out, format_args!("{verb} {name}"))
}

/// `passwd NAME --password-stdin [--must-change]`
fn passwd(
    socket: &Path,
    log: &AdminLog,
    args: &PasswdArgs,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    check_name(&args.name)?;
    // clap makes --password-stdin mandatory; there is no other source of the password yet.
    debug_assert!(args.password_stdin);
    let req = Request::SetPassword {
        user: args.name.clone(),
        password: password::read_from_stdin()?,
        must_change: args.must_change,
    };
    let action = Action::on_user(Verb::Passwd, &args.name);
    admin_call(socket, log, &action, &req, |reply| {
        expect_done(reply, &args.name)
    })?;
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

/// `status [NAME | --uid N] [--json]` and `status --daemon [--json]`
fn status(socket: &Path, args: &StatusArgs, out: &mut impl Write) -> Result<(), CtlError> {
    if args.daemon {
        // clap refuses --daemon together with an account.
        debug_assert!(args.name.is_none() && args.uid.is_none());
        return daemon_status(socket, args.json, out);
    }
    let Some(target) = check_target(args.name.as_deref(), args.uid)? else {
        return listing(socket, "status", args.json, out, |client, on_row| {
            client.call_stream_status(&Request::Status { target: None }, on_row)
        });
    };
    let req = Request::Status {
        target: Some(target.clone()),
    };
    let status = expect_status(Conn::open(socket)?.call(&req)?, &target)?;
    let written = if args.json {
        output::write_json(out, &status)
    } else {
        output::write_status(out, &status)
    };
    written.and_then(|()| out.flush()).map_err(CtlError::Output)
}

/// `status --daemon [--json]`
fn daemon_status(socket: &Path, json: bool, out: &mut impl Write) -> Result<(), CtlError> {
    let counters: DaemonCounters = match Conn::open(socket)?.call(&Request::DaemonStatus)? {
        Reply::Daemon(counters) => *counters,
        other => return Err(refusal_without_account(other)),
    };
    let written = if json {
        output::write_json(out, &counters)
    } else {
        output::write_daemon(out, &counters)
    };
    written.and_then(|()| out.flush()).map_err(CtlError::Output)
}

/// `lock NAME | --uid N [--reason TEXT]`
fn lock(
    socket: &Path,
    log: &AdminLog,
    args: &LockArgs,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    let target = require_target(&args.target)?;
    if let Some(reason) = &args.reason {
        validate_field("reason", reason)
            .map_err(|why| CtlError::Usage(format!("invalid --reason: {why}")))?;
    }
    let req = Request::Lock {
        target: target.clone(),
        reason: args.reason.clone(),
    };
    let action = Action {
        verb: Verb::Lock,
        target: target.clone(),
    };
    admin_call(socket, log, &action, &req, |reply| {
        expect_done(reply, &target.to_string())
    })?;
    say(out, format_args!("locked {target}"))
}

/// `unlock NAME | --uid N`
fn unlock(
    socket: &Path,
    log: &AdminLog,
    args: &TargetArgs,
    out: &mut impl Write,
) -> Result<(), CtlError> {
    let target = require_target(args)?;
    let req = Request::Unlock {
        target: target.clone(),
    };
    let action = Action {
        verb: Verb::Unlock,
        target: target.clone(),
    };
    admin_call(socket, log, &action, &req, |reply| {
        expect_done(reply, &target.to_string())
    })?;
    say(out, format_args!("unlocked {target}"))
}

/// `reset NAME | --uid N [--ttl DUR] [--keep-password] [--json]`: standard output gets the code
/// and a newline and nothing else, so that a script can capture it; `note` (standard error) gets
/// the account, the expiry and the sessions revoked. With `--json`, standard output gets the
/// whole [`ResetIssued`] object and `note` nothing.
fn reset(
    socket: &Path,
    log: &AdminLog,
    args: &ResetArgs,
    out: &mut impl Write,
    note: &mut impl Write,
) -> Result<(), CtlError> {
    let target = require_target(&args.target)?;
    let req = Request::Reset {
        target: target.clone(),
        ttl_seconds: args.ttl_seconds,
        keep_password: args.keep_password,
    };
    let action = Action {
        verb: Verb::Reset,
        target: target.clone(),
    };
    let issued = admin_call(socket, log, &action, &req, |reply| {
        expect_reset(reply, &target)
    })?;
    let shown = output::reset_output(&issued, args.json).map_err(CtlError::CodeLost)?;
    out.write_all(&shown)
        .and_then(|()| out.flush())
        .map_err(CtlError::CodeLost)?;
    if !args.json {
        // The code is out; a closed standard error is no reason to report a failure.
        let _ = writeln!(note, "{}", output::reset_note(&issued));
    }
    Ok(())
}

/// `sessions [NAME] [--json]`: rows are printed as they arrive.
fn sessions(socket: &Path, args: &SessionsArgs, out: &mut impl Write) -> Result<(), CtlError> {
    if let Some(name) = &args.name {
        check_name(name)?;
    }
    let req = Request::Sessions {
        user: args.name.clone(),
    };
    listing(socket, "sessions", args.json, out, |client, on_row| {
        client.call_stream_sessions(&req, on_row)
    })
}

/// `audit [--user NAME] [--since TIME] [--json]`: events, oldest first, printed as they arrive.
fn audit(socket: &Path, args: &AuditListArgs, out: &mut impl Write) -> Result<(), CtlError> {
    if let Some(name) = &args.user {
        check_name(name)?;
    }
    let req = Request::Audit {
        user: args.user.clone(),
        since: args.since.clone(),
    };
    let list = AuditListing::new(BufWriter::new(out), args.json);
    stream(socket, "audit", list, |client, on_row| {
        client.call_stream_audit(&req, on_row)
    })
}

/// One alert for `credctl alerts`: its audit event, its stable fields, and its acknowledgement.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertRow {
    pub id: String,
    pub time: String,
    pub event: String,
    pub outcome: String,
    pub user: Option<String>,
    pub rhost: Option<String>,
    /// The `key=value` fields of the detail (docs/alerts.md), in order.
    pub fields: Vec<(String, String)>,
    pub acked: Option<AlertAck>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertAck {
    pub time: String,
    pub by_uid: Option<u32>,
}

/// The alerts among audit events (oldest first), with their acknowledgements.
pub fn collect_alerts(entries: impl IntoIterator<Item = credd_proto::AuditEntry>) -> Vec<AlertRow> {
    let mut rows: Vec<AlertRow> = Vec::new();
    for e in entries {
        if e.event == "alert_acked" {
            let acked = e.detail.split(' ').find_map(|p| p.strip_prefix("alert="));
            if let Some(row) = acked.and_then(|id| rows.iter_mut().find(|r| r.id == id)) {
                row.acked = Some(AlertAck {
                    time: e.time.clone(),
                    by_uid: e.actor_uid,
                });
            }
        } else if e.event.starts_with("alert_") {
            let fields = e
                .detail
                .split(' ')
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            rows.push(AlertRow {
                id: e.id,
                time: e.time,
                event: e.event,
                outcome: e.outcome,
                user: e.user,
                rhost: e.rhost,
                fields,
                acked: None,
            });
        }
    }
    rows
}

/// `alerts [--since TIME] [--json]`: the audit events `alert_*` since TIME, with whether they
/// were acknowledged. The daemon streams the audit trail; credctl keeps the alerts.
fn alerts(socket: &Path, args: &AlertsArgs, out: &mut impl Write) -> Result<(), CtlError> {
    let req = Request::Audit {
        user: None,
        since: args.since.clone(),
    };
    let mut conn = Conn::open(socket)?;
    let mut entries = Vec::new();
    let streamed = conn.client.call_stream_audit(&req, |row| {
        if row.event.starts_with("alert_") {
            entries.push(row);
        }
    });
    match streamed {
        Ok(_) => {}
        Err(ProtoError::Unexpected(detail)) => {
            return Err(CtlError::Listing {
                command: "alerts",
                detail,
            });
        }
        Err(e) => return Err(CtlError::call(conn.socket, TIMEOUT, e)),
    }
    let rows = collect_alerts(entries);
    let written = if args.json {
        output::write_json(out, &rows)
    } else {
        rows.iter().try_for_each(|r| {
            let fields: Vec<String> = r.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let acked = match &r.acked {
                Some(a) => format!(
                    "acked {} by uid {}",
                    a.time,
                    a.by_uid.map_or("-".into(), |u| u.to_string())
                ),
                None => "NEW".into(),
            };
            writeln!(
                out,
                "{} {} {} [{acked}] {}",
                r.id,
                r.time,
                r.event,
                one_line(&fields.join(" "))
            )
        })
    };
    written.and_then(|()| out.flush()).map_err(CtlError::Output)
}

/// `alerts ack ID`: credd audits the acknowledgement (`alert_acked`) under the caller's uid.
fn alert_ack(socket: &Path, id: &str, out: &mut impl Write) -> Result<(), CtlError> {
    match Conn::open(socket)?.call(&Request::AlertAck { id: id.to_owned() })? {
        Reply::Ok => writeln!(out, "alert {id} acknowledged").map_err(CtlError::Output),
        other => Err(refusal_without_account(other)),
    }
}

/// `audit verify [--json]`: exit 3 when the chain is broken, whatever happens to the output.
fn audit_verify(socket: &Path, args: &ReportArgs, out: &mut impl Write) -> Result<(), CtlError> {
    let report: AuditReport = match Conn::open(socket)?.call(&Request::AuditVerify)? {
        Reply::AuditVerified(report) => *report,
        other => return Err(refusal_without_account(other)),
    };
    let finding = output::chain_finding(&report);
    write_report(out, args, &report, output::write_audit_report, finding)
}

/// `check [--json]`: exit 3 on any finding, whatever happens to the output.
fn check(socket: &Path, args: &CheckArgs, out: &mut impl Write) -> Result<(), CtlError> {
    let report: CheckReport = match Conn::open(socket)?.call(&Request::Check)? {
        Reply::CheckReport(report) => *report,
        other => return Err(refusal_without_account(other)),
    };
    let finding = output::check_finding(&report);
    write_report(out, args, &report, output::write_check, finding)
}

/// An integrity report as JSON or for humans; a finding is the command's failure (exit 3) even
/// when the output could not be written.
fn write_report<W: Write, R: serde::Serialize>(
    out: &mut W,
    args: &ReportArgs,
    report: &R,
    human: fn(&mut W, &R) -> io::Result<()>,
    finding: Option<String>,
) -> Result<(), CtlError> {
    let written = if args.json {
        output::write_json(out, report)
    } else {
        human(out, report)
    };
    let written = written.and_then(|()| out.flush());
    if let Some(finding) = finding {
        return Err(CtlError::Integrity(finding));
    }
    written.map_err(CtlError::Output)
}

/// Problems credctl found in the file: every one to `note`, and the refusal. `Ok` when none.
fn refuse_problems(
    note: &mut impl Write,
    name: String,
    problems: &import::Problems,
) -> Result<(), CtlError> {
    if problems.is_empty() {
        return Ok(());
    }
    output::write_import_problems(
        note,
        &name,
        &problems.shown,
        MoreProblems::Counted(problems.more()),
    )
    .map_err(CtlError::Output)?;
    Err(CtlError::ImportRefused {
        file: name,
        problems: problems.total,
        at_least: false,
    })
}

/// `import FILE|- [--dry-run] [--codes-out FILE] [--ttl DUR] [--allow-bulk] [--json]`
///
/// The whole file is read and checked first; with a problem, every problem goes to `note`
/// (standard error) and nothing is sent. Then the codes file is created, so that one that cannot
/// be created stops the import before anything changes; then the rows go to credd, which checks
/// them against the store and applies them in one transaction on the commit. The summary goes
/// to `out`, the codes only to the codes file.
fn import(
    socket: &Path,
    log: &AdminLog,
    args: &ImportArgs,
    out: &mut impl Write,
    note: &mut impl Write,
) -> Result<(), CtlError> {
    let started = Instant::now();
    // clap requires FILE without --from-shadow.
    let file = args
        .file
        .as_deref()
        .ok_or_else(|| CtlError::Usage("name the CSV file, or - for standard input".into()))?;
    let stdin = file == Path::new("-");
    let (name, source) = file_names(file);
    if args.codes_out.as_deref() == Some(Path::new("-")) {
        return Err(CtlError::Usage(
            "--codes-out needs a file name: codes are never printed".into(),
        ));
    }

    let checked = read_import(file, stdin, &name)?;
    refuse_problems(note, name.clone(), &checked.problems)?;
    let resets = checked.count(ImportAction::Reset);
    let codes_out = args.codes_out.as_deref().filter(|_| !args.dry_run);
    if resets > 0 && codes_out.is_none() && !args.dry_run {
        let rows = if resets == 1 {
            "row needs"
        } else {
            "rows need"
        };
        return Err(CtlError::Usage(format!(
            "{resets} reset {rows} --codes-out FILE for the codes (a new file, mode 0600); \
             nothing was sent"
        )));
    }

    let id = adminlog::request_id()?;
    let mut codes = match codes_out {
        Some(path) => Some(
            CodesFile::create(path).map_err(|source| CtlError::CodesFile {
                path: path.to_path_buf(),
                source,
            })?,
        ),
        None => None,
    };
    let mut record = ImportRecord {
        source: source.clone(),
        dry_run: args.dry_run,
        allow_bulk: args.allow_bulk,
        rows: checked.rows.len() as u64,
        actions: checked.actions(),
        codes: 0,
        sessions_revoked: 0,
        skipped: None,
    };
    let options = ImportOptions {
        dry_run: args.dry_run,
        allow_bulk: args.allow_bulk,
        ttl_seconds: args.ttl_seconds,
        source,
        shadow: None,
    };

    let mut conn = match Conn::open(socket) {
        Ok(conn) => conn,
        Err(e) => {
            log.record_import(&record, Outcome::Unreachable, &id);
            return Err(e);
        }
    };
    let progress = output::import_progress(record.rows);
    let committed = send_import(
        &mut conn,
        options,
        &checked.rows,
        &id,
        &progress,
        &name,
        note,
    );
    progress.finish_and_clear();
    let summary = match committed {
        Ok(summary) => summary,
        Err(e) => {
            // `codes` is dropped on the way out, and the file with it.
            let failed = Err(e);
            log.record_import(&record, Outcome::of(&failed), &id);
            return failed;
        }
    };
    // credd committed: the codes file stays, whatever happens to the codes now.
    if let Some(file) = codes.as_mut() {
        file.keep();
    }
    record.rows = summary.rows;
    record.actions = summary.actions.clone();
    record.codes = summary.codes;
    record.sessions_revoked = summary.sessions_revoked;
    log.record_import(&record, Outcome::Ok, &id);

    let expected = if args.dry_run { 0 } else { summary.codes };
    let received = receive_codes(&mut conn, codes.as_mut(), expected);
    let written = codes.as_ref().map_or(0, CodesFile::written);
    let shown = if args.json {
        output::write_import_json(out, &summary, codes.as_ref().map(CodesFile::path))
    } else {
        let codes_out = codes.as_ref().map(|file| (file.path(), written));
        output::write_import_summary(out, &summary, &name, codes_out, started.elapsed())
    };
    received.map_err(|detail| CtlError::ImportCodesLost {
        codes_out: codes.as_ref().map_or_else(
            || "no file".to_string(),
            |file| one_line(&file.path().display().to_string()).into_owned(),
        ),
        written,
        expected,
        detail,
    })?;
    shown.map_err(CtlError::Output)
}

/// How messages name an import's FILE (`<stdin>` for `-`), and how credd's audit trail does.
fn file_names(file: &Path) -> (String, String) {
    if file == Path::new("-") {
        ("<stdin>".to_string(), "-".to_string())
    } else {
        let path = file.to_string_lossy();
        (one_line(&path).into_owned(), import::audit_source(&path))
    }
}

/// `import --from-shadow [FILE|-] [--users A,B] [--replace] [--lock-shadow] [--dry-run] [--json]`
///
/// The file is read and checked whole first, as a CSV file is: with a problem nothing is sent.
/// Entries that cannot be taken over are skipped with their reason; the rest go to credd through
/// the same staging and one transaction as a CSV import, and credd may skip more (accounts it
/// holds, legacy schemes). `--lock-shadow` then locks the imported accounts' entries in
/// /etc/shadow with `usermod -L`, once credd has committed.
fn import_shadow(
    socket: &Path,
    log: &AdminLog,
    args: &ImportArgs,
    out: &mut impl Write,
    note: &mut impl Write,
) -> Result<(), CtlError> {
    let started = Instant::now();
    let file = args.file.as_deref().unwrap_or(Path::new(SYSTEM_SHADOW));
    let stdin = file == Path::new("-");
    let (name, source) = file_names(file);
    for user in &args.users {
        check_name(user).map_err(|_| {
            CtlError::Usage(format!(
                "--users: invalid user name {user:?} (a comma-separated list of names)"
            ))
        })?;
    }
    if args.lock_shadow {
        check_lock_shadow(file)?;
    }

    let checked = if stdin {
        shadow::check_shadow(io::stdin().lock(), &args.users, shadow::today())
    } else {
        File::open(file).and_then(|f| shadow::check_shadow(f, &args.users, shadow::today()))
    }
    .map_err(|source| CtlError::Input {
        name: name.clone(),
        source,
    })?;
    refuse_problems(note, name.clone(), &checked.problems)?;

    let mut summary = ImportSummary {
        dry_run: args.dry_run,
        rows: 0,
        actions: Default::default(),
        codes: 0,
        sessions_revoked: 0,
        milliseconds: 0,
        skipped: Vec::new(),
    };
    // Nothing to take over (every entry locked, say): nothing to send, nothing that changed.
    if !checked.rows.is_empty() {
        summary = send_shadow(socket, log, args, &checked, &name, source, note)?;
    }
    let mut skipped: Vec<ImportSkip> = checked.skipped;
    let left_out: std::collections::HashSet<u64> = summary.skipped.iter().map(|s| s.line).collect();
    skipped.extend(std::mem::take(&mut summary.skipped));
    skipped.sort_by_key(|s| s.line);
    let taken: Vec<&ShadowRow> = checked
        .rows
        .iter()
        .filter(|r| !left_out.contains(&r.line))
        .collect();

    let mut lock_failures = Vec::new();
    let locked = (args.lock_shadow && !args.dry_run).then(|| {
        let mut locked = Vec::new();
        for row in &taken {
            match lock_in_shadow(&row.user) {
                Ok(()) => locked.push(row.user.clone()),
                Err(why) => lock_failures.push(why),
            }
        }
        locked
    });
    let outcome = ShadowOutcome {
        summary: &summary,
        file: &name,
        skipped: &skipped,
        must_change: taken.iter().filter(|r| r.must_change).count() as u64,
        disabled: taken.iter().filter(|r| r.expired).count() as u64,
        locked: locked.as_deref(),
        elapsed: started.elapsed(),
    };
    if args.json {
        output::write_shadow_json(out, &outcome)
    } else {
        output::write_shadow_summary(out, &outcome)
    }
    .map_err(CtlError::Output)?;
    if !lock_failures.is_empty() {
        return Err(CtlError::LockShadow(format!(
            "the import was done, but {} of its entries in /etc/shadow could not be locked: {}; \
             lock them with usermod -L",
            lock_failures.len(),
            lock_failures.join("; ")
        )));
    }
    Ok(())
}

/// Sends the entries and commits them; credd's summary. The syslog record is written once credd
/// has answered the commit (or could not be reached), as for a CSV import.
fn send_shadow(
    socket: &Path,
    log: &AdminLog,
    args: &ImportArgs,
    checked: &shadow::ShadowChecked,
    name: &str,
    source: String,
    note: &mut impl Write,
) -> Result<ImportSummary, CtlError> {
    let (rows, skipped_here) = (&checked.rows, &checked.skipped);
    let id = adminlog::request_id()?;
    let mut record = ImportRecord {
        source: source.clone(),
        dry_run: args.dry_run,
        allow_bulk: false,
        rows: rows.len() as u64,
        actions: [("add".to_string(), rows.len() as u64)].into(),
        codes: 0,
        sessions_revoked: 0,
        skipped: Some(skipped_here.len() as u64),
    };
    let options = ImportOptions {
        dry_run: args.dry_run,
        allow_bulk: false,
        ttl_seconds: None,
        source,
        shadow: Some(ShadowOptions {
            replace: args.replace,
        }),
    };
    let mut conn = match Conn::open(socket) {
        Ok(conn) => conn,
        Err(e) => {
            log.record_import(&record, Outcome::Unreachable, &id);
            return Err(e);
        }
    };
    let progress = output::import_progress(record.rows);
    let committed = send_import(&mut conn, options, rows, &id, &progress, name, note);
    progress.finish_and_clear();
    let summary = match committed {
        Ok(summary) => summary,
        Err(e) => {
            let failed = Err(e);
            log.record_import(&record, Outcome::of(&failed), &id);
            return failed;
        }
    };
    record.rows = summary.rows;
    record.actions = summary.actions.clone();
    record.sessions_revoked = summary.sessions_revoked;
    record.skipped = Some((skipped_here.len() + summary.skipped.len()) as u64);
    log.record_import(&record, Outcome::Ok, &id);
    // No code follows a shadow import's summary; the end marker does.
    receive_codes(&mut conn, None, 0)
        .map_err(|detail| CtlError::Unexpected(format!("after the import's summary: {detail}")))?;
    Ok(summary)
}

/// `--lock-shadow` edits /etc/shadow through usermod: only for that file, and only as root. Both
/// are checked before anything is sent, so that the import is not done without its locking.
fn check_lock_shadow(file: &Path) -> Result<(), CtlError> {
    let system = std::fs::canonicalize(file).is_ok_and(|real| real == Path::new(SYSTEM_SHADOW));
    if !system {
        return Err(CtlError::Usage(format!(
            "--lock-shadow locks entries of {SYSTEM_SHADOW} only; {} is another file (lock \
             its accounts where that file is used)",
            one_line(&file.to_string_lossy())
        )));
    }
    // SAFETY: geteuid cannot fail and touches no memory of ours.
    if unsafe { libc::geteuid() } != 0 {
        return Err(CtlError::LockShadow(
            "--lock-shadow needs root: usermod -L edits /etc/shadow; nothing was sent".into(),
        ));
    }
    Ok(())
}

/// `usermod -L NAME`: prefixes the account's /etc/shadow hash with `!`, which pam_unix then
/// refuses, so that a PAM stack that falls through to pam_unix cannot use the old password.
fn lock_in_shadow(user: &str) -> Result<(), String> {
    // The full path where it is: root's PATH is not ours to trust.
    let usermod = ["/usr/sbin/usermod", "/sbin/usermod"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("usermod");
    match std::process::Command::new(usermod)
        .args(["-L", "--", user])
        .stdin(std::process::Stdio::null())
        .output()
    {
        Ok(done) if done.status.success() => Ok(()),
        Ok(done) => Err(format!(
            "usermod -L {}: {} ({})",
            one_line(user),
            one_line(String::from_utf8_lossy(&done.stderr).trim()),
            done.status
        )),
        Err(e) => Err(format!("usermod -L {}: {}", one_line(user), os_message(&e))),
    }
}

/// Reads and checks the import file, or standard input for `-`.
fn read_import(file: &Path, stdin: bool, name: &str) -> Result<Checked, CtlError> {
    let checked = if stdin {
        import::check_csv(io::stdin().lock())
    } else {
        File::open(file).and_then(import::check_csv)
    };
    checked.map_err(|source| CtlError::Input {
        name: name.to_string(),
        source,
    })
}

/// Begin, the rows frame by frame (each answered before the next is sent), then the commit
/// under the request id; the summary credd answers it with. A refusal with problems prints
/// them to `note` as `FILE:LINE: field: message`.
fn send_import<T: Staged>(
    conn: &mut Conn,
    options: ImportOptions,
    rows: &[T],
    id: &str,
    progress: &ProgressBar,
    name: &str,
    note: &mut impl Write,
) -> Result<ImportSummary, CtlError> {
    let refused = |reply: Reply, note: &mut dyn Write| import_refusal(reply, progress, name, note);
    match conn.call(&Request::ImportBegin(options))? {
        Reply::Ok => {}
        other => return Err(refused(other, note)),
    }
    for frame in Frames::new(rows) {
        let frame = frame.map_err(|e| conn.error(e))?;
        match conn.call(&frame.request)? {
            Reply::Ok => progress.inc(frame.rows as u64),
            other => return Err(refused(other, note)),
        }
    }
    progress.set_message("applying");
    // Validating and applying 100 000 rows takes seconds; only the commit waits that long.
    conn.set_timeout(IMPORT_TIMEOUT)?;
    match conn.call_with_id(&Request::ImportCommit, id)? {
        Reply::ImportSummary(summary) => Ok(*summary),
        // Only the commit issues codes, so only its rate limit is the reset limit.
        Reply::RateLimited { .. } => Err(CtlError::ImportRateLimited),
        other => Err(refused(other, note)),
    }
}

/// Any answer but `Ok` ends an import: credd's problems are printed, anything else is its refusal.
fn import_refusal(
    reply: Reply,
    progress: &ProgressBar,
    name: &str,
    note: &mut dyn Write,
) -> CtlError {
    match reply {
        Reply::ImportProblems {
            problems,
            truncated,
        } => {
            progress.finish_and_clear();
            let more = if truncated {
                MoreProblems::Uncounted
            } else {
                MoreProblems::None
            };
            if let Err(e) = output::write_import_problems(note, name, &problems, more) {
                return CtlError::Output(e);
            }
            CtlError::ImportRefused {
                file: name.to_string(),
                problems: problems.len() as u64,
                at_least: truncated,
            }
        }
        other => refusal_without_account(other),
    }
}

/// Reads the codes that follow a committed import's summary, to the end marker, into the codes
/// file, which is then flushed and synced. Whatever goes wrong, every code that can be kept is
/// kept; the error says what went wrong first.
fn receive_codes(
    conn: &mut Conn,
    mut codes: Option<&mut CodesFile>,
    expected: u64,
) -> Result<(), String> {
    let mut received = 0u64;
    let mut trouble: Option<String> = None;
    loop {
        match conn.client.receive() {
            Ok(Reply::ImportCode(code)) => {
                received += 1;
                let kept = match codes.as_deref_mut() {
                    Some(file) => file.write(&code).map_err(|e| os_message(&e)),
                    None => Err("credd sent a code but there is no codes file".to_string()),
                };
                if let Err(why) = kept {
                    trouble.get_or_insert(why);
                }
            }
            Ok(Reply::End { count }) => {
                if count != received {
                    trouble.get_or_insert(format!(
                        "credd announced {count} codes but sent {received}"
                    ));
                }
                break;
            }
            Ok(other) => {
                trouble.get_or_insert(format!("unexpected reply from credd: {}", other.name()));
                break;
            }
            Err(e) => {
                trouble.get_or_insert(format!("talking to credd: {e}"));
                break;
            }
        }
    }
    if let Some(Err(e)) = codes.map(CodesFile::finish) {
        trouble.get_or_insert(os_message(&e));
    }
    if received != expected {
        trouble.get_or_insert(format!(
            "credd reported {expected} codes but sent {received}"
        ));
    }
    trouble.map_or(Ok(()), Err)
}

/// Standard output for a secret: `io::stdout()` copies every write into a buffer of its own that
/// nobody wipes, so the descriptor is written directly, through a duplicate.
fn raw_stdout() -> Result<File, CtlError> {
    let fd = io::stdout()
        .as_fd()
        .try_clone_to_owned()
        .map_err(CtlError::Output)?;
    Ok(File::from(fd))
}

/// An open connection to the admin socket, remembering its path and timeout for error messages.
struct Conn {
    client: Client,
    socket: PathBuf,
    timeout: Duration,
}

impl Conn {
    fn open(socket: &Path) -> Result<Conn, CtlError> {
        Conn::open_with(socket, TIMEOUT)
    }

    fn set_timeout(&mut self, timeout: Duration) -> Result<(), CtlError> {
        self.timeout = timeout;
        self.client
            .set_timeout(timeout)
            .map_err(|e| CtlError::call(self.socket.clone(), timeout, e))
    }

    fn open_with(socket: &Path, timeout: Duration) -> Result<Conn, CtlError> {
        let client = Client::connect(socket, timeout)
            .map_err(|e| CtlError::connect(socket.to_path_buf(), timeout, e))?;
        Ok(Conn {
            client,
            socket: socket.to_path_buf(),
            timeout,
        })
    }

    fn call(&mut self, req: &Request) -> Result<Reply, CtlError> {
        let reply = self.client.call(req);
        self.answer(reply)
    }

    /// As [`Conn::call`], with a request id that credd uses as the audit event id.
    fn call_with_id(&mut self, req: &Request, id: &str) -> Result<Reply, CtlError> {
        let reply = self.client.call_with_id(req, id);
        self.answer(reply)
    }

    fn answer(&self, reply: Result<Reply, ProtoError>) -> Result<Reply, CtlError> {
        match reply {
            // Refused before reading the request: the refusal is the answer to show.
            Err(ProtoError::Refused(reply)) => Ok(reply),
            other => other.map_err(|e| self.error(e)),
        }
    }

    fn error(&self, err: ProtoError) -> CtlError {
        CtlError::call(self.socket.clone(), self.timeout, err)
    }
}

fn check_name(name: &str) -> Result<(), CtlError> {
    validate_user_name(name)
        .map_err(|why| CtlError::Usage(format!("invalid user name {name:?}: {why}")))
}

/// NAME or `--uid N` as a [`Target`], the name checked; `None` when neither is given.
fn check_target(name: Option<&str>, uid: Option<u32>) -> Result<Option<Target>, CtlError> {
    match (name, uid) {
        (Some(name), None) => {
            check_name(name)?;
            Ok(Some(Target::Name(name.into())))
        }
        (None, Some(uid)) => Ok(Some(Target::Uid(uid))),
        (None, None) => Ok(None),
        // clap refuses both; kept so that no caller can send an ambiguous request.
        (Some(_), Some(_)) => Err(CtlError::Usage("give NAME or --uid, not both".into())),
    }
}

/// The account `lock`, `unlock` and `reset` act on: exactly one of NAME and `--uid` (clap checks too).
fn require_target(args: &TargetArgs) -> Result<Target, CtlError> {
    check_target(args.name.as_deref(), args.uid)?
        .ok_or_else(|| CtlError::Usage("name the account: NAME or --uid N".into()))
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

/// The reply to `status NAME` or `status --uid N`.
fn expect_status(reply: Reply, target: &Target) -> Result<AccountStatus, CtlError> {
    match reply {
        Reply::Status(status) => Ok(*status),
        other => Err(refusal(other, &target.to_string())),
    }
}

/// The reply to `reset`. A rate limit here is the reset limit (`[codes]`), not a busy daemon. The
/// code must be one printable word: it is printed alone on a line for a script to capture.
fn expect_reset(reply: Reply, target: &Target) -> Result<ResetIssued, CtlError> {
    match reply {
        Reply::ResetIssued(issued) => {
            let code = issued.code.expose();
            if code.is_empty() || code.chars().any(|c| c.is_control() || c.is_whitespace()) {
                return Err(CtlError::Unexpected(
                    "reset_issued with a code that is not one printable word (reset again)".into(),
                ));
            }
            Ok(*issued)
        }
        Reply::RateLimited { .. } => Err(CtlError::ResetRateLimited),
        other => Err(refusal(other, &target.to_string())),
    }
}

/// A refusal of a request that names no account, where "no such user" would make no sense.
fn refusal_without_account(reply: Reply) -> CtlError {
    match reply {
        Reply::UnknownUser => CtlError::Unexpected(Reply::UnknownUser.name().into()),
        other => refusal(other, ""),
    }
}

fn refusal(reply: Reply, user: &str) -> CtlError {
    match reply {
        Reply::Error { kind, message } => CtlError::Daemon { kind, message },
        Reply::UnknownUser => CtlError::UnknownUser(user.into()),
        Reply::Busy => CtlError::Busy,
        Reply::RateLimited { .. } => CtlError::RateLimited,
        other => CtlError::Unexpected(other.name().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adminlog::Destination;
    use credd_proto::ErrorKind;

    /// No syslog: these tests look at results; adminlog's tests and tests/cli.rs look at records.
    const QUIET: &AdminLog = &AdminLog::to(Destination::None);

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
        let err = user_remove(nowhere, QUIET, "a b", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = user_remove(nowhere, QUIET, "alice", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert!(
            err.to_string()
                .starts_with("cannot reach credd at /nonexistent/credd/admin.sock: "),
            "{err}"
        );
    }

    fn target(name: Option<&str>, uid: Option<u32>) -> TargetArgs {
        TargetArgs {
            name: name.map(Into::into),
            uid,
        }
    }

    #[test]
    fn targets_are_exactly_one_name_or_uid() {
        assert_eq!(
            require_target(&target(Some("alice"), None)).unwrap(),
            Target::Name("alice".into())
        );
        assert_eq!(
            require_target(&target(None, Some(0))).unwrap(),
            Target::Uid(0)
        );
        for bad in [
            target(None, None),
            target(Some("alice"), Some(1001)),
            target(Some("a b"), None),
        ] {
            let err = require_target(&bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
        }
        assert_eq!(check_target(None, None).unwrap(), None);
    }

    #[test]
    fn lock_and_unlock_refuse_bad_input_before_connecting() {
        let nowhere = Path::new("/nonexistent/credd/admin.sock");
        let lock_args = |name: &str, reason: Option<String>| LockArgs {
            target: target(Some(name), None),
            reason,
        };
        for args in [
            lock_args("-rf", None),
            lock_args("alice", Some("a\nforged: line".into())),
            lock_args("alice", Some("x".repeat(256))),
            LockArgs {
                target: target(None, None),
                reason: None,
            },
        ] {
            let err = lock(nowhere, QUIET, &args, &mut Vec::new()).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(!err.to_string().contains('\n'), "{err}");
        }
        let err = lock(
            nowhere,
            QUIET,
            &lock_args("alice", Some("é".repeat(127))),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1, "a 254-byte reason is fine: {err}");
        let err = unlock(nowhere, QUIET, &target(Some("a:b"), None), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = unlock(nowhere, QUIET, &target(None, Some(5)), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn status_replies_map_to_outcomes() {
        let status = AccountStatus {
            user: "alice".into(),
            uid: Some(1001),
            locked: false,
            failures: 1,
            unlock: None,
            locked_until: None,
            locked_since: None,
            lock_kind: None,
            lock_reason: None,
            last_failure: None,
        };
        let alice = Target::Name("alice".into());
        assert_eq!(
            expect_status(Reply::Status(Box::new(status.clone())), &alice).unwrap(),
            status
        );
        let err = expect_status(Reply::UnknownUser, &Target::Uid(4242)).unwrap_err();
        assert_eq!(
            (err.exit_code(), err.to_string()),
            (1, "no such user: uid 4242".into())
        );
        let err = expect_status(Reply::StatusItem(Box::new(status)), &alice).unwrap_err();
        assert_eq!(err.to_string(), "unexpected reply from credd: status_item");
        let err = expect_done(
            Reply::RateLimited {
                unknown: false,
                retry_after: None,
            },
            "alice",
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
    }

    fn issued(code: &str) -> ResetIssued {
        ResetIssued {
            user: "alice".into(),
            code: Secret::new(code.into()),
            expires_at: "2025-01-02T03:19:05Z".into(),
            sessions_revoked: 0,
        }
    }

    #[test]
    fn reset_replies_map_to_outcomes() {
        let alice = Target::Name("alice".into());
        let ok = issued("7KQ4-M2XD-9RTV-H3PE");
        assert_eq!(
            expect_reset(Reply::ResetIssued(Box::new(ok.clone())), &alice).unwrap(),
            ok
        );
        let err = expect_reset(
            Reply::RateLimited {
                unknown: false,
                retry_after: None,
            },
            &alice,
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);
        assert_eq!(
            err.to_string(),
            "reset refused: too many resets (rate limit); see credd's log"
        );
        let err = expect_reset(
            Reply::Error {
                kind: ErrorKind::NotPermitted,
                message: "only root may reset root".into(),
            },
            &alice,
        )
        .unwrap_err();
        assert_eq!(
            (err.exit_code(), err.to_string()),
            (1, "only root may reset root".into())
        );
        let err = expect_reset(Reply::UnknownUser, &Target::Uid(5)).unwrap_err();
        assert_eq!(err.to_string(), "no such user: uid 5");
        let err = expect_reset(Reply::Ok, &alice).unwrap_err();
        assert_eq!(err.to_string(), "unexpected reply from credd: ok");
        for bad in ["", "7KQ4 M2XD", "7KQ4\nM2XD", "\x1b[2J"] {
            let err = expect_reset(Reply::ResetIssued(Box::new(issued(bad))), &alice).unwrap_err();
            assert_eq!(err.exit_code(), 1, "{bad:?}");
            let message = err.to_string();
            assert!(
                message.starts_with("unexpected reply from credd: "),
                "{message}"
            );
            assert!(bad.is_empty() || !message.contains(bad), "{message}");
        }
    }

    #[test]
    fn reset_and_sessions_refuse_bad_input_before_connecting() {
        let nowhere = Path::new("/nonexistent/credd/admin.sock");
        let reset_args = |target| ResetArgs {
            target,
            ttl_seconds: None,
            keep_password: false,
            json: false,
        };
        for args in [
            reset_args(target(None, None)),
            reset_args(target(Some("a b"), None)),
            reset_args(target(Some("alice"), Some(1))),
        ] {
            let err = reset(nowhere, QUIET, &args, &mut Vec::new(), &mut Vec::new()).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
        let err = reset(
            nowhere,
            QUIET,
            &reset_args(target(None, Some(5))),
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert_eq!(err.exit_code(), 1);

        let sessions_args = |name: Option<&str>| SessionsArgs {
            name: name.map(Into::into),
            json: false,
        };
        let err = sessions(nowhere, &sessions_args(Some("-rf")), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = sessions(nowhere, &sessions_args(None), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn an_unreachable_daemon_is_recorded_as_unreachable_under_a_fresh_id() {
        let dir = std::env::temp_dir().join(format!("credctl-commands-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log.sock");
        let _ = std::fs::remove_file(&path);
        let receiver = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let log = AdminLog::to(Destination::Unix(path));
        let nowhere = Path::new("/nonexistent/credd/admin.sock");

        let err = user_remove(nowhere, &log, "alice", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let mut buf = [0u8; 2048];
        let n = receiver.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap().to_string();
        assert!(text.starts_with("<86>"), "{text}");
        assert!(
            text.contains("administrative action; action=user_remove user=alice by_uid="),
            "{text}"
        );
        let id = text
            .split_once(" outcome=unreachable id=")
            .map(|(_, id)| id)
            .unwrap_or_else(|| panic!("{text}"));
        assert!(credd_proto::valid_request_id(id), "{id}");

        // Refused before connecting: nothing was attempted, nothing is recorded.
        let err = user_remove(nowhere, &log, "a b", &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            receiver.recv(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn audit_and_check_refuse_bad_input_before_connecting() {
        let nowhere = Path::new("/nonexistent/credd/admin.sock");
        let args = |user: Option<&str>| AuditListArgs {
            user: user.map(Into::into),
            since: None,
            json: false,
        };
        let err = audit(nowhere, &args(Some("-rf")), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = audit(nowhere, &args(Some("alice")), &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let report = ReportArgs { json: false };
        let err = audit_verify(nowhere, &report, &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
        let err = check(nowhere, &report, &mut Vec::new()).unwrap_err();
        assert_eq!(err.exit_code(), 1);
    }

    #[test]
    fn refusals_of_requests_naming_no_account() {
        let err = refusal_without_account(Reply::UnknownUser);
        assert_eq!(err.to_string(), "unexpected reply from credd: unknown_user");
        let err = refusal_without_account(Reply::Error {
            kind: ErrorKind::NotPermitted,
            message: "administrative requests are served to root on admin.sock only".into(),
        });
        assert_eq!(err.exit_code(), 1);
        assert!(err.to_string().contains("served to root"), "{err}");
        let err = refusal_without_account(Reply::Ok);
        assert_eq!(err.to_string(), "unexpected reply from credd: ok");
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
