//! The PostgreSQL destination (`--warden-backup-postgres=URL`) and restore source: the same
//! sealed blobs as a backup directory's, one row each, in a database that several nodes may
//! share.
//!
//! # Tables
//!
//! Every row is keyed by the backup's identity, `backup_id`: the node-backup public key the
//! blobs are sealed to (33 bytes, compressed), so nodes sharing a database stay apart and a
//! restore with the seed finds its own rows.
//!
//! ```sql
//! CREATE TABLE warden_backup_snapshots (
//!     backup_id    BYTEA       NOT NULL CHECK (octet_length(backup_id) = 33),
//!     epoch        BIGINT      NOT NULL CHECK (epoch > 0),
//!     data_version BIGINT      NOT NULL CHECK (data_version >= 0),
//!     blob         BYTEA       NOT NULL,
//!     written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY (backup_id, epoch)
//! );
//! CREATE TABLE warden_backup_records (
//!     backup_id    BYTEA       NOT NULL,
//!     epoch        BIGINT      NOT NULL,
//!     data_version BIGINT      NOT NULL CHECK (data_version > 0),
//!     blob         BYTEA       NOT NULL,
//!     written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
//!     PRIMARY KEY (backup_id, epoch, data_version),
//!     FOREIGN KEY (backup_id, epoch) REFERENCES warden_backup_snapshots (backup_id, epoch)
//! );
//! ```
//!
//! `blob` is one ECIES blob exactly as in a backup directory ([`crate::format`]): a snapshot
//! sealed with [`crate::format::snapshot_context`]`(data_version)`, a record with
//! [`crate::format::record_context`]`(data_version)`. The clear `data_version` column is only
//! an index: a blob moved to another row does not open.
//!
//! # Append only: INSERT, never UPDATE or DELETE
//!
//! The plugin only ever inserts (and selects): once the schema is in place (created by a
//! first start with a role that may create tables, or by running [`MIGRATIONS`] by hand), the
//! role it uses needs no more than `GRANT SELECT ON warden_backup_migrations` and `GRANT
//! SELECT, INSERT ON warden_backup_snapshots, warden_backup_records` — no UPDATE, no DELETE
//! (tested). A second row for the same version, or a rewrite of one, is refused by the
//! primary key.
//!
//! An **epoch** is one snapshot and the records written after it — the rows of a backup
//! directory's `snapshot-<V>` and `log-<V>` — numbered 1, 2, 3, ... per backup. Within an
//! epoch the key is `(backup_id, data_version)`. The epoch is in the key because of the one
//! case where the directory truncates its log: a record acknowledged to lightningd that
//! lightningd never committed (it stopped in between, or retried the transaction). The
//! directory cuts that record off; here it stays, superseded: the plugin begins a new epoch
//! with a snapshot of the committed state, and the new record of that version goes into the
//! new epoch. Restore reads the newest epoch only (its snapshot, then its records, which must
//! be consecutive from the snapshot's version on). Old epochs are never needed again; the
//! plugin does not delete them (it has no DELETE privilege to need). An operator may prune
//! with a role that can: `DELETE FROM warden_backup_records WHERE backup_id = $1 AND epoch <
//! $2; DELETE FROM warden_backup_snapshots WHERE backup_id = $1 AND epoch < $2` (keeping, say,
//! the two newest epochs, as the directory keeps two snapshots).
//!
//! A snapshot at start whose version is the newest epoch's snapshot's, with no record after
//! it, is not written again (a restart with no write in between adds no row).
//!
//! # Durability
//!
//! Each record is one `INSERT` in autocommit: it returns once the server committed it, which
//! with PostgreSQL's defaults (`fsync = on`, `synchronous_commit = on`) means once its WAL is
//! flushed; only then does the hook answer `continue`. A server configured otherwise (or a
//! `synchronous_commit = remote_apply` standby setup) gives the durability it is configured
//! for.
//!
//! A connection that broke between two writes (a server restart) is re-opened once and the
//! insert retried; if the first attempt had committed after all (its answer was lost), the
//! retry meets its own row — the same blob — and counts as written.
//!
//! # Schema migrations
//!
//! Append-only, numbered migrations ([`MIGRATIONS`]) recorded in `warden_backup_migrations
//! (version, name, sha256, applied_at)` — a table of this crate's own, apart from
//! warden-store's `warden_schema_migrations`, so the two can share a database. Opening for
//! writing runs the missing ones in one transaction under an advisory lock, refuses a database
//! with a migration this build does not know, and one whose recorded SHA-256 differs from this
//! build's text. A database already up to date is only read (no lock, no DDL). Restore only
//! reads.
//!
//! # SQL features relied on
//!
//! For assessing PostgreSQL-compatible engines:
//!
//! * `BYTEA`, `BIGINT`, `TIMESTAMPTZ DEFAULT now()` columns, composite `PRIMARY KEY`s, a
//!   composite `FOREIGN KEY`, `CHECK` constraints with `octet_length`;
//! * plain `INSERT ... VALUES` with a unique-violation error (SQLSTATE `23505`) on a
//!   duplicate key, and its affected-row count;
//! * `SELECT ... ORDER BY ... DESC LIMIT 1`, `max()`, keyset paging (`data_version > $n
//!   ORDER BY data_version LIMIT n`);
//! * `to_regclass(text)`, `CREATE TABLE IF NOT EXISTS`, transactional DDL,
//!   `pg_advisory_xact_lock(bigint)`;
//! * the extended query protocol (prepared statements) and the simple protocol for DDL.
//!
//! # No TLS (for now)
//!
//! As warden-store's PostgreSQL backend: `NoTls`, so use a Unix socket, loopback, or a network
//! the operator trusts. The blobs are sealed; the password and the traffic pattern are not
//! protected.
//!
//! # Blocking API
//!
//! The plugin's loop is synchronous. Each [`PgBackup`] / [`PgReader`] owns a current-thread
//! tokio runtime and one connection, and blocks on each call. Calling from inside an async
//! runtime is refused with an error (use `spawn_blocking` there).

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use secp256k1::PublicKey;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

