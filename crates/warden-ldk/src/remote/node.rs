//! The node side: [`RemoteKeysManager`] and [`RemoteChannelSigner`], LDK's signer traits
//! answered by a [`crate::remote::RemoteSignerServer`] over warden-link.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::absolute::LockTime;
use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::secp256k1::ecdh::SharedSecret;
use bitcoin::secp256k1::ecdsa::{RecoverableSignature, Signature};
use bitcoin::secp256k1::{schnorr, All, Message, PublicKey, Scalar, Secp256k1, SecretKey};
use bitcoin::{ScriptBuf, Transaction, TxOut, Txid};
use lightning::bolt11_invoice::RawBolt11Invoice;
use lightning::ln::chan_utils::{
    ChannelPublicKeys, ChannelTransactionParameters, ClosingTransaction, CommitmentTransaction,
    HTLCOutputInCommitment, HolderCommitmentTransaction,
};
use lightning::ln::channel_keys::{DelayedPaymentBasepoint, HtlcBasepoint, RevocationBasepoint};
use lightning::ln::inbound_payment::ExpandedKey;
use lightning::ln::msgs::{UnsignedChannelAnnouncement, UnsignedGossipMessage};
use lightning::ln::script::ShutdownScript;
use lightning::offers::invoice::UnsignedBolt12Invoice;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, EntropySource, HTLCDescriptor, NodeSigner, OutputSpender, PeerStorageKey,
    ReceiveAuthKey, Recipient, SignerProvider, SpendableOutputDescriptor,
};
use lightning::types::payment::PaymentPreimage;
use lightning::util::ser::Writeable;
use warden_core::rng::EntropySource as _;
use warden_hsmd::hsm_secret::OsEntropy;
use warden_link::StaticSecretKey;

use crate::remote::link::{Answer, Link, RemoteRefusal};
use crate::remote::wire::{self, Call, Gossip, WireError};

/// How the node side waits for its signer.
#[derive(Clone, Debug)]
pub struct RemoteConfig {
    /// The signer's pinned link key.
    pub signer_key: PublicKey,
    /// The longest a call LDK cannot retry waits for its answer (and `listen` for the first
    /// signer's `hello`).
    pub wait: Duration,
    /// The interval of the node side's pings; a link silent for three is dropped.
    pub heartbeat: Duration,
    /// How many per-commitment points one `points` call fetches ahead.
    pub points_ahead: u16,
}

impl RemoteConfig {
    /// Pins `signer_key`: 10 s waits, 10 s heartbeat, 16 points ahead.
    pub fn new(signer_key: PublicKey) -> RemoteConfig {
        RemoteConfig {
            signer_key,
            wait: Duration::from_secs(10),
            heartbeat: Duration::from_secs(10),
            points_ahead: 16,
        }
    }
}

/// Why [`RemoteKeysManager::listen`] could not start.
#[derive(Debug)]
pub enum RemoteError {
    /// A thread could not be started, or the OS gave no randomness.
    Io(io::Error),
    /// No signer said `hello` within the configured wait.
    NoSigner,
    /// The signer refused `hello`.
    Refused(String),
    /// The signer's `hello` does not decode.
    Wire(WireError),
}

impl core::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RemoteError::Io(e) => write!(f, "remote signer link: {e}"),
            RemoteError::NoSigner => f.write_str("no remote signer connected in time"),
            RemoteError::Refused(r) => write!(f, "the remote signer refused hello: {r}"),
            RemoteError::Wire(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RemoteError {}

/// What the node side keeps for the session: the values `hello` fetched, and the channels'
/// public keys.
struct Session {
    hello: wire::Hello,
    shutdown: Option<ShutdownScript>,
    pubkeys: Mutex<HashMap<[u8; 32], ChannelPublicKeys>>,
    /// A signature over nothing, for the one call (`sign_splice_shared_input`) that cannot
    /// fail: no transaction can use it.
    unusable_sig: Signature,
}

/// LDK's keys interface on the node side, answered by a remote Warden signer.
pub struct RemoteKeysManager {
    link: Arc<Link>,
    session: Arc<Session>,
    entropy_key: [u8; 32],
    entropy_counter: AtomicU64,
    points_ahead: u16,
}

impl core::fmt::Debug for RemoteKeysManager {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RemoteKeysManager")
            .field("node_id", &self.session.hello.node_id)
            .field("link", &self.link)
            .finish_non_exhaustive()
    }
}

