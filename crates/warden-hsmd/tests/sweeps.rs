//! The sweep requests (`sign_*_to_us`, `sign_any_local_htlc_tx`) through `Signer::handle`: one
//! legitimate request per message whose signature verifies, and one mutation per rule.
//!
//! The fixture opens a `static_remotekey` channel (we fund it) with a peer whose keys the test
//! holds, and drives it to: our commitments 0 and 1 validated, 0 revoked; the peer's
//! commitments 0..=3 signed, 0..=2 revoked. Commitments 1.. carry two HTLCs (one each way).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpub};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::psbt::Psbt;
use bitcoin::sighash::EcdsaSighashType;
use bitcoin::{Amount, OutPoint, ScriptBuf, Transaction, TxOut, Txid};
use secp256k1::{All, Message as Digest, PublicKey, Secp256k1, SecretKey};
use warden_core::keys::bolt3::derive_private_key;
use warden_core::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::policy::Rule;
use warden_core::secret::PrivateKey;
use warden_core::shachain::generate_from_seed;
use warden_core::tx::commitment::{
    BuiltCommitment, CommitmentOutputKind, CommitmentSpec, ObscuringFactor, Party,
};
use warden_core::tx::htlc::{Htlc, HtlcDirection, PaymentHash, PaymentPreimage};
use warden_core::tx::sweep::{self, SpendFee, SpendTemplate};
use warden_core::tx::{ChannelType, CommitmentKeys};
use warden_core::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer};
use warden_testkit::rng::NoEntropy;
use warden_wire::msg::*;
use warden_wire::{AmountMsat, BitcoinTx, HsmHtlc, Message, NodeId, Secret, Side};

const DBID: u64 = 1;
const FUNDING: u64 = 1_000_000;
/// The delay we impose on the peer's outputs (`local_to_self_delay`).
const PEER_DELAY: u16 = 144;
/// The delay the peer imposes on ours (`remote_to_self_delay`).
const OUR_DELAY: u16 = 6;
const FEERATE: FeeratePerKw = FeeratePerKw(253);

fn sk(b: u8) -> SecretKey {
    SecretKey::from_slice(&[b; 32]).unwrap()
}

/// A peer whose secrets the test holds.
struct Peer {
    id: NodeId,
    funding: SecretKey,
    revocation: SecretKey,
    payment: SecretKey,
    htlc: SecretKey,
    delayed: SecretKey,
    seed: [u8; 32],
}

impl Peer {
    fn new(secp: &Secp256k1<All>) -> Peer {
        Peer {
            id: NodeId::from(PublicKey::from_secret_key(secp, &sk(0x17))),
            funding: sk(0x11),
            revocation: sk(0x12),
            payment: sk(0x13),
            htlc: sk(0x14),
            delayed: sk(0x15),
            seed: [0x16; 32],
        }
    }

    fn basepoints(&self, secp: &Secp256k1<All>) -> Basepoints {
        let p = |k: &SecretKey| PublicKey::from_secret_key(secp, k);
        Basepoints {
            revocation: RevocationBasepoint(p(&self.revocation)),
            payment: PaymentBasepoint(p(&self.payment)),
            htlc: HtlcBasepoint(p(&self.htlc)),
            delayed_payment: DelayedPaymentBasepoint(p(&self.delayed)),
        }
    }

    fn secret(&self, n: u64) -> [u8; 32] {
        generate_from_seed(&self.seed, CommitmentNumber::new(n).unwrap().shachain_index())
    }

    fn point(&self, secp: &Secp256k1<All>, n: u64) -> PerCommitmentPoint {
        PerCommitmentPoint(PublicKey::from_secret_key(
            secp,
            &SecretKey::from_slice(&self.secret(n)).unwrap(),
        ))
    }
}

/// The signer, the channel, and how to talk to it.
struct Fixture {
    _dir: tempfile::TempDir,
    signer: Signer,
    secp: Secp256k1<All>,
    peer: Peer,
    ours: Basepoints,
    our_funding: FundingPubkey,
    wallet: Xpub,
    funding_outpoint: OutPoint,
}

