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
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hash_types::TxMerkleNode;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::{Block, BlockHash, CompactTarget, Transaction};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Listen};
use lightning::events::{ClosureReason, Event, EventsProvider};
use lightning::ln::channelmanager::{
    ChainParameters, ChannelManager, PaymentId, RecipientOnionFields, Retry,
};
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelMessageHandler, ErrorAction, Init, MessageSendEvent,
};
use lightning::ln::types::ChannelId;
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::router::{PaymentParameters, RouteParameters};
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, NodeSigner, OutputSpender, Recipient, SignerProvider, SpendableOutputDescriptor,
};
use lightning::util::config::UserConfig;
use lightning::util::persist::MonitorName;
use support::{funding_tx, Broadcaster, DirectRouter, FeeEst, Log, NoFilter, NETWORK};
use warden_ldk::remote::wire;
use warden_ldk::remote::{
    RemoteChannelSigner, RemoteConfig, RemoteKeysManager, RemoteSignerServer, SignerConfig,
};
use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};
use warden_link::StaticSecretKey;

const CHANNEL: u64 = 1_000_000;
const IDLE: Duration = Duration::from_secs(30);

#[derive(Default)]
struct NoPersist;

impl Persist<RemoteChannelSigner> for NoPersist {
    fn persist_new_channel(
        &self,
        _: MonitorName,
        _: &ChannelMonitor<RemoteChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }

    fn update_persisted_channel(
        &self,
        _: MonitorName,
        _: Option<&ChannelMonitorUpdate>,
        _: &ChannelMonitor<RemoteChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }

    fn archive_persisted_channel(&self, _: MonitorName) {}
}

type Monitor = ChainMonitor<
    RemoteChannelSigner,
    Arc<NoFilter>,
    Arc<Broadcaster>,
    Arc<FeeEst>,
    Arc<Log>,
    Arc<NoPersist>,
    Arc<RemoteKeysManager>,
>;

type Manager = ChannelManager<
    Arc<Monitor>,
    Arc<Broadcaster>,
    Arc<RemoteKeysManager>,
    Arc<RemoteKeysManager>,
    Arc<RemoteKeysManager>,
    Arc<FeeEst>,
    Arc<DirectRouter>,
    Arc<NullMessageRouter>,
    Arc<Log>,
>;

/// A signer's host: its seed, its store directory, its link key.
struct SignerHost {
    seed: [u8; 32],
    dir: PathBuf,
    link_key: [u8; 32],
    node_key: PublicKey,
    node_addr: std::net::SocketAddr,
    starts: u32,
}

impl SignerHost {
    /// Opens the Warden keys manager from the sealed store and starts the signer thread.
    fn start(&mut self) -> RemoteSignerServer {
        self.starts += 1;
        let keys = WardenKeysManager::open(
            &self.seed,
            KeyScheme::Ldk { v2_remote_key: true },
            WardenConfig::test_network(),
            1_700_000_000 + u64::from(self.starts),
            self.starts,
            &self.dir,
            Vec::new(),
        )
        .unwrap();
        let mut config = SignerConfig::new(self.node_addr, self.node_key);
        config.max_backoff = Duration::from_millis(200);
        RemoteSignerServer::start(
            Arc::new(keys),
            StaticSecretKey::from_bytes(self.link_key).unwrap(),
            config,
        )
        .unwrap()
    }
}

struct Node {
    name: &'static str,
    keys: Arc<RemoteKeysManager>,
    signer: Option<RemoteSignerServer>,
    host: SignerHost,
    _dir: tempfile::TempDir,
    monitor: Arc<Monitor>,
    manager: Arc<Manager>,
    broadcaster: Arc<Broadcaster>,
    events: Vec<Event>,
    /// How many times the unblocked callback ran.
    unblocked: Arc<AtomicUsize>,
}

