//! What the stored hashes say about the configuration, checked once at start: a pepper that does
//! not match, hashes that will not verify or that ask for more work than the caps allow.

use crate::config::Config;
use crate::crypto::hashing::{Hasher, Pepper};
use crate::error::{DaemonError, Result};
use crate::store::Store;

/// Accounts whose hash credd keeps but will not verify: legacy crypt(3) hashes imported while
/// `[hashing] accept_legacy` was on, which was turned off since. Their users cannot log in until
/// it is on again or they get a new password; say so at start rather than at their first login.
pub fn warn_of_legacy_hashes(config: &Config, store: &mut dyn Store) {
    if config.hashing.accept_legacy {
        return;
    }
    let legacy: Vec<String> = match store.accounts_per_scheme() {
        Ok(schemes) => schemes
            .into_iter()
            .filter(|(scheme, _)| {
                credd_proto::HashScheme::ALL
                    .iter()
                    .any(|s| s.is_legacy() && s.name() == scheme)
            })
            .map(|(scheme, n)| format!("{n} {scheme}"))
            .collect(),
        Err(e) => {
            eprintln!("credd: cannot count the stored hash schemes: {e}");
            return;
        }
    };
    if !legacy.is_empty() {
        eprintln!(
            "credd: accounts with legacy hashes that do not verify while [hashing] \
             accept_legacy = false: {}; reset them (credctl reset) or turn it on",
            legacy.join(", ")
        );
    }
}

/// Accounts whose stored hash asks for more work than `[hashing]`'s cost caps (issue 15 R3): their
/// logins fail without running it. Said at start, as `credctl check` says it.
pub fn warn_of_hashes_over_cap(config: &Config, store: &mut dyn Store) {
    let hasher = Hasher::new(config.hashing.iterations, None)
        .accepting_legacy(config.hashing.accept_legacy)
        .with_caps(config.hashing.cost_caps());
    match store.accounts_over_cap(&hasher) {
        Ok((_, over)) if over.is_empty() => {}
        Ok((_, over)) => {
            let mut names: Vec<&str> = over
                .iter()
                .take(20)
                .map(|(name, _)| name.as_str())
                .collect();
            if over.len() > 20 {
                names.push("…");
            }
            eprintln!(
                "credd: {} accounts have hashes over the [hashing] cost caps, which logins never \
                 run (they fail): {}; the first: {}; give them new passwords (credctl passwd or \
                 reset) or raise the cap; credctl check lists them",
                over.len(),
                names.join(", "),
                over[0].1
            );
        }
        Err(e) => eprintln!("credd: cannot check the stored hashes' costs: {e}"),
    }
}

/// Loads `[hashing] pepper_file` and seals every plain hash with it. Refuses to start when stored
/// hashes were sealed with a pepper other than the configured one (or with one while none is
/// configured): every such account would fail every login, silently.
pub fn apply_pepper(config: &Config, store: &mut dyn Store) -> Result<Option<Pepper>> {
    let pepper = config
        .hashing
        .pepper_file
        .as_deref()
        .map(Pepper::load)
        .transpose()?;
    let ours = pepper.as_ref().map(|p| p.id().to_string());
    let foreign: Vec<String> = store
        .pepper_ids()?
        .into_iter()
        .filter(|(id, _)| Some(id) != ours.as_ref())
        .map(|(id, n)| format!("{n} with key id {id}"))
        .collect();
    if !foreign.is_empty() {
        return Err(DaemonError::Startup(format!(
            "stored hashes are peppered ({}) but hashing.pepper_file {}; restore the pepper file \
             these hashes were sealed with (they cannot be verified without it)",
            foreign.join(", "),
            match &ours {
                Some(id) => format!("has key id {id}"),
                None => "is not set".to_string(),
            }
        )));
    }
    if let Some(pepper) = pepper {
        let hasher = Hasher::new(config.hashing.iterations, Some(pepper));
        let sealed = store.seal_hashes(&hasher)?;
        if sealed > 0 {
            eprintln!("credd: sealed {sealed} stored hashes with the pepper");
        }
        return Ok(hasher.into_pepper());
    }
    Ok(None)
}
