//! The Core Lightning plugin: JSON-RPC 2.0 over stdin/stdout, `getmanifest`, `init`, and the
//! `db_write` hook.
//!
//! lightningd sends `getmanifest` (we answer with our options and the `db_write` hook), then
//! `init` (the option values and `configuration.lightning-dir`), then one `db_write` request
//! per database transaction — `{"data_version": N, "writes": [SQL, ...]}` — before it commits
//! it, and waits for `{"result": "continue"}`. Any other answer makes lightningd stop
//! (`fatal`) without committing: the plugin answers otherwise only when it could not make the
//! record durable or the backup does not continue the database.
//!
//! ## Before `init`
//!
//! lightningd calls `db_write` before it sends `init` (its start-up writes and migrations):
//! the plugin then takes its configuration from the state file `warden-backup.json` in its
//! working directory, the lightning directory ([`crate::config`]; `warden-backup setup`
//! writes it once, every `init` refreshes it). Without it, such a write is refused and
//! lightningd stops, saying to run `warden-backup setup`.
//!
//! ## Destinations
//!
//! The backup goes to a directory (`--warden-backup-dir`), a PostgreSQL database
//! (`--warden-backup-postgres`), or both ([`crate::dest`]). Each record and snapshot is
//! sealed once; the same blob is written to each (at the same time), and `continue` is
//! answered only once every destination holds it durably. Each destination keeps its own last version `L`, and every
//! check below is made for each (a refusal names the destination and both numbers); one
//! behind the others (added later, or left behind by a failed write) is brought in step by a
//! snapshot.
//!
//! ## At start (`init`)
//!
//! The database is `<lightning-dir>/lightningd.sqlite3` (Core Lightning's default `wallet`;
//! a node with another `--wallet` is not supported yet). Its committed `data_version` `D` is
//! compared with each destination's last version `L` (all are checked before any is
//! changed):
//!
//! - `L` absent or `L <= D`: a snapshot of the database is sealed (`L < D` is logged as
//!   unusual: the node wrote without the plugin, the snapshot covers it);
//! - `L == D + 1`: lightningd stopped between our `continue` and its commit; that last record
//!   was never committed and is removed (a directory cuts it off; PostgreSQL, append-only,
//!   leaves it superseded by the new epoch the snapshot begins), logged as unusual, then a
//!   snapshot is taken;
//! - `L > D + 1`, or a backup with no database: the database is behind its own backup — it
//!   was rolled back or replaced. The plugin logs at level `broken` with both numbers, answers
//!   `init` with an error naming both, and exits with status 1. A plugin cannot veto
//!   lightningd's start by itself; configured as `important-plugin=` (as the README says),
//!   its exit makes lightningd shut down. (A write that came before `init` already met the
//!   same check below, and was refused.)
//!
//! ## Each `db_write`
//!
//! The hook's `data_version` `N` is checked against the backup's last `L`, as Core
//! Lightning's plugin docs require of a backup plugin: `L == N - 1` is the normal case;
//! `L == N` means record `N` was never committed — it is replaced; `L > N` (the database is
//! behind its backup) is refused with both numbers, which stops lightningd before it commits;
//! `L < N - 1` (writes made without the plugin) or an empty backup takes a snapshot first. If
//! the snapshot interval has passed, a snapshot of the committed state (the version before
//! this transaction's) is sealed first. Then the record is sealed once and appended to every
//! destination (fdatasync'ed in a directory, committed by the PostgreSQL server), and only
//! then `continue` is written. If any destination fails, the answer is not `continue`:
//! lightningd stops without committing, and the destinations that took the record rewind it
//! at the next start (`L == D + 1` above).
//!
//! A snapshot holds the database in memory about three times over (the copy, the plaintext,
//! the sealed blob) for the time it is written.
//!
//! Core Lightning's `data_version` is 32 bits and wraps after 2^32 transactions; this plugin
//! counts in 64 bits and does not follow the wrap (it would refuse the wrapped write, and
//! lightningd would stop).

use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secp256k1::PublicKey;
use serde_json::{json, Value};
use warden_core::rng::EntropySource;

use crate::config::{self, Config, DB_FILE, DEFAULT_SNAPSHOT_INTERVAL};
use crate::dest::{start_check, write_all, Destination, StartCheck};
use crate::{format, sqlite};

/// The plugin's state machine, generic over its output (stdout in the binary).
pub struct Plugin<W: Write> {
    out: W,
    entropy: Box<dyn EntropySource>,
    /// The lightning directory before `init` names it: the working directory.
    home: PathBuf,
    running: Option<Running>,
}

impl<W: Write> std::fmt::Debug for Plugin<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("running", &self.running).finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Running {
    dests: Vec<Box<dyn Destination>>,
    db_path: PathBuf,
    config: Config,
    /// The lightning directory the destinations were resolved against.
    home: PathBuf,
    interval: Option<Duration>,
    last_snapshot: Instant,
}

