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
use warden_testkit::{
    locate_binary, perms, Change, ChannelParams, Funder, HsmdError, Node, Unilateral, Who,
};
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
    // The refusal is also in lightningd's log, as a policy line naming the rule.
    let events = n.hsmd.status().policy_events();
    assert!(
        events.last().is_some_and(|l| l.contains(tag)),
        "no policy log line for {tag}: {events:?}"
    );
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

/// Sends `req` on a fresh channeld client and asserts it is refused by `tag`.
fn assert_channeld_refused<M: warden_wire::Message>(n: &mut Node, req: &M, tag: &str) {
    let ch = &n.channel;
    let mut channeld =
        n.hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD).unwrap();
    match channeld.request(req) {
        Err(e @ HsmdError::Refused { .. }) => {
            let text = e.to_string();
            assert!(text.contains(tag), "refused, but not by {tag}: {text}");
        }
        other => panic!("expected a refusal by {tag}, got {other:?}"),
    }
    // The refusal is also in lightningd's log, as a policy line naming the rule.
    let events = n.hsmd.status().policy_events();
    assert!(
        events.last().is_some_and(|l| l.contains(tag)),
        "no policy log line for {tag}: {events:?}"
    );
}

fn with_tx<F: FnOnce(&mut bitcoin::Transaction)>(
    n: &Node,
    req: &warden_wire::msg::SignRemoteCommitmentTx,
    change: F,
) -> warden_wire::msg::SignRemoteCommitmentTx {
    let mut tx = req.tx.tx().clone();
    change(&mut tx);
    let mut out = req.clone();
    out.tx = bitcoin_tx(&tx, &[n.channel.funding_spent()]).unwrap();
    out
}

#[test]
fn commitment_attacks_are_refused() {
    for t in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        let mut n = node(t, Funder::Us);
        let htlc = n.channel.new_htlc(Who::Us, Msat(30_000_000), [5; 32], 900);
        let next = n.channel.remote.apply(&[Change::Add(htlc)]).unwrap();
        let num = n.channel.remote_num + 1;
        let (legit, built) = n.channel.sign_remote_commitment(num, &next).unwrap();
        let legit = legit.request;

        // An extra output paying a foreign script.
        let req = with_tx(&n, &legit, |tx| {
            tx.output.push(TxOut { value: Amount::from_sat(5_000), script_pubkey: foreign() })
        });
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        // Each HTLC output's value altered. (A main output's value is what the balance rule,
        // `commitment-balance`, will check against the state's balances: not enforced yet.)
        for i in 0..legit.tx.tx().output.len() {
            if !matches!(built.outputs[i].kind, warden_core::tx::CommitmentOutputKind::Htlc { .. })
            {
                continue;
            }
            let req = with_tx(&n, &legit, |tx| {
                tx.output[i].value = Amount::from_sat(tx.output[i].value.to_sat() + 1)
            });
            assert_channeld_refused(&mut n, &req, "commitment-structure");
        }
        // Each output's script replaced (wrong keys).
        for i in 0..legit.tx.tx().output.len() {
            let req = with_tx(&n, &legit, |tx| tx.output[i].script_pubkey = foreign());
            assert_channeld_refused(&mut n, &req, "commitment-structure");
        }
        // Locktime and sequence (the obscured number), version, input.
        let req = with_tx(&n, &legit, |tx| {
            tx.lock_time =
                bitcoin::absolute::LockTime::from_consensus(tx.lock_time.to_consensus_u32() ^ 1)
        });
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        let req = with_tx(&n, &legit, |tx| {
            tx.input[0].sequence = bitcoin::Sequence(tx.input[0].sequence.0 ^ 1)
        });
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        let req = with_tx(&n, &legit, |tx| tx.version = bitcoin::transaction::Version::ONE);
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        let req = with_tx(&n, &legit, |tx| tx.input[0].previous_output.vout ^= 1);
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        // Another per-commitment point (wrong keys for every script).
        let mut req = legit.clone();
        req.remote_per_commit = n.channel.peer().per_commitment_point(num + 5).unwrap().0;
        assert_channeld_refused(&mut n, &req, "commitment-structure");
        // An absurd feerate.
        let mut absurd = next.clone();
        absurd.feerate = warden_core::units::FeeratePerKw(1_000_000);
        let (req, _) = n.channel.sign_remote_commitment(num, &absurd).unwrap();
        assert_channeld_refused(&mut n, &req.request, "commitment-fee-range");
        // A skipped number.
        let (req, _) = n.channel.sign_remote_commitment(num + 1, &next).unwrap();
        assert_channeld_refused(&mut n, &req.request, "commitment-number");
        // Value moved from us to the peer without an HTLC (a consistent transaction otherwise).
        for moved in [1_000_000, 50_000_000] {
            let mut stolen = next.clone();
            stolen.to_us = Msat(stolen.to_us.0 - moved);
            stolen.to_them = Msat(stolen.to_them.0 + moved);
            let (req, _) = n.channel.sign_remote_commitment(num, &stolen).unwrap();
            assert_channeld_refused(&mut n, &req.request, "commitment-balance");
        }

        // The legitimate round still goes through after all of that.
        n.round(Who::Us, &[Change::Add(htlc)]).unwrap();

        // A retry of the commitment just signed, with other content.
        // (The HTLC just added, failed back to us instead.)
        let mut other = n.channel.remote.clone();
        other.htlcs.retain(|h| h.id != htlc.id);
        other.to_us = Msat(other.to_us.0 + htlc.amount.0);
        let (req, _) = n.channel.sign_remote_commitment(n.channel.remote_num, &other).unwrap();
        assert_channeld_refused(&mut n, &req.request, "commitment-retry-same");

        // Our next commitment with an invalid peer signature.
        let local_next = n.channel.local.apply(&[Change::Fulfill(htlc.id)]).unwrap();
        let (mut req, _) =
            n.channel.validate_commitment(n.channel.local_num + 1, &local_next).unwrap();
        let (other_req, _) =
            n.channel.validate_commitment(n.channel.local_num, &n.channel.local).unwrap();
        req.sig = other_req.sig;
        assert_channeld_refused(&mut n, &req, "commitment-peer-signature");

        // Revoking our current commitment before its successor is validated.
        let (revoke, _) = n.channel.revoke_commitment(n.channel.local_num).unwrap();
        assert_channeld_refused(&mut n, &revoke, "revoke-new-commitment-validated");

        // The peer's secret for its revoked commitment replaced by one that does not match.
        let mut bad = n.channel.validate_revocation(n.channel.remote_num - 1).unwrap();
        bad.per_commitment_secret = warden_wire::Secret::new([0x42; 32]);
        assert_channeld_refused(&mut n, &bad, "revoke-peer-secret");

        assert!(n.hsmd.status().failures().is_empty(), "warden-hsmd stopped");
    }
}

