//! Proxy mode: `warden-hsmd` serves lightningd's file descriptors exactly as in local mode
//! ([`crate::server`]), but every request is answered by a remote signer (`warden run`) over
//! warden-link instead of an in-process [`crate::signer::Signer`].
//!
//! ## Configuration (environment)
//!
//! lightningd starts hsmd with arguments it chooses, so proxy mode is configured through the
//! environment lightningd is started with (inherited by its subdaemons):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `WARDEN_SIGNER_PUBKEY` | the signer's link public key (hex, `warden pair` prints it); setting it turns proxy mode on | unset: local mode |
//! | `WARDEN_PROXY_LISTEN` | address the proxy listens on for the signer | `127.0.0.1:51735` |
//! | `WARDEN_PROXY_WAIT_SECS` | how long a request waits for an answer (no signer connected, or a slow one) before it is refused | 300 |
//! | `WARDEN_PROXY_HEARTBEAT_SECS` | interval of the proxy's pings; a link silent for three intervals is dropped | 10 |
//! | `WARDEN_PROXY_STATUS_SECS` | interval of the proxy's status requests (below) | 300 |
//!
//! The proxy's own static key is `<lightning dir>/warden/proxy.key` (32 bytes, mode 0600,
//! created on first use; `warden-hsmd --proxy-pubkey` prints its public key for pairing). The
//! address actually bound is written to `<lightning dir>/warden/proxy.addr`.
//!
//! ## The signer's status on the node's side
//!
//! After `init`, and then every `WARDEN_PROXY_STATUS_SECS`, the proxy asks the signer for its
//! status (`warden_status`, a Warden extension message on the master's context) and writes
//! `<lightning dir>/warden/signer-status.json` (mode 0600, replaced atomically): the time, whether
//! the signer answered, and its answer (node id, channels, store sequence, refusals and
//! warnings by rule, alarms) or why it did not. The node's operator reads it there; nothing of
//! it is secret.
//!
//! ## The link
//!
//! The proxy **listens**; the signer dials out (it accepts no connection). The signer is the
//! BOLT-08 initiator and names the proxy's key; the proxy accepts only the pinned signer key.
//! One link carries every client's requests at once, each with its own id ([`warden_link::frame`]).
//! While no signer is connected, requests wait (up to the configured time): lightningd sees a
//! slow hsmd, not a dead one. Only one signer is served at a time: while a link is up, another
//! signer that connects is told so (an error with id 0) and closed, so two signers never keep
//! two diverging channel states; a dead link is dropped when its socket closes or after three
//! silent heartbeats. When a signer (re)connects, the `init` request is replayed first,
//! then every request still waiting for its answer is re-sent; the signer answers a repeated
//! request as it answered the first time (its channel state makes retries idempotent), and a
//! second answer to a request already answered is dropped.
//!
//! lightningd's `init` may carry the `hsm_secret`'s passphrase (`hsmd_init_tlvs`
//! `hsm_passphrase`) and, from older versions, its encryption key (`hsm_encryption_key`). The
//! remote signer loads its own seed and needs neither: the proxy removes both before it keeps
//! `init` (in a zeroizing buffer, for the replays) or sends it anywhere ([`strip_init`]).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use secp256k1::PublicKey;
use warden_core::rng::EntropySource;
use warden_link::{
    ClientContext as LinkClient, EphemeralSecretKey, ErrorReply, LinkError, LinkMessage,
    LinkReader, LinkStream, LinkWriter, Request, StaticSecretKey,
};
use warden_wire::frame::peek_type;
use warden_wire::msg::{
    ClientHsmfd, ClientHsmfdReply, Init, InitReplyV4, WardenStatus, WardenStatusReply,
};
use warden_wire::{Message, NodeId};
use zeroize::Zeroizing;

use crate::durable::STORE_DIR;
use crate::hsm_secret::OsEntropy;
use crate::permissions;
use crate::server::{Backend, Handler};
use crate::signer::{BadRequestError, ClientContext, InitError, Outcome};

/// Names the signer's link public key; setting it turns proxy mode on.
pub const SIGNER_KEY_ENV: &str = "WARDEN_SIGNER_PUBKEY";
/// The address to listen on for the signer.
pub const LISTEN_ENV: &str = "WARDEN_PROXY_LISTEN";
/// How long a request waits for its answer, in seconds.
pub const WAIT_ENV: &str = "WARDEN_PROXY_WAIT_SECS";
/// The heartbeat interval, in seconds.
pub const HEARTBEAT_ENV: &str = "WARDEN_PROXY_HEARTBEAT_SECS";
/// The interval of the status requests, in seconds.
pub const STATUS_ENV: &str = "WARDEN_PROXY_STATUS_SECS";
/// The file in `<lightning dir>/warden/` the signer's last status is written to.
pub const STATUS_FILE: &str = "signer-status.json";
/// The default listening address (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:51735";
/// The proxy's static key file in `<lightning dir>/warden/`.
pub const KEY_FILE: &str = "proxy.key";
/// The file in `<lightning dir>/warden/` the bound address is written to.
pub const ADDR_FILE: &str = "proxy.addr";

