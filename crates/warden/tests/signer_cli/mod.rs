//! What `tests/seal.rs` and `tests/backup_restore.rs` share: the binaries, `warden` commands
//! that reach the signer through `warden-hsmd` on a lightning directory, and the audit trail's
//! count of unseal requests.
#![allow(dead_code, reason = "each test file uses a part")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A binary built next to `warden` (`warden-hsmd` needs `cargo build -p warden-hsmd`).
pub fn bin(name: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_BIN_EXE_warden")).with_file_name(name);
    assert!(p.is_file(), "{} not found: run `cargo build -p warden-hsmd` first", p.display());
    p
}

/// `warden ARGS --hsmd <warden-hsmd> --network regtest` in local mode unless `env` says
/// otherwise.
pub fn warden(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(bin("warden"))
        .args(args)
        .arg("--hsmd")
        .arg(bin("warden-hsmd"))
        .args(["--network", "regtest"])
        .env_remove("WARDEN_SIGNER_PUBKEY")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

/// The command's standard error.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A lightning directory holding a legacy `hsm_secret` of `secret` bytes, and its node-backup
/// public key (hex) as `warden node-backup-key` prints it.
pub fn node(secret: u8) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), [secret; 32]).unwrap();
    let o = warden(&["node-backup-key", "--lightning-dir", dir.path().to_str().unwrap()], &[]);
    assert!(o.status.success(), "node-backup-key: {}", stderr(&o));
    let key = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    assert_eq!(key.len(), 66, "{key}");
    (dir, key)
}

/// Proxy-mode environment whose signer never connects (requests wait 1 s).
pub const NO_SIGNER: [(&str, &str); 3] = [
    ("WARDEN_SIGNER_PUBKEY", "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"),
    ("WARDEN_PROXY_LISTEN", "127.0.0.1:0"),
    ("WARDEN_PROXY_WAIT_SECS", "1"),
];

/// How many `warden_unseal` requests the signer of `lightning_dir` answered, from its audit
/// trail (`warden audit export`).
pub fn unseal_requests_audited(lightning_dir: &Path) -> usize {
    let o = Command::new(bin("warden"))
        .arg("--data-dir")
        .arg(lightning_dir)
        .args(["audit", "export"])
        .output()
        .unwrap();
    assert!(o.status.success(), "audit export: {}", stderr(&o));
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.contains("\"msg_type\":61001") && l.contains("\"answered\""))
        .count()
}
