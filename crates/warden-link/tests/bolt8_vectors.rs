//! BOLT-08 Appendix A, every transport test vector: 5 initiator cases, 10 responder cases and
//! the message encryption test (two key rotations). The data file and its provenance are in
//! `tests/data/` (see its README).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use common::{hex, hex32, pubkey};
use serde_json::Value;
use warden_link::{
    Act, EphemeralSecretKey, HandshakeError, InitiatorHandshake, ResponderHandshake,
    StaticSecretKey, Transport,
};

const VECTORS: &str = include_str!("data/bolt8_vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().unwrap_or_else(|| panic!("missing {k} in {v}"))
}

/// Checks that `err` is the failure the spec tag names, at the act it names.
fn assert_spec_error(err: &HandshakeError, tag: &str, name: &str) {
    let act = match &tag[..4] {
        "ACT1" => Act::One,
        "ACT2" => Act::Two,
        "ACT3" => Act::Three,
        other => panic!("{name}: unknown act in {other}"),
    };
    assert_eq!(err.act(), act, "{name}: wrong act for {err:?}");
    let ok = match &tag[5..] {
        "READ_FAILED" => matches!(err, HandshakeError::WrongLength { .. }),
        "BAD_VERSION" => matches!(err, HandshakeError::UnknownVersion { version: 1, .. }),
        "BAD_PUBKEY" => matches!(err, HandshakeError::InvalidPublicKey { .. }),
        "BAD_CIPHERTEXT" => matches!(err, HandshakeError::StaticKeyMac),
        "BAD_TAG" => matches!(err, HandshakeError::BadMac { .. }),
        other => panic!("{name}: unknown error tag {other}"),
    };
    assert!(ok, "{name}: expected {tag}, got {err:?}");
}

fn keys(case: &Value) -> (StaticSecretKey, EphemeralSecretKey) {
    let ls = StaticSecretKey::from_bytes(hex32(s(case, "ls_priv"))).unwrap();
    assert_eq!(ls.public_key(), pubkey(s(case, "ls_pub")));
    let e = EphemeralSecretKey::from_bytes(hex32(s(case, "e_priv"))).unwrap();
    assert_eq!(e.public_key(), pubkey(s(case, "e_pub")));
    (ls, e)
}

/// A transport whose sending key is `sk`, to check the receiving key of a handshake's result
/// without exposing it: what `peer` decrypts was encrypted under its `rk`.
fn sender_with_key(ck: &str, sk: &str) -> Transport {
    let any = pubkey(s(&vectors()["initiator"][0], "ls_pub"));
    Transport::from_raw_keys(hex32(ck), hex32(sk), [0x55; 32], any)
}

#[test]
fn all_sixteen_vectors_present() {
    let v = vectors();
    assert_eq!(v["initiator"].as_array().unwrap().len(), 5);
    assert_eq!(v["responder"].as_array().unwrap().len(), 10);
    assert_eq!(v["message"]["outputs"].as_object().unwrap().len(), 6);
    assert_eq!(v["source"]["repository"], "lightning/bolts");
}

#[test]
fn initiator_vectors() {
    let v = vectors();
    let ck = s(&v["message"], "ck");
    let hello_0 = hex(s(&v["message"]["outputs"], "0"));
    for case in v["initiator"].as_array().unwrap() {
        let name = s(case, "name");
        let (ls, e) = keys(case);
        let (hs, act_one) = InitiatorHandshake::new(&ls, pubkey(s(case, "rs_pub")), e);
        assert_eq!(act_one.to_vec(), hex(s(case, "act_one")), "{name}: act one");
        let result = hs.read_act_two(&hex(s(case, "act_two")));
        match case["error"].as_str() {
            Some(tag) => assert_spec_error(&result.unwrap_err(), tag, name),
            None => {
                let (act_three, mut t) = result.unwrap();
                assert_eq!(act_three.to_vec(), hex(s(case, "act_three")), "{name}: act three");
                assert_eq!(t.remote_static(), &pubkey(s(case, "rs_pub")));
                // sk: the first message under it is the message test's output 0.
                assert_eq!(t.encrypt(b"hello").unwrap(), hello_0, "{name}: sk");
                // rk: a frame sent under the vector's rk decrypts.
                let frame = sender_with_key(ck, s(case, "rk")).encrypt(b"from responder").unwrap();
                assert_eq!(t.decrypt_frame(&frame).unwrap(), b"from responder", "{name}: rk");
            }
        }
    }
}

