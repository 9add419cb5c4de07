//! Rendering of replies for people (`key: value` lines, aligned tables) and for scripts (JSON).
//!
//! Listings are written as rows arrive: a JSON array is opened at the first row and closed at the
//! end, and a table holds at most [`TABLE_BATCH`] rows to size its columns, so 100 000 accounts
//! never sit in memory at once.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use credd_proto::{
    AccountStatus, AuditEntry, AuditReport, CheckReport, DaemonCounters, FailureInfo,
    ImportProblem, ImportSkip, ImportSummary, ResetIssued, SessionInfo, UserInfo,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::import::ACTIONS;

/// Rows a table reads before fixing its column widths; later rows that are wider push the
/// following columns right but are still separated by two spaces.
pub const TABLE_BATCH: usize = 1000;

const GAP: &str = "  ";

/// Shown for a null value in `key: value` lines and tables.
const NONE: &str = "-";

/// Text from the daemon made safe for a terminal and a single line: control characters (a
/// newline, an escape sequence) and Unicode format and separator characters (a bidi override,
/// a zero-width space, U+2028) are shown escaped instead of being obeyed.
pub fn one_line(text: &str) -> Cow<'_, str> {
    credd_proto::escape_unsafe(text)
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn uid(uid: Option<u32>) -> String {
    uid.map_or_else(|| NONE.to_string(), |u| u.to_string())
}

/// An optional string from the daemon, or `-`.
fn or_none(value: Option<&str>) -> Cow<'_, str> {
    value.map_or(Cow::Borrowed(NONE), one_line)
}

fn scheme(info: &UserInfo) -> Cow<'_, str> {
    info.hash_scheme
        .as_deref()
        .map_or(Cow::Borrowed("none"), one_line)
}

/// `user show`: one `key: value` line per field.
pub fn write_user<W: Write>(out: &mut W, info: &UserInfo) -> io::Result<()> {
    let iterations = info
        .iterations
        .map_or_else(|| "-".to_string(), |i| i.to_string());
    writeln!(out, "user: {}", one_line(&info.user))?;
    writeln!(out, "uid: {}", uid(info.uid))?;
    writeln!(out, "hash_scheme: {}", scheme(info))?;
    writeln!(out, "iterations: {iterations}")?;
    writeln!(out, "disabled: {}", yes_no(info.disabled))?;
    writeln!(out, "must_change: {}", yes_no(info.must_change))?;
    writeln!(out, "created_at: {}", one_line(&info.created_at))?;
    writeln!(out, "updated_at: {}", one_line(&info.updated_at))
}

/// `status NAME`: one `key: value` line per field, `-` for null.
pub fn write_status<W: Write>(out: &mut W, status: &AccountStatus) -> io::Result<()> {
    let last_failure = status
        .last_failure
        .as_ref()
        .map_or_else(|| NONE.to_string(), failure);
    writeln!(out, "user: {}", one_line(&status.user))?;
    writeln!(out, "uid: {}", uid(status.uid))?;
    writeln!(out, "locked: {}", yes_no(status.locked))?;
    writeln!(out, "failures: {}", status.failures)?;
    writeln!(out, "unlock: {}", or_none(status.unlock.as_deref()))?;
    writeln!(
        out,
        "locked_since: {}",
        or_none(status.locked_since.as_deref())
    )?;
    writeln!(
        out,
        "locked_until: {}",
        or_none(status.locked_until.as_deref())
    )?;
    writeln!(out, "lock_kind: {}", or_none(status.lock_kind.as_deref()))?;
    writeln!(
        out,
        "lock_reason: {}",
        or_none(status.lock_reason.as_deref())
    )?;
    writeln!(out, "last_failure: {last_failure}")
}

/// `TIME service=S rhost=R tty=T peer_uid=U`; rhost and tty are left out when null.
fn failure(f: &FailureInfo) -> String {
    let mut line = format!("{} service={}", one_line(&f.time), field(&f.service));
    if let Some(rhost) = &f.rhost {
        let _ = write!(line, " rhost={}", field(rhost));
    }
    if let Some(tty) = &f.tty {
        let _ = write!(line, " tty={}", field(tty));
    }
    let _ = write!(line, " peer_uid={}", f.peer_uid);
    line
}

/// A `key=value` value as the calling program claimed it: quoted and escaped when it is empty or
/// holds a blank, a quote or a control character, so that a claimed rhost of `x peer_uid=0`
/// cannot pass for a field of its own.
pub fn field(value: &str) -> Cow<'_, str> {
    if !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || credd_proto::is_unsafe_char(c) || c == '"')
    {
        Cow::Borrowed(value)
    } else {
        let mut out = String::with_capacity(value.len() + 2);
        out.push('"');
        for c in value.chars() {
            match c {
                '"' | '\\' => {
                    out.push('\\');
                    out.push(c);
                }
                c if credd_proto::is_unsafe_char(c) => out.extend(c.escape_default()),
                c => out.push(c),
            }
        }
        out.push('"');
        Cow::Owned(out)
    }
}

/// `status --daemon`: one `key: value` line per counter, then `accounts[SCHEME]: N` per scheme.
pub fn write_daemon<W: Write>(out: &mut W, c: &DaemonCounters) -> io::Result<()> {
    writeln!(out, "uptime_seconds: {}", c.uptime_seconds)?;
    writeln!(out, "verifications: {}", c.verifications)?;
    writeln!(out, "busy_replies: {}", c.busy_replies)?;
    writeln!(out, "locked_replies: {}", c.locked_replies)?;
    writeln!(out, "rate_limited_replies: {}", c.rate_limited_replies)?;
    writeln!(out, "refused_peers: {}", c.refused_peers)?;
    writeln!(out, "dropped_syslog_events: {}", c.dropped_syslog_events)?;
    writeln!(out, "dropped_audit_events: {}", c.dropped_audit_events)?;
    for (scheme, count) in &c.accounts_per_scheme {
        writeln!(out, "accounts[{}]: {count}", one_line(scheme))?;
    }
    Ok(())
}

/// `audit`: one line per event, `SEQ TIME EVENT outcome=O user=U actor_uid=N service=S rhost=R
/// tty=T id=ID DETAIL`; null fields are left out, and so is an empty detail. Every value is a
/// [`field`], so a claimed rhost cannot forge another field; the free-text detail comes last,
/// its control characters escaped.
pub fn audit_line(e: &AuditEntry) -> String {
    let mut line = format!(
        "{} {} {} outcome={}",
        e.seq,
        field(&e.time),
        field(&e.event),
        field(&e.outcome)
    );
    if let Some(user) = &e.user {
        let _ = write!(line, " user={}", field(user));
    }
    if let Some(uid) = e.actor_uid {
        let _ = write!(line, " actor_uid={uid}");
    }
    for (key, value) in [
        ("service", &e.service),
        ("rhost", &e.rhost),
        ("tty", &e.tty),
    ] {
        if let Some(value) = value {
            let _ = write!(line, " {key}={}", field(value));
        }
    }
    let _ = write!(line, " id={}", field(&e.id));
    if !e.detail.is_empty() {
        let _ = write!(line, " {}", one_line(&e.detail));
    }
    line
}

