//! Sample values of every message, built from deterministic keys, shared by the tests.
#![allow(dead_code, reason = "each test binary uses a subset of the helpers")]

use bitcoin::absolute::LockTime;
use bitcoin::bip32::{Xpriv, Xpub};
use bitcoin::constants::ChainHash;
use bitcoin::hashes::{sha256, Hash};
use bitcoin::transaction::Version;
use bitcoin::{
    Amount, EcdsaSighashType, Network, NetworkKind, OutPoint, Psbt, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use secp256k1::ecdsa::{RecoverableSignature, Signature};
use secp256k1::{schnorr, Message as SecpMessage, PublicKey, Secp256k1, SecretKey};
use warden_wire::msg::*;
use warden_wire::tlv::UnknownTlv;
use warden_wire::{
    AmountMsat, Basepoints, Bip32KeyVersion, BitcoinTx, ChannelType, CloseInfo, DevChannelSecrets,
    HsmHtlc, HsmUtxo, NodeId, Passphrase, Permissions, Reply, Request, Secret, Side, Status,
    WirePsbt, WireString,
};

/// Decodes hex (test data only).
pub fn hex(s: &str) -> Vec<u8> {
    use bitcoin::hex::FromHex;
    Vec::<u8>::from_hex(s).unwrap()
}

/// Encodes hex.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn sk(n: u8) -> SecretKey {
    SecretKey::from_slice(&[n; 32]).unwrap()
}

pub fn pk(n: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &sk(n))
}

pub fn node(n: u8) -> NodeId {
    NodeId::from(pk(n))
}

pub fn secret(n: u8) -> Secret {
    Secret::new([n; 32])
}

pub fn hash(n: u8) -> sha256::Hash {
    sha256::Hash::from_byte_array([n; 32])
}

pub fn txid(n: u8) -> Txid {
    Txid::from_byte_array([n; 32])
}

pub fn sig(n: u8) -> Signature {
    Secp256k1::new().sign_ecdsa(&SecpMessage::from_digest([n; 32]), &sk(n))
}

pub fn btc_sig(n: u8, sighash_type: EcdsaSighashType) -> bitcoin::ecdsa::Signature {
    bitcoin::ecdsa::Signature { signature: sig(n), sighash_type }
}

pub fn rsig(n: u8) -> RecoverableSignature {
    Secp256k1::new().sign_ecdsa_recoverable(&SecpMessage::from_digest([n; 32]), &sk(n))
}

pub fn schnorr_sig(n: u8) -> schnorr::Signature {
    schnorr::Signature::from_slice(&[n; 64]).unwrap()
}

pub fn xpub(n: u8) -> Xpub {
    let xpriv = Xpriv::new_master(NetworkKind::Test, &[n; 32]).unwrap();
    Xpub::from_priv(&Secp256k1::new(), &xpriv)
}

pub fn wstr(s: &str) -> WireString {
    WireString::try_from(s).unwrap()
}

/// A small segwit-spending transaction with no witness yet (a valid PSBT unsigned tx).
pub fn tx(n: u8) -> Transaction {
    Transaction {
        version: Version::TWO,
        lock_time: LockTime::from_consensus(0x2000_0000 | u32::from(n)),
        input: vec![TxIn {
            previous_output: OutPoint { txid: txid(n), vout: 1 },
            script_sig: ScriptBuf::new(),
            sequence: Sequence(0x8000_0000 | u32::from(n)),
            witness: Witness::new(),
        }],
        output: vec![
            TxOut {
                value: Amount::from_sat(100_000),
                script_pubkey: ScriptBuf::from_bytes([&[0x00, 0x14][..], &[n; 20]].concat()),
            },
            TxOut {
                value: Amount::from_sat(330),
                script_pubkey: ScriptBuf::from_bytes([&[0x00, 0x20][..], &[n; 32]].concat()),
            },
        ],
    }
}

pub fn psbt(n: u8) -> Psbt {
    let mut p = Psbt::from_unsigned_tx(tx(n)).unwrap();
    p.inputs[0].witness_utxo = Some(TxOut {
        value: Amount::from_sat(200_000),
        script_pubkey: ScriptBuf::from_bytes([&[0x00, 0x20][..], &[n ^ 0xff; 32]].concat()),
    });
    p
}

