//! Where an attempt comes from: the key the rate limits, the hashing pool's lanes and the alert
//! detectors count by (`system::peer` says which a caller is).

/// Where a request comes from, as far as credd can believe it (docs/architecture.md#callers): the
/// rate limits, the hashing pool's lanes and the alert detectors all count by it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// `PAM_RHOST` from a caller that is root through and through (sshd, Dovecot's auth worker).
    Remote(String),
    /// A caller that is root through and through, without a remote host (login on a console, a
    /// local service, credctl).
    Service,
    /// Any other caller, by its uid (the real uid of a setuid program such as `su`).
    Local(u32),
}
