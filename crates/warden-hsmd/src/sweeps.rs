//! The on-chain sweep requests (`onchaind` / lightningd after a close), validated.
//!
//! Core Lightning's hsmd (`hsmd/libhsmd.c`: `do_sign_delayed_payment_to_us`,
//! `do_sign_remote_htlc_to_us`, `do_sign_penalty_to_us`, `do_sign_local_htlc_tx`) signs these
//! blindly: it derives the key the message names, takes the spent amount from the PSBT's
//! `witness_utxo`, requires a single-input transaction and signs input 0. Warden signs the same
//! digest with the same key and sighash type, but only after checking:
//!
//! - the witness script is one Warden derives for the channel (to_local / HTLC-transaction
//!   output of our commitment `commit_num`; an HTLC output of the peer's commitment with the
//!   given point; a to_local or HTLC output of the peer's *revoked* commitment), else
//!   `sweep-structure` (`htlc-structure` for our HTLC transaction, which must be exactly the
//!   BOLT-03 HTLC-success/timeout transaction Warden rebuilds);
//! - the PSBT input's `witness_utxo` locks the P2WSH of that witness script (the amount signed
//!   comes from it, as in hsmd), else `sweep-structure`;
//! - every output of a sweep pays Warden's own wallet — a script of the `m/0/0/i` key (or the
//!   BIP-86 key for mnemonic secrets) within the first [`crate::wallet::WALLET_WINDOW`]
//!   indexes, or of any index the PSBT output's BIP-32 / taproot key origin claims and Warden
//!   re-derives — or the allowlist, else `sweep-destination`;
//! - the fee is under a generous cap: a feerate at most `max_sweep_feerate`, and never the
//!   whole output (`sweep-fee-range`, see `warden_core::policy::sweep` for why onchaind's
//!   deadline feerates pass); our HTLC transaction is built at a feerate within the limits, or
//!   at zero fee with zero-fee HTLC anchors (`htlc-fee-range`);
//! - our HTLC transaction is never signed for a revoked commitment (`sweep-holder-revoked`);
//! - the penalty's revocation secret is one the peer revealed (`counterparty.secrets`).
//!
//! These requests read a snapshot of the channel; the ones only onchaind or lightningd send
//! once a commitment is on chain also record that the funding output is spent.

use bitcoin::hashes::{ripemd160, Hash};
use bitcoin::opcodes::all::OP_CLTV;
use bitcoin::psbt::Psbt;
use bitcoin::script::Instruction;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Script, ScriptBuf, Transaction, Witness};
use subtle::ConstantTimeEq;
use warden_core::channel::commitment::Broadcaster;
use warden_core::channel::{ChannelSetup, ChannelState};
use warden_core::keys::bolt3::{derive_private_key, derive_revocation_privkey};
use warden_core::keys::PerCommitmentPoint;
use warden_core::policy::htlc::check_htlc_feerate;
use warden_core::policy::sweep::{check_sweep_fee, SWEEP_WITNESS_OVERHEAD};
use warden_core::policy::{PolicyError, Rule};
use warden_core::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use warden_core::secret::{PerCommitmentSecret, PrivateKey};
use warden_core::sign;
use warden_core::tx::htlc::{build_htlc_tx, Htlc, PaymentHash};
use warden_core::tx::scripts::{
    offered_htlc_witness_script, received_htlc_witness_script, to_local_witness_script,
};
use warden_core::tx::{ChannelType, CommitmentKeys};
use warden_core::units::{CommitmentNumber, Sat};
use warden_wire::msg::*;
use warden_wire::{BitcoinTx, NodeId};

use crate::channels::{encode, enforce, invalid, number, refused, slot};
use crate::signer::{BadRequestError, ClientContext, Signer};
use crate::wallet::pays_wallet;

/// How many of the peer's most recent revealed secrets a penalty's secret is searched among.
/// Beyond it (a channel with more revocations) an older secret is accepted on its script
/// alone: refusing a legitimate penalty would cost more than signing one that spends nothing.
pub const PENALTY_SCAN: u64 = 1_000_000;

fn rule(r: Rule, detail: impl Into<String>) -> BadRequestError {
    refused(PolicyError::new(r, detail.into()))
}

