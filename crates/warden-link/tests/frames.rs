//! Link messages over a real loopback socket: split halves, chunked messages above the
//! BOLT-08 size, concurrent writers, and a malformed message closing the link.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

use common::{ephemeral, node_key, signer_key};
use warden_link::frame::chunks;
use warden_link::{
    ClientContext, FrameError, LinkError, LinkMessage, LinkStream, Reply, Request, MAX_MESSAGE_LEN,
};

fn pair() -> (LinkStream<TcpStream>, LinkStream<TcpStream>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let node_pub = node_key().public_key();
    let server = thread::spawn(move || {
        let (s, _) = l.accept().unwrap();
        LinkStream::accept(s, &signer_key(), node_pub, ephemeral(2)).unwrap()
    });
    let c = TcpStream::connect(addr).unwrap();
    let client =
        LinkStream::connect(c, &node_key(), signer_key().public_key(), ephemeral(1)).unwrap();
    (client, server.join().unwrap())
}

fn split(
    s: LinkStream<TcpStream>,
) -> (warden_link::LinkReader<TcpStream>, warden_link::LinkWriter<TcpStream>) {
    s.split(|t| Ok((t.try_clone()?, t))).unwrap()
}

fn request(id: u64, len: usize) -> LinkMessage {
    let mut msg = vec![0u8, 19];
    msg.extend((0..len).map(|i| (i as u64 ^ id) as u8));
    LinkMessage::Request(Request {
        id,
        client: ClientContext { peer_id: [2; 33], dbid: id, permissions: 8 },
        msg,
    })
}

/// Requests from several threads over one writer, each answered by id; one of 200 kB (four
/// chunks), which BOLT-08 alone could not carry.
#[test]
fn multiplexed_requests_and_large_messages() {
    let (client, server) = pair();
    let (mut c_read, c_write) = split(client);
    let (mut s_read, mut s_write) = split(server);
    let echo = thread::spawn(move || {
        for _ in 0..9 {
            match s_read.recv_message().unwrap() {
                LinkMessage::Request(r) => s_write
                    .send_message(&LinkMessage::Reply(Reply { id: r.id, msg: r.msg.clone() }))
                    .unwrap(),
                LinkMessage::Ping(n) => s_write.send_message(&LinkMessage::Pong(n)).unwrap(),
                other => panic!("{other:?}"),
            }
        }
    });
    let writer = Arc::new(Mutex::new(c_write));
    let senders: Vec<_> = (0..8u64)
        .map(|id| {
            let w = Arc::clone(&writer);
            thread::spawn(move || {
                let len = if id == 3 { 200_000 } else { 100 + id as usize };
                w.lock().unwrap().send_message(&request(id, len)).unwrap();
            })
        })
        .collect();
    writer.lock().unwrap().send_message(&LinkMessage::Ping(42)).unwrap();
    for s in senders {
        s.join().unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..9 {
        match c_read.recv_message().unwrap() {
            LinkMessage::Reply(r) => {
                let LinkMessage::Request(want) = request(r.id, r.msg.len() - 2) else {
                    unreachable!()
                };
                assert_eq!(r.msg, want.msg);
                seen.push(r.id);
            }
            LinkMessage::Pong(n) => assert_eq!(n, 42),
            other => panic!("{other:?}"),
        }
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..8).collect::<Vec<_>>());
    echo.join().unwrap();
}

/// An unknown even message type (well encrypted and chunked) is refused and closes the
/// receiving half; an unknown odd one is passed up to be ignored.
#[test]
fn unknown_even_type_closes_the_link() {
    let (mut client, server) = pair();
    let (mut s_read, _s_write) = split(server);
    for chunk in chunks(&[0, 13, 1, 2]) {
        client.send(&chunk).unwrap();
    }
    assert_eq!(s_read.recv_message().unwrap(), LinkMessage::Unknown { msg_type: 13 });
    for chunk in chunks(&[0, 12, 1, 2]) {
        client.send(&chunk).unwrap();
    }
    match s_read.recv_message() {
        Err(LinkError::Frame(FrameError::UnknownEvenType { msg_type: 12 })) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(s_read.recv_message(), Err(LinkError::Closed)));
}

/// A chunk with an unknown flag is refused.
#[test]
fn bad_chunk_flag_closes_the_link() {
    let (mut client, mut server) = pair();
    client.send(&[7, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
    assert!(matches!(
        server.recv_message(),
        Err(LinkError::Frame(FrameError::BadChunkFlag { flag: 7 }))
    ));
    let big = vec![1u8; MAX_MESSAGE_LEN];
    assert!(client.send(&big).is_ok());
}
