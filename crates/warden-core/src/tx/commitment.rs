//! The commitment transaction (BOLT-03 "Commitment Transaction").
//!
//! [`CommitmentSpec`] holds everything that determines one commitment: the funding input, the
//! commitment number and its obscuring factor, the keys, the broadcaster's dust limit and
//! `to_self_delay`, the feerate, both balances (before fee and anchors) and the HTLCs.
//! [`CommitmentSpec::build`] follows BOLT-03 "Commitment Transaction Construction" step by
//! step and returns the unsigned transaction with what each output is
//! ([`BuiltCommitment`]).
//!
//! The construction:
//! 1. one input spending the funding outpoint; locktime `0x20 << 24 | lower 24 bits` and
//!    sequence `0x80 << 24 | upper 24 bits` of the obscured commitment number;
//! 2. HTLCs whose amount minus their second-stage fee is below the dust limit are trimmed;
//! 3. the fee is `feerate * (724 + 172 * untrimmed) / 1000` (1124 with anchors);
//! 4. the opener pays the fee (and 2 × 330 sat of anchors), with a floor of zero;
//! 5. untrimmed HTLC outputs, then to_local and to_remote when at or above the dust limit;
//! 6. with anchors, each side's anchor when its main output exists or any HTLC is untrimmed;
//! 7. outputs in BIP-69 order (value, then scriptPubKey), identical HTLC outputs by
//!    `cltv_expiry`.

use alloc::vec::Vec;
use core::fmt;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::{ecdsa, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness};
use secp256k1::Message;

use super::commitment_keys::CommitmentKeys;
use super::htlc::{build_htlc_tx, Htlc, HtlcTx, HtlcTxError};
use super::scripts::shared_anchor_script_pubkey;
use super::scripts::{
    anchor_witness_script, funding_witness_script, to_local_witness_script,
    to_remote_anchors_witness_script, to_remote_p2wpkh_script_pubkey,
};
use super::sighash::{commitment_sighash, commitment_witness, SighashError};
use super::{ChannelType, ANCHOR_OUTPUT_VALUE, SHARED_ANCHOR_MAX_VALUE};
use crate::keys::roles::{FundingPubkey, PaymentBasepoint};
use crate::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// The 48-bit factor XORed into commitment numbers before they are written into a
/// commitment's locktime and sequence (BOLT-03 "Commitment Transaction").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ObscuringFactor(u64);

/// The top byte of a commitment's locktime.
const LOCKTIME_MARKER: u32 = 0x20 << 24;
/// The top byte of a commitment input's sequence.
const SEQUENCE_MARKER: u32 = 0x80 << 24;
/// The lower 24 bits.
const LOW_24: u64 = 0x00ff_ffff;

impl ObscuringFactor {
    /// The bits an obscuring factor keeps.
    pub const MASK: u64 = (1 << 48) - 1;

    /// An obscuring factor from its value; bits above the lower 48 are dropped.
    pub fn new(value: u64) -> ObscuringFactor {
        ObscuringFactor(value & Self::MASK)
    }

    /// The lower 48 bits of `SHA256(payment_basepoint from open_channel ||
    /// payment_basepoint from accept_channel)`.
    pub fn from_payment_basepoints(
        opener: &PaymentBasepoint,
        accepter: &PaymentBasepoint,
    ) -> ObscuringFactor {
        let mut engine = sha256::Hash::engine();
        engine.input(&opener.serialize());
        engine.input(&accepter.serialize());
        let hash = sha256::Hash::from_engine(engine).to_byte_array();
        let mut low = [0u8; 8];
        if let (Some(dst), Some(src)) = (low.get_mut(2..), hash.get(26..)) {
            dst.copy_from_slice(src);
        }
        ObscuringFactor::new(u64::from_be_bytes(low))
    }

    /// The factor's value (below 2^48).
    pub fn get(self) -> u64 {
        self.0
    }