fn sweep_structure(detail: impl Into<String>) -> BadRequestError {
    rule(Rule::SweepStructure, detail)
}

// --- requests ---------------------------------------------------------------------------------

/// `sign_delayed_payment_to_us` (12, onchaind): our delayed output of our commitment.
pub(crate) fn sign_delayed_payment_to_us(
    s: &Signer,
    client: &ClientContext,
    m: &SignDelayedPaymentToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let reply =
        delayed_payment_to_us(s, &client.id, client.dbid, m.commit_num, &m.tx, &m.wscript, 0)?;
    on_chain(s, &client.id, client.dbid, reply)
}

/// `sign_any_delayed_payment_to_us` (142, lightningd).
pub(crate) fn sign_any_delayed_payment_to_us(
    s: &Signer,
    _client: &ClientContext,
    m: &SignAnyDelayedPaymentToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let reply = delayed_payment_to_us(
        s,
        &m.peerid,
        m.channel_dbid,
        m.commit_num,
        &m.tx,
        &m.wscript,
        m.input,
    )?;
    on_chain(s, &m.peerid, m.channel_dbid, reply)
}

/// `sign_remote_htlc_to_us` (13, onchaind): an HTLC output of the peer's commitment.
pub(crate) fn sign_remote_htlc_to_us(
    s: &Signer,
    client: &ClientContext,
    m: &SignRemoteHtlcToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let req = RemoteHtlc {
        point: PerCommitmentPoint(m.remote_per_commitment_point),
        tx: &m.tx,
        wscript: &m.wscript,
        anchors: m.option_anchor_outputs,
        input: 0,
    };
    let reply = remote_htlc_to_us(s, &client.id, client.dbid, &req)?;
    on_chain(s, &client.id, client.dbid, reply)
}

/// `sign_any_remote_htlc_to_us` (143, lightningd).
pub(crate) fn sign_any_remote_htlc_to_us(
    s: &Signer,
    _client: &ClientContext,
    m: &SignAnyRemoteHtlcToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let req = RemoteHtlc {
        point: PerCommitmentPoint(m.remote_per_commitment_point),
        tx: &m.tx,
        wscript: &m.wscript,
        anchors: m.option_anchor_outputs,
        input: m.input,
    };
    let reply = remote_htlc_to_us(s, &m.peerid, m.channel_dbid, &req)?;
    on_chain(s, &m.peerid, m.channel_dbid, reply)
}

/// `sign_penalty_to_us` (14, channeld's watchtower code): an output of a revoked commitment.
pub(crate) fn sign_penalty_to_us(
    s: &Signer,
    client: &ClientContext,
    m: &SignPenaltyToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let secret = *m.revocation_secret.expose_secret();
    penalty_to_us(s, &client.id, client.dbid, secret, &m.tx, &m.wscript, 0)
}

/// `sign_any_penalty_to_us` (144, lightningd).
pub(crate) fn sign_any_penalty_to_us(
    s: &Signer,
    _client: &ClientContext,
    m: &SignAnyPenaltyToUs,
) -> Result<Vec<u8>, BadRequestError> {
    let secret = *m.revocation_secret.expose_secret();
    let reply = penalty_to_us(s, &m.peerid, m.channel_dbid, secret, &m.tx, &m.wscript, m.input)?;
    on_chain(s, &m.peerid, m.channel_dbid, reply)
}

