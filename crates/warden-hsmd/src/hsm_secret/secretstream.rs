//! One message of libsodium's `crypto_secretstream_xchacha20poly1305`, the construction Core
//! Lightning uses for the 73-byte encrypted `hsm_secret` (`common/hsm_secret.c`,
//! `encrypt_legacy_hsm_secret` / `decrypt_hsm_secret`; earlier `common/hsm_encryption.c`).
//!
//! The construction, as libsodium's `secretstream_xchacha20poly1305.c` defines it:
//! - `init_push` / `init_pull`: the 24-byte header is random; the stream key is
//!   HChaCha20(key, header[0..16]); the 12-byte ChaCha20-IETF nonce is the 32-bit little-endian
//!   counter 1 followed by header[16..24].
//! - `push` / `pull` of one message `m` with tag `t` and no additional data: keystream block 0
//!   is the Poly1305 key; a 64-byte block holding `t` then zeros is XORed with keystream block 1,
//!   and its first byte is the first ciphertext byte; `m` is XORed with the keystream from block
//!   2 on. The MAC covers (additional data, empty here) ‖ its padding ‖ the 64-byte tag block ‖
//!   the ciphertext ‖ `mlen mod 16` zero bytes (libsodium computes the pad as
//!   `(0x10 - 64 + mlen) & 0xf`, which is not the RFC 8439 pad) ‖ le64(adlen) ‖
//!   le64(64 + mlen). The output is tag byte ‖ ciphertext ‖ 16-byte MAC: `mlen + 17` bytes.
//!
//! Only the first message of a stream is implemented: the state update after it (nonce XOR MAC,
//! counter increment, rekey) does not matter for a one-message file.

use chacha20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use chacha20::{hchacha, ChaCha20, R20};
use poly1305::universal_hash::KeyInit;
use poly1305::Poly1305;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

/// `crypto_secretstream_xchacha20poly1305_HEADERBYTES`.
pub const HEADER_LEN: usize = 24;
/// `crypto_secretstream_xchacha20poly1305_ABYTES`: one tag byte and a 16-byte MAC.
pub const A_LEN: usize = 17;
/// `crypto_secretstream_xchacha20poly1305_TAG_MESSAGE`, the tag Core Lightning writes (its
/// `push` passes tag 0).
pub const TAG_MESSAGE: u8 = 0;

const MAC_LEN: usize = 16;
const BLOCK_LEN: usize = 64;

/// The ciphertext is shorter than [`A_LEN`] or its MAC does not verify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenError;

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("secretstream message does not authenticate")
    }
}

impl std::error::Error for OpenError {}

/// The per-stream ChaCha20 key and nonce of `init_push` / `init_pull`.
struct Stream {
    key: Zeroizing<[u8; 32]>,
    nonce: [u8; 12],
}

impl Stream {
    fn init(key: &[u8; 32], header: &[u8; HEADER_LEN]) -> Stream {
        let (hin, inonce) = header.split_at(16);
        let hin: &[u8; 16] = hin.try_into().expect("a 24-byte header has a 16-byte prefix");
        let mut sub = hchacha::<R20>(key.into(), hin.into());
        let mut out = Zeroizing::new([0u8; 32]);
        out.copy_from_slice(&sub);
        sub.zeroize();
        let mut nonce = [0u8; 12];
        let (counter, rest) = nonce.split_at_mut(4);
        counter.copy_from_slice(&1u32.to_le_bytes());
        rest.copy_from_slice(inonce);
        Stream { key: out, nonce }
    }

    /// XORs `buf` with the ChaCha20-IETF keystream from the start of block `block`.
    fn xor_from_block(&self, block: u64, buf: &mut [u8]) {
        let mut c = ChaCha20::new((&*self.key).into(), (&self.nonce).into());
        c.seek(block * BLOCK_LEN as u64);
        c.apply_keystream(buf);
    }

    /// The MAC of a message whose encrypted tag block is `tag_block` and whose ciphertext is
    /// `ct` (no additional data).
    fn mac(&self, tag_block: &[u8; BLOCK_LEN], ct: &[u8]) -> [u8; MAC_LEN] {
        let mut poly_key = Zeroizing::new([0u8; BLOCK_LEN]);
        self.xor_from_block(0, &mut *poly_key);
        let key: &[u8; 32] = poly_key.first_chunk().expect("64 bytes hold 32");
        let poly = Poly1305::new(key.into());
        // Poly1305 over the concatenation; libsodium's pad after the ciphertext is
        // `(0x10 - 64 + mlen) & 0xf` = `mlen mod 16` zero bytes.
        let pad = ct.len() % 16;
        let mut input = Zeroizing::new(Vec::with_capacity(BLOCK_LEN + ct.len() + pad + 16));
        input.extend_from_slice(tag_block);
        input.extend_from_slice(ct);
        input.extend(std::iter::repeat_n(0u8, pad));
        input.extend_from_slice(&0u64.to_le_bytes());
        input.extend_from_slice(&((BLOCK_LEN + ct.len()) as u64).to_le_bytes());
        poly.compute_unpadded(&input).into()
    }
}

