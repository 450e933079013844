//! `warden run`: the signer daemon. It accepts no connection: it dials out to the proxy
//! (`warden-hsmd` in proxy mode), authenticates with the seed's `warden/link` key and the
//! pinned proxy key (BOLT-08 Noise_XK, the signer as initiator), then answers the proxy's
//! framed hsmd requests with a [`Signer`] built from the seed at the proxy's `init`.
//!
//! - `init` is handled in order on the reading thread (so every later request sees the signer
//!   it made); the same `init` again (the proxy replays it on every new link) gets the same
//!   reply without rebuilding anything; every other request runs on its own thread, so slow
//!   requests of one client do not hold up the others.
//! - A lost link is redialled with exponential backoff (100 ms doubling up to `--max-backoff`);
//!   the signer, its durable store and every channel's state outlive the link, so a request
//!   the proxy re-sends is answered as it was the first time.
//! - SIGTERM or SIGINT closes the link, lets the requests in progress finish (their state is
//!   persisted before they reply) and exits 0.
//! - `status.json` in the data directory ([`crate::status`]) says what the daemon is doing:
//!   rewritten every 10 s, at each link change and at each refusal; with the store's head and
//!   each replica's health.
//! - With `metrics-listen`, a Prometheus endpoint on loopback ([`crate::metrics`]): requests
//!   by type, refusals by rule, latency, channels, the store head, the link.
//! - The store: the local redb file in `warden/`, and the PostgreSQL replicas of the config's
//!   `[store] replicas` (plus `WARDEN_REPLICA_POSTGRES`, as in local mode).

use std::collections::BTreeSet;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use secp256k1::PublicKey;
use warden_core::rng::EntropySource;
use warden_hsmd::durable::SystemClock;
use warden_hsmd::hsm_secret::{LoadedSecret, OsEntropy};
use warden_hsmd::policy::PolicyEvent;
use warden_hsmd::replica::{Replica, REPLICA_ENV};
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer, StoreChoice};
use warden_link::{
    ClientContext as LinkClient, EphemeralSecretKey, ErrorReply, LinkError, LinkMessage,
    LinkStream, LinkWriter, Reply, StaticSecretKey,
};
use warden_wire::frame::peek_type;
use warden_wire::msg::Init;
use warden_wire::{Message, NodeId, Permissions};
use zeroize::Zeroizing;

use tracing::{debug, error, info, warn};

