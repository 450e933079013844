#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a bench binary reports its figures")]
//! The latency the `db_write` hook adds to each of lightningd's transactions: the round trip
//! lightningd waits for (request written, record sealed, appended and fdatasync'ed, `continue`
//! read), measured over the real plugin binary's stdin/stdout with realistic statements.
//!
//! `cargo bench -p warden-backup` (set `WARDEN_BENCH_DIR` to put the backup on another disk;
//! default: `target/` of this workspace).

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{pubkey_hex, Node, PluginProc};
use warden_backup::dir::BackupDir;
use warden_backup::sqlite::copy_database;

fn common_pubkey() -> secp256k1::PublicKey {
    pubkey_hex().parse().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn run(label: &str, backup_dir: &Path, calls: usize) {
    let _ = std::fs::remove_dir_all(backup_dir);
    let mut node = Node::new(1);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    plugin.start_in(node.lightning_dir(), 0, &pubkey_hex(), Some(backup_dir));
    // Warm up: the schema and some rows.
    for _ in 0..50 {
        common::transact(&mut node, &mut plugin);
    }
    let mut times = Vec::with_capacity(calls);
    let mut bytes = 0usize;
    for _ in 0..calls {
        let writes = node.next_transaction();
        bytes += writes.iter().map(String::len).sum::<usize>();
        node.begin(&writes);
        let t = Instant::now();
        let answer = plugin.db_write(node.data_version + 1, &writes);
        times.push(t.elapsed());
        assert_eq!(answer, "continue");
        node.commit();
    }
    // Baseline: a request the plugin answers with no work (the pipes and JSON alone).
    let mut base = Vec::with_capacity(calls);
    for _ in 0..calls {
        let t = Instant::now();
        let reply = plugin.request("warden-bench-noop", serde_json::json!({}));
        base.push(t.elapsed());
        assert!(reply.get("error").is_some());
    }
    base.sort_unstable();
    plugin.finish();

    // What a due snapshot adds to the one hook call that takes it: a consistent copy of the
    // database, sealed, written and fsync'ed (measured in-process on the same directory).
    let mut dir = BackupDir::open(backup_dir, common_pubkey()).unwrap();
    let t = Instant::now();
    let copy = copy_database(&node.db_path()).unwrap();
    let copied = t.elapsed();
    dir.snapshot(copy.data_version.unwrap(), &copy.bytes, &mut common::Rng(9)).unwrap();
    let snapshot = t.elapsed();
    println!(
        "{label}: snapshot of a {} byte database: {snapshot:.1?} ({copied:.1?} to copy it)",
        copy.bytes.len()
    );
    let total: Duration = times.iter().sum();
    times.sort_unstable();
    println!(
        "{label}: {calls} db_write calls, {:.0} SQL bytes each: mean {:.1?}, p50 {:.1?}, \
         p99 {:.1?}, max {:.1?}",
        bytes as f64 / calls as f64,
        total / calls as u32,
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times[times.len() - 1],
    );
    println!(
        "{label}: baseline (no-op request, same pipes): p50 {:.1?}, p99 {:.1?}",
        percentile(&base, 0.5),
        percentile(&base, 0.99)
    );
    let _ = std::fs::remove_dir_all(backup_dir);
}

fn main() {
    let disk = std::env::var_os("WARDEN_BENCH_DIR").map(PathBuf::from).unwrap_or_else(|| {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tmp/warden-backup-bench")
    });
    run(&format!("local directory {}", disk.display()), &disk, 2_000);
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        // tmpfs: fdatasync is free, what remains is the JSON round trip and the sealing.
        run("tmpfs /dev/shm (no disk flush)", &shm.join("warden-backup-bench"), 10_000);
    }
}