/// `sign_any_local_htlc_tx` (146, lightningd): our HTLC-success or HTLC-timeout transaction.
pub(crate) fn sign_any_local_htlc_tx(
    s: &Signer,
    _client: &ClientContext,
    m: &SignAnyLocalHtlcTx,
) -> Result<Vec<u8>, BadRequestError> {
    let secp = &s.secp;
    let ctx = s.channel_context(&m.peerid, m.channel_dbid)?;
    let keys = &ctx.keys;
    let state = s.channels.snapshot(&slot(&m.peerid, m.channel_dbid)?)?;
    let setup = state.setup().map_err(refused)?;
    let channel_type = setup.channel_type().map_err(refused)?;
    check_anchor_flag(channel_type, m.option_anchor_outputs)?;
    let n = number(m.commit_num)?;
    if n.get() < state.holder.revoked_below {
        return Err(rule(
            Rule::SweepHolderRevoked,
            format!("our commitment {n} is revoked: its htlc transactions are not signed"),
        ));
    }
    let htlc_structure = |d: String| rule(Rule::HtlcStructure, d);
    let current =
        state.holder.current.as_ref().filter(|c| c.content.number == n).ok_or_else(|| {
            htlc_structure(format!("our commitment {n} is not the current one Warden holds"))
        })?;
    let tx = m.tx.tx();
    let [txin] = tx.input.as_slice() else {
        return Err(htlc_structure(format!(
            "htlc transaction has {} inputs, not 1",
            tx.input.len()
        )));
    };
    if m.input != 0 {
        return Err(htlc_structure(format!("input {} of a one-input transaction", m.input)));
    }
    let content = &current.content;
    let vout = txin.previous_output.vout;
    let position = content.htlc_vouts.iter().position(|v| *v == vout);
    let h = position
        .and_then(|i| content.htlcs.get(i))
        .filter(|_| txin.previous_output.txid == content.txid)
        .ok_or_else(|| {
            htlc_structure(format!(
                "htlc transaction spends {}, no htlc output of our commitment {n}",
                txin.previous_output
            ))
        })?;
    let point = keys.per_commitment_point(secp, n).map_err(invalid)?;
    let basepoints = ctx.basepoints;
    let ckeys = CommitmentKeys::derive(secp, &point, &basepoints, &setup.counterparty_basepoints)
        .map_err(invalid)?;
    let htlc = h.as_htlc(Broadcaster::Holder);
    let built = build_htlc_tx(
        channel_type,
        txin.previous_output,
        &htlc,
        content.feerate,
        setup.counterparty_selected_delay,
        &ckeys,
    )
    .map_err(|e| htlc_structure(format!("htlc transaction of output {vout}: {e}")))?;
    if without_witness(tx) != built.tx {
        return Err(htlc_structure(format!(
            "htlc transaction of output {vout} differs from the one our commitment {n} implies"
        )));
    }
    if m.wscript != built.htlc_witness_script {
        return Err(htlc_structure(format!(
            "htlc transaction of output {vout}: the witness script is not that output's"
        )));
    }
    let value = spent_value(m.tx.psbt().psbt(), tx, 0, &m.wscript)?;
    if value != built.htlc_value {
        return Err(htlc_structure(format!(
            "the PSBT says output {vout} holds {value}, the htlc is {}",
            built.htlc_value
        )));
    }
    enforce(
        &s.policy,
        check_htlc_feerate(&s.policy.limits, channel_type, content.feerate, built.fee),
    )?;
    let key = derive_private_key(secp, keys.htlc_basepoint_secret(), &point).map_err(invalid)?;
    let reply = sign_reply(secp, &key, tx, &m.wscript, value, htlc_sighash_type(channel_type))?;
    on_chain(s, &m.peerid, m.channel_dbid, reply)
}

/// What onchaind and lightningd ask for here exists only once a commitment of the channel is
/// on chain (channeld's watchtower asks for `sign_penalty_to_us` in advance, so that one is
/// not evidence): the funding output is spent, recorded durably before the reply leaves.
fn on_chain(
    s: &Signer,
    peer: &NodeId,
    dbid: u64,
    reply: Vec<u8>,
) -> Result<Vec<u8>, BadRequestError> {
    s.channels.mark_funding_spent(slot(peer, dbid)?)?;
    Ok(reply)
}

// --- the three sweeps -------------------------------------------------------------------------

