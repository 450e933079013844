//! `warden restore` and `warden scb`, run as an operator runs them, against a real PostgreSQL
//! replica (warden-store's throwaway cluster): a channel flow through warden-hsmd's signer with
//! the replica, the local store deleted, `warden restore`, the flow goes on to a cooperative
//! close; a tampered replica is refused and nothing is written; a local store that is not empty
//! is kept unless `--force`.
//!
//! Without PostgreSQL these tests fail in CI (`CI=true`, or `WARDEN_TEST_POSTGRES_BIN` set) and
//! say on stderr that they were skipped elsewhere.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

#[path = "../../warden-hsmd/tests/flow/mod.rs"]
mod flow;

use std::path::Path;
use std::process::{Command, Output};

use flow::{identity, local_records, new_dir, start_with, tamper, Db, FixedClock, Flow, Stream};
use warden_hsmd::audit::{self, AuditOutcome};
use warden_hsmd::durable::{SealedRedbChannelStore, AUDIT_PREFIX, STORE_DIR};
use warden_hsmd::replica::{ReplicaAction, REPLACED_FILE_NAME};
use warden_store::postgres::PgStore;
use warden_store::redb::FILE_NAME;
use warden_store::{Op, Record, Store, Version};
use warden_testkit::perms;
use warden_testkit::rng::TestRng;
use warden_wire::msg::SignTxReply;

