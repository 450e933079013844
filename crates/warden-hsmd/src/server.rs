//! The process around the [`Signer`]: lightningd's file descriptors, the master request loop,
//! one thread per client connection, and the status messages on file descriptor 0.
//!
//! lightningd (`lightningd/hsm_control.c`, `lightningd/subd.c`) starts hsmd with its status
//! connection on fd 0 and the master request socket on fd 3, in the lightning directory.
//! Frames are a `u32` big-endian length and a body (`wire/wire_sync.c`).
//!
//! Failure handling (DESIGN.md invariant 5, fail closed):
//! - on a client connection, a malformed, forbidden or unanswered request is reported to
//!   lightningd as `hsmstatus_client_bad_request` (type 1000) on fd 0 and only that client
//!   is closed; every other client goes on;
//! - on the master connection, the same is fatal: `status_fail` on fd 0, then a non-zero exit
//!   ([`run_master`] returns an error and the binary exits).
//!
//! `client_hsmfd` makes a `socketpair`, replies 109 on the master, then passes one end with
//! `SCM_RIGHTS` alongside a single zero byte of data (as `ccan/fdpass` does).
//!
//! What answers the requests is a [`Handler`], made by a [`Backend`] from lightningd's `init`:
//! the in-process [`Signer`] ([`LocalBackend`], the default) or, in proxy mode, the forwarder
//! to a remote `warden run` (`crate::proxy`). Everything else here is the same for both.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::mem::MaybeUninit;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex};

use rustix::net::{
    sendmsg, socketpair, AddressFamily, SendAncillaryBuffer, SendAncillaryMessage, SendFlags,
    SocketFlags, SocketType,
};
use warden_core::rng::EntropySource;
use warden_wire::frame::{self, HEADER_LEN};
use warden_wire::msg::*;
use warden_wire::{Message, NodeId, WireString};

use crate::permissions;
use crate::policy::PolicyEvent;
use crate::signer::{BadRequestError, ClientContext, InitError, Outcome, Signer};

/// What answers requests once `init` is done: the local [`Signer`], or a forwarder to a remote
/// one. It is shared by the master loop and every client thread.
pub trait Handler: Send + Sync + 'static {
    /// The node id `init` reported (the master's and the global clients' identity).
    fn node_id(&self) -> NodeId;

    /// Handles one request body from `client` (see [`Signer::handle`]).
    fn handle(&self, client: &ClientContext, body: &[u8]) -> Result<Outcome, BadRequestError>;

    /// Called once after `init` with the status connection, for what the handler logs there.
    fn attach_status(&self, status: &StatusSink) {
        let _ = status;
    }
}

impl Handler for Signer {
    fn node_id(&self) -> NodeId {
        Signer::node_id(self)
    }

    fn handle(&self, client: &ClientContext, body: &[u8]) -> Result<Outcome, BadRequestError> {
        Signer::handle(self, client, body)
    }

    /// Policy refusals and demoted warnings go to lightningd's log as `status_log` at level
    /// UNUSUAL (a refusal also reaches it as `hsmstatus_client_bad_request`, logged BROKEN).
    fn attach_status(&self, status: &StatusSink) {
        let status = status.clone();
        self.policy_log().set_sink(Arc::new(move |event: &PolicyEvent| {
            status.log(LogLevel::UNUSUAL, &event.to_string());
        }));
    }
}

/// Makes the [`Handler`] from lightningd's `init` request.
pub trait Backend {
    /// The handler it makes.
    type Handler: Handler;

    /// Handles `init` (its raw body) in the lightning directory `dir`: the handler and the
    /// reply body to send lightningd.
    fn init(&mut self, body: &[u8], dir: &Path) -> Result<(Self::Handler, Vec<u8>), InitError>;
}

/// The in-process signer: [`Signer::init`] with the `hsm_secret` of the lightning directory.
pub struct LocalBackend<'a> {
    /// Randomness for a new `hsm_secret`, if there is none yet.
    pub entropy: &'a mut dyn EntropySource,
}

impl fmt::Debug for LocalBackend<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalBackend")
    }
}

impl Backend for LocalBackend<'_> {
    type Handler = Signer;

    fn init(&mut self, body: &[u8], dir: &Path) -> Result<(Signer, Vec<u8>), InitError> {
        Signer::init(body, dir, self.entropy)
    }
}

/// Request types whose bodies carry a secret: a bad-request report carries only their type.
const SECRET_BEARING: [u16; 5] = [
    Init::TYPE,
    CheckFutureSecret::TYPE,
    ValidateRevocation::TYPE,
    SignPenaltyToUs::TYPE,
    SignAnyPenaltyToUs::TYPE,
];