/// The hole VLS leaves: our commitment `n` signed for broadcast, then revoked.
#[test]
fn revoke_after_broadcast_is_refused() {
    let mut n = node(ChannelType::AnchorsZeroFeeHtlc, Funder::Them);
    let (sign, _) = n.channel.sign_commitment().unwrap();
    let master = n.hsmd.master();
    let _: warden_wire::msg::SignCommitmentTxReply = master.call(&sign.request).unwrap();
    // The peer sends commitment_signed for our next commitment: no new state once we close.
    let next = n.channel.local.apply(&[]).unwrap();
    let (validate, _) = n.channel.validate_commitment(n.channel.local_num + 1, &next).unwrap();
    assert_channeld_refused(&mut n, &validate, "commitment-channel-closed");
    let (revoke, _) = n.channel.revoke_commitment(n.channel.local_num).unwrap();
    assert_channeld_refused(&mut n, &revoke, "revoke-after-broadcast");
}

/// lightningd asks to broadcast a revoked commitment: refused, and as it came on the master
/// connection, warden-hsmd stops (status_fail) rather than sign.
#[test]
fn broadcast_of_a_revoked_commitment_is_refused() {
    let mut n = node(ChannelType::StaticRemoteKey, Funder::Us);
    let mut sign = n.channel.sign_commitment().unwrap().0.request;
    let old = n.channel.local_num - 1;
    let old_state = n.channel.local.clone();
    let built = n.channel.our_commitment(old, &old_state).unwrap();
    sign.commit_num = old;
    sign.tx = bitcoin_tx(&built.tx, &[n.channel.funding_spent()]).unwrap();
    let master = n.hsmd.master();
    match master.request(&sign) {
        Err(e @ HsmdError::Refused { .. }) => {
            assert!(e.to_string().contains("sweep-holder-revoked"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// onchaind's sweep of our delayed output, with all but 1,000 sat of it given to fees: refused
/// by `sweep-fee-range` (on the master connection, so warden-hsmd stops rather than sign); the
/// same sweep as built was signed just before.
#[test]
fn a_sweep_that_burns_the_output_is_refused() {
    use warden_core::tx::CommitmentOutputKind;
    use warden_testkit::verify::SpentOutput;
    let mut n = node(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let (sign, built) = n.channel.sign_commitment().unwrap();
    let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let legit = n.channel.sign_delayed_to_us(&built, built.outpoint(vout), out.value).unwrap();
    let master = n.hsmd.master();
    let _: warden_wire::msg::SignCommitmentTxReply = master.call(&sign.request).unwrap();
    let _: warden_wire::msg::SignTxReply = master.call(&legit.request).unwrap();
    let input = &legit.request.tx.psbt().psbt().inputs[0];
    let spent = SpentOutput {
        txout: input.witness_utxo.clone().unwrap(),
        witness_script: input.witness_script.clone(),
    };
    let mut tx = legit.request.tx.tx().clone();
    tx.output[0].value = Amount::from_sat(1_000);
    let mut burn = legit.request.clone();
    burn.tx = bitcoin_tx(&tx, &[spent]).unwrap();
    match master.request(&burn) {
        Err(e @ HsmdError::Refused { .. }) => {
            assert!(e.to_string().contains("sweep-fee-range"), "{e}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The peer's commitment reached the chain and onchaind swept our HTLC from it: the funding
/// output is spent. A compromised node then asks for a new state (a next commitment of ours
/// to validate, a next one of theirs to sign): refused (`commitment-funding-spent`), although
/// we never signed a close ourselves.
#[test]
fn new_state_after_the_funding_is_spent_is_refused() {
    let mut n = node(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let htlc = n.channel.new_htlc(Who::Us, Msat(20_000_000), [5; 32], 900);
    n.round(Who::Us, &[Change::Add(htlc)]).unwrap();
    n.unilateral_close_with_sweeps(Unilateral::Theirs).unwrap();
    let next = n.channel.local.apply(&[]).unwrap();
    let (validate, _) = n.channel.validate_commitment(n.channel.local_num + 1, &next).unwrap();
    assert_channeld_refused(&mut n, &validate, "commitment-funding-spent");
    let next = n.channel.remote.apply(&[]).unwrap();
    let (sign, _) = n.channel.sign_remote_commitment(n.channel.remote_num + 1, &next).unwrap();
    assert_channeld_refused(&mut n, &sign.request, "commitment-funding-spent");
}
