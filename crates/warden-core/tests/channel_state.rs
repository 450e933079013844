//! The channel state machine's ordering rules: a legitimate sequence of updates is accepted,
//! each out-of-order or conflicting request is refused with its rule, and a refusal leaves the
//! state exactly as it was.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod support;
use bitcoin::hashes::Hash;
use bitcoin::Txid;
use support::channel_fixture::{peer_point, peer_secret, pk, setup};
use warden_core::channel::state::{HtlcInfo, SignedCounterpartyCommitment};
use warden_core::channel::{
    ChannelSlot, ChannelState, CommitmentContent, HtlcSide, SignedHolderCommitment,
};
use warden_core::keys::node::NodeId;
use warden_core::keys::{FundingPubkey, PerCommitmentPoint};
use warden_core::policy::Rule;
use warden_core::secp256k1::{PublicKey, Secp256k1, SecretKey};
use warden_core::shachain::generate_from_seed;
use warden_core::units::{CommitmentNumber, Dbid, FeeratePerKw, Msat, Sat};

fn channel() -> ChannelState {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(1) });
    c.apply_setup(setup()).unwrap();
    c
}

fn content(n: u64, to_holder: u64) -> CommitmentContent {
    CommitmentContent {
        number: CommitmentNumber::new(n).unwrap(),
        txid: Txid::from_byte_array([n as u8; 32]),
        feerate: FeeratePerKw(253),
        htlcs: vec![],
        htlc_vouts: vec![],
        to_holder: Sat(to_holder),
        to_counterparty: Sat(1_000_000 - to_holder),
    }
}

fn holder(n: u64) -> SignedHolderCommitment {
    SignedHolderCommitment {
        content: content(n, 900_000),
        counterparty_sig: [1; 64],
        htlc_sigs: vec![],
    }
}

/// The peer's secret and point for its commitment `n`.
fn counterparty(n: u64) -> SignedCounterpartyCommitment {
    SignedCounterpartyCommitment { content: content(n, 900_000), point: peer_point(n) }
}

/// Runs `rounds` update rounds after commitment #0 on both sides, as channeld does them.
fn run(c: &mut ChannelState, rounds: u64) {
    let secp = Secp256k1::new();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    for n in 1..=rounds {
        assert!(c.sign_counterparty_commitment(counterparty(n)).unwrap());
        c.validate_holder_commitment(holder(n)).unwrap();
        c.revoke_holder_commitment(n - 1).unwrap();
        c.validate_counterparty_revocation(&secp, n - 1, peer_secret(n - 1)).unwrap();
    }
}

/// Asserts that `f` is refused with `rule` and leaves the state as it was.
fn refused(
    c: &mut ChannelState,
    rule: Rule,
    f: impl FnOnce(&mut ChannelState) -> Result<(), warden_core::policy::PolicyError>,
) {
    let before = c.clone();
    let err = f(c).unwrap_err();
    assert_eq!(err.rule, rule, "{err}");
    assert_eq!(*c, before, "a refusal by {rule} changed the state");
}

#[test]
fn a_legitimate_sequence_is_accepted() {
    let mut c = channel();
    run(&mut c, 50);
    assert_eq!(c.holder.next_number, 51);
    assert_eq!(c.holder.revoked_below, 50);
    assert_eq!(c.counterparty.next_number, 51);
    assert_eq!(c.counterparty.revoked_below, 50);
    assert_eq!(c.counterparty.secrets.get((1 << 48) - 1 - 17), Some(peer_secret(17)));
}

#[test]
fn retries_get_the_same_answer_and_different_content_is_refused() {
    let mut c = channel();
    run(&mut c, 3);
    let before = c.clone();
    c.validate_holder_commitment(holder(3)).unwrap();
    assert!(!c.sign_counterparty_commitment(counterparty(3)).unwrap());
    c.revoke_holder_commitment(2).unwrap();
    c.validate_counterparty_revocation(&Secp256k1::new(), 2, peer_secret(2)).unwrap();
    assert_eq!(c, before, "a retry changed the state");

    let mut other = holder(3);
    other.content.to_holder = Sat(1);
    refused(&mut c, Rule::CommitmentRetrySame, |c| c.validate_holder_commitment(other));
    let mut other = counterparty(3);
    other.content.to_holder = Sat(1);
    refused(&mut c, Rule::CommitmentRetrySame, |c| {
        c.sign_counterparty_commitment(other).map(|_| ())
    });
    let mut other = counterparty(3);
    other.point = peer_point(99);
    refused(&mut c, Rule::CommitmentRetrySame, |c| {
        c.sign_counterparty_commitment(other).map(|_| ())
    });
    refused(&mut c, Rule::RevokePeerSecret, |c| {
        c.validate_counterparty_revocation(&Secp256k1::new(), 2, [7; 32])
    });
}

