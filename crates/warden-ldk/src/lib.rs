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
#![forbid(unsafe_code)]

pub mod channel;
pub mod keys;
pub mod manager;
pub mod signer;
mod spend;

pub use keys::KeyScheme;
pub use manager::{Refusal, WardenConfig, WardenKeysManager};
pub use signer::WardenChannelSigner;
