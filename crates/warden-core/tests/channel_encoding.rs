//! The persisted channel-state encoding (`channel::encoding`): states reached by real update
//! sequences round-trip, the committed golden bytes of version 1 still decode to the same
//! state and re-encode to the same bytes, malformed inputs are refused with their reason, and
//! unknown odd records are skipped. Also `SecretStore::from_entries`, which the decoder uses
//! to rebuild the peer's secrets.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod support;
use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, ScriptBuf, Txid};
use support::channel_fixture::{peer_point, peer_secret, pk, setup};
use warden_core::channel::encoding::{decode_channel, encode_channel, DecodeError, VERSION};
use warden_core::channel::state::{HtlcInfo, SignedCounterpartyCommitment};
use warden_core::channel::{
    ChannelSetup, ChannelSlot, ChannelState, CommitmentContent, HtlcSide, SignedHolderCommitment,
    SpliceCandidate,
};
use warden_core::keys::node::NodeId;
use warden_core::keys::FundingPubkey;
use warden_core::secp256k1::Secp256k1;
use warden_core::shachain::{generate_from_seed, SecretStore, ShachainError, MAX_INDEX};
use warden_core::tlv::TlvError;
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

const GOLDEN_V1: &str = include_str!("data/encoding/channel_v1.hex");
const GOLDEN_V1_NEW: &str = include_str!("data/encoding/channel_v1_new.hex");
const GOLDEN_V1_SPLICE: &str = include_str!("data/encoding/channel_v1_splice.hex");

// ---- fixtures (from tests/channel_state.rs, with HTLCs and every optional field) ----

/// A setup with every optional field present.
fn full_setup() -> ChannelSetup {
    let mut p2wpkh = vec![0x00, 0x14];
    p2wpkh.extend_from_slice(&[0xaa; 20]);
    let mut p2wsh = vec![0x00, 0x20];
    p2wsh.extend_from_slice(&[0xbb; 32]);
    ChannelSetup {
        is_outbound: true,
        channel_value: Sat(2_000_000),
        push_value: Msat(12_345_678),
        funding_outpoint: OutPoint { txid: Txid::from_byte_array([0x77; 32]), vout: 3 },
        holder_selected_delay: 720,
        holder_shutdown_script: Some(ScriptBuf::from_bytes(p2wpkh)),
        holder_shutdown_wallet_index: Some(17),
        counterparty_selected_delay: 2016,
        counterparty_shutdown_script: Some(ScriptBuf::from_bytes(p2wsh)),
        channel_type_features: vec![0x40, 0x10, 0x00], // bits 12 and 22
        ..setup()
    }
}

fn channel() -> ChannelState {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(1) });
    c.apply_setup(setup()).unwrap();
    c
}

/// `n % 5` HTLCs, alternately offered by each side (a function of `n`, so retries match).
fn htlcs(n: u64) -> Vec<HtlcInfo> {
    (0..n % 5)
        .map(|i| HtlcInfo {
            offered_by: if i % 2 == 0 { HtlcSide::Holder } else { HtlcSide::Counterparty },
            amount: Msat(1_000_000 * (i + 1) + n),
            payment_hash: [(n * 3 + i) as u8; 32],
            cltv_expiry: 500 + (n + i) as u32,
        })
        .collect()
}

fn content(n: u64, to_holder: u64) -> CommitmentContent {
    let htlcs = htlcs(n);
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
    let content = content(n, 900_000);
    SignedHolderCommitment {
        htlc_sigs: (0..content.htlcs.len() as u8).map(|i| [0x20 + i; 64]).collect(),
        content,
        counterparty_sig: [1; 64],
    }
}

/// The peer's secret and point for its commitment `n`.
fn counterparty(n: u64) -> SignedCounterpartyCommitment {
    SignedCounterpartyCommitment { content: content(n, 800_000), point: peer_point(n) }
}

