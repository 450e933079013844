//! The plugin's configuration, and the state file that makes it known before `init`.
//!
//! lightningd calls the `db_write` hook **before** it sends `init` (Core Lightning's plugin
//! docs: "the hook will be called before your plugin is initialized!"): the database is
//! opened, migrated and written during start-up, and the plugin's options only arrive later.
//! A backup plugin must nevertheless seal those first writes, so its configuration must be
//! on disk: `warden-backup.json` in the lightning directory (the plugin's working directory,
//! where lightningd starts plugins). `warden-backup setup` writes it once; each `init` writes
//! it again from the plugin's options. It holds no secret (a directory, a public key, an
//! interval); mode 0600 all the same.
//!
//! Format: version 1, a backup directory only: `{"version": 1, "backup_dir": "...",
//! "pubkey": "02...", "snapshot_interval": 3600}`; version 2, with a PostgreSQL destination:
//! `{"version": 2, "backup_dir": "..." or null, "postgres": "<connection string>", "pubkey":
//! ..., "snapshot_interval": ...}` (a plugin that knows only version 1 refuses it rather than
//! silently writing to the directory alone). The connection string may hold a password: the
//! file is mode 0600, as lightningd's own config that holds the same option.
//!
//! ## Which destinations
//!
//! `--warden-backup-dir` and `--warden-backup-postgres` each name one; both may be given
//! (then both are written). An option not given is taken from the state file; with neither
//! the option nor a state file, the directory defaults to `warden-backup` unless a
//! PostgreSQL destination is given (then PostgreSQL alone).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use secp256k1::PublicKey;
use serde_json::{json, Value};

use crate::dest::Destination;
use crate::dir::BackupDir;
use crate::postgres::{PgBackup, PgTarget};

/// The state file's name in the lightning directory.
pub const STATE_FILE: &str = "warden-backup.json";
/// The database file's name in the lightning directory.
pub const DB_FILE: &str = "lightningd.sqlite3";
/// The default backup directory, relative to the lightning directory.
pub const DEFAULT_DIR: &str = "warden-backup";
/// The default snapshot interval, in seconds.
pub const DEFAULT_SNAPSHOT_INTERVAL: u64 = 3600;

/// What the plugin needs to write a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The backup directory (relative paths are relative to the lightning directory), if
    /// the backup goes to one.
    pub backup_dir: Option<PathBuf>,
    /// The PostgreSQL database, if the backup goes to one.
    pub postgres: Option<PgTarget>,
    /// The signer's node-backup public key.
    pub pubkey: PublicKey,
    /// Seconds between snapshots; 0: only at start.
    pub snapshot_interval: u64,
}

impl Config {
    /// The backup directory resolved against the lightning directory `home`.
    pub fn backup_dir_in(&self, home: &Path) -> Option<PathBuf> {
        self.backup_dir.as_ref().map(|d| home.join(d))
    }

    /// The destinations, for messages (no password).
    pub fn describe_destinations(&self, home: &Path) -> String {
        let mut parts = Vec::new();
        if let Some(dir) = self.backup_dir_in(home) {
            parts.push(dir.display().to_string());
        }
        if let Some(pg) = &self.postgres {
            parts.push(pg.to_string());
        }
        parts.join(" and ")
    }

    /// Opens every destination (creating the directory, bringing the database's schema up to
    /// date), each positioned at its last version.
    pub fn open_destinations(&self, home: &Path) -> Result<Vec<Box<dyn Destination>>, String> {
        let mut out: Vec<Box<dyn Destination>> = Vec::new();
        if let Some(dir) = self.backup_dir_in(home) {
            out.push(Box::new(BackupDir::open(&dir, self.pubkey).map_err(|e| e.to_string())?));
        }
        if let Some(pg) = &self.postgres {
            out.push(Box::new(PgBackup::open(pg, &self.pubkey).map_err(|e| e.to_string())?));
        }
        if out.is_empty() {
            return Err("no backup destination: give --warden-backup-dir or \
                        --warden-backup-postgres"
                .to_owned());
        }
        Ok(out)
    }

    fn to_json(&self) -> Value {
        match &self.postgres {
            None => json!({
                "version": 1,
                "backup_dir": self.backup_dir.as_ref().map(|d| d.to_string_lossy()),
                "pubkey": self.pubkey.to_string(),
                "snapshot_interval": self.snapshot_interval,
            }),
            Some(pg) => json!({
                "version": 2,
                "backup_dir": self.backup_dir.as_ref().map(|d| d.to_string_lossy()),
                "postgres": pg.url(),
                "pubkey": self.pubkey.to_string(),
                "snapshot_interval": self.snapshot_interval,
            }),
        }
    }

    fn from_json(v: &Value) -> Result<Config, String> {
        let version = v.get("version").and_then(Value::as_u64);
        let (backup_dir, postgres) = match version {
            Some(1) => {
                let dir = v.get("backup_dir").and_then(Value::as_str).ok_or("no backup_dir")?;
                (Some(PathBuf::from(dir)), None)
            }
            Some(2) => {
                let dir = match v.get("backup_dir") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(d)) => Some(PathBuf::from(d)),
                    Some(_) => return Err("backup_dir is not a string".to_owned()),
                };
                let pg = v.get("postgres").and_then(Value::as_str).ok_or("no postgres")?;
                (dir, Some(PgTarget::parse(pg)?))
            }
            _ => {
                return Err(format!("unknown version {}", v.get("version").unwrap_or(&Value::Null)))
            }
        };
        let pubkey = v.get("pubkey").and_then(Value::as_str).ok_or("no pubkey")?;
        Ok(Config {
            backup_dir,
            postgres,
            pubkey: parse_pubkey(pubkey)?,
            snapshot_interval: v
                .get("snapshot_interval")
                .and_then(Value::as_u64)
                .ok_or("no snapshot_interval")?,
        })
    }
}

