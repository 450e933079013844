//! `warden backup restore`: a warden-backup backup directory restored into a new database with
//! keys from the signer (a real `warden-hsmd` on the lightning directory), and refused without
//! the signer or with another node's. Needs `cargo build -p warden-hsmd -p warden` when run
//! alone.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::print_stderr, reason = "the restore time, shown with --nocapture")]

mod signer_cli;

use std::path::Path;
use std::process::Output;

use rusqlite::Connection;
use warden_backup::dir::BackupDir;
use warden_core::rng::EntropySource;

use signer_cli::{stderr, unseal_requests_audited, warden, NO_SIGNER};

struct Counter(u64);
impl EntropySource for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (self.0 >> 56) as u8;
        }
    }
}

/// A lightning directory holding `secret`, and its node-backup key.
fn node(secret: u8) -> (tempfile::TempDir, secp256k1::PublicKey) {
    let (dir, key) = signer_cli::node(secret);
    (dir, key.parse().unwrap())
}

/// A backup as the plugin writes it: a snapshot at data_version 1, then `records` transactions
/// each inserting a row and bumping the version.
fn backup(dir: &Path, to: secp256k1::PublicKey, records: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let db = dir.with_extension("source.sqlite3");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "CREATE TABLE vars (name TEXT, val TEXT, intval INTEGER);
         INSERT INTO vars VALUES ('data_version', NULL, 1);
         CREATE TABLE payments (id INTEGER, note TEXT);",
    )
    .unwrap();
    drop(conn);
    let bytes = std::fs::read(&db).unwrap();
    std::fs::remove_file(&db).unwrap();
    let mut entropy = Counter(1);
    let mut b = BackupDir::open(dir, to).unwrap();
    b.snapshot(1, &bytes, &mut entropy).unwrap();
    for dv in 2..2 + records {
        let writes = vec![
            format!("INSERT INTO payments VALUES ({dv}, 'payment {dv}');"),
            "UPDATE vars SET intval = intval + 1 WHERE name = 'data_version';".to_owned(),
        ];
        b.append(dv, &writes, &mut entropy).unwrap();
    }
}

fn restore(node: &Path, backup: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let args = [
        "backup",
        "restore",
        "--lightning-dir",
        node.to_str().unwrap(),
        "--backup-dir",
        backup.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    warden(&args, env)
}

#[test]
fn the_signer_restores_the_database_row_for_row() {
    let (node_dir, key) = node(0x42);
    let work = tempfile::tempdir().unwrap();
    let backup_dir = work.path().join("backup");
    // 300 records by default; `WARDEN_RESTORE_RECORDS=10000` for the figure in the notes.
    let records: u64 =
        std::env::var("WARDEN_RESTORE_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(300);
    backup(&backup_dir, key, records);
    let out = work.path().join("lightningd.sqlite3");
    let started = std::time::Instant::now();
    let o = restore(node_dir.path(), &backup_dir, &out, &[]);
    let took = started.elapsed();
    assert!(o.status.success(), "{}", stderr(&o));
    let last = records + 1;
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(said.contains(&format!("data_version {last}")), "{said}");
    assert!(said.contains(&format!("{last} keys released by the signer")), "{said}");
    eprintln!("restore of {records} records through the signer: {took:?}");
    let conn = Connection::open(&out).unwrap();
    let dv: i64 = conn
        .query_row("SELECT intval FROM vars WHERE name = 'data_version'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dv, last as i64);
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT id, note FROM payments ORDER BY id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len() as u64, records);
    assert!(rows
        .iter()
        .enumerate()
        .all(|(i, (id, note))| { *id == i as i64 + 2 && *note == format!("payment {}", i + 2) }));
    // The snapshot and each record: one key each, every release in the audit trail: one
    // request for the snapshot, then one per read-ahead batch of 256 records.
    assert_eq!(unseal_requests_audited(node_dir.path()) as u64, 1 + records.div_ceil(256));
    // An existing database is never overwritten.
    let o = restore(node_dir.path(), &backup_dir, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("exists"), "{}", stderr(&o));
}

#[test]
fn without_the_signer_or_with_another_nodes_nothing_is_restored() {
    let (_node_dir, key) = node(0x42);
    let work = tempfile::tempdir().unwrap();
    let backup_dir = work.path().join("backup");
    backup(&backup_dir, key, 5);
    let out = work.path().join("lightningd.sqlite3");

    // Proxy mode with no `warden run`: the signer never answers.
    let proxy = tempfile::tempdir().unwrap();
    let o = restore(proxy.path(), &backup_dir, &out, &NO_SIGNER);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("warden run"), "{}", stderr(&o));
    assert!(!out.exists());

    // Another node's signer: its keys open nothing.
    let (other, _) = node(0x43);
    let o = restore(other.path(), &backup_dir, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("restore failed"), "{}", stderr(&o));
    assert!(!out.exists());
}
