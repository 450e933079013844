//! PostgreSQL replicas of the durable store (issue 5 point 5), against a real server:
//! warden-store's throwaway cluster (`test-support`), one database per test.
//!
//! A replica is kept in step through a channel flow; a stale replica is caught up; a local file
//! rolled back to an older copy is detected and the replica adopted (the channel goes on, the
//! revoked commitment is not signed); a tampered replica and a diverged one make `init` refuse
//! with `node-state-stale`, the diverged one until an operator's explicit action.
//!
//! Without PostgreSQL these tests fail in CI (`CI=true`, or `WARDEN_TEST_POSTGRES_BIN` set by
//! `.ci/run`) and say on stderr that they were skipped elsewhere.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod flow;

use std::path::Path;
use std::sync::Arc;

use flow::{
    copy_dir, copy_store, identity, local_records, new_dir, start_with, tamper, Db, FixedClock,
    Flow, Stream,
};
use warden_hsmd::audit::{self, AuditOutcome};
use warden_hsmd::durable::SealedRedbChannelStore;
use warden_hsmd::replica::{force_local, reconcile_adopt, Replica, ReplicaAction};
use warden_hsmd::signer::{InitError, Signer};
use warden_store::postgres::PgStore;
use warden_store::{Op, Record, Store, StoreId, Version};
use warden_testkit::rng::TestRng;

/// Opens the store directly (as `init` does) to read what reconciliation did.
fn reconcile_report(dir: &Path, db: &Db, run: u64) -> Vec<(String, ReplicaAction)> {
    let (node_id, keys) = identity();
    let store = SealedRedbChannelStore::open_with_replicas(
        dir,
        &node_id,
        keys,
        &mut Stream(TestRng::new(run)),
        Box::new(FixedClock(1_700_000_000 + run)),
        vec![db.replica()],
    )
    .unwrap();
    store.open_report().actions.clone()
}

fn assert_stale(result: Result<Signer, InitError>, what: &str) -> String {
    match result {
        Err(InitError::NodeState(e)) if e.is_stale() => {
            let text = InitError::NodeState(e).to_string();
            assert!(text.starts_with("node-state-stale: "), "{what}: {text}");
            text
        }
        Err(e) => panic!("{what}: expected node-state-stale, got {e}"),
        Ok(_) => panic!("{what}: the signer started"),
    }
}

#[test]
fn the_replica_is_kept_in_step_through_a_channel_flow() {
    let Some(db) = Db::new("in_step") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    flow.round(&s);
    // After every acknowledged request the replica holds exactly the local state (the local
    // file is read through a second handle of the same process: redb allows one; so compare
    // after the signer stops, and check the replica's head moved on each round meanwhile).
    let head = |recs: &[Record]| {
        recs.iter().find(|r| r.key == warden_hsmd::durable::HEAD_KEY).unwrap().version
    };
    let before = head(&db.records());
    flow.round(&s);
    assert!(head(&db.records()) > before, "the replica's head moves with each batch");
    drop(s);
    assert_eq!(local_records(dir.path()), db.records(), "replica == local, byte for byte");

    // A restart finds them equal and goes on.
    assert!(matches!(
        reconcile_report(dir.path(), &db, 2).as_slice(),
        [(_, ReplicaAction::Equal { .. })]
    ));
    let s = start_with(dir.path(), 3, vec![db.replica()]).unwrap();
    flow.round(&s);
    drop(s);
    assert_eq!(local_records(dir.path()), db.records());
}

#[test]
fn a_stale_replica_is_caught_up_with_an_alarm() {
    let Some(db) = Db::new("stale") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    drop(s);
    // Two rounds without the replica: it falls behind.
    let s = start_with(dir.path(), 2, Vec::new()).unwrap();
    flow.round(&s);
    flow.round(&s);
    drop(s);
    assert_ne!(local_records(dir.path()), db.records());

    let report = reconcile_report(dir.path(), &db, 3);
    match report.as_slice() {
        [(_, ReplicaAction::CaughtUp { from_seq, to_seq, records })] => {
            assert!(from_seq < to_seq && *from_seq > 0 && *records > 0, "{report:?}");
        }
        other => panic!("expected a catch-up, got {other:?}"),
    }
    // A signer started on the same state finds nothing out of step.
    let s = start_with(dir.path(), 30, vec![db.replica()]).unwrap();
    assert!(s.audit_log().open_alarms().is_empty());
    drop(s);
    // The alarm is in the audit trail (written when that store stopped).
    let (node_id, keys) = identity();
    let trail = audit::verify(dir.path(), &node_id, &keys).unwrap();
    assert!(trail.entries.iter().any(|e| e.outcome == AuditOutcome::Event
        && e.detail.as_deref().is_some_and(|d| d.contains("was behind"))));
    // The replica now equals the local file, and the channel goes on with it.
    assert_eq!(local_records(dir.path()), db.records());
    let s = start_with(dir.path(), 4, vec![db.replica()]).unwrap();
    flow.round(&s);
    drop(s);
    assert_eq!(local_records(dir.path()), db.records());

    // An empty replica (newly configured) is seeded the same way.
    let Some(empty) = Db::new("stale_empty") else { return };
    assert!(matches!(
        reconcile_report(dir.path(), &empty, 5).as_slice(),
        [(_, ReplicaAction::CaughtUp { from_seq: 0, .. })]
    ));
    assert_eq!(local_records(dir.path()), empty.records());
}

