//! What a signer or proxy does with the decrypted plaintexts of its link: reassemble chunks,
//! then decode each whole message. Must never panic; a message that decodes must re-encode to
//! the same bytes (one canonical form; an unknown odd type is ignored with its body), and its
//! chunks must reassemble to it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_link::frame::{chunks, LinkMessage, Reassembler};

fuzz_target!(|data: &[u8]| {
    // The input is a sequence of length-prefixed (u16 BE) plaintexts, as the link delivers them.
    let mut rest = data;
    let mut reassembler = Reassembler::default();
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let Some(plaintext) = rest.get(2..2 + len) else { break };
        rest = &rest[2 + len..];
        match reassembler.push(plaintext) {
            Ok(Some(message)) => {
                // An unknown odd type is ignored with its body (BOLT-01's "it's ok to be odd"):
                // it decodes to just its type, so only known messages have one form.
                if let Ok(decoded) = LinkMessage::decode(&message) {
                    if matches!(decoded, LinkMessage::Unknown { .. }) {
                        continue;
                    }
                    let encoded = decoded.encode().expect("a decoded message encodes");
                    assert_eq!(encoded, message, "not the canonical form");
                    let mut again = Reassembler::default();
                    let mut whole = None;
                    for chunk in chunks(&encoded) {
                        whole = again.push(&chunk).expect("own chunks reassemble");
                    }
                    assert_eq!(whole.as_deref(), Some(&encoded[..]));
                }
            }
            Ok(None) => {}
            Err(_) => reassembler = Reassembler::default(),
        }
    }
});