/// One schema migration. Released migrations are never edited: add a new one instead.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Its number: 1, 2, 3, ... in order.
    pub version: i32,
    /// A short name, for humans.
    pub name: &'static str,
    /// The SQL, run as one simple-protocol batch inside the migration transaction.
    pub sql: &'static str,
}

impl Migration {
    /// The SHA-256 of the migration's SQL text, as recorded in the database.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.sql.as_bytes()).into()
    }
}

/// Every migration, in order. Append only.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "snapshots and records",
    sql: "CREATE TABLE warden_backup_snapshots (
    backup_id    BYTEA       NOT NULL CHECK (octet_length(backup_id) = 33),
    epoch        BIGINT      NOT NULL CHECK (epoch > 0),
    data_version BIGINT      NOT NULL CHECK (data_version >= 0),
    blob         BYTEA       NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (backup_id, epoch)
);
CREATE TABLE warden_backup_records (
    backup_id    BYTEA       NOT NULL,
    epoch        BIGINT      NOT NULL,
    data_version BIGINT      NOT NULL CHECK (data_version > 0),
    blob         BYTEA       NOT NULL,
    written_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (backup_id, epoch, data_version),
    FOREIGN KEY (backup_id, epoch) REFERENCES warden_backup_snapshots (backup_id, epoch)
);",
}];

