//! The balance rule (`commitment-balance`): our value in a new commitment may drop, compared with
//! the previous commitment of the same side, only by HTLCs we newly offered — visible ones, and
//! trimmed ones, which show up only as growth of the value no output carries.
//!
//! Core Lightning sends neither balances nor preimages, so Warden reads each commitment's content
//! from the transaction (`read_commitment`) and accounts for it:
//! - `T(C)` = channel value − both main outputs − the visible HTLC outputs: what the fee, the
//!   anchors and the trimmed HTLCs take;
//! - `X(C)` = the fee BOLT-03 computes from the stated feerate and the visible HTLC count, plus
//!   330 sat per anchor present (at commitment #0, whose stated feerate is 0 and which carries no
//!   HTLC, `X = T`);
//! - `I(C) = T(C) − X(C)`: the value of trimmed HTLCs (and trimmed main outputs). It may not be
//!   negative (the stated feerate would exceed what the transaction pays) and may not exceed the
//!   dust exposure limit;
//! - our value `V(C)` = our main output, plus `X(C)` when we opened the channel (we pay the fee
//!   and anchors, which come back to us as the fee changes).
//!
//! Then `V(N) ≥ V(P) − Σ(HTLCs offered by us in N and not in P) − max(0, I(N)) − ε`,
//! with `ε` one satoshi per balance and HTLC for millisatoshi rounding: what we newly put into
//! trimmed HTLCs is still in the new pool (`I(N) = I(P) + added − removed`, `removed ≤ I(P)`).
//! The `I(N)` term is the limit of what Warden can see: trimmed HTLCs are not in Core
//! Lightning's HTLC list, so within one update ours may be fulfilled and new ones added at once. What can move without a visible
//! HTLC is therefore bounded by the trimmed pool (itself bounded by the dust exposure limit) per
//! update — dust that BOLT-03 already puts at risk; bounding it over time is the payment
//! velocity rules' job. Everything else (value moving
//! to the peer without an HTLC, an HTLC of ours vanishing into the peer's output while we
//! still hold it, a fee paid out of our side when the peer opened) is refused.

use alloc::vec::Vec;

use super::{ensure, PolicyError, Rule};
use crate::channel::{ChannelSetup, CommitmentContent, HtlcInfo, HtlcSide, SpliceCandidate};
use crate::tx::{ChannelType, ANCHOR_OUTPUT_VALUE};
use crate::units::Sat;

/// The most value trimmed HTLCs may hold in one commitment (Core Lightning's default
/// `max-dust-htlc-exposure-msat`).
pub const MAX_DUST_EXPOSURE: Sat = Sat(50_000);

fn sat(v: Sat) -> i128 {
    i128::from(v.0)
}

/// `T(C)`, `X(C)` and `I(C)` of a commitment (see the module documentation).
fn accounts(
    setup: &ChannelSetup,
    channel_type: ChannelType,
    c: &CommitmentContent,
) -> (i128, i128) {
    let visible: i128 = c.htlcs.iter().map(|h| sat(h.amount.to_sat_floor())).sum();
    let t = sat(setup.channel_value) - sat(c.to_holder) - sat(c.to_counterparty) - visible;
    let x = if c.number.get() == 0 {
        t
    } else {
        let weight = channel_type.commitment_base_weight()
            + channel_type.commitment_weight_per_htlc() * c.htlcs.len() as u64;
        let fee = sat(c.feerate.fee_for_weight(weight));
        let anchors = if channel_type.has_anchors() {
            let any_htlc = !c.htlcs.is_empty();
            let present = [c.to_holder, c.to_counterparty]
                .iter()
                .filter(|v| any_htlc || **v > Sat::ZERO)
                .count();
            sat(ANCHOR_OUTPUT_VALUE) * present as i128
        } else {
            0
        };
        fee + anchors
    };
    (x, t - x)
}

/// Our value in commitment `c` as Warden reads it: our main output, plus the fee and anchors
/// when we opened the channel (they come back to us as the fee changes). HTLCs are not part
/// of it. This is the `V(C)` the balance rule compares.
pub fn our_value(setup: &ChannelSetup, c: &CommitmentContent) -> Result<Sat, PolicyError> {
    let channel_type = setup.channel_type()?;
    let (x, _) = accounts(setup, channel_type, c);
    let fee_and_anchors = if setup.is_outbound { x.max(0) } else { 0 };
    let value = sat(c.to_holder) + fee_and_anchors;
    Ok(Sat(u64::try_from(value).unwrap_or(u64::MAX)))
}

