//! Remote mode: LDK's signer traits on the node side, answered over warden-link (BOLT-08
//! `Noise_XK`, both static keys pinned) by a Warden signer running elsewhere, with all of
//! Warden's policy.
//!
//! - [`RemoteSignerServer`] (the signer's host): owns a [`crate::WardenKeysManager`]
//!   (persisted with [`crate::WardenKeysManager::open`] or in memory), **dials out** to the
//!   node side (it is the BOLT-08 initiator and accepts no connection), redials with backoff
//!   when the link drops, and answers each call, in the order received, by calling the
//!   in-process Warden traits: every rule runs there, and a refusal goes back with its rule.
//!   A call naming a channel the keys manager holds no record of is refused (`node-limits`)
//!   once it holds [`SignerConfig::max_channels`] of them: made-up `channel_keys_id`s from a
//!   compromised node do not grow the signer's memory without bound.
//! - [`RemoteKeysManager`] / [`RemoteChannelSigner`] (the node's host): LDK's
//!   `EntropySource`, `NodeSigner`, `SignerProvider`, `OutputSpender`, `ChannelSigner` and
//!   `EcdsaChannelSigner`. The node side **listens** and accepts only the pinned signer key;
//!   one signer at a time.
//!
//! # LDK's `Err` + `signer_unblocked`
//!
//! A call LDK may retry (`sign_counterparty_commitment`, `release_commitment_secret`,
//! `sign_holder_commitment`, `sign_closing_transaction`, the justice / HTLC / anchor sweeps)
//! never waits on the network: if its answer is cached it is returned, otherwise the call is
//! sent (its request id is a hash of the call's bytes, so LDK's retry of the same call finds
//! the same answer, and a call in flight is not sent twice) and `Err(())` returned. When the
//! answer arrives it is cached and the callback of
//! [`RemoteKeysManager::set_unblocked_callback`] runs on a thread of its own; the application
//! wires it to `ChannelManager::signer_unblocked(None)` and `ChainMonitor::signer_unblocked(None)`,
//! and LDK's retry gets the answer. Answers are kept for the last [`link::ANSWER_CACHE`]
//! distinct calls. A refusal is kept until another call succeeds: until then LDK's retries
//! get `Err` without a new request (no retry loop); afterwards the call is asked again, since
//! the signer's state may have moved (a revocation refused before its commitment was
//! validated is allowed once it is). Calls in flight when the link drops
//! are re-sent, in their order, to the next signer that connects; Warden's channel state
//! makes the repeated ones idempotent.
//!
//! `validate_holder_commitment` and `validate_counterparty_revocation` close the channel on
//! `Err` in LDK 0.2: as LDK's documentation suggests, they are sent and return `Ok(())` at
//! once (unless the signer already refused that very call). The signer answers in order, so
//! the calls that depend on them (`release_commitment_secret` after a holder commitment, the
//! next `sign_counterparty_commitment` after a revocation) are refused by Warden's state
//! machine if the validation was: the channel does not advance.
//!
//! # Calls that wait (bounded) or are served locally
//!
//! - Fetched once at start (`hello`, waited for by [`RemoteKeysManager::listen`]) and served
//!   locally: the node id, the destination and shutdown scripts, and three secrets LDK needs
//!   on the node side for its own bookkeeping: the inbound payment key material
//!   (`get_expanded_key`: payment secrets and offers' metadata are computed by LDK itself),
//!   the peer storage key and the receive auth key. As with VLS, these never sign anything
//!   on chain, but a compromised node host learns them.
//! - Served locally: `get_secure_random_bytes` (a hash of a key drawn from the OS at start
//!   and a counter).
//! - Waited for, at most [`RemoteConfig::wait`] (LDK 0.2 cannot retry them):
//!   `generate_channel_keys_id` (a `new_channel` call that also returns the channel's public
//!   keys), `pubkeys`, `get_per_commitment_point` (`channel_reestablish` expects it; points
//!   are public and fixed, so [`RemoteConfig::points_ahead`] of them are fetched per call, in
//!   aligned windows, and a wait happens once per window), `ecdh`, `sign_gossip_message`,
//!   `sign_channel_announcement_with_funding_key`, `spend_spendable_outputs` (the signer
//!   checks the sweep's destinations), and the node key's other signatures: `sign_invoice`
//!   (BOLT-11, `Recipient::Node` only; the signer refuses an invoice that names another payee
//!   or has no payment hash, `message-oracle`), `sign_bolt12_invoice` and `sign_message` (at
//!   most [`wire::MAX_SIGNED_MESSAGE`] bytes). The node side checks these three answers
//!   before LDK sees them: the invoice signature must recover to the node id over the hash
//!   it computed itself, the BOLT-12 signature verify with the invoice's signing key over its
//!   tagged hash, the message signature verify with the node id; otherwise `Err`. On timeout
//!   they return `Err`, except
//!   `generate_channel_keys_id` (a local random id) and `pubkeys` (keys no signature will
//!   match: the channel cannot open, nothing is at risk).
//!
//! # Not remote yet
//!
//! `unsafe_sign_holder_commitment` (LDK's tests only) and a phantom node's `sign_invoice`
//! return `Err`; a BOLT-12 invoice with experimental TLV records is refused too (LDK's
//! serialization of an unsigned invoice does not carry them, so the signed hash would differ
//! and the node side's check fails); `new_funding_pubkey` returns the base funding
//! key and `sign_splice_shared_input` a signature over nothing (Warden refuses splices).
//! The node side keeps no state across its own restart (the answer cache and the channels'
//! public keys are in memory; LDK's own serialization keeps the public keys it needs).
//! Dropping the node side (the last `RemoteKeysManager` and `RemoteChannelSigner` of it)
//! closes the signer's connection and the listener, and its threads end: a process can start
//! a node side again on the same address.
//!
//! # Encoding
//!
//! A call is a warden-link `Request` (client context all zero) whose body is a big-endian
//! `u16` tag ([`wire`]: 62001 to 62043, odd) followed by its arguments in LDK's own
//! serialization (`Writeable`): `ChannelTransactionParameters`, `CommitmentTransaction`,
//! `HolderCommitmentTransaction`, `HTLCOutputInCommitment`, `HTLCDescriptor`,
//! `ChannelPublicKeys`, `SpendableOutputDescriptor`, the unsigned gossip messages (last in
//! their call, read to its end), keys and scalars as LDK writes them,
//! `bitcoin::Transaction` and scripts by their consensus encoding; preimages as a `u16` count
//! and 32 bytes each; a closing transaction by its two values and scripts (the funding
//! outpoint is the parameters'). The last three calls carry one value to the end of the
//! body: `sign_invoice` (62039) the invoice's bech32 text as LDK's encoder writes it (with a
//! placeholder signature: the signer parses it and signs the parsed invoice's hash),
//! `sign_bolt12_invoice` (62041) the unsigned invoice's TLV stream (it must parse as an
//! `UnsignedBolt12Invoice`), `sign_message` (62043) the message's bytes. A reply is a `Reply`
//! whose body is the call's tag then the result (signatures 64-byte compact, a list of them
//! after a `u16` count; an invoice signature 64 bytes and its recovery id, a BOLT-12 one 64
//! bytes Schnorr, a signed message LDK's zbase32 text); a refusal is an
//! `ErrorReply` whose text is the operation and the rule that refused it. A call with an
//! unknown tag, a malformed argument or trailing bytes is refused (never a panic).

pub mod link;
pub mod node;
pub mod server;
pub mod wire;

pub use link::RemoteRefusal;
pub use node::{RemoteChannelSigner, RemoteConfig, RemoteError, RemoteKeysManager};
pub use server::{RemoteSignerServer, SignerConfig};
