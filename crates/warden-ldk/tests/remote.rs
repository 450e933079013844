#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Remote mode: two LDK nodes whose signers are Warden signers in other threads, reached over
//! warden-link on TCP loopback (the signer dials out, the node side listens with the signer's
//! key pinned). A channel opens, payments go both ways, the channel closes cooperatively; a
//! tampered call is refused on the signer's side and reaches the node as a refusal; a signer
//! stopped mid-flow makes LDK's calls fail with `Err`, and once a new signer (reopened from its
//! sealed store) connects, `signer_unblocked` resumes the flow; a force close, its
//! HTLC-timeout and the sweep of the delayed outputs are signed over the link; an invoice LDK
//! creates, a BOLT-12 invoice and a message are signed over the link and verify with the node
//! id (a BOLT-12 invoice for another signing key gets `Err` from the node side), an invoice
//! naming another payee is refused by the signer; malformed calls are refused, and a signer
//! with another key is never heard.

mod support;

use std::net::TcpListener;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::Transaction;
use lightning::events::{ClosureReason, Event};
use lightning::ln::channelmanager::PaymentId;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, NodeSigner, OutputSpender, Recipient, SignerProvider, SpendableOutputDescriptor,
};
use support::remote::{
    claimable, connect, finish_payment, no_refusals, open_channel, pay, pump, pump_once,
    start_payment, Chain, Node, SignerHost, CHANNEL, IDLE,
};
use warden_ldk::remote::wire;
use warden_ldk::remote::{RemoteConfig, RemoteKeysManager};
use warden_link::StaticSecretKey;

#[test]
fn open_pay_both_ways_and_close_over_the_link() {
    let mut chain = Chain::new();
    let mut alice = Node::new("alice", 31);
    let mut bob = Node::new("bob", 32);
    connect(&alice, &bob);
    let (channel_id, _) = open_channel(&mut chain, &mut alice, &mut bob);
    no_refusals(&[&alice, &bob]);
    let id = alice.channel_keys_id();
    // Two new channels with one user channel id get two key sets from the signer.
    let secp = Secp256k1::new();
    let (one, two) = (
        alice.keys.generate_channel_keys_id(false, 42),
        alice.keys.generate_channel_keys_id(false, 42),
    );
    assert_ne!(one, two);
    let keys_of = |id| alice.keys.derive_channel_signer(id).pubkeys(&secp);
    assert_ne!(keys_of(one).funding_pubkey, keys_of(two).funding_pubkey);
    assert_eq!(keys_of(one), alice.warden().derive_channel_signer(one).pubkeys(&secp));

    let mut sent_by_alice = 0;
    let mut sent_by_bob = 0;
    for i in 0..16u8 {
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
    // 24 payments, each round signed on the signers' side: the calls went over the link.
    let state = alice.warden().channel_state(&id).unwrap();
    assert!(state.holder.next_number > 24, "{:?}", state.holder);
    assert!(state.counterparty.revoked_below > 24);
    for n in [&alice, &bob] {
        assert!(n.served(wire::SIGN_COUNTERPARTY) > 24, "{}: {:?}", n.name, n.signer().served());
        assert!(n.served(wire::VALIDATE_HOLDER) > 24);
        assert!(n.served(wire::RELEASE_SECRET) > 24);
        assert!(n.served(wire::VALIDATE_REVOCATION) > 24);
        assert!(n.served(wire::POINTS) >= 2);
        assert!(n.served(wire::ECDH) > 0);
        assert_eq!(n.served(wire::HELLO), 1);
        assert!(n.keys.calls_sent() > 100);
        // LDK got `Err` and was resumed by `signer_unblocked` for each round.
        assert!(n.unblocked.load(Ordering::SeqCst) > 24, "{}", n.name);
    }

    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    no_refusals(&[&alice, &bob]);
    assert!(alice.served(wire::SIGN_CLOSING) > 0 && bob.served(wire::SIGN_CLOSING) > 0);
    let closing = alice.take_broadcasts();
    let closing_bob = bob.take_broadcasts();
    assert_eq!(closing.len(), 1, "alice broadcasts one closing transaction");
    assert_eq!(closing_bob.len(), 1);
    let tx = &closing[0];
    assert_eq!(tx.compute_txid(), closing_bob[0].compute_txid());
    let pays = |script: &bitcoin::ScriptBuf| {
        tx.output.iter().filter(|o| &o.script_pubkey == script).map(|o| o.value.to_sat()).sum()
    };
    let to_alice: u64 = pays(&alice.keys.shutdown_script());
    let to_bob: u64 = pays(&bob.keys.shutdown_script());
    let bob_balance = (sent_by_alice - sent_by_bob) / 1000;
    assert!(to_bob.abs_diff(bob_balance) <= 1, "bob gets {to_bob}, balance {bob_balance}");
    assert!(to_alice < CHANNEL - bob_balance && to_alice > CHANNEL - bob_balance - 10_000);
    chain.mine(&[&alice, &bob], vec![tx.clone()]);
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice.events.iter().any(|e| matches!(
        e,
        Event::ChannelClosed { reason: ClosureReason::LocallyInitiatedCooperativeClosure, .. }
    )));
    no_refusals(&[&alice, &bob]);
}

