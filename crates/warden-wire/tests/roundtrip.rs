//! Every message type: the type numbers and names of the CSV, encode → decode → equal value
//! and equal bytes, framing, and the refusal of every truncation.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::collections::BTreeSet;

use common::*;
use warden_wire::frame;
use warden_wire::{Message, Reply, Request, Status};

/// `hsmd/hsmd_wire.csv` and `common/status_wire.csv`: every message this crate defines, by
/// name and type number.
const CSV: &[(&str, u16)] = &[
    ("hsmstatus_client_bad_request", 1000),
    ("hsmd_dev_preinit", 99),
    ("hsmd_init", 11),
    ("hsmd_init_reply_v4", 114),
    ("hsmd_init_reply_failure", 115),
    ("hsmd_new_channel", 30),
    ("hsmd_new_channel_reply", 130),
    ("hsmd_client_hsmfd", 9),
    ("hsmd_client_hsmfd_reply", 109),
    ("hsmd_get_channel_basepoints", 10),
    ("hsmd_get_channel_basepoints_reply", 110),
    ("hsmd_setup_channel", 31),
    ("hsmd_setup_channel_reply", 131),
    ("hsmd_check_outpoint", 32),
    ("hsmd_check_outpoint_reply", 132),
    ("hsmd_lock_outpoint", 37),
    ("hsmd_lock_outpoint_reply", 137),
    ("hsmd_forget_channel", 34),
    ("hsmd_forget_channel_reply", 134),
    ("hsmd_node_announcement_sig_req", 6),
    ("hsmd_node_announcement_sig_reply", 106),
    ("hsmd_sign_withdrawal", 7),
    ("hsmd_sign_withdrawal_reply", 107),
    ("hsmd_sign_invoice", 8),
    ("hsmd_sign_invoice_reply", 108),
    ("hsmd_preapprove_invoice", 38),
    ("hsmd_preapprove_invoice_reply", 138),
    ("hsmd_preapprove_keysend", 39),
    ("hsmd_preapprove_keysend_reply", 139),
    ("hsmd_preapprove_invoice_check", 51),
    ("hsmd_preapprove_invoice_check_reply", 151),
    ("hsmd_preapprove_keysend_check", 52),
    ("hsmd_preapprove_keysend_check_reply", 152),
    ("hsmd_ecdh_req", 1),
    ("hsmd_ecdh_resp", 100),
    ("hsmd_cannouncement_sig_req", 2),
    ("hsmd_cannouncement_sig_reply", 102),
    ("hsmd_sign_any_cannouncement_req", 4),
    ("hsmd_sign_any_cannouncement_reply", 104),
    ("hsmd_cupdate_sig_req", 3),
    ("hsmd_cupdate_sig_reply", 103),
    ("hsmd_sign_commitment_tx", 5),
    ("hsmd_sign_commitment_tx_reply", 105),
    ("hsmd_validate_commitment_tx", 35),
    ("hsmd_validate_commitment_tx_reply", 135),
    ("hsmd_revoke_commitment_tx", 40),
    ("hsmd_revoke_commitment_tx_reply", 140),
    ("hsmd_validate_revocation", 36),
    ("hsmd_validate_revocation_reply", 136),
    ("hsmd_sign_delayed_payment_to_us", 12),
    ("hsmd_sign_remote_htlc_to_us", 13),
    ("hsmd_sign_penalty_to_us", 14),
    ("hsmd_sign_remote_commitment_tx", 19),
    ("hsmd_sign_remote_htlc_tx", 20),
    ("hsmd_sign_mutual_close_tx", 21),
    ("hsmd_sign_splice_tx", 29),
    ("hsmd_sign_tx_reply", 112),
    ("hsmd_get_per_commitment_point", 18),
    ("hsmd_get_per_commitment_point_reply", 118),
    ("hsmd_dev_memleak", 33),
    ("hsmd_dev_memleak_reply", 133),
    ("hsmd_check_future_secret", 22),
    ("hsmd_check_future_secret_reply", 122),
    ("hsmd_sign_message", 23),
    ("hsmd_sign_message_reply", 123),
    ("hsmd_bip137_sign_message", 45),
    ("hsmd_bip137_sign_message_reply", 145),
    ("hsmd_get_output_scriptpubkey", 24),
    ("hsmd_get_output_scriptpubkey_reply", 124),
    ("hsmd_sign_bolt12", 25),
    ("hsmd_sign_bolt12_reply", 125),
    ("hsmd_sign_bolt12_2", 41),
    ("hsmd_sign_bolt12_2_reply", 141),
    ("hsmd_sign_option_will_fund_offer", 26),
    ("hsmd_sign_option_will_fund_offer_reply", 126),
    ("hsmd_derive_secret", 27),
    ("hsmd_derive_secret_reply", 127),
    ("hsmd_check_pubkey", 28),
    ("hsmd_check_pubkey_reply", 128),
    ("hsmd_check_bip86_pubkey", 56),
    ("hsmd_check_bip86_pubkey_reply", 156),
    ("hsmd_sign_anchorspend", 147),
    ("hsmd_sign_anchorspend_reply", 148),
    ("hsmd_sign_any_delayed_payment_to_us", 142),
    ("hsmd_sign_any_remote_htlc_to_us", 143),
    ("hsmd_sign_any_penalty_to_us", 144),
    ("hsmd_sign_any_local_htlc_tx", 146),
    ("hsmd_sign_htlc_tx_mingle", 149),
    ("hsmd_sign_htlc_tx_mingle_reply", 150),
    ("status_log", 0xFFF0),
    ("status_fail", 0xFFF2),
    // Warden's extensions (`msg::warden`), not in Core Lightning's CSV: a range of their own.
    ("warden_unseal", 61001),
    ("warden_unseal_reply", 61101),
    ("warden_node_backup_pubkey", 61003),
    ("warden_node_backup_pubkey_reply", 61103),
    ("warden_status", 61005),
    ("warden_status_reply", 61105),
];

