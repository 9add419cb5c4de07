//! The daemon's directories: created with exactly their mode, refused when others could write
//! them, and locked for the daemon's whole life.

use std::fs::OpenOptions;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use credd_proto::paths;

use crate::error::{DaemonError, Result};

/// Creates `path` with exactly `mode` (the umask would otherwise narrow it: the runtime directory
/// must stay searchable so that every user can reach pam.sock). An existing directory keeps the
/// mode its owner gave it (e.g. systemd's RuntimeDirectory=), but must be ours and writable by
/// nobody else: whoever can write the runtime directory can put a fake pam.sock in it and collect
/// passwords.
pub fn make_dir(path: &Path, mode: u32) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        let me = nix::unistd::geteuid().as_raw();
        let problem = if !meta.is_dir() {
            Some("is not a directory".to_string())
        } else if meta.uid() != me && meta.uid() != 0 {
            Some(format!("is owned by uid {}", meta.uid()))
        } else if meta.mode() & 0o022 != 0 {
            Some(format!(
                "is writable by group or others (mode {:o})",
                meta.mode() & 0o7777
            ))
        } else {
            None
        };
        return match problem {
            Some(problem) => Err(DaemonError::Startup(format!(
                "{} {problem}; refusing to use it",
                path.display()
            ))),
            None => Ok(()),
        };
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .and_then(|()| std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)))
        .map_err(|e| DaemonError::io(path, e))
}

/// One daemon per state directory (a second one would be a second writer) and per runtime
/// directory (it would replace our sockets).
pub fn lock_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>> {
    let path = dir.join(paths::LOCK_NAME);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
        .map_err(|e| DaemonError::io(&path, e))?;
    // Held until the returned lock is dropped, that is for the daemon's whole life.
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock).map_err(
        |(_, errno)| {
            if errno == nix::errno::Errno::EWOULDBLOCK {
                DaemonError::AlreadyRunning(dir.to_path_buf())
            } else {
                DaemonError::io(&path, std::io::Error::from(errno))
            }
        },
    )
}