pub fn bitcoin_tx(n: u8) -> BitcoinTx {
    BitcoinTx::new(tx(n), psbt(n))
}

pub fn wire_psbt(n: u8) -> WirePsbt {
    WirePsbt::new(psbt(n))
}

pub fn script(n: u8) -> ScriptBuf {
    ScriptBuf::from_bytes(vec![n; usize::from(n % 7) + 1])
}

pub fn utxo(n: u8, with_close: bool) -> HsmUtxo {
    HsmUtxo {
        outpoint: OutPoint { txid: txid(n), vout: u32::from(n) },
        amount: Amount::from_sat(u64::from(n) * 1000),
        keyindex: u32::from(n) + 1,
        legacy_is_p2sh: false,
        script_pubkey: ScriptBuf::from_bytes([&[0x00, 0x14][..], &[n; 20]].concat()),
        close_info: with_close.then(|| CloseInfo {
            channel_id: u64::from(n),
            peer_id: node(n),
            commitment_point: (n % 2 == 0).then(|| pk(n.wrapping_add(1))),
            option_anchors: true,
            csv: 144,
        }),
        legacy_is_in_coinbase: false,
    }
}

pub fn htlc(n: u8) -> HsmHtlc {
    HsmHtlc {
        side: if n % 2 == 0 { Side::Local } else { Side::Remote },
        amount: AmountMsat(u64::from(n) * 1_000_000),
        payment_hash: hash(n),
        cltv_expiry: 800_000 + u32::from(n),
    }
}

pub fn basepoints(n: u8) -> Basepoints {
    Basepoints {
        revocation: pk(n),
        payment: pk(n + 1),
        htlc: pk(n + 2),
        delayed_payment: pk(n + 3),
    }
}

