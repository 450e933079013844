//! Fixtures for the BOLT-03 transaction tests: the Appendix B/C/F vectors loaded from
//! `tests/data/bolt3/` (provenance in `tests/data/README.md`) and turned into Warden's types.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

pub mod cases;

use bitcoin::consensus::encode::deserialize;
use bitcoin::hex::FromHex;
use bitcoin::secp256k1::{ecdsa, All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::{OutPoint, Transaction, Txid};
use serde_json::Value;
use warden_core::keys::bolt3::derive_private_key;
use warden_core::keys::roles::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::secret::PrivateKey;
use warden_core::tx::{
    ChannelType, CommitmentKeys, CommitmentSpec, Htlc, HtlcDirection, ObscuringFactor, Party,
    PaymentPreimage,
};
use warden_core::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// Appendix B.
pub const FUNDING_JSON: &str = include_str!("../data/bolt3/bolt3_funding_tx.json");
/// Appendices C and F.
pub const COMMITMENT_JSON: &str = include_str!("../data/bolt3/bolt3_commitment_txs.json");

/// Parses a JSON file of the vectors.
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("vector file is JSON")
}

/// A string field.
pub fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_else(|| panic!("string field {key}"))
}

/// An integer field (numbers, or decimal strings as Appendix B writes them).
pub fn u(v: &Value, key: &str) -> u64 {
    match v.get(key) {
        Some(Value::Number(n)) => n.as_u64().unwrap(),
        Some(Value::String(text)) => text.parse().unwrap(),
        other => panic!("integer field {key}: {other:?}"),
    }
}

/// Hex to bytes.
pub fn hex(text: &str) -> Vec<u8> {
    Vec::<u8>::from_hex(text).unwrap()
}

/// A 32-byte hex string.
pub fn hex32(text: &str) -> [u8; 32] {
    hex(text).try_into().unwrap()
}

/// A private key written the spec's way (32 bytes and a trailing `01`).
pub fn privkey(text: &str) -> SecretKey {
    let bytes = hex(text);
    assert_eq!(bytes.len(), 33, "spec private keys keep the 01 suffix");
    assert_eq!(bytes[32], 1);
    SecretKey::from_slice(&bytes[..32]).unwrap()
}

/// A compressed public key.
pub fn pubkey(text: &str) -> PublicKey {
    PublicKey::from_slice(&hex(text)).unwrap()
}

/// A transaction.
pub fn tx(text: &str) -> Transaction {
    deserialize(&hex(text)).unwrap()
}

/// The transaction without its witnesses (what the node hands the signer).
pub fn unsigned(tx: &Transaction) -> Transaction {
    let mut tx = tx.clone();
    for input in &mut tx.input {
        input.witness.clear();
    }
    tx
}

/// An RFC 6979 signature (no extra entropy, no low-R grinding), DER-encoded.
pub fn sign_der(secp: &Secp256k1<All>, msg: &Message, key: &SecretKey) -> Vec<u8> {
    secp.sign_ecdsa(msg, key).serialize_der().to_vec()
}

/// A signature with its sighash type.
pub fn sig(
    signature: ecdsa::Signature,
    ty: bitcoin::sighash::EcdsaSighashType,
) -> bitcoin::ecdsa::Signature {
    bitcoin::ecdsa::Signature { signature, sighash_type: ty }
}

/// One of the spec's HTLCs, with its id and preimage.
#[derive(Clone, Debug)]
pub struct VectorHtlc {
    /// The spec's HTLC number.
    pub id: u64,
    /// The HTLC from the local (broadcaster) side.
    pub htlc: Htlc,
    /// Its preimage.
    pub preimage: PaymentPreimage,
}

/// The Appendix C `common` section as Warden types.
#[derive(Debug)]
pub struct Fixture {
    pub secp: Secp256k1<All>,
    pub common: Value,
    pub funding_outpoint: OutPoint,
    pub funding_value: Sat,
    pub local_funding_privkey: SecretKey,
    pub remote_funding_privkey: SecretKey,
    pub local_funding_pubkey: FundingPubkey,
    pub remote_funding_pubkey: FundingPubkey,
    pub local: Basepoints,
    pub remote: Basepoints,
    pub per_commitment_point: PerCommitmentPoint,
    /// `local_privkey`: the local HTLC private key of this commitment.
    pub local_htlc_privkey: SecretKey,
    /// `remote_privkey`: the remote HTLC private key of this commitment.
    pub remote_htlc_privkey: SecretKey,
    pub obscuring_factor: ObscuringFactor,
    pub keys: CommitmentKeys,
    pub commitment_number: CommitmentNumber,
    pub to_self_delay: u16,
    pub htlcs: Vec<VectorHtlc>,
}

