//! [`WardenKeysManager`]: LDK's `EntropySource`, `NodeSigner`, `SignerProvider` and
//! `OutputSpender`, with the channel records shared by every copy of a channel's signer.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, sha256d, Hash, HashEngine};
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{schnorr, All, Keypair, Message, PublicKey, Scalar, Secp256k1};
use bitcoin::{Script, ScriptBuf, Transaction, TxOut};
use lightning::bolt11_invoice::{Bolt11Invoice, RawBolt11Invoice};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::{
    EntropySource, NodeSigner, OutputSpender, PeerStorageKey, ReceiveAuthKey, Recipient,
    SignerProvider, SpendableOutputDescriptor,
};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::Writeable;
use warden_core::channel::{ChannelSlot, ChannelState};
use warden_core::keys::NodeId;
use warden_core::policy::onchain::Allowlist;
use warden_core::policy::payment::{PaymentLedger, PaymentLimits, PaymentRequest};
use warden_core::policy::{Limits, PolicyError, Rule};
use warden_core::seal::WardenKeys;
use warden_core::secret::{Secret32, Seed};
use warden_core::sign::sign_hash_low_r;
use warden_core::units::Msat;
use warden_hsmd::channels::ChannelStore;
use warden_hsmd::durable::{OpenStoreError, SealedRedbChannelStore, SystemClock};
use warden_hsmd::hsm_secret::OsEntropy;
use warden_hsmd::replica::Replica;

use crate::channel::ChannelRecord;
use crate::keys::{DerivationError, KeyScheme, NodeSecrets};
use crate::signer::WardenChannelSigner;
use crate::spend;
use crate::store::{ChannelExtras, NodeBlob};

/// What the policy checks against.
#[derive(Clone, Debug)]
pub struct WardenConfig {
    /// The numeric limits (`Limits::mainnet()` or `Limits::test_network()`).
    pub limits: Limits,
    /// Scripts that count as ours for closes and sweeps besides our own.
    pub allowlist: Allowlist,
    /// The payment rules' limits (`payment-*`): payee allowlist, velocity, fee cap, CLTV gap.
    pub payments: PaymentLimits,
}

impl WardenConfig {
    /// The defaults of test networks (regtest, testnet, signet), nothing allowlisted.
    pub fn test_network() -> WardenConfig {
        WardenConfig {
            limits: Limits::test_network(),
            allowlist: Allowlist::default(),
            payments: PaymentLimits::test_network(),
        }
    }

    /// The mainnet defaults, nothing allowlisted.
    pub fn mainnet() -> WardenConfig {
        WardenConfig {
            limits: Limits::mainnet(),
            allowlist: Allowlist::default(),
            payments: PaymentLimits::mainnet(),
        }
    }
}

/// Why [`WardenKeysManager::open`] could not start: nothing is signed on a store that does not
/// verify.
#[derive(Debug)]
pub enum OpenError {
    /// The seed gives no keys.
    Keys(DerivationError),
    /// The store cannot be opened, read or reconciled with its replicas, or its records do not
    /// verify against the signed head (`node-state-stale`: tampered, dropped, rolled back).
    Store(OpenStoreError),
    /// The store verifies but this crate's node record does not decode.
    Records(crate::store::BlobError),
    /// The payment ledger's persisted part does not decode.
    Ledger(String),
}

impl OpenError {
    /// Whether the store's records do not verify or do not decode (`node-state-stale`), as
    /// opposed to a store that could not be reached or a seed without keys.
    pub fn is_stale(&self) -> bool {
        match self {
            OpenError::Store(e) => e.is_stale(),
            OpenError::Records(_) | OpenError::Ledger(_) => true,
            OpenError::Keys(_) => false,
        }
    }
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Keys(e) => write!(f, "warden-ldk: {e}"),
            OpenError::Store(e) => write!(f, "warden-ldk store: {e}"),
            OpenError::Records(e) => write!(f, "node-state-stale: {e}"),
            OpenError::Ledger(e) => {
                write!(f, "node-state-stale: the payment ledger does not decode: {e}")
            }
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Keys(e) => Some(e),
            OpenError::Store(e) => Some(e),
            OpenError::Records(e) => Some(e),
            OpenError::Ledger(_) => None,
        }
    }
}

/// The durable side of a manager: warden-hsmd's sealed store, and what this crate keeps in
/// its node record.
pub(crate) struct Durable {
    store: Box<dyn ChannelStore>,
    blob: NodeBlob,
    /// The ledger generation last written.
    ledger_written: u64,
}

