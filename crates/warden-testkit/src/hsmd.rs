//! Runs `warden-hsmd` exactly as lightningd runs `hsmd`, and talks to it.
//!
//! lightningd (`lightningd/hsm_control.c`, `lightningd/subd.c`) starts hsmd in the lightning
//! directory with its status connection on fd 0 and the master request socket on fd 3
//! (`warden_hsmd::client::spawn`, which Warden's own tools use too, does that: the master end
//! becomes the child's stdin and the status end its stdout, and `/bin/sh` moves them into place
//! before `exec`ing the binary). A thread collects every status message (fd 0), so a test can assert that no
//! `hsmstatus_client_bad_request` appeared. `client_hsmfd` replies come with a new socket
//! passed by `SCM_RIGHTS`, received here as `ccan/fdpass` sends it (one zero byte).

use std::fmt;
use std::io::{self};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::rng::TestRng;
use warden_hsmd::client::{recv_client_fd, recv_frame, send_frame, spawn, Spawned};
use warden_wire::msg::{ClientBadRequest, ClientHsmfd, ClientHsmfdReply, Init, InitReplyV4};
use warden_wire::{
    frame, Bip32KeyVersion, DecodeError, EncodeError, Message, NodeId, Permissions, Reply, Status,
};

/// How long any read from hsmd may take before the test gives up.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// The environment variable naming the `warden-hsmd` binary to run.
pub const BIN_ENV: &str = "WARDEN_HSMD_BIN";

/// What went wrong talking to `warden-hsmd`.
#[derive(Debug)]
pub enum HsmdError {
    /// The binary was not found (build it with `cargo build -p warden-hsmd`).
    BinaryNotFound {
        /// Every path that was tried.
        tried: Vec<PathBuf>,
    },
    /// An operating-system call failed.
    Io {
        /// What was being done.
        during: &'static str,
        /// The error.
        source: io::Error,
    },
    /// A request could not be encoded.
    Encode {
        /// The request's CSV name.
        request: &'static str,
        /// The encoder's complaint.
        source: EncodeError,
    },
    /// hsmd closed the connection instead of replying: it refused the request.
    Refused {
        /// The request's CSV name.
        request: &'static str,
        /// The `hsmstatus_client_bad_request` hsmd reported for it, if one arrived.
        report: Option<Box<ClientBadRequest>>,
        /// The description of the `status_fail` hsmd sent before exiting, if it did (a refusal
        /// on the master connection is fatal).
        failure: Option<String>,
    },
    /// hsmd replied with a message that does not decode.
    BadReply {
        /// The request's CSV name.
        request: &'static str,
        /// The decoder's complaint.
        source: DecodeError,
    },
    /// The file descriptor of a new client did not arrive as expected.
    NoFd {
        /// What was received instead.
        detail: String,
    },
    /// A request answered before a crash was answered differently when retried after the
    /// restart (DESIGN.md §3, invariant 3).
    RetryMismatch {
        /// The request's CSV name.
        request: &'static str,
    },
    /// The restarted hsmd did not answer `init`.
    RestartFailed {
        /// The `status_fail` it sent, if any.
        failure: Option<String>,
    },
}

impl fmt::Display for HsmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsmdError::BinaryNotFound { tried } => write!(
                f,
                "warden-hsmd binary not found (tried {tried:?}); run `cargo build -p warden-hsmd` \
                 first or set {BIN_ENV}"
            ),
            HsmdError::Io { during, .. } => write!(f, "i/o failed while {during}"),
            HsmdError::Encode { request, .. } => write!(f, "cannot encode {request}"),
            HsmdError::Refused { request, report: Some(r), .. } => write!(
                f,
                "hsmd refused {request}: {}",
                r.description.as_str().unwrap_or("(unprintable description)")
            ),
            HsmdError::Refused { request, report: None, failure: Some(desc) } => {
                write!(f, "hsmd failed on {request}: {desc}")
            }
            HsmdError::Refused { request, report: None, failure: None } => {
                write!(f, "hsmd closed the connection instead of answering {request}")
            }
            HsmdError::BadReply { request, .. } => write!(f, "bad reply to {request}"),
            HsmdError::NoFd { detail } => write!(f, "no client fd received: {detail}"),
            HsmdError::RetryMismatch { request } => {
                write!(f, "the retry of {request} after a crash got a different reply")
            }
            HsmdError::RestartFailed { failure } => {
                write!(f, "hsmd did not come back after a restart: {failure:?}")
            }
        }
    }
}

