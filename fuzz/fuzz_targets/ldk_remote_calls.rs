//! warden-ldk's remote signer as a compromised LDK node drives it: a fresh in-memory
//! `WardenKeysManager` per input, then a short sequence of call bodies, each decoded and
//! answered on one session, the path a link request takes on the signer's host. Any panic is
//! a crash; a refusal is fine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_ldk::remote::server::FuzzSession;

/// The most calls one input carries.
const MAX_CALLS: usize = 16;
/// The session's channel limit: low, so that refusing a channel past it is reached.
const MAX_CHANNELS: usize = 4;

fuzz_target!(|data: &[u8]| {
    // The keys of the seeds' node (`crates/warden-ldk/tests/remote_fuzz_seeds.rs`), so
    // that their channel keys match.
    let Ok(keys) = FuzzSession::keys() else { return };
    let mut session = FuzzSession::new(MAX_CHANNELS);
    // The input is a sequence of length-prefixed (u16 BE) call bodies.
    let mut rest = data;
    for _ in 0..MAX_CALLS {
        let [a, b, tail @ ..] = rest else { break };
        let len = usize::from(u16::from_be_bytes([*a, *b]));
        let Some(body) = tail.get(..len) else { break };
        rest = &tail[len..];
        let _ = session.answer(&keys, body);
    }
    assert!(session.signers() <= MAX_CHANNELS, "more signers than the limit");
});
