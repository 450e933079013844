//! Test support: a scripted lightningd that changes a real SQLite database shaped like Core
//! Lightning's and drives the real `warden-backup` binary over stdin/stdout as lightningd
//! does (`getmanifest`, `init`, one `db_write` per transaction, sent before the commit).

#![allow(dead_code, reason = "each test file uses a part")]

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};

use rusqlite::types::Value as SqlValue;
use rusqlite::Connection;
use serde_json::{json, Value};
use warden_core::rng::EntropySource;
use warden_core::seal::WardenKeys;
use warden_core::secret::Seed;

/// The test seed (a legacy 32-byte hsm_secret).
pub const SEED: [u8; 32] = [0x42; 32];

/// The node-backup public key of [`SEED`], hex.
pub fn pubkey_hex() -> String {
    WardenKeys::derive(&Seed::from_legacy(SEED)).unwrap().node_backup_pubkey().to_string()
}

/// A deterministic generator (SplitMix64): the workload and test entropy.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

impl EntropySource for Rng {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next() as u8;
        }
    }
}

/// Tables resembling Core Lightning's (a subset of their columns).
const SCHEMA: &[&str] = &[
    "CREATE TABLE vars (name VARCHAR(32), val VARCHAR(255), intval INTEGER, blobval BLOB, PRIMARY KEY (name))",
    "CREATE TABLE peers (id BIGSERIAL, node_id BLOB UNIQUE, address TEXT, feature_bits BLOB, PRIMARY KEY (id))",
    "CREATE TABLE channels (id BIGSERIAL, peer_id BIGINT REFERENCES peers(id) ON DELETE CASCADE, short_channel_id TEXT, funding_satoshi BIGINT, msatoshi_local BIGINT, state INTEGER, shachain_remote_id BIGINT, last_sig BLOB, PRIMARY KEY (id))",
    "CREATE TABLE channel_htlcs (id BIGSERIAL, channel_id BIGINT REFERENCES channels(id) ON DELETE CASCADE, channel_htlc_id BIGINT, direction INTEGER, msatoshi BIGINT, cltv_expiry INTEGER, payment_hash BLOB, payment_key BLOB, hstate INTEGER, PRIMARY KEY (id))",
    "CREATE TABLE invoices (id BIGSERIAL, state INTEGER, msatoshi BIGINT, payment_hash BLOB, payment_key BLOB, label TEXT, expiry_time BIGINT, bolt11 TEXT, description TEXT, PRIMARY KEY (id))",
    "INSERT INTO vars (name, intval) VALUES ('data_version', 0)",
];

/// Core Lightning's `db_data_version_incr` statement, as its expanded SQL.
fn incr(from: u64) -> String {
    format!("UPDATE vars SET intval = intval + 1 WHERE name = 'data_version' AND intval = {from}")
}

fn blob(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("X'{hex}'")
}

fn text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The scripted node: a lightning directory with its database, and the workload generator.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub conn: Connection,
    pub data_version: u64,
    rng: Rng,
    peers: Vec<i64>,
    channels: Vec<i64>,
    /// Each channel's peer.
    channel_peers: std::collections::HashMap<i64, i64>,
    htlcs: Vec<i64>,
    invoices: Vec<i64>,
    next_id: i64,
}

