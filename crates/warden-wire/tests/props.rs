//! Property tests: decoding never panics, and whatever decodes re-encodes to the very bytes it
//! came from (so no two encodings decode to the same message, and nothing is silently dropped).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use warden_wire::{Reply, Request, Status};

fn samples() -> &'static [(u16, Vec<u8>)] {
    static SAMPLES: OnceLock<Vec<(u16, Vec<u8>)>> = OnceLock::new();
    SAMPLES.get_or_init(common::all_bodies)
}

/// Decodes `body` and, if it decodes, checks that it re-encodes identically.
fn check_identity(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(reencoded) = common::decode_any(body) {
        prop_assert_eq!(reencoded, body);
    }
    Ok(())
}

#[derive(Clone, Debug)]
enum Edit {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Set(i, b)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        1 => any::<usize>().prop_map(Edit::Remove),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ]
}

fn apply(body: &mut Vec<u8>, e: &Edit) {
    let n = body.len();
    match *e {
        Edit::Set(i, b) if n > 0 => body[i % n] = b,
        Edit::Insert(i, b) => body.insert(i % (n + 1), b),
        Edit::Remove(i) if n > 0 => {
            body.remove(i % n);
        }
        Edit::Truncate(i) => body.truncate(i % (n + 1)),
        _ => {}
    }
}

/// Every single-bit flip of every sample (two bits per byte): no panic, and each flip that
/// still decodes re-encodes to the flipped bytes. Many flips do decode (amounts, ids, flags),
/// so the identity is exercised, not vacuous.
#[test]
fn every_bit_flip_reencodes_exactly_or_fails() {
    let mut decoded = 0usize;
    let mut refused = 0usize;
    for (_, body) in samples() {
        for i in 0..body.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = body.clone();
                b[i] ^= bit;
                match common::decode_any(&b) {
                    Ok(re) => {
                        assert_eq!(re, b);
                        decoded += 1;
                    }
                    Err(_) => refused += 1,
                }
            }
        }
    }
    assert!(decoded > 1000 && refused > 1000, "decoded {decoded}, refused {refused}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn mutated_messages_never_panic_and_reencode_exactly(
        which in any::<usize>(),
        edits in proptest::collection::vec(edit(), 1..4),
    ) {
        let all = samples();
        let (_, body) = &all[which % all.len()];
        let mut body = body.clone();
        for e in &edits {
            apply(&mut body, e);
        }
        check_identity(&body)?;
    }

    #[test]
    fn arbitrary_bodies_never_panic_and_reencode_exactly(
        which in any::<usize>(),
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let types: Vec<u16> = Request::TYPES.iter().chain(Reply::TYPES).chain(Status::TYPES).copied().collect();
        let t = types[which % types.len()];
        let mut body = t.to_be_bytes().to_vec();
        body.extend(rest);
        check_identity(&body)?;
    }
}
