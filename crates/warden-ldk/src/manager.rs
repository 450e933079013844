//! [`WardenKeysManager`]: LDK's `EntropySource`, `NodeSigner`, `SignerProvider` and
//! `OutputSpender`, with the channel records shared by every copy of a channel's signer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, sha256d, Hash, HashEngine};
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{schnorr, All, Keypair, Message, PublicKey, Scalar, Secp256k1};
use bitcoin::{Script, ScriptBuf, Transaction, TxOut};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::{
    EntropySource, NodeSigner, OutputSpender, PeerStorageKey, ReceiveAuthKey, Recipient,
    SignerProvider, SpendableOutputDescriptor,
};
use lightning::util::ser::Writeable;
use warden_core::channel::{ChannelSlot, ChannelState};
use warden_core::keys::NodeId;
use warden_core::policy::onchain::Allowlist;
use warden_core::policy::{Limits, PolicyError, Rule};
use warden_core::secret::Secret32;
use warden_core::sign::sign_hash_low_r;
use warden_core::units::Dbid;

use crate::channel::ChannelRecord;
use crate::keys::{DerivationError, KeyScheme, NodeSecrets};
use crate::signer::WardenChannelSigner;
use crate::spend;

/// What the policy checks against.
#[derive(Clone, Debug)]
pub struct WardenConfig {
    /// The numeric limits (`Limits::mainnet()` or `Limits::test_network()`).
    pub limits: Limits,
    /// Scripts that count as ours for closes and sweeps besides our own.
    pub allowlist: Allowlist,
}

impl WardenConfig {
    /// The defaults of test networks (regtest, testnet, signet), nothing allowlisted.
    pub fn test_network() -> WardenConfig {
        WardenConfig { limits: Limits::test_network(), allowlist: Allowlist::default() }
    }

    /// The mainnet defaults, nothing allowlisted.
    pub fn mainnet() -> WardenConfig {
        WardenConfig { limits: Limits::mainnet(), allowlist: Allowlist::default() }
    }
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
    destination_script: ScriptBuf,
    shutdown_script: ScriptBuf,
    channels: Mutex<HashMap<[u8; 32], Arc<Mutex<ChannelRecord>>>>,
    refusals: Mutex<Vec<Refusal>>,
    next_dbid: AtomicU64,
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
            log.push(refusal);
        }
    }

    /// Whether `script` pays us: our destination or shutdown script, or the allowlist.
    pub(crate) fn is_our_script(&self, script: &Script) -> bool {
        script == self.destination_script.as_script()
            || script == self.shutdown_script.as_script()
            || self.config.allowlist.contains(script)
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
    starting_time_secs: u64,
    starting_time_nanos: u32,
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
    pub fn new(
        seed: &[u8; 32],
        scheme: KeyScheme,
        config: WardenConfig,
        starting_time_secs: u64,
        starting_time_nanos: u32,
    ) -> Result<WardenKeysManager, DerivationError> {
        let secp = Secp256k1::new();
        let seed = Secret32::new(*seed);
        let node = NodeSecrets::derive(&secp, &seed, scheme)?;
        let node_id = node.node_key().public_key(&secp);
        let destination_script = node.destination_script(&secp);
        let shutdown_script = node.shutdown_script(&secp);
        let mut engine = sha256::Hash::engine();
        engine.input(b"warden-ldk entropy");
        engine.input(seed.expose_secret());
        engine.input(&starting_time_secs.to_be_bytes());
        engine.input(&starting_time_nanos.to_be_bytes());
        let entropy_key = Secret32::new(sha256::Hash::from_engine(engine).to_byte_array());
        Ok(WardenKeysManager {
            shared: Arc::new(Shared {
                secp,
                node,
                config,
                destination_script,
                shutdown_script,
                channels: Mutex::new(HashMap::new()),
                refusals: Mutex::new(Vec::new()),
                next_dbid: AtomicU64::new(1),
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
            starting_time_secs,
            starting_time_nanos,
        })
    }

    /// Every refusal so far, oldest first.
    pub fn refusals(&self) -> Vec<Refusal> {
        self.shared.refusals.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The node id.
    pub fn node_id(&self) -> PublicKey {
        self.node_id
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
            let dbid = Dbid(self.shared.next_dbid.fetch_add(1, Ordering::Relaxed));
            let slot = ChannelSlot { peer: NodeId(self.node_id), dbid };
            Arc::new(Mutex::new(ChannelRecord::new(ChannelState::new(slot), funding_pubkey)))
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