/// Runs `rounds` update rounds after commitment #0 on both sides, as channeld does them.
fn run(c: &mut ChannelState, rounds: u64) {
    let secp = Secp256k1::new();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    for n in 1..=rounds {
        assert!(c.sign_counterparty_commitment(counterparty(n)).unwrap());
        c.validate_holder_commitment(holder(n)).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
}

/// Every field populated: a full setup, HTLCs on both sides, current and previous peer
/// commitments, eight revoked peer secrets in four slots, broadcast and mutual-close flags.
fn full_state() -> ChannelState {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(0x0102_0304) });
    c.apply_setup(full_setup()).unwrap();
    run(&mut c, 8);
    c.sign_counterparty_commitment(counterparty(9)).unwrap();
    c.validate_holder_commitment(holder(9)).unwrap();
    c.sign_holder_for_broadcast(8).unwrap();
    c.sign_mutual_close().unwrap();
    assert_eq!(c.counterparty.secrets.entries().count(), 4);
    assert!(c.counterparty.previous.is_some() && c.holder.current.is_some());
    assert!(!c.holder.current.as_ref().unwrap().content.htlcs.is_empty());
    assert!(!c.counterparty.current.as_ref().unwrap().content.htlcs.is_empty());
    assert!(!c.counterparty.previous.as_ref().unwrap().content.htlcs.is_empty());
    c
}

fn new_state() -> ChannelState {
    ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(2) })
}

// ---- a small independent reader/writer of the top-level TLV stream, to forge inputs ----

fn bigsize(out: &mut Vec<u8>, v: u64) {
    match v {
        0..=0xfc => out.push(v as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(v as u16).to_be_bytes());
        }
        _ => {
            out.push(0xfe);
            out.extend_from_slice(&(v as u32).to_be_bytes());
        }
    }
}

fn read_bigsize(b: &[u8], pos: &mut usize) -> u64 {
    let first = b[*pos];
    *pos += 1;
    let n = match first {
        0xfd => 2,
        0xfe => 4,
        0xff => 8,
        v => return u64::from(v),
    };
    let v = b[*pos..*pos + n].iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    *pos += n;
    v
}

fn split(stream: &[u8]) -> Vec<(u64, Vec<u8>)> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < stream.len() {
        let ty = read_bigsize(stream, &mut pos);
        let len = read_bigsize(stream, &mut pos) as usize;
        out.push((ty, stream[pos..pos + len].to_vec()));
        pos += len;
    }
    out
}

fn join(records: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (ty, value) in records {
        bigsize(&mut out, *ty);
        bigsize(&mut out, value.len() as u64);
        out.extend_from_slice(value);
    }
    out
}

fn with_version(body: &[u8]) -> Vec<u8> {
    let mut out = vec![VERSION];
    out.extend_from_slice(body);
    out
}

/// The encoding of `state` with its top-level records changed by `f`.
fn forged(state: &ChannelState, f: impl FnOnce(&mut Vec<(u64, Vec<u8>)>)) -> Vec<u8> {
    let bytes = encode_channel(state);
    let mut records = split(&bytes[1..]);
    f(&mut records);
    with_version(&join(&records))
}

fn from_hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut out = String::new();
    for line in hex.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out
}

fn round_trip(state: &ChannelState) {
    let bytes = encode_channel(state);
    assert_eq!(bytes[0], VERSION);
    assert_eq!(&decode_channel(&bytes).unwrap(), state);
}

// ---- round trips ----

#[test]
fn states_of_a_real_sequence_round_trip() {
    round_trip(&new_state());
    let mut c = channel();
    round_trip(&c);
    let secp = Secp256k1::new();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    round_trip(&c);
    c.validate_holder_commitment(holder(0)).unwrap();
    round_trip(&c);
    for n in 1..=20 {
        c.sign_counterparty_commitment(counterparty(n)).unwrap();
        round_trip(&c);
        c.validate_holder_commitment(holder(n)).unwrap();
        round_trip(&c);
        c.revoke_holder_commitment(n - 1).unwrap();
        round_trip(&c);
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
        round_trip(&c);
    }
    c.sign_holder_for_broadcast(20).unwrap();
    round_trip(&c);
    c.sign_mutual_close().unwrap();
    round_trip(&c);
    round_trip(&full_state());
}

/// The chain evidence that the funding is spent survives a restart, and then refuses every
/// new state (`commitment-funding-spent`); a record without it (every golden file) reads as
/// not spent.
#[test]
fn funding_spent_round_trips_and_refuses_new_state() {
    let mut c = full_state();
    assert!(!c.funding_spent);
    c.funding_spent = true;
    round_trip(&c);
    let bytes = encode_channel(&c);
    assert!(split(&bytes[1..]).iter().any(|(ty, v)| *ty == 14 && v.is_empty()));
    let mut d = decode_channel(&bytes).unwrap();
    let before = d.clone();
    let next = d.counterparty.next_number;
    let err = d.sign_counterparty_commitment(counterparty(next)).unwrap_err();
    assert_eq!(err.rule, warden_core::policy::Rule::CommitmentFundingSpent);
    assert_eq!(d, before, "a refusal changes nothing");
    // A flag with a value is not a flag.
    let bad = forged(&c, |records| {
        for (ty, v) in records.iter_mut() {
            if *ty == 14 {
                v.push(1);
            }
        }
    });
    assert!(decode_channel(&bad).is_err());
}

