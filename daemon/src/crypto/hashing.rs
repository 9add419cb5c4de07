//! Password hashes as PHC strings.
//!
//! - `$pbkdf2-sha256$i=600000,l=32$SALT$DK`: PBKDF2-HMAC-SHA256.
//! - `$pbkdf2-sha256-peppered$i=600000,l=32,k=KEYID$SALT$MAC`: the same derived key DK, stored
//!   only as HMAC-SHA256(pepper, DK). The pepper lives in a file outside the database
//!   (`[hashing] pepper_file`), so a stolen database alone cannot be attacked offline: each guess
//!   would need the pepper too. Because the MAC is over DK, not over the password, an existing
//!   plain hash is sealed the moment the pepper is enabled (at start), without waiting for its
//!   user's next login. `k` names the pepper (a MAC of a constant, not a hash of the pepper) so a
//!   wrong or missing pepper file is caught at start instead of failing every login.
//!
//! Verification recomputes with the stored parameters and compares in constant time. Unknown
//! users are "verified" against a dummy of the same cost ([`Hasher::dummy`]), so the reply time
//! does not reveal whether an account exists.
//!
//! Besides its own PBKDF2 strings, credd verifies the crypt(3) hashes of a shadow file it took
//! over (`credctl import --from-shadow`) through the system's libxcrypt ([`crate::crypto::crypt`]):
//! yescrypt, gost-yescrypt, scrypt, bcrypt, sha512crypt and sha256crypt, and the legacy
//! descrypt, bsdicrypt and md5crypt only with `[hashing] accept_legacy`. Such a hash is never
//! sealed by the pepper (the MAC is over PBKDF2's derived key, which a crypt hash does not
//! have); the first successful login replaces it with a PBKDF2 hash, peppered when a pepper is
//! configured ([`Hasher::needs_rehash`]).

use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use base64ct::{Base64Unpadded, Encoding};
use credd_proto::{HashScheme, MODERN_CRYPT_SCHEMES};
use hmac::{Hmac, KeyInit, Mac};
use pbkdf2::phc::PasswordHash;
use rand::TryRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{DaemonError, Result};

pub const SCHEME: &str = "pbkdf2-sha256";
pub const PEPPERED_SCHEME: &str = "pbkdf2-sha256-peppered";
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;
/// Longest derived key we recompute; a stored `l=` above it is malformed, not a reason to allocate.
const MAX_OUTPUT_LEN: usize = 64;
/// A pepper shorter than SHA-256's output would be the weakest link.
pub const MIN_PEPPER_LEN: usize = 32;
const MAX_PEPPER_LEN: usize = 4096;

/// The secret of `[hashing] pepper_file`, and its public name.
pub struct Pepper {
    key: Zeroizing<Vec<u8>>,
    id: String,
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pepper(k={})", self.id)
    }
}

impl Pepper {
    /// Reads the pepper file, refusing one that is a symlink, not a regular file, readable or
    /// writable by group or others, owned by anyone but root (or the daemon's own uid), or of a
    /// length outside 32..=4096 bytes. Its bytes are used as they are, newline included.
    pub fn load(path: &Path) -> Result<Pepper> {
        let refuse = |message: String| {
            DaemonError::Startup(format!("hashing.pepper_file {}: {message}", path.display()))
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| refuse(e.to_string()))?;
        let meta = file.metadata().map_err(|e| refuse(e.to_string()))?;
        let me = nix::unistd::geteuid().as_raw();
        if !meta.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if meta.uid() != 0 && meta.uid() != me {
            return Err(refuse(format!("owned by uid {}, not root", meta.uid())));
        }
        if meta.mode() & 0o077 != 0 {
            return Err(refuse(format!(
                "group or others have access (mode {:o}); it must be 0600 or 0400",
                meta.mode() & 0o7777
            )));
        }
        let len = meta.len() as usize;
        if !(MIN_PEPPER_LEN..=MAX_PEPPER_LEN).contains(&len) {
            return Err(refuse(format!(
                "{len} bytes; a pepper must hold {MIN_PEPPER_LEN} to {MAX_PEPPER_LEN} bytes \
                 (e.g. head -c 32 /dev/urandom)"
            )));
        }
        let mut key = Zeroizing::new(Vec::with_capacity(len));
        std::io::Read::read_to_end(
            &mut std::io::Read::take(&file, MAX_PEPPER_LEN as u64 + 1),
            &mut key,
        )
        .map_err(|e| refuse(e.to_string()))?;
        Pepper::from_bytes(key).map_err(refuse)
    }