/// The most payment hashes whose preimage a manager remembers (then it starts over).
pub const MAX_KNOWN_PREIMAGES: usize = 100_000;

/// The most refusals a manager keeps (the newest; [`WardenKeysManager::refusal_count`] counts
/// them all): a compromised node sending refused calls cannot grow the signer's memory.
pub const MAX_KEPT_REFUSALS: usize = 1_000;

/// The newest refusals and how many there were.
#[derive(Default)]
struct RefusalLog {
    newest: std::collections::VecDeque<Refusal>,
    total: u64,
}

/// A refusal: which channel, which call, and the rule with what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The channel (LDK's `channel_keys_id`); all zero for node-level calls.
    pub channel_keys_id: [u8; 32],
    /// The LDK call that was refused.
    pub operation: &'static str,
    /// The rule and its detail.
    pub error: PolicyError,
}

/// A recorded call and its channel (feature `test-utils`).
#[cfg(feature = "test-utils")]
pub(crate) type Recorded = ([u8; 32], crate::ldk_test_utils::RecordedCall);

/// What the manager and every channel signer share.
pub(crate) struct Shared {
    pub(crate) secp: Secp256k1<All>,
    pub(crate) node: NodeSecrets,
    pub(crate) config: WardenConfig,
    node_id: PublicKey,
    destination_script: ScriptBuf,
    shutdown_script: ScriptBuf,
    channels: Mutex<HashMap<[u8; 32], Arc<Mutex<ChannelRecord>>>>,
    refusals: Mutex<RefusalLog>,
    /// The payment ledger (`payment-*`), shared by every channel.
    pub(crate) ledger: Mutex<PaymentLedger>,
    /// The payment hashes whose preimage LDK gave us (kept in memory, at most
    /// [`MAX_KNOWN_PREIMAGES`]: LDK passes every relevant preimage with each call anyway).
    preimages: Mutex<HashSet<[u8; 32]>>,
    /// The store; `None` for a manager that keeps its records in memory only.
    durable: Option<Mutex<Durable>>,
    #[cfg(feature = "test-utils")]
    pub(crate) relay: Mutex<Option<Arc<dyn crate::ldk_test_utils::EvidenceRelay>>>,
    #[cfg(feature = "test-utils")]
    refusal_sink: Mutex<Option<Arc<Mutex<Vec<Refusal>>>>>,
    #[cfg(feature = "test-utils")]
    pub(crate) recorder: Mutex<Option<Vec<Recorded>>>,
}

impl Shared {
    pub(crate) fn record_refusal(
        &self,
        channel_keys_id: [u8; 32],
        operation: &'static str,
        error: PolicyError,
    ) {
        let refusal = Refusal { channel_keys_id, operation, error };
        #[cfg(feature = "test-utils")]
        if let Some(sink) = self.refusal_sink.lock().ok().and_then(|s| s.clone()) {
            if let Ok(mut sink) = sink.lock() {
                sink.push(refusal.clone());
            }
        }
        if let Ok(mut log) = self.refusals.lock() {
            if log.newest.len() >= MAX_KEPT_REFUSALS {
                log.newest.pop_front();
            }
            log.newest.push_back(refusal);
            log.total = log.total.saturating_add(1);
        }
    }

    /// Whether `script` pays us: our destination or shutdown script, or the allowlist.
    pub(crate) fn is_our_script(&self, script: &Script) -> bool {
        script == self.destination_script.as_script()
            || script == self.shutdown_script.as_script()
            || self.config.allowlist.contains(script)
    }

    /// Seconds since the Unix epoch (the payment ledger's time).
    pub(crate) fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// Adds the hashes of `preimages` to those known; returns every known hash.
    pub(crate) fn learn_preimages(&self, preimages: &[PaymentPreimage]) -> HashSet<[u8; 32]> {
        let hashes = preimages.iter().map(|p| sha256::Hash::hash(&p.0).to_byte_array());
        match self.preimages.lock() {
            Ok(mut known) => {
                if known.len() > MAX_KNOWN_PREIMAGES {
                    known.clear();
                }
                known.extend(hashes);
                known.clone()
            }
            Err(_) => hashes.collect(),
        }
    }

    /// Whether records are persisted (and so a call's changes are checked for writing).
    pub(crate) fn is_durable(&self) -> bool {
        self.durable.is_some()
    }

