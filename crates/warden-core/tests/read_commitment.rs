//! `channel::commitment::read_commitment` against every BOLT-03 Appendix C and F commitment:
//! given the channel state and the HTLC list as Core Lightning sends it (untrimmed HTLCs in
//! output order), it accepts the transaction and returns what each side is paid; each
//! one-field mutation is refused with `commitment-structure`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, dead_code, reason = "test code")]

mod bolt3_support;

use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, ScriptBuf, Sequence, Transaction, TxOut};
use bolt3_support::cases::{appendix_c_spec, appendix_f_spec};
use bolt3_support::{json, Fixture};
use warden_core::channel::commitment::{
    read_commitment, Broadcaster, CommitmentClaim, HolderKeys, ReadCommitment,
};
use warden_core::channel::{ChannelSetup, CommitmentContent, HtlcInfo, HtlcSide};
use warden_core::policy::{PolicyError, Rule};
use warden_core::secp256k1::ecdsa::Signature as EcdsaSignature;
use warden_core::secp256k1::{Message, PublicKey};
use warden_core::tx::scripts::shared_anchor_script_pubkey;
use warden_core::tx::{ChannelType, CommitmentOutputKind, CommitmentSpec, HtlcDirection};
use warden_core::units::{Msat, Sat};

const VECTORS: &str = include_str!("data/bolt3/bolt3_commitment_txs.json");

/// The channel type's features as Warden stores them (BOLT-09, big-endian).
fn features(channel_type: ChannelType) -> Vec<u8> {
    match channel_type {
        ChannelType::StaticRemoteKey => vec![0x10, 0x00],
        ChannelType::AnchorsZeroFeeHtlc => vec![0x40, 0x10, 0x00],
        // Bit 140, LDK's staging bit of option_zero_fee_commitments.
        ChannelType::ZeroFeeCommitments => {
            let mut f = vec![0u8; 18];
            f[0] = 0x10;
            f
        }
    }
}

fn setup(fx: &Fixture, spec: &CommitmentSpec) -> ChannelSetup {
    ChannelSetup {
        is_outbound: true,
        channel_value: fx.funding_value,
        push_value: Msat(0),
        funding_outpoint: fx.funding_outpoint,
        holder_selected_delay: 144,
        holder_shutdown_script: None,
        holder_shutdown_wallet_index: None,
        counterparty_basepoints: fx.remote,
        counterparty_funding_pubkey: fx.remote_funding_pubkey,
        counterparty_selected_delay: fx.to_self_delay,
        counterparty_shutdown_script: None,
        channel_type_features: features(spec.channel_type),
    }
}

/// The HTLC list as lightningd sends it: untrimmed only, in output order.
fn untrimmed_in_output_order(spec: &CommitmentSpec) -> Vec<HtlcInfo> {
    let built = spec.build().unwrap();
    built
        .outputs
        .iter()
        .filter_map(|o| match &o.kind {
            CommitmentOutputKind::Htlc { htlc, .. } => Some(HtlcInfo {
                offered_by: match htlc.direction {
                    HtlcDirection::Offered => HtlcSide::Holder,
                    HtlcDirection::Received => HtlcSide::Counterparty,
                },
                amount: htlc.amount,
                payment_hash: htlc.payment_hash.0,
                cltv_expiry: htlc.cltv_expiry,
            }),
            _ => None,
        })
        .collect()
}

fn read(
    fx: &Fixture,
    spec: &CommitmentSpec,
    htlcs: &[HtlcInfo],
    tx: &Transaction,
) -> Result<CommitmentContent, PolicyError> {
    read_full(fx, spec, htlcs, tx).map(|r| r.content)
}

fn read_full(
    fx: &Fixture,
    spec: &CommitmentSpec,
    htlcs: &[HtlcInfo],
    tx: &Transaction,
) -> Result<ReadCommitment, PolicyError> {
    read_commitment(
        &fx.secp,
        &setup(fx, spec),
        HolderKeys { basepoints: &fx.local, funding: &fx.local_funding_pubkey },
        CommitmentClaim {
            broadcaster: Broadcaster::Holder,
            number: fx.commitment_number,
            point: &fx.per_commitment_point,
            feerate: spec.feerate,
            htlcs,
            tx,
        },
    )
}

