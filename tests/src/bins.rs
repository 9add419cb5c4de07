//! Where the binaries under test are: next to this test executable's `deps/` directory.
//! `make test` builds the whole workspace first, so they are the ones from this very checkout.

use std::path::PathBuf;

fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test> -> target/<profile>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf()
}

fn existing(name: &str, candidates: &[PathBuf]) -> PathBuf {
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "{name} not found (looked at {candidates:?}); build the workspace first: \
                 `cargo build --workspace` (make test does this)"
            )
        })
}

pub fn credd() -> PathBuf {
    existing("credd", &[profile_dir().join("credd")])
}

pub fn credctl() -> PathBuf {
    existing("credctl", &[profile_dir().join("credctl")])
}

pub fn pam_module() -> PathBuf {
    let dir = profile_dir();
    existing(
        "libpam_credd.so",
        &[
            dir.join("libpam_credd.so"),
            dir.join("deps/libpam_credd.so"),
        ],
    )
}

/// True when running as root; root-only tests print why they skip otherwise.
pub fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// Prints a visible skip reason and returns true when the test needs root and does not have it.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("SKIPPED {test}: needs root (run `make test` as root)");
    true
}
