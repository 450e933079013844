#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
//! One adversarial change to a valid backup each — a tampered record, a reordered record, a
//! record moved under another version, a missing record, a record sealed to another key, a
//! tampered snapshot — and the restore names it.
//!
//! Each shape is one function over [`Backed`], a node backed up by the real plugin to a
//! directory or to PostgreSQL, and runs on both (`dir::…` and `postgres::…`; the PostgreSQL
//! ones on warden-store's throwaway server, skipped only outside CI when it cannot start).
//! Shapes that only exist in one layout (file order, torn tails, a lost file; the table's
//! refusal of a duplicate row) are tests of their own.

mod common;

use std::fs;
use std::path::PathBuf;

use common::{pg_source, pubkey_hex, transact, Node, PgDb, PluginProc, Rng, SEED};
use warden_backup::format::{self, StoredRecord};
use warden_backup::restore::{restore, restore_from, BackupSource, RestoreError, SeedUnsealer};
use warden_core::seal::{ecies_seal, EciesError, WardenKeys};
use warden_core::secret::Seed;

/// Where the backup under test is.
enum Backend {
    /// The directory's only segment.
    Dir(PathBuf),
    Pg(PgDb),
}

/// A node with 40 transactions backed up (no snapshot at start: the database did not exist;
/// the first hook's snapshot of the empty database at 0, then 40 records).
struct Backed {
    node: Node,
    backend: Backend,
}

impl Backed {
    fn dir() -> Backed {
        let node = backed_up(None);
        let (_, segments) = warden_backup::dir::list(&node.backup_dir()).unwrap();
        assert_eq!(segments.len(), 1);
        let seg = node.backup_dir().join(format::segment_name(segments[0]));
        Backed { node, backend: Backend::Dir(seg) }
    }

    fn pg(name: &str) -> Option<Backed> {
        let db = PgDb::new(name)?;
        let node = backed_up(Some(&db.url));
        assert!(!node.backup_dir().exists(), "PostgreSQL alone: no directory");
        Some(Backed { node, backend: Backend::Pg(db) })
    }

    fn records(&self) -> Vec<StoredRecord> {
        match &self.backend {
            Backend::Dir(seg) => format::parse_segment(&fs::read(seg).unwrap()).unwrap().records,
            Backend::Pg(db) => db.raw().records(&pubkey_hex()),
        }
    }

    fn write_records(&self, records: &[StoredRecord]) {
        match &self.backend {
            Backend::Dir(seg) => {
                let mut bytes = format::LOG_MAGIC.to_vec();
                for r in records {
                    bytes.extend(format::encode_stored_record(r.data_version, &r.blob).unwrap());
                }
                fs::write(seg, bytes).unwrap();
            }
            Backend::Pg(db) => db.raw().write_records(&pubkey_hex(), records).unwrap(),
        }
    }

    /// Flips one bit of the newest snapshot's blob, near its end.
    fn tamper_snapshot(&self) {
        match &self.backend {
            Backend::Dir(_) => {
                let (snapshots, _) = warden_backup::dir::list(&self.node.backup_dir()).unwrap();
                let name = format::snapshot_name(*snapshots.last().unwrap());
                let path = self.node.backup_dir().join(name);
                let mut bytes = fs::read(&path).unwrap();
                let n = bytes.len();
                bytes[n - 30] ^= 0x80;
                fs::write(&path, bytes).unwrap();
            }
            Backend::Pg(db) => {
                let raw = db.raw();
                let mut blob = raw.snapshot_blob(&pubkey_hex());
                let n = blob.len();
                blob[n - 30] ^= 0x80;
                raw.set_snapshot_blob(&pubkey_hex(), &blob);
            }
        }
    }

    fn source(&self) -> BackupSource {
        match &self.backend {
            Backend::Dir(_) => BackupSource::Dir(self.node.backup_dir()),
            Backend::Pg(db) => pg_source(&db.url),
        }
    }

