//! `warden-hsmd` as a process, started the way lightningd starts `hsmd`: it replays the
//! recording of Core Lightning's own hsmd and checks every exchange that needs no channel
//! state byte for byte, and checks how the process fails.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use common::*;
use warden_wire::msg::*;
use warden_wire::{Message, Permissions, Status};

/// Request types of the recording that need no channel state. `sign_any_cannouncement` (4) is
/// not among them: the recording signs filler bytes that are no `channel_announcement`, which
/// Warden refuses (`gossip-structure`; see `tests/gossip_payments.rs`).
const STATELESS: [u16; 9] = [11, 1, 27, 23, 10, 24, 9, 18, 22];

fn lightning_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), legacy_secret()).unwrap();
    dir
}

#[test]
fn replays_the_recording_byte_for_byte() {
    let dir = lightning_dir();
    let mut hsmd = spawn(dir.path(), &[]);
    let mut channel = None;
    let mut checked = 0;
    for (i, (client, req, reply)) in exchanges().into_iter().enumerate() {
        let t = u16::from_be_bytes([req[0], req[1]]);
        if !STATELESS.contains(&t) {
            continue;
        }
        let got = match client.as_str() {
            "master" => call(&mut hsmd.master, &req),
            _ => call(channel.as_mut().unwrap(), &req),
        };
        assert_eq!(got, reply, "exchange {i} (type {t})");
        if t == ClientHsmfd::TYPE {
            channel = Some(recv_fd(&hsmd.master));
        }
        checked += 1;
    }
    // init, ecdh, derive_secret x3, sign_message, get_channel_basepoints,
    // get_output_scriptpubkey, client_hsmfd, get_per_commitment_point x4, check_future_secret.
    assert_eq!(checked, 14);
    drop(channel);
    hsmd.master.shutdown(std::net::Shutdown::Both).unwrap();
    assert!(hsmd.wait().success(), "hsmd exits cleanly when lightningd closes the master");
}

/// A message of each type that needs `bit` (only the type matters for the check).
fn needs(bit: u64) -> Vec<u8> {
    let t: u16 = match bit {
        1 => Ecdh::TYPE,
        2 => CupdateSig::TYPE,
        4 => SignDelayedPaymentToUs::TYPE,
        8 => GetPerCommitmentPoint::TYPE,
        16 => RevokeCommitmentTx::TYPE,
        32 => SignMutualCloseTx::TYPE,
        64 => SignOptionWillFundOffer::TYPE,
        128 => SignSpliceTx::TYPE,
        256 => LockOutpoint::TYPE,
        1024 => DeriveSecret::TYPE,
        _ => unreachable!(),
    };
    let mut body = t.to_be_bytes().to_vec();
    body.extend_from_slice(&[0; 8]);
    body
}

fn expect_bad_request(hsmd: &mut Hsmd, id: [u8; 33], contains: &str) -> ClientBadRequest {
    match hsmd.status() {
        Status::ClientBadRequest(m) => {
            assert_eq!(m.id.as_bytes(), &id);
            let d = String::from_utf8_lossy(m.description.as_bytes()).into_owned();
            assert!(d.contains(contains), "{d}");
            m
        }
        other => panic!("expected a bad request report, got {other:?}"),
    }
}

#[test]
fn each_permission_bit_is_enforced_per_client() {
    let dir = lightning_dir();
    let mut hsmd = spawn(dir.path(), &[]);
    hsmd.init();
    let peer = recorded_peer();
    let point_req = GetPerCommitmentPoint { n: 0 }.encode().unwrap();
    let mut good = hsmd.client(peer, 7, Permissions::COMMITMENT_POINT.0);
    let expected = call(&mut good, &point_req);
    for bit in [1u64, 2, 4, 8, 16, 32, 64, 128, 256, 1024] {
        // Every bit but this one (the master bit is never given to a channel client).
        let held = (0x1ff | 1024) & !bit & !1024;
        let mut bad = hsmd.client(peer, 7, held);
        send(&mut bad, &needs(bit));
        assert_eq!(recv(&mut bad), None, "client without bit {bit} is closed");
        let report = expect_bad_request(&mut hsmd, peer, "permission denied");
        assert_eq!(report.msg, needs(bit));
        // The other client goes on.
        assert_eq!(call(&mut good, &point_req), expected, "after bit {bit}");
    }
}

