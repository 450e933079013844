//! Restore: the newest sealed snapshot plus every later record, unsealed and replayed into a
//! fresh SQLite file, with the order and the final `data_version` verified.
//!
//! Unsealing goes through [`Unsealer`], which returns the key of one blob given its ephemeral
//! point and context — the shape of the signer's unseal request (issue 5, point 8), which
//! releases a per-blob key and never the node-backup secret. That request does not exist
//! yet; [`SeedUnsealer`] derives the node-backup key from the seed in-process. When the
//! request lands, an `Unsealer` that sends it over the link replaces `SeedUnsealer` and
//! nothing else changes.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use secp256k1::PublicKey;
use warden_core::seal::{
    ecies_derive_key, ecies_ephemeral_point, ecies_open_with_derived_key, EciesError,
    WardenKeyError, WardenKeys,
};
use warden_core::secret::{Secret32, Seed};

use crate::dir::{self, DirError};
use crate::format::{self, FormatError};
use crate::sqlite;

/// Returns the key of one sealed blob: the signer's side of unsealing.
pub trait Unsealer {
    /// The key of the blob whose ephemeral point is `ephemeral`, sealed with `context`.
    fn blob_key(&mut self, ephemeral: &PublicKey, context: &[u8]) -> Result<Secret32, EciesError>;
}

/// An [`Unsealer`] holding the seed-derived node-backup key (`warden/node-backup`).
#[derive(Debug)]
pub struct SeedUnsealer {
    keys: WardenKeys,
}

impl SeedUnsealer {
    /// Derives the node-backup key from `seed`.
    pub fn new(seed: &Seed) -> Result<SeedUnsealer, WardenKeyError> {
        Ok(SeedUnsealer { keys: WardenKeys::derive(seed)? })
    }

    /// The node-backup public key (what the plugin's `--warden-backup-pubkey` names).
    pub fn public_key(&self) -> PublicKey {
        self.keys.node_backup_pubkey()
    }
}

impl Unsealer for SeedUnsealer {
    fn blob_key(&mut self, ephemeral: &PublicKey, context: &[u8]) -> Result<Secret32, EciesError> {
        ecies_derive_key(self.keys.node_backup_key(), ephemeral, context)
    }
}

fn unseal(
    unsealer: &mut dyn Unsealer,
    blob: &[u8],
    context: &[u8],
) -> Result<zeroize::Zeroizing<Vec<u8>>, EciesError> {
    let ephemeral = ecies_ephemeral_point(blob)?;
    let key = unsealer.blob_key(&ephemeral, context)?;
    ecies_open_with_derived_key(&key, blob)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    /// The snapshot it started from (`None`: an empty database).
    pub snapshot: Option<u64>,
    /// How many records it replayed.
    pub records: u64,
    /// The restored database's `data_version`.
    pub data_version: u64,
    /// Bytes of an incomplete last record ignored (a write cut by a crash, never acknowledged).
    pub torn_tail: u64,
}

/// Restores the backup in `backup_dir` into a new SQLite file `out` (which must not exist).
///
/// The file is built as `<out>.partial` and renamed into place only once every record is
/// replayed and the final `data_version` checked; on failure nothing is left at `out`.
pub fn restore(
    backup_dir: &Path,
    out: &Path,
    unsealer: &mut dyn Unsealer,
) -> Result<RestoreReport, RestoreError> {
    if out.exists() {
        return Err(RestoreError::OutExists(out.to_owned()));
    }
    let partial = partial_path(out);
    let _ = fs::remove_file(&partial);
    let result = restore_into(backup_dir, &partial, unsealer);
    match result {
        Ok(report) => {
            fs::rename(&partial, out).map_err(|e| RestoreError::io("rename", &partial, e))?;
            if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(parent)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| RestoreError::io("sync", parent, e))?;
            }
            Ok(report)
        }
        Err(e) => {
            let _ = fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".partial");
    out.with_file_name(name)
}

