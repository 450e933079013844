//! One channel's lightningd side, answered in process by a `Signer` on the durable store: the
//! helpers of `tests/durable.rs`, `tests/replica.rs` and `tests/audit.rs` (requests built with
//! `warden-testkit`'s channel model).
#![allow(dead_code, reason = "each test file uses part of the helpers")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::path::Path;

use warden_core::rng::EntropySource;
use warden_core::seal::WardenKeys;
use warden_core::tx::ChannelType;
use warden_hsmd::durable::{Clock, STORE_DIR};
use warden_hsmd::permissions;
use warden_hsmd::replica::Replica;
use warden_hsmd::signer::{ClientContext, InitError, Outcome, Signer, StoreChoice};
use warden_store::redb::FILE_NAME;
use warden_testkit::flows::{random_changes, OUR_SECRET, PEER_SECRET};
pub use warden_testkit::rng::NoEntropy;
use warden_testkit::rng::TestRng;
use warden_testkit::{perms, Channel, ChannelParams, Funder, Hsmd, Who};
use warden_wire::msg::*;
use warden_wire::{Message, NodeId};

/// Deterministic nonce-seed entropy (a different stream per start).
pub struct Stream(pub TestRng);
impl EntropySource for Stream {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0.next_u64() as u8;
        }
    }
}

pub struct FixedClock(pub u64);
impl Clock for FixedClock {
    fn now_unix_secs(&self) -> u64 {
        self.0
    }
}

/// Starts the signer on `dir` with `replicas` (none: the local file alone).
pub fn start_with(dir: &Path, run: u64, replicas: Vec<Replica>) -> Result<Signer, InitError> {
    let body = Hsmd::regtest_init().encode().unwrap();
    let store = StoreChoice::Replicated {
        clock: Box::new(FixedClock(1_700_000_000 + run)),
        entropy: Box::new(Stream(TestRng::new(run))),
        replicas,
    };
    Signer::init_with(&body, dir, &mut NoEntropy, store).map(|(s, _)| s)
}

pub fn new_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
    dir
}

/// A copy of a lightning directory (the secret and the store file).
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    std::fs::copy(from.join("hsm_secret"), to.path().join("hsm_secret")).unwrap();
    std::fs::create_dir(to.path().join(STORE_DIR)).unwrap();
    copy_store(from, to.path());
    to
}

/// Copies the store file of `from` over the one of `to` (a whole-file rollback when `from` is
/// an older copy).
pub fn copy_store(from: &Path, to: &Path) {
    std::fs::copy(from.join(STORE_DIR).join(FILE_NAME), to.join(STORE_DIR).join(FILE_NAME))
        .unwrap();
}

/// The node id and Warden keys of `OUR_SECRET`.
pub fn identity() -> (NodeId, WardenKeys) {
    let dir = new_dir();
    let body = Hsmd::regtest_init().encode().unwrap();
    let (s, _) = Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
    let seed = warden_core::secret::Seed::from_legacy(OUR_SECRET);
    (s.node_id(), WardenKeys::derive(&seed).unwrap())
}

/// The lightningd side of one channel, answered in process.
pub struct Flow {
    pub ch: Channel,
    rng: TestRng,
    /// The last request sent and its reply.
    pub last: Option<(ClientContext, Vec<u8>, Vec<u8>)>,
}

impl Flow {
    pub fn new() -> Flow {
        let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
        Flow {
            ch: Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap(),
            rng: TestRng::new(7),
            last: None,
        }
    }

    pub fn ctx(&self, s: &Signer, permissions: warden_wire::Permissions) -> ClientContext {
        match permissions == permissions::ALL {
            true => ClientContext { id: s.node_id(), dbid: 0, permissions },
            false => {
                ClientContext { id: self.ch.peer_id(), dbid: self.ch.params().dbid, permissions }
            }
        }
    }

    pub fn call<M: Message, R: Message>(
        &mut self,
        s: &Signer,
        permissions: warden_wire::Permissions,
        m: &M,
    ) -> R {
        let ctx = self.ctx(s, permissions);
        let body = m.encode().unwrap();
        let reply = match s.handle(&ctx, &body).unwrap_or_else(|e| panic!("{}: {e}", M::NAME)) {
            Outcome::Reply(r) => r,
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        };
        self.last = Some((ctx, body, reply.clone()));
        R::decode(&reply).unwrap()
    }

