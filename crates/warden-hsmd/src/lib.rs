//! `warden-hsmd`: a drop-in replacement for Core Lightning's `hsmd` subdaemon
//! (`lightningd --subdaemon=hsmd:warden-hsmd`), signing with `warden-core`.
//!
//! - [`hsm_secret`]: loading `hsm_secret` from the lightning directory, or creating a new
//!   12-word mnemonic secret.
//! - [`permissions`]: the permission bit each request type needs.
//! - [`signer`]: `init` and the requests that need no channel state, answered byte for byte
//!   as `hsmd` answers them.
//! - [`server`]: lightningd's file descriptors, the master loop, one thread per client, status
//!   messages and fd passing.
//! - [`version`]: the version string `hsmd --version` prints.
//!
//! The binary (`main.rs`) only parses arguments, takes file descriptor 3 and calls
//! [`server::run_master`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod channels;
pub mod hsm_secret;
pub mod permissions;
pub mod server;
pub mod signer;
pub mod version;