/// A compromised node host asks the remote signer to sign a next commitment of bob's that
/// moves 50,000 sat of alice's balance to bob: the signer refuses with its rule, the refusal
/// reaches the node side (the retry gets `Err` too), the signer's channel state does not
/// move, and the honest flow goes on.
#[test]
fn a_refusal_on_the_signer_reaches_the_node_and_the_channel_does_not_advance() {
    use lightning::ln::chan_utils::CommitmentTransaction;
    use warden_ldk::channel::INITIAL_COMMITMENT_NUMBER;

    let secp = Secp256k1::new();
    let mut chain = Chain::new();
    let mut alice = Node::new("alice", 33);
    let mut bob = Node::new("bob", 34);
    connect(&alice, &bob);
    open_channel(&mut chain, &mut alice, &mut bob);
    pay(&mut alice, &mut bob, 90_000_000, 1);
    pay(&mut bob, &mut alice, 30_000_000, 2);
    no_refusals(&[&alice, &bob]);

    let id = alice.channel_keys_id();
    let params = alice.warden().channel_parameters(&id).unwrap();
    let before = alice.warden().channel_state(&id).unwrap();
    let current = before.counterparty.current.clone().unwrap();
    let bob_signer = bob.warden().derive_channel_signer(bob.channel_keys_id());
    let next = before.counterparty.next_number;
    let idx = INITIAL_COMMITMENT_NUMBER - next;
    let stolen = CommitmentTransaction::new(
        idx,
        &bob_signer.get_per_commitment_point(idx, &secp).unwrap(),
        current.content.to_counterparty.0 + 50_000,
        current.content.to_holder.0 - 50_000,
        current.content.feerate.0,
        Vec::new(),
        &params.as_counterparty_broadcastable(),
        &secp,
    );
    // The call's bytes, cut or altered anywhere, decode to an error or to some call: never a
    // panic (the signer refuses what does not decode).
    let call = wire::Call::SignCounterparty {
        id,
        params: Box::new(params.clone()),
        tx: Box::new(stolen.clone()),
        inbound: vec![],
        outbound: vec![],
    };
    let bytes = call.encode();
    assert!(matches!(wire::Call::decode(&bytes), Ok(wire::Call::SignCounterparty { .. })));
    for i in 0..bytes.len() {
        assert!(wire::Call::decode(&bytes[..i]).is_err(), "cut at {i}");
        let mut altered = bytes.clone();
        altered[i] ^= 0x41;
        let _ = wire::Call::decode(&altered);
    }

    // The node side's signer: the first call is sent and returns Err (not ready); once the
    // answer (a refusal) is in, the same call returns Err from the cache, without a new request.
    let signer = alice.keys.derive_channel_signer(id);
    let refused_before = alice.signer().refused().get(&wire::SIGN_COUNTERPARTY).copied();
    assert!(signer.sign_counterparty_commitment(&params, &stolen, vec![], vec![], &secp).is_err());
    assert!(alice.keys.wait_idle(IDLE));
    let sent = alice.keys.calls_sent();
    assert!(signer.sign_counterparty_commitment(&params, &stolen, vec![], vec![], &secp).is_err());
    assert_eq!(alice.keys.calls_sent(), sent, "the refusal was cached");
    let refusal = alice.keys.refusals().pop().expect("a refusal reached the node side");
    assert_eq!(refusal.tag, wire::SIGN_COUNTERPARTY);
    assert!(refusal.reason.contains("commitment-balance"), "{}", refusal.reason);
    assert_eq!(
        alice.signer().refused().get(&wire::SIGN_COUNTERPARTY).copied(),
        Some(refused_before.unwrap_or(0) + 1)
    );
    assert_eq!(alice.warden().refusals().last().unwrap().error.rule.tag(), "commitment-balance");
    assert_eq!(alice.warden().channel_state(&id).unwrap(), before, "nothing moved");

    // A tampered holder commitment: validation returns Ok at once (LDK closes channels on
    // Err there), the signer refuses it, and the revocation that would follow is refused.
    let holder = before.holder.current.clone().unwrap();
    let hidx = INITIAL_COMMITMENT_NUMBER - before.holder.next_number;
    let point = signer.get_per_commitment_point(hidx, &secp).unwrap();
    let forged = CommitmentTransaction::new(
        hidx,
        &point,
        holder.content.to_holder.0 - 40_000,
        holder.content.to_counterparty.0 + 40_000,
        holder.content.feerate.0,
        Vec::new(),
        &params.as_holder_broadcastable(),
        &secp,
    );
    let junk = secp.sign_ecdsa(
        &secp256k1::Message::from_digest([3; 32]),
        &secp256k1::SecretKey::from_slice(&[4; 32]).unwrap(),
    );
    let forged = lightning::ln::chan_utils::HolderCommitmentTransaction::new(
        forged,
        junk,
        Vec::new(),
        &params.holder_pubkeys.funding_pubkey,
        &params.counterparty_pubkeys().unwrap().funding_pubkey,
    );
    assert!(signer.validate_holder_commitment(&forged, vec![]).is_ok());
    assert!(alice.keys.wait_idle(IDLE));
    assert!(signer.validate_holder_commitment(&forged, vec![]).is_err(), "now known refused");
    let current_idx = INITIAL_COMMITMENT_NUMBER - (before.holder.next_number - 1);
    assert!(signer.release_commitment_secret(current_idx).is_err());
    assert!(alice.keys.wait_idle(IDLE));
    assert!(signer.release_commitment_secret(current_idx).is_err());
    let rules: Vec<_> = alice.keys.refusals().iter().map(|r| r.reason.clone()).collect();
    assert!(rules.last().unwrap().contains("revoke-new-commitment-validated"), "{rules:?}");
    assert_eq!(alice.warden().channel_state(&id).unwrap(), before, "nothing moved");

    pay(&mut alice, &mut bob, 1_000_000, 3);
    pay(&mut bob, &mut alice, 2_000_000, 4);
    assert_eq!(alice.keys.refusals().len(), 3);
    assert!(bob.keys.refusals().is_empty());
}