/// The status connection (fd 0), shared by every thread; each message is written whole.
#[derive(Clone)]
pub struct StatusSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl fmt::Debug for StatusSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StatusSink")
    }
}

impl StatusSink {
    /// A sink writing to `w`.
    pub fn new(w: impl Write + Send + 'static) -> StatusSink {
        StatusSink(Arc::new(Mutex::new(Box::new(w))))
    }

    fn send<M: Message>(&self, m: &M) {
        let Ok(frame) = m.encode_frame() else { return };
        // A poisoned lock only means another thread panicked mid-write; keep reporting.
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = w.write_all(&frame).and_then(|()| w.flush());
    }

    /// Sends `status_fail` with `desc` (which must hold no secret).
    pub fn fail(&self, reason: FailReason, desc: &str) {
        self.send(&StatusFail { failreason: reason, desc: wire_string(desc) });
    }

    /// Sends `status_log` at `level` with `text` (which must hold no secret).
    pub fn log(&self, level: LogLevel, text: &str) {
        self.send(&StatusLog { level, peer: None, entry: wire_string(text) });
    }

    /// Reports a client's bad request.
    pub fn bad_request(&self, client: &ClientContext, err: &BadRequestError, body: &[u8]) {
        let msg = match frame::peek_type(body) {
            Ok(t) if SECRET_BEARING.contains(&t) => body.get(..2).unwrap_or_default().to_vec(),
            _ => body.to_vec(),
        };
        let description = wire_string(&err.to_string());
        self.send(&ClientBadRequest { id: client.id, description, msg });
    }
}

/// A wire string from text, with anything that is not printable ASCII replaced.
fn wire_string(text: &str) -> WireString {
    let clean: Vec<u8> =
        text.bytes().map(|b| if (0x20..0x7f).contains(&b) { b } else { b'?' }).collect();
    WireString::new(clean).unwrap_or_else(|_| {
        WireString::new(b"(unprintable)".to_vec()).expect("printable ASCII is a wire string")
    })
}

/// Why the master loop stopped with an error (already reported with `status_fail`).
#[derive(Debug)]
pub enum MasterError {
    /// Reading or writing the master socket failed.
    Io(io::Error),
    /// A frame was malformed.
    Frame(String),
    /// lightningd sent a request Warden refuses.
    BadRequest(BadRequestError),
    /// `init` failed.
    Init(InitError),
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MasterError::Io(_) => f.write_str("master connection i/o failed"),
            MasterError::Frame(e) => write!(f, "bad frame from master: {e}"),
            MasterError::BadRequest(e) => write!(f, "bad request from master: {e}"),
            MasterError::Init(e) => write!(f, "init failed: {e}"),
        }
    }
}

impl std::error::Error for MasterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MasterError::Io(e) => Some(e),
            MasterError::BadRequest(e) => Some(e),
            MasterError::Init(e) => Some(e),
            MasterError::Frame(_) => None,
        }
    }
}

/// What reading a frame gave.
enum ReadFrame {
    Body(Vec<u8>),
    /// The peer closed the connection between frames.
    Eof,
}

/// Reads one frame; a close in mid-frame or an oversized length is an error.
fn read_frame(r: &mut impl Read) -> Result<ReadFrame, String> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(header.get_mut(got..).unwrap_or_default()) {
            Ok(0) if got == 0 => return Ok(ReadFrame::Eof),
            Ok(0) => return Err("connection closed inside a frame header".into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    let len = frame::body_len(header).map_err(|e| e.to_string())?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(|e| format!("truncated frame: {e}"))?;
    Ok(ReadFrame::Body(body))
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let framed = frame::encode_frame(body).map_err(|e| io::Error::other(e.to_string()))?;
    w.write_all(&framed)
}

/// Serves one client connection until it closes or misbehaves.
pub fn serve_client<H: Handler + ?Sized>(
    signer: &H,
    client: ClientContext,
    mut conn: UnixStream,
    status: &StatusSink,
) {
    loop {
        let body = match read_frame(&mut conn) {
            Ok(ReadFrame::Body(b)) => b,
            Ok(ReadFrame::Eof) => return,
            Err(reason) => {
                status.bad_request(&client, &BadRequestError::Malformed { reason }, &[]);
                return;
            }
        };
        match signer.handle(&client, &body) {
            Ok(Outcome::Reply(reply)) => {
                if write_frame(&mut conn, &reply).is_err() {
                    return;
                }
            }
            Ok(Outcome::NewClient { .. }) => {
                // Only the master holds the permission for client_hsmfd; a client with it
                // would still not be given a new connection here.
                let err = BadRequestError::Unexpected { name: ClientHsmfd::NAME };
                status.bad_request(&client, &err, &body);
                return;
            }
            Err(err) => {
                status.bad_request(&client, &err, &body);
                return;
            }
        }
    }
}

/// Makes a new client connection: a socketpair, one end served on a new thread, the other
/// returned to be passed to lightningd.
fn spawn_client<H: Handler>(
    signer: &Arc<H>,
    client: ClientContext,
    status: &StatusSink,
) -> io::Result<std::os::fd::OwnedFd> {
    let (ours, theirs) =
        socketpair(AddressFamily::UNIX, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    let conn = UnixStream::from(ours);
    let signer = Arc::clone(signer);
    let status = status.clone();
    std::thread::Builder::new()
        .name("hsmd-client".into())
        .spawn(move || serve_client(&*signer, client, conn, &status))?;
    Ok(theirs)
}

/// Sends `fd` over `sock` with `SCM_RIGHTS` and one zero byte of data (`ccan/fdpass`).
fn send_fd(sock: &UnixStream, fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    let fds = [fd];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("ancillary buffer too small"));
    }
    let data = [0u8; 1];
    let sent = sendmsg(sock, &[IoSlice::new(&data)], &mut control, SendFlags::empty())?;
    if sent != 1 {
        return Err(io::Error::other("fd passing sent no data byte"));
    }
    Ok(())
}