    /// Sends `body` again and returns the raw reply.
    pub fn resend(s: &Signer, ctx: &ClientContext, body: &[u8]) -> Vec<u8> {
        match s.handle(ctx, body).unwrap() {
            Outcome::Reply(r) => r,
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    pub fn open(&mut self, s: &Signer) {
        let _: NewChannelReply = self.call(s, permissions::ALL, &self.ch.new_channel());
        let _: SetupChannelReply = self.call(s, perms::OPENINGD, &self.ch.setup_channel());
        let (sign, _) = self.ch.sign_remote_commitment(0, &self.ch.remote).unwrap();
        let _: SignTxReply = self.call(s, perms::OPENINGD, &sign.request);
        let (validate, point) = self.ch.validate_commitment(0, &self.ch.local).unwrap();
        let reply: ValidateCommitmentTxReply = self.call(s, perms::OPENINGD, &validate);
        self.ch.check_validate_reply(&reply, &point).unwrap();
    }

    /// One round the peer starts: we validate and revoke, sign theirs, take their revocation.
    pub fn round(&mut self, s: &Signer) {
        let changes = random_changes(&mut self.ch, &mut self.rng, Who::Them);
        self.round_with(s, &changes);
    }

    /// Settles every HTLC in flight (each fulfilled) in one round.
    pub fn settle(&mut self, s: &Signer) {
        let changes: Vec<warden_testkit::Change> =
            self.ch.local.htlcs.iter().map(|h| warden_testkit::Change::Fulfill(h.id)).collect();
        if !changes.is_empty() {
            self.round_with(s, &changes);
        }
    }

    /// One round of `changes`, in the order of [`Flow::round`].
    pub fn round_with(&mut self, s: &Signer, changes: &[warden_testkit::Change]) {
        let changes = changes.to_vec();
        let local_next = self.ch.local.apply(&changes).unwrap();
        let remote_next = self.ch.remote.apply(&changes).unwrap();
        let n = self.ch.local_num + 1;
        let (validate, point) = self.ch.validate_commitment(n, &local_next).unwrap();
        let reply: ValidateCommitmentTxReply = self.call(s, perms::CHANNELD, &validate);
        self.ch.check_validate_reply(&reply, &point).unwrap();
        let (revoke, expected) = self.ch.revoke_commitment(n - 1).unwrap();
        let reply: RevokeCommitmentTxReply = self.call(s, perms::CHANNELD, &revoke);
        assert_eq!(reply, expected);
        self.ch.local = local_next;
        self.ch.local_num = n;

        let m = self.ch.remote_num + 1;
        let (sign, built) = self.ch.sign_remote_commitment(m, &remote_next).unwrap();
        let _: SignTxReply = self.call(s, perms::CHANNELD, &sign.request);
        for h in self.ch.sign_remote_htlc_txs(&built).unwrap() {
            let _: SignTxReply = self.call(s, perms::CHANNELD, &h.request);
        }
        let old = self.ch.remote_num;
        let revocation = self.ch.validate_revocation(old).unwrap();
        let _: ValidateRevocationReply = self.call(s, perms::CHANNELD, &revocation);
        let revoked = std::mem::replace(&mut self.ch.remote, remote_next);
        self.ch.revoked_remote = Some((old, revoked));
        self.ch.remote_num = old + 1;
    }

    /// `sign_commitment_tx` of our current commitment (a force close), as the master sends it.
    pub fn force_close_request(&self, s: &Signer) -> (ClientContext, Vec<u8>) {
        let (sign, _) = self.ch.sign_commitment().unwrap();
        (self.ctx(s, permissions::ALL), sign.request.encode().unwrap())
    }
}

/// A database of its own on warden-store's shared throwaway PostgreSQL server (named after the
/// test binary, the test and this process).
pub struct Db {
    /// Its connection URL.
    pub url: String,
    _server: std::sync::Arc<warden_store::test_support::PgServer>,
}

impl Db {
    /// `None` where no PostgreSQL is installed (a test then says it skipped; CI has one).
    pub fn new(name: &str) -> Option<Db> {
        let server = warden_store::test_support::server()?;
        let name = format!("{}_{name}_{}", env!("CARGO_CRATE_NAME"), std::process::id());
        let url = server.fresh_database(&name).unwrap();
        Some(Db { url, _server: server })
    }

    /// The database as the signer's replica.
    pub fn replica(&self) -> Replica {
        Replica::postgres("test-pg", &self.url, &identity().0).unwrap()
    }

    /// The replica's store, read and written behind the signer's back.
    pub fn raw(&self) -> (warden_store::postgres::PgDatabase, warden_store::postgres::PgStore) {
        let db = warden_store::postgres::PgDatabase::connect(&self.url).unwrap();
        let store = db.store(store_id(&identity().0));
        (db, store)
    }

    /// Every record of the replica.
    pub fn records(&self) -> Vec<warden_store::Record> {
        use warden_store::Store;
        self.raw().1.list(&[]).unwrap()
    }
}

/// Every record of the local redb store in `dir`.
pub fn local_records(dir: &Path) -> Vec<warden_store::Record> {
    use warden_store::Store;
    let db = warden_store::redb::RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
    let store = db.store(store_id(&identity().0));
    store.list(&[]).unwrap()
}

fn store_id(node_id: &NodeId) -> warden_store::StoreId {
    warden_store::StoreId::new(warden_hsmd::durable::store_id_bytes(node_id)).unwrap()
}

/// Flips one byte of a record's value on a replica, behind the signer's back (delete + put:
/// the store's own rules forbid rewriting a version; the storage server does not ask).
pub fn tamper(store: &warden_store::postgres::PgStore, r: &warden_store::Record) {
    use warden_store::{Op, Store, Version};
    let mut value = r.value.clone();
    let at = value.len() / 2;
    value[at] ^= 1;
    store.commit(&[Op::Delete { key: r.key.clone(), expected_version: r.version }]).unwrap();
    store
        .commit(&[Op::Put {
            key: r.key.clone(),
            expected_version: Version::ABSENT,
            new_version: r.version,
            value,
        }])
        .unwrap();
}
