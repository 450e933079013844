//! The `warden-backup` binary: run by lightningd as a plugin (no arguments), or by the
//! operator as `warden-backup restore` / `setup` / `pubkey`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use warden_backup::config::{parse_pubkey, Config};
use warden_backup::plugin::{setup, Exit, Plugin};
use warden_backup::postgres::PgTarget;
use warden_backup::restore::{restore_from, BackupSource, SeedUnsealer};
use warden_hsmd::hsm_secret::{self, OsEntropy};

/// The environment variable holding the passphrase of an encrypted `hsm_secret`.
const PASSPHRASE_ENV: &str = "WARDEN_HSM_PASSPHRASE";

/// Core Lightning database backups sealed to the Warden signer.
///
/// Without a command it runs as a Core Lightning plugin (lightningd starts it).
#[derive(Parser, Debug)]
#[command(name = "warden-backup", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Restores lightningd.sqlite3 from a backup directory or a PostgreSQL database with the
    /// seed.
    Restore {
        /// The signer's seed (an hsm_secret file in any format Warden reads; an encrypted
        /// one with WARDEN_HSM_PASSPHRASE set).
        #[arg(long)]
        seed_file: PathBuf,
        /// The backup directory (the plugin's --warden-backup-dir).
        #[arg(long, required_unless_present = "postgres", conflicts_with = "postgres")]
        backup_dir: Option<PathBuf>,
        /// Or the PostgreSQL database (the plugin's --warden-backup-postgres connection
        /// string); the backup restored is the one sealed to the seed's node-backup key.
        #[arg(long)]
        postgres: Option<String>,
        /// The database to create (must not exist).
        #[arg(long)]
        out: PathBuf,
    },
    /// Prepares a lightning directory for the plugin (once, node stopped): writes
    /// warden-backup.json, which the plugin needs for the writes lightningd makes before it
    /// initialises plugins, and seals a first snapshot of an existing database.
    Setup {
        /// The network's lightning directory (e.g. ~/.lightning/bitcoin).
        #[arg(long)]
        lightning_dir: PathBuf,
        /// The signer's node-backup public key (hex; `warden-backup pubkey` prints it).
        #[arg(long)]
        pubkey: String,
        /// The backup directory (relative to the lightning directory; default: warden-backup
        /// unless --postgres is given).
        #[arg(long)]
        backup_dir: Option<PathBuf>,
        /// A PostgreSQL connection string to back up to, alone or with --backup-dir.
        #[arg(long)]
        postgres: Option<String>,
        /// Seconds between snapshots (0: only at start).
        #[arg(long, default_value_t = warden_backup::config::DEFAULT_SNAPSHOT_INTERVAL)]
        snapshot_interval: u64,
    },
    /// Prints the node-backup public key of a seed (the plugin's --warden-backup-pubkey).
    Pubkey {
        /// The signer's seed (an hsm_secret file).
        #[arg(long)]
        seed_file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_plugin(),
        Some(Command::Restore { seed_file, backup_dir, postgres, out }) => {
            run_restore(&seed_file, backup_dir, postgres.as_deref(), &out)
        }
        Some(Command::Setup { lightning_dir, pubkey, backup_dir, postgres, snapshot_interval }) => {
            run_setup(&lightning_dir, &pubkey, backup_dir, postgres.as_deref(), snapshot_interval)
        }
        Some(Command::Pubkey { seed_file }) => {
            load_unsealer(&seed_file).and_then(|u| say(&format!("{}", u.public_key())))
        }
    };
    match result {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(io::stderr().lock(), "warden-backup: {message}");
            ExitCode::FAILURE
        }
    }
}

fn say(line: &str) -> Result<ExitCode, String> {
    writeln!(io::stdout().lock(), "{line}").map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn run_plugin() -> Result<ExitCode, String> {
    let entropy = OsEntropy::open().map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    // lightningd starts plugins in the network's lightning directory.
    let home = std::env::current_dir().map_err(|e| format!("no working directory: {e}"))?;
    let mut plugin = Plugin::new(io::stdout().lock(), Box::new(entropy), home);
    match plugin.run(io::stdin().lock()).map_err(|e| format!("plugin I/O: {e}"))? {
        Exit::Eof => Ok(ExitCode::SUCCESS),
        Exit::Refused => Ok(ExitCode::FAILURE),
    }
}

fn load_unsealer(seed_file: &Path) -> Result<SeedUnsealer, String> {
    let bytes = zeroize::Zeroizing::new(
        fs::read(seed_file).map_err(|e| format!("cannot read {}: {e}", seed_file.display()))?,
    );
    let pass =
        std::env::var_os(PASSPHRASE_ENV).map(|p| zeroize::Zeroizing::new(p.into_encoded_bytes()));
    let loaded = hsm_secret::parse(&bytes, pass.as_ref().map(|p| p.as_slice()))
        .map_err(|e| format!("{} is not a seed Warden reads: {e}", seed_file.display()))?;
    SeedUnsealer::new(&loaded.seed).map_err(|e| e.to_string())
}

fn run_restore(
    seed_file: &Path,
    backup_dir: Option<PathBuf>,
    postgres: Option<&str>,
    out: &Path,
) -> Result<ExitCode, String> {
    let mut unsealer = load_unsealer(seed_file)?;
    let source = match (backup_dir, postgres) {
        (Some(dir), None) => BackupSource::Dir(dir),
        (None, Some(url)) => BackupSource::Postgres {
            target: PgTarget::parse(url)?,
            backup_id: unsealer.public_key(),
        },
        _ => return Err("give either --backup-dir or --postgres".to_owned()),
    };
    let started = std::time::Instant::now();
    let report = restore_from(&source, out, &mut unsealer).map_err(|e| format!("restore: {e}"))?;
    let from = match report.snapshot {
        Some(v) => format!("snapshot {v}"),
        None => "an empty database".to_owned(),
    };
    say(&format!(
        "restored {} at data_version {} from {from} and {} records in {:.2?}{}",
        out.display(),
        report.data_version,
        report.records,
        started.elapsed(),
        if report.torn_tail > 0 {
            format!(" (ignored an incomplete last record of {} bytes)", report.torn_tail)
        } else {
            String::new()
        }
    ))
}

fn run_setup(
    home: &Path,
    pubkey: &str,
    backup_dir: Option<PathBuf>,
    postgres: Option<&str>,
    snapshot_interval: u64,
) -> Result<ExitCode, String> {
    let postgres = postgres.map(PgTarget::parse).transpose()?;
    let backup_dir = match (backup_dir, &postgres) {
        (Some(dir), _) => Some(dir),
        (None, Some(_)) => None,
        (None, None) => Some(PathBuf::from(warden_backup::config::DEFAULT_DIR)),
    };
    let config = Config { backup_dir, postgres, pubkey: parse_pubkey(pubkey)?, snapshot_interval };
    let mut entropy = OsEntropy::open().map_err(|e| format!("cannot open /dev/urandom: {e}"))?;
    let snapshot = setup(home, &config, &mut entropy)?;
    say(&format!(
        "wrote {}; backup in {}{}",
        home.join(warden_backup::config::STATE_FILE).display(),
        config.describe_destinations(home),
        match snapshot {
            Some(v) => format!(", first snapshot at data_version {v}"),
            None => " (no database yet)".to_owned(),
        }
    ))
}
