//! Property tests of `credctl import`'s file checker on generated files: nothing panics, every
//! problem names a line of the file and a field on one line, a valid file of any shape (columns in
//! any order, quoting, CRLF, blank lines, a byte order mark) has no problem and gives its rows with
//! their lines, and one bad value is reported at its own line and column. The same invariants
//! drive the `csv` fuzz target (`fuzz/`, docs/fuzzing.md).

use credctl::import::{Checked, MAX_PROBLEMS, check_csv};
use credd_proto::{ImportAction, ImportRow};
use proptest::prelude::*;

/// Lines as an editor counts them: line feeds, plus one for a last line without one.
fn line_count(input: &[u8]) -> u64 {
    let feeds = input.iter().filter(|&&b| b == b'\n').count() as u64;
    feeds + u64::from(!input.is_empty() && !input.ends_with(b"\n"))
}

fn check(input: &[u8]) -> Result<Checked, TestCaseError> {
    check_csv(input).map_err(|e| TestCaseError::fail(format!("reading from memory failed: {e}")))
}

/// The invariants every input keeps, valid or not.
fn check_invariants(input: &[u8]) -> Result<Checked, TestCaseError> {
    let checked = check(input)?;
    let lines = line_count(input);
    let problems = &checked.problems;
    prop_assert!(problems.shown.len() <= MAX_PROBLEMS);
    prop_assert!(problems.total >= problems.shown.len() as u64);
    let mut previous = 0;
    for p in &problems.shown {
        prop_assert!(p.line <= lines, "line {} of {}: {:?}", p.line, lines, p);
        if p.line > 0 {
            prop_assert!(
                p.line >= previous,
                "out of line order: {:?}",
                problems.shown
            );
            previous = p.line;
            prop_assert!(!p.field.is_empty(), "no field: {:?}", p);
        }
        prop_assert!(!p.field.contains(char::is_control), "{:?}", p);
        prop_assert!(!p.message.trim().is_empty(), "{:?}", p);
        prop_assert!(!p.message.contains(char::is_control), "{:?}", p);
    }
    if problems.is_empty() {
        prop_assert!(!checked.rows.is_empty());
    } else {
        prop_assert!(checked.rows.is_empty());
    }
    Ok(checked)
}

/// Pieces that CSV files and this format are made of, to build near-miss files from.
fn csvish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop::sample::select(vec![
        "user",
        "action",
        "uid",
        "password_hash",
        "must_change",
        "ttl",
        "reason",
        "add",
        "remove",
        "reset",
        "lock",
        "set-hash",
        "alice",
        "bob",
        "1001",
        "30m",
        "yes",
        ",",
        ",",
        ",",
        "\"",
        "\"\"",
        "\n",
        "\n",
        "\r\n",
        "\r",
        "\u{feff}",
        " ",
        "$pbkdf2-sha256$i=1,l=32$s$h",
        "-x",
        "\u{1b}",
        "\t",
        "é",
        "\u{0}",
    ]);
    prop::collection::vec(piece, 0..60).prop_map(|v| v.concat().into_bytes())
}

/// An optional column, and its value for a row of `action`, when that action takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Opt {
    Uid,
    Hash,
    MustChange,
    Ttl,
    Reason,
}

impl Opt {
    fn name(self) -> &'static str {
        match self {
            Opt::Uid => "uid",
            Opt::Hash => "password_hash",
            Opt::MustChange => "must_change",
            Opt::Ttl => "ttl",
            Opt::Reason => "reason",
        }
    }

    fn allowed(self, action: ImportAction) -> bool {
        use ImportAction::*;
        match self {
            Opt::Uid => action == Add,
            Opt::Hash | Opt::MustChange => matches!(action, Add | SetHash),
            Opt::Ttl => action == Reset,
            Opt::Reason => action == Lock,
        }
    }
}

const OPTS: [Opt; 5] = [Opt::Uid, Opt::Hash, Opt::MustChange, Opt::Ttl, Opt::Reason];
const ACTIONS: [ImportAction; 8] = credctl::import::ACTIONS;

/// One generated row: the values it fills (text as written, before quoting) and the row credctl
/// must make of it.
#[derive(Debug, Clone)]
struct GenRow {
    action: ImportAction,
    uid: Option<u32>,
    hash: Option<String>,
    must_change: Option<(String, bool)>,
    ttl: Option<(String, u64)>,
    reason: Option<String>,
    name: String,
}

