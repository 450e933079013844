//! A compromised node against the spawned `warden-hsmd`: legitimate requests changed in one
//! adversarial way are refused with the rule that catches them (the rule's tag appears in the
//! `hsmstatus_client_bad_request` report), no signature comes back, and the honest channel
//! goes on afterwards.
#![cfg(feature = "flows")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::{Amount, ScriptBuf, TxOut};
use warden_core::tx::ChannelType;
use warden_core::units::Msat;
use warden_testkit::verify::bitcoin_tx;
use warden_testkit::{locate_binary, perms, Change, ChannelParams, Funder, HsmdError, Node, Who};
use warden_wire::msg::SignMutualCloseTx;

use bitcoin::hashes::Hash;

fn node(t: ChannelType, f: Funder) -> Node {
    let bin = locate_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut n = Node::start(&bin, ChannelParams::new(t, f)).unwrap();
    n.open().unwrap();
    n.update_rounds(6, 11).unwrap();
    n
}

/// Sends `req` on a fresh closingd client and asserts it is refused by `tag`.
fn assert_close_refused(n: &mut Node, req: &SignMutualCloseTx, tag: &str) {
    let ch = &n.channel;
    let mut closingd =
        n.hsmd.client("closingd", ch.peer_id(), ch.params().dbid, perms::CLOSINGD).unwrap();
    match closingd.request(req) {
        Err(e @ HsmdError::Refused { .. }) => {
            let text = e.to_string();
            assert!(text.contains(tag), "refused, but not by {tag}: {text}");
        }
        other => panic!("expected a refusal by {tag}, got {other:?}"),
    }
}

/// A legitimate close request after every HTLC settled, and its fee.
fn settled_close(n: &mut Node) -> SignMutualCloseTx {
    for receiver in [Who::Us, Who::Them] {
        let settle: Vec<Change> = n
            .channel
            .local
            .htlcs
            .iter()
            .filter(|h| h.offerer != receiver)
            .map(|h| Change::Fulfill(h.id))
            .collect();
        if !settle.is_empty() {
            n.round(receiver, &settle).unwrap();
        }
    }
    let fee = n.channel.local.feerate.fee_for_weight(724);
    n.channel.sign_mutual_close(fee).unwrap().request
}

fn with_outputs(n: &Node, req: &SignMutualCloseTx, outputs: Vec<TxOut>) -> SignMutualCloseTx {
    let mut tx = req.tx.tx().clone();
    tx.output = outputs;
    SignMutualCloseTx {
        tx: bitcoin_tx(&tx, &[n.channel.funding_spent()]).unwrap(),
        remote_funding_key: req.remote_funding_key,
    }
}

fn foreign() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xee; 20]))
}

#[test]
fn mutual_close_attacks_are_refused() {
    for t in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        for f in [Funder::Us, Funder::Them] {
            let mut n = node(t, f);
            let legit = settled_close(&mut n);
            let outs = legit.tx.tx().output.clone();
            let ours = n.channel.wallet_script(2).unwrap();
            let (our_i, their_i) = if outs[0].script_pubkey == ours { (0, 1) } else { (1, 0) };

            // Our share to a foreign address.
            let mut o = outs.clone();
            o[our_i].script_pubkey = foreign();
            let req = with_outputs(&n, &legit, o);
            assert_close_refused(&mut n, &req, "close-destination");

            // A third output.
            let mut o = outs.clone();
            o[our_i].value = Amount::from_sat(o[our_i].value.to_sat() - 10_000);
            o.push(TxOut { value: Amount::from_sat(10_000), script_pubkey: foreign() });
            let req = with_outputs(&n, &legit, o);
            assert_close_refused(&mut n, &req, "close-structure");

            // Value moved from us to the peer.
            let mut o = outs.clone();
            o[our_i].value = Amount::from_sat(o[our_i].value.to_sat() - 50_000);
            o[their_i].value = Amount::from_sat(o[their_i].value.to_sat() + 50_000);
            let req = with_outputs(&n, &legit, o);
            assert_close_refused(&mut n, &req, "close-value");

            // Our share burnt as fee.
            let mut o = outs.clone();
            o[our_i].value = Amount::from_sat(1_000);
            let req = with_outputs(&n, &legit, o);
            let tag = match f {
                Funder::Us => "close-fee-range",
                Funder::Them => "close-value",
            };
            assert_close_refused(&mut n, &req, tag);

            // The honest close still goes through.
            n.cooperative_close().unwrap();
            assert!(n.hsmd.status().failures().is_empty(), "warden-hsmd stopped");
        }
    }
}

#[test]
fn mutual_close_with_pending_htlcs_is_refused() {
    let mut n = node(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let legit = settled_close(&mut n);
    // Add an HTLC: both commitments now carry it; the close the node asks for ignores it.
    let htlc = n.channel.new_htlc(Who::Us, Msat(20_000_000), [9; 32], 900);
    n.round(Who::Us, &[Change::Add(htlc)]).unwrap();
    assert_close_refused(&mut n, &legit, "close-pending-htlcs");
}