/// lightningd's regtest `init` (the testkit's, so every test sends the same one).
fn init_body() -> Vec<u8> {
    warden_testkit::Hsmd::regtest_init().encode().unwrap()
}

fn payment_hash(b: u8) -> PaymentHash {
    PaymentHash(sha256::Hash::hash(&[b; 32]).to_byte_array())
}

/// The HTLCs of commitments 1..: (offered by us, amount sat, payment preimage byte, expiry).
const HTLCS: [(bool, u64, u8, u32); 2] = [(true, 50_000, 1, 500), (false, 30_000, 2, 600)];

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
        let (signer, reply) = Signer::init(&init_body(), dir.path(), &mut NoEntropy).unwrap();
        let wallet = InitReplyV4::decode(&reply).unwrap().bip32;
        let secp = Secp256k1::new();
        let peer = Peer::new(&secp);
        let mut f = Fixture {
            _dir: dir,
            signer,
            secp,
            peer,
            ours: Basepoints {
                revocation: RevocationBasepoint(sk(1).public_key(&Secp256k1::new())),
                payment: PaymentBasepoint(sk(1).public_key(&Secp256k1::new())),
                htlc: HtlcBasepoint(sk(1).public_key(&Secp256k1::new())),
                delayed_payment: DelayedPaymentBasepoint(sk(1).public_key(&Secp256k1::new())),
            },
            our_funding: FundingPubkey(sk(1).public_key(&Secp256k1::new())),
            wallet,
            funding_outpoint: OutPoint { txid: Txid::from_byte_array([0xfa; 32]), vout: 0 },
        };
        let bp = GetChannelBasepointsReply::decode(
            &f.ok_master(&GetChannelBasepoints { peerid: f.peer.id, dbid: DBID }.encode().unwrap()),
        )
        .unwrap();
        f.ours = Basepoints {
            revocation: RevocationBasepoint(bp.basepoints.revocation),
            payment: PaymentBasepoint(bp.basepoints.payment),
            htlc: HtlcBasepoint(bp.basepoints.htlc),
            delayed_payment: DelayedPaymentBasepoint(bp.basepoints.delayed_payment),
        };
        f.our_funding = FundingPubkey(bp.funding_pubkey);
        f.open();
        f
    }

    fn master(&self) -> ClientContext {
        ClientContext { id: self.signer.node_id(), dbid: 0, permissions: permissions::ALL }
    }

    fn channel(&self) -> ClientContext {
        ClientContext { id: self.peer.id, dbid: DBID, permissions: permissions::ALL }
    }

    fn call(&self, client: &ClientContext, body: &[u8]) -> Result<Vec<u8>, BadRequestError> {
        match self.signer.handle(client, body)? {
            Outcome::Reply(r) => Ok(r),
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    fn ok_master(&self, body: &[u8]) -> Vec<u8> {
        self.call(&self.master(), body).unwrap()
    }

    fn ok_channel(&self, body: &[u8]) -> Vec<u8> {
        self.call(&self.channel(), body).unwrap()
    }

    fn our_point(&self, n: u64) -> PerCommitmentPoint {
        let r = self.ok_channel(&GetPerCommitmentPoint { n }.encode().unwrap());
        PerCommitmentPoint(GetPerCommitmentPointReply::decode(&r).unwrap().per_commitment_point)
    }

    fn htlcs(n: u64, we_broadcast: bool) -> (Msat, Msat, Vec<Htlc>) {
        let (mut to_us, mut to_them) = (600_000_000, 400_000_000);
        let mut htlcs = Vec::new();
        if n > 0 {
            for (ours, sat, pre, cltv) in HTLCS {
                if ours {
                    to_us -= sat * 1000;
                } else {
                    to_them -= sat * 1000;
                }
                let offered_by_broadcaster = ours == we_broadcast;
                htlcs.push(Htlc {
                    direction: if offered_by_broadcaster {
                        HtlcDirection::Offered
                    } else {
                        HtlcDirection::Received
                    },
                    amount: Msat(sat * 1000),
                    payment_hash: payment_hash(pre),
                    cltv_expiry: cltv,
                });
            }
        }
        (Msat(to_us), Msat(to_them), htlcs)
    }

    fn our_commitment(&self, n: u64) -> BuiltCommitment {
        let keys = CommitmentKeys::derive(
            &self.secp,
            &self.our_point(n),
            &self.ours,
            &self.peer.basepoints(&self.secp),
        )
        .unwrap();
        let (to_us, to_them, htlcs) = Self::htlcs(n, true);
        self.spec(n, keys, true, to_us, to_them, htlcs).build().unwrap()
    }

    fn their_commitment(&self, n: u64) -> BuiltCommitment {
        let peer = self.peer.basepoints(&self.secp);
        let keys =
            CommitmentKeys::derive(&self.secp, &self.peer.point(&self.secp, n), &peer, &self.ours)
                .unwrap();
        let (to_us, to_them, htlcs) = Self::htlcs(n, false);
        self.spec(n, keys, false, to_them, to_us, htlcs).build().unwrap()
    }

    #[allow(clippy::too_many_arguments, reason = "test builder")]
    fn spec(
        &self,
        n: u64,
        keys: CommitmentKeys,
        ours: bool,
        to_broadcaster: Msat,
        to_countersignatory: Msat,
        htlcs: Vec<Htlc>,
    ) -> CommitmentSpec {
        let peer_funding =
            FundingPubkey(PublicKey::from_secret_key(&self.secp, &self.peer.funding));
        let (b, c) =
            if ours { (self.our_funding, peer_funding) } else { (peer_funding, self.our_funding) };
        CommitmentSpec {
            channel_type: ChannelType::StaticRemoteKey,
            funding_outpoint: self.funding_outpoint,
            funding_value: Sat(FUNDING),
            broadcaster_funding_pubkey: b,
            countersignatory_funding_pubkey: c,
            obscuring_factor: ObscuringFactor::from_payment_basepoints(
                &self.ours.payment,
                &self.peer.basepoints(&self.secp).payment,
            ),
            commitment_number: CommitmentNumber::new(n).unwrap(),
            keys,
            to_self_delay: if ours { OUR_DELAY } else { PEER_DELAY },
            dust_limit: Sat(546),
            feerate: FEERATE,
            opener: if ours { Party::Broadcaster } else { Party::Countersignatory },
            to_broadcaster,
            to_countersignatory,
            htlcs,
        }
    }

    /// The node's HTLC list of a commitment, in output order.
    fn hsm_htlcs(built: &BuiltCommitment, ours: bool) -> Vec<HsmHtlc> {
        built
            .outputs
            .iter()
            .filter_map(|o| match o.kind {
                CommitmentOutputKind::Htlc { htlc, .. } => {
                    let offered_by_us = (htlc.direction == HtlcDirection::Offered) == ours;
                    Some(HsmHtlc {
                        side: if offered_by_us { Side::Local } else { Side::Remote },
                        amount: AmountMsat(htlc.amount.0),
                        payment_hash: sha256::Hash::from_byte_array(htlc.payment_hash.0),
                        cltv_expiry: htlc.cltv_expiry,
                    })
                }
                _ => None,
            })
            .collect()
    }

    fn funding_tx(&self, built: &BuiltCommitment) -> BitcoinTx {
        let spent = TxOut {
            value: Amount::from_sat(FUNDING),
            script_pubkey: built.funding_witness_script.to_p2wsh(),
        };
        let mut psbt = Psbt::from_unsigned_tx(built.tx.clone()).unwrap();
        psbt.inputs[0].witness_utxo = Some(spent);
        BitcoinTx::new(built.tx.clone(), psbt)
    }

    fn sign_remote(&self, n: u64) {
        let built = self.their_commitment(n);
        let m = SignRemoteCommitmentTx {
            tx: self.funding_tx(&built),
            remote_funding_key: PublicKey::from_secret_key(&self.secp, &self.peer.funding),
            remote_per_commit: self.peer.point(&self.secp, n).0,
            option_static_remotekey: true,
            commit_num: n,
            htlcs: Self::hsm_htlcs(&built, false),
            feerate: FEERATE.0,
        };
        self.ok_channel(&m.encode().unwrap());
    }

    fn validate(&self, n: u64) {
        let built = self.our_commitment(n);
        let sign =
            |digest: Digest, key: &SecretKey, t: EcdsaSighashType| bitcoin::ecdsa::Signature {
                signature: self.secp.sign_ecdsa(&digest, key),
                sighash_type: t,
            };
        let sig = sign(built.sighash().unwrap(), &self.peer.funding, EcdsaSighashType::All);
        let htlc_key = derive_private_key(
            &self.secp,
            &PrivateKey::new(self.peer.htlc),
            &built.keys.per_commitment_point,
        )
        .unwrap();
        let htlc_sigs = built
            .htlc_txs()
            .unwrap()
            .iter()
            .map(|h| {
                sign(
                    h.countersignatory_sighash().unwrap(),
                    htlc_key.expose_secret(),
                    h.countersignatory_sighash_type(),
                )
            })
            .collect();
        let m = ValidateCommitmentTx {
            tx: self.funding_tx(&built),
            htlcs: Self::hsm_htlcs(&built, true),
            commit_num: n,
            feerate: FEERATE.0,
            sig,
            htlc_sigs,
        };
        self.ok_channel(&m.encode().unwrap());
    }

    fn open(&self) {
        self.ok_master(&NewChannel { id: self.peer.id, dbid: DBID }.encode().unwrap());
        let p = self.peer.basepoints(&self.secp);
        let setup = SetupChannel {
            is_outbound: true,
            channel_value: Amount::from_sat(FUNDING),
            push_value: AmountMsat(400_000_000),
            funding_txid: self.funding_outpoint.txid,
            funding_txout: 0,
            local_to_self_delay: PEER_DELAY,
            local_shutdown_script: ScriptBuf::new(),
            local_shutdown_wallet_index: None,
            remote_basepoints: warden_wire::Basepoints {
                revocation: p.revocation.0,
                payment: p.payment.0,
                htlc: p.htlc.0,
                delayed_payment: p.delayed_payment.0,
            },
            remote_funding_pubkey: PublicKey::from_secret_key(&self.secp, &self.peer.funding),
            remote_to_self_delay: OUR_DELAY,
            remote_shutdown_script: ScriptBuf::new(),
            // option_static_remotekey (bit 12).
            channel_type: warden_wire::ChannelType(vec![0x10, 0x00]),
        };
        self.ok_channel(&setup.encode().unwrap());
        self.sign_remote(0);
        self.validate(0);
        self.sign_remote(1);
        self.validate(1);
        self.ok_channel(&RevokeCommitmentTx { commit_num: 0 }.encode().unwrap());
        for n in 0..=2 {
            self.revoke_peer(n);
            if n < 2 {
                self.sign_remote(n + 2);
            }
        }
    }

    fn revoke_peer(&self, n: u64) {
        let m = ValidateRevocation {
            revoke_num: n,
            per_commitment_secret: Secret::new(self.peer.secret(n)),
        };
        self.ok_channel(&m.encode().unwrap());
    }

    /// Our wallet's P2WPKH at `m/0/0/index`, and its public key.
    fn wallet(&self, index: u32) -> (ScriptBuf, PublicKey) {
        let child = self.wallet.derive_pub(&self.secp, &[ChildNumber::Normal { index }]).unwrap();
        let pk = child.public_key;
        (ScriptBuf::new_p2wpkh(&bitcoin::CompressedPublicKey(pk).wpubkey_hash()), pk)
    }

    /// A sweep as lightningd sends it: the template, its PSBT with the spent output.
    fn wire(&self, t: &SpendTemplate) -> BitcoinTx {
        bitcoin_tx(&t.tx, t.value, &t.witness_script)
    }
}

fn bitcoin_tx(tx: &Transaction, value: Sat, wscript: &ScriptBuf) -> BitcoinTx {
    let mut psbt = Psbt::from_unsigned_tx(tx.clone()).unwrap();
    psbt.inputs[0].witness_utxo =
        Some(TxOut { value: value.to_amount(), script_pubkey: wscript.to_p2wsh() });
    psbt.inputs[0].witness_script = Some(wscript.clone());
    BitcoinTx::new(tx.clone(), psbt)
}

fn fee() -> SpendFee {
    SpendFee::Feerate(FEERATE)
}

fn foreign() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([7; 20]))
}

