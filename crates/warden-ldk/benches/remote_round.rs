#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a benchmark of its own (harness = false) reports here")]
//! One LDK payment (an HTLC added then fulfilled: two commitment rounds, each signed,
//! validated and revoked on both sides), timed with both nodes' Warden signers in process and
//! with both remote (a `RemoteSignerServer` per node on TCP loopback, reached over warden-link),
//! in the same run, interleaved.
//!
//! Both setups use in-memory Warden keys managers (`WardenKeysManager::new`, no store), so the
//! difference is the remote mode's cost: the link (Noise, TCP loopback), the signer's thread,
//! LDK's `Err` + `signer_unblocked` retries. Each of `ROUNDS` iterations makes one payment
//! per setup (the order of the two setups alternates, and so does the payer), and p50 / p99
//! of the payment times and the ratio of the p50s are printed.
//! Run:
//! `cargo bench -p warden-ldk --bench remote_round` (or `cargo test ... --bench` for a dev run).

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use lightning::util::config::UserConfig;

const ROUNDS: u8 = 200;
const WARMUP: u8 = 8;

/// Two LDK nodes whose signers are remote Warden signers (in-memory keys managers) on
/// loopback: the harness of `tests/remote.rs`, reduced to what a payment needs.
mod remote {
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use bitcoin::block::{Header, Version as BlockVersion};
    use bitcoin::hash_types::TxMerkleNode;
    use bitcoin::hashes::Hash;
    use bitcoin::secp256k1::PublicKey;
    use bitcoin::{Block, BlockHash, CompactTarget, Transaction};
    use lightning::chain::chainmonitor::{ChainMonitor, Persist};
    use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
    use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Listen};
    use lightning::events::{Event, EventsProvider};
    use lightning::ln::channelmanager::{
        ChainParameters, ChannelManager, PaymentId, RecipientOnionFields, Retry,
    };
    use lightning::ln::msgs::{BaseMessageHandler, ChannelMessageHandler, Init, MessageSendEvent};
    use lightning::onion_message::messenger::NullMessageRouter;
    use lightning::routing::router::{PaymentParameters, RouteParameters};
    use lightning::sign::NodeSigner;
    use lightning::util::config::UserConfig;
    use lightning::util::persist::MonitorName;
    use warden_ldk::remote::{
        RemoteChannelSigner, RemoteConfig, RemoteKeysManager, RemoteSignerServer, SignerConfig,
    };
    use warden_ldk::{KeyScheme, WardenConfig, WardenKeysManager};
    use warden_link::StaticSecretKey;

    use crate::support::{funding_tx, Broadcaster, DirectRouter, FeeEst, Log, NoFilter, NETWORK};

    const IDLE: Duration = Duration::from_secs(30);

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

    pub struct Node {
        name: &'static str,
        pub keys: Arc<RemoteKeysManager>,
        /// Kept alive for the node's life (dropping it stops the signer).
        _signer: RemoteSignerServer,
        monitor: Arc<Monitor>,
        manager: Arc<Manager>,
        broadcaster: Arc<Broadcaster>,
        events: Vec<Event>,
    }

    impl Node {
        pub fn new(name: &'static str, seed: u8) -> Node {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let node_link = StaticSecretKey::from_bytes([seed.wrapping_add(100); 32]).unwrap();
            let signer_link = StaticSecretKey::from_bytes([seed.wrapping_add(200); 32]).unwrap();
            let warden = WardenKeysManager::new(
                &[seed; 32],
                KeyScheme::Ldk { v2_remote_key: true },
                WardenConfig::test_network(),
                1_700_000_000,
                u32::from(seed),
            )
            .unwrap();
            let config = SignerConfig::new(listener.local_addr().unwrap(), node_link.public_key());
            let signer_key = signer_link.public_key();
            let signer = RemoteSignerServer::start(Arc::new(warden), signer_link, config).unwrap();
            let mut config = RemoteConfig::new(signer_key);
            config.wait = Duration::from_secs(20);
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
            keys.set_unblocked_callback(move || {
                if let Some(m) = m.upgrade() {
                    m.signer_unblocked(None);
                }
                if let Some(c) = c.upgrade() {
                    c.signer_unblocked(None);
                }
            });
            Node { name, keys, _signer: signer, monitor, manager, broadcaster, events: Vec::new() }
        }

        fn node_id(&self) -> PublicKey {
            self.keys.node_id()
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
    }

    pub fn connect(a: &Node, b: &Node) {
        let init = |n: &Node| Init {
            features: n.manager.init_features(),
            networks: None,
            remote_network_address: None,
        };
        a.manager.peer_connected(b.node_id(), &init(b), true).unwrap();
        b.manager.peer_connected(a.node_id(), &init(a), false).unwrap();
    }

    fn deliver(to: &Node, from: PublicKey, event: MessageSendEvent) -> bool {
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
            E::SendChannelUpdate { msg, .. } => m.handle_channel_update(from, &msg),
            _ => return false,
        }
        true
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
            | E::SendChannelUpdate { node_id, .. } => Some(*node_id),
            _ => None,
        }
    }

    /// Delivers messages and waits for the signers' answers (and the `signer_unblocked` they
    /// trigger) until nothing moves and nothing is in flight.
    fn pump(nodes: &mut [&mut Node]) {
        loop {
            let mut moved = 0;
            for i in 0..nodes.len() {
                nodes[i].manager.process_pending_htlc_forwards();
                let from = nodes[i].node_id();
                for event in nodes[i].manager.get_and_clear_pending_msg_events() {
                    let target = destination(&event);
                    if let Some(to) = nodes.iter().find(|n| Some(n.node_id()) == target) {
                        if deliver(to, from, event) {
                            moved += 1;
                        }
                    }
                }
            }
            for n in nodes.iter_mut() {
                n.collect_events();
            }
            let busy = nodes.iter().any(|n| !n.keys.wait_idle(Duration::ZERO));
            for n in nodes.iter() {
                assert!(n.keys.wait_idle(IDLE), "{}: calls still in flight", n.name);
            }
            if moved == 0 && !busy {
                return;
            }
        }
    }

    pub struct Chain {
        tip: BlockHash,
        height: u32,
        time: u32,
    }

    impl Chain {
        pub fn new() -> Chain {
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

    /// Opens and confirms a channel of `value` sat from `a` to `b`.
    pub fn open_channel(chain: &mut Chain, a: &mut Node, b: &mut Node, value: u64) {
        a.manager.create_channel(b.node_id(), value, 0, 42, None, None).unwrap();
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
        let tx = funding_tx(script, value, 77);
        a.manager.funding_transaction_generated(temporary, b.node_id(), tx.clone()).unwrap();
        pump(&mut [a, b]);
        a.broadcaster.txs.lock().unwrap().clear();
        chain.mine(&[a, b], vec![tx]);
        for _ in 0..6 {
            chain.mine(&[a, b], vec![]);
        }
        pump(&mut [a, b]);
        assert_eq!(a.manager.list_usable_channels().len(), 1, "{} has no usable channel", a.name);
    }

    /// Pays `amount_msat` from `from` to `to` and waits until the payer sees it sent.
    pub fn pay(from: &mut Node, to: &mut Node, amount_msat: u64, id: u8) {
        let (hash, secret) =
            to.manager.create_inbound_payment(Some(amount_msat), 3600, None).unwrap();
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
        pump(&mut [from, to]);
        let preimage = to
            .events
            .iter()
            .find_map(|e| match e {
                Event::PaymentClaimable { payment_hash, purpose, .. } if *payment_hash == hash => {
                    purpose.preimage()
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{} never saw the payment", to.name));
        to.manager.claim_funds(preimage);
        pump(&mut [from, to]);
        assert!(
            from.events.iter().any(
                |e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)
            ),
            "{} never saw the payment sent",
            from.name
        );
        to.events.clear();
        from.events.clear();
    }
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

fn main() {
    let mut chain = support::Chain::default();
    let mut alice = support::Node::new("alice", 41, UserConfig::default());
    let mut bob = support::Node::new("bob", 42, UserConfig::default());
    support::connect(&alice, &bob);
    support::open_channel(&mut chain, &mut alice, &mut bob, 1_000_000, 0);

    let mut rchain = remote::Chain::new();
    let mut ralice = remote::Node::new("alice", 43);
    let mut rbob = remote::Node::new("bob", 44);
    remote::connect(&ralice, &rbob);
    remote::open_channel(&mut rchain, &mut ralice, &mut rbob, 1_000_000);

    // Warm-up, then one payment per setup per round, the order of the setups and the payer
    // alternating (alice pays 2,000 sat, bob pays back 1,000 sat).
    for i in 0..WARMUP {
        let id = 240 + i;
        support::pay(&mut alice, &mut bob, 2_000_000, id);
        remote::pay(&mut ralice, &mut rbob, 2_000_000, id);
    }
    let calls_before = ralice.keys.calls_sent() + rbob.keys.calls_sent();
    let mut local = Vec::with_capacity(usize::from(ROUNDS));
    let mut remote_times = Vec::with_capacity(usize::from(ROUNDS));
    for i in 0..ROUNDS {
        let amount = if i % 4 < 2 { 2_000_000 } else { 1_000_000 };
        let time_local = |alice: &mut support::Node, bob: &mut support::Node| {
            let start = Instant::now();
            if i % 4 < 2 {
                support::pay(alice, bob, amount, i);
            } else {
                support::pay(bob, alice, amount, i);
            }
            start.elapsed()
        };
        let time_remote = |alice: &mut remote::Node, bob: &mut remote::Node| {
            let start = Instant::now();
            if i % 4 < 2 {
                remote::pay(alice, bob, amount, i);
            } else {
                remote::pay(bob, alice, amount, i);
            }
            start.elapsed()
        };
        if i % 2 == 0 {
            local.push(time_local(&mut alice, &mut bob));
            remote_times.push(time_remote(&mut ralice, &mut rbob));
        } else {
            remote_times.push(time_remote(&mut ralice, &mut rbob));
            local.push(time_local(&mut alice, &mut bob));
        }
    }
    let calls = ralice.keys.calls_sent() + rbob.keys.calls_sent() - calls_before;
    assert!(ralice.keys.refusals().is_empty() && rbob.keys.refusals().is_empty());
    local.sort();
    remote_times.sort();
    let (l50, l99) = (percentile(&local, 50), percentile(&local, 99));
    let (r50, r99) = (percentile(&remote_times, 50), percentile(&remote_times, 99));
    println!(
        "one LDK payment (2 commitment rounds, both sides), {ROUNDS} each, interleaved: \
         in-process signers p50 {l50:?} p99 {l99:?}; remote signers over TCP loopback \
         ({} signer calls per payment, both nodes) p50 {r50:?} p99 {r99:?}; \
         ratio remote/in-process p50 {:.1}, p99 {:.1}",
        calls / u64::from(ROUNDS),
        r50.as_secs_f64() / l50.as_secs_f64(),
        r99.as_secs_f64() / l99.as_secs_f64(),
    );
}