/// How long a signer may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one write to the signer may block.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Proxy mode's settings (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyConfig {
    /// Where to listen for the signer.
    pub listen: SocketAddr,
    /// The signer's pinned link public key.
    pub signer_key: PublicKey,
    /// How long a request waits for its answer.
    pub wait: Duration,
    /// The interval of the proxy's pings.
    pub heartbeat: Duration,
    /// The interval of the proxy's status requests.
    pub status: Duration,
}

/// The proxy-mode environment is invalid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyConfigError {
    /// `WARDEN_PROXY_LISTEN` (or another proxy variable) is set without the signer's key.
    MissingSignerKey {
        /// The variable that was set.
        set: &'static str,
    },
    /// The signer key is not a hex compressed public key.
    BadSignerKey,
    /// The listening address does not parse.
    BadAddress {
        /// The value given.
        value: String,
    },
    /// A number of seconds does not parse or is zero.
    BadSeconds {
        /// The variable.
        name: &'static str,
        /// The value given.
        value: String,
    },
}

impl fmt::Display for ProxyConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProxyConfigError::MissingSignerKey { set } => write!(
                f,
                "{set} is set but {SIGNER_KEY_ENV} is not: set it to the key `warden pair` prints \
                 on the signer host, or unset {set} for local mode"
            ),
            ProxyConfigError::BadSignerKey => write!(
                f,
                "{SIGNER_KEY_ENV} is not a 66-hex-digit public key: copy it again from `warden pair`"
            ),
            ProxyConfigError::BadAddress { value } => write!(
                f,
                "{LISTEN_ENV}={value:?} is not an address: use IP:PORT, for example {DEFAULT_LISTEN}"
            ),
            ProxyConfigError::BadSeconds { name, value } => {
                write!(f, "{name}={value:?} is not a positive whole number of seconds")
            }
        }
    }
}

impl std::error::Error for ProxyConfigError {}

impl ProxyConfig {
    /// Reads the configuration from the process environment: `None` in local mode.
    pub fn from_env() -> Result<Option<ProxyConfig>, ProxyConfigError> {
        ProxyConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from `var` (the environment, in the binary).
    pub fn from_vars(
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<ProxyConfig>, ProxyConfigError> {
        let Some(key) = var(SIGNER_KEY_ENV) else {
            return match [LISTEN_ENV, WAIT_ENV, HEARTBEAT_ENV, STATUS_ENV]
                .into_iter()
                .find(|n| var(n).is_some())
            {
                Some(set) => Err(ProxyConfigError::MissingSignerKey { set }),
                None => Ok(None),
            };
        };
        let signer_key = parse_pubkey(key.trim()).ok_or(ProxyConfigError::BadSignerKey)?;
        let listen = var(LISTEN_ENV).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen =
            listen.trim().parse().map_err(|_| ProxyConfigError::BadAddress { value: listen })?;
        let seconds = |name: &'static str, default: u64| -> Result<Duration, ProxyConfigError> {
            match var(name) {
                None => Ok(Duration::from_secs(default)),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(Duration::from_secs(n)),
                    _ => Err(ProxyConfigError::BadSeconds { name, value: v }),
                },
            }
        };
        Ok(Some(ProxyConfig {
            listen,
            signer_key,
            wait: seconds(WAIT_ENV, 300)?,
            heartbeat: seconds(HEARTBEAT_ENV, 10)?,
            status: seconds(STATUS_ENV, 300)?,
        }))
    }
}

/// A compressed public key from 66 hex digits.
pub fn parse_pubkey(hex: &str) -> Option<PublicKey> {
    if hex.len() != 66 || !hex.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..33)
        .map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
        .collect();
    PublicKey::from_slice(&bytes?).ok()
}

/// A fresh valid secret key from `entropy` (redrawn in the ~2^-128 case of an invalid one).
fn fresh_key(entropy: &mut dyn EntropySource) -> [u8; 32] {
    loop {
        let mut bytes = [0u8; 32];
        entropy.fill_bytes(&mut bytes);
        if secp256k1::SecretKey::from_slice(&bytes).is_ok() {
            return bytes;
        }
    }
}

/// Loads `<dir>/warden/proxy.key`, creating it (mode 0600, in a 0700 directory) if missing.
pub fn load_or_create_key(
    dir: &Path,
    entropy: &mut dyn EntropySource,
) -> io::Result<StaticSecretKey> {
    let store = dir.join(STORE_DIR);
    DirBuilder::new().recursive(true).mode(0o700).create(&store)?;
    let path = store.join(KEY_FILE);
    let mut bytes = Zeroizing::new([0u8; 32]);
    match File::open(&path) {
        Ok(mut f) => {
            let mut all = Zeroizing::new(Vec::new());
            f.read_to_end(&mut all)?;
            let exact: [u8; 32] = all.as_slice().try_into().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} is not a 32-byte key: remove it to make a new one", path.display()),
                )
            })?;
            *bytes = exact;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            *bytes = fresh_key(entropy);
            let tmp = store.join(format!("{KEY_FILE}.tmp"));
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&*bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&store)?.sync_all()?;
        }
        Err(e) => return Err(e),
    }
    StaticSecretKey::from_bytes(*bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a valid key: remove it to make a new one", path.display()),
        )
    })
}

