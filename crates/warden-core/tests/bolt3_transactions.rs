//! BOLT-03 transactions against the specification's vectors.
//!
//! - Appendix B: the funding transaction, rebuilt and signed byte for byte.
//! - Appendix C (`option_static_remotekey`): all 16 commitment transactions and all 33 HTLC
//!   transactions byte for byte, every signature reproduced, every field of every case compared.
//! - Appendix F (zero-fee HTLC anchors): all 9 commitment transactions and all 15 HTLC
//!   transactions byte for byte, the countersignatory's HTLC signatures with
//!   `SIGHASH_SINGLE|ANYONECANPAY`.
//! - The verify path accepts every vector commitment and returns its meaning; one-field
//!   mutations are reported as the right `TxMismatch`.
//! - Spend templates: sequence, locktime, witness shape and fee.
//!
//! Signatures: every signature in Appendices B, C and F is a plain RFC 6979 ECDSA signature
//! (`secp256k1`'s `sign_ecdsa`: no extra entropy, no low-R grinding). Several of them have a
//! high R (a 33-byte DER `r`), which low-R grinding would never produce;
//! `vector_signatures_are_plain_rfc6979` pins this.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod bolt3_support;

use bitcoin::absolute::LockTime;
use bitcoin::consensus::encode::{deserialize, serialize};
use bitcoin::hashes::Hash;
use bitcoin::hex::DisplayHex;
use bitcoin::script::Builder;
use bitcoin::secp256k1::{Message, PublicKey, Secp256k1};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::transaction::Version;
use bitcoin::{
    Address, Amount, Block, Network, OutPoint, ScriptBuf, Sequence, Transaction, TxIn, TxOut,
    WPubkeyHash, Witness,
};

use bolt3_support::cases::{
    appendix_c_spec, appendix_f_spec, check_commitment_frame, destination, htlc_id_at, mismatch,
    mutation_fixture, seven_output_commitment, sign_commitment, sign_htlc_txs, sign_template,
};
use bolt3_support::{
    hex, json, privkey, pubkey, s, sig, sign_der, tx, u, unsigned, Fixture, COMMITMENT_JSON,
    FUNDING_JSON,
};
use warden_core::keys::bolt3::derive_private_key;
use warden_core::keys::roles::{FundingPubkey, PerCommitmentPoint};
use warden_core::secret::PrivateKey;
use warden_core::tx::funding::{funding_script_pubkey, funding_witness_script};
use warden_core::tx::scripts::to_remote_p2wpkh_script_pubkey;
use warden_core::tx::sweep::{
    claim_offered_htlc, reclaim_received_htlc, spend_anchor, spend_delayed_to_local,
    spend_revoked_htlc, spend_revoked_to_local, spend_to_remote_anchors, sweep_anchor_after_delay,
};
use warden_core::tx::{
    find_funding_output, funding_output, verify_commitment, verify_tx, ChannelType,
    CommitmentOutputKind, HtlcDirection, HtlcTxKind, ObscuringFactor, SpendFee, SpendPath,
    SweepError, TxMismatch, VerifyError, WitnessError, ANCHOR_OUTPUT_VALUE,
};
use warden_core::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

// ---------------------------------------------------------------------------------------------
// Appendix B

#[test]
fn appendix_b_funding_transaction() {
    let v = json(FUNDING_JSON);
    let secp = Secp256k1::new();

    // The input is the block-1 coinbase output, P2PKH of the coinbase key.
    let genesis: Block = deserialize(&hex(s(&v, "Block_0_genesis"))).unwrap();
    let block_1: Block = deserialize(&hex(s(&v, "Block_1"))).unwrap();
    assert_eq!(block_1.header.prev_blockhash, genesis.block_hash());
    let coinbase = tx(s(&v, "Block_1_coinbase_transaction"));
    assert_eq!(block_1.txdata, core::slice::from_ref(&coinbase));
    assert_eq!(coinbase.compute_txid().to_string(), s(&v, "input_txid"));
    let input_index = u32::try_from(u(&v, "input_index")).unwrap();
    let spent = &coinbase.output[input_index as usize];
    assert_eq!(spent.value.to_sat(), u(&v, "input_satoshis"));
    let key = privkey(s(&v, "Block_1_coinbase_privkey"));
    let pk = bitcoin::PublicKey::new(PublicKey::from_secret_key(&secp, &key));
    assert_eq!(spent.script_pubkey, ScriptBuf::new_p2pkh(&pk.pubkey_hash()));
    let comment = |prefix: &str| {
        v["comments"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|c| c.as_str().unwrap().strip_prefix(prefix))
            .unwrap()
            .to_owned()
    };
    let wif = bitcoin::PrivateKey::from_wif(&comment("# privkey in base58: ")).unwrap();
    assert_eq!(wif.inner, key);
    assert_eq!(Address::p2pkh(pk, Network::Testnet).to_string(), comment("# pubkey in base68: "));

    let local = FundingPubkey(pubkey(s(&v, "local_funding_pubkey")));
    let remote = FundingPubkey(pubkey(s(&v, "remote_funding_pubkey")));
    assert_eq!(
        funding_witness_script(&local, &remote).as_bytes(),
        hex(s(&v, "funding_witness_script"))
    );
    for comment in v["comments"].as_array().unwrap() {
        if let Some(script) = comment.as_str().unwrap().strip_prefix("# funding witness script = ")
        {
            assert_eq!(funding_witness_script(&remote, &local).as_bytes(), hex(script));
        }
    }

    // Funding output first, change (P2WPKH of the same key) second, as in the vector.
    let funding_value = Sat(u(&v, "funding_satoshis"));
    let change = TxOut {
        value: Amount::from_sat(u(&v, "change_satoshis")),
        script_pubkey: ScriptBuf::new_p2wpkh(&WPubkeyHash::hash(&pk.inner.serialize())),
    };
    let mut funding_tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint { txid: coinbase.compute_txid(), vout: input_index },
            script_sig: ScriptBuf::new(),
            sequence: Sequence::MAX,
            witness: Witness::new(),
        }],
        output: vec![funding_output(funding_value, &local, &remote), change],
    };

    // Legacy (pre-segwit) sighash, SIGHASH_ALL, plain RFC 6979 signature.
    let sighash = SighashCache::new(&funding_tx)
        .legacy_signature_hash(0, &spent.script_pubkey, EcdsaSighashType::All.to_u32())
        .unwrap();
    let signature = secp.sign_ecdsa(&Message::from_digest(sighash.to_byte_array()), &key);
    // Its R is high (33-byte DER integer): no low-R grinding was done.
    assert_eq!(signature.serialize_der()[3], 0x21);
    let signature = sig(signature, EcdsaSighashType::All);
    funding_tx.input[0].script_sig =
        Builder::new().push_slice(signature.serialize()).push_key(&pk).into_script();

    assert_eq!(serialize(&funding_tx).to_lower_hex_string(), s(&v, "funding_tx"));
    assert_eq!(funding_tx.compute_txid().to_string(), s(&v, "txid"));
    assert_eq!(
        find_funding_output(&funding_tx, funding_value, &remote, &local),
        Ok(u32::try_from(u(&v, "funding_output")).unwrap())
    );

    // The fee is the feerate applied to the transaction's weight.
    let feerate = FeeratePerKw(u32::try_from(u(&v, "feerate_per_kw")).unwrap());
    let fee = u(&v, "input_satoshis") - funding_value.0 - u(&v, "change_satoshis");
    assert_eq!(feerate.fee_for_weight(funding_tx.weight().to_wu()), Sat(fee));
    assert_eq!(comment("# feerate_per_kw: "), s(&v, "feerate_per_kw"));
    assert_eq!(comment("# txid: "), s(&v, "txid"));
}

