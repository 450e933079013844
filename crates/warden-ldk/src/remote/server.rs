//! [`RemoteSignerServer`]: the signer's side. It dials out to the node side (the BOLT-08
//! initiator; it accepts no connection), and answers each call with the in-process
//! [`WardenKeysManager`] and its [`WardenChannelSigner`]s, so every policy rule runs here.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use bitcoin::secp256k1::{All, PublicKey, Scalar, Secp256k1};
use bitcoin::{Amount, TxOut};
use lightning::ln::chan_utils::ClosingTransaction;
use lightning::ln::msgs::UnsignedGossipMessage;
use lightning::sign::ecdsa::EcdsaChannelSigner;
use lightning::sign::{
    ChannelSigner, NodeSigner, OutputSpender, Recipient, SignerProvider, SpendableOutputDescriptor,
};
use warden_core::policy::Limits;
use warden_core::rng::EntropySource as _;
use warden_hsmd::hsm_secret::OsEntropy;
use warden_link::{
    ClientContext, EphemeralSecretKey, ErrorReply, LinkError, LinkMessage, LinkStream, Reply,
    StaticSecretKey,
};

use crate::remote::wire::{self, Call, Gossip, Out};
use crate::{WardenChannelSigner, WardenKeysManager};

/// How the signer reaches the node side.
#[derive(Clone, Debug)]
pub struct SignerConfig {
    /// The node side's listening address.
    pub node_addr: SocketAddr,
    /// The node side's pinned link key.
    pub node_key: PublicKey,
    /// A link silent this long is dropped and redialled (the node side pings more often).
    pub silence: Duration,
    /// The longest pause between two dials.
    pub max_backoff: Duration,
    /// The most channels the signer derives keys for (set it to the policy's
    /// `Limits::max_channels`): a call naming a channel the keys manager holds no record of
    /// is refused (`node-limits`) once the manager holds records of this many channels, so a
    /// compromised node cannot grow the signer's memory with made-up `channel_keys_id`s.
    pub max_channels: usize,
}

impl SignerConfig {
    /// Dials `node_addr`, pinning `node_key`; 30 s of silence, backoff up to 2 s, at most
    /// mainnet's 10,000 channels.
    pub fn new(node_addr: SocketAddr, node_key: PublicKey) -> SignerConfig {
        SignerConfig {
            node_addr,
            node_key,
            silence: Duration::from_secs(30),
            max_backoff: Duration::from_secs(2),
            max_channels: Limits::mainnet().max_channels,
        }
    }
}

struct Inner {
    keys: Arc<WardenKeysManager>,
    link_key: StaticSecretKey,
    config: SignerConfig,
    stopping: AtomicBool,
    current: Mutex<Option<TcpStream>>,
    served: Mutex<BTreeMap<u16, u64>>,
    refused: Mutex<BTreeMap<u16, u64>>,
    connects: Mutex<u64>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The signer's side of remote mode: a thread that dials the node side, keeps redialling
/// while it is not stopped, and answers calls in the order they arrive.
pub struct RemoteSignerServer {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl core::fmt::Debug for RemoteSignerServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RemoteSignerServer")
            .field("node_addr", &self.inner.config.node_addr)
            .finish_non_exhaustive()
    }
}

impl RemoteSignerServer {
    /// Starts the signer: `keys` answers, `link_key` is its link identity (the node side pins
    /// its public key).
    pub fn start(
        keys: Arc<WardenKeysManager>,
        link_key: StaticSecretKey,
        config: SignerConfig,
    ) -> io::Result<RemoteSignerServer> {
        let inner = Arc::new(Inner {
            keys,
            link_key,
            config,
            stopping: AtomicBool::new(false),
            current: Mutex::new(None),
            served: Mutex::new(BTreeMap::new()),
            refused: Mutex::new(BTreeMap::new()),
            connects: Mutex::new(0),
        });
        let run = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("warden-ldk-signer".into())
            .spawn(move || run.run())?;
        Ok(RemoteSignerServer { inner, thread: Some(thread) })
    }

    /// Calls answered so far, by tag (see [`crate::remote::wire`]), refusals included.
    pub fn served(&self) -> BTreeMap<u16, u64> {
        lock(&self.inner.served).clone()
    }

    /// Calls refused so far, by tag.
    pub fn refused(&self) -> BTreeMap<u16, u64> {
        lock(&self.inner.refused).clone()
    }

    /// How many links were established.
    pub fn connects(&self) -> u64 {
        *lock(&self.inner.connects)
    }