#[test]
fn type_numbers_and_names_match_the_csv() {
    let mut seen = BTreeSet::new();
    let samples = requests()
        .iter()
        .map(|m| (m.name(), m.msg_type()))
        .chain(replies().iter().map(|m| (m.name(), m.msg_type())))
        .chain(statuses().iter().map(|m| (m.name(), m.msg_type())))
        .collect::<Vec<_>>();
    for (name, ty) in samples {
        let expected = CSV.iter().find(|(n, _)| *n == name).unwrap_or_else(|| panic!("{name}"));
        assert_eq!(expected.1, ty, "{name}");
        seen.insert(name);
    }
    // Every CSV entry has a sample, and every enum type has a CSV entry.
    assert_eq!(seen.len(), CSV.len());
    let enum_types: BTreeSet<u16> =
        Request::TYPES.iter().chain(Reply::TYPES).chain(Status::TYPES).copied().collect();
    let csv_types: BTreeSet<u16> = CSV.iter().map(|(_, t)| *t).collect();
    assert_eq!(enum_types, csv_types);
    assert_eq!(enum_types.len(), Request::TYPES.len() + Reply::TYPES.len() + Status::TYPES.len());
}

#[test]
fn every_request_round_trips() {
    let samples = requests();
    let covered: BTreeSet<u16> = samples.iter().map(Request::msg_type).collect();
    assert_eq!(covered, Request::TYPES.iter().copied().collect());
    for m in samples {
        let bytes = m.encode().unwrap();
        assert_eq!(frame::peek_type(&bytes).unwrap(), m.msg_type());
        let back = Request::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        assert_eq!(back, m, "{}", m.name());
        assert_eq!(back.encode().unwrap(), bytes, "{}", m.name());
        for t in m.reply_types() {
            assert!(Reply::TYPES.contains(t), "{}: reply {t}", m.name());
        }
    }
}

#[test]
fn every_reply_round_trips() {
    let samples = replies();
    let covered: BTreeSet<u16> = samples.iter().map(Reply::msg_type).collect();
    assert_eq!(covered, Reply::TYPES.iter().copied().collect());
    for m in samples {
        let bytes = m.encode().unwrap();
        let back = Reply::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", m.name()));
        assert_eq!(back, m, "{}", m.name());
        assert_eq!(back.encode().unwrap(), bytes, "{}", m.name());
    }
}

#[test]
fn every_status_round_trips() {
    let samples = statuses();
    let covered: BTreeSet<u16> = samples.iter().map(Status::msg_type).collect();
    assert_eq!(covered, Status::TYPES.iter().copied().collect());
    for m in samples {
        let bytes = m.encode().unwrap();
        let back = Status::decode(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.encode().unwrap(), bytes);
    }
}

#[test]
fn typed_decode_matches_enum_decode() {
    use warden_wire::msg::*;
    let m = SignRemoteCommitmentTx {
        tx: bitcoin_tx(1),
        remote_funding_key: pk(2),
        remote_per_commit: pk(3),
        option_static_remotekey: true,
        commit_num: 1,
        htlcs: vec![htlc(1)],
        feerate: 253,
    };
    let bytes = m.encode().unwrap();
    assert_eq!(SignRemoteCommitmentTx::decode(&bytes).unwrap(), m);
    assert_eq!(Request::decode(&bytes).unwrap(), Request::SignRemoteCommitmentTx(m));
}

#[test]
fn frames_round_trip() {
    let mut stream = Vec::new();
    let bodies = all_bodies();
    for (_, body) in &bodies {
        frame::write_frame(&mut stream, body).unwrap();
    }
    let mut rest = &stream[..];
    for (_, body) in &bodies {
        // A partial frame asks for more bytes.
        let cut = rest.len().min(3 + body.len());
        assert_eq!(frame::read_frame(&rest[..cut]).unwrap(), None);
        let (got, used) = frame::read_frame(rest).unwrap().unwrap();
        assert_eq!(got, &body[..]);
        assert_eq!(used, 4 + body.len());
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    let ecdh = warden_wire::msg::Ecdh { point: pk(1) };
    assert_eq!(ecdh.encode_frame().unwrap(), frame::encode_frame(&ecdh.encode().unwrap()).unwrap());
}

#[test]
fn every_truncation_is_refused() {
    for (ty, body) in all_bodies() {
        for cut in 0..body.len() {
            match decode_any(&body[..cut]) {
                Err(_) => {}
                Ok(reencoded) => {
                    // Only a message ending in a TLV stream can lose whole records and still
                    // decode, and then it is a different message.
                    assert!(TLV_TYPES.contains(&ty), "type {ty} decoded when cut at {cut}");
                    assert_eq!(reencoded, &body[..cut]);
                    assert_ne!(cut, body.len());
                }
            }
        }
    }
}

#[test]
fn every_extension_with_a_byte_is_refused_or_a_tlv() {
    for (ty, body) in all_bodies() {
        let mut longer = body.clone();
        longer.push(0x01);
        assert!(decode_any(&longer).is_err(), "type {ty} accepted a trailing byte");
    }
}