// ---------------------------------------------------------------------------------------------
// Appendix C: keys

#[test]
fn appendix_c_keys_and_obscuring_factor() {
    let fx = Fixture::load();
    let c = &fx.common;
    let internal = &c["internal"];

    // Obscuring factor: local is the opener.
    assert_eq!(
        format!("{:#x}", fx.obscuring_factor.get()),
        s(c, "obscuring_factor"),
        "SHA256(opener payment basepoint || accepter payment basepoint), lower 48 bits"
    );
    assert_eq!(
        c["comments"][0].as_str().unwrap(),
        format!("# obscured commitment number = {:#x} ^ 42", fx.obscuring_factor.get())
    );
    assert_eq!(fx.commitment_number.get(), 42);

    // Basepoints and the per-commitment point from their secrets.
    let secp = &fx.secp;
    let point = |secret: &str| PublicKey::from_secret_key(secp, &privkey(s(internal, secret)));
    assert_eq!(point("local_payment_basepoint_secret"), fx.local.payment.0);
    assert_eq!(point("local_payment_basepoint_secret"), fx.local.htlc.0);
    assert_eq!(point("remote_payment_basepoint_secret"), fx.remote.payment.0);
    assert_eq!(point("remote_payment_basepoint_secret"), fx.remote.htlc.0);
    assert_eq!(point("remote_revocation_basepoint_secret"), fx.remote.revocation.0);
    assert_eq!(point("local_delayed_payment_basepoint_secret"), fx.local.delayed_payment.0);
    assert_eq!(point("x_local_per_commitment_secret"), fx.per_commitment_point.0);
    assert_eq!(
        PublicKey::from_secret_key(secp, &fx.local_funding_privkey),
        fx.local_funding_pubkey.0
    );
    assert_eq!(
        PublicKey::from_secret_key(secp, &fx.remote_funding_privkey),
        fx.remote_funding_pubkey.0
    );

    // The derived commitment keys.
    assert_eq!(fx.keys.per_commitment_point, fx.per_commitment_point);
    assert_eq!(fx.keys.broadcaster_htlc.0, pubkey(s(c, "local_htlcpubkey")));
    assert_eq!(fx.keys.countersignatory_htlc.0, pubkey(s(c, "remote_htlcpubkey")));
    assert_eq!(fx.keys.broadcaster_delayed_payment.0, pubkey(s(c, "local_delayedpubkey")));
    assert_eq!(fx.keys.revocation.0, pubkey(s(c, "local_revocation_pubkey")));
    assert_eq!(fx.keys.countersignatory_payment, fx.remote.payment);

    // The derived private keys.
    assert_eq!(*fx.derived_local_htlc_privkey().expose_secret(), fx.local_htlc_privkey);
    let pcp = PerCommitmentPoint(fx.per_commitment_point.0);
    let derive = |secret: &str| {
        *derive_private_key(secp, &PrivateKey::new(privkey(s(internal, secret))), &pcp)
            .unwrap()
            .expose_secret()
    };
    assert_eq!(derive("remote_payment_basepoint_secret"), fx.remote_htlc_privkey);
    assert_eq!(
        derive("local_delayed_payment_basepoint_secret"),
        privkey(s(internal, "local_delayed_privkey"))
    );

    // Funding script (and its repeat in the comments).
    let script = funding_witness_script(&fx.local_funding_pubkey, &fx.remote_funding_pubkey);
    assert_eq!(script.as_bytes(), hex(s(c, "funding_witness_script")));
    assert_eq!(
        c["comments"][1].as_str().unwrap(),
        format!("# funding wscript = {}", script.as_bytes().to_lower_hex_string())
    );
}

// ---------------------------------------------------------------------------------------------
// Appendix C: commitments and HTLC transactions

