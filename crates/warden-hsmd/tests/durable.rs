//! The durable channel store through `Signer::init` and `Signer::handle`: state survives a
//! restart and retries get the same bytes; a tampered, truncated or partly rolled-back store
//! makes `init` refuse with `node-state-stale`; nothing identifying is written in clear.
//!
//! Requests are built with `warden-testkit`'s channel model (the same builders the flow tests
//! use against the binary), and answered in process.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod flow;

use std::path::Path;

use bitcoin::hashes::Hash;
use flow::{copy_dir, new_dir, FixedClock, Flow, NoEntropy, Stream};
use warden_hsmd::durable::{store_id_bytes, AUDIT_PREFIX, HEAD_KEY, STORE_DIR};
use warden_hsmd::permissions;
use warden_hsmd::signer::{InitError, Signer, StoreChoice};
use warden_store::redb::{RedbDatabase, FILE_NAME};
use warden_store::{Op, Store, StoreId, Version};
use warden_testkit::flows::OUR_SECRET;
use warden_testkit::rng::TestRng;
use warden_testkit::{perms, Hsmd};
use warden_wire::msg::*;
use warden_wire::Message;

/// Starts the signer on `dir` with the default durable store (no replica).
fn start(dir: &Path, run: u64) -> Result<Signer, InitError> {
    let body = Hsmd::regtest_init().encode().unwrap();
    let store = StoreChoice::Durable {
        clock: Box::new(FixedClock(1_700_000_000 + run)),
        entropy: Box::new(Stream(TestRng::new(run))),
    };
    Signer::init_with(&body, dir, &mut NoEntropy, store).map(|(s, _)| s)
}

#[test]
fn state_survives_a_restart_and_retries_get_the_same_bytes() {
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start(dir.path(), 1).unwrap();
    flow.open(&s);
    flow.round(&s);
    flow.round(&s);
    let (revoke, expected_revoke) = flow.ch.revoke_commitment(flow.ch.local_num - 1).unwrap();
    let (ctx, body, reply) = flow.last.clone().unwrap();
    drop(s);

    let s = start(dir.path(), 2).unwrap();
    // The last request again (the reply was lost with the crash): the same bytes.
    assert_eq!(Flow::resend(&s, &ctx, &body), reply);
    // The revocation of an already revoked commitment answers as before.
    let revoke_ctx = flow.ctx(&s, perms::CHANNELD);
    let again = Flow::resend(&s, &revoke_ctx, &revoke.encode().unwrap());
    assert_eq!(again, expected_revoke.encode().unwrap());
    // And the channel goes on.
    flow.round(&s);
    flow.round(&s);
    drop(s);

    let s = start(dir.path(), 3).unwrap();
    flow.round(&s);
}

#[test]
fn a_store_without_channels_restarts() {
    let dir = new_dir();
    drop(start(dir.path(), 1).unwrap());
    drop(start(dir.path(), 2).unwrap());
    let mut flow = Flow::new();
    let s = start(dir.path(), 3).unwrap();
    let _: NewChannelReply = flow.call(&s, permissions::ALL, &flow.ch.new_channel());
    let forget = ForgetChannel { id: flow.ch.peer_id(), dbid: flow.ch.params().dbid };
    let _: ForgetChannelReply = flow.call(&s, permissions::ALL, &forget);
    drop(s);
    // The high-water mark of forgotten ids survives: the id is not handed out again.
    let s = start(dir.path(), 4).unwrap();
    let ctx = flow.ctx(&s, permissions::ALL);
    assert!(s.handle(&ctx, &flow.ch.new_channel().encode().unwrap()).is_err());
}

fn store_of(dir: &Path) -> (RedbDatabase, warden_store::redb::RedbStore) {
    let s = start(dir, 99).unwrap();
    let id = StoreId::new(store_id_bytes(&s.node_id())).unwrap();
    drop(s);
    let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
    let store = db.store(id);
    (db, store)
}