impl Node {
    fn new(name: &'static str, seed: u8) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let node_link = StaticSecretKey::from_bytes([seed.wrapping_add(100); 32]).unwrap();
        let signer_link = [seed.wrapping_add(200); 32];
        let mut host = SignerHost {
            seed: [seed; 32],
            dir: dir.path().to_path_buf(),
            link_key: signer_link,
            node_key: node_link.public_key(),
            node_addr: listener.local_addr().unwrap(),
            starts: 0,
        };
        let signer = host.start();
        let mut config =
            RemoteConfig::new(StaticSecretKey::from_bytes(signer_link).unwrap().public_key());
        // Generous for a loaded machine: the calls that wait are answered in milliseconds.
        config.wait = Duration::from_secs(20);
        config.heartbeat = Duration::from_secs(2);
        let keys = Arc::new(RemoteKeysManager::listen(listener, config, node_link).unwrap());
        let broadcaster = Arc::new(Broadcaster::default());
        let fees = Arc::new(FeeEst(Mutex::new(253)));
        let log = Arc::new(Log(name));
        let monitor = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&broadcaster),
            Arc::clone(&log),
            Arc::clone(&fees),
            Arc::new(NoPersist),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));
        let manager = Arc::new(ChannelManager::new(
            fees,
            Arc::clone(&monitor),
            Arc::clone(&broadcaster),
            Arc::new(DirectRouter::default()),
            Arc::new(NullMessageRouter {}),
            log,
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&keys),
            UserConfig::default(),
            ChainParameters { network: NETWORK, best_block: BestBlock::from_network(NETWORK) },
            1_700_000_000,
        ));
        let (m, c) = (Arc::downgrade(&manager), Arc::downgrade(&monitor));
        let unblocked = Arc::new(AtomicUsize::new(0));
        let count = Arc::clone(&unblocked);
        keys.set_unblocked_callback(move || {
            count.fetch_add(1, Ordering::SeqCst);
            if let Some(m) = m.upgrade() {
                m.signer_unblocked(None);
            }
            if let Some(c) = c.upgrade() {
                c.signer_unblocked(None);
            }
        });
        Node {
            name,
            keys,
            signer: Some(signer),
            host,
            _dir: dir,
            monitor,
            manager,
            broadcaster,
            events: Vec::new(),
            unblocked,
        }
    }

    fn node_id(&self) -> PublicKey {
        self.keys.node_id()
    }

    fn signer(&self) -> &RemoteSignerServer {
        self.signer.as_ref().unwrap()
    }

    fn warden(&self) -> &Arc<WardenKeysManager> {
        self.signer().keys()
    }

    fn served(&self, tag: u16) -> u64 {
        self.signer().served().get(&tag).copied().unwrap_or(0)
    }

    fn collect_events(&mut self) {
        let collected = Mutex::new(Vec::new());
        let handler = |e: Event| {
            collected.lock().unwrap().push(e);
            Ok(())
        };
        self.manager.process_pending_events(&handler);
        self.monitor.process_pending_events(&handler);
        self.events.extend(collected.into_inner().unwrap());
    }

    fn take_broadcasts(&self) -> Vec<Transaction> {
        std::mem::take(&mut *self.broadcaster.txs.lock().unwrap())
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        let ids = self.warden().channel_keys_ids();
        assert_eq!(ids.len(), 1);
        ids[0]
    }
}

fn connect(a: &Node, b: &Node) {
    let init = |n: &Node| Init {
        features: n.manager.init_features(),
        networks: None,
        remote_network_address: None,
    };
    a.manager.peer_connected(b.node_id(), &init(b), true).unwrap();
    b.manager.peer_connected(a.node_id(), &init(a), false).unwrap();
}