fn restore_into(
    backup_dir: &Path,
    partial: &Path,
    unsealer: &mut dyn Unsealer,
) -> Result<RestoreReport, RestoreError> {
    let (snapshots, segments) = dir::list(backup_dir).map_err(RestoreError::Dir)?;
    let snapshot = snapshots.last().copied();

    // The snapshot (or nothing: an empty database) into the new file, mode 0600.
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(partial)
        .map_err(|e| RestoreError::io("create", partial, e))?;
    let start = match snapshot {
        Some(v) => {
            let path = backup_dir.join(format::snapshot_name(v));
            let bytes = fs::read(&path).map_err(|e| RestoreError::io("read", &path, e))?;
            let (clear_v, blob) = format::parse_snapshot_file(&bytes)
                .map_err(|error| RestoreError::Format { path: path.clone(), error })?;
            if clear_v != v {
                return Err(RestoreError::SnapshotMismatch { named: v, inside: clear_v });
            }
            let plaintext = unseal(unsealer, blob, &format::snapshot_context(v))
                .map_err(|error| RestoreError::Snapshot { data_version: v, error })?;
            let (inner_v, db) = format::decode_snapshot(&plaintext)
                .map_err(|error| RestoreError::Format { path: path.clone(), error })?;
            if inner_v != v {
                return Err(RestoreError::SnapshotMismatch { named: v, inside: inner_v });
            }
            file.write_all(db).map_err(|e| RestoreError::io("write", partial, e))?;
            v
        }
        None => 0,
    };
    drop(file);

    let mut conn = Connection::open(partial).map_err(|e| RestoreError::sql(partial, e))?;
    if let Some(v) = snapshot {
        let inside = sqlite::data_version_of(&conn).map_err(|e| RestoreError::sql(partial, e))?;
        // A snapshot of a database not created yet holds no version: it stands for `v`.
        if inside.is_some_and(|inside| inside != v) {
            return Err(RestoreError::SnapshotMismatch { named: v, inside: inside.unwrap_or(0) });
        }
    }
    // The file is `.partial` until renamed: no per-statement journal fsyncs while replaying;
    // one fsync at the end.
    // Foreign keys on, as lightningd's own connection has them: its `ON DELETE CASCADE`s
    // are not in the statements it reports, they follow from them.
    conn.execute_batch(
        "PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON;",
    )
    .map_err(|e| RestoreError::sql(partial, e))?;

    let mut next = start.saturating_add(1);
    let mut records = 0u64;
    let mut torn_tail = 0u64;
    let relevant: Vec<u64> = segments.into_iter().filter(|s| *s >= start).collect();
    let tx = conn.transaction().map_err(|e| RestoreError::sql(partial, e))?;
    for (i, seg) in relevant.iter().enumerate() {
        let path = backup_dir.join(format::segment_name(*seg));
        let bytes = fs::read(&path).map_err(|e| RestoreError::io("read", &path, e))?;
        let parsed = format::parse_segment(&bytes)
            .map_err(|error| RestoreError::Format { path: path.clone(), error })?;
        if parsed.torn_tail > 0 {
            if i + 1 != relevant.len() {
                return Err(RestoreError::TornRecord { path, bytes: parsed.torn_tail });
            }
            torn_tail = parsed.torn_tail;
        }
        for rec in parsed.records {
            if rec.data_version <= start {
                continue;
            }
            if rec.data_version != next {
                return Err(RestoreError::OutOfOrder { expected: next, found: rec.data_version });
            }
            let plaintext = unseal(unsealer, &rec.blob, &format::record_context(rec.data_version))
                .map_err(|error| RestoreError::Record { data_version: rec.data_version, error })?;
            let (inner, writes) = format::decode_record(&plaintext)
                .map_err(|error| RestoreError::Format { path: path.clone(), error })?;
            if inner != rec.data_version {
                return Err(RestoreError::OutOfOrder { expected: next, found: inner });
            }
            for w in &writes {
                tx.execute_batch(w).map_err(|error| RestoreError::Replay {
                    data_version: inner,
                    statement: w.clone(),
                    error,
                })?;
            }
            records += 1;
            next = next.saturating_add(1);
        }
    }
    tx.commit().map_err(|e| RestoreError::sql(partial, e))?;
    let last = next.saturating_sub(1);
    let found = sqlite::data_version_of(&conn).map_err(|e| RestoreError::sql(partial, e))?;
    if found != Some(last) && !(found.is_none() && records == 0) {
        return Err(RestoreError::FinalVersion { expected: last, found });
    }
    drop(conn);
    File::open(partial)
        .and_then(|f| f.sync_all())
        .map_err(|e| RestoreError::io("sync", partial, e))?;
    Ok(RestoreReport { snapshot, records, data_version: last, torn_tail })
}