fn refused(a: Option<Answer>) -> Result<Vec<u8>, ()> {
    match a {
        Some(Answer::Ok(bytes)) => Ok(bytes),
        _ => Err(()),
    }
}

/// Sends `call` and waits (bounded) for its answer, decoded by `decode`: no answer, a
/// refusal or a malformed answer is `Err` (never a panic).
fn call_and_wait<T>(
    link: &Link,
    call: &Call,
    decode: impl FnOnce(&[u8]) -> Result<T, WireError>,
) -> Result<T, ()> {
    let bytes = refused(link.call_blocking(&call.encode()))?;
    wire::answer_body(call.tag(), &bytes).and_then(decode).map_err(|_| ())
}

impl RemoteKeysManager {
    /// Listens on `listener` for the signer of `config`, with `key` as the node side's link
    /// identity (the signer pins its public key), and waits up to `config.wait` for the
    /// signer's `hello`. The listener is bound by the caller, so that the signer can be told
    /// its address first.
    pub fn listen(
        listener: TcpListener,
        config: RemoteConfig,
        key: StaticSecretKey,
    ) -> Result<RemoteKeysManager, RemoteError> {
        let link = Link::listen(listener, key, config.signer_key, config.wait, config.heartbeat)
            .map_err(RemoteError::Io)?;
        let bytes = match link.call_blocking(&Call::Hello.encode()) {
            Some(Answer::Ok(b)) => b,
            Some(Answer::Refused(r)) => return Err(RemoteError::Refused(r)),
            None => return Err(RemoteError::NoSigner),
        };
        let hello = wire::answer_body(wire::HELLO, &bytes)
            .and_then(wire::Hello::decode)
            .map_err(RemoteError::Wire)?;
        let secp = Secp256k1::new();
        let mut entropy = OsEntropy::open().map_err(RemoteError::Io)?;
        let entropy_key = entropy.random_32();
        let throwaway = (0..4)
            .find_map(|_| SecretKey::from_slice(&entropy.random_32()).ok())
            .ok_or_else(|| RemoteError::Io(io::Error::other("no valid key from the OS")))?;
        let unusable_sig = secp.sign_ecdsa(&Message::from_digest([0; 32]), &throwaway);
        let shutdown = ShutdownScript::try_from(hello.shutdown_script.clone()).ok();
        Ok(RemoteKeysManager {
            link,
            session: Arc::new(Session {
                hello,
                shutdown,
                pubkeys: Mutex::new(HashMap::new()),
                unusable_sig,
            }),
            entropy_key,
            entropy_counter: AtomicU64::new(0),
            points_ahead: config.points_ahead.clamp(1, wire::MAX_POINTS),
        })
    }

    /// The address the node side listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.link.local_addr()
    }

    /// Sets what runs when answers arrive (on a thread of its own): wire it to
    /// `ChannelManager::signer_unblocked(None)` and `ChainMonitor::signer_unblocked(None)`.
    pub fn set_unblocked_callback(&self, f: impl Fn() + Send + Sync + 'static) {
        self.link.set_callback(Arc::new(f));
    }

    /// Whether a signer is connected now.
    pub fn is_connected(&self) -> bool {
        self.link.is_connected()
    }

    /// Waits (at most `timeout`) for a signer to be connected.
    pub fn wait_connected(&self, timeout: Duration) -> bool {
        self.link.wait_connected(timeout)
    }

    /// Waits (at most `timeout`) until no call is in flight and the callback ran after the
    /// last answer.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        self.link.wait_idle(timeout)
    }

    /// Distinct calls sent to the signer so far.
    pub fn calls_sent(&self) -> u64 {
        self.link.sent()
    }

    /// Calls sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.link.in_flight()
    }

    /// The refusals the signer returned (the last [`crate::remote::link::REFUSALS_KEPT`]),
    /// oldest first.
    pub fn refusals(&self) -> Vec<RemoteRefusal> {
        self.link.refusals()
    }

    /// The node id (fetched at start).
    pub fn node_id(&self) -> PublicKey {
        self.session.hello.node_id
    }

    /// The script cooperative closes pay us (fetched at start).
    pub fn shutdown_script(&self) -> ScriptBuf {
        self.session.hello.shutdown_script.clone()
    }

    fn blocking_sig(&self, call: &Call) -> Result<Signature, ()> {
        call_and_wait(&self.link, call, wire::decode_sig)
    }
}

