//! Splices in the channel state: a repeated `setup_channel` with another outpoint adds a splice
//! candidate, commitments on a candidate are recorded per funding (the same number on another
//! funding is no conflicting retry), revocations stay per number, lock-in makes the candidate
//! the funding, the balance rule across fundings (`policy::balance::check_splice_balance`),
//! and every refusal leaves the state as it was.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod support;
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use support::channel_fixture::{peer_point, peer_secret, pk, setup};
use warden_core::channel::encoding::{decode_channel, encode_channel};
use warden_core::channel::state::{HtlcInfo, SignedCounterpartyCommitment};
use warden_core::channel::{
    ChannelSetup, ChannelSlot, ChannelState, CommitmentContent, HtlcSide, SignedHolderCommitment,
};
use warden_core::keys::node::NodeId;
use warden_core::keys::FundingPubkey;
use warden_core::policy::balance::check_splice_balance;
use warden_core::policy::{PolicyError, Rule};
use warden_core::secp256k1::Secp256k1;
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

fn outpoint(tag: u8, vout: u32) -> OutPoint {
    OutPoint { txid: Txid::from_byte_array([tag; 32]), vout }
}

fn channel() -> ChannelState {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(1) });
    c.apply_setup(setup()).unwrap();
    c
}

fn htlc() -> HtlcInfo {
    HtlcInfo {
        offered_by: HtlcSide::Holder,
        amount: Msat(5_000_000),
        payment_hash: [3; 32],
        cltv_expiry: 700,
    }
}

/// Commitment `n` on the funding tagged `funding` (0 = the current one), paying us `ours`.
fn content(n: u64, funding: u8, ours: u64, theirs: u64) -> CommitmentContent {
    CommitmentContent {
        number: CommitmentNumber::new(n).unwrap(),
        txid: Txid::from_byte_array([n as u8 ^ funding.wrapping_mul(0x51); 32]),
        feerate: FeeratePerKw(253),
        htlcs: vec![htlc()],
        htlc_vouts: vec![0],
        to_holder: Sat(ours),
        to_counterparty: Sat(theirs),
    }
}

fn holder(c: CommitmentContent) -> SignedHolderCommitment {
    SignedHolderCommitment { content: c, counterparty_sig: [1; 64], htlc_sigs: vec![[2; 64]] }
}

fn counterparty(c: CommitmentContent) -> SignedCounterpartyCommitment {
    let point = peer_point(c.number.get());
    SignedCounterpartyCommitment { content: c, point }
}

/// Our balance on the current funding at every number.
const OURS: u64 = 800_000;
const THEIRS: u64 = 190_000;

/// Commitments 0..=rounds on the current funding, as channeld does them.
fn run(c: &mut ChannelState, from: u64, to: u64) {
    let secp = Secp256k1::new();
    for n in from..=to {
        assert!(c.sign_counterparty_commitment(counterparty(content(n, 0, OURS, THEIRS))).unwrap());
        c.validate_holder_commitment(holder(content(n, 0, OURS, THEIRS))).unwrap();
        if n > 0 {
            c.revoke_holder_commitment(n - 1).unwrap();
            c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
        }
    }
}

/// A splice's `setup_channel`: the new outpoint and value, the peer's relative amount as
/// channeld puts it in `push_value` (raw satoshis, a negative one wrapped), no shutdown
/// scripts.
fn splice_setup(outpoint: OutPoint, value: u64, peer_relative: i64) -> ChannelSetup {
    let mut s = setup();
    s.funding_outpoint = outpoint;
    s.channel_value = Sat(value);
    s.push_value = Msat(peer_relative as u64);
    s
}

fn refused(
    c: &mut ChannelState,
    rule: Rule,
    f: impl FnOnce(&mut ChannelState) -> Result<(), PolicyError>,
) {
    let before = c.clone();
    let err = f(c).unwrap_err();
    assert_eq!(err.rule, rule, "{err}");
    assert_eq!(*c, before, "a refusal by {rule} changed the state");
}

