//! Gossip, BOLT-12, liquidity-ad and pre-approval requests through [`Signer::handle`], on the
//! recording's `hsm_secret` (`warden-core/tests/data/cln-hsmd/legacy-lightning-1.json`), so
//! every key is one Core Lightning's hsmd answered with.
//!
//! Each gossip refusal is one change to a valid fixture (STYLE.md §13); the funding-key oracle
//! attack of `hsmd` (a BIP-0143 preimage posing as a `channel_announcement`) is refused.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use bitcoin::hashes::{sha256, Hash, HashEngine};
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{absolute, transaction, Amount, NetworkKind, OutPoint, ScriptBuf, Transaction};
use bitcoin::{TxIn, TxOut, Txid};
use secp256k1::{All, Message, PublicKey, Scalar, Secp256k1, XOnlyPublicKey};
use warden_core::keys::{NodeId as CoreNodeId, NodeKeys};
use warden_core::policy::Rule;
use warden_core::secret::Seed;
use warden_core::sign;
use warden_core::units::Dbid;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer};
use warden_testkit::rng::NoEntropy;
use warden_wire::msg::*;
use warden_wire::{AmountMsat, Basepoints, ChannelType, Message as _, NodeId, Permissions};

const TRANSCRIPT: &str =
    include_str!("../../warden-core/tests/data/cln-hsmd/legacy-lightning-1.json");
/// The channel of the recording's `get_channel_basepoints` (exchange 6).
const DBID: u64 = 7;
const FUNDING_VOUT: u16 = 1;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The recording's exchange `i`: (request, reply).
fn exchange(i: usize) -> (Vec<u8>, Vec<u8>) {
    let v: serde_json::Value = serde_json::from_str(TRANSCRIPT).unwrap();
    let e = &v["exchanges"][i];
    (hex(e["request"].as_str().unwrap()), hex(e["reply"].as_str().unwrap()))
}

fn secret_bytes() -> Vec<u8> {
    let v: serde_json::Value = serde_json::from_str(TRANSCRIPT).unwrap();
    hex(v["hsm_secret_file_hex"].as_str().unwrap())
}

fn pk(b: u8) -> PublicKey {
    let secp = Secp256k1::new();
    PublicKey::from_secret_key(&secp, &secp256k1::SecretKey::from_slice(&[b; 32]).unwrap())
}

