#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Two LDK nodes, Warden the only signer of both: a channel opens, payments go both ways, the
//! channel closes cooperatively; Warden refuses nothing and both sides' closing outputs pay
//! the balances the payments left.

mod support;

use lightning::events::{ClosureReason, Event};
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, pump, Chain, Node};

const CHANNEL: u64 = 1_000_000;

fn no_refusals(nodes: &[&Node]) {
    for n in nodes {
        let refusals = n.keys.refusals();
        assert!(refusals.is_empty(), "{} refused: {refusals:#?}", n.name);
    }
}

#[test]
fn open_pay_both_ways_and_close_cooperatively() {
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 1, UserConfig::default());
    let mut bob = Node::new("bob", 2, UserConfig::default());
    connect(&alice, &bob);
    let channel_id = open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    no_refusals(&[&alice, &bob]);

    let mut sent_by_alice = 0;
    let mut sent_by_bob = 0;
    for i in 0..10u8 {
        let amount = 10_000_000 + u64::from(i) * 1_000;
        pay(&mut alice, &mut bob, amount, i);
        sent_by_alice += amount;
        if i % 2 == 1 {
            let back = 3_000_000 + u64::from(i) * 7;
            pay(&mut bob, &mut alice, back, 100 + i);
            sent_by_bob += back;
        }
    }
    no_refusals(&[&alice, &bob]);
    let alice_state = alice.keys.channel_state(&channel_keys_id(&alice)).unwrap();
    assert!(alice_state.holder.next_number > 10, "{:?}", alice_state.holder);
    assert!(alice_state.counterparty.revoked_below > 10);

    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    no_refusals(&[&alice, &bob]);
    let closing = alice.take_broadcasts();
    let closing_bob = bob.take_broadcasts();
    assert_eq!(closing.len(), 1, "alice broadcasts one closing transaction");
    assert_eq!(closing_bob.len(), 1, "bob broadcasts one closing transaction");
    let tx = &closing[0];
    assert_eq!(tx.compute_txid(), closing_bob[0].compute_txid());
    let pays = |script: &bitcoin::ScriptBuf| {
        tx.output
            .iter()
            .filter(|o| &o.script_pubkey == script)
            .map(|o| o.value.to_sat())
            .sum::<u64>()
    };
    let to_alice = pays(&alice.keys.shutdown_script());
    let to_bob = pays(&bob.keys.shutdown_script());
    let bob_balance = (sent_by_alice - sent_by_bob) / 1000;
    assert!(to_bob.abs_diff(bob_balance) <= 1, "bob gets {to_bob}, balance {bob_balance}");
    assert!(to_alice < CHANNEL - bob_balance && to_alice > CHANNEL - bob_balance - 10_000);
    chain.mine(&[&alice, &bob], vec![tx.clone()]);
    pump(&mut [&mut alice, &mut bob]);
    for n in [&alice, &bob] {
        assert!(
            n.events.iter().any(|e| matches!(
                e,
                Event::ChannelClosed {
                    reason: ClosureReason::LocallyInitiatedCooperativeClosure
                        | ClosureReason::CounterpartyInitiatedCooperativeClosure,
                    ..
                }
            )),
            "{} saw no cooperative close",
            n.name
        );
    }
    no_refusals(&[&alice, &bob]);
}

fn channel_keys_id(node: &Node) -> [u8; 32] {
    let ids = node.keys.channel_keys_ids();
    assert_eq!(ids.len(), 1);
    ids[0]
}