impl Node {
    pub fn new(seed: u64) -> Node {
        // tmpfs when there is one: the logic under test is the same, and each fdatasync costs
        // microseconds instead of the disk's milliseconds (the bench measures those).
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::tempdir_in(shm).unwrap()
        } else {
            tempfile::tempdir().unwrap()
        };
        let conn = Connection::open(dir.path().join("lightningd.sqlite3")).unwrap();
        // The simulated lightningd's own durability is not under test.
        conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON").unwrap();
        Node {
            dir,
            conn,
            data_version: 0,
            rng: Rng(seed),
            peers: Vec::new(),
            channels: Vec::new(),
            channel_peers: std::collections::HashMap::new(),
            htlcs: Vec::new(),
            invoices: Vec::new(),
            next_id: 1,
        }
    }

    /// Reopens the database file (after it was replaced, e.g. by a restore).
    pub fn reopen(&mut self) {
        self.conn = Connection::open(self.db_path()).unwrap();
        self.conn.execute_batch("PRAGMA synchronous = OFF; PRAGMA foreign_keys = ON").unwrap();
    }

    pub fn lightning_dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("lightningd.sqlite3")
    }

    pub fn backup_dir(&self) -> PathBuf {
        self.dir.path().join("warden-backup")
    }

    /// The next transaction's statements (the first creates the schema), ending with the
    /// data_version increment, as lightningd's `db_write` carries them.
    pub fn next_transaction(&mut self) -> Vec<String> {
        let mut writes = Vec::new();
        if self.data_version == 0 {
            writes.extend(SCHEMA.iter().map(|s| (*s).to_owned()));
        } else {
            let ops = 1 + self.rng.below(4);
            for _ in 0..ops {
                if let Some(w) = self.random_op() {
                    writes.push(w);
                }
            }
        }
        writes.push(incr(self.data_version));
        writes
    }

    fn pick(rng: &mut Rng, v: &[i64]) -> Option<(usize, i64)> {
        if v.is_empty() {
            return None;
        }
        let i = rng.below(v.len() as u64) as usize;
        Some((i, v[i]))
    }

    fn random_op(&mut self) -> Option<String> {
        let id = self.next_id;
        let r = &mut self.rng;
        let op = r.below(100);
        let stmt = match op {
            0..=9 => {
                self.next_id += 1;
                self.peers.push(id);
                let node_id = r.bytes(33);
                let addr = format!("10.0.{}.{}:9735", r.below(255), r.below(255));
                format!(
                    "INSERT INTO peers (id, node_id, address, feature_bits) VALUES ({id}, {}, {}, {})",
                    blob(&node_id),
                    text(&addr),
                    blob(&r.bytes(4))
                )
            }
            10..=19 => {
                let (_, peer) = Self::pick(r, &self.peers)?;
                self.next_id += 1;
                self.channels.push(id);
                self.channel_peers.insert(id, peer);
                let scid = format!("{}x{}x{}", 800_000 + r.below(1000), r.below(3000), r.below(4));
                format!(
                    "INSERT INTO channels (id, peer_id, short_channel_id, funding_satoshi, msatoshi_local, state, shachain_remote_id, last_sig) VALUES ({id}, {peer}, {}, {}, {}, 2, {}, {})",
                    text(&scid),
                    r.below(10_000_000),
                    r.below(10_000_000_000),
                    r.below(1 << 40),
                    blob(&r.bytes(64))
                )
            }
            20..=49 => {
                let (_, ch) = Self::pick(r, &self.channels)?;
                self.next_id += 1;
                self.htlcs.push(id);
                format!(
                    "INSERT INTO channel_htlcs (id, channel_id, channel_htlc_id, direction, msatoshi, cltv_expiry, payment_hash, payment_key, hstate) VALUES ({id}, {ch}, {}, {}, {}, {}, {}, NULL, 1)",
                    r.below(1000),
                    r.below(2),
                    r.below(1_000_000_000),
                    800_000 + r.below(2000),
                    blob(&r.bytes(32))
                )
            }
            50..=64 => {
                let (_, h) = Self::pick(r, &self.htlcs)?;
                format!(
                    "UPDATE channel_htlcs SET hstate = {}, payment_key = {} WHERE id = {h}",
                    r.below(20),
                    blob(&r.bytes(32))
                )
            }
            65..=74 => {
                let (i, h) = Self::pick(r, &self.htlcs)?;
                self.htlcs.swap_remove(i);
                format!("DELETE FROM channel_htlcs WHERE id = {h}")
            }
            75..=84 => {
                let (_, ch) = Self::pick(r, &self.channels)?;
                format!(
                    "UPDATE channels SET msatoshi_local = {}, state = {} WHERE id = {ch}",
                    r.below(10_000_000_000),
                    r.below(12)
                )
            }
            85..=94 => {
                self.next_id += 1;
                self.invoices.push(id);
                let label = format!("inv-{id} it's \"quoted\" ⚡ {}", r.below(1000));
                format!(
                    "INSERT INTO invoices (id, state, msatoshi, payment_hash, payment_key, label, expiry_time, bolt11, description) VALUES ({id}, 0, {}, {}, {}, {}, {}, {}, NULL)",
                    r.below(1_000_000_000),
                    blob(&r.bytes(32)),
                    blob(&r.bytes(32)),
                    text(&label),
                    1_700_000_000 + r.below(1_000_000),
                    text(&format!("lnbc{}n1p{}", r.below(100_000), r.below(u64::MAX)))
                )
            }
            95..=97 => {
                let (_, inv) = Self::pick(r, &self.invoices)?;
                format!("UPDATE invoices SET state = 1 WHERE id = {inv}")
            }
            _ => {
                let (i, p) = Self::pick(r, &self.peers)?;
                if self.channels.len() > 50 {
                    return None;
                }
                self.peers.swap_remove(i);
                // Cascades to the peer's channels and their HTLCs: the channels are known
                // from memory (one inserted earlier in this same transaction is not in the
                // database yet).
                let peers = &self.channel_peers;
                self.channels.retain(|c| peers.get(c) != Some(&p));
                // HTLC ids are re-read after the commit (`refresh_htlcs_if_needed`).
                format!("DELETE FROM peers WHERE id = {p}")
            }
        };
        Some(stmt)
    }

    /// Begins the transaction and executes `writes` (uncommitted), as lightningd has when it
    /// calls the hook.
    pub fn begin(&mut self, writes: &[String]) {
        self.conn.execute_batch("BEGIN").unwrap();
        for w in writes {
            self.conn.execute_batch(w).unwrap();
        }
    }

    /// Commits the transaction begun by [`Node::begin`].
    pub fn commit(&mut self) {
        self.conn.execute_batch("COMMIT").unwrap();
        self.data_version += 1;
        self.refresh_htlcs_if_needed();
    }

    /// Rolls the transaction back (lightningd stopped before committing).
    pub fn rollback(&mut self) {
        self.conn.execute_batch("ROLLBACK").unwrap();
    }

    fn refresh_htlcs_if_needed(&mut self) {
        // Cascaded deletes may have removed HTLCs: re-read the ids (cheap at these sizes
        // and only after a peer deletion changed the channel list).
        let n: i64 =
            self.conn.query_row("SELECT count(*) FROM channel_htlcs", [], |r| r.get(0)).unwrap();
        if n as usize != self.htlcs.len() {
            let mut st = self.conn.prepare("SELECT id FROM channel_htlcs").unwrap();
            self.htlcs = st.query_map([], |row| row.get(0)).unwrap().map(|x| x.unwrap()).collect();
        }
    }
}