/// The signer on the recording's secret, with the recording's channel set up.
struct Fixture {
    _dir: tempfile::TempDir,
    secp: Secp256k1<All>,
    signer: Signer,
    /// The same keys, derived directly, to show what hsmd's unchecked signing would give.
    keys: NodeKeys,
    node_id: PublicKey,
    peer: NodeId,
    funding: PublicKey,
    peer_funding: PublicKey,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let secret = secret_bytes();
        std::fs::write(dir.path().join("hsm_secret"), &secret).unwrap();
        let (init, init_reply) = exchange(0);
        let (signer, reply) = Signer::init(&init, dir.path(), &mut NoEntropy).unwrap();
        assert_eq!(reply, init_reply);
        let node_id = InitReplyV4::decode(&reply).unwrap().node_id.to_public_key().unwrap();
        let (basepoints_req, basepoints_reply) = exchange(6);
        let req = GetChannelBasepoints::decode(&basepoints_req).unwrap();
        assert_eq!(req.dbid, DBID);
        let funding = GetChannelBasepointsReply::decode(&basepoints_reply).unwrap().funding_pubkey;
        let secp = Secp256k1::new();
        let keys = NodeKeys::derive(
            &secp,
            &Seed::from_legacy(secret.try_into().unwrap()),
            NetworkKind::Test,
        )
        .unwrap();
        let f = Fixture {
            _dir: dir,
            secp,
            signer,
            keys,
            node_id,
            peer: req.peerid,
            funding,
            peer_funding: pk(0x33),
        };
        f.master(&NewChannel { id: f.peer, dbid: DBID }.encode().unwrap()).unwrap();
        f.handle(&f.channel_client(), &f.setup(FUNDING_VOUT).encode().unwrap()).unwrap();
        f
    }

    fn setup(&self, vout: u16) -> SetupChannel {
        SetupChannel {
            is_outbound: true,
            channel_value: Amount::from_sat(1_000_000),
            push_value: AmountMsat(0),
            funding_txid: Txid::from_byte_array([0x44; 32]),
            funding_txout: vout,
            local_to_self_delay: 144,
            local_shutdown_script: ScriptBuf::new(),
            local_shutdown_wallet_index: None,
            remote_basepoints: Basepoints {
                revocation: pk(0x21),
                payment: pk(0x22),
                htlc: pk(0x23),
                delayed_payment: pk(0x24),
            },
            remote_funding_pubkey: self.peer_funding,
            remote_to_self_delay: 144,
            remote_shutdown_script: ScriptBuf::new(),
            // option_static_remotekey (bit 12).
            channel_type: ChannelType(vec![0x10, 0x00]),
        }
    }

    fn master_client(&self) -> ClientContext {
        ClientContext { id: NodeId::from(self.node_id), dbid: 0, permissions: permissions::ALL }
    }

    fn channel_client(&self) -> ClientContext {
        ClientContext {
            id: self.peer,
            dbid: DBID,
            permissions: Permissions(
                Permissions::SIGN_GOSSIP.0
                    | Permissions::COMMITMENT_POINT.0
                    | Permissions::SIGN_REMOTE_TX.0,
            ),
        }
    }

    fn handle(&self, client: &ClientContext, body: &[u8]) -> Result<Vec<u8>, BadRequestError> {
        match self.signer.handle(client, body)? {
            Outcome::Reply(r) => Ok(r),
            Outcome::NewClient { .. } => panic!("unexpected new client"),
        }
    }

    fn master(&self, body: &[u8]) -> Result<Vec<u8>, BadRequestError> {
        self.handle(&self.master_client(), body)
    }

    fn peer_key(&self) -> PublicKey {
        self.peer.to_public_key().unwrap()
    }

    /// A valid `channel_announcement` of the channel, as a builder.
    fn announcement(&self) -> Announcement {
        let (ours, theirs) = (self.node_id.serialize(), self.peer_key().serialize());
        let we_are_first = ours < theirs;
        let (node_ids, bitcoin_keys) = if we_are_first {
            ([ours, theirs], [self.funding.serialize(), self.peer_funding.serialize()])
        } else {
            ([theirs, ours], [self.peer_funding.serialize(), self.funding.serialize()])
        };
        Announcement {
            msg_type: 256,
            features: vec![],
            chain_hash: bitcoin::constants::ChainHash::REGTEST.to_bytes(),
            // block 800000, tx 5, output FUNDING_VOUT.
            scid: (800_000u64 << 40) | (5 << 16) | u64::from(FUNDING_VOUT),
            node_ids,
            bitcoin_keys,
            trailing: vec![],
            our_side: usize::from(!we_are_first),
        }
    }

    fn sign_any(&self, ca: Vec<u8>) -> Result<Vec<u8>, BadRequestError> {
        self.master(
            &SignAnyCannouncement { ca, peerid: self.peer, channel_dbid: DBID }.encode().unwrap(),
        )
    }
}

struct Announcement {
    msg_type: u16,
    features: Vec<u8>,
    chain_hash: [u8; 32],
    scid: u64,
    node_ids: [[u8; 33]; 2],
    bitcoin_keys: [[u8; 33]; 2],
    trailing: Vec<u8>,
    our_side: usize,
}

impl Announcement {
    fn bytes(&self) -> Vec<u8> {
        let mut b = self.msg_type.to_be_bytes().to_vec();
        b.extend_from_slice(&[0; 256]);
        b.extend_from_slice(&(self.features.len() as u16).to_be_bytes());
        b.extend_from_slice(&self.features);
        b.extend_from_slice(&self.chain_hash);
        b.extend_from_slice(&self.scid.to_be_bytes());
        for k in self.node_ids.iter().chain(&self.bitcoin_keys) {
            b.extend_from_slice(k);
        }
        b.extend_from_slice(&self.trailing);
        b
    }
}