    pub fn from_bytes(key: Zeroizing<Vec<u8>>) -> std::result::Result<Pepper, String> {
        if !(MIN_PEPPER_LEN..=MAX_PEPPER_LEN).contains(&key.len()) {
            return Err(format!(
                "{} bytes; a pepper must hold {MIN_PEPPER_LEN} to {MAX_PEPPER_LEN} bytes",
                key.len()
            ));
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(b"credd pepper id v1");
        let id = Base64Unpadded::encode_string(&mac.finalize().into_bytes()[..6]);
        Ok(Pepper { key, id })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn seal(&self, dk: &[u8], out: &mut [u8; 32]) {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(dk);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
}

/// The most work a stored hash may ask for (`[hashing] max_iterations`, `max_crypt_rounds`,
/// `max_bcrypt_cost`, `max_memory_mib`). A hash over them is refused at import, reported by
/// `credctl check` and at start, and never run at login: one verification of it could otherwise
/// hold a hashing thread for hours (bcrypt cost 31, PBKDF2 at 2^32 − 1 iterations).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CostCaps {
    pub max_iterations: u32,
    pub max_crypt_rounds: u64,
    pub max_bcrypt_cost: u32,
    pub max_memory_mib: u64,
}

/// The default PBKDF2 cap: four times the policy, and never below four times its default, so that
/// lowering `iterations` does not lock out every account hashed under the old value.
pub const MIN_DEFAULT_MAX_ITERATIONS: u32 = 2_400_000;
pub const DEFAULT_MAX_CRYPT_ROUNDS: u64 = 1_000_000;
pub const DEFAULT_MAX_BCRYPT_COST: u32 = 13;
pub const DEFAULT_MAX_MEMORY_MIB: u64 = 128;

/// 4 × `iterations` and at least [`MIN_DEFAULT_MAX_ITERATIONS`].
pub fn default_max_iterations(iterations: u32) -> u32 {
    iterations.saturating_mul(4).max(MIN_DEFAULT_MAX_ITERATIONS)
}

impl CostCaps {
    /// The configuration's defaults for a policy of `iterations`.
    pub fn defaults_for(iterations: u32) -> CostCaps {
        CostCaps {
            max_iterations: default_max_iterations(iterations),
            max_crypt_rounds: DEFAULT_MAX_CRYPT_ROUNDS,
            max_bcrypt_cost: DEFAULT_MAX_BCRYPT_COST,
            max_memory_mib: DEFAULT_MAX_MEMORY_MIB,
        }
    }
}

/// Hashes and verifies under the configured policy: iteration count, optional pepper, whether
/// legacy crypt(3) schemes are verified, and the cost caps.
#[derive(Clone, Debug)]
pub struct Hasher {
    iterations: u32,
    pepper: Option<Arc<Pepper>>,
    accept_legacy: bool,
    caps: CostCaps,
}

/// Why credd will not take a hash string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A legacy crypt(3) scheme while `[hashing] accept_legacy` is off. An import from a shadow
    /// file skips such an entry (and says why) instead of refusing the whole file.
    Legacy(HashScheme),
    /// Anything else: the message says what, without the hash.
    Unusable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Legacy(scheme) => write!(
                f,
                "{scheme} is a legacy scheme; credd verifies it only with [hashing] \
                 accept_legacy = true"
            ),
            Refusal::Unusable(message) => f.write_str(message),
        }
    }
}

impl Hasher {
    pub fn new(iterations: u32, pepper: Option<Pepper>) -> Hasher {
        Hasher {
            iterations,
            pepper: pepper.map(Arc::new),
            accept_legacy: false,
            caps: CostCaps::defaults_for(iterations),
        }
    }

    /// `[hashing]`'s cost caps.
    pub fn with_caps(mut self, caps: CostCaps) -> Hasher {
        self.caps = caps;
        self
    }