#[test]
fn a_rolled_back_local_file_is_detected_and_the_replica_adopted() {
    let Some(db) = Db::new("rollback") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    flow.round(&s);
    // What a compromised node would ask after a rollback: our commitment of that time, which
    // the next round revokes.
    let (ctx, old_commitment) = flow.force_close_request(&s);
    drop(s);
    let earlier = copy_dir(dir.path());
    let s = start_with(dir.path(), 2, vec![db.replica()]).unwrap();
    flow.round(&s);
    flow.round(&s);
    drop(s);

    // Control: the old file alone verifies, and would sign the revoked commitment.
    let alone = copy_dir(earlier.path());
    let s = start_with(alone.path(), 3, Vec::new()).unwrap();
    assert!(s.handle(&ctx, &old_commitment).is_ok(), "the rolled-back file alone signs it");
    drop(s);

    // The whole file copied back: the replica is ahead, verifies and continues it: adopted.
    copy_store(earlier.path(), dir.path());
    let report = reconcile_report(dir.path(), &db, 4);
    match report.as_slice() {
        [(_, ReplicaAction::Adopted { from_seq, to_seq, .. })] => assert!(from_seq < to_seq),
        other => panic!("expected the replica adopted, got {other:?}"),
    }
    copy_store(earlier.path(), dir.path());
    let s = start_with(dir.path(), 5, vec![db.replica()]).unwrap();
    let alarms = s.audit_log().open_alarms();
    assert!(alarms.len() == 1 && alarms[0].contains("adopted"), "{alarms:?}");
    // The revoked commitment is not signed, and the channel goes on from the newest state.
    let refused = s.handle(&ctx, &old_commitment);
    assert!(refused.is_err(), "a revoked commitment was signed after a rollback");
    flow.round(&s);
    drop(s);
    assert_eq!(local_records(dir.path()), db.records());
}

#[test]
fn a_tampered_replica_refuses_to_start() {
    let Some(db) = Db::new("tampered") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    flow.round(&s);
    drop(s);
    let records = db.records();
    let (_pg, raw) = db.raw();
    // Each record covered by the head, one at a time: the head, the node record, the
    // channel's parts and the last audit entry (the others are the chain's).
    let last_entry =
        records.iter().rev().find(|r| r.key.starts_with(warden_hsmd::durable::AUDIT_PREFIX));
    let covered: Vec<_> = records
        .iter()
        .filter(|r| !r.key.starts_with(warden_hsmd::durable::AUDIT_PREFIX))
        .chain(last_entry)
        .collect();
    assert!(covered.len() >= 5, "head, node, channel parts and the last audit entry");
    for r in covered {
        tamper(&raw, r);
        let text = assert_stale(start_with(dir.path(), 2, vec![db.replica()]), "tampered");
        assert!(text.contains("replica test-pg does not verify"), "{text}");
        // Put the original back.
        let now = raw.get(&r.key).unwrap().unwrap();
        raw.commit(&[Op::Delete { key: r.key.clone(), expected_version: now.version }]).unwrap();
        raw.commit(&[Op::Put {
            key: r.key.clone(),
            expected_version: Version::ABSENT,
            new_version: r.version,
            value: r.value.clone(),
        }])
        .unwrap();
    }
    // A replica ahead of a rolled-back file but tampered is not adopted either.
    let earlier = copy_dir(dir.path());
    let s = start_with(dir.path(), 3, vec![db.replica()]).unwrap();
    flow.round(&s);
    drop(s);
    copy_store(earlier.path(), dir.path());
    let head = db.records().into_iter().find(|r| r.key == warden_hsmd::durable::HEAD_KEY).unwrap();
    tamper(&raw, &head);
    assert_stale(start_with(dir.path(), 4, vec![db.replica()]), "tampered replica ahead");
}

