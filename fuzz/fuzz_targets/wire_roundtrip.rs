//! Decodes arbitrary bytes as an hsmd request, reply and status message; whatever decodes must
//! re-encode to exactly the input and decode again to an equal value. A panic or a mismatch is
//! a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warden_wire::{Reply, Request, Status};

fuzz_target!(|body: &[u8]| {
    if let Ok(req) = Request::decode(body) {
        let again = req.encode().expect("a decoded request encodes");
        assert_eq!(again, body, "request {} does not re-encode byte for byte", req.name());
        assert_eq!(Request::decode(&again).expect("re-decodes"), req);
    }
    if let Ok(rep) = Reply::decode(body) {
        let again = rep.encode().expect("a decoded reply encodes");
        assert_eq!(again, body, "reply {} does not re-encode byte for byte", rep.name());
        assert_eq!(Reply::decode(&again).expect("re-decodes"), rep);
    }
    if let Ok(st) = Status::decode(body) {
        let again = st.encode().expect("a decoded status encodes");
        assert_eq!(again, body, "status {} does not re-encode byte for byte", st.name());
        assert_eq!(Status::decode(&again).expect("re-decodes"), st);
    }
});
