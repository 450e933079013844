//! BOLT-03 Appendix D (per-commitment secret generation and compact storage) and Appendix E
//! (key derivation), data-driven from `tests/data/bolt3/`, plus a property test of the compact
//! storage against a naive model that keeps every secret.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::hex::{DisplayHex, FromHex};
use proptest::prelude::*;
use serde_json::Value;
use warden_core::keys::bolt3::{
    derive_private_key, derive_public_key, derive_revocation_privkey, derive_revocation_pubkey,
};
use warden_core::keys::{PerCommitmentPoint, RevocationBasepoint};
use warden_core::secp256k1::{PublicKey, Secp256k1};
use warden_core::secret::{PerCommitmentSecret, PrivateKey};
use warden_core::shachain::{generate_from_seed, SecretStore, ShachainError, MAX_INDEX};

const SECRETS: &str = include_str!("data/bolt3/bolt3_per_commitment_secrets.json");
const KEYS: &str = include_str!("data/bolt3/bolt3_key_derivation.json");

fn hex32(v: &Value) -> [u8; 32] {
    <[u8; 32]>::from_hex(v.as_str().unwrap()).unwrap()
}

fn pubkey(v: &Value) -> PublicKey {
    v.as_str().unwrap().parse().unwrap()
}

#[test]
fn appendix_d_generation() {
    let data: Value = serde_json::from_str(SECRETS).unwrap();
    let cases = data["generation"].as_array().unwrap();
    assert_eq!(cases.len(), 5);
    for case in cases {
        let seed = <[u8; 32]>::from_hex(&case["seed"].as_str().unwrap().to_lowercase()).unwrap();
        let index = case["I"].as_u64().unwrap();
        let got = generate_from_seed(&seed, index);
        assert_eq!(got, hex32(&case["output"]), "{}", case["name"]);
    }
}

#[test]
fn appendix_d_storage() {
    let data: Value = serde_json::from_str(SECRETS).unwrap();
    let cases = data["storage"].as_array().unwrap();
    assert_eq!(cases.len(), 9);
    let mut steps_run = 0;
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut store = SecretStore::new();
        let expect_error_at = case["expect_error_at_step"].as_u64().map(|s| s as usize);
        for (step, s) in case["steps"].as_array().unwrap().iter().enumerate() {
            steps_run += 1;
            let index = s["I"].as_u64().unwrap();
            let secret = hex32(&s["secret"]);
            let before = store.clone();
            let result = store.insert(index, secret);
            match s["output"].as_str().unwrap() {
                "OK" => {
                    assert_eq!(result, Ok(()), "{name} step {step}");
                    assert_eq!(store.get(index), Some(secret), "{name} step {step}");
                }
                "ERROR" => {
                    assert_eq!(Some(step), expect_error_at, "{name}: error at an unexpected step");
                    assert!(
                        matches!(result, Err(ShachainError::DoesNotChain { index: i, .. }) if i == index),
                        "{name} step {step}: {result:?}"
                    );
                    assert_eq!(store, before, "{name}: a refused secret changed the store");
                }
                other => panic!("unknown output {other}"),
            }
        }
        if let Some(at) = expect_error_at {
            assert_eq!(at + 1, case["steps"].as_array().unwrap().len(), "{name}");
        }
    }
    assert_eq!(steps_run, 56);
}

