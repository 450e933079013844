#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! A force close with an HTLC on chain, every output swept with Warden's signatures, and the
//! state rules holding against direct calls a compromised node could make.

mod support;

use std::collections::{HashMap, HashSet};

use bitcoin::secp256k1::Secp256k1;
use bitcoin::{OutPoint, Transaction, Txid};
use lightning::events::Event;
use lightning::ln::channelmanager::{PaymentId, RecipientOnionFields, Retry};
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::{OutputSpender, SpendableOutputDescriptor};
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, pump, Chain, Node};

const CHANNEL: u64 = 1_000_000;

/// Every transaction the nodes broadcast that spends confirmed outputs no confirmed
/// transaction spends yet (the first such spend of each output wins).
fn confirmable(
    nodes: &[&Node],
    confirmed: &HashMap<Txid, Transaction>,
    spent: &mut HashSet<OutPoint>,
) -> Vec<Transaction> {
    let mut block = Vec::new();
    for n in nodes {
        for tx in n.take_broadcasts() {
            if confirmed.contains_key(&tx.compute_txid()) {
                continue;
            }
            let ok = tx.input.iter().all(|i| {
                confirmed.contains_key(&i.previous_output.txid)
                    && !spent.contains(&i.previous_output)
            });
            if ok {
                spent.extend(tx.input.iter().map(|i| i.previous_output));
                block.push(tx);
            }
        }
    }
    block
}

fn verify(tx: &Transaction, confirmed: &HashMap<Txid, Transaction>) {
    tx.verify(|op| confirmed.get(&op.txid).and_then(|t| t.output.get(op.vout as usize)).cloned())
        .unwrap_or_else(|e| panic!("{} does not verify: {e:?}", tx.compute_txid()));
}

#[test]
fn force_close_with_an_htlc_on_chain_and_sweeps() {
    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 11, UserConfig::default());
    let mut bob = Node::new("bob", 12, UserConfig::default());
    connect(&alice, &bob);
    let channel_id = open_channel(&mut chain, &mut alice, &mut bob, CHANNEL, 0);
    pay(&mut alice, &mut bob, 60_000_000, 1);

    // An HTLC bob never claims.
    let (hash, secret) = bob.manager.create_inbound_payment(Some(30_000_000), 3600, None).unwrap();
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(bob.node_id(), 40),
        30_000_000,
    );
    alice
        .manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId([9; 32]),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    pump(&mut [&mut alice, &mut bob]);

    let mut confirmed: HashMap<Txid, Transaction> = HashMap::new();
    let mut spent = HashSet::new();
    // The funding transaction is what the commitment spends.
    let funding = alice.manager.list_channels()[0].funding_txo.unwrap();
    confirmed.insert(funding.txid, support::funding_tx_of(&alice, &bob, &chain));
    alice
        .manager
        .force_close_broadcasting_latest_txn(&channel_id, &bob.node_id(), "test".to_owned())
        .unwrap();
    let commitment = alice
        .take_broadcasts()
        .into_iter()
        .find(|t| t.input[0].previous_output.txid == funding.txid)
        .unwrap();
    assert_eq!(commitment.output.len(), 3, "to_local, to_remote and the htlc");
    verify(&commitment, &confirmed);
    spent.insert(commitment.input[0].previous_output);
    confirmed.insert(commitment.compute_txid(), commitment.clone());
    chain.mine(&[&alice, &bob], vec![commitment]);
    pump(&mut [&mut alice, &mut bob]);

    // Past the htlc's expiry and every CSV: the htlc-timeout, then the delayed outputs.
    for _ in 0..400 {
        let block = confirmable(&[&alice, &bob], &confirmed, &mut spent);
        for tx in &block {
            verify(tx, &confirmed);
            confirmed.insert(tx.compute_txid(), tx.clone());
        }
        chain.mine(&[&alice, &bob], block);
        pump(&mut [&mut alice, &mut bob]);
    }
    let mut swept = 0;
    for node in [&alice, &bob] {
        let outputs: Vec<SpendableOutputDescriptor> = node
            .events
            .iter()
            .filter_map(|e| match e {
                Event::SpendableOutputs { outputs, .. } => Some(outputs.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(!outputs.is_empty(), "{} has nothing to sweep", node.name);
        let refs: Vec<&SpendableOutputDescriptor> = outputs.iter().collect();
        let sweep = node
            .keys
            .spend_spendable_outputs(
                &refs,
                Vec::new(),
                node.keys.destination_script(),
                253,
                None,
                &secp,
            )
            .unwrap();
        verify(&sweep, &confirmed);
        swept += sweep.output[0].value.to_sat();
        // A sweep to a stranger is refused by rule.
        let stranger = bitcoin::ScriptBuf::new_op_return([1u8; 4]);
        assert!(node
            .keys
            .spend_spendable_outputs(&refs, Vec::new(), stranger, 253, None, &secp)
            .is_err());
        assert_eq!(
            node.keys.refusals().last().unwrap().error.rule,
            warden_core::policy::Rule::SweepDestination
        );
    }
    assert!(swept > CHANNEL - 20_000 && swept < CHANNEL, "swept {swept}");
    for n in [&alice, &bob] {
        let unexpected: Vec<_> = n
            .keys
            .refusals()
            .into_iter()
            .filter(|r| r.operation != "spend_spendable_outputs")
            .collect();
        assert!(unexpected.is_empty(), "{} refused: {unexpected:#?}", n.name);
    }
}
