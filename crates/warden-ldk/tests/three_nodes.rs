#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Three LDK nodes in a line, alice — bob — carol, Warden the only signer of all three: 100
//! payments, direct and forwarded both ways, a fee update in the middle, then both channels
//! close cooperatively and every closing output pays the balance the payments left.

mod support;

use lightning::sign::NodeSigner;
use lightning::util::config::UserConfig;
use support::{connect, open_channel_seen_by, pay, pay_via, pump, Chain, NextHop, Node};

const CHANNEL: u64 = 2_000_000;

#[test]
fn a_hundred_payments_over_two_hops_with_a_fee_update() {
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 21, UserConfig::default());
    // bob forwards over the (unannounced) channels of this test.
    let forwarding = UserConfig { accept_forwards_to_priv_channels: true, ..Default::default() };
    let mut bob = Node::new("bob", 22, forwarding);
    let mut carol = Node::new("carol", 23, UserConfig::default());
    connect(&alice, &bob);
    connect(&bob, &carol);
    let ab = open_channel_seen_by(&mut chain, &mut alice, &mut bob, CHANNEL, 0, &[&carol]);
    // bob opens to carol and gives her 300,000 sat so she can pay back from the start.
    let bc =
        open_channel_seen_by(&mut chain, &mut bob, &mut carol, CHANNEL, 300_000_000, &[&alice]);
    // Private channels forward only by the alias the receiving side gave (its inbound scid).
    let scid_bc = carol.manager.list_channels().into_iter().find(|c| c.channel_id == bc).unwrap();
    let scid_ba = alice.manager.list_channels().into_iter().find(|c| c.channel_id == ab).unwrap();
    let config = bob.manager.list_channels()[0].config.unwrap();
    alice.router.next_hops.lock().unwrap().push(NextHop {
        payee: carol.node_id(),
        payee_features: carol.manager.node_features(),
        via: bob.node_id(),
        scid: scid_bc.get_inbound_payment_scid().unwrap(),
        fee_msat: u64::from(config.forwarding_fee_base_msat),
        cltv_expiry_delta: u32::from(config.cltv_expiry_delta),
    });
    carol.router.next_hops.lock().unwrap().push(NextHop {
        payee: alice.node_id(),
        payee_features: alice.manager.node_features(),
        via: bob.node_id(),
        scid: scid_ba.get_inbound_payment_scid().unwrap(),
        fee_msat: u64::from(config.forwarding_fee_base_msat),
        cltv_expiry_delta: u32::from(config.cltv_expiry_delta),
    });
    let fee = u64::from(config.forwarding_fee_base_msat);

    // Net msat moved: alice -> bob on ab, bob -> carol on bc.
    // bob needs a balance on alice's channel (above his reserve) to forward carol's payments.
    pay(&mut alice, &mut bob, 150_000_000, 200);
    let (mut ab_net, mut bc_net) = (150_000_000i64, 0i64);
    for i in 0..100u8 {
        let amount = 6_000_000 + u64::from(i) * 10_000;
        match i % 4 {
            0 => {
                pay_via(&mut alice, &mut carol, Some(&mut bob), amount, i);
                ab_net += (amount + fee) as i64;
                bc_net += amount as i64;
            }
            1 => {
                pay_via(&mut carol, &mut alice, Some(&mut bob), amount, i);
                bc_net -= (amount + fee) as i64;
                ab_net -= amount as i64;
            }
            2 => {
                pay(&mut alice, &mut bob, amount, i);
                ab_net += amount as i64;
            }
            _ => {
                pay(&mut carol, &mut bob, amount / 2, i);
                bc_net -= (amount / 2) as i64;
            }
        }
        if i == 50 {
            // The openers raise their feerate: update_fee on both channels.
            *alice.fees.0.lock().unwrap() = 1_000;
            *bob.fees.0.lock().unwrap() = 1_000;
            alice.manager.timer_tick_occurred();
            bob.manager.timer_tick_occurred();
            pump(&mut [&mut alice, &mut bob, &mut carol]);
        }
    }
    for n in [&alice, &bob, &carol] {
        let refusals = n.keys.refusals();
        assert!(refusals.is_empty(), "{} refused: {refusals:#?}", n.name);
    }
    let fee_updates = alice.keys.channel_state(&alice.keys.channel_keys_ids()[0]).unwrap();
    assert_eq!(fee_updates.holder.current.unwrap().content.feerate.0, 1_000, "the fee update took");

    alice.manager.close_channel(&ab, &bob.node_id()).unwrap();
    carol.manager.close_channel(&bc, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob, &mut carol]);
    let closes = alice.take_broadcasts();
    let closes_bc = carol.take_broadcasts();
    assert_eq!((closes.len(), closes_bc.len()), (1, 1));
    let pays = |tx: &bitcoin::Transaction, n: &Node| -> u64 {
        let s = n.keys.shutdown_script();
        tx.output.iter().filter(|o| o.script_pubkey == s).map(|o| o.value.to_sat()).sum()
    };
    let bob_on_ab = pays(&closes[0], &bob);
    let carol_on_bc = pays(&closes_bc[0], &carol);
    assert!(bob_on_ab.abs_diff((ab_net / 1000) as u64) <= 1, "bob {bob_on_ab} vs {ab_net}");
    assert!(
        carol_on_bc.abs_diff(((300_000_000 + bc_net) / 1000) as u64) <= 1,
        "carol {carol_on_bc} vs {bc_net}"
    );
    for n in [&alice, &bob, &carol] {
        assert!(n.keys.refusals().is_empty(), "{} refused at close", n.name);
        assert!(n.keys.get_node_id(lightning::sign::Recipient::Node).is_ok());
    }
}