    /// Why `stored` asks for more work than the caps allow, naming the parameter and the key
    /// (never the hash); `None` when it is within them or is not a hash credd would run at all.
    pub fn over_cap(&self, stored: &str) -> Option<String> {
        use credd_proto::CryptCost;
        let caps = &self.caps;
        match HashScheme::of(stored) {
            Some(scheme) if scheme.is_crypt() => match credd_proto::crypt_cost(scheme, stored)? {
                CryptCost::Rounds(n) if n > caps.max_crypt_rounds => {
                    let what = if scheme == HashScheme::BsdiCrypt {
                        "count"
                    } else {
                        "rounds"
                    };
                    Some(format!(
                        "{scheme} {what}={n} is above [hashing] max_crypt_rounds = {}",
                        caps.max_crypt_rounds
                    ))
                }
                CryptCost::BcryptCost(cost) if cost > caps.max_bcrypt_cost => Some(format!(
                    "bcrypt cost {cost} is above [hashing] max_bcrypt_cost = {}",
                    caps.max_bcrypt_cost
                )),
                CryptCost::Memory(bytes) if bytes > u128::from(caps.max_memory_mib) << 20 => {
                    Some(format!(
                        "{scheme} parameters ask for {} MiB (128 × N × r × p × (t + 1) bytes), \
                             above [hashing] max_memory_mib = {}",
                        bytes.div_ceil(1 << 20),
                        caps.max_memory_mib
                    ))
                }
                _ => None,
            },
            _ => {
                let parts = Parts::parse(stored)?;
                (parts.iterations > caps.max_iterations).then(|| {
                    format!(
                        "{} i={} is above [hashing] max_iterations = {}",
                        if parts.key_id.is_some() {
                            PEPPERED_SCHEME
                        } else {
                            SCHEME
                        },
                        parts.iterations,
                        caps.max_iterations
                    )
                })
            }
        }
    }

    /// `[hashing] accept_legacy`: verify descrypt, bsdicrypt and md5crypt hashes too.
    /// The same pepper under a reloaded policy (the pepper itself changes only at start, where
    /// stored hashes are sealed with it).
    pub fn with_iterations(&self, iterations: u32) -> Hasher {
        Hasher {
            iterations,
            pepper: self.pepper.clone(),
            accept_legacy: self.accept_legacy,
            caps: self.caps.clone(),
        }
    }

    pub fn accepting_legacy(mut self, accept: bool) -> Hasher {
        self.accept_legacy = accept;
        self
    }

    pub fn iterations(&self) -> u32 {
        self.iterations
    }

    /// Gives the pepper back, for a daemon built from it after the store was sealed.
    pub fn into_pepper(self) -> Option<Pepper> {
        self.pepper.and_then(|p| Arc::try_unwrap(p).ok())
    }

    pub fn pepper_id(&self) -> Option<&str> {
        self.pepper.as_deref().map(Pepper::id)
    }

    /// A new hash of `password` with a fresh salt, sealed with the pepper when there is one.
    pub fn hash(&self, password: &[u8]) -> Result<String> {
        let plain = hash_password(password, self.iterations)?;
        Ok(self.seal(&plain).unwrap_or(plain))
    }

    /// True when `password` matches `stored`. A malformed stored hash, a peppered one whose
    /// pepper is not ours, or a legacy crypt(3) hash without `accept_legacy`, never matches; the
    /// caller cannot tell that case apart from a wrong password, which is what a peer must see
    /// anyway. Such a hash still costs a dummy verification, so that its reply takes no less time
    /// than an unknown user's.
    pub fn verify(&self, password: &[u8], stored: &str) -> bool {
        // Over the cost caps: never run (it could hold this thread for hours), and answered in
        // the time of a wrong password for an unknown name.
        if self.over_cap(stored).is_some() {
            self.dummy(password);
            return false;
        }
        match HashScheme::of(stored) {
            Some(scheme) if scheme.is_crypt() => {
                if self.check(stored).is_ok() {
                    return crate::crypto::crypt::verify(password, stored);
                }
                self.dummy(password);
                return false;
            }
            _ => {}
        }
        let Some(parts) = Parts::parse(stored) else {
            self.dummy(password);
            return false;
        };
        let mut dk = Zeroizing::new([0u8; MAX_OUTPUT_LEN]);
        let dk = &mut dk[..parts.output_len];
        match (parts.key_id.as_deref(), self.pepper.as_deref()) {
            (None, _) => {
                crate::crypto::kdf::pbkdf2_hmac_sha256(password, &parts.salt, parts.iterations, dk);
                dk.ct_eq(&parts.value).into()
            }
            (Some(k), Some(pepper)) if k == pepper.id() => {
                crate::crypto::kdf::pbkdf2_hmac_sha256(password, &parts.salt, parts.iterations, dk);
                let mut mac = Zeroizing::new([0u8; 32]);
                pepper.seal(dk, &mut mac);
                mac.ct_eq(&parts.value[..]).into()
            }
            _ => {
                self.dummy(password);
                false
            }
        }
    }