#[test]
fn appendix_c_commitment_and_htlc_transactions() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let cases = root["test_cases"].as_array().unwrap();
    let (mut commitments, mut htlc_txs) = (0, 0);

    for case in cases {
        let name = s(case, "name");
        let htlcs_used = Fixture::htlcs_used(case);
        let spec = appendix_c_spec(&fx, case);
        let built = spec.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        check_commitment_frame(&fx, &built);

        // Fees.
        if case.get("base_commitment_tx_fee_sat").is_some() {
            assert_eq!(built.base_fee, Sat(u(case, "base_commitment_tx_fee_sat")), "{name}");
            assert_eq!(built.actual_fee(), Sat(u(case, "actual_commitment_tx_fee_sat")), "{name}");
        }

        // to_local.
        let to_local = built.output(CommitmentOutputKind::ToBroadcaster);
        match case.get("to_local_output_comment") {
            Some(c) => {
                let (_, out) = to_local.unwrap_or_else(|| panic!("{name}: no to_local"));
                assert_eq!(out.value, Sat(u(c, "amount_sat")), "{name}");
                assert_eq!(out.witness_script.as_ref().unwrap().as_bytes(), hex(s(c, "wscript")));
            }
            None if case.get("base_commitment_tx_fee_sat").is_some() => {
                assert!(to_local.is_none(), "{name}: to_local should be trimmed");
            }
            None => {}
        }

        // to_remote.
        let to_remote = built.output(CommitmentOutputKind::ToCountersignatory);
        if let Some(c) = case.get("to_remote_output_comment") {
            let (_, out) = to_remote.unwrap();
            assert_eq!(out.value, Sat(u(c, "amount_sat")), "{name}");
            assert_eq!(
                *out.script_pubkey(),
                ScriptBuf::new_p2wpkh(&WPubkeyHash::hash(&hex(s(c, "p2wpkh_pubkey"))))
            );
            assert!(out.witness_script.is_none());
        }

        // HTLC outputs: the comments list the untrimmed ones.
        let comments = case["htlc_outputs_comment"].as_array().unwrap();
        assert_eq!(comments.len() as u64, u(case, "num_htlcs"), "{name}");
        let untrimmed: Vec<_> = built
            .outputs
            .iter()
            .filter(|o| matches!(o.kind, CommitmentOutputKind::Htlc { .. }))
            .collect();
        assert_eq!(untrimmed.len(), comments.len(), "{name}: untrimmed htlcs");
        for c in comments {
            let id = u(c, "htlc");
            let out = untrimmed
                .iter()
                .find(|o| {
                    matches!(o.kind, CommitmentOutputKind::Htlc { index, .. } if htlcs_used[index] == id)
                })
                .unwrap_or_else(|| panic!("{name}: htlc {id} trimmed"));
            let CommitmentOutputKind::Htlc { htlc, .. } = out.kind else { unreachable!() };
            let direction = match s(c, "type") {
                "offered" => HtlcDirection::Offered,
                "received" => HtlcDirection::Received,
                other => panic!("type {other}"),
            };
            assert_eq!(htlc.direction, direction, "{name}: htlc {id}");
            assert_eq!(out.value, Sat(u(c, "amount_sat")), "{name}: htlc {id}");
            assert_eq!(out.witness_script.as_ref().unwrap().as_bytes(), hex(s(c, "wscript")));
        }
        for (index, slot) in built.htlc_output_indexes.iter().enumerate() {
            let listed = comments.iter().any(|c| u(c, "htlc") == htlcs_used[index]);
            assert_eq!(slot.is_some(), listed, "{name}: htlc {} trimming", htlcs_used[index]);
        }

        // The signed commitment, byte for byte.
        let signed = sign_commitment(&fx, &built);
        assert_eq!(signed.local_der, hex(s(case, "local_signature")), "{name}: local signature");
        assert_eq!(signed.remote_der, hex(s(case, "remote_signature")), "{name}: remote signature");
        assert_eq!(
            serialize(&signed.tx).to_lower_hex_string(),
            s(case, "output_commit_tx"),
            "{name}: commitment tx"
        );
        commitments += 1;

        // HTLC transactions, in output order.
        let expected = case["htlc_txs"].as_array().unwrap();
        let signed_htlcs = sign_htlc_txs(&fx, &built);
        assert_eq!(signed_htlcs.len(), expected.len(), "{name}: htlc tx count");
        for (got, want) in signed_htlcs.iter().zip(expected) {
            let vout = got.htlc_tx.tx.input[0].previous_output.vout;
            let id = u(want, "htlc");
            assert_eq!(u64::from(vout), u(want, "output_index"), "{name}: htlc {id}");
            assert_eq!(htlc_id_at(&built, &htlcs_used, vout), id, "{name}");
            let kind = match s(want, "type") {
                "htlc-success" => HtlcTxKind::Success,
                "htlc-timeout" => HtlcTxKind::Timeout,
                other => panic!("type {other}"),
            };
            assert_eq!(got.htlc_tx.kind, kind, "{name}: htlc {id}");
            assert_eq!(got.remote_der, hex(s(want, "remote_htlc_signature")), "{name}: htlc {id}");
            assert_eq!(got.local_der, hex(s(want, "local_htlc_signature")), "{name}: htlc {id}");
            assert_eq!(
                serialize(&got.tx).to_lower_hex_string(),
                s(want, "tx"),
                "{name}: htlc {id}"
            );
            htlc_txs += 1;
        }
    }
    assert_eq!((commitments, htlc_txs), (16, 33));
}

