//! A compromised node against the spawned `warden-hsmd` during a splice: a splice that moves
//! our value away, and commitments on a splice whose balances do not match its relative
//! amounts, are refused with the rule that catches them (its tag in the refusal), and no
//! signature comes back.
#![cfg(feature = "flows")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, ScriptBuf};
use warden_core::tx::ChannelType;
use warden_core::units::Msat;
use warden_testkit::channel::Splice;
use warden_testkit::{locate_binary, perms, ChannelParams, FlowError, Funder, HsmdError, Node};
use warden_wire::msg::*;

fn node(t: ChannelType, f: Funder) -> Node {
    let bin = locate_binary().unwrap_or_else(|e| panic!("{e}"));
    let mut n = Node::start(&bin, ChannelParams::new(t, f)).unwrap();
    n.open().unwrap();
    n.update_rounds(4, 31).unwrap();
    n
}

fn foreign() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xee; 20]))
}

/// The splice's new outpoint after its transaction changed.
fn rehash(s: &mut Splice) {
    s.outpoint = OutPoint { txid: s.tx.compute_txid(), vout: 0 };
}

fn assert_refused(r: Result<(), FlowError>, tag: &str, last: u16, n: &Node) {
    match r {
        Err(FlowError::Hsmd(e @ HsmdError::Refused { .. })) => {
            let text = e.to_string();
            assert!(text.contains(tag), "refused, but not by {tag}: {text}");
        }
        other => panic!("expected a refusal by {tag}, got {other:?}"),
    }
    let entries = n.hsmd.transcript().entries();
    assert_eq!(entries.last().map(|e| e.1), Some(last), "refused at another request");
}

#[test]
fn a_splice_that_moves_our_value_away_is_refused() {
    for t in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        for f in [Funder::Us, Funder::Them] {
            // A splice-out whose payout goes to a foreign address instead of our wallet.
            let mut n = node(t, f);
            let mut s = n.channel.splice(-20_000).unwrap();
            s.tx.output[1].script_pubkey = foreign();
            rehash(&mut s);
            assert_refused(n.splice_with(s), "onchain-unknown-destination", 29, &n);

            // A splice-in of 200,000 sat of ours that the node splits as 150,000 for us and
            // 50,000 for the peer (`setup_channel`'s push value and every commitment on the
            // splice agree with that split): the commitments pass, our wallet input is not
            // signed (lightningd's sign_withdrawal), nor would the splice be.
            let mut n = node(t, f);
            let mut s = n.channel.splice(200_000).unwrap();
            s.our_relative = 150_000;
            s.their_relative = 50_000;
            assert_refused(n.splice_with(s), "onchain-unknown-destination", 7, &n);

            // (What a splice-out pays us less than it takes, beyond our relative amount, can
            // only be fee: bounded by `onchain-fee-range`.)

            // The honest splice still goes through afterwards on a fresh node.
            let mut n = node(t, f);
            n.splice(-20_000).unwrap();
            n.assert_clean().unwrap();
        }
    }
}

#[test]
fn commitments_on_a_splice_must_match_its_relative_amounts() {
    for t in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        for f in [Funder::Us, Funder::Them] {
            let mut n = node(t, f);
            let ch = &n.channel;
            let s = ch.splice(100_000).unwrap();
            let mut channeld =
                n.hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD).unwrap();
            let _: SetupChannelReply = channeld.call(&ch.splice_setup_channel(&s)).unwrap();
            // 10,000 sat of our relative amount moved to the peer, in the peer's commitment.
            let mut theirs = ch.remote.spliced(&s).unwrap();
            theirs.to_us = Msat(theirs.to_us.0 - 10_000_000);
            theirs.to_them = Msat(theirs.to_them.0 + 10_000_000);
            let (req, _) = ch.sign_remote_commitment_on(ch.remote_num, &theirs, Some(&s)).unwrap();
            match channeld.request(&req.request) {
                Err(e @ HsmdError::Refused { .. }) => {
                    assert!(e.to_string().contains("commitment-balance"), "{e}")
                }
                other => panic!("{t:?} {f:?}: expected commitment-balance, got {other:?}"),
            }
            // The same in our commitment.
            let mut channeld =
                n.hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD).unwrap();
            let mut ours = ch.local.spliced(&s).unwrap();
            ours.to_us = Msat(ours.to_us.0 - 10_000_000);
            ours.to_them = Msat(ours.to_them.0 + 10_000_000);
            let (req, _) = ch.validate_commitment_on(ch.local_num, &ours, Some(&s)).unwrap();
            match channeld.request(&req) {
                Err(e @ HsmdError::Refused { .. }) => {
                    assert!(e.to_string().contains("commitment-balance"), "{e}")
                }
                other => panic!("{t:?} {f:?}: expected commitment-balance, got {other:?}"),
            }
            // The honest commitments on the splice are accepted.
            let mut channeld =
                n.hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD).unwrap();
            let (req, _) = ch
                .validate_commitment_on(ch.local_num, &ch.local.spliced(&s).unwrap(), Some(&s))
                .unwrap();
            let _: ValidateCommitmentTxReply = channeld.call(&req).unwrap();
            let (req, _) = ch
                .sign_remote_commitment_on(ch.remote_num, &ch.remote.spliced(&s).unwrap(), Some(&s))
                .unwrap();
            let _: SignTxReply = channeld.call(&req.request).unwrap();
            // Now a different commitment for the same number on the same funding is a
            // conflicting retry (it is no conflict with the current funding's).
            let mut other = ch.remote.spliced(&s).unwrap();
            other.to_us = Msat(other.to_us.0 + 10_000_000);
            other.to_them = Msat(other.to_them.0 - 10_000_000);
            let (req, _) = ch.sign_remote_commitment_on(ch.remote_num, &other, Some(&s)).unwrap();
            match channeld.request(&req.request) {
                Err(e @ HsmdError::Refused { .. }) => {
                    assert!(e.to_string().contains("commitment-retry-same"), "{e}")
                }
                other => panic!("{t:?} {f:?}: expected commitment-retry-same, got {other:?}"),
            }
        }
    }
}