    /// The slot of a channel (see [`crate::store::channel_slot`]).
    pub(crate) fn slot_of(&self, channel_keys_id: &[u8; 32]) -> ChannelSlot {
        crate::store::channel_slot(self.node.scheme(), self.node_id, channel_keys_id)
    }

    /// Makes a channel's change durable: its warden-core state (if it changed since `before`),
    /// then the node record (if the channel's extras or the payment ledger's persisted part
    /// changed). Returns once both are durable; an error means the caller must not return its
    /// result (the in-memory record is then put back to `before` by the caller).
    pub(crate) fn persist(
        &self,
        channel_keys_id: [u8; 32],
        before: &ChannelRecord,
        after: &ChannelRecord,
    ) -> Result<(), PolicyError> {
        let Some(durable) = &self.durable else { return Ok(()) };
        let unavailable = |e: &dyn core::fmt::Display| {
            PolicyError::new(
                Rule::NodeStateStale,
                format!("the new state could not be made durable: {e}"),
            )
        };
        let mut durable = durable.lock().map_err(|_| unavailable(&"the store lock is poisoned"))?;
        if before.state != after.state {
            durable.store.persist(&after.state).map_err(|e| unavailable(&e))?;
        }
        let extras_changed =
            durable.blob.channels.get(&channel_keys_id).is_none_or(|e| e.differs(after));
        let ledger = match self.ledger.lock() {
            Ok(l) if l.generation() != durable.ledger_written => Some((l.generation(), l.encode())),
            _ => None,
        };
        if !extras_changed && ledger.is_none() {
            return Ok(());
        }
        let mut blob = durable.blob.clone();
        blob.channels.insert(channel_keys_id, ChannelExtras::of(after));
        if let Some((_, bytes)) = &ledger {
            blob.ledger = Some(bytes.clone());
        }
        durable.store.persist_payments(&blob.encode()).map_err(|e| unavailable(&e))?;
        durable.blob = blob;
        if let Some((generation, _)) = ledger {
            durable.ledger_written = generation;
        }
        Ok(())
    }

    /// Makes the payment ledger's persisted part durable if it changed (an approval).
    pub(crate) fn persist_ledger(&self) -> Result<(), PolicyError> {
        let Some(durable) = &self.durable else { return Ok(()) };
        let unavailable = |e: &dyn core::fmt::Display| {
            PolicyError::new(
                Rule::NodeStateStale,
                format!("the payment ledger could not be made durable: {e}"),
            )
        };
        let mut durable = durable.lock().map_err(|_| unavailable(&"the store lock is poisoned"))?;
        let (generation, bytes) = match self.ledger.lock() {
            Ok(l) if l.generation() != durable.ledger_written => (l.generation(), l.encode()),
            _ => return Ok(()),
        };
        let mut blob = durable.blob.clone();
        blob.ledger = Some(bytes);
        durable.store.persist_payments(&blob.encode()).map_err(|e| unavailable(&e))?;
        durable.blob = blob;
        durable.ledger_written = generation;
        Ok(())
    }

    /// A channel's stored state, for a channel not in memory yet.
    fn stored_state(&self, slot: &ChannelSlot) -> Option<ChannelState> {
        let durable = self.durable.as_ref()?.lock().ok()?;
        durable.store.load(slot)
    }

    pub(crate) fn destination_script(&self) -> &ScriptBuf {
        &self.destination_script
    }

    pub(crate) fn shutdown_script(&self) -> &ScriptBuf {
        &self.shutdown_script
    }
}

/// LDK's keys interface backed by Warden.
pub struct WardenKeysManager {
    shared: Arc<Shared>,
    node_id: PublicKey,
    entropy_key: Secret32,
    entropy_counter: AtomicU64,
    channel_counter: AtomicU32,
    /// The next dbid of a Core Lightning-scheme channel.
    next_cln_dbid: AtomicU64,
    starting_time_secs: u64,
    starting_time_nanos: u32,
}

/// What [`WardenKeysManager::open`] read from the store.
struct Loaded {
    durable: Durable,
    records: HashMap<[u8; 32], Arc<Mutex<ChannelRecord>>>,
    ledger: PaymentLedger,
    highest_dbid: u64,
}

impl core::fmt::Debug for WardenKeysManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WardenKeysManager")
            .field("node_id", &self.node_id)
            .field("node", &self.shared.node)
            .finish_non_exhaustive()
    }
}

