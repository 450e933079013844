//! Mutual authentication, pinning and tamper resistance of the link, in memory (sans-I/O)
//! and over real loopback TCP sockets.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread;

use common::{ephemeral, handshake_pair, node_key, signer_key, static_key};
use warden_link::{
    Act, FramePart, HandshakeError, InitiatorHandshake, LinkError, LinkStream, ResponderHandshake,
    TransportError, MAX_MESSAGE_LEN,
};

// ---------------------------------------------------------------- pinning

/// An initiator holding a static key other than the pinned one completes the cryptography
/// but is refused after act three, with both keys named.
#[test]
fn responder_refuses_unpinned_initiator() {
    let (node, signer, intruder) = (node_key(), signer_key(), static_key(0x31));
    let (init, act_one) = InitiatorHandshake::new(&intruder, signer.public_key(), ephemeral(1));
    let resp = ResponderHandshake::new(&signer, node.public_key(), ephemeral(2));
    let (resp, act_two) = resp.read_act_one(&act_one).unwrap();
    let (act_three, _) = init.read_act_two(&act_two).unwrap();
    match resp.read_act_three(&act_three).unwrap_err() {
        HandshakeError::UnexpectedRemoteKey(m) => {
            assert_eq!(m.expected, node.public_key());
            assert_eq!(m.actual, intruder.public_key());
        }
        other => panic!("expected UnexpectedRemoteKey, got {other:?}"),
    }
}

/// An impostor signer (another static key) cannot even read act one, and an act two it
/// makes for itself is refused by the initiator.
#[test]
fn initiator_refuses_impostor_responder() {
    let (node, signer, impostor) = (node_key(), signer_key(), static_key(0x32));
    let (init, act_one) = InitiatorHandshake::new(&node, signer.public_key(), ephemeral(1));
    let resp = ResponderHandshake::new(&impostor, node.public_key(), ephemeral(2));
    assert_eq!(resp.read_act_one(&act_one).unwrap_err(), HandshakeError::BadMac { act: Act::One });

    // The impostor answers with an act two from a session it opened to itself.
    let (_, own_act_one) = InitiatorHandshake::new(&node, impostor.public_key(), ephemeral(3));
    let (_, act_two) = ResponderHandshake::new(&impostor, node.public_key(), ephemeral(4))
        .read_act_one(&own_act_one)
        .unwrap();
    assert_eq!(init.read_act_two(&act_two).unwrap_err(), HandshakeError::BadMac { act: Act::Two });
}

// ---------------------------------------------------------------- handshake tampering

/// Flips each bit position's byte of each act in turn (a man in the middle altering one byte):
/// every alteration is refused at that act.
#[test]
fn any_altered_handshake_byte_is_refused() {
    let (node, signer) = (node_key(), signer_key());
    let run = |act: Act, pos: usize| -> HandshakeError {
        let (init, mut act_one) = InitiatorHandshake::new(&node, signer.public_key(), ephemeral(1));
        if act == Act::One {
            act_one[pos] ^= 0x01;
        }
        let resp = ResponderHandshake::new(&signer, node.public_key(), ephemeral(2));
        let (resp, mut act_two) = match resp.read_act_one(&act_one) {
            Ok(x) => x,
            Err(e) => return e,
        };
        if act == Act::Two {
            act_two[pos] ^= 0x01;
        }
        let (mut act_three, _) = match init.read_act_two(&act_two) {
            Ok(x) => x,
            Err(e) => return e,
        };
        if act == Act::Three {
            act_three[pos] ^= 0x01;
        }
        match resp.read_act_three(&act_three) {
            Ok(_) => panic!("{act} byte {pos} altered, yet the handshake completed"),
            Err(e) => e,
        }
    };
    for (act, len) in [(Act::One, 50), (Act::Two, 50), (Act::Three, 66)] {
        for pos in 0..len {
            let err = run(act, pos);
            assert_eq!(err.act(), act, "{act} byte {pos}: {err:?}");
            match (act, pos) {
                (_, 0) => assert!(matches!(err, HandshakeError::UnknownVersion { version: 1, .. })),
                (Act::Three, 1..=49) => assert_eq!(err, HandshakeError::StaticKeyMac),
                (Act::Three, _) => assert_eq!(err, HandshakeError::BadMac { act }),
                // An altered ephemeral key is either off the curve or changes the ECDH.
                (_, 1..=33) => assert!(
                    matches!(
                        err,
                        HandshakeError::BadMac { .. } | HandshakeError::InvalidPublicKey { .. }
                    ),
                    "{act} byte {pos}: {err:?}"
                ),
                _ => assert_eq!(err, HandshakeError::BadMac { act }),
            }
        }
    }
}