#[test]
fn appendix_c_verify_accepts_every_commitment() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let mut checked = 0;
    for case in root["test_cases"].as_array().unwrap() {
        let name = s(case, "name");
        let htlcs_used = Fixture::htlcs_used(case);
        let spec = appendix_c_spec(&fx, case);
        let supplied = unsigned(&tx(s(case, "output_commit_tx")));
        let info = verify_commitment(&spec, &supplied).unwrap_or_else(|e| panic!("{name}: {e:?}"));

        assert_eq!(info.commitment_number, CommitmentNumber::new(42).unwrap(), "{name}");
        assert_eq!(u64::from(info.feerate.0), u(case, "local_feerate_per_kw"));
        assert_eq!(info.to_broadcaster_balance, Msat(u(case, "to_local_msat")));
        assert_eq!(info.to_countersignatory_balance, Msat(u(case, "to_remote_msat")));
        if case.get("base_commitment_tx_fee_sat").is_some() {
            assert_eq!(info.base_fee, Sat(u(case, "base_commitment_tx_fee_sat")), "{name}");
            assert_eq!(info.fee, Sat(u(case, "actual_commitment_tx_fee_sat")), "{name}");
        }
        // The fee is what the supplied outputs leave of the funding value.
        let outputs: u64 = supplied.output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(info.fee, Sat(fx.funding_value.0 - outputs), "{name}");
        // Cases that describe their outputs describe every main output present.
        if case.get("base_commitment_tx_fee_sat").is_some() {
            assert_eq!(
                info.to_broadcaster.map(|(_, v)| v),
                case.get("to_local_output_comment").map(|c| Sat(u(c, "amount_sat"))),
                "{name}"
            );
            assert_eq!(
                info.to_countersignatory.map(|(_, v)| v),
                case.get("to_remote_output_comment").map(|c| Sat(u(c, "amount_sat"))),
                "{name}"
            );
        }
        if let Some((index, value)) = info.to_countersignatory {
            let out = &supplied.output[index as usize];
            assert_eq!(out.value.to_sat(), value.0);
            assert_eq!(out.script_pubkey, to_remote_p2wpkh_script_pubkey(&fx.remote.payment));
        }
        assert_eq!(info.anchors, (None, None));

        // HTLC output indexes agree with the HTLC transactions' inputs.
        assert_eq!(info.htlcs.len(), htlcs_used.len());
        let htlc_txs = case["htlc_txs"].as_array().unwrap();
        for (i, h) in info.htlcs.iter().enumerate() {
            let id = htlcs_used[i];
            assert_eq!(h.htlc, fx.htlc(id).htlc);
            let want =
                htlc_txs.iter().find(|t| u(t, "htlc") == id).map(|t| u(t, "output_index") as u32);
            assert_eq!(h.output_index, want, "{name}: htlc {id}");
        }

        // Each supplied HTLC transaction matches the rebuilt one.
        let rebuilt = info.built.htlc_txs().unwrap();
        for (want, got) in htlc_txs.iter().zip(&rebuilt) {
            assert_eq!(verify_tx(&got.tx, &unsigned(&tx(s(want, "tx")))), Ok(()), "{name}");
        }
        checked += 1;
    }
    assert_eq!(checked, 16);
}

// ---------------------------------------------------------------------------------------------
// Appendix F: anchors

#[test]
fn appendix_f_anchor_commitment_and_htlc_transactions() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let (mut commitments, mut htlc_txs) = (0, 0);

    for case in root["anchors"]["test_cases"].as_array().unwrap() {
        let name = s(case, "Name");
        let spec = appendix_f_spec(&fx, case);
        let built = spec.build().unwrap_or_else(|e| panic!("{name}: {e}"));
        check_commitment_frame(&fx, &built);

        let signed = sign_commitment(&fx, &built);
        assert_eq!(signed.remote_der, hex(s(case, "RemoteSigHex")), "{name}: remote signature");
        let expected = tx(s(case, "ExpectedCommitmentTxHex"));
        // Appendix F gives the local signature only inside the witness (the local funding key
        // sorts first, so it is element 1).
        let mut local_in_witness = expected.input[0].witness.nth(1).unwrap().to_vec();
        assert_eq!(local_in_witness.pop(), Some(0x01));
        assert_eq!(signed.local_der, local_in_witness, "{name}: local signature");
        assert_eq!(
            serialize(&signed.tx).to_lower_hex_string(),
            s(case, "ExpectedCommitmentTxHex"),
            "{name}: commitment tx"
        );
        commitments += 1;

        // Anchors: 330 sat each, present for a side with a main output or any HTLC.
        let has_htlcs = built.htlc_output_indexes.iter().any(Option::is_some);
        for (main, anchor) in [
            (CommitmentOutputKind::ToBroadcaster, CommitmentOutputKind::BroadcasterAnchor),
            (
                CommitmentOutputKind::ToCountersignatory,
                CommitmentOutputKind::CountersignatoryAnchor,
            ),
        ] {
            let anchor = built.output(anchor);
            assert_eq!(anchor.is_some(), built.output(main).is_some() || has_htlcs, "{name}");
            if let Some((_, out)) = anchor {
                assert_eq!(out.value, ANCHOR_OUTPUT_VALUE);
            }
        }

        let descs = case["HtlcDescs"].as_array().unwrap();
        let signed_htlcs = sign_htlc_txs(&fx, &built);
        assert_eq!(signed_htlcs.len(), descs.len(), "{name}: htlc tx count");
        for (got, want) in signed_htlcs.iter().zip(descs) {
            assert_eq!(got.htlc_tx.fee, Sat::ZERO, "zero-fee htlc transactions");
            assert_eq!(got.htlc_tx.tx.input[0].sequence, Sequence::from_consensus(1));
            assert_eq!(got.remote_der, hex(s(want, "RemoteSigHex")), "{name}: htlc remote sig");
            let resolution = tx(s(want, "ResolutionTxHex"));
            // The remote signature carries SIGHASH_SINGLE|ANYONECANPAY, the local one
            // SIGHASH_ALL.
            let w = &resolution.input[0].witness;
            assert_eq!(w.nth(1).unwrap().last(), Some(&0x83));
            assert_eq!(w.nth(2).unwrap().last(), Some(&0x01));
            let mut local_in_witness = w.nth(2).unwrap().to_vec();
            local_in_witness.pop();
            assert_eq!(got.local_der, local_in_witness, "{name}: htlc local sig");
            assert_eq!(
                serialize(&got.tx).to_lower_hex_string(),
                s(want, "ResolutionTxHex"),
                "{name}: htlc tx"
            );
            htlc_txs += 1;
        }
    }
    assert_eq!((commitments, htlc_txs), (9, 15));
}

