//! The shared backend: one PostgreSQL database for many signers, each under its own store id.
//!
//! # Blocking API over a private runtime
//!
//! The signer's request path is synchronous, and the core never imports tokio. So
//! [`PgDatabase`] owns a small tokio runtime (one worker thread) that drives the
//! `tokio-postgres` connections of a `deadpool-postgres` pool, and [`PgStore`]'s [`Store`]
//! methods block the calling thread until the database answered. Several threads may call in
//! at once (up to the pool size run in parallel). Calling from inside an async runtime is
//! refused with a [`BackendError`] rather than a panic: use `spawn_blocking` there.
//!
//! # No TLS (for now)
//!
//! Connections are made without TLS (`NoTls`): use a Unix socket or loopback address, or a
//! network the operator trusts. The values are sealed and the keys obfuscated by the caller,
//! but the password (if any) and the traffic pattern are not protected.
//!
//! # Schema
//!
//! Append-only, numbered migrations ([`MIGRATIONS`]) recorded in `warden_schema_migrations`
//! `(version, name, sha256, applied_at)`. Opening runs the missing ones in one transaction
//! under an advisory lock (many signers may start at once), refuses a database with a
//! migration this build does not know, and refuses one whose recorded SHA-256 of a migration
//! differs from this build's text. Migration 1 creates
//!
//! ```sql
//! CREATE TABLE warden_records (
//!     store_id BYTEA  NOT NULL,
//!     key      BYTEA  NOT NULL,
//!     version  BIGINT NOT NULL CHECK (version > 0),
//!     value    BYTEA  NOT NULL,
//!     PRIMARY KEY (store_id, key)
//! );
//! ```
//!
//! # A commit
//!
//! One transaction (`READ COMMITTED`) per batch. The operations run in ascending key order (so
//! two batches over the same keys lock them in the same order and cannot deadlock), each a
//! compare-and-swap whose affected-row count must be 1:
//!
//! * put, expecting absent: `INSERT ... ON CONFLICT (store_id, key) DO NOTHING`;
//! * put, expecting version v: `UPDATE ... SET version, value WHERE store_id, key AND
//!   version = v`;
//! * delete, expecting version v: `DELETE ... WHERE store_id, key AND version = v`.
//!
//! Any other count rolls the transaction back and reports a [`ConflictError`]. Under
//! `READ COMMITTED`, a concurrent writer of the same row makes the second statement wait for
//! the first transaction and then re-check its `WHERE` against the committed row (or, for the
//! insert, see the committed conflicting row), so of two batches expecting the same version
//! exactly one wins. A serialisation failure (`40001`) or deadlock (`40P01`) reported by the
//! server rolls back and retries the whole transaction a few times.
//!
//! # SQL features relied on
//!
//! For assessing PostgreSQL-compatible engines (CockroachDB, YugabyteDB, ...):
//!
//! * `BYTEA` and `BIGINT` columns, a composite `PRIMARY KEY`, a `CHECK` constraint;
//! * `bytea` comparison and `ORDER BY` in plain byte order (prefix scans use
//!   `key >= $prefix AND key < $successor`);
//! * `INSERT ... ON CONFLICT (cols) DO NOTHING`, and affected-row counts of `INSERT`, `UPDATE`
//!   and `DELETE`;
//! * transactions whose concurrent writers of one row either block and re-check (PostgreSQL's
//!   `READ COMMITTED`) or fail one side with SQLSTATE `40001` (serializable engines);
//! * `CREATE TABLE IF NOT EXISTS`, `TIMESTAMPTZ DEFAULT now()`, transactional DDL, and
//!   `pg_advisory_xact_lock(bigint)` to serialise migrations;
//! * the extended query protocol (prepared statements) and the simple protocol for DDL.

use core::fmt;
use core::future::Future;
use core::time::Duration;
use std::error::Error;
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::{IsolationLevel, NoTls};