/// Decodes an answer's signature; a malformed one is `Err` (never a panic).
fn sig_of(tag: u16, a: Option<Answer>) -> Result<Signature, ()> {
    let bytes = refused(a)?;
    wire::answer_body(tag, &bytes).and_then(wire::decode_sig).map_err(|_| ())
}

impl EntropySource for RemoteKeysManager {
    /// Served locally: a hash of a key drawn from the OS at start and a counter (LDK's
    /// entropy is not the signer's secret, and LDK asks for it on every path).
    fn get_secure_random_bytes(&self) -> [u8; 32] {
        let n = self.entropy_counter.fetch_add(1, Ordering::Relaxed);
        let mut engine = sha256::Hash::engine();
        engine.input(b"warden-ldk remote entropy");
        engine.input(&self.entropy_key);
        engine.input(&n.to_be_bytes());
        sha256::Hash::from_engine(engine).to_byte_array()
    }
}

impl NodeSigner for RemoteKeysManager {
    fn get_expanded_key(&self) -> ExpandedKey {
        ExpandedKey::new(self.session.hello.inbound_payment_key)
    }

    fn get_peer_storage_key(&self) -> PeerStorageKey {
        PeerStorageKey { inner: self.session.hello.peer_storage_key }
    }

    fn get_receive_auth_key(&self) -> ReceiveAuthKey {
        ReceiveAuthKey(self.session.hello.receive_auth_key)
    }

    fn get_node_id(&self, recipient: Recipient) -> Result<PublicKey, ()> {
        match recipient {
            Recipient::Node => Ok(self.session.hello.node_id),
            Recipient::PhantomNode => Err(()),
        }
    }

    fn ecdh(
        &self,
        recipient: Recipient,
        other_key: &PublicKey,
        tweak: Option<&Scalar>,
    ) -> Result<SharedSecret, ()> {
        if matches!(recipient, Recipient::PhantomNode) {
            return Err(());
        }
        let call = Call::Ecdh { point: *other_key, tweak: tweak.map(|t| t.to_be_bytes()) };
        let secret: [u8; 32] =
            call_and_wait(&self.link, &call, |b| wire::decode_one(b, "shared secret"))?;
        Ok(SharedSecret::from_bytes(secret))
    }

    /// Waited for (bounded): the signer checks the invoice names no other payee and carries
    /// a payment hash. The signature is checked here against the hash the node side computed
    /// and the node id: an answer for another invoice, or from another key, is `Err`.
    fn sign_invoice(
        &self,
        invoice: &RawBolt11Invoice,
        recipient: Recipient,
    ) -> Result<RecoverableSignature, ()> {
        if matches!(recipient, Recipient::PhantomNode) {
            return Err(());
        }
        let call = Call::SignInvoice(Box::new(invoice.clone()));
        let sig = call_and_wait(&self.link, &call, wire::decode_recoverable)?;
        let digest = Message::from_digest(invoice.signable_hash());
        let secp = Secp256k1::verification_only();
        match secp.recover_ecdsa(&digest, &sig) {
            Ok(key) if key == self.session.hello.node_id => Ok(sig),
            _ => Err(()),
        }
    }

    /// Waited for (bounded). The signature is checked here against the invoice's tagged hash
    /// and its signing key (an invoice whose experimental records LDK's serialization does
    /// not carry, or one signed for a key other than the node's, is `Err`).
    fn sign_bolt12_invoice(
        &self,
        invoice: &UnsignedBolt12Invoice,
    ) -> Result<schnorr::Signature, ()> {
        let mut bytes = Vec::new();
        invoice.write(&mut bytes).map_err(|_| ())?;
        let call = Call::SignBolt12Invoice(bytes);
        let sig = call_and_wait(&self.link, &call, wire::decode_schnorr)?;
        let key = invoice.signing_pubkey().x_only_public_key().0;
        Secp256k1::verification_only()
            .verify_schnorr(&sig, invoice.tagged_hash().as_digest(), &key)
            .map(|()| sig)
            .map_err(|_| ())
    }

