//! The on-chain wallet keys: the BIP-32 tree `hsmd` derives from the secret, the bolt12 base
//! key, and the BIP-86 keys of BIP-39 secrets.
//!
//! Source: Core Lightning `hsmd/libhsmd.c`:
//! - `hsmd_init`: the BIP-32 master is `bip32_key_from_seed` (standard BIP-0032 master
//!   generation, HMAC-SHA512 keyed `"Bitcoin seed"`) over a **32-byte** HKDF-SHA256 output
//!   whose input is the **whole** secret (32 bytes legacy, 64 bytes BIP-39), info
//!   `"bip32 seed"`, salt a little-endian `u32` counter from 0; the first counter whose master
//!   is valid wins. This holds for BIP-39 secrets too: the HKDF step is not skipped.
//! - `hsmd_init`: the wallet base is `m/0/0` (two unhardened steps); the init reply's xpub is
//!   that key's public side, with the network's version bytes (mainnet `0488b21e`, every test
//!   network `043587cf`). The bolt12 base key is `m/9735'` from the same master; the init
//!   reply carries its 33-byte public key.
//! - `bitcoin_key`: wallet key `k` is `m/0/0/k`, `k` below 2^31 (`hsmd` fails otherwise).
//! - `derive_bip86_base_key` / `bip86_key`: only for 64-byte (BIP-39) secrets
//!   (`common/hsm_secret.c`, `use_bip86_derivation`: the secret is 64 bytes). The master is
//!   the standard BIP-0032 master of the 64-byte seed itself (no HKDF), the base is
//!   `m/86'/0'/0'` — coin type `0'` on every network — and key `i` is `m/86'/0'/0'/0/i`. The
//!   init reply's `bip86_base` TLV is the base's public side.
//! - `hsm_key_for_utxo`: a wallet UTXO (one without channel close info) is spent with the
//!   BIP-86 key for BIP-39 secrets and with `m/0/0/k` for legacy secrets; `check_pubkey`
//!   always checks `m/0/0/k`.

use core::fmt;

use bitcoin::bip32::{self, ChildNumber, Xpriv, Xpub};
use bitcoin::NetworkKind;
use secp256k1::{PublicKey, Secp256k1, Signing};
use zeroize::Zeroize;

use super::kdf;
use crate::secret::{PrivateKey, Seed, SeedKind};

/// An extended private key that is erased on drop and never printed.
struct SecretXpriv(Xpriv);

impl SecretXpriv {
    fn derive<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        path: &[ChildNumber],
    ) -> Result<SecretXpriv, bip32::Error> {
        self.0.derive_priv(secp, &path).map(SecretXpriv)
    }

    fn private_key(&self) -> PrivateKey {
        PrivateKey::new(self.0.private_key)
    }

    fn xpub<C: Signing>(&self, secp: &Secp256k1<C>) -> Xpub {
        Xpub::from_priv(secp, &self.0)
    }
}

impl Drop for SecretXpriv {
    fn drop(&mut self) {
        self.0.private_key.non_secure_erase();
        let chain_code: &mut [u8; 32] = self.0.chain_code.as_mut();
        chain_code.zeroize();
    }
}

impl fmt::Debug for SecretXpriv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Xpriv(depth {}, child {}, ..)", self.0.depth, self.0.child_number)
    }
}

/// A failure while deriving the wallet tree from the secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletDerivationError {
    /// No HKDF counter gave a valid BIP-32 master key.
    RootExhausted,
    /// The 64-byte BIP-39 seed is not a valid BIP-32 master (probability about 2^-128).
    Bip86Master(bip32::Error),
    /// A child derivation failed.
    Bip32(bip32::Error),
}

impl fmt::Display for WalletDerivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletDerivationError::RootExhausted => {
                f.write_str("no HKDF counter gave a valid BIP-32 master key")
            }
            WalletDerivationError::Bip86Master(_) => {
                f.write_str("the BIP-39 seed is not a valid BIP-32 master key")
            }
            WalletDerivationError::Bip32(_) => f.write_str("BIP-32 child derivation failed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WalletDerivationError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalletDerivationError::RootExhausted => None,
            WalletDerivationError::Bip86Master(e) | WalletDerivationError::Bip32(e) => Some(e),
        }
    }
}

/// A wallet key that cannot be derived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletKeyError {
    /// The index is 2^31 or above (a hardened index); `hsmd` refuses it.
    HardenedIndex(u32),
    /// BIP-86 keys exist only for 64-byte (BIP-39) secrets.
    NoBip86Keys,
    /// The child derivation failed.
    Bip32(bip32::Error),
}

impl fmt::Display for WalletKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalletKeyError::HardenedIndex(i) => write!(f, "wallet key index {i} is hardened"),
            WalletKeyError::NoBip86Keys => {
                f.write_str("a legacy 32-byte secret has no BIP-86 wallet keys")
            }
            WalletKeyError::Bip32(_) => f.write_str("BIP-32 child derivation failed"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WalletKeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WalletKeyError::Bip32(e) => Some(e),
            _ => None,
        }
    }
}

