//! Rules on the sweeps (12, 13, 14, 142, 143, 144): onchaind's spends of our outputs.
//!
//! `sweep-fee-range` bounds the fee from above only, and generously: onchaind (and lightningd's
//! `onchain_control.c`) raise a sweep's feerate as its deadline nears, and a penalty too small
//! for its target feerate is sent at the relay floor. Refusing those would cost the output.
//! What is refused is a fee no deadline explains: a feerate above
//! [`Limits::max_sweep_feerate`], or a fee that leaves less than a dust output (the sweep
//! would give the output to miners) unless it pays no more than the relay floor.

use super::{ensure, Limits, PolicyError, Rule};
use crate::policy::commitment::MIN_DUST_LIMIT;
use crate::units::Sat;

/// An upper bound of a sweep's witness weight beyond its witness script: the item count, a
/// 73-byte signature and a 33-byte element (key, preimage or `1`), with their length bytes,
/// and the script's length prefix.
pub const SWEEP_WITNESS_OVERHEAD: u64 = 1 + 1 + 73 + 1 + 33 + 3;

/// `sweep-fee-range`: a sweep spending `value` into outputs of `outputs`, whose final weight
/// is at most `weight` (an upper bound, so the feerate computed is a lower bound of the real
/// one), pays a fee within the cap.
pub fn check_sweep_fee(
    limits: &Limits,
    value: Sat,
    outputs: Sat,
    weight: u64,
) -> Result<(), PolicyError> {
    let fee = value.checked_sub(outputs).ok_or_else(|| {
        PolicyError::new(
            Rule::SweepFeeRange,
            alloc::format!("the sweep pays out {outputs}, more than the {value} it spends"),
        )
    })?;
    let feerate = fee.0.saturating_mul(1000) / weight.max(1);
    let max = u64::from(limits.max_sweep_feerate.0);
    ensure!(
        feerate <= max,
        Rule::SweepFeeRange,
        "the sweep pays {fee} in fees, about {feerate} sat/kw, above {}",
        limits.max_sweep_feerate
    );
    let floor = u64::from(limits.min_feerate.0);
    ensure!(
        outputs >= MIN_DUST_LIMIT || feerate <= floor,
        Rule::SweepFeeRange,
        "the sweep gives {fee} of {value} to fees (about {feerate} sat/kw), leaving {outputs}, \
         less than a dust output"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<(), PolicyError>) -> Option<Rule> {
        r.err().map(|e| e.rule)
    }

    #[test]
    fn generous_cap_and_no_burning() {
        let l = Limits::mainnet();
        // 500 weight units: 50,000 sat/kw is 25,000 sat of fee.
        assert_eq!(rule(check_sweep_fee(&l, Sat(100_000), Sat(75_000), 500)), None);
        assert_eq!(
            rule(check_sweep_fee(&l, Sat(100_000), Sat(40_000), 500)),
            Some(Rule::SweepFeeRange)
        );
        assert_eq!(rule(check_sweep_fee(&l, Sat(100), Sat(101), 500)), Some(Rule::SweepFeeRange));
        // A small output: everything but 300 sat to fees at a feerate under the cap is burning.
        assert_eq!(
            rule(check_sweep_fee(&l, Sat(20_000), Sat(300), 500)),
            Some(Rule::SweepFeeRange)
        );
        // onchaind's floor fallback for a penalty too small for its feerate.
        assert_eq!(rule(check_sweep_fee(&l, Sat(400), Sat(274), 500)), None);
    }
}