    /// The obscured commitment number: `commitment_number XOR factor`.
    pub fn obscure(self, n: CommitmentNumber) -> u64 {
        n.get() ^ self.0
    }

    /// The commitment's locktime and its input's sequence for commitment number `n`.
    pub fn lock_time_and_sequence(self, n: CommitmentNumber) -> (LockTime, Sequence) {
        let obscured = self.obscure(n);
        // Both halves are masked to 24 bits, so the conversions cannot fail.
        let low = u32::try_from(obscured & LOW_24).unwrap_or(0);
        let high = u32::try_from((obscured >> 24) & LOW_24).unwrap_or(0);
        (
            LockTime::from_consensus(LOCKTIME_MARKER | low),
            Sequence::from_consensus(SEQUENCE_MARKER | high),
        )
    }

    /// Recovers the commitment number from a commitment's locktime and sequence, or `None`
    /// when their top bytes are not `0x20` and `0x80`.
    pub fn decode(self, lock_time: LockTime, sequence: Sequence) -> Option<CommitmentNumber> {
        let lock_time = lock_time.to_consensus_u32();
        let sequence = sequence.to_consensus_u32();
        if lock_time & 0xff00_0000 != LOCKTIME_MARKER || sequence & 0xff00_0000 != SEQUENCE_MARKER {
            return None;
        }
        let obscured = (u64::from(sequence) & LOW_24) << 24 | (u64::from(lock_time) & LOW_24);
        CommitmentNumber::new(obscured ^ self.0).ok()
    }
}

/// One side of a commitment transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Party {
    /// The side whose commitment it is (it can broadcast it; "local" in BOLT-03).
    Broadcaster,
    /// The other side, whose signature the broadcaster holds ("remote" in BOLT-03).
    Countersignatory,
}

/// Everything that determines one commitment transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentSpec {
    /// The channel type.
    pub channel_type: ChannelType,
    /// The funding outpoint the commitment spends.
    pub funding_outpoint: OutPoint,
    /// The funding output's value.
    pub funding_value: Sat,
    /// The broadcaster's funding key (also its anchor key).
    pub broadcaster_funding_pubkey: FundingPubkey,
    /// The countersignatory's funding key (also its anchor key).
    pub countersignatory_funding_pubkey: FundingPubkey,
    /// The channel's obscuring factor.
    pub obscuring_factor: ObscuringFactor,
    /// The commitment number.
    pub commitment_number: CommitmentNumber,
    /// The keys of this commitment.
    pub keys: CommitmentKeys,
    /// The CSV delay on the broadcaster's to_local and HTLC-transaction outputs (set by the
    /// countersignatory).
    pub to_self_delay: u16,
    /// The broadcaster's dust limit.
    pub dust_limit: Sat,
    /// The feerate of the commitment and of its HTLC transactions.
    pub feerate: FeeratePerKw,
    /// Which side opened the channel (and pays the fee and the anchors).
    pub opener: Party,
    /// The broadcaster's balance before fee and anchors (HTLCs not included).
    pub to_broadcaster: Msat,
    /// The countersignatory's balance before fee and anchors (HTLCs not included).
    pub to_countersignatory: Msat,
    /// The HTLCs in flight, directions from the broadcaster's view.
    pub htlcs: Vec<Htlc>,
}

/// Why a commitment cannot be built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitmentError {
    /// An amount or weight computation overflowed.
    Overflow,
    /// The balances and HTLCs do not add up to the funding value.
    ValueNotConserved {
        /// The funding value.
        funding: Msat,
        /// Both balances plus every HTLC.
        committed: Msat,
    },
    /// The outputs (anchors included) add up to more than the funding value: the opener
    /// cannot pay for the anchors.
    OutputsExceedFunding {
        /// The sum of the outputs.
        outputs: Sat,
        /// The funding value.
        funding: Sat,
    },
}