impl WardenKeysManager {
    /// A keys manager for `seed`, deriving keys by `scheme`. As with LDK's `KeysManager`,
    /// `starting_time_*` must differ on every start with the same seed: it seeds the entropy
    /// and makes new `channel_keys_id`s unique.
    ///
    /// Its records live in memory only: a restarted node starts with none, and Warden refuses
    /// its channels' next commitments (`commitment-number`). A node that restarts uses
    /// [`WardenKeysManager::open`].
    ///
    /// On [`KeyScheme::CoreLightning`], new channels get the dbids from
    /// `starting_time_secs · 2^20 + starting_time_nanos / 2^10` up (and above every stored one
    /// with a store): starts whose times differ by more than the channels opened between them
    /// never reuse a dbid.
    pub fn new(
        seed: &[u8; 32],
        scheme: KeyScheme,
        config: WardenConfig,
        starting_time_secs: u64,
        starting_time_nanos: u32,
    ) -> Result<WardenKeysManager, DerivationError> {
        let secp = Secp256k1::new();
        let node = NodeSecrets::derive(&secp, &Secret32::new(*seed), scheme)?;
        Ok(Self::build(secp, seed, node, config, starting_time_secs, starting_time_nanos, None))
    }

    /// A keys manager whose records are persisted in the sealed store under `dir`
    /// (`<dir>/warden/`, warden-hsmd's redb file, mode 0600), written to each of `replicas`
    /// (any `warden_store::Store`, PostgreSQL in practice) before every call returns, and
    /// loaded and verified against the store's signed head here: a store whose records were
    /// tampered with, dropped or replaced by older ones is refused
    /// ([`OpenError::is_stale`]), and nothing is signed. With replicas, a local file rolled
    /// back as a whole is caught too (warden-hsmd's reconciliation: a replica ahead that
    /// continues the local history is adopted, one that diverged stops the start).
    ///
    /// The other arguments are those of [`WardenKeysManager::new`]; the seed and scheme must be
    /// those the store was written with (its id is the node id they give).
    pub fn open(
        seed: &[u8; 32],
        scheme: KeyScheme,
        config: WardenConfig,
        starting_time_secs: u64,
        starting_time_nanos: u32,
        dir: &Path,
        replicas: Vec<Replica>,
    ) -> Result<WardenKeysManager, OpenError> {
        let secp = Secp256k1::new();
        let node =
            NodeSecrets::derive(&secp, &Secret32::new(*seed), scheme).map_err(OpenError::Keys)?;
        let node_id = node.node_key().public_key(&secp);
        let keys = WardenKeys::derive(&Seed::from_legacy(*seed))
            .map_err(|_| OpenError::Keys(DerivationError))?;
        let mut entropy =
            OsEntropy::open().map_err(|e| OpenError::Store(OpenStoreError::Entropy(e)))?;
        let store = SealedRedbChannelStore::open_with_replicas(
            dir,
            &warden_wire::NodeId::from_bytes(node_id.serialize()),
            keys,
            &mut entropy,
            Box::new(SystemClock),
            replicas,
        )
        .map_err(OpenError::Store)?;
        let blob = match store.load_payments() {
            Some(bytes) => NodeBlob::decode(&bytes).map_err(OpenError::Records)?,
            None => NodeBlob::default(),
        };
        let mut ledger = match &blob.ledger {
            Some(bytes) => {
                PaymentLedger::decode(bytes).map_err(|e| OpenError::Ledger(e.to_string()))?
            }
            None => PaymentLedger::new(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let states = store.states();
        let mut highest_dbid = 0;
        for state in &states {
            highest_dbid = highest_dbid.max(state.slot.dbid.0);
            let holder = state.holder.current.as_ref().map(|c| c.content.htlcs.as_slice());
            let theirs = state.counterparty.current.as_ref().map(|c| c.content.htlcs.as_slice());
            ledger.restore_channel(
                &config.payments,
                &state.slot,
                holder.unwrap_or_default(),
                theirs.unwrap_or_default(),
                now,
            );
        }
        let mut records = HashMap::new();
        for (id, extras) in &blob.channels {
            let slot = crate::store::channel_slot(scheme, node_id, id);
            let state = store.load(&slot).unwrap_or_else(|| ChannelState::new(slot));
            let record = ChannelRecord {
                state,
                params: extras.params.clone(),
                push_known: extras.push_known,
                pending_holder: extras.pending_holder.clone(),
                funding_pubkey: extras.funding_pubkey,
            };
            records.insert(*id, Arc::new(Mutex::new(record)));
        }
        let loaded = Loaded {
            durable: Durable { store: Box::new(store), blob, ledger_written: ledger.generation() },
            records,
            ledger,
            highest_dbid,
        };
        Ok(Self::build(
            secp,
            seed,
            node,
            config,
            starting_time_secs,
            starting_time_nanos,
            Some(loaded),
        ))
    }

    fn build(
        secp: Secp256k1<All>,
        seed: &[u8; 32],
        node: NodeSecrets,
        config: WardenConfig,
        starting_time_secs: u64,
        starting_time_nanos: u32,
        loaded: Option<Loaded>,
    ) -> WardenKeysManager {
        let seed = Secret32::new(*seed);
        let node_id = node.node_key().public_key(&secp);
        let destination_script = node.destination_script(&secp);
        let shutdown_script = node.shutdown_script(&secp);
        let mut engine = sha256::Hash::engine();
        engine.input(b"warden-ldk entropy");
        engine.input(seed.expose_secret());
        engine.input(&starting_time_secs.to_be_bytes());
        engine.input(&starting_time_nanos.to_be_bytes());
        let entropy_key = Secret32::new(sha256::Hash::from_engine(engine).to_byte_array());
        // Core Lightning-scheme dbids: above every stored one, and above a floor of the
        // starting time (seconds · 2^20 + microseconds' worth of the nanoseconds), so that a
        // node without a store (or with a channel whose keys were derived but never stored)
        // does not reuse a dbid across restarts as long as its starting times differ by more
        // than the channels it opens.
        let floor = (starting_time_secs << 20) | u64::from(starting_time_nanos >> 10);
        let (durable, records, ledger, highest) = match loaded {
            Some(l) => (Some(Mutex::new(l.durable)), l.records, l.ledger, l.highest_dbid),
            None => (None, HashMap::new(), PaymentLedger::new(), 0),
        };
        WardenKeysManager {
            shared: Arc::new(Shared {
                secp,
                node,
                config,
                node_id,
                destination_script,
                shutdown_script,
                channels: Mutex::new(records),
                refusals: Mutex::new(RefusalLog::default()),
                ledger: Mutex::new(ledger),
                preimages: Mutex::new(HashSet::new()),
                durable,
                #[cfg(feature = "test-utils")]
                relay: Mutex::new(None),
                #[cfg(feature = "test-utils")]
                refusal_sink: Mutex::new(None),
                #[cfg(feature = "test-utils")]
                recorder: Mutex::new(None),
            }),
            node_id,
            entropy_key,
            entropy_counter: AtomicU64::new(0),
            channel_counter: AtomicU32::new(0),
            next_cln_dbid: AtomicU64::new(floor.max(highest.saturating_add(1))),
            starting_time_secs,
            starting_time_nanos,
        }
    }

    /// Approves paying `invoice` (the payment rules' pre-approval, as Core Lightning's
    /// `preapprove_invoice`): its payment hash may then leave through our channels up to its
    /// amount plus the fee cap without a velocity charge beyond the approval's own. A payee on
    /// the allowlist (`WardenConfig::payments.allowlist`) is approved without a charge; any
    /// other's amount is charged to the velocity budget now, and refused
    /// (`payment-velocity`, `payment-not-approved`) when it does not fit; an expired invoice is
    /// refused (`payment-invoice-expired`). The approval is durable before this returns. LDK
    /// does not ask its signer before it pays: call this before `pay_for_bolt11_invoice` (or
    /// `send_payment`) for payments that should not wait on the velocity budget.
    pub fn approve_invoice(&self, invoice: &Bolt11Invoice) -> Result<(), Refusal> {
        let request = PaymentRequest {
            payment_hash: invoice.payment_hash().to_byte_array(),
            amount: invoice.amount_milli_satoshis().map(Msat),
            payee: Some(NodeId(invoice.get_payee_pub_key())),
            created_at: invoice.duration_since_epoch().as_secs(),
            expiry_secs: invoice.expiry_time().as_secs(),
        };
        self.approve(&request, "approve_invoice")
    }

    /// Approves a keysend of `amount_msat` to `payee` with `payment_hash` (Core Lightning's
    /// `preapprove_keysend`), valid for `PaymentLimits::keysend_approval_secs`; as
    /// [`WardenKeysManager::approve_invoice`] otherwise.
    pub fn approve_keysend(
        &self,
        payee: PublicKey,
        payment_hash: [u8; 32],
        amount_msat: u64,
    ) -> Result<(), Refusal> {
        let request = PaymentRequest {
            payment_hash,
            amount: Some(Msat(amount_msat)),
            payee: Some(NodeId(payee)),
            created_at: self.shared.now(),
            expiry_secs: self.shared.config.payments.keysend_approval_secs,
        };
        self.approve(&request, "approve_keysend")
    }

    fn approve(&self, request: &PaymentRequest, operation: &'static str) -> Result<(), Refusal> {
        let refused = |error: PolicyError| {
            self.shared.record_refusal([0; 32], operation, error.clone());
            Refusal { channel_keys_id: [0; 32], operation, error }
        };
        let now = self.shared.now();
        {
            let mut ledger = self.shared.ledger.lock().map_err(|_| {
                refused(PolicyError::new(
                    Rule::NodeStateStale,
                    "the payment ledger's lock is poisoned",
                ))
            })?;
            let (plan, verdict) = ledger.plan_approval(&self.shared.config.payments, request, now);
            verdict.map_err(refused)?;
            ledger.apply_approval(plan);
        }
        self.shared.persist_ledger().map_err(refused)
    }

    /// What was charged to the payment velocity budget in the `window` seconds up to now.
    pub fn velocity_spent(&self, window: u64) -> u64 {
        let now = self.shared.now();
        self.shared.ledger.lock().map_or(0, |l| l.velocity_spent(now, window).0)
    }

    /// The refusals so far, oldest first: the newest [`MAX_KEPT_REFUSALS`] of them.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.shared.refusals.lock().map(|r| r.newest.iter().cloned().collect()).unwrap_or_default()
    }

    /// How many calls were refused since the manager started (kept or not).
    pub fn refusal_count(&self) -> u64 {
        self.shared.refusals.lock().map_or(0, |r| r.total)
    }

    /// The newest refusal.
    pub fn last_refusal(&self) -> Option<Refusal> {
        self.shared.refusals.lock().ok().and_then(|r| r.newest.back().cloned())
    }

    /// The node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
    }

