//! Malformed input: each test takes a valid message, makes one adversarial change, and checks
//! the exact error (never a panic, never a success).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use common::*;
use warden_wire::msg::*;
use warden_wire::tlv::UnknownTlv;
use warden_wire::{frame, DecodeError, EncodeError, Message, Reply, Request, Status};

/// The body of `msg` with `f` applied.
fn mutate<M: Message>(msg: &M, f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut b = msg.encode().unwrap();
    f(&mut b);
    b
}

#[test]
fn bool_two_is_refused() {
    assert_eq!(
        Reply::decode(&hex("007a02")),
        Err(DecodeError::InvalidBool { offset: 2, value: 2 })
    );
    // The presence byte of an optional field is a bool too.
    let m = GetOutputScriptpubkey { channel_id: 1, peer_id: node(1), commitment_point: None };
    let b = mutate(&m, |b| *b.last_mut().unwrap() = 2);
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidBool { offset: 2 + 8 + 33, value: 2 }));
    // And a bool inside a TLV value.
    let b = hex("0063010102");
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidBool { offset: 4, value: 2 }));
}

#[test]
fn oversize_frames_are_refused_before_reading_the_body() {
    assert_eq!(frame::body_len([0x08, 0, 0, 0]), Err(DecodeError::FrameTooLarge { len: 1 << 27 }));
    assert_eq!(
        frame::body_len([0xff, 0xff, 0xff, 0xff]),
        Err(DecodeError::FrameTooLarge { len: u32::MAX })
    );
    assert_eq!(frame::body_len([0x07, 0xff, 0xff, 0xff]), Ok((1 << 27) - 1));
    // read_frame refuses on the header alone, without waiting for the body.
    assert_eq!(
        frame::read_frame(&[0x08, 0, 0, 0, 0]),
        Err(DecodeError::FrameTooLarge { len: 1 << 27 })
    );
    assert_eq!(frame::read_frame(&[0, 0, 0]), Ok(None));
    assert_eq!(frame::read_frame(&[0, 0, 0, 2, 0]), Ok(None));
}

#[test]
fn counts_beyond_the_remaining_bytes_are_refused_before_allocating() {
    // sign_withdrawal announcing 65535 inputs, with none present.
    let b = hex("0007ffff");
    assert_eq!(
        Request::decode(&b),
        Err(DecodeError::CountTooLarge { offset: 4, count: 0xffff, min_size: 53, remaining: 0 })
    );
    // init_reply_v4 announcing more capabilities than bytes.
    let b = hex("00720000000600ff00000001");
    assert_eq!(
        Reply::decode(&b),
        Err(DecodeError::CountTooLarge { offset: 8, count: 255, min_size: 4, remaining: 4 })
    );
    // validate_commitment_tx announcing HTLCs that are not there.
    let m = ValidateCommitmentTx {
        tx: bitcoin_tx(1),
        htlcs: vec![],
        commit_num: 1,
        feerate: 1,
        sig: btc_sig(1, bitcoin::EcdsaSighashType::All),
        htlc_sigs: vec![],
    };
    let at = m.encode().unwrap().len() - (2 + 8 + 4 + 65 + 2);
    let b = mutate(&m, |b| b[at..at + 2].copy_from_slice(&[0x01, 0x00]));
    assert!(matches!(
        Request::decode(&b),
        Err(DecodeError::CountTooLarge { count: 256, min_size: 45, .. })
    ));
    // A byte string longer than the message is truncated, not allocated.
    assert_eq!(
        Request::decode(&hex("0017ffff6869")),
        Err(DecodeError::Truncated { offset: 4, needed: 0xffff, remaining: 2 })
    );
}

#[test]
fn trailing_bytes_are_refused() {
    let m = Ecdh { point: pk(1) };
    let b = mutate(&m, |b| b.push(0));
    assert_eq!(Request::decode(&b), Err(DecodeError::TrailingBytes { offset: 35, count: 1 }));
    assert_eq!(Ecdh::decode(&b), Err(DecodeError::TrailingBytes { offset: 35, count: 1 }));
    let b = mutate(&NewChannelReply {}, |b| b.extend_from_slice(&[1, 2, 3]));
    assert_eq!(Reply::decode(&b), Err(DecodeError::TrailingBytes { offset: 2, count: 3 }));
}

/// An `init` with the given TLV stream bytes appended.
fn init_with_tlvs(stream: &str) -> Vec<u8> {
    let mut b = hex("000b043587cf0435839406226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f00000000000000000500000006");
    b.extend(hex(stream));
    b
}

const TLV_START: usize = 55;

