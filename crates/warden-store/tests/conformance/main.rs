//! Runs the conformance suite (`suite.rs`) against every backend: redb in a temporary
//! directory, and PostgreSQL on a throwaway cluster (`pg_cluster.rs`) or the server named by
//! `WARDEN_TEST_POSTGRES_URL`. Also the backend-specific checks (file mode, corrupt files,
//! schema migrations).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod pg_cluster;
mod suite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use suite::Backend;
use warden_store::postgres::{PgDatabase, PgStore};
use warden_store::redb::{RedbDatabase, RedbStore};
use warden_store::{Store, StoreId};

/// The name of the test that a crash child runs.
const CRASH_CHILD_TEST: &str = "crash_child";

/// redb in one data directory.
struct Redb {
    dir: PathBuf,
}

impl Backend for Redb {
    type Db = RedbDatabase;
    type S = RedbStore;
    fn open(&self) -> RedbDatabase {
        RedbDatabase::open(&self.dir).unwrap()
    }
    fn store(&self, db: &RedbDatabase, id: StoreId) -> RedbStore {
        db.store(id)
    }
    fn child_spec(&self) -> String {
        format!("redb:{}", self.dir.display())
    }
}

/// PostgreSQL through one connection string.
struct Pg {
    url: String,
    _server: Option<Arc<pg_cluster::PgServer>>,
}

impl Backend for Pg {
    type Db = PgDatabase;
    type S = PgStore;
    fn open(&self) -> PgDatabase {
        PgDatabase::connect(&self.url).unwrap()
    }
    fn store(&self, db: &PgDatabase, id: StoreId) -> PgStore {
        db.store(id)
    }
    fn child_spec(&self) -> String {
        format!("postgres:{}", self.url)
    }
}

/// Runs `case` against a fresh redb data directory.
fn with_redb(case: impl FnOnce(&Redb)) {
    let dir = tempfile::tempdir().unwrap();
    case(&Redb { dir: dir.path().join("data") });
}

/// Runs `case` against PostgreSQL, or skips it (only outside CI) if there is none.
fn with_pg(case: impl FnOnce(&Pg)) {
    if let Some(server) = pg_cluster::server() {
        case(&Pg { url: server.url.clone(), _server: Some(server) });
    }
}

#[test]
fn redb_get_put_list() {
    with_redb(suite::get_put_list);
}
#[test]
fn redb_versions_strictly_increase() {
    with_redb(suite::versions_strictly_increase);
}
#[test]
fn redb_conflicting_write_rejected() {
    with_redb(suite::conflicting_write_rejected);
}
#[test]
fn redb_batch_all_or_nothing() {
    with_redb(suite::batch_all_or_nothing);
}
#[test]
fn redb_deletes() {
    with_redb(suite::deletes);
}
#[test]
fn redb_reopen_sees_last_batch() {
    with_redb(suite::reopen_sees_last_batch);
}
#[test]
fn redb_store_ids_isolated() {
    with_redb(suite::store_ids_isolated);
}
#[test]
fn redb_concurrent_committers_one_wins() {
    with_redb(suite::concurrent_committers_one_wins);
}
#[test]
fn redb_crash_mid_batches() {
    with_redb(|b| suite::crash_mid_batches(b, CRASH_CHILD_TEST));
}

#[test]
fn postgres_get_put_list() {
    with_pg(suite::get_put_list);
}
#[test]
fn postgres_versions_strictly_increase() {
    with_pg(suite::versions_strictly_increase);
}
#[test]
fn postgres_conflicting_write_rejected() {
    with_pg(suite::conflicting_write_rejected);
}
#[test]
fn postgres_batch_all_or_nothing() {
    with_pg(suite::batch_all_or_nothing);
}
#[test]
fn postgres_deletes() {
    with_pg(suite::deletes);
}
#[test]
fn postgres_reopen_sees_last_batch() {
    with_pg(suite::reopen_sees_last_batch);
}
#[test]
fn postgres_store_ids_isolated() {
    with_pg(suite::store_ids_isolated);
}
#[test]
fn postgres_concurrent_committers_one_wins() {
    with_pg(suite::concurrent_committers_one_wins);
}
#[test]
fn postgres_crash_mid_batches() {
    with_pg(|b| suite::crash_mid_batches(b, CRASH_CHILD_TEST));
}

/// Not a test of its own: the body of the child process of `*_crash_mid_batches`. Without
/// the environment variables it returns at once.
#[test]
fn crash_child() {
    let (Ok(spec), Ok(hex)) =
        (std::env::var(suite::CHILD_SPEC_ENV), std::env::var(suite::CHILD_ID_ENV))
    else {
        return;
    };
    let id: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let id = StoreId::new(id).unwrap();
    if let Some(dir) = spec.strip_prefix("redb:") {
        suite::crash_child(&Redb { dir: PathBuf::from(dir) }, id);
    } else if let Some(url) = spec.strip_prefix("postgres:") {
        suite::crash_child(&Pg { url: url.to_string(), _server: None }, id);
    } else {
        panic!("unknown backend spec {spec}");
    }
}

fn redb_open_error(dir: &Path) -> warden_store::redb::OpenErrorKind {
    RedbDatabase::open(dir).map(|_| ()).unwrap_err().kind
}

