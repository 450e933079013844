//! Shows what Warden derives from a Core Lightning `hsm_secret`: the node id, the wallet's
//! extended public key (`m/0/0`, as hsmd's init reply carries it), the bolt12 key and, for a
//! mnemonic secret, the BIP-86 base. Nothing is written and no secret is printed.
//!
//! ```text
//! cargo run --release -p warden-core --example node-info [HSM_SECRET] [bitcoin|testnet|regtest]
//! ```
//!
//! Without a path it uses Core Lightning's test secret "lightning-1" (the secret of the
//! recorded hsmd exchange in `tests/data/cln-hsmd/`). Reads the 32-byte legacy format and the
//! unencrypted mnemonic format (32 zero bytes, then the words); the encrypted formats are read
//! by `warden-hsmd`.
#![allow(clippy::print_stdout, clippy::print_stderr, reason = "a command-line example")]

use std::process::ExitCode;

use bitcoin::NetworkKind;
use warden_core::keys::node::NodeKeys;
use warden_core::secp256k1::Secp256k1;
use warden_core::secret::Seed;

/// Core Lightning's test secret "lightning-1", zero-padded to 32 bytes.
fn default_secret() -> Seed {
    let mut bytes = [0u8; 32];
    bytes[..11].copy_from_slice(b"lightning-1");
    Seed::from_legacy(bytes)
}

fn read_secret(path: &str) -> Result<Seed, String> {
    let data = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    match data.len() {
        32 => {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(&data);
            Ok(Seed::from_legacy(bytes))
        }
        73 => Err(format!(
            "{path} is an encrypted hsm_secret: use warden-hsmd, which asks for the passphrase"
        )),
        n if n > 32 => {
            let (check, words) = data.split_at(32);
            if check.iter().any(|b| *b != 0) {
                return Err(format!(
                    "{path} is a mnemonic secret protected by a passphrase: use warden-hsmd"
                ));
            }
            let words = std::str::from_utf8(words)
                .map_err(|_| format!("{path}: the mnemonic is not UTF-8"))?;
            Seed::from_mnemonic(words.trim_end_matches(['\0', '\n']).trim(), "")
                .map_err(|e| format!("{path}: {e}"))
        }
        n => Err(format!("{path} has {n} bytes, which is no hsm_secret format")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, network) = match args.as_slice() {
        [] => (None, "regtest"),
        [p] => (Some(p.as_str()), "regtest"),
        [p, n] => (Some(p.as_str()), n.as_str()),
        _ => {
            eprintln!("usage: node-info [HSM_SECRET] [bitcoin|testnet|regtest]");
            return ExitCode::from(2);
        }
    };
    let kind = match network {
        "bitcoin" | "mainnet" => NetworkKind::Main,
        "testnet" | "testnet4" | "signet" | "regtest" => NetworkKind::Test,
        other => {
            eprintln!("unknown network {other}: use bitcoin, testnet, signet or regtest");
            return ExitCode::from(2);
        }
    };
    let seed = match path {
        None => default_secret(),
        Some(p) => match read_secret(p) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(1);
            }
        },
    };
    let secp = Secp256k1::new();
    let keys = match NodeKeys::derive(&secp, &seed, kind) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("cannot derive keys: {e}");
            return ExitCode::from(1);
        }
    };
    println!("secret      {}", path.unwrap_or("(built-in test secret \"lightning-1\")"));
    println!("kind        {:?}", seed.kind());
    println!("node id     {}", keys.node_id());
    println!("wallet xpub {} (m/0/0)", keys.wallet_xpub(&secp));
    println!("bolt12 key  {}", keys.wallet().bolt12_pubkey(&secp));
    if let Some(base) = keys.wallet().bip86_base_xpub(&secp) {
        println!("bip86 base  {base} (m/86'/0'/0')");
    }
    ExitCode::SUCCESS
}