#[test]
fn decoded_secrets_still_answer_and_accept_the_next_one() {
    let c = full_state();
    let d = decode_channel(&encode_channel(&c)).unwrap();
    for n in 0..8 {
        assert_eq!(d.counterparty.secrets.get(MAX_INDEX - n), Some(peer_secret(n)));
    }
    let mut store = d.counterparty.secrets;
    store.insert(MAX_INDEX - 8, peer_secret(8)).unwrap();
    assert!(store.insert(MAX_INDEX - 10, peer_secret(10)).is_err());
}

// ---- golden bytes ----

/// Rewrites the golden files instead of checking them when `WARDEN_WRITE_GOLDEN` is set
/// (only for a deliberate new version: a v1 file is never rewritten).
fn check_golden(name: &str, committed: &str, state: &ChannelState) {
    let bytes = encode_channel(state);
    if std::env::var_os("WARDEN_WRITE_GOLDEN").is_some() {
        let path = format!("{}/tests/data/encoding/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(path, to_hex(&bytes)).unwrap();
        return;
    }
    let golden = from_hex(committed);
    assert_eq!(&decode_channel(&golden).unwrap(), state, "{name} no longer decodes to its state");
    assert_eq!(bytes, golden, "the encoding of {name}'s state changed: a format change");
}

#[test]
fn golden_v1_full_state() {
    check_golden("channel_v1.hex", GOLDEN_V1, &full_state());
}

#[test]
fn golden_v1_new_channel() {
    check_golden("channel_v1_new.hex", GOLDEN_V1_NEW, &new_state());
}

/// A channel with two splice candidates in flight (record 12): one with commitments on it and
/// our balance moving out (a negative relative amount), one (an RBF) without.
fn splice_state() -> ChannelState {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(3) });
    c.apply_setup(setup()).unwrap();
    run(&mut c, 4);
    let mut theirs = counterparty(4);
    theirs.content.txid = Txid::from_byte_array([0x44; 32]);
    let mut ours = holder(4);
    ours.content.txid = Txid::from_byte_array([0x45; 32]);
    c.splices = vec![
        SpliceCandidate {
            funding_outpoint: OutPoint { txid: Txid::from_byte_array([0xaa; 32]), vout: 1 },
            channel_value: Sat(950_000),
            counterparty_funding_pubkey: FundingPubkey(pk(5)),
            holder_relative: -60_000,
            counterparty_relative: 10_000,
            holder: Some(ours),
            counterparty: Some(theirs),
        },
        SpliceCandidate {
            funding_outpoint: OutPoint { txid: Txid::from_byte_array([0xbb; 32]), vout: 0 },
            channel_value: Sat(949_000),
            counterparty_funding_pubkey: FundingPubkey(pk(6)),
            holder_relative: -61_000,
            counterparty_relative: 10_000,
            holder: None,
            counterparty: None,
        },
    ];
    c
}

#[test]
fn golden_v1_splice_candidates() {
    check_golden("channel_v1_splice.hex", GOLDEN_V1_SPLICE, &splice_state());
}

#[test]
fn splice_candidates_round_trip_and_an_empty_list_is_refused() {
    round_trip(&splice_state());
    // The list is absent when empty: a present empty list is not canonical.
    let forged = forged(&channel(), |records| records.push((12, Vec::new())));
    assert!(decode_channel(&forged).is_err());
}

// ---- rejections ----

#[test]
fn every_truncation_is_refused() {
    for state in [full_state(), new_state(), channel()] {
        let bytes = encode_channel(&state);
        for len in 0..bytes.len() {
            assert!(decode_channel(&bytes[..len]).is_err(), "a {len}-byte prefix was accepted");
        }
    }
    assert_eq!(decode_channel(&[]), Err(DecodeError::Empty));
    assert_eq!(
        decode_channel(&[VERSION]),
        Err(DecodeError::Tlv(TlvError::MissingRecord { offset: 1, ty: 0 }))
    );
}

#[test]
fn another_version_is_refused() {
    let mut bytes = encode_channel(&full_state());
    for version in [0, 2, 0x81, 0xff] {
        bytes[0] = version;
        assert_eq!(decode_channel(&bytes), Err(DecodeError::UnknownVersion { version }));
    }
}