/// Parses a hex public key, naming it in the error.
pub fn parse_pubkey(hex: &str) -> Result<PublicKey, String> {
    PublicKey::from_str(hex.trim())
        .map_err(|e| format!("node-backup public key {hex} is not a public key: {e}"))
}

/// Reads `home`'s state file: `Ok(None)` if there is none.
pub fn load(home: &Path) -> Result<Option<Config>, String> {
    let path = home.join(STATE_FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let v: Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    Config::from_json(&v).map(Some).map_err(|e| format!("{}: {e}", path.display()))
}

/// Writes `home`'s state file atomically and durably, mode 0600.
pub fn save(home: &Path, config: &Config) -> Result<(), String> {
    let path = home.join(STATE_FILE);
    let tmp = home.join(format!("{STATE_FILE}.tmp"));
    let bytes = serde_json::to_vec_pretty(&config.to_json()).map_err(|e| e.to_string())?;
    let written = (|| {
        let mut f =
            OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(home)?.sync_all()
    })();
    written.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// The configuration from `init`'s options, each absent option taken from `saved` (the
/// state file) or its default.
pub fn from_options(options: &Value, saved: Option<&Config>) -> Result<Config, String> {
    let pubkey = match option_str(options, "warden-backup-pubkey") {
        Some(hex) => parse_pubkey(&hex)?,
        None => saved.map(|c| c.pubkey).ok_or(
            "--warden-backup-pubkey is required: the signer's node-backup public key (hex)",
        )?,
    };
    let postgres = match option_str(options, "warden-backup-postgres") {
        Some(url) => Some(PgTarget::parse(&url)?),
        None => saved.and_then(|c| c.postgres.clone()),
    };
    let backup_dir = match (option_str(options, "warden-backup-dir"), saved) {
        (Some(dir), _) => Some(PathBuf::from(dir)),
        (None, Some(saved)) => saved.backup_dir.clone(),
        (None, None) if postgres.is_some() => None,
        (None, None) => Some(PathBuf::from(DEFAULT_DIR)),
    };
    if backup_dir.is_none() && postgres.is_none() {
        return Err("no backup destination: give --warden-backup-dir or \
                    --warden-backup-postgres"
            .to_owned());
    }
    let snapshot_interval = match options.get("warden-backup-snapshot-interval") {
        None | Some(Value::Null) => {
            saved.map_or(DEFAULT_SNAPSHOT_INTERVAL, |c| c.snapshot_interval)
        }
        Some(Value::Number(n)) => n.as_u64().ok_or("snapshot interval is not a number")?,
        Some(Value::String(s)) => {
            s.parse().map_err(|_| format!("snapshot interval {s} is not a number"))?
        }
        Some(other) => return Err(format!("snapshot interval {other} is not a number")),
    };
    Ok(Config { backup_dir, postgres, pubkey, snapshot_interval })
}

fn option_str(options: &Value, name: &str) -> Option<String> {
    match options.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]
    use super::*;

    const KEY: &str = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";

    #[test]
    fn state_round_trip_and_options_override() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        let c = from_options(&json!({"warden-backup-pubkey": KEY}), None).unwrap();
        assert_eq!(c.backup_dir, Some(PathBuf::from(DEFAULT_DIR)));
        assert_eq!(c.postgres, None);
        assert_eq!(c.snapshot_interval, DEFAULT_SNAPSHOT_INTERVAL);
        save(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(c.clone()));
        let o = from_options(&json!({"warden-backup-snapshot-interval": "5"}), Some(&c)).unwrap();
        assert_eq!((o.pubkey, o.snapshot_interval), (c.pubkey, 5));
        assert!(from_options(&json!({}), None).is_err());
        assert!(from_options(&json!({"warden-backup-pubkey": "02ab"}), None).is_err());
    }

    #[test]
    fn postgres_alone_or_with_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let url = "host=/run/pg user=node password=hunter2 dbname=backups";
        // PostgreSQL alone: no default directory.
        let c = from_options(
            &json!({"warden-backup-pubkey": KEY, "warden-backup-postgres": url}),
            None,
        )
        .unwrap();
        assert_eq!(
            (c.backup_dir.as_ref(), c.postgres.as_ref().map(PgTarget::url)),
            (None, Some(url))
        );
        assert!(!format!("{c:?}").contains("hunter2"));
        save(dir.path(), &c).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(c.clone()));
        // Both: the directory option added to the saved PostgreSQL destination.
        let both = from_options(&json!({"warden-backup-dir": "/b"}), Some(&c)).unwrap();
        assert_eq!(both.backup_dir, Some(PathBuf::from("/b")));
        assert_eq!(both.postgres, c.postgres);
        let d = dir.path().join("x");
        fs::create_dir(&d).unwrap();
        save(&d, &both).unwrap();
        assert_eq!(load(&d).unwrap(), Some(both));
        // A version 2 state file without its destination is refused.
        fs::write(
            d.join(STATE_FILE),
            format!(
                r#"{{"version": 2, "backup_dir": null, "pubkey": "{KEY}", "snapshot_interval": 1}}"#
            ),
        )
        .unwrap();
        assert!(load(&d).is_err());
    }
}
