//! Policy: the rules that decide whether Warden signs.
//!
//! Every check that can refuse a request is a variant of [`Rule`], whose [`Rule::tag`] is the
//! stable tag of the catalog (`docs/policy.md`). A refusal is a [`PolicyError`]: the rule, and a
//! sentence with the offending values (never a secret). Tests assert the rule, never the text.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

pub mod balance;
pub mod channel;
pub mod close;
pub mod commitment;
pub mod gossip;
pub mod htlc;
pub mod limits;
pub mod node;
pub mod onchain;
pub mod payment;
pub mod revocation;
pub mod sweep;

pub use limits::{Enforcement, EnforcementError, Limits, PolicyConfig};

/// A rule of the catalog. The tag of each variant never changes once released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    // channel
    /// `channel-delay-range`
    ChannelDelayRange,
    /// `channel-safe-type`
    ChannelSafeType,
    /// `channel-dbid-reuse` (hard)
    ChannelDbidReuse,
    /// `channel-size-max`
    ChannelSizeMax,
    /// `channel-shutdown-script`
    ChannelShutdownScript,
    /// `channel-unknown` (hard)
    ChannelUnknown,
    // onchain
    /// `onchain-funding-script`
    OnchainFundingScript,
    /// `onchain-funding-value`
    OnchainFundingValue,
    /// `onchain-funding-countersigned`
    OnchainFundingCountersigned,
    /// `onchain-funding-malleable`
    OnchainFundingMalleable,
    /// `onchain-unknown-destination`
    OnchainUnknownDestination,
    /// `onchain-input-amount`
    OnchainInputAmount,
    /// `onchain-fee-range`
    OnchainFeeRange,
    /// `onchain-format` (hard)
    OnchainFormat,
    /// `onchain-push`
    OnchainPush,
    // commitment
    /// `commitment-structure` (hard)
    CommitmentStructure,
    /// `commitment-fee-range`
    CommitmentFeeRange,
    /// `commitment-trimmed`
    CommitmentTrimmed,
    /// `commitment-htlc-count`
    CommitmentHtlcCount,
    /// `commitment-htlc-inflight`
    CommitmentHtlcInflight,
    /// `commitment-htlc-cltv`
    CommitmentHtlcCltv,
    /// `commitment-first-no-htlcs`
    CommitmentFirstNoHtlcs,
    /// `commitment-initial-value`
    CommitmentInitialValue,
    /// `commitment-balance`
    CommitmentBalance,
    /// `commitment-number` (hard)
    CommitmentNumber,
    /// `commitment-retry-same`
    CommitmentRetrySame,
    /// `commitment-holder-revoked` (hard)
    CommitmentHolderRevoked,
    /// `commitment-peer-signature` (hard)
    CommitmentPeerSignature,
    /// `commitment-funding-spent`
    CommitmentFundingSpent,
    /// `commitment-channel-closed` (hard)
    CommitmentChannelClosed,
    // revocation
    /// `revoke-new-commitment-validated` (hard)
    RevokeNewCommitmentValidated,
    /// `revoke-after-broadcast` (hard)
    RevokeAfterBroadcast,
    /// `revoke-peer-secret` (hard)
    RevokePeerSecret,
    // htlc
    /// `htlc-structure` (hard)
    HtlcStructure,
    /// `htlc-fee-range`
    HtlcFeeRange,
    /// `htlc-sighash` (hard)
    HtlcSighash,
    // close
    /// `close-destination`
    CloseDestination,
    /// `close-value`
    CloseValue,
    /// `close-fee-range`
    CloseFeeRange,
    /// `close-pending-htlcs`
    ClosePendingHtlcs,
    /// `close-structure` (hard)
    CloseStructure,
    // sweep
    /// `sweep-destination`
    SweepDestination,
    /// `sweep-structure` (hard)
    SweepStructure,
    /// `sweep-fee-range`
    SweepFeeRange,
    /// `sweep-holder-revoked` (hard)
    SweepHolderRevoked,
    // payment
    /// `payment-unbalanced`
    PaymentUnbalanced,
    /// `payment-not-approved`
    PaymentNotApproved,
    /// `payment-fee-cap`
    PaymentFeeCap,
    /// `payment-cltv-delta`
    PaymentCltvDelta,
    /// `payment-velocity`
    PaymentVelocity,
    /// `payment-invoice-expired`
    PaymentInvoiceExpired,
    // gossip and messages
    /// `gossip-structure` (hard)
    GossipStructure,
    /// `message-oracle` (hard)
    MessageOracle,
    // node
    /// `node-limits`
    NodeLimits,
    /// `node-state-stale` (hard)
    NodeStateStale,
    /// `node-permission` (hard)
    NodePermission,
    /// `node-unseal`
    NodeUnseal,
}