/// The bookkeeping table itself (never changes; it precedes migration 1).
const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS warden_backup_migrations (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL,
    sha256     BYTEA       NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The advisory lock key that serialises this crate's migrations ("wbackup" in ASCII).
const MIGRATION_LOCK: i64 = 0x0077_6261_636b_7570;

const INSERT_RECORD: &str = "INSERT INTO warden_backup_records (backup_id, epoch, data_version, \
                             blob) VALUES ($1, $2, $3, $4)";
const INSERT_SNAPSHOT: &str = "INSERT INTO warden_backup_snapshots (backup_id, epoch, \
                               data_version, blob) VALUES ($1, $2, $3, $4)";
const SELECT_RECORD_BLOB: &str = "SELECT blob FROM warden_backup_records WHERE backup_id = $1 \
                                  AND epoch = $2 AND data_version = $3";
const SELECT_SNAPSHOT_BLOB: &str =
    "SELECT blob FROM warden_backup_snapshots WHERE backup_id = $1 AND epoch = $2";
const SELECT_NEWEST_EPOCH: &str = "SELECT epoch, data_version FROM warden_backup_snapshots \
                                   WHERE backup_id = $1 ORDER BY epoch DESC LIMIT 1";
const SELECT_LAST_RECORD: &str =
    "SELECT max(data_version) FROM warden_backup_records WHERE backup_id = $1 AND epoch = $2";
const SELECT_RECORDS_PAGE: &str = "SELECT data_version, blob FROM warden_backup_records \
                                   WHERE backup_id = $1 AND epoch = $2 AND data_version > $3 \
                                   ORDER BY data_version LIMIT $4";

/// How many records a restore reads per query.
const PAGE: i64 = 1000;

/// A PostgreSQL connection string (libpq key-value or `postgresql://` URI), never shown whole:
/// it may hold a password. Its `Display` names the database, host, port and user only.
#[derive(Clone)]
pub struct PgTarget {
    url: String,
    config: Box<tokio_postgres::Config>,
}

impl PartialEq for PgTarget {
    fn eq(&self, other: &PgTarget) -> bool {
        self.url == other.url
    }
}

impl Eq for PgTarget {}

impl PgTarget {
    /// Parses a connection string.
    pub fn parse(url: &str) -> Result<PgTarget, String> {
        let mut config = tokio_postgres::Config::from_str(url.trim()).map_err(|e| {
            // tokio-postgres names the option, never its value.
            format!("the PostgreSQL connection string does not parse: {e}")
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        Ok(PgTarget { url: url.trim().to_owned(), config: Box::new(config) })
    }

    /// The connection string as given (for the state file; may hold a password).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// The `application_name` the plugin's connections carry unless the URL names another.
pub const APPLICATION_NAME: &str = "warden-backup";

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL database {}", self.config.get_dbname().unwrap_or("(default)"))?;
        let hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        if !hosts.is_empty() {
            write!(f, " on {}", hosts.join(","))?;
        }
        if let Some(port) = self.config.get_ports().first() {
            write!(f, " port {port}")?;
        }
        if let Some(user) = self.config.get_user() {
            write!(f, " as {user}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({self})")
    }
}

/// The `backup_id` of the backup sealed to `recipient`: its compressed public key.
pub fn backup_id(recipient: &PublicKey) -> [u8; 33] {
    recipient.serialize()
}

/// One connection and the runtime that drives it.
struct Conn {
    // Field order matters: the client goes before the runtime.
    client: Client,
    /// The writer's prepared inserts (`None` for a reader).
    inserts: Option<(Statement, Statement)>,
    runtime: tokio::runtime::Runtime,
}

impl Conn {
    /// Connects; a `writer` also brings the schema up to date and prepares its inserts.
    fn open(target: &PgTarget, writer: bool) -> Result<Conn, PgError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PgError::other(
                "connect",
                target,
                "called from inside an async runtime (use spawn_blocking)",
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PgError::other("start the client runtime for", target, e.to_string()))?;
        let config = (*target.config).clone();
        let (client, inserts) = runtime
            .block_on(async move {
                let sql = |action| move |e| (action, Migrate::Sql(e));
                let (client, connection) = config.connect(NoTls).await.map_err(sql("connect"))?;
                tokio::spawn(async move {
                    // Ends when the connection closes; the next call then reports it.
                    let _ = connection.await;
                });
                if !writer {
                    return Ok((client, None));
                }
                migrate(&client).await.map_err(|e| ("migrate the schema of", e))?;
                let record = client.prepare(INSERT_RECORD).await.map_err(sql("prepare for"))?;
                let snapshot = client.prepare(INSERT_SNAPSHOT).await.map_err(sql("prepare for"))?;
                Ok((client, Some((record, snapshot))))
            })
            .map_err(|(action, e)| match e {
                Migrate::Sql(e) => PgError::sql(action, target, e),
                Migrate::Schema(detail) => PgError::other(action, target, detail),
            })?;
        Ok(Conn { client, inserts, runtime })
    }

    fn block<F: Future>(&self, fut: F) -> F::Output {
        self.runtime.block_on(fut)
    }
}

/// Why the schema could not be brought up to date.
enum Migrate {
    Sql(tokio_postgres::Error),
    Schema(String),
}

impl From<tokio_postgres::Error> for Migrate {
    fn from(e: tokio_postgres::Error) -> Migrate {
        Migrate::Sql(e)
    }
}

/// Brings the schema up to date; see the module docs.
async fn migrate(client: &Client) -> Result<(), Migrate> {
    // Up to date already (the usual case): nothing to lock or create, so a role with only
    // SELECT and INSERT rights (and SELECT on the bookkeeping table) can write.
    if up_to_date(client).await? {
        return Ok(());
    }
    client.batch_execute("BEGIN").await?;
    let result = migrate_in_transaction(client).await;
    match result {
        Ok(()) => Ok(client.batch_execute("COMMIT").await?),
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

/// Whether every migration of this build is recorded, each with this build's digest, and no
/// other (any other finding goes the locked way, which reports it).
async fn up_to_date(client: &Client) -> Result<bool, Migrate> {
    let exists: Option<String> = client
        .query_one("SELECT to_regclass('warden_backup_migrations')::text", &[])
        .await?
        .try_get(0)?;
    if exists.is_none() {
        return Ok(false);
    }
    let rows = client
        .query("SELECT version, sha256 FROM warden_backup_migrations ORDER BY version", &[])
        .await?;
    let mut recorded = Vec::with_capacity(rows.len());
    for row in rows {
        recorded.push((row.try_get::<_, i32>(0)?, row.try_get::<_, Vec<u8>>(1)?));
    }
    let expected: Vec<(i32, Vec<u8>)> =
        MIGRATIONS.iter().map(|m| (m.version, m.digest().to_vec())).collect();
    Ok(recorded == expected)
}

async fn migrate_in_transaction(client: &Client) -> Result<(), Migrate> {
    client.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    client.batch_execute(CREATE_MIGRATIONS_TABLE).await?;
    let rows = client
        .query("SELECT version, sha256 FROM warden_backup_migrations ORDER BY version", &[])
        .await?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i32 = row.try_get(0)?;
        let digest: Vec<u8> = row.try_get(1)?;
        match MIGRATIONS.iter().find(|m| m.version == version) {
            None => {
                return Err(Migrate::Schema(format!(
                    "it has warden-backup schema migration {version}, newer than {} that this \
                     build knows",
                    MIGRATIONS.last().map_or(0, |m| m.version)
                )))
            }
            Some(m) if digest.as_slice() != m.digest().as_slice() => {
                return Err(Migrate::Schema(format!(
                    "it recorded a different text for warden-backup schema migration {version} \
                     than this build's"
                )))
            }
            Some(_) => applied.push(version),
        }
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        client.batch_execute(m.sql).await?;
        client
            .execute(
                "INSERT INTO warden_backup_migrations (version, name, sha256) VALUES ($1, $2, $3)",
                &[&m.version, &m.name, &m.digest().as_slice()],
            )
            .await?;
    }
    Ok(())
}

fn to_db(v: u64) -> Result<i64, PgError> {
    i64::try_from(v).map_err(|_| PgError::Range { value: v })
}

fn from_db(v: i64) -> Result<u64, PgError> {
    u64::try_from(v).map_err(|_| PgError::Negative { value: v })
}

/// The newest epoch of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Epoch {
    number: i64,
    snapshot: u64,
}

/// A backup in a PostgreSQL database, open for writing (the plugin's destination).
pub struct PgBackup {
    target: PgTarget,
    conn: Conn,
    backup_id: [u8; 33],
    epoch: Option<Epoch>,
    last: Option<u64>,
    /// The epoch's last record was superseded: the next write must be a snapshot.
    rewound: bool,
}

impl fmt::Debug for PgBackup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgBackup")
            .field("target", &self.target)
            .field("epoch", &self.epoch)
            .field("last", &self.last)
            .field("rewound", &self.rewound)
            .finish_non_exhaustive()
    }
}

