//! Seed-only recovery (issue 5 point 2a): the store is lost, the node ran `recoverchannel` with
//! a static channel backup, and the peer force-closed. Core Lightning then holds our output of
//! the peer's commitment as a wallet UTXO with `close_info` (channel dbid, peer, no commitment
//! point with `option_static_remotekey`, `option_anchors` and its CSV of 1) and spends it
//! through `sign_withdrawal` like any wallet coin (`hsm_unilateral_close_privkey` in its hsmd).
//!
//! Before that, lightningd asks for the recovered channel's basepoints, the script of our
//! output of a peer's close and our per-commitment points: all derived from the seed.
//!
//! Warden, with the seed and an empty store, signs that spend when the key it derives from the
//! seed for (peer, dbid) locks the UTXO's script (so the output is provably ours) and the
//! destination is our wallet; it refuses a foreign destination, and a `close_info` whose
//! derivation does not give the UTXO's script.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod flow;

use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    Witness,
};
use flow::{new_dir, start_with, Flow};
use secp256k1::{Message, PublicKey};
use warden_core::policy::Rule;
use warden_hsmd::durable::STORE_DIR;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, Outcome, Signer};
use warden_wire::msg::{
    GetChannelBasepoints, GetChannelBasepointsReply, GetOutputScriptpubkey,
    GetOutputScriptpubkeyReply, GetPerCommitmentPoint, GetPerCommitmentPointReply, SignWithdrawal,
    SignWithdrawalReply,
};
use warden_wire::{CloseInfo, HsmUtxo, Message as _, WirePsbt};

/// `<key> OP_CHECKSIGVERIFY 1 OP_CHECKSEQUENCEVERIFY`: BOLT 3's anchored to_remote.
fn to_remote_anchored(key: &PublicKey) -> ScriptBuf {
    bitcoin::script::Builder::new()
        .push_slice(key.serialize())
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(bitcoin::opcodes::all::OP_CSV)
        .into_script()
}

fn spend(prev: OutPoint, spent: &TxOut, to: ScriptBuf, fee: u64) -> Psbt {
    let tx = Transaction {
        version: Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: prev,
            script_sig: ScriptBuf::new(),
            sequence: Sequence(1),
            witness: Witness::new(),
        }],
        output: vec![TxOut { value: spent.value - Amount::from_sat(fee), script_pubkey: to }],
    };
    let mut p = Psbt::from_unsigned_tx(tx).unwrap();
    p.inputs[0].witness_utxo = Some(spent.clone());
    p
}

fn sign(s: &Signer, utxo: HsmUtxo, psbt: Psbt) -> Result<Psbt, BadRequestError> {
    let ctx = warden_hsmd::signer::ClientContext {
        id: s.node_id(),
        dbid: 0,
        permissions: permissions::ALL,
    };
    let body = SignWithdrawal { inputs: vec![utxo], psbt: WirePsbt::new(psbt) }.encode().unwrap();
    match s.handle(&ctx, &body)? {
        Outcome::Reply(r) => Ok(SignWithdrawalReply::decode(&r).unwrap().psbt.into_psbt()),
        Outcome::NewClient { .. } => panic!("unexpected new client"),
    }
}