/// What `audit verify` found wrong, as one line: `audit chain broken at row SEQ: PROBLEM`; `None`
/// when the chain is intact.
pub fn chain_finding(report: &AuditReport) -> Option<String> {
    let problem = report.problem.as_deref().map(one_line);
    match (report.first_bad_seq, problem) {
        (None, None) => None,
        (Some(seq), Some(problem)) => Some(format!("audit chain broken at row {seq}: {problem}")),
        (Some(seq), None) => Some(format!("audit chain broken at row {seq}")),
        (None, Some(problem)) => Some(format!("audit chain broken: {problem}")),
    }
}

/// `audit verify`: `audit chain intact: N rows, head seq S mac M`, or the finding and
/// `(N rows checked)`.
pub fn write_audit_report<W: Write>(out: &mut W, report: &AuditReport) -> io::Result<()> {
    match chain_finding(report) {
        Some(finding) => writeln!(out, "{finding} ({} rows checked)", report.rows_checked),
        None => writeln!(
            out,
            "audit chain intact: {} rows, head seq {} mac {}",
            report.rows_checked,
            report.head_seq,
            or_none(Some(report.head_mac.as_str()).filter(|m| !m.is_empty()))
        ),
    }
}

/// `check`: `ok: CHECK` for each check run, then `FINDING: FINDING` for each finding.
pub fn write_check<W: Write>(out: &mut W, report: &CheckReport) -> io::Result<()> {
    for check in &report.checks {
        writeln!(out, "ok: {}", one_line(check))?;
    }
    for finding in &report.findings {
        writeln!(out, "FINDING: {}", one_line(finding))?;
    }
    Ok(())
}

/// `check`'s one line for standard error when it found something; `None` when all is well.
pub fn check_finding(report: &CheckReport) -> Option<String> {
    match report.findings.as_slice() {
        [] => None,
        [only] => Some(format!("check found 1 finding: {}", one_line(only))),
        [first, ..] => Some(format!(
            "check found {} findings, the first: {}",
            report.findings.len(),
            one_line(first)
        )),
    }
}

/// `--json` for one object (`user show`, `status NAME`, `status --daemon`): the reply's serde
/// shape, pretty-printed.
pub fn write_json<W: Write, T: Serialize>(out: &mut W, value: &T) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// `reset`'s standard output: the code and a newline, or with `--json` the [`ResetIssued`] object
/// (`user`, `code`, `expires_at`, `sessions_revoked`), pretty-printed.
///
/// Rendered into one buffer, written with a single call and wiped on drop. The buffer is
/// allocated at its final size (a measuring pass comes first), so no reallocation leaves a copy
/// of the code behind.
pub fn reset_output(issued: &ResetIssued, json: bool) -> io::Result<Zeroizing<Vec<u8>>> {
    render_secret(|mut out| {
        if json {
            write_json(&mut out, issued)
        } else {
            out.write_all(issued.code.expose().as_bytes())?;
            out.write_all(b"\n")
        }
    })
}

/// `reset`'s line on standard error, next to the code on standard output (never the code itself).
pub fn reset_note(issued: &ResetIssued) -> String {
    format!(
        "code for {} expires at {} ({} sessions revoked)",
        one_line(&issued.user),
        one_line(&issued.expires_at),
        issued.sessions_revoked
    )
}

/// Runs `render` twice: once to measure, once into a buffer of exactly that capacity.
fn render_secret(
    render: impl Fn(&mut dyn Write) -> io::Result<()>,
) -> io::Result<Zeroizing<Vec<u8>>> {
    struct Measure(usize);
    impl Write for Measure {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut measure = Measure(0);
    render(&mut measure)?;
    let mut buf = Zeroizing::new(Vec::with_capacity(measure.0));
    render(&mut *buf)?;
    debug_assert_eq!(buf.len(), measure.0);
    Ok(buf)
}

/// One problem with an import file: `FILE:LINE: field: message`, or `FILE: message` for the
/// whole file (line 0). The field and message may come from credd: control characters are
/// escaped.
pub fn import_problem(file: &str, problem: &ImportProblem) -> String {
    if problem.line == 0 {
        format!("{file}: {}", one_line(&problem.message))
    } else {
        format!(
            "{file}:{}: {}: {}",
            problem.line,
            one_line(&problem.field),
            one_line(&problem.message)
        )
    }
}

/// Problems beyond those shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoreProblems {
    None,
    /// credctl counted them.
    Counted(u64),
    /// credd stopped at its cap and did not count them.
    Uncounted,
}

/// `import`'s problems, one line each, then `… and N more problems` when some are not shown.
pub fn write_import_problems<W: Write + ?Sized>(
    out: &mut W,
    file: &str,
    problems: &[ImportProblem],
    more: MoreProblems,
) -> io::Result<()> {
    for problem in problems {
        writeln!(out, "{}", import_problem(file, problem))?;
    }
    match more {
        MoreProblems::None | MoreProblems::Counted(0) => {}
        MoreProblems::Counted(1) => writeln!(out, "\u{2026} and 1 more problem")?,
        MoreProblems::Counted(n) => writeln!(out, "\u{2026} and {n} more problems")?,
        MoreProblems::Uncounted => writeln!(out, "\u{2026} and more problems")?,
    }
    out.flush()
}

/// `import`'s summary: what credd did (or, for a dry run, would do), rows per action in the
/// order of the format's actions (those with no row left out), the codes and where they went,
/// the sessions revoked, and the time taken in all and by credd.
///
/// ```text
/// imported 4 rows from users.csv
///   add: 1
///   reset: 2
///   set-hash: 1
/// codes: 2 written to codes.csv
/// sessions revoked: 3
/// time: 0.42 s (credd: 0.31 s)
/// ```
///
/// A dry run says `dry run: nothing was changed` first, then `would import N rows from FILE`,
/// `codes that would be issued: N` and `sessions that would be revoked: N`.
pub fn write_import_summary<W: Write>(
    out: &mut W,
    summary: &ImportSummary,
    file: &str,
    codes_out: Option<(&Path, u64)>,
    elapsed: Duration,
) -> io::Result<()> {
    let rows = summary.rows;
    let plural = if rows == 1 { "" } else { "s" };
    if summary.dry_run {
        writeln!(out, "dry run: nothing was changed")?;
        writeln!(out, "would import {rows} row{plural} from {file}")?;
    } else {
        writeln!(out, "imported {rows} row{plural} from {file}")?;
    }
    let known = ACTIONS.map(|a| a.as_str());
    let unknown = summary
        .actions
        .keys()
        .map(String::as_str)
        .filter(|a| !known.contains(a));
    for action in known.into_iter().chain(unknown) {
        match summary.actions.get(action) {
            Some(&count) if count > 0 => writeln!(out, "  {}: {count}", one_line(action))?,
            _ => {}
        }
    }
    if summary.dry_run {
        writeln!(out, "codes that would be issued: {}", summary.codes)?;
        writeln!(
            out,
            "sessions that would be revoked: {}",
            summary.sessions_revoked
        )?;
    } else {
        match codes_out {
            Some((path, written)) => writeln!(
                out,
                "codes: {written} written to {}",
                one_line(&path.display().to_string())
            )?,
            None => writeln!(out, "codes: {}", summary.codes)?,
        }
        writeln!(out, "sessions revoked: {}", summary.sessions_revoked)?;
    }
    writeln!(
        out,
        "time: {:.2} s (credd: {:.2} s)",
        elapsed.as_secs_f64(),
        summary.milliseconds as f64 / 1000.0
    )?;
    out.flush()
}

