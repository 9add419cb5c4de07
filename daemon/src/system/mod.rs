//! What credd asks of the operating system: the kernel's view of a peer process, the account and
//! group databases, the service manager, and the clock.

pub mod dirs;
pub mod groups;
pub mod hardening;
pub mod notify;
pub mod nss;
pub mod peer;
pub mod procinfo;
pub mod time;