    /// The keys manager that answers.
    pub fn keys(&self) -> &Arc<WardenKeysManager> {
        &self.inner.keys
    }

    /// Stops the signer: the link is closed, the thread ends (a call being answered finishes
    /// first) and the keys manager is released by this server.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        if let Some(tcp) = lock(&self.inner.current).take() {
            let _ = tcp.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RemoteSignerServer {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Inner {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(20);
        let mut session = Session::new(self.config.max_channels);
        while !self.stopping() {
            if let Ok(link) = self.dial() {
                *lock(&self.connects) += 1;
                backoff = Duration::from_millis(20);
                self.serve(link, &mut session);
            }
            if let Some(tcp) = lock(&self.current).take() {
                let _ = tcp.shutdown(Shutdown::Both);
            }
            let mut left = backoff;
            while !left.is_zero() && !self.stopping() {
                let step = left.min(Duration::from_millis(20));
                std::thread::sleep(step);
                left = left.saturating_sub(step);
            }
            backoff = backoff.saturating_mul(2).min(self.config.max_backoff);
        }
    }

    fn dial(&self) -> Result<LinkStream<TcpStream>, LinkError> {
        let tcp = TcpStream::connect_timeout(&self.config.node_addr, Duration::from_secs(5))?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
        tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
        *lock(&self.current) = Some(tcp.try_clone()?);
        if self.stopping() {
            return Err(LinkError::Closed);
        }
        let mut entropy = OsEntropy::open()?;
        let ephemeral = (0..4)
            .find_map(|_| EphemeralSecretKey::from_bytes(entropy.random_32()).ok())
            .ok_or(LinkError::Closed)?;
        let link = LinkStream::connect(tcp, &self.link_key, self.config.node_key, ephemeral)?;
        link.get_ref().set_read_timeout(Some(self.config.silence))?;
        Ok(link)
    }

    /// Answers calls until the link fails or the signer stops.
    fn serve(&self, mut link: LinkStream<TcpStream>, session: &mut Session) {
        while !self.stopping() {
            let msg = match link.recv_message() {
                Ok(m) => m,
                Err(_) => return,
            };
            let answer = match msg {
                LinkMessage::Request(r) => {
                    let (tag, result) = session.request(&self.keys, &r.msg);
                    *lock(&self.served).entry(tag).or_default() += 1;
                    match result {
                        Ok(msg) => LinkMessage::Reply(Reply { id: r.id, msg }),
                        Err(description) => {
                            *lock(&self.refused).entry(tag).or_default() += 1;
                            LinkMessage::Error(ErrorReply { id: r.id, fatal: false, description })
                        }
                    }
                }
                LinkMessage::Ping(n) => LinkMessage::Pong(n),
                LinkMessage::Error(e) if e.id == 0 => return,
                LinkMessage::Pong(_) | LinkMessage::Unknown { .. } => continue,
                LinkMessage::Reply(_) | LinkMessage::Error(_) => return,
            };
            if link.send_message(&answer).is_err() {
                return;
            }
        }
    }
}

/// The channel signers of a signer's life (they outlive links).
struct Session {
    secp: Secp256k1<All>,
    signers: HashMap<[u8; 32], WardenChannelSigner>,
    refusals_seen: u64,
    /// [`SignerConfig::max_channels`].
    max_channels: usize,
}

/// The signer's side of call bodies without a link, for the fuzz target
/// (`fuzz/fuzz_targets/ldk_remote_calls.rs`) and tests: each body takes the same path a link
/// request takes (decoded with [`Call::decode`], then answered by the in-process keys
/// manager). Not a supported API.
#[doc(hidden)]
pub struct FuzzSession(Session);

impl core::fmt::Debug for FuzzSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FuzzSession").field("signers", &self.0.signers.len()).finish()
    }
}

impl FuzzSession {
    /// The keys manager the fuzz target answers with, and its seeds were made for: seed 1 of
    /// LDK's scheme on a test network, started at 1,700,000,000 (node "alice" of the
    /// in-process test harness, whose calls the seeds are).
    pub fn keys() -> Result<WardenKeysManager, crate::keys::DerivationError> {
        WardenKeysManager::new(
            &[1; 32],
            crate::KeyScheme::Ldk { v2_remote_key: true },
            crate::WardenConfig::test_network(),
            1_700_000_000,
            1,
        )
    }

