//! The non-payment rules of the policy issue, through `Signer::handle` with requests the
//! testkit builds as lightningd sends them: for each rule, the legitimate request passes and the
//! same request changed in exactly one adversarial way is refused with exactly that rule.
//!
//! - `htlc-fee-range`: 20 and 146 at a feerate below the minimum (with `commitment-fee-range`
//!   demoted, so that the commitment itself is signed); zero-fee HTLC anchors have no minimum.
//! - `sweep-fee-range`: 142 and 14 giving the output to fees; a deadline feerate passes.
//! - `channel-shutdown-script`: our wallet's P2WPKH, P2TR, P2SH-P2WPKH at the named index (in
//!   and beyond the wallet window) pass, and a close to it; a foreign script is refused.
//! - `onchain-push`, `onchain-funding-countersigned`, `onchain-unknown-destination`: the
//!   funding transaction's `sign_withdrawal`; splices: `sign_splice_tx` of a splice candidate
//!   (`onchain-funding-script`, `onchain-funding-value`, `onchain-funding-countersigned`, our
//!   share: `onchain-unknown-destination`) and its lock-in.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::constants::ChainHash;
use bitcoin::hashes::Hash;
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{Secp256k1, SecretKey};
use bitcoin::{Amount, CompressedPublicKey, OutPoint, ScriptBuf, TxOut, Txid};
use warden_core::policy::Rule;
use warden_core::tx::funding::funding_witness_script;
use warden_core::tx::{ChannelType, CommitmentOutputKind};
use warden_core::units::{FeeratePerKw, Msat, Sat};
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer, StoreChoice};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::NoEntropy;
use warden_testkit::{Change, Channel, ChannelParams, CommitState, Funder, Hsmd, Splice, Who};
use warden_wire::msg::*;
use warden_wire::{BitcoinTx, HsmUtxo, Message, WirePsbt};

/// A signer on `chain` with our testkit secret, in memory, with `policy` as its policy file.
fn signer(chain: ChainHash, policy: Option<&str>) -> (tempfile::TempDir, Signer) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
    if let Some(text) = policy {
        std::fs::create_dir_all(dir.path().join("warden")).unwrap();
        std::fs::write(dir.path().join("warden").join("policy.toml"), text).unwrap();
    }
    let mut init = Hsmd::regtest_init();
    init.chainparams = chain;
    let body = init.encode().unwrap();
    let (s, _) = Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
    (dir, s)
}

struct Kit {
    _dir: tempfile::TempDir,
    s: Signer,
    ch: Channel,
}

fn kit_on(chain: ChainHash, policy: Option<&str>, params: ChannelParams) -> Kit {
    let (dir, s) = signer(chain, policy);
    let ch = Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap();
    Kit { _dir: dir, s, ch }
}

fn kit(policy: Option<&str>, t: ChannelType, f: Funder) -> Kit {
    kit_on(ChainHash::REGTEST, policy, ChannelParams::new(t, f))
}

impl Kit {
    fn master(&self) -> ClientContext {
        ClientContext { id: self.s.node_id(), dbid: 0, permissions: permissions::ALL }
    }

    fn client(&self) -> ClientContext {
        ClientContext {
            id: self.ch.peer_id(),
            dbid: self.ch.params().dbid,
            permissions: permissions::ALL,
        }
    }

