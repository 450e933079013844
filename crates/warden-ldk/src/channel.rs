//! One channel's enforcement record, and the mapping of LDK's channel parameters and
//! commitment transactions into warden-core's words (`ChannelSetup`, `CommitmentClaim`).
//!
//! LDK never sends a `setup_channel`: the signer learns a channel's parameters from the
//! `ChannelTransactionParameters` that come with each signing call. The first populated set
//! becomes the record's [`ChannelSetup`] (checked by `policy::channel::check_setup`); later
//! sets must name the same keys, role and type (`ChannelState::apply_setup`).
//!
//! What LDK does not tell the signer, and how it is mapped:
//! - the push: taken to be the peer's balance in the first commitment #0 Warden sees (ours or
//!   the peer's), checked against `Limits::max_push` (`onchain-push`); the other side's #0 is
//!   then checked against it (`commitment-initial-value`);
//! - upfront shutdown scripts: not given to the signer (`None`); a mutual close must pay our
//!   shutdown or destination script, or the allowlist (`close-destination`);
//! - the peer's node id and a dbid: a record is keyed by LDK's `channel_keys_id`; the slot
//!   names our own node id and a per-manager counter (used only in refusal messages).

use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
use bitcoin::Transaction;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, CommitmentTransaction,
    HolderCommitmentTransaction,
};
use lightning::types::payment::PaymentPreimage;
use warden_core::channel::commitment::{
    read_commitment, Broadcaster, CommitmentClaim, HolderKeys, ReadCommitment,
};
use warden_core::channel::{ChannelSetup, ChannelState, HtlcInfo, HtlcSide};
use warden_core::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::policy::{PolicyError, Rule};
use warden_core::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// LDK's first commitment index: LDK counts commitment numbers down from `2^48 - 1`.
pub const INITIAL_COMMITMENT_NUMBER: u64 = (1 << 48) - 1;

/// Warden's (upward) commitment number of LDK's (downward) index `idx`.
pub fn number_of_index(idx: u64) -> Result<CommitmentNumber, PolicyError> {
    let n = INITIAL_COMMITMENT_NUMBER.checked_sub(idx).ok_or_else(|| {
        PolicyError::new(Rule::CommitmentNumber, format!("commitment index {idx} is above 2^48"))
    })?;
    CommitmentNumber::new(n).map_err(|e| PolicyError::new(Rule::CommitmentNumber, format!("{e}")))
}

/// Everything Warden keeps about one channel (shared by every copy of its signer).
#[derive(Clone, Debug)]
pub struct ChannelRecord {
    /// warden-core's state: numbers, points, the peer's secrets, current commitments.
    pub state: ChannelState,
    /// The last channel parameters seen.
    pub params: Option<ChannelTransactionParameters>,
    /// Whether the push was fixed (from the first commitment #0).
    pub push_known: bool,
    /// A holder commitment LDK asked to validate before any call carried the channel's
    /// parameters (an inbound channel's #0): validated as soon as they arrive.
    pub pending_holder: Option<(HolderCommitmentTransaction, Vec<PaymentPreimage>)>,
    /// Our funding key (before any splice): names the channel to the peer's side.
    pub funding_pubkey: PublicKey,
}

impl ChannelRecord {
    /// A record for a channel no call has described yet.
    pub fn new(state: ChannelState, funding_pubkey: PublicKey) -> ChannelRecord {
        ChannelRecord {
            state,
            params: None,
            push_known: false,
            pending_holder: None,
            funding_pubkey,
        }
    }
}

fn basepoints(keys: &ChannelPublicKeys) -> Basepoints {
    Basepoints {
        revocation: RevocationBasepoint(keys.revocation_basepoint.to_public_key()),
        payment: PaymentBasepoint(keys.payment_point),
        htlc: HtlcBasepoint(keys.htlc_basepoint.to_public_key()),
        delayed_payment: DelayedPaymentBasepoint(keys.delayed_payment_basepoint.to_public_key()),
    }
}

/// Our basepoints and funding key as the parameters state them.
pub fn holder_keys(params: &ChannelTransactionParameters) -> (Basepoints, FundingPubkey) {
    (basepoints(&params.holder_pubkeys), FundingPubkey(params.holder_pubkeys.funding_pubkey))
}

/// warden-core's [`ChannelSetup`] of LDK's channel parameters (see the module documentation
/// for what LDK does not say). `push_value` is left at zero; the caller fixes it.
pub fn setup_of(params: &ChannelTransactionParameters) -> Result<ChannelSetup, PolicyError> {
    let unknown = |what: &str| {
        PolicyError::new(Rule::ChannelUnknown, format!("channel parameters without {what}"))
    };
    let counterparty =
        params.counterparty_parameters.as_ref().ok_or_else(|| unknown("the peer's keys"))?;
    let funding = params.funding_outpoint.ok_or_else(|| unknown("a funding outpoint"))?;
    // LDK keeps feature bits little-endian; warden-core reads them big-endian (BOLT-09).
    let mut features = params.channel_type_features.le_flags().to_vec();
    features.reverse();
    Ok(ChannelSetup {
        is_outbound: params.is_outbound_from_holder,
        channel_value: Sat(params.channel_value_satoshis),
        push_value: Msat(0),
        funding_outpoint: funding.into_bitcoin_outpoint(),
        holder_selected_delay: params.holder_selected_contest_delay,
        holder_shutdown_script: None,
        holder_shutdown_wallet_index: None,
        counterparty_basepoints: basepoints(&counterparty.pubkeys),
        counterparty_funding_pubkey: FundingPubkey(counterparty.pubkeys.funding_pubkey),
        counterparty_selected_delay: counterparty.selected_contest_delay,
        counterparty_shutdown_script: None,
        channel_type_features: features,
    })
}

