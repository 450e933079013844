//! On-chain wallet signing through `Signer::handle`: withdrawals (P2WPKH, BIP-86 P2TR), anchor
//! spends, mingled HTLC transactions and splices, each signature verified with rust-bitcoin's
//! sighash and secp256k1; then one mutation per rule, asserting the rule.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::bip32::{ChildNumber, DerivationPath, Fingerprint};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::key::TapTweak;
use bitcoin::psbt::Psbt;
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, CompressedPublicKey, NetworkKind, OutPoint, ScriptBuf, Sequence, Transaction, TxIn,
    TxOut, Txid,
};
use secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use warden_core::channel::{ChannelSetup, ChannelSlot, ChannelState};
use warden_core::keys::{
    Basepoints as CoreBasepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint,
    NodeId as CoreNodeId, NodeKeys, PaymentBasepoint, RevocationBasepoint,
};
use warden_core::policy::Rule;
use warden_core::secret::{PrivateKey, Seed};
use warden_core::tx::scripts::{anchor_witness_script, funding_witness_script};
use warden_core::units::{Dbid, Msat, Sat};
use warden_hsmd::onchain;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer};
use warden_testkit::rng::NoEntropy;
use warden_wire::msg::*;
use warden_wire::{
    AmountMsat, Basepoints, BitcoinTx, ChannelType, CloseInfo, HsmUtxo, Message as _, NodeId,
    Permissions, WirePsbt,
};

const WORDS: &str = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                     abandon abandon about";

/// lightningd's regtest `init` (the testkit's, so every test sends the same one).
fn init_body() -> Vec<u8> {
    warden_testkit::Hsmd::regtest_init().encode().unwrap()
}

/// A signer with its keys, derived independently of it from the same seed.
struct Fixture {
    _dir: tempfile::TempDir,
    signer: Signer,
    keys: NodeKeys,
    secp: Secp256k1<All>,
}

fn fixture(file: &[u8], seed: Seed) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), file).unwrap();
    let (signer, _) = Signer::init(&init_body(), dir.path(), &mut NoEntropy).unwrap();
    let secp = Secp256k1::new();
    let keys = NodeKeys::derive(&secp, &seed, NetworkKind::Test).unwrap();
    Fixture { _dir: dir, signer, keys, secp }
}

fn legacy() -> Fixture {
    fixture(&[0x42; 32], Seed::from_legacy([0x42; 32]))
}

fn mnemonic() -> Fixture {
    let mut file = vec![0u8; 32];
    file.extend_from_slice(WORDS.as_bytes());
    fixture(&file, Seed::from_mnemonic(WORDS, "").unwrap())
}

fn master(s: &Signer) -> ClientContext {
    ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL }
}

fn reply(f: &Fixture, client: &ClientContext, body: &[u8]) -> Result<Vec<u8>, BadRequestError> {
    match f.signer.handle(client, body)? {
        Outcome::Reply(r) => Ok(r),
        Outcome::NewClient { .. } => panic!("unexpected new client"),
    }
}

