//! Templates that spend commitment outputs (BOLT-03 witness forms, BOLT-05 on-chain handling).
//!
//! Each template is an unsigned version-2 transaction with one input and one output to the
//! caller's destination, together with the witness script and the value it spends, the
//! sequence and locktime the script requires, and [`SpendTemplate::witness`], which assembles
//! the final witness from the signature:
//!
//! | path | input sequence | locktime | witness (before the script) |
//! |---|---|---|---|
//! | delayed to_local / HTLC-tx output | `to_self_delay` | 0 | `<delayed_sig> <>` |
//! | their offered HTLC, with preimage | 1 with anchors | 0 | `<htlc_sig> <preimage>` |
//! | their received HTLC, after timeout | 1 with anchors | `cltv_expiry` | `<htlc_sig> <>` |
//! | revoked to_local / HTLC-tx output | — | 0 | `<revocation_sig> 1` |
//! | revoked HTLC output | — | 0 | `<revocation_sig> <revocationpubkey>` |
//! | to_remote with anchors | 1 | 0 | `<payment_sig>` |
//! | anchor, with the funding key | — | 0 | `<funding_sig>` |
//! | anchor, after 16 blocks | 16 | 0 | `<>` |
//!
//! Where no relative lock is required ("—", and the HTLC claims without anchors) the sequence is
//! `0xFFFFFFFD`: replaceable, and non-final so that a locktime is enforced. Every signature is
//! `SIGHASH_ALL` over the template as built. The fee is given by the caller, as an absolute
//! amount or as a feerate applied to the weight of the largest witness the path can have.

use alloc::vec::Vec;
use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{ecdsa, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use secp256k1::Message;

use super::commitment_keys::CommitmentKeys;
use super::htlc::{Htlc, HtlcDirection, PaymentPreimage};
use super::scripts::{
    anchor_witness_script, to_local_witness_script, to_remote_anchors_witness_script,
};
use super::sighash::{p2wsh_sighash, SighashError};
use super::{ChannelType, ANCHOR_OUTPUT_VALUE};
use crate::keys::roles::{DelayedPaymentPubkey, FundingPubkey, PaymentBasepoint, RevocationPubkey};
use crate::units::{FeeratePerKw, Sat};

/// The largest DER ECDSA signature plus its sighash byte.
const MAX_SIGNATURE_LEN: usize = 73;

/// How the caller pays a template's fee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendFee {
    /// A fixed fee.
    Absolute(Sat),
    /// A feerate applied to the template's weight with the largest witness of its path.
    Feerate(FeeratePerKw),
}

/// Which script branch a template spends, and the data its witness needs besides the
/// signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SpendPath {
    /// to_local (or an HTLC transaction's output) after `to_self_delay`, by the broadcaster.
    DelayedToLocal,
    /// An HTLC the broadcaster offered, claimed by the countersignatory with the preimage.
    OfferedHtlcWithPreimage {
        /// The preimage of the HTLC's payment hash.
        preimage: PaymentPreimage,
    },
    /// An HTLC the broadcaster received, reclaimed by the countersignatory after its
    /// `cltv_expiry`.
    ReceivedHtlcAfterTimeout,
    /// A revoked to_local (or HTLC transaction output), taken with the revocation key.
    RevokedToLocal,
    /// A revoked commitment's HTLC output, taken with the revocation key.
    RevokedHtlc {
        /// The revocation public key (the witness reveals it).
        revocation: RevocationPubkey,
    },
    /// to_remote of an anchors commitment, after its 1-block delay.
    ToRemoteAnchors,
    /// An anchor, with its funding key.
    Anchor,
    /// An anchor after 16 blocks, by anyone (no signature).
    AnchorAfterDelay,
}

impl SpendPath {
    /// Whether the witness carries a signature.
    pub fn needs_signature(&self) -> bool {
        !matches!(self, SpendPath::AnchorAfterDelay)
    }

    /// The witness elements after the signature (before the script).
    fn extra_elements(&self) -> Vec<Vec<u8>> {
        match self {
            SpendPath::DelayedToLocal | SpendPath::ReceivedHtlcAfterTimeout => {
                alloc::vec![alloc::vec![]]
            }
            SpendPath::OfferedHtlcWithPreimage { preimage } => {
                alloc::vec![preimage.expose_secret().to_vec()]
            }
            SpendPath::RevokedToLocal => alloc::vec![alloc::vec![1]],
            SpendPath::RevokedHtlc { revocation } => alloc::vec![revocation.serialize().to_vec()],
            SpendPath::ToRemoteAnchors | SpendPath::Anchor => alloc::vec![],
            SpendPath::AnchorAfterDelay => alloc::vec![alloc::vec![]],
        }
    }
}

/// Why a spend template cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepError {
    /// The fee is larger than the value spent.
    FeeExceedsValue {
        /// The value spent.
        value: Sat,
        /// The fee asked for.
        fee: Sat,
    },
    /// The HTLC has the other direction than the path needs.
    WrongHtlcDirection {
        /// The direction the path needs (from the broadcaster's view).
        expected: HtlcDirection,
    },
    /// The preimage does not hash to the HTLC's payment hash.
    WrongPreimage,
}

