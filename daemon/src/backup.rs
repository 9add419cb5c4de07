//! `credctl backup`: a consistent copy of the live database, streamed to the administrator.
//!
//! SQLite's `VACUUM INTO` writes a transactionally consistent snapshot into a new file while
//! logins go on (it reads through a connection of its own, so the store lock is not held). The
//! snapshot is checked with `PRAGMA integrity_check` before a byte is sent, streamed in chunks
//! that fit a frame, and deleted; the client checks the size and SHA-256 sent at the end.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64ct::{Base64, Encoding};
use credd_proto::{ErrorKind, ProtoError, Reply};
use sha2::{Digest, Sha256};

use crate::audit::Event;
use crate::handlers::{Respond, error, internal};
use crate::peer::Peer;
use crate::state::Daemon;

/// Raw bytes per chunk: 32 KiB is 43 692 bytes of base64, well inside a 64 KiB frame.
const CHUNK: usize = 32 * 1024;

static SNAPSHOTS: AtomicU64 = AtomicU64::new(0);

/// The snapshot file, removed however the backup ends.
struct Snapshot(PathBuf);

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Daemon {
    pub(crate) fn backup(&self, peer: Peer, respond: &mut Respond<'_>) -> Result<(), ProtoError> {
        if !peer.is_root() {
            return respond(&error(
                ErrorKind::NotPermitted,
                "a backup holds every password hash: only root may take one",
            ));
        }
        // Rows queued for the audit writer belong in the copy.
        self.flush_audit();
        let Some(dir) = self.audit_key_path.parent() else {
            return respond(&internal("no state directory"));
        };
        let snapshot = Snapshot(dir.join(format!(
            ".backup-{}-{}.db",
            std::process::id(),
            SNAPSHOTS.fetch_add(1, Ordering::Relaxed)
        )));
        let _ = std::fs::remove_file(&snapshot.0);
        let db = self.store().db_path().to_path_buf();
        if let Err(e) = snapshot_into(&db, &snapshot.0) {
            return respond(&internal(e));
        }
        let mut file = match std::fs::File::open(&snapshot.0) {
            Ok(f) => f,
            Err(e) => return respond(&internal(e)),
        };
        let mut hasher = Sha256::new();
        let mut bytes = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => return respond(&internal(e)),
            };
            hasher.update(&buf[..n]);
            bytes += n as u64;
            respond(&Reply::BackupChunk {
                data: Base64::encode_string(&buf[..n]),
            })?;
        }
        let sha256: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.record(&Event {
            name: "backup_taken",
            actor_uid: Some(peer.uid),
            outcome: "ok",
            detail: format!("bytes={bytes} sha256={sha256}"),
            ..Default::default()
        });
        respond(&Reply::BackupDone { bytes, sha256 })
    }
}

/// `VACUUM INTO` through a read-only connection of its own, then a full integrity check of the
/// copy.
fn snapshot_into(db: &Path, target: &Path) -> crate::error::Result<()> {
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
            | rusqlite::OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )?;
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
    let verdict: String = copy.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict != "ok" {
        return Err(crate::error::DaemonError::StoreSetup {
            path: target.to_path_buf(),
            message: format!("the snapshot failed its integrity check: {verdict}"),
        });
    }
    Ok(())
}