/// `import --json`: the [`ImportSummary`] object with `codes_out`, the codes file or null.
pub fn write_import_json<W: Write>(
    out: &mut W,
    summary: &ImportSummary,
    codes_out: Option<&Path>,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct WithCodesOut<'a> {
        #[serde(flatten)]
        summary: &'a ImportSummary,
        codes_out: Option<Cow<'a, str>>,
    }
    write_json(
        out,
        &WithCodesOut {
            summary,
            codes_out: codes_out.map(|p| p.to_string_lossy()),
        },
    )?;
    out.flush()
}

/// What an import from a shadow file did (or, for a dry run, would do), for its summary.
#[derive(Debug)]
pub struct ShadowOutcome<'a> {
    /// credd's summary (one with no rows when nothing was sent).
    pub summary: &'a ImportSummary,
    /// The file as messages name it.
    pub file: &'a str,
    /// Every entry left out, credctl's and credd's, in line order.
    pub skipped: &'a [ImportSkip],
    /// Of the accounts taken over: those that must change their password, those disabled.
    pub must_change: u64,
    pub disabled: u64,
    /// `--lock-shadow`: the accounts whose /etc/shadow entry was locked.
    pub locked: Option<&'a [String]>,
    pub elapsed: Duration,
}

/// `import --from-shadow`'s summary:
///
/// ```text
/// imported 2 accounts from /etc/shadow
///   add: 2
///   must change the password at the next login: 1
/// skipped 2 entries:
///   /etc/shadow:1: root: locked: the password field starts with '*' (no password login)
///   /etc/shadow:7: olduser: md5crypt is a legacy scheme; …
/// sessions revoked: 0
/// locked in /etc/shadow (usermod -L): alice, bob
/// time: 0.12 s (credd: 0.01 s)
/// ```
///
/// A dry run says `dry run: nothing was changed`, `would import …` and `would skip …`.
pub fn write_shadow_summary<W: Write>(out: &mut W, o: &ShadowOutcome<'_>) -> io::Result<()> {
    let summary = o.summary;
    let plural = |n: u64, one: &'static str, many: &'static str| if n == 1 { one } else { many };
    let accounts = plural(summary.rows, "account", "accounts");
    if summary.dry_run {
        writeln!(out, "dry run: nothing was changed")?;
        writeln!(
            out,
            "would import {} {accounts} from {}",
            summary.rows, o.file
        )?;
    } else {
        writeln!(out, "imported {} {accounts} from {}", summary.rows, o.file)?;
    }
    for (action, &count) in &summary.actions {
        if count > 0 {
            writeln!(out, "  {}: {count}", one_line(action))?;
        }
    }
    if o.must_change > 0 {
        writeln!(
            out,
            "  must change the password at the next login: {}",
            o.must_change
        )?;
    }
    if o.disabled > 0 {
        writeln!(out, "  disabled (the account has expired): {}", o.disabled)?;
    }
    if !o.skipped.is_empty() {
        let n = o.skipped.len() as u64;
        let verb = if summary.dry_run {
            "would skip"
        } else {
            "skipped"
        };
        writeln!(out, "{verb} {n} {}:", plural(n, "entry", "entries"))?;
        for skip in o.skipped {
            writeln!(
                out,
                "  {}:{}: {}: {}",
                o.file,
                skip.line,
                one_line(&skip.user),
                one_line(&skip.reason)
            )?;
        }
    }
    if !summary.dry_run {
        writeln!(out, "sessions revoked: {}", summary.sessions_revoked)?;
    }
    if let Some(locked) = o.locked {
        let names: Vec<Cow<'_, str>> = locked.iter().map(|n| one_line(n)).collect();
        let names = if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        };
        writeln!(out, "locked in /etc/shadow (usermod -L): {names}")?;
    }
    writeln!(
        out,
        "time: {:.2} s (credd: {:.2} s)",
        o.elapsed.as_secs_f64(),
        summary.milliseconds as f64 / 1000.0
    )?;
    out.flush()
}

/// `import --from-shadow --json`: one object with credd's counts, credctl's and credd's skipped
/// entries together, and the entries `--lock-shadow` locked (null without it).
pub fn write_shadow_json<W: Write>(out: &mut W, o: &ShadowOutcome<'_>) -> io::Result<()> {
    #[derive(Serialize)]
    struct Json<'a> {
        dry_run: bool,
        source: &'a str,
        rows: u64,
        actions: &'a std::collections::BTreeMap<String, u64>,
        must_change: u64,
        disabled: u64,
        sessions_revoked: u64,
        skipped: &'a [ImportSkip],
        locked_in_shadow: Option<&'a [String]>,
        milliseconds: u64,
    }
    write_json(
        out,
        &Json {
            dry_run: o.summary.dry_run,
            source: o.file,
            rows: o.summary.rows,
            actions: &o.summary.actions,
            must_change: o.must_change,
            disabled: o.disabled,
            sessions_revoked: o.summary.sessions_revoked,
            skipped: o.skipped,
            locked_in_shadow: o.locked,
            milliseconds: o.summary.milliseconds,
        },
    )?;
    out.flush()
}

/// `import`'s progress on standard error, rows sent of the total, when standard error is a
/// terminal; a hidden bar (that draws nothing) otherwise, so that logs and pipes stay clean.
pub fn import_progress(rows: u64) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:8} [{bar:40}] {pos}/{len} rows") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message("sending");
    bar
}

/// A row of a listing: how it appears in a table. In JSON it is its serde shape.
pub trait Row: Serialize {
    const HEADER: &'static [&'static str];
    /// One cell per header column, made safe for a single line.
    fn cells(&self) -> Vec<String>;
}

impl Row for UserInfo {
    const HEADER: &'static [&'static str] = &["USER", "UID", "SCHEME", "DISABLED", "MUST_CHANGE"];

    fn cells(&self) -> Vec<String> {
        vec![
            one_line(&self.user).into_owned(),
            uid(self.uid),
            scheme(self).into_owned(),
            yes_no(self.disabled).to_string(),
            yes_no(self.must_change).to_string(),
        ]
    }
}

/// `status` without an account: LAST_FAILURE is the time only; `status NAME` has the rest.
impl Row for AccountStatus {
    const HEADER: &'static [&'static str] = &[
        "USER",
        "UID",
        "LOCKED",
        "FAILURES",
        "UNLOCK",
        "LOCKED_UNTIL",
        "LAST_FAILURE",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            one_line(&self.user).into_owned(),
            uid(self.uid),
            yes_no(self.locked).to_string(),
            self.failures.to_string(),
            or_none(self.unlock.as_deref()).into_owned(),
            or_none(self.locked_until.as_deref()).into_owned(),
            or_none(self.last_failure.as_ref().map(|f| f.time.as_str())).into_owned(),
        ]
    }
}

