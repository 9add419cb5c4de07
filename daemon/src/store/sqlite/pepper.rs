//! Sealing stored hashes with the pepper at start, and refusing to start with hashes sealed under
//! a pepper that is not the configured one.

use std::collections::BTreeMap;

use rusqlite::params;

use super::SqliteStore;
use super::audited::Outcome;
use crate::audit::chain::Event;
use crate::crypto::hashing::{self, Hasher};
use crate::store::{Maintenance, Pepper};
use crate::system::time::now_unix;

impl Pepper for SqliteStore {
    fn pepper_ids(&mut self) -> crate::error::Result<BTreeMap<String, u64>> {
        let mut stmt = self
            .conn
            .prepare("SELECT hash FROM users WHERE hash LIKE '$pbkdf2-sha256-peppered$%'")?;
        let mut ids = BTreeMap::new();
        for hash in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let id = hashing::pepper_id_of(&hash?).unwrap_or_else(|| "malformed".into());
            *ids.entry(id).or_default() += 1;
        }
        Ok(ids)
    }

    fn seal_hashes(&mut self, hasher: &Hasher) -> crate::error::Result<u64> {
        let sealed = self.audited(now_unix(), |tx| {
            let mut sealed = 0u64;
            {
                let mut select =
                    tx.prepare("SELECT name, hash FROM users WHERE hash LIKE '$pbkdf2-sha256$%'")?;
                let mut update = tx.prepare("UPDATE users SET hash = ?2 WHERE name = ?1")?;
                let rows: Vec<(String, String)> = select
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .collect::<rusqlite::Result<_>>()?;
                for (name, hash) in rows {
                    // A plain hash credd cannot parse stays as it is: it never verified anyway.
                    if let Some(new) = hasher.seal(&hash) {
                        update.execute(params![name, new])?;
                        sealed += 1;
                    }
                }
            }
            if sealed == 0 {
                return Ok(Outcome::Rollback(0));
            }
            tx.record(&Event {
                name: "pepper_applied",
                outcome: "ok",
                detail: format!(
                    "hashes={sealed} key_id={}",
                    hasher.pepper_id().unwrap_or("none")
                ),
                ..Default::default()
            })?;
            Ok(Outcome::Commit(sealed))
        })?;
        if sealed == 0 {
            return Ok(0);
        }
        // The plain hashes are still in the write-ahead log's old frames: copy the new pages
        // into the database and empty the log, so no file of the state directory keeps them.
        self.checkpoint()?;
        Ok(sealed)
    }
}
