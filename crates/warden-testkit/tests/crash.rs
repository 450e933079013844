//! Crash test: a channel runs through the spawned `warden-hsmd` while hsmd is killed with
//! SIGKILL at random, reproducible points (before a request, while it is in flight, right
//! after its reply) and restarted in the same lightning directory; each interrupted request is
//! sent again, as lightningd re-sends after restarting hsmd (DESIGN.md §3, invariants 1–3).
//!
//! After every restart: a reply read before the kill equals the retry's reply, byte for byte
//! (idempotent retries); every following request of the flow is answered and its signature
//! verifies (no acknowledged state is lost: a lost validation or revocation would make the
//! next step a policy refusal). At the end, a commitment revoked long ago is refused for
//! broadcast, its revocation still answers identically, and the channel closes cleanly.
//! Needs the binary (`cargo build -p warden-hsmd`).
#![cfg(feature = "flows")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::print_stderr, reason = "the run's numbers, shown with --nocapture")]

use std::time::Instant;

use warden_core::tx::ChannelType;
use warden_testkit::hsmd::HsmdError;
use warden_testkit::{locate_binary, perms, ChannelParams, Funder, Node};
use warden_wire::msg::*;

const SEED: u64 = 0x5eed_c4a5;
const MIN_KILLS: u64 = 200;
const KILL_PERCENT: u64 = 35;

#[test]
fn random_kills_lose_nothing_acknowledged() {
    let started = Instant::now();
    let bin = locate_binary().unwrap_or_else(|e| panic!("{e}"));
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut node = Node::start(&bin, params).unwrap_or_else(|e| panic!("start: {e}"));
    node.hsmd.enable_crashes(SEED, KILL_PERCENT);
    node.open().unwrap_or_else(|e| panic!("open: {e}"));

    // The broadcast request for our commitment after the third round, kept for the end.
    let mut old_broadcast = None;
    let mut rounds = 0u64;
    while node.hsmd.kills() < MIN_KILLS {
        node.update_rounds(1, SEED ^ rounds)
            .unwrap_or_else(|e| panic!("round {rounds} after {} kills: {e}", node.hsmd.kills()));
        rounds += 1;
        if rounds == 3 {
            let (s, _) = node.channel.sign_commitment().unwrap();
            old_broadcast = Some((node.channel.local_num, s.request));
        }
        assert!(rounds < 1_000, "too few kills: {}", node.hsmd.kills());
    }
    node.hsmd.disable_crashes();
    let kills = node.hsmd.kills();
    let retries = node.hsmd.retries_checked();

    // The revocation of the old commitment answers as it did.
    let (old, request) = old_broadcast.unwrap();
    assert!(old + 1 < node.channel.local_num);
    let ch = &node.channel;
    let mut channeld = node
        .hsmd
        .client("channeld-again", ch.peer_id(), ch.params().dbid, perms::CHANNELD)
        .unwrap();
    let (revoke, expected) = ch.revoke_commitment(old).unwrap();
    let reply: RevokeCommitmentTxReply = channeld.call(&revoke).unwrap();
    assert_eq!(reply, expected);
    drop(channeld);

    // The revoked commitment is never signed for broadcast (a refusal on the master
    // connection is fatal for hsmd, as for Core Lightning's).
    match node.hsmd.master().call::<_, SignCommitmentTxReply>(&request) {
        Err(HsmdError::Refused { failure: Some(desc), .. }) => {
            assert!(desc.contains("revoked"), "refused for another reason: {desc}");
        }
        other => panic!("a revoked commitment was signed for broadcast: {other:?}"),
    }
    node.hsmd.restart().unwrap();

    // The channel goes on to a clean cooperative close.
    node.update_rounds(2, SEED ^ 0xc105e).unwrap_or_else(|e| panic!("after restart: {e}"));
    node.cooperative_close().unwrap_or_else(|e| panic!("close: {e}"));
    assert!(
        node.hsmd.status().bad_requests().len() <= 1,
        "{:?}",
        node.hsmd.status().bad_requests()
    );
    assert_eq!(node.hsmd.status().failures().len(), 1, "only the deliberate refusal failed");

    let elapsed = started.elapsed();
    eprintln!(
        "crash test: {kills} kills over {rounds} rounds, {retries} replies compared with their \
         retry, {:.1} s",
        elapsed.as_secs_f64()
    );
    assert!(kills >= MIN_KILLS);
}
