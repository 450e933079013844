//! The audit trail (issue 5 point 7): after a channel flow every decision is in a chain that
//! verifies, refusals carry their rule, state changes are written in their own batch, and a
//! modified, removed, reordered or cut-off entry is detected.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod flow;

use std::path::Path;

use flow::{copy_dir, identity, new_dir, start_with, Flow};
use warden_hsmd::audit::{self, AuditError, AuditOutcome, FLUSH_AT};
use warden_hsmd::durable::{store_id_bytes, AUDIT_PREFIX, STORE_DIR};
use warden_hsmd::permissions;
use warden_hsmd::signer::BadRequestError;
use warden_store::redb::{RedbDatabase, RedbStore};
use warden_store::{Op, Record, Store, StoreId, Version};
use warden_wire::msg::*;
use warden_wire::Message;

fn store_of(dir: &Path) -> (RedbDatabase, RedbStore) {
    let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
    let store = db.store(StoreId::new(store_id_bytes(&identity().0)).unwrap());
    (db, store)
}

fn entries(dir: &Path) -> Vec<Record> {
    let (_db, store) = store_of(dir);
    store.list(AUDIT_PREFIX).unwrap()
}

/// A directory after a flow with a refusal and a malformed request in it.
fn base() -> (tempfile::TempDir, Flow) {
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, Vec::new()).unwrap();
    flow.open(&s);
    flow.round(&s);
    // A refusal: a forgotten channel's dbid handed out again (`channel-dbid-reuse`).
    let other = NewChannel { id: flow.ch.peer_id(), dbid: 77 };
    let _: NewChannelReply = flow.call(&s, permissions::ALL, &other);
    let forget = ForgetChannel { id: flow.ch.peer_id(), dbid: 77 };
    let _: ForgetChannelReply = flow.call(&s, permissions::ALL, &forget);
    let ctx = flow.ctx(&s, permissions::ALL);
    match s.handle(&ctx, &other.encode().unwrap()) {
        Err(BadRequestError::Refused(e)) => assert_eq!(e.rule.tag(), "channel-dbid-reuse"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // A request that is not one at all.
    assert!(s.handle(&ctx, &[0xff]).is_err());
    flow.round(&s);
    drop(s);
    (dir, flow)
}

#[test]
fn the_chain_verifies_after_a_flow_and_refusals_carry_their_rule() {
    let (dir, _flow) = base();
    let (node_id, keys) = identity();
    let trail = audit::verify(dir.path(), &node_id, &keys).unwrap();
    let e = &trail.entries;
    assert_eq!(
        e.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=e.len() as u64).collect::<Vec<_>>()
    );
    // Every channel request of the flow changed state: `committed`, with the state's digest.
    let committed = e.iter().filter(|e| e.outcome == AuditOutcome::Committed).count();
    assert!(committed >= 10, "{committed} committed entries");
    assert!(e.iter().filter(|e| e.outcome == AuditOutcome::Committed).all(|e| e
        .state_sha256
        .is_some()
        && e.request_sha256.is_some()
        && e.peer.is_some()));
    let refused: Vec<_> = e.iter().filter(|e| e.outcome == AuditOutcome::Refused).collect();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].rule.as_deref(), Some("channel-dbid-reuse"));
    assert_eq!(refused[0].dbid, Some(0));
    assert!(e.iter().any(|e| e.outcome == AuditOutcome::Rejected));

    // The export: one JSON object per entry, in order.
    let mut out = Vec::new();
    audit::export_jsonl(dir.path(), &node_id, &keys, &mut out).unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), e.len());
    let refusal = lines.iter().find(|l| l["outcome"] == "refused").unwrap();
    assert_eq!(refusal["rule"], "channel-dbid-reuse");
    assert_eq!(lines[1]["prev"], lines[0]["hash"]);

    // A restart continues the same chain.
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 2, Vec::new()).unwrap();
    let _: GetPerCommitmentPointReply =
        flow.call(&s, warden_testkit::perms::CHANNELD, &GetPerCommitmentPoint { n: 1 });
    drop(s);
    let again = audit::verify(dir.path(), &node_id, &keys).unwrap();
    assert_eq!(again.entries.len(), e.len() + 1);
    assert_eq!(again.entries.last().unwrap().outcome, AuditOutcome::Answered);
    assert!(again.entries.last().unwrap().reply_sha256.is_some());
}