#[test]
fn an_unknown_even_type_is_refused() {
    let state = full_state();
    let len = encode_channel(&state).len();
    let bytes = forged(&state, |r| r.push((10, vec![1, 2, 3])));
    assert_eq!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::UnknownEvenType { offset: len + 2, ty: 10 }))
    );
    // In the middle, an unknown even type hides the records after it: they come out of order.
    let bytes = forged(&state, |r| r.insert(1, (1000, vec![])));
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::MissingRecord { ty: 4, .. }))
    ));
    // Inside a nested stream (the counterparty side): unknown even type 10 after 8.
    let bytes = forged(&state, |r| {
        let mut inner = split(&r[3].1);
        inner.push((10, vec![]));
        r[3].1 = join(&inner);
    });
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::UnknownEvenType { ty: 10, .. }))
    ));
}

#[test]
fn out_of_order_and_duplicate_types_are_refused() {
    let state = full_state();
    let bytes = forged(&state, |r| r.swap(1, 2));
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::OutOfOrder { previous: 4, ty: 2, .. }))
    ));
    let bytes = forged(&state, |r| {
        let dup = r[4].clone();
        r.push(dup);
    });
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::Duplicate { ty: 8, .. }))
    ));
    let bytes = forged(&state, |r| r.push((3, vec![])));
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::OutOfOrder { previous: 8, ty: 3, .. }))
    ));
}

#[test]
fn trailing_bytes_are_refused() {
    let bytes = encode_channel(&full_state());
    for tail in [&[0x00][..], &[0xff], &[0x09], &[0x09, 0x05, 0x00], &[0x08, 0x01, 0x00]] {
        let mut b = bytes.clone();
        b.extend_from_slice(tail);
        assert!(decode_channel(&b).is_err(), "trailing {tail:02x?} accepted");
    }
}

#[test]
fn missing_required_records_are_refused() {
    let state = full_state();
    for (i, ty) in [(0, 0), (2, 4), (3, 6), (4, 8)] {
        let bytes = forged(&state, |r| {
            r.remove(i);
        });
        assert!(
            matches!(
                decode_channel(&bytes),
                Err(DecodeError::Tlv(TlvError::MissingRecord { ty: t, .. })) if t == ty
            ),
            "record {ty} removed"
        );
    }
    // Removing the optional setup record yields the channel before setup_channel.
    let bytes = forged(&state, |r| {
        r.remove(1);
    });
    let mut expected = state;
    expected.setup = None;
    assert_eq!(decode_channel(&bytes).unwrap(), expected);
}

#[test]
fn malformed_values_are_refused() {
    let state = full_state();
    let bytes = forged(&state, |r| r[4].1 = vec![2]);
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::BadValue { ty: 8, .. }))
    ));
    let bytes = forged(&state, |r| r[4].1 = vec![1, 0]);
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::BadLength { ty: 8, len: 2, .. }))
    ));
    let bytes = forged(&state, |r| r[0].1[0] = 0x05);
    assert_eq!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::BadValue { offset: 3, ty: 0, expected: "a valid node id" }))
    );
    // A non-canonical BigSize: type 0 written as fd 00 00.
    let mut bytes = encode_channel(&state);
    bytes.splice(1..2, [0xfd, 0x00, 0x00]);
    assert_eq!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::NonCanonicalBigSize { offset: 1 }))
    );
    // A length far beyond the input.
    let bytes = with_version(&[0x00, 0xfe, 0x7f, 0xff, 0xff, 0xff]);
    assert!(matches!(decode_channel(&bytes), Err(DecodeError::Tlv(TlvError::Truncated { .. }))));
    let bytes = with_version(&[0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(decode_channel(&bytes), Err(DecodeError::Tlv(TlvError::Truncated { .. }))));
}

#[test]
fn a_tampered_peer_secret_is_refused() {
    let state = full_state();
    let bytes = forged(&state, |r| {
        let mut inner = split(&r[3].1);
        let secrets = &mut inner.iter_mut().find(|(t, _)| *t == 8).unwrap().1;
        assert_eq!(secrets.len(), 4 * 41);
        secrets[41 + 9] ^= 1; // the second entry's first secret byte
        r[3].1 = join(&inner);
    });
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Secrets { error: ShachainError::DoesNotChain { .. }, .. })
    ));
    let bytes = forged(&state, |r| {
        let mut inner = split(&r[3].1);
        inner.iter_mut().find(|(t, _)| *t == 8).unwrap().1.pop();
        r[3].1 = join(&inner);
    });
    assert!(matches!(
        decode_channel(&bytes),
        Err(DecodeError::Tlv(TlvError::BadLength { ty: 8, len: 163, .. }))
    ));
}