/// `init_push` with `header` (24 random bytes, chosen by the caller) then one `push` of `msg`
/// with `tag`: returns tag byte ‖ ciphertext ‖ MAC (`msg.len() + 17` bytes).
pub fn seal(key: &[u8; 32], header: &[u8; HEADER_LEN], tag: u8, msg: &[u8]) -> Vec<u8> {
    let stream = Stream::init(key, header);
    let mut tag_block = [0u8; BLOCK_LEN];
    tag_block[0] = tag;
    stream.xor_from_block(1, &mut tag_block);
    let mut out = Vec::with_capacity(msg.len() + A_LEN);
    out.push(tag_block[0]);
    out.extend_from_slice(msg);
    if let Some(ct) = out.get_mut(1..) {
        stream.xor_from_block(2, ct);
    }
    let mac = stream.mac(&tag_block, out.get(1..).unwrap_or_default());
    out.extend_from_slice(&mac);
    out
}

/// `init_pull` with `header` then one `pull` of `sealed`: returns the tag and the message.
/// The MAC is compared in constant time before anything is decrypted.
pub fn open(
    key: &[u8; 32],
    header: &[u8; HEADER_LEN],
    sealed: &[u8],
) -> Result<(u8, Zeroizing<Vec<u8>>), OpenError> {
    let Some(mlen) = sealed.len().checked_sub(A_LEN) else {
        return Err(OpenError);
    };
    let (Some(&wire_tag), Some(ct), Some(stored_mac)) =
        (sealed.first(), sealed.get(1..1 + mlen), sealed.get(1 + mlen..))
    else {
        return Err(OpenError);
    };
    let stream = Stream::init(key, header);
    let mut tag_block = [0u8; BLOCK_LEN];
    stream.xor_from_block(1, &mut tag_block);
    let tag = tag_block[0] ^ wire_tag;
    tag_block[0] = wire_tag;
    let mac = stream.mac(&tag_block, ct);
    if !bool::from(mac.ct_eq(stored_mac)) {
        return Err(OpenError);
    }
    let mut msg = Zeroizing::new(ct.to_vec());
    stream.xor_from_block(2, &mut msg);
    Ok((tag, msg))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    // Known answers generated with libsodium by the orion crate's authors
    // (orion-rs/orion, src/hazardous/aead/xchacha20poly1305_stream.rs, tests "Test values were
    // generated using libsodium"): the first message of a stream, 51 bytes, no additional
    // data. Used as facts only; the bytes are restated here in hex.
    const KEY: &[u8; 32] = b"123456789abcdefghijklmonpqrstuv\0";
    const HEADER: &[u8; 24] = b"abababababababababaabab\0";
    const MSG: &[u8; 51] = b"Default message to test streaming AEAD encryption.\0";
    /// `init_push`'s HChaCha20 subkey for KEY and HEADER.
    const SUBKEY: &str = "172d8f4b0e416ed0062226214074b3f408792017578793f65834db212c445b87";
    /// The message pushed with TAG_PUSH (1).
    const SEALED_PUSH: &str = "fd9400d10e8264e3e748e715ba121a946e605a2e726ea933107430227730d4cb128915df725e81ffc6164ece09df876be0c0045e17299429266e171d1dcf5128d7be40de";
    /// The message pushed with TAG_FINAL (3).
    const SEALED_FINAL: &str = "ff9400d10e8264e3e748e715ba121a946e605a2e726ea933107430227730d4cb128915df725e81ffc6164ece09df876be0c0045e640c1ce82c855191b09911d7b44f184f";

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn subkey_and_nonce_match_libsodium() {
        let s = Stream::init(KEY, HEADER);
        assert_eq!(s.key.to_vec(), hex(SUBKEY));
        assert_eq!(s.nonce, [1, 0, 0, 0, 97, 98, 97, 97, 98, 97, 98, 0]);
    }

    #[test]
    fn push_matches_libsodium() {
        assert_eq!(seal(KEY, HEADER, 1, MSG), hex(SEALED_PUSH));
        assert_eq!(seal(KEY, HEADER, 3, MSG), hex(SEALED_FINAL));
    }

    #[test]
    fn pull_matches_libsodium() {
        let (tag, msg) = open(KEY, HEADER, &hex(SEALED_PUSH)).unwrap();
        assert_eq!((tag, msg.as_slice()), (1, &MSG[..]));
        let (tag, msg) = open(KEY, HEADER, &hex(SEALED_FINAL)).unwrap();
        assert_eq!((tag, msg.as_slice()), (3, &MSG[..]));
    }

    #[test]
    fn every_flipped_bit_and_truncation_fails() {
        let sealed = seal(KEY, HEADER, TAG_MESSAGE, &[7; 32]);
        assert_eq!(sealed.len(), 32 + A_LEN);
        for i in 0..sealed.len() * 8 {
            let mut bad = sealed.clone();
            bad[i / 8] ^= 1 << (i % 8);
            assert_eq!(open(KEY, HEADER, &bad).unwrap_err(), OpenError);
        }
        for len in 0..sealed.len() {
            assert_eq!(open(KEY, HEADER, &sealed[..len]).unwrap_err(), OpenError);
        }
        let mut other_header = *HEADER;
        other_header[23] ^= 1;
        assert_eq!(open(KEY, &other_header, &sealed).unwrap_err(), OpenError);
    }

    #[test]
    fn round_trips_every_length() {
        for len in 0..80 {
            let msg: Vec<u8> = (0..len as u8).collect();
            let (tag, back) = open(KEY, HEADER, &seal(KEY, HEADER, 0, &msg)).unwrap();
            assert_eq!((tag, back.as_slice()), (0, &msg[..]));
        }
    }
}
