//! The process driver works against the real binary, using only what warden-hsmd already
//! answers: `init`, `client_hsmfd`, `get_channel_basepoints`, `get_per_commitment_point`,
//! `ecdh`; and a refused request shows up on the status connection.
//!
//! The binary comes from `$WARDEN_HSMD_BIN`, else `target/{debug,release}/warden-hsmd` of the
//! workspace (`$CARGO_TARGET_DIR` honoured): run `cargo build -p warden-hsmd` first.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::tx::ChannelType;
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::hsmd::HsmdError;
use warden_testkit::{locate_binary, perms, Channel, ChannelParams, Funder, Hsmd};
use warden_wire::msg::*;
use warden_wire::{Message, Reply};

fn bin() -> std::path::PathBuf {
    locate_binary().unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn init_basepoints_points_and_a_refusal() {
    let ch = Channel::new(
        ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us),
        OUR_SECRET,
        PEER_SECRET,
    )
    .unwrap();
    let mut hsmd = Hsmd::spawn(&bin(), &OUR_SECRET).unwrap();
    let init = hsmd.init(&Hsmd::regtest_init()).unwrap();
    assert_eq!(init.node_id, ch.our_id());
    assert_eq!(hsmd.node_id(), Some(ch.our_id()));

    // lightningd's own request, on the master connection.
    let reply: GetChannelBasepointsReply =
        hsmd.master().call(&ch.get_channel_basepoints()).unwrap();
    ch.check_basepoints(&reply).unwrap();

    // channeld's client: per-commitment points.
    let mut channeld =
        hsmd.client("channeld", ch.peer_id(), ch.params().dbid, perms::CHANNELD).unwrap();
    assert_eq!(channeld.permissions(), perms::CHANNELD);
    for n in [0, 1, 7] {
        let (req, point) = ch.get_per_commitment_point(n).unwrap();
        let reply = channeld.request(&req).unwrap();
        let Reply::GetPerCommitmentPointReply(r) = reply else { panic!("{reply:?}") };
        assert_eq!(r.per_commitment_point, point, "point {n}");
        assert_eq!(r.old_commitment_secret, None);
    }

    // connectd's global client: ECDH with our node key.
    let mut connectd = hsmd.global_client("connectd", perms::CONNECTD).unwrap();
    assert_eq!(connectd.id(), ch.our_id());
    let point = ch.peer().node_id().to_public_key();
    let reply: EcdhReply = connectd.call(&Ecdh { point }).unwrap();
    let expected = warden_core::sign::ecdh(ch.our_node_keys().node_key(), &point);
    assert_eq!(reply.ss.expose_secret(), expected.expose_secret());
    assert!(hsmd.status().bad_requests().is_empty());

    // A request channeld may not send (master only) is refused, reported, and only that
    // client is closed.
    let (s, _) = ch.sign_commitment().unwrap();
    match channeld.request(&s.request) {
        Err(HsmdError::Refused { request, report: Some(report), .. }) => {
            assert_eq!(request, SignCommitmentTx::NAME);
            assert_eq!(report.id, ch.peer_id());
            assert_eq!(warden_wire::frame::peek_type(&report.msg).unwrap(), SignCommitmentTx::TYPE);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(hsmd.status().bad_requests().len(), 1);
    let reply: EcdhReply = connectd.call(&Ecdh { point }).unwrap();
    assert_eq!(reply.ss.expose_secret(), expected.expose_secret());
    assert!(hsmd.status().failures().is_empty());
    assert!(hsmd.is_running());
    let names: Vec<_> = hsmd.transcript().entries();
    assert_eq!(
        names,
        vec![
            ("master", 11),
            ("master", 10),
            ("master", 9),
            ("channeld", 18),
            ("channeld", 18),
            ("channeld", 18),
            ("master", 9),
            ("connectd", 1),
            ("channeld", 5),
            ("connectd", 1),
        ]
    );
}

#[test]
fn every_subdaemon_gets_its_client() {
    let ch = Channel::new(
        ChannelParams::new(ChannelType::StaticRemoteKey, Funder::Them),
        OUR_SECRET,
        PEER_SECRET,
    )
    .unwrap();
    let mut hsmd = Hsmd::spawn(&bin(), &OUR_SECRET).unwrap();
    hsmd.init(&Hsmd::regtest_init()).unwrap();
    let dbid = ch.params().dbid;
    for (name, p) in [
        ("openingd", perms::OPENINGD),
        ("dualopend", perms::DUALOPEND),
        ("channeld", perms::CHANNELD),
        ("closingd", perms::CLOSINGD),
        ("onchaind", perms::ONCHAIND),
    ] {
        let mut c = hsmd.client(name, ch.peer_id(), dbid, p).unwrap();
        let (req, point) = ch.get_per_commitment_point(3).unwrap();
        let r: GetPerCommitmentPointReply = c.call(&req).unwrap();
        assert_eq!(r.per_commitment_point, point, "{name}");
    }
    let mut gossipd = hsmd.global_client("gossipd", perms::GOSSIPD).unwrap();
    let _: EcdhReply = gossipd.call(&Ecdh { point: ch.peer().node_id().to_public_key() }).unwrap();
    assert!(hsmd.status().bad_requests().is_empty());
    assert!(hsmd.status().failures().is_empty());
}