fn gen_row() -> impl Strategy<Value = GenRow> {
    (
        prop::sample::select(ACTIONS.to_vec()),
        "[a-z_][a-z0-9_.@$-]{0,12}",
        proptest::option::of(0..u32::MAX),
        proptest::option::of(
            (
                "(pbkdf2-sha256|6|y|2b)",
                "[a-z0-9=,./]{1,20}",
                "[A-Za-z0-9./]{1,40}",
            )
                .prop_map(|(id, salt, hash)| format!("${id}${salt}${hash}")),
        ),
        proptest::option::of(
            prop::sample::select(vec![
                ("true", true),
                ("TRUE", true),
                ("1", true),
                ("Yes", true),
                ("false", false),
                ("0", false),
                ("no", false),
                ("NO", false),
            ])
            .prop_map(|(s, b)| (s.to_string(), b)),
        ),
        proptest::option::of((0u64..24, 0u64..60, 0u64..60).prop_filter_map(
            "1m to 24h",
            |(h, m, s)| {
                let total = h * 3600 + m * 60 + s;
                let mut text = String::new();
                for (n, unit) in [(h, 'h'), (m, 'm'), (s, 's')] {
                    if n > 0 {
                        text.push_str(&format!("{n}{unit}"));
                    }
                }
                (60..=86_400).contains(&total).then_some((text, total))
            },
        )),
        // Free text: commas, quotes and non-ASCII need quoting or not, no control character.
        proptest::option::of("[a-zA-Z0-9 ,\"'é€.-]{1,40}"),
    )
        .prop_map(|(action, name, uid, hash, must_change, ttl, reason)| {
            let mut row = GenRow {
                action,
                uid,
                hash,
                must_change,
                ttl,
                reason,
                name,
            };
            // Only the columns the action takes are filled; set-hash needs its hash.
            if !Opt::Uid.allowed(action) {
                row.uid = None;
            }
            if !Opt::Hash.allowed(action) {
                row.hash = None;
            } else if action == ImportAction::SetHash && row.hash.is_none() {
                row.hash = Some("$6$salt$hash".into());
            }
            if !Opt::MustChange.allowed(action) {
                row.must_change = None;
            }
            if !Opt::Ttl.allowed(action) {
                row.ttl = None;
            }
            if !Opt::Reason.allowed(action) {
                row.reason = None;
            }
            row
        })
}

/// A generated file: its bytes and the rows it must give.
#[derive(Debug)]
struct GenFile {
    text: String,
    rows: Vec<ImportRow>,
    /// The user column comes first (else the action column does); the other columns follow.
    user_first: bool,
}

/// The row's line with its action field (first or second, quoted or not) replaced by `action`.
fn with_action(line: &str, user_first: bool, action: &str) -> String {
    let (before, rest) = if user_first {
        let comma = line.find(',').expect("a row has a user and an action") + 1;
        line.split_at(comma)
    } else {
        line.split_at(0)
    };
    // Action names have no comma or quote inside, so the field ends at the next comma or CR.
    let end = rest.find([',', '\r']).unwrap_or(rest.len());
    format!("{before}{action}{}", &rest[end..])
}

