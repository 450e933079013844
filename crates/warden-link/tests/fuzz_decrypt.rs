//! Decoding arbitrary bytes never panics: transport frames, length prefixes, bodies and the
//! three handshake acts. Run as property tests; the same entry points suit a fuzz target.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use common::{ephemeral, handshake_pair, node_key, signer_key};
use proptest::prelude::*;
use warden_link::{InitiatorHandshake, ResponderHandshake, TransportError};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes as a frame, then as a prefix and body: an error, never a panic, and never
    /// a message.
    #[test]
    fn random_frames_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..300)) {
        let (_, mut tr) = handshake_pair(&node_key(), &signer_key(), 1);
        prop_assert!(tr.decrypt_frame(&frame).is_err());
        let (_, mut tr) = handshake_pair(&node_key(), &signer_key(), 1);
        let split = frame.len().min(18);
        let _ = tr.decrypt_length(&frame[..split]);
        prop_assert!(tr.decrypt_body(&frame[split..]).is_err());
    }

    /// A genuine frame with random bytes changed (and possibly truncated or extended) is
    /// refused without a panic.
    #[test]
    fn mutated_frames_are_refused(
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        edits in proptest::collection::vec((any::<usize>(), 1u8..), 1..4),
        cut in proptest::option::of(any::<usize>()),
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 2);
        let mut frame = ti.encrypt(&msg).unwrap();
        for (pos, x) in edits {
            let i = pos % frame.len();
            frame[i] ^= x;
        }
        if let Some(c) = cut {
            frame.truncate(c % (frame.len() + 1));
        }
        frame.extend_from_slice(&extra);
        match tr.decrypt_frame(&frame) {
            Err(TransportError::BadMac { .. } | TransportError::WrongLength { .. }) => {}
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }

    /// Random handshake acts of any length are refused without a panic.
    #[test]
    fn random_acts_never_panic(act in proptest::collection::vec(any::<u8>(), 0..80), v0 in any::<bool>()) {
        let (node, signer) = (node_key(), signer_key());
        let mut act = act;
        if v0 && !act.is_empty() {
            act[0] = 0; // get past the version check more often
        }
        let resp = ResponderHandshake::new(&signer, node.public_key(), ephemeral(2));
        prop_assert!(resp.read_act_one(&act).is_err());

        let (init, _) = InitiatorHandshake::new(&node, signer.public_key(), ephemeral(1));
        prop_assert!(init.read_act_two(&act).is_err());

        let (init, act_one) = InitiatorHandshake::new(&node, signer.public_key(), ephemeral(1));
        let resp = ResponderHandshake::new(&signer, node.public_key(), ephemeral(2));
        let (resp, act_two) = resp.read_act_one(&act_one).unwrap();
        let _ = init.read_act_two(&act_two).unwrap();
        prop_assert!(resp.read_act_three(&act).is_err());
    }
}

proptest! {
    // Each case may push a thousand frames first; fewer cases keep the suite fast.
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Any messages round-trip, also right around the key rotations (after 500 and 1000
    /// messages).
    #[test]
    fn round_trip(
        msgs in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 1..20),
        skip in prop_oneof![Just(0usize), 490usize..510, 990usize..1010],
    ) {
        let (mut ti, mut tr) = handshake_pair(&node_key(), &signer_key(), 3);
        for _ in 0..skip {
            let f = ti.encrypt(b"").unwrap();
            tr.decrypt_frame(&f).unwrap();
        }
        for m in &msgs {
            let f = ti.encrypt(m).unwrap();
            prop_assert_eq!(&tr.decrypt_frame(&f).unwrap(), m);
        }
    }
}