impl std::error::Error for HsmdError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HsmdError::Io { source, .. } => Some(source),
            HsmdError::Encode { source, .. } => Some(source),
            HsmdError::BadReply { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn io_err(during: &'static str) -> impl FnOnce(io::Error) -> HsmdError {
    move |source| HsmdError::Io { during, source }
}

/// Finds the `warden-hsmd` binary: `$WARDEN_HSMD_BIN` (which, when set, must name it),
/// `$CARGO_BIN_EXE_warden-hsmd`, then `warden-hsmd` in the `debug` and `release` directories
/// of the workspace's target directory (`$CARGO_TARGET_DIR`, or `target/` at the workspace
/// root).
pub fn locate_binary() -> Result<PathBuf, HsmdError> {
    if let Some(p) = std::env::var_os(BIN_ENV) {
        let p = PathBuf::from(p);
        return if p.is_file() { Ok(p) } else { Err(HsmdError::BinaryNotFound { tried: vec![p] }) };
    }
    let mut tried = Vec::new();
    if let Some(p) = std::env::var_os("CARGO_BIN_EXE_warden-hsmd") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if Path::new(&t).is_absolute() => PathBuf::from(t),
        Some(t) => workspace.join(t),
        None => workspace.join("target"),
    };
    for profile in ["debug", "release"] {
        let p = target.join(profile).join("warden-hsmd");
        if p.is_file() {
            return Ok(p);
        }
        tried.push(p);
    }
    Err(HsmdError::BinaryNotFound { tried })
}

/// One message hsmd sent on its status connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusEntry {
    /// A status message that decoded.
    Decoded(Status),
    /// A frame that did not decode as a status message (its body).
    Undecodable(Vec<u8>),
}

/// Every status message hsmd sent so far, collected by a background thread.
#[derive(Clone, Debug, Default)]
pub struct StatusLog(Arc<Mutex<Vec<StatusEntry>>>);