// ---------------------------------------------------------------- transport tampering

/// Altering any one byte of a frame is refused, and the receiver is unusable afterwards: even
/// the genuine frame and all later ones are refused.
#[test]
fn any_altered_frame_byte_is_refused_and_poisons() {
    let msg = b"sign_commitment_tx: please";
    // The handshake is deterministic for fixed ephemeral keys, so every pair below is the
    // same session and `next` is the genuine second frame of each.
    let (mut ti, _) = handshake_pair(&node_key(), &signer_key(), 7);
    let frame = ti.encrypt(msg).unwrap();
    let next = ti.encrypt(b"next").unwrap();
    for pos in 0..frame.len() {
        let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 7);
        let frame = ti.encrypt(msg).unwrap();
        let mut bad = frame.clone();
        bad[pos] ^= 0x80;
        let part = if pos < 18 { FramePart::Length } else { FramePart::Body };
        let err = tr.decrypt_frame(&bad).unwrap_err();
        assert_eq!(err, TransportError::BadMac { part }, "byte {pos}");
        assert!(tr.is_poisoned());
        assert_eq!(tr.decrypt_frame(&frame).unwrap_err(), TransportError::Poisoned);
        assert_eq!(tr.decrypt_frame(&next).unwrap_err(), TransportError::Poisoned);
    }
}

/// A replayed frame is refused (its nonce is spent: the MAC no longer verifies), and so is a
/// reordered one.
#[test]
fn replayed_or_reordered_frames_are_refused() {
    let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 9);
    let f1 = ti.encrypt(b"one").unwrap();
    let f2 = ti.encrypt(b"two").unwrap();
    assert_eq!(tr.decrypt_frame(&f1).unwrap(), b"one");
    assert_eq!(
        tr.decrypt_frame(&f1).unwrap_err(),
        TransportError::BadMac { part: FramePart::Length }
    );
    assert_eq!(tr.decrypt_frame(&f2).unwrap_err(), TransportError::Poisoned);

    let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 9);
    let _f1 = ti.encrypt(b"one").unwrap();
    let f2 = ti.encrypt(b"two").unwrap();
    assert_eq!(
        tr.decrypt_frame(&f2).unwrap_err(),
        TransportError::BadMac { part: FramePart::Length }
    );
}

/// A frame from another session (same keys, other ephemeral keys) is refused.
#[test]
fn frame_from_another_session_is_refused() {
    let (mut a, _) = handshake_pair(&node_key(), &signer_key(), 1);
    let (_, mut b) = handshake_pair(&node_key(), &signer_key(), 3);
    let f = a.encrypt(b"hi").unwrap();
    assert!(matches!(b.decrypt_frame(&f), Err(TransportError::BadMac { .. })));
}

#[test]
fn message_size_limit_and_call_order() {
    let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 5);
    let too_long = vec![0u8; MAX_MESSAGE_LEN + 1];
    assert_eq!(
        ti.encrypt(&too_long).unwrap_err(),
        TransportError::MessageTooLong { len: MAX_MESSAGE_LEN + 1 }
    );
    // The refusal consumed no nonce: the largest message still goes through.
    let max = vec![0xa5u8; MAX_MESSAGE_LEN];
    let frame = ti.encrypt(&max).unwrap();
    assert_eq!(frame.len(), 18 + MAX_MESSAGE_LEN + 16);
    assert_eq!(
        tr.decrypt_body(&frame[18..]).unwrap_err(),
        TransportError::OutOfOrder { part: FramePart::Body }
    );
    assert_eq!(tr.decrypt_length(&frame[..18]).unwrap(), MAX_MESSAGE_LEN + 16);
    assert_eq!(
        tr.decrypt_length(&frame[..18]).unwrap_err(),
        TransportError::OutOfOrder { part: FramePart::Length }
    );
    assert_eq!(tr.decrypt_body(&frame[18..]).unwrap(), max);
    // Empty messages are allowed.
    let empty = ti.encrypt(&[]).unwrap();
    assert_eq!(tr.decrypt_frame(&empty).unwrap(), b"");
}

