//! The BOLT-08 transport after the handshake: framing, nonces and key rotation.
//!
//! A frame is `encrypt(len as u16 BE) ‖ encrypt(message)`, 18 + len + 16 bytes; both parts use
//! an empty AD and consume one nonce each. After 1000 nonces of a key (500 messages) that key
//! is rotated with `ck', k' = HKDF(ck, k)` and its nonce reset, per direction, each direction
//! with its own copy of the handshake's final `ck`.
//!
//! Receiving is split in two steps so that a reader knows how many bytes to read next:
//! [`Decryptor::decrypt_length`] returns the size of the body, [`Decryptor::decrypt_body`]
//! returns the message. Any authentication failure poisons the receiving direction: a
//! modified, replayed, reordered or foreign frame ends the session.

use alloc::vec::Vec;
use core::fmt;

use secp256k1::PublicKey;

use crate::crypto::{decrypt_with_ad, encrypt_with_ad, hkdf, Key32, MAC_LEN};
use crate::error::{FramePart, TransportError};

/// The largest message BOLT-08 allows.
pub const MAX_MESSAGE_LEN: usize = 65535;
/// Size of the encrypted length prefix: 2 bytes and a 16-byte tag.
pub const LENGTH_PREFIX_LEN: usize = 2 + MAC_LEN;
/// Size of the tag that follows each encrypted message body.
pub const TAG_LEN: usize = MAC_LEN;
/// Number of nonces after which a key is rotated.
const ROTATE_AFTER: u64 = 1000;

/// One direction's key, chaining key and nonce.
struct CipherState {
    ck: Key32,
    k: Key32,
    n: u64,
}

impl CipherState {
    fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        let out = encrypt_with_ad(&self.k, self.n, &[], plaintext);
        self.advance();
        out
    }

    fn decrypt(&mut self, input: &[u8]) -> Option<zeroize::Zeroizing<Vec<u8>>> {
        let out = decrypt_with_ad(&self.k, self.n, &[], input).ok()?;
        self.advance();
        Some(out)
    }

    /// Counts one nonce; at 1000, `ck, k = HKDF(ck, k)` and the nonce restarts at 0.
    fn advance(&mut self) {
        self.n += 1;
        if self.n == ROTATE_AFTER {
            let (ck, k) = hkdf(&self.ck, &*self.k);
            self.ck = ck;
            self.k = k;
            self.n = 0;
        }
    }
}

/// The sending direction of a session.
pub struct Encryptor {
    cs: CipherState,
}

impl Encryptor {
    /// Encrypts one message into a whole frame (`18 + msg.len() + 16` bytes). A message over
    /// 65535 bytes is refused without consuming a nonce.
    pub fn encrypt(&mut self, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        let len = u16::try_from(msg.len())
            .map_err(|_| TransportError::MessageTooLong { len: msg.len() })?;
        let mut frame = self.cs.encrypt(&len.to_be_bytes());
        frame.reserve(msg.len() + TAG_LEN);
        frame.extend_from_slice(&self.cs.encrypt(msg));
        Ok(frame)
    }
}

/// Where the receiving direction is in the stream of frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecvState {
    AwaitingLength,
    AwaitingBody(u16),
    Poisoned,
}

/// The receiving direction of a session.
pub struct Decryptor {
    cs: CipherState,
    state: RecvState,
}

impl Decryptor {
    /// Decrypts an 18-byte length prefix; returns the number of bytes to read next (the
    /// message length plus its 16-byte tag), to be passed to [`Decryptor::decrypt_body`].
    pub fn decrypt_length(&mut self, prefix: &[u8]) -> Result<usize, TransportError> {
        let part = FramePart::Length;
        match self.state {
            RecvState::AwaitingLength => {}
            RecvState::AwaitingBody(_) => return Err(TransportError::OutOfOrder { part }),
            RecvState::Poisoned => return Err(TransportError::Poisoned),
        }
        if prefix.len() != LENGTH_PREFIX_LEN {
            return Err(TransportError::WrongLength {
                part,
                expected: LENGTH_PREFIX_LEN,
                actual: prefix.len(),
            });
        }
        let Some(plain) = self.cs.decrypt(prefix) else {
            self.state = RecvState::Poisoned;
            return Err(TransportError::BadMac { part });
        };
        let len = match plain.as_slice() {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            _ => {
                // Unreachable: an 18-byte input decrypts to 2 bytes.
                self.state = RecvState::Poisoned;
                return Err(TransportError::BadMac { part });
            }
        };
        self.state = RecvState::AwaitingBody(len);
        Ok(usize::from(len) + TAG_LEN)
    }

