#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Warden's records persisted in its sealed store (`WardenKeysManager::open`): a restarted LDK
//! node (LDK's `ChannelManager` and `ChannelMonitor`s read back from their serializations,
//! Warden from its store) continues its channels, and its state did not roll back; a store
//! tampered with, or with a record rolled back, is refused at open; a whole-file rollback is
//! caught by a PostgreSQL replica.

mod support;

use std::path::Path;
use std::sync::Arc;

use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
use lightning::events::{ClosureReason, Event};
use lightning::ln::chan_utils::{CommitmentTransaction, HolderCommitmentTransaction};
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner, SignerProvider};
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, pump, reconnect, Chain, Node};
use warden_core::policy::Rule;
use warden_hsmd::durable::{store_id_bytes, STORE_DIR};
use warden_ldk::channel::INITIAL_COMMITMENT_NUMBER;
use warden_ldk::{KeyScheme, OpenError, Replica, WardenConfig, WardenKeysManager};
use warden_store::redb::RedbDatabase;
use warden_store::{Op, Record, Store, StoreId, Version};

const CHANNEL: u64 = 1_000_000;
const SCHEME: KeyScheme = KeyScheme::Ldk { v2_remote_key: true };

fn open_keys(
    seed: u8,
    dir: &Path,
    start: u64,
    replicas: Vec<Replica>,
) -> Result<WardenKeysManager, OpenError> {
    WardenKeysManager::open(
        &[seed; 32],
        SCHEME,
        WardenConfig::test_network(),
        1_700_000_000 + start,
        u32::from(seed),
        dir,
        replicas,
    )
}

fn no_refusals(nodes: &[&Node]) {
    for n in nodes {
        let refusals = n.keys.refusals();
        assert!(refusals.is_empty(), "{} refused: {refusals:#?}", n.name);
    }
}

fn only_channel(node: &Node) -> [u8; 32] {
    let ids = node.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1);
    ids[0]
}

fn wire_id(seed: u8) -> warden_wire::NodeId {
    let keys = WardenKeysManager::new(&[seed; 32], SCHEME, WardenConfig::test_network(), 1, 0);
    warden_wire::NodeId::from_bytes(keys.unwrap().node_id().serialize())
}

/// The records of a node's store, read behind Warden's back (Warden must not hold it open).
fn records(dir: &Path, seed: u8) -> Vec<Record> {
    let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
    let store = db.store(StoreId::new(store_id_bytes(&wire_id(seed))).unwrap());
    store.list(&[]).unwrap()
}

/// Replaces (or, for `None`, deletes) one record behind Warden's back.
fn overwrite(dir: &Path, seed: u8, key: &[u8], with: Option<(Version, Vec<u8>)>) {
    let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
    let store = db.store(StoreId::new(store_id_bytes(&wire_id(seed))).unwrap());
    let current = store.get(key).unwrap().unwrap().version;
    store.commit(&[Op::Delete { key: key.to_vec(), expected_version: current }]).unwrap();
    if let Some((version, value)) = with {
        store
            .commit(&[Op::Put {
                key: key.to_vec(),
                expected_version: Version::ABSENT,
                new_version: version,
                value,
            }])
            .unwrap();
    }
}

/// Payments both ways, `rounds` of each.
fn pay_both_ways(alice: &mut Node, bob: &mut Node, rounds: u8, first_id: u8) {
    for i in 0..rounds {
        pay(alice, bob, 20_000_000 + u64::from(i) * 1_000, first_id + 2 * i);
        pay(bob, alice, 5_000_000 + u64::from(i) * 7, first_id + 2 * i + 1);
    }
}

