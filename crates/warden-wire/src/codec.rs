//! The primitive codec: a checked reader, a writer, and the encodings of Core Lightning's
//! primitive wire types (`wire/fromwire.c`, `wire/towire.c`).
//!
//! - Integers are big-endian; `bool` is one byte, strictly 0 or 1 (hsmd's `fromwire_bool`).
//! - An optional field (`?type` in the CSV) is a presence `bool`, then the value if present.
//! - Every array in hsmd's messages has a `u16` count that immediately precedes it (the CSV names
//!   the count field; it is always the field just before). A count is checked against the bytes
//!   that remain, times the smallest encoding of one element, *before* anything is allocated.
//! - `pubkey` is 33 bytes and must be a valid compressed point (`fromwire_pubkey`); `node_id`
//!   is 33 bytes that hsmd does not check ([`crate::NodeId`]).
//! - `secp256k1_ecdsa_signature` is 64 compact bytes (r and s below the curve order);
//!   `bitcoin_signature` adds a sighash byte that must be `SIGHASH_ALL` (0x01) or
//!   `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` (0x83) (`sighash_type_valid`);
//!   `secp256k1_ecdsa_recoverable_signature` is 64 compact bytes and a recovery id 0..=3;
//!   `bip340sig` is 64 unchecked bytes.
//! - `sha256`, `sha256_double`, `bitcoin_txid`, `bitcoin_blkid`, `preimage`, `secret` and
//!   `privkey` are 32 bytes; txids and block ids are in internal byte order (as in a
//!   transaction), not the reversed order of explorers.
//! - `amount_sat`, `amount_msat` and `short_channel_id` are `u64`.
//! - `ext_key` is the 78-byte BIP-0032 serialization (`bip32_key_unserialize`).
//! - `chainparams` is the 32-byte genesis block hash (`towire_chainparams`).
//!
//! Nothing here panics on any input: every read goes through [`Reader::read_bytes`], which
//! uses checked slicing.

use alloc::vec::Vec;

use bitcoin::bip32::Xpub;
use bitcoin::constants::ChainHash;
use bitcoin::hashes::{sha256, sha256d, Hash};
use bitcoin::{Amount, BlockHash, EcdsaSighashType, ScriptBuf, Txid};
use secp256k1::ecdsa::{RecoverableSignature, RecoveryId, Signature};
use secp256k1::{schnorr, PublicKey};

use crate::error::{DecodeError, EncodeError};

/// A cursor over the bytes of one message that never reads past the end.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf`, whose first byte is at offset 0.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0, base: 0 }
    }

    /// The offset of the next byte, from the start of the message body.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// How many bytes remain.
    pub fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    /// Whether every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Reads `n` bytes, or fails with [`DecodeError::Truncated`].
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let slice = self.pos.checked_add(n).and_then(|end| self.buf.get(self.pos..end));
        match slice {
            Some(s) => {
                self.pos = self.pos.saturating_add(n);
                Ok(s)
            }
            None => Err(DecodeError::Truncated {
                offset: self.offset(),
                needed: n,
                remaining: self.remaining(),
            }),
        }
    }

    /// Reads a fixed-size array.
    pub fn read_array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let s = self.read_bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Reads every remaining byte.
    pub fn read_rest(&mut self) -> &'a [u8] {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        rest
    }

    /// Reads `n` bytes as a reader of their own, whose offsets continue this reader's.
    pub fn sub_reader(&mut self, n: usize) -> Result<Reader<'a>, DecodeError> {
        let base = self.offset();
        let buf = self.read_bytes(n)?;
        Ok(Reader { buf, pos: 0, base })
    }

    /// Reads a `u8`.
    pub fn read_u8(&mut self) -> Result<u8, DecodeError> {
        Ok(u8::from_be_bytes(self.read_array()?))
    }

    /// Reads a big-endian `u16`.
    pub fn read_u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.read_array()?))
    }

    /// Reads a big-endian `u32`.
    pub fn read_u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.read_array()?))
    }

    /// Reads a big-endian `u64`.
    pub fn read_u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.read_array()?))
    }

    /// Reads a `bool`: exactly 0 or 1.
    pub fn read_bool(&mut self) -> Result<bool, DecodeError> {
        let offset = self.offset();
        match self.read_u8()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::InvalidBool { offset, value }),
        }
    }

    /// Checks that `count` elements of at least `min_size` bytes each can fit in what remains.
    pub fn check_count(&self, count: u64, min_size: usize) -> Result<(), DecodeError> {
        let fits = match usize::try_from(count) {
            Ok(n) => n.checked_mul(min_size).is_some_and(|need| need <= self.remaining()),
            Err(_) => false,
        };
        if fits {
            Ok(())
        } else {
            Err(DecodeError::CountTooLarge {
                offset: self.offset(),
                count,
                min_size,
                remaining: self.remaining(),
            })
        }
    }

    /// Reads a BOLT-01 BigSize, refusing a non-minimal encoding.
    pub fn read_bigsize(&mut self) -> Result<u64, DecodeError> {
        let offset = self.offset();
        let (value, min) = match self.read_u8()? {
            0xfd => (u64::from(self.read_u16()?), 0xfd),
            0xfe => (u64::from(self.read_u32()?), 0x1_0000),
            0xff => (self.read_u64()?, 0x1_0000_0000),
            small => return Ok(u64::from(small)),
        };
        if value < min {
            return Err(DecodeError::NonMinimalBigSize { offset });
        }
        Ok(value)
    }

    /// Fails with [`DecodeError::TrailingBytes`] if any byte is left unread.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes { offset: self.offset(), count: self.remaining() })
        }
    }
}

