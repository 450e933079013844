#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! Crashes and rollbacks: the plugin killed between two hook calls loses no acknowledged
//! write; lightningd stopping between `continue` and its commit is rewound; a database behind
//! its backup is refused at start with both numbers.

mod common;

use std::fs;
use std::io::Write;

use common::{dump, pubkey_hex, transact, Node, PluginProc, Rng, SEED};
use warden_backup::format;
use warden_backup::restore::{restore, RestoreReport, SeedUnsealer};
use warden_core::secret::Seed;

fn restored_equals_node(node: &Node, name: &str) -> RestoreReport {
    let out = node.dir.path().join(name);
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    let report = restore(&node.backup_dir(), &out, &mut unsealer).unwrap();
    assert_eq!(report.data_version, node.data_version);
    assert_eq!(dump(&out), dump(&node.db_path()));
    report
}

#[test]
fn killed_between_hook_calls_loses_no_acknowledged_write() {
    let mut node = Node::new(21);
    let mut rng = Rng(99);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    assert!(plugin.start(node.lightning_dir(), 0, &pubkey_hex()).get("result").is_some());
    for kill in 0..8 {
        for _ in 0..(1 + rng.below(60)) {
            transact(&mut node, &mut plugin);
        }
        // SIGKILL right after an acknowledged, committed write.
        plugin.kill();
        if kill % 2 == 1 {
            // And as if killed in the middle of an append: a torn record at the end.
            let (_, segments) = warden_backup::dir::list(&node.backup_dir()).unwrap();
            let seg = node.backup_dir().join(format::segment_name(*segments.last().unwrap()));
            let mut f = fs::OpenOptions::new().append(true).open(seg).unwrap();
            f.write_all(&(node.data_version + 1).to_be_bytes()).unwrap();
            f.write_all(&[0, 0, 2, 0, 7, 7]).unwrap();
        }
        let report = restored_equals_node(&node, &format!("after-kill-{kill}.sqlite3"));
        assert_eq!(report.torn_tail > 0, kill % 2 == 1);
        plugin = PluginProc::spawn_in(node.lightning_dir());
        let init = plugin.start(node.lightning_dir(), 0, &pubkey_hex());
        assert!(init.get("result").is_some(), "{init}");
    }
    for _ in 0..20 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    // The restarted plugin cut the torn records before appending.
    assert_eq!(restored_equals_node(&node, "final.sqlite3").torn_tail, 0);
}

#[test]
fn acknowledged_but_uncommitted_transaction_is_rewound() {
    let mut node = Node::new(22);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..30 {
        transact(&mut node, &mut plugin);
    }
    // lightningd dies after the hook's `continue`, before its commit.
    let writes = node.next_transaction();
    node.begin(&writes);
    assert_eq!(plugin.db_write(node.data_version + 1, &writes), "continue");
    node.rollback();
    plugin.kill();

    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    assert!(init.get("result").is_some(), "{init}");
    assert!(
        plugin.logs.iter().any(|(l, m)| l == "unusual" && m.contains("record 31")),
        "{:?}",
        plugin.logs
    );
    // The same data_version, other statements.
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    restored_equals_node(&node, "restored.sqlite3");
}

#[test]
fn backup_ahead_of_the_database_is_refused_at_start() {
    let mut node = Node::new(23);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    let old = node.dir.path().join("old.sqlite3");
    for _ in 0..20 {
        transact(&mut node, &mut plugin);
        if node.data_version == 5 {
            fs::copy(node.db_path(), &old).unwrap();
        }
    }
    assert!(plugin.finish().success());
    // The database rolled back to data_version 5 (an old copy put in place).
    fs::copy(&old, node.db_path()).unwrap();

    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    let message = init["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("data_version 20"), "{message}");
    assert!(message.contains("data_version 5"), "{message}");
    assert!(plugin.logs.iter().any(|(l, m)| l == "broken" && *m == message));
    assert!(!plugin.finish().success(), "the plugin exits with an error");
}

#[test]
fn missing_database_with_a_backup_is_refused_at_start() {
    let mut node = Node::new(24);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..3 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    fs::remove_file(node.db_path()).unwrap();
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    let message = init["error"]["message"].as_str().unwrap();
    assert!(message.contains("data_version 3") && message.contains("data_version 0"), "{message}");
    assert!(!plugin.finish().success());
}

#[test]
fn hook_behind_the_backup_is_not_acknowledged() {
    let mut node = Node::new(25);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert_eq!(plugin.db_write(4, &["DELETE FROM peers".to_owned()]), "abort");
    assert!(plugin.logs.iter().any(|(l, _)| l == "broken"));
    assert!(plugin.finish().success());
}

#[test]
fn missing_pubkey_is_refused_at_init() {
    let node = Node::new(26);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start(node.lightning_dir(), 0, "");
    assert!(init["error"]["message"].as_str().unwrap().contains("--warden-backup-pubkey"));
    let mut plugin2 = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin2.start(node.lightning_dir(), 0, "02zz");
    assert!(init.get("error").is_some());
    assert!(!plugin.finish().success());
    assert!(!plugin2.finish().success());
}

#[test]
fn lost_database_is_restored_and_the_node_goes_on() {
    let mut node = Node::new(27);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..30 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    let before = dump(&node.db_path());
    // The disk is lost: the database goes; the seed and the backup restore it in place.
    fs::remove_file(node.db_path()).unwrap();
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    restore(&node.backup_dir(), &node.db_path(), &mut unsealer).unwrap();
    node.reopen();
    assert_eq!(dump(&node.db_path()), before);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    assert!(plugin.start(node.lightning_dir(), 0, &pubkey_hex()).get("result").is_some());
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    restored_equals_node(&node, "again.sqlite3");
}
