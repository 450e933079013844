//! The writer of a backup directory: appends sealed records durably, writes sealed snapshots,
//! rewinds an unacknowledged-by-the-database last record, and reports where the backup stands.
//!
//! Every file is created with mode 0600 and holds only sealed bytes; every append is
//! `fdatasync`ed before [`BackupDir::append`] returns, every new file and rename is followed
//! by an fsync of the directory.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use secp256k1::PublicKey;
use warden_core::rng::EntropySource;
use warden_core::seal::EciesError;

use crate::format::{self, FormatError};

/// How many snapshots are kept (with the log segments that follow them): the newest, and
/// one before it in case the newest is lost or damaged.
pub const KEPT_SNAPSHOTS: usize = 2;

/// A backup directory open for writing.
#[derive(Debug)]
pub struct BackupDir {
    path: PathBuf,
    recipient: PublicKey,
    /// The open segment, its start version and current length.
    segment: Option<OpenSegment>,
    /// The last `data_version` the backup holds (record or snapshot), `None` when empty.
    last: Option<u64>,
    /// The offset and version of the last record of the open segment, and the version before
    /// it (for [`BackupDir::rewind_last`]).
    last_record: Option<(u64, u64)>,
    /// The newest snapshot's version.
    newest_snapshot: Option<u64>,
}

#[derive(Debug)]
struct OpenSegment {
    start: u64,
    file: File,
    len: u64,
}

/// Where a backup directory stands, read from its file names and record headers (no key is
/// needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackupPosition {
    /// The last `data_version` held, `None` for an empty backup.
    pub last: Option<u64>,
    /// The newest snapshot's `data_version`.
    pub newest_snapshot: Option<u64>,
}