/// Delivers messages while alice's signer is down, until one of alice's calls waits for it
/// and bob's side is quiet (bob's signer is up: his answers come back meanwhile).
fn pump_while_signer_down(alice: &mut Node, bob: &mut Node) {
    let deadline = std::time::Instant::now() + IDLE;
    loop {
        pump_once(&mut [&mut *alice, &mut *bob]);
        let bob_idle = bob.keys.wait_idle(Duration::from_millis(100));
        if alice.keys.in_flight() > 0 && bob_idle && pump_once(&mut [&mut *alice, &mut *bob]) == 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "alice never waited for her signer");
    }
}

/// The signer stops (its thread ends, the link drops) while alice pays: LDK's calls return
/// `Err` and nothing reaches bob. A new signer, reopened from the sealed store, dials in; the
/// node side re-sends the calls in flight, the answers trigger `signer_unblocked`, and the
/// payment completes; later payments and the close work as before.
#[test]
fn a_signer_restarted_mid_flow_unblocks_the_channel() {
    let mut chain = Chain::new();
    let mut alice = Node::new("alice", 35);
    let mut bob = Node::new("bob", 36);
    connect(&alice, &bob);
    let (channel_id, _) = open_channel(&mut chain, &mut alice, &mut bob);
    pay(&mut alice, &mut bob, 20_000_000, 1);
    pay(&mut bob, &mut alice, 5_000_000, 2);
    let id = alice.channel_keys_id();
    let before = alice.warden().channel_state(&id).unwrap();

    alice.signer.take().unwrap().stop();
    let deadline = std::time::Instant::now() + IDLE;
    while alice.keys.is_connected() {
        assert!(std::time::Instant::now() < deadline, "the node side never saw the link drop");
        std::thread::sleep(Duration::from_millis(10));
    }
    let hash = start_payment(&alice, &bob, 7_000_000, 3);
    pump_while_signer_down(&mut alice, &mut bob);
    assert!(alice.keys.in_flight() > 0, "LDK's calls are waiting for the signer");
    assert!(claimable(&bob, hash).is_none(), "nothing reached bob without a signature");

    let restarted = alice.host.start();
    alice.signer = Some(restarted);
    assert!(alice.keys.wait_connected(IDLE));
    pump(&mut [&mut alice, &mut bob]);
    finish_payment(&mut alice, &mut bob, hash);
    assert!(alice.served(wire::SIGN_COUNTERPARTY) > 0, "the new signer signed");
    let after = alice.warden().channel_state(&id).unwrap();
    assert!(after.holder.next_number > before.holder.next_number);
    assert!(after.counterparty.revoked_below > before.counterparty.revoked_below);

    // Stopped again halfway through a payment: bob claims, his fulfill and new commitment
    // reach alice, whose validation is queued and whose revocation returns Err; the signer
    // reopened from its store gets the calls in their order and the round completes.
    let hash = start_payment(&alice, &bob, 3_000_000, 5);
    pump(&mut [&mut alice, &mut bob]);
    let preimage = claimable(&bob, hash).unwrap();
    let before = alice.warden().channel_state(&id).unwrap();
    let served_before = alice.served(wire::RELEASE_SECRET);
    assert!(served_before > 0);
    alice.signer.take().unwrap().stop();
    while alice.keys.is_connected() {
        std::thread::sleep(Duration::from_millis(10));
    }
    bob.manager.claim_funds(preimage);
    pump_while_signer_down(&mut alice, &mut bob);
    assert!(alice.keys.in_flight() > 0, "alice's revocation waits for the signer");
    alice.signer = Some(alice.host.start());
    assert!(alice.keys.wait_connected(IDLE));
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice
        .events
        .iter()
        .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if payment_hash.0 == hash)));
    let after = alice.warden().channel_state(&id).unwrap();
    assert!(after.holder.revoked_below > before.holder.revoked_below, "alice revoked");
    assert!(after.counterparty.revoked_below > before.counterparty.revoked_below);
    assert!(alice.served(wire::VALIDATE_HOLDER) > 0 && alice.served(wire::RELEASE_SECRET) > 0);
    assert_eq!(alice.signer().connects(), 1);

    pay(&mut bob, &mut alice, 1_000_000, 4);
    alice.manager.close_channel(&channel_id, &bob.node_id()).unwrap();
    pump(&mut [&mut alice, &mut bob]);
    assert_eq!(alice.take_broadcasts().len(), 1);
    no_refusals(&[&alice, &bob]);
}

