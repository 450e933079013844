//! The key of an encrypted `hsm_secret`: libsodium's `crypto_pwhash` as Core Lightning calls it
//! (`common/hsm_secret.c`, `get_encryption_key`; earlier `common/hsm_encryption.c`,
//! `hsm_secret_encryption_key_with_exitcode`).
//!
//! Core Lightning passes `crypto_pwhash_ALG_ARGON2ID13`, the 16-byte salt
//! `"c-lightning\0\0\0\0\0"`, `crypto_pwhash_argon2id_OPSLIMIT_MODERATE` (3) and
//! `crypto_pwhash_argon2id_MEMLIMIT_MODERATE` (268,435,456 bytes = 256 MiB), and the passphrase
//! up to its first NUL (`strlen`). libsodium's Argon2id13 maps `opslimit` to the number of
//! passes, `memlimit / 1024` to the memory in KiB, and always uses one lane.

use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// Core Lightning's salt.
pub const SALT: [u8; 16] = *b"c-lightning\0\0\0\0\0";
/// `crypto_pwhash_argon2id_OPSLIMIT_MODERATE`.
pub const OPSLIMIT_MODERATE: u32 = 3;
/// `crypto_pwhash_argon2id_MEMLIMIT_MODERATE`, in bytes.
pub const MEMLIMIT_MODERATE: u32 = 256 * 1024 * 1024;

/// Argon2 rejected the parameters or ran out of memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PwhashError;

/// libsodium's `crypto_pwhash(out, 32, passwd, salt, opslimit, memlimit, ALG_ARGON2ID13)`.
pub fn crypto_pwhash_argon2id13(
    passwd: &[u8],
    salt: &[u8; 16],
    opslimit: u32,
    memlimit_bytes: u32,
) -> Result<Zeroizing<[u8; 32]>, PwhashError> {
    let params =
        Params::new(memlimit_bytes / 1024, opslimit, 1, Some(32)).map_err(|_| PwhashError)?;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    argon.hash_password_into(passwd, salt, &mut *out).map_err(|_| PwhashError)?;
    Ok(out)
}

/// The encryption key of a Core Lightning `hsm_secret` for `passphrase`.
pub fn encryption_key(passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, PwhashError> {
    crypto_pwhash_argon2id13(passphrase, &SALT, OPSLIMIT_MODERATE, MEMLIMIT_MODERATE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use argon2::{AssociatedData, ParamsBuilder};

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// RFC 9106 section 5.3 (Argon2id, version 0x13): proves the `argon2` crate's Argon2id
    /// v0x13 is the RFC's.
    #[test]
    fn rfc9106_argon2id_vector() {
        let params = ParamsBuilder::new()
            .m_cost(32)
            .t_cost(3)
            .p_cost(4)
            .output_len(32)
            .data(AssociatedData::new(&[4; 12]).unwrap())
            .build()
            .unwrap();
        let argon =
            Argon2::new_with_secret(&[3; 8], Algorithm::Argon2id, Version::V0x13, params).unwrap();
        let mut out = [0u8; 32];
        argon.hash_password_into(&[1; 32], &[2; 16], &mut out).unwrap();
        assert_eq!(
            out.to_vec(),
            hex("0d640df58d78766c08c037a34a8b53c9d01ef0452d75b65eb52520e96b01e659")
        );
    }

    /// libsodium's `crypto_pwhash(..., opslimit 5, memlimit 1 MiB, ALG_ARGON2ID13)` through
    /// libsodium-wrappers equals the reference `argon2 SALT -id -v 13 -k 1024 -t 5` (one lane):
    /// iov-one/iov-core `packages/iov-crypto/src/libsodium.spec.ts`, used as facts. Proves the
    /// opslimit / memlimit / lanes mapping.
    #[test]
    fn libsodium_crypto_pwhash_vector() {
        let out = crypto_pwhash_argon2id13(b"123", b"ABCDEFGHIJKLMNOP", 5, 1024 * 1024).unwrap();
        assert_eq!(
            out.to_vec(),
            hex("3c5d010180ba0cf5b6b858cba23b318e42d33088983c404598599c3b029ecac6")
        );
    }
}
