//! The audit trail: the chained rows written in the transaction of each change (chain), and
//! their delivery to syslog after commit (syslog).

pub mod chain;
pub mod syslog;
