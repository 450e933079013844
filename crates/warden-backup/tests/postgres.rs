#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::print_stderr, reason = "the tests report their figures")]
//! The PostgreSQL destination against a real server (warden-store's throwaway cluster, one
//! database per test; skipped only outside CI when PostgreSQL cannot be started): the plugin
//! driven over stdin/stdout as lightningd drives it, to PostgreSQL alone or together with a
//! directory, then restored from PostgreSQL and compared row for row; the start-up refusal of
//! a database behind its backup; an acknowledged-but-uncommitted record superseded; a lost
//! connection re-opened; two nodes in one database; the writes before `init`; a role with
//! only SELECT and INSERT rights.

mod common;

use std::fs;
use std::process::Command;
use std::time::Instant;

use common::{dump, pg_source, pubkey_hex, seed_file, transact, Node, PgDb, PluginProc, SEED};
use warden_backup::postgres::{PgBackup, PgTarget};
use warden_backup::restore::{restore, restore_from, BackupSource, RestoreReport, SeedUnsealer};
use warden_core::seal::WardenKeys;
use warden_core::secret::Seed;

fn restore_pg(node: &Node, url: &str, name: &str) -> RestoreReport {
    let out = node.dir.path().join(name);
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    let report = restore_from(&pg_source(url), &out, &mut unsealer).unwrap();
    assert_eq!(report.data_version, node.data_version);
    assert_eq!(dump(&out), dump(&node.db_path()));
    report
}

fn count(db: &PgDb, table: &str) -> i64 {
    db.raw().query(&format!("SELECT count(*) FROM {table}"), &[])[0].get(0)
}