#[test]
fn a_restarted_node_continues_its_channels_and_its_state_does_not_roll_back() {
    let secp = Secp256k1::new();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::default();
    let keys = Arc::new(open_keys(31, dir.path(), 0, Vec::new()).unwrap());
    let mut alice = Node::with_keys("alice", keys, UserConfig::default());
    let mut bob = Node::new("bob", 32, UserConfig::default());
    connect(&alice, &bob);
    let channel_id = open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay_both_ways(&mut alice, &mut bob, 4, 0);
    no_refusals(&[&alice, &bob]);
    let id = only_channel(&alice);
    let before = alice.keys.channel_state(&id).unwrap();
    let params = alice.keys.channel_parameters(&id).unwrap();
    assert!(before.holder.next_number >= 8, "{:?}", before.holder);

    // Both LDK's state and Warden's store are read back.
    let mut alice = alice.restart(UserConfig::default(), || {
        Arc::new(open_keys(31, dir.path(), 1, Vec::new()).unwrap())
    });
    assert_eq!(alice.keys.channel_keys_ids(), vec![id]);
    assert_eq!(alice.keys.channel_state(&id).unwrap(), before);
    assert_eq!(alice.keys.channel_parameters(&id).unwrap(), params);
    reconnect(&mut alice, &mut bob);
    pay_both_ways(&mut alice, &mut bob, 4, 20);
    no_refusals(&[&alice, &bob]);
    let now = alice.keys.channel_state(&id).unwrap();
    assert!(now.holder.next_number > before.holder.next_number + 4, "{:?}", now.holder);
    assert!(now.counterparty.revoked_below > before.counterparty.revoked_below + 4);

    // Restarted, Warden still knows what was revoked and signed: a revoked holder state, the
    // current holder commitment's secret (its successor was not validated), and a commitment
    // of bob's below the one signed last are refused.
    let signer = alice.keys.derive_channel_signer(id);
    let rule = |n: &Node| n.keys.refusals().last().unwrap().error.rule;
    let current = now.holder.next_number - 1;
    assert!(signer.release_commitment_secret(INITIAL_COMMITMENT_NUMBER - current).is_err());
    assert_eq!(rule(&alice), Rule::RevokeNewCommitmentValidated);

    let content = &now.holder.current.as_ref().unwrap().content;
    let old = before.holder.revoked_below - 1;
    let idx = INITIAL_COMMITMENT_NUMBER - old;
    let tx = CommitmentTransaction::new(
        idx,
        &signer.get_per_commitment_point(idx, &secp).unwrap(),
        content.to_holder.0,
        content.to_counterparty.0,
        content.feerate.0,
        Vec::new(),
        &params.as_holder_broadcastable(),
        &secp,
    );
    let any = SecretKey::from_slice(&[1; 32]).unwrap();
    let holder_tx = HolderCommitmentTransaction::new(
        tx,
        secp.sign_ecdsa(&Message::from_digest([5; 32]), &any),
        Vec::new(),
        &params.holder_pubkeys.funding_pubkey,
        &params.counterparty_pubkeys().unwrap().funding_pubkey,
    );
    assert!(signer.sign_holder_commitment(&params, &holder_tx, &secp).is_err());
    assert_eq!(rule(&alice), Rule::SweepHolderRevoked);

    let theirs = now.counterparty.current.as_ref().unwrap();
    let stale = before.counterparty.current.as_ref().unwrap().content.number.get() - 1;
    let idx = INITIAL_COMMITMENT_NUMBER - stale;
    let bob_signer = bob.keys.derive_channel_signer(only_channel(&bob));
    let old_theirs = CommitmentTransaction::new(
        idx,
        &bob_signer.get_per_commitment_point(idx, &secp).unwrap(),
        theirs.content.to_counterparty.0,
        theirs.content.to_holder.0,
        theirs.content.feerate.0,
        Vec::new(),
        &params.as_counterparty_broadcastable(),
        &secp,
    );
    assert!(signer
        .sign_counterparty_commitment(&params, &old_theirs, vec![], vec![], &secp)
        .is_err());
    assert_eq!(rule(&alice), Rule::CommitmentNumber);
    assert_eq!(alice.keys.refusals().len(), 3);
    assert_eq!(alice.keys.channel_state(&id).unwrap(), now);

    // The channel goes on and closes cooperatively.
    pay(&mut alice, &mut bob, 1_000_000, 90);
    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    let closing = alice.take_broadcasts();
    assert_eq!(closing.len(), 1, "alice broadcasts one closing transaction");
    assert_eq!(bob.take_broadcasts().len(), 1);
    chain.mine(&[&alice, &bob], closing);
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice.events.iter().any(|e| matches!(
        e,
        Event::ChannelClosed { reason: ClosureReason::LocallyInitiatedCooperativeClosure, .. }
    )));
    assert_eq!(alice.keys.refusals().len(), 3);
    no_refusals(&[&bob]);
    assert!(alice.keys.channel_state(&id).unwrap().mutual_close_signed);
}

