//! The signer's data directory (`--data-dir`, default `~/.warden`) and what lives in it.
//!
//! | path | what | written by |
//! |---|---|---|
//! | `hsm_secret` | the seed, in Core Lightning's `hsm_secret` format (mode 0600) | `warden init` |
//! | `proxy.pub` | the pinned proxy link key (hex) | `warden pair --proxy-key` |
//! | `warden/` | sealed channel records and the signed head (warden-hsmd's durable store), and the optional policy file | `warden run` |
//!
//! The seed file is a Core Lightning `hsm_secret` on purpose: a new mnemonic is written as
//! Core Lightning writes one (32 zero bytes, then the words), an imported file is kept byte for
//! byte, so the node id, every key and the `init` reply are exactly those of local mode, and
//! the file can go back to a Core Lightning node unchanged. A passphrase-protected file needs
//! `WARDEN_HSM_PASSPHRASE` (the same variable for `init --import-hsm-secret` and `run`).

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use secp256k1::PublicKey;
use warden_hsmd::hsm_secret::{self, HsmSecretError, LoadedSecret};
use warden_link::StaticSecretKey;
use zeroize::Zeroizing;

use crate::CliError;

/// The seed file's name.
pub const SEED_FILE: &str = hsm_secret::FILE_NAME;
/// The pinned proxy key's file name.
pub const PROXY_KEY_FILE: &str = "proxy.pub";
/// The passphrase of a passphrase-protected seed file.
pub const PASSPHRASE_ENV: &str = "WARDEN_HSM_PASSPHRASE";

/// The default data directory: `$HOME/.warden`.
pub fn default_dir() -> Result<PathBuf, CliError> {
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".warden")).ok_or_else(|| {
        CliError::new("HOME is not set, so there is no default data directory: pass --data-dir DIR")
    })
}

/// The data directory, created (mode 0700) if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), CliError> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| {
        CliError::new(format!("cannot create the data directory {}: {e}", dir.display()))
    })
}

/// Writes `bytes` to `dir/name` atomically, mode 0600.
pub fn write_private(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let written = (|| {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

fn passphrase() -> Option<Zeroizing<Vec<u8>>> {
    std::env::var_os(PASSPHRASE_ENV).map(|p| Zeroizing::new(p.into_encoded_bytes()))
}

/// Parses `hsm_secret` bytes from `source` (for messages), with `WARDEN_HSM_PASSPHRASE`.
pub fn parse_secret(bytes: &[u8], source: &Path) -> Result<LoadedSecret, CliError> {
    let pass = passphrase();
    hsm_secret::parse(bytes, pass.as_ref().map(|p| p.as_slice())).map_err(|e| {
        let what = source.display();
        CliError::new(match e {
            HsmSecretError::PassphraseRequired { .. } => format!(
                "{what} is protected by a passphrase: set {PASSPHRASE_ENV} to it and try again"
            ),
            HsmSecretError::PassphraseNotNeeded => format!(
                "{what} has no passphrase, but {PASSPHRASE_ENV} is set: unset it and try again"
            ),
            HsmSecretError::WrongPassphrase { .. } => {
                format!("{PASSPHRASE_ENV} does not unlock {what}: check the passphrase")
            }
            other => format!("{what} is not a Core Lightning hsm_secret: {other}"),
        })
    })
}

/// Loads the seed of `dir`.
pub fn load_seed(dir: &Path) -> Result<LoadedSecret, CliError> {
    let path = dir.join(SEED_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => Zeroizing::new(b),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::new(format!(
                "no seed in {}: run `warden init` first (or pass --data-dir)",
                dir.display()
            )))
        }
        Err(e) => return Err(CliError::new(format!("cannot read {}: {e}", path.display()))),
    };
    parse_secret(&bytes, &path)
}

/// The signer's link static key: `warden/link` derived from the seed.
pub fn link_key(seed: &LoadedSecret) -> Result<StaticSecretKey, CliError> {
    let keys = warden_core::seal::WardenKeys::derive(&seed.seed)
        .map_err(|e| CliError::new(format!("cannot derive the link key from the seed: {e}")))?;
    let bytes = Zeroizing::new(keys.link_key().expose_secret().secret_bytes());
    StaticSecretKey::from_bytes(*bytes)
        .map_err(|e| CliError::new(format!("the derived link key is unusable: {e}")))
}

/// Parses a hex public key given on the command line or in `proxy.pub`.
pub fn parse_key(text: &str, what: &str) -> Result<PublicKey, CliError> {
    warden_hsmd::proxy::parse_pubkey(text.trim()).ok_or_else(|| {
        CliError::new(format!(
            "{what} {:?} is not a 66-hex-digit public key: copy it again from \
             `warden-hsmd --proxy-pubkey` on the node host",
            text.trim()
        ))
    })
}

/// The pinned proxy key of `dir`, if `warden pair --proxy-key` wrote one.
pub fn pinned_proxy_key(dir: &Path) -> Result<Option<PublicKey>, CliError> {
    let path = dir.join(PROXY_KEY_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => parse_key(&text, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::new(format!("cannot read {}: {e}", path.display()))),
    }
}
