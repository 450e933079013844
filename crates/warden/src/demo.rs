//! `warden demo`: the remote signer end to end on this machine, with nothing to set up.
//!
//! Every step goes through the real binaries: a signer data directory with its seed in a
//! temporary directory, the real `warden-hsmd` in proxy mode (started as lightningd starts
//! hsmd: status on fd 0, requests on fd 3), the real `warden run` (this very executable, as a
//! child process) dialling in over warden-link, and `warden-testkit`'s scripted Core Lightning
//! node speaking hsmd's wire protocol to the proxy. The scripted node checks every signature
//! it gets back against the transaction it built.
//!
//! The scenario: a channel is opened, payments go both ways, then the node turns hostile and
//! asks for five thefts (each is one legitimate request changed in one adversarial way, as in
//! `warden-testkit/tests/attacks.rs`), and the channel ends with a cooperative close. The exit
//! code is 0 only if every legitimate step was signed and every theft refused.
//!
//! The scripted node plays lightningd and must know the node's keys to check the signatures:
//! the seed is the testkit's fixed legacy test secret (`warden_testkit::flows::OUR_SECRET`),
//! written to the signer's data directory as `warden init --import-hsm-secret` writes one.

use std::fmt::Write as _;
use std::io::{self, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::hashes::Hash;
use bitcoin::sighash::{EcdsaSighashType, SighashCache};
use bitcoin::{absolute, transaction, Amount, ScriptBuf, Transaction, TxIn, TxOut};
use warden_core::tx::ChannelType;
use warden_core::units::{Msat, Sat};
use warden_hsmd::approvals::{ApprovalState, Approvals};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::verify::{bitcoin_tx, psbt_for};
use warden_testkit::{
    perms, Change, Channel, ChannelParams, Client, Funder, Hsmd, HsmdError, Node, Unilateral, Who,
};
use warden_wire::msg::{CannouncementSig, SignMutualCloseTx, SignWithdrawal, SignWithdrawalReply};
use warden_wire::{Message, WirePsbt};

use crate::{datadir, CliError};

/// The node host's `hsm_secret`: a decoy. In proxy mode `warden-hsmd` never reads it (if it
/// did, the node id check at `init` would fail).
const DECOY_SECRET: [u8; 32] = [0x5a; 32];

/// What `warden demo` was asked to do.
#[derive(Debug)]
pub struct DemoOptions {
    /// The `warden-hsmd` binary, if given.
    pub hsmd: Option<PathBuf>,
    /// Keep the temporary directory.
    pub keep: bool,
}

/// How one theft ended.
enum Attempt {
    /// A reply came back: the theft was signed.
    Signed,
    /// Refused, with the rule's tag when the refusal names one.
    Refused { tag: Option<String>, text: String },
    /// Something else went wrong (not a refusal).
    Broken(String),
}

/// Sends a theft's request on `client`.
fn attempt<M: Message>(client: &mut Client, req: &M) -> Attempt {
    match client.request(req) {
        Ok(_) => Attempt::Signed,
        Err(e @ HsmdError::Refused { .. }) => {
            let text = e.to_string();
            Attempt::Refused { tag: crate::status::rule_tag(&text), text }
        }
        Err(e) => Attempt::Broken(e.to_string()),
    }
}

/// The timeline on stdout and the tally behind the summary.
struct Timeline {
    start: Instant,
    signed: usize,
    refused: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Timeline {
    fn say(&self, text: &str) -> Result<(), CliError> {
        crate::say(text)
    }

    fn line(&self, mark: &str, text: &str) -> Result<(), CliError> {
        let t = self.start.elapsed().as_secs_f64();
        self.say(&format!("[{t:6.2}s] {mark:<8} {text}\n"))
    }

    /// A legitimate step: it must be signed. A failure ends the scenario.
    fn legit<E: std::fmt::Display>(
        &mut self,
        what: &str,
        result: Result<String, E>,
    ) -> Result<bool, CliError> {
        match result {
            Ok(detail) => {
                self.signed += 1;
                let text =
                    if detail.is_empty() { what.to_owned() } else { format!("{what}: {detail}") };
                self.line("signed", &text)?;
                Ok(true)
            }
            Err(e) => {
                self.problems.push(format!("legitimate step not signed: {what}: {e}"));
                self.line("FAILED", &format!("{what}: {e}"))?;
                Ok(false)
            }
        }
    }

    /// A theft: it must be refused.
    fn theft(&mut self, what: &str, expected: &str, outcome: Attempt) -> Result<(), CliError> {
        match outcome {
            Attempt::Refused { tag: Some(tag), .. } => {
                self.line("REFUSED", &format!("[{tag}] {what}"))?;
                if tag != expected {
                    self.line("", &format!("(the demo expected {expected})"))?;
                }
                self.refused.push((what.to_owned(), tag));
            }
            Attempt::Refused { tag: None, text } => {
                self.line("REFUSED", &format!("{what} ({text})"))?;
                self.refused.push((what.to_owned(), "?".to_owned()));
            }
            Attempt::Signed => {
                self.problems.push(format!("theft signed: {what}"));
                self.line("SIGNED!", &format!("{what}: the signer signed a theft"))?;
            }
            Attempt::Broken(e) => {
                self.problems.push(format!("theft not answered: {what}: {e}"));
                self.line("ERROR", &format!("{what}: {e}"))?;
            }
        }
        Ok(())
    }

    fn section(&self, title: &str) -> Result<(), CliError> {
        self.say(&format!("\n-- {title}\n"))
    }
}

/// `warden run` as a child process: its stderr collected, killed on drop if still running.
struct SignerProcess {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl SignerProcess {
    fn start(exe: &Path, data_dir: &Path, connect: &str) -> Result<SignerProcess, CliError> {
        let mut child = Command::new(exe)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["run", "--connect", connect, "--max-backoff", "1", "--heartbeat-timeout", "5"])
            .env_remove("WARDEN_POLICY_FILE")
            .env_remove("WARDEN_HSM_PASSPHRASE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::new(format!("cannot start `warden run`: {e}")))?;
        let log = Arc::new(Mutex::new(String::new()));
        if let Some(mut err) = child.stderr.take() {
            let sink = Arc::clone(&log);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = err.read(&mut buf) {
                    let text = String::from_utf8_lossy(buf.get(..n).unwrap_or_default());
                    sink.lock().unwrap_or_else(|p| p.into_inner()).push_str(&text);
                }
            });
        }
        Ok(SignerProcess { child, log })
    }

    fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// SIGTERM, then waits (up to 10 s) for the exit.
    fn stop(&mut self) -> Result<ExitStatus, CliError> {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Ok(status),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = self.child.kill();
                    return Err(CliError::new("`warden run` did not stop within 10 s of SIGTERM"));
                }
            }
        }
    }
}

