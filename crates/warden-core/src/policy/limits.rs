//! The numeric limits of the policy and the operator's enforcement filter.
//!
//! Defaults follow the catalog (POLICY.md): mainnet is strict; test networks loosen the fee and
//! delay bounds (regtest nodes commonly use a `to_self_delay` of a few blocks and high test
//! feerates). An operator may demote a tag, or every tag with a prefix, to a warning; a hard
//! rule can never be demoted.

use alloc::string::String;
use alloc::vec::Vec;

use super::onchain::Allowlist;
use super::payment::PaymentLimits;
use super::{PolicyError, Rule};
use crate::units::{FeeratePerKw, Msat, Sat};

/// The default of [`Limits::max_unseal_per_hour`]: a restore of a year of a busy node's
/// database backup (one key per snapshot and per `db_write` transaction) in a few hours, and
/// far below what bulk decryption of a stolen backup store would need.
pub const DEFAULT_UNSEAL_PER_HOUR: u64 = 200_000;

/// The numeric bounds the rules check against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The smallest `to_self_delay` accepted on either side.
    pub min_to_self_delay: u16,
    /// The largest `to_self_delay` accepted on either side.
    pub max_to_self_delay: u16,
    /// The lowest feerate of a commitment or close.
    pub min_feerate: FeeratePerKw,
    /// The highest feerate of a commitment or close.
    pub max_feerate: FeeratePerKw,
    /// The most HTLCs one commitment may carry.
    pub max_htlcs: usize,
    /// The most value in HTLCs one commitment may carry.
    pub max_htlc_inflight: Msat,
    /// The largest channel.
    pub max_channel_value: Sat,
    /// The highest feerate of a sweep (12, 13, 14, 142, 143, 144). Generous on purpose:
    /// onchaind raises its feerates as a deadline nears, and the sweep's fee is also bounded by
    /// its value (see `policy::sweep`).
    pub max_sweep_feerate: FeeratePerKw,
    /// The most we give the peer when we open a channel (`onchain-push`): `setup_channel`'s
    /// push value, less what the peer brings to the funding transaction.
    pub max_push: Sat,
    /// The most channels the node may have set up (`node-limits`).
    pub max_channels: usize,
    /// The most on-chain fees signed per day across wallet transactions (withdrawals, funding,
    /// anchor spends, mingled HTLC transactions, splices), each spend's RBF/CPFP bumps counted
    /// once at their highest fee (`onchain-fee-range`); `None` is unlimited.
    pub max_onchain_fee_per_day: Option<Sat>,
    /// The most node-backup keys released per hour by the unseal extension request
    /// (`node-unseal`); `None` is unlimited.
    pub max_unseal_per_hour: Option<u64>,
}

impl Limits {
    /// The mainnet defaults of the catalog.
    pub fn mainnet() -> Limits {
        Limits {
            min_to_self_delay: 144,
            max_to_self_delay: 2016,
            min_feerate: FeeratePerKw(253),
            max_feerate: FeeratePerKw(25_000),
            max_htlcs: 483,
            max_htlc_inflight: Msat((1 << 24) * 1000),
            max_channel_value: Sat(1_000_000_000),
            max_sweep_feerate: FeeratePerKw(100_000),
            max_push: Sat(0),
            max_channels: 10_000,
            max_onchain_fee_per_day: Some(Sat(1_000_000)),
            max_unseal_per_hour: Some(DEFAULT_UNSEAL_PER_HOUR),
        }
    }

    /// The defaults of test networks (testnet, signet, regtest): delays from 1 block, feerates
    /// up to 100,000 sat/kw (sweeps 250,000), pushes up to the largest channel, and 100 BTC of
    /// on-chain fees a day.
    pub fn test_network() -> Limits {
        Limits {
            min_to_self_delay: 1,
            max_feerate: FeeratePerKw(100_000),
            max_sweep_feerate: FeeratePerKw(250_000),
            max_push: Sat(1_000_000_000),
            max_onchain_fee_per_day: Some(Sat(10_000_000_000)),
            ..Limits::mainnet()
        }
    }
}

/// Which refusals the operator demoted to warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Enforcement {
    /// Tags, or tag prefixes ending in `-` or `*` (`payment-`, `payment-*`), demoted to warnings.
    demoted: Vec<String>,
}

/// A demotion that cannot be: an unknown tag, or a hard rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnforcementError {
    /// No rule has this tag or prefix.
    Unknown(String),
    /// The rule is structural and can never be demoted.
    Hard(Rule),
}