fn delayed_payment_to_us(
    s: &Signer,
    peer: &NodeId,
    dbid: u64,
    commit_num: u64,
    wtx: &BitcoinTx,
    wscript: &ScriptBuf,
    input: u32,
) -> Result<Vec<u8>, BadRequestError> {
    let secp = &s.secp;
    let ctx = s.channel_context(peer, dbid)?;
    let keys = &ctx.keys;
    let state = s.channels.snapshot(&slot(peer, dbid)?)?;
    let setup = state.setup().map_err(refused)?;
    let n = number(commit_num)?;
    if n.get() >= state.holder.next_number {
        return Err(sweep_structure(format!("our commitment {n} was never validated")));
    }
    let tx = wtx.tx();
    check_single_input(tx, input)?;
    let point = keys.per_commitment_point(secp, n).map_err(invalid)?;
    let basepoints = ctx.basepoints;
    let ckeys = CommitmentKeys::derive(secp, &point, &basepoints, &setup.counterparty_basepoints)
        .map_err(invalid)?;
    // The to_local output and our HTLC transactions' outputs share this script.
    let expected = to_local_witness_script(
        &ckeys.revocation,
        setup.counterparty_selected_delay,
        &ckeys.broadcaster_delayed_payment,
    );
    if *wscript != expected {
        return Err(sweep_structure(format!(
            "the witness script is not the to_local script of our commitment {n}"
        )));
    }
    let value = spent_value(wtx.psbt().psbt(), tx, 0, wscript)?;
    check_destinations(s, wtx)?;
    check_fee(s, tx, value, wscript)?;
    let key = derive_private_key(secp, keys.delayed_payment_basepoint_secret(), &point)
        .map_err(invalid)?;
    sign_reply(secp, &key, tx, wscript, value, EcdsaSighashType::All)
}

struct RemoteHtlc<'a> {
    point: PerCommitmentPoint,
    tx: &'a BitcoinTx,
    wscript: &'a ScriptBuf,
    anchors: bool,
    input: u32,
}

fn remote_htlc_to_us(
    s: &Signer,
    peer: &NodeId,
    dbid: u64,
    req: &RemoteHtlc<'_>,
) -> Result<Vec<u8>, BadRequestError> {
    let secp = &s.secp;
    let ctx = s.channel_context(peer, dbid)?;
    let keys = &ctx.keys;
    let state = s.channels.snapshot(&slot(peer, dbid)?)?;
    let setup = state.setup().map_err(refused)?;
    let channel_type = setup.channel_type().map_err(refused)?;
    check_anchor_flag(channel_type, req.anchors)?;
    let tx = req.tx.tx();
    check_single_input(tx, req.input)?;
    let commitment = [&state.counterparty.current, &state.counterparty.previous]
        .into_iter()
        .flatten()
        .find(|c| c.point == req.point)
        .ok_or_else(|| {
            sweep_structure("no commitment of the peer that Warden signed has this point")
        })?;
    let basepoints = ctx.basepoints;
    let ckeys =
        CommitmentKeys::derive(secp, &req.point, &setup.counterparty_basepoints, &basepoints)
            .map_err(invalid)?;
    let content = &commitment.content;
    let spent = tx.input.first().map(|i| i.previous_output);
    let matches = content.htlcs.iter().zip(&content.htlc_vouts).any(|(h, vout)| {
        let script = counterparty_htlc(h).witness_script(channel_type, &ckeys);
        *req.wscript == script && spent.is_some_and(|o| o.txid == content.txid && o.vout == *vout)
    });
    if !matches {
        return Err(sweep_structure(format!(
            "the input is no htlc output of the peer's commitment {} with that witness script",
            content.number
        )));
    }
    let value = spent_value(req.tx.psbt().psbt(), tx, 0, req.wscript)?;
    check_destinations(s, req.tx)?;
    check_fee(s, tx, value, req.wscript)?;
    let key =
        derive_private_key(secp, keys.htlc_basepoint_secret(), &req.point).map_err(invalid)?;
    sign_reply(secp, &key, tx, req.wscript, value, htlc_sighash_type(channel_type))
}

fn penalty_to_us(
    s: &Signer,
    peer: &NodeId,
    dbid: u64,
    secret: [u8; 32],
    wtx: &BitcoinTx,
    wscript: &ScriptBuf,
    input: u32,
) -> Result<Vec<u8>, BadRequestError> {
    let secp = &s.secp;
    let ctx = s.channel_context(peer, dbid)?;
    let keys = &ctx.keys;
    let state = s.channels.snapshot(&slot(peer, dbid)?)?;
    let setup = state.setup().map_err(refused)?;
    let channel_type = setup.channel_type().map_err(refused)?;
    let tx = wtx.tx();
    check_single_input(tx, input)?;
    let point = secret_point(secp, &secret)?;
    check_revealed(&state, &point, &secret)?;
    let basepoints = ctx.basepoints;
    let ckeys = CommitmentKeys::derive(secp, &point, &setup.counterparty_basepoints, &basepoints)
        .map_err(invalid)?;
    if !is_revoked_output_script(&state, setup, channel_type, &ckeys, wscript) {
        return Err(sweep_structure(
            "the witness script is no to_local or htlc output of the peer's revoked commitment",
        ));
    }
    let value = spent_value(wtx.psbt().psbt(), tx, 0, wscript)?;
    check_destinations(s, wtx)?;
    check_fee(s, tx, value, wscript)?;
    let secret = PerCommitmentSecret::new(secret);
    let key = derive_revocation_privkey(secp, keys.revocation_basepoint_secret(), &secret)
        .map_err(invalid)?;
    sign_reply(secp, &key, tx, wscript, value, EcdsaSighashType::All)
}