#[test]
fn a_tampered_or_rolled_back_store_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::default();
    let keys = Arc::new(open_keys(33, dir.path(), 0, Vec::new()).unwrap());
    let mut alice = Node::with_keys("alice", keys, UserConfig::default());
    let mut bob = Node::new("bob", 34, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay_both_ways(&mut alice, &mut bob, 1, 0);
    let mut old = Vec::new();
    let mut alice = alice.restart(UserConfig::default(), || {
        old = records(dir.path(), 33);
        Arc::new(open_keys(33, dir.path(), 1, Vec::new()).unwrap())
    });
    reconnect(&mut alice, &mut bob);
    pay_both_ways(&mut alice, &mut bob, 2, 10);
    no_refusals(&[&alice, &bob]);
    let latest = alice.keys.channel_state(&only_channel(&alice)).unwrap();
    drop(alice);
    drop(bob);

    let current = records(dir.path(), 33);
    let stale = |what: &str| {
        let e = open_keys(33, dir.path(), 2, Vec::new()).err().unwrap_or_else(|| {
            panic!("a store with {what} opened");
        });
        assert!(e.is_stale(), "{what}: {e}");
        assert!(e.to_string().contains("node-state-stale"), "{what}: {e}");
    };
    // A record rolled back to an older version of itself (its own envelope is consistent).
    let (rolled, older) = current
        .iter()
        .filter(|r| r.key != b"warden-head")
        .find_map(|r| old.iter().find(|o| o.key == r.key && o.version < r.version).map(|o| (r, o)))
        .expect("a record changed after the restart");
    overwrite(dir.path(), 33, &rolled.key, Some((older.version, older.value.clone())));
    stale("a record rolled back");
    // Put back, the store opens with the latest state.
    overwrite(dir.path(), 33, &rolled.key, Some((rolled.version, rolled.value.clone())));
    let reopened = open_keys(33, dir.path(), 3, Vec::new()).unwrap();
    assert_eq!(reopened.channel_state(&only_channel_of(&reopened)).unwrap(), latest);
    drop(reopened);
    // One byte of a sealed value changed.
    let mut tampered = rolled.value.clone();
    *tampered.last_mut().unwrap() ^= 1;
    overwrite(dir.path(), 33, &rolled.key, Some((rolled.version, tampered)));
    stale("a tampered record");
    // A record dropped.
    overwrite(dir.path(), 33, &rolled.key, None);
    stale("a record dropped");
}

fn only_channel_of(keys: &WardenKeysManager) -> [u8; 32] {
    let ids = keys.channel_keys_ids();
    assert_eq!(ids.len(), 1);
    ids[0]
}

/// The local file put back as a whole to an older copy verifies by itself (it is a state
/// Warden wrote); a PostgreSQL replica, written before every call returned, holds the newer
/// state and is adopted at open, so the node goes on from its latest state.
#[test]
fn a_whole_file_rollback_is_caught_by_a_postgres_replica() {
    let Some(server) = warden_store::test_support::server() else {
        // Only outside CI without PostgreSQL binaries (test_support decides).
        return;
    };
    let url = server.fresh_database(&format!("ldk_rollback_{}", std::process::id())).unwrap();
    let replica = || vec![Replica::postgres("pg", &url, &wire_id(35)).unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let backup = tempfile::tempdir().unwrap();
    let file = |d: &Path| d.join(STORE_DIR).join(warden_store::redb::FILE_NAME);
    let mut chain = Chain::default();
    let keys = Arc::new(open_keys(35, dir.path(), 0, replica()).unwrap());
    let mut alice = Node::with_keys("alice", keys, UserConfig::default());
    let mut bob = Node::new("bob", 36, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay_both_ways(&mut alice, &mut bob, 1, 0);
    let old_state = alice.keys.channel_state(&only_channel(&alice)).unwrap();
    let mut alice = alice.restart(UserConfig::default(), || {
        std::fs::create_dir_all(backup.path().join(STORE_DIR)).unwrap();
        std::fs::copy(file(dir.path()), file(backup.path())).unwrap();
        Arc::new(open_keys(35, dir.path(), 1, replica()).unwrap())
    });
    reconnect(&mut alice, &mut bob);
    pay_both_ways(&mut alice, &mut bob, 2, 10);
    let id = only_channel(&alice);
    let latest = alice.keys.channel_state(&id).unwrap();
    assert_ne!(latest, old_state);
    let mut alice = alice.restart(UserConfig::default(), || {
        std::fs::copy(file(backup.path()), file(dir.path())).unwrap();
        // Alone, the rolled-back file opens on the old state.
        let alone = open_keys(35, dir.path(), 2, Vec::new()).unwrap();
        assert_eq!(alone.channel_state(&id).unwrap(), old_state);
        drop(alone);
        Arc::new(open_keys(35, dir.path(), 3, replica()).unwrap())
    });
    assert_eq!(alice.keys.channel_state(&id).unwrap(), latest);
    reconnect(&mut alice, &mut bob);
    pay_both_ways(&mut alice, &mut bob, 1, 40);
    no_refusals(&[&alice, &bob]);
}