#[test]
fn appendix_e_key_derivation() {
    let secp = Secp256k1::new();
    let data: Value = serde_json::from_str(KEYS).unwrap();
    let inputs = &data["inputs"];
    let base_secret = PrivateKey::from_slice(&hex32(&inputs["base_secret"])).unwrap();
    let per_commitment_secret = PerCommitmentSecret::new(hex32(&inputs["per_commitment_secret"]));
    let base_point = pubkey(&inputs["base_point"]);
    let pcp = PerCommitmentPoint(pubkey(&inputs["per_commitment_point"]));
    assert_eq!(base_secret.public_key(&secp), base_point);
    let cases = data["test_cases"].as_array().unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let want = case["output"].as_str().unwrap();
        let got = match case["output_name"].as_str().unwrap() {
            "localpubkey" => derive_public_key(&secp, &base_point, &pcp).unwrap().to_string(),
            "localprivkey" => derive_private_key(&secp, &base_secret, &pcp)
                .unwrap()
                .expose_secret()
                .secret_bytes()
                .to_lower_hex_string(),
            "revocationpubkey" => {
                derive_revocation_pubkey(&secp, &RevocationBasepoint(base_point), &pcp)
                    .unwrap()
                    .0
                    .to_string()
            }
            "revocationprivkey" => {
                derive_revocation_privkey(&secp, &base_secret, &per_commitment_secret)
                    .unwrap()
                    .expose_secret()
                    .secret_bytes()
                    .to_lower_hex_string()
            }
            other => panic!("unknown case {other}"),
        };
        assert_eq!(got, want, "{}", case["name"]);
    }
}

/// The naive model: every accepted secret is kept; a new secret is accepted iff it derives
/// every kept secret whose index lies below it in the tree.
#[derive(Default)]
struct Naive {
    kept: Vec<(u64, [u8; 32])>,
}

impl Naive {
    fn derivable(from: u64, to: u64) -> bool {
        let bits = from.trailing_zeros().min(48);
        let mask = if bits >= 64 { 0 } else { !((1u64 << bits) - 1) };
        to & mask == from && to != from
    }

    /// Derives `to` from the secret of `from` by the BOLT-03 rule, one flip-and-hash per bit.
    fn derive(from_secret: &[u8; 32], from: u64, to: u64) -> [u8; 32] {
        use bitcoin::hashes::{sha256, Hash};
        let mut p = *from_secret;
        for b in (0..from.trailing_zeros().min(48)).rev() {
            if to & (1 << b) != 0 {
                p[(b / 8) as usize] ^= 1 << (b % 8);
                p = sha256::Hash::hash(&p).to_byte_array();
            }
        }
        p
    }

    fn insert(&mut self, index: u64, secret: [u8; 32]) -> bool {
        let ok = self
            .kept
            .iter()
            .filter(|(i, _)| Naive::derivable(index, *i))
            .all(|(i, s)| Naive::derive(&secret, index, *i) == *s);
        if ok {
            self.kept.push((index, secret));
        }
        ok
    }

    /// The secret of `index` if it was kept or lies below a kept one in the tree.
    fn get(&self, index: u64) -> Option<[u8; 32]> {
        self.kept.iter().find_map(|(i, s)| {
            if *i == index {
                Some(*s)
            } else if Naive::derivable(*i, index) {
                Some(Naive::derive(s, *i, index))
            } else {
                None
            }
        })
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random runs of revealed secrets, some of them corrupted: the compact store accepts and
    /// refuses exactly what the naive model does, and returns the same secret for every index.
    #[test]
    fn compact_storage_matches_naive_model(
        seed in any::<[u8; 32]>(),
        wrong_seed in any::<[u8; 32]>(),
        start_offset in 0u64..4,
        len in 1usize..200,
        corrupt in proptest::collection::vec(any::<bool>(), 200),
    ) {
        let mut store = SecretStore::new();
        let mut model = Naive::default();
        let mut index = MAX_INDEX - start_offset;
        for (step, corrupt) in corrupt.iter().take(len).enumerate() {
            let secret = if *corrupt && step % 7 == 3 {
                generate_from_seed(&wrong_seed, index)
            } else {
                generate_from_seed(&seed, index)
            };
            let before = store.clone();
            let accepted = store.insert(index, secret).is_ok();
            prop_assert_eq!(accepted, model.insert(index, secret), "step {}", step);
            if accepted {
                index -= 1;
            } else {
                prop_assert_eq!(&store, &before);
                // A peer whose secrets do not chain is not given another try here: the
                // channel is broken. Stop this run.
                break;
            }
        }
        for probe in (index.saturating_sub(2))..=MAX_INDEX.min(index + 260) {
            prop_assert_eq!(store.get(probe), model.get(probe), "index {}", probe);
        }
    }
}