/// The two directions can be driven from separate owners after `split`.
#[test]
fn split_directions_work_independently() {
    let (ti, tr) = handshake_pair(&node_key(), &signer_key(), 11);
    let (mut i_tx, mut i_rx) = ti.split();
    let (mut r_tx, mut r_rx) = tr.split();
    for i in 0..1200u32 {
        let m = i.to_be_bytes();
        assert_eq!(r_rx.decrypt_frame(&i_tx.encrypt(&m).unwrap()).unwrap(), m);
        if i % 3 == 0 {
            assert_eq!(i_rx.decrypt_frame(&r_tx.encrypt(&m).unwrap()).unwrap(), m);
        }
    }
}

// ---------------------------------------------------------------- loopback TCP

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").unwrap()
}

fn message(i: usize) -> Vec<u8> {
    let len = match i {
        1234 => MAX_MESSAGE_LEN,
        _ => i % 700,
    };
    (0..len).map(|j| (i.wrapping_mul(31) ^ j) as u8).collect()
}

/// A handshake and 2,500 messages each way over a real socket (each key rotates every 500
/// messages, so both directions cross four rotations), including a 65535-byte message.
#[test]
fn tcp_loopback_2500_messages_both_directions() {
    const N: usize = 2500;
    let l = listener();
    let addr = l.local_addr().unwrap();
    let (node, signer) = (node_key(), signer_key());
    let node_pub = node.public_key();
    let server = thread::spawn(move || {
        let signer = signer_key();
        let (sock, _) = l.accept().unwrap();
        let mut link = LinkStream::accept(sock, &signer, node_pub, ephemeral(0x42)).unwrap();
        assert_eq!(link.remote_static(), &node_pub);
        for i in 0..N {
            let m = link.recv().unwrap();
            assert_eq!(m, message(i), "server message {i}");
            let mut reply = m;
            reply.reverse();
            link.send(&reply).unwrap();
        }
    });
    let sock = TcpStream::connect(addr).unwrap();
    let mut link = LinkStream::connect(sock, &node, signer.public_key(), ephemeral(0x41)).unwrap();
    for i in 0..N {
        link.send(&message(i)).unwrap();
        let mut expected = message(i);
        expected.reverse();
        assert_eq!(link.recv().unwrap(), expected, "client message {i}");
    }
    server.join().unwrap();
}

/// Over TCP, a node whose key is not pinned is refused with a clear error, and its link sees
/// the connection closed.
#[test]
fn tcp_unpinned_initiator_refused() {
    let l = listener();
    let addr = l.local_addr().unwrap();
    let node_pub = node_key().public_key();
    let server = thread::spawn(move || {
        let (sock, _) = l.accept().unwrap();
        LinkStream::accept(sock, &signer_key(), node_pub, ephemeral(0x42)).unwrap_err()
    });
    let intruder = static_key(0x33);
    let sock = TcpStream::connect(addr).unwrap();
    // The initiator's side completes: it cannot know yet that it is refused.
    let mut link =
        LinkStream::connect(sock, &intruder, signer_key().public_key(), ephemeral(0x41)).unwrap();
    let err = server.join().unwrap();
    match &err {
        LinkError::Handshake(HandshakeError::UnexpectedRemoteKey(m)) => {
            assert_eq!(m.actual, intruder.public_key());
        }
        other => panic!("expected UnexpectedRemoteKey, got {other:?}"),
    }
    assert!(std::error::Error::source(&err).unwrap().to_string().contains("pinned"));
    assert!(matches!(link.recv(), Err(LinkError::Io(_))));
    assert!(matches!(link.recv(), Err(LinkError::Closed)));
}

/// Direction of the relay in which a byte is altered.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Dir {
    ToSigner,
    ToNode,
}