impl core::fmt::Display for EnforcementError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            EnforcementError::Unknown(t) => write!(f, "no policy rule is named {t:?}"),
            EnforcementError::Hard(r) => {
                write!(f, "{} is a hard rule and cannot be demoted to a warning", r.tag())
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for EnforcementError {}

fn matches(pattern: &str, rule: Rule) -> bool {
    let tag = rule.tag();
    match pattern.strip_suffix('*') {
        Some(prefix) => tag.starts_with(prefix),
        None if pattern.ends_with('-') => tag.starts_with(pattern),
        None => tag == pattern,
    }
}

impl Enforcement {
    /// Every rule enforced.
    pub fn strict() -> Enforcement {
        Enforcement::default()
    }

    /// Demotes `pattern` (a tag or a prefix). A prefix demotes only the soft rules it covers;
    /// naming a hard rule exactly, or a pattern that covers no rule, is an error.
    pub fn demote(&mut self, pattern: &str) -> Result<(), EnforcementError> {
        let covered: Vec<Rule> =
            Rule::ALL.iter().copied().filter(|r| matches(pattern, *r)).collect();
        match covered.as_slice() {
            [] => return Err(EnforcementError::Unknown(pattern.into())),
            [only] if only.is_hard() => return Err(EnforcementError::Hard(*only)),
            _ => {}
        }
        self.demoted.push(pattern.into());
        Ok(())
    }

    /// Whether a refusal by `rule` is only a warning.
    pub fn is_demoted(&self, rule: Rule) -> bool {
        !rule.is_hard() && self.demoted.iter().any(|p| matches(p, rule))
    }

    /// The demoted patterns.
    pub fn demoted(&self) -> &[String] {
        &self.demoted
    }

    /// Applies the filter to a check's outcome: `Ok(None)` passed, `Ok(Some(e))` a demoted
    /// refusal to log loudly as a warning, `Err(e)` a refusal.
    pub fn apply(
        &self,
        outcome: Result<(), PolicyError>,
    ) -> Result<Option<PolicyError>, PolicyError> {
        match outcome {
            Ok(()) => Ok(None),
            Err(e) if self.is_demoted(e.rule) => Ok(Some(e)),
            Err(e) => Err(e),
        }
    }
}

/// The policy an operator runs: limits and the enforcement filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyConfig {
    /// The numeric bounds.
    pub limits: Limits,
    /// What is demoted to warnings.
    pub enforcement: Enforcement,
    /// Destinations outside our wallet that are ours to pay to (withdrawals, closes, sweeps).
    pub allowlist: Allowlist,
    /// The payment rules' limits: payee allowlist, velocity, fee cap, CLTV delta (`payment-*`).
    pub payment: PaymentLimits,
}

impl PolicyConfig {
    /// Mainnet defaults, every rule enforced.
    pub fn mainnet() -> PolicyConfig {
        PolicyConfig {
            limits: Limits::mainnet(),
            enforcement: Enforcement::strict(),
            allowlist: Allowlist::default(),
            payment: PaymentLimits::mainnet(),
        }
    }

    /// Test-network defaults, every rule enforced.
    pub fn test_network() -> PolicyConfig {
        PolicyConfig {
            limits: Limits::test_network(),
            enforcement: Enforcement::strict(),
            allowlist: Allowlist::default(),
            payment: PaymentLimits::test_network(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_rules_cannot_be_demoted() {
        let mut e = Enforcement::strict();
        assert_eq!(
            e.demote("revoke-after-broadcast"),
            Err(EnforcementError::Hard(Rule::RevokeAfterBroadcast))
        );
        assert_eq!(e.demote("no-such-rule"), Err(EnforcementError::Unknown("no-such-rule".into())));
        e.demote("commitment-").unwrap();
        assert!(e.is_demoted(Rule::CommitmentFeeRange));
        assert!(!e.is_demoted(Rule::CommitmentNumber), "a prefix never demotes a hard rule");
        assert!(!e.is_demoted(Rule::CloseValue));
    }

    #[test]
    fn apply_turns_demoted_refusals_into_warnings() {
        let mut e = Enforcement::strict();
        e.demote("channel-delay-range").unwrap();
        let soft = PolicyError::new(Rule::ChannelDelayRange, "x");
        assert_eq!(e.apply(Err(soft.clone())), Ok(Some(soft)));
        let other = PolicyError::new(Rule::ChannelSizeMax, "y");
        assert_eq!(e.apply(Err(other.clone())), Err(other));
        assert_eq!(e.apply(Ok(())), Ok(None));
        e.demote("payment-*").unwrap();
        assert!(e.is_demoted(Rule::PaymentVelocity));
    }
}
