//! Rules on the content of a commitment (ours or the peer's), checked after the transaction
//! was read against channel state (`channel::commitment::read_commitment`).

use alloc::string::String;
use alloc::vec::Vec;

use super::htlc::check_htlc_feerate;
use super::{check, first_refusal, Limits, PolicyError, Rule};
use crate::channel::{ChannelSetup, CommitmentContent};
use crate::units::{Msat, Sat};

/// BOLT-02's smallest dust limit: a main output below it cannot be a legitimate output.
pub const MIN_DUST_LIMIT: Sat = Sat(354);

/// The largest CLTV expiry that is a block height (at or above it, it would be a timestamp).
pub const MAX_CLTV_EXPIRY: u32 = 500_000_000;

/// Checks a commitment's content against the limits: feerate (`commitment-fee-range`; Core
/// Lightning states feerate 0 for commitment #0, which carries no HTLCs), HTLC count and value
/// (`commitment-htlc-count`, `commitment-htlc-inflight`), the feerate of the HTLC
/// transactions signed with it (`htlc-fee-range`), HTLC expiries
/// (`commitment-htlc-cltv`), no HTLCs at #0 (`commitment-first-no-htlcs`), main outputs not
/// dust (`commitment-trimmed`), and — when we opened the channel — the peer holding no more
/// than we pushed at #0 (`commitment-initial-value`).
pub fn check_commitment(
    limits: &Limits,
    setup: &ChannelSetup,
    content: &CommitmentContent,
) -> Result<(), PolicyError> {
    first_refusal(commitment_refusals(limits, setup, content))
}

/// Every refusal of [`check_commitment`], each rule checked whatever the others found (so that
/// a demoted rule never hides the ones after it).
pub fn commitment_refusals(
    limits: &Limits,
    setup: &ChannelSetup,
    content: &CommitmentContent,
) -> Vec<PolicyError> {
    let mut out = Vec::new();
    let n = content.number.get();
    if n == 0 {
        check!(
            out,
            content.htlcs.is_empty(),
            Rule::CommitmentFirstNoHtlcs,
            "commitment #0 carries {} htlcs",
            content.htlcs.len()
        );
        if setup.is_outbound {
            check!(
                out,
                content.to_counterparty <= setup.push_value.to_sat_floor(),
                Rule::CommitmentInitialValue,
                "at commitment #0 the peer holds {} but we pushed only {}",
                content.to_counterparty,
                setup.push_value
            );
        }
    }
    let feerate = content.feerate;
    if setup.channel_type().is_ok_and(|t| t.has_shared_anchor()) {
        // A zero-fee commitment pays no fee at all: its shared anchor is bumped by a child.
        check!(
            out,
            feerate.0 == 0,
            Rule::CommitmentFeeRange,
            "zero-fee commitment {n} states feerate {feerate}, not 0"
        );
    } else if !(n == 0 && feerate.0 == 0) {
        check!(
            out,
            feerate >= limits.min_feerate && feerate <= limits.max_feerate,
            Rule::CommitmentFeeRange,
            "commitment {n} feerate {feerate} is outside {}..={}",
            limits.min_feerate,
            limits.max_feerate
        );
    }
    if !content.htlcs.is_empty() {
        // The HTLC transactions signed with this commitment are built at its feerate (with
        // zero-fee HTLCs, at no fee: `read_commitment` rebuilt them so).
        let htlc_fee =
            setup.channel_type().and_then(|t| check_htlc_feerate(limits, t, feerate, Sat::ZERO));
        if let Err(e) = htlc_fee {
            out.push(e);
        }
    }
    check!(
        out,
        content.htlcs.len() <= limits.max_htlcs,
        Rule::CommitmentHtlcCount,
        "commitment {n} carries {} htlcs, the limit is {}",
        content.htlcs.len(),
        limits.max_htlcs
    );
    let inflight = content.htlcs.iter().try_fold(Msat::ZERO, |sum, h| sum.checked_add(h.amount));
    check!(
        out,
        inflight.is_some_and(|v| v <= limits.max_htlc_inflight),
        Rule::CommitmentHtlcInflight,
        "commitment {n} carries {} in htlcs, the limit is {}",
        inflight.map_or(String::from("more than 2^64 msat"), |v| alloc::format!("{v}")),
        limits.max_htlc_inflight
    );
    for h in &content.htlcs {
        check!(
            out,
            h.cltv_expiry < MAX_CLTV_EXPIRY,
            Rule::CommitmentHtlcCltv,
            "commitment {n} has an htlc expiring at {}, which is not a block height",
            h.cltv_expiry
        );
    }
    // An HTLC output is untrimmed only at or above the broadcaster's dust limit plus, without
    // zero-fee HTLCs, the fee of its second-stage transaction. Core Lightning does not send
    // the dust limits, but BOLT-02 puts them at 354 sat or more: below that bound (with the
    // cheaper, HTLC-timeout fee) an HTLC output can only be one that must be trimmed.
    if let Ok(channel_type) = setup.channel_type() {
        let bound = MIN_DUST_LIMIT.0.saturating_add(channel_type.htlc_timeout_fee(feerate).0);
        for h in &content.htlcs {
            let amount = h.amount.to_sat_floor().0;
            check!(
                out,
                amount >= bound,
                Rule::CommitmentTrimmed,
                "commitment {n} carries an htlc output of {amount} sat, below {bound} sat (a \
                 dust limit of at least {MIN_DUST_LIMIT} plus its second-stage fee at \
                 {feerate}): it must be trimmed"
            );
        }
    }
    for (who, value) in [("our", content.to_holder), ("the peer's", content.to_counterparty)] {
        check!(
            out,
            value == Sat::ZERO || value >= MIN_DUST_LIMIT,
            Rule::CommitmentTrimmed,
            "commitment {n}: {who} main output of {value} is dust"
        );
    }
    out
}
