//! Checking a node-supplied transaction against the one Warden builds.
//!
//! The node asks Warden to sign a transaction it built. Warden does not parse meaning out of
//! it; it rebuilds the transaction from the channel state it holds ([`CommitmentSpec`]) and
//! compares field by field, in serialization order, reporting the first difference
//! ([`TxMismatch`]). When they agree, [`verify_commitment`] returns what the transaction
//! means ([`CommitmentInfo`]): the commitment number decoded from its locktime and sequence,
//! the balances and outputs, the HTLCs and their output indexes, the feerate and the fee.
//!
//! Witnesses are not compared: the supplied transaction is unsigned, or its signatures are
//! checked separately. A non-empty scriptSig is a difference (every channel input is segwit).

use alloc::vec::Vec;
use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, TxOut};

use super::commitment::{
    BuiltCommitment, CommitmentError, CommitmentOutputKind, CommitmentSpec, ObscuringFactor,
};
use super::htlc::Htlc;
use crate::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// Why a commitment number cannot be read from a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeCommitmentNumberError {
    /// A commitment has exactly one input.
    InputCount(usize),
    /// The locktime's top byte is not `0x20` or the sequence's is not `0x80`.
    NotACommitment {
        /// The transaction's locktime.
        lock_time: u32,
        /// The input's sequence.
        sequence: u32,
    },
}

impl fmt::Display for DecodeCommitmentNumberError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeCommitmentNumberError::InputCount(n) => {
                write!(f, "a commitment has one input, not {n}")
            }
            DecodeCommitmentNumberError::NotACommitment { lock_time, sequence } => write!(
                f,
                "locktime {lock_time:#010x} and sequence {sequence:#010x} do not encode a commitment number"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for DecodeCommitmentNumberError {}

/// The commitment number a commitment transaction encodes in its locktime and sequence,
/// under the channel's `obscuring_factor` (BOLT-03 "Commitment Transaction").
pub fn decode_commitment_number(
    tx: &Transaction,
    obscuring_factor: ObscuringFactor,
) -> Result<CommitmentNumber, DecodeCommitmentNumberError> {
    let [input] = tx.input.as_slice() else {
        return Err(DecodeCommitmentNumberError::InputCount(tx.input.len()));
    };
    obscuring_factor.decode(tx.lock_time, input.sequence).ok_or(
        DecodeCommitmentNumberError::NotACommitment {
            lock_time: tx.lock_time.to_consensus_u32(),
            sequence: input.sequence.to_consensus_u32(),
        },
    )
}

/// The first difference between an expected and a supplied transaction, in serialization
/// order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxMismatch {
    /// The version differs.
    Version {
        /// The version Warden built.
        expected: Version,
        /// The supplied version.
        got: Version,
    },
    /// The number of inputs differs.
    InputCount {
        /// The number Warden built.
        expected: usize,
        /// The supplied number.
        got: usize,
    },
    /// An input spends another outpoint.
    Input {
        /// The input's index.
        index: usize,
        /// The outpoint Warden built.
        expected: OutPoint,
        /// The supplied outpoint.
        got: OutPoint,
    },
    /// An input has a scriptSig.
    ScriptSig {
        /// The input's index.
        index: usize,
        /// The supplied scriptSig.
        got: ScriptBuf,
    },
    /// An input's sequence differs.
    Sequence {
        /// The input's index.
        index: usize,
        /// The sequence Warden built.
        expected: Sequence,
        /// The supplied sequence.
        got: Sequence,
    },
    /// The number of outputs differs.
    OutputCount {
        /// The number Warden built.
        expected: usize,
        /// The supplied number.
        got: usize,
    },
    /// An output differs (value or scriptPubKey; a reordering shows here too).
    Output {
        /// The output's index.
        index: usize,
        /// The output Warden built.
        expected: TxOut,
        /// The supplied output.
        got: TxOut,
    },
    /// The locktime differs.
    LockTime {
        /// The locktime Warden built.
        expected: LockTime,
        /// The supplied locktime.
        got: LockTime,
    },
}