    /// A session with a channel limit of `max_channels` (see [`SignerConfig::max_channels`]).
    pub fn new(max_channels: usize) -> FuzzSession {
        FuzzSession(Session::new(max_channels))
    }

    /// Decodes and answers one call body as the signer answers a link request: the reply's
    /// body, or the refusal's text.
    pub fn answer(&mut self, keys: &WardenKeysManager, body: &[u8]) -> Result<Vec<u8>, String> {
        self.0.request(keys, body).1
    }

    /// How many channel signers the session holds.
    pub fn signers(&self) -> usize {
        self.0.signers.len()
    }
}

/// Derives the signer of `id` into `signers` unless that would hold more than `max_channels`
/// channels: an id the keys manager already holds a record of (a stored channel, or one
/// named before) is always admitted, a new one only while the manager holds fewer than
/// `max_channels` records (`node-limits`; deriving a signer gives the id a record).
fn admit(
    signers: &mut HashMap<[u8; 32], WardenChannelSigner>,
    max_channels: usize,
    keys: &WardenKeysManager,
    id: [u8; 32],
) -> Result<(), String> {
    if signers.contains_key(&id) {
        return Ok(());
    }
    if keys.channel_state(&id).is_none() {
        let held = keys.channel_keys_ids().len();
        if held >= max_channels {
            return Err(format!(
                "node-limits: the signer holds keys for {held} channels, the limit is \
                 {max_channels}; a call for another channel is refused"
            ));
        }
    }
    signers.insert(id, keys.derive_channel_signer(id));
    Ok(())
}

/// Refuses a sweep with an amount above `MAX_MONEY`: LDK adds the amounts of a sweep's inputs
/// and outputs with `Amount`'s `+`, which panics past `u64::MAX` (it compares each sum to
/// `MAX_MONEY` only once it is made). With every amount at most `MAX_MONEY` and at most
/// [`wire::MAX_SWEEP_ITEMS`] of them, no sum overflows.
fn check_sweep_amounts(
    descriptors: &[SpendableOutputDescriptor],
    outputs: &[TxOut],
) -> Result<(), String> {
    let spent = descriptors.iter().map(|d| match d {
        SpendableOutputDescriptor::StaticOutput { output, .. } => output.value,
        SpendableOutputDescriptor::DelayedPaymentOutput(d) => d.output.value,
        SpendableOutputDescriptor::StaticPaymentOutput(d) => d.output.value,
    });
    let paid = outputs.iter().map(|o| o.value);
    match spent.chain(paid).find(|v| *v > Amount::MAX_MONEY) {
        Some(v) => Err(format!(
            "spend_spendable_outputs: an amount of {} sat, above MAX_MONEY",
            v.to_sat()
        )),
        None => Ok(()),
    }
}

/// The channel signer of `id`, derived once (callers [`admit`] `id` first).
fn signer<'a>(
    signers: &'a mut HashMap<[u8; 32], WardenChannelSigner>,
    keys: &WardenKeysManager,
    id: [u8; 32],
) -> &'a WardenChannelSigner {
    signers.entry(id).or_insert_with(|| keys.derive_channel_signer(id))
}

/// The request context the node side puts on every call (remote mode carries no hsmd client).
pub(crate) const CONTEXT: ClientContext =
    ClientContext { peer_id: [0; 33], dbid: 0, permissions: 0 };

impl Session {
    fn new(max_channels: usize) -> Session {
        Session { secp: Secp256k1::new(), signers: HashMap::new(), refusals_seen: 0, max_channels }
    }

    /// Decodes and answers a request's body: the call's tag (0 if it has none) and the reply's
    /// body or the refusal's text.
    fn request(&mut self, keys: &WardenKeysManager, msg: &[u8]) -> (u16, Result<Vec<u8>, String>) {
        match Call::decode(msg) {
            Ok(call) => (call.tag(), self.answer(keys, call)),
            Err(e) => (
                wire::split_tag(msg).map_or(0, |(t, _)| t),
                Err(format!("malformed call: {}", e.0)),
            ),
        }
    }

    /// Why the last call was refused: the rule Warden recorded, if it recorded one.
    fn refusal(&mut self, keys: &WardenKeysManager, op: &str) -> String {
        let count = keys.refusal_count();
        let fresh = count > self.refusals_seen;
        self.refusals_seen = count;
        match keys.last_refusal().as_ref() {
            Some(r) if fresh => format!("{}: {}", r.operation, r.error),
            _ => format!("{op}: refused"),
        }
    }

