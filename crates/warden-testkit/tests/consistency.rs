//! The transactions the testkit builds are consistent between both sides, the peer's
//! signatures verify, the verification logic accepts right signatures and refuses wrong ones,
//! and every request body round-trips through warden-wire's decoder. No hsmd is needed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::ecdsa;
use bitcoin::sighash::EcdsaSighashType;
use warden_core::sign::sign_hash_low_r;
use warden_core::tx::ChannelType;
use warden_core::units::Sat;
use warden_testkit::channel::{Expected, Signing};
use warden_testkit::flows::{random_changes, OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::TestRng;
use warden_testkit::verify::check_signature;
use warden_testkit::{Channel, ChannelParams, Funder, Who};
use warden_wire::{Message, Request};

const TYPES: [ChannelType; 2] = [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc];
const FUNDERS: [Funder; 2] = [Funder::Us, Funder::Them];

fn channel(t: ChannelType, f: Funder) -> Channel {
    Channel::new(ChannelParams::new(t, f), OUR_SECRET, PEER_SECRET).unwrap()
}

/// Encodes, decodes as any request, re-encodes: same bytes, same message.
fn round_trip<M: Message + Into<Request> + Clone>(m: &M) {
    let body = m.encode().unwrap();
    let decoded = Request::decode(&body).unwrap_or_else(|e| panic!("{}: {e}", M::NAME));
    assert_eq!(decoded.encode().unwrap(), body, "{}", M::NAME);
    assert_eq!(decoded, m.clone().into(), "{}", M::NAME);
}

/// Stands in for hsmd: signs `expect` with `key`.
fn sign_as(ch: &Channel, key: &warden_core::secret::PrivateKey, e: &Expected) -> ecdsa::Signature {
    let signature = sign_hash_low_r(ch.secp(), key, e.digest.as_ref());
    ecdsa::Signature { signature, sighash_type: e.sighash_type }
}

fn accepts<M: Message>(ch: &Channel, s: &Signing<M>, sig: &ecdsa::Signature) {
    let e = &s.expect;
    check_signature(ch.secp(), M::NAME, &e.digest, sig, &e.key, e.sighash_type).unwrap();
}

fn refuses<M: Message>(ch: &Channel, s: &Signing<M>, sig: &ecdsa::Signature) {
    let e = &s.expect;
    assert!(check_signature(ch.secp(), M::NAME, &e.digest, sig, &e.key, e.sighash_type).is_err());
}

/// Checks both commitments at the channel's current numbers.
fn check_commitments(ch: &Channel, trimmed_seen: &mut bool) {
    let secp = ch.secp();
    let view = ch.peer_view();
    let ours = ch.our_commitment(ch.local_num, &ch.local).unwrap();
    let ours_by_peer = ch
        .peer()
        .counterparty_commitment(
            &view,
            ch.local_num,
            &ch.our_point(ch.local_num).unwrap(),
            &Channel::peer_state(&ch.local),
        )
        .unwrap();
    assert_eq!(ours.tx, ours_by_peer.tx, "our commitment, both views");
    let theirs = ch.their_commitment(ch.remote_num, &ch.remote).unwrap();
    let theirs_by_peer =
        ch.peer().own_commitment(&view, ch.remote_num, &Channel::peer_state(&ch.remote)).unwrap();
    assert_eq!(theirs.tx, theirs_by_peer.tx, "their commitment, both views");
    *trimmed_seen |= ours.htlc_output_indexes.iter().any(Option::is_none);

    // The peer's signatures verify against our view.
    let sig = ch.peer().sign_commitment(&ours).unwrap();
    check_signature(
        secp,
        "commitment_signed",
        &ours.sighash().unwrap(),
        &sig,
        &ch.peer().funding_pubkey().0,
        EcdsaSighashType::All,
    )
    .unwrap();
    let htlc_sigs = ch.peer().sign_htlc_txs(&ours).unwrap();
    let htlc_txs = ours.htlc_txs().unwrap();
    assert_eq!(htlc_sigs.len(), htlc_txs.len());
    for (tx, sig) in htlc_txs.iter().zip(&htlc_sigs) {
        let expected_type = if ours.channel_type.has_anchors() {
            EcdsaSighashType::SinglePlusAnyoneCanPay
        } else {
            EcdsaSighashType::All
        };
        check_signature(
            secp,
            "commitment_signed",
            &tx.countersignatory_sighash().unwrap(),
            sig,
            &ours.keys.countersignatory_htlc.0,
            expected_type,
        )
        .unwrap();
    }
    // The HTLC list lightningd sends: one per HTLC output, in output order.
    let list = Channel::hsm_htlcs(&ours, &ch.local).unwrap();
    assert_eq!(list.len(), htlc_txs.len());
    for (h, tx) in list.iter().zip(&htlc_txs) {
        assert_eq!(h.payment_hash.to_byte_array(), tx.htlc.payment_hash.0);
        assert_eq!(h.amount.0, tx.htlc.amount.0);
    }
}

use bitcoin::hashes::Hash;

#[test]
fn both_views_agree_through_random_rounds() {
    for t in TYPES {
        for f in FUNDERS {
            let mut ch = channel(t, f);
            let mut rng = TestRng::new(42);
            let mut trimmed_seen = false;
            check_commitments(&ch, &mut trimmed_seen);
            for _ in 0..40 {
                let initiator = if rng.chance(50) { Who::Us } else { Who::Them };
                let changes = random_changes(&mut ch, &mut rng, initiator);
                ch.remote = ch.remote.apply(&changes).unwrap();
                ch.remote_num += 1;
                ch.local = ch.local.apply(&changes).unwrap();
                ch.local_num += 1;
                check_commitments(&ch, &mut trimmed_seen);
            }
            assert!(trimmed_seen, "{t:?} {f:?}: the traffic never trimmed an htlc");
        }
    }
}

#[test]
fn random_traffic_is_reproducible() {
    let run = |seed| {
        let mut ch = channel(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
        let mut rng = TestRng::new(seed);
        (0..10).map(|_| random_changes(&mut ch, &mut rng, Who::Us)).collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn channel_type_bits() {
    let srk = ChannelParams::new(ChannelType::StaticRemoteKey, Funder::Us).wire_channel_type();
    assert!(srk.has_bit(12) && !srk.has_bit(22));
    let anchors =
        ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us).wire_channel_type();
    assert!(anchors.has_bit(12) && anchors.has_bit(22));
}

/// Builds every request of every step on a channel with HTLCs in flight, checks that its
/// body round-trips, and that signatures made with the right key verify and wrong ones do
/// not.
#[test]
fn requests_round_trip_and_signatures_check() {
    for t in TYPES {
        for f in FUNDERS {
            let mut ch = channel(t, f);
            let keys = ch.our_keys().clone();
            round_trip(&ch.new_channel());
            round_trip(&ch.get_channel_basepoints());
            round_trip(&ch.setup_channel());
            round_trip(&ch.get_per_commitment_point(0).unwrap().0);
            round_trip(&ch.check_outpoint());
            round_trip(&ch.lock_outpoint());

            // Commitment #0: feerate field 0, no HTLCs.
            let (s, _) = ch.sign_remote_commitment(0, &ch.remote).unwrap();
            assert_eq!(s.request.feerate, 0);
            assert!(s.request.htlcs.is_empty());
            round_trip(&s.request);
            let good = sign_as(&ch, keys.funding_key(), &s.expect);
            accepts(&ch, &s, &good);
            refuses(&ch, &s, &sign_as(&ch, keys.payment_basepoint_secret(), &s.expect));
            let mut wrong_type = good;
            wrong_type.sighash_type = EcdsaSighashType::None;
            refuses(&ch, &s, &wrong_type);
            let (v, _) = ch.validate_commitment(0, &ch.local).unwrap();
            assert_eq!(v.feerate, 0);
            round_trip(&v);

            // A few rounds of traffic, then every later request.
            let mut rng = TestRng::new(3);
            for _ in 0..6 {
                let changes = random_changes(&mut ch, &mut rng, Who::Them);
                ch.revoked_remote = Some((ch.remote_num, ch.remote.clone()));
                ch.remote = ch.remote.apply(&changes).unwrap();
                ch.remote_num += 1;
                ch.local = ch.local.apply(&changes).unwrap();
                ch.local_num += 1;
            }
            let extra = ch.new_htlc(Who::Us, warden_core::units::Msat(30_000_000), [9; 32], 900);
            let changes = [warden_testkit::Change::Add(extra)];
            ch.remote = ch.remote.apply(&changes).unwrap();
            ch.local = ch.local.apply(&changes).unwrap();
            assert!(!ch.local.htlcs.is_empty());

            let (s, theirs) = ch.sign_remote_commitment(ch.remote_num, &ch.remote).unwrap();
            assert_eq!(s.request.feerate, ch.remote.feerate.0);
            round_trip(&s.request);
            accepts(&ch, &s, &sign_as(&ch, keys.funding_key(), &s.expect));
            let htlcs = ch.sign_remote_htlc_txs(&theirs).unwrap();
            assert_eq!(htlcs.len(), s.request.htlcs.len());
            for h in &htlcs {
                round_trip(&h.request);
                let key = warden_core::keys::bolt3::derive_private_key(
                    ch.secp(),
                    keys.htlc_basepoint_secret(),
                    &theirs.keys.per_commitment_point,
                )
                .unwrap();
                accepts(&ch, h, &sign_as(&ch, &key, &h.expect));
                refuses(&ch, h, &sign_as(&ch, keys.htlc_basepoint_secret(), &h.expect));
            }
            let (v, _) = ch.validate_commitment(ch.local_num, &ch.local).unwrap();
            assert_eq!(v.htlc_sigs.len(), v.htlcs.len());
            round_trip(&v);
            round_trip(&ch.revoke_commitment(ch.local_num - 1).unwrap().0);
            round_trip(&ch.validate_revocation(ch.remote_num - 1).unwrap());
            let (n, state) = ch.revoked_remote.clone().unwrap();
            if let Some(p) = ch.penalty(n, &state).unwrap() {
                round_trip(&p.request);
            }
            for p in ch.sign_penalties_to_us(n, &state).unwrap() {
                round_trip(&p.request);
            }
            for r in ch.sign_remote_htlcs_to_us(&theirs, &ch.remote).unwrap() {
                round_trip(&r.request);
            }
            let (s, ours) = ch.sign_commitment().unwrap();
            round_trip(&s.request);
            accepts(&ch, &s, &sign_as(&ch, keys.funding_key(), &s.expect));
            let our_htlc_key = warden_core::keys::bolt3::derive_private_key(
                ch.secp(),
                keys.htlc_basepoint_secret(),
                &ours.keys.per_commitment_point,
            )
            .unwrap();
            let peer_sigs = ch.peer().sign_htlc_txs(&ours).unwrap();
            for (i, tx) in ours.htlc_txs().unwrap().iter().enumerate() {
                let s = ch.sign_local_htlc_tx(&ours, tx).unwrap();
                round_trip(&s.request);
                assert_eq!(s.expect.sighash_type, ch.htlc_sighash_type());
                let sig = sign_as(&ch, &our_htlc_key, &s.expect);
                accepts(&ch, &s, &sig);
                if t == ChannelType::AnchorsZeroFeeHtlc {
                    let preimage = ch
                        .local
                        .htlcs
                        .iter()
                        .find(|h| h.payment_hash() == tx.htlc.payment_hash)
                        .filter(|_| tx.kind == warden_core::tx::HtlcTxKind::Success)
                        .map(|h| warden_core::tx::PaymentPreimage::new(h.preimage));
                    let witness = tx.witness(&peer_sigs[i], &sig, preimage.as_ref()).unwrap();
                    let m = ch.sign_htlc_tx_mingle(tx, witness).unwrap();
                    round_trip(&m.request);
                    let wallet_key = ch.our_node_keys().wallet().bitcoin_key(ch.secp(), 8).unwrap();
                    let w = &m.wallet_inputs[0];
                    let good = sign_as(&ch, &wallet_key, &w.expect);
                    check_signature(
                        ch.secp(),
                        "mingle",
                        &w.expect.digest,
                        &good,
                        &w.expect.key,
                        w.expect.sighash_type,
                    )
                    .unwrap();
                    // The wallet input's signature does not cover a different HTLC input.
                    assert_ne!(w.expect.digest, s.expect.digest);
                }
            }
            if let Some((vout, out)) =
                ours.output(warden_core::tx::CommitmentOutputKind::ToBroadcaster)
            {
                let d = ch.sign_delayed_to_us(&ours, ours.outpoint(vout), out.value).unwrap();
                round_trip(&d.request);
            }
            match (t, ch.sign_anchorspend(&ours).unwrap()) {
                (ChannelType::AnchorsZeroFeeHtlc, Some(a)) => round_trip(&a.request),
                (ChannelType::StaticRemoteKey, None) => {}
                (t, a) => panic!("{t:?}: anchor spend {}", a.is_some()),
            }

            // Settle everything, then the mutual close.
            let settle: Vec<_> =
                ch.local.htlcs.iter().map(|h| warden_testkit::Change::Fulfill(h.id)).collect();
            ch.local = ch.local.apply(&settle).unwrap();
            let close = ch.sign_mutual_close(Sat(2_000)).unwrap();
            round_trip(&close.request);
            accepts(&ch, &close, &sign_as(&ch, keys.funding_key(), &close.expect));
        }
    }
}