use crate::metrics::{Gauges, Metrics};
use crate::status::{self, ChannelSummary, Refusal, ReplicaStatus, Snapshot, StoreStatus};
use crate::CliError;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What `warden run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    /// The proxy's address (`HOST:PORT`).
    pub connect: String,
    /// The proxy's pinned link key.
    pub proxy_key: PublicKey,
    /// A link with no message for this long is dropped and redialled.
    pub silence: Duration,
    /// The longest wait between two dials.
    pub max_backoff: Duration,
    /// The data directory (durable store and policy in `warden/`).
    pub data_dir: PathBuf,
    /// The metrics endpoint, already bound ([`crate::metrics`]).
    pub metrics: Option<TcpListener>,
    /// PostgreSQL replicas of the store (connection strings), from the config.
    pub replicas: Vec<String>,
}

/// The signer made by the proxy's `init`.
struct Initialised {
    body: Zeroizing<Vec<u8>>,
    reply: Vec<u8>,
    signer: Arc<Signer>,
}

struct Daemon {
    options: RunOptions,
    seed: LoadedSecret,
    link_key: StaticSecretKey,
    signer: Mutex<Option<Initialised>>,
    stopping: AtomicBool,
    /// The current connection, to shut down on a signal.
    current: Mutex<Option<TcpStream>>,
    entropy: Mutex<OsEntropy>,
    /// What `status.json` says; written under this lock.
    status: Mutex<Snapshot>,
    /// The channels (peer id, dbid) requests came for.
    channels: Mutex<BTreeSet<([u8; 33], u64)>>,
    /// The counters of the metrics endpoint (kept even when it is off: they are cheap).
    metrics: Metrics,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why one link session ended.
enum SessionEnd {
    /// The link failed or closed.
    Link(LinkError),
    /// The proxy broke the protocol.
    Protocol(&'static str),
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(
    mut options: RunOptions,
    seed: LoadedSecret,
    link_key: StaticSecretKey,
) -> Result<(), CliError> {
    let metrics_listener = options.metrics.take();
    let entropy =
        OsEntropy::open().map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
    let daemon = Arc::new(Daemon {
        options,
        seed,
        link_key,
        signer: Mutex::new(None),
        stopping: AtomicBool::new(false),
        current: Mutex::new(None),
        entropy: Mutex::new(entropy),
        status: Mutex::new(Snapshot::default()),
        channels: Mutex::new(BTreeSet::new()),
        metrics: Metrics::default(),
    });
    {
        let mut s = lock(&daemon.status);
        s.version = status::VERSION;
        s.started_at = status::now();
        s.pid = std::process::id();
        s.link.proxy = daemon.options.connect.clone();
        s.link.since = s.started_at;
    }
    let on_signal = Arc::clone(&daemon);
    crate::signals::on_termination(move |name| {
        info!(signal = name, "stopping: finishing the requests in progress");
        on_signal.stopping.store(true, Ordering::SeqCst);
        if let Some(s) = lock(&on_signal.current).as_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    })
    .map_err(|e| CliError::new(format!("cannot set up signal handling: {e}")))?;
    // After the signal mask is set: every thread started from here on inherits it.
    daemon.write_status();
    let ticker = Arc::clone(&daemon);
    std::thread::Builder::new()
        .name("status".into())
        .spawn(move || {
            while !ticker.stopping.load(Ordering::SeqCst) {
                ticker.pause(status::INTERVAL);
                ticker.write_status();
            }
        })
        .map_err(|e| CliError::new(format!("cannot start the status thread: {e}")))?;
    if let Some(listener) = metrics_listener {
        let addr = listener
            .local_addr()
            .map_err(|e| CliError::new(format!("cannot read the metrics address: {e}")))?;
        let (render, stop) = (Arc::clone(&daemon), Arc::clone(&daemon));
        crate::metrics::spawn(listener, Arc::new(move || render.render_metrics()), move || {
            stop.stopping.load(Ordering::SeqCst)
        })
        .map_err(|e| CliError::new(format!("cannot start the metrics thread: {e}")))?;
        lock(&daemon.status).metrics = Some(format!("http://{addr}/metrics"));
        info!(listen = %addr, "serving metrics at http://{addr}/metrics");
    }
    info!(
        link_key = %daemon.link_key.public_key(),
        proxy = %daemon.options.connect,
        proxy_key = %daemon.options.proxy_key,
        "signer starting: dialling the proxy"
    );

    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    let mut backoff = MIN_BACKOFF;
    while !daemon.stopping.load(Ordering::SeqCst) {
        match daemon.dial() {
            Ok(link) => {
                backoff = MIN_BACKOFF;
                let end = Arc::clone(&daemon).serve(link, &mut workers);
                let reason = match end {
                    SessionEnd::Link(e) => describe(&e),
                    SessionEnd::Protocol(what) => format!("the proxy {what}"),
                };
                if !daemon.stopping.load(Ordering::SeqCst) {
                    warn!(reason = %reason, "link closed");
                }
                daemon.link_changed(false, Some(reason));
            }
            Err(e) => warn!(
                proxy = %daemon.options.connect,
                reason = %e,
                retry_ms = backoff.as_millis() as u64,
                "cannot reach the proxy"
            ),
        }
        daemon.pause(backoff);
        backoff = backoff.saturating_mul(2).min(daemon.options.max_backoff.max(MIN_BACKOFF));
    }
    for w in workers {
        let _ = w.join();
    }
    daemon.link_changed(false, Some("stopped".to_owned()));
    info!("stopped");
    Ok(())
}

/// A link error as an operator reads it.
fn describe(e: &LinkError) -> String {
    let detail = std::error::Error::source(e).map(ToString::to_string).unwrap_or_default();
    match e {
        LinkError::Handshake(_) => format!(
            "{e}: {detail} (is the proxy at this address the one paired with `warden pair \
             --proxy-key`?)"
        ),
        LinkError::Io(io) if closed(io) => "the proxy closed the connection".to_owned(),
        LinkError::Io(io)
            if matches!(io.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
        {
            "no message from the proxy within the heartbeat timeout".to_owned()
        }
        _ => format!("{e}: {detail}"),
    }
}

/// Whether the peer closed the connection.
fn closed(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset)
}

impl Daemon {
    /// Records the link going up or down, and writes the snapshot.
    fn link_changed(&self, connected: bool, reason: Option<String>) {
        self.metrics.link(connected);
        {
            let mut s = lock(&self.status);
            if s.link.connected != connected || connected {
                s.link.since = status::now();
            }
            s.link.connected = connected;
            if connected {
                s.link.connects += 1;
            } else {
                s.link.last_error = reason;
            }
        }
        self.write_status();
    }

    /// Writes `status.json`: the counters, the policy log's counts and each channel served.
    fn write_status(&self) {
        let signer = lock(&self.signer).as_ref().map(|i| Arc::clone(&i.signer));
        let channels: Vec<([u8; 33], u64)> = lock(&self.channels).iter().copied().collect();
        let mut s = lock(&self.status);
        if let Some(signer) = &signer {
            let log = signer.policy_log();
            s.refusals_by_rule =
                log.refusals().into_iter().map(|(r, n)| (r.tag().to_owned(), n)).collect();
            s.warnings_by_rule =
                log.warnings().into_iter().map(|(r, n)| (r.tag().to_owned(), n)).collect();
            s.channels =
                channels.iter().map(|(peer, dbid)| summarize(signer, peer, *dbid)).collect();
            let audit = signer.audit_log();
            s.store = audit.store_health().map(|(head_seq, replicas)| StoreStatus {
                head_seq,
                replicas: replicas
                    .into_iter()
                    .map(|(name, lagging)| ReplicaStatus { name, lagging })
                    .collect(),
                alarms: audit.open_alarms().to_vec(),
            });
        }
        s.sequence += 1;
        s.written_at = status::now();
        if let Err(e) = status::write(&self.options.data_dir, &s) {
            warn!(reason = %e, "cannot write status.json");
        }
    }

    /// The metrics page: the counters, and the gauges read now.
    fn render_metrics(&self) -> String {
        let signer = lock(&self.signer).as_ref().map(|i| Arc::clone(&i.signer));
        let gauges = Gauges {
            channels: lock(&self.channels).len() as u64,
            head_seq: signer.and_then(|s| s.audit_log().store_health()).map(|(seq, _)| seq),
        };
        self.metrics.render(&gauges)
    }

    /// Sleeps `d`, waking early when stopping.
    fn pause(&self, d: Duration) {
        let step = Duration::from_millis(50);
        let mut left = d;
        while !left.is_zero() && !self.stopping.load(Ordering::SeqCst) {
            let s = left.min(step);
            std::thread::sleep(s);
            left = left.saturating_sub(s);
        }
    }

    fn ephemeral(&self) -> Result<EphemeralSecretKey, String> {
        let mut entropy = lock(&self.entropy);
        for _ in 0..4 {
            let mut bytes = Zeroizing::new([0u8; 32]);
            entropy.fill_bytes(&mut *bytes);
            if let Ok(k) = EphemeralSecretKey::from_bytes(*bytes) {
                return Ok(k);
            }
        }
        Err("no valid ephemeral key from /dev/urandom".to_owned())
    }

    /// Connects and runs the handshake.
    fn dial(&self) -> Result<LinkStream<TcpStream>, String> {
        let addrs: Vec<SocketAddr> = self
            .options
            .connect
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve it ({e})"))?
            .collect();
        let mut last = String::from("it resolves to no address");
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(tcp) => {
                    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
                    tcp.set_read_timeout(Some(CONNECT_TIMEOUT)).map_err(|e| e.to_string())?;
                    tcp.set_write_timeout(Some(CONNECT_TIMEOUT)).map_err(|e| e.to_string())?;
                    let shutdown = tcp.try_clone().map_err(|e| e.to_string())?;
                    *lock(&self.current) = Some(shutdown);
                    let link = LinkStream::connect(
                        tcp,
                        &self.link_key,
                        self.options.proxy_key,
                        self.ephemeral()?,
                    )
                    .map_err(|e| match &e {
                        LinkError::Io(io) if closed(io) => format!(
                            "the proxy closed the connection during the handshake: this signer \
                             pins another proxy key than the proxy's at {addr} (compare `warden \
                             pair` with `warden-hsmd --proxy-pubkey` on the node host)"
                        ),
                        _ => describe(&e),
                    })?;
                    link.get_ref()
                        .set_read_timeout(Some(self.options.silence))
                        .map_err(|e| e.to_string())?;
                    return Ok(link);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }

    /// Answers the proxy's requests until the link ends.
    fn serve(
        self: Arc<Self>,
        link: LinkStream<TcpStream>,
        workers: &mut Vec<JoinHandle<()>>,
    ) -> SessionEnd {
        let (mut reader, writer) = match link.split(|t| Ok((t.try_clone()?, t))) {
            Ok(halves) => halves,
            Err(e) => return SessionEnd::Link(e),
        };
        info!(proxy = %self.options.connect, "connected to the proxy");
        self.link_changed(true, None);
        let writer = Arc::new(Mutex::new(writer));
        let mut received = false;
        loop {
            workers.retain(|w| !w.is_finished());
            let msg = match reader.recv_message() {
                Ok(m) => m,
                Err(LinkError::Io(io)) if closed(&io) && !received => {
                    return SessionEnd::Protocol(
                        "closed the link right after the handshake: it does not pin this \
                         signer's key (set WARDEN_SIGNER_PUBKEY on the node host to the key \
                         `warden pair` prints)",
                    )
                }
                Err(e) => return SessionEnd::Link(e),
            };
            received = true;
            match msg {
                LinkMessage::Request(mut r) => {
                    let body = Zeroizing::new(std::mem::take(&mut r.msg));
                    let (id, client) = (r.id, r.client);
                    if peek_type(&body).ok() == Some(Init::TYPE) {
                        let start = Instant::now();
                        let answer = self.init(id, &body);
                        self.metrics.request(&body, start.elapsed());
                        if matches!(answer, LinkMessage::Error(_)) {
                            self.metrics.failed();
                        }
                        send(&writer, &answer);
                        self.write_status();
                        continue;
                    }
                    let daemon = Arc::clone(&self);
                    let w = Arc::clone(&writer);
                    let spawned =
                        std::thread::Builder::new().name("request".into()).spawn(move || {
                            let answer = daemon.answer(id, client, &body);
                            send(&w, &answer);
                        });
                    match spawned {
                        Ok(h) => workers.push(h),
                        Err(e) => {
                            error!(reason = %e, "cannot start a request thread");
                            let refusal = error(id, true, "the signer is out of threads");
                            send(&writer, &refusal);
                        }
                    }
                }
                LinkMessage::Ping(n) => send(&writer, &LinkMessage::Pong(n)),
                LinkMessage::Pong(_) | LinkMessage::Unknown { .. } => {}
                LinkMessage::Error(e) if e.id == 0 => {
                    warn!(reason = %e.description, "the proxy refused this signer");
                    return SessionEnd::Protocol("ended the link");
                }
                LinkMessage::Reply(_) | LinkMessage::Error(_) => {
                    return SessionEnd::Protocol("sent a reply to the signer")
                }
            }
        }
    }

    /// Handles the proxy's `init`: the same `init` again gets the same reply; another one
    /// makes a new signer.
    fn init(&self, id: u64, body: &[u8]) -> LinkMessage {
        let mut slot = lock(&self.signer);
        if let Some(done) = slot.as_ref().filter(|i| i.body.as_slice() == body) {
            return LinkMessage::Reply(Reply { id, msg: done.reply.clone() });
        }
        // The old signer (and its store) is closed before the new one opens the same store:
        // requests still running on it (they hold a reference) finish first (bounded).
        if let Some(old) = slot.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while Arc::strong_count(&old.signer) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let nonces = match OsEntropy::open() {
            Ok(e) => e,
            Err(e) => return error(id, true, &format!("cannot open /dev/urandom: {e}")),
        };
        let store = match self.replicas() {
            Ok(None) => {
                StoreChoice::Durable { clock: Box::new(SystemClock), entropy: Box::new(nonces) }
            }
            Ok(Some(replicas)) => StoreChoice::Replicated {
                clock: Box::new(SystemClock),
                entropy: Box::new(nonces),
                replicas,
            },
            Err(e) => {
                error!(reason = %e, "cannot reach a replica of the store");
                return error(id, true, &e);
            }
        };
        match Signer::init_with_secret(body, &self.seed, &self.options.data_dir, store) {
            Ok((signer, reply)) => {
                info!(node_id = %signer.node_id(), "initialised");
                {
                    let mut s = lock(&self.status);
                    s.node_id = Some(signer.node_id().to_string());
                    s.network = Init::decode(body)
                        .ok()
                        .and_then(|i| bitcoin::Network::from_chain_hash(i.chainparams))
                        .map(|n| n.to_string());
                }
                // Every policy refusal and demoted warning, in the signer's own log.
                signer.policy_log().set_sink(Arc::new(|event: &PolicyEvent| {
                    warn!(rule = event.error.rule.tag(), kind = ?event.kind, "{event}");
                }));
                *slot = Some(Initialised {
                    body: Zeroizing::new(body.to_vec()),
                    reply: reply.clone(),
                    signer: Arc::new(signer),
                });
                LinkMessage::Reply(Reply { id, msg: reply })
            }
            Err(e) => {
                error!(reason = %e, "init failed");
                error(id, true, &e.to_string())
            }
        }
    }

    /// The replicas to open at `init`: `None` when the config names none (the signer then
    /// reads `WARDEN_REPLICA_POSTGRES` itself, as in local mode); else the config's, and the
    /// environment's if it names another one.
    fn replicas(&self) -> Result<Option<Vec<Replica>>, String> {
        if self.options.replicas.is_empty() {
            return Ok(None);
        }
        let secp = secp256k1::Secp256k1::new();
        let keys =
            warden_core::keys::NodeKeys::derive(&secp, &self.seed.seed, bitcoin::NetworkKind::Main)
                .map_err(|e| format!("cannot derive the node keys: {e}"))?;
        let node_id = NodeId::from(keys.node_id().to_public_key());
        let mut urls: Vec<(String, &str)> = self
            .options
            .replicas
            .iter()
            .enumerate()
            .map(|(i, url)| (format!("postgres (store.replicas[{i}])"), url.as_str()))
            .collect();
        let env = std::env::var(REPLICA_ENV).ok().filter(|u| !u.trim().is_empty());
        if let Some(url) = env.as_deref() {
            if !urls.iter().any(|(_, u)| u.trim() == url.trim()) {
                urls.push((format!("postgres ({REPLICA_ENV})"), url));
            }
        }
        urls.into_iter()
            .map(|(name, url)| Replica::postgres(&name, url, &node_id).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    /// Answers one request with the current signer, and counts it.
    fn answer(&self, id: u64, client: LinkClient, body: &[u8]) -> LinkMessage {
        let start = Instant::now();
        let answer = self.answer_uncounted(id, client, body);
        self.metrics.request(body, start.elapsed());
        answer
    }

    fn answer_uncounted(&self, id: u64, client: LinkClient, body: &[u8]) -> LinkMessage {
        let signer = lock(&self.signer).as_ref().map(|i| Arc::clone(&i.signer));
        let Some(signer) = signer else {
            self.metrics.failed();
            return error(
                id,
                true,
                "the signer is not initialised: the proxy must send init first",
            );
        };
        let ctx = ClientContext {
            id: NodeId::from_bytes(client.peer_id),
            dbid: client.dbid,
            permissions: Permissions(client.permissions),
        };
        if client.dbid != 0 {
            lock(&self.channels).insert((client.peer_id, client.dbid));
        }
        match signer.handle(&ctx, body) {
            Ok(Outcome::Reply(msg) | Outcome::NewClient { reply: msg, .. }) => {
                debug!(id, msg_type = peek_type(body).unwrap_or(0), dbid = client.dbid, "answered");
                lock(&self.status).answered += 1;
                LinkMessage::Reply(Reply { id, msg })
            }
            Err(e) => {
                match &e {
                    BadRequestError::Refused(p) => self.metrics.refused(p.rule.tag()),
                    BadRequestError::PermissionDenied { .. } => {
                        self.metrics.refused("node-permission")
                    }
                    _ => self.metrics.failed(),
                }
                let t = peek_type(body).unwrap_or(0);
                let reason = e.to_string();
                warn!(msg_type = t, dbid = client.dbid, reason = %reason, "refused a request");
                {
                    let mut s = lock(&self.status);
                    s.refused += 1;
                    s.recent_refusals.push(Refusal {
                        at: status::now(),
                        rule: status::rule_tag(&reason),
                        msg_type: t,
                        dbid: client.dbid,
                        reason: reason.clone(),
                    });
                    let excess = s.recent_refusals.len().saturating_sub(status::RECENT);
                    s.recent_refusals.drain(..excess);
                }
                self.write_status();
                error(id, false, &reason)
            }
        }
    }
}

/// What the signer holds of channel (`peer`, `dbid`).
fn summarize(signer: &Signer, peer: &[u8; 33], dbid: u64) -> ChannelSummary {
    let hex: String = peer.iter().map(|b| format!("{b:02x}")).collect();
    let mut c = ChannelSummary {
        peer: hex,
        dbid,
        state: "unknown".to_owned(),
        ..ChannelSummary::default()
    };
    let Some(state) = signer.channel_state(&NodeId::from_bytes(*peer), dbid) else { return c };
    c.counterparty_next_commitment = state.counterparty.next_number;
    match &state.setup {
        None => c.state = "new".to_owned(),
        Some(setup) => {
            c.state = if state.is_closing() { "closing" } else { "open" }.to_owned();
            c.value_sat = Some(setup.channel_value.0);
            c.funding = Some(setup.funding_outpoint.to_string());
            c.outbound = Some(setup.is_outbound);
        }
    }
    c
}

fn error(id: u64, fatal: bool, text: &str) -> LinkMessage {
    let mut description = text.to_owned();
    if description.len() > warden_link::frame::MAX_DESCRIPTION_LEN {
        let mut cut = warden_link::frame::MAX_DESCRIPTION_LEN;
        while !description.is_char_boundary(cut) {
            cut -= 1;
        }
        description.truncate(cut);
    }
    LinkMessage::Error(ErrorReply { id, fatal, description })
}

/// Sends on the link; a failure is left to the reading side to notice (the proxy re-sends
/// what it did not get an answer to).
fn send(writer: &Mutex<LinkWriter<TcpStream>>, msg: &LinkMessage) {
    if let Err(e) = lock(writer).send_message(msg) {
        let _ = e;
    }
}