/// The plugin process, driven as lightningd drives it.
pub struct PluginProc {
    pub child: Child,
    stdin: ChildStdin,
    stdout: serde_json::StreamDeserializer<
        'static,
        serde_json::de::IoRead<BufReader<ChildStdout>>,
        Value,
    >,
    next_id: u64,
    /// The `log` notifications received, as (level, message).
    pub logs: Vec<(String, String)>,
}

impl PluginProc {
    /// Starts the plugin in `lightning_dir`, as lightningd does.
    pub fn spawn_in(lightning_dir: &Path) -> PluginProc {
        Self::spawn_cmd(
            Command::new(env!("CARGO_BIN_EXE_warden-backup")).current_dir(lightning_dir),
        )
    }

    pub fn spawn() -> PluginProc {
        Self::spawn_cmd(&mut Command::new(env!("CARGO_BIN_EXE_warden-backup")))
    }

    fn spawn_cmd(cmd: &mut Command) -> PluginProc {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let stdout = serde_json::Deserializer::from_reader(BufReader::new(stdout)).into_iter();
        PluginProc { child, stdin, stdout, next_id: 1, logs: Vec::new() }
    }

    /// Sends a request and returns the whole response (with `result` or `error`).
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        // lightningd separates its messages with a blank line.
        let mut bytes = serde_json::to_vec(&msg).unwrap();
        bytes.extend_from_slice(b"\n\n");
        self.stdin.write_all(&bytes).unwrap();
        self.stdin.flush().unwrap();
        loop {
            let reply = self.stdout.next().expect("plugin closed stdout").unwrap();
            if reply.get("method").and_then(Value::as_str) == Some("log") {
                let p = &reply["params"];
                self.logs.push((
                    p["level"].as_str().unwrap().to_owned(),
                    p["message"].as_str().unwrap().to_owned(),
                ));
                continue;
            }
            assert_eq!(reply["jsonrpc"], "2.0");
            assert_eq!(reply["id"], json!(id), "{reply}");
            return reply;
        }
    }

    /// `getmanifest` then `init` with the options; returns init's response.
    pub fn start(&mut self, lightning_dir: &Path, interval: u64, pubkey: &str) -> Value {
        self.start_in(lightning_dir, interval, pubkey, None)
    }

    /// [`PluginProc::start`] with `--warden-backup-dir` set.
    pub fn start_in(
        &mut self,
        lightning_dir: &Path,
        interval: u64,
        pubkey: &str,
        backup_dir: Option<&Path>,
    ) -> Value {
        self.start_to(lightning_dir, interval, pubkey, backup_dir, None)
    }

    /// [`PluginProc::start`] with `--warden-backup-dir` and `--warden-backup-postgres` as
    /// given (neither: the default directory; PostgreSQL alone: no directory).
    pub fn start_to(
        &mut self,
        lightning_dir: &Path,
        interval: u64,
        pubkey: &str,
        backup_dir: Option<&Path>,
        postgres: Option<&str>,
    ) -> Value {
        let mut options = json!({
            "warden-backup-pubkey": pubkey,
            "warden-backup-snapshot-interval": interval,
        });
        if let Some(dir) = backup_dir {
            options["warden-backup-dir"] = json!(dir.to_str().unwrap());
        }
        if let Some(url) = postgres {
            options["warden-backup-postgres"] = json!(url);
        }
        self.getmanifest();
        self.init_with(lightning_dir, options)
    }

    /// `getmanifest`, checking the hook is registered.
    pub fn getmanifest(&mut self) {
        let manifest = self.request("getmanifest", json!({"allow-deprecated-apis": false}));
        assert_eq!(manifest["result"]["hooks"][0]["name"], "db_write");
    }

    /// `init` with the given options object.
    pub fn init_with(&mut self, lightning_dir: &Path, options: Value) -> Value {
        self.request(
            "init",
            json!({
                "options": options,
                "configuration": {
                    "lightning-dir": lightning_dir.to_str().unwrap(),
                    "rpc-file": "lightning-rpc",
                    "startup": true,
                    "network": "regtest",
                },
            }),
        )
    }

    /// One `db_write` hook call; returns the hook's `result` string.
    pub fn db_write(&mut self, data_version: u64, writes: &[String]) -> String {
        let reply =
            self.request("db_write", json!({"data_version": data_version, "writes": writes}));
        reply["result"]["result"].as_str().unwrap().to_owned()
    }

    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Closes stdin (lightningd exiting) and waits.
    pub fn finish(mut self) -> ExitStatus {
        drop(self.stdin);
        self.child.wait().unwrap()
    }
}

