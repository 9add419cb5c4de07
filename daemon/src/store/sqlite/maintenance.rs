//! The store's own health: the checks at start and for `credctl check`, the WAL at stop.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::{SCHEMA_VERSION, SqliteStore};
use crate::audit::chain;
use crate::error::Result;
use crate::store::Maintenance;

impl Maintenance for SqliteStore {
    fn quick_check(&mut self) -> Result<Option<String>> {
        let found: Vec<String> =
            match self
                .conn
                .prepare("PRAGMA quick_check")
                .and_then(|mut stmt| {
                    stmt.query_map([], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()
                }) {
                Ok(found) => found,
                Err(e) => vec![e.to_string()],
            };
        Ok((found != ["ok"]).then(|| found.join("; ")))
    }

    fn damage(&self) -> Option<&str> {
        self.damage.as_deref()
    }

    fn checkpoint(&mut self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    fn check(&mut self, audit_key_path: &Path) -> Result<(Vec<String>, Vec<String>)> {
        let mut checks = Vec::new();
        let mut findings = Vec::new();
        let integrity: Vec<String> = {
            let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        checks.push("PRAGMA integrity_check".to_string());
        if integrity != ["ok"] {
            findings.extend(
                integrity
                    .into_iter()
                    .map(|m| format!("integrity_check: {m}")),
            );
        }
        let fk: Vec<String> = {
            let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
            let rows = stmt.query_map([], |r| {
                Ok(format!(
                    "{} row {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?
                ))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        checks.push("PRAGMA foreign_key_check".to_string());
        findings.extend(
            fk.into_iter()
                .map(|m| format!("foreign key violation: {m}")),
        );
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?;
        checks.push(format!(
            "schema version {version} (this credd: {SCHEMA_VERSION})"
        ));
        if version != SCHEMA_VERSION {
            findings.push(format!(
                "schema version {version}, expected {SCHEMA_VERSION}"
            ));
        }
        let report = chain::verify(&self.conn, &self.audit_key)?;
        checks.push(format!(
            "audit chain: {} rows, head seq {}",
            report.rows_checked, report.head_seq
        ));
        if let (Some(seq), Some(problem)) = (report.first_bad_seq, report.problem) {
            findings.push(format!("audit chain broken at row {seq}: {problem}"));
        }
        for (what, path) in [
            ("database", self.path.as_path()),
            ("audit key", audit_key_path),
        ] {
            checks.push(format!("mode of the {what} {}", path.display()));
            match std::fs::metadata(path) {
                Ok(meta) if meta.mode() & 0o077 != 0 => findings.push(format!(
                    "the {what} {} has mode {:o}; it must be 0600",
                    path.display(),
                    meta.mode() & 0o7777
                )),
                Ok(_) => {}
                Err(e) => findings.push(format!("the {what} {}: {e}", path.display())),
            }
        }
        Ok((checks, findings))
    }
}