fn rule_of(r: Result<Vec<u8>, BadRequestError>) -> Rule {
    match r {
        Err(BadRequestError::Refused(e)) => e.rule,
        other => panic!("expected a policy refusal, got {other:?}"),
    }
}

fn check_sig(
    secp: &Secp256k1<All>,
    reply: &[u8],
    digest: Digest,
    key: &PublicKey,
    t: EcdsaSighashType,
) {
    let sig = SignTxReply::decode(reply).unwrap().sig;
    assert_eq!(sig.sighash_type, t);
    secp.verify_ecdsa(&digest, &sig.signature, key).unwrap();
}

// --- 12 / 142: delayed payment to us ------------------------------------------------------------

impl Fixture {
    /// Our commitment 1's to_local swept to `dest`.
    fn delayed_sweep(&self, dest: ScriptBuf) -> (BuiltCommitment, SpendTemplate) {
        let built = self.our_commitment(1);
        let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
        let t = sweep::spend_delayed_to_local(
            built.outpoint(vout),
            out.value,
            &built.keys.revocation,
            OUR_DELAY,
            &built.keys.broadcaster_delayed_payment,
            dest,
            fee(),
        )
        .unwrap();
        (built, t)
    }

    fn any_delayed(&self, t: &SpendTemplate, tx: BitcoinTx, dbid: u64) -> Vec<u8> {
        SignAnyDelayedPaymentToUs {
            commit_num: 1,
            tx,
            wscript: t.witness_script.clone(),
            input: 0,
            peerid: self.peer.id,
            channel_dbid: dbid,
        }
        .encode()
        .unwrap()
    }
}

