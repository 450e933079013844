//! Sealed records: encrypted, name-obfuscated and signed (DESIGN.md §4).
//!
//! ## Format `0x01` (fixed layout, big-endian integers)
//!
//! | offset | length | field |
//! |---|---|---|
//! | 0 | 1 | format byte `0x01` |
//! | 1 | 32 | obfuscated key: HMAC-SHA256(key-obfuscation key, len(store id) ‖ store id ‖ name) |
//! | 33 | 8 | record version (`u64`) |
//! | 41 | 24 | nonce (random, from the caller's entropy source) |
//! | 65 | 64 | BIP-340 signature by the record-signing key |
//! | 129 | n | XChaCha20-Poly1305 ciphertext of the n-byte plaintext |
//! | 129 + n | 16 | Poly1305 tag |
//!
//! - AEAD: key = the record-encryption key; associated data = `0x01` ‖ len(store id) ‖ store
//!   id ‖ obfuscated key ‖ version, so a ciphertext moved to another store, name or version
//!   does not decrypt.
//! - Value hash = SHA-256(nonce ‖ ciphertext ‖ tag), the "sealed value".
//! - Signature = BIP-340 (no auxiliary randomness: every message holds a fresh random nonce
//!   through the value hash) over the tagged hash `warden/record-signature/v1` of
//!   len(store id) ‖ store id ‖ obfuscated key ‖ version ‖ value hash. Anyone with the
//!   record-signing public key can check a record without decrypting it ([`verify_store`]).
//!
//! The store id is not in the envelope: it is the namespace the record is read from, and it
//! is bound through the obfuscated key, the associated data and the signature. The plaintext
//! is the caller's own versioned encoding (version prefix + TLV body); this layer does not
//! look inside it.
//!
//! [`verify_store`]: super::verify_store

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use secp256k1::schnorr::Signature;
use secp256k1::{Message, Secp256k1, XOnlyPublicKey};
use zeroize::Zeroizing;

use super::head::SetElement;
use super::keys::WardenKeys;
use super::{
    aead_open, aead_seal, read_array, tagged_hash, write_hex, RecordVersion, StoreId, NONCE_LEN,
    TAG_LEN,
};
use crate::rng::EntropySource;

/// The format byte of the current record layout.
pub const RECORD_FORMAT_V1: u8 = 0x01;
/// Length of a format-`0x01` envelope before the ciphertext.
pub const RECORD_HEADER_LEN: usize = 1 + 32 + 8 + NONCE_LEN + 64;
/// Length of a format-`0x01` envelope with an empty plaintext.
pub const RECORD_MIN_LEN: usize = RECORD_HEADER_LEN + TAG_LEN;

const SIGNATURE_TAG: &[u8] = b"warden/record-signature/v1";

/// A record name as the storage backend sees it: a keyed hash of (store id, name).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObfuscatedKey(pub [u8; 32]);

impl fmt::Debug for ObfuscatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ObfuscatedKey(")?;
        write_hex(f, &self.0)?;
        f.write_str(")")
    }
}

impl fmt::Display for ObfuscatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, &self.0)
    }
}

/// One sealed record, parsed (its bytes are [`SealedRecord::to_bytes`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRecord {
    key: ObfuscatedKey,
    version: RecordVersion,
    nonce: [u8; NONCE_LEN],
    signature: Signature,
    /// Ciphertext followed by the Poly1305 tag.
    sealed_value: Vec<u8>,
}

impl SealedRecord {
    /// The obfuscated key the record is stored under.
    pub fn key(&self) -> ObfuscatedKey {
        self.key
    }

    /// The record's version.
    pub fn version(&self) -> RecordVersion {
        self.version
    }

    /// The record's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// SHA-256(nonce ‖ ciphertext ‖ tag), the value hash that the signature and the head bind.
    pub fn value_hash(&self) -> [u8; 32] {
        value_hash(&self.nonce, &self.sealed_value)
    }