impl Fixture {
    /// Loads Appendix C's common section.
    pub fn load() -> Fixture {
        let root = json(COMMITMENT_JSON);
        let common = root["common"].clone();
        let internal = &common["internal"];
        let secp = Secp256k1::new();

        let local_funding_privkey = privkey(s(&common, "local_funding_privkey"));
        let remote_funding_privkey = privkey(s(internal, "remote_funding_privkey"));
        let local_funding_pubkey = FundingPubkey(pubkey(s(&common, "local_funding_pubkey")));
        let remote_funding_pubkey = FundingPubkey(pubkey(s(&common, "remote_funding_pubkey")));

        let local_payment = pubkey(s(&common, "local_payment_basepoint"));
        let remote_payment = pubkey(s(&common, "remote_payment_basepoint"));
        // The vectors give only the basepoints a local commitment uses; the local revocation
        // and remote delayed basepoints are never read, so any point stands in for them.
        let local = Basepoints {
            revocation: RevocationBasepoint(local_payment),
            payment: PaymentBasepoint(local_payment),
            htlc: HtlcBasepoint(pubkey(s(&common, "local_htlc_basepoint"))),
            delayed_payment: DelayedPaymentBasepoint(pubkey(s(
                internal,
                "local_delayed_payment_basepoint",
            ))),
        };
        let remote = Basepoints {
            revocation: RevocationBasepoint(pubkey(s(internal, "remote_revocation_basepoint"))),
            payment: PaymentBasepoint(remote_payment),
            htlc: HtlcBasepoint(pubkey(s(&common, "remote_htlc_basepoint"))),
            delayed_payment: DelayedPaymentBasepoint(remote_payment),
        };
        let per_commitment_point =
            PerCommitmentPoint(pubkey(s(internal, "local_per_commitment_point")));
        let keys = CommitmentKeys::derive(&secp, &per_commitment_point, &local, &remote).unwrap();

        let htlcs = root["common"]["htlcs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let preimage = PaymentPreimage::new(hex32(s(h, "payment_preimage")));
                let direction = match s(h, "direction") {
                    "local->remote" => HtlcDirection::Offered,
                    "remote->local" => HtlcDirection::Received,
                    other => panic!("direction {other}"),
                };
                VectorHtlc {
                    id: u(h, "id"),
                    htlc: Htlc {
                        direction,
                        amount: Msat(u(h, "amount_msat")),
                        payment_hash: preimage.payment_hash(),
                        cltv_expiry: u32::try_from(u(h, "expiry")).unwrap(),
                    },
                    preimage,
                }
            })
            .collect();

        Fixture {
            funding_outpoint: OutPoint {
                txid: s(&common, "funding_tx_id").parse::<Txid>().unwrap(),
                vout: u32::try_from(u(&common, "funding_output_index")).unwrap(),
            },
            funding_value: Sat(u(&common, "funding_amount_satoshi")),
            local_htlc_privkey: privkey(s(&common, "local_privkey")),
            remote_htlc_privkey: privkey(s(internal, "remote_privkey")),
            obscuring_factor: ObscuringFactor::from_payment_basepoints(
                &local.payment,
                &remote.payment,
            ),
            commitment_number: CommitmentNumber::new(u(&common, "commitment_number")).unwrap(),
            to_self_delay: u16::try_from(u(&common, "local_delay")).unwrap(),
            local_funding_privkey,
            remote_funding_privkey,
            local_funding_pubkey,
            remote_funding_pubkey,
            local,
            remote,
            per_commitment_point,
            keys,
            htlcs,
            secp,
            common,
        }
    }

    /// The spec's HTLC number `id`.
    pub fn htlc(&self, id: u64) -> &VectorHtlc {
        self.htlcs.iter().find(|h| h.id == id).unwrap()
    }

    /// The local commitment of one test case (local is the opener).
    pub fn spec(
        &self,
        channel_type: ChannelType,
        to_local: u64,
        to_remote: u64,
        feerate: u64,
        dust_limit: u64,
        htlcs_used: &[u64],
    ) -> CommitmentSpec {
        CommitmentSpec {
            channel_type,
            funding_outpoint: self.funding_outpoint,
            funding_value: self.funding_value,
            broadcaster_funding_pubkey: self.local_funding_pubkey,
            countersignatory_funding_pubkey: self.remote_funding_pubkey,
            obscuring_factor: self.obscuring_factor,
            commitment_number: self.commitment_number,
            keys: self.keys,
            to_self_delay: self.to_self_delay,
            dust_limit: Sat(dust_limit),
            feerate: FeeratePerKw(u32::try_from(feerate).unwrap()),
            opener: Party::Broadcaster,
            to_broadcaster: Msat(to_local),
            to_countersignatory: Msat(to_remote),
            htlcs: htlcs_used.iter().map(|id| self.htlc(*id).htlc).collect(),
        }
    }

    /// The `htlcs_used` list of a case.
    pub fn htlcs_used(case: &Value) -> Vec<u64> {
        case["htlcs_used"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect()
    }

    /// The local HTLC private key derived from the local HTLC basepoint secret (the vectors'
    /// `local_privkey`); checks the derivation on the way.
    pub fn derived_local_htlc_privkey(&self) -> PrivateKey {
        let base =
            PrivateKey::new(privkey(s(&self.common["internal"], "local_payment_basepoint_secret")));
        derive_private_key(&self.secp, &base, &self.per_commitment_point).unwrap()
    }
}
