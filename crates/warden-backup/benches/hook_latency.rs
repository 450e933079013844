#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a bench binary reports its figures")]
//! The latency the `db_write` hook adds to each of lightningd's transactions: the round trip
//! lightningd waits for (request written, record sealed, made durable in every destination,
//! `continue` read), measured over the real plugin binary's stdin/stdout with realistic
//! statements, for each destination — a local directory on disk, on tmpfs, PostgreSQL, and
//! a directory and PostgreSQL together — next to the no-op baseline (the pipes and JSON
//! alone).
//!
//! All destinations are measured in one run, interleaved: one plugin process (and one
//! simulated node) per destination, and each round makes one hook call to each in turn, then
//! one no-op request to each. A disk or a server that is busier for a while (the machine is
//! shared) weighs on every destination alike, so the figures compare.
//!
//! `cargo bench -p warden-backup` (set `WARDEN_BENCH_DIR` to put the backup on another disk;
//! default: `target/` of this workspace). PostgreSQL: warden-store's throwaway server
//! (initdb + pg_ctl, `fsync = on`, reached over its Unix socket), or the server of
//! `WARDEN_TEST_POSTGRES_URL` (e.g. `host=127.0.0.1 port=5432 user=... dbname=...` for TCP
//! loopback); skipped, saying so, when neither is available.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{pubkey_hex, Node, PluginProc};
use warden_backup::dir::BackupDir;
use warden_backup::postgres::{PgBackup, PgTarget};
use warden_backup::sqlite::copy_database;

/// Hook calls per destination.
const CALLS: usize = 3_000;

fn common_pubkey() -> secp256k1::PublicKey {
    pubkey_hex().parse().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// One destination under measurement: its plugin, its node, what was measured.
struct Setup {
    label: String,
    dir: Option<PathBuf>,
    postgres: Option<String>,
    node: Node,
    /// Taken when the measurement ends.
    plugin: Option<PluginProc>,
    times: Vec<Duration>,
    base: Vec<Duration>,
    bytes: usize,
}

impl Setup {
    fn start(label: &str, dir: Option<PathBuf>, postgres: Option<String>) -> Setup {
        if let Some(dir) = &dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        let mut node = Node::new(1);
        let mut plugin = PluginProc::spawn_in(node.lightning_dir());
        let init = plugin.start_to(
            node.lightning_dir(),
            0,
            &pubkey_hex(),
            dir.as_deref(),
            postgres.as_deref(),
        );
        assert!(init.get("result").is_some(), "{init}");
        // Warm up: the schema and some rows.
        for _ in 0..50 {
            common::transact(&mut node, &mut plugin);
        }
        Setup {
            label: label.to_owned(),
            dir,
            postgres,
            node,
            plugin: Some(plugin),
            times: Vec::with_capacity(CALLS),
            base: Vec::with_capacity(CALLS),
            bytes: 0,
        }
    }

    fn hook_call(&mut self) {
        let writes = self.node.next_transaction();
        self.bytes += writes.iter().map(String::len).sum::<usize>();
        self.node.begin(&writes);
        let t = Instant::now();
        let plugin = self.plugin.as_mut().unwrap();
        let answer = plugin.db_write(self.node.data_version + 1, &writes);
        self.times.push(t.elapsed());
        assert_eq!(answer, "continue");
        self.node.commit();
    }

    /// A request the plugin answers with no work (the pipes and JSON alone).
    fn noop_call(&mut self) {
        let t = Instant::now();
        let reply =
            self.plugin.as_mut().unwrap().request("warden-bench-noop", serde_json::json!({}));
        self.base.push(t.elapsed());
        assert!(reply.get("error").is_some());
    }

    /// Reports; returns (label, hook p50/p99, baseline p50/p99).
    fn finish(mut self) -> (String, (Duration, Duration), (Duration, Duration)) {
        let label = self.label.clone();
        // What a due snapshot adds to the one hook call that takes it: a consistent copy of
        // the database, sealed, written and made durable (in-process, on the same places).
        let t = Instant::now();
        let copy = copy_database(&self.node.db_path()).unwrap();
        let copied = t.elapsed();
        let v = copy.data_version.unwrap();
        assert!(self.plugin.take().unwrap().finish().success());
        if let Some(dir) = &self.dir {
            let mut backup = BackupDir::open(dir, common_pubkey()).unwrap();
            backup.snapshot(v, &copy.bytes, &mut common::Rng(9)).unwrap();
        }
        if let Some(url) = &self.postgres {
            let target = PgTarget::parse(url).unwrap();
            let mut backup = PgBackup::open(&target, &common_pubkey()).unwrap();
            let blob = warden_backup::format::seal_snapshot(
                &common_pubkey(),
                v + 1,
                &copy.bytes,
                &mut common::Rng(9),
            )
            .unwrap();
            // One version ahead, so that it is a new epoch rather than the same state again.
            backup.snapshot_sealed(v + 1, &blob).unwrap();
        }
        let snapshot = t.elapsed();
        println!(
            "{label}: snapshot of a {} byte database: {snapshot:.1?} ({copied:.1?} to copy it)",
            copy.bytes.len()
        );
        let calls = self.times.len();
        let total: Duration = self.times.iter().sum();
        self.times.sort_unstable();
        self.base.sort_unstable();
        println!(
            "{label}: {calls} db_write calls, {:.0} SQL bytes each: mean {:.1?}, p50 {:.1?}, \
             p99 {:.1?}, max {:.1?}",
            self.bytes as f64 / calls as f64,
            total / calls as u32,
            percentile(&self.times, 0.5),
            percentile(&self.times, 0.99),
            self.times[calls - 1],
        );
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        (
            label,
            (percentile(&self.times, 0.5), percentile(&self.times, 0.99)),
            (percentile(&self.base, 0.5), percentile(&self.base, 0.99)),
        )
    }
}

/// How a connection string reaches its server, for the labels.
fn transport(url: &str) -> &'static str {
    if url.contains("host=/") || url.contains("host=%2F") {
        "Unix socket"
    } else {
        "TCP"
    }
}

