//! Durable state for the Warden signer: a versioned key-value store with atomic
//! compare-and-swap batches.
//!
//! The signer's core returns a state delta; the service seals it (encrypts the values,
//! obfuscates the key names) and hands it to a [`Store`] as one [`Op`] batch, and releases the
//! reply only after [`Store::commit`] returned `Ok` (DESIGN §3, invariant 1). The store sees
//! only opaque bytes: it never decrypts, parses or signs anything.
//!
//! # Model
//!
//! * Everything lives under a [`StoreId`]: many signers can share one database, and a handle
//!   for one store id never sees another's keys.
//! * Each key has a [`Version`]; [`Version::ABSENT`] (0) means "no such key".
//! * [`Store::commit`] applies a batch of puts and deletes, each guarded by the version the
//!   caller expects to find. If any key's current version differs from its expectation, the
//!   whole batch is rejected with a [`ConflictError`] naming that key and nothing is applied.
//!   A put's new version must be strictly greater than its expected version.
//! * A commit that returned `Ok` is durable: it survives a crash of the process or the machine
//!   (redb: fsync before return; PostgreSQL: the server's commit, `synchronous_commit` as
//!   configured by its operator).
//!
//! # Backends
//!
//! * [`redb`] (feature `redb`, default): one file in a data directory, mode 0600.
//! * [`postgres`] (feature `postgres`, default): one table in a PostgreSQL database shared by
//!   many signers; see that module for the SQL it relies on.
//!
//! Both pass the same conformance suite (`tests/conformance/suite.rs`).
//!
//! # Compatibility promise of the on-disk schema
//!
//! * **redb**: the file holds a `warden_meta` table with `format_version` (currently 1) and a
//!   `warden_records` table keyed by `(store_id, key)` with values `(version, value)`. A newer
//!   Warden reads every older format version it ever wrote (upgrading it in place, in one
//!   write transaction); an older Warden refuses to open a file with a newer format version
//!   rather than guess ([`redb::OpenErrorKind::FormatTooNew`]).
//! * **PostgreSQL**: the schema is built by append-only, numbered migrations recorded in
//!   `warden_schema_migrations` together with the SHA-256 of their SQL text. A released
//!   migration is never edited (a unit test pins each one's digest, and opening a database
//!   whose recorded digest differs fails); changes come as new migrations. A Warden refuses to
//!   open a database that has migrations it does not know
//!   ([`postgres::OpenError::SchemaTooNew`]).
//! * Keys and values are the caller's bytes, stored verbatim; their own versioning (version
//!   prefix + TLV body) is the caller's promise, not the store's.
#![forbid(unsafe_code)]

use core::fmt;
use std::error::Error;

mod batch;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redb")]
pub mod redb;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use batch::BatchError;

/// Longest accepted [`StoreId`], in bytes.
pub const MAX_STORE_ID_LEN: usize = 64;
/// Longest accepted key, in bytes (keeps every backend's index entries small).
pub const MAX_KEY_LEN: usize = 1024;
/// Largest accepted value, in bytes.
pub const MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

/// The namespace of one signer's records inside a database.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId(Vec<u8>);

impl StoreId {
    /// Makes a store id from 1 to [`MAX_STORE_ID_LEN`] bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, StoreIdError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > MAX_STORE_ID_LEN {
            return Err(StoreIdError { len: bytes.len() });
        }
        Ok(StoreId(bytes))
    }

    /// Returns the id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreId({})", Hex(&self.0))
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Hex(&self.0), f)
    }
}

/// A [`StoreId`] of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreIdError {
    /// The rejected length in bytes.
    pub len: usize,
}

impl fmt::Display for StoreIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "store id of {} bytes, expected 1 to {MAX_STORE_ID_LEN}", self.len)
    }
}

impl Error for StoreIdError {}

/// The version of one key; [`Version::ABSENT`] means the key does not exist.
///
/// Versions fit in a signed 64-bit integer (PostgreSQL's `BIGINT`): the largest is
/// [`Version::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Version(u64);

impl Version {
    /// The version of an absent key.
    pub const ABSENT: Version = Version(0);
    /// The largest storable version.
    pub const MAX: Version = Version(i64::MAX as u64);

    /// Wraps a raw version number.
    pub const fn new(v: u64) -> Self {
        Version(v)
    }

