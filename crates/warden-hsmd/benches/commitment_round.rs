#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "bench binary"
)]
//! The speed of one commitment update round through `Signer::handle`, against the bare
//! secp256k1 work any correct validating signer must do for that round.
//!
//! Run: `cargo bench -p warden-hsmd --bench commitment_round` (release build).
//!
//! One round, in the order channeld sends it when we send the first `commitment_signed`
//! (`warden_testkit::flows::Node::round(Who::Us, ..)`): `sign_remote_commitment_tx`, one
//! `sign_remote_htlc_tx` per HTLC, `validate_revocation` (their `revoke_and_ack`),
//! `validate_commitment_tx` (their `commitment_signed`, with their HTLC signatures) and
//! `revoke_commitment_tx`. The watchtower's `sign_penalty_to_us` is not part of the round.
//!
//! Every request body of every round is built in advance with warden-testkit's channel model;
//! the timed region is only `Signer::handle` (decode → permission → state/policy → sign →
//! encode) with the in-memory store (no durable I/O). The floor is timed in the same run,
//! interleaved round by round, on the same digests and keys (see [`floor_round`]).

use std::hint::black_box;
use std::time::{Duration, Instant};
use warden_testkit::rng::NoEntropy;

use bitcoin::hashes::{sha256, Hash, HashEngine};
use secp256k1::{All, Message as Digest, PublicKey, Scalar, Secp256k1, SecretKey};
use warden_core::keys::bolt3::{
    derive_delayed_payment_pubkey, derive_htlc_pubkey, derive_revocation_pubkey,
};
use warden_core::keys::{Basepoints, PerCommitmentPoint};
use warden_core::secret::PrivateKey;
use warden_core::sign::sign_hash_low_r;
use warden_core::tx::{ChannelType, CommitmentKeys};
use warden_core::units::{CommitmentNumber, Dbid, Msat};
use warden_hsmd::permissions;
use warden_hsmd::signer::{ClientContext, Outcome, Signer, StoreChoice};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::{perms, Change, Channel, ChannelParams, Funder, Hsmd, ModelHtlc, Who};
use warden_wire::msg::*;
use warden_wire::Message;

/// The message kinds of a round, in the order they are sent.
const KINDS: [&str; 5] = [
    "sign_remote_commitment_tx",
    "sign_remote_htlc_tx (all)",
    "validate_revocation",
    "validate_commitment_tx",
    "revoke_commitment_tx",
];
const SIGN_REMOTE: usize = 0;
const SIGN_HTLC: usize = 1;
const VALIDATE_REVOCATION: usize = 2;
const VALIDATE_COMMITMENT: usize = 3;
const REVOKE: usize = 4;

/// What the floor of one round computes, prepared outside the timed region.
struct FloorInputs {
    /// The peer's per-commitment point of the commitment we sign.
    remote_point: PerCommitmentPoint,
    /// Our per-commitment point of the commitment we validate (given out in the previous
    /// round: a signer may keep it, so it is not recomputed).
    local_point: PerCommitmentPoint,
    /// The digest of the peer's commitment (funding input, `SIGHASH_ALL`).
    sign_commitment: [u8; 32],
    /// The digests of the peer's HTLC transactions.
    sign_htlcs: Vec<[u8; 32]>,
    /// The peer's signatures on our commitment and its HTLC transactions, with digests and
    /// keys (the HTLC key is derived in the floor, the digest is not).
    verify_commitment: (Digest, secp256k1::ecdsa::Signature),
    verify_htlcs: Vec<(Digest, secp256k1::ecdsa::Signature)>,
    /// Our next per-commitment secret (its point is answered by validate and revoke).
    next_secret: SecretKey,
    /// The secret the peer revealed.
    revealed: SecretKey,
}

/// One prepared round: the request bodies and the floor's inputs.
struct Round {
    requests: Vec<(usize, Vec<u8>)>,
    floor: FloorInputs,
}

