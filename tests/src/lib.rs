//! Helpers for credd's end-to-end tests: a real daemon, the real PAM module through real libpam.

pub mod bins;
pub mod daemon;
pub mod dovecot;
pub mod fixtures;
pub mod libpam;
pub mod pty;
pub mod rsyslog;
pub mod system_pam;
pub mod system_users;

pub use daemon::TestDaemon;
