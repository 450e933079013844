//! Fixtures shared by the channel-state tests: a fixed setup and the peer's shachain.
#![allow(dead_code, reason = "each test file uses some of the fixtures")]

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use warden_core::channel::{
    ChannelSetup, ChannelState, SignedCounterpartyCommitment, SignedHolderCommitment,
};
use warden_core::keys::{
    Basepoints, DelayedPaymentBasepoint, FundingPubkey, HtlcBasepoint, PaymentBasepoint,
    PerCommitmentPoint, RevocationBasepoint,
};
use warden_core::policy::PolicyError;
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

/// One request a (possibly compromised) node sends about a channel, for property tests.
#[derive(Clone, Debug)]
pub enum Action {
    ValidateHolder(u64, bool),
    RevokeHolder(u64),
    SignCounterparty(u64, bool),
    ValidateRevocation(u64, bool),
    Broadcast(u64),
    MutualClose,
    /// The next step of an honest update round, so sequences reach deep states.
    Progress,
}

/// Applies `a` to `c`, building commitments with `holder` and `counterparty`.
pub fn apply(
    c: &mut ChannelState,
    a: &Action,
    holder: &dyn Fn(u64) -> SignedHolderCommitment,
    counterparty: &dyn Fn(u64) -> SignedCounterpartyCommitment,
) -> Result<(), PolicyError> {
    let secp = Secp256k1::new();
    match *a {
        Action::ValidateHolder(n, alt) => {
            let mut h = holder(n);
            if alt {
                h.content.to_holder = Sat(1);
            }
            c.validate_holder_commitment(h)
        }
        Action::RevokeHolder(n) => c.revoke_holder_commitment(n),
        Action::SignCounterparty(n, alt) => {
            let mut k = counterparty(n);
            if alt {
                k.content.to_holder = Sat(2);
            }
            c.sign_counterparty_commitment(k).map(|_| ())
        }
        Action::ValidateRevocation(n, bad) => {
            let secret = if bad { [0x55; 32] } else { peer_secret(n) };
            c.validate_counterparty_revocation(&secp, n, secret)
        }
        Action::Broadcast(n) => c.sign_holder_for_broadcast(n),
        Action::MutualClose => c.sign_mutual_close(),
        Action::Progress => {
            let (k, h) = (c.counterparty.clone(), c.holder.clone());
            if k.next_number <= h.next_number {
                c.sign_counterparty_commitment(counterparty(k.next_number)).map(|_| ())
            } else if h.next_number < k.next_number {
                c.validate_holder_commitment(holder(h.next_number))
                    .and_then(|()| match h.next_number.checked_sub(1) {
                        Some(prev) if prev >= h.revoked_below => c.revoke_holder_commitment(prev),
                        _ => Ok(()),
                    })
                    .and_then(|()| match k.next_number.checked_sub(2) {
                        Some(old) if old >= k.revoked_below => {
                            c.validate_counterparty_revocation(&secp, old, peer_secret(old))
                        }
                        _ => Ok(()),
                    })
            } else {
                Ok(())
            }
        }
    }
}