fn all_specs(fx: &Fixture) -> Vec<CommitmentSpec> {
    let v = json(VECTORS);
    let mut specs: Vec<_> =
        v["test_cases"].as_array().unwrap().iter().map(|c| appendix_c_spec(fx, c)).collect();
    specs.extend(
        v["anchors"]["test_cases"].as_array().unwrap().iter().map(|c| appendix_f_spec(fx, c)),
    );
    specs
}

#[test]
fn every_vector_commitment_is_read_correctly() {
    let fx = Fixture::load();
    let specs = all_specs(&fx);
    assert_eq!(specs.len(), 25);
    for spec in &specs {
        let built = spec.build().unwrap();
        let htlcs = untrimmed_in_output_order(spec);
        let content = read(&fx, spec, &htlcs, &built.tx).unwrap();
        let value_of = |k: fn(&CommitmentOutputKind) -> bool| {
            built.outputs.iter().find(|o| k(&o.kind)).map_or(Sat::ZERO, |o| o.value)
        };
        assert_eq!(
            content.to_holder,
            value_of(|k| matches!(k, CommitmentOutputKind::ToBroadcaster))
        );
        assert_eq!(
            content.to_counterparty,
            value_of(|k| matches!(k, CommitmentOutputKind::ToCountersignatory))
        );
        assert_eq!(content.htlcs, htlcs);
        assert_eq!(content.txid, built.tx.compute_txid());
        assert_eq!(content.number, fx.commitment_number);
    }
}

/// The seven-output static_remotekey case and the anchors case with the most outputs.
fn fixtures(fx: &Fixture) -> Vec<(CommitmentSpec, Vec<HtlcInfo>, Transaction)> {
    let specs = all_specs(fx);
    [2usize, 18]
        .iter()
        .map(|i| {
            let spec = specs[*i].clone();
            let htlcs = untrimmed_in_output_order(&spec);
            let tx = spec.build().unwrap().tx;
            (spec, htlcs, tx)
        })
        .collect()
}

fn assert_structure(fx: &Fixture, spec: &CommitmentSpec, htlcs: &[HtlcInfo], tx: &Transaction) {
    let err = read(fx, spec, htlcs, tx).unwrap_err();
    assert_eq!(err.rule, Rule::CommitmentStructure, "{err}");
}

