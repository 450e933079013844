//! The signed head of a store, its incremental set digest, and whole-store verification
//! (DESIGN.md §4).
//!
//! A head `{store id, seq, count, digest, time}` is written in the same atomic batch as the
//! records it covers and signed by the record-signing key. `seq` grows by one per batch,
//! `count` is the number of records, `time` is the caller's clock (Unix seconds; the core has
//! no clock), and `digest` is a multiset hash of every record's element
//! `(obfuscated key, version, value hash)`.
//!
//! ## The set digest: an elliptic-curve multiset hash (ECMH) over secp256k1
//!
//! Each element is mapped to a curve point by try-and-increment: the first counter
//! `c = 0, 1, …` for which `x = tagged_hash("warden/head-element/v1", key ‖ version ‖ value hash
//! ‖ c)` is the x-coordinate of a point gives the point `(x, even y)`. The digest is the sum of
//! the points of all elements (the point at infinity for the empty set). Adding or removing a
//! record is one point addition (a removal adds the negated point), so a batch of `k` changes
//! costs O(k), whatever the number of records.
//!
//! Why not XOR or a sum modulo 2^256 of hashes: both are linear over a small group, and an
//! attacker who can get many elements hashed can find a subset with any target digest (Gaussian
//! elimination for XOR; Wagner's generalized birthday algorithm for modular sums, which needs
//! moduli of well over a thousand bits to resist). MuHash needs a multiplicative group where
//! discrete logarithms are hard, hence a 3072-bit modulus and big-integer code. ECMH
//! (Maitin-Shepard, Tibouchi, Aranha, "Elliptic Curve Multiset Hash", 2016) gets the same
//! property from secp256k1, which the crate already has: finding two different multisets with
//! the same digest is as hard as the elliptic-curve discrete logarithm (about 2^128 work),
//! treating the tagged hash as a random oracle. Its assumptions: ECDLP on secp256k1, and
//! SHA-256 behaving as a random oracle. It is a multiset hash, so the set property (each key
//! once) is checked separately by [`verify_store`].
//!
//! ## Head format `0x01` (big-endian integers)
//!
//! | offset | length | field |
//! |---|---|---|
//! | 0 | 1 | format byte `0x01` |
//! | 1 | 1 | store id length L (1 to 64) |
//! | 2 | L | store id |
//! | 2 + L | 8 | seq (`u64`) |
//! | 10 + L | 8 | count (`u64`) |
//! | 18 + L | 33 | digest: compressed point, or 33 zero bytes for the empty set |
//! | 51 + L | 8 | time (`u64`, Unix seconds, from the caller) |
//! | 59 + L | 64 | BIP-340 signature (signed head only) |
//!
//! The signature is over the tagged hash `warden/head/v1` of bytes `0 .. 59 + L`.

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::vec::Vec;
use core::fmt;

use secp256k1::schnorr::Signature;
use secp256k1::{Message, Parity, PublicKey, Secp256k1, XOnlyPublicKey};

use super::keys::WardenKeys;
use super::record::{ObfuscatedKey, OpenError, SealedRecord};
use super::{read_array, tagged_hash, RecordVersion, StoreId};

/// The format byte of the current head layout.
pub const HEAD_FORMAT_V1: u8 = 0x01;

const ELEMENT_TAG: &[u8] = b"warden/head-element/v1";
const HEAD_TAG: &[u8] = b"warden/head/v1";

/// One record as the head's digest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SetElement {
    /// The record's obfuscated key.
    pub key: ObfuscatedKey,
    /// The record's version.
    pub version: RecordVersion,
    /// SHA-256 of the record's sealed value ([`SealedRecord::value_hash`]).
    pub value_hash: [u8; 32],
}

impl SetElement {
    /// The element's curve point (see the module documentation).
    fn point(&self) -> PublicKey {
        let version = self.version.0.to_be_bytes();
        (0..=u32::MAX)
            .find_map(|counter| {
                let x = tagged_hash(
                    ELEMENT_TAG,
                    &[&self.key.0, &version, &self.value_hash, &counter.to_be_bytes()],
                );
                XOnlyPublicKey::from_slice(&x)
                    .ok()
                    .map(|x| PublicKey::from_x_only_public_key(x, Parity::Even))
            })
            .expect("half of all x-coordinates are on the curve: 2^32 misses do not happen")
    }
}

