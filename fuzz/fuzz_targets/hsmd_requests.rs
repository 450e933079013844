//! warden-hsmd's request loop as a lightningd (or a compromised node) drives it: a fresh
//! signer (in-memory channel store), then a byte stream split into frames, each handled on the master or on a channel
//! client. Any panic is a crash; a refusal is fine. The first input byte picks the client for
//! each frame (bit i: frame i goes to the channeld client).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use warden_core::rng::EntropySource;
use warden_hsmd::signer::{ClientContext, Signer, StoreChoice};
use warden_wire::frame::read_frame;
use warden_wire::{NodeId, Permissions};

/// The recorded exchange's init request (regtest, versions 4..6).
const INIT: &str = "000b043587cf0435839406226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f00000000000000000500000006";

struct Fixed;
impl EntropySource for Fixed {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(7);
    }
}

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("warden-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        let mut secret = [0u8; 32];
        secret[..11].copy_from_slice(b"lightning-1");
        std::fs::write(d.join("hsm_secret"), secret).expect("hsm_secret");
        d
    })
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&route, mut rest)) = data.split_first() else { return };
    // In-memory channel state: each input starts from a fresh signer, deterministically.
    let (signer, _) =
        Signer::init_with(&hex(INIT), dir(), &mut Fixed, StoreChoice::Memory).expect("init");
    let peer: [u8; 33] = hex("02466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27")
        .try_into()
        .expect("33 bytes");
    let master = ClientContext {
        id: NodeId::from_bytes([0; 33]),
        dbid: 0,
        permissions: Permissions(u64::MAX),
    };
    let channeld =
        ClientContext { id: NodeId::from_bytes(peer), dbid: 7, permissions: Permissions(447) };
    let mut i = 0u32;
    while let Ok(Some((body, used))) = read_frame(rest) {
        let client = if route >> (i % 8) & 1 == 1 { &channeld } else { &master };
        let _ = signer.handle(client, body);
        rest = &rest[used..];
        i += 1;
    }
});