fn normal(index: u32) -> Result<ChildNumber, WalletKeyError> {
    ChildNumber::from_normal_idx(index).map_err(|_| WalletKeyError::HardenedIndex(index))
}

fn hardened(index: u32) -> ChildNumber {
    ChildNumber::Hardened { index }
}

/// The BIP-32 master key `hsmd` derives from the secret, and the HKDF counter that gave it.
fn bip32_master(
    seed: &Seed,
    network: NetworkKind,
) -> Result<(SecretXpriv, u32), WalletDerivationError> {
    kdf::first_valid_hkdf(seed.expose_secret(), b"bip32 seed", |_, okm| {
        Xpriv::new_master(network, okm).ok().map(SecretXpriv)
    })
    .ok_or(WalletDerivationError::RootExhausted)
}

/// The wallet keys: `m/0/0` of the HKDF-derived BIP-32 tree, the bolt12 base key `m/9735'`,
/// and for BIP-39 secrets the BIP-86 base `m/86'/0'/0'` of the seed's own BIP-32 tree.
pub struct WalletKeys {
    base: SecretXpriv,
    bolt12: PrivateKey,
    bip86_base: Option<SecretXpriv>,
}

impl WalletKeys {
    /// Derives the wallet keys from `seed`; `network` only sets the extended keys' version
    /// bytes.
    pub fn derive<C: Signing>(
        secp: &Secp256k1<C>,
        seed: &Seed,
        network: NetworkKind,
    ) -> Result<WalletKeys, WalletDerivationError> {
        let (master, _) = bip32_master(seed, network)?;
        let base = master
            .derive(secp, &[ChildNumber::Normal { index: 0 }, ChildNumber::Normal { index: 0 }])
            .map_err(WalletDerivationError::Bip32)?;
        let bolt12 = master
            .derive(secp, &[hardened(9735)])
            .map_err(WalletDerivationError::Bip32)?
            .private_key();
        let bip86_base = match seed.kind() {
            SeedKind::Legacy32 => None,
            SeedKind::Bip39 => {
                let master = Xpriv::new_master(network, seed.expose_secret())
                    .map(SecretXpriv)
                    .map_err(WalletDerivationError::Bip86Master)?;
                let path = [hardened(86), hardened(0), hardened(0)];
                Some(master.derive(secp, &path).map_err(WalletDerivationError::Bip32)?)
            }
        };
        Ok(WalletKeys { base, bolt12, bip86_base })
    }

    /// The extended public key of `m/0/0` (the init reply's `bip32` field).
    pub fn xpub<C: Signing>(&self, secp: &Secp256k1<C>) -> Xpub {
        self.base.xpub(secp)
    }

    /// The bolt12 base private key (`m/9735'`).
    pub fn bolt12_key(&self) -> &PrivateKey {
        &self.bolt12
    }

    /// The bolt12 base public key (the init reply's `bolt12` field).
    pub fn bolt12_pubkey<C: Signing>(&self, secp: &Secp256k1<C>) -> PublicKey {
        self.bolt12.public_key(secp)
    }

    /// The extended public key of the BIP-86 base `m/86'/0'/0'` (the init reply's
    /// `bip86_base` TLV), or `None` for a legacy secret.
    pub fn bip86_base_xpub<C: Signing>(&self, secp: &Secp256k1<C>) -> Option<Xpub> {
        self.bip86_base.as_ref().map(|b| b.xpub(secp))
    }

    /// Whether wallet UTXOs are spent with BIP-86 keys (BIP-39 secrets) or `m/0/0/k`.
    pub fn uses_bip86(&self) -> bool {
        self.bip86_base.is_some()
    }

    /// Wallet key `m/0/0/index` (`hsmd`'s `bitcoin_key`).
    pub fn bitcoin_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u32,
    ) -> Result<PrivateKey, WalletKeyError> {
        let child = self.base.derive(secp, &[normal(index)?]).map_err(WalletKeyError::Bip32)?;
        Ok(child.private_key())
    }

    /// BIP-86 key `m/86'/0'/0'/0/index` (`hsmd`'s `bip86_key`), for BIP-39 secrets only.
    pub fn bip86_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u32,
    ) -> Result<PrivateKey, WalletKeyError> {
        let base = self.bip86_base.as_ref().ok_or(WalletKeyError::NoBip86Keys)?;
        let path = [ChildNumber::Normal { index: 0 }, normal(index)?];
        let child = base.derive(secp, &path).map_err(WalletKeyError::Bip32)?;
        Ok(child.private_key())
    }

    /// The key that spends wallet UTXO `index` (`hsm_key_for_utxo` without close info): the
    /// BIP-86 key for BIP-39 secrets, `m/0/0/index` otherwise. BIP-137 message signing uses
    /// the same key.
    pub fn utxo_key<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u32,
    ) -> Result<PrivateKey, WalletKeyError> {
        if self.uses_bip86() {
            self.bip86_key(secp, index)
        } else {
            self.bitcoin_key(secp, index)
        }
    }

    /// Whether `pubkey` is the public key of `m/0/0/index` (`hsmd`'s `check_pubkey`).
    pub fn check_pubkey<C: Signing>(
        &self,
        secp: &Secp256k1<C>,
        index: u32,
        pubkey: &PublicKey,
    ) -> Result<bool, WalletKeyError> {
        Ok(self.bitcoin_key(secp, index)?.public_key(secp) == *pubkey)
    }
}