#[test]
fn one_field_mutations_are_refused() {
    let fx = Fixture::load();
    for (spec, htlcs, tx) in fixtures(&fx) {
        assert!(htlcs.len() >= 3, "fixture must carry htlcs");
        read(&fx, &spec, &htlcs, &tx).unwrap();

        let mut t = tx.clone();
        t.version = bitcoin::transaction::Version::ONE;
        assert_structure(&fx, &spec, &htlcs, &t);

        let mut t = tx.clone();
        t.input[0].previous_output = OutPoint { vout: 1, ..t.input[0].previous_output };
        assert_structure(&fx, &spec, &htlcs, &t);

        let mut t = tx.clone();
        t.input[0].sequence = Sequence(t.input[0].sequence.0 ^ 1);
        assert_structure(&fx, &spec, &htlcs, &t);

        let mut t = tx.clone();
        t.lock_time =
            bitcoin::absolute::LockTime::from_consensus(t.lock_time.to_consensus_u32() ^ 1);
        assert_structure(&fx, &spec, &htlcs, &t);

        // Value moved to a foreign output.
        let mut t = tx.clone();
        t.output.push(TxOut {
            value: Amount::from_sat(1000),
            script_pubkey: ScriptBuf::new_op_return([1]),
        });
        assert_structure(&fx, &spec, &htlcs, &t);

        // An HTLC output that pays more than its HTLC.
        let mut t = tx.clone();
        let i = t.output.iter().position(|o| o.value.to_sat() == htlcs[0].amount.0 / 1000).unwrap();
        t.output[i].value = Amount::from_sat(t.output[i].value.to_sat() + 1);
        assert_structure(&fx, &spec, &htlcs, &t);

        // The node lists an HTLC the transaction does not carry.
        let mut more = htlcs.clone();
        more.push(HtlcInfo { payment_hash: [0xee; 32], ..htlcs[0] });
        assert_structure(&fx, &spec, &more, &tx);

        // An HTLC listed with another direction (its script no longer matches).
        let mut flipped = htlcs.clone();
        flipped[0].offered_by = match flipped[0].offered_by {
            HtlcSide::Holder => HtlcSide::Counterparty,
            HtlcSide::Counterparty => HtlcSide::Holder,
        };
        assert_structure(&fx, &spec, &flipped, &tx);

        // Outputs out of BIP-69 order.
        let mut t = tx.clone();
        t.output.swap(0, 1);
        assert_structure(&fx, &spec, &htlcs, &t);

        // A duplicated main output.
        let mut t = tx.clone();
        let last = t.output.last().unwrap().clone();
        t.output.push(last);
        assert_structure(&fx, &spec, &htlcs, &t);

        // Wrong keys: the commitment read with another per-commitment point.
        let other = bolt3_support::pubkey(
            "036d6caac248af96f6afa7f904f550253a0f3ef3f5aa2fe6838a95b216691468e2",
        );
        let err = read_full_with_point(&fx, &spec, &htlcs, &tx, other).unwrap_err();
        assert_eq!(err.rule, Rule::CommitmentStructure);
    }
}

fn read_full_with_point(
    fx: &Fixture,
    spec: &CommitmentSpec,
    htlcs: &[HtlcInfo],
    tx: &Transaction,
    other: PublicKey,
) -> Result<ReadCommitment, PolicyError> {
    read_commitment(
        &fx.secp,
        &setup(fx, spec),
        HolderKeys { basepoints: &fx.local, funding: &fx.local_funding_pubkey },
        CommitmentClaim {
            broadcaster: Broadcaster::Holder,
            number: fx.commitment_number,
            point: &warden_core::keys::PerCommitmentPoint(other),
            feerate: spec.feerate,
            htlcs,
            tx,
        },
    )
}

fn der(hex: &str, sighash: EcdsaSighashType) -> bitcoin::ecdsa::Signature {
    bitcoin::ecdsa::Signature {
        signature: EcdsaSignature::from_der(&bolt3_support::hex(hex)).unwrap(),
        sighash_type: sighash,
    }
}

