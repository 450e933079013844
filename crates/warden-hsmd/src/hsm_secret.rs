//! The `hsm_secret` file in lightningd's working directory: loading it, and creating a new
//! BIP-39 mnemonic secret when there is none.
//!
//! Formats (Core Lightning `common/hsm_secret.c`, `detect_hsm_secret_type`):
//! - 32 bytes: the legacy plain secret ([`Seed::from_legacy`]).
//! - 73 bytes: the legacy secret encrypted under a passphrase (not supported yet).
//! - more than 32 bytes otherwise: a 32-byte passphrase-check hash (all zeros when the mnemonic
//!   has no passphrase), then the English mnemonic ([`Seed::from_mnemonic`]). Mnemonics with a
//!   passphrase are not supported yet.
//!
//! A new secret is a 12-word mnemonic without passphrase, written to a temporary file with mode
//! 0600, synced, then renamed into place, so a crash never leaves a partial `hsm_secret`.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use warden_core::rng::EntropySource;
use warden_core::secret::Seed;
use warden_wire::msg::HsmSecretType;
use zeroize::Zeroize;

/// The file's name in the lightning directory.
pub const FILE_NAME: &str = "hsm_secret";

/// The length of the legacy plain secret.
const LEGACY_LEN: usize = 32;
/// The length of the legacy encrypted secret (24-byte header, 32 bytes, 17-byte tag).
const ENCRYPTED_LEN: usize = 73;

/// Core Lightning's `enum hsm_secret_error` (`common/hsm_secret.h`): the codes an
/// `init_reply_failure` carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HsmSecretErrorCode(pub u32);

impl HsmSecretErrorCode {
    /// `HSM_SECRET_ERR_PASSPHRASE_REQUIRED`.
    pub const PASSPHRASE_REQUIRED: HsmSecretErrorCode = HsmSecretErrorCode(1);
    /// `HSM_SECRET_ERR_PASSPHRASE_NOT_NEEDED`.
    pub const PASSPHRASE_NOT_NEEDED: HsmSecretErrorCode = HsmSecretErrorCode(2);
    /// `HSM_SECRET_ERR_INVALID_MNEMONIC`.
    pub const INVALID_MNEMONIC: HsmSecretErrorCode = HsmSecretErrorCode(4);
    /// `HSM_SECRET_ERR_INVALID_FORMAT`.
    pub const INVALID_FORMAT: HsmSecretErrorCode = HsmSecretErrorCode(7);
}

/// Why the `hsm_secret` could not be loaded or created.
#[derive(Debug)]
pub enum HsmSecretError {
    /// Reading or writing the file failed.
    Io(io::Error),
    /// The file is the 73-byte encrypted legacy format, which Warden cannot decrypt yet.
    EncryptedUnsupported,
    /// The mnemonic is protected by a passphrase, which Warden does not support yet.
    MnemonicPassphraseUnsupported,
    /// lightningd sent a passphrase for a secret that has none.
    PassphraseNotNeeded,
    /// The file holds something that is not a valid English BIP-39 mnemonic.
    InvalidMnemonic,
    /// The file has a length no format has.
    InvalidFormat {
        /// The file's length.
        len: usize,
    },
}

impl HsmSecretError {
    /// The code of Core Lightning's `init_reply_failure` for this error, or `None` when the
    /// failure is an I/O error (reported with `status_fail`).
    pub fn error_code(&self) -> Option<HsmSecretErrorCode> {
        match self {
            HsmSecretError::Io(_) => None,
            HsmSecretError::EncryptedUnsupported
            | HsmSecretError::MnemonicPassphraseUnsupported
            | HsmSecretError::InvalidFormat { .. } => Some(HsmSecretErrorCode::INVALID_FORMAT),
            HsmSecretError::PassphraseNotNeeded => Some(HsmSecretErrorCode::PASSPHRASE_NOT_NEEDED),
            HsmSecretError::InvalidMnemonic => Some(HsmSecretErrorCode::INVALID_MNEMONIC),
        }
    }
}