/// One line on stderr (subdaemons share lightningd's stderr). Never secrets.
fn log(args: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    let _ = writeln!(err, "warden-hsmd proxy: {args}");
}

/// What came back for a request.
enum Answer {
    Reply(Vec<u8>),
    Refused(ErrorReply),
}

struct Pending {
    request: Request,
    answer: Option<Answer>,
}

/// The current link's sending half.
struct Live {
    generation: u64,
    writer: LinkWriter<TcpStream>,
}

impl Live {
    fn shutdown(&self) {
        let _ = self.writer.get_ref().shutdown(Shutdown::Both);
    }
}

struct State {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    link: Option<Live>,
    generation: u64,
    /// The `init` request (its secrets removed), replayed first on every new link.
    init: Option<KeptInit>,
    ping: u64,
}

/// The `init` kept for the replays: its id, client and body (without the passphrase) in a
/// buffer that is wiped when dropped.
struct KeptInit {
    id: u64,
    client: LinkClient,
    body: Zeroizing<Vec<u8>>,
}

impl KeptInit {
    fn request(&self) -> Request {
        Request { id: self.id, client: self.client, msg: self.body.to_vec() }
    }
}

/// lightningd's `init` body without the `hsm_secret`'s passphrase and encryption key: the
/// remote signer loads its own seed, so neither ever leaves this process. A body that carries
/// neither is kept byte for byte; one that does not decode is refused (it is not forwarded).
pub fn strip_init(body: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut init =
        Init::decode(body).map_err(|e| format!("lightningd's init does not parse: {e}"))?;
    if init.tlvs.hsm_passphrase.is_none() && init.hsm_encryption_key.is_none() {
        return Ok(Zeroizing::new(body.to_vec()));
    }
    // Dropped here: `Passphrase` and `Secret` wipe themselves.
    init.tlvs.hsm_passphrase = None;
    init.hsm_encryption_key = None;
    init.encode()
        .map(Zeroizing::new)
        .map_err(|e| format!("cannot re-encode lightningd's init: {e}"))
}

impl State {
    /// Sends on the current link, if any; a failed send drops the link (the request stays
    /// pending and is re-sent on the next one).
    fn send(&mut self, msg: &LinkMessage) {
        let Some(live) = self.link.as_mut() else { return };
        if let Err(e) = live.writer.send_message(msg) {
            log(format_args!("sending to the signer failed ({e}): dropping the link"));
            live.shutdown();
            self.link = None;
        }
    }
}

