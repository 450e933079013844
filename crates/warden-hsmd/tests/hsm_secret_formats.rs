//! The real `warden-hsmd` binary reads the passphrase-protected `hsm_secret` formats with the
//! passphrase from init's TLV `hsm_passphrase`, as lightningd sends it for `--hsm-passphrase`.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod common;

use common::*;
use warden_hsmd::hsm_secret::{self, HsmSecretErrorCode};
use warden_wire::msg::*;
use warden_wire::secret::Passphrase;
use warden_wire::{Message, Status};

/// The recording's `init`, with `hsm_passphrase` set (or not).
fn init_with(passphrase: Option<&[u8]>) -> Vec<u8> {
    let (_, req, _) = exchanges().into_iter().next().unwrap();
    let mut init = Init::decode(&req).unwrap();
    init.tlvs.hsm_passphrase = passphrase.map(|p| Passphrase::new(p.to_vec()).unwrap());
    init.encode().unwrap()
}

fn dir_with(secret: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), secret).unwrap();
    dir
}

fn recorded_node_id() -> warden_wire::NodeId {
    InitReplyV4::decode(&exchanges()[0].2).unwrap().node_id
}

#[test]
fn encrypted_legacy_secret_gives_the_plain_secrets_node_id() {
    let plain: [u8; 32] = legacy_secret().try_into().unwrap();
    let file = hsm_secret::encrypt_legacy(&plain, b"s3cret pass", &[0xa5; 24]).unwrap();
    let dir = dir_with(&file);
    let mut hsmd = spawn(dir.path(), &[]);
    let reply = call(&mut hsmd.master, &init_with(Some(b"s3cret pass")));
    let reply = InitReplyV4::decode(&reply).unwrap();
    assert_eq!(reply.node_id, recorded_node_id());
    assert_eq!(reply.tlvs.hsm_secret_type, Some(HsmSecretType::ENCRYPTED));
    // The rest of the reply is the recording's too: same keys, only the type differs.
    let recorded = InitReplyV4::decode(&exchanges()[0].2).unwrap();
    assert_eq!(reply.bip32, recorded.bip32);
}

#[test]
fn wrong_or_missing_passphrase_fails_init_with_cln_codes() {
    let plain: [u8; 32] = legacy_secret().try_into().unwrap();
    let file = hsm_secret::encrypt_legacy(&plain, b"s3cret pass", &[0xa5; 24]).unwrap();
    for (pass, code) in [
        (Some(&b"wrong"[..]), HsmSecretErrorCode::WRONG_PASSPHRASE),
        (None, HsmSecretErrorCode::PASSPHRASE_REQUIRED),
    ] {
        let dir = dir_with(&file);
        let mut hsmd = spawn(dir.path(), &[]);
        let reply = InitReplyFailure::decode(&call(&mut hsmd.master, &init_with(pass))).unwrap();
        assert_eq!(reply.error_code, code.0);
        assert!(matches!(hsmd.status(), Status::StatusFail(_)));
        assert!(!hsmd.wait().success());
    }
}

#[test]
fn mnemonic_with_passphrase_loads_over_the_wire() {
    let words = "abandon abandon abandon abandon abandon abandon abandon abandon abandon \
                 abandon abandon about";
    let file = hsm_secret::mnemonic_file(words, Some(b"TREZOR")).unwrap();
    let dir = dir_with(&file);
    let expected = hsm_secret::parse(&file, Some(b"TREZOR")).unwrap();
    assert_eq!(expected.secret_type, HsmSecretType::MNEMONIC_WITH_PASS);
    let mut hsmd = spawn(dir.path(), &[]);
    let reply = InitReplyV4::decode(&call(&mut hsmd.master, &init_with(Some(b"TREZOR")))).unwrap();
    assert_eq!(reply.tlvs.hsm_secret_type, Some(HsmSecretType::MNEMONIC_WITH_PASS));
    // A different passphrase over the same words is a different node.
    let other = dir_with(&hsm_secret::mnemonic_file(words, Some(b"other")).unwrap());
    let mut hsmd2 = spawn(other.path(), &[]);
    let reply2 = InitReplyV4::decode(&call(&mut hsmd2.master, &init_with(Some(b"other")))).unwrap();
    assert_ne!(reply.node_id, reply2.node_id);
}