impl fmt::Display for HsmSecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsmSecretError::Io(_) => f.write_str("cannot read or write hsm_secret"),
            HsmSecretError::EncryptedUnsupported => f.write_str(
                "hsm_secret is the encrypted 73-byte legacy format, which warden-hsmd does not \
                 support yet",
            ),
            HsmSecretError::MnemonicPassphraseUnsupported => f.write_str(
                "hsm_secret is a mnemonic with a passphrase, which warden-hsmd does not support \
                 yet",
            ),
            HsmSecretError::PassphraseNotNeeded => {
                f.write_str("a passphrase was given but hsm_secret is not protected by one")
            }
            HsmSecretError::InvalidMnemonic => {
                f.write_str("hsm_secret does not hold a valid English BIP-39 mnemonic")
            }
            HsmSecretError::InvalidFormat { len } => {
                write!(f, "hsm_secret has {len} bytes, which is no known format")
            }
        }
    }
}

impl std::error::Error for HsmSecretError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HsmSecretError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HsmSecretError {
    fn from(e: io::Error) -> HsmSecretError {
        HsmSecretError::Io(e)
    }
}

/// A loaded secret: the seed and the `hsm_secret_type` the init reply reports.
#[derive(Debug)]
pub struct LoadedSecret {
    /// The seed.
    pub seed: Seed,
    /// Which kind of file it came from.
    pub secret_type: HsmSecretType,
}

/// Parses the contents of an `hsm_secret` file.
pub fn parse(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<LoadedSecret, HsmSecretError> {
    if bytes.len() == ENCRYPTED_LEN {
        return Err(HsmSecretError::EncryptedUnsupported);
    }
    if let Some(legacy) = bytes.first_chunk::<LEGACY_LEN>().filter(|_| bytes.len() == LEGACY_LEN) {
        if passphrase.is_some() {
            return Err(HsmSecretError::PassphraseNotNeeded);
        }
        return Ok(LoadedSecret {
            seed: Seed::from_legacy(*legacy),
            secret_type: HsmSecretType::PLAIN,
        });
    }
    let (Some(check), Some(text)) = (bytes.get(..32), bytes.get(32..)) else {
        return Err(HsmSecretError::InvalidFormat { len: bytes.len() });
    };
    if check.iter().any(|b| *b != 0) {
        return Err(HsmSecretError::MnemonicPassphraseUnsupported);
    }
    if passphrase.is_some() {
        return Err(HsmSecretError::PassphraseNotNeeded);
    }
    let words = std::str::from_utf8(text).map_err(|_| HsmSecretError::InvalidMnemonic)?;
    let seed =
        Seed::from_mnemonic(words.trim(), "").map_err(|_| HsmSecretError::InvalidMnemonic)?;
    Ok(LoadedSecret { seed, secret_type: HsmSecretType::MNEMONIC_NO_PASS })
}

/// Loads `dir/hsm_secret`, creating a new 12-word mnemonic secret there if it does not exist.
pub fn load_or_create(
    dir: &Path,
    passphrase: Option<&[u8]>,
    entropy: &mut dyn EntropySource,
) -> Result<LoadedSecret, HsmSecretError> {
    let path = dir.join(FILE_NAME);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut file) => {
            file.read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if passphrase.is_some() {
                return Err(HsmSecretError::MnemonicPassphraseUnsupported);
            }
            bytes = create(dir, entropy)?;
        }
        Err(e) => return Err(e.into()),
    }
    let loaded = parse(&bytes, passphrase);
    bytes.zeroize();
    loaded
}