fn deliver(to: &Node, from: PublicKey, event: MessageSendEvent) {
    use MessageSendEvent as E;
    let m = &to.manager;
    match event {
        E::SendOpenChannel { msg, .. } => m.handle_open_channel(from, &msg),
        E::SendAcceptChannel { msg, .. } => m.handle_accept_channel(from, &msg),
        E::SendFundingCreated { msg, .. } => m.handle_funding_created(from, &msg),
        E::SendFundingSigned { msg, .. } => m.handle_funding_signed(from, &msg),
        E::SendChannelReady { msg, .. } => m.handle_channel_ready(from, &msg),
        E::UpdateHTLCs { updates, .. } => {
            for u in &updates.update_add_htlcs {
                m.handle_update_add_htlc(from, u);
            }
            for u in updates.update_fulfill_htlcs {
                m.handle_update_fulfill_htlc(from, u);
            }
            for u in &updates.update_fail_htlcs {
                m.handle_update_fail_htlc(from, u);
            }
            if let Some(u) = &updates.update_fee {
                m.handle_update_fee(from, u);
            }
            for c in &updates.commitment_signed {
                m.handle_commitment_signed(from, c);
            }
        }
        E::SendRevokeAndACK { msg, .. } => m.handle_revoke_and_ack(from, &msg),
        E::SendShutdown { msg, .. } => m.handle_shutdown(from, &msg),
        E::SendClosingSigned { msg, .. } => m.handle_closing_signed(from, &msg),
        E::SendChannelReestablish { msg, .. } => m.handle_channel_reestablish(from, &msg),
        E::SendChannelUpdate { msg, .. } => m.handle_channel_update(from, &msg),
        E::HandleError {
            action:
                ErrorAction::SendErrorMessage { msg } | ErrorAction::DisconnectPeer { msg: Some(msg) },
            ..
        } => m.handle_error(from, &msg),
        _ => {}
    }
}

fn destination(event: &MessageSendEvent) -> Option<PublicKey> {
    use MessageSendEvent as E;
    match event {
        E::SendOpenChannel { node_id, .. }
        | E::SendAcceptChannel { node_id, .. }
        | E::SendFundingCreated { node_id, .. }
        | E::SendFundingSigned { node_id, .. }
        | E::SendChannelReady { node_id, .. }
        | E::UpdateHTLCs { node_id, .. }
        | E::SendRevokeAndACK { node_id, .. }
        | E::SendShutdown { node_id, .. }
        | E::SendClosingSigned { node_id, .. }
        | E::SendChannelReestablish { node_id, .. }
        | E::SendChannelUpdate { node_id, .. }
        | E::HandleError { node_id, .. } => Some(*node_id),
        _ => None,
    }
}

/// Delivers messages until none is pending (without waiting for the signers).
fn pump_once(nodes: &mut [&mut Node]) -> usize {
    let mut delivered = 0;
    loop {
        let mut moved = 0;
        for i in 0..nodes.len() {
            nodes[i].manager.process_pending_htlc_forwards();
            let from = nodes[i].node_id();
            for event in nodes[i].manager.get_and_clear_pending_msg_events() {
                let target = destination(&event);
                if let Some(to) = nodes.iter().find(|n| Some(n.node_id()) == target) {
                    deliver(to, from, event);
                    moved += 1;
                }
            }
        }
        for n in nodes.iter_mut() {
            n.collect_events();
        }
        if moved == 0 {
            return delivered;
        }
        delivered += moved;
    }
}

/// Delivers messages and waits for the signers' answers (and the `signer_unblocked` they
/// trigger) until nothing moves and nothing is in flight.
fn pump(nodes: &mut [&mut Node]) -> usize {
    let mut delivered = 0;
    loop {
        let moved = pump_once(nodes);
        delivered += moved;
        let busy = nodes.iter().any(|n| !n.keys.wait_idle(Duration::ZERO));
        for n in nodes.iter() {
            assert!(n.keys.wait_idle(IDLE), "{}: calls still in flight", n.name);
        }
        if moved == 0 && !busy {
            return delivered;
        }
    }
}

struct Chain {
    tip: BlockHash,
    height: u32,
    time: u32,
}

impl Chain {
    fn new() -> Chain {
        let best = BestBlock::from_network(NETWORK);
        Chain { tip: best.block_hash, height: best.height, time: 1_700_000_000 }
    }

