//! Warden's extension requests on a signer in process: the node-backup key, unseal (keys open
//! what was sealed to that key; another context, another client or too many keys are refused)
//! and the status reply.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::policy::Rule;
use warden_core::rng::EntropySource;
use warden_core::seal::{ecies_ephemeral_point, ecies_open_with_derived_key, ecies_seal};
use warden_core::secret::Secret32;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer};
use warden_testkit::rng::NoEntropy;
use warden_wire::msg::*;
use warden_wire::{Message, NodeId, Permissions};

struct Counter(u8);
impl EntropySource for Counter {
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0 = self.0.wrapping_add(1);
        dest.fill(self.0);
    }
}

fn signer(policy: Option<&str>) -> (tempfile::TempDir, Signer) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), [0x42; 32]).unwrap();
    if let Some(text) = policy {
        std::fs::create_dir_all(dir.path().join("warden")).unwrap();
        std::fs::write(dir.path().join("warden/policy.toml"), text).unwrap();
    }
    let init = warden_testkit::Hsmd::regtest_init().encode().unwrap();
    let (s, _) = Signer::init(&init, dir.path(), &mut NoEntropy).unwrap();
    (dir, s)
}

fn master(s: &Signer) -> ClientContext {
    ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL }
}

fn call<R: Message>(
    s: &Signer,
    client: &ClientContext,
    m: &impl Message,
) -> Result<R, BadRequestError> {
    match s.handle(client, &m.encode().unwrap())? {
        Outcome::Reply(r) => Ok(R::decode(&r).unwrap()),
        Outcome::NewClient { .. } => panic!("not a new client"),
    }
}

fn sealed_to(s: &Signer, contexts: &[&[u8]]) -> (Vec<Vec<u8>>, WardenUnseal) {
    let key: WardenNodeBackupPubkeyReply = call(s, &master(s), &WardenNodeBackupPubkey {}).unwrap();
    let mut entropy = Counter(0);
    let blobs: Vec<Vec<u8>> =
        contexts.iter().map(|c| ecies_seal(&key.pubkey, c, c, &mut entropy).unwrap()).collect();
    let items = blobs
        .iter()
        .zip(contexts)
        .map(|(b, c)| UnsealItem {
            ephemeral: ecies_ephemeral_point(b).unwrap(),
            context: c.to_vec(),
        })
        .collect();
    (blobs, WardenUnseal { items })
}

fn rule(e: BadRequestError) -> Rule {
    match e {
        BadRequestError::Refused(p) => p.rule,
        other => panic!("not a refusal: {other}"),
    }
}

fn status(s: &Signer) -> serde_json::Value {
    let r: WardenStatusReply = call(s, &master(s), &WardenStatus {}).unwrap();
    serde_json::from_slice(&r.json).unwrap()
}

#[test]
fn unseal_gives_keys_that_open_node_backups_only() {
    let (_dir, s) = signer(None);
    let contexts: [&[u8]; 3] = [
        b"warden/node-backup/v1/db-write/7",
        b"warden/node-backup/v1/snapshot/7",
        b"warden/node-backup/x",
    ];
    let (blobs, request) = sealed_to(&s, &contexts);
    let reply: WardenUnsealReply = call(&s, &master(&s), &request).unwrap();
    assert_eq!(reply.keys.len(), 3);
    for ((blob, context), key) in blobs.iter().zip(contexts).zip(&reply.keys) {
        let opened =
            ecies_open_with_derived_key(&Secret32::new(*key.expose_secret()), blob).unwrap();
        assert_eq!(&opened[..], context);
    }
    // A key asked for under another context than the blob's opens nothing.
    let mut moved = request.clone();
    moved.items[0].context = contexts[1].to_vec();
    let reply: WardenUnsealReply = call(&s, &master(&s), &moved).unwrap();
    assert!(ecies_open_with_derived_key(&Secret32::new(*reply.keys[0].expose_secret()), &blobs[0])
        .is_err());

    // Not a node backup's context: refused, nothing released.
    let mut other = request.clone();
    other.items[2].context = b"warden/records".to_vec();
    assert_eq!(
        rule(call::<WardenUnsealReply>(&s, &master(&s), &other).unwrap_err()),
        Rule::NodeUnseal
    );
    // An empty request is malformed, not a refusal.
    let empty = WardenUnseal { items: vec![] };
    assert!(matches!(
        call::<WardenUnsealReply>(&s, &master(&s), &empty).unwrap_err(),
        BadRequestError::Invalid { .. }
    ));
    // A subdaemon's connection (no master permission) cannot ask.
    let channeld = ClientContext {
        id: NodeId::from_bytes([2; 33]),
        dbid: 1,
        permissions: Permissions(permissions::ALL.0 & !Permissions::MASTER.0),
    };
    assert!(matches!(
        call::<WardenUnsealReply>(&s, &channeld, &request).unwrap_err(),
        BadRequestError::PermissionDenied { .. }
    ));
    assert!(matches!(
        call::<WardenStatusReply>(&s, &channeld, &WardenStatus {}).unwrap_err(),
        BadRequestError::PermissionDenied { .. }
    ));

    // The status counts the refusal.
    let st = status(&s);
    assert_eq!(st["node_id"], s.node_id().to_string());
    assert_eq!(st["refusals"]["node-unseal"], 1);
    assert_eq!(st["channels"], 0);
    assert!(st["store_seq"].as_u64().is_some());
}

#[test]
fn the_hourly_limit_counts_keys_not_requests() {
    let (_dir, s) = signer(Some("[limits]\nunseal-per-hour = 3\n"));
    let contexts: [&[u8]; 2] = [b"warden/node-backup/a", b"warden/node-backup/b"];
    let (_, request) = sealed_to(&s, &contexts);
    call::<WardenUnsealReply>(&s, &master(&s), &request).unwrap();
    // Two more would make four: refused whole, nothing released.
    assert_eq!(
        rule(call::<WardenUnsealReply>(&s, &master(&s), &request).unwrap_err()),
        Rule::NodeUnseal
    );
    // One more is within the limit.
    let one = WardenUnseal { items: request.items[..1].to_vec() };
    call::<WardenUnsealReply>(&s, &master(&s), &one).unwrap();
    assert_eq!(
        rule(call::<WardenUnsealReply>(&s, &master(&s), &one).unwrap_err()),
        Rule::NodeUnseal
    );
    // "unlimited" lifts it.
    let (_dir, s) = signer(Some("[limits]\nunseal-per-hour = \"unlimited\"\n"));
    let (_, request) = sealed_to(&s, &contexts);
    for _ in 0..5 {
        call::<WardenUnsealReply>(&s, &master(&s), &request).unwrap();
    }
}