impl fmt::Display for SweepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SweepError::FeeExceedsValue { value, fee } => {
                write!(f, "fee of {fee} exceeds the {value} spent")
            }
            SweepError::WrongHtlcDirection { expected } => {
                write!(
                    f,
                    "this spend needs an htlc the broadcaster {}",
                    match expected {
                        HtlcDirection::Offered => "offered",
                        HtlcDirection::Received => "received",
                    }
                )
            }
            SweepError::WrongPreimage => {
                f.write_str("the preimage does not match the payment hash")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SweepError {}

/// Why a template's witness cannot be assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WitnessError {
    /// The path needs a signature and none was given.
    MissingSignature,
    /// The path takes no signature and one was given.
    UnexpectedSignature,
}

impl fmt::Display for WitnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WitnessError::MissingSignature => "this spend needs a signature",
            WitnessError::UnexpectedSignature => "this spend takes no signature",
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for WitnessError {}

/// An unsigned one-input, one-output spend of a channel output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpendTemplate {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// The script branch spent.
    pub path: SpendPath,
    /// The witness script of the output spent.
    pub witness_script: ScriptBuf,
    /// The value of the output spent.
    pub value: Sat,
    /// The fee the template pays.
    pub fee: Sat,
}

impl SpendTemplate {
    /// Builds a template and settles its fee.
    #[allow(clippy::too_many_arguments, reason = "internal constructor, one call per path")]
    fn new(
        outpoint: OutPoint,
        value: Sat,
        sequence: Sequence,
        lock_time: LockTime,
        path: SpendPath,
        witness_script: ScriptBuf,
        destination: ScriptBuf,
        fee: SpendFee,
    ) -> Result<SpendTemplate, SweepError> {
        let mut template = SpendTemplate {
            tx: Transaction {
                version: Version::TWO,
                lock_time,
                input: alloc::vec![TxIn {
                    previous_output: outpoint,
                    script_sig: ScriptBuf::new(),
                    sequence,
                    witness: Witness::new(),
                }],
                output: alloc::vec![TxOut { value: value.to_amount(), script_pubkey: destination }],
            },
            path,
            witness_script,
            value,
            fee: Sat::ZERO,
        };
        let fee = match fee {
            SpendFee::Absolute(fee) => fee,
            SpendFee::Feerate(feerate) => feerate.fee_for_weight(template.max_weight()),
        };
        let remaining = value.checked_sub(fee).ok_or(SweepError::FeeExceedsValue { value, fee })?;
        template.fee = fee;
        if let Some(out) = template.tx.output.first_mut() {
            out.value = remaining.to_amount();
        }
        Ok(template)
    }

    /// The weight of the signed transaction with the largest signature.
    pub fn max_weight(&self) -> u64 {
        let mut tx = self.tx.clone();
        let mut witness = Witness::new();
        if self.path.needs_signature() {
            witness.push([0u8; MAX_SIGNATURE_LEN]);
        }
        for element in self.path.extra_elements() {
            witness.push(element);
        }
        witness.push(self.witness_script.as_bytes());
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        tx.weight().to_wu()
    }

    /// The sighash to sign (`SIGHASH_ALL`, input 0). A caller who adds wallet inputs (to
    /// pay for an anchor child) adds them before computing it; the template's input stays at
    /// index 0.
    pub fn sighash(&self) -> Result<Message, SighashError> {
        p2wsh_sighash(&self.tx, 0, &self.witness_script, self.value, EcdsaSighashType::All)
    }

    /// The input witness for `signature` (`None` only for [`SpendPath::AnchorAfterDelay`]).
    pub fn witness(&self, signature: Option<&ecdsa::Signature>) -> Result<Witness, WitnessError> {
        let mut witness = Witness::new();
        match (self.path.needs_signature(), signature) {
            (true, Some(sig)) => witness.push_ecdsa_signature(sig),
            (true, None) => return Err(WitnessError::MissingSignature),
            (false, Some(_)) => return Err(WitnessError::UnexpectedSignature),
            (false, None) => {}
        }
        for element in self.path.extra_elements() {
            witness.push(element);
        }
        witness.push(self.witness_script.as_bytes());
        Ok(witness)
    }

    /// The signed transaction: [`SpendTemplate::witness`] on input 0.
    pub fn into_signed(
        self,
        signature: Option<&ecdsa::Signature>,
    ) -> Result<Transaction, WitnessError> {
        let witness = self.witness(signature)?;
        let mut tx = self.tx;
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        Ok(tx)
    }
}

/// The sequence of inputs with no relative lock: replaceable, and non-final so a locktime
/// holds.
const NO_RELATIVE_LOCK: Sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;

/// The sequence of an HTLC claim from the countersignatory's side.
fn htlc_claim_sequence(channel_type: ChannelType) -> Sequence {
    if channel_type.has_anchors() {
        Sequence::from_consensus(u32::from(channel_type.htlc_csv()))
    } else {
        NO_RELATIVE_LOCK
    }
}

