#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "bench code")]
#![allow(clippy::print_stdout, reason = "a bench binary reports its figures")]
//! The latency the `db_write` hook adds to each of lightningd's transactions: the round trip
//! lightningd waits for (request written, record sealed, made durable in every destination,
//! `continue` read), measured over the real plugin binary's stdin/stdout with realistic
//! statements, for each destination — a local directory on disk, on tmpfs, PostgreSQL, and
//! a directory and PostgreSQL together — each next to the no-op baseline of the same plugin
//! process (the pipes and JSON alone), all in one run.
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

fn common_pubkey() -> secp256k1::PublicKey {
    pubkey_hex().parse().unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Where the plugin under measurement writes.
struct Dest<'a> {
    dir: Option<&'a Path>,
    postgres: Option<&'a str>,
}

/// One destination's figures: p50 and p99 of the hook and of the baseline.
struct Figures {
    label: String,
    hook: (Duration, Duration),
    base: (Duration, Duration),
}

fn run(label: &str, dest: Dest<'_>, calls: usize) -> Figures {
    if let Some(dir) = dest.dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    let mut node = Node::new(1);
    let mut plugin = PluginProc::spawn_in(node.lightning_dir());
    let init = plugin.start_to(node.lightning_dir(), 0, &pubkey_hex(), dest.dir, dest.postgres);
    assert!(init.get("result").is_some(), "{init}");
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
    // database, sealed, written and made durable (measured in-process on the same place).
    let t = Instant::now();
    let copy = copy_database(&node.db_path()).unwrap();
    let copied = t.elapsed();
    let v = copy.data_version.unwrap();
    if let Some(dir) = dest.dir {
        let mut backup = BackupDir::open(dir, common_pubkey()).unwrap();
        backup.snapshot(v, &copy.bytes, &mut common::Rng(9)).unwrap();
    }
    if let Some(url) = dest.postgres {
        let mut backup = PgBackup::open(&PgTarget::parse(url).unwrap(), &common_pubkey()).unwrap();
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
    if let Some(dir) = dest.dir {
        let _ = std::fs::remove_dir_all(dir);
    }
    Figures {
        label: label.to_owned(),
        hook: (percentile(&times, 0.5), percentile(&times, 0.99)),
        base: (percentile(&base, 0.5), percentile(&base, 0.99)),
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
    println!("directory (disk): {}", disk.display());
    let mut all = Vec::new();
    all.push(run("directory (disk)", Dest { dir: Some(&disk), postgres: None }, 2_000));
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        // tmpfs: fdatasync is free, what remains is the JSON round trip and the sealing.
        let dir = shm.join("warden-backup-bench");
        println!("directory (tmpfs, no disk flush): {}", dir.display());
        all.push(run("directory (tmpfs)", Dest { dir: Some(&dir), postgres: None }, 10_000));
    }
    match warden_store::test_support::server() {
        Some(server) => {
            let url = server.fresh_database("warden_backup_bench").unwrap();
            let label = format!("PostgreSQL ({})", transport(&url));
            println!("{label}: {}", PgTarget::parse(&url).unwrap());
            all.push(run(&label, Dest { dir: None, postgres: Some(&url) }, 2_000));
            let url = server.fresh_database("warden_backup_bench_both").unwrap();
            let label = format!("directory (disk) + PostgreSQL ({})", transport(&url));
            all.push(run(&label, Dest { dir: Some(&disk), postgres: Some(&url) }, 2_000));
        }
        None => println!("PostgreSQL: skipped (no server; see above)"),
    }
    println!();
    println!(
        "added latency per db_write call (hook minus the no-op baseline of the same process):"
    );
    for f in &all {
        let added = |(h, b): (Duration, Duration)| h.saturating_sub(b);
        println!(
            "  {:<42} p50 {:>9.1?} (hook {:>9.1?}, baseline {:>7.1?}); p99 {:>9.1?} (hook {:>9.1?}, \
             baseline {:>7.1?})",
            f.label,
            added((f.hook.0, f.base.0)),
            f.hook.0,
            f.base.0,
            added((f.hook.1, f.base.1)),
            f.hook.1,
            f.base.1
        );
    }
}
