//! The on-chain wallet requests: `sign_withdrawal` (7), `sign_anchorspend` (147),
//! `sign_htlc_tx_mingle` (149) and `sign_splice_tx` (29), signed as Core Lightning's `hsmd`
//! signs them and checked first (`hsmd` signs blindly).
//!
//! What `hsmd` does (Core Lightning `hsmd/libhsmd.c`):
//! - `sign_our_inputs`: for every listed `hsm_utxo` and every PSBT input spending its outpoint,
//!   `hsm_key_for_utxo` gives the key: for a UTXO with `close_info` (our output of a peer's
//!   unilateral close) the channel's payment basepoint secret, tweaked with the commitment
//!   point when there is one (`hsm_unilateral_close_privkey`); otherwise the BIP-86 key for
//!   BIP-39 secrets and `m/0/0/k` for legacy ones. `psbt_input_add_pubkey` (`bitcoin/psbt.c`)
//!   then records the key on the input: a BIP-32 derivation (P2WPKH, P2WSH) or a taproot key
//!   origin (P2TR, x-only key, no leaf hashes), the fingerprint being the first four bytes of
//!   HASH160 of the compressed key and the path the single step `0`. An anchored `close_info`
//!   output is a P2WSH `<key> OP_CHECKSIGVERIFY <csv> OP_CHECKSEQUENCEVERIFY`: `hsmd` sets the
//!   input's witness script and witness UTXO itself. `wally_psbt_sign(.., EC_FLAG_GRIND_R)`
//!   signs.
//! - `handle_sign_anchorspend` then signs again with the channel's funding key: every input
//!   carrying the funding key in its BIP-32 derivations (the anchor, P2WSH with its witness
//!   script) is signed.
//! - `handle_sign_htlc_tx_mingle` signs only the wallet inputs: the HTLC input was signed
//!   before with `SIGHASH_SINGLE|SIGHASH_ANYONECANPAY`.
//! - `handle_sign_splice_tx`: `sign_tx_input` at `input_index` over the funding 2-of-2 with
//!   the funding key (the amount being the one the transaction's PSBT carries).
//!
//! What libwally does (libwally-core `src/psbt.c`, `wally_psbt_sign` →
//! `wally_psbt_sign_bip32` → `wally_psbt_sign_input_bip32`; `src/sign.c`,
//! `wally_ec_sig_from_bytes_aux`):
//! - ECDSA (P2WPKH: BIP-0143 with the P2PKH script code; P2WSH: the witness script) with the
//!   input's sighash type or `SIGHASH_ALL`. Low-R grinding: the first attempt passes **no**
//!   extra entropy (NULL to `secp256k1_ecdsa_sign_recoverable`, default RFC 6979 nonce), and
//!   attempt `k` passes 32 bytes holding `k` as a little-endian `u32` in the first four bytes
//!   (counter 1, 2, …), until the compact R's first byte is below `0x80`. That is exactly
//!   rust-secp256k1's `sign_ecdsa_low_r` — and **not** `sign_hash` (`bitcoin/signature.c`),
//!   whose first attempt passes 32 zero bytes ([`warden_core::sign::sign_hash_low_r`]). The
//!   signature goes into `partial_sigs` under the compressed key, DER plus the sighash byte.
//! - P2TR key path: the key is tweaked with BIP-0341's tweak and the input's merkle root
//!   (none for BIP-0086), the digest is BIP-0341's over all prevouts with `SIGHASH_DEFAULT`
//!   unless the input names a type, and `secp256k1_schnorrsig_sign32` signs with a NULL
//!   `aux_rand` — which libsecp256k1's BIP-0340 nonce function treats as 32 zero bytes,
//!   rust-secp256k1's `sign_schnorr_no_aux_rand`. The 64-byte signature (65 with a non-default
//!   type) goes into `tap_key_sig`.
//!
//! What Warden adds: every input it signs is a listed UTXO whose key it derives itself and
//! whose script and amount the PSBT confirms (`onchain-input-amount`); version 2 and a weight
//! bound (`onchain-format`); a non-negative fee under a feerate cap (`onchain-fee-range`);
//! outputs that pay our wallet, the allowlist or a known channel's funding output (withdrawals
//! to anywhere else are refused unless approved, or paid by inputs Warden does not sign),
//! change-only outputs for anchor spends and mingled HTLC transactions
//! (`onchain-unknown-destination`); channel-funding outputs that are the real 2-of-2 of a
//! known channel with its value, spent from segwit inputs only (`onchain-funding-script`,
//! `onchain-funding-value`, `onchain-funding-malleable`), signed only once that channel's
//! commitment #0 was validated with the peer's signatures (`onchain-funding-countersigned`),
//! pushing the peer no more than the limit (`onchain-push`); a splice (`sign_splice_tx`) only
//! when its transaction is a splice candidate `setup_channel` announced, whose new output is
//! the channel's 2-of-2 with the candidate's value, whose commitments were exchanged, and in
//! which our wallet's net contribution is our relative amount in those commitments up to the
//! fee (`check_splice_share`). Unlike `hsmd`, Warden signs only
//! the inputs that spend a listed UTXO (or, for an anchor spend, our anchor), never another
//! input that merely claims one of our keys.
//!
//! The reply's PSBT is re-serialized by rust-bitcoin: fields in key-type order, maps sorted
//! by key, as libwally writes a version-0 PSBT (see the tests for what was checked).

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::script::Builder;
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{CompressedPublicKey, OutPoint, ScriptBuf, Transaction, TxOut};
use secp256k1::{All, Message, PublicKey, Secp256k1};
use warden_core::channel::{ChannelState, SpliceCandidate};
use warden_core::keys::{FundingPubkey, NodeKeys, PerCommitmentPoint};
use warden_core::policy::onchain::{check_funding_countersigned, check_push};
use warden_core::policy::{PolicyError, Rule};
use warden_core::secret::PrivateKey;
use warden_core::tx::scripts::{anchor_witness_script, funding_witness_script};
use warden_core::units::Sat;
use warden_wire::msg::*;
use warden_wire::{CloseInfo, HsmUtxo, WirePsbt};

use crate::approvals::ApprovalRequest;
use crate::channels::{check_remote_funding_key, encode, invalid, refused, slot};
use crate::policy::Policy;
use crate::signer::{BadRequestError, ClientContext, Signer};
use crate::wallet::{pays_wallet, WalletScripts};

/// The default feerate cap, in satoshis per 1000 weight units (100 sat/vB).
pub const DEFAULT_MAX_FEERATE_PER_KW: u64 = 25_000;

/// The largest transaction Warden signs: Bitcoin Core's standardness limit, in weight units.
pub const MAX_TX_WEIGHT: u64 = 400_000;

/// The value of an anchor output (BOLT-03), in satoshis.
pub const ANCHOR_VALUE: u64 = 330;

/// BOLT-03's weight of a commitment transaction with anchors and no HTLCs, and of each HTLC
/// output: an anchor spend pays for its parent, so its fee is checked over both.
const COMMITMENT_WEIGHT_ANCHORS: u64 = 1124;
const COMMITMENT_WEIGHT_PER_HTLC: u64 = 172;

