//! `warden init --encrypt`: the seed file sealed under a passphrase (Warden's own versioned
//! header, Argon2id + XChaCha20-Poly1305), and every command that loads it asking for it.
//!
//! The commands run in a new session (no controlling terminal), as under a service manager: a
//! missing passphrase is then an error that names the ways to give it, never a hang.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use warden_core::seal::WardenKeys;
use warden_hsmd::hsm_secret;

fn warden(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WARDEN_HSM_PASSPHRASE")
        .env_remove("WARDEN_SEED_PASSPHRASE")
        .env_remove("WARDEN_SEED_PASSPHRASE_FILE")
        .envs(env.iter().copied())
        .stdin(Stdio::null());
    #[allow(unsafe_code, reason = "setsid in the child: no controlling terminal")]
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The link key `pair` prints.
fn link_key(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).lines().find_map(|l| l.strip_prefix("Signer link key: ")).unwrap().to_owned()
}

#[test]
fn init_encrypt_round_trip_mode_and_wrong_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let pass = [("WARDEN_SEED_PASSPHRASE", "hunter2 but longer")];
    let out = warden(&dir, &["init", "--encrypt"], &pass);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seed = dir.join("hsm_secret");
    assert_eq!(std::fs::metadata(&seed).unwrap().permissions().mode() & 0o777, 0o600);

    // The words shown once; the file is Warden's sealed format and holds none of them.
    let shown = text(&out.stdout);
    let words: Vec<String> = shown
        .lines()
        .filter_map(|l| l.trim().split_once(". ").map(|(_, w)| w.to_owned()))
        .filter(|w| !w.contains(' '))
        .collect();
    assert_eq!(words.len(), 12, "{shown}");
    let bytes = std::fs::read(&seed).unwrap();
    assert!(bytes.starts_with(b"WARDEN-SEED\0\x01"), "versioned header");
    for w in &words {
        assert!(!bytes.windows(w.len()).any(|x| x == w.as_bytes()), "{w} in clear");
    }
    assert!(hsm_secret::parse(&bytes, None).is_err(), "not a Core Lightning file");

    // Round trip: the keys are the mnemonic's.
    let plain = hsm_secret::mnemonic_file(&words.join(" "), None).unwrap();
    let loaded = hsm_secret::parse(&plain, None).unwrap();
    let expected = WardenKeys::derive(&loaded.seed).unwrap().link_pubkey().to_string();
    assert_eq!(link_key(&warden(&dir, &["pair"], &pass)), expected);

    // From a file (first line), as `warden run --passphrase-file` and the env variable read it.
    let file = tmp.path().join("pass");
    std::fs::write(&file, "hunter2 but longer\nsecond line ignored\n").unwrap();
    let env = [("WARDEN_SEED_PASSPHRASE_FILE", file.to_str().unwrap())];
    assert_eq!(link_key(&warden(&dir, &["pair"], &env)), expected);

    // A wrong passphrase is a clear error, everywhere the seed is loaded.
    let wrong = [("WARDEN_SEED_PASSPHRASE", "hunter3 but longer")];
    for args in [&["pair"][..], &["status"], &["run", "--connect", "127.0.0.1:1"]] {
        let out = warden(&dir, args, &wrong);
        assert!(!out.status.success(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains("wrong passphrase"), "{args:?}: {err}");
        assert!(!err.contains("hunter"), "the passphrase is never printed: {err}");
    }
    // `warden run --passphrase-file` with the right one gets past the seed (to the next
    // missing piece, the proxy key).
    let out = warden(
        &dir,
        &["run", "--connect", "127.0.0.1:1", "--passphrase-file", file.to_str().unwrap()],
        &[],
    );
    assert!(text(&out.stderr).contains("no proxy key is pinned"), "{}", text(&out.stderr));

    // No passphrase and no terminal: says how to give one.
    let out = warden(&dir, &["pair"], &[]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("WARDEN_SEED_PASSPHRASE") && err.contains("--passphrase-file"), "{err}");
}

#[test]
fn init_encrypt_an_imported_secret_and_refuse_an_empty_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let legacy = [0x33u8; 32];
    let import = tmp.path().join("import-me");
    std::fs::write(&import, legacy).unwrap();
    let file = tmp.path().join("pass");
    std::fs::write(&file, "pw-from-file\n").unwrap();
    let dir = tmp.path().join("w");
    let args = [
        "init",
        "--encrypt",
        "--import-hsm-secret",
        import.to_str().unwrap(),
        "--passphrase-file",
        file.to_str().unwrap(),
    ];
    let out = warden(&dir, &args, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let bytes = std::fs::read(dir.join("hsm_secret")).unwrap();
    assert!(bytes.starts_with(b"WARDEN-SEED\0"));
    assert!(!bytes.windows(32).any(|w| w == legacy));
    let loaded = hsm_secret::parse(&legacy, None).unwrap();
    let expected = WardenKeys::derive(&loaded.seed).unwrap().link_pubkey().to_string();
    let env = [("WARDEN_SEED_PASSPHRASE", "pw-from-file")];
    assert_eq!(link_key(&warden(&dir, &["pair"], &env)), expected);

    let empty = tmp.path().join("empty-w");
    let out = warden(&empty, &["init", "--encrypt"], &[("WARDEN_SEED_PASSPHRASE", "")]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("passphrase is empty"), "{}", text(&out.stderr));
    assert!(!empty.join("hsm_secret").exists(), "nothing written");
    assert!(text(&out.stdout).is_empty(), "no mnemonic shown");
}
