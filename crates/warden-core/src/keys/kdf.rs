//! HKDF-SHA256 as Core Lightning's `hsmd` uses it, and the counter loop it wraps around HKDF
//! when the output must be a valid key.
//!
//! Core Lightning calls `hkdf_sha256(out, outlen, salt, saltlen, ikm, ikmlen, info, infolen)`
//! from `ccan/crypto/hkdf_sha256` (RFC 5869, extract then expand). A missing salt (`NULL, 0`)
//! is the empty salt, which RFC 5869 treats as `HashLen` zero bytes; the `hkdf` crate does the
//! same, so both spellings give the same bytes.
//!
//! Where the output must be a secp256k1 key (the node key, the BIP-32 master), `hsmd` passes a
//! `u32` counter as the salt, in the machine's byte order (little-endian on every platform
//! Core Lightning supports), starting at 0, and takes the first counter whose output is valid
//! (`hsmd/libhsmd.c`, `node_key` and `hsmd_init`).

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

/// Fills `out` with HKDF-SHA256(`salt`, `ikm`, `info`).
///
/// Every caller in this crate asks for at most 192 bytes, far below the 8160 bytes HKDF-SHA256
/// can expand to.
pub(crate) fn hkdf_sha256(out: &mut [u8], salt: &[u8], ikm: &[u8], info: &[u8]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    hk.expand(info, out).expect("outputs here are at most 192 bytes, below HKDF's 8160");
}

/// HKDF-SHA256 into a fresh 32-byte array.
pub(crate) fn hkdf_sha256_32(salt: &[u8], ikm: &[u8], info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    hkdf_sha256(&mut out, salt, ikm, info);
    out
}

/// Runs `attempt(counter)` for counter = 0, 1, 2, … and returns the first `Some`, with the
/// counter that produced it; `None` if all 2^32 counters fail (the chance that even one fails
/// is about 2^-128 for a key).
pub(crate) fn first_valid<T>(mut attempt: impl FnMut(u32) -> Option<T>) -> Option<(T, u32)> {
    (0..=u32::MAX).find_map(|counter| attempt(counter).map(|t| (t, counter)))
}

/// HKDF-SHA256 with the little-endian counter as salt, 32 bytes out, as `hsmd` computes one
/// attempt of its counter loops. The caller checks the output and zeroizes what it rejects.
pub(crate) fn hkdf_counter_32(counter: u32, ikm: &[u8], info: &[u8]) -> [u8; 32] {
    hkdf_sha256_32(&counter.to_le_bytes(), ikm, info)
}

/// Runs [`first_valid`] over 32-byte HKDF outputs, zeroizing every rejected output.
pub(crate) fn first_valid_hkdf<T>(
    ikm: &[u8],
    info: &[u8],
    mut accept: impl FnMut(u32, &[u8; 32]) -> Option<T>,
) -> Option<(T, u32)> {
    first_valid(|counter| {
        let mut okm = hkdf_counter_32(counter, ikm, info);
        let result = accept(counter, &okm);
        okm.zeroize();
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, string::String, vec::Vec};

    #[test]
    fn rfc5869_test_case_1() {
        // RFC 5869, Appendix A.1.
        let ikm = [0x0bu8; 22];
        let salt: [u8; 13] = core::array::from_fn(|i| i as u8);
        let info: [u8; 10] = core::array::from_fn(|i| 0xf0 + i as u8);
        let mut okm = [0u8; 42];
        hkdf_sha256(&mut okm, &salt, &ikm, &info);
        let expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                        34007208d5b887185865";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn rfc5869_test_case_3_empty_salt() {
        // RFC 5869, Appendix A.3: no salt, no info; `hsmd` spells "no salt" as NULL, 0.
        let ikm = [0x0bu8; 22];
        let mut okm = [0u8; 42];
        hkdf_sha256(&mut okm, &[], &ikm, &[]);
        let expected = "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
                        9d201395faa4b61a96c8";
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, expected);
    }

    #[test]
    fn counter_loop_takes_the_first_accepted_counter() {
        let (value, counter) = first_valid(|c| (c >= 3).then_some(c * 10)).unwrap();
        assert_eq!((value, counter), (30, 3));
        let (_, counter) = first_valid(|_| Some(())).unwrap();
        assert_eq!(counter, 0);
    }

    #[test]
    fn counter_is_a_little_endian_salt() {
        let ikm = [7u8; 32];
        assert_eq!(hkdf_counter_32(0, &ikm, b"x"), hkdf_sha256_32(&[0, 0, 0, 0], &ikm, b"x"));
        assert_eq!(hkdf_counter_32(1, &ikm, b"x"), hkdf_sha256_32(&[1, 0, 0, 0], &ikm, b"x"));
        assert_ne!(hkdf_counter_32(1, &ikm, b"x"), hkdf_sha256_32(&[0, 0, 0, 1], &ikm, b"x"));
    }

    #[test]
    fn hkdf_loop_skips_rejected_outputs() {
        let ikm = [1u8; 32];
        let mut seen = Vec::new();
        let (okm, counter) = first_valid_hkdf(&ikm, b"info", |c, okm| {
            seen.push(c);
            (c == 2).then_some(*okm)
        })
        .unwrap();
        assert_eq!(counter, 2);
        assert_eq!(seen, [0, 1, 2]);
        assert_eq!(okm, hkdf_counter_32(2, &ikm, b"info"));
    }
}