#[test]
fn a_state_change_is_audited_in_its_own_batch() {
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start_with(dir.path(), 1, Vec::new()).unwrap();
    flow.open(&s);
    // The signer is still running: what is in the file is what was written before the replies.
    // The file is locked by the running signer: copy it to read it.
    let copy = copy_dir(dir.path());
    drop(s);
    let written = entries(copy.path());
    assert_eq!(written.len(), 4, "new_channel, setup, sign_remote, validate: one batch each");
    // Requests that change nothing are queued, and written in a batch of their own at FLUSH_AT.
    let s = start_with(dir.path(), 2, Vec::new()).unwrap();
    for _ in 0..FLUSH_AT {
        let _: GetPerCommitmentPointReply =
            flow.call(&s, warden_testkit::perms::CHANNELD, &GetPerCommitmentPoint { n: 1 });
    }
    let copy = copy_dir(dir.path());
    drop(s);
    assert_eq!(entries(copy.path()).len(), 4 + FLUSH_AT);
}

/// Rewrites one entry's store key and value behind the signer's back.
fn replace(store: &RedbStore, key: &[u8], value: Option<Vec<u8>>) {
    store.commit(&[Op::Delete { key: key.to_vec(), expected_version: Version::new(1) }]).unwrap();
    if let Some(value) = value {
        store
            .commit(&[Op::Put {
                key: key.to_vec(),
                expected_version: Version::ABSENT,
                new_version: Version::new(1),
                value,
            }])
            .unwrap();
    }
}

fn verify_err(dir: &Path) -> AuditError {
    let (node_id, keys) = identity();
    audit::verify(dir, &node_id, &keys).unwrap_err()
}

#[test]
fn a_modified_removed_reordered_or_cut_entry_is_detected() {
    let (dir, _flow) = base();
    let all = entries(dir.path());
    assert!(all.len() > 6);

    // Modified: one byte of entry 3.
    let case = copy_dir(dir.path());
    {
        let (_db, store) = store_of(case.path());
        let mut value = all[2].value.clone();
        let at = value.len() - 20;
        value[at] ^= 1;
        replace(&store, &all[2].key, Some(value));
    }
    assert!(matches!(verify_err(case.path()), AuditError::Entry { seq: 3, .. }));

    // Removed: entry 4.
    let case = copy_dir(dir.path());
    {
        let (_db, store) = store_of(case.path());
        replace(&store, &all[3].key, None);
    }
    assert!(matches!(verify_err(case.path()), AuditError::Gap { expected: 4, found: 5 }));

    // Reordered: entries 2 and 3 swapped.
    let case = copy_dir(dir.path());
    {
        let (_db, store) = store_of(case.path());
        replace(&store, &all[1].key, Some(all[2].value.clone()));
        replace(&store, &all[2].key, Some(all[1].value.clone()));
    }
    assert!(matches!(verify_err(case.path()), AuditError::Entry { seq: 2, .. }));

    // Cut off: the last entry removed. The signed head covers the last entry itself, so the
    // store no longer verifies, and the signer does not start on it either.
    let case = copy_dir(dir.path());
    {
        let (_db, store) = store_of(case.path());
        replace(&store, &all.last().unwrap().key, None);
    }
    assert!(
        matches!(verify_err(case.path()), AuditError::State(_)),
        "{:?}",
        verify_err(case.path())
    );
    assert!(start_with(case.path(), 9, Vec::new()).is_err());

    // The untouched trail still verifies.
    let (node_id, keys) = identity();
    assert_eq!(audit::verify(dir.path(), &node_id, &keys).unwrap().entries.len(), all.len());
}

#[test]
fn warnings_noted_while_a_request_is_handled_are_in_its_entry() {
    use warden_hsmd::durable::SealedRedbChannelStore;
    use warden_hsmd::signer::{ClientContext, Outcome};
    let dir = new_dir();
    let (node_id, keys) = identity();
    let store = SealedRedbChannelStore::open(
        dir.path(),
        &node_id,
        keys,
        &mut flow::Stream(warden_testkit::rng::TestRng::new(1)),
        Box::new(flow::FixedClock(1_700_000_000)),
    )
    .unwrap();
    let log = store.audit_log();
    let client = ClientContext { id: node_id, dbid: 0, permissions: permissions::ALL };
    let outcome = log.decide(&client, b"\x00\x01request", || {
        audit::note_warning("channel-delay-range");
        Ok(Outcome::Reply(b"reply".to_vec()))
    });
    assert!(outcome.is_ok());
    // Outside a request, a note is dropped.
    audit::note_warning("onchain-fee-range");
    log.flush().unwrap();
    drop((log, store));
    let (node_id, keys) = identity();
    let trail = audit::verify(dir.path(), &node_id, &keys).unwrap();
    assert_eq!(trail.entries.len(), 1);
    let e = &trail.entries[0];
    assert_eq!(e.outcome, AuditOutcome::Answered);
    assert_eq!(e.warned, vec!["channel-delay-range".to_string()]);
    assert_eq!(e.msg_type, Some(1));
    // A store holding the audit trail alone (no channel yet) starts again.
    drop(start_with(dir.path(), 2, Vec::new()).unwrap());
}
