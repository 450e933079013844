#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! The payment rules (`payment-*`, warden-core's payment ledger) on LDK nodes: a forward
//! passes when what leaves for a payment hash is covered by what came in for it, and a
//! compromised node's routed HTLC that sends more than came in is refused
//! (`payment-unbalanced`); a payment beyond the velocity budget waits
//! (`payment-velocity`) until the invoice is approved for an allowlisted payee; the node key
//! signs only invoices of ours.

mod support;

use std::sync::Arc;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use lightning::bolt11_invoice::{Currency, InvoiceBuilder};
use lightning::events::Event;
use lightning::ln::chan_utils::{CommitmentTransaction, HTLCOutputInCommitment};
use lightning::ln::channelmanager::{
    Bolt11InvoiceParameters, PaymentId, RecipientOnionFields, Retry,
};
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{ChannelSigner, NodeSigner, Recipient, SignerProvider};
use lightning::types::payment::PaymentHash;
use lightning::util::config::UserConfig;
use support::{
    connect, open_channel, open_channel_seen_by, pay, pay_via, pump, Chain, NextHop, Node,
};
use warden_core::channel::HtlcSide;
use warden_core::keys::NodeId;
use warden_core::policy::Rule;
use warden_core::units::Msat;
use warden_ldk::channel::INITIAL_COMMITMENT_NUMBER;
use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};

const CHANNEL: u64 = 2_000_000;

