//! Reading a commitment transaction the node supplies, against the channel state Warden holds.
//!
//! Core Lightning sends a commitment transaction together with the HTLCs it carries (the
//! untrimmed ones only, in output order), the feerate and the commitment number. Warden trusts
//! none of it: it derives every key of that commitment from the channel's basepoints and the
//! per-commitment point, rebuilds every output script, and accepts the transaction only if its
//! single input is the funding outpoint, its version is the channel type's (2, or 3 with
//! zero-fee commitments), its locktime and sequence encode the stated commitment number, and
//! every output is one of the outputs that commitment may have (to_local, to_remote, the
//! anchors, one per stated HTLC with that HTLC's amount) in BIP-69 order; a zero-fee
//! commitment's shared anchor must hold exactly what the other outputs leave of the channel
//! value, up to its 240-sat maximum. What it returns ([`CommitmentContent`]) is therefore what
//! the transaction really pays.

use alloc::string::String;
use alloc::vec::Vec;

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction};

use super::state::{CommitmentContent, HtlcInfo, HtlcSide, SignedCounterpartyCommitment};
use super::ChannelSetup;
use crate::keys::bolt3::{
    derive_delayed_payment_pubkey, derive_htlc_pubkey, derive_revocation_pubkey, DerivationError,
};
use crate::keys::{Basepoints, FundingPubkey, PerCommitmentPoint};
use crate::policy::{ensure, PolicyError, Rule};
use crate::secp256k1::{Secp256k1, Verification};
use crate::tx::commitment::ObscuringFactor;
use crate::tx::htlc::{build_htlc_tx, HtlcTx, PaymentHash};
use crate::tx::scripts::{
    anchor_witness_script, funding_witness_script, offered_htlc_witness_script,
    received_htlc_witness_script, shared_anchor_script_pubkey, to_local_witness_script,
    to_remote_anchors_witness_script, to_remote_p2wpkh_script_pubkey,
};
use crate::tx::sighash::{countersignatory_htlc_sighash_type, p2wsh_sighash};
use crate::tx::{ChannelType, CommitmentKeys, SHARED_ANCHOR_MAX_VALUE};
use crate::units::{CommitmentNumber, FeeratePerKw, Sat};

/// Whose commitment a transaction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Broadcaster {
    /// Ours (we can broadcast it; the peer signed it).
    Holder,
    /// The peer's (we sign it for the peer).
    Counterparty,
}

/// What the node says about a commitment transaction.
#[derive(Clone, Copy, Debug)]
pub struct CommitmentClaim<'a> {
    /// Whose commitment it is.
    pub broadcaster: Broadcaster,
    /// Its number.
    pub number: CommitmentNumber,
    /// The broadcaster's per-commitment point for it.
    pub point: &'a PerCommitmentPoint,
    /// Its feerate.
    pub feerate: FeeratePerKw,
    /// The untrimmed HTLCs, in output order.
    pub htlcs: &'a [HtlcInfo],
    /// The transaction.
    pub tx: &'a Transaction,
}

/// Our side of the channel's keys.
#[derive(Clone, Copy, Debug)]
pub struct HolderKeys<'a> {
    /// Our basepoints.
    pub basepoints: &'a Basepoints,
    /// Our funding key.
    pub funding: &'a FundingPubkey,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    ToLocal,
    ToRemote,
    BroadcasterAnchor,
    CountersignatoryAnchor,
    SharedAnchor,
}

fn structure(detail: String) -> PolicyError {
    PolicyError::new(Rule::CommitmentStructure, detail)
}

/// A commitment transaction that passed [`read_commitment`], with what checking its
/// signatures needs.
#[derive(Clone, Debug)]
pub struct ReadCommitment {
    /// What it pays.
    pub content: CommitmentContent,
    /// Its keys; `None` when it carries no HTLC (its HTLC keys are then not derived: nothing
    /// of the commitment needs them).
    pub keys: Option<CommitmentKeys>,
    /// The output index of each listed HTLC, in the list's order.
    pub htlc_vouts: Vec<u32>,
    /// The commitment format.
    pub channel_type: ChannelType,
    /// The broadcaster's `to_self_delay`.
    pub to_self_delay: u16,
    /// Whose commitment it is.
    pub broadcaster: Broadcaster,
}

