//! `credctl backup FILE` (online, through credd) and `credctl restore FILE` (offline, credd
//! stopped).
//!
//! A backup holds every password hash: FILE is created new with mode 0600 and never replaces an
//! existing file, and a copy whose size or SHA-256 differs from what credd announced is removed.
//! A restore replaces the database only after checking the copy, only while no credd holds the
//! state directory (and holding its lock meanwhile, so none can start), and atomically: a crash
//! leaves the old database or the new one. The checks are credd's own
//! ([`credd::handlers::backup::examine_copy`]): SQLite's integrity check, exactly the schema credd creates
//! (never overridable), and, unless `--force-foreign`, the backup's HMAC and the audit chain under
//! this host's audit key.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64ct::{Base64, Encoding};
use credd_proto::{Client, Reply, Request, paths};
use sha2::{Digest, Sha256};

use credd::audit::chain::AuditKey;

use crate::error::CtlError;

/// credd's audit key, beside the database in the state directory.
const AUDIT_KEY_NAME: &str = "audit.key";

/// A backup of a large store is a few seconds of `VACUUM INTO` before the first byte.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(300);

/// Removes a partly written backup unless it was completed.
struct Partial<'a> {
    path: &'a Path,
    done: bool,
}

impl Drop for Partial<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(self.path);
        }
    }
}

fn file_error(path: &Path, source: io::Error) -> CtlError {
    CtlError::File {
        path: path.to_path_buf(),
        source,
    }
}

pub fn backup(socket: &Path, file: &Path, out: &mut impl Write) -> Result<(), CtlError> {
    // Created before asking credd, so a path that cannot be written costs nothing.
    let mut target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(file)
        .map_err(|e| file_error(file, e))?;
    let mut partial = Partial {
        path: file,
        done: false,
    };
    let mut client = Client::connect(socket, BACKUP_TIMEOUT)
        .map_err(|e| CtlError::connect(socket.to_path_buf(), BACKUP_TIMEOUT, e))?;
    let call = |e| CtlError::call(socket.to_path_buf(), BACKUP_TIMEOUT, e);
    client.send_request(&Request::Backup).map_err(call)?;
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let (bytes, sha256) = loop {
        match client.receive().map_err(call)? {
            Reply::BackupChunk { data } => {
                let chunk = Base64::decode_vec(&data).map_err(|_| {
                    CtlError::Unexpected("a backup chunk that is not base64".into())
                })?;
                target.write_all(&chunk).map_err(|e| file_error(file, e))?;
                hasher.update(&chunk);
                written += chunk.len() as u64;
            }
            Reply::BackupDone { bytes, sha256 } => break (bytes, sha256),
            Reply::Error { kind, message } => return Err(CtlError::Daemon { kind, message }),
            other => return Err(CtlError::Unexpected(other.name().to_string())),
        }
    };
    let ours: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if written != bytes || ours != sha256 {
        return Err(CtlError::Unexpected(format!(
            "the backup arrived damaged ({written} bytes, sha256 {ours}; credd sent {bytes} bytes, \
             sha256 {sha256}); {} was removed",
            file.display()
        )));
    }
    target.sync_all().map_err(|e| file_error(file, e))?;
    partial.done = true;
    writeln!(
        out,
        "backup of {bytes} bytes written to {} (sha256 {sha256})",
        file.display()
    )
    .map_err(CtlError::Output)
}

use credd::handlers::backup::RESTORE_NOTE_NAME;

/// What `restore` did, for credctl's own log line.
pub struct Restored {
    pub forced: bool,
}

