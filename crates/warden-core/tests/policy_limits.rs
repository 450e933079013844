//! The numeric channel and commitment rules: a legitimate setup and commitment pass, and each
//! is refused by exactly its rule when one value is pushed past its limit.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "test code")]

mod support;

use bitcoin::hashes::Hash;
use bitcoin::Txid;
use warden_core::channel::{ChannelSetup, CommitmentContent, HtlcInfo, HtlcSide};
use warden_core::policy::channel::check_setup;
use warden_core::policy::commitment::check_commitment;
use warden_core::policy::{Limits, Rule};
use warden_core::units::{CommitmentNumber, FeeratePerKw, Msat, Sat};

/// The shared fixture, with a push of 100,000 sat and a delay of 720 blocks on our outputs.
fn setup() -> ChannelSetup {
    ChannelSetup {
        push_value: Msat(100_000_000),
        counterparty_selected_delay: 720,
        ..support::channel_fixture::setup()
    }
}

fn htlc(amount: u64, cltv: u32) -> HtlcInfo {
    HtlcInfo {
        offered_by: HtlcSide::Holder,
        amount: Msat(amount),
        payment_hash: [1; 32],
        cltv_expiry: cltv,
    }
}

fn content(n: u64) -> CommitmentContent {
    CommitmentContent {
        number: CommitmentNumber::new(n).unwrap(),
        txid: Txid::all_zeros(),
        feerate: FeeratePerKw(2_500),
        htlcs: if n == 0 { vec![] } else { vec![htlc(5_000_000, 800)] },
        htlc_vouts: vec![],
        to_holder: Sat(890_000),
        to_counterparty: Sat(100_000),
    }
}

fn refused_setup(limits: &Limits, s: &ChannelSetup) -> Rule {
    check_setup(limits, s).unwrap_err().rule
}

fn refused(limits: &Limits, s: &ChannelSetup, c: &CommitmentContent) -> Rule {
    check_commitment(limits, s, c).unwrap_err().rule
}

#[test]
fn setup_rules() {
    let m = Limits::mainnet();
    check_setup(&m, &setup()).unwrap();
    let mut s = setup();
    s.holder_selected_delay = 6;
    assert_eq!(refused_setup(&m, &s), Rule::ChannelDelayRange);
    check_setup(&Limits::test_network(), &s).unwrap();
    let mut s = setup();
    s.counterparty_selected_delay = 5000;
    assert_eq!(refused_setup(&m, &s), Rule::ChannelDelayRange);
    let mut s = setup();
    s.channel_value = Sat(1_000_000_001);
    assert_eq!(refused_setup(&m, &s), Rule::ChannelSizeMax);
    let mut s = setup();
    s.channel_type_features = vec![];
    assert_eq!(refused_setup(&m, &s), Rule::ChannelSafeType);
}

#[test]
fn commitment_rules() {
    let m = Limits::mainnet();
    let s = setup();
    check_commitment(&m, &s, &content(0)).unwrap();
    check_commitment(&m, &s, &content(5)).unwrap();
    // Core Lightning states feerate 0 for #0.
    let mut c = content(0);
    c.feerate = FeeratePerKw(0);
    check_commitment(&m, &s, &c).unwrap();

    let mut c = content(5);
    c.feerate = FeeratePerKw(0);
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentFeeRange);
    c.feerate = FeeratePerKw(25_001);
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentFeeRange);

    let mut c = content(0);
    c.htlcs.push(htlc(1_000_000, 700));
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentFirstNoHtlcs);

    let mut c = content(0);
    c.to_counterparty = Sat(100_001);
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentInitialValue);
    let mut inbound = setup();
    inbound.is_outbound = false;
    check_commitment(&m, &inbound, &c).unwrap();

    let mut c = content(5);
    c.htlcs = vec![htlc(1_000, 800); 484];
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentHtlcCount);

    let mut c = content(5);
    c.htlcs = vec![htlc(9_000_000_000, 800), htlc(9_000_000_000, 801)];
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentHtlcInflight);
    c.htlcs = vec![htlc(u64::MAX, 800), htlc(u64::MAX, 801)];
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentHtlcInflight);

    let mut c = content(5);
    c.htlcs[0].cltv_expiry = 500_000_000;
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentHtlcCltv);

    let mut c = content(5);
    c.to_holder = Sat(353);
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentTrimmed);
    // An HTLC output below the least dust limit plus its HTLC-timeout fee must be trimmed.
    let fee = s.channel_type().unwrap().htlc_timeout_fee(FeeratePerKw(2_500)).0;
    let mut c = content(5);
    c.htlcs = vec![htlc((354 + fee - 1) * 1000, 800)];
    assert_eq!(refused(&m, &s, &c), Rule::CommitmentTrimmed);
    c.htlcs = vec![htlc((354 + fee) * 1000, 800)];
    check_commitment(&m, &s, &c).unwrap();
    c.to_holder = Sat(0);
    check_commitment(&m, &s, &c).unwrap();
}