    /// The key material of LDK's `ExpandedKey` (remote mode's `hello` sends it to the node
    /// side, which needs it locally).
    pub(crate) fn inbound_payment_key_bytes(&self) -> [u8; 32] {
        *self.shared.node.inbound_payment_key().expose_secret()
    }

    /// The script contestable outputs are swept to.
    pub fn destination_script(&self) -> ScriptBuf {
        self.shared.destination_script().clone()
    }

    /// The script cooperative closes pay us.
    pub fn shutdown_script(&self) -> ScriptBuf {
        self.shared.shutdown_script().clone()
    }

    /// Installs the evidence relay and the shared refusal log of LDK's test utilities (see
    /// `ldk_test_utils`).
    #[cfg(feature = "test-utils")]
    pub(crate) fn set_test_hooks(
        &self,
        relay: Arc<dyn crate::ldk_test_utils::EvidenceRelay>,
        refusals: Arc<Mutex<Vec<Refusal>>>,
    ) {
        if let Ok(mut slot) = self.shared.relay.lock() {
            *slot = Some(relay);
        }
        if let Ok(mut slot) = self.shared.refusal_sink.lock() {
            *slot = Some(refusals);
        }
    }

    /// Starts recording the commitment-round calls of every channel (feature `test-utils`).
    #[cfg(feature = "test-utils")]
    pub fn start_recording(&self) {
        if let Ok(mut r) = self.shared.recorder.lock() {
            *r = Some(Vec::new());
        }
    }