use crate::batch::validate;
use crate::{
    BackendError, CommitError, ConflictError, Op, Record, Store, StoreId, Version, Versioned,
};

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
    /// Returns the SHA-256 of the migration's SQL text, as recorded in the database.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.sql.as_bytes()).into()
    }
}

/// Every migration, in order. Append only.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "records",
    sql: "CREATE TABLE warden_records (
    store_id BYTEA  NOT NULL,
    key      BYTEA  NOT NULL,
    version  BIGINT NOT NULL CHECK (version > 0),
    value    BYTEA  NOT NULL,
    PRIMARY KEY (store_id, key)
);",
}];

/// The bookkeeping table itself (never changes; it precedes migration 1).
const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS warden_schema_migrations (
    version    INTEGER     PRIMARY KEY,
    name       TEXT        NOT NULL,
    sha256     BYTEA       NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// The advisory lock key that serialises migrations ("warden" in ASCII).
const MIGRATION_LOCK: i64 = 0x7761_7264_656e;

/// Pool size when none is given.
pub const DEFAULT_POOL_SIZE: usize = 4;

/// How often a transaction is retried after a serialisation failure or deadlock.
const MAX_RETRIES: u32 = 3;

/// A connection pool to one PostgreSQL database; hands out one [`PgStore`] per store id.
#[derive(Clone)]
pub struct PgDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    // Field order matters: the pool (and its connections) go before the runtime.
    pool: Pool,
    runtime: RuntimeGuard,
}

/// Shuts the private runtime down without blocking, so dropping a [`PgDatabase`] is safe
/// anywhere (even inside another runtime).
struct RuntimeGuard(Option<tokio::runtime::Runtime>);

impl Drop for RuntimeGuard {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl fmt::Debug for PgDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgDatabase").field("pool", &self.inner.pool.status()).finish()
    }
}

impl PgDatabase {
    /// Connects with a libpq-style connection string (`host=/run/pg user=warden dbname=w` or
    /// `postgresql://warden@localhost/w`), a pool of [`DEFAULT_POOL_SIZE`], and brings the
    /// schema up to date.
    pub fn connect(url: &str) -> Result<Self, OpenError> {
        Self::connect_with_pool_size(url, DEFAULT_POOL_SIZE)
    }

    /// Like [`PgDatabase::connect`] with at most `pool_size` connections.
    pub fn connect_with_pool_size(url: &str, pool_size: usize) -> Result<Self, OpenError> {
        let mut config = tokio_postgres::Config::from_str(url).map_err(OpenError::Config)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("warden");
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("warden-store-pg")
            .enable_all()
            .build()
            .map_err(OpenError::Runtime)?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig { recycling_method: RecyclingMethod::Fast },
        );
        let pool = {
            // The pool's timeouts need a runtime context to be built in.
            let _entered = runtime.enter();
            Pool::builder(manager)
                .max_size(pool_size.max(1))
                .runtime(deadpool_postgres::Runtime::Tokio1)
                .wait_timeout(Some(Duration::from_secs(30)))
                .create_timeout(Some(Duration::from_secs(10)))
                .build()
                .map_err(|e| OpenError::Pool(Box::new(e)))?
        };
        let db =
            PgDatabase { inner: Arc::new(Inner { pool, runtime: RuntimeGuard(Some(runtime)) }) };
        db.block(migrate(db.inner.pool.clone())).map_err(|e| OpenError::Connect(Box::new(e)))??;
        Ok(db)
    }

    /// Returns a handle confined to `store_id`.
    pub fn store(&self, store_id: StoreId) -> PgStore {
        PgStore { db: self.clone(), store_id }
    }

    /// Runs `fut` on the private runtime and waits for it.
    fn block<F: Future>(&self, fut: F) -> Result<F::Output, BackendError> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(BackendError::new(
                "run a blocking call",
                "called from inside an async runtime (use spawn_blocking)",
            ));
        }
        match &self.inner.runtime.0 {
            Some(rt) => Ok(rt.block_on(fut)),
            None => Err(BackendError::new("run a blocking call", "runtime shut down")),
        }
    }
}