#[test]
fn a_splice_in_goes_from_candidate_to_funding() {
    let mut c = channel();
    run(&mut c, 0, 3);
    let before = c.setup.clone();
    // We splice in 100,000 sat; the peer adds nothing.
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_100_000, 0)).unwrap();
    assert_eq!(c.setup, before, "a candidate does not replace the funding");
    assert_eq!(c.splices.len(), 1);
    assert_eq!((c.splices[0].holder_relative, c.splices[0].counterparty_relative), (100_000, 0));
    // The same setup again (a retry) changes nothing.
    let state = c.clone();
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_100_000, 0)).unwrap();
    assert_eq!(c, state);

    // The first commitments on the candidate re-sign the current numbers (no increment).
    let on_splice = |n| content(n, 1, OURS + 100_000, THEIRS);
    assert!(c.sign_candidate_counterparty_commitment(0, counterparty(on_splice(3))).unwrap());
    c.validate_candidate_holder_commitment(0, holder(on_splice(3))).unwrap();
    assert_eq!((c.holder.next_number, c.counterparty.next_number), (4, 4));
    // A retry on the same funding is the same answer.
    let state = c.clone();
    assert!(!c.sign_candidate_counterparty_commitment(0, counterparty(on_splice(3))).unwrap());
    c.validate_candidate_holder_commitment(0, holder(on_splice(3))).unwrap();
    assert_eq!(c, state, "a retry changed the state");

    // Updates while the splice is in flight: the current funding first, then the candidate,
    // with the same number; one revocation per number.
    let secp = Secp256k1::new();
    for n in 4..=6 {
        assert!(c.sign_counterparty_commitment(counterparty(content(n, 0, OURS, THEIRS))).unwrap());
        assert!(c.sign_candidate_counterparty_commitment(0, counterparty(on_splice(n))).unwrap());
        c.validate_holder_commitment(holder(content(n, 0, OURS, THEIRS))).unwrap();
        c.validate_candidate_holder_commitment(0, holder(on_splice(n))).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
    // Persisted and read back.
    assert_eq!(decode_channel(&encode_channel(&c)).unwrap(), c);

    // Lock-in: the candidate becomes the funding, its commitments the current ones.
    assert!(c.lock_funding(&outpoint(0xaa, 1)).unwrap());
    let s = c.setup.clone().unwrap();
    assert_eq!((s.funding_outpoint, s.channel_value), (outpoint(0xaa, 1), Sat(1_100_000)));
    assert!(c.splices.is_empty());
    assert_eq!(c.holder.current.as_ref().unwrap().content, on_splice(6));
    assert_eq!(c.counterparty.current.as_ref().unwrap().content, on_splice(6));
    // A repeated lock (lock_outpoint after check_outpoint) changes nothing.
    let state = c.clone();
    assert!(!c.lock_funding(&outpoint(0xaa, 1)).unwrap());
    assert_eq!(c, state);
    // Further updates on the new funding.
    for n in 7..=8 {
        let next = content(n, 1, OURS + 100_000, THEIRS);
        assert!(c.sign_counterparty_commitment(counterparty(next.clone())).unwrap());
        c.validate_holder_commitment(holder(next)).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
}

#[test]
fn rbf_candidates_coexist_and_lock_in_drops_the_others() {
    let mut c = channel();
    run(&mut c, 0, 2);
    // A splice out of 50,000 sat of ours, then its outpoint(0xbb, 0) at a lower value (more fee).
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 950_000, 0)).unwrap();
    c.apply_setup(splice_setup(outpoint(0xbb, 0), 949_000, 0)).unwrap();
    assert_eq!(c.splices[1].holder_relative, -51_000);
    for (i, ours) in [(0, OURS - 50_000), (1, OURS - 51_000)] {
        let k = content(2, i as u8 + 1, ours, THEIRS);
        c.sign_candidate_counterparty_commitment(i, counterparty(k.clone())).unwrap();
        c.validate_candidate_holder_commitment(i, holder(k)).unwrap();
    }
    c.lock_funding(&outpoint(0xbb, 0)).unwrap();
    assert_eq!(c.setup.as_ref().unwrap().channel_value, Sat(949_000));
    assert!(c.splices.is_empty());
}

