//! ECIES to the node-backup key: how the node encrypts its own database backups so that only
//! the seed can restore them (DESIGN.md §4, `warden seal` / `warden unseal`).
//!
//! The node seals to the signer's node-backup public key `P` with a fresh ephemeral key `r`
//! (`R = r·G`). To unseal it sends `R` to the signer over the authenticated link, and the
//! signer returns the blob's key ([`ecies_derive_key`]), never the node-backup secret.
//!
//! ## Format `0x01`
//!
//! | offset | length | field |
//! |---|---|---|
//! | 0 | 1 | format byte `0x01` |
//! | 1 | 33 | ephemeral public key R, compressed |
//! | 34 | 24 | nonce (random) |
//! | 58 | n | XChaCha20-Poly1305 ciphertext of the n-byte plaintext |
//! | 58 + n | 16 | Poly1305 tag |
//!
//! - Shared point S = r·P = p·R; k = HKDF-SHA256(no salt, ikm = x(S) ‖ R ‖ P, info =
//!   `context`), 32 bytes (`R` and `P` compressed, 33 bytes each). `context` names the use
//!   (for example `warden/node-backup/v1`), so a key handed out for one use opens nothing of
//!   another.
//! - AEAD associated data: bytes 0 .. 58 (format byte, R, nonce).

use alloc::vec::Vec;
use core::fmt;

use hkdf::Hkdf;
use secp256k1::{ecdh, PublicKey, Secp256k1, SecretKey};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use super::{aead_open, aead_seal, read_array, NONCE_LEN, TAG_LEN};
use crate::rng::EntropySource;
use crate::secret::{PrivateKey, Secret32};

/// The format byte of the current ECIES layout.
pub const ECIES_FORMAT_V1: u8 = 0x01;
/// Length of the header (format byte, R, nonce), which is also the associated data.
pub const ECIES_HEADER_LEN: usize = 1 + 33 + NONCE_LEN;
/// Length of a blob with an empty plaintext.
pub const ECIES_MIN_LEN: usize = ECIES_HEADER_LEN + TAG_LEN;

/// How many 32-byte draws [`ecies_seal`] makes for a valid ephemeral key before it concludes
/// that the entropy source is broken (one invalid draw has probability about 2^-128).
const EPHEMERAL_DRAWS: usize = 8;

/// k = HKDF-SHA256(no salt, x(S) ‖ R ‖ P, info = context).
fn blob_key(
    shared: &PublicKey,
    ephemeral: &PublicKey,
    recipient: &PublicKey,
    context: &[u8],
) -> Secret32 {
    let mut ikm = [0u8; 32 + 33 + 33];
    let (x, rest) = ikm.split_at_mut(32);
    let (r, p) = rest.split_at_mut(33);
    x.copy_from_slice(&shared.x_only_public_key().0.serialize());
    r.copy_from_slice(&ephemeral.serialize());
    p.copy_from_slice(&recipient.serialize());
    let hk = Hkdf::<Sha256>::new(None, &ikm);
    ikm.zeroize();
    let mut k = [0u8; 32];
    hk.expand(context, &mut k).expect("32 bytes is below HKDF-SHA256's 8160");
    Secret32::new(k)
}

/// S = scalar · point, or `None` for the point at infinity (impossible for a valid scalar and
/// point of this prime-order group, but not assumed).
fn shared_point(point: &PublicKey, scalar: &SecretKey) -> Option<PublicKey> {
    let mut xy = ecdh::shared_secret_point(point, scalar);
    let mut uncompressed = [0u8; 65];
    uncompressed[0] = 0x04;
    if let Some(dst) = uncompressed.get_mut(1..) {
        dst.copy_from_slice(&xy);
    }
    xy.zeroize();
    let shared = PublicKey::from_slice(&uncompressed).ok();
    uncompressed.zeroize();
    shared
}

/// Encrypts `plaintext` to `recipient` (the node-backup public key) for `context`.
///
/// Draws the ephemeral key (32 bytes, redrawn if invalid) and then the 24-byte nonce from
/// `entropy`.
pub fn ecies_seal(
    recipient: &PublicKey,
    plaintext: &[u8],
    context: &[u8],
    entropy: &mut dyn EntropySource,
) -> Result<Vec<u8>, EciesError> {
    let ephemeral_secret = (0..EPHEMERAL_DRAWS)
        .find_map(|_| {
            let mut bytes = entropy.random_32();
            let key = PrivateKey::from_slice(&bytes);
            bytes.zeroize();
            key
        })
        .ok_or(EciesError::EntropyFailure)?;
    let ephemeral = ephemeral_secret.public_key(&Secp256k1::signing_only());
    let shared =
        shared_point(recipient, ephemeral_secret.expose_secret()).ok_or(EciesError::BadPoint)?;
    let key = blob_key(&shared, &ephemeral, recipient, context);
    let mut nonce = [0u8; NONCE_LEN];
    entropy.fill_bytes(&mut nonce);

    let mut blob = Vec::with_capacity(ECIES_MIN_LEN + plaintext.len());
    blob.push(ECIES_FORMAT_V1);
    blob.extend_from_slice(&ephemeral.serialize());
    blob.extend_from_slice(&nonce);
    blob.extend_from_slice(plaintext);
    let (header, body) = blob.split_at_mut(ECIES_HEADER_LEN);
    let tag = aead_seal(key.expose_secret(), &nonce, header, body);
    blob.extend_from_slice(&tag);
    Ok(blob)
}

