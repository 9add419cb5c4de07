//! PBKDF2-HMAC-SHA256 as a loop over the SHA-256 block compression.
//!
//! Every iteration after the first is HMAC over a 32-byte message: one inner and one outer
//! compression, each of a single block whose padding and length never change. The HMAC key's
//! inner and outer states are computed once per derivation, and each iteration only copies the
//! previous output into a pre-padded block. That is the floor of two compressions per iteration;
//! a generic HMAC pays for buffering and finalisation on top of it.
//!
//! `sha2::block_api::compress256` picks the SHA extensions (SHA-NI) at run time when the CPU has
//! them and a portable implementation otherwise, on every architecture. Its output is checked
//! against the `pbkdf2` crate and against published vectors in the tests.

use sha2::block_api::compress256;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

const BLOCK: usize = 64;
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
/// The bit length of a 32-byte message that follows one key block: (64 + 32) * 8.
const SHORT_MESSAGE_BITS: u64 = (BLOCK as u64 + 32) * 8;

/// Derives `out.len()` bytes from `password` and `salt` with `rounds` iterations.
///
/// # Panics
/// When `rounds` is 0 or `out` is empty, which no caller passes (the PHC parser and the config
/// refuse both).
pub fn pbkdf2_hmac_sha256(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) {
    derive(password, salt, rounds, out, accelerated());
}

/// Whether the loop runs on the SHA extensions (`kdf_shani.rs`); checked once.
pub fn accelerated() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AVAILABLE.get_or_init(crate::crypto::kdf_shani::available)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

fn derive(password: &[u8], salt: &[u8], rounds: u32, out: &mut [u8], shani: bool) {
    assert!(
        rounds > 0 && !out.is_empty(),
        "PBKDF2 needs rounds and output"
    );
    let key = Key::new(password);
    for (index, chunk) in out.chunks_mut(32).enumerate() {
        let block_number = u32::try_from(index + 1).expect("output length bounded by callers");
        let t = key.derive_block(salt, block_number, rounds, shani);
        for (dst, word) in chunk.chunks_mut(4).zip(t.iter()) {
            dst.copy_from_slice(&word.to_be_bytes()[..dst.len()]);
        }
    }
}

/// The HMAC key as the two compression states it leaves after its padded block.
struct Key {
    inner: [u32; 8],
    outer: [u32; 8],
}

impl Drop for Key {
    fn drop(&mut self) {
        self.inner.zeroize();
        self.outer.zeroize();
    }
}

impl Key {
    fn new(password: &[u8]) -> Key {
        let mut padded = Zeroizing::new([0u8; BLOCK]);
        if password.len() > BLOCK {
            let mut digest = Sha256::digest(password);
            padded[..32].copy_from_slice(&digest);
            digest.as_mut_slice().zeroize();
        } else {
            padded[..password.len()].copy_from_slice(password);
        }
        let state_after = |pad: u8| {
            let mut block = Zeroizing::new([0u8; BLOCK]);
            for (b, k) in block.iter_mut().zip(padded.iter()) {
                *b = k ^ pad;
            }
            let mut state = IV;
            compress256(&mut state, std::slice::from_ref(&*block));
            state
        };
        Key {
            inner: state_after(0x36),
            outer: state_after(0x5c),
        }
    }