struct Shared {
    state: Mutex<State>,
    answered: Condvar,
    wait: Duration,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sends a request and waits (bounded) for its answer.
    fn forward(&self, client: LinkClient, body: &[u8], is_init: bool) -> Result<Answer, String> {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        let request = Request { id, client, msg: body.to_vec() };
        if is_init {
            st.init = Some(KeptInit { id, client, body: Zeroizing::new(body.to_vec()) });
        }
        st.send(&LinkMessage::Request(request.clone()));
        st.pending.insert(id, Pending { request, answer: None });
        let deadline = Instant::now() + self.wait;
        loop {
            if let Some(answer) = st.pending.get_mut(&id).and_then(|p| p.answer.take()) {
                st.pending.remove(&id);
                return Ok(answer);
            }
            let now = Instant::now();
            if now >= deadline {
                st.pending.remove(&id);
                return Err(format!(
                    "no answer from the remote signer within {} s: is `warden run` connected \
                     to this proxy?",
                    self.wait.as_secs()
                ));
            }
            st =
                self.answered.wait_timeout(st, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Records the answer to request `id` (a second answer, or one nobody waits for, is
    /// dropped).
    fn answer(&self, id: u64, answer: Answer) {
        let mut st = self.lock();
        if let Some(p) = st.pending.get_mut(&id) {
            if p.answer.is_none() {
                p.answer = Some(answer);
                self.answered.notify_all();
            }
        }
    }

    /// Makes `writer` the current link, unless one is already up (then the writer is given
    /// back): `init` is replayed, then every unanswered request is re-sent in order.
    fn install(&self, writer: LinkWriter<TcpStream>) -> Result<u64, LinkWriter<TcpStream>> {
        let mut st = self.lock();
        if st.link.is_some() {
            return Err(writer);
        }
        st.generation += 1;
        let generation = st.generation;
        st.link = Some(Live { generation, writer });
        let init = st.init.as_ref().map(KeptInit::request);
        let init_id = init.as_ref().map(|r| r.id);
        if let Some(init) = init {
            st.send(&LinkMessage::Request(init));
        }
        let resend: Vec<Request> = st
            .pending
            .values()
            .filter(|p| p.answer.is_none() && Some(p.request.id) != init_id)
            .map(|p| p.request.clone())
            .collect();
        if !resend.is_empty() {
            log(format_args!("re-sending {} request(s) in flight", resend.len()));
        }
        for r in resend {
            st.send(&LinkMessage::Request(r));
        }
        Ok(generation)
    }

    /// Drops link `generation` if it is still the current one.
    fn drop_link(&self, generation: u64) {
        let mut st = self.lock();
        if st.link.as_ref().is_some_and(|l| l.generation == generation) {
            if let Some(old) = st.link.take() {
                old.shutdown();
            }
        }
    }

    /// Sends on link `generation` if it is still the current one.
    fn send_on(&self, generation: u64, msg: &LinkMessage) {
        let mut st = self.lock();
        if st.link.as_ref().is_some_and(|l| l.generation == generation) {
            st.send(msg);
        }
    }
}

/// The proxy: a listener for the signer, the current link and the requests in flight. It is
/// the [`Backend`] of [`crate::server::run_master_with`] in proxy mode.
pub struct Proxy {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    /// Where `signer-status.json` goes.
    status_file: PathBuf,
    status_interval: Duration,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proxy").field("local_addr", &self.local_addr).finish_non_exhaustive()
    }
}

impl Proxy {
    /// Binds the listening address, writes it to `<dir>/warden/proxy.addr`, and starts the
    /// threads that accept the signer and send heartbeats.
    pub fn start(config: &ProxyConfig, key: StaticSecretKey, dir: &Path) -> io::Result<Proxy> {
        let listener = TcpListener::bind(config.listen).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
        })?;
        let local_addr = listener.local_addr()?;
        let addr_file: PathBuf = dir.join(STORE_DIR).join(ADDR_FILE);
        fs::write(&addr_file, local_addr.to_string())?;
        let entropy = OsEntropy::open()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                next_id: 1,
                pending: BTreeMap::new(),
                link: None,
                generation: 0,
                init: None,
                ping: 0,
            }),
            answered: Condvar::new(),
            wait: config.wait,
        });
        log(format_args!(
            "listening on {local_addr} for the signer {} (own key {})",
            config.signer_key,
            key.public_key()
        ));
        let accept = Accept {
            shared: Arc::clone(&shared),
            key: Arc::new(key),
            signer_key: config.signer_key,
            entropy: Arc::new(Mutex::new(entropy)),
            heartbeat: config.heartbeat,
        };
        std::thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept.run(listener))?;
        let beat = Arc::clone(&shared);
        let interval = config.heartbeat;
        std::thread::Builder::new().name("proxy-heartbeat".into()).spawn(move || loop {
            std::thread::sleep(interval);
            let mut st = beat.lock();
            st.ping += 1;
            let n = st.ping;
            st.send(&LinkMessage::Ping(n));
        })?;
        Ok(Proxy {
            shared,
            local_addr,
            status_file: dir.join(STORE_DIR).join(STATUS_FILE),
            status_interval: config.status,
        })
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// The accepting side: one handshake thread per incoming connection.
struct Accept {
    shared: Arc<Shared>,
    key: Arc<StaticSecretKey>,
    signer_key: PublicKey,
    entropy: Arc<Mutex<OsEntropy>>,
    heartbeat: Duration,
}

