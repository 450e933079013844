//! The errors of decoding and encoding hsmd wire messages.
//!
//! Every decoding failure names where it happened (`offset`, counted in bytes from the first byte
//! of the message body, that is the first byte of the 2-byte type) and the offending value when
//! that value is not secret. No variant ever carries the bytes of a secret field: a secret that
//! fails to decode is reported by its offset alone.

use core::fmt;

/// Why a frame or a message body could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// A field needs more bytes than remain in the message.
    Truncated {
        /// Where the field starts.
        offset: usize,
        /// How many bytes the field needs.
        needed: usize,
        /// How many bytes remain.
        remaining: usize,
    },
    /// A frame announces a body of 2^27 bytes or more (Core Lightning's `WIRE_LEN_LIMIT`).
    FrameTooLarge {
        /// The announced body length.
        len: u32,
    },
    /// The message type is not one this decoder knows.
    UnknownType {
        /// The type found.
        msg_type: u16,
    },
    /// The message type is not the one the caller asked to decode.
    UnexpectedType {
        /// The type the caller expected.
        expected: u16,
        /// The type found.
        found: u16,
    },
    /// Bytes remain after the last field of a message that has no TLV stream.
    TrailingBytes {
        /// Where the unread bytes start.
        offset: usize,
        /// How many bytes were left unread.
        count: usize,
    },
    /// A `bool` (or the presence byte of an optional field) is neither 0 nor 1.
    InvalidBool {
        /// Where the byte is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// An array's count, times the smallest encoding of one element, exceeds the bytes that
    /// remain: refused before anything is allocated.
    CountTooLarge {
        /// Where the array starts (after its count).
        offset: usize,
        /// The element count announced.
        count: u64,
        /// The smallest encoding of one element, in bytes.
        min_size: usize,
        /// The bytes that remain.
        remaining: usize,
    },
    /// 33 bytes that are not a compressed secp256k1 point, where hsmd checks the point.
    InvalidPublicKey {
        /// Where the key starts.
        offset: usize,
    },
    /// 64 bytes that are not a compact ECDSA signature (r or s not below the curve order).
    InvalidSignature {
        /// Where the signature starts.
        offset: usize,
    },
    /// The recovery id of a recoverable signature is not 0, 1, 2 or 3.
    InvalidRecoveryId {
        /// Where the recovery id is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A `bitcoin_signature`'s sighash byte is not one hsmd accepts (`SIGHASH_ALL` or
    /// `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`).
    InvalidSighashType {
        /// Where the sighash byte is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A `wirestring` has a control character (below 0x20) or no terminating NUL.
    InvalidWireString {
        /// Where the string starts.
        offset: usize,
    },
    /// An HTLC `side` is neither 0 (local) nor 1 (remote).
    InvalidSide {
        /// Where the byte is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A `status_log` level is beyond the last level Core Lightning defines.
    InvalidLogLevel {
        /// Where the byte is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// A `status_fail` reason is beyond the last reason Core Lightning defines.
    InvalidFailReason {
        /// Where the byte is.
        offset: usize,
        /// The byte found.
        value: u8,
    },
    /// 78 bytes that are not a BIP-0032 extended public key (unknown version or invalid point).
    InvalidExtKey {
        /// Where the key starts.
        offset: usize,
    },
    /// The bytes of a `bitcoin_tx` are not exactly one transaction of the announced length.
    InvalidTransaction {
        /// Where the transaction's length prefix starts.
        offset: usize,
        /// The announced length.
        len: u32,
    },
    /// A PSBT of length zero (hsmd's `fromwire_wally_psbt` gives no PSBT for it).
    EmptyPsbt {
        /// Where the PSBT's length prefix starts.
        offset: usize,
    },
    /// The bytes of a PSBT are not exactly one version-0 PSBT of the announced length.
    InvalidPsbt {
        /// Where the PSBT's length prefix starts.
        offset: usize,
        /// The announced length.
        len: u32,
    },
    /// A BigSize (TLV type or length) is not minimally encoded.
    NonMinimalBigSize {
        /// Where the BigSize starts.
        offset: usize,
    },
    /// TLV types are not strictly ascending.
    TlvOutOfOrder {
        /// Where the record starts.
        offset: usize,
        /// The type of the previous record.
        previous: u64,
        /// The type found.
        found: u64,
    },
    /// The same TLV type appears twice.
    TlvDuplicate {
        /// Where the second record starts.
        offset: usize,
        /// The repeated type.
        tlv_type: u64,
    },
    /// A TLV type this decoder does not know is even, so it may not be ignored (BOLT-01).
    TlvUnknownEven {
        /// Where the record starts.
        offset: usize,
        /// The type found.
        tlv_type: u64,
    },
    /// A TLV record's length exceeds the bytes that remain.
    TlvLengthTooLarge {
        /// Where the record starts.
        offset: usize,
        /// The record's type.
        tlv_type: u64,
        /// The announced length.
        length: u64,
        /// The bytes that remain after the length.
        remaining: usize,
    },
    /// A known TLV record's value is longer than its known encoding.
    TlvValueTooLong {
        /// Where the unread value bytes start.
        offset: usize,
        /// The record's type.
        tlv_type: u64,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::Truncated { offset, needed, remaining } => {
                write!(f, "truncated at offset {offset}: {needed} bytes needed, {remaining} remain")
            }
            DecodeError::FrameTooLarge { len } => {
                write!(f, "frame length {len} is not below the limit of 2^27 bytes")
            }
            DecodeError::UnknownType { msg_type } => write!(f, "unknown message type {msg_type}"),
            DecodeError::UnexpectedType { expected, found } => {
                write!(f, "message type {found} where type {expected} was expected")
            }
            DecodeError::TrailingBytes { offset, count } => {
                write!(f, "{count} trailing bytes at offset {offset}")
            }
            DecodeError::InvalidBool { offset, value } => {
                write!(f, "bool at offset {offset} is {value}, not 0 or 1")
            }
            DecodeError::CountTooLarge { offset, count, min_size, remaining } => write!(
                f,
                "array at offset {offset} announces {count} elements of at least {min_size} \
                 bytes, but only {remaining} bytes remain"
            ),
            DecodeError::InvalidPublicKey { offset } => {
                write!(f, "invalid secp256k1 public key at offset {offset}")
            }
            DecodeError::InvalidSignature { offset } => {
                write!(f, "invalid compact ecdsa signature at offset {offset}")
            }
            DecodeError::InvalidRecoveryId { offset, value } => {
                write!(f, "recovery id {value} at offset {offset} is not 0 to 3")
            }
            DecodeError::InvalidSighashType { offset, value } => write!(
                f,
                "sighash type {value:#04x} at offset {offset} is not sighash_all or \
                 sighash_single|anyonecanpay"
            ),
            DecodeError::InvalidWireString { offset } => {
                write!(f, "string at offset {offset} has a control character or no terminating nul")
            }
            DecodeError::InvalidSide { offset, value } => {
                write!(f, "htlc side {value} at offset {offset} is not 0 or 1")
            }
            DecodeError::InvalidLogLevel { offset, value } => {
                write!(f, "log level {value} at offset {offset} is unknown")
            }
            DecodeError::InvalidFailReason { offset, value } => {
                write!(f, "failure reason {value} at offset {offset} is unknown")
            }
            DecodeError::InvalidExtKey { offset } => {
                write!(f, "invalid bip32 extended public key at offset {offset}")
            }
            DecodeError::InvalidTransaction { offset, len } => {
                write!(f, "transaction of {len} bytes at offset {offset} does not parse")
            }
            DecodeError::EmptyPsbt { offset } => write!(f, "empty psbt at offset {offset}"),
            DecodeError::InvalidPsbt { offset, len } => {
                write!(f, "psbt of {len} bytes at offset {offset} does not parse")
            }
            DecodeError::NonMinimalBigSize { offset } => {
                write!(f, "bigsize at offset {offset} is not minimally encoded")
            }
            DecodeError::TlvOutOfOrder { offset, previous, found } => write!(
                f,
                "tlv type {found} at offset {offset} follows type {previous}: types must ascend"
            ),
            DecodeError::TlvDuplicate { offset, tlv_type } => {
                write!(f, "tlv type {tlv_type} repeated at offset {offset}")
            }
            DecodeError::TlvUnknownEven { offset, tlv_type } => {
                write!(f, "unknown even tlv type {tlv_type} at offset {offset}")
            }
            DecodeError::TlvLengthTooLarge { offset, tlv_type, length, remaining } => write!(
                f,
                "tlv type {tlv_type} at offset {offset} announces {length} bytes, \
                 {remaining} remain"
            ),
            DecodeError::TlvValueTooLong { offset, tlv_type } => {
                write!(f, "tlv type {tlv_type} has unread value bytes at offset {offset}")
            }
        }
    }
}

impl core::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EncodeError {
    /// An array or byte string is longer than its count field can say.
    TooLong {
        /// The message field, when known.
        field: &'static str,
        /// The length of the value.
        len: usize,
        /// The largest length the count field can say.
        max: usize,
    },
    /// The body is too large for a frame (2^27 bytes or more).
    FrameTooLarge {
        /// The body length.
        len: usize,
    },
    /// An unknown TLV record has an even type, a type the message already defines, or repeats a
    /// type.
    InvalidTlv {
        /// The offending type.
        tlv_type: u64,
    },
}

impl EncodeError {
    /// Names the message field the error happened in (when no field was named yet).
    pub fn in_field(self, name: &'static str) -> EncodeError {
        match self {
            EncodeError::TooLong { field: "", len, max } => {
                EncodeError::TooLong { field: name, len, max }
            }
            other => other,
        }
    }
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::TooLong { field, len, max } => {
                write!(f, "field `{field}` has length {len}, more than its maximum {max}")
            }
            EncodeError::FrameTooLarge { len } => {
                write!(f, "body of {len} bytes is not below the frame limit of 2^27 bytes")
            }
            EncodeError::InvalidTlv { tlv_type } => {
                write!(f, "tlv type {tlv_type} is even, defined by the message, or repeated")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// A `wirestring` (or passphrase) built from bytes that hsmd would refuse: a byte below 0x20.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidWireStringError {
    /// The index of the first byte below 0x20.
    pub index: usize,
}

impl fmt::Display for InvalidWireStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "control character at index {} of a wire string", self.index)
    }
}

impl core::error::Error for InvalidWireStringError {}