#[test]
fn a_malformed_frame_closes_only_that_client() {
    let dir = lightning_dir();
    let mut hsmd = spawn(dir.path(), &[]);
    hsmd.init();
    let peer = recorded_peer();
    let mut good = hsmd.client(peer, 7, 8);
    let mut bad = hsmd.client(peer, 7, 8);
    // A truncated get_per_commitment_point body.
    send(&mut bad, &[0x00, 0x12, 0x00]);
    assert_eq!(recv(&mut bad), None);
    expect_bad_request(&mut hsmd, peer, "could not parse");
    // An oversized frame length on a third client.
    let mut huge = hsmd.client(peer, 7, 8);
    std::io::Write::write_all(&mut huge, &[0x08, 0, 0, 0]).unwrap();
    assert_eq!(recv(&mut huge), None);
    expect_bad_request(&mut hsmd, peer, "could not parse");
    // A request for a channel that was never set up is refused by policy (channel-unknown).
    let mut other = hsmd.client(peer, 7, 16);
    send(&mut other, &RevokeCommitmentTx { commit_num: 0 }.encode().unwrap());
    assert_eq!(recv(&mut other), None);
    expect_bad_request(&mut hsmd, peer, "channel-unknown");
    // The refusal was also logged, naming its rule.
    assert!(hsmd.logs.iter().any(|l| l.starts_with("policy") && l.contains("channel-unknown")));
    let reply = call(&mut good, &GetPerCommitmentPoint { n: 1 }.encode().unwrap());
    assert_eq!(reply[..2], [0x00, 0x76]);
}

#[test]
fn a_bad_request_on_the_master_is_fatal() {
    let dir = lightning_dir();
    let mut hsmd = spawn(dir.path(), &[]);
    hsmd.init();
    // revoke_commitment_tx for a channel never set up is refused (channel-unknown): on the
    // master that is status_fail and a non-zero exit.
    send(&mut hsmd.master, &RevokeCommitmentTx { commit_num: 0 }.encode().unwrap());
    match hsmd.status() {
        Status::StatusFail(f) => {
            assert_eq!(f.failreason, FailReason::MASTER_IO);
            let d = String::from_utf8_lossy(f.desc.as_bytes()).into_owned();
            assert!(d.contains("channel-unknown"), "{d}");
        }
        other => panic!("expected status_fail, got {other:?}"),
    }
    assert_eq!(recv(&mut hsmd.master), None);
    let status = hsmd.wait();
    assert!(!status.success());
}

#[test]
fn a_request_before_init_is_fatal() {
    let dir = lightning_dir();
    let mut hsmd = spawn(dir.path(), &[]);
    send(&mut hsmd.master, &DeriveSecret { info: b"x".to_vec() }.encode().unwrap());
    assert!(matches!(hsmd.status(), Status::StatusFail(_)));
    assert!(!hsmd.wait().success());
}

#[test]
fn version_prints_the_configured_string() {
    let out =
        Command::new(BIN).arg("--version").env_remove("WARDEN_HSMD_VERSION").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}\n", warden_hsmd::version::DEFAULT_CLN_VERSION)
    );
    let out = Command::new(BIN)
        .args(["--developer", "--version"])
        .env("WARDEN_HSMD_VERSION", "v25.12")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "v25.12\n");
}

#[test]
fn lightningd_extra_args_are_accepted() {
    let dir = lightning_dir();
    let mut hsmd = spawn(
        dir.path(),
        &["--developer", "--log-io", "--log-trace", "--dev-debug-self", "--dev-disconnect=x"],
    );
    assert_eq!(hsmd.init(), exchanges()[0].2);
}

#[test]
fn missing_secret_becomes_a_stable_mnemonic() {
    let dir = tempfile::tempdir().unwrap();
    let node_id = |dir: &std::path::Path| {
        let mut hsmd = spawn(dir, &[]);
        let reply = InitReplyV4::decode(&hsmd.init()).unwrap();
        assert_eq!(reply.tlvs.hsm_secret_type, Some(HsmSecretType::MNEMONIC_NO_PASS));
        assert!(reply.tlvs.bip86_base.is_some());
        reply.node_id
    };
    let first = node_id(dir.path());
    let path = dir.path().join("hsm_secret");
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(bytes[..32], [0u8; 32]);
    let words = std::str::from_utf8(&bytes[32..]).unwrap();
    assert_eq!(words.split(' ').count(), 12);
    assert_eq!(node_id(dir.path()), first);
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the secret is not rewritten");
}

#[test]
fn encrypted_secret_fails_init_with_cln_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), [5u8; 73]).unwrap();
    let mut hsmd = spawn(dir.path(), &[]);
    let reply = InitReplyFailure::decode(&hsmd.init()).unwrap();
    // HSM_SECRET_ERR_PASSPHRASE_REQUIRED: the recorded init carries no hsm_passphrase.
    assert_eq!(reply.error_code, 1);
    assert!(matches!(hsmd.status(), Status::StatusFail(_)));
    assert!(!hsmd.wait().success());
}

#[test]
fn no_fd_3_fails_cleanly() {
    let (status, status_child) = std::os::unix::net::UnixStream::pair().unwrap();
    // fd 3 explicitly closed, whatever the test runner left open.
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(r#"exec "$0" 3<&-"#)
        .arg(BIN)
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(status_child)))
        .spawn()
        .unwrap();
    let mut status = status;
    status.set_read_timeout(Some(std::time::Duration::from_secs(20))).unwrap();
    let msg = Status::decode(&recv(&mut status).unwrap()).unwrap();
    assert!(matches!(msg, Status::StatusFail(_)));
    assert!(!child.wait().unwrap().success());
}
