//! The remote-mode harness: LDK nodes whose signers are Warden signers in other threads,
//! reached over warden-link on TCP loopback (the signer dials out, the node side listens with
//! the signer's key pinned), a simulated chain, and a message pump that waits for the signers'
//! answers (LDK's `Err` + `signer_unblocked`). Used by `tests/remote.rs` and
//! `benches/remote_round.rs`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::secp256k1::PublicKey;
use bitcoin::{Block, Transaction};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Listen};
use lightning::events::{Event, EventsProvider};
use lightning::ln::channelmanager::{
    ChainParameters, ChannelManager, PaymentId, RecipientOnionFields, Retry,
};
use lightning::ln::msgs::{BaseMessageHandler, Init};
use lightning::ln::types::ChannelId;
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

pub use super::Chain;
use super::{
    deliver, destination, funding_tx, Broadcaster, Chained, DirectRouter, FeeEst, Log, NoFilter,
    NETWORK,
};

/// The channel every remote test opens, in satoshis.
pub const CHANNEL: u64 = 1_000_000;
/// The longest wait for the signers to answer what is in flight.
pub const IDLE: Duration = Duration::from_secs(30);

/// A monitor persister that keeps nothing (the signer's store is what these tests restart).
#[derive(Default)]
pub struct NoPersist;

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

pub type Monitor = ChainMonitor<
    RemoteChannelSigner,
    Arc<NoFilter>,
    Arc<Broadcaster>,
    Arc<FeeEst>,
    Arc<Log>,
    Arc<NoPersist>,
    Arc<RemoteKeysManager>,
>;

pub type Manager = ChannelManager<
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

/// A signer's host: its seed, its store directory (`None`: keys in memory only), its link key.
pub struct SignerHost {
    pub seed: [u8; 32],
    pub dir: Option<PathBuf>,
    pub link_key: [u8; 32],
    pub node_key: PublicKey,
    pub node_addr: std::net::SocketAddr,
    pub starts: u32,
}

