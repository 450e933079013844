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