pub fn restore(
    file: &Path,
    state_dir: &Path,
    force_foreign: bool,
    out: &mut impl Write,
) -> Result<Restored, CtlError> {
    let fail = |message: String| CtlError::Restore(message);
    // While we hold the lock no credd can start on this directory; if we cannot take it, one runs.
    let lock_path = state_dir.join(paths::LOCK_NAME);
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&lock_path)
        .map_err(|e| file_error(&lock_path, e))?;
    // SAFETY: flock on a file descriptor we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(fail(format!(
            "credd is running on {} (its lock is held); stop it first",
            state_dir.display()
        )));
    }
    let key_path = state_dir.join(AUDIT_KEY_NAME);
    let key = AuditKey::load_existing(&key_path).map_err(|e| fail(e.to_string()))?;

    let db = state_dir.join(paths::DATABASE_NAME);
    let staged: PathBuf = state_dir.join(format!(".{}.restore", paths::DATABASE_NAME));
    let _ = std::fs::remove_file(&staged);
    let mut source = File::open(file).map_err(|e| file_error(file, e))?;
    // The database's own bytes go to the staged copy, the trailer with the backup's HMAC stays
    // behind: every check below reads exactly what would be put in place.
    let (db_len, mac) =
        credd::handlers::backup::read_trailer(&mut source).map_err(|e| file_error(file, e))?;
    let mut copy = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&staged)
        .map_err(|e| file_error(&staged, e))?;
    let unstage = |e: CtlError| {
        let _ = std::fs::remove_file(&staged);
        e
    };
    let copied = io::copy(&mut io::Read::take(&mut source, db_len), &mut copy)
        .and_then(|n| copy.sync_all().map(|()| n))
        .map_err(|e| unstage(file_error(&staged, e)))?;
    drop(copy);
    let examined =
        credd::handlers::backup::examine_copy(&staged, mac, key.as_ref()).map_err(|why| {
            unstage(fail(format!(
                "{}: {why}; nothing was changed",
                file.display()
            )))
        })?;
    let forced = !examined.foreign.is_empty();
    if forced && !force_foreign {
        return Err(unstage(fail(format!(
            "{}: {}; nothing was changed (if you know where this copy comes from, restore it with \
             --force-foreign: the restore is then audited as forced)",
            file.display(),
            examined.foreign.join("; ")
        ))));
    }
    // credd audits the restore at its next start, in its own chain (credctl has no chain to
    // write to while credd is stopped); written before the swap, so a restore is never
    // unrecorded.
    let note = format!(
        "file={:?} bytes={copied} schema_version={} forced={forced}{}",
        file.display().to_string(),
        examined.version,
        if forced {
            format!(" why={:?}", examined.foreign.join("; "))
        } else {
            String::new()
        }
    );
    write_note(state_dir, &note).map_err(&unstage)?;

    // The old log and index belong to the old database: SQLite must never apply them to the new
    // one. They go first; a crash before the rename leaves the old database, whole (credd
    // truncates its log at every clean stop).
    for suffix in ["-wal", "-shm"] {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::remove_file(&name) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(unstage(file_error(Path::new(&name), e))),
        }
    }
    std::fs::rename(&staged, &db).map_err(|e| {
        let _ = std::fs::remove_file(state_dir.join(RESTORE_NOTE_NAME));
        unstage(file_error(&db, e))
    })?;
    File::open(state_dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| file_error(state_dir, e))?;
    drop(lock);
    if forced {
        writeln!(
            out,
            "warning: restored a copy that is not provably this host's, as asked (--force-foreign): {}",
            examined.foreign.join("; ")
        )
        .map_err(CtlError::Output)?;
    }
    writeln!(
        out,
        "restored {} ({copied} bytes) into {}; start credd, then run `credctl audit verify`",
        file.display(),
        db.display()
    )
    .map_err(CtlError::Output)?;
    Ok(Restored { forced })
}

/// The note credd turns into a `backup_restored` audit row at its next start: created 0600, never
/// through a link, replacing an older one not yet read.
fn write_note(state_dir: &Path, note: &str) -> Result<(), CtlError> {
    let path = state_dir.join(RESTORE_NOTE_NAME);
    if std::fs::symlink_metadata(&path).is_ok() {
        std::fs::remove_file(&path).map_err(|e| file_error(&path, e))?;
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| file_error(&path, e))?;
    file.write_all(note.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| file_error(&path, e))
}
