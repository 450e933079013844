//! Warden's messages over the link: hsmd requests with their client context, their replies,
//! and Warden's own link messages (heartbeat). Node-backup unseal is an hsmd extension message
//! (`warden_wire::msg::warden`, 61001) carried in a [`Request`] like any other.
//!
//! ## Encoding (version 1)
//!
//! A link message is a big-endian `u16` type and a body. Types follow BOLT-01's rule: an
//! unknown **even** type is refused (the sender needs it understood), an unknown **odd** type
//! is ignored ([`LinkMessage::Unknown`]), so later versions can add optional messages.
//!
//! | type | message | body |
//! |---|---|---|
//! | 2 | [`Request`] | id `u64` ‖ peer id (33) ‖ dbid `u64` ‖ permissions `u64` ‖ hsmd message |
//! | 4 | [`Reply`] | id `u64` ‖ hsmd reply message |
//! | 6 | [`ErrorReply`] | id `u64` ‖ flags `u8` (bit 0: fatal; others must be 0) ‖ UTF-8 text |
//! | 8 | ping | nonce `u64` |
//! | 10 | pong | nonce `u64` (the ping's) |
//! | 12, 14 | reserved (unused: node-backup unseal travels inside a [`Request`] as hsmd message 61001) | |
//! | 16, 18 | reserved: status request / reply | |
//!
//! Request ids are the proxy's, from 1 up; id 0 is never a request's: an [`ErrorReply`] with id
//! 0 refuses the link itself (for example a second signer while one is connected).
//!
//! The hsmd message is the rest of the body: at least its own 2-byte type (its body is checked
//! by the hsmd decoder on the far side, not here); the whole message is at most
//! [`MAX_FRAME_LEN`] bytes.
//!
//! ## Chunks
//!
//! BOLT-08 messages hold at most 65535 bytes, hsmd messages (PSBTs) can be longer. Each link
//! message is therefore sent as one or more transport messages ([`chunks`]), each a flag byte
//! (1: more chunks follow, 0: last) and at least one byte of data; a [`Reassembler`] joins
//! them, refusing any other flag, an empty chunk, and a message longer than [`MAX_FRAME_LEN`].
//! As every transport message is authenticated and ordered, chunks cannot be mixed between
//! messages or reordered without the transport refusing them.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use zeroize::Zeroize;

use crate::transport::MAX_MESSAGE_LEN;

/// The largest link message (16 MiB): above any request lightningd sends in practice, and a
/// bound on what one side can make the other allocate.
pub const MAX_FRAME_LEN: usize = 1 << 24;

/// The largest error description.
pub const MAX_DESCRIPTION_LEN: usize = 4096;

/// The data bytes of one chunk (the transport message minus the flag byte).
pub const CHUNK_DATA_LEN: usize = MAX_MESSAGE_LEN - 1;

/// Type of [`Request`].
pub const TYPE_REQUEST: u16 = 2;
/// Type of [`Reply`].
pub const TYPE_REPLY: u16 = 4;
/// Type of [`ErrorReply`].
pub const TYPE_ERROR: u16 = 6;
/// Type of [`LinkMessage::Ping`].
pub const TYPE_PING: u16 = 8;
/// Type of [`LinkMessage::Pong`].
pub const TYPE_PONG: u16 = 10;

const FLAG_FATAL: u8 = 1;
const CHUNK_MORE: u8 = 1;
const CHUNK_LAST: u8 = 0;

/// Who sent an hsmd request: the identity and permissions of its `client_hsmfd` connection.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClientContext {
    /// The peer's node id (or our own, for the master and global clients), compressed.
    pub peer_id: [u8; 33],
    /// The channel's database id (0 if not per-channel).
    pub dbid: u64,
    /// hsmd's permission bits.
    pub permissions: u64,
}

impl fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientContext")
            .field("peer_id", &Hex(&self.peer_id))
            .field("dbid", &self.dbid)
            .field("permissions", &format_args!("{:#x}", self.permissions))
            .finish()
    }
}

/// An hsmd request forwarded to the signer.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The proxy's request id; the reply carries it back.
    pub id: u64,
    /// The client that sent it.
    pub client: ClientContext,
    /// The raw hsmd message (it may hold secrets: zeroized on drop, not in `Debug`).
    pub msg: Vec<u8>,
}

/// The signer's answer to a [`Request`].
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The request's id.
    pub id: u64,
    /// The raw hsmd reply (it may hold secrets: zeroized on drop, not in `Debug`).
    pub msg: Vec<u8>,
}

