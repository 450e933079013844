//! Why a flow failed: a transaction could not be built, hsmd refused or misbehaved, or a
//! signature or value hsmd returned does not check out.

use std::fmt;

use warden_core::keys::bolt3::DerivationError;
use warden_core::tx::{ClosingError, CommitmentError, HtlcTxError, SighashError, SweepError};

use crate::hsmd::HsmdError;

/// A transaction or key the testkit could not build (a bug in the scenario or in the testkit).
#[derive(Debug)]
pub enum BuildError {
    /// A commitment could not be built.
    Commitment(CommitmentError),
    /// An HTLC transaction could not be built.
    HtlcTx(HtlcTxError),
    /// A closing transaction could not be built.
    Closing(ClosingError),
    /// A sweep could not be built.
    Sweep(SweepError),
    /// A sighash could not be computed.
    Sighash(SighashError),
    /// A key could not be derived.
    Derivation(DerivationError),
    /// Anything else (a description of what is inconsistent).
    Scenario(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::Commitment(e) => write!(f, "cannot build commitment: {e}"),
            BuildError::HtlcTx(e) => write!(f, "cannot build htlc transaction: {e}"),
            BuildError::Closing(e) => write!(f, "cannot build closing transaction: {e}"),
            BuildError::Sweep(e) => write!(f, "cannot build sweep: {e}"),
            BuildError::Sighash(e) => write!(f, "cannot compute sighash: {e}"),
            BuildError::Derivation(e) => write!(f, "cannot derive key: {e}"),
            BuildError::Scenario(s) => write!(f, "inconsistent scenario: {s}"),
        }
    }
}

impl std::error::Error for BuildError {}

macro_rules! from_build {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for BuildError {
            fn from(e: $t) -> BuildError {
                BuildError::$v(e)
            }
        }
        impl From<$t> for FlowError {
            fn from(e: $t) -> FlowError {
                FlowError::Build(BuildError::$v(e))
            }
        }
    )*};
}

from_build!(
    CommitmentError => Commitment,
    HtlcTxError => HtlcTx,
    ClosingError => Closing,
    SweepError => Sweep,
    SighashError => Sighash,
    DerivationError => Derivation
);

/// A signature or value returned by hsmd that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyError {
    /// The request whose reply is wrong.
    pub request: &'static str,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad reply to {}: {}", self.request, self.what)
    }
}

impl std::error::Error for VerifyError {}

/// Why a flow step failed.
#[derive(Debug)]
pub enum FlowError {
    /// The testkit could not build what it needed.
    Build(BuildError),
    /// Talking to hsmd failed, or hsmd refused a legitimate request.
    Hsmd(HsmdError),
    /// hsmd answered with a wrong signature or value.
    Verify(VerifyError),
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::Build(e) => e.fmt(f),
            FlowError::Hsmd(e) => e.fmt(f),
            FlowError::Verify(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for FlowError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FlowError::Build(e) => Some(e),
            FlowError::Hsmd(e) => Some(e),
            FlowError::Verify(e) => Some(e),
        }
    }
}

impl From<BuildError> for FlowError {
    fn from(e: BuildError) -> FlowError {
        FlowError::Build(e)
    }
}

impl From<HsmdError> for FlowError {
    fn from(e: HsmdError) -> FlowError {
        FlowError::Hsmd(e)
    }
}

impl From<VerifyError> for FlowError {
    fn from(e: VerifyError) -> FlowError {
        FlowError::Verify(e)
    }
}

/// A [`BuildError::Scenario`].
pub(crate) fn scenario(what: impl Into<String>) -> BuildError {
    BuildError::Scenario(what.into())
}