    /// Spends the same work as a real verification and always fails.
    pub fn dummy(&self, password: &[u8]) {
        let mut dk = Zeroizing::new([0u8; OUTPUT_LEN]);
        crate::crypto::kdf::pbkdf2_hmac_sha256(
            password,
            b"credd-dummy-salt",
            self.iterations,
            &mut dk[..],
        );
        if let Some(pepper) = &self.pepper {
            let mut mac = Zeroizing::new([0u8; 32]);
            pepper.seal(&dk[..], &mut mac);
            std::hint::black_box(&mac);
        }
        std::hint::black_box(&dk);
    }

    /// Whether a successful login should replace `stored`: fewer iterations than the policy, a
    /// scheme other than ours (every crypt(3) hash taken over from a shadow file), or no pepper
    /// while one is configured.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match Parts::parse(stored) {
            None => true,
            Some(p) => {
                p.iterations < self.iterations || (self.pepper.is_some() && p.key_id.is_none())
            }
        }
    }

    /// The peppered form of a plain `$pbkdf2-sha256$` hash, without the password: `None` when
    /// there is no pepper or `stored` is not a plain PBKDF2 hash of 32 bytes. A crypt(3) hash is
    /// left as it is: the pepper seals PBKDF2's derived key, which only its user's next login
    /// can produce for it.
    pub fn seal(&self, stored: &str) -> Option<String> {
        let pepper = self.pepper.as_deref()?;
        let parts = Parts::parse(stored)?;
        if parts.key_id.is_some() || parts.output_len != OUTPUT_LEN {
            return None;
        }
        let mut mac = [0u8; 32];
        pepper.seal(&parts.value, &mut mac);
        Some(format!(
            "${PEPPERED_SCHEME}$i={},l={},k={}${}${}",
            parts.iterations,
            OUTPUT_LEN,
            pepper.id(),
            Base64Unpadded::encode_string(&parts.salt),
            Base64Unpadded::encode_string(&mac),
        ))
    }

    /// Whether credd can verify `stored` under this policy (for imported hash strings).
    pub fn accepts(&self, stored: &str) -> std::result::Result<(), String> {
        self.check(stored).map_err(|refusal| refusal.to_string())
    }

    /// [`Hasher::accepts`], telling a legacy scheme refused by policy from an unusable string.
    pub fn check(&self, stored: &str) -> std::result::Result<(), Refusal> {
        let unusable = |m: String| Err(Refusal::Unusable(m));
        match HashScheme::of(stored) {
            Some(scheme) if scheme.is_crypt() => {
                credd_proto::check_shape(scheme, stored).map_err(Refusal::Unusable)?;
                if scheme.is_legacy() && !self.accept_legacy {
                    return Err(Refusal::Legacy(scheme));
                }
                self.within_caps(stored)
            }
            _ => {
                let Some(parts) = Parts::parse(stored) else {
                    return unusable(format!(
                        "not a hash credd can verify: a ${SCHEME}$ or ${PEPPERED_SCHEME}$ PHC \
                         string, or a crypt(3) hash of {MODERN_CRYPT_SCHEMES} (md5crypt, \
                         descrypt and bsdicrypt with [hashing] accept_legacy = true)"
                    ));
                };
                match (parts.key_id.as_deref(), self.pepper_id()) {
                    (None, _) => self.within_caps(stored),
                    (Some(k), Some(ours)) if k == ours => self.within_caps(stored),
                    (Some(k), _) => unusable(format!(
                        "peppered with key id {k}, not with this host's pepper_file"
                    )),
                }
            }
        }
    }

    fn within_caps(&self, stored: &str) -> std::result::Result<(), Refusal> {
        match self.over_cap(stored) {
            None => Ok(()),
            Some(why) => Err(Refusal::Unusable(format!(
                "{why}: credd would never verify it (raise the cap in credd.toml if the cost \
                 is meant)"
            ))),
        }
    }
}