/// One sample of every request (some requests more than once, to cover options and TLVs).
pub fn requests() -> Vec<Request> {
    let all = EcdsaSighashType::All;
    let acp = EcdsaSighashType::SinglePlusAnyoneCanPay;
    vec![
        Ecdh { point: pk(1) }.into(),
        CannouncementSig { ca: vec![1, 2, 3] }.into(),
        CupdateSig { cu: vec![4; 130] }.into(),
        SignAnyCannouncement { ca: vec![5; 10], peerid: node(2), channel_dbid: 7 }.into(),
        SignCommitmentTx {
            peer_id: node(3),
            channel_dbid: 9,
            tx: bitcoin_tx(1),
            remote_funding_key: pk(4),
            commit_num: 42,
        }
        .into(),
        NodeAnnouncementSig { announcement: vec![] }.into(),
        SignWithdrawal {
            inputs: vec![utxo(1, false), utxo(2, true), utxo(3, true)],
            psbt: wire_psbt(2),
        }
        .into(),
        SignInvoice { u5bytes: vec![31; 40], hrp: b"lnbcrt".to_vec() }.into(),
        ClientHsmfd { id: node(5), dbid: 3, permissions: Permissions(8 | 16) }.into(),
        GetChannelBasepoints { peerid: node(6), dbid: u64::MAX }.into(),
        Init::plain(
            Bip32KeyVersion { pubkey_version: 0x043587cf, privkey_version: 0x04358394 },
            ChainHash::using_genesis_block(Network::Regtest),
        )
        .into(),
        Init {
            bip32_key_version: Bip32KeyVersion {
                pubkey_version: 0x0488b21e,
                privkey_version: 0x0488ade4,
            },
            chainparams: ChainHash::using_genesis_block(Network::Bitcoin),
            hsm_encryption_key: Some(secret(1)),
            dev_force_privkey: Some(secret(2)),
            dev_force_bip32_seed: Some(secret(3)),
            dev_force_channel_secrets: Some(DevChannelSecrets {
                funding_privkey: secret(4),
                revocation_basepoint_secret: secret(5),
                payment_basepoint_secret: secret(6),
                delayed_payment_basepoint_secret: secret(7),
                htlc_basepoint_secret: secret(8),
            }),
            dev_force_channel_secrets_shaseed: Some(secret(9)),
            hsm_wire_min_version: 4,
            hsm_wire_max_version: 6,
            tlvs: InitTlvs {
                hsm_passphrase: Some(Passphrase::new(b"correct horse \xc3\xa9".to_vec()).unwrap()),
                unknown: vec![UnknownTlv { tlv_type: 77, value: vec![1, 2, 3] }],
            },
        }
        .into(),
        SignDelayedPaymentToUs { commit_num: 3, tx: bitcoin_tx(2), wscript: script(1) }.into(),
        SignRemoteHtlcToUs {
            remote_per_commitment_point: pk(7),
            tx: bitcoin_tx(3),
            wscript: script(2),
            option_anchor_outputs: true,
        }
        .into(),
        SignPenaltyToUs { revocation_secret: secret(10), tx: bitcoin_tx(4), wscript: script(3) }
            .into(),
        GetPerCommitmentPoint { n: 1_000 }.into(),
        SignRemoteCommitmentTx {
            tx: bitcoin_tx(5),
            remote_funding_key: pk(8),
            remote_per_commit: pk(9),
            option_static_remotekey: true,
            commit_num: 12,
            htlcs: vec![htlc(1), htlc(2)],
            feerate: 253,
        }
        .into(),
        SignRemoteHtlcTx {
            tx: bitcoin_tx(6),
            wscript: script(4),
            remote_per_commit_point: pk(10),
            option_anchor_outputs: false,
        }
        .into(),
        SignMutualCloseTx { tx: bitcoin_tx(7), remote_funding_key: pk(11) }.into(),
        CheckFutureSecret { n: 5, commitment_secret: secret(11) }.into(),
        SignMessage { msg: b"hello".to_vec() }.into(),
        GetOutputScriptpubkey { channel_id: 4, peer_id: node(12), commitment_point: Some(pk(13)) }
            .into(),
        GetOutputScriptpubkey { channel_id: 4, peer_id: node(12), commitment_point: None }.into(),
        SignBolt12 {
            messagename: wstr("invoice"),
            fieldname: wstr("signature"),
            merkleroot: hash(3),
            publictweak: vec![9; 32],
        }
        .into(),
        SignOptionWillFundOffer {
            funding_pubkey: pk(14),
            blockheight: 800_000,
            channel_fee_base_max_msat: 1000,
            channel_fee_proportional_basis_max: 100,
        }
        .into(),
        DeriveSecret { info: b"scb secret".to_vec() }.into(),
        CheckPubkey { index: 3, pubkey: pk(15) }.into(),
        SignSpliceTx { tx: bitcoin_tx(8), remote_funding_key: pk(16), input_index: 0 }.into(),
        NewChannel { id: node(17), dbid: 11 }.into(),
        SetupChannel {
            is_outbound: true,
            channel_value: Amount::from_sat(1_000_000),
            push_value: AmountMsat(5_000),
            funding_txid: txid(18),
            funding_txout: 1,
            local_to_self_delay: 144,
            local_shutdown_script: ScriptBuf::new(),
            local_shutdown_wallet_index: Some(17),
            remote_basepoints: basepoints(20),
            remote_funding_pubkey: pk(24),
            remote_to_self_delay: 720,
            remote_shutdown_script: script(5),
            channel_type: ChannelType(vec![0x10, 0x10, 0x00]),
        }
        .into(),
        CheckOutpoint { funding_txid: txid(19), funding_txout: 2 }.into(),
        DevMemleak {}.into(),
        ForgetChannel { id: node(25), dbid: 12 }.into(),
        ValidateCommitmentTx {
            tx: bitcoin_tx(9),
            htlcs: vec![htlc(3), htlc(4), htlc(5)],
            commit_num: 13,
            feerate: 1000,
            sig: btc_sig(1, all),
            htlc_sigs: vec![btc_sig(2, acp), btc_sig(3, acp), btc_sig(4, all)],
        }
        .into(),
        ValidateRevocation { revoke_num: 12, per_commitment_secret: secret(12) }.into(),
        LockOutpoint { funding_txid: txid(20), funding_txout: 0 }.into(),
        PreapproveInvoice { invstring: wstr("lnbcrt1...") }.into(),
        PreapproveKeysend {
            destination: node(26),
            payment_hash: hash(4),
            amount_msat: AmountMsat(1),
        }
        .into(),
        RevokeCommitmentTx { commit_num: 3 }.into(),
        SignBolt12V2 {
            messagename: wstr("invoice_request"),
            fieldname: wstr("signature"),
            merkleroot: hash(5),
            info: b"node-alias-base".to_vec(),
            publictweak: vec![],
        }
        .into(),
        Bip137SignMessage { msg: b"message".to_vec(), keyidx: 8 }.into(),
        PreapproveInvoiceCheck { invstring: wstr("lno1..."), check_only: true }.into(),
        PreapproveKeysendCheck {
            destination: node(27),
            payment_hash: hash(6),
            amount_msat: AmountMsat(u64::MAX),
            check_only: false,
        }
        .into(),
        CheckBip86Pubkey { index: 0, pubkey: pk(28) }.into(),
        DevPreinit { tlvs: DevPreinitTlvs::default() }.into(),
        DevPreinit {
            tlvs: DevPreinitTlvs {
                fail_preapprove: Some(false),
                no_preapprove_check: Some(true),
                warn_on_overgrind: Some(true),
                unknown: vec![
                    UnknownTlv { tlv_type: 0xfd, value: vec![] },
                    UnknownTlv { tlv_type: 0x1_0001, value: vec![7; 300] },
                ],
            },
        }
        .into(),
        SignAnyDelayedPaymentToUs {
            commit_num: 4,
            tx: bitcoin_tx(10),
            wscript: script(6),
            input: 1,
            peerid: node(29),
            channel_dbid: 14,
        }
        .into(),
        SignAnyRemoteHtlcToUs {
            remote_per_commitment_point: pk(30),
            tx: bitcoin_tx(11),
            wscript: script(7),
            option_anchor_outputs: true,
            input: 0,
            peerid: node(31),
            channel_dbid: 15,
        }
        .into(),
        SignAnyPenaltyToUs {
            revocation_secret: secret(13),
            tx: bitcoin_tx(12),
            wscript: script(8),
            input: 2,
            peerid: node(32),
            channel_dbid: 16,
        }
        .into(),
        SignAnyLocalHtlcTx {
            commit_num: 5,
            tx: bitcoin_tx(13),
            wscript: script(9),
            option_anchor_outputs: false,
            input: 0,
            peerid: node(33),
            channel_dbid: 17,
        }
        .into(),
        SignAnchorspend {
            peerid: node(34),
            channel_dbid: 18,
            inputs: vec![utxo(4, false)],
            psbt: wire_psbt(3),
        }
        .into(),
        SignHtlcTxMingle { peerid: node(35), channel_dbid: 19, inputs: vec![], psbt: wire_psbt(4) }
            .into(),
        WardenUnseal {
            items: vec![
                UnsealItem { ephemeral: pk(7), context: b"warden/node-backup/v1/x".to_vec() },
                UnsealItem { ephemeral: pk(8), context: vec![] },
            ],
        }
        .into(),
        WardenNodeBackupPubkey {}.into(),
        WardenStatus {}.into(),
    ]
}