/// The signer refused a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorReply {
    /// The request's id.
    pub id: u64,
    /// Whether the signer cannot serve at all (not initialised, its state unusable), rather
    /// than refusing this one request.
    pub fatal: bool,
    /// The refusal as hsmd reports it (`hsmstatus_client_bad_request`'s description).
    pub description: String,
}

/// One message on the link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkMessage {
    /// An hsmd request (proxy to signer).
    Request(Request),
    /// An hsmd reply (signer to proxy).
    Reply(Reply),
    /// A refusal (signer to proxy).
    Error(ErrorReply),
    /// A heartbeat; answered with a pong of the same nonce.
    Ping(u64),
    /// The answer to a ping.
    Pong(u64),
    /// A message of an unknown odd type: to be ignored.
    Unknown {
        /// Its type.
        msg_type: u16,
    },
}

/// A link message could not be decoded, or a chunk sequence was malformed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// The message is shorter than its type's fixed fields.
    TooShort {
        /// The message type (0 if even the type was missing).
        msg_type: u16,
        /// The length received.
        len: usize,
    },
    /// A fixed-size message has trailing bytes.
    TrailingBytes {
        /// The message type.
        msg_type: u16,
    },
    /// An even type this version does not know.
    UnknownEvenType {
        /// The type.
        msg_type: u16,
    },
    /// An error reply's flags have bits this version does not know.
    UnknownFlags {
        /// The flags byte.
        flags: u8,
    },
    /// A request or reply carries no hsmd message (fewer than its 2 type bytes).
    EmptyMessage {
        /// The message type.
        msg_type: u16,
    },
    /// An error description is not UTF-8 or is longer than [`MAX_DESCRIPTION_LEN`].
    BadDescription,
    /// The message is longer than [`MAX_FRAME_LEN`].
    TooLong {
        /// Its length (or the length reached while reassembling).
        len: usize,
    },
    /// A chunk's flag byte is neither 0 nor 1.
    BadChunkFlag {
        /// The flag byte.
        flag: u8,
    },
    /// A chunk carries no data.
    EmptyChunk,
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort { msg_type, len } => {
                write!(f, "link message of type {msg_type} is too short ({len} bytes)")
            }
            FrameError::TrailingBytes { msg_type } => {
                write!(f, "link message of type {msg_type} has trailing bytes")
            }
            FrameError::UnknownEvenType { msg_type } => {
                write!(f, "unknown required link message type {msg_type}")
            }
            FrameError::UnknownFlags { flags } => write!(f, "unknown error flags {flags:#04x}"),
            FrameError::EmptyMessage { msg_type } => {
                write!(f, "link message of type {msg_type} carries no hsmd message")
            }
            FrameError::BadDescription => {
                f.write_str("error description is not UTF-8 or is too long")
            }
            FrameError::TooLong { len } => {
                write!(f, "link message of {len} bytes exceeds the {MAX_FRAME_LEN}-byte maximum")
            }
            FrameError::BadChunkFlag { flag } => write!(f, "unknown chunk flag {flag:#04x}"),
            FrameError::EmptyChunk => f.write_str("empty chunk"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for FrameError {}

impl LinkMessage {
    /// The message's type number.
    pub fn msg_type(&self) -> u16 {
        match self {
            LinkMessage::Request(_) => TYPE_REQUEST,
            LinkMessage::Reply(_) => TYPE_REPLY,
            LinkMessage::Error(_) => TYPE_ERROR,
            LinkMessage::Ping(_) => TYPE_PING,
            LinkMessage::Pong(_) => TYPE_PONG,
            LinkMessage::Unknown { msg_type } => *msg_type,
        }
    }

    /// Encodes the message; refuses one longer than [`MAX_FRAME_LEN`], an empty hsmd message
    /// or an overlong description (the same rules [`LinkMessage::decode`] enforces).
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let msg_type = self.msg_type();
        let mut out = Vec::new();
        out.extend_from_slice(&msg_type.to_be_bytes());
        match self {
            LinkMessage::Request(r) => {
                if r.msg.len() < 2 {
                    return Err(FrameError::EmptyMessage { msg_type });
                }
                out.reserve(8 + 33 + 16 + r.msg.len());
                out.extend_from_slice(&r.id.to_be_bytes());
                out.extend_from_slice(&r.client.peer_id);
                out.extend_from_slice(&r.client.dbid.to_be_bytes());
                out.extend_from_slice(&r.client.permissions.to_be_bytes());
                out.extend_from_slice(&r.msg);
            }
            LinkMessage::Reply(r) => {
                if r.msg.len() < 2 {
                    return Err(FrameError::EmptyMessage { msg_type });
                }
                out.extend_from_slice(&r.id.to_be_bytes());
                out.extend_from_slice(&r.msg);
            }
            LinkMessage::Error(e) => {
                if e.description.len() > MAX_DESCRIPTION_LEN {
                    return Err(FrameError::BadDescription);
                }
                out.extend_from_slice(&e.id.to_be_bytes());
                out.push(if e.fatal { FLAG_FATAL } else { 0 });
                out.extend_from_slice(e.description.as_bytes());
            }
            LinkMessage::Ping(n) | LinkMessage::Pong(n) => out.extend_from_slice(&n.to_be_bytes()),
            LinkMessage::Unknown { msg_type } if msg_type % 2 == 0 => {
                return Err(FrameError::UnknownEvenType { msg_type: *msg_type })
            }
            LinkMessage::Unknown { .. } => {}
        }
        if out.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len: out.len() });
        }
        Ok(out)
    }

    /// Decodes one link message (strictly: see the module documentation).
    pub fn decode(bytes: &[u8]) -> Result<LinkMessage, FrameError> {
        if bytes.len() > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len: bytes.len() });
        }
        let mut r = Reader { bytes, msg_type: 0 };
        let msg_type = r.u16()?;
        r.msg_type = msg_type;
        Ok(match msg_type {
            TYPE_REQUEST => {
                let id = r.u64()?;
                let peer_id = r.array::<33>()?;
                let dbid = r.u64()?;
                let permissions = r.u64()?;
                let msg = r.rest_nonempty()?;
                LinkMessage::Request(Request {
                    id,
                    client: ClientContext { peer_id, dbid, permissions },
                    msg,
                })
            }
            TYPE_REPLY => {
                let id = r.u64()?;
                LinkMessage::Reply(Reply { id, msg: r.rest_nonempty()? })
            }
            TYPE_ERROR => {
                let id = r.u64()?;
                let [flags] = r.array::<1>()?;
                if flags & !FLAG_FATAL != 0 {
                    return Err(FrameError::UnknownFlags { flags });
                }
                let text = r.bytes;
                if text.len() > MAX_DESCRIPTION_LEN {
                    return Err(FrameError::BadDescription);
                }
                let description = String::from(
                    core::str::from_utf8(text).map_err(|_| FrameError::BadDescription)?,
                );
                LinkMessage::Error(ErrorReply { id, fatal: flags & FLAG_FATAL != 0, description })
            }
            TYPE_PING | TYPE_PONG => {
                let nonce = r.u64()?;
                r.end()?;
                if msg_type == TYPE_PING {
                    LinkMessage::Ping(nonce)
                } else {
                    LinkMessage::Pong(nonce)
                }
            }
            t if t % 2 == 0 => return Err(FrameError::UnknownEvenType { msg_type: t }),
            t => LinkMessage::Unknown { msg_type: t },
        })
    }
}