// --- checks -----------------------------------------------------------------------------------

/// hsmd's `handle_sign_to_us_tx` and `do_sign_local_htlc_tx`: one input, and the input named
/// must be it.
fn check_single_input(tx: &Transaction, input: u32) -> Result<(), BadRequestError> {
    if tx.input.len() != 1 || input != 0 {
        return Err(sweep_structure(format!(
            "a sweep spends one input (input {input} asked of {} inputs)",
            tx.input.len()
        )));
    }
    Ok(())
}

fn check_anchor_flag(channel_type: ChannelType, flag: bool) -> Result<(), BadRequestError> {
    if channel_type.has_anchors() != flag {
        return Err(rule(
            Rule::HtlcSighash,
            "option_anchor_outputs disagrees with the channel type",
        ));
    }
    Ok(())
}

/// hsmd signs HTLC spends `SIGHASH_SINGLE|ANYONECANPAY` on anchor channels (for our HTLC
/// transactions and for the peer's HTLC outputs alike), `SIGHASH_ALL` otherwise.
fn htlc_sighash_type(channel_type: ChannelType) -> EcdsaSighashType {
    if channel_type.has_anchors() {
        EcdsaSighashType::SinglePlusAnyoneCanPay
    } else {
        EcdsaSighashType::All
    }
}

/// The spent value, from the PSBT input's `witness_utxo` (as hsmd takes it), once that output
/// is shown to be locked by `wscript` and the PSBT input spends the same outpoint.
fn spent_value(
    psbt: &Psbt,
    tx: &Transaction,
    index: usize,
    wscript: &Script,
) -> Result<Sat, BadRequestError> {
    let outpoint = tx.input.get(index).map(|i| i.previous_output);
    let psbt_outpoint = psbt.unsigned_tx.input.get(index).map(|i| i.previous_output);
    if outpoint.is_none() || outpoint != psbt_outpoint {
        return Err(sweep_structure(format!(
            "the PSBT's input {index} is not the transaction's input {index}"
        )));
    }
    let utxo =
        psbt.inputs.get(index).and_then(|i| i.witness_utxo.as_ref()).ok_or_else(|| {
            sweep_structure(format!("the PSBT's input {index} has no witness_utxo"))
        })?;
    if utxo.script_pubkey != wscript.to_p2wsh() {
        return Err(sweep_structure(format!(
            "the PSBT's input {index} is not locked by the P2WSH of the witness script"
        )));
    }
    Ok(Sat(utxo.value.to_sat()))
}

fn secret_point(
    secp: &Secp256k1<All>,
    secret: &[u8; 32],
) -> Result<PerCommitmentPoint, BadRequestError> {
    let mut sk = SecretKey::from_slice(secret)
        .map_err(|_| sweep_structure("the revocation secret is not a valid private key"))?;
    let point = PerCommitmentPoint(PublicKey::from_secret_key(secp, &sk));
    sk.non_secure_erase();
    Ok(point)
}

/// The penalty's secret must be one the peer revealed: for its current or previous
/// commitment (whose number Warden knows) the stored secret of that number; otherwise one of
/// the last [`PENALTY_SCAN`] revealed secrets (see there for older ones).
fn check_revealed(
    state: &ChannelState,
    point: &PerCommitmentPoint,
    secret: &[u8; 32],
) -> Result<(), BadRequestError> {
    let c = &state.counterparty;
    let revealed = |n: u64| -> bool {
        CommitmentNumber::new(n)
            .ok()
            .and_then(|n| c.secrets.get(n.shachain_index()))
            .is_some_and(|s| bool::from(s.ct_eq(secret)))
    };
    let known = [&c.current, &c.previous]
        .into_iter()
        .flatten()
        .find(|k| k.point == *point)
        .map(|k| k.content.number.get());
    let found = match known {
        Some(n) => n < c.revoked_below && revealed(n),
        None => {
            let low = c.revoked_below.saturating_sub(PENALTY_SCAN);
            low > 0 || (low..c.revoked_below).rev().any(revealed)
        }
    };
    if !found {
        return Err(sweep_structure("the revocation secret is not one the peer revealed"));
    }
    Ok(())
}