#[test]
fn push_value_readings() {
    let mut c = channel();
    run(&mut c, 0, 1);
    // The peer takes 30,000 sat out (negative, wrapped), we put 80,000 in.
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_050_000, -30_000)).unwrap();
    assert_eq!(
        (c.splices[0].holder_relative, c.splices[0].counterparty_relative),
        (80_000, -30_000)
    );
    // The fixed variant: the fundee's (here the peer's: we opened) relative amount in msat.
    let mut s = splice_setup(outpoint(0xbb, 0), 1_050_000, 0);
    s.push_value = Msat(20_000_000);
    c.apply_setup(s).unwrap();
    assert_eq!(
        (c.splices[1].holder_relative, c.splices[1].counterparty_relative),
        (30_000, 20_000)
    );
    // Neither reading fits.
    let mut s =
        splice_setup(OutPoint { txid: Txid::from_byte_array([0xcc; 32]), vout: 0 }, 1_050_000, 0);
    s.push_value = Msat(20_000_001);
    refused(&mut c, Rule::CommitmentBalance, |c| c.apply_setup(s));
}

#[test]
fn candidate_refusals_change_nothing() {
    let mut c = channel();
    run(&mut c, 0, 3);
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_100_000, 0)).unwrap();
    let k = |n| content(n, 1, OURS + 100_000, THEIRS);

    // The same candidate again with another split or value; keys changed.
    refused(&mut c, Rule::ChannelUnknown, |c| {
        c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_100_000, 5))
    });
    refused(&mut c, Rule::ChannelUnknown, |c| {
        c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_200_000, 0))
    });
    let mut other = splice_setup(outpoint(0xbb, 0), 1_100_000, 0);
    other.counterparty_funding_pubkey = FundingPubkey(pk(42));
    refused(&mut c, Rule::ChannelUnknown, |c| c.apply_setup(other));
    // The current funding with another value.
    refused(&mut c, Rule::ChannelUnknown, |c| {
        c.apply_setup(splice_setup(setup().funding_outpoint, 1, 0))
    });

    // Not the current number; another point; other HTLCs; another feerate.
    refused(&mut c, Rule::CommitmentNumber, |c| {
        c.sign_candidate_counterparty_commitment(0, counterparty(k(4))).map(|_| ())
    });
    refused(&mut c, Rule::CommitmentHolderRevoked, |c| {
        c.validate_candidate_holder_commitment(0, holder(k(2)))
    });
    refused(&mut c, Rule::CommitmentNumber, |c| {
        c.validate_candidate_holder_commitment(0, holder(k(4)))
    });
    let mut p = counterparty(k(3));
    p.point = peer_point(9);
    refused(&mut c, Rule::CommitmentStructure, |c| {
        c.sign_candidate_counterparty_commitment(0, p).map(|_| ())
    });
    let mut h = k(3);
    h.htlcs.clear();
    refused(&mut c, Rule::CommitmentStructure, |c| {
        c.validate_candidate_holder_commitment(0, holder(h))
    });
    let mut f = k(3);
    f.feerate = FeeratePerKw(300);
    refused(&mut c, Rule::CommitmentStructure, |c| {
        c.sign_candidate_counterparty_commitment(0, counterparty(f)).map(|_| ())
    });
    // No such candidate.
    refused(&mut c, Rule::ChannelUnknown, |c| {
        c.sign_candidate_counterparty_commitment(1, counterparty(k(3))).map(|_| ())
    });
    // Lock-in before the commitments on the candidate were exchanged.
    refused(&mut c, Rule::OnchainFundingCountersigned, |c| {
        c.lock_funding(&outpoint(0xaa, 1)).map(|_| ())
    });

    // Once signed, the same number on the same funding with other content is a conflicting
    // retry — and it still is no conflict with the current funding's.
    c.sign_candidate_counterparty_commitment(0, counterparty(k(3))).unwrap();
    let mut other = k(3);
    other.to_holder = Sat(1);
    refused(&mut c, Rule::CommitmentRetrySame, |c| {
        c.sign_candidate_counterparty_commitment(0, counterparty(other)).map(|_| ())
    });
    c.validate_candidate_holder_commitment(0, holder(k(3))).unwrap();
    let mut other = k(3);
    other.to_counterparty = Sat(1);
    refused(&mut c, Rule::CommitmentRetrySame, |c| {
        c.validate_candidate_holder_commitment(0, holder(other))
    });
    // Our commitment on the current funding is still retried as before.
    assert!(!c.sign_counterparty_commitment(counterparty(content(3, 0, OURS, THEIRS))).unwrap());

    // Closing: no new candidate.
    c.sign_mutual_close().unwrap();
    refused(&mut c, Rule::CommitmentChannelClosed, |c| {
        c.apply_setup(splice_setup(outpoint(0xbb, 0), 1_000_000, 0))
    });
}