/// A parsed stored hash of either form.
struct Parts {
    iterations: u32,
    output_len: usize,
    key_id: Option<String>,
    salt: Vec<u8>,
    value: Zeroizing<Vec<u8>>,
}

impl Parts {
    fn parse(stored: &str) -> Option<Parts> {
        let parsed = PasswordHash::new(stored).ok()?;
        let peppered = match parsed.algorithm.as_str() {
            SCHEME => false,
            PEPPERED_SCHEME => true,
            _ => return None,
        };
        let mut iterations = None;
        let mut output_len = OUTPUT_LEN;
        let mut key_id = None;
        for (name, value) in parsed.params.iter() {
            match name.as_str() {
                "i" => iterations = Some(value.decimal().ok()?),
                "l" => output_len = usize::try_from(value.decimal().ok()?).ok()?,
                "k" if peppered => key_id = Some(value.as_str().to_string()),
                _ => return None,
            }
        }
        let iterations = iterations.filter(|&i| i >= 1)?;
        if peppered != key_id.is_some() || output_len == 0 || output_len > MAX_OUTPUT_LEN {
            return None;
        }
        let salt = parsed.salt?.as_ref().to_vec();
        let value = Zeroizing::new(parsed.hash?.as_bytes().to_vec());
        let expected_len = if peppered { 32 } else { output_len };
        if value.len() != expected_len {
            return None;
        }
        Some(Parts {
            iterations,
            output_len,
            key_id,
            salt,
            value,
        })
    }
}

/// A plain PBKDF2 hash of `password` with a fresh salt from the OS RNG, in the PHC form the
/// `pbkdf2` crate writes (the tests check that it reads it back).
fn hash_password(password: &[u8], iterations: u32) -> Result<String> {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::SysRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| DaemonError::Hashing(format!("OS random generator failed: {e}")))?;
    if iterations == 0 {
        return Err(DaemonError::Hashing("iterations must be at least 1".into()));
    }
    let mut dk = Zeroizing::new([0u8; OUTPUT_LEN]);
    crate::crypto::kdf::pbkdf2_hmac_sha256(password, &salt, iterations, &mut dk[..]);
    Ok(format!(
        "${SCHEME}$i={iterations},l={OUTPUT_LEN}${}${}",
        Base64Unpadded::encode_string(&salt),
        Base64Unpadded::encode_string(&dk[..]),
    ))
}

/// The parameters of a stored hash, for `user show` and for the per-scheme counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashInfo {
    pub scheme: String,
    /// PBKDF2's iterations, or the rounds of sha512crypt and sha256crypt; `None` for schemes
    /// whose cost is not an iteration count (yescrypt, scrypt, bcrypt, …).
    pub iterations: Option<u32>,
}

/// The scheme and iteration count of a well-formed stored hash; `None` for anything credd could
/// not verify however configured.
pub fn inspect(stored: &str) -> Option<HashInfo> {
    match HashScheme::of(stored) {
        Some(scheme) if scheme.is_crypt() => {
            credd_proto::check_shape(scheme, stored).ok()?;
            Some(HashInfo {
                scheme: scheme.name().to_string(),
                iterations: credd_proto::crypt_rounds(scheme, stored),
            })
        }
        _ => {
            let parts = Parts::parse(stored)?;
            Some(HashInfo {
                scheme: if parts.key_id.is_some() {
                    PEPPERED_SCHEME
                } else {
                    SCHEME
                }
                .to_string(),
                iterations: Some(parts.iterations),
            })
        }
    }
}

/// The scheme of a stored hash as listings and counts name it: [`inspect`]'s, or `unknown`.
pub fn scheme_name(stored: &str) -> String {
    inspect(stored).map_or_else(|| "unknown".to_string(), |info| info.scheme)
}

/// A stored hash in the audit trail: `yescrypt`, `pbkdf2-sha256 i=600000`.
pub fn describe(stored: &str) -> String {
    match inspect(stored) {
        None => "unknown".to_string(),
        Some(HashInfo {
            scheme,
            iterations: Some(i),
        }) if !HashScheme::of(stored).is_some_and(HashScheme::is_crypt) => {
            format!("{scheme} i={i}")
        }
        Some(info) => info.scheme,
    }
}