/// An adversarial wrapper between LDK and Warden: alice's node is compromised after the
/// channel opened and asks Warden to sign (1) a next commitment of bob's that moves 50,000
/// sat of alice's balance to bob without an HTLC, (2) a different version of bob's commitment
/// already signed, (3) a mutual close paying alice's share to a stranger. Warden refuses each
/// with its rule, changes nothing, and the honest flow goes on.
#[test]
fn tampered_requests_are_refused_with_their_rule_and_the_channel_goes_on() {
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::Secp256k1;
    use lightning::ln::chan_utils::{ClosingTransaction, CommitmentTransaction};
    use lightning::sign::ecdsa::EcdsaChannelSigner;
    use lightning::sign::{ChannelSigner, SignerProvider};
    use warden_core::policy::Rule;
    use warden_ldk::channel::INITIAL_COMMITMENT_NUMBER;

    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 3, UserConfig::default());
    let mut bob = Node::new("bob", 4, UserConfig::default());
    connect(&alice, &bob);
    let channel_id = open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 90_000_000, 1);
    pay(&mut bob, &mut alice, 30_000_000, 2);
    no_refusals(&[&alice, &bob]);

    let id = channel_keys_id(&alice);
    let params = alice.keys.channel_parameters(&id).unwrap();
    let before = alice.keys.channel_state(&id).unwrap();
    let current = before.counterparty.current.clone().unwrap();
    let signer = alice.keys.derive_channel_signer(id);
    let bob_signer = bob.keys.derive_channel_signer(channel_keys_id(&bob));
    let directed = params.as_counterparty_broadcastable();

    // (1) value moved to bob without an htlc.
    let next = before.counterparty.next_number;
    let idx = INITIAL_COMMITMENT_NUMBER - next;
    let point = bob_signer.get_per_commitment_point(idx, &secp).unwrap();
    let stolen = CommitmentTransaction::new(
        idx,
        &point,
        current.content.to_counterparty.0 + 50_000,
        current.content.to_holder.0 - 50_000,
        current.content.feerate.0,
        Vec::new(),
        &directed,
        &secp,
    );
    assert!(signer.sign_counterparty_commitment(&params, &stolen, vec![], vec![], &secp).is_err());
    assert_eq!(alice.keys.refusals().last().unwrap().error.rule, Rule::CommitmentBalance);

    // (2) the commitment already signed, with other content.
    let idx = INITIAL_COMMITMENT_NUMBER - current.content.number.get();
    let other = CommitmentTransaction::new(
        idx,
        &current.point.0,
        current.content.to_counterparty.0 + 1_000,
        current.content.to_holder.0 - 1_000,
        current.content.feerate.0,
        Vec::new(),
        &directed,
        &secp,
    );
    assert!(signer.sign_counterparty_commitment(&params, &other, vec![], vec![], &secp).is_err());
    assert_eq!(alice.keys.refusals().last().unwrap().error.rule, Rule::CommitmentRetrySame);

    // (3) a mutual close paying alice's share to a stranger.
    let ours = before.holder.current.as_ref().unwrap().content.to_holder.0;
    let theirs = before.holder.current.as_ref().unwrap().content.to_counterparty.0;
    let stranger = bitcoin::ScriptBuf::new_p2wsh(&bitcoin::WScriptHash::from_byte_array([7; 32]));
    let close = ClosingTransaction::new(
        ours - 1_000,
        theirs,
        stranger,
        bob.keys.shutdown_script(),
        params.funding_outpoint.unwrap().into_bitcoin_outpoint(),
    );
    assert!(signer.sign_closing_transaction(&params, &close, &secp).is_err());
    assert_eq!(alice.keys.refusals().last().unwrap().error.rule, Rule::CloseDestination);

    // Nothing changed, and the honest flow goes on.
    assert_eq!(alice.keys.channel_state(&id).unwrap(), before);
    assert_eq!(alice.keys.refusals().len(), 3);
    pay(&mut alice, &mut bob, 1_000_000, 3);
    pay(&mut bob, &mut alice, 2_000_000, 4);
    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    assert_eq!(alice.take_broadcasts().len(), 1);
    assert_eq!(alice.keys.refusals().len(), 3);
    no_refusals(&[&bob]);
}

/// Opens a channel from alice to bob that bob accepts by hand (anchor channel types need it).
fn open_accepted_channel(
    chain: &mut Chain,
    alice: &mut Node,
    bob: &mut Node,
) -> lightning::ln::types::ChannelId {
    alice.manager.create_channel(bob.node_id(), CHANNEL, 0, 7, None, None).unwrap();
    pump(&mut [alice, bob]);
    let request = bob
        .events
        .iter()
        .find_map(|e| match e {
            Event::OpenChannelRequest { temporary_channel_id, counterparty_node_id, .. } => {
                Some((*temporary_channel_id, *counterparty_node_id))
            }
            _ => None,
        })
        .unwrap();
    bob.manager.accept_inbound_channel(&request.0, &request.1, 8, None).unwrap();
    support::fund_pending_channel(chain, alice, bob, CHANNEL)
}

/// The same flow on an `option_anchors_zero_fee_htlc_tx` channel (HTLC signatures
/// `SIGHASH_SINGLE|ANYONECANPAY`, anchors, a CSV on to_remote), with payments in flight at
/// once in both directions.
#[test]
fn anchor_channels_open_pay_and_close() {
    let mut config = UserConfig { manually_accept_inbound_channels: true, ..Default::default() };
    config.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = true;
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 5, config.clone());
    let mut bob = Node::new("bob", 6, config);
    connect(&alice, &bob);
    let channel_id = open_accepted_channel(&mut chain, &mut alice, &mut bob);
    let details = alice.manager.list_channels();
    assert!(details[0].channel_type.as_ref().unwrap().supports_anchors_zero_fee_htlc_tx());
    for i in 0..6u8 {
        pay(&mut alice, &mut bob, 20_000_000 + u64::from(i), 10 + i);
        if i > 1 {
            pay(&mut bob, &mut alice, 5_000_000 + u64::from(i), 20 + i);
        }
    }
    no_refusals(&[&alice, &bob]);
    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    assert_eq!(alice.take_broadcasts().len(), 1);
    no_refusals(&[&alice, &bob]);
}

