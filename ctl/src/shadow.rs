//! `credctl import --from-shadow`: a shadow file (`/etc/shadow`, or `getent shadow` output), read
//! and checked whole before anything is sent, like a CSV file (docs/migration.md).
//!
//! Every line is `sp_namp:sp_pwdp:sp_lstchg:sp_min:sp_max:sp_warn:sp_inact:sp_expire:sp_flag`
//! (shadow(5)). A line that is not — the wrong number of fields, a bad name, a number of days
//! that is not one, a hash of a known scheme that is damaged, an account named twice — is a
//! problem named `FILE:LINE: field: message`, and nothing is sent. Entries that are fine but
//! cannot be taken over are skipped, each with its reason: no password, a locked one (`!`, `!!`,
//! `*`), a scheme credd does not verify. credd may skip more when it gets the rest (an account it
//! holds already, a legacy scheme its policy refuses).
//!
//! What the entry says beyond the hash is kept where credd has an equivalent, as pam_unix reads
//! it: `sp_lstchg = 0` (the administrator forced a change) becomes must-change, and an
//! `sp_expire` day that has come makes the account disabled. Password ageing (`sp_min`,
//! `sp_max`, `sp_warn`, `sp_inact`) has no equivalent in credd and is not carried over.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read};

use credd_proto::{HashScheme, ImportSkip, MODERN_CRYPT_SCHEMES, ShadowRow, validate_user_name};

use crate::import::Problems;
use crate::output::field;

/// The file `--from-shadow` reads without FILE, and the only one `--lock-shadow` locks entries in.
pub const SYSTEM_SHADOW: &str = "/etc/shadow";

/// shadow(5)'s fields, by their names in `struct spwd`, as problems name them.
pub const FIELDS: [&str; 9] = [
    "sp_namp",
    "sp_pwdp",
    "sp_lstchg",
    "sp_min",
    "sp_max",
    "sp_warn",
    "sp_inact",
    "sp_expire",
    "sp_flag",
];

/// The `field` of a problem with a line as a whole (its number of fields, its encoding).
const ENTRY: &str = "entry";

/// A line longer than this is no shadow entry (a name of 255 bytes, a hash of a few hundred).
const MAX_LINE: usize = 4096;

/// What a shadow file holds for credd.
#[derive(Debug, Default)]
pub struct ShadowChecked {
    /// The entries to send, in line order. Empty when there is a problem.
    pub rows: Vec<ShadowRow>,
    /// The entries left out, in line order.
    pub skipped: Vec<ImportSkip>,
    pub problems: Problems,
}

/// Reads and checks a whole shadow file. `users`: only these accounts (all when empty); each
/// must have an entry. `today`: days since 1970-01-01, for `sp_expire`. An `Err` is a failure to
/// read; everything wrong with the content is in [`ShadowChecked::problems`].
pub fn check_shadow(input: impl Read, users: &[String], today: i64) -> io::Result<ShadowChecked> {
    let wanted: BTreeSet<&str> = users.iter().map(String::as_str).collect();
    let mut reader = BufReader::new(input);
    let mut out = ShadowChecked::default();
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        // Bounded: a file without line ends (a wrong file) must not be read into memory whole.
        let n = (&mut reader)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line += 1;
        if buf.len() > MAX_LINE && buf.last() != Some(&b'\n') {
            out.problems
                .push(line, ENTRY, format!("longer than {MAX_LINE} bytes"));
            // Skip to the end of this line, so that the next one is counted right.
            let mut rest = Vec::new();
            reader.read_until(b'\n', &mut rest)?;
            continue;
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(&buf) else {
            out.problems.push(line, ENTRY, "not valid UTF-8");
            continue;
        };
        if let Some(entry) = check_line(line, text, &mut first_line, &mut out.problems)
            && (wanted.is_empty() || wanted.contains(entry.name))
        {
            take_over(line, &entry, today, &mut out);
        }
    }
    for user in &wanted {
        if !first_line.contains_key(*user) {
            out.problems.push(
                0,
                "",
                format!("--users names {user}, who has no entry in the file"),
            );
        }
    }
    if !out.problems.is_empty() {
        out.rows.clear();
    }
    Ok(out)
}

/// One line's fields, checked.
struct Entry<'a> {
    name: &'a str,
    hash: &'a str,
    last_change: Option<i64>,
    expire: Option<i64>,
}