/// Whether `wscript` is an output script of the peer's commitment with `keys`: its to_local
/// (or its HTLC transactions' output), or one of its HTLC outputs — exactly when Warden still
/// holds that commitment, by template otherwise (any payment hash and expiry, with the keys
/// of this commitment).
fn is_revoked_output_script(
    state: &ChannelState,
    setup: &ChannelSetup,
    channel_type: ChannelType,
    keys: &CommitmentKeys,
    wscript: &Script,
) -> bool {
    let to_local = to_local_witness_script(
        &keys.revocation,
        setup.holder_selected_delay,
        &keys.broadcaster_delayed_payment,
    );
    if wscript == to_local.as_script() {
        return true;
    }
    let c = &state.counterparty;
    let held = [&c.current, &c.previous]
        .into_iter()
        .flatten()
        .find(|k| k.point == keys.per_commitment_point);
    match held {
        Some(k) => k
            .content
            .htlcs
            .iter()
            .any(|h| counterparty_htlc(h).witness_script(channel_type, keys) == *wscript),
        None => matches_htlc_template(channel_type, keys, wscript),
    }
}

/// An HTLC of the peer's commitment, seen from the peer as broadcaster.
fn counterparty_htlc(h: &warden_core::channel::HtlcInfo) -> Htlc {
    h.as_htlc(Broadcaster::Counterparty)
}

/// Whether `wscript` is an offered or received HTLC script with `keys`, for some payment hash
/// (and, received, the expiry it carries): the template built with a zero payment hash must
/// equal it everywhere but the 20 bytes of `RIPEMD160(payment_hash)`.
fn matches_htlc_template(
    channel_type: ChannelType,
    keys: &CommitmentKeys,
    wscript: &Script,
) -> bool {
    let h0 = PaymentHash([0; 32]);
    let offered = offered_htlc_witness_script(
        channel_type,
        &keys.revocation,
        &keys.broadcaster_htlc,
        &keys.countersignatory_htlc,
        &h0,
    );
    if equal_but_hash(wscript, &offered, &h0) {
        return true;
    }
    let Some(cltv) = cltv_of(wscript) else { return false };
    let received = received_htlc_witness_script(
        channel_type,
        &keys.revocation,
        &keys.broadcaster_htlc,
        &keys.countersignatory_htlc,
        &h0,
        cltv,
    );
    equal_but_hash(wscript, &received, &h0)
}

/// Whether `s` equals `template` except inside the template's `RIPEMD160(hash)` push.
fn equal_but_hash(s: &Script, template: &Script, hash: &PaymentHash) -> bool {
    let digest = ripemd160::Hash::hash(&hash.0).to_byte_array();
    let (s, t) = (s.as_bytes(), template.as_bytes());
    let Some(at) = t.windows(digest.len()).position(|w| w == digest) else { return false };
    let end = at + digest.len();
    s.len() == t.len() && s.get(..at) == t.get(..at) && s.get(end..) == t.get(end..)
}

/// The number pushed just before `OP_CHECKLOCKTIMEVERIFY`, if any.
fn cltv_of(script: &Script) -> Option<u32> {
    let mut previous: Option<Instruction<'_>> = None;
    for ins in script.instructions() {
        let ins = ins.ok()?;
        if ins == Instruction::Op(OP_CLTV) {
            return previous.and_then(|p| p.script_num()).and_then(|n| u32::try_from(n).ok());
        }
        previous = Some(ins);
    }
    None
}

fn without_witness(tx: &Transaction) -> Transaction {
    let mut tx = tx.clone();
    for input in &mut tx.input {
        input.witness = Witness::new();
    }
    tx
}