impl fmt::Display for CommitmentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitmentError::Overflow => f.write_str("commitment amounts overflow"),
            CommitmentError::ValueNotConserved { funding, committed } => write!(
                f,
                "balances and htlcs add up to {committed}, not the funding value of {funding}"
            ),
            CommitmentError::OutputsExceedFunding { outputs, funding } => {
                write!(f, "outputs add up to {outputs}, more than the funding value of {funding}")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for CommitmentError {}

/// What an output of a commitment transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommitmentOutputKind {
    /// The broadcaster's balance (to_local, delayed and revocable).
    ToBroadcaster,
    /// The countersignatory's balance (to_remote).
    ToCountersignatory,
    /// The broadcaster's anchor.
    BroadcasterAnchor,
    /// The countersignatory's anchor.
    CountersignatoryAnchor,
    /// The shared pay-to-anchor output of a zero-fee commitment.
    SharedAnchor,
    /// An HTLC.
    Htlc {
        /// The HTLC's index in [`CommitmentSpec::htlcs`].
        index: usize,
        /// The HTLC.
        htlc: Htlc,
    },
}

/// One output of a built commitment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitmentOutput {
    /// What the output is.
    pub kind: CommitmentOutputKind,
    /// Its value.
    pub value: Sat,
    /// The witness script of a P2WSH output (`None` for the P2WPKH to_remote).
    pub witness_script: Option<ScriptBuf>,
    /// For HTLC outputs, the CLTV expiry (the BIP-69 tie-break); zero otherwise.
    cltv_expiry: u32,
    /// The scriptPubKey.
    script_pubkey: ScriptBuf,
}

/// An unsigned commitment transaction and what its outputs are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltCommitment {
    /// The unsigned transaction.
    pub tx: Transaction,
    /// The outputs, in transaction order.
    pub outputs: Vec<CommitmentOutput>,
    /// For each HTLC of the spec (same order), its output index, or `None` when trimmed.
    pub htlc_output_indexes: Vec<Option<u32>>,
    /// The base fee the opener owed: `feerate * weight / 1000`. The actual fee
    /// ([`BuiltCommitment::actual_fee`]) also includes trimmed amounts.
    pub base_fee: Sat,
    /// The funding output's witness script.
    pub funding_witness_script: ScriptBuf,
    /// The funding value.
    pub funding_value: Sat,
    /// The channel type.
    pub channel_type: ChannelType,
    /// The feerate (for the HTLC transactions).
    pub feerate: FeeratePerKw,
    /// The broadcaster's `to_self_delay` (for the HTLC transactions).
    pub to_self_delay: u16,
    /// The commitment's keys.
    pub keys: CommitmentKeys,
    /// The broadcaster's funding key.
    pub broadcaster_funding_pubkey: FundingPubkey,
    /// The countersignatory's funding key.
    pub countersignatory_funding_pubkey: FundingPubkey,
}

impl CommitmentSpec {
    /// Checks that both balances plus every HTLC equal the funding value.
    fn check_value_conserved(&self) -> Result<(), CommitmentError> {
        let funding = self.funding_value.to_msat().ok_or(CommitmentError::Overflow)?;
        let mut committed = self
            .to_broadcaster
            .checked_add(self.to_countersignatory)
            .ok_or(CommitmentError::Overflow)?;
        for htlc in &self.htlcs {
            committed = committed.checked_add(htlc.amount).ok_or(CommitmentError::Overflow)?;
        }
        if committed == funding {
            Ok(())
        } else {
            Err(CommitmentError::ValueNotConserved { funding, committed })
        }
    }

    /// The base fee for `untrimmed` HTLC outputs (BOLT-03 "Fee Calculation").
    pub fn base_fee(&self, untrimmed: usize) -> Result<Sat, CommitmentError> {
        let untrimmed = u64::try_from(untrimmed).map_err(|_| CommitmentError::Overflow)?;
        let weight = self
            .channel_type
            .commitment_weight_per_htlc()
            .checked_mul(untrimmed)
            .and_then(|w| w.checked_add(self.channel_type.commitment_base_weight()))
            .ok_or(CommitmentError::Overflow)?;
        let fee = u64::from(self.feerate.0).checked_mul(weight).ok_or(CommitmentError::Overflow)?;
        Ok(Sat(fee / 1000))
    }

