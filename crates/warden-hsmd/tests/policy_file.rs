//! The operator's policy file through `Signer::init`: its limits are the ones enforced, a
//! demoted rule warns (counted, logged) instead of refusing, and an invalid file stops the
//! signer at start with a sentence naming the key.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::policy::Rule;
use warden_core::tx::ChannelType;
use warden_hsmd::permissions;
use warden_hsmd::policy::EventKind;
use warden_hsmd::signer::{BadRequestError, ClientContext, InitError, Signer, StoreChoice};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::NoEntropy;
use warden_testkit::{perms, Channel, ChannelParams, Funder, Hsmd};
use warden_wire::Message;

fn start(policy: Option<&str>) -> (tempfile::TempDir, Result<Signer, InitError>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
    if let Some(text) = policy {
        std::fs::create_dir_all(dir.path().join("warden")).unwrap();
        std::fs::write(dir.path().join("warden/policy.toml"), text).unwrap();
    }
    let body = Hsmd::regtest_init().encode().unwrap();
    let signer =
        Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).map(|(s, _)| s);
    (dir, signer)
}

/// `new_channel` then `setup_channel` of a regtest channel (to_self_delay below 1000 blocks).
fn setup(s: &Signer) -> Result<(), BadRequestError> {
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let ch = Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap();
    let master = ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL };
    s.handle(&master, &ch.new_channel().encode().unwrap())?;
    let client =
        ClientContext { id: ch.peer_id(), dbid: ch.params().dbid, permissions: perms::OPENINGD };
    s.handle(&client, &ch.setup_channel().encode().unwrap()).map(|_| ())
}

const STRICT_DELAY: &str = "[limits]\nmin-to-self-delay = 1000\n";

#[test]
fn the_files_limits_are_enforced_and_refusals_are_counted() {
    let (_dir, signer) = start(None);
    let signer = signer.unwrap();
    setup(&signer).unwrap();
    assert!(signer.policy_log().refusals().is_empty());

    let (_dir, signer) = start(Some(STRICT_DELAY));
    let signer = signer.unwrap();
    match setup(&signer) {
        Err(BadRequestError::Refused(e)) => assert_eq!(e.rule, Rule::ChannelDelayRange),
        other => panic!("expected a channel-delay-range refusal, got {other:?}"),
    }
    assert_eq!(signer.policy_log().refusals()[&Rule::ChannelDelayRange], 1);
    let recent = signer.policy_log().recent();
    assert_eq!(recent.len(), 1);
    assert_eq!(recent[0].kind, EventKind::Refused);
}

#[test]
fn a_demoted_rule_warns_and_the_request_goes_on() {
    let text = format!("{STRICT_DELAY}[enforcement]\nwarn = [\"channel-delay-range\"]\n");
    let (_dir, signer) = start(Some(&text));
    let signer = signer.unwrap();
    setup(&signer).unwrap();
    // Both delays (144 and 720 blocks) are below 1000: each is a warning of its own.
    assert_eq!(signer.policy_log().warnings()[&Rule::ChannelDelayRange], 2);
    assert!(signer.policy_log().refusals().is_empty());
    assert_eq!(signer.policy_log().recent()[0].kind, EventKind::Warned);
}

#[test]
fn an_invalid_policy_file_stops_the_signer_at_start() {
    for (text, needle) in [
        ("[enforcement]\nwarn = [\"commitment-number\"]\n", "hard rule"),
        ("[limits]\nmax-htlcs = 484\n", "max-htlcs"),
        ("[limit]\nmax-htlcs = 4\n", "limit"),
    ] {
        let (dir, signer) = start(Some(text));
        match signer {
            Err(e @ InitError::Policy(_)) => {
                let said = e.to_string();
                assert!(said.contains(needle), "{said}");
                assert!(said.contains(&dir.path().join("warden/policy.toml").display().to_string()));
            }
            other => panic!("{text:?}: expected a policy error, got {:?}", other.map(|_| ())),
        }
    }
}