fn assert_stale(dir: &Path, what: &str) {
    match start(dir, 50) {
        Err(InitError::NodeState(e)) if e.is_stale() => {
            let text = InitError::NodeState(e).to_string();
            assert!(text.starts_with("node-state-stale: "), "{what}: {text}");
        }
        Err(e) => panic!("{what}: expected node-state-stale, got {e}"),
        Ok(_) => panic!("{what}: the signer started on a tampered store"),
    }
}

/// Replaces a record's bytes at the same version (two commits: the store's own rules forbid
/// rewriting a version, an attacker with the file does not ask).
fn overwrite(store: &impl Store, key: &[u8], version: Version, value: Vec<u8>) {
    store.commit(&[Op::Delete { key: key.to_vec(), expected_version: version }]).unwrap();
    store
        .commit(&[Op::Put {
            key: key.to_vec(),
            expected_version: Version::ABSENT,
            new_version: version,
            value,
        }])
        .unwrap();
}

/// A lightning directory with one channel after some rounds, and a copy of it taken earlier.
fn base() -> (tempfile::TempDir, tempfile::TempDir, Flow) {
    let dir = new_dir();
    let mut flow = Flow::new();
    let s = start(dir.path(), 1).unwrap();
    flow.open(&s);
    flow.round(&s);
    drop(s);
    let earlier = copy_dir(dir.path());
    let s = start(dir.path(), 2).unwrap();
    flow.round(&s);
    flow.round(&s);
    drop(s);
    (dir, earlier, flow)
}

#[test]
fn tampered_dropped_or_partly_rolled_back_state_refuses_to_start() {
    let (dir, earlier, _flow) = base();
    start(dir.path(), 3).unwrap();
    start(earlier.path(), 3).unwrap();

    // The audit entries are checked by `audit::verify` (tests/audit.rs), not at startup; but
    // the last one is covered by the signed head, like the records.
    let records = |d: &Path| {
        let (_db, store) = store_of(d);
        let all = store.list(&[]).unwrap();
        let last = all.iter().rev().find(|r| r.key.starts_with(AUDIT_PREFIX)).cloned();
        let mut covered: Vec<_> =
            all.into_iter().filter(|r| !r.key.starts_with(AUDIT_PREFIX)).collect();
        covered.extend(last);
        covered
    };
    let now = records(dir.path());
    let data: Vec<_> = now.iter().filter(|r| r.key != HEAD_KEY).collect();
    assert_eq!(
        data.len(),
        8,
        "the channel's six parts (main, setup, our commitment, the peer's two commitments, \
         the peer's secrets), the node record and the last audit entry"
    );

    // A flipped byte in each record, and in the head.
    for r in &now {
        for at in [0, 40, r.value.len() / 2, r.value.len() - 1] {
            let case = copy_dir(dir.path());
            {
                let (_db, store) = store_of(case.path());
                let mut value = r.value.clone();
                value[at] ^= 0x01;
                overwrite(&store, &r.key, r.version, value);
            }
            assert_stale(case.path(), &format!("flipped byte {at} of a record"));
        }
    }

    // A record deleted (the head, or a data record).
    for r in &now {
        let case = copy_dir(dir.path());
        {
            let (_db, store) = store_of(case.path());
            store
                .commit(&[Op::Delete { key: r.key.clone(), expected_version: r.version }])
                .unwrap();
        }
        assert_stale(case.path(), "a deleted record");
    }

    // One record rolled back to its earlier copy, the head kept (a partial rollback).
    let old = records(earlier.path());
    for r in old.iter().filter(|r| r.key != HEAD_KEY) {
        // (The earlier copy's last audit entry is an older entry of the current trail.)
        let Some(current) = now.iter().find(|n| n.key == r.key) else { continue };
        if current.value == r.value {
            continue;
        }
        let case = copy_dir(dir.path());
        {
            let (_db, store) = store_of(case.path());
            store
                .commit(&[Op::Delete { key: r.key.clone(), expected_version: current.version }])
                .unwrap();
            store
                .commit(&[Op::Put {
                    key: r.key.clone(),
                    expected_version: Version::ABSENT,
                    new_version: r.version,
                    value: r.value.clone(),
                }])
                .unwrap();
        }
        assert_stale(case.path(), "a record rolled back under the current head");
    }

    // The earlier head over the current records.
    let old_head = old.iter().find(|r| r.key == HEAD_KEY).unwrap();
    let case = copy_dir(dir.path());
    {
        let (_db, store) = store_of(case.path());
        let head = now.iter().find(|r| r.key == HEAD_KEY).unwrap();
        overwrite(&store, HEAD_KEY, head.version, old_head.value.clone());
    }
    assert_stale(case.path(), "an earlier head over the current records");
}