/// Reads and checks a node-supplied commitment transaction (see the module documentation).
pub fn read_commitment<C: Verification>(
    secp: &Secp256k1<C>,
    setup: &ChannelSetup,
    holder: HolderKeys<'_>,
    claim: CommitmentClaim<'_>,
) -> Result<ReadCommitment, PolicyError> {
    let channel_type = setup.channel_type()?;
    let tx = claim.tx;
    let n = claim.number.get();
    let version = channel_type.tx_version();
    ensure!(
        tx.version == version,
        Rule::CommitmentStructure,
        "commitment {n} has version {}, not {}",
        tx.version.0,
        version.0
    );
    let [input] = tx.input.as_slice() else {
        return Err(structure(alloc::format!(
            "commitment {n} has {} inputs, not 1",
            tx.input.len()
        )));
    };
    ensure!(
        input.previous_output == setup.funding_outpoint,
        Rule::CommitmentStructure,
        "commitment {n} spends {}, not the funding outpoint {}",
        input.previous_output,
        setup.funding_outpoint
    );
    let (opener, accepter) = if setup.is_outbound {
        (&holder.basepoints.payment, &setup.counterparty_basepoints.payment)
    } else {
        (&setup.counterparty_basepoints.payment, &holder.basepoints.payment)
    };
    let factor = ObscuringFactor::from_payment_basepoints(opener, accepter);
    let decoded = factor.decode(tx.lock_time, input.sequence);
    ensure!(
        decoded == Some(claim.number),
        Rule::CommitmentStructure,
        "commitment locktime and sequence encode {decoded:?}, not commitment {n}"
    );

    let (broadcaster, countersignatory, delay, b_funding, c_funding) = match claim.broadcaster {
        Broadcaster::Holder => (
            holder.basepoints,
            &setup.counterparty_basepoints,
            setup.counterparty_selected_delay,
            holder.funding,
            &setup.counterparty_funding_pubkey,
        ),
        Broadcaster::Counterparty => (
            &setup.counterparty_basepoints,
            holder.basepoints,
            setup.holder_selected_delay,
            &setup.counterparty_funding_pubkey,
            holder.funding,
        ),
    };
    // The keys `CommitmentKeys::derive` derives, the HTLC keys only if there are HTLCs (each
    // key is a point operation; a commitment without HTLCs has no output that uses them).
    let derivation = |e: DerivationError| structure(alloc::format!("commitment {n}: {e}"));
    let point = claim.point;
    let revocation =
        derive_revocation_pubkey(secp, &countersignatory.revocation, point).map_err(derivation)?;
    let broadcaster_delayed_payment =
        derive_delayed_payment_pubkey(secp, &broadcaster.delayed_payment, point)
            .map_err(derivation)?;
    let countersignatory_payment = countersignatory.payment;
    let keys = if claim.htlcs.is_empty() {
        None
    } else {
        let keys = CommitmentKeys {
            per_commitment_point: *point,
            revocation,
            broadcaster_htlc: derive_htlc_pubkey(secp, &broadcaster.htlc, point)
                .map_err(derivation)?,
            broadcaster_delayed_payment,
            countersignatory_htlc: derive_htlc_pubkey(secp, &countersignatory.htlc, point)
                .map_err(derivation)?,
            countersignatory_payment,
        };
        debug_assert_eq!(
            Ok(keys),
            CommitmentKeys::derive(secp, point, broadcaster, countersignatory)
        );
        Some(keys)
    };
    let to_local =
        to_local_witness_script(&revocation, delay, &broadcaster_delayed_payment).to_p2wsh();
    let to_remote = match channel_type {
        ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => {
            to_remote_p2wpkh_script_pubkey(&countersignatory_payment)
        }
        ChannelType::AnchorsZeroFeeHtlc => {
            to_remote_anchors_witness_script(&countersignatory_payment).to_p2wsh()
        }
    };
    let shared_anchor = channel_type.has_shared_anchor().then(shared_anchor_script_pubkey);
    let anchors = channel_type.has_anchors().then(|| {
        (anchor_witness_script(b_funding).to_p2wsh(), anchor_witness_script(c_funding).to_p2wsh())
    });
    let htlc_script = |h: &HtlcInfo, keys: &CommitmentKeys| -> ScriptBuf {
        let offered_by_broadcaster = matches!(
            (h.offered_by, claim.broadcaster),
            (HtlcSide::Holder, Broadcaster::Holder)
                | (HtlcSide::Counterparty, Broadcaster::Counterparty)
        );
        let hash = PaymentHash(h.payment_hash);
        let script = if offered_by_broadcaster {
            offered_htlc_witness_script(
                channel_type,
                &keys.revocation,
                &keys.broadcaster_htlc,
                &keys.countersignatory_htlc,
                &hash,
            )
        } else {
            received_htlc_witness_script(
                channel_type,
                &keys.revocation,
                &keys.broadcaster_htlc,
                &keys.countersignatory_htlc,
                &hash,
                h.cltv_expiry,
            )
        };
        script.to_p2wsh()
    };

    let mut seen: Vec<Slot> = Vec::new();
    let mut htlc_vouts: Vec<u32> = Vec::new();
    let mut next_htlc = 0usize;
    let (mut to_local_value, mut to_remote_value) = (Sat::ZERO, Sat::ZERO);
    let mut shared_anchor_value: Option<Sat> = None;
    for (i, out) in tx.output.iter().enumerate() {
        let spk = &out.script_pubkey;
        let slot = if *spk == to_local {
            Some(Slot::ToLocal)
        } else if *spk == to_remote {
            Some(Slot::ToRemote)
        } else if anchors.as_ref().is_some_and(|(b, _)| spk == b) {
            Some(Slot::BroadcasterAnchor)
        } else if anchors.as_ref().is_some_and(|(_, c)| spk == c) {
            Some(Slot::CountersignatoryAnchor)
        } else if shared_anchor.as_ref() == Some(spk) {
            Some(Slot::SharedAnchor)
        } else {
            None
        };
        match slot {
            Some(slot) => {
                ensure!(
                    !seen.contains(&slot),
                    Rule::CommitmentStructure,
                    "commitment {n} output {i} repeats a main or anchor output"
                );
                seen.push(slot);
                match slot {
                    Slot::ToLocal => to_local_value = Sat(out.value.to_sat()),
                    Slot::ToRemote => to_remote_value = Sat(out.value.to_sat()),
                    Slot::SharedAnchor => shared_anchor_value = Some(Sat(out.value.to_sat())),
                    Slot::BroadcasterAnchor | Slot::CountersignatoryAnchor => ensure!(
                        out.value == Amount::from_sat(crate::tx::ANCHOR_OUTPUT_VALUE.0),
                        Rule::CommitmentStructure,
                        "commitment {n} anchor output {i} is {} sat, not 330",
                        out.value.to_sat()
                    ),
                }
            }
            None => {
                // `keys` is `Some` whenever an HTLC is listed.
                let (Some(h), Some(keys)) = (claim.htlcs.get(next_htlc), keys.as_ref()) else {
                    return Err(structure(alloc::format!(
                        "commitment {n} output {i} pays a script that is no output of this commitment"
                    )));
                };
                ensure!(
                    *spk == htlc_script(h, keys),
                    Rule::CommitmentStructure,
                    "commitment {n} output {i} is not the htlc the node listed there"
                );
                ensure!(
                    out.value.to_sat() == h.amount.to_sat_floor().0,
                    Rule::CommitmentStructure,
                    "commitment {n} htlc output {i} pays {} sat, the htlc is {}",
                    out.value.to_sat(),
                    h.amount
                );
                htlc_vouts.push(u32::try_from(i).map_err(|_| {
                    structure(alloc::format!("commitment {n} has too many outputs"))
                })?);
                next_htlc += 1;
            }
        }
    }
    ensure!(
        next_htlc == claim.htlcs.len(),
        Rule::CommitmentStructure,
        "commitment {n} carries {next_htlc} of the {} htlcs the node listed",
        claim.htlcs.len()
    );
    let sorted = tx.output.windows(2).all(|w| match w {
        [a, b] => (a.value, a.script_pubkey.as_bytes()) <= (b.value, b.script_pubkey.as_bytes()),
        _ => true,
    });
    ensure!(sorted, Rule::CommitmentStructure, "commitment {n} outputs are not in BIP-69 order");
    if channel_type.has_shared_anchor() {
        // The shared anchor holds exactly what the other outputs leave of the channel value,
        // up to its maximum: every output is one of this commitment's, so nothing else can
        // hide a value, and a larger anchor would be value taken from a balance.
        let others = tx
            .output
            .iter()
            .filter(|o| shared_anchor.as_ref() != Some(&o.script_pubkey))
            .try_fold(0u64, |sum, o| sum.checked_add(o.value.to_sat()))
            .ok_or_else(|| structure(alloc::format!("commitment {n} outputs overflow")))?;
        let left = setup.channel_value.0.checked_sub(others).ok_or_else(|| {
            structure(alloc::format!("commitment {n} pays more than the channel value"))
        })?;
        let expected = Sat(left.min(SHARED_ANCHOR_MAX_VALUE.0));
        ensure!(
            shared_anchor_value == Some(expected),
            Rule::CommitmentStructure,
            "commitment {n} shared anchor is {shared_anchor_value:?}, not {expected} (what the \
             other outputs leave of the channel value, at most {SHARED_ANCHOR_MAX_VALUE})"
        );
    }

    let (to_holder, to_counterparty) = match claim.broadcaster {
        Broadcaster::Holder => (to_local_value, to_remote_value),
        Broadcaster::Counterparty => (to_remote_value, to_local_value),
    };
    Ok(ReadCommitment {
        content: CommitmentContent {
            number: claim.number,
            txid: tx.compute_txid(),
            feerate: claim.feerate,
            htlcs: claim.htlcs.to_vec(),
            htlc_vouts: htlc_vouts.clone(),
            to_holder,
            to_counterparty,
        },
        keys,
        htlc_vouts,
        channel_type,
        to_self_delay: delay,
        broadcaster: claim.broadcaster,
    })
}