fn refused_rule(r: Result<Vec<u8>, BadRequestError>) -> Rule {
    match r {
        Err(BadRequestError::Refused(e)) => e.rule,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn p2wpkh(pk: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(*pk).wpubkey_hash())
}

fn p2tr(secp: &Secp256k1<All>, pk: &PublicKey) -> ScriptBuf {
    ScriptBuf::new_p2tr(secp, pk.x_only_public_key().0, None)
}

fn outpoint(n: u8) -> OutPoint {
    OutPoint { txid: Txid::from_byte_array([n; 32]), vout: u32::from(n) }
}

fn foreign_key(n: u8) -> PublicKey {
    SecretKey::from_slice(&[n; 32]).unwrap().public_key(&Secp256k1::new())
}

fn utxo(op: OutPoint, sat: u64, keyindex: u32, script: ScriptBuf) -> HsmUtxo {
    HsmUtxo {
        outpoint: op,
        amount: Amount::from_sat(sat),
        keyindex,
        legacy_is_p2sh: false,
        script_pubkey: script,
        close_info: None,
        legacy_is_in_coinbase: false,
    }
}

/// A version-2 PSBT spending `inputs` (outpoint, spent output) into `outputs`.
fn psbt(inputs: &[(OutPoint, TxOut)], outputs: &[TxOut]) -> Psbt {
    warden_testkit::verify::unsigned_psbt(inputs, outputs.to_vec()).unwrap()
}

fn out(sat: u64, script: ScriptBuf) -> TxOut {
    TxOut { value: Amount::from_sat(sat), script_pubkey: script }
}

fn decode_psbt(body: &[u8]) -> Psbt {
    // Every PSBT reply has the same shape: the type, then the PSBT.
    SignWithdrawalReply::decode(&[&[0, 107], &body[2..]].concat()).unwrap().psbt.into_psbt()
}

fn verify_p2wpkh(secp: &Secp256k1<All>, signed: &Psbt, j: usize, pk: &PublicKey) {
    let prev = signed.inputs[j].witness_utxo.clone().unwrap();
    let sig = signed.inputs[j].partial_sigs[&bitcoin::PublicKey::new(*pk)];
    assert_eq!(sig.sighash_type, EcdsaSighashType::All);
    let digest = SighashCache::new(&signed.unsigned_tx)
        .p2wpkh_signature_hash(j, &prev.script_pubkey, prev.value, EcdsaSighashType::All)
        .unwrap();
    let msg = Message::from_digest(digest.to_byte_array());
    secp.verify_ecdsa(&msg, &sig.signature, pk).unwrap();
    assert!(sig.signature.serialize_compact()[0] < 0x80, "low R");
}

fn fingerprint(pk: &PublicKey) -> Fingerprint {
    let h = hash160::Hash::hash(&pk.serialize()).to_byte_array();
    Fingerprint::from([h[0], h[1], h[2], h[3]])
}

fn path0() -> DerivationPath {
    DerivationPath::from(vec![ChildNumber::Normal { index: 0 }])
}

fn withdrawal(utxos: Vec<HsmUtxo>, p: Psbt) -> Vec<u8> {
    SignWithdrawal { inputs: utxos, psbt: WirePsbt::new(p) }.encode().unwrap()
}

/// A legacy wallet spend: utxo index 5 (100,000 sat) to our own address at index 9 (a
/// consolidation: the only destination a withdrawal may have without an allowlist or an
/// approval) and change to index 7, fee 1,000 sat.
struct Withdrawal {
    utxos: Vec<HsmUtxo>,
    psbt: Psbt,
    key: PrivateKey,
}

fn legacy_withdrawal(f: &Fixture) -> Withdrawal {
    let key = f.keys.wallet().bitcoin_key(&f.secp, 5).unwrap();
    let pk = key.public_key(&f.secp);
    let change = f.keys.wallet().bitcoin_key(&f.secp, 7).unwrap().public_key(&f.secp);
    let to = f.keys.wallet().bitcoin_key(&f.secp, 9).unwrap().public_key(&f.secp);
    let spent = out(100_000, p2wpkh(&pk));
    let u = utxo(outpoint(1), 100_000, 5, p2wpkh(&pk));
    let p =
        psbt(&[(outpoint(1), spent)], &[out(60_000, p2wpkh(&to)), out(39_000, p2wpkh(&change))]);
    Withdrawal { utxos: vec![u], psbt: p, key }
}

#[test]
fn withdrawal_p2wpkh_is_signed_as_libwally_signs() {
    let f = legacy();
    let w = legacy_withdrawal(&f);
    let pk = w.key.public_key(&f.secp);
    let body = reply(&f, &master(&f.signer), &withdrawal(w.utxos, w.psbt.clone())).unwrap();
    assert_eq!(&body[..2], &[0, 107]);
    let signed = decode_psbt(&body);
    verify_p2wpkh(&f.secp, &signed, 0, &pk);
    // libwally's grinding is rust-secp256k1's `sign_ecdsa_low_r`.
    let digest = SighashCache::new(&w.psbt.unsigned_tx)
        .p2wpkh_signature_hash(0, &p2wpkh(&pk), Amount::from_sat(100_000), EcdsaSighashType::All)
        .unwrap();
    let expected = f
        .secp
        .sign_ecdsa_low_r(&Message::from_digest(digest.to_byte_array()), w.key.expose_secret());
    assert_eq!(signed.inputs[0].partial_sigs[&bitcoin::PublicKey::new(pk)].signature, expected);
    // `psbt_input_add_pubkey`: fingerprint HASH160[..4], path `0`.
    assert_eq!(signed.inputs[0].bip32_derivation[&pk], (fingerprint(&pk), path0()));
    // Nothing else changed.
    let mut stripped = signed.clone();
    stripped.inputs[0].partial_sigs.clear();
    stripped.inputs[0].bip32_derivation.clear();
    assert_eq!(stripped, w.psbt);
    // The reply's PSBT bytes are rust-bitcoin's canonical serialization: re-serializing them
    // gives them back.
    let bytes = SignWithdrawalReply::decode(&body).unwrap().psbt;
    assert_eq!(Psbt::deserialize(bytes.as_bytes()).unwrap().serialize(), bytes.as_bytes());
}

#[test]
fn withdrawal_bip86_p2tr_and_p2wpkh_inputs_verify() {
    let f = mnemonic();
    let tr_key = f.keys.wallet().bip86_key(&f.secp, 2).unwrap();
    let wpkh_key = f.keys.wallet().bip86_key(&f.secp, 3).unwrap();
    let (tr_pk, wpkh_pk) = (tr_key.public_key(&f.secp), wpkh_key.public_key(&f.secp));
    let change = f.keys.wallet().bip86_key(&f.secp, 4).unwrap().public_key(&f.secp);
    let to = f.keys.wallet().bip86_key(&f.secp, 5).unwrap().public_key(&f.secp);
    let prev_tr = out(50_000, p2tr(&f.secp, &tr_pk));
    let prev_wpkh = out(70_000, p2wpkh(&wpkh_pk));
    let p = psbt(
        &[(outpoint(1), prev_tr.clone()), (outpoint(2), prev_wpkh.clone())],
        &[out(100_000, p2tr(&f.secp, &to)), out(19_000, p2tr(&f.secp, &change))],
    );
    let utxos = vec![
        utxo(outpoint(1), 50_000, 2, prev_tr.script_pubkey.clone()),
        utxo(outpoint(2), 70_000, 3, prev_wpkh.script_pubkey.clone()),
    ];
    let body = reply(&f, &master(&f.signer), &withdrawal(utxos, p.clone())).unwrap();
    let signed = decode_psbt(&body);
    // P2TR: BIP-341 key-path digest over all prevouts, SIGHASH_DEFAULT, the BIP-86 output key.
    let sig = signed.inputs[0].tap_key_sig.unwrap();
    assert_eq!(sig.sighash_type, TapSighashType::Default);
    let digest = SighashCache::new(&p.unsigned_tx)
        .taproot_key_spend_signature_hash(
            0,
            &Prevouts::All(&[prev_tr, prev_wpkh]),
            TapSighashType::Default,
        )
        .unwrap();
    let (output_key, _) = tr_pk.x_only_public_key().0.tap_tweak(&f.secp, None);
    let msg = Message::from_digest(digest.to_byte_array());
    f.secp.verify_schnorr(&sig.signature, &msg, &output_key.to_x_only_public_key()).unwrap();
    // Zero aux randomness: deterministic, as libwally's NULL aux_rand.
    let keypair = secp256k1::Keypair::from_secret_key(&f.secp, tr_key.expose_secret())
        .tap_tweak(&f.secp, None)
        .to_keypair();
    let zero_aux = f.secp.sign_schnorr_with_aux_rand(&msg, &keypair, &[0; 32]);
    assert_eq!(sig.signature, zero_aux);
    let origin = &signed.inputs[0].tap_key_origins[&tr_pk.x_only_public_key().0];
    assert_eq!(origin, &(Vec::new(), (fingerprint(&tr_pk), path0())));
    verify_p2wpkh(&f.secp, &signed, 1, &wpkh_pk);
}

#[test]
fn withdrawal_mutations_are_refused_by_rule() {
    let f = legacy();
    let client = master(&f.signer);
    let run =
        |utxos: Vec<HsmUtxo>, p: Psbt| refused_rule(reply(&f, &client, &withdrawal(utxos, p)));

    // The first output pays an external address that is neither allowlisted nor approved.
    let mut w = legacy_withdrawal(&f);
    w.psbt.unsigned_tx.output[0].script_pubkey = p2wpkh(&foreign_key(9));
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainUnknownDestination);

    // The PSBT claims another amount than the UTXO.
    let mut w = legacy_withdrawal(&f);
    w.psbt.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(100_001);
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainInputAmount);

    // The lightningd's UTXO claims another amount than the PSBT.
    let mut w = legacy_withdrawal(&f);
    w.utxos[0].amount = Amount::from_sat(99_000);
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainInputAmount);

    // No witness_utxo.
    let mut w = legacy_withdrawal(&f);
    w.psbt.inputs[0].witness_utxo = None;
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainInputAmount);

    // The UTXO's key index does not give its script.
    let mut w = legacy_withdrawal(&f);
    w.utxos[0].keyindex = 6;
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainInputAmount);

    // Fee above the cap: 40,000 sat on ~440 weight units.
    let mut w = legacy_withdrawal(&f);
    w.psbt.unsigned_tx.output[1].value = Amount::from_sat(0);
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainFeeRange);

    // Outputs above inputs.
    let mut w = legacy_withdrawal(&f);
    w.psbt.unsigned_tx.output[1].value = Amount::from_sat(41_000);
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainFeeRange);

    // Version 1.
    let mut w = legacy_withdrawal(&f);
    w.psbt.unsigned_tx.version = Version::ONE;
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainFormat);

    // A wallet input with SIGHASH_SINGLE.
    let mut w = legacy_withdrawal(&f);
    w.psbt.inputs[0].sighash_type = Some(EcdsaSighashType::Single.into());
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainFormat);

    // An output claims to fund a channel (P2WSH with a 2-of-2 witness script) that Warden
    // does not know.
    let mut w = legacy_withdrawal(&f);
    let ws = funding_witness_script(&FundingPubkey(foreign_key(3)), &FundingPubkey(foreign_key(4)));
    w.psbt.unsigned_tx.output[0].script_pubkey = ws.to_p2wsh();
    w.psbt.outputs[0].witness_script = Some(ws.clone());
    assert_eq!(run(w.utxos.clone(), w.psbt.clone()), Rule::OnchainFundingScript);

    // ... and is funded by a non-segwit (P2PKH) input as well: malleable.
    let p2pkh = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::hash(&foreign_key(5).serialize()));
    w.psbt.unsigned_tx.input.push(TxIn { previous_output: outpoint(8), ..Default::default() });
    w.psbt.unsigned_tx.input[1].sequence = Sequence::ENABLE_RBF_NO_LOCKTIME;
    w.psbt.inputs.push(bitcoin::psbt::Input {
        witness_utxo: Some(out(10_000, p2pkh)),
        ..Default::default()
    });
    w.psbt.unsigned_tx.output[0].value = Amount::from_sat(70_000);
    assert_eq!(run(w.utxos, w.psbt), Rule::OnchainFundingMalleable);
}

