//! What only a database file allows: a consistent copy of it taken while credd runs, and the
//! checks a copy passes before `credctl restore` puts it in place (docs/backup.md).

use std::io::Read;
use std::path::Path;

use hmac::Mac;

use super::{SCHEMA_VERSION, schema};
use crate::audit::chain::AuditKey;

/// Bytes read at a time when a copy's HMAC is computed.
const CHUNK: usize = 32 * 1024;

/// `VACUUM INTO` through a read-only connection of its own, then a full integrity check of the
/// copy.
pub fn snapshot_into(db: &Path, target: &Path) -> crate::error::Result<()> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    schema::harden(&conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let target_str = target.to_str().ok_or_else(|| {
        crate::error::DaemonError::Startup("state directory path is not UTF-8".into())
    })?;
    conn.execute("VACUUM INTO ?1", [target_str])?;
    drop(conn);
    let copy = rusqlite::Connection::open_with_flags(
        target,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
    schema::harden(&copy)?;
    let verdict: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(crate::error::DaemonError::StoreSetup {
            path: target.to_path_buf(),
            message: format!("the snapshot failed its integrity check: {verdict}"),
        });
    }
    Ok(())
}

/// What `credctl restore` learns of a copy (the database bytes of a backup, staged).
#[derive(Debug)]
pub struct Examined {
    /// Its schema version (credd migrates an older one forward at start).
    pub version: i64,
    /// Why it cannot be shown to be this host's, intact: no HMAC, an HMAC that does not match
    /// under this host's audit key, or an audit chain that does not verify under it. Empty: it is.
    /// Restoring it anyway takes `--force-foreign`.
    pub foreign: Vec<String>,
}

/// Checks a staged copy before it replaces the database. `Err`: it must never be put in place
/// (not a database, damaged, a newer schema, or a schema that is not exactly the one credd
/// creates, whatever the flags). `key`: this host's audit key, if it has one; `mac`: the MAC the
/// backup's trailer carries.
pub fn examine_copy(
    staged: &Path,
    mac: Option<[u8; 32]>,
    key: Option<&AuditKey>,
) -> Result<Examined, String> {
    let conn = rusqlite::Connection::open_with_flags(
        staged,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| format!("cannot open it as a database: {e}"))?;
    schema::harden(&conn).map_err(|e| format!("cannot open it safely: {e}"))?;
    let verdict: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("not a database credd can read: {e}"))?;
    if verdict != "ok" {
        return Err(format!("it fails SQLite's integrity check: {verdict}"));
    }
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| format!("cannot read its schema version: {e}"))?;
    let current = SCHEMA_VERSION;
    if version < 1 {
        return Err("schema version 0: not a credd database".into());
    }
    if version > current {
        return Err(format!(
            "its schema version {version} is newer than this credd understands ({current})"
        ));
    }
    match schema::verify(&conn, version) {
        Err(e) => return Err(format!("cannot read its schema: {e}")),
        Ok(Err(problems)) => {
            return Err(format!(
                "its schema is not the one credd creates (schema version {version}): {}; \
                 not a credd database as credd wrote it",
                problems.join("; ")
            ));
        }
        Ok(Ok(())) => {}
    }
    let mut foreign = Vec::new();
    let Some(key) = key else {
        foreign.push("this host has no audit key to check it with".to_string());
        return Ok(Examined { version, foreign });
    };
    match mac {
        None => foreign.push(
            "it carries no HMAC (not a file written by `credctl backup` of this version)".into(),
        ),
        Some(expected) => {
            let mut m = key.backup_mac();
            let mut file = std::fs::File::open(staged).map_err(|e| e.to_string())?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let n = file.read(&mut buf).map_err(|e| e.to_string())?;
                if n == 0 {
                    break;
                }
                m.update(&buf[..n]);
            }
            if m.verify_slice(&expected).is_err() {
                foreign.push(
                    "its HMAC does not match under this host's audit key (a backup of another \
                     host, or edited since it was taken)"
                        .into(),
                );
            }
        }
    }
    // The chain came with schema version 4.
    if version >= 4 {
        let report = crate::audit::chain::verify(&conn, key)
            .map_err(|e| format!("cannot read its audit table: {e}"))?;
        if let (Some(seq), Some(problem)) = (report.first_bad_seq, report.problem) {
            foreign.push(format!(
                "its audit chain does not verify under this host's audit key at row {seq}: {problem}"
            ));
        }
    }
    Ok(Examined { version, foreign })
}