/// `sessions`: a session's claimed fields as the calling program gave them, `-` for null.
impl Row for SessionInfo {
    const HEADER: &'static [&'static str] = &[
        "ID",
        "USER",
        "SERVICE",
        "TTY",
        "RHOST",
        "PID",
        "AUDIT_SESSION",
        "OPENED_AT",
        "REVOKED_AT",
    ];

    fn cells(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            one_line(&self.user).into_owned(),
            // A program may open a session without naming its service; an empty cell would
            // shift every later column for whoever splits the table on blanks.
            or_none(Some(self.service.as_str()).filter(|s| !s.is_empty())).into_owned(),
            or_none(self.tty.as_deref()).into_owned(),
            or_none(self.rhost.as_deref()).into_owned(),
            self.pid.to_string(),
            self.audit_session
                .map_or_else(|| NONE.to_string(), |a| a.to_string()),
            one_line(&self.opened_at).into_owned(),
            or_none(self.revoked_at.as_deref()).into_owned(),
        ]
    }
}

/// Where the rows of a streamed listing go as they arrive.
pub trait RowSink<T> {
    fn row(&mut self, row: &T) -> io::Result<()>;
    /// Completes the output and flushes it.
    fn finish(self) -> io::Result<()>;
}

impl<W: Write, T: Row> RowSink<T> for Listing<W, T> {
    fn row(&mut self, row: &T) -> io::Result<()> {
        Listing::row(self, row)
    }

    fn finish(self) -> io::Result<()> {
        Listing::finish(self).map(drop)
    }
}

/// `audit`, written as events arrive: one [`audit_line`] per event, or a JSON array of
/// [`AuditEntry`]. No events: no lines, or `[]`.
pub enum AuditListing<W: Write> {
    Lines(W),
    Json(JsonArray<W>),
}

impl<W: Write> AuditListing<W> {
    pub fn new(out: W, json: bool) -> Self {
        if json {
            AuditListing::Json(JsonArray::new(out))
        } else {
            AuditListing::Lines(out)
        }
    }
}

impl<W: Write> RowSink<AuditEntry> for AuditListing<W> {
    fn row(&mut self, row: &AuditEntry) -> io::Result<()> {
        match self {
            AuditListing::Lines(out) => writeln!(out, "{}", audit_line(row)),
            AuditListing::Json(j) => j.row(row),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            AuditListing::Lines(mut out) => out.flush(),
            AuditListing::Json(j) => j.finish().map(drop),
        }
    }
}

/// A listing written as rows arrive (`user list`, `status`, `sessions`): an aligned table or a JSON array.
pub enum Listing<W: Write, T: Row> {
    Table(Table<W, T>),
    Json(JsonArray<W>),
}

impl<W: Write, T: Row> Listing<W, T> {
    pub fn new(out: W, json: bool) -> Self {
        if json {
            Listing::Json(JsonArray::new(out))
        } else {
            Listing::Table(Table::new(out))
        }
    }

    pub fn row(&mut self, row: &T) -> io::Result<()> {
        match self {
            Listing::Table(t) => t.row(row),
            Listing::Json(j) => j.row(row),
        }
    }

    /// Completes the output (an empty listing still prints a header or `[]`) and flushes it.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Listing::Table(t) => t.finish(),
            Listing::Json(j) => j.finish(),
        }
    }
}

/// An aligned table with a header; column widths come from the first [`TABLE_BATCH`] rows.
pub struct Table<W: Write, T: Row> {
    out: W,
    pending: Vec<Vec<String>>,
    widths: Option<Vec<usize>>,
    rows: std::marker::PhantomData<fn(&T)>,
}

impl<W: Write, T: Row> Table<W, T> {
    pub fn new(out: W) -> Self {
        Table {
            out,
            pending: Vec::new(),
            widths: None,
            rows: std::marker::PhantomData,
        }
    }

    pub fn row(&mut self, row: &T) -> io::Result<()> {
        let cells = row.cells();
        debug_assert_eq!(cells.len(), T::HEADER.len());
        match &self.widths {
            Some(widths) => write_cells(&mut self.out, widths, &cells),
            None => {
                self.pending.push(cells);
                if self.pending.len() >= TABLE_BATCH {
                    self.flush_pending()?;
                }
                Ok(())
            }
        }
    }