/// An elliptic-curve multiset hash: the sum of the elements' points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetDigest(Option<PublicKey>);

impl SetDigest {
    /// The digest of the empty set (the point at infinity).
    pub const EMPTY: SetDigest = SetDigest(None);

    /// Adds `point` (the point at infinity when the sum cancels out).
    fn add_point(&mut self, point: PublicKey) {
        self.0 = match self.0 {
            None => Some(point),
            // `combine` fails only when the sum is the point at infinity.
            Some(sum) => sum.combine(&point).ok(),
        };
    }

    /// Adds one element.
    pub fn insert(&mut self, element: &SetElement) {
        self.add_point(element.point());
    }

    /// Removes one element (which must have been added).
    pub fn remove(&mut self, element: &SetElement) {
        self.add_point(element.point().negate(&Secp256k1::verification_only()));
    }

    /// The digest of `elements`, from scratch.
    pub fn recompute<'a>(elements: impl IntoIterator<Item = &'a SetElement>) -> SetDigest {
        let mut digest = SetDigest::EMPTY;
        for element in elements {
            digest.insert(element);
        }
        digest
    }

    /// The 33-byte encoding: a compressed point, or zeros for the empty set.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.0.map_or([0u8; 33], |p| p.serialize())
    }

    /// Decodes [`SetDigest::to_bytes`].
    pub fn from_bytes(bytes: &[u8; 33]) -> Option<SetDigest> {
        if bytes == &[0u8; 33] {
            return Some(SetDigest::EMPTY);
        }
        PublicKey::from_slice(bytes).ok().map(|p| SetDigest(Some(p)))
    }
}

/// The state of a store at one sequence number (unsigned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// The store this head covers.
    pub store_id: StoreId,
    /// The batch number: 0 for the empty store, one more per batch.
    pub seq: u64,
    /// The number of records.
    pub count: u64,
    /// The multiset hash of the records' elements.
    pub digest: SetDigest,
    /// When the batch was written (Unix seconds, from the caller's clock).
    pub time: u64,
}

impl Head {
    /// The head of an empty store.
    pub fn genesis(store_id: StoreId, time: u64) -> Head {
        Head { store_id, seq: 0, count: 0, digest: SetDigest::EMPTY, time }
    }

    /// The head after one batch that removes `removed` (each element must be in the store:
    /// the record's previous version when it is overwritten) and adds `added`, written at
    /// `time`. Costs O(`removed.len() + added.len()`).
    pub fn apply(
        &self,
        removed: &[SetElement],
        added: &[SetElement],
        time: u64,
    ) -> Result<Head, HeadUpdateError> {
        let seq = self.seq.checked_add(1).ok_or(HeadUpdateError::SeqOverflow)?;
        let removed_n = u64::try_from(removed.len()).map_err(|_| HeadUpdateError::CountOverflow)?;
        let added_n = u64::try_from(added.len()).map_err(|_| HeadUpdateError::CountOverflow)?;
        let count = self
            .count
            .checked_sub(removed_n)
            .ok_or(HeadUpdateError::CountUnderflow { count: self.count, removed: removed_n })?
            .checked_add(added_n)
            .ok_or(HeadUpdateError::CountOverflow)?;
        let mut digest = self.digest;
        for element in removed {
            digest.remove(element);
        }
        for element in added {
            digest.insert(element);
        }
        Ok(Head { store_id: self.store_id, seq, count, digest, time })
    }

    /// This head with its count and digest recomputed from `all` the store's elements (for
    /// verification: a consistent head equals its recomputation).
    pub fn recompute(&self, all: &[SetElement]) -> Head {
        Head {
            count: u64::try_from(all.len()).unwrap_or(u64::MAX),
            digest: SetDigest::recompute(all),
            ..*self
        }
    }