/// Writes a new mnemonic secret atomically and returns the bytes written.
fn create(dir: &Path, entropy: &mut dyn EntropySource) -> Result<Vec<u8>, HsmSecretError> {
    let mut raw = [0u8; 16];
    entropy.fill_bytes(&mut raw);
    let mnemonic = bip39::Mnemonic::from_entropy_in(bip39::Language::English, &raw)
        .map_err(|_| HsmSecretError::InvalidMnemonic)?;
    raw.zeroize();
    let mut words = mnemonic.to_string();
    let mut bytes = vec![0u8; 32];
    bytes.extend_from_slice(words.as_bytes());
    words.zeroize();

    let tmp = dir.join(format!("{FILE_NAME}.warden-tmp"));
    let written = (|| -> io::Result<()> {
        let mut file =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(FILE_NAME))?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        bytes.zeroize();
        return Err(e.into());
    }
    Ok(bytes)
}

/// Entropy from the operating system (`/dev/urandom`), for the binary only: the core never
/// reads the OS random number generator.
#[derive(Debug)]
pub struct OsEntropy(File);

impl OsEntropy {
    /// Opens `/dev/urandom`.
    pub fn open() -> io::Result<OsEntropy> {
        File::open("/dev/urandom").map(OsEntropy)
    }
}

impl EntropySource for OsEntropy {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // A failed read of /dev/urandom leaves no safe way to continue creating a secret.
        self.0.read_exact(dest).expect("/dev/urandom is readable");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    struct Fixed(u8);
    impl EntropySource for Fixed {
        fn fill_bytes(&mut self, dest: &mut [u8]) {
            dest.fill(self.0);
        }
    }

    #[test]
    fn legacy_and_mnemonic_parse() {
        let l = parse(&[7; 32], None).unwrap();
        assert_eq!(l.secret_type, HsmSecretType::PLAIN);
        assert_eq!(l.seed, Seed::from_legacy([7; 32]));
        let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                     abandon abandon about";
        let mut file = vec![0u8; 32];
        file.extend_from_slice(words.as_bytes());
        let m = parse(&file, None).unwrap();
        assert_eq!(m.secret_type, HsmSecretType::MNEMONIC_NO_PASS);
        assert_eq!(m.seed, Seed::from_mnemonic(words, "").unwrap());
    }

    #[test]
    fn unsupported_formats_have_cln_codes() {
        let e = parse(&[1; 73], None).unwrap_err();
        assert!(matches!(e, HsmSecretError::EncryptedUnsupported));
        assert_eq!(e.error_code(), Some(HsmSecretErrorCode::INVALID_FORMAT));
        let mut pass = vec![1u8; 32];
        pass.extend_from_slice(b"abandon");
        assert!(matches!(parse(&pass, None), Err(HsmSecretError::MnemonicPassphraseUnsupported)));
        let mut bad = vec![0u8; 32];
        bad.extend_from_slice(b"not a mnemonic at all");
        assert_eq!(
            parse(&bad, None).unwrap_err().error_code(),
            Some(HsmSecretErrorCode::INVALID_MNEMONIC)
        );
        assert!(matches!(parse(&[0; 10], None), Err(HsmSecretError::InvalidFormat { len: 10 })));
        assert_eq!(
            parse(&[7; 32], Some(b"x")).unwrap_err().error_code(),
            Some(HsmSecretErrorCode::PASSPHRASE_NOT_NEEDED)
        );
    }

    #[test]
    fn creates_a_private_12_word_file_once() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path(), None, &mut Fixed(3)).unwrap();
        let meta = fs::metadata(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let bytes = fs::read(dir.path().join(FILE_NAME)).unwrap();
        assert_eq!(&bytes[..32], &[0u8; 32]);
        assert_eq!(std::str::from_utf8(&bytes[32..]).unwrap().split(' ').count(), 12);
        // A second load reads the file; the entropy source is not used again.
        let b = load_or_create(dir.path(), None, &mut Fixed(9)).unwrap();
        assert_eq!(a.seed, b.seed);
        assert!(!dir.path().join("hsm_secret.warden-tmp").exists());
    }
}