    pub fn finish(mut self) -> io::Result<W> {
        if self.widths.is_none() {
            self.flush_pending()?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    fn flush_pending(&mut self) -> io::Result<()> {
        let mut widths: Vec<usize> = T::HEADER.iter().map(|h| h.len()).collect();
        for cells in &self.pending {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        write_cells(&mut self.out, &widths, T::HEADER)?;
        for cells in std::mem::take(&mut self.pending) {
            write_cells(&mut self.out, &widths, &cells)?;
        }
        self.widths = Some(widths);
        Ok(())
    }
}

/// One table line; the last column is not padded, so lines carry no trailing blanks.
fn write_cells<W: Write, S: AsRef<str>>(
    out: &mut W,
    widths: &[usize],
    cells: &[S],
) -> io::Result<()> {
    let last = cells.len() - 1;
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        let cell = cell.as_ref();
        if i == last {
            writeln!(out, "{cell}")?;
        } else {
            let pad = width.saturating_sub(cell.chars().count());
            write!(out, "{cell}{:pad$}{GAP}", "")?;
        }
    }
    Ok(())
}

/// A JSON array written incrementally: `[`, then one object per line separated by `,\n`, then `]`.
pub struct JsonArray<W: Write> {
    out: W,
    rows: u64,
}

impl<W: Write> JsonArray<W> {
    pub fn new(out: W) -> Self {
        JsonArray { out, rows: 0 }
    }

    pub fn row(&mut self, row: &impl Serialize) -> io::Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.out, row)?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<W> {
        self.out
            .write_all(if self.rows == 0 { b"[]\n" } else { b"\n]\n" })?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credd_proto::Secret;

    fn info(user: &str, uid: Option<u32>, scheme: Option<&str>) -> UserInfo {
        UserInfo {
            user: user.into(),
            uid,
            hash_scheme: scheme.map(Into::into),
            iterations: scheme.map(|_| 600_000),
            disabled: false,
            must_change: false,
            created_at: "2025-01-02T03:04:05Z".into(),
            updated_at: "2025-01-02T03:04:06Z".into(),
        }
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    fn problem(line: u64, field: &str, message: &str) -> ImportProblem {
        ImportProblem {
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    #[test]
    fn import_problems_name_file_line_and_field() {
        let mut out = Vec::new();
        write_import_problems(
            &mut out,
            "users.csv",
            &[
                problem(0, "", "no rows"),
                problem(7, "user", "no such account"),
                problem(8, "reason\n", "forged\nline"),
            ],
            MoreProblems::Counted(150),
        )
        .unwrap();
        assert_eq!(
            text(out),
            "users.csv: no rows\n\
             users.csv:7: user: no such account\n\
             users.csv:8: reason\\n: forged\\nline\n\
             \u{2026} and 150 more problems\n"
        );
        for (more, last) in [
            (MoreProblems::Counted(1), "\u{2026} and 1 more problem\n"),
            (MoreProblems::Uncounted, "\u{2026} and more problems\n"),
            (MoreProblems::Counted(0), "-:2: uid: taken\n"),
            (MoreProblems::None, "-:2: uid: taken\n"),
        ] {
            let mut out = Vec::new();
            write_import_problems(&mut out, "-", &[problem(2, "uid", "taken")], more).unwrap();
            assert!(text(out).ends_with(last), "{more:?}");
        }
    }

    fn import_summary(dry_run: bool) -> ImportSummary {
        ImportSummary {
            dry_run,
            rows: 4,
            actions: [("add", 1), ("reset", 2), ("set-hash", 1), ("lock", 0)]
                .into_iter()
                .map(|(a, n)| (a.to_string(), n))
                .collect(),
            codes: 2,
            sessions_revoked: 3,
            milliseconds: 310,
            skipped: Vec::new(),
        }
    }

    fn shadow_outcome<'a>(
        summary: &'a ImportSummary,
        skipped: &'a [ImportSkip],
        locked: Option<&'a [String]>,
    ) -> ShadowOutcome<'a> {
        ShadowOutcome {
            summary,
            file: "/etc/shadow",
            skipped,
            must_change: 1,
            disabled: 0,
            locked,
            elapsed: Duration::from_millis(120),
        }
    }

    #[test]
    fn shadow_summary_human_and_json() {
        let summary = ImportSummary {
            dry_run: false,
            rows: 2,
            actions: [("add".to_string(), 1), ("set-hash".to_string(), 1)].into(),
            codes: 0,
            sessions_revoked: 0,
            milliseconds: 10,
            skipped: Vec::new(),
        };
        let skipped = [
            ImportSkip {
                line: 1,
                user: "root".into(),
                reason: "locked: the password field starts with '*' (no password login)".into(),
            },
            ImportSkip {
                line: 7,
                user: "old\nuser".into(),
                reason: "md5crypt is a legacy scheme".into(),
            },
        ];
        let locked = ["alice".to_string(), "bob".to_string()];
        let mut out = Vec::new();
        write_shadow_summary(&mut out, &shadow_outcome(&summary, &skipped, Some(&locked))).unwrap();
        assert_eq!(
            text(out),
            "imported 2 accounts from /etc/shadow\n  add: 1\n  set-hash: 1\n  \
             must change the password at the next login: 1\nskipped 2 entries:\n  \
             /etc/shadow:1: root: locked: the password field starts with '*' (no password \
             login)\n  /etc/shadow:7: old\\nuser: md5crypt is a legacy scheme\n\
             sessions revoked: 0\nlocked in /etc/shadow (usermod -L): alice, bob\n\
             time: 0.12 s (credd: 0.01 s)\n"
        );

        let dry = ImportSummary {
            dry_run: true,
            rows: 1,
            ..summary.clone()
        };
        let mut out = Vec::new();
        write_shadow_summary(&mut out, &shadow_outcome(&dry, &skipped[..1], None)).unwrap();
        let shown = text(out);
        assert!(
            shown.starts_with(
                "dry run: nothing was changed\nwould import 1 account from /etc/shadow\n"
            ),
            "{shown}"
        );
        assert!(shown.contains("\nwould skip 1 entry:\n"), "{shown}");
        assert!(
            !shown.contains("sessions revoked") && !shown.contains("usermod"),
            "{shown}"
        );

        let mut out = Vec::new();
        write_shadow_json(&mut out, &shadow_outcome(&summary, &skipped, None)).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["rows"], 2);
        assert_eq!(v["source"], "/etc/shadow");
        assert_eq!(v["actions"]["set-hash"], 1);
        assert_eq!(v["must_change"], 1);
        assert_eq!(v["skipped"][1]["line"], 7);
        assert_eq!(v["skipped"][0]["user"], "root");
        assert!(v["locked_in_shadow"].is_null());
    }

    #[test]
    fn import_summary_human() {
        let mut out = Vec::new();
        let codes = Path::new("codes.csv");
        write_import_summary(
            &mut out,
            &import_summary(false),
            "users.csv",
            Some((codes, 2)),
            Duration::from_millis(420),
        )
        .unwrap();
        assert_eq!(
            text(out),
            "imported 4 rows from users.csv\n  add: 1\n  reset: 2\n  set-hash: 1\n\
             codes: 2 written to codes.csv\nsessions revoked: 3\ntime: 0.42 s (credd: 0.31 s)\n"
        );

        let mut out = Vec::new();
        write_import_summary(
            &mut out,
            &import_summary(true),
            "<stdin>",
            None,
            Duration::from_millis(50),
        )
        .unwrap();
        assert_eq!(
            text(out),
            "dry run: nothing was changed\nwould import 4 rows from <stdin>\n  add: 1\n  \
             reset: 2\n  set-hash: 1\ncodes that would be issued: 2\n\
             sessions that would be revoked: 3\ntime: 0.05 s (credd: 0.31 s)\n"
        );
    }

    #[test]
    fn import_summary_json_adds_codes_out() {
        let mut out = Vec::new();
        write_import_json(&mut out, &import_summary(false), Some(Path::new("c.csv"))).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["codes_out"], "c.csv");
        assert_eq!(v["rows"], 4);
        assert_eq!(v["actions"]["set-hash"], 1);
        assert_eq!(v["dry_run"], false);
        assert_eq!(v["milliseconds"], 310);
        let mut out = Vec::new();
        write_import_json(&mut out, &import_summary(true), None).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert!(v["codes_out"].is_null());
        assert_eq!(v["sessions_revoked"], 3);
    }

    #[test]
    fn show_prints_key_value_lines() {
        let mut out = Vec::new();
        write_user(&mut out, &info("alice", Some(1001), Some("pbkdf2-sha256"))).unwrap();
        assert_eq!(
            text(out),
            "user: alice\nuid: 1001\nhash_scheme: pbkdf2-sha256\niterations: 600000\n\
             disabled: no\nmust_change: no\ncreated_at: 2025-01-02T03:04:05Z\n\
             updated_at: 2025-01-02T03:04:06Z\n"
        );
        let mut bare = info("bob", None, None);
        bare.disabled = true;
        bare.must_change = true;
        let mut out = Vec::new();
        write_user(&mut out, &bare).unwrap();
        let out = text(out);
        for line in [
            "uid: -\n",
            "hash_scheme: none\n",
            "iterations: -\n",
            "disabled: yes\n",
            "must_change: yes\n",
        ] {
            assert!(out.contains(line), "{line:?} in {out}");
        }
    }

    #[test]
    fn show_json_is_the_user_info_object() {
        let alice = info("alice", None, Some("pbkdf2-sha256"));
        let mut out = Vec::new();
        write_json(&mut out, &alice).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["user"], "alice");
        assert!(v["uid"].is_null());
        assert_eq!(v["hash_scheme"], "pbkdf2-sha256");
        assert_eq!(v["disabled"], false);
        let back: UserInfo = serde_json::from_value(v).unwrap();
        assert_eq!(back, alice);
    }

    #[test]
    fn table_is_aligned_with_a_header() {
        let mut list = Listing::<_, UserInfo>::new(Vec::new(), false);
        list.row(&info("alice", Some(1001), Some("pbkdf2-sha256")))
            .unwrap();
        let mut bob = info("bob", None, None);
        bob.disabled = true;
        list.row(&bob).unwrap();
        let out = text(list.finish().unwrap());
        assert_eq!(
            out,
            "USER   UID   SCHEME         DISABLED  MUST_CHANGE\n\
             alice  1001  pbkdf2-sha256  no        no\n\
             bob    -     none           yes       no\n"
        );
    }

    #[test]
    fn empty_listings_still_have_a_shape() {
        let out = text(
            Listing::<_, UserInfo>::new(Vec::new(), false)
                .finish()
                .unwrap(),
        );
        assert_eq!(out, "USER  UID  SCHEME  DISABLED  MUST_CHANGE\n");
        let out = text(
            Listing::<_, UserInfo>::new(Vec::new(), true)
                .finish()
                .unwrap(),
        );
        assert_eq!(out, "[]\n");
    }

