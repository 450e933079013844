#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! The seeds of the `ldk_remote_calls` fuzz target (`fuzz/seeds/ldk_remote_calls/`): remote
//! calls built from a real two-node flow (alice, seed 1, is the target's keys manager), in
//! the target's input format (each call body after its `u16` big-endian length). The test
//! checks that they reach the signer's policy (the calls of the flow are all answered, in
//! order, by a fresh session), and writes them to the directory named by
//! `WARDEN_FUZZ_SEEDS` when it is set (nothing otherwise).

mod support;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, SecretKey};
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid};
use lightning::ln::chan_utils::HTLCOutputInCommitment;
use lightning::ln::msgs::UnsignedChannelUpdate;
use lightning::sign::{
    ChannelDerivationParameters, ChannelSigner, HTLCDescriptor, SignerProvider,
    SpendableOutputDescriptor, StaticPaymentOutputDescriptor,
};
use lightning::types::payment::{PaymentHash, PaymentPreimage};
use lightning::util::config::UserConfig;
use support::{connect, open_channel, pay, Chain, Node};
use warden_ldk::ldk_test_utils::RecordedCall;
use warden_ldk::remote::server::FuzzSession;
use warden_ldk::remote::wire::{Call, Gossip};
use warden_ldk::WardenKeysManager;

/// The fuzz target's keys manager: alice's of the in-process harness.
fn target_keys() -> WardenKeysManager {
    FuzzSession::keys().unwrap()
}

/// The target's input: each body after its length.
fn input(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in bodies {
        out.extend_from_slice(&u16::try_from(b.len()).unwrap().to_be_bytes());
        out.extend_from_slice(b);
    }
    out
}

fn spend_tx(outpoint: OutPoint, value: u64, script: ScriptBuf) -> Transaction {
    Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output: outpoint, ..TxIn::default() }],
        output: vec![TxOut { value: Amount::from_sat(value), script_pubkey: script }],
    }
}