impl PgBackup {
    /// Connects, brings the schema up to date, and reads where the backup sealed to
    /// `recipient` stands.
    pub fn open(target: &PgTarget, recipient: &PublicKey) -> Result<PgBackup, PgError> {
        let conn = Conn::open(target, true)?;
        let mut backup = PgBackup {
            target: target.clone(),
            conn,
            backup_id: backup_id(recipient),
            epoch: None,
            last: None,
            rewound: false,
        };
        backup.read_position()?;
        Ok(backup)
    }

    fn read_position(&mut self) -> Result<(), PgError> {
        let id = self.backup_id.as_slice();
        let client = &self.conn.client;
        let row = self
            .conn
            .block(client.query_opt(SELECT_NEWEST_EPOCH, &[&id]))
            .map_err(|e| PgError::sql("read the newest snapshot from", &self.target, e))?;
        let Some(row) = row else {
            self.epoch = None;
            self.last = None;
            return Ok(());
        };
        let (number, snapshot): (i64, i64) = (
            row.try_get(0).map_err(|e| PgError::sql("read", &self.target, e))?,
            row.try_get(1).map_err(|e| PgError::sql("read", &self.target, e))?,
        );
        let epoch = Epoch { number, snapshot: from_db(snapshot)? };
        let last: Option<i64> = self
            .conn
            .block(client.query_one(SELECT_LAST_RECORD, &[&id, &number]))
            .and_then(|row| row.try_get(0))
            .map_err(|e| PgError::sql("read the last record from", &self.target, e))?;
        let last = last.map(from_db).transpose()?;
        self.epoch = Some(epoch);
        self.last = Some(last.map_or(epoch.snapshot, |l| l.max(epoch.snapshot)));
        self.rewound = false;
        Ok(())
    }