fn main() {
    let disk = std::env::var_os("WARDEN_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/warden-backup-bench")
    });
    println!("directory (disk): under {}", disk.display());
    let mut setups = vec![Setup::start("directory (disk)", Some(disk.join("alone")), None)];
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        // tmpfs: fdatasync is free, what remains is the JSON round trip and the sealing.
        let dir = shm.join("warden-backup-bench");
        println!("directory (tmpfs, no disk flush): {}", dir.display());
        setups.push(Setup::start("directory (tmpfs)", Some(dir), None));
    }
    let server = warden_store::test_support::server();
    match &server {
        Some(server) => {
            let url = server.fresh_database("warden_backup_bench").unwrap();
            let label = format!("PostgreSQL ({})", transport(&url));
            println!("{label}: {}", PgTarget::parse(&url).unwrap());
            setups.push(Setup::start(&label, None, Some(url)));
            let url = server.fresh_database("warden_backup_bench_both").unwrap();
            let label = format!("directory (disk) + PostgreSQL ({})", transport(&url));
            setups.push(Setup::start(&label, Some(disk.join("with-postgres")), Some(url)));
        }
        None => println!("PostgreSQL: skipped (no server; see above)"),
    }
    for _ in 0..CALLS {
        for s in setups.iter_mut() {
            s.hook_call();
        }
        for s in setups.iter_mut() {
            s.noop_call();
        }
    }
    let figures: Vec<_> = setups.into_iter().map(Setup::finish).collect();
    println!();
    println!(
        "added latency per db_write call (hook minus the no-op baseline), {CALLS} interleaved \
         calls each:"
    );
    for (label, hook, base) in &figures {
        println!(
            "  {label:<44} p50 {:>9.1?} (hook {:>9.1?}, baseline {:>7.1?}); p99 {:>9.1?} \
             (hook {:>9.1?}, baseline {:>7.1?})",
            hook.0.saturating_sub(base.0),
            hook.0,
            base.0,
            hook.1.saturating_sub(base.1),
            hook.1,
            base.1
        );
    }
    if let Some((_, dir_disk, _)) = figures.first() {
        for (label, hook, _) in figures.iter().skip(1) {
            println!(
                "  {label:<44} p50 {:.2}x, p99 {:.2}x the directory on disk",
                hook.0.as_secs_f64() / dir_disk.0.as_secs_f64(),
                hook.1.as_secs_f64() / dir_disk.1.as_secs_f64()
            );
        }
    }
    drop(server);
}