fn assert_refused(r: Result<Vec<u8>, BadRequestError>, rule: Rule) {
    match r {
        Err(BadRequestError::Refused(e)) => assert_eq!(e.rule, rule, "{e}"),
        other => panic!("expected a refusal by {rule:?}, got {other:?}"),
    }
}

fn verify(
    secp: &Secp256k1<All>,
    digest: [u8; 32],
    sig: &secp256k1::ecdsa::Signature,
    key: &PublicKey,
) {
    secp.verify_ecdsa(&Message::from_digest(digest), sig, key).unwrap();
}

#[test]
fn channel_announcement_is_signed_by_node_and_funding_key() {
    let f = Fixture::new();
    let ca = f.announcement().bytes();
    let reply = SignAnyCannouncementReply::decode(&f.sign_any(ca.clone()).unwrap()).unwrap();
    let digest = sign::channel_announcement_digest(&ca).unwrap();
    verify(&f.secp, digest, &reply.node_signature, &f.node_id);
    verify(&f.secp, digest, &reply.bitcoin_signature, &f.funding);
    assert!(sign::has_low_r(&reply.node_signature) && sign::has_low_r(&reply.bitcoin_signature));

    // The channel's own client (cannouncement_sig) gets the same signatures.
    let req = CannouncementSig { ca: ca.clone() }.encode().unwrap();
    let reply2 =
        CannouncementSigReply::decode(&f.handle(&f.channel_client(), &req).unwrap()).unwrap();
    assert_eq!(reply2.node_signature, reply.node_signature);
    assert_eq!(reply2.bitcoin_signature, reply.bitcoin_signature);

    // Features are allowed (BOLT-07 has them), as long as they fit their length.
    let mut with_features = f.announcement();
    with_features.features = vec![0x01, 0x00];
    f.sign_any(with_features.bytes()).unwrap();
}

#[test]
fn the_recorded_exchange_signs_identically_but_is_no_announcement() {
    let f = Fixture::new();
    let (req, reply) = exchange(7);
    let m = SignAnyCannouncement::decode(&req).unwrap();
    let recorded = SignAnyCannouncementReply::decode(&reply).unwrap();
    // hsmd's digest and grinding, with the recording's keys, give its bytes exactly ...
    let peer = CoreNodeId::from_slice(m.peerid.as_bytes()).unwrap();
    let ck = f.keys.channel_keys(&peer, Dbid(m.channel_dbid)).unwrap();
    let (node_sig, bitcoin_sig) =
        sign::sign_channel_announcement(&f.secp, f.keys.node_key(), ck.funding_key(), &m.ca)
            .unwrap();
    assert_eq!((node_sig, bitcoin_sig), (recorded.node_signature, recorded.bitcoin_signature));
    // ... but the recorded request is filler bytes after a type, which Warden does not sign.
    assert_refused(f.master(&req), Rule::GossipStructure);
}

