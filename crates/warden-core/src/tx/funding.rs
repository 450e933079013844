//! The funding output (BOLT-03 "Funding Transaction Output").
//!
//! The funding transaction itself is built and signed by the node's wallet; what the channel
//! depends on is its one P2WSH 2-of-2 output. This module builds that output and finds it in a
//! funding transaction.

use core::fmt;

use bitcoin::{ScriptBuf, Transaction, TxOut};

pub use super::scripts::funding_witness_script;
use crate::keys::roles::FundingPubkey;
use crate::units::Sat;

/// The funding output's scriptPubKey: P2WSH of [`funding_witness_script`].
pub fn funding_script_pubkey(a: &FundingPubkey, b: &FundingPubkey) -> ScriptBuf {
    funding_witness_script(a, b).to_p2wsh()
}

/// The funding output paying `value` to the 2-of-2 of `a` and `b`.
pub fn funding_output(value: Sat, a: &FundingPubkey, b: &FundingPubkey) -> TxOut {
    TxOut { value: value.to_amount(), script_pubkey: funding_script_pubkey(a, b) }
}

/// Why a transaction does not hold exactly one matching funding output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FundingOutputError {
    /// No output pays the funding script with the expected value.
    NotFound,
    /// More than one output matches (the first two indexes are given).
    Ambiguous {
        /// The first matching output.
        first: u32,
        /// The second matching output.
        second: u32,
    },
}

impl fmt::Display for FundingOutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FundingOutputError::NotFound => f.write_str("no output pays the funding script"),
            FundingOutputError::Ambiguous { first, second } => {
                write!(f, "outputs {first} and {second} both pay the funding script")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FundingOutputError {}

/// Returns the index of the one output of `tx` paying `value` to the funding script of `a`
/// and `b`.
pub fn find_funding_output(
    tx: &Transaction,
    value: Sat,
    a: &FundingPubkey,
    b: &FundingPubkey,
) -> Result<u32, FundingOutputError> {
    let expected = funding_output(value, a, b);
    let mut found: Option<u32> = None;
    for (index, out) in tx.output.iter().enumerate() {
        if *out != expected {
            continue;
        }
        // An output index above u32::MAX cannot be spent; treat it as absent.
        let Ok(index) = u32::try_from(index) else { continue };
        match found {
            None => found = Some(index),
            Some(first) => return Err(FundingOutputError::Ambiguous { first, second: index }),
        }
    }
    found.ok_or(FundingOutputError::NotFound)
}