/// What left our side between the previous commitment `prev` and `new` of the same side
/// without a visible HTLC to explain it (beyond millisatoshi rounding): value that went into
/// trimmed HTLCs we offered — or, within the per-update allowance [`check_balance`] leaves
/// for them, value moved to the peer. [`check_balance`] bounds it per update by the trimmed
/// pool; its sum over time is bounded by the daily budget of
/// `PaymentLimits::trimmed_outflow_per_day` (`commitment-balance`).
pub fn trimmed_outflow(
    setup: &ChannelSetup,
    prev: &CommitmentContent,
    new: &CommitmentContent,
) -> Result<Sat, PolicyError> {
    let out = unexplained_drop(setup, setup.channel_type()?, prev, new);
    Ok(Sat(u64::try_from(out.max(0)).unwrap_or(u64::MAX)))
}

/// The two terms [`check_balance`] compares, in satoshis: what left our side between `prev`
/// and `new` without a visible HTLC we offered (`V(P) − Σ(newly offered) − ε − V(N)`,
/// negative when our value grew), and `I(N)`, what trimmed HTLCs hold in `new`. For a signer
/// told more than Core Lightning tells (LDK passes the preimages of settled HTLCs) to require
/// more of a commitment than [`check_balance`] does.
pub fn balance_terms(
    setup: &ChannelSetup,
    prev: &CommitmentContent,
    new: &CommitmentContent,
) -> Result<(i128, i128), PolicyError> {
    let channel_type = setup.channel_type()?;
    let (_, i_new) = accounts(setup, channel_type, new);
    Ok((unexplained_drop(setup, channel_type, prev, new), i_new))
}

/// Millisatoshi floors: one satoshi per main output and per HTLC of `c`.
fn slack(c: &CommitmentContent) -> i128 {
    2 + c.htlcs.len() as i128
}

/// `V(C)` given `X(C)`: our main output, plus the fee and anchors when we opened.
fn value(setup: &ChannelSetup, c: &CommitmentContent, x: i128) -> i128 {
    sat(c.to_holder) + if setup.is_outbound { x } else { 0 }
}

/// `V(P) − Σ(newly offered, +1 sat each) − ε − V(N)`: what left our side between `prev` and
/// `new` without a visible HTLC we offered (negative when our value grew).
fn unexplained_drop(
    setup: &ChannelSetup,
    channel_type: ChannelType,
    prev: &CommitmentContent,
    new: &CommitmentContent,
) -> i128 {
    let (x_prev, _) = accounts(setup, channel_type, prev);
    let (x_new, _) = accounts(setup, channel_type, new);
    let offered: i128 = newly_offered(&prev.htlcs, &new.htlcs)
        .iter()
        .map(|h| sat(h.amount.to_sat_floor()) + 1)
        .sum();
    value(setup, prev, x_prev) - offered - slack(prev) - slack(new) - value(setup, new, x_new)
}

/// The HTLCs of `new` that we offered and that `old` does not carry (as a multiset).
fn newly_offered<'a>(old: &[HtlcInfo], new: &'a [HtlcInfo]) -> Vec<&'a HtlcInfo> {
    let mut remaining: Vec<&HtlcInfo> =
        old.iter().filter(|h| h.offered_by == HtlcSide::Holder).collect();
    let mut added = Vec::new();
    for h in new.iter().filter(|h| h.offered_by == HtlcSide::Holder) {
        match remaining.iter().position(|o| *o == h) {
            Some(i) => {
                remaining.swap_remove(i);
            }
            None => added.push(h),
        }
    }
    added
}