/// Brings the schema up to date; see the module docs.
async fn migrate(pool: Pool) -> Result<(), OpenError> {
    let mut client = pool.get().await.map_err(|e| OpenError::Connect(Box::new(e)))?;
    let sql_err =
        |version: i32| move |e: tokio_postgres::Error| OpenError::Migration { version, source: e };
    let tx = client.transaction().await.map_err(sql_err(0))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(sql_err(0))?;
    tx.batch_execute(CREATE_MIGRATIONS_TABLE).await.map_err(sql_err(0))?;
    let rows = tx
        .query("SELECT version, sha256 FROM warden_schema_migrations ORDER BY version", &[])
        .await
        .map_err(sql_err(0))?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in rows {
        let version: i32 = row.try_get(0).map_err(sql_err(0))?;
        let digest: Vec<u8> = row.try_get(1).map_err(sql_err(version))?;
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            let known = MIGRATIONS.last().map_or(0, |m| m.version);
            return Err(OpenError::SchemaTooNew { found: version, known });
        };
        if digest.as_slice() != known.digest().as_slice() {
            return Err(OpenError::MigrationEdited { version });
        }
        applied.push(version);
    }
    for m in MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
        tx.batch_execute(m.sql).await.map_err(sql_err(m.version))?;
        tx.execute(
            "INSERT INTO warden_schema_migrations (version, name, sha256) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &m.digest().as_slice()],
        )
        .await
        .map_err(sql_err(m.version))?;
    }
    tx.commit().await.map_err(sql_err(0))
}

/// A [`Store`] over a PostgreSQL database, confined to one store id.
#[derive(Clone)]
pub struct PgStore {
    db: PgDatabase,
    store_id: StoreId,
}

impl fmt::Debug for PgStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgStore").field("store_id", &self.store_id).finish_non_exhaustive()
    }
}

/// Converts a version read from the database (the `CHECK` keeps it positive).
fn version_from_db(v: i64) -> Result<Version, BackendError> {
    u64::try_from(v)
        .map(Version::new)
        .map_err(|_| BackendError::new("read record", format!("negative version {v} in database")))
}

/// Converts a validated version (at most [`Version::MAX`]) for the database.
fn version_to_db(v: Version) -> i64 {
    i64::try_from(v.get()).unwrap_or(i64::MAX)
}