/// The ephemeral public key R of a blob (what the node sends to the signer to unseal).
pub fn ecies_ephemeral_point(blob: &[u8]) -> Result<PublicKey, EciesError> {
    let format = *blob.first().ok_or(EciesError::Truncated { len: 0 })?;
    if format != ECIES_FORMAT_V1 {
        return Err(EciesError::UnknownFormat { found: format });
    }
    if blob.len() < ECIES_MIN_LEN {
        return Err(EciesError::Truncated { len: blob.len() });
    }
    let r = read_array::<33>(blob, 1).ok_or(EciesError::Truncated { len: blob.len() })?;
    PublicKey::from_slice(&r).map_err(|_| EciesError::BadPoint)
}

/// The key of the blob whose ephemeral key is `ephemeral`, for `context`: what the signer
/// returns over the link for `warden unseal`.
pub fn ecies_derive_key(
    node_backup_secret: &PrivateKey,
    ephemeral: &PublicKey,
    context: &[u8],
) -> Result<Secret32, EciesError> {
    let recipient = node_backup_secret.public_key(&Secp256k1::signing_only());
    let shared =
        shared_point(ephemeral, node_backup_secret.expose_secret()).ok_or(EciesError::BadPoint)?;
    Ok(blob_key(&shared, ephemeral, &recipient, context))
}

/// Opens `blob` with its key (from [`ecies_derive_key`]); the plaintext is zeroized on drop.
pub fn ecies_open_with_derived_key(
    key: &Secret32,
    blob: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EciesError> {
    ecies_ephemeral_point(blob)?;
    let truncated = EciesError::Truncated { len: blob.len() };
    let nonce = read_array::<NONCE_LEN>(blob, 34).ok_or(truncated.clone())?;
    let tag_at = blob.len().checked_sub(TAG_LEN).ok_or(truncated.clone())?;
    let header = blob.get(..ECIES_HEADER_LEN).ok_or(truncated.clone())?;
    let ciphertext = blob.get(ECIES_HEADER_LEN..tag_at).ok_or(truncated.clone())?;
    let tag = read_array::<TAG_LEN>(blob, tag_at).ok_or(truncated)?;
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    aead_open(key.expose_secret(), &nonce, header, &mut plaintext, &tag)
        .map_err(|_| EciesError::DecryptionFailed)?;
    Ok(plaintext)
}

/// Opens `blob` with the node-backup secret itself (the signer-side or offline restore path).
pub fn ecies_open_with_key(
    node_backup_secret: &PrivateKey,
    blob: &[u8],
    context: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EciesError> {
    let ephemeral = ecies_ephemeral_point(blob)?;
    let key = ecies_derive_key(node_backup_secret, &ephemeral, context)?;
    ecies_open_with_derived_key(&key, blob)
}

/// Why an ECIES blob cannot be made or opened. No variant carries secret material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EciesError {
    /// The entropy source gave no valid ephemeral key in several draws (it is broken).
    EntropyFailure,
    /// Shorter than its layout requires.
    Truncated {
        /// The blob's length in bytes.
        len: usize,
    },
    /// A format byte this version of Warden does not read.
    UnknownFormat {
        /// The format byte found.
        found: u8,
    },
    /// The ephemeral key is not a valid curve point.
    BadPoint,
    /// The blob does not decrypt: wrong key or context, or it was altered.
    DecryptionFailed,
}

impl fmt::Display for EciesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EciesError::EntropyFailure => {
                f.write_str("the entropy source gave no valid ephemeral key")
            }
            EciesError::Truncated { len } => write!(f, "sealed blob truncated ({len} bytes)"),
            EciesError::UnknownFormat { found } => {
                write!(f, "unknown sealed-blob format {found:#04x}")
            }
            EciesError::BadPoint => f.write_str("sealed blob's ephemeral key is not a point"),
            EciesError::DecryptionFailed => f.write_str("sealed blob does not decrypt"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EciesError {}
