//! Errors of the handshake, the transport and the stream wrappers.

use alloc::boxed::Box;
use core::fmt;

use secp256k1::PublicKey;

/// One of the three handshake acts of BOLT-08.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `-> e, es`: initiator to responder, 50 bytes.
    One,
    /// `<- e, ee`: responder to initiator, 50 bytes.
    Two,
    /// `-> s, se`: initiator to responder, 66 bytes.
    Three,
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Act::One => "act one",
            Act::Two => "act two",
            Act::Three => "act three",
        })
    }
}

/// The handshake failed; the connection must be closed without sending anything more
/// (the handshake state has been consumed, so nothing more can be sent).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The act was not exactly its fixed size (BOLT-08 `ACTn_READ_FAILED`).
    WrongLength {
        /// The act that was read.
        act: Act,
        /// Its fixed size.
        expected: usize,
        /// The number of bytes that were given.
        actual: usize,
    },
    /// The leading version byte was not 0 (`ACTn_BAD_VERSION`).
    UnknownVersion {
        /// The act that was read.
        act: Act,
        /// The version byte received.
        version: u8,
    },
    /// The public key in the act (ephemeral in acts one and two, the decrypted static key in
    /// act three) is not a valid compressed secp256k1 point (`ACTn_BAD_PUBKEY`).
    InvalidPublicKey {
        /// The act that was read.
        act: Act,
    },
    /// The tag over the encrypted static key of act three did not verify
    /// (`ACT3_BAD_CIPHERTEXT`).
    StaticKeyMac,
    /// The act's final tag did not verify (`ACTn_BAD_TAG`): the peer does not hold the
    /// expected static key, or the act was altered in flight.
    BadMac {
        /// The act that was read.
        act: Act,
    },
    /// The initiator authenticated with a static key other than the pinned one.
    UnexpectedRemoteKey(Box<RemoteKeyMismatch>),
}

/// The pinned key and the one a peer authenticated with instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteKeyMismatch {
    /// The pinned key.
    pub expected: PublicKey,
    /// The key the initiator proved it holds.
    pub actual: PublicKey,
}

impl HandshakeError {
    /// The act at which the handshake failed.
    pub fn act(&self) -> Act {
        match self {
            HandshakeError::WrongLength { act, .. }
            | HandshakeError::UnknownVersion { act, .. }
            | HandshakeError::InvalidPublicKey { act }
            | HandshakeError::BadMac { act } => *act,
            HandshakeError::StaticKeyMac | HandshakeError::UnexpectedRemoteKey(_) => Act::Three,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::WrongLength { act, expected, actual } => {
                write!(f, "{act} must be {expected} bytes, got {actual}")
            }
            HandshakeError::UnknownVersion { act, version } => {
                write!(f, "{act} has unknown handshake version {version}")
            }
            HandshakeError::InvalidPublicKey { act } => {
                write!(f, "{act} has an invalid public key")
            }
            HandshakeError::StaticKeyMac => {
                f.write_str("act three: the encrypted static key failed authentication")
            }
            HandshakeError::BadMac { act } => write!(f, "{act} failed authentication"),
            HandshakeError::UnexpectedRemoteKey(m) => write!(
                f,
                "peer authenticated as {}, but only {} is pinned for this link",
                m.actual, m.expected
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for HandshakeError {}

/// Which part of a transport frame failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramePart {
    /// The 18-byte encrypted length prefix.
    Length,
    /// The encrypted message and its tag.
    Body,
}

impl fmt::Display for FramePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FramePart::Length => "length prefix",
            FramePart::Body => "message body",
        })
    }
}

/// Encrypting or decrypting a transport message failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// A message longer than 65535 bytes cannot be sent (nothing was consumed).
    MessageTooLong {
        /// The length of the refused message.
        len: usize,
    },
    /// A buffer of the wrong size was passed for a frame part.
    WrongLength {
        /// The part being read.
        part: FramePart,
        /// The size it must have.
        expected: usize,
        /// The size that was given.
        actual: usize,
    },
    /// A body was given while a length prefix was expected, or the reverse.
    OutOfOrder {
        /// The part that was given.
        part: FramePart,
    },
    /// Authentication failed: the frame was altered, replayed, reordered or not meant for
    /// this session. The receiving direction is now unusable.
    BadMac {
        /// The part whose tag did not verify.
        part: FramePart,
    },
    /// An earlier authentication failure made the receiving direction unusable.
    Poisoned,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::MessageTooLong { len } => {
                write!(f, "message of {len} bytes exceeds the 65535-byte maximum")
            }
            TransportError::WrongLength { part, expected, actual } => {
                write!(f, "{part} must be {expected} bytes, got {actual}")
            }
            TransportError::OutOfOrder { part } => write!(f, "{part} given out of order"),
            TransportError::BadMac { part } => write!(f, "{part} failed authentication"),
            TransportError::Poisoned => {
                f.write_str("link unusable after an earlier authentication failure")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TransportError {}
