//! The mutual close transaction (BOLT-03 "Closing Transaction").
//!
//! Version 2, one input spending the funding outpoint with sequence `0xFFFFFFFF`, locktime 0
//! (or the one given), and up to two outputs, each side's agreed scriptPubKey and value, in
//! BIP-69 order; an output below the dust limit is omitted. The fee is whatever the outputs
//! leave of the funding value; the two sides agreed on it in `closing_signed`.

use alloc::vec::Vec;
use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::transaction::Version;
use bitcoin::{OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use secp256k1::Message;

use super::scripts::funding_witness_script;
use super::sighash::{commitment_sighash, SighashError};
use crate::keys::roles::FundingPubkey;
use crate::units::Sat;

/// One side's output of a closing transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosingOutput {
    /// The scriptPubKey the side gave in `shutdown`.
    pub script_pubkey: ScriptBuf,
    /// The side's amount after its share of the fee.
    pub value: Sat,
}

/// Everything that determines a mutual close transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClosingSpec {
    /// The funding outpoint.
    pub funding_outpoint: OutPoint,
    /// The funding value.
    pub funding_value: Sat,
    /// The holder's output.
    pub holder: ClosingOutput,
    /// The counterparty's output.
    pub counterparty: ClosingOutput,
    /// The dust limit below which an output is omitted.
    pub dust_limit: Sat,
    /// The locktime (0 unless both sides agreed otherwise).
    pub lock_time: LockTime,
}

/// Why a closing transaction cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosingError {
    /// The two outputs add up to more than the funding value.
    OutputsExceedFunding {
        /// The sum of the outputs.
        outputs: Sat,
        /// The funding value.
        funding: Sat,
    },
    /// Both outputs are below the dust limit: the transaction would have no output.
    NoOutput,
}

impl fmt::Display for ClosingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosingError::OutputsExceedFunding { outputs, funding } => {
                write!(
                    f,
                    "closing outputs add up to {outputs}, more than the funding value of {funding}"
                )
            }
            ClosingError::NoOutput => f.write_str("both closing outputs are below the dust limit"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ClosingError {}

/// An unsigned closing transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltClosing {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// The holder's output index, if it was not omitted.
    pub holder_output: Option<u32>,
    /// The counterparty's output index, if it was not omitted.
    pub counterparty_output: Option<u32>,
    /// The fee: the funding value minus the outputs (omitted dust included).
    pub fee: Sat,
}

/// Builds the unsigned mutual close transaction of `spec`.
pub fn build_closing_tx(spec: &ClosingSpec) -> Result<BuiltClosing, ClosingError> {
    let sum = spec.holder.value.checked_add(spec.counterparty.value);
    let fee = sum.and_then(|s| spec.funding_value.checked_sub(s)).ok_or(
        ClosingError::OutputsExceedFunding {
            outputs: Sat(spec.holder.value.0.saturating_add(spec.counterparty.value.0)),
            funding: spec.funding_value,
        },
    )?;
    let mut outputs: Vec<(bool, &ClosingOutput)> =
        [(true, &spec.holder), (false, &spec.counterparty)]
            .into_iter()
            .filter(|(_, o)| o.value >= spec.dust_limit)
            .collect();
    if outputs.is_empty() {
        return Err(ClosingError::NoOutput);
    }
    outputs.sort_by(|(_, a), (_, b)| {
        a.value
            .cmp(&b.value)
            .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
    });
    let index_of = |holder: bool| {
        outputs.iter().position(|(h, _)| *h == holder).and_then(|i| u32::try_from(i).ok())
    };
    let holder_output = index_of(true);
    let counterparty_output = index_of(false);
    let tx = Transaction {
        version: Version::TWO,
        lock_time: spec.lock_time,
        input: alloc::vec![TxIn {
            previous_output: spec.funding_outpoint,
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: outputs
            .iter()
            .map(|(_, o)| TxOut {
                value: o.value.to_amount(),
                script_pubkey: o.script_pubkey.clone(),
            })
            .collect(),
    };
    Ok(BuiltClosing { tx, holder_output, counterparty_output, fee })
}

impl BuiltClosing {
    /// The sighash both sides sign (input 0, `SIGHASH_ALL`, funding script and value).
    pub fn sighash(
        &self,
        funding_value: Sat,
        a: &FundingPubkey,
        b: &FundingPubkey,
    ) -> Result<Message, SighashError> {
        commitment_sighash(&self.tx, &funding_witness_script(a, b), funding_value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::hashes::Hash;

    fn spec(holder: u64, counterparty: u64) -> ClosingSpec {
        ClosingSpec {
            funding_outpoint: OutPoint { txid: bitcoin::Txid::all_zeros(), vout: 0 },
            funding_value: Sat(10_000),
            holder: ClosingOutput {
                script_pubkey: ScriptBuf::from_bytes(alloc::vec![0x51]),
                value: Sat(holder),
            },
            counterparty: ClosingOutput {
                script_pubkey: ScriptBuf::from_bytes(alloc::vec![0x52]),
                value: Sat(counterparty),
            },
            dust_limit: Sat(546),
            lock_time: LockTime::ZERO,
        }
    }

    #[test]
    fn orders_outputs_and_omits_dust() {
        let built = build_closing_tx(&spec(6000, 3000)).unwrap();
        assert_eq!(built.holder_output, Some(1));
        assert_eq!(built.counterparty_output, Some(0));
        assert_eq!(built.fee, Sat(1000));
        assert_eq!(built.tx.input[0].sequence, Sequence::MAX);
        assert_eq!(built.tx.version, Version::TWO);

        let built = build_closing_tx(&spec(9000, 545)).unwrap();
        assert_eq!((built.holder_output, built.counterparty_output), (Some(0), None));
        assert_eq!(built.tx.output.len(), 1);
        assert_eq!(built.fee, Sat(455));

        // Equal values: the scriptPubKey decides.
        let built = build_closing_tx(&spec(4000, 4000)).unwrap();
        assert_eq!((built.holder_output, built.counterparty_output), (Some(0), Some(1)));
    }

    #[test]
    fn refuses_impossible_closes() {
        assert_eq!(
            build_closing_tx(&spec(9000, 2000)),
            Err(ClosingError::OutputsExceedFunding { outputs: Sat(11_000), funding: Sat(10_000) })
        );
        assert_eq!(build_closing_tx(&spec(100, 100)), Err(ClosingError::NoOutput));
    }
}
