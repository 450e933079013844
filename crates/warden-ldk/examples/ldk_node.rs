//! A minimal LDK node with Warden as its signer: `WardenKeysManager` is the entropy source,
//! the node signer and the signer provider of the `ChannelManager`, and the signer provider of
//! the `ChainMonitor`. Fee estimation, broadcasting, persistence and routing are the node's
//! own (stand-ins here). Run: `cargo run -p warden-ldk --example ldk_node`.

use std::sync::Arc;

use bitcoin::secp256k1::{PublicKey, Secp256k1, Signing, Verification};
use bitcoin::{Network, Transaction};
use lightning::blinded_path::payment::{BlindedPaymentPath, ReceiveTlvs};
use lightning::chain::chaininterface::{BroadcasterInterface, ConfirmationTarget, FeeEstimator};
use lightning::chain::chainmonitor::{ChainMonitor, Persist};
use lightning::chain::channelmonitor::{ChannelMonitor, ChannelMonitorUpdate};
use lightning::chain::{BestBlock, ChannelMonitorUpdateStatus, Filter};
use lightning::ln::channel_state::ChannelDetails;
use lightning::ln::channelmanager::{ChainParameters, ChannelManager};
use lightning::onion_message::messenger::NullMessageRouter;
use lightning::routing::router::{InFlightHtlcs, Route, RouteParameters, Router};
use lightning::sign::NodeSigner;
use lightning::util::config::UserConfig;
use lightning::util::logger::{Logger, Record};
use lightning::util::persist::MonitorName;
use warden_ldk::{KeyScheme, WardenChannelSigner, WardenConfig, WardenKeysManager};

struct Fees;
impl FeeEstimator for Fees {
    fn get_est_sat_per_1000_weight(&self, _: ConfirmationTarget) -> u32 {
        253
    }
}

struct Broadcast;
impl BroadcasterInterface for Broadcast {
    fn broadcast_transactions(&self, _: &[&Transaction]) {}
}

struct Log;
impl Logger for Log {
    fn log(&self, _: Record) {}
}

struct Store;
impl Persist<WardenChannelSigner> for Store {
    fn persist_new_channel(
        &self,
        _: MonitorName,
        _: &ChannelMonitor<WardenChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }
    fn update_persisted_channel(
        &self,
        _: MonitorName,
        _: Option<&ChannelMonitorUpdate>,
        _: &ChannelMonitor<WardenChannelSigner>,
    ) -> ChannelMonitorUpdateStatus {
        ChannelMonitorUpdateStatus::Completed
    }
    fn archive_persisted_channel(&self, _: MonitorName) {}
}

struct NoRoutes;
impl Router for NoRoutes {
    fn find_route(
        &self,
        _: &PublicKey,
        _: &RouteParameters,
        _: Option<&[&ChannelDetails]>,
        _: InFlightHtlcs,
    ) -> Result<Route, &'static str> {
        Err("use lightning's DefaultRouter in a real node")
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

struct NoFilter;
impl Filter for NoFilter {
    fn register_tx(&self, _: &bitcoin::Txid, _: &bitcoin::Script) {}
    fn register_output(&self, _: lightning::chain::WatchedOutput) {}
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The node's 32-byte seed (keep it secret and backed up); LDK's key derivation, so a node
    // moving from LDK's KeysManager keeps its node id and channel keys.
    let seed = [42u8; 32];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    // Warden's records, sealed in its store (`<dir>/warden/`, redb), verified at open and
    // written before every call returns: a real node passes its data directory (and, with
    // `warden_ldk::Replica::postgres`, a PostgreSQL replica). `WardenKeysManager::new` keeps
    // them in memory only.
    let data_dir = tempfile::tempdir()?;
    let keys = Arc::new(WardenKeysManager::open(
        &seed,
        KeyScheme::Ldk { v2_remote_key: true },
        WardenConfig::test_network(),
        now.as_secs(),
        now.subsec_nanos(),
        data_dir.path(),
        Vec::new(),
    )?);

    let monitor = Arc::new(ChainMonitor::new(
        None::<Arc<NoFilter>>,
        Arc::new(Broadcast),
        Arc::new(Log),
        Arc::new(Fees),
        Arc::new(Store),
        Arc::clone(&keys),
        keys.get_peer_storage_key(),
    ));
    let network = Network::Regtest;
    let manager = ChannelManager::new(
        Arc::new(Fees),
        Arc::clone(&monitor),
        Arc::new(Broadcast),
        Arc::new(NoRoutes),
        Arc::new(NullMessageRouter {}),
        Arc::new(Log),
        Arc::clone(&keys), // entropy source
        Arc::clone(&keys), // node signer
        Arc::clone(&keys), // signer provider: every channel signer is Warden's
        UserConfig::default(),
        ChainParameters { network, best_block: BestBlock::from_network(network) },
        u32::try_from(now.as_secs()).unwrap_or(u32::MAX),
    );
    assert_eq!(manager.get_our_node_id(), keys.node_id());
    // Every refusal names its rule.
    for refusal in keys.refusals() {
        let _ = (refusal.operation, refusal.error.rule.tag());
    }
    Ok(())
}