impl ReadCommitment {
    /// Checks the peer's signatures on our commitment: its signature of the commitment with
    /// its funding key (`SIGHASH_ALL`), and one signature per HTLC transaction with its HTLC
    /// key of this commitment (`SIGHASH_SINGLE|SIGHASH_ANYONECANPAY` with anchors, else
    /// `SIGHASH_ALL`). Any failure is `commitment-peer-signature`; a wrong sighash type of an
    /// HTLC signature is `htlc-sighash`.
    pub fn verify_counterparty_signatures<C: Verification>(
        &self,
        secp: &Secp256k1<C>,
        tx: &Transaction,
        setup: &ChannelSetup,
        holder_funding: &FundingPubkey,
        commitment_sig: &bitcoin::ecdsa::Signature,
        htlc_sigs: &[bitcoin::ecdsa::Signature],
    ) -> Result<(), PolicyError> {
        let n = self.content.number.get();
        let peer_sig = |detail: String| PolicyError::new(Rule::CommitmentPeerSignature, detail);
        ensure!(
            commitment_sig.sighash_type == EcdsaSighashType::All,
            Rule::CommitmentPeerSignature,
            "the peer signed commitment {n} with sighash {}, not ALL",
            commitment_sig.sighash_type
        );
        let funding_script =
            funding_witness_script(holder_funding, &setup.counterparty_funding_pubkey);
        let digest =
            p2wsh_sighash(tx, 0, &funding_script, setup.channel_value, EcdsaSighashType::All)
                .map_err(|e| peer_sig(alloc::format!("commitment {n}: {e}")))?;
        secp.verify_ecdsa(&digest, &commitment_sig.signature, &setup.counterparty_funding_pubkey.0)
            .map_err(|_| {
                peer_sig(alloc::format!("the peer's signature of commitment {n} does not verify"))
            })?;
        ensure!(
            htlc_sigs.len() == self.htlc_vouts.len(),
            Rule::CommitmentPeerSignature,
            "commitment {n} carries {} htlcs but the peer sent {} htlc signatures",
            self.htlc_vouts.len(),
            htlc_sigs.len()
        );
        let expected_type = countersignatory_htlc_sighash_type(self.channel_type);
        let txid = tx.compute_txid();
        for ((h, vout), sig) in self.content.htlcs.iter().zip(&self.htlc_vouts).zip(htlc_sigs) {
            // Derived by `read_commitment` whenever the commitment carries an HTLC.
            let Some(keys) = self.keys.as_ref() else {
                return Err(peer_sig(alloc::format!("commitment {n} has no htlc keys")));
            };
            ensure!(
                sig.sighash_type == expected_type,
                Rule::HtlcSighash,
                "the peer's signature of the htlc transaction of output {vout} uses sighash {}, not {}",
                sig.sighash_type,
                expected_type
            );
            let htlc = h.as_htlc(self.broadcaster);
            let htlc_tx = build_htlc_tx(
                self.channel_type,
                OutPoint { txid, vout: *vout },
                &htlc,
                self.content.feerate,
                self.to_self_delay,
                keys,
            )
            .map_err(|e| peer_sig(alloc::format!("htlc transaction of output {vout}: {e}")))?;
            let digest = htlc_tx
                .sighash(expected_type)
                .map_err(|e| peer_sig(alloc::format!("htlc transaction of output {vout}: {e}")))?;
            secp.verify_ecdsa(&digest, &sig.signature, &keys.countersignatory_htlc.0).map_err(
                |_| {
                    peer_sig(alloc::format!(
                        "the peer's signature of the htlc transaction of output {vout} does not verify"
                    ))
                },
            )?;
        }
        Ok(())
    }
}