/// The HTLCs of an LDK commitment in output order, from our point of view, each with its
/// position in LDK's `nondust_htlcs` list (the order of LDK's signature lists).
pub fn htlcs_of(
    tx: &CommitmentTransaction,
    broadcaster: Broadcaster,
) -> Result<Vec<(usize, HtlcInfo)>, PolicyError> {
    let mut out = Vec::with_capacity(tx.nondust_htlcs().len());
    for (i, h) in tx.nondust_htlcs().iter().enumerate() {
        let vout = h.transaction_output_index.ok_or_else(|| {
            PolicyError::new(Rule::CommitmentStructure, "a non-dust htlc without an output index")
        })?;
        let offered_by = match (h.offered, broadcaster) {
            (true, Broadcaster::Holder) | (false, Broadcaster::Counterparty) => HtlcSide::Holder,
            (true, Broadcaster::Counterparty) | (false, Broadcaster::Holder) => {
                HtlcSide::Counterparty
            }
        };
        out.push((
            vout,
            i,
            HtlcInfo {
                offered_by,
                amount: Msat(h.amount_msat),
                payment_hash: h.payment_hash.0,
                cltv_expiry: h.cltv_expiry,
            },
        ));
    }
    out.sort_by_key(|(vout, _, _)| *vout);
    Ok(out.into_iter().map(|(_, i, h)| (i, h)).collect())
}

/// Reads an LDK commitment with warden-core's `read_commitment`, the check warden-hsmd runs on
/// the raw transactions lightningd sends: from the channel's basepoints (Warden's setup, not
/// LDK's parameters) and the stated per-commitment point it derives every key and rebuilds
/// every output script, checks the funding input, version, locktime and sequence (the stated
/// number), the stated HTLCs at their outputs and BIP-69 order, and returns what the
/// transaction really pays. The transaction read is the one LDK built and will use (its cached
/// `built_transaction`); LDK's own `verify` (which derives the same keys once more to compare
/// that transaction with the fields it was built from) adds nothing to what is signed, and is
/// not run: a transaction that does not match its stated fields fails warden-core's reading.
pub fn read_ldk_commitment<C: Verification + Signing>(
    secp: &Secp256k1<C>,
    setup: &ChannelSetup,
    params: &ChannelTransactionParameters,
    tx: &CommitmentTransaction,
    broadcaster: Broadcaster,
) -> Result<(ReadCommitment, Transaction, Vec<usize>), PolicyError> {
    let built = tx.trust().built_transaction().transaction.clone();
    let number = number_of_index(tx.commitment_number())?;
    let point = PerCommitmentPoint(tx.per_commitment_point());
    let listed = htlcs_of(tx, broadcaster)?;
    let order: Vec<usize> = listed.iter().map(|(i, _)| *i).collect();
    let htlcs: Vec<HtlcInfo> = listed.into_iter().map(|(_, h)| h).collect();
    let (holder_basepoints, holder_funding) = holder_keys(params);
    let read = read_commitment(
        secp,
        setup,
        HolderKeys { basepoints: &holder_basepoints, funding: &holder_funding },
        CommitmentClaim {
            broadcaster,
            number,
            point: &point,
            feerate: FeeratePerKw(tx.negotiated_feerate_per_kw()),
            htlcs: &htlcs,
            tx: &built,
        },
    )?;
    Ok((read, built, order))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldk_indexes_count_down_from_2_pow_48_minus_1() {
        assert_eq!(number_of_index(INITIAL_COMMITMENT_NUMBER).map(|n| n.get()), Ok(0));
        assert_eq!(number_of_index(INITIAL_COMMITMENT_NUMBER - 7).map(|n| n.get()), Ok(7));
        let e = number_of_index(1 << 48).err().map(|e| e.rule);
        assert_eq!(e, Some(Rule::CommitmentNumber));
    }

    #[test]
    fn ldk_feature_bits_read_big_endian() {
        use lightning::types::features::ChannelTypeFeatures;
        let mut f = ChannelTypeFeatures::only_static_remote_key();
        let mut bytes = f.le_flags().to_vec();
        bytes.reverse();
        assert!(warden_core::channel::setup::has_feature(&bytes, 12));
        f.set_anchors_zero_fee_htlc_tx_required();
        let mut bytes = f.le_flags().to_vec();
        bytes.reverse();
        assert!(warden_core::channel::setup::has_feature(&bytes, 22));
        assert!(!warden_core::channel::setup::has_feature(&bytes, 20));
    }
}
