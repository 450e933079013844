//! Warden's signing core.
//!
//! Everything that decides what Warden signs lives here, and nothing here touches the outside
//! world: no I/O, no clock, no operating-system randomness. Effects are injected by the caller
//! (see [`rng::EntropySource`]), so the crate builds as `#![no_std]` + `alloc` and every test is
//! deterministic.
//!
//! - [`secret`]: the secret types (seed, private keys, 32-byte secrets), redacted and zeroized.
//! - [`units`]: newtypes for amounts, feerates, commitment numbers and channel identifiers.
//! - [`keys`]: key derivation byte-compatible with Core Lightning's `hsmd`, and BOLT-03 per
//!   commitment key derivation, with one type per key role.
//! - [`channel`]: per-channel state and the ordering rules that keep Warden from signing two
//!   conflicting states.
//! - [`policy`]: the rule catalog ([`policy::Rule`]) and refusals ([`policy::PolicyError`]).
//! - [`seal`]: Warden's own seed-derived keys, sealed (encrypted, signed) records, the signed
//!   head of a store with its incremental digest, and ECIES for node backups.
//! - [`shachain`]: BOLT-03 per-commitment secret generation and compact storage.
//! - [`tlv`]: BigSize and TLV streams, the body of Warden's own versioned encodings.
//! - [`sign`]: signatures byte-identical to `hsmd`'s (low-R grinding, signed messages, ECDH).
//! - [`tx`]: BOLT-03 transaction builders and the parsers that check a node-supplied
//!   transaction against the one rebuilt from channel state.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub use bitcoin;
pub use bitcoin::secp256k1;

pub mod channel;
pub mod keys;
pub mod policy;
pub mod rng;
pub mod seal;
pub mod secret;
pub mod shachain;
pub mod sign;
pub mod tlv;
pub mod tx;
pub mod units;