/// The funding-output rule against a channel state built here (the signer's `Channels` has
/// no index by funding outpoint yet, see the module docs).
#[test]
fn funding_output_must_match_the_channel() {
    let f = legacy();
    let w = legacy_withdrawal(&f);
    let peer = CoreNodeId::from_slice(&foreign_key(20).serialize()).unwrap();
    let ck = f.keys.channel_keys(&peer, Dbid(3)).unwrap();
    let remote = FundingPubkey(foreign_key(21));
    let ws = funding_witness_script(&ck.funding_pubkey(&f.secp), &remote);
    let mut tx = w.psbt.unsigned_tx.clone();
    tx.output[0] = out(60_000, ws.to_p2wsh());
    let setup = |value: u64, tx: &Transaction| ChannelSetup {
        is_outbound: true,
        channel_value: Sat(value),
        push_value: Msat(0),
        funding_outpoint: OutPoint { txid: tx.compute_txid(), vout: 0 },
        holder_selected_delay: 144,
        holder_shutdown_script: None,
        holder_shutdown_wallet_index: None,
        counterparty_basepoints: CoreBasepoints {
            revocation: RevocationBasepoint(foreign_key(22)),
            payment: PaymentBasepoint(foreign_key(23)),
            htlc: HtlcBasepoint(foreign_key(24)),
            delayed_payment: DelayedPaymentBasepoint(foreign_key(25)),
        },
        counterparty_funding_pubkey: remote,
        counterparty_selected_delay: 144,
        counterparty_shutdown_script: None,
        channel_type_features: vec![0x40, 0x10, 0x00],
    };
    let mut state = ChannelState::new(ChannelSlot { peer, dbid: Dbid(3) });
    state.apply_setup(setup(60_000, &tx)).unwrap();
    onchain::check_funding_output(&f.secp, &f.keys, &state, &tx, 0).unwrap();
    let mut state = ChannelState::new(ChannelSlot { peer, dbid: Dbid(3) });
    state.apply_setup(setup(60_001, &tx)).unwrap();
    let e = onchain::check_funding_output(&f.secp, &f.keys, &state, &tx, 0).unwrap_err();
    assert_eq!(e.rule, Rule::OnchainFundingValue);
    let mut other = tx.clone();
    other.output[0].script_pubkey = p2wpkh(&foreign_key(26));
    let e = onchain::check_funding_output(&f.secp, &f.keys, &state, &other, 0).unwrap_err();
    assert_eq!(e.rule, Rule::OnchainFundingScript);
}

