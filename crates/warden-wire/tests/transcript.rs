//! A recorded exchange with Core Lightning's own hsmd (v26.06): every request and every reply
//! decodes, re-encodes byte for byte, and carries the values the recording shows.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use bitcoin::constants::ChainHash;
use bitcoin::Network;
use common::{hex, to_hex};
use warden_wire::msg::*;
use warden_wire::{frame, Message, Reply, Request};

const TRANSCRIPT: &str = include_str!("data/cln-hsmd/legacy-lightning-1.json");

struct Exchange {
    client: String,
    request: Vec<u8>,
    reply: Vec<u8>,
}

fn exchanges() -> Vec<Exchange> {
    let v: serde_json::Value = serde_json::from_str(TRANSCRIPT).unwrap();
    v["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| Exchange {
            client: e["client"].as_str().unwrap().to_owned(),
            request: hex(e["request"].as_str().unwrap()),
            reply: hex(e["reply"].as_str().unwrap()),
        })
        .collect()
}

#[test]
fn every_request_and_reply_decodes_and_reencodes_byte_for_byte() {
    let exchanges = exchanges();
    assert_eq!(exchanges.len(), 17);
    for (i, e) in exchanges.iter().enumerate() {
        let req = Request::decode(&e.request)
            .unwrap_or_else(|err| panic!("request {i} ({}): {err}", to_hex(&e.request)));
        assert_eq!(req.encode().unwrap(), e.request, "request {i} ({})", req.name());
        let rep = Reply::decode(&e.reply)
            .unwrap_or_else(|err| panic!("reply {i} ({}): {err}", to_hex(&e.reply)));
        assert_eq!(rep.encode().unwrap(), e.reply, "reply {i} ({})", rep.name());
        assert!(
            req.reply_types().contains(&rep.msg_type()),
            "{} answered by {}",
            req.name(),
            rep.name()
        );
        // And as frames.
        let framed = frame::encode_frame(&e.request).unwrap();
        assert_eq!(frame::read_frame(&framed).unwrap(), Some((&e.request[..], framed.len())));
        assert!(e.client == "master" || e.client == "channel");
    }
}

#[test]
fn init_carries_the_recorded_values() {
    let e = &exchanges()[0];
    let init = Init::decode(&e.request).unwrap();
    assert_eq!(init.bip32_key_version.pubkey_version, 0x0435_87cf);
    assert_eq!(init.bip32_key_version.privkey_version, 0x0435_8394);
    assert_eq!(init.chainparams, ChainHash::using_genesis_block(Network::Regtest));
    assert_eq!(Network::from_chain_hash(init.chainparams), Some(Network::Regtest));
    assert!(init.hsm_encryption_key.is_none() && init.dev_force_channel_secrets.is_none());
    assert_eq!((init.hsm_wire_min_version, init.hsm_wire_max_version), (5, 6));
    assert_eq!(init.tlvs, InitTlvs::default());

    let reply = InitReplyV4::decode(&e.reply).unwrap();
    assert_eq!(reply.hsm_version, 6);
    assert_eq!(reply.hsm_capabilities, [28, 56, 142, 147, 149, 29, 32, 34, 40, 41, 45, 51, 52]);
    assert_eq!(
        reply.node_id.to_string(),
        "0266e4598d1d3c415f572a8488830b60f7e744ed9235eb0b1ba93283b315c03518"
    );
    assert!(reply.node_id.to_public_key().is_some());
    assert_eq!(reply.bip32.depth, 2);
    assert_eq!(reply.tlvs.hsm_secret_type, Some(HsmSecretType::PLAIN));
    assert_eq!(reply.tlvs.bip86_base, None);
    assert!(reply.tlvs.unknown.is_empty());
}

#[test]
fn channel_messages_carry_the_recorded_values() {
    let ex = exchanges();
    let fd = ClientHsmfd::decode(&ex[9].request).unwrap();
    assert_eq!(fd.dbid, 7);
    assert_eq!(fd.permissions.0, 0x18);
    assert!(fd.permissions.contains(warden_wire::Permissions::COMMITMENT_POINT));
    assert_eq!(ClientHsmfdReply::decode(&ex[9].reply).unwrap(), ClientHsmfdReply {});

    let p = GetPerCommitmentPoint::decode(&ex[13].request).unwrap();
    assert_eq!(p.n, 1000);
    let r = GetPerCommitmentPointReply::decode(&ex[13].reply).unwrap();
    assert!(r.old_commitment_secret.is_none());

    let c = CheckFutureSecret::decode(&ex[14].request).unwrap();
    assert_eq!(c.n, 5);
    assert!(CheckFutureSecretReply::decode(&ex[14].reply).unwrap().correct);

    let s = SignRemoteCommitmentTx::decode(&ex[16].request).unwrap();
    assert_eq!(s.tx.tx_bytes().len(), 0x71);
    assert_eq!(s.tx.psbt().as_bytes().len(), 0xab);
    assert_eq!(s.tx.tx().input.len(), 1);
    assert_eq!(s.tx.tx().output.len(), 2);
    assert_eq!(s.tx.psbt().psbt().unsigned_tx, *s.tx.tx());
    assert!(s.option_static_remotekey);
    assert_eq!(s.commit_num, 3);
    assert!(s.htlcs.is_empty());
    assert_eq!(s.feerate, 253);
    let sig = SignTxReply::decode(&ex[16].reply).unwrap();
    assert_eq!(sig.sig.sighash_type, bitcoin::EcdsaSighashType::All);

    let spk = GetOutputScriptpubkeyReply::decode(&ex[8].reply).unwrap();
    assert!(spk.script.is_p2wpkh());
}
