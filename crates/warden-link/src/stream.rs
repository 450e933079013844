//! Thin blocking wrappers: the handshake and the transport over any `Read + Write` (a
//! `std::net::TcpStream` in Warden). All protocol logic stays in the sans-I/O modules; this
//! module only moves bytes.

use std::io::{self, Read, Write};
use std::vec;
use std::vec::Vec;

use secp256k1::PublicKey;

use crate::error::{HandshakeError, TransportError};
use crate::frame::{chunks, FrameError, LinkMessage, Reassembler};
use crate::handshake::{
    InitiatorHandshake, ResponderHandshake, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};
use crate::keys::{EphemeralSecretKey, StaticSecretKey};
use crate::transport::{Decryptor, Encryptor, Transport, LENGTH_PREFIX_LEN};

/// A failure of a [`LinkStream`]. After any failure the stream refuses further use.
#[derive(Debug)]
#[non_exhaustive]
pub enum LinkError {
    /// Reading or writing the underlying stream failed (including the peer closing it).
    Io(io::Error),
    /// The handshake failed.
    Handshake(HandshakeError),
    /// Encrypting or decrypting a message failed.
    Transport(TransportError),
    /// A link message or its chunks were malformed.
    Frame(FrameError),
    /// An earlier failure closed this link.
    Closed,
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LinkError::Io(_) => f.write_str("link i/o failed"),
            LinkError::Handshake(_) => f.write_str("link handshake failed"),
            LinkError::Transport(_) => f.write_str("link transport failed"),
            LinkError::Frame(_) => f.write_str("malformed link message"),
            LinkError::Closed => f.write_str("link closed after an earlier failure"),
        }
    }
}

impl std::error::Error for LinkError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LinkError::Io(e) => Some(e),
            LinkError::Handshake(e) => Some(e),
            LinkError::Transport(e) => Some(e),
            LinkError::Frame(e) => Some(e),
            LinkError::Closed => None,
        }
    }
}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> Self {
        LinkError::Io(e)
    }
}

impl From<HandshakeError> for LinkError {
    fn from(e: HandshakeError) -> Self {
        LinkError::Handshake(e)
    }
}

impl From<FrameError> for LinkError {
    fn from(e: FrameError) -> Self {
        LinkError::Frame(e)
    }
}

impl From<TransportError> for LinkError {
    fn from(e: TransportError) -> Self {
        LinkError::Transport(e)
    }
}

/// An authenticated, encrypted message stream over `S`.
pub struct LinkStream<S> {
    io: S,
    transport: Transport,
    closed: bool,
}

impl<S: Read + Write> LinkStream<S> {
    /// Runs the initiator's side of the handshake over `io` to the responder whose static key
    /// is `remote_static`.
    pub fn connect(
        mut io: S,
        local_static: &StaticSecretKey,
        remote_static: PublicKey,
        ephemeral: EphemeralSecretKey,
    ) -> Result<Self, LinkError> {
        let (hs, act_one) = InitiatorHandshake::new(local_static, remote_static, ephemeral);
        io.write_all(&act_one)?;
        io.flush()?;
        let mut act_two = [0u8; ACT_TWO_LEN];
        io.read_exact(&mut act_two)?;
        let (act_three, transport) = hs.read_act_two(&act_two)?;
        io.write_all(&act_three)?;
        io.flush()?;
        Ok(LinkStream { io, transport, closed: false })
    }

    /// Runs the responder's side of the handshake over `io`, accepting only an initiator that
    /// authenticates as `pinned_remote`.
    pub fn accept(
        mut io: S,
        local_static: &StaticSecretKey,
        pinned_remote: PublicKey,
        ephemeral: EphemeralSecretKey,
    ) -> Result<Self, LinkError> {
        let hs = ResponderHandshake::new(local_static, pinned_remote, ephemeral);
        let mut act_one = [0u8; ACT_ONE_LEN];
        io.read_exact(&mut act_one)?;
        let (hs, act_two) = hs.read_act_one(&act_one)?;
        io.write_all(&act_two)?;
        io.flush()?;
        let mut act_three = [0u8; ACT_THREE_LEN];
        io.read_exact(&mut act_three)?;
        let transport = hs.read_act_three(&act_three)?;
        Ok(LinkStream { io, transport, closed: false })
    }

