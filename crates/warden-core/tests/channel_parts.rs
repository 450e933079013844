//! The split encoding of a channel state (`channel::parts`): every state of a real sequence
//! round-trips; each kind of update changes exactly the parts it should (the main part and at
//! most one other); a missing, unnamed or malformed part is refused; the whole-state encoding
//! (version 1) is not mistaken for a part.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod support;

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use support::channel_fixture::{peer_point, peer_secret, pk, setup};
use warden_core::channel::encoding::{encode_channel, DecodeError};
use warden_core::channel::parts::{
    decode_parts, encode_parts, is_parts, part_ids, PART_COUNTERPARTY, PART_HOLDER, PART_MAIN,
    PART_SECRETS, PART_SETUP,
};
use warden_core::channel::{
    ChannelSlot, ChannelState, CommitmentContent, HtlcInfo, HtlcSide, SignedCounterpartyCommitment,
    SignedHolderCommitment, SpliceCandidate,
};
use warden_core::keys::node::NodeId;
use warden_core::keys::FundingPubkey;
use warden_core::secp256k1::Secp256k1;
use warden_core::shachain::{generate_from_seed, SecretStore, MAX_INDEX};
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

fn content(n: u64, htlcs: u64, to_holder: u64) -> CommitmentContent {
    let htlcs: Vec<HtlcInfo> = (0..htlcs)
        .map(|i| HtlcInfo {
            offered_by: if i % 2 == 0 { HtlcSide::Holder } else { HtlcSide::Counterparty },
            amount: Msat(1_000_000 * (i + 1) + n),
            payment_hash: [(n * 3 + i) as u8; 32],
            cltv_expiry: 500 + (n + i) as u32,
        })
        .collect();
    CommitmentContent {
        number: CommitmentNumber::new(n).unwrap(),
        txid: Txid::from_byte_array([n as u8; 32]),
        feerate: FeeratePerKw(253 + n as u32),
        htlc_vouts: (0..htlcs.len() as u32).map(|i| i + 2).collect(),
        htlcs,
        to_holder: Sat(to_holder),
        to_counterparty: Sat(1_000_000 - to_holder),
    }
}

fn holder(n: u64) -> SignedHolderCommitment {
    let content = content(n, n % 4, 900_000);
    SignedHolderCommitment {
        htlc_sigs: (0..content.htlcs.len() as u8).map(|i| [0x20 + i; 64]).collect(),
        content,
        counterparty_sig: [1; 64],
    }
}

fn counterparty(n: u64) -> SignedCounterpartyCommitment {
    SignedCounterpartyCommitment { content: content(n, n % 4, 800_000), point: peer_point(n) }
}

fn parts_map(state: &ChannelState) -> BTreeMap<u8, Vec<u8>> {
    encode_parts(state).into_iter().collect()
}

fn round_trip(state: &ChannelState) {
    let parts = parts_map(state);
    let main = &parts[&PART_MAIN];
    assert!(is_parts(main));
    let mut others = parts.clone();
    others.remove(&PART_MAIN);
    assert_eq!(part_ids(main).unwrap(), others.keys().copied().collect::<Vec<_>>());
    assert_eq!(&decode_parts(main, &others).unwrap(), state);
}

/// The parts whose bytes differ between two states (present in one only, or changed).
fn changed(a: &ChannelState, b: &ChannelState) -> Vec<u8> {
    let (a, b) = (parts_map(a), parts_map(b));
    let mut ids: Vec<u8> = a.keys().chain(b.keys()).copied().collect();
    ids.sort();
    ids.dedup();
    ids.into_iter().filter(|id| a.get(id) != b.get(id)).collect()
}

#[test]
fn every_state_of_a_sequence_round_trips_and_each_update_writes_one_part() {
    let secp = Secp256k1::new();
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(7) });
    round_trip(&c);
    assert_eq!(parts_map(&c).len(), 1, "a new channel is its main part");
    c.apply_setup(setup()).unwrap();
    round_trip(&c);
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    round_trip(&c);
    let [even, odd] = PART_COUNTERPARTY;
    for n in 1..=40u64 {
        let before = c.clone();
        assert!(c.sign_counterparty_commitment(counterparty(n)).unwrap());
        round_trip(&c);
        let theirs = if n % 2 == 0 { even } else { odd };
        assert_eq!(changed(&before, &c), vec![PART_MAIN, theirs], "sign theirs #{n}");

        let before = c.clone();
        c.validate_holder_commitment(holder(n)).unwrap();
        round_trip(&c);
        assert_eq!(changed(&before, &c), vec![PART_MAIN, PART_HOLDER], "validate ours #{n}");

        let before = c.clone();
        c.revoke_holder_commitment(n - 1).unwrap();
        round_trip(&c);
        assert_eq!(changed(&before, &c), vec![PART_MAIN], "revoke ours #{}", n - 1);

        let before = c.clone();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
        round_trip(&c);
        let diff = changed(&before, &c);
        assert_eq!(diff.len(), 2, "their revocation #{}: {diff:?}", n - 1);
        assert_eq!(diff[0], PART_MAIN);
        assert!((PART_SECRETS..PART_SECRETS + 7).contains(&diff[1]));
    }
    // Every part is smaller than the whole record, and the biggest (ours, with the peer's HTLC
    // signatures) holds 45 + 4 + 64 bytes an HTLC.
    let whole = encode_channel(&c).len();
    let parts = parts_map(&c);
    assert!(parts.values().all(|p| p.len() < whole / 2), "{:?}", parts.values().map(Vec::len));

    c.sign_holder_for_broadcast(40).unwrap();
    round_trip(&c);
    c.sign_mutual_close().unwrap();
    round_trip(&c);
    c.funding_spent = true;
    round_trip(&c);
}

