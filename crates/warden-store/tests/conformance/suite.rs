//! The conformance suite every storage backend must pass.
//!
//! Each case is a generic function over a [`Backend`] (a factory that opens, and reopens, one
//! database). Cases use fresh store ids, so they can share a database.

use std::io::{BufRead as _, Write as _};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use warden_store::{BatchError, CommitError, ConflictError, Op, Record, Store, StoreId, Version};

/// Opens one database, any number of times (each `open` after the previous handle was dropped
/// is a reopen that must see every acknowledged batch).
pub trait Backend: Sync {
    /// An open database.
    type Db: Send + Sync;
    /// A handle bound to one store id.
    type S: Store;
    /// Opens (or reopens) the database.
    fn open(&self) -> Self::Db;
    /// Returns the handle for `id` in `db`.
    fn store(&self, db: &Self::Db, id: StoreId) -> Self::S;
    /// Describes the database for a child process (see [`crash_child`]).
    fn child_spec(&self) -> String;
}

/// The environment variable that turns the test binary into a crash child.
pub const CHILD_SPEC_ENV: &str = "WARDEN_STORE_CRASH_CHILD_SPEC";
/// The store id (hex) the crash child writes under.
pub const CHILD_ID_ENV: &str = "WARDEN_STORE_CRASH_CHILD_ID";

