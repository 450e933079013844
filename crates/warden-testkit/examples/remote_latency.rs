#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    reason = "bench binary"
)]
//! Latency of the remote signer against local mode, measured in the same run on loopback.
//!
//! Two scripted nodes run side by side with the same secret and the same channel: one drives
//! `warden-hsmd` in local mode, the other `warden-hsmd` in proxy mode served by a real
//! `warden run` over warden-link. Requests alternate between the two, so both see the same
//! machine load. Timed, per mode:
//! - `ecdh` on connectd's client: one request's round trip (the link's fixed cost);
//! - one commitment update round (channeld's `sign_remote_commitment_tx`, HTLC signatures,
//!   `validate_revocation`, `validate_commitment_tx`, `revoke_commitment_tx`, the watchtower's
//!   penalty signature), with random HTLC changes reproducible from the round number; both
//!   modes persist every change durably (fsync).
//!
//! Run with release binaries:
//! `cargo build --release -p warden-hsmd -p warden && WARDEN_HSMD_BIN=$PWD/target/release/warden-hsmd
//! cargo run --release -p warden-testkit --example remote_latency [ROUNDS]`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use warden_core::tx::ChannelType;
use warden_testkit::flows::OUR_SECRET;
use warden_testkit::{locate_binary, perms, ChannelParams, Funder, Hsmd, Node};
use warden_wire::msg::{Ecdh, EcdhReply};

fn warden(bin: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(bin).arg("--data-dir").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "warden {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A proxy-mode node served by `warden run` (killed on drop with the returned child).
fn remote_node(hsmd_bin: &Path, params: ChannelParams) -> (Node, Child, tempfile::TempDir) {
    let warden_bin: PathBuf = hsmd_bin.with_file_name("warden");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let import = tmp.path().join("import");
    std::fs::write(&import, OUR_SECRET).unwrap();
    warden(&warden_bin, &data, &["init", "--import-hsm-secret", import.to_str().unwrap()]);
    let pair = warden(&warden_bin, &data, &["pair"]);
    let key = pair.lines().find_map(|l| l.strip_prefix("Signer link key: ")).unwrap().to_owned();
    let hsmd = Hsmd::spawn_with_env(
        hsmd_bin,
        &[0x5a; 32],
        &[("WARDEN_SIGNER_PUBKEY", &key), ("WARDEN_PROXY_LISTEN", "127.0.0.1:0")],
    )
    .unwrap();
    let addr_file = hsmd.dir().join("warden/proxy.addr");
    let addr = loop {
        match std::fs::read_to_string(&addr_file) {
            Ok(a) if !a.is_empty() => break a,
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out =
        Command::new(hsmd_bin).arg("--proxy-pubkey").current_dir(hsmd.dir()).output().unwrap();
    let proxy_key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    warden(&warden_bin, &data, &["pair", "--proxy-key", &proxy_key]);
    let child = Command::new(&warden_bin)
        .arg("--data-dir")
        .arg(&data)
        .args(["run", "--connect", &addr])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (Node::attach(hsmd, params).unwrap(), child, tmp)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, local: &mut [Duration], remote: &mut [Duration]) {
    local.sort_unstable();
    remote.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        let (l, r) = (percentile(local, p), percentile(remote, p));
        println!(
            "{what:<18} {name}: local {:>9.1} us   remote {:>9.1} us   ratio {:>5.2}   (+{:.1} us)",
            us(l),
            us(r),
            us(r) / us(l),
            us(r) - us(l)
        );
    }
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let bin = locate_binary().unwrap_or_else(|e| panic!("{e}"));
    println!("warden-hsmd: {}", bin.display());
    let params = || ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut local = Node::start(&bin, params()).unwrap();
    let (mut remote, mut child, _tmp) = remote_node(&bin, params());
    local.open().unwrap();
    remote.open().unwrap();

    let point = local.channel.peer().node_id().to_public_key();
    let mut lc = local.hsmd.global_client("connectd", perms::CONNECTD).unwrap();
    let mut rc = remote.hsmd.global_client("connectd", perms::CONNECTD).unwrap();
    let (mut l_ecdh, mut r_ecdh) = (Vec::new(), Vec::new());
    for i in 0..(rounds * 10 + 100) {
        let t = Instant::now();
        let a: EcdhReply = lc.call(&Ecdh { point }).unwrap();
        let tl = t.elapsed();
        let t = Instant::now();
        let b: EcdhReply = rc.call(&Ecdh { point }).unwrap();
        let tr = t.elapsed();
        assert_eq!(a.ss.expose_secret(), b.ss.expose_secret());
        if i >= 100 {
            l_ecdh.push(tl);
            r_ecdh.push(tr);
        }
    }

    let (mut l_round, mut r_round) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let seed = 1000 + i as u64;
        let t = Instant::now();
        local.update_rounds(1, seed).unwrap();
        l_round.push(t.elapsed());
        let t = Instant::now();
        remote.update_rounds(1, seed).unwrap();
        r_round.push(t.elapsed());
    }
    local.assert_clean().unwrap();
    remote.assert_clean().unwrap();
    println!("{} ecdh requests and {rounds} update rounds per mode, interleaved", l_ecdh.len());
    report("ecdh", &mut l_ecdh, &mut r_ecdh);
    report("update round", &mut l_round, &mut r_round);
    let _ = child.kill();
    let _ = child.wait();
}