#[test]
fn a_diverged_replica_refuses_until_an_operator_chooses() {
    let Some(db) = Db::new("diverged") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    drop(s);
    let fork = copy_dir(dir.path());
    // The original goes on with the replica; the fork goes on alone, with other batches.
    let s = start_with(dir.path(), 2, vec![db.replica()]).unwrap();
    flow.round(&s);
    drop(s);
    // The same channel model from its opening: the same numbers, written with other bytes.
    let s = start_with(fork.path(), 3, Vec::new()).unwrap();
    Flow::new().round(&s);
    drop(s);

    let text = assert_stale(start_with(fork.path(), 5, vec![db.replica()]), "diverged");
    assert!(text.contains("diverged"), "{text}");
    // Still refused on the next start: nothing changed by itself.
    assert_stale(start_with(fork.path(), 6, vec![db.replica()]), "diverged again");

    // Operator action 1: keep the fork, replace the replica.
    let (node_id, keys) = identity();
    let forced = copy_dir(fork.path());
    let Some(db2) = Db::new("diverged_forced") else { return };
    // (db2 holds the replica's state, so that `db` stays diverged for action 2.)
    let (_pg2, raw2) = db2.raw();
    let theirs: Vec<Op> = db
        .records()
        .into_iter()
        .map(|r| Op::Put {
            key: r.key,
            expected_version: Version::ABSENT,
            new_version: r.version,
            value: r.value,
        })
        .collect();
    raw2.commit(&theirs).unwrap();
    assert_stale(start_with(forced.path(), 7, vec![db2.replica()]), "diverged copy");
    let report = force_local(forced.path(), &node_id, &keys, &db2.replica()).unwrap();
    assert!(report.to_string().contains("forced the local store"), "{report}");
    assert_eq!(local_records(forced.path()), db2.records());
    drop(start_with(forced.path(), 8, vec![db2.replica()]).unwrap());

    // Operator action 2: adopt the replica over the fork; the channel goes on from it.
    let report = reconcile_adopt(fork.path(), &node_id, &keys, &db.replica()).unwrap();
    assert!(report.to_string().contains("adopted the replica"), "{report}");
    assert!(matches!(
        reconcile_report(fork.path(), &db, 9).as_slice(),
        [(_, ReplicaAction::Equal { .. })]
    ));
    let s = start_with(fork.path(), 10, vec![db.replica()]).unwrap();
    flow.round(&s);
    drop(s);
    assert_eq!(local_records(fork.path()), db.records());
}

/// A replica whose writes can be made to fail.
struct Flaky {
    inner: PgStore,
    fail: Arc<std::sync::atomic::AtomicBool>,
}

impl Store for Flaky {
    fn store_id(&self) -> &StoreId {
        self.inner.store_id()
    }
    fn get(
        &self,
        key: &[u8],
    ) -> Result<Option<warden_store::Versioned>, warden_store::BackendError> {
        self.inner.get(key)
    }
    fn list(&self, prefix: &[u8]) -> Result<Vec<Record>, warden_store::BackendError> {
        self.inner.list(prefix)
    }
    fn commit(&self, batch: &[Op]) -> Result<(), warden_store::CommitError> {
        if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(
                warden_store::BackendError::new("commit", "replica unreachable (test)").into()
            );
        }
        self.inner.commit(batch)
    }
}

#[test]
fn no_reply_leaves_before_the_replica_acknowledged() {
    let Some(db) = Db::new("ack") else { return };
    let dir = new_dir();
    let mut flow = Flow::new();
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (_pg, raw) = db.raw();
    let flaky = Replica::new("flaky", Box::new(Flaky { inner: raw, fail: Arc::clone(&fail) }));
    let s = start_with(dir.path(), 1, vec![flaky]).unwrap();
    flow.open(&s);
    // The replica goes away: the next state change is durable locally but gets no reply.
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
    let changes = warden_testkit::flows::random_changes(
        &mut flow.ch,
        &mut TestRng::new(9),
        warden_testkit::Who::Them,
    );
    let local_next = flow.ch.local.apply(&changes).unwrap();
    let (validate, _) = flow.ch.validate_commitment(flow.ch.local_num + 1, &local_next).unwrap();
    let ctx = flow.ctx(&s, warden_testkit::perms::CHANNELD);
    let body = warden_wire::Message::encode(&validate).unwrap();
    let err = s.handle(&ctx, &body).unwrap_err();
    assert!(err.to_string().contains("not acknowledged"), "{err}");
    // The node's retry: still no reply while the replica is away.
    assert!(s.handle(&ctx, &body).is_err());
    // It comes back: the retry is answered, and the replica caught up.
    fail.store(false, std::sync::atomic::Ordering::SeqCst);
    assert!(s.handle(&ctx, &body).is_ok());
    drop(s);
    assert_eq!(local_records(dir.path()), db.records());
}
