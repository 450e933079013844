//! Sealed records, the signed head of a store, and ECIES for node backups (DESIGN.md §4, §5).
//!
//! Everything Warden persists goes through this module before it reaches a storage backend,
//! and the backend (local file, PostgreSQL, a remote storage server) is not trusted: it may
//! lose, roll back, reorder or tamper with what it holds.
//!
//! - [`keys`]: [`WardenKeys`], Warden's own keys, derived from the seed with HKDF under
//!   `warden/...` labels; none of them is a Core Lightning key.
//! - [`record`]: [`seal_record`] / [`open_record`]: one record is encrypted with
//!   XChaCha20-Poly1305, stored under an obfuscated key name, and signed (BIP-340) over
//!   (store id, obfuscated key, version, value hash).
//! - [`head`]: the signed [`Head`] of a store, `{store id, seq, count, digest, time}`, whose
//!   digest is an elliptic-curve multiset hash over every record's (obfuscated key, version,
//!   value hash), updated in O(changes); [`verify_store`] checks a whole store against it.
//! - [`ecies`]: encryption to the node-backup public key, for the node's own database backups;
//!   the signer returns the per-blob key over the link to unseal.
//!
//! Every encoding here starts with a format byte (currently `0x01`). The compatibility
//! promise, for records, heads and ECIES blobs alike: a format, once released, is never
//! changed; a change of layout or of any derivation gets a new format byte; readers keep
//! reading every released format; an unknown format byte is refused with a named error, never
//! guessed at. The golden vectors in `tests/data/seal/` pin format `0x01` byte for byte.

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};

pub mod ecies;
pub mod head;
pub mod keys;
pub mod record;

pub use ecies::{
    ecies_derive_key, ecies_ephemeral_point, ecies_open_with_derived_key, ecies_open_with_key,
    ecies_seal, EciesError,
};
pub use head::{
    verify_store, Head, HeadDecodeError, HeadUpdateError, SetDigest, SetElement, SignedHead,
    VerifyStoreError,
};
pub use keys::{WardenKeyError, WardenKeys};
pub use record::{open_record, seal_record, ObfuscatedKey, OpenError, SealedRecord};

/// Length of an XChaCha20 nonce.
pub const NONCE_LEN: usize = 24;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;

/// The namespace of one signer's records: 1 to [`StoreId::MAX_LEN`] bytes, as `warden-store`
/// accepts them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId {
    len: u8,
    bytes: [u8; StoreId::MAX_LEN],
}

impl StoreId {
    /// The longest store id, in bytes.
    pub const MAX_LEN: usize = 64;

    /// A store id from 1 to [`StoreId::MAX_LEN`] bytes.
    pub fn new(id: &[u8]) -> Result<StoreId, StoreIdError> {
        let len = u8::try_from(id.len()).map_err(|_| StoreIdError { len: id.len() })?;
        let mut bytes = [0u8; StoreId::MAX_LEN];
        match bytes.get_mut(..id.len()) {
            Some(dst) if !id.is_empty() => dst.copy_from_slice(id),
            _ => return Err(StoreIdError { len: id.len() }),
        }
        Ok(StoreId { len, bytes })
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..usize::from(self.len)).unwrap_or(&[])
    }

    /// Appends the id as every format here binds it: one length byte, then the bytes.
    pub(crate) fn write_prefixed(&self, out: &mut Vec<u8>) {
        out.push(self.len);
        out.extend_from_slice(self.as_bytes());
    }
}

impl fmt::Debug for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreId(")?;
        write_hex(f, self.as_bytes())?;
        f.write_str(")")
    }
}

/// A store id of the wrong length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreIdError {
    /// The rejected length in bytes.
    pub len: usize,
}

impl fmt::Display for StoreIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store id of {} bytes, expected 1 to {}", self.len, StoreId::MAX_LEN)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StoreIdError {}

/// The version of one record: the caller's per-key counter, bound into the record's
/// encryption and signature so that an older version cannot pass for the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordVersion(pub u64);

impl fmt::Display for RecordVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// Writes lower-case hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))
}

/// A BIP-340 tagged hash: SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ parts…).
pub(crate) fn tagged_hash(tag: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let tag_hash = sha256::Hash::hash(tag).to_byte_array();
    let mut engine = sha256::Hash::engine();
    engine.input(&tag_hash);
    engine.input(&tag_hash);
    for part in parts {
        engine.input(part);
    }
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// Encrypts `buffer` in place with XChaCha20-Poly1305 and returns the tag.
pub(crate) fn aead_seal(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
) -> [u8; TAG_LEN] {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: &XNonce = nonce.into();
    let tag = cipher
        .encrypt_inout_detached(nonce, aad, buffer.into())
        .expect("XChaCha20-Poly1305 encrypts up to 2^64 blocks; a Vec is far shorter");
    tag.into()
}

/// Decrypts `buffer` in place; `Err(())` is the one failure an AEAD reports (its callers map
/// it to their own error type at once).
pub(crate) fn aead_open(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buffer: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), AeadError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce: &XNonce = nonce.into();
    let tag: &Tag = tag.into();
    cipher.decrypt_inout_detached(nonce, aad, buffer.into(), tag).map_err(|_| AeadError)
}

/// An AEAD tag that does not verify (internal: mapped to each caller's error).
#[derive(Debug)]
pub(crate) struct AeadError;

/// Reads a fixed-size array at `offset`, or `None` when `bytes` is too short.
pub(crate) fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    bytes.get(offset..offset.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn store_id_lengths() {
        assert_eq!(StoreId::new(&[]), Err(StoreIdError { len: 0 }));
        assert_eq!(StoreId::new(&[0; 65]), Err(StoreIdError { len: 65 }));
        assert_eq!(StoreId::new(&[0; 300]), Err(StoreIdError { len: 300 }));
        let id = StoreId::new(&[0xab; 64]).unwrap();
        assert_eq!(id.as_bytes(), &[0xab; 64][..]);
        assert_eq!(format!("{:?}", StoreId::new(b"\x01\xff").unwrap()), "StoreId(01ff)");
        assert_ne!(StoreId::new(&[1]).unwrap(), StoreId::new(&[1, 0]).unwrap());
    }

    #[test]
    fn tagged_hash_is_bip340() {
        // BIP-0340's definition, spelled out: SHA-256(SHA-256(tag) ‖ SHA-256(tag) ‖ msg).
        let ours = tagged_hash(b"BIP0340/challenge", &[b"ab", b"c"]);
        let tag = sha256::Hash::hash(b"BIP0340/challenge").to_byte_array();
        let mut whole = Vec::new();
        whole.extend_from_slice(&tag);
        whole.extend_from_slice(&tag);
        whole.extend_from_slice(b"abc");
        assert_eq!(ours, sha256::Hash::hash(&whole).to_byte_array());
    }

    #[test]
    fn aead_round_trip_and_tamper() {
        let key = [7u8; 32];
        let nonce = [9u8; NONCE_LEN];
        let mut buf = *b"hello";
        let tag = aead_seal(&key, &nonce, b"ad", &mut buf);
        assert_ne!(&buf, b"hello");
        let mut copy = buf;
        aead_open(&key, &nonce, b"ad", &mut copy, &tag).unwrap();
        assert_eq!(&copy, b"hello");
        let mut copy = buf;
        assert!(aead_open(&key, &nonce, b"ae", &mut copy, &tag).is_err());
    }
}