/// One sample of every reply (some more than once).
pub fn replies() -> Vec<Reply> {
    let all = EcdsaSighashType::All;
    vec![
        EcdhReply { ss: secret(20) }.into(),
        CannouncementSigReply { node_signature: sig(5), bitcoin_signature: sig(6) }.into(),
        CupdateSigReply { cu: vec![1; 136] }.into(),
        SignAnyCannouncementReply { node_signature: sig(7), bitcoin_signature: sig(8) }.into(),
        SignCommitmentTxReply { sig: btc_sig(9, all) }.into(),
        NodeAnnouncementSigReply { signature: sig(10) }.into(),
        SignWithdrawalReply { psbt: wire_psbt(5) }.into(),
        SignInvoiceReply { sig: rsig(11) }.into(),
        ClientHsmfdReply {}.into(),
        GetChannelBasepointsReply { basepoints: basepoints(40), funding_pubkey: pk(44) }.into(),
        SignTxReply { sig: btc_sig(12, EcdsaSighashType::SinglePlusAnyoneCanPay) }.into(),
        InitReplyV4 {
            hsm_version: 6,
            hsm_capabilities: vec![28, 56, 142, 147, 149, 29, 32, 34, 40, 41, 45, 51, 52],
            node_id: node(45),
            bip32: xpub(1),
            bolt12: pk(46),
            tlvs: InitReplyTlvs::default(),
        }
        .into(),
        InitReplyV4 {
            hsm_version: 6,
            hsm_capabilities: vec![],
            node_id: node(47),
            bip32: xpub(2),
            bolt12: pk(48),
            tlvs: InitReplyTlvs {
                hsm_secret_type: Some(HsmSecretType::MNEMONIC_WITH_PASS),
                bip86_base: Some(xpub(3)),
                unknown: vec![UnknownTlv { tlv_type: 5, value: vec![0xaa] }],
            },
        }
        .into(),
        InitReplyFailure {
            error_code: 3,
            error_message: wstr("Failed to load hsm_secret: wrong passphrase"),
        }
        .into(),
        GetPerCommitmentPointReply { per_commitment_point: pk(49), old_commitment_secret: None }
            .into(),
        GetPerCommitmentPointReply {
            per_commitment_point: pk(50),
            old_commitment_secret: Some(secret(21)),
        }
        .into(),
        CheckFutureSecretReply { correct: false }.into(),
        SignMessageReply { sig: rsig(13) }.into(),
        GetOutputScriptpubkeyReply { script: script(10) }.into(),
        SignBolt12Reply { sig: schnorr_sig(14) }.into(),
        SignOptionWillFundOfferReply { rsig: sig(15) }.into(),
        DeriveSecretReply { secret: secret(22) }.into(),
        CheckPubkeyReply { ok: true }.into(),
        NewChannelReply {}.into(),
        SetupChannelReply {}.into(),
        CheckOutpointReply { is_buried: true }.into(),
        DevMemleakReply { leak: false }.into(),
        ForgetChannelReply {}.into(),
        ValidateCommitmentTxReply {
            old_commitment_secret: None,
            next_per_commitment_point: pk(51),
        }
        .into(),
        ValidateRevocationReply {}.into(),
        LockOutpointReply {}.into(),
        PreapproveInvoiceReply { approved: true }.into(),
        PreapproveKeysendReply { approved: false }.into(),
        RevokeCommitmentTxReply {
            old_commitment_secret: secret(23),
            next_per_commitment_point: pk(52),
        }
        .into(),
        SignBolt12V2Reply { sig: schnorr_sig(16) }.into(),
        Bip137SignMessageReply { sig: rsig(17) }.into(),
        SignAnchorspendReply { psbt: wire_psbt(6) }.into(),
        SignHtlcTxMingleReply { psbt: wire_psbt(7) }.into(),
        PreapproveInvoiceCheckReply { approved: true }.into(),
        PreapproveKeysendCheckReply { approved: true }.into(),
        CheckBip86PubkeyReply { ok: false }.into(),
        WardenUnsealReply { keys: vec![secret(21), secret(22)] }.into(),
        WardenNodeBackupPubkeyReply { pubkey: pk(9) }.into(),
        WardenStatusReply { json: b"{}".to_vec() }.into(),
    ]
}