    /// The calls recorded since [`WardenKeysManager::start_recording`], with their channel.
    #[cfg(feature = "test-utils")]
    pub fn take_recorded(&self) -> Vec<([u8; 32], crate::ldk_test_utils::RecordedCall)> {
        self.shared.recorder.lock().ok().and_then(|mut r| r.take()).unwrap_or_default()
    }

    /// A copy of a channel's record (feature `test-utils`: benchmarks replay from it).
    #[cfg(feature = "test-utils")]
    pub fn snapshot_channel(&self, channel_keys_id: &[u8; 32]) -> Option<ChannelRecord> {
        let channels = self.shared.channels.lock().ok()?;
        let record = channels.get(channel_keys_id)?.lock().ok()?;
        Some(record.clone())
    }

    /// Replaces a channel's record (feature `test-utils`: benchmarks replay from it).
    #[cfg(feature = "test-utils")]
    pub fn restore_channel(&self, channel_keys_id: [u8; 32], record: ChannelRecord) {
        let funding = record.funding_pubkey;
        let slot = self.record_for(channel_keys_id, funding);
        if let Ok(mut r) = slot.lock() {
            *r = record;
        };
    }

    /// The `channel_keys_id` of every channel Warden holds a record of.
    pub fn channel_keys_ids(&self) -> Vec<[u8; 32]> {
        self.shared.channels.lock().map(|c| c.keys().copied().collect()).unwrap_or_default()
    }

