//! Rendering of replies for people (`key: value` lines, aligned tables) and for scripts (JSON).
//!
//! Listings are written as rows arrive: a JSON array is opened at the first row and closed at the
//! end, and a table holds at most [`TABLE_BATCH`] rows to size its columns, so 100 000 accounts
//! never sit in memory at once.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::io::{self, Write};

use credd_proto::UserInfo;

/// Rows a table reads before fixing its column widths; later rows that are wider push the
/// following columns right but are still separated by two spaces.
pub const TABLE_BATCH: usize = 1000;

const HEADER: [&str; 5] = ["USER", "UID", "SCHEME", "DISABLED", "MUST_CHANGE"];
const GAP: &str = "  ";

/// Text from the daemon made safe for a terminal and a single line: control characters (a
/// newline, an escape sequence) are shown escaped instead of being obeyed.
pub fn one_line(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn yes_no(flag: bool) -> &'static str {
    if flag { "yes" } else { "no" }
}

fn uid(info: &UserInfo) -> String {
    info.uid.map_or_else(|| "-".to_string(), |u| u.to_string())
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
    writeln!(out, "uid: {}", uid(info))?;
    writeln!(out, "hash_scheme: {}", scheme(info))?;
    writeln!(out, "iterations: {iterations}")?;
    writeln!(out, "disabled: {}", yes_no(info.disabled))?;
    writeln!(out, "must_change: {}", yes_no(info.must_change))?;
    writeln!(out, "created_at: {}", one_line(&info.created_at))?;
    writeln!(out, "updated_at: {}", one_line(&info.updated_at))
}

/// `user show --json`: the `UserInfo` object in its serde shape.
pub fn write_user_json<W: Write>(out: &mut W, info: &UserInfo) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, info)?;
    writeln!(out)
}

/// `user list`, written as rows arrive.
pub enum UserList<W: Write> {
    Table(Table<W>),
    Json(JsonArray<W>),
}

impl<W: Write> UserList<W> {
    pub fn new(out: W, json: bool) -> Self {
        if json {
            UserList::Json(JsonArray::new(out))
        } else {
            UserList::Table(Table::new(out))
        }
    }

    pub fn row(&mut self, info: &UserInfo) -> io::Result<()> {
        match self {
            UserList::Table(t) => t.row(info),
            UserList::Json(j) => j.row(info),
        }
    }

    /// Completes the output (an empty listing still prints a header or `[]`) and flushes it.
    pub fn finish(self) -> io::Result<W> {
        match self {
            UserList::Table(t) => t.finish(),
            UserList::Json(j) => j.finish(),
        }
    }
}

/// An aligned table with a header; column widths come from the first [`TABLE_BATCH`] rows.
pub struct Table<W: Write> {
    out: W,
    pending: Vec<[String; 5]>,
    widths: Option<[usize; 5]>,
}

impl<W: Write> Table<W> {
    pub fn new(out: W) -> Self {
        Table {
            out,
            pending: Vec::new(),
            widths: None,
        }
    }

    pub fn row(&mut self, info: &UserInfo) -> io::Result<()> {
        let cells = [
            one_line(&info.user).into_owned(),
            uid(info),
            scheme(info).into_owned(),
            yes_no(info.disabled).to_string(),
            yes_no(info.must_change).to_string(),
        ];
        match self.widths {
            Some(widths) => write_cells(&mut self.out, &widths, &cells),
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
        let mut widths = HEADER.map(str::len);
        for cells in &self.pending {
            for (w, cell) in widths.iter_mut().zip(cells) {
                *w = (*w).max(cell.chars().count());
            }
        }
        write_cells(&mut self.out, &widths, &HEADER)?;
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
    widths: &[usize; 5],
    cells: &[S; 5],
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

    pub fn row(&mut self, info: &UserInfo) -> io::Result<()> {
        self.out
            .write_all(if self.rows == 0 { b"[\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.out, info)?;
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
        write_user_json(&mut out, &alice).unwrap();
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
        let mut list = UserList::new(Vec::new(), false);
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
        let out = text(UserList::new(Vec::new(), false).finish().unwrap());
        assert_eq!(out, "USER  UID  SCHEME  DISABLED  MUST_CHANGE\n");
        let out = text(UserList::new(Vec::new(), true).finish().unwrap());
        assert_eq!(out, "[]\n");
    }

    #[test]
    fn json_list_is_one_valid_array() {
        let mut list = UserList::new(Vec::new(), true);
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

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(one_line("plain"), "plain");
        assert_eq!(one_line("a\nb\x1b[2J"), "a\\nb\\u{1b}[2J");
        let mut out = Vec::new();
        write_user(&mut out, &info("x", None, Some("evil\nuid: 0"))).unwrap();
        assert!(text(out).contains("hash_scheme: evil\\nuid: 0\n"));
    }
}