/// The peer's signatures of every vector (the spec's `remote_signature` and
/// `remote_htlc_signature`) verify; one altered signature is `commitment-peer-signature`.
#[test]
fn the_vectors_peer_signatures_verify() {
    let fx = Fixture::load();
    let v = json(VECTORS);
    let mut checked = 0;
    let mut cases: Vec<(
        CommitmentSpec,
        bitcoin::ecdsa::Signature,
        Vec<bitcoin::ecdsa::Signature>,
    )> = Vec::new();
    for case in v["test_cases"].as_array().unwrap() {
        let htlc_sigs = case["htlc_txs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| der(h["remote_htlc_signature"].as_str().unwrap(), EcdsaSighashType::All))
            .collect();
        cases.push((
            appendix_c_spec(&fx, case),
            der(case["remote_signature"].as_str().unwrap(), EcdsaSighashType::All),
            htlc_sigs,
        ));
    }
    for case in v["anchors"]["test_cases"].as_array().unwrap() {
        let htlc_sigs = case["HtlcDescs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                der(h["RemoteSigHex"].as_str().unwrap(), EcdsaSighashType::SinglePlusAnyoneCanPay)
            })
            .collect();
        cases.push((
            appendix_f_spec(&fx, case),
            der(case["RemoteSigHex"].as_str().unwrap(), EcdsaSighashType::All),
            htlc_sigs,
        ));
    }
    for (spec, sig, htlc_sigs) in &cases {
        let built = spec.build().unwrap();
        let htlcs = untrimmed_in_output_order(spec);
        let read = read_full(&fx, spec, &htlcs, &built.tx).unwrap();
        let setup = setup(&fx, spec);
        let verify = |sig: &bitcoin::ecdsa::Signature, htlc_sigs: &[bitcoin::ecdsa::Signature]| {
            read.verify_counterparty_signatures(
                &fx.secp,
                &built.tx,
                &setup,
                &fx.local_funding_pubkey,
                sig,
                htlc_sigs,
            )
        };
        verify(sig, htlc_sigs).unwrap();
        // A signature of something else by the right key does not verify here.
        let other = bitcoin::ecdsa::Signature {
            signature: fx
                .secp
                .sign_ecdsa(&Message::from_digest([7; 32]), &fx.remote_funding_privkey),
            sighash_type: EcdsaSighashType::All,
        };
        assert_eq!(verify(&other, htlc_sigs).unwrap_err().rule, Rule::CommitmentPeerSignature);
        if let Some(first) = htlc_sigs.first() {
            let mut swapped = htlc_sigs.clone();
            swapped.rotate_left(1);
            if htlc_sigs.len() > 1 {
                assert_eq!(verify(sig, &swapped).unwrap_err().rule, Rule::CommitmentPeerSignature);
            }
            assert_eq!(
                verify(sig, &htlc_sigs[1..]).unwrap_err().rule,
                Rule::CommitmentPeerSignature
            );
            let mut wrong_type = htlc_sigs.clone();
            wrong_type[0] = bitcoin::ecdsa::Signature {
                sighash_type: if spec.channel_type.has_anchors() {
                    EcdsaSighashType::All
                } else {
                    EcdsaSighashType::SinglePlusAnyoneCanPay
                },
                ..*first
            };
            assert_eq!(verify(sig, &wrong_type).unwrap_err().rule, Rule::HtlcSighash);
        }
        checked += 1;
    }
    assert_eq!(checked, 25);
}