impl BackupDir {
    /// Opens (creating it, mode 0700, if absent) the backup directory at `path` for records
    /// sealed to `recipient`, truncating a torn tail left by a crash mid-append (a record that
    /// was never acknowledged).
    pub fn open(path: &Path, recipient: PublicKey) -> Result<BackupDir, DirError> {
        if !path.exists() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode_0700()
                .create(path)
                .map_err(|e| DirError::io("create", path, e))?;
        }
        let mut dir = BackupDir {
            path: path.to_owned(),
            recipient,
            segment: None,
            last: None,
            last_record: None,
            newest_snapshot: None,
        };
        let (snapshots, segments) = list(path)?;
        dir.newest_snapshot = snapshots.last().copied();
        dir.last = dir.newest_snapshot;
        if let Some(&start) = segments.last() {
            let seg_path = path.join(format::segment_name(start));
            let bytes = fs::read(&seg_path).map_err(|e| DirError::io("read", &seg_path, e))?;
            let parsed = format::parse_segment(&bytes)
                .map_err(|e| DirError::Format { path: seg_path.clone(), error: e })?;
            let file = OpenOptions::new()
                .write(true)
                .open(&seg_path)
                .map_err(|e| DirError::io("open", &seg_path, e))?;
            if parsed.torn_tail > 0 {
                file.set_len(parsed.complete_len)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| DirError::io("truncate the torn tail of", &seg_path, e))?;
            }
            if let Some(rec) = parsed.records.last() {
                dir.last = Some(dir.last.map_or(rec.data_version, |l| l.max(rec.data_version)));
                dir.last_record = Some((rec.offset, rec.data_version));
            } else {
                dir.last = Some(dir.last.map_or(start, |l| l.max(start)));
            }
            dir.segment = Some(OpenSegment { start, file, len: parsed.complete_len });
        }
        // A crash between a snapshot's rename and the creation of its segment: begin it now,
        // so that records after the snapshot never land in an older segment.
        if let Some(snap) = dir.newest_snapshot {
            if dir.segment.as_ref().is_none_or(|s| s.start < snap) {
                dir.begin_segment(snap)?;
                dir.last = Some(snap);
            }
        }
        Ok(dir)
    }

    /// Where the backup stands.
    pub fn position(&self) -> BackupPosition {
        BackupPosition { last: self.last, newest_snapshot: self.newest_snapshot }
    }

    /// The directory's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Seals the statements of transaction `data_version` and appends them, durably.
    ///
    /// `data_version` must follow the backup's last version by one (or the backup must be
    /// empty and have a segment to write to, which [`BackupDir::snapshot`] creates).
    pub fn append(
        &mut self,
        data_version: u64,
        writes: &[String],
        entropy: &mut dyn EntropySource,
    ) -> Result<(), DirError> {
        let blob = format::seal_record(&self.recipient, data_version, writes, entropy)
            .map_err(DirError::from)?;
        self.append_sealed(data_version, &blob)
    }

    /// Appends the sealed record `blob` of `data_version` (from [`format::seal_record`] to
    /// this directory's recipient), durably: `fdatasync`ed before it returns.
    pub fn append_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), DirError> {
        let expected = self.last.map(|l| l.saturating_add(1));
        if expected != Some(data_version) {
            return Err(DirError::OutOfOrder { last: self.last, got: data_version });
        }
        let stored = format::encode_stored_record(data_version, blob).map_err(DirError::Encode)?;
        let seg = self.segment.as_mut().ok_or(DirError::NoSegment)?;
        let seg_path = self.path.join(format::segment_name(seg.start));
        let offset = seg.len;
        let written = (|| {
            (&seg.file).write_all(&stored)?;
            seg.file.sync_data()
        })();
        if let Err(e) = written {
            // Best effort: cut whatever part reached the file, so the next append starts clean.
            let _ = seg.file.set_len(offset);
            return Err(DirError::io("append to", &seg_path, e));
        }
        seg.len = offset + stored.len() as u64;
        self.last_record = Some((offset, data_version));
        self.last = Some(data_version);
        Ok(())
    }

    /// Removes the last record, which holds `data_version`: the database never committed that
    /// transaction (lightningd stopped between the hook's `continue` and its commit).
    pub fn rewind_last(&mut self, data_version: u64) -> Result<(), DirError> {
        let (offset, dv) = self.last_record.ok_or(DirError::NothingToRewind)?;
        if dv != data_version || self.last != Some(dv) {
            return Err(DirError::NothingToRewind);
        }
        let seg = self.segment.as_mut().ok_or(DirError::NoSegment)?;
        let seg_path = self.path.join(format::segment_name(seg.start));
        seg.file
            .set_len(offset)
            .and_then(|()| seg.file.sync_all())
            .map_err(|e| DirError::io("rewind", &seg_path, e))?;
        seg.len = offset;
        self.last_record = None;
        self.last = Some(dv.saturating_sub(1));
        Ok(())
    }

    /// Seals `database` (a consistent copy of the SQLite file at `data_version`), writes it as
    /// the newest snapshot (temporary file, fsync, rename, directory fsync) and begins the log
    /// segment that follows it.
    pub fn snapshot(
        &mut self,
        data_version: u64,
        database: &[u8],
        entropy: &mut dyn EntropySource,
    ) -> Result<(), DirError> {
        if let Some(last) = self.last {
            // A snapshot older than the log's head would leave records between it and the
            // head in an earlier segment; it can only come from a database behind the backup.
            if data_version < last {
                return Err(DirError::SnapshotBehind { last, snapshot: data_version });
            }
        }
        let blob = format::seal_snapshot(&self.recipient, data_version, database, entropy)
            .map_err(DirError::from)?;
        self.snapshot_sealed(data_version, &blob)
    }

    /// Writes the sealed snapshot `blob` of `data_version` (from [`format::seal_snapshot`]) as
    /// the newest snapshot (temporary file, fsync, rename, directory fsync) and begins the log
    /// segment that follows it.
    pub fn snapshot_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), DirError> {
        if let Some(last) = self.last {
            if data_version < last {
                return Err(DirError::SnapshotBehind { last, snapshot: data_version });
            }
        }
        let mut file_bytes = Vec::with_capacity(16 + blob.len());
        file_bytes.extend_from_slice(&format::SNAPSHOT_MAGIC);
        file_bytes.extend_from_slice(&data_version.to_be_bytes());
        file_bytes.extend_from_slice(blob);
        let name = format::snapshot_name(data_version);
        write_durably(&self.path, &name, &file_bytes)?;
        self.newest_snapshot = Some(data_version);

        self.begin_segment(data_version)?;
        self.last = Some(data_version);
        self.prune()
    }

    /// Keeps the [`KEPT_SNAPSHOTS`] newest snapshots and the segments from the oldest kept
    /// one on; removes the rest (they are not needed to restore the newest state).
    fn prune(&mut self) -> Result<(), DirError> {
        let (snapshots, segments) = list(&self.path)?;
        let Some(&oldest_kept) = snapshots.iter().rev().nth(KEPT_SNAPSHOTS - 1) else {
            return Ok(());
        };
        let old_snapshots = snapshots.iter().filter(|v| **v < oldest_kept);
        let old_segments = segments.iter().filter(|v| **v < oldest_kept);
        let names = old_snapshots
            .map(|v| format::snapshot_name(*v))
            .chain(old_segments.map(|v| format::segment_name(*v)));
        for name in names {
            let path = self.path.join(name);
            fs::remove_file(&path).map_err(|e| DirError::io("remove", &path, e))?;
        }
        sync_dir(&self.path).map_err(|e| DirError::io("sync", &self.path, e))
    }

    /// Makes `log-<start>` the open segment, creating it if it is not already.
    fn begin_segment(&mut self, start: u64) -> Result<(), DirError> {
        if self.segment.as_ref().is_some_and(|s| s.start == start) {
            return Ok(());
        }
        let seg_path = self.path.join(format::segment_name(start));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&seg_path)
            .map_err(|e| DirError::io("create", &seg_path, e))?;
        file.write_all(&format::LOG_MAGIC)
            .and_then(|()| file.sync_all())
            .and_then(|()| sync_dir(&self.path))
            .map_err(|e| DirError::io("write", &seg_path, e))?;
        self.segment = Some(OpenSegment { start, file, len: format::LOG_MAGIC.len() as u64 });
        self.last_record = None;
        Ok(())
    }
}