    /// The `channel_keys_id` of the channel whose funding key (before any splice) is
    /// `funding_pubkey`.
    pub fn channel_keys_id_of(&self, funding_pubkey: &PublicKey) -> Option<[u8; 32]> {
        let channels = self.shared.channels.lock().ok()?;
        channels
            .iter()
            .find(|(_, r)| r.lock().is_ok_and(|r| r.funding_pubkey == *funding_pubkey))
            .map(|(id, _)| *id)
    }

    /// The channel parameters LDK last gave for a channel.
    pub fn channel_parameters(
        &self,
        channel_keys_id: &[u8; 32],
    ) -> Option<lightning::ln::chan_utils::ChannelTransactionParameters> {
        let channels = self.shared.channels.lock().ok()?;
        let record = channels.get(channel_keys_id)?;
        let record = record.lock().ok()?;
        record.params.clone()
    }

    /// The warden-core state of a channel, if any call named it.
    pub fn channel_state(&self, channel_keys_id: &[u8; 32]) -> Option<ChannelState> {
        let channels = self.shared.channels.lock().ok()?;
        let record = channels.get(channel_keys_id)?;
        let record = record.lock().ok()?;
        Some(record.state.clone())
    }

    fn record_for(
        &self,
        channel_keys_id: [u8; 32],
        funding_pubkey: PublicKey,
    ) -> Arc<Mutex<ChannelRecord>> {
        let fresh = || {
            let slot = self.shared.slot_of(&channel_keys_id);
            // A channel stored but not in the node record (a crash between the two writes):
            // its state, and its parameters from the next call that carries them.
            let state = self.shared.stored_state(&slot).unwrap_or_else(|| ChannelState::new(slot));
            Arc::new(Mutex::new(ChannelRecord::new(state, funding_pubkey)))
        };
        match self.shared.channels.lock() {
            Ok(mut channels) => Arc::clone(channels.entry(channel_keys_id).or_insert_with(fresh)),
            // A poisoned map: a record of its own, which refuses nothing it has not seen.
            Err(_) => fresh(),
        }
    }

    fn node_secret(&self, recipient: Recipient) -> Result<&warden_core::secret::PrivateKey, ()> {
        match recipient {
            Recipient::Node => Ok(self.shared.node.node_key()),
            Recipient::PhantomNode => Err(()),
        }
    }
}

impl EntropySource for WardenKeysManager {
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        let counter = self.entropy_counter.fetch_add(1, Ordering::Relaxed);
        let mut engine = sha256::Hash::engine();
        engine.input(self.entropy_key.expose_secret());
        engine.input(&counter.to_be_bytes());
        sha256::Hash::from_engine(engine).to_byte_array()
    }
}

impl NodeSigner for WardenKeysManager {
    fn get_expanded_key(&self) -> ExpandedKey {
        ExpandedKey::new(*self.shared.node.inbound_payment_key().expose_secret())
    }

    fn get_peer_storage_key(&self) -> PeerStorageKey {
        PeerStorageKey { inner: *self.shared.node.peer_storage_key().expose_secret() }
    }

    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        ReceiveAuthKey(*self.shared.node.receive_auth_key().expose_secret())
    }

    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        match recipient {
            Recipient::Node => Ok(self.node_id),
            Recipient::PhantomNode => Err(()),
        }
    }

    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        let mut secret = *self.node_secret(recipient)?.expose_secret();
        if let Some(tweak) = tweak {
            secret = secret.mul_tweak(tweak).map_err(|_| ())?;
        }
        let shared = SharedSecret::new(other_key, &secret);
        secret.non_secure_erase();
        Ok(shared)
    }

    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        let key = self.node_secret(recipient)?;
        // An invoice we sign asks others to pay us: it must name no other payee, and carry a
        // payment hash (`message-oracle`: the node key signs invoices of ours only).
        let payee = invoice.payee_pub_key().map(|p| p.0);
        let check = if payee.is_some_and(|p| p != self.node_id) {
            Err("the invoice names another payee")
        } else if invoice.payment_hash().is_none() {
            Err("the invoice has no payment hash")
        } else {
            Ok(())
        };
        if let Err(why) = check {
            self.shared.record_refusal(
                [0; 32],
                "sign_invoice",
                PolicyError::new(Rule::MessageOracle, why),
            );
            return Err(());
        }
        let digest = Message::from_digest(invoice.signable_hash());
        Ok(self.shared.secp.sign_ecdsa_recoverable(&digest, key.expose_secret()))
    }

    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        let keys = Keypair::from_secret_key(
            &self.shared.secp,
            self.shared.node.node_key().expose_secret(),
        );
        let aux = self.get_secure_random_bytes();
        Ok(self.shared.secp.sign_schnorr_with_aux_rand(
            invoice.tagged_hash().as_digest(),
            &keys,
            &aux,
        ))
    }

    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        // The message is typed by LDK (an announcement or an update): `gossip-structure` and
        // `message-oracle` hold by construction, the node key signs only its double SHA-256.
        let digest = sha256d::Hash::hash(&msg.encode()).to_byte_array();
        Ok(sign_hash_low_r(&self.shared.secp, self.shared.node.node_key(), &digest))
    }

    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        Ok(lightning::util::message_signing::sign(msg, self.shared.node.node_key().expose_secret()))
    }
}