impl Rule {
    /// Every rule, in catalog order.
    pub const ALL: &'static [Rule] = &[
        Rule::ChannelDelayRange,
        Rule::ChannelSafeType,
        Rule::ChannelDbidReuse,
        Rule::ChannelSizeMax,
        Rule::ChannelShutdownScript,
        Rule::ChannelUnknown,
        Rule::OnchainFundingScript,
        Rule::OnchainFundingValue,
        Rule::OnchainFundingCountersigned,
        Rule::OnchainFundingMalleable,
        Rule::OnchainUnknownDestination,
        Rule::OnchainInputAmount,
        Rule::OnchainFeeRange,
        Rule::OnchainFormat,
        Rule::OnchainPush,
        Rule::CommitmentStructure,
        Rule::CommitmentFeeRange,
        Rule::CommitmentTrimmed,
        Rule::CommitmentHtlcCount,
        Rule::CommitmentHtlcInflight,
        Rule::CommitmentHtlcCltv,
        Rule::CommitmentFirstNoHtlcs,
        Rule::CommitmentInitialValue,
        Rule::CommitmentBalance,
        Rule::CommitmentNumber,
        Rule::CommitmentRetrySame,
        Rule::CommitmentHolderRevoked,
        Rule::CommitmentPeerSignature,
        Rule::CommitmentFundingSpent,
        Rule::CommitmentChannelClosed,
        Rule::RevokeNewCommitmentValidated,
        Rule::RevokeAfterBroadcast,
        Rule::RevokePeerSecret,
        Rule::HtlcStructure,
        Rule::HtlcFeeRange,
        Rule::HtlcSighash,
        Rule::CloseDestination,
        Rule::CloseValue,
        Rule::CloseFeeRange,
        Rule::ClosePendingHtlcs,
        Rule::CloseStructure,
        Rule::SweepDestination,
        Rule::SweepStructure,
        Rule::SweepFeeRange,
        Rule::SweepHolderRevoked,
        Rule::PaymentUnbalanced,
        Rule::PaymentNotApproved,
        Rule::PaymentFeeCap,
        Rule::PaymentCltvDelta,
        Rule::PaymentVelocity,
        Rule::PaymentInvoiceExpired,
        Rule::GossipStructure,
        Rule::MessageOracle,
        Rule::NodeLimits,
        Rule::NodeStateStale,
        Rule::NodePermission,
        Rule::NodeUnseal,
    ];

    /// The stable tag of the rule, as the catalog names it.
    pub fn tag(self) -> &'static str {
        match self {
            Rule::ChannelDelayRange => "channel-delay-range",
            Rule::ChannelSafeType => "channel-safe-type",
            Rule::ChannelDbidReuse => "channel-dbid-reuse",
            Rule::ChannelSizeMax => "channel-size-max",
            Rule::ChannelShutdownScript => "channel-shutdown-script",
            Rule::ChannelUnknown => "channel-unknown",
            Rule::OnchainFundingScript => "onchain-funding-script",
            Rule::OnchainFundingValue => "onchain-funding-value",
            Rule::OnchainFundingCountersigned => "onchain-funding-countersigned",
            Rule::OnchainFundingMalleable => "onchain-funding-malleable",
            Rule::OnchainUnknownDestination => "onchain-unknown-destination",
            Rule::OnchainInputAmount => "onchain-input-amount",
            Rule::OnchainFeeRange => "onchain-fee-range",
            Rule::OnchainFormat => "onchain-format",
            Rule::OnchainPush => "onchain-push",
            Rule::CommitmentStructure => "commitment-structure",
            Rule::CommitmentFeeRange => "commitment-fee-range",
            Rule::CommitmentTrimmed => "commitment-trimmed",
            Rule::CommitmentHtlcCount => "commitment-htlc-count",
            Rule::CommitmentHtlcInflight => "commitment-htlc-inflight",
            Rule::CommitmentHtlcCltv => "commitment-htlc-cltv",
            Rule::CommitmentFirstNoHtlcs => "commitment-first-no-htlcs",
            Rule::CommitmentInitialValue => "commitment-initial-value",
            Rule::CommitmentBalance => "commitment-balance",
            Rule::CommitmentNumber => "commitment-number",
            Rule::CommitmentRetrySame => "commitment-retry-same",
            Rule::CommitmentHolderRevoked => "commitment-holder-revoked",
            Rule::CommitmentPeerSignature => "commitment-peer-signature",
            Rule::CommitmentFundingSpent => "commitment-funding-spent",
            Rule::CommitmentChannelClosed => "commitment-channel-closed",
            Rule::RevokeNewCommitmentValidated => "revoke-new-commitment-validated",
            Rule::RevokeAfterBroadcast => "revoke-after-broadcast",
            Rule::RevokePeerSecret => "revoke-peer-secret",
            Rule::HtlcStructure => "htlc-structure",
            Rule::HtlcFeeRange => "htlc-fee-range",
            Rule::HtlcSighash => "htlc-sighash",
            Rule::CloseDestination => "close-destination",
            Rule::CloseValue => "close-value",
            Rule::CloseFeeRange => "close-fee-range",
            Rule::ClosePendingHtlcs => "close-pending-htlcs",
            Rule::CloseStructure => "close-structure",
            Rule::SweepDestination => "sweep-destination",
            Rule::SweepStructure => "sweep-structure",
            Rule::SweepFeeRange => "sweep-fee-range",
            Rule::SweepHolderRevoked => "sweep-holder-revoked",
            Rule::PaymentUnbalanced => "payment-unbalanced",
            Rule::PaymentNotApproved => "payment-not-approved",
            Rule::PaymentFeeCap => "payment-fee-cap",
            Rule::PaymentCltvDelta => "payment-cltv-delta",
            Rule::PaymentVelocity => "payment-velocity",
            Rule::PaymentInvoiceExpired => "payment-invoice-expired",
            Rule::GossipStructure => "gossip-structure",
            Rule::MessageOracle => "message-oracle",
            Rule::NodeLimits => "node-limits",
            Rule::NodeStateStale => "node-state-stale",
            Rule::NodePermission => "node-permission",
            Rule::NodeUnseal => "node-unseal",
        }
    }

    /// Whether the rule is structural: it can never be demoted to a warning.
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Rule::ChannelDbidReuse
                | Rule::ChannelUnknown
                | Rule::OnchainFormat
                | Rule::CommitmentStructure
                | Rule::CommitmentNumber
                | Rule::CommitmentHolderRevoked
                | Rule::CommitmentPeerSignature
                | Rule::CommitmentChannelClosed
                | Rule::RevokeNewCommitmentValidated
                | Rule::RevokeAfterBroadcast
                | Rule::RevokePeerSecret
                | Rule::HtlcStructure
                | Rule::HtlcSighash
                | Rule::CloseStructure
                | Rule::SweepStructure
                | Rule::SweepHolderRevoked
                | Rule::GossipStructure
                | Rule::MessageOracle
                | Rule::NodeStateStale
                | Rule::NodePermission
        )
    }

    /// The rule of a tag, if it names one.
    pub fn from_tag(tag: &str) -> Option<Rule> {
        Rule::ALL.iter().copied().find(|r| r.tag() == tag)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.tag())
    }
}