/// One full transaction: begin, hook, commit on `continue`.
pub fn transact(node: &mut Node, plugin: &mut PluginProc) {
    let writes = node.next_transaction();
    node.begin(&writes);
    let answer = plugin.db_write(node.data_version + 1, &writes);
    assert_eq!(answer, "continue", "data_version {}", node.data_version + 1);
    node.commit();
}

/// Every row of every table, with the schema, in a comparable form.
pub fn dump(path: &Path) -> Vec<(String, Vec<Vec<SqlValue>>)> {
    let conn = Connection::open(path).unwrap();
    let mut tables: Vec<(String, String)> = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|x| x.unwrap())
        .collect();
    tables.sort();
    let mut out = Vec::new();
    for (name, sql) in tables {
        let mut st = conn.prepare(&format!("SELECT * FROM \"{name}\" ORDER BY rowid")).unwrap();
        let cols = st.column_count();
        let rows: Vec<Vec<SqlValue>> = st
            .query_map([], |r| (0..cols).map(|i| r.get::<_, SqlValue>(i)).collect())
            .unwrap()
            .map(|x| x.unwrap())
            .collect();
        out.push((format!("{name}: {sql}"), rows));
    }
    out
}

/// Writes the test seed as a legacy `hsm_secret` file.
pub fn seed_file(dir: &Path) -> PathBuf {
    let path = dir.join("hsm_secret");
    std::fs::write(&path, SEED).unwrap();
    path
}

/// A database of its own on warden-store's throwaway PostgreSQL server (`None`: skipped, only
/// outside CI, as warden-store's own tests decide: `WARDEN_TEST_POSTGRES_BIN` or `CI=true`
/// make a missing server a failure).
pub struct PgDb {
    pub url: String,
    _server: std::sync::Arc<warden_store::test_support::PgServer>,
}

impl PgDb {
    pub fn new(name: &str) -> Option<PgDb> {
        let server = warden_store::test_support::server()?;
        let name = format!("wb_{name}_{}", std::process::id());
        let url = server.fresh_database(&name).unwrap();
        Some(PgDb { url, _server: server })
    }