/// A rollback of the whole file to an earlier, self-consistent copy verifies locally: the
/// local store is the freshness anchor, and only remote replicas (a later step) can tell.
/// This test pins that known limit; the crash test pins that nothing acknowledged is lost
/// when the file itself is not replaced.
#[test]
fn a_whole_file_rollback_is_not_detectable_without_an_external_anchor() {
    let (dir, earlier, _flow) = base();
    std::fs::copy(
        earlier.path().join(STORE_DIR).join(FILE_NAME),
        dir.path().join(STORE_DIR).join(FILE_NAME),
    )
    .unwrap();
    assert!(start(dir.path(), 4).is_ok());
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn nothing_is_written_in_clear() {
    let (dir, _earlier, flow) = base();
    let bytes = std::fs::read(dir.path().join(STORE_DIR).join(FILE_NAME)).unwrap();
    // Control: redb keeps bytes verbatim, so the (public) store id is found in the file.
    let s = start(dir.path(), 5).unwrap();
    assert!(contains(&bytes, &store_id_bytes(&s.node_id())));
    drop(s);

    let peer = flow.ch.peer_id();
    assert!(!contains(&bytes, peer.as_bytes()), "peer id in clear");
    let txid = flow.ch.params().funding_outpoint.txid.to_byte_array();
    let mut reversed = txid;
    reversed.reverse();
    assert!(!contains(&bytes, &txid), "funding txid in clear");
    assert!(!contains(&bytes, &reversed), "funding txid (display order) in clear");
    // `holder_selected_delay` as the channel encoding writes it: type 8, length 2, value.
    let delay = flow.ch.params().local_to_self_delay.to_be_bytes();
    assert!(!contains(&bytes, &[8, 2, delay[0], delay[1]]), "to_self_delay record in clear");
    let name = format!("channel/{}", hex(peer.as_bytes()));
    assert!(!contains(&bytes, name.as_bytes()), "record name in clear");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

/// Through the binary: a tampered store makes hsmd answer `init` with `status_fail` naming
/// `node-state-stale`, and exit.
#[test]
fn the_binary_refuses_to_start_on_a_tampered_store() {
    let (dir, _earlier, _flow) = base();
    {
        let (_db, store) = store_of(dir.path());
        let head = store.get(HEAD_KEY).unwrap().unwrap();
        store
            .commit(&[Op::Delete { key: HEAD_KEY.to_vec(), expected_version: head.version }])
            .unwrap();
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_warden-hsmd"));
    let mut hsmd = Hsmd::spawn(bin, &OUR_SECRET).unwrap();
    let target = hsmd.dir().join(STORE_DIR);
    std::fs::create_dir(&target).unwrap();
    std::fs::copy(dir.path().join(STORE_DIR).join(FILE_NAME), target.join(FILE_NAME)).unwrap();
    match hsmd.init(&Hsmd::regtest_init()) {
        Err(warden_testkit::HsmdError::Refused { failure: Some(desc), .. }) => {
            assert!(desc.contains("node-state-stale: "), "{desc}");
        }
        other => panic!("hsmd started on a tampered store: {other:?}"),
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while hsmd.is_running() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(!hsmd.is_running());
}