/// The bytes of a message under construction.
#[derive(Clone, Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    pub fn new() -> Writer {
        Writer { buf: Vec::new() }
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Appends a `u8`.
    pub fn write_u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    /// Appends a big-endian `u16`.
    pub fn write_u16(&mut self, v: u16) {
        self.write_bytes(&v.to_be_bytes());
    }

    /// Appends a big-endian `u32`.
    pub fn write_u32(&mut self, v: u32) {
        self.write_bytes(&v.to_be_bytes());
    }

    /// Appends a big-endian `u64`.
    pub fn write_u64(&mut self, v: u64) {
        self.write_bytes(&v.to_be_bytes());
    }

    /// Appends a `bool` as 0 or 1.
    pub fn write_bool(&mut self, v: bool) {
        self.write_u8(u8::from(v));
    }

    /// Appends a `u16` count for an array of `len` elements, refusing more than `u16::MAX`.
    pub fn write_count_u16(&mut self, len: usize) -> Result<(), EncodeError> {
        let n = u16::try_from(len).map_err(|_| EncodeError::TooLong {
            field: "",
            len,
            max: usize::from(u16::MAX),
        })?;
        self.write_u16(n);
        Ok(())
    }

    /// Appends a `u32` length, refusing more than `u32::MAX`.
    pub fn write_len_u32(&mut self, len: usize) -> Result<(), EncodeError> {
        let n = u32::try_from(len).map_err(|_| EncodeError::TooLong {
            field: "",
            len,
            max: usize::try_from(u32::MAX).unwrap_or(usize::MAX),
        })?;
        self.write_u32(n);
        Ok(())
    }

    /// Appends a minimally encoded BOLT-01 BigSize.
    pub fn write_bigsize(&mut self, v: u64) {
        match v {
            0..=0xfc => self.write_u8(v as u8),
            0xfd..=0xffff => {
                self.write_u8(0xfd);
                self.write_u16(v as u16);
            }
            0x1_0000..=0xffff_ffff => {
                self.write_u8(0xfe);
                self.write_u32(v as u32);
            }
            _ => {
                self.write_u8(0xff);
                self.write_u64(v);
            }
        }
    }
}

/// A value with a Core Lightning wire encoding: one message field.
pub trait WireField: Sized {
    /// Decodes the field.
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// Encodes the field.
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError>;
}

/// A field that may be an element of a counted array.
pub trait WireElement: WireField {
    /// The fewest bytes one element can take, used to check a count before allocating.
    const MIN_WIRE_SIZE: usize;
}

/// Converts a `u32` wire length to `usize` (every target this crate supports has 32-bit or
/// wider pointers; on anything narrower the length saturates and the read fails as truncated).
pub(crate) fn u32_len(v: u32) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

impl WireField for u16 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_u16()
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u16(*self);
        Ok(())
    }
}

impl WireField for u32 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_u32()
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u32(*self);
        Ok(())
    }
}

impl WireElement for u32 {
    const MIN_WIRE_SIZE: usize = 4;
}

impl WireField for u64 {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_u64()
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u64(*self);
        Ok(())
    }
}

impl WireField for bool {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bool(*self);
        Ok(())
    }
}

/// `?type`: a presence `bool`, then the value.
impl<T: WireField> WireField for Option<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        if r.read_bool()? {
            Ok(Some(T::read(r)?))
        } else {
            Ok(None)
        }
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        match self {
            Some(v) => {
                w.write_bool(true);
                v.write(w)
            }
            None => {
                w.write_bool(false);
                Ok(())
            }
        }
    }
}

/// `len,u16` followed by `u8,len`: a byte string of at most 65535 bytes.
impl WireField for Vec<u8> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let len = r.read_u16()?;
        Ok(r.read_bytes(usize::from(len))?.to_vec())
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_count_u16(self.len())?;
        w.write_bytes(self);
        Ok(())
    }
}

/// `num,u16` followed by `type,num`: an array of at most 65535 elements.
impl<T: WireElement> WireField for Vec<T> {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let count = r.read_u16()?;
        r.check_count(u64::from(count), T::MIN_WIRE_SIZE)?;
        let mut out = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            out.push(T::read(r)?);
        }
        Ok(out)
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_count_u16(self.len())?;
        for v in self {
            v.write(w)?;
        }
        Ok(())
    }
}

