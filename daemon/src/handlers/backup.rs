//! `credctl backup`: a consistent copy of the live database, streamed to the administrator.
//!
//! SQLite's `VACUUM INTO` writes a transactionally consistent snapshot into a new file while
//! logins go on (it reads through a connection of its own, so the store lock is not held). The
//! snapshot is checked with `PRAGMA integrity_check` before a byte is sent, streamed in chunks
//! that fit a frame, and deleted; the client checks the size and SHA-256 sent at the end.
//!
//! The last chunk is a trailer after the database's pages: HMAC-SHA256 of those pages under a key
//! derived from this host's audit key ([`AuditKey::backup_mac`]). `credctl restore` checks it
//! with [`examine_copy`], together with the copy's schema and audit chain, so that a backup of
//! another host, or one edited since it was taken, is never put in place unnoticed.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use base64ct::{Base64, Encoding};
use credd_proto::{ErrorKind, ProtoError, Reply};
use sha2::{Digest, Sha256};

use hmac::Mac;

use crate::audit::chain::Event;
use crate::handlers::context::Context;
use crate::handlers::reply::{Respond, error, internal};
use crate::state::Daemon;
use crate::store::sqlite::backup::snapshot_into;
pub use crate::store::sqlite::backup::{Examined, examine_copy};

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
    pub(crate) fn backup(
        &self,
        ctx: &Context<'_>,
        respond: &mut Respond<'_>,
    ) -> Result<(), ProtoError> {
        let peer = ctx.peer;
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
        // The store lock is held only to learn the file; the copy reads through its own
        // connection.
        let Some((db, mut mac)) = self
            .store()
            .embedded()
            .map(|s| (s.db_path().to_path_buf(), s.audit_key().backup_mac()))
        else {
            return respond(&error(
                ErrorKind::InvalidArgument,
                "this credd's store is not a file on this host: back it up where it lives",
            ));
        };
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
            mac.update(&buf[..n]);
            bytes += n as u64;
            respond(&Reply::BackupChunk {
                data: Base64::encode_string(&buf[..n]),
            })?;
        }
        let trailer = trailer(&mac.finalize().into_bytes());
        hasher.update(&trailer);
        bytes += trailer.len() as u64;
        respond(&Reply::BackupChunk {
            data: Base64::encode_string(&trailer),
        })?;
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

/// Written by `credctl restore` into the state directory; turned into a `backup_restored` audit
/// row at the next start ([`record_restore_note`]), then removed.
pub const RESTORE_NOTE_NAME: &str = "restore.note";

/// Audits a restore that `credctl restore` left a note of (it runs while credd is stopped, with
/// no chain of its own to write to): one `backup_restored` row, outcome `forced` for a copy that
/// was not provably this host's. The note is removed once the row is committed.
pub fn record_restore_note(
    state_dir: &Path,
    store: &mut dyn crate::store::Store,
) -> crate::error::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join(RESTORE_NOTE_NAME);
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(crate::error::DaemonError::io(&path, e)),
    };
    let mut raw = Vec::new();
    file.by_ref()
        .take(4096)
        .read_to_end(&mut raw)
        .map_err(|e| crate::error::DaemonError::io(&path, e))?;
    let detail: String = String::from_utf8_lossy(&raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let forced = detail.contains("forced=true");
    let event = Event {
        name: "backup_restored",
        outcome: if forced { "forced" } else { "ok" },
        detail,
        ..Default::default()
    };
    store.write_deferred(&[crate::store::Deferred::Event(
        crate::audit::chain::QueuedEvent::capture(&event, crate::system::time::now_unix()),
    )])?;
    std::fs::remove_file(&path).map_err(|e| crate::error::DaemonError::io(&path, e))
}

/// What ends a backup file, after the database's own bytes.
pub const TRAILER_MAGIC: &[u8] = b"\ncredd-backup-hmac-sha256:";
/// The magic, 64 hex digits and a newline.
pub const TRAILER_LEN: usize = TRAILER_MAGIC.len() + 64 + 1;

fn trailer(mac: &[u8]) -> Vec<u8> {
    let mut out = TRAILER_MAGIC.to_vec();
    out.extend(crate::audit::chain::hex(mac).into_bytes());
    out.push(b'\n');
    out
}

