//! `credctl import`: the CSV file, read and checked whole before anything is sent (DESIGN.md §6),
//! and its rows cut into frames for credd.
//!
//! The format (docs/import.md): UTF-8, a byte order mark tolerated, CRLF or LF line ends, RFC 4180
//! quoting, and a header row naming the columns, lower-case:
//!
//! ```text
//! user,action,uid,password_hash,must_change,ttl,reason
//! alice,add,1001,$pbkdf2-sha256$i=600000,l=32$c2FsdA$aGFzaA,true,,
//! bob,reset,,,,30m,
//! carol,lock,,,,,left the company
//! ```
//!
//! `user` and `action` are required; the other columns are optional and each is allowed only
//! with some actions ([`Column::allowed_with`]). Every problem is collected, each named by its
//! line and column ([`ImportProblem`]), so that one run shows everything to fix. What only credd
//! can tell (does the account exist, is the uid taken, can it use this hash) it reports the same
//! way when the import is committed.
//!
//! The file is read as a stream: what stays in memory is the checked rows (and the names seen, to
//! find an account named twice), never the file itself.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{self, Read};

use credd_proto::{
    ImportAction, ImportProblem, ImportRow, MAX_FIELD_LEN, MAX_FRAME, ProtoError, Request,
    ShadowRow, encode_request, validate_field, validate_user_name,
};

use crate::cli::parse_ttl;
use crate::output::{field, one_line};

/// Problems kept to be shown; past this many they are only counted.
pub const MAX_PROBLEMS: usize = 100;

/// Rows in one `ImportRows` frame at most.
pub const MAX_ROWS_PER_FRAME: usize = 500;

/// Largest encoded `ImportRows` frame credctl sends: well under [`MAX_FRAME`], so that a daemon
/// that adds a field or two to the envelope never sees a frame at the limit.
pub const FRAME_BUDGET: usize = MAX_FRAME * 3 / 4;

/// Longest `password_hash` accepted, in bytes. A PHC pbkdf2-sha256 string is about 100; yescrypt
/// and sha512-crypt strings stay under 200.
pub const MAX_HASH_LEN: usize = 512;

/// Every action, in the order the summary and the syslog record list them.
pub const ACTIONS: [ImportAction; 8] = [
    ImportAction::Add,
    ImportAction::Remove,
    ImportAction::Reset,
    ImportAction::Lock,
    ImportAction::Unlock,
    ImportAction::Disable,
    ImportAction::Enable,
    ImportAction::SetHash,
];

/// The `field` of a problem with a row as a whole (its number of fields).
const ROW: &str = "row";

/// A column of the file, by its name in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    User,
    Action,
    Uid,
    PasswordHash,
    MustChange,
    Ttl,
    Reason,
}

impl Column {
    pub const ALL: [Column; 7] = [
        Column::User,
        Column::Action,
        Column::Uid,
        Column::PasswordHash,
        Column::MustChange,
        Column::Ttl,
        Column::Reason,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Column::User => "user",
            Column::Action => "action",
            Column::Uid => "uid",
            Column::PasswordHash => "password_hash",
            Column::MustChange => "must_change",
            Column::Ttl => "ttl",
            Column::Reason => "reason",
        }
    }

    /// Header names are case-sensitive: `User` is an unknown column.
    fn parse(name: &str) -> Option<Column> {
        Column::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The actions a row may fill this column for; `None` for the columns every row fills.
    pub fn allowed_with(self) -> Option<&'static [ImportAction]> {
        match self {
            Column::User | Column::Action => None,
            Column::Uid => Some(&[ImportAction::Add]),
            Column::PasswordHash | Column::MustChange => {
                Some(&[ImportAction::Add, ImportAction::SetHash])
            }
            Column::Ttl => Some(&[ImportAction::Reset]),
            Column::Reason => Some(&[ImportAction::Lock]),
        }
    }
}

/// The problems found, the first [`MAX_PROBLEMS`] of them kept, in line order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Problems {
    pub shown: Vec<ImportProblem>,
    /// How many there are, shown or not.
    pub total: u64,
}

impl Problems {
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The ones counted but not kept.
    pub fn more(&self) -> u64 {
        self.total - self.shown.len() as u64
    }

    pub(crate) fn push(&mut self, line: u64, field: &str, message: impl Into<String>) {
        self.total += 1;
        if self.shown.len() < MAX_PROBLEMS {
            self.shown.push(ImportProblem {
                line,
                field: field.into(),
                message: message.into(),
            });
        }
    }
}

/// The outcome of reading a file: the rows to send when there is no problem.
#[derive(Debug, Default)]
pub struct Checked {
    pub rows: Vec<ImportRow>,
    pub problems: Problems,
}