    fn sign_gossip_message(&self, msg: UnsignedGossipMessage) -> Result<Signature, ()> {
        let gossip = match msg {
            UnsignedGossipMessage::ChannelAnnouncement(m) => Gossip::ChannelAnnouncement(m.clone()),
            UnsignedGossipMessage::ChannelUpdate(m) => Gossip::ChannelUpdate(m.clone()),
            UnsignedGossipMessage::NodeAnnouncement(m) => Gossip::NodeAnnouncement(m.clone()),
        };
        self.blocking_sig(&Call::SignGossip(Box::new(gossip)))
    }

    /// Waited for (bounded); a message above [`wire::MAX_SIGNED_MESSAGE`] bytes is `Err`, and
    /// so is an answer that does not verify with the node id.
    fn sign_message(&self, msg: &[u8]) -> Result<String, ()> {
        if msg.len() > wire::MAX_SIGNED_MESSAGE {
            return Err(());
        }
        let call = Call::SignMessage(msg.to_vec());
        let text = call_and_wait(&self.link, &call, wire::decode_text)?;
        // Checked here: a signature by another key is `Err`.
        if lightning::util::message_signing::verify(msg, &text, &self.session.hello.node_id) {
            Ok(text)
        } else {
            Err(())
        }
    }
}

impl SignerProvider for RemoteKeysManager {
    type EcdsaSigner = RemoteChannelSigner;

    fn generate_channel_keys_id(&self, inbound: bool, user_channel_id: u128) -> [u8; 32] {
        let nonce = self.get_secure_random_bytes();
        let call = Call::NewChannel { inbound, user_channel_id, nonce };
        let answer = call_and_wait(&self.link, &call, wire::decode_new_channel).ok();
        match answer {
            Some((id, keys)) => {
                if let Ok(mut m) = self.session.pubkeys.lock() {
                    m.insert(id, keys);
                }
                id
            }
            // No signer: an id of our own (the signer derives keys for any id); the channel's
            // keys are asked for again by `pubkeys`.
            None => self.get_secure_random_bytes(),
        }
    }

    fn derive_channel_signer(&self, channel_keys_id: [u8; 32]) -> RemoteChannelSigner {
        RemoteChannelSigner {
            link: Arc::clone(&self.link),
            session: Arc::clone(&self.session),
            id: channel_keys_id,
            points_ahead: self.points_ahead,
        }
    }

    fn get_destination_script(&self, _channel_keys_id: [u8; 32]) -> Result<ScriptBuf, ()> {
        Ok(self.session.hello.destination_script.clone())
    }

    fn get_shutdown_scriptpubkey(&self) -> Result<ShutdownScript, ()> {
        self.session.shutdown.clone().ok_or(())
    }
}

impl OutputSpender for RemoteKeysManager {
    /// Not asynchronous in LDK: a bounded wait. The signer checks the destinations
    /// (`sweep-destination`) and signs.
    fn spend_spendable_outputs(
        &self,
        descriptors: &[&SpendableOutputDescriptor],
        outputs: Vec<TxOut>,
        change_destination_script: ScriptBuf,
        feerate_sat_per_1000_weight: u32,
        locktime: Option<LockTime>,
        _: &Secp256k1<All>,
    ) -> Result<Transaction, ()> {
        let items = u16::try_from(descriptors.len().max(outputs.len())).map_err(|_| ())?;
        if items > wire::MAX_SWEEP_ITEMS {
            return Err(());
        }
        let call = Call::SpendOutputs {
            descriptors: descriptors.iter().map(|d| (*d).clone()).collect(),
            outputs,
            change: change_destination_script,
            feerate: feerate_sat_per_1000_weight,
            locktime: locktime.map(|l| l.to_consensus_u32()),
        };
        call_and_wait(&self.link, &call, |b| wire::decode_one(b, "sweep"))
    }
}

/// One channel's signer on the node side.
#[derive(Clone)]
pub struct RemoteChannelSigner {
    link: Arc<Link>,
    session: Arc<Session>,
    id: [u8; 32],
    points_ahead: u16,
}

impl core::fmt::Debug for RemoteChannelSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RemoteChannelSigner").finish_non_exhaustive()
    }
}