    #[test]
    fn json_list_is_one_valid_array() {
        let mut list = Listing::<_, UserInfo>::new(Vec::new(), true);
        for name in ["a", "b", "c"] {
            list.row(&info(name, Some(1), None)).unwrap();
        }
        let out = text(list.finish().unwrap());
        assert!(out.starts_with("[\n{\"user\":\"a\""), "{out}");
        assert!(out.ends_with("}\n]\n"), "{out}");
        assert_eq!(out.matches(",\n").count(), 2);
        let rows: Vec<UserInfo> = serde_json::from_str(&out).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].user, "c");
    }

    #[test]
    fn large_tables_stream_after_the_first_batch() {
        let mut list = Table::new(Vec::new());
        for i in 0..TABLE_BATCH + 5 {
            list.row(&info(&format!("u{i}"), Some(i as u32), None))
                .unwrap();
            assert!(list.pending.len() < TABLE_BATCH);
        }
        let out = text(list.finish().unwrap());
        assert_eq!(out.lines().count(), TABLE_BATCH + 6);
        assert!(out.lines().all(|l| l.split_whitespace().count() == 5));
    }

    fn locked(user: &str) -> AccountStatus {
        AccountStatus {
            user: user.into(),
            uid: Some(1001),
            locked: true,
            failures: 5,
            unlock: Some("time".into()),
            locked_until: Some("2025-01-02T03:19:05Z".into()),
            locked_since: Some("2025-01-02T03:04:05Z".into()),
            lock_kind: Some("failures".into()),
            lock_reason: None,
            last_failure: Some(FailureInfo {
                time: "2025-01-02T03:04:05Z".into(),
                service: "sshd".into(),
                rhost: Some("203.0.113.9".into()),
                tty: Some("ssh".into()),
                peer_uid: 0,
            }),
        }
    }

    fn clear(user: &str) -> AccountStatus {
        AccountStatus {
            user: user.into(),
            uid: None,
            locked: false,
            failures: 0,
            unlock: None,
            locked_until: None,
            locked_since: None,
            lock_kind: None,
            lock_reason: None,
            last_failure: None,
        }
    }

    fn counters() -> DaemonCounters {
        DaemonCounters {
            uptime_seconds: 3600,
            verifications: 42,
            busy_replies: 1,
            locked_replies: 2,
            rate_limited_replies: 3,
            refused_peers: 4,
            dropped_syslog_events: 5,
            dropped_audit_events: 6,
            accounts_per_scheme: [("pbkdf2-sha256".to_string(), 7), ("none".to_string(), 1)]
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn status_prints_key_value_lines() {
        let mut out = Vec::new();
        write_status(&mut out, &locked("alice")).unwrap();
        assert_eq!(
            text(out),
            "user: alice\nuid: 1001\nlocked: yes\nfailures: 5\nunlock: time\n\
             locked_since: 2025-01-02T03:04:05Z\nlocked_until: 2025-01-02T03:19:05Z\n\
             lock_kind: failures\nlock_reason: -\n\
             last_failure: 2025-01-02T03:04:05Z service=sshd rhost=203.0.113.9 tty=ssh peer_uid=0\n"
        );

        let mut out = Vec::new();
        write_status(&mut out, &clear("bob")).unwrap();
        assert_eq!(
            text(out),
            "user: bob\nuid: -\nlocked: no\nfailures: 0\nunlock: -\nlocked_since: -\n\
             locked_until: -\nlock_kind: -\nlock_reason: -\nlast_failure: -\n"
        );
    }

    #[test]
    fn status_of_an_administrative_lock() {
        let mut admin = locked("carol");
        admin.unlock = Some("administrator".into());
        admin.locked_until = None;
        admin.lock_kind = Some("administrator".into());
        admin.lock_reason = Some("left the company".into());
        admin.last_failure = Some(FailureInfo {
            time: "2025-01-02T03:04:05Z".into(),
            service: "login".into(),
            rhost: None,
            tty: None,
            peer_uid: 1000,
        });
        let mut out = Vec::new();
        write_status(&mut out, &admin).unwrap();
        let out = text(out);
        for line in [
            "unlock: administrator\n",
            "locked_until: -\n",
            "lock_kind: administrator\n",
            "lock_reason: left the company\n",
            "last_failure: 2025-01-02T03:04:05Z service=login peer_uid=1000\n",
        ] {
            assert!(out.contains(line), "{line:?} in {out}");
        }
    }

    #[test]
    fn claimed_failure_fields_cannot_forge_others() {
        let mut s = locked("alice");
        s.last_failure = Some(FailureInfo {
            time: "2025-01-02T03:04:05Z".into(),
            service: String::new(),
            rhost: Some("x peer_uid=0".into()),
            tty: Some("pts/1\nuser: root".into()),
            peer_uid: 1000,
        });
        let mut out = Vec::new();
        write_status(&mut out, &s).unwrap();
        let out = text(out);
        assert!(
            out.contains(
                "last_failure: 2025-01-02T03:04:05Z service=\"\" rhost=\"x peer_uid=0\" \
                 tty=\"pts/1\\nuser: root\" peer_uid=1000\n"
            ),
            "{out}"
        );
        assert_eq!(out.lines().count(), 10);
    }

    #[test]
    fn status_json_keeps_the_design_keys() {
        let mut out = Vec::new();
        write_json(&mut out, &locked("alice")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["user"], "alice");
        assert_eq!(v["locked"], true);
        assert_eq!(v["failures"], 5);
        assert_eq!(v["unlock"], "time");
        assert_eq!(v["locked_until"], "2025-01-02T03:19:05Z");
        assert_eq!(v["last_failure"]["service"], "sshd");
        assert_eq!(v["last_failure"]["peer_uid"], 0);

        let mut out = Vec::new();
        write_json(&mut out, &clear("bob")).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for key in ["unlock", "locked_until", "last_failure"] {
            assert!(v.get(key).is_some_and(|k| k.is_null()), "{key} in {v}");
        }
        assert_eq!(v["locked"], false);
        let back: AccountStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, clear("bob"));
    }

    #[test]
    fn status_table_is_aligned_with_a_header() {
        let mut list = Listing::<_, AccountStatus>::new(Vec::new(), false);
        list.row(&locked("alice")).unwrap();
        let mut bob = clear("bob");
        bob.failures = 2;
        list.row(&bob).unwrap();
        let out = text(list.finish().unwrap());
        assert_eq!(
            out,
            "USER   UID   LOCKED  FAILURES  UNLOCK  LOCKED_UNTIL          LAST_FAILURE\n\
             alice  1001  yes     5         time    2025-01-02T03:19:05Z  2025-01-02T03:04:05Z\n\
             bob    -     no      2         -       -                     -\n"
        );
        let out = text(
            Listing::<_, AccountStatus>::new(Vec::new(), false)
                .finish()
                .unwrap(),
        );
        assert_eq!(
            out,
            "USER  UID  LOCKED  FAILURES  UNLOCK  LOCKED_UNTIL  LAST_FAILURE\n"
        );
    }

    #[test]
    fn status_json_list_is_one_valid_array() {
        let mut list = Listing::<_, AccountStatus>::new(Vec::new(), true);
        list.row(&locked("alice")).unwrap();
        list.row(&clear("bob")).unwrap();
        let out = text(list.finish().unwrap());
        let rows: Vec<AccountStatus> = serde_json::from_str(&out).unwrap();
        assert_eq!(rows, vec![locked("alice"), clear("bob")]);
    }

    #[test]
    fn daemon_counters_as_lines_and_json() {
        let mut out = Vec::new();
        write_daemon(&mut out, &counters()).unwrap();
        assert_eq!(
            text(out),
            "uptime_seconds: 3600\nverifications: 42\nbusy_replies: 1\nlocked_replies: 2\n\
             rate_limited_replies: 3\nrefused_peers: 4\ndropped_syslog_events: 5\n\
             dropped_audit_events: 6\naccounts[none]: 1\naccounts[pbkdf2-sha256]: 7\n"
        );

        let mut out = Vec::new();
        write_json(&mut out, &counters()).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        for key in [
            "uptime_seconds",
            "verifications",
            "busy_replies",
            "refused_peers",
            "dropped_syslog_events",
            "dropped_audit_events",
        ] {
            assert!(v[key].is_u64(), "{key} in {v}");
        }
        assert_eq!(v["accounts_per_scheme"]["pbkdf2-sha256"], 7);
        let back: DaemonCounters = serde_json::from_value(v).unwrap();
        assert_eq!(back, counters());
    }

    fn issued(code: &str) -> ResetIssued {
        ResetIssued {
            user: "alice".into(),
            code: Secret::new(code.into()),
            expires_at: "2025-01-02T03:19:05Z".into(),
            sessions_revoked: 2,
        }
    }

    #[test]
    fn reset_prints_the_code_alone() {
        let out = reset_output(&issued("7KQ4-M2XD-9RTV-H3PE"), false).unwrap();
        assert_eq!(&out[..], b"7KQ4-M2XD-9RTV-H3PE\n");
        assert_eq!(
            out.capacity(),
            out.len(),
            "allocated once, at its final size"
        );
        assert_eq!(
            reset_note(&issued("7KQ4-M2XD-9RTV-H3PE")),
            "code for alice expires at 2025-01-02T03:19:05Z (2 sessions revoked)"
        );
        let mut evil = issued("X");
        evil.user = "a\nb".into();
        let note = reset_note(&evil);
        assert!(!note.contains('\n') && !note.contains('X'), "{note}");
    }

    #[test]
    fn reset_json_keeps_the_design_keys() {
        let out = reset_output(&issued("7KQ4-M2XD-9RTV-H3PE"), true).unwrap();
        assert_eq!(
            out.capacity(),
            out.len(),
            "allocated once, at its final size"
        );
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text.starts_with("{\n  \"user\": \"alice\",\n"), "{text}");
        assert!(text.ends_with("}\n"), "{text}");
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(v.is_object());
        assert_eq!(v["user"], "alice");
        assert_eq!(v["code"], "7KQ4-M2XD-9RTV-H3PE");
        assert_eq!(v["expires_at"], "2025-01-02T03:19:05Z");
        assert_eq!(v["sessions_revoked"], 2);
        assert_eq!(v.as_object().unwrap().len(), 4);
        let back: ResetIssued = serde_json::from_value(v).unwrap();
        assert_eq!(back, issued("7KQ4-M2XD-9RTV-H3PE"));
    }

    fn session(id: u64, user: &str) -> SessionInfo {
        SessionInfo {
            id,
            user: user.into(),
            service: "sshd".into(),
            tty: Some("ssh".into()),
            rhost: Some("203.0.113.9".into()),
            pid: 4242,
            pid_start: Some(123_456),
            audit_session: Some(7),
            loginuid: Some(1001),
            opened_at: "2025-01-02T03:04:05Z".into(),
            revoked_at: None,
            revoked_reason: None,
        }
    }

    fn bare_session(id: u64, user: &str) -> SessionInfo {
        SessionInfo {
            service: String::new(),
            tty: None,
            rhost: None,
            pid_start: None,
            audit_session: None,
            loginuid: None,
            revoked_at: Some("2025-01-02T04:00:00Z".into()),
            revoked_reason: Some("reset".into()),
            ..session(id, user)
        }
    }

    #[test]
    fn sessions_table_is_aligned_with_a_header() {
        let mut list = Listing::<_, SessionInfo>::new(Vec::new(), false);
        list.row(&session(1, "alice")).unwrap();
        list.row(&bare_session(12, "bob")).unwrap();
        let out = text(list.finish().unwrap());
        assert_eq!(
            out,
            "ID  USER   SERVICE  TTY  RHOST        PID   AUDIT_SESSION  OPENED_AT             REVOKED_AT\n\
             1   alice  sshd     ssh  203.0.113.9  4242  7              2025-01-02T03:04:05Z  -\n\
             12  bob    -        -    -            4242  -              2025-01-02T03:04:05Z  2025-01-02T04:00:00Z\n"
        );
        let out = text(
            Listing::<_, SessionInfo>::new(Vec::new(), false)
                .finish()
                .unwrap(),
        );
        assert_eq!(
            out,
            "ID  USER  SERVICE  TTY  RHOST  PID  AUDIT_SESSION  OPENED_AT  REVOKED_AT\n"
        );
    }

    #[test]
    fn sessions_claimed_fields_stay_on_one_line() {
        let mut s = session(3, "alice");
        s.tty = Some("pts/1\n4  root".into());
        let mut list = Listing::<_, SessionInfo>::new(Vec::new(), false);
        list.row(&s).unwrap();
        let out = text(list.finish().unwrap());
        assert_eq!(out.lines().count(), 2, "{out}");
        assert!(out.contains("pts/1\\n4  root"), "{out}");
    }

    #[test]
    fn sessions_json_is_one_array_of_session_info() {
        let mut list = Listing::<_, SessionInfo>::new(Vec::new(), true);
        list.row(&session(1, "alice")).unwrap();
        list.row(&bare_session(2, "bob")).unwrap();
        let out = text(list.finish().unwrap());
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        for key in [
            "id",
            "user",
            "service",
            "tty",
            "rhost",
            "pid",
            "pid_start",
            "audit_session",
            "loginuid",
            "opened_at",
            "revoked_at",
            "revoked_reason",
        ] {
            assert!(rows[1].get(key).is_some(), "{key} in {}", rows[1]);
        }
        assert!(rows[1]["tty"].is_null() && rows[1]["audit_session"].is_null());
        assert_eq!(rows[0]["audit_session"], 7);
        let back: Vec<SessionInfo> = serde_json::from_value(v).unwrap();
        assert_eq!(back, vec![session(1, "alice"), bare_session(2, "bob")]);
    }

    fn event(seq: u64) -> AuditEntry {
        AuditEntry {
            seq,
            id: "0123456789abcdef0123456789abcdef".into(),
            time: "2026-01-02T03:04:05Z".into(),
            event: "login_failure".into(),
            actor_uid: Some(0),
            user: Some("alice".into()),
            service: Some("sshd".into()),
            rhost: Some("203.0.113.9".into()),
            tty: Some("ssh".into()),
            outcome: "denied".into(),
            detail: "failures=3".into(),
        }
    }

    fn daemon_event(seq: u64) -> AuditEntry {
        AuditEntry {
            event: "daemon_started".into(),
            actor_uid: None,
            user: None,
            service: None,
            rhost: None,
            tty: None,
            outcome: "ok".into(),
            detail: String::new(),
            ..event(seq)
        }
    }

    #[test]
    fn audit_lines_carry_every_field_but_nulls() {
        assert_eq!(
            audit_line(&event(17)),
            "17 2026-01-02T03:04:05Z login_failure outcome=denied user=alice actor_uid=0 \
             service=sshd rhost=203.0.113.9 tty=ssh id=0123456789abcdef0123456789abcdef \
             failures=3"
        );
        assert_eq!(
            audit_line(&daemon_event(1)),
            "1 2026-01-02T03:04:05Z daemon_started outcome=ok \
             id=0123456789abcdef0123456789abcdef"
        );
    }

    #[test]
    fn audit_lines_cannot_be_forged_by_claimed_fields() {
        let mut e = event(3);
        e.rhost = Some("x actor_uid=0".into());
        e.tty = Some("pts/1\n4 root".into());
        e.service = Some(String::new());
        e.detail = "a\nb\x1b[2J".into();
        let line = audit_line(&e);
        assert_eq!(
            line,
            "3 2026-01-02T03:04:05Z login_failure outcome=denied user=alice actor_uid=0 \
             service=\"\" rhost=\"x actor_uid=0\" tty=\"pts/1\\n4 root\" \
             id=0123456789abcdef0123456789abcdef a\\nb\\u{1b}[2J"
        );
        assert!(!line.contains('\n') && !line.contains('\x1b'));
    }

    /// Issue 15 R11: a bidi override, a zero-width space or a line separator in a row (an older
    /// database, a detail) is shown escaped, and a field holding one is quoted.
    #[test]
    fn audit_lines_escape_format_and_separator_characters() {
        let mut e = event(4);
        e.user = Some("alice\u{202e}nimda".into());
        e.rhost = Some("203.0.113.9\u{200b}".into());
        e.detail = "reason=x\u{2028}5 forged line\u{2029}".into();
        let line = audit_line(&e);
        assert_eq!(
            line,
            "4 2026-01-02T03:04:05Z login_failure outcome=denied user=\"alice\\u{202e}nimda\" \
             actor_uid=0 service=sshd rhost=\"203.0.113.9\\u{200b}\" tty=ssh \
             id=0123456789abcdef0123456789abcdef reason=x\\u{2028}5 forged line\\u{2029}"
        );
        for c in ['\u{202e}', '\u{200b}', '\u{2028}', '\u{2029}'] {
            assert!(!line.contains(c), "{line:?}");
        }
        assert_eq!(one_line("a\u{2066}b\u{feff}"), "a\\u{2066}b\\u{feff}");
    }

    #[test]
    fn audit_listing_is_lines_or_one_json_array() {
        let mut list = AuditListing::new(Vec::new(), false);
        list.row(&daemon_event(1)).unwrap();
        list.row(&event(2)).unwrap();
        let AuditListing::Lines(out) = list else {
            panic!("lines expected")
        };
        let out = text(out);
        assert_eq!(out.lines().count(), 2);
        assert!(out.starts_with("1 2026-01-02T03:04:05Z daemon_started outcome=ok id="));
        assert!(out.ends_with(" failures=3\n"), "{out}");

        let mut list = AuditListing::new(Vec::new(), true);
        list.row(&daemon_event(1)).unwrap();
        list.row(&event(2)).unwrap();
        let AuditListing::Json(array) = list else {
            panic!("json expected")
        };
        let out = text(array.finish().unwrap());
        let rows: Vec<AuditEntry> = serde_json::from_str(&out).unwrap();
        assert_eq!(rows, vec![daemon_event(1), event(2)]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert!(v[0]["user"].is_null() && v[0]["actor_uid"].is_null());

        let mut out = Vec::new();
        RowSink::finish(AuditListing::new(&mut out, true)).unwrap();
        assert_eq!(text(out), "[]\n");
        let mut out = Vec::new();
        RowSink::finish(AuditListing::new(&mut out, false)).unwrap();
        assert_eq!(text(out), "");
    }

    fn chain(first_bad_seq: Option<u64>, problem: Option<&str>) -> AuditReport {
        AuditReport {
            rows_checked: 42,
            head_seq: 42,
            head_mac: "9f86d081884c7d65".into(),
            first_bad_seq,
            problem: problem.map(Into::into),
        }
    }

    #[test]
    fn audit_report_is_one_line() {
        let mut out = Vec::new();
        write_audit_report(&mut out, &chain(None, None)).unwrap();
        assert_eq!(
            text(out),
            "audit chain intact: 42 rows, head seq 42 mac 9f86d081884c7d65\n"
        );
        assert_eq!(chain_finding(&chain(None, None)), None);

        let empty = AuditReport {
            rows_checked: 0,
            head_seq: 0,
            head_mac: String::new(),
            first_bad_seq: None,
            problem: None,
        };
        let mut out = Vec::new();
        write_audit_report(&mut out, &empty).unwrap();
        assert_eq!(text(out), "audit chain intact: 0 rows, head seq 0 mac -\n");

        let broken = chain(Some(7), Some("mac mismatch (row edited)"));
        let mut out = Vec::new();
        write_audit_report(&mut out, &broken).unwrap();
        assert_eq!(
            text(out),
            "audit chain broken at row 7: mac mismatch (row edited) (42 rows checked)\n"
        );
        assert_eq!(
            chain_finding(&broken).as_deref(),
            Some("audit chain broken at row 7: mac mismatch (row edited)")
        );
        assert_eq!(
            chain_finding(&chain(Some(7), None)).as_deref(),
            Some("audit chain broken at row 7")
        );
        assert_eq!(
            chain_finding(&chain(None, Some("head\nmissing"))).as_deref(),
            Some("audit chain broken: head\\nmissing")
        );
    }

    #[test]
    fn check_report_lists_checks_then_findings() {
        let report = CheckReport {
            checks: vec!["integrity_check".into(), "audit chain".into()],
            findings: vec![],
        };
        let mut out = Vec::new();
        write_check(&mut out, &report).unwrap();
        assert_eq!(text(out), "ok: integrity_check\nok: audit chain\n");
        assert_eq!(check_finding(&report), None);

        let report = CheckReport {
            checks: vec!["integrity_check".into()],
            findings: vec![
                "audit chain broken at row 7: mac mismatch".into(),
                "/var/lib/credd/credd.db is mode 0644\nok: fake".into(),
            ],
        };
        let mut out = Vec::new();
        write_check(&mut out, &report).unwrap();
        assert_eq!(
            text(out),
            "ok: integrity_check\nFINDING: audit chain broken at row 7: mac mismatch\n\
             FINDING: /var/lib/credd/credd.db is mode 0644\\nok: fake\n"
        );
        assert_eq!(
            check_finding(&report).as_deref(),
            Some("check found 2 findings, the first: audit chain broken at row 7: mac mismatch")
        );
        let one = CheckReport {
            checks: vec![],
            findings: vec!["schema version 9 is newer than this credd".into()],
        };
        assert_eq!(
            check_finding(&one).as_deref(),
            Some("check found 1 finding: schema version 9 is newer than this credd")
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(one_line("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        let mut out = Vec::new();
        write_user(&mut out, &info("x", None, Some("evil\nuid: 0"))).unwrap();
        assert!(text(out).contains("hash_scheme: evil\\nuid: 0\n"));
    }
}
