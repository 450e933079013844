//! Keys: Core Lightning-compatible derivation from the seed, and BOLT-03 per-commitment keys.
//!
//! - [`roles`]: one public-key type per role (basepoints, per-commitment keys, funding keys), so
//!   a key cannot be passed where another role is expected.
//! - [`bolt3`]: BOLT-03 key derivation (simple and revocation keys, public and private).
//! - [`node`]: the node key and node id, and [`NodeKeys`], every seed-level key `hsmd` derives.
//! - [`wallet`]: the BIP-32 wallet tree, the bolt12 base key and BIP-86 keys.
//! - [`derived`]: `derive_secret` (`makesecret`).
//! - [`channel`]: channel seeds, channel secrets and basepoints, per-commitment secrets and
//!   points, the to_remote script.

pub mod bolt3;
pub mod channel;
pub mod derived;
mod kdf;
pub mod node;
pub mod roles;
pub mod wallet;

pub use channel::{ChannelKeys, ChannelSeedBase};
pub use derived::DerivedSecrets;
pub use node::{NodeId, NodeKeys};
pub use roles::*;
pub use wallet::WalletKeys;