impl RemoteChannelSigner {
    /// An asynchronous signature call: the cached answer, or `Err` after sending it.
    fn sig(&self, call: Call) -> Result<Signature, ()> {
        let tag = call.tag();
        sig_of(tag, self.link.call(&call.encode()))
    }

    /// Keys no signature of this channel will match (the signer was unreachable when LDK
    /// asked for the channel's keys): the channel cannot open, nothing is at risk.
    fn unusable_keys(&self) -> ChannelPublicKeys {
        let k = self.session.hello.node_id;
        ChannelPublicKeys {
            funding_pubkey: k,
            revocation_basepoint: RevocationBasepoint::from(k),
            payment_point: k,
            delayed_payment_basepoint: DelayedPaymentBasepoint::from(k),
            htlc_basepoint: HtlcBasepoint::from(k),
        }
    }
}

impl ChannelSigner for RemoteChannelSigner {
    /// Points are public and fixed: a cached one is served; otherwise `points_ahead` of them
    /// are fetched at once with a bounded wait (LDK 0.2 does not retry this call everywhere:
    /// `channel_reestablish` expects it to succeed).
    fn get_per_commitment_point(&self, idx: u64, _: &Secp256k1<All>) -> Result<PublicKey, ()> {
        // The windows are aligned, so every call for an index in a window is the same call.
        let ahead = u64::from(self.points_ahead);
        let from_start = crate::channel::INITIAL_COMMITMENT_NUMBER.checked_sub(idx).ok_or(())?;
        let offset = from_start % ahead;
        let top = idx.checked_add(offset).ok_or(())?;
        let call = Call::Points { id: self.id, idx: top, count: self.points_ahead };
        let points = call_and_wait(&self.link, &call, wire::decode_points)?;
        points.get(usize::try_from(offset).map_err(|_| ())?).copied().ok_or(())
    }

    fn release_commitment_secret(&self, idx: u64) -> Result<[u8; 32], ()> {
        let bytes = refused(self.link.call(&Call::ReleaseSecret { id: self.id, idx }.encode()))?;
        wire::answer_body(wire::RELEASE_SECRET, &bytes)
            .and_then(|b| wire::decode_one(b, "secret"))
            .map_err(|_| ())
    }

    /// LDK closes the channel on `Err` here: the call is sent and `Ok` returned, unless the
    /// signer already refused this very commitment. The signer answers a channel's calls in
    /// order, so the revocation that follows is refused if the validation was.
    fn validate_holder_commitment(
        &self,
        holder_tx: &HolderCommitmentTransaction,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
    ) -> Result<(), ()> {
        let call = Call::ValidateHolder {
            id: self.id,
            tx: Box::new(holder_tx.clone()),
            preimages: outbound_htlc_preimages,
        };
        match self.link.call(&call.encode()) {
            Some(Answer::Refused(_)) => Err(()),
            _ => Ok(()),
        }
    }

    /// As `validate_holder_commitment`: sent, `Ok` unless already refused; the next
    /// counterparty commitment is refused by the signer if this was.
    fn validate_counterparty_revocation(&self, idx: u64, secret: &SecretKey) -> Result<(), ()> {
        let call = Call::ValidateRevocation { id: self.id, idx, secret: *secret };
        match self.link.call(&call.encode()) {
            Some(Answer::Refused(_)) => Err(()),
            _ => Ok(()),
        }
    }

    fn pubkeys(&self, _: &Secp256k1<All>) -> ChannelPublicKeys {
        if let Some(k) = self.session.pubkeys.lock().ok().and_then(|m| m.get(&self.id).cloned()) {
            return k;
        }
        let call = Call::ChannelPubkeys { id: self.id };
        let keys = call_and_wait(&self.link, &call, |b| {
            wire::decode_one::<ChannelPublicKeys>(b, "channel public keys")
        })
        .ok();
        match keys {
            Some(k) => {
                if let Ok(mut m) = self.session.pubkeys.lock() {
                    m.insert(self.id, k.clone());
                }
                k
            }
            None => self.unusable_keys(),
        }
    }

    /// Not remote yet (splices are refused by Warden anyway): the base funding key, which a
    /// splice's parameters will not match, so the signer signs nothing for it.
    fn new_funding_pubkey(&self, _: Txid, secp: &Secp256k1<All>) -> PublicKey {
        self.pubkeys(secp).funding_pubkey
    }