/// The key id of a peppered hash.
pub fn pepper_id_of(stored: &str) -> Option<String> {
    Parts::parse(stored)?.key_id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> Hasher {
        Hasher::new(1000, None)
    }

    fn pepper(byte: u8) -> Pepper {
        Pepper::from_bytes(Zeroizing::new(vec![byte; 32])).unwrap()
    }

    #[test]
    fn hash_is_phc_and_verifies() {
        let h = plain().hash(b"correct horse battery").unwrap();
        assert!(h.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{h}");
        assert!(plain().verify(b"correct horse battery", &h));
        assert!(!plain().verify(b"correct horse batterz", &h));
        assert_eq!(
            inspect(&h),
            Some(HashInfo {
                scheme: SCHEME.into(),
                iterations: Some(1000)
            })
        );
        assert_eq!(describe(&h), "pbkdf2-sha256 i=1000");
    }

    #[test]
    fn our_phc_strings_verify_with_the_pbkdf2_crate() {
        use pbkdf2::password_hash::PasswordVerifier;
        let h = plain().hash(b"cross check").unwrap();
        let parsed = PasswordHash::new(&h).unwrap();
        assert!(
            pbkdf2::Pbkdf2::default()
                .verify_password(b"cross check", &parsed)
                .is_ok()
        );
        assert!(
            pbkdf2::Pbkdf2::default()
                .verify_password(b"cross checK", &parsed)
                .is_err()
        );
    }

    #[test]
    fn salts_differ() {
        let a = plain().hash(b"same").unwrap();
        let b = plain().hash(b"same").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn published_vector_verifies() {
        // RFC 7914 §11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, dkLen=64 — c=1 is below the
        // crate's minimum, so use the 4096-round vector from the pbkdf2 crate's own tests instead.
        let stored = "$pbkdf2-sha256$i=4096,l=40\
            $c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx0\
            $NIyJ28vTKy8y2BS4EW6EzysXNH68GAAYHE4qH7jdU+HGNVGMfaxH6Q";
        assert!(plain().verify(b"passwordPASSWORDpassword", stored));
        assert!(!plain().verify(b"passwordPASSWORDpassworD", stored));
    }

    #[test]
    fn malformed_or_foreign_hashes_never_match() {
        for stored in [
            "",
            "plain",
            "$6$salt$hash",
            "$y$j9T$salt$short",
            "$pbkdf2-sha512$i=1000,l=32$c2FsdA$aGFzaA",
            "$pbkdf2-sha256$i=1000,l=32,k=abc$c2FsdA$aGFzaA",
            "$pbkdf2-sha256-peppered$i=1000,l=32$c2FsdA$aGFzaA",
        ] {
            assert!(!plain().verify(b"x", stored), "{stored}");
            assert!(inspect(stored).is_none(), "{stored}");
        }
    }

    #[test]
    fn a_sealed_hash_verifies_only_with_its_pepper() {
        let hasher = Hasher::new(1000, Some(pepper(7)));
        let plain_hash = plain().hash(b"pepper me please").unwrap();
        let sealed = hasher.seal(&plain_hash).unwrap();
        let k = hasher.pepper_id().unwrap();
        assert!(
            sealed.starts_with(&format!("$pbkdf2-sha256-peppered$i=1000,l=32,k={k}$")),
            "{sealed}"
        );
        // The salt is kept, the derived key is not.
        let salt = plain_hash.split('$').nth(3).unwrap();
        let dk = plain_hash.split('$').nth(4).unwrap();
        assert_eq!(sealed.split('$').nth(3).unwrap(), salt);
        assert!(!sealed.contains(dk));
        assert!(hasher.verify(b"pepper me please", &sealed));
        assert!(!hasher.verify(b"pepper me pleasE", &sealed));
        // Without the pepper, or with another one, nothing verifies.
        assert!(!plain().verify(b"pepper me please", &sealed));
        let other = Hasher::new(1000, Some(pepper(8)));
        assert!(!other.verify(b"pepper me please", &sealed));
        assert!(other.accepts(&sealed).is_err());
        assert!(hasher.accepts(&sealed).is_ok());
        // Sealing is for plain hashes only; a sealed hash is not sealed twice.
        assert_eq!(hasher.seal(&sealed), None);
        assert_eq!(plain().seal(&plain_hash), None);
        assert_eq!(pepper_id_of(&sealed).as_deref(), Some(k));
        assert_eq!(inspect(&sealed).unwrap().scheme, PEPPERED_SCHEME);
    }

    #[test]
    fn new_hashes_are_peppered_and_old_ones_need_a_rehash() {
        let hasher = Hasher::new(1000, Some(pepper(1)));
        let h = hasher.hash(b"a fresh one").unwrap();
        assert!(h.starts_with("$pbkdf2-sha256-peppered$"), "{h}");
        assert!(hasher.verify(b"a fresh one", &h));
        assert!(!hasher.needs_rehash(&h));
        let old = plain().hash(b"a fresh one").unwrap();
        assert!(hasher.needs_rehash(&old));
        assert!(!plain().needs_rehash(&old));
        assert!(Hasher::new(2000, None).needs_rehash(&old));
    }

    // Made with mkpasswd (libxcrypt) for the password "taken over".
    const YESCRYPT: &str =
        "$y$j9T$VbkXPm5C2wjBrvZ/6JpTu0$EYsos16gxNjxFH.c.NDlqDcYmS/wEthFBQCv4wQMMC/";
    const SHA512CRYPT: &str = "$6$BUoJ6R44k7teooiV$SbQqs/iR4z.DBPIPPm48sq7EXy.hDy.WzGqYLCxg1nlOEibKHgbUNJHABP4ZA7QF8vRlOIbzq871VDnUUVw1m/";
    const MD5CRYPT: &str = "$1$hiSDN4d0$gMyTRicrObrIbgZwriCHv.";
    const DESCRYPT: &str = "Gl7hXWSY.FcOQ";

    #[test]
    fn crypt_hashes_verify_need_a_rehash_and_are_never_sealed() {
        let peppered = Hasher::new(1000, Some(pepper(3)));
        for hasher in [plain(), peppered.clone()] {
            for stored in [YESCRYPT, SHA512CRYPT] {
                assert!(hasher.verify(b"taken over", stored), "{stored}");
                assert!(!hasher.verify(b"taken overr", stored), "{stored}");
                assert!(hasher.needs_rehash(stored));
                assert_eq!(
                    hasher.seal(stored),
                    None,
                    "the pepper leaves crypt hashes alone"
                );
                assert_eq!(hasher.accepts(stored), Ok(()));
            }
        }
        // The rehash is credd's own scheme, peppered when there is a pepper.
        let new = peppered.hash(b"taken over").unwrap();
        assert!(new.starts_with("$pbkdf2-sha256-peppered$"), "{new}");
        assert!(!peppered.needs_rehash(&new));
        assert_eq!(describe(YESCRYPT), "yescrypt");
        assert_eq!(describe(SHA512CRYPT), "sha512crypt");
        assert_eq!(
            inspect(SHA512CRYPT),
            Some(HashInfo {
                scheme: "sha512crypt".into(),
                iterations: Some(5000)
            })
        );
        assert_eq!(inspect(YESCRYPT).unwrap().iterations, None);
        assert_eq!(scheme_name(YESCRYPT), "yescrypt");
        assert_eq!(scheme_name("$y$j9T$salt$short"), "unknown");
    }

    #[test]
    fn legacy_crypt_hashes_verify_only_when_accepted() {
        let strict = plain();
        let lenient = plain().accepting_legacy(true);
        for (stored, scheme) in [(MD5CRYPT, "md5crypt"), (DESCRYPT, "descrypt")] {
            assert!(!strict.verify(b"taken over", stored), "{stored}");
            assert_eq!(
                strict.check(stored),
                Err(Refusal::Legacy(HashScheme::of(stored).unwrap()))
            );
            let message = strict.accepts(stored).unwrap_err();
            assert!(
                message.starts_with(&format!("{scheme} is a legacy scheme"))
                    && message.contains("accept_legacy = true"),
                "{message}"
            );
            assert!(lenient.verify(b"taken over", stored), "{stored}");
            assert!(!lenient.verify(b"Taken over", stored), "{stored}");
            assert_eq!(lenient.accepts(stored), Ok(()));
            assert_eq!(scheme_name(stored), scheme);
        }
    }

    #[test]
    fn unusable_hash_strings_are_refused_with_a_reason_and_never_repeated() {
        let hasher = plain().accepting_legacy(true);
        for stored in [
            "$y$j9T$salt$short",
            "$md5,rounds=5000$salt$$hash",
            "$3$$8cc19b6a8cfeac299c2871c86b38de28",
            "plaintext-password",
        ] {
            let Err(Refusal::Unusable(message)) = hasher.check(stored) else {
                panic!("{stored} was not refused as unusable")
            };
            assert!(!message.contains(stored), "{message}");
            assert!(!hasher.verify(b"x", stored));
        }
        let message = hasher.accepts("plaintext-password").unwrap_err();
        assert!(message.contains("yescrypt, gost-yescrypt"), "{message}");
    }

    /// Issue 15 R3: a hash asking for unbounded work is refused at import and never run.
    #[test]
    fn hashes_over_the_cost_caps_are_refused_and_never_run() {
        let hasher = plain().accepting_legacy(true);
        assert_eq!(hasher.caps, CostCaps::defaults_for(1000));
        let pbkdf2 = crate::crypto::hashing::hash_password(b"x", 1000)
            .unwrap()
            .replace("i=1000,", "i=4294967295,");
        for (stored, why) in [
            (
                pbkdf2.as_str(),
                "pbkdf2-sha256 i=4294967295 is above [hashing] max_iterations = 2400000",
            ),
            (
                "$2b$31$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6",
                "bcrypt cost 31 is above [hashing] max_bcrypt_cost = 13",
            ),
            (
                "$6$rounds=999999999$BUoJ6R44k7teooiV$SbQqs/iR4z.DBPIPPm48sq7EXy.hDy.WzGqYLCxg1nlOEibKHgbUNJHABP4ZA7QF8vRlOIbzq871VDnUUVw1m/",
                "sha512crypt rounds=999999999 is above [hashing] max_crypt_rounds = 1000000",
            ),
            (
                "$y$jDT$vypctDWvjt8GSQF8qmVAk0$GFHqUuo8YaYzywFxg.ZlCJRbe3slY40nMR4ldjXMIl7",
                "yescrypt parameters ask for 256 MiB",
            ),
            ("_zzzzv63EiGu6HwNtrvw", "bsdicrypt count=16777215 is above"),
        ] {
            assert_eq!(
                hasher
                    .over_cap(stored)
                    .as_deref()
                    .map(|m| m.starts_with(why)),
                Some(true),
                "{stored}: {:?}",
                hasher.over_cap(stored)
            );
            let Err(Refusal::Unusable(message)) = hasher.check(stored) else {
                panic!("{stored} was accepted")
            };
            assert!(message.starts_with(why), "{message}");
            assert!(!message.contains(stored), "{message}");
            // Never run: this returns in the time of one dummy at 1000 iterations.
            let started = std::time::Instant::now();
            assert!(!hasher.verify(b"x", stored));
            assert!(started.elapsed() < std::time::Duration::from_secs(5));
        }
        // Within the caps, and caps that are raised, accept them again.
        assert_eq!(hasher.over_cap(SHA512CRYPT), None);
        assert_eq!(hasher.over_cap(YESCRYPT), None);
        let raised = hasher.clone().with_caps(CostCaps {
            max_bcrypt_cost: 31,
            ..CostCaps::defaults_for(1000)
        });
        assert_eq!(
            raised.over_cap("$2b$31$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6"),
            None
        );
    }

    #[test]
    fn short_peppers_are_refused_and_ids_do_not_reveal_the_key() {
        assert!(Pepper::from_bytes(Zeroizing::new(vec![1; 31])).is_err());
        let p = pepper(9);
        assert_eq!(p.id().len(), 8);
        assert_ne!(p.id(), pepper(10).id());
        assert!(!format!("{p:?}").contains("9, 9"));
    }

    #[test]
    fn pepper_files_must_be_private_regular_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pepper");
        std::fs::write(&path, [3u8; 48]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Pepper::load(&path).is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = Pepper::load(&path).unwrap_err().to_string();
        assert!(e.contains("mode 640"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(Pepper::load(&link).is_err());
        std::fs::write(&path, [3u8; 16]).unwrap();
        let e = Pepper::load(&path).unwrap_err().to_string();
        assert!(e.contains("16 bytes"), "{e}");
    }
}