    /// Whether `htlc` is trimmed on this commitment.
    fn is_trimmed(&self, htlc: &Htlc) -> bool {
        htlc.is_trimmed(self.channel_type, self.feerate, self.dust_limit)
    }

    /// The to_local output's witness script.
    fn to_local_witness_script(&self) -> ScriptBuf {
        to_local_witness_script(
            &self.keys.revocation,
            self.to_self_delay,
            &self.keys.broadcaster_delayed_payment,
        )
    }

    /// The to_remote output: its scriptPubKey and witness script (none for P2WPKH).
    fn to_remote_scripts(&self) -> (ScriptBuf, Option<ScriptBuf>) {
        let payment = &self.keys.countersignatory_payment;
        if self.channel_type.has_anchors() {
            let script = to_remote_anchors_witness_script(payment);
            (script.to_p2wsh(), Some(script))
        } else {
            (to_remote_p2wpkh_script_pubkey(payment), None)
        }
    }

    /// The balances after the opener paid `fee` and the anchors, floored at zero
    /// (broadcaster, countersignatory).
    fn balances_after_fee(&self, fee: Sat) -> Result<(Msat, Msat), CommitmentError> {
        let mut charge = fee.to_msat().ok_or(CommitmentError::Overflow)?;
        if self.channel_type.has_anchors() {
            let anchors =
                Sat(ANCHOR_OUTPUT_VALUE.0 * 2).to_msat().ok_or(CommitmentError::Overflow)?;
            charge = charge.checked_add(anchors).ok_or(CommitmentError::Overflow)?;
        }
        let pay = |balance: Msat| balance.checked_sub(charge).unwrap_or(Msat::ZERO);
        Ok(match self.opener {
            Party::Broadcaster => (pay(self.to_broadcaster), self.to_countersignatory),
            Party::Countersignatory => (self.to_broadcaster, pay(self.to_countersignatory)),
        })
    }

