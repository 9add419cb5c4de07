//! Verification of crypt(3) hashes taken over from `/etc/shadow`, through the system's libxcrypt
//! (`libcrypt.so.1`, the library pam_unix uses), so that every scheme the host could write
//! verifies here exactly as it did there.
//!
//! `crypt_rn` is the reentrant form: it works in a caller-supplied `struct crypt_data`
//! (32 768 bytes in libxcrypt) and returns a null pointer on any error instead of a failure token
//! that could compare equal to a damaged stored string. The area is allocated per call (it is
//! small next to the hash's own work), and wiped afterwards: it holds the hash of whatever was
//! typed, a wrong password's included, and the algorithm's intermediate state.
//!
//! Only verification lives here; credd never writes a crypt(3) hash. Which schemes may be
//! verified at all (`[hashing] accept_legacy`) is `hashing`'s decision.

use std::ffi::{CStr, c_char, c_int, c_void};

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// `sizeof(struct crypt_data)` in libxcrypt (`<crypt.h>`: "chosen to make sizeof (struct
/// crypt_data) add up to exactly 32768 bytes").
const CRYPT_DATA_SIZE: usize = 32_768;

/// `CRYPT_MAX_PASSPHRASE_SIZE`, counting the terminating NUL: libxcrypt refuses longer ones.
const MAX_PASSPHRASE: usize = 512;

#[link(name = "crypt")]
unsafe extern "C" {
    /// `char *crypt_rn(const char *phrase, const char *setting, void *data, int size);`
    fn crypt_rn(
        phrase: *const c_char,
        setting: *const c_char,
        data: *mut c_void,
        size: c_int,
    ) -> *mut c_char;
}

/// The `struct crypt_data` work area, aligned beyond what libxcrypt's internal area needs.
#[repr(C, align(64))]
struct CryptData([u8; CRYPT_DATA_SIZE]);