/// The smallest byte string greater than every string starting with `prefix`, if any.
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut s = prefix.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Why one commit attempt ended without committing.
enum Attempt {
    Conflict(ConflictError),
    Sql(&'static str, tokio_postgres::Error),
    Pool(BackendError),
}

impl Attempt {
    fn retryable(&self) -> bool {
        match self {
            Attempt::Sql(_, e) => matches!(
                e.code(),
                Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                    || *c == SqlState::T_R_DEADLOCK_DETECTED
            ),
            Attempt::Conflict(_) | Attempt::Pool(_) => false,
        }
    }
}

fn sql(context: &'static str) -> impl FnOnce(tokio_postgres::Error) -> Attempt {
    move |e| Attempt::Sql(context, e)
}

async fn commit_once(pool: &Pool, sid: &[u8], ops: &[&Op]) -> Result<(), Attempt> {
    let mut client = pool
        .get()
        .await
        .map_err(|e| Attempt::Pool(BackendError::new("get a pooled connection", e)))?;
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(sql("begin transaction"))?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO warden_records (store_id, key, version, value) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (store_id, key) DO NOTHING",
        )
        .await
        .map_err(sql("prepare insert"))?;
    let update = tx
        .prepare_cached(
            "UPDATE warden_records SET version = $3, value = $4 \
             WHERE store_id = $1 AND key = $2 AND version = $5",
        )
        .await
        .map_err(sql("prepare update"))?;
    let delete = tx
        .prepare_cached(
            "DELETE FROM warden_records WHERE store_id = $1 AND key = $2 AND version = $3",
        )
        .await
        .map_err(sql("prepare delete"))?;
    for op in ops {
        let key = op.key();
        let expected = version_to_db(op.expected_version());
        let n = match op {
            Op::Put { new_version, value, expected_version, .. } => {
                let new = version_to_db(*new_version);
                let value = value.as_slice();
                if expected_version.is_absent() {
                    tx.execute(&insert, &[&sid, &key, &new, &value]).await
                } else {
                    tx.execute(&update, &[&sid, &key, &new, &value, &expected]).await
                }
                .map_err(sql("write record"))?
            }
            Op::Delete { .. } => {
                tx.execute(&delete, &[&sid, &key, &expected]).await.map_err(sql("delete record"))?
            }
        };
        if n != 1 {
            let found = tx
                .query_opt(
                    "SELECT version FROM warden_records WHERE store_id = $1 AND key = $2",
                    &[&sid, &key],
                )
                .await
                .map_err(sql("read conflicting record"))?;
            let found = match found {
                Some(row) => row
                    .try_get::<_, i64>(0)
                    .map_err(sql("read conflicting record"))
                    .and_then(|v| version_from_db(v).map_err(Attempt::Pool))?,
                None => Version::ABSENT,
            };
            tx.rollback().await.map_err(sql("roll back"))?;
            return Err(Attempt::Conflict(ConflictError {
                key: key.to_vec(),
                expected: op.expected_version(),
                found,
            }));
        }
    }
    tx.commit().await.map_err(sql("commit transaction"))
}

impl Store for PgStore {
    fn store_id(&self) -> &StoreId {
        &self.store_id
    }

    fn get(&self, key: &[u8]) -> Result<Option<Versioned>, BackendError> {
        let pool = &self.db.inner.pool;
        let sid = self.store_id.as_bytes();
        let row = self.db.block(async move {
            let client =
                pool.get().await.map_err(|e| BackendError::new("get a pooled connection", e))?;
            let stmt = client
                .prepare_cached(
                    "SELECT version, value FROM warden_records WHERE store_id = $1 AND key = $2",
                )
                .await
                .map_err(|e| BackendError::new("prepare read", e))?;
            client
                .query_opt(&stmt, &[&sid, &key])
                .await
                .map_err(|e| BackendError::new("read record", e))
        })??;
        match row {
            None => Ok(None),
            Some(row) => {
                let version: i64 =
                    row.try_get(0).map_err(|e| BackendError::new("read record", e))?;
                let value: Vec<u8> =
                    row.try_get(1).map_err(|e| BackendError::new("read record", e))?;
                Ok(Some(Versioned { version: version_from_db(version)?, value }))
            }
        }
    }

    fn list(&self, prefix: &[u8]) -> Result<Vec<Record>, BackendError> {
        let pool = &self.db.inner.pool;
        let sid = self.store_id.as_bytes();
        let upper = prefix_successor(prefix);
        let rows = self.db.block(async move {
            let client =
                pool.get().await.map_err(|e| BackendError::new("get a pooled connection", e))?;
            let result = match &upper {
                Some(upper) => {
                    client
                        .query(
                            "SELECT key, version, value FROM warden_records \
                             WHERE store_id = $1 AND key >= $2 AND key < $3 ORDER BY key",
                            &[&sid, &prefix, &upper.as_slice()],
                        )
                        .await
                }
                None => {
                    client
                        .query(
                            "SELECT key, version, value FROM warden_records \
                             WHERE store_id = $1 AND key >= $2 ORDER BY key",
                            &[&sid, &prefix],
                        )
                        .await
                }
            };
            result.map_err(|e| BackendError::new("scan records", e))
        })??;
        rows.iter()
            .map(|row| {
                let key: Vec<u8> =
                    row.try_get(0).map_err(|e| BackendError::new("scan records", e))?;
                let version: i64 =
                    row.try_get(1).map_err(|e| BackendError::new("scan records", e))?;
                let value: Vec<u8> =
                    row.try_get(2).map_err(|e| BackendError::new("scan records", e))?;
                Ok(Record { key, version: version_from_db(version)?, value })
            })
            .collect()
    }