#[test]
fn funding_key_oracle_is_closed() {
    let f = Fixture::new();
    // A transaction spending the channel's funding output to an attacker.
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn {
            previous_output: OutPoint {
                txid: Txid::from_byte_array([0x44; 32]),
                vout: u32::from(FUNDING_VOUT),
            },
            ..TxIn::default()
        }],
        output: vec![TxOut {
            value: Amount::from_sat(999_000),
            script_pubkey: ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::all_zeros()),
        }],
    };
    let (a, b) = if f.funding.serialize() < f.peer_funding.serialize() {
        (f.funding, f.peer_funding)
    } else {
        (f.peer_funding, f.funding)
    };
    let script = bitcoin::script::Builder::new()
        .push_opcode(bitcoin::opcodes::all::OP_PUSHNUM_2)
        .push_key(&bitcoin::PublicKey::new(a))
        .push_key(&bitcoin::PublicKey::new(b))
        .push_opcode(bitcoin::opcodes::all::OP_PUSHNUM_2)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKMULTISIG)
        .into_script();
    let value = Amount::from_sat(1_000_000);
    let mut preimage = Vec::new();
    let mut cache = SighashCache::new(&tx);
    cache
        .segwit_v0_encode_signing_data_to(&mut preimage, 0, &script, value, EcdsaSighashType::All)
        .unwrap();
    let sighash = cache.p2wsh_signature_hash(0, &script, value, EcdsaSighashType::All).unwrap();
    // The "announcement": type 256, four placeholder signatures, then the preimage.
    let mut ca = 256u16.to_be_bytes().to_vec();
    ca.extend_from_slice(&[0; 256]);
    ca.extend_from_slice(&preimage);
    assert_eq!(sign::channel_announcement_digest(&ca).unwrap(), sighash.to_byte_array());

    // hsmd's unchecked signing would hand out a valid funding-key signature of the spend.
    let peer = CoreNodeId::from_slice(f.peer.as_bytes()).unwrap();
    let ck = f.keys.channel_keys(&peer, Dbid(DBID)).unwrap();
    let (_, stolen) =
        sign::sign_channel_announcement(&f.secp, f.keys.node_key(), ck.funding_key(), &ca).unwrap();
    verify(&f.secp, sighash.to_byte_array(), &stolen, &f.funding);

    // Warden refuses, on both requests, and no signature comes back.
    assert_refused(f.sign_any(ca.clone()), Rule::GossipStructure);
    let req = CannouncementSig { ca }.encode().unwrap();
    assert_refused(f.handle(&f.channel_client(), &req), Rule::GossipStructure);
}

#[test]
fn each_announcement_mutation_is_refused() {
    let f = Fixture::new();
    let our = f.announcement().our_side;
    let their = 1 - our;
    let mut cases: Vec<(&str, Announcement)> = Vec::new();

    let mut a = f.announcement();
    a.msg_type = 257;
    cases.push(("wrong type", a));
    let mut a = f.announcement();
    a.trailing = vec![0];
    cases.push(("trailing byte", a));
    let mut a = f.announcement();
    a.node_ids[their] = pk(0x55).serialize();
    a.node_ids.sort();
    cases.push(("node id other than the peer", a));
    let mut a = f.announcement();
    a.node_ids[our] = pk(0x56).serialize();
    a.node_ids.sort();
    cases.push(("node id other than ours", a));
    let mut a = f.announcement();
    a.node_ids.reverse();
    cases.push(("node ids out of order", a));
    let mut a = f.announcement();
    a.bitcoin_keys[our] = pk(0x57).serialize();
    cases.push(("funding key other than ours", a));
    let mut a = f.announcement();
    a.bitcoin_keys[their] = pk(0x58).serialize();
    cases.push(("funding key other than the peer's", a));
    let mut a = f.announcement();
    a.bitcoin_keys.reverse();
    cases.push(("funding keys swapped", a));
    let mut a = f.announcement();
    a.scid += 1;
    cases.push(("short channel id of another output", a));
    let mut a = f.announcement();
    a.features = f.funding.serialize().to_vec();
    cases.push(("our funding key outside its field", a));
    let mut a = f.announcement();
    a.bitcoin_keys[their] = [0x02; 33];
    cases.push(("a key that is no point", a));

    for (name, a) in cases {
        match f.sign_any(a.bytes()) {
            Err(BadRequestError::Refused(e)) => {
                assert_eq!(e.rule, Rule::GossipStructure, "{name}: {e}")
            }
            other => panic!("{name}: expected gossip-structure, got {other:?}"),
        }
    }
    // A features length reaching past the end of the message.
    let mut long_features = f.announcement().bytes();
    long_features[259] = 200;
    assert_refused(f.sign_any(long_features), Rule::GossipStructure);
    // Too short to hold the four signatures.
    assert_refused(f.sign_any(f.announcement().bytes()[..200].to_vec()), Rule::GossipStructure);
}

