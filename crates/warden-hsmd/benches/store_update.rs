#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "bench binary"
)]
//! The O(1) benchmark of the durable channel store: one channel update with a durable commit
//! (encode + seal the channel record, head update, one fsync'd redb batch — what warden-hsmd
//! does per request) when the store already holds 1, 100, 1,000 and 10,000 channels.
//!
//! Run: `cargo bench -p warden-hsmd --bench store_update`
//!
//! The store lives in a fresh directory under the system temp dir (`$TMPDIR`, else `/tmp`), or
//! under `$WARDEN_BENCH_DIR` if set; the filesystem type is printed (tmpfs would hide the fsync
//! cost). Each size gets its own store file, populated through `ChannelStore::persist` (one
//! batch per channel, as `setup_channel` makes it). Then in each store one channel goes through
//! real state transitions (sign the peer's commitment, validate ours, revoke ours, take the
//! peer's revocation, round after round) and only the `persist` of each new state is timed;
//! the timed updates go round the stores (one update in each size, then the next), so that the
//! disk's varying load falls on all sizes alike and the ratios compare like with like.
//!
//! Every timed `persist` runs under `AuditLog::decide`, as `Signer::handle` runs it, so its
//! batch holds what a real update writes: the channel's records, the signed head, the
//! request's audit entry (and, in the older layout, the audit tip). Bytes per update are those
//! of that batch, as the store counts them (`SealedRedbChannelStore::last_batch_bytes`: keys
//! and values of every put), by kind of record.
//!
//! `WARDEN_BENCH_SIZES` (comma-separated) replaces the store sizes, e.g. `1,100` for a quick
//! run; `WARDEN_BENCH_SIZES=0` runs the bytes table only.

use std::path::Path;
use std::time::{Duration, Instant};

use bitcoin::hashes::{sha256, Hash};
use bitcoin::{OutPoint, Txid};
use warden_core::channel::encoding::encode_channel;
use warden_core::channel::{
    ChannelSetup, ChannelSlot, ChannelState, CommitmentContent, HtlcInfo, HtlcSide,
    SignedCounterpartyCommitment, SignedHolderCommitment,
};
use warden_core::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, NodeId as CoreNodeId,
    PaymentBasepoint, PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::rng::EntropySource;
use warden_core::seal::{seal_record, RecordVersion, StoreId as SealStoreId, WardenKeys};
use warden_core::secp256k1::{All, PublicKey, Secp256k1, SecretKey};
use warden_core::secret::Seed;
use warden_core::shachain::generate_from_seed;
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};
use warden_hsmd::audit::AuditLog;
use warden_hsmd::channels::ChannelStore;
use warden_hsmd::durable::{
    channel_record_name, store_id_bytes, BatchBytes, Clock, SealedRedbChannelStore, HEAD_KEY,
    STORE_DIR,
};
use warden_hsmd::signer::{ClientContext, Outcome};
use warden_store::redb::RedbDatabase;
use warden_store::{Store, StoreId};
use warden_wire::NodeId;

/// Store sizes (channels already in the store), all in one run.
const SIZES: [usize; 4] = [1, 100, 1_000, 10_000];
/// Timed updates per size (after the warm-up).
const UPDATES: usize = 200;
/// Untimed updates before the timed ones.
const WARMUP: usize = 20;
/// HTLCs in every commitment of the timed channel and of the populated ones.
const HTLCS: usize = 3;
/// Update rounds each populated channel went through before it was stored.
const POPULATE_ROUNDS: u64 = 5;
/// HTLC counts and round counts of the bytes-only table.
const BYTES_HTLCS: [usize; 3] = [0, HTLCS, 30];
const BYTES_ROUNDS: [u64; 2] = [POPULATE_ROUNDS, 4_096];
/// The goal: under 2 KiB plus 100 bytes per HTLC.
const GOAL_BASE: usize = 2_048;
const GOAL_PER_HTLC: usize = 100;
/// Obfuscated store keys are 32 bytes.
const OBFUSCATED_KEY_LEN: usize = 32;

const PEER_SEED: [u8; 32] = [0x42; 32];

struct FixedClock;
impl Clock for FixedClock {
    fn now_unix_secs(&self) -> u64 {
        1_700_000_000
    }
}

/// Deterministic entropy (SplitMix64): the nonce seed and the size-check nonces.
struct SplitMix(u64);
impl EntropySource for SplitMix {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            *b = (z ^ (z >> 31)) as u8;
        }
    }
}

fn pk(secp: &Secp256k1<All>, b: u8) -> PublicKey {
    PublicKey::from_secret_key(secp, &SecretKey::from_slice(&[b; 32]).unwrap())
}