impl SignerProvider for WardenKeysManager {
    type EcdsaSigner = WardenChannelSigner;

    fn generate_channel_keys_id(&self, _inbound: bool, user_channel_id: u128) -> [u8; 32] {
        if self.shared.node.scheme() == KeyScheme::CoreLightning {
            let dbid = self.next_cln_dbid.fetch_add(1, Ordering::AcqRel);
            return crate::keys::cln_channel_keys_id(dbid);
        }
        // LDK's layout: a counter, the starting time, and the user's channel id.
        let counter = self.channel_counter.fetch_add(1, Ordering::AcqRel);
        let mut id = [0u8; 32];
        let parts: [(&mut [u8], &[u8]); 4] = {
            let (a, rest) = id.split_at_mut(4);
            let (b, rest) = rest.split_at_mut(4);
            let (c, d) = rest.split_at_mut(8);
            [
                (a, &counter.to_be_bytes()),
                (b, &self.starting_time_nanos.to_be_bytes()),
                (c, &self.starting_time_secs.to_be_bytes()),
                (d, &user_channel_id.to_be_bytes()),
            ]
        };
        for (dst, src) in parts {
            dst.copy_from_slice(src);
        }
        id
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> WardenChannelSigner {
        let secrets = match self.shared.node.channel(&self.shared.secp, &channel_keys_id) {
            Ok(s) => s,
            // A channel id whose derivation fails (probability ~2^-128) gets the keys of the
            // id hashed once more; LDK's trait cannot refuse here.
            Err(_) => {
                let rehashed = sha256::Hash::hash(&channel_keys_id).to_byte_array();
                match self.shared.node.channel(&self.shared.secp, &rehashed) {
                    Ok(s) => s,
                    Err(_) => unreachable_keys(),
                }
            }
        };
        let funding = secrets.public_keys(&self.shared.secp).funding_pubkey;
        WardenChannelSigner::new(
            Arc::clone(&self.shared),
            secrets,
            self.record_for(channel_keys_id, funding),
        )
    }

    fn get_destination_script(&self, _channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        Ok(self.shared.destination_script().clone())
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        let key = bitcoin::CompressedPublicKey(
            self.shared.node.shutdown_key().public_key(&self.shared.secp),
        );
        Ok(ShutdownScript::new_p2wpkh(&key.wpubkey_hash()))
    }
}

#[allow(clippy::panic, reason = "two independent SHA-256 outputs both invalid keys cannot happen")]
fn unreachable_keys() -> ! {
    panic!("channel key derivation failed twice")
}

impl OutputSpender for WardenKeysManager {
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<LockTime>,
        secp_ctx: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        let checked = outputs
            .iter()
            .map(|o| &o.script_pubkey)
            .chain(core::iter::once(&change_destination_script))
            .find(|s| !self.shared.is_our_script(s));
        if let Some(script) = checked {
            self.shared.record_refusal(
                [0; 32],
                "spend_spendable_outputs",
                PolicyError::new(
                    Rule::SweepDestination,
                    format!("the sweep pays {script}, neither our wallet nor allowlisted"),
                ),
            );
            return Err(());
        }
        let (psbt, _weight) = SpendableOutputDescriptor::create_spendable_outputs_psbt(
            secp_ctx,
            descriptors,
            outputs,
            change_destination_script,
            feerate_sat_per_1000_weight,
            locktime,
        )?;
        spend::sign_sweep(&self.shared, descriptors, psbt)
    }
}
