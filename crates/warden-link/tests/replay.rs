//! A man in the middle that replays or reorders whole encrypted frames over real loopback TCP:
//! the receiver refuses the first frame out of place with an authentication failure (its nonce
//! is not the one the frame was sealed with), refuses every later use of the link, and the
//! connection is dropped (the sender sees it closed). The error is what the daemons log when a
//! link ends (`warden run`'s "link closed" and the proxy's "signer link failed" lines print it
//! with its source): it names the part of the frame that failed authentication.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use common::{ephemeral, node_key, signer_key};
use warden_link::{FramePart, LinkError, LinkStream, TransportError};

/// Act one and act three (node -> signer).
const ACT_ONE: usize = 50;
const ACT_THREE: usize = 66;
/// A frame of an `n`-byte message: encrypted length and its tag, body and its tag.
const fn frame_len(n: usize) -> usize {
    18 + n + 16
}

/// What the relay does to the node's first frames.
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// Forward frame 1, then frame 1 again (instead of frame 2).
    Replay,
    /// Forward frame 2, then frame 1.
    Reorder,
}

/// Relays `from` to `to`: the handshake's pieces (`acts`, each forwarded as it comes) as they
/// are, then the frames of `lens` rearranged by `attack`, then whatever follows unchanged.
fn relay_frames(
    mut from: TcpStream,
    mut to: TcpStream,
    acts: [usize; 2],
    lens: [usize; 2],
    attack: Attack,
) {
    let mut read = |n: usize| {
        let mut b = vec![0u8; n];
        from.read_exact(&mut b).map(|()| b)
    };
    for act in acts {
        let Ok(h) = read(act) else { return };
        to.write_all(&h).unwrap();
    }
    let (Ok(f1), Ok(f2)) = (read(lens[0]), read(lens[1])) else { return };
    let out: Vec<&[u8]> = match attack {
        Attack::Replay => vec![&f1, &f1],
        Attack::Reorder => vec![&f2, &f1],
    };
    for f in out {
        if to.write_all(f).is_err() {
            return;
        }
    }
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Copies `from` to `to` unchanged.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// node -> relay (attacking the node's frames) -> signer. The node sends "first message" and
/// "second"; returns what the signer received (or its error), the signer's next receive, and
/// what the node saw when it then waited for an answer.
/// One receive's outcome.
type Received = Result<Vec<u8>, LinkError>;

fn run(attack: Attack) -> (Vec<Received>, Received) {
    let signer_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let signer_addr = signer_l.local_addr().unwrap();
    let relay_l = TcpListener::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay_l.local_addr().unwrap();
    let node_pub = node_key().public_key();
    let (m1, m2): (&[u8], &[u8]) = (b"first message", b"second");

    let signer = thread::spawn(move || {
        let (sock, _) = signer_l.accept().unwrap();
        let mut link = LinkStream::accept(sock, &signer_key(), node_pub, ephemeral(0x62)).unwrap();
        let mut got = vec![link.recv()];
        if got[0].is_ok() {
            got.push(link.recv());
        }
        // After the failure the link refuses every use; dropping it closes the connection.
        got.push(link.recv());
        got
    });
    let relay = thread::spawn(move || {
        let (client, _) = relay_l.accept().unwrap();
        let upstream = TcpStream::connect(signer_addr).unwrap();
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let lens = [frame_len(m1.len()), frame_len(m2.len())];
        let a = thread::spawn(move || {
            relay_frames(client, upstream, [ACT_ONE, ACT_THREE], lens, attack)
        });
        let b = thread::spawn(move || pump(u2, c2));
        a.join().unwrap();
        b.join().unwrap();
    });
    let sock = TcpStream::connect(relay_addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut link =
        LinkStream::connect(sock, &node_key(), signer_key().public_key(), ephemeral(0x61)).unwrap();
    link.send(m1).unwrap();
    link.send(m2).unwrap();
    let got = signer.join().unwrap();
    // The signer dropped the link: the node's wait for an answer ends with the connection
    // closed, not with a message.
    let node = link.recv();
    drop(link);
    relay.join().unwrap();
    (got, node)
}

fn assert_refused(e: &LinkError, what: &str) {
    assert!(
        matches!(e, LinkError::Transport(TransportError::BadMac { part: FramePart::Length })),
        "{what}: {e:?}"
    );
    // What the daemons log for it: the error and its source.
    let logged = format!("{e}: {}", std::error::Error::source(e).unwrap());
    assert!(logged.contains("link transport failed"), "{logged}");
    assert!(logged.contains("failed authentication"), "{logged}");
}

#[test]
fn a_replayed_frame_is_refused_and_the_link_dropped() {
    let (got, node) = run(Attack::Replay);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].as_ref().unwrap(), b"first message", "the original frame is accepted");
    assert_refused(got[1].as_ref().unwrap_err(), "the replayed frame");
    assert!(matches!(got[2], Err(LinkError::Closed)), "{:?}", got[2]);
    assert!(matches!(node, Err(LinkError::Io(_))), "the node sees the connection closed: {node:?}");
}

#[test]
fn reordered_frames_are_refused_and_the_link_dropped() {
    let (got, node) = run(Attack::Reorder);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_refused(got[0].as_ref().unwrap_err(), "the second frame sent first");
    assert!(matches!(got[1], Err(LinkError::Closed)), "{:?}", got[1]);
    assert!(matches!(node, Err(LinkError::Io(_))), "the node sees the connection closed: {node:?}");
}
