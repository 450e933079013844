//! Sealed records, the signed head and node-backup ECIES (`warden_core::seal`).
//!
//! - Warden's own keys never equal a Core Lightning key of the same seed.
//! - Records: round trip, every single-byte flip of an envelope refused, wrong store id, name
//!   or version refused with the named error.
//! - Head: incremental digest == recomputed digest over random operation sequences (proptest),
//!   and `verify_store` names a dropped record, a stale record, a tampered value, an old head.
//! - Golden vectors in `tests/data/seal/` (see its README): the committed bytes must equal what
//!   the code produces from the same inputs, and must open. To regenerate them after a
//!   deliberate change (which needs a new format byte, see `seal`'s compatibility promise):
//!   `WARDEN_REGENERATE_SEAL_VECTORS=1 cargo test -p warden-core --test seal`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::collections::{BTreeMap, VecDeque};

use bitcoin::bip32::Xpriv;
use bitcoin::NetworkKind;
use hkdf::Hkdf;
use proptest::prelude::*;
use secp256k1::{PublicKey, Secp256k1};
use serde_json::{json, Value};
use sha2::Sha256;
use warden_core::keys::node::derive_node_key;
use warden_core::keys::{DerivedSecrets, NodeId, NodeKeys};
use warden_core::rng::EntropySource;
use warden_core::seal::record::RECORD_HEADER_LEN;
use warden_core::seal::{
    ecies_derive_key, ecies_ephemeral_point, ecies_open_with_derived_key, ecies_open_with_key,
    ecies_seal, open_record, seal_record, verify_store, EciesError, Head, ObfuscatedKey, OpenError,
    RecordVersion, SealedRecord, SetDigest, SetElement, SignedHead, StoreId, VerifyStoreError,
    WardenKeys,
};
use warden_core::secret::Seed;
use warden_core::units::Dbid;

const RECORDS_JSON: &str = include_str!("data/seal/records.json");
const HEADS_JSON: &str = include_str!("data/seal/heads.json");
const ECIES_JSON: &str = include_str!("data/seal/ecies.json");
const KEYS_JSON: &str = include_str!("data/seal/keys.json");

const MNEMONIC: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                        abandon abandon about";
const BACKUP_CONTEXT: &[u8] = b"warden/node-backup/v1";

// ---------------------------------------------------------------------------------------------
// Helpers

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn field<'a>(v: &'a Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_else(|| panic!("missing string field {name}"))
}

/// Hands out exactly the bytes it was given, in order; panics when they run out.
struct FixedEntropy(VecDeque<u8>);

impl FixedEntropy {
    fn new(parts: &[&[u8]]) -> FixedEntropy {
        FixedEntropy(parts.iter().flat_map(|p| p.iter().copied()).collect())
    }

    fn is_spent(&self) -> bool {
        self.0.is_empty()
    }
}

impl EntropySource for FixedEntropy {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.0.pop_front().expect("fixed entropy exhausted");
        }
    }
}

/// A deterministic stream (SHA-256 counter mode) for tests that need many nonces.
struct CountingEntropy(u64);

impl EntropySource for CountingEntropy {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        use bitcoin::hashes::{sha256, Hash};
        for chunk in dest.chunks_mut(32) {
            self.0 += 1;
            let h = sha256::Hash::hash(&self.0.to_be_bytes()).to_byte_array();
            chunk.copy_from_slice(&h[..chunk.len()]);
        }
    }
}

fn legacy_seed() -> Seed {
    Seed::from_legacy(core::array::from_fn(|i| i as u8 + 1))
}

fn bip39_seed() -> Seed {
    Seed::from_mnemonic(MNEMONIC, "").unwrap()
}

fn seed_from_json(v: &Value) -> Seed {
    let bytes = unhex(field(v, "seed"));
    match bytes.len() {
        32 => Seed::from_legacy(bytes.try_into().unwrap()),
        64 => Seed::from_bip39_seed(bytes.try_into().unwrap()),
        n => panic!("seed of {n} bytes"),
    }
}

fn store() -> StoreId {
    StoreId::new(b"warden-test-store").unwrap()
}

/// When set, the vector tests rewrite the committed files instead of checking them.
fn regenerate() -> bool {
    std::env::var_os("WARDEN_REGENERATE_SEAL_VECTORS").is_some()
}

