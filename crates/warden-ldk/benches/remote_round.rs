#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a benchmark of its own (harness = false) reports here")]
//! One LDK payment (an HTLC added then fulfilled: two commitment rounds, each signed,
//! validated and revoked on both sides), timed with both nodes' Warden signers in process and
//! with both remote (a `RemoteSignerServer` per node on TCP loopback, reached over warden-link),
//! in the same run, interleaved.
//!
//! Both setups use in-memory Warden keys managers (`WardenKeysManager::new`, no store), so the
//! difference is the remote mode's cost: the link (Noise, TCP loopback), the signer's thread,
//! LDK's `Err` + `signer_unblocked` retries. Each of `ROUNDS` iterations makes one payment
//! per setup (the order of the two setups alternates, and so does the payer), and p50 / p99
//! of the payment times and the ratio of the p50s are printed.
//! Run:
//! `cargo bench -p warden-ldk --bench remote_round` (or `cargo test ... --bench` for a dev run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use lightning::util::config::UserConfig;
use support::remote;

const ROUNDS: u8 = 200;
const WARMUP: u8 = 8;

/// A payment between two remote-mode nodes; the events are dropped after it, so that 200
/// rounds do not make each search for the next payment's events longer.
fn remote_pay(from: &mut remote::Node, to: &mut remote::Node, amount_msat: u64, id: u8) {
    remote::pay(from, to, amount_msat, id);
    from.events.clear();
    to.events.clear();
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let mut chain = support::Chain::default();
    let mut alice = support::Node::new("alice", 41, UserConfig::default());
    let mut bob = support::Node::new("bob", 42, UserConfig::default());
    support::connect(&alice, &bob);
    support::open_channel(&mut chain, &mut alice, &mut bob, 1_000_000, 0);

    let mut rchain = remote::Chain::new();
    let mut ralice = remote::Node::in_memory("alice", 43);
    let mut rbob = remote::Node::in_memory("bob", 44);
    remote::connect(&ralice, &rbob);
    remote::open_channel(&mut rchain, &mut ralice, &mut rbob);

    // Warm-up, then one payment per setup per round, the order of the setups and the payer
    // alternating (alice pays 2,000 sat, bob pays back 1,000 sat).
    for i in 0..WARMUP {
        let id = 240 + i;
        support::pay(&mut alice, &mut bob, 2_000_000, id);
        remote_pay(&mut ralice, &mut rbob, 2_000_000, id);
    }
    let calls_before = ralice.keys.calls_sent() + rbob.keys.calls_sent();
    let mut local = Vec::with_capacity(usize::from(ROUNDS));
    let mut remote_times = Vec::with_capacity(usize::from(ROUNDS));
    for i in 0..ROUNDS {
        let amount = if i % 4 < 2 { 2_000_000 } else { 1_000_000 };
        let time_local = |alice: &mut support::Node, bob: &mut support::Node| {
            let start = Instant::now();
            if i % 4 < 2 {
                support::pay(alice, bob, amount, i);
            } else {
                support::pay(bob, alice, amount, i);
            }
            start.elapsed()
        };
        let time_remote = |alice: &mut remote::Node, bob: &mut remote::Node| {
            let start = Instant::now();
            if i % 4 < 2 {
                remote_pay(alice, bob, amount, i);
            } else {
                remote_pay(bob, alice, amount, i);
            }
            start.elapsed()
        };
        if i % 2 == 0 {
            local.push(time_local(&mut alice, &mut bob));
            remote_times.push(time_remote(&mut ralice, &mut rbob));
        } else {
            remote_times.push(time_remote(&mut ralice, &mut rbob));
            local.push(time_local(&mut alice, &mut bob));
        }
    }
    let calls = ralice.keys.calls_sent() + rbob.keys.calls_sent() - calls_before;
    assert!(ralice.keys.refusals().is_empty() && rbob.keys.refusals().is_empty());
    local.sort();
    remote_times.sort();
    let (l50, l99) = (percentile(&local, 50), percentile(&local, 99));
    let (r50, r99) = (percentile(&remote_times, 50), percentile(&remote_times, 99));
    println!(
        "one LDK payment (2 commitment rounds, both sides), {ROUNDS} each, interleaved: \
         in-process signers p50 {l50:?} p99 {l99:?}; remote signers over TCP loopback \
         ({} signer calls per payment, both nodes) p50 {r50:?} p99 {r99:?}; \
         ratio remote/in-process p50 {:.1}, p99 {:.1}",
        calls / u64::from(ROUNDS),
        r50.as_secs_f64() / l50.as_secs_f64(),
        r99.as_secs_f64() / l99.as_secs_f64(),
    );
}