fn sign_reply(
    secp: &Secp256k1<All>,
    key: &PrivateKey,
    tx: &Transaction,
    wscript: &Script,
    value: Sat,
    sighash_type: EcdsaSighashType,
) -> Result<Vec<u8>, BadRequestError> {
    let sig =
        sign::sign_p2wsh_input(secp, key, tx, 0, wscript, value, sighash_type).map_err(invalid)?;
    encode(&SignTxReply { sig })
}

// --- fee --------------------------------------------------------------------------------------

/// `sweep-fee-range` (see `warden_core::policy::sweep`): the fee of a sweep spending `value`
/// through `wscript`, over an upper bound of its final weight.
fn check_fee(
    s: &Signer,
    tx: &Transaction,
    value: Sat,
    wscript: &Script,
) -> Result<(), BadRequestError> {
    let outputs =
        tx.output.iter().map(|o| o.value.to_sat()).fold(0u64, |sum, v| sum.saturating_add(v));
    // Marker and flag, the witness (signature, one element, the script) over the bare tx.
    let witness = 2 + SWEEP_WITNESS_OVERHEAD + wscript.len() as u64;
    let weight = without_witness(tx).weight().to_wu().saturating_add(witness);
    enforce(&s.policy, check_sweep_fee(&s.policy.limits, value, Sat(outputs), weight))
}

// --- destinations -----------------------------------------------------------------------------

/// Every output must pay our wallet or the allowlist (`sweep-destination`).
fn check_destinations(s: &Signer, wtx: &BitcoinTx) -> Result<(), BadRequestError> {
    let tx = wtx.tx();
    let psbt = wtx.psbt().psbt();
    if tx.output.is_empty() {
        return Err(sweep_structure("a sweep without outputs"));
    }
    let window = s.wallet_scripts();
    for (i, out) in tx.output.iter().enumerate() {
        let spk = &out.script_pubkey;
        let meta = psbt
            .outputs
            .get(i)
            .filter(|_| psbt.unsigned_tx.output.get(i).map(|o| &o.script_pubkey) == Some(spk));
        if !pays_wallet(&s.secp, &s.keys, &window, spk, meta) && !s.policy.allowlist.contains(spk) {
            return Err(rule(
                Rule::SweepDestination,
                format!(
                    "sweep output {i} pays {spk}, neither a wallet address Warden can derive \
                     nor allowlisted"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;
    use warden_core::keys::{Basepoints, DelayedPaymentBasepoint, HtlcBasepoint};
    use warden_core::keys::{PaymentBasepoint, RevocationBasepoint};

    fn keys() -> CommitmentKeys {
        let secp = Secp256k1::new();
        let p =
            |b: u8| PublicKey::from_secret_key(&secp, &SecretKey::from_slice(&[b; 32]).unwrap());
        let bp = |b: u8| Basepoints {
            revocation: RevocationBasepoint(p(b)),
            payment: PaymentBasepoint(p(b + 1)),
            htlc: HtlcBasepoint(p(b + 2)),
            delayed_payment: DelayedPaymentBasepoint(p(b + 3)),
        };
        CommitmentKeys::derive(&secp, &PerCommitmentPoint(p(9)), &bp(1), &bp(5)).unwrap()
    }

    #[test]
    fn htlc_templates_match_any_hash_and_expiry() {
        let k = keys();
        for ct in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
            let h = PaymentHash([7; 32]);
            let offered = offered_htlc_witness_script(
                ct,
                &k.revocation,
                &k.broadcaster_htlc,
                &k.countersignatory_htlc,
                &h,
            );
            assert!(matches_htlc_template(ct, &k, &offered));
            for cltv in [0, 16, 500, 700_000] {
                let received = received_htlc_witness_script(
                    ct,
                    &k.revocation,
                    &k.broadcaster_htlc,
                    &k.countersignatory_htlc,
                    &h,
                    cltv,
                );
                assert_eq!(cltv_of(&received), Some(cltv), "{cltv}");
                assert!(matches_htlc_template(ct, &k, &received), "{cltv}");
            }
            // Another key: no match.
            let other = offered_htlc_witness_script(
                ct,
                &k.revocation,
                &k.countersignatory_htlc,
                &k.countersignatory_htlc,
                &h,
            );
            assert!(!matches_htlc_template(ct, &k, &other));
        }
    }
}
