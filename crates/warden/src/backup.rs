//! `warden backup restore`: the node's database back from a `warden-backup` backup, with keys
//! the signer releases one record at a time.
//!
//! The restore itself is `warden_backup::restore::restore_from` (snapshot, then every later
//! record, each bound to its `data_version`, replayed into a new file that is renamed into place
//! only when all of it verified). What this adds is where the keys come from: the signer,
//! through Warden's `warden_unseal` request ([`crate::seal::HsmdSession`]), so the restore needs
//! the seed (behind the signer) and the backup, and nothing of the node. Each key the signer
//! releases is within its `unseal-per-hour` and in its audit trail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use secp256k1::PublicKey;
use warden_backup::postgres::PgTarget;
use warden_backup::restore::{restore_from, BackupSource, Unsealer};
use warden_core::seal::EciesError;
use warden_core::secret::Secret32;
use warden_wire::msg::UnsealItem;

use crate::seal::{HsmdSession, KeySource, SignerOptions};
use crate::CliError;

/// An [`Unsealer`] that asks the signer for the keys, a read-ahead batch per request.
struct SignerUnsealer {
    session: HsmdSession,
    /// Why the signer did not give the last key asked, for the error message.
    refusal: Option<CliError>,
    released: u64,
    /// Keys released for the read-ahead batch, by (point, context), not used yet.
    ready: HashMap<([u8; 33], Vec<u8>), Secret32>,
}

impl Unsealer for SignerUnsealer {
    fn prefetch(&mut self, items: &[(PublicKey, Vec<u8>)]) {
        self.ready.clear();
        if items.is_empty() {
            return;
        }
        let asked: Vec<UnsealItem> =
            items.iter().map(|(r, c)| UnsealItem { ephemeral: *r, context: c.clone() }).collect();
        match self.session.keys(asked) {
            Ok(keys) => {
                self.released += keys.len() as u64;
                for ((r, c), k) in items.iter().zip(keys) {
                    self.ready.insert((r.serialize(), c.clone()), k);
                }
            }
            // Each key is then asked for alone, and the error is reported there.
            Err(e) => self.refusal = Some(e),
        }
    }

    fn blob_key(&mut self, ephemeral: &PublicKey, context: &[u8]) -> Result<Secret32, EciesError> {
        if let Some(k) = self.ready.remove(&(ephemeral.serialize(), context.to_vec())) {
            return Ok(k);
        }
        let item = UnsealItem { ephemeral: *ephemeral, context: context.to_vec() };
        match self.session.keys(vec![item]) {
            Ok(keys) => match keys.into_iter().next() {
                Some(k) => {
                    self.released += 1;
                    Ok(k)
                }
                None => {
                    self.refusal = Some(CliError::new("the signer answered without a key"));
                    Err(EciesError::DecryptionFailed)
                }
            },
            Err(e) => {
                self.refusal = Some(e);
                Err(EciesError::DecryptionFailed)
            }
        }
    }
}

/// Where the backup is.
#[derive(Debug)]
pub enum Source {
    /// The plugin's backup directory.
    Dir(PathBuf),
    /// The plugin's PostgreSQL database (the backup of this signer's node-backup key).
    Postgres(String),
}

/// `warden backup restore`.
pub fn restore(signer: &SignerOptions, source: Source, out: &Path) -> Result<(), CliError> {
    if out.exists() {
        return Err(CliError::new(format!(
            "{} exists: restore writes a new database only (move the old one away first)",
            out.display()
        )));
    }
    let mut session = HsmdSession::start(signer)?;
    let source = match source {
        Source::Dir(dir) => BackupSource::Dir(dir),
        Source::Postgres(url) => BackupSource::Postgres {
            target: PgTarget::parse(&url).map_err(|e| CliError::new(format!("--postgres: {e}")))?,
            backup_id: session.node_backup_key()?,
        },
    };
    let mut unsealer =
        SignerUnsealer { session, refusal: None, released: 0, ready: HashMap::new() };
    match restore_from(&source, out, &mut unsealer) {
        Ok(report) => crate::say(&format!(
            "restored {} from {source}: data_version {}, {} keys released by the signer\n",
            out.display(),
            report.data_version,
            unsealer.released
        )),
        Err(e) => Err(CliError::new(match unsealer.refusal {
            Some(why) => format!("restore stopped: the signer gave no key: {why}"),
            None => format!("restore failed: {e}"),
        })),
    }
}
