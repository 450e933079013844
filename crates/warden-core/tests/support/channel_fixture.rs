//! Fixtures shared by the channel-state tests: a fixed setup and the peer's shachain.
#![allow(dead_code, reason = "each test file uses some of the fixtures")]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use warden_core::channel::ChannelSetup;
use warden_core::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use warden_core::shachain::generate_from_seed;
use warden_core::units::{Msat, Sat};

/// The seed of the peer's per-commitment secrets.
pub const PEER_SEED: [u8; 32] = [0x42; 32];

pub fn pk(b: u8) -> PublicKey {
    PublicKey::from_secret_key(&Secp256k1::new(), &SecretKey::from_slice(&[b; 32]).unwrap())
}

pub fn setup() -> ChannelSetup {
    ChannelSetup {
        is_outbound: true,
        channel_value: Sat(1_000_000),
        push_value: Msat(0),
        funding_outpoint: OutPoint { txid: Txid::all_zeros(), vout: 0 },
        holder_selected_delay: 144,
        holder_shutdown_script: None,
        holder_shutdown_wallet_index: None,
        counterparty_basepoints: Basepoints {
            revocation: RevocationBasepoint(pk(1)),
            payment: PaymentBasepoint(pk(2)),
            htlc: HtlcBasepoint(pk(3)),
            delayed_payment: DelayedPaymentBasepoint(pk(4)),
        },
        counterparty_funding_pubkey: FundingPubkey(pk(5)),
        counterparty_selected_delay: 144,
        counterparty_shutdown_script: None,
        channel_type_features: vec![0x10, 0x00],
    }
}

pub fn peer_secret(n: u64) -> [u8; 32] {
    generate_from_seed(&PEER_SEED, (1 << 48) - 1 - n)
}

pub fn peer_point(n: u64) -> PerCommitmentPoint {
    PerCommitmentPoint(PublicKey::from_secret_key(
        &Secp256k1::new(),
        &SecretKey::from_slice(&peer_secret(n)).unwrap(),
    ))
}