fn keys(seed: u8, config: WardenConfig) -> Arc<WardenKeysManager> {
    Arc::new(
        WardenKeysManager::new(
            &[seed; 32],
            KeyScheme::Ldk { v2_remote_key: true },
            config,
            1_700_000_000,
            u32::from(seed),
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

/// Sends `amount_msat` from `from` to `to` through `via`, and returns once `to` can claim it
/// (the HTLCs are in flight on both hops); returns the hash and preimage.
fn send_and_hold(
    from: &mut Node,
    via: &mut Node,
    to: &mut Node,
    amount_msat: u64,
    id: u8,
) -> (PaymentHash, lightning::types::payment::PaymentPreimage) {
    let (hash, secret) = to.manager.create_inbound_payment(Some(amount_msat), 3600, None).unwrap();
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(to.node_id(), 40),
        amount_msat,
    );
    from.manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId([id; 32]),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    pump(&mut [from, via, to]);
    let preimage = to
        .events
        .iter()
        .find_map(|e| match e {
            Event::PaymentClaimable { payment_hash, purpose, .. } if *payment_hash == hash => {
                purpose.preimage()
            }
            _ => None,
        })
        .expect("the payment is claimable");
    (hash, preimage)
}

/// alice — bob — carol; bob's Warden has no velocity budget at all: every value leaving bob
/// for a payment hash must be covered by what came in for it. Honest forwards pass; bob's
/// node, compromised while a forward is in flight, asks Warden to sign carol's next commitment
/// with a second HTLC of the same hash (value leaving without a matching incoming): refused
/// with `payment-unbalanced`, nothing changed, and the honest forward completes.
#[test]
fn a_routed_htlc_sending_more_than_came_in_is_refused() {
    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 61, UserConfig::default());
    let mut strict = WardenConfig::test_network();
    strict.payments.velocity_per_hour = Some(Msat(0));
    strict.payments.velocity_per_day = Some(Msat(0));
    let forwarding = UserConfig { accept_forwards_to_priv_channels: true, ..Default::default() };
    let mut bob = Node::with_keys("bob", keys(62, strict), forwarding);
    let mut carol = Node::new("carol", 63, UserConfig::default());
    connect(&alice, &bob);
    connect(&bob, &carol);
    open_channel_seen_by(&mut chain, &mut alice, &mut bob, CHANNEL, 0, &[&carol]);
    let bc = open_channel_seen_by(&mut chain, &mut bob, &mut carol, CHANNEL, 0, &[&alice]);
    let scid = carol.manager.list_channels().into_iter().find(|c| c.channel_id == bc).unwrap();
    let config = bob.manager.list_channels()[0].config.unwrap();
    alice.router.next_hops.lock().unwrap().push(NextHop {
        payee: carol.node_id(),
        payee_features: carol.manager.node_features(),
        via: bob.node_id(),
        scid: scid.get_inbound_payment_scid().unwrap(),
        fee_msat: u64::from(config.forwarding_fee_base_msat),
        cltv_expiry_delta: u32::from(config.cltv_expiry_delta),
    });
    // Honest forwards: what leaves bob is covered by what came in.
    for i in 0..3u8 {
        pay_via(&mut alice, &mut carol, Some(&mut bob), 10_000_000 + u64::from(i), i);
    }
    no_refusals(&[&alice, &bob, &carol]);

    // A forward in flight: alice -> bob -> carol, carol has not claimed yet.
    let amount = 7_000_000;
    let (hash, preimage) = send_and_hold(&mut alice, &mut bob, &mut carol, amount, 9);
    let carol_funding = carol.manager.list_channels().into_iter().find(|c| c.channel_id == bc);
    let funding = carol_funding.unwrap().funding_txo.unwrap();
    let id = bob
        .keys
        .channel_keys_ids()
        .into_iter()
        .find(|id| bob.keys.channel_parameters(id).unwrap().funding_outpoint == Some(funding))
        .unwrap();
    let params = bob.keys.channel_parameters(&id).unwrap();
    let before = bob.keys.channel_state(&id).unwrap();
    let current = before.counterparty.current.clone().unwrap().content;
    let forwarded: Vec<_> =
        current.htlcs.iter().filter(|h| h.payment_hash == hash.0).cloned().collect();
    assert_eq!(forwarded.len(), 1, "{current:?}");
    assert_eq!(forwarded[0].offered_by, HtlcSide::Holder);
    assert_eq!(forwarded[0].amount, Msat(amount));

    // The second HTLC of the same hash, paid out of bob's balance (and the fee one more HTLC
    // output costs: bob opened the channel).
    let extra = 2_000_000u64;
    let feerate = u64::from(current.feerate.0);
    let fee = |n: u64| (724 + 172 * n) * feerate / 1000;
    let n = current.htlcs.len() as u64;
    let htlc = |amount_msat: u64| HTLCOutputInCommitment {
        offered: false,
        amount_msat,
        cltv_expiry: forwarded[0].cltv_expiry,
        payment_hash: hash,
        transaction_output_index: None,
    };
    let mut htlcs: Vec<HTLCOutputInCommitment> = current
        .htlcs
        .iter()
        .map(|h| HTLCOutputInCommitment {
            offered: h.offered_by == HtlcSide::Counterparty,
            amount_msat: h.amount.0,
            cltv_expiry: h.cltv_expiry,
            payment_hash: PaymentHash(h.payment_hash),
            transaction_output_index: None,
        })
        .collect();
    htlcs.push(htlc(extra));
    let next = before.counterparty.next_number;
    let idx = INITIAL_COMMITMENT_NUMBER - next;
    let carol_id = carol
        .keys
        .channel_keys_ids()
        .into_iter()
        .find(|i| carol.keys.channel_parameters(i).unwrap().funding_outpoint == Some(funding));
    let carol_signer = carol.keys.derive_channel_signer(carol_id.unwrap());
    let point = carol_signer.get_per_commitment_point(idx, &secp).unwrap();
    let tx = CommitmentTransaction::new(
        idx,
        &point,
        current.to_counterparty.0,
        current.to_holder.0 - extra / 1000 - (fee(n + 1) - fee(n)),
        current.feerate.0,
        htlcs,
        &params.as_counterparty_broadcastable(),
        &secp,
    );
    let signer = bob.keys.derive_channel_signer(id);
    assert!(signer.sign_counterparty_commitment(&params, &tx, vec![], vec![], &secp).is_err());
    let refusals = bob.keys.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(refusals[0].operation, "sign_counterparty_commitment");
    assert_eq!(refusals[0].error.rule, Rule::PaymentUnbalanced, "{refusals:#?}");
    assert_eq!(refusals[0].error.rule.tag(), "payment-unbalanced");
    assert_eq!(bob.keys.channel_state(&id).unwrap(), before);

    // The honest forward completes.
    carol.manager.claim_funds(preimage);
    pump(&mut [&mut alice, &mut bob, &mut carol]);
    assert!(alice
        .events
        .iter()
        .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)));
    pay_via(&mut alice, &mut carol, Some(&mut bob), 1_000_000, 20);
    assert_eq!(bob.keys.refusals().len(), 1);
    no_refusals(&[&alice, &carol]);
}