/// Why a restore failed. Each variant names what did not verify.
#[derive(Debug)]
pub enum RestoreError {
    /// The output file exists already.
    OutExists(PathBuf),
    /// A file-system operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// The backup directory cannot be listed.
    Dir(DirError),
    /// A file does not follow the layout.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: FormatError,
    },
    /// The snapshot does not unseal (tampered, or sealed to another key).
    Snapshot {
        /// The snapshot's version.
        data_version: u64,
        /// The unsealing error.
        error: EciesError,
    },
    /// The snapshot's name, header or content disagree on its version.
    SnapshotMismatch {
        /// The version in its name.
        named: u64,
        /// The version found inside.
        inside: u64,
    },
    /// A record does not unseal (tampered, moved to another version, or another key's).
    Record {
        /// The record's version.
        data_version: u64,
        /// The unsealing error.
        error: EciesError,
    },
    /// Records not strictly consecutive: one is missing, repeated or reordered.
    OutOfOrder {
        /// The version expected next.
        expected: u64,
        /// The version found.
        found: u64,
    },
    /// An incomplete record before the end of the log.
    TornRecord {
        /// The segment.
        path: PathBuf,
        /// The incomplete bytes.
        bytes: u64,
    },
    /// A statement failed to replay.
    Replay {
        /// Its record's version.
        data_version: u64,
        /// The statement.
        statement: String,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// Another SQLite operation failed.
    Sql {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        error: rusqlite::Error,
    },
    /// The restored database's `data_version` is not the last record's.
    FinalVersion {
        /// The last record's version.
        expected: u64,
        /// The database's version.
        found: Option<u64>,
    },
}

impl RestoreError {
    fn io(action: &'static str, path: &Path, error: io::Error) -> RestoreError {
        RestoreError::Io { action, path: path.to_owned(), error }
    }
    fn sql(path: &Path, error: rusqlite::Error) -> RestoreError {
        RestoreError::Sql { path: path.to_owned(), error }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestoreError::OutExists(p) => write!(f, "{} exists already", p.display()),
            RestoreError::Io { action, path, error } => {
                write!(f, "cannot {action} {}: {error}", path.display())
            }
            RestoreError::Dir(e) => write!(f, "{e}"),
            RestoreError::Format { path, error } => write!(f, "{}: {error}", path.display()),
            RestoreError::Snapshot { data_version, error } => {
                write!(f, "snapshot at data_version {data_version}: {error}")
            }
            RestoreError::SnapshotMismatch { named, inside } => {
                write!(f, "snapshot named data_version {named} holds {inside}")
            }
            RestoreError::Record { data_version, error } => {
                write!(f, "record of data_version {data_version}: {error}")
            }
            RestoreError::OutOfOrder { expected, found } => {
                write!(f, "record of data_version {found} where {expected} was expected")
            }
            RestoreError::TornRecord { path, bytes } => {
                write!(f, "{}: incomplete record of {bytes} bytes before the end", path.display())
            }
            RestoreError::Replay { data_version, statement, error } => {
                // The start of the statement only: its values may be the node's secrets.
                let start: String = statement.chars().take(48).collect();
                write!(f, "record {data_version}: statement `{start}…` fails: {error}")
            }
            RestoreError::Sql { path, error } => write!(f, "{}: {error}", path.display()),
            RestoreError::FinalVersion { expected, found } => write!(
                f,
                "restored database has data_version {found:?}, the last record is {expected}"
            ),
        }
    }
}

impl std::error::Error for RestoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RestoreError::Io { error, .. } => Some(error),
            RestoreError::Dir(e) => Some(e),
            RestoreError::Format { error, .. } => Some(error),
            RestoreError::Snapshot { error, .. } | RestoreError::Record { error, .. } => {
                Some(error)
            }
            RestoreError::Replay { error, .. } | RestoreError::Sql { error, .. } => Some(error),
            _ => None,
        }
    }
}