impl Running {
    fn new(
        dests: Vec<Box<dyn Destination>>,
        db_path: PathBuf,
        config: Config,
        home: PathBuf,
    ) -> Running {
        let secs = config.snapshot_interval;
        Running {
            dests,
            db_path,
            config,
            home,
            interval: (secs > 0).then(|| Duration::from_secs(secs)),
            last_snapshot: Instant::now(),
        }
    }

    fn positions(&self) -> String {
        let each: Vec<String> =
            self.dests.iter().map(|d| format!("{} at {:?}", d.describe(), d.last())).collect();
        each.join(", ")
    }
}

/// How the plugin's loop ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// lightningd closed stdin.
    Eof,
    /// The plugin refused to run (init failed); the process exits with status 1.
    Refused,
}

impl<W: Write> Plugin<W> {
    /// A plugin writing to `out`, drawing ephemeral keys and nonces from `entropy`; `home` is
    /// the lightning directory until `init` says otherwise (lightningd starts plugins in it).
    pub fn new(out: W, entropy: Box<dyn EntropySource>, home: PathBuf) -> Plugin<W> {
        Plugin { out, entropy, home, running: None }
    }

    /// Reads requests from `input` until EOF (or a refusal at `init`).
    pub fn run(&mut self, input: impl BufRead) -> io::Result<Exit> {
        let stream = serde_json::Deserializer::from_reader(input).into_iter::<Value>();
        for msg in stream {
            let msg = msg.map_err(io::Error::other)?;
            if self.handle(&msg)? == Some(Exit::Refused) {
                return Ok(Exit::Refused);
            }
        }
        Ok(Exit::Eof)
    }