    /// Decrypts the body announced by the last length prefix (exactly the size that
    /// [`Decryptor::decrypt_length`] returned) and returns the message.
    pub fn decrypt_body(&mut self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        let part = FramePart::Body;
        let len = match self.state {
            RecvState::AwaitingBody(len) => usize::from(len),
            RecvState::AwaitingLength => return Err(TransportError::OutOfOrder { part }),
            RecvState::Poisoned => return Err(TransportError::Poisoned),
        };
        if body.len() != len + TAG_LEN {
            return Err(TransportError::WrongLength {
                part,
                expected: len + TAG_LEN,
                actual: body.len(),
            });
        }
        let Some(plain) = self.cs.decrypt(body) else {
            self.state = RecvState::Poisoned;
            return Err(TransportError::BadMac { part });
        };
        self.state = RecvState::AwaitingLength;
        Ok(plain.to_vec())
    }

    /// Decrypts one whole frame (length prefix and body, nothing more).
    pub fn decrypt_frame(&mut self, frame: &[u8]) -> Result<Vec<u8>, TransportError> {
        if frame.len() < LENGTH_PREFIX_LEN {
            return Err(TransportError::WrongLength {
                part: FramePart::Length,
                expected: LENGTH_PREFIX_LEN,
                actual: frame.len(),
            });
        }
        let (prefix, body) = frame.split_at(LENGTH_PREFIX_LEN);
        self.decrypt_length(prefix)?;
        self.decrypt_body(body)
    }

    /// Whether an authentication failure has made this direction unusable.
    pub fn is_poisoned(&self) -> bool {
        self.state == RecvState::Poisoned
    }
}

/// An established session: both directions and the authenticated static key of the peer.
pub struct Transport {
    encryptor: Encryptor,
    decryptor: Decryptor,
    remote_static: PublicKey,
}

impl Transport {
    pub(crate) fn new(ck: Key32, sk: Key32, rk: Key32, remote_static: PublicKey) -> Self {
        let ck2 = zeroize::Zeroizing::new(*ck);
        Transport {
            encryptor: Encryptor { cs: CipherState { ck, k: sk, n: 0 } },
            decryptor: Decryptor {
                cs: CipherState { ck: ck2, k: rk, n: 0 },
                state: RecvState::AwaitingLength,
            },
            remote_static,
        }
    }

    /// A session from raw keys, as BOLT-08's message encryption test gives them (`ck`, `sk`,
    /// `rk`). Such a session authenticated nobody: `remote_static` is taken on trust. It exists
    /// for spec vectors and tests; real links come from the handshake.
    pub fn from_raw_keys(
        ck: [u8; 32],
        sk: [u8; 32],
        rk: [u8; 32],
        remote_static: PublicKey,
    ) -> Self {
        Transport::new(
            zeroize::Zeroizing::new(ck),
            zeroize::Zeroizing::new(sk),
            zeroize::Zeroizing::new(rk),
            remote_static,
        )
    }

    /// The peer's static key, authenticated by the handshake.
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }

    /// See [`Encryptor::encrypt`].
    pub fn encrypt(&mut self, msg: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.encryptor.encrypt(msg)
    }

    /// See [`Decryptor::decrypt_length`].
    pub fn decrypt_length(&mut self, prefix: &[u8]) -> Result<usize, TransportError> {
        self.decryptor.decrypt_length(prefix)
    }

    /// See [`Decryptor::decrypt_body`].
    pub fn decrypt_body(&mut self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.decryptor.decrypt_body(body)
    }

    /// See [`Decryptor::decrypt_frame`].
    pub fn decrypt_frame(&mut self, frame: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.decryptor.decrypt_frame(frame)
    }

    /// Whether an authentication failure has made the receiving direction unusable.
    pub fn is_poisoned(&self) -> bool {
        self.decryptor.is_poisoned()
    }

    /// Splits the session into its two directions, e.g. for a reader and a writer thread.
    pub fn split(self) -> (Encryptor, Decryptor) {
        (self.encryptor, self.decryptor)
    }
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor").field("nonce", &self.cs.n).finish_non_exhaustive()
    }
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("nonce", &self.cs.n)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("remote_static", &self.remote_static)
            .field("encryptor", &self.encryptor)
            .field("decryptor", &self.decryptor)
            .finish()
    }
}