/// One sample of every status message.
pub fn statuses() -> Vec<Status> {
    vec![
        ClientBadRequest {
            id: node(60),
            description: wstr("could not parse request"),
            msg: vec![0, 1, 2],
        }
        .into(),
        StatusLog {
            level: LogLevel::BROKEN,
            peer: Some(node(61)),
            entry: wstr("something \u{e9}"),
        }
        .into(),
        StatusLog { level: LogLevel::IO_OUT, peer: None, entry: wstr("") }.into(),
        StatusFail { failreason: FailReason::INTERNAL_ERROR, desc: wstr("boom") }.into(),
    ]
}

/// The message types that end with a TLV stream (a prefix ending at a record boundary is a
/// valid, different message).
pub const TLV_TYPES: &[u16] = &[Init::TYPE, InitReplyV4::TYPE, DevPreinit::TYPE];

/// Every sample as (type, body).
pub fn all_bodies() -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    for m in requests() {
        out.push((m.msg_type(), m.encode().unwrap()));
    }
    for m in replies() {
        out.push((m.msg_type(), m.encode().unwrap()));
    }
    for m in statuses() {
        out.push((m.msg_type(), m.encode().unwrap()));
    }
    out
}

/// Decodes a body as whichever of request, reply or status its type is.
pub fn decode_any(body: &[u8]) -> Result<Vec<u8>, warden_wire::DecodeError> {
    let t = warden_wire::frame::peek_type(body)?;
    if Request::TYPES.contains(&t) {
        Ok(Request::decode(body)?.encode().unwrap())
    } else if Reply::TYPES.contains(&t) {
        Ok(Reply::decode(body)?.encode().unwrap())
    } else {
        Ok(Status::decode(body)?.encode().unwrap())
    }
}