#[test]
fn redb_file_is_created_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/data");
    let db = RedbDatabase::open(&dir).unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(db.path()), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(db.path(), dir.join(warden_store::redb::FILE_NAME));
}

#[test]
fn redb_refuses_a_second_process_lock_and_permissive_or_corrupt_files() {
    use std::os::unix::fs::PermissionsExt as _;
    use warden_store::redb::OpenErrorKind;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let db = RedbDatabase::open(&dir).unwrap();
    db.store(StoreId::new(*b"s").unwrap()).commit(&[suite::put(b"k", 0, 1, b"v")]).unwrap();
    assert!(matches!(redb_open_error(&dir), OpenErrorKind::AlreadyOpen));
    drop(db);

    let file = dir.join(warden_store::redb::FILE_NAME);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = RedbDatabase::open(&dir).unwrap_err();
    assert!(matches!(err.kind, OpenErrorKind::Permissions { mode: 0o644 }), "{err:?}");
    assert!(err.to_string().contains("chmod 600"));
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    RedbDatabase::open(&dir).unwrap();

    std::fs::write(&file, b"this is not a redb database, but a plain text file of some length")
        .unwrap();
    let err = RedbDatabase::open(&dir).unwrap_err();
    assert!(matches!(err.kind, OpenErrorKind::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("not a readable redb database"));

    let unreadable = tmp.path().join("file-not-dir");
    std::fs::write(&unreadable, b"x").unwrap();
    assert!(matches!(redb_open_error(&unreadable), OpenErrorKind::Io(_)));
}

#[test]
fn redb_refuses_a_newer_format() {
    use warden_store::redb::OpenErrorKind;
    let tmp = tempfile::tempdir().unwrap();
    drop(RedbDatabase::open(tmp.path()).unwrap());
    {
        // Written as a newer Warden would.
        let raw = redb::Database::open(tmp.path().join(warden_store::redb::FILE_NAME)).unwrap();
        let txn = raw.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("warden_meta");
            let mut t = txn.open_table(def).unwrap();
            t.insert("format_version", warden_store::redb::FORMAT_VERSION + 1).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(redb_open_error(tmp.path()), OpenErrorKind::FormatTooNew { found: 2 }));
}

/// Runs SQL on the test server directly, bypassing the store.
fn raw_sql(db_url: &str, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(db_url, tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        client.batch_execute(sql).await.unwrap();
    });
}

#[test]
fn postgres_migrations_are_recorded_checked_and_idempotent() {
    use warden_store::postgres::{OpenError, MIGRATIONS};
    let Some(server) = pg_cluster::server() else { return };
    // A database of its own: this test tampers with the schema.
    let dbname = format!("migrations_{}", std::process::id());
    raw_sql(&server.url, &format!("DROP DATABASE IF EXISTS {dbname}"));
    raw_sql(&server.url, &format!("CREATE DATABASE {dbname}"));
    let url = format!("{} dbname={dbname}", server.url);
    // Many signers starting at once: the advisory lock serialises them.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| drop(PgDatabase::connect(&url).unwrap()));
        }
    });
    let db = PgDatabase::connect(&url).unwrap();
    let s = db.store(StoreId::new(*b"m").unwrap());
    s.commit(&[suite::put(b"k", 0, 1, b"v")]).unwrap();
    drop((s, db));

    let latest = MIGRATIONS.last().unwrap().version;
    raw_sql(
        &url,
        &format!(
            "INSERT INTO warden_schema_migrations (version, name, sha256) \
             VALUES ({}, 'from the future', '\\x00')",
            latest + 1
        ),
    );
    let err = PgDatabase::connect(&url).unwrap_err();
    assert!(
        matches!(err, OpenError::SchemaTooNew { found, known } if found == latest + 1 && known == latest),
        "{err:?}"
    );
    raw_sql(&url, &format!("DELETE FROM warden_schema_migrations WHERE version = {}", latest + 1));
    PgDatabase::connect(&url).unwrap();

    raw_sql(&url, "UPDATE warden_schema_migrations SET sha256 = '\\x00' WHERE version = 1");
    let err = PgDatabase::connect(&url).unwrap_err();
    assert!(matches!(err, OpenError::MigrationEdited { version: 1 }), "{err:?}");
    raw_sql(&server.url, &format!("DROP DATABASE {dbname}"));
}

#[test]
fn postgres_refuses_calls_from_inside_an_async_runtime() {
    let Some(server) = pg_cluster::server() else { return };
    let db = PgDatabase::connect(&server.url).unwrap();
    let s = db.store(suite::fresh_id("in-async"));
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let err = rt.block_on(async { s.get(b"k") }).unwrap_err();
    assert_eq!(err.context, "run a blocking call");
    // Dropping the database inside a runtime does not panic either.
    rt.block_on(async move { drop((s, db)) });
}

#[test]
fn postgres_unreachable_server_fails_to_open() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("host={} port=1 user=warden connect_timeout=2", tmp.path().display());
    let err = PgDatabase::connect(&url).unwrap_err();
    assert!(matches!(err, warden_store::postgres::OpenError::Connect(_)), "{err:?}");
}
