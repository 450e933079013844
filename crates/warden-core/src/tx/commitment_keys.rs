//! The keys of one commitment transaction (BOLT-03 "Key Derivation").
//!
//! A commitment belongs to its broadcaster (the side that can publish it). Its scripts use the
//! broadcaster's HTLC and delayed keys, the countersignatory's HTLC key and payment basepoint,
//! and a revocation key only the countersignatory can complete once the broadcaster reveals
//! the per-commitment secret. All of them are derived here from both sides' basepoints and
//! the broadcaster's per-commitment point, so a builder cannot be handed a key of the wrong
//! commitment or the wrong side.

use secp256k1::{Secp256k1, Verification};

use crate::keys::bolt3::{
    derive_delayed_payment_pubkey, derive_htlc_pubkey, derive_revocation_pubkey, DerivationError,
};
use crate::keys::roles::{
    Basepoints, DelayedPaymentPubkey, HtlcPubkey, PaymentBasepoint, PerCommitmentPoint,
    RevocationPubkey,
};

/// The public keys of one commitment, from the broadcaster's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitmentKeys {
    /// The broadcaster's per-commitment point for this commitment.
    pub per_commitment_point: PerCommitmentPoint,
    /// The revocation key: the countersignatory's revocation basepoint tweaked with the
    /// per-commitment point.
    pub revocation: RevocationPubkey,
    /// The broadcaster's HTLC key.
    pub broadcaster_htlc: HtlcPubkey,
    /// The broadcaster's delayed-payment key (to_local and HTLC-transaction outputs).
    pub broadcaster_delayed_payment: DelayedPaymentPubkey,
    /// The countersignatory's HTLC key.
    pub countersignatory_htlc: HtlcPubkey,
    /// The countersignatory's payment basepoint: with `option_static_remotekey` the to_remote
    /// output pays it untweaked.
    pub countersignatory_payment: PaymentBasepoint,
}

impl CommitmentKeys {
    /// Derives the keys of the broadcaster's commitment with `per_commitment_point`.
    ///
    /// Only the broadcaster's HTLC and delayed-payment basepoints and the countersignatory's
    /// revocation, HTLC and payment basepoints are used.
    pub fn derive<C: Verification>(
        secp: &Secp256k1<C>,
        per_commitment_point: &PerCommitmentPoint,
        broadcaster: &Basepoints,
        countersignatory: &Basepoints,
    ) -> Result<CommitmentKeys, DerivationError> {
        Ok(CommitmentKeys {
            per_commitment_point: *per_commitment_point,
            revocation: derive_revocation_pubkey(
                secp,
                &countersignatory.revocation,
                per_commitment_point,
            )?,
            broadcaster_htlc: derive_htlc_pubkey(secp, &broadcaster.htlc, per_commitment_point)?,
            broadcaster_delayed_payment: derive_delayed_payment_pubkey(
                secp,
                &broadcaster.delayed_payment,
                per_commitment_point,
            )?,
            countersignatory_htlc: derive_htlc_pubkey(
                secp,
                &countersignatory.htlc,
                per_commitment_point,
            )?,
            countersignatory_payment: countersignatory.payment,
        })
    }
}