    /// Handles one message; `Some(Exit::Refused)` when the plugin must stop.
    pub fn handle(&mut self, msg: &Value) -> io::Result<Option<Exit>> {
        let id = msg.get("id").cloned();
        let method = msg.get("method").and_then(Value::as_str).unwrap_or_default();
        let params = msg.get("params").cloned().unwrap_or(Value::Null);
        match (method, id) {
            ("getmanifest", Some(id)) => {
                self.reply(id, manifest())?;
                Ok(None)
            }
            ("init", Some(id)) => match self.init(&params) {
                Ok(()) => {
                    self.reply(id, json!({}))?;
                    Ok(None)
                }
                Err(message) => {
                    self.log("broken", &message)?;
                    self.send(&json!({
                        "jsonrpc": "2.0",
                        "id": id,
                        "error": {"code": -32600, "message": message},
                    }))?;
                    Ok(Some(Exit::Refused))
                }
            },
            ("db_write", Some(id)) => {
                let result = match self.db_write(&params) {
                    Ok(()) => "continue",
                    Err(message) => {
                        self.log("broken", &message)?;
                        "abort"
                    }
                };
                self.reply(id, json!({ "result": result }))?;
                Ok(None)
            }
            (_, Some(id)) => {
                self.send(&json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": -32601, "message": format!("unknown method {method}")},
                }))?;
                Ok(None)
            }
            // Notifications (none subscribed) are ignored.
            (_, None) => Ok(None),
        }
    }

    fn init(&mut self, params: &Value) -> Result<(), String> {
        let options = params.get("options").cloned().unwrap_or(Value::Null);
        let configuration = params.get("configuration").cloned().unwrap_or(Value::Null);
        let home = configuration
            .get("lightning-dir")
            .and_then(Value::as_str)
            .map(PathBuf::from)
            .ok_or("init has no configuration.lightning-dir")?;
        let saved = config::load(&home)?;
        let config = config::from_options(&options, saved.as_ref())?;
        let db_path = home.join(DB_FILE);

        let mut dests = match self.running.take() {
            // Hooks came before init, configured from the state file: the options must agree.
            Some(running) => {
                let before = &running.config;
                if before.backup_dir_in(&running.home) != config.backup_dir_in(&home)
                    || before.postgres != config.postgres
                    || before.pubkey != config.pubkey
                {
                    return Err(format!(
                        "refusing to run: the options name backup {} to key {}, but the \
                         writes before init went to {} for key {} ({})",
                        config.describe_destinations(&home),
                        config.pubkey,
                        before.describe_destinations(&running.home),
                        before.pubkey,
                        home.join(config::STATE_FILE).display()
                    ));
                }
                running.dests
            }
            None => config.open_destinations(&home)?,
        };
        let database = sqlite::read_data_version(&db_path).map_err(|e| e.to_string())?;
        let db_name = db_path.display().to_string();
        // Every destination is checked before any is changed: a refusal leaves them as found.
        let checks = dests
            .iter()
            .map(|d| start_check(d.as_ref(), database, &db_name))
            .collect::<Result<Vec<_>, _>>()?;
        for (dest, check) in dests.iter_mut().zip(checks) {
            match check {
                StartCheck::Rewind { last: l, database: d } => {
                    dest.rewind_last(l).map_err(|e| {
                        format!(
                            "refusing to run: {} is at data_version {l}, the database at {d}, \
                             and the last record cannot be rewound: {e}",
                            dest.describe()
                        )
                    })?;
                    self.log_ok(
                        "unusual",
                        &format!(
                            "record {l} was acknowledged but lightningd did not commit it \
                             (database at {d}): removed from {}",
                            dest.describe()
                        ),
                    );
                }
                StartCheck::Behind { last: l, database: d } => self.log_ok(
                    "unusual",
                    &format!(
                        "{} is at data_version {l}, behind the database's {d} (the node ran \
                         without it): a new snapshot covers the difference",
                        dest.describe()
                    ),
                ),
                StartCheck::Fine => {}
            }
        }
        if database.is_some() {
            self.snapshot(&mut dests, &config.pubkey, &db_path, None)?;
        }
        config::save(&home, &config)?;
        let running = Running::new(dests, db_path, config, home);
        self.log_ok(
            "info",
            &format!(
                "backing up {} to {} (snapshot every {}s)",
                running.db_path.display(),
                running.positions(),
                running.config.snapshot_interval
            ),
        );
        self.running = Some(running);
        Ok(())
    }

    /// Configures the plugin from the state file, for a `db_write` that comes before `init`.
    fn start_before_init(&mut self) -> Result<Running, String> {
        let config = config::load(&self.home)?.ok_or_else(|| {
            format!(
                "db_write before init and no {} in {}: run `warden-backup setup` once before \
                 starting lightningd with this plugin",
                config::STATE_FILE,
                self.home.display()
            )
        })?;
        let dests = config.open_destinations(&self.home)?;
        self.log_ok(
            "info",
            &format!(
                "db_write before init: backing up to {} (from {})",
                config.describe_destinations(&self.home),
                config::STATE_FILE
            ),
        );
        Ok(Running::new(dests, self.home.join(DB_FILE), config, self.home.clone()))
    }

    /// Seals a snapshot of the database's committed state once and writes it to every
    /// destination; `expected` is the version it must have (the one before a hook's), `None`
    /// at start.
    fn snapshot(
        &mut self,
        dests: &mut [Box<dyn Destination>],
        recipient: &PublicKey,
        db_path: &Path,
        expected: Option<u64>,
    ) -> Result<u64, String> {
        let copy = sqlite::copy_database(db_path).map_err(|e| e.to_string())?;
        // A database not created yet holds no version: it stands for the one before the hook's.
        let version = match (copy.data_version, expected) {
            (Some(v), Some(e)) if v != e => {
                return Err(format!(
                    "the database's committed data_version is {v}, expected {e} before this \
                     transaction"
                ))
            }
            (Some(v), _) => v,
            (None, Some(e)) => e,
            (None, None) => 0,
        };
        let blob = format::seal_snapshot(recipient, version, &copy.bytes, self.entropy.as_mut())
            .map_err(|e| e.to_string())?;
        drop(copy);
        write_all(dests, |dest| dest.snapshot_sealed(version, &blob))?;
        Ok(version)
    }

    fn db_write(&mut self, params: &Value) -> Result<(), String> {
        let data_version = params
            .get("data_version")
            .and_then(Value::as_u64)
            .ok_or("db_write without a data_version")?;
        let writes: Vec<String> = params
            .get("writes")
            .and_then(Value::as_array)
            .ok_or("db_write without writes")?
            .iter()
            .map(|w| w.as_str().map(str::to_owned).ok_or("a write is not a string"))
            .collect::<Result<_, _>>()?;
        let mut running = match self.running.take() {
            Some(running) => running,
            None => self.start_before_init()?,
        };
        let result = self.db_write_running(&mut running, data_version, &writes);
        self.running = Some(running);
        result
    }

    fn db_write_running(
        &mut self,
        running: &mut Running,
        dv: u64,
        writes: &[String],
    ) -> Result<(), String> {
        let before = dv.checked_sub(1).ok_or("db_write with data_version 0")?;
        // Refused before anything is written: a destination ahead of this transaction.
        for dest in &running.dests {
            if let Some(l) = dest.last().filter(|l| *l > dv) {
                return Err(format!(
                    "refusing the write: {} is at data_version {l}, ahead of the database at \
                     data_version {before} (this transaction's is {dv}): the database was \
                     rolled back or replaced",
                    dest.describe()
                ));
            }
        }
        let due = running.interval.is_some_and(|i| running.last_snapshot.elapsed() >= i);
        let mut needed = false;
        for dest in running.dests.iter_mut() {
            match dest.last() {
                Some(l) if l == before => {}
                Some(l) if l == dv => {
                    // Acknowledged, not committed, and lightningd retries the transaction.
                    dest.rewind_last(dv)?;
                    needed = true;
                }
                // A first write on an empty backup, or writes made without this destination.
                _ => needed = true,
            }
        }
        if needed {
            self.snapshot_in_hook(running, before)?;
        } else if due {
            // A periodic snapshot that fails is logged, not fatal: the log stays complete.
            if let Err(e) = self.snapshot_in_hook(running, before) {
                self.log_ok("unusual", &format!("periodic snapshot failed: {e}"));
                running.last_snapshot = Instant::now();
            }
        }
        let blob = format::seal_record(&running.config.pubkey, dv, writes, self.entropy.as_mut())
            .map_err(|e| e.to_string())?;
        write_all(&mut running.dests, |dest| dest.append_sealed(dv, &blob))
    }

    fn snapshot_in_hook(&mut self, running: &mut Running, before: u64) -> Result<(), String> {
        let db_path = running.db_path.clone();
        let recipient = running.config.pubkey;
        self.snapshot(&mut running.dests, &recipient, &db_path, Some(before))?;
        running.last_snapshot = Instant::now();
        Ok(())
    }

    fn reply(&mut self, id: Value, result: Value) -> io::Result<()> {
        self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
    }

    /// Sends a `log` notification to lightningd.
    pub fn log(&mut self, level: &str, message: &str) -> io::Result<()> {
        self.send(&json!({
            "jsonrpc": "2.0",
            "method": "log",
            "params": {"level": level, "message": message},
        }))
    }

    /// Logs where a failure to log can only be ignored (the next reply will fail loudly).
    fn log_ok(&mut self, level: &str, message: &str) {
        let _ = self.log(level, message);
    }

    fn send(&mut self, msg: &Value) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, msg).map_err(io::Error::other)?;
        self.out.write_all(b"\n\n")?;
        self.out.flush()
    }
}

