//! The `warden` binary's set-up commands, run as a user runs them: `init` (new mnemonics of
//! both lengths, imports of every Core Lightning format, no overwrite), `pair`, and the errors
//! at the edge.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use warden_core::seal::WardenKeys;
use warden_hsmd::hsm_secret;

fn warden(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WARDEN_HSM_PASSPHRASE")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_makes_a_new_mnemonic_once() {
    for words in [12, 24] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("w");
        let out = warden(&dir, &["init", "--words", &words.to_string()], &[]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let seed = dir.join("hsm_secret");
        assert_eq!(mode(&seed), 0o600);
        assert_eq!(mode(&dir), 0o700);
        let bytes = std::fs::read(&seed).unwrap();
        assert_eq!(&bytes[..32], &[0; 32], "Core Lightning's mnemonic format, no passphrase");
        let phrase = std::str::from_utf8(&bytes[32..]).unwrap();
        assert_eq!(phrase.split(' ').count(), words);
        // Shown once, numbered.
        let shown = text(&out.stdout);
        let last = phrase.split(' ').next_back().unwrap();
        assert!(shown.contains(&format!("{words:>2}. {last}")), "{shown}");
        let loaded = hsm_secret::parse(&bytes, None).unwrap();

        let again = warden(&dir, &["init"], &[]);
        assert!(!again.status.success());
        assert!(text(&again.stderr).contains("already holds a seed"));
        assert_eq!(std::fs::read(&seed).unwrap(), bytes);

        let pair = warden(&dir, &["pair"], &[]);
        let link = WardenKeys::derive(&loaded.seed).unwrap().link_pubkey();
        assert!(text(&pair.stdout).contains(&format!("Signer link key: {link}")));
    }
}

#[test]
fn init_imports_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let legacy = [0x11u8; 32];
    let encrypted = hsm_secret::encrypt_legacy(&legacy, b"pw", &[7; 24]).unwrap();
    let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                 abandon about";
    let mnemonic = hsm_secret::mnemonic_file(words, None).unwrap();
    let with_pass = hsm_secret::mnemonic_file(words, Some(b"pw")).unwrap();
    let cases: [(&str, &[u8], Option<&str>); 4] = [
        ("legacy", &legacy, None),
        ("encrypted", &encrypted, Some("pw")),
        ("mnemonic", &mnemonic, None),
        ("mnemonic-pass", &with_pass, Some("pw")),
    ];
    for (name, bytes, pass) in cases {
        let file = tmp.path().join(name);
        std::fs::write(&file, bytes).unwrap();
        let dir = tmp.path().join(format!("{name}-data"));
        let args = ["init", "--import-hsm-secret", file.to_str().unwrap()];
        if pass.is_some() {
            let out = warden(&dir, &args, &[]);
            assert!(!out.status.success(), "{name}");
            assert!(text(&out.stderr).contains("set WARDEN_HSM_PASSPHRASE"), "{name}");
            let wrong = warden(&dir, &args, &[("WARDEN_HSM_PASSPHRASE", "nope")]);
            assert!(text(&wrong.stderr).contains("does not unlock"), "{name}");
        }
        let env: Vec<(&str, &str)> =
            pass.map(|p| vec![("WARDEN_HSM_PASSPHRASE", p)]).unwrap_or_default();
        let out = warden(&dir, &args, &env);
        assert!(out.status.success(), "{name}: {}", text(&out.stderr));
        assert_eq!(std::fs::read(dir.join("hsm_secret")).unwrap(), bytes, "{name}: verbatim");
        assert_eq!(mode(&dir.join("hsm_secret")), 0o600);
        let pair = warden(&dir, &["pair"], &env);
        assert!(pair.status.success(), "{name}: {}", text(&pair.stderr));
    }
    let bad = tmp.path().join("bad");
    std::fs::write(&bad, [1u8; 10]).unwrap();
    let out = warden(
        &tmp.path().join("bad-data"),
        &["init", "--import-hsm-secret", bad.to_str().unwrap()],
        &[],
    );
    assert!(text(&out.stderr).contains("is not a Core Lightning hsm_secret"));
}

#[test]
fn pair_pins_the_proxy_key_and_run_needs_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    let out = warden(&dir, &["run", "--connect", "127.0.0.1:1"], &[]);
    assert!(text(&out.stderr).contains("run `warden init` first"));
    assert!(warden(&dir, &["init"], &[]).status.success());
    let out = warden(&dir, &["run", "--connect", "127.0.0.1:1"], &[]);
    assert!(text(&out.stderr).contains("no proxy key is pinned"), "{}", text(&out.stderr));
    let out = warden(&dir, &["pair", "--proxy-key", "02abc"], &[]);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("66-hex-digit"));
    let key = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    let out = warden(&dir, &["pair", "--proxy-key", key], &[]);
    assert!(out.status.success());
    assert_eq!(std::fs::read_to_string(dir.join("proxy.pub")).unwrap().trim(), key);
    assert_eq!(mode(&dir.join("proxy.pub")), 0o600);
    assert!(
        text(&warden(&dir, &["pair"], &[]).stdout).contains(&format!("Pinned proxy key: {key}"))
    );
}

#[test]
fn run_reads_its_config_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("w");
    assert!(warden(&dir, &["init"], &[]).status.success());
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("no proxy address"), "{}", text(&out.stderr));
    std::fs::write(dir.join("warden.toml"), "conect = \"h:1\"\n").unwrap();
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("is not a valid warden config"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("conect"));
    // The file's address is used (and the proxy key is still missing).
    std::fs::write(dir.join("warden.toml"), "connect = \"127.0.0.1:1\"\n").unwrap();
    let out = warden(&dir, &["run"], &[]);
    assert!(text(&out.stderr).contains("no proxy key is pinned"), "{}", text(&out.stderr));
}

#[test]
fn every_command_has_help() {
    let tmp = tempfile::tempdir().unwrap();
    for cmd in [&["--help"][..], &["init", "--help"], &["pair", "--help"], &["run", "--help"]] {
        let out = warden(tmp.path(), cmd, &[]);
        assert!(out.status.success(), "{cmd:?}");
        assert!(text(&out.stdout).contains("Usage: warden"), "{cmd:?}");
    }
}