    /// The unsigned encoding (format `0x01`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 1 + StoreId::MAX_LEN + 8 + 8 + 33 + 8 + 64);
        out.push(HEAD_FORMAT_V1);
        self.store_id.write_prefixed(&mut out);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.count.to_be_bytes());
        out.extend_from_slice(&self.digest.to_bytes());
        out.extend_from_slice(&self.time.to_be_bytes());
        out
    }

    /// Decodes an unsigned head, returning it and the number of bytes read.
    fn decode(bytes: &[u8]) -> Result<(Head, usize), HeadDecodeError> {
        let truncated = HeadDecodeError::Truncated { len: bytes.len() };
        let format = *bytes.first().ok_or(truncated.clone())?;
        if format != HEAD_FORMAT_V1 {
            return Err(HeadDecodeError::UnknownFormat { found: format });
        }
        let id_len = usize::from(*bytes.get(1).ok_or(truncated.clone())?);
        let id = bytes.get(2..2 + id_len).ok_or(truncated.clone())?;
        let store_id =
            StoreId::new(id).map_err(|e| HeadDecodeError::BadStoreIdLength { len: e.len })?;
        let at = 2 + id_len;
        let seq = read_array::<8>(bytes, at).ok_or(truncated.clone())?;
        let count = read_array::<8>(bytes, at + 8).ok_or(truncated.clone())?;
        let digest = read_array::<33>(bytes, at + 16).ok_or(truncated.clone())?;
        let time = read_array::<8>(bytes, at + 49).ok_or(truncated)?;
        let head = Head {
            store_id,
            seq: u64::from_be_bytes(seq),
            count: u64::from_be_bytes(count),
            digest: SetDigest::from_bytes(&digest).ok_or(HeadDecodeError::BadDigest)?,
            time: u64::from_be_bytes(time),
        };
        Ok((head, at + 57))
    }

    /// Decodes [`Head::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Head, HeadDecodeError> {
        let (head, used) = Head::decode(bytes)?;
        if used != bytes.len() {
            return Err(HeadDecodeError::TrailingBytes { len: bytes.len() });
        }
        Ok(head)
    }

    fn signature_message(&self) -> Message {
        Message::from_digest(tagged_hash(HEAD_TAG, &[&self.to_bytes()]))
    }

    /// Signs the head with the record-signing key.
    pub fn sign(&self, keys: &WardenKeys) -> SignedHead {
        let mut keypair = keys.record_signing_keypair();
        let signature =
            Secp256k1::signing_only().sign_schnorr_no_aux_rand(&self.signature_message(), &keypair);
        keypair.non_secure_erase();
        SignedHead { head: *self, signature }
    }
}

/// A head and its BIP-340 signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedHead {
    /// The head (not yet verified when decoded).
    pub head: Head,
    /// The record-signing key's signature over the head's encoding.
    pub signature: Signature,
}

impl SignedHead {
    /// Checks the signature against `signing_key` and returns the head.
    pub fn verify(&self, signing_key: &XOnlyPublicKey) -> Result<&Head, VerifyStoreError> {
        Secp256k1::verification_only()
            .verify_schnorr(&self.signature, &self.head.signature_message(), signing_key)
            .map_err(|_| VerifyStoreError::HeadSignature)?;
        Ok(&self.head)
    }

    /// The encoding: the head's bytes, then the 64-byte signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.head.to_bytes();
        out.extend_from_slice(self.signature.as_ref());
        out
    }

    /// Decodes [`SignedHead::to_bytes`] (the signature is not checked here).
    pub fn from_bytes(bytes: &[u8]) -> Result<SignedHead, HeadDecodeError> {
        let (head, used) = Head::decode(bytes)?;
        let signature =
            read_array::<64>(bytes, used).ok_or(HeadDecodeError::Truncated { len: bytes.len() })?;
        if used + 64 != bytes.len() {
            return Err(HeadDecodeError::TrailingBytes { len: bytes.len() });
        }
        Ok(SignedHead {
            head,
            signature: Signature::from_slice(&signature)
                .expect("any 64 bytes parse as a BIP-340 signature"),
        })
    }
}

