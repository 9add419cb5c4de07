//! Password hash schemes by name, and the shape of their strings, shared by credd (which decides
//! what it verifies) and credctl (which reads shadow files and must tell a hash of an unknown
//! scheme, skipped with a reason, from a damaged one, refused with the file's line).
//!
//! Only the form is checked here: the known prefix, the alphabet and the length of the hash part,
//! which is where a truncated or hand-edited entry shows. Whether a password matches is for credd
//! alone (libxcrypt's `crypt_rn` for the crypt(3) schemes).

/// The alphabet of crypt(3) hashes: `./0-9A-Za-z`.
const CRYPT64: &str = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A scheme credd can name. [`HashScheme::of`] recognises it by its prefix alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashScheme {
    /// credd's own: `$pbkdf2-sha256$i=…,l=32$SALT$DK`.
    Pbkdf2Sha256,
    /// credd's own, sealed with `[hashing] pepper_file`.
    Pbkdf2Sha256Peppered,
    /// `$y$`: Debian 11+ and Ubuntu 22.04+ default.
    Yescrypt,
    /// `$gy$`.
    GostYescrypt,
    /// `$7$`.
    Scrypt,
    /// `$2b$`, `$2y$` and `$2a$`.
    Bcrypt,
    /// `$6$`.
    Sha512Crypt,
    /// `$5$`.
    Sha256Crypt,
    /// `$1$`: legacy.
    Md5Crypt,
    /// 13 characters without a prefix: legacy, and only 8 characters of the password count.
    DesCrypt,
    /// `_` and 19 characters: legacy.
    BsdiCrypt,
}

impl HashScheme {
    pub const ALL: [HashScheme; 11] = [
        HashScheme::Pbkdf2Sha256,
        HashScheme::Pbkdf2Sha256Peppered,
        HashScheme::Yescrypt,
        HashScheme::GostYescrypt,
        HashScheme::Scrypt,
        HashScheme::Bcrypt,
        HashScheme::Sha512Crypt,
        HashScheme::Sha256Crypt,
        HashScheme::Md5Crypt,
        HashScheme::DesCrypt,
        HashScheme::BsdiCrypt,
    ];

    /// The name `user show` and `status --daemon` print (mkpasswd's names for crypt schemes).
    pub fn name(self) -> &'static str {
        match self {
            HashScheme::Pbkdf2Sha256 => "pbkdf2-sha256",
            HashScheme::Pbkdf2Sha256Peppered => "pbkdf2-sha256-peppered",
            HashScheme::Yescrypt => "yescrypt",
            HashScheme::GostYescrypt => "gost-yescrypt",
            HashScheme::Scrypt => "scrypt",
            HashScheme::Bcrypt => "bcrypt",
            HashScheme::Sha512Crypt => "sha512crypt",
            HashScheme::Sha256Crypt => "sha256crypt",
            HashScheme::Md5Crypt => "md5crypt",
            HashScheme::DesCrypt => "descrypt",
            HashScheme::BsdiCrypt => "bsdicrypt",
        }
    }

    /// A crypt(3) scheme, verified through libxcrypt rather than by credd's own code.
    pub fn is_crypt(self) -> bool {
        !matches!(
            self,
            HashScheme::Pbkdf2Sha256 | HashScheme::Pbkdf2Sha256Peppered
        )
    }

    /// Broken by today's standards (fast, or DES-based): credd verifies them only with
    /// `[hashing] accept_legacy = true`.
    pub fn is_legacy(self) -> bool {
        matches!(
            self,
            HashScheme::Md5Crypt | HashScheme::DesCrypt | HashScheme::BsdiCrypt
        )
    }

    /// The scheme a stored string claims by its prefix (or, for descrypt, by its length and
    /// alphabet); `None` for anything else. A string of a known scheme may still be malformed:
    /// see [`check_shape`].
    pub fn of(hash: &str) -> Option<HashScheme> {
        let id = match hash.strip_prefix('$') {
            Some(rest) => rest.split('$').next().unwrap_or(""),
            None if hash.starts_with('_') => return Some(HashScheme::BsdiCrypt),
            None if hash.len() == 13 && all_crypt64(hash) => return Some(HashScheme::DesCrypt),
            None => return None,
        };
        Some(match id {
            "pbkdf2-sha256" => HashScheme::Pbkdf2Sha256,
            "pbkdf2-sha256-peppered" => HashScheme::Pbkdf2Sha256Peppered,
            "y" => HashScheme::Yescrypt,
            "gy" => HashScheme::GostYescrypt,
            "7" => HashScheme::Scrypt,
            "2b" | "2y" | "2a" => HashScheme::Bcrypt,
            "6" => HashScheme::Sha512Crypt,
            "5" => HashScheme::Sha256Crypt,
            "1" => HashScheme::Md5Crypt,
            _ => return None,
        })
    }
}