fn warden(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WARDEN_HSM_PASSPHRASE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn head_seq(records: &[Record]) -> u64 {
    records.iter().find(|r| r.key == warden_hsmd::durable::HEAD_KEY).unwrap().version.get()
}

/// Opens the store as the signer does, with the replica, and returns what reconciling did.
fn reconcile(dir: &Path, db: &Db, run: u64) -> Vec<(String, ReplicaAction)> {
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

/// A channel opened and moved on through the signer with the replica; the signer stopped.
fn flow_with_replica(dir: &Path, db: &Db) -> Flow {
    let mut flow = Flow::new();
    let s = start_with(dir, 1, vec![db.replica()]).unwrap();
    flow.open(&s);
    flow.round(&s);
    flow.round(&s);
    drop(s);
    flow
}

#[test]
fn restore_rebuilds_the_store_and_the_channel_goes_on_to_a_cooperative_close() {
    let Some(db) = Db::new("flow") else { return };
    let dir = new_dir();
    let mut flow = flow_with_replica(dir.path(), &db);
    let before = local_records(dir.path());
    assert_eq!(before, db.records(), "the replica holds the local state");

    // The machine is lost: only the seed (hsm_secret) and the replica remain.
    std::fs::remove_dir_all(dir.path().join(STORE_DIR)).unwrap();
    let scb = dir.path().join("scb.json");
    let out = warden(dir.path(), &["restore", "--from", &db.url, "--scb", scb.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("restored from replica") && said.contains("verified"), "{said}");
    assert!(!said.contains(&db.url) || !db.url.contains('@'), "no credentials printed");

    // The local store is the replica's state plus the restore's own audit event, written to
    // both: byte for byte equal, one batch ahead of what was lost.
    let after = local_records(dir.path());
    assert_eq!(after, db.records());
    assert_eq!(head_seq(&after), head_seq(&before) + 1);
    for r in before.iter().filter(|r| r.key != warden_hsmd::durable::HEAD_KEY) {
        if r.key.starts_with(AUDIT_PREFIX) {
            assert!(after.contains(r), "every audit entry is kept");
        }
    }
    let (node_id, keys) = identity();
    let trail = audit::verify(dir.path(), &node_id, &keys).unwrap();
    let last = trail.entries.last().unwrap();
    assert_eq!(last.outcome, AuditOutcome::Event);
    assert!(last.detail.as_deref().unwrap().contains("restored from the replica"), "{last:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join(STORE_DIR).join(FILE_NAME)).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // The static channel backup names the channel.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&scb).unwrap()).unwrap();
    let items = json["scb"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    let item = items[0].as_str().unwrap();
    let dbid = format!("{:016x}", flow.ch.params().dbid);
    assert!(item.starts_with(&dbid), "{item}");
    let peer: String = flow.ch.peer_id().as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(&item[16 + 64..16 + 64 + 66], peer);

    // A start finds the replica equal, and the channel goes on from the restored state.
    assert!(matches!(reconcile(dir.path(), &db, 2).as_slice(), [(_, ReplicaAction::Equal { .. })]));
    let s = start_with(dir.path(), 3, vec![db.replica()]).unwrap();
    assert!(s.audit_log().open_alarms().is_empty());
    flow.round(&s);
    flow.settle(&s);
    let fee = flow.ch.local.feerate.fee_for_weight(724);
    let close = flow.ch.sign_mutual_close(fee).unwrap();
    let reply: SignTxReply = flow.call(&s, perms::CLOSINGD, &close.request);
    warden_testkit::verify::check_signature(
        flow.ch.secp(),
        "sign_mutual_close_tx",
        &close.expect.digest,
        &reply.sig,
        &close.expect.key,
        close.expect.sighash_type,
    )
    .unwrap();
    drop(s);
    assert_eq!(local_records(dir.path()), db.records());
}

fn untamper(store: &PgStore, r: &Record) {
    let now = store.get(&r.key).unwrap().unwrap();
    store.commit(&[Op::Delete { key: r.key.clone(), expected_version: now.version }]).unwrap();
    store
        .commit(&[Op::Put {
            key: r.key.clone(),
            expected_version: Version::ABSENT,
            new_version: r.version,
            value: r.value.clone(),
        }])
        .unwrap();
}

#[test]
fn a_tampered_replica_is_refused_and_nothing_is_written() {
    let Some(db) = Db::new("tampered") else { return };
    let dir = new_dir();
    flow_with_replica(dir.path(), &db);
    std::fs::remove_dir_all(dir.path().join(STORE_DIR)).unwrap();
    let records = db.records();
    let (_pg, raw) = db.raw();
    // One record covered by the head (the channel's, the node's, the head itself), and one
    // audit entry in the middle of the chain.
    let audit: Vec<&Record> = records.iter().filter(|r| r.key.starts_with(AUDIT_PREFIX)).collect();
    let covered: Vec<&Record> =
        records.iter().filter(|r| !r.key.starts_with(AUDIT_PREFIX)).collect();
    assert!(covered.len() >= 3 && audit.len() >= 3);
    for r in covered.iter().copied().chain([audit[audit.len() / 2]]) {
        tamper(&raw, r);
        let out = warden(dir.path(), &["restore", "--from", &db.url]);
        assert!(!out.status.success(), "a tampered replica was restored");
        let err = text(&out.stderr);
        assert!(err.contains("does not verify"), "{err}");
        if r.key.starts_with(AUDIT_PREFIX) {
            assert!(err.contains("audit entry"), "names the entry: {err}");
        }
        let local = dir.path().join(STORE_DIR).join(FILE_NAME);
        assert!(!local.exists() || local_records(dir.path()).is_empty(), "nothing written");
        untamper(&raw, r);
    }
    // Untampered, it restores.
    let out = warden(dir.path(), &["restore", "--from", &db.url]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A replica of another seed's node is empty for this one.
    let Some(empty) = Db::new("tampered_empty") else { return };
    let other = new_dir();
    let out = warden(other.path(), &["restore", "--from", &empty.url]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("holds no state for this node id"));
}

#[test]
fn a_local_store_that_is_not_empty_is_kept_unless_forced() {
    let Some(db) = Db::new("force") else { return };
    let dir = new_dir();
    let mut flow = flow_with_replica(dir.path(), &db);
    let before = local_records(dir.path());
    let out = warden(dir.path(), &["restore", "--from", &db.url]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("not empty") && err.contains("--force"), "{err}");
    assert_eq!(local_records(dir.path()), before, "left as it was");

    let out = warden(dir.path(), &["restore", "--from", &db.url, "--force"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(REPLACED_FILE_NAME));
    assert!(dir.path().join(STORE_DIR).join(REPLACED_FILE_NAME).exists(), "the old file is kept");
    let (node_id, keys) = identity();
    let trail = audit::verify(dir.path(), &node_id, &keys).unwrap();
    let last = trail.entries.last().unwrap().detail.clone().unwrap();
    assert!(last.contains("replaced"), "the overwrite is in the audit trail: {last}");
    let s = start_with(dir.path(), 4, vec![db.replica()]).unwrap();
    assert!(s.audit_log().open_alarms().is_empty(), "equal after the restore");
    flow.round(&s);
    drop(s);

    // `warden scb` reads the local store.
    let out = warden(dir.path(), &["scb"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["scb"].as_array().unwrap().len(), 1);
}