impl Drop for SignerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Finds `warden-hsmd`: the one given; else, when this runs under `cargo run` (or `cargo
/// test`), builds it first with the same cargo, profile and target directory (a no-op when it
/// is up to date: a clean checkout needs nothing else than `cargo run --bin warden -- demo`);
/// else the one next to this executable.
pub(crate) fn hsmd_binary(exe: &Path, explicit: Option<&Path>) -> Result<PathBuf, CliError> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p.to_path_buf())
        } else {
            Err(CliError::new(format!("{} does not exist", p.display())))
        };
    }
    let beside = exe.with_file_name("warden-hsmd");
    let not_built = || {
        CliError::new(format!(
            "warden-hsmd is not built ({} does not exist): run `cargo build --release -p \
             warden-hsmd` (or pass --hsmd PATH)",
            beside.display()
        ))
    };
    let profile_dir = exe.parent().ok_or_else(not_built)?;
    match (std::env::var_os("CARGO"), profile_dir.parent(), profile_dir.file_name()) {
        (Some(cargo), Some(target_dir), Some(profile)) => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let mut build = Command::new(cargo);
            build.current_dir(&workspace).args(["build", "-p", "warden-hsmd", "--target-dir"]);
            build.arg(target_dir);
            if profile != "debug" {
                // target/release is the release profile; another directory is its profile's name.
                build.arg("--profile").arg(profile);
            }
            let status = build.stdout(Stdio::null()).status().map_err(|e| {
                CliError::new(format!("cannot run cargo to build warden-hsmd: {e}"))
            })?;
            if !status.success() {
                return Err(CliError::new(
                    "cargo could not build warden-hsmd (its messages are above)",
                ));
            }
        }
        _ if beside.is_file() => {}
        _ => return Err(not_built()),
    }
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(not_built())
    }
}

