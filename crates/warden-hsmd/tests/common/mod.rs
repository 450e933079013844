//! A harness that starts `warden-hsmd` exactly as lightningd does: fd 0 the status socket,
//! fd 3 the master socket, the working directory a lightning directory.
//!
//! `warden_hsmd::client` does that (the master end is the child's stdin and the status end its
//! stdout, and `/bin/sh` moves them into place before `exec`ing the binary).
#![allow(dead_code, reason = "each test file uses part of the harness")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use warden_hsmd::client::{recv_client_fd, recv_frame, send_frame, spawn_with_args, Spawned};
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
    let Spawned { child, master, status } =
        spawn_with_args(Path::new(BIN), dir, args, &[]).unwrap();
    let timeout = Some(Duration::from_secs(20));
    master.set_read_timeout(timeout).unwrap();
    status.set_read_timeout(timeout).unwrap();
    Hsmd { child, master, status, logs: Vec::new() }
}

pub fn send(conn: &mut UnixStream, body: &[u8]) {
    send_frame(conn, body).unwrap();
}

/// Reads one frame, or `None` on end of file.
pub fn recv(conn: &mut UnixStream) -> Option<Vec<u8>> {
    recv_frame(conn).unwrap()
}

pub fn call(conn: &mut UnixStream, body: &[u8]) -> Vec<u8> {
    send(conn, body);
    recv(conn).expect("a reply")
}

/// Receives the fd passed after a `client_hsmfd` reply: one data byte, zero, and the fd.
pub fn recv_fd(master: &UnixStream) -> UnixStream {
    let conn = recv_client_fd(master).unwrap();
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
