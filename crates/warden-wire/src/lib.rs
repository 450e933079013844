//! Core Lightning's hsmd wire protocol, decoded strictly and re-encoded byte for byte.
//!
//! lightningd talks to its `hsmd` subdaemon in length-prefixed messages whose fields are listed
//! in `hsmd/hsmd_wire.csv` (requests and replies) and `common/status_wire.csv` (status). This
//! crate has one struct per message, the encodings of their field types, and the framing, so
//! that Warden can stand in for `hsmd` without any change to lightningd.
//!
//! - [`frame`]: the `u32` length prefix (refusing 2^27 bytes or more) and the message type.
//! - [`codec`]: the checked [`Reader`](codec::Reader), the [`Writer`](codec::Writer) and the
//!   encodings of primitive types ([`WireField`](codec::WireField)).
//! - [`types`], [`tx`], [`secret`], [`tlv`]: node ids, strings, basepoints, channel types,
//!   HTLCs, UTXOs, transactions and PSBTs, secret fields, TLV streams.
//! - [`msg`]: every message, and [`Request`], [`Reply`] and [`Status`], which decode any
//!   message of their kind by its type number.
//!
//! Decoding never panics and never allocates more than a small multiple of the message's own
//! length: every count is checked against the bytes that remain before anything is allocated,
//! and raw transactions and PSBTs are scanned before rust-bitcoin parses them. A decoded
//! message re-encodes to exactly the bytes it came from.
//!
//! No I/O happens here; the crate is `#![no_std]` with `alloc`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub use bitcoin;
pub use bitcoin::secp256k1;

pub mod codec;
pub mod error;
pub mod frame;
pub mod msg;
mod scan;
pub mod secret;
pub mod tlv;
pub mod tx;
pub mod types;

pub use error::{DecodeError, EncodeError, InvalidWireStringError};
pub use msg::{Message, Reply, Request, Status};
pub use secret::{Passphrase, Secret};
pub use tlv::UnknownTlv;
pub use tx::{BitcoinTx, WirePsbt};
pub use types::{
    AmountMsat, Basepoints, Bip32KeyVersion, ChannelType, CloseInfo, DevChannelSecrets, HsmHtlc,
    HsmUtxo, NodeId, Permissions, ShortChannelId, Side, WireString,
};