#[test]
fn our_commitment_names_the_peers_commitment_with_the_same_htlcs() {
    let secp = Secp256k1::new();
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(7) });
    c.apply_setup(setup()).unwrap();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    for n in 1..=3 {
        c.sign_counterparty_commitment(counterparty(n)).unwrap();
        c.validate_holder_commitment(holder(n)).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
    // Commitment #3 on both sides: three HTLCs, the same ones.
    let htlcs = c.holder.current.as_ref().unwrap().content.htlcs.len();
    assert_eq!(htlcs, 3);
    let named = parts_map(&c)[&PART_HOLDER].len();
    round_trip(&c);
    // The same commitment with HTLCs of its own (another amount): the list is written out.
    let mut other = c.clone();
    for h in &mut other.holder.current.as_mut().unwrap().content.htlcs {
        h.amount = Msat(h.amount.0 + 1);
    }
    let written = parts_map(&other)[&PART_HOLDER].len();
    round_trip(&other);
    assert_eq!(written - named, htlcs * 45 - 3, "45 bytes an HTLC, less the 3-byte reference");
    // A reference to a part that is not there, or with HTLCs of its own, does not decode.
    let mut parts = parts_map(&c);
    let main = parts.remove(&PART_MAIN).unwrap();
    let mut holder = parts[&PART_HOLDER].clone();
    let last = holder.len() - 1;
    holder[last] = if holder[last] == PART_COUNTERPARTY[0] {
        PART_COUNTERPARTY[1]
    } else {
        PART_COUNTERPARTY[0]
    };
    let mut bad = parts.clone();
    bad.insert(PART_HOLDER, holder);
    // (Naming the other part gives other HTLCs: they differ from commitment #3's, so the
    // state differs; it must not decode as the original.)
    assert_ne!(decode_parts(&main, &bad).ok().as_ref(), Some(&c));
}

#[test]
fn splice_candidates_and_secrets_in_many_parts_round_trip() {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(3) });
    c.apply_setup(setup()).unwrap();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    c.splices = vec![SpliceCandidate {
        funding_outpoint: OutPoint { txid: Txid::from_byte_array([0xaa; 32]), vout: 1 },
        channel_value: Sat(950_000),
        counterparty_funding_pubkey: FundingPubkey(pk(5)),
        holder_relative: -60_000,
        counterparty_relative: 10_000,
        holder: Some(holder(1)),
        counterparty: Some(counterparty(1)),
    }];
    round_trip(&c);
    // 2^15 + 1 secrets from the top index: slots 0 to 15, in parts 8, 9 and 10.
    let seed = [0x42; 32];
    let mut secrets = SecretStore::new();
    for i in 0..=(1u64 << 15) {
        secrets.insert(MAX_INDEX - i, generate_from_seed(&seed, MAX_INDEX - i)).unwrap();
    }
    c.counterparty.secrets = secrets;
    let parts = parts_map(&c);
    for id in [PART_SECRETS, PART_SECRETS + 1, PART_SECRETS + 2] {
        assert!(parts.contains_key(&id), "part {id}");
    }
    round_trip(&c);
}

#[test]
fn missing_unnamed_or_malformed_parts_are_refused() {
    let secp = Secp256k1::new();
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(7) });
    c.apply_setup(setup()).unwrap();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    for n in 1..=3 {
        c.sign_counterparty_commitment(counterparty(n)).unwrap();
        c.validate_holder_commitment(holder(n)).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
    let mut parts = parts_map(&c);
    let main = parts.remove(&PART_MAIN).unwrap();
    for id in [PART_SETUP, PART_HOLDER, PART_COUNTERPARTY[0], PART_COUNTERPARTY[1], PART_SECRETS] {
        let mut fewer = parts.clone();
        fewer.remove(&id).unwrap();
        assert_eq!(decode_parts(&main, &fewer), Err(DecodeError::MissingPart { part: id }));
    }
    // A secrets part stored under another part's id.
    let mut moved = parts.clone();
    let secrets = moved.remove(&PART_SECRETS).unwrap();
    moved.insert(PART_SECRETS + 1, secrets);
    assert!(decode_parts(&main, &moved).is_err());
    // A truncated part, and trailing bytes.
    for id in parts.keys() {
        let mut bad = parts.clone();
        let p = bad.get_mut(id).unwrap();
        p.truncate(p.len() - 1);
        assert!(decode_parts(&main, &bad).is_err(), "part {id} truncated");
    }
    // A whole-state (version 1) record is not a part; a part is not a version 1 record.
    assert!(!is_parts(&encode_channel(&c)));
    assert!(decode_parts(&encode_channel(&c), &parts).is_err());
    assert!(warden_core::channel::encoding::decode_channel(&main).is_err());
    let mut bad_main = main.clone();
    bad_main[0] = 3;
    assert_eq!(decode_parts(&bad_main, &parts), Err(DecodeError::UnknownVersion { version: 3 }));
}