fn peer() -> NodeId {
    NodeId::from(foreign_key(30))
}

fn channel_keys(f: &Fixture, dbid: u64) -> warden_core::keys::ChannelKeys {
    let p = CoreNodeId::from_slice(peer().as_bytes()).unwrap();
    f.keys.channel_keys(&p, Dbid(dbid)).unwrap()
}

/// An anchor spend: our anchor (330 sat) and wallet utxo index 2 (50,000 sat) into change
/// at index 3, fee 2,000 sat.
fn anchorspend_fixture(f: &Fixture) -> (SignAnchorspend, PublicKey, PublicKey) {
    let funding = channel_keys(f, 1).funding_pubkey(&f.secp);
    let aws = anchor_witness_script(&funding);
    let wallet = f.keys.wallet().bitcoin_key(&f.secp, 2).unwrap().public_key(&f.secp);
    let change = f.keys.wallet().bitcoin_key(&f.secp, 3).unwrap().public_key(&f.secp);
    let mut p = psbt(
        &[(outpoint(1), out(330, aws.to_p2wsh())), (outpoint(2), out(50_000, p2wpkh(&wallet)))],
        &[out(48_330, p2wpkh(&change))],
    );
    p.inputs[0].witness_script = Some(aws);
    p.inputs[0].bip32_derivation.insert(funding.0, (fingerprint(&funding.0), path0()));
    let m = SignAnchorspend {
        peerid: peer(),
        channel_dbid: 1,
        inputs: vec![utxo(outpoint(2), 50_000, 2, p2wpkh(&wallet))],
        psbt: WirePsbt::new(p),
    };
    (m, funding.0, wallet)
}

