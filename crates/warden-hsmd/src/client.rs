//! The client side of the hsmd protocol, as lightningd speaks it: start `warden-hsmd` on a
//! pair of sockets and exchange frames on its master connection.
//!
//! lightningd starts hsmd with its master connection on file descriptor 3 and its status
//! connection on file descriptor 0 (standard output goes to standard error). Warden's own
//! tools that need the signer (`warden unseal`, `warden backup restore`) and the test kit start
//! it the same way, so they work in both of its modes: local (the secret in the lightning
//! directory) and proxy (the remote signer dials in, with the proxy's environment).

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use warden_wire::frame;

/// A started `warden-hsmd`: the process, its master connection (fd 3 in the child) and its
/// status connection (fd 0 in the child).
#[derive(Debug)]
pub struct Spawned {
    /// The process.
    pub child: Child,
    /// The master connection: requests and replies.
    pub master: UnixStream,
    /// The status connection: `status_log`, `status_fail`, `hsmstatus_client_bad_request`.
    pub status: UnixStream,
}

/// Starts `bin` in the lightning directory `dir` as lightningd does, with `env` added to this
/// process's environment.
pub fn spawn(bin: &Path, dir: &Path, env: &[(String, String)]) -> io::Result<Spawned> {
    spawn_with_args(bin, dir, &[], env)
}

/// [`spawn`] with command-line arguments (lightningd passes `--developer`, `--log-io` and
/// the like to its subdaemons).
pub fn spawn_with_args(
    bin: &Path,
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> io::Result<Spawned> {
    let (master, master_child) = UnixStream::pair()?;
    let (status, status_child) = UnixStream::pair()?;
    // The shell moves the master connection from 0 to 3 and the status connection from 1 to
    // 0, so the binary sees exactly lightningd's layout.
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 3<&0 0<&1 1>&2"#)
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(OwnedFd::from(master_child)))
        .stdout(Stdio::from(OwnedFd::from(status_child)))
        .stderr(Stdio::inherit())
        .spawn()?;
    Ok(Spawned { child, master, status })
}

/// Writes one frame holding `body`.
pub fn send_frame(conn: &mut impl Write, body: &[u8]) -> io::Result<()> {
    let framed = frame::encode_frame(body).map_err(|e| io::Error::other(e.to_string()))?;
    conn.write_all(&framed)
}

/// Reads one frame, or `None` on end of file (or a reset) before its first byte.
pub fn recv_frame(conn: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; frame::HEADER_LEN];
    match conn.read_exact(&mut header) {
        Ok(()) => {}
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(e),
    }
    let len = frame::body_len(header).map_err(|e| io::Error::other(e.to_string()))?;
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(Some(body))
}

/// Receives the connection hsmd passes after a `client_hsmfd` reply, as `ccan/fdpass` sends
/// it: one zero data byte with exactly one file descriptor (`SCM_RIGHTS`).
pub fn recv_client_fd(master: &UnixStream) -> io::Result<UnixStream> {
    use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;

    let mut byte = [0xffu8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(master, &mut [IoSliceMut::new(&mut byte)], &mut control, RecvFlags::empty())
        .map_err(io::Error::from)?;
    if got.bytes != 1 || byte != [0] {
        return Err(io::Error::other(format!("no client fd: {} data bytes {byte:?}", got.bytes)));
    }
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = msg {
            fds.extend(it);
        }
    }
    match (fds.pop(), fds.is_empty()) {
        (Some(fd), true) => Ok(UnixStream::from(fd)),
        _ => Err(io::Error::other("no client fd: not exactly one fd")),
    }
}