/// Bytes that are not a call are refused, never a panic; every call round-trips.
#[test]
fn calls_decode_strictly() {
    use wire::Call;
    let hello = Call::Hello.encode();
    assert!(matches!(Call::decode(&hello), Ok(Call::Hello)));
    assert!(Call::decode(&[]).is_err());
    assert!(Call::decode(&[0xf2]).is_err());
    assert!(Call::decode(&[0x00, 0x02]).is_err(), "unknown tag");
    let mut trailing = hello.clone();
    trailing.push(0);
    assert!(Call::decode(&trailing).is_err(), "trailing bytes");
    let release = Call::ReleaseSecret { id: [7; 32], idx: 42 }.encode();
    match Call::decode(&release) {
        Ok(Call::ReleaseSecret { id, idx }) => assert_eq!((id, idx), ([7; 32], 42)),
        other => panic!("{other:?}"),
    }
    for cut in 0..release.len() {
        assert!(Call::decode(&release[..cut]).is_err(), "a call cut at {cut} decodes");
    }
    let points = Call::Points { id: [1; 32], idx: 9, count: 0 }.encode();
    assert!(Call::decode(&points).is_err(), "zero points");
    let points = Call::Points { id: [1; 32], idx: 9, count: wire::MAX_POINTS + 1 }.encode();
    assert!(Call::decode(&points).is_err(), "too many points");
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for len in 0..600 {
        let mut bytes = vec![0xf2u8, 0x4f];
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            bytes.push(x as u8);
        }
        for tag in [wire::SIGN_COUNTERPARTY, wire::VALIDATE_HOLDER, wire::SIGN_GOSSIP, wire::ECDH] {
            bytes[..2].copy_from_slice(&tag.to_be_bytes());
            let _ = Call::decode(&bytes);
        }
    }
}