impl Checked {
    /// Rows per action, every action present (zero when no row asks for it).
    pub fn actions(&self) -> BTreeMap<String, u64> {
        let mut counts: BTreeMap<String, u64> = ACTIONS
            .iter()
            .map(|a| (a.as_str().to_string(), 0))
            .collect();
        for row in &self.rows {
            *counts.entry(row.action.as_str().to_string()).or_default() += 1;
        }
        counts
    }

    pub fn count(&self, action: ImportAction) -> u64 {
        self.rows.iter().filter(|r| r.action == action).count() as u64
    }
}

/// The FILE argument as credd's audit trail records it (`ImportOptions::source`), which credd
/// refuses with a control character or over [`MAX_FIELD_LEN`] bytes: control characters escaped,
/// and of a long path its end, where the file's name is.
pub fn audit_source(path: &str) -> String {
    let text = one_line(path);
    if text.len() <= MAX_FIELD_LEN {
        return text.into_owned();
    }
    let mut start = text.len() - (MAX_FIELD_LEN - '\u{2026}'.len_utf8());
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("\u{2026}{}", &text[start..])
}

/// Reads and checks a whole import file. An `Err` is a failure to read it; everything wrong
/// with its content is in [`Checked::problems`].
pub fn check_csv(input: impl Read) -> io::Result<Checked> {
    let mut reader = csv::ReaderBuilder::new()
        // The header is checked here, with its line number and its own messages.
        .has_headers(false)
        // A row with the wrong number of fields is a problem to report, not an error that ends
        // reading.
        .flexible(true)
        .from_reader(LineTracker::new(input));
    let mut record = csv::ByteRecord::new();
    let mut checker = Checker::default();
    while reader.read_byte_record(&mut record).map_err(csv_io)? {
        let start = record.position().map_or(0, csv::Position::byte);
        let line = reader.get_mut().line_of_record(start);
        checker.record(line, &record);
    }
    Ok(checker.finish())
}

/// Reading byte records, the csv reader fails only when reading fails.
fn csv_io(err: csv::Error) -> io::Error {
    match err.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

/// Counts lines under the csv reader. Its own record positions are off for a file with blank
/// lines or CRLF line ends: a record's position is taken before the line ends the reader skips.
/// This reader sees every byte the csv reader reads and keeps those it has not yet been asked
/// about: at most the csv reader's buffer and the record being read.
struct LineTracker<R> {
    inner: R,
    unread: VecDeque<u8>,
    /// Byte offset of `unread[0]` in the input, and the line feeds before it.
    offset: u64,
    line_feeds: u64,
}

impl<R> LineTracker<R> {
    fn new(inner: R) -> Self {
        LineTracker {
            inner,
            unread: VecDeque::new(),
            offset: 0,
            line_feeds: 0,
        }
    }

    /// The 1-based line of the record whose reading began at byte `start`: the line ends the csv
    /// reader skips there (blank lines, the LF of a CRLF) are passed first. The bytes before the
    /// record are forgotten.
    fn line_of_record(&mut self, start: u64) -> u64 {
        while self.offset < start {
            match self.unread.pop_front() {
                Some(byte) => self.pass(byte),
                None => break,
            }
        }
        while let Some(&byte) = self.unread.front() {
            if byte != b'\n' && byte != b'\r' {
                break;
            }
            self.unread.pop_front();
            self.pass(byte);
        }
        self.line_feeds + 1
    }

    fn pass(&mut self, byte: u8) {
        self.offset += 1;
        if byte == b'\n' {
            self.line_feeds += 1;
        }
    }
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.unread.extend(&buf[..n]);
        Ok(n)
    }
}

/// The columns of the header: what each position holds, and where each known column is.
#[derive(Debug)]
struct Header {
    line: u64,
    width: usize,
    position: [Option<usize>; Column::ALL.len()],
}

impl Header {
    fn get<'r>(&self, column: Column, record: &'r csv::ByteRecord) -> Option<&'r [u8]> {
        self.position[column as usize].and_then(|at| record.get(at))
    }
}

#[derive(Default)]
struct Checker {
    /// `None` until the header is read; `Some(None)` for a header too broken to read rows by.
    header: Option<Option<Header>>,
    rows: Vec<ImportRow>,
    problems: Problems,
    /// Each account named so far, and the line that named it first.
    first_named: HashMap<String, u64>,
    /// Rows read after the header, valid or not.
    data_rows: u64,
}

impl Checker {
    fn record(&mut self, line: u64, record: &csv::ByteRecord) {
        match &self.header {
            None => self.header = Some(self.header_of(line, record)),
            Some(None) => self.data_rows += 1,
            Some(Some(header)) => {
                self.data_rows += 1;
                // A row is checked whole; it is kept only without a problem.
                let checked = check_row(
                    header,
                    line,
                    record,
                    &mut self.first_named,
                    &mut self.problems,
                );
                self.rows.extend(checked);
            }
        }
    }

