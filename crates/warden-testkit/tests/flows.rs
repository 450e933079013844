//! Every flow end to end through the spawned `warden-hsmd`, for both channel types and both
//! funders. Needs the binary's channel handlers: enabled with `--features flows`.
#![cfg(feature = "flows")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::tx::ChannelType;
use warden_core::units::{FeeratePerKw, Msat};
use warden_testkit::{locate_binary, Change, ChannelParams, Funder, Node, Unilateral, Who};

const TYPES: [ChannelType; 2] = [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc];
const FUNDERS: [Funder; 2] = [Funder::Us, Funder::Them];

fn node(t: ChannelType, f: Funder) -> Node {
    let bin = locate_binary().unwrap_or_else(|e| panic!("{e}"));
    Node::start(&bin, ChannelParams::new(t, f)).unwrap_or_else(|e| panic!("start: {e}"))
}

fn each(mut flow: impl FnMut(&mut Node, ChannelType, Funder)) {
    for t in TYPES {
        for f in FUNDERS {
            let mut n = node(t, f);
            flow(&mut n, t, f);
            n.assert_clean().unwrap_or_else(|e| panic!("{t:?} {f:?}: {e}"));
        }
    }
}

#[test]
fn open() {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{t:?} {f:?}: open: {e}"));
        // The order of Core Lightning (see `warden_testkit::flows`).
        let (first, second) = match f {
            Funder::Us => (19, 35),
            Funder::Them => (35, 19),
        };
        let expected = vec![
            ("master", 11),
            ("master", 30),
            ("master", 10),
            ("master", 9),
            ("openingd", 18),
            ("openingd", 31),
            ("openingd", first),
            ("openingd", second),
            ("master", 9),
            ("channeld", 18),
            ("channeld", 32),
            ("channeld", 37),
        ];
        assert_eq!(n.hsmd.transcript().entries(), expected);
    });
}

#[test]
fn round_order() {
    each(|n, t, f| {
        n.open().unwrap();
        // The watchtower signs a penalty if the peer's commitment #0 has a to_local above our
        // dust limit.
        let penalty = n.channel.penalty(0, &n.channel.remote).unwrap().is_some();
        n.hsmd.transcript().clear();
        let htlc = n.channel.new_htlc(Who::Us, Msat(50_000_000), [7; 32], 900);
        n.round(Who::Us, &[Change::Add(htlc)]).unwrap_or_else(|e| panic!("{t:?} {f:?}: {e}"));
        let types: Vec<u16> = n.hsmd.transcript().entries().iter().map(|e| e.1).collect();
        // preapprove_keysend (lightningd, before the payment), sign_remote_commitment_tx #1,
        // one sign_remote_htlc_tx, validate_revocation #0, sign_penalty_to_us,
        // validate_commitment_tx #1, revoke_commitment_tx #0.
        let mut expected = vec![39, 19, 20, 36];
        if penalty {
            expected.push(14);
        }
        expected.extend([35, 40]);
        assert_eq!(types, expected, "{t:?} {f:?}");
    });
}

#[test]
fn update_rounds() {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(100, 1).unwrap_or_else(|e| panic!("{t:?} {f:?}: rounds: {e}"));
    });
}

#[test]
fn update_fee() {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(3, 2).unwrap_or_else(|e| panic!("{e}"));
        n.update_fee(FeeratePerKw(3_000)).unwrap_or_else(|e| panic!("{t:?} {f:?}: fee: {e}"));
        n.update_rounds(3, 3).unwrap_or_else(|e| panic!("{e}"));
    });
}

#[test]
fn cooperative_close() {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(10, 4).unwrap_or_else(|e| panic!("{e}"));
        n.cooperative_close().unwrap_or_else(|e| panic!("{t:?} {f:?}: close: {e}"));
    });
}

fn unilateral(kind: Unilateral) {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(12, 5).unwrap_or_else(|e| panic!("{e}"));
        n.unilateral_close_with_sweeps(kind)
            .unwrap_or_else(|e| panic!("{t:?} {f:?} {kind:?}: {e}"));
    });
}

#[test]
fn unilateral_close_ours_with_sweeps() {
    unilateral(Unilateral::Ours);
}

#[test]
fn unilateral_close_theirs_with_sweeps() {
    unilateral(Unilateral::Theirs);
}

#[test]
fn unilateral_close_their_revoked_with_penalties() {
    unilateral(Unilateral::TheirRevoked);
}

/// Updates while a splice is in flight: HTLCs added both ways, then settled (one commitment
/// per funding each time).
fn in_flight_rounds(n: &mut Node) {
    let ours = n.channel.new_htlc(Who::Us, Msat(5_000_000), [0x51; 32], 800);
    n.round(Who::Us, &[Change::Add(ours)]).unwrap();
    let theirs = n.channel.new_htlc(Who::Them, Msat(3_000_000), [0x52; 32], 810);
    let dust = n.channel.new_htlc(Who::Them, Msat(200_000), [0x53; 32], 820);
    n.round(Who::Them, &[Change::Add(theirs), Change::Add(dust)]).unwrap();
    n.round(Who::Them, &[Change::Fulfill(ours.id)]).unwrap();
    n.round(Who::Us, &[Change::Fulfill(theirs.id), Change::Fail(dust.id)]).unwrap();
}

