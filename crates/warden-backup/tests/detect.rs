#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! One adversarial change to a valid backup each — a tampered record, a reordered record, a
//! record moved under another version, a missing record, a record sealed to another key, a
//! tampered snapshot — and the restore names it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{pubkey_hex, transact, Node, PluginProc, Rng, SEED};
use warden_backup::format::{self, StoredRecord};
use warden_backup::restore::{restore, RestoreError, SeedUnsealer};
use warden_core::seal::{ecies_seal, EciesError, WardenKeys};
use warden_core::secret::Seed;

/// A node with 40 transactions backed up (one snapshot at start: none, the database did not
/// exist; the first hook's snapshot of the empty database at 0), and the path of its segment.
fn backed_up() -> (Node, PathBuf) {
    let mut node = Node::new(11);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..40 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    let (_, segments) = warden_backup::dir::list(&node.backup_dir()).unwrap();
    assert_eq!(segments.len(), 1);
    let seg = node.backup_dir().join(format::segment_name(segments[0]));
    (node, seg)
}

fn records(seg: &Path) -> Vec<StoredRecord> {
    format::parse_segment(&fs::read(seg).unwrap()).unwrap().records
}

fn write_records(seg: &Path, records: &[StoredRecord]) {
    let mut bytes = format::LOG_MAGIC.to_vec();
    for r in records {
        bytes.extend(format::encode_stored_record(r.data_version, &r.blob).unwrap());
    }
    fs::write(seg, bytes).unwrap();
}

fn try_restore(node: &Node) -> Result<u64, RestoreError> {
    let out = node.dir.path().join("restored.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    let r = restore(&node.backup_dir(), &out, &mut unsealer);
    assert_eq!(out.exists(), r.is_ok(), "a failed restore leaves no file");
    r.map(|r| r.data_version)
}

#[test]
fn untouched_backup_restores() {
    let (node, _) = backed_up();
    assert_eq!(try_restore(&node).unwrap(), 40);
}

#[test]
fn tampered_record_is_detected() {
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    let i = 17;
    let last = recs[i].blob.len() - 20;
    recs[i].blob[last] ^= 0x01;
    let dv = recs[i].data_version;
    write_records(&seg, &recs);
    match try_restore(&node) {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn reordered_records_are_detected() {
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    recs.swap(20, 21);
    let (a, b) = (recs[20].data_version, recs[21].data_version);
    write_records(&seg, &recs);
    match try_restore(&node) {
        Err(RestoreError::OutOfOrder { expected, found }) => {
            assert_eq!((expected, found), (b, a));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn record_moved_under_another_version_is_detected() {
    // The clear headers keep their order; two blobs trade places (a replay of one
    // transaction's record at another position).
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    let blob = recs[20].blob.clone();
    recs[20].blob = recs[21].blob.clone();
    recs[21].blob = blob;
    let dv = recs[20].data_version;
    write_records(&seg, &recs);
    match try_restore(&node) {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn replayed_record_is_detected() {
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    let copy = recs[10].clone();
    recs.insert(11, copy);
    write_records(&seg, &recs);
    assert!(matches!(try_restore(&node), Err(RestoreError::OutOfOrder { .. })));
}

#[test]
fn missing_record_is_detected() {
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    let gone = recs.remove(25);
    write_records(&seg, &recs);
    match try_restore(&node) {
        Err(RestoreError::OutOfOrder { expected, found }) => {
            assert_eq!((expected, found), (gone.data_version, gone.data_version + 1));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn record_sealed_to_another_key_is_detected() {
    let (node, seg) = backed_up();
    let mut recs = records(&seg);
    let other = WardenKeys::derive(&Seed::from_legacy([0x99; 32])).unwrap().node_backup_pubkey();
    let i = 30;
    let dv = recs[i].data_version;
    // A well-formed record of the right version, with the same statements, to the wrong key.
    let mine = WardenKeys::derive(&Seed::from_legacy(SEED)).unwrap();
    let plain = warden_core::seal::ecies_open_with_key(
        mine.node_backup_key(),
        &recs[i].blob,
        &format::record_context(dv),
    )
    .unwrap();
    recs[i].blob = ecies_seal(&other, &plain, &format::record_context(dv), &mut Rng(5)).unwrap();
    write_records(&seg, &recs);
    match try_restore(&node) {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn whole_backup_for_another_key_is_refused() {
    let (node, _) = backed_up();
    let out = node.dir.path().join("restored.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy([0x99; 32])).unwrap();
    let r = restore(&node.backup_dir(), &out, &mut unsealer);
    assert!(
        matches!(r, Err(RestoreError::Snapshot { error: EciesError::DecryptionFailed, .. })),
        "{r:?}"
    );
}

#[test]
fn tampered_snapshot_is_detected() {
    let (node, _) = backed_up();
    let (snapshots, _) = warden_backup::dir::list(&node.backup_dir()).unwrap();
    let path = node.backup_dir().join(format::snapshot_name(*snapshots.last().unwrap()));
    let mut bytes = fs::read(&path).unwrap();
    let n = bytes.len();
    bytes[n - 30] ^= 0x80;
    fs::write(&path, bytes).unwrap();
    assert!(matches!(
        try_restore(&node),
        Err(RestoreError::Snapshot { error: EciesError::DecryptionFailed, .. })
    ));
}

#[test]
fn torn_last_record_is_ignored_but_not_a_torn_middle() {
    let (node, seg) = backed_up();
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&41u64.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 1]);
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(try_restore(&node).unwrap(), 40);
    fs::remove_file(node.dir.path().join("restored.sqlite3")).unwrap();
    // The same incomplete bytes in a segment followed by another: refused.
    fs::write(&seg, &bytes).unwrap();
    let next = node.backup_dir().join(format::segment_name(40));
    fs::write(&next, format::LOG_MAGIC).unwrap();
    assert!(matches!(try_restore(&node), Err(RestoreError::TornRecord { .. })));
}

#[test]
fn lost_newest_snapshot_restores_from_the_previous_one() {
    let mut node = Node::new(12);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..15 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    // A restart takes the second snapshot (at 15); the log goes on in its segment.
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start(node.lightning_dir(), 0, &pubkey_hex());
    for _ in 0..10 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    let (snapshots, segments) = warden_backup::dir::list(&node.backup_dir()).unwrap();
    assert_eq!((snapshots.clone(), segments), (vec![0, 15], vec![0, 15]));
    fs::remove_file(node.backup_dir().join(format::snapshot_name(15))).unwrap();
    assert_eq!(try_restore(&node).unwrap(), 25);
    assert_eq!(
        common::dump(&node.dir.path().join("restored.sqlite3")),
        common::dump(&node.db_path())
    );
}