/// The answer to `getmanifest`.
/// The answer to `getmanifest`.
pub fn manifest() -> Value {
    json!({
        "options": [
            {
                "name": "warden-backup-dir",
                "type": "string",
                "description": "Directory of the sealed database backup (relative to the \
                                lightning directory; default: warden-backup unless \
                                --warden-backup-postgres is given, or what `warden-backup \
                                setup` wrote)",
            },
            {
                "name": "warden-backup-postgres",
                "type": "string",
                "description": "PostgreSQL connection string (libpq key=value or \
                                postgresql:// URI) of a database to write the sealed backup \
                                to, alone or with --warden-backup-dir (then both are \
                                durable before each write is acknowledged)",
            },
            {
                "name": "warden-backup-pubkey",
                "type": "string",
                "description": "The Warden signer's node-backup public key (hex, 33 bytes): \
                                every record is sealed to it",
            },
            {
                "name": "warden-backup-snapshot-interval",
                "type": "int",
                "description": format!(
                    "Seconds between sealed snapshots of the whole database (0: only at \
                     start; default: {DEFAULT_SNAPSHOT_INTERVAL})"
                ),
            },
        ],
        "rpcmethods": [],
        "subscriptions": [],
        "hooks": [{"name": "db_write"}],
        "dynamic": false,
    })
}

/// `warden-backup setup`: writes the state file of the lightning directory `home` and, if the
/// database exists, seals a first snapshot of it to every destination. Returns the
/// snapshot's `data_version`.
pub fn setup(
    home: &Path,
    config: &Config,
    entropy: &mut dyn EntropySource,
) -> Result<Option<u64>, String> {
    let mut dests = config.open_destinations(home)?;
    let db_path = home.join(DB_FILE);
    let database = sqlite::read_data_version(&db_path).map_err(|e| e.to_string())?;
    for dest in &dests {
        if let Some(l) = dest.last().filter(|l| *l > database.unwrap_or(0)) {
            return Err(format!(
                "{} is at data_version {l}, ahead of the database {} at data_version {}",
                dest.describe(),
                db_path.display(),
                database.unwrap_or(0)
            ));
        }
    }
    let snapshot = match database {
        Some(_) => {
            let copy = sqlite::copy_database(&db_path).map_err(|e| e.to_string())?;
            let v = copy.data_version.unwrap_or(0);
            let blob = format::seal_snapshot(&config.pubkey, v, &copy.bytes, entropy)
                .map_err(|e| e.to_string())?;
            write_all(&mut dests, |dest| dest.snapshot_sealed(v, &blob))?;
            Some(v)
        }
        None => None,
    };
    config::save(home, config)?;
    Ok(snapshot)
}
