//! BIP-0143 sighashes and the witnesses of multi-signature spends.
//!
//! Every channel output is P2WSH, so one sighash function covers them all: the commitment's
//! funding input (`SIGHASH_ALL`, witness script = funding script, value = funding value), HTLC
//! transaction inputs (`SIGHASH_ALL`, or `SIGHASH_SINGLE|ANYONECANPAY` for the
//! countersignatory with anchors) and the sweep templates.

use core::fmt;

use bitcoin::hashes::Hash;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{ecdsa, Script, Transaction, Witness};
use secp256k1::Message;

use super::scripts::{funding_witness_script, sorted_funding_keys};
use super::ChannelType;
use crate::keys::roles::FundingPubkey;
use crate::units::Sat;

/// A sighash asked for an input the transaction does not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SighashError {
    /// The input index asked for.
    pub index: usize,
    /// The number of inputs of the transaction.
    pub inputs: usize,
}

impl fmt::Display for SighashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no input {} to sign in a transaction with {} inputs", self.index, self.inputs)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SighashError {}

/// The BIP-0143 sighash of P2WSH input `input_index` of `tx`, spending `value` locked by
/// `witness_script`.
pub fn p2wsh_sighash(
    tx: &Transaction,
    input_index: usize,
    witness_script: &Script,
    value: Sat,
    sighash_type: EcdsaSighashType,
) -> Result<Message, SighashError> {
    let mut cache = SighashCache::new(tx);
    let sighash = cache
        .p2wsh_signature_hash(input_index, witness_script, value.to_amount(), sighash_type)
        .map_err(|_| SighashError { index: input_index, inputs: tx.input.len() })?;
    Ok(Message::from_digest(sighash.to_byte_array()))
}

/// The sighash both sides sign for a commitment (or closing) transaction: input 0,
/// `SIGHASH_ALL`, the funding witness script and the funding value (BOLT-03).
pub fn commitment_sighash(
    tx: &Transaction,
    funding_witness_script: &Script,
    funding_value: Sat,
) -> Result<Message, SighashError> {
    p2wsh_sighash(tx, 0, funding_witness_script, funding_value, EcdsaSighashType::All)
}

/// The sighash type of the countersignatory's signature on an HTLC transaction:
/// `SIGHASH_ALL`, or `SIGHASH_SINGLE|ANYONECANPAY` with anchors (BOLT-03, so the broadcaster
/// can add inputs and outputs to pay the fee). The broadcaster always signs `SIGHASH_ALL`.
pub fn countersignatory_htlc_sighash_type(channel_type: ChannelType) -> EcdsaSighashType {
    if channel_type.zero_fee_htlcs() {
        EcdsaSighashType::SinglePlusAnyoneCanPay
    } else {
        EcdsaSighashType::All
    }
}

/// The witness of a funding-output spend: `0 <sig1> <sig2> <funding_witness_script>`, with
/// the signatures in the order of the keys in the script (BOLT-03 "Funding Transaction
/// Output"). Each signature is passed with the funding key that made it.
pub fn commitment_witness(
    key_a: &FundingPubkey,
    sig_a: &ecdsa::Signature,
    key_b: &FundingPubkey,
    sig_b: &ecdsa::Signature,
) -> Witness {
    let (first, _) = sorted_funding_keys(key_a, key_b);
    let (sig1, sig2) = if first == key_a { (sig_a, sig_b) } else { (sig_b, sig_a) };
    let mut witness = Witness::new();
    witness.push([]);
    witness.push_ecdsa_signature(sig1);
    witness.push_ecdsa_signature(sig2);
    witness.push(funding_witness_script(key_a, key_b).as_bytes());
    witness
}
