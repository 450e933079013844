//! The slow drain under cover of trimmed HTLCs: Core Lightning lists only untrimmed HTLCs, so
//! within one update Warden must let our value drop by up to the trimmed pool (ours may have
//! been fulfilled while new ones were added). A compromised node that keeps a pool of dust
//! HTLCs could move that much to the peer update after update. The day's budget of value that
//! leaves our side without a visible HTLC (`PaymentLimits::trimmed_outflow_per_day`) bounds it:
//! each theft within the pool passes, until their sum exceeds the budget — refused with
//! `commitment-balance`, nothing changed.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

use warden_core::policy::Rule;
use warden_core::tx::ChannelType;
use warden_core::units::Msat;
use warden_hsmd::permissions;
use warden_hsmd::signer::{BadRequestError, ClientContext, Outcome, Signer, StoreChoice};
use warden_testkit::flows::{OUR_SECRET, PEER_SECRET};
use warden_testkit::rng::NoEntropy;
use warden_testkit::{perms, Change, Channel, ChannelParams, CommitState, Funder, Hsmd, Who};
use warden_wire::Message;

fn call(s: &Signer, ctx: &ClientContext, m: &impl Message) -> Result<Vec<u8>, BadRequestError> {
    match s.handle(ctx, &m.encode().unwrap())? {
        Outcome::Reply(r) => Ok(r),
        Outcome::NewClient { .. } => panic!("unexpected new client"),
    }
}

/// A copy of `state` with `amount` moved from us to the peer, without an HTLC.
fn theft(state: &CommitState, amount: Msat) -> CommitState {
    let mut stolen = state.clone();
    stolen.to_us = Msat(state.to_us.0 - amount.0);
    stolen.to_them = Msat(state.to_them.0 + amount.0);
    stolen
}

#[test]
fn a_drain_under_the_trimmed_pool_is_bounded_by_the_days_budget() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hsm_secret"), OUR_SECRET).unwrap();
    std::fs::create_dir_all(dir.path().join("warden")).unwrap();
    std::fs::write(
        dir.path().join("warden/policy.toml"),
        "[payment]\ntrimmed-outflow-per-day-sat = 15000\n",
    )
    .unwrap();
    let body = Hsmd::regtest_init().encode().unwrap();
    let (s, _) = Signer::init_with(&body, dir.path(), &mut NoEntropy, StoreChoice::Memory).unwrap();
    let params = ChannelParams::new(ChannelType::AnchorsZeroFeeHtlc, Funder::Us);
    let mut ch = Channel::new(params, OUR_SECRET, PEER_SECRET).unwrap();
    let master = ClientContext { id: s.node_id(), dbid: 0, permissions: permissions::ALL };
    let channeld =
        ClientContext { id: ch.peer_id(), dbid: ch.params().dbid, permissions: perms::CHANNELD };
    call(&s, &master, &ch.new_channel()).unwrap();
    call(&s, &channeld, &ch.setup_channel()).unwrap();
    let (sign, _) = ch.sign_remote_commitment(0, &ch.remote).unwrap();
    call(&s, &channeld, &sign.request).unwrap();
    let (validate, _) = ch.validate_commitment(0, &ch.local).unwrap();
    call(&s, &channeld, &validate).unwrap();

    // The peer offers ten dust HTLCs of 300 sat (below any dust limit: trimmed, in no output):
    // a pool of 3,000 sat the signer cannot see into.
    let dust: Vec<Change> = (0..10u8)
        .map(|i| Change::Add(ch.new_htlc(Who::Them, Msat(300_000), [i; 32], 800)))
        .collect();
    let mut next = ch.remote.apply(&dust).unwrap();
    // The peer's commitments from now on; each signed one is then revoked by the peer.
    let step = |ch: &mut Channel, state: CommitState| -> Result<(), BadRequestError> {
        let m = ch.remote_num + 1;
        let (sign, _) = ch.sign_remote_commitment(m, &state).unwrap();
        call(&s, &channeld, &sign.request)?;
        let old = ch.remote_num;
        call(&s, &channeld, &ch.validate_revocation(old).unwrap()).unwrap();
        ch.remote = state;
        ch.remote_num = old + 1;
        Ok(())
    };
    step(&mut ch, next.clone()).unwrap();

    // 2,500 sat to the peer per update: within the pool each time, so the per-update rule
    // lets it through; the sixth brings the day's sum to about 15,000 sat.
    for _ in 0..6 {
        next = theft(&ch.remote, Msat(2_500_000));
        step(&mut ch, next.clone()).unwrap();
    }
    let before = s.channel_state(&ch.peer_id(), ch.params().dbid).unwrap();
    next = theft(&ch.remote, Msat(2_500_000));
    match step(&mut ch, next) {
        Err(BadRequestError::Refused(e)) => assert_eq!(e.rule, Rule::CommitmentBalance, "{e}"),
        other => panic!("the seventh theft was not refused: {other:?}"),
    }
    assert_eq!(s.channel_state(&ch.peer_id(), ch.params().dbid).unwrap(), before);
    // An honest update (nothing leaves our side) still goes through.
    let honest = ch.remote.apply(&[]).unwrap();
    step(&mut ch, honest).unwrap();
}
