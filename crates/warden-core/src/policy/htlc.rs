//! Rules on second-level HTLC transactions (`sign_remote_htlc_tx`, `sign_any_local_htlc_tx`,
//! and the HTLC signatures that come with a commitment).
//!
//! An HTLC transaction is rebuilt from its commitment (`htlc-structure`), so its fee is the one
//! BOLT-03 implies at the commitment's feerate: that feerate is what is checked here.

use super::{ensure, Limits, PolicyError, Rule};
use crate::tx::ChannelType;
use crate::units::{FeeratePerKw, Sat};

/// `htlc-fee-range`: HTLC transactions built at `feerate` pay a fee within the limits.
///
/// With `anchors_zero_fee_htlc_tx` or zero-fee commitments an HTLC transaction carries no fee
/// at any feerate (its fee is brought by another input, `SIGHASH_SINGLE|ANYONECANPAY`): there
/// is no minimum, and the rebuilt transaction's `fee` must be zero. Otherwise the feerate is within
/// `min_feerate..=max_feerate` (too low and the transaction never confirms before the HTLC's
/// deadline; too high and the fee eats the HTLC).
pub fn check_htlc_feerate(
    limits: &Limits,
    channel_type: ChannelType,
    feerate: FeeratePerKw,
    fee: Sat,
) -> Result<(), PolicyError> {
    if channel_type.zero_fee_htlcs() {
        ensure!(
            fee == Sat::ZERO,
            Rule::HtlcFeeRange,
            "a zero-fee-htlc channel's htlc transaction pays {fee} in fees"
        );
        return Ok(());
    }
    ensure!(
        feerate >= limits.min_feerate && feerate <= limits.max_feerate,
        Rule::HtlcFeeRange,
        "htlc transactions at feerate {feerate} are outside {}..={}",
        limits.min_feerate,
        limits.max_feerate
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_fee_htlcs_have_no_minimum() {
        let l = Limits::mainnet();
        let anchors = ChannelType::AnchorsZeroFeeHtlc;
        let legacy = ChannelType::StaticRemoteKey;
        assert!(check_htlc_feerate(&l, anchors, FeeratePerKw(0), Sat(0)).is_ok());
        assert!(check_htlc_feerate(&l, anchors, FeeratePerKw(1_000_000), Sat(0)).is_ok());
        let e = check_htlc_feerate(&l, anchors, FeeratePerKw(253), Sat(1)).err();
        assert_eq!(e.map(|e| e.rule), Some(Rule::HtlcFeeRange));
        assert!(check_htlc_feerate(&l, legacy, FeeratePerKw(2_500), Sat(1_657)).is_ok());
        for bad in [252, 25_001] {
            let e = check_htlc_feerate(&l, legacy, FeeratePerKw(bad), Sat(0)).err();
            assert_eq!(e.map(|e| e.rule), Some(Rule::HtlcFeeRange), "{bad}");
        }
    }
}
