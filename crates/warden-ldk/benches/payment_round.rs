#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a benchmark of its own (harness = false) reports here")]
//! One LDK payment round (commitments signed, validated, revoked on both sides), timed with
//! Warden and with LDK's own `InMemorySigner` in the same run.
//!
//! Two LDK nodes make `ROUNDS` payments with Warden as their signer while alice's Warden
//! records every call of the commitment round (`sign_counterparty_commitment`,
//! `validate_holder_commitment`, `release_commitment_secret`,
//! `validate_counterparty_revocation`) with its arguments. The calls are then replayed,
//! `REPEAT` times each, against a fresh Warden signer and against LDK's `InMemorySigner` of the
//! same keys (LDK's `KeysManager`, same seed and `channel_keys_id`: Warden uses LDK's key
//! scheme), and the ratio of the times is printed. A second line times Warden with its store
//! (`WardenKeysManager::open`: every state change sealed and committed to redb, fsync'd,
//! before the call returns), `REPEAT_DURABLE` times, against the same `InMemorySigner` time.
//! Run:
//! `cargo bench -p warden-ldk --bench payment_round` (or `cargo test ... --bench` for a dev run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;

use bitcoin::secp256k1::Secp256k1;
use lightning::sign::{KeysManager, SignerProvider};
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, Chain, Node};
use warden_ldk::ldk_test_utils::{replay, RecordedCall};
use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};

const ROUNDS: u8 = 20;
const REPEAT: usize = 20;
const REPEAT_DURABLE: usize = 3;

fn main() {
    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 31, UserConfig::default());
    let mut bob = Node::new("bob", 32, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, 1_000_000, 0);
    pay(&mut alice, &mut bob, 50_000_000, 0);
    let keys_id = alice.keys.channel_keys_ids()[0];
    let snapshot = alice.keys.snapshot_channel(&keys_id).unwrap();
    alice.keys.start_recording();
    for i in 0..ROUNDS {
        pay(&mut alice, &mut bob, 1_000_000, i + 1);
        pay(&mut bob, &mut alice, 500_000, i + 101);
    }
    let calls: Vec<RecordedCall> = alice.keys.take_recorded().into_iter().map(|(_, c)| c).collect();

    // Warden: a fresh manager per repetition, its record restored to the state the recording
    // started from (after the opening and a first payment).
    let seed = [31u8; 32];
    let mut warden_time = std::time::Duration::ZERO;
    let mut ldk_time = std::time::Duration::ZERO;
    for _ in 0..REPEAT {
        let warden = WardenKeysManager::new(
            &seed,
            KeyScheme::Ldk { v2_remote_key: true },
            WardenConfig::test_network(),
            1_700_000_000,
            31,
        )
        .unwrap();
        warden.restore_channel(keys_id, snapshot.clone());
        let signer = warden.derive_channel_signer(keys_id);
        let start = Instant::now();
        replay(&signer, &calls, &secp)
            .unwrap_or_else(|i| panic!("warden refused call {i}: {:?}", warden.refusals()));
        warden_time += start.elapsed();

        let ldk = KeysManager::new(&seed, 1_700_000_000, 31, true);
        let signer = ldk.derive_channel_signer(keys_id);
        let start = Instant::now();
        replay(&signer, &calls, &secp).unwrap();
        ldk_time += start.elapsed();
    }
    let mut durable_time = std::time::Duration::ZERO;
    for i in 0..REPEAT_DURABLE {
        let dir = tempfile::tempdir().unwrap();
        let warden = WardenKeysManager::open(
            &seed,
            KeyScheme::Ldk { v2_remote_key: true },
            WardenConfig::test_network(),
            1_700_000_000 + i as u64,
            31,
            dir.path(),
            Vec::new(),
        )
        .unwrap();
        warden.restore_channel(keys_id, snapshot.clone());
        let signer = warden.derive_channel_signer(keys_id);
        let start = Instant::now();
        replay(&signer, &calls, &secp)
            .unwrap_or_else(|i| panic!("warden refused call {i}: {:?}", warden.refusals()));
        durable_time += start.elapsed();
    }
    let per_round = |t: std::time::Duration| t / (u32::from(ROUNDS) * 2 * REPEAT as u32);
    println!(
        "one payment round ({} signer calls on one side): warden {:?}, ldk InMemorySigner {:?}, ratio {:.1}",
        calls.len() / (usize::from(ROUNDS) * 2),
        per_round(warden_time),
        per_round(ldk_time),
        warden_time.as_secs_f64() / ldk_time.as_secs_f64()
    );
    let durable = durable_time / (u32::from(ROUNDS) * 2 * REPEAT_DURABLE as u32);
    println!(
        "with its store (redb, fsync per state change): warden {:?}, ratio {:.1}",
        durable,
        durable.as_secs_f64() / per_round(ldk_time).as_secs_f64()
    );
}