/// Checks a whole store against its signed head.
///
/// `records` are the envelopes the backend returned for `store_id`; `min_seq` is the
/// freshest sequence number the caller already trusts (its local store's head, 0 if none).
/// The checks run in this order and the first failure is returned: head signature, store id,
/// freshness, each record's layout and signature, duplicate keys, record count, digest.
pub fn verify_store<R: AsRef<[u8]>>(
    signing_key: &XOnlyPublicKey,
    store_id: &StoreId,
    records: &[R],
    head: &SignedHead,
    min_seq: u64,
) -> Result<(), VerifyStoreError> {
    let head = head.verify(signing_key)?;
    if head.store_id != *store_id {
        return Err(VerifyStoreError::WrongStore { found: Box::new(head.store_id) });
    }
    if head.seq < min_seq {
        return Err(VerifyStoreError::StaleHead { seq: head.seq, min_seq });
    }
    let mut elements = Vec::with_capacity(records.len());
    let mut keys = BTreeSet::new();
    for (index, bytes) in records.iter().enumerate() {
        let record = SealedRecord::from_bytes(bytes.as_ref())
            .and_then(|r| r.verify_signature(signing_key, store_id).map(|()| r))
            .map_err(|error| VerifyStoreError::BadRecord { index, error })?;
        if !keys.insert(record.key()) {
            return Err(VerifyStoreError::DuplicateKey { key: record.key() });
        }
        elements.push(record.element());
    }
    let found = u64::try_from(elements.len()).unwrap_or(u64::MAX);
    if found < head.count {
        return Err(VerifyStoreError::MissingRecords { expected: head.count, found });
    }
    if found > head.count {
        return Err(VerifyStoreError::ExtraRecords { expected: head.count, found });
    }
    if SetDigest::recompute(&elements) != head.digest {
        return Err(VerifyStoreError::DigestMismatch { seq: head.seq });
    }
    Ok(())
}

/// What is wrong with a store, as [`verify_store`] finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyStoreError {
    /// The head's signature does not verify under the record-signing key.
    HeadSignature,
    /// The head belongs to another store.
    WrongStore {
        /// The store the head names (boxed: a store id is 65 bytes).
        found: Box<StoreId>,
    },
    /// The head is older than one the caller already trusts (a rollback).
    StaleHead {
        /// The head's sequence number.
        seq: u64,
        /// The lowest acceptable sequence number.
        min_seq: u64,
    },
    /// A record is malformed or its signature does not verify (tampered or foreign).
    BadRecord {
        /// The record's position in the list checked.
        index: usize,
        /// What is wrong with it.
        error: OpenError,
    },
    /// Two records have the same key.
    DuplicateKey {
        /// The repeated key.
        key: ObfuscatedKey,
    },
    /// Fewer records than the head counts: records were dropped.
    MissingRecords {
        /// The head's count.
        expected: u64,
        /// The records found.
        found: u64,
    },
    /// More records than the head counts: deleted records were resurrected or added.
    ExtraRecords {
        /// The head's count.
        expected: u64,
        /// The records found.
        found: u64,
    },
    /// The count matches but the contents do not: a record is stale (an older, validly
    /// signed version) or was swapped for another validly signed record.
    DigestMismatch {
        /// The head's sequence number.
        seq: u64,
    },
}

