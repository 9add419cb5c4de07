//! The PBKDF2 iteration loop on the x86 SHA extensions, with every value in registers.
//!
//! Each iteration is HMAC over the previous 32-byte output: one compression from the key's
//! inner state, one from its outer state, each of a single block whose last eight words are
//! constant padding. Here the eight message words come straight from the previous state
//! registers (no store, byte swap and reload, as a call to a generic block compression needs),
//! the two key states stay in registers for the whole loop, and nothing is called per iteration.
//! `kdf.rs` uses this when the CPU has the extensions and the portable loop otherwise; its tests
//! check both against the `pbkdf2` crate.

use core::arch::x86_64::*;

/// FIPS 180-4 §4.2.2.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// Whether this CPU can run [`iterate`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("ssse3")
}

/// A SHA-256 state as the SHA instructions hold it: (ABEF, CDGH).
#[derive(Clone, Copy)]
struct State {
    abef: __m128i,
    cdgh: __m128i,
}

#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn from_words(words: &[u32; 8]) -> State {
    // SAFETY: 8 u32 are two unaligned 16-byte loads.
    let (dcba, hgfe) = unsafe {
        let p: *const __m128i = words.as_ptr().cast();
        (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
    };
    let cdab = _mm_shuffle_epi32(dcba, 0xB1);
    let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
    State {
        abef: _mm_alignr_epi8(cdab, efgh, 8),
        cdgh: _mm_blend_epi16(efgh, cdab, 0xF0),
    }
}

/// The state as two vectors of words in order (lane i = word i): (a b c d), (e f g h). That is
/// also the first half of the next message block.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn to_words(s: State) -> (__m128i, __m128i) {
    let feba = _mm_shuffle_epi32(s.abef, 0x1B);
    let dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
    (
        _mm_blend_epi16(feba, dchg, 0xF0),
        _mm_alignr_epi8(dchg, feba, 8),
    )
}

#[inline]
#[target_feature(enable = "sha,sse2")]
fn rounds4(s: &mut State, w: __m128i, k: usize) {
    let kv = _mm_set_epi32(
        K[k + 3] as i32,
        K[k + 2] as i32,
        K[k + 1] as i32,
        K[k] as i32,
    );
    let t = _mm_add_epi32(w, kv);
    s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, t);
    s.abef = _mm_sha256rnds2_epu32(s.abef, s.cdgh, _mm_shuffle_epi32(t, 0x0E));
}

/// One compression of the block whose words are `w` (lane i of `w[j]` = word 4j + i), from
/// `start`, including the final addition.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn compress(start: State, mut w: [__m128i; 4]) -> State {
    let mut s = start;
    for (j, wj) in w.iter().enumerate() {
        rounds4(&mut s, *wj, 4 * j);
    }
    for group in 1..4 {
        for j in 0..4 {
            let next = _mm_sha256msg2_epu32(
                _mm_add_epi32(
                    _mm_sha256msg1_epu32(w[j], w[(j + 1) % 4]),
                    _mm_alignr_epi8(w[(j + 3) % 4], w[(j + 2) % 4], 4),
                ),
                w[(j + 3) % 4],
            );
            w[j] = next;
            rounds4(&mut s, next, 16 * group + 4 * j);
        }
    }
    State {
        abef: _mm_add_epi32(s.abef, start.abef),
        cdgh: _mm_add_epi32(s.cdgh, start.cdgh),
    }
}

/// Iterations 2..=`rounds` of one PBKDF2 block: `u1` is U1, `inner` and `outer` the states the
/// HMAC key leaves; returns T = U1 ^ U2 ^ … as words.
///
/// # Safety
/// The CPU must have the SHA extensions, SSSE3 and SSE4.1 ([`available`]).
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn iterate(inner: &[u32; 8], outer: &[u32; 8], u1: &[u32; 8], rounds: u32) -> [u32; 8] {
    let inner = from_words(inner);
    let outer = from_words(outer);
    // Padding of a 32-byte message after one key block: 0x80 then the length, 768 bits.
    let pad_lo = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
    let pad_hi = _mm_set_epi32(768, 0, 0, 0);
    // SAFETY: 8 u32 are two unaligned 16-byte loads.
    let (mut u_lo, mut u_hi) = unsafe {
        let p: *const __m128i = u1.as_ptr().cast();
        (_mm_loadu_si128(p), _mm_loadu_si128(p.add(1)))
    };
    let (mut t_lo, mut t_hi) = (u_lo, u_hi);
    for _ in 1..rounds {
        let h = compress(inner, [u_lo, u_hi, pad_lo, pad_hi]);
        let (h_lo, h_hi) = to_words(h);
        let u = compress(outer, [h_lo, h_hi, pad_lo, pad_hi]);
        (u_lo, u_hi) = to_words(u);
        t_lo = _mm_xor_si128(t_lo, u_lo);
        t_hi = _mm_xor_si128(t_hi, u_hi);
    }
    let mut t = [0u32; 8];
    // SAFETY: two unaligned 16-byte stores into 8 u32.
    unsafe {
        let p: *mut __m128i = t.as_mut_ptr().cast();
        _mm_storeu_si128(p, t_lo);
        _mm_storeu_si128(p.add(1), t_hi);
    }
    t
}

/// The floor for the benchmark: 2 × `iterations` single-block compressions back to back, each
/// block taken from the previous state (so nothing can be skipped or overlapped), with nothing
/// else — no XOR, no HMAC states. PBKDF2 cannot do less work per iteration.
///
/// # Safety
/// As [`iterate`].
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn compressions_floor(iterations: u32) -> [u32; 8] {
    let mut s = from_words(&[
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ]);
    let pad_lo = _mm_set_epi32(0, 0, 0, 0x8000_0000u32 as i32);
    let pad_hi = _mm_set_epi32(768, 0, 0, 0);
    for _ in 0..2 * iterations {
        let (lo, hi) = to_words(s);
        s = compress(s, [lo, hi, pad_lo, pad_hi]);
    }
    let (lo, hi) = to_words(s);
    let mut out = [0u32; 8];
    // SAFETY: two unaligned 16-byte stores into 8 u32.
    unsafe {
        let p: *mut __m128i = out.as_mut_ptr().cast();
        _mm_storeu_si128(p, lo);
        _mm_storeu_si128(p.add(1), hi);
    }
    out
}