fn setup(secp: &Secp256k1<All>, funding: u64) -> ChannelSetup {
    ChannelSetup {
        is_outbound: true,
        channel_value: Sat(1_000_000),
        push_value: Msat(0),
        funding_outpoint: OutPoint {
            txid: Txid::from_byte_array(sha256::Hash::hash(&funding.to_be_bytes()).to_byte_array()),
            vout: 0,
        },
        holder_selected_delay: 144,
        holder_shutdown_script: None,
        holder_shutdown_wallet_index: None,
        counterparty_basepoints: Basepoints {
            revocation: RevocationBasepoint(pk(secp, 1)),
            payment: PaymentBasepoint(pk(secp, 2)),
            htlc: HtlcBasepoint(pk(secp, 3)),
            delayed_payment: DelayedPaymentBasepoint(pk(secp, 4)),
        },
        counterparty_funding_pubkey: FundingPubkey(pk(secp, 5)),
        counterparty_selected_delay: 144,
        counterparty_shutdown_script: None,
        // option_anchors_zero_fee_htlc_tx (bit 22) and option_static_remotekey (bit 12).
        channel_type_features: vec![0x40, 0x10, 0x00],
    }
}

fn hash32(tag: u64, n: u64) -> [u8; 32] {
    let mut data = tag.to_be_bytes().to_vec();
    data.extend_from_slice(&n.to_be_bytes());
    sha256::Hash::hash(&data).to_byte_array()
}

/// Commitment `n` with `htlcs` HTLCs; the content changes with `n`.
fn content(n: u64, htlcs: usize) -> CommitmentContent {
    let to_holder = 900_000 - (n % 1_000) * 10;
    CommitmentContent {
        number: CommitmentNumber::new(n).unwrap(),
        txid: Txid::from_byte_array(hash32(1, n)),
        feerate: FeeratePerKw(253),
        htlcs: (0..htlcs)
            .map(|i| HtlcInfo {
                offered_by: if i % 2 == 0 { HtlcSide::Holder } else { HtlcSide::Counterparty },
                amount: Msat(1_000_000 + i as u64 * 1_000 + n),
                payment_hash: hash32(2, i as u64),
                cltv_expiry: 800_000 + i as u32,
            })
            .collect(),
        htlc_vouts: (0..htlcs as u32).map(|i| i + 2).collect(),
        to_holder: Sat(to_holder),
        to_counterparty: Sat(1_000_000 - to_holder - 2 * 330),
    }
}

fn holder(n: u64, htlcs: usize) -> SignedHolderCommitment {
    SignedHolderCommitment {
        content: content(n, htlcs),
        counterparty_sig: hash32(3, n).repeat(2).try_into().unwrap(),
        htlc_sigs: (0..htlcs as u64)
            .map(|i| hash32(4, n ^ (i << 32)).repeat(2).try_into().unwrap())
            .collect(),
    }
}

fn peer_secret(n: u64) -> [u8; 32] {
    generate_from_seed(&PEER_SEED, (1 << 48) - 1 - n)
}

fn counterparty(secp: &Secp256k1<All>, n: u64, htlcs: usize) -> SignedCounterpartyCommitment {
    let point = PublicKey::from_secret_key(secp, &SecretKey::from_slice(&peer_secret(n)).unwrap());
    SignedCounterpartyCommitment { content: content(n, htlcs), point: PerCommitmentPoint(point) }
}

/// A channel's state machine, driven one transition at a time as channeld drives it.
struct Driver {
    state: ChannelState,
    htlcs: usize,
    /// Our commitments' HTLCs differ from the peer's of the same number (other amounts), so
    /// that ours cannot name the peer's HTLC list and writes its own (the worst case).
    apart: bool,
    /// The round in progress (commitment number being moved to).
    n: u64,
    /// The step of that round (0..4).
    step: u8,
}

impl Driver {
    /// A set-up channel with commitment #0 signed and validated on both sides.
    fn new(secp: &Secp256k1<All>, slot: ChannelSlot, htlcs: usize) -> Driver {
        let mut state = ChannelState::new(slot);
        state.apply_setup(setup(secp, slot.dbid.0)).unwrap();
        state.sign_counterparty_commitment(counterparty(secp, 0, htlcs)).unwrap();
        state.validate_holder_commitment(holder(0, htlcs)).unwrap();
        Driver { state, htlcs, apart: false, n: 1, step: 0 }
    }