/// Quoted when it must be (or when `always`), RFC 4180 style.
fn csv_field(value: &str, always: bool) -> String {
    if always || value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

#[allow(clippy::type_complexity)]
fn gen_file() -> impl Strategy<Value = GenFile> {
    (
        prop::collection::vec(gen_row(), 1..30),
        // Which optional columns the header has, in which order.
        prop::sample::subsequence(OPTS.to_vec(), 0..=OPTS.len()).prop_shuffle(),
        any::<bool>(), // user before action
        any::<bool>(), // byte order mark
        any::<bool>(), // CRLF
        any::<bool>(), // line end after the last row
        any::<u64>(),  // seed for quoting and blank lines
    )
        .prop_map(|(mut rows, opts, user_first, bom, crlf, final_eol, seed)| {
            // set-hash needs the password_hash column: without it, such rows enable instead.
            if !opts.contains(&Opt::Hash) {
                for r in rows
                    .iter_mut()
                    .filter(|r| r.action == ImportAction::SetHash)
                {
                    r.action = ImportAction::Enable;
                    r.hash = None;
                    r.must_change = None;
                }
            }
            let mut bits = seed;
            let mut coin = move |one_in: u64| {
                bits = bits.rotate_left(7) ^ 0x9e37_79b9_7f4a_7c15;
                bits % one_in == 0
            };
            let mut columns: Vec<&str> = if user_first {
                vec!["user", "action"]
            } else {
                vec!["action", "user"]
            };
            columns.extend(opts.iter().map(|o| o.name()));
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            if bom {
                text.push('\u{feff}');
            }
            let header: Vec<String> = columns.iter().map(|c| csv_field(c, coin(4))).collect();
            text.push_str(&header.join(","));
            let mut expected = Vec::new();
            for (i, r) in rows.iter().enumerate() {
                text.push_str(eol);
                while coin(5) {
                    text.push_str(eol);
                }
                let line = text.matches('\n').count() as u64 + 1;
                // Unique names: the generated one, a '+' (which generated names never hold) and
                // the row's index. Without the separator "_1" of row 0 and "_" of row 10 collide.
                let user = format!("{}+{i}", r.name);
                let mut fields = Vec::new();
                for column in &columns {
                    let value = match *column {
                        "user" => user.clone(),
                        "action" => r.action.as_str().to_string(),
                        "uid" => r.uid.map(|u| u.to_string()).unwrap_or_default(),
                        "password_hash" => r.hash.clone().unwrap_or_default(),
                        "must_change" => r
                            .must_change
                            .as_ref()
                            .map(|m| m.0.clone())
                            .unwrap_or_default(),
                        "ttl" => r.ttl.as_ref().map(|t| t.0.clone()).unwrap_or_default(),
                        _ => r.reason.clone().unwrap_or_default(),
                    };
                    fields.push(csv_field(&value, coin(6)));
                }
                text.push_str(&fields.join(","));
                let has = |o: Opt| opts.contains(&o);
                expected.push(ImportRow {
                    line,
                    user,
                    action: r.action,
                    uid: r.uid.filter(|_| has(Opt::Uid)),
                    password_hash: r.hash.clone().filter(|_| has(Opt::Hash)),
                    must_change: r
                        .must_change
                        .as_ref()
                        .filter(|_| has(Opt::MustChange))
                        .map(|m| m.1),
                    ttl_seconds: r.ttl.as_ref().filter(|_| has(Opt::Ttl)).map(|t| t.1),
                    reason: r.reason.clone().filter(|_| has(Opt::Reason)),
                });
            }
            if final_eol {
                text.push_str(eol);
            }
            GenFile {
                text,
                rows: expected,
                user_first,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic_and_problems_name_a_line(
        data in prop::collection::vec(any::<u8>(), 0..1024),
    ) {
        check_invariants(&data)?;
    }

    #[test]
    fn csv_like_input_never_panics_and_problems_name_a_line(data in csvish()) {
        check_invariants(&data)?;
    }

    /// A valid file of any shape has no problem and gives every row, each with its own line.
    #[test]
    fn valid_files_have_no_problems(file in gen_file()) {
        let checked = check_invariants(file.text.as_bytes())?;
        prop_assert!(checked.problems.is_empty(), "{:?}\n{}", checked.problems.shown, file.text);
        prop_assert_eq!(checked.rows, file.rows);
    }

    /// One bad action is one problem, at that row's line and in the action column; a valid file
    /// cut at any byte still keeps the invariants.
    #[test]
    fn one_bad_value_is_named_by_its_line_and_column(
        file in gen_file(),
        pick in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let bad = &file.rows[pick.index(file.rows.len())];
        let mut lines: Vec<String> = file.text.split('\n').map(str::to_string).collect();
        let at = (bad.line - 1) as usize;
        lines[at] = with_action(&lines[at], file.user_first, "frob");
        let text = lines.join("\n");
        let checked = check_invariants(text.as_bytes())?;
        let got: Vec<(u64, &str)> =
            checked.problems.shown.iter().map(|p| (p.line, p.field.as_str())).collect();
        prop_assert_eq!(got, vec![(bad.line, "action")], "{}", text);

        let cut = cut.index(file.text.len() + 1);
        check_invariants(&file.text.as_bytes()[..cut])?;
    }
}