    fn answer(&mut self, keys: &WardenKeysManager, call: Call) -> Result<Vec<u8>, String> {
        let tag = call.tag();
        if let Some(id) = call.channel_keys_id() {
            admit(&mut self.signers, self.max_channels, keys, id)?;
        }
        let secp = &self.secp;
        let mut o = Out::tagged(tag);
        let r: Result<(), &'static str> = match call {
            Call::Hello => {
                let hello = wire::Hello {
                    node_id: keys.node_id(),
                    inbound_payment_key: keys.inbound_payment_key_bytes(),
                    peer_storage_key: keys.get_peer_storage_key().inner,
                    receive_auth_key: keys.get_receive_auth_key().0,
                    destination_script: keys.destination_script(),
                    shutdown_script: keys.shutdown_script(),
                };
                return Ok(hello.encode());
            }
            Call::NewChannel { inbound, user_channel_id, nonce: _ } => {
                let id = keys.generate_channel_keys_id(inbound, user_channel_id);
                admit(&mut self.signers, self.max_channels, keys, id)?;
                let pubkeys = signer(&mut self.signers, keys, id).pubkeys(secp);
                o.put(&id).put(&pubkeys);
                Ok(())
            }
            Call::ChannelPubkeys { id } => {
                let pubkeys = signer(&mut self.signers, keys, id).pubkeys(secp);
                o.put(&pubkeys);
                Ok(())
            }
            Call::Points { id, idx, count } => {
                let signer = signer(&mut self.signers, keys, id);
                let points: Vec<_> = (0..u64::from(count))
                    .map_while(|k| idx.checked_sub(k))
                    .map_while(|i| signer.get_per_commitment_point(i, secp).ok())
                    .collect();
                if points.is_empty() {
                    Err("get_per_commitment_point")
                } else {
                    o.put(&u16::try_from(points.len()).unwrap_or(0));
                    for p in &points {
                        o.put(p);
                    }
                    Ok(())
                }
            }
            Call::ReleaseSecret { id, idx } => signer(&mut self.signers, keys, id)
                .release_commitment_secret(idx)
                .map(|s| {
                    o.put(&s);
                })
                .map_err(|()| "release_commitment_secret"),
            Call::ValidateHolder { id, tx, preimages } => signer(&mut self.signers, keys, id)
                .validate_holder_commitment(&tx, preimages)
                .map_err(|()| "validate_holder_commitment"),
            Call::ValidateRevocation { id, idx, secret } => signer(&mut self.signers, keys, id)
                .validate_counterparty_revocation(idx, &secret)
                .map_err(|()| "validate_counterparty_revocation"),
            Call::SignCounterparty { id, params, tx, inbound, outbound } => {
                signer(&mut self.signers, keys, id)
                    .sign_counterparty_commitment(&params, &tx, inbound, outbound, secp)
                    .map(|(sig, htlcs)| {
                        o.sig(&sig).put(&u16::try_from(htlcs.len()).unwrap_or(u16::MAX));
                        for s in &htlcs {
                            o.sig(s);
                        }
                    })
                    .map_err(|()| "sign_counterparty_commitment")
            }
            Call::SignHolder { id, params, tx } => signer(&mut self.signers, keys, id)
                .sign_holder_commitment(&params, &tx, secp)
                .map(|s| {
                    o.sig(&s);
                })
                .map_err(|()| "sign_holder_commitment"),
            Call::SignClosing {
                id,
                params,
                to_holder,
                to_counterparty,
                holder_script,
                counterparty_script,
            } => match params.funding_outpoint {
                None => Err("sign_closing_transaction: no funding outpoint"),
                Some(funding) => {
                    let closing = ClosingTransaction::new(
                        to_holder,
                        to_counterparty,
                        holder_script,
                        counterparty_script,
                        funding.into_bitcoin_outpoint(),
                    );
                    signer(&mut self.signers, keys, id)
                        .sign_closing_transaction(&params, &closing, secp)
                        .map(|s| {
                            o.sig(&s);
                        })
                        .map_err(|()| "sign_closing_transaction")
                }
            },
            Call::SignJusticeOutput { id, params, tx, input, amount, key } => {
                signer(&mut self.signers, keys, id)
                    .sign_justice_revoked_output(&params, &tx, input as usize, amount, &key, secp)
                    .map(|s| {
                        o.sig(&s);
                    })
                    .map_err(|()| "sign_justice_revoked_output")
            }
            Call::SignJusticeHtlc { id, params, tx, input, amount, key, htlc } => {
                signer(&mut self.signers, keys, id)
                    .sign_justice_revoked_htlc(
                        &params,
                        &tx,
                        input as usize,
                        amount,
                        &key,
                        &htlc,
                        secp,
                    )
                    .map(|s| {
                        o.sig(&s);
                    })
                    .map_err(|()| "sign_justice_revoked_htlc")
            }
            Call::SignHolderHtlc { id, tx, input, descriptor } => {
                signer(&mut self.signers, keys, id)
                    .sign_holder_htlc_transaction(&tx, input as usize, &descriptor, secp)
                    .map(|s| {
                        o.sig(&s);
                    })
                    .map_err(|()| "sign_holder_htlc_transaction")
            }
            Call::SignCounterpartyHtlc { id, params, tx, input, amount, point, htlc } => {
                signer(&mut self.signers, keys, id)
                    .sign_counterparty_htlc_transaction(
                        &params,
                        &tx,
                        input as usize,
                        amount,
                        &point,
                        &htlc,
                        secp,
                    )
                    .map(|s| {
                        o.sig(&s);
                    })
                    .map_err(|()| "sign_counterparty_htlc_transaction")
            }
            Call::SignAnchor { id, params, tx, input } => signer(&mut self.signers, keys, id)
                .sign_holder_keyed_anchor_input(&params, &tx, input as usize, secp)
                .map(|s| {
                    o.sig(&s);
                })
                .map_err(|()| "sign_holder_keyed_anchor_input"),
            Call::SignAnnouncement { id, params, msg } => signer(&mut self.signers, keys, id)
                .sign_channel_announcement_with_funding_key(&params, &msg, secp)
                .map(|s| {
                    o.sig(&s);
                })
                .map_err(|()| "sign_channel_announcement_with_funding_key"),
            Call::Ecdh { point, tweak } => {
                let tweak = match tweak.map(Scalar::from_be_bytes) {
                    None => Ok(None),
                    Some(Ok(t)) => Ok(Some(t)),
                    Some(Err(_)) => Err("ecdh: the tweak is not a scalar"),
                };
                tweak.and_then(|t| {
                    keys.ecdh(Recipient::Node, &point, t.as_ref())
                        .map(|s| {
                            o.put(&s.secret_bytes());
                        })
                        .map_err(|()| "ecdh")
                })
            }
            Call::SignGossip(g) => {
                let msg = match &*g {
                    Gossip::ChannelAnnouncement(m) => UnsignedGossipMessage::ChannelAnnouncement(m),
                    Gossip::ChannelUpdate(m) => UnsignedGossipMessage::ChannelUpdate(m),
                    Gossip::NodeAnnouncement(m) => UnsignedGossipMessage::NodeAnnouncement(m),
                };
                keys.sign_gossip_message(msg)
                    .map(|s| {
                        o.sig(&s);
                    })
                    .map_err(|()| "sign_gossip_message")
            }
            Call::SpendOutputs { descriptors, outputs, change, feerate, locktime } => {
                check_sweep_amounts(&descriptors, &outputs)?;
                let refs: Vec<_> = descriptors.iter().collect();
                let locktime = locktime.map(bitcoin::absolute::LockTime::from_consensus);
                keys.spend_spendable_outputs(&refs, outputs, change, feerate, locktime, secp)
                    .map(|tx| {
                        o.put(&tx);
                    })
                    .map_err(|()| "spend_spendable_outputs")
            }
            // The in-process manager's policy runs: an invoice naming another payee, or
            // without a payment hash, is refused (`message-oracle`).
            Call::SignInvoice(raw) => keys
                .sign_invoice(&raw, Recipient::Node)
                .map(|s| wire::encode_recoverable(&mut o, &s))
                .map_err(|()| "sign_invoice"),
            Call::SignBolt12Invoice(bytes) => {
                match lightning::offers::invoice::UnsignedBolt12Invoice::try_from(bytes) {
                    Err(_) => Err("sign_bolt12_invoice: the invoice does not parse"),
                    Ok(invoice) => keys
                        .sign_bolt12_invoice(&invoice)
                        .map(|s| {
                            o.0.extend_from_slice(s.as_ref());
                        })
                        .map_err(|()| "sign_bolt12_invoice"),
                }
            }
            Call::SignMessage(msg) => keys
                .sign_message(&msg)
                .map(|text| {
                    o.0.extend_from_slice(text.as_bytes());
                })
                .map_err(|()| "sign_message"),
        };
        match r {
            Ok(()) => Ok(o.0),
            Err(op) => Err(self.refusal(keys, op)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

    use bitcoin::hashes::Hash;
    use bitcoin::Txid;
    use lightning::chain::transaction::OutPoint;

    use super::*;

    fn keys() -> WardenKeysManager {
        FuzzSession::keys().unwrap()
    }

    fn static_output(keys: &WardenKeysManager, n: u8, sat: u64) -> SpendableOutputDescriptor {
        SpendableOutputDescriptor::StaticOutput {
            outpoint: OutPoint { txid: Txid::from_byte_array([n; 32]), index: 0 },
            output: TxOut {
                value: Amount::from_sat(sat),
                script_pubkey: keys.destination_script(),
            },
            channel_keys_id: None,
        }
    }

    /// A sweep whose amounts add up past `u64::MAX` (LDK's `Amount` addition panics on
    /// overflow) is refused before LDK builds it.
    #[test]
    fn a_sweep_whose_amounts_overflow_is_refused() {
        let keys = keys();
        let ours = keys.destination_script();
        let calls = [
            Call::SpendOutputs {
                descriptors: vec![static_output(&keys, 1, 1), static_output(&keys, 2, u64::MAX)],
                outputs: Vec::new(),
                change: ours.clone(),
                feerate: 253,
                locktime: None,
            },
            Call::SpendOutputs {
                descriptors: vec![static_output(&keys, 1, 100_000)],
                outputs: vec![
                    TxOut { value: Amount::from_sat(1), script_pubkey: ours.clone() },
                    TxOut { value: Amount::from_sat(u64::MAX), script_pubkey: ours.clone() },
                ],
                change: ours,
                feerate: 253,
                locktime: None,
            },
        ];
        let mut session = FuzzSession::new(4);
        for call in calls {
            let answer = session.answer(&keys, &call.encode());
            assert!(answer.as_ref().is_err_and(|e| e.contains("MAX_MONEY")), "{answer:?}");
        }
    }

    /// Calls naming made-up channels get signers up to the channel limit, then are refused
    /// (`node-limits`) with the session and the keys manager unchanged; a channel already
    /// held is still served, and so is one the keys manager held a record of before.
    #[test]
    fn the_signers_of_a_session_are_bounded_by_the_channel_limit() {
        let keys = keys();
        let known = [200; 32];
        let _ = keys.derive_channel_signer(known);
        let mut session = FuzzSession::new(3);
        let pubkeys = |n: u8| Call::ChannelPubkeys { id: [n; 32] }.encode();
        assert!(session.answer(&keys, &pubkeys(1)).is_ok());
        assert!(session.answer(&keys, &pubkeys(2)).is_ok());
        for n in 3..40 {
            let answer = session.answer(&keys, &pubkeys(n));
            assert!(answer.as_ref().is_err_and(|e| e.contains("node-limits")), "{answer:?}");
        }
        let new_channel =
            Call::NewChannel { inbound: false, user_channel_id: 1, nonce: [0; 32] }.encode();
        let answer = session.answer(&keys, &new_channel);
        assert!(answer.as_ref().is_err_and(|e| e.contains("node-limits")), "{answer:?}");
        assert_eq!(keys.channel_keys_ids().len(), 3);
        assert_eq!(session.signers(), 2);
        assert!(session.answer(&keys, &pubkeys(1)).is_ok());
        assert!(session.answer(&keys, &pubkeys(200)).is_ok(), "a channel the manager holds");
        assert_eq!(session.signers(), 3);
    }

    /// Refused calls do not grow the signer's memory: the keys manager keeps the newest
    /// `MAX_KEPT_REFUSALS` and counts the rest, and each refusal's text still names its own
    /// rule.
    #[test]
    fn refusals_are_kept_up_to_a_bound() {
        use crate::manager::MAX_KEPT_REFUSALS;
        let keys = keys();
        let mut session = FuzzSession::new(4);
        let release = Call::ReleaseSecret { id: [9; 32], idx: (1 << 48) - 1 }.encode();
        let calls = MAX_KEPT_REFUSALS + 200;
        for _ in 0..calls {
            let answer = session.answer(&keys, &release);
            assert!(answer.as_ref().is_err_and(|e| e.starts_with("release_commitment_secret: ")));
        }
        assert_eq!(keys.refusals().len(), MAX_KEPT_REFUSALS);
        assert_eq!(keys.refusal_count(), calls as u64);
        assert_eq!(keys.last_refusal().map(|r| r.operation), Some("release_commitment_secret"));
    }
}