    /// Applies the next transition: every one changes the record.
    fn step(&mut self, secp: &Secp256k1<All>) {
        let (n, k) = (self.n, self.htlcs);
        match self.step {
            0 => {
                assert!(self.state.sign_counterparty_commitment(counterparty(secp, n, k)).unwrap())
            }
            1 => {
                let mut ours = holder(n, k);
                if self.apart {
                    for h in &mut ours.content.htlcs {
                        h.amount = Msat(h.amount.0 + 7);
                    }
                }
                self.state.validate_holder_commitment(ours).unwrap()
            }
            2 => self.state.revoke_holder_commitment(n - 1).unwrap(),
            _ => self
                .state
                .validate_counterparty_revocation(secp, n - 1, peer_secret(n - 1))
                .unwrap(),
        }
        self.step = (self.step + 1) % 4;
        if self.step == 0 {
            self.n += 1;
        }
    }

    fn rounds(&mut self, secp: &Secp256k1<All>, rounds: u64) {
        for _ in 0..rounds * 4 {
            self.step(secp);
        }
    }
}

/// One update as warden-hsmd makes it: `persist` under the audit log's `decide`, as
/// `Signer::handle` runs a request (the request's entry goes into the state change's batch).
fn update(store: &mut SealedRedbChannelStore, log: &AuditLog, state: &ChannelState) {
    let ctx = ClientContext {
        id: NodeId::from(state.slot.peer.0),
        dbid: state.slot.dbid.0,
        permissions: warden_hsmd::permissions::ALL,
    };
    // A request body: its type (`sign_remote_commitment_tx`, 19) and some bytes.
    let mut body = 19u16.to_be_bytes().to_vec();
    body.extend_from_slice(&hash32(9, state.holder.next_number));
    log.decide(&ctx, &body, || {
        store.persist(state).unwrap();
        Ok(Outcome::Reply(vec![0; 66]))
    })
    .unwrap();
}

/// The sealed record of a whole state in one record (the layout before split records), for
/// the table's comparison column.
fn whole_sealed_len(keys: &WardenKeys, store_id: &SealStoreId, state: &ChannelState) -> usize {
    let name = channel_record_name(&state.slot);
    let plaintext = encode_channel(state);
    seal_record(keys, store_id, &name, RecordVersion(1), &plaintext, &mut SplitMix(0))
        .to_bytes()
        .len()
        + OBFUSCATED_KEY_LEN
}

struct Fixture {
    secp: Secp256k1<All>,
    node_id: NodeId,
    store_id: SealStoreId,
    peers: Vec<CoreNodeId>,
}

impl Fixture {
    fn keys() -> WardenKeys {
        WardenKeys::derive(&Seed::from_legacy([0x11; 32])).unwrap()
    }

    fn open(&self, dir: &Path, run: u64) -> SealedRedbChannelStore {
        SealedRedbChannelStore::open(
            dir,
            &self.node_id,
            Fixture::keys(),
            &mut SplitMix(run),
            Box::new(FixedClock),
        )
        .unwrap()
    }

    fn slot(&self, i: usize) -> ChannelSlot {
        ChannelSlot { peer: self.peers[i % self.peers.len()], dbid: Dbid(i as u64 + 1) }
    }
}