/// alice may send 10,000 sat per hour without approval. The first payment fits; the second
/// does not (`payment-velocity`) and waits in LDK; once alice approves bob's invoice (bob is
/// on her payee allowlist: no velocity charge) and LDK retries, it goes through.
#[test]
fn a_payment_beyond_the_velocity_budget_waits_for_an_invoice_approval() {
    let mut chain = Chain::default();
    let bob_id = keys(72, WardenConfig::test_network()).node_id();
    let mut budget = WardenConfig::test_network();
    budget.payments.velocity_per_hour = Some(Msat(10_000_000));
    budget.payments.velocity_per_day = Some(Msat(10_000_000));
    budget.payments.allowlist = vec![NodeId(bob_id)];
    let mut alice = Node::with_keys("alice", keys(71, budget), UserConfig::default());
    let mut bob = Node::new("bob", 72, UserConfig::default());
    assert_eq!(bob.node_id(), bob_id);
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 6_000_000, 1);
    no_refusals(&[&alice, &bob]);
    assert_eq!(alice.keys.velocity_spent(3600), 6_000_000);

    let invoice = bob
        .manager
        .create_bolt11_invoice(Bolt11InvoiceParameters {
            amount_msats: Some(6_000_000),
            ..Default::default()
        })
        .unwrap();
    let hash = PaymentHash(invoice.payment_hash().to_byte_array());
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(bob.node_id(), 40),
        6_000_000,
    );
    alice
        .manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(*invoice.payment_secret()),
            PaymentId([2; 32]),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    pump(&mut [&mut alice, &mut bob]);
    let refusals = alice.keys.refusals();
    assert!(!refusals.is_empty());
    assert!(refusals.iter().all(|r| r.error.rule == Rule::PaymentVelocity), "{refusals:#?}");
    assert!(!bob.events.iter().any(
        |e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if *payment_hash == hash)
    ));
    assert_eq!(alice.keys.velocity_spent(3600), 6_000_000);

    alice.keys.approve_invoice(&invoice).unwrap();
    let refused = alice.keys.refusals().len();
    alice.manager.signer_unblocked(None);
    pump(&mut [&mut alice, &mut bob]);
    let preimage = bob
        .events
        .iter()
        .find_map(|e| match e {
            Event::PaymentClaimable { payment_hash, purpose, .. } if *payment_hash == hash => {
                purpose.preimage()
            }
            _ => None,
        })
        .expect("the approved payment arrives");
    bob.manager.claim_funds(preimage);
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice
        .events
        .iter()
        .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)));
    assert_eq!(alice.keys.refusals().len(), refused);
    // The allowlisted approval charged nothing.
    assert_eq!(alice.keys.velocity_spent(3600), 6_000_000);

    // An approval for a payee not on the allowlist is charged, and does not fit.
    let stranger =
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[9; 32]).unwrap());
    let e = alice.keys.approve_keysend(stranger, [4; 32], 5_000_000).unwrap_err();
    assert_eq!(e.error.rule, Rule::PaymentVelocity);
    alice.keys.approve_keysend(stranger, [4; 32], 3_000_000).unwrap();
    assert_eq!(alice.keys.velocity_spent(3600), 9_000_000);
}

/// The node key signs invoices that name us (or no one) as the payee.
#[test]
fn only_our_own_invoices_are_signed() {
    let alice = keys(81, WardenConfig::test_network());
    let other =
        PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[8; 32]).unwrap());
    let raw = |payee: PublicKey| {
        InvoiceBuilder::new(Currency::Regtest)
            .description("coffee".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([1; 32]))
            .payment_secret(lightning::types::payment::PaymentSecret([2; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_700_000_000))
            .min_final_cltv_expiry_delta(144)
            .payee_pub_key(payee)
            .build_raw()
            .unwrap()
    };
    assert!(alice.sign_invoice(&raw(alice.node_id()), Recipient::Node).is_ok());
    assert!(alice.sign_invoice(&raw(other), Recipient::Node).is_err());
    let refusals = alice.refusals();
    assert_eq!(refusals.len(), 1);
    assert_eq!(refusals[0].operation, "sign_invoice");
    assert_eq!(refusals[0].error.rule, Rule::MessageOracle);
}