/// Seen from the vectors' *remote* side, each vector commitment is the peer's commitment and its
/// HTLC transactions are the peer's: `check_counterparty_htlc_tx` accepts every one of them,
/// the spec's `remote_htlc_signature` verifies against the sighash it returns, and one-field
/// changes are refused with `htlc-structure`.
#[test]
fn the_peers_htlc_transactions_of_every_vector_are_checked() {
    use warden_core::channel::commitment::check_counterparty_htlc_tx;
    let fx = Fixture::load();
    let v = json(VECTORS);
    let mut checked = 0;
    for case in v["test_cases"].as_array().unwrap() {
        let spec = appendix_c_spec(&fx, case);
        let built = spec.build().unwrap();
        // We are the vectors' remote; the peer (the vectors' local) opened the channel.
        let mut setup = setup(&fx, &spec);
        setup.is_outbound = false;
        setup.counterparty_basepoints = fx.local;
        setup.counterparty_funding_pubkey = fx.local_funding_pubkey;
        setup.holder_selected_delay = fx.to_self_delay;
        let htlcs: Vec<HtlcInfo> = untrimmed_in_output_order(&spec)
            .into_iter()
            .map(|h| HtlcInfo {
                offered_by: match h.offered_by {
                    HtlcSide::Holder => HtlcSide::Counterparty,
                    HtlcSide::Counterparty => HtlcSide::Holder,
                },
                ..h
            })
            .collect();
        let read = read_commitment(
            &fx.secp,
            &setup,
            HolderKeys { basepoints: &fx.remote, funding: &fx.remote_funding_pubkey },
            CommitmentClaim {
                broadcaster: Broadcaster::Counterparty,
                number: fx.commitment_number,
                point: &fx.per_commitment_point,
                feerate: spec.feerate,
                htlcs: &htlcs,
                tx: &built.tx,
            },
        )
        .unwrap();
        let signed = warden_core::channel::SignedCounterpartyCommitment {
            content: read.content,
            point: fx.per_commitment_point,
        };
        let remote_htlc_pubkey = PublicKey::from_secret_key(&fx.secp, &fx.remote_htlc_privkey);
        for h in case["htlc_txs"].as_array().unwrap() {
            let tx = bolt3_support::unsigned(&bolt3_support::tx(h["tx"].as_str().unwrap()));
            let wscript = built
                .outputs
                .get(usize::try_from(h["output_index"].as_u64().unwrap()).unwrap())
                .unwrap()
                .witness_script
                .clone()
                .unwrap();
            let htlc_tx =
                check_counterparty_htlc_tx(&fx.secp, &setup, &fx.remote, &signed, &tx, &wscript)
                    .unwrap();
            let digest = htlc_tx.sighash(EcdsaSighashType::All).unwrap();
            let sig = der(h["remote_htlc_signature"].as_str().unwrap(), EcdsaSighashType::All);
            fx.secp.verify_ecdsa(&digest, &sig.signature, &remote_htlc_pubkey).unwrap();

            let check = |tx: &Transaction, w: &ScriptBuf| {
                check_counterparty_htlc_tx(&fx.secp, &setup, &fx.remote, &signed, tx, w)
                    .unwrap_err()
                    .rule
            };
            let mut t = tx.clone();
            t.output[0].value = Amount::from_sat(t.output[0].value.to_sat() - 1);
            assert_eq!(check(&t, &wscript), Rule::HtlcStructure);
            let mut t = tx.clone();
            t.output[0].script_pubkey = ScriptBuf::new_op_return([1]);
            assert_eq!(check(&t, &wscript), Rule::HtlcStructure);
            let mut t = tx.clone();
            t.lock_time = bitcoin::absolute::LockTime::from_consensus(
                t.lock_time.to_consensus_u32().wrapping_add(1),
            );
            assert_eq!(check(&t, &wscript), Rule::HtlcStructure);
            let mut t = tx.clone();
            t.input[0].previous_output.vout += 100;
            assert_eq!(check(&t, &wscript), Rule::HtlcStructure);
            assert_eq!(check(&tx, &ScriptBuf::new_op_return([2])), Rule::HtlcStructure);
            checked += 1;
        }
    }
    assert_eq!(checked, 33);
}

