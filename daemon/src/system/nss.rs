//! The system's account database (NSS), as bulk operations need it.
//!
//! Single requests ask NSS per name (`getpwnam_r`). A 100 000-row import cannot afford 100 000
//! lookups that each read /etc/passwd, so when every `passwd` source in /etc/nsswitch.conf is one
//! that enumerates completely (files, compat, systemd, db), the database is read once with
//! getpwent. With other sources (ldap, sss, winbind…) enumeration may be partial or disabled, and
//! lookups stay per name: correct, only slower.

use std::collections::HashMap;
use std::ffi::CStr;
use std::sync::Mutex;

/// Sources whose enumeration is known to be complete.
const ENUMERABLE: &[&str] = &["files", "compat", "systemd", "db"];

/// getpwent keeps its position in process-global state: one walk at a time.
static WALK: Mutex<()> = Mutex::new(());

pub enum Accounts {
    /// Every account NSS knows: name → uid and uid → name.
    Complete {
        by_name: HashMap<String, u32>,
        by_uid: HashMap<u32, String>,
    },
    /// Ask per name.
    PerName,
}

impl Accounts {
    pub fn load() -> Accounts {
        let conf = std::fs::read_to_string("/etc/nsswitch.conf").unwrap_or_default();
        if !passwd_sources_enumerate(&conf) {
            return Accounts::PerName;
        }
        let _walk = WALK.lock().unwrap_or_else(|p| p.into_inner());
        let mut by_name = HashMap::new();
        let mut by_uid = HashMap::new();
        // SAFETY: getpwent's static buffer is only read before the next call, under WALK.
        unsafe {
            libc::setpwent();
            loop {
                let entry = libc::getpwent();
                if entry.is_null() {
                    break;
                }
                let name = CStr::from_ptr((*entry).pw_name)
                    .to_string_lossy()
                    .into_owned();
                let uid = (*entry).pw_uid;
                by_uid.entry(uid).or_insert_with(|| name.clone());
                by_name.insert(name, uid);
            }
            libc::endpwent();
        }
        Accounts::Complete { by_name, by_uid }
    }

    pub fn uid_of(&self, name: &str) -> Option<u32> {
        match self {
            Accounts::Complete { by_name, .. } => by_name.get(name).copied(),
            Accounts::PerName => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
        }
    }

    pub fn name_of(&self, uid: u32) -> Option<String> {
        match self {
            Accounts::Complete { by_uid, .. } => by_uid.get(&uid).cloned(),
            Accounts::PerName => nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name),
        }
    }
}

/// Whether every source on the `passwd:` line enumerates completely. `[NOTFOUND=return]`-style
/// actions are ignored; an absent line means glibc's default ("files").
fn passwd_sources_enumerate(conf: &str) -> bool {
    let line = conf
        .lines()
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .find_map(|l| l.strip_prefix("passwd:"));
    match line {
        None => true,
        Some(sources) => sources
            .split_whitespace()
            .filter(|s| !s.starts_with('['))
            .all(|s| ENUMERABLE.contains(&s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_enumerable_sources_allow_one_walk() {
        assert!(passwd_sources_enumerate("passwd:         files systemd\n"));
        assert!(passwd_sources_enumerate("# comment\npasswd: compat\n"));
        assert!(passwd_sources_enumerate("group: files\n"));
        assert!(!passwd_sources_enumerate("passwd: files sss\n"));
        assert!(!passwd_sources_enumerate(
            "passwd: files [NOTFOUND=return] ldap\n"
        ));
    }

    #[test]
    fn root_is_found_either_way() {
        let accounts = Accounts::load();
        assert_eq!(accounts.uid_of("root"), Some(0));
        assert_eq!(accounts.name_of(0).as_deref(), Some("root"));
        assert_eq!(Accounts::PerName.uid_of("root"), Some(0));
    }
}
