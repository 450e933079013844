//! `derive_secret`: pseudorandom secrets for named purposes (Core Lightning's `makesecret`
//! RPC, the bolt12 invoice path base, the node alias base, the SCB key, …).
//!
//! Source: Core Lightning `hsmd/libhsmd.c`. `hsmd_init` derives the base once:
//! HKDF-SHA256 over the **whole** secret (32 bytes legacy, 64 bytes BIP-39), no salt, info
//! `"derived secrets"`, 32 bytes. `handle_derive_secret` then answers
//! HKDF-SHA256(ikm = base, no salt, info = the caller's bytes), 32 bytes.
//! `handle_sign_bolt12_2` derives its tweak base the same way.

use core::fmt;

use super::kdf;
use crate::secret::{Secret32, Seed};

/// The base of every `derive_secret` output.
pub struct DerivedSecrets(Secret32);

impl DerivedSecrets {
    /// The base, from the whole secret.
    pub fn from_seed(seed: &Seed) -> DerivedSecrets {
        DerivedSecrets(Secret32::new(kdf::hkdf_sha256_32(
            &[],
            seed.expose_secret(),
            b"derived secrets",
        )))
    }

    /// `derive_secret(info)`: HKDF-SHA256 of the base with `info`, no salt.
    pub fn derive_secret(&self, info: &[u8]) -> Secret32 {
        Secret32::new(kdf::hkdf_sha256_32(&[], self.0.expose_secret(), info))
    }
}

impl fmt::Debug for DerivedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DerivedSecrets").field(&self.0).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_covers_the_whole_secret() {
        let mut bytes = [3u8; 64];
        let a = DerivedSecrets::from_seed(&Seed::from_bip39_seed(bytes));
        bytes[63] ^= 1;
        let b = DerivedSecrets::from_seed(&Seed::from_bip39_seed(bytes));
        assert_ne!(a.derive_secret(b"x"), b.derive_secret(b"x"));
        let legacy = DerivedSecrets::from_seed(&Seed::from_legacy([3; 32]));
        assert_ne!(legacy.derive_secret(b"x"), a.derive_secret(b"x"));
    }

    #[test]
    fn two_step_hkdf() {
        let seed = Seed::from_legacy([9; 32]);
        let base = kdf::hkdf_sha256_32(&[], &[9; 32], b"derived secrets");
        let expected = kdf::hkdf_sha256_32(&[], &base, b"scb secret");
        assert_eq!(
            DerivedSecrets::from_seed(&seed).derive_secret(b"scb secret").expose_secret(),
            &expected
        );
    }

    #[test]
    fn info_separates_outputs() {
        let d = DerivedSecrets::from_seed(&Seed::from_legacy([9; 32]));
        assert_ne!(d.derive_secret(b"a"), d.derive_secret(b"b"));
        assert_ne!(d.derive_secret(b""), d.derive_secret(b"a"));
    }
}