    /// Builds the unsigned commitment transaction (BOLT-03 "Commitment Transaction
    /// Construction").
    pub fn build(&self) -> Result<BuiltCommitment, CommitmentError> {
        self.check_value_conserved()?;
        let untrimmed = self.htlcs.iter().filter(|h| !self.is_trimmed(h)).count();
        let base_fee = self.base_fee(untrimmed)?;
        let (to_broadcaster, to_countersignatory) = self.balances_after_fee(base_fee)?;

        let mut outputs: Vec<CommitmentOutput> = Vec::with_capacity(untrimmed + 4);
        for (index, htlc) in self.htlcs.iter().enumerate() {
            if self.is_trimmed(htlc) {
                continue;
            }
            let script = htlc.witness_script(self.channel_type, &self.keys);
            outputs.push(CommitmentOutput {
                kind: CommitmentOutputKind::Htlc { index, htlc: *htlc },
                value: htlc.output_value(),
                script_pubkey: script.to_p2wsh(),
                witness_script: Some(script),
                cltv_expiry: htlc.cltv_expiry,
            });
        }
        let to_broadcaster = to_broadcaster.to_sat_floor();
        let has_to_broadcaster = to_broadcaster >= self.dust_limit;
        if has_to_broadcaster {
            let script = self.to_local_witness_script();
            outputs.push(CommitmentOutput {
                kind: CommitmentOutputKind::ToBroadcaster,
                value: to_broadcaster,
                script_pubkey: script.to_p2wsh(),
                witness_script: Some(script),
                cltv_expiry: 0,
            });
        }
        let to_countersignatory = to_countersignatory.to_sat_floor();
        let has_to_countersignatory = to_countersignatory >= self.dust_limit;
        if has_to_countersignatory {
            let (script_pubkey, witness_script) = self.to_remote_scripts();
            outputs.push(CommitmentOutput {
                kind: CommitmentOutputKind::ToCountersignatory,
                value: to_countersignatory,
                script_pubkey,
                witness_script,
                cltv_expiry: 0,
            });
        }
        if self.channel_type.has_anchors() {
            let anchors = [
                (
                    has_to_broadcaster,
                    CommitmentOutputKind::BroadcasterAnchor,
                    &self.broadcaster_funding_pubkey,
                ),
                (
                    has_to_countersignatory,
                    CommitmentOutputKind::CountersignatoryAnchor,
                    &self.countersignatory_funding_pubkey,
                ),
            ];
            for (has_main_output, kind, key) in anchors {
                if has_main_output || untrimmed > 0 {
                    let script = anchor_witness_script(key);
                    outputs.push(CommitmentOutput {
                        kind,
                        value: ANCHOR_OUTPUT_VALUE,
                        script_pubkey: script.to_p2wsh(),
                        witness_script: Some(script),
                        cltv_expiry: 0,
                    });
                }
            }
        }

        if self.channel_type.has_shared_anchor() {
            // What the other outputs leave of the channel value, up to the maximum.
            let mut others = Sat::ZERO;
            for out in &outputs {
                others = others.checked_add(out.value).ok_or(CommitmentError::Overflow)?;
            }
            let left = self.funding_value.checked_sub(others).unwrap_or(Sat::ZERO);
            outputs.push(CommitmentOutput {
                kind: CommitmentOutputKind::SharedAnchor,
                value: Sat(left.0.min(SHARED_ANCHOR_MAX_VALUE.0)),
                script_pubkey: shared_anchor_script_pubkey(),
                witness_script: None,
                cltv_expiry: 0,
            });
        }

        // BIP-69 with the BOLT-03 tie-break; the sort is stable, so fully identical HTLC
        // outputs keep the spec's order.
        outputs.sort_by(|a, b| {
            a.value
                .cmp(&b.value)
                .then_with(|| a.script_pubkey.as_bytes().cmp(b.script_pubkey.as_bytes()))
                .then_with(|| a.cltv_expiry.cmp(&b.cltv_expiry))
        });

        let mut total = Sat::ZERO;
        for out in &outputs {
            total = total.checked_add(out.value).ok_or(CommitmentError::Overflow)?;
        }
        if total > self.funding_value {
            return Err(CommitmentError::OutputsExceedFunding {
                outputs: total,
                funding: self.funding_value,
            });
        }

        let mut htlc_output_indexes = alloc::vec![None; self.htlcs.len()];
        for (position, out) in outputs.iter().enumerate() {
            if let CommitmentOutputKind::Htlc { index, .. } = out.kind {
                let position = u32::try_from(position).map_err(|_| CommitmentError::Overflow)?;
                if let Some(slot) = htlc_output_indexes.get_mut(index) {
                    *slot = Some(position);
                }
            }
        }

        let (lock_time, sequence) =
            self.obscuring_factor.lock_time_and_sequence(self.commitment_number);
        let tx = Transaction {
            version: self.channel_type.tx_version(),
            lock_time,
            input: alloc::vec![TxIn {
                previous_output: self.funding_outpoint,
                script_sig: ScriptBuf::new(),
                sequence,
                witness: Witness::new(),
            }],
            output: outputs
                .iter()
                .map(|o| TxOut {
                    value: o.value.to_amount(),
                    script_pubkey: o.script_pubkey.clone(),
                })
                .collect(),
        };
        Ok(BuiltCommitment {
            tx,
            outputs,
            htlc_output_indexes,
            base_fee,
            funding_witness_script: funding_witness_script(
                &self.broadcaster_funding_pubkey,
                &self.countersignatory_funding_pubkey,
            ),
            funding_value: self.funding_value,
            channel_type: self.channel_type,
            feerate: self.feerate,
            to_self_delay: self.to_self_delay,
            keys: self.keys,
            broadcaster_funding_pubkey: self.broadcaster_funding_pubkey,
            countersignatory_funding_pubkey: self.countersignatory_funding_pubkey,
        })
    }
}