    /// Checks the header; `None` when rows cannot be read by it (a required column missing).
    fn header_of(&mut self, line: u64, record: &csv::ByteRecord) -> Option<Header> {
        let mut position = [None; Column::ALL.len()];
        for (at, raw) in record.iter().enumerate() {
            let name = String::from_utf8_lossy(raw);
            let Some(column) = Column::parse(&name) else {
                let hint = if name.is_empty() {
                    "an empty column name (a trailing comma?)".to_string()
                } else {
                    format!("unknown column; the columns are {}", column_list())
                };
                self.problems.push(line, &field(&name), hint);
                continue;
            };
            let slot = &mut position[column as usize];
            if slot.is_some() {
                self.problems.push(
                    line,
                    column.name(),
                    "the column appears twice in the header",
                );
            } else {
                *slot = Some(at);
            }
        }
        let mut usable = true;
        for required in [Column::User, Column::Action] {
            if position[required as usize].is_none() {
                self.problems.push(
                    line,
                    required.name(),
                    "missing column: the header must name user and action",
                );
                usable = false;
            }
        }
        usable.then_some(Header {
            line,
            width: record.len(),
            position,
        })
    }

    fn finish(mut self) -> Checked {
        // A header too broken to read rows by has been reported already.
        let header_usable = !matches!(self.header, Some(None));
        if self.data_rows == 0 && header_usable {
            self.problems.push(0, "", "no rows");
        }
        if !self.problems.is_empty() {
            // Nothing will be sent; the rows are of no more use.
            self.rows = Vec::new();
        }
        Checked {
            rows: self.rows,
            problems: self.problems,
        }
    }
}

fn column_list() -> String {
    Column::ALL.map(Column::name).join(", ")
}

fn action_list() -> String {
    ACTIONS.map(ImportAction::as_str).join(", ")
}

/// Checks one row against the header; the row when it has no problem. `first_named` has the
/// line of every account named so far, valid row or not: a second row for one is a problem that
/// names the first.
fn check_row(
    header: &Header,
    line: u64,
    record: &csv::ByteRecord,
    first_named: &mut HashMap<String, u64>,
    problems: &mut Problems,
) -> Option<ImportRow> {
    if record.len() != header.width {
        // `$pbkdf2-sha256$i=600000,l=32$…` has a comma: unquoted, it is two fields.
        let hint = if record.len() > header.width && record.iter().any(|f| f.starts_with(b"$")) {
            " (a password_hash with a comma must be in double quotes)"
        } else {
            ""
        };
        problems.push(
            line,
            ROW,
            format!(
                "wrong number of fields: {}, the header (line {}) has {}{hint}",
                record.len(),
                header.line,
                header.width
            ),
        );
        return None;
    }
    let before = problems.total;
    // Each present column as text; a column that is not UTF-8 or spans lines is a problem, and
    // is then left out of the checks below.
    let mut text: [Option<&str>; Column::ALL.len()] = [None; Column::ALL.len()];
    for column in Column::ALL {
        let Some(raw) = header.get(column, record) else {
            continue;
        };
        match std::str::from_utf8(raw) {
            Err(_) => problems.push(line, column.name(), "not valid UTF-8"),
            Ok(value) if value.contains(['\n', '\r']) => problems.push(
                line,
                column.name(),
                "a quoted field runs over several lines (is a closing quote missing?)",
            ),
            Ok("") => {}
            Ok(value) => text[column as usize] = Some(value),
        }
    }
    let value = |column: Column| text[column as usize];
    let unreadable = |column: Column| {
        header
            .get(column, record)
            .is_some_and(|raw| !raw.is_empty())
            && value(column).is_none()
    };

    let user = match value(Column::User) {
        None if unreadable(Column::User) => None,
        None => {
            problems.push(line, "user", "missing: every row names an account");
            None
        }
        Some(name) => match validate_user_name(name) {
            Ok(()) => {
                if let Some(&first) = first_named.get(name) {
                    problems.push(
                        line,
                        "user",
                        format!(
                            "account {name} is already named on line {first}; give each account \
                             one row"
                        ),
                    );
                } else {
                    first_named.insert(name.to_string(), line);
                }
                Some(name)
            }
            Err(why) => {
                problems.push(line, "user", why);
                None
            }
        },
    };
    let action = match value(Column::Action) {
        None if unreadable(Column::Action) => None,
        None => {
            problems.push(line, "action", format!("missing: one of {}", action_list()));
            None
        }
        Some(name) => match ImportAction::parse(name) {
            Some(action) => Some(action),
            None => {
                problems.push(
                    line,
                    "action",
                    format!("unknown action {}; one of {}", field(name), action_list()),
                );
                None
            }
        },
    };

    // The optional columns: refused when the action does not take them, else checked.
    let allowed = |column: Column, problems: &mut Problems| -> Option<&str> {
        let value = value(column)?;
        let (Some(action), Some(allowed)) = (action, column.allowed_with()) else {
            return Some(value);
        };
        if allowed.contains(&action) {
            Some(value)
        } else {
            let only = allowed.iter().map(|a| a.as_str()).collect::<Vec<_>>();
            problems.push(
                line,
                column.name(),
                format!(
                    "not allowed with {}: only with {}",
                    action.as_str(),
                    only.join(" and ")
                ),
            );
            None
        }
    };
    let uid = allowed(Column::Uid, problems)
        .and_then(|v| checked(line, Column::Uid, parse_uid(v), problems));
    let password_hash = allowed(Column::PasswordHash, problems)
        .and_then(|v| checked(line, Column::PasswordHash, check_hash(v), problems));
    if action == Some(ImportAction::SetHash)
        && value(Column::PasswordHash).is_none()
        && !unreadable(Column::PasswordHash)
    {
        problems.push(line, "password_hash", "required with set-hash");
    }
    let must_change = allowed(Column::MustChange, problems)
        .and_then(|v| checked(line, Column::MustChange, parse_bool(v), problems));
    let ttl_seconds = allowed(Column::Ttl, problems)
        .and_then(|v| checked(line, Column::Ttl, parse_ttl(v), problems));
    let reason = allowed(Column::Reason, problems).and_then(|v| {
        checked(
            line,
            Column::Reason,
            validate_field("reason", v).map(|()| v.to_string()),
            problems,
        )
    });

    if problems.total != before {
        return None;
    }
    Some(ImportRow {
        line,
        user: user?.to_string(),
        action: action?,
        uid,
        password_hash,
        must_change,
        ttl_seconds,
        reason,
    })
}