#[test]
fn the_balance_rule_across_fundings() {
    let mut c = channel();
    run(&mut c, 0, 3);
    c.apply_setup(splice_setup(outpoint(0xaa, 1), 1_070_000, 20_000)).unwrap();
    let cand = c.splices[0].clone();
    assert_eq!((cand.holder_relative, cand.counterparty_relative), (50_000, 20_000));
    let s = setup();
    let main = content(3, 0, OURS, THEIRS);
    check_splice_balance(&s, &cand, &main, &content(3, 1, OURS + 50_000, THEIRS + 20_000)).unwrap();
    // Our relative amount moved to the peer.
    let moved = content(3, 1, OURS + 40_000, THEIRS + 30_000);
    let e = check_splice_balance(&s, &cand, &main, &moved).unwrap_err();
    assert_eq!(e.rule, Rule::CommitmentBalance);
    // The peer credited more than its relative amount (out of the fee).
    let more = content(3, 1, OURS + 50_000, THEIRS + 21_000);
    assert_eq!(
        check_splice_balance(&s, &cand, &main, &more).unwrap_err().rule,
        Rule::CommitmentBalance
    );
    // With anchors, an output that appears on the candidate costs the opener an anchor.
    let mut anchors = setup();
    anchors.channel_type_features = vec![0x40, 0x10, 0x00];
    let mut main0 = content(3, 0, OURS, 0);
    main0.htlcs.clear();
    let mut new0 = content(3, 1, OURS + 50_000 - 330, 20_000);
    new0.htlcs.clear();
    check_splice_balance(&anchors, &cand, &main0, &new0).unwrap();
}

#[test]
fn aborted_candidates_make_room_and_the_limit_holds() {
    use warden_core::channel::state::MAX_SPLICE_CANDIDATES;
    let mut c = channel();
    run(&mut c, 0, 1);
    let n = MAX_SPLICE_CANDIDATES as u8;
    for i in 0..n {
        c.apply_setup(splice_setup(outpoint(i + 1, 0), 1_000_000 + u64::from(i), 0)).unwrap();
    }
    // The first candidate has commitments; the others were aborted before theirs.
    let k = content(1, 1, OURS, THEIRS);
    c.sign_candidate_counterparty_commitment(0, counterparty(k)).unwrap();
    c.apply_setup(splice_setup(outpoint(n + 1, 0), 1_000_100, 0)).unwrap();
    assert_eq!(c.splices.len(), 2);
    assert_eq!(c.splices[0].funding_outpoint, outpoint(1, 0));
    // Candidates with commitments are kept: beyond the limit, node-limits.
    for i in 0..MAX_SPLICE_CANDIDATES as u8 - 2 {
        c.apply_setup(splice_setup(outpoint(100 + i, 0), 1_000_000, 0)).unwrap();
        let last = c.splices.len() - 1;
        c.sign_candidate_counterparty_commitment(
            last,
            counterparty(content(1, 2 + i, OURS, THEIRS)),
        )
        .unwrap();
    }
    let idx = c.splice_index(&outpoint(n + 1, 0)).unwrap();
    c.sign_candidate_counterparty_commitment(idx, counterparty(content(1, 99, OURS, THEIRS)))
        .unwrap();
    assert_eq!(c.splices.len(), MAX_SPLICE_CANDIDATES);
    refused(&mut c, Rule::NodeLimits, |c| c.apply_setup(splice_setup(outpoint(250, 0), 1, 0)));
}