#[test]
fn delayed_payment_to_us_signs_our_to_local_sweep() {
    let f = Fixture::new();
    let (built, t) = f.delayed_sweep(f.wallet(3).0);
    let key = built.keys.broadcaster_delayed_payment.0;
    let reply = f.ok_master(&f.any_delayed(&t, f.wire(&t), DBID));
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
    let m =
        SignDelayedPaymentToUs { commit_num: 1, tx: f.wire(&t), wscript: t.witness_script.clone() };
    let reply = f.ok_channel(&m.encode().unwrap());
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
}

#[test]
fn delayed_payment_to_us_refusals() {
    let f = Fixture::new();
    let (built, t) = f.delayed_sweep(f.wallet(3).0);
    // A witness script Warden does not derive (another delay).
    let other = sweep::spend_delayed_to_local(
        t.tx.input[0].previous_output,
        t.value,
        &built.keys.revocation,
        OUR_DELAY + 1,
        &built.keys.broadcaster_delayed_payment,
        f.wallet(3).0,
        fee(),
    )
    .unwrap();
    assert_eq!(
        rule_of(f.call(&f.master(), &f.any_delayed(&other, f.wire(&other), DBID))),
        Rule::SweepStructure
    );
    // The PSBT's spent output is not the P2WSH of the witness script.
    let lying = bitcoin_tx(&t.tx, t.value, &other.witness_script);
    assert_eq!(rule_of(f.call(&f.master(), &f.any_delayed(&t, lying, DBID))), Rule::SweepStructure);
    // A destination outside the wallet.
    let (_, away) = f.delayed_sweep(foreign());
    assert_eq!(
        rule_of(f.call(&f.master(), &f.any_delayed(&away, f.wire(&away), DBID))),
        Rule::SweepDestination
    );
    // A channel Warden does not know.
    assert_eq!(
        rule_of(f.call(&f.master(), &f.any_delayed(&t, f.wire(&t), 99))),
        Rule::ChannelUnknown
    );
}