/// A loopback port free right now (the proxy binds it; a restarted proxy binds it again).
fn free_port() -> Result<u16, CliError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| CliError::new(format!("cannot find a free loopback port: {e}")))
}

fn wait_for_file(path: &Path, what: &str) -> Result<String, CliError> {
    let start = Instant::now();
    loop {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.is_empty() => return Ok(text),
            _ if start.elapsed() > Duration::from_secs(30) => {
                return Err(CliError::new(format!("{what} did not start within 30 s")))
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn io_error(what: &str) -> impl FnOnce(io::Error) -> CliError + '_ {
    move |e| CliError::new(format!("{what}: {e}"))
}

/// A P2WPKH script of a key nobody in the demo holds: the thief's address.
fn thief() -> ScriptBuf {
    ScriptBuf::new_p2wpkh(&bitcoin::WPubkeyHash::from_byte_array([0xee; 20]))
}

fn sat(m: Msat) -> String {
    group(m.0 / 1000)
}

/// `1234567` as `1,234,567`.
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Runs the demo; `Ok` only if every legitimate step was signed and every theft refused.
pub fn run(options: &DemoOptions) -> Result<(), CliError> {
    let exe = std::env::current_exe().map_err(io_error("cannot find this executable"))?;
    let hsmd_bin = hsmd_binary(&exe, options.hsmd.as_deref())?;
    let tmp = tempfile::Builder::new()
        .prefix("warden-demo-")
        .tempdir()
        .map_err(io_error("cannot create a temporary directory"))?;
    let mut tl =
        Timeline { start: Instant::now(), signed: 0, refused: Vec::new(), problems: vec![] };
    tl.say(
        "Warden demo: a remote signer, a Lightning node that turns hostile.\n\
         Real processes: warden-hsmd (proxy mode, where lightningd would run it), warden run \
         (the signer,\ndialling out to the proxy over an authenticated, encrypted link), and a \
         scripted Core Lightning node\nspeaking hsmd's wire protocol to the proxy. Every \
         signature that comes back is verified.\n",
    )?;

    // The signer host: a data directory with the seed.
    tl.section("set-up")?;
    let signer_dir = tmp.path().join("signer");
    datadir::ensure_dir(&signer_dir)?;
    datadir::write_private(&signer_dir, datadir::SEED_FILE, &OUR_SECRET)
        .map_err(io_error("cannot write the seed"))?;
    let seed = datadir::load_seed(&signer_dir)?;
    let link = datadir::link_key(&seed)?;
    tl.line(
        "",
        &format!("signer data directory {} (seed: hsm_secret, mode 0600)", signer_dir.display()),
    )?;

    // The node host: warden-hsmd in proxy mode, pinning the signer's link key.
    let listen = format!("127.0.0.1:{}", free_port()?);
    let signer_key = link.public_key().to_string();
    let hsmd = Hsmd::spawn_with_env(
        &hsmd_bin,
        &DECOY_SECRET,
        &[
            ("WARDEN_SIGNER_PUBKEY", signer_key.as_str()),
            ("WARDEN_PROXY_LISTEN", listen.as_str()),
            ("WARDEN_PROXY_WAIT_SECS", "30"),
            ("WARDEN_PROXY_HEARTBEAT_SECS", "1"),
        ],
    )
    .map_err(|e| CliError::new(format!("cannot start warden-hsmd: {e}")))?;
    let addr_file =
        hsmd.dir().join(warden_hsmd::durable::STORE_DIR).join(warden_hsmd::proxy::ADDR_FILE);
    wait_for_file(&addr_file, "warden-hsmd")?;
    let out = Command::new(&hsmd_bin)
        .arg("--proxy-pubkey")
        .current_dir(hsmd.dir())
        .output()
        .map_err(io_error("cannot run `warden-hsmd --proxy-pubkey`"))?;
    let proxy_key = datadir::parse_key(&String::from_utf8_lossy(&out.stdout), "the proxy key")?;
    datadir::write_private(
        &signer_dir,
        datadir::PROXY_KEY_FILE,
        format!("{proxy_key}\n").as_bytes(),
    )
    .map_err(io_error("cannot pin the proxy key"))?;
    tl.line(
        "",
        &format!("warden-hsmd (proxy mode) listening on {listen}, pinning signer key {signer_key}"),
    )?;
    tl.line("", &format!("paired: the signer pins proxy key {proxy_key}"))?;

    // The signer: `warden run`, dialling out.
    let mut signer = SignerProcess::start(&exe, &signer_dir, &listen)?;
    tl.line("", &format!("warden run started (pid {}), dialling {listen}", signer.child.id()))?;

    let params_a = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut node = match Node::attach(hsmd, params_a) {
        Ok(n) => n,
        Err(e) => {
            let log = signer.log();
            return Err(CliError::new(format!("the node's init failed: {e}\nwarden run:\n{log}")));
        }
    };
    tl.line("", &format!("init answered by the signer: node id {}", node.channel.our_id()))?;

    let finished = scenario(&mut tl, &mut node, &signer_dir)?;

    // The end: warden run stops cleanly on SIGTERM.
    let status = signer.stop()?;
    let log = signer.log();
    let logged = log.lines().filter(|l| l.contains("refused a request")).count();
    if !status.success() {
        tl.problems.push(format!("warden run exited with {status} on SIGTERM"));
    }
    drop(node);

    tl.section("summary")?;
    let mut text = String::new();
    let _ = writeln!(
        text,
        "signed:  {} legitimate steps, every signature checked by the scripted node",
        tl.signed
    );
    let _ = writeln!(text, "refused: {} thefts, no signature given:", tl.refused.len());
    for (what, tag) in &tl.refused {
        let _ = writeln!(text, "           {tag:<28} {what}");
    }
    let _ = writeln!(
        text,
        "signer:  warden run logged {logged} refusals itself and stopped on SIGTERM ({status})"
    );
    match crate::status::read(&signer_dir) {
        Ok(Some(snap)) => {
            let rules: Vec<String> =
                snap.refusals_by_rule.iter().map(|(r, n)| format!("{r} x{n}")).collect();
            let _ = writeln!(
                text,
                "         its status.json (what `warden status` reads): {} requests answered, {} \
                 refused; by rule: {}",
                snap.answered,
                snap.refused,
                rules.join(", ")
            );
        }
        _ => tl.problems.push("warden run wrote no status.json".to_owned()),
    }
    if options.keep {
        let kept = tmp.keep();
        let _ = writeln!(
            text,
            "\nKept the signer's data directory: try `warden --data-dir {} status`.",
            kept.join("signer").display()
        );
    }
    if finished && tl.problems.is_empty() {
        text.push_str("\nPASS: every legitimate step signed, every theft refused.\n");
        tl.say(&text)?;
        Ok(())
    } else {
        text.push_str("\nFAIL:\n");
        for p in &tl.problems {
            let _ = writeln!(text, "  - {p}");
        }
        tl.say(&text)?;
        Err(CliError::new("the demo did not go as it must (see FAIL above)"))
    }
}

/// The steps. `Ok(false)` when a legitimate step failed (the rest is skipped).
fn scenario(tl: &mut Timeline, node: &mut Node, signer_dir: &Path) -> Result<bool, CliError> {
    tl.section("an honest node")?;
    let r = node.open().map(|()| {
        "1,000,000 sat, we fund (anchors): the peer's commitment #0 signed, ours validated, \
         funding locked"
            .to_owned()
    });
    if !tl.legit("open a channel", r)? {
        return Ok(false);
    }
    for (who, amount, preimage) in [
        (Who::Us, 50_000_000, [0xa1; 32]),
        (Who::Them, 30_000_000, [0xb2; 32]),
        (Who::Us, 12_345_000, [0xc3; 32]),
    ] {
        let r = pay(node, who, Msat(amount), preimage);
        let what = match who {
            Who::Us => format!("we pay {} sat", sat(Msat(amount))),
            Who::Them => format!("the peer pays us {} sat", sat(Msat(amount))),
        };
        if !tl.legit(&what, r)? {
            return Ok(false);
        }
    }

    tl.section("the node is compromised: it asks the signer to steal")?;
    let outcome = steal_by_commitment(node);
    tl.theft(
        "a commitment for the peer that gives it 200,000 sat of ours",
        "commitment-balance",
        outcome,
    )?;
    let outcome = close_to_thief(node);
    tl.theft(
        "a mutual close paying our share to the thief's address",
        "close-destination",
        outcome,
    )?;
    let outcome = announcement_oracle(node);
    tl.theft(
        "a \"channel announcement\" that is the BIP-143 preimage of a spend of the funding output",
        "gossip-structure",
        outcome,
    )?;

    // A second channel, dropped to chain: then the node asks to revoke what it broadcast.
    let mut params_b = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Them);
    params_b.dbid = 2;
    params_b.funding_outpoint.vout = 2;
    let channel_b = Channel::new(params_b, OUR_SECRET, PEER_SECRET)
        .map_err(|e| CliError::new(format!("cannot model the second channel: {e}")))?;
    let channel_a = std::mem::replace(&mut node.channel, channel_b);
    let r = node.open().map(|()| "1,000,000 sat, the peer funds".to_owned());
    if !tl.legit("open a second channel", r)? {
        return Ok(false);
    }
    let r = node.unilateral_close_with_sweeps(Unilateral::Ours).map(|()| {
        "our commitment signed for broadcast, its delayed output swept, its anchor spent".to_owned()
    });
    if !tl.legit("force-close the second channel", r)? {
        return Ok(false);
    }
    let outcome = revoke_after_broadcast(node);
    tl.theft(
        "revoke the commitment just broadcast (the peer could then take the whole channel)",
        "revoke-after-broadcast",
        outcome,
    )?;
    node.channel = channel_a;

    // The wallet: an honest consolidation, then a withdrawal to the thief.
    let r = withdraw(node, false);
    if !tl.legit(
        "withdraw 150,000 sat to our own wallet",
        r.and_then(|a| match a {
            Attempt::Signed => Ok("signed by the wallet key".to_owned()),
            Attempt::Refused { text, .. } | Attempt::Broken(text) => Err(text),
        }),
    )? {
        return Ok(false);
    }
    let outcome = withdraw(node, true).unwrap_or_else(Attempt::Broken);
    tl.theft(
        "withdraw 150,000 sat to the thief's address",
        "onchain-unknown-destination",
        outcome,
    )?;
    let pending = Approvals::new(&signer_dir.join(warden_hsmd::durable::STORE_DIR))
        .list(ApprovalState::Pending)
        .unwrap_or_default();
    for (id, _) in &pending {
        tl.line(
            "",
            &format!(
                "waiting for the operator: approval {id} (`warden approvals approve {id}` would let \
                 it through once)"
            ),
        )?;
    }
    // The refusal came on lightningd's own connection: warden-hsmd stopped, as hsmd does.
    let r = node
        .hsmd
        .restart()
        .map(|()| "warden-hsmd stopped on the refused request (as hsmd does); restarted, init replayed to the signer".to_owned());
    if !tl.legit("lightningd restarts warden-hsmd", r)? {
        return Ok(false);
    }

    tl.section("the node behaves again")?;
    let before = node.channel.local.to_us;
    let r = node.cooperative_close().map(|()| format!("{} sat to our wallet", sat(before)));
    if !tl.legit("cooperative close of the first channel", r)? {
        return Ok(false);
    }
    Ok(true)
}

/// One payment: the payer adds an HTLC (our payments are preapproved first, as lightningd
/// does), the receiver fulfills it; two update rounds.
fn pay(node: &mut Node, payer: Who, amount: Msat, preimage: [u8; 32]) -> Result<String, String> {
    let htlc = node.channel.new_htlc(payer, amount, preimage, 600);
    node.round(payer, &[Change::Add(htlc)]).map_err(|e| e.to_string())?;
    node.round(payer.other(), &[Change::Fulfill(htlc.id)]).map_err(|e| e.to_string())?;
    let ch = &node.channel;
    let preapproved = if payer == Who::Us { "keysend preapproved, " } else { "" };
    Ok(format!(
        "{preapproved}HTLC added and fulfilled in two rounds, commitments now #{} (ours) and #{} \
         (peer's), balance {} sat",
        ch.local_num,
        ch.remote_num,
        sat(ch.local.to_us)
    ))
}

/// A fresh client of `name` for the current channel.
fn client(
    node: &mut Node,
    name: &'static str,
    perms: warden_wire::Permissions,
) -> Result<Client, String> {
    let (peer, dbid) = (node.channel.peer_id(), node.channel.params().dbid);
    node.hsmd.client(name, peer, dbid, perms).map_err(|e| e.to_string())
}

/// channeld asks for the peer's next commitment with 200,000 sat moved from us to the peer
/// and no HTLC to account for it.
fn steal_by_commitment(node: &mut Node) -> Attempt {
    let ch = &node.channel;
    let mut stolen = ch.remote.clone();
    let moved = 200_000_000;
    stolen.to_us = Msat(stolen.to_us.0.saturating_sub(moved));
    stolen.to_them = Msat(stolen.to_them.0 + moved);
    let req = match ch.sign_remote_commitment(ch.remote_num + 1, &stolen) {
        Ok((s, _)) => s.request,
        Err(e) => return Attempt::Broken(e.to_string()),
    };
    match client(node, "channeld", perms::CHANNELD) {
        Ok(mut c) => attempt(&mut c, &req),
        Err(e) => Attempt::Broken(e),
    }
}

/// closingd asks for the mutual close with our output's script replaced by the thief's.
fn close_to_thief(node: &mut Node) -> Attempt {
    let ch = &node.channel;
    let build = || -> Result<SignMutualCloseTx, String> {
        let fee = ch.local.feerate.fee_for_weight(724);
        let legit = ch.sign_mutual_close(fee).map_err(|e| e.to_string())?.request;
        let ours = ch.wallet_script(2).map_err(|e| e.to_string())?;
        let mut tx = legit.tx.tx().clone();
        for out in &mut tx.output {
            if out.script_pubkey == ours {
                out.script_pubkey = thief();
            }
        }
        Ok(SignMutualCloseTx {
            tx: bitcoin_tx(&tx, &[ch.funding_spent()]).map_err(|e| e.to_string())?,
            remote_funding_key: legit.remote_funding_key,
        })
    };
    let req = match build() {
        Ok(r) => r,
        Err(e) => return Attempt::Broken(e),
    };
    match client(node, "closingd", perms::CLOSINGD) {
        Ok(mut c) => attempt(&mut c, &req),
        Err(e) => Attempt::Broken(e),
    }
}

/// channeld asks to sign a "channel announcement" whose signed digest is the BIP-143 sighash
/// of a transaction spending the funding output to the thief: hsmd would hand out the
/// funding key's signature of that spend.
fn announcement_oracle(node: &mut Node) -> Attempt {
    let ch = &node.channel;
    let build = || -> Result<CannouncementSig, String> {
        let funding = ch.funding_spent();
        let script = funding.witness_script.ok_or("the funding output has no witness script")?;
        let value = funding.txout.value;
        let tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: vec![TxIn { previous_output: ch.params().funding_outpoint, ..TxIn::default() }],
            output: vec![TxOut {
                value: value.checked_sub(Amount::from_sat(1_000)).unwrap_or(Amount::ZERO),
                script_pubkey: thief(),
            }],
        };
        let mut preimage = Vec::new();
        SighashCache::new(&tx)
            .segwit_v0_encode_signing_data_to(
                &mut preimage,
                0,
                &script,
                value,
                EcdsaSighashType::All,
            )
            .map_err(|e| e.to_string())?;
        // Type 256, four placeholder signatures, then the preimage: the announcement's digest
        // (double SHA-256 of what follows the signatures) is the spend's sighash.
        let mut ca = 256u16.to_be_bytes().to_vec();
        ca.extend_from_slice(&[0; 256]);
        ca.extend_from_slice(&preimage);
        Ok(CannouncementSig { ca })
    };
    let req = match build() {
        Ok(r) => r,
        Err(e) => return Attempt::Broken(e),
    };
    match client(node, "channeld", perms::CHANNELD) {
        Ok(mut c) => attempt(&mut c, &req),
        Err(e) => Attempt::Broken(e),
    }
}