    /// A blocking client to read and change the tables behind the plugin's back.
    pub fn raw(&self) -> Raw {
        Raw::connect(&self.url)
    }
}

/// A blocking PostgreSQL client for the tests.
pub struct Raw {
    client: tokio_postgres::Client,
    rt: tokio::runtime::Runtime,
}

impl Raw {
    pub fn connect(url: &str) -> Raw {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            client
        });
        Raw { client, rt }
    }

    pub fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, tokio_postgres::Error> {
        self.rt.block_on(self.client.execute(sql, params))
    }

    pub fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Vec<tokio_postgres::Row> {
        self.rt.block_on(self.client.query(sql, params)).unwrap()
    }

    /// The newest epoch of the backup of `pubkey` (hex).
    pub fn newest_epoch(&self, pubkey: &str) -> i64 {
        let id = pubkey_bytes(pubkey);
        let rows = self.query(
            "SELECT max(epoch) FROM warden_backup_snapshots WHERE backup_id = $1",
            &[&id.as_slice()],
        );
        rows[0].get::<_, Option<i64>>(0).expect("no snapshot")
    }

    /// The records of the newest epoch, in version order.
    pub fn records(&self, pubkey: &str) -> Vec<warden_backup::format::StoredRecord> {
        let id = pubkey_bytes(pubkey);
        let epoch = self.newest_epoch(pubkey);
        self.query(
            "SELECT data_version, blob FROM warden_backup_records \
             WHERE backup_id = $1 AND epoch = $2 ORDER BY data_version",
            &[&id.as_slice(), &epoch],
        )
        .iter()
        .map(|r| warden_backup::format::StoredRecord {
            data_version: r.get::<_, i64>(0) as u64,
            offset: 0,
            blob: r.get(1),
        })
        .collect()
    }

    /// Replaces the records of the newest epoch with `records` (as an attacker, or a broken
    /// copy, with full rights on the tables would).
    pub fn write_records(
        &self,
        pubkey: &str,
        records: &[warden_backup::format::StoredRecord],
    ) -> Result<(), tokio_postgres::Error> {
        let id = pubkey_bytes(pubkey);
        let epoch = self.newest_epoch(pubkey);
        self.execute(
            "DELETE FROM warden_backup_records WHERE backup_id = $1 AND epoch = $2",
            &[&id.as_slice(), &epoch],
        )?;
        for r in records {
            self.execute(
                "INSERT INTO warden_backup_records (backup_id, epoch, data_version, blob) \
                 VALUES ($1, $2, $3, $4)",
                &[&id.as_slice(), &epoch, &(r.data_version as i64), &r.blob],
            )?;
        }
        Ok(())
    }

    /// The newest snapshot's blob, and a setter for it.
    pub fn snapshot_blob(&self, pubkey: &str) -> Vec<u8> {
        let id = pubkey_bytes(pubkey);
        let epoch = self.newest_epoch(pubkey);
        self.query(
            "SELECT blob FROM warden_backup_snapshots WHERE backup_id = $1 AND epoch = $2",
            &[&id.as_slice(), &epoch],
        )[0]
        .get(0)
    }

    pub fn set_snapshot_blob(&self, pubkey: &str, blob: &[u8]) {
        let id = pubkey_bytes(pubkey);
        let epoch = self.newest_epoch(pubkey);
        let n = self
            .execute(
                "UPDATE warden_backup_snapshots SET blob = $3 WHERE backup_id = $1 AND epoch = $2",
                &[&id.as_slice(), &epoch, &blob],
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    /// Ends the plugin's connections (as a server restart would).
    pub fn terminate_plugin_connections(&self) -> usize {
        self.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = 'warden-backup' AND datname = current_database()",
            &[],
        )
        .len()
    }
}

/// The 33 bytes of a hex public key (a backup's `backup_id`).
pub fn pubkey_bytes(hex: &str) -> Vec<u8> {
    let key: secp256k1::PublicKey = hex.parse().unwrap();
    key.serialize().to_vec()
}

/// The PostgreSQL source of the backup sealed to [`SEED`]'s key.
pub fn pg_source(url: &str) -> warden_backup::restore::BackupSource {
    warden_backup::restore::BackupSource::Postgres {
        target: warden_backup::postgres::PgTarget::parse(url).unwrap(),
        backup_id: pubkey_hex().parse().unwrap(),
    }
}
