//! Typed user names as keys of in-memory tables, without keeping the names: a name typed at a
//! login prompt is often a password typed into the wrong field. The key is an HMAC of the name
//! under a secret drawn at start, so the tables hold nothing a memory dump could turn back into
//! what was typed.

use hmac::{Hmac, KeyInit, Mac};
use rand::TryRng;
use sha2::Sha256;

pub type NameKey = [u8; 32];

pub struct NameHasher {
    key: [u8; 32],
}

impl Default for NameHasher {
    fn default() -> NameHasher {
        NameHasher::new()
    }
}

impl NameHasher {
    pub fn new() -> NameHasher {
        let mut key = [0u8; 32];
        // Without OS randomness the key is fixed: the names are then only obscured, and the
        // tables keep working.
        let _ = rand::rngs::SysRng.try_fill_bytes(&mut key);
        NameHasher { key }
    }

    pub fn key(&self, name: &str) -> NameKey {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key)
            .expect("HMAC accepts any key length");
        mac.update(name.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_per_hasher_and_differ_between_names_and_hashers() {
        let a = NameHasher::new();
        let b = NameHasher::new();
        assert_eq!(a.key("alice"), a.key("alice"));
        assert_ne!(a.key("alice"), a.key("alicf"));
        assert_ne!(a.key("alice"), b.key("alice"));
    }
}