#[test]
fn announcement_of_a_channel_without_setup_is_channel_unknown() {
    let f = Fixture::new();
    f.master(&NewChannel { id: f.peer, dbid: DBID + 1 }.encode().unwrap()).unwrap();
    let ca = f.announcement().bytes();
    let req = SignAnyCannouncement { ca: ca.clone(), peerid: f.peer, channel_dbid: DBID + 1 };
    assert_refused(f.master(&req.encode().unwrap()), Rule::ChannelUnknown);
    let never = SignAnyCannouncement { ca, peerid: f.peer, channel_dbid: DBID + 2 };
    assert_refused(f.master(&never.encode().unwrap()), Rule::ChannelUnknown);
}

fn channel_update(direction: u8) -> Vec<u8> {
    let mut b = 258u16.to_be_bytes().to_vec();
    b.extend_from_slice(&[0xaa; 64]); // placeholder signature
    b.extend_from_slice(&bitcoin::constants::ChainHash::REGTEST.to_bytes());
    b.extend_from_slice(&((800_000u64 << 40) | (5 << 16) | 1).to_be_bytes());
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.push(1); // message_flags: must_be_one
    b.push(direction);
    b.extend_from_slice(&144u16.to_be_bytes());
    b.extend_from_slice(&1000u64.to_be_bytes());
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&10u32.to_be_bytes());
    b.extend_from_slice(&990_000_000u64.to_be_bytes());
    b
}

#[test]
fn channel_update_is_returned_signed() {
    let f = Fixture::new();
    let ours = if f.node_id.serialize() < f.peer_key().serialize() { 0 } else { 1 };
    let cu = channel_update(ours);
    for client in [f.master_client(), f.channel_client()] {
        let reply = f.handle(&client, &CupdateSig { cu: cu.clone() }.encode().unwrap()).unwrap();
        let signed = CupdateSigReply::decode(&reply).unwrap().cu;
        assert_eq!(signed.len(), cu.len());
        assert_eq!(signed[..2], cu[..2]);
        assert_eq!(signed[66..], cu[66..]);
        let sig = secp256k1::ecdsa::Signature::from_compact(&signed[2..66]).unwrap();
        verify(&f.secp, sign::channel_update_digest(&signed).unwrap(), &sig, &f.node_id);
        assert!(sign::has_low_r(&sig));
    }
    let mut trailing = cu.clone();
    trailing.push(0);
    assert_refused(f.master(&CupdateSig { cu: trailing }.encode().unwrap()), Rule::GossipStructure);
    let mut wrong_type = cu.clone();
    wrong_type[1] = 0x01;
    assert_refused(
        f.master(&CupdateSig { cu: wrong_type }.encode().unwrap()),
        Rule::GossipStructure,
    );
    assert_refused(
        f.master(&CupdateSig { cu: cu[..100].to_vec() }.encode().unwrap()),
        Rule::GossipStructure,
    );
    // The channel's client may only sign our direction.
    let theirs = CupdateSig { cu: channel_update(1 - ours) }.encode().unwrap();
    assert_refused(f.handle(&f.channel_client(), &theirs), Rule::GossipStructure);
}

fn node_announcement(node_id: &PublicKey, tlv: &[u8]) -> Vec<u8> {
    let mut b = 257u16.to_be_bytes().to_vec();
    b.extend_from_slice(&[0; 64]);
    b.extend_from_slice(&2u16.to_be_bytes());
    b.extend_from_slice(&[0x08, 0x00]);
    b.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    b.extend_from_slice(&node_id.serialize());
    b.extend_from_slice(&[0x11, 0x22, 0x33]);
    b.extend_from_slice(&[b'w'; 32]);
    // One IPv4 address: type 1, 4 bytes, port.
    b.extend_from_slice(&7u16.to_be_bytes());
    b.extend_from_slice(&[1, 127, 0, 0, 1, 0x26, 0x07]);
    b.extend_from_slice(tlv);
    b
}