/// Checked reads of the fixed fields.
struct Reader<'a> {
    bytes: &'a [u8],
    msg_type: u16,
}

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let Some((head, rest)) = self.bytes.split_first_chunk::<N>() else {
            return Err(FrameError::TooShort { msg_type: self.msg_type, len: self.bytes.len() });
        };
        self.bytes = rest;
        Ok(*head)
    }

    fn u16(&mut self) -> Result<u16, FrameError> {
        self.array::<2>().map(u16::from_be_bytes)
    }

    fn u64(&mut self) -> Result<u64, FrameError> {
        self.array::<8>().map(u64::from_be_bytes)
    }

    fn rest_nonempty(&mut self) -> Result<Vec<u8>, FrameError> {
        if self.bytes.len() < 2 {
            return Err(FrameError::EmptyMessage { msg_type: self.msg_type });
        }
        Ok(self.bytes.to_vec())
    }

    fn end(&self) -> Result<(), FrameError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(FrameError::TrailingBytes { msg_type: self.msg_type })
        }
    }
}

/// Splits an encoded link message into transport messages of at most
/// [`MAX_MESSAGE_LEN`] bytes (flag byte and data).
pub fn chunks(encoded: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let count = encoded.chunks(CHUNK_DATA_LEN).count();
    encoded.chunks(CHUNK_DATA_LEN).enumerate().map(move |(i, data)| {
        let mut c = Vec::with_capacity(1 + data.len());
        c.push(if i + 1 < count { CHUNK_MORE } else { CHUNK_LAST });
        c.extend_from_slice(data);
        c
    })
}