#[test]
fn appendix_f_verify_accepts_every_commitment() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let mut checked = 0;
    for case in root["anchors"]["test_cases"].as_array().unwrap() {
        let name = s(case, "Name");
        let htlcs_used = Fixture::htlcs_used(case);
        let spec = appendix_f_spec(&fx, case);
        let supplied = unsigned(&tx(s(case, "ExpectedCommitmentTxHex")));
        let info = verify_commitment(&spec, &supplied).unwrap_or_else(|e| panic!("{name}: {e:?}"));

        assert_eq!(info.commitment_number.get(), 42, "{name}");
        assert_eq!(u64::from(info.feerate.0), u(case, "FeePerKw"));
        assert_eq!(info.to_broadcaster_balance, Msat(u(case, "LocalBalance")));
        assert_eq!(info.to_countersignatory_balance, Msat(u(case, "RemoteBalance")));
        let outputs: u64 = supplied.output.iter().map(|o| o.value.to_sat()).sum();
        assert_eq!(info.fee, Sat(fx.funding_value.0 - outputs), "{name}");

        // Every supplied output is accounted for, anchors included.
        let mut seen: Vec<u32> = info.htlcs.iter().filter_map(|h| h.output_index).collect();
        seen.extend(info.to_broadcaster.map(|(i, _)| i));
        seen.extend(info.to_countersignatory.map(|(i, _)| i));
        seen.extend(info.anchors.0);
        seen.extend(info.anchors.1);
        seen.sort_unstable();
        assert_eq!(seen, (0..supplied.output.len() as u32).collect::<Vec<_>>(), "{name}");
        for anchor in [info.anchors.0, info.anchors.1].into_iter().flatten() {
            assert_eq!(supplied.output[anchor as usize].value, ANCHOR_OUTPUT_VALUE.to_amount());
        }
        // The opener's output is its balance minus the fee and both anchors.
        if let Some((_, to_local)) = info.to_broadcaster {
            let expected = (u(case, "LocalBalance") / 1000).saturating_sub(info.base_fee.0 + 660);
            assert_eq!(to_local, Sat(expected), "{name}");
        }

        // HTLC output indexes agree with the resolution transactions' inputs.
        let descs = case["HtlcDescs"].as_array().unwrap();
        let mut vouts: Vec<u32> = descs
            .iter()
            .map(|d| tx(s(d, "ResolutionTxHex")).input[0].previous_output.vout)
            .collect();
        let mut indexes: Vec<u32> = info.htlcs.iter().filter_map(|h| h.output_index).collect();
        vouts.sort_unstable();
        indexes.sort_unstable();
        assert_eq!(vouts, indexes, "{name}");
        assert_eq!(info.htlcs.len(), htlcs_used.len());
        let rebuilt = info.built.htlc_txs().unwrap();
        for (want, got) in descs.iter().zip(&rebuilt) {
            assert_eq!(verify_tx(&got.tx, &unsigned(&tx(s(want, "ResolutionTxHex")))), Ok(()));
        }
        checked += 1;
    }
    assert_eq!(checked, 9);
}

// ---------------------------------------------------------------------------------------------
// Signature scheme

/// Every vector signature is plain RFC 6979; grinding for a low R would change the ones whose
/// R is high (33-byte DER `r`), and some are.
#[test]
fn vector_signatures_are_plain_rfc6979() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let case = &root["test_cases"][0];
    let built = appendix_c_spec(&fx, case).build().unwrap();
    let msg = built.sighash().unwrap();

    // remote_signature of the first case has a high R: RFC 6979 gives it, low-R grinding
    // cannot.
    let remote = hex(s(case, "remote_signature"));
    assert_eq!(&remote[..5], &[0x30, 0x45, 0x02, 0x21, 0x00]);
    assert_eq!(sign_der(&fx.secp, &msg, &fx.remote_funding_privkey), remote);
    let ground = fx.secp.sign_ecdsa_low_r(&msg, &fx.remote_funding_privkey);
    assert_ne!(ground.serialize_der().to_vec(), remote);
    assert_eq!(
        sign_der(&fx.secp, &msg, &fx.local_funding_privkey),
        hex(s(case, "local_signature"))
    );
}

// ---------------------------------------------------------------------------------------------
// Mutations: one field changed, the right difference reported.

#[test]
fn mutation_fixture_verifies() {
    let (spec, tx) = mutation_fixture();
    assert!(verify_commitment(&spec, &tx).is_ok());
}

#[test]
fn mutated_output_value_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    let original = tx.output[3].clone();
    tx.output[3].value = original.value + Amount::from_sat(1);
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::Output { index: 3, expected: original, got: tx.output[3].clone() }
    );
}

#[test]
fn mutated_output_script_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    let original = tx.output[6].clone();
    tx.output[6].script_pubkey =
        to_remote_p2wpkh_script_pubkey(&spec.keys.countersignatory_payment);
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::Output { index: 6, expected: original, got: tx.output[6].clone() }
    );
}

#[test]
fn swapped_outputs_are_reported_at_the_first_index() {
    let (spec, mut tx) = mutation_fixture();
    tx.output.swap(1, 2);
    let m = mismatch(&spec, &tx);
    let TxMismatch::Output { index: 1, ref expected, ref got } = m else { panic!("{m:?}") };
    assert_eq!(got, &tx.output[1]);
    assert_eq!(expected, &tx.output[2]);
}