impl StatusLog {
    /// A copy of the messages received so far.
    pub fn entries(&self) -> Vec<StatusEntry> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Every `hsmstatus_client_bad_request` received so far.
    pub fn bad_requests(&self) -> Vec<ClientBadRequest> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                StatusEntry::Decoded(Status::ClientBadRequest(b)) => Some(b),
                _ => None,
            })
            .collect()
    }

    /// The text of every `status_log` received so far.
    pub fn logs(&self) -> Vec<String> {
        self.entries()
            .into_iter()
            .filter_map(|e| match e {
                StatusEntry::Decoded(Status::StatusLog(l)) => {
                    Some(l.entry.as_str().unwrap_or("(unprintable)").to_owned())
                }
                _ => None,
            })
            .collect()
    }

    /// The policy's refusals and warnings logged so far (`status_log` lines from the policy).
    pub fn policy_events(&self) -> Vec<String> {
        self.logs().into_iter().filter(|l| l.starts_with("policy")).collect()
    }

    /// Whether hsmd reported a failure (`status_fail`) or anything undecodable.
    pub fn failures(&self) -> Vec<StatusEntry> {
        self.entries()
            .into_iter()
            .filter(|e| {
                matches!(
                    e,
                    StatusEntry::Decoded(Status::StatusFail(_)) | StatusEntry::Undecodable(_)
                )
            })
            .collect()
    }

    /// The description of the last `status_fail`, if any.
    pub fn last_failure(&self) -> Option<String> {
        self.entries().into_iter().rev().find_map(|e| match e {
            StatusEntry::Decoded(Status::StatusFail(f)) => {
                Some(f.desc.as_str().unwrap_or("(unprintable)").to_owned())
            }
            _ => None,
        })
    }

    fn push(&self, e: StatusEntry) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(e);
    }

    /// Waits up to `wait` for a bad-request report about a request of type `msg_type` that
    /// arrived after the first `seen` reports (so an older report is never taken for it).
    fn wait_bad_request(
        &self,
        msg_type: u16,
        seen: usize,
        wait: Duration,
    ) -> Option<ClientBadRequest> {
        let start = Instant::now();
        loop {
            let found = self
                .bad_requests()
                .into_iter()
                .skip(seen)
                .rev()
                .find(|b| frame::peek_type(&b.msg).ok() == Some(msg_type));
            if found.is_some() || start.elapsed() > wait {
                return found;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Every request sent to hsmd, in order: the client's name and the request's type number.
#[derive(Clone, Debug, Default)]
pub struct Transcript(Arc<Mutex<Vec<(&'static str, u16)>>>);

impl Transcript {
    /// A copy of the requests sent so far.
    pub fn entries(&self) -> Vec<(&'static str, u16)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Forgets the requests sent so far.
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    fn push(&self, client: &'static str, msg_type: u16) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push((client, msg_type));
    }
}

/// A connection to hsmd: the master connection, or a client opened with `client_hsmfd`.
#[derive(Debug)]
pub struct Client {
    name: &'static str,
    conn: UnixStream,
    id: NodeId,
    dbid: u64,
    permissions: Permissions,
    status: StatusLog,
    transcript: Transcript,
    life: Arc<Mutex<Life>>,
    generation: u64,
}

impl Client {
    /// The name given to this client (`"master"`, `"channeld"`, …).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The identity of the client (peer id, or our id for master and global clients).
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The client's database id (0 for master and global clients).
    pub fn dbid(&self) -> u64 {
        self.dbid
    }

    /// The client's permissions.
    pub fn permissions(&self) -> Permissions {
        self.permissions
    }

    /// Sends a raw request body and returns the raw reply body.
    ///
    /// With crashes enabled ([`Hsmd::enable_crashes`]), hsmd may be killed (SIGKILL) before the
    /// request is sent, while it is in flight, or right after its reply was read; it is then
    /// restarted in the same directory, this client reconnects, and the request is sent again,
    /// as lightningd re-sends after restarting hsmd. A reply read before the kill must equal the
    /// reply to the retry ([`HsmdError::RetryMismatch`] otherwise).
    pub fn request_raw(&mut self, name: &'static str, body: &[u8]) -> Result<Vec<u8>, HsmdError> {
        let msg_type = frame::peek_type(body).unwrap_or(0);
        self.transcript.push(self.name, msg_type);
        self.refresh()?;
        let kill = lock(&self.life).next_kill(msg_type);
        match kill {
            None => self.exchange(name, msg_type, body),
            Some(Kill::BeforeSend) => {
                lock(&self.life).restart()?;
                self.refresh()?;
                self.exchange(name, msg_type, body)
            }
            Some(Kill::InFlight { micros }) => {
                let _ = send_frame(&mut self.conn, body);
                std::thread::sleep(Duration::from_micros(micros));
                lock(&self.life).restart()?;
                self.refresh()?;
                self.exchange(name, msg_type, body)
            }
            Some(Kill::AfterReply) => {
                let first = self.exchange(name, msg_type, body)?;
                lock(&self.life).restart()?;
                self.refresh()?;
                let second = self.exchange(name, msg_type, body)?;
                if first != second {
                    return Err(HsmdError::RetryMismatch { request: name });
                }
                lock(&self.life).retries_checked += 1;
                Ok(second)
            }
        }
    }

    /// Reconnects after hsmd was restarted: the master connection is the new process's; any
    /// other client asks for a new `client_hsmfd` with its identity and permissions.
    fn refresh(&mut self) -> Result<(), HsmdError> {
        let mut life = lock(&self.life);
        if life.generation == self.generation {
            return Ok(());
        }
        let conn = if self.name == "master" {
            life.master.try_clone().map_err(io_err("cloning the master connection"))?
        } else {
            let req = ClientHsmfd { id: self.id, dbid: self.dbid, permissions: self.permissions };
            let body = req
                .encode()
                .map_err(|source| HsmdError::Encode { request: ClientHsmfd::NAME, source })?;
            send_frame(&mut life.master, &body).map_err(io_err("reconnecting a client"))?;
            let reply = recv_frame(&mut life.master)
                .map_err(io_err("reconnecting a client"))?
                .ok_or(HsmdError::RestartFailed { failure: self.status.last_failure() })?;
            let _ = ClientHsmfdReply::decode(&reply)
                .map_err(|source| HsmdError::BadReply { request: ClientHsmfd::NAME, source })?;
            let conn = recv_fd(&life.master)?;
            conn.set_read_timeout(Some(TIMEOUT)).map_err(io_err("setting a timeout"))?;
            conn
        };
        self.conn = conn;
        self.generation = life.generation;
        Ok(())
    }

    fn exchange(
        &mut self,
        name: &'static str,
        msg_type: u16,
        body: &[u8],
    ) -> Result<Vec<u8>, HsmdError> {
        let seen = self.status.bad_requests().len();
        if let Err(source) = send_frame(&mut self.conn, body) {
            // hsmd already closed this connection (after an earlier refusal, or exiting).
            return match self.status.last_failure() {
                Some(desc) => {
                    Err(HsmdError::Refused { request: name, report: None, failure: Some(desc) })
                }
                None => Err(HsmdError::Io { during: "sending a request", source }),
            };
        }
        match recv_frame(&mut self.conn).map_err(io_err("reading a reply"))? {
            Some(reply) => Ok(reply),
            None => {
                let report = self
                    .status
                    .wait_bad_request(msg_type, seen, Duration::from_secs(2))
                    .map(Box::new);
                let failure = self.status.last_failure();
                Err(HsmdError::Refused { request: name, report, failure })
            }
        }
    }

    /// Sends `msg` and decodes the reply as any hsmd reply.
    pub fn request<M: Message>(&mut self, msg: &M) -> Result<Reply, HsmdError> {
        let body = msg.encode().map_err(|source| HsmdError::Encode { request: M::NAME, source })?;
        let reply = self.request_raw(M::NAME, &body)?;
        Reply::decode(&reply).map_err(|source| HsmdError::BadReply { request: M::NAME, source })
    }

    /// Sends `msg` and decodes the reply as `R`.
    pub fn call<M: Message, R: Message>(&mut self, msg: &M) -> Result<R, HsmdError> {
        let body = msg.encode().map_err(|source| HsmdError::Encode { request: M::NAME, source })?;
        let reply = self.request_raw(M::NAME, &body)?;
        R::decode(&reply).map_err(|source| HsmdError::BadReply { request: M::NAME, source })
    }
}

/// A running `warden-hsmd`, started as lightningd starts `hsmd`.
#[derive(Debug)]
pub struct Hsmd {
    life: Arc<Mutex<Life>>,
    master: Client,
    status: StatusLog,
    transcript: Transcript,
    dir: tempfile::TempDir,
    node_id: Option<NodeId>,
}

impl Hsmd {
    /// Starts `bin` in a new temporary lightning directory holding `hsm_secret`.
    pub fn spawn(bin: &Path, hsm_secret: &[u8]) -> Result<Hsmd, HsmdError> {
        Hsmd::spawn_with_env(bin, hsm_secret, &[])
    }

    /// [`Hsmd::spawn`] with extra environment variables for the process (and its restarts),
    /// as lightningd's environment reaches hsmd: for example `WARDEN_SIGNER_PUBKEY` for proxy
    /// mode.
    pub fn spawn_with_env(
        bin: &Path,
        hsm_secret: &[u8],
        env: &[(&str, &str)],
    ) -> Result<Hsmd, HsmdError> {
        if !bin.is_file() {
            return Err(HsmdError::BinaryNotFound { tried: vec![bin.to_path_buf()] });
        }
        let dir = tempfile::tempdir().map_err(io_err("creating the lightning directory"))?;
        std::fs::write(dir.path().join("hsm_secret"), hsm_secret)
            .map_err(io_err("writing hsm_secret"))?;
        let log = StatusLog::default();
        let env: Vec<(String, String)> =
            env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let (child, master) = launch(bin, dir.path(), &env, &log)?;
        let placeholder = NodeId::from_bytes([2; 33]);
        let transcript = Transcript::default();
        let life = Arc::new(Mutex::new(Life {
            bin: bin.to_path_buf(),
            dir: dir.path().to_path_buf(),
            env,
            child,
            master: master.try_clone().map_err(io_err("cloning the master connection"))?,
            status: log.clone(),
            generation: 0,
            init: None,
            crashes: None,
            kills: 0,
            retries_checked: 0,
        }));
        Ok(Hsmd {
            master: Client {
                name: "master",
                conn: master,
                id: placeholder,
                dbid: 0,
                permissions: Permissions(u64::MAX),
                status: log.clone(),
                transcript: transcript.clone(),
                life: Arc::clone(&life),
                generation: 0,
            },
            life,
            status: log,
            transcript,
            dir,
            node_id: None,
        })
    }

    /// The `init` lightningd sends on regtest (hsmd wire versions 5 to 6, no developer
    /// overrides, no passphrase).
    pub fn regtest_init() -> Init {
        Init::plain(
            Bip32KeyVersion { pubkey_version: 0x0435_87cf, privkey_version: 0x0435_8394 },
            bitcoin::constants::ChainHash::REGTEST,
        )
    }

    /// Sends `init` on the master connection and returns the reply.
    pub fn init(&mut self, init: &Init) -> Result<InitReplyV4, HsmdError> {
        let reply: InitReplyV4 = self.master.call(init)?;
        lock(&self.life).init = Some(
            init.encode().map_err(|source| HsmdError::Encode { request: Init::NAME, source })?,
        );
        self.node_id = Some(reply.node_id);
        self.master.id = reply.node_id;
        Ok(reply)
    }

    /// The node id from the `init` reply.
    pub fn node_id(&self) -> Option<NodeId> {
        self.node_id
    }

    /// The master connection (lightningd's own requests).
    pub fn master(&mut self) -> &mut Client {
        &mut self.master
    }

    /// The status messages received so far.
    pub fn status(&self) -> &StatusLog {
        &self.status
    }

    /// Every request sent so far, on any connection.
    pub fn transcript(&self) -> &Transcript {
        &self.transcript
    }

    /// The lightning directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Opens a client with `client_hsmfd`, as lightningd does before starting a subdaemon.
    pub fn client(
        &mut self,
        name: &'static str,
        id: NodeId,
        dbid: u64,
        permissions: Permissions,
    ) -> Result<Client, HsmdError> {
        let _: ClientHsmfdReply = self.master.call(&ClientHsmfd { id, dbid, permissions })?;
        let conn = recv_fd(&self.master.conn)?;
        conn.set_read_timeout(Some(TIMEOUT)).map_err(io_err("setting a timeout"))?;
        Ok(Client {
            name,
            conn,
            id,
            dbid,
            permissions,
            status: self.status.clone(),
            transcript: self.transcript.clone(),
            life: Arc::clone(&self.life),
            generation: self.master.generation,
        })
    }

    /// Opens a global client (our own node id, database id 0), as for connectd and gossipd.
    pub fn global_client(
        &mut self,
        name: &'static str,
        permissions: Permissions,
    ) -> Result<Client, HsmdError> {
        let id = self.node_id.unwrap_or(self.master.id);
        self.client(name, id, 0, permissions)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(lock(&self.life).child.try_wait(), Ok(None))
    }

    /// Kills hsmd at random points from now on: before `percent` % of the requests (other
    /// than `init` and `client_hsmfd`), chosen reproducibly from `seed`, hsmd is killed with
    /// SIGKILL before the request is sent, while it is in flight, or right after its reply,
    /// then restarted in the same directory (see [`Client::request_raw`]).
    pub fn enable_crashes(&mut self, seed: u64, percent: u64) {
        lock(&self.life).crashes = Some(Crashes { rng: TestRng::new(seed), percent });
    }

    /// Stops killing hsmd.
    pub fn disable_crashes(&mut self) {
        lock(&self.life).crashes = None;
    }

    /// Kills hsmd now (SIGKILL) and starts it again in the same directory, with the same
    /// `init`; every client reconnects on its next request.
    pub fn restart(&mut self) -> Result<(), HsmdError> {
        lock(&self.life).restart()?;
        self.master.refresh()
    }

    /// How many times hsmd was killed and restarted.
    pub fn kills(&self) -> u64 {
        lock(&self.life).kills
    }

    /// How many replies read before a kill were compared with (and equal to) their retry's.
    pub fn retries_checked(&self) -> u64 {
        lock(&self.life).retries_checked
    }
}

impl Drop for Hsmd {
    fn drop(&mut self) {
        let mut life = lock(&self.life);
        let _ = life.child.kill();
        let _ = life.child.wait();
    }
}

fn lock(life: &Mutex<Life>) -> std::sync::MutexGuard<'_, Life> {
    life.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a kill falls relative to one request.
#[derive(Clone, Copy, Debug)]
enum Kill {
    /// Before the request is sent.
    BeforeSend,
    /// After the request is sent, `micros` later, before its reply is read.
    InFlight { micros: u64 },
    /// Right after the reply was read.
    AfterReply,
}

#[derive(Debug)]
struct Crashes {
    rng: TestRng,
    percent: u64,
}

/// The process behind an [`Hsmd`] and its clients, replaced on every restart.
#[derive(Debug)]
struct Life {
    bin: PathBuf,
    dir: PathBuf,
    /// Extra environment variables of every start.
    env: Vec<(String, String)>,
    child: Child,
    /// The current process's master connection (a second handle to it).
    master: UnixStream,
    status: StatusLog,
    /// Grows by one per restart; a client with an older one reconnects.
    generation: u64,
    /// The `init` body, re-sent after each restart.
    init: Option<Vec<u8>>,
    crashes: Option<Crashes>,
    kills: u64,
    retries_checked: u64,
}

impl Life {
    fn next_kill(&mut self, msg_type: u16) -> Option<Kill> {
        if msg_type == Init::TYPE || msg_type == ClientHsmfd::TYPE {
            return None;
        }
        let c = self.crashes.as_mut()?;
        if !c.rng.chance(c.percent) {
            return None;
        }
        Some(match c.rng.below(3) {
            0 => Kill::BeforeSend,
            1 => Kill::InFlight { micros: c.rng.below(3000) },
            _ => Kill::AfterReply,
        })
    }

    fn restart(&mut self) -> Result<(), HsmdError> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, mut master) = launch(&self.bin, &self.dir, &self.env, &self.status)?;
        self.child = child;
        if let Some(init) = &self.init {
            send_frame(&mut master, init).map_err(io_err("sending init after a restart"))?;
            let reply = recv_frame(&mut master).map_err(io_err("reading init after a restart"))?;
            match reply.map(|r| InitReplyV4::decode(&r)) {
                Some(Ok(_)) => {}
                _ => return Err(HsmdError::RestartFailed { failure: self.status.last_failure() }),
            }
        }
        self.master = master;
        self.generation += 1;
        self.kills += 1;
        Ok(())
    }
}

/// Starts `bin` in `dir` as lightningd starts hsmd; status messages go to `log`.
fn launch(
    bin: &Path,
    dir: &Path,
    env: &[(String, String)],
    log: &StatusLog,
) -> Result<(Child, UnixStream), HsmdError> {
    let Spawned { child, master, status } =
        spawn(bin, dir, env).map_err(io_err("spawning warden-hsmd"))?;
    master.set_read_timeout(Some(TIMEOUT)).map_err(io_err("setting a timeout"))?;
    let reader_log = log.clone();
    let mut status_conn = status;
    std::thread::Builder::new()
        .name("hsmd-status".into())
        .spawn(move || {
            while let Ok(Some(body)) = recv_frame(&mut status_conn) {
                reader_log.push(match Status::decode(&body) {
                    Ok(s) => StatusEntry::Decoded(s),
                    Err(_) => StatusEntry::Undecodable(body),
                });
            }
        })
        .map_err(io_err("starting the status reader"))?;
    Ok((child, master))
}

/// Receives the fd passed after a `client_hsmfd` reply: one zero data byte and the fd.
fn recv_fd(master: &UnixStream) -> Result<UnixStream, HsmdError> {
    recv_client_fd(master).map_err(|e| HsmdError::NoFd { detail: e.to_string() })
}
