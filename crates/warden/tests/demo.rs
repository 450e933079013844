//! `warden demo` as a newcomer runs it: the built binary, nothing set up, exit code 0, and a
//! timeline that names the rule of every refused theft.
//!
//! The demo starts `warden-hsmd` from next to the `warden` binary (under `cargo test` it builds
//! it first if it is missing).
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::process::Command;

#[test]
fn demo_signs_the_honest_steps_and_refuses_every_theft() {
    let out = Command::new(env!("CARGO_BIN_EXE_warden")).arg("demo").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);
    for tag in [
        "commitment-balance",
        "close-destination",
        "gossip-structure",
        "revoke-after-broadcast",
        "onchain-unknown-destination",
    ] {
        assert!(stdout.contains(&format!("REFUSED  [{tag}]")), "{tag} not refused:\n{stdout}");
    }
    assert!(!stdout.contains("SIGNED!") && !stdout.contains("FAILED"), "{stdout}");
    assert!(stdout.contains("refused: 5 thefts"), "{stdout}");
    assert!(stdout.contains("cooperative close"), "{stdout}");
    // warden run's own status.json counted the same refusals.
    assert!(stdout.contains("5 refused; by rule: close-destination x1"), "{stdout}");
    assert!(stdout.contains("PASS"), "{stdout}");
}

#[test]
fn demo_names_a_missing_hsmd_binary() {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["demo", "--hsmd", "/nonexistent/warden-hsmd"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/warden-hsmd does not exist"), "{stderr}");
}