impl Drop for CryptData {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// True when `password` hashes to exactly `stored` under the setting `stored` carries. A stored
/// string libxcrypt cannot use (malformed, an unsupported scheme) never matches, and neither
/// does a password it cannot take (a NUL inside, 512 bytes or more). The comparison of the
/// result is constant time.
pub fn verify(password: &[u8], stored: &str) -> bool {
    if password.contains(&0) || password.len() >= MAX_PASSPHRASE || stored.contains('\0') {
        return false;
    }
    let mut phrase = Zeroizing::new(Vec::with_capacity(password.len() + 1));
    phrase.extend_from_slice(password);
    phrase.push(0);
    let mut setting = Vec::with_capacity(stored.len() + 1);
    setting.extend_from_slice(stored.as_bytes());
    setting.push(0);
    // Zeroed before the first use, as <crypt.h> asks of a fresh crypt_data ("initialized" = 0).
    // SAFETY: an array of bytes is valid when all its bytes are zero.
    let mut data: Box<CryptData> = unsafe { Box::new_zeroed().assume_init() };
    // SAFETY: `phrase` and `setting` are NUL-terminated and outlive the call; `data` is a
    // writable area of exactly the size passed, which crypt_rn uses as its struct crypt_data.
    // crypt_rn keeps no pointer to any of them after it returns.
    let out = unsafe {
        crypt_rn(
            phrase.as_ptr().cast(),
            setting.as_ptr().cast(),
            data.0.as_mut_ptr().cast(),
            CRYPT_DATA_SIZE as c_int,
        )
    };
    if out.is_null() {
        return false;
    }
    // SAFETY: on success crypt_rn returns a NUL-terminated string inside `data` (its `output`
    // field, at most CRYPT_OUTPUT_SIZE bytes), which lives until `data` is dropped below.
    let computed = unsafe { CStr::from_ptr(out) }.to_bytes();
    // Lengths are public (the stored string's is); the bytes are compared in constant time.
    let matches: bool = computed.ct_eq(stored.as_bytes()).into();
    drop(data);
    matches
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (password, hash) pairs made by the system: `mkpasswd -m METHOD [-S SALT] PASSWORD`
    /// (Debian's whois package over libxcrypt 4.4); the sha-crypt ones are also the published
    /// vectors of Drepper's specification.
    const VECTORS: [(&str, &str, &str); 11] = [
        (
            "yescrypt",
            "correct horse battery",
            "$y$j9T$flFOIykaC8RnekJ2c1hqs1$HXooLDKu0qpJ6.hfK0DLxnLqsR524tTNLszCmXUgGn1",
        ),
        (
            "gost-yescrypt",
            "correct horse battery",
            "$gy$j9T$zYc1c7.yqMghvRDIRTFdX/$tSzSnNzzSYM7cWPBo.z2ztbj8ztBSSPU6dXa69oo4N8",
        ),
        (
            "scrypt",
            "correct horse battery",
            "$7$CU..../....kwNBrRm0VZbDzVcsNqLQ61$1tgZVpcPuSSDFeoukFiOkeTqPI2aBthyZS680kfYaL9",
        ),
        (
            "bcrypt",
            "correct horse battery",
            "$2b$05$F5Jx5fExrKuPp53xLKQ..uOmbRnZWI0bekXEHQ.XDkdFVLMfMEHQ2",
        ),
        (
            "bcrypt-a",
            "correct horse battery",
            "$2a$05$F5Jx5fExrKuPp53xLKQ..uOmbRnZWI0bekXEHQ.XDkdFVLMfMEHQ2",
        ),
        (
            "sha512crypt",
            "Hello world!",
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
        ),
        (
            "sha512crypt rounds",
            "Hello world!",
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.",
        ),
        (
            "sha256crypt",
            "Hello world!",
            "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
        ),
        (
            "md5crypt",
            "correct horse battery",
            "$1$F5Jx5fEx$R4aAc7p9.EUcpjLeARVTn0",
        ),
        ("descrypt", "correct horse battery", "F58dCJ6K8yNBk"),
        ("bsdicrypt", "correct horse battery", "_J9..Bc6oJ8XHbM7Snd."),
    ];

    #[test]
    fn every_scheme_verifies_its_password_only() {
        for (scheme, password, hash) in VECTORS {
            assert!(
                verify(password.as_bytes(), hash),
                "{scheme}: right password"
            );
            // The first character: descrypt reads only eight.
            let mut wrong = password.as_bytes().to_vec();
            wrong[0] ^= 1;
            assert!(!verify(&wrong, hash), "{scheme}: wrong password");
            assert!(!verify(b"", hash), "{scheme}: empty password");
        }
    }

    #[test]
    fn descrypt_counts_eight_characters_only() {
        // Why it is legacy: anything after the eighth character is ignored.
        assert!(verify(b"correct horse battery", "F58dCJ6K8yNBk"));
        assert!(verify(b"correct something else", "F58dCJ6K8yNBk"));
    }

    #[test]
    fn malformed_or_altered_hashes_never_match() {
        let (_, password, yescrypt) = VECTORS[0];
        let (_, _, sha512) = VECTORS[5];
        let truncated = &yescrypt[..yescrypt.len() - 1];
        let altered = format!("{}A", &sha512[..sha512.len() - 1]);
        let lowered = sha512.replace("$6$", "$5$");
        for stored in [
            "",
            "*",
            "!",
            "!$y$j9T$flFOIykaC8RnekJ2c1hqs1$HXooLDKu0qpJ6.hfK0DLxnLqsR524tTNLszCmXUgGn1",
            "$",
            "$y$",
            "$y$j9T$",
            "$6$",
            "$2b$99$F5Jx5fExrKuPp53xLKQ..uOmbRnZWI0bekXEHQ.XDkdFVLMfMEHQ2",
            "$9$salt$hash",
            "$pbkdf2-sha256$i=1000,l=32$c2FsdA$aGFzaA",
            truncated,
            &altered,
            &lowered,
        ] {
            assert!(!verify(password.as_bytes(), stored), "{stored:?}");
        }
        // The setting alone reproduces the whole hash only for the right password: a stored
        // string that is just the setting (what crypt_rn would be given) never matches.
        assert!(!verify(
            password.as_bytes(),
            "$y$j9T$flFOIykaC8RnekJ2c1hqs1"
        ));
    }

    #[test]
    fn passwords_libxcrypt_cannot_take_never_match() {
        let (_, _, hash) = VECTORS[3];
        assert!(!verify(b"correct horse\0battery", hash));
        assert!(!verify(&[b'a'; MAX_PASSPHRASE], hash));
        assert!(!verify(b"correct horse battery", "$2b$05$\0abc"));
    }
}
