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
//!
//! ## Encrypted seed (`warden init --encrypt`)
//!
//! The same Core Lightning bytes, sealed in a file of Warden's own (so that it is never taken
//! for a Core Lightning one), all integers big-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 12 | magic `WARDEN-SEED\0` |
//! | 1 | format version (1) |
//! | 4 | Argon2id passes |
//! | 4 | Argon2id memory, KiB (one lane, Argon2 version 0x13) |
//! | 16 | salt (random) |
//! | 24 | nonce (random) |
//! | n | XChaCha20-Poly1305 ciphertext of the Core Lightning bytes (associated data: the 61 header bytes above) |
//! | 16 | tag |
//!
//! The key is Argon2id(passphrase, salt) with the parameters of the header (written: 3 passes,
//! 64 MiB). The passphrase comes from, in order: `--passphrase-file FILE` (its first line),
//! `WARDEN_SEED_PASSPHRASE`, `WARDEN_SEED_PASSPHRASE_FILE`, else a prompt on the terminal.
//! Every command that loads the seed needs it. A wrong passphrase fails the tag: nothing is
//! decrypted, and the error says so.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{KeyInit, Tag, XChaCha20Poly1305, XNonce};
use warden_core::rng::EntropySource;
use warden_hsmd::hsm_secret::pwhash;

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
/// The passphrase of an encrypted seed file (`warden init --encrypt`).
pub const SEED_PASSPHRASE_ENV: &str = "WARDEN_SEED_PASSPHRASE";
/// A file holding the passphrase of an encrypted seed file.
pub const SEED_PASSPHRASE_FILE_ENV: &str = "WARDEN_SEED_PASSPHRASE_FILE";

/// The first bytes of an encrypted seed file.
pub const SEALED_MAGIC: &[u8; 12] = b"WARDEN-SEED\0";
/// The encrypted seed file's format version.
pub const SEALED_VERSION: u8 = 1;
/// Argon2id passes of a new encrypted seed file.
pub const KDF_PASSES: u32 = 3;
/// Argon2id memory of a new encrypted seed file, KiB (64 MiB).
pub const KDF_MEMORY_KIB: u32 = 64 * 1024;
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// The header's length (the AEAD's associated data).
const HEADER_LEN: usize = 12 + 1 + 4 + 4 + SALT_LEN + NONCE_LEN;
/// The most memory a file may ask of the KDF (1 GiB): a bigger one is refused, not tried.
const KDF_MEMORY_MAX_KIB: u32 = 1024 * 1024;
/// The most passes a file may ask of the KDF.
const KDF_PASSES_MAX: u32 = 64;

static PASSPHRASE_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Makes `file` the first source of the seed passphrase (`--passphrase-file`).
pub fn use_passphrase_file(file: PathBuf) {
    let _ = PASSPHRASE_FILE.set(file);
}

/// Whether `bytes` is an encrypted seed file (`warden init --encrypt`).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(SEALED_MAGIC)
}

/// Why an encrypted seed file did not open.
#[derive(Debug, PartialEq, Eq)]
pub enum SealedSeedError {
    /// Not this format, or cut short.
    Format(&'static str),
    /// A version this build does not read.
    Version(u8),
    /// KDF parameters out of bounds.
    Kdf,
    /// The tag does not verify: a wrong passphrase (or a changed file).
    WrongPassphrase,
}

fn seed_key(
    passphrase: &[u8],
    salt: &[u8; SALT_LEN],
    passes: u32,
    memory_kib: u32,
) -> Result<Zeroizing<[u8; 32]>, SealedSeedError> {
    if !(1..=KDF_PASSES_MAX).contains(&passes) || !(8..=KDF_MEMORY_MAX_KIB).contains(&memory_kib) {
        return Err(SealedSeedError::Kdf);
    }
    let bytes = memory_kib.checked_mul(1024).ok_or(SealedSeedError::Kdf)?;
    pwhash::crypto_pwhash_argon2id13(passphrase, salt, passes, bytes)
        .map_err(|_| SealedSeedError::Kdf)
}

/// Seals `plain` (a Core Lightning `hsm_secret`) under `passphrase`, with a fresh salt and
/// nonce from `entropy` and the KDF parameters given.
pub fn seal_seed_with(
    plain: &[u8],
    passphrase: &[u8],
    entropy: &mut dyn EntropySource,
    passes: u32,
    memory_kib: u32,
) -> Result<Zeroizing<Vec<u8>>, SealedSeedError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    entropy.fill_bytes(&mut salt);
    entropy.fill_bytes(&mut nonce);
    let key = seed_key(passphrase, &salt, passes, memory_kib)?;
    let mut file = Zeroizing::new(Vec::with_capacity(HEADER_LEN + plain.len() + TAG_LEN));
    file.extend_from_slice(SEALED_MAGIC);
    file.push(SEALED_VERSION);
    file.extend_from_slice(&passes.to_be_bytes());
    file.extend_from_slice(&memory_kib.to_be_bytes());
    file.extend_from_slice(&salt);
    file.extend_from_slice(&nonce);
    file.extend_from_slice(plain);
    let (header, body) = file.split_at_mut(HEADER_LEN);
    let cipher = XChaCha20Poly1305::new((&*key).into());
    let nonce_ref: &XNonce = (&nonce).into();
    let tag: [u8; TAG_LEN] = cipher
        .encrypt_inout_detached(nonce_ref, header, body.into())
        .map_err(|_| SealedSeedError::Format("too long to encrypt"))?
        .into();
    file.extend_from_slice(&tag);
    Ok(file)
}