#[test]
fn anchorspend_signs_anchor_and_wallet_input() {
    let f = legacy();
    let (m, funding, wallet) = anchorspend_fixture(&f);
    let body = reply(&f, &master(&f.signer), &m.encode().unwrap()).unwrap();
    assert_eq!(&body[..2], &[0, 148]);
    let signed = SignAnchorspendReply::decode(&body).unwrap().psbt.into_psbt();
    verify_p2wpkh(&f.secp, &signed, 1, &wallet);
    let aws = signed.inputs[0].witness_script.clone().unwrap();
    let sig = signed.inputs[0].partial_sigs[&bitcoin::PublicKey::new(funding)];
    let digest = SighashCache::new(&signed.unsigned_tx)
        .p2wsh_signature_hash(0, &aws, Amount::from_sat(330), EcdsaSighashType::All)
        .unwrap();
    f.secp
        .verify_ecdsa(&Message::from_digest(digest.to_byte_array()), &sig.signature, &funding)
        .unwrap();
}

#[test]
fn anchorspend_mutations_are_refused_by_rule() {
    let f = legacy();
    let client = master(&f.signer);
    // A foreign output: anchor spends pay change only.
    let (mut m, _, _) = anchorspend_fixture(&f);
    let mut p = m.psbt.psbt().clone();
    p.unsigned_tx.output[0].value = Amount::from_sat(28_330);
    p.unsigned_tx.output.push(out(20_000, p2wpkh(&foreign_key(9))));
    p.outputs.push(Default::default());
    m.psbt = WirePsbt::new(p);
    assert_eq!(
        refused_rule(reply(&f, &client, &m.encode().unwrap())),
        Rule::OnchainUnknownDestination
    );

    // Change beyond the window, with a true derivation claim: accepted.
    let (mut m, _, _) = anchorspend_fixture(&f);
    let far = f.keys.wallet().bitcoin_key(&f.secp, 5000).unwrap().public_key(&f.secp);
    let mut p = m.psbt.psbt().clone();
    p.unsigned_tx.output[0].script_pubkey = p2wpkh(&far);
    let claim = DerivationPath::from(vec![ChildNumber::Normal { index: 5000 }]);
    p.outputs[0].bip32_derivation.insert(far, (Fingerprint::default(), claim.clone()));
    m.psbt = WirePsbt::new(p.clone());
    reply(&f, &client, &m.encode().unwrap()).unwrap();
    // The same claim on a foreign script: refused.
    p.unsigned_tx.output[0].script_pubkey = p2wpkh(&foreign_key(9));
    m.psbt = WirePsbt::new(p);
    assert_eq!(
        refused_rule(reply(&f, &client, &m.encode().unwrap())),
        Rule::OnchainUnknownDestination
    );

    // The anchor claims another value.
    let (mut m, _, _) = anchorspend_fixture(&f);
    let mut p = m.psbt.psbt().clone();
    p.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(100_000);
    m.psbt = WirePsbt::new(p);
    assert_eq!(refused_rule(reply(&f, &client, &m.encode().unwrap())), Rule::OnchainInputAmount);
}

/// An HTLC transaction (input 0 already signed by lightningd, 20,000 sat, paired with output
/// 0) with wallet utxo index 4 (50,000 sat) for its fee and change to index 5.
fn mingle_fixture(f: &Fixture, htlc_out: u64) -> SignHtlcTxMingle {
    let wallet = f.keys.wallet().bitcoin_key(&f.secp, 4).unwrap().public_key(&f.secp);
    let change = f.keys.wallet().bitcoin_key(&f.secp, 5).unwrap().public_key(&f.secp);
    let htlc_script = ScriptBuf::from_bytes(vec![0x51]).to_p2wsh();
    let second_stage = ScriptBuf::from_bytes(vec![0x52]).to_p2wsh();
    let p = psbt(
        &[(outpoint(1), out(20_000, htlc_script)), (outpoint(2), out(50_000, p2wpkh(&wallet)))],
        &[out(htlc_out, second_stage), out(68_000 - htlc_out, p2wpkh(&change))],
    );
    SignHtlcTxMingle {
        peerid: peer(),
        channel_dbid: 1,
        inputs: vec![utxo(outpoint(2), 50_000, 4, p2wpkh(&wallet))],
        psbt: WirePsbt::new(p),
    }
}

#[test]
fn htlc_mingle_signs_wallet_inputs_only() {
    let f = legacy();
    let wallet = f.keys.wallet().bitcoin_key(&f.secp, 4).unwrap().public_key(&f.secp);
    let m = mingle_fixture(&f, 19_000);
    let body = reply(&f, &master(&f.signer), &m.encode().unwrap()).unwrap();
    assert_eq!(&body[..2], &[0, 150]);
    let signed = SignHtlcTxMingleReply::decode(&body).unwrap().psbt.into_psbt();
    assert!(signed.inputs[0].partial_sigs.is_empty());
    verify_p2wpkh(&f.secp, &signed, 1, &wallet);
    // The paired output may not take more than its input brought: 21,000 > 20,000.
    let m = mingle_fixture(&f, 21_000);
    assert_eq!(
        refused_rule(reply(&f, &master(&f.signer), &m.encode().unwrap())),
        Rule::OnchainUnknownDestination
    );
}