/// Spends the broadcaster's to_local output (or its HTLC transaction's output) after
/// `to_self_delay` blocks with the delayed key: input sequence = `to_self_delay`.
pub fn spend_delayed_to_local(
    outpoint: OutPoint,
    value: Sat,
    revocation: &RevocationPubkey,
    to_self_delay: u16,
    delayed: &DelayedPaymentPubkey,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        value,
        Sequence::from_height(to_self_delay),
        LockTime::ZERO,
        SpendPath::DelayedToLocal,
        to_local_witness_script(revocation, to_self_delay, delayed),
        destination,
        fee,
    )
}

/// Takes a revoked to_local output (or a revoked HTLC transaction's output) with the
/// revocation key.
pub fn spend_revoked_to_local(
    outpoint: OutPoint,
    value: Sat,
    revocation: &RevocationPubkey,
    to_self_delay: u16,
    delayed: &DelayedPaymentPubkey,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        value,
        NO_RELATIVE_LOCK,
        LockTime::ZERO,
        SpendPath::RevokedToLocal,
        to_local_witness_script(revocation, to_self_delay, delayed),
        destination,
        fee,
    )
}

/// On the counterparty's commitment (its keys in `keys`), claims an HTLC it offered with the
/// preimage.
pub fn claim_offered_htlc(
    channel_type: ChannelType,
    outpoint: OutPoint,
    htlc: &Htlc,
    keys: &CommitmentKeys,
    preimage: PaymentPreimage,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    if htlc.direction != HtlcDirection::Offered {
        return Err(SweepError::WrongHtlcDirection { expected: HtlcDirection::Offered });
    }
    if preimage.payment_hash() != htlc.payment_hash {
        return Err(SweepError::WrongPreimage);
    }
    SpendTemplate::new(
        outpoint,
        htlc.output_value(),
        htlc_claim_sequence(channel_type),
        LockTime::ZERO,
        SpendPath::OfferedHtlcWithPreimage { preimage },
        htlc.witness_script(channel_type, keys),
        destination,
        fee,
    )
}

/// On the counterparty's commitment (its keys in `keys`), reclaims an HTLC it received once
/// `cltv_expiry` is reached: locktime = `cltv_expiry`.
pub fn reclaim_received_htlc(
    channel_type: ChannelType,
    outpoint: OutPoint,
    htlc: &Htlc,
    keys: &CommitmentKeys,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    if htlc.direction != HtlcDirection::Received {
        return Err(SweepError::WrongHtlcDirection { expected: HtlcDirection::Received });
    }
    SpendTemplate::new(
        outpoint,
        htlc.output_value(),
        htlc_claim_sequence(channel_type),
        LockTime::from_consensus(htlc.cltv_expiry),
        SpendPath::ReceivedHtlcAfterTimeout,
        htlc.witness_script(channel_type, keys),
        destination,
        fee,
    )
}

/// Takes an HTLC output of a revoked commitment (its keys in `keys`) with the revocation key.
pub fn spend_revoked_htlc(
    channel_type: ChannelType,
    outpoint: OutPoint,
    htlc: &Htlc,
    keys: &CommitmentKeys,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        htlc.output_value(),
        NO_RELATIVE_LOCK,
        LockTime::ZERO,
        SpendPath::RevokedHtlc { revocation: keys.revocation },
        htlc.witness_script(channel_type, keys),
        destination,
        fee,
    )
}

/// Spends to_remote of an anchors commitment with the payment key, after its 1-block delay.
pub fn spend_to_remote_anchors(
    outpoint: OutPoint,
    value: Sat,
    payment: &PaymentBasepoint,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        value,
        Sequence::from_height(1),
        LockTime::ZERO,
        SpendPath::ToRemoteAnchors,
        to_remote_anchors_witness_script(payment),
        destination,
        fee,
    )
}

/// Spends an anchor with its funding key (to bump the commitment's fee, usually with wallet
/// inputs the caller adds).
pub fn spend_anchor(
    outpoint: OutPoint,
    funding: &FundingPubkey,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        ANCHOR_OUTPUT_VALUE,
        NO_RELATIVE_LOCK,
        LockTime::ZERO,
        SpendPath::Anchor,
        anchor_witness_script(funding),
        destination,
        fee,
    )
}

/// Sweeps an anchor after 16 blocks, without a signature (anyone can, once the funding key
/// has been revealed by a spend of the commitment's other outputs).
pub fn sweep_anchor_after_delay(
    outpoint: OutPoint,
    funding: &FundingPubkey,
    destination: ScriptBuf,
    fee: SpendFee,
) -> Result<SpendTemplate, SweepError> {
    SpendTemplate::new(
        outpoint,
        ANCHOR_OUTPUT_VALUE,
        Sequence::from_height(16),
        LockTime::ZERO,
        SpendPath::AnchorAfterDelay,
        anchor_witness_script(funding),
        destination,
        fee,
    )
}