#[test]
fn round_trip_to_postgres_alone() {
    let Some(db) = PgDb::new("round_trip_alone") else { return };
    let mut node = Node::new(41);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 1, &pubkey_hex(), None, Some(&db.url));
    assert!(init.get("result").is_some(), "{init}");
    let started = Instant::now();
    let n = 2_000;
    for _ in 0..n {
        transact(&mut node, &mut plugin);
    }
    let backing = started.elapsed();
    assert!(plugin.finish().success());
    assert!(!node.backup_dir().exists(), "PostgreSQL alone writes no directory");

    // One row per record; a snapshot each second (several epochs); nothing readable.
    assert_eq!(count(&db, "warden_backup_records"), n as i64);
    let epochs = count(&db, "warden_backup_snapshots");
    assert!(epochs >= 2, "{epochs} snapshots");
    for table in ["warden_backup_records", "warden_backup_snapshots"] {
        for row in db.raw().query(&format!("SELECT blob FROM {table}"), &[]) {
            let blob: Vec<u8> = row.get(0);
            assert!(!blob.windows(6).any(|w| w == b"INSERT" || w == b"SQLite"));
        }
    }

    let started = Instant::now();
    let report = restore_pg(&node, &db.url, "restored.sqlite3");
    eprintln!(
        "{n} db_write calls to PostgreSQL in {backing:.2?} ({:.0} µs per call, round trip \
         included); {epochs} epochs; restore from snapshot {:?} + {} records in {:.2?}",
        backing.as_secs_f64() * 1e6 / f64::from(n),
        report.snapshot,
        report.records,
        started.elapsed()
    );

    // The binary's restore command, from PostgreSQL, gives the same database.
    let out2 = node.dir.path().join("restored2.sqlite3");
    let output = Command::new(env!("CARGO_BIN_EXE_warden-backup"))
        .args(["restore", "--seed-file"])
        .arg(seed_file(node.dir.path()))
        .args(["--postgres", &db.url, "--out"])
        .arg(&out2)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(dump(&out2), dump(&node.db_path()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&out2).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn round_trip_to_directory_and_postgres() {
    let Some(db) = PgDb::new("round_trip_both") else { return };
    let mut node = Node::new(42);
    let backup_dir = node.backup_dir();
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init =
        plugin.start_to(node.lightning_dir(), 1, &pubkey_hex(), Some(&backup_dir), Some(&db.url));
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..500 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    // Both hold every record: each restores the node's database.
    restore_pg(&node, &db.url, "from-pg.sqlite3");
    let out = node.dir.path().join("from-dir.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    assert_eq!(restore(&backup_dir, &out, &mut unsealer).unwrap().data_version, 500);
    assert_eq!(dump(&out), dump(&node.db_path()));
    // The same sealed blob went to both.
    let recs = db.raw().records(&pubkey_hex());
    let (_, segments) = warden_backup::dir::list(&backup_dir).unwrap();
    let seg = backup_dir.join(warden_backup::format::segment_name(*segments.last().unwrap()));
    let in_dir = warden_backup::format::parse_segment(&fs::read(seg).unwrap()).unwrap().records;
    let last = in_dir.last().unwrap();
    assert!(recs.iter().any(|r| r.data_version == last.data_version && r.blob == last.blob));
}

/// A database rolled back behind its PostgreSQL backup is refused at start with both numbers
/// — also when the directory next to it is empty (a destination added later), so the refusal
/// comes from PostgreSQL's position.
#[test]
fn backup_ahead_of_the_database_is_refused_at_start() {
    let Some(db) = PgDb::new("ahead") else { return };
    let mut node = Node::new(43);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
    let old = node.dir.path().join("old.sqlite3");
    for _ in 0..20 {
        transact(&mut node, &mut plugin);
        if node.data_version == 5 {
            fs::copy(node.db_path(), &old).unwrap();
        }
    }
    assert!(plugin.finish().success());
    fs::copy(&old, node.db_path()).unwrap();
    let records = count(&db, "warden_backup_records");
    let snapshots = count(&db, "warden_backup_snapshots");

    for dir in [None, Some(node.backup_dir())] {
        let mut plugin = PluginProc::spawn_in(node.lightning_dir());
        let init =
            plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), dir.as_deref(), Some(&db.url));
        let message = init["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("data_version 20"), "{message}");
        assert!(message.contains("data_version 5"), "{message}");
        assert!(message.contains("PostgreSQL database"), "{message}");
        assert!(plugin.logs.iter().any(|(l, m)| l == "broken" && *m == message));
        assert!(!plugin.finish().success(), "the plugin exits with an error");
    }
    // Refused before anything was written.
    assert_eq!(count(&db, "warden_backup_records"), records);
    assert_eq!(count(&db, "warden_backup_snapshots"), snapshots);
    // A write behind the backup (before init: from the state file the first init wrote) is
    // not acknowledged either.
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    assert_eq!(plugin.db_write(6, &["DELETE FROM peers".to_owned()]), "abort");
    assert!(
        plugin.logs.iter().any(|(l, m)| l == "broken"
            && m.contains("data_version 20")
            && m.contains("PostgreSQL database")),
        "{:?}",
        plugin.logs
    );
    plugin.finish();
    assert_eq!(count(&db, "warden_backup_records"), records);
}

/// lightningd stops between the hook's `continue` and its commit: the record stays in the
/// table (nothing is deleted), superseded by a new epoch from a snapshot of the committed
/// state; the retried transaction goes into the new epoch, and the restore is exact.
#[test]
fn acknowledged_but_uncommitted_record_is_superseded() {
    let Some(db) = PgDb::new("superseded") else { return };
    let mut node = Node::new(44);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
    for _ in 0..30 {
        transact(&mut node, &mut plugin);
    }
    let writes = node.next_transaction();
    node.begin(&writes);
    assert_eq!(plugin.db_write(node.data_version + 1, &writes), "continue");
    node.rollback();
    plugin.kill();
    let epoch = db.raw().newest_epoch(&pubkey_hex());

    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
    assert!(init.get("result").is_some(), "{init}");
    assert!(
        plugin.logs.iter().any(|(l, m)| l == "unusual" && m.contains("record 31")),
        "{:?}",
        plugin.logs
    );
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    assert_eq!(db.raw().newest_epoch(&pubkey_hex()), epoch + 1);
    // Two rows of version 31: the superseded one and the committed one.
    let rows = db.raw().query(
        "SELECT epoch FROM warden_backup_records WHERE data_version = 31 ORDER BY epoch",
        &[],
    );
    let epochs: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(epochs, vec![epoch, epoch + 1]);
    let report = restore_pg(&node, &db.url, "restored.sqlite3");
    assert_eq!((report.snapshot, report.records), (Some(30), 10));

    // A restart takes a snapshot (a new epoch at 40); one more with no write in between
    // adds no row.
    let snapshots = count(&db, "warden_backup_snapshots");
    for _ in 0..2 {
        let mut plugin = PluginProc::spawn_in(node.lightning_dir());
        plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
        assert!(plugin.finish().success());
        eprintln!(
            "{:?}",
            db.raw()
                .query("SELECT epoch, data_version FROM warden_backup_snapshots", &[])
                .iter()
                .map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1)))
                .collect::<Vec<_>>()
        );
        assert_eq!(count(&db, "warden_backup_snapshots"), snapshots + 1);
    }
    restore_pg(&node, &db.url, "after-restarts.sqlite3");
}