#[test]
fn tlv_streams_are_strict() {
    // A passphrase ("pw") and an unknown odd type decode.
    let ok = Init::decode(&init_with_tlvs("0103707700030100")).unwrap();
    assert_eq!(ok.tlvs.hsm_passphrase.as_ref().unwrap().expose_secret(), b"pw");
    assert_eq!(ok.tlvs.unknown, [UnknownTlv { tlv_type: 3, value: vec![0] }]);
    assert_eq!(ok.encode().unwrap(), init_with_tlvs("0103707700030100"));
    // Out of order.
    assert_eq!(
        Init::decode(&init_with_tlvs(concat!("030100", "0103707700"))),
        Err(DecodeError::TlvOutOfOrder { offset: TLV_START + 3, previous: 3, found: 1 })
    );
    // Duplicate.
    assert_eq!(
        Init::decode(&init_with_tlvs("010100010100")),
        Err(DecodeError::TlvDuplicate { offset: TLV_START + 3, tlv_type: 1 })
    );
    // Unknown even type.
    assert_eq!(
        Init::decode(&init_with_tlvs("020100")),
        Err(DecodeError::TlvUnknownEven { offset: TLV_START, tlv_type: 2 })
    );
    // Non-minimal BigSize type (1 written as 0xfd0001).
    assert_eq!(
        Init::decode(&init_with_tlvs("fd0001037077")),
        Err(DecodeError::NonMinimalBigSize { offset: TLV_START })
    );
    // Length beyond the message.
    assert_eq!(
        Init::decode(&init_with_tlvs("0105707700")),
        Err(DecodeError::TlvLengthTooLarge {
            offset: TLV_START,
            tlv_type: 1,
            length: 5,
            remaining: 3
        })
    );
    // A known value longer than its encoding (the NUL is not the last byte).
    assert_eq!(
        Init::decode(&init_with_tlvs("010470770078")),
        Err(DecodeError::TlvValueTooLong { offset: TLV_START + 5, tlv_type: 1 })
    );
    // A known value shorter than its encoding (no NUL).
    assert_eq!(
        Init::decode(&init_with_tlvs("01027077")),
        Err(DecodeError::InvalidWireString { offset: TLV_START + 2 })
    );
    // init_reply's secret type must be exactly one byte.
    let mut b = InitReplyV4::decode(&hex(REPLY)).unwrap().encode().unwrap();
    let n = b.len();
    b[n - 2] = 2;
    b.push(0);
    assert_eq!(
        Reply::decode(&b),
        Err(DecodeError::TlvValueTooLong { offset: n - 1 + 1, tlv_type: 1 })
    );
}

/// The recorded `init_reply_v4`.
const REPLY: &str = "007200000006000d0000001c000000380000008e00000093000000950000001d000000200000002200000028000000290000002d00000033000000340266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518043587cf02e8b1813600000000b66422df8631ef4ed610a0407c5ba0b822948121bc47bdc5c074e2111841769b020b2dc5057bad8cf75a078b75acb96ccbfad3a9ff00152e85777454b3c961b05e02e25c37f1af7cb00984e594eae0f4d1d03537ffe202b7a6b2ebc1e5fcf1dfd9f4010100";

#[test]
fn points_are_checked_where_hsmd_checks_them() {
    // pubkey: x not on the curve, and all zeros (newer hsmd no longer lets zeros through).
    let mut b = hex("0001");
    b.push(0x02);
    b.extend([0xff; 32]);
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidPublicKey { offset: 2 }));
    let mut b = hex("0001");
    b.extend([0; 33]);
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidPublicKey { offset: 2 }));
    // node_id: hsmd does not check it; neither do we.
    let m = ForgetChannel { id: warden_wire::NodeId::from_bytes([0; 33]), dbid: 1 };
    let back = ForgetChannel::decode(&m.encode().unwrap()).unwrap();
    assert_eq!(back.id.to_public_key(), None);
}

#[test]
fn signatures_are_checked() {
    let m = SignTxReply { sig: btc_sig(1, bitcoin::EcdsaSighashType::All) };
    // Sighash NONE (2) and SINGLE (3) are not accepted by hsmd; 0x83 is.
    for bad in [0x00, 0x02, 0x03, 0x81, 0x82] {
        let b = mutate(&m, |b| *b.last_mut().unwrap() = bad);
        assert_eq!(
            Reply::decode(&b),
            Err(DecodeError::InvalidSighashType { offset: 66, value: bad })
        );
    }
    let b = mutate(&m, |b| *b.last_mut().unwrap() = 0x83);
    assert!(Reply::decode(&b).is_ok());
    // r not below the curve order.
    let b = mutate(&m, |b| b[2..34].copy_from_slice(&[0xff; 32]));
    assert_eq!(Reply::decode(&b), Err(DecodeError::InvalidSignature { offset: 2 }));
    // Recovery id 4.
    let m = SignMessageReply { sig: rsig(1) };
    let b = mutate(&m, |b| *b.last_mut().unwrap() = 4);
    assert_eq!(Reply::decode(&b), Err(DecodeError::InvalidRecoveryId { offset: 66, value: 4 }));
}

