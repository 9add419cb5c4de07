//! What the process does to itself before it reads a secret.

/// New files private by default (database, WAL, sockets before their chmod), and no core dumps or
/// ptrace by other same-uid processes: memory holds passwords in flight.
pub fn harden_process() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    if let Err(e) = nix::sys::prctl::set_dumpable(false) {
        eprintln!("credd: cannot make the process undumpable: {e}");
    }
}