#[test]
fn close_info_utxo_is_signed_with_the_channel_payment_key() {
    let f = legacy();
    let ck = channel_keys(&f, 9);
    let point = foreign_key(40);
    let key =
        ck.to_remote_key(&f.secp, Some(&warden_core::keys::PerCommitmentPoint(point))).unwrap();
    let pk = key.public_key(&f.secp);
    let change = f.keys.wallet().bitcoin_key(&f.secp, 1).unwrap().public_key(&f.secp);
    let p = psbt(&[(outpoint(1), out(30_000, p2wpkh(&pk)))], &[out(29_000, p2wpkh(&change))]);
    let mut u = utxo(outpoint(1), 30_000, 0, p2wpkh(&pk));
    u.close_info = Some(CloseInfo {
        channel_id: 9,
        peer_id: peer(),
        commitment_point: Some(point),
        option_anchors: false,
        csv: 1,
    });
    let body = reply(&f, &master(&f.signer), &withdrawal(vec![u], p)).unwrap();
    verify_p2wpkh(&f.secp, &decode_psbt(&body), 0, &pk);
}

#[test]
fn anchored_close_info_utxo_gets_its_witness_script() {
    let f = legacy();
    let key = channel_keys(&f, 9).to_remote_key(&f.secp, None).unwrap();
    let pk = key.public_key(&f.secp);
    let ws = bitcoin::script::Builder::new()
        .push_slice(pk.serialize())
        .push_opcode(bitcoin::opcodes::all::OP_CHECKSIGVERIFY)
        .push_int(1)
        .push_opcode(bitcoin::opcodes::all::OP_CSV)
        .into_script();
    let change = f.keys.wallet().bitcoin_key(&f.secp, 1).unwrap().public_key(&f.secp);
    let p = psbt(&[(outpoint(1), out(30_000, ws.to_p2wsh()))], &[out(29_000, p2wpkh(&change))]);
    let mut u = utxo(outpoint(1), 30_000, 0, ws.to_p2wsh());
    u.close_info = Some(CloseInfo {
        channel_id: 9,
        peer_id: peer(),
        commitment_point: None,
        option_anchors: true,
        csv: 1,
    });
    let body = reply(&f, &master(&f.signer), &withdrawal(vec![u], p)).unwrap();
    let signed = decode_psbt(&body);
    assert_eq!(signed.inputs[0].witness_script.as_ref(), Some(&ws));
    let sig = signed.inputs[0].partial_sigs[&bitcoin::PublicKey::new(pk)];
    let digest = SighashCache::new(&signed.unsigned_tx)
        .p2wsh_signature_hash(0, &ws, Amount::from_sat(30_000), EcdsaSighashType::All)
        .unwrap();
    f.secp
        .verify_ecdsa(&Message::from_digest(digest.to_byte_array()), &sig.signature, &pk)
        .unwrap();
}

/// Sets up channel (peer, 7) with funding outpoint `funding` of 1,000,000 sat and returns its
/// client and the peer's funding key.
fn splice_channel(f: &Fixture, funding: OutPoint) -> (ClientContext, PublicKey) {
    let client = ClientContext { id: peer(), dbid: 7, permissions: permissions::ALL };
    let remote = foreign_key(50);
    reply(f, &master(&f.signer), &NewChannel { id: peer(), dbid: 7 }.encode().unwrap()).unwrap();
    let setup = SetupChannel {
        is_outbound: true,
        channel_value: Amount::from_sat(1_000_000),
        push_value: AmountMsat(0),
        funding_txid: funding.txid,
        funding_txout: funding.vout as u16,
        local_to_self_delay: 144,
        local_shutdown_script: ScriptBuf::new(),
        local_shutdown_wallet_index: None,
        remote_basepoints: Basepoints {
            revocation: foreign_key(51),
            payment: foreign_key(52),
            htlc: foreign_key(53),
            delayed_payment: foreign_key(54),
        },
        remote_funding_pubkey: remote,
        remote_to_self_delay: 144,
        remote_shutdown_script: ScriptBuf::new(),
        channel_type: ChannelType(vec![0x40, 0x10, 0x00]),
    };
    reply(f, &client, &setup.encode().unwrap()).unwrap();
    (client, remote)
}

/// The splice: the old funding output and a peer's 200,000-sat input into the new funding
/// output, fee 1,000 sat.
fn splice_tx(
    f: &Fixture,
    funding: OutPoint,
    remote: &PublicKey,
    peer_script: ScriptBuf,
) -> (Transaction, Psbt) {
    let ours = channel_keys(f, 7).funding_pubkey(&f.secp);
    let ws = funding_witness_script(&ours, &FundingPubkey(*remote));
    let p = psbt(
        &[(funding, out(1_000_000, ws.to_p2wsh())), (outpoint(3), out(200_000, peer_script))],
        &[out(1_199_000, ws.to_p2wsh())],
    );
    (p.unsigned_tx.clone(), p)
}

