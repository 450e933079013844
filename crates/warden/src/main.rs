//! `warden`: the signer side of Warden's remote mode.
//!
//! - `warden init`: makes the seed (a new BIP-39 mnemonic, shown once, or an imported Core
//!   Lightning `hsm_secret`).
//! - `warden pair`: prints this signer's link key and pins the proxy's.
//! - `warden run`: dials out to the proxy and answers its requests ([`run`]).
//! - `warden status`, `warden policy`, `warden allowlist`, `warden approvals`: the operator's
//!   commands on the data directory's files, usable while `warden run` runs ([`operator`]).
//! - `warden demo`: the whole remote setup on this machine, and a node that turns hostile
//!   ([`demo`]).
//! - `warden restore`, `warden scb`: rebuild the store from the seed and a PostgreSQL replica,
//!   and write Core Lightning static channel backups ([`restore`]).
//!
//! The data directory's layout is in [`datadir`]; `run`'s config file in [`config`]. Errors are printed as sentences that say what
//! to do next; the exit code is 1 on any error, 2 on bad usage (clap's).

mod backup;
mod config;
mod datadir;
mod demo;
mod metrics;
mod operator;
mod restore;
mod run;
mod seal;
mod signals;
mod status;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use warden_core::rng::EntropySource;
use warden_hsmd::hsm_secret::{self, OsEntropy};
use zeroize::Zeroizing;

/// Warden's signer: holds the node's keys on its own machine and signs only what policy allows.
///
/// The signer accepts no connections: `warden run` dials out to `warden-hsmd`, which runs in
/// proxy mode next to lightningd. Set-up: `warden init`, then `warden pair` on this host and
/// `warden-hsmd --proxy-pubkey` on the node host, then `warden run --connect HOST:PORT`.
/// `warden status`, `approvals`, `allowlist` and `policy` work on the data directory's files,
/// also while `warden run` runs. To see it all at work on this machine first: `warden demo`.
#[derive(Debug, Parser)]
#[command(name = "warden", version)]
struct Cli {
    /// The signer's data directory (seed, pinned proxy key, channel state).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create the signer's seed: a new BIP-39 mnemonic, or an existing Core Lightning hsm_secret.
    ///
    /// The seed is written to `hsm_secret` in the data directory (mode 0600), in Core
    /// Lightning's own format, so the node keeps the same node id and keys as with hsmd.
    Init(InitArgs),
    /// Show this signer's link key, and pin the proxy's key.
    ///
    /// Give the printed key to the node host (`WARDEN_SIGNER_PUBKEY` in lightningd's
    /// environment); pass the key `warden-hsmd --proxy-pubkey` prints there as --proxy-key.
    Pair(PairArgs),
    /// Run the signer: dial out to the proxy, then answer its requests until SIGTERM or ctrl-c.
    Run(RunArgs),
    /// See Warden at work, with nothing to set up: a signer, a proxy and a node that turns
    /// hostile, all on this machine.
    ///
    /// Starts the real `warden run` and `warden-hsmd` (proxy mode) in a temporary directory,
    /// drives the proxy with a scripted Core Lightning node (open, payments both ways, five
    /// thefts, a cooperative close) and prints each step and each refusal with its rule. Exit
    /// code 0 only if every legitimate step was signed and every theft refused. Ignores
    /// --data-dir: nothing outside the temporary directory is touched.
    Demo(DemoArgs),
    /// Show the signer's state: node id, keys, link, refusals, channels, approvals, policy.
    ///
    /// Reads the data directory's files only (`warden run` keeps `status.json` there up to
    /// date), so it works while the signer runs.
    Status,
    /// Show the policy in force, or check a policy file before installing it.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, add or remove the addresses of yours that withdrawals, closes and sweeps may pay.
    ///
    /// Edits `[allowlist] addresses` of the policy file (`warden/policy.toml` in the data
    /// directory, or $WARDEN_POLICY_FILE), keeping the rest of the file, comments included.
    /// `warden run` reads the policy at start: restart it to apply a change.
    #[command(subcommand)]
    Allowlist(AllowlistCommand),
    /// List the requests the policy refused but you may allow once, and approve or deny them.
    ///
    /// A withdrawal to an address that is neither the wallet's nor allowlisted, or a payment
    /// beyond the velocity budget, waits in `warden/approvals/pending/`. Once approved, the
    /// node's retry of exactly that request goes through, once.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Check or export the audit trail: every decision (request digest, client, outcome with
    /// its rule, digest of what was signed), hash-chained and sealed in the signer's store.
    ///
    /// Reads the store in the data directory: stop `warden run` first (the store is locked
    /// while it runs).
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Rebuild the local store from the seed and a PostgreSQL replica, verified with the seed's
    /// keys; optionally write Core Lightning static channel backups of the restored channels.
    ///
    /// Refuses a replica that does not verify (naming what failed) and a local store that is
    /// not empty (unless --force). Stop `warden run` first.
    Restore(restore::RestoreArgs),
    /// Write Core Lightning static channel backups (`staticbackup`'s JSON, for
    /// `recoverchannel`) of the channels in the local store. Stop `warden run` first.
    Scb(restore::ScbArgs),
    /// Encrypt a file or stream to the signer's node-backup key: only the seed can open it.
    ///
    /// Needs only the public key (`warden node-backup-key` prints it). Reads FILE or standard
    /// input, writes --out or standard output. Open it again with `warden unseal`.
    Seal(SealArgs),
    /// Decrypt what `warden seal` sealed, asking the signer for the key of each part.
    ///
    /// Starts warden-hsmd on the node's lightning directory, as lightningd does: in local mode
    /// the directory's hsm_secret answers; with warden-hsmd's proxy environment
    /// (WARDEN_SIGNER_PUBKEY and the rest) the remote signer does, once `warden run` connects.
    /// The signer releases one key per part (never its secret), within its policy's
    /// `unseal-per-hour`, and records each release in its audit trail. Stop lightningd first:
    /// its warden-hsmd holds the same store.
    Unseal(UnsealArgs),
    /// Print the signer's node-backup public key, the key `warden seal --to` and the
    /// warden-backup plugin seal to (asks the signer, like `warden unseal`).
    NodeBackupKey(SignerArgs),
    /// Restore the node's database from a warden-backup backup, with keys from the signer.
    #[command(subcommand)]
    Backup(BackupCommand),
}