impl fmt::Display for VerifyStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyStoreError::HeadSignature => f.write_str("head signature does not verify"),
            VerifyStoreError::WrongStore { found } => {
                write!(f, "head of another store, {found:?}")
            }
            VerifyStoreError::StaleHead { seq, min_seq } => {
                write!(f, "head seq {seq} is older than the trusted seq {min_seq}")
            }
            VerifyStoreError::BadRecord { index, error } => write!(f, "record {index}: {error}"),
            VerifyStoreError::DuplicateKey { key } => write!(f, "key {key} appears twice"),
            VerifyStoreError::MissingRecords { expected, found } => {
                write!(f, "{found} records, the head counts {expected}: records are missing")
            }
            VerifyStoreError::ExtraRecords { expected, found } => {
                write!(f, "{found} records, the head counts {expected}: unexpected records")
            }
            VerifyStoreError::DigestMismatch { seq } => {
                write!(f, "records do not match the digest of head {seq}: stale or substituted")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VerifyStoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyStoreError::BadRecord { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A head encoding that does not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadDecodeError {
    /// Shorter than its layout requires.
    Truncated {
        /// The encoding's length in bytes.
        len: usize,
    },
    /// A format byte this version of Warden does not read.
    UnknownFormat {
        /// The format byte found.
        found: u8,
    },
    /// A store id length outside 1 to 64.
    BadStoreIdLength {
        /// The length found.
        len: usize,
    },
    /// The digest is neither a curve point nor the empty-set encoding.
    BadDigest,
    /// Bytes after the end of the layout.
    TrailingBytes {
        /// The encoding's length in bytes.
        len: usize,
    },
}

impl fmt::Display for HeadDecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadDecodeError::Truncated { len } => write!(f, "head truncated ({len} bytes)"),
            HeadDecodeError::UnknownFormat { found } => {
                write!(f, "unknown head format {found:#04x}")
            }
            HeadDecodeError::BadStoreIdLength { len } => {
                write!(f, "head store id of {len} bytes, expected 1 to 64")
            }
            HeadDecodeError::BadDigest => f.write_str("head digest is not a curve point"),
            HeadDecodeError::TrailingBytes { len } => {
                write!(f, "head has trailing bytes ({len} bytes in all)")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeadDecodeError {}

/// A head update that cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadUpdateError {
    /// The sequence number is at its maximum.
    SeqOverflow,
    /// More removals than records.
    CountUnderflow {
        /// The head's count.
        count: u64,
        /// The removals asked for.
        removed: u64,
    },
    /// More records than a `u64` counts.
    CountOverflow,
}

impl fmt::Display for HeadUpdateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadUpdateError::SeqOverflow => f.write_str("head seq would overflow"),
            HeadUpdateError::CountUnderflow { count, removed } => {
                write!(f, "removing {removed} records from a head that counts {count}")
            }
            HeadUpdateError::CountOverflow => f.write_str("head record count would overflow"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HeadUpdateError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn element(i: u8) -> SetElement {
        SetElement {
            key: ObfuscatedKey([i; 32]),
            version: RecordVersion(u64::from(i)),
            value_hash: [i.wrapping_mul(7); 32],
        }
    }

    #[test]
    fn add_then_remove_is_empty() {
        let mut d = SetDigest::EMPTY;
        d.insert(&element(1));
        d.insert(&element(2));
        d.remove(&element(1));
        d.remove(&element(2));
        assert_eq!(d, SetDigest::EMPTY);
        assert_eq!(SetDigest::from_bytes(&d.to_bytes()), Some(SetDigest::EMPTY));
    }

    #[test]
    fn digest_is_order_independent() {
        let a = SetDigest::recompute(&[element(1), element(2), element(3)]);
        let b = SetDigest::recompute(&[element(3), element(1), element(2)]);
        assert_eq!(a, b);
        assert_ne!(a, SetDigest::recompute(&[element(1), element(2)]));
        assert_eq!(SetDigest::from_bytes(&a.to_bytes()), Some(a));
    }

    #[test]
    fn head_round_trips_and_rejects_garbage() {
        let store = StoreId::new(b"store").unwrap();
        let head = Head::genesis(store, 1_700_000_000).apply(&[], &[element(9)], 5).unwrap();
        assert_eq!(Head::from_bytes(&head.to_bytes()), Ok(head));
        let mut bytes = head.to_bytes();
        bytes.push(0);
        assert!(matches!(Head::from_bytes(&bytes), Err(HeadDecodeError::TrailingBytes { .. })));
        assert!(matches!(Head::from_bytes(&bytes[..10]), Err(HeadDecodeError::Truncated { .. })));
        bytes[0] = 2;
        assert_eq!(Head::from_bytes(&bytes), Err(HeadDecodeError::UnknownFormat { found: 2 }));
        assert_eq!(
            head.apply(&[element(1), element(2)], &[], 6),
            Err(HeadUpdateError::CountUnderflow { count: 1, removed: 2 })
        );
    }
}
