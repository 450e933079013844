//! The secret fields of hsmd messages: 32-byte secrets and the `hsm_secret` passphrase.
//!
//! These keep the promises of `warden-core`'s secret types (DESIGN.md invariant 6): not `Copy`,
//! `Debug` prints a fingerprint (a tagged hash prefix, the same tag `warden-core` uses, so the
//! fingerprints of the same bytes agree), no `Display`, constant-time equality, no `Ord` or
//! `Hash`, zeroized on drop, raw bytes only through `expose_secret`.
//!
//! Which wire fields are secret: the `hsm_encryption_key`, the `dev_force_*` keys and seeds and
//! the passphrase of `init`; the ECDH shared secret; the output of `derive_secret`; and every
//! per-commitment or revocation secret (ours before release, or the peer's once revealed).

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

use crate::codec::{Reader, WireElement, WireField, Writer};
use crate::error::{DecodeError, EncodeError, InvalidWireStringError};
use crate::types::{read_wirestring, write_wirestring};

/// Writes `Name(fp:xxxxxxxx)`, the fingerprint being a tagged hash prefix of the secret.
fn write_fingerprint(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    let mut engine = sha256::Hash::engine();
    engine.input(b"warden/fingerprint");
    engine.input(bytes);
    let h = sha256::Hash::from_engine(engine).to_byte_array();
    let [a, b, c, d, ..] = h;
    write!(f, "{name}(fp:{a:02x}{b:02x}{c:02x}{d:02x})")
}

/// A 32-byte secret carried by a message (`secret`, `privkey`, or a `sha256` that is a seed).
pub struct Secret([u8; 32]);

impl Secret {
    /// Wraps 32 secret bytes.
    pub fn new(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// The raw bytes.
    pub fn expose_secret(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Clone for Secret {
    fn clone(&self) -> Secret {
        Secret(self.0)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fingerprint(f, "Secret", &self.0)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for Secret {}

impl WireField for Secret {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let mut bytes = r.read_array::<32>()?;
        let secret = Secret::new(bytes);
        bytes.zeroize();
        Ok(secret)
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        w.write_bytes(&self.0);
        Ok(())
    }
}

impl WireElement for Secret {
    const MIN_WIRE_SIZE: usize = 32;
}

/// The passphrase of an encrypted or passphrase-protected `hsm_secret` (`hsm_passphrase`, a
/// `wirestring`: no byte below 0x20, NUL-terminated on the wire).
pub struct Passphrase(Vec<u8>);

impl Passphrase {
    /// Wraps passphrase bytes, refusing a control character (hsmd's `wirestring` rule).
    pub fn new(bytes: Vec<u8>) -> Result<Passphrase, InvalidWireStringError> {
        if let Some(index) = bytes.iter().position(|&b| b < 0x20) {
            let mut bytes = bytes;
            bytes.zeroize();
            return Err(InvalidWireStringError { index });
        }
        Ok(Passphrase(bytes))
    }

    /// The raw bytes (without the terminating NUL).
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl Clone for Passphrase {
    fn clone(&self) -> Passphrase {
        Passphrase(self.0.clone())
    }
}

impl Drop for Passphrase {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fingerprint(f, "Passphrase", &self.0)
    }
}

impl PartialEq for Passphrase {
    fn eq(&self, other: &Passphrase) -> bool {
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for Passphrase {}

impl WireField for Passphrase {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Passphrase(read_wirestring(r)?))
    }
    fn write(&self, w: &mut Writer) -> Result<(), EncodeError> {
        write_wirestring(w, &self.0);
        Ok(())
    }
}
