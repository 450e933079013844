//! The remote signer end to end: the real `warden-hsmd` in proxy mode next to the scripted
//! node, and the real `warden run` dialling in over warden-link on loopback.
//!
//! - the same flow (open, update rounds, cooperative close) answers exactly as local mode;
//! - `warden run` killed (SIGKILL) and restarted again and again in the middle of a flow:
//!   requests wait, are re-sent and answered, and every answer still verifies;
//! - a signer with another key, or pinning another proxy key, is refused.
//!
//! Needs both binaries: `cargo build -p warden-hsmd -p warden` first.
#![cfg(feature = "flows")]
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::print_stderr, reason = "test code")]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;
use warden_core::tx::ChannelType;
use warden_testkit::flows::OUR_SECRET;
use warden_testkit::hsmd::HsmdError;
use warden_testkit::rng::TestRng;
use warden_testkit::{locate_binary, perms, ChannelParams, Funder, Hsmd, Node};
use warden_wire::msg::{Ecdh, GetChannelBasepoints, SignMessage};
use warden_wire::Message;

/// A secret for the proxy's lightning directory that is *not* the node's: in proxy mode it
/// must not be used (the node id check of [`Node::attach`] would fail).
const DECOY_SECRET: [u8; 32] = [0x5a; 32];

fn hsmd_bin() -> PathBuf {
    locate_binary().unwrap_or_else(|e| panic!("{e}"))
}

fn warden_bin() -> PathBuf {
    let p = hsmd_bin().with_file_name("warden");
    assert!(p.is_file(), "{} not found: run `cargo build -p warden` first", p.display());
    p
}