/// Returns a store id no other case (nor an earlier run against the same server) uses.
pub fn fresh_id(case: &str) -> StoreId {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let id = format!("{case}/{}/{nanos}/{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    StoreId::new(id.into_bytes().into_iter().take(64).collect::<Vec<u8>>()).unwrap()
}

pub fn put(key: &[u8], expected: u64, new: u64, value: &[u8]) -> Op {
    Op::Put {
        key: key.to_vec(),
        expected_version: Version::new(expected),
        new_version: Version::new(new),
        value: value.to_vec(),
    }
}

pub fn delete(key: &[u8], expected: u64) -> Op {
    Op::Delete { key: key.to_vec(), expected_version: Version::new(expected) }
}

/// Reads `key` as `(version, value)`.
fn read(s: &impl Store, key: &[u8]) -> Option<(u64, Vec<u8>)> {
    s.get(key).unwrap().map(|v| (v.version.get(), v.value))
}

fn conflict(r: Result<(), CommitError>) -> ConflictError {
    match r {
        Err(CommitError::Conflict(c)) => c,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn invalid(r: Result<(), CommitError>) -> BatchError {
    match r {
        Err(CommitError::Invalid(e)) => e,
        other => panic!("expected an invalid batch, got {other:?}"),
    }
}

/// Puts, gets and prefix listings round-trip, in key order; empty batches do nothing.
pub fn get_put_list<B: Backend>(b: &B) {
    let db = b.open();
    let s = b.store(&db, fresh_id("get_put_list"));
    assert_eq!(read(&s, b"k"), None);
    assert_eq!(s.list(b"").unwrap(), vec![]);
    s.commit(&[]).unwrap();
    let big = vec![0xab; 300_000];
    s.commit(&[
        put(b"chan/2", 0, 1, b"two"),
        put(b"chan/1", 0, 5, b"one"),
        put(b"head", 0, 1, &big),
        put(&[0xff, 0xff, 1], 0, 1, b"ff"),
        put(&[0xff, 0xff], 0, 1, b"ff-short"),
        put(b"chan", 0, 1, b"no slash"),
    ])
    .unwrap();
    assert_eq!(read(&s, b"chan/1"), Some((5, b"one".to_vec())));
    assert_eq!(read(&s, b"head"), Some((1, big)));
    let chans = s.list(b"chan/").unwrap();
    assert_eq!(
        chans,
        vec![
            Record { key: b"chan/1".to_vec(), version: Version::new(5), value: b"one".to_vec() },
            Record { key: b"chan/2".to_vec(), version: Version::new(1), value: b"two".to_vec() },
        ]
    );
    let keys = |p: &[u8]| s.list(p).unwrap().into_iter().map(|r| r.key).collect::<Vec<_>>();
    assert_eq!(keys(&[0xff, 0xff]), vec![vec![0xff, 0xff], vec![0xff, 0xff, 1]]);
    assert_eq!(keys(b"chan").len(), 3);
    assert_eq!(keys(b"").len(), 6);
    assert_eq!(keys(b"zzz"), Vec::<Vec<u8>>::new());
}

/// A put's new version must exceed its expected version; versions may skip.
pub fn versions_strictly_increase<B: Backend>(b: &B) {
    let db = b.open();
    let s = b.store(&db, fresh_id("versions_increase"));
    assert!(matches!(
        invalid(s.commit(&[put(b"k", 0, 0, b"x")])),
        BatchError::VersionNotIncreasing { .. }
    ));
    s.commit(&[put(b"k", 0, 1, b"v1")]).unwrap();
    assert!(matches!(
        invalid(s.commit(&[put(b"k", 1, 1, b"x")])),
        BatchError::VersionNotIncreasing { .. }
    ));
    assert!(matches!(
        invalid(s.commit(&[put(b"k", 1, 0, b"x")])),
        BatchError::VersionNotIncreasing { .. }
    ));
    s.commit(&[put(b"k", 1, 7, b"v7")]).unwrap();
    // An old version is no longer accepted as the expected one.
    let c = conflict(s.commit(&[put(b"k", 1, 8, b"x")]));
    assert_eq!((c.expected, c.found), (Version::new(1), Version::new(7)));
    s.commit(&[put(b"k", 7, Version::MAX.get(), b"max")]).unwrap();
    assert!(matches!(
        invalid(s.commit(&[put(b"k", Version::MAX.get(), Version::MAX.get() + 1, b"x")])),
        BatchError::VersionOutOfRange { .. }
    ));
    assert_eq!(read(&s, b"k"), Some((Version::MAX.get(), b"max".to_vec())));
}

/// A write whose expected version is stale is rejected, names the key, and changes nothing.
pub fn conflicting_write_rejected<B: Backend>(b: &B) {
    let db = b.open();
    let s = b.store(&db, fresh_id("conflict"));
    s.commit(&[put(b"k", 0, 1, b"v1")]).unwrap();
    let c = conflict(s.commit(&[put(b"k", 0, 2, b"again")]));
    assert_eq!(c.key, b"k".to_vec());
    assert_eq!((c.expected, c.found), (Version::ABSENT, Version::new(1)));
    let c = conflict(s.commit(&[put(b"k", 2, 3, b"ahead")]));
    assert_eq!((c.expected, c.found), (Version::new(2), Version::new(1)));
    let c = conflict(s.commit(&[put(b"absent", 4, 5, b"x")]));
    assert_eq!((c.key.as_slice(), c.found), (&b"absent"[..], Version::ABSENT));
    assert_eq!(read(&s, b"k"), Some((1, b"v1".to_vec())));
    assert_eq!(read(&s, b"absent"), None);
}

/// A batch with one conflicting key (first, middle or last) applies none of its writes.
pub fn batch_all_or_nothing<B: Backend>(b: &B) {
    let db = b.open();
    let s = b.store(&db, fresh_id("all_or_nothing"));
    s.commit(&[put(b"a", 0, 1, b"a1"), put(b"b", 0, 1, b"b1"), put(b"c", 0, 1, b"c1")]).unwrap();
    let before = s.list(b"").unwrap();
    let bad_at = |i: usize| {
        let mut ops = vec![
            put(b"a", 1, 2, b"a2"),
            delete(b"b", 1),
            put(b"c", 1, 2, b"c2"),
            put(b"new", 0, 1, b"n1"),
        ];
        ops[i] = match i {
            0 => put(b"a", 9, 10, b"stale"),
            1 => delete(b"b", 3),
            2 => put(b"c", 0, 2, b"as-if-absent"),
            _ => unreachable!("only the first three operations are made to conflict"),
        };
        ops
    };
    for (i, key) in [(0, &b"a"[..]), (1, b"b"), (2, b"c")] {
        let c = conflict(s.commit(&bad_at(i)));
        assert_eq!(c.key, key.to_vec(), "the conflict names the conflicting key");
        assert_eq!(s.list(b"").unwrap(), before, "batch with conflict at {i} changed state");
    }
    // A malformed batch changes nothing either.
    invalid(s.commit(&[put(b"a", 1, 2, b"a2"), put(b"a", 2, 3, b"dup")]));
    assert_eq!(s.list(b"").unwrap(), before);
    // And the good batch goes through whole.
    s.commit(&[
        put(b"a", 1, 2, b"a2"),
        delete(b"b", 1),
        put(b"c", 1, 2, b"c2"),
        put(b"new", 0, 1, b"n1"),
    ])
    .unwrap();
    assert_eq!(read(&s, b"a"), Some((2, b"a2".to_vec())));
    assert_eq!(read(&s, b"b"), None);
    assert_eq!(read(&s, b"c"), Some((2, b"c2".to_vec())));
    assert_eq!(read(&s, b"new"), Some((1, b"n1".to_vec())));
}

/// Deletes need the current version; a deleted key is absent and can be created again.
pub fn deletes<B: Backend>(b: &B) {
    let db = b.open();
    let s = b.store(&db, fresh_id("deletes"));
    s.commit(&[put(b"k", 0, 3, b"v3")]).unwrap();
    let c = conflict(s.commit(&[delete(b"k", 2)]));
    assert_eq!((c.expected, c.found), (Version::new(2), Version::new(3)));
    assert!(matches!(invalid(s.commit(&[delete(b"k", 0)])), BatchError::DeleteAbsent { .. }));
    let c = conflict(s.commit(&[delete(b"gone", 1)]));
    assert_eq!(c.found, Version::ABSENT);
    s.commit(&[delete(b"k", 3)]).unwrap();
    assert_eq!(read(&s, b"k"), None);
    assert_eq!(s.list(b"").unwrap(), vec![]);
    conflict(s.commit(&[delete(b"k", 3)]));
    conflict(s.commit(&[put(b"k", 3, 4, b"x")]));
    s.commit(&[put(b"k", 0, 4, b"v4")]).unwrap();
    assert_eq!(read(&s, b"k"), Some((4, b"v4".to_vec())));
}

/// After the handles are dropped (no clean shutdown) and the database reopened, every
/// acknowledged batch is there.
pub fn reopen_sees_last_batch<B: Backend>(b: &B) {
    let id = fresh_id("reopen");
    {
        let db = b.open();
        let s = b.store(&db, id.clone());
        for v in 1..=20u64 {
            s.commit(&[
                put(b"head", v - 1, v, &v.to_be_bytes()),
                put(&v.to_be_bytes(), 0, 1, b"x"),
            ])
            .unwrap();
        }
        s.commit(&[delete(&3u64.to_be_bytes(), 1)]).unwrap();
    }
    let db = b.open();
    let s = b.store(&db, id);
    assert_eq!(read(&s, b"head"), Some((20, 20u64.to_be_bytes().to_vec())));
    assert_eq!(s.list(&[0]).unwrap().len(), 19);
    // And the reopened store keeps enforcing versions.
    conflict(s.commit(&[put(b"head", 19, 21, b"x")]));
    s.commit(&[put(b"head", 20, 21, b"y")]).unwrap();
}

/// Two store ids in one database never see nor touch each other's keys.
pub fn store_ids_isolated<B: Backend>(b: &B) {
    let db = b.open();
    let (ida, idb) = (fresh_id("isolated-a"), fresh_id("isolated-b"));
    let (a, bb) = (b.store(&db, ida.clone()), b.store(&db, idb.clone()));
    assert_eq!(a.store_id(), &ida);
    a.commit(&[put(b"k", 0, 1, b"from a"), put(b"only-a", 0, 1, b"x")]).unwrap();
    assert_eq!(read(&bb, b"k"), None);
    assert_eq!(bb.list(b"").unwrap(), vec![]);
    // B's view of "k" is absent: it creates its own, and A's is not a conflict for it.
    conflict(bb.commit(&[put(b"k", 1, 2, b"x")]));
    bb.commit(&[put(b"k", 0, 5, b"from b")]).unwrap();
    assert_eq!(read(&a, b"k"), Some((1, b"from a".to_vec())));
    assert_eq!(read(&bb, b"k"), Some((5, b"from b".to_vec())));
    a.commit(&[delete(b"k", 1)]).unwrap();
    assert_eq!(read(&bb, b"k"), Some((5, b"from b".to_vec())));
    assert_eq!(a.list(b"").unwrap().len(), 1);
    assert_eq!(bb.list(b"").unwrap().len(), 1);
    // A store id that is a prefix of another does not see the other's keys.
    let short = fresh_id("p");
    let mut long = short.as_bytes().to_vec();
    long.push(b'k');
    let (s, l) = (b.store(&db, short), b.store(&db, StoreId::new(long).unwrap()));
    l.commit(&[put(b"x", 0, 1, b"long")]).unwrap();
    assert_eq!(s.list(b"").unwrap(), vec![]);
    assert_eq!(read(&s, b"x"), None);
}

/// Of concurrent committers expecting the same version of a key, exactly one wins.
pub fn concurrent_committers_one_wins<B: Backend>(b: &B) {
    const THREADS: usize = 6;
    const ROUNDS: u64 = 15;
    let db = b.open();
    let id = fresh_id("concurrent");
    let stores: Vec<B::S> = (0..THREADS).map(|_| b.store(&db, id.clone())).collect();
    for round in 0..ROUNDS {
        let barrier = Barrier::new(THREADS);
        let results: Vec<Result<(), CommitError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = stores
                .iter()
                .enumerate()
                .map(|(t, s)| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        // Every thread also writes a key of its own: none of it may land
                        // unless the thread won.
                        s.commit(&[
                            put(b"contended", round, round + 1, &[t as u8]),
                            put(format!("own/{t}/{round}").as_bytes(), 0, 1, b"x"),
                        ])
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let winners: Vec<usize> =
            results.iter().enumerate().filter(|(_, r)| r.is_ok()).map(|(t, _)| t).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        for r in &results {
            if let Err(e) = r {
                let c = match e {
                    CommitError::Conflict(c) => c,
                    other => panic!("round {round}: loser failed otherwise: {other:?}"),
                };
                assert_eq!(c.key, b"contended".to_vec());
            }
        }
        let s = &stores[0];
        assert_eq!(read(s, b"contended"), Some((round + 1, vec![winners[0] as u8])));
        let own = s.list(b"own/").unwrap();
        assert_eq!(own.len() as u64, round + 1, "only the winners' own keys landed");
    }
}

/// Number of batches the crash child tries to write (it is aborted long before).
const CHILD_BATCHES: u64 = 1_000_000;

/// Runs in a child process: commits batches `{a, b} -> version i` and reports each
/// acknowledged one on stdout, while another thread aborts the process at a random moment.
pub fn crash_child<B: Backend>(b: &B, id: StoreId) {
    let db = b.open();
    let s = b.store(&db, id);
    let acked = Arc::new(AtomicU64::new(0));
    let watcher = Arc::clone(&acked);
    std::thread::spawn(move || {
        let jitter = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let target = 20 + u64::from(jitter % 80);
        while watcher.load(Ordering::SeqCst) < target {
            std::thread::sleep(Duration::from_micros(200));
        }
        std::thread::sleep(Duration::from_micros(u64::from(jitter % 3_000)));
        std::process::abort();
    });
    let mut out = std::io::stdout().lock();
    for i in 1..=CHILD_BATCHES {
        let value = [i.to_be_bytes().as_slice(), &[0x5a; 4096]].concat();
        s.commit(&[put(b"a", i - 1, i, &value), put(b"b", i - 1, i, &value)]).unwrap();
        writeln!(out, "acked {i}").unwrap();
        out.flush().unwrap();
        acked.store(i, Ordering::SeqCst);
    }
}

/// A child process writes batches and is aborted mid-way; on reopening, every batch it
/// acknowledged is there and no batch is there in part.
pub fn crash_mid_batches<B: Backend>(b: &B, child_test: &str) {
    let id = fresh_id("crash");
    let hex: String = id.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", child_test, "--nocapture", "--test-threads=1"])
        .env(CHILD_SPEC_ENV, b.child_spec())
        .env(CHILD_ID_ENV, hex)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut last_acked = 0;
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        if let Some(n) = line.unwrap().strip_prefix("acked ") {
            last_acked = n.parse().unwrap();
        }
    }
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(!status.success(), "the child was to be aborted: {status}\n{stderr}");
    assert!(last_acked >= 20, "the child acknowledged only {last_acked} batches\n{stderr}");
    let db = b.open();
    let s = b.store(&db, id);
    // A server backend (PostgreSQL) may still be finishing the COMMIT the killed child sent
    // just before it died: wait until what is stored stops changing before judging it.
    let mut seen = read(&s, b"a").unwrap().0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = read(&s, b"a").unwrap().0;
        if now == seen {
            break;
        }
        seen = now;
    }
    let (va, a) = read(&s, b"a").unwrap();
    let (vb, bv) = read(&s, b"b").unwrap();
    assert_eq!(va, vb, "a batch landed in part");
    assert_eq!(a, bv);
    assert!(va >= last_acked, "acknowledged batch {last_acked} lost (found {va})");
    assert!(va <= last_acked + 1, "found batch {va}, only {last_acked} acknowledged");
    assert_eq!(a.get(..8).unwrap(), va.to_be_bytes().as_slice());
    // The store keeps working from there.
    s.commit(&[put(b"a", va, va + 1, b"after"), put(b"b", vb, vb + 1, b"after")]).unwrap();
}