struct SizeResult {
    channels: usize,
    populate: Duration,
    median: Duration,
    p90: Duration,
    min: Duration,
    max: Duration,
    bytes_median: BatchBytes,
    file_bytes: u64,
    reopen: Duration,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// One store of a given size, populated and kept open for the interleaved timed rounds.
struct Sized {
    channels: usize,
    dir: std::path::PathBuf,
    store: SealedRedbChannelStore,
    log: AuditLog,
    driver: Driver,
    populate: Duration,
    times: Vec<Duration>,
    bytes: Vec<BatchBytes>,
}

fn populate(fx: &Fixture, base: &Path, channels: usize) -> Sized {
    let dir = base.join(format!("n{channels}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut store = fx.open(&dir, channels as u64);

    // Populate through the store's API: one batch per channel (its records and the node
    // directory), as warden-hsmd writes a new channel. Every populated channel went through a
    // few rounds with HTLCS HTLCs; channel 0 is the one timed below.
    let started = Instant::now();
    let mut template = Driver::new(&fx.secp, fx.slot(0), HTLCS);
    template.rounds(&fx.secp, POPULATE_ROUNDS);
    let mut state = template.state.clone();
    for i in 0..channels {
        state.slot = fx.slot(i);
        if let Some(s) = state.setup.as_mut() {
            s.funding_outpoint.txid = Txid::from_byte_array(hash32(5, i as u64));
        }
        store.persist(&state).unwrap();
        if (i + 1) % 2_500 == 0 {
            println!("#   {channels}: {} channels stored ({:.1?})", i + 1, started.elapsed());
        }
    }
    let populate = started.elapsed();
    let mut driver = template;
    driver.state = store.load(&fx.slot(0)).unwrap();
    let log = store.audit_log();
    Sized {
        channels,
        dir,
        store,
        log,
        driver,
        populate,
        times: Vec::with_capacity(UPDATES),
        bytes: Vec::with_capacity(UPDATES),
    }
}

/// One timed update of the store's channel 0.
fn timed_update(fx: &Fixture, s: &mut Sized, keep: bool) {
    s.driver.step(&fx.secp);
    let t = Instant::now();
    update(&mut s.store, &s.log, &s.driver.state);
    let elapsed = t.elapsed();
    if keep {
        s.times.push(elapsed);
        s.bytes.push(s.store.last_batch_bytes());
    }
}

fn finish(fx: &Fixture, s: Sized) -> SizeResult {
    let Sized { channels, dir, store, log, driver, populate, times, bytes } = s;
    let last_head = store.head().to_bytes().len();
    drop(log);
    drop(store);

    // Cross-check: the head the store holds is the size the batches counted.
    let file_bytes = std::fs::metadata(dir.join(STORE_DIR).join(warden_store::redb::FILE_NAME))
        .map(|m| m.len())
        .unwrap_or(0);
    {
        let db = RedbDatabase::open(&dir.join(STORE_DIR)).unwrap();
        let raw = db.store(StoreId::new(store_id_bytes(&fx.node_id)).unwrap());
        let head = raw.get(HEAD_KEY).unwrap().unwrap();
        assert_eq!(head.value.len(), last_head, "signed head size");
        assert_eq!(bytes.last().unwrap().head, last_head + HEAD_KEY.len(), "counted head bytes");
    }

    // Startup (list, verify against the head, open every record): O(n) by design.
    let t = Instant::now();
    let store = fx.open(&dir, 1_000 + channels as u64);
    let reopen = t.elapsed();
    assert_eq!(store.load(&fx.slot(0)).as_ref(), Some(&driver.state));
    drop(store);
    std::fs::remove_dir_all(&dir).unwrap();

    let mut sorted = times.clone();
    sorted.sort();
    let mut by_total = bytes.clone();
    by_total.sort_by_key(|b| b.total());
    SizeResult {
        channels,
        populate,
        median: percentile(&sorted, 0.5),
        p90: percentile(&sorted, 0.9),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        bytes_median: by_total[by_total.len() / 2],
        file_bytes,
        reopen,
    }
}

/// The filesystem holding `path`, from /proc/self/mountinfo (longest mount point prefix).
fn filesystem_of(path: &Path) -> String {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".into();
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(dash) = fields.iter().position(|f| *f == "-") else { continue };
        let (Some(mount), Some(fstype), Some(source)) =
            (fields.get(4), fields.get(dash + 1), fields.get(dash + 2))
        else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(len, _)| mount.len() >= *len) {
            best = Some((mount.len(), format!("{fstype} ({source} on {mount})")));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

/// The median of 200 raw `write(4 KiB) + fdatasync` on a file in `dir`: what one fsync costs
/// on this filesystem, for scale.
fn raw_fsync_median(dir: &Path) -> Duration {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).unwrap();
    let block = [0x5a_u8; 4096];
    let mut times: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            file.write_all(&block).unwrap();
            file.sync_data().unwrap();
            t.elapsed()
        })
        .collect();
    drop(file);
    std::fs::remove_file(&path).unwrap();
    times.sort();
    percentile(&times, 0.5)
}

fn us(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e6)
}