/// Joins chunks back into one encoded link message.
#[derive(Default)]
pub struct Reassembler {
    buf: Vec<u8>,
}

impl fmt::Debug for Reassembler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reassembler").field("pending", &self.buf.len()).finish()
    }
}

impl Reassembler {
    /// Adds one chunk; returns the whole message once its last chunk arrived. After an error
    /// the partial message is dropped (the link should be closed).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let r = self.push_inner(chunk);
        if r.is_err() {
            self.buf.zeroize();
            self.buf = Vec::new();
        }
        r
    }

    fn push_inner(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let Some((&flag, data)) = chunk.split_first() else {
            return Err(FrameError::EmptyChunk);
        };
        if data.is_empty() {
            return Err(FrameError::EmptyChunk);
        }
        let len = self.buf.len() + data.len();
        if len > MAX_FRAME_LEN {
            return Err(FrameError::TooLong { len });
        }
        match flag {
            CHUNK_MORE => {
                self.buf.extend_from_slice(data);
                Ok(None)
            }
            CHUNK_LAST => {
                self.buf.extend_from_slice(data);
                Ok(Some(core::mem::take(&mut self.buf)))
            }
            flag => Err(FrameError::BadChunkFlag { flag }),
        }
    }
}

impl Drop for Reassembler {
    fn drop(&mut self) {
        self.buf.zeroize();
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.msg.zeroize();
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.msg.zeroize();
    }
}

/// The hsmd message's type and length, never its bytes.
struct MsgSummary<'a>(&'a [u8]);

impl fmt::Debug for MsgSummary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.first_chunk::<2>() {
            Some(t) => write!(f, "<type {}, {} bytes>", u16::from_be_bytes(*t), self.0.len()),
            None => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.id)
            .field("client", &self.client)
            .field("msg", &MsgSummary(&self.msg))
            .finish()
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reply").field("id", &self.id).field("msg", &MsgSummary(&self.msg)).finish()
    }
}

