//! Two (or more) LDK nodes in one process, Warden their only signer: `ChannelManager` +
//! `ChainMonitor`, an in-memory monitor persister, a simulated chain driven by connecting
//! blocks, a message pump standing in for the network, and a router that pays direct peers.
#![allow(dead_code, reason = "each test binary uses part of the harness")]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bitcoin::block::{Header, Version as BlockVersion};
use bitcoin::hash_types::TxMerkleNode;
use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
use bitcoin::transaction::Version;
use bitcoin::{
    absolute::LockTime, Amount, Block, BlockHash, CompactTarget, Network, OutPoint, ScriptBuf,
    Sequence, Transaction, TxIn, TxOut, Txid, Witness,
};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::transaction::OutPoint as LdkOutPoint;
use lightning::chain::{
    BestBlock, ChannelMonitorUpdateStatus, Filter, Listen, Watch, WatchedOutput,
};
use lightning::events::{Event, EventsProvider};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{
    ChainParameters, ChannelManager, ChannelManagerReadArgs, PaymentId, RecipientOnionFields, Retry,
};
use lightning::ln::msgs::{
    BaseMessageHandler, ChannelMessageHandler, ErrorAction, Init, MessageSendEvent,
};
use lightning::ln::types::ChannelId;
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::router::{
    InFlightHtlcs, Path, Payee, PaymentParameters, Route, RouteHop, RouteParameters, Router,
};
use lightning::sign::{NodeSigner, Recipient};
use lightning::types::features::{ChannelFeatures, NodeFeatures};
use lightning::types::payment::PaymentHash;
use lightning::util::config::UserConfig;
use lightning::util::logger::{Logger, Record};
use lightning::util::persist::MonitorName;
use lightning::util::ser::{ReadableArgs, Writeable};
use warden_ldk::{KeyScheme, WardenChannelSigner, WardenConfig, WardenKeysManager};

pub mod remote;

pub const NETWORK: Network = Network::Testnet;

#[derive(Debug, Default)]
pub struct Broadcaster {
    pub txs: Mutex<Vec<Transaction>>,
}

impl BroadcasterInterface for Broadcaster {
    fn broadcast_transactions(&self, txs: &[&Transaction]) {
        self.txs.lock().unwrap().extend(txs.iter().map(|t| (*t).clone()));
    }
}

#[derive(Debug)]
pub struct FeeEst(pub Mutex<u32>);

impl FeeEstimator for FeeEst {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        *self.0.lock().unwrap()
    }
}