impl Accept {
    fn run(self, listener: TcpListener) {
        let this = Arc::new(self);
        for conn in listener.incoming() {
            let tcp = match conn {
                Ok(t) => t,
                Err(e) => {
                    log(format_args!("accepting a connection failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    continue;
                }
            };
            let this = Arc::clone(&this);
            let spawned = std::thread::Builder::new()
                .name("proxy-link".into())
                .spawn(move || this.serve(tcp));
            if let Err(e) = spawned {
                log(format_args!("cannot start a link thread: {e}"));
            }
        }
    }

    fn ephemeral(&self) -> Option<EphemeralSecretKey> {
        let mut entropy = self.entropy.lock().unwrap_or_else(|p| p.into_inner());
        EphemeralSecretKey::from_bytes(fresh_key(&mut *entropy)).ok()
    }

    /// Authenticates one connection, makes it the link, and reads answers until it fails.
    fn serve(&self, tcp: TcpStream) {
        let peer = tcp.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
        let setup = tcp
            .set_nodelay(true)
            .and_then(|()| tcp.set_read_timeout(Some(HANDSHAKE_TIMEOUT)))
            .and_then(|()| tcp.set_write_timeout(Some(WRITE_TIMEOUT)));
        let Some(ephemeral) = self.ephemeral().filter(|_| setup.is_ok()) else { return };
        let link = match LinkStream::accept(tcp, &self.key, self.signer_key, ephemeral) {
            Ok(l) => l,
            Err(e) => {
                let detail =
                    std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
                log(format_args!("refused a signer connection from {peer}: {e}: {detail}"));
                return;
            }
        };
        let silence = self.heartbeat.saturating_mul(3);
        if link.get_ref().set_read_timeout(Some(silence)).is_err() {
            return;
        }
        let (reader, writer) = match link.split(|t| Ok((t.try_clone()?, t))) {
            Ok(halves) => halves,
            Err(e) => {
                log(format_args!("cannot use the link from {peer}: {e}"));
                return;
            }
        };
        let generation = match self.shared.install(writer) {
            Ok(g) => g,
            Err(mut writer) => {
                // The first signer keeps the link: two signers answering one node would keep
                // two channel states. A dead link is noticed within three heartbeats.
                log(format_args!("refused a second signer connection from {peer}"));
                let _ = writer.send_message(&LinkMessage::Error(ErrorReply {
                    id: 0,
                    fatal: true,
                    description: "another signer is already connected to this proxy".to_owned(),
                }));
                let _ = writer.get_ref().shutdown(Shutdown::Both);
                return;
            }
        };
        log(format_args!("signer connected from {peer}"));
        self.read_answers(reader, generation);
        self.shared.drop_link(generation);
        log(format_args!("signer link from {peer} closed"));
    }

    fn read_answers(&self, mut reader: LinkReader<TcpStream>, generation: u64) {
        loop {
            match reader.recv_message() {
                Ok(LinkMessage::Reply(mut r)) => {
                    let msg = std::mem::take(&mut r.msg);
                    self.shared.answer(r.id, Answer::Reply(msg));
                }
                Ok(LinkMessage::Error(e)) => self.shared.answer(e.id, Answer::Refused(e)),
                Ok(LinkMessage::Ping(n)) => self.shared.send_on(generation, &LinkMessage::Pong(n)),
                Ok(LinkMessage::Pong(_) | LinkMessage::Unknown { .. }) => {}
                Ok(LinkMessage::Request(_)) => {
                    log(format_args!("the signer sent a request: closing the link"));
                    return;
                }
                Err(LinkError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    log(format_args!("the signer closed the link"));
                    return;
                }
                Err(LinkError::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    log(format_args!("no message from the signer for three heartbeats"));
                    return;
                }
                Err(e) => {
                    let detail =
                        std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default();
                    log(format_args!("signer link failed: {e}: {detail}"));
                    return;
                }
            }
        }
    }
}

/// The master's context on the link (its node id is not known before `init`).
fn master_context(id: [u8; 33]) -> LinkClient {
    LinkClient { peer_id: id, dbid: 0, permissions: permissions::ALL.0 }
}

impl Backend for Proxy {
    type Handler = Forwarder;

    fn init(&mut self, body: &[u8], _dir: &Path) -> Result<(Forwarder, Vec<u8>), InitError> {
        let remote =
            |description: String| InitError::BadRequest(BadRequestError::Remote { description });
        let body = strip_init(body)
            .map_err(|reason| InitError::BadRequest(BadRequestError::Malformed { reason }))?;
        match self.shared.forward(master_context([0; 33]), &body, true).map_err(remote)? {
            Answer::Reply(reply) => {
                let init = InitReplyV4::decode(&reply).map_err(|e| {
                    remote(format!("the signer's answer to init is not an init reply: {e}"))
                })?;
                let forwarder =
                    Forwarder { shared: Arc::clone(&self.shared), node_id: init.node_id };
                self.watch_status(init.node_id);
                Ok((forwarder, reply))
            }
            Answer::Refused(e) => Err(remote(e.description)),
        }
    }
}

impl Proxy {
    /// Starts the thread that asks the signer for its status now and at every interval, and
    /// writes what it learns to `signer-status.json`.
    fn watch_status(&self, node_id: NodeId) {
        let (shared, file, interval) =
            (Arc::clone(&self.shared), self.status_file.clone(), self.status_interval);
        let spawned = std::thread::Builder::new().name("proxy-status".into()).spawn(move || loop {
            let body = WardenStatus {}.encode().map_err(|e| e.to_string());
            let answer =
                body.and_then(|b| shared.forward(master_context(*node_id.as_bytes()), &b, false));
            let (answered, status, error) = match answer {
                Ok(Answer::Reply(r)) => {
                    match WardenStatusReply::decode(&r).map_err(|e| e.to_string()).and_then(|r| {
                        serde_json::from_slice::<serde_json::Value>(&r.json)
                            .map_err(|e| e.to_string())
                    }) {
                        Ok(v) => (true, v, None),
                        Err(e) => (
                            false,
                            serde_json::Value::Null,
                            Some(format!("the signer's status does not decode: {e}")),
                        ),
                    }
                }
                Ok(Answer::Refused(e)) => (false, serde_json::Value::Null, Some(e.description)),
                Err(e) => (false, serde_json::Value::Null, Some(e)),
            };
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let doc = serde_json::json!({
                "time": now,
                "signer_answered": answered,
                "signer": status,
                "error": error,
            });
            if let Err(e) = write_private(&file, doc.to_string().as_bytes()) {
                log(format_args!("cannot write {}: {e}", file.display()));
            }
            std::thread::sleep(interval);
        });
        if let Err(e) = spawned {
            log(format_args!("cannot start the status thread: {e}"));
        }
    }
}

/// Writes `bytes` to `path` through a temporary file (mode 0600) renamed over it.
fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

/// The proxy's [`Handler`]: forwards each request to the signer and waits for its answer.
pub struct Forwarder {
    shared: Arc<Shared>,
    node_id: NodeId,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder").field("node_id", &self.node_id).finish_non_exhaustive()
    }
}

impl Handler for Forwarder {
    fn node_id(&self) -> NodeId {
        self.node_id
    }