impl std::fmt::Display for HashScheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The crypt(3) schemes credd verifies without `accept_legacy`, for messages.
pub const MODERN_CRYPT_SCHEMES: &str =
    "yescrypt, gost-yescrypt, scrypt, bcrypt, sha512crypt, sha256crypt";

fn all_crypt64(text: &str) -> bool {
    text.chars().all(|c| CRYPT64.contains(c))
}

/// Checks that `hash`, which [`HashScheme::of`] named `scheme`, has that scheme's form. The error
/// says what is wrong without repeating the hash. PBKDF2 strings are credd's to parse and pass
/// here whatever their form.
pub fn check_shape(scheme: HashScheme, hash: &str) -> Result<(), String> {
    let malformed = |why: &str| Err(format!("a malformed {scheme} hash ({why})"));
    if hash
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == ':')
    {
        return malformed("it contains a blank, a control character or ':'");
    }
    // "$y$PARAMS$SALT$HASH" splits into "", "y", PARAMS, SALT, HASH.
    let parts: Vec<&str> = hash.split('$').collect();
    let hash_part = |len: usize| -> Result<(), String> {
        let last = parts.last().copied().unwrap_or("");
        if last.len() != len || !all_crypt64(last) {
            return malformed(&format!(
                "the hash part must be {len} characters of ./0-9A-Za-z"
            ));
        }
        Ok(())
    };
    match scheme {
        HashScheme::Pbkdf2Sha256 | HashScheme::Pbkdf2Sha256Peppered => Ok(()),
        HashScheme::Yescrypt | HashScheme::GostYescrypt => {
            if parts.len() != 5 || parts[2].is_empty() || !all_crypt64(parts[2]) {
                return malformed("expected $ID$PARAMS$SALT$HASH");
            }
            if !all_crypt64(parts[3]) {
                return malformed("the salt must be characters of ./0-9A-Za-z");
            }
            hash_part(43)
        }
        HashScheme::Scrypt => {
            // "$7$" N (1) r (5) p (5) SALT "$" HASH.
            if parts.len() != 4 || parts[2].len() < 11 || !all_crypt64(&parts[2][..11]) {
                return malformed("expected $7$PARAMSSALT$HASH");
            }
            hash_part(43)
        }
        HashScheme::Bcrypt => {
            // "$2b$" COST "$" 22 salt and 31 hash characters.
            let cost_ok = parts.len() == 4
                && parts[2].len() == 2
                && parts[2]
                    .parse::<u8>()
                    .is_ok_and(|cost| (4..=31).contains(&cost));
            if !cost_ok {
                return malformed("expected $2b$NN$ with a cost from 04 to 31");
            }
            hash_part(53)
        }
        HashScheme::Sha512Crypt | HashScheme::Sha256Crypt | HashScheme::Md5Crypt => {
            let (len, max_salt) = match scheme {
                HashScheme::Sha512Crypt => (86, 16),
                HashScheme::Sha256Crypt => (43, 16),
                _ => (22, 8),
            };
            let rounds = parts.len() == 5
                && scheme != HashScheme::Md5Crypt
                && parts[2]
                    .strip_prefix("rounds=")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if parts.len() != 4 && !rounds {
                return malformed("expected $ID$[rounds=N$]SALT$HASH");
            }
            if parts[parts.len() - 2].len() > max_salt {
                return malformed(&format!("the salt is longer than {max_salt} characters"));
            }
            hash_part(len)
        }
        HashScheme::DesCrypt => {
            if hash.len() == 13 && all_crypt64(hash) {
                Ok(())
            } else {
                malformed("expected 13 characters of ./0-9A-Za-z")
            }
        }
        HashScheme::BsdiCrypt => {
            if hash.len() == 20 && all_crypt64(&hash[1..]) {
                Ok(())
            } else {
                malformed("expected '_' and 19 characters of ./0-9A-Za-z")
            }
        }
    }
}