#[test]
fn numbers_cannot_skip() {
    let mut c = channel();
    run(&mut c, 2);
    refused(&mut c, Rule::CommitmentNumber, |c| c.validate_holder_commitment(holder(4)));
    refused(&mut c, Rule::CommitmentNumber, |c| {
        c.sign_counterparty_commitment(counterparty(4)).map(|_| ())
    });
    refused(&mut c, Rule::CommitmentHolderRevoked, |c| c.validate_holder_commitment(holder(0)));
}

#[test]
fn holder_commitment_waits_for_the_revocation_of_n_minus_2() {
    let mut c = channel();
    run(&mut c, 1);
    c.validate_holder_commitment(holder(2)).unwrap();
    // #1 is not revoked yet: #3 must wait.
    refused(&mut c, Rule::CommitmentNumber, |c| c.validate_holder_commitment(holder(3)));
}

#[test]
fn counterparty_commitment_waits_for_the_revocation_of_n_minus_2() {
    let mut c = channel();
    run(&mut c, 1);
    c.sign_counterparty_commitment(counterparty(2)).unwrap();
    // The peer has not revoked #1: #3 must wait.
    refused(&mut c, Rule::CommitmentNumber, |c| {
        c.sign_counterparty_commitment(counterparty(3)).map(|_| ())
    });
}

#[test]
fn revoke_needs_a_validated_successor() {
    let mut c = channel();
    run(&mut c, 2);
    refused(&mut c, Rule::RevokeNewCommitmentValidated, |c| c.revoke_holder_commitment(2));
}

#[test]
fn revoke_after_broadcast_is_refused() {
    // The hole VLS leaves: validate n+1, have n signed for broadcast, then revoke n.
    let mut c = channel();
    run(&mut c, 2);
    c.validate_holder_commitment(holder(3)).unwrap();
    c.sign_holder_for_broadcast(2).unwrap();
    refused(&mut c, Rule::RevokeAfterBroadcast, |c| c.revoke_holder_commitment(2));
    refused(&mut c, Rule::CommitmentChannelClosed, |c| {
        c.sign_counterparty_commitment(counterparty(3)).map(|_| ())
    });
}

#[test]
fn broadcast_of_a_revoked_commitment_is_refused() {
    let mut c = channel();
    run(&mut c, 3);
    refused(&mut c, Rule::SweepHolderRevoked, |c| c.sign_holder_for_broadcast(1));
    refused(&mut c, Rule::CommitmentNumber, |c| c.sign_holder_for_broadcast(4));
    c.sign_holder_for_broadcast(3).unwrap();
}

#[test]
fn peer_secret_must_match_the_point_and_chain() {
    let mut c = channel();
    run(&mut c, 1);
    c.sign_counterparty_commitment(counterparty(2)).unwrap();
    let secp = Secp256k1::new();
    refused(&mut c, Rule::RevokePeerSecret, |c| {
        c.validate_counterparty_revocation(&secp, 1, generate_from_seed(&[1; 32], (1 << 48) - 2))
    });
    refused(&mut c, Rule::CommitmentNumber, |c| {
        c.validate_counterparty_revocation(&secp, 2, peer_secret(2))
    });
    c.validate_counterparty_revocation(&secp, 1, peer_secret(1)).unwrap();
}

#[test]
fn a_secret_that_matches_its_point_but_does_not_chain_is_refused() {
    // The peer signs with points of a *different* chain from #1 on: each secret matches its
    // point, but does not derive the earlier ones.
    let other = [0x99; 32];
    let point = |n: u64| {
        PerCommitmentPoint(PublicKey::from_secret_key(
            &Secp256k1::new(),
            &SecretKey::from_slice(&generate_from_seed(&other, (1 << 48) - 1 - n)).unwrap(),
        ))
    };
    let secp = Secp256k1::new();
    let mut c = channel();
    c.sign_counterparty_commitment(counterparty(0)).unwrap();
    c.validate_holder_commitment(holder(0)).unwrap();
    let mut next = SignedCounterpartyCommitment { content: content(1, 900_000), point: point(1) };
    c.sign_counterparty_commitment(next.clone()).unwrap();
    c.validate_counterparty_revocation(&secp, 0, peer_secret(0)).unwrap();
    next.content = content(2, 900_000);
    next.point = point(2);
    c.sign_counterparty_commitment(next).unwrap();
    // Index 2^48-2 has one trailing zero: it must derive the secret of #0, which it cannot.
    refused(&mut c, Rule::RevokePeerSecret, |c| {
        c.validate_counterparty_revocation(&secp, 1, generate_from_seed(&other, (1 << 48) - 2))
    });
}