#[test]
fn destination_by_key_origin_beyond_the_window() {
    let f = Fixture::new();
    let (script, pk) = f.wallet(5000);
    let (_, t) = f.delayed_sweep(script);
    let claim = |pk: PublicKey| {
        let mut w = f.wire(&t);
        let mut psbt = w.psbt().psbt().clone();
        let path = DerivationPath::from(vec![ChildNumber::Normal { index: 5000 }]);
        psbt.outputs[0].bip32_derivation.insert(pk, (f.wallet.fingerprint(), path));
        w = BitcoinTx::new(t.tx.clone(), psbt);
        w
    };
    // Index 5000 is outside the precomputed window: without the origin it is refused...
    assert_eq!(
        rule_of(f.call(&f.master(), &f.any_delayed(&t, f.wire(&t), DBID))),
        Rule::SweepDestination
    );
    // ...with a true origin it is accepted...
    f.ok_master(&f.any_delayed(&t, claim(pk), DBID));
    // ...and a false one (the key of another index) is refused.
    let (_, wrong) = f.wallet(5001);
    assert_eq!(
        rule_of(f.call(&f.master(), &f.any_delayed(&t, claim(wrong), DBID))),
        Rule::SweepDestination
    );
}

// --- 13 / 143: the peer's HTLC outputs to us ----------------------------------------------------