    /// The last `data_version` the backup holds (its newest epoch's snapshot or last record),
    /// `None` when it has none.
    pub fn last(&self) -> Option<u64> {
        self.last
    }

    /// The newest snapshot's version.
    pub fn newest_snapshot(&self) -> Option<u64> {
        self.epoch.map(|e| e.snapshot)
    }

    /// Where the backup is (its `Display` holds no password).
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// Inserts the sealed record `blob` of `data_version`; returns once the server committed
    /// it. `data_version` must follow the backup's last by one, in an epoch (after a snapshot).
    pub fn append_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), PgError> {
        let expected = self.last.map(|l| l.saturating_add(1));
        if expected != Some(data_version) {
            return Err(PgError::OutOfOrder { last: self.last, got: data_version });
        }
        let epoch = match self.epoch {
            Some(e) if !self.rewound => e,
            _ => return Err(PgError::NoEpoch),
        };
        let dv = to_db(data_version)?;
        self.insert(Row::Record { epoch: epoch.number, dv }, blob)?;
        self.last = Some(data_version);
        Ok(())
    }

    /// Inserts the sealed snapshot `blob` of `data_version` as a new epoch (see the module
    /// docs; skipped when it would repeat the newest epoch's snapshot with nothing after it).
    pub fn snapshot_sealed(&mut self, data_version: u64, blob: &[u8]) -> Result<(), PgError> {
        if let Some(last) = self.last {
            if data_version < last {
                return Err(PgError::SnapshotBehind { last, snapshot: data_version });
            }
        }
        if let Some(e) = self.epoch {
            if !self.rewound && e.snapshot == data_version && self.last == Some(data_version) {
                return Ok(());
            }
        }
        let number = self.epoch.map_or(1, |e| e.number.saturating_add(1));
        let dv = to_db(data_version)?;
        self.insert(Row::Snapshot { epoch: number, dv }, blob)?;
        self.epoch = Some(Epoch { number, snapshot: data_version });
        self.last = Some(data_version);
        self.rewound = false;
        Ok(())
    }

    /// Supersedes the last record, of `data_version`, which the database never committed:
    /// nothing is deleted; the next write must be a snapshot, which begins a new epoch.
    pub fn rewind_last(&mut self, data_version: u64) -> Result<(), PgError> {
        match self.epoch {
            Some(e) if self.last == Some(data_version) && data_version > e.snapshot => {
                self.last = Some(data_version.saturating_sub(1));
                self.rewound = true;
                Ok(())
            }
            _ => Err(PgError::NothingToRewind),
        }
    }

    fn insert(&mut self, row: Row, blob: &[u8]) -> Result<(), PgError> {
        let inserted = match self.insert_once(row, blob) {
            Ok(n) => n,
            // The connection broke (or the server ended it): once more on a new one.
            Err(e) if self.connection_lost(&e) => {
                self.conn = Conn::open(&self.target, true)?;
                match self.insert_once(row, blob) {
                    Ok(n) => n,
                    Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                        // The first attempt committed and its answer was lost: the row is
                        // ours if it holds the same blob.
                        if self.stored_blob(row)?.as_deref() != Some(blob) {
                            return Err(row.duplicate());
                        }
                        1
                    }
                    Err(e) => return Err(PgError::sql(row.action(), &self.target, e)),
                }
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => return Err(row.duplicate()),
            Err(e) => return Err(PgError::sql(row.action(), &self.target, e)),
        };
        if inserted != 1 {
            return Err(PgError::other(
                row.action(),
                &self.target,
                format!("the server reports {inserted} rows inserted, not 1"),
            ));
        }
        Ok(())
    }

    /// Whether `e` means the connection is gone rather than the statement refused: no answer
    /// from the server, a closed client, or SQLSTATE class 08 (connection exception) or 57
    /// (operator intervention: the server shutting down or ending the session).
    fn connection_lost(&self, e: &tokio_postgres::Error) -> bool {
        let class = e.code().map(|c| c.code().get(..2).unwrap_or_default().to_owned());
        e.as_db_error().is_none()
            || self.conn.client.is_closed()
            || matches!(class.as_deref(), Some("08") | Some("57"))
    }

    /// One INSERT of `row`; the number of rows the server reports inserted.
    fn insert_once(&self, row: Row, blob: &[u8]) -> Result<u64, tokio_postgres::Error> {
        let id = self.backup_id.as_slice();
        let client = &self.conn.client;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = match &row {
            Row::Record { epoch, dv } | Row::Snapshot { epoch, dv } => [&id, epoch, dv, &blob],
        };
        let n = match (row, &self.conn.inserts) {
            (Row::Record { .. }, Some((record, _))) => {
                self.conn.block(client.execute(record, &params))?
            }
            (Row::Snapshot { .. }, Some((_, snapshot))) => {
                self.conn.block(client.execute(snapshot, &params))?
            }
            (Row::Record { .. }, None) => {
                self.conn.block(client.execute(INSERT_RECORD, &params))?
            }
            (Row::Snapshot { .. }, None) => {
                self.conn.block(client.execute(INSERT_SNAPSHOT, &params))?
            }
        };
        Ok(n)
    }

    fn stored_blob(&self, row: Row) -> Result<Option<Vec<u8>>, PgError> {
        let id = self.backup_id.as_slice();
        let client = &self.conn.client;
        let found = match row {
            Row::Record { epoch, dv } => {
                self.conn.block(client.query_opt(SELECT_RECORD_BLOB, &[&id, &epoch, &dv]))
            }
            Row::Snapshot { epoch, .. } => {
                self.conn.block(client.query_opt(SELECT_SNAPSHOT_BLOB, &[&id, &epoch]))
            }
        }
        .and_then(|r| r.map(|r| r.try_get::<_, Vec<u8>>(0)).transpose())
        .map_err(|e| PgError::sql("read back", &self.target, e))?;
        Ok(found)
    }
}

