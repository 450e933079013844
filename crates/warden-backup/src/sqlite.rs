//! Reading Core Lightning's database: its `data_version`, and a consistent copy of the whole
//! file held in memory only.
//!
//! The copy uses SQLite's online backup API in one step (one read transaction, so the copy is
//! the state of one commit) into an in-memory database, then `sqlite3_serialize`: the
//! unsealed copy never touches the disk. While lightningd waits on a `db_write` hook it holds
//! its write transaction open; a reader still sees the last committed state (the version
//! before the hook's).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, DatabaseName, OpenFlags, OptionalExtension};

/// How long a read waits for lightningd's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The `data_version` row of Core Lightning's `vars` table.
pub const DATA_VERSION_SQL: &str = "SELECT intval FROM vars WHERE name = 'data_version'";

/// A consistent copy of the database.
pub struct DatabaseCopy {
    /// The SQLite file's bytes (zeroized on drop).
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
    /// Its `data_version`, `None` when it has none (a database not yet created).
    pub data_version: Option<u64>,
}

impl fmt::Debug for DatabaseCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseCopy")
            .field("len", &self.bytes.len())
            .field("data_version", &self.data_version)
            .finish()
    }
}

fn open(path: &Path) -> Result<Connection, SqliteError> {
    // Read-write without create: a hot journal left by a crashed lightningd is rolled back,
    // which a read-only connection cannot do. Nothing is ever written through it.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| SqliteError::new(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| SqliteError::new(path, e))?;
    Ok(conn)
}

/// Reads the `data_version` of `conn`'s main database, `None` without a `vars` table or row.
pub fn data_version_of(conn: &Connection) -> rusqlite::Result<Option<u64>> {
    let has_vars: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'vars'",
        [],
        |r| r.get(0),
    )?;
    if !has_vars {
        return Ok(None);
    }
    let v: Option<i64> = conn.query_row(DATA_VERSION_SQL, [], |r| r.get(0)).optional()?;
    Ok(v.and_then(|v| u64::try_from(v).ok()))
}

/// The database's committed `data_version`: `None` if the file does not exist or has no
/// version yet.
pub fn read_data_version(path: &Path) -> Result<Option<u64>, SqliteError> {
    if !path.exists() {
        return Ok(None);
    }
    let conn = open(path)?;
    data_version_of(&conn).map_err(|e| SqliteError::new(path, e))
}

/// A consistent copy of the committed state of the database at `path` (an empty database if
/// the file does not exist yet).
pub fn copy_database(path: &Path) -> Result<DatabaseCopy, SqliteError> {
    let mut mem = Connection::open_in_memory().map_err(|e| SqliteError::new(path, e))?;
    if path.exists() {
        let src = open(path)?;
        let backup = Backup::new(&src, &mut mem).map_err(|e| SqliteError::new(path, e))?;
        // Every page in one step: one read transaction, one consistent state. Busy/Locked
        // (lightningd committing) is retried; the busy timeout bounds each attempt.
        let mut attempts = 0;
        loop {
            match backup.step(-1).map_err(|e| SqliteError::new(path, e))? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked if attempts < 100 => {
                    attempts += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => return Err(SqliteError::busy(path)),
            }
        }
    }
    let data_version = data_version_of(&mem).map_err(|e| SqliteError::new(path, e))?;
    let bytes = mem.serialize(DatabaseName::Main).map_err(|e| SqliteError::new(path, e))?;
    Ok(DatabaseCopy { bytes: zeroize::Zeroizing::new(bytes.to_vec()), data_version })
}

/// A database operation that failed.
#[derive(Debug)]
pub struct SqliteError {
    /// The database file.
    pub path: PathBuf,
    /// SQLite's error, `None` when the database stayed locked.
    pub error: Option<rusqlite::Error>,
}

impl SqliteError {
    fn new(path: &Path, error: rusqlite::Error) -> SqliteError {
        SqliteError { path: path.to_owned(), error: Some(error) }
    }
    fn busy(path: &Path) -> SqliteError {
        SqliteError { path: path.to_owned(), error: None }
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "database {}: {e}", self.path.display()),
            None => write!(f, "database {} stayed locked", self.path.display()),
        }
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.as_ref().map(|e| e as _)
    }
}