/// Each rule of a check runs whatever the others found: an operator who demotes one rule
/// never switches off the rules checked after it.
#[test]
fn every_rule_of_a_check_reports_independently() {
    use warden_core::policy::channel::setup_refusals;
    use warden_core::policy::commitment::commitment_refusals;
    let m = Limits::mainnet();
    let mut c = content(5);
    c.feerate = FeeratePerKw(25_001);
    c.htlcs = vec![htlc(1_000, 800); 484];
    c.htlcs[0].cltv_expiry = 500_000_000;
    let rules: Vec<Rule> = commitment_refusals(&m, &setup(), &c).iter().map(|e| e.rule).collect();
    for expected in [Rule::CommitmentFeeRange, Rule::CommitmentHtlcCount, Rule::CommitmentHtlcCltv]
    {
        assert!(rules.contains(&expected), "{expected:?} missing from {rules:?}");
    }
    assert_eq!(rules[0], refused(&m, &setup(), &c), "check_commitment gives the first");
    let mut s = setup();
    s.holder_selected_delay = 6;
    s.channel_value = Sat(1_000_000_001);
    let rules: Vec<Rule> = setup_refusals(&m, &s).iter().map(|e| e.rule).collect();
    assert_eq!(rules, [Rule::ChannelDelayRange, Rule::ChannelSizeMax]);
}

/// BOLT-03's fee floor: a funder who cannot pay the whole fee pays what it has (its output is
/// then absent) and the commitment pays less than its feerate: accepted. A commitment whose
/// funder keeps an output and still underpays is refused (`commitment-fee-range`).
#[test]
fn the_funders_fee_has_a_floor_of_zero() {
    use warden_core::policy::balance::check_balance;
    let s = setup();
    // One HTLC of 5,000 sat on a static_remotekey commitment at 2,500 sat/kw: 2,240 sat of fee
    // (weight 724 + 172). The funder (us) has 1,000 sat left: the fee takes all of it.
    let floored = CommitmentContent {
        to_holder: Sat(0),
        to_counterparty: Sat(1_000_000 - 5_000 - 1_000),
        ..content(5)
    };
    check_balance(&s, None, &floored).unwrap();
    // The funder keeps 500 sat and the fee is 1,740 sat short.
    let short = CommitmentContent {
        to_holder: Sat(500),
        to_counterparty: Sat(1_000_000 - 5_000 - 1_000),
        ..content(5)
    };
    assert_eq!(check_balance(&s, None, &short).unwrap_err().rule, Rule::CommitmentFeeRange);
    // The same when the peer is the funder: its output absent is the floor, ours absent is not.
    let theirs = ChannelSetup { is_outbound: false, ..setup() };
    let floored = CommitmentContent {
        to_holder: Sat(1_000_000 - 5_000 - 1_000),
        to_counterparty: Sat(0),
        ..content(5)
    };
    check_balance(&theirs, None, &floored).unwrap();
    let not_funder = CommitmentContent {
        to_holder: Sat(0),
        to_counterparty: Sat(1_000_000 - 5_000 - 1_000),
        ..content(5)
    };
    assert_eq!(
        check_balance(&theirs, None, &not_funder).unwrap_err().rule,
        Rule::CommitmentFeeRange
    );
}