#[test]
fn wirestrings_are_checked() {
    // No terminating NUL.
    assert_eq!(
        Request::decode(&hex("00266c6e")),
        Err(DecodeError::InvalidWireString { offset: 2 })
    );
    // A control character.
    assert_eq!(
        Request::decode(&hex("00266c0a6e00")),
        Err(DecodeError::InvalidWireString { offset: 2 })
    );
    // Bytes of 0x80 and above pass, as in hsmd (not necessarily UTF-8).
    let m = PreapproveInvoice::decode(&hex("0026ff6e00")).unwrap();
    assert_eq!(m.invstring.as_bytes(), [0xff, 0x6e]);
    assert_eq!(m.invstring.as_str(), None);
    assert!(warden_wire::WireString::try_from("a\nb").is_err());
}

#[test]
fn enums_are_checked() {
    let m = ValidateCommitmentTx {
        tx: bitcoin_tx(1),
        htlcs: vec![htlc(1)],
        commit_num: 1,
        feerate: 1,
        sig: btc_sig(1, bitcoin::EcdsaSighashType::All),
        htlc_sigs: vec![],
    };
    let at = m.encode().unwrap().len() - (45 + 8 + 4 + 65 + 2);
    let b = mutate(&m, |b| b[at] = 2);
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidSide { offset: at, value: 2 }));
    assert_eq!(
        Status::decode(&hex("fff0070068690a")),
        Err(DecodeError::InvalidLogLevel { offset: 2, value: 7 })
    );
    assert_eq!(
        Status::decode(&hex("fff2066800")),
        Err(DecodeError::InvalidFailReason { offset: 2, value: 6 })
    );
}

#[test]
fn transactions_and_psbts_are_checked() {
    let m = SignMutualCloseTx { tx: bitcoin_tx(1), remote_funding_key: pk(1) };
    let good = m.encode().unwrap();
    let tx_len = m.tx.tx_bytes().len();
    // The announced length is one byte longer than the transaction.
    let mut b = good.clone();
    b[2..6].copy_from_slice(&(tx_len as u32 + 1).to_be_bytes());
    assert_eq!(
        Request::decode(&b),
        Err(DecodeError::InvalidTransaction { offset: 2, len: tx_len as u32 + 1 })
    );
    // An empty PSBT.
    let psbt_at = 2 + 4 + tx_len;
    let mut b = good[..psbt_at].to_vec();
    b.extend([0, 0, 0, 0]);
    b.extend(pk(1).serialize());
    assert_eq!(Request::decode(&b), Err(DecodeError::EmptyPsbt { offset: psbt_at }));
    assert_eq!(
        Request::decode(&hex("0007000000000000")),
        Err(DecodeError::EmptyPsbt { offset: 4 })
    );
    // A PSBT with a byte after its last map.
    let psbt_len = m.tx.psbt().as_bytes().len();
    let mut b = good[..psbt_at].to_vec();
    b.extend((psbt_len as u32 + 1).to_be_bytes());
    b.extend(m.tx.psbt().as_bytes());
    b.push(0);
    b.extend(pk(1).serialize());
    assert_eq!(
        Request::decode(&b),
        Err(DecodeError::InvalidPsbt { offset: psbt_at, len: psbt_len as u32 + 1 })
    );
    // A 10-byte transaction claiming 2^32 - 1 inputs is refused by the scan.
    let b = hex(concat!("0015", "0000000a", "02000000feffffffff00"));
    assert_eq!(Request::decode(&b), Err(DecodeError::InvalidTransaction { offset: 2, len: 10 }));
    // A segwit transaction whose witness claims 2^32 - 1 elements.
    let mut raw = hex("02000000000101"); // version, segwit marker and flag, one input
    raw.extend([0; 32 + 4 + 1]); // txid, vout, empty script
    raw.extend([0xff; 4]); // sequence
    raw.push(0); // no outputs
    raw.extend(hex("feffffffff")); // the witness's element count
    raw.extend([0; 4]);
    let mut b = hex("0015");
    b.extend((raw.len() as u32).to_be_bytes());
    b.extend(&raw);
    assert!(matches!(Request::decode(&b), Err(DecodeError::InvalidTransaction { offset: 2, .. })));
    // The same transaction with a one-element witness parses; the missing PSBT is what fails.
    let n = raw.len();
    raw.splice(n - 9..n - 4, hex("0101aa"));
    let mut b = hex("0015");
    b.extend((raw.len() as u32).to_be_bytes());
    b.extend(&raw);
    assert_eq!(
        Request::decode(&b),
        Err(DecodeError::Truncated { offset: 6 + raw.len(), needed: 4, remaining: 0 })
    );
}