/// The peer's current commitment (3): claim the HTLC it offered with the preimage.
fn remote_claim(f: &Fixture, dest: ScriptBuf) -> (BuiltCommitment, SpendTemplate) {
    let built = f.their_commitment(3);
    let (vout, htlc) = built
        .outputs
        .iter()
        .enumerate()
        .find_map(|(i, o)| match o.kind {
            CommitmentOutputKind::Htlc { htlc, .. } if htlc.direction == HtlcDirection::Offered => {
                Some((i as u32, htlc))
            }
            _ => None,
        })
        .unwrap();
    let t = sweep::claim_offered_htlc(
        ChannelType::StaticRemoteKey,
        built.outpoint(vout),
        &htlc,
        &built.keys,
        PaymentPreimage::new([2; 32]),
        dest,
        fee(),
    )
    .unwrap();
    (built, t)
}

fn any_remote(f: &Fixture, point: PublicKey, t: &SpendTemplate, tx: BitcoinTx) -> Vec<u8> {
    SignAnyRemoteHtlcToUs {
        remote_per_commitment_point: point,
        tx,
        wscript: t.witness_script.clone(),
        option_anchor_outputs: false,
        input: 0,
        peerid: f.peer.id,
        channel_dbid: DBID,
    }
    .encode()
    .unwrap()
}

#[test]
fn remote_htlc_to_us_signs_a_claim() {
    let f = Fixture::new();
    let (built, t) = remote_claim(&f, f.wallet(4).0);
    let point = built.keys.per_commitment_point.0;
    let key = built.keys.countersignatory_htlc.0;
    let reply = f.ok_master(&any_remote(&f, point, &t, f.wire(&t)));
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
    let m = SignRemoteHtlcToUs {
        remote_per_commitment_point: point,
        tx: f.wire(&t),
        wscript: t.witness_script.clone(),
        option_anchor_outputs: false,
    };
    let reply = f.ok_channel(&m.encode().unwrap());
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
}