/// [`seal_seed_with`] with the default KDF parameters ([`KDF_PASSES`], [`KDF_MEMORY_KIB`]).
pub fn seal_seed(
    plain: &[u8],
    passphrase: &[u8],
    entropy: &mut dyn EntropySource,
) -> Result<Zeroizing<Vec<u8>>, SealedSeedError> {
    seal_seed_with(plain, passphrase, entropy, KDF_PASSES, KDF_MEMORY_KIB)
}

fn be_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(b))
}

/// Opens an encrypted seed file: the Core Lightning bytes inside.
pub fn open_seed(file: &[u8], passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, SealedSeedError> {
    if !is_sealed(file) {
        return Err(SealedSeedError::Format("not an encrypted Warden seed file"));
    }
    if file.len() < HEADER_LEN + TAG_LEN {
        return Err(SealedSeedError::Format("cut short"));
    }
    let version = file.get(12).copied().unwrap_or(0);
    if version != SEALED_VERSION {
        return Err(SealedSeedError::Version(version));
    }
    let short = SealedSeedError::Format("cut short");
    let passes = be_u32(file, 13).ok_or(SealedSeedError::Format("cut short"))?;
    let memory_kib = be_u32(file, 17).ok_or(SealedSeedError::Format("cut short"))?;
    let salt: [u8; SALT_LEN] =
        file.get(21..21 + SALT_LEN).and_then(|s| s.try_into().ok()).ok_or(short)?;
    let nonce: [u8; NONCE_LEN] = file
        .get(21 + SALT_LEN..HEADER_LEN)
        .and_then(|s| s.try_into().ok())
        .ok_or(SealedSeedError::Format("cut short"))?;
    let (header, rest) = file.split_at(HEADER_LEN);
    let (body, tag) = rest.split_at(rest.len().saturating_sub(TAG_LEN));
    let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| SealedSeedError::Format("cut short"))?;
    let key = seed_key(passphrase, &salt, passes, memory_kib)?;
    let mut plain = Zeroizing::new(body.to_vec());
    let cipher = XChaCha20Poly1305::new((&*key).into());
    cipher
        .decrypt_inout_detached(
            (&nonce).into(),
            header,
            plain.as_mut_slice().into(),
            <&Tag>::from(&tag),
        )
        .map_err(|_| SealedSeedError::WrongPassphrase)?;
    Ok(plain)
}

/// The first line of passphrase file `path` (without its line ending).
fn passphrase_from_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let bytes = fs::read(path).map(Zeroizing::new).map_err(|e| {
        CliError::new(format!("cannot read the passphrase file {}: {e}", path.display()))
    })?;
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Ok(Zeroizing::new(line.to_vec()))
}

/// The seed passphrase from `--passphrase-file`, `WARDEN_SEED_PASSPHRASE`,
/// `WARDEN_SEED_PASSPHRASE_FILE` or the terminal (asked twice when `confirm`). Empty is refused.
pub fn seed_passphrase(confirm: bool) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let pass = if let Some(file) = PASSPHRASE_FILE.get() {
        passphrase_from_file(file)?
    } else if let Some(p) = std::env::var_os(SEED_PASSPHRASE_ENV) {
        Zeroizing::new(p.into_encoded_bytes())
    } else if let Some(file) = std::env::var_os(SEED_PASSPHRASE_FILE_ENV) {
        passphrase_from_file(Path::new(&file))?
    } else {
        let first = prompt("Seed passphrase: ")?;
        if confirm {
            let again = prompt("Same passphrase again: ")?;
            if *again != *first {
                return Err(CliError::new("the two passphrases differ: nothing was written"));
            }
        }
        first
    };
    if pass.is_empty() {
        return Err(CliError::new(
            "the seed passphrase is empty: choose one (an encrypted seed with an empty \
             passphrase protects nothing)",
        ));
    }
    Ok(pass)
}

