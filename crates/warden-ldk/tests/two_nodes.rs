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
        tx.output.iter().filter(|o| &o.script_pubkey == script).map(|o| o.value.to_sat()).sum::<u64>()
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
                Event::ChannelClosed { reason: ClosureReason::LocallyInitiatedCooperativeClosure
                    | ClosureReason::CounterpartyInitiatedCooperativeClosure, .. }
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
