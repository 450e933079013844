//! Warden's own keys, derived from the seed and never shared with Core Lightning (DESIGN.md §5).
//!
//! Each key is HKDF-SHA256 (RFC 5869) over the **whole** seed (32 bytes legacy, 64 bytes
//! BIP-39; [`Seed::expose_secret`]), with no salt and a distinct `warden/...` label as info,
//! 32 bytes out. Core Lightning's derivations use other inputs and labels (`nodeid` with a
//! counter salt over the first 32 bytes, `peer seed`, `bip32 seed` with a counter salt,
//! `derived secrets`), so no Warden key equals a Core Lightning key; `tests/seal.rs` checks it
//! for the node key, the channel-seed base, the BIP-32 master and the channel secrets.
//!
//! | label | type | use |
//! |---|---|---|
//! | `warden/record-encryption` | [`Secret32`] | XChaCha20-Poly1305 key of sealed records |
//! | `warden/record-signing` | [`PrivateKey`] | BIP-340 signatures of records and heads |
//! | `warden/key-obfuscation` | [`Secret32`] | HMAC-SHA256 key that hides record names |
//! | `warden/link` | [`PrivateKey`] | the signer's static key on warden-link |
//! | `warden/node-backup` | [`PrivateKey`] | ECIES recipient key of the node's backups |

use alloc::vec::Vec;
use core::fmt;

use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
use hkdf::Hkdf;
use secp256k1::{Keypair, PublicKey, Secp256k1, XOnlyPublicKey};
use sha2::Sha256;
use zeroize::Zeroize;

use super::record::ObfuscatedKey;
use super::StoreId;
use crate::secret::{PrivateKey, Secret32, Seed};

/// HKDF info of the record-encryption key.
pub const LABEL_RECORD_ENCRYPTION: &str = "warden/record-encryption";
/// HKDF info of the record-signing key.
pub const LABEL_RECORD_SIGNING: &str = "warden/record-signing";
/// HKDF info of the key-name obfuscation key.
pub const LABEL_KEY_OBFUSCATION: &str = "warden/key-obfuscation";
/// HKDF info of the link static key.
pub const LABEL_LINK: &str = "warden/link";
/// HKDF info of the node-backup key.
pub const LABEL_NODE_BACKUP: &str = "warden/node-backup";

/// HKDF-SHA256(no salt, ikm = the whole seed, info = `label`), 32 bytes.
fn derive_32(seed: &Seed, label: &str) -> [u8; 32] {
    let hk = Hkdf::<Sha256>::new(None, seed.expose_secret());
    let mut out = [0u8; 32];
    hk.expand(label.as_bytes(), &mut out).expect("32 bytes is below HKDF-SHA256's 8160");
    out
}

/// A private key from `label`; an output that is not a valid scalar (probability about
/// 2^-128) is refused rather than retried, so the derivation stays one HKDF call.
fn derive_key(seed: &Seed, label: &'static str) -> Result<PrivateKey, WardenKeyError> {
    let mut okm = derive_32(seed, label);
    let key = PrivateKey::from_slice(&okm);
    okm.zeroize();
    key.ok_or(WardenKeyError { label })
}

/// Warden's own keys (see the module table for their labels and uses).
pub struct WardenKeys {
    record_encryption: Secret32,
    record_signing: PrivateKey,
    key_obfuscation: Secret32,
    link: PrivateKey,
    node_backup: PrivateKey,
}

impl WardenKeys {
    /// Derives every Warden key from `seed`.
    pub fn derive(seed: &Seed) -> Result<WardenKeys, WardenKeyError> {
        Ok(WardenKeys {
            record_encryption: Secret32::new(derive_32(seed, LABEL_RECORD_ENCRYPTION)),
            record_signing: derive_key(seed, LABEL_RECORD_SIGNING)?,
            key_obfuscation: Secret32::new(derive_32(seed, LABEL_KEY_OBFUSCATION)),
            link: derive_key(seed, LABEL_LINK)?,
            node_backup: derive_key(seed, LABEL_NODE_BACKUP)?,
        })
    }

    /// The XChaCha20-Poly1305 key of sealed records.
    pub fn record_encryption_key(&self) -> &Secret32 {
        &self.record_encryption
    }