/// The value, or a problem with the column.
fn checked<T>(
    line: u64,
    column: Column,
    result: Result<T, String>,
    problems: &mut Problems,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(why) => {
            problems.push(line, column.name(), why);
            None
        }
    }
}

/// A uid as a file gives it: a u32 other than 4294967295, the "no uid" of chown(2).
fn parse_uid(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(uid) if uid != u32::MAX => Ok(uid),
        _ => Err(format!(
            "{} is not a uid (a number from 0 to {})",
            field(text),
            u32::MAX - 1
        )),
    }
}

/// `true`/`false`, `1`/`0`, `yes`/`no`, in any case.
fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!(
            "{} is not true or false (nor 1/0, yes/no)",
            field(text)
        )),
    }
}

/// The shape of a crypt(3) or PHC string: `$ID$…$…`, at least three `$`-separated parts after
/// the first `$`, the scheme id not empty, no blank or control character. Which schemes credd
/// accepts is its decision. The value is never repeated in a message: it is a hash.
fn check_hash(text: &str) -> Result<String, String> {
    if text.len() > MAX_HASH_LEN {
        return Err(format!("longer than {MAX_HASH_LEN} bytes"));
    }
    if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains a blank or a control character".into());
    }
    let well_formed = text.strip_prefix('$').is_some_and(|rest| {
        let mut parts = rest.split('$');
        parts.next().is_some_and(|id| !id.is_empty()) && parts.count() >= 2
    });
    if well_formed {
        Ok(text.to_string())
    } else {
        Err(
            "not a hash string like $pbkdf2-sha256$i=600000,l=32$SALT$HASH (it must start \
             with '$' and have at least three '$'-separated parts)"
                .into(),
        )
    }
}

/// A row an import stages with credd: a CSV row, or an entry of a shadow file.
pub trait Staged: Clone {
    /// The request that carries `rows`.
    fn request(rows: Vec<Self>) -> Request;
}

impl Staged for ImportRow {
    fn request(rows: Vec<Self>) -> Request {
        Request::ImportRows { rows }
    }
}

impl Staged for ShadowRow {
    fn request(rows: Vec<Self>) -> Request {
        Request::ImportShadowRows { rows }
    }
}

/// Cuts rows into `ImportRows` (or `ImportShadowRows`) requests: at most [`MAX_ROWS_PER_FRAME`]
/// rows each, and each encoded within [`FRAME_BUDGET`] (rows with long hashes and reasons make
/// fewer per frame).
pub struct Frames<'a, T = ImportRow> {
    rows: &'a [T],
}

