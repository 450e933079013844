//! The embedded default backend: one [redb](https://www.redb.org) file in a data directory.
//!
//! * The file is `<data dir>/warden-store.redb`, created with mode 0600 (the directory, if
//!   created here, with 0700); an existing file readable or writable by group or others is
//!   refused ([`OpenErrorKind::Permissions`]).
//! * Every commit is one redb write transaction with redb's default
//!   `Durability::Immediate`: the data and the new root are fsync'd before
//!   [`Store::commit`] returns. An interrupted commit is invisible after reopening
//!   (redb's copy-on-write pages and two-slot commit header; redb repairs its allocator state
//!   on the next open).
//! * Records live in the table `warden_records` keyed by `(store_id, key)` with value
//!   `(version, value)`; the table `warden_meta` holds `format_version` (see the crate's
//!   compatibility promise).
//! * redb allows one process at a time per file (an advisory lock): a second open of the same
//!   file fails with [`OpenErrorKind::AlreadyOpen`]. Within the process, share one
//!   [`RedbDatabase`] and take a [`RedbStore`] per store id from it.

use core::fmt;
use std::error::Error;
use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::redb::{Database, DatabaseError, ReadableTable, StorageError, TableDefinition, TableError};

use crate::batch::validate;
use crate::{
    BackendError, CommitError, ConflictError, Op, Record, Store, StoreId, Version, Versioned,
};

/// The name of the database file inside the data directory.
pub const FILE_NAME: &str = "warden-store.redb";
/// The file format this build writes (and the newest it reads).
pub const FORMAT_VERSION: u64 = 1;

/// `(store_id, key)` -> `(version, value)`.
type RecordsTable = TableDefinition<'static, (&'static [u8], &'static [u8]), (u64, &'static [u8])>;
const RECORDS: RecordsTable = TableDefinition::new("warden_records");
const META: TableDefinition<&str, u64> = TableDefinition::new("warden_meta");
const META_FORMAT_VERSION: &str = "format_version";

/// An open redb database file; hands out one [`RedbStore`] per store id.
#[derive(Clone)]
pub struct RedbDatabase {
    db: Arc<Database>,
    path: PathBuf,
}

impl fmt::Debug for RedbDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbDatabase").field("path", &self.path).finish_non_exhaustive()
    }
}

impl RedbDatabase {
    /// Opens (or creates) `<data_dir>/warden-store.redb`.
    ///
    /// Fails if the file cannot be opened, is too permissive, is not a redb database, is
    /// corrupt, is held by another process, or was written by a newer format.
    pub fn open(data_dir: &Path) -> Result<Self, OpenError> {
        let path = data_dir.join(FILE_NAME);
        let fail = |kind| OpenError { path: path.clone(), kind };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| fail(OpenErrorKind::Io(e)))?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| fail(OpenErrorKind::Io(e)))?;
        let mode = file.metadata().map_err(|e| fail(OpenErrorKind::Io(e)))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(fail(OpenErrorKind::Permissions { mode: mode & 0o7777 }));
        }
        let db = Database::builder().create_file(file).map_err(|e| {
            fail(match e {
                DatabaseError::DatabaseAlreadyOpen => OpenErrorKind::AlreadyOpen,
                // redb reports a file too short or malformed for its header as invalid data.
                DatabaseError::Storage(StorageError::Io(e))
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ) =>
                {
                    OpenErrorKind::Io(e)
                }
                other => OpenErrorKind::Corrupt(Box::new(other)),
            })
        })?;
        check_format(&db).map_err(fail)?;
        Ok(RedbDatabase { db: Arc::new(db), path })
    }

    /// Returns the database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Returns a handle confined to `store_id`.
    pub fn store(&self, store_id: StoreId) -> RedbStore {
        RedbStore { db: Arc::clone(&self.db), store_id }
    }
}

/// Writes the format version into a new file, or checks an existing file's.
fn check_format(db: &Database) -> Result<(), OpenErrorKind> {
    let corrupt = |e: Box<dyn Error + Send + Sync>| OpenErrorKind::Corrupt(e);
    let txn = db.begin_write().map_err(|e| corrupt(e.into()))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| corrupt(e.into()))?;
        let found =
            meta.get(META_FORMAT_VERSION).map_err(|e| corrupt(e.into()))?.map(|v| v.value());
        match found {
            Some(v) if v > FORMAT_VERSION => return Err(OpenErrorKind::FormatTooNew { found: v }),
            Some(_) => {}
            None => {
                meta.insert(META_FORMAT_VERSION, FORMAT_VERSION).map_err(|e| corrupt(e.into()))?;
            }
        }
        // Create the records table up front so that readers never meet a missing table.
        txn.open_table(RECORDS).map_err(|e| corrupt(e.into()))?;
    }
    txn.commit().map_err(|e| corrupt(e.into()))
}

/// A [`Store`] over a redb file, confined to one store id.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    store_id: StoreId,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore").field("store_id", &self.store_id).finish_non_exhaustive()
    }
}