/// Checks one line's form; the entry when it has no problem. NIS compat lines (`+name`,
/// `-name`) hold no hash and are passed over.
fn check_line<'a>(
    line: u64,
    text: &'a str,
    first_line: &mut HashMap<String, u64>,
    problems: &mut Problems,
) -> Option<Entry<'a>> {
    let fields: Vec<&str> = text.split(':').collect();
    if fields.len() != FIELDS.len() {
        problems.push(
            line,
            ENTRY,
            format!(
                "{} fields; a shadow entry has 9 ({})",
                fields.len(),
                FIELDS.join(":")
            ),
        );
        return None;
    }
    let before = problems.total;
    let name = fields[0];
    if name.starts_with(['+', '-']) {
        return None;
    }
    match validate_user_name(name) {
        Err(why) => problems.push(line, FIELDS[0], why),
        Ok(()) => match first_line.get(name) {
            Some(first) => problems.push(
                line,
                FIELDS[0],
                format!("{name} has two entries (the first on line {first})"),
            ),
            None => {
                first_line.insert(name.to_string(), line);
            }
        },
    }
    // The hash is never repeated in a message.
    if fields[1]
        .chars()
        .any(|c| c.is_control() || c.is_whitespace())
    {
        problems.push(line, FIELDS[1], "contains a blank or a control character");
    }
    let mut days = [None; 9];
    for (i, value) in fields.iter().enumerate().skip(2).take(6) {
        match parse_days(value) {
            Ok(n) => days[i] = n,
            Err(why) => problems.push(line, FIELDS[i], why),
        }
    }
    if fields[8].chars().any(char::is_control) {
        problems.push(line, FIELDS[8], "contains a control character");
    }
    (problems.total == before).then_some(Entry {
        name,
        hash: fields[1],
        last_change: days[2],
        expire: days[7],
    })
}

/// A number of days as shadow(5) writes it: empty (or -1, as some tools write it) for "not set".
fn parse_days(text: &str) -> Result<Option<i64>, String> {
    if text.is_empty() || text == "-1" {
        return Ok(None);
    }
    match text.parse::<i64>() {
        Ok(n) if n >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(Some(n)),
        _ => Err(format!(
            "{} is not a number of days (nor empty)",
            field(text)
        )),
    }
}

/// Decides what becomes of a well-formed entry: a row to send, a skip with its reason, or a
/// problem (a damaged hash of a scheme credd knows).
fn take_over(line: u64, entry: &Entry<'_>, today: i64, out: &mut ShadowChecked) {
    let hash = entry.hash;
    let skip = |out: &mut ShadowChecked, reason: String| {
        out.skipped.push(ImportSkip {
            line,
            user: entry.name.to_string(),
            reason,
        });
    };
    let locked = if hash.starts_with("!!") {
        Some("'!!' (no password set, or locked)")
    } else if hash.starts_with('!') {
        Some("'!' (locked)")
    } else if hash.starts_with('*') {
        Some("'*' (no password login)")
    } else {
        None
    };
    if let Some(prefix) = locked {
        return skip(
            out,
            format!("locked: the password field starts with {prefix}"),
        );
    }
    if hash.is_empty() {
        return skip(
            out,
            "no password: the password field is empty (a login without a password is not taken \
             over)"
                .into(),
        );
    }
    let scheme = match HashScheme::of(hash) {
        Some(scheme) if scheme.is_crypt() => scheme,
        _ => {
            return skip(
                out,
                format!(
                    "unknown hash scheme{}; credd takes over {MODERN_CRYPT_SCHEMES} (and \
                     md5crypt, descrypt, bsdicrypt with [hashing] accept_legacy = true)",
                    scheme_id(hash)
                ),
            );
        }
    };
    if let Err(why) = credd_proto::check_shape(scheme, hash) {
        return out.problems.push(line, FIELDS[1], why);
    }
    out.rows.push(ShadowRow {
        line,
        user: entry.name.to_string(),
        password_hash: hash.to_string(),
        // pam_unix: a last change on day 0 means "change it now".
        must_change: entry.last_change == Some(0),
        // pam_unix: expired from the day sp_expire names.
        expired: entry.expire.is_some_and(|day| today >= day),
    });
}

/// ` ($ID$)` for a string of the `$ID$…` form whose id is short and plain (`$md5$`, `$3$`): the
/// id names a scheme and says nothing of the password. Empty otherwise.
fn scheme_id(hash: &str) -> String {
    let Some(id) = hash.strip_prefix('$').and_then(|r| r.split('$').next()) else {
        return String::new();
    };
    if id.is_empty() || id.len() > 16 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return String::new();
    }
    format!(" (${id}$)")
}