/// The server ends the plugin's connection between two writes (a restart): the next write
/// re-opens it and is acknowledged; nothing is lost.
#[test]
fn lost_connection_is_reopened() {
    let Some(db) = PgDb::new("reconnect") else { return };
    let mut node = Node::new(45);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
    for round in 0..3 {
        for _ in 0..10 {
            transact(&mut node, &mut plugin);
        }
        assert_eq!(db.raw().terminate_plugin_connections(), 1, "round {round}");
    }
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    restore_pg(&node, &db.url, "restored.sqlite3");
}

/// Two nodes, each sealing to its own key, share one database: each restores its own.
#[test]
fn two_nodes_share_one_database() {
    let Some(db) = PgDb::new("shared") else { return };
    let other_seed = [0x77; 32];
    let other_key =
        WardenKeys::derive(&Seed::from_legacy(other_seed)).unwrap().node_backup_pubkey();
    let mut a = Node::new(46);
    let mut b = Node::new(47);
    let mut pa = PluginProc::spawn_in(a.lightning_dir());
    let mut pb = PluginProc::spawn_in(b.lightning_dir());
    pa.start_to(a.lightning_dir(), 0, &pubkey_hex(), None, Some(&db.url));
    pb.start_to(b.lightning_dir(), 0, &other_key.to_string(), None, Some(&db.url));
    for i in 0..60 {
        transact(&mut a, &mut pa);
        if i % 2 == 0 {
            transact(&mut b, &mut pb);
        }
    }
    assert!(pa.finish().success());
    assert!(pb.finish().success());
    restore_pg(&a, &db.url, "a.sqlite3");
    let out = b.dir.path().join("b.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(other_seed)).unwrap();
    let source =
        BackupSource::Postgres { target: PgTarget::parse(&db.url).unwrap(), backup_id: other_key };
    assert_eq!(restore_from(&source, &out, &mut unsealer).unwrap().data_version, 30);
    assert_eq!(dump(&out), dump(&b.db_path()));
}

/// `warden-backup setup --postgres` writes the state file the writes before `init` need; they
/// go to PostgreSQL, and `init` with the same option goes on. A password in the connection
/// string (the test server trusts local connections and ignores it) reaches no message.
#[test]
fn setup_then_writes_before_init_go_to_postgres() {
    let Some(db) = PgDb::new("before_init") else { return };
    let url = if db.url.contains("://") {
        db.url.clone()
    } else {
        format!("{} password=hunter2", db.url)
    };
    let mut node = Node::new(48);
    let output = Command::new(env!("CARGO_BIN_EXE_warden-backup"))
        .args(["setup", "--lightning-dir"])
        .arg(node.lightning_dir())
        .args(["--pubkey", &pubkey_hex(), "--postgres", &url, "--snapshot-interval", "0"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(!String::from_utf8_lossy(&output.stdout).contains("hunter2"));
    let state_file = node.lightning_dir().join("warden-backup.json");
    let state = fs::read_to_string(&state_file).unwrap();
    assert!(state.contains("\"version\": 2"), "{state}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&state_file).unwrap().permissions().mode() & 0o777, 0o600);

    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    let init =
        plugin.init_with(node.lightning_dir(), serde_json::json!({"warden-backup-postgres": url}));
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    let logs = plugin.logs.clone();
    assert!(plugin.finish().success());
    assert!(!node.backup_dir().exists());
    assert!(logs.iter().any(|(_, m)| m.contains("PostgreSQL database")), "{logs:?}");
    assert!(!logs.iter().any(|(_, m)| m.contains("hunter2")), "{logs:?}");
    restore_pg(&node, &db.url, "restored.sqlite3");
}

/// The plugin needs no UPDATE and no DELETE: once a first start created the schema, a role with
/// only SELECT and INSERT backs up through an acknowledged-but-uncommitted record (superseded)
/// and periodic snapshots, and restores.
#[test]
fn insert_only_role_is_enough() {
    let Some(db) = PgDb::new("insert_only") else { return };
    if db.url.contains("://") {
        eprintln!("insert_only_role_is_enough: needs a key=value connection string; skipped");
        return;
    }
    let key: secp256k1::PublicKey = pubkey_hex().parse().unwrap();
    // The schema, created by the server's superuser.
    drop(PgBackup::open(&PgTarget::parse(&db.url).unwrap(), &key).unwrap());
    let role = format!("wb_insert_only_{}", std::process::id());
    let raw = db.raw();
    for sql in [
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT SELECT ON warden_backup_migrations TO {role}"),
        format!("GRANT SELECT, INSERT ON warden_backup_snapshots, warden_backup_records TO {role}"),
    ] {
        raw.execute(&sql, &[]).unwrap();
    }
    let url = format!("{} user={role}", db.url);

    let mut node = Node::new(49);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 1, &pubkey_hex(), None, Some(&url));
    assert!(init.get("result").is_some(), "{init}");
    for i in 0..30 {
        if i == 15 {
            // Past the snapshot interval: the next hook takes a periodic snapshot.
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        transact(&mut node, &mut plugin);
    }
    let writes = node.next_transaction();
    node.begin(&writes);
    assert_eq!(plugin.db_write(node.data_version + 1, &writes), "continue");
    node.rollback();
    plugin.kill();
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 1, &pubkey_hex(), None, Some(&url));
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    // First hook's snapshot, the periodic one, the one after the superseded record.
    assert!(count(&db, "warden_backup_snapshots") >= 3);
    restore_pg(&node, &url, "restored.sqlite3");

    // The role really cannot rewrite or delete.
    let as_role = common::Raw::connect(&url);
    for sql in [
        "UPDATE warden_backup_records SET blob = blob",
        "DELETE FROM warden_backup_records",
        "DELETE FROM warden_backup_snapshots",
    ] {
        let e = as_role.execute(sql, &[]).unwrap_err();
        assert_eq!(
            e.code(),
            Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
            "{sql}: {e}"
        );
    }
    drop(as_role);
    let _ = raw.execute(&format!("DROP OWNED BY {role}"), &[]);
    let _ = raw.execute(&format!("DROP ROLE {role}"), &[]);
}

/// PostgreSQL added to a node already backed up to a directory: the start snapshot brings it
/// in step; left out for a while (the node ran with the directory alone), it is behind at the
/// next start, says so, and a snapshot covers the difference while the directory goes on.
#[test]
fn postgres_added_to_a_directory_backup_catches_up() {
    let Some(db) = PgDb::new("added_later") else { return };
    let mut node = Node::new(50);
    let dir = node.backup_dir();
    let run = |node: &mut Node, postgres: Option<&str>, n: usize| {
        let mut plugin = PluginProc::spawn_in(node.lightning_dir());
        let init = plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), Some(&dir), postgres);
        assert!(init.get("result").is_some(), "{init}");
        for _ in 0..n {
            transact(node, &mut plugin);
        }
        let logs = plugin.logs.clone();
        assert!(plugin.finish().success());
        logs
    };
    run(&mut node, None, 20);
    run(&mut node, Some(&db.url), 20);
    restore_pg(&node, &db.url, "first.sqlite3");
    // The state file now names both (an option not given is taken from it): without it, the
    // directory alone, as a node whose PostgreSQL option was dropped.
    fs::remove_file(node.lightning_dir().join("warden-backup.json")).unwrap();
    run(&mut node, None, 10);
    let logs = run(&mut node, Some(&db.url), 10);
    assert!(
        logs.iter().any(|(l, m)| l == "unusual"
            && m.contains("PostgreSQL database")
            && m.contains("data_version 40, behind the database's 50")),
        "{logs:?}"
    );
    restore_pg(&node, &db.url, "second.sqlite3");
    let out = node.dir.path().join("from-dir.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    assert_eq!(restore(&dir, &out, &mut unsealer).unwrap().data_version, 60);
    assert_eq!(dump(&out), dump(&node.db_path()));
}

/// Two writers of one backup (two plugins configured with the same key and database): the
/// second to write a version is refused by the table, by name, and the first's row stands.
#[test]
fn second_writer_of_a_version_is_refused() {
    let Some(db) = PgDb::new("two_writers") else { return };
    let key: secp256k1::PublicKey = pubkey_hex().parse().unwrap();
    let target = PgTarget::parse(&db.url).unwrap();
    let mut rng = common::Rng(3);
    let mut a = PgBackup::open(&target, &key).unwrap();
    let snap = warden_backup::format::seal_snapshot(&key, 0, b"", &mut rng).unwrap();
    a.snapshot_sealed(0, &snap).unwrap();
    let mut b = PgBackup::open(&target, &key).unwrap();
    assert_eq!((b.last(), b.newest_snapshot()), (Some(0), Some(0)));
    let one = |rng: &mut common::Rng, w: &str| {
        warden_backup::format::seal_record(&key, 1, &[w.to_owned()], rng).unwrap()
    };
    let first = one(&mut rng, "UPDATE a");
    a.append_sealed(1, &first).unwrap();
    let e = b.append_sealed(1, &one(&mut rng, "UPDATE b")).unwrap_err();
    assert!(
        matches!(e, warden_backup::postgres::PgError::Duplicate { what: "record", dv: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("another plugin"), "{e}");
    assert_eq!(db.raw().records(&pubkey_hex())[0].blob, first);
    // Out of order and behind are refused before anything is sent.
    assert!(a.append_sealed(3, &first).is_err());
    assert!(a.snapshot_sealed(0, &snap).is_err());
    assert_eq!(count(&db, "warden_backup_records"), 1);
}