    fn commit(&self, batch: &[Op]) -> Result<(), CommitError> {
        validate(batch)?;
        if batch.is_empty() {
            return Ok(());
        }
        let mut ops: Vec<&Op> = batch.iter().collect();
        ops.sort_by(|a, b| a.key().cmp(b.key()));
        let pool = &self.db.inner.pool;
        let sid = self.store_id.as_bytes();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.db.block(commit_once(pool, sid, &ops))? {
                Ok(()) => return Ok(()),
                Err(e) if e.retryable() && attempt <= MAX_RETRIES => continue,
                Err(Attempt::Conflict(c)) => return Err(CommitError::Conflict(c)),
                Err(Attempt::Sql(context, e)) => {
                    return Err(CommitError::Backend(BackendError::new(context, e)))
                }
                Err(Attempt::Pool(e)) => return Err(CommitError::Backend(e)),
            }
        }
    }
}

/// [`PgDatabase::connect`] failed.
#[derive(Debug)]
pub enum OpenError {
    /// The connection string does not parse.
    Config(tokio_postgres::Error),
    /// The private runtime could not be started.
    Runtime(std::io::Error),
    /// The pool could not be built.
    Pool(Box<dyn Error + Send + Sync>),
    /// No connection to the server could be made.
    Connect(Box<dyn Error + Send + Sync>),
    /// A migration (0: the bookkeeping itself) failed.
    Migration {
        /// The migration's number.
        version: i32,
        /// The server's answer.
        source: tokio_postgres::Error,
    },
    /// The database has a migration this build does not know.
    SchemaTooNew {
        /// The unknown migration's number.
        found: i32,
        /// The newest migration this build knows.
        known: i32,
    },
    /// The database recorded a different SHA-256 for a migration than this build's text.
    MigrationEdited {
        /// The migration's number.
        version: i32,
    },
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Config(_) => f.write_str("invalid PostgreSQL connection string"),
            OpenError::Runtime(_) => f.write_str("cannot start the PostgreSQL client runtime"),
            OpenError::Pool(_) => f.write_str("cannot build the PostgreSQL connection pool"),
            OpenError::Connect(_) => f.write_str("cannot connect to PostgreSQL"),
            OpenError::Migration { version, .. } => {
                write!(f, "PostgreSQL schema migration {version} failed")
            }
            OpenError::SchemaTooNew { found, known } => write!(
                f,
                "database has schema migration {found}, newer than {known} that this build knows"
            ),
            OpenError::MigrationEdited { version } => write!(
                f,
                "database recorded a different text for schema migration {version} than this build"
            ),
        }
    }
}

impl Error for OpenError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            OpenError::Config(e) | OpenError::Migration { source: e, .. } => Some(e),
            OpenError::Runtime(e) => Some(e),
            OpenError::Pool(e) | OpenError::Connect(e) => Some(&**e),
            OpenError::SchemaTooNew { .. } | OpenError::MigrationEdited { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Released migrations are never edited: their digests are pinned here.
    #[test]
    fn released_migrations_are_unchanged() {
        let pinned: &[(i32, &str)] =
            &[(1, "bbb58193115486d6c69b2d7edf0925fac538c6b109247faa755a489cf8e1a1aa")];
        assert_eq!(MIGRATIONS.len(), pinned.len(), "pin the digest of each new migration");
        for (m, (version, hex)) in MIGRATIONS.iter().zip(pinned) {
            assert_eq!(m.version, *version, "migrations are numbered 1, 2, 3, ...");
            assert_eq!(crate::Hex(&m.digest()).to_string(), *hex, "migration {version} edited");
        }
    }

    #[test]
    fn prefix_successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(b""), None);
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
    }
}