#[test]
fn errors_are_lower_case_and_carry_no_secret() {
    let state = full_state();
    let secret_hex: String = peer_secret(7).iter().map(|b| format!("{b:02x}")).collect();
    let errors = [
        DecodeError::Empty,
        DecodeError::UnknownVersion { version: 9 },
        decode_channel(&forged(&state, |r| r.push((10, vec![])))).unwrap_err(),
        DecodeError::Secrets {
            offset: 4,
            error: ShachainError::DoesNotChain { index: 1, earlier: 2 },
        },
    ];
    for e in errors {
        let text = format!("{e}");
        assert!(text.starts_with(|c: char| c.is_ascii_lowercase()), "{text}");
        assert!(!text.contains(&secret_hex[..8]), "{text}");
        let source = std::error::Error::source(&e).map(|s| s.to_string()).unwrap_or_default();
        assert!(!source.contains(&secret_hex[..8]), "{source}");
    }
}

// ---- unknown odd records ----

#[test]
fn unknown_odd_records_are_skipped() {
    let state = full_state();
    // Top level: before the first record, between records, after the last.
    let bytes = forged(&state, |r| {
        r.insert(2, (3, vec![0xde, 0xad]));
        r.push((9, vec![0; 300]));
        r.push((0x1_0001, vec![7]));
    });
    assert_eq!(decode_channel(&bytes).unwrap(), state);
    // Nested: in the counterparty side and in its current commitment's content.
    let bytes = forged(&state, |r| {
        let mut side = split(&r[3].1);
        let mut commitment = split(&side[2].1);
        let mut content = split(&commitment[0].1);
        content.insert(1, (1, vec![1, 2, 3]));
        content.push((13, vec![]));
        commitment[0].1 = join(&content);
        commitment.push((3, vec![9]));
        side[2].1 = join(&commitment);
        side.insert(4, (7, vec![5; 10]));
        side.push((101, vec![]));
        r[3].1 = join(&side);
    });
    assert_eq!(decode_channel(&bytes).unwrap(), state);
    // Re-encoding drops them.
    assert_eq!(encode_channel(&decode_channel(&bytes).unwrap()), encode_channel(&state));
}

// ---- SecretStore::from_entries ----

/// A store of `count` consecutive secrets from `start` down.
fn store(seed: &[u8; 32], start: u64, count: u64) -> SecretStore {
    let mut s = SecretStore::new();
    for i in 0..count {
        s.insert(start - i, generate_from_seed(seed, start - i)).unwrap();
    }
    s
}

fn entries(s: &SecretStore) -> Vec<(u8, u64, [u8; 32])> {
    s.entries().map(|(slot, index, secret)| (slot, index, *secret)).collect()
}

fn rebuild(e: &[(u8, u64, [u8; 32])]) -> Result<SecretStore, ShachainError> {
    SecretStore::from_entries(e.iter().map(|(slot, index, secret)| (*slot, *index, secret)))
}

#[test]
fn from_entries_round_trips() {
    let seed = [0x33; 32];
    for (start, count) in [
        (MAX_INDEX, 0),
        (MAX_INDEX, 1),
        (MAX_INDEX, 8),
        (MAX_INDEX, 100),
        (1000, 1001),
        (5, 6),
        (77, 3),
    ] {
        let s = store(&seed, start, count);
        let r = SecretStore::from_entries(s.entries()).unwrap();
        assert_eq!(r, s);
        assert_eq!(r.min_index(), s.min_index());
        for i in (start + 1 - count)..=start {
            assert_eq!(r.get(i), Some(generate_from_seed(&seed, i)));
        }
    }
}

#[test]
fn from_entries_refuses_a_tampered_secret() {
    let s = store(&[0x33; 32], MAX_INDEX, 8);
    let e = entries(&s);
    assert_eq!(e.len(), 4);
    for i in 0..e.len() {
        let mut t = e.clone();
        t[i].2[31] ^= 0x80;
        assert!(
            matches!(rebuild(&t), Err(ShachainError::DoesNotChain { .. })),
            "tampered entry {i} accepted"
        );
    }
}

