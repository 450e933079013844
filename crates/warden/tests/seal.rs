//! `warden seal`, `warden unseal` and `warden node-backup-key` as a user runs them, against a
//! real `warden-hsmd` on a lightning directory (local mode) and without any signer (proxy mode
//! with no `warden run`). Needs `cargo build -p warden-hsmd -p warden` when run alone.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod signer_cli;

use std::path::Path;
use std::process::{Command, Output};

use signer_cli::{bin, node, stderr, unseal_requests_audited, warden, NO_SIGNER};

fn seal(to: &str, input: &Path, out: &Path) {
    let o = Command::new(bin("warden"))
        .args(["seal", "--to", to])
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "seal: {}", String::from_utf8_lossy(&o.stderr));
}

fn unseal(dir: &Path, input: &Path, out: &Path, env: &[(&str, &str)]) -> Output {
    let args = [
        "unseal",
        "--lightning-dir",
        dir.to_str().unwrap(),
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    warden(&args, env)
}

#[test]
fn seal_then_unseal_through_the_signer_gives_the_bytes_back() {
    let (node_dir, key) = node(0x42);
    let work = tempfile::tempdir().unwrap();
    // Three segments: two whole ones (1 MiB) and a short one.
    let plaintext: Vec<u8> =
        (0..(2 * 1024 * 1024 + 1000u32)).map(|i| (i * 7 % 251) as u8).collect();
    let (input, sealed, back) =
        (work.path().join("in"), work.path().join("sealed"), work.path().join("back"));
    std::fs::write(&input, &plaintext).unwrap();
    seal(&key, &input, &sealed);
    let sealed_bytes = std::fs::read(&sealed).unwrap();
    assert!(!sealed_bytes.windows(64).any(|w| plaintext.windows(64).next() == Some(w)));
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&sealed).unwrap().permissions().mode() & 0o777, 0o600);

    let o = unseal(node_dir.path(), &sealed, &back, &[]);
    assert!(o.status.success(), "unseal: {}", stderr(&o));
    assert_eq!(std::fs::read(&back).unwrap(), plaintext);

    // Each release is in the signer's audit trail (one unseal request per segment), sealed and
    // hash-chained in the store of the lightning directory.
    assert_eq!(unseal_requests_audited(node_dir.path()), 3);

    // A changed byte: refused, and no output is left behind.
    let mut tampered = sealed_bytes.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x80;
    let bad = work.path().join("tampered");
    std::fs::write(&bad, &tampered).unwrap();
    let out = work.path().join("from-tampered");
    let o = unseal(node_dir.path(), &bad, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("does not open"), "{}", stderr(&o));
    assert!(!out.exists());
    assert!(!work.path().join("from-tampered.partial").exists());
}

#[test]
fn another_nodes_signer_cannot_unseal() {
    let (_a, key_a) = node(0x42);
    let (b, key_b) = node(0x43);
    assert_ne!(key_a, key_b);
    let work = tempfile::tempdir().unwrap();
    let (input, sealed, out) =
        (work.path().join("in"), work.path().join("sealed"), work.path().join("out"));
    std::fs::write(&input, b"the node's database").unwrap();
    seal(&key_a, &input, &sealed);
    let o = unseal(b.path(), &sealed, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("another key"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn unseal_fails_without_the_signer() {
    let (_node_dir, key) = node(0x42);
    let work = tempfile::tempdir().unwrap();
    let (input, sealed, out) =
        (work.path().join("in"), work.path().join("sealed"), work.path().join("out"));
    std::fs::write(&input, b"secret backup").unwrap();
    seal(&key, &input, &sealed);

    // Proxy mode, as on a node whose signer runs elsewhere, and no `warden run` connects.
    let proxy_dir = tempfile::tempdir().unwrap();
    let o = unseal(proxy_dir.path(), &sealed, &out, &NO_SIGNER);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("warden run"), "{}", stderr(&o));
    assert!(!out.exists());

    // A directory without a secret is not made into a new node.
    let empty = tempfile::tempdir().unwrap();
    let o = unseal(empty.path(), &sealed, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("holds no hsm_secret"), "{}", stderr(&o));
    assert!(!empty.path().join("hsm_secret").exists());
}

#[test]
fn the_signer_releases_no_more_keys_than_its_hourly_limit() {
    let (node_dir, key) = node(0x42);
    std::fs::create_dir_all(node_dir.path().join("warden")).unwrap();
    std::fs::write(node_dir.path().join("warden/policy.toml"), "[limits]\nunseal-per-hour = 2\n")
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let (input, sealed, out) =
        (work.path().join("in"), work.path().join("sealed"), work.path().join("out"));
    // Three segments: three keys, one more than the limit.
    std::fs::write(&input, vec![1u8; 2 * 1024 * 1024 + 1]).unwrap();
    seal(&key, &input, &sealed);
    let o = unseal(node_dir.path(), &sealed, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("node-unseal"), "{}", stderr(&o));
    assert!(!out.exists());
    // Two segments are within it.
    std::fs::write(&input, vec![1u8; 1024 * 1024 + 1]).unwrap();
    std::fs::remove_file(&sealed).unwrap();
    seal(&key, &input, &sealed);
    let o = unseal(node_dir.path(), &sealed, &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
}