/// Lists the snapshot and segment versions in `path`, each sorted ascending.
pub fn list(path: &Path) -> Result<(Vec<u64>, Vec<u64>), DirError> {
    let mut snapshots = Vec::new();
    let mut segments = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| DirError::io("list", path, e))? {
        let entry = entry.map_err(|e| DirError::io("list", path, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(v) = format::parse_snapshot_name(name) {
            snapshots.push(v);
        } else if let Some(v) = format::parse_segment_name(name) {
            segments.push(v);
        }
    }
    snapshots.sort_unstable();
    segments.sort_unstable();
    Ok((snapshots, segments))
}

/// Writes `name` in `dir` atomically and durably, mode 0600.
fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), DirError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        sync_dir(dir)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(DirError::io("write", &dir.join(name), e));
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

trait DirBuilderExt {
    fn mode_0700(&mut self) -> &mut Self;
}

impl DirBuilderExt for fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// Why the backup directory cannot be written.
#[derive(Debug)]
pub enum DirError {
    /// A file-system operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        error: io::Error,
    },
    /// A file of the directory does not follow the layout.
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: FormatError,
    },
    /// A record could not be encoded.
    Encode(FormatError),
    /// Sealing failed (a broken entropy source).
    Seal(EciesError),
    /// A record that does not follow the backup's last version by one.
    OutOfOrder {
        /// The backup's last version.
        last: Option<u64>,
        /// The record's version.
        got: u64,
    },
    /// A snapshot older than the backup's last version.
    SnapshotBehind {
        /// The backup's last version.
        last: u64,
        /// The snapshot's version.
        snapshot: u64,
    },
    /// No segment to append to (no snapshot was taken yet).
    NoSegment,
    /// The last record is not the one to rewind.
    NothingToRewind,
}

impl From<format::SealError> for DirError {
    fn from(e: format::SealError) -> DirError {
        match e {
            format::SealError::Encode(e) => DirError::Encode(e),
            format::SealError::Seal(e) => DirError::Seal(e),
        }
    }
}

impl DirError {
    fn io(action: &'static str, path: &Path, error: io::Error) -> DirError {
        DirError::Io { action, path: path.to_owned(), error }
    }
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DirError::Io { action, path, error } => {
                write!(f, "cannot {action} {}: {error}", path.display())
            }
            DirError::Format { path, error } => write!(f, "{}: {error}", path.display()),
            DirError::Encode(e) => write!(f, "cannot encode a record: {e}"),
            DirError::Seal(e) => write!(f, "cannot seal: {e}"),
            DirError::OutOfOrder { last: Some(last), got } => {
                write!(f, "data_version {got} does not follow the backup's {last}")
            }
            DirError::OutOfOrder { last: None, got } => {
                write!(f, "data_version {got} on an empty backup")
            }
            DirError::SnapshotBehind { last, snapshot } => {
                write!(f, "snapshot at data_version {snapshot} is behind the backup's {last}")
            }
            DirError::NoSegment => f.write_str("no log segment (no snapshot yet)"),
            DirError::NothingToRewind => f.write_str("the last record is not the one to rewind"),
        }
    }
}

impl std::error::Error for DirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DirError::Io { error, .. } => Some(error),
            DirError::Format { error, .. } | DirError::Encode(error) => Some(error),
            DirError::Seal(e) => Some(e),
            _ => None,
        }
    }
}
