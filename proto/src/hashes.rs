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

/// The work a crypt(3) string asks of libxcrypt, as its parameters state it (what credd caps:
/// `[hashing] max_crypt_rounds`, `max_bcrypt_cost`, `max_memory_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptCost {
    /// sha512crypt and sha256crypt `rounds=` (5000 when absent, clamped as libxcrypt does), and
    /// bsdicrypt's count: iterations of one hash or cipher each.
    Rounds(u64),
    /// bcrypt's cost: 2^cost rounds of its key schedule.
    BcryptCost(u32),
    /// yescrypt, gost-yescrypt and scrypt: 128 × N × r × p × (t + 1) bytes, the memory they fill
    /// times the passes they make (saturating; `t` is yescrypt's time parameter, 0 for scrypt).
    Memory(u128),
    /// md5crypt and descrypt: a fixed cost, small.
    Fixed,
}

/// yescrypt's variable-length little-endian number (libxcrypt's `decode64_uint32`): one to six
/// characters of crypt64, the first telling how many follow. `None` for a character outside it.
fn yescrypt_number(src: &mut std::str::Chars<'_>, min: u32) -> Option<u64> {
    let index = |c: char| CRYPT64.find(c).map(|i| i as u64);
    let mut c = index(src.next()?)?;
    let (mut start, mut end, mut chars, mut bits) = (0u64, 47u64, 1u32, 0u32);
    let mut value = u64::from(min);
    while c > end {
        value += (end + 1 - start) << bits;
        start = end + 1;
        end = start + (62 - end) / 2;
        chars += 1;
        bits += 6;
    }
    value += (c - start) << bits;
    while chars > 1 {
        chars -= 1;
        c = index(src.next()?)?;
        bits -= 6;
        value += c << bits;
    }
    Some(value)
}

/// A fixed-width little-endian number of `chars` crypt64 characters (scrypt's r and p).
fn fixed_number(src: &mut std::str::Chars<'_>, chars: u32) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..chars {
        value |= (CRYPT64.find(src.next()?)? as u64) << (6 * i);
    }
    Some(value)
}

/// The cost `hash` (of `scheme`, already of its shape: [`check_shape`]) states; `None` for
/// credd's own PBKDF2 strings, or parameters libxcrypt could not read either.
pub fn crypt_cost(scheme: HashScheme, hash: &str) -> Option<CryptCost> {
    let params = hash.split('$').nth(2).unwrap_or("");
    match scheme {
        HashScheme::Pbkdf2Sha256 | HashScheme::Pbkdf2Sha256Peppered => None,
        HashScheme::Sha512Crypt | HashScheme::Sha256Crypt => {
            crypt_rounds(scheme, hash).map(|r| CryptCost::Rounds(r.into()))
        }
        HashScheme::BsdiCrypt => {
            let mut chars = hash.get(1..5)?.chars();
            fixed_number(&mut chars, 4).map(CryptCost::Rounds)
        }
        HashScheme::Bcrypt => params.parse().ok().map(CryptCost::BcryptCost),
        HashScheme::Md5Crypt | HashScheme::DesCrypt => Some(CryptCost::Fixed),
        HashScheme::Scrypt => {
            let mut chars = params.chars();
            let n_log2 = CRYPT64.find(chars.next()?)? as u32;
            let r = fixed_number(&mut chars, 5)?;
            let p = fixed_number(&mut chars, 5)?;
            Some(CryptCost::Memory(memory(n_log2, r, p, 0)))
        }
        HashScheme::Yescrypt | HashScheme::GostYescrypt => {
            let mut chars = params.chars();
            let _flavor = yescrypt_number(&mut chars, 0)?;
            let n_log2 = yescrypt_number(&mut chars, 1)?;
            let r = yescrypt_number(&mut chars, 1)?;
            let (mut p, mut t) = (1, 0);
            if chars.clone().next().is_some() {
                let have = yescrypt_number(&mut chars, 1)?;
                if have & 1 != 0 {
                    p = yescrypt_number(&mut chars, 2)?;
                }
                if have & 2 != 0 {
                    t = yescrypt_number(&mut chars, 1)?;
                }
            }
            if n_log2 > 63 {
                return None;
            }
            Some(CryptCost::Memory(memory(n_log2 as u32, r, p, t)))
        }
    }
}

/// 128 × 2^n_log2 × r × p × (t + 1), saturating.
fn memory(n_log2: u32, r: u64, p: u64, t: u64) -> u128 {
    128u128
        .saturating_mul(1u128.checked_shl(n_log2).unwrap_or(u128::MAX))
        .saturating_mul(r.into())
        .saturating_mul(p.into())
        .saturating_mul(u128::from(t) + 1)
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
    fn costs_as_libxcrypt_reads_them() {
        const MIB: u128 = 1 << 20;
        // mkpasswd -m yescrypt -R 5 (Debian's default), -R 8; scrypt's default (N=2^14, r=32).
        assert_eq!(
            crypt_cost(HashScheme::Yescrypt, SAMPLES[0].0),
            Some(CryptCost::Memory(16 * MIB))
        );
        assert_eq!(
            crypt_cost(
                HashScheme::Yescrypt,
                "$y$jCT$ixYs9YvpyA3Cww/Jey/zM1$.AN9GJnMhg55Mj97xnaDNU/Uaphc7SwqwyCAvTocblC"
            ),
            Some(CryptCost::Memory(128 * MIB))
        );
        assert_eq!(
            crypt_cost(HashScheme::GostYescrypt, SAMPLES[1].0),
            Some(CryptCost::Memory(16 * MIB))
        );
        assert_eq!(
            crypt_cost(HashScheme::Scrypt, SAMPLES[2].0),
            Some(CryptCost::Memory(64 * MIB))
        );
        // N = 2^48 (the largest one-character N): 2^60 bytes, no overflow.
        let huge = "$y$jjT$ixYs9YvpyA3Cww/Jey/zM1$.AN9GJnMhg55Mj97xnaDNU/Uaphc7SwqwyCAvTocblC";
        assert!(
            matches!(crypt_cost(HashScheme::Yescrypt, huge), Some(CryptCost::Memory(m)) if m == 1 << 60)
        );
        assert_eq!(
            crypt_cost(HashScheme::Bcrypt, SAMPLES[3].0),
            Some(CryptCost::BcryptCost(5))
        );
        assert_eq!(
            crypt_cost(HashScheme::Sha512Crypt, "$6$rounds=999999999$salt$x"),
            Some(CryptCost::Rounds(999_999_999))
        );
        assert_eq!(
            crypt_cost(HashScheme::BsdiCrypt, SAMPLES[8].0),
            Some(CryptCost::Rounds(725))
        );
        assert_eq!(
            crypt_cost(HashScheme::Md5Crypt, SAMPLES[7].0),
            Some(CryptCost::Fixed)
        );
        assert_eq!(crypt_cost(HashScheme::Pbkdf2Sha256, SAMPLES[10].0), None);
    }

    #[test]
    fn memory_saturates() {
        assert_eq!(memory(63, u64::MAX, u64::MAX, u64::MAX), u128::MAX);
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