/// The single input of an HTLC transaction of the peer's commitment `content`, the commitment
/// output it spends, and that output's HTLC (`htlc-structure` otherwise).
fn spent_htlc<'a>(
    content: &'a CommitmentContent,
    tx: &'a Transaction,
) -> Result<(&'a bitcoin::TxIn, u32, &'a HtlcInfo), PolicyError> {
    let bad = |detail: String| PolicyError::new(Rule::HtlcStructure, detail);
    let [input] = tx.input.as_slice() else {
        return Err(bad(alloc::format!("htlc transaction has {} inputs, not 1", tx.input.len())));
    };
    ensure!(
        input.previous_output.txid == content.txid,
        Rule::HtlcStructure,
        "htlc transaction spends {}, not the peer's commitment {} ({})",
        input.previous_output,
        content.number,
        content.txid
    );
    let vout = input.previous_output.vout;
    let h = content
        .htlc_vouts
        .iter()
        .position(|v| *v == vout)
        .and_then(|i| content.htlcs.get(i))
        .ok_or_else(|| {
        bad(alloc::format!("output {vout} of the peer's commitment is no htlc"))
    })?;
    Ok((input, vout, h))
}

/// Checks an HTLC transaction of the peer's commitment (`sign_remote_htlc_tx`) against the
/// commitment Warden signed: it must spend one of that commitment's HTLC outputs and be exactly
/// the HTLC-success or HTLC-timeout transaction BOLT-03 builds for that HTLC (version,
/// locktime, sequence, output script and value), with the witness script of that output.
/// Returns the rebuilt transaction, whose countersignatory sighash Warden signs.
pub fn check_counterparty_htlc_tx<C: Verification>(
    secp: &Secp256k1<C>,
    setup: &ChannelSetup,
    holder_basepoints: &Basepoints,
    commitment: &SignedCounterpartyCommitment,
    tx: &Transaction,
    witness_script: &bitcoin::Script,
) -> Result<HtlcTx, PolicyError> {
    let bad = |detail: String| PolicyError::new(Rule::HtlcStructure, detail);
    // The same checks, in the same order, as the keyed variant makes before it needs the keys:
    // a malformed request is refused before any derivation.
    setup.channel_type()?;
    spent_htlc(&commitment.content, tx)?;
    let keys = CommitmentKeys::derive(
        secp,
        &commitment.point,
        &setup.counterparty_basepoints,
        holder_basepoints,
    )
    .map_err(|e| bad(alloc::format!("htlc keys: {e}")))?;
    check_counterparty_htlc_tx_with_keys(setup, &keys, commitment, tx, witness_script)
}

