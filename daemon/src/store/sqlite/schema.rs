//! The exact schema credd creates, and the check that a database has it and nothing else.
//!
//! A database that credd opens (at every start) or that `credctl restore` puts in place must hold
//! exactly the tables and indexes the migrations of its version create: a trigger, a view, an
//! extra table or index, or a table whose definition differs, runs code or answers queries that
//! credd never wrote (a trigger that puts a hash back after every password change, a view in
//! place of `reset_codes` that matches one code for every account). The expected schema is not
//! written down twice: it is what the migrations produce in a fresh in-memory database.
//!
//! Every connection is also opened in SQLite's defensive mode (no `writable_schema`, no writes to
//! shadow tables) with `trusted_schema = OFF` (functions and virtual tables named in the schema
//! are not run unless they are marked innocuous), so that nothing in a file credd did not write
//! can run with credd's rights before the check refuses it.

use rusqlite::Connection;
use rusqlite::config::DbConfig;

use super::MIGRATIONS;

/// One row of `sqlite_schema`, its SQL normalised.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaObject {
    pub kind: String,
    pub name: String,
    pub tbl_name: String,
    pub sql: Option<String>,
}

impl std::fmt::Display for SchemaObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.tbl_name == self.name {
            write!(f, "{} {:?}", self.kind, self.name)
        } else {
            write!(f, "{} {:?} on {:?}", self.kind, self.name, self.tbl_name)
        }
    }
}

/// Defensive mode and `trusted_schema = OFF`, for every connection to a credd database; and,
/// since credd's schema has none, triggers and views switched off, so that one the check has not
/// seen yet (or a check missed) never runs.
pub fn harden(conn: &Connection) -> rusqlite::Result<()> {
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    conn.pragma_update(None, "trusted_schema", false)?;
    Ok(())
}

/// The objects of `conn`'s schema, sorted.
pub fn objects(conn: &Connection) -> rusqlite::Result<Vec<SchemaObject>> {
    let mut stmt = conn.prepare("SELECT type, name, tbl_name, sql FROM main.sqlite_schema")?;
    let rows = stmt.query_map([], |r| {
        Ok(SchemaObject {
            kind: r.get(0)?,
            name: r.get(1)?,
            tbl_name: r.get(2)?,
            sql: r.get::<_, Option<String>>(3)?.map(|s| normalize(&s)),
        })
    })?;
    let mut found = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    found.sort();
    Ok(found)
}

/// The schema the migrations up to `version` create.
pub fn expected(version: i64) -> rusqlite::Result<Vec<SchemaObject>> {
    let conn = Connection::open_in_memory()?;
    let upto = usize::try_from(version).unwrap_or(0).min(MIGRATIONS.len());
    for sql in &MIGRATIONS[..upto] {
        conn.execute_batch(sql)?;
    }
    objects(&conn)
}

/// `Ok` when `conn` holds exactly the schema of `version`; otherwise every difference, each
/// naming its object ("unexpected trigger \"t\" on \"users\"").
pub fn verify(conn: &Connection, version: i64) -> rusqlite::Result<Result<(), Vec<String>>> {
    let want = expected(version)?;
    let have = objects(conn)?;
    let mut problems = Vec::new();
    for object in &have {
        match want
            .iter()
            .find(|w| w.name == object.name && w.kind == object.kind)
        {
            None => problems.push(format!("unexpected {object}")),
            Some(w) if w != object => problems.push(format!(
                "{object} differs from the one credd creates (schema version {version})"
            )),
            Some(_) => {}
        }
    }
    for object in &want {
        if !have
            .iter()
            .any(|h| h.name == object.name && h.kind == object.kind)
        {
            problems.push(format!("missing {object}"));
        }
    }
    Ok(if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    })
}

/// SQL text with runs of whitespace outside quotes collapsed to one space, and none next to
/// `(`, `)` or `,`: the same statement however it was indented (`ALTER TABLE ... ADD COLUMN`
/// appends to the stored text), but any other difference, quoted text included, stays one.
fn normalize(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut pending_space = false;
    for c in sql.chars() {
        if let Some(q) = quote {
            out.push(c);
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_whitespace() {
            pending_space = true;
            continue;
        }
        let tight = matches!(c, '(' | ')' | ',');
        if pending_space && !tight && !out.is_empty() && !out.ends_with(['(', ',']) {
            out.push(' ');
        }
        pending_space = false;
        if matches!(c, '\'' | '"' | '`' | '[') {
            quote = Some(if c == '[' { ']' } else { c });
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizing_ignores_layout_but_not_quoted_text() {
        assert_eq!(
            normalize("CREATE TABLE t (\n  a INTEGER ,\n  b TEXT\n) STRICT"),
            normalize("CREATE TABLE t(a INTEGER,b TEXT) STRICT")
        );
        assert_ne!(
            normalize("CHECK (kind IN ('a b'))"),
            normalize("CHECK (kind IN ('a  b'))")
        );
        assert_ne!(normalize("a INTEGER"), normalize("aINTEGER"));
    }

    #[test]
    fn the_schema_of_every_version_verifies() {
        for version in 0..=MIGRATIONS.len() as i64 {
            let conn = Connection::open_in_memory().unwrap();
            for sql in &MIGRATIONS[..version as usize] {
                conn.execute_batch(sql).unwrap();
            }
            assert_eq!(verify(&conn, version).unwrap(), Ok(()), "version {version}");
        }
    }

    #[test]
    fn triggers_views_and_extra_objects_are_named() {
        let version = MIGRATIONS.len() as i64;
        let conn = Connection::open_in_memory().unwrap();
        for sql in MIGRATIONS {
            conn.execute_batch(sql).unwrap();
        }
        conn.execute_batch(
            "CREATE TRIGGER keep AFTER UPDATE ON users BEGIN SELECT 1; END;
             DROP TABLE reset_codes;
             CREATE VIEW reset_codes AS SELECT name AS user FROM users;
             CREATE INDEX extra ON users(hash);",
        )
        .unwrap();
        let problems = verify(&conn, version).unwrap().unwrap_err();
        let text = problems.join("; ");
        assert!(
            text.contains("unexpected trigger \"keep\" on \"users\""),
            "{text}"
        );
        assert!(text.contains("unexpected view \"reset_codes\""), "{text}");
        assert!(text.contains("missing table \"reset_codes\""), "{text}");
        assert!(
            text.contains("unexpected index \"extra\" on \"users\""),
            "{text}"
        );
    }

    #[test]
    fn a_changed_table_definition_is_named() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&MIGRATIONS[0].replace(
            "disabled    INTEGER NOT NULL DEFAULT 0",
            "disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled = 0)",
        ))
        .unwrap();
        let problems = verify(&conn, 1).unwrap().unwrap_err();
        assert!(
            problems[0].contains("table \"users\" differs"),
            "{problems:?}"
        );
    }
}