/// Checks `generated` against the committed `committed` text, or rewrites the file.
fn check_golden(file: &str, committed: &str, generated: &Value) {
    if regenerate() {
        let path = format!("{}/tests/data/seal/{file}", env!("CARGO_MANIFEST_DIR"));
        std::fs::write(&path, serde_json::to_string_pretty(generated).unwrap() + "\n").unwrap();
        return;
    }
    let committed: Value = serde_json::from_str(committed).unwrap();
    assert_eq!(
        &committed, generated,
        "{file}: the code no longer produces the committed bytes (a format change needs a new \
         format byte; see the seal module's compatibility promise)"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Keys

/// Every 32-byte secret Core Lightning's hsmd derives at start-up from `seed`, plus the keys
/// of one channel.
fn cln_secrets(seed: &Seed) -> Vec<(&'static str, [u8; 32])> {
    let secp = Secp256k1::new();
    let hkdf = |ikm: &[u8], salt: &[u8], info: &[u8]| {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(salt), ikm).expand(info, &mut out).unwrap();
        out
    };
    let node = NodeKeys::derive(&secp, seed, NetworkKind::Main).unwrap();
    let mut out = vec![
        ("node key", derive_node_key(seed).unwrap().expose_secret().secret_bytes()),
        ("channel seed base", hkdf(seed.first_32(), &[], b"peer seed")),
        ("derived secrets base", hkdf(seed.expose_secret(), &[], b"derived secrets")),
        ("bolt12 key", node.wallet().bolt12_key().expose_secret().secret_bytes()),
        (
            "wallet key 0",
            node.wallet().bitcoin_key(&secp, 0).unwrap().expose_secret().secret_bytes(),
        ),
    ];
    let bip32_seed = hkdf(seed.expose_secret(), &0u32.to_le_bytes(), b"bip32 seed");
    let master = Xpriv::new_master(NetworkKind::Main, &bip32_seed).unwrap();
    out.push(("bip32 master key", master.private_key.secret_bytes()));
    out.push(("bip32 master chain code", master.chain_code.to_bytes()));
    if seed.expose_secret().len() == 64 {
        let master = Xpriv::new_master(NetworkKind::Main, seed.expose_secret()).unwrap();
        out.push(("bip86 master key", master.private_key.secret_bytes()));
    }
    let derived = DerivedSecrets::from_seed(seed);
    for label in LABELS {
        // A Warden label passed to `makesecret` must not give a Warden key either.
        out.push((
            "derive_secret(warden label)",
            *derived.derive_secret(label.as_bytes()).expose_secret(),
        ));
    }
    let peer = NodeId(
        PublicKey::from_slice(&unhex(
            "02a1633cafcc01ebfb6d78e39f687a1f0995c62fc95f51ead10a02ee0be551b5dc",
        ))
        .unwrap(),
    );
    let channel_seed = node.channel_seed(&peer, Dbid(1));
    out.push(("channel seed", *channel_seed.expose_secret()));
    let channel = node.channel_keys(&peer, Dbid(1)).unwrap();
    out.push(("funding key", channel.funding_key().expose_secret().secret_bytes()));
    out.push((
        "revocation base",
        channel.revocation_basepoint_secret().expose_secret().secret_bytes(),
    ));
    out.push(("htlc base", channel.htlc_basepoint_secret().expose_secret().secret_bytes()));
    out.push(("payment base", channel.payment_basepoint_secret().expose_secret().secret_bytes()));
    out.push((
        "delayed base",
        channel.delayed_payment_basepoint_secret().expose_secret().secret_bytes(),
    ));
    out.push(("shachain seed", *channel.shachain_seed().expose_secret()));
    out
}

const LABELS: [&str; 5] = [
    "warden/record-encryption",
    "warden/record-signing",
    "warden/key-obfuscation",
    "warden/link",
    "warden/node-backup",
];

fn warden_secrets(keys: &WardenKeys) -> Vec<(&'static str, [u8; 32])> {
    vec![
        ("record encryption", *keys.record_encryption_key().expose_secret()),
        ("record signing", keys.record_signing_key().expose_secret().secret_bytes()),
        ("key obfuscation", *keys.key_obfuscation_key().expose_secret()),
        ("link", keys.link_key().expose_secret().secret_bytes()),
        ("node backup", keys.node_backup_key().expose_secret().secret_bytes()),
    ]
}

#[test]
fn warden_keys_are_distinct_and_never_cln_keys() {
    for seed in [legacy_seed(), bip39_seed(), Seed::from_legacy([0; 32])] {
        let keys = WardenKeys::derive(&seed).unwrap();
        let ours = warden_secrets(&keys);
        for (i, (a_name, a)) in ours.iter().enumerate() {
            for (b_name, b) in ours.iter().skip(i + 1) {
                assert_ne!(a, b, "{a_name} == {b_name}");
            }
        }
        let cln = cln_secrets(&seed);
        assert!(cln.len() >= 15);
        for (ours_name, ours) in &ours {
            for (cln_name, theirs) in &cln {
                assert_ne!(ours, theirs, "warden {ours_name} equals CLN {cln_name}");
            }
        }
        let node_id = NodeKeys::derive(&Secp256k1::new(), &seed, NetworkKind::Main)
            .unwrap()
            .node_id()
            .to_public_key();
        assert_ne!(keys.link_pubkey(), node_id);
        assert_ne!(keys.node_backup_pubkey(), node_id);
        assert_ne!(keys.record_signing_pubkey(), node_id.x_only_public_key().0);
    }
}

#[test]
fn warden_keys_debug_is_redacted() {
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    let printed = format!("{keys:?} {keys:#?}");
    for (name, secret) in warden_secrets(&keys) {
        assert!(!printed.contains(&hex(&secret)[..8]), "Debug leaks the {name} key");
    }
    assert_eq!(printed.matches("(fp:").count(), 10);
}

#[test]
fn keys_depend_on_the_whole_seed() {
    // Two BIP-39 seeds that share their first 32 bytes (where CLN's node key comes from).
    let mut a = [7u8; 64];
    let b = a;
    a[63] = 8;
    let ka = WardenKeys::derive(&Seed::from_bip39_seed(a)).unwrap();
    let kb = WardenKeys::derive(&Seed::from_bip39_seed(b)).unwrap();
    assert_ne!(ka.record_signing_pubkey(), kb.record_signing_pubkey());
    assert_ne!(ka.record_encryption_key(), kb.record_encryption_key());
}

// ---------------------------------------------------------------------------------------------
// 2. Records

fn sealed_fixture() -> (WardenKeys, Vec<u8>) {
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    let mut nonce = FixedEntropy::new(&[&[0x42; 24]]);
    let record =
        seal_record(&keys, &store(), b"channel/1", RecordVersion(3), b"state bytes", &mut nonce);
    assert!(nonce.is_spent(), "sealing draws exactly the 24-byte nonce");
    (keys, record.to_bytes())
}

#[test]
fn record_round_trip() {
    let (keys, bytes) = sealed_fixture();
    assert_eq!(bytes.len(), RECORD_HEADER_LEN + b"state bytes".len() + 16);
    let plain = open_record(&keys, &store(), b"channel/1", RecordVersion(3), &bytes).unwrap();
    assert_eq!(&plain[..], b"state bytes");
    let parsed = SealedRecord::from_bytes(&bytes).unwrap();
    assert_eq!(parsed.to_bytes(), bytes);
    assert_eq!(parsed.key(), keys.obfuscate_key(&store(), b"channel/1"));
    assert_eq!(parsed.version(), RecordVersion(3));
    // The name does not appear in the envelope.
    assert!(!bytes.windows(9).any(|w| w == b"channel/1"));
    // Empty plaintexts seal too.
    let empty = seal_record(&keys, &store(), b"e", RecordVersion(1), b"", &mut CountingEntropy(0));
    let plain = open_record(&keys, &store(), b"e", RecordVersion(1), &empty.to_bytes()).unwrap();
    assert!(plain.is_empty());
}

#[test]
fn flipping_any_byte_of_a_record_is_refused() {
    let (keys, bytes) = sealed_fixture();
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut tampered = bytes.clone();
            tampered[i] ^= mask;
            let err = open_record(&keys, &store(), b"channel/1", RecordVersion(3), &tampered)
                .expect_err("a flipped byte must not open");
            let expected_kind = match i {
                0 => matches!(err, OpenError::UnknownFormat { .. }),
                1..=32 => matches!(err, OpenError::KeyMismatch { .. }),
                33..=40 => matches!(err, OpenError::VersionMismatch { .. }),
                _ => err == OpenError::BadSignature,
            };
            assert!(expected_kind, "byte {i} mask {mask:#x}: {err:?}");
        }
    }
    // Truncation and extension are refused as well.
    for len in 0..bytes.len() {
        assert!(
            open_record(&keys, &store(), b"channel/1", RecordVersion(3), &bytes[..len]).is_err()
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        open_record(&keys, &store(), b"channel/1", RecordVersion(3), &longer),
        Err(OpenError::BadSignature)
    );
}