#[derive(Debug, Clone, Copy)]
enum Row {
    Record { epoch: i64, dv: i64 },
    Snapshot { epoch: i64, dv: i64 },
}

impl Row {
    fn action(self) -> &'static str {
        match self {
            Row::Record { .. } => "insert a record into",
            Row::Snapshot { .. } => "insert a snapshot into",
        }
    }
    fn duplicate(self) -> PgError {
        match self {
            Row::Record { epoch, dv } => PgError::Duplicate { what: "record", epoch, dv },
            Row::Snapshot { epoch, dv } => PgError::Duplicate { what: "snapshot", epoch, dv },
        }
    }
}

/// A backup in a PostgreSQL database, open for reading (the restore source). Reads only.
pub struct PgReader {
    target: PgTarget,
    conn: Conn,
    backup_id: [u8; 33],
}

impl fmt::Debug for PgReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgReader").field("target", &self.target).finish_non_exhaustive()
    }
}

/// The newest epoch's snapshot, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The epoch it begins.
    pub epoch: i64,
    /// Its clear `data_version` column.
    pub data_version: u64,
    /// The sealed blob.
    pub blob: Vec<u8>,
}

impl PgReader {
    /// Connects to read the backup sealed to `recipient`.
    pub fn open(target: &PgTarget, recipient: &PublicKey) -> Result<PgReader, PgError> {
        let conn = Conn::open(target, false)?;
        Ok(PgReader { target: target.clone(), conn, backup_id: backup_id(recipient) })
    }