#[test]
fn splice_signature_verifies_and_malleable_inputs_are_refused() {
    let f = legacy();
    let funding = outpoint(60);
    let (client, remote) = splice_channel(&f, funding);
    let (tx, p) = splice_tx(&f, funding, &remote, p2wpkh(&foreign_key(55)));
    let m = SignSpliceTx {
        tx: BitcoinTx::new(tx.clone(), p),
        remote_funding_key: remote,
        input_index: 0,
    };
    // splices: no `setup_channel` announced this splice (a candidate, with commitments on
    // it): refused. The signature of an announced splice is checked by warden-testkit's
    // splice flows (tests/flows.rs) and policy_rules::a_splice_pays_the_channel_or_us.
    assert_eq!(refused_rule(reply(&f, &client, &m.encode().unwrap())), Rule::OnchainFundingScript);
    let _ = tx;

    // The peer's input is P2PKH: the new funding txid would be malleable.
    let p2pkh = ScriptBuf::new_p2pkh(&bitcoin::PubkeyHash::hash(&foreign_key(56).serialize()));
    let (tx, p) = splice_tx(&f, funding, &remote, p2pkh);
    let m = SignSpliceTx { tx: BitcoinTx::new(tx, p), remote_funding_key: remote, input_index: 0 };
    assert_eq!(
        refused_rule(reply(&f, &client, &m.encode().unwrap())),
        Rule::OnchainFundingMalleable
    );

    // The PSBT claims another value for the old funding output.
    let (tx, mut p) = splice_tx(&f, funding, &remote, p2wpkh(&foreign_key(55)));
    p.inputs[0].witness_utxo.as_mut().unwrap().value = Amount::from_sat(900_000);
    let m = SignSpliceTx { tx: BitcoinTx::new(tx, p), remote_funding_key: remote, input_index: 0 };
    assert_eq!(refused_rule(reply(&f, &client, &m.encode().unwrap())), Rule::OnchainInputAmount);

    // `input_index` names the peer's input, not the funding outpoint.
    let (tx, p) = splice_tx(&f, funding, &remote, p2wpkh(&foreign_key(55)));
    let m = SignSpliceTx { tx: BitcoinTx::new(tx, p), remote_funding_key: remote, input_index: 1 };
    assert_eq!(refused_rule(reply(&f, &client, &m.encode().unwrap())), Rule::OnchainFundingScript);
}

#[test]
fn permissions_still_apply() {
    let f = legacy();
    let w = legacy_withdrawal(&f);
    let channel = ClientContext { id: peer(), dbid: 1, permissions: Permissions::SIGN_SPLICE_TX };
    assert!(matches!(
        f.signer.handle(&channel, &withdrawal(w.utxos, w.psbt)),
        Err(BadRequestError::PermissionDenied { msg_type: 7, .. })
    ));
}

#[test]
fn a_withdrawal_to_an_external_address_waits_for_the_operators_approval() {
    use warden_hsmd::approvals::{ApprovalRequest, ApprovalState, Approvals};
    let f = legacy();
    let client = master(&f.signer);
    let external = p2wpkh(&foreign_key(9));
    let build = |change_index: u32| {
        let mut w = legacy_withdrawal(&f);
        w.psbt.unsigned_tx.output[0].script_pubkey = external.clone();
        // A retried `withdraw` builds another transaction (other change), same external output.
        let change =
            f.keys.wallet().bitcoin_key(&f.secp, change_index).unwrap().public_key(&f.secp);
        w.psbt.unsigned_tx.output[1].script_pubkey = p2wpkh(&change);
        withdrawal(w.utxos, w.psbt)
    };
    assert_eq!(refused_rule(reply(&f, &client, &build(7))), Rule::OnchainUnknownDestination);

    // The refusal left a pending request naming exactly the external output.
    let approvals = Approvals::new(&f._dir.path().join("warden"));
    let request = ApprovalRequest::Onchain { outputs: vec![(external.clone(), Sat(60_000))] };
    let id = request.id();
    assert_eq!(approvals.state(&id), Some(ApprovalState::Pending));
    let pending = approvals.list(ApprovalState::Pending).unwrap();
    assert_eq!(pending.len(), 1);
    assert!(pending[0].1.contains("60000"), "{}", pending[0].1);

    // The operator approves; the node's retry (other change) is signed, once.
    approvals.decide(&id, true).unwrap();
    let signed = decode_psbt(&reply(&f, &client, &build(8)).unwrap());
    assert_eq!(signed.inputs[0].partial_sigs.len(), 1);
    assert_eq!(approvals.state(&id), Some(ApprovalState::Used));
    assert_eq!(refused_rule(reply(&f, &client, &build(8))), Rule::OnchainUnknownDestination);
}

