//! The real `warden run` against the real `warden-hsmd` in proxy mode:
//!
//! - `--metrics-listen`: driven through the proxy with answered requests and a refused one,
//!   then scraped with a plain TCP stream;
//! - a frame replayed on the link: dropped, logged, redialled (and counted);
//! - `[store] replicas` in `warden.toml` (and `WARDEN_REPLICA_POSTGRES`): a real PostgreSQL
//!   replica is written, and `warden status` shows the store's head and the replica's health.
//!
//! Needs both binaries: `cargo build -p warden-hsmd -p warden` first.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::print_stderr, reason = "test code")]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use warden_testkit::hsmd::HsmdError;
use warden_testkit::{locate_binary, perms, Hsmd};
use warden_wire::msg::{Ecdh, GetPerCommitmentPoint, NewChannel, NodeAnnouncementSig, SignMessage};
use warden_wire::{Message, NodeId};

const SECRET: [u8; 32] = [0x11; 32];
const DECOY_SECRET: [u8; 32] = [0x5a; 32];

fn warden(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("WARDEN_METRICS_LISTEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "warden {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A running child, killed on drop.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn hsmd_bin() -> PathBuf {
    locate_binary().unwrap_or_else(|e| panic!("{e} (run `cargo build -p warden-hsmd` first)"))
}

/// `warden-hsmd` in proxy mode pinning `signer_key`: it, its address and its link key.
fn proxy(signer_key: &str) -> (Hsmd, String, String) {
    let hsmd = Hsmd::spawn_with_env(
        &hsmd_bin(),
        &DECOY_SECRET,
        &[
            ("WARDEN_SIGNER_PUBKEY", signer_key),
            ("WARDEN_PROXY_LISTEN", "127.0.0.1:0"),
            ("WARDEN_PROXY_WAIT_SECS", "60"),
            ("WARDEN_PROXY_HEARTBEAT_SECS", "1"),
        ],
    )
    .unwrap();
    let addr_file = hsmd.dir().join("warden/proxy.addr");
    let addr = wait(|| std::fs::read_to_string(&addr_file).ok().filter(|a| !a.is_empty()));
    let out =
        Command::new(hsmd_bin()).arg("--proxy-pubkey").current_dir(hsmd.dir()).output().unwrap();
    assert!(out.status.success());
    (hsmd, addr, String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

/// The curve's generator, as a point to use.
fn generator() -> secp256k1::PublicKey {
    secp256k1::PublicKey::from_slice(&[
        0x02, 0x79, 0xbe, 0x66, 0x7e, 0xf9, 0xdc, 0xbb, 0xac, 0x55, 0xa0, 0x62, 0x95, 0xce, 0x87,
        0x0b, 0x07, 0x02, 0x9b, 0xfc, 0xdb, 0x2d, 0xce, 0x28, 0xd9, 0x59, 0xf2, 0x81, 0x5b, 0x16,
        0xf8, 0x17, 0x98,
    ])
    .unwrap()
}

/// Polls `f` (up to 30 s) until it gives a value.
fn wait<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One HTTP exchange over a plain TCP stream: the whole response.
fn http(addr: &str, request: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// The samples of an exposition text: `name{labels}` → value.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect()
}

/// A signer data directory paired with a new proxy: the directory (kept alive), its data
/// path, the proxy and its address.
fn paired() -> (tempfile::TempDir, PathBuf, Hsmd, String) {
    let tmp = tempfile::tempdir().unwrap();
    let import = tmp.path().join("import-me");
    std::fs::write(&import, SECRET).unwrap();
    let data = tmp.path().join("data");
    warden(&data, &["init", "--import-hsm-secret", import.to_str().unwrap()]);
    let pair = warden(&data, &["pair"]);
    let signer_key = pair.lines().find_map(|l| l.strip_prefix("Signer link key: ")).unwrap();
    let (hsmd, addr, proxy_key) = proxy(signer_key);
    warden(&data, &["pair", "--proxy-key", &proxy_key]);
    (tmp, data, hsmd, addr)
}

/// `warden run` dialling `addr` with metrics on, and its stderr as it comes.
fn run_signer(data: &Path, addr: &str) -> (Killed, Arc<Mutex<String>>) {
    run_signer_with(data, addr, &[])
}

/// [`run_signer`] with extra environment variables.
fn run_signer_with(data: &Path, addr: &str, env: &[(&str, &str)]) -> (Killed, Arc<Mutex<String>>) {
    let log = Arc::new(Mutex::new(String::new()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(data)
        .env_remove("WARDEN_REPLICA_POSTGRES")
        .envs(env.iter().copied())
        .args(["run", "--connect", addr, "--metrics-listen", "127.0.0.1:0"])
        .args(["--heartbeat-timeout", "5", "--max-backoff", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let sink = Arc::clone(&log);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = stderr.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    (Killed(child), log)
}

/// The metrics endpoint's address, from status.json.
fn metrics_addr(data: &Path) -> String {
    let url = wait(|| {
        let text = std::fs::read_to_string(data.join("status.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["metrics"].as_str().map(str::to_owned)
    });
    url.strip_prefix("http://").and_then(|u| u.strip_suffix("/metrics")).unwrap().to_owned()
}

#[test]
fn metrics_count_requests_refusals_latency_and_link() {
    let (_tmp, data, mut hsmd, addr) = paired();
    let (_signer, log) = run_signer(&data, &addr);

    // Requests through the proxy: init, two answered ones, and one the policy refuses.
    hsmd.init(&Hsmd::regtest_init()).unwrap();
    let master = hsmd.master();
    master
        .request_raw(SignMessage::NAME, &SignMessage { msg: b"m".to_vec() }.encode().unwrap())
        .unwrap();
    let point = generator();
    master.request_raw(Ecdh::NAME, &Ecdh { point }.encode().unwrap()).unwrap();
    // A channel: its record is written (the store's head moves) and it is served.
    let peer = NodeId::from(point);
    let master = hsmd.master();
    master
        .request_raw(NewChannel::NAME, &NewChannel { id: peer, dbid: 1 }.encode().unwrap())
        .unwrap();
    let mut channeld = hsmd.client("channeld", peer, 1, perms::CHANNELD).unwrap();
    channeld
        .request_raw(GetPerCommitmentPoint::NAME, &GetPerCommitmentPoint { n: 0 }.encode().unwrap())
        .unwrap();
    let mut gossipd = hsmd.global_client("gossipd", perms::GOSSIPD).unwrap();
    let bogus = NodeAnnouncementSig { announcement: vec![1, 2, 3] }.encode().unwrap();
    match gossipd.request_raw(NodeAnnouncementSig::NAME, &bogus) {
        Err(HsmdError::Refused { .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }

    // The endpoint's address, from status.json (also logged).
    let metrics_addr = metrics_addr(&data);
    assert!(log.lock().unwrap().contains("serving metrics"), "{}", log.lock().unwrap());

    let response = http(&metrics_addr, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Type: text/plain; version=0.0.4"), "{head}");
    let m = samples(body);
    let get = |k: &str| *m.get(k).unwrap_or_else(|| panic!("no {k} in\n{body}"));

    let sign = format!(
        "warden_requests_total{{msg_type=\"{}\",name=\"hsmd_sign_message\"}}",
        SignMessage::TYPE
    );
    assert_eq!(get(&sign), 1.0);
    let ecdh =
        format!("warden_requests_total{{msg_type=\"{}\",name=\"hsmd_ecdh_req\"}}", Ecdh::TYPE);
    assert_eq!(get(&ecdh), 1.0);
    let node_ann = format!(
        "warden_requests_total{{msg_type=\"{}\",name=\"{}\"}}",
        NodeAnnouncementSig::TYPE,
        NodeAnnouncementSig::NAME
    );
    assert_eq!(get(&node_ann), 1.0);
    assert_eq!(get("warden_refusals_total{rule=\"gossip-structure\"}"), 1.0);
    assert_eq!(get("warden_link_up"), 1.0);
    assert_eq!(get("warden_link_reconnects_total"), 0.0);
    assert_eq!(get("warden_channels"), 1.0);
    assert!(get("warden_store_head_sequence") >= 1.0, "new_channel was persisted:\n{body}");
    // Every request counted is in the histogram, and the buckets are cumulative.
    let requests: f64 =
        m.iter().filter(|(k, _)| k.starts_with("warden_requests_total{")).map(|(_, v)| v).sum();
    assert!(requests >= 4.0, "{body}");
    assert_eq!(get("warden_request_duration_seconds_count"), requests);
    assert_eq!(get("warden_request_duration_seconds_bucket{le=\"+Inf\"}"), requests);
    assert!(get("warden_request_duration_seconds_sum") > 0.0);
    let buckets: Vec<f64> = m
        .iter()
        .filter(|(k, _)| k.starts_with("warden_request_duration_seconds_bucket"))
        .map(|(_, v)| *v)
        .collect();
    assert!(buckets.iter().all(|b| *b <= requests));

    assert!(http(&metrics_addr, "GET /other HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
}

#[test]
fn a_non_loopback_metrics_address_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["run", "--connect", "127.0.0.1:1", "--metrics-listen", "0.0.0.0:9464"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    // The config key works the same way.
    std::fs::write(tmp.path().join("warden.toml"), "metrics-listen = \"10.1.2.3:9464\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--data-dir")
        .arg(tmp.path())
        .args(["run", "--connect", "127.0.0.1:1"])
        .env_remove("WARDEN_METRICS_LISTEN")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a loopback address"));
}

/// Copies `from` to `to` unchanged.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = from.read(&mut buf) {
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// A relay between `warden run` and the proxy that, on its first connection, sends the
/// proxy's first bytes after the handshake twice (a replayed frame: bytes already delivered,
/// at a place where the next frame is expected); later connections pass unchanged.
fn replaying_relay(proxy: String) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for (i, conn) in l.incoming().enumerate() {
            let Ok(signer) = conn else { return };
            let upstream = TcpStream::connect(&proxy).unwrap();
            let (s2, u2) = (signer.try_clone().unwrap(), upstream.try_clone().unwrap());
            std::thread::spawn(move || pump(signer, upstream));
            std::thread::spawn(move || {
                let (mut from, mut to) = (u2, s2);
                if i == 0 {
                    let mut act_two = [0u8; 50];
                    from.read_exact(&mut act_two).unwrap();
                    to.write_all(&act_two).unwrap();
                    let mut buf = [0u8; 4096];
                    let n = from.read(&mut buf).unwrap();
                    to.write_all(&buf[..n]).unwrap();
                    let _ = to.write_all(&buf[..n]);
                }
                pump(from, to);
            });
        }
    });
    addr
}

/// A frame replayed on the link: `warden run` drops the link, logs why (an authentication
/// failure), dials again, and then serves as before; the metrics count the reconnection.
#[test]
fn a_replayed_frame_drops_the_link_is_logged_and_the_signer_redials() {
    let (_tmp, data, mut hsmd, addr) = paired();
    let relay = replaying_relay(addr);
    let (_signer, log) = run_signer(&data, &relay);
    hsmd.init(&Hsmd::regtest_init()).unwrap();
    let reply = hsmd
        .master()
        .request_raw(SignMessage::NAME, &SignMessage { msg: b"m".to_vec() }.encode().unwrap());
    assert!(reply.is_ok(), "{reply:?}");
    let text = log.lock().unwrap().clone();
    let closed =
        text.lines().find(|l| l.contains("link closed")).unwrap_or_else(|| panic!("{text}"));
    assert!(closed.contains("failed authentication"), "{closed}");
    let body = http(&metrics_addr(&data), "GET /metrics HTTP/1.1\r\n\r\n");
    let m = samples(body.split_once("\r\n\r\n").unwrap().1);
    assert_eq!(m["warden_link_up"], 1.0);
    // At least the one after the replay; a loaded machine may add one more: the signer can
    // redial before the proxy has seen the first link close, and the proxy refuses a second
    // signer while one is connected.
    assert!(m["warden_link_reconnects_total"] >= 1.0, "{body}");
}

/// The status snapshot once its store section names `replica`.
fn status_with_replica(data: &Path, replica: &str) -> serde_json::Value {
    wait(|| {
        let text = std::fs::read_to_string(data.join("status.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let names = v["store"]["replicas"].as_array()?;
        names.iter().any(|r| r["name"] == replica).then_some(v)
    })
}

/// A replica named in `warden.toml` is opened at init and written with every batch;
/// `warden status` shows the store's head and the replica in step. The environment variable
/// still works when the config names none.
#[test]
fn a_postgres_replica_from_the_config_is_written_and_shown() {
    let Some(server) = warden_store::test_support::server() else {
        eprintln!("skipped: no PostgreSQL (set WARDEN_TEST_POSTGRES_URL or install postgresql)");
        return;
    };
    for from_env in [false, true] {
        let url = server
            .fresh_database(&format!("warden_run_{}_{}", u8::from(from_env), std::process::id()))
            .unwrap();
        let (_tmp, data, mut hsmd, addr) = paired();
        let (env, name): (Vec<(&str, &str)>, &str) = if from_env {
            (vec![("WARDEN_REPLICA_POSTGRES", url.as_str())], "postgres (WARDEN_REPLICA_POSTGRES)")
        } else {
            let toml = format!("[store]\nreplicas = [{:?}]\n", url);
            std::fs::write(data.join("warden.toml"), toml).unwrap();
            (vec![], "postgres (store.replicas[0])")
        };
        let (_signer, log) = run_signer_with(&data, &addr, &env);
        let reply = hsmd.init(&Hsmd::regtest_init());
        assert!(reply.is_ok(), "{reply:?}\n{}", log.lock().unwrap());
        let node_id = hsmd.node_id().unwrap();
        let peer = NodeId::from(generator());
        hsmd.master()
            .request_raw(NewChannel::NAME, &NewChannel { id: peer, dbid: 7 }.encode().unwrap())
            .unwrap();

        // The replica holds the store: the signed head and the channel record, as written.
        let db = warden_store::postgres::PgDatabase::connect(&url).unwrap();
        let id =
            warden_store::StoreId::new(warden_hsmd::durable::store_id_bytes(&node_id)).unwrap();
        let records = warden_store::Store::list(&db.store(id), &[]).unwrap();
        assert!(records.len() >= 2, "{} records on the replica", records.len());

        let v = status_with_replica(&data, name);
        let replica = v["store"]["replicas"].as_array().unwrap().iter().find(|r| r["name"] == name);
        assert_eq!(replica.unwrap()["lagging"], false, "{v}");
        assert!(!v.to_string().contains(&url), "the connection string is never shown");

        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--data-dir")
            .arg(&data)
            .arg("status")
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
        assert!(said.contains("Store head:      sequence"), "{said}");
        assert!(said.contains(&format!("Replica:         {name}: in step")), "{said}");
        assert!(said.contains("Metrics:         http://127.0.0.1:"), "{said}");
    }
}
