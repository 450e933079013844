//! Shared helpers of the integration tests: hex, fixed keys, an in-memory handshake.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use warden_link::secp256k1::PublicKey;
use warden_link::{
    EphemeralSecretKey, InitiatorHandshake, ResponderHandshake, StaticSecretKey, Transport,
};

pub fn hex(s: &str) -> Vec<u8> {
    s.as_bytes()
        .chunks(2)
        .map(|c| {
            assert_eq!(c.len(), 2, "odd hex length: {s}");
            u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap()
        })
        .collect()
}

pub fn hex32(s: &str) -> [u8; 32] {
    hex(s).try_into().unwrap()
}

pub fn pubkey(s: &str) -> PublicKey {
    PublicKey::from_slice(&hex(s)).unwrap()
}

pub fn static_key(byte: u8) -> StaticSecretKey {
    StaticSecretKey::from_bytes([byte; 32]).unwrap()
}

pub fn ephemeral(byte: u8) -> EphemeralSecretKey {
    EphemeralSecretKey::from_bytes([byte; 32]).unwrap()
}

/// The node (initiator) and signer (responder) static keys used across the tests.
pub fn node_key() -> StaticSecretKey {
    static_key(0x11)
}

pub fn signer_key() -> StaticSecretKey {
    static_key(0x21)
}

/// Runs a whole handshake in memory; returns (initiator transport, responder transport).
pub fn handshake_pair(
    node: &StaticSecretKey,
    signer: &StaticSecretKey,
    seed: u8,
) -> (Transport, Transport) {
    let (init, act_one) = InitiatorHandshake::new(node, signer.public_key(), ephemeral(seed));
    let resp = ResponderHandshake::new(signer, node.public_key(), ephemeral(seed.wrapping_add(1)));
    let (resp, act_two) = resp.read_act_one(&act_one).unwrap();
    let (act_three, ti) = init.read_act_two(&act_two).unwrap();
    let tr = resp.read_act_three(&act_three).unwrap();
    (ti, tr)
}