/// The iteration count a crypt(3) string states, where its scheme has one: sha512crypt and
/// sha256crypt (`rounds=`, 5000 when absent, clamped as libxcrypt does).
pub fn crypt_rounds(scheme: HashScheme, hash: &str) -> Option<u32> {
    if !matches!(scheme, HashScheme::Sha512Crypt | HashScheme::Sha256Crypt) {
        return None;
    }
    let stated = hash
        .split('$')
        .nth(2)
        .and_then(|p| p.strip_prefix("rounds="));
    Some(match stated {
        None => 5000,
        Some(n) => n
            .parse::<u64>()
            .map_or(999_999_999, |n| n.clamp(1000, 999_999_999) as u32),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with `mkpasswd -m METHOD` (Debian's whois package, libxcrypt 4.4).
    pub const SAMPLES: [(&str, HashScheme); 11] = [
        (
            "$y$j9T$jZzld3m7lqPzlHL8qZBw81$YT3SPMjK1YRFxrjLRiuqSmpoOHAVV/MBZ00j6MKoNd0",
            HashScheme::Yescrypt,
        ),
        (
            "$gy$j9T$2yM29Xak9Zp/jm35rld5Q0$xdEyC0a/gTvSUVADpqs6ASJVnxCWO4N8IF7YAsZkDh5",
            HashScheme::GostYescrypt,
        ),
        (
            "$7$CU..../....YAbO91ER0pGnw6B2t6ZOv/$UmvADmy.YsZ6WjNvJ3yNkBuTBgfzCLgHLlW9KXgD6d3",
            HashScheme::Scrypt,
        ),
        (
            "$2b$05$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6",
            HashScheme::Bcrypt,
        ),
        (
            "$2a$05$jUz7tmjQQjC5Xdn9E9r1S.qLbpWA1vJ.hyfvUTn.dxP88RGHkkAUO",
            HashScheme::Bcrypt,
        ),
        (
            "$6$bVZsULEVQHgeg6tI$IHH8Dzyic/idRP6/9mCvJ0dEFYOCf3gwZowGQ.e/rNo.OBXe0j1yTE8EBXaD7DJdouIpQvWfx.m9MnfxVgmJe/",
            HashScheme::Sha512Crypt,
        ),
        (
            "$5$ILAeZcWJDxmBaMCp$6T5nTmJwAcpKFW5qC3Y1o.LrDiuBsopG8qQ4zqFLUL6",
            HashScheme::Sha256Crypt,
        ),
        ("$1$8PnZ.l7b$8ZjmFDEjuvvQLpnBEqy5l.", HashScheme::Md5Crypt),
        ("_J9..v63EiGu6HwNtrvw", HashScheme::BsdiCrypt),
        ("F0ZuXwFm1zG.U", HashScheme::DesCrypt),
        (
            "$pbkdf2-sha256$i=1000,l=32$c2FsdA$aGFzaA",
            HashScheme::Pbkdf2Sha256,
        ),
    ];

    #[test]
    fn every_scheme_is_named_by_its_prefix_and_has_its_shape() {
        for (hash, scheme) in SAMPLES {
            assert_eq!(HashScheme::of(hash), Some(scheme), "{hash}");
            assert_eq!(check_shape(scheme, hash), Ok(()), "{hash}");
        }
        assert_eq!(
            HashScheme::of("$pbkdf2-sha256-peppered$i=1,l=32,k=x$a$b"),
            Some(HashScheme::Pbkdf2Sha256Peppered)
        );
        assert_eq!(
            HashScheme::of("$2y$10$abc"),
            Some(HashScheme::Bcrypt),
            "the prefix names it, malformed or not"
        );
        let legacy: Vec<_> = HashScheme::ALL
            .into_iter()
            .filter(|s| s.is_legacy())
            .map(HashScheme::name)
            .collect();
        assert_eq!(legacy, ["md5crypt", "descrypt", "bsdicrypt"]);
    }

    #[test]
    fn unknown_schemes_are_not_named() {
        for hash in [
            "",
            "!",
            "*",
            "x",
            "NP",
            "$md5,rounds=91418$vs4GI1KD$$q1K6V/RglVmR2YibB.vqj1",
            "$3$$8cc19b6a8cfeac299c2871c86b38de28",
            "$sha1$40000$salt$hash",
            "$2x$05$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6",
            "$$x",
            "$",
            "a-word-of-13!",
            "twelve_chars",
        ] {
            assert_eq!(HashScheme::of(hash), None, "{hash:?}");
        }
    }

    #[test]
    fn malformed_strings_of_known_schemes_are_refused_without_being_repeated() {
        for (hash, why) in [
            ("$y$j9T$salt$short", "the hash part must be 43"),
            (
                "$y$j9T$YT3SPMjK1YRFxrjLRiuqSmpoOHAVV/MBZ00j6MKoNd0",
                "$ID$PARAMS$SALT$HASH",
            ),
            (
                "$y$$salt$YT3SPMjK1YRFxrjLRiuqSmpoOHAVV/MBZ00j6MKoNd0",
                "$ID$PARAMS$SALT$HASH",
            ),
            (
                "$y$j9T$sa-lt$YT3SPMjK1YRFxrjLRiuqSmpoOHAVV/MBZ00j6MKoNd0",
                "the salt",
            ),
            (
                "$7$CU..$UmvADmy.YsZ6WjNvJ3yNkBuTBgfzCLgHLlW9KXgD6d3",
                "$7$PARAMSSALT$HASH",
            ),
            (
                "$2b$5$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6",
                "cost from 04 to 31",
            ),
            (
                "$2b$32$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqwKVW25U6",
                "cost from 04 to 31",
            ),
            (
                "$2b$05$NzcK69dQNcjq3h/FVdt6jO4QDbAMK3ZbxQtRWFR5JBhfqw",
                "53 characters",
            ),
            ("$6$salt$tooshort", "86 characters"),
            (
                "$6$rounds=x$salt$IHH8Dzyic/idRP6/9mCvJ0dEFYOCf3gwZowGQ.e/rNo.OBXe0j1yTE8EBXaD7DJdouIpQvWfx.m9MnfxVgmJe/",
                "[rounds=N$]",
            ),
            (
                "$6$saltsaltsaltsalt1$IHH8Dzyic/idRP6/9mCvJ0dEFYOCf3gwZowGQ.e/rNo.OBXe0j1yTE8EBXaD7DJdouIpQvWfx.m9MnfxVgmJe/",
                "longer than 16",
            ),
            ("$5$a$b$c$d", "[rounds=N$]"),
            ("$1$8PnZ.l7b$8ZjmFDEjuvvQLpnBEqy5l", "22 characters"),
            (
                "$1$rounds=5$8PnZ.l7b$8ZjmFDEjuvvQLpnBEqy5l.",
                "$ID$[rounds=N$]SALT$HASH",
            ),
            ("_J9..v63EiGu6HwNtrv", "'_' and 19"),
            (
                "$6$salt$IHH8Dzyic/idRP6/9mCvJ0dEFYOCf3gwZowGQ.e/rNo.OBXe0j1yTE8EBXaD7DJdouIpQvWfx.m9MnfxVgm e/",
                "a blank",
            ),
        ] {
            let scheme = HashScheme::of(hash).unwrap_or_else(|| panic!("{hash}"));
            let err = check_shape(scheme, hash).unwrap_err();
            assert!(
                err.starts_with(&format!("a malformed {scheme} hash")),
                "{err}"
            );
            assert!(err.contains(why), "{hash}: {err}");
            assert!(!err.contains(hash), "{err}");
        }
    }

    #[test]
    fn rounds_of_the_sha_crypt_schemes() {
        let with = |r: &str| format!("$6$rounds={r}$salt$x");
        assert_eq!(
            crypt_rounds(HashScheme::Sha512Crypt, "$6$salt$x"),
            Some(5000)
        );
        assert_eq!(
            crypt_rounds(HashScheme::Sha512Crypt, &with("656000")),
            Some(656_000)
        );
        assert_eq!(
            crypt_rounds(HashScheme::Sha256Crypt, "$5$rounds=10$s$x"),
            Some(1000)
        );
        assert_eq!(
            crypt_rounds(HashScheme::Sha512Crypt, &with("99999999999")),
            Some(999_999_999)
        );
        assert_eq!(crypt_rounds(HashScheme::Yescrypt, SAMPLES[0].0), None);
        assert_eq!(crypt_rounds(HashScheme::Bcrypt, SAMPLES[3].0), None);
    }
}