    /// Where the backup is.
    pub fn target(&self) -> &PgTarget {
        &self.target
    }

    /// The newest epoch's snapshot, `None` when the database holds no backup for this key.
    pub fn newest_snapshot(&self) -> Result<Option<StoredSnapshot>, PgError> {
        let id = self.backup_id.as_slice();
        let client = &self.conn.client;
        let row = self
            .conn
            .block(client.query_opt(
                "SELECT epoch, data_version, blob FROM warden_backup_snapshots \
                 WHERE backup_id = $1 ORDER BY epoch DESC LIMIT 1",
                &[&id],
            ))
            .map_err(|e| PgError::sql("read the newest snapshot from", &self.target, e))?;
        let Some(row) = row else { return Ok(None) };
        let read = |e| PgError::sql("read the newest snapshot from", &self.target, e);
        let epoch: i64 = row.try_get(0).map_err(read)?;
        let dv: i64 = row.try_get(1).map_err(read)?;
        let blob: Vec<u8> = row.try_get(2).map_err(read)?;
        Ok(Some(StoredSnapshot { epoch, data_version: from_db(dv)?, blob }))
    }

    /// Up to a page of the records of `epoch` after `after`, in `data_version` order.
    pub fn records_after(&self, epoch: i64, after: u64) -> Result<Vec<(u64, Vec<u8>)>, PgError> {
        let id = self.backup_id.as_slice();
        let after = to_db(after)?;
        let client = &self.conn.client;
        let rows = self
            .conn
            .block(client.query(SELECT_RECORDS_PAGE, &[&id, &epoch, &after, &PAGE]))
            .map_err(|e| PgError::sql("read records from", &self.target, e))?;
        rows.iter()
            .map(|row| {
                let read = |e| PgError::sql("read records from", &self.target, e);
                let dv: i64 = row.try_get(0).map_err(read)?;
                let blob: Vec<u8> = row.try_get(1).map_err(read)?;
                Ok((from_db(dv)?, blob))
            })
            .collect()
    }
}