/// Witness weights (a lower bound of the final transaction's weight: a higher feerate).
const WITNESS_WEIGHT_P2WPKH: u64 = 1 + 1 + 71 + 1 + 33;
const WITNESS_WEIGHT_P2TR: u64 = 1 + 1 + 64;
const WITNESS_WEIGHT_FUNDING: u64 = 1 + 1 + 1 + 71 + 1 + 71 + 1 + 71;

/// The fee rule's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeeLimits {
    /// The highest feerate signed, in satoshis per 1000 weight units.
    pub max_feerate_per_kw: u64,
}

impl Default for FeeLimits {
    fn default() -> FeeLimits {
        FeeLimits { max_feerate_per_kw: DEFAULT_MAX_FEERATE_PER_KW }
    }
}

/// Which outputs a request may create.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Destinations {
    /// `sign_withdrawal`: our wallet, the allowlist, approved outputs and known channels'
    /// funding outputs; foreign outputs only as far as inputs we do not sign pay for them.
    Withdrawal,
    /// `sign_anchorspend`: our wallet only (change).
    WalletOnly,
    /// `sign_htlc_tx_mingle`: our wallet, or the output paired with an input we do not sign
    /// (the HTLC output, covered by that input's `SIGHASH_SINGLE`) up to that input's value.
    WalletOrPaired,
}

/// How an input is spent.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Spend {
    /// P2WPKH with this key.
    P2wpkh,
    /// P2TR key path (BIP-0086: no script tree).
    P2tr,
    /// P2WSH with this witness script (an anchored `close_info` output, an anchor).
    P2wsh(ScriptBuf),
}

/// An input Warden signs: which, with what key, how.
struct OurInput {
    index: usize,
    key: PrivateKey,
    spend: Spend,
}

fn rule(r: Rule, detail: impl Into<String>) -> BadRequestError {
    refused(PolicyError::new(r, detail))
}

// ---------------------------------------------------------------------------------------------
// The wallet's scripts.

// ---------------------------------------------------------------------------------------------
// Checks.

/// `onchain-format`: version 2, at least one input and output, weight within
/// [`MAX_TX_WEIGHT`].
pub fn check_format(tx: &Transaction) -> Result<(), PolicyError> {
    if tx.version != Version::TWO {
        return Err(PolicyError::new(
            Rule::OnchainFormat,
            format!("transaction version {} is not 2", tx.version.0),
        ));
    }
    if tx.input.is_empty() || tx.output.is_empty() {
        return Err(PolicyError::new(
            Rule::OnchainFormat,
            format!("{} inputs and {} outputs", tx.input.len(), tx.output.len()),
        ));
    }
    let weight = tx.weight().to_wu();
    if weight > MAX_TX_WEIGHT {
        return Err(PolicyError::new(
            Rule::OnchainFormat,
            format!("transaction weight {weight} exceeds {MAX_TX_WEIGHT}"),
        ));
    }
    Ok(())
}

/// The output each input spends, as the PSBT states it (`witness_utxo`, else the output of
/// `non_witness_utxo`, whose txid must match the outpoint).
pub fn prevouts(psbt: &Psbt) -> Result<Vec<TxOut>, PolicyError> {
    let tx = &psbt.unsigned_tx;
    if psbt.inputs.len() != tx.input.len() || psbt.outputs.len() != tx.output.len() {
        return Err(PolicyError::new(Rule::OnchainFormat, "psbt maps do not match the tx"));
    }
    tx.input
        .iter()
        .zip(&psbt.inputs)
        .enumerate()
        .map(|(i, (txin, meta))| {
            if let Some(out) = &meta.witness_utxo {
                return Ok(out.clone());
            }
            meta.non_witness_utxo
                .as_ref()
                .filter(|prev| prev.compute_txid() == txin.previous_output.txid)
                .and_then(|prev| prev.output.get(txin.previous_output.vout as usize))
                .cloned()
                .ok_or_else(|| {
                    PolicyError::new(
                        Rule::OnchainInputAmount,
                        format!("input {i} has no amount (no witness_utxo or matching utxo)"),
                    )
                })
        })
        .collect()
}

fn witness_weight(script: &ScriptBuf) -> u64 {
    if script.is_p2wpkh() {
        WITNESS_WEIGHT_P2WPKH
    } else if script.is_p2tr() {
        WITNESS_WEIGHT_P2TR
    } else if script.is_p2wsh() {
        WITNESS_WEIGHT_FUNDING
    } else {
        0
    }
}

/// `onchain-fee-range`: the fee (inputs minus outputs) is non-negative and its feerate over
/// the transaction's estimated final weight plus `extra_weight` (a parent it pays for) is at
/// most the cap. The estimate is a lower bound of the real weight, so the feerate an upper
/// bound of the real one.
pub fn check_fee(
    tx: &Transaction,
    prevouts: &[TxOut],
    extra_weight: u64,
    limits: FeeLimits,
) -> Result<(), PolicyError> {
    let inputs: u64 = prevouts.iter().map(|o| o.value.to_sat()).fold(0, u64::saturating_add);
    let outputs: u64 = tx.output.iter().map(|o| o.value.to_sat()).fold(0, u64::saturating_add);
    let fee = inputs.checked_sub(outputs).ok_or_else(|| {
        PolicyError::new(
            Rule::OnchainFeeRange,
            format!("outputs ({outputs} sat) exceed inputs ({inputs} sat)"),
        )
    })?;
    let mut weight = tx.weight().to_wu().saturating_add(extra_weight);
    // Segwit marker and flag once all witnesses are present.
    if tx.input.iter().all(|i| i.witness.is_empty()) {
        weight = weight.saturating_add(2);
    }
    for (txin, prev) in tx.input.iter().zip(prevouts) {
        if txin.witness.is_empty() {
            weight = weight.saturating_add(witness_weight(&prev.script_pubkey));
        }
    }
    let feerate = fee.saturating_mul(1000) / weight.max(1);
    if feerate > limits.max_feerate_per_kw {
        return Err(PolicyError::new(
            Rule::OnchainFeeRange,
            format!(
                "fee {fee} sat over {weight} weight units is {feerate} sat/kw, above {}",
                limits.max_feerate_per_kw
            ),
        ));
    }
    Ok(())
}

/// Whether a spent output is segwit: a witness program, or P2SH of one named by the input's
/// redeem script. Its txid then cannot be changed by a third party.
fn spends_segwit(prev: &TxOut, redeem_script: Option<&ScriptBuf>) -> bool {
    prev.script_pubkey.is_witness_program()
        || (prev.script_pubkey.is_p2sh()
            && redeem_script.is_some_and(|r| {
                r.is_witness_program()
                    && ScriptBuf::new_p2sh(&r.script_hash()) == prev.script_pubkey
            }))
}