#[test]
fn wrong_binding_is_refused_with_a_named_error() {
    let (keys, bytes) = sealed_fixture();
    let other_store = StoreId::new(b"another-store").unwrap();
    assert!(matches!(
        open_record(&keys, &other_store, b"channel/1", RecordVersion(3), &bytes),
        Err(OpenError::KeyMismatch { .. })
    ));
    assert!(matches!(
        open_record(&keys, &store(), b"channel/2", RecordVersion(3), &bytes),
        Err(OpenError::KeyMismatch { .. })
    ));
    assert_eq!(
        open_record(&keys, &store(), b"channel/1", RecordVersion(4), &bytes),
        Err(OpenError::VersionMismatch { expected: RecordVersion(4), found: RecordVersion(3) })
    );
    // Another seed computes another obfuscated key for the same name.
    let other_keys = WardenKeys::derive(&bip39_seed()).unwrap();
    assert!(matches!(
        open_record(&other_keys, &store(), b"channel/1", RecordVersion(3), &bytes),
        Err(OpenError::KeyMismatch { .. })
    ));
    // The signature alone also binds the store id: a record checked as another store's fails.
    let record = SealedRecord::from_bytes(&bytes).unwrap();
    assert_eq!(
        record.verify_signature(&keys.record_signing_pubkey(), &other_store),
        Err(OpenError::BadSignature)
    );
    record.verify_signature(&keys.record_signing_pubkey(), &store()).unwrap();
}

#[test]
fn unknown_format_and_short_input_are_refused() {
    let (_, bytes) = sealed_fixture();
    let mut unknown = bytes.clone();
    unknown[0] = 0x02;
    assert_eq!(SealedRecord::from_bytes(&unknown), Err(OpenError::UnknownFormat { found: 2 }));
    assert_eq!(SealedRecord::from_bytes(&[]), Err(OpenError::Truncated { len: 0 }));
    assert_eq!(SealedRecord::from_bytes(&bytes[..144]), Err(OpenError::Truncated { len: 144 }));
}