/// The length of the database in a backup file, and the MAC its trailer carries (`None`: the file
/// has no trailer, e.g. a copy of `credd.db` or a backup of an older credctl).
pub fn read_trailer(file: &mut std::fs::File) -> std::io::Result<(u64, Option<[u8; 32]>)> {
    let len = file.metadata()?.len();
    if len < TRAILER_LEN as u64 {
        return Ok((len, None));
    }
    file.seek(SeekFrom::Start(len - TRAILER_LEN as u64))?;
    let mut tail = vec![0u8; TRAILER_LEN];
    file.read_exact(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    let Some(hex) = tail
        .strip_prefix(TRAILER_MAGIC)
        .and_then(|rest| rest.strip_suffix(b"\n"))
    else {
        return Ok((len, None));
    };
    let mut mac = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16);
        match (digit(pair[0]), digit(pair[1])) {
            (Some(h), Some(l)) => mac[i] = (h * 16 + l) as u8,
            _ => return Ok((len, None)),
        }
    }
    Ok((len - TRAILER_LEN as u64, Some(mac)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::AuditKey;
    use crate::store::{Accounts, Maintenance};
    use std::io::Write;

    /// A database of the current schema with one account and one audit row, and a backup file of
    /// it (trailer included) under `key`.
    fn backup_file(dir: &Path, key: AuditKey) -> PathBuf {
        let db = dir.join("credd.db");
        let mut store = crate::store::sqlite::SqliteStore::open(
            &db,
            AuditKey::for_tests(),
            crate::audit::syslog::Sink::disabled(),
        )
        .unwrap();
        store
            .insert_account("alice", Some(1000), Some("$pbkdf2-sha256$x"), false, 0)
            .unwrap()
            .unwrap();
        store.checkpoint().unwrap();
        drop(store);
        let bytes = std::fs::read(&db).unwrap();
        let mut m = key.backup_mac();
        m.update(&bytes);
        let file = dir.join("backup.db");
        let mut f = std::fs::File::create(&file).unwrap();
        f.write_all(&bytes).unwrap();
        f.write_all(&trailer(&m.finalize().into_bytes())).unwrap();
        file
    }

    fn examine(file: &Path, key: Option<&AuditKey>) -> Result<Examined, String> {
        let mut f = std::fs::File::open(file).unwrap();
        let (len, mac) = read_trailer(&mut f).unwrap();
        let staged = file.with_extension("staged");
        let mut bytes = std::fs::read(file).unwrap();
        bytes.truncate(len as usize);
        std::fs::write(&staged, bytes).unwrap();
        examine_copy(&staged, mac, key)
    }

    #[test]
    fn this_hosts_backup_is_authentic_and_another_key_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let file = backup_file(dir.path(), AuditKey::for_tests());
        let ok = examine(&file, Some(&AuditKey::for_tests())).unwrap();
        assert!(ok.foreign.is_empty(), "{:?}", ok.foreign);
        let other = examine(&file, Some(&AuditKey::other_for_tests())).unwrap();
        let text = other.foreign.join("; ");
        assert!(text.contains("HMAC does not match"), "{text}");
        assert!(text.contains("audit chain does not verify"), "{text}");
        assert!(!examine(&file, None).unwrap().foreign.is_empty());
    }

    #[test]
    fn one_byte_changed_in_a_row_fails_the_hmac() {
        let dir = tempfile::tempdir().unwrap();
        let file = backup_file(dir.path(), AuditKey::for_tests());
        let mut bytes = std::fs::read(&file).unwrap();
        let at = bytes
            .windows(16)
            .position(|w| w == b"$pbkdf2-sha256$x")
            .unwrap();
        bytes[at + 15] = b'y';
        std::fs::write(&file, bytes).unwrap();
        let edited = examine(&file, Some(&AuditKey::for_tests())).unwrap();
        assert!(
            edited.foreign.join("; ").contains("HMAC does not match"),
            "{:?}",
            edited.foreign
        );
    }

    #[test]
    fn a_copy_without_a_trailer_carries_no_hmac() {
        let dir = tempfile::tempdir().unwrap();
        let file = backup_file(dir.path(), AuditKey::for_tests());
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.truncate(bytes.len() - TRAILER_LEN);
        std::fs::write(&file, bytes).unwrap();
        let bare = examine(&file, Some(&AuditKey::for_tests())).unwrap();
        assert!(
            bare.foreign.join("; ").contains("no HMAC"),
            "{:?}",
            bare.foreign
        );
    }
}
