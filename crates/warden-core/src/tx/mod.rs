//! BOLT-03 transactions.
//!
//! Builders for every transaction a Lightning channel signs, and the checks that a
//! node-supplied transaction is the one Warden would build from the channel state:
//!
//! - [`scripts`]: the witness scripts (funding, to_local, to_remote, anchor, HTLC).
//! - [`commitment_keys`]: the keys of one commitment ([`CommitmentKeys`]), derived from both sides'
//!   basepoints and the per-commitment point.
//! - [`funding`]: the funding output.
//! - [`commitment`]: the commitment transaction (trimming, fee, anchors, BIP-69 order) and the
//!   obscured commitment number.
//! - [`htlc`]: HTLCs, HTLC-success and HTLC-timeout transactions.
//! - [`closing`]: the mutual close transaction.
//! - [`sweep`]: templates that spend commitment outputs (delayed, HTLC claims, justice,
//!   anchors).
//! - [`sighash`]: BIP-0143 sighashes and witness assembly.
//! - [`verify`]: rebuild-and-compare of a supplied commitment, with the first difference named.
//!
//! Only the channel types that change transaction construction are modelled
//! ([`ChannelType`]); all three pay to_remote to the payment basepoint. Channels without
//! `option_static_remotekey` (a tweaked to_remote key) are outside what this module builds.

use crate::units::{FeeratePerKw, Sat};

pub mod closing;
pub mod commitment;
pub mod commitment_keys;
pub mod funding;
pub mod htlc;
pub mod scripts;
pub mod sighash;
pub mod sweep;
pub mod verify;

pub use closing::{build_closing_tx, BuiltClosing, ClosingError, ClosingOutput, ClosingSpec};
pub use commitment::{
    BuiltCommitment, CommitmentError, CommitmentOutput, CommitmentOutputKind, CommitmentSpec,
    ObscuringFactor, Party,
};
pub use commitment_keys::CommitmentKeys;
pub use funding::{find_funding_output, funding_output, FundingOutputError};
pub use htlc::{
    build_htlc_tx, Htlc, HtlcDirection, HtlcTx, HtlcTxError, HtlcTxKind, HtlcWitnessError,
    PaymentHash, PaymentPreimage,
};
pub use sighash::{commitment_witness, p2wsh_sighash, SighashError};
pub use sweep::{SpendFee, SpendPath, SpendTemplate, SweepError, WitnessError};
pub use verify::{
    decode_commitment_number, verify_commitment, verify_tx, CommitmentInfo,
    DecodeCommitmentNumberError, HtlcInfo, TxMismatch, VerifyError,
};

/// The value of each anchor output (BOLT-03 `option_anchors`).
pub const ANCHOR_OUTPUT_VALUE: Sat = Sat(330);

/// The value of a zero-fee-commitment channel's shared (P2A) anchor is what the commitment's
/// outputs leave of the channel value (trimmed HTLCs, balances below the dust limit, millisatoshi
/// rounding), at most this much; the rest goes to miners.
pub const SHARED_ANCHOR_MAX_VALUE: Sat = Sat(240);

/// The channel-type features that change how BOLT-03 transactions are built.
///
/// All three pay to_remote to the payment basepoint directly (`option_static_remotekey`, or
/// implied). The other channel-type bits (`option_scid_alias`, `option_zeroconf`, …) do not
/// change the transactions and are not represented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelType {
    /// `option_static_remotekey` without anchors: to_remote is P2WPKH, HTLC transactions pay
    /// their own fee.
    StaticRemoteKey,
    /// `option_anchors_zero_fee_htlc_tx`: two 330-sat anchors, a 1-block CSV on to_remote and
    /// on HTLC outputs, and zero-fee HTLC transactions signed `SIGHASH_SINGLE|ANYONECANPAY` by
    /// the countersignatory.
    AnchorsZeroFeeHtlc,
    /// `option_zero_fee_commitments` (the BOLTs proposal LDK 0.2 implements under the staging
    /// feature bit 140/141): version-3 (TRUC) commitment and HTLC transactions, a commitment
    /// feerate of 0, one shared pay-to-anchor output (`OP_1 <0x4e73>`, keyless) holding what
    /// the other outputs leave of the channel value up to [`SHARED_ANCHOR_MAX_VALUE`], a
    /// P2WPKH to_remote and HTLC scripts without the CSV (TRUC prevents the pinning the CSV
    /// guards against), and zero-fee HTLC transactions signed
    /// `SIGHASH_SINGLE|ANYONECANPAY` by the countersignatory.
    ZeroFeeCommitments,
}

impl ChannelType {
    /// Whether the commitment carries the two keyed 330-sat anchor outputs
    /// (`option_anchors_zero_fee_htlc_tx`).
    pub fn has_anchors(self) -> bool {
        matches!(self, ChannelType::AnchorsZeroFeeHtlc)
    }

    /// Whether the commitment carries one shared pay-to-anchor output
    /// (`option_zero_fee_commitments`).
    pub fn has_shared_anchor(self) -> bool {
        matches!(self, ChannelType::ZeroFeeCommitments)
    }

    /// Whether HTLC transactions carry no fee and the countersignatory signs them
    /// `SIGHASH_SINGLE|ANYONECANPAY` (both anchor formats).
    pub fn zero_fee_htlcs(self) -> bool {
        !matches!(self, ChannelType::StaticRemoteKey)
    }

    /// The version of commitment and HTLC transactions: 3 (TRUC) with zero-fee commitments,
    /// else 2.
    pub fn tx_version(self) -> bitcoin::transaction::Version {
        match self {
            ChannelType::ZeroFeeCommitments => bitcoin::transaction::Version(3),
            _ => bitcoin::transaction::Version::TWO,
        }
    }

    /// The weight of a commitment transaction without HTLC outputs (BOLT-03 "Fee
    /// Calculation": 724, or 1124 with anchors).
    pub fn commitment_base_weight(self) -> u64 {
        match self {
            ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => 724,
            ChannelType::AnchorsZeroFeeHtlc => 1124,
        }
    }

    /// The weight each untrimmed HTLC output adds to a commitment transaction (BOLT-03: 172).
    pub fn commitment_weight_per_htlc(self) -> u64 {
        172
    }

    /// The fee of an HTLC-timeout transaction: `feerate * 663 / 1000`, or zero with zero-fee
    /// HTLC anchors (BOLT-03 "Fee Calculation").
    pub fn htlc_timeout_fee(self, feerate: FeeratePerKw) -> Sat {
        match self {
            ChannelType::StaticRemoteKey => feerate.fee_for_weight(663),
            ChannelType::AnchorsZeroFeeHtlc | ChannelType::ZeroFeeCommitments => Sat::ZERO,
        }
    }

    /// The fee of an HTLC-success transaction: `feerate * 703 / 1000`, or zero with zero-fee
    /// HTLC anchors (BOLT-03 "Fee Calculation").
    pub fn htlc_success_fee(self, feerate: FeeratePerKw) -> Sat {
        match self {
            ChannelType::StaticRemoteKey => feerate.fee_for_weight(703),
            ChannelType::AnchorsZeroFeeHtlc | ChannelType::ZeroFeeCommitments => Sat::ZERO,
        }
    }

    /// The relative lock (CSV) on HTLC outputs and their second-stage spends: 1 block with
    /// keyed anchors, else 0.
    pub fn htlc_csv(self) -> u16 {
        match self {
            ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => 0,
            ChannelType::AnchorsZeroFeeHtlc => 1,
        }
    }
}