/// `onchain-funding-malleable`: every input of a transaction that funds a channel spends a
/// segwit output (otherwise the funding txid, and the commitment signed on it, may change).
pub fn check_funding_inputs_segwit(psbt: &Psbt, prevouts: &[TxOut]) -> Result<(), PolicyError> {
    for (i, (prev, meta)) in prevouts.iter().zip(&psbt.inputs).enumerate() {
        if !spends_segwit(prev, meta.redeem_script.as_ref()) {
            return Err(PolicyError::new(
                Rule::OnchainFundingMalleable,
                format!("input {i} of a funding transaction spends a non-segwit output"),
            ));
        }
    }
    Ok(())
}

/// Whether a witness script is a bare 2-of-2 `CHECKMULTISIG` (what a funding output claims).
fn is_two_of_two(script: &ScriptBuf) -> bool {
    let b = script.as_bytes();
    b.len() == 71
        && b.first() == Some(&0x52)
        && b.get(1) == Some(&33)
        && b.get(35) == Some(&33)
        && b.get(69) == Some(&0x52)
        && b.get(70) == Some(&0xae)
}

/// `onchain-funding-script` / `onchain-funding-value`: output `vout` of `tx` is the funding
/// output `state`'s channel expects: at its funding outpoint, P2WSH of the 2-of-2 of our
/// funding key and the peer's, with the channel's value.
pub fn check_funding_output(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    state: &ChannelState,
    tx: &Transaction,
    vout: usize,
) -> Result<(), PolicyError> {
    let setup = state.setup()?;
    let ck = keys
        .channel_keys(&state.slot.peer, state.slot.dbid)
        .map_err(|e| PolicyError::new(Rule::OnchainFundingScript, format!("channel keys: {e}")))?;
    let ours = ck.funding_pubkey(secp);
    let script = funding_witness_script(&ours, &setup.counterparty_funding_pubkey).to_p2wsh();
    let out = tx
        .output
        .get(vout)
        .ok_or_else(|| PolicyError::new(Rule::OnchainFundingScript, format!("no output {vout}")))?;
    let outpoint = OutPoint { txid: tx.compute_txid(), vout: vout as u32 };
    if out.script_pubkey != script || outpoint != setup.funding_outpoint {
        return Err(PolicyError::new(
            Rule::OnchainFundingScript,
            format!(
                "output {vout} is not the 2-of-2 funding output of channel {} at {}",
                state.slot.dbid, setup.funding_outpoint
            ),
        ));
    }
    if out.value.to_sat() != setup.channel_value.0 {
        return Err(PolicyError::new(
            Rule::OnchainFundingValue,
            format!(
                "funding output {vout} carries {} sat, the channel is {} sat",
                out.value.to_sat(),
                setup.channel_value.0
            ),
        ));
    }
    Ok(())
}

/// Finds the channel a funding output opens.
pub trait FundingLookup {
    /// The channel whose funding outpoint is `outpoint`, if Warden knows one.
    fn channel_funded_at(&self, outpoint: &OutPoint) -> Option<ChannelState>;
}

/// A lookup that knows no channel (for tests of the rules without a signer).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFundingIndex;

impl FundingLookup for NoFundingIndex {
    fn channel_funded_at(&self, _: &OutPoint) -> Option<ChannelState> {
        None
    }
}

/// What an output of a wallet transaction is, for the destination rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputKind {
    /// Our wallet, the allowlist, or approved.
    Ours,
    /// The funding output of a known channel (at its funding outpoint, or the new funding
    /// output of a channel whose funding output the transaction spends: a splice).
    Funding,
    /// None of these.
    Foreign,
}

/// The channel whose funding output `vout` is: the channel set up at that outpoint, or — when
/// the transaction spends a channel's funding outpoint (a splice) — that channel when the
/// output is its 2-of-2. `Ok(None)` when the output funds no channel.
fn funded_channel(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    tx: &Transaction,
    vout: usize,
    spliced: &[ChannelState],
    funding: &dyn FundingLookup,
) -> Result<Option<ChannelState>, PolicyError> {
    let outpoint = OutPoint { txid: tx.compute_txid(), vout: vout as u32 };
    if let Some(state) = funding.channel_funded_at(&outpoint) {
        check_funding_output(secp, keys, &state, tx, vout)?;
        return Ok(Some(state));
    }
    let Some(out) = tx.output.get(vout) else { return Ok(None) };
    for state in spliced {
        let Ok(setup) = state.setup() else { continue };
        let Ok(ck) = keys.channel_keys(&state.slot.peer, state.slot.dbid) else { continue };
        let ours = ck.funding_pubkey(secp);
        let script = funding_witness_script(&ours, &setup.counterparty_funding_pubkey).to_p2wsh();
        if out.script_pubkey == script {
            return Ok(Some(state.clone()));
        }
    }
    Ok(None)
}

/// Whether a spent output is one of our wallet's (its script in the wallet window, or a key
/// origin on the PSBT input that Warden re-derives to that script).
fn input_pays_wallet(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    window: &WalletScripts,
    prev: &TxOut,
    meta: &bitcoin::psbt::Input,
) -> bool {
    let origins = bitcoin::psbt::Output {
        bip32_derivation: meta.bip32_derivation.clone(),
        tap_key_origins: meta.tap_key_origins.clone(),
        ..Default::default()
    };
    pays_wallet(secp, keys, window, &prev.script_pubkey, Some(&origins))
}

/// Says whether the operator approved a spend paying exactly these external outputs (script
/// and value, in transaction order).
pub type ApprovalHook<'a> = dyn Fn(&[(ScriptBuf, Sat)]) -> bool + 'a;

/// The operator's approval a request relies on: looked at while the request is checked
/// ([`ApprovalUse::hook`]), used up only once every check passed and the signature is made
/// ([`ApprovalUse::consume`]), so a request refused later (its fee, say) leaves the approval
/// for the node's next try.
#[derive(Debug, Default)]
pub(crate) struct ApprovalUse(std::cell::RefCell<Option<ApprovalRequest>>);

impl ApprovalUse {
    /// Whether the operator approved a spend paying exactly these external outputs (script and
    /// value, in transaction order): the single place where "or approved" of
    /// `onchain-unknown-destination` hooks in. A spend not approved is written as pending, so
    /// that the operator can approve it and the node retry (`withdraw` again builds another
    /// transaction with other inputs and change, but pays the same external outputs: the same
    /// approval).
    pub(crate) fn hook<'a>(
        &'a self,
        signer: &'a Signer,
    ) -> impl Fn(&[(ScriptBuf, Sat)]) -> bool + 'a {
        move |outputs| {
            let request = ApprovalRequest::Onchain { outputs: outputs.to_vec() };
            if signer.approvals.is_approved(&request) {
                *self.0.borrow_mut() = Some(request);
                return true;
            }
            let reason = "refused by onchain-unknown-destination: pays outputs that are \
                          neither our wallet's, allowlisted, nor a channel's funding";
            // Best effort: without a writable approvals directory the refusal still stands.
            let _ = signer.approvals.submit(&request, reason);
            false
        }
    }

    /// Uses up the approval the request relied on, if any: after signing, before the reply.
    /// An approval another request used meanwhile (or that cannot be moved) withholds the
    /// signature: an approval lets one spend through, once.
    pub(crate) fn consume(&self, signer: &Signer) -> Result<(), BadRequestError> {
        let Some(request) = self.0.borrow_mut().take() else { return Ok(()) };
        match signer.approvals.take(&request) {
            Ok(true) => Ok(()),
            Ok(false) => Err(invalid(
                "the operator's approval of this spend was used by another request meanwhile",
            )),
            Err(e) => Err(invalid(format_args!("cannot use the operator's approval: {e}"))),
        }
    }
}