#[derive(Debug)]
pub struct Log(pub &'static str);

impl Logger for Log {
    fn log(&self, record: Record) {
        if std::env::var_os("WARDEN_LDK_LOG").is_some() {
            let _ = writeln!(
                std::io::stderr(),
                "[{}] {} {}:{} {}",
                self.0,
                record.level,
                record.module_path,
                record.line,
                record.args
            );
        }
    }
}

#[derive(Debug)]
pub struct NoFilter;

impl Filter for NoFilter {
    fn register_tx(&self, _: &Txid, _: &bitcoin::Script) {}
    fn register_output(&self, _: WatchedOutput) {}
}

/// Keeps each channel monitor's latest serialization (LDK's own), for a node's restart.
#[derive(Debug, Default)]
pub struct MemoryPersister {
    pub monitors: Mutex<HashMap<ChannelId, Vec<u8>>>,
}

impl MemoryPersister {
    fn keep(&self, monitor: &ChannelMonitor<WardenChannelSigner>) -> ChannelMonitorUpdateStatus {
        self.monitors.lock().unwrap().insert(monitor.channel_id(), monitor.encode());
        ChannelMonitorUpdateStatus::Completed
    }
}

impl Persist<WardenChannelSigner> for MemoryPersister {
    fn persist_new_channel(
        &self,
        _: MonitorName,
        monitor: &ChannelMonitor<WardenChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.keep(monitor)
    }

    fn update_persisted_channel(
        &self,
        _: MonitorName,
        _: Option<&ChannelMonitorUpdate>,
        monitor: &ChannelMonitor<WardenChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        self.keep(monitor)
    }

    fn archive_persisted_channel(&self, _: MonitorName) {}
}

/// A second hop the router may use: `via` forwards to `payee` over channel `scid`.
#[derive(Debug, Clone)]
pub struct NextHop {
    pub payee: PublicKey,
    pub payee_features: NodeFeatures,
    pub via: PublicKey,
    pub scid: u64,
    pub fee_msat: u64,
    pub cltv_expiry_delta: u32,
}

/// Pays a direct peer over the first usable channel with it, or a peer's peer over a
/// registered [`NextHop`].
#[derive(Debug, Default)]
pub struct DirectRouter {
    pub next_hops: Mutex<Vec<NextHop>>,
}

impl Router for DirectRouter {
    fn find_route(
        &self,
        _payer: &PublicKey,
        route_params: &RouteParameters,
        first_hops: Option<&[&ChannelDetails]>,
        _inflight: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        let (payee, cltv) = match &route_params.payment_params.payee {
            Payee::Clear { node_id, final_cltv_expiry_delta, .. } => {
                (*node_id, *final_cltv_expiry_delta)
            }
            Payee::Blinded { .. } => return Err("blinded payees are not routed here"),
        };
        let amount = route_params.final_value_msat;
        let next = self.next_hops.lock().unwrap().iter().find(|h| h.payee == payee).cloned();
        let (first_peer, first_amount) = match &next {
            Some(n)
                if !first_hops
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.counterparty.node_id == payee) =>
            {
                (n.via, amount + n.fee_msat)
            }
            _ => (payee, amount),
        };
        let hop = first_hops
            .unwrap_or_default()
            .iter()
            .find(|c| {
                c.counterparty.node_id == first_peer
                    && c.is_usable
                    && c.next_outbound_htlc_limit_msat >= first_amount
            })
            .ok_or("no usable channel to the first hop")?;
        let first = RouteHop {
            pubkey: first_peer,
            node_features: hop.counterparty.features.to_context(),
            short_channel_id: hop.get_outbound_payment_scid().ok_or("no scid")?,
            channel_features: hop.counterparty.features.to_context(),
            fee_msat: amount,
            cltv_expiry_delta: cltv,
            maybe_announced_channel: false,
        };
        let hops = match next {
            Some(n) if first_peer != payee => vec![
                RouteHop { fee_msat: n.fee_msat, cltv_expiry_delta: n.cltv_expiry_delta, ..first },
                RouteHop {
                    pubkey: payee,
                    node_features: n.payee_features,
                    short_channel_id: n.scid,
                    channel_features: ChannelFeatures::empty(),
                    fee_msat: amount,
                    cltv_expiry_delta: cltv,
                    maybe_announced_channel: false,
                },
            ],
            _ => vec![first],
        };
        Ok(Route {
            paths: vec![Path { hops, blinded_tail: None }],
            route_params: Some(route_params.clone()),
        })
    }

    fn create_blinded_payment_paths<T: Signing + Verification>(
        &self,
        _: PublicKey,
        _: Vec<ChannelDetails>,
        _: ReceiveTlvs,
        _: Option<u64>,
        _: &Secp256k1<T>,
    ) -> Result<Vec<BlindedPaymentPath>, ()> {
        Err(())
    }
}

pub type Monitor = ChainMonitor<
    WardenChannelSigner,
    Arc<NoFilter>,
    Arc<Broadcaster>,
    Arc<FeeEst>,
    Arc<Log>,
    Arc<MemoryPersister>,
    Arc<WardenKeysManager>,
>;

pub type Manager = ChannelManager<
    Arc<Monitor>,
    Arc<Broadcaster>,
    Arc<WardenKeysManager>,
    Arc<WardenKeysManager>,
    Arc<WardenKeysManager>,
    Arc<FeeEst>,
    Arc<DirectRouter>,
    Arc<NullMessageRouter>,
    Arc<Log>,
>;

pub struct Node {
    pub name: &'static str,
    pub keys: Arc<WardenKeysManager>,
    pub persister: Arc<MemoryPersister>,
    pub monitor: Arc<Monitor>,
    pub manager: Manager,
    pub broadcaster: Arc<Broadcaster>,
    pub fees: Arc<FeeEst>,
    pub router: Arc<DirectRouter>,
    pub events: Vec<Event>,
    /// The funding transactions this node built.
    pub funded: Mutex<Vec<Transaction>>,
}

impl Node {
    pub fn new(name: &'static str, seed: u8, config: UserConfig) -> Node {
        let keys = Arc::new(
            WardenKeysManager::new(
                &[seed; 32],
                KeyScheme::Ldk { v2_remote_key: true },
                WardenConfig::test_network(),
                1_700_000_000,
                u32::from(seed),
            )
            .unwrap(),
        );
        Node::with_keys(name, keys, config)
    }

