#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! A node on Core Lightning's key scheme (`KeyScheme::CoreLightning`) next to one on LDK's:
//! the channel opens, payments go both ways, the CLN-scheme node restarts from its store, pays
//! again and closes cooperatively; its funding key is the one warden-core derives for (its node
//! id, the channel's dbid).

mod support;

use std::sync::Arc;

use bitcoin::secp256k1::Secp256k1;
use bitcoin::NetworkKind;
use lightning::events::{ClosureReason, Event};
use lightning::sign::SignerProvider;
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, pump, reconnect, Chain, Node};
use warden_core::keys::NodeKeys;
use warden_core::secret::Seed;
use warden_core::units::Dbid;
use warden_ldk::keys::cln_dbid_of;
use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};

const HSM_SECRET: [u8; 32] = [0x4c; 32];

fn cln_keys(dir: &std::path::Path, start: u64) -> Arc<WardenKeysManager> {
    Arc::new(
        WardenKeysManager::open(
            &HSM_SECRET,
            KeyScheme::CoreLightning,
            WardenConfig::test_network(),
            1_700_000_000 + start,
            0,
            dir,
            Vec::new(),
        )
        .unwrap(),
    )
}

fn no_refusals(nodes: &[&Node]) {
    for n in nodes {
        let refusals = n.keys.refusals();
        assert!(refusals.is_empty(), "{} refused: {refusals:#?}", n.name);
    }
}

#[test]
fn a_core_lightning_scheme_node_opens_pays_restarts_and_closes() {
    let secp = Secp256k1::new();
    let core = NodeKeys::derive(&secp, &Seed::from_legacy(HSM_SECRET), NetworkKind::Test).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut chain = Chain::default();
    let mut alice = Node::with_keys("alice", cln_keys(dir.path(), 0), UserConfig::default());
    let mut bob = Node::new("bob", 42, UserConfig::default());
    assert_eq!(alice.node_id(), core.node_id().0);
    connect(&alice, &bob);
    let channel_id = open_channel(&mut chain, &mut alice, &mut bob, 1_000_000, 0);
    for i in 0..3u8 {
        pay(&mut alice, &mut bob, 30_000_000 + u64::from(i), i);
        pay(&mut bob, &mut alice, 4_000_000 + u64::from(i), 10 + i);
    }
    no_refusals(&[&alice, &bob]);

    // The channel's funding key, as bob sees it, is warden-core's for (alice, dbid).
    let ids = alice.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1);
    let dbid = cln_dbid_of(&ids[0]);
    let expected = core.channel_keys(&core.node_id(), Dbid(dbid)).unwrap();
    let bob_id = bob.keys.channel_keys_ids()[0];
    let bob_params = bob.keys.channel_parameters(&bob_id).unwrap();
    let alice_keys = &bob_params.counterparty_parameters.as_ref().unwrap().pubkeys;
    assert_eq!(alice_keys.funding_pubkey, expected.funding_pubkey(&secp).0);
    assert_eq!(alice_keys.htlc_basepoint.to_public_key(), expected.basepoints(&secp).htlc.0);
    let state = alice.keys.channel_state(&ids[0]).unwrap();
    assert_eq!(state.slot.dbid, Dbid(dbid));

    let mut alice = alice.restart(UserConfig::default(), || cln_keys(dir.path(), 1));
    assert_eq!(alice.keys.channel_state(&ids[0]).unwrap(), state);
    reconnect(&mut alice, &mut bob);
    pay(&mut alice, &mut bob, 1_000_000, 50);
    pay(&mut bob, &mut alice, 2_000_000, 51);
    // A channel opened after the restart gets a dbid of its own.
    let next = alice.keys.generate_channel_keys_id(false, 9);
    assert!(cln_dbid_of(&next) > dbid);

    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    let closing = alice.take_broadcasts();
    assert_eq!(closing.len(), 1);
    assert!(closing[0].output.iter().any(|o| o.script_pubkey == alice.keys.shutdown_script()));
    chain.mine(&[&alice, &bob], closing);
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice.events.iter().any(|e| matches!(
        e,
        Event::ChannelClosed { reason: ClosureReason::LocallyInitiatedCooperativeClosure, .. }
    )));
    no_refusals(&[&alice, &bob]);
}