#[test]
fn from_entries_refuses_misplaced_missing_and_stale_entries() {
    let seed = [0x33; 32];
    let e = entries(&store(&seed, MAX_INDEX, 8));
    // Slots 0..=3 hold MAX-6, MAX-5, MAX-3, MAX-7.
    assert_eq!(
        e.iter().map(|(s, i, _)| (*s, MAX_INDEX - i)).collect::<Vec<_>>(),
        [(0, 6), (1, 5), (2, 3), (3, 7)]
    );
    let mut t = e.clone();
    t[1].0 = 2;
    assert_eq!(rebuild(&t), Err(ShachainError::MisplacedEntry { slot: 2, index: MAX_INDEX - 5 }));
    let mut t = e.clone();
    t.push(e[0]);
    assert_eq!(rebuild(&t), Err(ShachainError::MisplacedEntry { slot: 0, index: MAX_INDEX - 6 }));
    let mut t = e.clone();
    t.remove(1);
    assert_eq!(rebuild(&t), Err(ShachainError::MissingEntry { slot: 1, index: MAX_INDEX - 5 }));
    // A genuine but stale secret: slot 0 holding MAX-4 although MAX-6 was inserted since.
    let mut t = e.clone();
    t[0] = (0, MAX_INDEX - 4, generate_from_seed(&seed, MAX_INDEX - 4));
    assert_eq!(rebuild(&t), Err(ShachainError::MisplacedEntry { slot: 0, index: MAX_INDEX - 4 }));
    let t = [(0, MAX_INDEX + 1, [0; 32])];
    assert_eq!(rebuild(&t), Err(ShachainError::IndexOutOfRange(MAX_INDEX + 1)));
    let t = [(48, 0, [0; 32]), (47, 1 << 47, [0; 32])];
    assert!(rebuild(&t).is_err());
    assert_eq!(rebuild(&[]), Ok(SecretStore::new()));
}

mod properties {
    //! Property tests: `from_entries` against stores built by insertion, and the encoding
    //! against states reached by arbitrary request sequences.
    use super::*;
    use crate::support::channel_fixture::Action;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            2 => (0u64..12, any::<bool>()).prop_map(|(n, alt)| Action::ValidateHolder(n, alt)),
            2 => (0u64..12).prop_map(Action::RevokeHolder),
            2 => (0u64..12, any::<bool>()).prop_map(|(n, alt)| Action::SignCounterparty(n, alt)),
            2 => (0u64..12, any::<bool>()).prop_map(|(n, bad)| Action::ValidateRevocation(n, bad)),
            1 => (0u64..12).prop_map(Action::Broadcast),
            1 => Just(Action::MutualClose),
            10 => Just(Action::Progress),
        ]
    }

    fn apply(c: &mut ChannelState, a: &Action) {
        // Refusals are part of the sequence: only the states reached matter here.
        let _ = support::channel_fixture::apply(c, a, &holder, &counterparty);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn states_of_any_request_sequence_round_trip(
            full in any::<bool>(),
            actions in proptest::collection::vec(action(), 1..60),
        ) {
            let mut c = channel();
            if full {
                c.setup = Some(full_setup());
            }
            for a in &actions {
                apply(&mut c, a);
                let bytes = encode_channel(&c);
                prop_assert_eq!(&decode_channel(&bytes).unwrap(), &c, "after {:?}", a);
            }
        }

        #[test]
        fn from_entries_rebuilds_any_inserted_store(
            start in 0u64..=MAX_INDEX,
            count in 0u64..200,
            seed in any::<[u8; 32]>(),
        ) {
            let count = count.min(start + 1);
            let s = store(&seed, start, count);
            let r = SecretStore::from_entries(s.entries()).unwrap();
            prop_assert_eq!(&r, &s);
            if count > 0 {
                let lowest = start + 1 - count;
                prop_assert_eq!(r.get(lowest), Some(generate_from_seed(&seed, lowest)));
                prop_assert_eq!(r.get(start), Some(generate_from_seed(&seed, start)));
            }
        }

        #[test]
        fn decoding_a_corrupted_state_never_panics(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4),
        ) {
            let mut bytes = encode_channel(&full_state());
            for (at, mask) in &flips {
                let i = at.index(bytes.len());
                bytes[i] ^= mask;
            }
            if let Ok(state) = decode_channel(&bytes) {
                prop_assert_eq!(decode_channel(&encode_channel(&state)).unwrap(), state);
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode_channel(&bytes);
            let mut v = vec![VERSION];
            v.extend_from_slice(&bytes);
            let _ = decode_channel(&v);
        }
    }
}