#[test]
fn error_messages_carry_no_secret() {
    let (keys, bytes) = sealed_fixture();
    let err = open_record(&keys, &store(), b"channel/2", RecordVersion(3), &bytes).unwrap_err();
    let text = format!("{err} {err:?}");
    for (name, secret) in warden_secrets(&keys) {
        assert!(!text.contains(&hex(&secret)[..8]), "error text leaks the {name} key");
    }
    assert!(!text.contains("channel"), "error text leaks the plain name");
}

// ---------------------------------------------------------------------------------------------
// 3. Head and store verification

/// A store of sealed records kept as the storage backend would, plus its signed head.
struct Fixture {
    keys: WardenKeys,
    records: BTreeMap<Vec<u8>, SealedRecord>,
    history: Vec<(Vec<u8>, SealedRecord)>,
    heads: Vec<SignedHead>,
    entropy: CountingEntropy,
}

impl Fixture {
    fn new() -> Fixture {
        let keys = WardenKeys::derive(&legacy_seed()).unwrap();
        let genesis = Head::genesis(store(), 1_700_000_000).sign(&keys);
        Fixture {
            keys,
            records: BTreeMap::new(),
            history: Vec::new(),
            heads: vec![genesis],
            entropy: CountingEntropy(0),
        }
    }

    fn head(&self) -> &SignedHead {
        self.heads.last().unwrap()
    }

    /// One batch: writes `name` = `value` (version + 1), or deletes it when `value` is None.
    fn batch(&mut self, writes: &[(&[u8], Option<&[u8]>)]) {
        let mut removed = Vec::new();
        let mut added = Vec::new();
        for (name, value) in writes {
            let previous = self.records.remove(*name);
            let version = previous.as_ref().map_or(1, |r| r.version().0 + 1);
            if let Some(previous) = previous {
                removed.push(previous.element());
            }
            if let Some(value) = value {
                let record = seal_record(
                    &self.keys,
                    &store(),
                    name,
                    RecordVersion(version),
                    value,
                    &mut self.entropy,
                );
                added.push(record.element());
                self.history.push((name.to_vec(), record.clone()));
                self.records.insert(name.to_vec(), record);
            }
        }
        let time = self.head().head.time + 10;
        let next = self.head().head.apply(&removed, &added, time).unwrap().sign(&self.keys);
        self.heads.push(next);
    }

    fn envelopes(&self) -> Vec<Vec<u8>> {
        self.records.values().map(SealedRecord::to_bytes).collect()
    }

    fn verify(
        &self,
        records: &[Vec<u8>],
        head: &SignedHead,
        min_seq: u64,
    ) -> Result<(), VerifyStoreError> {
        verify_store(&self.keys.record_signing_pubkey(), &store(), records, head, min_seq)
    }

    fn populated() -> Fixture {
        let mut f = Fixture::new();
        f.batch(&[
            (b"channel/1", Some(b"a1")),
            (b"channel/2", Some(b"b1")),
            (b"node", Some(b"n1")),
        ]);
        f.batch(&[(b"channel/1", Some(b"a2"))]);
        f.batch(&[(b"channel/3", Some(b"c1")), (b"channel/2", None)]);
        f.batch(&[(b"channel/1", Some(b"a3"))]);
        f
    }
}

#[test]
fn a_consistent_store_verifies() {
    let f = Fixture::populated();
    assert_eq!(f.head().head.seq, 4);
    assert_eq!(f.head().head.count, 3);
    f.verify(&f.envelopes(), f.head(), 4).unwrap();
    // Order of the records does not matter.
    let mut reversed = f.envelopes();
    reversed.reverse();
    f.verify(&reversed, f.head(), 0).unwrap();
    // The head round-trips through its encoding.
    assert_eq!(SignedHead::from_bytes(&f.head().to_bytes()).unwrap(), *f.head());
    // An empty store verifies against its genesis head.
    let empty = Fixture::new();
    empty.verify(&[], empty.head(), 0).unwrap();
}

#[test]
fn a_dropped_record_is_detected() {
    let f = Fixture::populated();
    let mut records = f.envelopes();
    records.remove(1);
    assert_eq!(
        f.verify(&records, f.head(), 4),
        Err(VerifyStoreError::MissingRecords { expected: 3, found: 2 })
    );
}

#[test]
fn a_stale_record_is_detected() {
    let f = Fixture::populated();
    // Replace channel/1 v3 by its validly signed v1.
    let stale = f.history.iter().find(|(n, r)| n == b"channel/1" && r.version().0 == 1).unwrap();
    let records: Vec<Vec<u8>> = f
        .records
        .iter()
        .map(|(name, r)| if name == b"channel/1" { stale.1.to_bytes() } else { r.to_bytes() })
        .collect();
    assert_eq!(f.verify(&records, f.head(), 4), Err(VerifyStoreError::DigestMismatch { seq: 4 }));
    // Opening it as the current version names the staleness too.
    assert_eq!(
        open_record(&f.keys, &store(), b"channel/1", RecordVersion(3), &stale.1.to_bytes()),
        Err(OpenError::VersionMismatch { expected: RecordVersion(3), found: RecordVersion(1) })
    );
}

