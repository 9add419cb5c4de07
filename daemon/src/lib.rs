//! credd as a library: the daemon's modules, so that the binary, the fuzz targets and the
//! property tests drive the same code.

pub mod admin;
pub mod admin_guard;
pub mod alerts;
pub mod audit;
pub mod audit_handlers;
pub mod auditlog;
pub mod backup;
pub mod change;
pub mod codes;
pub mod config;
pub mod crypt;
pub mod error;
pub mod handlers;
pub mod hashing;
pub mod import;
pub mod kdf;
#[cfg(target_arch = "x86_64")]
pub mod kdf_shani;
pub mod lockout;
pub mod login;
pub mod namekey;
pub mod nss;
pub mod peer;
pub mod pool;
pub mod procinfo;
pub mod quality;
pub mod ratelimit;
pub mod reset;
pub mod secret_check;
pub mod server;
pub mod session_handlers;
pub mod state;
pub mod status;
pub mod store;
pub mod timefmt;