/// A script with a `u16` length (witness scripts, shutdown scripts, output scripts).
impl WireField for ScriptBuf {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ScriptBuf::from_bytes(Vec::<u8>::read(r)?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_count_u16(self.len())?;
        w.write_bytes(self.as_bytes());
        Ok(())
    }
}

/// `pubkey`: 33 bytes, a valid compressed secp256k1 point.
impl WireField for PublicKey {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let bytes = r.read_bytes(33)?;
        PublicKey::from_slice(bytes).map_err(|_| DecodeError::InvalidPublicKey { offset })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.serialize());
        Ok(())
    }
}

/// `secp256k1_ecdsa_signature`: 64 compact bytes.
impl WireField for Signature {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let bytes = r.read_bytes(64)?;
        Signature::from_compact(bytes).map_err(|_| DecodeError::InvalidSignature { offset })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.serialize_compact());
        Ok(())
    }
}

/// `bitcoin_signature`: a compact signature and a sighash byte hsmd accepts.
impl WireField for bitcoin::ecdsa::Signature {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let signature = Signature::read(r)?;
        let offset = r.offset();
        let value = r.read_u8()?;
        let sighash_type = match value {
            0x01 => EcdsaSighashType::All,
            0x83 => EcdsaSighashType::SinglePlusAnyoneCanPay,
            _ => return Err(DecodeError::InvalidSighashType { offset, value }),
        };
        Ok(bitcoin::ecdsa::Signature { signature, sighash_type })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        self.signature.write(w)?;
        // Every `EcdsaSighashType` is one byte on the wire (0x01..=0x03, 0x81..=0x83).
        w.write_u8(self.sighash_type.to_u32() as u8);
        Ok(())
    }
}

impl WireElement for bitcoin::ecdsa::Signature {
    const MIN_WIRE_SIZE: usize = 65;
}

/// `secp256k1_ecdsa_recoverable_signature`: 64 compact bytes and a recovery id.
impl WireField for RecoverableSignature {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let compact = r.read_bytes(64)?;
        let recid_offset = r.offset();
        let value = r.read_u8()?;
        let recid = RecoveryId::from_i32(i32::from(value))
            .map_err(|_| DecodeError::InvalidRecoveryId { offset: recid_offset, value })?;
        RecoverableSignature::from_compact(compact, recid)
            .map_err(|_| DecodeError::InvalidSignature { offset })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        let (recid, compact) = self.serialize_compact();
        w.write_bytes(&compact);
        // A recovery id is 0..=3.
        w.write_u8(recid.to_i32() as u8);
        Ok(())
    }
}

/// `bip340sig`: 64 bytes, not checked on the wire.
impl WireField for schnorr::Signature {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let bytes = r.read_bytes(64)?;
        schnorr::Signature::from_slice(bytes).map_err(|_| DecodeError::InvalidSignature { offset })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_ref());
        Ok(())
    }
}

/// `sha256`: 32 bytes.
impl WireField for sha256::Hash {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(sha256::Hash::from_byte_array(r.read_array()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_byte_array());
        Ok(())
    }
}

/// `sha256_double`: 32 bytes.
impl WireField for sha256d::Hash {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(sha256d::Hash::from_byte_array(r.read_array()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_byte_array());
        Ok(())
    }
}

/// `bitcoin_txid`: 32 bytes in internal byte order.
impl WireField for Txid {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Txid::from_byte_array(r.read_array()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_byte_array());
        Ok(())
    }
}

/// `bitcoin_blkid`: 32 bytes in internal byte order.
impl WireField for BlockHash {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(BlockHash::from_byte_array(r.read_array()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_byte_array());
        Ok(())
    }
}

/// `chainparams`: the genesis block hash, 32 bytes in internal byte order.
///
/// hsmd's `fromwire_chainparams` does not refuse an unknown chain (it yields no chain
/// parameters); neither does this decoder. [`bitcoin::Network::from_chain_hash`] tells which
/// Bitcoin network, if any, the hash names.
impl WireField for ChainHash {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(ChainHash::from(r.read_array::<32>()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(self.as_bytes());
        Ok(())
    }
}

/// `amount_sat`: a `u64` count of satoshis.
impl WireField for Amount {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Amount::from_sat(r.read_u64()?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_u64(self.to_sat());
        Ok(())
    }
}

/// `ext_key`: the 78-byte BIP-0032 serialization of an extended public key.
///
/// hsmd only ever sends public keys (`towire_ext_key` serializes the public half); an extended
/// private key here is refused.
impl WireField for Xpub {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offset = r.offset();
        let bytes = r.read_bytes(78)?;
        Xpub::decode(bytes).map_err(|_| DecodeError::InvalidExtKey { offset })
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.encode());
        Ok(())
    }
}