#[test]
fn remote_htlc_to_us_refusals() {
    let f = Fixture::new();
    let (built, t) = remote_claim(&f, f.wallet(4).0);
    let point = built.keys.per_commitment_point.0;
    // A point of no commitment Warden signed (the peer's commitment 4).
    let unknown = f.peer.point(&f.secp, 4).0;
    assert_eq!(
        rule_of(f.call(&f.master(), &any_remote(&f, unknown, &t, f.wire(&t)))),
        Rule::SweepStructure
    );
    // A destination outside the wallet.
    let (_, away) = remote_claim(&f, foreign());
    assert_eq!(
        rule_of(f.call(&f.master(), &any_remote(&f, point, &away, f.wire(&away)))),
        Rule::SweepDestination
    );
    // A script that is not the spent output's (to_local of that commitment).
    let (vout, _) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let mut moved = t.clone();
    moved.tx.input[0].previous_output = built.outpoint(vout);
    assert_eq!(
        rule_of(f.call(&f.master(), &any_remote(&f, point, &moved, f.wire(&moved)))),
        Rule::SweepStructure
    );
}

// --- 14 / 144: penalties ----------------------------------------------------------------------

fn any_penalty(f: &Fixture, secret: [u8; 32], t: &SpendTemplate) -> Vec<u8> {
    SignAnyPenaltyToUs {
        revocation_secret: Secret::new(secret),
        tx: f.wire(t),
        wscript: t.witness_script.clone(),
        input: 0,
        peerid: f.peer.id,
        channel_dbid: DBID,
    }
    .encode()
    .unwrap()
}

fn revoked_to_local(f: &Fixture, n: u64, dest: ScriptBuf) -> (BuiltCommitment, SpendTemplate) {
    let built = f.their_commitment(n);
    let (vout, out) = built.output(CommitmentOutputKind::ToBroadcaster).unwrap();
    let t = sweep::spend_revoked_to_local(
        built.outpoint(vout),
        out.value,
        &built.keys.revocation,
        PEER_DELAY,
        &built.keys.broadcaster_delayed_payment,
        dest,
        fee(),
    )
    .unwrap();
    (built, t)
}

fn revoked_htlc(f: &Fixture, n: u64) -> (BuiltCommitment, Vec<SpendTemplate>) {
    let built = f.their_commitment(n);
    let ts = built
        .outputs
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o.kind {
            CommitmentOutputKind::Htlc { htlc, .. } => Some(
                sweep::spend_revoked_htlc(
                    ChannelType::StaticRemoteKey,
                    built.outpoint(i as u32),
                    &htlc,
                    &built.keys,
                    f.wallet(6).0,
                    fee(),
                )
                .unwrap(),
            ),
            _ => None,
        })
        .collect();
    (built, ts)
}

#[test]
fn penalty_to_us_signs_revoked_outputs() {
    let f = Fixture::new();
    // to_local of the peer's revoked commitment 0, asked by channeld (14) and lightningd (144).
    let (built, t) = revoked_to_local(&f, 0, f.wallet(5).0);
    let key = built.keys.revocation.0;
    let reply = f.ok_master(&any_penalty(&f, f.peer.secret(0), &t));
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
    let m = SignPenaltyToUs {
        revocation_secret: Secret::new(f.peer.secret(0)),
        tx: f.wire(&t),
        wscript: t.witness_script.clone(),
    };
    let reply = f.ok_channel(&m.encode().unwrap());
    check_sig(&f.secp, &reply, t.sighash().unwrap(), &key, EcdsaSighashType::All);
    // HTLC outputs: of commitment 2 (still held: exact scripts) and of commitment 1 (no longer
    // held: matched by template), both directions.
    for n in [1, 2] {
        let (built, ts) = revoked_htlc(&f, n);
        assert_eq!(ts.len(), 2);
        for t in ts {
            let reply = f.ok_master(&any_penalty(&f, f.peer.secret(n), &t));
            check_sig(
                &f.secp,
                &reply,
                t.sighash().unwrap(),
                &built.keys.revocation.0,
                EcdsaSighashType::All,
            );
        }
    }
}