#[derive(Debug, Subcommand)]
enum BackupCommand {
    /// Rebuild lightningd.sqlite3 from the backup (directory or PostgreSQL): the newest sealed
    /// snapshot, then every later record, each unsealed with a key the signer releases.
    ///
    /// Needs only the signer (its seed) and the backup. Starts warden-hsmd on the lightning
    /// directory as `warden unseal` does. A tampered, reordered, missing, replayed or foreign
    /// record stops the restore by name and nothing is written; the output is renamed into
    /// place only once the final data_version checked.
    Restore(BackupRestoreArgs),
}

#[derive(Debug, Args)]
struct BackupRestoreArgs {
    #[command(flatten)]
    signer: SignerArgs,

    /// The backup directory (the plugin's --warden-backup-dir).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "postgres",
        required_unless_present = "postgres"
    )]
    backup_dir: Option<PathBuf>,

    /// The backup database (the plugin's --warden-backup-postgres); the backup of this
    /// signer's node-backup key is restored.
    #[arg(long, value_name = "URL")]
    postgres: Option<String>,

    /// The database to create (it must not exist), for example
    /// ~/.lightning/bitcoin/lightningd.sqlite3.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SealArgs {
    /// The node-backup public key to seal to (66 hex characters).
    #[arg(long, value_name = "PUBKEY")]
    to: String,

    /// The file to seal [default: standard input].
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,

    /// Where to write the sealed stream [default: standard output]; written to FILE.partial
    /// (mode 0600) and renamed when complete.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct UnsealArgs {
    #[command(flatten)]
    signer: SignerArgs,

    /// The sealed file [default: standard input].
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,

    /// Where to write the plaintext [default: standard output]; written to FILE.partial (mode
    /// 0600), renamed when every part opened, removed otherwise.
    #[arg(long, short, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// How to reach the signer: warden-hsmd on the node's lightning directory.