/// Days since 1970-01-01 now, as shadow(5) counts them.
pub fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const YESCRYPT: &str =
        "$y$j9T$VbkXPm5C2wjBrvZ/6JpTu0$EYsos16gxNjxFH.c.NDlqDcYmS/wEthFBQCv4wQMMC/";
    const SHA512: &str = "$6$BUoJ6R44k7teooiV$SbQqs/iR4z.DBPIPPm48sq7EXy.hDy.WzGqYLCxg1nlOEibKHgbUNJHABP4ZA7QF8vRlOIbzq871VDnUUVw1m/";
    const MD5: &str = "$1$hiSDN4d0$gMyTRicrObrIbgZwriCHv.";
    const TODAY: i64 = 20_000;

    fn check(text: &str, users: &[&str]) -> ShadowChecked {
        let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
        check_shadow(text.as_bytes(), &users, TODAY).unwrap()
    }

    fn problems(text: &str) -> Vec<String> {
        let checked = check(text, &[]);
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

    fn skipped(checked: &ShadowChecked) -> Vec<String> {
        checked
            .skipped
            .iter()
            .map(|s| format!("{}: {}: {}", s.line, s.user, s.reason))
            .collect()
    }

    #[test]
    fn a_debian_shadow_file_is_taken_over_where_it_can_be() {
        let text = format!(
            "root:*:19000:0:99999:7:::\n\
             daemon:*:19000:0:99999:7:::\n\
             alice:{YESCRYPT}:19500:0:99999:7:::\n\
             bob:{SHA512}:0:0:99999:7:::\n\
             carol:!{YESCRYPT}:19500:0:99999:7:::\n\
             dave:!!:19500::::::\n\
             erin::19500:0:99999:7:::\n\
             frank:{MD5}:19500:0:99999:7::19999:\n\
             grace:$md5,rounds=904$Vh8S$$x:19500::::::\n\
             heidi:{YESCRYPT}:19500:0:99999:7::20000:\n\
             ivan:{YESCRYPT}:19500:::::20001:\n"
        );
        let checked = check(&text, &[]);
        assert!(checked.problems.is_empty(), "{:?}", checked.problems.shown);
        let rows: Vec<_> = checked
            .rows
            .iter()
            .map(|r| (r.line, r.user.as_str(), r.must_change, r.expired))
            .collect();
        assert_eq!(
            rows,
            [
                (3, "alice", false, false),
                (4, "bob", true, false),
                (8, "frank", false, true),
                (10, "heidi", false, true),
                (11, "ivan", false, false),
            ]
        );
        assert_eq!(checked.rows[0].password_hash, YESCRYPT);
        // md5crypt is sent: whether it is taken is credd's policy to say.
        assert_eq!(checked.rows[2].password_hash, MD5);
        assert_eq!(
            skipped(&checked),
            [
                "1: root: locked: the password field starts with '*' (no password login)",
                "2: daemon: locked: the password field starts with '*' (no password login)",
                "5: carol: locked: the password field starts with '!' (locked)",
                "6: dave: locked: the password field starts with '!!' (no password set, or locked)",
                "7: erin: no password: the password field is empty (a login without a password \
                 is not taken over)",
                "9: grace: unknown hash scheme; credd takes over yescrypt, gost-yescrypt, scrypt, \
                 bcrypt, sha512crypt, sha256crypt (and md5crypt, descrypt, bsdicrypt with \
                 [hashing] accept_legacy = true)",
            ]
        );
    }

    #[test]
    fn unknown_schemes_are_named_by_their_id_only() {
        let text = "nt:$3$$8cc19b6a8cfeac299c2871c86b38de28:1::::::\n\
                    plain:hunter2:1::::::\n\
                    sha1:$sha1$40000$jtNX3nZ2$hBNaIXkt4wBI2o5rsi8KejSjNqIq:1::::::\n";
        let checked = check(text, &[]);
        let reasons = skipped(&checked);
        assert!(
            reasons[0].starts_with("1: nt: unknown hash scheme ($3$);"),
            "{reasons:?}"
        );
        assert!(
            reasons[1].starts_with("2: plain: unknown hash scheme;"),
            "{reasons:?}"
        );
        assert!(!reasons[1].contains("hunter2"), "{reasons:?}");
        assert!(
            reasons[2].starts_with("3: sha1: unknown hash scheme ($sha1$);"),
            "{reasons:?}"
        );
    }

    #[test]
    fn users_selects_entries_and_each_must_exist() {
        let text = format!(
            "root:*:19000:0:99999:7:::\nalice:{YESCRYPT}:19500::::::\nbob:{SHA512}:19500::::::\n"
        );
        let checked = check(&text, &["bob"]);
        assert!(checked.problems.is_empty());
        assert_eq!(checked.rows.len(), 1);
        assert_eq!(checked.rows[0].user, "bob");
        assert!(
            checked.skipped.is_empty(),
            "unselected entries are not reported"
        );
        assert_eq!(
            check(&text, &["bob", "zoe"])
                .problems
                .shown
                .iter()
                .map(|p| (p.line, p.message.as_str()))
                .collect::<Vec<_>>(),
            [(0, "--users names zoe, who has no entry in the file")]
        );
    }

    #[test]
    fn malformed_lines_are_named_by_line_and_field() {
        let text = format!(
            "alice:{YESCRYPT}:19500:0:99999:7:::\n\
             short:{YESCRYPT}:19500\n\
             -rf:x:::::::\n\
             bad name:{YESCRYPT}:::::::\n\
             alice:{SHA512}:::::::\n\
             carol:{YESCRYPT}:yesterday::::::\n\
             dave:{YESCRYPT}:-5::::::\n\
             erin:$6$salt$truncated:::::::\n\
             frank:{YESCRYPT}:::::::x\u{7}\n\
             grace:$y$j9T$a b$c:::::::\n"
        );
        assert_eq!(
            problems(&text),
            [
                "2: entry: 3 fields; a shadow entry has 9 \
                 (sp_namp:sp_pwdp:sp_lstchg:sp_min:sp_max:sp_warn:sp_inact:sp_expire:sp_flag)",
                "4: sp_namp: user name contains the character ' '",
                "5: sp_namp: alice has two entries (the first on line 1)",
                "6: sp_lstchg: yesterday is not a number of days (nor empty)",
                "7: sp_lstchg: -5 is not a number of days (nor empty)",
                "8: sp_pwdp: a malformed sha512crypt hash (the hash part must be 86 characters \
                 of ./0-9A-Za-z)",
                "9: sp_flag: contains a control character",
                "10: sp_pwdp: contains a blank or a control character",
            ]
        );
    }

    #[test]
    fn blank_lines_crlf_and_encodings() {
        let text = format!("\nalice:{YESCRYPT}:19500::::::\n\n");
        let checked = check(&text, &[]);
        assert_eq!(checked.rows[0].line, 2);
        assert_eq!(
            problems(&format!("alice:{YESCRYPT}:19500::::::\r\n")),
            ["1: sp_flag: contains a control character"]
        );
        let mut bytes = b"caf\xe9:x:::::::\n".to_vec();
        bytes.extend_from_slice(format!("bob:{YESCRYPT}:1::::::").as_bytes());
        let checked = check_shadow(&bytes[..], &[], TODAY).unwrap();
        assert_eq!(checked.problems.shown[0].message, "not valid UTF-8");
        assert_eq!(
            checked.problems.total, 1,
            "the last line, without a line end, is read"
        );
        let long = format!(
            "alice:{}:::::::\nbob:{YESCRYPT}:x::::::\n",
            "a".repeat(5000)
        );
        assert_eq!(
            problems(&long),
            [
                "1: entry: longer than 4096 bytes",
                "2: sp_lstchg: x is not a number of days (nor empty)"
            ]
        );
    }

    #[test]
    fn expiry_and_forced_change_follow_pam_unix() {
        let row = |lastchg: &str, expire: &str| {
            let text = format!("a:{YESCRYPT}:{lastchg}:::::{expire}:\n");
            let r = check(&text, &[]).rows.remove(0);
            (r.must_change, r.expired)
        };
        assert_eq!(row("", ""), (false, false));
        assert_eq!(row("0", ""), (true, false));
        assert_eq!(row("1", "-1"), (false, false));
        assert_eq!(row("1", &(TODAY + 1).to_string()), (false, false));
        assert_eq!(row("1", &TODAY.to_string()), (false, true));
        assert_eq!(row("0", "0"), (true, true));
    }
}