/// `onchain-fee-range`'s daily velocity: fees signed per day are bounded, and the fee bumps of
/// one spend (RBF: the same input again) are charged only for what they add.
#[test]
fn daily_onchain_fees_are_bounded_and_fee_bumps_count_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
    std::fs::create_dir_all(dir.path().join("warden")).unwrap();
    std::fs::write(
        dir.path().join("warden/policy.toml"),
        "[limits]\nonchain-fee-per-day-sat = 2500\n",
    )
    .unwrap();
    let (signer, _) = Signer::init(&init_body(), dir.path(), &mut NoEntropy).unwrap();
    let secp = Secp256k1::new();
    let keys = NodeKeys::derive(&secp, &Seed::from_legacy([0x42; 32]), NetworkKind::Test).unwrap();
    let f = Fixture { _dir: dir, signer, keys, secp };
    let client = master(&f.signer);
    // Utxo `n` (index 5 key, 100,000 sat) to our index 9 and change, paying `fee`.
    let spend = |n: u8, fee: u64| {
        let pk = f.keys.wallet().bitcoin_key(&f.secp, 5).unwrap().public_key(&f.secp);
        let to = f.keys.wallet().bitcoin_key(&f.secp, 9).unwrap().public_key(&f.secp);
        let change = f.keys.wallet().bitcoin_key(&f.secp, 7).unwrap().public_key(&f.secp);
        let spent = out(100_000, p2wpkh(&pk));
        let u = utxo(outpoint(n), 100_000, 5, p2wpkh(&pk));
        let p = psbt(
            &[(outpoint(n), spent)],
            &[out(60_000, p2wpkh(&to)), out(40_000 - fee, p2wpkh(&change))],
        );
        withdrawal(vec![u], p)
    };
    reply(&f, &client, &spend(1, 1_000)).unwrap();
    // Two bumps of the same spend: only 500, then 300 more are charged (1,800 in all).
    reply(&f, &client, &spend(1, 1_500)).unwrap();
    reply(&f, &client, &spend(1, 1_800)).unwrap();
    // Another spend of 1,000 would make 2,800 > 2,500.
    assert_eq!(refused_rule(reply(&f, &client, &spend(2, 1_000))), Rule::OnchainFeeRange);
    // 700 still fits, and a bump of the first spend back below its highest fee adds nothing.
    reply(&f, &client, &spend(2, 700)).unwrap();
    reply(&f, &client, &spend(1, 1_200)).unwrap();
    assert_eq!(refused_rule(reply(&f, &client, &spend(3, 1))), Rule::OnchainFeeRange);
}

/// An approval is used up only by a request that is signed: one refused after its
/// destinations passed (here by the daily fee budget) leaves it for the node's next try.
#[test]
fn an_approval_survives_a_refusal_after_the_destination_check() {
    use warden_hsmd::approvals::{ApprovalRequest, ApprovalState, Approvals};
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
    std::fs::create_dir_all(dir.path().join("warden")).unwrap();
    let policy = dir.path().join("warden/policy.toml");
    // The withdrawal pays 1,000 sat of fee: over a 500 sat budget.
    std::fs::write(&policy, "[limits]\nonchain-fee-per-day-sat = 500\n").unwrap();
    let start = || Signer::init(&init_body(), dir.path(), &mut NoEntropy).unwrap().0;
    let secp = Secp256k1::new();
    let keys = NodeKeys::derive(&secp, &Seed::from_legacy([0x42; 32]), NetworkKind::Test).unwrap();
    let f = Fixture { _dir: tempfile::tempdir().unwrap(), signer: start(), keys, secp };
    let external = p2wpkh(&foreign_key(9));
    let build = |f: &Fixture| {
        let mut w = legacy_withdrawal(f);
        w.psbt.unsigned_tx.output[0].script_pubkey = external.clone();
        withdrawal(w.utxos, w.psbt)
    };
    let client = master(&f.signer);
    assert_eq!(refused_rule(reply(&f, &client, &build(&f))), Rule::OnchainUnknownDestination);
    let approvals = Approvals::new(&dir.path().join("warden"));
    let id = ApprovalRequest::Onchain { outputs: vec![(external.clone(), Sat(60_000))] }.id();
    approvals.decide(&id, true).unwrap();

    // Approved, but the fee is over the budget: refused, and the approval is still there.
    assert_eq!(refused_rule(reply(&f, &client, &build(&f))), Rule::OnchainFeeRange);
    assert_eq!(approvals.state(&id), Some(ApprovalState::Approved));

    // With a budget that allows it (the operator raised it and restarted), the retry is
    // signed and uses the approval up.
    let Fixture { signer, keys, secp, .. } = f;
    drop(signer);
    std::fs::write(&policy, "[limits]\nonchain-fee-per-day-sat = 5000\n").unwrap();
    let f = Fixture { _dir: tempfile::tempdir().unwrap(), signer: start(), keys, secp };
    let client = master(&f.signer);
    let signed = decode_psbt(&reply(&f, &client, &build(&f)).unwrap());
    assert_eq!(signed.inputs[0].partial_sigs.len(), 1);
    assert_eq!(approvals.state(&id), Some(ApprovalState::Used));
    assert_eq!(refused_rule(reply(&f, &client, &build(&f))), Rule::OnchainUnknownDestination);
}