#[test]
fn node_announcement_of_our_node_is_signed() {
    let f = Fixture::new();
    for tlv in [&[][..], &[1, 2, 0xab, 0xcd][..]] {
        let ann = node_announcement(&f.node_id, tlv);
        let req = NodeAnnouncementSig { announcement: ann.clone() }.encode().unwrap();
        let sig = NodeAnnouncementSigReply::decode(&f.master(&req).unwrap()).unwrap().signature;
        verify(&f.secp, sign::node_announcement_digest(&ann).unwrap(), &sig, &f.node_id);
    }
    let refused = [
        node_announcement(&f.peer_key(), &[]),
        node_announcement(&f.node_id, &[3, 0, 1, 0]), // TLV types not ascending
        node_announcement(&f.node_id, &[1, 5, 0]),    // TLV longer than the message
        node_announcement(&f.node_id, &[0xfd, 0, 1, 0]), // non-minimal bigsize
    ];
    for ann in refused {
        let req = NodeAnnouncementSig { announcement: ann }.encode().unwrap();
        assert_refused(f.master(&req), Rule::GossipStructure);
    }
    let mut wrong_type = node_announcement(&f.node_id, &[]);
    wrong_type[1] = 0x00;
    let req = NodeAnnouncementSig { announcement: wrong_type }.encode().unwrap();
    assert_refused(f.master(&req), Rule::GossipStructure);
}

fn bolt12_digest(messagename: &str, fieldname: &str, root: &[u8; 32]) -> [u8; 32] {
    let tag = sha256::Hash::hash(format!("lightning{messagename}{fieldname}").as_bytes());
    let mut e = sha256::Hash::engine();
    e.input(tag.as_ref());
    e.input(tag.as_ref());
    e.input(root);
    sha256::Hash::from_engine(e).to_byte_array()
}

fn wstr(s: &str) -> warden_wire::WireString {
    warden_wire::WireString::new(s.as_bytes().to_vec()).unwrap()
}

fn tweak_hash(a: &[u8], b: &[u8]) -> Scalar {
    let mut e = sha256::Hash::engine();
    e.input(a);
    e.input(b);
    Scalar::from_be_bytes(sha256::Hash::from_engine(e).to_byte_array()).unwrap()
}

#[test]
fn bolt12_signatures_verify_under_the_expected_keys() {
    let f = Fixture::new();
    let root = [0x5a; 32];
    let digest = Message::from_digest(bolt12_digest("invoice", "signature", &root));
    let xonly = |k: PublicKey| XOnlyPublicKey::from(k);
    let req = |tweak: &[u8]| SignBolt12 {
        messagename: wstr("invoice"),
        fieldname: wstr("signature"),
        merkleroot: sha256::Hash::from_byte_array(root),
        publictweak: tweak.to_vec(),
    };

    // No tweak: the node key, deterministically (no auxiliary randomness), as hsmd signs.
    let sig = SignBolt12Reply::decode(&f.master(&req(&[]).encode().unwrap()).unwrap()).unwrap().sig;
    f.secp.verify_schnorr(&sig, &digest, &xonly(f.node_id)).unwrap();
    let kp = secp256k1::Keypair::from_secret_key(&f.secp, f.keys.node_key().expose_secret());
    assert_eq!(sig, f.secp.sign_schnorr_no_aux_rand(&digest, &kp));

    // A payer tweak: the bolt12 base key plus SHA256(base pubkey || tweak).
    let bolt12 = InitReplyV4::decode(&exchange(0).1).unwrap().bolt12;
    let tweak = tweak_hash(&bolt12.serialize(), b"payer");
    let expected = bolt12.add_exp_tweak(&f.secp, &tweak).unwrap();
    let sig =
        SignBolt12Reply::decode(&f.master(&req(b"payer").encode().unwrap()).unwrap()).unwrap().sig;
    f.secp.verify_schnorr(&sig, &digest, &xonly(expected)).unwrap();

    // sign_bolt12_2: the node key plus SHA256(derive_secret(info) || tweak).
    let req2 = |tweak: &[u8]| SignBolt12V2 {
        messagename: wstr("invoice"),
        fieldname: wstr("signature"),
        merkleroot: sha256::Hash::from_byte_array(root),
        info: b"node-alias-base".to_vec(),
        publictweak: tweak.to_vec(),
    };
    let sig =
        SignBolt12V2Reply::decode(&f.master(&req2(&[]).encode().unwrap()).unwrap()).unwrap().sig;
    f.secp.verify_schnorr(&sig, &digest, &xonly(f.node_id)).unwrap();
    let secret =
        f.master(&DeriveSecret { info: b"node-alias-base".to_vec() }.encode().unwrap()).unwrap();
    let base = DeriveSecretReply::decode(&secret).unwrap().secret;
    let expected =
        f.node_id.add_exp_tweak(&f.secp, &tweak_hash(base.expose_secret(), b"alias")).unwrap();
    let sig = SignBolt12V2Reply::decode(&f.master(&req2(b"alias").encode().unwrap()).unwrap())
        .unwrap()
        .sig;
    f.secp.verify_schnorr(&sig, &digest, &xonly(expected)).unwrap();
}