    fn handle(&self, client: &ClientContext, body: &[u8]) -> Result<Outcome, BadRequestError> {
        let msg_type =
            peek_type(body).map_err(|e| BadRequestError::Malformed { reason: e.to_string() })?;
        let link_client = LinkClient {
            peer_id: *client.id.as_bytes(),
            dbid: client.dbid,
            permissions: client.permissions.0,
        };
        let answer = self
            .shared
            .forward(link_client, body, false)
            .map_err(|description| BadRequestError::Remote { description })?;
        match answer {
            Answer::Reply(reply)
                if msg_type == ClientHsmfd::TYPE
                    && peek_type(&reply).ok() == Some(ClientHsmfdReply::TYPE) =>
            {
                let m = ClientHsmfd::decode(body)
                    .map_err(|e| BadRequestError::Malformed { reason: e.to_string() })?;
                let client = ClientContext { id: m.id, dbid: m.dbid, permissions: m.permissions };
                Ok(Outcome::NewClient { reply, client })
            }
            Answer::Reply(reply) => Ok(Outcome::Reply(reply)),
            Answer::Refused(e) => Err(BadRequestError::Remote { description: e.description }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    const KEY: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| pairs.iter().find(|(k, _)| *k == n).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn config_from_environment() {
        assert_eq!(ProxyConfig::from_vars(vars(&[])).unwrap(), None);
        let c = ProxyConfig::from_vars(vars(&[(SIGNER_KEY_ENV, KEY)])).unwrap().unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
        assert_eq!(c.wait, Duration::from_secs(300));
        let c = ProxyConfig::from_vars(vars(&[
            (SIGNER_KEY_ENV, KEY),
            (LISTEN_ENV, "127.0.0.1:0"),
            (WAIT_ENV, "5"),
            (HEARTBEAT_ENV, "1"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!((c.wait, c.heartbeat), (Duration::from_secs(5), Duration::from_secs(1)));
        assert_eq!(
            ProxyConfig::from_vars(vars(&[(LISTEN_ENV, "127.0.0.1:1")])),
            Err(ProxyConfigError::MissingSignerKey { set: LISTEN_ENV })
        );
        assert_eq!(
            ProxyConfig::from_vars(vars(&[(SIGNER_KEY_ENV, "02ab")])),
            Err(ProxyConfigError::BadSignerKey)
        );
        assert!(matches!(
            ProxyConfig::from_vars(vars(&[(SIGNER_KEY_ENV, KEY), (WAIT_ENV, "0")])),
            Err(ProxyConfigError::BadSeconds { .. })
        ));
        assert!(matches!(
            ProxyConfig::from_vars(vars(&[(SIGNER_KEY_ENV, KEY), (LISTEN_ENV, "here")])),
            Err(ProxyConfigError::BadAddress { .. })
        ));
    }

    /// A signer over a real link: answers with a real `Signer` (in-memory store) until the
    /// link closes (shut the returned stream down to make it go away); returns the types of
    /// the requests it saw, in order.
    fn fake_signer(
        addr: SocketAddr,
        key: [u8; 32],
        proxy: PublicKey,
        secret: &Path,
    ) -> (std::thread::JoinHandle<Vec<u16>>, TcpStream) {
        fake_signer_keeping(addr, key, proxy, secret, Arc::new(Mutex::new(Vec::new())))
    }

    /// [`fake_signer`], keeping every `init` body it receives in `inits`.
    fn fake_signer_keeping(
        addr: SocketAddr,
        key: [u8; 32],
        proxy: PublicKey,
        secret: &Path,
        inits: Arc<Mutex<Vec<Vec<u8>>>>,
    ) -> (std::thread::JoinHandle<Vec<u16>>, TcpStream) {
        use crate::signer::{Signer, StoreChoice};
        let secret = secret.to_path_buf();
        let tcp = TcpStream::connect(addr).unwrap();
        let handle = tcp.try_clone().unwrap();
        let thread = std::thread::spawn(move || {
            let key = StaticSecretKey::from_bytes(key).unwrap();
            let eph = EphemeralSecretKey::from_bytes([9; 32]).unwrap();
            let mut link = LinkStream::connect(tcp, &key, proxy, eph).unwrap();
            let mut seen = Vec::new();
            let mut signer: Option<Signer> = None;
            loop {
                let Ok(msg) = link.recv_message() else { break };
                let LinkMessage::Request(r) = msg else {
                    seen.push(msg.msg_type() | 0x8000);
                    if let LinkMessage::Error(_) = msg {
                        break;
                    }
                    continue;
                };
                let t = peek_type(&r.msg).unwrap();
                seen.push(t);
                let reply = if t == Init::TYPE {
                    inits.lock().unwrap().push(r.msg.clone());
                    let mut none = OsEntropy::open().unwrap();
                    let (s, reply) =
                        Signer::init_with(&r.msg, &secret, &mut none, StoreChoice::Memory).unwrap();
                    signer = Some(s);
                    reply
                } else {
                    let ctx = ClientContext {
                        id: NodeId::from_bytes(r.client.peer_id),
                        dbid: r.client.dbid,
                        permissions: warden_wire::Permissions(r.client.permissions),
                    };
                    match signer.as_ref().unwrap().handle(&ctx, &r.msg).unwrap() {
                        Outcome::Reply(m) | Outcome::NewClient { reply: m, .. } => m,
                    }
                };
                // The test may close the link while a reply is on its way (the proxy's status
                // request right after init): that ends this signer, as a real one's link.
                let reply = LinkMessage::Reply(warden_link::Reply { id: r.id, msg: reply });
                if link.send_message(&reply).is_err() {
                    break;
                }
            }
            seen
        });
        (thread, handle)
    }

    /// Proxy settings for the tests: loopback on any port, `wait_secs` for an answer, a 5 s
    /// heartbeat, and status requests an hour apart (only the one after `init`).
    fn test_config(signer_key: PublicKey, wait_secs: u64) -> ProxyConfig {
        ProxyConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            signer_key,
            wait: Duration::from_secs(wait_secs),
            heartbeat: Duration::from_secs(5),
            status: Duration::from_secs(3600),
        }
    }

    /// A proxy on loopback (20 s waits) in a lightning directory of its own, the secret its fake
    /// signers use, and both link keys.
    struct Started {
        dir: tempfile::TempDir,
        secret: tempfile::TempDir,
        proxy_pub: PublicKey,
        signer_key: [u8; 32],
        proxy: Proxy,
    }

    fn start_proxy() -> Started {
        let dir = tempfile::tempdir().unwrap();
        let secret = tempfile::tempdir().unwrap();
        fs::write(secret.path().join("hsm_secret"), [0x42; 32]).unwrap();
        let mut entropy = OsEntropy::open().unwrap();
        let proxy_key = load_or_create_key(dir.path(), &mut entropy).unwrap();
        let proxy_pub = proxy_key.public_key();
        let signer_key = [7u8; 32];
        let config = test_config(StaticSecretKey::from_bytes(signer_key).unwrap().public_key(), 20);
        let proxy = Proxy::start(&config, proxy_key, dir.path()).unwrap();
        Started { dir, secret, proxy_pub, signer_key, proxy }
    }

    /// Requests wait for a signer; a new signer gets `init` first, then what is in flight;
    /// a second signer is refused while one is connected; nobody answering is a bounded wait.
    #[test]
    fn requests_wait_are_replayed_and_one_signer_is_served() {
        let Started { dir, secret, proxy_pub, signer_key, mut proxy } = start_proxy();
        let addr = proxy.local_addr();
        let written = fs::read_to_string(dir.path().join(STORE_DIR).join(ADDR_FILE)).unwrap();
        assert_eq!(written, addr.to_string());

        // init waits for the first signer.
        let init = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        let init_path = dir.path().to_path_buf();
        let waiting = std::thread::spawn(move || {
            let (fwd, reply) = proxy.init(&init, &init_path).unwrap();
            (fwd, reply)
        });
        std::thread::sleep(Duration::from_millis(300));
        assert!(!waiting.is_finished());
        let (a, a_conn) = fake_signer(addr, signer_key, proxy_pub, secret.path());
        let (fwd, _) = waiting.join().unwrap();
        let fwd = Arc::new(fwd);
        let master = ClientContext { id: fwd.node_id(), dbid: 0, permissions: permissions::ALL };
        let ecdh = warden_wire::msg::Ecdh { point: fwd.node_id().to_public_key().unwrap() }
            .encode()
            .unwrap();
        let Outcome::Reply(first) = fwd.handle(&master, &ecdh).unwrap() else { panic!() };

        // A second signer is refused while the first is connected.
        let (c, _c_conn) = fake_signer(addr, signer_key, proxy_pub, secret.path());
        assert_eq!(c.join().unwrap(), vec![TYPE_ERROR_SEEN]);

        // The first signer goes away; a request waits, then the next signer answers it after
        // the replayed init, the same as before.
        a_conn.shutdown(Shutdown::Both).unwrap();
        // (The proxy's status request, right after init, may come in between.)
        let seen = |types: Vec<u16>| -> Vec<u16> {
            types.into_iter().filter(|t| *t != WardenStatus::TYPE).collect()
        };
        assert_eq!(seen(a.join().unwrap()), vec![11, 1]);
        let asking = {
            let (fwd, ecdh) = (Arc::clone(&fwd), ecdh.clone());
            std::thread::spawn(move || fwd.handle(&master, &ecdh).unwrap())
        };
        std::thread::sleep(Duration::from_millis(400));
        assert!(!asking.is_finished());
        let (b, b_conn) = fake_signer(addr, signer_key, proxy_pub, secret.path());
        let Outcome::Reply(again) = asking.join().unwrap() else { panic!() };
        assert_eq!(again, first);
        b_conn.shutdown(Shutdown::Both).unwrap();
        assert_eq!(seen(b.join().unwrap()), vec![11, 1]);
    }

    /// What [`fake_signer`] records for the proxy's id-0 refusal.
    const TYPE_ERROR_SEEN: u16 = TYPE_ERROR | 0x8000;
    use warden_link::frame::TYPE_ERROR;

    #[test]
    fn no_signer_is_a_bounded_wait() {
        let dir = tempfile::tempdir().unwrap();
        let mut entropy = OsEntropy::open().unwrap();
        let key = load_or_create_key(dir.path(), &mut entropy).unwrap();
        let config = test_config(key.public_key(), 1);
        let mut proxy = Proxy::start(&config, key, dir.path()).unwrap();
        let init = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        let start = Instant::now();
        match proxy.init(&init, dir.path()) {
            Err(InitError::BadRequest(BadRequestError::Remote { description })) => {
                assert!(description.contains("no answer from the remote signer within 1 s"))
            }
            other => panic!("{other:?}"),
        }
        assert!(start.elapsed() >= Duration::from_secs(1));
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut entropy = OsEntropy::open().unwrap();
        let a = load_or_create_key(dir.path(), &mut entropy).unwrap();
        let path = dir.path().join(STORE_DIR).join(KEY_FILE);
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let b = load_or_create_key(dir.path(), &mut entropy).unwrap();
        assert_eq!(a, b);
        fs::write(&path, [1u8; 31]).unwrap();
        assert!(load_or_create_key(dir.path(), &mut entropy).is_err());
    }

    fn init_with_secrets() -> Init {
        let mut init = warden_testkit::Hsmd::regtest_init();
        init.tlvs.hsm_passphrase =
            Some(warden_wire::Passphrase::new(b"correct horse battery".to_vec()).unwrap());
        init.hsm_encryption_key = Some(warden_wire::Secret::new([0xe7; 32]));
        init
    }

    #[test]
    fn strip_init_removes_the_passphrase_and_key_only() {
        let plain = warden_testkit::Hsmd::regtest_init().encode().unwrap();
        assert_eq!(strip_init(&plain).unwrap().as_slice(), plain.as_slice(), "kept as it came");
        let with = init_with_secrets().encode().unwrap();
        assert!(with.windows(21).any(|w| w == b"correct horse battery"));
        let stripped = strip_init(&with).unwrap();
        assert!(!stripped.windows(21).any(|w| w == b"correct horse battery"));
        assert!(!stripped.windows(32).any(|w| w == [0xe7; 32]));
        let back = Init::decode(&stripped).unwrap();
        assert!(back.tlvs.hsm_passphrase.is_none() && back.hsm_encryption_key.is_none());
        // Everything else is as lightningd sent it.
        assert_eq!(back, warden_testkit::Hsmd::regtest_init());
        assert!(strip_init(&[0, 11, 1]).unwrap_err().contains("does not parse"));
    }

    /// The signer never sees lightningd's passphrase: not in the first `init`, not in the
    /// replay on the next link. (The fake signer's secret has no passphrase: an `init` carrying
    /// one would fail there with "passphrase not needed".)
    #[test]
    fn the_signer_never_gets_the_passphrase() {
        let Started { dir, secret, proxy_pub, signer_key, mut proxy } = start_proxy();
        let addr = proxy.local_addr();
        let inits = Arc::new(Mutex::new(Vec::new()));
        let (a, a_conn) =
            fake_signer_keeping(addr, signer_key, proxy_pub, secret.path(), Arc::clone(&inits));
        let body = init_with_secrets().encode().unwrap();
        let (fwd, _) = proxy.init(&body, dir.path()).unwrap();
        a_conn.shutdown(Shutdown::Both).unwrap();
        a.join().unwrap();
        // The next signer gets the kept init first.
        let (b, b_conn) =
            fake_signer_keeping(addr, signer_key, proxy_pub, secret.path(), Arc::clone(&inits));
        let master = ClientContext { id: fwd.node_id(), dbid: 0, permissions: permissions::ALL };
        let ecdh = warden_wire::msg::Ecdh { point: fwd.node_id().to_public_key().unwrap() }
            .encode()
            .unwrap();
        assert!(matches!(fwd.handle(&master, &ecdh).unwrap(), Outcome::Reply(_)));
        b_conn.shutdown(Shutdown::Both).unwrap();
        b.join().unwrap();
        let seen = inits.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "the init, then its replay");
        for got in &seen {
            assert!(!got.windows(21).any(|w| w == b"correct horse battery"));
            let init = Init::decode(got).unwrap();
            assert!(init.tlvs.hsm_passphrase.is_none() && init.hsm_encryption_key.is_none());
        }
        assert_eq!(seen[0], seen[1]);
    }
}