/// The flow on an `option_zero_fee_commitments` channel (LDK 0.2's staging bit 140:
/// version-3 commitments at feerate 0 with one shared pay-to-anchor output): payments both
/// ways, trimmed ones among them (while in flight their value goes to the
/// shared anchor, up to 240 sat), then a cooperative close. Every commitment is rebuilt and
/// its anchor's value checked by Warden; nothing is refused.
#[test]
fn zero_fee_commitment_channels_open_pay_and_close() {
    let mut config = UserConfig { manually_accept_inbound_channels: true, ..Default::default() };
    config.channel_handshake_config.negotiate_anchors_zero_fee_htlc_tx = true;
    config.channel_handshake_config.negotiate_anchor_zero_fee_commitments = true;
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 31, config.clone());
    let mut bob = Node::new("bob", 32, config);
    connect(&alice, &bob);
    let channel_id = open_accepted_channel(&mut chain, &mut alice, &mut bob);
    let details = alice.manager.list_channels();
    assert!(details[0].channel_type.as_ref().unwrap().supports_anchor_zero_fee_commitments());
    for i in 0..6u8 {
        pay(&mut alice, &mut bob, 20_000_000 + u64::from(i), 40 + i);
        // Below the dust limit: trimmed, carried by the shared anchor.
        pay(&mut alice, &mut bob, 100_000 + u64::from(i), 50 + i);
        if i > 1 {
            pay(&mut bob, &mut alice, 5_000_000 + u64::from(i), 60 + i);
        }
    }
    no_refusals(&[&alice, &bob]);
    let id = channel_keys_id(&alice);
    let state = alice.keys.channel_state(&id).unwrap();
    assert!(state.holder.next_number > 20, "{}", state.holder.next_number);
    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    assert_eq!(alice.take_broadcasts().len(), 1);
    no_refusals(&[&alice, &bob]);
}

/// The state rules hold against direct calls a compromised node could make: revoking our
/// current commitment before its successor was validated, a peer secret that does not match,
/// and signing a revoked commitment of ours for broadcast. Each is refused with its rule and
/// changes nothing.
#[test]
fn direct_calls_cannot_break_the_state_rules() {
    use bitcoin::secp256k1::{Message, Secp256k1, SecretKey};
    use lightning::ln::chan_utils::{CommitmentTransaction, HolderCommitmentTransaction};
    use lightning::sign::ecdsa::EcdsaChannelSigner;
    use lightning::sign::{ChannelSigner, SignerProvider};
    use warden_core::policy::Rule;
    use warden_ldk::channel::INITIAL_COMMITMENT_NUMBER;

    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 7, UserConfig::default());
    let mut bob = Node::new("bob", 8, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 50_000_000, 1);
    pay(&mut bob, &mut alice, 10_000_000, 2);
    let id = channel_keys_id(&alice);
    let before = alice.keys.channel_state(&id).unwrap();
    let params = alice.keys.channel_parameters(&id).unwrap();
    let signer = alice.keys.derive_channel_signer(id);
    let last_rule = |n: &Node| n.keys.refusals().last().unwrap().error.rule;

    let current = before.holder.next_number - 1;
    assert!(signer.release_commitment_secret(INITIAL_COMMITMENT_NUMBER - current).is_err());
    assert_eq!(last_rule(&alice), Rule::RevokeNewCommitmentValidated);

    let revoked = before.counterparty.revoked_below - 1;
    let wrong = SecretKey::from_slice(&[1; 32]).unwrap();
    assert!(signer
        .validate_counterparty_revocation(INITIAL_COMMITMENT_NUMBER - revoked, &wrong)
        .is_err());
    assert_eq!(last_rule(&alice), Rule::RevokePeerSecret);

    let old = before.holder.revoked_below - 1;
    let idx = INITIAL_COMMITMENT_NUMBER - old;
    let content = &before.holder.current.as_ref().unwrap().content;
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
    let any_sig = secp.sign_ecdsa(&Message::from_digest([5; 32]), &wrong);
    let holder_tx = HolderCommitmentTransaction::new(
        tx,
        any_sig,
        Vec::new(),
        &params.holder_pubkeys.funding_pubkey,
        &params.counterparty_pubkeys().unwrap().funding_pubkey,
    );
    assert!(signer.sign_holder_commitment(&params, &holder_tx, &secp).is_err());
    assert_eq!(last_rule(&alice), Rule::SweepHolderRevoked);

    assert_eq!(alice.keys.channel_state(&id).unwrap(), before);
    assert_eq!(alice.keys.refusals().len(), 3);
    pay(&mut alice, &mut bob, 1_000_000, 3);
    no_refusals(&[&bob]);
    assert_eq!(alice.keys.refusals().len(), 3);
}