    /// The record's element of the head's set digest.
    pub fn element(&self) -> SetElement {
        SetElement { key: self.key, version: self.version, value_hash: self.value_hash() }
    }

    /// The envelope (format `0x01`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + self.sealed_value.len());
        out.push(RECORD_FORMAT_V1);
        out.extend_from_slice(&self.key.0);
        out.extend_from_slice(&self.version.0.to_be_bytes());
        out.extend_from_slice(&self.nonce);
        out.extend_from_slice(self.signature.as_ref());
        out.extend_from_slice(&self.sealed_value);
        out
    }

    /// Parses an envelope; checks its layout only, not its signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<SealedRecord, OpenError> {
        let format = *bytes.first().ok_or(OpenError::Truncated { len: 0 })?;
        if format != RECORD_FORMAT_V1 {
            return Err(OpenError::UnknownFormat { found: format });
        }
        let truncated = OpenError::Truncated { len: bytes.len() };
        if bytes.len() < RECORD_MIN_LEN {
            return Err(truncated);
        }
        let key = read_array::<32>(bytes, 1).ok_or(truncated.clone())?;
        let version = read_array::<8>(bytes, 33).ok_or(truncated.clone())?;
        let nonce = read_array::<NONCE_LEN>(bytes, 41).ok_or(truncated.clone())?;
        let signature = read_array::<64>(bytes, 65).ok_or(truncated.clone())?;
        let sealed_value = bytes.get(RECORD_HEADER_LEN..).ok_or(truncated)?.to_vec();
        Ok(SealedRecord {
            key: ObfuscatedKey(key),
            version: RecordVersion(u64::from_be_bytes(version)),
            nonce,
            signature: Signature::from_slice(&signature)
                .expect("any 64 bytes parse as a BIP-340 signature"),
            sealed_value,
        })
    }

    /// Checks the record's signature, as the record of `store_id`, against `signing_key`.
    pub fn verify_signature(
        &self,
        signing_key: &XOnlyPublicKey,
        store_id: &StoreId,
    ) -> Result<(), OpenError> {
        let msg = signature_message(store_id, &self.key, self.version, &self.value_hash());
        Secp256k1::verification_only()
            .verify_schnorr(&self.signature, &msg, signing_key)
            .map_err(|_| OpenError::BadSignature)
    }
}

/// SHA-256 of the nonce and the sealed value.
fn value_hash(nonce: &[u8; NONCE_LEN], sealed_value: &[u8]) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(nonce);
    engine.input(sealed_value);
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The AEAD associated data.
fn associated_data(store_id: &StoreId, key: &ObfuscatedKey, version: RecordVersion) -> Vec<u8> {
    let mut ad = Vec::with_capacity(1 + 1 + StoreId::MAX_LEN + 32 + 8);
    ad.push(RECORD_FORMAT_V1);
    store_id.write_prefixed(&mut ad);
    ad.extend_from_slice(&key.0);
    ad.extend_from_slice(&version.0.to_be_bytes());
    ad
}

/// The message the record-signing key signs.
fn signature_message(
    store_id: &StoreId,
    key: &ObfuscatedKey,
    version: RecordVersion,
    value_hash: &[u8; 32],
) -> Message {
    let mut prefix = Vec::with_capacity(1 + StoreId::MAX_LEN);
    store_id.write_prefixed(&mut prefix);
    Message::from_digest(tagged_hash(
        SIGNATURE_TAG,
        &[&prefix, &key.0, &version.0.to_be_bytes(), value_hash],
    ))
}

