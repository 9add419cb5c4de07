//! Temporary access codes: generation, reading back what a user typed, and their life rules.
//!
//! A code is 80 bits from the OS RNG written as 16 Crockford base32 characters in groups of four
//! (`7KQ4-M2XD-9RTV-H3PE`), easy to read aloud over the phone. Only its SHA-256 digest is stored:
//! 80 bits are beyond brute force even for someone holding the digest, so no slow hash is needed.
//! What the user types is normalised first — dashes and spaces dropped, case folded, and the
//! look-alikes I and L read as 1, O as 0 — so every way of copying it down is accepted.

use rand::TryRng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use credd_proto::Secret;

/// Crockford's alphabet: no I, L, O or U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 16 symbols of 5 bits each.
pub const CODE_SYMBOLS: usize = 16;
const CODE_BYTES: usize = 10;
const GROUP: usize = 4;

pub type CodeDigest = [u8; 32];

/// A fresh code, as shown to the administrator.
pub fn generate() -> Result<Secret, String> {
    Ok(generate_many(1)?.remove(0))
}

/// `n` fresh codes from one read of the OS RNG (a bulk reset would otherwise make one system
/// call per code). The raw bytes are wiped as soon as they are encoded.
pub fn generate_many(n: usize) -> Result<Vec<Secret>, String> {
    let mut raw = Zeroizing::new(vec![0u8; CODE_BYTES * n]);
    rand::rngs::SysRng
        .try_fill_bytes(&mut raw[..])
        .map_err(|e| format!("OS random generator failed: {e}"))?;
    Ok(raw.chunks_exact(CODE_BYTES).map(encode).collect())
}

fn encode(raw: &[u8]) -> Secret {
    let mut symbols = Zeroizing::new(String::with_capacity(CODE_SYMBOLS + CODE_SYMBOLS / GROUP));
    // 80 bits = 16 × 5: read the bytes as one big-endian bit string, 5 bits at a time.
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut written = 0;
    for byte in raw.iter() {
        acc = (acc << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = ((acc >> bits) & 0x1f) as usize;
            if written > 0 && written % GROUP == 0 {
                symbols.push('-');
            }
            symbols.push(char::from(ALPHABET[index]));
            written += 1;
        }
        acc &= (1 << bits) - 1;
    }
    Secret::new(std::mem::take(&mut *symbols))
}

/// The canonical form of something typed at the password prompt, if it can be a code at all.
pub fn normalize(typed: &str) -> Option<Zeroizing<String>> {
    let mut out = Zeroizing::new(String::with_capacity(CODE_SYMBOLS));
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        if out.len() == CODE_SYMBOLS {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_SYMBOLS).then_some(out)
}

pub fn digest(normalized: &str) -> CodeDigest {
    Sha256::digest(normalized.as_bytes()).into()
}

pub fn matches(normalized: &str, stored: &[u8]) -> bool {
    digest(normalized).ct_eq(stored).into()
}

/// A stored code's state at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeState {
    Active,
    /// Its lifetime is over; refused even before the purge deletes it.
    Expired,
}

pub fn state(expires_at: i64, now: i64) -> CodeState {
    if now >= expires_at {
        CodeState::Expired
    } else {
        CodeState::Active
    }
}

/// After a wrong code: is it burned now?
pub fn burned(attempts_after_this_one: u32, max_attempts: u32) -> bool {
    attempts_after_this_one >= max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_grouped_crockford_and_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.expose(), b.expose());
        let shown = a.expose();
        assert_eq!(shown.len(), 19, "{shown}");
        let groups: Vec<&str> = shown.split('-').collect();
        assert_eq!(groups.len(), 4);
        assert!(groups.iter().all(|g| g.len() == 4));
        assert!(shown.bytes().all(|c| c == b'-' || ALPHABET.contains(&c)));
        assert_eq!(normalize(shown).unwrap().len(), CODE_SYMBOLS);
    }

    #[test]
    fn every_symbol_appears_over_many_codes() {
        // 80 bits per code means every position draws from all 32 symbols.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            seen.extend(generate().unwrap().expose().bytes().filter(|c| *c != b'-'));
        }
        assert_eq!(seen.len(), 32);
    }

    #[test]
    fn typing_variations_normalise_to_the_same_code() {
        let canonical = normalize("7KQ4-M2XD-9RTV-H3P0").unwrap();
        for typed in [
            "7kq4-m2xd-9rtv-h3p0",
            "7KQ4 M2XD 9RTV H3PO",
            "7KQ4M2XD9RTVH3P0",
            " 7kq4-m2xd 9rtv-h3po ",
        ] {
            assert_eq!(
                normalize(typed).unwrap().as_str(),
                canonical.as_str(),
                "{typed}"
            );
        }
        assert_eq!(
            normalize("IL00-0000-0000-0000").unwrap().as_str(),
            "1100000000000000"
        );
    }

    #[test]
    fn passwords_are_not_codes() {
        for typed in [
            "correct horse battery",
            "7KQ4-M2XD-9RTV",
            "7KQ4-M2XD-9RTV-H3PE-X",
            "7KQ4-M2XD-9RTV-H3PU",
            "7KQ4-M2XD-9RTV-H3P!",
            "",
        ] {
            assert!(normalize(typed).is_none(), "{typed}");
        }
    }

    #[test]
    fn digests_match_only_the_same_code() {
        let stored = digest("7KQ4M2XD9RTVH3P0");
        assert!(matches("7KQ4M2XD9RTVH3P0", &stored));
        assert!(!matches("7KQ4M2XD9RTVH3P1", &stored));
    }

    #[test]
    fn expiry_and_burning() {
        assert_eq!(state(100, 99), CodeState::Active);
        assert_eq!(state(100, 100), CodeState::Expired);
        assert!(!burned(4, 5));
        assert!(burned(5, 5));
    }
}
