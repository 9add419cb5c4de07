//! Default locations shared by every program, so the daemon, the module and credctl agree.

pub const DEFAULT_CONFIG: &str = "/etc/credd/credd.toml";
pub const DEFAULT_RUNTIME_DIR: &str = "/run/credd";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/credd";
pub const PAM_SOCKET_NAME: &str = "pam.sock";
pub const ADMIN_SOCKET_NAME: &str = "admin.sock";
pub const DEFAULT_PAM_SOCKET: &str = "/run/credd/pam.sock";
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/credd/admin.sock";
pub const DATABASE_NAME: &str = "credd.db";
pub const LOCK_NAME: &str = "credd.lock";
/// Environment variable credctl reads when `--socket` is not given.
pub const ADMIN_SOCKET_ENV: &str = "CREDD_ADMIN_SOCKET";
