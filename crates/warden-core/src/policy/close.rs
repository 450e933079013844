//! Rules on a mutual close (`sign_mutual_close_tx`), checked against both current
//! commitments Warden holds.
//!
//! Core Lightning's hsmd signs any transaction that spends the funding output. Warden signs a
//! mutual close only when no HTLC is pending on either commitment (`close-pending-htlcs`), the
//! transaction has at most two outputs (`close-structure`), every output that is not ours goes
//! to the peer and the peer gets no more than its balance when we pay the fee, we get no less
//! than our balance when the peer pays it (`close-value`), our share goes to our wallet, our
//! upfront shutdown script or the allowlist (`close-destination`), and the fee is within the
//! feerate bounds (`close-fee-range`).

use bitcoin::{ScriptBuf, Transaction};

use super::onchain::Allowlist;
use super::{ensure, Limits, PolicyError, Rule};
use crate::channel::{ChannelState, CommitmentContent};
use crate::units::Sat;

/// The most a mutual close's output may differ from a balance by rounding (msat floors).
pub const CLOSE_ROUNDING: Sat = Sat(1);

/// The weight of a mutual close with `outputs` P2WSH-or-smaller outputs, for the feerate
/// bound (a generous estimate: version, locktime, one 2-of-2 input with its witness).
fn close_weight(tx: &Transaction) -> u64 {
    // Base size with empty witness, plus the 2-of-2 witness (about 222 weight units).
    tx.weight().to_wu().saturating_add(222)
}

/// Checks a mutual close against the channel's state. `is_ours` says whether a script pays
/// our wallet (or another destination of ours Warden can derive); an allowlisted script is
/// ours too.
pub fn check_mutual_close(
    limits: &Limits,
    allowlist: &Allowlist,
    state: &ChannelState,
    tx: &Transaction,
    is_ours: impl Fn(&ScriptBuf) -> bool,
) -> Result<(), PolicyError> {
    let setup = state.setup()?;
    ensure!(
        tx.output.len() <= 2 && !tx.output.is_empty(),
        Rule::CloseStructure,
        "a mutual close has one or two outputs, not {}",
        tx.output.len()
    );
    let commitments: [Option<&CommitmentContent>; 2] = [
        state.holder.current.as_ref().map(|c| &c.content),
        state.counterparty.current.as_ref().map(|c| &c.content),
    ];
    let [Some(ours_now), Some(theirs_now)] = commitments else {
        return Err(PolicyError::new(
            Rule::CloseValue,
            "a mutual close before both first commitments were signed",
        ));
    };
    for c in [ours_now, theirs_now] {
        ensure!(
            c.htlcs.is_empty(),
            Rule::ClosePendingHtlcs,
            "commitment {} still carries {} htlcs",
            c.number,
            c.htlcs.len()
        );
    }
    let our_balance = ours_now.to_holder.min(theirs_now.to_holder);
    let their_balance = ours_now.to_counterparty.max(theirs_now.to_counterparty);
    let upfront = setup.holder_shutdown_script.as_ref();
    let pays_us =
        |s: &ScriptBuf| upfront.is_some_and(|u| u == s) || allowlist.contains(s) || is_ours(s);
    let (mut to_us, mut to_them, mut foreign) = (Sat::ZERO, Sat::ZERO, 0usize);
    for out in &tx.output {
        let v = Sat(out.value.to_sat());
        if pays_us(&out.script_pubkey) {
            to_us = to_us.checked_add(v).unwrap_or(Sat(u64::MAX));
        } else {
            foreign += 1;
            to_them = to_them.checked_add(v).unwrap_or(Sat(u64::MAX));
        }
    }
    if let Some(u) = upfront {
        // With an upfront shutdown script, our share goes there and nowhere else.
        ensure!(
            to_us == Sat::ZERO || tx.output.iter().any(|o| &o.script_pubkey == u),
            Rule::CloseDestination,
            "our share does not go to our upfront shutdown script"
        );
    }
    ensure!(
        foreign <= 1,
        Rule::CloseDestination,
        "{foreign} outputs of the mutual close pay neither our wallet nor our shutdown script"
    );
    if setup.is_outbound {
        // We pay the fee: the peer gets at most its balance.
        ensure!(
            to_them <= their_balance.checked_add(CLOSE_ROUNDING).unwrap_or(Sat(u64::MAX)),
            Rule::CloseValue,
            "the peer would get {to_them}, its balance is {their_balance}"
        );
    } else {
        // The peer pays the fee: we get at least our balance.
        ensure!(
            to_us.checked_add(CLOSE_ROUNDING).is_some_and(|v| v >= our_balance),
            Rule::CloseValue,
            "we would get {to_us}, our balance is {our_balance}"
        );
    }
    let outputs = to_us.checked_add(to_them).unwrap_or(Sat(u64::MAX));
    let fee = setup.channel_value.checked_sub(outputs).ok_or_else(|| {
        PolicyError::new(Rule::CloseStructure, "the outputs exceed the channel's value")
    })?;
    let feerate = fee.0.saturating_mul(1000) / close_weight(tx).max(1);
    ensure!(
        feerate <= u64::from(limits.max_feerate.0),
        Rule::CloseFeeRange,
        "mutual close pays {fee} in fees, about {feerate} sat/kw, above {}",
        limits.max_feerate
    );
    Ok(())
}