#[test]
fn a_channel_never_set_up_is_unknown() {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(2) });
    refused(&mut c, Rule::ChannelUnknown, |c| c.validate_holder_commitment(holder(0)));
    refused(&mut c, Rule::ChannelUnknown, |c| c.revoke_holder_commitment(0));
    refused(&mut c, Rule::ChannelUnknown, |c| c.sign_holder_for_broadcast(0));
}

#[test]
fn unsafe_channel_types_are_refused() {
    let mut c = ChannelState::new(ChannelSlot { peer: NodeId(pk(9)), dbid: Dbid(3) });
    let mut s = setup();
    s.channel_type_features = vec![];
    refused(&mut c, Rule::ChannelSafeType, |c| c.apply_setup(s));
    let mut s = setup();
    s.channel_type_features = vec![0x10, 0x10, 0x00]; // bits 12 and 20 (non-zero-fee anchors)
    refused(&mut c, Rule::ChannelSafeType, |c| c.apply_setup(s));
    let mut s = setup();
    s.channel_type_features = vec![0x40, 0x10, 0x00]; // bits 12 and 22
    c.apply_setup(s.clone()).unwrap();
    assert_eq!(
        c.setup.as_ref().unwrap().channel_type().unwrap(),
        warden_core::tx::ChannelType::AnchorsZeroFeeHtlc
    );
    let mut other = s;
    other.counterparty_funding_pubkey = FundingPubkey(pk(77));
    refused(&mut c, Rule::ChannelUnknown, |c| c.apply_setup(other));
}

#[test]
fn htlcs_are_part_of_the_content() {
    let mut c = channel();
    run(&mut c, 1);
    let mut h = holder(2);
    h.content.htlcs.push(HtlcInfo {
        offered_by: HtlcSide::Counterparty,
        amount: Msat(5_000_000),
        payment_hash: [3; 32],
        cltv_expiry: 600,
    });
    c.validate_holder_commitment(h.clone()).unwrap();
    let mut changed = h;
    changed.content.htlcs[0].amount = Msat(4_000_000);
    refused(&mut c, Rule::CommitmentRetrySame, |c| c.validate_holder_commitment(changed));
}

mod arbitrary_sequences {
    //! Arbitrary request sequences from a compromised node: whatever it sends, and in whatever
    //! order, the invariants that keep funds safe hold after every step, and every refusal
    //! leaves the state unchanged.
    use super::*;
    use crate::support::channel_fixture::Action;
    use proptest::prelude::*;

    fn action() -> impl Strategy<Value = Action> {
        prop_oneof![
            4 => (0u64..12, any::<bool>()).prop_map(|(n, alt)| Action::ValidateHolder(n, alt)),
            4 => (0u64..12).prop_map(Action::RevokeHolder),
            4 => (0u64..12, any::<bool>()).prop_map(|(n, alt)| Action::SignCounterparty(n, alt)),
            4 => (0u64..12, any::<bool>()).prop_map(|(n, bad)| Action::ValidateRevocation(n, bad)),
            1 => (0u64..12).prop_map(Action::Broadcast),
            1 => Just(Action::MutualClose),
            8 => Just(Action::Progress),
        ]
    }

    fn apply(c: &mut ChannelState, a: &Action) -> Result<(), warden_core::policy::PolicyError> {
        support::channel_fixture::apply(c, a, &holder, &counterparty)
    }

    fn invariants(c: &ChannelState) {
        let h = &c.holder;
        // Never a revoked commitment signed for broadcast, never a broadcast one revoked.
        if let Some(b) = h.broadcast_signed {
            assert!(b >= h.revoked_below, "commitment {b} is both revoked and signed to broadcast");
            assert!(b < h.next_number);
        }
        // At most two unrevoked commitments on each side, and never more revoked than exist.
        assert!(h.revoked_below <= h.next_number);
        assert!(h.next_number - h.revoked_below <= 2, "holder: {h:?}");
        if h.next_number > 0 {
            assert!(h.revoked_below < h.next_number, "every validated commitment was revoked");
        }
        let k = &c.counterparty;
        assert!(k.revoked_below <= k.next_number);
        assert!(k.next_number - k.revoked_below <= 2, "counterparty: {k:?}");
        if k.next_number > 0 {
            assert!(k.revoked_below < k.next_number);
        }
        // Every revoked counterparty commitment's secret is stored.
        for n in 0..k.revoked_below {
            assert_eq!(k.secrets.get((1 << 48) - 1 - n), Some(peer_secret(n)));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn invariants_hold_for_any_request_sequence(actions in proptest::collection::vec(action(), 1..80)) {
            let mut c = channel();
            for a in &actions {
                let before = c.clone();
                // Progress is several requests: only single requests must be all-or-nothing.
                if apply(&mut c, a).is_err() && !matches!(a, Action::Progress) {
                    prop_assert_eq!(&c, &before, "a refused {:?} changed the state", a);
                }
                invariants(&c);
            }
        }
    }
}
