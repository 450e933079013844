//! `warden-testkit`: a scripted Core Lightning node that drives `warden-hsmd`.
//!
//! It plays both our node (what lightningd and its subdaemons send hsmd, on the client each
//! uses, with the permissions lightningd gives it) and the channel peer (whose keys come from a
//! second seed), builds every transaction with warden-core's BOLT-03 builders, and verifies
//! every signature hsmd returns against the transaction it built.
//!
//! - [`hsmd`]: spawn `warden-hsmd` as lightningd does (fd 0 status, fd 3 master), `init`,
//!   `client_hsmfd` with fd passing, typed requests, the status log.
//! - [`perms`]: the permission sets lightningd uses for each subdaemon.
//! - [`peer`]: the peer's keys; its signatures on our commitment and HTLC transactions; both
//!   commitments as it builds them.
//! - [`channel`]: the channel model and the hsmd request of each protocol step.
//! - [`verify`]: signature checks and the `bitcoin_tx` PSBTs lightningd sends.
//! - [`flows`]: open, update rounds (random, seeded), fee updates, cooperative and unilateral
//!   closes, driven through a running hsmd.
//! - [`rng`]: the seeded generator behind the random traffic.
//! - [`error`]: why a flow failed.
//!
//! Running: the tests find the binary through [`locate_binary`] (`$WARDEN_HSMD_BIN`, else
//! `target/{debug,release}/warden-hsmd`), so build it first:
//! `cargo build -p warden-hsmd && cargo test -p warden-testkit`. The end-to-end flow tests,
//! which need warden-hsmd's channel handlers, run with `--features flows`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
pub mod error;
pub mod flows;
pub mod hsmd;
pub mod peer;
pub mod perms;
pub mod rng;
pub mod verify;

pub use channel::{Change, Channel, ChannelParams, CommitState, Funder, ModelHtlc, Splice, Who};
pub use error::{BuildError, FlowError, VerifyError};
pub use flows::{Node, Unilateral};
pub use hsmd::{locate_binary, Client, Hsmd, HsmdError, StatusLog, Transcript};
pub use peer::Peer;
