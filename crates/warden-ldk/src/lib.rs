//! Warden as the signer of LDK (`lightning` 0.2) nodes.
//!
//! [`WardenKeysManager`] implements LDK's `EntropySource`, `NodeSigner`, `SignerProvider` and
//! `OutputSpender`; its [`WardenChannelSigner`] implements `ChannelSigner` and
//! `EcdsaChannelSigner`. Keys follow LDK's own derivation ([`keys::KeyScheme::Ldk`]), so a node
//! keeps its node id and channel keys when it moves from LDK's `KeysManager` to Warden, or Core
//! Lightning's ([`keys::KeyScheme::CoreLightning`]: the node id and channel keys `hsmd` derives
//! from an `hsm_secret`). Every call that moves a channel's state runs warden-core's channel
//! state machine and policy (`warden_core::channel`, `warden_core::policy`) on a state shared
//! by all copies of that channel's signer; a refusal is `Err(())` for LDK and a [`Refusal`]
//! with its rule for the operator ([`WardenKeysManager::refusals`]).
//!
//! - [`keys`]: the derivations (LDK's, Core Lightning's).
//! - [`channel`]: a channel's record and the mapping of LDK's types into warden-core's.
//! - [`signer`]: the channel signer and what guards each call.
//! - [`manager`]: the node-level traits, the records' map, the payment ledger and approvals.
//! - [`store`]: persistence through warden-hsmd's sealed store (`warden-store`).
//! - [`remote`]: remote mode, the same traits on the node's host answered over warden-link by
//!   a Warden signer that dials out ([`remote::RemoteKeysManager`],
//!   [`remote::RemoteSignerServer`]).
//! - `ldk_test_utils` (feature `test-utils`): Warden plugged into LDK's functional tests.
//!
//! # Persistence
//!
//! [`WardenKeysManager::open`] keeps every record in warden-hsmd's sealed store (redb under
//! the given directory; PostgreSQL or any `warden_store::Store` as replicas): each call that
//! changes a channel makes the change durable before it returns to LDK, and a restarted node
//! (LDK's `ChannelManager` and `ChannelMonitor`s read back from their own serialization)
//! continues its channels. A store that does not verify against its signed head is refused at
//! open ([`OpenError::is_stale`]). [`WardenKeysManager::new`] keeps records in memory only.
//!
//! # Payment rules
//!
//! Every commitment's HTLCs go through warden-core's payment ledger (`payment-*`): per
//! payment hash, what leaves through our HTLCs must be covered by what came in for the hash
//! (a forward), by an approval ([`WardenKeysManager::approve_invoice`],
//! [`WardenKeysManager::approve_keysend`]: allowlisted payees free, others charged to the
//! velocity budget), or by the velocity budget; routed HTLCs keep the CLTV gap. The preimages
//! LDK passes to `validate_holder_commitment` and `sign_counterparty_commitment` tell
//! fulfilled HTLCs from failed ones: an HTLC of ours removed without its preimage (failed)
//! must come back to our side (`commitment-balance`); what leaves our side into trimmed HTLCs
//! is charged to a daily budget (`PaymentLimits::trimmed_outflow_per_day`). `sign_invoice`
//! signs only invoices that name no other payee (`message-oracle`).
//!
//! # Remote mode
//!
//! [`remote`] carries LDK's signer calls to a [`remote::RemoteSignerServer`] (a
//! [`WardenKeysManager`] on another host, every rule running there) over warden-link, with
//! LDK's `Err` + `signer_unblocked` pattern for the calls LDK retries, a bounded wait for those
//! it cannot retry, and the node-level values LDK needs locally (node id, scripts, the inbound
//! payment, peer storage and receive auth keys) fetched once at start. BOLT-11 / BOLT-12
//! invoices and messages are signed remotely too (a bounded wait; the signer's
//! `message-oracle` check runs there, and the node side verifies each signature against the
//! node id before handing it to LDK). Not remote yet: splices (see [`remote`]'s
//! documentation).
//!
//! # Not mapped yet
//!
//! - LDK never tells the signer the peer's node id: the slot (and, on Core Lightning's scheme,
//!   the key derivation) names our own node id in the peer's place (see [`keys`]).
//! - The payment ledger's velocity charge of one commitment can be lost by a crash between the
//!   channel record and the node record (as in warden-hsmd). LDK does not ask its signer
//!   before it pays an invoice: approvals are the application's call
//!   ([`WardenKeysManager::approve_invoice`]); without one, an outgoing payment is charged to
//!   the velocity budget. Payment hashes are the ledger's unit: unrelated payments sharing a
//!   hash through one node are accounted as one (a forward), as in warden-hsmd.
//! - A whole-file rollback of the local store is caught only with a replica (warden-hsmd's
//!   reconciliation); the store's audit trail records nothing for LDK calls; the records of
//!   closed channels are kept (LDK does not tell the signer when a channel is forgotten).
//! - Upfront shutdown scripts are not given to the signer (`channel-shutdown-script` does not
//!   apply); the funding transaction is signed by the node's wallet, not by Warden
//!   (`onchain-funding-*` do not apply).
//! - Sweeps: destinations are checked (`sweep-destination`), fees (`sweep-fee-range`) and the
//!   sequence / locktime of justice and counterparty-HTLC sweeps (`sweep-structure`) are not;
//!   the wallet inputs and outputs LDK adds to anchor and zero-fee HTLC transactions are not.
//! - `sign_holder_keyed_anchor_input` signs without a policy check; splices are refused
//!   (`sign_splice_shared_input` cannot return an error: it returns a signature no
//!   transaction can use, and records the refusal).
//! - `check_balance` allows at most 50,000 sat in trimmed HTLCs per commitment (Core
//!   Lightning's default dust exposure); an LDK node configured for more is refused
//!   (`commitment-balance`).
#![forbid(unsafe_code)]

pub mod channel;
pub mod keys;
#[cfg(feature = "test-utils")]
pub mod ldk_test_utils;
pub mod manager;
pub mod remote;
pub mod signer;
mod spend;
pub mod store;

pub use keys::KeyScheme;
pub use manager::{OpenError, Refusal, WardenConfig, WardenKeysManager};
pub use signer::WardenChannelSigner;
pub use warden_hsmd::replica::Replica;