    /// A node whose signer is `keys`.
    pub fn with_keys(name: &'static str, keys: Arc<WardenKeysManager>, config: UserConfig) -> Node {
        let broadcaster = Arc::new(Broadcaster::default());
        let fees = Arc::new(FeeEst(Mutex::new(253)));
        let log = Arc::new(Log(name));
        let router = Arc::new(DirectRouter::default());
        let persister = Arc::new(MemoryPersister::default());
        let monitor = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&broadcaster),
            Arc::clone(&log),
            Arc::clone(&fees),
            Arc::clone(&persister),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));
        let manager = ChannelManager::new(
            Arc::clone(&fees),
            Arc::clone(&monitor),
            Arc::clone(&broadcaster),
            Arc::clone(&router),
            Arc::new(NullMessageRouter {}),
            log,
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&keys),
            config,
            ChainParameters { network: NETWORK, best_block: BestBlock::from_network(NETWORK) },
            1_700_000_000,
        );
        Node {
            name,
            keys,
            persister,
            monitor,
            manager,
            broadcaster,
            fees,
            router,
            events: Vec::new(),
            funded: Mutex::new(Vec::new()),
        }
    }

    /// Stops this node (LDK's objects and the signer are all dropped, so the signer's store
    /// is closed) and starts it again: LDK's `ChannelManager` and every `ChannelMonitor` are
    /// read back from their serializations, with the signer `reopen` returns as LDK's keys
    /// interface. Peers must be reconnected (see [`reconnect`]).
    pub fn restart(
        self,
        config: UserConfig,
        reopen: impl FnOnce() -> Arc<WardenKeysManager>,
    ) -> Node {
        let manager_bytes = self.manager.encode();
        let monitor_bytes: Vec<Vec<u8>> =
            self.persister.monitors.lock().unwrap().values().cloned().collect();
        let (name, funded, events) = (self.name, self.funded, self.events);
        drop(self.manager);
        drop(self.monitor);
        drop(self.keys);
        let keys = reopen();
        let broadcaster = Arc::new(Broadcaster::default());
        let fees = Arc::new(FeeEst(Mutex::new(*self.fees.0.lock().unwrap())));
        let log = Arc::new(Log(name));
        let router = Arc::new(DirectRouter::default());
        *router.next_hops.lock().unwrap() = self.router.next_hops.lock().unwrap().clone();
        let persister = Arc::new(MemoryPersister::default());
        let monitor = Arc::new(ChainMonitor::new(
            None,
            Arc::clone(&broadcaster),
            Arc::clone(&log),
            Arc::clone(&fees),
            Arc::clone(&persister),
            Arc::clone(&keys),
            keys.get_peer_storage_key(),
        ));
        let mut monitors = Vec::new();
        for bytes in &monitor_bytes {
            let (_, m) = <(BlockHash, ChannelMonitor<WardenChannelSigner>)>::read(
                &mut &bytes[..],
                (&*keys, &*keys),
            )
            .unwrap();
            monitors.push(m);
        }
        let args = ChannelManagerReadArgs::new(
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&keys),
            Arc::clone(&fees),
            Arc::clone(&monitor),
            Arc::clone(&broadcaster),
            Arc::clone(&router),
            Arc::new(NullMessageRouter {}),
            log,
            config,
            monitors.iter().collect(),
        );
        let (_, manager) = <(BlockHash, Manager)>::read(&mut &manager_bytes[..], args).unwrap();
        for m in monitors {
            let status = monitor.watch_channel(m.channel_id(), m).unwrap();
            assert_eq!(status, ChannelMonitorUpdateStatus::Completed);
        }
        Node { name, keys, persister, monitor, manager, broadcaster, fees, router, events, funded }
    }

    pub fn node_id(&self) -> PublicKey {
        self.keys.get_node_id(Recipient::Node).unwrap()
    }

    /// Moves the manager's and the monitor's pending events into `self.events`.
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
}

/// A simulated chain: blocks are built on demand and connected to every node.
pub struct Chain {
    pub tip: BlockHash,
    pub height: u32,
    pub time: u32,
}

impl Default for Chain {
    fn default() -> Self {
        let best = BestBlock::from_network(NETWORK);
        Chain { tip: best.block_hash, height: best.height, time: 1_700_000_000 }
    }
}

/// A node the simulated chain connects its blocks to.
pub trait Chained {
    /// Connects `block` at `height` to the node's monitor and manager.
    fn connect_block(&self, block: &Block, height: u32);
}

impl Chained for Node {
    fn connect_block(&self, block: &Block, height: u32) {
        self.monitor.block_connected(block, height);
        self.manager.block_connected(block, height);
    }
}

impl Chain {
    /// The chain at the network's genesis.
    pub fn new() -> Chain {
        Chain::default()
    }