impl fmt::Display for TxMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxMismatch::Version { expected, got } => {
                write!(f, "version is {got}, expected {expected}")
            }
            TxMismatch::InputCount { expected, got } => {
                write!(f, "{got} inputs, expected {expected}")
            }
            TxMismatch::Input { index, expected, got } => {
                write!(f, "input {index} spends {got}, expected {expected}")
            }
            TxMismatch::ScriptSig { index, got } => {
                write!(f, "input {index} has scriptSig {got}, expected none")
            }
            TxMismatch::Sequence { index, expected, got } => write!(
                f,
                "input {index} sequence is {:#010x}, expected {:#010x}",
                got.to_consensus_u32(),
                expected.to_consensus_u32()
            ),
            TxMismatch::OutputCount { expected, got } => {
                write!(f, "{got} outputs, expected {expected}")
            }
            TxMismatch::Output { index, expected, got } => write!(
                f,
                "output {index} pays {} sat to {}, expected {} sat to {}",
                got.value.to_sat(),
                got.script_pubkey,
                expected.value.to_sat(),
                expected.script_pubkey
            ),
            TxMismatch::LockTime { expected, got } => write!(
                f,
                "locktime is {:#010x}, expected {:#010x}",
                got.to_consensus_u32(),
                expected.to_consensus_u32()
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for TxMismatch {}

/// Compares a supplied transaction with the expected one, ignoring witnesses, and names the
/// first difference.
pub fn verify_tx(expected: &Transaction, got: &Transaction) -> Result<(), TxMismatch> {
    if expected.version != got.version {
        return Err(TxMismatch::Version { expected: expected.version, got: got.version });
    }
    if expected.input.len() != got.input.len() {
        return Err(TxMismatch::InputCount {
            expected: expected.input.len(),
            got: got.input.len(),
        });
    }
    for (index, (e, g)) in expected.input.iter().zip(&got.input).enumerate() {
        if e.previous_output != g.previous_output {
            return Err(TxMismatch::Input {
                index,
                expected: e.previous_output,
                got: g.previous_output,
            });
        }
        if e.script_sig != g.script_sig {
            return Err(TxMismatch::ScriptSig { index, got: g.script_sig.clone() });
        }
        if e.sequence != g.sequence {
            return Err(TxMismatch::Sequence { index, expected: e.sequence, got: g.sequence });
        }
    }
    if expected.output.len() != got.output.len() {
        return Err(TxMismatch::OutputCount {
            expected: expected.output.len(),
            got: got.output.len(),
        });
    }
    for (index, (e, g)) in expected.output.iter().zip(&got.output).enumerate() {
        if e != g {
            return Err(TxMismatch::Output { index, expected: e.clone(), got: g.clone() });
        }
    }
    if expected.lock_time != got.lock_time {
        return Err(TxMismatch::LockTime { expected: expected.lock_time, got: got.lock_time });
    }
    Ok(())
}

/// Why a supplied commitment is not the one Warden builds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// Warden's own channel state does not make a commitment.
    Build(CommitmentError),
    /// The supplied transaction differs from the one Warden built.
    Mismatch(TxMismatch),
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Build(_) => f.write_str("cannot build the expected commitment"),
            VerifyError::Mismatch(_) => f.write_str("the commitment differs from the expected one"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for VerifyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            VerifyError::Build(e) => Some(e),
            VerifyError::Mismatch(e) => Some(e),
        }
    }
}

impl From<CommitmentError> for VerifyError {
    fn from(e: CommitmentError) -> VerifyError {
        VerifyError::Build(e)
    }
}

impl From<TxMismatch> for VerifyError {
    fn from(e: TxMismatch) -> VerifyError {
        VerifyError::Mismatch(e)
    }
}

/// An HTLC of a verified commitment and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtlcInfo {
    /// The HTLC.
    pub htlc: Htlc,
    /// Its output index, or `None` when trimmed.
    pub output_index: Option<u32>,
}

/// What a verified commitment transaction means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentInfo {
    /// The commitment number, decoded from the supplied locktime and sequence.
    pub commitment_number: CommitmentNumber,
    /// The feerate.
    pub feerate: FeeratePerKw,
    /// The base fee the opener owed (`feerate * weight / 1000`).
    pub base_fee: Sat,
    /// The fee the transaction pays (funding value minus outputs).
    pub fee: Sat,
    /// The broadcaster's balance before fee and anchors.
    pub to_broadcaster_balance: Msat,
    /// The countersignatory's balance before fee and anchors.
    pub to_countersignatory_balance: Msat,
    /// The broadcaster's output (index, value), if not trimmed.
    pub to_broadcaster: Option<(u32, Sat)>,
    /// The countersignatory's output (index, value), if not trimmed.
    pub to_countersignatory: Option<(u32, Sat)>,
    /// The anchors' output indexes (broadcaster's, countersignatory's).
    pub anchors: (Option<u32>, Option<u32>),
    /// The HTLCs, in the spec's order.
    pub htlcs: Vec<HtlcInfo>,
    /// The rebuilt commitment (for signing it and its HTLC transactions).
    pub built: BuiltCommitment,
}

/// Rebuilds the commitment of `spec` and checks that `tx` is that transaction (witnesses
/// ignored); returns what it means.
pub fn verify_commitment(
    spec: &CommitmentSpec,
    tx: &Transaction,
) -> Result<CommitmentInfo, VerifyError> {
    let built = spec.build()?;
    verify_tx(&built.tx, tx)?;
    // The locktime and sequence equal the ones built from `spec.commitment_number`.
    let commitment_number =
        decode_commitment_number(tx, spec.obscuring_factor).unwrap_or(spec.commitment_number);
    let output = |kind| built.output(kind).map(|(i, o)| (i, o.value));
    let index = |kind| built.output(kind).map(|(i, _)| i);
    let htlcs = spec
        .htlcs
        .iter()
        .zip(&built.htlc_output_indexes)
        .map(|(htlc, output_index)| HtlcInfo { htlc: *htlc, output_index: *output_index })
        .collect();
    Ok(CommitmentInfo {
        commitment_number,
        feerate: spec.feerate,
        base_fee: built.base_fee,
        fee: built.actual_fee(),
        to_broadcaster_balance: spec.to_broadcaster,
        to_countersignatory_balance: spec.to_countersignatory,
        to_broadcaster: output(CommitmentOutputKind::ToBroadcaster),
        to_countersignatory: output(CommitmentOutputKind::ToCountersignatory),
        anchors: (
            index(CommitmentOutputKind::BroadcasterAnchor),
            index(CommitmentOutputKind::CountersignatoryAnchor),
        ),
        htlcs,
        built,
    })
}