/// channeld asks to revoke our current commitment after lightningd signed it for broadcast.
fn revoke_after_broadcast(node: &mut Node) -> Attempt {
    let req = match node.channel.revoke_commitment(node.channel.local_num) {
        Ok((r, _)) => r,
        Err(e) => return Attempt::Broken(e.to_string()),
    };
    match client(node, "channeld", perms::CHANNELD) {
        Ok(mut c) => attempt(&mut c, &req),
        Err(e) => Attempt::Broken(e),
    }
}

/// lightningd's `sign_withdrawal` of a 200,000 sat wallet coin: 150,000 sat to our own wallet
/// (or, `to_thief`, to the thief's address) and 49,000 sat change, fee 1,000 sat. An honest
/// reply's signature is checked.
fn withdraw(node: &mut Node, to_thief: bool) -> Result<Attempt, String> {
    let ch = &node.channel;
    let (utxo, spent, key) =
        ch.wallet_utxo(5, Sat(200_000), b"warden demo coin").map_err(|e| e.to_string())?;
    let to = if to_thief { thief() } else { ch.wallet_script(9).map_err(|e| e.to_string())? };
    let change = ch.wallet_script(7).map_err(|e| e.to_string())?;
    let tx = Transaction {
        version: transaction::Version::TWO,
        lock_time: absolute::LockTime::ZERO,
        input: vec![TxIn { previous_output: utxo.outpoint, ..TxIn::default() }],
        output: vec![
            TxOut { value: Amount::from_sat(150_000), script_pubkey: to },
            TxOut { value: Amount::from_sat(49_000), script_pubkey: change },
        ],
    };
    let psbt = psbt_for(&tx, std::slice::from_ref(&spent)).map_err(|e| e.to_string())?;
    let req = SignWithdrawal { inputs: vec![utxo], psbt: WirePsbt::new(psbt) };
    let secp = secp256k1::Secp256k1::verification_only();
    let master = node.hsmd.master();
    if to_thief {
        return Ok(attempt(master, &req));
    }
    let reply: SignWithdrawalReply = master.call(&req).map_err(|e| e.to_string())?;
    let signed = reply.psbt.psbt();
    let sig = signed
        .inputs
        .first()
        .and_then(|i| i.partial_sigs.get(&bitcoin::PublicKey::new(key)))
        .ok_or("no signature by the wallet key")?;
    let digest = SighashCache::new(&tx)
        .p2wpkh_signature_hash(
            0,
            &spent.txout.script_pubkey,
            spent.txout.value,
            EcdsaSighashType::All,
        )
        .map_err(|e| e.to_string())?;
    let msg = secp256k1::Message::from_digest(digest.to_byte_array());
    secp.verify_ecdsa(&msg, &sig.signature, &key).map_err(|e| format!("bad signature: {e}"))?;
    Ok(Attempt::Signed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
    }
}