fn splice(relative: i64) {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(3, 21).unwrap_or_else(|e| panic!("{e}"));
        // A splice-out takes at most a third of what we hold.
        let third = i64::try_from(n.channel.local.to_us.0 / 3000).unwrap();
        let relative = relative.max(-third);
        n.splice(relative).unwrap_or_else(|e| panic!("{t:?} {f:?} splice {relative}: {e}"));
        in_flight_rounds(n);
        let (to_us, to_them) = (n.channel.local.to_us, n.channel.local.to_them);
        n.splice_lock().unwrap_or_else(|e| panic!("{t:?} {f:?} lock {relative}: {e}"));
        // Our balance moved by the relative amount, the peer's did not.
        let moved = i128::from(n.channel.local.to_us.0) - i128::from(to_us.0);
        assert_eq!(moved, i128::from(relative) * 1000, "{t:?} {f:?}");
        assert_eq!(n.channel.local.to_them, to_them, "{t:?} {f:?}");
        n.update_rounds(6, 22).unwrap_or_else(|e| panic!("{t:?} {f:?} after lock: {e}"));
        n.cooperative_close().unwrap_or_else(|e| panic!("{t:?} {f:?} close: {e}"));
    });
}

#[test]
fn splice_in() {
    splice(200_000);
}

#[test]
fn splice_out() {
    splice(-50_000);
}

#[test]
fn splice_in_with_random_updates_in_flight_then_unilateral_close() {
    each(|n, t, f| {
        n.open().unwrap();
        n.splice(300_000).unwrap_or_else(|e| panic!("{t:?} {f:?}: {e}"));
        n.update_rounds(20, 23).unwrap_or_else(|e| panic!("{t:?} {f:?} in flight: {e}"));
        n.splice_lock().unwrap();
        n.update_rounds(5, 24).unwrap_or_else(|e| panic!("{t:?} {f:?} after lock: {e}"));
        n.unilateral_close_with_sweeps(Unilateral::Ours)
            .unwrap_or_else(|e| panic!("{t:?} {f:?} close: {e}"));
    });
}

#[test]
fn splice_order() {
    each(|n, t, f| {
        n.open().unwrap();
        n.update_rounds(2, 25).unwrap();
        n.hsmd.transcript().clear();
        n.splice(100_000).unwrap();
        // setup_channel, get_per_commitment_point, validate_commitment_tx,
        // sign_remote_commitment_tx (+ htlc txs), sign_withdrawal (master), sign_splice_tx.
        let entries = n.hsmd.transcript().entries();
        let types: Vec<u16> = entries.iter().map(|e| e.1).filter(|t| *t != 20).collect();
        assert_eq!(types, vec![31, 18, 35, 19, 7, 29], "{t:?} {f:?}");
        n.hsmd.transcript().clear();
        let htlc = n.channel.new_htlc(Who::Us, Msat(50_000_000), [7; 32], 900);
        n.round(Who::Us, &[Change::Add(htlc)]).unwrap();
        let types: Vec<u16> = n
            .hsmd
            .transcript()
            .entries()
            .iter()
            .map(|e| e.1)
            .filter(|t| ![20, 14].contains(t))
            .collect();
        // Two commitments of each side per number (current funding, splice), one revocation.
        assert_eq!(types, vec![39, 19, 19, 36, 35, 35, 40], "{t:?} {f:?}");
        n.hsmd.transcript().clear();
        n.splice_lock().unwrap();
        let types: Vec<u16> = n.hsmd.transcript().entries().iter().map(|e| e.1).collect();
        assert_eq!(types, vec![32, 37], "{t:?} {f:?}");
    });
}

#[test]
fn splice_locked_by_the_first_update_on_the_new_funding() {
    // Tolerance: should channeld not ask `check_outpoint` / `lock_outpoint` at a splice's
    // lock-in, the first update after both `splice_locked` (on the new funding only, the next
    // number) locks the splice in.
    each(|n, t, f| {
        n.open().unwrap();
        n.update_rounds(3, 26).unwrap();
        n.splice(150_000).unwrap();
        in_flight_rounds(n);
        n.channel.lock_splice(0).unwrap();
        n.update_rounds(5, 27).unwrap_or_else(|e| panic!("{t:?} {f:?}: {e}"));
        n.cooperative_close().unwrap_or_else(|e| panic!("{t:?} {f:?} close: {e}"));
    });
}

fn peer_splice(relative: i64) {
    each(|n, t, f| {
        n.open().unwrap_or_else(|e| panic!("{e}"));
        n.update_rounds(3, 28).unwrap_or_else(|e| panic!("{e}"));
        // A splice-out takes at most a third of what the peer holds.
        let third = i64::try_from(n.channel.local.to_them.0 / 3000).unwrap();
        let relative = relative.max(-third);
        let s = n.channel.peer_splice(relative).unwrap();
        n.splice_with(s).unwrap_or_else(|e| panic!("{t:?} {f:?} peer splice {relative}: {e}"));
        in_flight_rounds(n);
        let (to_us, to_them) = (n.channel.local.to_us, n.channel.local.to_them);
        n.splice_lock().unwrap_or_else(|e| panic!("{t:?} {f:?} lock {relative}: {e}"));
        let moved = i128::from(n.channel.local.to_them.0) - i128::from(to_them.0);
        assert_eq!(moved, i128::from(relative) * 1000, "{t:?} {f:?}");
        assert_eq!(n.channel.local.to_us, to_us, "{t:?} {f:?}");
        n.update_rounds(6, 29).unwrap_or_else(|e| panic!("{t:?} {f:?} after lock: {e}"));
        n.cooperative_close().unwrap_or_else(|e| panic!("{t:?} {f:?} close: {e}"));
    });
}

#[test]
fn peer_splice_in() {
    peer_splice(250_000);
}

#[test]
fn peer_splice_out() {
    peer_splice(-40_000);
}
