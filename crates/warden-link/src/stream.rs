//! Thin blocking wrappers: the handshake and the transport over any `Read + Write` (a
//! `std::net::TcpStream` in Warden). All protocol logic stays in the sans-I/O modules; this
//! module only moves bytes.

use std::io::{self, Read, Write};
use std::vec;
use std::vec::Vec;

use secp256k1::PublicKey;

use crate::error::{HandshakeError, TransportError};
use crate::handshake::{
    InitiatorHandshake, ResponderHandshake, ACT_ONE_LEN, ACT_THREE_LEN, ACT_TWO_LEN,
};
use crate::keys::{EphemeralSecretKey, StaticSecretKey};
use crate::transport::{Transport, LENGTH_PREFIX_LEN};

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
    /// An earlier failure closed this link.
    Closed,
}

impl core::fmt::Display for LinkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LinkError::Io(_) => f.write_str("link i/o failed"),
            LinkError::Handshake(_) => f.write_str("link handshake failed"),
            LinkError::Transport(_) => f.write_str("link transport failed"),
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

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.io
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