#[test]
fn a_tampered_value_is_detected() {
    let f = Fixture::populated();
    let mut records = f.envelopes();
    let last = records[2].len() - 1;
    records[2][last] ^= 1;
    assert_eq!(
        f.verify(&records, f.head(), 4),
        Err(VerifyStoreError::BadRecord { index: 2, error: OpenError::BadSignature })
    );
}

#[test]
fn an_old_head_is_detected() {
    let f = Fixture::populated();
    // The server rolls back to head 3 and the records of that time.
    let old_head = &f.heads[3];
    assert_eq!(
        f.verify(&f.envelopes(), old_head, 4),
        Err(VerifyStoreError::StaleHead { seq: 3, min_seq: 4 })
    );
    // Without the freshness anchor the old head does not match today's records either.
    assert_eq!(
        f.verify(&f.envelopes(), old_head, 0),
        Err(VerifyStoreError::DigestMismatch { seq: 3 })
    );
}

#[test]
fn other_store_faults_are_named() {
    let f = Fixture::populated();
    // A deleted record resurrected.
    let deleted = f.history.iter().find(|(n, _)| n == b"channel/2").unwrap().1.to_bytes();
    let mut records = f.envelopes();
    records.push(deleted);
    assert_eq!(
        f.verify(&records, f.head(), 4),
        Err(VerifyStoreError::ExtraRecords { expected: 3, found: 4 })
    );
    // The same record twice.
    let mut records = f.envelopes();
    records.push(records[0].clone());
    assert!(matches!(f.verify(&records, f.head(), 4), Err(VerifyStoreError::DuplicateKey { .. })));
    // A forged head (another seed's signature).
    let other = WardenKeys::derive(&bip39_seed()).unwrap();
    let forged = f.head().head.sign(&other);
    assert_eq!(f.verify(&f.envelopes(), &forged, 4), Err(VerifyStoreError::HeadSignature));
    // A head whose fields were edited after signing.
    let mut edited = *f.head();
    edited.head.seq += 1;
    assert_eq!(f.verify(&f.envelopes(), &edited, 4), Err(VerifyStoreError::HeadSignature));
    // Another store's head.
    let foreign = Head { store_id: StoreId::new(b"x").unwrap(), ..f.head().head }.sign(&f.keys);
    assert!(matches!(
        f.verify(&f.envelopes(), &foreign, 4),
        Err(VerifyStoreError::WrongStore { .. })
    ));
    // A record from another store with the same signer.
    let mut records = f.envelopes();
    let stray = seal_record(
        &f.keys,
        &StoreId::new(b"x").unwrap(),
        b"n",
        RecordVersion(1),
        b"",
        &mut CountingEntropy(9),
    );
    records[0] = stray.to_bytes();
    assert_eq!(
        f.verify(&records, f.head(), 4),
        Err(VerifyStoreError::BadRecord { index: 0, error: OpenError::BadSignature })
    );
}