    /// F(P, S, c, i) of RFC 8018: U1 over salt || INT(i), then c - 1 short iterations.
    fn derive_block(
        &self,
        salt: &[u8],
        block_number: u32,
        rounds: u32,
        shani: bool,
    ) -> Zeroizing<[u32; 8]> {
        let mut u = Zeroizing::new(self.first(salt, block_number));
        #[cfg(target_arch = "x86_64")]
        if shani {
            // SAFETY: `shani` is true only when kdf_shani::available() said so.
            return Zeroizing::new(unsafe {
                crate::crypto::kdf_shani::iterate(&self.inner, &self.outer, &u, rounds)
            });
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = shani;
        let mut t = Zeroizing::new(*u);
        // One block for the inner and one for the outer compression, padded once: only the first
        // 32 bytes change from one iteration to the next.
        let mut inner_block = Zeroizing::new(short_message_block());
        let mut outer_block = Zeroizing::new(short_message_block());
        for _ in 1..rounds {
            write_words(&mut inner_block[..], &u);
            let mut state = self.inner;
            compress256(&mut state, std::slice::from_ref(&*inner_block));
            write_words(&mut outer_block[..], &state);
            state = self.outer;
            compress256(&mut state, std::slice::from_ref(&*outer_block));
            *u = state;
            for (acc, word) in t.iter_mut().zip(state.iter()) {
                *acc ^= word;
            }
            state.zeroize();
        }
        t
    }

    /// U1 = HMAC(P, salt || INT(i)): a message of any length, so hashed the ordinary way from the
    /// precomputed states.
    fn first(&self, salt: &[u8], block_number: u32) -> [u32; 8] {
        let mut message = Zeroizing::new(Vec::with_capacity(salt.len() + 4 + 2 * BLOCK));
        message.extend_from_slice(salt);
        message.extend_from_slice(&block_number.to_be_bytes());
        let inner = finish(self.inner, &message);
        let mut inner_bytes = Zeroizing::new([0u8; 32]);
        write_words(&mut inner_bytes[..], &inner);
        finish(self.outer, &inner_bytes[..])
    }
}

/// SHA-256 of `message` continued from `state`, which has already absorbed one block.
fn finish(mut state: [u32; 8], message: &[u8]) -> [u32; 8] {
    let total_bits = (BLOCK as u64 + message.len() as u64) * 8;
    let mut tail = Zeroizing::new(Vec::with_capacity(message.len() + 2 * BLOCK));
    tail.extend_from_slice(message);
    tail.push(0x80);
    while tail.len() % BLOCK != BLOCK - 8 {
        tail.push(0);
    }
    tail.extend_from_slice(&total_bits.to_be_bytes());
    for block in tail.chunks_exact(BLOCK) {
        let block: &[u8; BLOCK] = block.try_into().expect("chunks of BLOCK bytes");
        compress256(&mut state, std::slice::from_ref(block));
    }
    state
}

fn short_message_block() -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    block[32] = 0x80;
    block[BLOCK - 8..].copy_from_slice(&SHORT_MESSAGE_BITS.to_be_bytes());
    block
}

fn write_words(dst: &mut [u8], words: &[u32; 8]) {
    for (d, w) in dst.chunks_exact_mut(4).zip(words.iter()) {
        d.copy_from_slice(&w.to_be_bytes());
    }
}

/// One SHA-256 block compression, for the benchmark's floor (the same function the loop uses).
pub fn compress_once(state: &mut [u32; 8], block: &[u8; BLOCK]) {
    compress256(state, std::slice::from_ref(block));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn derive(password: &[u8], salt: &[u8], rounds: u32, len: usize) -> Vec<u8> {
        let mut out = vec![0u8; len];
        pbkdf2_hmac_sha256(password, salt, rounds, &mut out);
        // The portable loop must agree on every machine, whichever one ran above.
        let mut portable = vec![0u8; len];
        super::derive(password, salt, rounds, &mut portable, false);
        assert_eq!(out, portable, "SHA-extension and portable loops disagree");
        out
    }

    #[test]
    fn the_sha_extension_loop_runs_where_the_cpu_has_it() {
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            accelerated(),
            std::arch::is_x86_feature_detected!("sha")
                && std::arch::is_x86_feature_detected!("sse4.1")
                && std::arch::is_x86_feature_detected!("ssse3")
        );
    }

    /// Published PBKDF2-HMAC-SHA256 vectors (RFC 7914 §11, and the RFC 6070 inputs with SHA-256
    /// as widely tabulated).
    #[test]
    fn published_vectors() {
        assert_eq!(
            hex(&derive(b"passwd", b"salt", 1, 64)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
             49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
        );
        assert_eq!(
            hex(&derive(b"Password", b"NaCl", 80_000, 64)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
             a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
        );
        assert_eq!(
            hex(&derive(b"password", b"salt", 1, 32)),
            "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b"
        );
        assert_eq!(
            hex(&derive(b"password", b"salt", 4096, 32)),
            "c5e478d59288c841aa530db6845c4c8d962893a001ce4e11a4963873aa98134a"
        );
        assert_eq!(
            hex(&derive(
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                40
            )),
            "348c89dbcbd32b2f32d814b8116e84cf2b17347ebc1800181c4e2a1fb8dd53e1c635518c7dac47e9"
        );
    }

    /// Random passwords (including longer than a block, and empty), salts and lengths, against
    /// the `pbkdf2` crate.
    #[test]
    fn agrees_with_the_pbkdf2_crate() {
        for case in 0..200 {
            let password: Vec<u8> = (0..rand::random_range(0..150))
                .map(|_| rand::random())
                .collect();
            let salt: Vec<u8> = (0..rand::random_range(0..80))
                .map(|_| rand::random())
                .collect();
            let rounds = rand::random_range(1..40);
            let len = rand::random_range(1..100);
            let mut expected = vec![0u8; len];
            pbkdf2::pbkdf2_hmac::<Sha256>(&password, &salt, rounds, &mut expected);
            assert_eq!(
                derive(&password, &salt, rounds, len),
                expected,
                "case {case}: password {} bytes, salt {} bytes, {rounds} rounds, {len} bytes",
                password.len(),
                salt.len()
            );
        }
    }
}