/// The channel-constant keys the floor may keep (derived once per channel, like any signer).
struct Constants {
    ours: Basepoints,
    theirs: Basepoints,
    our_htlc_secret: PrivateKey,
    our_funding_secret: PrivateKey,
    peer_funding: PublicKey,
}

fn sha256_of(a: &PublicKey, b: &PublicKey) -> [u8; 32] {
    let mut engine = sha256::Hash::engine();
    engine.input(&a.serialize());
    engine.input(&b.serialize());
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The floor of one round at `k` HTLCs, timed by message kind (the same grouping as Warden's
/// breakdown). Every operation is one any correct validating signer must perform:
///
/// - BOLT-03 keys of both new commitments (theirs, to check what we sign; ours, to check what
///   the peer signed): per commitment the revocation key (2 point multiplications + 1
///   addition) and the broadcaster's delayed key (1 tweak-add); with HTLCs also both HTLC keys
///   (2 tweak-adds). Basepoints are channel constants.
/// - with HTLCs, our HTLC private key for the peer's commitment (1 scalar tweak-add).
/// - 1 + k low-R ECDSA signatures (`sign_hash_low_r`, the same digests and keys as Warden, so
///   the same number of grinding attempts).
/// - 1 + k ECDSA verifications of the peer's signatures.
/// - 2 public keys from secrets: our next per-commitment point (answered by both
///   `validate_commitment_tx` and `revoke_commitment_tx`: computed once) and the point of the
///   secret the peer revealed.
///
/// Not counted (so the floor is a lower bound): sighash and other hashing, the shachain,
/// transaction parsing and building, signature encoding.
fn floor_round(secp: &Secp256k1<All>, c: &Constants, f: &FloorInputs, out: &mut [Duration; 5]) {
    let k = f.sign_htlcs.len();
    // sign_remote_commitment_tx: the keys of their commitment, then the funding signature.
    let t = Instant::now();
    let p = &f.remote_point;
    black_box(derive_revocation_pubkey(secp, &c.ours.revocation, p).unwrap());
    black_box(derive_delayed_payment_pubkey(secp, &c.theirs.delayed_payment, p).unwrap());
    if k > 0 {
        black_box(derive_htlc_pubkey(secp, &c.theirs.htlc, p).unwrap());
        black_box(derive_htlc_pubkey(secp, &c.ours.htlc, p).unwrap());
    }
    black_box(sign_hash_low_r(secp, &c.our_funding_secret, &f.sign_commitment));
    out[SIGN_REMOTE] += t.elapsed();

    // sign_remote_htlc_tx × k: our HTLC key of their commitment, k signatures.
    let t = Instant::now();
    if k > 0 {
        let tweak = Scalar::from_be_bytes(sha256_of(&p.0, &c.ours.htlc.0)).unwrap();
        let key = PrivateKey::new(c.our_htlc_secret.expose_secret().add_tweak(&tweak).unwrap());
        for d in &f.sign_htlcs {
            black_box(sign_hash_low_r(secp, &key, d));
        }
    }
    out[SIGN_HTLC] += t.elapsed();

    // validate_revocation: the revealed secret's point.
    let t = Instant::now();
    black_box(PublicKey::from_secret_key(secp, &f.revealed));
    out[VALIDATE_REVOCATION] += t.elapsed();

    // validate_commitment_tx: the keys of our commitment, 1 + k verifications, our next point.
    let t = Instant::now();
    let p = &f.local_point;
    black_box(derive_revocation_pubkey(secp, &c.theirs.revocation, p).unwrap());
    black_box(derive_delayed_payment_pubkey(secp, &c.ours.delayed_payment, p).unwrap());
    let (digest, sig) = &f.verify_commitment;
    secp.verify_ecdsa(digest, sig, &c.peer_funding).unwrap();
    if k > 0 {
        black_box(derive_htlc_pubkey(secp, &c.ours.htlc, p).unwrap());
        let their_htlc = derive_htlc_pubkey(secp, &c.theirs.htlc, p).unwrap();
        for (digest, sig) in &f.verify_htlcs {
            secp.verify_ecdsa(digest, sig, &their_htlc.0).unwrap();
        }
    }
    black_box(PublicKey::from_secret_key(secp, &f.next_secret));
    out[VALIDATE_COMMITMENT] += t.elapsed();
    // revoke_commitment_tx: its point is the one computed above; the secret is a hash chain.
}

/// The lightningd side: one channel, the model and the signer.
struct Bench {
    signer: Signer,
    ch: Channel,
    _dir: tempfile::TempDir,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
        let body = Hsmd::regtest_init().encode().unwrap();
        let mut no_entropy = NoEntropy;
        let (signer, _) =
            Signer::init_with(&body, dir.path(), &mut no_entropy, StoreChoice::Memory).unwrap();
        let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
        let ch = Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap();
        let mut b = Bench { signer, ch, _dir: dir };
        b.open();
        b
    }

    fn ctx(&self, permissions: warden_wire::Permissions) -> ClientContext {
        if permissions == permissions::ALL {
            ClientContext { id: self.signer.node_id(), dbid: 0, permissions }
        } else {
            ClientContext { id: self.ch.peer_id(), dbid: self.ch.params().dbid, permissions }
        }
    }

    fn call<M: Message>(&self, permissions: warden_wire::Permissions, m: &M) -> Vec<u8> {
        let body = m.encode().unwrap();
        self.handle(&self.ctx(permissions), &body)
    }

    fn handle(&self, ctx: &ClientContext, body: &[u8]) -> Vec<u8> {
        match self.signer.handle(ctx, body) {
            Ok(Outcome::Reply(r)) => r,
            Ok(Outcome::NewClient { .. }) => panic!("unexpected new client"),
            Err(e) => panic!("refused: {e}"),
        }
    }

    fn open(&mut self) {
        self.call(permissions::ALL, &self.ch.new_channel());
        self.call(perms::OPENINGD, &self.ch.setup_channel());
        let (sign, _) = self.ch.sign_remote_commitment(0, &self.ch.remote).unwrap();
        self.call(perms::OPENINGD, &sign.request);
        let (validate, _) = self.ch.validate_commitment(0, &self.ch.local).unwrap();
        self.call(perms::OPENINGD, &validate);
    }

    /// Builds the requests of one round with `changes` (we send the first `commitment_signed`)
    /// and moves the model on, as if the signer had answered.
    fn prepare(&mut self, changes: &[Change]) -> Round {
        let ch = &mut self.ch;
        let remote_next = ch.remote.apply(changes).unwrap();
        let local_next = ch.local.apply(changes).unwrap();
        let mut requests = Vec::new();

        // We send commitment_signed: sign their next commitment and its HTLC transactions.
        let n = ch.remote_num + 1;
        let (sign_remote, theirs) = ch.sign_remote_commitment(n, &remote_next).unwrap();
        let htlcs = ch.sign_remote_htlc_txs(&theirs).unwrap();
        requests.push((SIGN_REMOTE, sign_remote.request.encode().unwrap()));
        for h in &htlcs {
            requests.push((SIGN_HTLC, h.request.encode().unwrap()));
        }
        // Their revoke_and_ack.
        let old = ch.remote_num;
        let revocation = ch.validate_revocation(old).unwrap();
        requests.push((VALIDATE_REVOCATION, revocation.encode().unwrap()));
        let revoked = std::mem::replace(&mut ch.remote, remote_next);
        ch.revoked_remote = Some((old, revoked));
        ch.remote_num = n;
        // Their commitment_signed: validate our next commitment, revoke the current one.
        let m = ch.local_num + 1;
        let (validate, _) = ch.validate_commitment(m, &local_next).unwrap();
        let (revoke, _) = ch.revoke_commitment(m - 1).unwrap();
        requests.push((VALIDATE_COMMITMENT, validate.encode().unwrap()));
        requests.push((REVOKE, revoke.encode().unwrap()));

        let ours = ch.our_commitment(m, &local_next).unwrap();
        let our_htlc_txs = ours.htlc_txs().unwrap();
        assert_eq!(our_htlc_txs.len(), validate.htlc_sigs.len());
        let next_secret =
            ch.our_keys().per_commitment_secret(CommitmentNumber::new(m + 1).unwrap());
        let floor = FloorInputs {
            remote_point: PerCommitmentPoint(sign_remote.request.remote_per_commit),
            local_point: ch.our_point(m).unwrap(),
            sign_commitment: *sign_remote.expect.digest.as_ref(),
            sign_htlcs: htlcs.iter().map(|h| *h.expect.digest.as_ref()).collect(),
            verify_commitment: (ours.sighash().unwrap(), validate.sig.signature),
            verify_htlcs: our_htlc_txs
                .iter()
                .zip(&validate.htlc_sigs)
                .map(|(t, s)| (t.countersignatory_sighash().unwrap(), s.signature))
                .collect(),
            next_secret: SecretKey::from_slice(next_secret.expose_secret()).unwrap(),
            revealed: SecretKey::from_slice(revocation.per_commitment_secret.expose_secret())
                .unwrap(),
        };
        ch.local = local_next;
        ch.local_num = m;
        Round { requests, floor }
    }

    fn constants(&self) -> Constants {
        let keys = self.ch.our_keys();
        Constants {
            ours: self.ch.our_basepoints(),
            theirs: self.ch.peer().basepoints(),
            our_htlc_secret: keys.htlc_basepoint_secret().clone(),
            our_funding_secret: keys.funding_key().clone(),
            peer_funding: self.ch.peer().funding_pubkey().0,
        }
    }

    /// Sends one prepared round untimed, checking nothing but that it is accepted.
    fn run_untimed(&self, round: &Round) {
        let ctx = self.ctx(perms::CHANNELD);
        for (_, body) in &round.requests {
            self.handle(&ctx, body);
        }
    }
}

fn htlc(ch: &mut Channel, offerer: Who) -> ModelHtlc {
    let amount = match offerer {
        Who::Us => Msat(10_000_000),
        Who::Them => Msat(5_000_000),
    };
    // A placeholder preimage, replaced by one unique to the id.
    let h = ch.new_htlc(offerer, amount, [0; 32], 0);
    let mut preimage = [0u8; 32];
    preimage[..8].copy_from_slice(&h.id.to_le_bytes());
    ModelHtlc { preimage, cltv_expiry: 600 + u32::try_from(h.id).unwrap(), ..h }
}

struct Measured {
    htlcs: usize,
    rounds: usize,
    warden: Vec<Duration>,
    floor: Vec<Duration>,
    warden_kind: [Vec<Duration>; 5],
    floor_kind: [Vec<Duration>; 5],
}

/// Opens a channel, brings it to `k` HTLCs in flight (both directions: two thirds offered by
/// us), then times `rounds` rounds that keep `k` in flight (each fails the oldest HTLC and adds
/// one from the same side; at `k` = 0 each round is a fee update).
fn measure(k: usize, warmup: usize, rounds: usize) -> Measured {
    let mut b = Bench::new();
    let secp = Secp256k1::new();
    let c = b.constants();
    // Bring the channel to k HTLCs, three per round, untimed.
    let mut added = 0;
    while added < k {
        let mut changes = Vec::new();
        for _ in 0..3.min(k - added) {
            let offerer = if added % 3 == 2 { Who::Them } else { Who::Us };
            changes.push(Change::Add(htlc(&mut b.ch, offerer)));
            added += 1;
        }
        let round = b.prepare(&changes);
        b.run_untimed(&round);
    }
    assert_eq!(b.ch.local.htlcs.len(), k);
    // Warm-up rounds (untimed) and timed rounds, all prepared before any is sent.
    let mut prepared = Vec::new();
    for i in 0..warmup + rounds {
        let changes = match b.ch.local.htlcs.first().copied() {
            Some(oldest) => {
                vec![Change::Fail(oldest.id), Change::Add(htlc(&mut b.ch, oldest.offerer))]
            }
            None => vec![Change::Fee(warden_core::units::FeeratePerKw(2_500 + (i % 2) as u32))],
        };
        prepared.push(b.prepare(&changes));
    }
    for r in &prepared {
        assert_eq!(r.floor.sign_htlcs.len(), k);
        assert_eq!(r.floor.verify_htlcs.len(), k);
    }

    let ctx = b.ctx(perms::CHANNELD);
    let mut m = Measured {
        htlcs: k,
        rounds,
        warden: Vec::new(),
        floor: Vec::new(),
        warden_kind: Default::default(),
        floor_kind: Default::default(),
    };
    let mut replies = Vec::new();
    for (i, round) in prepared.iter().enumerate() {
        // Warden: every request of the round through Signer::handle.
        let mut kinds = [Duration::ZERO; 5];
        let mut sigs = Vec::new();
        for (kind, body) in &round.requests {
            let t = Instant::now();
            let reply = b.signer.handle(&ctx, body);
            kinds[*kind] += t.elapsed();
            match reply {
                Ok(Outcome::Reply(r)) if *kind == SIGN_REMOTE || *kind == SIGN_HTLC => sigs.push(r),
                Ok(Outcome::Reply(_)) => {}
                other => panic!("round {i}: {} refused: {other:?}", KINDS[*kind]),
            }
        }
        // The floor of the same round, right after it.
        let mut floor_kinds = [Duration::ZERO; 5];
        floor_round(&secp, &c, &round.floor, &mut floor_kinds);
        if i >= warmup {
            m.warden.push(kinds.iter().sum());
            m.floor.push(floor_kinds.iter().sum());
            for j in 0..5 {
                m.warden_kind[j].push(kinds[j]);
                m.floor_kind[j].push(floor_kinds[j]);
            }
            replies.push((sigs, &round.floor));
        }
    }
    // Untimed: Warden's signatures are exactly the floor's (same digests, keys and grinding),
    // so both did the same signing work.
    for (sigs, f) in replies {
        let ours = |r: &[u8]| SignTxReply::decode(r).unwrap().sig.signature;
        let funding = sign_hash_low_r(&secp, &c.our_funding_secret, &f.sign_commitment);
        assert_eq!(ours(&sigs[0]), funding, "commitment signature differs from the floor's");
        if k > 0 {
            let p = &f.remote_point.0;
            let tweak = Scalar::from_be_bytes(sha256_of(p, &c.ours.htlc.0)).unwrap();
            let key = PrivateKey::new(c.our_htlc_secret.expose_secret().add_tweak(&tweak).unwrap());
            for (r, d) in sigs[1..].iter().zip(&f.sign_htlcs) {
                assert_eq!(ours(r), sign_hash_low_r(&secp, &key, d), "htlc signature differs");
            }
        }
    }
    m
}

fn median(v: &[Duration]) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The median of one secp256k1 operation, for scale.
fn unit_costs() -> Vec<(&'static str, Duration)> {
    let secp = Secp256k1::new();
    let n: usize = 2_000;
    let key = PrivateKey::from_slice(&[0x42; 32]).unwrap();
    let pk = key.public_key(&secp);
    let digests: Vec<[u8; 32]> =
        (0..n).map(|i| sha256::Hash::hash(&i.to_le_bytes()).to_byte_array()).collect();
    let sigs: Vec<_> = digests.iter().map(|d| sign_hash_low_r(&secp, &key, d)).collect();
    let tweak = Scalar::from_be_bytes(digests[0]).unwrap();
    let time = |f: &mut dyn FnMut(usize)| {
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let t = Instant::now();
            f(i);
            v.push(t.elapsed());
        }
        median(&v)
    };
    // What Warden recomputes per request (not part of the floor: channel constants there).
    let ch = Channel::new(
        ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us),
        OUR_SECRET,
        PEER_SECRET,
    )
    .unwrap();
    let (ours, theirs) = (ch.our_basepoints(), ch.peer().basepoints());
    let point = ch.our_point(5).unwrap();
    vec![
        (
            "NodeKeys::channel_keys",
            time(&mut |_| {
                black_box(ch.our_node_keys().channel_keys(&ch.peer().node_id(), Dbid(1)).unwrap());
            }),
        ),
        (
            "ChannelKeys::basepoints",
            time(&mut |_| {
                black_box(ch.our_keys().basepoints(&secp));
            }),
        ),
        (
            "CommitmentKeys::derive",
            time(&mut |_| {
                black_box(CommitmentKeys::derive(&secp, &point, &theirs, &ours).unwrap());
            }),
        ),
        (
            "low-R ECDSA sign",
            time(&mut |i| {
                black_box(sign_hash_low_r(&secp, &key, &digests[i]));
            }),
        ),
        (
            "ECDSA verify",
            time(&mut |i| {
                secp.verify_ecdsa(&Digest::from_digest(digests[i]), &sigs[i], &pk).unwrap()
            }),
        ),
        (
            "pubkey from secret",
            time(&mut |_| {
                black_box(key.public_key(&secp));
            }),
        ),
        (
            "point tweak-add (xG + P)",
            time(&mut |_| {
                black_box(pk.add_exp_tweak(&secp, &tweak).unwrap());
            }),
        ),
        (
            "point multiply (xP)",
            time(&mut |_| {
                black_box(pk.mul_tweak(&secp, &tweak).unwrap());
            }),
        ),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; accept and ignore arguments.
    let cases = [measure(0, 20, 200), measure(30, 10, 50)];

    println!();
    println!("commitment_round: one update round through Signer::handle (in-memory store)");
    println!("  command: cargo bench -p warden-hsmd --bench commitment_round");
    println!(
        "  channel: anchors_zero_fee_htlc_tx, we opened; round order (we send commitment_signed):"
    );
    println!("    sign_remote_commitment_tx, sign_remote_htlc_tx x k, validate_revocation,");
    println!("    validate_commitment_tx (1 + k peer signatures), revoke_commitment_tx");
    println!("  k = 0: fee-update rounds; k = 30: each round fails one HTLC and adds one");
    println!("  floor at k HTLCs (secp256k1 only, same digests/keys as Warden):");
    println!("    (1 + k) low-R ECDSA signs (sign_hash_low_r) + (1 + k) ECDSA verifies");
    println!("    + BOLT-03 keys of both commitments: 2 x (revocation: 2 point mults + add;");
    println!("      delayed: 1 tweak-add; if k > 0 both HTLC keys: 2 tweak-adds)");
    println!("    + if k > 0: our HTLC private key (1 scalar tweak-add)");
    println!("    + 2 pubkeys from secrets (our next point, once; the revealed secret's point)");
    println!("    not counted: sighashes, shachain, tx parsing/building, encoding");
    println!();
    println!("| HTLCs | rounds | Warden median/round | floor median/round | ratio |");
    println!("|------:|-------:|--------------------:|-------------------:|------:|");
    for m in &cases {
        let (w, f) = (median(&m.warden), median(&m.floor));
        println!(
            "| {:>5} | {:>6} | {:>16.1} us | {:>15.1} us | {:>4.2}x |",
            m.htlcs,
            m.rounds,
            us(w),
            us(f),
            us(w) / us(f)
        );
    }
    for m in &cases {
        println!();
        println!("breakdown at {} HTLCs (median per round, us):", m.htlcs);
        println!("| message                    |   Warden |    floor | over floor |");
        println!("|----------------------------|---------:|---------:|-----------:|");
        for (j, name) in KINDS.iter().enumerate() {
            let (w, f) = (median(&m.warden_kind[j]), median(&m.floor_kind[j]));
            println!(
                "| {:<26} | {:>8.1} | {:>8.1} | {:>10.1} |",
                name,
                us(w),
                us(f),
                us(w) - us(f)
            );
        }
    }
    println!();
    println!("unit costs (median, us; the first three are what Warden recomputes per request):");
    for (name, d) in unit_costs() {
        println!("  {name:<26} {:>7.2}", us(d));
    }
}
