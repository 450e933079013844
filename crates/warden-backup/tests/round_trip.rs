#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
#![allow(clippy::print_stderr, reason = "the tests report their figures")]
//! The plugin driven over stdin/stdout as lightningd drives it, through a long series of
//! transactions on a real SQLite database, then restored and compared row for row.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{dump, pubkey_hex, seed_file, transact, Node, PluginProc, SEED};
use warden_backup::restore::{restore, SeedUnsealer};
use warden_core::secret::Seed;

fn dir_size(dir: &Path) -> u64 {
    fs::read_dir(dir).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum()
}

fn round_trip(transactions: u64, interval: u64) {
    let mut node = Node::new(7);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start(node.lightning_dir(), interval, &pubkey_hex());
    assert!(init.get("result").is_some(), "{init}");

    let started = Instant::now();
    let mut statements = 0usize;
    for _ in 0..transactions {
        let writes = node.next_transaction();
        statements += writes.len();
        node.begin(&writes);
        assert_eq!(plugin.db_write(node.data_version + 1, &writes), "continue");
        node.commit();
    }
    let backing = started.elapsed();
    assert!(plugin.finish().success());

    // Old snapshots and their segments are pruned.
    let (snapshots, _) = warden_backup::dir::list(&node.backup_dir()).unwrap();
    assert!(snapshots.len() <= warden_backup::dir::KEPT_SNAPSHOTS, "{snapshots:?}");
    // Nothing in the backup directory is readable SQLite or SQL.
    for entry in fs::read_dir(node.backup_dir()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(6).any(|w| w == b"INSERT" || w == b"SQLite"));
    }

    let out = node.dir.path().join("restored.sqlite3");
    let started = Instant::now();
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    let report = restore(&node.backup_dir(), &out, &mut unsealer).unwrap();
    let restoring = started.elapsed();
    assert_eq!(report.data_version, transactions);
    assert_eq!(dump(&out), dump(&node.db_path()));

    let db = fs::metadata(node.db_path()).unwrap().len();
    let backup = dir_size(&node.backup_dir());
    eprintln!(
        "{transactions} db_write calls ({statements} statements) backed up in {backing:.2?} \
         ({:.0} µs per call, round trip included); restore from {:?} + {} records in \
         {restoring:.2?}; database {db} bytes, backup {backup} bytes ({:.1}×)",
        backing.as_secs_f64() * 1e6 / transactions as f64,
        report.snapshot,
        report.records,
        backup as f64 / db as f64
    );

    // The binary's restore command gives the same database.
    let out2 = node.dir.path().join("restored2.sqlite3");
    let status = Command::new(env!("CARGO_BIN_EXE_warden-backup"))
        .args(["restore", "--seed-file"])
        .arg(seed_file(node.dir.path()))
        .arg("--backup-dir")
        .arg(node.backup_dir())
        .arg("--out")
        .arg(&out2)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(dump(&out2), dump(&node.db_path()));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(fs::metadata(&out2).unwrap().permissions().mode() & 0o777, 0o600);
}

/// 10,000 transactions, a snapshot each second (several segments during the run).
#[test]
fn ten_thousand_writes_round_trip() {
    round_trip(10_000, 1);
}

/// 100,000 transactions (slow: about ten times the default test).
#[test]
#[ignore = "slow: 100,000 fsync'ed hook calls"]
fn hundred_thousand_writes_round_trip() {
    round_trip(100_000, 5);
}

/// The files the plugin writes are mode 0600.
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut node = Node::new(3);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    plugin.finish();
    for entry in fs::read_dir(node.backup_dir()).unwrap() {
        let mode = entry.unwrap().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let mode = fs::metadata(node.backup_dir()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// 10,000 transactions and no snapshot after the first: the restore replays the whole log
/// (the worst case a snapshot interval bounds).
#[test]
#[ignore = "slow variant: reports the restore time of a whole 10,000-record log"]
fn ten_thousand_writes_whole_log_restore() {
    round_trip(10_000, 0);
}