    fn call<M: Message>(&self, c: &ClientContext, m: &M) -> Result<Vec<u8>, BadRequestError> {
        match self.s.handle(c, &m.encode().unwrap())? {
            Outcome::Reply(r) => Ok(r),
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    fn on_master<M: Message>(&self, m: &M) -> Result<Vec<u8>, BadRequestError> {
        self.call(&self.master(), m)
    }

    fn on_channel<M: Message>(&self, m: &M) -> Result<Vec<u8>, BadRequestError> {
        self.call(&self.client(), m)
    }

    /// `new_channel` and `setup_channel` (as given).
    fn setup(&self, setup: &SetupChannel) -> Result<Vec<u8>, BadRequestError> {
        self.on_master(&self.ch.new_channel()).unwrap();
        self.on_channel(setup)
    }

    /// The opening: setup, the peer's commitment #0 signed, ours validated (the order of both
    /// funders ends the same for what these tests look at).
    fn open(&self) {
        self.setup(&self.ch.setup_channel()).unwrap();
        self.sign_remote_0();
        let (validate, _) = self.ch.validate_commitment(0, &self.ch.local).unwrap();
        self.on_channel(&validate).unwrap();
    }

    fn sign_remote_0(&self) {
        let (sign, _) = self.ch.sign_remote_commitment(0, &self.ch.remote).unwrap();
        self.on_channel(&sign.request).unwrap();
    }
}

fn rule(r: Result<Vec<u8>, BadRequestError>) -> Rule {
    match r {
        Err(BadRequestError::Refused(e)) => e.rule,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

/// Demotes `commitment-fee-range`: a commitment at a feerate out of bounds then still meets
/// `htlc-fee-range` for the HTLC transactions built at that feerate (a demoted rule never
/// hides the rules checked after it), on the commitment itself, before any HTLC transaction.
const DEMOTE_COMMITMENT_FEE: &str = "[enforcement]\nwarn = [\"commitment-fee-range\"]\n";

/// The changes of one round: an untrimmed HTLC we offer, and (when given) a new feerate.
fn htlc_round(ch: &mut Channel, feerate: Option<u32>) -> Vec<Change> {
    let mut changes: Vec<Change> =
        feerate.map(|f| Change::Fee(FeeratePerKw(f))).into_iter().collect();
    changes.push(Change::Add(ch.new_htlc(Who::Us, Msat(20_000_000), [7; 32], 600)));
    changes
}

/// Signs the peer's commitment #1 after `changes` (its outcome), then signs each of its HTLC
/// transactions with `sign_remote_htlc_tx`.
fn remote_htlc_txs(k: &mut Kit, changes: &[Change]) -> Result<Vec<u8>, BadRequestError> {
    let next: CommitState = k.ch.remote.apply(changes).unwrap();
    let (sign, built) = k.ch.sign_remote_commitment(1, &next).unwrap();
    let outcome = k.on_channel(&sign.request)?;
    let htlcs = k.ch.sign_remote_htlc_txs(&built).unwrap();
    assert_eq!(htlcs.len(), 1);
    for h in &htlcs {
        k.on_channel(&h.request).unwrap();
    }
    Ok(outcome)
}

#[test]
fn htlc_fee_range_on_the_peers_htlc_transactions() {
    // Legitimate: an HTLC at the channel's feerate, both channel types.
    for t in [ChannelType::StaticRemoteKey, ChannelType::AnchorsZeroFeeHtlc] {
        let mut k = kit(Some(DEMOTE_COMMITMENT_FEE), t, Funder::Us);
        k.open();
        let changes = htlc_round(&mut k.ch, None);
        remote_htlc_txs(&mut k, &changes).unwrap();
    }
    // One change: the round also lowers the feerate below the minimum (253 sat/kw).
    let mut k = kit(Some(DEMOTE_COMMITMENT_FEE), ChannelType::StaticRemoteKey, Funder::Us);
    k.open();
    let changes = htlc_round(&mut k.ch, Some(200));
    assert_eq!(rule(remote_htlc_txs(&mut k, &changes)), Rule::HtlcFeeRange);
    // Zero-fee HTLC transactions carry no fee at any feerate: no minimum.
    let mut k = kit(Some(DEMOTE_COMMITMENT_FEE), ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    k.open();
    let changes = htlc_round(&mut k.ch, Some(200));
    remote_htlc_txs(&mut k, &changes).unwrap();
}

/// Validates our commitment #1 after `changes` (a refusal is returned), signs it for
/// broadcast, then returns each `sign_any_local_htlc_tx` outcome.
fn local_htlc_txs(
    k: &mut Kit,
    changes: &[Change],
) -> Result<Vec<Result<Vec<u8>, BadRequestError>>, BadRequestError> {
    let next = k.ch.local.apply(changes).unwrap();
    let (validate, _) = k.ch.validate_commitment(1, &next).unwrap();
    k.on_channel(&validate)?;
    k.ch.local = next;
    k.ch.local_num = 1;
    let (sign, built) = k.ch.sign_commitment().unwrap();
    k.on_master(&sign.request).unwrap();
    let txs = built.htlc_txs().unwrap();
    assert_eq!(txs.len(), 1);
    Ok(txs
        .iter()
        .map(|t| k.on_master(&k.ch.sign_local_htlc_tx(&built, t).unwrap().request))
        .collect())
}

#[test]
fn htlc_fee_range_on_our_htlc_transactions() {
    let mut k = kit(Some(DEMOTE_COMMITMENT_FEE), ChannelType::StaticRemoteKey, Funder::Them);
    k.open();
    let changes = htlc_round(&mut k.ch, None);
    for r in local_htlc_txs(&mut k, &changes).unwrap() {
        r.unwrap();
    }
    let mut k = kit(Some(DEMOTE_COMMITMENT_FEE), ChannelType::StaticRemoteKey, Funder::Them);
    k.open();
    let changes = htlc_round(&mut k.ch, Some(200));
    assert_eq!(rule(local_htlc_txs(&mut k, &changes).map(|_| Vec::new())), Rule::HtlcFeeRange);
    // With both rules demoted, the commitment is validated with two warnings, and the HTLC
    // transaction's own check warns again: nothing is refused, everything is logged.
    let both = "[enforcement]\nwarn = [\"commitment-fee-range\", \"htlc-fee-range\"]\n";
    let mut k = kit(Some(both), ChannelType::StaticRemoteKey, Funder::Them);
    k.open();
    let changes = htlc_round(&mut k.ch, Some(200));
    for r in local_htlc_txs(&mut k, &changes).unwrap() {
        r.unwrap();
    }
    let warned = k.s.policy_log().warnings();
    assert_eq!(warned[&Rule::CommitmentFeeRange], 1);
    assert!(warned[&Rule::HtlcFeeRange] >= 2, "{warned:?}");
}

/// Sets output 0 of a sweep's transaction (and of its PSBT) to `value`.
fn with_output_value(tx: &BitcoinTx, value: u64) -> BitcoinTx {
    let mut t = tx.tx().clone();
    let mut p = tx.psbt().psbt().clone();
    t.output[0].value = Amount::from_sat(value);
    p.unsigned_tx.output[0].value = Amount::from_sat(value);
    BitcoinTx::new(t, p)
}

#[test]
fn sweep_fee_range_on_our_delayed_output() {
    let k = kit(None, ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    k.open();
    let (sign, built) = k.ch.sign_commitment().unwrap();
    k.on_master(&sign.request).unwrap();
    let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let sweep = k.ch.sign_delayed_to_us(&built, built.outpoint(vout), out.value).unwrap();
    // Legitimate: onchaind's request as built (253 sat/kw).
    k.on_master(&sweep.request).unwrap();
    // A deadline feerate (some 100,000 sat/kw: 54,000 sat more on about 520 weight units,
    // under the test networks' cap of 250,000) is still signed.
    let value = out.value.0;
    let mut deadline = sweep.request.clone();
    deadline.tx = with_output_value(&sweep.request.tx, value - 54_000);
    k.on_master(&deadline).unwrap();
    // One change: the output keeps 1,000 sat, the rest goes to fees.
    let mut burn = sweep.request.clone();
    burn.tx = with_output_value(&sweep.request.tx, 1_000);
    assert_eq!(rule(k.on_master(&burn)), Rule::SweepFeeRange);
    // ... or pays out more than it spends.
    let mut over = sweep.request.clone();
    over.tx = with_output_value(&sweep.request.tx, value + 1);
    assert_eq!(rule(k.on_master(&over)), Rule::SweepFeeRange);
}

#[test]
fn sweep_fee_range_on_a_penalty() {
    let k = kit(None, ChannelType::StaticRemoteKey, Funder::Them);
    k.open();
    // The peer's commitment #1 (same balances), then its revocation of #0.
    let (sign, _) = k.ch.sign_remote_commitment(1, &k.ch.remote).unwrap();
    k.on_channel(&sign.request).unwrap();
    k.on_channel(&k.ch.validate_revocation(0).unwrap()).unwrap();
    let penalty = k.ch.penalty(0, &k.ch.remote).unwrap().unwrap();
    k.on_channel(&penalty.request).unwrap();
    let mut burn = penalty.request.clone();
    burn.tx = with_output_value(&penalty.request.tx, 500);
    assert_eq!(rule(k.on_channel(&burn)), Rule::SweepFeeRange);
}

fn p2wpkh(k: &Kit, index: u32) -> ScriptBuf {
    k.ch.wallet_script(index).unwrap()
}

fn with_shutdown(k: &Kit, script: ScriptBuf, index: Option<u32>) -> SetupChannel {
    let mut s = k.ch.setup_channel();
    s.local_shutdown_script = script;
    s.local_shutdown_wallet_index = index;
    s
}

#[test]
fn shutdown_script_must_be_our_wallet_or_allowlisted() {
    let k = kit(None, ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    // Legitimate: no script; each script type of wallet index 5 with the index; a script of
    // an index beyond the wallet window with its index; a window script without an index.
    let p2tr = k.ch.wallet_p2tr_script(5).unwrap();
    let p2sh = ScriptBuf::new_p2sh(&p2wpkh(&k, 5).script_hash());
    let far = p2wpkh(&k, 50_000);
    for (script, index) in [
        (ScriptBuf::new(), None),
        (p2wpkh(&k, 5), Some(5)),
        (p2tr, Some(5)),
        (p2sh, Some(5)),
        (far.clone(), Some(50_000)),
        (p2wpkh(&k, 7), None),
    ] {
        k.setup(&with_shutdown(&k, script.clone(), index))
            .unwrap_or_else(|e| panic!("{script} at {index:?}: {e}"));
    }
    // One change: a foreign script (the index lightningd names does not give it).
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[0x99; 32]).unwrap();
    let foreign = ScriptBuf::new_p2wpkh(&CompressedPublicKey(sk.public_key(&secp)).wpubkey_hash());
    assert_eq!(
        rule(k.setup(&with_shutdown(&k, foreign.clone(), Some(5)))),
        Rule::ChannelShutdownScript
    );
    assert_eq!(rule(k.setup(&with_shutdown(&k, foreign, None))), Rule::ChannelShutdownScript);
    // A script of another index beyond the window, claiming index 50,000.
    let other_far = p2wpkh(&k, 50_001);
    assert_eq!(
        rule(k.setup(&with_shutdown(&k, other_far, Some(50_000)))),
        Rule::ChannelShutdownScript
    );
}

/// `channel-safe-type` on Core Lightning's path: zero-fee commitments (bit 140, which
/// warden-ldk accepts for LDK) are not a Core Lightning channel type, alone or with other
/// bits; the obsolete non-zero-fee anchors (bit 20) and a type without static_remotekey are
/// refused too, and the two Core Lightning types are set up.
#[test]
fn channel_safe_type_at_setup() {
    let k = kit(None, ChannelType::StaticRemoteKey, Funder::Us);
    let with_type = |bits: Vec<u8>| {
        let mut s = k.ch.setup_channel();
        s.channel_type = warden_wire::ChannelType(bits);
        s
    };
    let mut zero_fee = vec![0u8; 18];
    zero_fee[0] = 0x10;
    let mut zero_fee_and_static = zero_fee.clone();
    zero_fee_and_static[16] = 0x10;
    for bits in [zero_fee, zero_fee_and_static, vec![0x10, 0x10, 0x00], vec![0x00]] {
        assert_eq!(rule(k.setup(&with_type(bits.clone()))), Rule::ChannelSafeType, "{bits:02x?}");
    }
    k.setup(&with_type(vec![0x10, 0x00])).unwrap();
    let k = kit(None, ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    k.setup(&k.ch.setup_channel()).unwrap();
}

#[test]
fn a_channel_with_a_shutdown_address_opens_and_closes() {
    // The mutual close pays our wallet key 2: open with that upfront shutdown script.
    let k = kit(None, ChannelType::StaticRemoteKey, Funder::Us);
    k.setup(&with_shutdown(&k, p2wpkh(&k, 2), Some(2))).unwrap();
    k.sign_remote_0();
    let (validate, _) = k.ch.validate_commitment(0, &k.ch.local).unwrap();
    k.on_channel(&validate).unwrap();
    let fee = k.ch.local.feerate.fee_for_weight(724);
    k.on_channel(&k.ch.sign_mutual_close(fee).unwrap().request).unwrap();
}

// --- the funding transaction -------------------------------------------------------------------

/// Another party's output (the peer's input or change).
fn foreign_script(n: u8) -> ScriptBuf {
    let secp = Secp256k1::new();
    let sk = SecretKey::from_slice(&[n; 32]).unwrap();
    ScriptBuf::new_p2wpkh(&CompressedPublicKey(sk.public_key(&secp)).wpubkey_hash())
}

/// The funding transaction of a channel we open: our wallet UTXO (index 3) and, for a
/// dual-funded open, the peer's input (150,000 sat) and change (49,000 sat); the funding output
/// first, our change (index 4) last, fee 1,000 sat.
struct Funding {
    psbt: Psbt,
    utxo: HsmUtxo,
}

fn psbt_of(inputs: &[(OutPoint, TxOut)], outputs: Vec<TxOut>) -> Psbt {
    warden_testkit::verify::unsigned_psbt(inputs, outputs).unwrap()
}

fn funding_psbt(probe: &Channel, params: &ChannelParams, dual: bool) -> Funding {
    let ours_in = 1_000_000 + 50_000;
    let (utxo, spent, _) = probe.wallet_utxo(3, Sat(ours_in), b"funding input").unwrap();
    let script =
        funding_witness_script(&probe.our_funding(), &probe.peer().funding_pubkey()).to_p2wsh();
    let mut inputs = vec![(utxo.outpoint, spent.txout)];
    let mut outputs = vec![TxOut { value: params.funding.to_amount(), script_pubkey: script }];
    if dual {
        let op = OutPoint { txid: Txid::from_byte_array([0x55; 32]), vout: 2 };
        inputs.push((
            op,
            TxOut { value: Amount::from_sat(150_000), script_pubkey: foreign_script(7) },
        ));
        outputs.push(TxOut { value: Amount::from_sat(49_000), script_pubkey: foreign_script(8) });
    }
    let brought: u64 = inputs.iter().map(|(_, o)| o.value.to_sat()).sum();
    let paid: u64 = outputs.iter().map(|o| o.value.to_sat()).sum();
    outputs.push(TxOut {
        value: Amount::from_sat(brought - paid - 1_000),
        script_pubkey: probe.wallet_script(4).unwrap(),
    });
    Funding { psbt: psbt_of(&inputs, outputs), utxo }
}

/// A channel we open with `push`, whose funding outpoint is output 0 of its funding
/// transaction (built first: the funding keys do not depend on the outpoint).
fn funded_kit(chain: ChainHash, push: Msat, dual: bool) -> (Kit, Funding) {
    let mut params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    params.push = push;
    let probe = Channel::new(params.clone(), OUR_SECRET, PEER_SECRET).unwrap();
    let funding = funding_psbt(&probe, &params, dual);
    params.funding_outpoint = OutPoint { txid: funding.psbt.unsigned_tx.compute_txid(), vout: 0 };
    (kit_on(chain, None, params), funding)
}

fn sign_funding(k: &Kit, f: &Funding) -> Result<Vec<u8>, BadRequestError> {
    let m = SignWithdrawal { inputs: vec![f.utxo.clone()], psbt: WirePsbt::new(f.psbt.clone()) };
    k.on_master(&m)
}

#[test]
fn funding_is_signed_only_after_commitment_0_is_countersigned() {
    let (k, f) = funded_kit(ChainHash::REGTEST, Msat(100_000_000), false);
    k.setup(&k.ch.setup_channel()).unwrap();
    k.sign_remote_0();
    // One change: lightningd asks for the funding signature before `funding_signed`.
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainFundingCountersigned);
    let (validate, _) = k.ch.validate_commitment(0, &k.ch.local).unwrap();
    k.on_channel(&validate).unwrap();
    sign_funding(&k, &f).unwrap();
}

#[test]
fn a_push_is_refused_on_mainnet_unless_the_peer_brought_it() {
    // Mainnet's default push limit is 0.
    let (k, f) = funded_kit(ChainHash::BITCOIN, Msat(0), false);
    k.open();
    sign_funding(&k, &f).unwrap();
    let (k, f) = funded_kit(ChainHash::BITCOIN, Msat(100_000_000), false);
    k.open();
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainPush);
    // A dual-funded open: the "push" is the peer's own contribution, and its change output
    // (paid by its input) is fine.
    let (k, f) = funded_kit(ChainHash::BITCOIN, Msat(100_000_000), true);
    k.open();
    sign_funding(&k, &f).unwrap();
    // Test networks allow pushes.
    let (k, f) = funded_kit(ChainHash::REGTEST, Msat(100_000_000), false);
    k.open();
    sign_funding(&k, &f).unwrap();
}

#[test]
fn a_funding_transaction_pays_nobody_else() {
    // Our change goes to a foreign address: more than the peer's input brings.
    let (k, mut f) = funded_kit(ChainHash::REGTEST, Msat(0), true);
    k.open();
    let last = f.psbt.unsigned_tx.output.len() - 1;
    f.psbt.unsigned_tx.output[last].script_pubkey = foreign_script(9);
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainUnknownDestination);
    // The "peer's" input is one of our own wallet outputs, left out of the request (it would
    // be signed by the next one): it pays for no foreign output.
    let (k, mut f) = funded_kit(ChainHash::REGTEST, Msat(0), true);
    k.open();
    f.psbt.inputs[1].witness_utxo.as_mut().unwrap().script_pubkey = k.ch.wallet_script(6).unwrap();
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainUnknownDestination);
    // The funding output carries less than the channel's value.
    let (k, mut f) = funded_kit(ChainHash::REGTEST, Msat(0), false);
    k.open();
    f.psbt.unsigned_tx.output[0].value = Amount::from_sat(999_000);
    f.psbt.unsigned_tx.output[1].value += Amount::from_sat(1_000);
    // (the txid changed with the value: no channel is at the new outpoint any more, so the
    // output is a foreign P2WSH)
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainUnknownDestination);
}

/// `sign_withdrawal` of a splice-in's wallet input.
fn w_request(k: &Kit, s: &Splice) -> SignWithdrawal {
    k.ch.sign_splice_wallet_input(s).unwrap().unwrap().request
}

/// A splice-in signed with `sign_withdrawal`: the channel's current funding output and our
/// wallet UTXO (index 3, 100,000 sat) into the channel's new 2-of-2 (not yet at a known
/// outpoint) and our change (index 4), fee 1,000 sat.
fn splice_in(k: &Kit) -> Funding {
    let p = k.ch.params();
    let script =
        funding_witness_script(&k.ch.our_funding(), &k.ch.peer().funding_pubkey()).to_p2wsh();
    let (utxo, spent, _) = k.ch.wallet_utxo(3, Sat(100_000), b"splice input").unwrap();
    let inputs = [
        (p.funding_outpoint, TxOut { value: p.funding.to_amount(), script_pubkey: script.clone() }),
        (utxo.outpoint, spent.txout),
    ];
    let outputs = vec![
        TxOut { value: p.funding.to_amount() + Amount::from_sat(90_000), script_pubkey: script },
        TxOut { value: Amount::from_sat(9_000), script_pubkey: k.ch.wallet_script(4).unwrap() },
    ];
    Funding { psbt: psbt_of(&inputs, outputs), utxo }
}

#[test]
fn a_splice_pays_the_channel_or_us() {
    // Mainnet (no push allowed): a splice is not a push, and its new 2-of-2 is the channel's.
    let k = kit_on(
        ChainHash::BITCOIN,
        None,
        ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us),
    );
    k.open();
    let f = splice_in(&k);
    sign_funding(&k, &f).unwrap();
    // One change: 50,000 sat of our contribution go to a foreign address instead of the
    // channel (the channel's own input pays for no foreign output).
    let mut f = splice_in(&k);
    f.psbt.unsigned_tx.output[0].value -= Amount::from_sat(50_000);
    f.psbt
        .unsigned_tx
        .output
        .push(TxOut { value: Amount::from_sat(50_000), script_pubkey: foreign_script(9) });
    f.psbt.outputs.push(Default::default());
    assert_eq!(rule(sign_funding(&k, &f)), Rule::OnchainUnknownDestination);

    // splices: `sign_splice_tx` of a splice announced by `setup_channel` (a candidate) whose
    // commitments were exchanged (the current numbers rebuilt on the new funding): signed
    // over the old 2-of-2 with the channel's value. Each change below is refused, and a
    // refusal changes nothing.
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let splice_kit = || {
        let k = kit_on(ChainHash::BITCOIN, None, params.clone());
        k.open();
        k
    };
    let announce = |k: &Kit, s: &Splice, commitments: bool| {
        k.on_channel(&k.ch.splice_setup_channel(s)).unwrap();
        if commitments {
            let local = k.ch.local.spliced(s).unwrap();
            let (validate, _) = k.ch.validate_commitment_on(0, &local, Some(s)).unwrap();
            k.on_channel(&validate).unwrap();
            let remote = k.ch.remote.spliced(s).unwrap();
            let (sign, _) = k.ch.sign_remote_commitment_on(0, &remote, Some(s)).unwrap();
            k.on_channel(&sign.request).unwrap();
        }
    };
    let sign_splice = |k: &Kit, s: &Splice| k.on_channel(&k.ch.sign_splice(s).unwrap().request);
    let rehash = |s: &mut Splice| s.outpoint = OutPoint { txid: s.tx.compute_txid(), vout: 0 };
    let k = splice_kit();
    let s = k.ch.splice(-100_000).unwrap();
    announce(&k, &s, true);
    let signed = SignTxReply::decode(&sign_splice(&k, &s).unwrap()).unwrap().sig;
    let expect = k.ch.sign_splice(&s).unwrap().expect;
    Secp256k1::new().verify_ecdsa(&expect.digest, &signed.signature, &expect.key).unwrap();
    // Lock-in: the splice becomes the channel's funding; the next commitment spends it.
    k.on_channel(&k.ch.lock_outpoint_of(&s.outpoint)).unwrap();
    let mut k = k;
    k.ch.splices.push(s.clone());
    k.ch.lock_splice(0).unwrap();
    let (sign, _) = k.ch.sign_remote_commitment(1, &k.ch.remote).unwrap();
    k.on_channel(&sign.request).unwrap();

    // Our payout goes to a foreign address (our value moves away).
    let k = splice_kit();
    let mut s = k.ch.splice(-100_000).unwrap();
    s.tx.output[1].script_pubkey = foreign_script(9);
    rehash(&mut s);
    announce(&k, &s, true);
    assert_eq!(rule(sign_splice(&k, &s)), Rule::OnchainUnknownDestination);
    // A splice-in credited to us for less than our wallet brings (the rest to the peer):
    // neither our wallet input (`sign_withdrawal`) nor the channel's input is signed.
    let k = splice_kit();
    let mut s = k.ch.splice(200_000).unwrap();
    (s.our_relative, s.their_relative) = (150_000, 50_000);
    announce(&k, &s, true);
    let w = k.ch.sign_splice_wallet_input(&s).unwrap().unwrap();
    assert_eq!(rule(k.on_master(&w.request)), Rule::OnchainUnknownDestination);
    assert_eq!(rule(sign_splice(&k, &s)), Rule::OnchainUnknownDestination);
    // The honest split: both signed.
    let k = splice_kit();
    let s = k.ch.splice(200_000).unwrap();
    announce(&k, &s, true);
    k.on_master(&w_request(&k, &s)).unwrap();
    sign_splice(&k, &s).unwrap();
    // The new funding output carries less than the candidate's value.
    let k = splice_kit();
    let mut s = k.ch.splice(-100_000).unwrap();
    s.tx.output[0].value -= Amount::from_sat(1_000);
    rehash(&mut s);
    announce(&k, &s, true);
    assert_eq!(rule(sign_splice(&k, &s)), Rule::OnchainFundingValue);
    // The new funding output is not the channel's 2-of-2.
    let k = splice_kit();
    let mut s = k.ch.splice(-100_000).unwrap();
    s.tx.output[0].script_pubkey = foreign_script(8);
    rehash(&mut s);
    announce(&k, &s, true);
    assert_eq!(rule(sign_splice(&k, &s)), Rule::OnchainFundingScript);
    // Signed before the commitments on the splice were exchanged; then the lock-in of such
    // a splice.
    let k = splice_kit();
    let s = k.ch.splice(-100_000).unwrap();
    announce(&k, &s, false);
    assert_eq!(rule(sign_splice(&k, &s)), Rule::OnchainFundingCountersigned);
    assert_eq!(
        rule(k.on_channel(&k.ch.lock_outpoint_of(&s.outpoint))),
        Rule::OnchainFundingCountersigned
    );
    // Nothing changed: once the commitments are exchanged, the same splice is signed.
    announce(&k, &s, true);
    sign_splice(&k, &s).unwrap();
}