#[test]
fn will_fund_offer_is_the_node_keys_plain_ecdsa() {
    let f = Fixture::new();
    let m = SignOptionWillFundOffer {
        funding_pubkey: pk(0x61),
        blockheight: 804_032,
        channel_fee_base_max_msat: 1000,
        channel_fee_proportional_basis_max: 100,
    };
    let rsig = SignOptionWillFundOfferReply::decode(&f.master(&m.encode().unwrap()).unwrap())
        .unwrap()
        .rsig;
    let mut e = sha256::Hash::engine();
    e.input(b"option_will_fund");
    e.input(&pk(0x61).serialize());
    e.input(&804_032u32.to_be_bytes());
    e.input(&1000u32.to_be_bytes());
    e.input(&100u16.to_be_bytes());
    let digest = Message::from_digest(sha256::Hash::from_engine(e).to_byte_array());
    f.secp.verify_ecdsa(&digest, &rsig, &f.node_id).unwrap();
    assert_eq!(rsig, f.secp.sign_ecdsa(&digest, f.keys.node_key().expose_secret()));
}

#[test]
fn preapprovals_answer_and_memleak_reports_none() {
    let f = Fixture::new();
    let inv = wstr("lnbcrt1pwhatever");
    let hash = sha256::Hash::hash(b"preimage");
    // hsmd answers the _check variants with the plain reply types (138, 139).
    let cases = [
        PreapproveInvoice { invstring: inv.clone() }.encode().unwrap(),
        PreapproveInvoiceCheck { invstring: inv.clone(), check_only: true }.encode().unwrap(),
    ];
    // payments: a string that is no invoice is not approved (an answer, not a bad request);
    // real invoices are tested in tests/payments_policy.rs.
    for req in cases {
        let reply = f.master(&req).unwrap();
        assert_eq!(
            PreapproveInvoiceReply::decode(&reply).unwrap(),
            PreapproveInvoiceReply { approved: false }
        );
    }
    let cases = [
        PreapproveKeysend {
            destination: f.peer,
            payment_hash: hash,
            amount_msat: AmountMsat(5000),
        }
        .encode()
        .unwrap(),
        PreapproveKeysendCheck {
            destination: f.peer,
            payment_hash: hash,
            amount_msat: AmountMsat(5000),
            check_only: false,
        }
        .encode()
        .unwrap(),
    ];
    for req in cases {
        let reply = f.master(&req).unwrap();
        assert_eq!(
            PreapproveKeysendReply::decode(&reply).unwrap(),
            PreapproveKeysendReply { approved: true }
        );
    }
    let reply = f.master(&DevMemleak {}.encode().unwrap()).unwrap();
    assert_eq!(DevMemleakReply::decode(&reply).unwrap(), DevMemleakReply { leak: false });
}