#[test]
fn responder_vectors() {
    let v = vectors();
    let ck = s(&v["message"], "ck");
    let pinned = pubkey(s(&v, "pinned_initiator_key"));
    let hello_0 = hex(s(&v["message"]["outputs"], "0"));
    for case in v["responder"].as_array().unwrap() {
        let name = s(case, "name");
        let expected_error = case["error"].as_str();
        let (ls, e) = keys(case);
        let hs = ResponderHandshake::new(&ls, pinned, e);
        let result = hs.read_act_one(&hex(s(case, "act_one")));
        if let Some(tag) = expected_error.filter(|t| t.starts_with("ACT1")) {
            assert_spec_error(&result.unwrap_err(), tag, name);
            continue;
        }
        let (hs, act_two) = result.unwrap();
        assert_eq!(act_two.to_vec(), hex(s(case, "act_two")), "{name}: act two");
        let result = hs.read_act_three(&hex(s(case, "act_three")));
        match expected_error {
            Some(tag) => assert_spec_error(&result.unwrap_err(), tag, name),
            None => {
                let mut t = result.unwrap();
                assert_eq!(t.remote_static(), &pinned);
                // rk: the initiator's first message (output 0) decrypts.
                assert_eq!(t.decrypt_frame(&hello_0).unwrap(), b"hello", "{name}: rk");
                // sk: what it sends decrypts under a receiver holding the vector's sk.
                let frame = t.encrypt(b"to initiator").unwrap();
                let mut rx =
                    Transport::from_raw_keys(hex32(ck), [0x55; 32], hex32(s(case, "sk")), pinned);
                assert_eq!(rx.decrypt_frame(&frame).unwrap(), b"to initiator", "{name}: sk");
            }
        }
    }
}

#[test]
fn message_encryption_vector_with_two_rotations() {
    let v = vectors();
    let m = &v["message"];
    let remote = pubkey(s(&v, "pinned_initiator_key"));
    let msg = hex(s(m, "message_hex"));
    assert_eq!(msg, b"hello");
    let mut tx =
        Transport::from_raw_keys(hex32(s(m, "ck")), hex32(s(m, "sk")), hex32(s(m, "rk")), remote);
    // The receiving side of the same direction: its rk is the sender's sk.
    let mut rx =
        Transport::from_raw_keys(hex32(s(m, "ck")), hex32(s(m, "rk")), hex32(s(m, "sk")), remote);
    let outputs = m["outputs"].as_object().unwrap();
    let mut checked = 0;
    for i in 0..=1001u32 {
        let frame = tx.encrypt(&msg).unwrap();
        if let Some(expected) = outputs.get(&i.to_string()) {
            assert_eq!(frame, hex(expected.as_str().unwrap()), "output {i}");
            checked += 1;
        }
        assert_eq!(rx.decrypt_frame(&frame).unwrap(), msg, "receiver at message {i}");
    }
    assert_eq!(checked, 6);
}

/// A session's `Debug` shows neither its keys nor its chaining key.
#[test]
fn transport_debug_is_redacted() {
    let v = vectors();
    let m = &v["message"];
    let t = Transport::from_raw_keys(
        hex32(s(m, "ck")),
        hex32(s(m, "sk")),
        hex32(s(m, "rk")),
        pubkey(s(&v, "pinned_initiator_key")),
    );
    let dbg = format!("{t:?}");
    for k in ["ck", "sk", "rk"] {
        let key = s(m, k);
        assert!(!dbg.contains(&key[..8]), "{k} in {dbg}");
        let first = hex(key)[0];
        let second = hex(key)[1];
        assert!(!dbg.contains(&format!("{first}, {second}")), "{k} bytes in {dbg}");
    }
}
