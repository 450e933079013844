//! The primitives BOLT-08 names: `SHA-256`, `HKDF`, `ECDH`, and ChaCha20-Poly1305 (RFC 8439,
//! IETF variant) with the Noise nonce encoding (32 zero bits ‖ little-endian 64-bit counter).
//!
//! The AEAD is composed here from the workspace's `chacha20` block cipher and `poly1305`
//! authenticator exactly as RFC 8439 §2.8 defines it; the BOLT-08 vectors exercise it.

use alloc::vec::Vec;

use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hkdf::Hkdf;
use poly1305::universal_hash::{KeyInit, UniversalHash};
use poly1305::Poly1305;
use secp256k1::ecdh::SharedSecret;
use secp256k1::PublicKey;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::SecretBytes;

/// Length of a Poly1305 tag.
pub(crate) const MAC_LEN: usize = 16;

/// A 32-byte symmetric key or chaining key, zeroized on drop.
pub(crate) type Key32 = Zeroizing<[u8; 32]>;

/// `SHA-256(a ‖ b)`.
pub(crate) fn sha256_concat(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// BOLT-08 `HKDF(salt, ikm)`: RFC 5869 extract-and-expand with SHA-256, an empty `info` and
/// 64 bytes of output, returned as its two 32-byte halves.
pub(crate) fn hkdf(salt: &[u8; 32], ikm: &[u8]) -> (Key32, Key32) {
    let mut okm = Zeroizing::new([0u8; 64]);
    Hkdf::<Sha256>::new(Some(salt), ikm)
        .expand(&[], &mut *okm)
        .expect("64 bytes is far below HKDF-SHA256's 255 * 32 byte limit");
    let mut a = Zeroizing::new([0u8; 32]);
    let mut b = Zeroizing::new([0u8; 32]);
    let (left, right) = okm.split_at(32);
    a.copy_from_slice(left);
    b.copy_from_slice(right);
    (a, b)
}

/// BOLT-08 `ECDH(rk, k)`: SHA-256 of the compressed encoding of `k·rk`
/// (libsecp256k1's default ECDH hash is exactly this).
pub(crate) fn ecdh(remote: &PublicKey, local: &SecretBytes) -> Key32 {
    let mut sk = local.to_secp();
    let mut shared = SharedSecret::new(remote, &sk);
    sk.non_secure_erase();
    let out = Zeroizing::new(shared.secret_bytes());
    shared.non_secure_erase();
    out
}

/// The ChaCha20 instance for key `k` and Noise nonce `n` positioned at block 1, and the
/// Poly1305 key taken from block 0 (RFC 8439 §2.6).
fn cipher(key: &[u8; 32], n: u64) -> (ChaCha20, Key32) {
    let mut nonce = [0u8; 12];
    let (_, counter) = nonce.split_at_mut(4);
    counter.copy_from_slice(&n.to_le_bytes());
    let mut c = ChaCha20::new(key.into(), (&nonce).into());
    let mut block0 = Zeroizing::new([0u8; 64]);
    c.apply_keystream(&mut *block0);
    let mut poly_key = Zeroizing::new([0u8; 32]);
    poly_key.copy_from_slice(block0.first_chunk::<32>().expect("64 bytes hold 32"));
    (c, poly_key)
}

/// RFC 8439 §2.8: Poly1305 over `ad ‖ pad16 ‖ ct ‖ pad16 ‖ le64(|ad|) ‖ le64(|ct|)`.
fn tag(poly_key: &[u8; 32], ad: &[u8], ct: &[u8]) -> [u8; MAC_LEN] {
    let mut poly = Poly1305::new(poly_key.into());
    poly.update_padded(ad);
    poly.update_padded(ct);
    let mut lens = [0u8; 16];
    let (l_ad, l_ct) = lens.split_at_mut(8);
    l_ad.copy_from_slice(&(ad.len() as u64).to_le_bytes());
    l_ct.copy_from_slice(&(ct.len() as u64).to_le_bytes());
    poly.update_padded(&lens);
    poly.finalize().into()
}

/// `encryptWithAD(k, n, ad, plaintext)`: returns `ciphertext ‖ tag`.
pub(crate) fn encrypt_with_ad(key: &[u8; 32], n: u64, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(plaintext.len() + MAC_LEN);
    out.extend_from_slice(plaintext);
    let (mut c, poly_key) = cipher(key, n);
    c.apply_keystream(&mut out);
    let t = tag(&poly_key, ad, &out);
    out.extend_from_slice(&t);
    out
}

/// The AEAD check failed: the ciphertext, its tag, the key, the nonce or the associated data
/// is not what the sender used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MacError;

/// `decryptWithAD(k, n, ad, ciphertext ‖ tag)`: checks the tag in constant time before
/// decrypting; returns the plaintext. Never panics, whatever `input` is.
pub(crate) fn decrypt_with_ad(
    key: &[u8; 32],
    n: u64,
    ad: &[u8],
    input: &[u8],
) -> Result<Zeroizing<Vec<u8>>, MacError> {
    let ct_len = input.len().checked_sub(MAC_LEN).ok_or(MacError)?;
    let (ct, received) = input.split_at(ct_len);
    let (mut c, poly_key) = cipher(key, n);
    let mut expected = tag(&poly_key, ad, ct);
    let ok = bool::from(expected.ct_eq(received));
    expected.zeroize();
    if !ok {
        return Err(MacError);
    }
    let mut out = Zeroizing::new(ct.to_vec());
    c.apply_keystream(&mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    /// Encryption and decryption agree; any change of nonce, AD, one bit or length is refused.
    #[test]
    fn round_trip_and_tamper() {
        let key = [7u8; 32];
        let ct = encrypt_with_ad(&key, 5, b"ad", b"hello world");
        assert_eq!(ct.len(), 11 + MAC_LEN);
        assert_eq!(&*decrypt_with_ad(&key, 5, b"ad", &ct).unwrap(), b"hello world");
        assert_eq!(decrypt_with_ad(&key, 6, b"ad", &ct), Err(MacError));
        assert_eq!(decrypt_with_ad(&key, 5, b"ae", &ct), Err(MacError));
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 1;
            assert_eq!(decrypt_with_ad(&key, 5, b"ad", &bad), Err(MacError));
        }
        assert_eq!(decrypt_with_ad(&key, 5, b"ad", &ct[..15]), Err(MacError));
    }
}
