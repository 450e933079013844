//! The framed request loop as `warden-hsmd` runs it: split a byte stream into frames and
//! decode each body as a request, stopping at the first framing error. Must never panic, and
//! must consume the stream exactly frame by frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_wire::frame::read_frame;
use warden_wire::Request;

fuzz_target!(|stream: &[u8]| {
    let mut rest = stream;
    while !rest.is_empty() {
        match read_frame(rest) {
            Ok(Some((body, used))) => {
                assert!(used >= 4 && used <= rest.len(), "frame length out of range");
                assert_eq!(used, body.len() + 4);
                let _ = Request::decode(body);
                rest = &rest[used..];
            }
            Ok(None) | Err(_) => break,
        }
    }
});
