//! `warden-backup`: Core Lightning's database, backed up sealed to the Warden signer's
//! node-backup key, so that the seed and the backup are all a user needs to restore a node.
//!
//! - [`plugin`]: the Core Lightning plugin (`db_write` hook): every transaction's statements
//!   are sealed and appended to a log, durably, before lightningd commits; sealed snapshots of
//!   the whole database at start and periodically; a database behind its backup is refused.
//! - [`config`]: the plugin's configuration and its state file (`db_write` comes before
//!   `init`).
//! - [`dir`]: the backup directory's writer; [`format`]: its files and encodings.
//! - [`postgres`]: the PostgreSQL destination (the same sealed blobs, one row each, in a
//!   database several nodes may share) and restore source.
//! - [`dest`]: the destinations the plugin writes to (a directory, PostgreSQL, or both:
//!   each record durable in every one before `continue`).
//! - [`sqlite`]: consistent in-memory copies of the database and its `data_version`.
//! - [`restore`]: the newest snapshot plus every later record, from a directory or
//!   PostgreSQL ([`restore::BackupSource`]), verified and replayed into a fresh
//!   `lightningd.sqlite3`, with the unsealing behind [`restore::Unsealer`].
//!
//! ## Why the plugin protocol directly, not `cln-plugin`
//!
//! `cln-plugin` is built on tokio: an async runtime, codec and channel machinery for one hook
//! that is synchronous by nature — lightningd blocks its whole database transaction on our
//! answer, and the answer must not leave before the record is on disk. A blocking loop
//! (read one request, seal, append, fdatasync, write `continue`) makes that order visible in
//! twenty lines, adds no scheduling between the fsync and the reply, and keeps the plugin's
//! dependencies to `serde_json` (already in the workspace) and SQLite. The protocol subset
//! needed (`getmanifest`, `init`, one hook, `log` notifications) is small and stable. (The
//! PostgreSQL destination does use tokio, for tokio-postgres only: a current-thread runtime
//! private to [`postgres`], blocked on for each statement, never on the plugin's loop.)
//!
//! ## Why a fresh ephemeral key per record
//!
//! Each record is its own ECIES blob (warden-core's `ecies_seal`, format `0x01`) with a fresh
//! ephemeral key. Per-segment keys would save one EC multiplication per record (tens of
//! microseconds, against the milliseconds of the fsync that must follow anyway), but would
//! need a second, hand-made layer (a per-record nonce and key schedule under the segment key)
//! — crypto outside warden-core. Per record, the unit the signer's unseal request releases a
//! key for is one record: a released key opens one transaction, nothing else, and each
//! release can be audited by its `data_version`.
//!
//! ## How `data_version` is bound
//!
//! warden-core's ECIES derives the blob key with HKDF over the shared point, `R`, the
//! recipient and a caller's *context*. The context of a record is
//! `warden/node-backup/v1/db-write/` ‖ `data_version` (u64 BE) and of a snapshot
//! `warden/node-backup/v1/snapshot/` ‖ `data_version`, so the version determines the key: a
//! record presented under any other version (reordered, replayed, or moved between files)
//! does not authenticate. The plaintext repeats the version, checked too. Restore then
//! requires the versions after the snapshot to be strictly consecutive, so a missing record
//! is found as well. (A record dropped from the *end* of the log is indistinguishable from a
//! node that stopped there; the node's own database, compared at start, covers that side.)

pub mod config;
pub mod dest;
pub mod dir;
pub mod format;
pub mod plugin;
pub mod postgres;
pub mod restore;
pub mod sqlite;