#[test]
fn the_fuzz_seeds_reach_the_policy() {
    let secp = Secp256k1::new();
    let mut chain = Chain::default();
    let mut alice = Node::new("alice", 1, UserConfig::default());
    let mut bob = Node::new("bob", 2, UserConfig::default());
    alice.keys.start_recording();
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob, 1_000_000, 0);
    pay(&mut alice, &mut bob, 20_000_000, 1);
    pay(&mut bob, &mut alice, 3_000_000, 2);
    let recorded = alice.keys.take_recorded();
    let id = recorded[0].0;
    let params = Box::new(alice.keys.channel_parameters(&id).unwrap());
    let funding = params.funding_outpoint.unwrap().into_bitcoin_outpoint();
    let ours = alice.keys.destination_script();

    // The commitment rounds, in order.
    let flow: Vec<Vec<u8>> = recorded
        .iter()
        .map(|(id, call)| match call.clone() {
            RecordedCall::SignCounterparty(params, tx, inbound) => {
                Call::SignCounterparty { id: *id, params, tx, inbound, outbound: Vec::new() }
            }
            RecordedCall::ValidateHolder(tx, preimages) => {
                Call::ValidateHolder { id: *id, tx, preimages }
            }
            RecordedCall::Release(idx) => Call::ReleaseSecret { id: *id, idx },
            RecordedCall::ValidateRevocation(idx, secret) => {
                Call::ValidateRevocation { id: *id, idx, secret }
            }
        })
        .map(|c| c.encode())
        .collect();
    assert!(flow.len() > 16, "{} calls recorded", flow.len());
    let keys = target_keys();
    let mut session = FuzzSession::new(4);
    for (i, body) in flow.iter().enumerate() {
        let answer = session.answer(&keys, body);
        assert!(answer.is_ok(), "call {i} of the flow: {answer:?}");
    }
    let holder = recorded
        .iter()
        .rev()
        .find_map(|(_, c)| match c {
            RecordedCall::ValidateHolder(tx, _) => Some(tx.clone()),
            _ => None,
        })
        .unwrap();
    let counterparty = recorded
        .iter()
        .rev()
        .find_map(|(_, c)| match c {
            RecordedCall::SignCounterparty(_, tx, _) => Some(tx.clone()),
            _ => None,
        })
        .unwrap();

    let htlc = HTLCOutputInCommitment {
        offered: true,
        amount_msat: 5_000_000,
        cltv_expiry: 500,
        payment_hash: PaymentHash([9; 32]),
        transaction_output_index: Some(0),
    };
    let sweep = spend_tx(funding, 990_000, ours.clone());
    let secret = SecretKey::from_slice(&[3; 32]).unwrap();
    let point = PublicKey::from_secret_key(&secp, &secret);
    let derivation = ChannelDerivationParameters {
        value_satoshis: 1_000_000,
        keys_id: id,
        transaction_parameters: (*params).clone(),
    };
    let descriptor = HTLCDescriptor {
        channel_derivation_parameters: derivation,
        commitment_txid: holder.trust().txid(),
        per_commitment_number: holder.commitment_number(),
        per_commitment_point: holder.per_commitment_point(),
        feerate_per_kw: 253,
        htlc: htlc.clone(),
        preimage: Some(PaymentPreimage([8; 32])),
        counterparty_sig: holder.counterparty_sig,
    };
    let payment_point = alice.keys.derive_channel_signer(id).pubkeys(&secp).payment_point;
    let static_output =
        SpendableOutputDescriptor::StaticPaymentOutput(StaticPaymentOutputDescriptor {
            outpoint: lightning::chain::transaction::OutPoint {
                txid: Txid::from_byte_array([5; 32]),
                index: 1,
            },
            output: TxOut {
                value: Amount::from_sat(400_000),
                script_pubkey: ScriptBuf::new_p2wpkh(
                    &bitcoin::CompressedPublicKey(payment_point).wpubkey_hash(),
                ),
            },
            channel_keys_id: id,
            channel_value_satoshis: 1_000_000,
            channel_transaction_parameters: Some((*params).clone()),
        });
    let invoice = {
        use lightning::bolt11_invoice::{Currency, InvoiceBuilder};
        InvoiceBuilder::new(Currency::Regtest)
            .description("coffee".into())
            .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([4; 32]))
            .payment_secret(lightning::types::payment::PaymentSecret([7; 32]))
            .duration_since_epoch(std::time::Duration::from_secs(1_700_000_000))
            .min_final_cltv_expiry_delta(144)
            .amount_milli_satoshis(1_000_000)
            .payee_pub_key(alice.node_id())
            .build_raw()
            .unwrap()
    };
    let update = UnsignedChannelUpdate {
        chain_hash: bitcoin::constants::ChainHash::using_genesis_block(support::NETWORK),
        short_channel_id: 42,
        timestamp: 1_700_000_000,
        message_flags: 1,
        channel_flags: 0,
        cltv_expiry_delta: 144,
        htlc_minimum_msat: 1,
        htlc_maximum_msat: 900_000_000,
        fee_base_msat: 1000,
        fee_proportional_millionths: 1,
        excess_data: Vec::new(),
    };

    // Seeds answered by a fresh session (name, calls, every call answered).
    let hello = Call::Hello.encode();
    let new_channel =
        Call::NewChannel { inbound: false, user_channel_id: 42, nonce: [6; 32] }.encode();
    let single = |c: Call| vec![hello.clone(), c.encode()];
    let seeds: Vec<(&str, Vec<Vec<u8>>, bool)> = vec![
        ("hello", vec![hello.clone()], true),
        ("new_channel", vec![hello.clone(), new_channel.clone()], true),
        ("pubkeys", single(Call::ChannelPubkeys { id }), true),
        ("points", single(Call::Points { id, idx: (1 << 48) - 1, count: 4 }), true),
        ("flow_open", flow.iter().take(15).cloned().collect(), true),
        ("flow_payments", flow.iter().skip(15).take(16).cloned().collect(), false),
        (
            "sign_counterparty",
            single(Call::SignCounterparty {
                id,
                params: params.clone(),
                tx: counterparty,
                inbound: vec![PaymentPreimage([8; 32])],
                outbound: Vec::new(),
            }),
            false,
        ),
        (
            "validate_holder",
            single(Call::ValidateHolder { id, tx: holder.clone(), preimages: Vec::new() }),
            false,
        ),
        ("sign_holder", single(Call::SignHolder { id, params: params.clone(), tx: holder }), false),
        (
            "sign_closing",
            single(Call::SignClosing {
                id,
                params: params.clone(),
                to_holder: 600_000,
                to_counterparty: 390_000,
                holder_script: alice.keys.shutdown_script(),
                counterparty_script: bob.keys.shutdown_script(),
            }),
            false,
        ),
        (
            "sign_justice_output",
            single(Call::SignJusticeOutput {
                id,
                params: params.clone(),
                tx: sweep.clone(),
                input: 0,
                amount: 1_000_000,
                key: secret,
            }),
            false,
        ),
        (
            "sign_justice_htlc",
            single(Call::SignJusticeHtlc {
                id,
                params: params.clone(),
                tx: sweep.clone(),
                input: 0,
                amount: 5_000,
                key: secret,
                htlc: htlc.clone(),
            }),
            false,
        ),
        (
            "sign_holder_htlc",
            single(Call::SignHolderHtlc {
                id,
                tx: sweep.clone(),
                input: 0,
                descriptor: Box::new(descriptor),
            }),
            false,
        ),
        (
            "sign_counterparty_htlc",
            single(Call::SignCounterpartyHtlc {
                id,
                params: params.clone(),
                tx: sweep.clone(),
                input: 0,
                amount: 5_000,
                point,
                htlc,
            }),
            false,
        ),
        (
            "sign_anchor",
            single(Call::SignAnchor { id, params: params.clone(), tx: sweep.clone(), input: 0 }),
            false,
        ),
        ("ecdh", single(Call::Ecdh { point: bob.node_id(), tweak: Some([2; 32]) }), true),
        ("sign_gossip", single(Call::SignGossip(Box::new(Gossip::ChannelUpdate(update)))), true),
        (
            "spend_outputs",
            single(Call::SpendOutputs {
                descriptors: vec![static_output],
                outputs: Vec::new(),
                change: ours.clone(),
                feerate: 253,
                locktime: Some(100),
            }),
            false,
        ),
        // A crash the target found (LDK's `Amount` addition overflowed): now refused.
        (
            "crash_sweep_overflow",
            single(Call::SpendOutputs {
                descriptors: [1, u64::MAX]
                    .into_iter()
                    .map(|sat| SpendableOutputDescriptor::StaticOutput {
                        outpoint: lightning::chain::transaction::OutPoint {
                            txid: Txid::from_byte_array([u8::try_from(sat % 7).unwrap(); 32]),
                            index: 0,
                        },
                        output: TxOut { value: Amount::from_sat(sat), script_pubkey: ours.clone() },
                        channel_keys_id: None,
                    })
                    .collect(),
                outputs: Vec::new(),
                change: ours.clone(),
                feerate: 253,
                locktime: None,
            }),
            false,
        ),
        ("sign_invoice", single(Call::SignInvoice(Box::new(invoice))), true),
        ("sign_message", single(Call::SignMessage(b"hello warden".to_vec())), true),
    ];
    let dir = std::env::var_os("WARDEN_FUZZ_SEEDS").map(std::path::PathBuf::from);
    for (name, bodies, all_ok) in &seeds {
        let keys = target_keys();
        let mut session = FuzzSession::new(4);
        for (i, body) in bodies.iter().enumerate() {
            assert!(Call::decode(body).is_ok(), "{name}: call {i} does not decode");
            let answer = session.answer(&keys, body);
            assert!(!*all_ok || answer.is_ok(), "{name}: call {i}: {answer:?}");
        }
        if let Some(dir) = &dir {
            std::fs::write(dir.join(name), input(bodies)).unwrap();
        }
    }
}

/// Answers each call body of a fuzz input on a fresh session over the target's keys manager.
fn answer_input(data: &[u8]) -> Vec<Result<Vec<u8>, String>> {
    let keys = target_keys();
    let mut session = FuzzSession::new(4);
    let mut rest = data;
    let mut answers = Vec::new();
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        let Some(body) = tail.get(..len) else { break };
        rest = &tail[len..];
        answers.push(session.answer(&keys, body));
    }
    answers
}

/// A crash the fuzz target found: `sign_holder_commitment` of a commitment whose index is
/// above 2^48 - 1 made LDK's `verify` overflow (`INITIAL_COMMITMENT_NUMBER - index`); the
/// index is now refused before LDK rebuilds the transaction.
#[test]
fn a_holder_commitment_index_above_2_pow_48_is_refused() {
    let input =
        include_bytes!("../../../fuzz/seeds/ldk_remote_calls/crash_holder_commitment_number");
    let answers = answer_input(input);
    assert_eq!(answers.len(), 2);
    assert!(answers[0].is_ok(), "hello");
    let refusal = answers[1].as_ref().unwrap_err();
    assert!(refusal.contains("commitment-number") && refusal.contains("above 2^48"), "{refusal}");
}