#[test]
fn mutated_lock_time_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    let original = tx.lock_time;
    tx.lock_time = LockTime::from_consensus(original.to_consensus_u32() ^ 1);
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::LockTime { expected: original, got: tx.lock_time }
    );
}

#[test]
fn mutated_sequence_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    let original = tx.input[0].sequence;
    tx.input[0].sequence = Sequence::MAX;
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::Sequence { index: 0, expected: original, got: Sequence::MAX }
    );
}

#[test]
fn extra_output_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    tx.output.push(TxOut { value: Amount::from_sat(1000), script_pubkey: ScriptBuf::new() });
    assert_eq!(mismatch(&spec, &tx), TxMismatch::OutputCount { expected: 7, got: 8 });
}

#[test]
fn missing_output_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    tx.output.pop();
    assert_eq!(mismatch(&spec, &tx), TxMismatch::OutputCount { expected: 7, got: 6 });
}

#[test]
fn mutated_version_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    tx.version = Version::ONE;
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::Version { expected: Version::TWO, got: Version::ONE }
    );
}

#[test]
fn mutated_input_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    tx.input[0].previous_output.vout = 1;
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::Input {
            index: 0,
            expected: spec.funding_outpoint,
            got: tx.input[0].previous_output
        }
    );
    let (spec, mut tx) = mutation_fixture();
    let extra = tx.input[0].clone();
    tx.input.push(extra);
    assert_eq!(mismatch(&spec, &tx), TxMismatch::InputCount { expected: 1, got: 2 });
}

#[test]
fn script_sig_is_reported() {
    let (spec, mut tx) = mutation_fixture();
    tx.input[0].script_sig = ScriptBuf::from_bytes(vec![0x51]);
    assert_eq!(
        mismatch(&spec, &tx),
        TxMismatch::ScriptSig { index: 0, got: ScriptBuf::from_bytes(vec![0x51]) }
    );
}

#[test]
fn first_difference_wins() {
    // Both an output and the locktime differ: the output comes first in serialization order.
    let (spec, mut tx) = mutation_fixture();
    tx.lock_time = LockTime::ZERO;
    tx.output[0].value = Amount::from_sat(1);
    assert!(matches!(mismatch(&spec, &tx), TxMismatch::Output { index: 0, .. }));
}

#[test]
fn wrong_state_is_a_mismatch_not_a_pass() {
    // Warden's state says another feerate: the supplied tx no longer matches. One sat/kw
    // less changes the fee (to_local, the last output); one more trims an HTLC (647 is the
    // vector's maximum feerate for seven outputs).
    let (mut spec, tx) = mutation_fixture();
    spec.feerate = FeeratePerKw(spec.feerate.0 - 1);
    assert!(matches!(mismatch(&spec, &tx), TxMismatch::Output { index: 6, .. }));
    spec.feerate = FeeratePerKw(spec.feerate.0 + 2);
    assert_eq!(mismatch(&spec, &tx), TxMismatch::OutputCount { expected: 6, got: 7 });
    // Another commitment number: the lower 24 bits live in the locktime, the upper 24 in
    // the sequence.
    let (mut spec, tx) = mutation_fixture();
    spec.commitment_number = CommitmentNumber::new(43).unwrap();
    assert!(matches!(mismatch(&spec, &tx), TxMismatch::LockTime { .. }));
    spec.commitment_number = CommitmentNumber::new(42 + (1 << 24)).unwrap();
    assert!(matches!(mismatch(&spec, &tx), TxMismatch::Sequence { index: 0, .. }));
}

#[test]
fn unbuildable_state_is_a_build_error() {
    let (mut spec, tx) = mutation_fixture();
    spec.to_broadcaster = Msat(spec.to_broadcaster.0 + 1);
    assert!(matches!(
        verify_commitment(&spec, &tx),
        Err(VerifyError::Build(warden_core::tx::CommitmentError::ValueNotConserved { .. }))
    ));
}

#[test]
fn mismatch_display_is_lower_case() {
    let (spec, mut tx) = mutation_fixture();
    tx.lock_time = LockTime::ZERO;
    let text = mismatch(&spec, &tx).to_string();
    assert_eq!(text, "locktime is 0x00000000, expected 0x2052193e");
}

// ---------------------------------------------------------------------------------------------
// Commitment number decoding