struct Hex<'a>(&'a [u8]);

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    extern crate std;
    use super::*;
    use alloc::vec;
    use std::format;

    fn request() -> LinkMessage {
        LinkMessage::Request(Request {
            id: 7,
            client: ClientContext { peer_id: [2; 33], dbid: 9, permissions: 0x41 },
            msg: vec![0, 1, 0xaa, 0xbb],
        })
    }

    fn all() -> Vec<LinkMessage> {
        vec![
            request(),
            LinkMessage::Reply(Reply { id: 7, msg: vec![0, 101, 1] }),
            LinkMessage::Error(ErrorReply {
                id: u64::MAX,
                fatal: true,
                description: "refused (policy-x): €".into(),
            }),
            LinkMessage::Error(ErrorReply { id: 0, fatal: false, description: String::new() }),
            LinkMessage::Ping(1),
            LinkMessage::Pong(u64::MAX),
            LinkMessage::Unknown { msg_type: 33 },
        ]
    }

    #[test]
    fn round_trips() {
        for m in all() {
            let bytes = m.encode().unwrap();
            assert_eq!(LinkMessage::decode(&bytes).unwrap(), m, "{m:?}");
        }
    }

    #[test]
    fn golden_request_bytes() {
        let bytes = request().encode().unwrap();
        let mut want = vec![0, 2, 0, 0, 0, 0, 0, 0, 0, 7];
        want.extend_from_slice(&[2; 33]);
        want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0x41]);
        want.extend_from_slice(&[0, 1, 0xaa, 0xbb]);
        assert_eq!(bytes, want);
        let err = LinkMessage::Error(ErrorReply { id: 1, fatal: true, description: "x".into() });
        assert_eq!(err.encode().unwrap(), [0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 1, b'x']);
    }

    #[test]
    fn every_truncation_is_refused() {
        for m in all() {
            let bytes = m.encode().unwrap();
            // Request and reply: everything up to the hsmd message's type is checked here.
            let checked = match m {
                LinkMessage::Request(_) => 2 + 8 + 33 + 16 + 2,
                LinkMessage::Reply(_) => 2 + 8 + 2,
                _ => bytes.len(),
            };
            for cut in 0..checked {
                let short = &bytes[..cut];
                // An error reply's text may be cut anywhere but inside a UTF-8 sequence, and
                // an unknown odd type has no body: those prefixes can be valid messages.
                if let Ok(d) = LinkMessage::decode(short) {
                    assert!(
                        matches!(d, LinkMessage::Error(_) | LinkMessage::Unknown { .. }),
                        "{m:?} cut at {cut} decoded as {d:?}"
                    );
                }
            }
        }
        assert_eq!(
            LinkMessage::decode(&[0, 2, 0, 0, 0, 0, 0, 0, 0, 7]),
            Err(FrameError::TooShort { msg_type: 2, len: 0 })
        );
        assert_eq!(LinkMessage::decode(&[]), Err(FrameError::TooShort { msg_type: 0, len: 0 }));
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(
            LinkMessage::decode(&[0, 12, 1]),
            Err(FrameError::UnknownEvenType { msg_type: 12 })
        );
        assert_eq!(
            LinkMessage::decode(&[0, 13, 1]).unwrap(),
            LinkMessage::Unknown { msg_type: 13 }
        );
        assert_eq!(
            LinkMessage::decode(&[0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(FrameError::TrailingBytes { msg_type: 8 })
        );
        assert_eq!(
            LinkMessage::decode(&[0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 2, b'x']),
            Err(FrameError::UnknownFlags { flags: 2 })
        );
        assert_eq!(
            LinkMessage::decode(&[0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xff]),
            Err(FrameError::BadDescription)
        );
        let mut long = vec![0, 6, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        long.resize(long.len() + MAX_DESCRIPTION_LEN + 1, b'a');
        assert_eq!(LinkMessage::decode(&long), Err(FrameError::BadDescription));
        assert_eq!(
            LinkMessage::decode(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 1]),
            Err(FrameError::EmptyMessage { msg_type: 4 })
        );
        assert_eq!(
            LinkMessage::decode(&[0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 9]),
            Err(FrameError::EmptyMessage { msg_type: 4 })
        );
        let huge = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(LinkMessage::decode(&huge), Err(FrameError::TooLong { len: MAX_FRAME_LEN + 1 }));
        assert_eq!(
            LinkMessage::Unknown { msg_type: 20 }.encode(),
            Err(FrameError::UnknownEvenType { msg_type: 20 })
        );
        assert_eq!(
            LinkMessage::Reply(Reply { id: 0, msg: vec![] }).encode(),
            Err(FrameError::EmptyMessage { msg_type: 4 })
        );
    }

    #[test]
    fn chunks_round_trip_at_every_boundary() {
        for len in
            [1, 2, CHUNK_DATA_LEN - 1, CHUNK_DATA_LEN, CHUNK_DATA_LEN + 1, 3 * CHUNK_DATA_LEN + 5]
        {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut r = Reassembler::default();
            let parts: Vec<_> = chunks(&data).collect();
            assert_eq!(parts.len(), len.div_ceil(CHUNK_DATA_LEN));
            let mut out = None;
            for (i, c) in parts.iter().enumerate() {
                assert!(c.len() <= MAX_MESSAGE_LEN);
                let got = r.push(c).unwrap();
                assert_eq!(got.is_some(), i + 1 == parts.len());
                out = out.or(got);
            }
            assert_eq!(out.unwrap(), data);
        }
    }

    #[test]
    fn bad_chunks_are_refused() {
        let mut r = Reassembler::default();
        assert_eq!(r.push(&[]), Err(FrameError::EmptyChunk));
        assert_eq!(r.push(&[1]), Err(FrameError::EmptyChunk));
        assert_eq!(r.push(&[2, 0]), Err(FrameError::BadChunkFlag { flag: 2 }));
        let big = vec![1u8; MAX_MESSAGE_LEN];
        let mut r = Reassembler::default();
        let mut result = Ok(None);
        for _ in 0..(MAX_FRAME_LEN / CHUNK_DATA_LEN + 1) {
            result = r.push(&big);
            if result.is_err() {
                break;
            }
        }
        assert!(matches!(result, Err(FrameError::TooLong { .. })));
        // After an error the reassembler starts afresh.
        assert_eq!(r.push(&[0, 5]).unwrap(), Some(vec![5]));
    }

    #[test]
    fn debug_hides_hsmd_bytes() {
        let m = LinkMessage::Request(Request {
            id: 1,
            client: ClientContext { peer_id: [3; 33], dbid: 0, permissions: 1 },
            msg: vec![0, 23, 0x5e, 0xc7, 0x5e, 0xc7],
        });
        let s = format!("{m:?}");
        assert!(s.contains("type 23, 6 bytes"), "{s}");
        assert!(!s.contains("94") && !s.contains("5ec7"), "{s}");
        let r = format!("{:?}", Reply { id: 1, msg: vec![0, 100, 0xab, 0xcd] });
        assert!(!r.contains("abcd") && !r.contains("171"), "{r}");
    }
}