impl SignerHost {
    /// Opens the Warden keys manager (from the sealed store, if the host has one) and starts
    /// the signer thread.
    pub fn start(&mut self) -> RemoteSignerServer {
        self.starts += 1;
        let (scheme, config) =
            (KeyScheme::Ldk { v2_remote_key: true }, WardenConfig::test_network());
        let now = 1_700_000_000 + u64::from(self.starts);
        let keys = match &self.dir {
            Some(dir) => WardenKeysManager::open(
                &self.seed,
                scheme,
                config,
                now,
                self.starts,
                dir,
                Vec::new(),
            )
            .unwrap(),
            None => WardenKeysManager::new(&self.seed, scheme, config, now, self.starts).unwrap(),
        };
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

/// An LDK node whose signer is a Warden signer in another thread, reached over warden-link.
pub struct Node {
    pub name: &'static str,
    pub keys: Arc<RemoteKeysManager>,
    pub signer: Option<RemoteSignerServer>,
    pub host: SignerHost,
    _dir: tempfile::TempDir,
    pub monitor: Arc<Monitor>,
    pub manager: Arc<Manager>,
    pub broadcaster: Arc<Broadcaster>,
    pub events: Vec<Event>,
    /// How many times the unblocked callback ran.
    pub unblocked: Arc<AtomicUsize>,
}

impl Node {
    /// A node whose signer keeps its state in a sealed store (restartable).
    pub fn new(name: &'static str, seed: u8) -> Node {
        Node::with_store(name, seed, true)
    }

    /// A node whose signer keeps its keys manager in memory.
    pub fn in_memory(name: &'static str, seed: u8) -> Node {
        Node::with_store(name, seed, false)
    }

    fn with_store(name: &'static str, seed: u8, durable: bool) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let node_link = StaticSecretKey::from_bytes([seed.wrapping_add(100); 32]).unwrap();
        let signer_link = [seed.wrapping_add(200); 32];
        let mut host = SignerHost {
            seed: [seed; 32],
            dir: durable.then(|| dir.path().to_path_buf()),
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

    pub fn node_id(&self) -> PublicKey {
        self.keys.node_id()
    }

    pub fn signer(&self) -> &RemoteSignerServer {
        self.signer.as_ref().unwrap()
    }

    pub fn warden(&self) -> &Arc<WardenKeysManager> {
        self.signer().keys()
    }

    pub fn served(&self, tag: u16) -> u64 {
        self.signer().served().get(&tag).copied().unwrap_or(0)
    }

    pub fn collect_events(&mut self) {
        let collected = Mutex::new(Vec::new());
        let handler = |e: Event| {
            collected.lock().unwrap().push(e);
            Ok(())
        };
        self.manager.process_pending_events(&handler);
        self.monitor.process_pending_events(&handler);
        self.events.extend(collected.into_inner().unwrap());
    }

    pub fn take_broadcasts(&self) -> Vec<Transaction> {
        std::mem::take(&mut *self.broadcaster.txs.lock().unwrap())
    }

    pub fn channel_keys_id(&self) -> [u8; 32] {
        let ids = self.warden().channel_keys_ids();
        assert_eq!(ids.len(), 1);
        ids[0]
    }
}

/// Connects two nodes as peers.
pub fn connect(a: &Node, b: &Node) {
    let init = |n: &Node| Init {
        features: n.manager.init_features(),
        networks: None,
        remote_network_address: None,
    };
    a.manager.peer_connected(b.node_id(), &init(b), true).unwrap();
    b.manager.peer_connected(a.node_id(), &init(a), false).unwrap();
}

/// Delivers messages until none is pending (without waiting for the signers).
pub fn pump_once(nodes: &mut [&mut Node]) -> usize {
    let mut delivered = 0;
    loop {
        let mut moved = 0;
        for i in 0..nodes.len() {
            nodes[i].manager.process_pending_htlc_forwards();
            let from = nodes[i].node_id();
            for event in nodes[i].manager.get_and_clear_pending_msg_events() {
                let target = destination(&event);
                if let Some(to) = nodes.iter().find(|n| Some(n.node_id()) == target) {
                    deliver(&*to.manager, from, event);
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
pub fn pump(nodes: &mut [&mut Node]) -> usize {
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

impl Chained for Node {
    fn connect_block(&self, block: &Block, height: u32) {
        self.monitor.block_connected(block, height);
        self.manager.block_connected(block, height);
    }
}

/// Opens and confirms a channel from `a` to `b`; returns its id and funding transaction.
pub fn open_channel(chain: &mut Chain, a: &mut Node, b: &mut Node) -> (ChannelId, Transaction) {
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
pub fn start_payment(from: &Node, to: &Node, amount_msat: u64, id: u8) -> [u8; 32] {
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

pub fn claimable(to: &Node, hash: [u8; 32]) -> Option<lightning::types::payment::PaymentPreimage> {
    to.events.iter().find_map(|e| match e {
        Event::PaymentClaimable { payment_hash, purpose, .. } if payment_hash.0 == hash => {
            purpose.preimage()
        }
        _ => None,
    })
}

/// Claims a claimable payment and checks that the payer saw it sent.
pub fn finish_payment(from: &mut Node, to: &mut Node, hash: [u8; 32]) {
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

pub fn pay(from: &mut Node, to: &mut Node, amount_msat: u64, id: u8) {
    let hash = start_payment(from, to, amount_msat, id);
    pump(&mut [from, to]);
    finish_payment(from, to, hash);
}

pub fn no_refusals(nodes: &[&Node]) {
    for n in nodes {
        assert!(n.keys.refusals().is_empty(), "{}: {:?}", n.name, n.keys.refusals());
        assert!(n.warden().refusals().is_empty(), "{}: {:?}", n.name, n.warden().refusals());
    }
}
