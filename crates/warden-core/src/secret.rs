//! Secret types: the seed, private keys and 32-byte secrets.
//!
//! Every type here keeps the same promises (DESIGN.md §3, invariant 6):
//! - it is not `Copy` (a copy is made only by an explicit `clone`);
//! - `Debug` prints a short fingerprint (a hash prefix), never the bytes, and there is no
//!   `Display`;
//! - equality is constant-time, and there is no `Ord` or `Hash`;
//! - the bytes are zeroized on drop;
//! - the raw bytes are reached only through a method named `expose_secret`.

use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use secp256k1::{PublicKey, Secp256k1, SecretKey, Signing};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Writes `Name(fp:xxxxxxxx)` where the fingerprint is a hash prefix of the secret.
fn write_fingerprint(f: &mut fmt::Formatter<'_>, name: &str, bytes: &[u8]) -> fmt::Result {
    let mut engine = sha256::Hash::engine();
    engine.input(b"warden/fingerprint");
    engine.input(bytes);
    let h = sha256::Hash::from_engine(engine).to_byte_array();
    write!(f, "{name}(fp:{:02x}{:02x}{:02x}{:02x})", h[0], h[1], h[2], h[3])
}

/// Which kind of secret a [`Seed`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedKind {
    /// The 32-byte legacy Core Lightning `hsm_secret` (random bytes).
    Legacy32,
    /// The 64-byte BIP-39 seed of a mnemonic and passphrase.
    Bip39,
}

/// The node's root secret: every key Warden uses is derived from it.
///
/// Core Lightning's `hsm_secret` is either 32 random bytes (legacy) or, since v25, a BIP-39
/// mnemonic whose 64-byte seed is used. Derivations that Core Lightning performs over "the
/// secret" use all 32 or 64 bytes; those it performs over the first 32 bytes use
/// [`Seed::first_32`].
pub struct Seed {
    kind: SeedKind,
    bytes: [u8; 64],
}

impl Seed {
    /// A seed from a 32-byte legacy `hsm_secret`.
    pub fn from_legacy(bytes: [u8; 32]) -> Seed {
        let mut buf = [0u8; 64];
        buf[..32].copy_from_slice(&bytes);
        let mut bytes = bytes;
        bytes.zeroize();
        Seed { kind: SeedKind::Legacy32, bytes: buf }
    }

    /// A seed from a 64-byte BIP-39 seed.
    pub fn from_bip39_seed(bytes: [u8; 64]) -> Seed {
        let seed = Seed { kind: SeedKind::Bip39, bytes };
        let mut bytes = bytes;
        bytes.zeroize();
        seed
    }

    /// The BIP-39 seed of a mnemonic (English word list) and passphrase.
    pub fn from_mnemonic(words: &str, passphrase: &str) -> Result<Seed, MnemonicError> {
        let mnemonic = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, words)
            .map_err(|_| MnemonicError)?;
        Ok(Seed::from_bip39_seed(mnemonic.to_seed_normalized(passphrase)))
    }

    /// Which kind of secret this seed came from.
    pub fn kind(&self) -> SeedKind {
        self.kind
    }

    /// The whole secret: 32 bytes for a legacy secret, 64 for a BIP-39 seed.
    pub fn expose_secret(&self) -> &[u8] {
        match self.kind {
            SeedKind::Legacy32 => &self.bytes[..32],
            SeedKind::Bip39 => &self.bytes[..],
        }
    }

    /// The first 32 bytes of the secret, which Core Lightning uses for the node key and the
    /// channel seeds.
    pub fn first_32(&self) -> &[u8; 32] {
        self.bytes.first_chunk::<32>().expect("64 bytes hold a 32-byte prefix")
    }
}

impl Clone for Seed {
    fn clone(&self) -> Seed {
        Seed { kind: self.kind, bytes: self.bytes }
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fingerprint(f, "Seed", self.expose_secret())
    }
}