fn warden(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(warden_bin()).arg("--data-dir").arg(dir).args(args).output().unwrap();
    assert!(out.status.success(), "warden {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A signer data directory holding `secret` (imported as a Core Lightning hsm_secret), and its
/// link key.
fn signer_dir(secret: &[u8]) -> (TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("import-me");
    std::fs::write(&file, secret).unwrap();
    let data = dir.path().join("data");
    warden(&data, &["init", "--import-hsm-secret", file.to_str().unwrap()]);
    let pair = warden(&data, &["pair"]);
    let key = pair
        .lines()
        .find_map(|l| l.strip_prefix("Signer link key: "))
        .unwrap_or_else(|| panic!("no key in {pair}"))
        .to_owned();
    (dir, key)
}

fn data(dir: &TempDir) -> PathBuf {
    dir.path().join("data")
}

/// `warden-hsmd` in proxy mode pinning `signer_key`, its address and its own key.
fn proxy(signer_key: &str, wait_secs: &str) -> (Hsmd, String, String) {
    proxy_with(signer_key, wait_secs, &[])
}

/// [`proxy`] with more environment variables.
fn proxy_with(signer_key: &str, wait_secs: &str, extra: &[(&str, &str)]) -> (Hsmd, String, String) {
    let mut env = vec![
        ("WARDEN_SIGNER_PUBKEY", signer_key),
        ("WARDEN_PROXY_LISTEN", "127.0.0.1:0"),
        ("WARDEN_PROXY_WAIT_SECS", wait_secs),
        ("WARDEN_PROXY_HEARTBEAT_SECS", "1"),
    ];
    env.extend_from_slice(extra);
    let hsmd = Hsmd::spawn_with_env(&hsmd_bin(), &DECOY_SECRET, &env).unwrap();
    let addr_file = hsmd.dir().join("warden/proxy.addr");
    let start = Instant::now();
    let addr = loop {
        match std::fs::read_to_string(&addr_file) {
            Ok(a) if !a.is_empty() => break a,
            _ if start.elapsed() > Duration::from_secs(30) => panic!("the proxy did not start"),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let out =
        Command::new(hsmd_bin()).arg("--proxy-pubkey").current_dir(hsmd.dir()).output().unwrap();
    assert!(out.status.success());
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    (hsmd, addr, key)
}

fn run_signer(data: &Path, addr: &str, stderr: Stdio) -> Child {
    Command::new(warden_bin())
        .arg("--data-dir")
        .arg(data)
        .args(["run", "--connect", addr, "--heartbeat-timeout", "5", "--max-backoff", "1"])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Collects a child's stderr as it comes.
fn collect(child: &mut Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let (mut err, sink) = (child.stderr.take().unwrap(), Arc::clone(&log));
    std::thread::spawn(move || {
        let mut buf = [0u8; 1024];
        while let Ok(n @ 1..) = err.read(&mut buf) {
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    log
}

/// Waits (up to 30 s) until `log` contains `phrase`.
fn wait_for(log: &Mutex<String>, phrase: &str) {
    let start = Instant::now();
    while !log.lock().unwrap().contains(phrase) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{phrase:?} not in {}",
            log.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `warden run`, killed on drop.
struct Signer(Arc<Mutex<Child>>);

impl Drop for Signer {
    fn drop(&mut self) {
        let mut c = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = c.kill();
        let _ = c.wait();
    }
}

/// A node whose hsmd is a proxy served by a real `warden run` holding [`OUR_SECRET`].
fn remote_node(params: ChannelParams) -> (Node, Signer, TempDir, String) {
    let (dir, signer_key) = signer_dir(&OUR_SECRET);
    let (hsmd, addr, proxy_key) = proxy(&signer_key, "60");
    warden(&data(&dir), &["pair", "--proxy-key", &proxy_key]);
    let child = run_signer(&data(&dir), &addr, Stdio::inherit());
    let node = Node::attach(hsmd, params).unwrap_or_else(|e| panic!("attach: {e}"));
    (node, Signer(Arc::new(Mutex::new(child))), dir, addr)
}

/// Raw replies to deterministic requests: basepoints, signed message, ECDH, points.
fn probes(node: &mut Node) -> Vec<Vec<u8>> {
    let ch = &node.channel;
    let basepoints: GetChannelBasepoints = ch.get_channel_basepoints();
    let point = ch.peer().node_id().to_public_key();
    let points: Vec<_> = (0..4).map(|n| ch.get_per_commitment_point(n).unwrap().0).collect();
    let (peer, dbid) = (ch.peer_id(), ch.params().dbid);
    let master = node.hsmd.master();
    let mut out = vec![
        master.request_raw("basepoints", &basepoints.encode().unwrap()).unwrap(),
        master
            .request_raw("sign_message", &SignMessage { msg: b"warden".to_vec() }.encode().unwrap())
            .unwrap(),
        master.request_raw("ecdh", &Ecdh { point }.encode().unwrap()).unwrap(),
    ];
    let mut client = node.hsmd.client("probe", peer, dbid, perms::CHANNELD).unwrap();
    for p in points {
        out.push(client.request_raw("point", &p.encode().unwrap()).unwrap());
    }
    // A refusal (connectd may not ask for a signed message): the same report in both modes.
    let mut connectd = node.hsmd.global_client("connectd", perms::CONNECTD).unwrap();
    let refused = SignMessage { msg: b"no".to_vec() }.encode().unwrap();
    match connectd.request_raw(SignMessage::NAME, &refused) {
        Err(HsmdError::Refused { report: Some(r), .. }) => {
            out.push(r.description.as_str().unwrap().as_bytes().to_vec());
            out.push(r.msg.clone());
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    out
}

/// The flow of the comparison, returning the probes' replies before and after it.
fn compared_flow(node: &mut Node) -> Vec<Vec<u8>> {
    let mut replies = probes(node);
    node.open().unwrap_or_else(|e| panic!("open: {e}"));
    node.update_rounds(6, 7).unwrap_or_else(|e| panic!("rounds: {e}"));
    node.cooperative_close().unwrap_or_else(|e| panic!("close: {e}"));
    replies.extend(probes(node));
    // Only the probes' two deliberate refusals were reported, and nothing failed.
    assert_eq!(node.hsmd.status().bad_requests().len(), 2);
    assert!(node.hsmd.status().failures().is_empty());
    replies
}

#[test]
fn proxy_mode_answers_as_local_mode() {
    let params = || ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut local = Node::start(&hsmd_bin(), params()).unwrap();
    let local_replies = compared_flow(&mut local);

    let (mut remote, _signer, _dir, _) = remote_node(params());
    assert_eq!(remote.hsmd.node_id(), local.hsmd.node_id());
    let remote_replies = compared_flow(&mut remote);
    assert_eq!(remote_replies, local_replies);
    assert_eq!(remote.hsmd.transcript().entries(), local.hsmd.transcript().entries());
}

/// `warden run` is killed at random moments (seeded) during update rounds and restarted after
/// a random pause; the proxy holds the requests meanwhile and re-sends them.
#[test]
fn signer_killed_and_restarted_mid_flow() {
    let params = ChannelParams::new(ChannelType::StaticRemoteKey, Funder::Them);
    let (mut node, signer, dir, addr) = remote_node(params);
    node.open().unwrap_or_else(|e| panic!("open: {e}"));

    let done = Arc::new(AtomicBool::new(false));
    let kills = Arc::new(AtomicU64::new(0));
    let killer = {
        let (child, done, kills) = (Arc::clone(&signer.0), Arc::clone(&done), Arc::clone(&kills));
        let data = data(&dir);
        std::thread::spawn(move || {
            let mut rng = TestRng::new(0x5eed);
            while !done.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50 + rng.below(400)));
                let mut c = child.lock().unwrap();
                c.kill().unwrap();
                c.wait().unwrap();
                kills.fetch_add(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(rng.below(700)));
                *c = run_signer(&data, &addr, Stdio::null());
            }
        })
    };
    // At least 50 kills (the bar), seeded; `WARDEN_REMOTE_KILLS` sets another number.
    let want: u64 =
        std::env::var("WARDEN_REMOTE_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let start = Instant::now();
    let mut rounds = 0;
    // At least 12 rounds, and on until the signer was killed `want` times.
    while rounds < 12 || (kills.load(Ordering::SeqCst) < want && start.elapsed().as_secs() < 600) {
        node.update_rounds(1, 100 + rounds).unwrap_or_else(|e| panic!("round {rounds}: {e}"));
        rounds += 1;
    }
    done.store(true, Ordering::SeqCst);
    killer.join().unwrap();
    let kills = kills.load(Ordering::SeqCst);
    assert!(kills >= want, "only {kills} kills");
    eprintln!("{rounds} rounds, {kills} kills of warden run");
    node.cooperative_close().unwrap_or_else(|e| panic!("close: {e}"));
    node.assert_clean().unwrap_or_else(|e| panic!("{e}"));
}

/// A signer holding another seed (so another link key), and the right signer pinning another
/// proxy key, are both refused; lightningd's `init` then fails after the proxy's bounded wait.
#[test]
fn unpaired_signers_are_refused() {
    let (_right, right_key) = signer_dir(&OUR_SECRET);
    let (wrong, _) = signer_dir(&[0x44; 32]);
    let (misled, _) = signer_dir(&OUR_SECRET);
    let (mut hsmd, addr, proxy_key) = proxy(&right_key, "5");
    warden(&data(&wrong), &["pair", "--proxy-key", &proxy_key]);
    let other_proxy = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
    warden(&data(&misled), &["pair", "--proxy-key", other_proxy]);
    let a = Signer(Arc::new(Mutex::new(run_signer(&data(&wrong), &addr, Stdio::piped()))));
    let b = Signer(Arc::new(Mutex::new(run_signer(&data(&misled), &addr, Stdio::piped()))));

    match hsmd.init(&Hsmd::regtest_init()) {
        Err(HsmdError::Refused { failure: Some(desc), .. }) => {
            assert!(desc.contains("no answer from the remote signer"), "{desc}")
        }
        other => panic!("expected the init to time out, got {other:?}"),
    }
    for (signer, expect) in [(a, "does not pin this signer's key"), (b, "pins another proxy key")] {
        let mut child = signer.0.lock().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        let mut log = String::new();
        child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
        assert!(log.contains(expect), "{expect:?} not in {log}");
        assert!(!log.contains("initialised"), "{log}");
    }
}

/// While one `warden run` is connected a second is refused (two signers would keep two channel
/// states); SIGTERM stops the first cleanly (exit 0), and a new one carries the flow on.
#[test]
fn one_signer_at_a_time_and_a_clean_stop() {
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Them);
    let (mut node, signer, dir, addr) = remote_node(params);
    node.open().unwrap_or_else(|e| panic!("open: {e}"));
    let mut second = run_signer(&data(&dir), &addr, Stdio::piped());
    let log = collect(&mut second);
    wait_for(&log, "another signer is already connected");
    node.update_rounds(2, 9).unwrap_or_else(|e| panic!("rounds: {e}"));
    second.kill().unwrap();
    second.wait().unwrap();

    let status = {
        let mut first = signer.0.lock().unwrap();
        let term = Command::new("kill").arg("-TERM").arg(first.id().to_string()).status();
        assert!(term.unwrap().success());
        first.wait().unwrap()
    };
    assert!(status.success(), "warden run exited with {status}");
    *signer.0.lock().unwrap() = run_signer(&data(&dir), &addr, Stdio::inherit());
    node.update_rounds(2, 10).unwrap_or_else(|e| panic!("rounds after restart: {e}"));
    node.cooperative_close().unwrap_or_else(|e| panic!("close: {e}"));
    node.assert_clean().unwrap_or_else(|e| panic!("{e}"));
}

/// A relay between the signer and the proxy that alters one byte of the first connection in
/// one direction, of the second in the other, then passes the rest through unchanged.
fn tampering_relay(proxy: String) -> (String, Arc<AtomicU64>) {
    use std::io::Write;
    use std::net::{Shutdown, TcpListener, TcpStream};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for signer in listener.incoming() {
            let Ok(signer) = signer else { continue };
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let Ok(node) = TcpStream::connect(&proxy) else { continue };
            // After the handshake: act two is 50 bytes; acts one and three 116.
            let (to_signer, to_node) = match n {
                0 => (Some(60), None),
                1 => (None, Some(121)),
                _ => (None, None),
            };
            let pump = move |mut from: TcpStream, mut to: TcpStream, flip: Option<usize>| {
                let mut at = 0usize;
                let mut buf = [0u8; 4096];
                loop {
                    let len = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(len) => len,
                    };
                    if let Some(f) = flip.filter(|f| (at..at + len).contains(f)) {
                        buf[f - at] ^= 0x01;
                    }
                    at += len;
                    if to.write_all(&buf[..len]).is_err() {
                        break;
                    }
                }
                let _ = to.shutdown(Shutdown::Both);
                let _ = from.shutdown(Shutdown::Both);
            };
            let (s2, n2) = (signer.try_clone().unwrap(), node.try_clone().unwrap());
            std::thread::spawn(move || pump(node, signer, to_signer));
            std::thread::spawn(move || pump(s2, n2, to_node));
        }
    });
    (addr, count)
}

/// One altered byte in either direction ends that link (the signer logs the failed
/// authentication); the signer dials again and the requests are answered.
#[test]
fn an_altered_byte_ends_the_link_and_the_flow_survives() {
    let (dir, signer_key) = signer_dir(&OUR_SECRET);
    let (hsmd, addr, proxy_key) = proxy(&signer_key, "60");
    warden(&data(&dir), &["pair", "--proxy-key", &proxy_key]);
    let (relay, connections) = tampering_relay(addr);
    let signer = Signer(Arc::new(Mutex::new(run_signer(&data(&dir), &relay, Stdio::piped()))));
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut node = Node::attach(hsmd, params).unwrap_or_else(|e| panic!("attach: {e}"));
    node.open().unwrap_or_else(|e| panic!("open: {e}"));
    node.update_rounds(2, 3).unwrap_or_else(|e| panic!("rounds: {e}"));
    node.assert_clean().unwrap_or_else(|e| panic!("{e}"));
    assert!(connections.load(Ordering::SeqCst) >= 3);
    let mut child = signer.0.lock().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let mut log = String::new();
    child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    assert!(log.contains("failed authentication"), "{log}");
}

/// Entropy for sealing in tests: the seeded generator.
struct Seeded(TestRng);

impl warden_core::rng::EntropySource for Seeded {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let bytes = self.0.bytes32();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

/// Warden's node-backup extension requests cross the link: `warden run` answers them with the
/// keys local mode gives, the keys open what was sealed to the node-backup key, and a context
/// that is not a node backup's is refused (`node-unseal`).
#[test]
fn unseal_through_the_remote_signer() {
    use warden_core::seal::{ecies_ephemeral_point, ecies_open_with_derived_key, ecies_seal};
    use warden_core::secret::Secret32;
    use warden_wire::msg::{
        UnsealItem, WardenNodeBackupPubkey, WardenNodeBackupPubkeyReply, WardenUnseal,
        WardenUnsealReply,
    };

    let (dir, signer_key) = signer_dir(&OUR_SECRET);
    let (mut remote, addr, proxy_key) = proxy(&signer_key, "60");
    warden(&data(&dir), &["pair", "--proxy-key", &proxy_key]);
    let _signer = Signer(Arc::new(Mutex::new(run_signer(&data(&dir), &addr, Stdio::inherit()))));
    remote.init(&Hsmd::regtest_init()).unwrap();
    let mut local = Hsmd::spawn(&hsmd_bin(), &OUR_SECRET).unwrap();
    local.init(&Hsmd::regtest_init()).unwrap();

    let pubkey = |h: &mut Hsmd| {
        let r: WardenNodeBackupPubkeyReply = h.master().call(&WardenNodeBackupPubkey {}).unwrap();
        r.pubkey
    };
    let key = pubkey(&mut remote);
    assert_eq!(key, pubkey(&mut local));

    let mut entropy = Seeded(TestRng::new(7));
    let contexts: [&[u8]; 2] = [b"warden/node-backup/v1/db-write/1", b"warden/node-backup/v1/x"];
    let blobs: Vec<Vec<u8>> =
        contexts.iter().map(|c| ecies_seal(&key, c, c, &mut entropy).unwrap()).collect();
    let request = WardenUnseal {
        items: blobs
            .iter()
            .zip(contexts)
            .map(|(b, c)| UnsealItem {
                ephemeral: ecies_ephemeral_point(b).unwrap(),
                context: c.to_vec(),
            })
            .collect(),
    };
    let keys = |h: &mut Hsmd| {
        let r: WardenUnsealReply = h.master().call(&request).unwrap();
        r.keys
    };
    let remote_keys = keys(&mut remote);
    assert_eq!(remote_keys, keys(&mut local));
    for ((blob, context), k) in blobs.iter().zip(contexts).zip(&remote_keys) {
        let opened = ecies_open_with_derived_key(&Secret32::new(*k.expose_secret()), blob).unwrap();
        assert_eq!(&opened[..], context);
    }

    // A key for a context that is not a node backup's: refused, and the refusal names the rule.
    let mut wrong = request.clone();
    wrong.items[1].context = b"warden/records".to_vec();
    let refused = remote.master().call::<_, WardenUnsealReply>(&wrong).unwrap_err();
    assert!(matches!(refused, HsmdError::Refused { .. }), "{refused}");
    assert!(refused.to_string().contains("node-unseal"), "{refused}");
}

/// The proxy asks the signer for its status after `init` and at every interval, and writes it
/// for the node's operator to `warden/signer-status.json` (mode 0600): node id, channels,
/// refusals by rule.
#[test]
fn the_proxy_writes_the_signers_status() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, signer_key) = signer_dir(&OUR_SECRET);
    let (mut hsmd, addr, proxy_key) =
        proxy_with(&signer_key, "60", &[("WARDEN_PROXY_STATUS_SECS", "1")]);
    warden(&data(&dir), &["pair", "--proxy-key", &proxy_key]);
    let _signer = Signer(Arc::new(Mutex::new(run_signer(&data(&dir), &addr, Stdio::null()))));
    let init = hsmd.init(&Hsmd::regtest_init()).unwrap();

    let file = hsmd.dir().join("warden/signer-status.json");
    let start = Instant::now();
    let status: serde_json::Value = loop {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if v["signer_answered"] == true {
                break v;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no status in {}", file.display());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status["signer"]["node_id"], init.node_id.to_string());
    assert_eq!(status["signer"]["channels"], 0);
    assert!(status["signer"]["refusals"].is_object());
    assert!(status["time"].as_u64().unwrap() > 0);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}
