//! `warden-hsmd`: a drop-in replacement for Core Lightning's `hsmd` subdaemon
//! (`lightningd --subdaemon=hsmd:warden-hsmd`), signing with `warden-core`.
//!
//! - [`hsm_secret`]: loading `hsm_secret` from the lightning directory, or creating a new
//!   12-word mnemonic secret.
//! - [`approvals`]: what an operator allowed once after a refusal (files under
//!   `<lightning dir>/warden/approvals/`).
//! - [`durable`]: the default channel store: sealed records and a signed head in a redb
//!   file under `<lightning dir>/warden/`, verified at startup.
//! - [`replica`]: remote replicas of that store (PostgreSQL), written before each reply and
//!   reconciled with the local file at startup.
//! - [`audit`]: the hash-chained audit trail of every decision, kept in the same store.
//! - [`gossip`]: gossip signatures, signed only for messages that parse as what they claim.
//! - [`payments`]: BOLT-12 and liquidity-ad signatures, payment pre-approval, the payment
//!   ledger (`payment-*` rules).
//! - [`invoice`]: the BOLT-11 and BOLT-12 invoices lightningd asks to pre-approve.
//! - [`onchain`]: on-chain wallet signing (withdrawals, anchor spends, mingled HTLC
//!   transactions, splices), checked before it is signed.
//! - [`permissions`]: the permission bit each request type needs.
//! - [`policy`]: the policy in force, and its log of refusals and demoted warnings.
//! - [`policy_file`]: the operator's TOML policy file, read at `init`.
//! - [`proxy`]: proxy mode: the same fds, answered by a remote `warden run` over warden-link.
//! - [`signer`]: `init` and the requests that need no channel state, answered byte for byte
//!   as `hsmd` answers them.
//! - [`server`]: lightningd's file descriptors, the master loop, one thread per client, status
//!   messages and fd passing.
//! - [`sweeps`]: the on-chain sweep requests (`sign_*_to_us`, `sign_any_local_htlc_tx`),
//!   validated against the channel state and the wallet.
//! - [`version`]: the version string `hsmd --version` prints.
//!
//! The binary (`main.rs`) only parses arguments, takes file descriptor 3 and calls
//! [`server::run_master`].
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod approvals;
pub mod audit;
pub mod channels;
pub mod client;
pub mod durable;
pub mod extensions;
pub mod gossip;
pub mod hsm_secret;
pub mod invoice;
pub mod onchain;
pub mod payments;
pub mod permissions;
pub mod policy;
pub mod policy_file;
pub mod proxy;
pub mod replica;
pub mod server;
pub mod signer;
pub mod sweeps;
pub mod version;
pub mod wallet;