/// The signer dials out and is the BOLT-08 initiator; a node side speaking warden-link by hand
/// sends it malformed calls (an unknown tag, a truncated argument): each gets an error reply
/// naming the problem, the link stays up, and the next well-formed call is answered. A node
/// side pinning another signer key never gets a `hello`.
#[test]
fn the_signer_refuses_malformed_calls_and_only_the_pinned_signer_is_heard() {
    use warden_link::{ClientContext, EphemeralSecretKey, LinkMessage, LinkStream, Request};

    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let node_key = StaticSecretKey::from_bytes([41; 32]).unwrap();
    let mut host = SignerHost {
        seed: [40; 32],
        dir: Some(dir.path().to_path_buf()),
        link_key: [42; 32],
        node_key: node_key.public_key(),
        node_addr: listener.local_addr().unwrap(),
        starts: 0,
    };
    let signer = host.start();
    let signer_pub = StaticSecretKey::from_bytes([42; 32]).unwrap().public_key();
    let (tcp, _) = listener.accept().unwrap();
    let mut link = LinkStream::accept(
        tcp,
        &node_key,
        signer_pub,
        EphemeralSecretKey::from_bytes([43; 32]).unwrap(),
    )
    .unwrap();
    let context = ClientContext { peer_id: [0; 33], dbid: 0, permissions: 0 };
    let mut ask = |id: u64, msg: Vec<u8>| {
        link.send_message(&LinkMessage::Request(Request { id, client: context, msg })).unwrap();
        link.recv_message().unwrap()
    };
    match ask(7, vec![0x00, 0x02, 1, 2, 3]) {
        LinkMessage::Error(e) => {
            assert_eq!(e.id, 7);
            assert!(e.description.contains("unknown call tag 2"), "{}", e.description);
        }
        other => panic!("{other:?}"),
    }
    let mut cut = wire::Call::ReleaseSecret { id: [1; 32], idx: 5 }.encode();
    cut.truncate(20);
    match ask(8, cut) {
        LinkMessage::Error(e) => assert!(e.description.contains("malformed"), "{}", e.description),
        other => panic!("{other:?}"),
    }
    match ask(9, wire::Call::Hello.encode()) {
        LinkMessage::Reply(r) => {
            assert_eq!(r.id, 9);
            assert_eq!(&r.msg[..2], &wire::HELLO.to_be_bytes());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(signer.refused().values().sum::<u64>(), 2);
    drop(link);
    signer.stop();

    // A node side that pins another key: the handshake fails, no hello, no link.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    host.node_addr = listener.local_addr().unwrap();
    let signer = host.start();
    let other = StaticSecretKey::from_bytes([44; 32]).unwrap().public_key();
    let mut config = RemoteConfig::new(other);
    config.wait = Duration::from_millis(800);
    let node = RemoteKeysManager::listen(listener, config, node_key);
    assert!(matches!(node, Err(warden_ldk::remote::RemoteError::NoSigner)), "{node:?}");
    signer.stop();
}

/// A force close over the link: the monitor's `sign_holder_commitment` returns `Err` until
/// the signer's answer is in, then `ChainMonitor::signer_unblocked` broadcasts the commitment;
/// past the HTLC's expiry the HTLC-timeout transaction is signed the same way. Every
/// transaction verifies against what it spends.
#[test]
fn a_force_close_and_its_htlc_timeout_are_signed_over_the_link() {
    use std::collections::HashMap;

    let mut chain = Chain::new();
    let mut alice = Node::new("alice", 37);
    let mut bob = Node::new("bob", 38);
    connect(&alice, &bob);
    let (channel_id, funding) = open_channel(&mut chain, &mut alice, &mut bob);
    pay(&mut alice, &mut bob, 60_000_000, 1);
    // An HTLC bob never claims.
    let hash = start_payment(&alice, &bob, 30_000_000, 2);
    pump(&mut [&mut alice, &mut bob]);
    assert!(claimable(&bob, hash).is_some());

    let mut confirmed: HashMap<bitcoin::Txid, Transaction> = HashMap::new();
    confirmed.insert(funding.compute_txid(), funding.clone());
    let verify = |tx: &Transaction, confirmed: &HashMap<bitcoin::Txid, Transaction>| {
        tx.verify(|op| {
            confirmed.get(&op.txid).and_then(|t| t.output.get(op.vout as usize)).cloned()
        })
        .unwrap_or_else(|e| panic!("{} does not verify: {e:?}", tx.compute_txid()));
    };
    let signed_before = alice.served(wire::SIGN_HOLDER);
    alice
        .manager
        .force_close_broadcasting_latest_txn(&channel_id, &bob.node_id(), "test".to_owned())
        .unwrap();
    pump(&mut [&mut alice, &mut bob]);
    assert!(alice.served(wire::SIGN_HOLDER) > signed_before, "signed on the signer's side");
    let commitment = alice
        .take_broadcasts()
        .into_iter()
        .find(|t| t.input[0].previous_output.txid == funding.compute_txid())
        .expect("alice broadcast her commitment");
    assert_eq!(commitment.output.len(), 3, "to_local, to_remote and the htlc");
    verify(&commitment, &confirmed);
    confirmed.insert(commitment.compute_txid(), commitment.clone());
    chain.mine(&[&alice, &bob], vec![commitment.clone()]);
    pump(&mut [&mut alice, &mut bob]);

    let mut timeout = None;
    for _ in 0..200 {
        let mut block = Vec::new();
        for tx in alice.take_broadcasts().into_iter().chain(bob.take_broadcasts()) {
            let spends_commitment =
                tx.input.iter().any(|i| i.previous_output.txid == commitment.compute_txid());
            if spends_commitment && timeout.is_none() && !confirmed.contains_key(&tx.compute_txid())
            {
                verify(&tx, &confirmed);
                timeout = Some(tx.clone());
                confirmed.insert(tx.compute_txid(), tx.clone());
                block.push(tx);
            }
        }
        chain.mine(&[&alice, &bob], block);
        pump(&mut [&mut alice, &mut bob]);
        if timeout.is_some() {
            break;
        }
    }
    let timeout = timeout.expect("an htlc-timeout transaction");
    assert_eq!(timeout.input.len(), 1);
    assert!(alice.served(wire::SIGN_HOLDER_HTLC) > 0, "the htlc-timeout was signed remotely");
    no_refusals(&[&alice, &bob]);

    // Past every CSV: alice's delayed outputs are hers to sweep, signed by the signer.
    let secp = Secp256k1::new();
    for _ in 0..300 {
        chain.mine(&[&alice, &bob], vec![]);
        pump(&mut [&mut alice, &mut bob]);
        let _ = alice.take_broadcasts();
    }
    let outputs: Vec<SpendableOutputDescriptor> = alice
        .events
        .iter()
        .filter_map(|e| match e {
            Event::SpendableOutputs { outputs, .. } => Some(outputs.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(outputs.len(), 2, "to_local and the htlc-timeout's output");
    let refs: Vec<&SpendableOutputDescriptor> = outputs.iter().collect();
    let ours = alice.keys.get_destination_script([0; 32]).unwrap();
    let sweep =
        alice.keys.spend_spendable_outputs(&refs, Vec::new(), ours.clone(), 253, None, &secp);
    let sweep = sweep.unwrap();
    verify(&sweep, &confirmed);
    assert_eq!(sweep.output.len(), 1);
    assert_eq!(sweep.output[0].script_pubkey, ours);
    assert!(alice.served(wire::SPEND_OUTPUTS) > 0);
    // A sweep to a stranger is refused by rule on the signer, and the node side sees why.
    let stranger = bitcoin::ScriptBuf::new_op_return([1u8; 4]);
    assert!(alice
        .keys
        .spend_spendable_outputs(&refs, Vec::new(), stranger, 253, None, &secp)
        .is_err());
    let refusal = alice.keys.refusals().pop().unwrap();
    assert_eq!(refusal.tag, wire::SPEND_OUTPUTS);
    assert!(refusal.reason.contains("sweep-destination"), "{}", refusal.reason);
}

/// A BOLT-11 invoice of 1,000 sat naming `payee` (or with no payee field), payment hash all `hash`.
fn raw_invoice(payee: Option<PublicKey>, hash: u8) -> lightning::bolt11_invoice::RawBolt11Invoice {
    use lightning::bolt11_invoice::{Currency, InvoiceBuilder};
    let builder = InvoiceBuilder::new(Currency::Regtest)
        .description("coffee".into())
        .payment_hash(bitcoin::hashes::sha256::Hash::from_byte_array([hash; 32]))
        .payment_secret(lightning::types::payment::PaymentSecret([7; 32]))
        .duration_since_epoch(Duration::from_secs(1_700_000_000))
        .min_final_cltv_expiry_delta(144)
        .amount_milli_satoshis(1_000_000);
    match payee {
        Some(p) => builder.payee_pub_key(p).build_raw().unwrap(),
        None => builder.build_raw().unwrap(),
    }
}

#[test]
fn an_invoice_of_a_remote_node_is_signed_over_the_link_and_one_for_another_payee_is_refused() {
    use lightning::ln::channelmanager::Bolt11InvoiceParameters;
    let alice = Node::new("alice", 51);
    let bob = Node::new("bob", 52);
    assert_eq!(alice.served(wire::SIGN_INVOICE), 0);

    // LDK creates the invoice; the signature comes from alice's Warden over the link.
    let params = Bolt11InvoiceParameters { amount_msats: Some(42_000), ..Default::default() };
    let invoice = alice.manager.create_bolt11_invoice(params).unwrap();
    assert_eq!(alice.served(wire::SIGN_INVOICE), 1, "{:?}", alice.signer().served());
    assert_eq!(invoice.recover_payee_pub_key(), alice.node_id());
    assert_eq!(invoice.recover_payee_pub_key(), alice.warden().node_id());
    assert!(invoice.check_signature().is_ok());
    assert_eq!(invoice.amount_milli_satoshis(), Some(42_000));
    no_refusals(&[&alice]);

    // An invoice naming alice as payee is signed too (the call's own bytes, not LDK's).
    let own = raw_invoice(Some(alice.node_id()), 1);
    let sig = alice.keys.sign_invoice(&own, Recipient::Node).unwrap();
    let digest = secp256k1::Message::from_digest(own.signable_hash());
    assert_eq!(Secp256k1::new().recover_ecdsa(&digest, &sig).unwrap(), alice.node_id());
    assert_eq!(alice.served(wire::SIGN_INVOICE), 2);

    // A compromised node host asks alice's signer to sign an invoice that names bob as the
    // payee: refused by the signer's policy, and the refusal reaches the node side.
    let theirs = raw_invoice(Some(bob.node_id()), 2);
    assert_eq!(alice.keys.sign_invoice(&theirs, Recipient::Node), Err(()));
    assert_eq!(alice.served(wire::SIGN_INVOICE), 3);
    assert_eq!(alice.signer().refused().get(&wire::SIGN_INVOICE), Some(&1));
    let refusals = alice.warden().refusals();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].operation, "sign_invoice");
    let seen = alice.keys.refusals();
    assert!(
        seen.iter().any(|r| r.tag == wire::SIGN_INVOICE && r.reason.contains("another payee")),
        "{seen:?}"
    );
    // A phantom node's invoice is refused on the node side, without a call.
    let sent = alice.keys.calls_sent();
    assert_eq!(alice.keys.sign_invoice(&own, Recipient::PhantomNode), Err(()));
    assert_eq!(alice.keys.calls_sent(), sent);
    assert_eq!(alice.served(wire::SIGN_INVOICE), 3);
    drop(bob);
}

#[test]
fn sign_message_goes_over_the_link_and_verifies_with_the_node_id() {
    let alice = Node::new("alice", 61);
    let msg = b"warden remote sign_message";
    let text = alice.keys.sign_message(msg).unwrap();
    assert_eq!(alice.served(wire::SIGN_MESSAGE), 1);
    assert!(lightning::util::message_signing::verify(msg, &text, &alice.node_id()));
    assert!(!lightning::util::message_signing::verify(b"another message", &text, &alice.node_id()));
    // The same answer as the signer's in-process manager gives (deterministic signatures).
    assert_eq!(text, alice.warden().sign_message(msg).unwrap());
    // Too long for one link message: refused on the node side, nothing sent.
    let sent = alice.keys.calls_sent();
    assert_eq!(alice.keys.sign_message(&vec![0; wire::MAX_SIGNED_MESSAGE + 1]), Err(()));
    assert_eq!(alice.keys.calls_sent(), sent);
    no_refusals(&[&alice]);
}

#[test]
fn invoice_and_message_calls_decode_strictly() {
    let raw = raw_invoice(None, 3);
    let call = wire::Call::SignInvoice(Box::new(raw.clone()));
    let bytes = call.encode();
    match wire::Call::decode(&bytes).unwrap() {
        wire::Call::SignInvoice(back) => assert_eq!(back.signable_hash(), raw.signable_hash()),
        other => panic!("decoded as {other:?}"),
    }
    // Truncated, garbled, or with trailing bytes: refused.
    assert!(wire::Call::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut garbled = bytes.clone();
    let last = garbled.len() - 3;
    garbled[last] = if garbled[last] == b'q' { b'p' } else { b'q' };
    assert!(wire::Call::decode(&garbled).is_err());
    let mut trailing = bytes.clone();
    trailing.push(b'q');
    assert!(wire::Call::decode(&trailing).is_err());
    let mut not_utf8 = wire::SIGN_INVOICE.to_be_bytes().to_vec();
    not_utf8.extend_from_slice(&[0xff, 0xfe]);
    assert!(wire::Call::decode(&not_utf8).is_err());
    assert!(wire::Call::decode(&wire::SIGN_INVOICE.to_be_bytes()).is_err());

    // A BOLT-12 invoice that does not parse is refused.
    let mut bolt12 = wire::SIGN_BOLT12_INVOICE.to_be_bytes().to_vec();
    bolt12.extend_from_slice(&[1, 2, 3, 4]);
    assert!(wire::Call::decode(&bolt12).is_err());
    assert!(wire::Call::decode(&wire::SIGN_BOLT12_INVOICE.to_be_bytes()).is_err());

    // A message round-trips; one above the limit is refused.
    let call = wire::Call::SignMessage(b"hello".to_vec());
    match wire::Call::decode(&call.encode()).unwrap() {
        wire::Call::SignMessage(m) => assert_eq!(m, b"hello"),
        other => panic!("decoded as {other:?}"),
    }
    let mut long = wire::SIGN_MESSAGE.to_be_bytes().to_vec();
    long.resize(2 + wire::MAX_SIGNED_MESSAGE + 1, 0);
    assert!(wire::Call::decode(&long).is_err());
    long.truncate(2 + wire::MAX_SIGNED_MESSAGE);
    assert!(wire::Call::decode(&long).is_ok());
}

/// An unsigned BOLT-12 invoice for an offer of `issuer`'s (its signing key), built with LDK's
/// offers API (a one-hop blinded path to `issuer`).
fn unsigned_bolt12(
    issuer: PublicKey,
    entropy: &RemoteKeysManager,
) -> lightning::offers::invoice::UnsignedBolt12Invoice {
    use lightning::blinded_path::payment::{
        BlindedPaymentPath, Bolt12RefundContext, PaymentConstraints, PaymentContext,
        UnauthenticatedReceiveTlvs,
    };
    use lightning::ln::inbound_payment::ExpandedKey;
    use lightning::offers::nonce::Nonce;
    use lightning::offers::offer::OfferBuilder;
    use lightning::types::payment::{PaymentHash, PaymentSecret};
    let secp = Secp256k1::new();
    let key = ExpandedKey::new([9; 32]);
    let offer = OfferBuilder::new(issuer).amount_msats(1_000).build().unwrap();
    let request = offer
        .request_invoice(&key, Nonce::from_entropy_source(entropy), &secp, PaymentId([1; 32]))
        .unwrap()
        .build_and_sign()
        .unwrap();
    let tlvs = UnauthenticatedReceiveTlvs {
        payment_secret: PaymentSecret([3; 32]),
        payment_constraints: PaymentConstraints {
            max_cltv_expiry: 1_000_000,
            htlc_minimum_msat: 1,
        },
        payment_context: PaymentContext::Bolt12Refund(Bolt12RefundContext {}),
    }
    .authenticate(Nonce::from_entropy_source(entropy), &key);
    let path = BlindedPaymentPath::one_hop(issuer, tlvs, 144, entropy, &secp).unwrap();
    request
        .respond_with_no_std(vec![path], PaymentHash([5; 32]), Duration::from_secs(1_700_000_000))
        .unwrap()
        .build()
        .unwrap()
}

#[test]
fn a_bolt12_invoice_is_signed_over_the_link_and_checked_on_the_node_side() {
    let alice = Node::new("alice", 71);
    let bob = Node::new("bob", 72);
    let invoice = unsigned_bolt12(alice.node_id(), &alice.keys);
    let sig = alice.keys.sign_bolt12_invoice(&invoice).unwrap();
    assert_eq!(alice.served(wire::SIGN_BOLT12_INVOICE), 1);
    let xonly = alice.node_id().x_only_public_key().0;
    Secp256k1::new().verify_schnorr(&sig, invoice.tagged_hash().as_digest(), &xonly).unwrap();
    // LDK accepts the signed invoice (it checks the signature with the signing key).
    invoice.sign(|_: &lightning::offers::invoice::UnsignedBolt12Invoice| Ok(sig)).unwrap();
    no_refusals(&[&alice]);

    // An invoice whose signing key is bob's: alice's signer signs with alice's node key, the
    // node side's check fails, and LDK gets `Err` rather than an invalid signature.
    let other = unsigned_bolt12(bob.node_id(), &alice.keys);
    assert_eq!(alice.keys.sign_bolt12_invoice(&other), Err(()));
    assert_eq!(alice.served(wire::SIGN_BOLT12_INVOICE), 2);
}

/// Dropping the node side ends its link and its listener: the signer's connection closes
/// and the port is released (a process can start a node side again).
#[test]
fn dropping_the_node_side_closes_its_link_and_its_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let node_link = StaticSecretKey::from_bytes([71; 32]).unwrap();
    let signer_link = [72u8; 32];
    let mut host = SignerHost {
        seed: [70; 32],
        dir: None,
        link_key: signer_link,
        node_key: node_link.public_key(),
        node_addr: addr,
        starts: 0,
    };
    let signer = host.start();
    let signer_key = StaticSecretKey::from_bytes(signer_link).unwrap().public_key();
    let keys =
        RemoteKeysManager::listen(listener, RemoteConfig::new(signer_key), node_link).unwrap();
    assert!(keys.wait_connected(IDLE));
    assert!(std::net::TcpStream::connect(addr).is_ok(), "the node side listens");
    drop(keys);
    let deadline = std::time::Instant::now() + IDLE;
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(std::time::Instant::now() < deadline, "the node side still listens");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The port is free again: a new node side binds it, and the signer (which redials the
    // address) connects to the new one.
    let listener = TcpListener::bind(addr).unwrap();
    let node_link = StaticSecretKey::from_bytes([71; 32]).unwrap();
    let again =
        RemoteKeysManager::listen(listener, RemoteConfig::new(signer_key), node_link).unwrap();
    assert!(again.wait_connected(IDLE));
    assert!(signer.connects() >= 2);
}