/// [`check_counterparty_htlc_tx`] with the keys of the peer's commitment already derived
/// (`CommitmentKeys::derive` with the commitment's point, the peer's basepoints as the
/// broadcaster's and ours as the countersignatory's, as [`read_commitment`] derived them when
/// the commitment was signed). Keys of another point are refused.
pub fn check_counterparty_htlc_tx_with_keys(
    setup: &ChannelSetup,
    keys: &CommitmentKeys,
    commitment: &SignedCounterpartyCommitment,
    tx: &Transaction,
    witness_script: &bitcoin::Script,
) -> Result<HtlcTx, PolicyError> {
    let bad = |detail: String| PolicyError::new(Rule::HtlcStructure, detail);
    let channel_type = setup.channel_type()?;
    let content = &commitment.content;
    let (input, vout, h) = spent_htlc(content, tx)?;
    ensure!(
        keys.per_commitment_point == commitment.point,
        Rule::HtlcStructure,
        "htlc keys of another per-commitment point than commitment {}'s",
        content.number
    );
    let htlc = h.as_htlc(Broadcaster::Counterparty);
    let built = build_htlc_tx(
        channel_type,
        input.previous_output,
        &htlc,
        content.feerate,
        setup.holder_selected_delay,
        keys,
    )
    .map_err(|e| bad(alloc::format!("htlc transaction of output {vout}: {e}")))?;
    let mut unsigned = tx.clone();
    for txin in &mut unsigned.input {
        txin.witness = bitcoin::Witness::new();
    }
    ensure!(
        unsigned == built.tx,
        Rule::HtlcStructure,
        "htlc transaction of output {vout} differs from the one its commitment implies"
    );
    ensure!(
        witness_script == built.htlc_witness_script.as_script(),
        Rule::HtlcStructure,
        "htlc transaction of output {vout}: the witness script is not that output's"
    );
    Ok(built)
}