#[derive(Debug, Args)]
struct SignerArgs {
    /// The node's lightning directory, with its network (for example ~/.lightning/bitcoin).
    #[arg(long, value_name = "DIR")]
    lightning_dir: PathBuf,

    /// The warden-hsmd binary [default: next to this executable].
    #[arg(long, value_name = "PATH")]
    hsmd: Option<PathBuf>,

    /// The network the node runs on: bitcoin (or mainnet), testnet, signet, regtest.
    #[arg(long, value_parser = parse_network, default_value = "bitcoin")]
    network: bitcoin::Network,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Verify the chain from the first entry to the store's signed tip; exit 1 naming the
    /// first entry that was changed, removed or reordered.
    Verify,
    /// Verify, then write every entry as one JSON line to stdout.
    Export,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Print the effective policy (the network's defaults and the policy file) as a policy file.
    Show(NetworkArg),
    /// Check a policy file: exit 0 if the signer would accept it, else say what is wrong.
    Check {
        /// The policy file.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        network: NetworkArg,
    },
}

#[derive(Debug, Subcommand)]
enum AllowlistCommand {
    /// Print the allowlisted addresses.
    List,
    /// Allowlist an address (it must be an address of the signer's network).
    Add {
        /// The address.
        #[arg(value_name = "ADDRESS")]
        address: String,
        #[command(flatten)]
        network: NetworkArg,
    },
    /// Remove an address from the allowlist.
    Remove {
        /// The address.
        #[arg(value_name = "ADDRESS")]
        address: String,
        #[command(flatten)]
        network: NetworkArg,
    },
}

#[derive(Debug, Subcommand)]
enum ApprovalsCommand {
    /// Print the pending requests (with --all, every approval and its state).
    List {
        /// Also the approved, denied and used ones.
        #[arg(long)]
        all: bool,
    },
    /// Allow a pending request once: the node's next retry of it goes through.
    Approve {
        /// The request's ID (16 hex digits, from `warden approvals list`).
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Refuse a pending request for good.
    Deny {
        /// The request's ID (16 hex digits, from `warden approvals list`).
        #[arg(value_name = "ID")]
        id: String,
    },
}

#[derive(Debug, Args)]
struct NetworkArg {
    /// The network the policy is for: bitcoin (mainnet), testnet, testnet4, signet or regtest
    /// [default: the network `warden run` last served, else bitcoin].
    #[arg(long, value_name = "NETWORK", value_parser = parse_network)]
    network: Option<bitcoin::Network>,
}

fn parse_network(s: &str) -> Result<bitcoin::Network, String> {
    match s {
        "mainnet" => Ok(bitcoin::Network::Bitcoin),
        other => other.parse().map_err(|_| {
            "one of bitcoin (or mainnet), testnet, testnet4, signet, regtest".to_owned()
        }),
    }
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// The warden-hsmd binary [default: next to this executable; under `cargo run`, built if
    /// missing].
    #[arg(long, value_name = "PATH")]
    hsmd: Option<PathBuf>,

    /// Keep the signer's data directory afterwards (its path is printed), to look at it with
    /// `warden --data-dir DIR status`, `approvals list`, `policy show`.
    #[arg(long)]
    keep: bool,
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Length of the new mnemonic: 12 or 24 words.
    #[arg(long, default_value_t = 12, value_parser = parse_words, conflicts_with = "import_hsm_secret")]
    words: usize,

    /// Take over an existing Core Lightning node's secret: its hsm_secret file, in any format
    /// (a passphrase-protected one needs WARDEN_HSM_PASSPHRASE).
    #[arg(long, value_name = "FILE")]
    import_hsm_secret: Option<PathBuf>,

    /// Write the seed file encrypted under a passphrase (Argon2id + XChaCha20-Poly1305), asked
    /// on the terminal (twice), or from --passphrase-file / WARDEN_SEED_PASSPHRASE. Every
    /// command that loads the seed then needs the passphrase.
    #[arg(long)]
    encrypt: bool,

    /// Read the seed passphrase from the first line of FILE (for scripts).
    #[arg(long, env = "WARDEN_SEED_PASSPHRASE_FILE", value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PairArgs {
    /// The proxy's link key (66 hex digits, from `warden-hsmd --proxy-pubkey` on the node host),
    /// to pin in the data directory.
    #[arg(long, value_name = "HEX")]
    proxy_key: Option<String>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The proxy's address: the host running lightningd and the port of WARDEN_PROXY_LISTEN
    /// (required here or in the config file).
    #[arg(long, env = "WARDEN_CONNECT", value_name = "HOST:PORT")]
    connect: Option<String>,

    /// A TOML config file (default: warden.toml in the data directory, if it exists); flags
    /// and environment variables override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// The proxy's link key, instead of the one `warden pair --proxy-key` pinned.
    #[arg(long, value_name = "HEX")]
    proxy_key: Option<String>,

    /// Seconds without any message from the proxy (it pings every 10 s by default) after which
    /// the link is dropped and dialled again [default: 60].
    #[arg(long, value_name = "SECS")]
    heartbeat_timeout: Option<u64>,

    /// The longest wait, in seconds, between two attempts to reach the proxy [default: 30].
    #[arg(long, value_name = "SECS")]
    max_backoff: Option<u64>,

    /// How the log on stderr is written [default: text].
    #[arg(long, value_enum, env = "WARDEN_LOG_FORMAT")]
    log_format: Option<LogFormat>,

    /// The least severe events logged [default: info].
    #[arg(long, value_enum, env = "WARDEN_LOG_LEVEL")]
    log_level: Option<LogLevel>,

    /// Serve Prometheus metrics at http://IP:PORT/metrics (loopback only, unless
    /// --metrics-allow-remote) [default: off].
    #[arg(long, env = "WARDEN_METRICS_LISTEN", value_name = "IP:PORT")]
    metrics_listen: Option<String>,

    /// Allow a --metrics-listen address that is not loopback.
    #[arg(long, env = "WARDEN_METRICS_ALLOW_REMOTE")]
    metrics_allow_remote: bool,

    /// Read the passphrase of an encrypted seed from the first line of FILE.
    #[arg(long, env = "WARDEN_SEED_PASSPHRASE_FILE", value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

fn parse_words(s: &str) -> Result<usize, String> {
    match s {
        "12" => Ok(12),
        "24" => Ok(24),
        _ => Err("a mnemonic has 12 or 24 words".to_owned()),
    }
}

/// A failure at the edge, as a sentence that says what to do next.
#[derive(Debug)]
pub struct CliError(String);

impl CliError {
    /// An error with this message.
    pub fn new(msg: impl Into<String>) -> CliError {
        CliError(msg.into())
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How `warden run` writes its log (on stderr).
#[derive(Clone, Copy, Debug, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per event (for log collectors).
    Json,
}

/// The least severe events `warden run` logs.
#[derive(Clone, Copy, Debug, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Failures only.
    Error,
    /// Failures, refusals and lost links.
    Warn,
    /// Also connections, initialisation and shutdown.
    Info,
    /// Also every request answered.
    Debug,
}

/// Starts the log on stderr. Events never carry secrets.
fn start_log(format: LogFormat, level: LogLevel) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(io::stderr)
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Writes `text` to stdout (the CLI's output).
fn say(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new(format!("cannot write to stdout: {e}")))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = || datadir_of(cli.data_dir.as_deref());
    let result = match cli.command {
        Command::Demo(args) => demo::run(&demo::DemoOptions { hsmd: args.hsmd, keep: args.keep }),
        Command::Init(args) => dir().and_then(|d| init(&d, &args)),
        Command::Pair(args) => dir().and_then(|d| pair(&d, &args)),
        Command::Run(args) => dir().and_then(|d| run_daemon(d, &args)),
        Command::Status => dir().and_then(|d| operator::status(&d)),
        Command::Policy(PolicyCommand::Show(n)) => {
            dir().and_then(|d| operator::policy_show(&d, n.network))
        }
        Command::Policy(PolicyCommand::Check { file, network }) => {
            let net = match (network.network, dir()) {
                (Some(n), _) => n,
                (None, Ok(d)) => operator::network_of(None, &d).0,
                (None, Err(_)) => bitcoin::Network::Bitcoin,
            };
            operator::policy_check(&file, net)
        }
        Command::Allowlist(AllowlistCommand::List) => {
            dir().and_then(|d| operator::allowlist_list(&d))
        }
        Command::Allowlist(AllowlistCommand::Add { address, network }) => {
            dir().and_then(|d| operator::allowlist_edit(&d, &address, true, network.network))
        }
        Command::Allowlist(AllowlistCommand::Remove { address, network }) => {
            dir().and_then(|d| operator::allowlist_edit(&d, &address, false, network.network))
        }
        Command::Approvals(ApprovalsCommand::List { all }) => {
            dir().and_then(|d| operator::approvals_list(&d, all))
        }
        Command::Approvals(ApprovalsCommand::Approve { id }) => {
            dir().and_then(|d| operator::approvals_decide(&d, &id, true))
        }
        Command::Approvals(ApprovalsCommand::Deny { id }) => {
            dir().and_then(|d| operator::approvals_decide(&d, &id, false))
        }
        Command::Audit(AuditCommand::Verify) => dir().and_then(|d| audit(&d, false)),
        Command::Audit(AuditCommand::Export) => dir().and_then(|d| audit(&d, true)),
        Command::Seal(args) => seal_cmd(&args),
        Command::Unseal(args) => signer_options(&args.signer)
            .and_then(|s| seal::unseal(&s, args.input.as_deref(), args.out.as_deref())),
        Command::Backup(BackupCommand::Restore(args)) => {
            signer_options(&args.signer).and_then(|s| {
                let source = match (args.backup_dir, args.postgres) {
                    (Some(dir), _) => backup::Source::Dir(dir),
                    (None, Some(url)) => backup::Source::Postgres(url),
                    (None, None) => {
                        return Err(CliError::new("name the backup: --backup-dir or --postgres"))
                    }
                };
                backup::restore(&s, source, &args.out)
            })
        }
        Command::NodeBackupKey(args) => {
            signer_options(&args).and_then(|s| seal::node_backup_key(&s))
        }
        Command::Restore(args) => dir().and_then(|d| restore::run_restore(&d, &args)),
        Command::Scb(args) => dir().and_then(|d| restore::run_scb(&d, &args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = io::stderr().lock();
            let _ = writeln!(err, "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seal_cmd(args: &SealArgs) -> Result<(), CliError> {
    let to = datadir::parse_key(&args.to, "the node-backup key (--to)")?;
    seal::seal(&to, args.input.as_deref(), args.out.as_deref())
}

fn signer_options(args: &SignerArgs) -> Result<seal::SignerOptions, CliError> {
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find this executable: {e}")))?;
    Ok(seal::SignerOptions {
        lightning_dir: args.lightning_dir.clone(),
        hsmd: demo::hsmd_binary(&exe, args.hsmd.as_deref())?,
        network: args.network,
    })
}

fn datadir_of(data_dir: Option<&Path>) -> Result<PathBuf, CliError> {
    match data_dir {
        Some(d) => Ok(d.to_path_buf()),
        None => datadir::default_dir(),
    }
}

fn init(dir: &Path, args: &InitArgs) -> Result<(), CliError> {
    let seed_path = dir.join(datadir::SEED_FILE);
    if seed_path.exists() {
        return Err(CliError::new(format!(
            "{} already holds a seed: `warden init` never overwrites one. Use another \
             --data-dir, or move that file away only if you have its backup",
            seed_path.display()
        )));
    }
    if let Some(file) = &args.passphrase_file {
        datadir::use_passphrase_file(file.clone());
    }
    // With --encrypt, the passphrase is asked first: nothing is shown or written without it.
    let passphrase = if args.encrypt { Some(datadir::seed_passphrase(true)?) } else { None };
    let write = |bytes: &[u8]| {
        datadir::ensure_dir(dir)?;
        let sealed = match &passphrase {
            Some(pass) => {
                let mut entropy = OsEntropy::open()
                    .map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
                Some(
                    datadir::seal_seed(bytes, pass, &mut entropy)
                        .map_err(|e| CliError::new(format!("cannot encrypt the seed: {e:?}")))?,
                )
            }
            None => None,
        };
        let bytes = sealed.as_ref().map_or(bytes, |s| s.as_slice());
        datadir::write_private(dir, datadir::SEED_FILE, bytes)
            .map_err(|e| CliError::new(format!("cannot write {}: {e}", seed_path.display())))
    };
    match &args.import_hsm_secret {
        Some(file) => {
            let bytes = std::fs::read(file)
                .map(Zeroizing::new)
                .map_err(|e| CliError::new(format!("cannot read {}: {e}", file.display())))?;
            let loaded = datadir::parse_secret(&bytes, file)?;
            let node_id = node_id(&loaded)?;
            write(&bytes)?;
            say(&format!(
                "Imported {} into {}.\nNode id: {node_id}\nNext: `warden pair`.\n",
                file.display(),
                seed_path.display()
            ))
        }
        None => {
            let mut entropy = OsEntropy::open()
                .map_err(|e| CliError::new(format!("cannot open /dev/urandom: {e}")))?;
            let mut raw = Zeroizing::new([0u8; 32]);
            let len = if args.words == 24 { 32 } else { 16 };
            let raw = raw.get_mut(..len).ok_or_else(|| CliError::new("bad entropy length"))?;
            entropy.fill_bytes(raw);
            let mnemonic = bip39::Mnemonic::from_entropy_in(bip39::Language::English, raw)
                .map_err(|e| CliError::new(format!("cannot make a mnemonic: {e}")))?;
            let words = Zeroizing::new(mnemonic.to_string());
            let file = hsm_secret::mnemonic_file(&words, None)
                .map_err(|e| CliError::new(format!("cannot encode the seed: {e}")))?;
            let loaded = datadir::parse_secret(&file, &seed_path)?;
            let node_id = node_id(&loaded)?;
            write(&file)?;
            show_mnemonic(&words, &seed_path, &node_id)
        }
    }
}

#[allow(clippy::print_stdout, reason = "the mnemonic is shown once, on purpose, at init")]
fn show_mnemonic(words: &str, path: &Path, node_id: &str) -> Result<(), CliError> {
    let numbered: Vec<String> =
        words.split(' ').enumerate().map(|(i, w)| format!("{:>2}. {w}", i + 1)).collect();
    let text = Zeroizing::new(numbered.join("\n"));
    println!(
        "New seed written to {}.\n\nWrite these words down, in order, and keep them offline.\n\
         They are shown only this once and are the only backup of the node's funds:\n\n{}\n\n\
         Node id: {node_id}\nNext: `warden pair`.",
        path.display(),
        *text
    );
    Ok(())
}

fn node_id(loaded: &hsm_secret::LoadedSecret) -> Result<String, CliError> {
    let secp = secp256k1::Secp256k1::new();
    let keys = warden_core::keys::NodeKeys::derive(&secp, &loaded.seed, bitcoin::NetworkKind::Main)
        .map_err(|e| CliError::new(format!("cannot derive the node keys: {e}")))?;
    Ok(keys.node_id().to_string())
}

/// `warden audit verify` / `export`: the trail of the store in `dir` (its `warden/`).
fn audit(dir: &Path, export: bool) -> Result<(), CliError> {
    let seed = datadir::load_seed(dir)?;
    let secp = secp256k1::Secp256k1::new();
    let keys = warden_core::keys::NodeKeys::derive(&secp, &seed.seed, bitcoin::NetworkKind::Main)
        .map_err(|e| CliError::new(format!("cannot derive the node keys: {e}")))?;
    let node_id = warden_wire::NodeId::from(keys.node_id().to_public_key());
    let warden_keys = warden_core::seal::WardenKeys::derive(&seed.seed)
        .map_err(|e| CliError::new(format!("cannot derive the store keys: {e}")))?;
    let failed = |e: warden_hsmd::audit::AuditError| {
        CliError::new(format!(
            "the audit trail in {} does not verify: {e} (if `warden run` is running, stop it \
             first: the store is locked while it runs)",
            dir.join(warden_hsmd::durable::STORE_DIR).display()
        ))
    };
    if export {
        let mut out = io::stdout().lock();
        warden_hsmd::audit::export_jsonl(dir, &node_id, &warden_keys, &mut out).map_err(failed)?;
        Ok(())
    } else {
        let report = warden_hsmd::audit::verify(dir, &node_id, &warden_keys).map_err(failed)?;
        say(&format!(
            "Audit trail verified: {} entries, chained to the store's signed head (sequence {}).\n",
            report.entries.len(),
            report.head_seq
        ))
    }
}

fn pair(dir: &Path, args: &PairArgs) -> Result<(), CliError> {
    let seed = datadir::load_seed(dir)?;
    let link = datadir::link_key(&seed)?;
    let mut text = format!(
        "Signer link key: {}\n\nOn the node host, start lightningd with:\n  \
         WARDEN_SIGNER_PUBKEY={}\n  WARDEN_PROXY_LISTEN=IP:PORT   (default {})\n  \
         lightningd --subdaemon=hsmd:warden-hsmd ...\n",
        link.public_key(),
        link.public_key(),
        warden_hsmd::proxy::DEFAULT_LISTEN
    );
    match &args.proxy_key {
        Some(hex) => {
            let key = datadir::parse_key(hex, "--proxy-key")?;
            datadir::write_private(dir, datadir::PROXY_KEY_FILE, format!("{key}\n").as_bytes())
                .map_err(|e| CliError::new(format!("cannot pin the proxy key: {e}")))?;
            text.push_str(&format!(
                "\nPinned proxy key {key} in {}.\nNext: `warden run --connect HOST:PORT`.\n",
                dir.join(datadir::PROXY_KEY_FILE).display()
            ));
        }
        None => match datadir::pinned_proxy_key(dir)? {
            Some(key) => text.push_str(&format!("\nPinned proxy key: {key}\n")),
            None => text.push_str(
                "\nNo proxy key pinned yet: run `warden-hsmd --proxy-pubkey` in the lightning \
                 directory on the node host, then `warden pair --proxy-key KEY` here.\n",
            ),
        },
    }
    say(&text)
}

fn run_daemon(dir: PathBuf, args: &RunArgs) -> Result<(), CliError> {
    let file = config::load(args.config.as_deref(), &dir)?;
    if let Some(p) = &args.passphrase_file {
        datadir::use_passphrase_file(p.clone());
    }
    let metrics_addr = metrics::listen_addr(
        args.metrics_listen.as_deref(),
        file.metrics_listen.as_deref(),
        args.metrics_allow_remote || file.metrics_allow_remote.unwrap_or(false),
    )?;
    let replicas = file.replicas()?;
    let seed = datadir::load_seed(&dir)?;
    let link_key = datadir::link_key(&seed)?;
    let connect = args.connect.clone().or(file.connect).ok_or_else(|| {
        CliError::new(
            "no proxy address: pass --connect HOST:PORT (the node host and the port of its \
             WARDEN_PROXY_LISTEN), or set connect in the config file",
        )
    })?;
    let proxy_key = match args.proxy_key.as_ref().or(file.proxy_key.as_ref()) {
        Some(hex) => datadir::parse_key(hex, "the proxy key")?,
        None => datadir::pinned_proxy_key(&dir)?.ok_or_else(|| {
            CliError::new(
                "no proxy key is pinned: run `warden-hsmd --proxy-pubkey` in the lightning \
                 directory on the node host, then `warden pair --proxy-key KEY` here (or pass \
                 --proxy-key)",
            )
        })?,
    };
    let heartbeat_timeout = args.heartbeat_timeout.or(file.heartbeat_timeout).unwrap_or(60);
    if heartbeat_timeout == 0 {
        return Err(CliError::new("the heartbeat timeout must be at least 1 second"));
    }
    let max_backoff = args.max_backoff.or(file.max_backoff).unwrap_or(30);
    let metrics = metrics_addr.map(metrics::bind).transpose()?;
    start_log(
        args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
        args.log_level.or(file.log_level).unwrap_or(LogLevel::Info),
    );
    let options = run::RunOptions {
        connect,
        proxy_key,
        silence: Duration::from_secs(heartbeat_timeout),
        max_backoff: Duration::from_secs(max_backoff),
        data_dir: dir,
        metrics,
        replicas,
    };
    run::run(options, seed, link_key)
}