/// Serves the master connection until lightningd closes it (`Ok`) or something fatal happens
/// (`Err`, after `status_fail` was sent on `status`).
pub fn run_master(
    master: UnixStream,
    status: StatusSink,
    dir: &Path,
    entropy: &mut dyn EntropySource,
) -> Result<(), MasterError> {
    run_master_with(master, status, dir, &mut LocalBackend { entropy })
}

/// [`run_master`] with the handler made by `backend` at `init`.
pub fn run_master_with<B: Backend>(
    mut master: UnixStream,
    status: StatusSink,
    dir: &Path,
    backend: &mut B,
) -> Result<(), MasterError> {
    let result = master_loop(&mut master, &status, dir, backend);
    if let Err(e) = &result {
        let reason = match e {
            MasterError::Io(_) | MasterError::Frame(_) | MasterError::BadRequest(_) => {
                FailReason::MASTER_IO
            }
            MasterError::Init(_) => FailReason::INTERNAL_ERROR,
        };
        status.fail(reason, &e.to_string());
    }
    result
}

fn master_loop<B: Backend>(
    master: &mut UnixStream,
    status: &StatusSink,
    dir: &Path,
    backend: &mut B,
) -> Result<(), MasterError> {
    let mut signer: Option<Arc<B::Handler>> = None;
    loop {
        let body = match read_frame(master).map_err(MasterError::Frame)? {
            ReadFrame::Body(b) => b,
            ReadFrame::Eof => return Ok(()),
        };
        let msg_type = frame::peek_type(&body).map_err(|e| MasterError::Frame(e.to_string()))?;
        let Some(s) = &signer else {
            match msg_type {
                DevPreinit::TYPE => {
                    // Developer flags; hsmd sends no reply. None changes what Warden answers.
                    DevPreinit::decode(&body).map_err(|e| {
                        MasterError::BadRequest(BadRequestError::Malformed {
                            reason: e.to_string(),
                        })
                    })?;
                }
                Init::TYPE => match backend.init(&body, dir) {
                    Ok((new, reply)) => {
                        new.attach_status(status);
                        write_frame(master, &reply).map_err(MasterError::Io)?;
                        signer = Some(Arc::new(new));
                    }
                    Err(InitError::Secret(e)) if e.error_code().is_some() => {
                        let code = e.error_code().map_or(0, |c| c.0);
                        let failure = InitReplyFailure {
                            error_code: code,
                            error_message: wire_string(&e.to_string()),
                        };
                        let reply =
                            failure.encode().map_err(|e| MasterError::Frame(e.to_string()))?;
                        write_frame(master, &reply).map_err(MasterError::Io)?;
                        return Err(MasterError::Init(InitError::Secret(e)));
                    }
                    Err(e) => return Err(MasterError::Init(e)),
                },
                _ => {
                    return Err(MasterError::BadRequest(BadRequestError::Unexpected {
                        name: "request before init",
                    }))
                }
            }
            continue;
        };
        let ctx = ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL };
        match s.handle(&ctx, &body).map_err(MasterError::BadRequest)? {
            Outcome::Reply(reply) => write_frame(master, &reply).map_err(MasterError::Io)?,
            Outcome::NewClient { reply, client } => {
                let fd = spawn_client(s, client, status).map_err(MasterError::Io)?;
                write_frame(master, &reply).map_err(MasterError::Io)?;
                send_fd(master, std::os::fd::AsFd::as_fd(&fd)).map_err(MasterError::Io)?;
            }
        }
    }
}