/// The outputs a request may create (see [`Destinations`]). `ours` are the indexes of the
/// inputs Warden signs; `prevouts` what every input spends.
///
/// An output is fine when it pays our wallet (script in the wallet window, or a key origin
/// Warden re-derives), is allowlisted, or is the funding output of a known channel — which
/// must then be that channel's 2-of-2 with its value (`onchain-funding-script`,
/// `onchain-funding-value`), spent from segwit inputs only (`onchain-funding-malleable`), of a
/// channel whose commitment #0 we validated (`onchain-funding-countersigned`) and whose push,
/// when we opened it, is within the limit (`onchain-push`). Any other output is foreign: an anchor spend has none, a mingled HTLC
/// transaction only the one paired with the HTLC input, and a withdrawal none — except that a
/// transaction funding a channel may pay foreign outputs up to what the peer's inputs bring
/// (its change in a dual-funded open or a splice: paid by its inputs, never by ours) — unless
/// `approved` says the operator approved exactly these external outputs.
#[allow(clippy::too_many_arguments, reason = "one call site per request; all are needed")]
pub fn check_destinations(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    window: &WalletScripts,
    psbt: &Psbt,
    prevouts: &[TxOut],
    ours: &[usize],
    mode: Destinations,
    funding: &dyn FundingLookup,
    policy: &Policy,
    approved: &ApprovalHook<'_>,
) -> Result<(), PolicyError> {
    let tx = &psbt.unsigned_tx;
    // Channels whose current funding output this transaction spends (a splice).
    let spliced: Vec<ChannelState> =
        tx.input.iter().filter_map(|i| funding.channel_funded_at(&i.previous_output)).collect();
    let spliced_inputs: Vec<usize> = tx
        .input
        .iter()
        .enumerate()
        .filter(|(_, i)| {
            spliced
                .iter()
                .any(|c| c.setup.as_ref().is_some_and(|s| s.funding_outpoint == i.previous_output))
        })
        .map(|(j, _)| j)
        .collect();
    let claims: Vec<bool> = tx
        .output
        .iter()
        .enumerate()
        .map(|(vout, out)| {
            out.script_pubkey.is_p2wsh()
                && psbt
                    .outputs
                    .get(vout)
                    .and_then(|o| o.witness_script.as_ref())
                    .is_some_and(is_two_of_two)
        })
        .collect();
    if claims.contains(&true) {
        check_funding_inputs_segwit(psbt, prevouts)?;
    }
    let mut kinds = Vec::with_capacity(tx.output.len());
    let mut funded = Vec::new();
    for (vout, out) in tx.output.iter().enumerate() {
        let claims_funding = claims.get(vout).copied().unwrap_or(false);
        match funded_channel(secp, keys, tx, vout, &spliced, funding)? {
            Some(state) => {
                funded.push(state);
                kinds.push(OutputKind::Funding);
                continue;
            }
            None if claims_funding => {
                let outpoint = OutPoint { txid: tx.compute_txid(), vout: vout as u32 };
                return Err(PolicyError::new(
                    Rule::OnchainFundingScript,
                    format!(
                        "output {vout} claims to fund a channel, but no channel is at {outpoint}"
                    ),
                ));
            }
            None => {}
        }
        let spk = &out.script_pubkey;
        let ours_out = pays_wallet(secp, keys, window, spk, psbt.outputs.get(vout))
            || policy.allowlist.contains(spk);
        kinds.push(if ours_out { OutputKind::Ours } else { OutputKind::Foreign });
    }
    if !funded.is_empty() {
        check_funding_inputs_segwit(psbt, prevouts)?;
    }
    // The 2-of-2 of a channel this transaction funds, spent by it: a splice whose new
    // funding outpoint `setup_channel` already announced. Such an input is the channel's
    // value, not the peer's, and is never ours to sign here (only `sign_splice_tx` signs it).
    let funding_scripts: Vec<&ScriptBuf> = tx
        .output
        .iter()
        .zip(&kinds)
        .filter(|(_, k)| **k == OutputKind::Funding)
        .map(|(o, _)| &o.script_pubkey)
        .collect();
    let channel_input = |j: usize, p: &TxOut| {
        spliced_inputs.contains(&j) || funding_scripts.contains(&&p.script_pubkey)
    };
    // What the peer's inputs bring: in a transaction that funds a channel (a dual-funded open,
    // a splice), the inputs Warden does not sign, that are no channel's funding and that are
    // not recognisably ours (a wallet input left out of this request could otherwise pay a
    // foreign output in one request and be signed in the next). Elsewhere nothing: a plain
    // withdrawal's foreign outputs are never paid for by "someone else's" inputs.
    let funds_a_channel = !funded.is_empty() || !spliced.is_empty();
    let others_in: u64 = prevouts
        .iter()
        .zip(&psbt.inputs)
        .enumerate()
        .filter(|(j, (p, meta))| {
            funds_a_channel
                && !ours.contains(j)
                && !channel_input(*j, p)
                && !input_pays_wallet(secp, keys, window, p, meta)
        })
        .map(|(_, (p, _))| p.value.to_sat())
        .fold(0, u64::saturating_add);
    let refusal = |vout: usize, out: &TxOut| {
        PolicyError::new(
            Rule::OnchainUnknownDestination,
            format!(
                "output {vout} ({} sat to {}) pays neither our wallet, a channel's funding \
                 output nor the allowlist, and is not approved",
                out.value.to_sat(),
                out.script_pubkey
            ),
        )
    };
    let foreign: Vec<(usize, &TxOut)> = tx
        .output
        .iter()
        .zip(&kinds)
        .enumerate()
        .filter(|(_, (_, k))| **k == OutputKind::Foreign)
        .map(|(vout, (out, _))| (vout, out))
        .collect();
    let foreign_total =
        foreign.iter().map(|(_, o)| o.value.to_sat()).fold(0u64, u64::saturating_add);
    match mode {
        Destinations::Withdrawal => {
            let external: Vec<(ScriptBuf, Sat)> = foreign
                .iter()
                .map(|(_, o)| (o.script_pubkey.clone(), Sat(o.value.to_sat())))
                .collect();
            // The first output beyond what the other inputs bring is the one named.
            // splices: what the peer takes out of the channel (its negative relative amount in
            // a splice candidate of a channel this transaction spends) is the peer's too.
            let txid = tx.compute_txid();
            let peer_splice_out: u64 = spliced
                .iter()
                .flat_map(|state| state.splices.iter())
                .filter(|c| c.funding_outpoint.txid == txid)
                .map(|c| c.counterparty_relative.min(0).unsigned_abs())
                .fold(0, u64::saturating_add);
            let covered = others_in.saturating_add(peer_splice_out);
            let mut running = 0u64;
            let first_uncovered = foreign.iter().find(|(_, o)| {
                running = running.saturating_add(o.value.to_sat());
                running > covered
            });
            if let Some((vout, out)) = first_uncovered {
                let lifted = approved(&external);
                policy.enforce(if lifted { Ok(()) } else { Err(refusal(*vout, out)) })?;
            }
        }
        Destinations::WalletOrPaired | Destinations::WalletOnly => {
            for (vout, out) in &foreign {
                let paired = mode == Destinations::WalletOrPaired
                    && tx.input.get(*vout).is_some()
                    && !ours.contains(vout)
                    && prevouts.get(*vout).is_some_and(|p| out.value <= p.value);
                policy.enforce(if paired { Ok(()) } else { Err(refusal(*vout, out)) })?;
            }
        }
    }
    // splices: a transaction that is a splice candidate of a channel it spends pays our share
    // to the channel or to us.
    let txid = tx.compute_txid();
    for state in &spliced {
        let Some(candidate) = state.splices.iter().find(|c| c.funding_outpoint.txid == txid) else {
            continue;
        };
        let Some(channel_input) = state
            .setup
            .as_ref()
            .and_then(|s| tx.input.iter().position(|i| i.previous_output == s.funding_outpoint))
        else {
            continue;
        };
        policy.enforce(check_splice_share(
            secp,
            keys,
            window,
            policy,
            psbt,
            prevouts,
            ours,
            channel_input,
            candidate,
        ))?;
    }
    // The peer's inputs' values are the PSBT's claims (a segwit v0 signature does not commit to
    // other inputs' amounts): an inflated claim shows as fee, so `onchain-fee-range` bounds
    // what a lie could offset.
    let peer_contribution = Sat(others_in.saturating_sub(foreign_total));
    for state in &funded {
        policy.enforce(check_funding_countersigned(state))?;
        // A push is a new channel's: a splice moves an existing channel's balances. A splice
        // is known from state, never from the PSBT's claims about inputs Warden does not
        // sign: the transaction spends the channel's funding outpoint, or the channel already
        // moved past its first commitments (a channel whose setup a splice already moved).
        let splice = spliced.iter().any(|c| c.slot == state.slot)
            || state.holder.next_number > 1
            || state.counterparty.next_number > 1;
        if !splice {
            policy.enforce(check_push(&policy.limits, state, peer_contribution))?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Keys and inputs.

/// `<key> OP_CHECKSIGVERIFY <csv> OP_CHECKSEQUENCEVERIFY`
/// (`bitcoin_wscript_to_remote_anchored`).
fn to_remote_anchored_script(key: &PublicKey, csv: u32) -> ScriptBuf {
    Builder::new()
        .push_slice(key.serialize())
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(i64::from(csv))
        .push_opcode(bitcoin::opcodes::all::OP_CSV)
        .into_script()
}

/// The key of a `close_info` UTXO (`hsm_unilateral_close_privkey`).
fn close_info_key(signer: &Signer, ci: &CloseInfo) -> Result<PrivateKey, BadRequestError> {
    let ck = signer.channel_keys(&ci.peer_id, ci.channel_id)?;
    let point = ci.commitment_point.map(PerCommitmentPoint);
    ck.to_remote_key(&signer.secp, point.as_ref()).map_err(invalid)
}

/// The key and spend of a listed UTXO (`hsm_key_for_utxo`), after checking that the key's
/// script is the UTXO's script.
fn utxo_spend(signer: &Signer, utxo: &HsmUtxo) -> Result<(PrivateKey, Spend), BadRequestError> {
    let secp = &signer.secp;
    let spk = &utxo.script_pubkey;
    let (key, spend) = match &utxo.close_info {
        Some(ci) => {
            let key = close_info_key(signer, ci)?;
            if ci.option_anchors {
                let ws = to_remote_anchored_script(&key.public_key(secp), ci.csv);
                (key, Spend::P2wsh(ws))
            } else {
                (key, Spend::P2wpkh)
            }
        }
        None => {
            let key = signer.keys.wallet().utxo_key(secp, utxo.keyindex).map_err(invalid)?;
            let spend = if spk.is_p2tr() { Spend::P2tr } else { Spend::P2wpkh };
            (key, spend)
        }
    };
    let pk = key.public_key(secp);
    let expected = match &spend {
        Spend::P2wpkh => ScriptBuf::new_p2wpkh(&CompressedPublicKey(pk).wpubkey_hash()),
        Spend::P2tr => ScriptBuf::new_p2tr(secp, pk.x_only_public_key().0, None),
        Spend::P2wsh(ws) => ws.to_p2wsh(),
    };
    if *spk != expected {
        return Err(rule(
            Rule::OnchainInputAmount,
            format!(
                "utxo {} (key index {}) has script {spk}, its key gives {expected}",
                utxo.outpoint, utxo.keyindex
            ),
        ));
    }
    Ok((key, spend))
}

/// The PSBT inputs that spend a listed UTXO, with their keys, after checking each input's
/// `witness_utxo` against the UTXO (present, same script, same amount) and its sighash type.
fn wallet_inputs(
    signer: &Signer,
    utxos: &[HsmUtxo],
    psbt: &Psbt,
) -> Result<Vec<OurInput>, BadRequestError> {
    let mut ours = Vec::new();
    for utxo in utxos {
        for (j, txin) in psbt.unsigned_tx.input.iter().enumerate() {
            if txin.previous_output != utxo.outpoint {
                continue;
            }
            let (key, spend) = utxo_spend(signer, utxo)?;
            let meta = psbt.inputs.get(j).ok_or_else(|| invalid("psbt input missing"))?;
            let wu = meta.witness_utxo.as_ref().ok_or_else(|| {
                rule(Rule::OnchainInputAmount, format!("input {j} has no witness_utxo"))
            })?;
            if wu.script_pubkey != utxo.script_pubkey || wu.value != utxo.amount {
                return Err(rule(
                    Rule::OnchainInputAmount,
                    format!(
                        "input {j}: psbt says {} sat to {}, the utxo is {} sat to {}",
                        wu.value.to_sat(),
                        wu.script_pubkey,
                        utxo.amount.to_sat(),
                        utxo.script_pubkey
                    ),
                ));
            }
            check_sighash_type(j, meta.sighash_type, &spend)?;
            ours.push(OurInput { index: j, key, spend });
        }
    }
    Ok(ours)
}

/// Only `SIGHASH_ALL` (or `SIGHASH_DEFAULT` for taproot) on the inputs Warden signs: any
/// other type lets others change what the signature pays for.
fn check_sighash_type(
    index: usize,
    ty: Option<PsbtSighashType>,
    spend: &Spend,
) -> Result<(), BadRequestError> {
    let ok = match (ty, spend) {
        (None, _) => true,
        (Some(t), Spend::P2tr) => {
            matches!(t.taproot_hash_ty(), Ok(TapSighashType::Default | TapSighashType::All))
        }
        (Some(t), _) => t.ecdsa_hash_ty() == Ok(EcdsaSighashType::All),
    };
    if ok {
        Ok(())
    } else {
        Err(rule(Rule::OnchainFormat, format!("input {index} asks for sighash type {ty:?}")))
    }
}

/// BIP-0032 "key identifier" fingerprint as `psbt_input_add_pubkey` computes it.
fn key_fingerprint(pk: &PublicKey) -> Fingerprint {
    let h = hash160::Hash::hash(&pk.serialize()).to_byte_array();
    Fingerprint::from([h[0], h[1], h[2], h[3]])
}

/// Signs our inputs into `psbt` as `sign_our_inputs` and libwally do (see the module docs).
fn sign_inputs(
    secp: &Secp256k1<All>,
    psbt: &mut Psbt,
    ours: &[OurInput],
    prevouts: &[TxOut],
) -> Result<(), BadRequestError> {
    let tx = psbt.unsigned_tx.clone();
    let mut cache = SighashCache::new(&tx);
    let path = DerivationPath::from(vec![ChildNumber::Normal { index: 0 }]);
    for inp in ours {
        let j = inp.index;
        let sk = inp.key.expose_secret();
        let pk = inp.key.public_key(secp);
        let prev = prevouts.get(j).ok_or_else(|| invalid("prevout missing"))?;
        let meta = psbt.inputs.get_mut(j).ok_or_else(|| invalid("psbt input missing"))?;
        match &inp.spend {
            Spend::P2tr => {
                let (xonly, _) = pk.x_only_public_key();
                meta.tap_key_origins
                    .insert(xonly, (Vec::new(), (key_fingerprint(&pk), path.clone())));
                let ty = match meta.sighash_type.map(|t| t.taproot_hash_ty()) {
                    Some(Ok(t)) => t,
                    _ => TapSighashType::Default,
                };
                let digest = cache
                    .taproot_key_spend_signature_hash(j, &Prevouts::All(prevouts), ty)
                    .map_err(invalid)?;
                let keypair = Keypair::from_secret_key(secp, sk).tap_tweak(secp, None);
                let msg = Message::from_digest(digest.to_byte_array());
                let signature = secp.sign_schnorr_no_aux_rand(&msg, &keypair.to_keypair());
                meta.tap_key_sig =
                    Some(bitcoin::taproot::Signature { signature, sighash_type: ty });
            }
            Spend::P2wpkh | Spend::P2wsh(_) => {
                meta.bip32_derivation.insert(pk, (key_fingerprint(&pk), path.clone()));
                let digest = match &inp.spend {
                    Spend::P2wsh(ws) => {
                        meta.witness_script = Some(ws.clone());
                        cache
                            .p2wsh_signature_hash(j, ws, prev.value, EcdsaSighashType::All)
                            .map_err(invalid)?
                    }
                    _ => cache
                        .p2wpkh_signature_hash(
                            j,
                            &prev.script_pubkey,
                            prev.value,
                            EcdsaSighashType::All,
                        )
                        .map_err(invalid)?,
                };
                let msg = Message::from_digest(digest.to_byte_array());
                let signature = secp.sign_ecdsa_low_r(&msg, sk);
                meta.partial_sigs.insert(
                    bitcoin::PublicKey::new(pk),
                    bitcoin::ecdsa::Signature { signature, sighash_type: EcdsaSighashType::All },
                );
            }
        }
    }
    Ok(())
}

/// The common path of the three PSBT requests: format, our inputs, fee, destinations, sign.
fn sign_psbt(
    signer: &Signer,
    utxos: &[HsmUtxo],
    wire: &WirePsbt,
    mode: Destinations,
    extra: Vec<OurInput>,
    parent_weight: u64,
) -> Result<WirePsbt, BadRequestError> {
    let secp = &signer.secp;
    let mut psbt = wire.psbt().clone();
    check_format(&psbt.unsigned_tx).map_err(refused)?;
    let mut ours = wallet_inputs(signer, utxos, &psbt)?;
    ours.extend(extra);
    let prevouts = prevouts(&psbt).map_err(refused)?;
    check_fee(&psbt.unsigned_tx, &prevouts, parent_weight, FeeLimits::default())
        .map_err(refused)?;
    let window = signer.wallet_scripts();
    let indexes: Vec<usize> = ours.iter().map(|o| o.index).collect();
    let approval = ApprovalUse::default();
    check_destinations(
        secp,
        &signer.keys,
        &window,
        &psbt,
        &prevouts,
        &indexes,
        mode,
        &signer.channels,
        &signer.policy,
        &approval.hook(signer),
    )
    .map_err(refused)?;
    signer.charge_onchain_fee(&psbt.unsigned_tx, &prevouts)?;
    sign_inputs(secp, &mut psbt, &ours, &prevouts)?;
    approval.consume(signer)?;
    signer.persist_payments()?;
    Ok(WirePsbt::new(psbt))
}

// ---------------------------------------------------------------------------------------------
// The requests.

/// `sign_withdrawal` (7 → 107).
pub fn sign_withdrawal(signer: &Signer, m: &SignWithdrawal) -> Result<Vec<u8>, BadRequestError> {
    let psbt = sign_psbt(signer, &m.inputs, &m.psbt, Destinations::Withdrawal, Vec::new(), 0)?;
    encode(&SignWithdrawalReply { psbt })
}

/// `sign_anchorspend` (147 → 148): our wallet inputs, and the anchor of the channel's
/// commitment (the input whose BIP-32 derivations name our funding key), with change only.
pub fn sign_anchorspend(signer: &Signer, m: &SignAnchorspend) -> Result<Vec<u8>, BadRequestError> {
    let secp = &signer.secp;
    let ck = signer.channel_keys(&m.peerid, m.channel_dbid)?;
    let funding = ck.funding_pubkey(secp);
    let anchor_script = anchor_witness_script(&funding);
    let psbt = m.psbt.psbt();
    let mut anchors = Vec::new();
    for (j, meta) in psbt.inputs.iter().enumerate() {
        if !meta.bip32_derivation.contains_key(&funding.0) {
            continue;
        }
        let wu = meta.witness_utxo.as_ref().ok_or_else(|| {
            rule(Rule::OnchainInputAmount, format!("anchor input {j} has no witness_utxo"))
        })?;
        if meta.witness_script.as_ref() != Some(&anchor_script)
            || wu.script_pubkey != anchor_script.to_p2wsh()
        {
            return Err(rule(
                Rule::OnchainFormat,
                format!("input {j} names our funding key but is not our anchor"),
            ));
        }
        if wu.value.to_sat() != ANCHOR_VALUE {
            return Err(rule(
                Rule::OnchainInputAmount,
                format!(
                    "anchor input {j} claims {} sat, anchors are {ANCHOR_VALUE}",
                    wu.value.to_sat()
                ),
            ));
        }
        let spend = Spend::P2wsh(anchor_script.clone());
        check_sighash_type(j, meta.sighash_type, &spend)?;
        anchors.push(OurInput { index: j, key: ck.funding_key().clone(), spend });
    }
    // The child pays for its commitment: the fee is checked over both (the commitment's
    // weight from the channel's HTLC count when Warden has it, else the HTLC-less weight).
    let htlcs = slot(&m.peerid, m.channel_dbid)
        .and_then(|s| signer.channels.snapshot(&s))
        .ok()
        .and_then(|st| st.holder.current.map(|c| c.content.htlcs.len() as u64))
        .unwrap_or(0);
    let parent = COMMITMENT_WEIGHT_ANCHORS + COMMITMENT_WEIGHT_PER_HTLC * htlcs;
    let psbt = sign_psbt(signer, &m.inputs, &m.psbt, Destinations::WalletOnly, anchors, parent)?;
    encode(&SignAnchorspendReply { psbt })
}

/// `sign_htlc_tx_mingle` (149 → 150): our wallet inputs of an HTLC transaction whose HTLC
/// input is already signed; the outputs are change, or the HTLC output paired with it.
pub fn sign_htlc_tx_mingle(
    signer: &Signer,
    m: &SignHtlcTxMingle,
) -> Result<Vec<u8>, BadRequestError> {
    let psbt = sign_psbt(signer, &m.inputs, &m.psbt, Destinations::WalletOrPaired, Vec::new(), 0)?;
    encode(&SignHtlcTxMingleReply { psbt })
}

/// splices: the splice candidate (announced by `setup_channel`) whose new funding outpoint is
/// an output of `tx` (`onchain-funding-script` when there is none).
fn splice_candidate<'a>(
    state: &'a ChannelState,
    tx: &Transaction,
) -> Result<&'a SpliceCandidate, BadRequestError> {
    let txid = tx.compute_txid();
    state.splices.iter().find(|c| c.funding_outpoint.txid == txid).ok_or_else(|| {
        rule(
            Rule::OnchainFundingScript,
            format!("the splice {txid} is no splice candidate of channel {}", state.slot.dbid),
        )
    })
}

/// splices: the candidate's new funding output is P2WSH of the 2-of-2 of our funding key
/// `ours` and the candidate's peer key (`onchain-funding-script`) with the candidate's value
/// (`onchain-funding-value`).
fn check_candidate_output(
    ours: &FundingPubkey,
    candidate: &SpliceCandidate,
    tx: &Transaction,
) -> Result<(), BadRequestError> {
    let vout = candidate.funding_outpoint.vout;
    let script = funding_witness_script(ours, &candidate.counterparty_funding_pubkey).to_p2wsh();
    let out =
        tx.output.get(vout as usize).filter(|o| o.script_pubkey == script).ok_or_else(|| {
            rule(
                Rule::OnchainFundingScript,
                format!("output {vout} of the splice is not the channel's 2-of-2"),
            )
        })?;
    if out.value.to_sat() != candidate.channel_value.0 {
        return Err(rule(
            Rule::OnchainFundingValue,
            format!(
                "the splice's funding output {vout} carries {} sat, the candidate {}",
                out.value.to_sat(),
                candidate.channel_value
            ),
        ));
    }
    Ok(())
}

/// splices: our share of a splice (`onchain-unknown-destination`), checked by
/// [`check_destinations`] for a transaction that is a splice candidate of a channel it spends
/// (`sign_splice_tx`, and `sign_withdrawal` of our inputs once the candidate is known): what
/// our wallet puts in (inputs Warden signs or recognises as ours) less what it takes out (outputs to our wallet or the
/// allowlist) is our relative amount in the candidate's commitments plus at most the whole
/// transaction's fee. More means value of ours goes neither to the channel nor to us (a
/// splice-in credited less than we bring, a splice-out paying us less than it takes from our
/// balance).
#[allow(clippy::too_many_arguments, reason = "one call site; all are needed")]
pub fn check_splice_share(
    secp: &Secp256k1<All>,
    keys: &NodeKeys,
    window: &WalletScripts,
    policy: &Policy,
    psbt: &Psbt,
    prevouts: &[TxOut],
    ours: &[usize],
    channel_input: usize,
    candidate: &SpliceCandidate,
) -> Result<(), PolicyError> {
    let tx = &psbt.unsigned_tx;
    let sum = |v: &mut dyn Iterator<Item = u64>| v.map(i128::from).sum::<i128>();
    let total_in = sum(&mut prevouts.iter().map(|p| p.value.to_sat()));
    let total_out = sum(&mut tx.output.iter().map(|o| o.value.to_sat()));
    let our_in = sum(&mut prevouts
        .iter()
        .zip(&psbt.inputs)
        .enumerate()
        .filter(|(j, (p, meta))| {
            *j != channel_input
                && (ours.contains(j) || input_pays_wallet(secp, keys, window, p, meta))
        })
        .map(|(_, (p, _))| p.value.to_sat()));
    let funding_vout = candidate.funding_outpoint.vout as usize;
    let our_out = sum(&mut tx
        .output
        .iter()
        .enumerate()
        .filter(|(vout, o)| {
            *vout != funding_vout
                && (pays_wallet(secp, keys, window, &o.script_pubkey, psbt.outputs.get(*vout))
                    || policy.allowlist.contains(&o.script_pubkey))
        })
        .map(|(_, o)| o.value.to_sat()));
    let fee = total_in - total_out;
    let ours_paid = our_in - our_out - i128::from(candidate.holder_relative);
    if ours_paid > fee.max(0) {
        return Err(PolicyError::new(
            Rule::OnchainUnknownDestination,
            format!(
                "splice {}: our wallet puts in {our_in} sat and takes out {our_out} sat, our balance changes by {:+} sat: {ours_paid} sat of ours go elsewhere than the channel, our wallet or the fee ({fee} sat)",
                candidate.funding_outpoint, candidate.holder_relative
            ),
        ));
    }
    Ok(())
}

/// `sign_splice_tx` (29 → 112, channeld): the splice's spend of the channel's current funding
/// output at `input_index`, signed with the funding key over the 2-of-2 and the value of the
/// funding output Warden holds (not the PSBT's claim, which must agree when present).
pub fn sign_splice_tx(
    signer: &Signer,
    client: &ClientContext,
    m: &SignSpliceTx,
) -> Result<Vec<u8>, BadRequestError> {
    let secp = &signer.secp;
    let state = signer.channels.snapshot(&slot(&client.id, client.dbid)?)?;
    let setup = state.setup().map_err(refused)?;
    check_remote_funding_key(setup, &m.remote_funding_key)?;
    let tx = m.tx.tx();
    check_format(tx).map_err(refused)?;
    let index = m.input_index as usize;
    let txin = tx
        .input
        .get(index)
        .ok_or_else(|| rule(Rule::OnchainFormat, format!("input {index} of {}", tx.input.len())))?;
    if txin.previous_output != setup.funding_outpoint {
        return Err(rule(
            Rule::OnchainFundingScript,
            format!(
                "input {index} spends {}, the channel's funding output is {}",
                txin.previous_output, setup.funding_outpoint
            ),
        ));
    }
    let ck = signer.channel_keys(&client.id, client.dbid)?;
    let ours = ck.funding_pubkey(secp);
    let old_script = funding_witness_script(&ours, &setup.counterparty_funding_pubkey);
    // The PSBT's view of every input: needed for the fee and the malleability rules.
    let psbt = m.tx.psbt().psbt();
    if psbt.unsigned_tx.compute_txid() != tx.compute_txid() {
        return Err(rule(Rule::OnchainFormat, "the splice's psbt is another transaction"));
    }
    let mut spent = prevouts(psbt).map_err(refused)?;
    let claimed = spent.get(index).cloned().ok_or_else(|| invalid("prevout missing"))?;
    if claimed.value.to_sat() != setup.channel_value.0
        || claimed.script_pubkey != old_script.to_p2wsh()
    {
        return Err(rule(
            Rule::OnchainInputAmount,
            format!(
                "the psbt says the funding input is {} sat to {}, the channel is {} sat",
                claimed.value.to_sat(),
                claimed.script_pubkey,
                setup.channel_value.0
            ),
        ));
    }
    if let Some(p) = spent.get_mut(index) {
        p.value = bitcoin::Amount::from_sat(setup.channel_value.0);
    }
    check_funding_inputs_segwit(psbt, &spent).map_err(refused)?;
    check_fee(tx, &spent, 0, FeeLimits::default()).map_err(refused)?;
    // The new funding output: the splice candidate `setup_channel` announced for this
    // transaction, the channel's 2-of-2 with the candidate's value, whose commitments were
    // exchanged; our share goes to it or to our wallet.
    let candidate = splice_candidate(&state, tx)?;
    check_candidate_output(&ours, candidate, tx)?;
    if candidate.holder.is_none() {
        crate::channels::enforce(
            &signer.policy,
            Err(PolicyError::new(
                Rule::OnchainFundingCountersigned,
                format!(
                    "splice {} signed before our commitment on it was validated",
                    candidate.funding_outpoint
                ),
            )),
        )?;
    }
    let window = signer.wallet_scripts();
    let approval = ApprovalUse::default();
    check_destinations(
        secp,
        &signer.keys,
        &window,
        psbt,
        &spent,
        &[],
        Destinations::Withdrawal,
        &signer.channels,
        &signer.policy,
        &approval.hook(signer),
    )
    .map_err(refused)?;
    // A known channel funded by this transaction must have its commitment #0 countersigned.
    let txid = tx.compute_txid();
    for vout in 0..tx.output.len() {
        let outpoint = OutPoint { txid, vout: vout as u32 };
        if let Some(funded) = signer.channels.channel_funded_at(&outpoint) {
            crate::channels::enforce(&signer.policy, check_funding_countersigned(&funded))?;
        }
    }
    signer.charge_onchain_fee(tx, &spent)?;
    let sig = warden_core::sign::sign_p2wsh_input(
        secp,
        ck.funding_key(),
        tx,
        index,
        &old_script,
        Sat(setup.channel_value.0),
        EcdsaSighashType::All,
    )
    .map_err(invalid)?;
    approval.consume(signer)?;
    signer.persist_payments()?;
    encode(&SignTxReply { sig })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;
    use crate::policy::Policy;
    use crate::signer::{Outcome, StoreChoice};
    use bitcoin::psbt::Psbt;
    use bitcoin::{absolute, Address, Amount, Network, Sequence, TxIn, Txid, Witness};
    use warden_core::policy::onchain::Allowlist;
    use warden_core::policy::PolicyConfig;
    use warden_wire::Message as _;

    use warden_testkit::rng::NoEntropy;

    /// A regtest signer (legacy secret `0x42`) in memory.
    pub(crate) fn signer() -> (tempfile::TempDir, Signer) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
        let body = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        let (s, _) =
            Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
        (dir, s)
    }

    fn p2wpkh(pk: &PublicKey) -> ScriptBuf {
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(*pk).wpubkey_hash())
    }

    /// Wallet utxo index 5 (100,000 sat) to `to` (60,000 sat) and change to index 7.
    fn withdrawal(s: &Signer, to: ScriptBuf) -> Vec<u8> {
        let secp = &s.secp;
        let pk = s.keys.wallet().bitcoin_key(secp, 5).unwrap().public_key(secp);
        let change = s.keys.wallet().bitcoin_key(secp, 7).unwrap().public_key(secp);
        let outpoint = OutPoint { txid: Txid::from_byte_array([1; 32]), vout: 0 };
        let spent = TxOut { value: Amount::from_sat(100_000), script_pubkey: p2wpkh(&pk) };
        let tx = Transaction {
            version: Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn {
                previous_output: outpoint,
                script_sig: ScriptBuf::new(),
                sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                witness: Witness::new(),
            }],
            output: vec![
                TxOut { value: Amount::from_sat(60_000), script_pubkey: to },
                TxOut { value: Amount::from_sat(39_000), script_pubkey: p2wpkh(&change) },
            ],
        };
        let mut psbt = Psbt::from_unsigned_tx(tx).unwrap();
        psbt.inputs[0].witness_utxo = Some(spent.clone());
        let utxo = HsmUtxo {
            outpoint,
            amount: spent.value,
            keyindex: 5,
            legacy_is_p2sh: false,
            script_pubkey: spent.script_pubkey,
            close_info: None,
            legacy_is_in_coinbase: false,
        };
        SignWithdrawal { inputs: vec![utxo], psbt: WirePsbt::new(psbt) }.encode().unwrap()
    }

    fn master(s: &Signer) -> ClientContext {
        ClientContext { id: s.node_id(), dbid: 0, permissions: crate::permissions::ALL }
    }

    #[test]
    fn a_withdrawal_to_an_allowlisted_address_is_signed() {
        let (_dir, mut s) = signer();
        let sk = secp256k1::SecretKey::from_slice(&[9; 32]).unwrap();
        let external = p2wpkh(&sk.public_key(&s.secp));
        // Without the allowlist: refused.
        let r = s.handle(&master(&s), &withdrawal(&s, external.clone()));
        match r {
            Err(BadRequestError::Refused(e)) => assert_eq!(e.rule, Rule::OnchainUnknownDestination),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // The operator allowlists the address (a regtest address for a regtest node).
        let address = Address::from_script(&external, Network::Regtest).unwrap().to_string();
        let mut config = PolicyConfig::test_network();
        config.allowlist = Allowlist::from_addresses(Network::Regtest, [address.as_str()]).unwrap();
        s.policy = Policy::new(config);
        let r = s.handle(&master(&s), &withdrawal(&s, external)).unwrap();
        assert!(matches!(r, Outcome::Reply(_)));
    }
}