fn refused_rule(r: Result<Psbt, BadRequestError>) -> Rule {
    match r {
        Err(BadRequestError::Refused(e)) => e.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn with_an_empty_store_our_output_of_the_peers_force_close_is_swept_to_our_wallet_only() {
    // A channel with some history; the peer's latest commitment is what it broadcasts.
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, Vec::new()).unwrap();
    flow.open(&s);
    flow.round(&s);
    flow.round(&s);
    drop(s);
    let theirs = flow.ch.their_commitment(flow.ch.remote_num, &flow.ch.remote).unwrap();

    // Everything but the seed is lost.
    std::fs::remove_dir_all(dir.path().join(STORE_DIR)).unwrap();
    let s = start_with(dir.path(), 2, Vec::new()).unwrap();

    // What lightningd asks for a recovered (stub) channel, all derived from the seed: our
    // basepoints and funding key for (peer, dbid), the script of our output of a peer's close
    // (how it recognises the output), our per-commitment points.
    let basepoints: GetChannelBasepointsReply = flow.call(
        &s,
        permissions::ALL,
        &GetChannelBasepoints { peerid: flow.ch.peer_id(), dbid: flow.ch.params().dbid },
    );
    let ours = flow.ch.our_basepoints();
    assert_eq!(basepoints.basepoints.payment, ours.payment.0);
    assert_eq!(basepoints.basepoints.revocation, ours.revocation.0);
    assert_eq!(basepoints.funding_pubkey, flow.ch.our_funding().0);
    let script: GetOutputScriptpubkeyReply = flow.call(
        &s,
        permissions::ALL,
        &GetOutputScriptpubkey {
            channel_id: flow.ch.params().dbid,
            peer_id: flow.ch.peer_id(),
            commitment_point: None,
        },
    );
    assert_eq!(
        script.script,
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(ours.payment.0).wpubkey_hash())
    );
    let point: GetPerCommitmentPointReply =
        flow.call(&s, warden_testkit::perms::CHANNELD, &GetPerCommitmentPoint { n: 5 });
    assert_eq!(point.per_commitment_point, flow.ch.our_point(5).unwrap().0);

    // Our output of their commitment (static remote key, anchors: P2WSH with a CSV of 1 to
    // our payment basepoint), found by its script in the real transaction.
    let payment = flow.ch.our_basepoints().payment.0;
    let ws = to_remote_anchored(&payment);
    let (vout, ours) = theirs
        .tx
        .output
        .iter()
        .enumerate()
        .find(|(_, o)| o.script_pubkey == ws.to_p2wsh())
        .unwrap();
    assert!(ours.value.to_sat() > 0);
    let prev = OutPoint { txid: theirs.tx.compute_txid(), vout: vout as u32 };
    let close_info = CloseInfo {
        channel_id: flow.ch.params().dbid,
        peer_id: flow.ch.peer_id(),
        commitment_point: None,
        option_anchors: true,
        csv: 1,
    };
    let utxo = HsmUtxo {
        outpoint: prev,
        amount: ours.value,
        keyindex: 0,
        legacy_is_p2sh: false,
        script_pubkey: ws.to_p2wsh(),
        close_info: Some(close_info),
        legacy_is_in_coinbase: false,
    };

    // To our wallet: signed, with the witness script, by the payment basepoint's key.
    let to_wallet = spend(prev, ours, flow.ch.wallet_script(3).unwrap(), 500);
    let signed = sign(&s, utxo.clone(), to_wallet).unwrap();
    assert_eq!(signed.inputs[0].witness_script.as_ref(), Some(&ws));
    let sig = signed.inputs[0].partial_sigs[&bitcoin::PublicKey::new(payment)];
    let digest = SighashCache::new(&signed.unsigned_tx)
        .p2wsh_signature_hash(0, &ws, ours.value, EcdsaSighashType::All)
        .unwrap();
    flow.ch
        .secp()
        .verify_ecdsa(&Message::from_digest(digest.to_byte_array()), &sig.signature, &payment)
        .unwrap();

    // To someone else's address: refused, nothing signed.
    let foreign =
        ScriptBuf::new_p2wpkh(&CompressedPublicKey(flow.ch.our_funding().0).wpubkey_hash());
    let away = spend(prev, ours, foreign, 500);
    assert_eq!(refused_rule(sign(&s, utxo.clone(), away)), Rule::OnchainUnknownDestination);

    // A close_info the seed does not prove: another dbid derives another key.
    let mut wrong = utxo.clone();
    wrong.close_info = Some(CloseInfo { channel_id: close_info.channel_id + 1, ..close_info });
    let to_wallet = spend(prev, ours, flow.ch.wallet_script(3).unwrap(), 500);
    assert_eq!(refused_rule(sign(&s, wrong, to_wallet)), Rule::OnchainInputAmount);

    // Without anchors (static remote key only), the output is a P2WPKH of the same key.
    let p2wpkh = ScriptBuf::new_p2wpkh(&CompressedPublicKey(payment).wpubkey_hash());
    let spent = TxOut { value: Amount::from_sat(40_000), script_pubkey: p2wpkh.clone() };
    let plain = HsmUtxo {
        script_pubkey: p2wpkh,
        amount: spent.value,
        close_info: Some(CloseInfo {
            option_anchors: false,
            csv: 0,
            commitment_point: None,
            channel_id: flow.ch.params().dbid,
            peer_id: flow.ch.peer_id(),
        }),
        ..utxo
    };
    let signed =
        sign(&s, plain, spend(prev, &spent, flow.ch.wallet_script(4).unwrap(), 300)).unwrap();
    assert!(signed.inputs[0].partial_sigs.contains_key(&bitcoin::PublicKey::new(payment)));
}