/// Checks a new commitment `new` against the previous commitment `prev` of the same side
/// (`commitment-balance`, and `commitment-fee-range` when the transaction pays less than the
/// stated feerate).
pub fn check_balance(
    setup: &ChannelSetup,
    prev: Option<&CommitmentContent>,
    new: &CommitmentContent,
) -> Result<(), PolicyError> {
    let channel_type = setup.channel_type()?;
    let n = new.number.get();
    let (_, i_new) = accounts(setup, channel_type, new);
    // BOLT-03 ("Fee Payment"): the fee comes out of the funder's output with a floor of 0, so
    // a funder who cannot pay the whole fee pays what it has, and the commitment pays less
    // than its feerate. Every other output is whole: nothing of ours pays for it.
    let funder_output = if setup.is_outbound { new.to_holder } else { new.to_counterparty };
    ensure!(
        i_new >= -slack(new) || funder_output == Sat::ZERO,
        Rule::CommitmentFeeRange,
        "commitment {n} pays {} sat less in fees than its feerate {} requires",
        -i_new,
        new.feerate
    );
    ensure!(
        i_new <= sat(MAX_DUST_EXPOSURE) + slack(new),
        Rule::CommitmentBalance,
        "commitment {n} leaves {i_new} sat in no output, above the dust exposure limit of {}",
        MAX_DUST_EXPOSURE
    );
    let Some(prev) = prev else { return Ok(()) };
    // Trimmed HTLCs are invisible: in one update some of ours may be fulfilled (leaving the
    // pool) while others are added (entering it), so the pool's growth alone does not bound
    // what we newly put into trimmed HTLCs. What we newly put in is still in the new pool
    // (I(N) = I(P) + added − removed, and removed ≤ I(P)), so the new pool bounds it.
    let trimmed = i_new.max(0);
    let drop = unexplained_drop(setup, channel_type, prev, new);
    ensure!(
        drop <= trimmed,
        Rule::CommitmentBalance,
        "commitment {n}: {drop} sat left our side without an htlc we offered, more than the \
         {trimmed} sat trimmed htlcs could hold: value moved to the peer (ours {} -> {}, htlcs \
         {} -> {})",
        prev.to_holder,
        new.to_holder,
        prev.htlcs.len(),
        new.htlcs.len()
    );
    Ok(())
}

/// The anchors a commitment carries (BOLT-03: one per main output present, both when any HTLC
/// is), in satoshis.
fn anchors(channel_type: ChannelType, c: &CommitmentContent) -> i128 {
    if !channel_type.has_anchors() {
        return 0;
    }
    let any_htlc = !c.htlcs.is_empty();
    let present =
        [c.to_holder, c.to_counterparty].iter().filter(|v| any_htlc || **v > Sat::ZERO).count();
    sat(ANCHOR_OUTPUT_VALUE) * present as i128
}

/// The balance rule across fundings (`commitment-balance`): a commitment `new` on splice
/// candidate `candidate` gives each side what the current funding's commitment `main` of the
/// same number gives it, plus that side's relative amount (the opener also pays for the
/// anchors the candidate's outputs add, or gets back those they drop). Our output may not be
/// smaller and the peer's not larger than that (one satoshi of rounding each); ours may be
/// absent only when it was on the current funding too and the splice takes from us (still
/// dust). Same number, HTLCs and feerate are the channel state's rules.
pub fn check_splice_balance(
    setup: &ChannelSetup,
    candidate: &SpliceCandidate,
    main: &CommitmentContent,
    new: &CommitmentContent,
) -> Result<(), PolicyError> {
    let channel_type = setup.channel_type()?;
    let n = new.number.get();
    let anchors_added = anchors(channel_type, new) - anchors(channel_type, main);
    let (ours_pays, theirs_pays) =
        if setup.is_outbound { (anchors_added, 0) } else { (0, anchors_added) };
    let ours = sat(main.to_holder) + i128::from(candidate.holder_relative) - ours_pays;
    let theirs =
        sat(main.to_counterparty) + i128::from(candidate.counterparty_relative) - theirs_pays;
    let still_dust =
        new.to_holder == Sat::ZERO && main.to_holder == Sat::ZERO && candidate.holder_relative <= 0;
    ensure!(
        sat(new.to_holder) >= ours - 1 || still_dust,
        Rule::CommitmentBalance,
        "commitment {n} on splice {} gives us {} where the current funding's gives {} and the splice {:+} sat",
        candidate.funding_outpoint,
        new.to_holder,
        main.to_holder,
        candidate.holder_relative
    );
    ensure!(
        sat(new.to_counterparty) <= theirs.max(0) + 1,
        Rule::CommitmentBalance,
        "commitment {n} on splice {} gives the peer {} where the current funding's gives {} and the splice {:+} sat",
        candidate.funding_outpoint,
        new.to_counterparty,
        main.to_counterparty,
        candidate.counterparty_relative
    );
    Ok(())
}