fn main() {
    let secp = Secp256k1::new();
    let node_id = NodeId::from(pk(&secp, 0x77));
    let store_id = SealStoreId::new(&store_id_bytes(&node_id)).unwrap();
    let peers =
        (1..=50u8).map(|b| CoreNodeId(pk(&secp, b.wrapping_mul(3).wrapping_add(100)))).collect();
    let fx = Fixture { secp, node_id, store_id, peers };

    let parent = std::env::var_os("WARDEN_BENCH_DIR").map_or_else(std::env::temp_dir, Into::into);
    let base = tempfile::Builder::new().prefix("warden-store-bench-").tempdir_in(&parent).unwrap();

    println!("# store_update: one channel update with a durable commit (persist = encode + seal");
    println!("#   the channel record, head update, one redb batch fsync'd by redb)");
    println!("# command: cargo bench -p warden-hsmd --bench store_update");
    println!("# directory: {}", base.path().display());
    println!("# filesystem: {}", filesystem_of(base.path()));
    println!(
        "# {UPDATES} timed updates per size after {WARMUP} warm-up; {HTLCS} HTLCs per commitment; \
         populated channels: set up + {POPULATE_ROUNDS} rounds"
    );

    println!(
        "# raw write(4 KiB) + fdatasync on that filesystem: median {} µs",
        us(raw_fsync_median(base.path()))
    );

    bytes_table(&fx, base.path());

    let sizes: Vec<usize> = match std::env::var("WARDEN_BENCH_SIZES") {
        Ok(v) => v.split(',').map(|n| n.trim().parse().unwrap()).filter(|&n| n > 0).collect(),
        Err(_) => SIZES.to_vec(),
    };
    if sizes.is_empty() {
        return;
    }
    let mut stores = Vec::new();
    for &n in &sizes {
        println!("# populating {n} channels ...");
        stores.push(populate(&fx, base.path(), n));
    }
    // The timed updates go round the sizes one at a time, so that the disk's changing load
    // (other processes, the page cache) falls on every size alike.
    for i in 0..WARMUP + UPDATES {
        for s in &mut stores {
            timed_update(&fx, s, i >= WARMUP);
        }
    }
    let results: Vec<SizeResult> = stores.into_iter().map(|s| finish(&fx, s)).collect();

    let base_median = results[0].median.as_secs_f64();
    println!();
    println!("## per-update latency (µs) by store size ({HTLCS} HTLCs)");
    println!(
        "| channels | median | p90 | min | max | median / 1-ch median | bytes/update (median) | \
         populate | reopen | file size |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {} | {} | {} | {:.2} | {} | {:.1?} | {:.1?} | {:.1} MiB |",
            r.channels,
            us(r.median),
            us(r.p90),
            us(r.min),
            us(r.max),
            r.median.as_secs_f64() / base_median,
            r.bytes_median.total(),
            r.populate,
            r.reopen,
            r.file_bytes as f64 / (1024.0 * 1024.0),
        );
    }
}

/// Bytes per update at 0, 3 and 30 HTLCs, after a few rounds and after many: a channel is
/// driven to round `rounds` in memory, stored, and then two more rounds (eight updates, each
/// kind twice) are persisted as warden-hsmd persists them; every batch is counted.
fn bytes_table(fx: &Fixture, base: &Path) {
    println!();
    println!(
        "## bytes per update (every put of the batch: keys + values) vs the goal \
         {GOAL_BASE} + {GOAL_PER_HTLC}/HTLC"
    );
    println!(
        "| HTLCs | our HTLCs | rounds | records | head | audit entry | audit tip | \
         total (max of 8) | total (mean) | goal | within goal | whole record, for comparison |"
    );
    println!("|---:|:---|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|");
    let keys = Fixture::keys();
    let cases = BYTES_ROUNDS
        .iter()
        .flat_map(|&r| BYTES_HTLCS.iter().map(move |&h| (r, h, false)))
        .chain(BYTES_ROUNDS.iter().flat_map(|&r| [(r, HTLCS, true), (r, 30, true)]));
    for (rounds, htlcs, apart) in cases {
        {
            let dir = base.join(format!("bytes-{rounds}-{htlcs}-{apart}"));
            std::fs::create_dir_all(&dir).unwrap();
            let mut store = fx.open(&dir, 7);
            let log = store.audit_log();
            let mut d = Driver::new(&fx.secp, fx.slot(0), htlcs);
            d.rounds(&fx.secp, rounds);
            d.apart = apart;
            update(&mut store, &log, &d.state);
            let mut batches: Vec<BatchBytes> = Vec::new();
            for _ in 0..8 {
                d.step(&fx.secp);
                update(&mut store, &log, &d.state);
                batches.push(store.last_batch_bytes());
            }
            let max = *batches.iter().max_by_key(|b| b.total()).unwrap();
            let mean = batches.iter().map(|b| b.total()).sum::<usize>() / batches.len();
            let goal = GOAL_BASE + GOAL_PER_HTLC * htlcs;
            println!(
                "| {htlcs} | {} | {rounds} | {} | {} | {} | {} | {} | {mean} | {goal} | {} | {} |",
                if apart { "their own" } else { "the peer's" },
                max.records,
                max.head,
                max.audit_entries,
                max.audit_tip,
                max.total(),
                if max.total() < goal { "yes" } else { "NO" },
                whole_sealed_len(&keys, &fx.store_id, &d.state),
            );
            drop(log);
            drop(store);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