#[test]
fn decode_commitment_number_reads_every_vector() {
    let fx = Fixture::load();
    let root = json(COMMITMENT_JSON);
    let hexes =
        root["test_cases"].as_array().unwrap().iter().map(|c| s(c, "output_commit_tx")).chain(
            root["anchors"]["test_cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| s(c, "ExpectedCommitmentTxHex")),
        );
    for h in hexes {
        let n = warden_core::tx::decode_commitment_number(&tx(h), fx.obscuring_factor).unwrap();
        assert_eq!(n.get(), 42);
    }
    // Another channel's factor decodes another number; a non-commitment does not decode.
    let t = tx(s(&root["test_cases"][0], "output_commit_tx"));
    let other = ObscuringFactor::new(fx.obscuring_factor.get() ^ 1);
    assert_eq!(warden_core::tx::decode_commitment_number(&t, other).unwrap().get(), 43);
    let mut not_commitment = t.clone();
    not_commitment.lock_time = LockTime::ZERO;
    assert!(
        warden_core::tx::decode_commitment_number(&not_commitment, fx.obscuring_factor).is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Spend templates

#[test]
fn delayed_to_local_spend() {
    let (fx, built) = seven_output_commitment(ChannelType::StaticRemoteKey);
    let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let t = spend_delayed_to_local(
        built.outpoint(vout),
        out.value,
        &fx.keys.revocation,
        fx.to_self_delay,
        &fx.keys.broadcaster_delayed_payment,
        destination(),
        SpendFee::Absolute(Sat(1000)),
    )
    .unwrap();
    assert_eq!(t.witness_script, *out.witness_script.as_ref().unwrap());
    assert_eq!(t.tx.input[0].sequence, Sequence::from_height(144));
    assert_eq!(t.tx.lock_time, LockTime::ZERO);
    assert_eq!(t.tx.output[0].value.to_sat(), out.value.0 - 1000);
    let delayed = privkey(s(&fx.common["internal"], "local_delayed_privkey"));
    let w = sign_template(&fx, &t, &delayed);
    assert_eq!(w.len(), 3);
    assert!(w.nth(1).unwrap().is_empty());
    assert_eq!(w.nth(2).unwrap(), t.witness_script.as_bytes());
    // The signed weight is within the estimate used for feerate-based fees.
    let signed = t.clone().into_signed(Some(&sig(
        fx.secp.sign_ecdsa(&t.sighash().unwrap(), &delayed),
        EcdsaSighashType::All,
    )));
    assert!(signed.unwrap().weight().to_wu() <= t.max_weight());
}

#[test]
fn revoked_to_local_and_htlc_spends() {
    let (fx, built) = seven_output_commitment(ChannelType::StaticRemoteKey);
    let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let t = spend_revoked_to_local(
        built.outpoint(vout),
        out.value,
        &fx.keys.revocation,
        fx.to_self_delay,
        &fx.keys.broadcaster_delayed_payment,
        destination(),
        SpendFee::Feerate(FeeratePerKw(253)),
    )
    .unwrap();
    assert_eq!(t.fee, FeeratePerKw(253).fee_for_weight(t.max_weight()));
    let w = t
        .witness(Some(&sig(
            fx.secp.sign_ecdsa(&t.sighash().unwrap(), &fx.local_funding_privkey),
            EcdsaSighashType::All,
        )))
        .unwrap();
    assert_eq!(w.nth(1).unwrap(), [1u8]);

    for (vout, out) in built.outputs.iter().enumerate() {
        let CommitmentOutputKind::Htlc { htlc, .. } = out.kind else { continue };
        let t = spend_revoked_htlc(
            ChannelType::StaticRemoteKey,
            built.outpoint(vout as u32),
            &htlc,
            &fx.keys,
            destination(),
            SpendFee::Absolute(Sat(0)),
        )
        .unwrap();
        assert_eq!(t.witness_script, *out.witness_script.as_ref().unwrap());
        assert_eq!(t.value, out.value);
        let w = t
            .witness(Some(&sig(
                fx.secp.sign_ecdsa(&t.sighash().unwrap(), &fx.local_funding_privkey),
                EcdsaSighashType::All,
            )))
            .unwrap();
        assert_eq!(w.nth(1).unwrap(), fx.keys.revocation.serialize());
    }
}

#[test]
fn counterparty_htlc_claims() {
    for channel_type in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        // Seen from the remote side: this is the counterparty's (local's) commitment.
        let (fx, built) = seven_output_commitment(channel_type);
        let expected_sequence = match channel_type {
            ChannelType::StaticRemoteKey | ChannelType::ZeroFeeCommitments => {
                Sequence::ENABLE_RBF_NO_LOCKTIME
            }
            ChannelType::AnchorsZeroFeeHtlc => Sequence::from_consensus(1),
        };
        let mut claims = 0;
        for (vout, out) in built.outputs.iter().enumerate() {
            let CommitmentOutputKind::Htlc { htlc, .. } = out.kind else { continue };
            let outpoint = built.outpoint(vout as u32);
            let fee = SpendFee::Absolute(Sat(100));
            let preimage = fx.htlcs.iter().find(|h| h.htlc == htlc).unwrap().preimage.clone();
            let t = match htlc.direction {
                HtlcDirection::Offered => {
                    assert_eq!(
                        reclaim_received_htlc(
                            channel_type,
                            outpoint,
                            &htlc,
                            &fx.keys,
                            destination(),
                            fee
                        ),
                        Err(SweepError::WrongHtlcDirection { expected: HtlcDirection::Received })
                    );
                    let t = claim_offered_htlc(
                        channel_type,
                        outpoint,
                        &htlc,
                        &fx.keys,
                        preimage.clone(),
                        destination(),
                        fee,
                    )
                    .unwrap();
                    assert_eq!(t.tx.lock_time, LockTime::ZERO);
                    assert_eq!(
                        t.path,
                        SpendPath::OfferedHtlcWithPreimage { preimage: preimage.clone() }
                    );
                    let w = sign_template(&fx, &t, &fx.remote_htlc_privkey);
                    assert_eq!(w.nth(1).unwrap(), preimage.expose_secret());
                    t
                }
                HtlcDirection::Received => {
                    assert_eq!(
                        claim_offered_htlc(
                            channel_type,
                            outpoint,
                            &htlc,
                            &fx.keys,
                            preimage,
                            destination(),
                            fee
                        ),
                        Err(SweepError::WrongHtlcDirection { expected: HtlcDirection::Offered })
                    );
                    let t = reclaim_received_htlc(
                        channel_type,
                        outpoint,
                        &htlc,
                        &fx.keys,
                        destination(),
                        fee,
                    )
                    .unwrap();
                    assert_eq!(t.tx.lock_time, LockTime::from_consensus(htlc.cltv_expiry));
                    let w = sign_template(&fx, &t, &fx.remote_htlc_privkey);
                    assert!(w.nth(1).unwrap().is_empty());
                    t
                }
            };
            assert_eq!(t.tx.input[0].sequence, expected_sequence);
            assert_eq!(t.witness_script, *out.witness_script.as_ref().unwrap());
            assert_eq!(t.tx.output[0].value.to_sat(), out.value.0 - 100);
            claims += 1;
        }
        assert_eq!(claims, 5);
    }
}

#[test]
fn htlc_claim_refuses_a_wrong_preimage() {
    let (fx, built) = seven_output_commitment(ChannelType::StaticRemoteKey);
    let htlc = fx.htlc(2).htlc;
    let vout = built.htlc_output_indexes[2].unwrap();
    assert_eq!(
        claim_offered_htlc(
            ChannelType::StaticRemoteKey,
            built.outpoint(vout),
            &htlc,
            &fx.keys,
            fx.htlc(3).preimage.clone(),
            destination(),
            SpendFee::Absolute(Sat(0)),
        ),
        Err(SweepError::WrongPreimage)
    );
}

#[test]
fn anchor_and_to_remote_spends() {
    let (fx, built) = seven_output_commitment(ChannelType::AnchorsZeroFeeHtlc);
    let (vout, _) = built.output(CommitmentOutputKind::BroadcasterAnchor).unwrap();
    let t = spend_anchor(
        built.outpoint(vout),
        &fx.local_funding_pubkey,
        destination(),
        SpendFee::Absolute(Sat(0)),
    )
    .unwrap();
    assert_eq!(t.value, ANCHOR_OUTPUT_VALUE);
    assert_eq!(t.tx.output[0].value, ANCHOR_OUTPUT_VALUE.to_amount());
    let w = sign_template(&fx, &t, &fx.local_funding_privkey);
    assert_eq!(w.len(), 2);
    assert_eq!(t.witness(None), Err(WitnessError::MissingSignature));

    let t = sweep_anchor_after_delay(
        built.outpoint(vout),
        &fx.local_funding_pubkey,
        ScriptBuf::new_op_return([]),
        SpendFee::Absolute(ANCHOR_OUTPUT_VALUE),
    )
    .unwrap();
    assert_eq!(t.tx.input[0].sequence, Sequence::from_height(16));
    let w = t.witness(None).unwrap();
    assert!(w.nth(0).unwrap().is_empty());
    assert_eq!(w.nth(1).unwrap(), t.witness_script.as_bytes());
    let any_sig = sig(
        fx.secp.sign_ecdsa(&t.sighash().unwrap(), &fx.local_funding_privkey),
        EcdsaSighashType::All,
    );
    assert_eq!(t.witness(Some(&any_sig)), Err(WitnessError::UnexpectedSignature));
    assert_eq!(
        sweep_anchor_after_delay(
            built.outpoint(vout),
            &fx.local_funding_pubkey,
            destination(),
            SpendFee::Absolute(Sat(331))
        ),
        Err(SweepError::FeeExceedsValue { value: Sat(330), fee: Sat(331) })
    );

    let (vout, out) = built.output(CommitmentOutputKind::ToCountersignatory).unwrap();
    let t = spend_to_remote_anchors(
        built.outpoint(vout),
        out.value,
        &fx.remote.payment,
        destination(),
        SpendFee::Absolute(Sat(500)),
    )
    .unwrap();
    assert_eq!(t.witness_script, *out.witness_script.as_ref().unwrap());
    assert_eq!(*out.script_pubkey(), t.witness_script.to_p2wsh());
    assert_eq!(t.tx.input[0].sequence, Sequence::from_height(1));
    let payment_secret = privkey(s(&fx.common["internal"], "remote_payment_basepoint_secret"));
    let w = sign_template(&fx, &t, &payment_secret);
    assert_eq!(w.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Builder edge cases

#[test]
fn countersignatory_as_opener_pays_the_fee() {
    let fx = Fixture::load();
    let mut spec =
        fx.spec(ChannelType::AnchorsZeroFeeHtlc, 7_000_000_000, 3_000_000_000, 15000, 546, &[]);
    spec.opener = warden_core::tx::Party::Countersignatory;
    let built = spec.build().unwrap();
    let (_, to_local) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let (_, to_remote) = built.output(CommitmentOutputKind::ToCountersignatory).unwrap();
    assert_eq!(to_local.value, Sat(7_000_000));
    assert_eq!(to_remote.value, Sat(3_000_000 - 16_860 - 660));
    assert_eq!(built.base_fee, Sat(16_860));
}

#[test]
fn identical_offered_htlcs_are_ordered_by_cltv() {
    let fx = Fixture::load();
    // HTLCs 5 (cltv 506) and 6 (cltv 505) produce identical outputs; in either spec order,
    // the lower CLTV comes first.
    let root = json(COMMITMENT_JSON);
    let (h5, h6) = (fx.htlc(5), fx.htlc(6));
    assert_eq!(h5.preimage, h6.preimage);
    assert_eq!(
        root["test_cases"][15]["comments"][0].as_str().unwrap(),
        format!(
            "# HTLC #5 and 6 have CLTV {} and {}, respectively, and preimage {}",
            h5.htlc.cltv_expiry,
            h6.htlc.cltv_expiry,
            h5.preimage.expose_secret().to_lower_hex_string()
        )
    );
    for order in [[1, 5, 6], [1, 6, 5]] {
        let to_local = 6_987_999_999;
        let built = fx
            .spec(ChannelType::StaticRemoteKey, to_local, 3_000_000_000, 253, 546, &order)
            .build()
            .unwrap();
        let cltvs: Vec<u32> = built
            .outputs
            .iter()
            .filter_map(|o| match o.kind {
                CommitmentOutputKind::Htlc { htlc, .. } => Some(htlc.cltv_expiry),
                _ => None,
            })
            .collect();
        assert_eq!(cltvs, [501, 505, 506]);
    }
}

#[test]
fn funding_script_pubkey_is_p2wsh_of_the_sorted_script() {
    let fx = Fixture::load();
    let a = funding_script_pubkey(&fx.local_funding_pubkey, &fx.remote_funding_pubkey);
    let b = funding_script_pubkey(&fx.remote_funding_pubkey, &fx.local_funding_pubkey);
    assert_eq!(a, b);
    assert!(a.is_p2wsh());
}