#[test]
fn penalty_to_us_refusals() {
    let f = Fixture::new();
    // The peer's current commitment 3 is not revoked: its secret was never revealed.
    let (_, t3) = revoked_to_local(&f, 3, f.wallet(5).0);
    assert_eq!(
        rule_of(f.call(&f.master(), &any_penalty(&f, f.peer.secret(3), &t3))),
        Rule::SweepStructure
    );
    // A secret the peer never revealed, for a script built on its point.
    let (_, t9) = revoked_to_local(&f, 9, f.wallet(5).0);
    assert_eq!(
        rule_of(f.call(&f.master(), &any_penalty(&f, f.peer.secret(9), &t9))),
        Rule::SweepStructure
    );
    // A revealed secret with a script of another commitment.
    let (_, t0) = revoked_to_local(&f, 0, f.wallet(5).0);
    assert_eq!(
        rule_of(f.call(&f.master(), &any_penalty(&f, f.peer.secret(1), &t0))),
        Rule::SweepStructure
    );
    // A destination outside the wallet.
    let (_, away) = revoked_to_local(&f, 0, foreign());
    assert_eq!(
        rule_of(f.call(&f.master(), &any_penalty(&f, f.peer.secret(0), &away))),
        Rule::SweepDestination
    );
}

// --- 146: our HTLC transactions -----------------------------------------------------------------

fn any_local_htlc(
    f: &Fixture,
    n: u64,
    tx: &Transaction,
    value: Sat,
    wscript: &ScriptBuf,
) -> Vec<u8> {
    SignAnyLocalHtlcTx {
        commit_num: n,
        tx: bitcoin_tx(tx, value, wscript),
        wscript: wscript.clone(),
        option_anchor_outputs: false,
        input: 0,
        peerid: f.peer.id,
        channel_dbid: DBID,
    }
    .encode()
    .unwrap()
}

#[test]
fn local_htlc_tx_signs_our_htlc_transactions() {
    let f = Fixture::new();
    let built = f.our_commitment(1);
    let txs = built.htlc_txs().unwrap();
    assert_eq!(txs.len(), 2);
    for h in &txs {
        let reply =
            f.ok_master(&any_local_htlc(&f, 1, &h.tx, h.htlc_value, &h.htlc_witness_script));
        check_sig(
            &f.secp,
            &reply,
            h.broadcaster_sighash().unwrap(),
            &built.keys.broadcaster_htlc.0,
            EcdsaSighashType::All,
        );
    }
}

#[test]
fn local_htlc_tx_refusals() {
    let f = Fixture::new();
    let built = f.our_commitment(1);
    let h = built.htlc_txs().unwrap().remove(0);
    // A changed output value.
    let mut tx = h.tx.clone();
    tx.output[0].value -= Amount::from_sat(1000);
    assert_eq!(
        rule_of(
            f.call(&f.master(), &any_local_htlc(&f, 1, &tx, h.htlc_value, &h.htlc_witness_script))
        ),
        Rule::HtlcStructure
    );
    // Our commitment 0 is revoked.
    assert_eq!(
        rule_of(f.call(
            &f.master(),
            &any_local_htlc(&f, 0, &h.tx, h.htlc_value, &h.htlc_witness_script)
        )),
        Rule::SweepHolderRevoked
    );
    // The PSBT's spent output is not the HTLC output.
    let mut w = SignAnyLocalHtlcTx::decode(&any_local_htlc(
        &f,
        1,
        &h.tx,
        h.htlc_value,
        &h.htlc_witness_script,
    ))
    .unwrap();
    w.tx = bitcoin_tx(&h.tx, h.htlc_value, &foreign());
    assert_eq!(rule_of(f.call(&f.master(), &w.encode().unwrap())), Rule::SweepStructure);
}