/// Copies `from` to `to`, flipping the byte at stream offset `flip` if given.
fn pump(mut from: TcpStream, mut to: TcpStream, flip: Option<usize>) {
    let mut buf = [0u8; 4096];
    let mut offset = 0usize;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(f) = flip {
            if (offset..offset + n).contains(&f) {
                buf[f - offset] ^= 0x04;
            }
        }
        offset += n;
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// Runs node -> relay -> signer with one byte altered at `offset` of direction `dir`; the node
/// sends "ping" and the signer answers "pong". Returns (node result, signer result).
fn relayed_exchange(dir: Dir, offset: usize) -> (Result<(), LinkError>, Result<(), LinkError>) {
    let signer_l = listener();
    let signer_addr = signer_l.local_addr().unwrap();
    let relay_l = listener();
    let relay_addr = relay_l.local_addr().unwrap();
    let node_pub = node_key().public_key();

    let signer = thread::spawn(move || -> Result<(), LinkError> {
        let (sock, _) = signer_l.accept().unwrap();
        let mut link = LinkStream::accept(sock, &signer_key(), node_pub, ephemeral(0x52))?;
        let m = link.recv()?;
        assert_eq!(m, b"ping");
        link.send(b"pong")?;
        // A second exchange shows the link stays unusable after a failure on either side.
        let m = link.recv()?;
        assert_eq!(m, b"ping2");
        link.send(b"pong2")
    });
    let relay = thread::spawn(move || {
        let (client, _) = relay_l.accept().unwrap();
        let upstream = TcpStream::connect(signer_addr).unwrap();
        let (c2, u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let flip = move |d: Dir| (d == dir).then_some(offset);
        let a = thread::spawn(move || pump(client, upstream, flip(Dir::ToSigner)));
        let b = thread::spawn(move || pump(u2, c2, flip(Dir::ToNode)));
        a.join().unwrap();
        b.join().unwrap();
    });
    let node = (|| -> Result<(), LinkError> {
        let sock = TcpStream::connect(relay_addr).unwrap();
        let mut link =
            LinkStream::connect(sock, &node_key(), signer_key().public_key(), ephemeral(0x51))?;
        link.send(b"ping")?;
        let r = link.recv();
        if r.is_err() {
            // After any failure the link refuses further use.
            assert!(matches!(link.send(b"again"), Err(LinkError::Closed)));
        }
        assert_eq!(r?, b"pong");
        link.send(b"ping2")?;
        assert_eq!(link.recv()?, b"pong2");
        Ok(())
    })();
    let signer = signer.join().unwrap();
    relay.join().unwrap();
    (node, signer)
}

fn is_auth_failure(e: &LinkError) -> bool {
    matches!(
        e,
        LinkError::Handshake(
            HandshakeError::BadMac { .. }
                | HandshakeError::StaticKeyMac
                | HandshakeError::InvalidPublicKey { .. }
        ) | LinkError::Transport(TransportError::BadMac { .. })
    )
}

/// A man-in-the-middle relay that alters one byte of act one, two or three, or of a transport
/// frame in either direction: the receiving side refuses it with an authentication failure,
/// and the exchange never completes.
#[test]
fn tcp_relay_altering_one_byte_is_refused() {
    // Node -> signer stream: act one [0, 50), act three [50, 116), then frames of "ping"
    // (18 + 4 + 16 = 38 bytes). Signer -> node: act two [0, 50), then frames.
    let cases = [
        (Dir::ToSigner, 20, "act one"),
        (Dir::ToSigner, 49, "act one tag"),
        (Dir::ToNode, 40, "act two"),
        (Dir::ToSigner, 60, "act three static key"),
        (Dir::ToSigner, 110, "act three tag"),
        (Dir::ToSigner, 116 + 3, "first frame's length"),
        (Dir::ToSigner, 116 + 20, "first frame's body"),
        (Dir::ToSigner, 116 + 38 + 30, "second frame's tag"),
        (Dir::ToNode, 50 + 5, "reply's length"),
        (Dir::ToNode, 50 + 19, "reply's body"),
    ];
    for (dir, offset, what) in cases {
        let (node, signer) = relayed_exchange(dir, offset);
        let receiver = match dir {
            Dir::ToSigner => &signer,
            Dir::ToNode => &node,
        };
        let err = receiver.as_ref().expect_err(what);
        assert!(is_auth_failure(err), "{what}: {err:?}");
        assert!(node.is_err(), "{what}: node completed");
    }
    // Control: an honest relay changes nothing.
    let (node, signer) = relayed_exchange(Dir::ToSigner, usize::MAX);
    node.unwrap();
    signer.unwrap();
}