    /// Sends one message (at most 65535 bytes; a longer one is refused and the link stays
    /// usable).
    pub fn send(&mut self, msg: &[u8]) -> Result<(), LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let frame = self.transport.encrypt(msg)?;
        let r = self.io.write_all(&frame).and_then(|()| self.io.flush());
        self.close_on_err(r.map_err(LinkError::from))
    }

    /// Receives one message.
    pub fn recv(&mut self) -> Result<Vec<u8>, LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let r = self.recv_inner();
        self.close_on_err(r)
    }

    fn recv_inner(&mut self) -> Result<Vec<u8>, LinkError> {
        let mut prefix = [0u8; LENGTH_PREFIX_LEN];
        self.io.read_exact(&mut prefix)?;
        let body_len = self.transport.decrypt_length(&prefix)?;
        let mut body = vec![0u8; body_len];
        self.io.read_exact(&mut body)?;
        Ok(self.transport.decrypt_body(&body)?)
    }

    fn close_on_err<T>(&mut self, r: Result<T, LinkError>) -> Result<T, LinkError> {
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    /// The peer's authenticated static key.
    pub fn remote_static(&self) -> &PublicKey {
        self.transport.remote_static()
    }

    /// Sends one [`LinkMessage`], in as many chunks as it needs (see [`crate::frame`]).
    pub fn send_message(&mut self, msg: &LinkMessage) -> Result<(), LinkError> {
        let encoded = msg.encode()?;
        for chunk in chunks(&encoded) {
            self.send(&chunk)?;
        }
        Ok(())
    }

    /// Receives one [`LinkMessage`], joining its chunks; a malformed one closes the link.
    pub fn recv_message(&mut self) -> Result<LinkMessage, LinkError> {
        let mut reassembler = Reassembler::default();
        loop {
            let chunk = self.recv()?;
            let r = reassembler.push(&chunk).map_err(LinkError::from);
            if let Some(encoded) = self.close_on_err(r)? {
                let r = LinkMessage::decode(&encoded).map_err(LinkError::from);
                return self.close_on_err(r);
            }
        }
    }

    /// Splits the link into a receiving and a sending half, so that one thread can read while
    /// others write; `split_io` makes the two handles of the stream (for a `TcpStream`, the
    /// stream and its `try_clone`).
    pub fn split<R, W>(
        self,
        split_io: impl FnOnce(S) -> io::Result<(R, W)>,
    ) -> Result<(LinkReader<R>, LinkWriter<W>), LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let remote_static = *self.transport.remote_static();
        let (encryptor, decryptor) = self.transport.split();
        let (r, w) = split_io(self.io)?;
        Ok((
            LinkReader {
                io: r,
                decryptor,
                reassembler: Reassembler::default(),
                remote_static,
                closed: false,
            },
            LinkWriter { io: w, encryptor, closed: false },
        ))
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
    }
}

/// The receiving half of a split [`LinkStream`].
pub struct LinkReader<R> {
    io: R,
    decryptor: Decryptor,
    reassembler: Reassembler,
    remote_static: PublicKey,
    closed: bool,
}

impl<R: Read> LinkReader<R> {
    /// Receives one [`LinkMessage`], joining its chunks. Any failure (including a read
    /// timeout of the underlying stream) closes this half.
    pub fn recv_message(&mut self) -> Result<LinkMessage, LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let r = self.recv_inner();
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    fn recv_inner(&mut self) -> Result<LinkMessage, LinkError> {
        loop {
            let mut prefix = [0u8; LENGTH_PREFIX_LEN];
            self.io.read_exact(&mut prefix)?;
            let body_len = self.decryptor.decrypt_length(&prefix)?;
            let mut body = vec![0u8; body_len];
            self.io.read_exact(&mut body)?;
            let chunk = zeroize::Zeroizing::new(self.decryptor.decrypt_body(&body)?);
            if let Some(encoded) = self.reassembler.push(&chunk)? {
                let encoded = zeroize::Zeroizing::new(encoded);
                return Ok(LinkMessage::decode(&encoded)?);
            }
        }
    }

    /// The peer's authenticated static key.
    pub fn remote_static(&self) -> &PublicKey {
        &self.remote_static
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        &self.io
    }
}

impl<R> core::fmt::Debug for LinkReader<R> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkReader")
            .field("remote_static", &self.remote_static)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

/// The sending half of a split [`LinkStream`].
pub struct LinkWriter<W> {
    io: W,
    encryptor: Encryptor,
    closed: bool,
}

impl<W: Write> LinkWriter<W> {
    /// Sends one [`LinkMessage`], in as many chunks as it needs. Any failure closes this half.
    pub fn send_message(&mut self, msg: &LinkMessage) -> Result<(), LinkError> {
        if self.closed {
            return Err(LinkError::Closed);
        }
        let encoded = zeroize::Zeroizing::new(msg.encode()?);
        let r = self.send_inner(&encoded);
        if r.is_err() {
            self.closed = true;
        }
        r
    }

    fn send_inner(&mut self, encoded: &[u8]) -> Result<(), LinkError> {
        for chunk in chunks(encoded) {
            let chunk = zeroize::Zeroizing::new(chunk);
            let frame = self.encryptor.encrypt(&chunk)?;
            self.io.write_all(&frame)?;
        }
        Ok(self.io.flush()?)
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &W {
        &self.io
    }
}

impl<W> core::fmt::Debug for LinkWriter<W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkWriter").field("closed", &self.closed).finish_non_exhaustive()
    }
}

impl<S> core::fmt::Debug for LinkStream<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LinkStream")
            .field("transport", &self.transport)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}
