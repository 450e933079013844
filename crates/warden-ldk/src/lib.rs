//! Warden as the signer of LDK (`lightning` 0.2) nodes.
//!
//! [`WardenKeysManager`] implements LDK's `EntropySource`, `NodeSigner`, `SignerProvider` and
//! `OutputSpender`; its [`WardenChannelSigner`] implements `ChannelSigner` and
//! `EcdsaChannelSigner`. Keys follow LDK's own derivation ([`keys::KeyScheme::Ldk`]), so a node
//! keeps its node id and channel keys when it moves from LDK's `KeysManager` to Warden. Every
//! call that moves a channel's state runs warden-core's channel state machine and policy
//! (`warden_core::channel`, `warden_core::policy`) on a state shared by all copies of that
//! channel's signer; a refusal is `Err(())` for LDK and a [`Refusal`] with its rule for the
//! operator ([`WardenKeysManager::refusals`]).
//!
//! - [`keys`]: the derivation (LDK's scheme; Core Lightning's to come).
//! - [`channel`]: a channel's record and the mapping of LDK's types into warden-core's.
//! - [`signer`]: the channel signer and what guards each call.
//! - [`manager`]: the node-level traits and the records' map.
//! - `ldk_test_utils` (feature `test-utils`): Warden plugged into LDK's functional tests.
//!
//! # Not mapped yet
//!
//! - Warden's records are in memory: a restarted node starts with empty records and Warden
//!   refuses its next commitment (`commitment-number`) until persistence through
//!   `warden-store` arrives.
//! - The preimages LDK passes to `validate_holder_commitment` and
//!   `sign_counterparty_commitment` are not used: `commitment-balance` bounds what may leave
//!   our side without them.
//! - Upfront shutdown scripts are not given to the signer (`channel-shutdown-script` does not
//!   apply); the funding transaction is signed by the node's wallet, not by Warden
//!   (`onchain-funding-*` do not apply); the `payment-*` rules and invoice approvals are not
//!   applied to `sign_invoice`.
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
pub mod signer;
mod spend;
pub mod store;

pub use keys::KeyScheme;
pub use manager::{OpenError, Refusal, WardenConfig, WardenKeysManager};
pub use signer::WardenChannelSigner;
pub use warden_hsmd::replica::Replica;