    fn mine(&mut self, nodes: &[&Node], txdata: Vec<Transaction>) {
        self.time += 600;
        let block = Block {
            header: Header {
                version: BlockVersion::TWO,
                prev_blockhash: self.tip,
                merkle_root: TxMerkleNode::all_zeros(),
                time: self.time,
                bits: CompactTarget::from_consensus(0x207f_ffff),
                nonce: self.height,
            },
            txdata,
        };
        self.height += 1;
        self.tip = block.block_hash();
        for node in nodes {
            node.monitor.block_connected(&block, self.height);
            node.manager.block_connected(&block, self.height);
        }
    }
}

/// Opens and confirms a channel from `a` to `b`; returns its id and funding transaction.
fn open_channel(chain: &mut Chain, a: &mut Node, b: &mut Node) -> (ChannelId, Transaction) {
    a.manager.create_channel(b.node_id(), CHANNEL, 0, 42, None, None).unwrap();
    pump(&mut [a, b]);
    let (temporary, script) = a
        .events
        .iter()
        .find_map(|e| match e {
            Event::FundingGenerationReady { temporary_channel_id, output_script, .. } => {
                Some((*temporary_channel_id, output_script.clone()))
            }
            _ => None,
        })
        .expect("funding generation ready");
    let tx = funding_tx(script, CHANNEL, chain.height as u8);
    a.manager.funding_transaction_generated(temporary, b.node_id(), tx.clone()).unwrap();
    pump(&mut [a, b]);
    assert!(a.take_broadcasts().iter().any(|t| t.compute_txid() == tx.compute_txid()));
    chain.mine(&[a, b], vec![tx.clone()]);
    for _ in 0..6 {
        chain.mine(&[a, b], vec![]);
    }
    pump(&mut [a, b]);
    let usable = a.manager.list_usable_channels();
    assert_eq!(usable.len(), 1, "{} has no usable channel", a.name);
    (usable[0].channel_id, tx)
}

/// Starts a payment of `amount_msat` from `from` to `to`; returns its hash.
fn start_payment(from: &Node, to: &Node, amount_msat: u64, id: u8) -> [u8; 32] {
    let (hash, secret) = to.manager.create_inbound_payment(Some(amount_msat), 3600, None).unwrap();
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(to.node_id(), 40),
        amount_msat,
    );
    let mut pid = [0u8; 32];
    pid[0] = id;
    pid[1] = from.name.as_bytes()[0];
    from.manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId(pid),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    hash.0
}

fn claimable(to: &Node, hash: [u8; 32]) -> Option<lightning::types::payment::PaymentPreimage> {
    to.events.iter().find_map(|e| match e {
        Event::PaymentClaimable { payment_hash, purpose, .. } if payment_hash.0 == hash => {
            purpose.preimage()
        }
        _ => None,
    })
}

/// Claims a claimable payment and checks that the payer saw it sent.
fn finish_payment(from: &mut Node, to: &mut Node, hash: [u8; 32]) {
    let preimage = claimable(to, hash).unwrap_or_else(|| {
        panic!("{} never saw the payment; refusals {:?}", to.name, from.keys.refusals())
    });
    to.manager.claim_funds(preimage);
    pump(&mut [from, to]);
    assert!(
        from.events.iter().any(
            |e| matches!(e, Event::PaymentSent { payment_hash, .. } if payment_hash.0 == hash)
        ),
        "{} never saw the payment sent",
        from.name
    );
}

fn pay(from: &mut Node, to: &mut Node, amount_msat: u64, id: u8) {
    let hash = start_payment(from, to, amount_msat, id);
    pump(&mut [from, to]);
    finish_payment(from, to, hash);
}

fn no_refusals(nodes: &[&Node]) {
    for n in nodes {
        assert!(n.keys.refusals().is_empty(), "{}: {:?}", n.name, n.keys.refusals());
        assert!(n.warden().refusals().is_empty(), "{}: {:?}", n.name, n.warden().refusals());
    }
}

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
        dir: dir.path().to_path_buf(),
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