impl<'a, T: Staged> Frames<'a, T> {
    pub fn new(rows: &'a [T]) -> Self {
        Frames { rows }
    }
}

/// One frame to send: the request and how many rows it carries.
#[derive(Debug)]
pub struct Frame {
    pub request: Request,
    pub rows: usize,
}

impl<T: Staged> Iterator for Frames<'_, T> {
    type Item = Result<Frame, ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rows.is_empty() {
            return None;
        }
        let mut count = self.rows.len().min(MAX_ROWS_PER_FRAME);
        loop {
            let request = T::request(self.rows[..count].to_vec());
            let bytes = match encode_request(&request) {
                Ok(body) => body.len(),
                Err(e) => return Some(Err(e)),
            };
            if bytes <= FRAME_BUDGET {
                self.rows = &self.rows[count..];
                return Some(Ok(Frame {
                    request,
                    rows: count,
                }));
            }
            if count == 1 {
                // Cannot happen with the limits checked above (a row is a few KiB at most).
                return Some(Err(ProtoError::FrameTooLarge {
                    len: bytes,
                    max: FRAME_BUDGET,
                }));
            }
            // As many rows as the budget holds at this frame's average row size, and fewer than
            // before, so that this ends.
            count = (count * FRAME_BUDGET / bytes).clamp(1, count - 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$pbkdf2-sha256$i=600000,l=32$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

    fn check(text: &str) -> Checked {
        check_csv(text.as_bytes()).unwrap()
    }

    /// The problems as `LINE: field: message`.
    fn problems(text: &str) -> Vec<String> {
        let checked = check(text);
        assert!(
            checked.rows.is_empty(),
            "rows are dropped once a problem is found"
        );
        checked
            .problems
            .shown
            .iter()
            .map(|p| format!("{}: {}: {}", p.line, p.field, p.message))
            .collect()
    }

    fn rows(text: &str) -> Vec<ImportRow> {
        let checked = check(text);
        assert!(checked.problems.is_empty(), "{:?}", checked.problems.shown);
        checked.rows
    }

    fn row(line: u64, user: &str, action: ImportAction) -> ImportRow {
        ImportRow {
            line,
            user: user.into(),
            action,
            uid: None,
            password_hash: None,
            must_change: None,
            ttl_seconds: None,
            reason: None,
        }
    }

    #[test]
    fn every_action_with_its_columns() {
        let text = format!(
            "user,action,uid,password_hash,must_change,ttl,reason\n\
             alice,add,1001,\"{HASH}\",true,,\n\
             bob,remove,,,,,\n\
             carol,reset,,,,30m,\n\
             dave,lock,,,,,left the company\n\
             erin,unlock,,,,,\n\
             frank,disable,,,,,\n\
             grace,enable,,,,,\n\
             heidi,set-hash,,\"{HASH}\",no,,\n\
             ivan,add,,,,,\n"
        );
        let got = rows(&text);
        let mut alice = row(2, "alice", ImportAction::Add);
        alice.uid = Some(1001);
        alice.password_hash = Some(HASH.into());
        alice.must_change = Some(true);
        let mut carol = row(4, "carol", ImportAction::Reset);
        carol.ttl_seconds = Some(1800);
        let mut dave = row(5, "dave", ImportAction::Lock);
        dave.reason = Some("left the company".into());
        let mut heidi = row(9, "heidi", ImportAction::SetHash);
        heidi.password_hash = Some(HASH.into());
        heidi.must_change = Some(false);
        assert_eq!(
            got,
            vec![
                alice,
                row(3, "bob", ImportAction::Remove),
                carol,
                dave,
                row(6, "erin", ImportAction::Unlock),
                row(7, "frank", ImportAction::Disable),
                row(8, "grace", ImportAction::Enable),
                heidi,
                row(10, "ivan", ImportAction::Add),
            ]
        );
    }

    #[test]
    fn columns_come_in_any_order_and_optional_ones_may_be_left_out() {
        let got = rows("action,user\nremove,alice\nlock,bob\n");
        assert_eq!(
            got,
            vec![
                row(2, "alice", ImportAction::Remove),
                row(3, "bob", ImportAction::Lock)
            ]
        );
        let got = rows("reason,action,user\nretired,lock,carol\n");
        assert_eq!(got[0].reason.as_deref(), Some("retired"));
    }

    #[test]
    fn a_byte_order_mark_crlf_and_blank_lines_keep_line_numbers_right() {
        let text = "\u{feff}user,action\r\nalice,add\r\n\r\nbob,add\r\n\n\ncarol,frob\r\n";
        assert_eq!(
            problems(text),
            [
                "7: action: unknown action frob; one of add, remove, reset, lock, unlock, disable, \
                 enable, set-hash"
            ]
        );
        let got = rows("\u{feff}user,action\r\nalice,add\r\n\r\nbob,add\r\n");
        assert_eq!(
            got,
            vec![
                row(2, "alice", ImportAction::Add),
                row(4, "bob", ImportAction::Add)
            ]
        );
        // No line end after the last row.
        assert_eq!(rows("user,action\nalice,add")[0].line, 2);
    }

    #[test]
    fn rfc4180_quoting() {
        let got = rows(
            "\"user\",\"action\",\"reason\"\n\
             \"alice\",\"lock\",\"said \"\"bye\"\", left\"\n\
             bob,lock,\"a, b\"\n",
        );
        assert_eq!(got[0].reason.as_deref(), Some("said \"bye\", left"));
        assert_eq!(got[1].reason.as_deref(), Some("a, b"));
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn a_quoted_field_over_several_lines_is_a_problem_at_its_first_line() {
        // An unterminated quote swallows the rest of the file.
        let text = "user,action,reason\nalice,lock,\"oops\nbob,add,\ncarol,add,\n";
        assert_eq!(
            problems(text),
            ["2: reason: a quoted field runs over several lines (is a closing quote missing?)"]
        );
        // Lines inside a quoted field are counted for the rows after it.
        let text = "user,action,reason\nalice,lock,\"two\nlines\"\nbob,frob,\n";
        let got = problems(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(
            got[0].starts_with("2: reason: a quoted field runs"),
            "{got:?}"
        );
        assert!(
            got[1].starts_with("4: action: unknown action frob"),
            "{got:?}"
        );
    }

    #[test]
    fn wrong_number_of_fields() {
        assert_eq!(
            problems("user,action\nalice,add,extra\nbob\ncarol,add\n"),
            [
                "2: row: wrong number of fields: 3, the header (line 1) has 2",
                "3: row: wrong number of fields: 1, the header (line 1) has 2",
            ]
        );
    }

    #[test]
    fn an_unquoted_phc_string_is_two_fields_and_the_message_says_so() {
        let text = format!("user,action,password_hash\nalice,add,{HASH}\nbob,add,\"{HASH}\"\n");
        assert_eq!(
            problems(&text),
            [
                "2: row: wrong number of fields: 4, the header (line 1) has 3 (a password_hash \
                 with a comma must be in double quotes)"
            ]
        );
    }

    #[test]
    fn header_problems_name_the_column() {
        assert_eq!(
            problems("user,action,colour\nalice,add,red\n"),
            [
                "1: colour: unknown column; the columns are user, action, uid, password_hash, \
                 must_change, ttl, reason"
            ]
        );
        // Case-sensitive.
        let got = problems("User,action\nalice,add\n");
        assert!(got[0].starts_with("1: User: unknown column;"), "{got:?}");
        assert_eq!(
            got[1],
            "1: user: missing column: the header must name user and action"
        );
        assert_eq!(
            problems("user,action,user\nalice,add,bob\n"),
            ["1: user: the column appears twice in the header"]
        );
        assert_eq!(
            problems("user,action,\nalice,add,\n"),
            ["1: \"\": an empty column name (a trailing comma?)"]
        );
        assert_eq!(
            problems("user\nalice\n"),
            ["1: action: missing column: the header must name user and action"]
        );
        // The header is the first line that is not blank.
        assert_eq!(
            problems("\n\nuser,action\nalice,frob\n")[0],
            "4: action: unknown action frob; one of add, remove, reset, lock, unlock, disable, \
             enable, set-hash"
        );
    }

    #[test]
    fn an_empty_or_header_only_file_has_no_rows() {
        for text in [
            "",
            "\n\n",
            "\u{feff}",
            "user,action\n",
            "user,action\r\n\r\n",
        ] {
            assert_eq!(problems(text), ["0: : no rows"], "{text:?}");
        }
    }

    #[test]
    fn missing_user_and_action_and_unknown_actions() {
        let got = problems("user,action\n,add\nalice,\nbob,Add\n,\n");
        assert_eq!(
            got,
            [
                "2: user: missing: every row names an account",
                "3: action: missing: one of add, remove, reset, lock, unlock, disable, enable, \
                 set-hash",
                "4: action: unknown action Add; one of add, remove, reset, lock, unlock, disable, \
                 enable, set-hash",
                "5: user: missing: every row names an account",
                "5: action: missing: one of add, remove, reset, lock, unlock, disable, enable, \
                 set-hash",
            ]
        );
    }

    #[test]
    fn bad_user_names() {
        let long = "a".repeat(256);
        let text =
            format!("user,action\n\"a b\",add\n-rf,add\n{long},add\n\"x\u{1b}[2J\",add\nok,add\n");
        assert_eq!(
            problems(&text),
            [
                "2: user: user name contains the character ' '",
                "3: user: user name starts with '-'",
                "4: user: user name is longer than 255 bytes",
                "5: user: user name contains the character '\\u{1b}'",
            ]
        );
    }

    #[test]
    fn an_account_named_twice_names_both_lines() {
        assert_eq!(
            problems("user,action\nalice,add\nbob,lock\n\nalice,reset\nalice,remove\n"),
            [
                "5: user: account alice is already named on line 2; give each account one row",
                "6: user: account alice is already named on line 2; give each account one row",
            ]
        );
        // Rows with other problems count too.
        assert_eq!(
            problems("user,action,uid\nalice,add,x\nalice,frob,\n"),
            [
                "2: uid: x is not a uid (a number from 0 to 4294967294)",
                "3: user: account alice is already named on line 2; give each account one row",
                "3: action: unknown action frob; one of add, remove, reset, lock, unlock, \
                 disable, enable, set-hash",
            ]
        );
    }

    #[test]
    fn columns_are_allowed_only_with_their_actions() {
        let text = format!(
            "user,action,uid,password_hash,must_change,ttl,reason\n\
             a,reset,5,,,,\n\
             b,lock,,\"{HASH}\",,,\n\
             c,remove,,,yes,,\n\
             d,add,,,,15m,\n\
             e,unlock,,,,,why\n\
             f,set-hash,7,,,,\n\
             g,set-hash,,,,,\n"
        );
        assert_eq!(
            problems(&text),
            [
                "2: uid: not allowed with reset: only with add",
                "3: password_hash: not allowed with lock: only with add and set-hash",
                "4: must_change: not allowed with remove: only with add and set-hash",
                "5: ttl: not allowed with add: only with reset",
                "6: reason: not allowed with unlock: only with lock",
                "7: uid: not allowed with set-hash: only with add",
                "7: password_hash: required with set-hash",
                "8: password_hash: required with set-hash",
            ]
        );
    }

    #[test]
    fn bad_values() {
        let long_hash = format!("$6${}$x", "s".repeat(MAX_HASH_LEN));
        let text = format!(
            "user,action,uid,password_hash,must_change,ttl,reason\n\
             a,add,4294967295,,,,\n\
             b,add,-1,,,,\n\
             c,add,abc,,,,\n\
             d,add,,plaintext,,,\n\
             e,add,,$pbkdf2-sha256$only,,,\n\
             f,add,,\"$1$a b$c\",,,\n\
             g,add,,{long_hash},,,\n\
             h,add,,,maybe,,\n\
             i,reset,,,,1d,\n\
             j,reset,,,,30s,\n\
             k,reset,,,,25h,\n\
             l,lock,,,,,{}\n\
             m,add,,$$x$y,,,\n\
             n,add,,!,,,\n",
            "r".repeat(256)
        );
        assert_eq!(
            problems(&text),
            [
                "2: uid: 4294967295 is not a uid (a number from 0 to 4294967294)",
                "3: uid: -1 is not a uid (a number from 0 to 4294967294)",
                "4: uid: abc is not a uid (a number from 0 to 4294967294)",
                "5: password_hash: not a hash string like $pbkdf2-sha256$i=600000,l=32$SALT$HASH \
                 (it must start with '$' and have at least three '$'-separated parts)",
                "6: password_hash: not a hash string like $pbkdf2-sha256$i=600000,l=32$SALT$HASH \
                 (it must start with '$' and have at least three '$'-separated parts)",
                "7: password_hash: contains a blank or a control character",
                "8: password_hash: longer than 512 bytes",
                "9: must_change: maybe is not true or false (nor 1/0, yes/no)",
                "10: ttl: not a duration like 90s, 15m, 1h or 1h30m",
                "11: ttl: a code's lifetime must be from 1m to 24h",
                "12: ttl: a code's lifetime must be from 1m to 24h",
                "13: reason: reason is longer than 255 bytes",
                "14: password_hash: not a hash string like $pbkdf2-sha256$i=600000,l=32$SALT$HASH \
                 (it must start with '$' and have at least three '$'-separated parts)",
                "15: password_hash: not a hash string like $pbkdf2-sha256$i=600000,l=32$SALT$HASH \
                 (it must start with '$' and have at least three '$'-separated parts)",
            ]
        );
        // A hash is never repeated in a message.
        assert!(!problems("user,action,password_hash\na,add,secretish\n")[0].contains("secretish"));
    }

    #[test]
    fn other_crypt_strings_and_boolean_spellings_pass() {
        let text = "user,action,password_hash,must_change\n\
                    a,add,$6$rounds=5000$salt$hash,TRUE\n\
                    b,add,$y$j9T$salt$hash,0\n\
                    c,set-hash,$2b$12$saltsaltsalthashhash,Yes\n\
                    d,add,$1$$hash,no\n";
        let got = rows(text);
        assert_eq!(
            got.iter().map(|r| r.must_change).collect::<Vec<_>>(),
            [Some(true), Some(false), Some(true), Some(false)]
        );
        assert_eq!(
            got[0].password_hash.as_deref(),
            Some("$6$rounds=5000$salt$hash")
        );
    }

    #[test]
    fn control_characters_in_a_reason() {
        assert_eq!(
            problems("user,action,reason\na,lock,\"tab\there\"\n"),
            ["2: reason: reason contains a control character"]
        );
    }

    #[test]
    fn invalid_utf8_is_a_problem_of_its_column() {
        let mut text = b"user,action,reason\nalice,lock,caf".to_vec();
        text.extend_from_slice(&[0xe9, b'\n']);
        text.extend_from_slice(b"bob,\xff,\n");
        let checked = check_csv(&text[..]).unwrap();
        let got: Vec<_> = checked
            .problems
            .shown
            .iter()
            .map(|p| format!("{}: {}: {}", p.line, p.field, p.message))
            .collect();
        assert_eq!(
            got,
            ["2: reason: not valid UTF-8", "3: action: not valid UTF-8"]
        );
    }

    #[test]
    fn problems_are_capped_and_counted() {
        let mut text = String::from("user,action\n");
        for i in 0..250 {
            text.push_str(&format!("u{i},frob\n"));
        }
        let checked = check(&text);
        assert_eq!(checked.problems.shown.len(), MAX_PROBLEMS);
        assert_eq!(checked.problems.total, 250);
        assert_eq!(checked.problems.more(), 150);
        assert_eq!(checked.problems.shown[99].line, 101);
    }

    #[test]
    fn the_source_credd_records_is_one_short_line() {
        assert_eq!(audit_source("/root/users.csv"), "/root/users.csv");
        assert_eq!(audit_source("a\nb.csv"), "a\\nb.csv");
        let long = format!("/{}/é/users.csv", "d".repeat(300));
        let source = audit_source(&long);
        assert!(source.len() <= MAX_FIELD_LEN, "{}", source.len());
        assert!(source.starts_with('\u{2026}') && source.ends_with("/é/users.csv"));
        assert!(validate_field("source", &source).is_ok());
        let wide = "é".repeat(200);
        assert!(audit_source(&wide).len() <= MAX_FIELD_LEN);
    }

    #[test]
    fn counts_per_action() {
        let checked = check("user,action\na,add\nb,reset\nc,reset\n");
        assert_eq!(checked.count(ImportAction::Reset), 2);
        let actions = checked.actions();
        assert_eq!(actions.len(), 8);
        assert_eq!(
            (actions["add"], actions["reset"], actions["set-hash"]),
            (1, 2, 0)
        );
    }

    #[test]
    fn frames_hold_at_most_500_rows_within_the_budget() {
        let short: Vec<ImportRow> = (0..1200)
            .map(|i| row(i + 2, &format!("user{i}"), ImportAction::Remove))
            .collect();
        let frames: Vec<Frame> = Frames::new(&short).map(Result::unwrap).collect();
        // Rows without optional values are small (absent fields are not sent): the row cap
        // decides before the byte budget does.
        assert_eq!(
            frames.iter().map(|f| f.rows).collect::<Vec<_>>(),
            [500, 500, 200]
        );

        let long_hash = format!("$pbkdf2-sha256$i=600000,l=32${}$hash", "s".repeat(480));
        let long: Vec<ImportRow> = (0..1200)
            .map(|i| {
                let mut r = row(i + 2, &format!("{i}{}", "u".repeat(200)), ImportAction::Add);
                r.password_hash = Some(long_hash.clone());
                r
            })
            .collect();
        let frames: Vec<Frame> = Frames::new(&long).map(Result::unwrap).collect();
        assert!(frames.len() > 12, "{}", frames.len());
        let mut sent = Vec::new();
        for frame in &frames {
            let bytes = encode_request(&frame.request).unwrap().len();
            assert!(bytes <= FRAME_BUDGET && frame.rows <= MAX_ROWS_PER_FRAME);
            let Request::ImportRows { rows } = &frame.request else {
                panic!("{frame:?}")
            };
            assert_eq!(rows.len(), frame.rows);
            sent.extend(rows.iter().cloned());
        }
        // Close to the budget: the first frame wastes less than two rows' worth.
        let first = encode_request(&frames[0].request).unwrap().len();
        assert!(first > FRAME_BUDGET - 2 * 800, "{first}");
        assert_eq!(sent, long);
    }
}
