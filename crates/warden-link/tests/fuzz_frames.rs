//! Decoding arbitrary bytes as link messages and chunks never panics, and every message that
//! decodes is in its one canonical encoding. Property tests; the same entry points suit a fuzz
//! target.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use proptest::prelude::*;
use warden_link::frame::{chunks, Reassembler, CHUNK_DATA_LEN};
use warden_link::{ClientContext, LinkMessage, Request};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    /// Random bytes: an error or a message whose encoding is exactly those bytes (an unknown
    /// odd type keeps only its type).
    #[test]
    fn random_messages_decode_canonically(
        ty in prop_oneof![Just(2u16), Just(4), Just(6), Just(8), Just(10), Just(12), any::<u16>()],
        body in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = ty.to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        match LinkMessage::decode(&bytes) {
            Ok(LinkMessage::Unknown { msg_type }) => {
                prop_assert_eq!(msg_type % 2, 1);
                prop_assert_eq!(msg_type, ty);
            }
            Ok(m) => prop_assert_eq!(m.encode().unwrap(), bytes),
            Err(_) => {}
        }
    }

    /// Random chunk sequences: errors or whole messages, never a panic, and the reassembler
    /// keeps working after an error.
    #[test]
    fn random_chunks_never_panic(
        parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 0..20),
    ) {
        let mut r = Reassembler::default();
        for p in &parts {
            let _ = r.push(p);
        }
        prop_assert!(r.push(&[2, 0]).is_err());
        prop_assert_eq!(r.push(&[0, 9]).unwrap(), Some(vec![9]));
    }

    /// Requests of any size round-trip through chunks.
    #[test]
    fn requests_round_trip_through_chunks(
        id in any::<u64>(),
        dbid in any::<u64>(),
        permissions in any::<u64>(),
        len in prop_oneof![2usize..300, (CHUNK_DATA_LEN - 80)..(CHUNK_DATA_LEN + 80)],
        seed in any::<u8>(),
    ) {
        let msg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(seed)).collect();
        let m = LinkMessage::Request(Request {
            id,
            client: ClientContext { peer_id: [3; 33], dbid, permissions },
            msg,
        });
        let encoded = m.encode().unwrap();
        let mut r = Reassembler::default();
        let mut whole = None;
        for c in chunks(&encoded) {
            prop_assert!(whole.is_none());
            whole = r.push(&c).unwrap();
        }
        prop_assert_eq!(LinkMessage::decode(&whole.unwrap()).unwrap(), m);
    }
}
