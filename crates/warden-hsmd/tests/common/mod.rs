//! A harness that starts `warden-hsmd` exactly as lightningd does: fd 0 the status socket,
//! fd 3 the master socket, the working directory a lightning directory.
//!
//! No unsafe code: the master end is the child's stdin and the status end its stdout, and
//! `/bin/sh` moves them into place (`3<&0 0<&1 1>&2`) before `exec`ing the binary.
#![allow(dead_code, reason = "each test file uses part of the harness")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::io::{IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use rustix::net::{recvmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use warden_wire::msg::*;
use warden_wire::{Message, Status};

pub const BIN: &str = env!("CARGO_BIN_EXE_warden-hsmd");
pub const TRANSCRIPT: &str =
    include_str!("../../../warden-core/tests/data/cln-hsmd/legacy-lightning-1.json");

pub fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

pub fn transcript() -> serde_json::Value {
    serde_json::from_str(TRANSCRIPT).unwrap()
}

/// The recording's `hsm_secret` file.
pub fn legacy_secret() -> Vec<u8> {
    hex(transcript()["hsm_secret_file_hex"].as_str().unwrap())
}

/// The recording's exchanges: (client, request, reply).
pub fn exchanges() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    transcript()["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["client"].as_str().unwrap().to_owned(),
                hex(e["request"].as_str().unwrap()),
                hex(e["reply"].as_str().unwrap()),
            )
        })
        .collect()
}

pub struct Hsmd {
    pub child: Child,
    pub master: UnixStream,
    pub status: UnixStream,
    /// The `status_log` lines read so far.
    pub logs: Vec<String>,
}

pub fn spawn(dir: &Path, args: &[&str]) -> Hsmd {
    let (master, master_child) = UnixStream::pair().unwrap();
    let (status, status_child) = UnixStream::pair().unwrap();
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"exec "$0" "$@" 3<&0 0<&1 1>&2"#)
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::from(OwnedFd::from(master_child)))
        .stdout(Stdio::from(OwnedFd::from(status_child)))
        .stderr(Stdio::inherit())
        .env_remove("WARDEN_HSMD_VERSION")
        .spawn()
        .unwrap();
    let timeout = Some(Duration::from_secs(20));
    master.set_read_timeout(timeout).unwrap();
    status.set_read_timeout(timeout).unwrap();
    Hsmd { child, master, status, logs: Vec::new() }
}

pub fn send(conn: &mut UnixStream, body: &[u8]) {
    let mut framed = (body.len() as u32).to_be_bytes().to_vec();
    framed.extend_from_slice(body);
    conn.write_all(&framed).unwrap();
}

/// Reads one frame, or `None` on end of file.
pub fn recv(conn: &mut UnixStream) -> Option<Vec<u8>> {
    let mut header = [0u8; 4];
    match conn.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
        Err(e) => panic!("read failed: {e}"),
    }
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    conn.read_exact(&mut body).unwrap();
    Some(body)
}

pub fn call(conn: &mut UnixStream, body: &[u8]) -> Vec<u8> {
    send(conn, body);
    recv(conn).expect("a reply")
}

/// Receives the fd passed after a `client_hsmfd` reply: one data byte, zero, and the fd.
pub fn recv_fd(master: &UnixStream) -> UnixStream {
    let mut byte = [0xffu8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let got = recvmsg(master, &mut [IoSliceMut::new(&mut byte)], &mut control, RecvFlags::empty())
        .unwrap();
    assert_eq!(got.bytes, 1);
    assert_eq!(byte, [0]);
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = msg {
            fds.extend(it);
        }
    }
    assert_eq!(fds.len(), 1);
    let conn = UnixStream::from(fds.pop().unwrap());
    conn.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    conn
}

impl Hsmd {
    /// Sends the recording's `init` and returns the reply.
    pub fn init(&mut self) -> Vec<u8> {
        let (_, req, _) = exchanges().into_iter().next().unwrap();
        call(&mut self.master, &req)
    }

    /// Asks for a new client and returns its connection.
    pub fn client(&mut self, id: [u8; 33], dbid: u64, permissions: u64) -> UnixStream {
        let req = ClientHsmfd {
            id: warden_wire::NodeId::from_bytes(id),
            dbid,
            permissions: warden_wire::Permissions(permissions),
        };
        assert_eq!(call(&mut self.master, &req.encode().unwrap()), vec![0x00, 0x6d]);
        recv_fd(&self.master)
    }

    /// The next status message.
    /// The next status message that is not a `status_log` line (the policy logs each refusal
    /// there before the report these tests look at; `logs` keeps them).
    pub fn status(&mut self) -> Status {
        loop {
            match Status::decode(&recv(&mut self.status).expect("a status message")).unwrap() {
                Status::StatusLog(l) => {
                    self.logs.push(String::from_utf8_lossy(l.entry.as_bytes()).into_owned())
                }
                other => return other,
            }
        }
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "hsmd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Hsmd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The recording's peer id (of its `client_hsmfd`).
pub fn recorded_peer() -> [u8; 33] {
    let (_, req, _) = exchanges().into_iter().find(|(_, r, _)| r[..2] == [0, 9]).unwrap();
    req[2..35].try_into().unwrap()
}