    /// The BIP-340 key that signs records and heads.
    pub fn record_signing_key(&self) -> &PrivateKey {
        &self.record_signing
    }

    /// The HMAC-SHA256 key that obfuscates record names.
    pub fn key_obfuscation_key(&self) -> &Secret32 {
        &self.key_obfuscation
    }

    /// The signer's static key on warden-link.
    pub fn link_key(&self) -> &PrivateKey {
        &self.link
    }

    /// The private key of node backups (ECIES recipient).
    pub fn node_backup_key(&self) -> &PrivateKey {
        &self.node_backup
    }

    /// The x-only public key that verifies records and heads.
    pub fn record_signing_pubkey(&self) -> XOnlyPublicKey {
        self.record_signing_keypair().x_only_public_key().0
    }

    /// The link static public key.
    pub fn link_pubkey(&self) -> PublicKey {
        self.link.public_key(&Secp256k1::signing_only())
    }

    /// The node-backup public key, to which the node encrypts its backups.
    pub fn node_backup_pubkey(&self) -> PublicKey {
        self.node_backup.public_key(&Secp256k1::signing_only())
    }

    /// The record-signing key pair (for BIP-340 signing).
    pub(crate) fn record_signing_keypair(&self) -> Keypair {
        Keypair::from_secret_key(&Secp256k1::signing_only(), self.record_signing.expose_secret())
    }

    /// The storage name of record `name` in `store_id`: HMAC-SHA256(key-obfuscation key,
    /// len(store id) ‖ store id ‖ name). The length byte keeps (store id, name) pairs
    /// unambiguous; the storage server learns neither the name nor which names repeat across
    /// stores.
    pub fn obfuscate_key(&self, store_id: &StoreId, name: &[u8]) -> ObfuscatedKey {
        let mut engine =
            hmac::HmacEngine::<sha256::Hash>::new(self.key_obfuscation.expose_secret());
        let mut prefix = Vec::with_capacity(1 + StoreId::MAX_LEN);
        store_id.write_prefixed(&mut prefix);
        engine.input(&prefix);
        engine.input(name);
        ObfuscatedKey(hmac::Hmac::<sha256::Hash>::from_engine(engine).to_byte_array())
    }
}

impl fmt::Debug for WardenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenKeys")
            .field("record_encryption", &self.record_encryption)
            .field("record_signing", &self.record_signing)
            .field("key_obfuscation", &self.key_obfuscation)
            .field("link", &self.link)
            .field("node_backup", &self.node_backup)
            .finish()
    }
}

/// An HKDF output that is not a valid secp256k1 private key (about 2^-128 per key).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WardenKeyError {
    /// The label of the key that failed.
    pub label: &'static str,
}

impl fmt::Display for WardenKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} derivation is not a valid private key", self.label)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WardenKeyError {}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    #[test]
    fn debug_is_redacted() {
        let keys = WardenKeys::derive(&Seed::from_legacy([0xab; 32])).unwrap();
        let printed = format!("{keys:?}");
        let enc = keys.record_encryption_key().expose_secret();
        let hex: String = enc.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!printed.contains(&hex[..8]), "{printed} leaks the encryption key");
        assert!(printed.contains("(fp:"), "{printed} has no fingerprints");
    }

    #[test]
    fn labels_give_distinct_keys() {
        let keys = WardenKeys::derive(&Seed::from_bip39_seed([3; 64])).unwrap();
        let all = [
            *keys.record_encryption_key().expose_secret(),
            keys.record_signing_key().expose_secret().secret_bytes(),
            *keys.key_obfuscation_key().expose_secret(),
            keys.link_key().expose_secret().secret_bytes(),
            keys.node_backup_key().expose_secret().secret_bytes(),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in all.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn obfuscation_separates_stores_and_names() {
        let keys = WardenKeys::derive(&Seed::from_legacy([1; 32])).unwrap();
        let a = StoreId::new(b"a").unwrap();
        let ab = StoreId::new(b"ab").unwrap();
        assert_ne!(keys.obfuscate_key(&a, b"bc"), keys.obfuscate_key(&ab, b"c"));
        assert_ne!(keys.obfuscate_key(&a, b"x"), keys.obfuscate_key(&a, b"y"));
        assert_eq!(keys.obfuscate_key(&a, b"x"), keys.obfuscate_key(&a, b"x"));
    }
}