    /// Mines a block holding `txdata` and connects it to `nodes`.
    pub fn mine<N: Chained>(&mut self, nodes: &[&N], txdata: Vec<Transaction>) {
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
            node.connect_block(&block, self.height);
        }
    }
}

/// Connects `restarted` again to `b`, which saw it go: LDK exchanges `channel_reestablish`
/// and resumes the channels.
pub fn reconnect(restarted: &mut Node, b: &mut Node) {
    let a = restarted;
    b.manager.peer_disconnected(a.node_id());
    connect(a, b);
    pump(&mut [a, b]);
}

/// Connects two nodes as peers.
pub fn connect(a: &Node, b: &Node) {
    let init_a =
        Init { features: a.manager.init_features(), networks: None, remote_network_address: None };
    let init_b =
        Init { features: b.manager.init_features(), networks: None, remote_network_address: None };
    a.manager.peer_connected(b.node_id(), &init_b, true).unwrap();
    b.manager.peer_connected(a.node_id(), &init_a, false).unwrap();
}

/// Hands `event`, sent by `from`, to the node whose channel message handler is `m`.
pub fn deliver(m: &impl ChannelMessageHandler, from: PublicKey, event: MessageSendEvent) {
    use MessageSendEvent as E;
    match event {
        E::SendOpenChannel { msg, .. } => m.handle_open_channel(from, &msg),
        E::SendAcceptChannel { msg, .. } => m.handle_accept_channel(from, &msg),
        E::SendFundingCreated { msg, .. } => m.handle_funding_created(from, &msg),
        E::SendFundingSigned { msg, .. } => m.handle_funding_signed(from, &msg),
        E::SendChannelReady { msg, .. } => m.handle_channel_ready(from, &msg),
        E::SendAnnouncementSignatures { msg, .. } => m.handle_announcement_signatures(from, &msg),
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
            for u in &updates.update_fail_malformed_htlcs {
                m.handle_update_fail_malformed_htlc(from, u);
            }
            if let Some(u) = &updates.update_fee {
                m.handle_update_fee(from, u);
            }
            match updates.commitment_signed.as_slice() {
                [one] => m.handle_commitment_signed(from, one),
                [] => {}
                many => m.handle_commitment_signed_batch(from, many[0].channel_id, many.to_vec()),
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
        // Gossip and peer storage: no network graph here.
        _ => {}
    }
}

/// Delivers messages between the nodes (a full mesh) until none is pending, processing HTLC
/// forwards as they become ready. Returns how many messages went through.
pub fn pump(nodes: &mut [&mut Node]) -> usize {
    let mut delivered = 0;
    loop {
        let mut moved = 0;
        for i in 0..nodes.len() {
            nodes[i].manager.process_pending_htlc_forwards();
            let from = nodes[i].node_id();
            let events = nodes[i].manager.get_and_clear_pending_msg_events();
            for event in events {
                let target = destination(&event);
                if let Some(to) = nodes.iter().find(|n| Some(n.node_id()) == target) {
                    deliver(&to.manager, from, event);
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

/// The node a message is for.
pub fn destination(event: &MessageSendEvent) -> Option<PublicKey> {
    use MessageSendEvent as E;
    match event {
        E::SendOpenChannel { node_id, .. }
        | E::SendAcceptChannel { node_id, .. }
        | E::SendFundingCreated { node_id, .. }
        | E::SendFundingSigned { node_id, .. }
        | E::SendChannelReady { node_id, .. }
        | E::SendAnnouncementSignatures { node_id, .. }
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

/// A funding transaction paying `value` to `script`, from an outpoint no one else spends.
pub fn funding_tx(script: ScriptBuf, value: u64, salt: u8) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: Txid::from_byte_array([salt; 32]), vout: 0 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            // A segwit spend (LDK refuses a funding transaction with a non-segwit input).
            witness: Witness::from_slice(&[[1u8; 72].as_slice(), [2u8; 33].as_slice()]),
        }],
        output: vec![TxOut { value: Amount::from_sat(value), script_pubkey: script }],
    }
}

/// Opens a channel from `a` to `b` and confirms it; returns the channel id.
pub fn open_channel(
    chain: &mut Chain,
    a: &mut Node,
    b: &mut Node,
    value: u64,
    push_msat: u64,
) -> ChannelId {
    open_channel_seen_by(chain, a, b, value, push_msat, &[])
}

/// [`open_channel`], with the blocks also connected to `others`.
pub fn open_channel_seen_by(
    chain: &mut Chain,
    a: &mut Node,
    b: &mut Node,
    value: u64,
    push_msat: u64,
    others: &[&Node],
) -> ChannelId {
    a.manager.create_channel(b.node_id(), value, push_msat, 42, None, None).unwrap();
    pump(&mut [a, b]);
    fund_pending_channel_seen_by(chain, a, b, value, others)
}

/// Funds the channel `a` proposed to `b` (once `b` accepted it) and confirms it.
pub fn fund_pending_channel(
    chain: &mut Chain,
    a: &mut Node,
    b: &mut Node,
    value: u64,
) -> ChannelId {
    fund_pending_channel_seen_by(chain, a, b, value, &[])
}

/// [`fund_pending_channel`], with the blocks also connected to `others`.
pub fn fund_pending_channel_seen_by(
    chain: &mut Chain,
    a: &mut Node,
    b: &mut Node,
    value: u64,
    others: &[&Node],
) -> ChannelId {
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
    let tx = funding_tx(script, value, chain.height as u8);
    a.funded.lock().unwrap().push(tx.clone());
    a.manager.funding_transaction_generated(temporary, b.node_id(), tx.clone()).unwrap();
    pump(&mut [a, b]);
    let broadcast = a.take_broadcasts();
    assert!(broadcast.iter().any(|t| t.compute_txid() == tx.compute_txid()), "funding broadcast");
    let mut all: Vec<&Node> = vec![a, b];
    all.extend_from_slice(others);
    chain.mine(&all, vec![tx.clone()]);
    for _ in 0..6 {
        chain.mine(&all, vec![]);
    }
    pump(&mut [a, b]);
    let channel = a
        .manager
        .list_usable_channels()
        .into_iter()
        .find(|c| {
            c.counterparty.node_id == b.node_id()
                && c.funding_txo == Some(LdkOutPoint { txid: tx.compute_txid(), index: 0 })
        })
        .expect("usable channel");
    channel.channel_id
}

/// The funding transaction of the (only) channel between `a` and `b`, rebuilt as
/// [`open_channel`] built it.
pub fn funding_tx_of(a: &Node, b: &Node, _chain: &Chain) -> Transaction {
    let c = a
        .manager
        .list_channels()
        .into_iter()
        .find(|c| c.counterparty.node_id == b.node_id())
        .unwrap();
    a.funded
        .lock()
        .unwrap()
        .iter()
        .find(|t| t.compute_txid() == c.funding_txo.unwrap().txid)
        .unwrap()
        .clone()
}

/// Pays `amount_msat` from `from` to `to` over a direct channel; returns the payment hash.
pub fn pay(from: &mut Node, to: &mut Node, amount_msat: u64, id: u8) -> PaymentHash {
    pay_via(from, to, None, amount_msat, id)
}

/// Pays `amount_msat` from `from` to `to`, through `via` when given; returns the payment hash.
pub fn pay_via(
    from: &mut Node,
    to: &mut Node,
    mut via: Option<&mut Node>,
    amount_msat: u64,
    id: u8,
) -> PaymentHash {
    let (hash, secret) = to.manager.create_inbound_payment(Some(amount_msat), 3600, None).unwrap();
    let params = RouteParameters::from_payment_params_and_value(
        PaymentParameters::from_node_id(to.node_id(), 40),
        amount_msat,
    );
    let mut pid = [0u8; 32];
    pid[0] = id;
    pid[1] = from.name.as_bytes()[0];
    pid[2] = to.name.as_bytes()[0];
    from.manager
        .send_payment(
            hash,
            RecipientOnionFields::secret_only(secret),
            PaymentId(pid),
            params,
            Retry::Attempts(0),
        )
        .unwrap();
    match via.as_deref_mut() {
        Some(v) => pump(&mut [from, v, to]),
        None => pump(&mut [from, to]),
    };
    let preimage = to
        .events
        .iter()
        .find_map(|e| match e {
            Event::PaymentClaimable { payment_hash, purpose, .. } if *payment_hash == hash => {
                purpose.preimage()
            }
            _ => None,
        })
        .unwrap_or_else(|| {
            panic!(
                "{} never saw payment {id} as claimable; refusals: {:#?} {:#?}",
                to.name,
                from.keys.refusals(),
                to.keys.refusals()
            )
        });
    to.manager.claim_funds(preimage);
    match via {
        Some(v) => pump(&mut [from, v, to]),
        None => pump(&mut [from, to]),
    };
    assert!(
        from.events
            .iter()
            .any(|e| matches!(e, Event::PaymentSent { payment_hash, .. } if *payment_hash == hash)),
        "{} never saw payment {id} sent",
        from.name
    );
    hash
}