fn backend(context: &'static str) -> impl FnOnce(::redb::Error) -> BackendError {
    move |e| BackendError::new(context, e)
}

impl Store for RedbStore {
    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    fn get(&self, key: &[u8]) -> Result<Option<Versioned>, BackendError> {
        let txn = self.db.begin_read().map_err(|e| backend("begin read transaction")(e.into()))?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(backend("open records table")(e.into())),
        };
        let found = table
            .get((self.store_id.as_bytes(), key))
            .map_err(|e| backend("read record")(e.into()))?;
        Ok(found.map(|g| {
            let (version, value) = g.value();
            Versioned { version: Version::new(version), value: value.to_vec() }
        }))
    }

    fn list(&self, prefix: &[u8]) -> Result<Vec<Record>, BackendError> {
        let txn = self.db.begin_read().map_err(|e| backend("begin read transaction")(e.into()))?;
        let table = match txn.open_table(RECORDS) {
            Ok(t) => t,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(backend("open records table")(e.into())),
        };
        let sid = self.store_id.as_bytes();
        let range = table.range((sid, prefix)..).map_err(|e| backend("scan records")(e.into()))?;
        let mut out = Vec::new();
        for entry in range {
            let (k, v) = entry.map_err(|e| backend("scan records")(e.into()))?;
            let (entry_sid, key) = k.value();
            if entry_sid != sid || !key.starts_with(prefix) {
                break;
            }
            let (version, value) = v.value();
            out.push(Record {
                key: key.to_vec(),
                version: Version::new(version),
                value: value.to_vec(),
            });
        }
        Ok(out)
    }

    fn commit(&self, batch: &[Op]) -> Result<(), CommitError> {
        validate(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let sid = self.store_id.as_bytes();
        // redb serialises write transactions: the checks below and the writes are atomic.
        let txn =
            self.db.begin_write().map_err(|e| backend("begin write transaction")(e.into()))?;
        {
            let mut table =
                txn.open_table(RECORDS).map_err(|e| backend("open records table")(e.into()))?;
            for op in batch {
                let key = op.key();
                let found = table
                    .get((sid, key))
                    .map_err(|e| backend("read record")(e.into()))?
                    .map_or(Version::ABSENT, |g| Version::new(g.value().0));
                if found != op.expected_version() {
                    // Dropping `txn` without committing aborts it: nothing is applied.
                    return Err(ConflictError {
                        key: key.to_vec(),
                        expected: op.expected_version(),
                        found,
                    }
                    .into());
                }
                match op {
                    Op::Put { new_version, value, .. } => {
                        table
                            .insert((sid, key), (new_version.get(), value.as_slice()))
                            .map_err(|e| backend("write record")(e.into()))?;
                    }
                    Op::Delete { .. } => {
                        table.remove((sid, key)).map_err(|e| backend("delete record")(e.into()))?;
                    }
                }
            }
        }
        txn.commit().map_err(|e| backend("commit write transaction")(e.into()))?;
        Ok(())
    }
}

/// [`RedbDatabase::open`] failed.
#[derive(Debug)]
pub struct OpenError {
    /// The database file.
    pub path: PathBuf,
    /// What went wrong.
    pub kind: OpenErrorKind,
}

/// Why a redb database could not be opened.
#[derive(Debug)]
pub enum OpenErrorKind {
    /// The directory or file could not be created, opened or read.
    Io(io::Error),
    /// The file is readable or writable by group or others (its mode is given).
    Permissions {
        /// The file's permission bits.
        mode: u32,
    },
    /// Another process holds the file open.
    AlreadyOpen,
    /// The file is not a redb database, or is damaged.
    Corrupt(Box<dyn Error + Send + Sync>),
    /// The file was written by a newer Warden with this format version.
    FormatTooNew {
        /// The format version in the file.
        found: u64,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.display();
        match &self.kind {
            OpenErrorKind::Io(_) => write!(f, "cannot open store file {path}"),
            OpenErrorKind::Permissions { mode } => write!(
                f,
                "store file {path} has mode {mode:04o}: it must not be accessible by group or \
                 others (chmod 600)"
            ),
            OpenErrorKind::AlreadyOpen => {
                write!(f, "store file {path} is already open in another process")
            }
            OpenErrorKind::Corrupt(_) => {
                write!(f, "store file {path} is not a readable redb database (corrupt?)")
            }
            OpenErrorKind::FormatTooNew { found } => write!(
                f,
                "store file {path} has format version {found}, newer than {FORMAT_VERSION} \
                 that this build knows"
            ),
        }
    }
}

impl Error for OpenError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match &self.kind {
            OpenErrorKind::Io(e) => Some(e),
            OpenErrorKind::Corrupt(e) => Some(&**e),
            OpenErrorKind::Permissions { .. }
            | OpenErrorKind::AlreadyOpen
            | OpenErrorKind::FormatTooNew { .. } => None,
        }
    }
}