/// Why the PostgreSQL destination or source failed. No variant holds the connection string's
/// password: the target is shown through [`PgTarget`]'s `Display`.
#[derive(Debug)]
pub enum PgError {
    /// The server (or the connection) answered with an error.
    Sql {
        /// What was being done.
        action: &'static str,
        /// Where (no password).
        target: String,
        /// The client's error.
        error: tokio_postgres::Error,
    },
    /// Another failure around the connection.
    Other {
        /// What was being done.
        action: &'static str,
        /// Where (no password).
        target: String,
        /// What went wrong.
        detail: String,
    },
    /// A record that does not follow the backup's last version by one.
    OutOfOrder {
        /// The backup's last version.
        last: Option<u64>,
        /// The record's version.
        got: u64,
    },
    /// A record with no epoch to go in (no snapshot yet, or one is due after a rewind).
    NoEpoch,
    /// A snapshot older than the backup's last version.
    SnapshotBehind {
        /// The backup's last version.
        last: u64,
        /// The snapshot's version.
        snapshot: u64,
    },
    /// The last record is not the one to rewind.
    NothingToRewind,
    /// The row exists already with other content: another writer of this backup.
    Duplicate {
        /// "record" or "snapshot".
        what: &'static str,
        /// Its epoch.
        epoch: i64,
        /// Its version.
        dv: i64,
    },
    /// A version beyond PostgreSQL's BIGINT.
    Range {
        /// The version.
        value: u64,
    },
    /// A negative version read from the database.
    Negative {
        /// The value read.
        value: i64,
    },
}

impl PgError {
    fn sql(action: &'static str, target: &PgTarget, error: tokio_postgres::Error) -> PgError {
        PgError::Sql { action, target: target.to_string(), error }
    }
    fn other(action: &'static str, target: &PgTarget, detail: impl Into<String>) -> PgError {
        PgError::Other { action, target: target.to_string(), detail: detail.into() }
    }
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::Sql { action, target, error } => match error.as_db_error() {
                Some(db) => {
                    write!(f, "cannot {action} {target}: {}: {}", db.severity(), db.message())
                }
                None => write!(f, "cannot {action} {target}: {error}"),
            },
            PgError::Other { action, target, detail } => {
                write!(f, "cannot {action} {target}: {detail}")
            }
            PgError::OutOfOrder { last: Some(last), got } => {
                write!(f, "data_version {got} does not follow the backup's {last}")
            }
            PgError::OutOfOrder { last: None, got } => {
                write!(f, "data_version {got} on an empty backup")
            }
            PgError::NoEpoch => f.write_str("no snapshot to write records after (one is due)"),
            PgError::SnapshotBehind { last, snapshot } => {
                write!(f, "snapshot at data_version {snapshot} is behind the backup's {last}")
            }
            PgError::NothingToRewind => f.write_str("the last record is not the one to rewind"),
            PgError::Duplicate { what, epoch, dv } => write!(
                f,
                "the {what} of data_version {dv} in epoch {epoch} exists already with other \
                 content (the table refuses a rewrite): is another plugin writing this backup?"
            ),
            PgError::Range { value } => write!(f, "data_version {value} is beyond BIGINT"),
            PgError::Negative { value } => write!(f, "negative data_version {value} in the table"),
        }
    }
}

impl std::error::Error for PgError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            PgError::Sql { error, .. } => Some(error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    /// Released migrations are never edited: their digests are pinned here.
    #[test]
    fn released_migrations_are_unchanged() {
        let pinned: &[(i32, &str)] =
            &[(1, "ba00b040e06ce88bc35007a3959dbcbba417cb690828c7cfecd22fa6a9ffedc6")];
        assert_eq!(MIGRATIONS.len(), pinned.len(), "pin the digest of each new migration");
        for (m, (version, hex)) in MIGRATIONS.iter().zip(pinned) {
            assert_eq!(m.version, *version, "migrations are numbered 1, 2, 3, ...");
            let digest: String = m.digest().iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(digest, *hex, "migration {version} edited");
        }
    }

    #[test]
    fn target_display_hides_the_password() {
        let t =
            PgTarget::parse("host=/run/pg port=5433 user=node password=hunter2 dbname=b").unwrap();
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("database b on /run/pg port 5433 as node"), "{shown}");
        let t = PgTarget::parse("postgresql://node:hunter2@db.example:6543/backups").unwrap();
        let shown = format!("{t} {t:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("backups on db.example port 6543"), "{shown}");
        assert!(PgTarget::parse("host=x port=notaport").is_err());
    }
}