    /// Restores with the seed `seed` (the backup's own source either way).
    fn try_restore_with(&self, seed: [u8; 32]) -> Result<u64, RestoreError> {
        let out = self.node.dir.path().join("restored.sqlite3");
        let _ = fs::remove_file(&out);
        let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(seed)).unwrap();
        let r = restore_from(&self.source(), &out, &mut unsealer);
        assert_eq!(out.exists(), r.is_ok(), "a failed restore leaves no file");
        assert!(!self.node.dir.path().join("restored.sqlite3.partial").exists());
        r.map(|r| r.data_version)
    }

    fn try_restore(&self) -> Result<u64, RestoreError> {
        self.try_restore_with(SEED)
    }
}

fn backed_up(postgres: Option<&str>) -> Node {
    let mut node = Node::new(11);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), None, postgres);
    assert!(init.get("result").is_some(), "{init}");
    for _ in 0..40 {
        transact(&mut node, &mut plugin);
    }
    assert!(plugin.finish().success());
    node
}

fn untouched_backup_restores(b: &Backed) {
    assert_eq!(b.try_restore().unwrap(), 40);
    let out = b.node.dir.path().join("restored.sqlite3");
    assert_eq!(common::dump(&out), common::dump(&b.node.db_path()));
}

fn tampered_record_is_detected(b: &Backed) {
    let mut recs = b.records();
    let i = 17;
    let last = recs[i].blob.len() - 20;
    recs[i].blob[last] ^= 0x01;
    let dv = recs[i].data_version;
    b.write_records(&recs);
    match b.try_restore() {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

/// The clear versions keep their order; two blobs trade places (a replay of one
/// transaction's record at another position). In a table, keyed by version, this is what a
/// reordering of rows is.
fn record_moved_under_another_version_is_detected(b: &Backed) {
    let mut recs = b.records();
    let blob = recs[20].blob.clone();
    recs[20].blob = recs[21].blob.clone();
    recs[21].blob = blob;
    let dv = recs[20].data_version;
    b.write_records(&recs);
    match b.try_restore() {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

fn missing_record_is_detected(b: &Backed) {
    let mut recs = b.records();
    let gone = recs.remove(25);
    b.write_records(&recs);
    match b.try_restore() {
        Err(RestoreError::OutOfOrder { expected, found }) => {
            assert_eq!((expected, found), (gone.data_version, gone.data_version + 1));
        }
        other => panic!("{other:?}"),
    }
}

fn record_sealed_to_another_key_is_detected(b: &Backed) {
    let mut recs = b.records();
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
    b.write_records(&recs);
    match b.try_restore() {
        Err(RestoreError::Record { data_version, error: EciesError::DecryptionFailed }) => {
            assert_eq!(data_version, dv)
        }
        other => panic!("{other:?}"),
    }
}

fn whole_backup_for_another_key_is_refused(b: &Backed) {
    let r = b.try_restore_with([0x99; 32]);
    assert!(
        matches!(r, Err(RestoreError::Snapshot { error: EciesError::DecryptionFailed, .. })),
        "{r:?}"
    );
}

fn tampered_snapshot_is_detected(b: &Backed) {
    b.tamper_snapshot();
    let r = b.try_restore();
    assert!(
        matches!(r, Err(RestoreError::Snapshot { error: EciesError::DecryptionFailed, .. })),
        "{r:?}"
    );
}

/// Each shape as `dir::<shape>` and `postgres::<shape>`.
macro_rules! on_both {
    ($($shape:ident),* $(,)?) => {
        mod dir {
            $(
                #[test]
                fn $shape() {
                    super::$shape(&super::Backed::dir());
                }
            )*
        }
        mod postgres {
            $(
                #[test]
                fn $shape() {
                    if let Some(b) = super::Backed::pg(stringify!($shape)) {
                        super::$shape(&b);
                    }
                }
            )*
        }
    };
}

on_both!(
    untouched_backup_restores,
    tampered_record_is_detected,
    record_moved_under_another_version_is_detected,
    missing_record_is_detected,
    record_sealed_to_another_key_is_detected,
    whole_backup_for_another_key_is_refused,
    tampered_snapshot_is_detected,
);

fn dir_backed() -> (Backed, PathBuf) {
    let b = Backed::dir();
    let Backend::Dir(seg) = &b.backend else { unreachable!() };
    let seg = seg.clone();
    (b, seg)
}

#[test]
fn reordered_records_are_detected() {
    let (b, _) = dir_backed();
    let mut recs = b.records();
    recs.swap(20, 21);
    let (x, y) = (recs[20].data_version, recs[21].data_version);
    b.write_records(&recs);
    match b.try_restore() {
        Err(RestoreError::OutOfOrder { expected, found }) => {
            assert_eq!((expected, found), (y, x));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn replayed_record_is_detected() {
    let (b, _) = dir_backed();
    let mut recs = b.records();
    let copy = recs[10].clone();
    recs.insert(11, copy);
    b.write_records(&recs);
    assert!(matches!(b.try_restore(), Err(RestoreError::OutOfOrder { .. })));
}

/// In PostgreSQL the same replay is refused by the table itself: a second row for a version
/// (in the same epoch) violates the primary key, and the backup is left as it was.
#[test]
fn postgres_refuses_a_duplicate_row() {
    let Some(b) = Backed::pg("duplicate_row") else { return };
    let Backend::Pg(db) = &b.backend else { unreachable!() };
    let raw = db.raw();
    let recs = b.records();
    let epoch = raw.newest_epoch(&pubkey_hex());
    let id = common::pubkey_bytes(&pubkey_hex());
    let err = raw
        .execute(
            "INSERT INTO warden_backup_records (backup_id, epoch, data_version, blob) \
             VALUES ($1, $2, $3, $4)",
            &[&id.as_slice(), &epoch, &(recs[10].data_version as i64), &recs[11].blob],
        )
        .unwrap_err();
    assert_eq!(err.code(), Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION), "{err}");
    assert_eq!(b.records(), recs);
    assert_eq!(b.try_restore().unwrap(), 40);
}

/// A PostgreSQL database holding no backup for the seed's key is an error naming it, not an
/// empty database.
#[test]
fn postgres_without_this_key_s_backup_is_refused() {
    let Some(b) = Backed::pg("other_key") else { return };
    let Backend::Pg(db) = &b.backend else { unreachable!() };
    let out = b.node.dir.path().join("other.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy([0x99; 32])).unwrap();
    let source = BackupSource::Postgres {
        target: warden_backup::postgres::PgTarget::parse(&db.url).unwrap(),
        backup_id: unsealer.public_key(),
    };
    let r = restore_from(&source, &out, &mut unsealer);
    match r {
        Err(RestoreError::NoBackup { source }) => {
            assert!(source.contains(&unsealer.public_key().to_string()), "{source}")
        }
        other => panic!("{other:?}"),
    }
    assert!(!out.exists());
}

#[test]
fn torn_last_record_is_ignored_but_not_a_torn_middle() {
    let (b, seg) = dir_backed();
    let mut bytes = fs::read(&seg).unwrap();
    bytes.extend_from_slice(&41u64.to_be_bytes());
    bytes.extend_from_slice(&[0, 0, 1]);
    fs::write(&seg, &bytes).unwrap();
    assert_eq!(b.try_restore().unwrap(), 40);
    // The same incomplete bytes in a segment followed by another: refused.
    fs::write(&seg, &bytes).unwrap();
    let next = b.node.backup_dir().join(format::segment_name(40));
    fs::write(&next, format::LOG_MAGIC).unwrap();
    assert!(matches!(b.try_restore(), Err(RestoreError::TornRecord { .. })));
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
    let out = node.dir.path().join("restored.sqlite3");
    let mut unsealer = SeedUnsealer::new(&Seed::from_legacy(SEED)).unwrap();
    assert_eq!(restore(&node.backup_dir(), &out, &mut unsealer).unwrap().data_version, 25);
    assert_eq!(common::dump(&out), common::dump(&node.db_path()));
}