impl CommitmentOutput {
    /// The output's scriptPubKey.
    pub fn script_pubkey(&self) -> &ScriptBuf {
        &self.script_pubkey
    }
}

impl BuiltCommitment {
    /// The fee the transaction actually pays: the funding value minus every output (the base
    /// fee, trimmed HTLC amounts, and rounding and trimmed balances).
    pub fn actual_fee(&self) -> Sat {
        let outputs =
            self.outputs.iter().fold(Sat::ZERO, |acc, o| Sat(acc.0.saturating_add(o.value.0)));
        // `build` refused outputs above the funding value.
        self.funding_value.checked_sub(outputs).unwrap_or(Sat::ZERO)
    }

    /// The index and description of the first output of `kind`, if present.
    pub fn output(&self, kind: CommitmentOutputKind) -> Option<(u32, &CommitmentOutput)> {
        self.outputs
            .iter()
            .enumerate()
            .find(|(_, o)| o.kind == kind)
            .and_then(|(i, o)| Some((u32::try_from(i).ok()?, o)))
    }

    /// The outpoint of output `index` of this commitment.
    pub fn outpoint(&self, index: u32) -> OutPoint {
        OutPoint { txid: self.tx.compute_txid(), vout: index }
    }

    /// The sighash both sides sign (input 0, `SIGHASH_ALL`, funding script and value).
    pub fn sighash(&self) -> Result<Message, SighashError> {
        commitment_sighash(&self.tx, &self.funding_witness_script, self.funding_value)
    }

    /// The signed transaction: the funding witness built from both signatures.
    pub fn into_signed(
        self,
        broadcaster_sig: &ecdsa::Signature,
        countersignatory_sig: &ecdsa::Signature,
    ) -> Transaction {
        let witness = commitment_witness(
            &self.broadcaster_funding_pubkey,
            broadcaster_sig,
            &self.countersignatory_funding_pubkey,
            countersignatory_sig,
        );
        let mut tx = self.tx;
        if let Some(input) = tx.input.first_mut() {
            input.witness = witness;
        }
        tx
    }

    /// The HTLC transactions of every untrimmed HTLC, in output order.
    pub fn htlc_txs(&self) -> Result<Vec<HtlcTx>, HtlcTxError> {
        let txid = self.tx.compute_txid();
        let mut txs = Vec::new();
        for (position, out) in self.outputs.iter().enumerate() {
            let CommitmentOutputKind::Htlc { htlc, .. } = out.kind else { continue };
            // `build` checked that every output position fits in a u32.
            let Ok(vout) = u32::try_from(position) else { continue };
            txs.push(build_htlc_tx(
                self.channel_type,
                OutPoint { txid, vout },
                &htlc,
                self.feerate,
                self.to_self_delay,
                &self.keys,
            )?);
        }
        Ok(txs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn obscured_number_round_trips() {
        let factor = ObscuringFactor::new(0x2bb0_3852_1914);
        let n = CommitmentNumber::new(42).unwrap();
        let (lt, seq) = factor.lock_time_and_sequence(n);
        assert_eq!(lt.to_consensus_u32(), 0x2052_193e);
        assert_eq!(seq.to_consensus_u32(), 0x802b_b038);
        assert_eq!(factor.decode(lt, seq), Some(n));
        assert_eq!(factor.decode(LockTime::ZERO, seq), None);
        let max = CommitmentNumber::new(CommitmentNumber::MAX).unwrap();
        let (lt, seq) = factor.lock_time_and_sequence(max);
        assert_eq!(factor.decode(lt, seq), Some(max));
    }

    #[test]
    fn obscuring_factor_is_masked() {
        assert_eq!(ObscuringFactor::new(u64::MAX).get(), ObscuringFactor::MASK);
    }
}