/// LDK's preimages: bob's next commitment, as a compromised alice node asks Warden to sign
/// it, drops alice's in-flight HTLC and gives its value to bob, with no preimage for it (bob
/// never fulfilled it). `check_balance` alone cannot tell this from a fulfilled HTLC; with
/// the preimages LDK passes, Warden refuses it (`commitment-balance`), and the payment then
/// completes honestly.
#[test]
fn an_htlc_of_ours_removed_without_its_preimage_must_come_back() {
    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 91, UserConfig::default());
    let mut bob = Node::new("bob", 92, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 50_000_000, 1);
    pay(&mut bob, &mut alice, 1_000_000, 2);

    let amount = 8_000_000;
    let (hash, secret) = bob.manager.create_inbound_payment(Some(amount), 3600, None).unwrap();
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(bob.node_id(), 40),
        amount,
    );
    alice
        .manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId([3; 32]),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    pump(&mut [&mut alice, &mut bob]);
    let preimage = bob
        .events
        .iter()
        .find_map(|e| match e {
            Event::PaymentClaimable { payment_hash, purpose, .. } if *payment_hash == hash => {
                purpose.preimage()
            }
            _ => None,
        })
        .unwrap();

    let id = alice.keys.channel_keys_ids()[0];
    let params = alice.keys.channel_parameters(&id).unwrap();
    let before = alice.keys.channel_state(&id).unwrap();
    let current = before.counterparty.current.clone().unwrap().content;
    assert_eq!(current.htlcs.len(), 1);
    assert_eq!(current.htlcs[0].offered_by, HtlcSide::Holder);
    let feerate = u64::from(current.feerate.0);
    let fee = |n: u64| (724 + 172 * n) * feerate / 1000;
    let next = before.counterparty.next_number;
    let idx = INITIAL_COMMITMENT_NUMBER - next;
    let bob_signer = bob.keys.derive_channel_signer(bob.keys.channel_keys_ids()[0]);
    let stolen = CommitmentTransaction::new(
        idx,
        &bob_signer.get_per_commitment_point(idx, &secp).unwrap(),
        current.to_counterparty.0 + amount / 1000,
        current.to_holder.0 + fee(1) - fee(0),
        current.feerate.0,
        Vec::new(),
        &params.as_counterparty_broadcastable(),
        &secp,
    );
    let signer = alice.keys.derive_channel_signer(id);
    assert!(signer.sign_counterparty_commitment(&params, &stolen, vec![], vec![], &secp).is_err());
    let refusals = alice.keys.refusals();
    assert_eq!(refusals.len(), 1, "{refusals:#?}");
    assert_eq!(refusals[0].error.rule, Rule::CommitmentBalance);
    assert!(refusals[0].error.detail.contains("without their preimage"), "{refusals:#?}");
    assert_eq!(alice.keys.channel_state(&id).unwrap(), before);

    bob.manager.claim_funds(preimage);
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice
        .events
        .iter()
        .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)));
    assert_eq!(alice.keys.refusals().len(), 1);
    no_refusals(&[&bob]);
}

/// Value that leaves our side without a visible HTLC (a dust payment goes into a trimmed
/// HTLC) is charged to a daily budget (`PaymentLimits::trimmed_outflow_per_day`); with none,
/// a visible payment goes through and a dust one is refused (`commitment-balance`).
#[test]
fn dust_payments_are_charged_to_the_trimmed_outflow_budget() {
    let mut chain = Chain::default();
    let mut config = WardenConfig::test_network();
    config.payments.trimmed_outflow_per_day = Some(Msat(0));
    let mut alice = Node::with_keys("alice", keys(101, config), UserConfig::default());
    let mut bob = Node::new("bob", 102, UserConfig::default());
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 5_000_000, 1);
    no_refusals(&[&alice, &bob]);

    let (hash, secret) = bob.manager.create_inbound_payment(Some(300_000), 3600, None).unwrap();
    alice
        .manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId([2; 32]),
            RouteParameters::from_payment_params_and_value(
                PaymentParameters::from_node_id(bob.node_id(), 40),
                300_000,
            ),
            Retry::Attempts(0),
        )
        .unwrap();
    pump(&mut [&mut alice, &mut bob]);
    let refusals = alice.keys.refusals();
    assert!(!refusals.is_empty());
    for r in &refusals {
        assert_eq!(r.error.rule, Rule::CommitmentBalance, "{refusals:#?}");
        assert!(r.error.detail.contains("daily limit"), "{refusals:#?}");
    }
    assert!(!bob.events.iter().any(
        |e| matches!(e, Event::PaymentClaimable { payment_hash, .. } if *payment_hash == hash)
    ));
}
