#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! lightningd calls `db_write` before `init` (its start-up writes and migrations): the plugin
//! seals them with the configuration of `warden-backup.json`, and refuses them without it.

mod common;

use std::process::Command;

use common::{dump, pubkey_hex, transact, Node, PluginProc, SEED};
use serde_json::json;
use warden_backup::restore::{restore, SeedUnsealer};
use warden_core::secret::Seed;

fn restored_equals_node(node: &Node) {
    let out = node.dir.path().join("restored.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    let report = restore(&node.backup_dir(), &out, &mut unsealer).unwrap();
    assert_eq!(report.data_version, node.data_version);
    assert_eq!(dump(&out), dump(&node.db_path()));
}

#[test]
fn writes_before_init_without_setup_stop_lightningd() {
    let mut node = Node::new(31);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    let writes = node.next_transaction();
    node.begin(&writes);
    assert_eq!(plugin.db_write(1, &writes), "abort");
    assert!(plugin.logs.iter().any(|(l, m)| l == "broken" && m.contains("warden-backup setup")));
    node.rollback();
    plugin.finish();
}

#[test]
fn setup_then_a_fresh_node_writes_before_init() {
    let mut node = Node::new(32);
    let status = Command::new(env!("CARGO_BIN_EXE_warden-backup"))
        .args(["setup", "--lightning-dir"])
        .arg(node.lightning_dir())
        .args(["--pubkey", &pubkey_hex(), "--snapshot-interval", "0"])
        .status()
        .unwrap();
    assert!(status.success());
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    // The schema and the first writes, before init (lightningd's migrations).
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    // init without options: the state file's configuration.
    let init = plugin.init_with(node.lightning_dir(), json!({}));
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..20 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    restored_equals_node(&node);
}

#[test]
fn restart_with_writes_before_init() {
    let mut node = Node::new(33);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    assert!(plugin.start(node.lightning_dir(), 0, &pubkey_hex()).get("result").is_some());
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());

    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    let init = plugin.init_with(
        node.lightning_dir(),
        json!({"warden-backup-pubkey": pubkey_hex(), "warden-backup-snapshot-interval": 0}),
    );
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..5 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    restored_equals_node(&node);
}

#[test]
fn write_before_init_on_a_rolled_back_database_is_refused_with_both_numbers() {
    let mut node = Node::new(34);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..12 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    // lightningd, on a database rolled back to data_version 6, writes version 7.
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    assert_eq!(plugin.db_write(7, &["DELETE FROM peers".to_owned()]), "abort");
    let (_, message) = plugin.logs.iter().find(|(l, _)| l == "broken").unwrap();
    assert!(message.contains("data_version 12") && message.contains("data_version 6"), "{message}");
    plugin.finish();
}

#[test]
fn init_options_that_contradict_the_writes_before_init_are_refused() {
    let mut node = Node::new(35);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    transact(&mut node, &mut plugin);
    assert!(plugin.finish().success());
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.getmanifest();
    transact(&mut node, &mut plugin);
    let init = plugin.init_with(
        node.lightning_dir(),
        json!({"warden-backup-pubkey": pubkey_hex(), "warden-backup-dir": "elsewhere"}),
    );
    assert!(init["error"]["message"].as_str().unwrap().contains("elsewhere"));
    assert!(!plugin.finish().success());
}