impl PartialEq for Seed {
    fn eq(&self, other: &Seed) -> bool {
        self.kind == other.kind && bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl Eq for Seed {}

/// A mnemonic that is not a valid BIP-39 English mnemonic (the words are not repeated here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MnemonicError;

impl fmt::Display for MnemonicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a valid BIP-39 English mnemonic (word list or checksum)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MnemonicError {}

/// A secp256k1 private key.
pub struct PrivateKey(SecretKey);

impl PrivateKey {
    /// Wraps a secp256k1 secret key.
    pub fn new(key: SecretKey) -> PrivateKey {
        PrivateKey(key)
    }

    /// A private key from 32 bytes, or `None` if they are zero or not below the curve order.
    pub fn from_slice(bytes: &[u8]) -> Option<PrivateKey> {
        SecretKey::from_slice(bytes).ok().map(PrivateKey)
    }

    /// The secp256k1 key, for signing.
    pub fn expose_secret(&self) -> &SecretKey {
        &self.0
    }

    /// The key's public key.
    pub fn public_key<C: Signing>(&self, secp: &Secp256k1<C>) -> PublicKey {
        PublicKey::from_secret_key(secp, &self.0)
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> PrivateKey {
        PrivateKey(self.0)
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        self.0.non_secure_erase();
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fingerprint(f, "PrivateKey", &self.0.secret_bytes())
    }
}

impl PartialEq for PrivateKey {
    fn eq(&self, other: &PrivateKey) -> bool {
        bool::from(self.0.secret_bytes().ct_eq(&other.0.secret_bytes()))
    }
}

impl Eq for PrivateKey {}

/// Defines a 32-byte secret newtype with the promises of this module.
macro_rules! secret_32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 secret bytes.
            pub fn new(bytes: [u8; 32]) -> $name {
                $name(bytes)
            }

            /// The raw bytes.
            pub fn expose_secret(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl Clone for $name {
            fn clone(&self) -> $name {
                $name(self.0)
            }
        }

        impl Drop for $name {
            fn drop(&mut self) {
                self.0.zeroize();
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_fingerprint(f, stringify!($name), &self.0)
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &$name) -> bool {
                bool::from(self.0.ct_eq(&other.0))
            }
        }

        impl Eq for $name {}
    };
}

secret_32!(
    /// The seed of a channel's shachain, from which every per-commitment secret is derived.
    ShachainSeed
);
secret_32!(
    /// A BOLT-03 per-commitment secret (ours before we revoke, or one the peer revealed).
    PerCommitmentSecret
);
secret_32!(
    /// A 32-byte secret derived from the seed (channel seeds, `derive_secret`, HKDF outputs).
    Secret32
);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    #[test]
    fn debug_never_prints_the_bytes() {
        let bytes = [0xabu8; 32];
        let printed = [
            format!("{:?}", Seed::from_legacy(bytes)),
            format!("{:?}", Seed::from_bip39_seed([0xab; 64])),
            format!("{:?}", PrivateKey::from_slice(&bytes).unwrap()),
            format!("{:?}", ShachainSeed::new(bytes)),
            format!("{:?}", PerCommitmentSecret::new(bytes)),
            format!("{:?}", Secret32::new(bytes)),
            format!("{:#?}", Secret32::new(bytes)),
        ];
        for p in &printed {
            assert!(!p.contains("abab"), "{p} leaks the secret");
            assert!(!p.contains("171"), "{p} leaks the secret in decimal");
            assert!(p.contains("(fp:"), "{p} has no fingerprint");
        }
        assert!(printed[0].starts_with("Seed(fp:"));
    }

    #[test]
    fn fingerprints_differ_and_equality_holds() {
        let a = Secret32::new([1; 32]);
        let b = Secret32::new([2; 32]);
        assert_ne!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a, a.clone());
        assert_ne!(a, b);
        assert_ne!(Seed::from_legacy([1; 32]), Seed::from_bip39_seed([1; 64]));
    }

    #[test]
    fn legacy_seed_exposes_32_bytes() {
        let s = Seed::from_legacy([7; 32]);
        assert_eq!(s.expose_secret(), &[7u8; 32][..]);
        assert_eq!(s.first_32(), &[7u8; 32]);
        let s = Seed::from_bip39_seed([9; 64]);
        assert_eq!(s.expose_secret().len(), 64);
    }

    #[test]
    fn bad_mnemonic_is_refused() {
        assert_eq!(Seed::from_mnemonic("abandon abandon", "").unwrap_err(), MnemonicError);
    }
}