    fn channel_keys_id(&self) -> [u8; 32] {
        self.id
    }
}

impl EcdsaChannelSigner for RemoteChannelSigner {
    fn sign_counterparty_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &CommitmentTransaction,
        inbound_htlc_preimages: Vec<PaymentPreimage>,
        outbound_htlc_preimages: Vec<PaymentPreimage>,
        _: &Secp256k1<All>,
    ) -> Result<(Signature, Vec<Signature>), ()> {
        let call = Call::SignCounterparty {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: Box::new(commitment_tx.clone()),
            inbound: inbound_htlc_preimages,
            outbound: outbound_htlc_preimages,
        };
        let bytes = refused(self.link.call(&call.encode()))?;
        wire::answer_body(wire::SIGN_COUNTERPARTY, &bytes)
            .and_then(wire::decode_sigs)
            .map_err(|_| ())
    }

    fn sign_holder_commitment(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        commitment_tx: &HolderCommitmentTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignHolder {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: Box::new(commitment_tx.clone()),
        })
    }

    /// LDK's tests only (feature `test-utils`): not remote, refused.
    #[cfg(feature = "test-utils")]
    fn unsafe_sign_holder_commitment(
        &self,
        _: &ChannelTransactionParameters,
        _: &HolderCommitmentTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        Err(())
    }

    fn sign_justice_revoked_output(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignJusticeOutput {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: justice_tx.clone(),
            input: u32::try_from(input).map_err(|_| ())?,
            amount,
            key: *per_commitment_key,
        })
    }

    fn sign_justice_revoked_htlc(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        justice_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_key: &SecretKey,
        htlc: &HTLCOutputInCommitment,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignJusticeHtlc {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: justice_tx.clone(),
            input: u32::try_from(input).map_err(|_| ())?,
            amount,
            key: *per_commitment_key,
            htlc: htlc.clone(),
        })
    }

    fn sign_holder_htlc_transaction(
        &self,
        htlc_tx: &Transaction,
        input: usize,
        htlc_descriptor: &HTLCDescriptor,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignHolderHtlc {
            id: self.id,
            tx: htlc_tx.clone(),
            input: u32::try_from(input).map_err(|_| ())?,
            descriptor: Box::new(htlc_descriptor.clone()),
        })
    }

    fn sign_counterparty_htlc_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        htlc_tx: &Transaction,
        input: usize,
        amount: u64,
        per_commitment_point: &PublicKey,
        htlc: &HTLCOutputInCommitment,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignCounterpartyHtlc {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: htlc_tx.clone(),
            input: u32::try_from(input).map_err(|_| ())?,
            amount,
            point: *per_commitment_point,
            htlc: htlc.clone(),
        })
    }

    fn sign_closing_transaction(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        closing_tx: &ClosingTransaction,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignClosing {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            to_holder: closing_tx.to_holder_value_sat(),
            to_counterparty: closing_tx.to_counterparty_value_sat(),
            holder_script: closing_tx.to_holder_script().to_owned(),
            counterparty_script: closing_tx.to_counterparty_script().to_owned(),
        })
    }

    fn sign_holder_keyed_anchor_input(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        anchor_tx: &Transaction,
        input: usize,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        self.sig(Call::SignAnchor {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            tx: anchor_tx.clone(),
            input: u32::try_from(input).map_err(|_| ())?,
        })
    }

    /// Not asynchronous in LDK: a bounded wait.
    fn sign_channel_announcement_with_funding_key(
        &self,
        channel_parameters: &ChannelTransactionParameters,
        msg: &UnsignedChannelAnnouncement,
        _: &Secp256k1<All>,
    ) -> Result<Signature, ()> {
        let call = Call::SignAnnouncement {
            id: self.id,
            params: Box::new(channel_parameters.clone()),
            msg: Box::new(msg.clone()),
        };
        sig_of(call.tag(), self.link.call_blocking(&call.encode()))
    }

    /// Not remote: Warden refuses splices; the signature returned is over nothing.
    fn sign_splice_shared_input(
        &self,
        _: &ChannelTransactionParameters,
        _: &Transaction,
        _: usize,
        _: &Secp256k1<All>,
    ) -> Signature {
        self.session.unusable_sig
    }
}
