//! BOLT-03 key derivation ("Key Derivation").
//!
//! - `pubkey = basepoint + SHA256(per_commitment_point || basepoint) * G`
//! - `privkey = basepoint_secret + SHA256(per_commitment_point || basepoint)`
//! - `revocationpubkey = revocation_basepoint * SHA256(revocation_basepoint || per_commitment_point)
//!    + per_commitment_point * SHA256(per_commitment_point || revocation_basepoint)`
//! - `revocationprivkey = revocation_basepoint_secret * SHA256(revocation_basepoint || per_commitment_point)
//!    + per_commitment_secret * SHA256(per_commitment_point || revocation_basepoint)`
//!
//! A tweak that is zero or not below the curve order happens with negligible probability; the
//! functions still return an error rather than panic.

use core::fmt;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use secp256k1::{PublicKey, Scalar, Secp256k1, SecretKey, Signing, Verification};

use super::roles::{
    DelayedPaymentBasepoint, DelayedPaymentPubkey, HtlcBasepoint, HtlcPubkey, PaymentBasepoint,
    PaymentPubkey, PerCommitmentPoint, RevocationBasepoint, RevocationPubkey,
};
use crate::secret::{PerCommitmentSecret, PrivateKey};

/// A derivation whose tweak fell outside the curve order (probability about 2^-128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DerivationError;

impl fmt::Display for DerivationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BOLT-03 key derivation produced an invalid tweak")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DerivationError {}

fn sha256_of(a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(&a.serialize());
    engine.input(&b.serialize());
    sha256::Hash::from_engine(engine).to_byte_array()
}

fn scalar(bytes: [u8; 32]) -> Result<Scalar, DerivationError> {
    Scalar::from_be_bytes(bytes).map_err(|_| DerivationError)
}

/// `basepoint + SHA256(per_commitment_point || basepoint) * G`.
pub fn derive_public_key<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &PublicKey,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<PublicKey, DerivationError> {
    let tweak = scalar(sha256_of(&per_commitment_point.0, basepoint))?;
    basepoint.add_exp_tweak(secp, &tweak).map_err(|_| DerivationError)
}

/// `basepoint_secret + SHA256(per_commitment_point || basepoint)`.
pub fn derive_private_key<C: Signing>(
    secp: &Secp256k1<C>,
    basepoint_secret: &PrivateKey,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<PrivateKey, DerivationError> {
    let basepoint = basepoint_secret.public_key(secp);
    derive_private_key_from_basepoint(basepoint_secret, &basepoint, per_commitment_point)
}

/// [`derive_private_key`] when the basepoint (the public key of `basepoint_secret`) is already
/// at hand: no point multiplication. `basepoint` must be `basepoint_secret`'s public key (a
/// channel constant the caller derived from the same secret).
pub fn derive_private_key_from_basepoint(
    basepoint_secret: &PrivateKey,
    basepoint: &PublicKey,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<PrivateKey, DerivationError> {
    let tweak = scalar(sha256_of(&per_commitment_point.0, basepoint))?;
    basepoint_secret
        .expose_secret()
        .add_tweak(&tweak)
        .map(PrivateKey::new)
        .map_err(|_| DerivationError)
}

/// The revocation public key of a commitment.
pub fn derive_revocation_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    revocation_basepoint: &RevocationBasepoint,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<RevocationPubkey, DerivationError> {
    let (rb, pcp) = (&revocation_basepoint.0, &per_commitment_point.0);
    let a = rb.mul_tweak(secp, &scalar(sha256_of(rb, pcp))?).map_err(|_| DerivationError)?;
    let b = pcp.mul_tweak(secp, &scalar(sha256_of(pcp, rb))?).map_err(|_| DerivationError)?;
    a.combine(&b).map(RevocationPubkey).map_err(|_| DerivationError)
}

/// The revocation private key of a commitment, from our revocation basepoint secret and the
/// per-commitment secret the peer revealed.
pub fn derive_revocation_privkey<C: Signing>(
    secp: &Secp256k1<C>,
    revocation_basepoint_secret: &PrivateKey,
    per_commitment_secret: &PerCommitmentSecret,
) -> Result<PrivateKey, DerivationError> {
    let rb = revocation_basepoint_secret.public_key(secp);
    let pcs = SecretKey::from_slice(per_commitment_secret.expose_secret())
        .map_err(|_| DerivationError)?;
    let pcp = PublicKey::from_secret_key(secp, &pcs);
    let a = revocation_basepoint_secret
        .expose_secret()
        .mul_tweak(&scalar(sha256_of(&rb, &pcp))?)
        .map_err(|_| DerivationError)?;
    let b = pcs.mul_tweak(&scalar(sha256_of(&pcp, &rb))?).map_err(|_| DerivationError)?;
    let sum = a.add_tweak(&Scalar::from(b)).map_err(|_| DerivationError);
    let mut pcs = pcs;
    pcs.non_secure_erase();
    sum.map(PrivateKey::new)
}

/// The HTLC key of a commitment.
pub fn derive_htlc_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &HtlcBasepoint,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<HtlcPubkey, DerivationError> {
    derive_public_key(secp, &basepoint.0, per_commitment_point).map(HtlcPubkey)
}

/// The delayed-payment (to_local) key of a commitment.
pub fn derive_delayed_payment_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &DelayedPaymentBasepoint,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<DelayedPaymentPubkey, DerivationError> {
    derive_public_key(secp, &basepoint.0, per_commitment_point).map(DelayedPaymentPubkey)
}

/// The tweaked payment key of a commitment (channels without `static_remotekey`).
pub fn derive_payment_pubkey<C: Verification>(
    secp: &Secp256k1<C>,
    basepoint: &PaymentBasepoint,
    per_commitment_point: &PerCommitmentPoint,
) -> Result<PaymentPubkey, DerivationError> {
    derive_public_key(secp, &basepoint.0, per_commitment_point).map(PaymentPubkey)
}
