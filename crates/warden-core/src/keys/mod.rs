//! Keys: Core Lightning-compatible derivation from the seed, and BOLT-03 per-commitment keys.
//!
//! - [`roles`]: one public-key type per role (basepoints, per-commitment keys, funding keys), so
//!   a key cannot be passed where another role is expected.
//! - [`bolt3`]: BOLT-03 key derivation (simple and revocation keys, public and private).

pub mod bolt3;
pub mod roles;

pub use roles::*;