/// Reads a line from the terminal with echo off.
fn prompt(question: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let no_tty = || {
        CliError::new(format!(
            "the seed is encrypted and there is no terminal to ask its passphrase on: set \
             {SEED_PASSPHRASE_ENV}, or pass --passphrase-file FILE (or set \
             {SEED_PASSPHRASE_FILE_ENV})"
        ))
    };
    let mut tty =
        OpenOptions::new().read(true).write(true).open("/dev/tty").map_err(|_| no_tty())?;
    tty.write_all(question.as_bytes()).and_then(|()| tty.flush()).map_err(|_| no_tty())?;
    let restore = echo_off(&tty);
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    let read = loop {
        match io::Read::read(&mut tty, &mut byte) {
            Ok(0) => break Ok(()),
            Ok(_) if byte[0] == b'\n' => break Ok(()),
            Ok(_) if line.len() < 4096 => line.push(byte[0]),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    if let Some(saved) = restore {
        set_termios(&tty, &saved);
    }
    let _ = tty.write_all(b"\n");
    read.map_err(|e| CliError::new(format!("cannot read the passphrase: {e}")))?;
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(line)
}

/// Turns the terminal's echo off; returns the settings to restore.
fn echo_off(tty: &File) -> Option<libc::termios> {
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    #[allow(unsafe_code, reason = "termios has no safe std API")]
    // SAFETY: `saved` is a plain C struct fully written by tcgetattr before it is read; `fd` is
    // an open descriptor owned by `tty` for the whole call.
    let saved = unsafe {
        let mut saved: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut saved) != 0 {
            return None;
        }
        saved
    };
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    set_termios(tty, &quiet);
    Some(saved)
}

fn set_termios(tty: &File, t: &libc::termios) {
    use std::os::fd::AsRawFd;
    #[allow(unsafe_code, reason = "termios has no safe std API")]
    // SAFETY: `t` is a valid termios read from tcgetattr; `fd` is open for the call.
    unsafe {
        libc::tcsetattr(tty.as_raw_fd(), libc::TCSANOW, t);
    }
}

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

/// Opens the encrypted seed `bytes` read from `path`, asking for the passphrase.
pub fn unseal(bytes: &[u8], path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let pass = seed_passphrase(false)?;
    open_seed(bytes, &pass).map_err(|e| {
        let what = path.display();
        CliError::new(match e {
            SealedSeedError::WrongPassphrase => format!(
                "wrong passphrase: it does not unlock the encrypted seed {what} (check \
                 {SEED_PASSPHRASE_ENV}, --passphrase-file or what you typed)"
            ),
            SealedSeedError::Version(v) => format!(
                "{what} is an encrypted seed of format version {v}, which this warden does \
                 not read: use a newer warden"
            ),
            SealedSeedError::Kdf => {
                format!("{what} asks for key-derivation parameters out of bounds: is it damaged?")
            }
            SealedSeedError::Format(why) => format!("{what} is not a valid encrypted seed: {why}"),
        })
    })
}

/// Loads the seed of `dir` (asking for its passphrase if it is encrypted).
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
    if is_sealed(&bytes) {
        let plain = unseal(&bytes, &path)?;
        return parse_secret(&plain, &path);
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    struct Counter(u8);
    impl EntropySource for Counter {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            for b in dest {
                self.0 = self.0.wrapping_add(1);
                *b = self.0;
            }
        }
    }

    #[test]
    fn sealed_seed_round_trip_and_failures() {
        let plain = [7u8; 32];
        // Small KDF parameters: the format carries them.
        let file = seal_seed_with(&plain, b"pw", &mut Counter(0), 1, 64).unwrap();
        assert!(is_sealed(&file));
        assert_eq!(file.len(), HEADER_LEN + 32 + TAG_LEN);
        assert!(!file.windows(32).any(|w| w == plain), "the seed is not in clear");
        assert_eq!(open_seed(&file, b"pw").unwrap().as_slice(), &plain);
        assert_eq!(open_seed(&file, b"pW"), Err(SealedSeedError::WrongPassphrase));
        // A changed header (the KDF memory) or ciphertext fails too.
        let mut bad = file.clone();
        bad[HEADER_LEN] ^= 1;
        assert_eq!(open_seed(&bad, b"pw"), Err(SealedSeedError::WrongPassphrase));
        let mut bad = file.clone();
        bad[12] = 9;
        assert_eq!(open_seed(&bad, b"pw"), Err(SealedSeedError::Version(9)));
        let mut bad = file.clone();
        bad[17..21].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(open_seed(&bad, b"pw"), Err(SealedSeedError::Kdf));
        assert!(matches!(open_seed(&file[..40], b"pw"), Err(SealedSeedError::Format(_))));
        assert!(matches!(open_seed(&plain, b"pw"), Err(SealedSeedError::Format(_))));
        // Fresh salt and nonce each time.
        let again = seal_seed_with(&plain, b"pw", &mut Counter(100), 1, 64).unwrap();
        assert_ne!(again[21..HEADER_LEN], file[21..HEADER_LEN]);
    }

    #[test]
    fn passphrase_file_first_line() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("pass");
        fs::write(&p, b"secret words\r\nignored").unwrap();
        assert_eq!(passphrase_from_file(&p).unwrap().as_slice(), b"secret words");
        assert!(passphrase_from_file(&dir.path().join("none")).is_err());
    }
}
