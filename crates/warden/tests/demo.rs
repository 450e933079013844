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

/// The signer's audit trail after the demo (kept with --keep): it verifies, names the refused
/// rules, and exports as JSON lines (tampering is detected: warden-hsmd's tests/audit.rs).
#[test]
fn the_demos_audit_trail_verifies_and_exports() {
    let bin = env!("CARGO_BIN_EXE_warden");
    let out = Command::new(bin).args(["demo", "--keep"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}");
    let dir = stdout
        .split("--data-dir ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let verify = Command::new(bin).args(["--data-dir", &dir, "audit", "verify"]).output().unwrap();
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(verify.status.success(), "{said}{}", String::from_utf8_lossy(&verify.stderr));
    assert!(said.contains("Audit trail verified"), "{said}");
    let export = Command::new(bin).args(["--data-dir", &dir, "audit", "export"]).output().unwrap();
    assert!(export.status.success());
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&export.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 10, "{} entries", lines.len());
    let text = String::from_utf8_lossy(&export.stdout);
    assert!(text.contains("commitment-balance"), "the refusals are in the trail");
    // The kept directory is the demo's temporary one: remove it.
    let root = std::path::Path::new(&dir).parent().unwrap().to_owned();
    std::fs::remove_dir_all(root).unwrap();
}