#[test]
fn ext_keys_are_checked() {
    let mut b = InitReplyV4::decode(&hex(REPLY)).unwrap().encode().unwrap();
    let at = 2 + 4 + 2 + 13 * 4 + 33;
    b[at..at + 4].copy_from_slice(&[0x04, 0x35, 0x83, 0x94]); // a tprv version
    assert_eq!(Reply::decode(&b), Err(DecodeError::InvalidExtKey { offset: at }));
}

#[test]
fn types_are_checked() {
    assert_eq!(Request::decode(&hex("0064")), Err(DecodeError::UnknownType { msg_type: 100 }));
    assert_eq!(Reply::decode(&hex("0001")), Err(DecodeError::UnknownType { msg_type: 1 }));
    assert_eq!(
        Ecdh::decode(&hex("0064")),
        Err(DecodeError::UnexpectedType { expected: 1, found: 100 })
    );
    assert_eq!(
        Request::decode(&[]),
        Err(DecodeError::Truncated { offset: 0, needed: 2, remaining: 0 })
    );
    assert_eq!(
        Request::decode(&[0]),
        Err(DecodeError::Truncated { offset: 0, needed: 2, remaining: 1 })
    );
    // The 1105 "refused" reply of one fork is not part of Core Lightning's protocol.
    assert_eq!(Reply::decode(&hex("0451")), Err(DecodeError::UnknownType { msg_type: 1105 }));
}

#[test]
fn encoding_refuses_what_cannot_be_said() {
    let m = SignMessage { msg: vec![0; 70_000] };
    assert_eq!(m.encode(), Err(EncodeError::TooLong { field: "msg", len: 70_000, max: 65_535 }));
    let m = InitReplyV4 {
        hsm_version: 6,
        hsm_capabilities: vec![],
        node_id: node(1),
        bip32: xpub(1),
        bolt12: pk(2),
        tlvs: InitReplyTlvs {
            unknown: vec![UnknownTlv { tlv_type: 4, value: vec![] }],
            ..InitReplyTlvs::default()
        },
    };
    assert_eq!(m.encode(), Err(EncodeError::InvalidTlv { tlv_type: 4 }));
    let m = InitReplyV4 {
        tlvs: InitReplyTlvs {
            hsm_secret_type: Some(HsmSecretType::PLAIN),
            unknown: vec![UnknownTlv { tlv_type: 1, value: vec![] }],
            ..InitReplyTlvs::default()
        },
        ..m
    };
    assert_eq!(m.encode(), Err(EncodeError::InvalidTlv { tlv_type: 1 }));
}

#[test]
fn debug_never_prints_secrets() {
    let printed = [
        format!("{:?}", EcdhReply { ss: warden_wire::Secret::new([0xab; 32]) }),
        format!("{:#?}", DeriveSecretReply { secret: warden_wire::Secret::new([0xab; 32]) }),
        format!(
            "{:?}",
            InitTlvs {
                hsm_passphrase: Some(warden_wire::Passphrase::new(b"abababab".to_vec()).unwrap()),
                unknown: vec![],
            }
        ),
        format!(
            "{:?}",
            Init {
                bip32_key_version: warden_wire::Bip32KeyVersion {
                    pubkey_version: 0,
                    privkey_version: 0
                },
                chainparams: bitcoin::constants::ChainHash::BITCOIN,
                hsm_encryption_key: Some(warden_wire::Secret::new([0xab; 32])),
                dev_force_privkey: Some(warden_wire::Secret::new([0xab; 32])),
                dev_force_bip32_seed: None,
                dev_force_channel_secrets: None,
                dev_force_channel_secrets_shaseed: Some(warden_wire::Secret::new([0xab; 32])),
                hsm_wire_min_version: 5,
                hsm_wire_max_version: 6,
                tlvs: InitTlvs::default(),
            }
        ),
    ];
    for p in &printed {
        assert!(!p.contains("abab"), "{p} leaks a secret");
        assert!(!p.contains("171, 171"), "{p} leaks a secret in decimal");
    }
    assert!(printed[0].contains("Secret(fp:"));
    assert!(printed[2].contains("Passphrase(fp:"));
    // Errors carry offsets, never secret bytes.
    let e = Reply::decode(&hex("0064abab")).unwrap_err();
    assert_eq!(e, DecodeError::Truncated { offset: 2, needed: 32, remaining: 2 });
    assert_eq!(e.to_string(), "truncated at offset 2: 32 bytes needed, 2 remain");
}