/// Zero-fee commitments (`option_zero_fee_commitments`, LDK's staging bit 140): version 3,
/// feerate 0, no keyed anchors, one pay-to-anchor output holding what the other outputs leave
/// of the channel value up to 240 sat. Four commitments — nothing left (a 0-sat anchor), a
/// millisatoshi remainder, a trimmed to_remote, and trimmed HTLCs beyond the cap — are built
/// and read back; an anchor of another value, dropped or doubled, version 2, keyed anchors
/// and a stated feerate are each refused. (Value moved from a balance into the anchor is the
/// balance rule's: it counts as trimmed outflow, as value put into trimmed HTLCs does.)
#[test]
fn zero_fee_commitments_are_read_and_their_shared_anchor_checked() {
    use warden_core::policy::commitment::check_commitment;
    use warden_core::policy::Limits;
    use warden_core::tx::scripts::anchor_witness_script;

    let fx = Fixture::load();
    let zfc = ChannelType::ZeroFeeCommitments;
    let all = [0, 1, 2, 3, 4];
    // (to_local msat, to_remote msat, dust limit, the anchor's value)
    let cases = [
        (6_988_000_000, 3_000_000_000, 546, 0),
        (6_988_000_700, 2_999_999_300, 546, 1),
        (9_987_800_000, 200_000, 546, 200),
        (6_988_000_000, 3_000_000_000, 2_500, 240),
    ];
    for (to_local, to_remote, dust, anchor) in cases {
        let spec = fx.spec(zfc, to_local, to_remote, 0, dust, &all);
        let built = spec.build().unwrap();
        assert_eq!(built.tx.version.0, 3);
        let shared = shared_anchor_script_pubkey();
        let outs: Vec<_> = built.tx.output.iter().filter(|o| o.script_pubkey == shared).collect();
        assert_eq!(outs.len(), 1);
        assert_eq!(outs[0].value.to_sat(), anchor, "{to_local} {to_remote} {dust}");
        let htlcs = untrimmed_in_output_order(&spec);
        let content = read(&fx, &spec, &htlcs, &built.tx).unwrap();
        assert_eq!(content.to_holder.0, to_local / 1000);
        assert_eq!(
            content.to_counterparty.0,
            if to_remote / 1000 < dust { 0 } else { to_remote / 1000 }
        );
        let setup = setup(&fx, &spec);
        check_commitment(&Limits::mainnet(), &setup, &content).unwrap();
        let stated =
            CommitmentContent { feerate: warden_core::units::FeeratePerKw(253), ..content };
        let err = check_commitment(&Limits::mainnet(), &setup, &stated).unwrap_err();
        assert_eq!(err.rule, Rule::CommitmentFeeRange);

        let at = built.tx.output.iter().position(|o| o.script_pubkey == shared).unwrap();
        // The anchor paying more than the other outputs leave (value from nowhere: in a
        // signed transaction, from the fee), or less (more than what is left to miners).
        let mut t = built.tx.clone();
        t.output[at].value += Amount::from_sat(1);
        assert_structure(&fx, &spec, &htlcs, &t);
        if anchor > 0 {
            let mut t = built.tx.clone();
            t.output[at].value -= Amount::from_sat(1);
            assert_structure(&fx, &spec, &htlcs, &t);
        }
        // The anchor dropped, or doubled.
        let mut t = built.tx.clone();
        t.output.remove(at);
        assert_structure(&fx, &spec, &htlcs, &t);
        let mut t = built.tx.clone();
        t.output.insert(at, t.output[at].clone());
        assert_structure(&fx, &spec, &htlcs, &t);
        // Version 2.
        let mut t = built.tx.clone();
        t.version = bitcoin::transaction::Version::TWO;
        assert_structure(&fx, &spec, &htlcs, &t);
        // Keyed anchors as well.
        let mut t = built.tx.clone();
        t.output.push(TxOut {
            value: Amount::from_sat(330),
            script_pubkey: anchor_witness_script(&fx.local_funding_pubkey).to_p2wsh(),
        });
        t.output.sort_by(|a, b| {
            (a.value, a.script_pubkey.as_bytes()).cmp(&(b.value, b.script_pubkey.as_bytes()))
        });
        assert_structure(&fx, &spec, &htlcs, &t);
    }

    // The HTLC transactions: version 3, no fee, no CSV, the peer signs SINGLE|ANYONECANPAY.
    let spec = fx.spec(zfc, 6_988_000_000, 3_000_000_000, 0, 546, &all);
    let built = spec.build().unwrap();
    for (vout, out) in built.outputs.iter().enumerate() {
        let CommitmentOutputKind::Htlc { htlc, .. } = out.kind else { continue };
        let outpoint = OutPoint { txid: built.tx.compute_txid(), vout: vout as u32 };
        let htlc_tx = warden_core::tx::build_htlc_tx(
            zfc,
            outpoint,
            &htlc,
            spec.feerate,
            spec.to_self_delay,
            &spec.keys,
        )
        .unwrap();
        assert_eq!(htlc_tx.tx.version.0, 3);
        assert_eq!(htlc_tx.fee, Sat::ZERO);
        assert_eq!(htlc_tx.tx.input[0].sequence, Sequence::ZERO);
        assert_eq!(
            htlc_tx.countersignatory_sighash_type(),
            EcdsaSighashType::SinglePlusAnyoneCanPay
        );
    }

    // The type cannot be combined with another anchor format.
    let spec = fx.spec(zfc, 6_988_000_000, 3_000_000_000, 0, 546, &all);
    let mut mixed = setup(&fx, &spec);
    mixed.channel_type_features[15] |= 0x40; // bit 22
    assert_eq!(mixed.channel_type().unwrap_err().rule, Rule::ChannelSafeType);
}