/// A refusal: the rule that refused, and what it saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The rule.
    pub rule: Rule,
    /// A lower-case sentence with the offending values (never a secret).
    pub detail: String,
}

impl PolicyError {
    /// A refusal by `rule`.
    pub fn new(rule: Rule, detail: impl Into<String>) -> PolicyError {
        PolicyError { rule, detail: detail.into() }
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused by {}: {}", self.rule.tag(), self.detail)
    }
}

#[cfg(feature = "std")]
impl std::error::Error for PolicyError {}

/// Returns early with a [`PolicyError`] of `rule` when `cond` is false.
macro_rules! ensure {
    ($cond:expr, $rule:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err($crate::policy::PolicyError::new($rule, alloc::format!($($fmt)+)));
        }
    };
}
pub(crate) use ensure;

/// Records a [`PolicyError`] of `rule` in the vector `out` when `cond` is false, and goes on:
/// for checks that must all run, so that an operator's demotion of one rule never skips the
/// rules checked after it (see [`first_refusal`]).
macro_rules! check {
    ($out:expr, $cond:expr, $rule:expr, $($fmt:tt)+) => {
        if !$cond {
            $out.push($crate::policy::PolicyError::new($rule, alloc::format!($($fmt)+)));
        }
    };
}
pub(crate) use check;

/// The first of `refusals`, as a check's outcome: how a caller that applies no enforcement
/// filter sees a list of independent checks.
pub fn first_refusal(refusals: Vec<PolicyError>) -> Result<(), PolicyError> {
    match refusals.into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_unique_and_round_trip() {
        for (i, r) in Rule::ALL.iter().enumerate() {
            assert_eq!(Rule::from_tag(r.tag()), Some(*r));
            for other in &Rule::ALL[i + 1..] {
                assert_ne!(r.tag(), other.tag());
            }
        }
        assert_eq!(Rule::ALL.len(), 57);
        assert_eq!(Rule::from_tag("no-such-rule"), None);
    }

    #[test]
    fn hard_rules_match_the_catalog() {
        let hard: Vec<_> = Rule::ALL.iter().filter(|r| r.is_hard()).collect();
        assert_eq!(hard.len(), 20);
        assert!(Rule::RevokeAfterBroadcast.is_hard());
        assert!(!Rule::CommitmentFeeRange.is_hard());
    }
}
