//! Secret key types of the link: the long-term static key and the per-session ephemeral key.
//!
//! Both are non-`Copy`, zeroized on drop, compared in constant time, and print only their
//! public key in `Debug` (never the secret); the bytes are reachable only through
//! `expose_secret()`. Neither is generated here: the caller injects them (the ephemeral key
//! from its own randomness source, fresh for every session as BOLT-08 requires).

use core::fmt;

use secp256k1::{PublicKey, Secp256k1, SecretKey};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The 32 bytes were not a valid secp256k1 secret key (zero, or not below the curve order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidSecretKeyError;

impl fmt::Display for InvalidSecretKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid secp256k1 secret key")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidSecretKeyError {}

/// A valid secp256k1 secret key held in zeroizing storage, with its public key.
pub(crate) struct SecretBytes {
    secret: Zeroizing<[u8; 32]>,
    public: PublicKey,
}

impl SecretBytes {
    fn new(bytes: [u8; 32]) -> Result<Self, InvalidSecretKeyError> {
        let secret = Zeroizing::new(bytes);
        let mut sk = SecretKey::from_slice(&*secret).map_err(|_| InvalidSecretKeyError)?;
        let public = PublicKey::from_secret_key(&Secp256k1::signing_only(), &sk);
        sk.non_secure_erase();
        Ok(SecretBytes { secret, public })
    }

    /// A transient `secp256k1` key; the caller erases it after use.
    pub(crate) fn to_secp(&self) -> SecretKey {
        SecretKey::from_slice(&*self.secret).expect("validated in SecretBytes::new")
    }
}

macro_rules! secret_key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name(pub(crate) SecretBytes);

        impl $name {
            /// Wraps 32 secret bytes, refusing zero and values not below the curve order.
            pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, InvalidSecretKeyError> {
                SecretBytes::new(bytes).map($name)
            }

            /// The public key of this secret.
            pub fn public_key(&self) -> PublicKey {
                self.0.public
            }

            /// The secret bytes. Callers must not log or persist them unencrypted.
            pub fn expose_secret(&self) -> &[u8; 32] {
                &self.0.secret
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("public_key", &self.0.public)
                    .field("secret", &"<redacted>")
                    .finish()
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.secret.ct_eq(&*other.0.secret).into()
            }
        }

        impl Eq for $name {}
    };
}

secret_key_type!(
    /// A party's long-term static key (`ls` in BOLT-08). For Warden it is derived from the seed
    /// (the `warden/link` label); its public key is what the other side pins.
    StaticSecretKey
);

secret_key_type!(
    /// A party's ephemeral key (`e` in BOLT-08): fresh from a strong randomness source for
    /// every session, consumed by the handshake.
    EphemeralSecretKey
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    extern crate std;
    use super::*;
    use std::format;

    #[test]
    fn debug_is_redacted() {
        let k = StaticSecretKey::from_bytes([0x11; 32]).unwrap();
        let e = EphemeralSecretKey::from_bytes([0x12; 32]).unwrap();
        for s in [format!("{k:?}"), format!("{e:?}")] {
            assert!(s.contains("<redacted>"), "{s}");
            assert!(!s.contains("1111"), "{s}");
            assert!(!s.contains("1212"), "{s}");
            assert!(!s.contains("17, 17"), "{s}");
            assert!(!s.contains("18, 18"), "{s}");
        }
    }

    #[test]
    fn invalid_keys_refused() {
        assert_eq!(StaticSecretKey::from_bytes([0; 32]).unwrap_err(), InvalidSecretKeyError);
        assert!(EphemeralSecretKey::from_bytes([0xff; 32]).is_err());
    }

    #[test]
    fn eq_compares_secret() {
        let a = StaticSecretKey::from_bytes([0x11; 32]).unwrap();
        let b = StaticSecretKey::from_bytes([0x11; 32]).unwrap();
        let c = StaticSecretKey::from_bytes([0x21; 32]).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