#[test]
fn flipping_any_byte_of_a_signed_head_is_refused() {
    let f = Fixture::populated();
    let bytes = f.head().to_bytes();
    for i in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[i] ^= 0x01;
        if let Ok(head) = SignedHead::from_bytes(&tampered) {
            assert!(
                f.verify(&f.envelopes(), &head, 0).is_err(),
                "byte {i} of the signed head can be flipped"
            );
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Put(u8, [u8; 32]),
    Delete(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..12, any::<[u8; 32]>()).prop_map(|(k, h)| Op::Put(k, h)),
        1 => (0u8..12).prop_map(Op::Delete),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The head maintained with `apply` (O(changes) per batch) equals the head recomputed from
    /// the naive model (a map key -> (version, value hash)) after every batch.
    #[test]
    fn incremental_digest_equals_recompute(batches in prop::collection::vec(prop::collection::vec(op(), 0..6), 1..12)) {
        let mut model: BTreeMap<u8, (u64, [u8; 32])> = BTreeMap::new();
        let mut head = Head::genesis(store(), 0);
        let element = |k: u8, v: u64, h: [u8; 32]| SetElement {
            key: ObfuscatedKey([k; 32]),
            version: RecordVersion(v),
            value_hash: h,
        };
        for batch in batches {
            let mut removed = Vec::new();
            let mut added = Vec::new();
            // Collapse a batch to its final effect per key, as a store batch would.
            let mut effect: BTreeMap<u8, Option<[u8; 32]>> = BTreeMap::new();
            for op in batch {
                match op {
                    Op::Put(k, h) => effect.insert(k, Some(h)),
                    Op::Delete(k) => effect.insert(k, None),
                };
            }
            for (k, value) in effect {
                let previous = model.remove(&k);
                let version = previous.map_or(1, |(v, _)| v + 1);
                if let Some((v, h)) = previous {
                    removed.push(element(k, v, h));
                }
                if let Some(h) = value {
                    model.insert(k, (version, h));
                    added.push(element(k, version, h));
                }
            }
            head = head.apply(&removed, &added, head.time + 1).unwrap();
            let all: Vec<SetElement> = model.iter().map(|(k, (v, h))| element(*k, *v, *h)).collect();
            prop_assert_eq!(head, head.recompute(&all));
            prop_assert_eq!(head.digest, SetDigest::recompute(all.iter().rev()));
            prop_assert_eq!(Head::from_bytes(&head.to_bytes()).unwrap(), head);
        }
        if model.is_empty() {
            prop_assert_eq!(head.digest, SetDigest::EMPTY);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 4. ECIES

#[test]
fn ecies_round_trip_through_the_link_key() {
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    let plaintext = b"the node's database backup".repeat(20);
    let blob =
        ecies_seal(&keys.node_backup_pubkey(), &plaintext, BACKUP_CONTEXT, &mut CountingEntropy(1))
            .unwrap();
    assert_eq!(
        &ecies_open_with_key(keys.node_backup_key(), &blob, BACKUP_CONTEXT).unwrap()[..],
        &plaintext[..]
    );
    // The node's path: send R, receive k, open.
    let r = ecies_ephemeral_point(&blob).unwrap();
    let k = ecies_derive_key(keys.node_backup_key(), &r, BACKUP_CONTEXT).unwrap();
    assert_eq!(&ecies_open_with_derived_key(&k, &blob).unwrap()[..], &plaintext[..]);
    // Another context or another seed does not open it.
    assert_eq!(
        ecies_open_with_key(keys.node_backup_key(), &blob, b"other"),
        Err(EciesError::DecryptionFailed)
    );
    let other = WardenKeys::derive(&bip39_seed()).unwrap();
    assert_eq!(
        ecies_open_with_key(other.node_backup_key(), &blob, BACKUP_CONTEXT),
        Err(EciesError::DecryptionFailed)
    );
    // Two seals of the same plaintext differ (fresh R and nonce).
    let again = ecies_seal(
        &keys.node_backup_pubkey(),
        &plaintext,
        BACKUP_CONTEXT,
        &mut CountingEntropy(100),
    )
    .unwrap();
    assert_ne!(blob, again);
}

#[test]
fn flipping_any_byte_of_an_ecies_blob_is_refused() {
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    let blob =
        ecies_seal(&keys.node_backup_pubkey(), b"backup", BACKUP_CONTEXT, &mut CountingEntropy(5))
            .unwrap();
    for i in 0..blob.len() {
        let mut tampered = blob.clone();
        tampered[i] ^= 0x01;
        let err =
            ecies_open_with_key(keys.node_backup_key(), &tampered, BACKUP_CONTEXT).unwrap_err();
        match i {
            0 => assert_eq!(err, EciesError::UnknownFormat { found: 0 }),
            _ => assert!(
                matches!(err, EciesError::BadPoint | EciesError::DecryptionFailed),
                "byte {i}: {err:?}"
            ),
        }
    }
    for len in 0..blob.len() {
        assert!(ecies_open_with_key(keys.node_backup_key(), &blob[..len], BACKUP_CONTEXT).is_err());
    }
}

#[test]
fn ecies_refuses_a_broken_entropy_source() {
    struct Zeros;
    impl EntropySource for Zeros {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(0);
        }
    }
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    assert_eq!(
        ecies_seal(&keys.node_backup_pubkey(), b"x", BACKUP_CONTEXT, &mut Zeros),
        Err(EciesError::EntropyFailure)
    );
}

// ---------------------------------------------------------------------------------------------
// 5. Golden vectors

struct RecordCase {
    seed: Seed,
    store_id: Vec<u8>,
    key_name: &'static [u8],
    version: u64,
    plaintext: Vec<u8>,
    nonce: [u8; 24],
}

fn record_cases() -> Vec<RecordCase> {
    vec![
        RecordCase {
            seed: legacy_seed(),
            store_id: b"warden-test-store".to_vec(),
            key_name:
                b"channel/02a1633cafcc01ebfb6d78e39f687a1f0995c62fc95f51ead10a02ee0be551b5dc/1",
            version: 1,
            plaintext: unhex("0100020401020304"),
            nonce: core::array::from_fn(|i| i as u8),
        },
        RecordCase {
            seed: bip39_seed(),
            store_id: unhex("5b1d7c4a0e3f22a9b8c6d5e4f3a2b1c0"),
            key_name: b"node/allowlist",
            version: 42,
            plaintext: Vec::new(),
            nonce: [0xff; 24],
        },
        RecordCase {
            seed: legacy_seed(),
            store_id: vec![0x01],
            key_name: b"",
            version: u64::MAX,
            plaintext: (0..100u8).collect(),
            nonce: core::array::from_fn(|i| 0xa0 ^ i as u8),
        },
    ]
}

fn generate_records() -> Value {
    let cases: Vec<Value> = record_cases()
        .into_iter()
        .map(|c| {
            let keys = WardenKeys::derive(&c.seed).unwrap();
            let store_id = StoreId::new(&c.store_id).unwrap();
            let record = seal_record(
                &keys,
                &store_id,
                c.key_name,
                RecordVersion(c.version),
                &c.plaintext,
                &mut FixedEntropy::new(&[&c.nonce]),
            );
            json!({
                "seed": hex(c.seed.expose_secret()),
                "store_id": hex(&c.store_id),
                "key_name": hex(c.key_name),
                "version": c.version,
                "plaintext": hex(&c.plaintext),
                "nonce": hex(&c.nonce),
                "obfuscated_key": hex(&record.key().0),
                "value_hash": hex(&record.value_hash()),
                "signature": hex(record.signature().as_ref()),
                "sealed": hex(&record.to_bytes()),
            })
        })
        .collect();
    json!({
        "_source": "generated by crates/warden-core/tests/seal.rs (generate_records) from the inputs here; format 0x01",
        "cases": cases,
    })
}

fn head_elements() -> Vec<SetElement> {
    (1u8..=3)
        .map(|i| SetElement {
            key: ObfuscatedKey([i; 32]),
            version: RecordVersion(u64::from(i) * 10),
            value_hash: [i.wrapping_mul(0x11); 32],
        })
        .collect()
}

fn generate_heads() -> Value {
    let keys = WardenKeys::derive(&legacy_seed()).unwrap();
    let e = head_elements();
    let bumped = SetElement { version: RecordVersion(21), value_hash: [0x99; 32], ..e[1] };
    let element_json = |x: &SetElement| json!({"key": hex(&x.key.0), "version": x.version.0, "value_hash": hex(&x.value_hash)});
    let genesis = Head::genesis(store(), 1_700_000_000);
    let steps: Vec<(Vec<SetElement>, Vec<SetElement>, u64)> = vec![
        (vec![], e.clone(), 1_700_000_060),
        (vec![e[1]], vec![bumped], 1_700_000_120),
        (vec![e[0], bumped, e[2]], vec![], 1_700_000_180),
    ];
    let mut head = genesis;
    let mut out = vec![json!({
        "removed": [], "added": [], "time": genesis.time,
        "signed_head": hex(&genesis.sign(&keys).to_bytes()),
    })];
    for (removed, added, time) in steps {
        head = head.apply(&removed, &added, time).unwrap();
        out.push(json!({
            "removed": removed.iter().map(element_json).collect::<Vec<_>>(),
            "added": added.iter().map(element_json).collect::<Vec<_>>(),
            "time": time,
            "signed_head": hex(&head.sign(&keys).to_bytes()),
        }));
    }
    json!({
        "_source": "generated by crates/warden-core/tests/seal.rs (generate_heads); head format 0x01",
        "seed": hex(legacy_seed().expose_secret()),
        "store_id": hex(store().as_bytes()),
        "steps": out,
    })
}

struct EciesCase {
    seed: Seed,
    context: &'static [u8],
    plaintext: Vec<u8>,
    ephemeral_secret: [u8; 32],
    nonce: [u8; 24],
}

fn ecies_cases() -> Vec<EciesCase> {
    vec![
        EciesCase {
            seed: legacy_seed(),
            context: BACKUP_CONTEXT,
            plaintext: b"SQLite format 3\0".to_vec(),
            ephemeral_secret: [0x11; 32],
            nonce: [0x22; 24],
        },
        EciesCase {
            seed: bip39_seed(),
            context: b"",
            plaintext: Vec::new(),
            ephemeral_secret: core::array::from_fn(|i| i as u8 + 1),
            nonce: [0; 24],
        },
    ]
}

fn generate_ecies() -> Value {
    let cases: Vec<Value> = ecies_cases()
        .into_iter()
        .map(|c| {
            let keys = WardenKeys::derive(&c.seed).unwrap();
            let recipient = keys.node_backup_pubkey();
            let blob = ecies_seal(
                &recipient,
                &c.plaintext,
                c.context,
                &mut FixedEntropy::new(&[&c.ephemeral_secret, &c.nonce]),
            )
            .unwrap();
            let r = ecies_ephemeral_point(&blob).unwrap();
            let k = ecies_derive_key(keys.node_backup_key(), &r, c.context).unwrap();
            json!({
                "seed": hex(c.seed.expose_secret()),
                "recipient_pubkey": hex(&recipient.serialize()),
                "context": hex(c.context),
                "plaintext": hex(&c.plaintext),
                "ephemeral_secret": hex(&c.ephemeral_secret),
                "nonce": hex(&c.nonce),
                "ephemeral_pubkey": hex(&r.serialize()),
                "derived_key": hex(k.expose_secret()),
                "blob": hex(&blob),
            })
        })
        .collect();
    json!({
        "_source": "generated by crates/warden-core/tests/seal.rs (generate_ecies); format 0x01",
        "cases": cases,
    })
}

fn generate_keys() -> Value {
    let cases: Vec<Value> = [legacy_seed(), bip39_seed()]
        .iter()
        .map(|seed| {
            let keys = WardenKeys::derive(seed).unwrap();
            json!({
                "seed": hex(seed.expose_secret()),
                "record_encryption_key": hex(keys.record_encryption_key().expose_secret()),
                "record_signing_key": hex(&keys.record_signing_key().expose_secret().secret_bytes()),
                "record_signing_pubkey": hex(&keys.record_signing_pubkey().serialize()),
                "key_obfuscation_key": hex(keys.key_obfuscation_key().expose_secret()),
                "link_key": hex(&keys.link_key().expose_secret().secret_bytes()),
                "link_pubkey": hex(&keys.link_pubkey().serialize()),
                "node_backup_key": hex(&keys.node_backup_key().expose_secret().secret_bytes()),
                "node_backup_pubkey": hex(&keys.node_backup_pubkey().serialize()),
            })
        })
        .collect();
    json!({
        "_source": "generated by crates/warden-core/tests/seal.rs (generate_keys): HKDF-SHA256(no salt, whole seed, warden/... label)",
        "cases": cases,
    })
}

#[test]
fn golden_keys() {
    check_golden("keys.json", KEYS_JSON, &generate_keys());
    // Independent recomputation of one label with the hkdf crate.
    let v: Value = serde_json::from_str(KEYS_JSON).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let seed = seed_from_json(case);
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(None, seed.expose_secret())
            .expand(b"warden/record-encryption", &mut out)
            .unwrap();
        assert_eq!(hex(&out), field(case, "record_encryption_key"));
    }
}

#[test]
fn golden_records() {
    check_golden("records.json", RECORDS_JSON, &generate_records());
    let v: Value = serde_json::from_str(RECORDS_JSON).unwrap();
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let keys = WardenKeys::derive(&seed_from_json(case)).unwrap();
        let store_id = StoreId::new(&unhex(field(case, "store_id"))).unwrap();
        let name = unhex(field(case, "key_name"));
        let version = RecordVersion(case["version"].as_u64().unwrap());
        let sealed = unhex(field(case, "sealed"));
        let plain = open_record(&keys, &store_id, &name, version, &sealed).unwrap();
        assert_eq!(hex(&plain), field(case, "plaintext"));
        let record = SealedRecord::from_bytes(&sealed).unwrap();
        assert_eq!(hex(&record.key().0), field(case, "obfuscated_key"));
        assert_eq!(hex(&record.value_hash()), field(case, "value_hash"));
        assert_eq!(hex(record.signature().as_ref()), field(case, "signature"));
        // The layout, field by field.
        assert_eq!(sealed[0], 0x01);
        assert_eq!(hex(&sealed[1..33]), field(case, "obfuscated_key"));
        assert_eq!(sealed[33..41], version.0.to_be_bytes());
        assert_eq!(hex(&sealed[41..65]), field(case, "nonce"));
        assert_eq!(hex(&sealed[65..129]), field(case, "signature"));
        assert_eq!(sealed.len(), 129 + unhex(field(case, "plaintext")).len() + 16);
    }
}

#[test]
fn golden_heads() {
    check_golden("heads.json", HEADS_JSON, &generate_heads());
    let v: Value = serde_json::from_str(HEADS_JSON).unwrap();
    let keys = WardenKeys::derive(&seed_from_json(&v)).unwrap();
    let steps = v["steps"].as_array().unwrap();
    let heads: Vec<SignedHead> = steps
        .iter()
        .map(|s| SignedHead::from_bytes(&unhex(field(s, "signed_head"))).unwrap())
        .collect();
    for (i, head) in heads.iter().enumerate() {
        head.verify(&keys.record_signing_pubkey()).unwrap();
        assert_eq!(head.head.seq, i as u64);
    }
    assert_eq!(heads[0].head.digest, SetDigest::EMPTY);
    assert_eq!(heads[1].head.digest, SetDigest::recompute(&head_elements()));
    assert_eq!(heads[1].head.count, 3);
    // Everything removed: the digest is the empty set's again.
    assert_eq!(heads[3].head.digest, SetDigest::EMPTY);
    assert_eq!(heads[3].head.count, 0);
}

#[test]
fn golden_ecies() {
    check_golden("ecies.json", ECIES_JSON, &generate_ecies());
    let v: Value = serde_json::from_str(ECIES_JSON).unwrap();
    for case in v["cases"].as_array().unwrap() {
        let keys = WardenKeys::derive(&seed_from_json(case)).unwrap();
        let blob = unhex(field(case, "blob"));
        let context = unhex(field(case, "context"));
        let plain = ecies_open_with_key(keys.node_backup_key(), &blob, &context).unwrap();
        assert_eq!(hex(&plain), field(case, "plaintext"));
        assert_eq!(blob[0], 0x01);
        assert_eq!(hex(&blob[1..34]), field(case, "ephemeral_pubkey"));
        assert_eq!(hex(&blob[34..58]), field(case, "nonce"));
        // R = r·G for the recorded ephemeral secret.
        let r = secp256k1::SecretKey::from_slice(&unhex(field(case, "ephemeral_secret"))).unwrap();
        assert_eq!(
            hex(&PublicKey::from_secret_key(&Secp256k1::new(), &r).serialize()),
            field(case, "ephemeral_pubkey")
        );
        // The key the signer hands out opens the blob on its own.
        let k = warden_core::secret::Secret32::new(
            unhex(field(case, "derived_key")).try_into().unwrap(),
        );
        assert_eq!(hex(&ecies_open_with_derived_key(&k, &blob).unwrap()), field(case, "plaintext"));
    }
}
