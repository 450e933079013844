//! The cases of the BOLT-03 transaction tests: building each vector's commitment spec, and
//! signing a built commitment and its HTLC transactions the way the vectors were signed (plain
//! RFC 6979, `SIGHASH_ALL`, the countersignatory's HTLC signatures with the channel type's
//! sighash type).

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{PublicKey, SecretKey};
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::transaction::Version;
use bitcoin::{ScriptBuf, Transaction, WPubkeyHash, Witness};
use serde_json::Value;
use warden_core::tx::sighash::countersignatory_htlc_sighash_type;
use warden_core::tx::{
    decode_commitment_number, verify_commitment, BuiltCommitment, ChannelType,
    CommitmentOutputKind, CommitmentSpec, HtlcTx, HtlcTxKind, SpendTemplate, TxMismatch,
    VerifyError,
};

use super::{json, s, sig, tx, u, unsigned, Fixture, COMMITMENT_JSON};

/// A commitment signed by both sides, with the two DER signatures.
pub struct SignedCommitment {
    pub tx: Transaction,
    pub local_der: Vec<u8>,
    pub remote_der: Vec<u8>,
}

pub fn sign_commitment(fx: &Fixture, built: &BuiltCommitment) -> SignedCommitment {
    let msg = built.sighash().unwrap();
    let local = fx.secp.sign_ecdsa(&msg, &fx.local_funding_privkey);
    let remote = fx.secp.sign_ecdsa(&msg, &fx.remote_funding_privkey);
    let tx = built
        .clone()
        .into_signed(&sig(local, EcdsaSighashType::All), &sig(remote, EcdsaSighashType::All));
    SignedCommitment {
        tx,
        local_der: local.serialize_der().to_vec(),
        remote_der: remote.serialize_der().to_vec(),
    }
}

/// An HTLC transaction signed by both sides.
pub struct SignedHtlcTx {
    pub htlc_tx: HtlcTx,
    pub tx: Transaction,
    pub local_der: Vec<u8>,
    pub remote_der: Vec<u8>,
}

pub fn sign_htlc_txs(fx: &Fixture, built: &BuiltCommitment) -> Vec<SignedHtlcTx> {
    built
        .htlc_txs()
        .unwrap()
        .into_iter()
        .map(|htlc_tx| {
            let remote_ty = htlc_tx.countersignatory_sighash_type();
            assert_eq!(remote_ty, countersignatory_htlc_sighash_type(built.channel_type));
            let remote = fx
                .secp
                .sign_ecdsa(&htlc_tx.countersignatory_sighash().unwrap(), &fx.remote_htlc_privkey);
            let local =
                fx.secp.sign_ecdsa(&htlc_tx.broadcaster_sighash().unwrap(), &fx.local_htlc_privkey);
            let preimage = match htlc_tx.kind {
                HtlcTxKind::Success => Some(
                    fx.htlcs
                        .iter()
                        .find(|h| h.htlc.payment_hash == htlc_tx.htlc.payment_hash)
                        .unwrap()
                        .preimage
                        .clone(),
                ),
                HtlcTxKind::Timeout => None,
            };
            let tx = htlc_tx
                .clone()
                .into_signed(
                    &sig(remote, remote_ty),
                    &sig(local, EcdsaSighashType::All),
                    preimage.as_ref(),
                )
                .unwrap();
            SignedHtlcTx {
                htlc_tx,
                tx,
                local_der: local.serialize_der().to_vec(),
                remote_der: remote.serialize_der().to_vec(),
            }
        })
        .collect()
}

/// The spec's HTLC id of the HTLC at commitment output `vout`.
pub fn htlc_id_at(built: &BuiltCommitment, htlcs_used: &[u64], vout: u32) -> u64 {
    match built.outputs[vout as usize].kind {
        CommitmentOutputKind::Htlc { index, .. } => htlcs_used[index],
        other => panic!("output {vout} is {other:?}, not an htlc"),
    }
}

/// Checks what every case has in common: one input spending the funding outpoint, the
/// obscured commitment number, version 2.
pub fn check_commitment_frame(fx: &Fixture, built: &BuiltCommitment) {
    assert_eq!(built.tx.version, Version::TWO);
    assert_eq!(built.tx.input.len(), 1);
    assert_eq!(built.tx.input[0].previous_output, fx.funding_outpoint);
    assert_eq!(decode_commitment_number(&built.tx, fx.obscuring_factor), Ok(fx.commitment_number));
}

pub fn appendix_c_spec(fx: &Fixture, case: &Value) -> CommitmentSpec {
    fx.spec(
        ChannelType::StaticRemoteKey,
        u(case, "to_local_msat"),
        u(case, "to_remote_msat"),
        u(case, "local_feerate_per_kw"),
        u(&fx.common, "local_dust_limit_satoshi"),
        &Fixture::htlcs_used(case),
    )
}

pub fn appendix_f_spec(fx: &Fixture, case: &Value) -> CommitmentSpec {
    let htlcs_used = Fixture::htlcs_used(case);
    assert_eq!(case["UseTestHtlcs"].as_bool().unwrap(), !htlcs_used.is_empty());
    fx.spec(
        ChannelType::AnchorsZeroFeeHtlc,
        u(case, "LocalBalance"),
        u(case, "RemoteBalance"),
        u(case, "FeePerKw"),
        u(case, "DustLimitSatoshis"),
        &htlcs_used,
    )
}

/// The "commitment tx with seven outputs untrimmed (maximum feerate)" case: every output kind.
pub fn mutation_fixture() -> (CommitmentSpec, Transaction) {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let case = &root["test_cases"][2];
    assert_eq!(s(case, "name"), "commitment tx with seven outputs untrimmed (maximum feerate)");
    (appendix_c_spec(&fx, case), unsigned(&tx(s(case, "output_commit_tx"))))
}

pub fn mismatch(spec: &CommitmentSpec, tx: &Transaction) -> TxMismatch {
    match verify_commitment(spec, tx) {
        Err(VerifyError::Mismatch(m)) => m,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

pub fn seven_output_commitment(channel_type: ChannelType) -> (Fixture, BuiltCommitment) {
    let fx = Fixture::load();
    let spec = fx.spec(channel_type, 6_988_000_000, 3_000_000_000, 644, 546, &[0, 1, 2, 3, 4]);
    let built = spec.build().unwrap();
    (fx, built)
}

pub fn destination() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&WPubkeyHash::hash(b"destination"))
}

/// Checks a template's signature verifies against its sighash and returns its witness.
pub fn sign_template(fx: &Fixture, t: &SpendTemplate, key: &SecretKey) -> Witness {
    let msg = t.sighash().unwrap();
    let signature = fx.secp.sign_ecdsa(&msg, key);
    fx.secp.verify_ecdsa(&msg, &signature, &PublicKey::from_secret_key(&fx.secp, key)).unwrap();
    t.witness(Some(&sig(signature, EcdsaSighashType::All))).unwrap()
}