    /// Returns the raw version number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// Tells whether this is [`Version::ABSENT`].
    pub const fn is_absent(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// One write of a batch passed to [`Store::commit`].
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Writes `value` at `new_version` if the key is currently at `expected_version`
    /// ([`Version::ABSENT`] to create it). `new_version` must exceed `expected_version`.
    Put {
        /// The (already obfuscated) key.
        key: Vec<u8>,
        /// The version the key must have now.
        expected_version: Version,
        /// The version the key has after the batch.
        new_version: Version,
        /// The (already sealed) value.
        value: Vec<u8>,
    },
    /// Removes the key if it is currently at `expected_version` (which must not be absent).
    Delete {
        /// The (already obfuscated) key.
        key: Vec<u8>,
        /// The version the key must have now.
        expected_version: Version,
    },
}

impl Op {
    /// Returns the key this operation writes.
    pub fn key(&self) -> &[u8] {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    /// Returns the version this operation expects to find.
    pub fn expected_version(&self) -> Version {
        match self {
            Op::Put { expected_version, .. } | Op::Delete { expected_version, .. } => {
                *expected_version
            }
        }
    }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are sealed, but there is no reason to print them: lengths suffice.
        match self {
            Op::Put { key, expected_version, new_version, value } => f
                .debug_struct("Put")
                .field("key", &Hex(key))
                .field("expected_version", expected_version)
                .field("new_version", new_version)
                .field("value_len", &value.len())
                .finish(),
            Op::Delete { key, expected_version } => f
                .debug_struct("Delete")
                .field("key", &Hex(key))
                .field("expected_version", expected_version)
                .finish(),
        }
    }
}

/// A value together with its version, as [`Store::get`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The key's current version (never [`Version::ABSENT`]).
    pub version: Version,
    /// The stored bytes.
    pub value: Vec<u8>,
}

/// One record, as [`Store::list`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The key.
    pub key: Vec<u8>,
    /// The key's current version (never [`Version::ABSENT`]).
    pub version: Version,
    /// The stored bytes.
    pub value: Vec<u8>,
}

/// A versioned key-value store bound to one [`StoreId`].
///
/// The API is blocking: the signer's request path is synchronous, and "persist, then reply"
/// is one call. Implementations are `Send + Sync`; concurrent commits are serialised by the
/// backend, and of two commits expecting the same version of a key at most one succeeds.
pub trait Store: Send + Sync {
    /// Returns the store id every operation of this handle is confined to.
    fn store_id(&self) -> &StoreId;

    /// Reads one key; `None` if absent.
    fn get(&self, key: &[u8]) -> Result<Option<Versioned>, BackendError>;

    /// Reads every record whose key starts with `prefix` (all records for an empty prefix),
    /// in ascending byte order of the keys.
    fn list(&self, prefix: &[u8]) -> Result<Vec<Record>, BackendError>;

    /// Applies `batch` atomically: all operations or none.
    ///
    /// An empty batch succeeds without effect. When this returns `Ok`, the batch is durable.
    fn commit(&self, batch: &[Op]) -> Result<(), CommitError>;
}

/// The current version of a key differs from what a batch expected.
#[derive(Clone, PartialEq, Eq)]
pub struct ConflictError {
    /// The key whose version did not match (the first one found).
    pub key: Vec<u8>,
    /// The version the batch expected.
    pub expected: Version,
    /// The version found ([`Version::ABSENT`] if the key does not exist).
    pub found: Version,
}

impl fmt::Debug for ConflictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConflictError")
            .field("key", &Hex(&self.key))
            .field("expected", &self.expected)
            .field("found", &self.found)
            .finish()
    }
}

impl fmt::Display for ConflictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "version conflict on key {}: expected version {}, found {}",
            Hex(&self.key),
            self.expected,
            self.found
        )
    }
}

impl Error for ConflictError {}

/// A failure of [`Store::commit`]; in every case nothing of the batch was applied.
#[derive(Debug)]
pub enum CommitError {
    /// A key's version was not the expected one.
    Conflict(ConflictError),
    /// The batch is malformed (checked before touching the backend).
    Invalid(BatchError),
    /// The backend failed. The batch was not applied, except that for a remote backend a lost
    /// connection during the final commit can leave the outcome unknown: read back the keys
    /// before retrying.
    Backend(BackendError),
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitError::Conflict(_) => f.write_str("batch rejected by a version conflict"),
            CommitError::Invalid(_) => f.write_str("batch rejected as malformed"),
            CommitError::Backend(_) => f.write_str("batch not committed: backend failure"),
        }
    }
}

impl Error for CommitError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CommitError::Conflict(e) => Some(e),
            CommitError::Invalid(e) => Some(e),
            CommitError::Backend(e) => Some(e),
        }
    }
}

impl From<ConflictError> for CommitError {
    fn from(e: ConflictError) -> Self {
        CommitError::Conflict(e)
    }
}

impl From<BatchError> for CommitError {
    fn from(e: BatchError) -> Self {
        CommitError::Invalid(e)
    }
}

impl From<BackendError> for CommitError {
    fn from(e: BackendError) -> Self {
        CommitError::Backend(e)
    }
}

/// A storage engine or connection failure.
#[derive(Debug)]
pub struct BackendError {
    /// What the store was doing, e.g. `"begin write transaction"`.
    pub context: &'static str,
    source: Box<dyn Error + Send + Sync + 'static>,
}

impl BackendError {
    /// Wraps an engine error with what the store was doing.
    pub fn new(context: &'static str, source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        BackendError { context, source: source.into() }
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage backend failed to {}", self.context)
    }
}

impl Error for BackendError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// Renders bytes as lower-case hex.
pub(crate) struct Hex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