/// Seals `plaintext` as version `version` of record `key_name` in `store_id`.
///
/// Draws the 24-byte nonce from `nonce_source`; nothing else is random.
pub fn seal_record(
    keys: &WardenKeys,
    store_id: &StoreId,
    key_name: &[u8],
    version: RecordVersion,
    plaintext: &[u8],
    nonce_source: &mut dyn EntropySource,
) -> SealedRecord {
    let key = keys.obfuscate_key(store_id, key_name);
    let mut nonce = [0u8; NONCE_LEN];
    nonce_source.fill_bytes(&mut nonce);
    let mut sealed_value = Vec::with_capacity(plaintext.len() + TAG_LEN);
    sealed_value.extend_from_slice(plaintext);
    let tag = aead_seal(
        keys.record_encryption_key().expose_secret(),
        &nonce,
        &associated_data(store_id, &key, version),
        &mut sealed_value,
    );
    sealed_value.extend_from_slice(&tag);
    let msg = signature_message(store_id, &key, version, &value_hash(&nonce, &sealed_value));
    let mut keypair = keys.record_signing_keypair();
    let signature = Secp256k1::signing_only().sign_schnorr_no_aux_rand(&msg, &keypair);
    keypair.non_secure_erase();
    SealedRecord { key, version, nonce, signature, sealed_value }
}

/// Opens the envelope `sealed`, expecting version `version` of record `key_name` in
/// `store_id`; returns the plaintext (zeroized on drop).
///
/// The checks run in this order: layout, key and version binding, signature, decryption.
pub fn open_record(
    keys: &WardenKeys,
    store_id: &StoreId,
    key_name: &[u8],
    version: RecordVersion,
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let record = SealedRecord::from_bytes(sealed)?;
    let expected_key = keys.obfuscate_key(store_id, key_name);
    if record.key != expected_key {
        return Err(OpenError::KeyMismatch { expected: expected_key, found: record.key });
    }
    if record.version != version {
        return Err(OpenError::VersionMismatch { expected: version, found: record.version });
    }
    record.verify_signature(&keys.record_signing_pubkey(), store_id)?;
    let tag_at = record
        .sealed_value
        .len()
        .checked_sub(TAG_LEN)
        .ok_or(OpenError::Truncated { len: sealed.len() })?;
    let (ciphertext, tag) = record.sealed_value.split_at(tag_at);
    let tag: [u8; TAG_LEN] =
        tag.try_into().map_err(|_| OpenError::Truncated { len: sealed.len() })?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    aead_open(
        keys.record_encryption_key().expose_secret(),
        &record.nonce,
        &associated_data(store_id, &record.key, record.version),
        &mut plaintext,
        &tag,
    )
    .map_err(|_| OpenError::DecryptionFailed)?;
    Ok(plaintext)
}

/// Why a sealed record does not open. No variant carries secret material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// The envelope is shorter than its layout requires.
    Truncated {
        /// The envelope's length in bytes.
        len: usize,
    },
    /// The format byte is not one this version of Warden reads.
    UnknownFormat {
        /// The format byte found.
        found: u8,
    },
    /// The record is stored under another name or belongs to another store.
    KeyMismatch {
        /// The obfuscated key of the requested (store id, name).
        expected: ObfuscatedKey,
        /// The obfuscated key in the envelope.
        found: ObfuscatedKey,
    },
    /// The record is another version than the one requested (for example a stale one).
    VersionMismatch {
        /// The version requested.
        expected: RecordVersion,
        /// The version in the envelope.
        found: RecordVersion,
    },
    /// The signature does not verify: the record was altered or not written by this signer.
    BadSignature,
    /// The signature verifies but the ciphertext does not decrypt under this seed's key.
    DecryptionFailed,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Truncated { len } => write!(f, "sealed record truncated ({len} bytes)"),
            OpenError::UnknownFormat { found } => {
                write!(f, "unknown sealed-record format {found:#04x}")
            }
            OpenError::KeyMismatch { expected, found } => {
                write!(f, "sealed record is stored under key {found}, expected {expected}")
            }
            OpenError::VersionMismatch { expected, found } => {
                write!(f, "sealed record is version {found}, expected {expected}")
            }
            OpenError::BadSignature => f.write_str("sealed record signature does not verify"),
            OpenError::DecryptionFailed => f.write_str("sealed record does not decrypt"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for OpenError {}