impl fmt::Debug for WalletKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletKeys")
            .field("base", &self.base)
            .field("bolt12", &self.bolt12)
            .field("bip86_base", &self.bip86_base)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::{format, string::String};

    fn secp() -> Secp256k1<secp256k1::SignOnly> {
        Secp256k1::signing_only()
    }

    #[test]
    fn master_is_bip32_of_hkdf_counter_0() {
        let seed = Seed::from_legacy([5; 32]);
        let (master, counter) = bip32_master(&seed, NetworkKind::Test).unwrap();
        assert_eq!(counter, 0);
        let okm = kdf::hkdf_sha256_32(&0u32.to_le_bytes(), &[5; 32], b"bip32 seed");
        let expected = Xpriv::new_master(NetworkKind::Test, &okm).unwrap();
        assert_eq!(master.0, expected);
    }

    #[test]
    fn master_uses_the_whole_64_byte_seed() {
        let mut bytes = [0x11u8; 64];
        let (a, _) = bip32_master(&Seed::from_bip39_seed(bytes), NetworkKind::Main).unwrap();
        bytes[63] ^= 1;
        let (b, _) = bip32_master(&Seed::from_bip39_seed(bytes), NetworkKind::Main).unwrap();
        assert_ne!(a.0, b.0);
        // Only the whole secret goes in: a 64-byte seed differs from its first 32 bytes.
        let (c, _) = bip32_master(&Seed::from_legacy([0x11; 32]), NetworkKind::Main).unwrap();
        assert_ne!(a.0.private_key, c.0.private_key);
    }

    #[test]
    fn legacy_secret_has_no_bip86_keys() {
        let w =
            WalletKeys::derive(&secp(), &Seed::from_legacy([5; 32]), NetworkKind::Test).unwrap();
        assert!(!w.uses_bip86());
        assert_eq!(w.bip86_base_xpub(&secp()), None);
        assert_eq!(w.bip86_key(&secp(), 0).unwrap_err(), WalletKeyError::NoBip86Keys);
        assert_eq!(w.utxo_key(&secp(), 3).unwrap(), w.bitcoin_key(&secp(), 3).unwrap());
    }

    #[test]
    fn bip86_keys_follow_bip86_test_vector() {
        // BIP-0086 test vector: mnemonic "abandon … about", no passphrase,
        // m/86'/0'/0'/0/0 has internal key cc8a4bc6…; the xpub of m/86'/0'/0' is xpub6BgBgses…
        let seed = Seed::from_mnemonic(
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
             abandon about",
            "",
        )
        .unwrap();
        let w = WalletKeys::derive(&secp(), &seed, NetworkKind::Main).unwrap();
        assert!(w.uses_bip86());
        let key = w.bip86_key(&secp(), 0).unwrap().public_key(&secp());
        let (xonly, _) = key.x_only_public_key();
        assert_eq!(
            format!("{xonly}"),
            "cc8a4bc64d897bddc5fbc2f670f7a8ba0b386779106cf1223c6fc5d7cd6fc115"
        );
        assert_eq!(
            format!("{}", w.bip86_base_xpub(&secp()).unwrap()),
            "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCE\
             CoY49yfdDEHGCtMMj92pReUsQ"
        );
        assert_eq!(w.utxo_key(&secp(), 0).unwrap(), w.bip86_key(&secp(), 0).unwrap());
    }

    #[test]
    fn hardened_wallet_index_is_refused() {
        let w =
            WalletKeys::derive(&secp(), &Seed::from_legacy([5; 32]), NetworkKind::Test).unwrap();
        assert_eq!(
            w.bitcoin_key(&secp(), 1 << 31).unwrap_err(),
            WalletKeyError::HardenedIndex(1 << 31)
        );
    }

    #[test]
    fn check_pubkey_compares_m_0_0_k() {
        let s = secp();
        let w = WalletKeys::derive(&s, &Seed::from_legacy([5; 32]), NetworkKind::Test).unwrap();
        let pk = w.bitcoin_key(&s, 7).unwrap().public_key(&s);
        assert!(w.check_pubkey(&s, 7, &pk).unwrap());
        assert!(!w.check_pubkey(&s, 8, &pk).unwrap());
    }

    #[test]
    fn debug_redacts_extended_keys() {
        let w =
            WalletKeys::derive(&secp(), &Seed::from_legacy([5; 32]), NetworkKind::Test).unwrap();
        let printed = format!("{w:?}");
        let secret: String =
            w.base.0.private_key.secret_bytes().iter().map(|b| format!("{b:02x}")).collect();
        assert!(!printed.contains(&secret));
        assert!(!printed.contains("SecretKey("));
    }
}
